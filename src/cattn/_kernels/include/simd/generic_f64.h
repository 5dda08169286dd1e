/* generic_f64.h -- the RW_* vector operations of the row/column templates
 * (softmax/rows.tmpl.h and the attention/ templates) for f64 on generic.
 * Include inside the matching target region (cattn_target.h), then the
 * template(s), then simd/undef.h. */
#define RW_T double
#define RW_VEC double
#define RW_EXP exp
#define RW_EXP_NEG exp  /* x <= 0 or NaN only */
#define RW_EXP_NEG_P16 RW_EXP_NEG  /* no P rounded to bf16 here */
#define RW_LOG log
#define RW_ABS fabs
#define RW_WITH_SIGN copysign
#include "generic_ops.h"
/* The GEMM's: this ISA's scalar multiply-add for edge tiles (fused where
 * the vector kernel fuses, so an element's bits never depend on whether its
 * tile was full) and its register tile (MR x NR, portable loops). */
#define RW_SFMA(a, b, c) ((a) * (b) + (c))
#define RW_GEMM_MR 4
#define RW_GEMM_NR 4
