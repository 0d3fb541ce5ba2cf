# Shared inline helpers for the kernels: hashing, floor division, large allocations and a
# distinct-count estimate (to size hash tables once).
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, intptr_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: a strong, cheap bijective mix of 64 bits.
    x ^= x >> 30
    x *= <uint64_t>0xbf58476d1ce4e5b9ULL
    x ^= x >> 27
    x *= <uint64_t>0x94d049bb133111ebULL
    x ^= x >> 31
    return x


cdef inline int64_t table_cap(int64_t cap, int64_t n) noexcept nogil:
    # The capacity a hash table of ``cap`` slots doubles to so that ``n`` keys fill at most
    # half of it.
    while cap < 2 * n:
        cap <<= 1
    return cap


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef extern from *:
    int popcount64 "__builtin_popcountll"(unsigned long long) nogil


cdef extern from "<sys/mman.h>" nogil:
    int madvise(void* addr, size_t length, int advice)
    int MADV_HUGEPAGE


cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)


cdef inline void* big_alloc(size_t size) noexcept nogil:
    # Tables larger than the cache are probed at random: 2 MB pages (where the kernel
    # allows them) save a TLB miss per probe.
    cdef void* p = NULL
    if size < (4 << 20):
        return malloc(size)
    if posix_memalign(&p, 2 << 20, size) != 0:
        return NULL
    madvise(p, size, MADV_HUGEPAGE)
    return p


cdef extern from "<math.h>" nogil:
    double log(double x)


cdef inline int64_t estimate_distinct(const uint64_t* values, int64_t n, bint mix,
                                      int nthreads) noexcept nogil:
    """About how many distinct values ``values[0:n]`` holds (hashes, or keys when ``mix``),
    by linear counting: the share of bits left unset in a bitmap indexed by the hash. Used
    to size a table once instead of doubling it (accurate to a few percent up to several
    times the bitmap's 2^22 or 2^24 bits; beyond that it says "at least that many")."""
    cdef int64_t bits = (1 << 24) if n > (1 << 23) else (1 << 22)
    cdef int64_t words = bits // 64, i, w, zeros = 0
    cdef uint64_t* maps = <uint64_t*>calloc(nthreads * words, sizeof(uint64_t))
    cdef uint64_t h
    cdef int t
    cdef int64_t a, b
    if maps == NULL:
        return 0
    for t in prange(nthreads, num_threads=nthreads, schedule="static"):
        a = n * t // nthreads
        b = n * (t + 1) // nthreads
        for i in range(a, b):
            h = mix64(values[i]) if mix else values[i]
            h = h >> 40  # the top 24 bits: the table uses the low ones
            maps[t * words + ((h >> 6) & (words - 1))] |= (<uint64_t>1) << (h & 63)
    for w in range(words):
        h = 0
        for t in range(nthreads):
            h = h | maps[t * words + w]
        zeros += 64 - popcount64(h)
    free(maps)
    if zeros == 0:
        return n
    return min(n, <int64_t>(-<double>bits * log(<double>zeros / <double>bits)) + 1)


cdef inline void touch_pages(void* p, size_t nbytes, int nthreads=1) noexcept nogil:
    # Fault the pages of a fresh allocation in before a parallel kernel writes it, by
    # writing a zero to each page: only for memory that holds nothing yet (np.empty), zeros
    # (np.zeros) or is all written after. Writes, not reads: a read first maps the shared
    # zero page and the write after copies it, and those copies from two threads wait on
    # each other (160 MB, 4 KB pages: 91 ms on one thread, 235 on two). Written, the pages
    # fault in parallel (53 and 28 ms; with the huge pages numpy asks for: 8 and 5 ms), so
    # from 4 MB on the threads share the pages.
    cdef Py_ssize_t i, n = <Py_ssize_t>nbytes
    cdef volatile char* c = <volatile char*>p
    if nthreads > 1 and n >= (4 << 20):
        for i in prange(0, n, 4096, num_threads=nthreads, schedule="static"):
            c[i] = 0
    else:
        for i in range(0, n, 4096):
            c[i] = 0


cdef inline void zero_fill(void* p, size_t nbytes, int nthreads=1) noexcept nogil:
    # Zeros written by ``nthreads`` threads (from 4 MB; a share each): for np.empty arrays
    # that would be np.zeros. numpy's zeros come from calloc, which clears memory it reuses
    # on one thread (the pipeline's per-user bitmaps and counters: about 10 ms of it).
    cdef Py_ssize_t t, a, b, n = <Py_ssize_t>nbytes
    cdef int T = nthreads if nthreads > 1 and n >= (4 << 20) else 1
    for t in prange(T, num_threads=T, schedule="static"):
        a = n * t // T
        b = n * (t + 1) // T
        memset(<char*>p + a, 0, b - a)


cdef inline int64_t actor_chunk(int64_t n, int nthreads) noexcept nogil:
    # Chunk size for a dynamic schedule over ``n`` users (or keys) whose costs differ: about
    # 256 chunks per thread, of 16 to 2048 users. Users numbered by first appearance put the
    # long-lived, busy ones first; "guided" gave one thread the first half of the users (63%
    # of the funnel's work on 2 threads), small chunks end within a few microseconds.
    return max(16, min(2048, n // (256 * max(nthreads, 1))))


cdef inline int64_t chunk_at(const int64_t[::1] start, int64_t row) noexcept nogil:
    """The chunk holding ``row`` (``0 <= row < start[last]``) of chunks that start at rows
    ``start`` (ascending, ``start[0] = 0``): threads that take a range of rows across
    chunks (_columns.Int64Chunks, _bytes_index.BytesChunks) find where theirs begins."""
    cdef int64_t lo = 0, hi = start.shape[0] - 2, mid
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if start[mid] <= row:
            lo = mid
        else:
            hi = mid - 1
    return lo


cdef inline int64_t int64_at(const int64_t[::1] data, const int64_t[::1] start,
                             int64_t row) noexcept nogil:
    """The int64 value of ``row`` in chunks at addresses ``data`` that start at rows
    ``start`` (_columns.Int64Chunks)."""
    cdef int64_t c = chunk_at(start, row)
    return (<const int64_t*><intptr_t>data[c])[row - start[c]]


cdef struct RowWalk:
    int64_t lo      # the piece last returned: rows [lo, hi) of chunk ``chunk``
    int64_t hi
    int64_t end     # one past the thread's last row
    int64_t chunk


cdef inline RowWalk thread_rows(const int64_t[::1] start, int64_t n, int t,
                                int nthreads) noexcept nogil:
    """Thread ``t``'s share of ``n`` rows in chunks starting at ``start`` (each chunk holds a
    row), to walk piece by piece with ``next_piece``."""
    cdef RowWalk w
    w.lo = n * t // nthreads
    w.hi = w.lo
    w.end = n * (t + 1) // nthreads
    w.chunk = (chunk_at(start, w.lo) if w.lo < w.end else 0) - 1
    return w


cdef inline bint next_piece(RowWalk* w, const int64_t[::1] start) noexcept nogil:
    """Move ``w`` to the thread's next rows inside one chunk; False when there are none."""
    if w.hi >= w.end:
        return False
    w.chunk += 1
    w.lo = w.hi
    w.hi = min(w.end, start[w.chunk + 1])
    return True


cdef inline int64_t count_runs(const int32_t* v, int64_t a, int64_t b) noexcept nogil:
    """How many runs of equal neighbours ``v[a:b]`` holds (an actor's sorted periods or
    days: how many distinct ones)."""
    cdef int64_t j, cnt = 0
    for j in range(a, b):
        if j == a or v[j] != v[j - 1]:
            cnt += 1
    return cnt


cdef inline void thread_places(int64_t* counts, int64_t stride, int nthreads, int64_t size,
                               int64_t* offsets) noexcept nogil:
    """A counting sort's places: ``counts[t * stride + k]`` (thread t's rows of group k)
    becomes thread t's first place in group k (the group's start, then the earlier
    threads' rows), and ``offsets[0..size]`` the groups' starts and the total."""
    cdef int64_t k, acc = 0, c
    cdef int t
    for k in range(size):
        offsets[k] = acc
        for t in range(nthreads):
            c = counts[t * stride + k]
            counts[t * stride + k] = acc
            acc += c
    offsets[size] = acc
