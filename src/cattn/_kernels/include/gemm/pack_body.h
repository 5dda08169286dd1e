/* pack_body.h -- the packers of pack.tmpl.h, for one source type (included
 * with the SRC_* macros of src.h: the compute dtype itself, or a 16-bit
 * storage dtype widened on the fly by convert/read.tmpl.h).  The panels are
 * always of the compute dtype RW_T. */
/* Pack all ceil(mc/mr) panels of an mc x kc block of A (a thread's own). */
CATTN_NO_MEMCPY static void SRC_NAME(gemm_pack_a)(
    int64_t mc, int64_t kc, const void *a_, int64_t rs_a, int64_t cs_a,
    int64_t mr, RW_T *dst)
{
    const SRC_T *a = (const SRC_T *)a_;
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
        const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
        const SRC_T *src = a + i0 * rs_a;
#ifdef SRC_TRANSPOSE
        if (cs_a == 1 && rows == mr && mr <= RW_TB) {
            int64_t p = 0;
            for (; p + RW_TB <= kc; p += RW_TB)
                SRC_TRANSPOSE((int)mr, src + p, rs_a, dst + p * mr, mr);
            for (; p < kc; ++p)
                for (int64_t i = 0; i < mr; ++i)
                    dst[p * mr + i] = SRC_ONE(src + i * rs_a + p);
            dst += mr * kc;
            continue;
        }
#endif
        if (rs_a == 1 && rows == mr) {
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t i = 0; i < mr; ++i)
                    dst[p * mr + i] = SRC_ONE(src + p * cs_a + i);
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                RW_T *d = dst + p * mr;
                int64_t i = 0;
                for (; i < rows; ++i)
                    d[i] = SRC_ONE(src + i * rs_a + p * cs_a);
                for (; i < mr; ++i)
                    d[i] = 0;
            }
        }
        dst += mr * kc;
    }
}

/* Pack panels [q0, q1) of a kc x nc block of B: threads share the packed
 * block and each packs a range of its panels. */
CATTN_NO_MEMCPY static void SRC_NAME(gemm_pack_b)(
    int64_t kc, int64_t nc, const void *b_, int64_t rs_b, int64_t cs_b,
    int64_t nr, int64_t q0, int64_t q1, RW_T *dst)
{
    const SRC_T *b = (const SRC_T *)b_;
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = q * nr;
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        const SRC_T *src = b + j0 * cs_b;
        RW_T *d = dst + q * nr * kc;
        if (cs_b == 1 && cols == nr && nr % RW_VL == 0) {
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t j = 0; j < nr; j += RW_VL)
                    RW_STORE(d + p * nr + j, SRC_VEC(src + p * rs_b + j));
#ifdef SRC_TRANSPOSE
        } else if (rs_b == 1 && cols == nr && nr % RW_TB == 0) {
            int64_t p0 = 0;
            for (; p0 + RW_TB <= kc; p0 += RW_TB)
                for (int64_t j = 0; j < nr; j += RW_TB)
                    SRC_TRANSPOSE(RW_TB, src + j * cs_b + p0, cs_b,
                                 d + p0 * nr + j, nr);
            for (int64_t p = p0; p < kc; ++p)
                for (int64_t j = 0; j < nr; ++j)
                    d[p * nr + j] = SRC_ONE(src + j * cs_b + p);
#endif
        } else if (rs_b == 1 && cols == nr) {
            /* B is stored by columns (e.g. a weight used transposed): copy
             * 16 rows at a time so every column read is one contiguous run
             * and the written rows stay in L1. */
            for (int64_t p0 = 0; p0 < kc; p0 += 16) {
                const int64_t p1 = kc - p0 < 16 ? kc : p0 + 16;
                for (int64_t j = 0; j < nr; ++j)
                    for (int64_t p = p0; p < p1; ++p)
                        d[p * nr + j] = SRC_ONE(src + j * cs_b + p);
            }
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                int64_t j = 0;
                for (; j < cols; ++j)
                    d[p * nr + j] = SRC_ONE(src + p * rs_b + j * cs_b);
                for (; j < nr; ++j)
                    d[p * nr + j] = 0;
            }
        }
    }
}

