/* transpose_avx512.h -- in-register block transposes for the packing
 * routines (pack.tmpl.h), AVX-512F, selected at run time like the
 * micro-kernels.
 *
 *   cattn_transpose_f32_avx512(rows, src, lds, dst, ldd):
 *       dst[p*ldd + j] = src[j*lds + p] for j < rows <= 16, p < 16; lanes of
 *       dst rows past `rows` are left untouched (masked stores).
 *   cattn_transpose_f64_avx512: the same with 8 x 8 doubles, rows <= 8.
 *
 * Method: unpack pairs of rows, then pairs of pairs (64-bit), then a 4 x 4
 * transpose of the 128-bit lanes with two rounds of shuffle_f32x4 -- 3*16
 * shuffles for 256 floats, where a scalar copy moves one element per load
 * and store.  A transposing pack (B stored by columns, e.g. a weight used as
 * W^T; A stored by rows, e.g. the keys of attention) spent 5-15 % of a call
 * copying element by element.
 */
#ifndef CATTN_TRANSPOSE_AVX512_H
#define CATTN_TRANSPOSE_AVX512_H
#if CATTN_X86
#include <immintrin.h>
#include <stdint.h>
#include "../cattn_target.h"

CATTN_TARGET_PUSH("avx512f")

static inline void cattn_transpose_f32_avx512(int rows, const float *src,
                                              int64_t lds, float *dst,
                                              int64_t ldd)
{
    __m512 r[16], t[16];
    for (int j = 0; j < 16; ++j)
        r[j] = j < rows ? _mm512_loadu_ps(src + j * lds) : _mm512_setzero_ps();
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
    /* u[4g + c], lane L: rows 4g..4g+3 at column 4L + c */
    for (int g = 0; g < 16; g += 4) {
        r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g]),
                                                   _mm512_castps_pd(t[g + 2])));
        r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g]),
                                                       _mm512_castps_pd(t[g + 2])));
        r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g + 1]),
                                                       _mm512_castps_pd(t[g + 3])));
        r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g + 1]),
                                                       _mm512_castps_pd(t[g + 3])));
    }
    const __mmask16 m = (__mmask16)((1u << rows) - 1u);
    for (int c = 0; c < 4; ++c) {
        const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 v3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(3, 2, 3, 2));
        _mm512_mask_storeu_ps(dst + (0 + c) * ldd, m,
                              _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_mask_storeu_ps(dst + (4 + c) * ldd, m,
                              _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm512_mask_storeu_ps(dst + (8 + c) * ldd, m,
                              _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_mask_storeu_ps(dst + (12 + c) * ldd, m,
                              _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

static inline void cattn_transpose_f64_avx512(int rows, const double *src,
                                              int64_t lds, double *dst,
                                              int64_t ldd)
{
    __m512d r[8], t[8];
    for (int j = 0; j < 8; ++j)
        r[j] = j < rows ? _mm512_loadu_pd(src + j * lds) : _mm512_setzero_pd();
    /* t[2g + c], lane L: rows 2g, 2g+1 at column 2L + c */
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm512_unpacklo_pd(r[j], r[j + 1]);
        t[j + 1] = _mm512_unpackhi_pd(r[j], r[j + 1]);
    }
    const __mmask8 m = (__mmask8)((1u << rows) - 1u);
    for (int c = 0; c < 2; ++c) {
        const __m512d v0 = _mm512_shuffle_f64x2(t[c], t[2 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512d v1 = _mm512_shuffle_f64x2(t[c], t[2 + c], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512d v2 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512d v3 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], _MM_SHUFFLE(3, 2, 3, 2));
        _mm512_mask_storeu_pd(dst + (0 + c) * ldd, m,
                              _mm512_shuffle_f64x2(v0, v2, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_mask_storeu_pd(dst + (2 + c) * ldd, m,
                              _mm512_shuffle_f64x2(v0, v2, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm512_mask_storeu_pd(dst + (4 + c) * ldd, m,
                              _mm512_shuffle_f64x2(v1, v3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_mask_storeu_pd(dst + (6 + c) * ldd, m,
                              _mm512_shuffle_f64x2(v1, v3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

CATTN_TARGET_POP()
#endif
#endif
