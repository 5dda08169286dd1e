/* neon_f64.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f64 on neon
 * (AArch64 Advanced SIMD, 128-bit).  Include, then the template(s), then
 * simd/undef.h.  NaN and signed zero as x86 (neon_f32.h). */
#define RW_T double
#define RW_VEC float64x2_t
#define RW_VL 2
#define RW_LOAD vld1q_f64
#define RW_STORE vst1q_f64
#define RW_SET1 vdupq_n_f64
#define RW_ADD vaddq_f64
#define RW_SUB vsubq_f64
#define RW_MUL vmulq_f64
#define RW_DIV vdivq_f64
#define RW_MAX(a, b) vbslq_f64(vcgtq_f64(a, b), a, b)
#define RW_FMA(a, b, c) vfmaq_f64(c, a, b)
#define RW_EXP cattn_vexp_f64_neon
#define RW_EXP_NEG cattn_vexp_f64_neon  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_HSUM vaddvq_f64
#define RW_HMAX cattn_hmax_f64_neon
#define RW_LOG log
#define RW_ABS vabsq_f64
#define RW_WITH_SIGN(m, x)                                                  \
    vbslq_f64(vdupq_n_u64(0x8000000000000000u), x, m)
#define RW_SELECT_LT(a, t, x, y) vbslq_f64(vcltq_f64(a, t), x, y)
#define RW_ALL_LT(a, t) (cattn_lanes_f64_neon(vcltq_f64(a, t)) == 3u)
#define RW_CMP(a, b, pred) cattn_lanes_f64_neon(CATTN_NEON_F64##pred(a, b))
#define CATTN_NEON_F64_CMP_NLT_UQ(a, b) cattn_not_u64_neon(vcltq_f64(a, b))
#define CATTN_NEON_F64_CMP_NGT_UQ(a, b) cattn_not_u64_neon(vcgtq_f64(a, b))
#define CATTN_NEON_F64_CMP_LT_OQ(a, b) vcltq_f64(a, b)
#define CATTN_NEON_F64_CMP_NEQ_UQ(a, b) cattn_not_u64_neon(vceqq_f64(a, b))
#define RW_BELOW_TO(v, t, x) vbslq_f64(vcltq_f64(v, t), x, v)
/* 8 x 3 accumulators + 3 B vectors + 4 vectors of A: 31 of 32 registers. */
#define RW_SFMA(a, b, c) fma((a), (b), (c))
#define RW_FMA_LANE(acc, b, a, lane) vfmaq_laneq_f64(acc, b, a, lane)
#define RW_GEMM_MR 8
#define RW_GEMM_NV 3
