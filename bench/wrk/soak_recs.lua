-- soak_recs.lua: the read side of bench/soak.sh, a mix of what a shop asks
-- for: 70 % personal slates (GET /v1/users/{id}/recommendations?n=10, users
-- from file USERS, deleted ones too: they get the fallback), 10 % anonymous
-- sessions (POST /v1/recommendations, 3 items of file ITEMS, deleted ones
-- too: skipped), 10 % similar items (GET /v1/items/{id}/similar?n=10, items
-- of file SIMILAR, never deleted), 10 % popular (GET /v1/popular?n=10).
-- Every answer should be 200; read key from env KEY.
package.path = package.path .. ";" .. (os.getenv("WRK_DIR") or ".") .. "/?.lua"
require "common"
local function lines(path)
   local t = {}
   for line in io.lines(path) do t[#t + 1] = line end
   return t
end
local users, items, similar = lines(os.getenv("USERS")), lines(os.getenv("ITEMS")), lines(os.getenv("SIMILAR"))
local auth = {["Authorization"] = "Bearer " .. os.getenv("KEY")}
local post = {["Authorization"] = auth["Authorization"], ["Content-Type"] = "application/json"}
math.randomseed(tonumber(os.getenv("SEED") or "1"))
request = function()
   local p = math.random(100)
   if p <= 70 then
      return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?n=10", auth)
   elseif p <= 80 then
      local body = string.format('{"items":["%s","%s","%s"],"n":10}', items[math.random(#items)],
                                 items[math.random(#items)], items[math.random(#items)])
      return wrk.format("POST", "/v1/recommendations", post, body)
   elseif p <= 90 then
      return wrk.format("GET", "/v1/items/" .. similar[math.random(#similar)] .. "/similar?n=10", auth)
   end
   return wrk.format("GET", "/v1/popular?n=10", auth)
end
done = function(summary, latency, requests) shelf_done(summary, latency, requests) end
