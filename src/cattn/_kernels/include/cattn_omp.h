/* cattn_omp.h -- OpenMP when the compiler has it, a serial stand-in when not.
 *
 * setup.py builds with -fopenmp when a test program compiles with it; if not,
 * every kernel still builds and runs on one thread and show_config() says so.
 */
#ifndef CATTN_OMP_H
#define CATTN_OMP_H

#ifdef _OPENMP
#include <dlfcn.h>
#include <omp.h>
#define CATTN_OPENMP 1
#else
#define CATTN_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

/* _OPENMP is the yyyymm date of the supported specification, 0 without. */
static inline long cattn_openmp_version(void)
{
#ifdef _OPENMP
    return (long)_OPENMP;
#else
    return 0L;
#endif
}

/* Path of the shared library that provides the OpenMP runtime these kernels
 * call (e.g. the libgomp that auditwheel bundled into cattn.libs/), or NULL
 * in a serial build or when the loader cannot tell.  threadpoolctl lists
 * runtimes by this same path, so tests can match the two. */
static inline const char *cattn_openmp_library(void)
{
#if defined(_OPENMP) && defined(__GLIBC__)
    Dl_info info;
    if (dladdr((void *)&omp_get_max_threads, &info) && info.dli_fname)
        return info.dli_fname;
#endif
    return NULL;
}

#endif
