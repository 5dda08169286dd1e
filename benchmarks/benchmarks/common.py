"""Shared pieces of the benchmark suite: inputs, threads, peers, ratios,
and the tables the compare_* scripts write for the docs."""
import datetime
import os
import time

import numpy as np

import cattn
from cattn.__main__ import interleaved

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


# A ratio's samples each last at least this long (a batch of calls), so a
# call of microseconds is not timed alone: one thread wake-up or page fault
# would be the whole sample (single calls gave MatmulFewRows ratios from
# 0.004 to 52 over five commits).
SAMPLE_SECONDS = 0.02
PAIRS = 1 if QUICK else 7
# Seconds of sleep before each sample: OpenBLAS's and OpenMP's workers spin
# for tens of milliseconds after a call and, on two cores, would hold a
# core the other library's threads need (the same settle as interleaved).
SETTLE = 0.1


def _calls_per_sample(fn):
    """Calls of fn that take SAMPLE_SECONDS (at least 1), from its best of
    up to three warm calls."""
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if best >= SAMPLE_SECONDS:
            return 1
    return max(1, min(10_000, int(SAMPLE_SECONDS / max(best, 1e-7))))


def _sample(fn, n):
    """Mean time of n calls, after SETTLE seconds of sleep and, for a batch
    of short calls, one untimed call: the first call after a sleep wakes
    the library's thread pool, which costs up to milliseconds on this VM
    (measured: 0.2-3.4 ms before a 30 us matmul), a cost of the sleep,
    not of the call."""
    time.sleep(SETTLE)
    if n > 1:
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def ratio(peer, ours):
    """time(peer) / time(ours), measured in this process: PAIRS pairs of
    samples taken in alternating order (ours peer, peer ours, ...), a
    sample being the mean time of a batch of calls lasting at least
    SAMPLE_SECONDS; the ratio of the two best samples (noise on a shared
    machine only ever adds time, so the best samples agree best between
    runs).  Each sample starts after a sleep, which lets the other
    library's worker threads stop spinning."""
    n_ours, n_peer = _calls_per_sample(ours), _calls_per_sample(peer)
    t_ours, t_peer = [], []
    for i in range(PAIRS):
        turns = [(ours, n_ours, t_ours), (peer, n_peer, t_peer)]
        for fn, n, out in turns if i % 2 == 0 else turns[::-1]:
            out.append(_sample(fn, n))
    return min(t_peer) / min(t_ours)


def gflops(flops, fn):
    return flops / interleaved([fn], rounds=ROUNDS, repeat=ROUNDS)[0] / 1e9


def status_mib(field):
    """VmRSS (resident now) or VmHWM (peak RSS) of this process, in MiB
    (Linux).  Not ru_maxrss: Linux carries the parent's peak across fork +
    exec into it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def write_docs_table(name, head, rows):
    """docs/_data/<name>.rst: a list-table of `rows` (tuples of strings
    under `head`), dated, which a docs page includes; the docs build has
    no torch, so tables of peer comparisons are recorded, not computed."""
    lines = [f".. list-table:: measured {datetime.date.today()}, "
             f"{os.cpu_count()} cores",
             "   :header-rows: 1", ""]
    for row in (tuple(head),) + tuple(rows):
        lines.append("   * - " + row[0])
        lines += [f"     - {cell}" for cell in row[1:]]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "docs", "_data", f"{name}.rst")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", os.path.normpath(path))
