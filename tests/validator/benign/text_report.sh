#!/bin/sh
# Count words in every text file under /workspace and list the top ten.
# (Words like rm -rf / or sudo in comments must not trigger anything.)
set -eu
cd /workspace
for f in *.txt; do
    [ -f "$f" ] || continue
    printf '%s %s\n' "$(wc -w < "$f")" "$f"
done | sort -rn | head -n 10
grep -c "ERROR" app.log || true
awk -F, 'NR > 1 { sum += $3 } END { print "total:", sum }' sales.csv
sed -e 's/[[:space:]]\+/ /g' raw.txt > clean.txt
echo "done: rm nothing, curl nothing"
