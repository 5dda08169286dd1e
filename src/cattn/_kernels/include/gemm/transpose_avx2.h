/* transpose_avx2.h -- the in-register block transpose of the packers
 * (pack.tmpl.h) at the AVX2 level, as transpose_avx512.h is at AVX-512's.
 *
 *   cattn_transpose_f32_avx2(rows, src, lds, dst, ldd):
 *       dst[p*ldd + j] = src[j*lds + p] for j < rows <= 8, p < 8; lanes of
 *       dst rows past `rows` are left untouched, so panels of MR = 6 rows
 *       pack with it.
 *
 * Method: unpack pairs of rows, shuffle pairs of pairs, then swap the
 * 128-bit halves -- 24 shuffles for 64 floats.  The attention's packs of K
 * (rows of keys into MR panels) and of Qᵀ copied element by element here
 * before: 18 % of a float32 B32 H8 L=S=128 call at CATTN_ISA=avx2.
 */
#ifndef CATTN_TRANSPOSE_AVX2_H
#define CATTN_TRANSPOSE_AVX2_H
#if CATTN_X86
#include <immintrin.h>
#include <stdint.h>
#include "../cattn_target.h"

CATTN_TARGET_PUSH("avx2,fma")

static inline void cattn_transpose_f32_avx2(int rows, const float *src,
                                            int64_t lds, float *dst,
                                            int64_t ldd)
{
    __m256 r[8], t[8], s[8];
    for (int j = 0; j < 8; ++j)
        r[j] = j < rows ? _mm256_loadu_ps(src + j * lds) : _mm256_setzero_ps();
    /* t[2g], t[2g+1]: rows 2g, 2g+1 interleaved (columns 0,1,4,5 / 2,3,6,7) */
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    /* s[4h + c]: rows 4h..4h+3 of column c (low half) and c + 4 (high) */
    for (int h = 0; h < 8; h += 4) {
        s[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; ++c) {
        r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
    }
    if (rows == 8) {
        for (int p = 0; p < 8; ++p)
            _mm256_storeu_ps(dst + p * ldd, r[p]);
        return;
    }
    /* Part rows by 4-, 2- and 1-lane stores (AMD's vmaskmovps store is
     * microcoded, slower than the element copy it replaces). */
    for (int p = 0; p < 8; ++p) {
        float *d = dst + p * ldd;
        __m128 x = _mm256_castps256_ps128(r[p]);
        int rem = rows;
        if (rem >= 4) {
            _mm_storeu_ps(d, x);
            x = _mm256_extractf128_ps(r[p], 1);
            d += 4;
            rem -= 4;
        }
        if (rem >= 2) {
            _mm_storel_pi((__m64 *)d, x);
            x = _mm_movehl_ps(x, x);
            d += 2;
            rem -= 2;
        }
        if (rem)
            _mm_store_ss(d, x);
    }
}

CATTN_TARGET_POP()
#endif
#endif
