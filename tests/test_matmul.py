"""matmul against the float64 reference (numpy.matmul semantics), on every
SIMD level, with edge tiles, layouts, broadcasting, out= and threads."""
import numpy as np
import pytest

import cattn
from cattn import _reference
from cattn._kernels import _gemm

DTYPES = [np.float32, np.float64]


def assert_matmul_close(got, a, b):
    """Normwise: |C - C_ref| <= c * k * eps * |A| |B| elementwise."""
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    want = _reference.matmul(a64, b64)
    assert got.shape == want.shape
    k = a64.shape[-1]
    eps = np.finfo(got.dtype).eps
    bound = 2 * max(k, 1) * eps * np.matmul(np.abs(a64), np.abs(b64))
    np.testing.assert_array_less(np.abs(got - want), bound + 1e-300)


def edge_sizes(dtype):
    mr, nr, kc, mc, _ = _gemm.kernel_blocking(dtype)
    return mr, nr, kc, mc


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_tiles_sweep(dtype, isa, rng):
    mr, nr, kc, mc = edge_sizes(dtype)
    ms = sorted({1, 2, mr - 1, mr, mr + 1, 2 * mr + 1, mc + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 1})
    ks = sorted({1, 3, kc, kc + 1})
    for m in ms:
        for n in ns:
            for k in ks:
                a = rng.standard_normal((m, k)).astype(dtype)
                b = rng.standard_normal((k, n)).astype(dtype)
                c = cattn.matmul(a, b)
                assert c.dtype == dtype
                assert_matmul_close(c, a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 517, 611), (1, 1000, 64),
                                   (1000, 1, 64), (64, 64, 1),
                                   (250, 4200, 20)])
def test_larger_shapes(dtype, shape, isa, rng):
    m, n, k = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    assert_matmul_close(cattn.matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise_equal(dtype, isa, rng):
    cases = [((517, 300), (300, 611)), ((3, 700), (700, 900)),
             ((16, 40, 50), (50, 30)), ((2, 200, 100), (2, 100, 300))]
    for sa, sb in cases:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        base = cattn.matmul(a, b, num_threads=1)
        for nt in (2, 3, 7):
            np.testing.assert_array_equal(cattn.matmul(a, b, num_threads=nt),
                                          base)


def test_layout_does_not_change_bits(rng):
    # C laid out by columns is computed as Cᵀ = BᵀAᵀ: same bits.
    a = rng.standard_normal((70, 90)).astype(np.float32)
    b = rng.standard_normal((90, 50)).astype(np.float32)
    c = cattn.matmul(a, b)
    out = np.empty((70, 50), np.float32, order="F")
    cattn.matmul(a, b, out=out)
    np.testing.assert_array_equal(out, c)
    np.testing.assert_array_equal(cattn.matmul(np.asfortranarray(a), b), c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(37, 45, 29), (13, 70, 150)])
def test_operand_layouts(dtype, m, k, n, isa, rng):
    # (13, 70, 150): whole NR panels of a B stored by columns and whole MR
    # panels of an A stored by rows take the block-transposing packs, with
    # a k that is not a multiple of the block.
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    layouts = {
        "C": lambda x: x,
        "F": np.asfortranarray,
        "T": lambda x: x.T.copy().T,
        "neg": lambda x: x[::-1, ::-1].copy()[::-1, ::-1],
        "strided": lambda x: np.repeat(np.repeat(x, 2, 0), 3, 1)[::2, ::3],
        "readonly": lambda x: _readonly(x),
        "unaligned": lambda x: _misaligned(x),
    }
    for la, fa in layouts.items():
        for lb, fb in layouts.items():
            aa, bb = fa(a), fb(b)
            np.testing.assert_array_equal(aa, a)
            assert_matmul_close(cattn.matmul(aa, bb), a, b)


def _readonly(x):
    y = x.copy()
    y.flags.writeable = False
    return y


def _misaligned(x):
    """A view whose strides are not multiples of the item size."""
    raw = np.zeros(x.size * x.itemsize + 1, np.uint8)
    v = raw[1:].view(x.dtype).reshape(x.shape)
    v[...] = x
    return v


@pytest.mark.parametrize("sa, sb", [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((5, 2, 3), (3,)),
    ((3,), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (6, 3, 4)), ((0, 2, 3), (3, 4)),
    ((2, 0), (0, 3)), ((0, 3), (3, 4)), ((2, 3), (3, 0)),
])
def test_broadcasting_and_promotion(sa, sb, rng):
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    got = cattn.matmul(a, b)
    want = np.matmul(a, b)
    assert got.shape == want.shape
    if got.size:
        assert_matmul_close(got, a, b)
    else:
        np.testing.assert_array_equal(got, want)


def test_broadcast_operand_is_not_copied(rng):
    # A stride-0 (broadcast) B is read in place, and gives the same bits.
    b = rng.standard_normal((8, 8)).astype(np.float32)
    a = rng.standard_normal((6, 5, 8)).astype(np.float32)
    b_wide = np.broadcast_to(b, (6, 8, 8))
    np.testing.assert_array_equal(cattn.matmul(a, b_wide),
                                  cattn.matmul(a, b))


def test_mixed_dtypes_promote_to_float64(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal((5, 6))
    c = cattn.matmul(a, b)
    assert c.dtype == np.float64
    assert_matmul_close(c, a.astype(np.float64), b)
    assert cattn.matmul([[1.0, 2.0]], [[3.0], [4.0]]).dtype == np.float64


def test_k_zero_gives_zeros():
    out = np.full((3, 4), np.nan, np.float32)
    res = cattn.matmul(np.zeros((3, 0), np.float32),
                       np.zeros((0, 4), np.float32), out=out)
    assert res is out
    np.testing.assert_array_equal(out, 0)


def test_nan_and_inf_propagate(isa):
    a = np.ones((13, 5))
    b = np.ones((5, 33))
    a[2, 1] = np.nan
    b[3, 7] = np.inf
    c = cattn.matmul(a, b)
    want = np.matmul(a, b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(c), np.isinf(want))


def test_out_and_overlap(rng):
    a = rng.standard_normal((20, 20))
    b = rng.standard_normal((20, 20))
    want = np.matmul(a, b)
    out = np.empty((20, 20))
    assert cattn.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    a2 = a.copy()
    res = cattn.matmul(a2, b, out=a2)  # out is an input
    assert res is a2
    np.testing.assert_allclose(a2, want, rtol=1e-12, atol=1e-12)
    b2 = b.copy()
    cattn.matmul(a, b2, out=b2.T)  # overlapping, transposed
    np.testing.assert_allclose(b2.T, want, rtol=1e-12, atol=1e-12)
    out3 = np.empty((3, 20))[:, None, :][:, 0, :]
    cattn.matmul(a[:3], b, out=out3)
    np.testing.assert_allclose(out3, want[:3], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_few_rows_stream_b_without_packing(m, dtype, isa, rng):
    """At most 4 rows of C take the streaming path (axpy over rows of B, or
    dot products with columns of B): every layout, edges, NaN rules."""
    for k, n in ((1, 1), (7, 33), (64, 1100), (300, 17)):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        for aa in (a, np.asfortranarray(a), a[:, ::-1].copy()[:, ::-1]):
            for bb in (b, np.asfortranarray(b), b.T.copy().T,
                       np.repeat(b, 2, 1)[:, ::2]):
                assert_matmul_close(cattn.matmul(aa, bb), a, b)
        np.testing.assert_array_equal(cattn.matmul(a, b, num_threads=1),
                                      cattn.matmul(a, b, num_threads=3))
    # A column's dot product has one summation order wherever it falls
    # (gemv_body.h): each column alone (n = 1) equals its place among n = 7,
    # E with a vector tail and without.  A kernel that reduced several
    # columns at once in another tree would break this.
    for k in (40, 64, 67):
        a = rng.standard_normal((m, k)).astype(dtype)
        bt = rng.standard_normal((7, k)).astype(dtype)
        whole = cattn.matmul(a, bt.T)
        for j in range(7):
            np.testing.assert_array_equal(cattn.matmul(a, bt[j:j + 1].T),
                                          whole[:, j:j + 1])
    # A decoder step: x (1, E) against a weight used transposed.
    w = rng.standard_normal((96, 40)).astype(dtype)
    x = rng.standard_normal((1, 40)).astype(dtype)
    assert_matmul_close(cattn.matmul(x, w.T), x, w.T)
    # 0 * inf is NaN here as in the blocked path and in numpy.
    a = np.zeros((m, 3), dtype)
    b = np.ones((3, 5), dtype)
    b[1, 2] = np.inf
    for bb in (b, np.asfortranarray(b)):
        got = cattn.matmul(a, bb)
        with np.errstate(invalid="ignore"):
            want = a @ b
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_edge_kernel_same_bits(dtype, isa, rng):
    # An edge of at most one vector of columns runs the narrow kernel
    # (ukernel.tmpl.h); the same columns inside a wider product run the full
    # tile.  Every element sees the same operations in both, so the bits
    # agree -- also with beta (a K split over KC chunks accumulates).
    mr, nr, kc, mc = edge_sizes(dtype)
    for m, k in ((mr, 3), (2 * mr + 1, kc + 5)):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, nr + 3)).astype(dtype)
        wide = cattn.matmul(a, b)
        for n in (1, 2, 5):
            np.testing.assert_array_equal(cattn.matmul(a, b[:, :n]),
                                          wide[:, :n])
