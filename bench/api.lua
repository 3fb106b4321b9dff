-- wrk's script for the API benchmark (bench/api.py):
--   wrk -s bench/api.lua -H "Authorization: Bearer <key>" <url> -- MODE FIRST LAST RUN
-- MODE is "ping" (GET /api/v1/ping), "customer" (GET /api/v1/customers/user_<id>) or
-- "charge" (POST /api/v1/customers/user_<id>/charges, 1 credit); each request picks a user
-- id in FIRST..LAST at random. Every POST carries an Idempotency-Key of its own: RUN (a
-- label of this run), the thread's number and a counter.

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

local mode, first, last, prefix
local counter = 0

function init(args)
   mode, first, last = args[1], tonumber(args[2]), tonumber(args[3])
   prefix = args[4] .. "-" .. thread_number .. "-"
   math.randomseed(thread_number * 7919 + os.time())
end

local body = '{"amount": "1.00", "memo": "bench"}'

function request()
   if mode == "ping" then
      return wrk.format("GET", "/api/v1/ping")
   end
   local path = "/api/v1/customers/user_" .. math.random(first, last)
   if mode == "customer" then
      return wrk.format("GET", path)
   end
   counter = counter + 1
   -- wrk.format takes the headers given instead of wrk.headers (Host, Authorization).
   local headers = {}
   for name, value in pairs(wrk.headers) do
      headers[name] = value
   end
   headers["Content-Type"] = "application/json"
   headers["Idempotency-Key"] = prefix .. counter
   return wrk.format("POST", path .. "/charges", headers, body)
end
