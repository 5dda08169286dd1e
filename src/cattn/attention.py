"""Scaled-dot-product attention: self (VVV), cross (QVV) and general (QKV).

The public entry points.  Their arguments are validated once into a
``_frame.Call`` (the validation layer, ``_frame.py``), which the fused
tiled online-softmax kernel (``_kernels/_attention.pyx``, on the GEMM
micro-kernels and the softmax column kernels) and the top-k selection
(``_kernels/_topk.pyx``) take as it is; ``_reference`` holds the float64
oracle the tests compare against.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast, overload

import numpy as np
from numpy.typing import NDArray

from . import _checks, _frame
from .special import softmax
from ._typing import ArrayLike, Causal, FloatArray, Precision, Threads, Window
from .quant import QuantizedArray


@overload
def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., top_k: int | None = ...,
        return_lse: Literal[False] = ...,
        num_threads: Threads = ...,
        out: FloatArray | None = ...,
        precision: Precision = ..., softcap: float | None = ...,
        sinks: ArrayLike | None = ...,
        alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...,
        indices: ArrayLike | None = ..., chunk_size: int | None = ...,
        prefix: int | None = ..., block_mask: ArrayLike | None = ...,
        block_size: int | tuple[int, int] | None = ...) -> FloatArray: ...


@overload
def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., top_k: int | None = ...,
        return_lse: Literal[True],
        num_threads: Threads = ...,
        out: FloatArray | None = ...,
        precision: Precision = ..., softcap: float | None = ...,
        sinks: ArrayLike | None = ...,
        alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...,
        indices: ArrayLike | None = ..., chunk_size: int | None = ...,
        prefix: int | None = ..., block_mask: ArrayLike | None = ...,
        block_size: int | tuple[int, int] | None = ...
) -> tuple[FloatArray, FloatArray]: ...


def scaled_dot_product_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, top_k: int | None = None,
        return_lse: bool = False, num_threads: Threads = None,
        out: FloatArray | None = None, precision: Precision = None,
        softcap: float | None = None, sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None,
        query_lengths: ArrayLike | None = None,
        key_lengths: ArrayLike | None = None,
        indices: ArrayLike | None = None, chunk_size: int | None = None,
        prefix: int | None = None, block_mask: ArrayLike | None = None,
        block_size: int | tuple[int, int] | None = None,
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
        Queries: float32, float64, float16 or ``ml_dtypes.bfloat16``.
        Mixed dtypes compute in the narrowest dtype that holds them all
        exactly (NumPy's promotion; float16 with bfloat16 gives float32).
    key : array_like, shape (..., S, E)
        Keys.
    value : array_like, shape (..., S, Ev)
        Values.  Leading dimensions of query, key and value broadcast (a key
        or value shared across the batch is read in place, not copied).
    attn_mask : array_like, optional
        Broadcastable to (..., L, S).  Boolean: True means *may attend* (the
        meaning of ``torch.nn.functional.scaled_dot_product_attention`` and
        ``jax.nn.dot_product_attention``).  Float: added to the scaled
        scores (-inf hides a key); float32, float64, or the 16-bit dtype
        of 16-bit operands (it is added in float32).  A broadcast mask is
        read in place.
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
        threadpoolctl limit, or one per core, shared with the cattn calls
        running in other Python threads).  The result does not depend on
        it.
    out : ndarray, optional
        Array of shape (..., L, Ev) and the result's dtype to write to (for
        16-bit inputs also float32: the output before rounding).
    precision : {None, "default", "highest"}, optional
        JAX's names for the bfloat16 trade-off; float32, float64 and
        float16 inputs compute alike under both.  On CPUs with
        AVX512_BF16, bfloat16 scores are sums of exact bf16 products in
        float32 made by its dot-product instruction (which reads subnormal
        inputs as zero) under both.  None or "default": the softmax weights
        are rounded to bfloat16 before they multiply V on the same
        instruction, as PyTorch and FlashAttention do (80-88 % of the
        output within one bf16 ulp of the exact answer, measured); their
        exp is accurate to that rounding (relative error <= 1.02e-4, 1/19
        of bf16's half-ulp), and so is lse (within 1.02e-4 of its value
        at "highest").
        "highest": the weights stay float32 and multiply the widened V in
        float32 (>= 99.9 % within one ulp).
    softcap : float, optional
        Logit cap (Gemma 2 [6]_): each scaled score s becomes
        ``softcap · tanh(s / softcap)``, before `alibi_slopes` and
        `attn_mask` are added.  A number > 0.
    sinks : array_like, optional
        Attention sinks (gpt-oss [7]_): one logit per head, broadcastable
        to the batch shape (..., H), that joins each softmax's denominator
        with no value: ``out_i = Σ_j e^{s_ij} v_j / (e^{sink} + Σ_j
        e^{s_ij})``, so a row may give part of its weight to nothing.
        `lse` includes it; a row that sees no key gets 0 and lse = sink.
    alibi_slopes : array_like, optional
        ALiBi [8]_ slopes, shape (H,) or (B, H) (broadcastable to the
        batch shape (..., H)): adds ``-slope · |i + S - L - j|`` to the
        score of query i and key j (FlashAttention's convention, aligned
        bottom-right whatever `is_causal` says), computed in the kernel:
        no L x S array.  Finite.
    query_lengths, key_lengths : array_like of int, optional
        Per-row lengths of a padded batch (JAX's ``query_seq_lengths`` /
        ``key_value_seq_lengths``), broadcastable to the batch shape
        without its head axis (``(B,)`` for (B, H, L, E) inputs): batch
        row b has only its first ``key_lengths[b]`` keys, and its rows at
        or past ``query_lengths[b]`` are 0 with lse -inf.  Causal
        alignments, windows and ALiBi count from these lengths (so
        "bottom_right" aligns each row's last query with its last key).
        Padded blocks are skipped, not computed; what the padding holds
        (even inf or NaN) never matters.  0 <= length <= L (or S).
    indices : array_like of int, optional
        Sparse attention (DeepSeek Sparse Attention [9]_): the keys each
        query row attends, shape broadcastable to the key/value heads'
        batch + (L, k) -- ``(B, 1, L, k)`` for lists shared by every head
        (DeepSeek-V3.2's indexer), ``(B, Hkv, L, k)`` one per key/value
        head; with GQA a group's query heads share their key/value head's
        lists.  Keys in [0, S), -1 for an empty slot; a row lists a key at
        most once (a repeat is an error: a softmax that counted it twice
        would be another model).  Row i's softmax runs over the keys it
        lists that it may also see: `attn_mask`, `is_causal`, `window` and
        the lengths still apply, and a row left with none is a fully
        masked row.  Cost O(L·k·E), not O(L·S·E): the listed rows of key
        and value are read where they lie and nothing L x S is built.  A
        row's keys are taken in increasing order, so the order of its
        slots does not change a bit (when decoding, lists longer than a
        key chunk are cut into chunks of slots first).  Not with `top_k`.
    chunk_size : int, optional
        Chunked attention (Llama 4's ``attention_chunk_size``): the
        positions are cut into chunks of `chunk_size` and a query sees
        only the keys of its own chunk, ``d // chunk_size ==
        j // chunk_size`` with d as for `window`; with `is_causal`, only
        the earlier ones.  The same as the dense mask, without one: the
        tiles outside the chunks are never visited and no mask is read.
    prefix : int, optional
        Prefix-LM attention (with `is_causal` only): every query also sees
        the first `prefix` keys -- a bidirectional prefix (a prompt, an
        image) before causal text.  Key j is visible to query i when
        ``j <= d or j < prefix``; `window`, `chunk_size`, `attn_mask` and
        the lengths still apply.  No mask is built or read.
    block_mask : array_like of bool, optional
        Block-sparse attention (a block-level mask in the spirit of
        PyTorch's FlexAttention ``BlockMask``): which blocks of
        `block_size` queries may see which blocks of keys, shape
        broadcastable to (..., ceil(L / Bq), ceil(S / Bk)).  Query i may
        see key j where ``block_mask[..., i // Bq, j // Bk]`` is True and
        every other rule (`attn_mask`, `is_causal`, `window`, the lengths,
        `chunk_size`, `prefix`) lets it.  The tiles of hidden blocks are
        skipped, those of visible ones computed unmasked, and no L x S
        array is built (with `attn_mask`, `indices`, `top_k`, or at most a
        few query rows, the table is expanded into the mask those paths
        read).  The same bits as the call with the expanded mask.
    block_size : int or (int, int), optional
        The blocks of `block_mask`: Bq query rows by Bk keys (one int for
        both); default 128, FlexAttention's.  The last block of each axis
        may be shorter.

    Returns
    -------
    out : ndarray, shape (..., L, Ev)
        The attention output, in the inputs' (promoted) dtype.
    lse : ndarray, shape (..., L)
        Only with ``return_lse=True``: log-sum-exp per row, so attentions
        over key chunks can be merged exactly; float32 for 16-bit inputs.

    Raises
    ------
    TypeError
        If an input is not float32, float64, float16 or bfloat16, the mask
        is not bool or a float dtype allowed above, `scale` or `softcap` is
        not a real number, `sinks` or `alibi_slopes` does not hold real
        numbers, `indices` are not integers, or `out` has another dtype.
    ValueError
        If the shapes disagree (E of query and key, S of key and value, the
        batch dimensions, GQA heads that do not divide, a mask, `sinks` or
        `alibi_slopes` that does not broadcast), `is_causal`, `window`,
        `scale`, `softcap` (<= 0), `alibi_slopes` (not finite) or a length
        (outside [0, L] or [0, S], or not broadcastable to the batch rows)
        is invalid, `out` has the wrong shape or is read-only,
        `num_threads` < 1, `indices` do not broadcast, hold a value
        outside [-1, S), list a key twice in a row or come with `top_k`,
        `chunk_size`, `prefix` or a `block_size` is < 1, `prefix` comes
        without `is_causal`, `block_size` without `block_mask`, or
        `block_mask` does not broadcast to the blocks (TypeError if it is
        not bool or a `block_size` not an int).

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

    float16 and bfloat16 inputs are widened to float32 (exactly) as the
    kernel packs or streams them -- never copied whole -- and the float32
    kernel runs on them; only the output is rounded, once, to nearest even.
    So the result is the float32 result on the same inputs correctly
    rounded: within one ulp of the 16-bit dtype of the exact answer, and
    bit for bit what ``out32.astype(dtype)`` would give.

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
    .. [6] Gemma Team, "Gemma 2: Improving open language models at a
           practical size", arXiv:2408.00118, 2024.
    .. [7] G. Xiao et al., "Efficient streaming language models with
           attention sinks", ICLR 2024; OpenAI, "gpt-oss-120b & gpt-oss-20b
           model card", arXiv:2508.10925, 2025.
    .. [8] O. Press, N. A. Smith and M. Lewis, "Train short, test long:
           Attention with linear biases enables input length
           extrapolation", ICLR 2022.
    .. [9] DeepSeek-AI, "DeepSeek-V3.2-Exp: Boosting long-context
           efficiency with DeepSeek Sparse Attention", technical report,
           2025.

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

    Current models' variants, in the kernel (no L x S array):

    >>> slopes = 2.0 ** -np.arange(1, 5)            # ALiBi, one per head
    >>> out = cattn.scaled_dot_product_attention(
    ...     q, kv, kv, softcap=50.0, alibi_slopes=slopes,
    ...     sinks=np.zeros(4), is_causal="bottom_right")
    >>> out.shape
    (2, 4, 16, 8)

    Sparse attention: each query attends the 4 keys its row lists (shared
    by the heads), here the 4 most recent it may see:

    >>> i = np.arange(16)[:, None] + 16         # bottom-right: i sees <= i+16
    >>> idx = np.stack([i - 3, i - 2, i - 1, i], axis=-1)[:, 0, :]
    >>> out = cattn.scaled_dot_product_attention(
    ...     q, kv, kv, is_causal="bottom_right", indices=idx[None, None])
    >>> out.shape
    (2, 4, 16, 8)

    Structured masks stated without a mask: chunked attention (Llama 4)
    and a bidirectional prefix before causal text (prefix-LM), each the
    dense call with the equivalent bool mask:

    >>> x = rng.standard_normal((1, 2, 32, 8))
    >>> chunked = cattn.scaled_dot_product_attention(
    ...     x, x, x, is_causal=True, chunk_size=8)
    >>> i, j = np.arange(32)[:, None], np.arange(32)
    >>> np.allclose(chunked, cattn.scaled_dot_product_attention(
    ...     x, x, x, attn_mask=(j <= i) & (i // 8 == j // 8)))
    True
    >>> prefix_lm = cattn.scaled_dot_product_attention(
    ...     x, x, x, is_causal=True, prefix=10)
    >>> np.allclose(prefix_lm, cattn.scaled_dot_product_attention(
    ...     x, x, x, attn_mask=(j <= i) | (j < 10)))
    True

    Block-sparse attention from a table of blocks (each block of 8
    queries sees its own block of keys and block 0), the dense call with
    the table expanded, bit for bit:

    >>> blocks = np.eye(4, dtype=bool)
    >>> blocks[:, 0] = True
    >>> sparse = cattn.scaled_dot_product_attention(
    ...     x, x, x, block_mask=blocks, block_size=8)
    >>> expanded = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
    >>> bool(np.array_equal(sparse, cattn.scaled_dot_product_attention(
    ...     x, x, x, attn_mask=expanded)))
    True
    """
    return _attend("scaled_dot_product_attention", _frame.NAMES, query, key,
                   value, attn_mask, is_causal, scale, enable_gqa, window,
                   top_k, return_lse, num_threads, out, precision, softcap,
                   sinks, alibi_slopes, query_lengths, key_lengths, indices,
                   chunk_size, prefix, block_mask, block_size)


def _attend(func: str, names: tuple[str, ...], query: ArrayLike,
            key: ArrayLike, value: ArrayLike, attn_mask: ArrayLike | None,
            is_causal: Causal, scale: float | None, enable_gqa: bool,
            window: Window, top_k: int | None, return_lse: bool,
            num_threads: Threads, out: FloatArray | None,
            precision: Precision, softcap: float | None = None,
            sinks: ArrayLike | None = None,
            alibi_slopes: ArrayLike | None = None,
            query_lengths: ArrayLike | None = None,
            key_lengths: ArrayLike | None = None,
            indices: ArrayLike | None = None,
            chunk_size: int | None = None, prefix: int | None = None,
            block_mask: ArrayLike | None = None,
            block_size: int | tuple[int, int] | None = None
            ) -> FloatArray | tuple[FloatArray, FloatArray]:
    """scaled_dot_product_attention as `func` (errors name it and the
    user's argument `names`)."""
    # Positional, in describe's order (per call; see its docstring).
    (q, k, v), mask, call = _frame.describe(
        func, query, key, value, attn_mask, is_causal, scale, enable_gqa,
        window, top_k, num_threads, precision, softcap, sinks, alibi_slopes,
        query_lengths, key_lengths, (), names, chunk_size, prefix)
    sel = None
    if indices is not None:
        if call.top_k:
            raise ValueError(f"{func}: top_k and indices select keys two "
                             "ways; pass one of them")
        sel = _frame.listed(indices, call)
    blocks = None
    if block_mask is not None or block_size is not None:
        mask, call, blocks = _frame.place_blocks(
            _frame.block_mask_of(block_mask, block_size, call), mask, sel,
            call)
    result, lse = _outputs(call, out, call.batch + (call.L, call.Ev),
                           (q, k, v, mask), return_lse)
    _frame.forward(call, q, k, v, mask, result, lse, sel, blocks)
    return _deliver(out, result, lse)


def _outputs(call: _frame.Call, out: FloatArray | None,
             shape: tuple[int, ...], inputs: Sequence[Any], return_lse: bool
             ) -> tuple[FloatArray, FloatArray | None]:
    """The array the kernel writes (`out` itself when it can be walked in
    place and overlaps no input, else a new one) and lse (batch + (L,), the
    compute dtype) if asked."""
    overlap = out is not None and _checks.check_out(
        out, shape, call.dtype, call.func,
        [x for x in inputs if x is not None])
    if out is None or overlap or _checks.element_strides(out) is None:
        result = np.empty(shape, dtype=call.dtype)
    else:
        result = out
    lse = (np.empty(call.batch + (call.L,), dtype=call.compute)
           if return_lse else None)
    return result, lse


def _deliver(out: FloatArray | None, result: FloatArray,
             lse: FloatArray | None
             ) -> FloatArray | tuple[FloatArray, FloatArray]:
    """`result` copied into `out` if it is another array; with lse."""
    if out is not None and result is not out:
        out[...] = result
        result = out
    return result if lse is None else (result, lse)


def self_attention(x: ArrayLike, attn_mask: ArrayLike | None = None, *,
                   is_causal: Causal = False, scale: float | None = None,
                   window: Window = None, num_threads: Threads = None,
                   out: FloatArray | None = None,
                   precision: Precision = None) -> FloatArray:
    """Self-attention with no projections ("VVV"): query = key = value = x.

    The VVV case: the input is its own query, key and value, with no
    projections, so each row attends most to itself and to rows like it.

    Parameters
    ----------
    x : array_like, shape (..., L, E)
        The sequence: float32, float64, float16 or ``ml_dtypes.bfloat16``.
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
    precision : {None, "default", "highest"}, optional
        As in :func:`scaled_dot_product_attention`.

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
    return cast(FloatArray, _attend(
        "self_attention", ("x", "x", "x"), x, x, x, attn_mask, is_causal,
        scale, False, window, None, False, num_threads, out, precision))


def attention_weights(query: ArrayLike, key: ArrayLike,
                      attn_mask: ArrayLike | None = None, *,
                      is_causal: Causal = False, scale: float | None = None,
                      enable_gqa: bool = False, window: Window = None,
                      num_threads: Threads = None,
                      precision: Precision = None,
                      softcap: float | None = None,
                      sinks: ArrayLike | None = None,
                      alibi_slopes: ArrayLike | None = None) -> FloatArray:
    """The attention weights ``softmax(query · keyᵀ · scale + mask)``.

    For inspection and plots: unlike :func:`scaled_dot_product_attention`
    this builds the (..., L, S) matrix, by design.

    Parameters
    ----------
    query : array_like, shape (..., L, E)
        Queries: float32, float64, float16 or ``ml_dtypes.bfloat16``.
        Mixed dtypes compute in the narrowest dtype that holds them all
        exactly (NumPy's promotion; float16 with bfloat16 gives float32).
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
    precision : {None, "default", "highest"}, optional
        As in :func:`scaled_dot_product_attention`, whose scores these are
        (their products are the same at both precisions; only the forward's
        P·V, not computed here, differs).
    softcap, sinks, alibi_slopes : optional
        As in :func:`scaled_dot_product_attention`.

    Returns
    -------
    weights : ndarray, shape (..., L, S)
        Each row sums to 1 (less the sink's share with `sinks`), or is all
        0 if the row sees no key.

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
    ``scaled_dot_product_attention(q, k, v, ...)`` up to rounding.  The
    scores are computed by the fused forward's own tiles (the same products,
    cap, ALiBi bias, mask and visibility, bit for bit as its tiled path; a
    call of at most 4 query rows streams rows there, with other sums), then
    a row softmax; the (L, S) result is the only full-size array.

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
    (q, k), mask, call = _frame.describe(
        "attention_weights", query, key, None, attn_mask,
        is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
        window=window, num_threads=num_threads, precision=precision,
        softcap=softcap, sinks=sinks, alibi_slopes=alibi_slopes)
    # The forward's scores (caps, biases, mask and visibility applied by the
    # same kernels), in the compute dtype (16-bit operands: float32, rounded
    # once at the end, as the fused kernel rounds its output).
    scores = _frame.scores(call, q, k, mask)
    dead = np.all(scores == -np.inf, axis=-1)
    if call.sinks is not None:
        weights = _frame.softmax_with_sinks(call, scores)
    else:
        weights = softmax(scores, axis=-1, out=scores,
                          num_threads=call.threads)
        weights[dead] = 0
    if call.dtype != call.compute:
        return _checks.narrow(weights, call.dtype, call.threads)
    return weights


@overload
def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., return_indices: Literal[False] = ...,
        num_threads: Threads = ...,
        out: FloatArray | None = ..., softcap: float | None = ...,
        alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...) -> FloatArray: ...


@overload
def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = ..., *, is_causal: Causal = ...,
        scale: float | None = ..., enable_gqa: bool = ...,
        window: Window = ..., return_indices: Literal[True],
        num_threads: Threads = ..., out: FloatArray | None = ...,
        softcap: float | None = ..., alibi_slopes: ArrayLike | None = ...,
        query_lengths: ArrayLike | None = ...,
        key_lengths: ArrayLike | None = ...
) -> tuple[FloatArray, NDArray[np.int64]]: ...


def hard_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        attn_mask: ArrayLike | None = None, *, is_causal: Causal = False,
        scale: float | None = None, enable_gqa: bool = False,
        window: Window = None, return_indices: bool = False,
        num_threads: Threads = None, out: FloatArray | None = None,
        softcap: float | None = None, alibi_slopes: ArrayLike | None = None,
        query_lengths: ArrayLike | None = None,
        key_lengths: ArrayLike | None = None,
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
        Queries: float32, float64, float16 or ``ml_dtypes.bfloat16``.
        Mixed dtypes compute in the narrowest dtype that holds them all
        exactly (NumPy's promotion; float16 with bfloat16 gives float32).
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
        threadpoolctl limit, or one per core, shared with the cattn calls
        running in other Python threads).  The result does not depend on
        it.
    out : ndarray, optional
        Array of shape (..., L, Ev) and the result's dtype to write to.
    softcap : float, optional
        As in :func:`scaled_dot_product_attention`: capping keeps the order
        of the scores, but scores that round to the same capped value tie
        (and go to the lower key index).
    alibi_slopes : array_like, optional
        As in :func:`scaled_dot_product_attention`: the bias can change
        which key is best.  (Attention sinks have no value to take, so
        hard attention has no `sinks`.)
    query_lengths, key_lengths : array_like of int, optional
        Per-row lengths, as in :func:`scaled_dot_product_attention`: rows
        past the query length get zeros and index -1.

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
    (q, k, v), mask, call = _frame.describe(
        "hard_attention", query, key, value, attn_mask,
        is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
        window=window, top_k=1, num_threads=num_threads, softcap=softcap,
        alibi_slopes=alibi_slopes, query_lengths=query_lengths,
        key_lengths=key_lengths)
    call = call._replace(top_k=1)          # S = 1 counts as full attention
    L, S, Ev, dtype = call.L, call.S, call.Ev, call.dtype
    if out is not None:
        _checks.check_out(out, call.batch + (L, Ev), dtype, call.func, [])
    idx = _frame.select(call, q, k, mask)
    items = call.items
    if call.group > 1:
        v = _frame.expand_kv(v)
    # Gather the chosen value rows (a view of v broadcast over the items).
    values = np.broadcast_to(v, items + (S, Ev)) if S else np.zeros(
        items + (1, Ev), dtype)
    chosen = np.take_along_axis(values, np.maximum(idx, 0)[..., np.newaxis],
                                axis=-2)
    chosen[idx < 0] = 0
    result = chosen.reshape(call.batch + (L, Ev))
    indices = idx.reshape(call.batch + (L,))
    if out is not None:
        out[...] = result
        result = out
    if return_indices:
        return result, indices
    return result


def varlen_attention(
        query: ArrayLike, key: ArrayLike, value: ArrayLike,
        cu_seqlens_q: ArrayLike, cu_seqlens_k: ArrayLike, *,
        is_causal: Causal = False, scale: float | None = None,
        window: Window = None, softcap: float | None = None,
        sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None, enable_gqa: bool = False,
        return_lse: bool = False, num_threads: Threads = None,
        out: FloatArray | None = None, precision: Precision = None,
        indices: ArrayLike | None = None, chunk_size: int | None = None,
        prefix: int | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray]:
    """Attention over sequences of different lengths packed end to end.

    FlashAttention's ``varlen`` layout: the tokens of all sequences follow
    one another along the first axis, and ``cu_seqlens_q[s]`` ..
    ``cu_seqlens_q[s + 1]`` are the queries of sequence s (keys and values
    likewise with `cu_seqlens_k`).  Each sequence attends only to its own
    keys, exactly as :func:`scaled_dot_product_attention` would on it
    alone; no padding is computed or stored.

    Parameters
    ----------
    query : array_like, shape (total_q, H, E)
        The queries of every sequence, packed: float32, float64, float16
        or ``ml_dtypes.bfloat16``.
    key : array_like, shape (total_k, Hkv, E)
        The keys, packed the same way.
    value : array_like, shape (total_k, Hkv, Ev)
        The values.
    cu_seqlens_q, cu_seqlens_k : array_like of int, shape (nseq + 1,)
        Cumulative offsets: 0, then each sequence's end.  They start at 0,
        never decrease and end at total_q (total_k); both describe nseq
        sequences.  A sequence may be empty.
    is_causal : bool or {"top_left", "bottom_right"}, optional
        Causal attention within each sequence, aligned as in
        :func:`scaled_dot_product_attention` from the sequence's own
        lengths ("bottom_right": its last query sees its last key).
    scale : float, optional
        Default ``1 / sqrt(E)``.
    window : (int or None, int or None), optional
        Local attention window within each sequence.
    softcap, sinks, alibi_slopes : optional
        As in :func:`scaled_dot_product_attention`; sinks and slopes per
        head (H,), or per sequence and head (nseq, H).
    enable_gqa : bool, optional
        Allow Hkv to divide H (grouped-query attention).
    return_lse : bool, optional
        Also return the log-sum-exp of each query's scores, shape
        (total_q, H) (float32 for 16-bit inputs).
    num_threads : int, optional
        Number of OpenMP threads; the result does not depend on it.
    out : ndarray, optional
        Array of shape (total_q, H, Ev) and the result's dtype to write to.
    precision : {None, "default", "highest"}, optional
        As in :func:`scaled_dot_product_attention`.
    indices : array_like of int, optional
        Sparse attention, as in :func:`scaled_dot_product_attention`: each
        packed query token's selected keys by their position in its own
        sequence, shape broadcastable to (total_q, Hkv, k); a key at or
        past its sequence's length is not one it has.
    chunk_size, prefix : int, optional
        Chunked attention and a prefix every query sees, as in
        :func:`scaled_dot_product_attention`, counted from each sequence's
        own start.

    Returns
    -------
    out : ndarray, shape (total_q, H, Ev)
    lse : ndarray, shape (total_q, H)
        Only with ``return_lse=True``.

    Raises
    ------
    TypeError
        If an input is not a supported float dtype, or an offset array is
        not integer.
    ValueError
        If a shape does not match (3-D arrays, E of query and key, tokens
        and heads of key and value, heads that do not divide), an offset
        array does not start at 0, decreases, does not end at its total or
        describes another number of sequences, or another argument is
        invalid as in :func:`scaled_dot_product_attention`.

    See Also
    --------
    scaled_dot_product_attention : ``query_lengths`` / ``key_lengths`` for
        padded batches.

    Notes
    -----
    The work items are (sequence, head, query block), each computed in a
    fixed order, so no bit depends on `num_threads`; threads take whole
    (sequence, head) pairs longest first, so sequences of very different
    lengths still share the cores evenly.  Keys past a sequence's end are
    never read, not even inside a key block.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> rng = np.random.default_rng(0)
    >>> lengths = [5, 1, 12]
    >>> cu = np.concatenate([[0], np.cumsum(lengths)])        # 0 5 6 18
    >>> x = rng.standard_normal((18, 2, 8))                   # 18 tokens
    >>> out = cattn.varlen_attention(x, x, x, cu, cu, is_causal=True)
    >>> out.shape
    (18, 2, 8)
    >>> third = cattn.scaled_dot_product_attention(
    ...     x[6:].transpose(1, 0, 2), x[6:].transpose(1, 0, 2),
    ...     x[6:].transpose(1, 0, 2), is_causal=True)
    >>> bool(np.allclose(out[6:], third.transpose(1, 0, 2)))
    True

    Sparse attention: each token lists keys of its own sequence (here its
    first and its own, causal), shape (total_q, Hkv, k):

    >>> pos = np.concatenate([np.arange(n) for n in lengths])
    >>> idx = np.stack([np.zeros_like(pos), pos], axis=-1)[:, None, :]
    >>> idx = np.where(idx[..., :1] == idx[..., 1:], [0, -1], idx)  # once
    >>> out = cattn.varlen_attention(x, x, x, cu, cu, is_causal=True,
    ...                              indices=idx)
    >>> out.shape
    (18, 2, 8)
    """
    func = "varlen_attention"
    (q, k, v), call, (start_q, start_k) = _frame.describe_varlen(
        func, query, key, value, cu_seqlens_q, cu_seqlens_k,
        is_causal=is_causal, scale=scale, window=window, softcap=softcap,
        sinks=sinks, alibi_slopes=alibi_slopes, enable_gqa=enable_gqa,
        num_threads=num_threads, precision=precision, chunk_size=chunk_size,
        prefix=prefix)
    result, lse = _outputs(call, out, (q.shape[0], q.shape[1], call.Ev),
                           [q, k, v], return_lse)
    sel = None if indices is None else _frame.listed(
        indices, call, (q.shape[0], k.shape[1]))
    if result.size and call.L:
        _frame.forward_varlen(call, q, k, v, result, lse, start_q, start_k,
                              sel)
    result = cast(FloatArray, _deliver(out, result, None))
    if lse is None:
        return result
    # (nseq, H, L) -> (total_q, H): token t is row t - start of its sequence.
    assert call.q_lens is not None
    len_q = call.q_lens[::call.batch[1]] if call.batch[1] else np.zeros(
        call.batch[0], np.int64)
    seq = np.repeat(np.arange(call.batch[0]), len_q)
    rows = np.arange(seq.size) - start_q[seq]
    return result, lse[seq, :, rows]


def paged_attention(
        query: ArrayLike, key_pages: ArrayLike | QuantizedArray,
        value_pages: ArrayLike | QuantizedArray, block_table: ArrayLike,
        seq_lens: ArrayLike, *, scale: float | None = None,
        window: Window = None, softcap: float | None = None,
        sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None, return_lse: bool = False,
        num_threads: Threads = None, out: FloatArray | None = None,
        precision: Precision = None, indices: ArrayLike | None = None,
        chunk_size: int | None = None, prefix: int | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray]:
    """Attention of new tokens over a paged KV cache (vLLM's layout).

    The keys and values of many sequences live in fixed-size pages of one
    pool; sequence b's token j is row ``j % page_size`` of page
    ``block_table[b, j // page_size]``.  `query` holds the last L tokens
    of each sequence (L = 1 when decoding), which attend causally among
    themselves and to everything before them (bottom-right aligned).  The
    pages are read where they are: nothing is gathered into a contiguous
    copy on the decode path, and only one key block at a time otherwise.

    Parameters
    ----------
    query : array_like, shape (B, H, L, E)
        The newest L tokens of each of the B sequences: float32, float64,
        float16 or ``ml_dtypes.bfloat16``.
    key_pages : array_like or QuantizedArray, shape (num_pages, Hkv, page_size, E)
        The pool of key pages, in the query's dtype, or 16-bit with a
        float32 query, or int8 (:func:`cattn.quantize`) with a float32 or
        16-bit query.  Hkv must divide H (grouped-query attention).
    value_pages : array_like or QuantizedArray, shape (num_pages, Hkv, page_size, Ev)
        The pool of value pages, like `key_pages`.
    block_table : array_like of int, shape (B, max_pages)
        The pages of each sequence, in order.  Entries past a sequence's
        last page are not read (any value, e.g. -1).
    seq_lens : array_like of int, shape (B,)
        The number of tokens of each sequence, the L new ones included:
        ``L <= seq_lens[b] <= max_pages · page_size``.
    scale : float, optional
        Default ``1 / sqrt(E)``.
    window : (int or None, int or None), optional
        Local attention window, counted from each sequence's end.
    softcap, sinks, alibi_slopes : optional
        As in :func:`scaled_dot_product_attention`.
    return_lse : bool, optional
        Also return the log-sum-exp, shape (B, H, L).
    num_threads : int, optional
        Number of OpenMP threads; the result does not depend on it.
    out : ndarray, optional
        Array of shape (B, H, L, Ev) and the result's dtype to write to.
    precision : {None, "default", "highest"}, optional
        As in :func:`scaled_dot_product_attention`.
    indices : array_like of int, optional
        Sparse attention, as in :func:`scaled_dot_product_attention`:
        each new token's selected keys by their position in its sequence,
        shape broadcastable to (B, Hkv, L, k).  Listed keys are read from
        their pages where they lie; a key at or past the sequence's length
        is not one it has.
    chunk_size : int, optional
        Chunked attention (Llama 4's layers), as in
        :func:`scaled_dot_product_attention`: a new token sees only the
        cached keys of its own chunk of positions, and only their pages
        are read.
    prefix : int, optional
        A prefix of the sequence every new token sees, as in
        :func:`scaled_dot_product_attention` (the new tokens are causal).

    Returns
    -------
    out : ndarray, shape (B, H, L, Ev)
    lse : ndarray, shape (B, H, L)
        Only with ``return_lse=True``.

    Raises
    ------
    TypeError
        If a dtype is not supported, the pages' dtypes differ or would
        have to be copied to meet the query's, or block_table / seq_lens
        are not integers.
    ValueError
        If a shape does not match, a sequence length lies outside
        [L, max_pages · page_size], a block-table entry a sequence uses
        is not a page in [0, num_pages), or another argument is invalid
        as in :func:`scaled_dot_product_attention` (`chunk_size` or
        `prefix` < 1, say).

    See Also
    --------
    cattn.PagedKVCache : Allocates, fills and frees the pages.
    scaled_dot_product_attention : ``key_lengths`` for a padded cache.

    Notes
    -----
    The same kernel as :func:`scaled_dot_product_attention` with per-row
    lengths: the decode path (L <= 4, and every L for int8 pages) streams
    each sequence's rows page run by page run; the tiled path copies one
    key block's rows out of their pages, then packs them as usual.  The
    result equals :func:`scaled_dot_product_attention` on the gathered
    keys and values with ``is_causal="bottom_right"``, up to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> import cattn
    >>> rng = np.random.default_rng(0)
    >>> pages = rng.standard_normal((8, 2, 4, 16))        # 8 pages of 4
    >>> table = np.array([[5, 2, 7], [0, 1, -1]])         # two sequences
    >>> seq_lens = np.array([11, 6])
    >>> q = rng.standard_normal((2, 4, 1, 16))            # H=4, Hkv=2
    >>> out = cattn.paged_attention(q, pages, pages, table, seq_lens)
    >>> out.shape
    (2, 4, 1, 16)
    >>> keys = pages[[5, 2, 7]].transpose(1, 0, 2, 3).reshape(2, 12, 16)
    >>> first = cattn.scaled_dot_product_attention(
    ...     q[0], keys[:, :11], keys[:, :11], enable_gqa=True)
    >>> bool(np.allclose(out[0], first))
    True

    Sparse attention: the new token of each sequence lists 3 of its keys
    (positions in its sequence), one list per key/value head:

    >>> idx = np.array([[0, 4, 10], [1, 2, 5]])[:, None, None, :]  # B Hkv L k
    >>> sparse = cattn.paged_attention(q, pages, pages, table, seq_lens,
    ...                                indices=np.repeat(idx, 2, axis=1))
    >>> picked = cattn.scaled_dot_product_attention(
    ...     q[0], keys[:, [0, 4, 10]], keys[:, [0, 4, 10]], enable_gqa=True)
    >>> bool(np.allclose(sparse[0], picked))
    True
    """
    func = "paged_attention"
    q, kp, vp, table, call = _frame.describe_paged(
        func, query, key_pages, value_pages, block_table, seq_lens,
        scale=scale, window=window, softcap=softcap, sinks=sinks,
        alibi_slopes=alibi_slopes, num_threads=num_threads,
        precision=precision, chunk_size=chunk_size, prefix=prefix)
    result, lse = _outputs(
        call, out, call.batch + (call.L, call.Ev),
        [q] + ([kp.values, vp.values] if isinstance(kp, QuantizedArray)
               else [kp, vp]), return_lse)
    sel = None if indices is None else _frame.listed(indices, call)
    if result.size:
        _frame.forward_paged(call, q, kp, vp, table, result, lse, sel)
    return _deliver(out, result, lse)
