/* pack.tmpl.h -- copy blocks of A and B into the micro-kernel's panel layout,
 * per dtype x ISA, in the RW_* dialect of simd/ (instantiated by
 * simd/instantiate.h).  Plain loops: packing is O(m·k + k·n) against the
 * O(m·n·k) of the product, so it needs to stream well, not to be clever.
 * Any strides are accepted (negative, zero for a broadcast operand).
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
 * the ISA has a block transpose (RW_TRANSPOSE: AVX-512's and AVX2's
 * float32, transpose_avx512.h and transpose_avx2.h); the result is the
 * same bits.
 * Unit-stride runs are copied with plain loops, not memcpy: they are short
 * (MR or NR elements) and a library call per run costs more than the copy
 * (CATTN_NO_MEMCPY stops GCC from turning the loops back into memcpy calls).
 */
#include "../cattn_target.h"   /* CATTN_NO_MEMCPY */

/* The compute dtype as its own source (the body: pack_body.h). */
#define SRC_NAME RW_NAME
#define SRC_T RW_T
#define SRC_ONE(p) (*(p))
#define SRC_VEC RW_LOAD
#ifdef RW_TRANSPOSE
#define SRC_TRANSPOSE RW_TRANSPOSE
#endif
#include "pack_body.h"
#include "src_undef.h"

