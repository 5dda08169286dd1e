/* ukernel_ref.tmpl.h -- body of the portable micro-kernel (see cattn_gemm.h
 * for the contract).  Instantiated with UK_T, UK_MR, UK_NR, UK_FMA, UK_NAME
 * and UK_STORE_EDGE.  The loops have constant bounds so the compiler keeps
 * the accumulator in registers and vectorises them with the baseline ISA. */
static void UK_NAME(int64_t k, const UK_T *restrict a, int64_t lda,
                    const UK_T *restrict b, int64_t ldb, UK_T *restrict c,
                    int64_t rs_c, int64_t cs_c, int64_t m, int64_t n,
                    UK_T alpha, UK_T beta)
{
    UK_T acc[UK_MR * UK_NR] = {0};
    for (int64_t p = 0; p < k; ++p) {
        for (int i = 0; i < UK_MR; ++i)
            for (int j = 0; j < UK_NR; ++j)
                acc[i * UK_NR + j] += a[i] * b[j];
        a += lda;
        b += ldb;
    }
    for (int t = 0; t < UK_MR * UK_NR; ++t)
        acc[t] *= alpha;
    UK_STORE_EDGE(acc, UK_NR, c, rs_c, cs_c, m, n, beta);
}
