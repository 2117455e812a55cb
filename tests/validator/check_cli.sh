#!/bin/sh
# kiln check end to end: exit codes (0 allow, 1 ask, 2 deny, 64 usage), the
# language guess, --preset, and the JSON contract's top-level keys.
#   check_cli.sh KILN CORPUS_DIR
set -u
kiln=$1
corpus=$2
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {  # expect CODE DESCRIPTION -- ARGS...
    want=$1 what=$2
    shift 3
    "$kiln" check "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL $what: exit $got, want $want"
        sed 's/^/    /' "$tmp/out" "$tmp/err"
        fail=1
    else
        echo "ok   $what (exit $got)"
    fi
}

# --controls none: the verdict must not depend on what this host's sandbox can do.
expect 0 "benign python allowed" -- --controls none "$corpus/benign/csv_stats.py"
expect 0 "benign shell allowed (language from #!)" -- --controls none "$corpus/benign/text_report.sh"
expect 0 "benign javascript allowed" -- --controls none "$corpus/benign/json_stats.js"
expect 2 "fork bomb denied" -- --controls none "$corpus/hostile/sh_fork_bomb.sh"
expect 1 "os.system(input()) asks under balanced" -- --controls none "$corpus/hostile/py_os_system.py"
expect 2 "os.system(input()) denied under strict" -- --controls none --preset strict "$corpus/hostile/py_os_system.py"
expect 0 "permissive warns only" -- --controls none --preset permissive "$corpus/hostile/sh_fork_bomb.sh"
expect 0 "all controls in force lower a high finding" -- --controls all "$corpus/hostile/py_os_system.py"
expect 1 "an attack signature asks even with all controls" -- --controls all "$corpus/hostile/sh_modprobe.sh"
expect 2 "an attack signature is denied under strict" -- --controls all --preset strict "$corpus/hostile/sh_modprobe.sh"
expect 64 "unknown language is a usage error" -- --language cobol "$corpus/benign/csv_stats.py"
expect 64 "unknown control is a usage error" -- --controls C999 "$corpus/benign/csv_stats.py"
expect 64 "missing file is a usage error" -- "$tmp/does-not-exist.py"
expect 64 "unknown preset is a usage error" -- --preset lax "$corpus/benign/csv_stats.py"

"$kiln" --set policy.file="$tmp/missing.yaml" check "$corpus/benign/csv_stats.py" >/dev/null 2>&1
got=$?
if [ $got -ne 78 ]; then
    echo "FAIL unreadable policy file: exit $got, want 78"
    fail=1
else
    echo "ok   unreadable policy file is a config error (exit 78)"
fi

printf 'import os\nos.system(input())\n' | "$kiln" check --controls none --language python --json - >"$tmp/json"
for key in '"decision": "ask"' '"risk": "high"' '"findings"' '"threats"' '"reasons"' '"rule": "py.dynamic-command"' \
           '"threat": "T002"' '"mitigated": false' '"line": 2'; do
    if ! grep -q "$key" "$tmp/json"; then
        echo "FAIL --json output lacks $key"
        fail=1
    fi
done
[ $fail -eq 0 ] && echo "ok   --json contract keys"

"$kiln" check --controls all --json "$corpus/hostile/sh_modprobe.sh" >"$tmp/attack.json"
if grep -q '"attack_signature": true' "$tmp/attack.json" && grep -q 'attack signature' "$tmp/attack.json"; then
    echo "ok   --json marks the attack signature and says why it was held"
else
    echo "FAIL --json lacks attack_signature or its reason"
    sed 's/^/    /' "$tmp/attack.json"
    fail=1
fi
exit $fail
