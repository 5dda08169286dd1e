/* read.tmpl.h -- the float32 compute kernels' operands read straight from
 * 16-bit storage, widened on the fly (exact): gemm/'s packers
 * (pack_body.h) and row streams (gemv_body.h) instantiated with a 16-bit
 * source, so the layouts and the order of operations are the float32
 * ones and a 16-bit input gives the bits its float32 copy would, without
 * the copy.  Only the float32 instantiations define them (RW_IS_F32). */
#if RW_IS_F32
#define SRC_T uint16_t
#define SRC_NAME(op) RW_NAME(op##_f16)
#define SRC_VEC RW_WIDEN_F16
#define SRC_ONE(p) cattn_f16_to_f32(*(p))
#include "../gemm/pack_body.h"
#include "../gemm/gemv_body.h"
#undef SRC_NAME
#undef SRC_VEC
#undef SRC_ONE
#define SRC_NAME(op) RW_NAME(op##_bf16)
#define SRC_VEC RW_WIDEN_BF16
#define SRC_ONE(p) cattn_bf16_to_f32(*(p))
#include "../gemm/pack_body.h"
#include "../gemm/gemv_body.h"
#include "../gemm/src_undef.h"
#endif
