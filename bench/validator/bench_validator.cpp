// p50/p95/p99 of security::assess() on 1 KB, 10 KB and 1 MB inputs.
//
// Inputs are realistic code: a ~1 KB chunk of ordinary data-processing code
// per language with one risky call in it (so rules fire and findings are
// built, as in real use), repeated to the target size. The baseline, timed
// in the same run on the same input, is one linear pass that counts
// newlines: the ratio says how many "plain scans" the validator costs, which
// is comparable across machines where absolute microseconds are not.
//
// Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall
// time: the build machine is shared, and waiting for a core is not the
// validator's cost. Wall-clock percentiles are printed too for comparison.
//
// Usage: bench_validator [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <time.h>

#include "security/validator.hpp"

using namespace kiln;
using namespace kiln::security;
using Clock = std::chrono::steady_clock;

namespace {

const char* kPythonChunk = R"PY(import csv
import json
from collections import Counter
from pathlib import Path

def load_rows(path):
    # Read every row of a CSV file into dictionaries.
    with open(path, newline="") as f:
        return list(csv.DictReader(f))

def summarise(rows, key):
    counts = Counter(r[key] for r in rows if r.get(key))
    total = sum(float(r.get("amount", 0) or 0) for r in rows)
    return {"top": counts.most_common(5), "total": round(total, 2)}

rows = load_rows(Path("/workspace") / "sales.csv")
report = summarise(rows, "region")
text = json.dumps(report, indent=2)
Path("/workspace/report.json").write_text(text)
for i, row in enumerate(rows[:10]):
    print(f"{i:3d} {row.get('region', '?'):>12} {row.get('amount', 0)}")
import os
os.system("ls /workspace")
values = [float(r["amount"]) for r in rows if r.get("amount")]
mean = sum(values) / max(len(values), 1)
print("mean", mean, "max", max(values, default=0))
)PY";

const char* kShellChunk = R"SH(#!/bin/sh
# Count words in every text file under /workspace and list the top ten.
set -eu
cd /workspace
for f in *.txt; do
    [ -f "$f" ] || continue
    printf '%s %s\n' "$(wc -w < "$f")" "$f"
done | sort -rn | head -n 10
grep -c "ERROR" app.log || true
awk -F, 'NR > 1 { sum += $3 } END { print "total:", sum }' sales.csv
sed -e 's/[[:space:]]\+/ /g' raw.txt > clean.txt
mkdir -p /workspace/out && cp clean.txt /workspace/out/
tar -czf /workspace/out.tgz -C /workspace out
sha256sum /workspace/out.tgz | cut -d' ' -f1 > /workspace/out.sha256
curl -s http://example.invalid/data.csv -o data.csv
ls -la /workspace/out
count=0
while [ "$count" -lt 3 ]; do count=$((count + 1)); echo "pass $count"; done
echo "done"
)SH";

const char* kJsChunk = R"JS(// Summarise a JSON file in /workspace.
const fs = require('fs');
const path = require('path');
const file = path.join('/workspace', 'data.json');
const items = JSON.parse(fs.readFileSync(file, 'utf8'));
const byCategory = items.reduce((acc, it) => {
  acc[it.category] = (acc[it.category] || 0) + it.amount;
  return acc;
}, {});
const sorted = Object.entries(byCategory).sort((a, b) => b[1] - a[1]);
for (const [cat, total] of sorted) {
  console.log(`${cat.padEnd(20)} ${total.toFixed(2)}`);
}
const re = /[a-z]+\/[0-9]+/g;
const matches = (items[0] && items[0].name || '').match(re) || [];
const { execSync } = require('child_process');
execSync('ls /workspace');
fs.writeFileSync('/workspace/summary.json', JSON.stringify(Object.fromEntries(sorted), null, 2));
console.log(matches.length, sorted.length / 2);
)JS";

std::string make_input(const char* chunk, std::size_t size) {
    std::string s;
    while (s.size() < size) s += chunk;
    s.resize(size);
    // End on a line boundary so the last construct is complete.
    if (auto nl = s.rfind('\n'); nl != std::string::npos) s.resize(nl + 1);
    return s;
}

struct Stats {
    double p50, p95, p99;
};

Stats percentiles(std::vector<double> us) {
    std::sort(us.begin(), us.end());
    auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * (us.size() - 1) + 0.5))]; };
    return {at(0.50), at(0.95), at(0.99)};
}

double thread_cpu_us() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct Timed {
    Stats cpu, wall;
};

template <class F>
Timed time_runs(int iterations, F&& f) {
    std::vector<double> cpu, wall;
    cpu.reserve(iterations);
    wall.reserve(iterations);
    for (int i = 0; i < iterations; ++i) {
        auto w0 = Clock::now();
        double c0 = thread_cpu_us();
        f();
        cpu.push_back(thread_cpu_us() - c0);
        wall.push_back(std::chrono::duration<double, std::micro>(Clock::now() - w0).count());
    }
    return {percentiles(std::move(cpu)), percentiles(std::move(wall))};
}

volatile std::size_t g_sink;

}  // namespace

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    PolicyConfig pc;
    pc.preset = "permissive";  // max_code_size 4M: the 1 MB input is analysed, not rejected
    auto policy = load_policy(pc);
    if (!policy) {
        std::fprintf(stderr, "bench_validator: %s\n", policy.error().what().c_str());
        return 1;
    }
    struct Lang {
        const char* name;
        Language lang;
        const char* chunk;
    } langs[] = {{"python", Language::Python, kPythonChunk},
                 {"shell", Language::Shell, kShellChunk},
                 {"javascript", Language::JavaScript, kJsChunk}};
    struct Size {
        const char* label;
        std::size_t bytes;
        int iterations;
    } sizes[] = {{"1KB", 1000, quick ? 500 : 5000}, {"10KB", 10'000, quick ? 200 : 2000},
                 {"1MB", 1'000'000, quick ? 5 : 40}};

    std::printf("%-11s %-5s %9s %10s %10s %10s %10s %8s %9s %12s\n", "language", "size", "bytes", "p50_us", "p95_us",
                "p99_us", "us_per_KB", "findings", "x_scan", "wall_p95_us");
    for (const auto& l : langs) {
        for (const auto& sz : sizes) {
            std::string code = make_input(l.chunk, sz.bytes);
            std::size_t findings = assess(l.lang, code, {}, *policy).findings.size();
            for (int w = 0; w < 3; ++w) g_sink = assess(l.lang, code, {}, *policy).findings.size();  // warm up
            Timed t = time_runs(sz.iterations, [&] { g_sink = assess(l.lang, code, {}, *policy).findings.size(); });
            Timed base = time_runs(sz.iterations, [&] {
                g_sink = static_cast<std::size_t>(std::count(code.begin(), code.end(), '\n'));
            });
            std::printf("%-11s %-5s %9zu %10.1f %10.1f %10.1f %10.2f %8zu %9.0f %12.1f\n", l.name, sz.label,
                        code.size(), t.cpu.p50, t.cpu.p95, t.cpu.p99, t.cpu.p50 / (code.size() / 1000.0), findings,
                        base.cpu.p50 > 0 ? t.cpu.p50 / base.cpu.p50 : 0.0, t.wall.p95);
        }
    }
    return 0;
}
