-- perf/pktgen/report.lua: run after a command file (pktgen ... -f X.pkt
-- -f report.lua) to measure it without reading the screen. It lets the
-- traffic run PKTGEN_SECONDS (default 10), stops it, and writes each
-- port's counters to PKTGEN_REPORT (default pktgen-report.txt): what was
-- sent and received, and what the port itself dropped before pktgen saw
-- it (imissed, ierrors, rx_nombuf: loss on the wire or in the receive
-- ring, not in the device under test). Then it quits pktgen.

local seconds = tonumber(os.getenv("PKTGEN_SECONDS") or "10")
local path = os.getenv("PKTGEN_REPORT") or "pktgen-report.txt"

pktgen.clr()
pktgen.delay(seconds * 1000)
pktgen.stop("all")
pktgen.delay(1000)

local f = assert(io.open(path, "w"))
f:write(string.format("seconds %d\n", seconds))
for pid = 0, 1 do
    local s = pktgen.portStats(tostring(pid), "port")[pid]
    local p = pktgen.pktStats(tostring(pid))[pid]
    local lat = p.latency or {}
    f:write(string.format(
        "port %d opackets %d obytes %d ipackets %d ibytes %d imissed %d ierrors %d rx_nombuf %d " ..
        "latency_packets %d latency_min_us %s latency_avg_us %s latency_max_us %s\n",
        pid, s.opackets, s.obytes, s.ipackets, s.ibytes, s.imissed, s.ierrors, s.rx_nombuf,
        lat.num_pkts or 0, tostring(lat.min_us or "-"), tostring(lat.avg_us or "-"),
        tostring(lat.max_us or "-")))
end
f:close()
pktgen.quit()
