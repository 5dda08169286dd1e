/* neon_f32.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f32 on neon
 * (AArch64 Advanced SIMD, 128-bit; part of every ARMv8-A core, so no
 * target region).  Include, then the template(s), then simd/undef.h.
 *
 * Where x86 and Arm differ on NaN or signed zero, these follow x86: RW_MAX
 * is maxps (a > b ? a : b, so a NaN in a gives b), the templates' NaN
 * handling having been written against that. */
#define RW_T float
#define RW_VEC float32x4_t
#define RW_VL 4
#define RW_LOAD vld1q_f32
#define RW_STORE vst1q_f32
#define RW_SET1 vdupq_n_f32
#define RW_ADD vaddq_f32
#define RW_SUB vsubq_f32
#define RW_MUL vmulq_f32
#define RW_DIV vdivq_f32
#define RW_MAX(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define RW_FMA(a, b, c) vfmaq_f32(c, a, b)
#define RW_EXP cattn_vexp_f32_neon
#define RW_EXP_NEG cattn_vexp_f32_neon  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no bf16-accurate exp written here */
#define RW_HSUM vaddvq_f32
#define RW_HMAX cattn_hmax_f32_neon
#define RW_LOG logf
/* |v|; m (>= 0) with the sign bit of x; x where a < t, else y; every
 * lane a < t (the score cap's tanh, attention/scores.tmpl.h). */
#define RW_ABS vabsq_f32
#define RW_WITH_SIGN(m, x) vbslq_f32(vdupq_n_u32(0x80000000u), x, m)
#define RW_SELECT_LT(a, t, x, y) vbslq_f32(vcltq_f32(a, t), x, y)
#define RW_ALL_LT(a, t) (vminvq_u32(vcltq_f32(a, t)) != 0)
/* Compares as lane bits of an unsigned (a `pred` b, pred one of x86's
 * _CMP_* names, spelled out below), and v with the lanes where v < t
 * replaced by x's (the top-k scans). */
#define RW_CMP(a, b, pred) cattn_lanes_f32_neon(CATTN_NEON_F32##pred(a, b))
#define CATTN_NEON_F32_CMP_NLT_UQ(a, b) vmvnq_u32(vcltq_f32(a, b))
#define CATTN_NEON_F32_CMP_NGT_UQ(a, b) vmvnq_u32(vcgtq_f32(a, b))
#define CATTN_NEON_F32_CMP_LT_OQ(a, b) vcltq_f32(a, b)
#define CATTN_NEON_F32_CMP_NEQ_UQ(a, b) vmvnq_u32(vceqq_f32(a, b))
#define RW_BELOW_TO(v, t, x) vbslq_f32(vcltq_f32(v, t), x, v)
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR rows x NV vectors: 8 x 3
 * accumulators + 3 B vectors + 2 vectors of A = 29 of 32 registers, A's
 * values multiplied in by lane). */
#define RW_SFMA(a, b, c) fmaf((a), (b), (c))
#define RW_FMA_LANE(acc, b, a, lane) vfmaq_laneq_f32(acc, b, a, lane)
#define RW_GEMM_MR 8
#define RW_GEMM_NV 3
/* float32 instantiation: the 16-bit storage conversions exist only here. */
#define RW_IS_F32 1
/* RW_VL 16-bit elements widened to a vector (exact): binary16 by FCVTL,
 * bfloat16 by a 16-bit shift into the top half of each lane. */
#define RW_WIDEN_F16(p)                                                     \
    vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(p))))
/* A vector rounded to RW_VL binary16 at p: fcvtn, nearest-even. */
#define RW_NARROW_F16(p, v)                                                 \
    vst1_u16((uint16_t *)(p), vreinterpret_u16_f16(vcvt_f16_f32(v)))
#define RW_WIDEN_BF16(p)                                                    \
    vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(p)), 16))
/* RW_VL int8 widened (exact): the int8 KV cache's values. */
#define RW_WIDEN_I8(p) cattn_widen_i8_neon((const int8_t *)(p))
