/* generic_ops.h -- scalar "vectors" of one lane for the portable
 * instantiations (generic_f32.h, generic_f64.h). */
#define RW_VL 1
#define RW_LOAD(p) (*(p))
#define RW_STORE(p, v) (*(p) = (v))
#define RW_SET1(v) (v)
#define RW_ADD(a, b) ((a) + (b))
#define RW_SUB(a, b) ((a) - (b))
#define RW_MUL(a, b) ((a) * (b))
#define RW_DIV(a, b) ((a) / (b))
#define RW_MAX(a, b) ((b) > (a) ? (b) : (a))
#define RW_FMA(a, b, c) ((a) * (b) + (c))
#define RW_HSUM(v) (v)
#define RW_HMAX(v) (v)
#define RW_SELECT_LT(a, t, x, y) ((a) < (t) ? (x) : (y))
#define RW_ALL_LT(a, t) ((a) < (t))
