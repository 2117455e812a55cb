#!/usr/bin/env bash
# Runs every fuzz target for the same bounded time, as many at once as there
# are CPUs (each libFuzzer process uses one).
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 20)
#   tests/fuzz/run.sh --targets      the ninja targets to build first
# BUILD_DIR must be configured with CXX=clang++ and -Dfuzz=true. Seeds: the
# validator corpora for the tokenizers, tests/fuzz/seeds/<target>/ for the
# others (inputs that once crashed are kept there). New inputs go to a
# scratch directory; any crash is saved in BUILD_DIR/fuzz-artifacts/ and
# fails the script.
set -eu
# target, the longest input worth trying.
targets="python:8192 shell:8192 javascript:8192 jsonrpc:4096 line_reader:2048 workspace_path:512"
if [ "${1:-}" = --targets ]; then
    for entry in $targets; do echo "tests/fuzz/fuzz_${entry%%:*}"; done
    exit 0
fi
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]}
seconds=${2:-20}
jobs=$(nproc)
here=$(cd "$(dirname "$0")" && pwd)
validator_corpus="$here/../validator"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

copy_seeds() {  # TARGET DIR
    case $1 in
        python) ext=py ;;
        shell) ext=sh ;;
        javascript) ext=js ;;
        *) cp "$here/seeds/$1"/* "$2/"; return ;;
    esac
    for f in "$validator_corpus"/benign/*."$ext"* "$validator_corpus"/hostile/*."$ext"*; do
        [ -f "$f" ] && cp "$f" "$2/"
    done
}

# One target, its report printed whole when it ends (so parallel runs do not
# interleave); the exit status says whether it found a crash.
fuzz_one() {  # NAME MAX_LEN
    local name=$1 max_len=$2 bin="$build/tests/fuzz/fuzz_$1" work status=0
    work=$(mktemp -d)
    copy_seeds "$name" "$work"
    local seeds
    seeds=$(ls "$work" | wc -l)
    "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/$name-" -print_final_stats=1 "$work" 2>"$build/fuzz-$name.log" || status=1
    {
        echo "== fuzz_$name for ${seconds}s (seeds: $seeds)"
        if [ $status -ne 0 ]; then
            echo "fuzz_$name FAILED; see $build/fuzz-$name.log and $artifacts/"
            tail -n 40 "$build/fuzz-$name.log"
        fi
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov:" "$build/fuzz-$name.log" | tail -n 3
    } >&2
    rm -rf "$work"
    return $status
}

for entry in $targets; do
    bin="$build/tests/fuzz/fuzz_${entry%%:*}"
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin missing: CXX=clang++ meson setup $build -Dfuzz=true && ninja -C $build" >&2
        exit 2
    fi
done

status=0
running=0
for entry in $targets; do
    if [ $running -ge "$jobs" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
    fuzz_one "${entry%%:*}" "${entry#*:}" &
    running=$((running + 1))
done
while [ $running -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done
exit $status
