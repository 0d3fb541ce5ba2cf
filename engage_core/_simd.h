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

/* AVX2 sums of popcounts (AVX2 has no vector popcount: each byte's count from two nibble
   lookups, summed per 64-bit lane), for the window counts of the day bitmaps. */
#if ENGAGE_X86_DISPATCH
#include <stdint.h>
#include <immintrin.h>
__attribute__((target("avx2"))) static inline __m256i engage_pop4(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i c = _mm256_add_epi8(
        _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nib)),
        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), nib)));
    return _mm256_sad_epu8(c, _mm256_setzero_si256());
}
__attribute__((target("avx2"))) static inline int64_t engage_sum4(__m256i acc) {
    int64_t x[4];
    _mm256_storeu_si256((__m256i*)x, acc);
    return x[0] + x[1] + x[2] + x[3];
}
/* the popcounts of a[j] | b[j] (of a[j] when b is NULL), j < n */
__attribute__((target("avx2,popcnt"))) static inline int64_t engage_popsum_or_avx2(
        const uint64_t* a, const uint64_t* b, int64_t n) {
    __m256i acc = _mm256_setzero_si256();
    int64_t j = 0, s;
    for (; j + 4 <= n; j += 4) {
        __m256i v = _mm256_loadu_si256((const __m256i*)(a + j));
        if (b) v = _mm256_or_si256(v, _mm256_loadu_si256((const __m256i*)(b + j)));
        acc = _mm256_add_epi64(acc, engage_pop4(v));
    }
    s = engage_sum4(acc);
    for (; j < n; j++) s += __builtin_popcountll(b ? a[j] | b[j] : a[j]);
    return s;
}
/* the popcounts of row[j] & ~seen[j], with seen[j] |= row[j], j < n */
__attribute__((target("avx2,popcnt"))) static inline int64_t engage_popsum_new_avx2(
        const uint64_t* row, uint64_t* seen, int64_t n) {
    __m256i acc = _mm256_setzero_si256();
    int64_t j = 0, s;
    for (; j + 4 <= n; j += 4) {
        __m256i r = _mm256_loadu_si256((const __m256i*)(row + j));
        __m256i sn = _mm256_loadu_si256((const __m256i*)(seen + j));
        acc = _mm256_add_epi64(acc, engage_pop4(_mm256_andnot_si256(sn, r)));
        _mm256_storeu_si256((__m256i*)(seen + j), _mm256_or_si256(sn, r));
    }
    s = engage_sum4(acc);
    for (; j < n; j++) {
        s += __builtin_popcountll(row[j] & ~seen[j]);
        seen[j] |= row[j];
    }
    return s;
}
#endif

#endif
