"""Every kernel family, one small call each: the catalogue that the
concurrency, free-threading and leak tests run (test_threads.py,
test_reliability.py).

FAMILIES maps a name to a call without arguments that returns one ndarray
(several results concatenated), always the same bits for the same inputs.
Inputs are module constants, read-only, so calls from many threads share
them as a user's threads would.  Only NumPy and cattn are imported: the
free-threaded check runs this in a fresh interpreter and must not blame
cattn for another extension that turns the GIL on.
"""
import numpy as np

import cattn


def _frozen(a):
    a.flags.writeable = False
    return a


_rng = np.random.default_rng(7)
X = _frozen(_rng.standard_normal((64, 300)).astype(np.float32))
X16 = _frozen(X.astype(np.float16))
Q = _frozen(_rng.standard_normal((2, 4, 50, 16)).astype(np.float32))
KV = _frozen(_rng.standard_normal((2, 2, 90, 16)).astype(np.float32))
Q64 = _frozen(Q.astype(np.float64))
KV64 = _frozen(KV.astype(np.float64))
MASK = _frozen(_rng.random((50, 90)) < 0.7)
KV8 = cattn.quantize(KV, 16)
LENS_Q = _frozen(np.array([50, 17]))
LENS_K = _frozen(np.array([90, 33]))
# Packed sequences of 5, 40 and 12 tokens (varlen).
CU = _frozen(np.array([0, 5, 45, 57]))
PACKED_Q = _frozen(_rng.standard_normal((57, 4, 16)).astype(np.float32))
PACKED_KV = _frozen(_rng.standard_normal((57, 2, 16)).astype(np.float32))
# A pool of 12 pages of 8 keys; two sequences of 30 and 21 keys on
# scattered pages.
PAGES_K = _frozen(_rng.standard_normal((12, 2, 8, 16)).astype(np.float32))
PAGES_V = _frozen(_rng.standard_normal((12, 2, 8, 16)).astype(np.float32))
TABLE = _frozen(np.array([[7, 2, 9, 0], [4, 11, 5, -1]]))
SEQ_LENS = _frozen(np.array([30, 21]))
MHA = cattn.MultiHeadAttention(16, 4, num_kv_heads=2, rng=0)


def _grad(**kw):
    out, lse = cattn.scaled_dot_product_attention(
        Q, KV, KV, enable_gqa=True, return_lse=True, **kw)
    grads = cattn.scaled_dot_product_attention_grad(
        out, Q, KV, KV, out, lse, enable_gqa=True, **kw)
    return np.concatenate([g.ravel() for g in grads])


def _mha_backward():
    (dx, _, _), grads = MHA.backward(Q[0, :, :, :16], Q[0, :, :, :16])
    return np.concatenate([dx.ravel()] + [g.ravel() for g in grads.values()])


FAMILIES = {
    "softmax": lambda: cattn.softmax(X, axis=0),
    "softmax_float16": lambda: cattn.softmax(X16),
    "log_softmax": lambda: cattn.log_softmax(X),
    "logsumexp": lambda: cattn.logsumexp(X),
    "matmul": lambda: cattn.matmul(X, X.T),
    "matmul_float64": lambda: cattn.matmul(X.T.astype(np.float64), X),
    "matmul_gemv": lambda: cattn.matmul(X[:2], X.T),
    "sdpa": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, is_causal=True, enable_gqa=True),
    "sdpa_float64_mask": lambda: cattn.scaled_dot_product_attention(
        Q64, KV64, KV64, MASK, enable_gqa=True),
    "sdpa_float16": lambda: cattn.scaled_dot_product_attention(
        Q.astype(np.float16), KV.astype(np.float16), KV.astype(np.float16),
        enable_gqa=True),
    "sdpa_variants": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, enable_gqa=True, window=(20, 0), softcap=30.0,
        sinks=np.linspace(-1, 1, 4), alibi_slopes=np.linspace(0.1, 0.5, 4)),
    "sdpa_lengths": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, enable_gqa=True, query_lengths=LENS_Q,
        key_lengths=LENS_K),
    "sdpa_decode": lambda: cattn.scaled_dot_product_attention(
        Q[:, :, :1], KV, KV, enable_gqa=True),
    "sdpa_int8": lambda: cattn.scaled_dot_product_attention(
        Q, KV8, KV8, enable_gqa=True),
    "varlen": lambda: cattn.varlen_attention(
        PACKED_Q, PACKED_KV, PACKED_KV, CU, CU, is_causal=True,
        enable_gqa=True),
    "paged_decode": lambda: cattn.paged_attention(
        Q[:, :, :1], PAGES_K, PAGES_V, TABLE, SEQ_LENS),
    "paged_prefill": lambda: cattn.paged_attention(
        Q[:, :, :9], PAGES_K, PAGES_V, TABLE, SEQ_LENS),
    "self_attention": lambda: cattn.self_attention(X[:40, :32]),
    "attention_weights": lambda: cattn.attention_weights(Q, Q),
    "hard_attention": lambda: cattn.hard_attention(
        Q, KV, KV, enable_gqa=True, return_indices=True)[1],
    "top_k": lambda: cattn.scaled_dot_product_attention(
        Q, KV, KV, enable_gqa=True, top_k=5),
    "sdpa_grad": lambda: _grad(is_causal=True),
    "sdpa_grad_variants": lambda: _grad(softcap=20.0,
                                        sinks=np.zeros(4), window=(8, 8)),
    "quantize": lambda: cattn.quantize(KV, 16).values,
    "mha": lambda: MHA(Q[0, :, :, :16]),
    "mha_backward": _mha_backward,
}
