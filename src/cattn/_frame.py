"""The attention frame, Python side: every attention entry point's arguments
validated once into one immutable :class:`Call`, and one hand-off to the
kernels.

``scaled_dot_product_attention``, ``hard_attention``, ``attention_weights``,
the gradient and ``cattn.dask`` all describe their call here (the shape
rules work on shapes alone, so Dask arrays go through the same checks), and
the NumPy entry points run it with :func:`forward` / :func:`select`.  The
Cython drivers (``_kernels/_attention.pyx``, ``_topk.pyx``,
``_attention_grad.pyx``) take a :class:`Call` and the operands, never a
list of scalars; they read its fields by position, so the field order here
is part of their contract (``_kernels/_frame.pxd`` names the indices).

Errors name the function the user called (``Call.func``), the argument,
what it got and what was expected.
"""
from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Literal, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from . import _checks
from ._kernels import _attention, _frame as _kframe, _topk
from .quant import QuantizedArray
from ._typing import ArrayLike, FloatArray

Alignment = Literal["top_left", "bottom_right"]
Precision = Literal["default", "highest"]
Bounds = tuple[int | None, int | None]

# Mask kinds, as the kernels number them (_kernels/_frame.pxd).
MASK_NONE, MASK_BOOL, MASK_ADD = _kframe.MASK_KINDS


class Call(NamedTuple):
    """One attention call, validated.  Immutable; the kernels read it."""

    func: str                  # the public name the user called
    dtype: np.dtype[Any]       # every float operand's dtype (storage)
    batch: tuple[int, ...]     # broadcast leading shape (..., query heads)
    group: int                 # query heads per key/value head (GQA), >= 1
    L: int
    S: int
    E: int
    Ev: int
    mask_kind: int             # MASK_NONE, MASK_BOOL or MASK_ADD
    causal: Alignment | None
    window: Bounds | None
    scale: float
    top_k: int                 # 0: full attention
    threads: int
    precision: Precision       # "default" or "highest" (precision_value)
    # What current models do to the scores (None / 0.0: nothing), per
    # work item as the kernels walk the batch (C order over `batch`, the
    # same over `items`): float64, C-contiguous, prod(batch) values.
    softcap: float             # > 0: s -> softcap·tanh(s / softcap); 0: off
    sinks: NDArray[np.float64] | None    # one logit per item's softmax
    alibi: NDArray[np.float64] | None    # ALiBi slope per item
    # Per-row lengths (None: all L and S), per item as above, int64: only
    # the first k_lens keys exist, rows at or past q_lens give 0 (lse
    # -inf); causal alignments and ALiBi count from them.  Both or neither.
    q_lens: NDArray[np.int64] | None
    k_lens: NDArray[np.int64] | None
    # A block of a larger call (cattn.dask's chunks): (q0, k0), the global
    # positions of this call's first query and first key; needs q_lens and
    # k_lens, which are then the larger call's (global) lengths.  Causal
    # and window visibility, ALiBi and the lengths all count on global
    # positions, in the kernels.  None: the call is whole.
    origin: tuple[int, int] | None = None
    # Structure stated directly (scaled_dot_product_attention's chunk_size
    # and prefix; 0: none): chunked attention (a query sees the keys of
    # its own chunk of positions only) and, with causal, a prefix every
    # query sees.  Global positions, as the diagonal's.
    spans: tuple[int, int] = (0, 0)

    @property
    def compute(self) -> np.dtype[Any]:
        """The dtype the kernels compute in (float32 for 16-bit storage):
        lse's, a float mask's and the scores'."""
        return _checks.compute_dtype(self.dtype)

    @property
    def diag(self) -> int:
        """Offset of the causal/window diagonal: query i is at key i+diag."""
        return self.S - self.L if self.causal == "bottom_right" else 0

    @property
    def items(self) -> tuple[int, ...]:
        """The batch with the head axis as (key/value heads, group)."""
        b = self.batch
        return b[:-1] + (b[-1] // self.group, self.group) \
            if self.group > 1 else b


_CAUSAL: dict[object, Alignment | None] = {
    False: None, True: "top_left", "top_left": "top_left",
    "bottom_right": "bottom_right"}


def causal_alignment(is_causal: object, func: str) -> Alignment | None:
    try:
        return _CAUSAL[is_causal]
    except (KeyError, TypeError):
        raise ValueError(f"{func}: is_causal must be False, True, 'top_left' "
                         f"or 'bottom_right', got {is_causal!r}") from None


def window_bounds(window: object, func: str) -> Bounds | None:
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


def scale_value(scale: object, E: int, func: str) -> float:
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


def precision_value(precision: object, func: str) -> Precision:
    """JAX's names: None or "default" lets bfloat16 products run on the
    CPU's bf16 dot-product instructions, with the softmax weights rounded
    to bfloat16 before P·V where the inputs are bfloat16; "highest" keeps
    every product in float32 (float32 and float64 inputs are computed
    alike under both)."""
    if precision is None or precision == "default":
        return "default"
    if precision == "highest":
        return "highest"
    raise ValueError(f"{func}: precision must be None, 'default' or "
                     f"'highest', got {precision!r}")


def softcap_value(softcap: object, func: str) -> float:
    """The logit cap as a float > 0, or 0.0 for None (no cap)."""
    if softcap is None:
        return 0.0
    if isinstance(softcap, (bool, np.bool_)) or not isinstance(
            softcap, numbers.Real):
        raise TypeError(f"{func}: softcap must be None or a real number > 0, "
                        f"got {softcap!r}")
    cap = float(softcap)
    if not (cap > 0 and math.isfinite(cap)):
        raise ValueError(f"{func}: softcap must be None or a finite number "
                         f"> 0, got {cap}")
    return cap


def per_head(x: object, name: str, batch: tuple[int, ...], func: str,
             finite: bool = False) -> NDArray[np.float64] | None:
    """`x` (None, or real numbers broadcastable to the batch shape (...,
    H): one per head, or per batch row and head) as one float64 value per
    work item, C order; `finite`: inf and NaN are a ValueError."""
    if x is None:
        return None
    a = np.asarray(x)
    if not (a.dtype.kind in "fiu" or _checks.is_storage16(a.dtype)):
        raise TypeError(f"{func}: {name} must hold real numbers, got dtype "
                        f"{a.dtype}")
    try:
        b = np.broadcast_to(a.astype(np.float64), batch)
    except ValueError:
        raise ValueError(f"{func}: {name} of shape {a.shape} does not "
                         f"broadcast to the heads: batch shape (..., H) = "
                         f"{batch}") from None
    if finite and not np.isfinite(b).all():
        raise ValueError(f"{func}: {name} must be finite, got "
                         f"{b[~np.isfinite(b)].flat[0]}")
    return np.ascontiguousarray(b).reshape(-1)


def row_lengths(query_lengths: object, key_lengths: object,
                batch: tuple[int, ...], L: int, S: int, func: str
                ) -> tuple[NDArray[np.int64] | None, NDArray[np.int64] | None]:
    """Per-row query and key lengths (each None or integers broadcastable to
    the batch without its head axis, batch[:-1]: one per batch row), as
    one int64 per work item (C order over `batch`, heads sharing their
    row's); both None without either, the missing one then all L or S."""
    if query_lengths is None and key_lengths is None:
        return None, None
    rows = batch[:-1]
    out = []
    for name, lengths, top, axis in (("query_lengths", query_lengths, L, "L"),
                                     ("key_lengths", key_lengths, S, "S")):
        if lengths is None:
            out.append(np.full(math.prod(batch), top, dtype=np.int64))
            continue
        a = np.asarray(lengths)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{func}: {name} must be an integer array, got "
                            f"dtype {a.dtype}")
        try:
            b = np.broadcast_to(a, rows)
        except ValueError:
            raise ValueError(f"{func}: {name} of shape {a.shape} does not "
                             f"broadcast to the batch rows {rows} (the "
                             f"batch shape without its head axis)") from None
        bad = (b < 0) | (b > top)
        if bad.any():
            raise ValueError(f"{func}: {name} must lie in [0, {axis}] = "
                             f"[0, {top}], got {b[bad].flat[0]}")
        per_item = (b.astype(np.int64).reshape(1) if not batch else
                    np.broadcast_to(b.astype(np.int64)[..., np.newaxis],
                                    batch))
        out.append(np.ascontiguousarray(per_item).reshape(-1))
    return out[0], out[1]


def count_value(x: object, name: str, func: str) -> int:
    """An optional count (top_k, chunk_size, prefix): an int >= 1 (not a
    bool), or 0 for None."""
    if x is None:
        return 0
    if isinstance(x, (bool, np.bool_)) or not isinstance(
            x, numbers.Integral):
        raise TypeError(f"{func}: {name} must be None or an int >= 1, got "
                        f"{x!r}")
    n = int(x)
    if n < 1:
        raise ValueError(f"{func}: {name} must be None or an int >= 1, got "
                         f"{n}")
    return n


def top_k_value(top_k: object, S: int, func: str) -> int:
    """k for top-k attention, or 0 for full attention (None, or k >= S)."""
    k = count_value(top_k, "top_k", func)
    return 0 if k >= S else k


def spans_value(chunk_size: object, prefix: object,
                causal: Alignment | None, func: str) -> tuple[int, int]:
    """(chunk, prefix) for the Call, 0 for None; a prefix only widens
    causal attention (without it every key is visible)."""
    chunk = count_value(chunk_size, "chunk_size", func)
    first = count_value(prefix, "prefix", func)
    if first and causal is None:
        raise ValueError(f"{func}: prefix={first} needs is_causal (it "
                         "lets every query also see the first prefix keys; "
                         "without causal attention every key is visible)")
    return chunk, first


Blocks = tuple[NDArray[np.bool_], int, int]


def block_mask_of(block_mask: object, block_size: object,
                call: Call) -> Blocks:
    """scaled_dot_product_attention's `block_mask` at `block_size`,
    checked: a bool array broadcastable to batch + (ceil(L / Bq),
    ceil(S / Bk)) (True: that block of queries may see that block of
    keys), block_size an int >= 1 or a pair of them (None: FlexAttention's
    128).  Returns the table broadcast to that shape (a view) and (Bq,
    Bk)."""
    func = call.func
    if block_mask is None:
        raise ValueError(f"{func}: block_size={block_size!r} needs "
                         "block_mask (the table of blocks it sizes)")
    if block_size is None:
        block_size = 128
    pair = (block_size if isinstance(block_size, (tuple, list))
            else (block_size, block_size))
    if len(pair) != 2:
        raise ValueError(f"{func}: block_size must be an int >= 1 or a pair "
                         f"(query rows, keys) of them, got {block_size!r}")
    Bq, Bk = (count_value(b, "block_size", func) for b in pair)
    t = np.asarray(block_mask)
    if t.dtype != np.bool_:
        raise TypeError(f"{func}: block_mask must be a bool array (True: "
                        "the block of queries may see the block of keys), "
                        f"got dtype {t.dtype}")
    want = call.batch + (-(-call.L // Bq), -(-call.S // Bk))
    try:
        if t.ndim < 2:
            raise ValueError
        # A block longer than its axis is the whole axis: the same table,
        # and no size the kernels' integers cannot hold.
        return (np.broadcast_to(t, want), min(Bq, max(call.L, 1)),
                min(Bk, max(call.S, 1)))
    except ValueError:
        raise ValueError(f"{func}: block_mask of shape {t.shape} does not "
                         f"broadcast to (..., ceil(L / {Bq}), ceil(S / "
                         f"{Bk})) = {want}") from None


def fold_blocks(blocks: Blocks, mask: NDArray[Any] | None,
                call: Call) -> tuple[NDArray[Any], Call]:
    """The block mask as an element mask (batch + (L, S)) joined with
    `mask` (True where both show a key; a float mask keeps its values
    there and is -inf elsewhere), and the call with that mask's kind: for
    the paths that read a mask row by row (few query rows, indices,
    top-k) or that already have one."""
    t, Bq, Bk = blocks
    shape = t.shape[:-2] + (call.L, call.S)
    # Expand and join the distinct matrices only: the views' broadcast
    # axes stay broadcast.
    full = np.repeat(np.repeat(_distinct(t), Bq, axis=-2)[..., :call.L, :],
                     Bk, axis=-1)[..., :call.S]
    if mask is None:
        return (np.broadcast_to(full, shape),
                call._replace(mask_kind=MASK_BOOL))
    m = _distinct(mask)
    joined = (m & full if mask.dtype == np.bool_
              else np.where(full, m, mask.dtype.type(-np.inf)))
    return np.broadcast_to(joined, shape), call


def place_blocks(blocks: Blocks, mask: NDArray[Any] | None,
                 sel: NDArray[np.int32] | None, call: Call
                 ) -> tuple[NDArray[Any] | None, Call, Blocks | None]:
    """(mask, call, blocks) for the forward: the table kept as it is for
    the tiled path, or folded into the mask (fold_blocks) for a call that
    has one already or that the row paths take (indices, top-k's
    selection, few query rows)."""
    if (mask is not None or sel is not None or call.top_k
            or call.L <= _attention.row_path_rows()):
        mask, call = fold_blocks(blocks, mask, call)
        return mask, call, None
    return mask, call, blocks


def _distinct(x: NDArray[Any]) -> NDArray[Any]:
    """x with its broadcast leading axes (stride 0) cut to length 1."""
    return x[tuple(slice(None) if s else slice(0, 1)
                   for s in x.strides[:-2])]


def listed(indices: object, call: Call,
           packed: tuple[int, int] | None = None) -> NDArray[np.int32]:
    """Sparse attention's selected keys (scaled_dot_product_attention's
    `indices`), checked: integers, broadcastable to the key/value heads'
    batch + (L, k), each in [-1, S) with no key twice in one row (-1: an
    empty slot).  Returns them as int32 with a unit last stride, broadcast
    to call.items + (L, k) (GQA's query heads share their key/value head's
    lists), for the kernel.  packed = (total_q, Hkv): varlen_attention's
    layout instead, (total_q, Hkv, k), returned as (Hkv, total_q, k)."""
    func = call.func
    a = np.asarray(indices)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{func}: indices must be an integer array of key "
                        f"positions (-1 for an empty slot), got dtype "
                        f"{a.dtype}")
    batch = call.batch
    kv = batch[:-1] + (batch[-1] // call.group,) if call.group > 1 else batch
    want, what = (kv + (call.L,), "(..., key/value heads, L, k)")
    if packed is not None:
        want, what = packed, "(total_q, key/value heads, k)"
    if a.ndim < 2:
        raise ValueError(f"{func}: indices must have shape {what}, "
                         f"broadcastable to {want} + (k,), got shape "
                         f"{a.shape}")
    k = a.shape[-1]
    try:
        fits = np.broadcast_shapes(a.shape, want + (k,)) == want + (k,)
    except ValueError:
        fits = False
    if not fits or len(a.shape) > len(want) + 1:
        raise ValueError(f"{func}: indices of shape {a.shape} do not "
                         f"broadcast to {what} = {want + (k,)}")
    if call.S > np.iinfo(np.int32).max:
        raise ValueError(f"{func}: indices need S < 2**31, got S = {call.S}")
    keys = (f"a key of 0..S-1 = 0..{call.S - 1} or -1 (an empty slot)"
            if call.S else "-1 (an empty slot): there are no keys (S = 0)")
    if a.dtype != np.int32:
        if a.size and (a.min() < -1 or a.max() >= call.S):
            bad = [int(x) for x in np.argwhere((a < -1) | (a >= call.S))[0]]
            raise ValueError(f"{func}: indices{bad} = {a[tuple(bad)]} is "
                             f"not {keys}")
        a = a.astype(np.int32)
    a = np.ascontiguousarray(a)
    flaw = (_attention.check_indices(a.reshape(-1, k), call.S, call.threads)
            if k else None)
    if flaw is not None:
        row, slot, kind = flaw
        at = [int(x) for x in np.unravel_index(row, a.shape[:-1])] + [slot]
        key = int(a.reshape(-1, k)[row, slot])
        if kind == 1:
            raise ValueError(f"{func}: indices{at} = {key} is not {keys}")
        raise ValueError(f"{func}: indices{at[:-1]} lists key {key} twice "
                         f"(again in slot {slot}); each row lists a key at "
                         f"most once")
    if packed is not None:
        return np.broadcast_to(a, packed + (k,)).transpose(1, 0, 2)
    view = np.broadcast_to(a, kv + (call.L, k))
    return expand_kv(view) if call.group > 1 else view


def same_head_dim(func: str, names: Sequence[str], q: tuple[int, ...],
                  k: tuple[int, ...]) -> None:
    """The rule every attention call shares: query and key have one head
    size E (their last dimension).  `names` are the user's names of the
    two."""
    if k[-1] != q[-1]:
        raise ValueError(f"{func}: {names[0]} and {names[1]} must have the "
                         f"same last dimension E: {names[0]} has shape {q}, "
                         f"{names[1]} has shape {k}")


def head_group(func: str, H: int, Hkv: int, enable_gqa: bool,
               shapes: str) -> int:
    """Query heads per key/value head (GQA) when the head counts are known
    to differ or GQA is asked for: H must be a multiple of Hkv, and
    without enable_gqa they must be equal.  `shapes` says where the counts
    come from, for the message."""
    if Hkv == H:
        return 1
    if not enable_gqa:
        raise ValueError(f"{func}: the query has {H} heads and the key/value "
                         f"{Hkv} ({shapes}); for grouped-query attention "
                         f"pass enable_gqa=True")
    if Hkv == 0 or H % Hkv:
        raise ValueError(f"{func}: the query heads ({H}) must be a multiple "
                         f"of the key/value heads ({Hkv}) ({shapes})")
    return H // Hkv


def quantized_pair(func: str, names: Sequence[str], q: FloatArray,
                   key: Any, value: Any) -> None:
    """int8 keys and values (cattn.quantize) go together: both or neither
    quantized, one block size, a float32 or 16-bit query.  `names` are the
    user's names of key and value."""
    kq, vq = (isinstance(x, QuantizedArray) for x in (key, value))
    if kq != vq:
        plain = names[0] if not kq else names[1]
        raise TypeError(f"{func}: {names[0]} and {names[1]} must both be "
                        f"quantized (cattn.quantize) or neither; {plain} is "
                        f"not")
    if not kq:
        return
    if key.block_size != value.block_size:
        raise ValueError(f"{func}: quantized {names[0]} and {names[1]} must "
                         f"share one block_size, got {key.block_size} and "
                         f"{value.block_size}")
    if not (q.dtype == _checks.FLOAT32 or _checks.is_storage16(q.dtype)):
        raise TypeError(f"{func}: quantized {names[0]} and {names[1]} need "
                        f"a float32, float16 or bfloat16 query, got "
                        f"{q.dtype}")


def batch_and_group(func: str, names: Sequence[str],
                    shapes: Sequence[tuple[int, ...]],
                    enable_gqa: bool) -> tuple[tuple[int, ...], int]:
    """The shape rules of (query, key[, value]) on shapes alone (NumPy and
    Dask alike): the broadcast batch shape and the GQA group."""
    q, k = shapes[0], shapes[1]
    v = shapes[2] if len(shapes) == 3 else k
    if len(q) < 2 or len(k) < 2 or len(v) < 2:
        for n, s in zip(names, shapes):
            if len(s) < 2:
                raise ValueError(f"{func}: {n} must have at least 2 "
                                 f"dimensions (..., "
                                 f"{'L' if n == 'query' else 'S'}, "
                                 f"{'Ev' if n == 'value' else 'E'}), got "
                                 f"shape {s}")
    same_head_dim(func, names, q, k)
    if len(shapes) == 3 and shapes[2][-2] != k[-2]:
        raise ValueError(f"{func}: key and value must have the same number "
                         f"of keys S (dimension -2): key has shape {k}, "
                         f"value has shape {shapes[2]}")
    group = 1
    if enable_gqa and len(q) >= 3 and len(k) >= 3:
        hq, hk = q[-3], k[-3]
        if len(shapes) == 3 and shapes[2][-3] != hk:
            raise ValueError(f"{func}: with enable_gqa key and value must "
                             f"have the same number of heads (dimension -3): "
                             f"key has shape {k}, value has shape "
                             f"{shapes[2]}")
        group = head_group(func, hq, hk, True, f"dimension -3: query has "
                           f"shape {q}, key has shape {k}")
    lead = q[:-2]
    if group == 1 and k[:-2] == lead and v[:-2] == lead:
        return lead, group                     # one batch shape: the norm
    # With GQA, key/value heads count as query heads for broadcasting.
    leads = [lead] + [s[:-3] + (q[-3],) if group > 1 else s[:-2]
                      for s in shapes[1:]]
    if leads.count(lead) == len(leads):
        return lead, group
    try:
        return tuple(np.broadcast_shapes(*leads)), group
    except ValueError:
        got = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(f"{func}: leading (batch) dimensions do not "
                         f"broadcast: {got}"
                         + ("" if enable_gqa else "; for grouped-query "
                            "attention pass enable_gqa=True")) from None


def mask_kind(dtype: np.dtype[Any], func: str,
              operands: np.dtype[Any] | None = None) -> int:
    """The kernels' kind for a mask of `dtype`, else TypeError.  A float
    mask is added to the scores in the compute dtype: float32 or float64,
    or a 16-bit mask of the operands' own 16-bit dtype."""
    if dtype == np.bool_:
        return MASK_BOOL
    if dtype in _checks.SUPPORTED_DTYPES or (
            operands is not None and dtype == operands
            and _checks.is_storage16(dtype)):
        return MASK_ADD
    also = (f", {operands} like the operands" if operands is not None
            and _checks.is_storage16(operands) else "")
    raise TypeError(f"{func}: attn_mask has dtype {dtype}; expected bool "
                    f"(True = may attend) or float32/float64{also} (added "
                    "to the scores)")


NAMES: tuple[str, ...] = ("query", "key", "value")


def _new_call(fields: tuple[Any, ...]) -> Call:
    """Call(*fields) without NamedTuple's argument parsing (per call)."""
    return tuple.__new__(Call, fields)


def describe(func: str, query: ArrayLike, key: ArrayLike,
             value: ArrayLike | None = None,
             attn_mask: ArrayLike | None = None,
             is_causal: object = False, scale: object = None,
             enable_gqa: bool = False, window: object = None,
             top_k: object = None, num_threads: object = None,
             precision: object = None, softcap: object = None,
             sinks: object = None, alibi_slopes: object = None,
             query_lengths: object = None, key_lengths: object = None,
             extra: Sequence[tuple[str, ArrayLike]] = (),
             names: tuple[str, ...] = NAMES,
             chunk_size: object = None, prefix: object = None
             ) -> tuple[list[FloatArray], NDArray[Any] | None, Call]:
    """Validate one attention call in one pass.

    Returns the operands (query, key[, value], then each of `extra`) as
    arrays of one dtype (float32, float64 or 16-bit storage; mixed dtypes
    by _checks' promotion rule; a float32 result's forward operands may
    stay 16-bit, key and value alike, which the kernel reads as they are),
    the mask broadcast to (..., L, S) in the
    compute dtype or bool (None without one), and the :class:`Call`.
    `extra` (name, array) pairs join the dtype rule only (the gradient's
    grad_out, out and lse); their shapes are the caller's to check.
    `names` are the user's names of query, key and value in messages
    (self_attention's x).  Without `value`, Ev is E.  `softcap`, `sinks`
    and `alibi_slopes` are scaled_dot_product_attention's (per_head),
    `query_lengths` and `key_lengths` its per-row lengths (row_lengths).
    Every argument may be positional: the per-call entry (attention._attend)
    passes them so (thirteen keywords cost 0.6 us a call in CPython 3.11).
    """
    as_float = _checks.as_float_array
    # An ndarray of float32 or float64 is its own array (as_float_array's
    # result); checked inline, per call, without a call per operand.
    plain = _checks.SUPPORTED_DTYPES
    q = (query if type(query) is np.ndarray and query.dtype in plain
         else as_float(query, names[0], func, True))
    arrays: list[Any]
    if isinstance(key, QuantizedArray) or isinstance(value, QuantizedArray):
        arrays = _quantized(func, names, q, key, value, bool(extra), top_k)
        dtype = q.dtype                   # the output takes the query's
    else:
        k = (q if key is query else key if type(key) is np.ndarray
             and key.dtype in plain else as_float(key, names[1], func, True))
        if value is None:
            names, arrays = names[:2], [q, k]
        else:
            arrays = [q, k, k if value is key else value
                      if type(value) is np.ndarray and value.dtype in plain
                      else as_float(value, names[2], func, True)]
        if extra:
            arrays += [as_float(a, n, func, True) for n, a in extra]
        if not _checks.same_dtype(arrays):    # the promotion rule
            dtype = _checks.common_dtype(arrays)
            # A float32 query against a 16-bit key/value (a 16-bit KV
            # cache): the forward widens each as it reads it, the same
            # values as converting first, without the copies.
            if not (dtype == _checks.FLOAT32 and value is not None
                    and not extra and top_k is None
                    and arrays[1].dtype == arrays[2].dtype):
                arrays = [a.astype(dtype, copy=False) for a in arrays]
        else:
            dtype = q.dtype
    q, k = arrays[0], arrays[1]
    qs, ks = q.shape, k.shape
    vs = ks if value is None else arrays[2].shape
    batch, group = batch_and_group(
        func, names, (qs, ks) if value is None else (qs, ks, vs), enable_gqa)
    L, E, S, Ev = qs[-2], qs[-1], ks[-2], vs[-1]
    mask = None
    kind = MASK_NONE
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        kind = mask_kind(mask.dtype, func, dtype)
        if kind == MASK_ADD:
            mask = mask.astype(_checks.compute_dtype(dtype), copy=False)
        try:
            mask = np.broadcast_to(mask, batch + (L, S))
        except ValueError:
            raise ValueError(f"{func}: attn_mask of shape {mask.shape} does "
                             f"not broadcast to (..., L, S) = "
                             f"{batch + (L, S)}") from None
    call = call_of(func, dtype, batch, group, L, S, E, Ev, kind, is_causal,
                    window, scale, top_k, num_threads, precision, softcap,
                    sinks, alibi_slopes,
                    (None, None) if query_lengths is None
                    and key_lengths is None else
                    row_lengths(query_lengths, key_lengths, batch, L, S,
                                func), chunk_size, prefix)
    return arrays, mask, call


def call_of(func: str, dtype: np.dtype[Any], batch: tuple[int, ...],
             group: int, L: int, S: int, E: int, Ev: int, kind: int,
             is_causal: object, window: object, scale: object,
             top_k: object, num_threads: object, precision: object,
             softcap: object, sinks: object, alibi_slopes: object,
             lengths: tuple[NDArray[np.int64] | None,
                            NDArray[np.int64] | None],
             chunk_size: object = None, prefix: object = None) -> Call:
    """The Call of validated shapes, the options validated here (every
    entry point's, in the Call's field order)."""
    if (is_causal is False and window is None and top_k is None
            and precision is None and softcap is None and sinks is None
            and alibi_slopes is None and chunk_size is None
            and prefix is None):
        # Every option at its default (most calls): what the validators
        # made of the defaults once, at import.
        return _new_call((func, dtype, batch, group, L, S, E, Ev, kind,
                          _PLAIN_CAUSAL, _PLAIN_WINDOW,
                          scale_value(scale, E, func), _PLAIN_TOP_K,
                          _checks.resolve_threads(num_threads, func),
                          *_PLAIN, *lengths, None, _NO_SPANS))
    causal = causal_alignment(is_causal, func)
    return _new_call((func, dtype, batch, group, L, S, E, Ev, kind,
                      causal, window_bounds(window, func),
                      scale_value(scale, E, func),
                      top_k_value(top_k, S, func),
                      _checks.resolve_threads(num_threads, func),
                      precision_value(precision, func),
                      softcap_value(softcap, func),
                      per_head(sinks, "sinks", batch, func),
                      per_head(alibi_slopes, "alibi_slopes", batch, func,
                               finite=True)) + lengths
                     + (None, spans_value(chunk_size, prefix, causal, func)))


# The default options' fields as their validators make them: causal,
# window and top_k, then the fields after the thread count (precision,
# softcap, sinks, ALiBi).
_PLAIN_CAUSAL = causal_alignment(False, "")
_PLAIN_WINDOW = window_bounds(None, "")
_PLAIN_TOP_K = top_k_value(None, 1, "")
_NO_SPANS = spans_value(None, None, None, "")
_PLAIN = (precision_value(None, ""), softcap_value(None, ""),
          per_head(None, "", (), ""), per_head(None, "", (), ""))


def cu_seqlens(cu: object, name: str, total: int, what: str,
               func: str) -> NDArray[np.int64]:
    """Cumulative sequence offsets (FlashAttention's cu_seqlens): 1-D
    integers, starting at 0, never decreasing, ending at `total` (the
    packed arrays' length along axis 0)."""
    a = np.asarray(cu)
    if a.dtype.kind not in "iu" or a.ndim != 1 or a.size == 0:
        raise (TypeError if a.dtype.kind not in "iu" else ValueError)(
            f"{func}: {name} must be a 1-D integer array of sequence "
            f"offsets (number of sequences + 1), got "
            f"{'dtype ' + str(a.dtype) if a.dtype.kind not in 'iu' else 'shape ' + str(a.shape)}")
    c = a.astype(np.int64)
    if c[0] != 0:
        raise ValueError(f"{func}: {name} must start at 0, got {c[0]}")
    step = np.diff(c)
    if (step < 0).any():
        i = int(np.argmax(step < 0))
        raise ValueError(f"{func}: {name} must not decrease: {name}[{i + 1}]"
                         f" = {c[i + 1]} < {name}[{i}] = {c[i]}")
    if c[-1] != total:
        raise ValueError(f"{func}: {name} must end at the number of "
                         f"{what} ({total}, the packed array's first "
                         f"dimension), got {c[-1]}")
    return c


def describe_varlen(func: str, query: ArrayLike, key: ArrayLike,
                    value: ArrayLike, cu_seqlens_q: object,
                    cu_seqlens_k: object, *, is_causal: object = False,
                    scale: object = None, window: object = None,
                    softcap: object = None, sinks: object = None,
                    alibi_slopes: object = None, enable_gqa: bool = False,
                    num_threads: object = None, precision: object = None,
                    chunk_size: object = None, prefix: object = None
                    ) -> tuple[list[FloatArray], Call,
                               tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Validate a packed variable-length call (varlen_attention): query
    (total_q, H, E), key (total_k, Hkv, E), value (total_k, Hkv, Ev),
    sequences end to end, delimited by the cumulative offsets.  Returns
    the operands in one dtype, the Call (batch (nseq, H), L and S the
    longest sequences, per-item lengths) and the sequences' starts."""
    as_float = _checks.as_float_array
    arrays = [as_float(x, n, func, True)
              for x, n in zip((query, key, value), NAMES)]
    if not _checks.same_dtype(arrays):
        dtype = _checks.common_dtype(arrays)
        arrays = [a.astype(dtype, copy=False) for a in arrays]
    q, k, v = arrays
    for a, n, dims in ((q, "query", "(total_q, H, E)"),
                       (k, "key", "(total_k, Hkv, E)"),
                       (v, "value", "(total_k, Hkv, Ev)")):
        if a.ndim != 3:
            raise ValueError(f"{func}: {n} must have 3 dimensions {dims}, "
                             f"got shape {a.shape}")
    same_head_dim(func, NAMES, q.shape, k.shape)
    if v.shape[:2] != k.shape[:2]:
        raise ValueError(f"{func}: key and value must have the same number "
                         f"of tokens and heads: key has shape {k.shape}, "
                         f"value has shape {v.shape}")
    H, Hkv = q.shape[1], k.shape[1]
    group = head_group(func, H, Hkv, enable_gqa, f"dimension 1: query has "
                       f"shape {q.shape}, key has shape {k.shape}")
    cu_q = cu_seqlens(cu_seqlens_q, "cu_seqlens_q", q.shape[0], "queries",
                      func)
    cu_k = cu_seqlens(cu_seqlens_k, "cu_seqlens_k", k.shape[0], "keys",
                      func)
    if cu_q.size != cu_k.size:
        raise ValueError(f"{func}: cu_seqlens_q and cu_seqlens_k must "
                         f"describe as many sequences: {cu_q.size - 1} and "
                         f"{cu_k.size - 1}")
    len_q, len_k = np.diff(cu_q), np.diff(cu_k)
    nseq = len_q.size
    batch = (nseq, H)
    L = int(len_q.max(initial=0))
    S = int(len_k.max(initial=0))
    E, Ev = q.shape[2], v.shape[2]
    call = call_of(func, q.dtype, batch, group, L, S, E, Ev, MASK_NONE,
                    is_causal, window, scale, None, num_threads, precision,
                    softcap, sinks, alibi_slopes,
                    (np.repeat(len_q, H), np.repeat(len_k, H)), chunk_size,
                    prefix)
    return [q, k, v], call, (cu_q[:-1].copy(), cu_k[:-1].copy())


def describe_paged(func: str, query: ArrayLike, key_pages: Any,
                   value_pages: Any, block_table: object, seq_lens: object,
                   *, scale: object = None, window: object = None,
                   softcap: object = None, sinks: object = None,
                   alibi_slopes: object = None, num_threads: object = None,
                   precision: object = None, chunk_size: object = None,
                   prefix: object = None
                   ) -> tuple[FloatArray, Any, Any, NDArray[np.int64],
                              Call]:
    """Validate a paged-cache call (paged_attention): query (B, H, L, E),
    the last L tokens of each sequence; key_pages / value_pages
    (num_pages, Hkv, page_size, E / Ev), float or both int8
    (cattn.quantize); block_table (B, max_pages); seq_lens (B,).  The
    pages are never copied: a float query is cast to the pages' compute
    dtype when it differs (it is small), and pages in a dtype the query
    would have to be widened to are a TypeError.  Returns the query, the
    pages, the block table as int64 and the Call (batch (B, H), causal
    bottom-right, S the longest sequence, per-item lengths)."""
    q = _checks.as_float_array(query, "query", func, True)
    quantized_pair(func, ("key_pages", "value_pages"), q, key_pages,
                   value_pages)
    kp: Any
    vp: Any
    if isinstance(key_pages, QuantizedArray):
        kp, vp = key_pages, value_pages
        dtype = q.dtype
    else:
        kp = _checks.as_float_array(key_pages, "key_pages", func, True)
        vp = _checks.as_float_array(value_pages, "value_pages", func, True)
        if kp.dtype != vp.dtype:
            raise TypeError(f"{func}: key_pages and value_pages must share "
                            f"one dtype, got {kp.dtype} and {vp.dtype}")
        dtype = _checks.common_dtype([q, kp])
        store = _checks.compute_dtype(dtype) if (
            dtype == _checks.FLOAT32 and _checks.is_storage16(kp.dtype)) \
            else dtype
        if kp.dtype != dtype and not (store == _checks.FLOAT32
                                      and _checks.is_storage16(kp.dtype)):
            raise TypeError(f"{func}: pages of dtype {kp.dtype} with a "
                            f"{q.dtype} query would compute in {dtype}: "
                            f"the cache is never copied, so pass a query of "
                            f"its dtype (or float32 for 16-bit pages)")
        if q.dtype != dtype:
            q = q.astype(dtype)
    if q.ndim != 4:
        raise ValueError(f"{func}: query must have 4 dimensions (B, H, L, "
                         f"E), got shape {q.shape}")
    for x, n, last in ((kp, "key_pages", "E"), (vp, "value_pages", "Ev")):
        if x.ndim != 4:
            raise ValueError(f"{func}: {n} must have 4 dimensions "
                             f"(num_pages, Hkv, page_size, {last}), got "
                             f"shape {x.shape}")
    if kp.shape[:3] != vp.shape[:3]:
        raise ValueError(f"{func}: key_pages and value_pages must have the "
                         f"same pages, heads and page size: {kp.shape} and "
                         f"{vp.shape}")
    same_head_dim(func, ("query", "key_pages"), q.shape, kp.shape)
    B, H, L, E = q.shape
    num_pages, Hkv, page_size = kp.shape[:3]
    if page_size == 0:
        raise ValueError(f"{func}: the page size (key_pages.shape[2]) must "
                         f"be at least 1")
    head_group(func, H, Hkv, True, f"dimension 1: query has shape "
               f"{q.shape}, key_pages has shape {kp.shape}")
    bt = np.asarray(block_table)
    if bt.dtype.kind not in "iu":
        raise TypeError(f"{func}: block_table must be an integer array, "
                        f"got dtype {bt.dtype}")
    if bt.ndim != 2 or bt.shape[0] != B:
        raise ValueError(f"{func}: block_table must have shape (B, "
                         f"max_pages) = ({B}, ...), got {bt.shape}")
    sl = np.asarray(seq_lens)
    if sl.dtype.kind not in "iu":
        raise TypeError(f"{func}: seq_lens must be an integer array, got "
                        f"dtype {sl.dtype}")
    if sl.shape != (B,):
        raise ValueError(f"{func}: seq_lens must have shape (B,) = ({B},), "
                         f"got {sl.shape}")
    sl = sl.astype(np.int64)
    cap = bt.shape[1] * page_size
    bad = (sl < L) | (sl > cap)
    if bad.any():
        b = int(np.argmax(bad))
        raise ValueError(f"{func}: seq_lens[{b}] = {sl[b]} must lie in [L, "
                         f"max_pages · page_size] = [{L}, {cap}] (the query "
                         f"holds each sequence's last L tokens)")
    bt64 = np.ascontiguousarray(bt, dtype=np.int64)
    used = np.arange(bt.shape[1]) < -(-sl[:, None] // page_size)
    wrong = used & ((bt64 < 0) | (bt64 >= num_pages))
    if wrong.any():
        b, i = (int(x) for x in np.argwhere(wrong)[0])
        raise ValueError(f"{func}: block_table[{b}, {i}] = {bt64[b, i]} is "
                         f"not a page: it must lie in [0, num_pages) = [0, "
                         f"{num_pages}) (sequence {b} uses its first "
                         f"{int(used[b].sum())} entries)")
    batch = (B, H)
    Ev = vp.shape[3]
    call = call_of(func, dtype, batch, H // Hkv, L, int(sl.max(initial=0)),
                    E, Ev, MASK_NONE, "bottom_right", window, scale, None,
                    num_threads, precision, softcap, sinks, alibi_slopes,
                    (np.full(B * H, L, np.int64), np.repeat(sl, H)),
                    chunk_size, prefix)
    return q, kp, vp, bt64, call


def forward_paged(call: Call, q: FloatArray, kp: Any, vp: Any,
                  block_table: NDArray[np.int64], o: FloatArray,
                  lse: FloatArray | None,
                  indices: NDArray[np.int32] | None = None) -> None:
    """The fused forward of a paged call (describe_paged) into `o` (B, H,
    L, Ev), walkable, and `lse` (None, or C-contiguous (B, H, L)); with
    sparse attention's `indices` (listed()).  Pages whose rows are not
    unit-strided are copied first (the kernels copy whole rows out of a
    page), and with indices pages whose stride is not a whole number of
    rows (the listed rows are found as rows of the pool)."""
    items = call.items
    quant = None

    def rows_apart(x: NDArray[Any]) -> bool:
        return x.strides[2] != 0 and x.strides[0] % x.strides[2] == 0

    if isinstance(kp, QuantizedArray):
        kfull, vfull = kp.values, vp.values
        if indices is not None and not (rows_apart(kfull)
                                        and rows_apart(vfull)):
            raise ValueError(f"{call.func}: int8 pages with indices need "
                             "a page stride that is a whole number of rows "
                             "(a C-ordered pool)")
        paged: tuple[Any, ...] = (block_table, kfull, vfull, kp.scales,
                                  vp.scales)
        quant = (kp.scales[0], vp.scales[0], kp.block_size)
    else:
        kfull, vfull = (unit_rows(x) if indices is None or rows_apart(x)
                        else np.ascontiguousarray(x) for x in (kp, vp))
        paged = (block_table, kfull, vfull)
    k0, v0 = kfull[0], vfull[0]
    if call.group > 1:
        q, o = split_heads(q, call.group), split_heads(o, call.group)
        k0, v0 = expand_kv(k0), expand_kv(v0)
        if quant is not None:
            quant = (expand_kv(quant[0]), expand_kv(quant[1]), quant[2])
    _attention.attention(call, items, q, k0, v0, None, o, lse, None, quant,
                         None, paged, _SCHEDULES.get(), indices)


def _quantized(func: str, names: tuple[str, ...], q: FloatArray,
               key: Any, value: Any, extra: bool,
               top_k: object) -> list[Any]:
    """[q, key, value] for int8 key and value (cattn.quantize), checked:
    both quantized with one block size, a float32 or 16-bit query, and no
    option that needs the keys in float (top-k, the gradient)."""
    quantized_pair(func, names[1:], q, key, value)
    if extra or top_k is not None:
        raise ValueError(f"{func}: quantized key and value are supported by "
                         f"the forward without top_k (dequantize() them for "
                         f"top-k, hard attention or the gradient)")
    return [q, key, value]


# While record_schedules() is active in this context, the drivers append
# the schedule each call would run to this list instead of running it.
_SCHEDULES: ContextVar[list[dict[str, Any]] | None] = ContextVar(
    "cattn_schedules", default=None)


@contextlib.contextmanager
def record_schedules() -> Iterator[list[dict[str, Any]]]:
    """Within the block, attention calls (forward, top-k selection,
    backward) compute nothing: each driver appends the schedule it would
    run with the call's num_threads (its phases and the items' costs, in
    the order handed out) to the list yielded, and the call's outputs are
    left undefined.  For the many-core model of the real plans
    (benchmarks/many_cores.py)."""
    log: list[dict[str, Any]] = []
    token = _SCHEDULES.set(log)
    try:
        yield log
    finally:
        _SCHEDULES.reset(token)


def split_heads(x: NDArray[Any], group: int) -> NDArray[Any]:
    """View (..., H, r, c) as (..., H // group, group, r, c) (query side)."""
    return x.reshape(x.shape[:-3] + (x.shape[-3] // group, group)
                     + x.shape[-2:])


def expand_kv(x: NDArray[Any]) -> NDArray[Any]:
    """View (..., Hkv, r, c) as (..., Hkv, 1, r, c): broadcast over a group."""
    return x[..., np.newaxis, :, :]


def _grouped(call: Call, q: FloatArray, k: FloatArray,
             mask: NDArray[Any] | None
             ) -> tuple[FloatArray, FloatArray, NDArray[Any] | None]:
    """q, k and the mask walked over call.items: with GQA the query heads
    as (kv head, group) and k broadcast over the group (views)."""
    if call.group == 1:
        return q, k, mask
    return (split_heads(q, call.group), expand_kv(k),
            None if mask is None else split_heads(mask, call.group))


def forward(call: Call, q: FloatArray, k: FloatArray, v: FloatArray,
            mask: NDArray[Any] | None, o: FloatArray,
            lse: FloatArray | None,
            indices: NDArray[np.int32] | None = None,
            blocks: Blocks | None = None) -> None:
    """Run the fused forward of `call` into `o` (walkable, shape batch +
    (L, Ev), of call.dtype or, for 16-bit storage, float32) and `lse`
    (None, or C-contiguous batch + (L,) of call.compute); top-k first
    selects each row's keys.  `indices`: sparse attention's lists, as
    listed() returns them (rows of q, k and v not unit-strided are copied
    first: the row path reads them where they lie).  `blocks`: a block
    mask in place of an element mask, as block_mask_of() returns it, for a
    call the tiled path takes (_attend folds it into a mask otherwise)."""
    if not (o.size or (lse is not None and lse.size)):
        return
    items = call.items
    if indices is not None:
        q, k, v = (x if isinstance(x, QuantizedArray) else unit_rows(x)
                   for x in (q, k, v))
    if call.group > 1:
        q, k, mask = _grouped(call, q, k, mask)
        o, v = split_heads(o, call.group), expand_kv(v)
    # The drivers' arguments are positional (per call: a keyword to a
    # compiled function builds a dict).
    schedule = _SCHEDULES.get()
    thr: tuple[FloatArray, NDArray[np.int64]] | None = None
    if call.top_k:   # select first; the tiled kernel recomputes equal scores
        thr = (np.empty(items + (call.L,), dtype=call.compute),
               np.empty(items + (call.L,), dtype=np.int64))
        _topk.select_top_k(call, items, q, k, mask, *thr, schedule)
    skip = skip_empty_tiles(call, mask, q, k)
    table = None
    if blocks is not None:          # a bool block mask's hidden tiles
        skip = True
        t = split_heads(blocks[0], call.group) if call.group > 1 else blocks[0]
        table = (t.view(np.uint8), blocks[1], blocks[2])
    if isinstance(k, QuantizedArray):  # read as int8 values and scales
        vq = cast(QuantizedArray, v)
        _attention.attention(call, items, q, k.values, vq.values, mask, o,
                             lse, thr, (k.scales, vq.scales, k.block_size),
                             None, None, schedule, indices, skip, table)
    else:
        _attention.attention(call, items, q, k, v, mask, o, lse, thr, None,
                             None, None, schedule, indices, skip, table)
    if call.q_lens is not None:
        # The kernels write only the rows that exist; the padding past each
        # row's query length is 0, with lse -inf.
        q0 = call.origin[0] if call.origin is not None else 0
        pad = (np.arange(call.L) + q0
               >= call.q_lens.reshape(items)[..., None])
        o[pad] = 0
        if lse is not None:
            lse.reshape(items + (call.L,))[pad] = -np.inf


def unit_rows(x: NDArray[Any]) -> NDArray[Any]:
    """x, or a C-ordered copy if its last axis is not unit-strided: the
    row streams and the page readers read whole rows where they lie."""
    if x.shape[-1] <= 1 or x.strides[-1] == x.itemsize:
        return x
    return np.ascontiguousarray(x)


def skip_empty_tiles(call: Call, mask: Any, q: Any, k: Any) -> bool:
    """The mask's all-hidden tiles may be skipped, bit for bit: a bool
    mask's always, a float mask's (-inf) only when no score can be inf or
    NaN (NaN + -inf must stay NaN, as the dense call has it)."""
    if mask is None:
        return False
    if mask.dtype == np.bool_:
        return True
    return not isinstance(k, QuantizedArray) and finite_scores(call, q, k)


def finite_scores(call: Call, q: NDArray[Any], k: NDArray[Any]) -> bool:
    """No score scale·q·k can be inf or NaN: every |q|, |k| finite and
    scale·E·max|q|·max|k| (a bound of every partial sum) far below the
    compute dtype's largest value.  One pass over q and k."""
    if not (q.size and k.size):
        return True
    with np.errstate(invalid="ignore", over="ignore"):
        bound = (abs(call.scale) * call.E
                 * float(np.abs(q.astype(call.compute, copy=False)).max())
                 * float(np.abs(k.astype(call.compute, copy=False)).max()))
    return bool(bound < float(np.finfo(call.compute).max) / 4)


def forward_varlen(call: Call, q: FloatArray, k: FloatArray, v: FloatArray,
                   o: FloatArray, lse: FloatArray | None,
                   start_q: NDArray[np.int64],
                   start_k: NDArray[np.int64],
                   indices: NDArray[np.int32] | None = None) -> None:
    """The fused forward of a packed call (describe_varlen) into `o`
    (total_q, H, Ev), walkable, and `lse` (None, or C-contiguous (nseq, H,
    L)); the (sequence, head) items are handed to the threads longest
    first."""
    assert call.q_lens is not None and call.k_lens is not None
    work = call.q_lens * np.maximum(call.k_lens, 1)
    order = np.argsort(-work, kind="stable").astype(np.int64)
    if indices is not None:     # the row path reads rows where they lie
        q, k, v = (unit_rows(x) for x in (q, k, v))
    _attention.attention(call, call.items, q.transpose(1, 0, 2),
                         k.transpose(1, 0, 2), v.transpose(1, 0, 2), None,
                         o.transpose(1, 0, 2), lse, None, None,
                         (start_q, start_k, order), None, _SCHEDULES.get(),
                         indices)


def select(call: Call, q: FloatArray, k: FloatArray,
           mask: NDArray[Any] | None) -> NDArray[np.int64]:
    """Per query row (shape call.items + (L,)), the index of the worst of
    its top-k keys, -1 where it has fewer candidates (top_k=1: the argmax,
    as hard_attention wants it)."""
    items = call.items
    q, k, mask = _grouped(call, q, k, mask)
    idx = np.full(items + (call.L,), -1, dtype=np.int64)
    if idx.size and call.S:
        thr = np.empty(items + (call.L,), dtype=call.compute)
        _topk.select_top_k(call, items, q, k, mask, thr, idx,
                           _SCHEDULES.get())
    return idx


def scores(call: Call, q: FloatArray, k: FloatArray,
           mask: NDArray[Any] | None) -> NDArray[Any]:
    """Every score of `call` (batch + (L, S), the compute dtype) as the
    tiled forward computes it: scaled, capped and biased, masked, -inf
    where a key is hidden (the top-k driver's tiles, _topk.scores)."""
    items = call.items
    q, k, mask = _grouped(call, q, k, mask)
    out = np.empty(items + (call.L, call.S), dtype=call.compute)
    if out.size:
        _topk.scores(call, items, q, k, mask, out, _SCHEDULES.get())
    return out.reshape(call.batch + (call.L, call.S))


def softmax_with_sinks(call: Call, scores: NDArray[Any]) -> NDArray[Any]:
    """softmax of each row of `scores` (batch + (L, S)) with the call's
    sink joining its denominator, in place: exp(s - m) / (exp(sink - m) +
    Σ exp(s - m)), m the larger of the row's max and the sink."""
    assert call.sinks is not None
    dt = scores.dtype.type
    sink = call.sinks.astype(dt).reshape(call.batch)[..., np.newaxis,
                                                      np.newaxis]
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.maximum(np.max(scores, axis=-1, keepdims=True,
                              initial=-np.inf), sink)
        m = np.where(np.isneginf(m), dt(0), m)
        np.exp(scores - m, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True) + np.exp(sink - m)
    return scores


def hide(mask: Any, attend: Any, dtype: np.dtype[Any]) -> Any:
    """`mask` (None, bool "may attend" or float added) restricted to the
    keys `attend` allows: ANDed, or -inf where a float mask is hidden.
    NumPy or Dask arrays alike (np.where dispatches)."""
    if mask is None:
        return attend
    if mask.dtype == np.bool_:
        return mask & attend
    return np.where(attend, mask, dtype.type(-np.inf))


def sum_to_shape(x: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Sum `x` over the axes along which an array of `shape` was broadcast
    to x.shape: the gradient of a broadcast input."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + d for d, n in enumerate(shape)
        if n == 1 and x.shape[lead + d] != 1)
    return x.sum(axis=axes).reshape(shape) if axes else x
