-- events.lua: POST /v1/events, batches of BATCH (default 100) events of random
-- users and items (files USERS and ITEMS, one id per line), types view, cart
-- and purchase; 256 bodies are made up front and sent in turn.
package.path = package.path .. ";" .. (os.getenv("WRK_DIR") or ".") .. "/?.lua"
require "common"
local users, items = {}, {}
for line in io.lines(os.getenv("USERS")) do users[#users + 1] = line end
for line in io.lines(os.getenv("ITEMS")) do items[#items + 1] = line end
local batch = tonumber(os.getenv("BATCH") or "100")
local types = {"view", "view", "view", "cart", "purchase"}
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.headers["Content-Type"] = "application/json"
math.randomseed(tonumber(os.getenv("SEED") or "1"))
local bodies, k = {}, 0
for b = 1, 256 do
   local ev = {}
   for i = 1, batch do
      ev[i] = string.format('{"user":"%s","item":"%s","type":"%s"}', users[math.random(#users)],
                            items[math.random(#items)], types[math.random(#types)])
   end
   bodies[b] = "[" .. table.concat(ev, ",") .. "]"
end
request = function()
   k = k % #bodies + 1
   return wrk.format(nil, "/v1/events", nil, bodies[k])
end
done = function(summary, latency, requests)
   shelf_done(summary, latency, requests, string.format(',"events_per_s":%.1f,"batch":%d',
                                                        summary.requests * batch / (summary.duration / 1e6), batch))
end
