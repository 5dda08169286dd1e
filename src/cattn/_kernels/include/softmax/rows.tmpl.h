/* rows.tmpl.h -- softmax, log_softmax and logsumexp of one contiguous row.
 *
 * Instantiated per dtype x ISA with the RW_* operations of simd/<isa>_<dtype>.h
 * (vector type, lanes, load/store, arithmetic, vector exp, horizontal sum and
 * max, scalar log) and RW_NAME(op) for the function names.  The portable
 * instantiation uses RW_VL = 1 with scalar "vectors".
 *
 * Semantics are scipy.special's, reproduced by doing the same arithmetic:
 *   softmax     y = exp(x - m) / sum(exp(x - m)),  m = max(x)
 *   log_softmax y = (x - s) - log(sum(exp(x - s))), s = m if finite else 0
 *   logsumexp     = s + log(sum(exp(x - s)))
 * so a NaN anywhere in a row makes its sum (and row) NaN, a row with +inf or
 * all -inf gives NaN from softmax (inf - inf), and logsumexp gives +inf or
 * -inf there.  An empty row has logsumexp -inf (log of an empty sum).
 *
 * Accuracy of the float32 sums: the row is summed pairwise down to blocks of
 * RW_LEAF elements, each block into 4*VL independent lanes, so the rounding
 * error of the sum grows like (RW_LEAF/(4*VL) + log2(n)) * eps instead of
 * n * eps; every term is positive, so that is a relative bound.
 *
 * Tail elements (n not a multiple of VL) go through the same vector exp via
 * a padded buffer, so where an element sits in its row never changes its bits.
 */
#define RW_LEAF 1024
#define RW_BLOCK (4 * RW_VL)

static RW_T RW_NAME(max)(int64_t n, const RW_T *x)
{
    RW_VEC m0 = RW_SET1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + RW_BLOCK <= n; i += RW_BLOCK) {
        m0 = RW_MAX(m0, RW_LOAD(x + i));
        m1 = RW_MAX(m1, RW_LOAD(x + i + RW_VL));
        m2 = RW_MAX(m2, RW_LOAD(x + i + 2 * RW_VL));
        m3 = RW_MAX(m3, RW_LOAD(x + i + 3 * RW_VL));
    }
    for (; i + RW_VL <= n; i += RW_VL)
        m0 = RW_MAX(m0, RW_LOAD(x + i));
    RW_T m = RW_HMAX(RW_MAX(RW_MAX(m0, m1), RW_MAX(m2, m3)));
    for (; i < n; ++i)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* exp(x[i] - shift) for the last n % VL elements through a padded vector;
 * the padding is -inf so it adds exp(-inf - shift) = 0 (or NaN when the row
 * is NaN anyway).  Returns their sum; stores them to y unless y is NULL. */
static inline RW_T RW_NAME(exp_tail)(int64_t n, const RW_T *x, RW_T shift,
                                     RW_T *y)
{
    RW_T buf[RW_VL] __attribute__((aligned(64)));
    for (int64_t i = 0; i < RW_VL; ++i)
        buf[i] = i < n ? x[i] : -INFINITY;
    RW_STORE(buf, RW_EXP(RW_SUB(RW_LOAD(buf), RW_SET1(shift))));
    RW_T s = 0;
    for (int64_t i = 0; i < n; ++i) {
        s += buf[i];
        if (y)
            y[i] = buf[i];
    }
    return s;
}

/* Sum of exp(x - shift) over a block of at most RW_LEAF elements, also
 * storing each term to y when y is not NULL (y may be x itself). */
static inline RW_T RW_NAME(exp_sum_leaf)(int64_t n, const RW_T *x,
                                         RW_T shift, RW_T *y)
{
    const RW_VEC vshift = RW_SET1(shift);
    RW_VEC s0 = RW_SET1(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + RW_BLOCK <= n; i += RW_BLOCK) {
        const RW_VEC e0 = RW_EXP(RW_SUB(RW_LOAD(x + i), vshift));
        const RW_VEC e1 = RW_EXP(RW_SUB(RW_LOAD(x + i + RW_VL), vshift));
        const RW_VEC e2 = RW_EXP(RW_SUB(RW_LOAD(x + i + 2 * RW_VL), vshift));
        const RW_VEC e3 = RW_EXP(RW_SUB(RW_LOAD(x + i + 3 * RW_VL), vshift));
        if (y) {
            RW_STORE(y + i, e0);
            RW_STORE(y + i + RW_VL, e1);
            RW_STORE(y + i + 2 * RW_VL, e2);
            RW_STORE(y + i + 3 * RW_VL, e3);
        }
        s0 = RW_ADD(s0, e0);
        s1 = RW_ADD(s1, e1);
        s2 = RW_ADD(s2, e2);
        s3 = RW_ADD(s3, e3);
    }
    for (; i + RW_VL <= n; i += RW_VL) {
        const RW_VEC e = RW_EXP(RW_SUB(RW_LOAD(x + i), vshift));
        if (y)
            RW_STORE(y + i, e);
        s0 = RW_ADD(s0, e);
    }
    RW_T s = RW_HSUM(RW_ADD(RW_ADD(s0, s1), RW_ADD(s2, s3)));
    if (i < n)
        s += RW_NAME(exp_tail)(n - i, x + i, shift, y ? y + i : NULL);
    return s;
}

/* Pairwise: split at a multiple of RW_BLOCK near the middle. */
static RW_T RW_NAME(exp_sum)(int64_t n, const RW_T *x, RW_T shift, RW_T *y)
{
    if (n <= RW_LEAF)
        return RW_NAME(exp_sum_leaf)(n, x, shift, y);
    const int64_t h = (n / 2) / RW_BLOCK * RW_BLOCK;
    return RW_NAME(exp_sum)(h, x, shift, y)
         + RW_NAME(exp_sum)(n - h, x + h, shift, y ? y + h : NULL);
}

/* y = exp(x) elementwise with the vector exp: exposed so the tests can
 * measure its error in ulp directly. */
static void RW_NAME(exp_row)(int64_t n, const RW_T *x, RW_T *y)
{
    (void)RW_NAME(exp_sum)(n, x, (RW_T)0, y);
}

static void RW_NAME(softmax)(int64_t n, const RW_T *x, RW_T *y)
{
    if (n == 0)
        return;
    const RW_T m = RW_NAME(max)(n, x);
    const RW_T inv = (RW_T)1 / RW_NAME(exp_sum)(n, x, m, y);
    const RW_VEC vinv = RW_SET1(inv);
    int64_t i = 0;
    for (; i + RW_VL <= n; i += RW_VL)
        RW_STORE(y + i, RW_MUL(RW_LOAD(y + i), vinv));
    for (; i < n; ++i)
        y[i] *= inv;
}

/* The shift of log_softmax and logsumexp: the row max, or 0 if it is not
 * finite (scipy's rule; it keeps inf - inf out of the finite rows). */
static inline RW_T RW_NAME(log_shift)(int64_t n, const RW_T *x)
{
    const RW_T m = RW_NAME(max)(n, x);
    return isfinite(m) ? m : (RW_T)0;
}

static void RW_NAME(log_softmax)(int64_t n, const RW_T *x, RW_T *y)
{
    if (n == 0)
        return;
    const RW_T shift = RW_NAME(log_shift)(n, x);
    const RW_T lse = RW_LOG(RW_NAME(exp_sum)(n, x, shift, NULL));
    const RW_VEC vshift = RW_SET1(shift), vlse = RW_SET1(lse);
    int64_t i = 0;
    for (; i + RW_VL <= n; i += RW_VL)
        RW_STORE(y + i, RW_SUB(RW_SUB(RW_LOAD(x + i), vshift), vlse));
    for (; i < n; ++i)
        y[i] = (x[i] - shift) - lse;
}

static RW_T RW_NAME(logsumexp)(int64_t n, const RW_T *x)
{
    const RW_T shift = RW_NAME(log_shift)(n, x);
    return shift + RW_LOG(RW_NAME(exp_sum)(n, x, shift, NULL));
}

#undef RW_LEAF
#undef RW_BLOCK
