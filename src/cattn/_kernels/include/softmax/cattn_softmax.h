/* cattn_softmax.h -- row kernels for softmax, log_softmax and logsumexp.
 *
 * Contract of each row kernel (rows.tmpl.h has the arithmetic):
 *   softmax(n, x, y), log_softmax(n, x, y): read x[0:n], write y[0:n];
 *       y may be x itself (in place), no other overlap.
 *   logsumexp(n, x): return the value; n == 0 gives -inf.
 *   max(n, x): the largest element (-inf for n == 0; a NaN may or may not
 *       win, callers must not rely on either).
 *   exp_sum(n, x, shift, y): y = exp(x - shift) (y may be x or NULL) and
 *       return its sum, pairwise as described in rows.tmpl.h.
 *   Rows are contiguous; no alignment is required.  A row's result depends
 *   only on the row and the ISA, never on which thread computes it.
 * The drivers (_softmax.pyx) run these over many rows in parallel.
 */
#ifndef CATTN_SOFTMAX_H
#define CATTN_SOFTMAX_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include "../cattn_cpu.h"
#include "exp_simd.h"

typedef struct {
    const char *name;
    void (*softmax)(int64_t n, const float *x, float *y);
    void (*log_softmax)(int64_t n, const float *x, float *y);
    float (*logsumexp)(int64_t n, const float *x);
    void (*exp)(int64_t n, const float *x, float *y);
    /* building blocks of the attention kernel's online softmax */
    float (*max)(int64_t n, const float *x);
    float (*exp_sum)(int64_t n, const float *x, float shift, float *y);
} cattn_rows_f32;

typedef struct {
    const char *name;
    void (*softmax)(int64_t n, const double *x, double *y);
    void (*log_softmax)(int64_t n, const double *x, double *y);
    double (*logsumexp)(int64_t n, const double *x);
    void (*exp)(int64_t n, const double *x, double *y);
    double (*max)(int64_t n, const double *x);
    double (*exp_sum)(int64_t n, const double *x, double shift, double *y);
} cattn_rows_f64;

/* ---- portable: scalar "vectors" of one lane, libm exp/log ---- */
#define RW_LOAD(p) (*(p))
#define RW_STORE(p, v) (*(p) = (v))
#define RW_SET1(v) (v)
#define RW_ADD(a, b) ((a) + (b))
#define RW_SUB(a, b) ((a) - (b))
#define RW_MUL(a, b) ((a) * (b))
#define RW_MAX(a, b) ((b) > (a) ? (b) : (a))
#define RW_HSUM(v) (v)
#define RW_HMAX(v) (v)
#define RW_VL 1

#define RW_T float
#define RW_VEC float
#define RW_EXP expf
#define RW_LOG logf
#define RW_NAME(op) cattn_##op##_f32_generic
#include "rows.tmpl.h"
#undef RW_T
#undef RW_VEC
#undef RW_EXP
#undef RW_LOG
#undef RW_NAME

#define RW_T double
#define RW_VEC double
#define RW_EXP exp
#define RW_LOG log
#define RW_NAME(op) cattn_##op##_f64_generic
#include "rows.tmpl.h"
#include "rows_undef.h"

#if CATTN_X86
/* ---- AVX-512F ---- */
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

#define RW_T float
#define RW_VEC __m512
#define RW_VL 16
#define RW_LOAD _mm512_loadu_ps
#define RW_STORE _mm512_storeu_ps
#define RW_SET1 _mm512_set1_ps
#define RW_ADD _mm512_add_ps
#define RW_SUB _mm512_sub_ps
#define RW_MUL _mm512_mul_ps
#define RW_MAX _mm512_max_ps
#define RW_EXP cattn_vexp_f32_avx512
#define RW_HSUM _mm512_reduce_add_ps
#define RW_HMAX _mm512_reduce_max_ps
#define RW_LOG logf
#define RW_NAME(op) cattn_##op##_f32_avx512
#include "rows.tmpl.h"
#include "rows_undef.h"

#define RW_T double
#define RW_VEC __m512d
#define RW_VL 8
#define RW_LOAD _mm512_loadu_pd
#define RW_STORE _mm512_storeu_pd
#define RW_SET1 _mm512_set1_pd
#define RW_ADD _mm512_add_pd
#define RW_SUB _mm512_sub_pd
#define RW_MUL _mm512_mul_pd
#define RW_MAX _mm512_max_pd
#define RW_EXP cattn_vexp_f64_avx512
#define RW_HSUM _mm512_reduce_add_pd
#define RW_HMAX _mm512_reduce_max_pd
#define RW_LOG log
#define RW_NAME(op) cattn_##op##_f64_avx512
#include "rows.tmpl.h"
#include "rows_undef.h"

#pragma GCC pop_options

/* ---- AVX2 + FMA3 ---- */
#pragma GCC push_options
#pragma GCC target("avx2,fma")

#define RW_T float
#define RW_VEC __m256
#define RW_VL 8
#define RW_LOAD _mm256_loadu_ps
#define RW_STORE _mm256_storeu_ps
#define RW_SET1 _mm256_set1_ps
#define RW_ADD _mm256_add_ps
#define RW_SUB _mm256_sub_ps
#define RW_MUL _mm256_mul_ps
#define RW_MAX _mm256_max_ps
#define RW_EXP cattn_vexp_f32_avx2
#define RW_HSUM cattn_hsum_f32_avx2
#define RW_HMAX cattn_hmax_f32_avx2
#define RW_LOG logf
#define RW_NAME(op) cattn_##op##_f32_avx2
#include "rows.tmpl.h"
#include "rows_undef.h"

#define RW_T double
#define RW_VEC __m256d
#define RW_VL 4
#define RW_LOAD _mm256_loadu_pd
#define RW_STORE _mm256_storeu_pd
#define RW_SET1 _mm256_set1_pd
#define RW_ADD _mm256_add_pd
#define RW_SUB _mm256_sub_pd
#define RW_MUL _mm256_mul_pd
#define RW_MAX _mm256_max_pd
#define RW_EXP cattn_vexp_f64_avx2
#define RW_HSUM cattn_hsum_f64_avx2
#define RW_HMAX cattn_hmax_f64_avx2
#define RW_LOG log
#define RW_NAME(op) cattn_##op##_f64_avx2
#include "rows.tmpl.h"
#include "rows_undef.h"

#pragma GCC pop_options
#endif

#define CATTN_ROWS_ENTRY(sfx) \
    {#sfx, cattn_softmax_##sfx, cattn_log_softmax_##sfx,              \
     cattn_logsumexp_##sfx, cattn_exp_row_##sfx, cattn_max_##sfx,      \
     cattn_exp_sum_##sfx}

/* Indexed by enum cattn_isa. */
static const cattn_rows_f32 cattn_rows_kernels_f32[] = {
    CATTN_ROWS_ENTRY(f32_generic),
#if CATTN_X86
    CATTN_ROWS_ENTRY(f32_avx2),
    CATTN_ROWS_ENTRY(f32_avx512),
#endif
};

static const cattn_rows_f64 cattn_rows_kernels_f64[] = {
    CATTN_ROWS_ENTRY(f64_generic),
#if CATTN_X86
    CATTN_ROWS_ENTRY(f64_avx2),
    CATTN_ROWS_ENTRY(f64_avx512),
#endif
};

static inline const cattn_rows_f32 *cattn_rows_f32_for(int isa)
{
    return &cattn_rows_kernels_f32[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

static inline const cattn_rows_f64 *cattn_rows_f64_for(int isa)
{
    return &cattn_rows_kernels_f64[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

#endif
