/* exp_simd.h -- vectorised exp for AVX-512F and AVX2 (float32 and float64);
 * AArch64's is exp_neon.h, the same method on Advanced SIMD.
 *
 * Method (the same in every variant):
 *   1. clamp x to [lo, hi]: above hi exp(x) rounds to +inf, so +inf needs
 *      no special case; lo = log(smallest normal), and results below it are
 *      flushed to +0 (step 5).  max/min are written max(lo, x), min(hi, x):
 *      the x86 instructions return their second operand when either is NaN,
 *      so NaN passes through to the result.
 *   2. n = round(x / ln2), r = x - n*ln2 with ln2 split in two (Cody-Waite)
 *      and FMA, so r is exact to a few ulp and |r| <= ln2/2.
 *   3. e^r by its Taylor polynomial (Horner, FMA): degree 7 for float32
 *      (truncation < 6e-9 relative), degree 13 for float64 (< 5e-18).
 *   4. scale by 2^n: vscalef on AVX-512 (handles overflow to inf and
 *      gradual underflow in one rounding); on AVX2 2^n = 2^n1 * 2^n2 with
 *      n1 = floor(n/2) built from exponent bits, so neither factor leaves the
 *      normal range and only the last product rounds.
 *   5. x < lo gives +0.  Subnormal results are flushed: producing them costs
 *      a microcode assist of ~100 cycles per element on Intel cores, and a
 *      masked attention score (-inf) would pay it every time; the absolute
 *      error is below the smallest normal number (1.2e-38 / 2.2e-308).
 * Measured error against a float64 / long-double exp: <= 2 ulp (tests/).
 */
#ifndef CATTN_EXP_SIMD_H
#define CATTN_EXP_SIMD_H
#include "../cattn_cpu.h"

#define CATTN_LOG2E 1.4426950408889634073599
/* log of the smallest normal number: below it the result is flushed to 0 */
#define CATTN_EXP_LO_F32 -87.33654475f
#define CATTN_EXP_LO_F64 -708.39641853226408
/* float32: 9-bit ln2_hi, so n*ln2_hi is exact for |n| < 2^15 */
#define CATTN_LN2_HI_F32 0.693359375f
#define CATTN_LN2_LO_F32 -2.12194440e-4f
/* float64: 32-bit ln2_hi */
#define CATTN_LN2_HI_F64 0.693145751953125
#define CATTN_LN2_LO_F64 1.42860682030941723212e-6

/* Horner steps p = p*r + c, highest coefficient first. */
#define CATTN_EXP_POLY_F32(FMA, SET1, r, p)                              \
    do {                                                                 \
        p = SET1(1.0f / 5040.0f);                                        \
        p = FMA(p, r, SET1(1.0f / 720.0f));                              \
        p = FMA(p, r, SET1(1.0f / 120.0f));                              \
        p = FMA(p, r, SET1(1.0f / 24.0f));                               \
        p = FMA(p, r, SET1(1.0f / 6.0f));                                \
        p = FMA(p, r, SET1(0.5f));                                       \
        p = FMA(p, r, SET1(1.0f));                                       \
        p = FMA(p, r, SET1(1.0f));                                       \
    } while (0)

/* The exp of P when P is rounded to bf16 for P·V (attention's default
 * precision with bf16 pair products): a degree-3 polynomial whose relative
 * error on |r| <= ln2/2 is at most 1.02e-4 (minimax for relative error
 * with p(0) = 1 exactly, so exp(0) = 1 and the row's maximum keeps weight
 * 1), 1/19 of the half-ulp (2^-9) by which bf16 then rounds P.  The row
 * sums take the same values, so the normalisation matches the weights. */
#define CATTN_EXP_POLY_P16_F32(FMA, SET1, r, p)                          \
    do {                                                                 \
        p = SET1(0.16517975620823588f);                                  \
        p = FMA(p, r, SET1(0.5041304280265142f));                        \
        p = FMA(p, r, SET1(1.000195844953503f));                         \
        p = FMA(p, r, SET1(1.0f));                                       \
    } while (0)

#define CATTN_EXP_POLY_F64(FMA, SET1, r, p)                              \
    do {                                                                 \
        p = SET1(1.0 / 6227020800.0);                                    \
        p = FMA(p, r, SET1(1.0 / 479001600.0));                          \
        p = FMA(p, r, SET1(1.0 / 39916800.0));                           \
        p = FMA(p, r, SET1(1.0 / 3628800.0));                            \
        p = FMA(p, r, SET1(1.0 / 362880.0));                             \
        p = FMA(p, r, SET1(1.0 / 40320.0));                              \
        p = FMA(p, r, SET1(1.0 / 5040.0));                               \
        p = FMA(p, r, SET1(1.0 / 720.0));                                \
        p = FMA(p, r, SET1(1.0 / 120.0));                                \
        p = FMA(p, r, SET1(1.0 / 24.0));                                 \
        p = FMA(p, r, SET1(1.0 / 6.0));                                  \
        p = FMA(p, r, SET1(0.5));                                        \
        p = FMA(p, r, SET1(1.0));                                        \
        p = FMA(p, r, SET1(1.0));                                        \
    } while (0)

#if CATTN_X86
#include <immintrin.h>
#include "../cattn_target.h"

CATTN_TARGET_PUSH("avx512f,avx2,fma")

/* Steps 2 (reduction by n*ln2), 3 (polynomial) and 4-5 (scale by 2^n, +0
 * where `tiny`), shared by the general exp and the one for x <= 0. */
static inline __m512 cattn_vexp_reduce_f32_avx512(__m512 x, __m512 n)
{
    const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CATTN_LN2_HI_F32), x);
    return _mm512_fnmadd_ps(n, _mm512_set1_ps(CATTN_LN2_LO_F32), r);
}

static inline __m512 cattn_vexp_finish_f32_avx512(__m512 x, __m512 n,
                                                  __mmask16 tiny)
{
    const __m512 r = cattn_vexp_reduce_f32_avx512(x, n);
    __m512 p;
    CATTN_EXP_POLY_F32(_mm512_fmadd_ps, _mm512_set1_ps, r, p);
    return _mm512_maskz_scalef_ps(~tiny, p, n);
}

static inline __m512 cattn_vexp_f32_avx512(__m512 x)
{
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CATTN_EXP_LO_F32),
                                              _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(CATTN_EXP_LO_F32), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    const __m512 n = _mm512_roundscale_ps(
        _mm512_mul_ps(x, _mm512_set1_ps((float)CATTN_LOG2E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return cattn_vexp_finish_f32_avx512(x, n, tiny);
}

static inline __m512d cattn_vexp_finish_f64_avx512(__m512d x, __m512d n,
                                                   __mmask8 tiny)
{
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(CATTN_LN2_HI_F64), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(CATTN_LN2_LO_F64), r);
    __m512d p;
    CATTN_EXP_POLY_F64(_mm512_fmadd_pd, _mm512_set1_pd, r, p);
    return _mm512_maskz_scalef_pd(~tiny, p, n);
}

static inline __m512d cattn_vexp_f64_avx512(__m512d x)
{
    const __mmask8 tiny = _mm512_cmp_pd_mask(x, _mm512_set1_pd(CATTN_EXP_LO_F64),
                                             _CMP_LT_OQ);
    x = _mm512_max_pd(_mm512_set1_pd(CATTN_EXP_LO_F64), x);
    x = _mm512_min_pd(_mm512_set1_pd(710.0), x);
    const __m512d n = _mm512_roundscale_pd(
        _mm512_mul_pd(x, _mm512_set1_pd(CATTN_LOG2E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return cattn_vexp_finish_f64_avx512(x, n, tiny);
}

/* n = round(x*log2e) by one FMA against 1.5*2^23, and the lanes x < lo:
 * the first step of both exps for x <= 0 below. */
static inline __m512 cattn_vexp_neg_n_f32_avx512(__m512 x, __mmask16 *tiny)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    *tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CATTN_EXP_LO_F32), _CMP_LT_OQ);
    return _mm512_sub_ps(
        _mm512_fmadd_ps(x, _mm512_set1_ps((float)CATTN_LOG2E), magic), magic);
}

/* exp(x) for x <= 0 or NaN only -- the shifted scores of the attention
 * kernel, where x = s - max and a NaN must come through -- in fewer
 * operations: no clamps (x <= 0 cannot overflow; x = -inf or x < lo turn
 * into NaN in the reduction but are masked to +0 by `tiny`), and n from
 * one FMA against 1.5*2^23 (round to nearest of the exact x*log2e) instead
 * of a multiply and a round.  Same reduction and polynomial as above, so
 * the same error bound; x > 0 is outside the contract (+inf gives NaN). */
static inline __m512 cattn_vexp_neg_f32_avx512(__m512 x)
{
    __mmask16 tiny;
    const __m512 n = cattn_vexp_neg_n_f32_avx512(x, &tiny);
    return cattn_vexp_finish_f32_avx512(x, n, tiny);
}

/* cattn_vexp_neg_f32_avx512 to bf16's accuracy (CATTN_EXP_POLY_P16_F32):
 * the same reduction and scaling, so the same special values. */
static inline __m512 cattn_vexp_neg_p16_f32_avx512(__m512 x)
{
    __mmask16 tiny;
    const __m512 n = cattn_vexp_neg_n_f32_avx512(x, &tiny);
    const __m512 r = cattn_vexp_reduce_f32_avx512(x, n);
    __m512 p;
    CATTN_EXP_POLY_P16_F32(_mm512_fmadd_ps, _mm512_set1_ps, r, p);
    return _mm512_maskz_scalef_ps(~tiny, p, n);
}

static inline __m512d cattn_vexp_neg_f64_avx512(__m512d x)
{
    const __m512d magic = _mm512_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
    const __mmask8 tiny = _mm512_cmp_pd_mask(x, _mm512_set1_pd(CATTN_EXP_LO_F64),
                                             _CMP_LT_OQ);
    const __m512d n = _mm512_sub_pd(
        _mm512_fmadd_pd(x, _mm512_set1_pd(CATTN_LOG2E), magic), magic);
    return cattn_vexp_finish_f64_avx512(x, n, tiny);
}

CATTN_TARGET_POP()

CATTN_TARGET_PUSH("avx2,fma")

/* 2^k for integral k in [-126, 127] (float32) / [-1022, 1023] (float64):
 * k + 1.5*2^23 holds k in its low mantissa bits, whose 9 (12) lowest bits
 * the shift moves into the exponent field after adding the bias. */
static inline __m256 cattn_pow2i_f32_avx2(__m256 k)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    __m256i bits = _mm256_castps_si256(_mm256_add_ps(k, magic));
    bits = _mm256_add_epi32(bits, _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23));
}

static inline __m256d cattn_pow2i_f64_avx2(__m256d k)
{
    const __m256d magic = _mm256_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
    __m256i bits = _mm256_castpd_si256(_mm256_add_pd(k, magic));
    bits = _mm256_add_epi64(bits, _mm256_set1_epi64x(1023));
    return _mm256_castsi256_pd(_mm256_slli_epi64(bits, 52));
}

static inline __m256 cattn_vexp_f32_avx2(__m256 x)
{
    const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(CATTN_EXP_LO_F32),
                                      _CMP_NLT_UQ);
    x = _mm256_max_ps(_mm256_set1_ps(CATTN_EXP_LO_F32), x);
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    const __m256 n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps((float)CATTN_LOG2E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CATTN_LN2_HI_F32), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CATTN_LN2_LO_F32), r);
    __m256 p;
    CATTN_EXP_POLY_F32(_mm256_fmadd_ps, _mm256_set1_ps, r, p);
    const __m256 n1 = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
    const __m256 n2 = _mm256_sub_ps(n, n1);
    return _mm256_and_ps(keep, _mm256_mul_ps(
        _mm256_mul_ps(p, cattn_pow2i_f32_avx2(n1)), cattn_pow2i_f32_avx2(n2)));
}

static inline __m256d cattn_vexp_f64_avx2(__m256d x)
{
    const __m256d keep = _mm256_cmp_pd(x, _mm256_set1_pd(CATTN_EXP_LO_F64),
                                       _CMP_NLT_UQ);
    x = _mm256_max_pd(_mm256_set1_pd(CATTN_EXP_LO_F64), x);
    x = _mm256_min_pd(_mm256_set1_pd(710.0), x);
    const __m256d n = _mm256_round_pd(
        _mm256_mul_pd(x, _mm256_set1_pd(CATTN_LOG2E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(CATTN_LN2_HI_F64), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(CATTN_LN2_LO_F64), r);
    __m256d p;
    CATTN_EXP_POLY_F64(_mm256_fmadd_pd, _mm256_set1_pd, r, p);
    const __m256d n1 = _mm256_floor_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
    const __m256d n2 = _mm256_sub_pd(n, n1);
    return _mm256_and_pd(keep, _mm256_mul_pd(
        _mm256_mul_pd(p, cattn_pow2i_f64_avx2(n1)), cattn_pow2i_f64_avx2(n2)));
}

/* exp(x) for x <= 0 or NaN only (the contract of the AVX-512 _neg
 * variants above): no clamps, n from one FMA against 1.5*2^23 (2^52), and
 * one scaling factor -- for lo <= x <= 0, n lies in [-126, 0] ([-1022, 0])
 * where 2^n is normal -- so about ten fewer operations than the general
 * exp.  x < lo, -inf included (whose reduction gives NaN), is masked to
 * +0; NaN passes through.  Same reduction and polynomial, same bound. */
static inline __m256 cattn_vexp_neg_f32_avx2(__m256 x)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(CATTN_EXP_LO_F32),
                                      _CMP_LT_OQ);
    const __m256 n = _mm256_sub_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps((float)CATTN_LOG2E), magic), magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CATTN_LN2_HI_F32), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CATTN_LN2_LO_F32), r);
    __m256 p;
    CATTN_EXP_POLY_F32(_mm256_fmadd_ps, _mm256_set1_ps, r, p);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, cattn_pow2i_f32_avx2(n)));
}

static inline __m256d cattn_vexp_neg_f64_avx2(__m256d x)
{
    const __m256d magic = _mm256_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
    const __m256d tiny = _mm256_cmp_pd(x, _mm256_set1_pd(CATTN_EXP_LO_F64),
                                       _CMP_LT_OQ);
    const __m256d n = _mm256_sub_pd(
        _mm256_fmadd_pd(x, _mm256_set1_pd(CATTN_LOG2E), magic), magic);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(CATTN_LN2_HI_F64), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(CATTN_LN2_LO_F64), r);
    __m256d p;
    CATTN_EXP_POLY_F64(_mm256_fmadd_pd, _mm256_set1_pd, r, p);
    return _mm256_andnot_pd(tiny, _mm256_mul_pd(p, cattn_pow2i_f64_avx2(n)));
}

/* Horizontal reductions AVX2 lacks as single intrinsics; a fixed order. */
static inline float cattn_hsum_f32_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double cattn_hsum_f64_avx2(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

static inline float cattn_hmax_f32_avx2(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double cattn_hmax_f64_avx2(__m256d v)
{
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

CATTN_TARGET_POP()

#elif CATTN_ARM64
#include "exp_neon.h"
#endif
#endif
