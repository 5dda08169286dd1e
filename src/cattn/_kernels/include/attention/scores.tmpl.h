/* scores.tmpl.h -- what current models do to a score before the softmax,
 * applied to a tile of scores in place: the logit cap (Gemma 2's softcap)
 * and the ALiBi position bias.  Instantiated per dtype x ISA by
 * simd/instantiate.h with the RW_* operations of simd/<isa>_<dtype>.h.
 *
 * Both run on rows of a tile x[r*ld + c], r < rows, c < n.  A row's tail
 * (n not a multiple of RW_VL) goes through a vector-sized buffer, so an
 * element's bits never depend on its column or on the tile's width: the
 * forward's transposed tiles, the top-k pass's and the gradient's row
 * tiles and the decode path's rows all give one score the same bits.
 *
 *   tile_softcap(rows, n, x, ld, cap): x = cap · tanh(x / cap)
 *   tile_alibi(rows, n, x, ld, nslope, d0): x[r, c] += nslope · |d0 - r + c|
 *       (nslope = -slope; the caller maps its layout onto d0, see
 *       _kernels/_visibility.pxd), in one fused multiply-add where the ISA
 *       fuses; the distance is an exact integer below 2^24 (float32).
 *
 * tanh (RW_NAME(vtanh)), with a = |x|:
 *   a <  1/8: the odd Taylor series a + a^3·p(a^2), truncated where the
 *             next term is below 2^-30 (float32) / 2^-60 (float64) of a;
 *   a >= 1/8: (1 - e) / (1 + e) with e = exp(-2a) <= exp(-1/4), so 1 - e
 *             keeps e's accuracy to within 2 bits (no cancellation);
 * then the sign of x.  exp(-inf) = 0 gives ±1 for ±inf; NaN stays NaN.
 * A vector whose lanes are all below 1/8 (scores well inside the cap, the
 * common case: Gemma 2 caps at 50) computes only the series, so the cost
 * depends on the scores' range, never the bits.
 * Measured against float64 (tests/): a few ulp.
 */
static inline RW_VEC RW_NAME(vtanh)(RW_VEC x)
{
    const RW_VEC a = RW_ABS(x), a2 = RW_MUL(a, a), cut = RW_SET1((RW_T)0.125);
    RW_VEC p;
#ifdef RW_IS_F32
    p = RW_SET1(-17.0f / 315.0f);
    p = RW_FMA(p, a2, RW_SET1(2.0f / 15.0f));
    p = RW_FMA(p, a2, RW_SET1(-1.0f / 3.0f));
#else
    p = RW_SET1(-929569.0 / 638512875.0);
    p = RW_FMA(p, a2, RW_SET1(21844.0 / 6081075.0));
    p = RW_FMA(p, a2, RW_SET1(-1382.0 / 155925.0));
    p = RW_FMA(p, a2, RW_SET1(62.0 / 2835.0));
    p = RW_FMA(p, a2, RW_SET1(-17.0 / 315.0));
    p = RW_FMA(p, a2, RW_SET1(2.0 / 15.0));
    p = RW_FMA(p, a2, RW_SET1(-1.0 / 3.0));
#endif
    const RW_VEC small = RW_FMA(RW_MUL(a, a2), p, a);
    /* Scores well inside the cap (the common case) skip the exp; a lane's
     * bits are the same either way. */
    if (RW_ALL_LT(a, cut))
        return RW_WITH_SIGN(small, x);
    const RW_VEC e = RW_EXP_NEG(RW_MUL(a, RW_SET1((RW_T)-2)));
    const RW_VEC big = RW_DIV(RW_SUB(RW_SET1((RW_T)1), e),
                              RW_ADD(RW_SET1((RW_T)1), e));
    return RW_WITH_SIGN(RW_SELECT_LT(a, cut, small, big), x);
}

static inline RW_VEC RW_NAME(vsoftcap)(RW_VEC x, RW_VEC cap, RW_VEC inv)
{
    return RW_MUL(cap, RW_NAME(vtanh)(RW_MUL(x, inv)));
}

static void RW_NAME(tile_softcap)(int64_t rows, int64_t n, RW_T *x,
                                  int64_t ld, RW_T cap)
{
    const RW_VEC vc = RW_SET1(cap), vi = RW_SET1((RW_T)1 / cap);
    const int64_t body = n / RW_VL * RW_VL;
    for (int64_t r = 0; r < rows; ++r) {
        RW_T *row = x + r * ld;
        for (int64_t c = 0; c < body; c += RW_VL)
            RW_STORE(row + c, RW_NAME(vsoftcap)(RW_LOAD(row + c), vc, vi));
        if (body < n) {
            RW_T buf[RW_VL] = {0};
            for (int64_t c = body; c < n; ++c)
                buf[c - body] = row[c];
            RW_STORE(buf, RW_NAME(vsoftcap)(RW_LOAD(buf), vc, vi));
            for (int64_t c = body; c < n; ++c)
                row[c] = buf[c - body];
        }
    }
}

/* Column offsets 0, 1, ... as RW_T, for the distance vectors. */
static const RW_T RW_NAME(iota)[16] = {0, 1, 2, 3, 4, 5, 6, 7,
                                       8, 9, 10, 11, 12, 13, 14, 15};

static void RW_NAME(tile_alibi)(int64_t rows, int64_t n, RW_T *x,
                                int64_t ld, RW_T nslope, int64_t d0)
{
    const RW_VEC vs = RW_SET1(nslope), iota = RW_LOAD(RW_NAME(iota));
    const int64_t body = n / RW_VL * RW_VL;
    for (int64_t r = 0; r < rows; ++r) {
        RW_T *row = x + r * ld;
        const int64_t d = d0 - r;
        for (int64_t c = 0; c < body; c += RW_VL) {
            const RW_VEC dist = RW_ABS(RW_ADD(RW_SET1((RW_T)(d + c)), iota));
            RW_STORE(row + c, RW_FMA(vs, dist, RW_LOAD(row + c)));
        }
        if (body < n) {
            RW_T buf[RW_VL] = {0};
            for (int64_t c = body; c < n; ++c)
                buf[c - body] = row[c];
            const RW_VEC dist = RW_ABS(RW_ADD(RW_SET1((RW_T)(d + body)),
                                              iota));
            RW_STORE(buf, RW_FMA(vs, dist, RW_LOAD(buf)));
            for (int64_t c = body; c < n; ++c)
                row[c] = buf[c - body];
        }
    }
}
