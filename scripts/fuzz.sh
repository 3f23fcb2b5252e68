#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]
# Targets: parse_query, answer, zonefile, geoip (fuzz/fuzz_targets/). Crashes land in
# fuzz/artifacts/TARGET/, the corpus grows in fuzz/corpus/TARGET/ (both ignored by git).
# Uses the nightly toolchain when installed, else stable with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer args...]" >&2
    echo "targets: $(ls fuzz/fuzz_targets | sed 's/\.rs$//' | tr '\n' ' ')" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

# CARGO_TARGET_DIR, when set, also holds the fuzz builds (in a fuzz/ subdirectory).
target_dir=()
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target_dir=(--target-dir "$CARGO_TARGET_DIR/fuzz")
fi

mkdir -p "fuzz/corpus/$target"
extra=()
if [ "$target" = geoip ]; then
    # Random bytes are rarely a database: start from the demo one, and let inputs be as
    # large as it (libFuzzer's default limit is 4096 bytes). A table build walks on scoped
    # threads, which the scope waits for before their last frees (the thread handle, the
    # thread-local destructors list): LeakSanitizer sometimes checks in between and reports
    # those 112 bytes as leaked. They are freed a moment later, so leak checks are off here.
    cp -n geoip/demo-city.mmdb "fuzz/corpus/$target/demo-city.mmdb"
    extra=(-max_len=16384 -detect_leaks=0)
fi
exec cargo "${toolchain[@]}" fuzz run "${target_dir[@]}" "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" "$@"
