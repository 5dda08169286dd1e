/* generic_f32.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f32 on generic.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T float
#define RW_VEC float
#define RW_EXP expf
#define RW_EXP_NEG expf  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_LOG logf
#define RW_ABS fabsf
#define RW_WITH_SIGN copysignf
#include "generic_ops.h"
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR x NR, portable loops). */
#define RW_SFMA(a, b, c) ((a) * (b) + (c))
#define RW_GEMM_MR 4
#define RW_GEMM_NR 8
/* float32 instantiation: the 16-bit storage conversions exist only here. */
#define RW_IS_F32 1
/* One 16-bit element widened (exact; convert/cattn_convert.h). */
#define RW_WIDEN_F16(p) cattn_f16_to_f32(*(const uint16_t *)(p))
#define RW_WIDEN_BF16(p) cattn_bf16_to_f32(*(const uint16_t *)(p))
#define RW_WIDEN_I8(p) ((float)*(const int8_t *)(p))
