#!/usr/bin/env bash
# Installs what Kiln needs (Debian 12 packages, npm test packages), builds it,
# then serves or tests.
#
#   ./setup.sh serve [kiln serve flags...]   install, build, serve MCP on stdio
#   ./setup.sh test                          install, build, run every test suite
#   ./setup.sh build                         install and build only
#
# It also installs the data stack programs in the jail use (Debian's numpy,
# pandas, matplotlib; the jail sees them through its read-only /usr).
# KILN_SKIP_DATA_STACK=1 leaves them out (then `import pandas` fails in the
# jail, and the tests that need them fail saying to run ./setup.sh).
#
# Run as root (or through sudo): packages are installed with apt-get, and the
# sandbox tests need root to exercise cgroups and to test as a plain user.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  build-essential pkg-config meson ninja-build
  nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev libseccomp-dev
  libyaml-cpp-dev doctest-dev libcli11-dev libssl-dev libvalijson-dev
  python3 util-linux iproute2 passwd
  libarchive-dev debootstrap
  clang libclang-rt-14-dev
  musl-tools
  prometheus
  openssl
  docker.io curl haproxy
)
# Seen by code in the jail through /usr, not used by Kiln itself.
DATA_STACK_PACKAGES=(python3-numpy python3-pandas python3-matplotlib)

log() { printf '==> [%s, %ss] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
    echo "setup.sh: run as root (installs Debian packages)" >&2
    exit 1
  fi
}

install_deps() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  if [ "${KILN_SKIP_DATA_STACK:-0}" = 1 ]; then
    log "data stack (${DATA_STACK_PACKAGES[*]}) skipped: KILN_SKIP_DATA_STACK=1"
  else
    local stack=()
    for p in "${DATA_STACK_PACKAGES[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || stack+=("$p")
    done
    if [ ${#stack[@]} -gt 0 ]; then
      log "installing the data stack for code in the jail: ${stack[*]} (KILN_SKIP_DATA_STACK=1 skips it)"
      missing+=("${stack[@]}")
    else
      log "data stack present: ${DATA_STACK_PACKAGES[*]}"
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

build() {
  local dir=${1:-build}; shift || true
  if [ ! -f "$dir/build.ninja" ]; then
    log "configuring $dir"
    meson setup "$dir" "$@" >/dev/null
  fi
  log "building $dir"
  ninja -C "$dir"
}

install_npm_test_deps() {
  if [ -f tests/e2e/package-lock.json ] && [ ! -d tests/e2e/node_modules ]; then
    log "installing the e2e test's npm packages"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The sandbox suites also run as an ordinary user; this is that user.
ensure_test_user() {
  id kilntest >/dev/null 2>&1 || useradd --create-home --shell /bin/sh kilntest
}

# The jail suite's cases that do not apply on this host (doctest counts them
# as skipped), each with its reason, from the log of the run.
print_skipped() {
  log "test cases skipped as not applicable on this host:"
  grep -h "^SKIPPED (not applicable here)" build/meson-logs/testlog.txt | sort | uniq -c || echo "  none"
}

# The Docker runtime's suite needs a daemon and the test image, both made
# here without a registry (tests/docker/); without them it skips, and under
# KILN_MUST_WORK=1 (CI) fails.
prepare_docker() {
  log "starting dockerd if none answers, building the test image if absent"
  tests/docker/start-dockerd.sh >/dev/null
  tests/docker/build-image.sh >/dev/null
}

run_tests() {
  install_npm_test_deps
  ensure_test_user
  # The docker and deploy suites need a daemon and the test image.
  prepare_docker
  log "running the test suites"
  meson test -C build --print-errorlogs --num-processes 2 || { print_skipped; exit 1; }
  print_skipped
  # -O0: the sanitizers' checks are the same at any level, and GCC compiles
  # this build about twice as fast as at -O2 (the whole run's largest step).
  log "running the suites again under ASan+UBSan (the jail and deploy suites only in the plain build)"
  build build-asan -Dsanitize=true -Doptimization=0
  # deploy packs the plain build into Kiln's image: under ASan it would run the same binaries again.
  meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite sandbox --no-suite deploy
  log "fuzzing each target (tokenizers, JSON-RPC framing, workspace paths) for ${KILN_FUZZ_SECONDS:-20}s (libFuzzer, clang)"
  if [ ! -f build-fuzz/build.ninja ]; then CXX=clang++ meson setup build-fuzz -Dfuzz=true >/dev/null; fi
  # shellcheck disable=SC2046  # one target per word
  ninja -C build-fuzz $(tests/fuzz/run.sh --targets)
  tests/fuzz/run.sh build-fuzz "${KILN_FUZZ_SECONDS:-20}"
  log "done in ${SECONDS}s"
  summarize_suites build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
}

# One closing line over both meson runs (each line of testlog.json is a test).
summarize_suites() {
  python3 - "$@" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    for line in open(path):
        result = json.loads(line).get("result", "FAIL")
        counts["OK" if result == "OK" else "SKIP" if result == "SKIP" else "FAIL"] += 1
print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
}

cmd=${1:-}
case "$cmd" in
  serve) shift; need_root serve "$@"; install_deps >&2; build >&2; exec ./build/cli/kiln serve "$@" ;;
  test)  need_root test; install_deps; build; run_tests ;;
  build) need_root build; install_deps; build ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
