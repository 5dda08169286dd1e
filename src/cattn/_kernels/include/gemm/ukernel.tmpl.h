/* ukernel.tmpl.h -- the GEMM micro-kernel (contract in cattn_gemm.h) and
 * its edge store, per dtype x ISA, in the RW_* dialect of simd/
 * (instantiated by simd/instantiate.h).
 *
 * The ISA's simd/<isa>_<dtype>.h gives the register tile: RW_GEMM_MR rows
 * by RW_GEMM_NV vectors of RW_VL lanes for a vector ISA, RW_GEMM_MR x
 * RW_GEMM_NR portable loops for the generic one; and RW_SFMA, the scalar
 * multiply-add of the edge store (fused exactly where the vector kernel
 * fuses, so an element's bits never depend on whether its tile was full).
 *
 * Vector register budget: MR*NV accumulators + NV loads of B + 1 broadcast
 * of A must fit the register file (32 zmm for AVX-512: 6x4 + 4 + 1 = 29;
 * 16 ymm for AVX2: 6x2 + 2 + 1 = 15; NEON, whose FMA takes A by lane
 * (RW_FMA_LANE), has A in vectors instead: 32 q registers, 8x3 + 3 + 2 =
 * 29 for float32, 8x3 + 3 + 4 = 31 for float64).  The loops have constant trip counts
 * and are fully unrolled, so `acc` lives in registers; each k step is NV
 * loads, MR broadcasts and MR*NV FMAs, enough independent chains to hide
 * FMA latency.  The portable kernel multiplies and adds (no FMA in baseline
 * x86-64; a software fma() would be slow): plain loops over an MR x NR
 * accumulator the compiler keeps in registers and vectorises.
 *
 * `tile` of the edge store holds alpha*A·B for the full MR x NR tile with
 * row stride nr; only [0:m, 0:n] reaches C, as beta*C + t.
 */
static inline void RW_NAME(gemm_store_edge)(const RW_T *tile, int64_t nr,
                                            RW_T *c, int64_t rs_c,
                                            int64_t cs_c, int64_t m,
                                            int64_t n, RW_T beta)
{
    for (int64_t i = 0; i < m; ++i) {
        RW_T *ci = c + i * rs_c;
        if (beta == 0) {
            for (int64_t j = 0; j < n; ++j)
                ci[j * cs_c] = tile[i * nr + j];
        } else {
            for (int64_t j = 0; j < n; ++j)
                ci[j * cs_c] = RW_SFMA(beta, ci[j * cs_c], tile[i * nr + j]);
        }
    }
}

#if RW_VL == 1
static void RW_NAME(gemm_ukernel)(int64_t k, const RW_T *restrict a,
                                  int64_t lda, const RW_T *restrict b,
                                  int64_t ldb, RW_T *restrict c,
                                  int64_t rs_c, int64_t cs_c, int64_t m,
                                  int64_t n, RW_T alpha, RW_T beta)
{
    RW_T acc[RW_GEMM_MR * RW_GEMM_NR] = {0};
    for (int64_t p = 0; p < k; ++p) {
        for (int i = 0; i < RW_GEMM_MR; ++i)
            for (int j = 0; j < RW_GEMM_NR; ++j)
                acc[i * RW_GEMM_NR + j] += a[i] * b[j];
        a += lda;
        b += ldb;
    }
    for (int t = 0; t < RW_GEMM_MR * RW_GEMM_NR; ++t)
        acc[t] *= alpha;
    RW_NAME(gemm_store_edge)(acc, RW_GEMM_NR, c, rs_c, cs_c, m, n, beta);
}
#else
#define RW_GEMM_NR (RW_GEMM_NV * RW_VL)

/* Placed on a 256-byte boundary, so the hot loop's alignment does not
 * depend on what the linker puts before it: moved from 256- to 16-byte
 * alignment by an unrelated change, the same instructions ran f32 2048^3
 * matmul 4-5 % slower here (interleaved A/B of the two builds). */
__attribute__((aligned(256)))
static void RW_NAME(gemm_ukernel)(int64_t k, const RW_T *restrict a,
                                  int64_t lda, const RW_T *restrict b,
                                  int64_t ldb, RW_T *restrict c,
                                  int64_t rs_c, int64_t cs_c, int64_t m,
                                  int64_t n, RW_T alpha, RW_T beta)
{
    /* C is read (beta != 0) and written only after the k loop: start
     * bringing its rows in now so the misses overlap the FMAs. */
    _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i) {
        __builtin_prefetch(c + i * rs_c, 0, 3);      /* x86: prefetcht0 */
        __builtin_prefetch(c + i * rs_c + (RW_GEMM_NR - 1) * cs_c, 0, 3);
    }

    RW_VEC acc[RW_GEMM_MR][RW_GEMM_NV];
    _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
            acc[i][v] = RW_SET1(0);

    for (int64_t p = 0; p < k; ++p) {
        RW_VEC bv[RW_GEMM_NV];
        _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
            bv[v] = RW_LOAD(b + v * RW_VL);
#ifdef RW_FMA_LANE
        /* A's MR values loaded as MR / VL vectors and multiplied in by
         * lane (the same fused products): fewer registers than MR
         * broadcasts, so NEON's 8 x 3 tile does not spill. */
        RW_VEC av[RW_GEMM_MR / RW_VL];
        _Pragma("GCC unroll 8") for (int u = 0; u < RW_GEMM_MR / RW_VL; ++u)
            av[u] = RW_LOAD(a + u * RW_VL);
        _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
            _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
                acc[i][v] = RW_FMA_LANE(acc[i][v], bv[v], av[i / RW_VL],
                                        i % RW_VL);
#else
        _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i) {
            const RW_VEC ai = RW_SET1(a[i]);
            _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
                acc[i][v] = RW_FMA(ai, bv[v], acc[i][v]);
        }
#endif
        a += lda;
        b += ldb;
    }

    const RW_VEC valpha = RW_SET1(alpha);
    if (m == RW_GEMM_MR && n == RW_GEMM_NR && cs_c == 1) {
        /* Full tile, unit column stride: vector stores straight into C. */
        if (beta == 0) {
            _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
                _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
                    RW_STORE(c + i * rs_c + v * RW_VL,
                             RW_MUL(valpha, acc[i][v]));
        } else {
            const RW_VEC vbeta = RW_SET1(beta);
            _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
                _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v) {
                    RW_T *cij = c + i * rs_c + v * RW_VL;
                    RW_STORE(cij, RW_FMA(vbeta, RW_LOAD(cij),
                                           RW_MUL(valpha, acc[i][v])));
                }
        }
        return;
    }
    /* Edge tile or strided C: spill alpha*acc, store the valid part. */
    RW_T tile[RW_GEMM_MR * RW_GEMM_NR] __attribute__((aligned(64)));
    _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
        _Pragma("GCC unroll 8") for (int v = 0; v < RW_GEMM_NV; ++v)
            RW_STORE(tile + i * RW_GEMM_NR + v * RW_VL, RW_MUL(valpha, acc[i][v]));
    RW_NAME(gemm_store_edge)(tile, RW_GEMM_NR, c, rs_c, cs_c, m, n, beta);
}

#undef RW_GEMM_NR
#endif

/* The narrow kernel (table column ukernel_narrow): an edge tile of at most
 * RW_VL columns (a short query block, a head narrower than NR) as MR rows
 * x ONE vector, instead of NV vectors of which NV - 1 are padding.  Each
 * element sees exactly the operations of the full kernel -- the same fused
 * multiply-adds over k in order from 0, alpha's product, the edge store --
 * so the bits do not depend on which of the two computed it.  B's panel
 * keeps its NR-column layout (ldb); only its first vector is read.  The
 * portable tile is its own narrow kernel, for any edge. */
#if RW_VL == 1
enum { RW_NAME(gemm_nr_narrow) = RW_GEMM_NR };
#else
enum { RW_NAME(gemm_nr_narrow) = RW_VL };
#endif
static void RW_NAME(gemm_ukernel_narrow)(int64_t k, const RW_T *restrict a,
                                         int64_t lda, const RW_T *restrict b,
                                         int64_t ldb, RW_T *restrict c,
                                         int64_t rs_c, int64_t cs_c,
                                         int64_t m, int64_t n, RW_T alpha,
                                         RW_T beta)
{
#if RW_VL == 1
    RW_NAME(gemm_ukernel)(k, a, lda, b, ldb, c, rs_c, cs_c, m, n, alpha,
                          beta);
#else
    RW_VEC acc[RW_GEMM_MR];
    _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
        acc[i] = RW_SET1(0);
    for (int64_t p = 0; p < k; ++p) {
        const RW_VEC bv = RW_LOAD(b);
        _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
            acc[i] = RW_FMA(RW_SET1(a[i]), bv, acc[i]);
        a += lda;
        b += ldb;
    }
    const RW_VEC valpha = RW_SET1(alpha);
    RW_T tile[RW_GEMM_MR * RW_VL] __attribute__((aligned(64)));
    _Pragma("GCC unroll 16") for (int i = 0; i < RW_GEMM_MR; ++i)
        RW_STORE(tile + i * RW_VL, RW_MUL(valpha, acc[i]));
    RW_NAME(gemm_store_edge)(tile, RW_VL, c, rs_c, cs_c, m, n, beta);
#endif
}
