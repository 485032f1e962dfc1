/* The JSON Lines of one record batch, written from the columns' Arrow buffers in C.
 *
 * gateway.dataplane.encoders.JsonLinesEncoder prepares each column (casts, the JSON text of
 * floats and of what JSON has no type for) and calls
 *
 *     lines(length, columns, end) -> bytes
 *
 * with `columns` a sequence of (key, kind, offset, validity, values, data) in the order the keys
 * are written: `key` the bytes written before the value (`{"name":` for the first column,
 * `,"name":` for the others), `kind` one of the constants below, `offset` the array's offset,
 * `validity` its validity bitmap or None, `values` its values (int32 offsets for STRING and
 * RAW, a bitmap for BOOL, fixed-width integers) and `data` the bytes of STRING and RAW values
 * (or None). Each line is the keys and values of one row followed by `end` (`}\n`).
 *
 * FLOAT values are the text Arrow's cast to string gives a double, written as repr() places
 * it; DATE32 values (days since 1970-01-01) are written as Arrow's cast writes them, quoted.
 * STRING values are written as json.dumps(ensure_ascii=False) writes a str: in quotes, with
 * `"` and `\` escaped, \b \f \n \r \t as such and the other controls as \u00XX; nothing else
 * (UTF-8 passes through). RAW values are JSON text already. Integers are written in decimal,
 * booleans as true/false, nulls of every kind as null.
 *
 * Every buffer is checked against the lengths it must have before a byte is written, and every
 * string offset before its bytes are read: a bad buffer raises ValueError, it never reads out
 * of bounds. The GIL is released while the lines are written (into the bytes object returned,
 * which nothing else holds yet), so that two threads write the two halves of a batch on two
 * cores.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_STRING = 0,
    K_RAW = 1,
    K_BOOL = 2,
    K_NULL = 3,
    K_INT8 = 4,
    K_INT16 = 5,
    K_INT32 = 6,
    K_INT64 = 7,
    K_UINT8 = 8,
    K_UINT16 = 9,
    K_UINT32 = 10,
    K_UINT64 = 11,
    K_FLOAT = 12,
    K_DATE32 = 13,
    K_COUNT = 14
};

/* The widest text of a value of each kind, for the fixed-size kinds. */
static const Py_ssize_t MAX_TEXT[K_COUNT] = {0, 0, 5, 4, 4, 6, 11, 20, 3, 5, 10, 20, 0, 12};
static const Py_ssize_t WIDTH[K_COUNT] = {0, 0, 0, 0, 1, 2, 4, 8, 1, 2, 4, 8, 0, 4};
#define DATE_FIRST (-719162) /* 0001-01-01 in days since 1970-01-01 */
#define DATE_LAST 2932896    /* 9999-12-31 */
#define FLOAT_TEXT 32 /* the longest repr of a double: -1.2345678901234567e-308 and less */
#define FLOAT_DIGITS 17 /* the most significant digits of a double's shortest text */

typedef struct {
    int kind;
    Py_ssize_t offset;
    Py_buffer key, validity, values, data;
    int held_key, held_validity, held_values, held_data;
} Column;

enum { E_NONE = 0, E_OFFSETS, E_FLOAT, E_DATE };

static unsigned char ESCAPE[256]; /* 0: as is; 'u': \u00XX; else the letter after the \ */
static const char HEX[] = "0123456789abcdef";
static const unsigned char EMPTY[1] = {0}; /* the data of a column without a data buffer */
static const char DIGITS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Out;

/* Whether `need` more bytes fit. The room is reckoned from the buffers before (see `lines`),
 * so only offsets that overlap or go backwards under nulls could make it short. */
static inline int room(const Out *out, Py_ssize_t need) {
    return need <= out->cap - out->len;
}

/* Scratch buffers, kept between calls: the lines of a batch are a few MB, and memory the
 * process takes afresh from the system for each (glibc's malloc maps blocks that large) costs
 * a page fault per 4 KiB written, more than the writing itself. The lines are written into a
 * kept buffer and copied into a bytes object of their exact size (a block glibc recycles).
 * Taken and given back with the GIL held, which guards the list; at most SCRATCH_KEPT are
 * kept (two threads write the two halves of a batch), none larger than SCRATCH_LARGEST. */
#define SCRATCH_KEPT 2
#define SCRATCH_LARGEST ((Py_ssize_t)256 << 20)
static Out SCRATCH[SCRATCH_KEPT];
static int scratch_count = 0;

/* Take a buffer of at least `cap` bytes into `out` (len 0); 0 when memory ran out. */
static int scratch_take(Out *out, Py_ssize_t cap) {
    out->buf = NULL;
    out->cap = 0;
    for (int i = 0; i < scratch_count; i++) {  /* the smallest kept one that fits, else any */
        if (SCRATCH[i].cap >= cap && (out->buf == NULL || SCRATCH[i].cap < out->cap)) *out = SCRATCH[i];
    }
    if (out->buf == NULL && scratch_count > 0) *out = SCRATCH[scratch_count - 1];
    if (out->buf != NULL) {  /* remove it from the list */
        for (int i = 0; i < scratch_count; i++) {
            if (SCRATCH[i].buf == out->buf) {
                SCRATCH[i] = SCRATCH[--scratch_count];
                break;
            }
        }
    }
    if (out->cap < cap) {  /* not realloc: the old bytes need no copy */
        free(out->buf);
        out->buf = malloc((size_t)cap);
        out->cap = out->buf == NULL ? 0 : cap;
    }
    out->len = 0;
    return out->buf != NULL;
}

static void scratch_give(Out *out) {
    if (out->buf == NULL) return;
    if (scratch_count < SCRATCH_KEPT && out->cap <= SCRATCH_LARGEST) {
        SCRATCH[scratch_count++] = *out;
    } else {
        free(out->buf);
    }
    out->buf = NULL;
}

static inline char *write_u64(char *p, uint64_t v) {
    char tmp[20];
    char *end = tmp + sizeof tmp, *s = end;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        s -= 2;
        memcpy(s, DIGITS + i, 2);
    }
    if (v >= 10) {
        s -= 2;
        memcpy(s, DIGITS + v * 2, 2);
    } else {
        *--s = (char)('0' + v);
    }
    memcpy(p, s, (size_t)(end - s));
    return p + (end - s);
}

static inline char *write_i64(char *p, int64_t v) {
    if (v < 0) {
        *p++ = '-';
        return write_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return write_u64(p, (uint64_t)v);
}

static inline int bit(const unsigned char *bits, Py_ssize_t i) {
    return (bits[i >> 3] >> (i & 7)) & 1;
}

static inline int32_t load_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Whether any of the 8 bytes of `w` is a control (< 0x20), a quote or a backslash: the
 * has-less-than and has-zero tests of "Bit Twiddling Hacks", exact for the word as a whole. */
static inline int needs_escape8(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    uint64_t found = ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote)
                     | ((slash - ones) & ~slash);
    return (found & high) != 0;
}

/* Whether any byte of s .. e needs an escape, eight bytes at a time. */
static inline int needs_escape(const unsigned char *s, const unsigned char *e) {
    for (; e - s >= 8; s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        if (needs_escape8(w)) return 1;
    }
    for (; s < e; s++)
        if (ESCAPE[*s]) return 1;
    return 0;
}

static inline char *write_string(char *p, const unsigned char *s, const unsigned char *e) {
    *p++ = '"';
    if (!needs_escape(s, e)) {  /* most text: one copy */
        memcpy(p, s, (size_t)(e - s));
        p += e - s;
        *p++ = '"';
        return p;
    }
    while (s < e) {
        const unsigned char *run = s;
        while (s < e && !ESCAPE[*s]) s++;
        memcpy(p, run, (size_t)(s - run));
        p += s - run;
        if (s == e) break;
        unsigned char c = *s++, x = ESCAPE[c];
        *p++ = '\\';
        if (x == 'u') {
            memcpy(p, "u00", 3);
            p[3] = HEX[c >> 4];
            p[4] = HEX[c & 15];
            p += 5;
        } else {
            *p++ = (char)x;
        }
    }
    *p++ = '"';
    return p;
}

/* Write a double as Python's repr() (json.dumps: NaN, Infinity, -Infinity) from the shortest
 * text Arrow's cast to string gives it ([-]digits[.digits][e[+-]digits], nan, inf, -inf): the
 * same digits, placed as repr places them (an exponent when the decimal point would be more
 * than 16 digits right or 4 left of the first digit, else ".0" after an integral value).
 * NULL when the text is none of those. */
static char *write_float(char *p, const unsigned char *s, Py_ssize_t n) {
    const unsigned char *e = s + n;
    if (n == 3 && memcmp(s, "nan", 3) == 0) return memcpy(p, "NaN", 3), p + 3;
    if (n == 4 && memcmp(s, "-nan", 4) == 0) return memcpy(p, "NaN", 3), p + 3;
    if (n == 3 && memcmp(s, "inf", 3) == 0) return memcpy(p, "Infinity", 8), p + 8;
    if (n == 4 && memcmp(s, "-inf", 4) == 0) return memcpy(p, "-Infinity", 9), p + 9;
    char digits[FLOAT_DIGITS];
    int nd = 0, seen = 0, integral = 1;
    int64_t decpt = 0, zeros = 0; /* zeros: seen after the last non-zero digit, not kept yet */
    int negative = s < e && *s == '-';
    if (negative) s++;
    for (; s < e; s++) {
        if (*s == '.' && integral) {
            integral = 0;
            continue;
        }
        if (*s < '0' || *s > '9') break;
        seen++;
        if (integral) decpt++;
        if (*s == '0') {
            if (nd == 0) decpt--; /* a leading zero (0.00ddd, 0ddd) is no digit of the value */
            else zeros++;
            continue;
        }
        if (nd + zeros + 1 > FLOAT_DIGITS) return NULL;
        memset(digits + nd, '0', (size_t)zeros);
        nd += (int)zeros;
        zeros = 0;
        digits[nd++] = (char)*s;
    }
    if (!seen) return NULL;
    if (s < e && (*s == 'e' || *s == 'E')) {
        int minus = 0;
        long exponent = 0;
        s++;
        if (s < e && (*s == '+' || *s == '-')) minus = *s++ == '-';
        if (s == e) return NULL;
        for (; s < e && *s >= '0' && *s <= '9'; s++) {
            exponent = exponent * 10 + (*s - '0');
            if (exponent > 9999) return NULL;
        }
        decpt += minus ? -exponent : exponent;
    }
    if (s != e) return NULL;
    if (negative) *p++ = '-';
    if (nd == 0) return memcpy(p, "0.0", 3), p + 3;
    if (decpt <= -4 || decpt > 16) {
        int64_t x = decpt - 1;
        *p++ = digits[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, (size_t)(nd - 1));
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = x < 0 ? '-' : '+';
        if (x < 0) x = -x;
        if (x < 10) *p++ = '0';
        return write_u64(p, (uint64_t)x);
    }
    if (decpt <= 0) {
        memcpy(p, "0.", 2);
        p += 2;
        memset(p, '0', (size_t)-decpt);
        p += -decpt;
        memcpy(p, digits, (size_t)nd);
        return p + nd;
    }
    if (decpt >= nd) {
        memcpy(p, digits, (size_t)nd);
        p += nd;
        memset(p, '0', (size_t)(decpt - nd));
        p += decpt - nd;
        memcpy(p, ".0", 2);
        return p + 2;
    }
    memcpy(p, digits, (size_t)decpt);
    p += decpt;
    *p++ = '.';
    memcpy(p, digits + decpt, (size_t)(nd - decpt));
    return p + nd - decpt;
}

/* Write a date32 (days since 1970-01-01, years 1 to 9999) as "YYYY-MM-DD", as Arrow's cast
 * to string writes it: the civil calendar from days (H. Hinnant's days_from_civil, inverted). */
static inline char *write_date(char *p, int32_t days) {
    long z = (long)days + 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long y = yoe + era * 400 + (m <= 2);
    p[0] = '"';
    memcpy(p + 1, DIGITS + 2 * (y / 100), 2);
    memcpy(p + 3, DIGITS + 2 * (y % 100), 2);
    p[5] = '-';
    memcpy(p + 6, DIGITS + 2 * m, 2);
    p[8] = '-';
    memcpy(p + 9, DIGITS + 2 * d, 2);
    p[11] = '"';
    return p + 12;
}

/* Write every line; return an E_ code (and the row and column of a bad offset). */
static int write_lines(Out *out, Column *cols, Py_ssize_t ncols, Py_ssize_t length,
                       const char *end, Py_ssize_t end_len, Py_ssize_t fixed,
                       Py_ssize_t *bad_row, Py_ssize_t *bad_col) {
    for (Py_ssize_t r = 0; r < length; r++) {
        if (!room(out, fixed)) {
            *bad_row = r;
            *bad_col = 0;
            return E_OFFSETS;
        }
        for (Py_ssize_t c = 0; c < ncols; c++) {
            Column *col = &cols[c];
            Py_ssize_t i = col->offset + r;
            int valid = !col->held_validity || bit(col->validity.buf, i);
            if (col->kind == K_STRING || col->kind == K_RAW || col->kind == K_FLOAT) {
                /* the room of the key and of a null is in `fixed` */
                memcpy(out->buf + out->len, col->key.buf, (size_t)col->key.len);
                out->len += col->key.len;
                if (!valid) {
                    memcpy(out->buf + out->len, "null", 4);
                    out->len += 4;
                    continue;
                }
                const unsigned char *offsets = col->values.buf;
                int32_t start = load_i32(offsets + 4 * i), stop = load_i32(offsets + 4 * i + 4);
                if (start < 0 || stop < start || stop > col->data.len) {
                    *bad_row = r;
                    *bad_col = c;
                    return E_OFFSETS;
                }
                const unsigned char *s = (const unsigned char *)col->data.buf + start;
                Py_ssize_t n = stop - start;
                if (col->kind == K_FLOAT) {
                    char *p = write_float(out->buf + out->len, s, n);
                    if (p == NULL) {
                        *bad_row = r;
                        *bad_col = c;
                        return E_FLOAT;
                    }
                    out->len = p - out->buf;
                } else if (col->kind == K_RAW) {
                    if (!room(out, n + fixed)) {
                        *bad_row = r;
                        *bad_col = c;
                        return E_OFFSETS;
                    }
                    memcpy(out->buf + out->len, s, (size_t)n);
                    out->len += n;
                } else {
                    if (n > (PY_SSIZE_T_MAX - fixed - 2) / 6 || !room(out, 6 * n + 2 + fixed)) {
                        *bad_row = r;
                        *bad_col = c;
                        return E_OFFSETS;
                    }
                    out->len = write_string(out->buf + out->len, s, s + n) - out->buf;
                }
                continue;
            }
            char *p = out->buf + out->len;
            memcpy(p, col->key.buf, (size_t)col->key.len);
            p += col->key.len;
            if (!valid || col->kind == K_NULL) {
                memcpy(p, "null", 4);
                out->len = p + 4 - out->buf;
                continue;
            }
            const unsigned char *v = col->values.buf;
            switch (col->kind) {
            case K_BOOL:
                if (bit(v, i)) {
                    memcpy(p, "true", 4);
                    p += 4;
                } else {
                    memcpy(p, "false", 5);
                    p += 5;
                }
                break;
            case K_INT8: p = write_i64(p, ((const int8_t *)v)[i]); break;
            case K_INT16: { int16_t x; memcpy(&x, v + 2 * i, 2); p = write_i64(p, x); break; }
            case K_INT32: { int32_t x; memcpy(&x, v + 4 * i, 4); p = write_i64(p, x); break; }
            case K_INT64: { int64_t x; memcpy(&x, v + 8 * i, 8); p = write_i64(p, x); break; }
            case K_UINT8: p = write_u64(p, v[i]); break;
            case K_UINT16: { uint16_t x; memcpy(&x, v + 2 * i, 2); p = write_u64(p, x); break; }
            case K_UINT32: { uint32_t x; memcpy(&x, v + 4 * i, 4); p = write_u64(p, x); break; }
            case K_UINT64: { uint64_t x; memcpy(&x, v + 8 * i, 8); p = write_u64(p, x); break; }
            case K_DATE32: {
                int32_t x;
                memcpy(&x, v + 4 * i, 4);
                if (x < DATE_FIRST || x > DATE_LAST) {
                    *bad_row = r;
                    *bad_col = c;
                    return E_DATE;
                }
                p = write_date(p, x);
                break;
            }
            }
            out->len = p - out->buf;
        }
        memcpy(out->buf + out->len, end, (size_t)end_len);
        out->len += end_len;
    }
    return E_NONE;
}

static void release(Column *cols, Py_ssize_t n) {
    for (Py_ssize_t c = 0; c < n; c++) {
        if (cols[c].held_key) PyBuffer_Release(&cols[c].key);
        if (cols[c].held_validity) PyBuffer_Release(&cols[c].validity);
        if (cols[c].held_values) PyBuffer_Release(&cols[c].values);
        if (cols[c].held_data) PyBuffer_Release(&cols[c].data);
    }
}

/* Take the buffer of `obj` into `view` (None: not held); 0 with an exception set on error. */
static int take(PyObject *obj, Py_buffer *view, int *held) {
    if (obj == Py_None) return 1;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) return 0;
    *held = 1;
    return 1;
}

static int too_short(Py_ssize_t c, const char *what, Py_ssize_t have, Py_ssize_t want) {
    PyErr_Format(PyExc_ValueError, "column %zd: the %s buffer holds %zd bytes, %zd are needed",
                 c, what, have, want);
    return 0;
}

/* Take and check column `c` of the arguments (with the GIL); 0 with an exception set. */
static int column(PyObject *item, Py_ssize_t c, Py_ssize_t length, Column *col) {
    PyObject *key, *validity, *values, *data;
    Py_ssize_t offset;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 6) {
        PyErr_Format(PyExc_TypeError,
                     "column %zd: a tuple (key, kind, offset, validity, values, data) is needed",
                     c);
        return 0;
    }
    if (!PyArg_ParseTuple(item, "OinOOO", &key, &col->kind, &offset, &validity, &values, &data))
        return 0;
    if (col->kind < 0 || col->kind >= K_COUNT) {
        PyErr_Format(PyExc_ValueError, "column %zd: no column kind %d", c, col->kind);
        return 0;
    }
    if (offset < 0 || offset > PY_SSIZE_T_MAX / 8 - length - 1) {
        PyErr_Format(PyExc_ValueError, "column %zd: offset %zd out of range", c, offset);
        return 0;
    }
    col->offset = offset;
    if (!take(key, &col->key, &col->held_key) || !take(validity, &col->validity, &col->held_validity)
        || !take(values, &col->values, &col->held_values) || !take(data, &col->data, &col->held_data))
        return 0;
    if (!col->held_key) {
        PyErr_Format(PyExc_TypeError, "column %zd: the key must be bytes", c);
        return 0;
    }
    if (length == 0) return 1;
    Py_ssize_t stop = offset + length, bitmap = (stop + 7) / 8;
    if (col->held_validity && col->validity.len < bitmap)
        return too_short(c, "validity", col->validity.len, bitmap);
    if (col->kind == K_NULL) return 1;
    Py_ssize_t want;
    const char *what = "values";
    if (col->kind == K_STRING || col->kind == K_RAW || col->kind == K_FLOAT) {
        want = 4 * (stop + 1);
        what = "offsets";
    } else if (col->kind == K_BOOL) {
        want = bitmap;
    } else {
        want = WIDTH[col->kind] * stop;
    }
    Py_ssize_t have = col->held_values ? col->values.len : 0;
    if (have < want) return too_short(c, what, have, want);
    if (!col->held_data) {  /* no data: every value must be empty, which the offsets tell */
        col->data.buf = (void *)EMPTY;
        col->data.len = 0;
    }
    return 1;
}

static PyObject *lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t length;
    PyObject *seq;
    Py_buffer end;
    if (!PyArg_ParseTuple(args, "nOy*", &length, &seq, &end)) return NULL;
    PyObject *fast = NULL;
    Column *cols = NULL;
    Py_ssize_t ncols = 0, taken = 0;
    PyObject *result = NULL;
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "a negative length");
        goto done;
    }
    fast = PySequence_Fast(seq, "the columns must be a sequence");
    if (fast == NULL) goto done;
    ncols = PySequence_Fast_GET_SIZE(fast);
    cols = calloc(ncols ? (size_t)ncols : 1, sizeof(Column));
    if (cols == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* `fixed`: the room a row takes at most, but for the text of its non-null strings and raw
     * values, which the spans of their offsets bound (six bytes for one: \u00XX) */
    Py_ssize_t fixed = end.len, bound = 0;
    const Py_ssize_t limit = PY_SSIZE_T_MAX / 4;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        taken = c + 1;
        if (!column(PySequence_Fast_GET_ITEM(fast, c), c, length, &cols[c])) goto done;
        Column *col = &cols[c];
        Py_ssize_t most = MAX_TEXT[col->kind] > 4 ? MAX_TEXT[col->kind] : 4;
        if (col->kind == K_FLOAT) most = FLOAT_TEXT;
        if (col->key.len > limit || fixed > limit) goto too_large;
        fixed += col->key.len + most;
        if ((col->kind == K_STRING || col->kind == K_RAW) && length) {
            const unsigned char *o = col->values.buf;
            Py_ssize_t span = (Py_ssize_t)load_i32(o + 4 * (col->offset + length))
                              - load_i32(o + 4 * col->offset);
            if (span > 0) bound += (col->kind == K_STRING ? 6 : 1) * span; /* < 2^35 each */
            if (bound > limit) goto too_large;
        }
    }
    if (length && fixed > (limit - bound) / (length + 1)) goto too_large;
    bound += fixed * (length + 1); /* a row more: the room each value asks for beyond its own */
    if (length == 0) {
        result = PyBytes_FromStringAndSize(NULL, 0);
        goto done;
    }
    Out out;
    if (!scratch_take(&out, bound)) {
        PyErr_NoMemory();
        goto done;
    }
    int err;
    Py_ssize_t bad_row = 0, bad_col = 0;
    Py_BEGIN_ALLOW_THREADS
    err = write_lines(&out, cols, ncols, length, end.buf, end.len, fixed, &bad_row, &bad_col);
    Py_END_ALLOW_THREADS
    if (err == E_OFFSETS) {
        PyErr_Format(PyExc_ValueError,
                     "column %zd, row %zd: the offsets point outside the data (%zd bytes), "
                     "overlap or go backwards",
                     bad_col, bad_row, cols[bad_col].data.len);
    } else if (err == E_FLOAT) {
        PyErr_Format(PyExc_ValueError,
                     "column %zd, row %zd: the text is not the shortest text of a double",
                     bad_col, bad_row);
    } else if (err == E_DATE) {
        PyErr_Format(PyExc_ValueError,
                     "column %zd, row %zd: a date outside the years 1 to 9999", bad_col, bad_row);
    } else {
        result = PyBytes_FromStringAndSize(out.buf, out.len);
    }
    scratch_give(&out);
    goto done;
too_large:
    PyErr_SetString(PyExc_OverflowError, "the lines of this batch would be too large");
done:
    if (cols != NULL) {
        release(cols, taken);
        free(cols);
    }
    Py_XDECREF(fast);
    PyBuffer_Release(&end);
    return result;
}

static PyMethodDef METHODS[] = {
    {"lines", lines, METH_VARARGS,
     "lines(length, columns, end) -> bytes: the JSON Lines of one record batch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "gateway.dataplane._jsonl",
    "The JSON Lines of a record batch from its Arrow buffers (see encoders.py).", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsonl(void) {
    for (int c = 0; c < 0x20; c++) ESCAPE[c] = 'u';
    ESCAPE['\b'] = 'b';
    ESCAPE['\f'] = 'f';
    ESCAPE['\n'] = 'n';
    ESCAPE['\r'] = 'r';
    ESCAPE['\t'] = 't';
    ESCAPE['"'] = '"';
    ESCAPE['\\'] = '\\';
    PyObject *m = PyModule_Create(&MODULE);
    if (m == NULL) return NULL;
    static const char *NAMES[K_COUNT] = {"STRING", "RAW", "BOOL", "NULL", "INT8", "INT16",
                                         "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
                                         "FLOAT", "DATE32"};
    for (int k = 0; k < K_COUNT; k++) {
        if (PyModule_AddIntConstant(m, NAMES[k], k) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
