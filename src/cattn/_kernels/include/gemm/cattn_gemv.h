/* cattn_gemv.h -- row-streaming product kernels (contract in gemv.tmpl.h),
 * per dtype x ISA, for matmul with a few rows and the attention decode path.
 */
#ifndef CATTN_GEMV_H
#define CATTN_GEMV_H

#include <math.h>
#include <stdint.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"

typedef struct {
    const char *name;
    void (*dot_rows)(int64_t, int64_t, const float *, const void *, int64_t,
                     float, float *);
    void (*axpy_rows)(int64_t, int64_t, const float *, const void *,
                      int64_t, float *);
    void (*dot_rows_at)(int64_t, int64_t, const float *, const void *,
                        int64_t, const int64_t *, float, float *);
    void (*axpy_rows_at)(int64_t, int64_t, const float *, const void *,
                         int64_t, const int64_t *, float *);
    void (*dot_rows_far_at)(int64_t, int64_t, const float *, const void *,
                            int64_t, const int64_t *, float, float *);
    void (*axpy_rows_far_at)(int64_t, int64_t, const float *, const void *,
                             int64_t, const int64_t *, float *);
    void (*scatter_rows_at)(int64_t, int64_t, const float *, const float *,
                            float *, int64_t, const int64_t *);
} cattn_gemv_f32;

typedef struct {
    const char *name;
    void (*dot_rows)(int64_t, int64_t, const double *, const void *,
                     int64_t, double, double *);
    void (*axpy_rows)(int64_t, int64_t, const double *, const void *,
                      int64_t, double *);
    void (*dot_rows_at)(int64_t, int64_t, const double *, const void *,
                        int64_t, const int64_t *, double, double *);
    void (*axpy_rows_at)(int64_t, int64_t, const double *, const void *,
                         int64_t, const int64_t *, double *);
    void (*dot_rows_far_at)(int64_t, int64_t, const double *, const void *,
                            int64_t, const int64_t *, double, double *);
    void (*axpy_rows_far_at)(int64_t, int64_t, const double *, const void *,
                             int64_t, const int64_t *, double *);
    void (*scatter_rows_at)(int64_t, int64_t, const double *, const double *,
                            double *, int64_t, const int64_t *);
} cattn_gemv_f64;

#define CATTN_TEMPLATE "gemm/gemv.tmpl.h"
#include "../simd/instantiate.h"

#define CATTN_GEMV_ENTRY(sfx)                                               \
    {#sfx, cattn_dot_rows_##sfx, cattn_axpy_rows_##sfx,                     \
     cattn_dot_rows_at_##sfx, cattn_axpy_rows_at_##sfx,                     \
     cattn_dot_rows_far_at_##sfx, cattn_axpy_rows_far_at_##sfx,             \
     cattn_scatter_rows_at_##sfx}

/* Indexed by enum cattn_isa. */
static const cattn_gemv_f32 cattn_gemv_kernels_f32[] = {
    CATTN_GEMV_ENTRY(f32_generic),
#if CATTN_X86
    CATTN_GEMV_ENTRY(f32_avx2),
    CATTN_GEMV_ENTRY(f32_avx512),
#elif CATTN_ARM64
    CATTN_GEMV_ENTRY(f32_neon),
#endif
};

static const cattn_gemv_f64 cattn_gemv_kernels_f64[] = {
    CATTN_GEMV_ENTRY(f64_generic),
#if CATTN_X86
    CATTN_GEMV_ENTRY(f64_avx2),
    CATTN_GEMV_ENTRY(f64_avx512),
#elif CATTN_ARM64
    CATTN_GEMV_ENTRY(f64_neon),
#endif
};

static inline const cattn_gemv_f32 *cattn_gemv_f32_for(int isa)
{
    return &cattn_gemv_kernels_f32[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

static inline const cattn_gemv_f64 *cattn_gemv_f64_for(int isa)
{
    return &cattn_gemv_kernels_f64[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#endif
