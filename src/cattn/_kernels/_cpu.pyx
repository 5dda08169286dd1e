# cython: language_level=3
"""Run-time CPU dispatch and OpenMP facts, shared by every kernel module.

All kernels are compiled for every SIMD level of the architecture (see
include/cattn_cpu.h);
this module holds the one level that runs now.  It starts at the best level
the CPU supports; ``cattn._config`` applies ``CATTN_ISA`` and lets tests
step through the lower levels.

It also holds the process's one count of kernel calls in flight, over all
Python threads, from which the default thread count shares the cores among
concurrent callers (default_threads).

Free-threaded Python: the module state is the ISA level (an int written at
import, and by the tests' ``_config._isa`` between calls; the drivers read
it as they pick kernels) and the in-flight count (atomic).  Nothing else here
is mutable.
"""

cdef extern from "cattn_cpu.h":
    int cattn_cpu_best_isa() nogil
    int CATTN_ISA_COUNT
    const char *const cattn_isa_names[]

cdef extern from *:
    """
    /* Kernel calls in flight in this process (team_enter/team_leave):
       relaxed atomics, read as a hint for the next call's default team. */
    static int cattn_in_flight = 0;
    static inline void cattn_team_enter(void)
    { __atomic_fetch_add(&cattn_in_flight, 1, __ATOMIC_RELAXED); }
    static inline void cattn_team_leave(void)
    { __atomic_fetch_sub(&cattn_in_flight, 1, __ATOMIC_RELAXED); }
    static inline int cattn_in_flight_now(void)
    { return __atomic_load_n(&cattn_in_flight, __ATOMIC_RELAXED); }
    """
    void cattn_team_enter() nogil
    void cattn_team_leave() nogil
    int cattn_in_flight_now() nogil

cdef extern from "cattn_omp.h":
    int omp_get_max_threads() nogil
    long cattn_openmp_version() nogil
    const char *cattn_openmp_library() nogil
    int CATTN_OPENMP

import os

# Indexed by enum cattn_isa; each level includes the ones before it:
# generic, avx2, avx512, avx512_bf16 on x86-64; generic, neon, neon_bf16
# on AArch64; generic alone elsewhere.
ISA_NAMES = tuple(cattn_isa_names[i].decode() for i in range(CATTN_ISA_COUNT))

cdef int _best = cattn_cpu_best_isa()
cdef int _active = _best


cdef int active_isa() noexcept nogil:
    return _active


def best_isa():
    """Index into ISA_NAMES of the best level this CPU supports."""
    return _best


def get_isa():
    """Index into ISA_NAMES of the level the kernels use now."""
    return _active


def set_isa(int level):
    """Use the kernels of ``level`` (0 <= level <= best_isa())."""
    global _active
    if not 0 <= level <= _best:
        raise ValueError(
            f"ISA level {level} is not supported here; "
            f"expected 0..{_best} ({', '.join(ISA_NAMES[:_best + 1])})")
    _active = level


cdef void team_enter() noexcept nogil:
    cattn_team_enter()


cdef void team_leave() noexcept nogil:
    cattn_team_leave()


def in_flight():
    """Kernel calls running now in this process (all Python threads)."""
    return cattn_in_flight_now()


def default_threads():
    """The thread count of a call with ``num_threads=None``: this thread's
    OpenMP default (``OMP_NUM_THREADS``, threadpoolctl's limit, else one
    per core), shared equally with the kernel calls already running in
    other Python threads, at least 1.

    K threads calling at once then run K teams of about C/K threads on C
    cores, not K teams of C: no oversubscription, and each call still
    gives the same bits (every kernel's result is independent of its
    thread count).
    """
    return max(1, omp_get_max_threads() // (1 + cattn_in_flight_now()))


def openmp_version():
    """The _OPENMP date (e.g. 201511) the kernels were built with, 0 if serial."""
    return cattn_openmp_version()


def max_threads():
    """omp_get_max_threads() of the calling thread (1 in a serial build).

    Honours OMP_NUM_THREADS and threadpoolctl's limits, which set this
    thread's OpenMP nthreads-var.
    """
    return omp_get_max_threads()


def openmp_library():
    """Real path of the OpenMP runtime library the kernels call, None if
    serial (or if the dynamic loader cannot say)."""
    cdef const char *path = cattn_openmp_library()
    return None if path == NULL else os.path.realpath(os.fsdecode(path))
