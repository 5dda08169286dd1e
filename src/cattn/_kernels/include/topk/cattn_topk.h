/* cattn_topk.h -- the scans of the top-k selection (_topk.pyx) and of its
 * mask pass in the forward (_attention.pyx), per dtype and ISA.
 *
 * Once a row's heap holds k keys, a score can only enter it if it does not
 * rank below the heap's worst kept score t.  Most scores of a long row do
 * not (about k/j of them at key j on random data), so the selection skips
 * ahead with one vector compare per VL scores:
 *
 *   cattn_first_reaching_<dtype>(isa, n, x, t): the first i < n with
 *       !(x[i] < t) -- x[i] >= t, or x[i] or t NaN -- else n.
 *
 * A candidate found this way is then ranked exactly (ties by key index,
 * NaN first) by the caller; the scan only has to never skip a key that
 * could rank at or above t, which `!(x < t)` guarantees.
 *
 * The second pass hides the keys outside each query's top k, one key's
 * row of queries at a time:
 *
 *   cattn_hide_below_<dtype>(isa, n, x, t): x[i] = -inf where x[i] < t[i];
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

#define TK_VL 1
#define TK_T float
#define TK_NAME(f) cattn_##f##_f32_generic
#include "scan.tmpl.h"
#undef TK_T
#undef TK_NAME
#define TK_T double
#define TK_NAME(f) cattn_##f##_f64_generic
#include "scan.tmpl.h"
#undef TK_T
#undef TK_NAME
#undef TK_VL

#if CATTN_X86
#include <immintrin.h>
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#define TK_VL 16
#define TK_T float
#define TK_VEC __m512
#define TK_NAME(f) cattn_##f##_f32_avx512
#define TK_SCALAR(f) cattn_##f##_f32_generic
#define TK_LOAD _mm512_loadu_ps
#define TK_STORE _mm512_storeu_ps
#define TK_SET1 _mm512_set1_ps
#define TK_CMP(a, b, pred) ((unsigned)_mm512_cmp_ps_mask(a, b, pred))
#define TK_BELOW_TO(v, t, x)                                                \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, t, _CMP_LT_OQ), v, x)
#include "scan.tmpl.h"
#include "scan_undef.h"
#define TK_VL 8
#define TK_T double
#define TK_VEC __m512d
#define TK_NAME(f) cattn_##f##_f64_avx512
#define TK_SCALAR(f) cattn_##f##_f64_generic
#define TK_LOAD _mm512_loadu_pd
#define TK_STORE _mm512_storeu_pd
#define TK_SET1 _mm512_set1_pd
#define TK_CMP(a, b, pred) ((unsigned)_mm512_cmp_pd_mask(a, b, pred))
#define TK_BELOW_TO(v, t, x)                                                \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, t, _CMP_LT_OQ), v, x)
#include "scan.tmpl.h"
#include "scan_undef.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define TK_VL 8
#define TK_T float
#define TK_VEC __m256
#define TK_NAME(f) cattn_##f##_f32_avx2
#define TK_SCALAR(f) cattn_##f##_f32_generic
#define TK_LOAD _mm256_loadu_ps
#define TK_STORE _mm256_storeu_ps
#define TK_SET1 _mm256_set1_ps
#define TK_CMP(a, b, pred)                                                  \
    ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, pred)))
#define TK_BELOW_TO(v, t, x)                                                \
    _mm256_blendv_ps(v, x, _mm256_cmp_ps(v, t, _CMP_LT_OQ))
#include "scan.tmpl.h"
#include "scan_undef.h"
#define TK_VL 4
#define TK_T double
#define TK_VEC __m256d
#define TK_NAME(f) cattn_##f##_f64_avx2
#define TK_SCALAR(f) cattn_##f##_f64_generic
#define TK_LOAD _mm256_loadu_pd
#define TK_STORE _mm256_storeu_pd
#define TK_SET1 _mm256_set1_pd
#define TK_CMP(a, b, pred)                                                  \
    ((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(a, b, pred)))
#define TK_BELOW_TO(v, t, x)                                                \
    _mm256_blendv_pd(v, x, _mm256_cmp_pd(v, t, _CMP_LT_OQ))
#include "scan.tmpl.h"
#include "scan_undef.h"
#pragma GCC pop_options
#define TK_ISA_CASES(f, sfx, ...)                                           \
    if (isa == CATTN_ISA_AVX512)                                            \
        return cattn_##f##_##sfx##_avx512(__VA_ARGS__);                     \
    if (isa == CATTN_ISA_AVX2)                                              \
        return cattn_##f##_##sfx##_avx2(__VA_ARGS__);
#else
#define TK_ISA_CASES(f, sfx, ...)
#endif

/* The entry points: the kernel of the active ISA (enum cattn_isa). */
#define TK_DISPATCH(ret, f, sfx, X, T)                                      \
    static inline ret cattn_##f##_##sfx(int isa, int64_t n, X x, T t)       \
    {                                                                       \
        TK_ISA_CASES(f, sfx, n, x, t)                                       \
        (void)isa;                                                          \
        return cattn_##f##_##sfx##_generic(n, x, t);                        \
    }
TK_DISPATCH(int64_t, first_reaching, f32, const float *, float)
TK_DISPATCH(int64_t, first_reaching, f64, const double *, double)
TK_DISPATCH(int, hide_below, f32, float *, const float *)
TK_DISPATCH(int, hide_below, f64, double *, const double *)
#undef TK_DISPATCH
#undef TK_ISA_CASES
#endif
