"""The performance history as a page that opens anywhere.

    python benchmarks/dashboard.py OUTDIR [--results DIR]

Every asv benchmark recorded in ``benchmarks/results/`` (asv's results
tree: one folder per machine, one JSON file per commit and environment) is
drawn as a graph over the commits, one line per parameter combination.
The ``track_ratio_*`` series -- a peer's time over cattn's, measured
interleaved in one process, so they survive a noisy machine -- come first.

``asv publish`` writes a site that loads jQuery, flot and bootstrap from
CDNs and shows nothing without internet access; this page is drawn by
plotly.js, copied beside it from the ``plotly`` package (so no network is
ever needed), and the graphs' data are inlined.  Writes ``OUTDIR/index.html``
and ``OUTDIR/plotly.min.js``.  The documentation build runs it into the
site's ``performance/`` folder (docs/conf.py), and
``tools/check_dashboard.sh`` opens the result in headless Chromium.

The page records what it drew: ``<body data-graphs="N">`` is how many
graphs it means to draw, ``data-drawn`` counts those plotly.js finished,
each graph's ``data-commits`` how many commits it shows and
``data-machine-commits`` how many its machine has recorded; a checker reads
them from the rendered page.  One section per machine: machines are named
from their CPU (``benchmarks/benchmarks/machine.py``), so no graph mixes
two CPUs.
"""
import argparse
import html
import itertools
import json
import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"


def commit_order(repo):
    """{commit hash: position} along main's history, oldest first (commits
    not on it -- a branch's -- sort by their date alone)."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-list", "--reverse",
                              "--first-parent", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {h: i for i, h in enumerate(out)}


def load_results(results_dir):
    """(machine, benchmark descriptions, [result file dicts]) per machine
    folder that holds any results."""
    if not (results_dir / "benchmarks.json").is_file():
        return                                  # nothing recorded yet
    benchmarks = json.loads((results_dir / "benchmarks.json").read_text())
    for machine_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        runs = [json.loads(p.read_text())
                for p in sorted(machine_dir.glob("*.json"))
                if p.name != "machine.json"]
        if runs:
            machine = json.loads((machine_dir / "machine.json").read_text())
            yield machine, benchmarks, runs


def series(benchmarks, runs, order):
    """{benchmark name: {combination label: [(commit, value), ...]}} over
    the runs, commits in history order; failed or skipped points (None,
    NaN) are left out."""
    runs = sorted(runs, key=lambda r: (order.get(r["commit_hash"], -1),
                                       r["date"]))
    out = {}
    for run in runs:
        cols = run["result_columns"]
        for name, row in run["results"].items():
            if name not in benchmarks:
                continue
            row = dict(zip(cols, row))
            values, params = row.get("result"), row.get("params") or []
            if values is None:
                continue
            names = benchmarks[name].get("param_names", [])
            combos = list(itertools.product(*params)) if params else [()]
            for combo, value in zip(combos, values):
                if value is None or value != value:
                    continue
                label = ", ".join(f"{n}={v.strip(chr(39))}"
                                  for n, v in zip(names, combo))
                out.setdefault(name, {}).setdefault(label or name, []).append(
                    (run["commit_hash"][:8], value))
    return out


def headline_first(name):
    """track_ratio_* first, then the other track_* and the times."""
    method = name.rsplit(".", 1)[-1]
    return (not method.startswith("track_ratio"),
            not method.startswith("track"), name)


def figure(name, bench, lines):
    """plotly.js data and layout of one benchmark's graph."""
    commits = []
    for points in lines.values():
        for commit, _ in points:
            if commit not in commits:
                commits.append(commit)
    data = [{"type": "scatter", "mode": "lines+markers", "name": label,
             "x": [c for c, _ in points], "y": [v for _, v in points]}
            for label, points in sorted(lines.items())]
    unit = bench.get("unit", "")
    ytitle = {"seconds": "time (s)", "unit": "", "": ""}.get(unit, unit)
    shapes = []
    if name.rsplit(".", 1)[-1].startswith("track_ratio"):
        # every track_ratio is time(other)/time(cattn's case): higher is
        # better, 1 is a tie
        ytitle = unit if unit not in ("", "unit") else "ratio"
        shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1,
                   "y0": 1, "y1": 1, "line": {"dash": "dot", "width": 1}}]
    layout = {"title": {"text": name, "font": {"size": 14}},
              "xaxis": {"title": {"text": "commit"}, "type": "category",
                        "categoryorder": "array", "categoryarray": commits},
              "yaxis": {"title": {"text": ytitle},
                        "type": "log" if unit == "seconds" else "linear"},
              "shapes": shapes, "height": 380, "margin": {"t": 40, "b": 60},
              "legend": {"font": {"size": 10}}}
    return {"data": data, "layout": layout}


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>cattn performance history</title>
<script src="plotly.min.js"></script>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; color: #222; }}
.graph {{ border-top: 1px solid #ddd; }}
</style></head>
<body data-graphs="{count}" data-drawn="0">
<h1>cattn performance history</h1>
<p>{intro}</p>
{sections}
<script>
const figures = {figures};
let drawn = 0;
for (const [id, fig] of Object.entries(figures)) {{
  Plotly.newPlot(id, fig.data, fig.layout, {{responsive: true}}).then(() => {{
    drawn += 1;
    document.body.dataset.drawn = drawn;
  }});
}}
</script>
</body></html>
"""


def build(outdir, results_dir=RESULTS, repo=HERE.parent):
    """Write the page and its script to outdir; returns the graph count."""
    import plotly.offline
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "plotly.min.js").write_text(plotly.offline.get_plotlyjs())
    order = commit_order(repo)
    figures, sections = {}, []
    for machine, benchmarks, runs in load_results(pathlib.Path(results_dir)):
        commits = {r["commit_hash"] for r in runs}
        m = html.escape(machine.get("machine", "?"))
        sections.append(
            f"<h2>Machine {m}</h2><p>{html.escape(machine.get('cpu', ''))}, "
            f"{html.escape(str(machine.get('num_cpu', '')))} cores; "
            f"{len(commits)} recorded commits.</p>")
        lines = series(benchmarks, runs, order)
        for name in sorted(lines, key=headline_first):
            gid = f"g{len(figures)}"
            figures[gid] = figure(name, benchmarks[name], lines[name])
            n = len({c for pts in lines[name].values() for c, _ in pts})
            sections.append(f'<div class="graph" id="{gid}" '
                            f'data-benchmark="{html.escape(name)}" '
                            f'data-commits="{n}" '
                            f'data-machine-commits="{len(commits)}"></div>')
    intro = ("Every asv benchmark recorded in benchmarks/results/, over the "
             "commits of main (oldest left).  Each track_ratio series is the "
             "time of what a case is compared with over the case's own, "
             "measured interleaved in one process: higher is better, and "
             "above the dotted line at 1 the case is the faster one.")
    (outdir / "index.html").write_text(PAGE.format(
        count=len(figures), intro=intro, sections="\n".join(sections),
        figures=json.dumps(figures).replace("</", "<\\/")))
    return len(figures)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--results", default=str(RESULTS),
                    help="asv results tree (default: benchmarks/results)")
    args = ap.parse_args()
    n = build(args.outdir, args.results)
    print(f"{args.outdir}/index.html: {n} graphs")


if __name__ == "__main__":
    main()
