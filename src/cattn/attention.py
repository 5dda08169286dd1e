"""Scaled-dot-product attention: self (VVV), cross (QVV) and general (QKV).

Validation and broadcasting here; the fused tiled online-softmax kernel in
``_kernels/_attention.pyx`` (on the GEMM micro-kernels and the softmax row
kernels); ``_reference.scaled_dot_product_attention`` is the float64 oracle.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from . import _checks, _reference
from ._kernels import _attention, _layout, _topk
from .linalg import matmul
from .special import softmax
from ._typing import ArrayLike, Causal, FloatArray, Threads, Window

Alignment = Literal["top_left", "bottom_right"]
_CAUSAL: dict[object, Alignment | None] = {
    False: None, True: "top_left", "top_left": "top_left",
    "bottom_right": "bottom_right"}


def _causal(is_causal: object, func: str) -> Alignment | None:
    try:
        return _CAUSAL[is_causal]
    except (KeyError, TypeError):
        raise ValueError(f"{func}: is_causal must be False, True, 'top_left' "
                         f"or 'bottom_right', got {is_causal!r}") from None


def _window(window: object,
            func: str) -> tuple[int | None, int | None] | None:
    if window is None:
        return None
    try:
        pair: Any = window
        left, right = pair
    except (TypeError, ValueError):
        raise ValueError(f"{func}: window must be None or a pair (left, "
                         f"right), got {window!r}") from None
    bounds: list[int | None] = []
    for name, b in (("left", left), ("right", right)):
        if b is not None:
            if isinstance(b, (bool, np.bool_)) or not isinstance(
                    b, numbers.Integral):
                raise ValueError(f"{func}: window {name} bound must be None "
                                 f"or an int >= 0, got {b!r}")
            b = int(b)
            if b < 0:
                raise ValueError(f"{func}: window {name} bound must be None "
                                 f"or an int >= 0, got {b}")
        bounds.append(b)
    return bounds[0], bounds[1]


def _scale(scale: object, E: int, func: str) -> float:
    if scale is None:
        return 1.0 / math.sqrt(E) if E > 0 else 1.0
    if isinstance(scale, (bool, np.bool_)) or not isinstance(
            scale, numbers.Real):
        raise TypeError(f"{func}: scale must be a real number, got "
                        f"{scale!r}")
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"{func}: scale must be finite, got {scale}")
    return scale


def _operands(func: str, names: Sequence[str], inputs: Sequence[ArrayLike],
              enable_gqa: bool
              ) -> tuple[list[FloatArray], np.dtype[Any], tuple[int, ...], int]:
    """Validate query/key(/value); return them in one dtype, reshaped for
    grouped-query attention if asked, with the batch shape and sizes."""
    arrays = [_checks.as_float_array(a, n, func) for n, a in zip(names, inputs)]
    for n, a in zip(names, arrays):
        if a.ndim < 2:
            raise ValueError(f"{func}: {n} must have at least 2 dimensions "
                             f"(..., {'L' if n == 'query' else 'S'}, "
                             f"{'Ev' if n == 'value' else 'E'}), got shape "
                             f"{a.shape}")
    dtype = _checks.common_dtype(arrays)
    arrays = [a if a.dtype == dtype else a.astype(dtype) for a in arrays]
    q, k = arrays[0], arrays[1]
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"{func}: query and key must have the same last "
                         f"dimension E: query has shape {q.shape}, key has "
                         f"shape {k.shape}")
    if len(arrays) == 3 and arrays[2].shape[-2] != k.shape[-2]:
        raise ValueError(f"{func}: key and value must have the same number "
                         f"of keys S (dimension -2): key has shape {k.shape}, "
                         f"value has shape {arrays[2].shape}")
    group = 1
    if enable_gqa and q.ndim >= 3 and k.ndim >= 3:
        hq, hk = q.shape[-3], k.shape[-3]
        if len(arrays) == 3 and arrays[2].shape[-3] != hk:
            raise ValueError(f"{func}: with enable_gqa key and value must "
                             f"have the same number of heads (dimension -3): "
                             f"key has shape {k.shape}, value has shape "
                             f"{arrays[2].shape}")
        if hk == 0 or hq % hk:
            raise ValueError(f"{func}: with enable_gqa the query heads must "
                             f"be a multiple of the key/value heads "
                             f"(dimension -3): query has shape {q.shape}, key "
                             f"has shape {k.shape}")
        group = hq // hk
    # With GQA, key/value heads count as query heads for broadcasting.
    shapes = [q.shape[:-2]] + [
        a.shape[:-3] + (q.shape[-3],) if group > 1 else a.shape[:-2]
        for a in arrays[1:]]
    try:
        batch = (shapes[0] if shapes.count(shapes[0]) == len(shapes)
                 else np.broadcast_shapes(*shapes))
    except ValueError:
        got = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"{func}: leading (batch) dimensions do not "
                         f"broadcast: {got}"
                         + ("" if enable_gqa else "; for grouped-query "
                            "attention pass enable_gqa=True")) from None
    return arrays, dtype, batch, group


def _split_heads(x: FloatArray, group: int) -> FloatArray:
    """View (..., H, r, c) as (..., H // group, group, r, c) (query side)."""
    return x.reshape(x.shape[:-3] + (x.shape[-3] // group, group)
                     + x.shape[-2:])


def _expand_kv(x: FloatArray) -> FloatArray:
    """View (..., Hkv, r, c) as (..., Hkv, 1, r, c): broadcast over a group."""
    return x[..., np.newaxis, :, :]


def _mask(attn_mask: ArrayLike, dtype: np.dtype[Any], shape: tuple[int, ...],
          func: str) -> tuple[NDArray[Any], int]:
    """The mask as an array the kernel reads, and its kind."""
    mask = np.asarray(attn_mask)
    if mask.dtype == np.bool_:
        kind = _attention.MaskKind.MASK_BOOL
    elif mask.dtype in _checks.SUPPORTED_DTYPES:
        kind = _attention.MaskKind.MASK_ADD
        mask = mask.astype(dtype, copy=False)
    else:
        raise TypeError(f"{func}: attn_mask has dtype {mask.dtype}; expected "
                        "bool (True = may attend) or float32/float64 (added "
                        "to the scores)")
    try:
        mask = np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"{func}: attn_mask of shape {mask.shape} does not "
                         f"broadcast to (..., L, S) = {shape}") from None
    return mask, kind


def _top_k(top_k: object, S: int, func: str) -> int:
    """k for top-k attention, or 0 for full attention (None, or k >= S)."""
    if top_k is None:
        return 0
    if isinstance(top_k, (bool, np.bool_)) or not isinstance(
            top_k, numbers.Integral):
        raise TypeError(f"{func}: top_k must be None or an int >= 1, got "
                        f"{top_k!r}")
    k = int(top_k)
    if k < 1:
        raise ValueError(f"{func}: top_k must be None or an int >= 1, got "
                         f"{k}")
    return 0 if k >= S else k


def _select(q: FloatArray, k: FloatArray, mask: NDArray[Any] | None,
            off_q: NDArray[np.int64], off_k: NDArray[np.int64],
            off_m: NDArray[np.int64], strides: tuple[int, ...],
            sizes: tuple[int, int, int], kind: int,
            causal: Alignment | None,
            window: tuple[int | None, int | None] | None, scale: float,
            topk: int, nthreads: int
            ) -> tuple[FloatArray, NDArray[np.int64]]:
    """Per query row of the walked operands, the score and index of the
    worst of its top-k keys (index -1: fewer candidates; _topk.pyx)."""
    L, S, _ = sizes
    thr = np.empty((off_q.shape[0], L), dtype=q.dtype)
    idx = np.empty((off_q.shape[0], L), dtype=np.int64)
    _topk.select_top_k(q, k, mask, thr, idx, off_q, off_k, off_m, strides,
                       sizes, kind, causal is not None,
                       S - L if causal == "bottom_right" else 0,
                       window[0] if window else None,
                       window[1] if window else None, scale, topk, nthreads)
    return thr, idx


@overload
def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., top_k: int | None = ...,
        return_lse: Literal[False] = ...,
        num_threads: Threads = ...,
        out: FloatArray | None = ...) -> FloatArray: ...


@overload
def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., top_k: int | None = ...,
        return_lse: Literal[True],
        num_threads: Threads = ...,
        out: FloatArray | None = ...) -> tuple[FloatArray, FloatArray]: ...


def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, top_k: int | None = None,
        return_lse: bool = False, num_threads: Threads = None,
        out: FloatArray | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray]:
    r"""Attention ``softmax(query · keyᵀ · scale + mask) · value``, fused.

    .. math:: \mathrm{out}_i = \sum_j
              \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}} v_j, \quad
              s_{ij} = \mathrm{scale}\; q_i \cdot k_j + \mathrm{mask}_{ij}

    computed block by block with an online softmax: the L x S score matrix
    is never formed, and extra memory is O(threads x tile).

    Parameters
    ----------
    query : array_like, shape (..., L, E)
        Queries, float32 or float64.
    key : array_like, shape (..., S, E)
        Keys.
    value : array_like, shape (..., S, Ev)
        Values.  Leading dimensions of query, key and value broadcast (a key
        or value shared across the batch is read in place, not copied).
    attn_mask : array_like, optional
        Broadcastable to (..., L, S).  Boolean: True means *may attend* (the
        meaning of ``torch.nn.functional.scaled_dot_product_attention`` and
        ``jax.nn.dot_product_attention``).  Float: added to the scaled
        scores (-inf hides a key).  A broadcast mask is read in place.
    is_causal : bool or {"top_left", "bottom_right"}, optional
        Hide future keys.  True or "top_left": query i sees keys j <= i
        (PyTorch's meaning).  "bottom_right": query i sees keys
        j <= i + S - L, the alignment for decoding with a cache.  Combines
        with `attn_mask` and `window`.
    scale : float, optional
        Score scale, default ``1 / sqrt(E)``; any finite value.
    enable_gqa : bool, optional
        Grouped-query attention: dimension -3 (heads) of key and value may
        divide that of query; query head h uses key/value head
        ``h // (Hq // Hkv)`` [4]_.  No copies are made.
    window : (int or None, int or None), optional
        Local attention: query i sees keys j with
        ``d - left <= j <= d + right``, where d is i, or i + S - L with
        ``is_causal="bottom_right"``.  None leaves a side unbounded;
        ``(w, 0)`` with causal attention is sliding-window attention [5]_.
        Blocks outside the window are skipped, not computed.
    top_k : int, optional
        Top-k attention: each query's softmax runs over only its k
        highest-scoring visible keys (ties go to the lower key index; NaN
        ranks highest), exactly and without an L x S matrix: a first pass
        selects, the fused kernel then hides the rest.  ``top_k=1`` gives
        :func:`hard_attention`'s output; ``top_k >= S`` (or None) is full
        attention.
    return_lse : bool, optional
        Also return the log-sum-exp of each row's scaled, masked scores.
    num_threads : int, optional
        Number of OpenMP threads (default: ``OMP_NUM_THREADS``, a
        threadpoolctl limit, or one per core).  The result does not depend
        on it.
    out : ndarray, optional
        Array of shape (..., L, Ev) and the result's dtype to write to.

    Returns
    -------
    out : ndarray, shape (..., L, Ev)
        The attention output, float32 if all inputs are float32 else float64.
    lse : ndarray, shape (..., L)
        Only with ``return_lse=True``: log-sum-exp per row, so attentions
        over key chunks can be merged exactly.

    Raises
    ------
    TypeError
        If an input is not float32/float64, the mask is not bool or float,
        `scale` is not a real number, or `out` has another dtype.
    ValueError
        If the shapes disagree (E of query and key, S of key and value, the
        batch dimensions, GQA heads that do not divide, a mask that does not
        broadcast), `is_causal`, `window` or `scale` is invalid, `out` has the
        wrong shape or is read-only, or `num_threads` < 1.

    See Also
    --------
    self_attention, attention_weights

    Notes
    -----
    Per query block the kernel walks the key blocks in order, keeping a
    running max ``m`` and sum ``l`` per row and rescaling the accumulator by
    ``exp(m_old - m_new)`` when the max grows: the online softmax of [2]_,
    tiled as in FlashAttention-2 [3]_, for the attention of [1]_.  Products
    run on cattn's GEMM micro-kernels in the input dtype; ``m`` and ``l``
    are kept in float64.  Measured error against float64: about 1e-7
    normwise in float32.

    A row that sees no key (fully masked) is exactly 0 with lse -inf.  NaN
    in the inputs propagates to the rows it touches; a value whose key a row
    cannot see (weight exactly 0) never reaches it, even inf or NaN.  Huge
    scores do not overflow.  Work is split over (batch·head, query block) — and over key
    chunks of fixed size when there are few query rows (decoding) — never
    by the thread count, so any `num_threads` gives identical bits.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", Advances in Neural
           Information Processing Systems 30, 2017.
    .. [2] M. Milakov and N. Gimelshein, "Online normalizer calculation for
           softmax", arXiv:1805.02867, 2018.
    .. [3] T. Dao, "FlashAttention-2: Faster attention with better
           parallelism and work partitioning", ICLR 2024.
    .. [4] J. Ainslie et al., "GQA: Training generalized multi-query
           transformer models from multi-head checkpoints", EMNLP 2023.
    .. [5] I. Beltagy, M. E. Peters and A. Cohan, "Longformer: The
           long-document transformer", arXiv:2004.05150, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> rng = np.random.default_rng(0)
    >>> q = rng.standard_normal((2, 4, 16, 8)).astype(np.float32)  # B H L E
    >>> kv = rng.standard_normal((2, 4, 32, 8)).astype(np.float32)
    >>> cattn.scaled_dot_product_attention(q, kv, kv).shape  # cross (QVV)
    (2, 4, 16, 8)
    >>> out, lse = cattn.scaled_dot_product_attention(
    ...     q, kv, kv, is_causal="bottom_right", return_lse=True)
    >>> lse.shape
    (2, 4, 16)
    >>> k1 = kv[:, :1]                     # one key/value head (MQA)
    >>> cattn.scaled_dot_product_attention(q, k1, k1, enable_gqa=True).shape
    (2, 4, 16, 8)
    """
    func = "scaled_dot_product_attention"
    (q, k, v), dtype, batch, group = _operands(
        func, ("query", "key", "value"), (query, key, value), enable_gqa)
    nthreads = _checks.resolve_threads(num_threads, func)
    causal = _causal(is_causal, func)
    window = _window(window, func)
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    scale = _scale(scale, E, func)
    topk = _top_k(top_k, S, func)
    out_shape = batch + (L, Ev)
    if attn_mask is not None:
        mask, kind = _mask(attn_mask, dtype, batch + (L, S), func)
    else:
        mask, kind = None, _attention.MaskKind.MASK_NONE

    overlap = out is not None and _checks.check_out(
        out, out_shape, dtype, func, [x for x in (q, k, v, mask)
                                      if x is not None])
    if out is None or overlap or _checks.element_strides(out) is None:
        result = np.empty(out_shape, dtype=dtype)
    else:
        result = out
    lse = np.empty(batch + (L,), dtype=dtype) if return_lse else None

    o = result
    if group > 1:
        q, o = _split_heads(q, group), _split_heads(o, group)
        k, v = _expand_kv(k), _expand_kv(v)
        if mask is not None:
            mask = _split_heads(mask, group)
        batch = o.shape[:-2]
    if o.size or (lse is not None and lse.size):
        # Walkable operands (copies only of odd layouts), their strides and
        # batch offsets: _layout.operand, compiled.
        q, rs_q, cs_q, off_q = _layout.operand(q, batch)
        k, rs_k, cs_k, off_k = _layout.operand(k, batch)
        v, rs_v, cs_v, off_v = _layout.operand(v, batch)
        o_walk, rs_o, cs_o, off_o = _layout.operand(o, batch)
        if o_walk is not o:  # `result` is made walkable above
            raise AssertionError("cattn internal error: output copied")
        if mask is not None:
            mask, rs_m, cs_m, off_m = _layout.operand(mask, batch)
            if kind == _attention.MaskKind.MASK_BOOL:
                mask = mask.view(np.uint8)
        else:
            rs_m, cs_m = 0, 0
            off_m = np.zeros(off_o.shape[0], dtype=np.int64)
        # A few queries (decoding): stream K and V rows instead of packing
        # tiles.  Chosen from shapes and layouts, never from the threads.
        decode = L <= _attention.DECODE_MAX_L and (E <= 1 or (
            cs_q == 1 and cs_k == 1)) and (Ev <= 1 or cs_v == 1)
        thr = thr_idx = None
        if topk:   # select first; the tiled kernel recomputes equal scores
            decode = False
            thr, thr_idx = _select(q, k, mask, off_q, off_k, off_m,
                                   (rs_q, cs_q, rs_k, cs_k, rs_m, cs_m),
                                   (L, S, E), kind, causal, window, scale,
                                   topk, nthreads)
        _attention.attention(
            q, k, v, mask, o,
            lse.reshape(-1, L) if lse is not None else None,
            off_q, off_k, off_v, off_m, off_o,
            (rs_q, cs_q, rs_k, cs_k, rs_v, cs_v, rs_o, cs_o, rs_m, cs_m),
            (L, S, E, Ev), kind, causal is not None,
            S - L if causal == "bottom_right" else 0,
            window[0] if window else None, window[1] if window else None,
            scale, decode, nthreads, thr, thr_idx)
    if out is not None and result is not out:
        out[...] = result
        result = out
    if lse is not None:
        return result, lse
    return result


def self_attention(x: ArrayLike, attn_mask: ArrayLike | None = None, *,
                   is_causal: Causal = False, scale: float | None = None,
                   window: Window = None, num_threads: Threads = None,
                   out: FloatArray | None = None) -> FloatArray:
    """Self-attention with no projections ("VVV"): query = key = value = x.

    The VVV case: the input is its own query, key and value, with no
    projections, so each row attends most to itself and to rows like it.

    Parameters
    ----------
    x : array_like, shape (..., L, E)
        The sequence, float32 or float64.
    attn_mask : array_like, optional
        Bool (True = may attend) or float (added), broadcastable to
        (..., L, L).
    is_causal : bool or {"top_left", "bottom_right"}, optional
        Hide future positions (both alignments agree when L = S).
    scale : float, optional
        Default ``1 / sqrt(E)``.
    window : (int or None, int or None), optional
        Local attention window, as in :func:`scaled_dot_product_attention`.
    num_threads : int, optional
        Number of OpenMP threads; the result does not depend on it.
    out : ndarray, optional
        Array of shape (..., L, E) to write to.

    Returns
    -------
    out : ndarray, shape (..., L, E)
        ``softmax(x xᵀ · scale + mask) x``.

    Raises
    ------
    TypeError
        As :func:`scaled_dot_product_attention`.
    ValueError
        As :func:`scaled_dot_product_attention`.

    See Also
    --------
    scaled_dot_product_attention

    Notes
    -----
    A thin call of :func:`scaled_dot_product_attention` with the same array
    three times; nothing is copied.  Without learned projections (as in
    [1]_) each row scores highest against itself and its near copies.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", Advances in Neural
           Information Processing Systems 30, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> x = np.eye(3)
    >>> cattn.self_attention(x, scale=100.0).round(6)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    >>> cattn.self_attention(x, is_causal=True, scale=0.0)[2]
    array([0.33333333, 0.33333333, 0.33333333])
    """
    return scaled_dot_product_attention(
        x, x, x, attn_mask, is_causal=is_causal, scale=scale, window=window,
        num_threads=num_threads, out=out)


def attention_weights(query: ArrayLike, key: ArrayLike,
                      attn_mask: ArrayLike | None = None, *,
                      is_causal: Causal = False, scale: float | None = None,
                      enable_gqa: bool = False, window: Window = None,
                      num_threads: Threads = None) -> FloatArray:
    """The attention weights ``softmax(query · keyᵀ · scale + mask)``.

    For inspection and plots: unlike :func:`scaled_dot_product_attention`
    this builds the (..., L, S) matrix, by design.

    Parameters
    ----------
    query : array_like, shape (..., L, E)
        Queries, float32 or float64.
    key : array_like, shape (..., S, E)
        Keys.
    attn_mask : array_like, optional
        Bool (True = may attend) or float (added), broadcastable to
        (..., L, S).
    is_causal : bool or {"top_left", "bottom_right"}, optional
        As in :func:`scaled_dot_product_attention`.
    scale : float, optional
        Default ``1 / sqrt(E)``.
    enable_gqa : bool, optional
        Grouped-query attention, as in :func:`scaled_dot_product_attention`.
    window : (int or None, int or None), optional
        Local attention window.
    num_threads : int, optional
        Number of OpenMP threads.

    Returns
    -------
    weights : ndarray, shape (..., L, S)
        Each row sums to 1, or is all 0 if the row sees no key.

    Raises
    ------
    TypeError
        As :func:`scaled_dot_product_attention`.
    ValueError
        As :func:`scaled_dot_product_attention`.

    See Also
    --------
    scaled_dot_product_attention

    Notes
    -----
    ``attention_weights(q, k, ...) @ v`` equals
    ``scaled_dot_product_attention(q, k, v, ...)`` up to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> q = k = np.zeros((3, 2))
    >>> cattn.attention_weights(q, k, is_causal=True).round(4)
    array([[1.    , 0.    , 0.    ],
           [0.5   , 0.5   , 0.    ],
           [0.3333, 0.3333, 0.3333]])
    """
    func = "attention_weights"
    (q, k), dtype, batch, group = _operands(func, ("query", "key"),
                                            (query, key), enable_gqa)
    nthreads = _checks.resolve_threads(num_threads, func)
    causal = _causal(is_causal, func)
    window = _window(window, func)
    L, E, S = q.shape[-2], q.shape[-1], k.shape[-2]
    scale = _scale(scale, E, func)
    if group > 1:
        q, k = _split_heads(q, group), _expand_kv(k)
    scores = matmul(q, np.swapaxes(k, -1, -2), num_threads=nthreads)
    scores = scores.reshape(batch + (L, S))
    scores *= dtype.type(scale)
    if attn_mask is not None:
        mask, kind = _mask(attn_mask, dtype, batch + (L, S), func)
        if kind == _attention.MaskKind.MASK_BOOL:
            scores[~mask] = -np.inf
        else:
            scores += mask
    hidden = ~_reference.visible(L, S, causal, window)
    if hidden.any():
        scores[..., hidden] = -np.inf
    dead = np.all(scores == -np.inf, axis=-1)
    weights = softmax(scores, axis=-1, out=scores, num_threads=nthreads)
    weights[dead] = 0
    return weights



@overload
def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., return_indices: Literal[False] = ...,
        num_threads: Threads = ...,
        out: FloatArray | None = ...) -> FloatArray: ...


@overload
def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., return_indices: Literal[True],
        num_threads: Threads = ..., out: FloatArray | None = ...
) -> tuple[FloatArray, NDArray[np.int64]]: ...


def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, return_indices: bool = False,
        num_threads: Threads = None, out: FloatArray | None = None,
) -> FloatArray | tuple[FloatArray, NDArray[np.int64]]:
    """Hard attention: each query takes the value of its best-matching key.

    The dictionary lookup in its hard form: where
    :func:`scaled_dot_product_attention` averages the values with softmax
    weights, this returns, for each query row, the value row of the visible
    key with the highest score ``scale · q·k + mask`` (an argmax instead of
    a softmax).

    Parameters
    ----------
    query : array_like, shape (..., L, E)
        Queries, float32 or float64.
    key : array_like, shape (..., S, E)
        Keys.
    value : array_like, shape (..., S, Ev)
        Values; leading dimensions of the three broadcast.
    attn_mask : array_like, optional
        Bool (True = may attend) or float (added to the scaled scores),
        broadcastable to (..., L, S), as in
        :func:`scaled_dot_product_attention`.
    is_causal : bool or {"top_left", "bottom_right"}, optional
        As in :func:`scaled_dot_product_attention`.
    scale : float, optional
        Default ``1 / sqrt(E)``.  Only its sign and the float mask make it
        matter: a positive scale does not change which key is best.
    enable_gqa : bool, optional
        Grouped-query attention, as in :func:`scaled_dot_product_attention`.
    window : (int or None, int or None), optional
        Local attention window, as in :func:`scaled_dot_product_attention`.
    return_indices : bool, optional
        Also return the index of the chosen key of each query row.
    num_threads : int, optional
        Number of OpenMP threads (default: ``OMP_NUM_THREADS``, a
        threadpoolctl limit, or one per core).  The result does not depend
        on it.
    out : ndarray, optional
        Array of shape (..., L, Ev) and the result's dtype to write to.

    Returns
    -------
    out : ndarray, shape (..., L, Ev)
        The chosen value rows; zeros for a query that sees no key.
    indices : ndarray of int64, shape (..., L)
        Only with ``return_indices=True``: the chosen key of each query
        row, or -1 where it sees none.

    Raises
    ------
    TypeError
        As :func:`scaled_dot_product_attention`.
    ValueError
        As :func:`scaled_dot_product_attention`.

    See Also
    --------
    scaled_dot_product_attention : The soft form; ``top_k=1`` gives the
        same output.

    Notes
    -----
    Ties go to the lowest key index; a NaN score ranks above every number
    (as :func:`numpy.argmax`); a key whose score is -inf counts as hidden.
    The scores are computed tile by tile with the same products as
    :func:`scaled_dot_product_attention`, so ``top_k=1`` there picks the
    same key; memory is O(L + S) per head, no L x S matrix.  Each query
    block is one work item, so the result does not depend on
    `num_threads`.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> keys = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> values = np.array([[10.0], [20.0], [30.0]])
    >>> query = np.array([[0.9, 0.1], [0.0, 1.0], [0.6, 0.6]])
    >>> out, idx = cattn.hard_attention(query, keys, values,
    ...                                 return_indices=True)
    >>> idx
    array([0, 1, 2])
    >>> out[:, 0]
    array([10., 20., 30.])
    >>> cattn.hard_attention(query, keys, values, is_causal=True)[:, 0]
    array([10., 20., 30.])
    """
    func = "hard_attention"
    (q, k, v), dtype, batch, group = _operands(
        func, ("query", "key", "value"), (query, key, value), enable_gqa)
    nthreads = _checks.resolve_threads(num_threads, func)
    causal = _causal(is_causal, func)
    bounds = _window(window, func)
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    scale_f = _scale(scale, E, func)
    mask: NDArray[Any] | None = None
    kind: int = _attention.MaskKind.MASK_NONE
    if attn_mask is not None:
        mask, kind = _mask(attn_mask, dtype, batch + (L, S), func)
    if out is not None:
        _checks.check_out(out, batch + (L, Ev), dtype, func, [])
    if group > 1:
        q, k, v = _split_heads(q, group), _expand_kv(k), _expand_kv(v)
        if mask is not None:
            mask = _split_heads(mask, group)
    items = batch[:-1] + (batch[-1] // group, group) if group > 1 else batch
    idx = np.full(items + (L,), -1, dtype=np.int64)
    if idx.size and S:
        q, rs_q, cs_q, off_q = _layout.operand(q, items)
        k, rs_k, cs_k, off_k = _layout.operand(k, items)
        if mask is not None:
            mask, rs_m, cs_m, off_m = _layout.operand(mask, items)
            if kind == _attention.MaskKind.MASK_BOOL:
                mask = mask.view(np.uint8)
        else:
            rs_m, cs_m, off_m = 0, 0, np.zeros(off_q.shape[0], np.int64)
        _, rows = _select(q, k, mask, off_q, off_k, off_m,
                          (rs_q, cs_q, rs_k, cs_k, rs_m, cs_m), (L, S, E),
                          kind, causal, bounds, scale_f, 1, nthreads)
        idx = rows.reshape(idx.shape)
    # Gather the chosen value rows (a view of v broadcast over the items).
    values = np.broadcast_to(v, items + (S, Ev)) if S else np.zeros(
        items + (1, Ev), dtype)
    chosen = np.take_along_axis(values, np.maximum(idx, 0)[..., np.newaxis],
                                axis=-2)
    chosen[idx < 0] = 0
    result = chosen.reshape(batch + (L, Ev))
    indices = idx.reshape(batch + (L,))
    if out is not None:
        out[...] = result
        result = out
    if return_indices:
        return result, indices
    return result
