"""matmul: numpy.matmul semantics on cattn's blocked GEMM.

Validation and broadcasting here; the BLIS-style driver in
``_kernels/_gemm.pyx``; micro-kernels in ``_kernels/include/gemm/``;
``_reference.matmul`` is the float64 oracle.
"""
from __future__ import annotations

import numpy as np

from . import _checks
from ._kernels import _gemm
from . import _frame
from ._typing import ArrayLike, FloatArray, Precision, Threads

SIGNATURE = "(n?,k),(k,m?)->(n?,m?)"


def matmul(a: ArrayLike, b: ArrayLike, *, out: FloatArray | None = None,
           num_threads: Threads = None,
           precision: Precision = None) -> FloatArray:
    """Matrix product of two arrays, with ``numpy.matmul`` semantics.

    Signature ``(n?,k),(k,m?)->(n?,m?)``: the last two axes are matrices,
    leading axes broadcast; a 1-D `a` is a row vector and a 1-D `b` a column
    vector, and the inserted dimension is removed from the result.

    Parameters
    ----------
    a, b : array_like of float32, float64, float16 or bfloat16
        Operands, at least 1-D.  Mixed dtypes compute in the narrowest
        dtype that holds both exactly (NumPy's promotion; float16 with
        ``ml_dtypes.bfloat16`` gives float32).  16-bit operands are
        multiplied in float32 and the result is rounded once.
    out : ndarray, optional
        Array of the result's shape and dtype to write to (for a 16-bit
        result also float32: the product before rounding).  It may overlap
        `a` or `b`; the product is then computed into a temporary first.
    num_threads : int, optional
        Number of OpenMP threads (default: ``OMP_NUM_THREADS``, a
        threadpoolctl limit, or one per core, shared with the cattn calls
        running in other Python threads).  The result does not depend on
        it.
    precision : {None, "default", "highest"}, optional
        JAX's names.  None or "default": bfloat16 operands multiply with
        the CPU's bf16 dot-product instruction where it has one
        (AVX512_BF16), which sums pairs of products and treats subnormal
        inputs as zero; "highest": the float32 micro-kernels on the
        widened operands.  Other dtypes compute alike under both.

    Returns
    -------
    c : ndarray
        The product, in the operands' (promoted) dtype.  A 0-d array when
        both operands are 1-D.

    Raises
    ------
    TypeError
        If an operand is not float32, float64, float16 or bfloat16, or
        `out` has another dtype.
    ValueError
        If an operand is 0-d, the core dimensions disagree, the batch
        dimensions do not broadcast, `out` has the wrong shape or is
        read-only, or `num_threads` < 1.

    See Also
    --------
    numpy.matmul

    Notes
    -----
    A BLIS-style blocked GEMM [1]_ [2]_: B is packed in KC x NC blocks
    shared by the threads, A in MC x KC blocks per thread, and an MR x NR
    register micro-kernel (AVX-512, AVX2 or portable, chosen at run time)
    does the multiply-adds with FMA.  Each element is accumulated over k in
    a fixed order in the input dtype, so results are bitwise identical for
    any `num_threads`, and strided, transposed, negative-stride and
    broadcast operands are read in place.  Accuracy is that of a
    float32/float64 dot product: relative error of order ``k * eps`` in
    the worst case.

    float16 and bfloat16 operands are widened (exactly) as they are packed
    and multiplied by the float32 micro-kernels: the result is the float32
    product of the widened operands, correctly rounded to the 16-bit dtype
    (round to nearest even), so its error is half an ulp of the 16-bit
    dtype plus the float32 product's ``k * 2**-24``.

    References
    ----------
    .. [1] K. Goto and R. A. van de Geijn, "Anatomy of high-performance
           matrix multiplication", ACM Trans. Math. Softw. 34(3), 2008.
    .. [2] F. G. Van Zee and R. A. van de Geijn, "BLIS: A framework for
           rapidly instantiating BLAS functionality", ACM Trans. Math.
           Softw. 41(3), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> b = np.arange(12.0).reshape(3, 4)
    >>> cattn.matmul(a, b)
    array([[20., 23., 26., 29.],
           [56., 68., 80., 92.]])
    >>> cattn.matmul(np.ones((5, 2, 3), np.float32), np.ones(3, np.float32))
    ... # doctest: +NORMALIZE_WHITESPACE
    array([[3., 3.], [3., 3.], [3., 3.], [3., 3.], [3., 3.]], dtype=float32)
    """
    func = "matmul"
    a = _checks.as_float_array(a, "a", func, storage=True)
    b = _checks.as_float_array(b, "b", func, storage=True)
    nthreads = _checks.resolve_threads(num_threads, func)
    pairs = _frame.precision_value(precision, func) == "default"
    for name, x in (("a", a), ("b", b)):
        if x.ndim == 0:
            raise ValueError(
                f"{func}: {name} is 0-d; the signature {SIGNATURE} needs at "
                "least 1 dimension")
    dtype = _checks.common_dtype((a, b))
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
    if k != k2:
        raise ValueError(
            f"{func}: core dimensions (n,k),(k,m) disagree: a has shape "
            f"{a.shape}, b has shape {b.shape} (k={k} vs {k2}; signature "
            f"{SIGNATURE})")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{func}: batch dimensions do not broadcast: a has shape "
            f"{a.shape}, b has shape {b.shape}") from None
    shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())

    overlap = out is not None and _checks.check_out(out, shape, dtype, func,
                                                    (a, b))
    # 16-bit operands: the kernel writes the float32 product, rounded
    # afterwards (straight into a float32 `out`).
    compute = _checks.compute_dtype(dtype)
    if (out is None or overlap or out.dtype != compute
            or _checks.element_strides(out) is None):
        c = np.empty(shape, dtype=compute)
    else:
        c = out
    c3 = c.reshape(batch + (m, n)) if c.ndim != len(batch) + 2 else c
    if c3.size:
        # The driver describes the operands as the attention drivers do
        # (the frame's Operands: contracts checked, odd layouts copied).
        _gemm.matmul(a2, b2, c3, batch, nthreads, pairs)
    if compute != dtype and (out is None or out.dtype == dtype):
        c = _checks.narrow(c, dtype, nthreads)
    if out is not None and c is not out:
        out[...] = c
        return out
    return c
