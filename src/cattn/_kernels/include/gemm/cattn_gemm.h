/* cattn_gemm.h -- the GEMM micro-kernel contract and the per-CPU kernel table.
 *
 * Contract of every micro-kernel `cattn_gemm_ukernel_<dtype>_<isa>_<MR>x<NR>`
 * (the same for each dtype, ISA and tile; the BLIS contract, row-major):
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
typedef struct {
    const char *name;
    int isa;
    int64_t mr, nr, kc, mc, nc;
    cattn_gemm_ukernel_f32_fn ukernel;
} cattn_gemm_kernel_f32;

typedef struct {
    const char *name;
    int isa;
    int64_t mr, nr, kc, mc, nc;
    cattn_gemm_ukernel_f64_fn ukernel;
} cattn_gemm_kernel_f64;

#include "ukernel_ref.h"
#include "ukernel_avx2.h"
#include "ukernel_avx512.h"

/* The one table of kernels and blocksizes, indexed by enum cattn_isa. */
static const cattn_gemm_kernel_f32 cattn_gemm_kernels_f32[] = {
    {"f32_generic_4x8", CATTN_ISA_GENERIC, 4, 8, 256, 128, 4096,
     cattn_gemm_ukernel_f32_generic_4x8},
#if CATTN_X86
    {"f32_avx2_6x16", CATTN_ISA_AVX2, 6, 16, 256, 144, 4096,
     cattn_gemm_ukernel_f32_avx2_6x16},
    {"f32_avx512_6x64", CATTN_ISA_AVX512, 6, 64, 256, 240, 4096,
     cattn_gemm_ukernel_f32_avx512_6x64},
#endif
};

static const cattn_gemm_kernel_f64 cattn_gemm_kernels_f64[] = {
    {"f64_generic_4x4", CATTN_ISA_GENERIC, 4, 4, 256, 128, 2048,
     cattn_gemm_ukernel_f64_generic_4x4},
#if CATTN_X86
    {"f64_avx2_6x8", CATTN_ISA_AVX2, 6, 8, 256, 96, 2048,
     cattn_gemm_ukernel_f64_avx2_6x8},
    {"f64_avx512_6x32", CATTN_ISA_AVX512, 6, 32, 256, 120, 2048,
     cattn_gemm_ukernel_f64_avx512_6x32},
#endif
};

static inline const cattn_gemm_kernel_f32 *cattn_gemm_kernel_f32_for(int isa)
{
    return &cattn_gemm_kernels_f32[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

static inline const cattn_gemm_kernel_f64 *cattn_gemm_kernel_f64_for(int isa)
{
    return &cattn_gemm_kernels_f64[CATTN_X86 ? isa : CATTN_ISA_GENERIC];
}

#endif
