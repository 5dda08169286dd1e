/* cattn_cpu.h -- which SIMD level this CPU can run.
 *
 * The default build compiles every kernel for every level (the AVX2 and
 * AVX-512 ones inside target regions (cattn_target.h)), so one binary runs on
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

#if CATTN_X86
#include <cpuid.h>

/* CPUID feature bits the compilers' __builtin_cpu_supports does not know
 * everywhere (clang 14 knows neither "f16c" nor "avx512bf16"): F16C is
 * leaf 1 ECX bit 29, AVX512_BF16 leaf 7 subleaf 1 EAX bit 5.  Both only
 * add instructions to levels whose registers the checks below already
 * found saved by the OS. */
static inline int cattn_cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}

static inline int cattn_cpu_has_avx512bf16(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
}
#endif

/* The best level the CPU and the OS support.  The compiler's cpu model
 * checks XCR0 as well, so a level the OS does not save registers for is
 * not reported. */
static inline int cattn_cpu_best_isa(void)
{
#if CATTN_X86
    __builtin_cpu_init();
    /* F16C: the 16-bit storage conversions of both levels (convert/). */
    const int f16c = cattn_cpu_has_f16c();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")
            && f16c)
        return __builtin_cpu_supports("avx512bw")
                       && cattn_cpu_has_avx512bf16()
                   ? CATTN_ISA_AVX512_BF16 : CATTN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && f16c)
        return CATTN_ISA_AVX2;
#endif
    return CATTN_ISA_GENERIC;
}

#endif
