-- wrk script: every connection waits PACE_MS (the first argument, default
-- 10) before each request, so 64 connections offer about 6,400 requests a
-- second: below what the machine can serve, so latency shows what a
-- request costs rather than how long it queued behind the others.
function init(args)
  pace = tonumber(args[1] or "10")
end

function delay()
  return pace
end
