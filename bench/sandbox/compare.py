#!/usr/bin/env python3
"""`kiln run -- /bin/true` of two or more builds side by side, in alternating
rounds, against the bare command, bubblewrap and jail-floor (kernel work
alone, bench/sandbox/jail_floor.c: the least any jail does, and with --spec
all that the issue's jail must do), plus `kiln version` (the process's own
start and exit).

    python3 bench/sandbox/compare.py BUILD_DIR [BUILD_DIR...] [--rounds 5] [--runs 60]

Each round times every command `--runs` times (wall clock, fork to wait) and
keeps the median; the table gives the median of the rounds and every
round's figure. Alternating rounds put the builds side by side while this
VM's speed drifts. Build the baseline in a second clone of the repository.
Standard library only; run as root for the cgroup-enforcing configuration."""
import argparse
import os
import shutil
import statistics

from timing import BWRAP, jail_floor, median_ms, netns_holder

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", help="build directories (each with cli/kiln)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=60)
    a = ap.parse_args()

    commands = {"bare /bin/true": ["/bin/true"]}
    for b in a.builds:
        commands[f"kiln run ({b})"] = [os.path.join(b, "cli", "kiln"), "run", "--validation", "off", "--", "/bin/true"]
    if shutil.which("bwrap"):
        commands["bwrap --unshare-all"] = BWRAP + ["/bin/true"]
    # Kernel work alone (jail_floor.c), from the last build that has it;
    # root and cgroup v1 only. --spec makes its own network namespace, as
    # `kiln run` does.
    floors = [f for f in map(jail_floor, a.builds) if f]
    if floors:
        commands["jail-floor (least kernel work)"] = [floors[-1], "/bin/true"]
        commands["jail-floor --spec (the issue's jail)"] = [floors[-1], "--spec", "/bin/true"]
        # The same joining a network namespace made beforehand: what the jail
        # costs when making its namespace is off the critical path.
        holder, netns = netns_holder()
        commands["jail-floor --spec, netns made before"] = [floors[-1], "--spec", "--netns", netns, "/bin/true"]
    for b in a.builds:
        commands[f"kiln version ({b})"] = [os.path.join(b, "cli", "kiln"), "version"]

    print(f"rounds={a.rounds} runs={a.runs} uid={os.geteuid()} load={os.getloadavg()[0]:.2f}")
    rounds = {name: [] for name in commands}
    for _ in range(a.rounds):
        for name, argv in commands.items():
            rounds[name].append(median_ms(argv, a.runs))
    if floors:
        holder.kill()
        holder.wait()
    bare = statistics.median(rounds["bare /bin/true"])
    for name, values in rounds.items():
        m = statistics.median(values)
        print(f"{name:40s} {m:6.2f} ms  over bare {m - bare:5.2f} ms  rounds "
              + ", ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
