/* day_bitmaps' fill (engage_core/_activity.pyx): included there after the definitions of
   ENGAGE_PREFETCH and ENGAGE_ATOMIC_OR. */
#ifndef ENGAGE_BITMAPS_H
#define ENGAGE_BITMAPS_H
#include <stdint.h>
#include <string.h>

/* day_bitmaps' rows a..b: bit user[i] of row day[i] - first (or of_day of it) of bits;
   a day several threads reach (shared) gets an atomic OR, and only for a new bit. Rows
   out of time order hit bitmaps all over: the word of the row 16 ahead is fetched
   meanwhile (in time order the day's bitmap is in cache already). With key (then user
   is not read), the user of row i is the slot key[i - s0] - lo (a RangeIndex not
   numbered yet: no pass writes the slots first; in time order only).
   The rows *clear.. of bits that are not shared are this thread's to clear: each is
   cleared when the rows first reach it or a later one (in time order, just before its
   bits are set: the clearing writes bring its lines into cache in sequence, where bits
   set in a bitmap cleared long before each fetch a line from memory); *clear is left
   at the first row not cleared yet, the rest being cleared by engage_clear_rest. */
static inline __attribute__((always_inline)) void engage_fill_body(
        const int32_t* restrict user, const int64_t* restrict key, int64_t s0, int64_t lo,
        const int32_t* restrict day, const uint8_t* restrict mask,
        const int32_t* restrict of_day, int32_t first, int64_t a, int64_t b,
        uint64_t* restrict bits, int64_t words, const uint8_t* restrict shared,
        int shuffled, int32_t* clear_at) {
    int32_t clear = *clear_at;
    for (int64_t i = a; i < b; i++) {
        if (!key && shuffled && i + 16 < b && user[i + 16] >= 0) {
            int32_t d16 = day[i + 16] - first;
            ENGAGE_PREFETCH(bits + (int64_t)(of_day ? of_day[d16] : d16) * words
                            + (user[i + 16] >> 6));
        }
        int32_t u = key ? (int32_t)(key[i - s0] - lo) : user[i];
        if (u < 0 || (mask && !mask[i])) continue;
        int32_t d = day[i] - first;
        if (of_day) d = of_day[d];
        if (d >= clear) {
            for (; clear <= d; clear++)
                if (!shared[clear]) memset(bits + (int64_t)clear * words, 0, words * 8);
        }
        uint64_t* p = bits + (int64_t)d * words + (u >> 6);
        uint64_t x = (uint64_t)1 << (u & 63);
        if (!shared[d]) *p |= x;
        else if (!(*p & x)) ENGAGE_ATOMIC_OR(p, x);
    }
    *clear_at = clear;
}
static void engage_clear_rest(uint64_t* bits, int64_t words, const uint8_t* shared,
                              int32_t clear, int32_t own_end) {
    for (; clear <= own_end; clear++)
        if (!shared[clear]) memset(bits + (int64_t)clear * words, 0, words * 8);
}
static void engage_fill_bitmaps(const int32_t* restrict user, const int32_t* restrict day,
                                const uint8_t* restrict mask,
                                const int32_t* restrict of_day, int32_t first, int64_t a,
                                int64_t b, uint64_t* restrict bits, int64_t words,
                                const uint8_t* restrict shared, int shuffled,
                                int32_t own, int32_t own_end) {
    int32_t clear = own;
    engage_fill_body(user, NULL, 0, 0, day, mask, of_day, first, a, b, bits, words, shared,
                     shuffled, &clear);
    engage_clear_rest(bits, words, shared, clear, own_end);
}
/* engage_fill_bitmaps' rows a..b of one chunk of keys (starting at row s0), in time
   order; *clear carries from one chunk to the next */
static void engage_fill_bitmaps_keys(const int64_t* restrict key, int64_t s0, int64_t lo,
                                     const int32_t* restrict day,
                                     const uint8_t* restrict mask,
                                     const int32_t* restrict of_day, int32_t first,
                                     int64_t a, int64_t b, uint64_t* restrict bits,
                                     int64_t words, const uint8_t* restrict shared,
                                     int32_t* clear) {
    engage_fill_body(NULL, key, s0, lo, day, mask, of_day, first, a, b, bits, words,
                     shared, 0, clear);
}

#endif
