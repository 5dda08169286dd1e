/* ukernel_store.tmpl.h -- the edge/strided store every micro-kernel shares.
 *
 * Instantiated with UK_T (element type), UK_FMA (fmaf/fma) and UK_STORE_EDGE
 * (the function name).  `tile` holds alpha*A·B for the full MR x NR tile with
 * row stride nr; only [0:m, 0:n] reaches C.  beta*C + t is one fused
 * multiply-add, like the vector path, so an element's bits do not depend on
 * whether its tile was full or an edge.
 */
static inline void UK_STORE_EDGE(const UK_T *tile, int64_t nr, UK_T *c,
                                 int64_t rs_c, int64_t cs_c, int64_t m,
                                 int64_t n, UK_T beta)
{
    for (int64_t i = 0; i < m; ++i) {
        UK_T *ci = c + i * rs_c;
        if (beta == 0) {
            for (int64_t j = 0; j < n; ++j)
                ci[j * cs_c] = tile[i * nr + j];
        } else {
            for (int64_t j = 0; j < n; ++j)
                ci[j * cs_c] = UK_FMA(beta, ci[j * cs_c], tile[i * nr + j]);
        }
    }
}
