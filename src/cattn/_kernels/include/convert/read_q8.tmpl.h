/* read_q8.tmpl.h -- the float32 kernels' operands read from the int8
 * quantized form (cattn.quantize: symmetric blocks along the last axis,
 * one float32 scale each, like llama.cpp's q8_0), dequantized on the fly:
 * an element is (float)value * scale, one float32 rounding -- the values
 * QuantizedArray.dequantize() gives -- and never stored whole.
 *
 * The operand pointer is a cattn_q8_view (cattn_convert.h), the values'
 * element strides are the readers' usual rs/cs, and the blocks run along
 * the unit-stride axis (cs == 1 for pack_a and pack_b, the rows of
 * dot_rows and axpy_rows).  The row streams scale per block: a dot
 * product is sum_b scale_b * (q . values_b), the axpy adds
 * (p_j * scale_b) * values_b -- the same sums, grouped by block.
 * Only the float32 instantiations define them (RW_IS_F32). */
#if RW_IS_F32
CATTN_NO_MEMCPY static void RW_NAME(gemm_pack_a_q8)(
    int64_t mc, int64_t kc, const void *a_, int64_t rs_a, int64_t cs_a,
    int64_t mr, float *dst)
{
    const cattn_q8_view *a = (const cattn_q8_view *)a_;
    (void)cs_a;                                     /* 1: the block axis */
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
        const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
        for (int64_t i = 0; i < rows; ++i) {
            const int8_t *v = a->values + (i0 + i) * rs_a;
            const float *s = a->scales + (i0 + i) * a->rs_scales;
            for (int64_t p = 0; p < kc; ++p)
                dst[p * mr + i] = (float)v[p] * s[(a->col0 + p) / a->block];
        }
        for (int64_t i = rows; i < mr; ++i)
            for (int64_t p = 0; p < kc; ++p)
                dst[p * mr + i] = 0;
        dst += mr * kc;
    }
}

CATTN_NO_MEMCPY static void RW_NAME(gemm_pack_b_q8)(
    int64_t kc, int64_t nc, const void *b_, int64_t rs_b, int64_t cs_b,
    int64_t nr, int64_t q0, int64_t q1, float *dst)
{
    const cattn_q8_view *b = (const cattn_q8_view *)b_;
    (void)cs_b;                                     /* 1: the block axis */
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = q * nr;
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        float *d = dst + q * nr * kc;
        for (int64_t p = 0; p < kc; ++p) {
            const int8_t *v = b->values + p * rs_b + j0;
            const float *s = b->scales + p * b->rs_scales;
            int64_t j = 0;
            for (; j < cols; ++j)
                d[p * nr + j] = (float)v[j] * s[(b->col0 + j0 + j) / b->block];
            for (; j < nr; ++j)
                d[p * nr + j] = 0;
        }
    }
}

/* Whole blocks of whole vectors from the row's start (the KV cache's rows:
 * col0 == 0, block a multiple of RW_VL); else the scalar loop.  Written
 * once over the rows GEMV_ROW(j) (gemm/gemv_body.h): consecutive, or the
 * listed rows at[j] of the _at entries. */
static inline __attribute__((always_inline)) void RW_NAME(dot_rows_q8_in)(
    int64_t nk, int64_t E, const float *q, const void *k_, int64_t rs_k,
    const int64_t *at, float scale, float *out, int far)
{
    const cattn_q8_view *k = (const cattn_q8_view *)k_;
    const int64_t bs = k->block;
    const int vec = k->col0 == 0 && bs % RW_VL == 0 && E % bs == 0;
    int64_t j = 0;
    /* Four rows at a time share the query's loads (independent chains
     * hide the FMA latency); each row's sums are the single-row loop's,
     * in the same order. */
    enum { R = 4 };
    for (; vec && j + R <= nk; j += R) {
        RW_VEC acc[R];
        int64_t row[R];
        _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
            acc[r] = RW_SET1(0);
            row[r] = GEMV_ROW(j + r);
            if (at && j + r + GEMV_AHEAD(far) < nk)
                GEMV_PREFETCH(k->values + at[j + r + GEMV_AHEAD(far)] * rs_k,
                              E, far);
        }
        for (int64_t b = 0; b < E / bs; ++b) {
            RW_VEC part[R];
            _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
                part[r] = RW_SET1(0);
            for (int64_t e = b * bs; e < (b + 1) * bs; e += RW_VL) {
                const RW_VEC qe = RW_LOAD(q + e);
                _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
                    part[r] = RW_FMA(qe, RW_WIDEN_I8(k->values
                                                     + row[r] * rs_k + e),
                                     part[r]);
            }
            _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
                acc[r] = RW_FMA(RW_SET1(k->scales[row[r] * k->rs_scales
                                                  + b]), part[r], acc[r]);
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
            out[j + r] = scale * RW_HSUM(acc[r]);
    }
    for (; j < nk; ++j) {
        const int8_t *v = k->values + GEMV_ROW(j) * rs_k;
        const float *s = k->scales + GEMV_ROW(j) * k->rs_scales;
        float dot = 0;
        if (vec) {
            RW_VEC acc = RW_SET1(0);
            for (int64_t b = 0; b < E / bs; ++b) {
                RW_VEC part = RW_SET1(0);
                for (int64_t e = b * bs; e < (b + 1) * bs; e += RW_VL)
                    part = RW_FMA(RW_LOAD(q + e), RW_WIDEN_I8(v + e), part);
                acc = RW_FMA(RW_SET1(s[b]), part, acc);
            }
            dot = RW_HSUM(acc);
        } else {
            for (int64_t e = 0; e < E; ++e)
                dot += q[e] * ((float)v[e] * s[(k->col0 + e) / bs]);
        }
        out[j] = scale * dot;
    }
}

static inline __attribute__((always_inline)) void RW_NAME(axpy_rows_q8_in)(
    int64_t nk, int64_t Ev, const float *p, const void *v_, int64_t rs_v,
    const int64_t *at, float *acc, int far)
{
    const cattn_q8_view *vw = (const cattn_q8_view *)v_;
    const int64_t bs = vw->block;
    const int vec = vw->col0 == 0 && bs % RW_VL == 0 && Ev % bs == 0;
    if (vec) {
        /* Column strips held in registers over all the rows (each element
         * still sums its rows in order): the accumulator is loaded and
         * stored once per call, not once per row; then single vectors. */
        int64_t e = 0;
#define CATTN_Q8_STRIP(NV)                                                  \
        for (; e + NV * RW_VL <= Ev; e += NV * RW_VL) {                    \
            RW_VEC a[NV];                                                   \
            int64_t blk[NV];                                                \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u) {          \
                a[u] = RW_LOAD(acc + e + u * RW_VL);                        \
                blk[u] = (e + u * RW_VL) / bs;                              \
            }                                                               \
            for (int64_t j = 0; j < nk; ++j) {                              \
                const int64_t row = GEMV_ROW(j);                            \
                const int8_t *v = vw->values + row * rs_v + e;              \
                const float *s = vw->scales + row * vw->rs_scales;          \
                if (at && j + GEMV_AHEAD(far) < nk)                         \
                    GEMV_PREFETCH(vw->values + at[j + GEMV_AHEAD(far)]      \
                                  * rs_v + e, NV * RW_VL, far);             \
                const float pj = p[j];                                      \
                _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)        \
                    a[u] = RW_FMA(RW_SET1(pj * s[blk[u]]),                  \
                                  RW_WIDEN_I8(v + u * RW_VL), a[u]);        \
            }                                                               \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; ++u)            \
                RW_STORE(acc + e + u * RW_VL, a[u]);                        \
        }
        /* whole rows of up to 8 vectors in one pass (each row's bytes read
         * together: 2.4x -> 2.7-2.9x float32 decoding), then 4 vectors */
        CATTN_Q8_STRIP(8)
        CATTN_Q8_STRIP(4)
#undef CATTN_Q8_STRIP
        for (; e < Ev; e += RW_VL) {
            RW_VEC a0 = RW_LOAD(acc + e);
            for (int64_t j = 0; j < nk; ++j) {
                const int64_t row = GEMV_ROW(j);
                a0 = RW_FMA(RW_SET1(p[j] * vw->scales[row * vw->rs_scales
                                                       + e / bs]),
                            RW_WIDEN_I8(vw->values + row * rs_v + e), a0);
            }
            RW_STORE(acc + e, a0);
        }
        return;
    }
    for (int64_t j = 0; j < nk; ++j) {
        const int8_t *v = vw->values + GEMV_ROW(j) * rs_v;
        const float *s = vw->scales + GEMV_ROW(j) * vw->rs_scales;
        for (int64_t e = 0; e < Ev; ++e)
            acc[e] += p[j] * ((float)v[e] * s[(vw->col0 + e) / bs]);
    }
}

static void RW_NAME(dot_rows_q8)(int64_t nk, int64_t E, const float *q,
                                 const void *k, int64_t rs_k, float scale,
                                 float *out)
{
    RW_NAME(dot_rows_q8_in)(nk, E, q, k, rs_k, NULL, scale, out, 0);
}

static void RW_NAME(dot_rows_at_q8)(int64_t nk, int64_t E, const float *q,
                                    const void *k, int64_t rs_k,
                                    const int64_t *at, float scale,
                                    float *out)
{
    RW_NAME(dot_rows_q8_in)(nk, E, q, k, rs_k, at, scale, out, 0);
}

static void RW_NAME(axpy_rows_q8)(int64_t nk, int64_t Ev, const float *p,
                                  const void *v, int64_t rs_v, float *acc)
{
    RW_NAME(axpy_rows_q8_in)(nk, Ev, p, v, rs_v, NULL, acc, 0);
}

static void RW_NAME(axpy_rows_at_q8)(int64_t nk, int64_t Ev, const float *p,
                                     const void *v, int64_t rs_v,
                                     const int64_t *at, float *acc)
{
    RW_NAME(axpy_rows_q8_in)(nk, Ev, p, v, rs_v, at, acc, 0);
}

static void RW_NAME(dot_rows_far_at_q8)(int64_t nk, int64_t E,
                                        const float *q, const void *k,
                                        int64_t rs_k, const int64_t *at,
                                        float scale, float *out)
{
    RW_NAME(dot_rows_q8_in)(nk, E, q, k, rs_k, at, scale, out, 1);
}

static void RW_NAME(axpy_rows_far_at_q8)(int64_t nk, int64_t Ev,
                                         const float *p, const void *v,
                                         int64_t rs_v, const int64_t *at,
                                         float *acc)
{
    RW_NAME(axpy_rows_q8_in)(nk, Ev, p, v, rs_v, at, acc, 1);
}
#endif
