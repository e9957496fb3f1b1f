-- bench/read.lua — FHIR read by id: GET /fhir/Patient/{id}, cycling over known ids.
-- Arguments: TOKEN IDS_FILE (one Patient id per line).
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "bench/"
local common = dofile(dir .. "common.lua")

local reqs, n, i = {}, 0, 0
function init(args)
  local hdr = common.headers(args[1])
  for _, id in ipairs(common.lines(args[2])) do
    n = n + 1
    reqs[n] = wrk.format("GET", "/fhir/Patient/" .. id, hdr)
  end
  i = ((tid or 0) * 997) % n   -- threads start apart
end
function request()
  i = i % n + 1
  return reqs[i]
end
setup = common.setup
done = common.done
