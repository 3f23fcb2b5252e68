#!/usr/bin/env bash
# Installs what the tests need (Debian packages), then runs every test.
# This is the README's test command; .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

packages=(knot nsd gdnsd dnsperf bind9-dnsutils knot-dnsutils etcd-server bird2 curl iproute2 python3 prometheus fstrm-bin git chromium bind9-utils ldnsutils knot-dnssecutils unbound)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_packages "${missing[@]}"

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run, summed over every test binary. A test whose tool is
# missing passes after printing a SKIPPED line (outside CI): those are repeated and counted.
grep '^SKIPPED:' "$log" || true
awk '/^test result:/ { p += $4; f += $6; s += $8 } /^SKIPPED:/ { k += 1 }
    END { printf "all tests: %d passed, %d failed, %d skipped (%d of the passed skipped their checks: tool missing)\n", p, f, s, k }' "$log"
exit "$status"
