/* cattn_topk.h -- the scans of the top-k selection (_topk.pyx) and of its
 * mask pass in the forward (_attention.pyx): a table per dtype, one row per
 * ISA (enum cattn_isa), like the GEMM's and the attention's.
 *
 * Once a row's heap holds k keys, a score can only enter it if it does not
 * rank below the heap's worst kept score t.  Most scores of a long row do
 * not (about k/j of them at key j on random data), so the selection skips
 * ahead with one vector compare per VL scores:
 *
 *   first_reaching(n, x, t): the first i < n with
 *       !(x[i] < t) -- x[i] >= t, or x[i] or t NaN -- else n.
 *
 * A candidate found this way is then ranked exactly (ties by key index,
 * NaN first) by the caller; the scan only has to never skip a key that
 * could rank at or above t, which `!(x < t)` guarantees.
 *
 * The second pass hides the keys outside each query's top k, one key's
 * row of queries at a time:
 *
 *   hide_below(n, x, t): x[i] = -inf where x[i] < t[i];
 *       returns nonzero if some lane needs the exact rule instead -- a
 *       score equal to its threshold (a tie, decided by key index) other
 *       than -inf, or a NaN on either side.
 *
 * A row that keeps all its keys has t = -inf, so nothing is below it.
 */
#ifndef CATTN_TOPK_H
#define CATTN_TOPK_H
#include <math.h>
#include <stdint.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"   /* immintrin.h and the vector helpers */

#define CATTN_TEMPLATE "topk/scan.tmpl.h"
#include "../simd/instantiate.h"

typedef struct {
    const char *name;
    int64_t (*first_reaching)(int64_t, const float *, float);
    int (*hide_below)(int64_t, float *, const float *);
} cattn_topk_f32;

typedef struct {
    const char *name;
    int64_t (*first_reaching)(int64_t, const double *, double);
    int (*hide_below)(int64_t, double *, const double *);
} cattn_topk_f64;

#define CATTN_TOPK_ENTRY(sfx)                                               \
    {#sfx, cattn_first_reaching_##sfx, cattn_hide_below_##sfx}

/* Indexed by enum cattn_isa. */
static const cattn_topk_f32 cattn_topk_kernels_f32[] = {
    CATTN_TOPK_ENTRY(f32_generic),
#if CATTN_X86
    CATTN_TOPK_ENTRY(f32_avx2),
    CATTN_TOPK_ENTRY(f32_avx512),
#elif CATTN_ARM64
    CATTN_TOPK_ENTRY(f32_neon),
#endif
};

static const cattn_topk_f64 cattn_topk_kernels_f64[] = {
    CATTN_TOPK_ENTRY(f64_generic),
#if CATTN_X86
    CATTN_TOPK_ENTRY(f64_avx2),
    CATTN_TOPK_ENTRY(f64_avx512),
#elif CATTN_ARM64
    CATTN_TOPK_ENTRY(f64_neon),
#endif
};

static inline const cattn_topk_f32 *cattn_topk_f32_for(int isa)
{
    return &cattn_topk_kernels_f32[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

static inline const cattn_topk_f64 *cattn_topk_f64_for(int isa)
{
    return &cattn_topk_kernels_f64[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#endif
