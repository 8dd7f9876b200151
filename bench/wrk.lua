-- wrk request + summary script for bench/bench.py.
-- WRK_REQUEST names a file: header lines "Name: value", a blank line, then the body.
-- WRK_CHECK_DONE=1 counts responses whose body lacks "data: [DONE]" (broken streams).
local f = assert(io.open(os.getenv("WRK_REQUEST"), "rb"))
local raw = f:read("*a")
f:close()
local head, body = raw:match("^(.-)\n\n(.*)$")
wrk.method = "POST"
wrk.body = body
for line in head:gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("WRK_CHECK_DONE") == "1" then
  bad = 0
  function response(status, headers, body)
    if status ~= 200 or not body:find("data: [DONE]", 1, true) then
      bad = bad + 1
    end
  end
end

function done(summary, latency, requests)
  local broken = 0
  for _, thread in ipairs(threads) do
    broken = broken + (thread:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"broken":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    broken, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
