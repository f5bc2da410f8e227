-- RFC 2544 throughput through Sluice with pktgen-dpdk: a binary search for
-- the highest rate (percent of line rate) with zero loss (NDR) and with
-- under 0.5 % loss (PDR), for each frame size.
--
-- Port 0 sends to the VIP (set up with vip-64b-flows.pkt first, or the
-- `set` calls below); port 1 receives what Sluice forwards (DR mode, or NAT
-- toward a port-1 "real server" segment). Run:
--   pktgen -l 0-4 -n 4 -- -P -m "[1:2].0, [3:4].1" -f rfc2544.lua
-- Results are printed and written to rfc2544-results.csv.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local tx, rx = "0", "1"
local sizes = { 64, 128, 256, 512, 1024, 1280, 1518 }
local trial_ms = 10000      -- each trial: 10 s, as RFC 2544 asks (>= 60 s for reports)
local steps = 10            -- binary search steps
local pdr_loss = 0.005      -- 0.5 %

local function trial(rate)
    pktgen.clr()
    pktgen.set(tx, "rate", rate)
    pktgen.start(tx)
    pktgen.delay(trial_ms)
    pktgen.stop(tx)
    pktgen.delay(1000)      -- drain
    local s = pktgen.portStats(tx .. "," .. rx, "port")
    local sent = s[tonumber(tx)].opackets
    local got = s[tonumber(rx)].ipackets
    if sent == 0 then return 1.0 end
    return (sent - got) / sent
end

local function search(max_loss)
    local lo, hi, best = 0.0, 100.0, 0.0
    for _ = 1, steps do
        local mid = (lo + hi) / 2
        local loss = trial(mid)
        printf("  rate %6.2f%%  loss %.4f%%\n", mid, loss * 100)
        if loss <= max_loss then
            best, lo = mid, mid
        else
            hi = mid
        end
    end
    return best
end

local out = io.open("rfc2544-results.csv", "w")
out:write("size,ndr_percent,pdr_percent\n")
for _, size in ipairs(sizes) do
    pktgen.set(tx, "size", size)
    printf("frame size %d: NDR search\n", size)
    local ndr = search(0.0)
    printf("frame size %d: PDR search\n", size)
    local pdr = search(pdr_loss)
    printf("size %4d  NDR %6.2f%%  PDR %6.2f%%\n", size, ndr, pdr)
    out:write(string.format("%d,%.2f,%.2f\n", size, ndr, pdr))
end
out:close()
