/* Kernels built for several x86-64 targets, the best one for the CPU picked at run time.
   On other platforms and compilers each is built once, for the compiler's default target
   (where __builtin_popcountll may be a library call). */
#ifndef ENGAGE_SIMD_H
#define ENGAGE_SIMD_H

/* ENGAGE_X86_DISPATCH: 1 where functions can be built per target and picked by
   __builtin_cpu_supports or target_clones (GCC, or clang 14 and newer, on x86-64 Linux
   with glibc). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) \
    && (!defined(__clang__) || __clang_major__ >= 14)
#define ENGAGE_X86_DISPATCH 1
#else
#define ENGAGE_X86_DISPATCH 0
#endif

/* ENGAGE_POPCNT_CLONES: before a C function that counts bits: built with and without the
   popcnt instruction, the right one picked when the module loads (an ifunc). */
#if ENGAGE_X86_DISPATCH
#define ENGAGE_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define ENGAGE_POPCNT_CLONES
#endif

/* engage_x86_level(): the x86-64 micro-architecture level of the CPU for the kernels built
   per level: 4 (AVX-512 F, BW, CD, DQ, VL), 3 (AVX2, FMA, BMI2), else 0 (and 0 wherever
   there is no dispatch). */
static inline int engage_x86_level(void) {
#if ENGAGE_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl"))
        return 4;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("bmi2"))
        return 3;
#endif
    return 0;
}

/* ENGAGE_V3_V4_CLONES: before a plain loop the compiler vectorises: built for x86-64-v4,
   x86-64-v3 and the default target, the best picked when the module loads. */
#if ENGAGE_X86_DISPATCH && !defined(__clang__) && __GNUC__ >= 11
#define ENGAGE_V3_V4_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ENGAGE_V3_V4_CLONES
#endif

#endif
