# The dispatch state every driver reads: which ISA's kernels run now.
cdef int active_isa() noexcept nogil

# Every driver brackets its parallel run with these: the count of kernel
# calls in flight, by which default_threads() shares the cores.  Atomic and
# infallible; the run between them is noexcept, so every enter is left.
cdef void team_enter() noexcept nogil
cdef void team_leave() noexcept nogil
