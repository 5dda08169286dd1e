/* scan.tmpl.h -- the scans of the top-k selection for one dtype and ISA
 * (contracts in cattn_topk.h).
 *
 * Instantiated with TK_T, TK_NAME(f) (the function name for this dtype and
 * ISA), TK_SCALAR(f) (the dtype's portable function f, for the tails) and,
 * for a vector ISA (TK_VL > 1): TK_VEC, TK_LOAD, TK_STORE, TK_SET1,
 * TK_CMP(a, b, pred) (the lanes where `a pred b` as bits of an unsigned),
 * TK_BELOW_TO(v, t, x) (v with the lanes where v < t replaced by x's).
 * With TK_VL == 1 it defines the portable scalar functions themselves.
 */
#if TK_VL == 1
static inline int64_t TK_NAME(first_reaching)(int64_t n, const TK_T *x,
                                              TK_T t)
{
    for (int64_t i = 0; i < n; ++i)
        if (!(x[i] < t))
            return i;
    return n;
}

static inline int TK_NAME(hide_below)(int64_t n, TK_T *x, const TK_T *t)
{
    int rest = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (x[i] < t[i])
            x[i] = -INFINITY;
        else if (!(x[i] > t[i]) && x[i] != -INFINITY)
            rest = 1;
    }
    return rest;
}
#else
/* _CMP_NLT_UQ, "not less than", holds when either side is NaN. */
static int64_t TK_NAME(first_reaching)(int64_t n, const TK_T *x, TK_T t)
{
    const TK_VEC vt = TK_SET1(t);
    int64_t i = 0;
    for (; i + TK_VL <= n; i += TK_VL) {
        const unsigned hit = TK_CMP(TK_LOAD(x + i), vt, _CMP_NLT_UQ);
        if (hit)
            return i + __builtin_ctz(hit);
    }
    return i + TK_SCALAR(first_reaching)(n - i, x + i, t);
}

/* "rest": lanes neither below nor above t (equal, or NaN) and not -inf. */
static int TK_NAME(hide_below)(int64_t n, TK_T *x, const TK_T *t)
{
    const TK_VEC ninf = TK_SET1(-INFINITY);
    unsigned rest = 0;
    int64_t i = 0;
    for (; i + TK_VL <= n; i += TK_VL) {
        const TK_VEC v = TK_LOAD(x + i), th = TK_LOAD(t + i);
        rest |= TK_CMP(v, th, _CMP_NGT_UQ) & ~TK_CMP(v, th, _CMP_LT_OQ)
                & TK_CMP(v, ninf, _CMP_NEQ_UQ);
        TK_STORE(x + i, TK_BELOW_TO(v, th, ninf));
    }
    return (rest != 0) | TK_SCALAR(hide_below)(n - i, x + i, t + i);
}
#endif
