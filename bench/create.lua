-- bench/create.lua — durable create: POST /fhir/Patient with a small valid Patient. Each 201 is
-- sent only after the group commit that made it durable. Arguments: TOKEN.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "bench/"
local common = dofile(dir .. "common.lua")

local families = { "Benchmark", "Lasttest", "Wrkmann", "Durable", "Groupcommit", "Müller" }
local genders = { "female", "male", "other", "unknown" }
local reqs, n, i = {}, 0, 0
function init(args)
  local hdr = common.headers(args[1], { ["Content-Type"] = "application/fhir+json" })
  for k, fam in ipairs(families) do
    local body = string.format(
      '{"resourceType":"Patient","active":true,"name":[{"family":"%s","given":["Wrk","T%d"]}],' ..
      '"gender":"%s","birthDate":"19%02d-0%d-1%d"}',
      fam, tid or 0, genders[(k % #genders) + 1], 50 + k, k % 9 + 1, k % 9)
    n = n + 1
    reqs[n] = wrk.format("POST", "/fhir/Patient", hdr, body)
  end
end
function request()
  i = i % n + 1
  return reqs[i]
end
setup = common.setup
done = common.done
