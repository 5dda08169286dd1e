"""16-bit storage (float16, ml_dtypes.bfloat16): computed in float32,
rounded once to nearest even.

The exact property, for every operation that takes 16-bit inputs
(softmax family, matmul, scaled_dot_product_attention with every option,
hard_attention, attention_weights, the gradient) at precision="highest":
op(x16...) equals op(x16.astype(float32)...) rounded to the 16-bit dtype
(NumPy's and ml_dtypes' casts round to nearest even), bit for bit, at
every SIMD level and thread count -- the kernels widen 16-bit operands
exactly as they pack or stream them and run the float32 kernels
unchanged.  The float64 twin (cattn._reference) bounds the error on top.

Only bfloat16 at the avx512_bf16 level differs (the bf16 pair kernel,
cattn_gemm_bf16.h): there matmul at the default precision equals a NumPy
emulation of vdpbf16ps bit for bit, attention's scores sum the exact bf16
products in pairs (both precisions) and the default rounds P to bf16, so
attention is held to the float64 twin's error bounds instead; everywhere
else the default is the highest precision, bit for bit."""
import numpy as np
import pytest

import cattn
from cattn import _config, _reference
from cattn._kernels import _gemm, _softmax

ml_dtypes = pytest.importorskip("ml_dtypes")

DTYPES = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]
OPS = [cattn.softmax, cattn.log_softmax, cattn.logsumexp]


def bits_equal(got, want):
    """Equal bits, except that any NaN matches any NaN."""
    g, w = got.astype(np.float32), want.astype(np.float32)
    nan = np.isnan(w)
    np.testing.assert_array_equal(np.isnan(g), nan)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan],
                                  want.view(np.uint16)[~nan])


def specials(dtype, rng, shape):
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    tiny = ml_dtypes.finfo(dtype).smallest_subnormal
    hit = rng.random(shape)
    x[hit < 0.03] = np.inf
    x[(hit >= 0.03) & (hit < 0.06)] = -np.inf
    x[(hit >= 0.06) & (hit < 0.08)] = np.nan
    x[(hit >= 0.08) & (hit < 0.12)] = float(tiny) * 3
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [-1, 0, (0, 1), None])
def test_equals_float32_rounded_once(dtype, op, axis, isa, rng):
    for shape in [(3, 5, 7), (2, 1, 1000), (4, 33, 17)]:
        x = specials(dtype, rng, shape)
        with np.errstate(invalid="ignore", over="ignore"):
            want = op(x.astype(np.float32), axis=axis).astype(dtype)
        got = op(x, axis=axis)
        assert got.dtype == dtype and got.shape == want.shape
        bits_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_float32_out_keeps_the_float32_result(dtype, rng):
    x = specials(dtype, rng, (6, 50))
    out = np.empty(x.shape, np.float32)
    assert cattn.softmax(x, out=out) is out
    np.testing.assert_array_equal(out, cattn.softmax(x.astype(np.float32)))
    lse = np.empty(6, np.float32)
    cattn.logsumexp(x, out=lse)
    np.testing.assert_array_equal(lse, cattn.logsumexp(x.astype(np.float32)))
    with pytest.raises(TypeError, match="out has dtype float64"):
        cattn.softmax(x, out=np.empty(x.shape))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_within_one_ulp_of_float64(dtype, rng):
    """Against the float64 twin on the same 16-bit inputs: the float32
    error is far below half an ulp of 16 bits, so one rounding leaves every
    element within one ulp."""
    x = (rng.standard_normal((64, 300)) * 3).astype(dtype)
    want = cattn.softmax(x.astype(np.float64))
    got = cattn.softmax(x).astype(np.float64)
    ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    assert np.all(np.abs(got - want) <= ulp)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_threads_and_layouts_do_not_change_bits(dtype, isa, rng):
    x = specials(dtype, rng, (40, 5000))
    base = cattn.log_softmax(x, num_threads=1)
    for nt in (2, 3):
        assert _softmax.team_size(*x.shape, nt) == nt   # a real team
        bits_equal(cattn.log_softmax(x, num_threads=nt), base)
    bits_equal(cattn.log_softmax(np.asfortranarray(x)), base)
    bits_equal(cattn.log_softmax(x[::-1])[::-1], base)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_conversions_round_to_nearest_even(dtype, isa, rng):
    """The kernels' float32 -> 16-bit conversion equals the round-to-nearest-
    even cast (NumPy's for float16, ml_dtypes' for bfloat16) on random
    floats, exact ties, values at the overflow edge, subnormals and the
    specials; widening every one of the 65,536 16-bit patterns is exact."""
    f = rng.standard_normal(20000).astype(np.float32) * np.float32(
        ml_dtypes.finfo(dtype).max) ** rng.random(20000).astype(np.float32)
    every = np.arange(2 ** 16, dtype=np.uint16).view(dtype)
    halfway = every.astype(np.float32)
    halfway = (halfway[:-1] + halfway[1:]) / 2       # ties and their edges
    edge = np.float32(ml_dtypes.finfo(dtype).max) * np.float32([1, 1.001, 1.01, 2])
    tiny = np.float32(ml_dtypes.finfo(dtype).smallest_subnormal) * np.float32(
        [0.25, 0.5, 0.75, 1, 1.5, 2.5])
    src = np.concatenate([f, halfway[np.isfinite(halfway)], edge, -edge,
                          tiny, -tiny, [np.inf, -np.inf, np.nan, 0, -0.0]]
                         ).astype(np.float32)
    got = np.empty(src.size, dtype)
    _softmax.convert(src, got)
    bits_equal(got, src.astype(dtype))
    wide = np.empty(every.size, np.float32)
    _softmax.convert(every, wide)
    np.testing.assert_array_equal(np.isnan(wide),
                                  np.isnan(every.astype(np.float32)))
    fin = ~np.isnan(wide)
    np.testing.assert_array_equal(wide[fin], every.astype(np.float32)[fin])


# ------------------------------------------------------------- products --

def f32(x):
    return x.astype(np.float32)


def rounded(x, dtype):
    """A float32 result rounded to `dtype` (nearest even), as the kernels
    round."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x).astype(dtype)


MATMUL_CASES = [
    ((1, 70), (70, 90)),          # few rows: the streaming path
    ((3, 300), (300, 1000)),
    ((50, 33), (33, 70)),         # packed GEMM, edge tiles
    ((2, 1, 5, 7), (3, 7, 4)),    # broadcast batch
    ((7,), (7,)),                 # 1-D x 1-D
    ((4, 0), (0, 3)),             # k = 0
    ((300, 260), (260, 20)),      # several KC blocks
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shapes", MATMUL_CASES, ids=str)
def test_matmul_equals_float32_rounded_once(dtype, shapes, isa, rng):
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    got = cattn.matmul(a, b, precision="highest")
    assert got.dtype == dtype
    bits_equal(got, rounded(cattn.matmul(f32(a), f32(b)), dtype))
    if not pairs(dtype):
        bits_equal(cattn.matmul(a, b), got)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matmul_layouts_threads_and_out(dtype, isa, rng):
    a = rng.standard_normal((60, 40)).astype(dtype)
    b = rng.standard_normal((40, 50)).astype(dtype)
    for precision in ("highest", "default"):
        def mm(x, y, **kw):
            return cattn.matmul(x, y, precision=precision, **kw)
        want = mm(a, b, num_threads=1)
        if precision == "highest":
            bits_equal(want, rounded(cattn.matmul(f32(a), f32(b)), dtype))
        for nt in (2, 3):
            bits_equal(mm(a, b, num_threads=nt), want)
        bits_equal(mm(np.asfortranarray(a), np.asfortranarray(b)), want)
        bits_equal(mm(a[::-1], b)[::-1], want)
        ro = a.copy()
        ro.flags.writeable = False
        bits_equal(mm(ro, b), want)
        out = np.empty((50, 60), dtype).T                 # column-major out
        assert mm(a, b, out=out) is out
        bits_equal(out, want)
        wide = np.empty((60, 50), np.float32)            # float32 out
        mm(a, b, out=wide)
        bits_equal(wide.astype(dtype), want)
    bits_equal(cattn.matmul(b.T, a.T, precision="highest").T,
               cattn.matmul(a, b, precision="highest"))


def pairs(dtype):
    """True where the default precision runs the bf16 pair kernel."""
    return (dtype == ml_dtypes.bfloat16
            and _config.active_isa() in ("avx512_bf16", "neon_bf16"))


def emulate_vdpbf16ps(a, b):
    """A·B as the bf16 pair kernel computes it, per its instruction's
    definition (Intel SDM, VDPBF16PS): per output, over depth pairs
    t = 0, 1, ..: acc += a[2t+1]·b[2t+1], then acc += a[2t]·b[2t], each
    rounded to float32 (a product of two bf16 is exact in float32); an odd
    depth pads a zero.  Inputs without subnormals (the instruction treats
    them as zero)."""
    A, B = f32(a), f32(b)
    if A.shape[-1] % 2:
        A = np.concatenate([A, np.zeros(A.shape[:-1] + (1,), np.float32)], -1)
        B = np.concatenate([B, np.zeros((1,) + B.shape[1:], np.float32)], 0)
    acc = np.zeros((A.shape[0], B.shape[1]), np.float32)
    for t in range(A.shape[1] // 2):
        acc = acc + A[:, 2 * t + 1, None] * B[None, 2 * t + 1, :]
        acc = acc + A[:, 2 * t, None] * B[None, 2 * t, :]
    return acc


@pytest.mark.parametrize("shape", [(6, 64, 64), (7, 9, 5), (50, 301, 130),
                                   (300, 600, 70), (13, 1, 17),
                                   (20, 4500, 30)], ids=str)
def test_bf16_pair_kernel_equals_its_instruction(shape, rng):
    """At the avx512_bf16 level, bfloat16 matmul (default precision) gives
    the bits of the instruction's definition, for edge tiles, odd depths,
    several KC blocks (their partial sums add in order) and any layout."""
    if _config.active_isa() != "avx512_bf16":
        pytest.skip("no AVX512_BF16 here (BFDOT's arithmetic differs)")
    m, k, n = shape
    a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    c = np.empty((m, n), np.float32)
    cattn.matmul(a, b, out=c)
    kc = _gemm.kernel_blocking(ml_dtypes.bfloat16)[2]
    # KC blocks: each emulated, their partial sums added in order.
    want = emulate_vdpbf16ps(a[:, :kc], b[:kc])
    for p in range(kc, k, kc):
        want = want + emulate_vdpbf16ps(a[:, p:p + kc], b[p:p + kc])
    np.testing.assert_array_equal(c, want)
    for layout in (lambda x, y: (np.asfortranarray(x), y),
                   lambda x, y: (x, np.asfortranarray(y))):
        c2 = np.empty((m, n), np.float32)
        cattn.matmul(*layout(a, b), out=c2)
        np.testing.assert_array_equal(c2, c)


def test_mixed_dtypes_promote():
    h = np.ones((2, 3), np.float16)
    bf = np.ones((3, 2), ml_dtypes.bfloat16)
    assert cattn.matmul(h, bf).dtype == np.float32       # no common 16-bit
    assert cattn.matmul(h, np.ones((3, 2), np.float32)).dtype == np.float32
    assert cattn.matmul(bf, np.ones((2, 2))).dtype == np.float64
    q = np.ones((2, 4), np.float16)
    assert cattn.scaled_dot_product_attention(q, q, q.astype(
        ml_dtypes.bfloat16)).dtype == np.float32


# ------------------------------------------------------------ attention --

def _qkv(dtype, rng, L, S, E=16, Ev=16, batch=(2, 3), hkv=None, spread=1.0):
    kv = batch if hkv is None else batch[:-1] + (hkv,)
    q = (rng.standard_normal(batch + (L, E)) * spread).astype(dtype)
    k = rng.standard_normal(kv + (S, E)).astype(dtype)
    v = rng.standard_normal(kv + (S, Ev)).astype(dtype)
    return q, k, v


# (L, S, kwargs): every option of the forward; masks are made per case.
SDPA_CASES = [
    (7, 9, {}),
    (40, 300, {"is_causal": True}),
    (40, 30, {"is_causal": "bottom_right"}),
    (50, 70, {"window": (5, 2)}),
    (33, 45, {"mask": "bool"}),
    (33, 45, {"mask": "same"}),          # float mask of the 16-bit dtype
    (33, 45, {"mask": "float32"}),
    (20, 25, {"gqa": True, "is_causal": True}),
    (20, 60, {"top_k": 3}),
    (1, 3000, {}),                       # decode, key chunks
    (3, 200, {"is_causal": "bottom_right", "mask": "bool"}),
    (64, 2100, {}),                      # tiled, key chunks
    (0, 5, {}),
    (4, 0, {}),
]


def _case(dtype, rng, L, S, opts):
    opts = dict(opts)
    q, k, v = _qkv(dtype, rng, L, S, hkv=1 if opts.pop("gqa", False)
                   else None)
    kind = opts.pop("mask", None)
    mask = None
    if kind == "bool":
        mask = rng.random((L, S)) < 0.7
        if L:
            mask[0] = False                     # a fully masked row
    elif kind is not None:
        mask = rng.standard_normal((L, S)).astype(
            dtype if kind == "same" else np.float32)
    if q.shape[-3] != k.shape[-3]:
        opts["enable_gqa"] = True
    return q, k, v, mask, opts


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,S,opts", SDPA_CASES,
                         ids=[f"{c[0]}x{c[1]}-{c[2]}" for c in SDPA_CASES])
def test_sdpa_equals_float32_rounded_once(dtype, L, S, opts, isa, rng):
    q, k, v, mask, opts = _case(dtype, rng, L, S, opts)
    got, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, return_lse=True, precision="highest", **opts)
    m32 = None if mask is None or mask.dtype == bool else f32(mask)
    want, want_lse = cattn.scaled_dot_product_attention(
        f32(q), f32(k), f32(v), mask if m32 is None else m32,
        return_lse=True, **opts)
    assert got.dtype == dtype and lse.dtype == np.float32
    exact = not pairs(dtype) or "top_k" in opts or L <= 4   # no pair kernel
    if exact:
        bits_equal(got, rounded(want, dtype))
        np.testing.assert_array_equal(lse, want_lse)
    else:
        np.testing.assert_allclose(lse, want_lse, rtol=1e-6, atol=1e-6)
    if "top_k" not in opts:
        # The float64 twin on the same 16-bit inputs: float32 error, then
        # one rounding (half an ulp of the 16-bit dtype, relative to the
        # row's largest value).
        ref, _ = _reference.scaled_dot_product_attention(
            q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
            None if mask is None else mask.astype(np.float64)
            if mask.dtype != bool else mask, **opts)
        eps = float(ml_dtypes.finfo(dtype).eps)
        scale = np.max(np.abs(ref), axis=-1, keepdims=True) + 1e-30
        assert np.all(np.abs(got.astype(np.float64) - ref) <= eps * scale)
    default, default_lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, return_lse=True, **opts)
    if exact:
        np.testing.assert_array_equal(default_lse, lse)   # the same scores
    else:
        # The same scores; the default's row sums are of its exp accurate
        # to bf16 (relative error <= 1.02e-4: lse within 1.02e-4).
        np.testing.assert_allclose(default_lse, lse, rtol=0, atol=1.1e-4)
    if exact:
        bits_equal(default, got)


@pytest.mark.parametrize("L,S,opts", SDPA_CASES,
                         ids=[f"{c[0]}x{c[1]}-{c[2]}" for c in SDPA_CASES])
def test_sdpa_default_precision_bf16(L, S, opts, isa, rng):
    """bfloat16 at the default precision: where the level has bf16
    products, P is rounded to bf16 before P·V.  Bounds against the float64
    twin: normwise relative error <= 2**-8 (the issue's bound; about
    2**-9 measured), each element within 2**-6 of its row's largest value,
    lse within 1.2e-4 (the row sums of an exp accurate to 1.02e-4, the
    scores within float32 rounding: bf16 products are exact), and the
    empty rows exact."""
    dtype = np.dtype(ml_dtypes.bfloat16)
    q, k, v, mask, opts = _case(dtype, rng, L, S, opts)
    opts.pop("top_k", None)
    got, lse = cattn.scaled_dot_product_attention(q, k, v, mask,
                                                  return_lse=True, **opts)
    ref, ref_lse = _reference.scaled_dot_product_attention(
        q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
        None if mask is None else mask.astype(np.float64)
        if mask.dtype != bool else mask, **opts)
    g = got.astype(np.float64)
    if ref.size:
        assert np.linalg.norm(g - ref) <= 2.0 ** -8 * np.linalg.norm(ref)
        rowmax = np.max(np.abs(ref), axis=-1, keepdims=True)
        assert np.all(np.abs(g - ref) <= 2.0 ** -6 * rowmax)
    dead = np.isneginf(ref_lse)
    np.testing.assert_array_equal(np.isneginf(lse), dead)
    np.testing.assert_array_equal(g[dead], 0)
    np.testing.assert_allclose(lse[~dead], ref_lse[~dead], rtol=1e-5,
                               atol=1.2e-4)


def test_precision_highest_within_one_ulp(rng):
    """The issue's accuracy target: precision="highest" puts >= 99 % of
    the bf16 output within one ulp of the correctly rounded answer (it is
    the float32 answer rounded once); the default keeps >= 70 % (P in
    bf16, as PyTorch and FlashAttention; about 80-88 % measured)."""
    dtype = np.dtype(ml_dtypes.bfloat16)
    q, k, v = _qkv(dtype, rng, 512, 512, E=64, Ev=64, batch=(1, 2))
    ref, _ = _reference.scaled_dot_product_attention(
        q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
        is_causal=True)
    ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    for precision, share in (("highest", 0.99), ("default", 0.70)):
        got = cattn.scaled_dot_product_attention(
            q, k, v, is_causal=True, precision=precision).astype(np.float64)
        assert np.mean(np.abs(got - ref) <= ulp) >= share, precision

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sdpa_special_values(dtype, rng):
    """inf and NaN values reach only the rows that weigh them; huge logits
    stay finite; the bits are still the float32 ones, rounded."""
    for L, S in [(1, 500), (40, 300)]:            # decode and tiled paths
        q, k, v = _qkv(dtype, rng, L, S, spread=300.0)   # huge logits
        v[..., 7, 2] = np.inf
        v[..., 9, 3] = np.nan
        mask = np.ones((L, S), bool)
        mask[:, 7] = False                        # nobody sees the inf
        got = cattn.scaled_dot_product_attention(q, k, v, mask,
                                                 precision="highest")
        want = cattn.scaled_dot_product_attention(f32(q), f32(k), f32(v),
                                                  mask)
        if not pairs(dtype) or L == 1:
            bits_equal(got, rounded(want, dtype))
        np.testing.assert_array_equal(np.isnan(f32(got)), np.isnan(want))
        assert not np.isinf(f32(got)).any()
        default = f32(cattn.scaled_dot_product_attention(q, k, v, mask))
        assert not np.isinf(default).any()
        np.testing.assert_array_equal(np.isnan(default), np.isnan(f32(got)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("precision", ["default", "highest"])
def test_sdpa_layouts_threads_and_out(dtype, precision, isa, rng):
    q, k, v = _qkv(dtype, rng, 70, 90, batch=(3, 4))

    def sdpa(*args, **kw):
        return cattn.scaled_dot_product_attention(
            *args, is_causal=True, precision=precision, **kw)
    want = sdpa(q, k, v, num_threads=1)
    for nt in (2, 3):
        bits_equal(sdpa(q, k, v, num_threads=nt), want)
    bits_equal(sdpa(q[::-1], k[::-1], v[::-1])[::-1], want)
    qt = np.swapaxes(np.swapaxes(q, -1, -2).copy(), -1, -2)   # column-major
    bits_equal(sdpa(qt, k, v), want)
    out = np.empty(want.shape[:-1] + (2 * want.shape[-1],), dtype)[..., ::2]
    assert sdpa(q, k, v, out=out) is out
    bits_equal(out, want)
    wide = np.empty(want.shape, np.float32)
    sdpa(q, k, v, out=wide)
    bits_equal(wide.astype(dtype), want)
    if precision == "highest" and not pairs(dtype):
        np.testing.assert_array_equal(wide, cattn.scaled_dot_product_attention(
            f32(q), f32(k), f32(v), is_causal=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hard_attention_weights_and_self_attention(dtype, isa, rng):
    q, k, v = _qkv(dtype, rng, 30, 40)
    x = q[..., :16]
    got = cattn.self_attention(x, is_causal=True, precision="highest")
    assert got.dtype == dtype
    bits_equal(got, rounded(cattn.self_attention(f32(x), is_causal=True),
                            dtype))
    mask = rng.random((30, 40)) < 0.8
    out, idx = cattn.hard_attention(q, k, v, mask, return_indices=True)
    out32, idx32 = cattn.hard_attention(f32(q), f32(k), f32(v), mask,
                                        return_indices=True)
    np.testing.assert_array_equal(idx, idx32)
    assert out.dtype == dtype
    bits_equal(out, rounded(out32, dtype))
    w = cattn.attention_weights(q, k, mask, is_causal=True,
                                precision="highest")
    assert w.dtype == dtype
    bits_equal(w, rounded(cattn.attention_weights(f32(q), f32(k), mask,
                                                  is_causal=True), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("gqa", [False, True])
def test_gradient_equals_float32_rounded_once(dtype, gqa, isa, rng):
    q, k, v = _qkv(dtype, rng, 30, 50, batch=(2, 4), hkv=2 if gqa else None)
    mask = rng.standard_normal((30, 50)).astype(dtype)
    o, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, is_causal=True, enable_gqa=gqa, return_lse=True)
    go = rng.standard_normal(o.shape).astype(dtype)
    got = cattn.scaled_dot_product_attention_grad(
        go, q, k, v, o, lse, mask, is_causal=True, enable_gqa=gqa,
        need_mask_grad=True)
    want = cattn.scaled_dot_product_attention_grad(
        f32(go), f32(q), f32(k), f32(v), f32(o), lse, f32(mask),
        is_causal=True, enable_gqa=gqa, need_mask_grad=True)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        bits_equal(g, rounded(w, dtype))


# ------------------------------------------- mixed operands, layer, Dask --

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,S", [(1, 3000), (3, 200), (70, 130)])
def test_float32_query_reads_16bit_kv_in_place(dtype, L, S, isa, rng):
    """A float32 query against 16-bit keys and values (a 16-bit KV cache)
    computes in float32 with K and V widened as they are read: the bits of
    converting them first, without the copies."""
    q = rng.standard_normal((2, 4, L, 32)).astype(np.float32)
    k = rng.standard_normal((2, 2, S, 32)).astype(dtype)
    v = rng.standard_normal((2, 2, S, 32)).astype(dtype)
    kw = dict(is_causal="bottom_right", enable_gqa=True, return_lse=True)
    got, lse = cattn.scaled_dot_product_attention(q, k, v, **kw)
    want, want_lse = cattn.scaled_dot_product_attention(q, f32(k), f32(v),
                                                        **kw)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(lse, want_lse)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_multi_head_attention_in_16_bit(dtype, isa, rng):
    """A 16-bit layer: weights, activations and output in its dtype, every
    product in float32 (or bf16 pairs), each projection rounded once; close
    to the float32 layer with the same weights; its cache and backward
    keep the dtype."""
    m32 = cattn.MultiHeadAttention(32, 4, num_kv_heads=2, rng=0)
    m16 = cattn.MultiHeadAttention(32, 4, num_kv_heads=2, dtype=dtype, rng=0)
    m16.load_state_dict(m32.state_dict())
    x = rng.standard_normal((2, 20, 32)).astype(np.float32)
    want = m32(x, is_causal=True).astype(np.float64)
    got = m16(x.astype(dtype), is_causal=True)
    assert got.dtype == dtype
    tol = 8 * float(ml_dtypes.finfo(dtype).eps)
    assert np.linalg.norm(f32(got) - want) <= tol * np.linalg.norm(want)
    cache = m16.new_cache(2, 32)
    assert cache.key.dtype == dtype
    steps = np.concatenate([m16(x[:, t:t + 1].astype(dtype), cache=cache)
                            for t in range(20)], axis=1)
    assert np.linalg.norm(f32(steps) - want) <= tol * np.linalg.norm(want)
    (dx, _, _), grads = m16.backward(np.ones_like(got), x.astype(dtype),
                                     is_causal=True)
    assert dx.dtype == dtype and all(g.dtype == dtype
                                     for g in grads.values())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_16bit_cache_of_a_float32_layer(dtype, rng):
    """new_cache(dtype=16-bit) on a float32 layer: the cache rounds what
    it stores, the attention reads it in place, and each step equals the
    float32 attention over the rounded keys and values."""
    mha = cattn.MultiHeadAttention(32, 4, num_kv_heads=2, rng=0)
    x = rng.standard_normal((1, 12, 32)).astype(np.float32)
    cache = mha.new_cache(1, 16, dtype=dtype)
    full = mha.new_cache(1, 16)
    for t in range(12):
        got = mha(x[:, t:t + 1], cache=cache)
        ref = mha(x[:, t:t + 1], cache=full)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(cache.key[:, :, :t + 1],
                                      full.key[:, :, :t + 1].astype(dtype))
    tol = 8 * float(ml_dtypes.finfo(dtype).eps)
    np.testing.assert_allclose(got, ref, atol=tol, rtol=tol)
    with pytest.raises(TypeError, match="new_cache: dtype must be"):
        mha.new_cache(1, 4, dtype=np.int32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dask_in_16_bit(dtype, rng):
    """cattn.dask: 16-bit chunks, partials merged in float32, the output
    rounded once; one key chunk gives the NumPy call's bits."""
    da = pytest.importorskip("dask.array")
    import cattn.dask
    x = rng.standard_normal((2, 2, 64, 16)).astype(dtype)
    want, want_lse = cattn.scaled_dot_product_attention(
        x, x, x, is_causal=True, return_lse=True, precision="highest")
    for kv_chunk in (64, 16):
        q = da.from_array(x, chunks=(1, 2, 32, 16))
        kv = da.from_array(x, chunks=(1, 2, kv_chunk, 16))
        out, lse = cattn.dask.scaled_dot_product_attention(
            q, kv, kv, is_causal=True, return_lse=True, precision="highest")
        out, lse = out.compute(scheduler="sync"), lse.compute(scheduler="sync")
        assert out.dtype == dtype and lse.dtype == np.float32
        if kv_chunk == 64:
            bits_equal(out, want)
        tol = float(ml_dtypes.finfo(dtype).eps)
        np.testing.assert_allclose(f32(out), f32(want), atol=tol, rtol=tol)
        np.testing.assert_allclose(lse, want_lse, atol=1e-5, rtol=1e-5)
