#!/usr/bin/env bash
# Many idle TCP clients: meridian next to Knot DNS, the same small zone, each server holding
# CONNS open TCP connections (every one asked one question, then left idle).
#
# Prints, for each server:
#   - RSS before the connections, with all of them open, and the difference per connection;
#   - the latency of queries asked meanwhile on other connections (a fresh TCP connection
#     per query, and UDP): median and 99th percentile of QUERIES each, before the idle
#     connections are opened and while they are open.
# Figures only: nothing here passes or fails. Everything listens on 127.0.0.1; the clients
# come from 127.0.0.0/8 source addresses; every wait is bounded; servers are killed on exit.
#
# Usage: scripts/bench-tcp-idle.sh
# Knobs (environment): CONNS (default 10000), QUERIES (default 500), SERVERS (default
# "meridian knot").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

CONNS=${CONNS:-10000}
QUERIES=${QUERIES:-500}
SERVERS=${SERVERS:-"meridian knot"}
ZONE=idle.example

packages=()
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || packages+=(knot)
command -v python3 >/dev/null || packages+=(python3)
install_packages "${packages[@]}"
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)

echo "building meridian (release)..." >&2
cargo build --release --quiet --bin meridian
MERIDIAN=${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian

WORK=$(mktemp -d /tmp/meridian-tcp-idle.XXXXXX)
PIDS=()
trap cleanup EXIT # lib.sh: kills PIDS, removes WORK
# The server and the client each hold a descriptor per connection.
ulimit -n $((CONNS + 4096))

mkdir -p "$WORK/zones" "$WORK/knot/run" "$WORK/knot/db"
cat >"$WORK/zones/$ZONE.zone" <<EOF
\$ORIGIN $ZONE.
\$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
EOF

start() {
    local name=$1 port=$2
    case $name in
    meridian)
        cat >"$WORK/meridian.toml" <<EOF
zones_dir = "zones"
[server]
listen = ["127.0.0.1:$port"]
udp_threads = 1
tcp_max_connections = $((CONNS + 1000))
tcp_max_per_client = $((CONNS + 1000))
tcp_idle_timeout_secs = 300
EOF
        "$MERIDIAN" serve --config "$WORK/meridian.toml" >"$WORK/$name.log" 2>&1 &
        ;;
    knot)
        cat >"$WORK/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$port
    rundir: $WORK/knot/run
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    tcp-max-clients: $((CONNS + 1000))
    tcp-idle-timeout: 300
database:
    storage: $WORK/knot/db
zone:
  - domain: $ZONE
    file: $WORK/zones/$ZONE.zone
    journal-content: none
EOF
        "$KNOTD" -c "$WORK/knot/knot.conf" >"$WORK/$name.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# The client (python3, plain sockets). "latency PORT N" prints "udp_p50 udp_p99 tcp_p50
# tcp_p99" in ms; "hold PORT N SECONDS" opens N connections (from 127.0.0.2 up, at most 20,000
# per source address), asks one question on each, prints how many answered, keeps them open
# until stdin closes or SECONDS pass.
cat >"$WORK/client.py" <<'PY'
import socket, struct, sys, time, select
zone = "idle.example"
def query(qid, name):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack(">HH", 1, 1)
def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out
def tcp_ask(s, qid):
    q = query(qid, "www." + zone)
    s.sendall(struct.pack(">H", len(q)) + q)
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)[:2] == q[:2]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] * 1000
mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode == "latency":
    udp, tcp = [], []
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    for i in range(n):
        q = query(i, "www." + zone)
        t = time.perf_counter()
        u.sendto(q, ("127.0.0.1", port))
        u.recv(512)
        udp.append(time.perf_counter() - t)
        t = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        tcp_ask(s, i)
        s.close()
        tcp.append(time.perf_counter() - t)
    print("%.3f %.3f %.3f %.3f" % (pct(udp, .5), pct(udp, .99), pct(tcp, .5), pct(tcp, .99)))
else:
    hold_secs = float(sys.argv[4])
    conns, ok, deadline = [], 0, time.monotonic() + 120
    for i in range(n):
        if time.monotonic() > deadline:
            break
        src = "127.0.%d.%d" % (2 + i // 20000 // 250, 2 + i // 20000 % 250)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            ok += tcp_ask(s, i % 65536)
            conns.append(s)
        except OSError as e:
            print("connection %d: %s" % (i, e), file=sys.stderr)
            break
    print(ok, flush=True)
    select.select([sys.stdin], [], [], hold_secs)
PY
client() { python3 "$WORK/client.py" "$@"; }

declare -A R
for name in $SERVERS; do
    free_port # lib.sh: sets FREE_PORT
    port=$FREE_PORT
    start "$name" "$port"
    pid=$SERVER_PID
    for _ in $(seq 1 100); do
        if client latency "$port" 1 >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    client latency "$port" 20 >/dev/null # warm-up
    R[$name.before]=$(client latency "$port" "$QUERIES")
    base=$(rss_kb "$pid")
    # Hold the connections on a pipe: closing our end of it lets the holder go.
    exec {hold}> >(client hold "$port" "$CONNS" 600 >"$WORK/held" 2>"$WORK/held.err")
    for _ in $(seq 1 1200); do
        [ -s "$WORK/held" ] && break
        sleep 0.1
    done
    held=$(cat "$WORK/held" 2>/dev/null || echo 0)
    sleep 1
    open=$(rss_kb "$pid")
    R[$name.during]=$(client latency "$port" "$QUERIES")
    exec {hold}>&-
    sleep 1
    R[$name.held]=$held
    R[$name.base]=$(awk -v k="$base" 'BEGIN { printf "%.1f", k / 1024 }')
    R[$name.open]=$(awk -v k="$open" 'BEGIN { printf "%.1f", k / 1024 }')
    R[$name.per]=$(awk -v a="$base" -v b="$open" -v n="$held" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "-" }')
    echo "$name: $held connections answered and held; RSS $base → $open KB" >&2
    [ -s "$WORK/held.err" ] && head -3 "$WORK/held.err" >&2
    stop_process "$pid" 50
    rm -f "$WORK/held" "$WORK/held.err"
done

echo
echo "$CONNS idle TCP connections requested (one question each, then idle); latency of $QUERIES queries on other connections (ms: median / p99)."
echo
echo "| server | connections held | RSS before, MB | RSS with them open, MB | KB per connection | UDP before | UDP during | fresh TCP before | fresh TCP during |"
echo "|---|---|---|---|---|---|---|---|---|"
for name in $SERVERS; do
    read -r ub5 ub9 tb5 tb9 <<<"${R[$name.before]}"
    read -r ud5 ud9 td5 td9 <<<"${R[$name.during]}"
    echo "| $name | ${R[$name.held]} | ${R[$name.base]} | ${R[$name.open]} | ${R[$name.per]} | $ub5 / $ub9 | $ud5 / $ud9 | $tb5 / $tb9 | $td5 / $td9 |"
done
