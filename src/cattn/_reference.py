"""Plain-NumPy float64 twins of every kernel: the test oracle.

Each function computes in float64 whatever the input dtype, with the same
special-value rules the kernels promise (which are scipy.special's), and
is written for clarity, not speed.  Tests compare the kernels against these.
"""
import numpy as np


def _axes(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    return np.lib.array_utils.normalize_axis_tuple(axis, x.ndim)


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along `axis`, in float64."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
        e = np.exp(x - m)
        return e / np.sum(e, axis=axes, keepdims=True)


def _log_shift(x, axes):
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, 0.0)


def log_softmax(x, axis=-1):
    """(x - s) - log(sum(exp(x - s))), s = max if finite else 0 (scipy's)."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    s = _log_shift(x, axes)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        t = x - s
        return t - np.log(np.sum(np.exp(t), axis=axes, keepdims=True))


def logsumexp(x, axis=-1, keepdims=False):
    """s + log(sum(exp(x - s))), s as in log_softmax; -inf for empty sums."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    s = _log_shift(x, axes)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        r = s + np.log(np.sum(np.exp(x - s), axis=axes, keepdims=True))
    return r if keepdims else np.squeeze(r, axis=axes)


def matmul(a, b):
    """numpy.matmul in float64 (1-D promotion and batch broadcasting)."""
    return np.matmul(np.asarray(a, dtype=np.float64),
                     np.asarray(b, dtype=np.float64))
