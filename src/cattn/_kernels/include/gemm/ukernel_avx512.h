/* ukernel_avx512.h -- AVX-512F micro-kernels: f32 6x64 and f64 6x32
 * (4 zmm per row of C, 24 accumulators).  Compiled for AVX-512 by the target
 * pragma whatever the build's -march, and only called when cattn_cpu.h says
 * the CPU has AVX-512F. */
#ifndef CATTN_UKERNEL_AVX512_H
#define CATTN_UKERNEL_AVX512_H
#if CATTN_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

#define UK_STORE_EDGE cattn_gemm_store_edge_f32_avx512
#define UK_T float
#define UK_FMA fmaf
#include "ukernel_store.tmpl.h"
#define UK_VEC __m512
#define UK_VL 16
#define UK_MR 6
#define UK_NV 4
#define UK_LOAD _mm512_loadu_ps
#define UK_STORE _mm512_storeu_ps
#define UK_SET1 _mm512_set1_ps
#define UK_FMADD _mm512_fmadd_ps
#define UK_MUL _mm512_mul_ps
#define UK_ZERO _mm512_setzero_ps
#define UK_NAME cattn_gemm_ukernel_f32_avx512_6x64
#include "ukernel_simd.tmpl.h"
#include "ukernel_undef.h"

#define UK_STORE_EDGE cattn_gemm_store_edge_f64_avx512
#define UK_T double
#define UK_FMA fma
#include "ukernel_store.tmpl.h"
#define UK_VEC __m512d
#define UK_VL 8
#define UK_MR 6
#define UK_NV 4
#define UK_LOAD _mm512_loadu_pd
#define UK_STORE _mm512_storeu_pd
#define UK_SET1 _mm512_set1_pd
#define UK_FMADD _mm512_fmadd_pd
#define UK_MUL _mm512_mul_pd
#define UK_ZERO _mm512_setzero_pd
#define UK_NAME cattn_gemm_ukernel_f64_avx512_6x32
#include "ukernel_simd.tmpl.h"
#include "ukernel_undef.h"

#pragma GCC pop_options
#endif
#endif
