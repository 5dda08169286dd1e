/* ukernel_avx2.h -- AVX2+FMA3 micro-kernels: f32 6x16 and f64 6x8
 * (2 ymm per row of C, 12 accumulators in 16 registers). */
#ifndef CATTN_UKERNEL_AVX2_H
#define CATTN_UKERNEL_AVX2_H
#if CATTN_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#define UK_STORE_EDGE cattn_gemm_store_edge_f32_avx2
#define UK_T float
#define UK_FMA fmaf
#include "ukernel_store.tmpl.h"
#define UK_VEC __m256
#define UK_VL 8
#define UK_MR 6
#define UK_NV 2
#define UK_LOAD _mm256_loadu_ps
#define UK_STORE _mm256_storeu_ps
#define UK_SET1 _mm256_set1_ps
#define UK_FMADD _mm256_fmadd_ps
#define UK_MUL _mm256_mul_ps
#define UK_ZERO _mm256_setzero_ps
#define UK_NAME cattn_gemm_ukernel_f32_avx2_6x16
#include "ukernel_simd.tmpl.h"
#include "ukernel_undef.h"

#define UK_STORE_EDGE cattn_gemm_store_edge_f64_avx2
#define UK_T double
#define UK_FMA fma
#include "ukernel_store.tmpl.h"
#define UK_VEC __m256d
#define UK_VL 4
#define UK_MR 6
#define UK_NV 2
#define UK_LOAD _mm256_loadu_pd
#define UK_STORE _mm256_storeu_pd
#define UK_SET1 _mm256_set1_pd
#define UK_FMADD _mm256_fmadd_pd
#define UK_MUL _mm256_mul_pd
#define UK_ZERO _mm256_setzero_pd
#define UK_NAME cattn_gemm_ukernel_f64_avx2_6x8
#include "ukernel_simd.tmpl.h"
#include "ukernel_undef.h"

#pragma GCC pop_options
#endif
#endif
