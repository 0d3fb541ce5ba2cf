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

/* ENGAGE_AVX512_CLONES: the same for a loop of 64-bit integer and floating-point arithmetic
   that the compiler vectorises 8 lanes wide on x86-64-v4 (AVX-512 F, BW, CD, DQ, VL:
   int64 <-> double conversions and int64 multiplies), else for the default target
   (GCC 11 and newer know the x86-64-v4 level). */
#if ENGAGE_X86_DISPATCH && !defined(__clang__) && __GNUC__ >= 11
#define ENGAGE_AVX512_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define ENGAGE_AVX512_CLONES
#endif

#endif
