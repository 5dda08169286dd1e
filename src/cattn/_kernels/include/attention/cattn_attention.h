/* cattn_attention.h -- the attention kernels' table, per dtype x ISA: the
 * column kernels of the tiled path's online softmax (contract in
 * cols.tmpl.h), the element-wise mask and non-finite steps (tile.tmpl.h),
 * the logit cap and the ALiBi bias (scores.tmpl.h),
 * and the attention drivers' block sizes, one row per ISA beside the GEMM's
 * table (gemm/cattn_gemm.h).  The decode path's products use the row kernels of
 * gemm/cattn_gemv.h.  Adding an ISA or a dtype adds rows here. */
#ifndef CATTN_ATTENTION_H
#define CATTN_ATTENTION_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"

/* Block sizes of the three attention drivers, one row per ISA (forward,
 * top-k selection, backward; the table below).  The blocking fixes the
 * order of the sums, so a row is part of its ISA's bits (never the thread
 * count's); a new row starts as a copy and is tuned with the A/B
 * benchmarks.  The *_bytes columns only bound memory (who computes what),
 * never a bit. */
typedef struct {
    /* forward (_attention.pyx) */
    int64_t bq_target;  /* query block: at least this, whole NR panels */
    int64_t bk_target;  /* decode key block (rows streamed at a time) */
    int64_t bk_max;     /* key block: S split evenly, at most this */
    int64_t chunk;      /* key chunk of the split-key (Flash-Decoding) path */
    int64_t decode_chunk;
    int64_t decode_max_l;  /* the decode path takes at most this many rows */
    int64_t group_bytes;   /* packed K and V of one group of heads */
    /* top-k selection (_topk.pyx): query and key blocks of its scans */
    int64_t topk_bq, topk_bk;
    /* backward (_attention_grad.pyx): query block (the depth of the dK
     * and dV products), key block (the depth of dQ's), the packed
     * operands of one group of heads (split schedule) */
    int64_t grad_bq, grad_bk, grad_group_bytes;
} cattn_attention_blocks;

typedef struct {
    const char *name;
    int64_t vl;  /* lanes: the padded query width must be a multiple */
    int (*online_softmax)(int64_t, int64_t, int64_t, float *, int64_t,
                          double *, double *, float *, float *);
    int (*online_softmax_p16)(int64_t, int64_t, int64_t, float *, int64_t,
                              double *, double *, float *, float *);
    void (*scale_rows)(int64_t, int64_t, float *, int64_t, const float *);
    void (*finish_rows)(int64_t, int64_t, const float *, int64_t,
                        const double *, const double *, float *, int64_t,
                        int64_t, float *);
    void (*exp_neg)(int64_t, const float *, float *);
    void (*exp_neg_p16)(int64_t, const float *, float *);
    void (*tile_mask_add)(int64_t, int64_t, float *, int64_t, const float *,
                          int64_t, int64_t);
    void (*tile_mask_bool)(int64_t, int64_t, float *, int64_t, const uint8_t *,
                           int64_t, int64_t);
    void (*hide_outside)(int64_t, float *, int64_t, int64_t);
    void (*row_mask_add)(int64_t, float *, const float *, int64_t);
    void (*row_mask_bool)(int64_t, float *, const uint8_t *, int64_t);
    int (*any_nonfinite)(int64_t, const float *);
    int (*zero_nonfinite)(int64_t, float *);
    void (*save_partial)(int64_t, int64_t, const double *, const double *,
                         const float *, int64_t, float *);
    void (*merge_partials)(int64_t, int64_t, int64_t, const float *, int64_t,
                           double *, double *, float *, int64_t);
    void (*tile_softcap)(int64_t, int64_t, float *, int64_t, float);
    void (*tile_alibi)(int64_t, int64_t, float *, int64_t, float, int64_t);
} cattn_cols_f32;

typedef struct {
    const char *name;
    int64_t vl;
    int (*online_softmax)(int64_t, int64_t, int64_t, double *, int64_t,
                          double *, double *, double *, double *);
    int (*online_softmax_p16)(int64_t, int64_t, int64_t, double *, int64_t,
                              double *, double *, double *, double *);
    void (*scale_rows)(int64_t, int64_t, double *, int64_t, const double *);
    void (*finish_rows)(int64_t, int64_t, const double *, int64_t,
                        const double *, const double *, double *, int64_t,
                        int64_t, double *);
    void (*exp_neg)(int64_t, const double *, double *);
    void (*exp_neg_p16)(int64_t, const double *, double *);
    void (*tile_mask_add)(int64_t, int64_t, double *, int64_t, const double *,
                          int64_t, int64_t);
    void (*tile_mask_bool)(int64_t, int64_t, double *, int64_t, const uint8_t *,
                           int64_t, int64_t);
    void (*hide_outside)(int64_t, double *, int64_t, int64_t);
    void (*row_mask_add)(int64_t, double *, const double *, int64_t);
    void (*row_mask_bool)(int64_t, double *, const uint8_t *, int64_t);
    int (*any_nonfinite)(int64_t, const double *);
    int (*zero_nonfinite)(int64_t, double *);
    void (*save_partial)(int64_t, int64_t, const double *, const double *,
                         const double *, int64_t, double *);
    void (*merge_partials)(int64_t, int64_t, int64_t, const double *, int64_t,
                           double *, double *, double *, int64_t);
    void (*tile_softcap)(int64_t, int64_t, double *, int64_t, double);
    void (*tile_alibi)(int64_t, int64_t, double *, int64_t, double, int64_t);
} cattn_cols_f64;

#define CATTN_TEMPLATE "attention/cols.tmpl.h"
#include "../simd/instantiate.h"
#define CATTN_TEMPLATE "attention/tile.tmpl.h"
#include "../simd/instantiate.h"
#define CATTN_TEMPLATE "attention/scores.tmpl.h"
#include "../simd/instantiate.h"

/* Every ISA blocks the same way today (forward bq 48, bk 256/264, chunks
 * of 1024, decode up to 4 rows; top-k 96 x 256; backward 64 x 128); the
 * rows are where a level gets its own.  AVX2's forward was swept (build
 * with -DCATTN_BLOCKS_AVX2={...}; float32 SDPA on the four cases
 * and float64 B4 H8 L=S=1024 E64, best of 15): bq 32/48/64/96 x bk
 * 128-264 were within 1 % of each other except bq 32 (4-6 % slower), so
 * it keeps the common row. */
#define CATTN_BLOCKS {48, 256, 264, 1024, 1024, 4, 32 << 20, \
                      96, 256, 64, 128, 64 << 20}
#ifndef CATTN_BLOCKS_AVX2
#define CATTN_BLOCKS_AVX2 CATTN_BLOCKS
#endif

/* Indexed by enum cattn_isa; the bf16 pair level blocks as its vector
 * level. */
static const cattn_attention_blocks cattn_attention_blocks_table[] = {
    CATTN_BLOCKS,
#if CATTN_X86
    CATTN_BLOCKS_AVX2,
    CATTN_BLOCKS,
#elif CATTN_ARM64
    CATTN_BLOCKS,
#endif
};

static inline const cattn_attention_blocks *cattn_attention_blocks_for(int isa)
{
    return &cattn_attention_blocks_table[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#define CATTN_COLS_ENTRY(sfx, vl)                                     \
    {#sfx, vl, cattn_online_softmax_##sfx,                            \
     cattn_online_softmax_p16_##sfx, cattn_scale_rows_##sfx,          \
     cattn_finish_rows_##sfx, cattn_exp_neg_##sfx,                    \
     cattn_exp_neg_p16_##sfx,                                         \
     cattn_tile_mask_add_##sfx, cattn_tile_mask_bool_##sfx,           \
     cattn_hide_outside_##sfx, cattn_row_mask_add_##sfx,              \
     cattn_row_mask_bool_##sfx, cattn_any_nonfinite_##sfx,            \
     cattn_zero_nonfinite_##sfx, cattn_save_partial_##sfx,            \
     cattn_merge_partials_##sfx, cattn_tile_softcap_##sfx,            \
     cattn_tile_alibi_##sfx}

/* Indexed by enum cattn_isa. */
static const cattn_cols_f32 cattn_cols_kernels_f32[] = {
    CATTN_COLS_ENTRY(f32_generic, 1),
#if CATTN_X86
    CATTN_COLS_ENTRY(f32_avx2, 8),
    CATTN_COLS_ENTRY(f32_avx512, 16),
#elif CATTN_ARM64
    CATTN_COLS_ENTRY(f32_neon, 4),
#endif
};

static const cattn_cols_f64 cattn_cols_kernels_f64[] = {
    CATTN_COLS_ENTRY(f64_generic, 1),
#if CATTN_X86
    CATTN_COLS_ENTRY(f64_avx2, 4),
    CATTN_COLS_ENTRY(f64_avx512, 8),
#elif CATTN_ARM64
    CATTN_COLS_ENTRY(f64_neon, 2),
#endif
};

static inline const cattn_cols_f32 *cattn_cols_f32_for(int isa)
{
    return &cattn_cols_kernels_f32[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

static inline const cattn_cols_f64 *cattn_cols_f64_for(int isa)
{
    return &cattn_cols_kernels_f64[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#endif
