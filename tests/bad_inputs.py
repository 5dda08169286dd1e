"""Bad inputs and what they raise: one table, run by one tester
(test_reliability.py::test_bad_input) and rendered to docs/bad_inputs.md by
tools/bad_inputs_table.py.

A row is (call, exception, message): `call` is Python source evaluated
against NAMESPACE, so the page shows exactly what runs; `message` is a
regular expression the exception's message must contain.  Every message
names the function the user called.
"""
import ml_dtypes
import numpy as np

import cattn


def _read_only(shape, dtype=np.float64):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


def _attention_outputs():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 8)).astype(np.float32)
    k = rng.standard_normal((2, 6, 8)).astype(np.float32)
    o, lse = cattn.scaled_dot_product_attention(q, k, k, return_lse=True)
    return q, k, o, lse


_gq, _gk, _go, _glse = _attention_outputs()
_mha = cattn.MultiHeadAttention(8, 2)

# The names the calls use (the page's legend).
NAMESPACE = {
    "np": np, "cattn": cattn, "bf16": ml_dtypes.bfloat16,
    "x2": np.zeros((2, 3)),                          # float64 (2, 3)
    "q4": np.zeros((1, 2, 3, 4)),                    # float64 (1, 2, 3, 4)
    "q": np.zeros((2, 3, 4, 8), np.float32),         # B H L E
    "k": np.zeros((2, 3, 5, 8), np.float32),         # B H S E
    "v": np.zeros((2, 3, 5, 6), np.float32),         # B H S Ev
    "x": np.zeros((5, 4)),                           # float64 (5, 4)
    "a": np.zeros((2, 3), np.float32),               # matmul operands
    "b": np.zeros((3, 4), np.float32),
    "ro": _read_only((2, 4), np.float32),            # read-only outputs
    "ro2": _read_only((2, 3)),
    "ro1": _read_only((2,)),
    "gq": _gq, "gk": _gk, "go": _go, "glse": _glse,  # a forward's results
    "mha": _mha, "sd": _mha.state_dict(),            # MultiHeadAttention(8, 2)
    "x8": np.zeros((2, 3, 8), np.float32),           # (B, L, embed_dim)
    "grad": cattn.scaled_dot_product_attention_grad,
    "sdpa": cattn.scaled_dot_product_attention,
    "hard": cattn.hard_attention,
    # varlen_attention: 8 packed tokens in two sequences (cu), 4 query and
    # 2 key/value heads, float64
    "xq": np.zeros((8, 4, 16)), "xk": np.zeros((8, 2, 16)),
    "xv": np.zeros((8, 2, 8)), "cu": [0, 5, 8],
    # paged_attention: 8 pages of 4 tokens, 2 key/value heads, float32; two
    # sequences of 10 and 5 tokens on pages 0-2 and 3-4; one query token
    # of 4 heads each
    "pq": np.zeros((2, 4, 1, 32), np.float32),
    "kp": np.zeros((8, 2, 4, 32), np.float32),
    "vp": np.zeros((8, 2, 4, 24), np.float32),
    "table": np.array([[0, 1, 2, -1], [3, 4, -1, -1]]),
    "lens": np.array([10, 5]),
}

SOFTMAX_FAMILY = ("softmax", "log_softmax", "logsumexp")

ROWS = [
    ('cattn.softmax(np.zeros(3, np.int64))', TypeError, "x has dtype int64"),
    ('cattn.softmax(np.zeros(3, bool))', TypeError, "x has dtype bool"),
    ('cattn.softmax(np.zeros(3, np.complex64))', TypeError, "x has dtype complex64"),
    ('cattn.softmax(np.zeros(3, np.uint16))', TypeError, "x has dtype uint16"),
    ("cattn.softmax(np.zeros(3, np.float16), out=np.zeros(3))", TypeError,
     "out has dtype float64; the result has dtype float16"),
    ('cattn.softmax(np.array([object()]))', TypeError, "x has dtype object"),
    ('cattn.softmax("abc")', TypeError, "x has dtype <U3"),
    ('cattn.softmax(x2, axis=5)', np.exceptions.AxisError, "softmax"),
    ('cattn.softmax(x2, axis="0")', TypeError, "axis"),
    ('cattn.log_softmax(x2, num_threads=0)', ValueError, "num_threads"),
    ('cattn.log_softmax(x2, num_threads=-1)', ValueError, "num_threads"),
    ('cattn.log_softmax(x2, num_threads=1.0)', TypeError, "num_threads"),
    ('cattn.logsumexp(x2, num_threads="2")', TypeError, "num_threads"),
    ('cattn.logsumexp(x2, out=np.zeros(3))', ValueError, "out has shape"),
    ('cattn.logsumexp(x2, out=np.zeros(2, np.float32))', TypeError, "out has dtype"),
    ('cattn.softmax(x2, out=np.zeros((2, 3)).tolist())', TypeError, "out must be a numpy.ndarray"),
    ('cattn.softmax(x2, out=np.broadcast_to(0.0, (2, 3)))', ValueError, "out is read-only"),
    ('cattn.matmul(x2, x2)', ValueError, "core dimensions"),
    ('cattn.matmul(1.0, x2)', ValueError, "a is 0-d"),
    ('cattn.matmul(np.zeros((2, 2, 3)), np.zeros((3, 3, 4)))', ValueError, "batch dimensions"),
    ('cattn.matmul(np.zeros((2, 3), np.int32), x2.T)', TypeError, "a has dtype int32"),
    ('cattn.matmul(x2, np.zeros((3, 2), np.int8))', TypeError, "b has dtype int8"),
    ('cattn.matmul(a.astype(np.float16), b.astype(np.float16), out=np.zeros((2, 4)))', TypeError,
     r"out has dtype float64; the result has dtype float16 \(or float32\)"),
    ('cattn.matmul(x2, x2.T, out=np.zeros((3, 3)))', ValueError, "out has shape"),
    ('cattn.matmul(x2, x2.T, num_threads=0)', ValueError, "num_threads"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4[..., :2, :])', ValueError, "same number of keys"),
    ('cattn.scaled_dot_product_attention(q4, q4[..., :3], q4)', ValueError, "same last dimension E"),
    ('cattn.scaled_dot_product_attention(q4[0, 0, 0], q4, q4)', ValueError, "at least 2 dimensions"),
    ('cattn.scaled_dot_product_attention(q4, q4[:, :1].repeat(3, 1), q4[:, :1].repeat(3, 1))', ValueError, "do not broadcast"),
    ('cattn.scaled_dot_product_attention(np.zeros((1, 3, 2, 4)), q4[:, :1].repeat(2, 1), q4[:, :1].repeat(2, 1), enable_gqa=True)', ValueError, "multiple of the key/value heads"),
    ('cattn.scaled_dot_product_attention(q4.astype(int), q4, q4)', TypeError, "query has dtype"),
    ('cattn.scaled_dot_product_attention(q4, q4.astype(bool), q4)', TypeError, "key has dtype bool"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4.astype(np.complex128))', TypeError, "value has dtype complex128"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, np.zeros((3, 4), np.int8))', TypeError, "attn_mask has dtype int8"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, np.ones((2, 3), bool))', ValueError, "attn_mask of shape"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, scale=np.nan)', ValueError, "scale must be finite"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, scale=np.inf)', ValueError, "scale must be finite"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, scale=[1.0])', TypeError, "scale must be a real number"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, is_causal="yes")', ValueError, "is_causal"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, window=(-1, 0))', ValueError, "window"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, window=5)', ValueError, "window"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, out=np.zeros((1, 2, 3, 4), np.float32))', TypeError, "out has dtype"),
    ('cattn.self_attention(np.zeros(4))', ValueError, "at least 2 dimensions"),
    ('cattn.attention_weights(q4, q4[..., :2])', ValueError, "same last dimension E"),
    ('cattn.MultiHeadAttention(10, 3)', ValueError, "must divide embed_dim"),
    ('cattn.MultiHeadAttention(8, 2, num_kv_heads=3)', ValueError, "must divide num_heads"),
    ('cattn.MultiHeadAttention(8, 2, dtype=int)', TypeError,
     "dtype must be float32, float64, float16 or bfloat16, got int64"),
    ('cattn.MultiHeadAttention(8, 2)(np.zeros((1, 2, 7), np.float32))', ValueError, "query has 7 features"),
    ('cattn.MultiHeadAttention(8, 2).load_state_dict({})', KeyError, "missing keys"),
    ('cattn.MultiHeadAttention(8, 2).new_cache(0, 4)', ValueError, "batch must be >= 1"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, top_k=0)', ValueError, "top_k must be None or an int >= 1"),
    ('cattn.scaled_dot_product_attention(q4, q4, q4, top_k=1.5)', TypeError, "top_k must be None or an int"),
    ('cattn.hard_attention(q4, q4, q4.astype(np.int8))', TypeError, "value has dtype int8"),
    ('cattn.hard_attention(q4, q4, q4[..., :2, :])', ValueError, "same number of keys S"),
    ('cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4[..., :2, :], q4[..., 0])', ValueError, "out must have shape"),
    ('cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4, q4)', ValueError, "lse must have shape"),
    ('cattn.scaled_dot_product_attention_grad(q4, q4, q4, q4, q4, q4[..., 0], need_mask_grad=True)', ValueError, "needs a float attn_mask"),
    ('cattn.MultiHeadAttention(8, 2).backward(np.zeros((1, 2, 8), np.float32), np.zeros((1, 3, 8), np.float32))', ValueError, "grad_out has shape"),
    ('cattn.show_config(mode="yaml")', ValueError, "mode"),
    # scaled_dot_product_attention, every argument
    ("sdpa(q, k[..., :7], v)", ValueError,
     "scaled_dot_product_attention: query and key must have the same last "
     "dimension E"),
    ("sdpa(q, k, v[..., :4, :])", ValueError, "same number of keys S"),
    ("sdpa(q[0, 0, 0], k, v)", ValueError, "at least 2 dimensions"),
    ("sdpa(q, k[:, :2], v[:, :2])", ValueError, "do not broadcast"),
    ("sdpa(q, k[:, :1], v, enable_gqa=True)", ValueError,
     "same number of heads"),
    ("sdpa(q.astype(np.int32), k, v)", TypeError,
     "scaled_dot_product_attention: query has dtype int32"),
    ("sdpa(q.astype(bf16), k.astype(bf16), v.astype(bf16), np.zeros((4, 5), np.float16))",
     TypeError, "attn_mask has dtype float16; expected bool .* or "
     "float32/float64, bfloat16 like the operands"),
    ("sdpa(q.astype(np.float16), k, v, np.zeros((4, 5), np.float16))", TypeError,
     "attn_mask has dtype float16"),
    ("cattn.quantize(np.zeros((2, 6)), block_size=4)", ValueError,
     "quantize: block_size must be an int >= 1 dividing the last dimension 6"),
    ("cattn.quantize(np.zeros((2, 6)), block_size=2.0)", TypeError,
     "quantize: block_size must be an int"),
    ("cattn.quantize(np.array([[1.0, np.inf]]), block_size=2)", ValueError,
     "quantize: x holds inf or NaN"),
    ("cattn.quantize(np.zeros(4, np.int8))", TypeError, "quantize: x has dtype int8"),
    ("cattn.quantize(np.float32(1.0))", ValueError, "quantize: x is 0-d"),
    ("sdpa(q, cattn.quantize(k, 8), v)", TypeError,
     "key and value must both be quantized .* value is not"),
    ("sdpa(q, cattn.quantize(k, 8), cattn.quantize(k, 4))", ValueError,
     "share one block_size, got 8 and 4"),
    ("sdpa(q.astype(np.float64), cattn.quantize(k, 8), cattn.quantize(k, 8))",
     TypeError, "need a float32, float16 or bfloat16 query, got float64"),
    ("sdpa(q, cattn.quantize(k, 8), cattn.quantize(k, 8), top_k=2)",
     ValueError, "without top_k"),
    ("cattn.quantize(np.zeros((2, 8)), 4)[..., :4]", IndexError, "block axis"),
    ("sdpa(q.astype(np.float16), k.astype(np.float16), v.astype(np.float16), out=np.zeros((2, 3, 4, 6)))",
     TypeError, "out has dtype float64; the result has dtype float16"),
    ("sdpa(q.astype(complex), k, v)", TypeError, "query has dtype complex128"),
    ("sdpa(q, k, v.astype(np.int64))", TypeError, "value has dtype int64"),
    ("sdpa(q, k, v, np.ones((4, 5), np.int64))", TypeError,
     "attn_mask has dtype int64"),
    ("sdpa(q, k, v, np.ones((4, 4), bool))", ValueError,
     r"attn_mask of shape \(4, 4\)"),
    ("sdpa(q, k, v, is_causal='upper')", ValueError, "is_causal"),
    ("sdpa(q, k, v, window=(1,))", ValueError, "window must be None or a pair"),
    ("sdpa(q, k, v, window=(-1, 2))", ValueError, "window left bound"),
    ("sdpa(q, k, v, window=(1.5, 2))", ValueError, "window left bound"),
    ("sdpa(q, k, v, softcap=0.0)", ValueError, "softcap must be None or a finite number > 0, got 0.0"),
    ("sdpa(q, k, v, softcap=float('nan'))", ValueError, "softcap must be None or a finite number > 0"),
    ("sdpa(q, k, v, softcap='30')", TypeError, "softcap must be None or a real number > 0"),
    ("sdpa(q, k, v, sinks=np.zeros(4))", ValueError, r"sinks of shape \(4,\) does not broadcast to the heads: batch shape \(\.\.\., H\) = \(2, 3\)"),
    ("sdpa(q, k, v, sinks=np.zeros(3, bool))", TypeError, "sinks must hold real numbers, got dtype bool"),
    ("sdpa(q, k, v, alibi_slopes=np.zeros((3, 3)))", ValueError, r"alibi_slopes of shape \(3, 3\) does not broadcast"),
    ("sdpa(q, k, v, alibi_slopes=[0.5, np.inf, 0.1])", ValueError, "alibi_slopes must be finite, got inf"),
    ("cattn.hard_attention(q, k, v, sinks=np.zeros(3))", TypeError, "sinks"),
    ("sdpa(q, k, v, indices=np.zeros((4, 2)))", TypeError, "indices must be an integer array of key positions .-1 for an empty slot., got dtype float64"),
    ("sdpa(q, k, v, indices=np.zeros((3, 4, 4, 2), np.int32))", ValueError, r"indices of shape \(3, 4, 4, 2\) do not broadcast to \(\.\.\., key/value heads, L, k\) = \(2, 3, 4, 2\)"),
    ("sdpa(q, k, v, indices=[[0, 5]] * 4)", ValueError, r"indices\[0, 1\] = 5 is not a key of 0\.\.S-1 = 0\.\.4 or -1"),
    ("sdpa(q, k, v, indices=np.full((4, 1), -2, np.int32))", ValueError, r"indices\[0, 0\] = -2 is not a key"),
    ("sdpa(q, k, v, indices=[[1, 2, 1]] * 4)", ValueError, r"indices\[0\] lists key 1 twice \(again in slot 2\)"),
    ("sdpa(q, k, v, indices=[[0]] * 4, top_k=1)", ValueError, "top_k and indices select keys two ways"),
    ("sdpa(q, k, v, chunk_size=0)", ValueError, "chunk_size must be None or an int >= 1, got 0"),
    ("sdpa(q, k, v, chunk_size=2.5)", TypeError, "chunk_size must be None or an int >= 1, got 2.5"),
    ("sdpa(q, k, v, prefix=-1, is_causal=True)", ValueError, "prefix must be None or an int >= 1, got -1"),
    ("sdpa(q, k, v, prefix=3)", ValueError, r"prefix=3 needs is_causal"),
    ("grad(go, gq, gk, gk, go, glse, chunk_size=True)", TypeError, "chunk_size must be None or an int >= 1, got True"),
    ("cattn.varlen_attention(xq, xk, xv, cu, cu, enable_gqa=True, chunk_size=0)", ValueError, "chunk_size must be None or an int >= 1, got 0"),
    ("cattn.varlen_attention(xq, xk, xv, cu, cu, enable_gqa=True, prefix=2)", ValueError, "prefix=2 needs is_causal"),
    ("cattn.paged_attention(pq, kp, vp, table, lens, prefix=1.5)", TypeError, "prefix must be None or an int >= 1, got 1.5"),
    ("sdpa(q, k, v, block_mask=np.ones((2, 3)))", TypeError, "block_mask must be a bool array .*, got dtype float64"),
    ("sdpa(q, k, v, block_mask=np.ones((2, 2), bool), block_size=2)", ValueError, r"block_mask of shape \(2, 2\) does not broadcast to \(\.\.\., ceil\(L / 2\), ceil\(S / 2\)\) = \(2, 3, 2, 3\)"),
    ("sdpa(q, k, v, block_mask=np.ones(1, bool))", ValueError, r"block_mask of shape \(1,\) does not broadcast"),
    ("sdpa(q, k, v, block_mask=np.ones((1, 1), bool), block_size=0)", ValueError, "block_size must be None or an int >= 1, got 0"),
    ("sdpa(q, k, v, block_mask=np.ones((1, 1), bool), block_size=(2, 1.5))", TypeError, "block_size must be None or an int >= 1, got 1.5"),
    ("sdpa(q, k, v, block_mask=np.ones((1, 1), bool), block_size=(1, 2, 3))", ValueError, "block_size must be an int >= 1 or a pair"),
    ("sdpa(q, k, v, block_size=64)", ValueError, "block_size=64 needs block_mask"),
    ("grad(go, gq, gk, gk, go, glse, block_mask=np.ones((1, 1), bool), block_size=-2)", ValueError, "block_size must be None or an int >= 1, got -2"),
    ("sdpa(q, k, v, key_lengths=[5, 6])", ValueError, r"key_lengths must lie in \[0, S\] = \[0, 5\], got 6"),
    ("sdpa(q, k, v, query_lengths=[-1, 2])", ValueError, r"query_lengths must lie in \[0, L\] = \[0, 4\], got -1"),
    ("sdpa(q, k, v, query_lengths=[1, 2, 3])", ValueError, r"query_lengths of shape \(3,\) does not broadcast to the batch rows \(2,\)"),
    ("sdpa(q, k, v, key_lengths=[2.0, 3.0])", TypeError, "key_lengths must be an integer array, got dtype float64"),
    ("cattn.varlen_attention(np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), [0, 5, 3, 8], [0, 8])", ValueError, r"cu_seqlens_q must not decrease: cu_seqlens_q\[2\] = 3 < cu_seqlens_q\[1\] = 5"),
    ("cattn.varlen_attention(np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), [0, 8], [0, 9])", ValueError, r"cu_seqlens_k must end at the number of keys \(8, the packed array's first dimension\), got 9"),
    ("cattn.varlen_attention(np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), np.zeros((8, 2, 4)), [0, 4, 8], [0, 8])", ValueError, "cu_seqlens_q and cu_seqlens_k must describe as many sequences"),
    ("cattn.paged_attention(np.zeros((1, 2, 1, 4)), np.zeros((3, 2, 4, 4)), np.zeros((3, 2, 4, 4)), [[0, 7]], [6])", ValueError, r"block_table\[0, 1\] = 7 is not a page: it must lie in \[0, num_pages\) = \[0, 3\)"),
    ("cattn.paged_attention(np.zeros((1, 2, 1, 4)), np.zeros((3, 2, 4, 4)), np.zeros((3, 2, 4, 4)), [[0, -1]], [6])", ValueError, r"block_table\[0, 1\] = -1 is not a page"),
    ("cattn.paged_attention(np.zeros((1, 2, 1, 4)), np.zeros((3, 2, 4, 4)), np.zeros((3, 2, 4, 4)), [[0, 1]], [9])", ValueError, r"seq_lens\[0\] = 9 must lie in \[L, max_pages · page_size\] = \[1, 8\]"),
    ("sdpa(q, k, v, window='ab')", ValueError, "window left bound"),
    ("sdpa(q, k, v, window=3)", ValueError, "window must be None or a pair"),
    ("sdpa(q, k, v, scale='1')", TypeError, "scale must be a real number"),
    ("sdpa(q, k, v, num_threads=0)", ValueError, "num_threads"),
    ("sdpa(q, k, v, out=np.empty((2, 3, 4, 6)))", TypeError, "out has dtype"),
    ("sdpa(q, k, v, out=np.empty((2, 3, 4, 8), np.float32))", ValueError,
     "out has shape"),
    ("cattn.attention_weights(q.astype(int), k)", TypeError,
     "attention_weights: query has dtype"),
    ("cattn.self_attention(np.zeros(3, np.float32))", ValueError,
     "self_attention: x must have at least 2 dimensions"),
    ("cattn.self_attention(np.zeros((3, 2), np.int8))", TypeError,
     "self_attention: x has dtype int8"),
    # top-k and hard attention
    ("sdpa(x, x, x, top_k=0)", ValueError,
     "top_k must be None or an int >= 1, got 0"),
    ("sdpa(x, x, x, top_k=2.0)", TypeError, "top_k"),
    ("sdpa(x, x, x, top_k=True)", TypeError, "top_k"),
    ("hard(x, x, x.astype(np.int64))", TypeError,
     "hard_attention: value has dtype int64"),
    ("hard(x, x[:, :3], x)", ValueError, "same last dimension"),
    ("hard(x, x, x, out=np.empty((5, 3)))", ValueError, "out has shape"),
    ("hard(x, x, x, out=np.empty((5, 4), np.float32))", TypeError,
     "out has dtype"),
    ("hard(x, x, x, np.ones((2, 5), bool))", ValueError, "does not broadcast"),
    ("hard(x, x, x, window=(-1, 0))", ValueError, "window"),
    ("hard(x, x, x, num_threads=0)", ValueError, "num_threads"),
    # the gradient
    ("grad(go, gq, gk, gk, go[:, :-1], glse)", ValueError,
     r"out must have shape batch \+ \(L, Ev\)"),
    ("grad(go[..., :-1], gq, gk, gk, go, glse)", ValueError,
     "grad_out must have shape"),
    ("grad(go, gq, gk, gk, go, glse[:, 1:])", ValueError,
     "lse must have shape"),
    ("grad(go.astype(np.int32), gq, gk, gk, go, glse)", TypeError,
     "scaled_dot_product_attention_grad: grad_out has dtype int32"),
    ("grad(go, gq, gk, gk, go, glse, need_mask_grad=True)", ValueError,
     "needs a float"),
    ("grad(go, gq, gk, gk, go, glse, np.ones((4, 6), bool), "
     "need_mask_grad=True)", ValueError, "got a bool mask"),
    ("grad(go, gq, gk, gk, go, glse, np.ones((3, 6)))", ValueError,
     "does not broadcast"),
    ("grad(go, gq, gk, gk, go, glse, num_threads=0)", ValueError,
     "num_threads"),
    ("grad(go, gq, gk, gk, go, glse, is_causal='yes')", ValueError,
     "is_causal"),
    # matmul
    ("cattn.matmul(np.zeros((3, 4)), np.zeros((5, 6)))", ValueError,
     r"matmul: core dimensions \(n,k\),\(k,m\) disagree: a has shape "
     r"\(3, 4\), b has shape \(5, 6\)"),
    ("cattn.matmul(np.float64(1.0), np.zeros(3))", ValueError, "a is 0-d"),
    ("cattn.matmul(np.zeros(3), 2.0)", ValueError, "b is 0-d"),
    ("cattn.matmul(np.zeros((2, 3, 4)), np.zeros((3, 4, 5)))", ValueError,
     "batch dimensions do not broadcast"),
    ("cattn.matmul(a, b, out=np.zeros((2, 4)))", TypeError,
     "out has dtype float64"),
    ("cattn.matmul(a, b, out=np.zeros((4, 2), np.float32))", ValueError,
     r"out has shape \(4, 2\)"),
    ("cattn.matmul(a, b, out=ro)", ValueError, "read-only"),
    ("cattn.matmul(a, b, num_threads=-2)", ValueError, "num_threads"),
    ("cattn.matmul(a, b, num_threads=2.0)", TypeError, "num_threads"),
    ("cattn.matmul(a, b, num_threads='2')", TypeError, "num_threads"),
    # MultiHeadAttention
    ("cattn.MultiHeadAttention(8, 3)", ValueError, "num_heads .3. must divide"),
    ("cattn.MultiHeadAttention(12, 4, num_kv_heads=3)", ValueError,
     "num_kv_heads .3. must divide"),
    ("cattn.MultiHeadAttention(0, 1)", ValueError, "embed_dim must be >= 1"),
    ("cattn.MultiHeadAttention(8.0, 2)", TypeError, "embed_dim must be an int"),
    ("cattn.MultiHeadAttention(8, 2).new_cache(1, 4, dtype=np.int8)", TypeError,
     "MultiHeadAttention.new_cache: dtype must be float32, float64, float16, "
     "bfloat16 or 'int8'"),
    ("cattn.MultiHeadAttention(8, 2, dtype=np.complex64)", TypeError,
     "dtype must be float32, float64, float16 or bfloat16, got complex64"),
    ("mha(np.zeros(8, np.float32))", ValueError, "query must be"),
    ("mha(np.zeros((2, 3, 8), np.int64))", TypeError,
     "MultiHeadAttention: query has dtype int64"),
    ("mha(x8, key_padding_mask=np.zeros((2, 4), bool))", ValueError,
     "key_padding_mask has shape"),
    ("mha(x8, key_padding_mask=np.zeros((2, 3)))", TypeError,
     "key_padding_mask has dtype"),
    ("mha(x8, x8, cache=mha.new_cache(2, 4))", ValueError,
     "cache= is for self-attention"),
    ("mha(x8, x8, np.zeros((2, 4, 8), np.float32))", ValueError,
     "same batch and length"),
    ("mha.backward(x8[:, :2], x8)", ValueError, "grad_out has shape"),
    ("mha.backward(x8, x8, mha.project_memory(x8))", ValueError,
     "ProjectedMemory"),
    ("mha.backward(x8.astype(np.int32), x8)", TypeError,
     "grad_out has dtype"),
    ("mha.backward(x8, x8, key_padding_mask=np.zeros((2, 4), bool))",
     ValueError, "key_padding_mask has shape"),
    ("mha.load_state_dict({n: w for n, w in sd.items() "
     "if n != 'in_proj_bias'})", KeyError, r"missing keys \['in_proj_bias'\]"),
    ("mha.load_state_dict(dict(sd, extra=np.zeros(1)))", KeyError,
     r"unexpected keys \['extra'\]"),
    ("mha.load_state_dict(dict(sd, in_proj_weight=np.zeros((8, 8))))",
     ValueError, r"in_proj_weight has shape \(8, 8\)"),
    ("mha.load_state_dict(dict(sd, in_proj_bias=np.array(['a'] * 24)))",
     TypeError, "in_proj_bias has dtype"),
    # Per-row lengths (the batch rows of q: B = 2; L = 4, S = 5).
    ("sdpa(q, k, v, key_lengths=[3, 7])", ValueError,
     r"scaled_dot_product_attention: key_lengths must lie in \[0, S\] = "
     r"\[0, 5\], got 7"),
    ("sdpa(q, k, v, query_lengths=[-1, 0])", ValueError,
     r"query_lengths must lie in \[0, L\] = \[0, 4\], got -1"),
    ("sdpa(q, k, v, query_lengths=[1, 2, 3])", ValueError,
     r"query_lengths of shape \(3,\) does not broadcast to the batch rows "
     r"\(2,\)"),
    ("sdpa(q, k, v, key_lengths=np.ones(2))", TypeError,
     "key_lengths must be an integer array, got dtype float64"),
    ("sdpa(q, k, v, key_lengths=np.ones((4, 4), int))", ValueError,
     r"key_lengths of shape \(4, 4\)"),
    # varlen_attention: offsets from users are checked before any read.
    ("cattn.varlen_attention(xq, xk, xv, [0, 5, 3, 8], cu, enable_gqa=True)",
     ValueError, r"varlen_attention: cu_seqlens_q must not decrease: "
     r"cu_seqlens_q\[2\] = 3 < cu_seqlens_q\[1\] = 5"),
    ("cattn.varlen_attention(xq, xk, xv, [1, 5, 8], cu, enable_gqa=True)",
     ValueError, "cu_seqlens_q must start at 0, got 1"),
    ("cattn.varlen_attention(xq, xk, xv, cu, [0, 5, 9], enable_gqa=True)",
     ValueError, r"cu_seqlens_k must end at the number of keys \(8, the "
     r"packed array's first dimension\), got 9"),
    ("cattn.varlen_attention(xq, xk, xv, cu, [0, 8], enable_gqa=True)",
     ValueError, "cu_seqlens_q and cu_seqlens_k must describe as many "
     "sequences: 2 and 1"),
    ("cattn.varlen_attention(xq, xk, xv, [0.0, 5.0, 8.0], cu, "
     "enable_gqa=True)", TypeError, "cu_seqlens_q must be a 1-D integer "
     "array"),
    ("cattn.varlen_attention(xq, xk, xv, [[0, 5, 8]], cu, enable_gqa=True)",
     ValueError, "cu_seqlens_q must be a 1-D integer array"),
    ("cattn.varlen_attention(xq, xk[:, :1].repeat(3, 1), "
     "xv[:, :1].repeat(3, 1), cu, cu, enable_gqa=True)", ValueError,
     r"the query heads \(4\) must be a multiple of the key/value heads "
     r"\(3\) \(dimension 1"),
    ("cattn.varlen_attention(xq, xk, xv, cu, cu)", ValueError,
     r"the query has 4 heads and the key/value 2 .*; for grouped-query "
     "attention pass enable_gqa=True"),
    ("cattn.varlen_attention(xq[..., None], xk, xv, cu, cu, enable_gqa=True)",
     ValueError, r"query must have 3 dimensions \(total_q, H, E\)"),
    ("cattn.varlen_attention(xq, xk, xv, cu, cu, enable_gqa=True, "
     "sinks=np.zeros(3))", ValueError, r"sinks of shape \(3,\)"),
    # paged_attention: block tables and lengths from users are hostile.
    ("cattn.paged_attention(pq, kp, vp, [[0, 99, 2, -1], [3, 4, -1, -1]], "
     "lens)", ValueError, r"paged_attention: block_table\[0, 1\] = 99 is "
     r"not a page: it must lie in \[0, num_pages\) = \[0, 8\)"),
    ("cattn.paged_attention(pq, kp, vp, table, [0, 5])", ValueError,
     r"seq_lens\[0\] = 0 must lie in \[L, max_pages · page_size\] = "
     r"\[1, 16\]"),
    ("cattn.paged_attention(pq, kp, vp, table, [10, 500])", ValueError,
     r"seq_lens\[1\] = 500 must lie in"),
    ("cattn.paged_attention(pq, kp, vp, table, [10.0, 5.0])", TypeError,
     "seq_lens must be an integer array"),
    ("cattn.paged_attention(pq, kp, vp, table.astype(float), lens)",
     TypeError, "block_table must be an integer array"),
    ("cattn.paged_attention(pq, kp, vp, table[:1], lens)", ValueError,
     r"block_table must have shape \(B, max_pages\) = \(2, ...\)"),
    ("cattn.paged_attention(pq, kp, vp.astype(np.float64), table, lens)",
     TypeError, "key_pages and value_pages must share one dtype"),
    ("cattn.paged_attention(pq.astype(np.float64), kp, vp, table, lens)",
     TypeError, "pages of dtype float32 with a float64 query would compute "
     "in float64: the cache is never copied"),
    ("cattn.paged_attention(pq, cattn.quantize(kp, 8), vp, table, lens)",
     TypeError, "key_pages and value_pages must both be quantized"),
    ("cattn.paged_attention(pq[:, :3], kp, vp, table, lens)", ValueError,
     r"the query heads \(3\) must be a multiple"),
    ("cattn.paged_attention(pq[0], kp, vp, table, lens)", ValueError,
     r"query must have 4 dimensions \(B, H, L, E\)"),
]

# softmax, log_softmax and logsumexp share every rule.
for _f in SOFTMAX_FAMILY:
    _out = "(2,)" if _f == "logsumexp" else "(2, 3)"
    _ro = "ro1" if _f == "logsumexp" else "ro2"
    ROWS += [
        (f"cattn.{_f}(np.zeros(3, np.int64))", TypeError,
         f"{_f}: x has dtype int64"),
        (f"cattn.{_f}(np.zeros(3, np.int16))", TypeError,
         f"{_f}: x has dtype int16; expected float32, float64, float16 or "
         "bfloat16"),
        (f"cattn.{_f}(np.zeros(3, complex))", TypeError,
         f"{_f}: x has dtype complex128"),
        (f"cattn.{_f}(np.zeros(3, bool))", TypeError, f"{_f}: x has dtype bool"),
        (f"cattn.{_f}(['a', 'b'])", TypeError, f"{_f}: x has dtype <U1"),
        (f"cattn.{_f}(x2, axis=2)", np.exceptions.AxisError, _f),
        (f"cattn.{_f}(x2, axis=1.5)", TypeError, "axis"),
        (f"cattn.{_f}(x2, num_threads=0)", ValueError, "num_threads"),
        (f"cattn.{_f}(x2, num_threads=-1)", ValueError, "num_threads"),
        (f"cattn.{_f}(x2, num_threads=1.5)", TypeError, "num_threads"),
        (f"cattn.{_f}(x2, num_threads=True)", TypeError, "num_threads"),
        (f"cattn.{_f}(x2, out=np.zeros({_out}, np.float32))", TypeError,
         "out has dtype float32"),
        (f"cattn.{_f}(x2, out=np.zeros((7,)))", ValueError, "out has shape"),
        (f"cattn.{_f}(x2, out={_ro})", ValueError, "out is read-only"),
        (f"cattn.{_f}(x2, out=[0.0, 0.0])", TypeError,
         "out must be a numpy.ndarray"),
    ]
