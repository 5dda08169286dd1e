/* gemv_body.h -- the row streams of gemv.tmpl.h for one source type of the
 * rows (SRC_* macros: the compute dtype, or a 16-bit storage dtype widened
 * on the fly by convert/read.tmpl.h); q, p and acc in the compute dtype.
 *
 * Both start on a 64-byte line, so their loops' placement does not depend
 * on what the linker puts before them: a narrow GEMM kernel added to the
 * same module moved them by 0x50 bytes and the float32 decode (B1 H32
 * S4096 E128, one thread) ran 5-8 % slower on the same instructions. */
__attribute__((aligned(64)))
static void SRC_NAME(dot_rows)(int64_t nk, int64_t E, const RW_T *q,
                               const void *k_, int64_t rs_k, RW_T scale,
                               RW_T *s)
{
    const SRC_T *k = (const SRC_T *)k_;
    for (int64_t j = 0; j < nk; ++j) {
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

__attribute__((aligned(64)))
static void SRC_NAME(axpy_rows)(int64_t nk, int64_t Ev, const RW_T *p,
                                const void *v_, int64_t rs_v, RW_T *acc)
{
    /* Column strips of up to 8 vectors held in registers over all the
     * rows, so each row's bytes are read in one pass and acc is loaded and
     * stored once per call; every element still adds its rows in order
     * (the bits of a row-by-row loop).  No skipping of p[j] == 0: 0 * inf
     * must stay NaN, as in the GEMM. */
    const SRC_T *v = (const SRC_T *)v_;
    int64_t c = 0;
#define SRC_AXPY_STRIP(NV)                                                  \
    for (; c + NV * RW_VL <= Ev; c += NV * RW_VL) {                         \
        RW_VEC a[NV];                                                       \
        _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)                \
            a[u] = RW_LOAD(acc + c + u * RW_VL);                            \
        const SRC_T *vj = v + c;                                            \
        for (int64_t j = 0; j < nk; ++j, vj += rs_v) {                      \
            const RW_VEC pj = RW_SET1(p[j]);                                \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)            \
                a[u] = RW_FMA(pj, SRC_VEC(vj + u * RW_VL), a[u]);           \
        }                                                                   \
        _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)                \
            RW_STORE(acc + c + u * RW_VL, a[u]);                            \
    }
    SRC_AXPY_STRIP(8)
    SRC_AXPY_STRIP(4)
    SRC_AXPY_STRIP(1)
#undef SRC_AXPY_STRIP
    for (; c < Ev; ++c)
        for (int64_t j = 0; j < nk; ++j)
            acc[c] += p[j] * SRC_ONE(v + j * rs_v + c);
}
