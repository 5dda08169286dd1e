"""MultiHeadAttention: projections around the fused attention kernel.

Projections run on :func:`cattn.matmul` (one fused Q/K/V product for
self-attention), attention on :func:`cattn.scaled_dot_product_attention`;
heads are views, never Python loops.  Weights use the names and layouts of
``torch.nn.MultiheadAttention`` so a trained PyTorch layer loads directly.
``_reference.multi_head_attention`` is the plain-NumPy oracle.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from . import _checks, _frame, _layer
from .attention import (attention_weights, paged_attention,
                        scaled_dot_product_attention)
from .attention_grad import scaled_dot_product_attention_grad
from .linalg import matmul
from .quant import QuantizedArray
from ._caches import KVCache, PagedKVCache, ProjectedMemory, _cache_dtype
from ._typing import ArrayLike, Causal, DTypeLike, FloatArray, Threads

# Anything numpy.random.default_rng accepts as a seed.
Seed = int | np.random.Generator | np.random.SeedSequence | None

_FUNC = _layer.FUNC


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f"{_FUNC}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{_FUNC}: {name} must be >= 1, got {value}")
    return int(value)


class MultiHeadAttention:
    """Multi-head attention layer with learned projections.

    ``out = concat_h(attention(x_q Wq_h, x_k Wk_h, x_v Wv_h)) Woᵀ + bo``
    [1]_: self-attention (``key=None``), cross attention with K = V
    (``value=None``, the "QVV" case) or general QKV attention, batch-first like
    ``torch.nn.MultiheadAttention(batch_first=True)``.

    Parameters
    ----------
    embed_dim : int
        Model width E (query input and output features).
    num_heads : int
        Number of query heads; must divide `embed_dim`.
    num_kv_heads : int, optional
        Number of key/value heads (grouped-query attention [2]_); must divide
        `num_heads`.  Default: `num_heads`.
    kdim, vdim : int, optional
        Feature sizes of the key and value inputs (default `embed_dim`).
    bias : bool, optional
        Add biases to the input and output projections (default True).
    dtype : {numpy.float32, numpy.float64, numpy.float16, ml_dtypes.bfloat16}, optional
        Dtype of the weights, the activations and the output.  A 16-bit
        layer computes every product in float32 (bfloat16 on the CPU's
        bf16 instructions where it has them) and rounds each projection
        and the attention output once.
    rng : int or numpy.random.Generator, optional
        Seed or generator for the initial weights (SPEC 7).
    softcap : float, optional
        Cap every head's scores at ``softcap · tanh(s / softcap)`` (Gemma
        2), as :func:`scaled_dot_product_attention` does.
    sinks : bool, optional
        Give each head a learned attention-sink logit (gpt-oss): the
        attribute `sinks`, a weight like the others (``state_dict`` name
        ``"sinks"``, initially 0, with its gradient from :meth:`backward`).
    alibi_slopes : array_like, optional
        One fixed ALiBi slope per head, shape (num_heads,) (BLOOM, MPT;
        the paper's are ``2 ** (-8 * (h + 1) / num_heads)``).

    Attributes
    ----------
    in_proj_weight : ndarray or None
        (E + 2·Hkv·head_dim, E) stacked Q/K/V weights when
        ``kdim == vdim == embed_dim``, else None.
    q_proj_weight, k_proj_weight, v_proj_weight : ndarray
        The three projection weights (views of `in_proj_weight` when it
        exists), each (out_features, in_features).
    in_proj_bias : ndarray or None
        (E + 2·Hkv·head_dim,) biases, None without bias.
    out_proj_weight : ndarray
        (E, E) output projection.
    out_proj_bias : ndarray or None
        (E,) output bias.
    sinks : ndarray or None
        (num_heads,) attention-sink logits, with ``sinks=True``.
    softcap : float or None
    alibi_slopes : ndarray or None
        float64 (num_heads,).

    Raises
    ------
    TypeError
        If a size is not an int or `dtype` is not float32, float64,
        float16 or bfloat16.
    ValueError
        If a size is < 1, `num_heads` does not divide `embed_dim`, or
        `num_kv_heads` does not divide `num_heads`.

    See Also
    --------
    scaled_dot_product_attention

    Notes
    -----
    **Mask meanings — the most common source of bugs here.**
    `key_padding_mask` uses PyTorch's ``nn.MultiheadAttention`` meaning:
    ``True`` marks a padding key to IGNORE.  `attn_mask` uses cattn's
    meaning everywhere: bool ``True`` means MAY ATTEND (as
    ``torch.nn.functional.scaled_dot_product_attention``), a float mask is
    added to the scores.  A row with no visible key outputs 0 before the
    output projection (so the output bias alone).

    Initialisation follows ``torch.nn.MultiheadAttention``: Xavier-uniform
    projections, zero biases.  ``state_dict()`` / ``load_state_dict()`` use
    PyTorch's names and layouts, so
    ``mha.load_state_dict({k: v.numpy() for k, v in
    torch_mha.state_dict().items()})`` reproduces a PyTorch layer.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", Advances in Neural
           Information Processing Systems 30, 2017.
    .. [2] J. Ainslie et al., "GQA: Training generalized multi-query
           transformer models from multi-head checkpoints", EMNLP 2023.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> mha = cattn.MultiHeadAttention(16, 4, rng=0)
    >>> x = np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32)
    >>> mha(x).shape                                 # self-attention
    (2, 5, 16)
    >>> memory = np.ones((2, 7, 16), np.float32)
    >>> mha(x, memory).shape                         # cross attention (QVV)
    (2, 5, 16)
    >>> out, w = mha(x, need_weights=True)
    >>> w.shape, bool(np.allclose(w.sum(-1), 1))
    ((2, 5, 5), True)
    """

    embed_dim: int
    num_heads: int
    num_kv_heads: int
    kdim: int
    vdim: int
    head_dim: int
    bias: bool
    dtype: np.dtype[Any]
    in_proj_weight: FloatArray | None
    q_proj_weight: FloatArray
    k_proj_weight: FloatArray
    v_proj_weight: FloatArray
    in_proj_bias: FloatArray | None
    out_proj_weight: FloatArray
    out_proj_bias: FloatArray | None
    sinks: FloatArray | None
    softcap: float | None
    alibi_slopes: NDArray[np.float64] | None

    def __init__(self, embed_dim: int, num_heads: int, *,
                 num_kv_heads: int | None = None, kdim: int | None = None,
                 vdim: int | None = None, bias: bool = True,
                 dtype: DTypeLike = np.float32, rng: Seed = None,
                 softcap: float | None = None, sinks: bool = False,
                 alibi_slopes: ArrayLike | None = None) -> None:
        self.embed_dim = _positive_int(embed_dim, "embed_dim")
        self.num_heads = _positive_int(num_heads, "num_heads")
        self.num_kv_heads = _positive_int(
            num_heads if num_kv_heads is None else num_kv_heads,
            "num_kv_heads")
        self.kdim = _positive_int(embed_dim if kdim is None else kdim, "kdim")
        self.vdim = _positive_int(embed_dim if vdim is None else vdim, "vdim")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"{_FUNC}: num_heads ({self.num_heads}) must "
                             f"divide embed_dim ({self.embed_dim})")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"{_FUNC}: num_kv_heads ({self.num_kv_heads}) "
                             f"must divide num_heads ({self.num_heads})")
        self.dtype = np.dtype(dtype)
        if not (self.dtype in _checks.SUPPORTED_DTYPES
                or _checks.is_storage16(self.dtype)):
            raise TypeError(f"{_FUNC}: dtype must be float32, float64, "
                            f"float16 or bfloat16, got {self.dtype}")
        self.bias = bool(bias)
        self.head_dim = self.embed_dim // self.num_heads
        cap = _frame.softcap_value(softcap, _FUNC)
        self.softcap = cap if cap else None
        self.sinks = (np.zeros(self.num_heads, self.dtype) if sinks
                      else None)
        self.alibi_slopes = _frame.per_head(alibi_slopes, "alibi_slopes",
                                            (self.num_heads,), _FUNC,
                                            finite=True)
        rng = np.random.default_rng(rng)
        E, kv = self.embed_dim, self.num_kv_heads * self.head_dim
        shapes = self._shapes()
        if self._stacked:
            self.in_proj_weight = self._xavier(rng, (E + 2 * kv, E))
            self._split_stacked()
        else:
            self.in_proj_weight = None
            self.q_proj_weight = self._xavier(rng, shapes["q_proj_weight"])
            self.k_proj_weight = self._xavier(rng, shapes["k_proj_weight"])
            self.v_proj_weight = self._xavier(rng, shapes["v_proj_weight"])
        self.in_proj_bias = np.zeros(E + 2 * kv, self.dtype) if bias else None
        bound = 1.0 / math.sqrt(E)  # torch's Linear default for out_proj
        self.out_proj_weight = rng.uniform(-bound, bound, (E, E)).astype(
            self.dtype)
        self.out_proj_bias = np.zeros(E, self.dtype) if bias else None

    # ------------------------------------------------------------ weights --

    @property
    def _stacked(self) -> bool:
        return self.kdim == self.embed_dim and self.vdim == self.embed_dim

    @property
    def _in_proj(self) -> FloatArray:
        """The stacked [Wq; Wk; Wv] (only when kdim == vdim == embed_dim)."""
        if self.in_proj_weight is None:
            raise AssertionError("cattn internal error: no stacked weight")
        return self.in_proj_weight

    def _xavier(self, rng: np.random.Generator,
                shape: tuple[int, ...]) -> FloatArray:
        bound = math.sqrt(6.0 / (shape[0] + shape[1]))
        return rng.uniform(-bound, bound, shape).astype(self.dtype)

    def _split_stacked(self) -> None:
        E, kv = self.embed_dim, self.num_kv_heads * self.head_dim
        w = self._in_proj
        self.q_proj_weight = w[:E]
        self.k_proj_weight = w[E:E + kv]
        self.v_proj_weight = w[E + kv:]

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        E, kv = self.embed_dim, self.num_kv_heads * self.head_dim
        shapes: dict[str, tuple[int, ...]] = {}
        if self._stacked:
            shapes["in_proj_weight"] = (E + 2 * kv, E)
        else:
            shapes.update(q_proj_weight=(E, E), k_proj_weight=(kv, self.kdim),
                          v_proj_weight=(kv, self.vdim))
        if self.bias:
            shapes["in_proj_bias"] = (E + 2 * kv,)
        shapes["out_proj.weight"] = (E, E)
        if self.bias:
            shapes["out_proj.bias"] = (E,)
        if self.sinks is not None:
            shapes["sinks"] = (self.num_heads,)
        return shapes

    def state_dict(self) -> dict[str, FloatArray]:
        """The weights under ``torch.nn.MultiheadAttention``'s names.

        Views of the layer's own arrays are not returned: each entry is a copy, so
        editing the dict never changes the layer.

        Returns
        -------
        state : dict of str to ndarray
            Copies of the weights: ``in_proj_weight`` (or ``q_proj_weight``,
            ``k_proj_weight``, ``v_proj_weight`` when kdim/vdim differ from
            embed_dim), ``in_proj_bias``, ``out_proj.weight``,
            ``out_proj.bias`` (the biases only with ``bias=True``).

        Raises
        ------
        None

        See Also
        --------
        load_state_dict : The inverse.
        save : The same arrays in a ``.npz`` file.

        Notes
        -----
        With ``num_kv_heads < num_heads`` the K/V rows are fewer than
        PyTorch's layer has; such a state loads into cattn only.

        Examples
        --------
        >>> import cattn
        >>> sorted(cattn.MultiHeadAttention(8, 2).state_dict())
        ['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']
        """
        values = {"in_proj_weight": self.in_proj_weight,
                  "q_proj_weight": self.q_proj_weight,
                  "k_proj_weight": self.k_proj_weight,
                  "v_proj_weight": self.v_proj_weight,
                  "in_proj_bias": self.in_proj_bias,
                  "out_proj.weight": self.out_proj_weight,
                  "out_proj.bias": self.out_proj_bias,
                  "sinks": self.sinks}
        return {name: np.array(values[name]) for name in self._shapes()}

    def load_state_dict(self, state: Mapping[str, ArrayLike]) -> None:
        """Load weights saved by :meth:`state_dict` or by PyTorch.

        Shapes are checked against the layer's configuration before anything is
        assigned, so a failed load leaves the layer unchanged.

        Parameters
        ----------
        state : mapping of str to array_like
            Exactly the names :meth:`state_dict` returns, with those shapes.
            Arrays are copied and converted to the layer's dtype.

        Returns
        -------
        None

        Raises
        ------
        KeyError
            If names are missing or unexpected (all of them are listed).
        ValueError
            If an array has the wrong shape.
        TypeError
            If an array is not numeric.

        See Also
        --------
        state_dict : The names and shapes expected.
        load : From a ``.npz`` file.

        Notes
        -----
        Accepts ``{k: v.numpy() for k, v in torch_mha.state_dict().items()}``.

        Examples
        --------
        >>> import cattn
        >>> a, b = cattn.MultiHeadAttention(8, 2, rng=0), cattn.MultiHeadAttention(8, 2, rng=1)
        >>> b.load_state_dict(a.state_dict())
        >>> bool((b.out_proj_weight == a.out_proj_weight).all())
        True
        """
        shapes = self._shapes()
        missing = sorted(set(shapes) - set(state))
        unexpected = sorted(set(state) - set(shapes))
        if missing or unexpected:
            raise KeyError(f"{_FUNC}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}; expected "
                           f"{sorted(shapes)}")
        arrays = {}
        for name, shape in shapes.items():
            arr = np.asarray(state[name])
            if arr.dtype.kind not in "fiu" and not _checks.is_storage16(
                    arr.dtype):
                raise TypeError(f"{_FUNC}.load_state_dict: {name} has dtype "
                                f"{arr.dtype}; expected a real numeric array")
            if arr.shape != shape:
                raise ValueError(f"{_FUNC}.load_state_dict: {name} has shape "
                                 f"{arr.shape}; expected {shape}")
            arrays[name] = arr.astype(self.dtype)  # a copy
        if self._stacked:
            self.in_proj_weight = arrays["in_proj_weight"]
            self._split_stacked()
        else:
            self.q_proj_weight = arrays["q_proj_weight"]
            self.k_proj_weight = arrays["k_proj_weight"]
            self.v_proj_weight = arrays["v_proj_weight"]
        self.in_proj_bias = arrays.get("in_proj_bias")
        self.out_proj_weight = arrays["out_proj.weight"]
        self.out_proj_bias = arrays.get("out_proj.bias")
        self.sinks = arrays.get("sinks")

    def save(self, file: str | os.PathLike[str] | IO[bytes]) -> None:
        """Save the weights to a ``.npz`` file (names as :meth:`state_dict`).

        Only the weights are written, as plain arrays (no pickle), under the names
        of :meth:`state_dict`.

        Parameters
        ----------
        file : str, os.PathLike or file object
            Where to write, as for :func:`numpy.savez`.

        Returns
        -------
        None

        Raises
        ------
        OSError
            If the file cannot be written.

        See Also
        --------
        load : The inverse.
        state_dict : The arrays written.

        Notes
        -----
        Load with :meth:`load`; the layer's sizes are not stored, so build
        a layer of the same configuration first.

        Examples
        --------
        >>> import io, cattn
        >>> buf = io.BytesIO()
        >>> cattn.MultiHeadAttention(8, 2, rng=0).save(buf)
        >>> _ = buf.seek(0)
        >>> cattn.MultiHeadAttention(8, 2).load(buf)
        """
        # The numpy stub types **kwds as if one could be allow_pickle.
        np.savez(file, **self.state_dict())  # type: ignore[arg-type]

    def load(self, file: str | os.PathLike[str] | IO[bytes]) -> None:
        """Load weights from a ``.npz`` file written by :meth:`save`.

        The file is opened with ``allow_pickle=False`` and every array goes through
        :meth:`load_state_dict`'s checks.

        Parameters
        ----------
        file : str, os.PathLike or file object
            As for :func:`numpy.load`.

        Returns
        -------
        None

        Raises
        ------
        KeyError, ValueError
            As :meth:`load_state_dict`.

        See Also
        --------
        save : Writes such a file.
        load_state_dict : The checks applied.

        Notes
        -----
        Pickled objects are refused (``allow_pickle=False``).

        Examples
        --------
        See :meth:`save`.
        """
        with np.load(file, allow_pickle=False) as data:
            self.load_state_dict({k: data[k] for k in data.files})

    # ------------------------------------------------------------ forward --

    def _heads(self, x: FloatArray, n: int) -> FloatArray:
        """(B, T, n·d) -> (B, n, T, d), a view."""
        return x.reshape(x.shape[:-1] + (n, self.head_dim)).swapaxes(-2, -3)

    def _input(self, x: ArrayLike, name: str, features: int) -> FloatArray:
        x = _checks.as_float_array(x, name, _FUNC, storage=True)
        if x.ndim not in (2, 3):
            raise ValueError(f"{_FUNC}: {name} must be (batch, length, "
                             f"features) or (length, features), got shape "
                             f"{x.shape}")
        if x.shape[-1] != features:
            raise ValueError(f"{_FUNC}: {name} has {x.shape[-1]} features "
                             f"(shape {x.shape}); expected {features}")
        return x.astype(self.dtype, copy=False)

    def _key_value(self, key: ArrayLike, value: ArrayLike | None,
                   unbatched: bool) -> tuple[FloatArray, FloatArray]:
        """The key and value inputs (value None: the key), batched like an
        unbatched query, with matching batch and length."""
        k_in = self._input(key, "key", self.kdim)
        v_in = k_in if value is None else self._input(value, "value",
                                                      self.vdim)
        if unbatched:
            k_in = k_in[np.newaxis] if k_in.ndim == 2 else k_in
            v_in = v_in[np.newaxis] if v_in.ndim == 2 else v_in
        if k_in.shape[:-1] != v_in.shape[:-1]:
            raise ValueError(f"{_FUNC}: key and value must have the same "
                             f"batch and length: key {k_in.shape}, value "
                             f"{v_in.shape}")
        return k_in, v_in

    def project_memory(self, memory: ArrayLike,
                       value: ArrayLike | None = None) -> ProjectedMemory:
        """Project encoder states to keys and values once, for reuse.

        Cross-attention re-reads the same encoder states at every decoding step;
        projecting them once moves the two projections out of the loop.

        Parameters
        ----------
        memory : array_like, shape (batch, S, kdim) or (S, kdim)
            Encoder output (the key input).
        value : array_like, optional
            Value input (default: `memory`, the QVV case).

        Returns
        -------
        memory : ProjectedMemory
            Pass it as `key` at every decoding step.

        Raises
        ------
        TypeError, ValueError
            For bad dtypes or shapes, as :meth:`__call__`.

        See Also
        --------
        ProjectedMemory : The result, passed as `key` to the layer.
        new_cache : The self-attention counterpart.

        Notes
        -----
        ``mha(x, mha.project_memory(m))`` equals ``mha(x, m)``; the
        projection cost is paid once instead of at every step.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> mha = cattn.MultiHeadAttention(8, 2, rng=0)
        >>> m = np.ones((1, 6, 8), np.float32)
        >>> mem = mha.project_memory(m)
        >>> x = np.zeros((1, 1, 8), np.float32)
        >>> bool(np.allclose(mha(x, mem), mha(x, m)))
        True
        """
        k_in = self._input(memory, "memory", self.kdim)
        v_in = k_in if value is None else self._input(value, "value",
                                                      self.vdim)
        if k_in.ndim == 2:
            k_in = k_in[np.newaxis]
        if v_in.ndim == 2:
            v_in = v_in[np.newaxis]
        k, v = self._project_kv(k_in, v_in)
        return ProjectedMemory(k, v)

    def _project_kv(self, k_in: FloatArray,
                    v_in: FloatArray) -> tuple[FloatArray, FloatArray]:
        E, kv = self.embed_dim, self.num_kv_heads * self.head_dim
        if (k_in is v_in and self._stacked):
            both = _layer.project(self, k_in, self._in_proj[E:],
                                 slice(E, None))
            k, v = both[..., :kv], both[..., kv:]
        else:
            k = _layer.project(self, k_in, self.k_proj_weight, slice(E, E + kv))
            v = _layer.project(self, v_in, self.v_proj_weight, slice(E + kv, None))
        return self._heads(k, self.num_kv_heads), self._heads(
            v, self.num_kv_heads)

    def new_cache(self, batch: int, max_len: int,
                  dtype: DTypeLike | str | None = None) -> KVCache:
        """Storage for incremental (token-by-token) self-attention.

        Each call with ``cache=`` projects only its new positions and appends them,
        so generating T tokens costs O(T) projections instead of O(T^2).

        Parameters
        ----------
        batch : int
            Batch size of the calls that will use it.
        max_len : int
            Most positions it can hold.
        dtype : dtype, optional
            Storage of the cached keys and values: the layer's dtype
            (default) or float32, float64, float16, ``ml_dtypes.bfloat16``,
            or ``"int8"`` (:func:`cattn.quantize` blocks of 32 along
            head_dim, or one block of head_dim when 32 does not divide it).
            A 16-bit or int8 cache next to a float32 layer is read in place
            by the attention kernel (widened or dequantized as it streams),
            so decoding reads a half or a quarter of the bytes; the keys
            and values are rounded or quantized once, when appended.

        Returns
        -------
        cache : KVCache
            Pass as ``cache=`` to self-attention calls; each call appends
            its projected keys/values and attends over all cached positions
            (causal, aligned bottom-right).

        Raises
        ------
        TypeError, ValueError
            If `batch` or `max_len` is not an int >= 1 (ValueError for a
            value, TypeError for a type), or `dtype` is not one of the
            above (TypeError).

        See Also
        --------
        KVCache : The result.
        project_memory : The cross-attention counterpart.

        Notes
        -----
        Memory: 2 · batch · num_kv_heads · max_len · head_dim elements of
        `dtype`, allocated once.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> mha = cattn.MultiHeadAttention(8, 2, rng=0)
        >>> x = np.random.default_rng(0).standard_normal((1, 4, 8)).astype(np.float32)
        >>> cache = mha.new_cache(1, 16)
        >>> steps = [mha(x[:, t:t + 1], cache=cache) for t in range(4)]
        >>> bool(np.allclose(np.concatenate(steps, 1), mha(x, is_causal=True),
        ...                  atol=1e-5))
        True
        """
        storage, block = self._storage(dtype, "MultiHeadAttention.new_cache")
        return KVCache(_positive_int(batch, "batch"), self.num_kv_heads,
                       _positive_int(max_len, "max_len"), self.head_dim,
                       storage, block)

    def _storage(self, dtype: DTypeLike | str | None,
                 func: str) -> tuple[np.dtype[Any] | str, int]:
        """A cache's storage (the layer's dtype by default, a float dtype
        or "int8") and its int8 block: 32, or head_dim when 32 does not
        divide it."""
        d = self.head_dim
        storage: np.dtype[Any] | str = (
            self.dtype if dtype is None else "int8"
            if isinstance(dtype, str) and dtype == "int8"
            else _cache_dtype(dtype, func))
        return storage, 32 if d % 32 == 0 else d

    def _qkv(self, q_in: FloatArray, key: Any, value: Any,
             unbatched: bool) -> tuple[FloatArray, FloatArray, FloatArray,
                                       Any, Any]:
        """The forward's projections, shared by __call__ and backward: q
        (B, H, L, d) and k, v (B, Hkv, S, d) heads of the (batched) query
        input and of `key`/`value` as __call__ takes them (None:
        self-attention, one fused product for Q, K and V; a
        ProjectedMemory: its heads), and the key and value inputs the
        projections read (None for a ProjectedMemory)."""
        E, kv = self.embed_dim, self.num_kv_heads * self.head_dim
        k_in = v_in = None
        if isinstance(key, ProjectedMemory):
            k, v = key.key, key.value
        elif key is None:
            if not self._stacked:
                raise ValueError(f"{_FUNC}: self-attention needs kdim == "
                                 f"vdim == embed_dim")
            qkv = _layer.project(self, q_in, self._in_proj, slice(None))
            q = qkv[..., :E]
            k = self._heads(qkv[..., E:E + kv], self.num_kv_heads)
            v = self._heads(qkv[..., E + kv:], self.num_kv_heads)
            k_in = v_in = q_in
        else:
            k_in, v_in = self._key_value(key, value, unbatched)
            k, v = self._project_kv(k_in, v_in)
        if key is not None:
            q = _layer.project(self, q_in, self.q_proj_weight, slice(0, E))
        q = self._heads(q, self.num_heads)
        if k.shape[0] != q.shape[0] and k.shape[0] != 1:
            raise ValueError(f"{_FUNC}: query has batch {q.shape[0]}, key "
                             f"has batch {k.shape[0]}")
        return q, k, v, k_in, v_in

    def _attend(self, q: FloatArray, k: FloatArray, v: FloatArray,
                mask: Any, is_causal: Causal, return_lse: bool
                ) -> tuple[FloatArray, FloatArray | None]:
        """The heads' attention, shared by __call__ and backward: o as
        (B, L, H, d) -- the kernel writes each head straight into that
        order, so the output projection reads (B, L, E) without a copy --
        and the lse if asked."""
        B, L = q.shape[0], q.shape[2]
        o = np.empty((B, L, self.num_heads, self.head_dim), self.dtype)
        kw = dict(is_causal=is_causal, out=o.swapaxes(1, 2),
                  enable_gqa=self.num_kv_heads != self.num_heads,
                  **_layer.score_options(self))
        if return_lse:
            _, lse = scaled_dot_product_attention(q, k, v, mask,
                                                  return_lse=True, **kw)
            return o, lse
        scaled_dot_product_attention(q, k, v, mask, **kw)
        return o, None

    @overload
    def __call__(self, query: ArrayLike,
                 key: ArrayLike | ProjectedMemory | None = ...,
                 value: ArrayLike | None = ..., *,
                 key_padding_mask: ArrayLike | None = ...,
                 attn_mask: ArrayLike | None = ..., is_causal: Causal = ...,
                 need_weights: Literal[False] = ...,
                 average_attn_weights: bool = ...,
                 cache: KVCache | PagedKVCache | None = ...,
                 sequences: Sequence[int] | None = ...) -> FloatArray: ...

    @overload
    def __call__(self, query: ArrayLike,
                 key: ArrayLike | ProjectedMemory | None = ...,
                 value: ArrayLike | None = ..., *,
                 key_padding_mask: ArrayLike | None = ...,
                 attn_mask: ArrayLike | None = ..., is_causal: Causal = ...,
                 need_weights: Literal[True],
                 average_attn_weights: bool = ...,
                 cache: KVCache | PagedKVCache | None = ...,
                 sequences: Sequence[int] | None = ...
                 ) -> tuple[FloatArray, FloatArray]: ...

    def __call__(self, query: ArrayLike,
                 key: ArrayLike | ProjectedMemory | None = None,
                 value: ArrayLike | None = None, *,
                 key_padding_mask: ArrayLike | None = None,
                 attn_mask: ArrayLike | None = None, is_causal: Causal = False,
                 need_weights: bool = False,
                 average_attn_weights: bool = True,
                 cache: KVCache | PagedKVCache | None = None,
                 sequences: Sequence[int] | None = None
                 ) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Attend.

        The projections run on :func:`cattn.matmul` (one fused product for
        Q, K and V in self-attention) and attention on the fused kernel of
        :func:`cattn.scaled_dot_product_attention`; the L x S weights are
        built only with ``need_weights=True``.

        Parameters
        ----------
        query : array_like, shape (B, L, E) or (L, E)
            Queries (batch first; unbatched input gives unbatched output).
        key : array_like or ProjectedMemory, optional
            Key input (B, S, kdim); None means self-attention (key = value =
            query); a :class:`ProjectedMemory` reuses projected encoder
            states.
        value : array_like, optional
            Value input (B, S, vdim); None means value = key (QVV).
        key_padding_mask : array_like of bool, shape (B, S), optional
            True = padding key, IGNORED (``torch.nn.MultiheadAttention``'s
            meaning).
        attn_mask : array_like, optional
            cattn's meaning: bool True = MAY ATTEND, or float added; shape
            broadcastable to (B, H, L, S), e.g. (L, S) or (B, L, S).
        is_causal : bool or {"top_left", "bottom_right"}, optional
            As in :func:`scaled_dot_product_attention`; with `cache` the
            alignment is always bottom-right.
        need_weights : bool, optional
            Also return the attention weights (this builds an L x S array;
            without it none is made).
        average_attn_weights : bool, optional
            Weights averaged over heads (B, L, S) if True, else (B, H, L, S).
        cache : KVCache or PagedKVCache, optional
            Self-attention only: append this call's keys/values and attend
            over every cached position, causally.
        sequences : sequence of int, optional
            With a :class:`PagedKVCache`: the sequence of each batch row
            (ids from :meth:`PagedKVCache.add_sequence`).

        Returns
        -------
        out : ndarray, shape (B, L, E) or (L, E)
        weights : ndarray
            Only with ``need_weights=True``.

        Raises
        ------
        TypeError
            For non-float inputs or a non-bool key_padding_mask.
        ValueError
            For shapes that disagree, a full cache, or cache with key/value.

        See Also
        --------
        scaled_dot_product_attention : The attention of each head.
        new_cache : Incremental decoding.
        project_memory : Cross-attention on fixed encoder states.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> mha = cattn.MultiHeadAttention(8, 2, rng=0)
        >>> x = np.ones((3, 5, 8), np.float32)
        >>> mha(x, is_causal=True).shape
        (3, 5, 8)
        >>> out, w = mha(x, need_weights=True)
        >>> w.shape
        (3, 5, 5)
        """
        q_in = self._input(query, "query", self.embed_dim)
        unbatched = q_in.ndim == 2
        if unbatched:
            q_in = q_in[np.newaxis]
        if cache is not None and key is not None:
            raise ValueError(f"{_FUNC}: cache= is for self-attention; pass "
                             "key=None (use project_memory for cross "
                             "attention)")
        q, k, v, _, _ = self._qkv(q_in, key, value, unbatched)
        if isinstance(cache, PagedKVCache):
            return self._paged(q, k, v, cache, sequences, need_weights,
                               unbatched)
        if cache is not None:
            if need_weights and isinstance(cache.key, QuantizedArray):
                raise ValueError(f"{_FUNC}: need_weights=True needs the keys "
                                 "in float; an int8 cache has none")
            k, v = cache._append(k, v)
            is_causal = "bottom_right"
        B, L, S = q.shape[0], q.shape[2], k.shape[2]
        mask = _layer.mask(self, key_padding_mask, attn_mask, B, L, S)
        o, _ = self._attend(q, k, v, mask, is_causal, False)
        out = _layer.output(self, o.reshape(B, L, self.embed_dim))
        if unbatched:
            out = out[0]
        if not need_weights:
            return out
        w = attention_weights(q, k, mask, is_causal=is_causal,
                              enable_gqa=self.num_kv_heads != self.num_heads,
                              **_layer.score_options(self))
        if average_attn_weights:
            w = w.mean(axis=1)
        return out, (w[0] if unbatched else w)

    def _paged(self, q: FloatArray, k: FloatArray, v: FloatArray,
               cache: PagedKVCache, sequences: Sequence[int] | None,
               need_weights: bool, unbatched: bool) -> FloatArray:
        """The call's rest with a paged cache: append, attend over the
        pages (paged_attention), project."""
        if sequences is None or need_weights:
            raise ValueError(f"{_FUNC}: a PagedKVCache needs sequences= (one "
                             f"id per batch row) and returns no weights")
        cache._append(sequences, k, v)
        table, lens = cache.block_table(sequences)
        B, L = q.shape[0], q.shape[2]
        o = np.empty((B, L, self.num_heads, self.head_dim), self.dtype)
        paged_attention(q, cache.key_pages, cache.value_pages, table, lens,
                        out=o.swapaxes(1, 2), **_layer.score_options(self))
        out = _layer.output(self, o.reshape(B, L, self.embed_dim))
        return out[0] if unbatched else out

    def new_paged_cache(self, num_pages: int, page_size: int = 16,
                        dtype: DTypeLike | str | None = None
                        ) -> PagedKVCache:
        """A pool of pages for the keys and values of many sequences.

        For serving many sequences of different lengths with one layer:
        pass the pool as ``cache=`` with ``sequences=`` ids.

        Parameters
        ----------
        num_pages : int
            Pages in the pool (each holds `page_size` tokens of every key/
            value head).
        page_size : int, optional
            Tokens per page (16, as vLLM's default).
        dtype : dtype or "int8", optional
            Storage, as :meth:`new_cache`'s.

        Returns
        -------
        cache : PagedKVCache

        Raises
        ------
        TypeError, ValueError
            As :meth:`new_cache`.

        See Also
        --------
        PagedKVCache, new_cache

        Notes
        -----
        Memory: 2 · num_pages · num_kv_heads · page_size · head_dim
        elements of `dtype`, allocated once; sequences share it.

        Examples
        --------
        >>> import cattn
        >>> pool = cattn.MultiHeadAttention(8, 2).new_paged_cache(64)
        >>> pool.key_pages.shape
        (64, 2, 16, 4)
        """
        storage, block = self._storage(dtype,
                                       "MultiHeadAttention.new_paged_cache")
        return PagedKVCache(_positive_int(num_pages, "num_pages"),
                            self.num_kv_heads,
                            _positive_int(page_size, "page_size"),
                            self.head_dim, storage, block)

    # ----------------------------------------------------------- backward --

    def backward(self, grad_out: ArrayLike, query: ArrayLike,
                 key: ArrayLike | None = None, value: ArrayLike | None = None,
                 *, key_padding_mask: ArrayLike | None = None,
                 attn_mask: ArrayLike | None = None,
                 is_causal: Causal = False
                 ) -> tuple[tuple[FloatArray, FloatArray | None,
                                  FloatArray | None], dict[str, FloatArray]]:
        """Gradients of a loss through the layer, for training from NumPy.

        Given ``grad_out``, the gradient of a loss with respect to
        ``self(query, key, value, ...)``, returns the gradients with respect
        to the inputs and to every weight.  The forward is recomputed (the
        layer keeps no state between calls), keeping the attention's
        log-sum-exp for :func:`cattn.scaled_dot_product_attention_grad`.

        Parameters
        ----------
        grad_out : array_like, shape (B, L, E) or (L, E)
            Gradient with respect to the layer's output.
        query, key, value : array_like
            The inputs of the forward call, as :meth:`__call__` takes them
            (key None: self-attention; value None: value = key).
        key_padding_mask, attn_mask, is_causal : optional
            As in :meth:`__call__`.

        Returns
        -------
        grad_inputs : tuple of (ndarray, ndarray or None, ndarray or None)
            Gradients for (query, key, value), each in its input's shape.
            An input that was not passed gets None, its gradient added to
            the one it stands for: self-attention returns ``(d_x, None,
            None)``, ``value=None`` returns ``(d_query, d_key, None)``.
        grad_weights : dict of str to ndarray
            One entry per :meth:`state_dict` name, same shapes, in the
            layer's dtype.

        Raises
        ------
        TypeError
            For non-float inputs or a non-bool key_padding_mask.
        ValueError
            For shapes that disagree, or a :class:`ProjectedMemory` key
            (its projection has no gradient path).

        See Also
        --------
        cattn.scaled_dot_product_attention_grad : The attention's backward.
        state_dict : The names of the weight gradients.

        Notes
        -----
        With ``o`` the heads' attention output, concatenated:
        ``d out_proj.weight = gᵀ o``, ``d out_proj.bias = Σ g``,
        ``d o = g W_o``; then the attention's backward per head, and for
        each input projection ``y = x Wᵀ + b``: ``dW = dyᵀ x``,
        ``db = Σ dy``, ``dx = dy W``.  Heads shared by several query heads
        (``num_kv_heads``) receive the sum of their gradients.  The cost is
        about three forward passes; the memory is the forward's plus the
        gradients, with no L x S array.  Deterministic for any thread count.

        Examples
        --------
        Fit a layer to a target with plain SGD:

        >>> import numpy as np, cattn
        >>> rng = np.random.default_rng(0)
        >>> mha = cattn.MultiHeadAttention(8, 2, dtype=np.float64, rng=0)
        >>> x = rng.standard_normal((4, 6, 8))
        >>> target = np.roll(x, 1, axis=1)          # learn to look back one
        >>> losses = []
        >>> for step in range(60):
        ...     y = mha(x, is_causal=True)
        ...     losses.append(float(((y - target) ** 2).mean()))
        ...     _, grads = mha.backward(2 * (y - target) / y.size, x,
        ...                             is_causal=True)
        ...     mha.load_state_dict({name: w - 0.5 * grads[name]
        ...                          for name, w in mha.state_dict().items()})
        >>> bool(losses[-1] < 0.8 * losses[0])
        True
        """
        g = self._input(grad_out, "grad_out", self.embed_dim)
        q_in = self._input(query, "query", self.embed_dim)
        if g.shape != q_in.shape:
            raise ValueError(f"{_FUNC}: grad_out has shape {g.shape}; "
                             f"expected the output's shape {q_in.shape}")
        if isinstance(key, ProjectedMemory):
            raise ValueError(f"{_FUNC}: backward needs the key input itself, "
                             "not a ProjectedMemory")
        unbatched = q_in.ndim == 2
        if unbatched:
            q_in, g = q_in[np.newaxis], g[np.newaxis]
        E, H = self.embed_dim, self.num_heads
        # The forward again (the layer's own steps), keeping o and lse.
        q, k, v, k_in, v_in = self._qkv(q_in, key, value, unbatched)
        B, L, S = q.shape[0], q.shape[2], k.shape[2]
        mask = _layer.mask(self, key_padding_mask, attn_mask, B, L, S)
        gqa = self.num_kv_heads != H
        o, lse = self._attend(q, k, v, mask, is_causal, True)
        assert lse is not None
        # Output projection, then attention, then the input projections.
        rows = g.reshape(-1, E)
        grads: dict[str, FloatArray] = {
            "out_proj.weight": matmul(rows.T, o.reshape(-1, E))}
        if self.out_proj_bias is not None:
            grads["out_proj.bias"] = rows.sum(axis=0)
        d_o = matmul(g, self.out_proj_weight)
        dq, dk, dv, *d_sinks = scaled_dot_product_attention_grad(
            self._heads(d_o, H), q, k, v, o.swapaxes(1, 2), lse, mask,
            is_causal=is_causal, enable_gqa=gqa, **_layer.score_options(self))
        if d_sinks:
            grads["sinks"] = d_sinks[0].astype(self.dtype)

        def merge(x: FloatArray) -> FloatArray:   # (B, h, T, d) -> (B, T, h·d)
            return x.swapaxes(1, 2).reshape(x.shape[0], x.shape[2], -1)

        proj = [(merge(dq), q_in, self.q_proj_weight),
                (merge(dk), k_in, self.k_proj_weight),
                (merge(dv), v_in, self.v_proj_weight)]
        d_w = [matmul(dy.reshape(-1, dy.shape[-1]).T,
                      x.reshape(-1, x.shape[-1])) for dy, x, _ in proj]
        d_x = [matmul(dy, w) for dy, _, w in proj]
        if self._stacked:
            grads["in_proj_weight"] = np.concatenate(d_w)
        else:
            for name, dw in zip(("q_proj_weight", "k_proj_weight",
                                 "v_proj_weight"), d_w):
                grads[name] = dw
        if self.in_proj_bias is not None:
            grads["in_proj_bias"] = np.concatenate(
                [dy.sum(axis=(0, 1)) for dy, _, _ in proj])
        grads = {name: grads[name] for name in self._shapes()}
        d_query: FloatArray = d_x[0]
        d_key: FloatArray | None = d_x[1]
        d_value: FloatArray | None = d_x[2]
        if key is None:                       # x was query, key and value
            d_query, d_key, d_value = d_x[0] + d_x[1] + d_x[2], None, None
        elif value is None:                   # key was also the value
            d_key, d_value = d_x[1] + d_x[2], None
        if unbatched:
            d_query = d_query[0]
            d_key = None if d_key is None else d_key[0]
            d_value = None if d_value is None else d_value[0]
        return (d_query, d_key, d_value), grads
