-- pipeline.lua: wrk script for bench/http/http_load.py's pipelined mode: every write carries
-- DEPTH GET /plaintext requests back to back (wrk -s pipeline.lua URL -- DEPTH; default 16)
-- and the next batch goes once all DEPTH responses are in. Loads report.lua from its own folder
-- for the done() hook.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local one = wrk.format("GET", "/plaintext")
   batch = string.rep(one, depth)
end

function request()
   return batch
end
