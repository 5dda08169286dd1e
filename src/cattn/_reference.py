"""Plain-NumPy float64 twins of every kernel: the test oracle.

Each function computes in float64 whatever the input dtype, with the same
special-value rules the kernels promise (which are scipy.special's), and
is written for clarity, not speed.  Tests compare the kernels against these.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import Axis, Causal, Window

F64 = NDArray[np.float64]


def _axes(x: NDArray[Any], axis: Axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    return np.lib.array_utils.normalize_axis_tuple(axis, x.ndim)


def softmax(x: ArrayLike, axis: Axis = -1) -> F64:
    """exp(x - max) / sum(exp(x - max)) along `axis`, in float64."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
        e = np.exp(x - m)
        out: F64 = e / np.sum(e, axis=axes, keepdims=True)
    return out


def _log_shift(x: F64, axes: tuple[int, ...]) -> F64:
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    shift: F64 = np.where(np.isfinite(m), m, 0.0)
    return shift


def log_softmax(x: ArrayLike, axis: Axis = -1) -> F64:
    """(x - s) - log(sum(exp(x - s))), s = max if finite else 0 (scipy's)."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    s = _log_shift(x, axes)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        t = x - s
        out: F64 = t - np.log(np.sum(np.exp(t), axis=axes, keepdims=True))
    return out


def logsumexp(x: ArrayLike, axis: Axis = -1, keepdims: bool = False) -> F64:
    """s + log(sum(exp(x - s))), s as in log_softmax; -inf for empty sums."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x, axis)
    s = _log_shift(x, axes)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        r = s + np.log(np.sum(np.exp(x - s), axis=axes, keepdims=True))
    out: F64 = r if keepdims else np.squeeze(r, axis=axes)
    return out


def matmul(a: ArrayLike, b: ArrayLike) -> F64:
    """numpy.matmul in float64 (1-D promotion and batch broadcasting)."""
    out: F64 = np.matmul(np.asarray(a, dtype=np.float64),
                         np.asarray(b, dtype=np.float64))
    return out


def visible(L: int, S: int, is_causal: Causal | None = False,
            window: Window = None, chunk_size: int | None = None,
            prefix: int | None = None) -> NDArray[np.bool_]:
    """(L, S) bool: may query i see key j under `is_causal`, `window`,
    `chunk_size` and `prefix` (the twin of _visibility.pxd).

    d = i (or i + S - L with is_causal="bottom_right"); causal: j <= d, or
    j < prefix; window (left, right): d - left <= j <= d + right, None =
    unbounded; chunk_size C: d // C == j // C (chunked attention)."""
    i = np.arange(L)[:, None]
    j = np.arange(S)[None, :]
    d = i + (S - L if is_causal == "bottom_right" else 0)
    ok = np.ones((L, S), dtype=bool)
    if is_causal:
        ok &= (j <= d) | (j < (prefix or 0))
    if window is not None:
        left, right = window
        if left is not None:
            ok &= j >= d - left
        if right is not None:
            ok &= j <= d + right
    if chunk_size is not None:
        ok &= d // chunk_size == j // chunk_size
    return ok


def block_visible(block_mask: ArrayLike, block_size: int | tuple[int, int],
                  L: int, S: int) -> NDArray[np.bool_]:
    """(..., L, S) bool: the block mask `block_mask` (..., ceil(L / Bq),
    ceil(S / Bk)) at element level -- query i may see key j where
    block_mask[..., i // Bq, j // Bk] (the twin of _frame.pyx's
    expand_blocks)."""
    Bq, Bk = ((block_size, block_size) if isinstance(block_size, int)
              else block_size)
    t = np.asarray(block_mask, dtype=bool)
    t = np.broadcast_to(t, t.shape[:-2] + (-(-L // Bq), -(-S // Bk)))
    # (A block longer than its axis holds all of it.)
    return (t[..., np.arange(L) // min(Bq, max(L, 1)), :]
            [..., np.arange(S) // min(Bk, max(S, 1))])


def top_k_keep(scores: NDArray[Any], k: int) -> NDArray[np.bool_]:
    """Which keys each row keeps in top-k attention: its k best candidates
    (keys scoring above -inf), ranked NaN first, then by larger score, then
    by lower key index (a stable sort on those three keys)."""
    s = np.asarray(scores)
    nan = np.isnan(s)
    index = np.broadcast_to(np.arange(s.shape[-1]), s.shape)
    order = np.lexsort((index, -np.where(nan, 0, s), ~nan), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, index, axis=-1)
    keep: NDArray[np.bool_] = (rank < k) & (nan | (s > -np.inf))
    return keep


def per_head(x: ArrayLike | None, batch: tuple[int, ...]) -> F64 | None:
    """sinks / alibi_slopes broadcast to the batch (..., H), as (..., H, 1,
    1) against the scores."""
    if x is None:
        return None
    b: F64 = np.broadcast_to(np.asarray(x, dtype=np.float64), batch)
    return b[..., None, None]


def alibi_bias(slopes: ArrayLike, batch: tuple[int, ...], L: int,
               S: int) -> F64:
    """-slope · |i + S - L - j| for query i and key j (FlashAttention's
    ALiBi), shape batch + (L, S)."""
    i = np.arange(L)[:, None]
    j = np.arange(S)[None, :]
    dist = np.abs(i + S - L - j).astype(np.float64)
    sl = per_head(slopes, batch)
    assert sl is not None
    out: F64 = -sl * dist
    return out


def scores(query: ArrayLike, key: ArrayLike,
           attn_mask: ArrayLike | None = None, is_causal: Causal = False,
           scale: float | None = None, enable_gqa: bool = False,
           window: Window = None, top_k: int | None = None,
           softcap: float | None = None,
           alibi_slopes: ArrayLike | None = None,
           capped: list[F64] | None = None) -> F64:
    """scale·Q·Kᵀ, capped to softcap·tanh(s / softcap), + ALiBi + mask in
    float64, -inf where hidden (mask, causal, window, outside the top_k),
    GQA by repeating key heads.  `capped`, if a list, receives the capped
    scores before the bias and mask (for the gradient)."""
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    E, L, S = q.shape[-1], q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / np.sqrt(E) if E else 1.0
    s = scale * np.matmul(q, np.swapaxes(k, -1, -2))
    if softcap is not None:
        s = softcap * np.tanh(s / softcap)
    if capped is not None:
        capped.append(s)
    if alibi_slopes is not None:
        s = s + alibi_bias(alibi_slopes, s.shape[:-2], L, S)
    hidden = ~visible(L, S, is_causal, window)
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.dtype == bool:
            hidden = hidden | ~mask
        else:
            s = s + mask.astype(np.float64)
    s = np.where(hidden, -np.inf, s)
    if top_k is not None:
        s = np.where(top_k_keep(s, top_k), s, -np.inf)
    return s


def attention_weights(query: ArrayLike, key: ArrayLike,
                      attn_mask: ArrayLike | None = None,
                      is_causal: Causal = False, scale: float | None = None,
                      enable_gqa: bool = False, window: Window = None,
                      top_k: int | None = None,
                      softcap: float | None = None,
                      sinks: ArrayLike | None = None,
                      alibi_slopes: ArrayLike | None = None
                      ) -> tuple[F64, F64]:
    """softmax(scores(...)) in float64, GQA by repeating key heads, over
    only each row's top_k keys if given; returns (weights, lse).  A row
    that sees no key gets weights 0 and lse -inf.  `sinks`: one more logit
    per head in each softmax's denominator (torch's eager gpt-oss: the
    logit joins the row, the softmax runs, its column is dropped); lse
    includes it, and a row that sees no key then has lse = sink."""
    s = scores(query, key, attn_mask, is_causal, scale, enable_gqa, window,
               top_k, softcap, alibi_slopes)
    if sinks is not None:
        sk = per_head(sinks, s.shape[:-2])
        assert sk is not None
        col = np.broadcast_to(sk, s.shape[:-1] + (1,))
        w, lse = attention_weights_of(np.concatenate([s, col], axis=-1))
        return w[..., :-1], lse
    return attention_weights_of(s)


def attention_weights_of(s: F64) -> tuple[F64, F64]:
    """(softmax, logsumexp) of float64 scores along the last axis; a row
    all -inf gets weights 0 and lse -inf."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(s, axis=-1, keepdims=True, initial=-np.inf)
        dead = np.isneginf(m) & ~np.isnan(s).any(axis=-1, keepdims=True)
        shift = np.where(dead, 0.0, m)
        p = np.exp(s - shift)
        total = p.sum(axis=-1, keepdims=True)
        weights = np.where(dead, 0.0, p / np.where(dead, 1.0, total))
        lse = np.where(dead, -np.inf, shift + np.log(total))[..., 0]
    return weights, lse


def listed_mask(indices: ArrayLike, query: ArrayLike, key: ArrayLike,
                attn_mask: ArrayLike | None = None) -> NDArray[Any]:
    """Sparse attention's key lists folded into a dense mask, as
    transformers' eager DeepSeek-V3.2 folds them: True at (..., i, j)
    where row i of the key/value head lists key j (-1: an empty slot),
    repeated over the query heads of a GQA group, then combined with
    `attn_mask` (ANDed with a bool one, -inf where a float one is not
    listed)."""
    q, k = np.asarray(query), np.asarray(key)
    idx = np.asarray(indices).astype(np.int64)
    L, S = q.shape[-2], k.shape[-2]
    lead = np.broadcast_shapes(idx.shape[:-2], k.shape[:-2])
    idx = np.broadcast_to(idx, lead + (L, idx.shape[-1]))
    listed = np.zeros(lead + (L, S + 1), dtype=bool)   # column S: the -1s
    np.put_along_axis(listed, np.where(idx < 0, S, idx), True, axis=-1)
    m: NDArray[Any] = listed[..., :S]
    if q.ndim >= 3 and m.ndim >= 3 and m.shape[-3] not in (1, q.shape[-3]):
        m = np.repeat(m, q.shape[-3] // m.shape[-3], axis=-3)
    if attn_mask is None:
        return m
    mask = np.asarray(attn_mask)
    if mask.dtype == bool:
        both: NDArray[Any] = mask & m
        return both
    added: NDArray[Any] = np.where(m, mask.astype(np.float64), -np.inf)
    return added


def scaled_dot_product_attention(query: ArrayLike, key: ArrayLike,
                                 value: ArrayLike,
                                 attn_mask: ArrayLike | None = None,
                                 is_causal: Causal = False,
                                 scale: float | None = None,
                                 enable_gqa: bool = False,
                                 window: Window = None,
                                 top_k: int | None = None,
                                 softcap: float | None = None,
                                 sinks: ArrayLike | None = None,
                                 alibi_slopes: ArrayLike | None = None,
                                 indices: ArrayLike | None = None
                                 ) -> tuple[F64, F64]:
    """softmax(scale·Q·Kᵀ + mask)·V in float64 with the L x S matrix built,
    GQA by repeating key/value heads, top-k by masking all but the top_k
    keys of each row, sparse attention's `indices` by folding them into the
    mask (listed_mask); returns (out, lse).  A row that sees no key gets
    out 0 and lse -inf.  A value reaches only the rows that give its key a
    nonzero weight: an inf or NaN value of a hidden key (weight exactly 0)
    changes nothing, where a plain product would give 0·inf = NaN."""
    if indices is not None:
        attn_mask = listed_mask(indices, query, key, attn_mask)
    weights, lse = attention_weights(query, key, attn_mask, is_causal, scale,
                                     enable_gqa, window, top_k, softcap,
                                     sinks, alibi_slopes)
    q = np.asarray(query)
    v = np.asarray(value, dtype=np.float64)
    if enable_gqa and q.ndim >= 3 and v.shape[-3] != q.shape[-3]:
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    finite = np.isfinite(v)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.matmul(weights, np.where(finite, v, 0.0))
        if not finite.all():
            # (..., L, S, 1) x (..., 1, S, Ev): only the nonzero weights.
            w = weights[..., :, :, None]
            terms = w * np.where(finite, 0.0, v)[..., None, :, :]
            out = out + np.where(w != 0, terms, 0.0).sum(axis=-2)
    return out, lse


def hard_attention(query: ArrayLike, key: ArrayLike, value: ArrayLike,
                   attn_mask: ArrayLike | None = None,
                   is_causal: Causal = False, scale: float | None = None,
                   enable_gqa: bool = False, window: Window = None,
                   softcap: float | None = None,
                   alibi_slopes: ArrayLike | None = None
                   ) -> tuple[F64, NDArray[np.int64]]:
    """(out, indices): each row's best key by top_k_keep(k=1) on the float64
    scores, its value row, or zeros and -1 where the row sees no key."""
    best = scores(query, key, attn_mask, is_causal, scale, enable_gqa,
                  window, top_k=1, softcap=softcap, alibi_slopes=alibi_slopes)
    chosen = (best > -np.inf) | np.isnan(best)
    first = (chosen.argmax(axis=-1) if chosen.shape[-1]
             else np.zeros(chosen.shape[:-1], np.int64))
    idx = np.where(chosen.any(axis=-1), first, -1)
    v = np.asarray(value, dtype=np.float64)
    q = np.asarray(query)
    if enable_gqa and q.ndim >= 3 and v.shape[-3] != q.shape[-3]:
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    if v.shape[-2] == 0:
        return np.zeros(idx.shape + v.shape[-1:]), idx
    v = np.broadcast_to(v, idx.shape[:-1] + v.shape[-2:])
    out = np.take_along_axis(v, np.maximum(idx, 0)[..., None], axis=-2)
    return np.where(idx[..., None] >= 0, out, 0.0), idx


def sum_to_shape(x: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Sum `x` over the axes along which an array of `shape` was broadcast
    to x.shape: the gradient of a broadcast input."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + d for d, n in enumerate(shape)
        if n == 1 and x.shape[lead + d] != 1)
    return x.sum(axis=axes).reshape(shape) if axes else x


def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, attn_mask: ArrayLike | None = None,
        is_causal: Causal = False, scale: float | None = None,
        enable_gqa: bool = False, window: Window = None,
        softcap: float | None = None, sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None,
        indices: ArrayLike | None = None
) -> tuple[F64, F64, F64, F64 | None, F64 | None]:
    """Gradients of sum(grad_out * attention(query, key, value)) in float64
    from the full L x S weights (no saved lse): (grad_query, grad_key,
    grad_value, grad_attn_mask or None for no or a bool mask, grad_sinks
    or None), each summed to its input's shape (broadcast and GQA-shared
    heads add up).

        dV = Pᵀ dO, dP = dO Vᵀ, D = rowsum(P ∘ dP), dS = P ∘ (dP - D),
        d(mask) = dS, dS_raw = dS ∘ (1 - (c / softcap)²) for the capped
        scores c, dQ = scale · dS_raw K, dK = scale · dS_rawᵀ Q,
        d(sink) = -sum over rows of P_sink · D, P_sink = exp(sink - lse)

    `indices` (sparse attention) fold into the mask (listed_mask); the
    mask's gradient keeps the shape of `attn_mask`.
    """
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    go = np.asarray(grad_out, dtype=np.float64)
    user_mask = attn_mask
    if indices is not None:
        attn_mask = listed_mask(indices, q, k, attn_mask)
    p, lse = attention_weights(q, k, attn_mask, is_causal, scale, enable_gqa,
                               window, None, softcap, sinks, alibi_slopes)
    capped: list[F64] = []
    if softcap is not None:
        scores(q, k, None, False, scale, enable_gqa, None, None, softcap,
               None, capped)
    group = 1
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        group = q.shape[-3] // k.shape[-3]
    k_rep = np.repeat(k, group, axis=-3) if group > 1 else k
    v_rep = np.repeat(v, group, axis=-3) if group > 1 else v
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        dv = np.matmul(np.swapaxes(p, -1, -2), go)
        dp = np.matmul(go, np.swapaxes(v_rep, -1, -2))
        # Pairs of weight 0 (hidden keys) carry no gradient, even where
        # dP = dO Vᵀ is inf or NaN (as the forward ignores their values).
        pdp = np.where(p != 0, p * dp, 0.0)
        dd = pdp.sum(axis=-1, keepdims=True)
        ds = np.where(p != 0, p * (dp - dd), 0.0)
        ds_raw = (ds * (1 - (capped[0] / softcap) ** 2)
                  if softcap is not None else ds)
        dq = scale * np.matmul(ds_raw, k_rep)
        dk = scale * np.matmul(np.swapaxes(ds_raw, -1, -2), q)
        dsinks = None
        if sinks is not None:
            sk = per_head(sinks, p.shape[:-2])
            assert sk is not None
            psink = np.where(np.isneginf(lse[..., None]), 0.0,
                             np.exp(sk - lse[..., None]))
            dsinks = sum_to_shape(-(psink * dd)[..., 0].sum(axis=-1),
                                  np.shape(sinks))

    def to_kv(g: F64, shape: tuple[int, ...]) -> F64:
        if group > 1:   # heads h = kv·group + j share kv head kv
            g = g.reshape(g.shape[:-3] + (g.shape[-3] // group, group)
                          + g.shape[-2:]).sum(axis=-3)
        return sum_to_shape(g, shape)

    dmask = None
    if user_mask is not None and np.asarray(user_mask).dtype != bool:
        dmask = sum_to_shape(ds, np.shape(user_mask))
    return (sum_to_shape(dq, q.shape), to_kv(dk, k.shape),
            to_kv(dv, v.shape), dmask, dsinks)


def multi_head_attention(state: Mapping[str, ArrayLike | None],
                         query: ArrayLike, key: ArrayLike, value: ArrayLike,
                         num_heads: int, num_kv_heads: int,
                         key_padding_mask: ArrayLike | None = None,
                         attn_mask: ArrayLike | None = None,
                         is_causal: Causal = False) -> tuple[F64, F64]:
    """A multi-head attention layer in float64, head by head.

    `state` holds torch.nn.MultiheadAttention's names (in_proj_weight or
    q/k/v_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias);
    inputs are batch-first (B, T, features).  key_padding_mask True =
    ignore; attn_mask has cattn's meaning (bool True = may attend, float
    added).  Returns (out, weights (B, H, L, S))."""
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    E = f64["out_proj.weight"].shape[0]
    d = E // num_heads
    kv = num_kv_heads * d
    if "in_proj_weight" in f64:
        w = f64["in_proj_weight"]
        wq, wk, wv = w[:E], w[E:E + kv], w[E + kv:]
    else:
        wq, wk, wv = (f64[n] for n in ("q_proj_weight", "k_proj_weight",
                                       "v_proj_weight"))
    b = f64.get("in_proj_bias", np.zeros(E + 2 * kv))
    q = np.asarray(query, np.float64) @ wq.T + b[:E]
    k = np.asarray(key, np.float64) @ wk.T + b[E:E + kv]
    v = np.asarray(value, np.float64) @ wv.T + b[E + kv:]
    B, L, S = q.shape[0], q.shape[1], k.shape[1]
    group = num_heads // num_kv_heads
    outs, weights = [], []
    for h in range(num_heads):
        g = h // group
        mask = np.zeros((B, L, S))
        if key_padding_mask is not None:
            mask = np.where(np.asarray(key_padding_mask)[:, None, :],
                            -np.inf, mask)
        if attn_mask is not None:
            m = np.asarray(attn_mask)
            if m.ndim == 4:
                m = m[:, h] if m.shape[1] > 1 else m[:, 0]
            mask = (np.where(m, mask, -np.inf) if m.dtype == bool
                    else mask + m)
        w, _ = attention_weights(q[..., h * d:(h + 1) * d],
                                 k[..., g * d:(g + 1) * d], mask,
                                 is_causal=is_causal)
        outs.append(w @ v[..., g * d:(g + 1) * d])
        weights.append(w)
    out = np.concatenate(outs, axis=-1) @ f64["out_proj.weight"].T
    if "out_proj.bias" in f64:
        out = out + f64["out_proj.bias"]
    return out, np.stack(weights, axis=1)


def _per_row(x: ArrayLike | None, batch: tuple[int, ...]) -> Any:
    """sinks / slopes (..., H) broadcast to batch, or None."""
    return None if x is None else np.broadcast_to(np.asarray(x), batch)


def attention_with_lengths(query: ArrayLike, key: ArrayLike,
                           value: ArrayLike, query_lengths: ArrayLike,
                           key_lengths: ArrayLike,
                           attn_mask: ArrayLike | None = None,
                           **kw: Any) -> tuple[F64, F64]:
    """scaled_dot_product_attention with per-row lengths, from the
    definition: batch row b (leading axis of 4-D (B, H, L, E) inputs) is
    attention on its first query_lengths[b] queries and key_lengths[b]
    keys alone -- so causal alignments and ALiBi count from them -- and
    its rows past the query length are 0 with lse -inf."""
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    B, H, L, Ev = q.shape[0], q.shape[1], q.shape[2], v.shape[-1]
    S = k.shape[-2]
    ql = np.broadcast_to(np.asarray(query_lengths), (B,))
    kl = np.broadcast_to(np.asarray(key_lengths), (B,))
    mask = (None if attn_mask is None else
            np.broadcast_to(np.asarray(attn_mask), (B, H, L, S)))
    sinks = _per_row(kw.pop("sinks", None), (B, H))
    slopes = _per_row(kw.pop("alibi_slopes", None), (B, H))
    out = np.zeros((B, H, L, Ev))
    lse = np.full((B, H, L), -np.inf)
    for b in range(B):
        lb, sb = int(ql[b]), int(kl[b])
        if lb == 0:
            continue
        kb = np.broadcast_to(k, (B,) + k.shape[1:])[b, :, :sb]
        vb = np.broadcast_to(v, (B,) + v.shape[1:])[b, :, :sb]
        o, s = scaled_dot_product_attention(
            q[b, :, :lb], kb, vb,
            None if mask is None else mask[b, :, :lb, :sb],
            sinks=None if sinks is None else sinks[b],
            alibi_slopes=None if slopes is None else slopes[b], **kw)
        out[b, :, :lb] = o
        lse[b, :, :lb] = s
    return out, lse


def attention_grad_with_lengths(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, query_lengths: ArrayLike, key_lengths: ArrayLike,
        attn_mask: ArrayLike | None = None, **kw: Any
) -> tuple[F64, F64, F64, F64 | None, F64 | None]:
    """scaled_dot_product_attention_grad with per-row lengths, batch row by
    batch row as attention_with_lengths: what lies past a row's lengths
    gets no gradient."""
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    go = np.asarray(grad_out, dtype=np.float64)
    B, H, L = q.shape[0], q.shape[1], q.shape[2]
    S = k.shape[-2]
    ql = np.broadcast_to(np.asarray(query_lengths), (B,))
    kl = np.broadcast_to(np.asarray(key_lengths), (B,))
    mask = (None if attn_mask is None else
            np.broadcast_to(np.asarray(attn_mask), (B, H, L, S)))
    sinks_in = kw.pop("sinks", None)
    sinks = _per_row(sinks_in, (B, H))
    slopes = _per_row(kw.pop("alibi_slopes", None), (B, H))
    kfull = np.broadcast_to(k, (B,) + k.shape[1:])
    vfull = np.broadcast_to(v, (B,) + v.shape[1:])
    dq, dk, dv = np.zeros(q.shape), np.zeros(kfull.shape), np.zeros(
        vfull.shape)
    dmask = None if mask is None else np.zeros(mask.shape)
    dsinks = None if sinks is None else np.zeros((B, H))
    for b in range(B):
        lb, sb = int(ql[b]), int(kl[b])
        if lb == 0:
            continue
        g = scaled_dot_product_attention_grad(
            go[b, :, :lb], q[b, :, :lb], kfull[b, :, :sb], vfull[b, :, :sb],
            None if mask is None else mask[b, :, :lb, :sb],
            sinks=None if sinks is None else sinks[b],
            alibi_slopes=None if slopes is None else slopes[b], **kw)
        dq[b, :, :lb], dk[b, :, :sb], dv[b, :, :sb] = g[0], g[1], g[2]
        if dmask is not None and g[3] is not None:
            dmask[b, :, :lb, :sb] = g[3]
        if dsinks is not None and g[4] is not None:
            dsinks[b] = g[4]
    return (dq, sum_to_shape(dk, k.shape), sum_to_shape(dv, v.shape),
            None if dmask is None or np.asarray(attn_mask).dtype == bool
            else sum_to_shape(dmask, np.asarray(attn_mask).shape),
            None if dsinks is None else sum_to_shape(
                dsinks, np.shape(np.asarray(sinks_in))))
