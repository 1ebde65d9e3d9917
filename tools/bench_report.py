#!/usr/bin/env python3
"""Prints the table of Cascade's performance figures from cascade_bench's JSON.

Usage: tools/bench_report.py build/bench.json

Each figure is paired with its raw-RocksDB baseline from the same run:
  1  Fig1_DurableAppend/threads:N  vs  Fig1_RawAppend/threads:N   goal >= 0.8
  2  Fig2_Commands/threads:64      vs  Fig1_RawAppend/threads:64  goal >= 0.5
  3  Fig3_Replay/N                 vs  Fig3_RawScan/N             goal >= 0.5 and >= 1,000,000 events/s
Rates are items (events, commands) per second. With --benchmark_repetitions the
median of the repetitions is used. Only the standard library.
"""

import json
import re
import sys


def key_of(name):
    """(family, threads, arg) from a benchmark name such as
    'Fig1_RawAppend/min_time:1.000/real_time/threads:8' or 'Fig3_Replay/51200/real_time'."""
    parts = name.split("/")
    threads = 1
    arg = None
    for part in parts[1:]:
        match = re.fullmatch(r"threads:(\d+)", part)
        if match:
            threads = int(match.group(1))
        elif re.fullmatch(r"\d+", part):
            arg = int(part)
    return parts[0], threads, arg


def rate(fmt_entry):
    if fmt_entry is None:
        return None
    if fmt_entry.get("error_occurred"):
        return None
    return fmt_entry.get("items_per_second")


def human(value):
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k/s"
    return f"{value:.0f}/s"


def main(path):
    with open(path) as f:
        report = json.load(f)
    runs = {}
    medians = {}
    for entry in report.get("benchmarks", []):
        if entry.get("run_type", "iteration") == "iteration":
            runs[key_of(entry["name"])] = entry
        elif entry.get("aggregate_name") == "median":
            # --benchmark_repetitions=N: the median of the N runs stands for the figure.
            medians[key_of(entry.get("run_name", entry["name"]))] = entry
    runs.update(medians)

    rows = []  # figure, cascade, baseline, ratio, goal, met, note

    def add(figure, cascade, baseline, goal_ratio, note="", floor=None):
        c, b = rate(cascade), rate(baseline)
        ratio = c / b if c is not None and b else None
        met = ratio is not None and ratio >= goal_ratio and (floor is None or c >= floor)
        goal = f">= {goal_ratio}" + (f", >= {human(floor)}" if floor else "")
        if cascade is not None and cascade.get("error_occurred"):
            note = ("error: " + cascade.get("error_message", "")).strip()
        rows.append((figure, human(c), human(b), "-" if ratio is None else f"{ratio:.2f}", goal,
                     "yes" if met else "NO", note))

    for threads in sorted({t for (fam, t, _) in runs if fam == "Fig1_DurableAppend"}):
        cascade = runs.get(("Fig1_DurableAppend", threads, None))
        baseline = runs.get(("Fig1_RawAppend", threads, None))
        def per_fsync(entry):
            if entry is None or "events_per_fsync" not in entry:
                return "-"
            return f"{entry['events_per_fsync']:.1f}"
        note = f"events/fsync: Cascade {per_fsync(cascade)}, raw {per_fsync(baseline)}"
        add(f"1 durable append, {threads} writer(s)", cascade, baseline, 0.8, note)

    for (fam, threads, _), cascade in sorted(runs.items()):
        if fam != "Fig2_Commands":
            continue
        baseline = runs.get(("Fig1_RawAppend", threads, None))
        note = f"{human(cascade.get('releases'))} releases (3 commands each)" if "releases" in cascade else ""
        add(f"2 commands, {threads} releases at once", cascade, baseline, 0.5, note)

    for (fam, _, arg), cascade in sorted(runs.items(), key=lambda kv: (kv[0][0], -(kv[0][2] or 0))):
        if fam != "Fig3_Replay":
            continue
        baseline = runs.get(("Fig3_RawScan", 1, arg))
        add(f"3 replay, {arg} events", cascade, baseline, 0.5, "", floor=1_000_000)

    header = ("figure", "Cascade", "baseline", "ratio", "goal", "met", "note")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    if not rows:
        print("(no figures in " + path + ")")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bench_report.py BENCH.json")
    main(sys.argv[1])
