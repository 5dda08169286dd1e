/* gemv.tmpl.h -- products with a few rows, streaming the large operand once
 * with no packing: the attention decode path (one query against many keys)
 * and matmul with a few rows of A.  Rows need unit inner stride.
 *
 * Instantiated per dtype x ISA with the RW_* operations of simd/<isa>_<dtype>.h.
 *   dot_rows(nk, E, q, k, rs_k, scale, s):  s[j] = scale * (q . k[j])
 *   axpy_rows(nk, Ev, p, v, rs_v, acc):     acc += sum_j p[j] * v[j]
 * and the same over listed rows, k[at[j]] and v[at[j]] (sparse attention's
 * selected keys, read where they lie):
 *   dot_rows_at(nk, E, q, k, rs_k, at, scale, s)
 *   axpy_rows_at(nk, Ev, p, v, rs_v, at, acc)
 * and the sparse gradient's scatter into listed rows of the compute dtype:
 *   scatter_rows_at(nk, n, coef, x, rows, rs, at): rows[at[j]] += coef[j] x
 * Both reduce in a fixed order (lanes, then RW_HSUM, then the tail), so a
 * result depends only on the data and the ISA.
 */
#define SRC_NAME RW_NAME
#define SRC_T RW_T
#define SRC_ONE(p) (*(p))
#define SRC_VEC RW_LOAD
#include "gemv_body.h"
#include "src_undef.h"

/* Rows of the compute dtype only (the gradients dK and dV).  Each row adds
 * its terms in the order of j; nothing is shared between rows. */
static void RW_NAME(scatter_rows_at)(int64_t nk, int64_t n, const RW_T *coef,
                                     const RW_T *x, RW_T *rows, int64_t rs,
                                     const int64_t *at)
{
    for (int64_t j = 0; j < nk; ++j) {
        RW_T *r = rows + at[j] * rs;
        const RW_VEC cj = RW_SET1(coef[j]);
        int64_t c = 0;
        for (; c + RW_VL <= n; c += RW_VL)
            RW_STORE(r + c, RW_FMA(cj, RW_LOAD(x + c), RW_LOAD(r + c)));
        for (; c < n; ++c)
            r[c] += coef[j] * x[c];
    }
}
