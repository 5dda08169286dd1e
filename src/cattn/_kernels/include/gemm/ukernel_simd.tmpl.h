/* ukernel_simd.tmpl.h -- body of the SIMD micro-kernels (contract in
 * cattn_gemm.h).
 *
 * Instantiated inside a `#pragma GCC target` region with:
 *   UK_T, UK_VEC, UK_VL (lanes), UK_MR, UK_NV (vectors per row; NR = NV*VL),
 *   UK_LOAD, UK_STORE, UK_SET1, UK_FMADD, UK_MUL, UK_ZERO,
 *   UK_NAME, UK_STORE_EDGE (scalar edge store of the same dtype).
 *
 * Register budget: MR*NV accumulators + NV loads of B + 1 broadcast of A must
 * fit the register file (32 zmm for AVX-512: 6x4 + 4 + 1 = 29; 16 ymm for
 * AVX2: 6x2 + 2 + 1 = 15).  The loops have constant trip counts and are fully
 * unrolled, so `acc` lives in registers; each k step is NV loads, MR
 * broadcasts and MR*NV FMAs, enough independent chains to hide FMA latency.
 */
#define UK_NR (UK_NV * UK_VL)

static void UK_NAME(int64_t k, const UK_T *restrict a, int64_t lda,
                    const UK_T *restrict b, int64_t ldb, UK_T *restrict c,
                    int64_t rs_c, int64_t cs_c, int64_t m, int64_t n,
                    UK_T alpha, UK_T beta)
{
    /* C is read (beta != 0) and written only after the k loop: start
     * bringing its rows in now so the misses overlap the FMAs. */
    _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i) {
        _mm_prefetch((const char *)(c + i * rs_c), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * rs_c + (UK_NR - 1) * cs_c),
                     _MM_HINT_T0);
    }

    UK_VEC acc[UK_MR][UK_NV];
    _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v)
            acc[i][v] = UK_ZERO();

    for (int64_t p = 0; p < k; ++p) {
        UK_VEC bv[UK_NV];
        _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v)
            bv[v] = UK_LOAD(b + v * UK_VL);
        _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i) {
            const UK_VEC ai = UK_SET1(a[i]);
            _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v)
                acc[i][v] = UK_FMADD(ai, bv[v], acc[i][v]);
        }
        a += lda;
        b += ldb;
    }

    const UK_VEC valpha = UK_SET1(alpha);
    if (m == UK_MR && n == UK_NR && cs_c == 1) {
        /* Full tile, unit column stride: vector stores straight into C. */
        if (beta == 0) {
            _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i)
                _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v)
                    UK_STORE(c + i * rs_c + v * UK_VL,
                             UK_MUL(valpha, acc[i][v]));
        } else {
            const UK_VEC vbeta = UK_SET1(beta);
            _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i)
                _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v) {
                    UK_T *cij = c + i * rs_c + v * UK_VL;
                    UK_STORE(cij, UK_FMADD(vbeta, UK_LOAD(cij),
                                           UK_MUL(valpha, acc[i][v])));
                }
        }
        return;
    }
    /* Edge tile or strided C: spill alpha*acc, store the valid part. */
    UK_T tile[UK_MR * UK_NR] __attribute__((aligned(64)));
    _Pragma("GCC unroll 16") for (int i = 0; i < UK_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; ++v)
            UK_STORE(tile + i * UK_NR + v * UK_VL, UK_MUL(valpha, acc[i][v]));
    UK_STORE_EDGE(tile, UK_NR, c, rs_c, cs_c, m, n, beta);
}

#undef UK_NR
