"""Every published ratio, from the asv suite itself: one command, one timing method.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py \\
        [--bench REGEX] [--levels native,avx2] [--threads N] [--pairs 7] \\
        [--quick] [--json FILE]

Runs the ``track_ratio*`` benchmarks of ``benchmarks/benchmarks/`` whose
``Class.method`` matches ``--bench`` (a regular expression; default
``SDPAVersusPeer``: cattn's attention cases against every installed peer
engine, ``benchmarks/peers.py``) for every parameter combination, and
prints a table per benchmark.  The cases, the peers, the correctness
checks and the sampler are asv's own (``common.ratios``: interleaved pairs
of batched samples, each after a settle), so this table and the recorded
history can't disagree on method; each cell prints both estimators,
``best / median`` -- the ratio of the best samples (what asv records) and
the median of the per-pair ratios -- of the peer's time over cattn's:
above 1, cattn is faster.  A skipped combination prints the reason its
``setup`` gave (not installed, no operator for the case, or an answer
outside the dtype's tolerance).

One process per (level, benchmark, peer), so no engine's thread pool or
pinned workers sit beside another's.  ``--levels avx2`` sets
``CATTN_ISA=avx2`` and limits the peers that have a switch (torch:
``ATEN_CPU_CAPABILITY``, oneDNN, MKL; OpenVINO's oneDNN:
``ONEDNN_MAX_CPU_ISA``; XLA: ``--xla_cpu_max_isa``); ONNX Runtime's MLAS
has none, so its column at a forced level is its native code.
``--threads`` runs every engine on that many threads (default: all cores).
``--quick`` takes asv's quick sizes and one pair: a check that everything
runs, not a measurement.  ``--write-docs`` also records the peer tables
the docs include (the docs build has no peers: its tables are measured
here, dated).

What a script still does beside this: per-call cost (per_call.py), two
builds against each other (ab_builds.py), accuracy (accuracy_lowp.py),
peak memory in fresh processes (compare_backward.py, rss_self_attention.py),
the Dask and transformers tables of the docs, threads (compose_threads.py,
many_cores.py).
"""
import argparse
import importlib
import inspect
import itertools
import json
import os
import pkgutil
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

LEVEL_ENV = {
    "native": {},
    "avx2": {"CATTN_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
UNFORCED = {"onnxruntime"}    # peers with no switch for their SIMD level


def suite():
    """{"Class.track_method": (class, method name)} of the asv suite."""
    import benchmarks
    found = {}
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        for cname, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for mname in dir(cls):
                if mname.startswith("track_ratio"):
                    found[f"{cname}.{mname}"] = (cls, mname)
    return found


def combinations(cls):
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], list):
        params = [params]
    return list(itertools.product(*params)) if params else [()]


def child(args):
    """Run one benchmark (of one peer, if it has a peer parameter) at this
    process's level; print one JSON line per parameter combination."""
    from benchmarks import common
    cls, method = suite()[args.bench]
    names = list(getattr(cls, "param_names", []))
    for combo in combinations(cls):
        if args.peer and combo[0] != args.peer:
            continue
        row = {"bench": args.bench, "params": dict(zip(names, map(str, combo)))}
        obj = cls()
        try:
            if hasattr(obj, "setup"):
                obj.setup(*combo)
            common.MEASURED.clear()
            getattr(obj, method)(*combo)
            row["best"], row["median"] = common.MEASURED[-1]
        except NotImplementedError as e:
            row["skipped"] = str(e)
        finally:
            if hasattr(obj, "teardown"):
                obj.teardown(*combo)
        print(json.dumps(row), flush=True)


def versions():
    """{peer: version} of the installed peers, from their distributions'
    metadata (nothing is imported: the engines load in the children)."""
    from benchmarks.peers import ENGINES
    out = {}
    for name, engine in ENGINES.items():
        try:
            out[name] = engine.installed_version()
        except ImportError:
            pass
    return out


def cell(row):
    if "best" in row:
        return f"{row['best']:.2f} / {row['median']:.2f}"
    return f"– ({row['skipped']})"


def table(bench, rows, level, peer_versions):
    """Markdown: for a benchmark with a peer parameter, one column per peer
    (rows: the other parameters); else one row per combination."""
    print(f"\n#### {bench}\n")
    if rows and "peer" in rows[0]["params"]:
        peers = list(dict.fromkeys(r["params"]["peer"] for r in rows))
        heads = [f"{p} {peer_versions.get(p, '')}".strip()
                 + (" (native code)" if level != "native" and p in UNFORCED
                    else "") for p in peers]
        keys = [k for k in rows[0]["params"] if k != "peer"]
        print("| " + " | ".join(keys + heads) + " |")
        print("|" + "---|" * (len(keys) + len(heads)))
        grid = {}
        for r in rows:
            key = tuple(r["params"][k] for k in keys)
            grid.setdefault(key, {})[r["params"]["peer"]] = r
        for key, cells in grid.items():
            if all("skipped" in c and "is not an asv" in c["skipped"]
                   for c in cells.values()):
                continue
            print("| " + " | ".join(list(key) + [
                cell(cells[p]) if p in cells else "" for p in peers]) + " |")
        return
    keys = list(rows[0]["params"]) if rows else []
    print("| " + " | ".join(keys + ["best / median"]) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for r in rows:
        print("| " + " | ".join(list(r["params"].values()) + [cell(r)])
              + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="SDPAVersusPeer",
                    help="regex over Class.track_ratio_method")
    ap.add_argument("--levels", default="native",
                    help="comma-separated: native, avx2 (default native)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--write-docs", action="store_true",
                    help="also write the peer tables of the docs "
                         "(docs/_data/peers_*.rst, peer_support.rst)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--peer", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    if args.child:
        args.bench = args.child
        return child(args)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["CATTN_BENCH_PAIRS"] = str(1 if args.quick else args.pairs)
    if args.quick:
        os.environ["CATTN_BENCH_QUICK"] = "1"
    found = suite()
    benches = [b for b in found if re.search(args.bench, b)]
    if not benches:
        sys.exit(f"compare.py: no track_ratio benchmark matches {args.bench!r}")
    peer_versions = versions()
    results, status = [], 0
    for level in args.levels.split(","):
        env = dict(os.environ, **LEVEL_ENV[level])
        ident = subprocess.run(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
             " from benchmarks.machine import cpu_description as d; print(d())",
             HERE], env=env, capture_output=True, text=True).stdout.strip()
        print(f"\n### {level}: {ident}, {args.threads} threads; time(peer) / "
              f"time(cattn), best / median of {args.pairs if not args.quick else 1} pairs")
        for bench in benches:
            cls, _ = found[bench]
            peers = [""]
            if list(getattr(cls, "param_names", []))[:1] == ["peer"]:
                peers = list(peer_versions)     # ENGINES' order
            rows = []
            for peer in peers:
                cmd = [sys.executable, os.path.abspath(__file__),
                       "--child", bench, "--peer", peer]
                proc = subprocess.run(cmd, env=env, capture_output=True,
                                      text=True)
                got = [json.loads(x) for x in proc.stdout.splitlines()
                       if x.startswith("{")]
                if proc.returncode:
                    status = 1
                    print(f"{bench} {peer}: failed\n{proc.stderr[-2000:]}",
                          file=sys.stderr)
                rows += got
            table(bench, rows, level, peer_versions)
            results += [dict(r, level=level, machine=ident,
                             threads=args.threads) for r in rows]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.write_docs:
        write_docs(results, peer_versions)
    return status


# What a peer may be unable to run, and the case or dtype that shows it.
ABILITIES = [("float64", {"dtype": "float64", "case": "self"}),
             ("bfloat16", {"dtype": "bfloat16", "case": "self"}),
             ("float16", {"dtype": "float16", "case": "self"}),
             ("causal", {"dtype": "float32", "case": "causal"}),
             ("sliding window", {"dtype": "float32", "case": "window"}),
             ("GQA", {"dtype": "float32", "case": "gqa"})]


def write_docs(results, peer_versions):
    """docs/_data/peers_<level>.rst (the SDPAVersusPeer table per level)
    and docs/_data/peer_support.rst (what each peer can run at all)."""
    from benchmarks.common import write_docs_table
    rows = [r for r in results if r["bench"] == "SDPAVersusPeer.track_ratio"]
    peers = list(dict.fromkeys(r["params"]["peer"] for r in rows))
    for level in dict.fromkeys(r["level"] for r in rows):
        grid = {}
        for r in rows:
            if r["level"] == level and "is not an asv" not in r.get(
                    "skipped", ""):
                p = r["params"]
                grid.setdefault((p["case"], p["dtype"]), {})[p["peer"]] = r
        ident = next(r["machine"] for r in rows if r["level"] == level)
        write_docs_table(f"peers_{level}", ["case", "dtype"] + [
            f"{p} {peer_versions.get(p, '')}" for p in peers], [
            key + tuple(cell(c[p]) if p in c else "" for p in peers)
            for key, c in grid.items()], note=f"{ident}, {level} level")
    support = []
    for ability, where in ABILITIES:
        cells = []
        for p in peers:
            got = [r for r in rows if r["params"]["peer"] == p and all(
                r["params"][k] == v for k, v in where.items())]
            reason = got[0].get("skipped", "?") if got else "?"
            if reason.startswith("error ") and "tolerance" in reason:
                reason = (f"wrong at {where['dtype']} tolerance "
                          f"({reason.split(' above')[0]})")
            cells.append("yes" if any("best" in r for r in got) else reason)
        support.append((ability,) + tuple(cells))
    write_docs_table("peer_support", ["can run", *peers], support)


if __name__ == "__main__":
    sys.exit(main())
