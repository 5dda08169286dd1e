"""Shared pieces of the benchmark suite: inputs, threads, peers, ratios,
and the tables the compare_* scripts write for the docs."""
import datetime
import os

import numpy as np

import cattn


def _load_timing():
    """cattn's one timing method (src/cattn/_timing.py), loaded from this
    source tree rather than from the installed cattn: the suite times any
    build with the same sampler, older builds without the module included
    (asv_history.sh records old commits with today's suite; ab_builds.py
    runs it against an old build)."""
    import importlib.util
    import pathlib
    import sys
    path = (pathlib.Path(__file__).resolve().parents[2] / "src" / "cattn"
            / "_timing.py")
    spec = importlib.util.spec_from_file_location("_cattn_bench_timing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_timing = _load_timing()
best_times, compare = _timing.best_times, _timing.compare

# CATTN_BENCH_QUICK=1 (CI): one small case per parameter, one round per
# measurement -- enough to prove every benchmark runs, in about a minute.
QUICK = os.environ.get("CATTN_BENCH_QUICK") == "1"
ROUNDS = 1 if QUICK else 3

# "all" = OpenMP's default (every core unless OMP_NUM_THREADS says less).
THREADS = ["all"] if QUICK else [1, "all"]


def pick(full, quick):
    """The parameter list: `full`, or `quick` under CATTN_BENCH_QUICK=1."""
    return quick if QUICK else full


def threads(value):
    return None if value == "all" else value


def rng():
    return np.random.default_rng(20261123)


def storage(dtype):
    """The NumPy dtype of a benchmark's dtype name; "bfloat16" needs
    ml_dtypes (else NotImplementedError: asv reports a skip)."""
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise NotImplementedError("ml_dtypes is not installed") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def normal(shape, dtype):
    return rng().standard_normal(shape, dtype=np.float32).astype(
        storage(dtype))


def to_torch(torch, x):
    """x as a torch tensor without a copy (bfloat16 through its bits:
    ml_dtypes arrays have no buffer protocol)."""
    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def torch_or_skip():
    """torch, or NotImplementedError, which asv reports as a skipped
    benchmark (torch is an optional peer)."""
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    torch.set_num_threads(cattn.show_config(mode="dicts")["openmp"]
                          ["default_threads"])
    return torch


PAIRS = int(os.environ.get("CATTN_BENCH_PAIRS", 1 if QUICK else 7))
# Every (best, median) `ratios` measured in this process, in order: the
# one command (benchmarks/compare.py) reads both estimators from here
# while asv records the best alone.
MEASURED = []


def ratios(peer, ours, pairs=None):
    """(best, median) of time(peer) / time(ours) by cattn's one timing
    method (cattn._timing.compare: PAIRS interleaved pairs of batched
    samples, each after a settle; the ratio of the best samples and the
    median of the per-pair ratios)."""
    got = compare(ours, peer, PAIRS if pairs is None else pairs)
    MEASURED.append((got.best, got.median))
    return MEASURED[-1]


def ratio(peer, ours):
    """The best-sample estimator of `ratios`: what asv's track_ratio_*
    series record."""
    return ratios(peer, ours)[0]


def gflops(flops, fn):
    """flops / seconds per call, the best of ROUNDS samples, in 1e9."""
    return flops / best_times([fn], ROUNDS)[0] / 1e9


def status_mib(field):
    """VmRSS (resident now) or VmHWM (peak RSS) of this process, in MiB
    (Linux).  Not ru_maxrss: Linux carries the parent's peak across fork +
    exec into it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def write_docs_table(name, head, rows, note=""):
    """docs/_data/<name>.rst: a list-table of `rows` (tuples of strings
    under `head`), dated, which a docs page includes; the docs build has
    no torch, so tables of peer comparisons are recorded, not computed."""
    lines = [f".. list-table:: measured {datetime.date.today()}, "
             f"{os.cpu_count()} cores{', ' + note if note else ''}",
             "   :header-rows: 1", ""]
    for row in (tuple(head),) + tuple(rows):
        lines.append("   * - " + row[0])
        lines += [f"     - {cell}" for cell in row[1:]]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "docs", "_data", f"{name}.rst")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", os.path.normpath(path))
