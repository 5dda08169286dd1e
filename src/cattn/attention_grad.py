"""Gradients of scaled-dot-product attention, for training from NumPy.

Validation and the reduction of broadcast gradients here; the tiled
backward kernel (recomputing P from the saved lse, FlashAttention-2 style,
deterministic) in ``_kernels/_attention_grad.pyx``;
``_reference.scaled_dot_product_attention_grad`` is the float64 oracle.
"""
from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

from . import _checks, _frame
from ._kernels import _attention_grad
from ._typing import ArrayLike, Causal, FloatArray, Threads, Window

_FUNC = "scaled_dot_product_attention_grad"


def _expect_shape(arr: FloatArray, name: str, shape: tuple[int, ...],
                  what: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{_FUNC}: {name} must have shape {what} = {shape} "
                         f"(as the forward returned it), got {arr.shape}")


def _query_items(x: FloatArray, group: int) -> FloatArray:
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
        num_threads: Threads = ...
) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@overload
def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, out: ArrayLike, lse: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., need_mask_grad: Literal[True],
        num_threads: Threads = ...
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]: ...


def scaled_dot_product_attention_grad(
        grad_out: ArrayLike, query: ArrayLike, key: ArrayLike,
        value: ArrayLike, out: ArrayLike, lse: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, need_mask_grad: bool = False,
        num_threads: Threads = None) -> tuple[FloatArray, ...]:
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
        threadpoolctl limit, or one per core).  The result does not depend
        on it.

    Returns
    -------
    grad_query, grad_key, grad_value : ndarray
        Same shapes as `query`, `key` and `value`, in the common dtype of
        all inputs (16-bit inputs: computed in float32 and rounded once).
        A gradient of a broadcast input is summed over the dimensions it
        was broadcast along, as autograd does.
    grad_attn_mask : ndarray
        Only with ``need_mask_grad=True``: the shape of `attn_mask`.

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
    (lse = -inf) gets zero gradients and passes none to the keys.

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
    """
    (q, k, v, go, o), mask, call = _frame.describe(
        _FUNC, query, key, value, attn_mask, is_causal=is_causal,
        scale=scale, enable_gqa=enable_gqa, window=window,
        num_threads=num_threads,
        extra=(("grad_out", grad_out), ("out", out)))
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

    # Work items: kv heads (kv_batch) x the G query heads sharing each.
    kv_batch = batch[:-1] + (batch[-1] // group,) if group > 1 else batch
    items = kv_batch + (group,)
    dq = np.zeros(items + (L, E), dtype)
    dk = np.zeros(kv_batch + (S, E), dtype)
    dv = np.zeros(kv_batch + (S, Ev), dtype)
    dmask = np.zeros(items + (L, S), dtype) if need_mask_grad else None
    if dq.size or dk.size or dv.size:
        _attention_grad.attention_grad(
            call, kv_batch, _query_items(q, group), k, v,
            _query_items(o, group), _query_items(go, group),
            np.ascontiguousarray(lse_in),
            None if mask is None else _query_items(mask, group),
            dq, dk, dv, dmask)
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
        return grads + (dm,)
    return grads
