"""The layer's key/value stores: KVCache (a growing cache per batch row),
PagedKVCache (a pool of fixed-size pages shared by many sequences, with a
block table per sequence) and ProjectedMemory (encoder states projected
once).  Each holds its keys and values in the storage it was made with
(float32/float64, 16-bit or int8 blocks) and appends under its own lock
(docs/policies.md, "Free-threaded Python"); MultiHeadAttention (nn.py)
makes them and attends over them.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks
from .quant import QuantizedArray, quantize
from ._typing import DTypeLike, FloatArray

_FUNC = "MultiHeadAttention"


def _cache_dtype(dtype: object, func: str) -> np.dtype[Any]:
    """A KV cache's storage dtype, else TypeError naming `func`."""
    dt: np.dtype[Any] | None
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or not (dt in _checks.SUPPORTED_DTYPES
                          or _checks.is_storage16(dt)):
        raise TypeError(f"{func}: dtype must be float32, float64, float16, "
                        f"bfloat16 or 'int8', got {dtype!r}")
    return dt


def _kv_storage(shape: tuple[int, ...], dtype: DTypeLike | str,
                block_size: int) -> tuple[Any, Any]:
    """Zeroed key and value storage of `shape`: arrays of `dtype`, or for
    "int8" QuantizedArrays with one scale per `block_size` of the last
    axis."""
    if isinstance(dtype, str) and dtype == "int8":
        return tuple(QuantizedArray(   # type: ignore[return-value]
            np.zeros(shape, np.int8),
            np.zeros(shape[:-1] + (shape[-1] // block_size,), np.float32),
            block_size) for _ in range(2))
    key = np.zeros(shape, dtype)
    return key, np.zeros_like(key)


def _store(store: Any, at: tuple[Any, ...], new: FloatArray) -> None:
    """store[at] = new, rounded to its dtype or quantized once (int8)."""
    if isinstance(store, QuantizedArray):
        q = quantize(new, store.block_size)
        store.values[at] = q.values
        store.scales[at] = q.scales
    else:
        store[at] = new


class KVCache:
    """Projected keys and values of past positions, for incremental decoding.

    Made by :meth:`MultiHeadAttention.new_cache`; storage for `max_len`
    positions is allocated once and filled as calls append to it.

    Parameters
    ----------
    batch, num_kv_heads, max_len, head_dim : int
        Shape of the storage.
    dtype : numpy.dtype or "int8"
        Its storage: the layer's dtype, a narrower one (float16, bfloat16)
        that halves the bytes decoding reads, or "int8" (cattn.quantize's
        blocks of `block_size` along head_dim, 1.125 bytes per element);
        appended keys and values are rounded or quantized once and the
        attention reads them as they are stored.
    block_size : int, optional
        Elements per scale of an int8 cache.

    Attributes
    ----------
    key, value : ndarray or QuantizedArray, shape (batch, num_kv_heads, max_len, head_dim)
        The storage; only ``[:, :, :length]`` is valid.
    length : int
        Number of positions cached so far.

    See Also
    --------
    MultiHeadAttention.new_cache : Makes one.
    ProjectedMemory : The cross-attention counterpart (fixed keys/values).

    Notes
    -----
    Each call with ``cache=`` projects only its new positions, so decoding
    T tokens costs O(T) projections, not O(T²).

    Threads: each append (a layer call with ``cache=``) takes the cache's
    lock to check, write and advance `length`, so calls from several
    threads never lose or overlap positions; they do interleave, so one
    cache should hold one sequence's tokens in one thread's order.

    Examples
    --------
    >>> import cattn
    >>> cache = cattn.MultiHeadAttention(8, 2).new_cache(batch=1, max_len=32)
    >>> cache.length, cache.max_len, cache.key.shape
    (0, 32, (1, 2, 32, 4))
    """

    key: Any            # ndarray, or QuantizedArray for an int8 cache
    value: Any
    length: int

    def __init__(self, batch: int, num_kv_heads: int, max_len: int,
                 head_dim: int, dtype: DTypeLike | str,
                 block_size: int = 32) -> None:
        self.key, self.value = _kv_storage(
            (batch, num_kv_heads, max_len, head_dim), dtype, block_size)
        self.length = 0
        # Appends from several threads: each check-write-advance whole.
        self._lock = threading.Lock()

    @property
    def max_len(self) -> int:
        """Number of positions the cache can hold.

        Fixed when the cache is made; a call that would append past it
        raises ValueError.

        See Also
        --------
        MultiHeadAttention.new_cache : Sets it.

        Examples
        --------
        >>> import cattn
        >>> cattn.MultiHeadAttention(8, 2).new_cache(1, max_len=16).max_len
        16
        """
        return int(self.key.shape[2])

    @property
    def dtype(self) -> np.dtype[Any] | str:
        """The storage: a float dtype, or "int8" (quantized blocks).

        Set by :meth:`MultiHeadAttention.new_cache`; an int8 cache holds
        :class:`QuantizedArray` keys and values.

        See Also
        --------
        MultiHeadAttention.new_cache : Chooses it.

        Examples
        --------
        >>> import cattn
        >>> cattn.MultiHeadAttention(8, 2).new_cache(1, 4, dtype="int8").dtype
        'int8'
        """
        return ("int8" if isinstance(self.key, QuantizedArray)
                else self.key.dtype)

    def _append(self, k: FloatArray,
                v: FloatArray) -> tuple[FloatArray, FloatArray]:
        with self._lock:
            return self._append_locked(k, v)

    def _append_locked(self, k: FloatArray,
                       v: FloatArray) -> tuple[FloatArray, FloatArray]:
        t = k.shape[2]
        if k.shape[0] != self.key.shape[0]:
            raise ValueError(f"{_FUNC}: the cache holds batch "
                             f"{self.key.shape[0]}, the input has batch "
                             f"{k.shape[0]}")
        if self.length + t > self.max_len:
            raise ValueError(f"{_FUNC}: the cache is full: {self.length} "
                             f"cached + {t} new > max_len {self.max_len}")
        at = (slice(None), slice(None), slice(self.length, self.length + t))
        _store(self.key, at, k)
        _store(self.value, at, v)
        self.length += t
        return (self.key[:, :, :self.length], self.value[:, :, :self.length])


class PagedKVCache:
    """Keys and values of many sequences in one pool of fixed-size pages.

    The serving layout of vLLM and FlashAttention's ``block_table``:
    sequences start, grow and end independently; a sequence takes a page
    from the pool's free list each time its last one fills and returns
    them all when it ends, so memory follows the tokens actually cached,
    not batch x the longest sequence.  Made by
    :meth:`MultiHeadAttention.new_paged_cache`; the layer's calls with
    ``cache=`` and ``sequences=`` append to it and attend through
    :func:`cattn.paged_attention`.

    Parameters
    ----------
    num_pages, num_kv_heads, page_size, head_dim : int
        The pool's shape.
    dtype : numpy.dtype or "int8"
        Storage, as :class:`KVCache`'s.
    block_size : int, optional
        Elements per scale of an int8 pool.

    Attributes
    ----------
    key_pages, value_pages : ndarray or QuantizedArray, shape (num_pages, num_kv_heads, page_size, head_dim)
        The pool.

    See Also
    --------
    MultiHeadAttention.new_paged_cache : Makes one.
    cattn.paged_attention : The attention it feeds.
    KVCache : One contiguous cache per batch.

    Notes
    -----
    Pages are taken lowest-numbered first and a sequence's pages are
    returned to the free list when it ends, so they end up scattered; the
    attention reads them through the block table and never gathers a
    contiguous copy.  An append that would need more pages than are free
    raises ValueError before anything is written.

    Threads: the page table (free list, each sequence's pages and length)
    changes and is read under one lock per pool, so threads that start,
    extend and end sequences at once (each its own) leave it consistent,
    and an append that finds the pool full raises as above.  A sequence
    that one thread frees while another attends over it is the caller's
    bug: its pages may already serve another sequence.

    Examples
    --------
    >>> import numpy as np, cattn
    >>> mha = cattn.MultiHeadAttention(8, 2, rng=0)
    >>> pool = mha.new_paged_cache(num_pages=16, page_size=4)
    >>> a, b = pool.add_sequence(), pool.add_sequence()
    >>> x = np.ones((2, 3, 8), np.float32)              # 3 tokens each
    >>> mha(x, cache=pool, sequences=[a, b]).shape
    (2, 3, 8)
    >>> pool.length(a), pool.num_free_pages
    (3, 14)
    >>> pool.free(a)
    >>> pool.num_free_pages
    15
    """

    key_pages: Any      # ndarray, or QuantizedArray for an int8 pool
    value_pages: Any

    def __init__(self, num_pages: int, num_kv_heads: int, page_size: int,
                 head_dim: int, dtype: DTypeLike | str,
                 block_size: int = 32) -> None:
        self.key_pages, self.value_pages = _kv_storage(
            (num_pages, num_kv_heads, page_size, head_dim), dtype, block_size)
        self._free = list(range(num_pages - 1, -1, -1))   # pop: lowest
        self._pages: dict[int, list[int]] = {}
        self._lengths: dict[int, int] = {}
        self._next = 0
        # The page table (_free, _pages, _lengths, _next) changes and is
        # read under this lock only, so threads that append, start or end
        # sequences at once always leave it consistent.
        self._lock = threading.Lock()

    @property
    def page_size(self) -> int:
        """Tokens per page.

        Fixed when the pool is made; a sequence of n tokens holds
        ceil(n / page_size) pages.

        See Also
        --------
        MultiHeadAttention.new_paged_cache : Sets it.

        Examples
        --------
        >>> import cattn
        >>> cattn.MultiHeadAttention(8, 2).new_paged_cache(4, 16).page_size
        16
        """
        return int(self.key_pages.shape[2])

    @property
    def num_free_pages(self) -> int:
        """Pages no sequence holds.

        Appends take from them; :meth:`free` gives a sequence's back.

        See Also
        --------
        free : Returns pages.

        Examples
        --------
        >>> import cattn
        >>> cattn.MultiHeadAttention(8, 2).new_paged_cache(4).num_free_pages
        4
        """
        return len(self._free)

    def add_sequence(self) -> int:
        """Start a sequence; returns its id (pages come as it grows).

        Pass the id in ``sequences=`` to the layer's calls, one per batch
        row, until :meth:`free` ends it.

        Returns
        -------
        seq : int
            A new id, never reused.

        Raises
        ------
        None

        See Also
        --------
        free : Ends it.

        Notes
        -----
        Takes no page: the first append takes them.

        Examples
        --------
        >>> import cattn
        >>> pool = cattn.MultiHeadAttention(8, 2).new_paged_cache(4)
        >>> pool.add_sequence(), pool.add_sequence()
        (0, 1)
        """
        with self._lock:
            seq = self._next
            self._next += 1
            self._pages[seq] = []
            self._lengths[seq] = 0
        return seq

    def _check(self, seq: object) -> int:
        if isinstance(seq, (bool, np.bool_)) or not isinstance(
                seq, (int, np.integer)) or int(seq) not in self._pages:
            raise ValueError(f"PagedKVCache: no sequence {seq!r} (live: "
                             f"{sorted(self._pages)})")
        return int(seq)

    def length(self, seq: int) -> int:
        """Tokens cached for sequence `seq`.

        Grows by each call's tokens for that sequence.

        Parameters
        ----------
        seq : int
            A live sequence's id.

        Returns
        -------
        length : int

        Raises
        ------
        ValueError
            If `seq` is not a live sequence.

        See Also
        --------
        block_table : Every sequence's length at once.

        Notes
        -----
        The number of keys the next call's queries see before their own.

        Examples
        --------
        >>> import cattn
        >>> pool = cattn.MultiHeadAttention(8, 2).new_paged_cache(4)
        >>> pool.length(pool.add_sequence())
        0
        """
        with self._lock:
            return self._lengths[self._check(seq)]

    def free(self, seq: int) -> None:
        """End sequence `seq`: its pages go back to the pool.

        Its id is not reused; its pages serve the sequences that grow
        next.

        Parameters
        ----------
        seq : int
            A live sequence's id.

        Returns
        -------
        None

        Raises
        ------
        ValueError
            If `seq` is not a live sequence (or was freed already).

        See Also
        --------
        add_sequence : Starts one.

        Notes
        -----
        The pages' contents stay until another sequence overwrites them;
        nothing reads them meanwhile.

        Examples
        --------
        >>> import cattn
        >>> pool = cattn.MultiHeadAttention(8, 2).new_paged_cache(4)
        >>> pool.free(pool.add_sequence())
        """
        with self._lock:
            seq = self._check(seq)
            self._free.extend(reversed(self._pages.pop(seq)))
            del self._lengths[seq]

    def block_table(self, sequences: Sequence[int]
                    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The block table and the lengths of `sequences`, as
        :func:`cattn.paged_attention` takes them.

        Parameters
        ----------
        sequences : sequence of int
            Live sequences' ids, one per batch row.

        Returns
        -------
        block_table : ndarray of int64, shape (len(sequences), max_pages)
            Each sequence's pages in order, -1 past its last.
        seq_lens : ndarray of int64, shape (len(sequences),)

        Raises
        ------
        ValueError
            If an id is not a live sequence.

        See Also
        --------
        cattn.paged_attention : Takes them.

        Notes
        -----
        For calling :func:`cattn.paged_attention` directly on
        `key_pages` / `value_pages`; the layer does it for you.

        Examples
        --------
        >>> import cattn
        >>> pool = cattn.MultiHeadAttention(8, 2).new_paged_cache(4)
        >>> table, lens = pool.block_table([pool.add_sequence()])
        >>> table.shape, lens
        ((1, 1), array([0]))
        """
        with self._lock:
            seqs = [self._check(s) for s in sequences]
            width = max([len(self._pages[s]) for s in seqs] + [1])
            table = np.full((len(seqs), width), -1, np.int64)
            for b, s in enumerate(seqs):
                table[b, :len(self._pages[s])] = self._pages[s]
            return table, np.array([self._lengths[s] for s in seqs],
                                   np.int64)

    def _append(self, sequences: Sequence[int], k: FloatArray,
                v: FloatArray) -> None:
        """Append k, v (B, Hkv, T, d) to the B sequences, taking pages as
        they fill; nothing changes if the pool cannot hold them all."""
        with self._lock:
            self._append_locked(sequences, k, v)

    def _append_locked(self, sequences: Sequence[int], k: FloatArray,
                       v: FloatArray) -> None:
        seqs = [self._check(s) for s in sequences]
        if len(set(seqs)) != len(seqs) or len(seqs) != k.shape[0]:
            raise ValueError(f"{_FUNC}: sequences must name {k.shape[0]} "
                             f"distinct live sequences (one per batch row), "
                             f"got {list(sequences)}")
        t, ps = k.shape[2], self.page_size
        need = sum(-(-(self._lengths[s] + t) // ps) - len(self._pages[s])
                   for s in seqs)
        if need > len(self._free):
            raise ValueError(f"{_FUNC}: the paged cache is full: {need} more "
                             f"pages needed, {len(self._free)} free")
        for b, s in enumerate(seqs):
            pages, n = self._pages[s], self._lengths[s]
            while len(pages) * ps < n + t:
                pages.append(self._free.pop())
            j = 0
            while j < t:            # one page's run at a time
                page, slot = pages[(n + j) // ps], (n + j) % ps
                m = min(ps - slot, t - j)
                at = (page, slice(None), slice(slot, slot + m))
                _store(self.key_pages, at, k[b, :, j:j + m])
                _store(self.value_pages, at, v[b, :, j:j + m])
                j += m
            self._lengths[s] = n + t


class ProjectedMemory:
    """Encoder states projected once to keys and values for cross-attention.

    Made by :meth:`MultiHeadAttention.project_memory`; pass it as `key` to
    the layer at every decoding step instead of the raw encoder output.

    Parameters
    ----------
    key, value : ndarray, shape (batch, num_kv_heads, S, head_dim)
        The projected keys and values, split into heads.

    See Also
    --------
    MultiHeadAttention.project_memory : Makes one.
    KVCache : The self-attention counterpart (growing keys/values).

    Notes
    -----
    Build it with :meth:`MultiHeadAttention.project_memory`, not directly.

    Examples
    --------
    >>> import numpy as np, cattn
    >>> mha = cattn.MultiHeadAttention(8, 2)
    >>> mha.project_memory(np.ones((3, 5, 8), np.float32)).key.shape
    (3, 2, 5, 4)
    """

    key: FloatArray
    value: FloatArray

    def __init__(self, key: FloatArray, value: FloatArray) -> None:
        self.key = key
        self.value = value
