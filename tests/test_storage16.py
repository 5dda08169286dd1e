"""16-bit storage (float16, ml_dtypes.bfloat16) in softmax, log_softmax and
logsumexp: computed in float32, rounded once to nearest even.

The exact property: for 16-bit x, op(x) equals op(x.astype(float32))
rounded to x's dtype (NumPy's and ml_dtypes' casts round to nearest even),
bit for bit, at every SIMD level and thread count."""
import numpy as np
import pytest

import cattn
from cattn._kernels import _softmax

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
def test_threads_and_layouts_do_not_change_bits(dtype, rng):
    x = specials(dtype, rng, (40, 1500))
    base = cattn.log_softmax(x, num_threads=1)
    for nt in (2, 3):
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
