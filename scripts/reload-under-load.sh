#!/usr/bin/env bash
# Reload under load: the shipped configuration (meridian.toml, zones/, the demo GeoIP
# database) served on 127.0.0.1, a steady dnsperf stream over static and dynamic names of
# example.com, and a reload every INTERVAL seconds, cycling through the three triggers:
#   1. zones/example.com.zone replaced by rename with the serial bumped (the file watcher
#      notices it within about 1.3 s and reloads),
#   2. POST /reload on the admin API,
#   3. SIGHUP.
# The same run without reloads is the baseline. Prints one table: reloads done (the server's
# own count, `meridian_reloads{result=...}` in /metrics), queries sent, completed and lost,
# response codes, and dnsperf's average and maximum latency.
# Figures only: nothing here passes or fails. Everything listens on 127.0.0.1 on free high
# ports, every load is bounded (-l, -Q), and the server is killed on exit.
#
# Usage: scripts/reload-under-load.sh
# Knobs (environment): RATE (queries/s, default 20000), SECS (seconds per run, default 60),
# INTERVAL (seconds between reloads, default 0.75), TIMEOUT (dnsperf's seconds before a
# query counts as lost, default 2), BIG_RECORDS (default 0: with N, a generated zone
# big.example of N A records is served beside the shipped ones, so every reload rebuilds
# and frees it too; the queries stay the same; give a larger INTERVAL, a reload of a
# million records takes seconds), UDP_THREADS (default: as shipped, 0 = one per core),
# OUTSTANDING (dnsperf -q, queries in flight, default RATE × TIMEOUT up to 60000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RATE=${RATE:-20000}
SECS=${SECS:-60}
INTERVAL=${INTERVAL:-0.75}
TIMEOUT=${TIMEOUT:-2}
BIG_RECORDS=${BIG_RECORDS:-0}
# Room for every query of TIMEOUT seconds in flight, so that a stalled server does not also
# stall the sender (resolvers do not wait for each other either); dnsperf's default is 100.
OUTSTANDING=${OUTSTANDING:-$(((RATE * TIMEOUT) < 60000 ? RATE * TIMEOUT : 60000))}

packages=()
command -v dnsperf >/dev/null || packages+=(dnsperf)
command -v dig >/dev/null || packages+=(bind9-dnsutils)
command -v curl >/dev/null || packages+=(curl)
install_packages "${packages[@]}"

echo "building meridian (release)..." >&2
cargo build --release --quiet --bin meridian
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MERIDIAN=$TARGET/release/meridian

WORK=$(mktemp -d /tmp/meridian-reload.XXXXXX)
PIDS=()
trap cleanup EXIT # lib.sh: kills PIDS, removes WORK

# ---------------------------------------------------------------------------------------
# The shipped configuration, on other ports

free_port
PORT=$FREE_PORT
free_port
API=$FREE_PORT
cp -r zones "$WORK/zones"
sed -e "s|^listen = \\[.*|listen = [\"127.0.0.1:$PORT\"]|" \
    -e "s|^listen = \"127.0.0.1:8053\"|listen = \"127.0.0.1:$API\"|" \
    -e "s|\"geoip/demo-city.mmdb\"|\"$ROOT/geoip/demo-city.mmdb\"|" \
    meridian.toml >"$WORK/meridian.toml"
if [ -n "${UDP_THREADS:-}" ]; then
    sed -i "s|^udp_threads = .*|udp_threads = $UDP_THREADS|" "$WORK/meridian.toml"
fi
# The api pool's demo check polls the admin API's /health: follow it to its new port.
sed -i "s|^port = 8053$|port = $API|" "$WORK/zones/example.com.toml"
if ! grep -q "127.0.0.1:$PORT" "$WORK/meridian.toml" || ! grep -q "127.0.0.1:$API" "$WORK/meridian.toml" ||
    ! grep -q "^port = $API$" "$WORK/zones/example.com.toml"; then
    echo "meridian.toml or zones/example.com.toml changed shape: cannot move the ports" >&2
    exit 1
fi
if [ "$BIG_RECORDS" -gt 0 ]; then
    awk -v n="$BIG_RECORDS" 'BEGIN {
        printf "$ORIGIN big.example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 300\n"
        printf "@ IN NS ns1\nns1 IN A 192.0.2.1\n"
        for (i = 0; i < n - 3; i++) printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
    }' >"$WORK/zones/big.example.zone"
fi
ZONEFILE=$WORK/zones/example.com.zone
SERIAL=$(awk '/; serial/ { print $1; exit }' "$ZONEFILE")
[ -n "$SERIAL" ] || {
    echo "no '; serial' line in zones/example.com.zone" >&2
    exit 1
}

# Names of example.com and its child: static data (every type in the zone, CNAME, wildcard,
# DNAME, empty non-terminal, referral, child zone, NXDOMAIN) and every dynamic name (A and
# AAAA); shuffled with a fixed seed.
{
    for q in "example.com SOA" "example.com NS" "example.com MX" "example.com TXT" \
        "example.com CAA" "example.com A" "example.com AAAA" "ns1.example.com A" \
        "ns1.example.com AAAA" "ns2.example.com A" "mail.example.com A" "static.example.com A" \
        "static.example.com AAAA" "alias.example.com A" "docs.example.com A" \
        "_sip._udp.example.com SRV" "foo.apps.example.com A" "bar.apps.example.com A" \
        "host.example.com HINFO" "host.example.com SSHFP" "_443._tcp.static.example.com TLSA" \
        "svc.example.com HTTPS" "x.old.example.com A" "t.x.example.com TXT" "x.example.com A" \
        "www.sub.example.com A" "sub.example.com DS" "nothing.example.com A" \
        "nothing.sub.example.com A"; do
        echo "$q"
    done
    for n in www near fast api spread db assets; do
        for _ in 1 2 3; do echo "$n.example.com A"; done
        echo "$n.example.com AAAA"
    done
} | awk 'BEGIN { srand(7) } { print rand() "\t" $0 }' | sort -n | cut -f2- >"$WORK/queries.txt"
QUERY_NAMES=$(wc -l <"$WORK/queries.txt")

# ---------------------------------------------------------------------------------------
# Runs

start() {
    "$MERIDIAN" serve --config "$WORK/meridian.toml" >"$WORK/meridian.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    local start=$SECONDS
    while ((SECONDS - start < 60)); do
        # DNS sockets are bound before the API's: wait for both.
        if [ -n "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" example.com SOA 2>/dev/null)" ] &&
            curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$API/health" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "meridian did not answer DNS and /health within 60 s; log:" >&2
    tail -20 "$WORK/meridian.log" >&2
    exit 1
}

reloads() {
    # meridian_reloads{result="$1"} from /metrics.
    curl -sS --max-time 5 "http://127.0.0.1:$API/metrics" |
        awk -v r="$1" '$1 == "meridian_reloads{result=\"" r "\"}" { print $2 }'
}

# Triggers a reload every INTERVAL seconds until $1 (a file) exists; counts each kind.
reload_loop() {
    local i=0 file=0 api=0 hup=0 code
    while [ ! -e "$1" ]; do
        sleep "$INTERVAL"
        case $((i % 3)) in
        0)
            # The zone file replaced by rename, as editors and git do, with the serial bumped.
            SERIAL=$((SERIAL + 1))
            rewrite_zone "$ZONEFILE" sed "s|^\\( *\\)[0-9]* ; serial|\\1$SERIAL ; serial|"
            file=$((file + 1))
            ;;
        1)
            code=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$API/reload" || true)
            [ "$code" = 200 ] || echo "  POST /reload answered $code" >&2
            api=$((api + 1))
            ;;
        2)
            kill -HUP "$PID"
            hup=$((hup + 1))
            ;;
        esac
        i=$((i + 1))
    done
    echo "$file $api $hup" >"$WORK/triggers"
}

# Datagrams the server's UDP sockets dropped for want of receive buffer (ss: skmem d).
server_drops() {
    ss -Huanm "sport = :$PORT" | grep -o ',d[0-9]*)' | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }'
}

# The host's UDP receive-buffer drops (every socket: the server's and dnsperf's).
host_drops() { awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp; }

field() {
    # A figure from dnsperf's report $1: "sent", "completed", "lost", "avg", "max", "codes".
    case $2 in
    sent) awk '/Queries sent:/ { print $3 }' "$1" ;;
    completed) awk '/Queries completed:/ { print $3 }' "$1" ;;
    lost) awk '/Queries lost:/ { print $3 }' "$1" ;;
    qps) awk '/Queries per second:/ { printf "%.0f", $4 }' "$1" ;;
    avg) awk '/Average Latency/ { printf "%.3f", $4 * 1000 }' "$1" ;;
    max) awk '/Average Latency/ { gsub(/\)/, "", $8); printf "%.1f", $8 * 1000 }' "$1" ;;
    codes) sed -n 's/.*Response codes: *//p' "$1" ;;
    esac
}

declare -A R
run() {
    local name=$1 with_reloads=$2 ok0 failed0 sd0 hd0
    echo "run: $name ($SECS s at $RATE q/s)" >&2
    start
    ok0=$(reloads ok)
    failed0=$(reloads failed)
    sd0=$(server_drops)
    hd0=$(host_drops)
    rm -f "$WORK/done" "$WORK/triggers"
    if [ "$with_reloads" = 1 ]; then
        reload_loop "$WORK/done" &
        LOOP=$!
    fi
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -Q "$RATE" -l "$SECS" -t "$TIMEOUT" \
        -q "$OUTSTANDING" >"$WORK/perf.$name" 2>&1 || true
    touch "$WORK/done"
    if [ "$with_reloads" = 1 ]; then
        wait "$LOOP"
        # The last file change may still be on its way through the watcher.
        sleep 2
        local file api hup
        read -r file api hup <"$WORK/triggers"
        R[$name.file]=$file
        R[$name.api]=$api
        R[$name.hup]=$hup
    fi
    R[$name.sdrops]=$(($(server_drops) - sd0))
    R[$name.hdrops]=$(($(host_drops) - hd0))
    R[$name.ok]=$(($(reloads ok) - ok0))
    R[$name.failed]=$(($(reloads failed) - failed0))
    for f in sent completed lost qps avg max codes; do R[$name.$f]=$(field "$WORK/perf.$name" $f); done
    echo "  sent ${R[$name.sent]}, completed ${R[$name.completed]}, lost ${R[$name.lost]}," \
        "avg ${R[$name.avg]} ms, max ${R[$name.max]} ms; reloads ok ${R[$name.ok]}, failed ${R[$name.failed]};" \
        "receive-buffer drops: server ${R[$name.sdrops]}, host ${R[$name.hdrops]}" >&2
    if grep -qE 'ERROR|WARN|panicked' "$WORK/meridian.log"; then
        echo "  warnings and errors in the server log:" >&2
        grep -E 'ERROR|WARN|panicked' "$WORK/meridian.log" | head -10 >&2
    fi
    stop_process "$PID"
}

run baseline 0
run reloads 1

# ---------------------------------------------------------------------------------------
# The table

echo
big=""
[ "$BIG_RECORDS" -gt 0 ] && big=", plus big.example with $BIG_RECORDS A records (not queried)"
echo "Shipped zones (example.com with its dynamic names, sub.example.com$big), $QUERY_NAMES query names"
echo "(static, CNAME, wildcard, DNAME, referral, NXDOMAIN, 7 dynamic names), $RATE q/s for $SECS s;"
echo "reload every $INTERVAL s cycling zone file replaced by rename / POST /reload / SIGHUP;"
echo "at most $OUTSTANDING queries in flight; a query unanswered after $TIMEOUT s is lost; $(awk '/^udp_threads/ { print $3 }' "$WORK/meridian.toml") UDP threads (0: one per core). $(nproc) cores, $(date -u +%Y-%m-%d)."
echo
echo "Dropped: UDP receive-buffer drops at the server's sockets / on the whole host (the server's"
echo "and dnsperf's sockets and anything else running)."
echo
echo "| run | reloads ok (failed) | triggers: file / API / HUP | queries sent | completed | lost | dropped: server / host | response codes | avg latency ms | max latency ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for name in baseline reloads; do
    trig="–"
    [ "$name" = reloads ] && trig="${R[$name.file]:--} / ${R[$name.api]:--} / ${R[$name.hup]:--}"
    echo "| $([ "$name" = baseline ] && echo "no reloads" || echo "reloads") | ${R[$name.ok]} (${R[$name.failed]}) | $trig | ${R[$name.sent]} | ${R[$name.completed]} | ${R[$name.lost]} | ${R[$name.sdrops]} / ${R[$name.hdrops]} | ${R[$name.codes]} | ${R[$name.avg]} | ${R[$name.max]} |"
done
