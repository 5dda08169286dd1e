/* cattn_cpu.h -- which SIMD level this CPU can run.
 *
 * The default build compiles every kernel for every level (the AVX2 and
 * AVX-512 ones inside `#pragma GCC target` regions), so one binary runs on
 * any x86-64; this header only answers "what may run here".  The choice of
 * what *does* run (honouring CATTN_ISA) lives in _cpu.pyx.
 */
#ifndef CATTN_CPU_H
#define CATTN_CPU_H

enum cattn_isa {
    CATTN_ISA_GENERIC = 0,  /* portable C, baseline x86-64 (SSE2) */
    CATTN_ISA_AVX2 = 1,     /* AVX2 + FMA3 + F16C, 256-bit */
    CATTN_ISA_AVX512 = 2,   /* AVX-512F (+ FMA3, F16C), 512-bit */
    CATTN_ISA_AVX512_BF16 = 3  /* + AVX512BW, AVX512_BF16: bf16 products */
};

#if defined(__x86_64__) && defined(__GNUC__)
#define CATTN_X86 1
#else
#define CATTN_X86 0
#endif

/* The row of a kernel table for `isa`.  A level adds instructions that
 * only some kernels use (AVX512_BF16: the bf16 tile products of
 * gemm/cattn_gemm_bf16.h); a table without rows above `top` runs its `top`
 * row there.  Off x86 only the portable row exists. */
static inline int cattn_isa_row(int isa, int top)
{
    return CATTN_X86 ? (isa < top ? isa : top) : CATTN_ISA_GENERIC;
}

/* The best level the CPU and the OS support.  libgcc's cpu model checks
 * XCR0 as well, so a level the OS does not save registers for is not
 * reported. */
static inline int cattn_cpu_best_isa(void)
{
#if CATTN_X86
    __builtin_cpu_init();
    /* F16C: the 16-bit storage conversions of both levels (convert/). */
    const int f16c = __builtin_cpu_supports("f16c");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")
            && f16c)
        return __builtin_cpu_supports("avx512bw")
                       && __builtin_cpu_supports("avx512bf16")
                   ? CATTN_ISA_AVX512_BF16 : CATTN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && f16c)
        return CATTN_ISA_AVX2;
#endif
    return CATTN_ISA_GENERIC;
}

#endif
