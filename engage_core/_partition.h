/* Sorting the rows of a log that comes in no useful order (shuffled) by key, for
   _sequences.sort_rows: the placement pass (engage_partition_place) and the sort of each
   key's rows (engage_sort_key_by_time).

   The counting sort's places are written in two passes that stay in cache instead of one
   pass of random writes.

   Placing each row straight at its key's place writes four arrays (rows, day offsets,
   times, payload) at a random place each: on 10M shuffled rows nearly every write missed
   the cache (and fetched its line first). Here the keys are cut into buckets of KB
   consecutive keys (about 10k rows each) and
     1. each thread writes its rows, in its row order, to the part of its bucket's final
        region that is its own (the region of bucket b is where its keys' rows end up;
        thread t's part follows the earlier threads' parts): about a thousand write
        streams, each filling whole cache lines;
     2. each bucket (in parallel) is copied aside and its rows written back at their keys'
        places, a stable counting sort within the bucket's region (in cache);
     3. each of the bucket's keys has its rows sorted there and then, still in cache.
   Each key then holds thread 0's rows in row order, then thread 1's, ...: the order the
   one-pass placement gives, so the result is the same bit for bit. 10M shuffled rows with
   days, times and event codes, 2 threads: 430 -> 340 ms for the whole sort. */
#ifndef ENGAGE_PARTITION_H
#define ENGAGE_PARTITION_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_sumsort.h"

/* rows per bucket aimed at, and the largest bucket region copied aside (else: declined) */
#define ENGAGE_BUCKET_ROWS 16384
#define ENGAGE_BUCKET_MAX (1 << 20)

/* Whether the times look time-ordered: 9 in 10 of 1024 evenly spaced samples no earlier
   than the one before. Such a log's rows of one key come in bursts (a session's events),
   and placing them in one pass keeps the places at hand in cache (10M rows: 85 ms, against
   105 ms in two passes); a shuffled log's do not. */
static int engage_looks_ordered(const int64_t* ts_addr, const int64_t* ts_start, int64_t n) {
    int64_t s, up = 0, prev = 0, c = 0, i, v;
    const int64_t samples = 1024;
    if (n < 2 * samples)
        return 1;
    for (s = 0; s < samples; s++) {
        i = n * s / samples;
        while (i >= ts_start[c + 1])
            c++;
        v = ((const int64_t*)(intptr_t)ts_addr[c])[i - ts_start[c]];
        up += s > 0 && v >= prev;
        prev = v;
    }
    return up * 10 >= (samples - 1) * 9;
}

/* One key's rows sorted by (major, ts, row) as 64-bit numbers: (ts - least ts) shifted
   left past the row's position (positions follow row numbers: the placement keeps row
   order within a key), sorted by _sumsort.h's radix / insertion sort, which is much
   cheaper than sorting 24-byte records with a three-field comparison. rows: the key's
   rows (increasing), sts: their times; smaj and spay (or NULL: no major, all equal; no
   payload): their sorted copies. Returns 0 when sorted, 1 when declined (the times span
   too wide a range to pack, or a major goes down along time order: the caller sorts
   records), 2 when out of memory. */
static int engage_sort_key_by_time(int32_t* rows, int32_t* smaj, int64_t* sts, int32_t* spay,
                                   int64_t n) {
    uint64_t small[2 * 64], *keys = small, mask;
    int64_t small_tmp[64], i, tmin = sts[0], tmax = sts[0];
    int bits = 0, fail = 0;
    void* tmp;
    while (((int64_t)1 << bits) < n)
        bits++;
    for (i = 1; i < n; i++)
        if (rows[i] <= rows[i - 1])
            return 1;  /* positions would not break ties as row numbers do */
    for (i = 1; i < n; i++) {
        tmin = sts[i] < tmin ? sts[i] : tmin;
        tmax = sts[i] > tmax ? sts[i] : tmax;
    }
    if (bits >= 32 || (((uint64_t)tmax - (uint64_t)tmin) >> (63 - bits)) != 0)
        return 1;
    if (n > 64) {
        keys = (uint64_t*)malloc((size_t)n * 2 * sizeof(uint64_t));
        if (keys == NULL)
            return 2;
    }
    mask = ((uint64_t)1 << bits) - 1;
    for (i = 0; i < n; i++)
        keys[i] = (((uint64_t)sts[i] - (uint64_t)tmin) << bits) | (uint64_t)i;
    engage_sort_keys(keys, keys + n, n);
    for (i = 1; smaj != NULL && i < n; i++)
        if (smaj[keys[i] & mask] < smaj[keys[i - 1] & mask])
            break;
    if (smaj != NULL && i < n) {
        fail = 1;
    } else {  /* apply the order: each copy through a scratch copy of itself */
        tmp = n <= 64 ? (void*)small_tmp : malloc((size_t)n * sizeof(int64_t));
        if (tmp == NULL) {
            fail = 2;
        } else {
            int32_t* t32 = (int32_t*)tmp;
            memcpy(t32, rows, n * sizeof(int32_t));
            for (i = 0; i < n; i++)
                rows[i] = t32[keys[i] & mask];
            if (smaj != NULL) {
                memcpy(t32, smaj, n * sizeof(int32_t));
                for (i = 0; i < n; i++)
                    smaj[i] = t32[keys[i] & mask];
            }
            if (spay != NULL) {
                memcpy(t32, spay, n * sizeof(int32_t));
                for (i = 0; i < n; i++)
                    spay[i] = t32[keys[i] & mask];
            }
            for (i = 0; i < n; i++)
                sts[i] = (int64_t)((keys[i] >> bits) + (uint64_t)tmin);
            if (tmp != (void*)small_tmp)
                free(tmp);
        }
    }
    if (keys != small)
        free(keys);
    return fail;
}

/* Whether one key's rows (increasing) are already in (major, ts, row) order: neither the
   major (NULL: none) nor the time goes down. */
static inline int engage_key_in_order(const int32_t* smaj, const int64_t* sts, int64_t n) {
    int64_t i;
    for (i = 1; i < n; i++)
        if (sts[i] < sts[i - 1] || (smaj != NULL && smaj[i] < smaj[i - 1]))
            return 0;
    return 1;
}

/* Returns 0 when placed with every key's rows sorted, 3 when placed with some keys'
   sorts declined (engage_sort_key_by_time: the caller sorts those, the rest already in
   order), 1 when declined (the caller places and sorts the rows itself), 2 when out of
   memory. key: n keys (< 0: row left out); mask: NULL or 0 = left out; major: NULL or
   each row's major (minus base); ts: chunk addresses and starts (n_chunks + 1);
   pay: NULL or int32 per row; offsets[n_keys + 1]: each key's first place; pos[T][n_keys
   + 1]: each thread's first place for each key, int32 (rows number under 2**31 here;
   thread t takes rows n * t / T onwards). */
static int engage_partition_place(
        const int32_t* key, int64_t n, int64_t n_keys, const uint8_t* mask,
        const int32_t* major, int32_t base, const int64_t* ts_addr, const int64_t* ts_start,
        const int32_t* pay, const int64_t* offsets, const int32_t* pos, int T,
        int32_t* rows, int32_t* smaj, int64_t* sts, int32_t* spay, int nthreads) {
    int64_t total = offsets[n_keys], kb = 1, nb, b, maxm = 0;
    int shift = 0, fail = 0, declined = 0;
    int64_t* part;      /* [T][nb]: thread t's first place in bucket b */
    uint16_t* low;      /* each placed row's key within its bucket */
    if (n_keys < (1 << 16) || total < (1 << 20))
        return 1;  /* the keys' places fit in cache: one pass does */
    if (engage_looks_ordered(ts_addr, ts_start, n))
        return 1;
    while (shift < 16 && (kb << 1) * total <= (int64_t)ENGAGE_BUCKET_ROWS * n_keys) {
        kb <<= 1;
        shift++;
    }
    nb = (n_keys + kb - 1) >> shift;
    for (b = 0; b < nb; b++) {
        int64_t hi = (b + 1) << shift;
        int64_t m = offsets[hi < n_keys ? hi : n_keys] - offsets[b << shift];
        if (m > maxm)
            maxm = m;
    }
    if (maxm > ENGAGE_BUCKET_MAX)
        return 1;  /* a bucket too large to copy aside (a key with very many rows) */
    part = (int64_t*)malloc((size_t)T * nb * sizeof(int64_t));
    low = (uint16_t*)malloc((size_t)(total ? total : 1) * sizeof(uint16_t));
    if (part == NULL || low == NULL) {
        free(part);
        free(low);
        return 2;
    }
    /* each thread's part of each bucket: its rows of the bucket's keys, after the
       earlier threads' (a thread's count of key k: the next thread's place minus its own) */
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (b = 0; b < nb; b++) {
        int64_t k0 = b << shift, k1 = (b + 1) << shift, k, at = offsets[k0];
        int t;
        if (k1 > n_keys)
            k1 = n_keys;
        for (t = 0; t < T; t++) {
            const int32_t* mine = pos + (int64_t)t * (n_keys + 1);
            int64_t c = 0;
            part[(int64_t)t * nb + b] = at;
            if (t + 1 < T) {
                const int32_t* next = pos + (int64_t)(t + 1) * (n_keys + 1);
                for (k = k0; k < k1; k++)
                    c += (int64_t)next[k] - mine[k];
            } else {
                for (k = k0; k < k1; k++)
                    c += offsets[k + 1] - mine[k];
            }
            at += c;
        }
    }
    /* 1. rows to their thread's part of their bucket */
    #pragma omp parallel for num_threads(T) schedule(static)
    for (int t = 0; t < T; t++) {
        int64_t a = n * t / T, e = n * (t + 1) / T, i, c = 0;
        int64_t* cur = part + (int64_t)t * nb;
        while (ts_start[c + 1] <= a && ts_start[c + 1] < n)
            c++;
        for (i = a; i < e; i++) {
            int32_t k = key[i];
            int64_t p;
            while (i >= ts_start[c + 1])
                c++;
            if (k < 0 || (mask != NULL && !mask[i]))
                continue;
            p = cur[k >> shift]++;
            rows[p] = (int32_t)i;
            low[p] = (uint16_t)(k & (kb - 1));
            if (major != NULL)
                smaj[p] = major[i] - base;
            sts[p] = ((const int64_t*)(intptr_t)ts_addr[c])[i - ts_start[c]];
            if (pay != NULL)
                spay[p] = pay[i];
        }
    }
    /* 2. each bucket's rows at their keys' places (a stable counting sort in cache) */
    #pragma omp parallel num_threads(nthreads) reduction(+:fail, declined)
    {
        size_t each = (size_t)(maxm ? maxm : 1);
        int32_t* trow = (int32_t*)malloc(each * sizeof(int32_t));
        int32_t* tmaj = (int32_t*)malloc(each * sizeof(int32_t));
        int64_t* tts = (int64_t*)malloc(each * sizeof(int64_t));
        int32_t* tpay = (int32_t*)malloc(each * sizeof(int32_t));
        uint16_t* tlow = (uint16_t*)malloc(each * sizeof(uint16_t));
        int64_t* at = (int64_t*)malloc((size_t)kb * sizeof(int64_t));
        int ok = trow && tmaj && tts && tpay && tlow && at;
        if (!ok)
            fail += 1;
        #pragma omp for schedule(dynamic, 4)
        for (b = 0; b < nb; b++) {
            int64_t k0 = b << shift, k1 = (b + 1) << shift, lo, m, i, j;
            if (!ok)
                continue;
            if (k1 > n_keys)
                k1 = n_keys;
            lo = offsets[k0];
            m = offsets[k1] - lo;
            if (m < 2)
                continue;
            memcpy(trow, rows + lo, m * sizeof(int32_t));
            memcpy(tts, sts + lo, m * sizeof(int64_t));
            memcpy(tlow, low + lo, m * sizeof(uint16_t));
            if (major != NULL)
                memcpy(tmaj, smaj + lo, m * sizeof(int32_t));
            if (pay != NULL)
                memcpy(tpay, spay + lo, m * sizeof(int32_t));
            for (j = 0; j < k1 - k0; j++)
                at[j] = offsets[k0 + j];
            for (i = 0; i < m; i++) {
                int64_t p = at[tlow[i]]++;
                rows[p] = trow[i];
                sts[p] = tts[i];
                if (major != NULL)
                    smaj[p] = tmaj[i];
                if (pay != NULL)
                    spay[p] = tpay[i];
            }
            /* 3. each key's rows of the bucket sorted while they are in cache (a separate
               pass over every key afterwards read them all from memory again) */
            for (j = 0; j < k1 - k0; j++) {
                int64_t a = offsets[k0 + j], c = offsets[k0 + j + 1] - a;
                int r;
                if (c < 2 || engage_key_in_order(major != NULL ? smaj + a : NULL, sts + a, c))
                    continue;
                r = engage_sort_key_by_time(rows + a, major != NULL ? smaj + a : NULL, sts + a,
                                            pay != NULL ? spay + a : NULL, c);
                if (r == 2)
                    fail += 1;
                else if (r == 1)
                    declined += 1;
            }
        }
        free(trow);
        free(tmaj);
        free(tts);
        free(tpay);
        free(tlow);
        free(at);
    }
    free(part);
    free(low);
    return fail ? 2 : (declined ? 3 : 0);
}

#endif
