-- bench/login.lua — POST /api/v1/auth/login (each one verifies an argon2id hash on the bounded
-- login pool, by design ~100 ms of CPU). Arguments: USERNAME PASSWORD.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "bench/"
local common = dofile(dir .. "common.lua")

local req
function init(args)
  local body = string.format('{"username":"%s","password":"%s"}', args[1], args[2])
  req = wrk.format("POST", "/api/v1/auth/login",
                   { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }, body)
end
function request() return req end
setup = common.setup
done = common.done
