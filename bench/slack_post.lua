-- wrk script for bench/ack_latency.py: POST one signed Slack slash command, over and over.
--
-- The body and its signature are computed by the Python script just before each run
-- (a fresh X-Slack-Request-Timestamp, well inside Slack's 5-minute window) and passed
-- in the environment: BENCH_BODY, BENCH_TS, BENCH_SIG.
-- BENCH_DELAY_MS, when set, paces each connection: it waits that long before each request
-- (bench/replicas.py: 10 connections x 50 ms = about 200 requests a second in all).
-- Every response whose status is not exactly 200 is counted, and done() prints one
-- machine-readable line (latencies in microseconds) that the Python script parses.

local body = os.getenv("BENCH_BODY")
local ts = os.getenv("BENCH_TS")
local sig = os.getenv("BENCH_SIG")
if not body or not ts or not sig then
  error("BENCH_BODY, BENCH_TS and BENCH_SIG must be set (run bench/ack_latency.py)")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Slack-Request-Timestamp"] = ts
wrk.headers["X-Slack-Signature"] = sig

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

non200 = 0
last_bad = 0

function response(status, headers, resp_body)
  if status ~= 200 then
    non200 = non200 + 1
    last_bad = status
  end
end

function done(summary, latency, requests)
  local bad, last = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
    local l = t:get("last_bad") or 0
    if l ~= 0 then last = l end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d non200=%d last_bad=%d wrk_status_errors=%d "
      .. "connect=%d read=%d write=%d timeout=%d p50=%d p95=%d p99=%d max=%d mean=%.1f\n",
    summary.requests, summary.duration, bad, last, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
