-- wrk script: reserve one unit, then release that reservation; repeat.
-- Each wrk thread keeps a queue of reservation ids to release, so about half
-- the requests are reservations and half are releases; a "cycle" is one of
-- each. Counts are gathered from every thread in done(). The endpoints are
-- internal: scripts/bench.sh passes a service token with -H, which wrk
-- sends with every request.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  -- SKUs BENCH-0001 .. BENCH-<count>: spreading the load over several
  -- products measures the service; one SKU measures one row's lock.
  sku_count = tonumber(args[1] or "50")
  pending = {}
  sequence = 0
  reserved, released, failed = 0, 0, 0
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local rid = table.remove(pending)
  if rid then
    return wrk.format("POST", "/api/inventory/reservations/" .. rid .. "/release", nil, "")
  end
  sequence = sequence + 1
  local sku = string.format("BENCH-%04d", (sequence + id * 7) % sku_count + 1)
  local body = string.format('{"order_id":"bench-%d-%d-%d","items":[{"sku":"%s","qty":1}]}',
                             id, os.time(), sequence, sku)
  return wrk.format("POST", "/api/inventory/reservations", nil, body)
end

function response(status, headers, body)
  if status == 201 then
    local rid = body:match('"id": "([0-9a-f-]+)"')
    if rid then
      table.insert(pending, rid)
      reserved = reserved + 1
    end
  elseif status == 200 and body:find('"status": "released"', 1, true) then
    released = released + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local r, l, f = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("reserved")
    l = l + t:get("released")
    f = f + t:get("failed")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("cycles: %d reserved, %d released, %d failed; %.0f cycles/s\n",
                         r, l, f, l / seconds))
end
