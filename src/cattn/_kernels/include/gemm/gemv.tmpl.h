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
 * Both reduce in a fixed order (lanes, then RW_HSUM, then the tail), so a
 * result depends only on the data and the ISA.
 */
#define SRC_NAME RW_NAME
#define SRC_T RW_T
#define SRC_ONE(p) (*(p))
#define SRC_VEC RW_LOAD
#include "gemv_body.h"
#include "src_undef.h"
