/*
 * migstream._migstream.Writer: an ms_writer (writer.h) writing to
 *
 *   str, os.PathLike  a file created (or truncated) here, closed with the
 *                     writer
 *   int               a descriptor the caller keeps
 *   an object with write()  a file object: each buffer the writer pushes is
 *                     handed to write() as a read-only memoryview, valid
 *                     during the call, until all of it is taken
 *   a callable        called with each buffer, a memoryview valid during
 *                     the call
 *
 * Page memory comes from any object with the buffer protocol, C-contiguous
 * (bytes, bytearray, mmap, numpy arrays): it is exported for the duration
 * of the call, which runs without the GIL, and the library copies it or
 * (with stable_memory) writes it out as it is; it is never copied here.
 * Each region's page size and size are kept, so that a buffer that does
 * not hold whole pages, or a bitmap too short for its region, is refused
 * before the library reads past its end.
 */
#include "ext.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum target { T_FD, T_FILE, T_CALL };

typedef struct wregion {
    uint32_t id;
    uint32_t page_size;
    uint64_t size;
} wregion;

typedef struct {
    PyObject_HEAD ms_writer *w;
    enum target kind;
    int fd;
    bool own_fd;
    PyObject *target;
    PyObject *exc_type, *exc_value, *exc_tb; /* what write() raised */
    wregion *regions;
    size_t nregions, cap_regions;
    bool busy;
    bool finished;
} Writer;

static int write_cb(void *ctx, const struct iovec *iov, int iovcnt)
{
    Writer *self = ctx;
    int rc = 0;
    PyGILState_STATE g = PyGILState_Ensure();
    if (self->exc_type) {
        rc = -EIO;
        goto out;
    }
    for (int i = 0; i < iovcnt && rc == 0; i++) {
        char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len) {
            Py_ssize_t chunk = len > (size_t)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)len;
            PyObject *mv = PyMemoryView_FromMemory(p, chunk, PyBUF_READ);
            if (!mv)
                goto fail;
            PyObject *r = self->kind == T_FILE ? PyObject_CallMethod(self->target, "write", "O", mv)
                                               : PyObject_CallOneArg(self->target, mv);
            /* The view of the writer's buffer (or of the caller's memory)
             * must not outlive the call. */
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            PyObject *rel = PyObject_CallMethod(mv, "release", NULL);
            Py_DECREF(mv);
            if (!rel) { /* the callee kept an export of it */
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
            Py_ssize_t took = chunk;
            if (self->kind == T_FILE && r != Py_None) {
                took = PyLong_AsSsize_t(r);
                if (took == -1 && PyErr_Occurred()) {
                    Py_DECREF(r);
                    goto fail;
                }
                if (took <= 0 || took > chunk) {
                    Py_DECREF(r);
                    PyErr_Format(PyExc_OSError, "write() returned %zd for %zd bytes", took, chunk);
                    goto fail;
                }
            }
            Py_DECREF(r);
            p += took;
            len -= (size_t)took;
        }
    }
    goto out;
fail:
    PyErr_Fetch(&self->exc_type, &self->exc_value, &self->exc_tb);
    rc = -EIO;
out:
    PyGILState_Release(g);
    return rc;
}

/* What a writer call that returned @rc means: WouldBlockError for
 * MS_EAGAIN (repeat the call), else the sticky failure. */
static PyObject *writer_raise(Writer *self, int rc)
{
    if (rc == MS_EAGAIN)
        return mspy_raise(MS_EAGAIN,
                          "the output would block: wait until it can take more, then repeat "
                          "the same call",
                          false, 0, -1);
    int st = ms_writer_status(self->w);
    if (self->exc_type) {
        PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
        self->exc_type = self->exc_value = self->exc_tb = NULL;
    }
    if (st == 0)
        st = rc < 0 ? rc : MS_ESTATE;
    mspy_raise(st, ms_writer_errmsg(self->w)[0] ? ms_writer_errmsg(self->w) : ms_strerror(st),
               false, 0, -1);
    if (st == MS_EIO) {
        int err = 0;
        int cb = ms_writer_io_error(self->w, &err);
        mspy_set_errno(cb < 0 && cb > -4096 ? -cb : err);
    }
    return NULL;
}

static int enter(Writer *self)
{
    if (!self->w) {
        PyErr_SetString(PyExc_ValueError, "the writer is closed");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the writer is in use by another thread");
        return -1;
    }
    self->busy = true;
    return 0;
}

/* The result of a library call made between enter() and here. */
static PyObject *done(Writer *self, int rc)
{
    self->busy = false;
    if (rc < 0)
        return writer_raise(self, rc);
    Py_RETURN_NONE;
}

static const wregion *find_region(Writer *self, uint32_t id)
{
    for (size_t i = 0; i < self->nregions; i++)
        if (self->regions[i].id == id)
            return &self->regions[i];
    return NULL;
}

static const wregion *region_arg(Writer *self, PyObject *o)
{
    uint32_t id;
    if (mspy_u32(o, "region", &id))
        return NULL;
    const wregion *g = find_region(self, id);
    if (!g)
        mspy_raisef(MS_EINVAL, "region %u was not added to this writer", id);
    return g;
}

static PyObject *writer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {
        "target",      "writer_name",    "writer_version", "page_size", "machine", "description",
        "batch_bytes", "compress_level", "max_cbor_depth", "features",  "threads", "stable_memory",
        "part",        NULL};
    PyObject *target;
    const char *name = NULL, *version = NULL, *machine = NULL, *description = NULL;
    unsigned long page_size = 0, batch = 0, depth = 0, threads = 0;
    int level = 0, stable = 0;
    unsigned long long features = 0;
    PyObject *part_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$zzkzzkikKkpO", kwlist, &target, &name, &version,
                                     &page_size, &machine, &description, &batch, &level, &depth,
                                     &features, &threads, &stable, &part_arg))
        return NULL;
    /* part: (migration_id, index, count), FORMAT.md section 2.1. */
    ms_part part;
    memset(&part, 0, sizeof part);
    if (part_arg != Py_None) {
        const char *id;
        Py_ssize_t id_len;
        unsigned int index, count;
        if (!PyArg_ParseTuple(part_arg, "y#II;part must be (migration_id, index, count)", &id,
                              &id_len, &index, &count))
            return NULL;
        if (id_len != MS_MIGRATION_ID_SIZE) {
            PyErr_Format(PyExc_ValueError, "a migration id is %d bytes, not %zd",
                         MS_MIGRATION_ID_SIZE, id_len);
            return NULL;
        }
        memcpy(part.migration_id, id, MS_MIGRATION_ID_SIZE);
        part.index = index;
        part.count = count;
    }
    if (page_size > UINT32_MAX || batch > UINT32_MAX || depth > UINT32_MAX ||
        threads > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "an option beyond 2**32 - 1");
        return NULL;
    }
    Writer *self = (Writer *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->fd = -1;
    if (PyUnicode_Check(target) || PyObject_HasAttrString(target, "__fspath__")) {
        PyObject *path = NULL;
        if (!PyUnicode_FSConverter(target, &path)) {
            Py_DECREF(self);
            return NULL;
        }
        int fd;
        Py_BEGIN_ALLOW_THREADS
        fd = open(PyBytes_AS_STRING(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        Py_END_ALLOW_THREADS
        Py_DECREF(path);
        if (fd < 0) {
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, target);
            Py_DECREF(self);
            return NULL;
        }
        self->kind = T_FD;
        self->fd = fd;
        self->own_fd = true;
    } else if (PyLong_Check(target) && !PyBool_Check(target)) {
        long fd = PyLong_AsLong(target);
        if (fd == -1 && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        if (fd < 0 || fd > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "%ld is no file descriptor", fd);
            Py_DECREF(self);
            return NULL;
        }
        self->kind = T_FD;
        self->fd = (int)fd;
    } else if (PyObject_HasAttrString(target, "write")) {
        self->kind = T_FILE;
    } else if (PyCallable_Check(target)) {
        self->kind = T_CALL;
    } else {
        PyErr_Format(PyExc_TypeError,
                     "the target must be a path, a file descriptor, a file object or a "
                     "callable, not %.100s",
                     Py_TYPE(target)->tp_name);
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(target);
    self->target = target;

    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = name;
    o.writer_version = version;
    if (page_size)
        o.page_size = (uint32_t)page_size;
    o.machine = machine;
    o.description = description;
    o.batch_bytes = (uint32_t)batch;
    o.compress_level = level;
    o.max_cbor_depth = (uint32_t)depth;
    o.features = features;
    o.threads = (uint32_t)threads;
    o.stable_memory = stable;
    if (part_arg != Py_None)
        o.part = &part;
    self->w =
        self->kind == T_FD ? ms_writer_new_fd(&o, self->fd) : ms_writer_new(&o, write_cb, self);
    if (!self->w) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (ms_writer_status(self->w)) {
        writer_raise(self, ms_writer_status(self->w));
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void free_handle(Writer *self)
{
    ms_writer_free(self->w);
    self->w = NULL;
    if (self->own_fd && self->fd >= 0)
        close(self->fd);
    self->fd = -1;
}

static void writer_dealloc(PyObject *o)
{
    Writer *self = (Writer *)o;
    free_handle(self);
    Py_XDECREF(self->target);
    Py_XDECREF(self->exc_type);
    Py_XDECREF(self->exc_value);
    Py_XDECREF(self->exc_tb);
    PyMem_Free(self->regions);
    Py_TYPE(o)->tp_free(o);
}

static PyObject *writer_close(PyObject *o, PyObject *unused)
{
    Writer *self = (Writer *)o;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the writer is in use by another thread");
        return NULL;
    }
    free_handle(self);
    Py_RETURN_NONE;
}

static PyObject *w_add_region(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    PyObject *id_o, *size_o, *ps_o, *gpa_o;
    const char *name;
    if (!PyArg_ParseTuple(args, "OsOOO", &id_o, &name, &size_o, &ps_o, &gpa_o))
        return NULL;
    ms_region g;
    memset(&g, 0, sizeof g);
    g.name = name;
    if (mspy_u32(id_o, "id", &g.id) || mspy_u64(size_o, "size", &g.size) ||
        mspy_u32(ps_o, "page_size", &g.page_size))
        return NULL;
    if (gpa_o != Py_None) {
        if (mspy_u64(gpa_o, "gpa", &g.gpa))
            return NULL;
        g.has_gpa = true;
    }
    if (self->nregions == self->cap_regions) {
        size_t cap = self->cap_regions ? self->cap_regions * 2 : 8;
        wregion *r = PyMem_Realloc(self->regions, cap * sizeof *r);
        if (!r)
            return PyErr_NoMemory();
        self->regions = r;
        self->cap_regions = cap;
    }
    if (enter(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_add_region(self->w, &g);
    Py_END_ALLOW_THREADS
    if (rc == 0)
        self->regions[self->nregions++] = (wregion){g.id, g.page_size, g.size};
    return done(self, rc);
}

static PyObject *w_pages(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    PyObject *rid, *first_o, *mem;
    if (!PyArg_ParseTuple(args, "OOO", &rid, &first_o, &mem))
        return NULL;
    const wregion *g = region_arg(self, rid);
    uint64_t first;
    if (!g || mspy_u64(first_o, "first", &first))
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(mem, &b, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if ((size_t)b.len % g->page_size) {
        PyBuffer_Release(&b);
        return mspy_raisef(MS_EINVAL, "%zd bytes are not whole pages of %u bytes (region %u)",
                           b.len, g->page_size, g->id);
    }
    uint64_t count = (uint64_t)b.len / g->page_size;
    uint32_t id = g->id;
    if (enter(self)) {
        PyBuffer_Release(&b);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_pages(self->w, id, first, count, b.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return done(self, rc);
}

static PyObject *w_pagesv(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    PyObject *rid, *first_o, *seq;
    if (!PyArg_ParseTuple(args, "OOO", &rid, &first_o, &seq))
        return NULL;
    const wregion *g = region_arg(self, rid);
    uint64_t first;
    if (!g || mspy_u64(first_o, "first", &first))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "pagesv() takes a sequence of buffers");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > INT32_MAX) {
        Py_DECREF(fast);
        return mspy_raisef(MS_EINVAL, "too many buffers");
    }
    Py_buffer *bufs = PyMem_Calloc(n ? (size_t)n : 1, sizeof *bufs);
    struct iovec *iov = PyMem_Calloc(n ? (size_t)n : 1, sizeof *iov);
    Py_ssize_t got = 0;
    PyObject *out = NULL;
    if (!bufs || !iov) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, got), &bufs[got],
                               PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        if ((size_t)bufs[got].len % g->page_size) {
            mspy_raisef(MS_EINVAL, "buffer %zd: %zd bytes are not whole pages of %u bytes", got,
                        bufs[got].len, g->page_size);
            got++;
            goto done;
        }
        iov[got].iov_base = bufs[got].buf;
        iov[got].iov_len = (size_t)bufs[got].len;
    }
    uint32_t id = g->id;
    if (enter(self))
        goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_pagesv(self->w, id, first, iov, (int)n);
    Py_END_ALLOW_THREADS
    out = done(self, rc);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&bufs[i]);
    PyMem_Free(bufs);
    PyMem_Free(iov);
    Py_DECREF(fast);
    return out;
}

/* zero_pages, discard: (region, first, count); fill_pages, in_place: and a
 * u64 argument. */
static PyObject *pages_op(PyObject *o, PyObject *args, int op)
{
    Writer *self = (Writer *)o;
    PyObject *rid, *first_o, *count_o, *arg_o = NULL;
    if (!PyArg_ParseTuple(args, op >= 2 ? "OOOO" : "OOO", &rid, &first_o, &count_o, &arg_o))
        return NULL;
    uint32_t id;
    uint64_t first, count, arg = 0;
    if (mspy_u32(rid, "region", &id) || mspy_u64(first_o, "first", &first) ||
        mspy_u64(count_o, "count", &count) || (arg_o && mspy_u64(arg_o, "argument", &arg)))
        return NULL;
    if (enter(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    switch (op) {
    case 0:
        rc = ms_writer_zero_pages(self->w, id, first, count);
        break;
    case 1:
        rc = ms_writer_discard(self->w, id, first, count);
        break;
    case 2:
        rc = ms_writer_fill_pages(self->w, id, first, count, arg);
        break;
    default:
        rc = ms_writer_in_place(self->w, id, first, count, arg);
    }
    Py_END_ALLOW_THREADS
    return done(self, rc);
}

static PyObject *w_zero_pages(PyObject *o, PyObject *a)
{
    return pages_op(o, a, 0);
}

static PyObject *w_discard(PyObject *o, PyObject *a)
{
    return pages_op(o, a, 1);
}

static PyObject *w_fill_pages(PyObject *o, PyObject *a)
{
    return pages_op(o, a, 2);
}

static PyObject *w_in_place(PyObject *o, PyObject *a)
{
    return pages_op(o, a, 3);
}

static PyObject *w_dirty(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    PyObject *rid, *bitmap_o, *gran_o, *mem_o;
    if (!PyArg_ParseTuple(args, "OOOO", &rid, &bitmap_o, &gran_o, &mem_o))
        return NULL;
    const wregion *g = region_arg(self, rid);
    uint32_t gran;
    if (!g || mspy_u32(gran_o, "granularity", &gran))
        return NULL;
    if (gran == 0 || (gran & (gran - 1)))
        return mspy_raisef(MS_EINVAL, "granularity %u is not a power of two", gran);
    uint64_t units = g->size / gran + (g->size % gran != 0);
    uint64_t words = units / 64 + (units % 64 != 0);
    Py_buffer bm, mem;
    if (PyObject_GetBuffer(bitmap_o, &bm, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(mem_o, &mem, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&bm);
        return NULL;
    }
    PyObject *out = NULL;
    uint64_t *aligned = NULL;
    if ((uint64_t)bm.len / 8 < words) {
        mspy_raisef(MS_EINVAL,
                    "the bitmap holds %zd bytes; region %u needs %llu (64-bit words "
                    "of one bit per %u bytes)",
                    bm.len, g->id, (unsigned long long)(words * 8), gran);
        goto out;
    }
    if ((uint64_t)mem.len < g->size) {
        mspy_raisef(MS_EINVAL, "the memory holds %zd bytes; region %u has %llu", mem.len, g->id,
                    (unsigned long long)g->size);
        goto out;
    }
    const uint64_t *bits = bm.buf;
    if ((uintptr_t)bm.buf % _Alignof(uint64_t)) { /* a slice at an odd offset */
        if (!(aligned = PyMem_Malloc(words ? (size_t)words * 8 : 8))) {
            PyErr_NoMemory();
            goto out;
        }
        memcpy(aligned, bm.buf, (size_t)words * 8);
        bits = aligned;
    }
    uint32_t id = g->id;
    if (enter(self))
        goto out;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_dirty(self->w, id, bits, gran, mem.buf);
    Py_END_ALLOW_THREADS
    out = done(self, rc);
out:
    PyMem_Free(aligned);
    PyBuffer_Release(&bm);
    PyBuffer_Release(&mem);
    return out;
}

static PyObject *w_round(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    PyObject *num_o, *tr_o, *gran_o, *dirty_o;
    int final;
    if (!PyArg_ParseTuple(args, "OOOOp", &num_o, &tr_o, &gran_o, &dirty_o, &final))
        return NULL;
    ms_round rd;
    memset(&rd, 0, sizeof rd);
    if (mspy_u64(num_o, "number", &rd.number) || mspy_u32(tr_o, "tracker", &rd.tracker) ||
        mspy_u32(gran_o, "granularity", &rd.granularity))
        return NULL;
    if (dirty_o != Py_None) {
        if (mspy_u64(dirty_o, "dirty", &rd.dirty))
            return NULL;
        rd.has_dirty = true;
    }
    rd.final = final;
    if (enter(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_round(self->w, &rd);
    Py_END_ALLOW_THREADS
    return done(self, rc);
}

static PyObject *w_overlay(PyObject *o, PyObject *arg)
{
    Writer *self = (Writer *)o;
    ms_overlay ov;
    if (mspy_overlay_from_tuple(arg, &ov))
        return NULL;
    if (enter(self))
        return NULL;
    int rc;
    /* The slot bytes belong to @arg's items, which the caller holds. */
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_overlay(self->w, &ov);
    Py_END_ALLOW_THREADS
    return done(self, rc);
}

static PyObject *w_device(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    const char *path, *schema;
    PyObject *inst_o, *ver_o;
    Py_buffer state;
    if (!PyArg_ParseTuple(args, "sOsOy*", &path, &inst_o, &schema, &ver_o, &state))
        return NULL;
    uint32_t inst, ver;
    PyObject *out = NULL;
    if (mspy_u32(inst_o, "instance", &inst) || mspy_u32(ver_o, "version", &ver) || enter(self))
        goto out;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_device(self->w, path, inst, schema, ver, state.buf, (size_t)state.len);
    Py_END_ALLOW_THREADS
    out = done(self, rc);
out:
    PyBuffer_Release(&state);
    return out;
}

static PyObject *w_record(PyObject *o, PyObject *args)
{
    Writer *self = (Writer *)o;
    unsigned int type, flags;
    Py_buffer payload;
    if (!PyArg_ParseTuple(args, "IIy*", &type, &flags, &payload))
        return NULL;
    PyObject *out = NULL;
    if (type > UINT16_MAX || flags > UINT16_MAX) {
        PyErr_SetString(PyExc_OverflowError, "type and flags are 16-bit");
        goto out;
    }
    if (enter(self))
        goto out;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_record(self->w, (uint16_t)type, (uint16_t)flags, payload.buf,
                          (size_t)payload.len);
    Py_END_ALLOW_THREADS
    out = done(self, rc);
out:
    PyBuffer_Release(&payload);
    return out;
}

static PyObject *w_flush(PyObject *o, PyObject *unused)
{
    Writer *self = (Writer *)o;
    if (enter(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_flush(self->w);
    Py_END_ALLOW_THREADS
    return done(self, rc);
}

static PyObject *w_finish(PyObject *o, PyObject *unused)
{
    Writer *self = (Writer *)o;
    if (self->finished && self->w)
        return mspy_raisef(MS_ESTATE, "the writer has finished already");
    if (enter(self))
        return NULL;
    ms_totals t;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_writer_finish(self->w, &t);
    Py_END_ALLOW_THREADS
    PyObject *r = done(self, rc);
    if (!r)
        return NULL;
    Py_DECREF(r);
    self->finished = true;
    return mspy_totals_tuple(&t);
}

static PyObject *get_bytes(PyObject *o, void *unused)
{
    Writer *self = (Writer *)o;
    return self->w ? PyLong_FromUnsignedLongLong(ms_writer_bytes_written(self->w))
                   : Py_NewRef(Py_None);
}

static PyObject *get_status(PyObject *o, void *unused)
{
    Writer *self = (Writer *)o;
    return PyLong_FromLong(self->w ? ms_writer_status(self->w) : 0);
}

static PyObject *get_closed(PyObject *o, void *unused)
{
    return PyBool_FromLong(((Writer *)o)->w == NULL);
}

static PyObject *get_finished(PyObject *o, void *unused)
{
    return PyBool_FromLong(((Writer *)o)->finished);
}

static PyMethodDef writer_methods[] = {
    {"add_region", w_add_region, METH_VARARGS, "add_region(id, name, size, page_size, gpa)"},
    {"pages", w_pages, METH_VARARGS, "pages(region, first, buffer)"},
    {"pagesv", w_pagesv, METH_VARARGS, "pagesv(region, first, buffers)"},
    {"zero_pages", w_zero_pages, METH_VARARGS, "zero_pages(region, first, count)"},
    {"discard", w_discard, METH_VARARGS, "discard(region, first, count)"},
    {"fill_pages", w_fill_pages, METH_VARARGS, "fill_pages(region, first, count, word)"},
    {"in_place", w_in_place, METH_VARARGS, "in_place(region, first, count, ref)"},
    {"dirty", w_dirty, METH_VARARGS, "dirty(region, bitmap, granularity, memory)"},
    {"round", w_round, METH_VARARGS, "round(number, tracker, granularity, dirty, final)"},
    {"overlay", w_overlay, METH_O, "overlay(overlay_tuple)"},
    {"device", w_device, METH_VARARGS, "device(path, instance, schema, version, cbor)"},
    {"record", w_record, METH_VARARGS, "record(type, flags, payload)"},
    {"flush", w_flush, METH_NOARGS, "flush()"},
    {"finish", w_finish, METH_NOARGS, "finish(): writes END; returns the totals tuple"},
    {"close", writer_close, METH_NOARGS, "close(): frees the writer (no END unless finished)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef writer_getset[] = {
    {"bytes_written", get_bytes, NULL, "bytes handed to the output so far", NULL},
    {"status", get_status, NULL, "the sticky status: 0, or the first failure", NULL},
    {"closed", get_closed, NULL, "True after close()", NULL},
    {"finished", get_finished, NULL, "True after finish()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject mspy_Writer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "migstream._migstream.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_dealloc = writer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writer(target, *, writer_name, writer_version, page_size, machine, description, "
              "batch_bytes, compress_level, max_cbor_depth, features, threads, stable_memory, part)",
    .tp_methods = writer_methods,
    .tp_getset = writer_getset,
    .tp_new = writer_new,
};
