/* The rows of a PostgreSQL COPY TO, drained from libpq into one buffer in C, the GIL released.
 *
 * gateway.dataplane.sql reads `COPY (...) TO STDOUT (FORMAT csv)` through psycopg. The server
 * sends one CopyData message per row; taking each from libpq in Python (one call and one bytes
 * object per row, under the GIL) cost the gateway more CPU than parsing and encoding the rows.
 * This module calls libpq's own functions instead, through the addresses sql.py takes from the
 * libpq that psycopg has loaded (so the PGconn* and the functions belong to one library):
 *
 *     bind(PQgetCopyData, PQfreemem, PQconsumeInput, PQsocket)  -- once, the four addresses
 *     drain(pgconn, limit, idle_ms) -> (bytes, status)
 *
 * `drain` appends the rows libpq holds (PQgetCopyData, asynchronous) to one buffer and frees
 * each at once (PQfreemem); when none is ready it waits for the socket (poll) and reads what
 * came (PQconsumeInput). It returns the rows gathered and a status:
 *
 *     1   the buffer holds `limit` bytes or more: call again for the rest;
 *     0   no row came for `idle_ms` ms (the rows so far, maybe none): call again;
 *    -1   the end of the COPY: the caller fetches the final result (PQgetResult, an error the
 *         server sent midway included), as psycopg does;
 *    -2   libpq failed (a lost connection, PQconsumeInput failed): the caller lets psycopg
 *         read once more, which raises the error as psycopg raises it.
 *
 * Nothing else uses the connection meanwhile: the caller holds it inside psycopg's `copy()`
 * block, in the one thread that reads the stream. Rows are whole CopyData messages, so the
 * buffer always ends at a row's end. Memory holds the buffer (about `limit` bytes plus one
 * row) and nothing else.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

typedef int (*get_copy_data_fn)(void *conn, char **buffer, int async);
typedef void (*freemem_fn)(void *ptr);
typedef int (*consume_input_fn)(void *conn);
typedef int (*socket_fn)(const void *conn);

static get_copy_data_fn get_copy_data = NULL;
static freemem_fn freemem = NULL;
static consume_input_fn consume_input = NULL;
static socket_fn socket_of = NULL;

static void *address(PyObject *value) {
    void *p = PyLong_AsVoidPtr(value);
    if (p == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "a libpq function address is null");
    return p;
}

static PyObject *bind(PyObject *self, PyObject *args) {
    PyObject *a, *b, *c, *d;
    if (!PyArg_ParseTuple(args, "OOOO", &a, &b, &c, &d)) return NULL;
    void *pa = address(a), *pb = pa ? address(b) : NULL, *pc = pb ? address(c) : NULL;
    void *pd = pc ? address(d) : NULL;
    if (pd == NULL) return NULL;
    get_copy_data = (get_copy_data_fn)pa;
    freemem = (freemem_fn)pb;
    consume_input = (consume_input_fn)pc;
    socket_of = (socket_fn)pd;
    Py_RETURN_NONE;
}

static PyObject *drain(PyObject *self, PyObject *args) {
    PyObject *conn_obj;
    Py_ssize_t limit;
    int idle_ms;
    if (!PyArg_ParseTuple(args, "Oni", &conn_obj, &limit, &idle_ms)) return NULL;
    if (get_copy_data == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() the libpq functions first");
        return NULL;
    }
    void *conn = PyLong_AsVoidPtr(conn_obj);
    if (conn == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the PGconn is null");
        return NULL;
    }
    if (limit < 1 || limit > ((Py_ssize_t)1 << 30)) {
        PyErr_SetString(PyExc_ValueError, "limit must be 1 .. 2**30 bytes");
        return NULL;
    }
    if (idle_ms < 0) idle_ms = 0;

    size_t cap = (size_t)limit + (64 << 10), len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return PyErr_NoMemory();
    int status = 0, oom = 0;

    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        char *row = NULL;
        int n = get_copy_data(conn, &row, 1);
        if (n > 0) {
            if (len + (size_t)n > cap) {
                size_t want = cap * 2 > len + (size_t)n ? cap * 2 : len + (size_t)n;
                char *more = realloc(buf, want);
                if (more == NULL) {
                    freemem(row);
                    oom = 1;
                    break;
                }
                buf = more;
                cap = want;
            }
            memcpy(buf + len, row, (size_t)n);
            len += (size_t)n;
            freemem(row);
            if (len >= (size_t)limit) {
                status = 1;
                break;
            }
            continue;
        }
        if (row != NULL) freemem(row); /* never set for n <= 0; harmless if it were */
        if (n < 0) {
            status = n == -1 ? -1 : -2;
            break;
        }
        /* n == 0: no whole row buffered; wait for the socket, then read what came. */
        int fd = socket_of(conn);
        if (fd < 0) {
            status = -2;
            break;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll(&pfd, 1, idle_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) { /* idle: hand back what there is; the caller calls again */
            status = 0;
            break;
        }
        if (ready < 0 || !consume_input(conn)) {
            status = -2;
            break;
        }
    }
    Py_END_ALLOW_THREADS

    if (oom) {
        free(buf);
        return PyErr_NoMemory();
    }
    PyObject *data = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    free(buf);
    if (data == NULL) return NULL;
    return Py_BuildValue("(Ni)", data, status);
}

static PyMethodDef METHODS[] = {
    {"bind", bind, METH_VARARGS,
     "bind(PQgetCopyData, PQfreemem, PQconsumeInput, PQsocket): the libpq functions to call."},
    {"drain", drain, METH_VARARGS,
     "drain(pgconn, limit, idle_ms) -> (bytes, status): the COPY rows libpq hands over."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "gateway.dataplane._pgcopy",
    "The rows of a PostgreSQL COPY TO drained from libpq in C (see sql.py).", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pgcopy(void) { return PyModule_Create(&MODULE); }
