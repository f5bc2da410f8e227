#!/usr/bin/env python3
"""Instructions per packet of the sans-IO pipeline, counted by callgrind.

Time on a shared VM is noise; instruction counts are not. For every
scenario of the pipeline benchmark's instruction count
(`dataplane/lb/benches/pipeline.rs --icount NAME`: DR, GUE and NAT established
flows, one by one and in bursts, new connections, SYN cookies) this runs
the optimised benchmark binary under `valgrind --tool=callgrind
--cache-sim=yes`, counting only inside its measured function, and reports
per packet (per connection for `conn_new`): instructions, and
last-level-cache misses of callgrind's simulated caches (small tables:
these stay near zero; the timed benchmark shows what misses cost).

The committed baseline is perf/icount-baseline.json. The check fails when
a scenario's instructions per packet grow more than 5 % over it (or a
scenario is missing from it); a change that costs instructions on purpose
updates the baseline in the same commit:

    perf/icount.py            # check against the baseline
    perf/icount.py --update   # write the baseline from this run

Needs valgrind and cargo; builds the benchmark with `cargo bench --no-run`
(release profile).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "perf", "icount-baseline.json")
TOLERANCE = 0.05


def build():
    """Builds the pipeline benchmark; returns its executable."""
    out = subprocess.run(
        ["cargo", "bench", "--locked", "-p", "sluice-lb", "--bench", "pipeline",
         "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") \
                and m["target"]["name"] == "pipeline":
            return m["executable"]
    sys.exit("icount: cargo built no pipeline benchmark executable")


def scenarios(exe):
    out = subprocess.run([exe, "--icount"], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return out.split(":", 1)[1].split()


def count(exe, name):
    """Runs one scenario under callgrind: (units, {event: per unit})."""
    with tempfile.TemporaryDirectory() as d:
        cg = os.path.join(d, "callgrind.out")
        r = subprocess.run(
            ["valgrind", "--tool=callgrind", "--cache-sim=yes",
             "--toggle-collect=*icount_measured*",
             f"--callgrind-out-file={cg}", exe, "--icount", name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=600)
        if r.returncode != 0:
            sys.exit(f"icount: {name} failed:\n{r.stdout}\n{r.stderr[-3000:]}")
        events, totals = None, None
        with open(cg) as f:
            for line in f:
                if line.startswith("events:"):
                    events = line.split()[1:]
                elif line.startswith("totals:") or line.startswith("summary:"):
                    totals = [int(x) for x in line.split()[1:]]
    units = None
    for line in r.stdout.splitlines():
        key, _, value = line.partition(":")
        if key in ("packets", "connections"):
            units = (int(value), key)  # connections, when printed, win
    if not (events and totals and units):
        sys.exit(f"icount: no counts for {name}:\n{r.stdout}")
    per = {e: t / units[0] for e, t in zip(events, totals)}
    ll = sum(per.get(e, 0) for e in ("ILmr", "DLmr", "DLmw"))
    return units, {"instructions": round(per["Ir"], 1), "ll_misses": round(ll, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update", action="store_true",
                    help="write perf/icount-baseline.json from this run")
    ap.add_argument("names", nargs="*", help="scenarios (default: all)")
    a = ap.parse_args()
    exe = build()
    names = a.names or scenarios(exe)
    base = {}
    if os.path.exists(BASELINE):
        with open(BASELINE) as f:
            base = json.load(f)["scenarios"]
    result, failures = {}, []
    print(f"{'scenario':<16} {'unit':<11} {'instr/unit':>11} {'baseline':>10} "
          f"{'change':>8} {'LL misses/unit':>15}")
    for name in names:
        (_, unit), c = count(exe, name)
        result[name] = {"unit": unit.rstrip("s"), **c}
        b = base.get(name, {}).get("instructions")
        change = (c["instructions"] / b - 1) if b else None
        print(f"{name:<16} {unit.rstrip('s'):<11} {c['instructions']:>11.1f} "
              f"{f'{b:.1f}' if b else '-':>10} "
              f"{'' if change is None else f'{change:+.1%}':>8} {c['ll_misses']:>15.3f}")
        if b is None:
            failures.append(f"{name}: not in the baseline")
        elif change > TOLERANCE:
            failures.append(f"{name}: {c['instructions']:.1f} instructions per "
                            f"{unit.rstrip('s')}, {change:+.1%} over the baseline's {b:.1f}")
    if a.update:
        with open(BASELINE, "w") as f:
            json.dump({
                "what": "instructions and simulated last-level-cache misses per packet "
                        "(per connection for conn_new) of the pipeline benchmark's "
                        "--icount scenarios, from perf/icount.py",
                "valgrind": subprocess.run(["valgrind", "--version"], stdout=subprocess.PIPE,
                                           text=True).stdout.strip(),
                "scenarios": result,
            }, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"baseline written: {os.path.relpath(BASELINE, ROOT)}")
        return 0
    for m in failures:
        print(f"icount: FAIL {m}", file=sys.stderr)
    if failures:
        print("icount: a change that costs instructions on purpose updates the baseline "
              "in the same commit: perf/icount.py --update", file=sys.stderr)
        return 1
    print(f"icount: every scenario within {TOLERANCE:.0%} of the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
