#!/usr/bin/env bash
# Builds the Debian package with dpkg-deb (no extra tools): target/deb/meridian_<version>_<arch>.deb
# holding /usr/bin/meridian, the systemd unit, a default config and the example zones under
# /etc/meridian (conffiles), the demo GeoIP database, and maintainer scripts that create the
# `meridian` system user and /var/lib/meridian. The unit grants CAP_NET_BIND_SERVICE for
# port 53. Prints the package's path.
#
#   scripts/build-deb.sh                 builds meridian (release) first
#   MERIDIAN=path/to/meridian scripts/build-deb.sh    packages that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ -z "${MERIDIAN:-}" ]; then
    cargo build --release --quiet --bin meridian
    MERIDIAN=${CARGO_TARGET_DIR:-$root/target}/release/meridian
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
out=${OUT_DIR:-$root/target/deb}
tree=$(mktemp -d)
chmod 0755 "$tree"
trap 'rm -rf "$tree"' EXIT

install -D -m 0755 "$MERIDIAN" "$tree/usr/bin/meridian"
strip --strip-debug "$tree/usr/bin/meridian" 2>/dev/null || true
sed -e 's|/usr/local/bin/meridian|/usr/bin/meridian|g' \
    -e 's|^Documentation=.*|Documentation=file:///usr/share/doc/meridian/README.md|' \
    dist/meridian.service >"$tree/meridian.service"
install -D -m 0644 "$tree/meridian.service" "$tree/lib/systemd/system/meridian.service"
rm "$tree/meridian.service"
install -D -m 0644 dist/deb/meridian.toml "$tree/etc/meridian/meridian.toml"
mkdir -p "$tree/etc/meridian/zones/health"
for f in zones/*; do [ -f "$f" ] && install -m 0644 "$f" "$tree/etc/meridian/zones/"; done
for f in zones/health/*; do install -m 0644 "$f" "$tree/etc/meridian/zones/health/"; done
install -D -m 0644 geoip/demo-city.mmdb "$tree/usr/share/meridian/geoip/demo-city.mmdb"
install -D -m 0644 README.md "$tree/usr/share/doc/meridian/README.md"
install -D -m 0644 dist/anycast/bird-site.conf "$tree/usr/share/doc/meridian/anycast/bird-site.conf"
install -D -m 0755 dist/anycast/meridian-anycast-gate "$tree/usr/share/doc/meridian/anycast/meridian-anycast-gate"
install -D -m 0644 dist/grafana-meridian.json "$tree/usr/share/doc/meridian/grafana-meridian.json"

mkdir -p "$tree/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    dist/deb/control.in >"$tree/DEBIAN/control"
install -m 0755 dist/deb/postinst dist/deb/prerm dist/deb/postrm "$tree/DEBIAN/"
(cd "$tree" && find etc -type f | sed 's|^|/|' | sort) >"$tree/DEBIAN/conffiles"

mkdir -p "$out"
deb="$out/meridian_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$tree" "$deb" >/dev/null
echo "$deb"
