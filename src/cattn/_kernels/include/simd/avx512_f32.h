/* avx512_f32.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f32 on avx512.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T float
#define RW_VEC __m512
#define RW_VL 16
#define RW_LOAD _mm512_loadu_ps
#define RW_STORE _mm512_storeu_ps
#define RW_SET1 _mm512_set1_ps
#define RW_ADD _mm512_add_ps
#define RW_SUB _mm512_sub_ps
#define RW_MUL _mm512_mul_ps
#define RW_DIV _mm512_div_ps
#define RW_MAX _mm512_max_ps
#define RW_FMA _mm512_fmadd_ps
#define RW_EXP cattn_vexp_f32_avx512
#define RW_EXP_NEG cattn_vexp_neg_f32_avx512  /* x <= 0 or NaN only */
/* bf16-accurate exp for a P rounded to bf16 (exp_simd.h) */
#define RW_EXP_NEG_P16 cattn_vexp_neg_p16_f32_avx512
#define RW_HSUM _mm512_reduce_add_ps
#define RW_HMAX _mm512_reduce_max_ps
#define RW_LOG logf
/* |v|; m (>= 0) with the sign bit of x; x where a < t, else y; every
 * lane a < t (the score cap's tanh, attention/scores.tmpl.h). */
#define RW_ABS _mm512_abs_ps
#define RW_WITH_SIGN(m, x)                                                  \
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(m),            \
        _mm512_and_si512(_mm512_castps_si512(x),                            \
                         _mm512_set1_epi32((int)0x80000000u))))
#define RW_SELECT_LT(a, t, x, y)                                            \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, t, _CMP_LT_OQ), y, x)
#define RW_ALL_LT(a, t) (_mm512_cmp_ps_mask(a, t, _CMP_LT_OQ) == 0xffff)
/* Compares as lane bits of an unsigned (a `pred` b), and v with the lanes
 * where v < t replaced by x's (the top-k scans). */
#define RW_CMP(a, b, pred) ((unsigned)_mm512_cmp_ps_mask(a, b, pred))
#define RW_BELOW_TO(v, t, x)                                                \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, t, _CMP_LT_OQ), v, x)
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR rows x NV vectors); the block
 * transpose that packs row-stored A / column-stored B (RW_TB x RW_TB). */
#define RW_SFMA(a, b, c) fmaf((a), (b), (c))
#define RW_GEMM_MR 6
#define RW_GEMM_NV 4
#define RW_TRANSPOSE cattn_transpose_f32_avx512
#define RW_TB 16
/* float32 instantiation: the 16-bit storage conversions exist only here. */
#define RW_IS_F32 1
/* RW_VL 16-bit elements widened to a vector (exact): binary16 by F16C,
 * bfloat16 by a 16-bit shift into the top half of each lane. */
#define RW_WIDEN_F16(p)                                                     \
    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define RW_WIDEN_BF16(p)                                                    \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                  \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
/* A vector rounded to RW_VL binary16 at p: F16C, nearest-even (the
 * scalar _Float16 cast's rounding, the same instruction). */
#define RW_NARROW_F16(p, v)                                                 \
    _mm256_storeu_si256((__m256i *)(p),                                     \
                        _mm512_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
/* RW_VL int8 widened (exact): the int8 KV cache's values. */
#define RW_WIDEN_I8(p)                                                      \
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(                                \
        _mm_loadu_si128((const __m128i *)(p))))
