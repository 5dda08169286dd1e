/* gemv_body.h -- the row streams of gemv.tmpl.h for one source type of the
 * rows (SRC_* macros: the compute dtype, or a 16-bit storage dtype widened
 * on the fly by convert/read.tmpl.h); q, p and acc in the compute dtype. */
/* One key's dot product: two chains over the vectors (even, odd), their
 * sum reduced by RW_HSUM (RW_HSUM4 for four keys: the same bits), then the
 * scalar tail.  dot_rows takes keys four at a time, so each vector of q is
 * loaded once per four keys and the horizontal sums share their shuffles;
 * every key's sum keeps this one order, wherever it falls. */
static void SRC_NAME(dot_rows)(int64_t nk, int64_t E, const RW_T *q,
                               const void *k_, int64_t rs_k, RW_T scale,
                               RW_T *s)
{
    const SRC_T *k = (const SRC_T *)k_;
    int64_t j = 0;
#ifdef RW_HSUM4
    for (; j + 4 <= nk; j += 4) {
        const SRC_T *kj = k + j * rs_k;
        RW_VEC a[4][2];
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
            a[r][0] = a[r][1] = RW_SET1(0);
        int64_t e = 0;
        for (; e + 2 * RW_VL <= E; e += 2 * RW_VL) {
            const RW_VEC q0 = RW_LOAD(q + e), q1 = RW_LOAD(q + e + RW_VL);
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r) {
                a[r][0] = RW_FMA(q0, SRC_VEC(kj + r * rs_k + e), a[r][0]);
                a[r][1] = RW_FMA(q1, SRC_VEC(kj + r * rs_k + e + RW_VL),
                                 a[r][1]);
            }
        }
        for (; e + RW_VL <= E; e += RW_VL) {
            const RW_VEC q0 = RW_LOAD(q + e);
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
                a[r][0] = RW_FMA(q0, SRC_VEC(kj + r * rs_k + e), a[r][0]);
        }
        RW_T dot[4];
        RW_HSUM4(RW_ADD(a[0][0], a[0][1]), RW_ADD(a[1][0], a[1][1]),
                 RW_ADD(a[2][0], a[2][1]), RW_ADD(a[3][0], a[3][1]), dot);
        for (int r = 0; r < 4; ++r) {
            for (int64_t t = e; t < E; ++t)
                dot[r] += q[t] * SRC_ONE(kj + r * rs_k + t);
            s[j + r] = scale * dot[r];
        }
    }
#endif
    for (; j < nk; ++j) {
        const SRC_T *kj = k + j * rs_k;
        RW_VEC a0 = RW_SET1(0), a1 = a0;
        int64_t e = 0;
        for (; e + 2 * RW_VL <= E; e += 2 * RW_VL) {
            a0 = RW_FMA(RW_LOAD(q + e), SRC_VEC(kj + e), a0);
            a1 = RW_FMA(RW_LOAD(q + e + RW_VL), SRC_VEC(kj + e + RW_VL), a1);
        }
        for (; e + RW_VL <= E; e += RW_VL)
            a0 = RW_FMA(RW_LOAD(q + e), SRC_VEC(kj + e), a0);
        RW_T dot = RW_HSUM(RW_ADD(a0, a1));
        for (; e < E; ++e)
            dot += q[e] * SRC_ONE(kj + e);
        s[j] = scale * dot;
    }
}

static void SRC_NAME(axpy_rows)(int64_t nk, int64_t Ev, const RW_T *p,
                                const void *v_, int64_t rs_v, RW_T *acc)
{
    /* Column strips of up to 8 vectors held in registers over a block of
     * rows, so acc is loaded and stored once per strip and block; when a
     * row needs more than one strip (Ev > 8 vectors: AVX2 at Ev = 128),
     * the rows go in blocks of about 16 KB, so the strips after the first
     * read the block from L1, not the whole stream again.  Every element
     * still adds its rows in order (the bits of a row-by-row loop).  No
     * skipping of p[j] == 0: 0 * inf must stay NaN, as in the GEMM. */
    const SRC_T *v = (const SRC_T *)v_;
    const int64_t row_bytes = Ev * (int64_t)sizeof(SRC_T);
    int64_t rows = nk;
    if (Ev > 8 * RW_VL)
        rows = row_bytes >= 1024 ? 16 : (16384 / row_bytes) & ~(int64_t)7;
    for (int64_t j0 = 0; j0 < nk; j0 += rows) {
        const int64_t nb = nk - j0 < rows ? nk - j0 : rows;
        const RW_T *pb = p + j0;
        const SRC_T *vb = v + j0 * rs_v;
        int64_t c = 0;
#define SRC_AXPY_STRIP(NV)                                                  \
        for (; c + NV * RW_VL <= Ev; c += NV * RW_VL) {                     \
            RW_VEC a[NV];                                                   \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)            \
                a[u] = RW_LOAD(acc + c + u * RW_VL);                        \
            const SRC_T *vj = vb + c;                                       \
            for (int64_t j = 0; j < nb; ++j, vj += rs_v) {                  \
                const RW_VEC pj = RW_SET1(pb[j]);                           \
                _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)        \
                    a[u] = RW_FMA(pj, SRC_VEC(vj + u * RW_VL), a[u]);       \
            }                                                               \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)            \
                RW_STORE(acc + c + u * RW_VL, a[u]);                        \
        }
        SRC_AXPY_STRIP(8)
        SRC_AXPY_STRIP(4)
        SRC_AXPY_STRIP(1)
#undef SRC_AXPY_STRIP
        for (; c < Ev; ++c)
            for (int64_t j = 0; j < nb; ++j)
                acc[c] += pb[j] * SRC_ONE(vb + j * rs_v + c);
    }
}
