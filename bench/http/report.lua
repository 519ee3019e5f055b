-- report.lua: wrk's done() hook for bench/http/http_load.py. After wrk's own summary it prints
-- one line, "WRK_JSON {...}": the run's totals, its error counts and latency percentiles in
-- microseconds (with pipelining wrk times a whole batch: from its write to its last response).
-- Used alone for the not-pipelined runs (wrk keeps its static request) and by pipeline.lua.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
