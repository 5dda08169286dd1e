/* cattn_convert.h -- the storage dtypes: their conversions to and from the
 * compute dtype float32 (contract in convert.tmpl.h) and the readers that
 * hand the float32 kernels their operands straight from storage (packers
 * and row streams, read.tmpl.h).  One table, a row per ISA (enum cattn_isa)
 * and a column per storage dtype.  Adding a storage dtype adds a column:
 * its conversions and its widening load (RW_WIDEN_* in simd/). */
#ifndef CATTN_CONVERT_H
#define CATTN_CONVERT_H

#include <stdint.h>
#include <string.h>
#include "../cattn_cpu.h"
#include "../softmax/exp_simd.h"

/* Storage dtypes, the table's columns. */
enum cattn_storage {
    CATTN_STORAGE_F16 = 0,
    CATTN_STORAGE_BF16 = 1,
    CATTN_STORAGE_Q8 = 2,   /* readers only (read_q8.tmpl.h): no to/from */
};

/* An int8-quantized operand as its readers see it: values (element
 * strides passed to the reader as usual), one float32 scale per `block`
 * values along the unit-stride axis, row r's scales at scales +
 * r * rs_scales; values[0] is column col0 of its row (block phase). */
typedef struct {
    const int8_t *values;
    const float *scales;
    int64_t rs_scales;
    int64_t block;
    int64_t col0;
} cattn_q8_view;

typedef struct {
    const char *name;
    void (*to_f32)(int64_t n, const uint16_t *src, float *dst);
    void (*from_f32)(int64_t n, const float *src, uint16_t *dst);
    /* The readers (read.tmpl.h): gemm/'s packers and row streams. */
    void (*pack_a)(int64_t mc, int64_t kc, const void *a, int64_t rs_a,
                   int64_t cs_a, int64_t mr, float *dst);
    void (*pack_b)(int64_t kc, int64_t nc, const void *b, int64_t rs_b,
                   int64_t cs_b, int64_t nr, int64_t q0, int64_t q1,
                   float *dst);
    void (*dot_rows)(int64_t nk, int64_t E, const float *q, const void *k,
                     int64_t rs_k, float scale, float *s);
    void (*axpy_rows)(int64_t nk, int64_t Ev, const float *p, const void *v,
                      int64_t rs_v, float *acc);
    /* The row streams over listed rows (gemm/gemv.tmpl.h's _at). */
    void (*dot_rows_at)(int64_t nk, int64_t E, const float *q, const void *k,
                        int64_t rs_k, const int64_t *at, float scale,
                        float *s);
    void (*axpy_rows_at)(int64_t nk, int64_t Ev, const float *p,
                         const void *v, int64_t rs_v, const int64_t *at,
                         float *acc);
    /* The same over rows read once from memory (gemm/gemv_body.h: far). */
    void (*dot_rows_far_at)(int64_t nk, int64_t E, const float *q,
                            const void *k, int64_t rs_k, const int64_t *at,
                            float scale, float *s);
    void (*axpy_rows_far_at)(int64_t nk, int64_t Ev, const float *p,
                             const void *v, int64_t rs_v, const int64_t *at,
                             float *acc);
} cattn_convert;

/* float16 <-> float32.  Through the compiler's _Float16 where it has one
 * (GCC; clang from 15 on x86): F16C instructions in the AVX2 and AVX-512
 * regions.  Otherwise through the bits, with the same results: widening
 * is exact (a NaN quieted, as vcvtph2ps does), narrowing rounds to
 * nearest, ties to even, overflows to inf and keeps subnormals. */
#if defined(__FLT16_MANT_DIG__)
#define CATTN_HAS_FLOAT16 1
#else
#define CATTN_HAS_FLOAT16 0
#endif

static inline float cattn_f16_bits_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = h >> 10 & 0x1Fu, man = h & 0x3FFu;
    uint32_t u;
    float x;
    if (exp == 0x1F)                        /* inf, or NaN made quiet */
        u = sign | 0x7F800000u | man << 13 | (man ? 0x400000u : 0);
    else if (exp)
        u = sign | (exp + 112) << 23 | man << 13;
    else {                                  /* zero or subnormal: man·2⁻²⁴ */
        x = (float)man * 0x1p-24f;
        memcpy(&u, &x, sizeof u);
        u |= sign;
    }
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline uint16_t cattn_f32_to_f16_bits(float x)
{
    uint32_t u, a;
    memcpy(&u, &x, sizeof u);
    const uint16_t sign = (uint16_t)(u >> 16 & 0x8000u);
    a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)                    /* NaN: quiet, top payload */
        return sign | 0x7E00u | (uint16_t)(a >> 13 & 0x3FFu);
    if (a >= 0x477FF000u)                   /* rounds past 65504: inf */
        return sign | 0x7C00u;
    if (a < 0x38800000u) {                  /* below 2⁻¹⁴: subnormal */
        float v;
        memcpy(&v, &a, sizeof v);
        /* v·2²⁴ < 1024, rounded to an integer, nearest-even, by the
         * float adder (the kernels never change the rounding mode). */
        v = v * 0x1p24f + 0x1p23f - 0x1p23f;
        return sign | (uint16_t)v;
    }
    /* Normal: drop 13 bits, nearest-even; a carry reaches the exponent
     * (up to 0x7C00 = inf, excluded above); rebias 127 -> 15. */
    a += 0xFFFu + (a >> 13 & 1u);
    return sign | (uint16_t)((a - 0x38000000u) >> 13);
}

/* One element widened, exactly (the scalar tails of the readers). */
static inline float cattn_f16_to_f32(uint16_t h)
{
#if CATTN_HAS_FLOAT16
    _Float16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x;
#else
    return cattn_f16_bits_to_f32(h);
#endif
}

static inline float cattn_bf16_to_f32(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* One float32 rounded to bf16 bits (contract in convert.tmpl.h: nearest,
 * ties to even; a NaN keeps sign and top payload, quiet bit set).  A
 * select, not a branch, so loops over it vectorise. */
static inline uint16_t cattn_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)(x != x ? quiet : rounded);
}

#include "../cattn_target.h"   /* CATTN_NO_MEMCPY */
#define CATTN_TEMPLATE "convert/convert.tmpl.h"
#include "../simd/instantiate.h"
#define CATTN_TEMPLATE "convert/read.tmpl.h"
#include "../simd/instantiate.h"
#define CATTN_TEMPLATE "convert/read_q8.tmpl.h"
#include "../simd/instantiate.h"

#define CATTN_CONVERT_COLUMN(st, isa)                                       \
    {#st "_" #isa, cattn_from_##st##_f32_##isa, cattn_to_##st##_f32_##isa,  \
     cattn_gemm_pack_a_##st##_f32_##isa, cattn_gemm_pack_b_##st##_f32_##isa,\
     cattn_dot_rows_##st##_f32_##isa, cattn_axpy_rows_##st##_f32_##isa,     \
     cattn_dot_rows_at_##st##_f32_##isa, cattn_axpy_rows_at_##st##_f32_##isa,\
     cattn_dot_rows_far_at_##st##_f32_##isa,                                \
     cattn_axpy_rows_far_at_##st##_f32_##isa}
#define CATTN_CONVERT_ROW(isa)                                              \
    {CATTN_CONVERT_COLUMN(f16, isa), CATTN_CONVERT_COLUMN(bf16, isa),      \
     {"q8_" #isa, NULL, NULL, cattn_gemm_pack_a_q8_f32_##isa,               \
      cattn_gemm_pack_b_q8_f32_##isa, cattn_dot_rows_q8_f32_##isa,          \
      cattn_axpy_rows_q8_f32_##isa, cattn_dot_rows_at_q8_f32_##isa,         \
      cattn_axpy_rows_at_q8_f32_##isa, cattn_dot_rows_far_at_q8_f32_##isa,  \
      cattn_axpy_rows_far_at_q8_f32_##isa}}

static const cattn_convert cattn_convert_kernels[][3] = {
    CATTN_CONVERT_ROW(generic),
#if CATTN_X86
    CATTN_CONVERT_ROW(avx2),
    CATTN_CONVERT_ROW(avx512),
#elif CATTN_ARM64
    CATTN_CONVERT_ROW(neon),
#endif
};

static inline const cattn_convert *cattn_convert_for(int isa, int storage)
{
    return &cattn_convert_kernels[cattn_isa_row(isa, CATTN_ISA_VECTOR)]
                                 [storage];
}

#endif
