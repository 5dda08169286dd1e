# The dispatch state every driver reads: which ISA's kernels run now.
cdef int active_isa() noexcept nogil
