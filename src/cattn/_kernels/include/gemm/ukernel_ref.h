/* ukernel_ref.h -- portable reference micro-kernels (any CPU, baseline flags).
 *
 * Always a valid choice (CATTN_ISA=generic) and the model for the SIMD ones:
 * plain loops over an MR x NR accumulator the compiler keeps in registers.
 */
#ifndef CATTN_UKERNEL_REF_H
#define CATTN_UKERNEL_REF_H

/* No FMA in baseline x86-64: a software fma() would be slow, so the portable
 * kernel multiplies and adds (two roundings, one ISA-consistent rule). */
#define CATTN_MULADD(x, y, z) ((x) * (y) + (z))

#define UK_T float
#define UK_FMA CATTN_MULADD
#define UK_STORE_EDGE cattn_gemm_store_edge_f32
#include "ukernel_store.tmpl.h"
#define UK_MR 4
#define UK_NR 8
#define UK_NAME cattn_gemm_ukernel_f32_generic_4x8
#include "ukernel_ref.tmpl.h"
#undef UK_T
#undef UK_FMA
#undef UK_STORE_EDGE
#undef UK_MR
#undef UK_NR
#undef UK_NAME

#define UK_T double
#define UK_FMA CATTN_MULADD
#define UK_STORE_EDGE cattn_gemm_store_edge_f64
#include "ukernel_store.tmpl.h"
#define UK_MR 4
#define UK_NR 4
#define UK_NAME cattn_gemm_ukernel_f64_generic_4x4
#include "ukernel_ref.tmpl.h"
#undef UK_T
#undef UK_FMA
#undef UK_STORE_EDGE
#undef UK_MR
#undef UK_NR
#undef UK_NAME

#endif
