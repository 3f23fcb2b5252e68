#!/usr/bin/env bash
# meridian next to gdnsd, Knot DNS and a bare recvmmsg/sendmmsg echo (the floor): the same
# zone, the same geo map over the same GeoIP database, the same mixed query stream.
#
# Prints, for each server and for queries without and with an ECS option:
#   - CPU per query (µs): every server running at once, pinned to core 1, dnsperf on core 0
#     loading one at a time at a fixed offered load; CPU = on-CPU time of all the server's
#     threads (/proc/PID/task/*/schedstat) before/after, divided by queries answered; rounds
#     rotate the order, and each figure is also divided by the echo floor's of its round;
#   - userspace instructions per query: the server under valgrind --tool=callgrind, counters
#     zeroed after start-up (callgrind_control -z) and dumped after the load (-d), at a low
#     rate (valgrind is slow);
#   - resident memory after the CPU run (VmRSS) and its peak (VmHWM);
#   - start to ready: from starting each server to its first answer, and its peak RSS by then;
#   - reloads: of unchanged zones, and after the database changed (meridian: touched, then
#     POST /reload; both: a fresh copy renamed over it, timed until the log says the new
#     data serves, with the CPU the reload used).
# Figures only: nothing here passes or fails. Everything listens on 127.0.0.1 and stops by
# itself (every load is bounded in count and time; servers are killed on exit).
#
# Knot is served without geo (its geoip module is a separate Debian package): its geo names
# are static records, so its row is a static-only reference.
#
# Usage: scripts/bench-compare.sh
# Knobs (environment): RATE (queries/s, default 20000), SECS (per CPU run, default 3), CG_QUERIES
# (callgrind queries per run, default 20000; 0 skips callgrind), CG_MISS_QUERIES (per cache-miss
# workload: a random ECS /24, a random label under a wildcard, a random NXDOMAIN; default
# 10000, 0 skips them), CG_RATE (default 2000), SERVERS (default
# "echo meridian gdnsd knot"), MMDB (default geoip/demo-city.mmdb), ECS_RUNS ("0 1 miss":
# without ECS, with it, and the miss mix: every query a name never asked before, half of them
# nonexistent, half random labels under the wildcard, fresh names each round; also
# "cookie": the mixed stream with a client cookie in every query),
# ALT_CONFIG (TOML appended to the alt server's meridian.toml, \n for newlines: the cost of
# a feature, e.g. '[query_log]\nformat = "dnstap"\npath = "/tmp/t.dnstap"\nsample = 10'),
# CG_KEEP (a directory: keep the callgrind profiles there for callgrind_annotate), CG_ARGS
# (more valgrind options, e.g. --dump-instr=yes for costs per instruction, or
# '--collect-atstart=no --toggle-collect=*net*udp*serve*' to count the UDP threads only:
# without the background threads, a binary measured twice gives the same miss figures, for
# exact A/B runs), ROUNDS
# (CPU runs per server, interleaved; the table shows medians and quartiles, default 25), ALT_MERIDIAN (a
# second meridian binary, measured as server "alt" with the same configuration: A/B tests),
# START_CORES (1, the default: each server starts pinned to core 1, as it then runs; all:
# it starts on every core, for a server that loads with several threads),
# DNSSEC (1: the zone signed, meridian by its own key, Knot by its automatic signing; every
# query with DO, the cache-miss workloads too; gdnsd left out, it does not sign).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RATE=${RATE:-20000}
SECS=${SECS:-3}
CG_QUERIES=${CG_QUERIES:-20000}
CG_RATE=${CG_RATE:-2000}
CG_MISS_QUERIES=${CG_MISS_QUERIES:-10000}
DNSSEC=${DNSSEC:-0}
if [ "$DNSSEC" = 1 ]; then SERVERS=${SERVERS:-"echo meridian knot"}; fi
SERVERS=${SERVERS:-"echo meridian gdnsd knot"}
ROUNDS=${ROUNDS:-25}
ALT_MERIDIAN=${ALT_MERIDIAN:-}
MMDB=$(realpath "${MMDB:-geoip/demo-city.mmdb}")
ECS_RUNS=${ECS_RUNS:-"0 1 miss"}
START_CORES=${START_CORES:-1}
# ECS option for "with ECS" runs: family 1, source /24, scope 0, 81.2.69.0 (London in the
# demo database).
ECS_OPT="8:00011800510245"
# A client cookie alone (code 10, 8 bytes): what a resolver sends on first contact, and
# dnsperf sends the same one every time.
COOKIE_OPT="10:0102030405060708"

# ---------------------------------------------------------------------------------------
# Tools

packages=()
command -v gdnsd >/dev/null || [ -x /usr/sbin/gdnsd ] || packages+=(gdnsd)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || packages+=(knot)
command -v dnsperf >/dev/null || packages+=(dnsperf)
command -v valgrind >/dev/null || packages+=(valgrind)
install_packages "${packages[@]}"
GDNSD=$(command -v gdnsd || echo /usr/sbin/gdnsd)
GDNSDCTL=$(command -v gdnsdctl || echo /usr/bin/gdnsdctl)
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)

echo "building meridian and the echo floor (release)..." >&2
cargo build --release --quiet --bin meridian --example udp-echo
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MERIDIAN=$TARGET/release/meridian
ECHO=$TARGET/release/examples/udp-echo

WORK=$(mktemp -d /tmp/meridian-bench.XXXXXX)
PIDS=()
trap cleanup EXIT # lib.sh: kills PIDS, removes WORK

# ---------------------------------------------------------------------------------------
# One zone, one geo map, one query mix

ZONE=bench.example
DCS=(fra lon nyc sjc sin syd gru)
declare -A V4=([fra]=192.0.2.11 [lon]=192.0.2.21 [nyc]=198.51.100.31 [sjc]=198.51.100.41
    [sin]=203.0.113.51 [syd]=203.0.113.61 [gru]=203.0.113.71)
declare -A V6=([fra]=2001:db8:f::11 [lon]=2001:db8:1::21 [nyc]=2001:db8:3::31
    [sjc]=2001:db8:4::41 [sin]=2001:db8:5::51 [syd]=2001:db8:6::61 [gru]=2001:db8:7::71)
# Geo map: key (continent[/country[/subdivision]]) → datacenter order.
MAP_KEYS=(EU EU/GB NA NA/US/CA AS OC SA AF)
declare -A MAP=([EU]="fra lon nyc" [EU/GB]="lon fra" [NA]="nyc sjc fra" [NA/US/CA]="sjc nyc"
    [AS]="sin syd fra" [OC]="syd sin" [SA]="gru nyc" [AF]="fra lon")
DEFAULT="fra nyc sin"
GEO_NAMES=10
HOSTS=50

static_records() {
    cat <<EOF
\$ORIGIN $ZONE.
\$TTL 300
@       IN SOA  ns1 hostmaster 2026010101 3600 600 1209600 60
@       IN NS   ns1
@       IN NS   ns2
@       IN MX   10 mail
@       IN MX   20 mail2
@       IN A    192.0.2.10
@       IN AAAA 2001:db8::10
ns1     IN A    192.0.2.1
ns2     IN A    192.0.2.2
mail    IN A    192.0.2.25
mail2   IN A    192.0.2.26
*.wild  IN A    192.0.2.99
EOF
    for i in $(seq 0 $((HOSTS - 1))); do
        echo "host$i IN A 192.0.2.$((100 + i))"
        echo "host$i IN AAAA 2001:db8::$((100 + i))"
    done
    for i in $(seq 0 9); do echo "alias$i IN CNAME host$i"; done
}

write_meridian() {
    local dir=$WORK/meridian port=$1
    mkdir -p "$dir/zones"
    static_records >"$dir/zones/$ZONE.zone"
    {
        echo "[datacenters]"
        for dc in "${DCS[@]}"; do echo "$dc = {}"; done
        echo
        echo "[pools.web]"
        echo "endpoints = ["
        for dc in "${DCS[@]}"; do
            echo "  { id = \"$dc-1\", datacenter = \"$dc\", addresses = [\"${V4[$dc]}\", \"${V6[$dc]}\"] },"
        done
        echo "]"
        echo
        echo "[pools.api]"
        echo "endpoints = ["
        echo "  { id = \"fra-a\", datacenter = \"fra\", address = \"192.0.2.101\", weight = 3 },"
        echo "  { id = \"fra-b\", datacenter = \"fra\", address = \"192.0.2.102\", weight = 1 },"
        echo "  { id = \"nyc-a\", datacenter = \"nyc\", address = \"198.51.100.101\" },"
        echo "  { id = \"sin-a\", datacenter = \"sin\", address = \"203.0.113.101\" },"
        echo "]"
        echo
        echo "[geo_maps.world]"
        echo "default = [$(quoted $DEFAULT)]"
        echo "[geo_maps.world.map]"
        for k in "${MAP_KEYS[@]}"; do
            # shellcheck disable=SC2086
            echo "\"$k\" = [$(quoted ${MAP[$k]})]"
        done
        for i in $(seq 0 $((GEO_NAMES - 1))); do
            printf '\n[names.geo%d]\npool = "web"\npolicy = "geo"\nmap = "world"\nttl = 30\n' "$i"
        done
        printf '\n[names.api]\npool = "api"\npolicy = "weighted"\nsticky = true\n'
        printf 'weights = { fra = 2, nyc = 1, sin = 1 }\nselect = "weighted"\nttl = 20\n'
    } >"$dir/zones/$ZONE.toml"
    # A copy of its own: the reload measure touches it.
    cp "$MMDB" "$dir/geo.mmdb"
    cat >"$dir/meridian.toml" <<EOF
zones_dir = "zones"
[geoip]
databases = ["geo.mmdb"]
ecs = true
[server]
listen = ["127.0.0.1:$port"]
udp_threads = 1
[api]
listen = "127.0.0.1:0"
EOF
    if [ "$DNSSEC" = 1 ]; then
        printf '[dnssec]\nkey_dir = "keys"\nzones = ["%s"]\n' "$ZONE" >>"$dir/meridian.toml"
        if ! ls "$dir"/keys/*.private >/dev/null 2>&1; then
            "$MERIDIAN" dnssec keygen "$ZONE" --config "$dir/meridian.toml" >/dev/null
        fi
    fi
}

quoted() {
    local out="" d
    for d in "$@"; do out+="${out:+, }\"$d\""; done
    echo "$out"
}

gdnsd_map() {
    # gdnsd's map is a nested hash: EU => { default => [...], GB => [...] }.
    local k
    printf 'map => {\n  default => [%s]\n' "${DEFAULT// /, }"
    for k in EU NA AS OC SA AF; do
        case $k in
        EU) printf '  EU => { default => [fra, lon, nyc], GB => [lon, fra] }\n' ;;
        NA) printf '  NA => { default => [nyc, sjc, fra], US => { CA => [sjc, nyc] } }\n' ;;
        *) printf '  %s => [%s]\n' "$k" "$(echo "${MAP[$k]}" | sed 's/ /, /g')" ;;
        esac
    done
    printf '}\n'
}

write_gdnsd() {
    local dir=$WORK/gdnsd port=$1 dc
    mkdir -p "$dir/zones" "$dir/run" "$dir/state"
    # A copy of its own: the reload measure replaces it.
    cp "$MMDB" "$dir/geo.mmdb"
    {
        static_records
        for i in $(seq 0 $((GEO_NAMES - 1))); do echo "geo$i 30 DYNA geoip!web"; done
        echo "api 20 DYNA weighted!api"
    } >"$dir/zones/$ZONE"
    {
        cat <<EOF
options => {
  listen => [ "127.0.0.1:$port" ]
  run_dir => "$dir/run"
  state_dir => "$dir/state"
  udp_threads => 1
  tcp_threads => 1
  edns_client_subnet => true
}
plugins => {
  geoip => {
    maps => {
      world => {
        geoip2_db => "$dir/geo.mmdb"
        datacenters => [$(echo "${DCS[*]}" | sed 's/ /, /g')]
$(gdnsd_map | sed 's/^/        /')
      }
    }
    resources => {
      web => {
        map => world
        service_types => up
        dcmap => {
EOF
        for dc in "${DCS[@]}"; do
            echo "          $dc => { addrs_v4 => ${V4[$dc]}, addrs_v6 => ${V6[$dc]} }"
        done
        cat <<EOF
        }
      }
    }
  }
  weighted => {
    api => {
      service_types => up
      fra-a = [ 192.0.2.101, 6 ]
      fra-b = [ 192.0.2.102, 2 ]
      nyc-a = [ 198.51.100.101, 4 ]
      sin-a = [ 203.0.113.101, 4 ]
    }
  }
}
EOF
    } >"$dir/config"
}

write_knot() {
    local dir=$WORK/knot port=$1 first
    mkdir -p "$dir/db" "$dir/run"
    {
        static_records
        # No geo in this Knot build: each geo name answers with the default's first entry.
        first=${DEFAULT%% *}
        for i in $(seq 0 $((GEO_NAMES - 1))); do
            echo "geo$i 30 IN A ${V4[$first]}"
            echo "geo$i 30 IN AAAA ${V6[$first]}"
        done
        echo "api 20 IN A 192.0.2.101"
    } >"$dir/$ZONE.zone"
    cat >"$dir/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$port
    rundir: $dir/run
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    edns-client-subnet: on
database:
    storage: $dir/db
template:
  - id: default
    storage: $dir
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $ZONE
    file: $dir/$ZONE.zone
EOF
    # Knot's automatic signing (its default policy: ECDSA P-256, NSEC).
    if [ "$DNSSEC" = 1 ]; then echo "    dnssec-signing: on" >>"$dir/knot.conf"; fi
}

# 100 queries: 38 geo (A and AAAA), 30 static (A, AAAA, MX, SOA), 8 CNAME, 8 wildcard,
# 8 weighted, 8 NXDOMAIN; shuffled with a fixed seed so every server sees the same order.
write_queries() {
    {
        for i in $(seq 0 37); do
            if ((i % 3 == 2)); then echo "geo$((i % GEO_NAMES)).$ZONE AAAA"; else echo "geo$((i % GEO_NAMES)).$ZONE A"; fi
        done
        for i in $(seq 0 18); do echo "host$((i * 7 % HOSTS)).$ZONE A"; done
        for i in $(seq 0 5); do echo "host$((i * 3 % HOSTS)).$ZONE AAAA"; done
        for _ in 1 2 3; do echo "$ZONE MX"; done
        for _ in 1 2; do echo "$ZONE SOA"; done
        for i in $(seq 0 7); do echo "alias$i.$ZONE A"; done
        for i in $(seq 0 7); do echo "x$i.wild.$ZONE A"; done
        for _ in $(seq 0 7); do echo "api.$ZONE A"; done
        for i in $(seq 0 7); do echo "nothing$i.$ZONE A"; done
    } | awk 'BEGIN { srand(42) } { print rand() "\t" $0 }' | sort -n | cut -f2- >"$WORK/queries.txt"
    echo "$ZONE SOA" >"$WORK/probe.txt"
}

# ---------------------------------------------------------------------------------------
# Running servers

# Below the kernel's ephemeral range (32768 and up here): no server's port can be taken by
# another's outgoing sockets (dnsperf, the API's clients) while all run at once.
PORT=$((20000 + RANDOM % 10000))

start_cmd() {
    # The command line of server $1 on port $2.
    case $1 in
    echo) echo "$ECHO 127.0.0.1:$2" ;;
    meridian) echo "$MERIDIAN serve --config $WORK/meridian/meridian.toml" ;;
    alt) echo "$ALT_MERIDIAN serve --config $WORK/meridian/meridian.toml" ;;
    gdnsd) echo "$GDNSD -c $WORK/gdnsd start" ;;
    knot) echo "$KNOTD -c $WORK/knot/knot.conf" ;;
    esac
}

configure() {
    case $1 in
    meridian) write_meridian "$2" ;;
    alt)
        write_meridian "$2"
        # The same server with more configuration, e.g. a dnstap log, to measure its cost.
        if [ -n "${ALT_CONFIG:-}" ]; then printf '\n%b\n' "$ALT_CONFIG" >>"$WORK/meridian/meridian.toml"; fi
        ;;
    gdnsd) write_gdnsd "$2" ;;
    knot) write_knot "$2" ;;
    esac
}

# Waits until the server on port $1 answers (at most $2 seconds).
wait_ready() {
    local port=$1 limit=$2 start=$SECONDS
    while ((SECONDS - start < limit)); do
        if dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/probe.txt" -n 1 -t 1 -l 2 2>/dev/null |
            grep -Eq 'Queries completed: +1 '; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# Waits until the server on port $1 answers a UDP query for the zone's SOA (at most $2
# seconds), asking every 20 ms with a 20 ms timeout: fine enough to time a start.
wait_answer() {
    python3 - "$1" "$2" "$ZONE" <<'PY'
import socket, struct, sys, time
port, limit, zone = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
name = b"".join(bytes([len(l)]) + l.encode() for l in zone.split(".") if l) + b"\0"
query = struct.pack(">HHHHHH", 0x4D52, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1)
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.02)
    try:
        s.sendto(query, ("127.0.0.1", port))
        if s.recv(512)[:2] == query[:2]:
            sys.exit(0)
    except OSError:
        time.sleep(0.02)
    finally:
        s.close()
sys.exit(1)
PY
}

cpu_ns() {
    # On-CPU time of every thread of process $1 in nanoseconds (the first field of each
    # thread's schedstat): finer than the 10 ms ticks of /proc/PID/stat.
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

user_sys_ticks() {
    # utime and stime in clock ticks (fields 14 and 15; the command name in field 2 may
    # contain spaces). The kernel splits the run time by tick samples, so over a few seconds
    # the split can be far off (on a VM especially); `perf record -e cpu-clock` is the
    # reliable way to see our code's share.
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

perf_args() {
    # dnsperf options for a run with ECS ($1 = 1) or without.
    if [ "$1" = 1 ]; then echo "-E $ECS_OPT"; fi
    if [ "$1" = cookie ]; then echo "-E $COOKIE_OPT"; fi
    if [ "$DNSSEC" = 1 ]; then echo "-D"; fi
}

completed() { awk '/Queries completed:/ { print $3 }' "$1"; }

declare -A CPU CPUS RATIO RATIOS IR RSS HWM SPID SPORT READY READY_HWM RELOAD RELOAD_DB SWAP SWAP_CPU

# Seconds a command takes, the median of 5 runs.
median_seconds() {
    local runs=() t0
    for _ in 1 2 3 4 5; do
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || return 1
        runs+=("$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')")
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
}

# Replaces the database $2 of server process $1 by a fresh copy of $MMDB (renamed over it,
# as geoipupdate does) and follows log $3 from then on: prints the seconds until a line
# containing $4 says the new data serves, and the CPU seconds the process used meanwhile
# (every thread, in 10 ms ticks; both servers are otherwise idle then, so that is the
# reload's work, without the settle delays). Polls every 5 ms, for at most 60 s.
replace_db_and_wait() {
    cp "$MMDB" "$2.new"
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import os, sys, time
pid, db, log, done = sys.argv[1:5]
def cpu_ns():
    # utime + stime of the whole process, threads that have ended included (a table build's
    # walking threads do), in clock ticks.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")
offset = os.path.getsize(log)
cpu0, t0 = cpu_ns(), time.monotonic()
os.rename(db + ".new", db)
took = None
while time.monotonic() - t0 < 60 and took is None:
    with open(log, errors="replace") as f:
        f.seek(offset)
        if done in f.read():
            took = time.monotonic() - t0
    time.sleep(0.005)
# Let the swap's last frees finish before the CPU time is read.
time.sleep(0.2)
cpu = (cpu_ns() - cpu0) / 1e9
print(f"{took:.2f}" if took is not None else "-", f"{cpu:.2f}" if took is not None else "-")
PY
}

# Reload times of server $1 (meridian: through its API, which answers once the new data
# serves; gdnsd: gdnsdctl reload-zones, which returns once the zones are replaced). For
# meridian also after its copy of the database changed (every table built again).
measure_reload() {
    local name=$1 api
    case $name in
    meridian | alt)
        api=$(sed -n 's|^meridian: api on http://||p' "$WORK/$name.log" | head -1)
        [ -n "$api" ] || return 0
        RELOAD[$name]=$(median_seconds curl -sf -X POST "http://$api/reload") || true
        RELOAD_DB[$name]=$(median_seconds sh -c "touch '$WORK/meridian/geo.mmdb' && curl -sf -X POST 'http://$api/reload'") || true
        # The touches above also wake the file watcher: let its reloads end first. (Only
        # meridian: alt shares its directory, and would reload from the same file.)
        [ "$name" = meridian ] || return 0
        sleep 3
        read -r SWAP["$name"] SWAP_CPU["$name"] < <(replace_db_and_wait "${SPID[$name]}" \
            "$WORK/meridian/geo.mmdb" "$WORK/$name.log" reloaded)
        ;;
    gdnsd)
        RELOAD[$name]=$(median_seconds "$GDNSDCTL" -c "$WORK/gdnsd" reload-zones) || true
        read -r SWAP["$name"] SWAP_CPU["$name"] < <(replace_db_and_wait "${SPID[$name]}" \
            "$WORK/gdnsd/geo.mmdb" "$WORK/gdnsd.log" "runtime db updated")
        ;;
    esac
}
# Starts server $1 pinned to core 1 and waits until it answers; its pid and port go to SPID
# and SPORT. Every server stays up through all CPU rounds (idle while another is measured).
start_server() {
    local name=$1 port=$((PORT++)) pid
    configure "$name" "$port"
    local t0
    t0=$(date +%s.%N)
    local pin=(taskset -c 1)
    [ "$START_CORES" = all ] && pin=()
    # shellcheck disable=SC2046
    "${pin[@]}" $(start_cmd "$name" "$port") >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_answer "$port" 30; then
        echo "$name did not start; log:" >&2
        cat "$WORK/$name.log" >&2
        stop_process "$pid" 100
        return 1
    fi
    # Start to the first answer (polled every 20 ms), and the peak RSS so far: the load.
    READY[$name]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    READY_HWM[$name]=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
    # Every thread on core 1: Knot, for one, pins its UDP workers to CPUs of its own choice
    # (the first one to core 0, beside dnsperf, where wake-ups cost far less).
    taskset -a -p -c 1 "$pid" >/dev/null
    SPID[$name]=$pid
    SPORT[$name]=$port
    # Warm-up, not measured: first-touch page faults, lazily built state.
    taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -Q "$RATE" -l 1 \
        -t 2 >/dev/null 2>&1 || true
}

# Writes the miss mix of round $1 to $WORK/miss.txt: names never asked before (the round in
# each), half nonexistent, half random labels under the wildcard; a fifth more than a run sends.
write_miss_queries() {
    awk -v n=$((RATE * SECS * 6 / 5)) -v r="$1" -v zone="$ZONE" 'BEGIN {
        for (i = 0; i < n; i++) {
            if (i % 2) printf "m%dx%d.%s A\n", r, i, zone
            else printf "m%dx%d.wild.%s A\n", r, i, zone
        }
    }' >"$WORK/miss.txt"
}

# One measured load on running server $1 with ECS ($2 = 1), without (0), or the miss mix
# (miss); prints µs/query.
measure_cpu() {
    local name=$1 ecs=$2 pid=${SPID[$1]} port=${SPORT[$1]} t0 t1 q cpu u0 u1 s0 s1
    local file=$WORK/queries.txt
    [ "$ecs" = miss ] && file=$WORK/miss.txt
    t0=$(cpu_ns "$pid")
    read -r u0 s0 <<<"$(user_sys_ticks "$pid")"
    # shellcheck disable=SC2046
    taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -Q "$RATE" -l "$SECS" \
        -t 2 $(perf_args "$ecs") >"$WORK/perf.$name.$ecs" 2>&1 || true
    t1=$(cpu_ns "$pid")
    read -r u1 s1 <<<"$(user_sys_ticks "$pid")"
    q=$(completed "$WORK/perf.$name.$ecs")
    cpu=$(awk -v a="$t0" -v b="$t1" -v q="$q" 'BEGIN { if (q > 0) printf "%.3f", (b - a) / 1e3 / q }')
    echo "  $name ecs=$ecs: $q queries, $(((t1 - t0) / 1000000)) ms on CPU" \
        "(user $((u1 - u0)), system $((s1 - s0)) ticks) → ${cpu:--} µs/query;" \
        "$(grep -o 'Response codes:.*' "$WORK/perf.$name.$ecs")" >&2
    echo "$cpu"
}

# Starts server $1 on port $2 under callgrind, waits until it answers and zeroes the
# counters (start-up and the readiness probes are not counted); its pid goes to CG_PID.
# Returns 1 when it does not start.
callgrind_start() {
    local name=$1 port=$2
    configure "$name" "$port"
    rm -f "$WORK"/cg."$name".*
    # shellcheck disable=SC2046
    taskset -c 1 valgrind --tool=callgrind ${CG_ARGS:-} \
        --callgrind-out-file="$WORK/cg.$name.%p" $(start_cmd "$name" "$port") \
        >"$WORK/$name.cg.log" 2>&1 &
    CG_PID=$!
    PIDS+=("$CG_PID")
    if ! wait_ready "$port" 180; then
        echo "$name did not start under valgrind; log:" >&2
        tail -20 "$WORK/$name.cg.log" >&2
        stop_process "$CG_PID" 100
        return 1
    fi
    callgrind_control -z "$CG_PID" >/dev/null 2>&1
}

# Dumps and stops server $1 (pid CG_PID); prints the instructions per query for $2 queries
# answered, keeping the profile as CG_KEEP/callgrind.$1.$3 when CG_KEEP is set.
callgrind_finish() {
    local name=$1 q=$2 label=$3 ir
    callgrind_control -d "$CG_PID" >/dev/null 2>&1
    stop_process "$CG_PID" 100
    # The first dump holds exactly the load (the file written at exit holds the shutdown).
    ir=$(cat "$WORK"/cg."$name".*.1 2>/dev/null | awk '/^totals:/ { s += $2 } END { print s + 0 }')
    if [ -n "${CG_KEEP:-}" ]; then
        mkdir -p "$CG_KEEP"
        cp "$WORK"/cg."$name".*.1 "$CG_KEEP/callgrind.$name.$label" 2>/dev/null || true
    fi
    awk -v ir="$ir" -v q="${q:-0}" 'BEGIN { if (q > 0) printf "%.0f", ir / q; else print "-" }'
}

# The mixed query stream under callgrind, with ECS ($2 = 1) or without.
run_callgrind() {
    local name=$1 ecs=$2 port=$((PORT++)) q runs
    callgrind_start "$name" "$port" || return
    runs=$(((CG_QUERIES + 99) / 100))
    # shellcheck disable=SC2046
    taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -n "$runs" \
        -Q "$CG_RATE" -l $((CG_QUERIES / CG_RATE * 3 + 30)) -t 5 $(perf_args "$ecs") \
        >"$WORK/cgperf.$name.$ecs" 2>&1 || true
    q=$(completed "$WORK/cgperf.$name.$ecs")
    IR[$name.$ecs]=$(callgrind_finish "$name" "$q" "ecs$ecs")
    echo "  $name ecs=$ecs under callgrind: $q queries → ${IR[$name.$ecs]}/query" >&2
}

# Cache-miss workloads under callgrind: every query different, sent by `meridian probe`
# (dnsperf repeats one ECS option): $2 is the workload's key, $3 the name, $4 what varies.
run_callgrind_miss() {
    local name=$1 key=$2 qname=$3 vary=$4 port=$((PORT++)) q
    callgrind_start "$name" "$port" || return
    local dnssec=()
    if [ "$DNSSEC" = 1 ]; then dnssec=(--dnssec); fi
    local varying=(--vary "$vary")
    if [ "$vary" = none ]; then varying=(); fi
    taskset -c 0 "$MERIDIAN" probe "127.0.0.1:$port" "$qname" A "${varying[@]}" --quiet "${dnssec[@]}" \
        --count "$CG_MISS_QUERIES" --interval "$(awk -v r="$CG_RATE" 'BEGIN { printf "%.6f", 1 / r }')" \
        --timeout 2 2>"$WORK/cgprobe.$name.$key" >/dev/null || true
    q=$(sed -n 's/.*answered \([0-9]*\).*/\1/p' "$WORK/cgprobe.$name.$key")
    MISS[$name.$key]=$(callgrind_finish "$name" "$q" "$key")
    echo "  $name $key under callgrind: ${q:-0} queries → ${MISS[$name.$key]}/query" >&2
}

# The lower and upper quartile of a list, as "q1–q3" ("-" when empty).
quartiles() { sorted "$1" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 3) / 4)] "–" v[int((3 * NR + 3) / 4)]; else print "-" }'; }

if [ -n "$ALT_MERIDIAN" ]; then ALT_MERIDIAN=$(realpath "$ALT_MERIDIAN"); fi
write_queries
# CPU: every server up at once, each pinned to core 1 and idle but for its own runs. A round
# loads each server once, in an order that rotates from round to round, and each server's
# figure is also divided by the echo floor's of the same round: the ratio's median cancels
# the slow drifts of a shared machine that a ratio of medians keeps.
read -r -a servers <<<"$SERVERS"
up=()
for s in "${servers[@]}"; do
    if start_server "$s"; then up+=("$s"); fi
done
for s in "${up[@]}"; do measure_reload "$s"; done
for ecs in $ECS_RUNS; do
    for round in $(seq 1 "$ROUNDS"); do
        if [ "$ecs" = miss ]; then write_miss_queries "$round"; fi
        declare -A this=()
        n=${#up[@]}
        for ((k = 0; k < n; k++)); do
            s=${up[$(((k + round) % n))]}
            echo "CPU: $s, ECS=$ecs, round $round of $ROUNDS" >&2
            this[$s]=$(measure_cpu "$s" "$ecs")
            CPUS[$s.$ecs]="${CPUS[$s.$ecs]:-} ${this[$s]}"
        done
        for s in "${up[@]}"; do
            r=$(ratio "${this[$s]}" "${this[echo]:-}" 3)
            RATIOS[$s.$ecs]="${RATIOS[$s.$ecs]:-} $r"
        done
        unset this
    done
    for s in "${up[@]}"; do
        CPU[$s.$ecs]=$(median "${CPUS[$s.$ecs]:-}")
        RATIO[$s.$ecs]=$(median "${RATIOS[$s.$ecs]:-}")
    done
done
for s in "${up[@]}"; do
    RSS[$s]=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/${SPID[$s]}/status")
    HWM[$s]=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/${SPID[$s]}/status")
    stop_process "${SPID[$s]}" 100
done
# CG_QUERIES=0: CPU and memory only (a big database loads slowly under valgrind).
if ((CG_QUERIES > 0)); then
    for ecs in $ECS_RUNS; do
        # The miss paths have callgrind workloads of their own (below).
        [ "$ecs" = miss ] && continue
        for s in "${servers[@]}"; do
            echo "callgrind: $s, ECS=$ecs" >&2
            run_callgrind "$s" "$ecs"
        done
    done
fi

# The miss paths: (key, name, what varies), and for reference one static name asked again and
# again (no miss: the fixed cost of a query when one is outstanding), also with its letters in
# a random case each time (as a 0x20 resolver asks). The echo floor answers
# every workload (its figure is the cost of receiving and sending one packet); Knot has no
# geo, so it skips the geo workload.
MISS_WORKLOADS=("geo-random-ecs geo0.$ZONE subnet" "wildcard-random-label wild.$ZONE label" "nxdomain-random $ZONE label" "one-static-name host1.$ZONE none" "one-static-name-0x20 host1.$ZONE case")
declare -A MISS=()
if ((CG_MISS_QUERIES > 0)); then
    for w in "${MISS_WORKLOADS[@]}"; do
        read -r key qname vary <<<"$w"
        for s in "${servers[@]}"; do
            if [ "$s" = knot ] && [ "$key" = geo-random-ecs ]; then continue; fi
            echo "callgrind (miss): $s, $key" >&2
            run_callgrind_miss "$s" "$key" "$qname" "$vary"
        done
    done
fi

# ---------------------------------------------------------------------------------------
# The table

echo
echo "Offered load $RATE queries/s for $SECS s per CPU run, $ROUNDS rounds (every server once a round, rotating order); callgrind runs of $CG_QUERIES queries at $CG_RATE/s."
echo "Query mix: 38% geo (A/AAAA), 30% static A/AAAA/MX/SOA, 8% CNAME, 8% wildcard, 8% weighted, 8% NXDOMAIN."
echo "Miss mix: every query a name not asked before, half nonexistent, half a random label under the wildcard (Knot and gdnsd get the same names)."
echo "CPU ratio: the median over rounds of the server's CPU per query divided by the echo floor's in the same round, with the quartiles of those ratios."
echo "Knot has no geo here (static answers for geo names). Memory: after the CPU runs, with the map loaded ($(basename "$MMDB"))."
echo
echo "| server | ECS | CPU µs/query (median) | CPU µs quartiles | CPU ratio to echo floor | ratio quartiles | instructions/query | instructions ratio to gdnsd | RSS MB | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for ecs in $ECS_RUNS; do
    for s in $SERVERS; do
        k=$s.$ecs
        label=$s
        [ "$s" = echo ] && label="echo floor"
        [ "$s" = knot ] && label="knot (static only)"
        [ "$s" = alt ] && label="meridian ($(basename "$ALT_MERIDIAN"))"
        case $ecs in 1) what=yes ;; miss) what="miss mix" ;; cookie) what="no, client cookie" ;; *) what=no ;; esac
        echo "| $label | $what | ${CPU[$k]:--} | $(quartiles "${CPUS[$k]:-}") | ${RATIO[$k]:--} | $(quartiles "${RATIOS[$k]:-}") | ${IR[$k]:--} | $(ratio "${IR[$k]:-}" "${IR[gdnsd.$ecs]:-}" 3) | ${RSS[$s]:--} | ${HWM[$s]:--} |"
    done
done
echo
echo "Start: from starting the server to its first answer (polled every 20 ms), and the peak RSS by then, with $(basename "$MMDB"), on $([ "$START_CORES" = all ] && echo "every core" || echo "one core")."
echo
echo "| server | start to ready, s | peak RSS at ready, MB |"
echo "|---|---|---|"
for s in $SERVERS; do
    [ "$s" = echo ] && continue
    echo "| $s | ${READY[$s]:--} | ${READY_HWM[$s]:--} |"
done
echo
echo "Reload: the median of 5, zones unchanged (gdnsd: gdnsdctl reload-zones; meridian: POST /reload, its network tables kept), and for meridian after its copy of the database was touched (every table built again). Then each server's database replaced by a copy renamed over it, as geoipupdate does: seconds until its log says the new data serves (both notice the change by themselves: meridian polls every second and lets a change settle 0.3 s, gdnsd waits for 5 s and then 7 s of quiescence), and the CPU time each used meanwhile: the reload's work without the waits."
echo
echo "| server | reload, s | reload after the database changed, s | database replaced to new data serving, s | CPU used meanwhile, s |"
echo "|---|---|---|---|---|"
for s in $SERVERS; do
    case $s in echo | knot) continue ;; esac
    echo "| $s | ${RELOAD[$s]:--} | ${RELOAD_DB[$s]:--} | ${SWAP[$s]:--} | ${SWAP_CPU[$s]:--} |"
done
if ((CG_MISS_QUERIES > 0)); then
    echo
    echo "Cache misses: $CG_MISS_QUERIES queries each, every one different (meridian probe --vary), one outstanding, under callgrind; one-static-name asks one name every time (the fixed cost with one query outstanding), one-static-name-0x20 the same name in a random case each time; the echo floor only receives and sends."
    echo
    echo "| workload | $(for s in "${servers[@]}"; do printf '%s instructions/query | ' "$s"; done)meridian / gdnsd |"
    echo "|---|$(for s in "${servers[@]}"; do printf -- '---|'; done)---|"
    for w in "${MISS_WORKLOADS[@]}"; do
        read -r key _ _ <<<"$w"
        row="| $key |"
        for s in "${servers[@]}"; do
            row+=" ${MISS[$s.$key]:--} |"
        done
        echo "$row $(ratio "${MISS[meridian.$key]:-}" "${MISS[gdnsd.$key]:-}" 2) |"
    done
fi
