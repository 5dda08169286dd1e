"""The plans the drivers describe under record_schedules (the many-core
model of benchmarks/many_cores.py): nothing runs, and the items' costs add
up to the work of the call, whatever the thread count."""
import numpy as np
import pytest

import cattn
from cattn import _frame


def _plans(fn, threads):
    with _frame.record_schedules() as log:
        fn(threads)
    return log


def _work(plan, phase_kind=None):
    return sum(int(np.sum(c)) for kind, c in plan["phases"]
               if phase_kind is None or kind == phase_kind)


@pytest.mark.parametrize("threads", [1, 3, 64])
@pytest.mark.parametrize("causal", [False, True])
def test_forward_items_cover_the_pairs(rng, threads, causal):
    B, H, L, S, E = 2, 3, 200, 200, 16
    q = rng.standard_normal((B, H, L, E)).astype(np.float32)
    out = np.full((B, H, L, E), 7.0, np.float32)
    (plan,) = _plans(lambda t: cattn.scaled_dot_product_attention(
        q, q, q, is_causal=causal, num_threads=t, out=out), threads)
    assert plan["driver"] == "attention"
    assert 1 <= plan["threads"] <= threads
    pairs = B * H * (L * (L + 1) // 2 if causal else L * S)
    # Every item's pairs, plus S keys packed per head.
    assert _work(plan) == pairs + B * H * S
    assert (out == 7).all()            # described, not computed


def test_decode_items_cover_the_keys(rng):
    B, H, S, E = 1, 8, 3000, 64
    k = rng.standard_normal((B, H, S, E)).astype(np.float32)
    (plan,) = _plans(lambda t: cattn.scaled_dot_product_attention(
        k[:, :, :1], k, k, num_threads=t), 64)
    assert plan["kind"] == "decode rows"
    assert _work(plan, "dynamic") == B * H * S


@pytest.mark.parametrize("threads", [1, 2, 64])
@pytest.mark.parametrize("heads", [2, 16])
def test_backward_items_cover_the_pairs(rng, threads, heads):
    B, L, E = 1, 130, 8
    q = rng.standard_normal((B, heads, L, E)).astype(np.float32)
    out, lse = cattn.scaled_dot_product_attention(q, q, q, is_causal=True,
                                                  return_lse=True)
    (plan,) = _plans(lambda t: cattn.scaled_dot_product_attention_grad(
        out, q, q, q, out, lse, is_causal=True, num_threads=t), threads)
    assert plan["driver"] == "backward"
    pairs = B * heads * L * (L + 1) // 2
    if plan["kind"] == "whole kv heads":
        assert _work(plan) == pairs + B * heads * 2 * L
    elif plan["kind"] == "key ranges":
        assert _work(plan, "dynamic") == pairs
    else:                   # dK, dV by key block, then dQ by query block
        assert _work(plan, "dynamic") == 2 * pairs


def test_top_k_items_cover_the_pairs(rng):
    q = rng.standard_normal((2, 2, 100, 8)).astype(np.float32)
    plans = _plans(lambda t: cattn.scaled_dot_product_attention(
        q, q, q, top_k=3, num_threads=t), 16)
    assert [p["driver"] for p in plans] == ["top-k", "attention"]
    assert _work(plans[0]) == 2 * 2 * 100 * 100


def test_recording_is_per_context(rng):
    """Outside the block, and in other threads, calls compute as usual."""
    import threading
    q = rng.standard_normal((1, 1, 16, 8)).astype(np.float32)
    want = cattn.scaled_dot_product_attention(q, q, q)
    got = []
    with _frame.record_schedules() as log:
        t = threading.Thread(target=lambda: got.append(
            cattn.scaled_dot_product_attention(q, q, q)))
        t.start()
        t.join()
    assert log == []
    np.testing.assert_array_equal(got[0], want)
