"""Reliability: concurrency, the bad-input matrix, huge inputs and leaks.

Tests marked `slow` need CATTN_SLOW=1 (they allocate >16 GB or loop 10,000
times); their last results are reported in the closing notes.
"""
import os
import threading

import numpy as np
import pytest

import cattn

slow = pytest.mark.skipif(os.environ.get("CATTN_SLOW") != "1",
                          reason="set CATTN_SLOW=1 to run")

rng = np.random.default_rng(7)
X = rng.standard_normal((64, 300)).astype(np.float32)
Q = rng.standard_normal((2, 4, 50, 16)).astype(np.float32)
KV = rng.standard_normal((2, 2, 90, 16)).astype(np.float32)
MHA = cattn.MultiHeadAttention(16, 4, rng=0)
CALLS = {
    "softmax": lambda: cattn.softmax(X, axis=0),
    "log_softmax": lambda: cattn.log_softmax(X),
    "logsumexp": lambda: cattn.logsumexp(X),
    "matmul": lambda: cattn.matmul(X, X.T),
    "matmul_gemv": lambda: cattn.matmul(X[:2], X.T),
    "sdpa": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, is_causal=True, enable_gqa=True),
    "sdpa_decode": lambda: cattn.scaled_dot_product_attention(
        Q[:, :, :1], KV, KV, enable_gqa=True),
    "self_attention": lambda: cattn.self_attention(X[:40, :32]),
    "attention_weights": lambda: cattn.attention_weights(Q, Q),
    "mha": lambda: MHA(Q[0, :, :, :16]),
    "hard_attention": lambda: cattn.hard_attention(
        Q, KV, KV, enable_gqa=True, return_indices=True)[1],
    "top_k": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, enable_gqa=True, top_k=5),
    "sdpa_grad": lambda: np.concatenate([g.ravel() for g in _grad()]),
    "mha_backward": lambda: MHA.backward(Q[0, :, :, :16],
                                         Q[0, :, :, :16])[0][0],
}


def _grad():
    out, lse = cattn.scaled_dot_product_attention(
        Q, KV, KV, is_causal=True, enable_gqa=True, return_lse=True)
    return cattn.scaled_dot_product_attention_grad(
        out, Q, KV, KV, out, lse, is_causal=True, enable_gqa=True)


def test_eight_python_threads_get_the_serial_results():
    want = {name: fn() for name, fn in CALLS.items()}
    errors = []

    def worker(seed):
        order = list(CALLS)
        np.random.default_rng(seed).shuffle(order)
        for _ in range(3):
            for name in order:
                try:
                    np.testing.assert_array_equal(CALLS[name](), want[name])
                except Exception as exc:  # reported below
                    errors.append((name, exc))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_nested_threadpool_limits_and_oversubscription():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    want = cattn.matmul(X, X.T)
    with threadpoolctl.threadpool_limits(1):
        with threadpoolctl.threadpool_limits(2, user_api="openmp"):
            np.testing.assert_array_equal(cattn.matmul(X, X.T), want)
        np.testing.assert_array_equal(cattn.matmul(X, X.T, num_threads=16),
                                      want)


x2 = np.zeros((2, 3))
q4 = np.zeros((1, 2, 3, 4))
BAD_INPUTS = [
    # (call, exception, message fragment)
    (lambda: cattn.softmax(np.zeros(3, np.int64)), TypeError, "x has dtype int64"),
    (lambda: cattn.softmax(np.zeros(3, bool)), TypeError, "x has dtype bool"),
    (lambda: cattn.softmax(np.zeros(3, np.complex64)), TypeError, "x has dtype complex64"),
    (lambda: cattn.softmax(np.zeros(3, np.float16)), TypeError, "x has dtype float16"),
    (lambda: cattn.softmax(np.array([object()])), TypeError, "x has dtype object"),
    (lambda: cattn.softmax("abc"), TypeError, "x has dtype <U3"),
    (lambda: cattn.softmax(x2, axis=5), np.exceptions.AxisError, "softmax"),
    (lambda: cattn.softmax(x2, axis="0"), TypeError, "axis"),
    (lambda: cattn.log_softmax(x2, num_threads=0), ValueError, "num_threads"),
    (lambda: cattn.log_softmax(x2, num_threads=-1), ValueError, "num_threads"),
    (lambda: cattn.log_softmax(x2, num_threads=1.0), TypeError, "num_threads"),
    (lambda: cattn.logsumexp(x2, num_threads="2"), TypeError, "num_threads"),
    (lambda: cattn.logsumexp(x2, out=np.zeros(3)), ValueError, "out has shape"),
    (lambda: cattn.logsumexp(x2, out=np.zeros(2, np.float32)), TypeError, "out has dtype"),
    (lambda: cattn.softmax(x2, out=np.zeros((2, 3)).tolist()), TypeError, "out must be a numpy.ndarray"),
    (lambda: cattn.softmax(x2, out=np.broadcast_to(0.0, (2, 3))), ValueError, "out is read-only"),
    (lambda: cattn.matmul(x2, x2), ValueError, "core dimensions"),
    (lambda: cattn.matmul(1.0, x2), ValueError, "a is 0-d"),
    (lambda: cattn.matmul(np.zeros((2, 2, 3)), np.zeros((3, 3, 4))), ValueError, "batch dimensions"),
    (lambda: cattn.matmul(np.zeros((2, 3), np.int32), x2.T), TypeError, "a has dtype int32"),
    (lambda: cattn.matmul(x2, np.zeros((3, 2), np.float16)), TypeError, "b has dtype float16"),
    (lambda: cattn.matmul(x2, x2.T, out=np.zeros((3, 3))), ValueError, "out has shape"),
    (lambda: cattn.matmul(x2, x2.T, num_threads=0), ValueError, "num_threads"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4[..., :2, :]), ValueError, "same number of keys"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4[..., :3], q4), ValueError, "same last dimension E"),
    (lambda: cattn.scaled_dot_product_attention(q4[0, 0, 0], q4, q4), ValueError, "at least 2 dimensions"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4[:, :1].repeat(3, 1), q4[:, :1].repeat(3, 1)), ValueError, "do not broadcast"),
    (lambda: cattn.scaled_dot_product_attention(np.zeros((1, 3, 2, 4)), q4[:, :1].repeat(2, 1), q4[:, :1].repeat(2, 1), enable_gqa=True), ValueError, "multiple of the key/value heads"),
    (lambda: cattn.scaled_dot_product_attention(q4.astype(int), q4, q4), TypeError, "query has dtype"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4.astype(bool), q4), TypeError, "key has dtype bool"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4.astype(np.complex128)), TypeError, "value has dtype complex128"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, np.zeros((3, 4), np.int8)), TypeError, "attn_mask has dtype int8"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, np.ones((2, 3), bool)), ValueError, "attn_mask of shape"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, scale=np.nan), ValueError, "scale must be finite"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, scale=np.inf), ValueError, "scale must be finite"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, scale=[1.0]), TypeError, "scale must be a real number"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, is_causal="yes"), ValueError, "is_causal"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, window=(-1, 0)), ValueError, "window"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, window=5), ValueError, "window"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, out=np.zeros((1, 2, 3, 4), np.float32)), TypeError, "out has dtype"),
    (lambda: cattn.self_attention(np.zeros(4)), ValueError, "at least 2 dimensions"),
    (lambda: cattn.attention_weights(q4, q4[..., :2]), ValueError, "same last dimension E"),
    (lambda: cattn.MultiHeadAttention(10, 3), ValueError, "must divide embed_dim"),
    (lambda: cattn.MultiHeadAttention(8, 2, num_kv_heads=3), ValueError, "must divide num_heads"),
    (lambda: cattn.MultiHeadAttention(8, 2, dtype=int), TypeError, "dtype must be float32 or float64"),
    (lambda: cattn.MultiHeadAttention(8, 2)(np.zeros((1, 2, 7), np.float32)), ValueError, "query has 7 features"),
    (lambda: cattn.MultiHeadAttention(8, 2).load_state_dict({}), KeyError, "missing keys"),
    (lambda: cattn.MultiHeadAttention(8, 2).new_cache(0, 4), ValueError, "batch must be >= 1"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, top_k=0), ValueError, "top_k must be None or an int >= 1"),
    (lambda: cattn.scaled_dot_product_attention(q4, q4, q4, top_k=1.5), TypeError, "top_k must be None or an int"),
    (lambda: cattn.hard_attention(q4, q4, q4.astype(np.int8)), TypeError, "value has dtype int8"),
    (lambda: cattn.hard_attention(q4, q4, q4[..., :2, :]), ValueError, "same number of keys S"),
    (lambda: cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4[..., :2, :], q4[..., 0]), ValueError, "out must have shape"),
    (lambda: cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4, q4), ValueError, "lse must have shape"),
    (lambda: cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4, q4[..., 0], need_mask_grad=True), ValueError, "needs a float attn_mask"),
    (lambda: cattn.MultiHeadAttention(8, 2).backward(np.zeros((1, 2, 8), np.float32), np.zeros((1, 3, 8), np.float32)), ValueError, "grad_out has shape"),
    (lambda: cattn.show_config(mode="yaml"), ValueError, "mode"),
]


@pytest.mark.parametrize("call, exc, fragment", BAD_INPUTS,
                         ids=[f"bad{i}" for i in range(len(BAD_INPUTS))])
def test_bad_input_matrix(call, exc, fragment):
    """Every bad input raises its documented exception, naming the
    argument -- and never crashes the interpreter."""
    with pytest.raises(exc, match=fragment):
        call()


def test_bad_input_matrix_is_large():
    assert len(BAD_INPUTS) >= 40


@slow
def test_softmax_past_2_31_elements():
    """No 32-bit index arithmetic: one row of 2^31 + 3 float32 elements,
    and 2^31 + 17 elements in many rows (~17 GB in all)."""
    n = 2 ** 31 + 3
    x = np.zeros(n, np.float32)
    x[-1] = 1.0
    y = cattn.softmax(x)
    want_last = np.e / (np.e + (n - 1))
    assert abs(float(y[-1]) / want_last - 1) < 1e-3
    del x, y
    rows = np.zeros((2 ** 21 + 1, 1024), np.float32)
    rows[-1, -1] = 5.0
    lse = cattn.logsumexp(rows)
    assert abs(lse[-1] - np.log(np.exp(5.0) + 1023)) < 1e-4
    assert abs(lse[0] - np.log(1024.0)) < 1e-5


def test_impossible_allocation_raises_memory_error():
    huge = np.broadcast_to(np.float32(0), (2 ** 40, 2 ** 10))
    with pytest.raises(MemoryError):
        cattn.softmax(huge)


@slow
def test_no_leaks_over_ten_thousand_calls():

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    for name, fn in CALLS.items():
        for _ in range(200):
            fn()
        before = rss_mb()
        for _ in range(10_000):
            fn()
        grown = rss_mb() - before
        assert grown < 8, f"{name}: RSS grew {grown:.1f} MiB"


PEAK_PROBE = """
import sys
import numpy as np
import cattn

def status(field):          # this process's VmRSS or VmHWM, in MiB
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

L = 8192
q = np.random.default_rng(0).standard_normal((1, 1, L, 64)).astype(np.float32)
cattn.scaled_dot_product_attention(q[..., :64, :], q, q)     # warm up
before = status("VmRSS")
if sys.argv[1] == "fused":
    cattn.scaled_dot_product_attention(q, q, q, num_threads=2)
else:                       # the L x S weights, as a check of the probe
    cattn.attention_weights(q, q, num_threads=2) @ q
print(status("VmHWM") - before)
"""


@pytest.mark.parametrize("how", ["fused", "weights"])
def test_fused_attention_never_builds_the_score_matrix(how):
    """The fused kernel's extra memory is O(threads x tile), not O(L·S): at
    L = S = 8192 the float32 score matrix alone would take 256 MiB; the
    peak resident set of a fresh process grows by far less.  The same probe
    building the weights must see them (so the probe can fail)."""
    import subprocess
    import sys
    grown = float(subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, how], capture_output=True,
        text=True, check=True).stdout)
    if how == "fused":
        assert grown < 32, f"peak grew {grown:.1f} MiB"
    else:
        assert grown > 256, f"peak grew only {grown:.1f} MiB"


def test_bad_input_table_in_the_docs_is_current():
    import pathlib
    import sys
    root = pathlib.Path(__file__).resolve().parent.parent
    page = root / "docs" / "bad_inputs.md"
    if not page.exists():
        pytest.skip("docs/ not next to the tests")
    sys.path.insert(0, str(root / "tools"))
    try:
        import bad_inputs_table
    finally:
        sys.path.pop(0)
    assert page.read_text() == bad_inputs_table.render(), (
        "docs/bad_inputs.md is stale: run tools/bad_inputs_table.py")
