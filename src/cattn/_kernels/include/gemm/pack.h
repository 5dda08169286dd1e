/* pack.h -- panel packing for the GEMM driver (layouts in pack.tmpl.h). */
#ifndef CATTN_GEMM_PACK_H
#define CATTN_GEMM_PACK_H
#include <stdint.h>
#include <string.h>

#define PK_T float
#define PK_SFX f32
#include "pack.tmpl.h"
#undef PK_T
#undef PK_SFX

#define PK_T double
#define PK_SFX f64
#include "pack.tmpl.h"
#undef PK_T
#undef PK_SFX

#endif
