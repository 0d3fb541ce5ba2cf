/* Local days of UTC microsecond instants in a zone with one offset for all time (UTC,
   Etc/GMT+5, ...): the kernel of _columns.local_days' fixed-offset path, built for several
   x86-64 levels and picked at run time (engage_fixed_days).

   Each writes the day of (instant + offset) for n instants, adds to *outside the count of
   instants outside [lo_us, hi_us) (their day is not meaningful) and moves *dmin / *dmax to
   the least and greatest day written. The day is estimated in double precision (off by at
   most one for any int64 instant) and corrected to the exact floor with integer multiplies,
   so that the loop vectorises. */
#ifndef ENGAGE_DAYS_H
#define ENGAGE_DAYS_H

#include <stdint.h>
#include "_simd.h"
#if ENGAGE_X86_DISPATCH
#include <immintrin.h>
#endif

#define ENGAGE_US_PER_DAY 86400000000LL

#define ENGAGE_FIXED_DAYS_ARGS const int64_t* ts, int64_t n, int64_t off, int64_t lo_us, \
    int64_t hi_us, int32_t* out, int64_t* outside, int32_t* dmin, int32_t* dmax
#define ENGAGE_FIXED_DAYS_CALL ts, n, off, lo_us, hi_us, out, outside, dmin, dmax

static inline __attribute__((always_inline)) void engage_fixed_days_body(
        ENGAGE_FIXED_DAYS_ARGS) {
    const double inv = 1.0 / (double)ENGAGE_US_PER_DAY;
    int64_t cnt = 0;
    int32_t mn = *dmin, mx = *dmax;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = ts[i];
        cnt += (t < lo_us) | (t >= hi_us);
        int64_t x = t + off;
        int64_t d = (int64_t)((double)x * inv);
        d -= (d * ENGAGE_US_PER_DAY > x);
        d += ((d + 1) * ENGAGE_US_PER_DAY <= x);
        int32_t d32 = (int32_t)d;
        out[i] = d32;
        mn = d32 < mn ? d32 : mn;
        mx = d32 > mx ? d32 : mx;
    }
    *outside += cnt;
    *dmin = mn;
    *dmax = mx;
}

static void engage_fixed_days_default(ENGAGE_FIXED_DAYS_ARGS) {
    engage_fixed_days_body(ENGAGE_FIXED_DAYS_CALL);
}

#if ENGAGE_X86_DISPATCH && !defined(__clang__) && __GNUC__ >= 11
#define ENGAGE_DAYS_V4 1
/* x86-64-v4: the plain loop vectorises 8 lanes wide (int64 <-> double conversions and
   int64 multiplies are AVX-512 DQ instructions) */
__attribute__((target("arch=x86-64-v4")))
static void engage_fixed_days_v4(ENGAGE_FIXED_DAYS_ARGS) {
    engage_fixed_days_body(ENGAGE_FIXED_DAYS_CALL);
}
#else
#define ENGAGE_DAYS_V4 0
#endif

#if ENGAGE_X86_DISPATCH
/* x86-64-v3 (AVX2 has neither of those): 4 instants at a time, written out. An instant x
   is converted as hi * 2**32 + lo from its 32-bit halves (hi signed: an int32 conversion;
   lo unsigned: the bits of 2**52 + lo minus 2**52), one rounding in the multiply-add.
   The estimate q is checked as q * 86400e6 == (q * 42187500) << 11, a signed 32 x 32-bit
   multiply (every valid day fits 32 bits). */
__attribute__((target("avx2,fma")))
static void engage_fixed_days_v3(ENGAGE_FIXED_DAYS_ARGS) {
    const __m256i v_off = _mm256_set1_epi64x(off);
    const __m256i v_lo = _mm256_set1_epi64x(lo_us);
    const __m256i v_hi_1 = _mm256_set1_epi64x(hi_us - 1);
    const __m256d v_inv = _mm256_set1_pd(1.0 / (double)ENGAGE_US_PER_DAY);
    const __m256d v_2_32 = _mm256_set1_pd(4294967296.0);
    const __m256i v_low_half = _mm256_set1_epi64x(0xffffffffLL);
    const __m256i v_2_52_bits = _mm256_set1_epi64x(0x4330000000000000LL);
    const __m256d v_2_52 = _mm256_set1_pd(4503599627370496.0);
    const __m256i v_mul = _mm256_set1_epi64x(ENGAGE_US_PER_DAY >> 11);
    const __m256i v_day_1 = _mm256_set1_epi64x(ENGAGE_US_PER_DAY - 1);
    const __m256i odd = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m256i cnt = _mm256_setzero_si256();
    __m128i mn = _mm_set1_epi32(*dmin), mx = _mm_set1_epi32(*dmax);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i t = _mm256_loadu_si256((const __m256i*)(ts + i));
        cnt = _mm256_sub_epi64(cnt, _mm256_or_si256(_mm256_cmpgt_epi64(v_lo, t),
                                                    _mm256_cmpgt_epi64(t, v_hi_1)));
        __m256i x = _mm256_add_epi64(t, v_off);
        __m256d hi = _mm256_cvtepi32_pd(
            _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x, odd)));
        __m256d lo = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(
            _mm256_and_si256(x, v_low_half), v_2_52_bits)), v_2_52);
        __m256d q = _mm256_floor_pd(_mm256_mul_pd(_mm256_fmadd_pd(hi, v_2_32, lo), v_inv));
        __m256i d = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(q));
        __m256i start = _mm256_slli_epi64(_mm256_mul_epi32(d, v_mul), 11);
        d = _mm256_add_epi64(d, _mm256_cmpgt_epi64(start, x));  /* day starts after x: -1 */
        d = _mm256_sub_epi64(d, _mm256_cmpgt_epi64(x, _mm256_add_epi64(start, v_day_1)));
        __m128i d32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(d, even));
        _mm_storeu_si128((__m128i*)(out + i), d32);
        mn = _mm_min_epi32(mn, d32);
        mx = _mm_max_epi32(mx, d32);
    }
    int64_t c[4];
    int32_t a[4], b[4];
    _mm256_storeu_si256((__m256i*)c, cnt);
    _mm_storeu_si128((__m128i*)a, mn);
    _mm_storeu_si128((__m128i*)b, mx);
    *outside += c[0] + c[1] + c[2] + c[3];
    for (int k = 0; k < 4; k++) {
        *dmin = a[k] < *dmin ? a[k] : *dmin;
        *dmax = b[k] > *dmax ? b[k] : *dmax;
    }
    engage_fixed_days_body(ts + i, n - i, off, lo_us, hi_us, out + i, outside, dmin, dmax);
}
#endif

/* the best build for the CPU at most `level` (engage_x86_level's scale) */
static void engage_fixed_days(int level, ENGAGE_FIXED_DAYS_ARGS) {
#if ENGAGE_DAYS_V4
    if (level >= 4) { engage_fixed_days_v4(ENGAGE_FIXED_DAYS_CALL); return; }
#endif
#if ENGAGE_X86_DISPATCH
    if (level >= 3) { engage_fixed_days_v3(ENGAGE_FIXED_DAYS_CALL); return; }
#endif
    engage_fixed_days_default(ENGAGE_FIXED_DAYS_CALL);
}

#endif
