"""Attention on Dask arrays: each chunk runs cattn's OpenMP kernels on a
worker, and key chunks are merged exactly with the log-sum-exp rule.

    pip install "cattn[dask]"

The graph, for queries chunked along the batch, head and query dimensions
and keys/values chunked along the key dimension: one task per (query chunk,
key chunk) computes ``(out, lse)`` of that pair with the fused kernel of
:func:`cattn.scaled_dot_product_attention`, as the block of the whole call
at the chunks' positions, and the key chunks of a query chunk are merged
pairwise, in key order, by

    lse = logaddexp(lse_a, lse_b)
    out = exp(lse_a - lse) · out_a + exp(lse_b - lse) · out_b

which is exact: softmax over all keys equals this merge of softmaxes over
key chunks, up to rounding.  Causal masks, windows, ALiBi and per-row
lengths count on the global positions of each chunk, in the kernel, and
pairs no query of the chunk can see compute no score.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

try:
    import dask.array as da
except ImportError as err:  # pragma: no cover - the optional extra
    raise ImportError("cattn.dask needs Dask: pip install \"cattn[dask]\" "
                      "(or pip install \"dask[array]\")") from err

from . import _checks, _frame, _layer
from ._typing import (ArrayLike, Causal, FloatArray, Precision, Threads,
                      Window)
from .linalg import matmul
from .nn import MultiHeadAttention

__all__ = ["scaled_dot_product_attention", "self_attention",
           "multi_head_attention"]

_SDPA = "cattn.dask.scaled_dot_product_attention"
_LETTERS = "abcdefghijk"


def _task_threads(num_threads: int | None) -> int | None:
    """OpenMP threads of one task: `num_threads` if given; in a
    dask.distributed worker the OpenMP default (its nanny sets
    OMP_NUM_THREADS, 1 unless configured); in the local threaded
    scheduler, whose pool already has a thread per core, 1."""
    if num_threads is not None:
        return num_threads
    try:
        from distributed import get_worker
        get_worker()
        return None
    except (ImportError, ValueError):
        pass
    return 1 if threading.current_thread() is not threading.main_thread() \
        else None


def _pair(qpos: Any, kpos: Any, q: Any, k: Any, v: Any, *more: Any,
          call: _frame.Call, num_threads: int | None) -> Any:
    """One task: [out | lse] of a query chunk against a key chunk, the lse
    in an extra last column, by the fused kernel as the block of the whole
    call at (qpos[0], kpos[0]) (Call.origin): causal and window
    visibility, ALiBi and the per-row lengths count on global positions
    there, as in the eager call.  `more`: the mask's block if the call has
    a mask, the ALiBi slopes' block (the chunk's batch) if it has slopes,
    then the query and key lengths' blocks (global; all L and S when the
    user gave none).  Sinks join after the merge (_add_sinks)."""
    rest = list(more)
    k_lens, q_lens = rest.pop(), rest.pop()
    alibi = rest.pop() if call.alibi is not None else None
    batch, L, S = q.shape[:-2], q.shape[-2], k.shape[-2]
    Ev = v.shape[-1]

    def per_item(x: Any, dtype: type) -> Any:
        return np.ascontiguousarray(np.broadcast_to(x, batch),
                                    dtype=dtype).reshape(-1)

    block = call._replace(
        batch=batch, group=1, L=L, S=S,
        threads=_checks.resolve_threads(_task_threads(num_threads),
                                        call.func),
        sinks=None,
        alibi=None if alibi is None else per_item(alibi, np.float64),
        q_lens=per_item(q_lens, np.int64), k_lens=per_item(k_lens, np.int64),
        origin=(int(qpos[0]) if L else 0, int(kpos[0]) if S else 0))
    mask = None
    if call.mask_kind != _frame.MASK_NONE:
        mask = np.broadcast_to(rest[0], batch + (L, S))
    # 16-bit inputs: the partial in float32, rounded once after the merge.
    res = np.empty(batch + (L, Ev + 1), dtype=call.compute)
    lse = np.empty(batch + (L,), dtype=call.compute)
    _frame.forward(block, q, k, v, mask, res[..., :Ev], lse)
    res[..., Ev] = lse
    return res


def _merge(a: Any, b: Any) -> Any:
    """Two [out | lse] partials over disjoint key sets -> the partial over
    both: the log-sum-exp rule, exact up to rounding.  A side that saw no
    key (lse = -inf) weighs 0; NaN propagates."""
    la, lb = a[..., -1:], b[..., -1:]
    m = np.maximum(la, lb)
    shift = np.where(np.isneginf(m), 0, m)
    wa, wb = np.exp(la - shift), np.exp(lb - shift)
    total = wa + wb
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(total == 0, 0, 1 / total)    # (..., L, 1): cheap
        lse = np.where(total == 0, -np.inf, shift + np.log(total))
    # Two passes over the outputs; a NaN weight (NaN lse) stays NaN.
    ca, cb = wa * inv, wb * inv
    res = np.empty_like(a)
    np.multiply(a[..., :-1], ca, out=res[..., :-1])
    res[..., :-1] += b[..., :-1] * cb
    if not np.isfinite(res[..., :-1]).all():
        # A side of weight 0 adds nothing, even inf or NaN values (the
        # kernel's rule); same operations, so finite entries keep their bits.
        with np.errstate(invalid="ignore"):
            res[..., :-1] = (np.where(ca != 0, a[..., :-1] * ca, 0)
                             + np.where(cb != 0, b[..., :-1] * cb, 0))
    res[..., -1:] = lse
    return res


def _add_sinks(part: Any, sinks: Any, *lens: Any) -> Any:
    """The merged [out | lse] of a chunk of rows with each row's sink (the
    chunk's batch block of `sinks`) joined once: out · 1/(1 + e^{sink -
    lse}), lse = logaddexp(lse, sink); a row that saw nothing gets 0 and
    lse = sink, as the kernel gives, but a row past its query length
    (`lens`: the rows' positions and the query lengths' block) keeps 0
    and -inf."""
    lse = part[..., -1:]
    sink = sinks.astype(part.dtype)             # (..., 1, 1)
    res = np.empty_like(part)
    with np.errstate(over="ignore", invalid="ignore"):
        res[..., :-1] = part[..., :-1] / (1 + np.exp(sink - lse))
        res[..., -1:] = np.logaddexp(lse, sink)
    if lens:
        past = lens[0][:, np.newaxis] >= lens[1][..., np.newaxis, np.newaxis]
        res[..., -1:] = np.where(past, -np.inf, res[..., -1:])
    return res


def _as_dask(x: ArrayLike | da.Array, name: str, func: str) -> da.Array:
    """`x` as a Dask array of a supported dtype, else TypeError naming the
    function the user called (the frame's rules, on the dtype alone; a
    mask is checked against the operands' dtype by its caller)."""
    arr = x if isinstance(x, da.Array) else da.asarray(np.asarray(x))
    if name != "attn_mask":
        _checks.check_dtype(arr.dtype, name, func, storage=True)
    return arr


def _fit(x: da.Array, shape: tuple[int, ...],
         chunks: Sequence[tuple[int, ...]]) -> da.Array:
    """`x` broadcast to `shape` with `chunks` (lazy)."""
    return da.broadcast_to(x, shape).rechunk(tuple(chunks))


def scaled_dot_product_attention(
        query: ArrayLike | da.Array, key: ArrayLike | da.Array,
        value: ArrayLike | da.Array,
        attn_mask: ArrayLike | da.Array | None = None, *,
        is_causal: Causal = False, scale: float | None = None,
        enable_gqa: bool = False, window: Window = None,
        return_lse: bool = False, num_threads: Threads = None,
        precision: Precision = None, softcap: float | None = None,
        sinks: ArrayLike | None = None,
        alibi_slopes: ArrayLike | None = None,
        query_lengths: ArrayLike | None = None,
        key_lengths: ArrayLike | None = None) -> Any:
    """:func:`cattn.scaled_dot_product_attention` on Dask arrays, lazily.

    Builds a Dask graph: one task per pair of query chunk and key chunk,
    each running cattn's kernel on a worker, then an exact log-sum-exp
    merge of the key chunks; compute it with any Dask scheduler.

    Parameters
    ----------
    query : dask.array.Array or array_like, shape (..., L, E)
        Chunk it along the batch and head dimensions and along L as you
        like; E is kept in one chunk.
    key, value : dask.array.Array or array_like
        Shapes (..., S, E) and (..., S, Ev).  Chunks along S are key
        chunks: each is attended separately and merged exactly, so a key
        sequence larger than one worker's memory works.  Batch chunks
        follow the query's.
    attn_mask : dask.array.Array or array_like, optional
        As in :func:`cattn.scaled_dot_product_attention` (bool True = may
        attend, float added), broadcastable to (..., L, S); rechunked to
        the query and key chunks.
    is_causal, scale, enable_gqa, window : optional
        As in :func:`cattn.scaled_dot_product_attention`; causal masks and
        windows use global positions, so they hold across chunks.  16-bit
        inputs give 16-bit outputs, merged in float32 and rounded once.
    return_lse : bool, optional
        Also return the log-sum-exp of each row, shape (..., L).
    num_threads : int, optional
        OpenMP threads per task.  Default: 1 under the local threaded
        scheduler (its pool has a thread per core already); in a
        dask.distributed worker, OpenMP's default there, which the nanny
        sets to 1 per process unless its ``pre-spawn-environ`` says more.
    precision : {None, "default", "highest"}, optional
        As in :func:`cattn.scaled_dot_product_attention`.
    softcap, sinks, alibi_slopes, query_lengths, key_lengths : optional
        As in :func:`cattn.scaled_dot_product_attention` (NumPy arrays:
        one value per head, or per batch row for the lengths).  ALiBi and
        the lengths use global positions, so they hold across chunks; each
        row's sink joins once, after the key chunks are merged.  Chunks
        wholly past a row's lengths still run (hidden); a padded batch is
        better cut along the batch.

    Returns
    -------
    out : dask.array.Array, shape (..., L, Ev)
        Chunked like `query` along the batch dimensions and L.
    lse : dask.array.Array, shape (..., L)
        Only with ``return_lse=True``.

    Raises
    ------
    TypeError
        For non-float inputs (a bool mask is allowed).
    ValueError
        For shapes that disagree or invalid arguments, as the NumPy
        function.

    See Also
    --------
    cattn.scaled_dot_product_attention : The kernel each task runs.

    Notes
    -----
    One task per (query chunk, key chunk) pair, then a pairwise merge of
    the key chunks of each query chunk, in key order, with the log-sum-exp
    rule (exact up to rounding).  Memory per task: its chunks of Q, K, V
    and the output; a mask (..., L, S) is read chunk by chunk.  Pairs that
    a causal mask or window hides entirely compute no score (the kernel
    skips every key block its rows cannot see).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import cattn, cattn.dask
    >>> x = np.random.default_rng(0).standard_normal((4, 2, 64, 8))
    >>> q = da.from_array(x, chunks=(2, 2, 32, 8))      # batch, L chunks
    >>> kv = da.from_array(x, chunks=(2, 2, 16, 8))     # 4 key chunks
    >>> out = cattn.dask.scaled_dot_product_attention(q, kv, kv,
    ...                                               is_causal=True)
    >>> out.chunks[-2]
    (32, 32)
    >>> want = cattn.scaled_dot_product_attention(x, x, x, is_causal=True)
    >>> bool(np.allclose(out.compute(scheduler="threads"), want))
    True
    """
    return _attention(_SDPA, query, key, value, attn_mask,
                      is_causal=is_causal, scale=scale,
                      enable_gqa=enable_gqa, window=window,
                      return_lse=return_lse, num_threads=num_threads,
                      precision=precision, softcap=softcap, sinks=sinks,
                      alibi_slopes=alibi_slopes, query_lengths=query_lengths,
                      key_lengths=key_lengths)


def _attention(func: str, query: ArrayLike | da.Array,
               key: ArrayLike | da.Array, value: ArrayLike | da.Array,
               attn_mask: ArrayLike | da.Array | None, *,
               is_causal: Causal, scale: float | None, enable_gqa: bool,
               window: Window, return_lse: bool,
               num_threads: Threads, precision: Precision = None,
               softcap: float | None = None, sinks: ArrayLike | None = None,
               alibi_slopes: ArrayLike | None = None,
               query_lengths: ArrayLike | None = None,
               key_lengths: ArrayLike | None = None) -> Any:
    """The graph of :func:`scaled_dot_product_attention`, validated by the
    frame's rules on shapes and dtypes; errors name `func`."""
    q = _as_dask(query, "query", func)
    k = _as_dask(key, "key", func)
    v = _as_dask(value, "value", func)
    batch, group = _frame.batch_and_group(
        func, ("query", "key", "value"), (q.shape, k.shape, v.shape),
        enable_gqa)
    dtype = _checks.common_dtype((q, k, v))
    q, k, v = (a.astype(dtype) for a in (q, k, v))
    compute = _checks.compute_dtype(dtype)   # of partials, lse, a float mask
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    mask = None
    kind = _frame.MASK_NONE
    if attn_mask is not None:
        mask = _as_dask(attn_mask, "attn_mask", func)
        kind = _frame.mask_kind(mask.dtype, func, dtype)
        mask_shape = mask.shape
    # Through the frame's one builder, as the eager call; each chunk's
    # kernel call takes one thread unless told (Dask's workers are the
    # parallelism).
    call = _frame.call_of(
        func, dtype, batch, group, L, S, E, Ev, kind, is_causal, window,
        scale, None, 1 if num_threads is None else num_threads, precision,
        softcap, sinks, alibi_slopes,
        _frame.row_lengths(query_lengths, key_lengths, batch, L, S, func))
    if group > 1:
        # (..., Hq, L, E) -> (..., Hkv, G, L, E); key/value get a unit G.
        q = q.reshape(q.shape[:-3] + (k.shape[-3], group) + q.shape[-2:])
        k, v = k[..., np.newaxis, :, :], v[..., np.newaxis, :, :]
        batch = call.items
    q = q if q.shape[:-2] == batch else da.broadcast_to(q, batch + (L, E))
    q = q.rechunk(q.chunks[:-1] + ((E,),))
    bchunks = q.chunks[:-2]
    s_chunks = k.chunks[-2] if k.chunks[-2] else (0,)
    k = _fit(k, batch + (S, E), bchunks + (s_chunks, (E,)))
    v = _fit(v, batch + (S, Ev), bchunks + (s_chunks, (Ev,)))
    if mask is not None:
        if kind == _frame.MASK_ADD:
            mask = mask.astype(compute)
        if group > 1 and mask.ndim >= 3:        # heads as (kv head, group)
            mask = (mask[..., np.newaxis, :, :] if mask.shape[-3] == 1
                    else mask.reshape(mask.shape[:-3]
                                      + (mask.shape[-3] // group, group)
                                      + mask.shape[-2:]))
        try:
            mask = _fit(mask, batch + (L, S),
                        bchunks + (q.chunks[-2], s_chunks))
        except ValueError:
            raise ValueError(f"{func}: attn_mask of shape "
                             f"{mask_shape} does not broadcast to "
                             f"(..., L, S) = {call.batch + (L, S)}") from None

    def per_item(x: NDArray[Any]) -> da.Array:
        """A per-item array of the Call over the walked batch, chunked
        like it."""
        return da.from_array(x.reshape(batch), chunks=bchunks)

    if S == 0 or L == 0:
        out = da.zeros(batch + (L, Ev), dtype=compute,
                       chunks=bchunks + (q.chunks[-2], (Ev,)))
        lse = da.full(batch + (L,), -np.inf, dtype=compute,
                      chunks=bchunks + (q.chunks[-2],))
        if call.sinks is not None:              # nothing seen: lse = sink
            lse = da.broadcast_to(per_item(call.sinks)[..., np.newaxis],
                                  batch + (L,)).astype(compute).rechunk(
                                      lse.chunks)
    else:
        b = _LETTERS[:len(batch)]
        qpos = da.arange(L, chunks=(q.chunks[-2],))
        # Every block runs with global lengths (all L and S without the
        # user's): the kernels place a block by them (Call.origin).
        items = int(np.prod(batch))
        q_lens = (call.q_lens if call.q_lens is not None
                  else np.full(items, L, dtype=np.int64))
        k_lens = (call.k_lens if call.k_lens is not None
                  else np.full(items, S, dtype=np.int64))
        kw = dict(call=call, num_threads=num_threads)
        parts = []
        j0 = 0
        for c, n in enumerate(s_chunks):
            sel = (slice(None),) * len(batch) + (slice(c, c + 1),)
            kpos = da.arange(j0, j0 + n, chunks=(n,))
            args: list[Any] = [qpos, "l", kpos, "s", q, b + "le",
                               k.blocks[sel], b + "se", v.blocks[sel],
                               b + "sf"]
            if mask is not None:
                args += [mask.blocks[sel[:-1] + (slice(None), sel[-1])],
                         b + "ls"]
            if call.alibi is not None:
                args += [per_item(call.alibi), b]
            args += [per_item(q_lens), b, per_item(k_lens), b]
            parts.append(da.blockwise(
                _pair, b + "lz", *args, new_axes={"z": Ev + 1},
                concatenate=True, dtype=compute, **kw))
            j0 += n
        while len(parts) > 1:                   # pairwise, in key order
            parts = [da.map_blocks(_merge, parts[i], parts[i + 1],
                                   dtype=compute)
                     if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        merged = parts[0]
        if call.sinks is not None:
            extra: list[Any] = []
            if call.q_lens is not None:
                extra = [qpos, "l", per_item(call.q_lens), b]
            merged = da.blockwise(
                _add_sinks, b + "lz", merged, b + "lz",
                per_item(call.sinks)[(Ellipsis,) + (np.newaxis,) * 2],
                b + "yx", *extra, dtype=compute, concatenate=True)
        out, lse = merged[..., :Ev], merged[..., Ev]
    if compute != dtype:
        out = out.astype(dtype)     # rounded once, to nearest even
    if group > 1:
        out = out.reshape(out.shape[:-4] + (-1,) + out.shape[-2:])
        lse = lse.reshape(lse.shape[:-3] + (-1,) + lse.shape[-1:])
    return (out, lse) if return_lse else out


def self_attention(x: ArrayLike | da.Array,
                   attn_mask: ArrayLike | da.Array | None = None, *,
                   is_causal: Causal = False, scale: float | None = None,
                   window: Window = None, num_threads: Threads = None) -> Any:
    """Self-attention ("VVV", query = key = value = `x`) on a Dask array.

    The chunks of `x` along L serve as the query chunks and, unchanged, as
    the key chunks, so every chunk meets every other one it may see.

    Parameters
    ----------
    x : dask.array.Array or array_like, shape (..., L, E)
        The sequences, chunked as you like along the batch dimensions
        and L.
    attn_mask : dask.array.Array or array_like, optional
        As in :func:`scaled_dot_product_attention`.
    is_causal, scale, window, num_threads : optional
        As in :func:`scaled_dot_product_attention`.

    Returns
    -------
    out : dask.array.Array, shape (..., L, E)

    Raises
    ------
    TypeError, ValueError
        As :func:`scaled_dot_product_attention`.

    See Also
    --------
    scaled_dot_product_attention : The general case.

    Notes
    -----
    Query chunk i against key chunk j for every pair (i, j) the mask and
    window allow; with ``is_causal=True`` about half the pairs are skipped.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import cattn, cattn.dask
    >>> x = np.random.default_rng(0).standard_normal((100, 16))
    >>> out = cattn.dask.self_attention(da.from_array(x, chunks=(25, 16)))
    >>> bool(np.allclose(out.compute(scheduler="threads"),
    ...                  cattn.self_attention(x)))
    True
    """
    return _attention("cattn.dask.self_attention", x, x, x, attn_mask,
                      is_causal=is_causal, scale=scale, enable_gqa=False,
                      window=window, return_lse=False,
                      num_threads=num_threads)


def _per_token(x: da.Array, fn: Callable[[Any], Any], features: int,
               dtype: np.dtype[Any]) -> da.Array:
    """fn (a per-token map of the layer's, to `features` features) applied
    chunk by chunk; the layer travels with the graph once."""
    x = x.rechunk(x.chunks[:-1] + ((x.shape[-1],),))
    return da.map_blocks(fn, x, dtype=dtype,
                         chunks=x.chunks[:-1] + ((features,),))


def multi_head_attention(mha: MultiHeadAttention,
                         query: ArrayLike | da.Array,
                         key: ArrayLike | da.Array | None = None,
                         value: ArrayLike | da.Array | None = None, *,
                         key_padding_mask: ArrayLike | da.Array | None = None,
                         attn_mask: ArrayLike | da.Array | None = None,
                         is_causal: Causal = False,
                         num_threads: Threads = None) -> Any:
    """Apply a :class:`cattn.MultiHeadAttention` to Dask arrays, lazily.

    The layer's forward pass as a Dask graph: projections per chunk of
    tokens, attention by :func:`scaled_dot_product_attention` over the
    heads, the output projection per chunk again.

    Parameters
    ----------
    mha : cattn.MultiHeadAttention
        The layer (its weights are copied into the graph).
    query : dask.array.Array or array_like, shape (B, L, E)
        Batch first; chunk along B and L.
    key, value : dask.array.Array or array_like, optional
        (B, S, kdim) and (B, S, vdim); None as in the layer's call
        (self-attention, value = key).  Chunks along S become key chunks.
    key_padding_mask : dask.array.Array or array_like of bool, optional
        (B, S), True = padding, ignored (the layer's meaning).
    attn_mask : dask.array.Array or array_like, optional
        As in the layer's call (bool True = may attend, or float added).
    is_causal : bool or {"top_left", "bottom_right"}, optional
        As in the layer's call.
    num_threads : int, optional
        OpenMP threads per task, as in :func:`scaled_dot_product_attention`.

    Returns
    -------
    out : dask.array.Array, shape (B, L, E)
        Equal to ``mha(query, key, value, ...)`` up to rounding.

    Raises
    ------
    TypeError, ValueError
        As the layer's call.

    See Also
    --------
    scaled_dot_product_attention : The attention step.
    cattn.MultiHeadAttention : The layer.

    Notes
    -----
    The projections are per token, so they run chunk by chunk where the
    inputs live; attention then runs as :func:`scaled_dot_product_attention`
    (key chunks merged exactly) and the output projection per token again.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import cattn, cattn.dask
    >>> mha = cattn.MultiHeadAttention(16, 4, dtype=np.float64, rng=0)
    >>> x = np.random.default_rng(1).standard_normal((6, 40, 16))
    >>> dx = da.from_array(x, chunks=(3, 20, 16))
    >>> out = cattn.dask.multi_head_attention(mha, dx, is_causal=True)
    >>> bool(np.allclose(out.compute(scheduler="threads"),
    ...                  mha(x, is_causal=True)))
    True
    """
    func = "cattn.dask.multi_head_attention"
    E, H, d = mha.embed_dim, mha.num_heads, mha.head_dim
    kv = mha.num_kv_heads * d
    q_in = _as_dask(query, "query", func)
    if q_in.ndim != 3 or q_in.shape[-1] != E:
        raise ValueError(f"{func}: query must be (B, L, {E}), got "
                         f"{q_in.shape}")
    if key is None:
        k_in = v_in = q_in
    else:
        k_in = _as_dask(key, "key", func)
        v_in = k_in if value is None else _as_dask(value, "value", func)
    for name, x, n in (("key", k_in, mha.kdim), ("value", v_in, mha.vdim)):
        if x.ndim != 3 or x.shape[-1] != n:
            raise ValueError(f"{func}: {name} must be (B, S, {n}), got "
                             f"{x.shape}")

    def projection(w: FloatArray, bias: slice) -> Callable[[Any], Any]:
        def run(block: Any) -> Any:     # threads decided in the task
            return _layer.project(mha, block, w, bias,
                                  _task_threads(num_threads))
        return run

    def output(block: Any) -> Any:
        return _layer.output(mha, block, _task_threads(num_threads))

    # The layer's own projections and output, per chunk of tokens.
    q = _per_token(q_in.astype(mha.dtype),
                   projection(mha.q_proj_weight, slice(0, E)), E, mha.dtype)
    k = _per_token(k_in.astype(mha.dtype), projection(
        mha.k_proj_weight, slice(E, E + kv)), kv, mha.dtype)
    v = _per_token(v_in.astype(mha.dtype), projection(
        mha.v_proj_weight, slice(E + kv, None)), kv, mha.dtype)
    B, L, S = q.shape[0], q.shape[1], k.shape[1]

    def heads(x: da.Array, n: int) -> da.Array:
        return x.reshape(x.shape[:2] + (n, d)).transpose(0, 2, 1, 3)

    mask = _layer.mask(mha, key_padding_mask, attn_mask, B, L, S, func=func,
                       asarray=da.asarray)
    o = _attention(
        func, heads(q, H), heads(k, mha.num_kv_heads),
        heads(v, mha.num_kv_heads), mask, is_causal=is_causal, scale=None,
        enable_gqa=mha.num_kv_heads != H, window=None, return_lse=False,
        num_threads=num_threads, **_layer.score_options(mha))
    o = o.transpose(0, 2, 1, 3).reshape(B, L, E)
    return _per_token(o, output, E, mha.dtype)
