/* gemv.tmpl.h -- products with a few rows, streaming the large operand once
 * with no packing: the attention decode path (one query against many keys)
 * and matmul with a few rows of A.  Rows need unit inner stride.
 *
 * Instantiated per dtype x ISA with the RW_* operations of simd/<isa>_<dtype>.h.
 *   dot_rows(nk, E, q, k, rs_k, scale, s):  s[j] = scale * (q . k[j])
 *   axpy_rows(nk, Ev, p, v, rs_v, acc):     acc += sum_j p[j] * v[j]
 * Both reduce in a fixed order (lanes, then RW_HSUM, then the tail), so a
 * result depends only on the data and the ISA.
 */
static void RW_NAME(dot_rows)(int64_t nk, int64_t E, const RW_T *q,
                              const RW_T *k, int64_t rs_k, RW_T scale,
                              RW_T *s)
{
    for (int64_t j = 0; j < nk; ++j) {
        const RW_T *kj = k + j * rs_k;
        RW_VEC a0 = RW_SET1(0), a1 = a0;
        int64_t e = 0;
        for (; e + 2 * RW_VL <= E; e += 2 * RW_VL) {
            a0 = RW_FMA(RW_LOAD(q + e), RW_LOAD(kj + e), a0);
            a1 = RW_FMA(RW_LOAD(q + e + RW_VL), RW_LOAD(kj + e + RW_VL), a1);
        }
        for (; e + RW_VL <= E; e += RW_VL)
            a0 = RW_FMA(RW_LOAD(q + e), RW_LOAD(kj + e), a0);
        RW_T dot = RW_HSUM(RW_ADD(a0, a1));
        for (; e < E; ++e)
            dot += q[e] * kj[e];
        s[j] = scale * dot;
    }
}

static void RW_NAME(axpy_rows)(int64_t nk, int64_t Ev, const RW_T *p,
                               const RW_T *v, int64_t rs_v, RW_T *acc)
{
    for (int64_t j = 0; j < nk; ++j) {
        /* no skipping of p[j] == 0: 0 * inf must stay NaN, as in the GEMM */
        const RW_T *vj = v + j * rs_v;
        const RW_VEC pj = RW_SET1(p[j]);
        int64_t c = 0;
        for (; c + RW_VL <= Ev; c += RW_VL)
            RW_STORE(acc + c, RW_FMA(pj, RW_LOAD(vj + c), RW_LOAD(acc + c)));
        for (; c < Ev; ++c)
            acc[c] += p[j] * vj[c];
    }
}
