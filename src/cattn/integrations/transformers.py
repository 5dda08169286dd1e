"""cattn as an attention backend of Hugging Face transformers models.

``register()`` adds ``attn_implementation="cattn"`` to transformers'
``AttentionInterface``; a model loaded or built with it runs every
attention layer on :func:`cattn.scaled_dot_product_attention` (and, when
gradients are needed, its backward), with transformers' conventions mapped
onto cattn's arguments:

- tensors (B, H, L, E) from torch without copies: float32, float64 and
  float16 through NumPy views, bfloat16 through its 16-bit pattern viewed
  as ``ml_dtypes.bfloat16``; grouped-query heads stay unexpanded;
- ``attention_mask``: a 4-D bool mask (True = attend, as torch's SDPA) or
  an additive float mask, sliced to the keys; without one, causality is
  inferred as transformers' ``sdpa`` backend does (``module.is_causal``
  unless ``is_causal`` is passed, and never for a single query);
- ``scaling`` -> ``scale``, ``softcap`` (Gemma 2), ``s_aux`` -> ``sinks``
  (gpt-oss), ``sliding_window`` -> a causal window when no mask carries
  it, ``position_bias`` (T5-style) added to the mask as sdpa does;
- the output comes back (B, L, H, E), as transformers expects;
- the kernels run on as many threads as torch's ``get_num_threads()``.

Refused with a clear error: attention dropout > 0 (eager would drop
weights at random), ``output_attentions``, a learned ``position_bias``
in training, and any keyword argument that is neither mapped nor listed
in ``IGNORED_KWARGS`` (bookkeeping that does not change the math).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..attention import scaled_dot_product_attention
from ..attention_grad import scaled_dot_product_attention_grad

__all__ = ["register", "attention_forward"]

NAME = "cattn"
_FUNC = "cattn.integrations.transformers"


def _torch() -> Any:
    import torch  # type: ignore[import-not-found, unused-ignore]
    return torch


class _Dtypes:
    """torch dtypes read in place, found on first use (torch imported
    then): the conversion runs five times per attention call, so it keeps
    to dict look-ups."""

    plain: Any = None            # {torch dtype: None} viewed by .numpy()
    bf16: Any = None             # (torch.bfloat16, torch.int16, numpy dtype)

    @classmethod
    def load(cls) -> None:
        import ml_dtypes
        torch = _torch()
        cls.plain = dict.fromkeys((torch.float32, torch.float64,
                                   torch.float16, torch.bool))
        cls.bf16 = (torch.bfloat16, torch.int16,
                    np.dtype(ml_dtypes.bfloat16))


def _to_numpy(t: Any) -> Any:
    """A NumPy view of a CPU tensor (no copy), bfloat16 through its bits."""
    if _Dtypes.plain is None:
        _Dtypes.load()
    if not t.is_cpu:
        raise ValueError(f"{_FUNC}: cattn runs on the CPU; got a tensor on "
                         f"{t.device}")
    if t.requires_grad:
        t = t.detach()
    if t.dtype in _Dtypes.plain:
        return t.numpy()
    bf16, int16, np_bf16 = _Dtypes.bf16
    if t.dtype == bf16:
        return t.view(int16).numpy().view(np_bf16)
    raise TypeError(f"{_FUNC}: tensors of dtype {t.dtype} are not "
                    f"supported (float32, float64, float16, bfloat16)")


def _to_torch(a: Any, dtype: Any) -> Any:
    """A tensor of `dtype` sharing `a`'s memory (`_to_numpy`'s inverse)."""
    if _Dtypes.plain is None:
        _Dtypes.load()
    torch = _torch()
    if dtype == _Dtypes.bf16[0]:
        return torch.from_numpy(a.view(np.int16)).view(dtype)
    return torch.from_numpy(a)


# Keyword arguments transformers passes that leave the attention's math
# unchanged once the mask is made (its sdpa backend ignores them too):
# positions and cache bookkeeping, output switches, and FlashAttention's
# packed-sequence offsets (the sdpa mask function already turned packed
# position_ids into a block-diagonal mask).  Any other keyword with a value
# is refused, since it may change the math; a caller who knows a new one
# is harmless may add its name here.
IGNORED_KWARGS = {
    "position_ids", "cache_position", "use_cache", "past_key_values",
    "past_key_value", "layer_idx", "output_hidden_states",
    "output_router_logits", "return_dict", "num_items_in_batch",
    "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k",
    "seq_idx", "deterministic",
}
_MAPPED = {"scaling", "softcap", "s_aux", "sliding_window", "is_causal",
           "position_bias", "output_attentions", "indices"}


def _options(module: Any, query: Any, attention_mask: Any,
             kwargs: dict[str, Any]) -> dict[str, Any]:
    """cattn's keyword arguments for one call, from transformers'."""
    for key, value in kwargs.items():
        if (key not in _MAPPED and key not in IGNORED_KWARGS
                and value is not None and value is not False):
            raise ValueError(
                f"{_FUNC}: keyword argument {key!r} (got "
                f"{type(value).__name__}) is not one cattn knows; it may "
                f"change the attention, so it is refused (if it does not, "
                f"add its name to {_FUNC}.IGNORED_KWARGS)")
    if kwargs.get("output_attentions"):
        raise ValueError(f"{_FUNC}: output_attentions=True needs the L x S "
                         f"weights, which cattn does not build; use "
                         f"attn_implementation='eager' for them")
    q_len = query.shape[2]
    # The model's other layers run on torch's threads: attention takes as
    # many (torch.set_num_threads limits both).
    opts: dict[str, Any] = {"scale": kwargs.get("scaling"),
                            "softcap": kwargs.get("softcap"),
                            "num_threads": _torch().get_num_threads()}
    sinks = kwargs.get("s_aux")
    if sinks is not None:
        opts["sinks"] = _to_numpy(sinks).astype(np.float64)
    indices = kwargs.get("indices")
    if indices is not None:
        # DeepSeek Sparse Attention's selection, (B, L, k) integers shared
        # by every head: sparse attention, never a dense index mask.
        if not indices.is_cpu:
            raise ValueError(f"{_FUNC}: cattn runs on the CPU; got indices "
                             f"on {indices.device}")
        opts["indices"] = indices.numpy()[:, np.newaxis]
    is_causal = kwargs.get("is_causal")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    if attention_mask is None and q_len > 1 and is_causal:
        opts["is_causal"] = True                     # top-left, as sdpa
        window = kwargs.get("sliding_window")
        if window is not None:
            opts["window"] = (int(window) - 1, 0)
    return opts


def _mask(attention_mask: Any, kv_len: int, position_bias: Any) -> Any:
    """The mask as an array: transformers' 4-D mask cut to the keys, with a
    position bias (T5-style relative attention) added to it, as sdpa."""
    m = None
    if attention_mask is not None:
        if attention_mask.shape[-1] != kv_len:
            attention_mask = attention_mask[:, :, :, :kv_len]
        m = _to_numpy(attention_mask)
    if position_bias is None:
        return m
    if position_bias.requires_grad and _torch().is_grad_enabled():
        raise ValueError(f"{_FUNC}: a position_bias that needs a gradient "
                         f"(a learned relative attention bias in "
                         f"training) is not supported; use "
                         f"attn_implementation='eager' to train it")
    bias = _to_numpy(position_bias[:, :, :, :kv_len]).astype(np.float32)
    if m is None:
        return bias
    if m.dtype == np.bool_:
        return np.where(m, bias, np.float32(-np.inf))
    return bias + m.astype(np.float32)


def attention_forward(module: Any, query: Any, key: Any, value: Any,
                      attention_mask: Any, dropout: float = 0.0,
                      **kwargs: Any) -> tuple[Any, None]:
    """The attention function transformers calls (``AttentionInterface``).

    Maps one call of a model's attention layer onto
    :func:`cattn.scaled_dot_product_attention`: the tensors viewed in
    place, the mask cut to the keys, causality inferred as transformers'
    ``sdpa`` backend infers it, and the keyword arguments listed under
    `**kwargs` mapped or refused.

    Parameters
    ----------
    module : torch.nn.Module
        The attention layer (its ``is_causal`` is read when no mask comes).
    query, key, value : torch.Tensor
        (B, H, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev) on the CPU.
    attention_mask : torch.Tensor or None
        4-D, bool (True = attend) or additive float.
    dropout : float, optional
        Attention dropout rate: only 0 (the model in ``eval()`` mode, or
        ``attention_dropout=0``).
    **kwargs
        transformers' keyword arguments: scaling, softcap, s_aux,
        sliding_window, is_causal and position_bias are mapped; those in
        ``IGNORED_KWARGS`` (position_ids, use_cache, ...) do not change the
        math; any other with a value is refused.

    Returns
    -------
    out : torch.Tensor, shape (B, L, H, Ev)
    weights : None

    Raises
    ------
    ValueError
        For dropout > 0, output_attentions, a position_bias that needs a
        gradient, an unknown keyword argument, or a tensor not on the
        CPU.
    TypeError
        For an unsupported dtype.

    See Also
    --------
    register : Make this function ``attn_implementation="cattn"``.
    cattn.scaled_dot_product_attention : The kernel it calls.

    Notes
    -----
    With gradients enabled and an input that requires them, the call
    runs through a ``torch.autograd.Function`` whose backward is
    :func:`cattn.scaled_dot_product_attention_grad` (sinks included).

    Examples
    --------
    >>> import cattn.integrations.transformers as ct
    >>> ct.NAME
    'cattn'
    """
    torch = _torch()
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for t in (query, key, value, kwargs.get("s_aux")))
    if dropout:
        # Eager drops weights at random whenever it is given a rate (a
        # model in train() mode, with or without gradients); ignoring the
        # rate would be a silent different answer.
        raise ValueError(f"{_FUNC}: attention dropout ({dropout}) is not "
                         f"supported; call model.eval() or set the "
                         f"model's attention_dropout to 0")
    opts = _options(module, query, attention_mask, kwargs)
    mask = _mask(attention_mask, key.shape[2], kwargs.get("position_bias"))
    if needs_grad:
        out = _Attention.apply(query, key, value, kwargs.get("s_aux"), mask,
                               opts)
        return out.transpose(1, 2), None
    return _forward(query, key, value, mask, opts)[0].transpose(1, 2), None


def _forward(query: Any, key: Any, value: Any, mask: Any,
             opts: dict[str, Any], lse: bool = False) -> Any:
    """(out (B, H, L, Ev) tensor, lse array or None) on cattn's kernel."""
    torch = _torch()
    q, k, v = (_to_numpy(t) for t in (query, key, value))
    B, H, L = q.shape[:3]
    out = torch.empty((B, L, H, v.shape[-1]), dtype=query.dtype)
    o = _to_numpy(out).transpose(0, 2, 1, 3)
    gqa = k.shape[1] != H
    if lse:
        _, lse_arr = scaled_dot_product_attention(
            q, k, v, mask, enable_gqa=gqa, out=o, return_lse=True, **opts)
        return out.transpose(1, 2), lse_arr
    scaled_dot_product_attention(q, k, v, mask, enable_gqa=gqa, out=o,
                                 **opts)
    return out.transpose(1, 2), None


def _make_function() -> Any:
    torch = _torch()

    Function: Any = torch.autograd.Function

    class Attention(Function):  # type: ignore[misc]
        """Forward on cattn's kernel, backward on its gradient."""

        @staticmethod
        def forward(ctx: Any, query: Any, key: Any, value: Any, s_aux: Any,
                    mask: Any, opts: dict[str, Any]) -> Any:
            out, lse = _forward(query, key, value, mask, opts, lse=True)
            ctx.save_for_backward(query, key, value, out)
            ctx.lse, ctx.mask, ctx.opts = lse, mask, opts
            ctx.sinks_dtype = None if s_aux is None else s_aux.dtype
            return out

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            query, key, value, out = ctx.saved_tensors
            q, k, v, o = (_to_numpy(t) for t in (query, key, value, out))
            go = _to_numpy(grad_out.contiguous())
            grads = scaled_dot_product_attention_grad(
                go, q, k, v, o, ctx.lse, ctx.mask,
                enable_gqa=k.shape[1] != q.shape[1], **ctx.opts)
            dq, dk, dv = (_to_torch(np.ascontiguousarray(g), t.dtype)
                          for g, t in zip(grads[:3], (query, key, value)))
            dsinks = (None if ctx.sinks_dtype is None else torch.from_numpy(
                np.asarray(grads[3], dtype=np.float64)).to(ctx.sinks_dtype))
            return dq, dk, dv, dsinks, None, None

    return Attention


class _Lazy:
    """The autograd Function, made on first use (torch imported then)."""

    fn: Any = None

    def apply(self, *args: Any) -> Any:
        if _Lazy.fn is None:
            _Lazy.fn = _make_function()
        return _Lazy.fn.apply(*args)


_Attention = _Lazy()


def register(name: str = NAME) -> str:
    """Make ``attn_implementation=name`` (default ``"cattn"``) available in
    transformers.

    Parameters
    ----------
    name : str, optional
        The name to register under.

    Returns
    -------
    name : str

    Raises
    ------
    ImportError
        If transformers (or torch) is not installed.

    See Also
    --------
    attention_forward : The function registered.

    Notes
    -----
    Registering twice is harmless.  Models then take
    ``attn_implementation=name`` in ``from_pretrained`` / ``from_config``.
    The masks are made as for transformers' ``sdpa`` backend (its mask
    function is registered under the same name).

    Examples
    --------
    >>> import cattn.integrations.transformers as ct
    >>> callable(ct.register)
    True
    """
    from transformers import AttentionInterface  # type: ignore[import-not-found, unused-ignore]
    from transformers.masking_utils import (  # type: ignore[import-not-found, unused-ignore]
        AttentionMaskInterface, sdpa_mask)
    AttentionInterface.register(name, attention_forward)
    # The masks torch's SDPA takes (4-D bool, True = attend; None when the
    # causal flag suffices): without a mask function of its own, an
    # implementation gets no padding mask at all.
    AttentionMaskInterface.register(name, sdpa_mask)
    return name
