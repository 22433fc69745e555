/*
 * Compiled kernels of the integer-vector scheme: the few loops whose NumPy form costs a dozen
 * array operations (each with a microsecond or more of fixed cost) on the small batches of a
 * training step. Every kernel computes exactly what its NumPy counterpart in ``native.py``'s
 * callers computes, to the bit: integer arithmetic only (wrapping modulo 2**64 where the NumPy
 * path wraps, 128 bits where it proves a 128-bit value), no floating point.
 *
 * The module is optional: built where a C compiler with 128-bit integers is available
 * (GCC, Clang), and ``native.py`` falls back to the NumPy paths where it is not, or where
 * HENN_NATIVE=0. The callers prove every precondition that keeps a result in range before
 * calling; the kernels check shapes and types only.
 */
#define PY_SSIZE_T_CLEAN
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <Python.h>
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#ifndef __SIZEOF_INT128__
#error "the integer-vector kernels need a compiler with 128-bit integers (GCC or Clang)"
#endif

__extension__ typedef __int128 i128; /* GCC and Clang */
__extension__ typedef unsigned __int128 u128;

/* Whether a buffer format names 8-byte items of the kind wanted ('q': int64, 'd': float64). */
static int
format_is(const char *format, char kind)
{
    if (*format == '<' || *format == '=' || *format == '@') {
        format++;
    }
    if (kind == 'd') {
        return strcmp(format, "d") == 0;
    }
    return strcmp(format, "q") == 0 || strcmp(format, "l") == 0;
}

/* a * b, or -1 where either is negative or the product overflows (get_buffer refuses it). */
static Py_ssize_t
items_of(Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t product;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product)) {
        return -1;
    }
    return product;
}

/* A C-contiguous buffer of ``items`` 8-byte items of ``kind`` ('q' or 'd'). */
static int
get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t items, int writable, const char *name,
           char kind)
{
    const char *type_name = kind == 'd' ? "float64" : "int64";
    if (items < 0 || items > PY_SSIZE_T_MAX / 8) {
        PyErr_Format(PyExc_ValueError, "%s: sizes too large", name);
        return -1;
    }
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s %s array", name,
                     writable ? " writable" : "", type_name);
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (view->itemsize != 8 || !format_is(format, kind)) {
        PyErr_Format(PyExc_TypeError, "%s: expected %s items, got format %s", name, type_name,
                     format);
        PyBuffer_Release(view);
        return -1;
    }
    if (view->len != items * 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items, got %zd", name, items,
                     view->len / 8);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
get_int64(PyObject *obj, Py_buffer *view, Py_ssize_t items, int writable, const char *name)
{
    return get_buffer(obj, view, items, writable, name, 'q');
}

/* Releases the first ``count`` buffers of ``views``. */
static void
release(Py_buffer *views, int count)
{
    for (int i = 0; i < count; i++) {
        PyBuffer_Release(&views[i]);
    }
}

/* One buffer a kernel takes: its argument, size in items, access and item kind. */
typedef struct {
    int arg;
    Py_ssize_t items;
    int writable;
    const char *name;
    char kind;
} Wanted;

/* All the buffers of ``wanted`` into ``views``, or none (an error set) where one is wrong. */
static int
get_buffers(PyObject *const *args, const Wanted *wanted, int count, Py_buffer *views)
{
    for (int i = 0; i < count; i++) {
        if (get_buffer(args[wanted[i].arg], &views[i], wanted[i].items, wanted[i].writable,
                       wanted[i].name, wanted[i].kind) < 0) {
            release(views, i);
            return -1;
        }
    }
    return 0;
}

/* Whether every factor index of a tensor's ``terms`` entries (two rows of ``terms``, into
 * rows of ``left_width`` and ``right_width`` values) is in range and every second-product
 * flag is 0 or 1. */
static int
factors_valid(const int64_t *li, const int64_t *ri, const int64_t *second, Py_ssize_t terms,
              Py_ssize_t left_width, Py_ssize_t right_width)
{
    int bad = 0;
    for (Py_ssize_t t = 0; t < terms; t++) {
        bad |= li[t] < 0 || li[t] >= left_width || li[terms + t] < 0 ||
               li[terms + t] >= left_width || ri[t] < 0 || ri[t] >= right_width ||
               ri[terms + t] < 0 || ri[terms + t] >= right_width ||
               (second[t] != 0 && second[t] != 1);
    }
    return !bad;
}

static int
get_sizes(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected, Py_ssize_t first,
          Py_ssize_t count, long long *out, const char *name)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments, got %zd", name, expected, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = PyLong_AsLongLong(args[first + i]);
        if (out[i] == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (out[i] < 0) {
            PyErr_Format(PyExc_ValueError, "%s: argument %zd must not be negative", name,
                         first + i);
            return -1;
        }
    }
    return 0;
}

/* Whether ``obj`` is exactly a NumPy array, aligned, C-contiguous, native-endian, of 8-byte items
 * of ``type`` (NPY_INT64 or NPY_FLOAT64), and of ``shaped``'s shape where that is given: what
 * the kernels that speak NumPy's C API read (``switch_digits``, the decryption kernels). */
static int
plain_array(PyObject *obj, int type, PyArrayObject *shaped)
{
    if (!PyArray_CheckExact(obj)) {
        return 0;
    }
    PyArrayObject *array = (PyArrayObject *)obj;
    if (!PyArray_EquivTypenums(PyArray_TYPE(array), type) || !PyArray_ISNOTSWAPPED(array) ||
        !PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISALIGNED(array)) {
        return 0;
    }
    return shaped == NULL || PyArray_SAMESHAPE(array, shaped);
}

/*
 * The loop of ``switch_digits`` (see there). Most of a large switch is its innermost loop, a
 * key row times a small digit added to the output row; on x86-64 with GCC on Linux it is
 * compiled three times (AVX-512, AVX2, baseline) and the processor's best is chosen when the
 * module loads: the same integer arithmetic, vectorised.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

/* out += row (negative: out -= row), modulo 2**64: a bit digit of +1 or -1 times a key row, or
 * a table row of such sums. Inlined into each loop (and each of its compiled variants). */
static inline void
add_signed_row(uint64_t *out, const uint64_t *row, Py_ssize_t width, int negative)
{
    if (negative) {
        for (Py_ssize_t o = 0; o < width; o++) {
            out[o] -= row[o];
        }
    } else {
        for (Py_ssize_t o = 0; o < width; o++) {
            out[o] += row[o];
        }
    }
}

/* The digits' norms as ``IntegerVectorScheme._switch`` computes them from the exact sums:
 * l1 = (sum |d|) margin, l2 = sqrt((sum d*d) margin) safety (pow(x, 0.5) for one vector). */
static inline void
store_norms(double *l1, double *l2, uint64_t sum_abs, uint64_t sum_squares, double margin,
            double safety, int scalar)
{
    *l1 = (double)sum_abs * margin;
    const double scaled = (double)sum_squares * margin;
    *l2 = (scalar ? pow(scaled, 0.5) : sqrt(scaled)) * safety;
}

/*
 * ``switch_rows`` for keys of two columns (an inner product's, a product's of scalars: k = 1),
 * the two sums kept in registers: the same integers, without a loop per digit.
 */
static void
switch_rows_two(const int64_t *source, const uint64_t *matrix, uint64_t *result, double *l1s,
                double *l2s, Py_ssize_t rows, Py_ssize_t columns, long long bits,
                long long count, unsigned long long offset, double margin, double safety,
                int scalar)
{
    const uint64_t mask = (1ULL << bits) - 1; /* bits <= 32 */
    const int64_t half = bits > 1 ? (int64_t)(1LL << (bits - 1)) : 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t first = 0, second = 0;
        uint64_t sum_abs = 0, sum_squares = 0; /* unsigned: no overflow, whatever the input */
        for (Py_ssize_t j = 0; j < columns; j++) {
            int64_t v = source[r * columns + j];
            const uint64_t *key_rows = matrix + (size_t)j * count * 2;
            if (bits == 1) {
                uint64_t magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
                const uint64_t flip = v < 0 ? ~0ULL : 0; /* (x ^ flip) - flip: x or -x */
                uint64_t low = 0, high = 0;
                int set = 0;
                while (magnitude) {
                    int i = __builtin_ctzll(magnitude);
                    magnitude &= magnitude - 1;
                    if (i >= count) {
                        break; /* |v| < 2**62 <= 2**count: not reached for valid input */
                    }
                    low += key_rows[2 * i];
                    high += key_rows[2 * i + 1];
                    set++;
                }
                first += (low ^ flip) - flip;
                second += (high ^ flip) - flip;
                sum_abs += set;
                sum_squares += set;
            } else {
                uint64_t shifted = (uint64_t)v + offset;
                for (long long i = 0; i < count; i++, shifted >>= bits) {
                    int64_t d = (int64_t)(shifted & mask) - half;
                    uint64_t factor = (uint64_t)d;
                    first += factor * key_rows[2 * i];
                    second += factor * key_rows[2 * i + 1];
                    sum_abs += (uint64_t)(d < 0 ? -d : d);
                    sum_squares += (uint64_t)(d * d);
                }
            }
        }
        result[2 * r] = first;
        result[2 * r + 1] = second;
        store_norms(&l1s[r], &l2s[r], sum_abs, sum_squares, margin, safety, scalar);
    }
}

/* Rows switched together: each key row is read once per block of rows, not once per row (a
 * key of 256-vectors is 4 MB with base-2**8 digits and 33 MB with bits, past a core's cache),
 * and a block's output rows (ROW_BLOCK x out_columns words) stay in the first-level cache. */
#define ROW_BLOCK 16

/* Rows per block of ``switch_rows_bits``: each nibble's table (16 sums of 4 key rows, built
 * with 11 row additions) then serves this many rows, one addition each, where adding the set
 * bits' rows one by one takes 2 on average. Blocks of fewer than BIT_TABLE_ROWS rows (a small
 * batch, the last block) add the set bits' rows directly: there the tables cost more than
 * they save. */
#define BIT_ROW_BLOCK 64
#define BIT_TABLE_ROWS 24

/*
 * ``switch_rows`` for bit digits (sign and magnitude) into keys too wide for a kept nibble
 * table: BIT_ROW_BLOCK rows at a time, value position by value position (its key rows stay in
 * cache while the block reads them), and for each of its nibble positions that some row uses,
 * a table of the 16 sums of those 4 key rows, built on the spot and used by every row of the
 * block (one addition or subtraction of a table row per nibble of |v|); smaller blocks add the
 * set bits' key rows one by one. The sums are those of the set bits' key rows, modulo 2**64.
 */
VECTOR_CLONES static void
switch_rows_bits(const int64_t *source, const uint64_t *matrix, uint64_t *result, double *l1s,
                 double *l2s, Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t out_columns,
                 long long count, double margin, double safety, int scalar, uint64_t *table)
{
    const uint64_t valid = count < 64 ? (1ULL << count) - 1 : ~0ULL;
    for (Py_ssize_t first = 0; first < rows; first += BIT_ROW_BLOCK) {
        const Py_ssize_t block = rows - first < BIT_ROW_BLOCK ? rows - first : BIT_ROW_BLOCK;
        uint64_t *block_out = result + first * out_columns;
        memset(block_out, 0, (size_t)(block * out_columns) * sizeof(uint64_t));
        uint64_t set[BIT_ROW_BLOCK] = {0};
        uint64_t magnitude[BIT_ROW_BLOCK];
        for (Py_ssize_t j = 0; j < columns; j++) {
            const uint64_t *key_rows = matrix + (size_t)j * count * out_columns;
            uint64_t any = 0;
            for (Py_ssize_t b = 0; b < block; b++) {
                int64_t v = source[(first + b) * columns + j];
                /* |v| < 2**62 <= 2**count for valid input: the mask changes nothing there */
                magnitude[b] = (v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v) & valid;
                set[b] += (uint64_t)__builtin_popcountll(magnitude[b]);
                any |= magnitude[b];
            }
            if (block < BIT_TABLE_ROWS) {
                for (Py_ssize_t b = 0; b < block; b++) {
                    uint64_t bits_left = magnitude[b];
                    uint64_t *row_out = block_out + b * out_columns;
                    const int negative = source[(first + b) * columns + j] < 0;
                    while (bits_left) {
                        const uint64_t *key_row =
                            key_rows + (size_t)__builtin_ctzll(bits_left) * out_columns;
                        bits_left &= bits_left - 1;
                        add_signed_row(row_out, key_row, out_columns, negative);
                    }
                }
                continue;
            }
            for (int p = 0; p < 16 && (any >> (4 * p)); p++) {
                const uint64_t used = (any >> (4 * p)) & 15;
                if (!used) {
                    continue;
                }
                /* table[n] = sum of the key rows of bits 4p + i set in n (rows past count: 0) */
                memset(table, 0, (size_t)out_columns * sizeof(uint64_t));
                for (int n = 1; n < 16; n++) {
                    const int low = __builtin_ctz((unsigned)n);
                    const long long bit = 4LL * p + low;
                    const uint64_t *rest = table + (size_t)(n & (n - 1)) * out_columns;
                    uint64_t *entry = table + (size_t)n * out_columns;
                    if (bit < count) {
                        const uint64_t *key_row = key_rows + (size_t)bit * out_columns;
                        for (Py_ssize_t o = 0; o < out_columns; o++) {
                            entry[o] = rest[o] + key_row[o];
                        }
                    } else {
                        memcpy(entry, rest, (size_t)out_columns * sizeof(uint64_t));
                    }
                }
                for (Py_ssize_t b = 0; b < block; b++) {
                    const unsigned nibble = (unsigned)(magnitude[b] >> (4 * p)) & 15;
                    if (!nibble) {
                        continue;
                    }
                    add_signed_row(block_out + b * out_columns,
                                   table + (size_t)nibble * out_columns, out_columns,
                                   source[(first + b) * columns + j] < 0);
                }
            }
        }
        /* |d| = d*d = 1 for every set bit: both sums are the number of set bits */
        for (Py_ssize_t b = 0; b < block; b++) {
            store_norms(&l1s[first + b], &l2s[first + b], set[b], set[b], margin, safety, scalar);
        }
    }
}

/* Base-2**b digits (b > 1), rows switched together in blocks of ROW_BLOCK (as above). */

VECTOR_CLONES static void
switch_rows(const int64_t *source, const uint64_t *matrix, uint64_t *result, double *l1s,
            double *l2s, Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t out_columns,
            long long bits, long long count, unsigned long long offset, double margin,
            double safety, int scalar)
{
    const uint64_t mask = (1ULL << bits) - 1; /* 1 < bits <= 32 */
    const int64_t half = (int64_t)(1LL << (bits - 1));
    for (Py_ssize_t first = 0; first < rows; first += ROW_BLOCK) {
        const Py_ssize_t block = rows - first < ROW_BLOCK ? rows - first : ROW_BLOCK;
        uint64_t *block_out = result + first * out_columns;
        memset(block_out, 0, (size_t)(block * out_columns) * sizeof(uint64_t));
        uint64_t sum_abs[ROW_BLOCK] = {0}, sum_squares[ROW_BLOCK] = {0};
        for (Py_ssize_t j = 0; j < columns; j++) {
            const uint64_t *key_rows = matrix + (size_t)j * count * out_columns;
            uint64_t shifted[ROW_BLOCK];
            for (Py_ssize_t b = 0; b < block; b++) {
                shifted[b] = (uint64_t)source[(first + b) * columns + j] + offset;
            }
            for (long long i = 0; i < count; i++) {
                const uint64_t *key_row = key_rows + (size_t)i * out_columns;
                for (Py_ssize_t b = 0; b < block; b++) {
                    int64_t d = (int64_t)((shifted[b] >> (bits * i)) & mask) - half;
                    if (!d) {
                        continue;
                    }
                    uint64_t *row_out = block_out + b * out_columns;
                    uint64_t factor = (uint64_t)d;
                    for (Py_ssize_t o = 0; o < out_columns; o++) {
                        row_out[o] += factor * key_row[o];
                    }
                    sum_abs[b] += (uint64_t)(d < 0 ? -d : d);
                    sum_squares[b] += (uint64_t)(d * d);
                }
            }
        }
        for (Py_ssize_t b = 0; b < block; b++) {
            store_norms(&l1s[first + b], &l2s[first + b], sum_abs[b], sum_squares[b], margin,
                        safety, scalar);
        }
    }
}

/*
 * ``switch_rows_two`` for bit digits with the key's nibble table: ``nibbles[j][p][n]`` holds
 * the two key-column sums of the rows of value j's bits 4p to 4p + 3 that are set in n (0 to
 * 15; 16 positions cover 64 bits, rows past the key's digits are 0). Each value then takes
 * one table entry per nibble of |v| instead of one key row per set bit: the same sums (the
 * table's entries are those sums modulo 2**64), in fewer, branch-free steps.
 */
static void
switch_rows_two_nibbles(const int64_t *source, const uint64_t *nibbles, uint64_t *result,
                        double *l1s, double *l2s, Py_ssize_t rows, Py_ssize_t columns,
                        long long count, double margin, double safety, int scalar)
{
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t first = 0, second = 0, set = 0;
        for (Py_ssize_t j = 0; j < columns; j++) {
            int64_t v = source[r * columns + j];
            uint64_t magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            if (count < 64) {
                magnitude &= (1ULL << count) - 1; /* |v| < 2**62 <= 2**count: no change */
            }
            const uint64_t flip = v < 0 ? ~0ULL : 0; /* (x ^ flip) - flip: x or -x */
            const uint64_t *table = nibbles + (size_t)j * 16 * 16 * 2;
            uint64_t low = 0, high = 0, low_odd = 0, high_odd = 0;
            set += (uint64_t)__builtin_popcountll(magnitude);
            /* two nibbles a step, into two pairs of sums (independent additions); a nibble 0
             * adds its table's zero entry */
            for (int p = 0; magnitude; p += 2, magnitude >>= 8) {
                const uint64_t *even = table + ((size_t)p * 16 + (magnitude & 15)) * 2;
                const uint64_t *odd = table + ((size_t)(p + 1) * 16 + (magnitude >> 4 & 15)) * 2;
                low += even[0];
                high += even[1];
                low_odd += odd[0];
                high_odd += odd[1];
            }
            low += low_odd;
            high += high_odd;
            first += (low ^ flip) - flip;
            second += (high ^ flip) - flip;
        }
        result[2 * r] = first;
        result[2 * r + 1] = second;
        store_norms(&l1s[r], &l2s[r], set, set, margin, safety, scalar);
    }
}

/*
 * ``switch_rows_bits`` with the key's nibble table for keys of any width: ``nibbles[j][p][n]``
 * (``out_columns`` words) is the sum of the key rows of value j's bits 4p to 4p + 3 set in n.
 * One table row per nibble of |v| instead of one key row per set bit: the same sums modulo
 * 2**64, in about half the additions. For narrow keys only (256 table rows per value against
 * its 62 key rows: the caller keeps the table small enough to stay in cache).
 */
VECTOR_CLONES static void
switch_rows_nibbles(const int64_t *source, const uint64_t *nibbles, uint64_t *result,
                    double *l1s, double *l2s, Py_ssize_t rows, Py_ssize_t columns,
                    Py_ssize_t out_columns, long long count, double margin, double safety,
                    int scalar)
{
    const uint64_t valid = count < 64 ? (1ULL << count) - 1 : ~0ULL;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t *row_out = result + r * out_columns;
        memset(row_out, 0, (size_t)out_columns * sizeof(uint64_t));
        uint64_t set = 0;
        for (Py_ssize_t j = 0; j < columns; j++) {
            int64_t v = source[r * columns + j];
            /* |v| < 2**62 <= 2**count for valid input: the mask changes nothing there */
            uint64_t magnitude = (v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v) & valid;
            const uint64_t *table = nibbles + (size_t)j * 16 * 16 * out_columns;
            set += (uint64_t)__builtin_popcountll(magnitude);
            for (; magnitude; magnitude >>= 4, table += 16 * out_columns) {
                add_signed_row(row_out, table + (magnitude & 15) * out_columns, out_columns, v < 0);
            }
        }
        store_norms(&l1s[r], &l2s[r], set, set, margin, safety, scalar);
    }
}

/* ``switch_any``'s scratch table (16 x out_columns words, for ``switch_rows_bits``) where it
 * needs one, else NULL, allocated while the caller holds the GIL: 0, or -1 with MemoryError
 * set when the allocation fails. */
static int
make_scratch(const uint64_t *nibbles, Py_ssize_t out_columns, long long bits, uint64_t **scratch)
{
    *scratch = NULL;
    if (bits != 1 || nibbles != NULL || out_columns == 2) {
        return 0;
    }
    *scratch = PyMem_Malloc((size_t)(16 * out_columns + 1) * sizeof(uint64_t));
    if (*scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The switch of ``rows`` rows by whichever loop suits the key's width and the digits. */
static void
switch_any(const int64_t *source, const uint64_t *matrix, const uint64_t *nibbles,
           uint64_t *result, double *l1s, double *l2s, Py_ssize_t rows, Py_ssize_t columns,
           Py_ssize_t out_columns, long long bits, long long count, unsigned long long offset,
           double margin, double safety, int scalar, uint64_t *scratch)
{
    if (nibbles != NULL && out_columns == 2 && bits == 1) {
        switch_rows_two_nibbles(source, nibbles, result, l1s, l2s, rows, columns, count, margin,
                                safety, scalar);
    } else if (nibbles != NULL && bits == 1) {
        switch_rows_nibbles(source, nibbles, result, l1s, l2s, rows, columns, out_columns, count,
                            margin, safety, scalar);
    } else if (out_columns == 2) {
        switch_rows_two(source, matrix, result, l1s, l2s, rows, columns, bits, count, offset,
                        margin, safety, scalar);
    } else if (bits == 1) {
        switch_rows_bits(source, matrix, result, l1s, l2s, rows, columns, out_columns, count,
                         margin, safety, scalar, scratch);
    } else {
        switch_rows(source, matrix, result, l1s, l2s, rows, columns, out_columns, bits, count,
                    offset, margin, safety, scalar);
    }
}

/*
 * switch_digits(source, key, nibbles, digit_bits, count, offset, margin, safety)
 *   -> (out, l1, l2), new arrays, or None
 *
 * For each row r of ``source`` (shape (..., columns)): the gadget digits c* of its values,
 * value j's ``count`` digits at positions j * count + i (``decompose``'s order), and
 *   out[r] = c* M modulo 2**64, M = ``key`` (columns * count x out_columns),
 *   l1[r]  = (sum |d|) * margin,
 *   l2[r]  = sqrt((sum d*d) * margin) * safety   (pow(x, 0.5) for a one-vector source),
 * the float operations ``IntegerVectorScheme._switch`` applies to the same exact integer sums
 * (the caller keeps the sums below 2**53: each is then one double, exactly). ``out`` has the
 * source's shape with out_columns in place of columns; ``l1`` and ``l2`` the batch shape.
 * digit_bits = 1: d = sign(v) times bit i of |v| (|v| < 2**62, no INT64_MIN).
 * digit_bits = b > 1: d = ((v + H) >> (b i)) & (2**b - 1)) - 2**(b - 1), v + H in uint64
 * (``offset`` = H, taken modulo 2**64).
 * Digits that are zero are skipped: they add nothing to any of the three. ``nibbles``: None,
 * or for bit digits the key's nibble table (``switch_rows_two_nibbles``, ``switch_rows_nibbles``).
 *
 * None where ``source``, ``key`` or the table are not aligned C-contiguous native int64 NumPy
 * arrays of matching sizes (the caller's NumPy path then switches). The outputs are made here
 * with NumPy's C API: for one vector, the buffer protocol's views and three np.empty calls cost
 * more than the switch.
 */
static PyObject *
switch_digits(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "switch_digits takes 8 arguments, got %zd", nargs);
        return NULL;
    }
    const long long bits = PyLong_AsLongLong(args[3]), count = PyLong_AsLongLong(args[4]);
    const unsigned long long offset = PyLong_AsUnsignedLongLongMask(args[5]);
    const double margin = PyFloat_AsDouble(args[6]), safety = PyFloat_AsDouble(args[7]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (bits < 1 || bits > 32 || count < 1 || count > 64 || (bits > 1 && bits * count > 64)) {
        PyErr_SetString(PyExc_ValueError, "switch_digits: unsupported digit width or count");
        return NULL;
    }
    if (args[2] != Py_None && bits != 1) {
        PyErr_SetString(PyExc_ValueError, "switch_digits: a nibble table is for bit digits");
        return NULL;
    }
    if (!plain_array(args[0], NPY_INT64, NULL) || !plain_array(args[1], NPY_INT64, NULL) ||
        (args[2] != Py_None && !plain_array(args[2], NPY_INT64, NULL))) {
        Py_RETURN_NONE;
    }
    PyArrayObject *source_array = (PyArrayObject *)args[0], *key = (PyArrayObject *)args[1];
    const int ndim = PyArray_NDIM(source_array);
    if (ndim < 1 || PyArray_NDIM(key) != 2) {
        Py_RETURN_NONE;
    }
    const npy_intp columns = PyArray_DIM(source_array, ndim - 1);
    const npy_intp out_columns = PyArray_DIM(key, 1);
    if (items_of(columns, (Py_ssize_t)count) != PyArray_DIM(key, 0)) {
        Py_RETURN_NONE;
    }
    const Py_ssize_t table_items = items_of(items_of(columns, 16 * 16), out_columns);
    if (args[2] != Py_None && PyArray_SIZE((PyArrayObject *)args[2]) != table_items) {
        Py_RETURN_NONE;
    }
    npy_intp shape[NPY_MAXDIMS], rows = 1;
    for (int i = 0; i < ndim - 1; i++) {
        shape[i] = PyArray_DIM(source_array, i);
        rows *= shape[i];
    }
    shape[ndim - 1] = out_columns;
    PyObject *out = PyArray_SimpleNew(ndim, shape, NPY_INT64);
    PyObject *l1 = PyArray_SimpleNew(ndim - 1, shape, NPY_FLOAT64);
    PyObject *l2 = PyArray_SimpleNew(ndim - 1, shape, NPY_FLOAT64);
    PyObject *found = (out && l1 && l2) ? PyTuple_Pack(3, out, l1, l2) : NULL;
    Py_XDECREF(out);
    Py_XDECREF(l1);
    Py_XDECREF(l2);
    if (found == NULL) {
        return NULL;
    }
    const uint64_t *nibbles =
        args[2] != Py_None ? (const uint64_t *)PyArray_DATA((PyArrayObject *)args[2]) : NULL;
    uint64_t *scratch;
    if (make_scratch(nibbles, out_columns, bits, &scratch) < 0) {
        Py_DECREF(found);
        return NULL;
    }
    NPY_BEGIN_THREADS_DEF;
    if (rows * columns > 64) { /* a few vectors are quicker than releasing the GIL */
        NPY_BEGIN_THREADS;
    }
    switch_any((const int64_t *)PyArray_DATA(source_array),
               (const uint64_t *)PyArray_DATA(key), nibbles,
               (uint64_t *)PyArray_DATA((PyArrayObject *)out), /* held by ``found`` */
               (double *)PyArray_DATA((PyArrayObject *)l1),
               (double *)PyArray_DATA((PyArrayObject *)l2),
               rows, columns, out_columns, bits, count, offset, margin, safety, ndim == 1, scratch);
    NPY_END_THREADS;
    PyMem_Free(scratch);
    return found;
}

/* round(v / 2**shift), halves away from zero: the magnitude rounded half up, sign put back. */
static inline int64_t
round_shift(i128 v, i128 half, long long shift)
{
    /* |v| < 2**126 (two products of factors below 2**62), so -v and the sums cannot overflow;
     * the sign is put back in uint64 (no signed overflow whatever the caller proved) */
    const uint64_t magnitude = (uint64_t)(((v >= 0 ? v : -v) + half) >> shift);
    return (int64_t)(v >= 0 ? magnitude : (uint64_t)0 - magnitude);
}

/*
 * tensor_round_div(left, right, rows, left_width, right_width, terms, left_index,
 *                  right_index, second, shift, out)
 *
 * out[r, t] = round((left[r, a0] right[r, b0] + second[t] left[r, a1] right[r, b1]) / 2**shift),
 * halves away from zero, with (a0, a1) = left_index[0, t], left_index[1, t] and likewise for
 * the right (second[t] is 0 or 1): the exact 128-bit sum of at most two products of int64
 * factors below 2**62 (each product below 2**124; larger factors give wrong words, never an
 * access out of bounds). The caller proves every quotient below 2**62.
 */
static PyObject *
tensor_round_div(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[4];
    if (get_sizes(args, nargs, 11, 2, 4, s, "tensor_round_div") < 0) {
        return NULL;
    }
    Py_ssize_t rows = s[0], lw = s[1], rw = s[2], terms = s[3];
    long long shift = PyLong_AsLongLong(args[9]);
    if (shift == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (shift < 1 || shift > 125) {
        PyErr_SetString(PyExc_ValueError, "tensor_round_div: shift must be in [1, 125]");
        return NULL;
    }
    const Wanted wanted[6] = {
        {0, items_of(rows, lw), 0, "left", 'q'},
        {1, items_of(rows, rw), 0, "right", 'q'},
        {6, items_of(2, terms), 0, "left_index", 'q'},
        {7, items_of(2, terms), 0, "right_index", 'q'},
        {8, terms, 0, "second", 'q'},
        {10, items_of(rows, terms), 1, "out", 'q'},
    };
    Py_buffer views[6];
    if (get_buffers(args, wanted, 6, views) < 0) {
        return NULL;
    }
    const int64_t *left = views[0].buf, *right = views[1].buf, *li = views[2].buf,
                  *ri = views[3].buf, *second = views[4].buf;
    int64_t *out = views[5].buf;
    if (!factors_valid(li, ri, second, terms, lw, rw)) {
        release(views, 6);
        PyErr_SetString(PyExc_IndexError,
                        "tensor_round_div: a factor index is out of range (or a second-product "
                        "flag not 0 or 1)");
        return NULL;
    }
    const i128 half = (i128)1 << (shift - 1);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const int64_t *a = left + r * lw, *b = right + r * rw;
        int64_t *row_out = out + r * terms;
        for (Py_ssize_t t = 0; t < terms; t++) {
            i128 v = (i128)a[li[t]] * b[ri[t]];
            if (second[t]) {
                v += (i128)a[li[terms + t]] * b[ri[terms + t]];
            }
            row_out[t] = round_shift(v, half, shift);
        }
    }
    Py_END_ALLOW_THREADS
    release(views, 6);
    Py_RETURN_NONE;
}

/*
 * Decryption: its noise bound and its rounding, with NumPy's C API (as ``switch_digits``): a
 * decryption of one vector is a few dozen operations, and the buffer protocol's views and an
 * output made by np.empty cost ten times that (this is what keeps a one-vector decryption,
 * its noise check included, below vhe.cpp's, which checks nothing).
 */

/*
 * The largest decryption noise bound of a tensor into ``*largest``: max over items of
 * min(noise, (det + sg * factor) * safety), or max(noise) where ``det`` and ``sg`` are None.
 * The same float as NumPy's ``np.minimum(noise, (det + sg * factor) * safety).max()``: each
 * operation rounded once, in that order (no fused multiply-add); a NaN anywhere gives NaN, as
 * np.minimum and max propagate it. Returns 0, or 1 where an array is not one ``plain_array``
 * accepts (of noise's shape) or noise is empty.
 */
static int
largest_bound(PyObject *noise_obj, PyObject *det_obj, PyObject *sg_obj, double factor,
              double safety, double *largest)
{
    const int tracked = det_obj != Py_None || sg_obj != Py_None;
    if (!plain_array(noise_obj, NPY_FLOAT64, NULL)) {
        return 1;
    }
    PyArrayObject *noise_array = (PyArrayObject *)noise_obj;
    if (tracked && (!plain_array(det_obj, NPY_FLOAT64, noise_array) ||
                    !plain_array(sg_obj, NPY_FLOAT64, noise_array))) {
        return 1;
    }
    const npy_intp items = PyArray_SIZE(noise_array);
    if (items == 0) {
        return 1;
    }
    const double *noise = PyArray_DATA(noise_array);
    const double *det = tracked ? PyArray_DATA((PyArrayObject *)det_obj) : NULL;
    const double *sg = tracked ? PyArray_DATA((PyArrayObject *)sg_obj) : NULL;
    double found = -INFINITY;
    int nan = 0;
    for (npy_intp i = 0; i < items; i++) {
        double bound = noise[i];
        if (tracked) {
            const double probable = (det[i] + sg[i] * factor) * safety;
            nan |= isnan(probable);
            bound = probable < bound ? probable : bound;
        }
        nan |= isnan(bound);
        found = bound > found ? bound : found;
    }
    *largest = nan ? NAN : found;
    return 0;
}

/*
 * ``tail_factor`` of ciphertext.py for ``count`` values and a failure probability of 2**-bits:
 * sqrt(2 (ln(2 count) + bits ln 2)) (1 + 1e-12), the same operations in the same order on the
 * same C library's log and sqrt that Python's math module calls, so the same float (a test
 * compares them over counts from 0 to 3 x 2**40).
 */
static double
tail_of(npy_intp count, long long bits)
{
    /* the last answer, kept: a training loop decrypts tensors of a few shapes over and over
     * (read and written with the GIL held) */
    static npy_intp last_count = -1;
    static long long last_bits = -1;
    static double last = 0.0;
    if (count == last_count && bits == last_bits) {
        return last;
    }
    const double values = (double)(count > 1 ? count : 1);
    const double exponent = log(2.0 * values) + (double)bits * log(2.0);
    last = sqrt(2.0 * exponent) * (1.0 + 1e-12);
    last_count = count;
    last_bits = bits;
    return last;
}

/* tail_factor(count, bits) -> float: ``tail_of``, for the test that compares it with Python's. */
static PyObject *
tail_factor(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[2];
    if (get_sizes(args, nargs, 2, 0, 2, s, "tail_factor") < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(tail_of((npy_intp)s[0], s[1]));
}

/*
 * decryption_bound(noise, det, sg, factor, safety) -> float, or None
 *
 * ``largest_bound`` (``Ciphertext.decryption_bound``); None where it does not read the arrays
 * (the caller's NumPy path then computes it).
 */
static PyObject *
decryption_bound(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "decryption_bound takes 5 arguments, got %zd", nargs);
        return NULL;
    }
    const double factor = PyFloat_AsDouble(args[3]), safety = PyFloat_AsDouble(args[4]);
    if ((factor == -1.0 || safety == -1.0) && PyErr_Occurred()) {
        return NULL;
    }
    double largest;
    if (largest_bound(args[0], args[1], args[2], factor, safety, &largest) != 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(largest);
}

/*
 * decrypt_pow2(data, t, m, shift, noise, det, sg, worst_case, bits, safety)
 *   -> a new int64 array, or None
 *
 * Where 2 x ``largest_bound(noise, det, sg, factor, safety)`` < w = 2**shift, with factor the
 * ``tail_of`` the tensor's rows x m values for 2**-bits, and ``det`` and ``sg`` taken as None
 * where ``worst_case`` is true (the noise check of ``decrypt``, made on every call: a fresh
 * ciphertext costs what a decrypted one does):
 * out[..., i] = floor((c_i + sum_j T[i, j] c_{m + j} + 2**(shift - 1)) / 2**shift) for every
 * ciphertext c of ``data`` (shape (..., m + k)), with T the first m rows of ``t`` (the secret
 * key's whole ``T``, shape (rows >= m, k)): S c = [I, T] c rounded half up over w, ``decrypt``'s
 * rounding. The result has data's shape with m in place of m + k.
 *
 * None where the bound is not below w / 2 (NaN included) or where the arrays are not what the
 * loops read directly (not ``plain_array``s, shapes that do not match: noise's must be data's
 * without its last axis): the caller's NumPy path then decides, and raises its errors. The
 * caller proves |S c| < 2**62, so no sum wraps; they are formed modulo 2**64 all the same (no
 * undefined behaviour).
 */
static PyObject *
decrypt_pow2(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[2];
    if (get_sizes(args, nargs, 10, 2, 2, s, "decrypt_pow2") < 0) {
        return NULL;
    }
    npy_intp m = (npy_intp)s[0];
    long long shift = s[1];
    if (shift < 1 || shift > 62 || m < 1) {
        PyErr_SetString(PyExc_ValueError, "decrypt_pow2: shift must be in [1, 62] and m >= 1");
        return NULL;
    }
    if (!plain_array(args[0], NPY_INT64, NULL) || !plain_array(args[1], NPY_INT64, NULL)) {
        Py_RETURN_NONE;
    }
    PyArrayObject *data = (PyArrayObject *)args[0], *key = (PyArrayObject *)args[1];
    int ndim = PyArray_NDIM(data);
    if (PyArray_NDIM(key) != 2 || ndim < 1) {
        Py_RETURN_NONE;
    }
    npy_intp k = PyArray_DIM(key, 1);
    if (k < 1 || PyArray_DIM(key, 0) < m || m > NPY_MAX_INTP - k ||
        PyArray_DIM(data, ndim - 1) != m + k) {
        Py_RETURN_NONE;
    }
    /* the noise arrays have the batch shape: data's without its last axis */
    if (!PyArray_Check(args[4]) || PyArray_NDIM((PyArrayObject *)args[4]) != ndim - 1 ||
        memcmp(PyArray_DIMS((PyArrayObject *)args[4]), PyArray_DIMS(data),
               (size_t)(ndim - 1) * sizeof(npy_intp)) != 0) {
        Py_RETURN_NONE;
    }
    const int worst_case = PyObject_IsTrue(args[7]);
    const long long bits = PyLong_AsLongLong(args[8]);
    const double safety = PyFloat_AsDouble(args[9]);
    if (worst_case < 0 || ((bits == -1 || safety == -1.0) && PyErr_Occurred())) {
        return NULL;
    }
    /* the high-probability bound where it is tracked and asked for */
    PyObject *det = worst_case ? Py_None : args[5], *sg = worst_case ? Py_None : args[6];
    const npy_intp rows = PyArray_SIZE(data) / (m + k);
    const double factor = det != Py_None ? tail_of(rows * m, bits) : 0.0;
    double largest;
    /* "not below": a NaN bound refuses too; 2**shift and the doubling are exact */
    if (largest_bound(args[4], det, sg, factor, safety, &largest) != 0 ||
        !(largest * 2.0 < ldexp(1.0, (int)shift))) {
        Py_RETURN_NONE;
    }
    npy_intp shape[NPY_MAXDIMS];
    memcpy(shape, PyArray_DIMS(data), (size_t)ndim * sizeof(npy_intp));
    shape[ndim - 1] = m;
    PyArrayObject *result = (PyArrayObject *)PyArray_SimpleNew(ndim, shape, NPY_INT64);
    if (result == NULL) {
        return NULL;
    }
    const uint64_t *c = PyArray_DATA(data), *t = PyArray_DATA(key);
    int64_t *out = PyArray_DATA(result);
    const uint64_t half = 1ULL << (shift - 1);
    NPY_BEGIN_THREADS_DEF;
    if (rows * m > 4096) { /* one vector is quicker than releasing and taking back the GIL */
        NPY_BEGIN_THREADS;
    }
    for (npy_intp r = 0; r < rows; r++, c += m + k, out += m) {
        const uint64_t *bottom = c + m;
        for (npy_intp i = 0; i < m; i++) {
            uint64_t total = c[i] + half;
            for (npy_intp j = 0; j < k; j++) {
                total += t[i * k + j] * bottom[j];
            }
            out[i] = (int64_t)total >> shift; /* arithmetic shift: floor */
        }
    }
    NPY_END_THREADS;
    return (PyObject *)result;
}

/*
 * mul_round_div(values, factors, rows, width, factor_rows, divisor, out)
 *
 * out[r, j] = round(values[r, j] * f / divisor), halves away from zero, with f = factors[r]
 * (or factors[0] where factor_rows is 1): the exact 128-bit product of two int64 values,
 * rounded (``_round_div_int`` and ``wide.mul_round_div``). The caller proves every quotient
 * below 2**63 and 1 <= divisor < 2**63.
 */
static PyObject *
mul_round_div(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[4];
    if (get_sizes(args, nargs, 7, 2, 4, s, "mul_round_div") < 0) {
        return NULL;
    }
    Py_ssize_t rows = s[0], width = s[1], factor_rows = s[2];
    long long divisor = s[3];
    if (divisor < 1 || (factor_rows != 1 && factor_rows != rows)) {
        PyErr_SetString(PyExc_ValueError,
                        "mul_round_div: divisor must be positive and factor_rows 1 or rows");
        return NULL;
    }
    const Wanted wanted[3] = {
        {0, items_of(rows, width), 0, "values", 'q'},
        {1, factor_rows, 0, "factors", 'q'},
        {6, items_of(rows, width), 1, "out", 'q'},
    };
    Py_buffer views[3];
    if (get_buffers(args, wanted, 3, views) < 0) {
        return NULL;
    }
    const int64_t *values = views[0].buf, *factors = views[1].buf;
    int64_t *out = views[2].buf;
    const u128 d = (unsigned long long)divisor, half = d >> 1;
    int shift = -1;
    if ((divisor & (divisor - 1)) == 0) {
        shift = __builtin_ctzll((unsigned long long)divisor);
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const i128 f = factors[factor_rows == 1 ? 0 : r];
        const int64_t *row = values + r * width;
        int64_t *row_out = out + r * width;
        for (Py_ssize_t j = 0; j < width; j++) {
            i128 v = f * row[j];
            u128 magnitude = v < 0 ? (u128)(-v) : (u128)v;
            magnitude = shift >= 0 ? (magnitude + half) >> shift : (magnitude + half) / d;
            row_out[j] = (int64_t)(v < 0 ? (uint64_t)0 - (uint64_t)magnitude : (uint64_t)magnitude);
        }
    }
    Py_END_ALLOW_THREADS
    release(views, 3);
    Py_RETURN_NONE;
}

/*
 * index_add(target, rows, values, target_rows, width, count, touched, touched_count, margin)
 *
 * target[rows[i]] += values[i] for i = 0, 1, ..., count - 1 in that order (``numpy.add.at``
 * on the rows: int64 wraps modulo 2**64, float64 adds one value at a time in the same order,
 * so the same bits), then, for float64 only, target[touched[j]] *= margin for each j (the
 * margin ``Ciphertext.scatter_add`` gives the rows it added to). Row indices must lie in
 * [0, target_rows): checked, nothing is changed otherwise.
 */
static PyObject *
index_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[3];
    if (get_sizes(args, nargs, 9, 3, 3, s, "index_add") < 0) {
        return NULL;
    }
    Py_ssize_t target_rows = s[0], width = s[1], count = s[2];
    long long touched_count = PyLong_AsLongLong(args[7]);
    double margin = PyFloat_AsDouble(args[8]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer views[4];
    if (PyObject_GetBuffer(args[0], &views[0], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    const char *format = views[0].format ? views[0].format : "B";
    char kind = format_is(format, 'd') ? 'd' : 'q';
    PyBuffer_Release(&views[0]);
    if (get_buffer(args[0], &views[0], items_of(target_rows, width), 1, "target", kind) < 0) {
        return NULL;
    }
    if (get_int64(args[1], &views[1], count, 0, "rows") < 0) {
        release(views, 1);
        return NULL;
    }
    if (get_buffer(args[2], &views[2], items_of(count, width), 0, "values", kind) < 0) {
        release(views, 2);
        return NULL;
    }
    if (touched_count < 0 || (kind == 'q' && touched_count)) {
        release(views, 3);
        PyErr_SetString(PyExc_ValueError, "index_add: touched rows are for float64 targets");
        return NULL;
    }
    if (get_int64(args[6], &views[3], touched_count, 0, "touched") < 0) {
        release(views, 3);
        return NULL;
    }
    const int64_t *rows = views[1].buf, *touched = views[3].buf;
    int bad = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        bad |= rows[i] < 0 || rows[i] >= target_rows;
    }
    for (Py_ssize_t i = 0; i < touched_count; i++) {
        bad |= touched[i] < 0 || touched[i] >= target_rows;
    }
    if (bad) {
        release(views, 4);
        PyErr_SetString(PyExc_IndexError, "index_add: a row index is out of range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (kind == 'q') {
        uint64_t *target = views[0].buf;
        const uint64_t *values = views[2].buf;
        for (Py_ssize_t i = 0; i < count; i++) {
            uint64_t *row = target + rows[i] * width;
            const uint64_t *added = values + i * width;
            for (Py_ssize_t j = 0; j < width; j++) {
                row[j] += added[j];
            }
        }
    } else {
        double *target = views[0].buf;
        const double *values = views[2].buf;
        for (Py_ssize_t i = 0; i < count; i++) {
            double *row = target + rows[i] * width;
            const double *added = values + i * width;
            for (Py_ssize_t j = 0; j < width; j++) {
                row[j] += added[j];
            }
        }
        for (Py_ssize_t i = 0; i < touched_count; i++) {
            double *row = target + touched[i] * width;
            for (Py_ssize_t j = 0; j < width; j++) {
                row[j] *= margin;
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(views, 4);
    Py_RETURN_NONE;
}

/*
 * segment_sum(values, offsets, rows, width, runs, out, safety)
 *
 * The sums of consecutive runs of rows, run i being rows offsets[i] to offsets[i + 1] - 1
 * (offsets rise from 0 to ``rows``; checked): ``Ciphertext.segment_sum``'s results.
 * int64 values: the exact run sums (modulo 2**64, as the differences of wrapping prefix sums
 * are). float64 values (a noise bound): as the differences of the prefix sums, each column
 * added in row order (``numpy.cumsum``), times ``safety``, plus the slack
 * ``max(column totals) * 2**-50 * rows`` that covers their rounding: the same float
 * operations in the same order, so the same bits.
 */
static PyObject *
segment_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[3];
    if (get_sizes(args, nargs, 7, 2, 3, s, "segment_sum") < 0) {
        return NULL;
    }
    Py_ssize_t rows = s[0], width = s[1], runs = s[2];
    double safety = PyFloat_AsDouble(args[6]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer views[3];
    if (PyObject_GetBuffer(args[0], &views[0], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    const char *format = views[0].format ? views[0].format : "B";
    char kind = format_is(format, 'd') ? 'd' : 'q';
    PyBuffer_Release(&views[0]);
    if (get_buffer(args[0], &views[0], items_of(rows, width), 0, "values", kind) < 0) {
        return NULL;
    }
    if (get_int64(args[1], &views[1], runs < PY_SSIZE_T_MAX ? runs + 1 : -1, 0, "offsets") < 0) {
        release(views, 1);
        return NULL;
    }
    if (get_buffer(args[5], &views[2], items_of(runs, width), 1, "out", kind) < 0) {
        release(views, 2);
        return NULL;
    }
    const int64_t *offsets = views[1].buf;
    int bad = offsets[0] != 0 || offsets[runs] != rows;
    for (Py_ssize_t i = 0; i < runs; i++) {
        bad |= offsets[i + 1] < offsets[i];
    }
    double *running = NULL, *previous = NULL;
    if (!bad && kind == 'd' && width) {
        running = PyMem_Malloc(2 * (size_t)width * sizeof(double));
        if (running == NULL) {
            release(views, 3);
            return PyErr_NoMemory();
        }
        previous = running + width;
    }
    if (bad) {
        release(views, 3);
        PyErr_SetString(PyExc_ValueError, "segment_sum: offsets must rise from 0 to the rows");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (kind == 'q') {
        const uint64_t *values = views[0].buf;
        uint64_t *out = views[2].buf;
        for (Py_ssize_t i = 0; i < runs; i++) {
            uint64_t *total = out + i * width;
            memset(total, 0, (size_t)width * sizeof(uint64_t));
            for (Py_ssize_t r = offsets[i]; r < offsets[i + 1]; r++) {
                const uint64_t *row = values + r * width;
                for (Py_ssize_t j = 0; j < width; j++) {
                    total[j] += row[j];
                }
            }
        }
    } else if (width) {
        const double *values = views[0].buf;
        double *out = views[2].buf;
        /* first the column totals (the last prefix row), for the slack */
        double largest = 0.0;
        if (rows) {
            for (Py_ssize_t j = 0; j < width; j++) {
                running[j] = values[j];
            }
            for (Py_ssize_t r = 1; r < rows; r++) {
                const double *row = values + r * width;
                for (Py_ssize_t j = 0; j < width; j++) {
                    running[j] += row[j];
                }
            }
            largest = running[0];
            for (Py_ssize_t j = 0; j < width; j++) { /* numpy.max: a NaN wins */
                if (isnan(running[j]) || running[j] > largest) {
                    largest = running[j];
                    if (isnan(largest)) {
                        break;
                    }
                }
            }
        }
        const double slack = rows ? largest * 0x1p-50 * (double)rows : 0.0;
        /* then the runs, as differences of the same prefix sums */
        for (Py_ssize_t j = 0; j < width; j++) {
            previous[j] = 0.0; /* the row of zeros before the first */
        }
        Py_ssize_t r = 0;
        for (Py_ssize_t i = 0; i < runs; i++) {
            for (; r < offsets[i + 1]; r++) {
                const double *row = values + r * width;
                for (Py_ssize_t j = 0; j < width; j++) {
                    running[j] = r ? running[j] + row[j] : row[j];
                }
            }
            double *run = out + i * width;
            for (Py_ssize_t j = 0; j < width; j++) {
                double prefix = r ? running[j] : 0.0;
                double difference = prefix - previous[j];
                run[j] = rows ? difference * safety + slack : difference * safety + 0.0;
                previous[j] = prefix;
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(running);
    release(views, 3);
    Py_RETURN_NONE;
}

/*
 * product_switch(left, right, rows, left_width, right_width, terms, left_index, right_index,
 *                second, shift, public_terms, public_weights, key, out_columns, digit_bits,
 *                count, offset, margin, safety, scalar, out, l1, l2, nibbles)
 *
 * A product and its key switch in one pass, without the tensor in memory: for each row, the
 * entries e_t of ``tensor_round_div`` (same arguments), then
 *   out[r] = sum_{t < public_terms} e_t W[t]  +  c* M   (modulo 2**64),
 * c* the gadget digits of the other entries (``switch_digits``, same arguments and norms) and
 * W = ``public_weights`` (public_terms x out_columns): the entries whose key weights are
 * public (a slotwise product's tops, each into its slot; an inner product's tops' block,
 * weighted by H into slot 0). The caller proves every entry below 2**62 and the result below
 * 2**62, as for the two kernels apart. Rows go in blocks of ROW_BLOCK; the entries of one
 * block are the only temporaries.
 */
static PyObject *
product_switch(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long s[4];
    if (get_sizes(args, nargs, 24, 2, 4, s, "product_switch") < 0) {
        return NULL;
    }
    Py_ssize_t rows = s[0], lw = s[1], rw = s[2], terms = s[3];
    long long shift = PyLong_AsLongLong(args[9]);
    long long public_terms = PyLong_AsLongLong(args[10]);
    long long out_columns = PyLong_AsLongLong(args[13]);
    long long bits = PyLong_AsLongLong(args[14]);
    long long count = PyLong_AsLongLong(args[15]);
    unsigned long long offset = PyLong_AsUnsignedLongLongMask(args[16]);
    double margin = PyFloat_AsDouble(args[17]);
    double safety = PyFloat_AsDouble(args[18]);
    int scalar = PyObject_IsTrue(args[19]);
    if (PyErr_Occurred() || scalar < 0) {
        return NULL;
    }
    if (shift < 1 || shift > 125 || public_terms < 0 || public_terms >= terms ||
        out_columns < 1 || bits < 1 || bits > 32 || count < 1 || count > 64 ||
        (bits > 1 && bits * count > 64)) {
        PyErr_SetString(PyExc_ValueError,
                        "product_switch: unsupported sizes or digits (at least one entry is "
                        "switched)");
        return NULL;
    }
    const Py_ssize_t switched = terms - public_terms;
    Py_buffer views[11];
    const Wanted wanted[10] = {
        {0, items_of(rows, lw), 0, "left", 'q'},
        {1, items_of(rows, rw), 0, "right", 'q'},
        {6, items_of(2, terms), 0, "left_index", 'q'},
        {7, items_of(2, terms), 0, "right_index", 'q'},
        {8, terms, 0, "second", 'q'},
        {11, items_of(public_terms, out_columns), 0, "public_weights", 'q'},
        {12, items_of(items_of(switched, count), out_columns), 0, "key", 'q'},
        {20, items_of(rows, out_columns), 1, "out", 'q'},
        {21, rows, 1, "l1", 'd'},
        {22, rows, 1, "l2", 'd'},
    };
    if (get_buffers(args, wanted, 10, views) < 0) {
        return NULL;
    }
    int held = 10; /* buffers to release */
    const uint64_t *nibbles = NULL;
    if (args[23] != Py_None) {
        if (bits != 1) {
            release(views, held);
            PyErr_SetString(PyExc_ValueError, "product_switch: a nibble table is for bit digits");
            return NULL;
        }
        if (get_int64(args[23], &views[10], items_of(items_of(switched, 16 * 16), out_columns), 0,
                      "nibbles") < 0) {
            release(views, held);
            return NULL;
        }
        nibbles = views[10].buf;
        held = 11;
    }
    const int64_t *left = views[0].buf, *right = views[1].buf, *li = views[2].buf,
                  *ri = views[3].buf, *second = views[4].buf;
    const uint64_t *weights = views[5].buf, *key = views[6].buf;
    uint64_t *out = views[7].buf;
    double *l1s = views[8].buf, *l2s = views[9].buf;
    const int bad = !factors_valid(li, ri, second, terms, lw, rw);
    int64_t *entries = NULL;
    uint64_t *scratch = NULL;
    if (!bad && terms) {
        entries = PyMem_Malloc((size_t)(ROW_BLOCK * terms) * sizeof(int64_t));
        if (entries == NULL) {
            release(views, held);
            return PyErr_NoMemory();
        }
        if (make_scratch(nibbles, out_columns, bits, &scratch) < 0) {
            PyMem_Free(entries);
            release(views, held);
            return NULL;
        }
    }
    if (bad) {
        release(views, held);
        PyErr_SetString(PyExc_IndexError,
                        "product_switch: a factor index is out of range (or a second-product "
                        "flag not 0 or 1)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    const i128 half = (i128)1 << (shift - 1);
    int64_t *public_part = entries;                          /* block x public_terms */
    int64_t *switched_part = entries + ROW_BLOCK * public_terms; /* block x switched */
    for (Py_ssize_t first = 0; first < rows; first += ROW_BLOCK) {
        const Py_ssize_t block = rows - first < ROW_BLOCK ? rows - first : ROW_BLOCK;
        for (Py_ssize_t b = 0; b < block; b++) {
            const int64_t *a = left + (first + b) * lw, *c = right + (first + b) * rw;
            for (Py_ssize_t t = 0; t < terms; t++) {
                i128 v = (i128)a[li[t]] * c[ri[t]];
                if (second[t]) {
                    v += (i128)a[li[terms + t]] * c[ri[terms + t]];
                }
                if (t < public_terms) {
                    public_part[b * public_terms + t] = round_shift(v, half, shift);
                } else {
                    switched_part[b * switched + (t - public_terms)] = round_shift(v, half, shift);
                }
            }
        }
        uint64_t *block_out = out + first * out_columns;
        switch_any(switched_part, key, nibbles, block_out, l1s + first, l2s + first, block,
                   switched, out_columns, bits, count, offset, margin, safety, scalar, scratch);
        for (Py_ssize_t b = 0; b < block; b++) {
            uint64_t *row_out = block_out + b * out_columns;
            const int64_t *entry = public_part + b * public_terms;
            for (Py_ssize_t t = 0; t < public_terms; t++) {
                const uint64_t value = (uint64_t)entry[t], *weight = weights + t * out_columns;
                if (!value) {
                    continue;
                }
                for (Py_ssize_t o = 0; o < out_columns; o++) {
                    row_out[o] += value * weight[o];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(entries);
    PyMem_Free(scratch);
    release(views, held);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"switch_digits", (PyCFunction)(void (*)(void))switch_digits, METH_FASTCALL,
     "c* M modulo 2**64 with the digits' L1 norms and squared L2 norms, row by row."},
    {"tensor_round_div", (PyCFunction)(void (*)(void))tensor_round_div, METH_FASTCALL,
     "Sums of up to two products rounded over 2**shift (halves away from zero), exactly."},
    {"mul_round_div", (PyCFunction)(void (*)(void))mul_round_div, METH_FASTCALL,
     "Products by one factor per row rounded over a divisor (halves away from zero), exactly."},
    {"product_switch", (PyCFunction)(void (*)(void))product_switch, METH_FASTCALL,
     "A product's tensor entries, the public ones weighted and the others key-switched."},
    {"index_add", (PyCFunction)(void (*)(void))index_add, METH_FASTCALL,
     "Rows of values added at row indices in order (numpy.add.at), then rows scaled."},
    {"segment_sum", (PyCFunction)(void (*)(void))segment_sum, METH_FASTCALL,
     "Sums of consecutive runs of rows (exact for int64; prefix differences for float64)."},
    {"tail_factor", (PyCFunction)(void (*)(void))tail_factor, METH_FASTCALL,
     "ciphertext.py's tail_factor(count) for 2**-bits, as the decryption kernel computes it."},
    {"decryption_bound", (PyCFunction)(void (*)(void))decryption_bound, METH_FASTCALL,
     "max of min(noise, (det + sg factor) safety), NumPy's floats (None: not a layout it reads)."},
    {"decrypt_pow2", (PyCFunction)(void (*)(void))decrypt_pow2, METH_FASTCALL,
     "round(S c / 2**shift), halves up, after the noise check (None: refused or not read)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "hennframework.schemes.integer_vector._kernels",
    "Compiled kernels of the integer-vector scheme (see native.py).", -1, methods, NULL, NULL,
    NULL, NULL,
};

/* Raised whenever the arguments a kernel accepts change (2: nibble tables for keys of any
 * width; 3: decrypt_pow2 checks the noise, makes its result and reads the whole T; the
 * decryption bound; switch_digits makes its outputs), so that a module built from older
 * sources (an editable install not rebuilt after an update) is refused by native.py rather
 * than called. */
#define API_VERSION 3

PyMODINIT_FUNC
PyInit__kernels(void)
{
    if (_import_array() < 0) { /* NumPy's C API, for decrypt_pow2 */
        return NULL;
    }
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "API_VERSION", API_VERSION) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
