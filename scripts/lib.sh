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
    for svc in knot nsd gdnsd; do $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
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
