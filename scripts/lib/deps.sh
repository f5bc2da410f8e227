#!/usr/bin/env bash
# Installs what Sluice needs to build, test and demo on Debian 12, and
# nothing that is already there. Sourced or run by test.sh and demo.sh.
set -euo pipefail

SLUICE_APT_PACKAGES=(
    # build: DPDK 22.11 headers and shared libraries, bindgen's libclang
    pkg-config libdpdk-dev libclang-dev clang gcc
    # DPDK's tools: dpdk-hugepages.py and dpdk-devbind.py (dpdk);
    # dpdk-testpmd, dpdk-dumpcap and dpdk-telemetry.py (dpdk-dev)
    dpdk dpdk-dev
    # the net_pcap driver plugin's library
    libpcap0.8
    # test and demo hosts: namespaces, offload switches, real clients
    iproute2 ethtool iputils-ping arping ncat curl python3 procps
    # coreutils' timeout bounds every command the tests run; setpriv
    # (util-linux) runs sluicectl as an unprivileged user
    coreutils util-linux
    # promtool checks the metrics exposition; tmux drives `sluicectl top`
    prometheus tmux
    # real web servers behind the appliance in the health tests, and the
    # load the churn test drives through it
    nginx wrk
    # the hostile-traffic corpus: scapy crafts the frames (for Debian's
    # /usr/bin/python3), tshark captures what reaches the real
    python3-scapy tshark
    # the SYN flood the SYN proxy is tested against (spoofed sources)
    hping3
    # packet loss in a router namespace (the kernel here has no netem):
    # the PROXY protocol test drops 5 % of what a router forwards
    nftables
    # instructions per packet, counted (perf/icount.py, run by test.sh)
    valgrind
    # the sample configurations `sluicectl import keepalived` is tested on
    keepalived
    # the Debian package (scripts/package.sh) and its checks: dpkg-shlibdeps,
    # lintian, man -l, systemd-analyze verify, the package's own Depends
    dpkg dpkg-dev binutils gzip lintian man-db systemd adduser init-system-helpers
    librte-mempool-ring23 librte-net-null23
    # luac5.3 checks the pktgen Lua scripts' syntax (pktgen itself is built
    # by hand, perf/README.md)
    lua5.3
    # the BGP daemon Sluice drives (announce and withdraw its VIPs), on the
    # appliances and the upstream router of the scale-out test
    bird2
)

missing=()
for p in "${SLUICE_APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    echo ">> installing: ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        SUDO=sudo
    else
        SUDO=
    fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
        [[ -x "$d/cargo" ]] && export PATH="$d:$PATH"
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: no Rust toolchain (cargo) found; install Rust 1.88 or newer (https://rustup.rs)" >&2
    exit 1
fi
# The workspace's rust-version (Cargo.toml): what its dependencies need.
rust_minor=$(rustc --version 2>/dev/null | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [[ "$rust_minor" =~ ^[0-9]+$ && "$rust_minor" -lt 88 ]]; then
    echo "error: $(rustc --version) is older than Rust 1.88, which the workspace needs (rust-version in Cargo.toml)" >&2
    exit 1
fi

# The fuzzer driver, only for scripts/fuzz.sh (SLUICE_DEPS_FUZZ=1): the
# test suite replays the fuzz corpora with plain `cargo test`.
if [[ ${SLUICE_DEPS_FUZZ:-0} == 1 ]] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo ">> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
