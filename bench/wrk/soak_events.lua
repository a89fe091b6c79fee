-- soak_events.lua: the write side of bench/soak.sh: events.lua's batches
-- (BATCH events of users USERS and items ITEMS), each connection waiting
-- DELAY_MS (default 20) between its batches so that the events stay a small
-- share of the traffic, as in a shop.
package.path = package.path .. ";" .. (os.getenv("WRK_DIR") or ".") .. "/?.lua"
require "events"
local pause = tonumber(os.getenv("DELAY_MS") or "20")
delay = function() return pause end
