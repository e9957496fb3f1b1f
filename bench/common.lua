-- bench/common.lua — helpers shared by the wrk scenario scripts (loaded with dofile).
-- The `done` hook prints one machine-readable line that bench.py parses:
--   MCBENCH requests=N duration_us=N p50_us=N p90_us=N p99_us=N max_us=N connect=N read=N
--           write=N status=N timeout=N
-- (status counts responses >= 400, as wrk does).
local M = {}

function M.headers(token, extra)
  local h = { ["Accept"] = "application/fhir+json" }
  if token and token ~= "" then h["Authorization"] = "Bearer " .. token end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- Lines of a file, empty ones skipped.
function M.lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

-- Give each wrk thread its own starting point in a request list (tid is set by M.setup).
local nthreads = 0
function M.setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MCBENCH requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end

return M
