#!/usr/bin/env bash
# Builds the Debian package: target/debian/sluice_<version>_<arch>.deb
# (prints its path last). Binaries from `cargo build --release`, stripped;
# man pages generated from the clap definitions (sluice(8), sluicectl(8))
# and from the commented configuration it installs (sluice.toml(5),
# scripts/lib/toml_man.py); completions from sluicectl; Depends from
# dpkg-shlibdeps plus the DPDK plugins and tools it loads at run time.
# Needs dpkg-dev (dpkg-shlibdeps); scripts/lib/deps.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
out=target/debian
root=$out/sluice
deb=$out/sluice_${version}_${arch}.deb

echo ">> package: building the release binaries" >&2
cargo build --release --locked -p sluice -p sluicectl >&2

rm -rf "$root" "$deb"
umask 022
install -d "$root/DEBIAN"
install -D -m 0755 target/release/sluice "$root/usr/bin/sluice"
install -D -m 0755 target/release/sluicectl "$root/usr/bin/sluicectl"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$root/usr/bin/sluice" "$root/usr/bin/sluicectl"

install -D -m 0644 packaging/sluice.toml "$root/etc/sluice/sluice.toml"
install -D -m 0644 packaging/sluice.service "$root/lib/systemd/system/sluice.service"

man=$root/usr/share/man
install -d "$man/man8" "$man/man5"
target/release/sluice --man | gzip -9n >"$man/man8/sluice.8.gz"
target/release/sluicectl man | gzip -9n >"$man/man8/sluicectl.8.gz"
python3 scripts/lib/toml_man.py packaging/sluice.toml "$version" | gzip -9n >"$man/man5/sluice.toml.5.gz"

comp=$root/usr/share
install -d "$comp/bash-completion/completions" "$comp/zsh/vendor-completions" \
    "$comp/fish/vendor_completions.d"
target/release/sluicectl completions bash >"$comp/bash-completion/completions/sluicectl"
target/release/sluicectl completions zsh >"$comp/zsh/vendor-completions/_sluicectl"
target/release/sluicectl completions fish >"$comp/fish/vendor_completions.d/sluicectl.fish"

doc=$root/usr/share/doc/sluice
install -D -m 0644 packaging/copyright "$doc/copyright"
gzip -9n <packaging/changelog >"$doc/changelog.gz"

for s in postinst prerm postrm; do
    install -m 0755 packaging/$s "$root/DEBIAN/$s"
done
echo /etc/sluice/sluice.toml >"$root/DEBIAN/conffiles"

# The shared libraries the binaries link, by package (dpkg-shlibdeps
# wants a debian/control to read, so it runs in a scratch directory).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/debian"
printf 'Source: sluice\n\nPackage: sluice\nArchitecture: any\n' >"$scratch/debian/control"
abs=$(pwd)/$root
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O "$abs/usr/bin/sluice" "$abs/usr/bin/sluicectl" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
# Loaded by the EAL as plugins, never linked: the ring mempool every pool
# uses, the null PMD of the installed configuration; and dpdk for
# dpdk-hugepages.py and dpdk-devbind.py (`sluice --prepare`), which also
# recommends the NIC drivers.
depends="$shlibs, librte-mempool-ring23, librte-net-null23, dpdk, adduser, init-system-helpers (>= 1.54~)"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)

cat >"$root/DEBIAN/control" <<CONTROL
Package: sluice
Version: $version
Architecture: $arch
Maintainer: Sluice developers <sluice@example.org>
Installed-Size: $size
Depends: $depends
Recommends: librte-net-af-packet23, librte-net-memif23, librte-net-pcap23, librte-net-tap23
Section: net
Priority: optional
Homepage: https://example.org/sluice
Description: layer-4 load balancer on DPDK
 Sluice owns the NICs of a dedicated machine and balances every connection
 to its virtual services (VIP:port, TCP or UDP) over real servers, by NAT
 or direct routing, IPv4 and IPv6, on every core: schedulers by weight,
 least connections, source hash and consistent hashing, persistence,
 health checks and server agents, a SYN proxy. sluicectl drives it over a
 Unix socket, as ipvsadm drives IPVS, and imports ipvsadm rules and
 keepalived configurations.
CONTROL

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z \
    | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles" "$root/DEBIAN/control"

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
