# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The attention frame, kernel side (declarations and contracts in
_frame.pxd): the problem read from a Call, operand descriptors with their
contracts checked, and the per-thread scratch arena."""
cimport cython
cimport numpy as cnp
import numpy as np
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.stdint cimport int16_t, int64_t, uint8_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from ._convert cimport storage_of
from ._cpu cimport team_enter, team_leave
from ._visibility cimport MASK_ADD, MASK_BOOL, MASK_NONE, set_visibility

cnp.import_array()

cdef enum:
    MAX_DIMS = 64           # NPY_MAXDIMS in NumPy 2
    MAX_OPERANDS = 9

# The mask kinds of _visibility.pxd, for the Python frame (in this order).
MASK_KINDS = (MASK_NONE, MASK_BOOL, MASK_ADD)

cdef int read_call(Frame *f, object call, tuple items) except -1:
    """Fill f from a validated _frame.Call; `items` is the batch shape the
    operands are walked over (call.batch, or call.items for GQA)."""
    cdef tuple c = <tuple>call
    cdef object causal = c[C_CAUSAL], window = c[C_WINDOW]
    cdef int64_t chunk, prefix
    f.L, f.S, f.E, f.Ev = c[C_L], c[C_S], c[C_E], c[C_EV]
    f.mask_kind = c[C_MASK_KIND]
    f.scale = c[C_SCALE]
    f.top_k = c[C_TOP_K]
    f.threads = c[C_THREADS]
    f.highest = c[C_PRECISION] == "highest"
    f.softcap = c[C_SOFTCAP]
    # Per query head of the batch: the forward's and top-k's items, the
    # gradient's items times its group.
    f.sinks = f.slopes = NULL
    f.q_lens = f.k_lens = NULL
    cdef int64_t per_head
    if (c[C_SINKS] is not None or c[C_ALIBI] is not None
            or c[C_Q_LENS] is not None or c[C_K_LENS] is not None):
        per_head = nitems_of(c[C_BATCH])
        f.sinks = <const double *>per_item(c[C_SINKS], "sinks", per_head,
                                           c[C_FUNC])
        f.slopes = <const double *>per_item(c[C_ALIBI], "alibi_slopes",
                                            per_head, c[C_FUNC])
        f.q_lens = <const int64_t *>per_item(c[C_Q_LENS], "query_lengths",
                                             per_head, c[C_FUNC], np.int64)
        f.k_lens = <const int64_t *>per_item(c[C_K_LENS], "key_lengths",
                                             per_head, c[C_FUNC], np.int64)
    if (f.q_lens == NULL) != (f.k_lens == NULL):
        raise AssertionError(f"{c[C_FUNC]}: cattn internal error: one "
                             "length array without the other")
    f.q0 = f.k0 = 0
    if c[C_ORIGIN] is not None:         # a block: global lengths needed
        if f.q_lens == NULL:
            raise AssertionError(f"{c[C_FUNC]}: cattn internal error: a "
                                 "block of a call without lengths")
        f.q0, f.k0 = c[C_ORIGIN]
    f.bottom_right = causal == "bottom_right"
    cdef cnp.dtype dtype = <cnp.dtype>c[C_DTYPE]
    f.is_native = dtype.type_num in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64)
    f.is_f32 = dtype.type_num != cnp.NPY_FLOAT64    # 16-bit: float32
    f.nitems = nitems_of(items)
    f.isa = active_isa()
    f.c32 = cattn_cols_f32_for(f.isa)
    f.c64 = cattn_cols_f64_for(f.isa)
    f.k32 = cattn_topk_f32_for(f.isa)
    f.k64 = cattn_topk_f64_for(f.isa)
    chunk, prefix = c[C_SPANS]
    set_visibility(&f.vis, f.L, f.S, causal is not None,
                   f.S - f.L if causal == "bottom_right" else 0,
                   window[0] if window is not None else None,
                   window[1] if window is not None else None,
                   chunk, prefix, f.k0)
    return 0


cdef int64_t nitems_of(tuple items):
    cdef int64_t n = 1, d
    for d in items:
        n *= d
    return n


cdef const void *per_item(object a, str name, int64_t n, str func,
                          object dtype=np.float64) except? NULL:
    """The data of a per-item array of the Call (kept alive by it), or NULL
    for None; its contract (dtype, C-contiguous, n values) checked."""
    if a is None:
        return NULL
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if arr.dtype != dtype:
        raise AssertionError(f"{func}: cattn internal error: {name} must "
                             f"be {dtype}")
    check_rows(arr, n, func, name)
    return cnp.PyArray_DATA(arr)


cdef bint walkable(cnp.ndarray x) noexcept:
    """Strides in whole elements and data aligned to the item size (a C
    load of a misaligned float is undefined behaviour): the kernels can
    read x in place."""
    cdef int d
    cdef int64_t item = cnp.PyArray_ITEMSIZE(x)
    if not cnp.PyArray_ISALIGNED(x):
        return False
    for d in range(x.ndim):
        if x.strides[d] % item:
            return False
    return True


@cython.auto_pickle(False)     # holds raw pointers: never pickled
cdef class Operands:
    """The operands of one kernel call, as the kernels walk them."""

    def __cinit__(self, int64_t nitems):
        self.keep = []
        self.nitems = nitems
        self.count = 0
        self.offsets = <int64_t *>malloc(
            MAX_OPERANDS * (nitems if nitems > 0 else 1) * sizeof(int64_t))
        if self.offsets == NULL:
            raise MemoryError("cattn: cannot allocate operand offsets")

    def __dealloc__(self):
        free(self.offsets)

    cdef Operand *add(self, object x, tuple items, int64_t rows,
                      int64_t cols, str func, str name) except NULL:
        """Describe `x` (shape (..., rows, cols), broadcast to `items`):
        itself if its strides can be walked, else a C-ordered copy.

        Contract, checked before any kernel runs: the last two dimensions
        are (rows, cols), the batch broadcasts to `items`, and every element
        an item's matrix reaches lies inside x's own memory."""
        cdef cnp.ndarray a = <cnp.ndarray>x
        if not walkable(a):
            a = a.copy()
        cdef int nd = a.ndim, d
        cdef int64_t item = cnp.PyArray_ITEMSIZE(a), i, s
        cdef int64_t lo = 0, hi = 0, reach_lo = 0, reach_hi = 0
        cdef Operand *op = &self.op[self.count]
        cdef int64_t *off = self.offsets + self.count * (
            self.nitems if self.nitems > 0 else 1)
        if (self.count >= MAX_OPERANDS or nd < 2 or a.shape[nd - 2] != rows
                or a.shape[nd - 1] != cols
                or batch_offsets_into(a, items, off, self.nitems) < 0):
            raise AssertionError(
                f"{func}: cattn internal error: operand {name} of shape "
                f"{(<object>a).shape} does not fit (..., {rows}, {cols}) "
                f"over items {items}")
        op.rs = a.strides[nd - 2] // item
        op.cs = a.strides[nd - 1] // item
        if rows > 0 and cols > 0:
            # The array's own memory, in elements from element 0, against
            # what each item's matrix reaches.
            for d in range(nd):
                s = (a.shape[d] - 1) * (a.strides[d] // item)
                if s < 0:
                    lo += s
                else:
                    hi += s
            reach_lo = min(0, (rows - 1) * op.rs) + min(0, (cols - 1) * op.cs)
            reach_hi = max(0, (rows - 1) * op.rs) + max(0, (cols - 1) * op.cs)
            for i in range(self.nitems):
                if off[i] + reach_lo < lo or off[i] + reach_hi > hi:
                    raise AssertionError(
                        f"{func}: cattn internal error: operand {name} "
                        f"would be read outside its memory")
        op.data = <const char *>cnp.PyArray_DATA(a)
        op.off = off
        self.keep.append(a)
        self.count += 1
        return op

    cdef Operand *add_ragged(self, object x, object starts, object lens,
                             int64_t group, int64_t cols, str func,
                             str name) except NULL:
        """Describe a packed operand (varlen_attention's): `x` of shape
        (heads, total, cols) -- the user's (total, heads, cols) transposed
        -- holds sequences end to end along `total`; work item s·H + h
        (H = heads·group query heads) is the matrix of rows starts[s] ..
        starts[s] + lens[s] of head h // group, itself if x's strides can
        be walked, else of a C-ordered copy.

        Contract, checked before any kernel runs: `starts` and `lens` are
        int64 of one length, and every element an item reaches lies inside
        x's own memory (a kernel reads only an item's first lens[s]
        rows)."""
        cdef cnp.ndarray a = <cnp.ndarray>x
        if not walkable(a):
            a = a.copy()
        cdef cnp.ndarray st = <cnp.ndarray>starts, ln = <cnp.ndarray>lens
        cdef int64_t item = cnp.PyArray_ITEMSIZE(a), nseq, heads, H, s, h, i, rows
        cdef int64_t hs, rs, cs, lo = 0, hi = 0, d, e, reach_lo, reach_hi
        cdef Operand *op = &self.op[self.count]
        cdef int64_t *off = self.offsets + self.count * (
            self.nitems if self.nitems > 0 else 1)
        if (self.count >= MAX_OPERANDS or a.ndim != 3 or a.shape[2] != cols
                or st.dtype != np.int64 or ln.dtype != np.int64
                or st.ndim != 1 or ln.ndim != 1
                or st.shape[0] != ln.shape[0]):
            raise AssertionError(f"{func}: cattn internal error: packed "
                                 f"operand {name} does not fit")
        nseq, heads = st.shape[0], a.shape[0]
        H = heads * group
        if nseq * H != self.nitems:
            raise AssertionError(f"{func}: cattn internal error: packed "
                                 f"operand {name}: {nseq} x {H} items, "
                                 f"expected {self.nitems}")
        hs = a.strides[0] // item
        rs = a.strides[1] // item
        cs = a.strides[2] // item
        for d in range(3):
            e = (a.shape[d] - 1) * (a.strides[d] // item)
            if e < 0:
                lo += e
            else:
                hi += e
        for s in range(nseq):
            rows = (<int64_t *>cnp.PyArray_DATA(ln))[s]
            for h in range(H):
                i = s * H + h
                off[i] = ((h // group) * hs
                          + (<int64_t *>cnp.PyArray_DATA(st))[s] * rs)
                if rows <= 0 or cols <= 0:
                    continue
                reach_lo = min(0, (rows - 1) * rs) + min(0, (cols - 1) * cs)
                reach_hi = max(0, (rows - 1) * rs) + max(0, (cols - 1) * cs)
                if off[i] + reach_lo < lo or off[i] + reach_hi > hi:
                    raise AssertionError(
                        f"{func}: cattn internal error: packed operand "
                        f"{name} would be read outside its memory")
        op.rs, op.cs = rs, cs
        op.data = <const char *>cnp.PyArray_DATA(a)
        op.off = off
        self.keep.append(a)
        self.count += 1
        return op

    cdef Operand *add_mask(self, object mask, const Frame *f, tuple items,
                           str func) except NULL:
        """The attention mask (L, S) of f's kind: absent without one, a bool
        mask read as its bytes, a float mask as it is."""
        if mask is None:
            return self.absent()
        return self.add(mask.view(np.uint8) if f.mask_kind == MASK_BOOL
                        else mask, items, f.L, f.S, func, "attn_mask")

    cdef Operand *absent(self) except NULL:
        """A missing operand (no mask): strides 0, offsets all 0."""
        cdef Operand *op = &self.op[self.count]
        cdef int64_t *off = self.offsets + self.count * (
            self.nitems if self.nitems > 0 else 1)
        cdef int64_t i
        if self.count >= MAX_OPERANDS:
            raise AssertionError("cattn internal error: too many operands")
        for i in range(self.nitems):
            off[i] = 0
        op.data = NULL
        op.rs = op.cs = 0
        op.off = off
        self.count += 1
        return op


cdef int batch_offsets_into(cnp.ndarray a, tuple items, int64_t *off,
                            int64_t total) except -2:
    """off[i] = element offset of matrix i of `a` (shape (..., r, c))
    broadcast to the batch `items` (C order, total = prod(items) of them);
    a broadcast dimension has stride 0, so a shared operand is read in
    place.  -1 if `a` does not broadcast to `items`.  Strides must be whole
    elements (walkable)."""
    cdef int nb = len(items), nd = a.ndim, lead = nb - (nd - 2), d
    cdef int64_t item = cnp.PyArray_ITEMSIZE(a), i, n, cur = 0
    cdef int64_t size[MAX_DIMS]
    cdef int64_t stride[MAX_DIMS]
    cdef int64_t idx[MAX_DIMS]
    if nd < 2 or lead < 0 or nb > MAX_DIMS:
        return -1
    for d in range(nb):
        size[d] = items[d]
        idx[d] = 0
        stride[d] = 0
        if d >= lead:
            n = a.shape[d - lead]
            if n != 1:
                if n != size[d]:
                    return -1
                stride[d] = a.strides[d - lead] // item
    for i in range(total):
        off[i] = cur
        d = nb - 1
        while d >= 0:       # odometer step in C order
            idx[d] += 1
            cur += stride[d]
            if idx[d] < size[d]:
                break
            cur -= stride[d] * size[d]
            idx[d] = 0
            d -= 1
    return 0


cdef int check_rows(object a, int64_t n, str func, str name) except -1:
    """Contract of a per-row array or an output the drivers write as one
    block (lse, top-k thresholds, gradients): C-contiguous, n elements."""
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or arr.size != n:
        raise AssertionError(f"{func}: cattn internal error: {name} must be "
                             f"C-contiguous with {n} elements")
    return 0


cdef int one_storage(str func, tuple arrays, int64_t *size) except -2:
    """The storage (NATIVE or a 16-bit column, _convert.pxd) and, in *size,
    the item size that the operands `arrays` share: a driver reads them
    all through one kernel's packers.  Else an internal error naming their
    dtypes."""
    cdef cnp.ndarray first = arrays[0], a
    cdef int storage = storage_of(first)
    size[0] = cnp.PyArray_ITEMSIZE(first)
    for a in arrays:
        if storage_of(a) != storage or cnp.PyArray_ITEMSIZE(a) != size[0]:
            raise AssertionError(
                f"{func}: cattn internal error: operands of dtypes "
                f"{', '.join(str(x.dtype) for x in arrays)} read as one")
    return storage


cdef void *checked_alloc(size_t nbytes, str func) except NULL:
    # calloc: padding lanes of the tiles hold zeros, never stale NaN/garbage.
    cdef void *ptr = calloc(nbytes if nbytes > 0 else 1, 1)
    if ptr == NULL:
        raise MemoryError(f"{func}: cannot allocate {nbytes} bytes of "
                          f"scratch")
    return ptr


cdef int arena_new(Arena *a, int nthreads, size_t per_thread,
                   str func, size_t shared=0) except -1:
    """One zeroed block of nthreads slots of per_thread bytes (rounded up to
    64) and then `shared` bytes (arena_at(a, nthreads, at): what the
    threads share), 64-byte aligned; MemoryError naming `func` if it
    cannot be had."""
    a.per_thread = (per_thread + 63) & ~(<size_t>63)
    a.base = NULL
    cdef char *raw = <char *>checked_alloc(
        <size_t>nthreads * a.per_thread + shared + 64 + sizeof(void *), func)
    # Align by hand and keep the raw pointer just below the base.
    cdef size_t addr = (<size_t>raw + sizeof(void *) + 63) & ~(<size_t>63)
    a.base = <char *>addr
    (<void **>a.base - 1)[0] = raw
    return 0


cdef void arena_free(Arena *a) noexcept nogil:
    if a.base != NULL:
        free((<void **>a.base - 1)[0])
        a.base = NULL

# ------------------------------------------------------- the mask's tiles --
#
# classify_tiles reads each distinct (L, S) matrix of a mask once and marks
# every (query block, key block) tile EMPTY (the mask hides all of it:
# False, or -inf), FULL (it hides and adds nothing: True, or ±0) or
# PARTIAL, and, if asked, a PARTIAL tile's row extents (the first and last
# column each row may see) and, of a bool mask, which PARTIAL tiles the
# extents describe whole (INTERVAL: the drivers then read no mask there,
# once per head, having read it here once per distinct matrix).  The
# forward (forward/masks.pxi) and the backward skip EMPTY tiles with it;
# both are exact, for the reasons and under the conditions given there.
# With Bq > 0 it classifies a block mask instead (block_mask, below).

cdef uint8_t tile_class(int mask_kind, int64_t rs_m, int64_t cs_m,
                        const char *m, int64_t nrows, int64_t ncols,
                        floating kind) noexcept nogil:
    """The class of the tile of nrows x ncols mask elements from m (bool
    bytes for MASK_BOOL, else `floating`: only kind's type matters)."""
    cdef int64_t r, c
    cdef int all_in = 1, any_in = 0, zero = 1, ninf = 1
    cdef const uint8_t *b
    cdef const floating *x
    for r in range(nrows):
        if mask_kind == MASK_BOOL:
            b = <const uint8_t *>m + r * rs_m
            if cs_m == 1:
                for c in range(ncols):
                    all_in &= b[c]
                    any_in |= b[c]
            else:
                for c in range(ncols):
                    all_in &= b[c * cs_m]
                    any_in |= b[c * cs_m]
            if any_in and not all_in:
                return TILE_PARTIAL
        else:
            x = <const floating *>m + r * rs_m
            for c in range(ncols):
                zero &= x[c * cs_m] == 0
                ninf &= x[c * cs_m] == -INFINITY
            if not zero and not ninf:
                return TILE_PARTIAL
    if mask_kind == MASK_BOOL:
        return TILE_FULL if all_in else TILE_EMPTY
    return TILE_FULL if zero else TILE_EMPTY


cdef void tile_extents(int mask_kind, int64_t rs_m, int64_t cs_m,
                       const char *m, int64_t nrows, int64_t ncols,
                       int16_t *ext, floating kind) noexcept nogil:
    """ext[2r], ext[2r + 1]: the first and last column of row r of the
    tile (as tile_class) that is visible (True, or not -inf); ncols and
    -1 for a row with none."""
    cdef int64_t r, c, lo
    cdef const uint8_t *b
    cdef const floating *x
    for r in range(nrows):
        lo = ncols
        if mask_kind == MASK_BOOL:
            b = <const uint8_t *>m + r * rs_m
            for c in range(ncols):
                if b[c * cs_m]:
                    lo = c
                    break
            c = ncols - 1
            while c > lo and not b[c * cs_m]:
                c -= 1
        else:
            x = <const floating *>m + r * rs_m
            for c in range(ncols):
                if x[c * cs_m] != -INFINITY:
                    lo = c
                    break
            c = ncols - 1
            while c > lo and x[c * cs_m] == -INFINITY:
                c -= 1
        ext[2 * r] = <int16_t>lo
        ext[2 * r + 1] = <int16_t>(c if lo < ncols else -1)


cdef bint extents_say_all(int64_t rs_m, int64_t cs_m, const char *m,
                          int64_t nrows, const int16_t *ext) noexcept nogil:
    """A bool PARTIAL tile's extents (tile_extents) say all its mask says
    (the INTERVAL condition, _frame.pxd): every row true from its first to
    its last visible key, the rows with any one run, both ends
    nondecreasing along it.  Reads each row's interior once."""
    cdef int64_t r, c, lo, hi, prev_lo = -1, prev_hi = -1
    cdef bint started = False, ended = False
    cdef const uint8_t *b
    for r in range(nrows):
        lo, hi = ext[2 * r], ext[2 * r + 1]
        if hi < 0:                      # the row sees nothing
            ended = started
            continue
        if ended or lo < prev_lo or hi < prev_hi:
            return False
        started = True
        prev_lo, prev_hi = lo, hi
        b = <const uint8_t *>m + r * rs_m
        for c in range(lo + 1, hi):
            if not b[c * cs_m]:
                return False
    return True


cdef void classify_block_row(const Frame *f, int64_t rs_m, int64_t cs_m,
                             const char *m, int64_t nrows, int64_t bk,
                             uint8_t *out, int16_t *ext,
                             int64_t ext_stride) noexcept nogil:
    """Classes of one query block's tiles (every key block of bk keys) of
    the mask rows at m, into out[0:nkb]; with ext, the row extents of its
    PARTIAL tiles (ext_stride values a tile)."""
    cdef int64_t kb, nc
    cdef size_t item = 1 if f.mask_kind == MASK_BOOL else (
        4 if f.is_f32 else 8)
    cdef const char *mt
    for kb in range(cdiv(f.S, bk)):
        mt = m + kb * bk * cs_m * item
        nc = imin(bk, f.S - kb * bk)
        if f.is_f32:
            out[kb] = tile_class[float](f.mask_kind, rs_m, cs_m, mt, nrows, nc, 0)
            if ext != NULL and out[kb] == TILE_PARTIAL:
                tile_extents[float](f.mask_kind, rs_m, cs_m, mt, nrows, nc,
                                    ext + kb * ext_stride, 0)
        else:
            out[kb] = tile_class[double](f.mask_kind, rs_m, cs_m, mt, nrows, nc, 0)
            if ext != NULL and out[kb] == TILE_PARTIAL:
                tile_extents[double](f.mask_kind, rs_m, cs_m, mt, nrows, nc,
                                     ext + kb * ext_stride, 0)
        if (ext != NULL and out[kb] == TILE_PARTIAL
                and f.mask_kind == MASK_BOOL
                and extents_say_all(rs_m, cs_m, mt, nrows,
                                    ext + kb * ext_stride)):
            out[kb] = TILE_INTERVAL


# A block mask (scaled_dot_product_attention's block_mask) states the
# mask at a coarser grain: key j is visible to query i where the byte
# t[(i // Bq)·rs_t + (j // Bk)·cs_t] is nonzero -- FlexAttention's BlockMask
# without its mask_mod.  Its tiles are classified from the table alone
# (a few bytes a tile); only a PARTIAL tile that its extents do not
# describe is ever expanded, into one tile of bytes (expand_blocks), and
# read there as a bool mask, so no L x S array exists at any time.  The
# classes and extents are those of the expanded bool mask, so a call with
# the table gives the bits of the same call with that mask.

cdef int add_block_mask(Operands ops, object blocks, tuple items,
                        const Frame *f, str func,
                        BlockMask *bm) except -1:
    """bm from a driver's `blocks`: None, or (table, Bq, Bk) with table the
    bool mask's bytes (uint8), items-broadcastable + (ceil(L / Bq),
    ceil(S / Bk))."""
    cdef Operand *op
    bm.t = NULL
    if blocks is None:
        return 0
    bm.Bq, bm.Bk = blocks[1], blocks[2]
    if blocks[0].dtype != np.uint8 or bm.Bq < 1 or bm.Bk < 1:
        raise AssertionError(f"{func}: cattn internal error: block mask")
    op = ops.add(blocks[0], items, cdiv(f.L, bm.Bq), cdiv(f.S, bm.Bk),
                 func, "block_mask")
    bm.t = <const uint8_t *>op.data
    bm.off, bm.rs, bm.cs = op.off, op.rs, op.cs
    return 0


cdef void expand_blocks(const BlockMask *b, const uint8_t *t, int64_t i0,
                        int64_t nrows, int64_t k0, int64_t ncols,
                        uint8_t *out, int64_t ld) noexcept nogil:
    """out[r·ld + c] = 1 where item table t shows query i0 + r key k0 + c,
    else 0 (runs of one table byte per block)."""
    cdef int64_t r, c, c1, ub, vb, prev = -1
    cdef const uint8_t *row
    for r in range(nrows):
        ub = (i0 + r) // b.Bq
        if ub == prev:          # the same block row: the same bytes
            memcpy(out + r * ld, out + (r - 1) * ld, ncols)
            continue
        prev = ub
        row = t + ub * b.rs
        c = 0
        while c < ncols:
            vb = (k0 + c) // b.Bk
            c1 = imin(ncols, (vb + 1) * b.Bk - k0)
            memset(out + r * ld + c, 1 if row[vb * b.cs] != 0 else 0,
                   c1 - c)
            c = c1


cdef uint8_t blocks_class(const uint8_t *t, int64_t rs_t, int64_t cs_t,
                          int64_t ub0, int64_t ub1, int64_t vb0,
                          int64_t vb1) noexcept nogil:
    """The class of a tile over the table's blocks ub0..ub1 x vb0..vb1
    (inclusive): FULL if all show it, EMPTY if none, else PARTIAL."""
    cdef int64_t ub, vb
    cdef int all_in = 1, any_in = 0
    for ub in range(ub0, ub1 + 1):
        for vb in range(vb0, vb1 + 1):
            if t[ub * rs_t + vb * cs_t] != 0:
                any_in = 1
            else:
                all_in = 0
        if any_in and not all_in:
            return TILE_PARTIAL
    return TILE_FULL if all_in else TILE_EMPTY


cdef void classify_blocks_row(const Frame *f, const BlockMask *b,
                              const uint8_t *tb, int64_t i0, int64_t nrows,
                              int64_t bk, uint8_t *out, int16_t *ext,
                              int64_t ext_stride,
                              uint8_t *buf) noexcept nogil:
    """classify_block_row for item table tb of block mask b: the classes
    of the tiles of query rows i0..i0+nrows from the table; with ext, a
    PARTIAL tile's extents from its bytes expanded into buf (nrows x bk),
    and INTERVAL where they say all."""
    cdef int64_t kb, k0, nc
    for kb in range(cdiv(f.S, bk)):
        k0 = kb * bk
        nc = imin(bk, f.S - k0)
        out[kb] = blocks_class(tb, b.rs, b.cs, i0 // b.Bq,
                               (i0 + nrows - 1) // b.Bq, k0 // b.Bk,
                               (k0 + nc - 1) // b.Bk)
        if ext == NULL or out[kb] != TILE_PARTIAL:
            continue
        expand_blocks(b, tb, i0, nrows, k0, nc, buf, nc)
        tile_extents[float](MASK_BOOL, nc, 1, <const char *>buf, nrows, nc,
                            ext + kb * ext_stride, 0)
        if extents_say_all(nc, 1, <const char *>buf, nrows,
                           ext + kb * ext_stride):
            out[kb] = TILE_INTERVAL


# Off only for the tests, which show that the classes change no bit.
cdef bint USE_TILE_CLASSES = True


def use_tile_classes(bint on):
    """Turn the mask's tile classes on or off for both drivers (for the
    tests: the results must be the same bits either way); returns the
    previous setting."""
    global USE_TILE_CLASSES
    before = USE_TILE_CLASSES
    USE_TILE_CLASSES = on
    return before


cdef object classify_tiles(const void *src, const int64_t *off,
                           int64_t nitems, const Frame *f, int64_t rs,
                           int64_t cs, int64_t Bq, int64_t Bk, int64_t bq,
                           int64_t bk, int64_t nqb, bint extents,
                           int nthreads, const uint8_t **tiles,
                           const int64_t **tile_of, const int16_t **ext):
    tiles[0] = NULL
    tile_of[0] = NULL
    ext[0] = NULL
    if not USE_TILE_CLASSES:
        return None
    cdef cnp.ndarray offs = np.asarray(<const int64_t[:nitems]>off)
    cdef cnp.ndarray uniq, where
    uniq, where = np.unique(offs, return_inverse=True)
    cdef int64_t nkb = cdiv(f.S, bk), per = nqb * nkb
    cdef cnp.ndarray t_a = np.empty(len(uniq) * per, np.uint8)
    cdef cnp.ndarray of_a = where.astype(np.int64) * per
    cdef cnp.ndarray e_a = np.empty(len(uniq) * per * 2 * bq if extents
                                    else 0, np.int16)
    cdef const int64_t *u = <const int64_t *>cnp.PyArray_DATA(uniq)
    cdef uint8_t *t = <uint8_t *>cnp.PyArray_DATA(t_a)
    cdef int16_t *e = <int16_t *>cnp.PyArray_DATA(e_a) if extents else NULL
    cdef int64_t n = len(uniq) * nqb, job, i0
    cdef int team = <int>max(1, min(<int64_t>nthreads, n))
    cdef size_t item = 1 if f.mask_kind == MASK_BOOL or Bq > 0 else (
        4 if f.is_f32 else 8)
    # A table's PARTIAL tiles are expanded for their extents: one tile of
    # bytes per thread.
    cdef cnp.ndarray buf_a = np.empty(team * bq * bk if extents and Bq > 0
                                      else 0, np.uint8)
    cdef uint8_t *buf = <uint8_t *>cnp.PyArray_DATA(buf_a)
    cdef BlockMask b            # the table's layout (Bq > 0)
    b.rs, b.cs, b.Bq, b.Bk = rs, cs, Bq, Bk
    if bk > 32767:
        raise AssertionError("cattn internal error: key blocks too long "
                             "for int16 extents")
    with nogil:
        team_enter()
        for job in prange(n, schedule='static', num_threads=team):
            i0 = (job % nqb) * bq
            if Bq > 0:
                classify_blocks_row(
                    f, &b, <const uint8_t *>src + u[job // nqb], i0,
                    imin(bq, f.L - i0), bk, t + job * nkb,
                    e + job * nkb * 2 * bq if e != NULL else NULL, 2 * bq,
                    buf + threadid() * bq * bk)
            else:
                classify_block_row(
                    f, rs, cs, <const char *>src
                    + (u[job // nqb] + i0 * rs) * item, imin(bq, f.L - i0),
                    bk, t + job * nkb, e + job * nkb * 2 * bq if e != NULL
                    else NULL, 2 * bq)
        team_leave()
    tiles[0] = t
    tile_of[0] = <const int64_t *>cnp.PyArray_DATA(of_a)
    ext[0] = e
    return (t_a, of_a, e_a, buf_a)
