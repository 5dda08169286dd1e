/* cattn_attention.h -- column kernels of the tiled attention path's online
 * softmax (contract in cols.tmpl.h), per dtype x ISA.  The decode path uses
 * the row kernels of gemm/cattn_gemv.h. */
#ifndef CATTN_ATTENTION_H
#define CATTN_ATTENTION_H

#include <math.h>
#include <stdint.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"

typedef struct {
    const char *name;
    int64_t vl;  /* lanes: the padded query width must be a multiple */
    int (*online_softmax)(int64_t, int64_t, int64_t, float *, int64_t,
                          double *, double *, float *, float *);
    void (*scale_rows)(int64_t, int64_t, float *, int64_t, const float *);
    void (*finish_rows)(int64_t, int64_t, const float *, int64_t,
                        const double *, const double *, float *, int64_t,
                        int64_t, float *);
    void (*exp_neg)(int64_t, const float *, float *);
} cattn_cols_f32;

typedef struct {
    const char *name;
    int64_t vl;
    int (*online_softmax)(int64_t, int64_t, int64_t, double *, int64_t,
                          double *, double *, double *, double *);
    void (*scale_rows)(int64_t, int64_t, double *, int64_t, const double *);
    void (*finish_rows)(int64_t, int64_t, const double *, int64_t,
                        const double *, const double *, double *, int64_t,
                        int64_t, double *);
    void (*exp_neg)(int64_t, const double *, double *);
} cattn_cols_f64;

#define CATTN_TEMPLATE "attention/cols.tmpl.h"
#include "../simd/instantiate.h"

#define CATTN_COLS_ENTRY(sfx, vl)                                     \
    {#sfx, vl, cattn_online_softmax_##sfx, cattn_scale_rows_##sfx,    \
     cattn_finish_rows_##sfx, cattn_exp_neg_##sfx}

/* Indexed by enum cattn_isa. */
static const cattn_cols_f32 cattn_cols_kernels_f32[] = {
    CATTN_COLS_ENTRY(f32_generic, 1),
#if CATTN_X86
    CATTN_COLS_ENTRY(f32_avx2, 8),
    CATTN_COLS_ENTRY(f32_avx512, 16),
#endif
};

static const cattn_cols_f64 cattn_cols_kernels_f64[] = {
    CATTN_COLS_ENTRY(f64_generic, 1),
#if CATTN_X86
    CATTN_COLS_ENTRY(f64_avx2, 4),
    CATTN_COLS_ENTRY(f64_avx512, 8),
#endif
};

static inline const cattn_cols_f32 *cattn_cols_f32_for(int isa)
{
    return &cattn_cols_kernels_f32[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

static inline const cattn_cols_f64 *cattn_cols_f64_for(int isa)
{
    return &cattn_cols_kernels_f64[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

#endif
