"""The multi-head layer's forward, in the stages every runner of it shares.

``MultiHeadAttention.__call__`` and ``.backward`` run these on whole arrays,
``cattn.dask.multi_head_attention`` on each chunk of tokens (projections,
output) and on the lazy masks (their checks read dtypes and shapes only, so
Dask arrays stay lazy).  One place for each rule: a 16-bit layer's bias is
added to the float32 product and rounded once; a key-padding mask and an
attention mask become one mask in cattn's meaning; the layer's score options
are the attention's keywords.

Each function reads the layer's public state (weights, dtype, options) and
nothing else, so a runner outside ``nn`` needs no private attribute.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _checks, _frame
from .linalg import matmul
from ._typing import FloatArray, Threads

if TYPE_CHECKING:
    from .nn import MultiHeadAttention

FUNC = "MultiHeadAttention"


def score_options(layer: MultiHeadAttention) -> dict[str, Any]:
    """The layer's score options, as scaled_dot_product_attention's
    keyword arguments."""
    return {"softcap": layer.softcap, "sinks": layer.sinks,
            "alibi_slopes": layer.alibi_slopes}


def affine(layer: MultiHeadAttention, x: FloatArray, w: FloatArray,
           b: FloatArray | None, num_threads: Threads = None) -> FloatArray:
    """x Wᵀ + b in the layer's dtype: a 16-bit layer adds the bias to the
    float32 product and rounds once."""
    compute = _checks.compute_dtype(layer.dtype)
    if compute == layer.dtype:
        out = matmul(x, w.T, num_threads=num_threads)
        if b is not None:
            out += b
        return out
    wide = matmul(x, w.T, num_threads=num_threads,
                  out=np.empty(x.shape[:-1] + (w.shape[0],), compute))
    if b is not None:
        wide += b.astype(compute)
    return _checks.narrow(wide, layer.dtype)


def project(layer: MultiHeadAttention, x: FloatArray, w: FloatArray,
            bias_slice: slice, num_threads: Threads = None) -> FloatArray:
    """An input projection: x Wᵀ + the stacked bias's slice for W."""
    return affine(layer, x, w, None if layer.in_proj_bias is None
                  else layer.in_proj_bias[bias_slice], num_threads)


def output(layer: MultiHeadAttention, o: FloatArray,
           num_threads: Threads = None) -> FloatArray:
    """The output projection of the heads' outputs o (B, L, E)."""
    return affine(layer, o, layer.out_proj_weight, layer.out_proj_bias,
                  num_threads)


def mask(layer: MultiHeadAttention, key_padding_mask: Any, attn_mask: Any,
         batch: int, L: int, S: int, func: str = FUNC,
         asarray: Callable[[Any], Any] = np.asarray) -> Any:
    """One mask in cattn's meaning, shape broadcastable to (B, H, L, S), from
    torch's two (`asarray`: NumPy's or Dask's; `func`: the name the user
    called)."""
    out = None
    if attn_mask is None and key_padding_mask is None:
        return out
    compute = _checks.compute_dtype(layer.dtype)
    if attn_mask is not None:
        out = asarray(attn_mask)
        if _frame.mask_kind(out.dtype, func, layer.dtype) == _frame.MASK_ADD:
            out = out.astype(compute)
        if out.ndim == 3:  # (B, L, S): the same for every head
            out = out[:, np.newaxis]
    if key_padding_mask is not None:
        kpm = asarray(key_padding_mask)
        if kpm.dtype != np.bool_:
            raise TypeError(f"{func}: key_padding_mask has dtype {kpm.dtype}"
                            f"; expected bool (True = padding, ignored)")
        if kpm.shape != (batch, S):
            raise ValueError(f"{func}: key_padding_mask has shape "
                             f"{kpm.shape}; expected (batch, S) = "
                             f"{(batch, S)}")
        out = _frame.hide(out, ~kpm[:, np.newaxis, np.newaxis, :], compute)
    return out
