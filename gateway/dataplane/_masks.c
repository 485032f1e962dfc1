/* The masking shapes of gateway/dataplane/masks.py, over a whole string column in C.
 *
 * gateway.dataplane.obligations.mask_array calls
 *
 *     mask(kind, length, offset, offsets, data) -> (offsets, data)
 *
 * with `offsets` the int32 offsets and `data` the UTF-8 bytes of a string array of `length`
 * values starting at `offset`, and gets back the int32 offsets (length + 1, from 0) and the
 * bytes of the masked values, each masked to its shape as masks.py masks a str, counting
 * characters as Python does (code points: the bytes that are no UTF-8 continuation byte):
 *
 *     TEXT     ***
 *     NAME     the first character and **; shorter than 2 characters: *
 *     PHONE    the first 3 and last 4 characters, the rest *; shorter than 11: all *
 *     ID_CARD  the first and last character, the rest *; shorter than 15: all *
 *     EMAIL    the first character before the first @, ***@, and all after it; without an @,
 *              a character before it and one after it: ***
 *
 * A null's slot is masked as its bytes say (Arrow keeps them empty); the caller puts the nulls
 * back from the input's validity. Every offset is checked before its bytes are read (a bad one
 * raises ValueError, it never reads out of bounds), and the GIL is released while the values
 * are written, so that masks run beside the encoder on another core.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

enum { M_TEXT = 0, M_NAME, M_PHONE, M_ID_CARD, M_EMAIL, M_COUNT };

#define MOST_EXTRA 6 /* a value's masked bytes are at most its own and this many more */

static inline int32_t load_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store_i32(unsigned char *p, int32_t v) { memcpy(p, &v, sizeof v); }

static inline int continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

static Py_ssize_t characters(const unsigned char *s, const unsigned char *e) {
    Py_ssize_t n = e - s;
    for (; e - s >= 8; s += 8) { /* eight bytes at a time: a continuation byte is 10xxxxxx */
        uint64_t w;
        memcpy(&w, s, 8);
        uint64_t c = (w & ~(w << 1)) & 0x8080808080808080ULL; /* top bit set, next clear */
        n -= __builtin_popcountll(c);
    }
    for (; s < e; s++) n -= continuation(*s);
    return n;
}

/* The end of the first `k` characters of s .. e. */
static const unsigned char *after(const unsigned char *s, const unsigned char *e, Py_ssize_t k) {
    for (; k > 0 && s < e; k--) {
        s++;
        while (s < e && continuation(*s)) s++;
    }
    return s;
}

/* The start of the last `k` characters of s .. e. */
static const unsigned char *before(const unsigned char *s, const unsigned char *e, Py_ssize_t k) {
    for (; k > 0 && e > s; k--) {
        e--;
        while (e > s && continuation(*e)) e--;
    }
    return e;
}

static inline unsigned char *put(unsigned char *p, const unsigned char *s, const unsigned char *e) {
    memcpy(p, s, (size_t)(e - s));
    return p + (e - s);
}

static inline unsigned char *stars(unsigned char *p, Py_ssize_t n) {
    memset(p, '*', (size_t)n);
    return p + n;
}

/* Keep the first `head` and last `tail` characters of a value of `minimum` or more. */
static unsigned char *keep_ends(unsigned char *p, const unsigned char *s, const unsigned char *e,
                                Py_ssize_t head, Py_ssize_t tail, Py_ssize_t minimum) {
    Py_ssize_t n = characters(s, e);
    if (n < minimum) return stars(p, n);
    const unsigned char *h, *t;
    if (n == e - s) { /* ASCII: a character is a byte */
        h = s + head;
        t = e - tail;
    } else {
        h = after(s, e, head);
        t = before(s, e, tail);
    }
    if (t < h) t = h;
    p = put(p, s, h);
    p = stars(p, n - head - tail);
    return put(p, t, e);
}

static unsigned char *mask_one(int kind, unsigned char *p, const unsigned char *s,
                               const unsigned char *e) {
    switch (kind) {
    case M_NAME:
        if (characters(s, e) < 2) return stars(p, 1);
        p = put(p, s, after(s, e, 1));
        return stars(p, 2);
    case M_PHONE: return keep_ends(p, s, e, 3, 4, 11);
    case M_ID_CARD: return keep_ends(p, s, e, 1, 1, 15);
    case M_EMAIL: {
        const unsigned char *at = memchr(s, '@', (size_t)(e - s));
        if (at == NULL || at == s || at + 1 == e) return stars(p, 3);
        p = put(p, s, after(s, at, 1));
        p = put(p, (const unsigned char *)"***@", (const unsigned char *)"***@" + 4);
        return put(p, at + 1, e);
    }
    default: return stars(p, 3);
    }
}

static PyObject *mask(PyObject *self, PyObject *args) {
    (void)self;
    int kind;
    Py_ssize_t length, offset;
    Py_buffer offsets, data;
    if (!PyArg_ParseTuple(args, "inny*y*", &kind, &length, &offset, &offsets, &data)) return NULL;
    PyObject *result = NULL, *out_offsets = NULL, *out_data = NULL;
    if (kind < 0 || kind >= M_COUNT) {
        PyErr_Format(PyExc_ValueError, "no mask kind %d", kind);
        goto done;
    }
    if (length < 0 || offset < 0 || offset > PY_SSIZE_T_MAX / 8 - length - 1) {
        PyErr_SetString(PyExc_ValueError, "a negative or too large length or offset");
        goto done;
    }
    if (offsets.len < 4 * (offset + length + 1)) {
        PyErr_Format(PyExc_ValueError, "the offsets buffer holds %zd bytes, %zd are needed",
                     offsets.len, 4 * (offset + length + 1));
        goto done;
    }
    const unsigned char *o = (const unsigned char *)offsets.buf + 4 * offset;
    const unsigned char *bytes = data.len ? data.buf : (const unsigned char *)"";
    Py_ssize_t bound = 0;
    for (Py_ssize_t i = 0; i < length; i++) { /* check every offset; the room the values take */
        int32_t start = load_i32(o + 4 * i), stop = load_i32(o + 4 * i + 4);
        if (start < 0 || stop < start || stop > data.len) {
            PyErr_Format(PyExc_ValueError,
                         "row %zd: the offsets point outside the data (%zd bytes) or go backwards",
                         i, data.len);
            goto done;
        }
        bound += (Py_ssize_t)(stop - start) + MOST_EXTRA;
    }
    if (bound > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "the masked values would not fit 32-bit offsets");
        goto done;
    }
    out_offsets = PyBytes_FromStringAndSize(NULL, 4 * (length + 1));
    out_data = PyBytes_FromStringAndSize(NULL, bound ? bound : 1);
    if (out_offsets == NULL || out_data == NULL) goto done;
    unsigned char *oo = (unsigned char *)PyBytes_AS_STRING(out_offsets);
    unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out_data), *p = base;
    Py_BEGIN_ALLOW_THREADS
    store_i32(oo, 0);
    for (Py_ssize_t i = 0; i < length; i++) {
        int32_t start = load_i32(o + 4 * i), stop = load_i32(o + 4 * i + 4);
        p = mask_one(kind, p, bytes + start, bytes + stop);
        store_i32(oo + 4 * (i + 1), (int32_t)(p - base));
    }
    Py_END_ALLOW_THREADS
    if (_PyBytes_Resize(&out_data, p - base) < 0) goto done;
    result = PyTuple_Pack(2, out_offsets, out_data);
done:
    Py_XDECREF(out_offsets);
    Py_XDECREF(out_data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef METHODS[] = {
    {"mask", mask, METH_VARARGS,
     "mask(kind, length, offset, offsets, data) -> (offsets, data): a string column masked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "gateway.dataplane._masks",
    "The masking shapes over a string column's Arrow buffers (see obligations.py).", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__masks(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (m == NULL) return NULL;
    static const char *NAMES[M_COUNT] = {"TEXT", "NAME", "PHONE", "ID_CARD", "EMAIL"};
    for (int k = 0; k < M_COUNT; k++) {
        if (PyModule_AddIntConstant(m, NAMES[k], k) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
