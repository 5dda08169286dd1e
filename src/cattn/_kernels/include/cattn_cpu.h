/* cattn_cpu.h -- which SIMD level this CPU can run.
 *
 * The default build compiles every kernel for every level of its
 * architecture (the AVX2, AVX-512 and BF16 ones inside target regions,
 * cattn_target.h), so one binary runs on any x86-64 or any ARMv8-A; this
 * header only answers "what may run here".  The choice of
 * what *does* run (honouring CATTN_ISA) lives in _cpu.pyx.
 */
#ifndef CATTN_CPU_H
#define CATTN_CPU_H

#if defined(__x86_64__) && defined(__GNUC__)
#define CATTN_X86 1
#else
#define CATTN_X86 0
#endif
#if defined(__aarch64__) && defined(__GNUC__)
#define CATTN_ARM64 1
#else
#define CATTN_ARM64 0
#endif

/* The levels of this architecture, each including the ones before it.  A
 * kernel table has one row per level up to the last one that adds a
 * kernel of its own: CATTN_ISA_VECTOR for the float32/float64 tables,
 * CATTN_ISA_BF16_PAIRS for the bf16 pair products
 * (gemm/cattn_gemm_bf16.h), whose lower rows are empty.  Elsewhere only
 * the portable level exists. */
enum cattn_isa {
    CATTN_ISA_GENERIC = 0,  /* portable C: baseline x86-64 (SSE2), ARMv8 */
#if CATTN_X86
    CATTN_ISA_AVX2 = 1,     /* AVX2 + FMA3 + F16C, 256-bit */
    CATTN_ISA_AVX512 = 2,   /* AVX-512F (+ FMA3, F16C), 512-bit */
    CATTN_ISA_AVX512_BF16 = 3,  /* + AVX512BW, AVX512_BF16: bf16 products */
    CATTN_ISA_VECTOR = CATTN_ISA_AVX512,
    CATTN_ISA_BF16_PAIRS = CATTN_ISA_AVX512_BF16,
#elif CATTN_ARM64
    CATTN_ISA_NEON = 1,     /* Advanced SIMD (every ARMv8-A), 128-bit */
    CATTN_ISA_NEON_BF16 = 2,    /* + BFDOT (FEAT_BF16): bf16 products */
    CATTN_ISA_VECTOR = CATTN_ISA_NEON,
    CATTN_ISA_BF16_PAIRS = CATTN_ISA_NEON_BF16,
#else
    CATTN_ISA_VECTOR = CATTN_ISA_GENERIC,
    CATTN_ISA_BF16_PAIRS = CATTN_ISA_GENERIC,
#endif
    CATTN_ISA_COUNT = CATTN_ISA_BF16_PAIRS + 1
};

/* The levels' names, indexed by enum cattn_isa (CATTN_ISA=<name>). */
static const char *const cattn_isa_names[CATTN_ISA_COUNT] = {
    "generic",
#if CATTN_X86
    "avx2", "avx512", "avx512_bf16",
#elif CATTN_ARM64
    "neon", "neon_bf16",
#endif
};

/* Forces the inlining that specialises one kernel body on a constant flag
 * (two entry points, each with its own loop and no branch in it). */
#if defined(__GNUC__) || defined(__clang__)
#define CATTN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CATTN_ALWAYS_INLINE inline
#endif

/* The row of a kernel table for `isa`: a table without rows above `top`
 * runs its `top` row at the higher levels. */
static inline int cattn_isa_row(int isa, int top)
{
    return isa < top ? isa : top;
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

#if CATTN_ARM64
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1 << 14)   /* older C libraries' headers */
#endif
#endif

static inline int cattn_cpu_has_bf16(void)
{
#if defined(__linux__)
    return (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#else
    return 0;
#endif
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
#elif CATTN_ARM64
    /* Advanced SIMD is part of every ARMv8-A application core; BFDOT is
     * an optional extension the kernel reports (Linux: HWCAP2_BF16). */
    return cattn_cpu_has_bf16() ? CATTN_ISA_NEON_BF16 : CATTN_ISA_NEON;
#endif
    return CATTN_ISA_GENERIC;
}

#endif
