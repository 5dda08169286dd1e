# The attention frame, kernel side: what the three attention drivers
# (_attention.pyx forward, _topk.pyx selection, _attention_grad.pyx backward)
# share, so each keeps only its own plan, work items and tile step.
#
#   Frame      the problem: sizes, visibility, mask kind, scale, top-k,
#              threads; read once from the Python frame's Call (_frame.py).
#   Operand    one array as a kernel walks it: element 0, row and column
#              strides in elements, the offset of each work item's matrix.
#   Operands   owns the walked arrays and their offsets for one call, and
#              asserts each operand's contract (shape, every reachable
#              element inside the array's own memory) before any kernel
#              reads it.
#   Arena      per-thread scratch: one zeroed allocation for all threads,
#              carved into 64-byte aligned fields, freed in one place.
cimport numpy as cnp
from libc.stdint cimport int64_t

from ._visibility cimport Visibility


cdef struct Frame:
    Visibility vis
    int64_t L, S, E, Ev
    int64_t nitems          # batch·head matrices walked (len of offsets)
    int mask_kind           # MASK_NONE / MASK_BOOL / MASK_ADD
    double scale
    int64_t top_k           # 0: full attention
    int threads             # the caller's num_threads, resolved
    int is_f32              # compute dtype float32 (else float64)
    int is_native           # operands in the compute dtype (else 16-bit
                            # storage computed in float32, _convert.pxd)
    int highest             # precision="highest" (_frame.precision_value)


cdef struct Operand:
    const char *data        # element 0 of the walked array
    int64_t rs, cs          # row and column strides, in elements
    const int64_t *off      # element offset of item i's matrix


cdef class Operands:
    cdef list keep          # the walked arrays (copies of odd layouts)
    cdef int64_t *offsets   # one block: MAX_OPERANDS x nitems
    cdef int64_t nitems
    cdef int count
    cdef Operand op[8]
    cdef Operand *add(self, object x, tuple items, int64_t rows,
                      int64_t cols, str func, str name) except NULL
    cdef Operand *absent(self) except NULL
    cdef Operand *add_mask(self, object mask, const Frame *f, tuple items,
                           str func) except NULL


cdef int read_call(Frame *f, object call, tuple items) except -1
cdef bint walkable(cnp.ndarray x) noexcept
cdef int check_rows(object a, int64_t n, str func, str name) except -1
cdef int batch_offsets_into(cnp.ndarray a, tuple items, int64_t *off,
                            int64_t total) except -2


cdef struct Arena:
    char *base
    size_t per_thread       # bytes of one thread's slot (multiple of 64)


cdef inline size_t carve(size_t *used, size_t nbytes) noexcept nogil:
    """Reserve nbytes in a thread's slot; return their byte offset."""
    cdef size_t at = used[0]
    used[0] = at + ((nbytes + 63) & ~(<size_t>63))
    return at


cdef int arena_new(Arena *a, int nthreads, size_t per_thread,
                   str func) except -1
cdef void arena_free(Arena *a) noexcept nogil


cdef inline void *arena_at(const Arena *a, int t, size_t at) noexcept nogil:
    """Thread t's field at byte offset `at` (from carve)."""
    return a.base + <size_t>t * a.per_thread + at


cdef void *checked_alloc(size_t nbytes, str func) except NULL
