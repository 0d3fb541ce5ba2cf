# Sorting a key's rows by (major, ts, row) in the counting sort of _sequences.sort_rows:
# an introsort over RowKey records with the comparison inline.
from libc.stdint cimport int32_t, int64_t


cdef struct RowKey:
    int32_t major
    int32_t pay  # carried along, not compared (a payload's copy: no gather after the sort)
    int64_t ts
    int64_t row


cdef inline bint key_lt(const RowKey* x, const RowKey* y) noexcept nogil:
    if x.major != y.major:
        return x.major < y.major
    if x.ts != y.ts:
        return x.ts < y.ts
    return x.row < y.row


cdef inline void _insertion(RowKey* a, int64_t n) noexcept nogil:
    cdef int64_t i, j
    cdef RowKey x
    for i in range(1, n):
        x = a[i]
        j = i - 1
        while j >= 0 and key_lt(&x, &a[j]):
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


cdef inline void _heap_sort(RowKey* a, int64_t n) noexcept nogil:
    cdef int64_t start = n // 2, end = n, root, child
    cdef RowKey tmp
    while end > 1:
        if start > 0:
            start -= 1
        else:
            end -= 1
            tmp = a[end]; a[end] = a[0]; a[0] = tmp
        root = start
        while 2 * root + 1 < end:
            child = 2 * root + 1
            if child + 1 < end and key_lt(&a[child], &a[child + 1]):
                child += 1
            if key_lt(&a[root], &a[child]):
                tmp = a[root]; a[root] = a[child]; a[child] = tmp
                root = child
            else:
                break


cdef inline void _intro(RowKey* a, int64_t n, int depth) noexcept nogil:
    cdef int64_t i, j
    cdef RowKey p, tmp
    while n > 24:
        if depth == 0:
            _heap_sort(a, n)
            return
        depth -= 1
        # the median of the first, middle and last keys, as a value
        i = n >> 1
        if key_lt(&a[i], &a[0]):
            tmp = a[i]; a[i] = a[0]; a[0] = tmp
        if key_lt(&a[n - 1], &a[i]):
            tmp = a[i]; a[i] = a[n - 1]; a[n - 1] = tmp
            if key_lt(&a[i], &a[0]):
                tmp = a[i]; a[i] = a[0]; a[0] = tmp
        p = a[i]
        i = -1
        j = n
        while True:  # Hoare partition: a[0..j] <= p <= a[j+1..n)
            i += 1
            while key_lt(&a[i], &p):
                i += 1
            j -= 1
            while key_lt(&p, &a[j]):
                j -= 1
            if i >= j:
                break
            tmp = a[i]; a[i] = a[j]; a[j] = tmp
        if j + 1 < n - j - 1:  # the smaller side first, the larger one by the loop
            _intro(a, j + 1, depth)
            a = a + j + 1
            n = n - j - 1
        else:
            _intro(a + j + 1, n - j - 1, depth)
            n = j + 1
    _insertion(a, n)


cdef inline void sort_rowkeys(RowKey* a, int64_t n) noexcept nogil:
    """Sort ``a[0:n]`` by (major, ts, row), every key distinct: introsort (quicksort on a
    median of three, heapsort past 2 log2 n levels, insertion sort under 24 keys) with the
    comparison inline (a key's rows out of order in a shuffled log: several times faster
    than qsort's indirect calls)."""
    cdef int depth = 0
    cdef int64_t m = n
    while m > 1:
        depth += 2
        m >>= 1
    _intro(a, n, depth)
