/* ENGAGE_POPCNT_CLONES: before a C function that counts bits, builds it twice on x86-64
   Linux with glibc, with and without the popcnt instruction, the right one picked when the
   module loads (an ifunc); elsewhere the function is built once for the compiler's default
   target (where __builtin_popcountll may be a library call). */
#ifndef ENGAGE_SIMD_H
#define ENGAGE_SIMD_H
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) \
    && (!defined(__clang__) || __clang_major__ >= 14)
#define ENGAGE_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define ENGAGE_POPCNT_CLONES
#endif
#endif
