-- wrk script for bench/ack_latency.py: POST one signed Slack slash command, over and over.
--
-- The body and its signature are computed by the Python script just before each run
-- (a fresh X-Slack-Request-Timestamp, well inside Slack's 5-minute window) and passed
-- in the environment: BENCH_BODY, BENCH_TS, BENCH_SIG.
-- BENCH_DELAY_MS, when set, paces each connection: it waits that long before each request
-- (bench/replicas.py: 10 connections x 50 ms = about 200 requests a second in all).
-- Every response whose status is not exactly 200 is counted, and done() prints one
-- machine-readable line (latencies in microseconds) that the Python script parses.

-- BENCH_BODIES, instead of BENCH_BODY and BENCH_SIG, names a file of "signature<TAB>body" lines
-- (all signed at BENCH_TS): each connection's requests go through them in turn
-- (bench/workspaces.py: commands from many workspaces, each with its own team_id).

local body = os.getenv("BENCH_BODY")
local ts = os.getenv("BENCH_TS")
local sig = os.getenv("BENCH_SIG")
local bodies = os.getenv("BENCH_BODIES")
if not ts or not ((body and sig) or bodies) then
  error("BENCH_TS and BENCH_BODY + BENCH_SIG (or BENCH_BODIES) must be set (run bench/ack_latency.py)")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Slack-Request-Timestamp"] = ts
wrk.headers["X-Slack-Signature"] = sig

if bodies then
  local formatted, next_one = {}, 1
  for line in io.lines(bodies) do
    local s, b = line:match("^([^\t]+)\t(.*)$")
    local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Slack-Request-Timestamp"] = ts,
      ["X-Slack-Signature"] = s,
    }
    table.insert(formatted, wrk.format("POST", nil, headers, b))
  end
  if #formatted == 0 then
    error("BENCH_BODIES names an empty file")
  end
  function request()
    local r = formatted[next_one]
    next_one = next_one % #formatted + 1
    return r
  end
end

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
