"""softmax, log_softmax and logsumexp (as in scipy.special): stable, threaded.

Validation here, then the row drivers in ``_kernels/_softmax.pyx`` over the
C row kernels in ``_kernels/include/softmax/``; ``_reference.py`` holds the
float64 twins the tests compare against.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _checks
from ._kernels import _layout, _softmax
from ._typing import ArrayLike, Axis, FloatArray, Threads


def _reduced_axes(x: FloatArray, axis: Axis, func: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    if type(axis) is int and -x.ndim <= axis < x.ndim:   # the common case
        return (axis % x.ndim,)
    try:
        return np.lib.array_utils.normalize_axis_tuple(axis, x.ndim, "axis")
    except TypeError:
        raise TypeError(f"{func}: axis must be None, an int or a tuple of "
                        f"ints, got {axis!r}") from None
    except np.exceptions.AxisError as exc:
        raise np.exceptions.AxisError(f"{func}: {exc}") from None


def _as_rows(x: FloatArray,
             axes: tuple[int, ...]) -> tuple[FloatArray, tuple[int, ...]]:
    """A (rows, n) view (or copy) of `x` with the `axes` flattened last and
    unit column stride; also the moved shape to undo it."""
    moved = _move_last(x, axes)
    n = math.prod(moved.shape[x.ndim - len(axes):])
    rows = math.prod(moved.shape[:x.ndim - len(axes)])
    two_d = _view_2d(moved, rows, n)
    if two_d is None:
        two_d = np.ascontiguousarray(moved).reshape(rows, n)
    return two_d, moved.shape


def _move_last(x: FloatArray, axes: tuple[int, ...]) -> FloatArray:
    """`x` with `axes` moved last (itself when they already are: the common
    case skips np.moveaxis, which costs more than a small softmax)."""
    last = tuple(range(x.ndim - len(axes), x.ndim))
    return x if axes == last else np.moveaxis(x, axes, last)


def _view_2d(a: FloatArray, rows: int, n: int) -> FloatArray | None:
    """`a` as a (rows, n) view with unit column stride the kernels can
    walk, or None if that needs a copy."""
    v = _layout.rows_view(a, rows, n)   # C-contiguous and aligned: the
    if v is not None:                   # common case, in one C call
        return v
    try:
        v = np.reshape(a, (rows, n), copy=False)
    except ValueError:                  # only a copy has that shape
        return None
    except TypeError:                   # NumPy 2.0: reshape has no copy=
        v = a.view()
        try:
            v.shape = (rows, n)
        except AttributeError:
            return None
    if n > 1 and v.strides[1] != v.itemsize:
        return None
    if _checks.element_strides(v) is None:
        return None
    return v


def _map(op: int, func: str, x: ArrayLike, axis: Axis,
         out: FloatArray | None, num_threads: Threads) -> FloatArray:
    """softmax or log_softmax: one row kernel call per slice along `axis`."""
    x = _checks.as_storage_array(x, "x", func)
    nthreads = _checks.resolve_threads(num_threads, func)
    axes = _reduced_axes(x, axis, func)
    overlap = out is not None and _checks.check_out(
        out, x.shape, _out_dtype(x, out), func, (x,))
    result = out if out is not None else np.empty(x.shape, dtype=x.dtype)
    if x.size == 0:
        return result
    src, moved_shape = _as_rows(x, axes)
    # Write straight into the result when its layout lets the kernel; an
    # `out` overlapping `x` only in place (same memory, same strides).
    dest = None
    if out is None or not overlap or _same_layout(out, x):
        dest = _view_2d(_move_last(result, axes), *src.shape)
    if dest is not None:
        _softmax.map_rows(op, src, dest, nthreads)
    else:
        tmp = np.empty(src.shape, dtype=result.dtype)
        _softmax.map_rows(op, src, tmp, nthreads)
        np.copyto(_move_last(result, axes), tmp.reshape(moved_shape))
    return result


def _out_dtype(x: FloatArray, out: object) -> np.dtype[Any]:
    """The dtype `out=` must have: x's, or float32 for 16-bit x (the
    compute dtype, so the result is not rounded to 16 bits)."""
    if (_checks.is_storage16(x.dtype) and isinstance(out, np.ndarray)
            and out.dtype == np.float32):
        return np.dtype(np.float32)
    return x.dtype


def _same_layout(a: FloatArray, b: FloatArray) -> bool:
    """Same memory, same strides: element i of `a` is element i of `b`, so
    a row kernel may write its row in place."""
    return bool(a.__array_interface__["data"][0]
                == b.__array_interface__["data"][0] and a.strides == b.strides)


def softmax(x: ArrayLike, axis: Axis = -1, *, out: FloatArray | None = None,
            num_threads: Threads = None) -> FloatArray:
    r"""Softmax along an axis: ``exp(x - max) / sum(exp(x - max))``.

    .. math:: \sigma(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
              \quad m = \max_j x_j

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input values.  16-bit storage (``numpy.float16``,
        ``ml_dtypes.bfloat16``) is computed in float32 and rounded once,
        to nearest even: the float32 result, correctly rounded.
    axis : int, tuple of ints or None, optional
        Axis or axes along which the values sum to 1 (default: the last).
        None means all axes.
    out : ndarray, optional
        Array of the same shape and dtype as `x` to write the result to.
        It may be `x` itself (in place); any other overlap with `x` is
        handled by computing into a temporary first.
    num_threads : int, optional
        Number of OpenMP threads (default: ``OMP_NUM_THREADS``, a
        threadpoolctl limit, or one per core, shared with the cattn calls
        running in other Python threads).  The result does not depend on
        it.

    Returns
    -------
    y : ndarray
        Same shape and dtype as `x`; each slice along `axis` sums to 1
        (up to rounding) unless it contains NaN or +-inf.

    Raises
    ------
    TypeError
        If `x` is not float32, float64, float16 or bfloat16, or `out` has
        another dtype (for 16-bit `x`, `out` may also be float32).
    ValueError
        If `out` has the wrong shape or is read-only, or `num_threads` < 1.
    numpy.exceptions.AxisError
        If `axis` is out of range.

    See Also
    --------
    log_softmax, logsumexp, scipy.special.softmax

    Notes
    -----
    Computed in the input dtype with the max shift, so it never overflows
    (the shift and its error analysis are in [1]_).  Special
    values follow ``scipy.special.softmax``: a slice containing NaN, +inf,
    or only -inf is all NaN; a -inf element next to finite ones gets 0.

    float32 sums stay accurate: each slice is summed pairwise down to
    blocks of 1024 elements, each block in 32-64 independent vector lanes,
    so the relative rounding error of the sum grows like
    ``(16 + log2(n)) * eps``, not ``n * eps``.  exp is a vectorised
    polynomial with an error of at most 2 ulp; results below the smallest
    normal number are flushed to 0 (an absolute error under 1.2e-38 in
    float32).  Each slice is computed by
    one thread in a fixed order, so the result is bitwise the same for any
    `num_threads`.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham and N. J. Higham, "Accurately
           computing the log-sum-exp and softmax functions", IMA Journal of
           Numerical Analysis 41(4), 2311-2330, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> x = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -np.inf]])
    >>> cattn.softmax(x).round(4)
    array([[0.09  , 0.2447, 0.6652],
           [0.5   , 0.5   , 0.    ]])
    >>> cattn.softmax(x, axis=0)[:, 0].sum()
    np.float64(1.0)
    >>> cattn.softmax(np.array([0.0, 1.0, 2.0], np.float16))  # 16-bit storage
    array([0.09  , 0.2448, 0.665 ], dtype=float16)
    """
    return _map(_softmax.SOFTMAX, "softmax", x, axis, out, num_threads)


def log_softmax(x: ArrayLike, axis: Axis = -1, *,
                out: FloatArray | None = None,
                num_threads: Threads = None) -> FloatArray:
    r"""Logarithm of the softmax along an axis, without forming the softmax.

    .. math:: \log\sigma(x)_i = (x_i - s) - \log\sum_j e^{x_j - s}

    with ``s`` the maximum of the slice, or 0 if that maximum is not finite.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input values.  16-bit storage (``numpy.float16``,
        ``ml_dtypes.bfloat16``) is computed in float32 and rounded once,
        to nearest even: the float32 result, correctly rounded.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None means all.
    out : ndarray, optional
        Array of the same shape and dtype as `x` for the result; may be `x`.
    num_threads : int, optional
        Number of OpenMP threads; the result does not depend on it.

    Returns
    -------
    y : ndarray
        Same shape and dtype as `x`; ``exp(y)`` sums to 1 along `axis`.

    Raises
    ------
    TypeError
        If `x` is not float32, float64, float16 or bfloat16, or `out` has
        another dtype (for 16-bit `x`, `out` may also be float32).
    ValueError
        If `out` has the wrong shape or is read-only, or `num_threads` < 1.
    numpy.exceptions.AxisError
        If `axis` is out of range.

    See Also
    --------
    softmax, logsumexp, scipy.special.log_softmax

    Notes
    -----
    More accurate than ``log(softmax(x))`` where the softmax underflows
    (see the example).  Special values follow ``scipy.special.log_softmax``:
    NaN in a slice makes it all NaN; with +inf present the +inf entries are
    NaN and the others -inf; a slice of only -inf is NaN.  Computed as
    ``x - max - log(sum(exp(x - max)))``, the form analysed in [1]_.
    Summation and threading as in :func:`softmax`.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham and N. J. Higham, "Accurately
           computing the log-sum-exp and softmax functions", IMA Journal of
           Numerical Analysis 41(4), 2311-2330, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> cattn.log_softmax(np.array([1000.0, 1.0]))
    array([   0., -999.])
    >>> np.exp(cattn.log_softmax(np.array([0.5, 1.5, 2.5]))).sum().round(12)
    np.float64(1.0)
    """
    return _map(_softmax.LOG_SOFTMAX, "log_softmax", x, axis, out,
                num_threads)


def logsumexp(x: ArrayLike, axis: Axis = -1, *, keepdims: bool = False,
              out: FloatArray | None = None,
              num_threads: Threads = None) -> FloatArray:
    r"""Log of the sum of exponentials along an axis, without overflow.

    .. math:: \mathrm{LSE}(x) = s + \log\sum_j e^{x_j - s}

    with ``s`` the maximum of the slice, or 0 if that maximum is not finite.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input values.  16-bit storage (``numpy.float16``,
        ``ml_dtypes.bfloat16``) is computed in float32 and rounded once,
        to nearest even: the float32 result, correctly rounded.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last); None reduces all.
    keepdims : bool, optional
        Keep the reduced axes as size-1 dimensions.
    out : ndarray, optional
        Array of the result's shape and dtype to write to.
    num_threads : int, optional
        Number of OpenMP threads; the result does not depend on it.

    Returns
    -------
    lse : ndarray
        The reduction, in the dtype of `x` (a 0-d array when every axis
        is reduced without `keepdims`).

    Raises
    ------
    TypeError
        If `x` is not float32, float64, float16 or bfloat16, or `out` has
        another dtype (for 16-bit `x`, `out` may also be float32).
    ValueError
        If `out` has the wrong shape or is read-only, or `num_threads` < 1.
    numpy.exceptions.AxisError
        If `axis` is out of range.

    See Also
    --------
    softmax, log_softmax, scipy.special.logsumexp

    Notes
    -----
    Special values follow ``scipy.special.logsumexp``: NaN in a slice gives
    NaN; otherwise +inf in a slice gives +inf, and a slice of only -inf
    gives -inf.  An empty slice gives -inf (the log of an empty sum).
    Computed as ``max + log(sum(exp(x - max)))``, which cannot overflow and
    is accurate to a few ulp [1]_.  Summation and threading as in
    :func:`softmax`.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham and N. J. Higham, "Accurately
           computing the log-sum-exp and softmax functions", IMA Journal of
           Numerical Analysis 41(4), 2311-2330, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> cattn.logsumexp(np.array([1000.0, 1000.0]))
    array(1000.69314718)
    >>> cattn.logsumexp(np.zeros((2, 3)), axis=1, keepdims=True).round(6)
    array([[1.098612],
           [1.098612]])
    """
    func = "logsumexp"
    x = _checks.as_storage_array(x, "x", func)
    nthreads = _checks.resolve_threads(num_threads, func)
    axes = _reduced_axes(x, axis, func)
    kept = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
    shape = kept if keepdims else tuple(
        s for d, s in enumerate(x.shape) if d not in axes)
    dtype = x.dtype
    if out is not None:
        dtype = _out_dtype(x, out)
        _checks.check_out(out, shape, dtype, func, (x,))
    src, _ = _as_rows(x, axes)
    result = np.empty(src.shape[0], dtype=dtype)
    _softmax.logsumexp_rows(src, result, nthreads)
    if out is None:
        return result.reshape(shape)
    out[...] = result.reshape(shape)
    return out
