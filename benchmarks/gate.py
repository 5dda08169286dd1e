"""The regression gate: a new run's track_ratio_* results against the last
recorded ones.

    python benchmarks/gate.py [--threshold 0.25] [--results DIR] NEW.json

NEW.json is an asv result file (``asv run ... --set-commit-hash HASH``
writes one under the results tree of asv.conf.json).  For every
``track_ratio_*`` point -- benchmark and parameter combination -- that
NEW.json and the reference both hold, the gate fails when

    new < (1 - threshold) * reference

The reference is the newest recorded commit (along main's history, then
by date) in ``benchmarks/results/`` other than NEW.json's own, *of the same
machine* (NEW.json's ``params.machine``, which ``benchmarks/benchmarks/
machine.py`` derives from the CPU and cattn's SIMD level): a ratio against
a peer is a property of the CPU too (2.2 on one, 1.1 on another for the
same commit), so a run is never judged by another machine's numbers.
Ratios measured on this project's noisy VM move by 5-15 %, so the default
threshold is 25 %: a drop the noise does not explain.

Prints one line per compared point and exits 1 on a drop, 0 otherwise --
also when this machine has no recorded results yet (it says so: nothing
to compare with is not a failure; README, "Benchmarks", says how to record
a machine), 2 when the reference shares no point with the run.
"""
import argparse
import json
import pathlib
import sys

from dashboard import RESULTS, commit_order, load_results, series

HERE = pathlib.Path(__file__).resolve().parent


def ratio_points(benchmarks, runs, order):
    """{(benchmark, combination): value} of the track_ratio series of the
    last of `runs` in history order."""
    out = {}
    for name, lines in series(benchmarks, runs, order).items():
        if not name.rsplit(".", 1)[-1].startswith("track_ratio"):
            continue
        for label, points in lines.items():
            out[name, label] = points[-1][1]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("new", help="the asv result file of the run to judge")
    ap.add_argument("--threshold", type=float, default=0.25,
                    help="the relative drop that fails (default 0.25)")
    ap.add_argument("--results", default=str(RESULTS),
                    help="recorded asv results (default benchmarks/results)")
    args = ap.parse_args()
    new = json.loads(pathlib.Path(args.new).read_text())
    order = commit_order(HERE.parent)
    machine = new["params"]["machine"]
    reference, ref_benchmarks = None, None
    for recorded, benchmarks, runs in load_results(pathlib.Path(args.results)):
        if recorded.get("machine") != machine:
            continue
        for run in runs:
            if run["commit_hash"] == new["commit_hash"]:
                continue
            key = (order.get(run["commit_hash"], -1), run["date"])
            if reference is None or key > reference[0]:
                reference, ref_benchmarks = (key, run), benchmarks
    if reference is None:
        print(f"gate: no baseline -- no recorded results of machine "
              f"{machine} (record them: benchmarks/asv_history.sh); "
              f"nothing compared")
        return 0
    ref_run = reference[1]
    ref = ratio_points(ref_benchmarks, [ref_run], order)
    cur = ratio_points(ref_benchmarks, [new], order)
    common = sorted(set(ref) & set(cur))
    if not common:
        print("gate: no track_ratio point in common with "
              f"{ref_run['commit_hash'][:8]}")
        return 2
    print(f"gate: {new['commit_hash'][:8]} against "
          f"{ref_run['commit_hash'][:8]} on {machine}, threshold "
          f"{args.threshold:.0%}")
    drops = 0
    for key in common:
        floor = (1 - args.threshold) * ref[key]
        bad = cur[key] < floor
        drops += bad
        print(f"  {'DROP' if bad else 'ok  '} {cur[key]:7.3f} vs "
              f"{ref[key]:7.3f}  {key[0]} [{key[1]}]")
    print(f"gate: {len(common)} points, {drops} dropped")
    return 1 if drops else 0


if __name__ == "__main__":
    sys.exit(main())
