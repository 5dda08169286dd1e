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


def visible(L, S, is_causal=False, window=None):
    """(L, S) bool: may query i see key j under `is_causal` and `window`.

    d = i (or i + S - L with is_causal="bottom_right"); causal: j <= d;
    window (left, right): d - left <= j <= d + right, None = unbounded."""
    i = np.arange(L)[:, None]
    j = np.arange(S)[None, :]
    d = i + (S - L if is_causal == "bottom_right" else 0)
    ok = np.ones((L, S), dtype=bool)
    if is_causal:
        ok &= j <= d
    if window is not None:
        left, right = window
        if left is not None:
            ok &= j >= d - left
        if right is not None:
            ok &= j <= d + right
    return ok


def scaled_dot_product_attention(query, key, value, attn_mask=None,
                                 is_causal=False, scale=None,
                                 enable_gqa=False, window=None):
    """softmax(scale·Q·Kᵀ + mask)·V in float64 with the L x S matrix built,
    GQA by repeating key/value heads; returns (out, lse).  A row that sees
    no key gets out 0 and lse -inf."""
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        group = q.shape[-3] // k.shape[-3]
        k = np.repeat(k, group, axis=-3)
        v = np.repeat(v, group, axis=-3)
    E, L, S = q.shape[-1], q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / np.sqrt(E) if E else 1.0
    scores = scale * np.matmul(q, np.swapaxes(k, -1, -2))
    hidden = ~visible(L, S, is_causal, window)
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.dtype == bool:
            hidden = hidden | ~mask
        else:
            scores = scores + mask.astype(np.float64)
    scores = np.where(hidden, -np.inf, scores)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(scores, axis=-1, keepdims=True, initial=-np.inf)
        dead = np.isneginf(m) & ~np.isnan(scores).any(axis=-1, keepdims=True)
        shift = np.where(dead, 0.0, m)
        p = np.exp(scores - shift)
        total = p.sum(axis=-1, keepdims=True)
        out = np.matmul(np.where(dead, 0.0, p / np.where(dead, 1.0, total)), v)
        lse = np.where(dead, -np.inf, shift + np.log(total))[..., 0]
    return out, lse
