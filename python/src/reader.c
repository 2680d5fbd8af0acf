/*
 * migstream._migstream.Reader: a reader made by ms_open() (open.h) over
 * the inputs of input.c, so that every format the build reads is read the
 * same way. next() hands out each record as a tuple that the package turns
 * into a record object (python/migstream/_records.py):
 *
 *   (type, flags, length, offset, index, checksum, known, status,
 *    unknown_keys, unknown_key_count, contents, part)
 *
 * where part is the index of the part of a migration in parts the record
 * came from (offset and index count in that part's stream), else None,
 *
 * and contents depends on the type (None when the record's status says
 * its contents were not decoded):
 *
 *   INFO     (machine, description)
 *   REGIONS  (region, ...)            region: (id, name, gpa, size, page_size)
 *   PAGES    (region_id, extents, data, encoding): extents an Extents
 *            sequence, data a read-only memoryview of the DATA pages
 *            (pin.c), released when the next record is read
 *   DEVICE   (path, instance, schema, version, state): state the CBOR bytes
 *   END      (records, bytes, pages, devices, rounds, overlays, digest)
 *   ROUND    (number, tracker, granularity, dirty, final)
 *   OVERLAY  (overlay, ...)           overlay: see mspy_overlay_tuple()
 *   PART     (migration_id, index, count): migration_id 16 bytes
 *   unknown  payload bytes, or None
 *
 * The GIL is released while the library reads; a second thread calling
 * the same reader meanwhile gets RuntimeError rather than a data race.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>

PyTypeObject *mspy_Extent_Type;

/* ------------------------------------------------------------- tuples */

PyObject *mspy_region_tuple(const ms_region *g)
{
    PyObject *gpa = g->has_gpa ? PyLong_FromUnsignedLongLong(g->gpa) : Py_NewRef(Py_None);
    PyObject *name = mspy_str(g->name);
    PyObject *t = gpa && name
                      ? Py_BuildValue("(kOOKk)", (unsigned long)g->id, name, gpa,
                                      (unsigned long long)g->size, (unsigned long)g->page_size)
                      : NULL;
    Py_XDECREF(gpa);
    Py_XDECREF(name);
    return t;
}

PyObject *mspy_header_tuple(const ms_header *h)
{
    return Py_BuildValue("(IIkKKNNK)", (unsigned)h->major, (unsigned)h->minor,
                         (unsigned long)h->page_size, (unsigned long long)h->required_features,
                         (unsigned long long)h->optional_features, mspy_str(h->writer_name),
                         mspy_str(h->writer_version), (unsigned long long)h->checksum);
}

PyObject *mspy_totals_tuple(const ms_totals *t)
{
    PyObject *pages = PyTuple_New(MS_PAGE_STATE_SLOTS);
    if (!pages)
        return NULL;
    for (Py_ssize_t i = 0; i < MS_PAGE_STATE_SLOTS; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong(t->pages[i]);
        if (!n) {
            Py_DECREF(pages);
            return NULL;
        }
        PyTuple_SET_ITEM(pages, i, n);
    }
    return Py_BuildValue("(KKNKKK)", (unsigned long long)t->records, (unsigned long long)t->bytes,
                         pages, (unsigned long long)t->devices, (unsigned long long)t->rounds,
                         (unsigned long long)t->overlays);
}

PyObject *mspy_device_tuple(const ms_device *d)
{
    return Py_BuildValue("(NkNkN)", mspy_str(d->path), (unsigned long)d->instance,
                         mspy_str(d->schema), (unsigned long)d->version,
                         PyBytes_FromStringAndSize((const char *)d->state,
                                                   d->state ? (Py_ssize_t)d->state_size : 0));
}

PyObject *mspy_round_tuple(const ms_round *rd)
{
    PyObject *dirty = rd->has_dirty ? PyLong_FromUnsignedLongLong(rd->dirty) : Py_NewRef(Py_None);
    if (!dirty)
        return NULL;
    return Py_BuildValue("(KkkNO)", (unsigned long long)rd->number, (unsigned long)rd->tracker,
                         (unsigned long)rd->granularity, dirty, rd->final ? Py_True : Py_False);
}

/* (gfn, kind, vendor, frequency or None, sequence, scale, offset, vp,
 *  slots: {sint: bytes} or None) */
PyObject *mspy_overlay_tuple(const ms_overlay *o)
{
    PyObject *slots = Py_NewRef(Py_None);
    if (o->kind == MS_OVERLAY_SYNIC_MESSAGE || o->kind == MS_OVERLAY_SYNIC_EVENT_FLAGS) {
        Py_DECREF(slots);
        if (!(slots = PyDict_New()))
            return NULL;
        for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++) {
            if (!(o->synic.slot_mask & (1u << s)) || !o->synic.slot[s])
                continue;
            PyObject *k = PyLong_FromUnsignedLong(s);
            PyObject *v =
                PyBytes_FromStringAndSize((const char *)o->synic.slot[s], MS_SYNIC_SLOT_SIZE);
            if (!k || !v || PyDict_SetItem(slots, k, v) < 0) {
                Py_XDECREF(k);
                Py_XDECREF(v);
                Py_DECREF(slots);
                return NULL;
            }
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    PyObject *freq =
        o->tsc.has_frequency ? PyLong_FromUnsignedLongLong(o->tsc.frequency) : Py_NewRef(Py_None);
    if (!freq) {
        Py_DECREF(slots);
        return NULL;
    }
    return Py_BuildValue("(KkkNkKLkN)", (unsigned long long)o->gfn, (unsigned long)o->kind,
                         (unsigned long)o->hypercall.vendor, freq, (unsigned long)o->tsc.sequence,
                         (unsigned long long)o->tsc.scale, (long long)o->tsc.offset,
                         (unsigned long)o->synic.vp, slots);
}

int mspy_overlay_from_tuple(PyObject *t, ms_overlay *o)
{
    memset(o, 0, sizeof *o);
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 9) {
        PyErr_SetString(PyExc_TypeError, "an overlay tuple has 9 items");
        return -1;
    }
    uint64_t gfn, seq, scale;
    uint32_t kind, vendor, vp;
    if (mspy_u64(PyTuple_GET_ITEM(t, 0), "gfn", &gfn) ||
        mspy_u32(PyTuple_GET_ITEM(t, 1), "kind", &kind) ||
        mspy_u32(PyTuple_GET_ITEM(t, 2), "vendor", &vendor) ||
        mspy_u64(PyTuple_GET_ITEM(t, 4), "sequence", &seq) ||
        mspy_u64(PyTuple_GET_ITEM(t, 5), "scale", &scale) ||
        mspy_u32(PyTuple_GET_ITEM(t, 7), "vp", &vp))
        return -1;
    if (seq > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "sequence must be below 2**32");
        return -1;
    }
    long long off = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 6));
    if (off == -1 && PyErr_Occurred())
        return -1;
    o->gfn = gfn;
    o->kind = kind;
    o->hypercall.vendor = vendor;
    PyObject *freq = PyTuple_GET_ITEM(t, 3);
    if (freq != Py_None) {
        o->tsc.has_frequency = true;
        if (mspy_u64(freq, "frequency", &o->tsc.frequency))
            return -1;
    }
    o->tsc.sequence = (uint32_t)seq;
    o->tsc.scale = scale;
    o->tsc.offset = off;
    o->synic.vp = vp;
    PyObject *slots = PyTuple_GET_ITEM(t, 8);
    if (slots == Py_None)
        return 0;
    if (!PyDict_Check(slots)) {
        PyErr_SetString(PyExc_TypeError, "slots must be a dict {sint: 256 bytes}");
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(slots, &pos, &k, &v)) {
        uint32_t s;
        if (mspy_u32(k, "slot number", &s))
            return -1;
        if (s >= MS_SYNIC_SLOTS || !PyBytes_Check(v) || PyBytes_GET_SIZE(v) != MS_SYNIC_SLOT_SIZE) {
            PyErr_Format(PyExc_ValueError, "slots: keys 0 to %u, each a bytes of %u bytes",
                         MS_SYNIC_SLOTS - 1, MS_SYNIC_SLOT_SIZE);
            return -1;
        }
        o->synic.slot_mask |= (uint16_t)(1u << s);
        o->synic.slot[s] = (const uint8_t *)PyBytes_AS_STRING(v);
    }
    return 0;
}

/* ------------------------------------------------------------- Extents */

typedef struct {
    PyObject_HEAD ms_extent *x;
    Py_ssize_t n;
} Extents;

PyObject *mspy_extents_new(const ms_extent *x, size_t n)
{
    if (n > (size_t)PY_SSIZE_T_MAX / sizeof *x)
        return PyErr_NoMemory();
    Extents *e = PyObject_New(Extents, &mspy_Extents_Type);
    if (!e)
        return NULL;
    e->n = (Py_ssize_t)n;
    e->x = PyMem_Malloc(n ? n * sizeof *x : 1);
    if (!e->x) {
        e->n = 0;
        Py_DECREF(e);
        return PyErr_NoMemory();
    }
    if (n)
        memcpy(e->x, x, n * sizeof *x);
    return (PyObject *)e;
}

static void extents_dealloc(PyObject *o)
{
    PyMem_Free(((Extents *)o)->x);
    Py_TYPE(o)->tp_free(o);
}

static Py_ssize_t extents_len(PyObject *o)
{
    return ((Extents *)o)->n;
}

PyObject *mspy_extent_new(const ms_extent *x)
{
    PyObject *t = PyStructSequence_New(mspy_Extent_Type);
    if (!t)
        return NULL;
    PyObject *v[4] = {PyLong_FromUnsignedLongLong(x->first), PyLong_FromUnsignedLong(x->count),
                      PyLong_FromLong(x->state), PyLong_FromUnsignedLongLong(x->arg)};
    for (int k = 0; k < 4; k++) {
        if (!v[k]) {
            for (int j = k; j < 4; j++)
                Py_XDECREF(v[j]);
            Py_DECREF(t);
            return NULL;
        }
        PyStructSequence_SET_ITEM(t, k, v[k]);
    }
    return t;
}

static PyObject *extents_item(PyObject *o, Py_ssize_t i)
{
    Extents *e = (Extents *)o;
    if (i < 0 || i >= e->n) {
        PyErr_SetString(PyExc_IndexError, "extent index out of range");
        return NULL;
    }
    return mspy_extent_new(&e->x[i]);
}

/* e[i], or e[a:b:c] as a list. */
static PyObject *extents_subscript(PyObject *o, PyObject *key)
{
    Extents *e = (Extents *)o;
    if (!PySlice_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        return extents_item(o, i < 0 ? i + e->n : i);
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0)
        return NULL;
    Py_ssize_t n = PySlice_AdjustIndices(e->n, &start, &stop, step);
    PyObject *l = PyList_New(n);
    for (Py_ssize_t k = 0; l && k < n; k++) {
        PyObject *x = mspy_extent_new(&e->x[start + k * step]);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, k, x);
    }
    return l;
}

/* Pages per state: a tuple indexed by state. */
static PyObject *extents_pages(PyObject *o, PyObject *unused)
{
    Extents *e = (Extents *)o;
    uint64_t n[MS_PAGE_STATE_SLOTS] = {0};
    for (Py_ssize_t i = 0; i < e->n; i++)
        if (e->x[i].state < MS_PAGE_STATE_SLOTS)
            n[e->x[i].state] += e->x[i].count;
    PyObject *t = PyTuple_New(MS_PAGE_STATE_SLOTS);
    for (Py_ssize_t i = 0; t && i < MS_PAGE_STATE_SLOTS; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(n[i]);
        if (!v) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyObject *extents_repr(PyObject *o)
{
    return PyUnicode_FromFormat("<Extents: %zd>", ((Extents *)o)->n);
}

static PySequenceMethods extents_as_seq = {
    .sq_length = extents_len,
    .sq_item = extents_item,
};

static PyMappingMethods extents_as_map = {
    .mp_length = extents_len,
    .mp_subscript = extents_subscript,
};

static PyMethodDef extents_methods[] = {
    {"pages_by_state", extents_pages, METH_NOARGS,
     "pages_by_state(): a tuple, indexed by page state, of the pages the extents hold."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject mspy_Extents_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "migstream.Extents",
    .tp_basicsize = sizeof(Extents),
    .tp_dealloc = extents_dealloc,
    .tp_repr = extents_repr,
    .tp_as_sequence = &extents_as_seq,
    .tp_as_mapping = &extents_as_map,
    .tp_methods = extents_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "The extents of a PAGES record: a read-only sequence of Extent (first, count, "
              "state, arg), in ascending page order.",
};

/* -------------------------------------------------------------- Reader */

static void on_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *message)
{
    mspy_reader *self = ctx; /* without the GIL: plain C only */
    if (self->npending == self->cap_pending) {
        size_t cap = self->cap_pending ? self->cap_pending * 2 : 8;
        mspy_problem *p = realloc(self->pending, cap * sizeof *p);
        if (!p) {
            self->pending_lost = true;
            return;
        }
        self->pending = p;
        self->cap_pending = cap;
    }
    char *m = strdup(message ? message : "");
    if (!m) {
        self->pending_lost = true;
        return;
    }
    self->pending[self->npending++] = (mspy_problem){status, offset, record, m};
}

void mspy_reader_flush_problems(mspy_reader *self)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb); /* keep a pending exception as it is */
    for (size_t i = 0; i < self->npending; i++) {
        mspy_problem *p = &self->pending[i];
        if (!self->problems)
            self->problems = PyList_New(0);
        PyObject *t = Py_BuildValue("(iKLN)", p->status, (unsigned long long)p->offset,
                                    (long long)p->record, mspy_str(p->message));
        if (!t || !self->problems || PyList_Append(self->problems, t) < 0)
            PyErr_Clear();
        Py_XDECREF(t);
        free(p->message);
    }
    self->npending = 0;
    PyErr_Restore(et, ev, etb);
}

PyObject *mspy_reader_raise(mspy_reader *self, int rc)
{
    if (rc == MS_EAGAIN) /* not a failure: the reader goes on when repeated */
        return mspy_raise(MS_EAGAIN,
                          "the input would block: wait until it is readable, then repeat the "
                          "call",
                          true, ms_reader_offset(self->r), -1);
    int st = ms_reader_status(self->r);
    const char *msg = ms_reader_errmsg(self->r);
    if (st == 0) {
        st = rc < 0 ? rc : MS_ESTATE;
        msg = ms_strerror(st);
    }
    mspy_inputs_restore_error(self->inputs);
    mspy_raise(st, msg, true, ms_reader_error_offset(self->r), ms_reader_error_record(self->r));
    if (st == MS_EIO) {
        int err = 0;
        int cb = ms_reader_io_error(self->r, &err);
        mspy_set_errno(cb < 0 && cb > -4096 ? -cb : err);
    }
    return NULL;
}

int mspy_reader_enter(mspy_reader *self, bool fresh)
{
    if (!self->r) {
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the reader is in use by another thread");
        return -1;
    }
    if (fresh && self->records) {
        mspy_raisef(MS_ESTATE,
                    "the reader has handed out %llu records already: a replay or a "
                    "diff needs a reader that has read nothing yet",
                    (unsigned long long)self->records);
        return -1;
    }
    self->busy = true;
    return 0;
}

void mspy_reader_leave(mspy_reader *self)
{
    self->busy = false;
}

void mspy_reader_drop_view(mspy_reader *self)
{
    if (!self->last_view)
        return;
    static PyObject *release; /* interned once: this runs for every record */
    if (!release && !(release = PyUnicode_InternFromString("release"))) {
        PyErr_Clear(); /* out of memory: at least drop our reference */
        Py_CLEAR(self->last_view);
        return;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *r = PyObject_CallMethodNoArgs(self->last_view, release);
    if (!r)
        PyErr_Clear(); /* exported further (numpy, a buffer): the pin keeps it safe */
    Py_XDECREF(r);
    Py_CLEAR(self->last_view);
    PyErr_Restore(et, ev, etb);
}

static PyObject *reader_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"inputs",         "format",       "max_record_size", "max_regions",
                             "max_cbor_depth", "max_overlays", "keep_going",      NULL};
    PyObject *inputs;
    const char *format = NULL;
    unsigned long max_record = 0, max_regions = 0, max_depth = 0, max_overlays = 0;
    int keep_going = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|zkkkkp", kwlist, &inputs, &format, &max_record,
                                     &max_regions, &max_depth, &max_overlays, &keep_going))
        return NULL;
    if (max_record > MS_MAX_RECORD_PAYLOAD || max_regions > UINT32_MAX ||
        max_depth > MS_MAX_CBOR_DEPTH || max_overlays > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "a limit beyond the format's: max_record_size at most %u, "
                     "max_cbor_depth at most %u",
                     MS_MAX_RECORD_PAYLOAD, MS_MAX_CBOR_DEPTH);
        return NULL;
    }
    mspy_reader *self = (mspy_reader *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (!(self->heap = mspy_heap_new())) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (!(self->inputs = mspy_inputs_new(inputs))) {
        Py_DECREF(self);
        return NULL;
    }
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.max_record_size = (uint32_t)max_record;
    ro.max_regions = (uint32_t)max_regions;
    ro.max_cbor_depth = (uint32_t)max_depth;
    ro.max_overlays = (uint32_t)max_overlays;
    mspy_heap_allocator(self->heap, &ro.allocator);
    if (keep_going) {
        ro.on_problem = on_problem;
        ro.problem_ctx = self;
    }
    ms_open_options oo;
    ms_open_options_init(&oo);
    oo.reader = &ro;
    oo.format = format;
    size_t n;
    const ms_input *in = mspy_inputs_array(self->inputs, &n);
    Py_BEGIN_ALLOW_THREADS
    self->r = ms_open(&oo, in, n);
    Py_END_ALLOW_THREADS
    if (!self->r) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (ms_reader_status(self->r)) {
        mspy_reader_raise(self, ms_reader_status(self->r));
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void reader_free_handle(mspy_reader *self)
{
    mspy_reader_drop_view(self);
    ms_reader_free(self->r); /* pinned blocks stay for their views */
    self->r = NULL;
    mspy_inputs_free(self->inputs);
    self->inputs = NULL;
}

static void reader_dealloc(PyObject *o)
{
    mspy_reader *self = (mspy_reader *)o;
    reader_free_handle(self);
    /* No view is left: each holds a reference to this object. */
    mspy_heap_release(self->heap);
    for (size_t i = 0; i < self->npending; i++)
        free(self->pending[i].message);
    free(self->pending);
    Py_XDECREF(self->problems);
    Py_TYPE(o)->tp_free(o);
}

static PyObject *reader_close(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the reader is in use by another thread");
        return NULL;
    }
    reader_free_handle(self);
    Py_RETURN_NONE;
}

static PyObject *reader_header(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (mspy_reader_enter(self, false))
        return NULL;
    const ms_header *h;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_reader_header(self->r, &h);
    Py_END_ALLOW_THREADS
    mspy_reader_flush_problems(self);
    mspy_reader_leave(self);
    if (rc)
        return mspy_reader_raise(self, rc);
    self->header_read = true;
    return mspy_header_tuple(h);
}

static PyObject *pages_tuple(mspy_reader *self, const ms_pages *p)
{
    PyObject *ext = mspy_extents_new(p->extents, p->extent_count);
    if (!ext)
        return NULL;
    PyObject *data = mspy_view(self->heap, (PyObject *)self, p->data, p->data ? p->data_size : 0);
    if (!data) {
        Py_DECREF(ext);
        return NULL;
    }
    Py_INCREF(data);
    self->last_view = data;
    return Py_BuildValue("(kNNi)", (unsigned long)p->region->id, ext, data, (int)p->encoding);
}

static PyObject *array_of(const void *items, size_t n, size_t size, PyObject *(*one)(const void *))
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *x = one((const uint8_t *)items + i * size);
        if (!x) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, x);
    }
    return t;
}

static PyObject *one_region(const void *p)
{
    return mspy_region_tuple(p);
}

static PyObject *one_overlay(const void *p)
{
    return mspy_overlay_tuple(p);
}

static PyObject *contents(mspy_reader *self, const ms_record *rec)
{
    if (!rec->known) {
        if (!rec->payload)
            Py_RETURN_NONE;
        return PyBytes_FromStringAndSize((const char *)rec->payload, (Py_ssize_t)rec->length);
    }
    if (rec->status && rec->status != MS_ECHECKSUM)
        Py_RETURN_NONE; /* keep_going: not decoded */
    switch (rec->type) {
    case MS_REC_INFO:
        return Py_BuildValue("(NN)", mspy_str(rec->info.machine), mspy_str(rec->info.description));
    case MS_REC_REGIONS:
        return array_of(rec->regions, rec->region_count, sizeof *rec->regions, one_region);
    case MS_REC_PAGES:
        return pages_tuple(self, &rec->pages);
    case MS_REC_DEVICE:
        return mspy_device_tuple(&rec->device);
    case MS_REC_END: {
        PyObject *t = mspy_totals_tuple(&rec->totals);
        if (!t)
            return NULL;
        PyObject *d = PyLong_FromUnsignedLongLong(rec->checksum);
        PyObject *out = d ? Py_BuildValue("(OO)", t, d) : NULL;
        Py_DECREF(t);
        Py_XDECREF(d);
        return out;
    }
    case MS_REC_ROUND:
        return mspy_round_tuple(&rec->round);
    case MS_REC_OVERLAY:
        return array_of(rec->overlays, rec->overlay_count, sizeof *rec->overlays, one_overlay);
    case MS_REC_PART:
        if (!rec->part)
            Py_RETURN_NONE;
        return Py_BuildValue("(y#II)", (const char *)rec->part->migration_id,
                             (Py_ssize_t)MS_MIGRATION_ID_SIZE, (unsigned)rec->part->index,
                             (unsigned)rec->part->count);
    default:
        Py_RETURN_NONE;
    }
}

static PyObject *record_tuple(mspy_reader *self, const ms_record *rec)
{
    size_t listed = rec->unknown_keys ? rec->unknown_key_count : 0;
    if (listed > MS_MAX_LISTED_KEYS)
        listed = MS_MAX_LISTED_KEYS; /* unknown_key_count counts them all */
    PyObject *keys = PyTuple_New((Py_ssize_t)listed);
    if (!keys)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keys); i++) {
        PyObject *s = mspy_str(rec->unknown_keys[i]);
        if (!s) {
            Py_DECREF(keys);
            return NULL;
        }
        PyTuple_SET_ITEM(keys, i, s);
    }
    PyObject *c = contents(self, rec);
    if (!c) {
        Py_DECREF(keys);
        return NULL;
    }
    PyObject *part = rec->part ? PyLong_FromUnsignedLong(rec->part->index) : Py_NewRef(Py_None);
    if (!part) {
        Py_DECREF(keys);
        Py_DECREF(c);
        return NULL;
    }
    return Py_BuildValue("(IIkKKKOiNKNN)", (unsigned)rec->type, (unsigned)rec->flags,
                         (unsigned long)rec->length, (unsigned long long)rec->offset,
                         (unsigned long long)rec->index, (unsigned long long)rec->checksum,
                         rec->known ? Py_True : Py_False, rec->status, keys,
                         (unsigned long long)rec->unknown_key_count, c, part);
}

static PyObject *reader_next(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (mspy_reader_enter(self, false))
        return NULL;
    mspy_reader_drop_view(self);
    const ms_record *rec;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_reader_next(self->r, &rec);
    Py_END_ALLOW_THREADS
    mspy_reader_flush_problems(self);
    if (rc <= 0) {
        mspy_reader_leave(self);
        if (rc < 0)
            return mspy_reader_raise(self, rc);
        self->ended = true;
        Py_RETURN_NONE;
    }
    self->records++;
    self->header_read = true;
    PyObject *t = record_tuple(self, rec);
    mspy_reader_leave(self);
    return t;
}

static PyObject *reader_expect_eof(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (mspy_reader_enter(self, false))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_reader_expect_eof(self->r);
    Py_END_ALLOW_THREADS
    mspy_reader_leave(self);
    if (rc == MS_ESTATE && !ms_reader_status(self->r))
        return mspy_raisef(MS_ESTATE, "the END record has not been read yet");
    if (rc)
        return mspy_reader_raise(self, rc);
    Py_RETURN_NONE;
}

static PyObject *reader_regions(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (!self->r) {
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return NULL;
    }
    size_t n = ms_reader_region_count(self->r);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *x = mspy_region_tuple(ms_reader_region(self->r, i));
        if (!x) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, x);
    }
    return t;
}

/* (index, count, migration_id, name, records, bytes, ended) per part. */
static PyObject *reader_parts(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    if (!self->r) {
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return NULL;
    }
    uint32_t n = ms_reader_part_count(self->r);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (uint32_t i = 0; t && i < n; i++) {
        const ms_part_info *pi = ms_reader_part_info(self->r, i);
        PyObject *x = pi ? Py_BuildValue("(IIy#zKKO)", (unsigned)pi->part.index,
                                         (unsigned)pi->part.count,
                                         (const char *)pi->part.migration_id,
                                         (Py_ssize_t)MS_MIGRATION_ID_SIZE, pi->name,
                                         (unsigned long long)pi->records,
                                         (unsigned long long)pi->bytes,
                                         pi->ended ? Py_True : Py_False)
                         : Py_NewRef(Py_None);
        if (!x) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, x);
    }
    return t;
}

static PyObject *reader_take_problems(PyObject *o, PyObject *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    PyObject *p = self->problems ? self->problems : PyList_New(0);
    self->problems = NULL;
    return p;
}

static PyObject *get_offset(PyObject *o, void *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    return self->r ? PyLong_FromUnsignedLongLong(ms_reader_offset(self->r)) : Py_NewRef(Py_None);
}

static PyObject *get_format(PyObject *o, void *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    return mspy_str(self->r ? ms_reader_format(self->r) : NULL);
}

static PyObject *get_status(PyObject *o, void *unused)
{
    mspy_reader *self = (mspy_reader *)o;
    return PyLong_FromLong(self->r ? ms_reader_status(self->r) : 0);
}

static PyObject *get_closed(PyObject *o, void *unused)
{
    return PyBool_FromLong(((mspy_reader *)o)->r == NULL);
}

static PyObject *get_records(PyObject *o, void *unused)
{
    return PyLong_FromUnsignedLongLong(((mspy_reader *)o)->records);
}

static PyObject *get_lost(PyObject *o, void *unused)
{
    return PyBool_FromLong(((mspy_reader *)o)->pending_lost);
}

static PyMethodDef reader_methods[] = {
    {"header", reader_header, METH_NOARGS, "header(): the preamble as a tuple."},
    {"next", reader_next, METH_NOARGS, "next(): the next record as a tuple, None after END."},
    {"expect_eof", reader_expect_eof, METH_NOARGS,
     "expect_eof(): after END, checks that no byte follows."},
    {"regions", reader_regions, METH_NOARGS, "regions(): the regions declared so far."},
    {"parts", reader_parts, METH_NOARGS, "parts(): the parts of a migration in parts read."},
    {"take_problems", reader_take_problems, METH_NOARGS,
     "take_problems(): the problems kept since the last call (keep_going)."},
    {"close", reader_close, METH_NOARGS, "close(): frees the reader and its inputs."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"offset", get_offset, NULL, "bytes consumed from the input so far", NULL},
    {"format", get_format, NULL, "the stream's format: \"migstream\", \"qemu\" ...", NULL},
    {"status", get_status, NULL, "the sticky status: 0, or the failure", NULL},
    {"closed", get_closed, NULL, "True after close()", NULL},
    {"records", get_records, NULL, "records handed out", NULL},
    {"problems_lost", get_lost, NULL, "True when a problem could not be kept", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject mspy_Reader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "migstream._migstream.Reader",
    .tp_basicsize = sizeof(mspy_reader),
    .tp_dealloc = reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reader(inputs, format=None, max_record_size=0, max_regions=0, max_cbor_depth=0, "
              "max_overlays=0, keep_going=False): ms_open() over the inputs.",
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
    .tp_new = reader_new,
};
