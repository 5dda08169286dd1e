/* cattn_convert.h -- the storage dtypes' conversions to and from the
 * compute dtype (contract in convert.tmpl.h): one table, a row per ISA
 * (enum cattn_isa) and a column per storage dtype.  Adding a storage dtype
 * adds a column and its two conversions. */
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
};

typedef struct {
    const char *name;
    void (*to_f32)(int64_t n, const uint16_t *src, float *dst);
    void (*from_f32)(int64_t n, const float *src, uint16_t *dst);
} cattn_convert;

#define CATTN_TEMPLATE "convert/convert.tmpl.h"
#include "../simd/instantiate.h"

#define CATTN_CONVERT_ROW(isa)                                              \
    {{"f16_" #isa, cattn_from_f16_f32_##isa, cattn_to_f16_f32_##isa},       \
     {"bf16_" #isa, cattn_from_bf16_f32_##isa, cattn_to_bf16_f32_##isa}}

static const cattn_convert cattn_convert_kernels[][2] = {
    CATTN_CONVERT_ROW(generic),
#if CATTN_X86
    CATTN_CONVERT_ROW(avx2),
    CATTN_CONVERT_ROW(avx512),
#endif
};

static inline const cattn_convert *cattn_convert_for(int isa, int storage)
{
    return &cattn_convert_kernels[CATTN_X86 ? isa : CATTN_ISA_GENERIC]
                                 [storage];
}

#endif
