/* gemv_body.h -- the row streams of gemv.tmpl.h for one source type of the
 * rows (SRC_* macros: the compute dtype, or a 16-bit storage dtype widened
 * on the fly by convert/read.tmpl.h); q, p and acc in the compute dtype.
 *
 * Each stream is written once (the _in functions, always inlined) over
 * the rows GEMV_ROW(j): row j itself, or with a list `at` row at[j] (the
 * keys a sparse-attention query selected, gathered where they lie).  The
 * two entries inline it with `at` NULL or not, so the plain stream's loop
 * carries no list.  Every row's sums run in the same order either way.
 *
 * The entries start on a 64-byte line, so their loops' placement does not
 * depend on what the linker puts before them: a narrow GEMM kernel added
 * to the same module moved them by 0x50 bytes and the float32 decode (B1
 * H32 S4096 E128, one thread) ran 5-8 % slower on the same instructions. */
#ifndef GEMV_ROW
#define GEMV_ROW(j) (at ? at[j] : (j))
/* Listed rows lie anywhere: ask for the one GEMV_AHEAD places ahead while
 * computing (the hardware prefetcher follows strides, not lists).  Rows
 * read once from memory (`far`: a decode step over a long cache) go to
 * L2 only, 16 rows ahead, so many more misses are in flight than L1
 * holds; rows that other queries read again (a prefill's lists) to L1, 8
 * ahead.  Measured on Zen 4, 131072-key cache, k=2048: decode 1.9 ->
 * 1.65 ms with `far`; the same hint slowed the prefill rows 5-10 %. */
#define GEMV_AHEAD(far) ((far) ? 16 : 8)
#define GEMV_PREFETCH(row, bytes, far)                                      \
    do {                                                                    \
        for (int64_t b_ = 0; b_ < (int64_t)(bytes); b_ += 64) {             \
            if (far)                                                        \
                __builtin_prefetch((const char *)(row) + b_, 0, 1);         \
            else                                                            \
                __builtin_prefetch((const char *)(row) + b_, 0, 3);         \
        }                                                                   \
    } while (0)
#endif

static inline __attribute__((always_inline)) void SRC_NAME(dot_rows_in)(
    int64_t nk, int64_t E, const RW_T *q, const void *k_, int64_t rs_k,
    const int64_t *at, RW_T scale, RW_T *s, int far)
{
    const SRC_T *k = (const SRC_T *)k_;
    /* Four rows at a time share the query's loads and hide the FMA
     * latency; each row keeps its own two chains, so its sum is the
     * one-row loop's. */
    enum { R = 4 };
    int64_t j = 0;
    for (; j + R <= nk; j += R) {
        const SRC_T *kj[R];
        RW_VEC a0[R], a1[R];
        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {
            kj[r] = k + GEMV_ROW(j + r) * rs_k;
            a0[r] = RW_SET1(0);
            a1[r] = a0[r];
            if (at && j + r + GEMV_AHEAD(far) < nk)
                GEMV_PREFETCH(k + at[j + r + GEMV_AHEAD(far)] * rs_k,
                              E * sizeof(SRC_T), far);
        }
        int64_t e = 0;
        for (; e + 2 * RW_VL <= E; e += 2 * RW_VL) {
            const RW_VEC q0 = RW_LOAD(q + e), q1 = RW_LOAD(q + e + RW_VL);
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {
                a0[r] = RW_FMA(q0, SRC_VEC(kj[r] + e), a0[r]);
                a1[r] = RW_FMA(q1, SRC_VEC(kj[r] + e + RW_VL), a1[r]);
            }
        }
        for (; e + RW_VL <= E; e += RW_VL) {
            const RW_VEC q0 = RW_LOAD(q + e);
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)
                a0[r] = RW_FMA(q0, SRC_VEC(kj[r] + e), a0[r]);
        }
        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {
            RW_T dot = RW_HSUM(RW_ADD(a0[r], a1[r]));
            for (int64_t t = e; t < E; ++t)
                dot += q[t] * SRC_ONE(kj[r] + t);
            s[j + r] = scale * dot;
        }
    }
    for (; j < nk; ++j) {
        const SRC_T *kj = k + GEMV_ROW(j) * rs_k;
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

static inline __attribute__((always_inline)) void SRC_NAME(axpy_rows_in)(
    int64_t nk, int64_t Ev, const RW_T *p, const void *v_, int64_t rs_v,
    const int64_t *at, RW_T *acc, int far)
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
        for (int64_t j = 0; j < nk; ++j) {                                  \
            const SRC_T *vj = v + GEMV_ROW(j) * rs_v + c;                   \
            if (at && j + GEMV_AHEAD(far) < nk)                             \
                GEMV_PREFETCH(v + at[j + GEMV_AHEAD(far)] * rs_v + c,       \
                              NV * RW_VL * sizeof(SRC_T), far);             \
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
            acc[c] += p[j] * SRC_ONE(v + GEMV_ROW(j) * rs_v + c);
}

__attribute__((aligned(64)))
static void SRC_NAME(dot_rows)(int64_t nk, int64_t E, const RW_T *q,
                               const void *k, int64_t rs_k, RW_T scale,
                               RW_T *s)
{
    SRC_NAME(dot_rows_in)(nk, E, q, k, rs_k, NULL, scale, s, 0);
}

__attribute__((aligned(64)))
static void SRC_NAME(dot_rows_at)(int64_t nk, int64_t E, const RW_T *q,
                                  const void *k, int64_t rs_k,
                                  const int64_t *at, RW_T scale, RW_T *s)
{
    SRC_NAME(dot_rows_in)(nk, E, q, k, rs_k, at, scale, s, 0);
}

__attribute__((aligned(64)))
static void SRC_NAME(axpy_rows)(int64_t nk, int64_t Ev, const RW_T *p,
                                const void *v, int64_t rs_v, RW_T *acc)
{
    SRC_NAME(axpy_rows_in)(nk, Ev, p, v, rs_v, NULL, acc, 0);
}

__attribute__((aligned(64)))
static void SRC_NAME(axpy_rows_at)(int64_t nk, int64_t Ev, const RW_T *p,
                                   const void *v, int64_t rs_v,
                                   const int64_t *at, RW_T *acc)
{
    SRC_NAME(axpy_rows_in)(nk, Ev, p, v, rs_v, at, acc, 0);
}

__attribute__((aligned(64)))
static void SRC_NAME(dot_rows_far_at)(int64_t nk, int64_t E, const RW_T *q,
                                      const void *k, int64_t rs_k,
                                      const int64_t *at, RW_T scale, RW_T *s)
{
    SRC_NAME(dot_rows_in)(nk, E, q, k, rs_k, at, scale, s, 1);
}

__attribute__((aligned(64)))
static void SRC_NAME(axpy_rows_far_at)(int64_t nk, int64_t Ev, const RW_T *p,
                                       const void *v, int64_t rs_v,
                                       const int64_t *at, RW_T *acc)
{
    SRC_NAME(axpy_rows_in)(nk, Ev, p, v, rs_v, at, acc, 1);
}
