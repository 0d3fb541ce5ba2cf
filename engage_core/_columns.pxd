from libc.stdint cimport int64_t


cdef class Int64Chunks:
    # the int64 arrays and their validity (uint8 arrays, or None), kept alive here
    cdef readonly list arrays
    # per chunk: the address of its values / of its validity (0: all valid)
    cdef int64_t[::1] data
    cdef int64_t[::1] valid
    # the row where each chunk starts, then the number of rows
    cdef int64_t[::1] start
    cdef readonly int64_t n
    cdef readonly bint all_valid
