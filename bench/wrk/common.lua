-- common.lua: the summary every shelf wrk script prints when the run ends:
-- one JSON line (requests, seconds, rate, latency percentiles in ms, errors).
function shelf_done(summary, latency, requests, extra)
   local s = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"seconds":%.3f,"req_per_s":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
      '"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d%s}\n',
      summary.requests, s, summary.requests / s, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout,
      extra or ""))
end
