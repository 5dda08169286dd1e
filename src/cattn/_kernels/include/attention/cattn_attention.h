/* cattn_attention.h -- the attention kernel's vector steps, per dtype x ISA:
 * column kernels of the tiled path's online softmax (cols.tmpl.h) and the
 * dot/axpy row kernels of the decode path (rows.tmpl.h). */
#ifndef CATTN_ATTENTION_H
#define CATTN_ATTENTION_H

#include <math.h>
#include <stdint.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"

typedef struct {
    const char *name;
    int64_t vl;  /* lanes: the padded query width must be a multiple */
    void (*col_max)(int64_t, int64_t, const float *, int64_t, float *);
    void (*col_exp_sum)(int64_t, int64_t, float *, int64_t, const float *,
                        float *);
    void (*dot_rows)(int64_t, int64_t, const float *, const float *, int64_t,
                     float, float *);
    void (*axpy_rows)(int64_t, int64_t, const float *, const float *,
                      int64_t, float *);
} cattn_cols_f32;

typedef struct {
    const char *name;
    int64_t vl;
    void (*col_max)(int64_t, int64_t, const double *, int64_t, double *);
    void (*col_exp_sum)(int64_t, int64_t, double *, int64_t, const double *,
                        double *);
    void (*dot_rows)(int64_t, int64_t, const double *, const double *,
                     int64_t, double, double *);
    void (*axpy_rows)(int64_t, int64_t, const double *, const double *,
                      int64_t, double *);
} cattn_cols_f64;

#define RW_LOAD(p) (*(p))
#define RW_STORE(p, v) (*(p) = (v))
#define RW_SET1(v) (v)
#define RW_ADD(a, b) ((a) + (b))
#define RW_SUB(a, b) ((a) - (b))
#define RW_MAX(a, b) ((b) > (a) ? (b) : (a))
#define RW_FMA(a, b, c) ((a) * (b) + (c))
#define RW_HSUM(v) (v)
#define RW_VL 1
#define RW_T float
#define RW_VEC float
#define RW_EXP expf
#define RW_NAME(op) cattn_##op##_f32_generic
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#undef RW_T
#undef RW_VEC
#undef RW_EXP
#undef RW_NAME
#define RW_T double
#define RW_VEC double
#define RW_EXP exp
#define RW_NAME(op) cattn_##op##_f64_generic
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#include "../softmax/rows_undef.h"

#if CATTN_X86
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
#define RW_MAX _mm512_max_ps
#define RW_EXP cattn_vexp_f32_avx512
#define RW_FMA _mm512_fmadd_ps
#define RW_HSUM _mm512_reduce_add_ps
#define RW_NAME(op) cattn_##op##_f32_avx512
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#include "../softmax/rows_undef.h"
#define RW_T double
#define RW_VEC __m512d
#define RW_VL 8
#define RW_LOAD _mm512_loadu_pd
#define RW_STORE _mm512_storeu_pd
#define RW_SET1 _mm512_set1_pd
#define RW_ADD _mm512_add_pd
#define RW_SUB _mm512_sub_pd
#define RW_MAX _mm512_max_pd
#define RW_EXP cattn_vexp_f64_avx512
#define RW_FMA _mm512_fmadd_pd
#define RW_HSUM _mm512_reduce_add_pd
#define RW_NAME(op) cattn_##op##_f64_avx512
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#include "../softmax/rows_undef.h"
#pragma GCC pop_options

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
#define RW_MAX _mm256_max_ps
#define RW_EXP cattn_vexp_f32_avx2
#define RW_FMA _mm256_fmadd_ps
#define RW_HSUM cattn_hsum_f32_avx2
#define RW_NAME(op) cattn_##op##_f32_avx2
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#include "../softmax/rows_undef.h"
#define RW_T double
#define RW_VEC __m256d
#define RW_VL 4
#define RW_LOAD _mm256_loadu_pd
#define RW_STORE _mm256_storeu_pd
#define RW_SET1 _mm256_set1_pd
#define RW_ADD _mm256_add_pd
#define RW_SUB _mm256_sub_pd
#define RW_MAX _mm256_max_pd
#define RW_EXP cattn_vexp_f64_avx2
#define RW_FMA _mm256_fmadd_pd
#define RW_HSUM cattn_hsum_f64_avx2
#define RW_NAME(op) cattn_##op##_f64_avx2
#include "cols.tmpl.h"
#include "rows.tmpl.h"
#include "../softmax/rows_undef.h"
#pragma GCC pop_options
#endif

#define CATTN_COLS_ENTRY(sfx, vl)                                     \
    {#sfx, vl, cattn_col_max_##sfx, cattn_col_exp_sum_##sfx,              \
     cattn_dot_rows_##sfx, cattn_axpy_rows_##sfx}

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
