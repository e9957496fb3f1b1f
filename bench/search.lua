-- bench/search.lua — search Patient by family name prefix among all patients:
-- GET /fhir/Patient?family=<prefix>&_count=10, rotating over prefixes.
-- Arguments: TOKEN PREFIXES_FILE (one percent-encoded prefix per line).
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "bench/"
local common = dofile(dir .. "common.lua")

local reqs, n, i = {}, 0, 0
function init(args)
  local hdr = common.headers(args[1])
  for _, p in ipairs(common.lines(args[2])) do
    n = n + 1
    reqs[n] = wrk.format("GET", "/fhir/Patient?family=" .. p .. "&_count=10", hdr)
  end
  i = ((tid or 0) * 7) % n
end
function request()
  i = i % n + 1
  return reqs[i]
end
setup = common.setup
done = common.done
