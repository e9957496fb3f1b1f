-- bench/healthz.lua — the baseline peer: GET /healthz, a fixed response through the same server,
-- router and keep-alive path as every other scenario. No arguments.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "bench/"
local common = dofile(dir .. "common.lua")

local req
function init(args)
  req = wrk.format("GET", "/healthz", common.headers(nil))
end
function request() return req end
setup = common.setup
done = common.done
