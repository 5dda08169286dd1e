/* avx512_f64.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f64 on avx512.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T double
#define RW_VEC __m512d
#define RW_VL 8
#define RW_LOAD _mm512_loadu_pd
#define RW_STORE _mm512_storeu_pd
#define RW_SET1 _mm512_set1_pd
#define RW_ADD _mm512_add_pd
#define RW_SUB _mm512_sub_pd
#define RW_MUL _mm512_mul_pd
#define RW_DIV _mm512_div_pd
#define RW_MAX _mm512_max_pd
#define RW_FMA _mm512_fmadd_pd
#define RW_EXP cattn_vexp_f64_avx512
#define RW_EXP_NEG cattn_vexp_neg_f64_avx512  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_HSUM _mm512_reduce_add_pd
#define RW_HMAX _mm512_reduce_max_pd
#define RW_LOG log
/* |v|; m (>= 0) with the sign bit of x; x where a < t, else y; every
 * lane a < t (the score cap's tanh, attention/scores.tmpl.h). */
#define RW_ABS _mm512_abs_pd
#define RW_WITH_SIGN(m, x)                                                  \
    _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(m),            \
        _mm512_and_si512(_mm512_castpd_si512(x),                            \
                         _mm512_set1_epi64((long long)0x8000000000000000ull))))
#define RW_SELECT_LT(a, t, x, y)                                            \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, t, _CMP_LT_OQ), y, x)
#define RW_ALL_LT(a, t) (_mm512_cmp_pd_mask(a, t, _CMP_LT_OQ) == 0xff)
/* Compares as lane bits of an unsigned (a `pred` b), and v with the lanes
 * where v < t replaced by x's (the top-k scans). */
#define RW_CMP(a, b, pred) ((unsigned)_mm512_cmp_pd_mask(a, b, pred))
#define RW_BELOW_TO(v, t, x)                                                \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, t, _CMP_LT_OQ), v, x)
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR rows x NV vectors); the block
 * transpose that packs row-stored A / column-stored B (RW_TB x RW_TB). */
#define RW_SFMA(a, b, c) fma((a), (b), (c))
#define RW_GEMM_MR 6
#define RW_GEMM_NV 4
#define RW_TRANSPOSE cattn_transpose_f64_avx512
#define RW_TB 8
