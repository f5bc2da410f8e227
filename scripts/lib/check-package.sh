#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh) and checks it as an
# operator would meet it: its contents (dpkg-deb -c), lintian with no
# error, `dpkg -i`, `sluice --check` on the installed configuration, the
# man pages rendering (man -l), `systemd-analyze verify` on the unit, and
# the installed daemon serving the sluiceadm group on its control socket
# until `sluicectl shutdown`. A package that was not installed before is
# purged afterwards, also on failure. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "!! package: $*" >&2
    exit 1
}

deb=$(scripts/package.sh | tail -1)
[[ -f "$deb" ]] || fail "scripts/package.sh built nothing"

echo ">> package: contents"
listing=$(dpkg-deb -c "$deb")
for path in ./usr/bin/sluice ./usr/bin/sluicectl ./etc/sluice/sluice.toml \
    ./lib/systemd/system/sluice.service ./usr/share/man/man8/sluice.8.gz \
    ./usr/share/man/man8/sluicectl.8.gz ./usr/share/man/man5/sluice.toml.5.gz \
    ./usr/share/bash-completion/completions/sluicectl \
    ./usr/share/zsh/vendor-completions/_sluicectl \
    ./usr/share/fish/vendor_completions.d/sluicectl.fish \
    ./usr/share/doc/sluice/copyright; do
    grep -q " $path\$" <<<"$listing" || fail "$path is not in the package"
done
dpkg-deb -f "$deb" Depends | grep -q 'librte-eal23' || fail "Depends does not name the DPDK libraries"
grep -qx /etc/sluice/sluice.toml < <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) \
    || fail "/etc/sluice/sluice.toml is not a conffile"

echo ">> package: lintian"
lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian found errors"

was_installed=0
dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q "ok installed" && was_installed=1
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [[ $was_installed -eq 0 ]]; then
        dpkg --purge sluice >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

echo ">> package: dpkg -i"
dpkg -i "$deb" || fail "dpkg -i failed"
getent group sluiceadm >/dev/null || fail "no sluiceadm group after installing"

echo ">> package: sluice --check on the installed configuration"
/usr/bin/sluice --check --config /etc/sluice/sluice.toml || fail "sluice --check refused /etc/sluice/sluice.toml"

echo ">> package: man pages"
for page in /usr/share/man/man8/sluice.8.gz /usr/share/man/man8/sluicectl.8.gz \
    /usr/share/man/man5/sluice.toml.5.gz; do
    text=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page failed"
    grep -q '^NAME' <<<"$text" || fail "$page renders without a NAME section"
    grep -qi 'warning' <<<"$text" && fail "$page renders with warnings: $text"
done

echo ">> package: systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/sluice.service || fail "systemd-analyze verify failed"

echo ">> package: the installed daemon, reached by the sluiceadm group"
[[ -e /run/sluice/sluice.sock ]] && fail "a sluice already runs on /run/sluice/sluice.sock"
/usr/bin/sluice --config /etc/sluice/sluice.toml >target/test-logs/package-daemon.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    [[ -S /run/sluice/sluice.sock ]] && /usr/bin/sluicectl status >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "the installed daemon exited: $(cat target/test-logs/package-daemon.log)"
    sleep 0.1
done
[[ $(stat -c '%G %a' /run/sluice/sluice.sock) == "sluiceadm 660" ]] \
    || fail "the control socket is $(stat -c '%G %a' /run/sluice/sluice.sock), not sluiceadm 660"
runuser -u nobody -g sluiceadm -- /usr/bin/sluicectl status | grep -q '^sluice ' \
    || fail "a sluiceadm member cannot use sluicectl"
if runuser -u nobody -- /usr/bin/sluicectl status >/dev/null 2>&1; then
    fail "a user outside sluiceadm reached the control socket"
fi
/usr/bin/sluicectl shutdown >/dev/null || fail "sluicectl shutdown failed"
for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the installed daemon did not stop"
wait "$pid" || fail "the installed daemon exited with $?: $(cat target/test-logs/package-daemon.log)"
pid=""
echo ">> package: ok ($deb)"
