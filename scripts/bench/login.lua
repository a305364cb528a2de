-- wrk script: log in as the seeded lab customers (customer001..200), round
-- robin, each request from its own X-Forwarded-For address so that the
-- per-address login limit never trips. Every login costs one argon2id hash.
local counter = 0

function init(args)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local n = counter % 200 + 1
  wrk.headers["X-Forwarded-For"] = string.format("198.18.%d.%d", math.floor(counter / 250) % 250, counter % 250 + 1)
  local body = string.format('{"email":"customer%03d@oms.example.com","password":"LabCustomer-%03d"}', n, n)
  return wrk.format("POST", "/api/users/login", nil, body)
end
