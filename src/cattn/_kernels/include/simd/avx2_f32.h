/* avx2_f32.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f32 on avx2.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T float
#define RW_VEC __m256
#define RW_VL 8
#define RW_LOAD _mm256_loadu_ps
#define RW_STORE _mm256_storeu_ps
#define RW_SET1 _mm256_set1_ps
#define RW_ADD _mm256_add_ps
#define RW_SUB _mm256_sub_ps
#define RW_MUL _mm256_mul_ps
#define RW_DIV _mm256_div_ps
#define RW_MAX _mm256_max_ps
#define RW_FMA _mm256_fmadd_ps
#define RW_EXP cattn_vexp_f32_avx2
#define RW_EXP_NEG cattn_vexp_neg_f32_avx2  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_HSUM cattn_hsum_f32_avx2
#define RW_HMAX cattn_hmax_f32_avx2
#define RW_LOG logf
/* |v|; m (>= 0) with the sign bit of x; x where a < t, else y; every
 * lane a < t (the score cap's tanh, attention/scores.tmpl.h). */
#define RW_ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define RW_WITH_SIGN(m, x)                                                  \
    _mm256_or_ps(m, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)))
#define RW_SELECT_LT(a, t, x, y)                                            \
    _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, t, _CMP_LT_OQ))
#define RW_ALL_LT(a, t)                                                     \
    (_mm256_movemask_ps(_mm256_cmp_ps(a, t, _CMP_LT_OQ)) == 0xff)
/* Compares as lane bits of an unsigned (a `pred` b), and v with the lanes
 * where v < t replaced by x's (the top-k scans). */
#define RW_CMP(a, b, pred)                                                  \
    ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, pred)))
#define RW_BELOW_TO(v, t, x)                                                \
    _mm256_blendv_ps(v, x, _mm256_cmp_ps(v, t, _CMP_LT_OQ))
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR rows x NV vectors). */
#define RW_SFMA(a, b, c) fmaf((a), (b), (c))
#define RW_GEMM_MR 6
#define RW_GEMM_NV 2
/* The block transpose that packs row-stored A / column-stored B
 * (RW_TB x RW_TB; transpose_avx2.h). */
#define RW_TRANSPOSE cattn_transpose_f32_avx2
#define RW_TB 8
/* float32 instantiation: the 16-bit storage conversions exist only here. */
#define RW_IS_F32 1
/* RW_VL 16-bit elements widened to a vector (exact): binary16 by F16C,
 * bfloat16 by a 16-bit shift into the top half of each lane. */
#define RW_WIDEN_F16(p)                                                     \
    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define RW_WIDEN_BF16(p)                                                    \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                  \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
/* A vector rounded to RW_VL binary16 at p: F16C, nearest-even (the
 * scalar _Float16 cast's rounding, the same instruction). */
#define RW_NARROW_F16(p, v)                                                 \
    _mm_storeu_si128((__m128i *)(p),                                        \
                     _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
/* RW_VL int8 widened (exact): the int8 KV cache's values. */
#define RW_WIDEN_I8(p)                                                      \
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(                                \
        _mm_loadl_epi64((const __m128i *)(p))))
