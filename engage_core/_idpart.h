/* Dense ids in order of first appearance for a large first batch of spread-out int64 keys
   (Int64Index.encode_parts), by all threads, with the probes of the hash table in cache.

   One thread probing a table larger than its cache row by row waits on memory at nearly
   every row (10M random 64-bit ids, 1M distinct, a 32 MB table: about 150 ms). Here the
   table is cut into P regions of consecutive slots (128 KB each). The rows are taken in
   ENGAGE_ID_ROUNDS parts (the records of a third of the rows take as much memory as the
   ids of all), and for each:
     1. each thread counts its rows per region (a key's region: the top bits of its home
        slot), then writes a (hash, row) record per row, in row order, to its part of its
        region's stretch of the record array: P write streams per thread. The hash is a
        bijection of the key: equal hashes are equal keys;
     2. each region (in parallel) takes its records in row order and probes only its own
        slots, which stay in cache: a new key's slot takes the row (its first) and the row
        is marked in a bitmap of first rows; each record takes its key's slot. A probe that
        would run past the region's end is left to 3;
     3. the records left over are probed over the whole table, on one thread (few: the
        run of full slots that stopped one has to reach its region's end);
     4. each thread walks its rows again and takes each row's record in the order it wrote
        them (P read streams): the row's slot, written where its id goes.
   Then a key's id is the number of first rows before its own (running popcounts of the
   bitmap), the order of first appearance: the same ids as probing row by row (the slots
   may be other places of the same runs), and each row's slot is replaced by its id, read
   from a packed copy of the ids by slot (4 bytes a slot: 8 MB where the table takes 32).
   On that log, 2 threads, both in one process: 140 -> 97 ms (two parts instead of three:
   91 ms). The table must be empty and sized for the keys (about half full). */
#ifndef ENGAGE_IDPART_H
#define ENGAGE_IDPART_H

#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

typedef struct __attribute__((packed)) { uint64_t hash; int32_t row; } engage_idrec;

/* splitmix64's finaliser, as _hash.pxd's mix64 (the table's home slots) */
static inline uint64_t engage_idmix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* its inverse */
static inline uint64_t engage_idunmix(uint64_t x) {
    x ^= (x >> 31) ^ (x >> 62);
    x *= 0x319642b2d24d8ec3ULL;
    x ^= (x >> 27) ^ (x >> 54);
    x *= 0x96de1b173f119089ULL;
    x ^= (x >> 30) ^ (x >> 60);
    return x;
}

/* regions of 8192 slots (128 KB); 1 when the table is too small to cut */
static int64_t engage_id_partitions(int64_t cap) {
    return cap >= (1 << 16) ? cap >> 13 : 1;
}

/* rows a..b of chunked int64 keys (chunk c: rows start[c]..start[c + 1] at addr[c]) */
#define ENGAGE_ID_ROWS(a, b, I, K, BODY)                                              \
    do {                                                                              \
        int64_t c_ = 0;                                                               \
        if ((a) >= (b)) break;                                                        \
        while (start[c_ + 1] <= (a)) c_++;                                            \
        for (int64_t I = (a); I < (b); c_++) {                                        \
            const int64_t* kp_ = (const int64_t*)(intptr_t)addr[c_] - start[c_];      \
            int64_t e_ = start[c_ + 1] < (b) ? start[c_ + 1] : (b);                   \
            for (; I < e_; I++) { const int64_t K = kp_[I]; BODY }                    \
        }                                                                             \
    } while (0)

/* About how many distinct keys the chunks hold, by linear counting over all threads, as
   _hash.pxd's estimate_distinct does for one array; 0 when out of memory. */
static int64_t engage_id_estimate(const int64_t* addr, const int64_t* start, int64_t n_chunks,
                                  int nthreads) {
    const int64_t n = start[n_chunks], T = nthreads;
    /* 2^22 bits (512 KB a thread, in cache): a few percent off up to about 16M distinct */
    const int64_t bits = n > (1 << 24) ? (1 << 24) : (1 << 22), words = bits / 64;
    uint64_t* maps = (uint64_t*)calloc((size_t)(T * words), sizeof(uint64_t));
    int64_t zeros = 0;
    if (!maps || n == 0) {
        free(maps);
        return 0;
    }
    #pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        uint64_t* map = maps + t * words;
        ENGAGE_ID_ROWS(n * t / T, n * (t + 1) / T, i, k, {
            uint64_t h = engage_idmix((uint64_t)k) >> 40;
            map[(h >> 6) & (words - 1)] |= (uint64_t)1 << (h & 63);
        });
    }
    for (int64_t w = 0; w < words; w++) {
        uint64_t h = 0;
        for (int64_t t = 0; t < T; t++)
            h |= maps[t * words + w];
        zeros += 64 - __builtin_popcountll(h);
    }
    free(maps);
    if (zeros == 0)
        return n;
    int64_t e = (int64_t)(-(double)bits * log((double)zeros / (double)bits)) + 1;
    return e < n ? e : n;
}

/* The slot of hash h in a linear-probing table (mask m; slots hold hashes until the ids
   are given): found, or inserted with first row r where its run of full slots ends (r
   marked in firsts, *added counted). -1 when the probe reaches slot stop first (a region's
   end; cap + 1: never), from where it wraps to slot 0. */
static inline int64_t engage_id_probe(ISlot* slots, uint64_t m, uint64_t h, int32_t r,
                                      uint64_t stop, uint64_t* firsts, int64_t* added) {
    uint64_t s = h & m;
    for (;;) {
        if (slots[s].id == -1) {
            slots[s].key = (int64_t)h;
            slots[s].id = r;
            __atomic_fetch_or(firsts + (r >> 6), (uint64_t)1 << (r & 63), __ATOMIC_RELAXED);
            (*added)++;
            return (int64_t)s;
        }
        if ((uint64_t)slots[s].key == h)
            return (int64_t)s;
        if (++s == stop)
            return -1;
        s &= m;
    }
}

/* the parts the rows are taken in: records (12 bytes) for a third of the rows at a time
   take as much memory as the ids */
#define ENGAGE_ID_ROUNDS 3

/* Returns 0 (ids in out, id_key and *size; the slots filled), 1 when declined (the keys
   fill more than 3/4 of the table: the table is left empty) or 2 when out of memory. */
static int engage_encode_partitioned(const int64_t* addr, const int64_t* start,
                                     int64_t n_chunks, ISlot* slots, int64_t cap,
                                     int nthreads, int32_t* out, int64_t* id_key,
                                     int64_t* size) {
    const int64_t n = start[n_chunks], P = engage_id_partitions(cap), T = nthreads;
    const int64_t R = ENGAGE_ID_ROUNDS, most = (n + R - 1) / R;
    const uint64_t m = (uint64_t)cap - 1;
    int shift = 0;
    while (((int64_t)1 << shift) < cap / P) shift++;
    int64_t* pos = (int64_t*)malloc((size_t)(T * P + P + 1) * sizeof(int64_t));
    int64_t* lost = (int64_t*)calloc((size_t)P, sizeof(int64_t));
    engage_idrec* rec = (engage_idrec*)malloc((size_t)(most ? most : 1) * sizeof(engage_idrec));
    const int64_t words = (n + 63) / 64;
    uint64_t* firsts = (uint64_t*)calloc((size_t)words + 1, sizeof(uint64_t));
    int64_t* before = (int64_t*)malloc(((size_t)words + 1) * sizeof(int64_t));
    int64_t distinct = 0;
    int rc = 0;
    if (!pos || !lost || !rec || !firsts || !before) {
        rc = 2;
        goto done;
    }
    int64_t* begin = pos + T * P;  /* each region's first record; begin[P]: the round's rows */

    for (int64_t round = 0; round < R; round++) {
        const int64_t lo = n * round / R, hi = n * (round + 1) / R, rows = hi - lo;
        /* 1. counts per (thread, region), then each thread's records at its places */
        memset(pos, 0, (size_t)(T * P) * sizeof(int64_t));
        #pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            int64_t* cnt = pos + t * P;
            ENGAGE_ID_ROWS(lo + rows * t / T, lo + rows * (t + 1) / T, i, k,
                           cnt[(engage_idmix((uint64_t)k) & m) >> shift]++;);
        }
        int64_t at = 0;
        for (int64_t p = 0; p < P; p++) {
            begin[p] = at;
            for (int64_t t = 0; t < T; t++) {
                int64_t c = pos[t * P + p];
                pos[t * P + p] = at;
                at += c;
            }
        }
        begin[P] = rows;
        #pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            int64_t* cur = (int64_t*)malloc((size_t)P * sizeof(int64_t));
            if (cur) {
                memcpy(cur, pos + t * P, (size_t)P * sizeof(int64_t));
                ENGAGE_ID_ROWS(lo + rows * t / T, lo + rows * (t + 1) / T, i, k, {
                    const uint64_t h = engage_idmix((uint64_t)k);
                    engage_idrec* r = rec + cur[(h & m) >> shift]++;
                    r->hash = h;
                    r->row = (int32_t)i;
                });
                free(cur);
            } else {
                #pragma omp atomic write
                rc = 2;
            }
        }
        if (rc)
            goto done;

        /* 2. each region's records, in row order, probing its own slots (which hold the
           hashes until the ids are given) */
        #pragma omp parallel for num_threads(T) schedule(dynamic, 4)
        for (int64_t p = 0; p < P; p++) {
            const uint64_t end = (uint64_t)(p + 1) << shift;
            const int64_t b = begin[p + 1];
            int64_t added = 0, left = 0;
            for (int64_t j = begin[p]; j < b; j++) {
                if (j + 16 < b)
                    __builtin_prefetch(slots + (rec[j + 16].hash & m));
                const int64_t s = engage_id_probe(slots, m, rec[j].hash, rec[j].row, end,
                                                  firsts, &added);
                if (s >= 0) {
                    rec[j].row = (int32_t)s;
                } else {  /* left to 3: marked by -2 - row */
                    rec[j].row = -2 - rec[j].row;
                    left++;
                }
            }
            lost[p] = left;
            #pragma omp atomic
            distinct += added;
        }

        /* 3. the records left over (every record of such a key is, all in its region: the
           run of full slots that stopped the first one only grows) */
        for (int64_t p = 0; p < P; p++) {
            int64_t left = lost[p];
            for (int64_t j = begin[p]; left && j < begin[p + 1]; j++) {
                if (rec[j].row >= 0)
                    continue;
                left--;
                if (4 * (distinct + 1) > 3 * cap) {
                    rc = 1;
                    goto declined;
                }
                rec[j].row = (int32_t)engage_id_probe(slots, m, rec[j].hash, -2 - rec[j].row,
                                                      (uint64_t)cap + 1, firsts, &distinct);
            }
        }

        /* 4. each row's slot, from its record (the rows in the order they were written) */
        #pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            int64_t* cur = pos + t * P;  /* its own places, not needed any more */
            ENGAGE_ID_ROWS(lo + rows * t / T, lo + rows * (t + 1) / T, i, k,
                           out[i] = rec[cur[(engage_idmix((uint64_t)k) & m) >> shift]++].row;);
        }
    }
    if (4 * distinct > 3 * cap) {
        rc = 1;
        goto declined;
    }

    /* the ids: a key's is the number of first rows before its own; its slot gets the id
       and the key back (the hash's inverse), each row its slot's id */
    before[0] = 0;
    for (int64_t w = 0; w < words; w++)
        before[w + 1] = before[w] + __builtin_popcountll(firsts[w]);
    /* the ids by slot too, packed (4 bytes a slot, not 16: the rows' lookups stay in cache) */
    int32_t* slot_id = (int32_t*)malloc((size_t)cap * sizeof(int32_t));
    if (!slot_id) {
        rc = 2;
        goto declined;
    }
    #pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t s = 0; s < cap; s++) {
        const int32_t r = slots[s].id;
        if (r < 0)
            continue;
        const int32_t id = (int32_t)(before[r >> 6] + __builtin_popcountll(
            firsts[r >> 6] & ((((uint64_t)1) << (r & 63)) - 1)));
        slots[s].id = id;
        slot_id[s] = id;
        slots[s].key = (int64_t)engage_idunmix((uint64_t)slots[s].key);
        id_key[id] = slots[s].key;
    }
    #pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const int64_t b = n * (t + 1) / T;
        for (int64_t i = n * t / T; i < b; i++) {
            if (i + 32 < b)
                __builtin_prefetch(slot_id + out[i + 32]);
            out[i] = slot_id[out[i]];
        }
    }
    free(slot_id);
    *size = distinct;
    goto done;
declined:
    memset(slots, 0xff, (size_t)cap * sizeof(ISlot));
done:
    free(pos);
    free(lost);
    free(rec);
    free(firsts);
    free(before);
    return rc;
}

#endif
