"""Gradients of scaled-dot-product attention, for training from NumPy.

Validation and the reduction of broadcast gradients here; the tiled
backward kernel (recomputing P from the saved lse, FlashAttention-2 style,
deterministic) in ``_kernels/_attention_grad.pyx``;
``_reference.scaled_dot_product_attention_grad`` is the float64 oracle.
"""
from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from . import _checks, _frame
from ._kernels import _attention_grad
from ._typing import ArrayLike, Causal, FloatArray, Threads, Window

_FUNC = "scaled_dot_product_attention_grad"


def _expect_shape(arr: FloatArray, name: str, shape: tuple[int, ...],
                  what: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{_FUNC}: {name} must have shape {what} = {shape} "
                         f"(as the forward returned it), got {arr.shape}")


def _query_items(x: NDArray[Any], group: int) -> NDArray[Any]:
    """(..., H, L, c) as (..., H // group, group, L, c): query heads as
    (kv head, member of its group); group 1 adds a unit axis."""
    return (_frame.split_heads(x, group) if group > 1
            else x[..., np.newaxis, :, :])


@overload
def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, out: ArrayLike, lse: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., need_mask_grad: Literal[False] = ...,
        num_threads: Threads = ..., softcap: float | None = ...,
        sinks: None = ..., alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...,
        indices: ArrayLike | None = ..., chunk_size: int | None = ...,
        prefix: int | None = ..., block_mask: ArrayLike | None = ...,
        block_size: int | tuple[int, int] | None = ...
) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@overload
def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, out: ArrayLike, lse: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., need_mask_grad: bool = ...,
        num_threads: Threads = ..., softcap: float | None = ...,
        sinks: ArrayLike | None = ..., alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...,
        indices: ArrayLike | None = ..., chunk_size: int | None = ...,
        prefix: int | None = ..., block_mask: ArrayLike | None = ...,
        block_size: int | tuple[int, int] | None = ...
) -> tuple[FloatArray, ...]: ...


def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, out: ArrayLike, lse: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, need_mask_grad: bool = False,
        num_threads: Threads = None, softcap: float | None = None,
        sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None,
        query_lengths: ArrayLike | None = None,
        key_lengths: ArrayLike | None = None,
        indices: ArrayLike | None = None, chunk_size: int | None = None,
        prefix: int | None = None, block_mask: ArrayLike | None = None,
        block_size: int | tuple[int, int] | None = None
) -> tuple[FloatArray, ...]:
    """Gradients of :func:`scaled_dot_product_attention` (its backward).

    Given ``grad_out``, the gradient of a loss with respect to the output
    ``out = scaled_dot_product_attention(query, key, value, ...)``, returns
    the gradients of that loss with respect to query, key and value (and a
    float `attn_mask` if asked), reusing the forward's `out` and `lse`
    (``return_lse=True``) instead of storing the L x S weights.

    Parameters
    ----------
    grad_out : array_like, shape (..., L, Ev)
        Gradient with respect to the forward's output.
    query, key, value : array_like
        The forward's inputs, float32, float64, float16 or bfloat16
        (mixed dtypes promote as in the forward), shapes (..., L, E),
        (..., S, E), (..., S, Ev) with broadcastable batch dimensions.
    out : array_like, shape (..., L, Ev)
        The forward's output.
    lse : array_like, shape (..., L)
        The forward's log-sum-exp (``return_lse=True``), same arguments
        (float32 for 16-bit inputs).
    attn_mask : array_like, optional
        The forward's mask: bool (True = may attend) or float (added to the
        scores), broadcastable to (..., L, S).
    is_causal : bool or {"top_left", "bottom_right"}, optional
        As in the forward.
    scale : float, optional
        As in the forward; default ``1 / sqrt(E)``.
    enable_gqa : bool, optional
        As in the forward; the gradients of a key/value head shared by
        several query heads are summed over them.
    window : (int or None, int or None), optional
        As in the forward.
    need_mask_grad : bool, optional
        Also return the gradient of a float `attn_mask` (a ValueError for
        no mask or a bool one).  This one is (..., L, S) by nature: it is
        built in full, then summed to the mask's shape.
    num_threads : int, optional
        Number of OpenMP threads (default: ``OMP_NUM_THREADS``, a
        threadpoolctl limit, or one per core, shared with the cattn calls
        running in other Python threads).  The result does not depend on
        it.
    softcap, sinks, alibi_slopes, query_lengths, key_lengths : optional
        As in the forward.  The sinks are an input with a gradient of
        their own (returned last); the ALiBi slopes and the lengths are
        constants.  Past a row's lengths every gradient is 0.
    indices : array_like of int, optional
        As in the forward (sparse attention's key lists, constants): the
        gradients flow only through the keys a row lists and may see,
        computed row by row over them in O(L·k·E), nothing L x S built
        but a float mask's own gradient.
    chunk_size, prefix : int, optional
        As in the forward (chunked attention; a prefix every query sees):
        the tiles they hide are never visited.
    block_mask : array_like of bool, optional
        As in the forward (which blocks of queries see which blocks of
        keys, `block_size` each): the hidden blocks are never visited.
    block_size : int or (int, int), optional
        As in the forward (default 128).

    Returns
    -------
    grad_query, grad_key, grad_value : ndarray
        Same shapes as `query`, `key` and `value`, in the common dtype of
        all inputs (16-bit inputs: computed in float32 and rounded once).
        A gradient of a broadcast input is summed over the dimensions it
        was broadcast along, as autograd does.
    grad_attn_mask : ndarray
        Only with ``need_mask_grad=True``: the shape of `attn_mask`.
    grad_sinks : ndarray
        Only with `sinks`: float64 of the shape of `sinks`,
        ``-Σ_i exp(sink - lse_i) · D_i`` summed over the rows (and any
        axis the sinks were broadcast along).

    Raises
    ------
    TypeError
        If an array is not float32/float64 (the mask may be bool), or
        `scale` is not a real number.
    ValueError
        If a shape does not match the forward's (`out`, `grad_out`: batch
        + (L, Ev); `lse`: batch + (L,)), or any argument is invalid as in
        :func:`scaled_dot_product_attention`, or `need_mask_grad` is True
        without a float mask.

    See Also
    --------
    scaled_dot_product_attention : The forward, with ``return_lse=True``.

    Notes
    -----
    With ``S = scale · Q Kᵀ + mask`` and ``P = exp(S - lse)`` (the weights),
    the kernel computes, tile by tile and never for all of L x S at once:
    ``D = rowsum(dO ∘ O)``, ``dV = Pᵀ dO``, ``dP = dO Vᵀ``,
    ``dS = P ∘ (dP - D)``, ``dQ = scale · dS K``, ``dK = scale · dSᵀ Q``
    (the backward of FlashAttention-2 [1]_).  A query row that saw no key
    (lse = -inf) gets zero gradients and passes none to the keys.  With
    `softcap` the scores are recomputed capped and dS is multiplied by the
    cap's derivative ``1 - tanh²`` before dQ and dK (the mask's gradient
    is dS before it); `lse` then includes the sinks, so P is exact.

    Memory: packed copies of the inputs of the heads in flight and small
    per-thread tiles, O(L + S) per head.  Deterministic: every gradient
    element is a sum in a fixed order (no atomics), so the bits do not
    depend on `num_threads`; many heads run one per thread, few heads are
    split by key blocks and query blocks, with the same sums.

    The saved `out` and `lse` must come from the forward with the same
    inputs and arguments; the gradients are those of that forward, not of
    a recomputation in another dtype.

    References
    ----------
    .. [1] T. Dao, "FlashAttention-2: Faster attention with better
           parallelism and work partitioning", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = (rng.standard_normal((2, 4, 8, 16)) for _ in range(3))
    >>> out, lse = cattn.scaled_dot_product_attention(q, k, v, is_causal=True,
    ...                                               return_lse=True)
    >>> grad_out = np.ones_like(out)          # loss = out.sum()
    >>> dq, dk, dv = cattn.scaled_dot_product_attention_grad(
    ...     grad_out, q, k, v, out, lse, is_causal=True)
    >>> dq.shape, dk.shape, dv.shape
    ((2, 4, 8, 16), (2, 4, 8, 16), (2, 4, 8, 16))
    >>> bool(np.allclose(dv.sum(axis=-2), 8))  # 8 queries, weights sum to 1
    True

    With sparse attention's key lists, the gradients reach only the keys
    listed (each query here lists key 0 and itself):

    >>> idx = np.stack([np.zeros(8, int), np.arange(8)], axis=-1)
    >>> idx[0, 1] = -1                                # query 0: key 0 once
    >>> out, lse = cattn.scaled_dot_product_attention(
    ...     q, k, v, indices=idx, return_lse=True)
    >>> dq, dk, dv = cattn.scaled_dot_product_attention_grad(
    ...     grad_out, q, k, v, out, lse, indices=idx)
    >>> dv.shape
    (2, 4, 8, 16)

    With a block mask (here: each block of 4 queries sees its own block of
    keys), the keys of hidden blocks get no gradient from those queries:

    >>> blocks = np.eye(2, dtype=bool)
    >>> out, lse = cattn.scaled_dot_product_attention(
    ...     q, k, v, block_mask=blocks, block_size=4, return_lse=True)
    >>> dq, dk, dv = cattn.scaled_dot_product_attention_grad(
    ...     grad_out, q, k, v, out, lse, block_mask=blocks, block_size=4)
    >>> bool(np.allclose(dv[..., :4, :].sum(axis=-2), 4))  # 4 queries each
    True
    """
    (q, k, v, go, o), mask, call = _frame.describe(
        _FUNC, query, key, value, attn_mask, is_causal=is_causal,
        scale=scale, enable_gqa=enable_gqa, window=window,
        num_threads=num_threads, softcap=softcap, sinks=sinks,
        alibi_slopes=alibi_slopes, query_lengths=query_lengths,
        key_lengths=key_lengths, extra=(("grad_out", grad_out), ("out", out)),
        chunk_size=chunk_size, prefix=prefix)
    # lse is the forward's, in its compute dtype (float32 for 16-bit).
    lse_in = _checks.as_float_array(lse, "lse", _FUNC).astype(
        call.compute, copy=False)
    batch, group, dtype = call.batch, call.group, call.compute
    L, E, S, Ev = call.L, call.E, call.S, call.Ev
    _expect_shape(o, "out", batch + (L, Ev), "batch + (L, Ev)")
    _expect_shape(go, "grad_out", batch + (L, Ev), "batch + (L, Ev)")
    _expect_shape(lse_in, "lse", batch + (L,), "batch + (L,)")
    kind = call.mask_kind
    mask_shape = np.shape(attn_mask) if attn_mask is not None else ()
    if need_mask_grad and kind != _frame.MASK_ADD:
        raise ValueError(f"{_FUNC}: need_mask_grad=True needs a float "
                         f"attn_mask, got "
                         f"{'None' if mask is None else 'a bool mask'}")

    blocks = None
    if block_mask is not None or block_size is not None:
        blocks = _frame.block_mask_of(block_mask, block_size, call)
        if mask is not None or indices is not None:
            mask, call = _frame.fold_blocks(blocks, mask, call)
            blocks = None

    # Work items: kv heads (kv_batch) x the G query heads sharing each.
    kv_batch = batch[:-1] + (batch[-1] // group,) if group > 1 else batch
    items = kv_batch + (group,)
    dq = np.zeros(items + (L, E), dtype)
    dk = np.zeros(kv_batch + (S, E), dtype)
    dv = np.zeros(kv_batch + (S, Ev), dtype)
    dmask = np.zeros(items + (L, S), dtype) if need_mask_grad else None
    if indices is not None:
        sel = _frame.listed(indices, call)
        # The row path reads rows where they lie: unit-stride rows.
        q, k, v, o, go = (_frame.unit_rows(x) for x in (q, k, v, o, go))
    if dq.size or dk.size or dv.size:
        args = (call, kv_batch, _query_items(q, group), k, v,
                _query_items(o, group), _query_items(go, group),
                np.ascontiguousarray(lse_in),
                None if mask is None else _query_items(mask, group),
                dq, dk, dv, dmask)
        if indices is None:
            # The mask's empty tiles add exact zeros unless grad_out holds
            # an inf or NaN (0·NaN in dV = Pᵀ dO) or a float mask's -inf
            # meets a score that is not finite: only then are they visited.
            table = None
            if blocks is not None:      # a bool table's hidden tiles
                table = (_query_items(blocks[0].view(np.uint8), group),
                         blocks[1], blocks[2])
            _attention_grad.attention_grad(
                *args, _frame._SCHEDULES.get(),
                (blocks is not None or _frame.skip_empty_tiles(
                    call, mask, q, k)) and bool(np.isfinite(go).all()),
                table)
        else:
            _attention_grad.sparse_attention_grad(
                *args, sel if group > 1 else sel[..., np.newaxis, :, :])
    grads: tuple[FloatArray, ...] = (
        _frame.sum_to_shape(dq.reshape(batch + (L, E)), q.shape),
        _frame.sum_to_shape(dk, k.shape), _frame.sum_to_shape(dv, v.shape))
    if call.dtype != dtype:          # 16-bit: rounded once, at the end
        grads = tuple(_checks.narrow(np.ascontiguousarray(g), call.dtype)
                      for g in grads)
    if dmask is not None:
        dm = _frame.sum_to_shape(dmask.reshape(batch + (L, S)), mask_shape)
        if _checks.is_storage16(np.asarray(attn_mask).dtype):
            dm = _checks.narrow(np.ascontiguousarray(dm), call.dtype)
        grads += (dm,)
    if sinks is not None:
        grads += (_sinks_grad(call, o, go, lse_in, np.shape(sinks)),)
    return grads


def _sinks_grad(call: _frame.Call, o: FloatArray, go: FloatArray,
                lse: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """d(loss)/d(sink) = -Σ_i P_sink,i · D_i over each item's rows, with
    P_sink,i = exp(sink - lse_i) (0 where the row saw nothing, lse = -inf)
    and D_i = dO_i · O_i, in float64, summed to the sinks' shape."""
    assert call.sinks is not None
    sink = call.sinks.reshape(call.batch)[..., np.newaxis]
    lse64 = lse.astype(np.float64)
    d = np.einsum("...i,...i->...", go.astype(np.float64),
                  o.astype(np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        # A row that saw nothing (or lies past its query length) has no
        # softmax, so whatever its grad_out holds adds nothing.
        terms = np.where(np.isneginf(lse64), 0.0,
                         np.exp(sink - lse64) * d)
    return _frame.sum_to_shape(-terms.sum(axis=-1), shape)
