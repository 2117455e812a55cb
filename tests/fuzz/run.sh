#!/bin/sh
# Runs each validator fuzz target for a bounded time.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 20)
# BUILD_DIR must be configured with CXX=clang++ and -Dfuzz=true. Seeds come
# from the validator corpora; new inputs go to a scratch directory, and any
# crash is saved in BUILD_DIR/fuzz-artifacts/ and fails the script.
set -eu
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
corpus_src="$here/../validator"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for lang in python shell javascript; do
    bin="$build/tests/fuzz/fuzz_$lang"
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin missing: CXX=clang++ meson setup $build -Dfuzz=true && ninja -C $build" >&2
        exit 2
    fi
    case $lang in
        python) ext=py ;;
        shell) ext=sh ;;
        javascript) ext=js ;;
    esac
    work=$(mktemp -d)
    for f in "$corpus_src"/benign/*."$ext"* "$corpus_src"/hostile/*."$ext"*; do
        [ -f "$f" ] && cp "$f" "$work/"
    done
    echo "== fuzz_$lang for ${seconds}s (seeds: $(ls "$work" | wc -l))"
    if ! "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$artifacts/$lang-" -print_final_stats=1 "$work" 2>"$build/fuzz-$lang.log"; then
        echo "fuzz_$lang FAILED; see $build/fuzz-$lang.log and $artifacts/" >&2
        tail -n 40 "$build/fuzz-$lang.log" >&2
        status=1
    fi
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov:" "$build/fuzz-$lang.log" | tail -n 3
    rm -rf "$work"
done
exit $status
