# Helpers for the scripts that run sluice in network namespaces
# (scripts/demo.sh, perf/pktgen/lab.sh). Sourced; they use no globals.

# stop_daemon PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_daemon() {
    local pid=$1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

# delete_netns NS...: kills what still runs in each namespace, deletes it.
delete_netns() {
    local ns p
    for ns in "$@"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# wait_for_sluice CTL SOCK PID LOG: until the daemon's control socket
# answers `status` (30 s at most); if the daemon exits first or the time
# runs out, prints its log and fails.
wait_for_sluice() {
    local ctl=$1 sock=$2 pid=$3 log=$4
    for _ in $(seq 1 300); do
        [[ -S "$sock" ]] && "$ctl" --socket "$sock" status >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    echo "sluice did not start" >&2
    return 1
}
