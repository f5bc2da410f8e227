-- RFC 2544 throughput through Sluice with pktgen-dpdk 23.06: for each
-- frame size, a binary search for the highest rate with zero loss (NDR)
-- and with loss under 0.5 % (PDR). Port 0 sends single-flow UDP to the
-- VIP (this script sets every field itself: run it alone); port 1 stands
-- in for the real servers (it answers Sluice's ARP for them) and counts
-- what Sluice forwards.
--
-- Run it from anywhere (it needs no module from pktgen's source tree):
--   pktgen -l 0-4 -n 4 -- -P -m "[1:2].0, [3:4].1" -f rfc2544.lua
-- Settings from the environment (defaults in brackets): RFC2544_SIZES
-- [64,128,256,512,1024,1280,1518], RFC2544_TRIAL seconds per trial [10;
-- RFC 2544 asks >= 60 for a report], RFC2544_STEPS per search [12],
-- RFC2544_CSV [rfc2544-results.csv], RFC2544_QUIT=1 quits pktgen at the
-- end. Each trial's counts come from the ports' own counters, so loss
-- before pktgen sees a packet (imissed, ierrors, rx_nombuf on port 1) is
-- reported beside it; pps and Mbit/s are what port 1 received (Mbit/s of
-- frames with FCS, without preamble and gap).

-- EDIT: Sluice's client-port MAC, the VIP and its port.
local dst_mac, vip, vport = "02:00:00:00:00:01", "192.0.2.100", 80

local tx, rx = "0", "1"
local function printf(...)
    io.write(string.format(...))
    io.flush()
end
local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end
local sizes = {}
for s in string.gmatch(env("RFC2544_SIZES", "64,128,256,512,1024,1280,1518"), "%d+") do
    sizes[#sizes + 1] = tonumber(s)
end
local trial_s = tonumber(env("RFC2544_TRIAL", "10"))
local steps = tonumber(env("RFC2544_STEPS", "14"))
local csv_path = env("RFC2544_CSV", "rfc2544-results.csv")
local pdr_loss = 0.005

-- Single-packet mode, every field set here.
pktgen.stop("all")
pktgen.set_range(tx, "off")
pktgen.set(tx, "seq_cnt", 0)
pktgen.set_type(tx, "ipv4")
pktgen.set_proto(tx, "udp")
pktgen.set_mac(tx, "dst", dst_mac)
pktgen.set_ipaddr(tx, "dst", vip)
pktgen.set_ipaddr(tx, "src", "198.18.0.1/15")
pktgen.set(tx, "dport", vport)
pktgen.set(tx, "sport", 1024)
pktgen.process(rx, "on")

local function counters(pid)
    return pktgen.portStats(tostring(pid), "port")[pid]
end

-- One trial at `rate` percent of line rate: what port 0 sent and port 1
-- received, and port 1's own drops, over `trial_s` seconds.
local function trial(rate)
    pktgen.set(tx, "rate", rate)
    pktgen.clr()
    pktgen.delay(200)
    pktgen.start(tx)
    pktgen.delay(trial_s * 1000)
    pktgen.stop(tx)
    pktgen.delay(1000) -- stragglers
    local s, r = counters(0), counters(1)
    local sent, got = s.opackets, r.ipackets
    local loss = 1.0
    if sent > 0 then loss = math.max(0, sent - got) / sent end
    return {
        rate = rate, sent = sent, got = got, loss = loss,
        missed = r.imissed, errors = r.ierrors, nombuf = r.rx_nombuf,
    }
end

-- Port 0's link speed in Mbit/s, from pktgen's "<UP-10000-FD>" (10 Gbit/s
-- when the driver reports none, as pktgen itself assumes).
local function link_mbps()
    local state = pktgen.linkState(tx)[tonumber(tx)] or ""
    local mbps = tonumber(string.match(state, "UP%-(%d+)") or "0") or 0
    if mbps == 0 then mbps = 10000 end
    return mbps
end

-- Frames per second at 100 % of line rate: each frame (`size` with FCS)
-- plus 20 bytes of preamble and gap.
local function line_pps(size)
    return link_mbps() * 1e6 / ((size + 20) * 8)
end

-- The highest passing rate. A trial at 100 % first. While nothing has
-- passed, each failure is followed by the lower of half its rate and
-- just under what the device under test carried in it (received pps as
-- a share of line rate), so the search reaches the answer in a few steps
-- even when it is a thousandth of line rate; then it bisects between the
-- highest passing and the lowest failing rate until they are within 1 %
-- of each other, or `steps` trials have run.
local function search(size, max_loss, floor)
    local best, lo, hi = nil, floor, 100.0
    local rate = hi
    for _ = 1, steps do
        local t = trial(rate)
        printf("  size %4d  rate %8.4f%%  sent %d  received %d  loss %.4f%%\n",
            size, rate, t.sent, t.got, t.loss * 100)
        if t.loss <= max_loss then
            best, lo = t, rate
            if rate >= 100.0 then break end
        else
            hi = rate
        end
        if best ~= nil and hi - lo <= 0.01 * hi then break end
        if best == nil then
            local carried = 100.0 * (t.got / trial_s) / line_pps(size)
            rate = math.max(lo, math.min(rate / 2, carried * 0.95))
        else
            rate = (lo + hi) / 2
        end
    end
    return best
end

local out = assert(io.open(csv_path, "w"))
out:write("size,goal,rate_percent,rx_pps,rx_mbps,tx_pps,loss_percent,port1_imissed,port1_ierrors,port1_rx_nombuf\n")
local function row(size, goal, t)
    if t == nil then
        out:write(string.format("%d,%s,none,,,,,,,\n", size, goal))
        printf("size %4d  %s: no passing rate above the search's floor\n", size, goal)
        return
    end
    local rx_pps, tx_pps = t.got / trial_s, t.sent / trial_s
    local mbps = rx_pps * size * 8 / 1e6
    out:write(string.format("%d,%s,%.3f,%.0f,%.1f,%.0f,%.4f,%d,%d,%d\n", size, goal, t.rate,
        rx_pps, mbps, tx_pps, t.loss * 100, t.missed, t.errors, t.nombuf))
    printf("size %4d  %s %7.3f%%  %.0f pps  %.1f Mbit/s  loss %.4f%%\n", size, goal, t.rate,
        rx_pps, mbps, t.loss * 100)
end

for _, size in ipairs(sizes) do
    pktgen.set(tx, "size", size)
    printf("frame size %d: NDR (zero loss)\n", size)
    local ndr = search(size, 0.0, 0.0)
    row(size, "ndr", ndr)
    printf("frame size %d: PDR (loss < 0.5 %%)\n", size)
    local pdr = search(size, pdr_loss, ndr and ndr.rate or 0.0)
    row(size, "pdr", pdr or ndr)
    out:flush()
end
out:close()
printf("results: %s\n", csv_path)
if env("RFC2544_QUIT", "0") == "1" then pktgen.quit() end
