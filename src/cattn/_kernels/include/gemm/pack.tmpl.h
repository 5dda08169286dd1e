/* pack.tmpl.h -- copy blocks of A and B into the micro-kernel's panel layout,
 * per dtype x ISA, in the RW_* dialect of simd/ (instantiated by
 * simd/instantiate.h).  Plain loops: packing is O(m·k + k·n) against the
 * O(m·n·k) of the product, so it needs to stream well, not to be clever.  Any strides are accepted (negative, zero for a
 * * broadcast operand).
 *
 *   pack_a: A block mc x kc -> ceil(mc/mr) panels of mr x kc, by columns
 *           (panel q holds rows q*mr.., element (i, p) at q*mr*kc + p*mr + i),
 *           rows past mc zero-filled.
 *   pack_b: B block kc x nc -> ceil(nc/nr) panels of kc x nr, by rows
 *           (panel q holds columns q*nr.., element (p, j) at q*nr*kc + p*nr + j),
 *           columns past nc zero-filled.
 * Zero padding keeps the micro-kernel free of edge cases in its inner loop.
 * The two transposing cases -- A stored by rows (cs_a == 1), B stored by
 * columns (rs_b == 1) -- copy RW_TB x RW_TB blocks through registers where
 * the ISA has a block transpose (RW_TRANSPOSE: AVX-512,
 * transpose_avx512.h); the result is the same bits.
 * Unit-stride runs are copied with plain loops, not memcpy: they are short
 * (MR or NR elements) and a library call per run costs more than the copy
 * (CATTN_NO_MEMCPY stops GCC from turning the loops back into memcpy calls).
 */
#ifndef CATTN_NO_MEMCPY
#define CATTN_NO_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif

/* Pack all ceil(mc/mr) panels of an mc x kc block of A (a thread's own). */
CATTN_NO_MEMCPY static void RW_NAME(gemm_pack_a)(
    int64_t mc, int64_t kc, const RW_T *a, int64_t rs_a, int64_t cs_a,
    int64_t mr, RW_T *dst)
{
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
        const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
        const RW_T *src = a + i0 * rs_a;
#ifdef RW_TRANSPOSE
        if (cs_a == 1 && rows == mr && mr <= RW_TB) {
            int64_t p = 0;
            for (; p + RW_TB <= kc; p += RW_TB)
                RW_TRANSPOSE((int)mr, src + p, rs_a, dst + p * mr, mr);
            for (; p < kc; ++p)
                for (int64_t i = 0; i < mr; ++i)
                    dst[p * mr + i] = src[i * rs_a + p];
            dst += mr * kc;
            continue;
        }
#endif
        if (rs_a == 1 && rows == mr) {
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t i = 0; i < mr; ++i)
                    dst[p * mr + i] = src[p * cs_a + i];
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                RW_T *d = dst + p * mr;
                int64_t i = 0;
                for (; i < rows; ++i)
                    d[i] = src[i * rs_a + p * cs_a];
                for (; i < mr; ++i)
                    d[i] = 0;
            }
        }
        dst += mr * kc;
    }
}

/* Pack panels [q0, q1) of a kc x nc block of B: threads share the packed
 * block and each packs a range of its panels. */
CATTN_NO_MEMCPY static void RW_NAME(gemm_pack_b)(
    int64_t kc, int64_t nc, const RW_T *b, int64_t rs_b, int64_t cs_b,
    int64_t nr, int64_t q0, int64_t q1, RW_T *dst)
{
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = q * nr;
        const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
        const RW_T *src = b + j0 * cs_b;
        RW_T *d = dst + q * nr * kc;
        if (cs_b == 1 && cols == nr) {
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t j = 0; j < nr; ++j)
                    d[p * nr + j] = src[p * rs_b + j];
#ifdef RW_TRANSPOSE
        } else if (rs_b == 1 && cols == nr && nr % RW_TB == 0) {
            int64_t p0 = 0;
            for (; p0 + RW_TB <= kc; p0 += RW_TB)
                for (int64_t j = 0; j < nr; j += RW_TB)
                    RW_TRANSPOSE(RW_TB, src + j * cs_b + p0, cs_b,
                                 d + p0 * nr + j, nr);
            for (int64_t p = p0; p < kc; ++p)
                for (int64_t j = 0; j < nr; ++j)
                    d[p * nr + j] = src[j * cs_b + p];
#endif
        } else if (rs_b == 1 && cols == nr) {
            /* B is stored by columns (e.g. a weight used transposed): copy
             * 16 rows at a time so every column read is one contiguous run
             * and the written rows stay in L1. */
            for (int64_t p0 = 0; p0 < kc; p0 += 16) {
                const int64_t p1 = kc - p0 < 16 ? kc : p0 + 16;
                for (int64_t j = 0; j < nr; ++j)
                    for (int64_t p = p0; p < p1; ++p)
                        d[p * nr + j] = src[j * cs_b + p];
            }
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                int64_t j = 0;
                for (; j < cols; ++j)
                    d[p * nr + j] = src[p * rs_b + j * cs_b];
                for (; j < nr; ++j)
                    d[p * nr + j] = 0;
            }
        }
    }
}

