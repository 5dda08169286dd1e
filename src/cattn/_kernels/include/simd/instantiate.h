/* instantiate.h -- compile one template for every dtype x ISA.
 *
 *   #define CATTN_TEMPLATE "softmax/rows.tmpl.h"   (path from include/)
 *   #include "../simd/instantiate.h"
 *
 * defines the template's functions as cattn_<op>_<dtype>_<isa> for dtype in
 * f32, f64 and isa in generic and the vector levels of the architecture
 * (avx2 and avx512 on x86-64, each inside its target region,
 * cattn_target.h; neon on AArch64) with the RW_* operations of
 * <isa>_<dtype>.h.
 * RW_NAME(op) names this instantiation's function, RW_SCALAR(op) the
 * dtype's portable one (generic comes first, so vector code can finish a
 * tail with it).  The templates' users then index their kernel tables by
 * enum cattn_isa.
 */
#include "../cattn_target.h"

#include "generic_f32.h"
#define RW_NAME(op) cattn_##op##_f32_generic
#define RW_SCALAR(op) cattn_##op##_f32_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
#include "generic_f64.h"
#define RW_NAME(op) cattn_##op##_f64_generic
#define RW_SCALAR(op) cattn_##op##_f64_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR

#if CATTN_X86
CATTN_TARGET_PUSH("avx512f,avx2,fma,f16c")
#include "avx512_f32.h"
#define RW_NAME(op) cattn_##op##_f32_avx512
#define RW_SCALAR(op) cattn_##op##_f32_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
#include "avx512_f64.h"
#define RW_NAME(op) cattn_##op##_f64_avx512
#define RW_SCALAR(op) cattn_##op##_f64_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
CATTN_TARGET_POP()

CATTN_TARGET_PUSH("avx2,fma,f16c")
#include "avx2_f32.h"
#define RW_NAME(op) cattn_##op##_f32_avx2
#define RW_SCALAR(op) cattn_##op##_f32_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
#include "avx2_f64.h"
#define RW_NAME(op) cattn_##op##_f64_avx2
#define RW_SCALAR(op) cattn_##op##_f64_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
CATTN_TARGET_POP()
#elif CATTN_ARM64
#include "neon_f32.h"
#define RW_NAME(op) cattn_##op##_f32_neon
#define RW_SCALAR(op) cattn_##op##_f32_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
#include "neon_f64.h"
#define RW_NAME(op) cattn_##op##_f64_neon
#define RW_SCALAR(op) cattn_##op##_f64_generic
#include CATTN_TEMPLATE
#include "undef.h"
#undef RW_NAME
#undef RW_SCALAR
#endif

#undef CATTN_TEMPLATE
