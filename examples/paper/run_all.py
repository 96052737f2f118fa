#!/usr/bin/env python3
"""Every experiment of one scale, then its report: the one command that reproduces a scale.

Usage: run_all.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run] [--data DIR]
       [--only table4,passkey]
Resumable: run it again after an interruption and finished runs are skipped."""
import common
import report

ORDER = ["table4", "passkey", "figure1", "figure2", "table1", "table2", "table3"]

if __name__ == "__main__":
    ap = common.arguments(__doc__)
    ap.add_argument("--only", help="comma-separated experiments (default: all: %s)" % ",".join(ORDER))
    ap.add_argument("--rows", help="comma-separated row ids of paper_values.json to run (default: the scale's)")
    args = ap.parse_args()
    only = args.only.split(",") if args.only else ORDER
    unknown = [e for e in only if e not in ORDER]
    if unknown:
        raise SystemExit("--only: unknown experiment(s) %s (expected %s)" % (", ".join(unknown), ", ".join(ORDER)))
    runner = common.runner_from(args)
    if args.rows:
        ids = {r["id"] for r in common.load_values()}
        wanted = [r for r in args.rows.split(",") if r]
        bad = [r for r in wanted if r not in ids]
        if bad:
            raise SystemExit("--rows: unknown row id(s) %s (see paper_values.json)" % ", ".join(bad))
        runner.only_rows = set(wanted)
    if args.jobs < 1:
        raise SystemExit("--jobs: at least 1")
    common.execute(runner, common.plan(runner, [e for e in ORDER if e in only]), args.jobs)
    if not args.dry_run:
        r = report.Report(args.scale, runner.out, attn=args.attn)
        r.runner.seeds = runner.seeds
        print("wrote " + r.write())
