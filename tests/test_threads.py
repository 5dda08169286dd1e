"""Many Python threads at once: the same bits as serial calls, caches that
stay consistent, a default thread count that shares the cores, and a
free-threaded interpreter that keeps its GIL off.

CATTN_STRESS_ROUNDS (default 4) sets the rounds of the stress test: 8
threads each run every kernel family of families.py that many times, in an
order of their own.
"""
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time

import numpy as np
import pytest

import cattn
from cattn._kernels import _cpu
from families import FAMILIES

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
ROUNDS = int(os.environ.get("CATTN_STRESS_ROUNDS", "4"))


def _run_threads(target, n):
    """Run target(i) in n threads at once (released together by a
    barrier); re-raise the first exception any of them raised."""
    errors = []
    start = threading.Barrier(n)

    def run(i):
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_eight_threads_get_the_serial_results():
    """8 threads, every kernel family, ROUNDS rounds each in its own order,
    default thread count (so the teams change size as the callers come and
    go): every result is bitwise the serial one."""
    want = {name: fn() for name, fn in FAMILIES.items()}
    bad = []

    def worker(seed):
        order = list(FAMILIES)
        rng = np.random.default_rng(seed)
        for _ in range(ROUNDS):
            rng.shuffle(order)
            for name in order:
                if not np.array_equal(FAMILIES[name](), want[name],
                                      equal_nan=True):
                    bad.append(name)

    _run_threads(worker, 8)
    assert not bad, sorted(set(bad))
    assert _cpu.in_flight() == 0


def test_default_threads_share_the_cores():
    """While a kernel runs in another thread, a call with num_threads=None
    gets half this thread's OpenMP default (at least 1); alone again, all
    of it."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1500, 1500))
    alone = _cpu.max_threads()
    assert _cpu.default_threads() == alone
    seen = []
    for _ in range(5):              # a busy machine may hide a short call
        worker = threading.Thread(
            target=lambda: cattn.matmul(a, a, num_threads=1))
        worker.start()
        while worker.is_alive():
            if _cpu.in_flight() == 1:
                seen.append(_cpu.default_threads())
                break
            time.sleep(0)
        worker.join()
        if seen:
            break
    assert seen == [max(1, alone // 2)]
    assert _cpu.in_flight() == 0
    assert _cpu.default_threads() == alone


def test_default_threads_honour_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert _cpu.default_threads() == 1


def _token_stream(seed, steps, dim=16):
    return np.random.default_rng(seed).standard_normal(
        (1, steps, dim)).astype(np.float32)


def _check_page_table(pool, num_pages):
    """Every page free or held by exactly one live sequence, which holds
    as many as its length needs."""
    live = sorted(pool._pages)
    table, lens = pool.block_table(live)
    held = table[table >= 0].tolist()
    assert len(held) == len(set(held))
    assert len(held) + pool.num_free_pages == num_pages
    assert set(held).isdisjoint(pool._free)
    for row, n in zip(table, lens):
        assert (row >= 0).sum() == -(-n // pool.page_size)


@pytest.mark.parametrize("storage", [np.float32, "int8"])
def test_paged_cache_from_many_threads(storage):
    """Six threads each decode their own sequence through one shared
    PagedKVCache, a token per call: every output is bitwise the one of a
    sequence decoded alone, and the page table ends consistent."""
    mha = cattn.MultiHeadAttention(16, 4, num_kv_heads=2, rng=1)
    steps, nseq, ps = 12, 6, 4
    streams = [_token_stream(s, steps) for s in range(nseq)]

    def decode(pool, seq, x):
        return np.concatenate([mha(x[:, t:t + 1], cache=pool, sequences=[seq])
                               for t in range(steps)], axis=1)

    want = []
    for x in streams:
        pool = mha.new_paged_cache(num_pages=steps // ps, page_size=ps,
                                   dtype=storage)
        want.append(decode(pool, pool.add_sequence(), x))

    pool = mha.new_paged_cache(num_pages=nseq * steps // ps + 3,
                               page_size=ps, dtype=storage)
    got = [None] * nseq

    def worker(i):
        seq = pool.add_sequence()
        got[i] = (seq, decode(pool, seq, streams[i]))

    _run_threads(worker, nseq)
    for (seq, out), ref in zip(got, want):
        np.testing.assert_array_equal(out, ref)
    table, lens = pool.block_table([seq for seq, _ in got])
    assert sorted(lens) == [steps] * nseq
    assert (table >= 0).sum() == nseq * steps // ps
    _check_page_table(pool, nseq * steps // ps + 3)
    assert pool.num_free_pages == 3
    for seq, _ in got:
        pool.free(seq)
    assert pool.num_free_pages == nseq * steps // ps + 3


def test_full_paged_pool_raises_and_stays_consistent():
    """Eight threads at once each append 40 tokens (10 pages) to a
    sequence of their own in a pool of 30 free pages: exactly three
    appends land, whole; the other five raise ValueError ("full") and
    change nothing; the page table stays consistent.  50 rounds: without
    the pool's lock, a check-then-take race shows in about one round in
    200 (measured on 3.13t), so this is a stress test, not a proof."""
    mha = cattn.MultiHeadAttention(16, 4, num_kv_heads=2, rng=2)
    ps, num_pages = 4, 30
    pool = mha.new_paged_cache(num_pages=num_pages, page_size=ps)
    k = np.ones((1, 2, 40, 4), np.float32)
    for _ in range(50):
        seqs = [pool.add_sequence() for _ in range(8)]
        outcome = [None] * 8

        def worker(i):
            try:
                pool._append([seqs[i]], k, k)
                outcome[i] = "landed"
            except ValueError as exc:
                assert "the paged cache is full" in str(exc)
                outcome[i] = "full"

        _run_threads(worker, 8)
        assert sorted(outcome) == ["full"] * 5 + ["landed"] * 3
        _check_page_table(pool, num_pages)
        for seq, what in zip(seqs, outcome):
            assert pool.length(seq) == (40 if what == "landed" else 0)
            pool.free(seq)
        assert pool.num_free_pages == num_pages


def test_kv_cache_appends_from_many_threads():
    """Four threads append tokens to one KVCache, a token per call: no
    position is lost or written twice (the cached keys are the serial
    run's keys, in some order)."""
    mha = cattn.MultiHeadAttention(16, 4, num_kv_heads=2, rng=3)
    steps, n = 10, 4
    streams = [_token_stream(200 + i, steps) for i in range(n)]
    cache = mha.new_cache(1, max_len=n * steps)

    def worker(i):
        for t in range(steps):
            mha(streams[i][:, t:t + 1], cache=cache)

    _run_threads(worker, n)
    assert cache.length == n * steps
    serial = mha.new_cache(1, max_len=n * steps)
    for x in streams:
        for t in range(steps):
            mha(x[:, t:t + 1], cache=serial)

    def rows(a):        # (1, Hkv, T, d) -> the T rows, sorted
        r = a[0].transpose(1, 0, 2).reshape(a.shape[2], -1)
        return r[np.lexsort(r.T[::-1])]

    np.testing.assert_array_equal(rows(cache.key), rows(serial.key))
    np.testing.assert_array_equal(rows(cache.value), rows(serial.value))


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython")
def test_gil_stays_disabled():
    """In a fresh free-threaded interpreter, importing every cattn module
    and running every kernel family (from several threads) leaves the GIL
    disabled, and no cattn module asks for it."""
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys, threading, warnings
        warnings.simplefilter("always")
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import cattn
        for m in pkgutil.walk_packages(cattn.__path__, "cattn."):
            if m.name.endswith((".dask", ".transformers")):
                continue        # optional peers' own extensions
            importlib.import_module(m.name)
        from families import FAMILIES
        def run():
            for fn in FAMILIES.values():
                fn()
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(sys._is_gil_enabled())
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "cattn" not in res.stderr, res.stderr
    assert res.stdout.strip() == "False", res.stderr
