/* cattn_gemm_bf16.h -- bfloat16 tile products on AVX512_BF16 (vdpbf16ps)
 * and on AArch64's BF16 extension (BFDOT), the CATTN_ISA_BF16_PAIRS level
 * of each architecture: a micro-kernel with the float32
 * contract of cattn_gemm.h except for the panels, its packers, and the
 * kernel table (a row per ISA; NULL kernel below that level, where bf16
 * operands are widened and multiplied by the float32 kernels instead).
 *
 * Panels hold bf16 *pairs* along the depth: vdpbf16ps and BFDOT add, per
 * 32-bit lane, a0·b0 + a1·b1 of two adjacent bf16 of each operand, so the packers
 * interleave depth p = 2t and 2t + 1 into one 32-bit word:
 *
 *   A panel (MR rows): word (t, i) at t*MR + i = A[i, 2t] | A[i, 2t+1] << 16
 *   B panel (NR cols): word (t, j) at t*NR + j = B[2t, j] | B[2t+1, j] << 16
 *
 * with an odd depth's last high half, rows past m and columns past n zero.
 * Panels are handed around as `float *` (a pair is one 32-bit word): the
 * drivers' panel offsets count words, ceil(depth / 2) per row or column.
 *
 * Arithmetic: each step is acc += a1·b1 then += a0·b0 in float32 (a
 * product of two bf16 is exact in float32), so an element of C is a
 * float32 sum over the depth, in a fixed order, as in the float32 kernels
 * but with pairs; the instruction treats bf16 subnormal inputs as zero and
 * flushes subnormal results (its definition: DAZ/FTZ, round to nearest
 * even).  BFDOT also flushes subnormals, but adds the two products before
 * the accumulator (without FEAT_EBF16, rounding the intermediate sum to
 * odd), so its bits differ from x86's.  Full and edge tiles compute the
 * same lanes the same way, so the bits do not depend on the split; they
 * do depend on the CPU's instruction.
 */
#ifndef CATTN_GEMM_BF16_H
#define CATTN_GEMM_BF16_H

#include <stdint.h>
#include <string.h>
#include "cattn_gemm.h"
#include "../convert/cattn_convert.h"   /* cattn_f32_to_bf16 */
#include "../cattn_target.h"

typedef struct {
    const char *name;
    int64_t mr, nr, kc, mc, nc;     /* as cattn_gemm.h; kc even */
    /* C (float32) := alpha·A·B + beta·C over depth k (elements), A and B
     * pair panels with lda, ldb in words (MR, NR when packed). */
    void (*ukernel)(int64_t k, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float *c, int64_t rs_c, int64_t cs_c,
                    int64_t m, int64_t n, float alpha, float beta);
    /* Pair panels from bf16 storage, any strides (pack.tmpl.h's
     * arguments; kc in elements). */
    void (*pack_a)(int64_t mc, int64_t kc, const void *a, int64_t rs_a,
                   int64_t cs_a, int64_t mr, float *dst);
    void (*pack_b)(int64_t kc, int64_t nc, const void *b, int64_t rs_b,
                   int64_t cs_b, int64_t nr, int64_t q0, int64_t q1,
                   float *dst);
    /* B pair panels of a float32 tile stored by rows (row stride ld),
     * rounded to bf16 (nearest even): the attention's Pᵀ. */
    void (*pack_b_f32)(int64_t kc, int64_t nc, const float *b, int64_t ld,
                       int64_t nr, float *dst);
    /* The attention's companions of a pair product O = P·V computed as
     * Oᵀ = Vᵀ Pᵀ (Vᵀ as A, so Pᵀ packs with whole vectors): zero the inf
     * and NaN halves of n packed words (true if there were any), and
     * scale the columns of the accumulator Oᵀ (rows x nq, row stride ld)
     * by alpha[0:nq]. */
    int (*zero_nonfinite)(int64_t n, float *words);
    void (*scale_cols)(int64_t rows, int64_t nq, float *acc, int64_t ld,
                       const float *alpha);
    /* Oᵀ (cols x nq_pad, row stride ldt, nq_pad a multiple of 16) back to
     * rows: o[q*ldo + c] = t[c*ldt + q] for c < cols and every q below
     * nq rounded up to 16 (so o needs that many rows; columns of t past nq
     * are copied as they are). */
    void (*cols_to_rows)(int64_t cols, int64_t nq, const float *t,
                         int64_t ldt, float *o, int64_t ldo);
} cattn_gemm_kernel_bf16;

/* The portable packers (any strides), shared by the table's rows. */
static void cattn_gemm_pack_a_bf16_pairs(int64_t mc, int64_t kc,
                                         const void *a_, int64_t rs_a,
                                         int64_t cs_a, int64_t mr,
                                         float *dst_)
{
    const uint16_t *a = (const uint16_t *)a_;
    uint16_t *dst = (uint16_t *)dst_;
    const int64_t kp = (kc + 1) / 2;
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
        const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
        for (int64_t t = 0; t < kp; ++t)
            for (int64_t i = 0; i < mr; ++i)
                for (int64_t h = 0; h < 2; ++h) {
                    const int64_t p = 2 * t + h;
                    dst[2 * (t * mr + i) + h] =
                        i < rows && p < kc
                            ? a[(i0 + i) * rs_a + p * cs_a] : 0;
                }
        dst += 2 * mr * kp;
    }
}

/* A B panel of Bᵀ's columns is an A panel of B's rows: the same words. */
static void cattn_gemm_pack_b_bf16_pairs(int64_t kc, int64_t nc,
                                         const void *b, int64_t rs_b,
                                         int64_t cs_b, int64_t nr,
                                         int64_t q0, int64_t q1, float *dst)
{
    const int64_t kp = (kc + 1) / 2;
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = q * nr;
        cattn_gemm_pack_a_bf16_pairs(nc - j0 < nr ? nc - j0 : nr, kc,
                                     (const uint16_t *)b + j0 * cs_b, cs_b,
                                     rs_b, nr, dst + q * nr * kp);
    }
}

/* Columns j0..nr-1 of pair row t of a Pᵀ panel: rows r0 and r0 + ld
 * (absent: !has1) rounded to bf16, zero past `cols`. */
static inline void cattn_bf16_pair_words(int64_t j0, int64_t cols,
                                         int64_t nr, const float *r0,
                                         int64_t ld, int has1, uint16_t *dh)
{
    for (int64_t j = j0; j < nr; ++j) {
        dh[2 * j] = j < cols ? cattn_f32_to_bf16(r0[j]) : 0;
        dh[2 * j + 1] = j < cols && has1 ? cattn_f32_to_bf16(r0[ld + j]) : 0;
    }
}

/* Pᵀ (kc keys x nc queries, float32, row stride ld) as B pair panels,
 * rounded to bf16 (nearest even). */
static inline void cattn_gemm_pack_b_f32_bf16_pairs(
    int64_t kc, int64_t nc, const float *b, int64_t ld, int64_t nr,
    float *dst)
{
    const int64_t kp = (kc + 1) / 2;
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        for (int64_t t = 0; t < kp; ++t)
            cattn_bf16_pair_words(0, cols, nr, b + 2 * t * ld + j0, ld,
                                  2 * t + 1 < kc,
                                  (uint16_t *)(dst + j0 * kp + t * nr));
    }
}

static inline int cattn_bf16_zero_nonfinite(int64_t n, float *words)
{
    uint16_t *h = (uint16_t *)words;
    int any = 0;
    for (int64_t i = 0; i < 2 * n; ++i) {
        const int bad = (h[i] & 0x7F80u) == 0x7F80u;
        any |= bad;
        h[i] = bad ? 0 : h[i];
    }
    return any;
}

static inline void cattn_scale_cols(int64_t rows, int64_t nq, float *acc,
                                    int64_t ld, const float *alpha)
{
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < nq; ++q)
            acc[r * ld + q] *= alpha[q];
}

static inline void cattn_cols_to_rows(int64_t cols, int64_t nq, const float *t,
                                      int64_t ldt, float *o, int64_t ldo)
{
    const int64_t nq16 = (nq + 15) / 16 * 16;
    for (int64_t q = 0; q < nq16; ++q)
        for (int64_t c = 0; c < cols; ++c)
            o[q * ldo + c] = t[c * ldt + q];
}

/* The pair kernels' store, one body for every ISA (its vector type and
 * operations are the parameters; FMA(a, b, c) = a·b + c): every lane is
 * alpha·acc, then + beta·C where beta != 0 (C never read otherwise); an
 * edge or strided C goes through `tile`, the same lane arithmetic, so the
 * bits do not depend on the split.  Expands inside a kernel whose
 * accumulators are acc[MR][NV], with its arguments c, rs_c, cs_c, m, n,
 * alpha and beta in scope. */
#define CATTN_BF16_STORE(MR, NV, VL, VEC, SET1, MUL, FMA, LOAD, STORE)     \
    do {                                                                    \
        const VEC valpha = SET1(alpha), vbeta = SET1(beta);                 \
        const int full = m == (MR) && n == (NV) * (VL) && cs_c == 1;        \
        float tile[(MR) * (NV) * (VL)] __attribute__((aligned(64)));        \
        if (!full && beta != 0)                                             \
            for (int64_t i = 0; i < m; ++i)                                 \
                for (int64_t j = 0; j < n; ++j)                             \
                    tile[i * (NV) * (VL) + j] = c[i * rs_c + j * cs_c];     \
        _Pragma("GCC unroll 16") for (int i = 0; i < (MR); ++i)             \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); ++v) {        \
                float *dst = full ? c + i * rs_c + v * (VL)                 \
                                  : tile + (i * (NV) + v) * (VL);           \
                VEC r = MUL(valpha, acc[i][v]);                             \
                if (beta != 0)                                              \
                    r = FMA(vbeta, LOAD(dst), r);                           \
                STORE(dst, r);                                              \
            }                                                               \
        if (!full)                                                          \
            for (int64_t i = 0; i < m; ++i)                                 \
                for (int64_t j = 0; j < n; ++j)                             \
                    c[i * rs_c + j * cs_c] = tile[i * (NV) * (VL) + j];     \
    } while (0)

#if CATTN_X86
CATTN_TARGET_PUSH("avx512f,avx512bw,avx512bf16,avx2,fma,f16c")

#define BF_MR 6
#define BF_NV 4
#define BF_NR (BF_NV * 16)

/* Register budget as the float32 AVX-512 kernel: 6 x 4 accumulators, 4 B
 * vectors, 1 broadcast A pair (29 of 32 zmm); each pair step is 4 loads, 6
 * broadcasts and 24 vdpbf16ps of 32 multiply-adds each. */
__attribute__((aligned(256)))
static void cattn_gemm_ukernel_bf16_avx512_bf16(
    int64_t k, const float *restrict a, int64_t lda, const float *restrict b,
    int64_t ldb, float *restrict c, int64_t rs_c, int64_t cs_c, int64_t m,
    int64_t n, float alpha, float beta)
{
    __m512 acc[BF_MR][BF_NV];
    _Pragma("GCC unroll 16") for (int i = 0; i < BF_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < BF_NV; ++v)
            acc[i][v] = _mm512_setzero_ps();
    const int32_t *aw = (const int32_t *)a;
    for (int64_t t = 0; t < (k + 1) / 2; ++t) {
        __m512bh bv[BF_NV];
        _Pragma("GCC unroll 8") for (int v = 0; v < BF_NV; ++v)
            bv[v] = (__m512bh)_mm512_loadu_si512(b + v * 16);
        _Pragma("GCC unroll 16") for (int i = 0; i < BF_MR; ++i) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32(aw[i]);
            _Pragma("GCC unroll 8") for (int v = 0; v < BF_NV; ++v)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
        }
        aw += lda;
        b += ldb;
    }
    CATTN_BF16_STORE(BF_MR, BF_NV, 16, __m512, _mm512_set1_ps, _mm512_mul_ps,
                     _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_storeu_ps);
}

/* Interleave rows r0, r1 (32 bf16 each, columns j..j+31) into the pair
 * words of columns j..j+15 (lo) and j+16..j+31 (hi). */
static inline void cattn_bf16_interleave(__m512i r0, __m512i r1, float *dst)
{
    const __m512i lo = _mm512_set_epi16(
        47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
        39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    _mm512_storeu_si512(dst, _mm512_permutex2var_epi16(r0, lo, r1));
    _mm512_storeu_si512(dst + 16, _mm512_permutex2var_epi16(r0, hi, r1));
}

/* A stored by rows with an even depth (K in Sᵀ = K Qᵀ, A of a row-major
 * matmul): a row's pairs are its 32-bit words, so the pair panel is the
 * float32 panel of the words -- the float32 transposing packer does it.
 * A stored by columns (Vᵀ in Oᵀ = Vᵀ Pᵀ): columns 2t and 2t + 1 are
 * interleaved 32 rows at a time, then dealt out to the MR-row panels. */
static void cattn_gemm_pack_a_bf16_avx512_bf16(
    int64_t mc, int64_t kc, const void *a, int64_t rs_a, int64_t cs_a,
    int64_t mr, float *dst)
{
    if (cs_a == 1 && kc % 2 == 0 && rs_a % 2 == 0
            && (uintptr_t)a % 4 == 0) {
        cattn_gemm_pack_a_f32_avx512(mc, kc / 2, a, rs_a / 2, 1, mr, dst);
        return;
    }
    enum { MAX_ROWS = 1024 };
    if (rs_a != 1 || mc > MAX_ROWS) {
        cattn_gemm_pack_a_bf16_pairs(mc, kc, a, rs_a, cs_a, mr, dst);
        return;
    }
    const uint16_t *src = (const uint16_t *)a;
    const int64_t kp = (kc + 1) / 2, panels = (mc + mr - 1) / mr;
    float words[MAX_ROWS + 32] __attribute__((aligned(64)));
    for (int64_t t = 0; t < kp; ++t) {
        const uint16_t *c0 = src + 2 * t * cs_a;
        const int has1 = 2 * t + 1 < kc;
        for (int64_t i = 0; i < mc; i += 32) {
            const __mmask32 live = mc - i >= 32 ? ~(__mmask32)0
                : (__mmask32)((1u << (mc - i)) - 1);
            const __m512i x0 = _mm512_maskz_loadu_epi16(live, c0 + i);
            const __m512i x1 = has1
                ? _mm512_maskz_loadu_epi16(live, c0 + cs_a + i)
                : _mm512_setzero_si512();
            cattn_bf16_interleave(x0, x1, words + i);
        }
        const uint32_t *w = (const uint32_t *)words;    /* bits, not floats */
        for (int64_t q = 0; q < panels; ++q) {
            uint32_t *d = (uint32_t *)dst + q * mr * kp + t * mr;
            for (int64_t i = 0; i < mr; ++i)
                d[i] = q * mr + i < mc ? w[q * mr + i] : 0u;
        }
    }
}

/* B stored by rows (V, B of a row-major matmul): interleave row pairs;
 * B stored by columns with an even depth (Qᵀ): the float32 transposing
 * packer on words. */
static void cattn_gemm_pack_b_bf16_avx512_bf16(
    int64_t kc, int64_t nc, const void *b, int64_t rs_b, int64_t cs_b,
    int64_t nr, int64_t q0, int64_t q1, float *dst)
{
    if (rs_b == 1 && kc % 2 == 0 && cs_b % 2 == 0
            && (uintptr_t)b % 4 == 0) {
        cattn_gemm_pack_b_f32_avx512(kc / 2, nc, b, 1, cs_b / 2, nr, q0, q1,
                                     dst);
        return;
    }
    const int64_t kp = (kc + 1) / 2;
    if (cs_b != 1 || nr % 32 != 0) {
        cattn_gemm_pack_b_bf16_pairs(kc, nc, b, rs_b, cs_b, nr, q0, q1, dst);
        return;
    }
    const uint16_t *src = (const uint16_t *)b;
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = q * nr;
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        if (cols < nr) {
            cattn_gemm_pack_b_bf16_pairs(kc, nc, b, rs_b, cs_b, nr, q, q + 1,
                                         dst);
            continue;
        }
        float *d = dst + q * nr * kp;
        for (int64_t t = 0; t < kp; ++t) {
            const uint16_t *r0 = src + 2 * t * rs_b + j0;
            for (int64_t j = 0; j < nr; j += 32) {
                const __m512i x0 = _mm512_loadu_si512(r0 + j);
                const __m512i x1 = 2 * t + 1 < kc
                    ? _mm512_loadu_si512(r0 + rs_b + j) : _mm512_setzero_si512();
                cattn_bf16_interleave(x0, x1, d + t * nr + j);
            }
        }
    }
}

/* Pᵀ (kc keys x nc queries, float32, row stride ld) as B pair panels,
 * rounded to bf16: vcvtne2ps2bf16 rounds two rows at once (nearest even,
 * the instruction's only mode), then the pairs are interleaved. */
static void cattn_gemm_pack_b_f32_bf16_avx512_bf16(
    int64_t kc, int64_t nc, const float *b, int64_t ld, int64_t nr,
    float *dst)
{
    const int64_t kp = (kc + 1) / 2;
    /* element 2j <- row 2t's j (low half), 2j + 1 <- row 2t+1's (high) */
    const __m512i pairs = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        float *d = dst + j0 * kp;
        for (int64_t t = 0; t < kp; ++t) {
            const float *r0 = b + 2 * t * ld + j0;
            const int has1 = 2 * t + 1 < kc;
            int64_t j = 0;
            for (; j + 16 <= cols; j += 16) {
                const __m512 x0 = _mm512_loadu_ps(r0 + j);
                const __m512 x1 = has1 ? _mm512_loadu_ps(r0 + ld + j)
                                       : _mm512_setzero_ps();
                /* low 16 bf16: x0, high 16: x1 */
                const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                _mm512_storeu_si512(d + t * nr + j,
                                    _mm512_permutexvar_epi16(pairs, both));
            }
            cattn_bf16_pair_words(j, cols, nr, r0, ld, has1,
                                  (uint16_t *)(d + t * nr));
        }
    }
}

/* The portable companions, compiled (and vectorised) for AVX-512 here. */
static int cattn_bf16_zero_nonfinite_avx512_bf16(int64_t n, float *words)
{
    return cattn_bf16_zero_nonfinite(n, words);
}

static void cattn_scale_cols_avx512_bf16(int64_t rows, int64_t nq,
                                         float *acc, int64_t ld,
                                         const float *alpha)
{
    cattn_scale_cols(rows, nq, acc, ld, alpha);
}

/* 16 x 16 register transposes (transpose_avx512.h) instead of one strided
 * load per element: a short sequence's query block ends with this, and
 * the element-wise copy took ~8 % of a bf16 B32 H8 L=S=128 call. */
static void cattn_cols_to_rows_avx512_bf16(int64_t cols, int64_t nq,
                                           const float *t, int64_t ldt,
                                           float *o, int64_t ldo)
{
    for (int64_t c0 = 0; c0 < cols; c0 += 16)
        for (int64_t q0 = 0; q0 < nq; q0 += 16)
            cattn_transpose_f32_avx512(
                (int)(cols - c0 < 16 ? cols - c0 : 16), t + c0 * ldt + q0,
                ldt, o + q0 * ldo + c0, ldo);
}

#undef BF_MR
#undef BF_NV
#undef BF_NR
CATTN_TARGET_POP()
#endif


#if CATTN_ARM64 && (defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)        \
                    || !defined(__clang__))
/* GCC enables BFDOT for this region alone; clang only where the whole
 * build targets it (elsewhere the NEON_BF16 row stays empty and bf16
 * runs the float32 kernels, as below that level). */
#define CATTN_NEON_BF16 1
CATTN_TARGET_PUSH("arch=armv8.2-a+bf16")

#define BN_MR 8
#define BN_NV 3
#define BN_NR (BN_NV * 4)

/* The float32 NEON kernel's tile (8 x 12, cattn_gemm.h): 8 x 3
 * accumulators, 3 B vectors of 4 column pairs and the 8 rows' A pairs in
 * 2 vectors (29 of 32 registers); BFDOT by element takes row i's pair
 * from lane i % 4 of its A vector. */
static void cattn_gemm_ukernel_bf16_neon_bf16(
    int64_t k, const float *restrict a, int64_t lda, const float *restrict b,
    int64_t ldb, float *restrict c, int64_t rs_c, int64_t cs_c, int64_t m,
    int64_t n, float alpha, float beta)
{
    float32x4_t acc[BN_MR][BN_NV];
    _Pragma("GCC unroll 16") for (int i = 0; i < BN_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < BN_NV; ++v)
            acc[i][v] = vdupq_n_f32(0.0f);
    const uint32_t *aw = (const uint32_t *)a, *bw = (const uint32_t *)b;
    for (int64_t t = 0; t < (k + 1) / 2; ++t) {
        bfloat16x8_t bv[BN_NV];
        _Pragma("GCC unroll 8") for (int v = 0; v < BN_NV; ++v)
            bv[v] = vreinterpretq_bf16_u32(vld1q_u32(bw + v * 4));
        const bfloat16x8_t a0 = vreinterpretq_bf16_u32(vld1q_u32(aw));
        const bfloat16x8_t a1 = vreinterpretq_bf16_u32(vld1q_u32(aw + 4));
        _Pragma("GCC unroll 8") for (int v = 0; v < BN_NV; ++v) {
            acc[0][v] = vbfdotq_laneq_f32(acc[0][v], bv[v], a0, 0);
            acc[1][v] = vbfdotq_laneq_f32(acc[1][v], bv[v], a0, 1);
            acc[2][v] = vbfdotq_laneq_f32(acc[2][v], bv[v], a0, 2);
            acc[3][v] = vbfdotq_laneq_f32(acc[3][v], bv[v], a0, 3);
            acc[4][v] = vbfdotq_laneq_f32(acc[4][v], bv[v], a1, 0);
            acc[5][v] = vbfdotq_laneq_f32(acc[5][v], bv[v], a1, 1);
            acc[6][v] = vbfdotq_laneq_f32(acc[6][v], bv[v], a1, 2);
            acc[7][v] = vbfdotq_laneq_f32(acc[7][v], bv[v], a1, 3);
        }
        aw += lda;
        bw += ldb;
    }
#define BN_FMA(a, b, c) vfmaq_f32((c), (a), (b))
    CATTN_BF16_STORE(BN_MR, BN_NV, 4, float32x4_t, vdupq_n_f32, vmulq_f32,
                     BN_FMA, vld1q_f32, vst1q_f32);
#undef BN_FMA
}

#undef BN_MR
#undef BN_NV
#undef BN_NR
CATTN_TARGET_POP()
#endif

/* Indexed by enum cattn_isa (cattn_isa_row); a NULL ukernel: no bf16
 * products at that level. */
static const cattn_gemm_kernel_bf16 cattn_gemm_kernels_bf16[] = {
    {"none", 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#if CATTN_X86
    {"none", 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"none", 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"bf16_avx512_bf16_6x64", 6, 64, 2048, 60, 2048,
     cattn_gemm_ukernel_bf16_avx512_bf16, cattn_gemm_pack_a_bf16_avx512_bf16,
     cattn_gemm_pack_b_bf16_avx512_bf16,
     cattn_gemm_pack_b_f32_bf16_avx512_bf16,
     cattn_bf16_zero_nonfinite_avx512_bf16, cattn_scale_cols_avx512_bf16,
     cattn_cols_to_rows_avx512_bf16},
#elif CATTN_ARM64
    {"none", 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#if CATTN_NEON_BF16
    {"bf16_neon_bf16_8x12", 8, 12, 2048, 64, 4092,
     cattn_gemm_ukernel_bf16_neon_bf16, cattn_gemm_pack_a_bf16_pairs,
     cattn_gemm_pack_b_bf16_pairs, cattn_gemm_pack_b_f32_bf16_pairs,
     cattn_bf16_zero_nonfinite, cattn_scale_cols, cattn_cols_to_rows},
#else
    {"none", 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#endif
#endif
};

static inline const cattn_gemm_kernel_bf16 *cattn_gemm_kernel_bf16_for(int isa)
{
    return &cattn_gemm_kernels_bf16[cattn_isa_row(isa,
                                                  CATTN_ISA_BF16_PAIRS)];
}

#endif
