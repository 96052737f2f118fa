#!/usr/bin/env python3
"""The ctest suite `paper`: the ci scale of every experiment end to end, then assertions on
the report's shape: every table and figure section, every row of paper_values.json the scale
runs with finite numbers at every length, the paper's numbers beside them, a record for
every run, plots when gnuplot is there. It asserts the pipeline, not the science (the ci
scale trains for two steps).

Usage: check_ci.py [--attn BUILD/bin/attn] [--keep DIR]
Exit 0 when every assertion holds, 1 with the failures listed, 77 (ctest's skip) when there
is no attn binary to run."""
import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import report  # noqa: E402

SECTIONS = {"table4": "## Table 4", "passkey": "## Retrieval", "figure1": "## Figure 1", "figure2": "## Figure 2",
            "table1": "## Table 1", "table2": "## Table 2", "table3": "## Table 3"}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--attn", default=os.environ.get("ATTN") or os.path.join(common.ROOT, "build", "bin", "attn"))
    ap.add_argument("--keep", help="results directory to keep (default: a temporary one, removed)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not os.access(args.attn, os.X_OK):
        print("SKIPPED: no attn binary at " + args.attn)
        return 77
    out = args.keep or tempfile.mkdtemp(prefix="attn-paper-ci-")
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    try:
        runner = common.Runner("ci", out, attn=args.attn)
        jobs = common.plan(runner, list(SECTIONS))
        common.execute(runner, jobs, args.jobs)
        r = report.Report("ci", out, attn=args.attn)
        md_path = r.write()
        md = open(md_path).read()
        data = json.load(open(os.path.join(out, "report.json")))

        for experiment, heading in SECTIONS.items():
            check(heading in md, "REPORT.md lacks the section '%s'" % heading)
        check(not data["missing"], "measurements missing: %s" % data["missing"][:5])
        # Every row the ci scale runs: in the markdown, with finite numbers at every length.
        for experiment in ("table1", "table2", "table3", "table4", "passkey"):
            rows = common.rows_of(runner, experiment)
            check(len(rows) > 0, "%s: no rows" % experiment)
            numbers = data["tables"].get(experiment, {})
            for row in rows:
                check("| %s |" % row["row"] in md, "%s: row '%s' not in REPORT.md" % (experiment, row["row"]))
                got = numbers.get(row["id"])
                if got is None:
                    failures.append("%s: row %s not in report.json" % (experiment, row["id"]))
                    continue
                if experiment in ("table1", "table2", "table3"):
                    check(got["1x"] is not None and math.isfinite(got["1x"]), "%s: %s has no finite loss" %
                          (experiment, row["id"]))
                    check(got["paper"] == row["paper"]["1x"], "%s: %s lacks the paper's number" % (experiment, row["id"]))
                else:
                    lengths = runner.scale["passkey_lengths"] if experiment == "passkey" else report.LENGTHS
                    for l in lengths:
                        v = got.get(l, {}).get("mean")
                        check(v is not None and math.isfinite(v), "%s: %s at %s is not a finite number" %
                              (experiment, row["id"], l))
                        if experiment == "passkey":
                            check(v is not None and 0 <= v <= 100, "passkey: %s at %s is not a percentage" % (row["id"], l))
        # The paper's table 4 numbers appear beside ours.
        check("| 3.1911 |" in md and "3.3171" in md, "table 4: the paper's numbers are not in REPORT.md")
        # Every run has its record: commit, command, config, seed, tokens, time, hardware.
        runs = os.listdir(os.path.join(out, "runs"))
        check(len(runs) == len(jobs), "%d run directories for %d planned runs" % (len(runs), len(jobs)))
        for run_id in runs:
            rec = runner.record(run_id)
            t = rec.get("train", {})
            for field in ("command", "config", "tokens", "seconds", "cpu_seconds", "finished"):
                check(field in t, "%s: record.json lacks train.%s" % (run_id, field))
            for field in ("commit", "seed", "hardware"):
                check(field in rec, "%s: record.json lacks %s" % (run_id, field))
            check(t.get("tokens", 0) > 0, "%s: no tokens recorded" % run_id)
        # Plots where gnuplot exists.
        if shutil.which("gnuplot"):
            for png in re.findall(r"\]\((plots/[^)]+\.png)\)", md):
                path = os.path.join(out, png)
                check(os.path.exists(path) and open(path, "rb").read(4) == b"\x89PNG", "%s is not a PNG" % png)
            check("plots/figure1_loss_by_length.png" in md, "no loss-against-length plot")
            check("plots/passkey_pk-softmax.png" in md, "no passkey heat map")
        # Resumable: a second pass runs nothing.
        again = common.Runner("ci", out, attn=args.attn, log=open(os.devnull, "w"))
        before = sorted(os.path.getmtime(os.path.join(out, "runs", r, "record.json")) for r in runs)
        common.execute(again, common.plan(again, list(SECTIONS)), 1)
        after = sorted(os.path.getmtime(os.path.join(out, "runs", r, "record.json")) for r in runs)
        check(before == after, "a second run_all did work again instead of skipping finished runs")
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    for f in failures:
        print("FAILED: " + f)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
