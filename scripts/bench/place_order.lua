-- wrk script: place orders, as lab customers do, through the gateway.
-- Arguments: the number of SKUs to spread orders over (BENCH-0001 ...),
-- the pause before each request in ms (0: as fast as answers come), then
-- customer tokens (each request takes the next). Every request has an
-- Idempotency-Key of its own, so each one is a new order; done() prints
-- how many ended CONFIRMED and how many did not.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  sku_count = tonumber(args[1] or "50")
  pace = tonumber(args[2] or "0")
  tokens = {}
  for i = 3, #args do
    table.insert(tokens, args[i])
  end
  sequence = 0
  confirmed, other = 0, 0
  stamp = os.time()
end

function delay()
  return pace
end

function request()
  sequence = sequence + 1
  local sku = string.format("BENCH-%04d", (sequence * 7 + id) % sku_count + 1)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(sequence + id) % #tokens + 1],
    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", stamp, id, sequence),
  }
  local body = string.format(
    '{"items":[{"sku":"%s","qty":1}],"payment":{"method":"card","card":"4242424242424242"}}', sku)
  return wrk.format("POST", "/api/orders", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    confirmed = confirmed + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("confirmed")
    o = o + thread:get("other")
  end
  io.write(string.format("orders: %d confirmed, %d not\n", c, o))
end
