/*
 * The inputs of a stream, as ms_open() takes them (open.h): one ms_input
 * per Python object.
 *
 *   str, os.PathLike  a file opened here (and closed with the reader);
 *                     a regular file is also read by position, which
 *                     QEMU's mapped-ram streams need
 *   int               a descriptor the caller keeps, read from its current
 *                     position (and by position from there when it is a
 *                     regular file)
 *   buffer protocol   bytes in memory (bytes, bytearray, mmap, numpy ...),
 *                     held (exported) while the reader lives
 *   file object       its readinto() (or read()), called with the GIL
 *
 * The descriptor and buffer callbacks run without the GIL. A file object's
 * callback takes the GIL, and keeps any exception its method raised, so
 * that the library's "input callback failed" can name it as its cause.
 */
#include "ext.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum kind { PATH, FD, BUFFER, FILEOBJ };

typedef struct one {
    enum kind kind;
    int fd;        /* PATH (owned), FD (borrowed) */
    uint64_t base; /* FD: where positional reads start */
    Py_buffer buf; /* BUFFER */
    bool have_buf;
    size_t pos;     /* BUFFER: next byte */
    PyObject *file; /* FILEOBJ */
    bool has_readinto;
    PyObject *exc_type, *exc_value, *exc_tb; /* FILEOBJ: what its method raised */
    char name[320];
} one;

struct mspy_inputs {
    size_t n;
    one *in;
    ms_input *arr;
};

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
    one *o = ctx;
    for (;;) {
        ssize_t k = read(o->fd, buf, len);
        if (k >= 0)
            return k;
        if (errno != EINTR)
            return -errno;
    }
}

static ssize_t fd_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    one *o = ctx;
    if (offset > (uint64_t)INT64_MAX - o->base)
        return 0;
    for (;;) {
        ssize_t k = pread(o->fd, buf, len, (off_t)(o->base + offset));
        if (k >= 0)
            return k;
        if (errno != EINTR)
            return -errno;
    }
}

static ssize_t buf_read(void *ctx, void *buf, size_t len)
{
    one *o = ctx;
    size_t left = (size_t)o->buf.len - o->pos;
    if (len > left)
        len = left;
    memcpy(buf, (const uint8_t *)o->buf.buf + o->pos, len);
    o->pos += len;
    return (ssize_t)len;
}

static ssize_t buf_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    one *o = ctx;
    if (offset >= (uint64_t)o->buf.len)
        return 0;
    size_t left = (size_t)o->buf.len - (size_t)offset;
    if (len > left)
        len = left;
    memcpy(buf, (const uint8_t *)o->buf.buf + offset, len);
    return (ssize_t)len;
}

/* Calls the file object's readinto() (or read()) for at most @len bytes. */
static ssize_t file_read(void *ctx, void *buf, size_t len)
{
    one *o = ctx;
    ssize_t got = -EIO;
    if (len > (size_t)PY_SSIZE_T_MAX)
        len = (size_t)PY_SSIZE_T_MAX;
    PyGILState_STATE g = PyGILState_Ensure();
    if (o->exc_type) /* failed before: the library stops at the first failure anyway */
        goto out;
    if (o->has_readinto) {
        PyObject *mv = PyMemoryView_FromMemory(buf, (Py_ssize_t)len, PyBUF_WRITE);
        if (!mv)
            goto fail;
        PyObject *r = PyObject_CallMethod(o->file, "readinto", "O", mv);
        /* The view of the library's buffer must not outlive the call. */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyObject *rel = PyObject_CallMethod(mv, "release", NULL);
        Py_DECREF(mv);
        if (!rel) { /* the method kept an export of it: refuse what it read */
            Py_XDECREF(r);
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
            goto fail;
        }
        Py_DECREF(rel);
        PyErr_Restore(et, ev, etb);
        if (!r)
            goto fail;
        if (r == Py_None) { /* a non-blocking file with nothing to read now */
            Py_DECREF(r);
            got = -EAGAIN;
            goto out;
        }
        Py_ssize_t k = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (k == -1 && PyErr_Occurred())
            goto fail;
        if (k < 0 || (size_t)k > len) {
            PyErr_Format(PyExc_ValueError, "readinto() returned %zd for a %zu-byte buffer", k, len);
            goto fail;
        }
        got = k;
    } else {
        PyObject *r = PyObject_CallMethod(o->file, "read", "n", (Py_ssize_t)len);
        if (!r)
            goto fail;
        Py_buffer b;
        if (PyObject_GetBuffer(r, &b, PyBUF_SIMPLE) < 0) {
            Py_DECREF(r);
            goto fail;
        }
        if ((size_t)b.len > len) {
            PyBuffer_Release(&b);
            Py_DECREF(r);
            PyErr_Format(PyExc_ValueError, "read(%zu) returned more bytes", len);
            goto fail;
        }
        memcpy(buf, b.buf, (size_t)b.len);
        got = b.len;
        PyBuffer_Release(&b);
        Py_DECREF(r);
    }
    goto out;
fail:
    PyErr_Fetch(&o->exc_type, &o->exc_value, &o->exc_tb);
    got = -EIO;
out:
    PyGILState_Release(g);
    return got;
}

static int is_pathlike(PyObject *obj)
{
    return PyUnicode_Check(obj) || PyObject_HasAttrString(obj, "__fspath__");
}

static int setup_one(one *o, PyObject *obj, size_t index, ms_input *in)
{
    o->fd = -1;
    snprintf(o->name, sizeof o->name, "input %zu", index + 1);
    if (is_pathlike(obj)) {
        PyObject *path = NULL;
        if (!PyUnicode_FSConverter(obj, &path))
            return -1;
        const char *p = PyBytes_AS_STRING(path);
        snprintf(o->name, sizeof o->name, "%s", p);
        int fd;
        Py_BEGIN_ALLOW_THREADS
        fd = open(p, O_RDONLY | O_CLOEXEC);
        Py_END_ALLOW_THREADS
        if (fd < 0) {
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, obj);
            Py_DECREF(path);
            return -1;
        }
        Py_DECREF(path);
        o->kind = PATH;
        o->fd = fd;
        struct stat st;
        in->read = fd_read;
        in->read_ctx = o;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            in->pread = fd_pread;
            in->pread_ctx = o;
        }
        return 0;
    }
    if (PyLong_Check(obj) && !PyBool_Check(obj)) {
        long v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v < 0 || v > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "input %zu: %ld is no file descriptor", index + 1, v);
            return -1;
        }
        int fd = (int)v;
        o->kind = FD;
        o->fd = fd;
        snprintf(o->name, sizeof o->name, "file descriptor %d", fd);
        in->read = fd_read;
        in->read_ctx = o;
        struct stat st;
        off_t at = lseek(fd, 0, SEEK_CUR);
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && at >= 0) {
            o->base = (uint64_t)at;
            in->pread = fd_pread;
            in->pread_ctx = o;
        }
        return 0;
    }
    if (PyObject_CheckBuffer(obj)) {
        if (PyObject_GetBuffer(obj, &o->buf, PyBUF_SIMPLE) < 0)
            return -1;
        o->have_buf = true;
        o->kind = BUFFER;
        snprintf(o->name, sizeof o->name, "%s object (input %zu)", Py_TYPE(obj)->tp_name,
                 index + 1);
        in->read = buf_read;
        in->read_ctx = o;
        in->pread = buf_pread;
        in->pread_ctx = o;
        return 0;
    }
    o->has_readinto = PyObject_HasAttrString(obj, "readinto");
    if (!o->has_readinto && !PyObject_HasAttrString(obj, "read")) {
        PyErr_Format(PyExc_TypeError,
                     "input %zu: expected a path, a file descriptor, a file object or a "
                     "bytes-like object, not %s",
                     index + 1, Py_TYPE(obj)->tp_name);
        return -1;
    }
    o->kind = FILEOBJ;
    Py_INCREF(obj);
    o->file = obj;
    PyObject *name = PyObject_GetAttrString(obj, "name");
    if (name && PyUnicode_Check(name)) {
        const char *s = PyUnicode_AsUTF8(name);
        if (s)
            snprintf(o->name, sizeof o->name, "%s", s);
    }
    Py_XDECREF(name);
    PyErr_Clear();
    in->read = file_read;
    in->read_ctx = o;
    return 0;
}

mspy_inputs *mspy_inputs_new(PyObject *seq)
{
    PyObject *fast = PySequence_Fast(seq, "the inputs must be a sequence");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n == 0) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "no input given");
        return NULL;
    }
    mspy_inputs *in = PyMem_Calloc(1, sizeof *in);
    if (!in || !(in->in = PyMem_Calloc((size_t)n, sizeof *in->in)) ||
        !(in->arr = PyMem_Calloc((size_t)n, sizeof *in->arr))) {
        mspy_inputs_free(in);
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        in->n = (size_t)i + 1; /* what mspy_inputs_free() undoes */
        if (setup_one(&in->in[i], PySequence_Fast_GET_ITEM(fast, i), (size_t)i, &in->arr[i])) {
            mspy_inputs_free(in);
            Py_DECREF(fast);
            return NULL;
        }
        in->arr[i].name = in->in[i].name;
    }
    Py_DECREF(fast);
    return in;
}

void mspy_inputs_free(mspy_inputs *in)
{
    if (!in)
        return;
    for (size_t i = 0; in->in && i < in->n; i++) {
        one *o = &in->in[i];
        if (o->kind == PATH && o->fd >= 0)
            close(o->fd);
        if (o->have_buf)
            PyBuffer_Release(&o->buf);
        Py_XDECREF(o->file);
        Py_XDECREF(o->exc_type);
        Py_XDECREF(o->exc_value);
        Py_XDECREF(o->exc_tb);
    }
    PyMem_Free(in->in);
    PyMem_Free(in->arr);
    PyMem_Free(in);
}

const ms_input *mspy_inputs_array(const mspy_inputs *in, size_t *n)
{
    *n = in->n;
    return in->arr;
}

bool mspy_inputs_restore_error(mspy_inputs *in)
{
    for (size_t i = 0; in && i < in->n; i++) {
        one *o = &in->in[i];
        if (o->exc_type) {
            PyErr_Restore(o->exc_type, o->exc_value, o->exc_tb);
            o->exc_type = o->exc_value = o->exc_tb = NULL;
            return true;
        }
    }
    return false;
}
