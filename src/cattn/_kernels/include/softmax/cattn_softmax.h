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

#define CATTN_TEMPLATE "softmax/rows.tmpl.h"
#include "../simd/instantiate.h"

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
#elif CATTN_ARM64
    CATTN_ROWS_ENTRY(f32_neon),
#endif
};

static const cattn_rows_f64 cattn_rows_kernels_f64[] = {
    CATTN_ROWS_ENTRY(f64_generic),
#if CATTN_X86
    CATTN_ROWS_ENTRY(f64_avx2),
    CATTN_ROWS_ENTRY(f64_avx512),
#elif CATTN_ARM64
    CATTN_ROWS_ENTRY(f64_neon),
#endif
};

static inline const cattn_rows_f32 *cattn_rows_f32_for(int isa)
{
    return &cattn_rows_kernels_f32[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

static inline const cattn_rows_f64 *cattn_rows_f64_for(int isa)
{
    return &cattn_rows_kernels_f64[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#endif
