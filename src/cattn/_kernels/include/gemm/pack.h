/* pack.h -- panel packing for the GEMM driver (layouts in pack.tmpl.h). */
#ifndef CATTN_GEMM_PACK_H
#define CATTN_GEMM_PACK_H
#include <stdint.h>
#include <string.h>
#include "../cattn_cpu.h"
#include "transpose_avx512.h"

/* PK_TB: the side of the AVX-512 block transpose (a zmm of PK_T). */
#define PK_T float
#define PK_SFX f32
#define PK_TB 16
#include "pack.tmpl.h"
#undef PK_T
#undef PK_SFX
#undef PK_TB

#define PK_T double
#define PK_SFX f64
#define PK_TB 8
#include "pack.tmpl.h"
#undef PK_T
#undef PK_SFX
#undef PK_TB

#endif
