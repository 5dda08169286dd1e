"""softmax, log_softmax and logsumexp against the float64 references and
scipy.special, on every SIMD level."""
import numpy as np
import pytest
import scipy.special

import cattn
from cattn import _reference
from cattn._kernels import _softmax

from conftest import RTOL

FUNCS = {
    "softmax": (cattn.softmax, _reference.softmax, scipy.special.softmax),
    "log_softmax": (cattn.log_softmax, _reference.log_softmax,
                    scipy.special.log_softmax),
    "logsumexp": (cattn.logsumexp, _reference.logsumexp,
                  scipy.special.logsumexp),
}
DTYPES = [np.float32, np.float64]


def assert_close(got, want, dtype, scale=None):
    """Elementwise relative error against the float64 reference, with an
    absolute floor of the row's scale (for entries near 0 in log space)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    tol = RTOL[dtype] * np.maximum(np.abs(want[fin]),
                                   1.0 if scale is None else scale)
    np.testing.assert_array_less(np.abs(got[fin] - want[fin]), tol + 1e-300)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65,
                               127, 1023, 1024, 1025, 2049, 5000])
def test_rows_match_reference(name, dtype, n, isa, rng):
    ours, ref, _ = FUNCS[name]
    x = (rng.standard_normal((3, n)) * 4).astype(dtype)
    got = ours(x)
    assert got.dtype == dtype
    assert_close(got, ref(x), dtype, scale=10.0)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, (0, 2), (1, 2), None,
                                  (0, 1, 2)])
def test_every_axis(name, dtype, axis, isa, rng):
    ours, ref, theirs = FUNCS[name]
    x = rng.standard_normal((4, 5, 6)).astype(dtype)
    got = ours(x, axis=axis)
    assert_close(got, ref(x, axis=axis), dtype, scale=10.0)
    assert_close(got, theirs(x.astype(np.float64), axis=axis), dtype,
                 scale=10.0)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_as_scipy(name, dtype, isa):
    ours, ref, theirs = FUNCS[name]
    inf, nan = np.inf, np.nan
    rows = [
        [1000.0, 1000.0, 1.0], [-1000.0, -1000.0, -999.0],
        [-inf, -inf, -inf], [inf, 1.0, 2.0], [inf, inf, 0.0],
        [-inf, 0.0, 1.0], [nan, 0.0, 1.0], [nan, inf, -inf], [inf, -inf, 3.0],
        [0.0, 0.0, 0.0], [1e30, -1e30, 0.0],
    ]
    # Long rows too, so the special value lands in the vector body and in
    # the tail on every SIMD width.
    x = np.array(rows, dtype=dtype)
    for pos in (0, 17, 40):
        wide = np.zeros((len(rows), 41), dtype=dtype)
        wide[:, pos] = x[:, 0]
        wide[:, (pos + 5) % 41] = x[:, 1]
        wide[:, (pos + 9) % 41] = x[:, 2]
        x_all = wide if pos else x
        with np.errstate(all="ignore"):
            want = theirs(x_all.astype(np.float64), axis=-1)
        got = ours(x_all)
        assert_close(got, want, dtype, scale=1e3)
        assert_close(got, ref(x_all), dtype, scale=1e3)


def test_softmax_sums_to_one_and_huge_logits(isa):
    x = np.array([[1e4, 1e4 - 1, -1e4], [3e38, 3e38, 0]], dtype=np.float32)
    y = cattn.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    lse = cattn.logsumexp(np.array([3e38, 3e38], np.float32))
    assert np.isfinite(lse) and lse == np.float32(3e38)
    assert cattn.logsumexp(np.array([1e4, 1e4])) == 1e4 + np.log(2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shift_invariance(dtype, isa, rng):
    x = rng.standard_normal((5, 100)).astype(dtype)
    a = cattn.softmax(x)
    b = cattn.softmax(x + dtype(50))
    np.testing.assert_allclose(a, b, rtol=50 * RTOL[dtype] * 10, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_long_row_sum_accuracy(dtype, isa, rng):
    # Pairwise summation keeps a 10^6-element float32 row accurate.
    x = rng.standard_normal(1_000_003).astype(dtype)
    got = cattn.logsumexp(x)
    want = _reference.logsumexp(x)
    # A naive float32 running sum of 10^6 terms would be off by ~1e-2.
    assert abs(got - want) <= 8 * np.finfo(dtype).eps * abs(want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_exp_error_in_ulp(dtype, isa):
    if dtype == np.float32:
        x = np.linspace(-110, 95, 400_001).astype(dtype)
        want = np.exp(x.astype(np.float64))
    else:
        x = np.linspace(-750, 712, 400_001)
        want = np.exp(x.astype(np.longdouble))
    got = np.empty_like(x)
    _softmax.exp(x, got)
    with np.errstate(over="ignore"):
        want_d = want.astype(dtype)
    tiny = np.finfo(dtype).tiny
    normal = np.isfinite(want_d) & (want_d >= tiny)
    ulp = np.abs(got[normal] - want[normal]) / np.spacing(want_d[normal])
    assert ulp.max() <= 2.0
    # Overflow to inf, underflow to 0 (through the subnormals) and the
    # special values.
    assert np.all(np.isinf(got[~np.isfinite(want_d)]))
    assert np.all(got[want_d == 0] == 0)
    special = np.array([np.inf, -np.inf, np.nan, 0.0], dtype=dtype)
    out = np.empty_like(special)
    _softmax.exp(special, out)
    assert out[0] == np.inf and out[1] == 0 and np.isnan(out[2]) and out[3] == 1


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise_equal(name, dtype, isa, rng):
    ours = FUNCS[name][0]
    x = rng.standard_normal((257, 1031)).astype(dtype)
    base = ours(x, num_threads=1)
    for nt in (2, 3, 8):
        assert _softmax.team_size(*x.shape, nt) == nt   # a real team
        np.testing.assert_array_equal(ours(x, num_threads=nt), base)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_layouts_and_out(name, rng):
    ours, ref, _ = FUNCS[name]
    base = rng.standard_normal((6, 40))
    want = ref(base)
    views = {
        "fortran": np.asfortranarray(base),
        "transposed": base.T.copy().T,
        "negative": base[::-1, ::-1][::-1, ::-1],
        "strided": np.repeat(base, 2, axis=1)[:, ::2],
        "readonly": base.copy(),
    }
    views["readonly"].flags.writeable = False
    raw = np.zeros(base.size * 8 + 1, np.uint8)
    views["unaligned"] = raw[1:].view(np.float64).reshape(base.shape)
    views["unaligned"][...] = base
    views["broadcast_rows"] = np.broadcast_to(base[:1], base.shape)
    for label, v in views.items():
        assert_close(ours(v), ref(v), np.float64, scale=10.0)
    flipped = base[:, ::-1]
    assert_close(ours(flipped), ref(flipped), np.float64, scale=10.0)
    out = np.empty_like(base)
    assert ours(base, out=out) is out
    assert_close(out, want, np.float64, scale=10.0)
    out_f = np.empty(base.shape, order="F")
    ours(base, out=out_f)
    assert_close(out_f, want, np.float64, scale=10.0)
    ours(base, axis=0, out=out_f)
    assert_close(out_f, ref(base, axis=0), np.float64, scale=10.0)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_in_place_and_overlap(name, rng):
    ours, ref, _ = FUNCS[name]
    x = rng.standard_normal((5, 33))
    want = ref(x)
    y = x.copy()
    assert ours(y, out=y) is y
    assert_close(y, want, np.float64, scale=10.0)
    # Partial overlap: out is x shifted by one row.
    buf = np.concatenate([x, np.zeros((1, 33))])
    res = ours(buf[:5], out=buf[1:6])
    assert_close(res, want, np.float64, scale=10.0)
    # Overlap through a transposed view.
    sq = rng.standard_normal((8, 8))
    want_sq = ref(sq)
    sq_t = sq.T.copy()
    res = ours(sq_t.T, out=sq_t)
    assert_close(res, want_sq, np.float64, scale=10.0)


def test_logsumexp_out_and_keepdims(rng):
    x = rng.standard_normal((3, 4, 5))
    out = np.empty((3, 5))
    assert cattn.logsumexp(x, axis=1, out=out) is out
    assert_close(out, _reference.logsumexp(x, axis=1), np.float64, scale=10)
    k = cattn.logsumexp(x, axis=(0, 2), keepdims=True)
    assert k.shape == (1, 4, 1)
    assert cattn.logsumexp(x, axis=None).shape == ()


def test_zero_size():
    for shape in [(0,), (0, 5), (5, 0), (2, 0, 3)]:
        x = np.zeros(shape, np.float32)
        assert cattn.softmax(x).shape == shape
        assert cattn.log_softmax(x).shape == shape
    np.testing.assert_array_equal(cattn.logsumexp(np.zeros((3, 0))),
                                  [-np.inf] * 3)
    assert cattn.logsumexp(np.zeros((0, 4))).shape == (0,)
    assert cattn.logsumexp(np.zeros(0)) == -np.inf
    assert cattn.softmax(np.float64(3.0), axis=None) == 1.0


