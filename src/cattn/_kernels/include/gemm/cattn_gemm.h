/* cattn_gemm.h -- the GEMM micro-kernel contract and the per-CPU kernel table.
 *
 * Contract of every micro-kernel `cattn_gemm_ukernel_<dtype>_<isa>` (one
 * template, ukernel.tmpl.h, whose tile each ISA's simd/ header sets; the
 * table names it <dtype>_<isa>_<MR>x<NR>; the BLIS contract, row-major):
 *
 *     C[0:m, 0:n] := alpha * A·B + beta * C[0:m, 0:n]
 *
 *   k      depth, k >= 0 (k == 0 gives C := beta*C, with beta == 0 C := 0).
 *   a      A micro-panel, MR x k, stored by columns: A[i, p] = a[p*lda + i],
 *          lda >= MR (lda = MR when packed).  Rows i >= m must be readable
 *          (the packer zero-fills them); they are computed and thrown away.
 *   b      B micro-panel, k x NR, stored by rows: B[p, j] = b[p*ldb + j],
 *          ldb >= NR (NR when packed).  Columns j >= n likewise readable.
 *          The strides let a caller hand over a tile that is already in
 *          panel form (the attention kernel's Pᵀ tile) without copying.
 *   c      C[i, j] = c[i*rs_c + j*cs_c]; any strides, negative included.
 *   m, n   the edge: 1 <= m <= MR, 1 <= n <= NR.  Only C[0:m, 0:n] is touched.
 *   beta   beta == 0 means C is never read (C may hold NaN or garbage).
 *
 * Every element of C is reduced over p = 0..k-1 in order, one FMA per term,
 * whatever m, n and the strides: full tiles and edge tiles give the same bits
 * for the same element, so the way a driver splits C between threads cannot
 * change a result.  Packed panels need no alignment (unaligned loads).
 *
 * The attention kernel reuses these micro-kernels for its Q·Kᵀ and P·V tile
 * products, with beta = 0 on the first key block and beta = 1 after.
 */
#ifndef CATTN_GEMM_H
#define CATTN_GEMM_H

#include <stdint.h>
#include <math.h>
#include "../cattn_cpu.h"

typedef void (*cattn_gemm_ukernel_f32_fn)(
    int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
    float *c, int64_t rs_c, int64_t cs_c, int64_t m, int64_t n, float alpha,
    float beta);
typedef void (*cattn_gemm_ukernel_f64_fn)(
    int64_t k, const double *a, int64_t lda, const double *b, int64_t ldb,
    double *c, int64_t rs_c, int64_t cs_c, int64_t m, int64_t n,
    double alpha, double beta);

/* A micro-kernel and the blocksizes the driver uses around it (BLIS's
 * "context"): MR x NR register tile; KC the depth of one packed panel (the
 * B micro-panel KC x NR stays in L1); MC rows of packed A kept in L2; NC
 * columns of packed B kept in L3.  MC is a multiple of MR, NC of NR.
 * KC fixes how the sum over k is grouped, so it depends only on the kernel,
 * never on the thread count. */
/* Packers read their source through a void pointer: the compute dtype's
 * own, or a storage dtype's widening ones (convert/), share a signature. */
typedef void (*cattn_gemm_pack_a_f32_fn)(int64_t, int64_t, const void *,
                                         int64_t, int64_t, int64_t, float *);
typedef void (*cattn_gemm_pack_a_f64_fn)(int64_t, int64_t, const void *,
                                         int64_t, int64_t, int64_t, double *);
typedef void (*cattn_gemm_pack_b_f32_fn)(int64_t, int64_t, const void *,
                                         int64_t, int64_t, int64_t, int64_t,
                                         int64_t, float *);
typedef void (*cattn_gemm_pack_b_f64_fn)(int64_t, int64_t, const void *,
                                         int64_t, int64_t, int64_t, int64_t,
                                         int64_t, double *);

typedef struct {
    const char *name;
    int isa;
    int64_t mr, nr, kc, mc, nc;
    cattn_gemm_ukernel_f32_fn ukernel;
    /* the same tile's narrow kernel: edge tiles of at most nr_narrow (one
     * vector of) columns, the same bits (ukernel.tmpl.h) */
    int64_t nr_narrow;
    cattn_gemm_ukernel_f32_fn ukernel_narrow;
    cattn_gemm_pack_a_f32_fn pack_a;   /* layouts in pack.tmpl.h */
    cattn_gemm_pack_b_f32_fn pack_b;
} cattn_gemm_kernel_f32;

typedef struct {
    const char *name;
    int isa;
    int64_t mr, nr, kc, mc, nc;
    cattn_gemm_ukernel_f64_fn ukernel;
    int64_t nr_narrow;
    cattn_gemm_ukernel_f64_fn ukernel_narrow;
    cattn_gemm_pack_a_f64_fn pack_a;
    cattn_gemm_pack_b_f64_fn pack_b;
} cattn_gemm_kernel_f64;

#include "../softmax/exp_simd.h"   /* immintrin.h where the ISA has it */
#include "transpose_avx512.h"
#include "transpose_avx2.h"
#define CATTN_TEMPLATE "gemm/ukernel.tmpl.h"
#include "../simd/instantiate.h"
#define CATTN_TEMPLATE "gemm/pack.tmpl.h"
#include "../simd/instantiate.h"

#define CATTN_GEMM_ENTRY(sfx, isa, tile, mr, nr, kc, mc, nc)                \
    {#sfx "_" tile, isa, mr, nr, kc, mc, nc, cattn_gemm_ukernel_##sfx,      \
     cattn_gemm_nr_narrow_##sfx, cattn_gemm_ukernel_narrow_##sfx,           \
     cattn_gemm_pack_a_##sfx, cattn_gemm_pack_b_##sfx}

/* The one table of kernels and blocksizes, indexed by enum cattn_isa.  The
 * tiles (MR, NR) must repeat the simd/ headers' RW_GEMM_* (the tests run
 * every table row against the float64 twin on edge tiles). */
static const cattn_gemm_kernel_f32 cattn_gemm_kernels_f32[] = {
    CATTN_GEMM_ENTRY(f32_generic, CATTN_ISA_GENERIC, "4x8", 4, 8, 256, 128,
                     4096),
#if CATTN_X86
    CATTN_GEMM_ENTRY(f32_avx2, CATTN_ISA_AVX2, "6x16", 6, 16, 256, 144, 4096),
    CATTN_GEMM_ENTRY(f32_avx512, CATTN_ISA_AVX512, "6x64", 6, 64, 256, 240,
                     4096),
#elif CATTN_ARM64
    CATTN_GEMM_ENTRY(f32_neon, CATTN_ISA_NEON, "8x12", 8, 12, 256, 128, 4092),
#endif
};

static const cattn_gemm_kernel_f64 cattn_gemm_kernels_f64[] = {
    CATTN_GEMM_ENTRY(f64_generic, CATTN_ISA_GENERIC, "4x4", 4, 4, 256, 128,
                     2048),
#if CATTN_X86
    CATTN_GEMM_ENTRY(f64_avx2, CATTN_ISA_AVX2, "6x8", 6, 8, 256, 96, 2048),
    CATTN_GEMM_ENTRY(f64_avx512, CATTN_ISA_AVX512, "6x32", 6, 32, 256, 120,
                     2048),
#elif CATTN_ARM64
    CATTN_GEMM_ENTRY(f64_neon, CATTN_ISA_NEON, "8x6", 8, 6, 256, 128, 2046),
#endif
};

static inline const cattn_gemm_kernel_f32 *cattn_gemm_kernel_f32_for(int isa)
{
    return &cattn_gemm_kernels_f32[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

static inline const cattn_gemm_kernel_f64 *cattn_gemm_kernel_f64_for(int isa)
{
    return &cattn_gemm_kernels_f64[cattn_isa_row(isa, CATTN_ISA_VECTOR)];
}

#endif
