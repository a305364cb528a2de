-- wrk script: GET /api/inventory/products/BENCH-NNNN, cycling through the
-- SKUs BENCH-0001 .. BENCH-<count> (the first argument, default 50), each
-- wrk thread from its own starting point. The requests are formatted once,
-- in init(), so that wrk spends as little CPU per request as it can (it
-- shares the machine with the service it measures).
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local sku_count = tonumber(args[1] or "50")
  requests = {}
  for i = 1, sku_count do
    requests[i] = wrk.format("GET", string.format("/api/inventory/products/BENCH-%04d", i))
  end
  sequence = id * 7
end

function request()
  sequence = sequence + 1
  return requests[sequence % #requests + 1]
end
