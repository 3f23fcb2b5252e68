#!/usr/bin/env bash
# A three-site anycast fleet (geodes) in network namespaces, and the failures it must survive,
# each measured. Needs root (ip netns), and: iproute2, bird2, etcd-server, bind9-dnsutils,
# curl, python3 (the sites' web backends).
#
#   scripts/geode-sim.sh            builds meridian (release) and runs every scenario
#   MERIDIAN=path/to/meridian       use this binary instead
#   RESULTS=file                    also write the results there (one "M key value" per metric,
#                                   one "S scenario|bound|measured|verdict" per row)
#   KEEP=1                          keep the work directory (logs, configs) afterwards
#
# The network, all inside 198.18.0.0/15 and inside namespaces named meridian-g<tag>-*:
#
#   client c1 198.18.31.2 ─┐                 ┌─ site s1 198.18.11.2  meridian, BIRD, etcd, web
#   client c2 198.18.32.2 ─┼─ router (BIRD) ─┼─ site s2 198.18.12.2  meridian, BIRD, etcd, web
#   client c3 198.18.33.2 ─┘                 └─ site s3 198.18.13.2  meridian, BIRD, etcd, web
#
# Every site announces the service address 198.18.255.53/32 by BGP (dist/anycast/bird-site.conf,
# gated by dist/anycast/meridian-anycast-gate). The router keeps one table per client region,
# filled through pipes that set BGP local_pref: region N prefers site N, then N+1, then N+2;
# a policy rule sends each client link's packets through its region's table. meridian runs
# from ONE config directory on all three sites (each in its own UTS namespace, so its host
# name, NSID and fleet instance name are "site1".."site3"), geo-maps each region's clients to
# their own site first, and the sites share their checks' votes through the three-member etcd.
#
# Scenarios, with clients querying the anycast address every 50 ms (meridian probe):
#   1 baseline    every region is answered by its own site with its own site's address
#   2 backend     site 1's web server stops: every instance moves region 1 away within the
#                 bound `meridian check` prints; back when it returns
#   3 stop/drain  site 1's meridian is killed, then site 2's is drained (SIGUSR1): the routes
#                 move to the next site; queries lost and time until answers resume
#   4 cut off     site 3 loses its routes to the other sites and to etcd: it keeps answering
#                 its clients from its own checks; healed, the fleet agrees again
#   5 reload      a zone change is pushed to all sites (POST /reload, one after another)
#                 while clients query: nothing lost, every site serves the change
# Everything is removed afterwards (also on failure or Ctrl-C): namespaces, processes, files.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

TAG=${TAG:-$(($$ % 100000))}
NS=meridian-g$TAG
SERVICE=198.18.255.53
INTERVAL_MS=50
FAILED=0
WORK=$(mktemp -d /tmp/meridian-geode.XXXXXX)
RESULTS_FILE=${RESULTS:-$WORK/results}
: >"$RESULTS_FILE"

need() { # tool package
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
        echo "geode-sim: needs $1 (Debian package $2)" >&2
        exit 2
    fi
}
[ "$(id -u)" -eq 0 ] || { echo "geode-sim: needs root (ip netns)" >&2; exit 2; }
export PATH="$PATH:/usr/sbin:/sbin"
need ip iproute2; need bird bird2; need birdc bird2; need etcd etcd-server
need dig bind9-dnsutils; need curl curl; need python3 python3; need unshare util-linux

if [ -z "${MERIDIAN:-}" ]; then
    cargo build --release --quiet
    MERIDIAN=$root/target/release/meridian
fi
MERIDIAN=$(realpath "$MERIDIAN")

namespaces() { ip netns list | awk -v p="$NS-" 'index($1, p) == 1 { print $1 }'; }

teardown() {
    local ns pid
    for ns in $(namespaces); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    { wait; } 2>/dev/null || true
    for ns in $(namespaces); do ip netns del "$ns" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "geode-sim: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
in_ns() { local ns=$1; shift; ip netns exec "$NS-$ns" "$@"; }
record() { echo "M $1 $2" >>"$RESULTS_FILE"; }
# scenario bound measured verdict(ok|FAIL)
row() {
    echo "S $1|$2|$3|$4" >>"$RESULTS_FILE"
    printf '  %-46s %-28s %-44s %s\n' "$1" "$2" "$3" "$4"
    [ "$4" = ok ] || FAILED=1
}
logs_tail() {
    local f
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 12 "$f"; }; done >&2
}
die() { echo "geode-sim: $*" >&2; logs_tail; exit 1; }

# Polls CMD... every 0.1 s until it succeeds, at most $1 seconds; prints the milliseconds it took.
wait_for() {
    local limit=$1; shift
    local start deadline
    start=$(now_ms); deadline=$((start + limit * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if "$@" >/dev/null 2>&1; then echo $(($(now_ms) - start)); return 0; fi
        sleep 0.1
    done
    return 1
}

# --- the network -------------------------------------------------------------------------
ip netns add "$NS-r"
in_ns r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
in_ns r ip link set lo up
link() { # namespace ns-side-address router-side-address veth-name
    ip netns add "$NS-$1"
    ip link add "$4r" type veth peer name "$4"
    ip link set "$4r" netns "$NS-r"
    ip link set "$4" netns "$NS-$1"
    in_ns r ip addr add "$3/24" dev "$4r"
    in_ns "$1" ip addr add "$2/24" dev "$4"
    in_ns r ip link set "$4r" up
    in_ns "$1" ip link set "$4" up
    in_ns "$1" ip link set lo up
    in_ns "$1" ip route add default via "$3"
}
for i in 1 2 3; do
    link "s$i" "198.18.1$i.2" "198.18.1$i.1" "mg${TAG}s$i"
    in_ns "s$i" ip addr add "$SERVICE/32" dev lo
    link "c$i" "198.18.3$i.2" "198.18.3$i.1" "mg${TAG}c$i"
    # Region i's client link routes through table 10i, which BIRD fills with region i's choice.
    in_ns r ip rule add iif "mg${TAG}c${i}r" lookup "10$i" pref 1000
done

# --- configuration -----------------------------------------------------------------------
mkdir -p "$WORK/conf/zones" "$WORK/www"
echo ok >"$WORK/www/index.html"
zone() { # serial release
    cat <<EOF
\$ORIGIN example.com.
\$TTL 300
@        SOA ns1 hostmaster $1 3600 600 86400 60
@        NS  ns1
ns1      A   $SERVICE
release  TXT "$2"
EOF
}
zone 1 one >"$WORK/conf/zones/example.com.zone"
cat >"$WORK/conf/zones/example.com.toml" <<'EOF'
[datacenters]
site1 = {}
site2 = {}
site3 = {}

[pools.web]
endpoints = [
  { id = "web1", datacenter = "site1", address = "198.18.11.2" },
  { id = "web2", datacenter = "site2", address = "198.18.12.2" },
  { id = "web3", datacenter = "site3", address = "198.18.13.2" },
]
check = { type = "http", port = 8080, path = "/", body_contains = "ok", interval = 0.5, timeout = 0.4, rise = 2, fall = 2 }
votes = "quorum"

# Each region's clients: their own site first, then the next.
[geo_maps.regions]
default = ["site1", "site2", "site3"]
nets = { "198.18.31.0/24" = ["site1", "site2", "site3"], "198.18.32.0/24" = ["site2", "site3", "site1"], "198.18.33.0/24" = ["site3", "site1", "site2"] }

[names.www]
pool = "web"
policy = "geo"
map = "regions"
ttl = 1
EOF
cat >"$WORK/conf/meridian.toml" <<EOF
zones_dir = "zones"
[server]
listen = ["$SERVICE:53"]
identity = "{host}"
udp_threads = 1
[api]
listen = "127.0.0.1:8053"
[cluster]
name = "geode-sim"
endpoints = ["http://198.18.11.2:2379", "http://198.18.12.2:2379", "http://198.18.13.2:2379"]
timeout_secs = 0.5
EOF
check_out=$("$MERIDIAN" check --config "$WORK/conf/meridian.toml" 2>&1) || die "meridian check failed: $check_out"
# "with the store (...): 2.7 s = detection ..." for www: the bound every instance must keep.
BOUND_S=$(sed -n 's/.*with the store (.*): \([0-9.]*\) s = .*/\1/p' <<<"$check_out" | head -n1)
[ -n "$BOUND_S" ] || die "meridian check printed no fleet failover bound: $check_out"
BOUND_MS=$(awk -v s="$BOUND_S" 'BEGIN { printf "%d", s * 1000 }')

{
    echo 'router id 198.18.0.1;'
    echo 'log stderr all;'
    echo 'protocol device { scan time 1; }'
    for i in 1 2 3; do echo "ipv4 table from_site$i; ipv4 table for_region$i;"; done
    for i in 1 2 3; do
        cat <<EOF
protocol bgp site$i {
  local 198.18.1$i.1 as 64500; neighbor 198.18.1$i.2 as 64501;
  hold time 3; keepalive time 1; connect retry time 1;
  ipv4 { table from_site$i; import all; export none; };
}
protocol kernel region$i { kernel table 10$i; ipv4 { table for_region$i; import none; export all; }; }
EOF
        for r in 1 2 3; do
            # Region r prefers site r (300), then r+1 (200), then r+2 (100).
            pref=$((300 - 100 * ((i - r + 3) % 3)))
            echo "protocol pipe site${i}_to_region$r { table from_site$i; peer table for_region$r; import none; export filter { bgp_local_pref = $pref; accept; }; }"
        done
    done
} >"$WORK/router.conf"
for i in 1 2 3; do
    sed -e 's/log syslog all;/log stderr all;/' \
        -e "s/router id 198.18.0.2;/router id 198.18.1$i.2;/" \
        -e "s/local 198.18.0.2 as/local 198.18.1$i.2 as/" \
        -e "s/neighbor 198.18.0.1 as/neighbor 198.18.1$i.1 as/" \
        dist/anycast/bird-site.conf >"$WORK/site$i.conf"
    grep -q "neighbor 198.18.1$i.1" "$WORK/site$i.conf" || die "dist/anycast/bird-site.conf changed shape"
done

# --- processes ---------------------------------------------------------------------------
bird_in() { # namespace name
    in_ns "$1" bird -f -c "$WORK/$2.conf" -s "$WORK/$2.ctl" -P "$WORK/$2.pid" >"$WORK/$2-bird.log" 2>&1 &
}
bird_in r router
cluster=site1=http://198.18.11.2:2380,site2=http://198.18.12.2:2380,site3=http://198.18.13.2:2380
for i in 1 2 3; do
    a=198.18.1$i.2
    in_ns "s$i" etcd --name "site$i" --data-dir "$WORK/etcd$i" \
        --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
        --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$NS" \
        --heartbeat-interval 50 --election-timeout 500 \
        --experimental-watch-progress-notify-interval 1s --logger zap --log-level warn \
        >"$WORK/etcd$i.log" 2>&1 &
    in_ns "s$i" python3 -m http.server 8080 --bind "$a" --directory "$WORK/www" >"$WORK/web$i.out" 2>&1 &
    bird_in "s$i" "site$i"
done
meridian_in() { # site number; the pid goes to MERIDIAN_PID_<i>
    ( cd "$WORK/conf" && exec ip netns exec "$NS-s$1" unshare --uts sh -c \
        "hostname site$1 && exec \"\$0\" serve --config meridian.toml" "$MERIDIAN" ) \
        >>"$WORK/meridian$1.log" 2>&1 &
    eval "MERIDIAN_PID_$1=$!"
    disown "$!"
}
gate_in() {
    in_ns "s$1" env SERVICE_ADDR=$SERVICE PROBE_NAME=example.com BIRD_SOCKET="$WORK/site$1.ctl" \
        INTERVAL=0.2 RISE=2 FALL=2 "$root/dist/anycast/meridian-anycast-gate" >"$WORK/gate$1.log" 2>&1 &
}
etcd_healthy() { in_ns "s$1" curl -s --max-time 1 "http://198.18.1$1.2:2379/health" | grep -q '"health":"true"'; }
for i in 1 2 3; do wait_for 30 etcd_healthy "$i" >/dev/null || die "etcd on site$i did not come up"; done
for i in 1 2 3; do meridian_in "$i"; gate_in "$i"; done

# The router's route to the service address in region $1's table: via which site (1-3), or "-".
route_of() {
    ip -n "$NS-r" route show table "10$1" "$SERVICE" 2>/dev/null |
        sed -n 's/.*via 198\.18\.1\([123]\)\.2.*/\1/p' | head -n1 | grep . || echo -
}
routed_to() { [ "$(route_of "$1")" = "$2" ]; }
for i in 1 2 3; do wait_for 40 routed_to "$i" "$i" >/dev/null || die "region $i is not routed to site $i"; done

# One query from namespace $1 (to the anycast address) for www, ECS $2 (or none): the answer.
ask() {
    local ecs=()
    [ -z "${2:-}" ] || ecs=(--subnet "$2")
    in_ns "$1" "$MERIDIAN" probe "$SERVICE" www.example.com A --count 1 --timeout 0.5 "${ecs[@]}" 2>/dev/null |
        awk '{ print $5 }'
}
# Every site answers every region's subnet with that region's own site: the fleet agrees.
fleet_agrees() {
    local s r
    for s in 1 2 3; do
        for r in 1 2 3; do [ "$(ask "s$s" "198.18.3$r.0/24")" = "198.18.1$r.2" ] || return 1; done
    done
}
wait_for 30 fleet_agrees >/dev/null || die "the sites do not agree at start"

# Runs the probes named in $@ ("c1" .. "s3", with ECS for region 1 from sites) for $WINDOW
# seconds in the background, logs in $WORK/p-<scenario>-<ns>.out; PROBES holds their pids.
start_probes() {
    local scenario=$1; shift
    local count=$((WINDOW * 1000 / INTERVAL_MS)) ns ecs
    PROBES=()
    for ns in "$@"; do
        ecs=()
        [[ $ns == s* ]] && ecs=(--subnet 198.18.31.0/24)
        in_ns "$ns" "$MERIDIAN" probe "$SERVICE" www.example.com A --interval 0.05 --timeout 1 \
            --count "$count" "${ecs[@]}" >"$WORK/p-$scenario-$ns.out" 2>"$WORK/p-$scenario-$ns.err" &
        PROBES+=($!)
    done
}
wait_probes() { local p; for p in "${PROBES[@]}"; do wait "$p" || true; done; }

# (A lost query's line comes a timeout after later answers' lines: sorted by send time first.)
# stat LOG FROM_MS [TO_MS]: "lost errors answered gap_ms" for queries sent in [FROM, TO):
# gap = from FROM to the first answered query after the last lost or failed one (0: none lost).
stat() {
    awk -v from="$2" -v to="${3:-99999999999999}" '
        $1 >= from && $1 < to {
            if ($3 == "timeout") { lost++; bad = $1 }
            else if ($3 != "NOERROR") { errors++; bad = $1 }
            else { answered++; if (bad && !resumed_after[bad]) { resumed_after[bad] = $1 } }
        }
        END {
            gap = 0
            if (bad) { gap = (resumed_after[bad] ? resumed_after[bad] : to) - from }
            printf "%d %d %d %d\n", lost, errors, answered, gap
        }' < <(sort -n -k1,1 "$1")
}
# flip LOG FROM_MS ADDRESS: ms from FROM until every later answer lacks ADDRESS (-1: never).
flip() {
    awk -v from="$2" -v addr="$3" '
        $1 >= from && $3 == "NOERROR" { if (index($5, addr)) last_with = $1; else if (!first_without || last_with >= first_without) first_without = $1 }
        END { if (first_without && first_without > last_with) print first_without - from; else print -1 }' < <(sort -n -k1,1 "$1")
}
answers_of() { awk '$3 == "NOERROR" { print $5 }' "$1" | sort | uniq -c | awk '{ printf "%sx%s ", $2, $1 }'; }

printf '\n  %-46s %-28s %-44s %s\n' scenario bound measured verdict
printf '  %s\n' "$(printf '%.0s-' {1..118})"

# --- 1 baseline --------------------------------------------------------------------------
WINDOW=3
start_probes base c1 c2 c3
wait_probes
for r in 1 2 3; do
    read -r lost errors answered _ < <(stat "$WORK/p-base-c$r.out" 0)
    only=$(awk '$3 == "NOERROR" { print $5 }' "$WORK/p-base-c$r.out" | sort -u | tr '\n' ' ')
    nsid=$(in_ns "c$r" dig +time=1 +tries=2 +norecurse +nsid @"$SERVICE" www.example.com A |
        sed -n 's/.*NSID: .*("\([^"]*\)").*/\1/p')
    digged=$(in_ns "c$r" dig +short +time=1 +tries=2 +norecurse @"$SERVICE" www.example.com A)
    record "baseline_region${r}_lost" "$lost"
    verdict=FAIL
    [ "$lost" = 0 ] && [ "$errors" = 0 ] && [ "$answered" -gt 0 ] && [ "$only" = "198.18.1$r.2 " ] &&
        [ "$digged" = "198.18.1$r.2" ] && [ "$nsid" = "site$r" ] && verdict=ok
    row "1 baseline: region $r" "own site, 0 lost" "site$r (NSID), ${only% }, $lost lost" "$verdict"
done

# --- 2 a site's backend fails ------------------------------------------------------------
WINDOW=8
start_probes backend c1 s1 s2 s3
sleep 1.5
t0=$(now_ms)
for pid in $(ip netns pids "$NS-s1"); do
    [[ "$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)" == *http.server* ]] && kill -9 "$pid"
done
wait_probes
worst=0 verdict=ok each=""
for ns in s1 s2 s3 c1; do
    ms=$(flip "$WORK/p-backend-$ns.out" "$t0" 198.18.11.2)
    read -r lost errors _ _ < <(stat "$WORK/p-backend-$ns.out" 0)
    record "backend_flip_ms_$ns" "$ms"
    each+="$ns $(awk -v m="$ms" 'BEGIN { printf "%.2f", m / 1000 }') "
    if [ "$ms" -lt 0 ] || [ "$ms" -gt "$BOUND_MS" ] || [ "$lost" != 0 ] || [ "$errors" != 0 ]; then verdict=FAIL; fi
    [ "$ms" -le "$worst" ] || worst=$ms
done
record backend_bound_ms "$BOUND_MS"
row "2 backend of site1 fails: all instances move" "<= ${BOUND_S} s (meridian check)" "${each% } s, 0 lost" "$verdict"
in_ns s1 python3 -m http.server 8080 --bind 198.18.11.2 --directory "$WORK/www" >>"$WORK/web1.out" 2>&1 &
back=$(wait_for 20 fleet_agrees) || die "the fleet did not take web1 back"
record backend_back_ms "$back"
row "2 backend of site1 back: all instances return" "<= 20 s" "all answer web1 again after $(awk -v g="$back" 'BEGIN{printf "%.2f", g/1000}') s" ok

# --- 3a a site's meridian stops ----------------------------------------------------------
WINDOW=14
start_probes stop c1 c2 c3
sleep 1.5
t0=$(now_ms)
kill -9 "$MERIDIAN_PID_1"
withdrawn=$(wait_for 10 routed_to 1 2) || die "region 1 was not moved to site 2"
sleep 2
t_restart=$(now_ms)
meridian_in 1
returned=$(wait_for 30 routed_to 1 1) || die "site 1 was not announced again after its restart"
wait_probes
read -r lost errors answered gap < <(stat "$WORK/p-stop-c1.out" "$t0" "$t_restart")
read -r lost_back errors_back _ _ < <(stat "$WORK/p-stop-c1.out" "$t_restart")
others=0
for r in 2 3; do read -r l e _ _ < <(stat "$WORK/p-stop-c$r.out" 0); others=$((others + l + e)); done
record stop_withdrawn_ms "$withdrawn"; record stop_lost "$lost"; record stop_gap_ms "$gap"
record stop_errors "$errors"; record stop_return_lost "$lost_back"; record stop_others_lost "$others"
# Bound: the gate's FALL (2) x INTERVAL (0.2 s) + a probe's timeout (1 s, a stopped server
# refuses at once) + BGP, with slack for 2 loaded cores: 3 s, at most 60 queries at 50 ms.
verdict=FAIL
[ "$gap" -le 3000 ] && [ "$lost" -le 60 ] && [ "$errors" = 0 ] && [ "$lost_back" = 0 ] &&
    [ "$errors_back" = 0 ] && [ "$others" = 0 ] && verdict=ok
row "3a site1 meridian killed -> site2" "<= 3 s, <= 60 lost" "resumed $(awk -v g="$gap" 'BEGIN{printf "%.2f", g/1000}') s, $lost lost (route $((withdrawn))ms)" "$verdict"
row "3a site1 restarted -> back to site1" "0 lost" "announced $(awk -v g="$returned" 'BEGIN{printf "%.2f", g/1000}') s after start, $lost_back lost" "$([ "$lost_back" = 0 ] && [ "$errors_back" = 0 ] && echo ok || echo FAIL)"

# --- 3b a site is drained ----------------------------------------------------------------
WINDOW=8
start_probes drain c1 c2 c3
sleep 1.5
t0=$(now_ms)
kill -USR1 "$MERIDIAN_PID_2"
withdrawn=$(wait_for 10 routed_to 2 3) || die "region 2 was not moved to site 3 after the drain"
sleep 1.5
t_undrain=$(now_ms)
kill -USR2 "$MERIDIAN_PID_2"
returned=$(wait_for 10 routed_to 2 2) || die "site 2 was not announced again after the undrain"
wait_probes
total=0
for r in 1 2 3; do read -r l e _ _ < <(stat "$WORK/p-drain-c$r.out" 0); total=$((total + l + e)); done
record drain_withdrawn_ms "$withdrawn"; record drain_lost "$total"; record drain_return_ms "$returned"
row "3b site2 drained -> site3, undrained -> site2" "0 lost" "withdrawn $(awk -v g="$withdrawn" 'BEGIN{printf "%.2f", g/1000}') s, back $(awk -v g="$returned" 'BEGIN{printf "%.2f", g/1000}') s, $total lost" "$([ "$total" = 0 ] && echo ok || echo FAIL)"
: "$t_undrain"

# --- 4 a site cut off from the others and from etcd -------------------------------------
mode_of() { in_ns "s$1" curl -s --max-time 1 http://127.0.0.1:8053/status | sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p'; }
mode_is() { [ "$(mode_of "$1")" = "$2" ]; }
WINDOW=16
start_probes cut c1 c2 c3
sleep 1.5
t_cut=$(now_ms)
# Site 3 keeps only its routes to the clients (and its BGP neighbour, on-link).
# (Client routes first, then the default goes: no instant without a way back to the clients.)
for r in 1 2 3; do in_ns s3 ip route add "198.18.3$r.0/24" via 198.18.13.1; done
in_ns s3 ip route del default
local_ms=$(wait_for 10 mode_is 3 local) || die "site 3 did not notice it is cut off"
sleep 4
answer_cut=$(ask s3 198.18.33.0/24)
t_heal=$(now_ms)
in_ns s3 ip route add default via 198.18.13.1
for r in 1 2 3; do in_ns s3 ip route del "198.18.3$r.0/24"; done
shared_ms=$(wait_for 20 mode_is 3 shared) || die "site 3 did not rejoin the fleet"
agree_ms=$(wait_for 20 fleet_agrees) || die "the fleet does not agree after the heal"
agree_ms=$(($(now_ms) - t_heal))
wait_probes
total=0 each=""
for r in 1 2 3; do
    read -r l e _ _ < <(stat "$WORK/p-cut-c$r.out" 0)
    total=$((total + l + e)); each+="c$r $((l + e)) "
done
c3_answers=$(answers_of "$WORK/p-cut-c3.out")
record cut_local_ms "$local_ms"; record cut_lost "$total"; record cut_agree_ms "$agree_ms"
record cut_rejoin_ms "$shared_ms"
verdict=FAIL
[ "$total" = 0 ] && [ "$answer_cut" = 198.18.13.2 ] && verdict=ok
row "4 site3 cut off: answers on its own" "0 lost, 0 SERVFAIL" "local after $(awk -v g="$local_ms" 'BEGIN{printf "%.2f", g/1000}') s; lost ${each% }; c3 got ${c3_answers% }" "$verdict"
row "4 healed: the fleet agrees again" "<= 20 s" "rejoined $(awk -v g="$shared_ms" 'BEGIN{printf "%.2f", g/1000}') s, agree $(awk -v g="$agree_ms" 'BEGIN{printf "%.2f", g/1000}') s" ok
: "$t_cut"

# --- 5 a reload pushed to all sites ------------------------------------------------------
release_of() {
    in_ns "s$1" "$MERIDIAN" probe "$SERVICE" release.example.com TXT --count 1 --timeout 0.5 2>/dev/null | awk '{ print $5 }'
}
all_released() { local s; for s in 1 2 3; do [[ "$(release_of "$s")" == *two* ]] || return 1; done; }
WINDOW=6
start_probes reload c1 c2 c3
sleep 1.5
zone 2 two >"$WORK/conf/zones/example.com.zone.tmp"
mv "$WORK/conf/zones/example.com.zone.tmp" "$WORK/conf/zones/example.com.zone"
t0=$(now_ms)
reload_failed=0
for s in 1 2 3; do
    in_ns "s$s" curl -s --max-time 5 -X POST http://127.0.0.1:8053/reload | grep -q '"ok":true' || reload_failed=1
    sleep 0.5
done
served_ms=$(wait_for 10 all_released) || die "not every site serves the new zone"
served_ms=$(($(now_ms) - t0))
wait_probes
total=0
for r in 1 2 3; do read -r l e _ _ < <(stat "$WORK/p-reload-c$r.out" 0); total=$((total + l + e)); done
record reload_lost "$total"; record reload_all_served_ms "$served_ms"
row "5 reload pushed to all sites" "0 lost" "all serve it after $(awk -v g="$served_ms" 'BEGIN{printf "%.2f", g/1000}') s, $total lost" "$([ "$total" = 0 ] && [ "$reload_failed" = 0 ] && echo ok || echo FAIL)"

echo
if [ "$FAILED" = 0 ]; then
    echo "geode-sim: every scenario held"
else
    echo "geode-sim: a scenario failed (logs below)"
    logs_tail
    exit 1
fi
