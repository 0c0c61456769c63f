-- wrk script for bench/ingest_wrk.py: POSTs pre-signed status callbacks, each at most once.
--
-- bench/ingest_wrk.py writes one file per wrk thread (<prefix><thread id>), one
-- request per line: "<X-Twilio-Signature>\t<form body>". Each thread sends its
-- lines in order; only if it runs out does it start again (a repeat, which the
-- intake answers as a duplicate), and done() reports how often that happened so
-- the driver can refuse such a run.

local path = "/twilio/status-callback"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  prepared = {}
  local file = assert(io.open(args[1] .. id, "r"))
  for line in file:lines() do
    local signature, body = line:match("^([^\t]+)\t(.*)$")
    prepared[#prepared + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, body)
  end
  file:close()
  count = #prepared
  index = 0
  wrapped = 0
end

function request()
  index = index + 1
  if index > #prepared then
    index = 1
    wrapped = wrapped + 1
  end
  return prepared[index]
end

function done(summary, latency, requests)
  local wrapped_total, generated = 0, 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + thread:get("wrapped")
    generated = generated + thread:get("index") + thread:get("wrapped") * thread:get("count")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "timeout": %d, "wrapped": %d, "generated": %d, '
    .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    wrapped_total, generated, latency:percentile(50), latency:percentile(99)))
end
