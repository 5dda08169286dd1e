/* avx2_f64.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f64 on avx2.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T double
#define RW_VEC __m256d
#define RW_VL 4
#define RW_LOAD _mm256_loadu_pd
#define RW_STORE _mm256_storeu_pd
#define RW_SET1 _mm256_set1_pd
#define RW_ADD _mm256_add_pd
#define RW_SUB _mm256_sub_pd
#define RW_MUL _mm256_mul_pd
#define RW_DIV _mm256_div_pd
#define RW_MAX _mm256_max_pd
#define RW_FMA _mm256_fmadd_pd
#define RW_EXP cattn_vexp_f64_avx2
#define RW_EXP_NEG cattn_vexp_neg_f64_avx2  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_HSUM cattn_hsum_f64_avx2
#define RW_HMAX cattn_hmax_f64_avx2
#define RW_LOG log
/* |v|; m (>= 0) with the sign bit of x; x where a < t, else y; every
 * lane a < t (the score cap's tanh, attention/scores.tmpl.h). */
#define RW_ABS(v) _mm256_andnot_pd(_mm256_set1_pd(-0.0), v)
#define RW_WITH_SIGN(m, x)                                                  \
    _mm256_or_pd(m, _mm256_and_pd(x, _mm256_set1_pd(-0.0)))
#define RW_SELECT_LT(a, t, x, y)                                            \
    _mm256_blendv_pd(y, x, _mm256_cmp_pd(a, t, _CMP_LT_OQ))
#define RW_ALL_LT(a, t)                                                     \
    (_mm256_movemask_pd(_mm256_cmp_pd(a, t, _CMP_LT_OQ)) == 0xf)
/* Compares as lane bits of an unsigned (a `pred` b), and v with the lanes
 * where v < t replaced by x's (the top-k scans). */
#define RW_CMP(a, b, pred)                                                  \
    ((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(a, b, pred)))
#define RW_BELOW_TO(v, t, x)                                                \
    _mm256_blendv_pd(v, x, _mm256_cmp_pd(v, t, _CMP_LT_OQ))
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR rows x NV vectors). */
#define RW_SFMA(a, b, c) fma((a), (b), (c))
#define RW_GEMM_MR 6
#define RW_GEMM_NV 2
