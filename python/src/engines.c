/*
 * The library's engines from Python, each over a Reader that has read
 * nothing yet:
 *
 *   replay(reader, handler)   ms_replay() (replay.h): the handler's methods
 *                             (header, info, region, extent, device,
 *                             unknown, end, round, overlay; any may be
 *                             missing) are its callbacks
 *   replay_dir(reader, path)  ms_replay_dir_write() (replay_dir.h): the
 *                             final state as a directory of files
 *   diff(a, b)                ms_diff (diff.h): the differences between
 *                             two streams' final states
 *
 * The engines run without the GIL and take it back for each callback. An
 * exception a handler raises stops the engine (the callback returns STOP)
 * and is raised as it is. Ctrl-C stops replay_dir between records (its
 * progress callback checks for signals).
 */
#include "ext.h"

#include <signal.h>
#include <string.h>

/* What a callback returns to stop an engine because Python raised: not an
 * MS_E... status, so that it cannot be mistaken for one. */
#define STOP (-0x4d53)

typedef struct stash {
    PyObject *t, *v, *tb;
} stash;

static void stash_error(stash *s)
{
    if (!s->t)
        PyErr_Fetch(&s->t, &s->v, &s->tb);
    else
        PyErr_Clear();
}

static bool restore_error(stash *s)
{
    if (!s->t)
        return false;
    PyErr_Restore(s->t, s->v, s->tb);
    s->t = s->v = s->tb = NULL;
    return true;
}

static void drop_error(stash *s)
{
    Py_XDECREF(s->t);
    Py_XDECREF(s->v);
    Py_XDECREF(s->tb);
    s->t = s->v = s->tb = NULL;
}

static mspy_reader *reader_arg(PyObject *o, const char *what)
{
    if (!PyObject_TypeCheck(o, &mspy_Reader_Type)) {
        PyErr_Format(PyExc_TypeError, "%s must be a migstream._migstream.Reader", what);
        return NULL;
    }
    return (mspy_reader *)o;
}

/* After an engine consumed the reader: it is not fresh any more. */
static void consumed(mspy_reader *r)
{
    mspy_reader_leave(r);
    r->records++;
    r->ended = true;
    r->header_read = true;
}

/* --------------------------------------------------------------- replay */

enum { H_HEADER, H_INFO, H_REGION, H_EXTENT, H_DEVICE, H_UNKNOWN, H_END, H_ROUND, H_OVERLAY, H_N };
static const char *const handler_names[H_N] = {"header",  "info", "region", "extent", "device",
                                               "unknown", "end",  "round",  "overlay"};

typedef struct rctx {
    mspy_reader *rd;
    PyObject *m[H_N];
    stash err;
} rctx;

/* Calls handler method @h with the tuple @args (stolen). */
static int call(rctx *c, int h, PyObject *args)
{
    if (!args) {
        stash_error(&c->err);
        return STOP;
    }
    PyObject *r = PyObject_CallObject(c->m[h], args);
    Py_DECREF(args);
    if (!r) {
        stash_error(&c->err);
        return STOP;
    }
    Py_DECREF(r);
    return 0;
}

#define ENTER(c)                                                                                   \
    PyGILState_STATE g_ = PyGILState_Ensure();                                                     \
    int rc_ = (c)->err.t ? STOP : 0
#define LEAVE()                                                                                    \
    PyGILState_Release(g_);                                                                        \
    return rc_

static int cb_header(void *ctx, const ms_header *h)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ = call(c, H_HEADER, Py_BuildValue("(N)", mspy_header_tuple(h)));
    LEAVE();
}

static int cb_info(void *ctx, const ms_info *i)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ =
            call(c, H_INFO, Py_BuildValue("(NN)", mspy_str(i->machine), mspy_str(i->description)));
    LEAVE();
}

static int cb_region(void *ctx, const ms_region *g)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ = call(c, H_REGION, Py_BuildValue("(N)", mspy_region_tuple(g)));
    LEAVE();
}

static int cb_extent(void *ctx, const ms_region *g, const ms_extent *x, const uint8_t *data)
{
    rctx *c = ctx;
    ENTER(c);
    if (rc_)
        goto out;
    PyObject *view = Py_NewRef(Py_None);
    if (data) {
        Py_DECREF(view);
        view = mspy_view(c->rd->heap, (PyObject *)c->rd, data, (size_t)x->count * g->page_size);
    }
    if (!view) {
        stash_error(&c->err);
        rc_ = STOP;
        goto out;
    }
    Py_INCREF(view);
    rc_ = call(c, H_EXTENT, Py_BuildValue("(kNN)", (unsigned long)g->id, mspy_extent_new(x), view));
    if (view != Py_None) { /* valid during the call only */
        PyObject *r = PyObject_CallMethod(view, "release", NULL);
        if (!r)
            PyErr_Clear(); /* exported further: pinned, safe */
        Py_XDECREF(r);
    }
    Py_DECREF(view);
out:
    LEAVE();
}

static int cb_device(void *ctx, const ms_device *d)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ = call(c, H_DEVICE, Py_BuildValue("(N)", mspy_device_tuple(d)));
    LEAVE();
}

static int cb_unknown(void *ctx, const ms_record *rec)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_) {
        PyObject *p = rec->payload ? PyBytes_FromStringAndSize((const char *)rec->payload,
                                                               (Py_ssize_t)rec->length)
                                   : Py_NewRef(Py_None);
        rc_ = call(c, H_UNKNOWN,
                   Py_BuildValue("(IIN)", (unsigned)rec->type, (unsigned)rec->flags, p));
    }
    LEAVE();
}

static int cb_end(void *ctx, const ms_totals *t, uint64_t digest)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ =
            call(c, H_END, Py_BuildValue("(NK)", mspy_totals_tuple(t), (unsigned long long)digest));
    LEAVE();
}

static int cb_round(void *ctx, const ms_round *rd)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ = call(c, H_ROUND, Py_BuildValue("(N)", mspy_round_tuple(rd)));
    LEAVE();
}

static int cb_overlay(void *ctx, const ms_overlay *o)
{
    rctx *c = ctx;
    ENTER(c);
    if (!rc_)
        rc_ = call(c, H_OVERLAY, Py_BuildValue("(N)", mspy_overlay_tuple(o)));
    LEAVE();
}

PyObject *mspy_replay(PyObject *mod, PyObject *args)
{
    PyObject *ro, *handler;
    if (!PyArg_ParseTuple(args, "OO", &ro, &handler))
        return NULL;
    mspy_reader *rd = reader_arg(ro, "reader");
    if (!rd)
        return NULL;
    rctx c;
    memset(&c, 0, sizeof c);
    c.rd = rd;
    ms_replay_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    PyObject *out = NULL;
    for (int h = 0; h < H_N; h++) {
        c.m[h] = PyObject_GetAttrString(handler, handler_names[h]);
        if (!c.m[h]) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                goto done;
            PyErr_Clear();
        } else if (!PyCallable_Check(c.m[h])) {
            PyErr_Format(PyExc_TypeError, "the handler's %s is not callable", handler_names[h]);
            goto done;
        }
    }
    cb.header = c.m[H_HEADER] ? cb_header : NULL;
    cb.info = c.m[H_INFO] ? cb_info : NULL;
    cb.region = c.m[H_REGION] ? cb_region : NULL;
    cb.extent = c.m[H_EXTENT] ? cb_extent : NULL;
    cb.device = c.m[H_DEVICE] ? cb_device : NULL;
    cb.unknown = c.m[H_UNKNOWN] ? cb_unknown : NULL;
    cb.end = c.m[H_END] ? cb_end : NULL;
    cb.round = c.m[H_ROUND] ? cb_round : NULL;
    cb.overlay = c.m[H_OVERLAY] ? cb_overlay : NULL;
    if (mspy_reader_enter(rd, true))
        goto done;
    mspy_reader_drop_view(rd);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_replay(rd->r, &cb, &c);
    Py_END_ALLOW_THREADS
    mspy_reader_flush_problems(rd);
    consumed(rd);
    if (rc == 0) {
        out = Py_NewRef(Py_None);
    } else if (rc == STOP && restore_error(&c.err)) {
        /* the handler's exception, as it is */
    } else {
        mspy_reader_raise(rd, rc);
    }
done:
    drop_error(&c.err);
    for (int h = 0; h < H_N; h++)
        Py_XDECREF(c.m[h]);
    return out;
}

/* ----------------------------------------------------------- replay_dir */

typedef struct pctx {
    volatile sig_atomic_t stop;
    PyObject *progress; /* callable(bytes, pages), or NULL */
    stash err;
} pctx;

/* Between records: Ctrl-C (and a failing progress callable) stop the job. */
static void on_progress(void *ctx, uint64_t bytes, uint64_t pages)
{
    pctx *p = ctx;
    if (p->stop)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) {
        stash_error(&p->err);
        p->stop = 1;
    } else if (p->progress) {
        PyObject *r = PyObject_CallFunction(p->progress, "KK", (unsigned long long)bytes,
                                            (unsigned long long)pages);
        if (!r) {
            stash_error(&p->err);
            p->stop = 1;
        }
        Py_XDECREF(r);
    }
    PyGILState_Release(g);
}

PyObject *mspy_replay_dir(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"reader",  "path",           "name",     "force", "view",
                             "no_sync", "max_map_memory", "progress", NULL};
    PyObject *ro, *path_o, *progress = Py_None;
    const char *name = NULL;
    int force = 0, view = 0, no_sync = 0;
    unsigned long long max_map = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&|zpppKO", kwlist, &ro, PyUnicode_FSConverter,
                                     &path_o, &name, &force, &view, &no_sync, &max_map, &progress))
        return NULL;
    PyObject *out = NULL;
    ms_replay_dir *job = NULL;
    pctx p;
    memset((void *)&p, 0, sizeof p);
    mspy_reader *rd = reader_arg(ro, "reader");
    if (!rd)
        goto done;
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable");
        goto done;
    }
    if (max_map > SIZE_MAX) {
        PyErr_SetString(PyExc_OverflowError, "max_map_memory is too large");
        goto done;
    }
    p.progress = progress == Py_None ? NULL : progress;
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.force = force;
    o.view = view;
    o.no_sync = no_sync;
    o.max_map_memory = (size_t)max_map;
    o.stop = &p.stop;
    o.progress = on_progress;
    o.progress_ctx = &p;
    if (!(job = ms_replay_dir_new(&o))) {
        PyErr_NoMemory();
        goto done;
    }
    if (ms_replay_dir_status(job)) {
        mspy_raise(ms_replay_dir_status(job), ms_replay_dir_errmsg(job), false, 0, -1);
        goto done;
    }
    if (mspy_reader_enter(rd, true))
        goto done;
    mspy_reader_drop_view(rd);
    const char *path = PyBytes_AS_STRING(path_o);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_replay_dir_write(job, rd->r, name, path);
    Py_END_ALLOW_THREADS
    mspy_reader_flush_problems(rd);
    consumed(rd);
    const ms_replay_dir_result *res = ms_replay_dir_get_result(job);
    if (rc == 0) {
        out = Py_BuildValue("(iKKKKKK)", res->stream_status, (unsigned long long)res->regions,
                            (unsigned long long)res->devices, (unsigned long long)res->overlays,
                            (unsigned long long)res->skipped_records,
                            (unsigned long long)res->pages, (unsigned long long)res->digest);
    } else if (rc == MS_REPLAY_DIR_STOPPED) {
        if (!restore_error(&p.err))
            PyErr_SetString(PyExc_KeyboardInterrupt, "the replay was stopped");
    } else {
        bool stream = res->stream_status != 0 && ms_reader_status(rd->r) != 0;
        if (stream)
            mspy_inputs_restore_error(rd->inputs);
        mspy_raise(rc, ms_replay_dir_errmsg(job), stream,
                   stream ? ms_reader_error_offset(rd->r) : 0,
                   stream ? ms_reader_error_record(rd->r) : -1);
    }
done:
    drop_error(&p.err);
    ms_replay_dir_free(job);
    Py_DECREF(path_o);
    return out;
}

/* ----------------------------------------------------------------- diff */

typedef struct dctx {
    PyObject *items;
    Py_ssize_t limit; /* -1: no limit */
    bool truncated;
    stash err;
} dctx;

static PyObject *value(const ms_diff_value *v)
{
    PyObject *x;
    switch (v->type) {
    case MS_DIFF_TEXT:
    case MS_DIFF_VERSION:
        x = mspy_str(v->text);
        break;
    case MS_DIFF_UINT:
    case MS_DIFF_ADDRESS:
        x = PyLong_FromUnsignedLongLong(v->num);
        break;
    case MS_DIFF_CBOR:
        x = PyBytes_FromStringAndSize((const char *)v->cbor,
                                      v->cbor ? (Py_ssize_t)v->cbor_size : 0);
        break;
    default:
        x = Py_NewRef(Py_None);
    }
    return x ? Py_BuildValue("(iN)", (int)v->type, x) : NULL;
}

static PyObject *opt(const void *p, PyObject *(*f)(const void *))
{
    return p ? f(p) : Py_NewRef(Py_None);
}

static PyObject *region_t(const void *p)
{
    return mspy_region_tuple(p);
}

static PyObject *overlay_t(const void *p)
{
    return mspy_overlay_tuple(p);
}

static PyObject *device_t(const void *p)
{
    return mspy_device_tuple(p);
}

static PyObject *states_t(const void *p)
{
    const uint64_t *s = p;
    PyObject *t = PyTuple_New(MS_PAGEMAP_STATES);
    for (Py_ssize_t i = 0; t && i < MS_PAGEMAP_STATES; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong(s[i]);
        if (!n) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, n);
    }
    return t;
}

static int on_item(void *ctx, const ms_diff_item *it)
{
    dctx *c = ctx;
    int rc = 0;
    PyGILState_STATE g = PyGILState_Ensure();
    if (c->err.t) {
        rc = STOP;
        goto out;
    }
    if (c->limit >= 0 && PyList_GET_SIZE(c->items) >= c->limit) {
        c->truncated = true; /* counted by the library, not kept */
        goto out;
    }
    PyObject *t = Py_BuildValue(
        "(iiNNNNNKKkIIKKNNNNN)", (int)it->kind, (int)it->side, mspy_str(it->field), value(&it->a),
        value(&it->b), opt(it->region, region_t), opt(it->region_b, region_t),
        (unsigned long long)it->first, (unsigned long long)it->count, (unsigned long)it->unit,
        it->state_a, it->state_b, (unsigned long long)it->pages, (unsigned long long)it->ranges,
        opt(it->states, states_t), opt(it->overlay, overlay_t), opt(it->overlay_b, overlay_t),
        opt(it->device, device_t), opt(it->device_b, device_t));
    if (!t || PyList_Append(c->items, t) < 0) {
        stash_error(&c->err);
        rc = STOP;
    }
    Py_XDECREF(t);
out:
    PyGILState_Release(g);
    return rc;
}

/* Loads one side: the reader's own failure (offset, record) when the
 * stream was at fault. 0 or -1 with an exception. */
static int load(ms_diff *d, ms_diff_side side, mspy_reader *rd, const char *name)
{
    if (mspy_reader_enter(rd, true))
        return -1;
    mspy_reader_drop_view(rd);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_diff_load(d, side, rd->r, name);
    Py_END_ALLOW_THREADS
    mspy_reader_flush_problems(rd);
    consumed(rd);
    if (rc == 0)
        return 0;
    bool stream = ms_reader_status(rd->r) != 0;
    if (stream)
        mspy_inputs_restore_error(rd->inputs);
    mspy_raise(rc, ms_diff_errmsg(d), stream, stream ? ms_reader_error_offset(rd->r) : 0,
               stream ? ms_reader_error_record(rd->r) : -1);
    return -1;
}

PyObject *mspy_diff(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"a",      "b",     "name_a", "name_b", "max_map_memory",
                             "tmpdir", "limit", NULL};
    PyObject *ao, *bo;
    const char *name_a = NULL, *name_b = NULL, *tmpdir = NULL;
    unsigned long long max_map = 0;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|zzKzn", kwlist, &ao, &bo, &name_a, &name_b,
                                     &max_map, &tmpdir, &limit))
        return NULL;
    mspy_reader *a = reader_arg(ao, "a"), *b = a ? reader_arg(bo, "b") : NULL;
    if (!b)
        return NULL;
    if (a == b) {
        PyErr_SetString(PyExc_ValueError, "compare two readers, not one with itself");
        return NULL;
    }
    if (max_map > SIZE_MAX) {
        PyErr_SetString(PyExc_OverflowError, "max_map_memory is too large");
        return NULL;
    }
    ms_diff_options o;
    ms_diff_options_init(&o);
    o.max_map_memory = (size_t)max_map;
    o.tmpdir = tmpdir;
    ms_diff *d = ms_diff_new(&o);
    if (!d)
        return PyErr_NoMemory();
    PyObject *out = NULL;
    dctx c;
    memset(&c, 0, sizeof c);
    c.limit = limit < 0 ? -1 : limit;
    if (ms_diff_status(d)) {
        mspy_raise(ms_diff_status(d), ms_diff_errmsg(d), false, 0, -1);
        goto done;
    }
    if (load(d, MS_DIFF_A, a, name_a) || load(d, MS_DIFF_B, b, name_b))
        goto done;
    if (!(c.items = PyList_New(0)))
        goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_diff_compare(d, on_item, &c);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        if (!(rc == STOP && restore_error(&c.err)))
            mspy_raise(rc, ms_diff_errmsg(d), false, 0, -1);
        goto done;
    }
    const ms_diff_totals *t = ms_diff_get_totals(d);
    out = Py_BuildValue("(iO(KKKKKK)O)", rc, c.items, (unsigned long long)t->metadata,
                        (unsigned long long)t->regions, (unsigned long long)t->pages,
                        (unsigned long long)t->ranges, (unsigned long long)t->devices,
                        (unsigned long long)t->overlays, c.truncated ? Py_True : Py_False);
done:
    drop_error(&c.err);
    Py_XDECREF(c.items);
    ms_diff_free(d);
    return out;
}
