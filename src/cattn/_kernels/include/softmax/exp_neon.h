/* exp_neon.h -- the vector exp of exp_simd.h (same method, steps 1-5, and
 * error bound) on AArch64 Advanced SIMD, with the helpers the neon_*.h
 * RW_* operations call.  FMAX/FMIN return NaN when either operand is, so
 * the clamps of step 1 pass NaN through; step 4 is AVX2's two-factor
 * scaling, 2^n = 2^n1 * 2^n2 built from exponent bits. */
#ifndef CATTN_EXP_NEON_H
#define CATTN_EXP_NEON_H
#include <arm_neon.h>
#include <string.h>

/* r*p + c, the Horner step of CATTN_EXP_POLY_*: vfmaq(c, a, b) = c + a*b */
#define CATTN_NEON_FMA_F32(a, b, c) vfmaq_f32(c, a, b)
#define CATTN_NEON_FMA_F64(a, b, c) vfmaq_f64(c, a, b)

static inline float32x4_t cattn_pow2i_f32_neon(float32x4_t k)
{
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
}

static inline float64x2_t cattn_pow2i_f64_neon(float64x2_t k)
{
    const int64x2_t e = vaddq_s64(vcvtq_s64_f64(k), vdupq_n_s64(1023));
    return vreinterpretq_f64_s64(vshlq_n_s64(e, 52));
}

static inline float32x4_t cattn_vexp_f32_neon(float32x4_t x)
{
    /* "not below lo" holds for NaN, so NaN is kept */
    const uint32x4_t keep = vmvnq_u32(vcltq_f32(x, vdupq_n_f32(CATTN_EXP_LO_F32)));
    x = vmaxq_f32(vdupq_n_f32(CATTN_EXP_LO_F32), x);
    x = vminq_f32(vdupq_n_f32(89.0f), x);
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32((float)CATTN_LOG2E)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(CATTN_LN2_HI_F32));
    r = vfmsq_f32(r, n, vdupq_n_f32(CATTN_LN2_LO_F32));
    float32x4_t p;
    CATTN_EXP_POLY_F32(CATTN_NEON_FMA_F32, vdupq_n_f32, r, p);
    const float32x4_t n1 = vrndmq_f32(vmulq_f32(n, vdupq_n_f32(0.5f)));
    const float32x4_t n2 = vsubq_f32(n, n1);
    const float32x4_t e = vmulq_f32(vmulq_f32(p, cattn_pow2i_f32_neon(n1)),
                                    cattn_pow2i_f32_neon(n2));
    return vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(e)));
}

static inline uint64x2_t cattn_not_u64_neon(uint64x2_t m)
{
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(m)));
}

static inline float64x2_t cattn_vexp_f64_neon(float64x2_t x)
{
    const uint64x2_t keep = cattn_not_u64_neon(
        vcltq_f64(x, vdupq_n_f64(CATTN_EXP_LO_F64)));
    x = vmaxq_f64(vdupq_n_f64(CATTN_EXP_LO_F64), x);
    x = vminq_f64(vdupq_n_f64(710.0), x);
    const float64x2_t n = vrndnq_f64(vmulq_f64(x, vdupq_n_f64(CATTN_LOG2E)));
    float64x2_t r = vfmsq_f64(x, n, vdupq_n_f64(CATTN_LN2_HI_F64));
    r = vfmsq_f64(r, n, vdupq_n_f64(CATTN_LN2_LO_F64));
    float64x2_t p;
    CATTN_EXP_POLY_F64(CATTN_NEON_FMA_F64, vdupq_n_f64, r, p);
    const float64x2_t n1 = vrndmq_f64(vmulq_f64(n, vdupq_n_f64(0.5)));
    const float64x2_t n2 = vsubq_f64(n, n1);
    const float64x2_t e = vmulq_f64(vmulq_f64(p, cattn_pow2i_f64_neon(n1)),
                                    cattn_pow2i_f64_neon(n2));
    return vreinterpretq_f64_u64(vandq_u64(keep, vreinterpretq_u64_f64(e)));
}

/* Lane masks as bits of an unsigned (lane i -> bit i), like movemask. */
static inline unsigned cattn_lanes_f32_neon(uint32x4_t m)
{
    const uint32x4_t bit = {1u, 2u, 4u, 8u};
    return vaddvq_u32(vandq_u32(m, bit));
}

static inline unsigned cattn_lanes_f64_neon(uint64x2_t m)
{
    const uint64x2_t bit = {1u, 2u};
    return (unsigned)vaddvq_u64(vandq_u64(m, bit));
}

/* Horizontal max in lane order with the portable rule (x > m ? x : m): a
 * NaN in lane 0 is kept, one in a later lane skipped.  Either way a row
 * holding a NaN sums to NaN (exp(x - m) is NaN at the NaN, or everywhere),
 * which is what the row kernels' results depend on. */
static inline float cattn_hmax_f32_neon(float32x4_t v)
{
    float a[4];
    vst1q_f32(a, v);
    float m = a[0];
    for (int i = 1; i < 4; ++i)
        m = a[i] > m ? a[i] : m;
    return m;
}

static inline double cattn_hmax_f64_neon(float64x2_t v)
{
    return vgetq_lane_f64(v, 1) > vgetq_lane_f64(v, 0)
               ? vgetq_lane_f64(v, 1) : vgetq_lane_f64(v, 0);
}

/* Four int8 widened to float32 (exact), reading exactly four bytes. */
static inline float32x4_t cattn_widen_i8_neon(const int8_t *p)
{
    int32_t w;
    memcpy(&w, p, sizeof w);
    const int16x8_t h = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(w)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
}

#endif
