# shellcheck shell=bash
# Shared by the test and measurement scripts (sourced, not run).

# Installs the Debian packages named in the arguments (none: nothing to do) and disables the
# services they bring (knot, nsd, gdnsd): the scripts start instances of their own.
install_packages() {
    [ $# -gt 0 ] || return 0
    echo "installing: $*" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
    for svc in knot nsd gdnsd prometheus prometheus-node-exporter etcd bird unbound; do $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
}

# Stops process $1: SIGTERM, up to $2 × 0.2 s (default 50) for it to exit, then SIGKILL.
stop_process() {
    local pid=$1 tries=${2:-50}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tries"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The EXIT trap: kills (SIGKILL) every pid in the array PIDS and removes the directory WORK; no arguments.
cleanup() {
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

# Sets FREE_PORT to a port no socket uses, below the ephemeral range, never one handed out before; no arguments.
free_port() {
    local low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
    while :; do
        FREE_PORT=$((20000 + RANDOM % (low > 21000 ? low - 20000 : 10000)))
        if [[ "${FREE_PORTS_TAKEN:-} " != *" $FREE_PORT "* ]] && [ -z "$(ss -Hanut "sport = :$FREE_PORT")" ]; then
            FREE_PORTS_TAKEN+=" $FREE_PORT"
            return
        fi
    done
}

# Prints the numbers in the arguments (space-separated lists; "-" and other words dropped), one a line, ascending.
sorted() { tr -s ' \t' '\n' <<<"$*" | { grep -E '^-?([0-9]+\.?[0-9]*|\.[0-9]+)$' || true; } | sort -g; }

# Prints the median of the numbers in the arguments (space-separated lists; "-" when there are none).
median() { sorted "$@" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

# Prints $1 / $2 with $3 decimals (default 2), or "-" unless both are positive numbers.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%." d "f", a / b; else print "-" }'; }

# [--keep-mtime] FILE CMD [ARG...]: replaces FILE by rename, as editors and git do, with what CMD prints (FILE on its stdin).
rewrite_zone() {
    local keep=0 file tmp
    if [ "${1:-}" = --keep-mtime ]; then
        keep=1
        shift
    fi
    file=$1
    shift
    # A hidden file beside it: the same file system (an atomic rename), ignored by meridian's watcher.
    tmp=$(dirname "$file")/.$(basename "$file").new
    "$@" <"$file" >"$tmp" || {
        rm -f "$tmp"
        return 1
    }
    [ "$keep" = 0 ] || touch -r "$file" "$tmp"
    mv -f "$tmp" "$file"
}
