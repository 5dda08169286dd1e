/* cattn_target.h -- how each compiler spells "compile this region for
 * these instructions".
 *
 * One binary carries the kernels of every SIMD level: each level's code is
 * compiled inside a region that enables its instructions, and the run-time
 * dispatch (cattn_cpu.h, _cpu.pyx) decides which of them runs.  GCC spells
 * a region with `#pragma GCC push_options / target / pop_options`; clang
 * has no `GCC target` pragma, and pushes a `target` attribute onto every
 * function declared in the region instead:
 *
 *     CATTN_TARGET_PUSH("avx512f,avx2,fma")
 *     ... functions (and the headers that define them) ...
 *     CATTN_TARGET_POP()
 *
 * CATTN_NO_MEMCPY keeps a copy loop a loop: both compilers turn short copy
 * loops into memcpy calls, which cost more than the copy itself.
 */
#ifndef CATTN_TARGET_H
#define CATTN_TARGET_H

#define CATTN_PRAGMA(x) _Pragma(#x)

#if defined(__clang__)
#define CATTN_TARGET_PUSH(features)                                        \
    CATTN_PRAGMA(clang attribute push(__attribute__((target(features))),   \
                                      apply_to = function))
#define CATTN_TARGET_POP() CATTN_PRAGMA(clang attribute pop)
#define CATTN_NO_MEMCPY __attribute__((no_builtin("memcpy")))
#elif defined(__GNUC__)
#define CATTN_TARGET_PUSH(features)                                        \
    CATTN_PRAGMA(GCC push_options) CATTN_PRAGMA(GCC target(features))
#define CATTN_TARGET_POP() CATTN_PRAGMA(GCC pop_options)
#define CATTN_NO_MEMCPY                                                    \
    __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CATTN_TARGET_PUSH(features)
#define CATTN_TARGET_POP()
#define CATTN_NO_MEMCPY
#endif

#endif /* CATTN_TARGET_H */
