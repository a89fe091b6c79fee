-- recs.lua: GET /v1/users/{id}/recommendations?n=10 for users drawn at random
-- from the file named by env USERS (one external id per line); key from env KEY;
-- env QUERY is appended to the query string ("&scenario=bench").
package.path = package.path .. ";" .. (os.getenv("WRK_DIR") or ".") .. "/?.lua"
require "common"
local users = {}
for line in io.lines(os.getenv("USERS")) do users[#users + 1] = line end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
math.randomseed(tonumber(os.getenv("SEED") or "1"))
local query = os.getenv("QUERY") or ""
request = function()
   return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?n=10" .. query)
end
done = function(summary, latency, requests) shelf_done(summary, latency, requests) end
