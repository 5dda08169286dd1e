"""Copy the asv results behind the docs' performance plot into docs/_data.

    cd benchmarks
    asv run --python=same --bench SeqLenSweep --set-commit-hash $(git rev-parse HEAD)
    python export_docs_data.py            # newest SeqLenSweep result on record

Writes ``docs/_data/seq_len_sweep.json``: GFLOP/s of float32 self-attention
(B=1, H=8, E=64, L = S) for cattn, the NumPy composition and torch, with the
machine, commit and date they were measured on.  The docs plot this file;
they never time anything at build time (a docs build on a busy CI machine
would draw noise).
"""
import ast
import datetime
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "bench_attention.SeqLenSweep.track_gflops"


def newest_result(results_dir):
    """(result file contents, machine.json contents) of the newest run that
    recorded the sweep."""
    best = None
    for path in glob.glob(os.path.join(results_dir, "*", "*.json")):
        if os.path.basename(path) == "machine.json":
            continue
        with open(path) as f:
            data = json.load(f)
        if KEY in data.get("results", {}) and (
                best is None or data["date"] > best[0]["date"]):
            with open(os.path.join(os.path.dirname(path),
                                   "machine.json")) as f:
                best = (data, json.load(f))
    if best is None:
        sys.exit(f"no {KEY} result under {results_dir}; run asv first "
                 "(see this file's docstring)")
    return best


def main():
    data, machine = newest_result(os.path.join(HERE, ".asv", "results"))
    columns = data["result_columns"]
    row = data["results"][KEY]
    values = row[columns.index("result")]
    lengths, impls = ([ast.literal_eval(p) if p.startswith("'") else int(p)
                       for p in axis]
                      for axis in row[columns.index("params")])
    gflops = {impl: [None] * len(lengths) for impl in impls}
    for i, L in enumerate(lengths):          # asv's order: L outer, impl inner
        for j, impl in enumerate(impls):
            value = values[i * len(impls) + j]
            gflops[impl][i] = None if value is None else round(value, 1)
    out = {
        "what": "float32 self-attention, B=1, H=8, E=64, L=S; GFLOP/s = "
                "4*B*H*L*S*E / seconds; best of interleaved batched samples",
        "commit": data["commit_hash"][:10],
        "date": datetime.datetime.fromtimestamp(
            data["date"] / 1000, datetime.timezone.utc).strftime("%Y-%m-%d"),
        "cpu": machine["cpu"],
        "num_cpu": int(machine["num_cpu"]),
        "torch": data["requirements"].get("torch") or None,
        "L": lengths,
        "gflops": gflops,
    }
    path = os.path.join(HERE, "..", "docs", "_data", "seq_len_sweep.json")
    with open(path, "w") as f:       # one line per field: easy to read, diff
        f.write("{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}"
                                    for key, value in out.items()) + "\n}\n")
    print(f"wrote {os.path.normpath(path)}:")
    for impl, row in gflops.items():
        print(f"  {impl:6s}", row)


if __name__ == "__main__":
    main()
