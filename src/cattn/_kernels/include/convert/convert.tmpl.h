/* convert.tmpl.h -- the 16-bit storage dtypes to and from float32, the
 * compute dtype of 16-bit inputs (only the float32 instantiations define
 * them; RW_IS_F32).  Rounding to 16 bits is to nearest, ties to even, and
 * keeps inf, NaN (quiet) and subnormals; widening is exact.
 *
 *   from_f16(n, src, dst), to_f16(n, src, dst):   IEEE binary16
 *   from_bf16(n, src, dst), to_bf16(n, src, dst): bfloat16 (the top half
 *       of a float32; what ml_dtypes.bfloat16 stores)
 *
 * float16 goes through the compiler's _Float16 conversions (the current
 * rounding mode, which the kernels never change: nearest-even), or the
 * same conversions on the bits without one (cattn_convert.h); bfloat16
 * through the bits: widening is a shift, narrowing adds 0x7FFF plus the
 * kept part's lowest bit before the shift (nearest, ties to even; an
 * overflow carries into the exponent and gives inf, as it must), and a
 * NaN keeps its sign and top payload with the quiet bit set.
 */
#if RW_IS_F32
static void RW_NAME(from_f16)(int64_t n, const uint16_t *src, float *dst)
{
    int64_t i = 0;
#if RW_VL > 1
    /* Whole vectors by the level's widening (F16C, NEON's fcvtl): GCC 12
     * leaves the _Float16 loop below scalar, one vcvtph2ps per element,
     * and its speed then hung on where the linker put it (2x between two
     * builds of the same source, a loop across a 64-byte line). */
    for (; i + RW_VL <= n; i += RW_VL)
        RW_STORE(dst + i, RW_WIDEN_F16(src + i));
#endif
    for (; i < n; ++i)
        dst[i] = cattn_f16_to_f32(src[i]);
}

static void RW_NAME(to_f16)(int64_t n, const float *src, uint16_t *dst)
{
    int64_t i = 0;
#if RW_VL > 1
    for (; i + RW_VL <= n; i += RW_VL)       /* as from_f16 */
        RW_NARROW_F16(dst + i, RW_LOAD(src + i));
#endif
#if CATTN_HAS_FLOAT16
    _Float16 *d = (_Float16 *)dst;
    for (; i < n; ++i)
        d[i] = (_Float16)src[i];
#else
    for (; i < n; ++i)
        dst[i] = cattn_f32_to_f16_bits(src[i]);
#endif
}

static void RW_NAME(from_bf16)(int64_t n, const uint16_t *src, float *dst)
{
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, sizeof u);
    }
}

static void RW_NAME(to_bf16)(int64_t n, const float *src, uint16_t *dst)
{
    for (int64_t i = 0; i < n; ++i)
        dst[i] = cattn_f32_to_bf16(src[i]);
}
#endif
