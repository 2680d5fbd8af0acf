/*
 * migstream._migstream: the module, its exceptions and the functions that
 * need no handle. The Pythonic layer (records, regions, type hints) is the
 * package around it, python/migstream/.
 *
 * One exception class per MS_E... status (common.h), all derived from
 * migstream.Error, so that a script catches what it can act on
 * (ChecksumError, TruncatedError ...) or everything at once. Each instance
 * carries the status, the library's message, and where: the byte offset
 * and the record index (None for the preamble or when not known).
 */
#include "ext.h"

#include <stdarg.h>
#include <string.h>

static PyObject *error_base;
static PyObject *error_class[16]; /* by -status */

static const struct {
    int status;
    const char *name;
    const char *doc;
} errors[] = {
    {MS_ENOMEM, "OutOfMemoryError", "MS_ENOMEM: an allocation failed."},
    {MS_EINVAL, "InvalidArgumentError", "MS_EINVAL: an invalid argument or option."},
    {MS_EIO, "IoError", "MS_EIO: reading or writing the stream failed."},
    {MS_ETRUNCATED, "TruncatedError", "MS_ETRUNCATED: the stream ended before its END."},
    {MS_EMAGIC, "NotAStreamError", "MS_EMAGIC: not a stream of a format this build reads."},
    {MS_EVERSION, "VersionError", "MS_EVERSION: a newer major format version."},
    {MS_EFEATURE, "FeatureError", "MS_EFEATURE: a required feature this library lacks."},
    {MS_ECHECKSUM, "ChecksumError", "MS_ECHECKSUM: a checksum did not match."},
    {MS_ECORRUPT, "CorruptError", "MS_ECORRUPT: a malformed structure or a broken rule."},
    {MS_EUNKNOWN, "UnknownRecordError",
     "MS_EUNKNOWN: an unknown record type marked must-understand."},
    {MS_ELIMIT, "LimitError", "MS_ELIMIT: a size or count beyond the spec or a limit."},
    {MS_ESTATE, "StateError", "MS_ESTATE: a call not valid in the object's state."},
    {MS_ECBOR, "CborError", "MS_ECBOR: malformed or out-of-profile CBOR."},
    {MS_ECOMPRESS, "CompressionError", "MS_ECOMPRESS: compressed data that does not decode."},
    {MS_EAGAIN, "WouldBlockError",
     "MS_EAGAIN: the input or output would block; wait until it is ready and repeat the call "
     "(not a failure: the reader or writer goes on)."},
};

static PyObject *class_of(int status)
{
    if (status < 0 && -status < (int)(sizeof error_class / sizeof error_class[0]) &&
        error_class[-status])
        return error_class[-status];
    return error_base;
}

PyObject *mspy_raise(int status, const char *message, bool has_offset, uint64_t offset,
                     int64_t record)
{
    PyObject *ct = NULL, *cv = NULL, *ctb = NULL;
    PyErr_Fetch(&ct, &cv, &ctb);
    if (ct && !PyErr_GivenExceptionMatches(ct, PyExc_Exception)) {
        /* KeyboardInterrupt, SystemExit: not ours to wrap. */
        PyErr_Restore(ct, cv, ctb);
        return NULL;
    }
    PyObject *cls = class_of(status);
    PyObject *msg = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
    PyObject *exc = msg ? PyObject_CallOneArg(cls, msg) : NULL;
    PyObject *st = PyLong_FromLong(status);
    PyObject *off = has_offset ? PyLong_FromUnsignedLongLong(offset) : Py_NewRef(Py_None);
    PyObject *rec = record >= 0 ? PyLong_FromLongLong(record) : Py_NewRef(Py_None);
    if (!exc || !st || !off || !rec || PyObject_SetAttrString(exc, "status", st) < 0 ||
        PyObject_SetAttrString(exc, "offset", off) < 0 ||
        PyObject_SetAttrString(exc, "record", rec) < 0 ||
        PyObject_SetAttrString(exc, "message", msg) < 0) {
        Py_XDECREF(exc);
        exc = NULL;
    }
    Py_XDECREF(msg);
    Py_XDECREF(st);
    Py_XDECREF(off);
    Py_XDECREF(rec);
    if (!exc) {
        Py_XDECREF(ct);
        Py_XDECREF(cv);
        Py_XDECREF(ctb);
        return NULL;
    }
    if (ct) {
        PyErr_NormalizeException(&ct, &cv, &ctb);
        if (ctb && cv)
            PyException_SetTraceback(cv, ctb);
        if (cv) {
            Py_INCREF(cv);
            PyException_SetContext(exc, cv);
            PyException_SetCause(exc, cv); /* steals */
        }
        Py_XDECREF(ct);
        Py_XDECREF(cv);
        Py_XDECREF(ctb);
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *mspy_raisef(int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mspy_raise(status, msg, false, 0, -1);
}

void mspy_set_errno(int err)
{
    if (err <= 0 || !PyErr_ExceptionMatches(error_class[-MS_EIO]))
        return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *no = PyLong_FromLong(err);
    PyObject *why = PyUnicode_DecodeLocale(strerror(err), "surrogateescape");
    if (!no || !why || PyObject_SetAttrString(v, "errno", no) < 0 ||
        PyObject_SetAttrString(v, "strerror", why) < 0)
        PyErr_Clear();
    Py_XDECREF(no);
    Py_XDECREF(why);
    PyErr_Restore(t, v, tb);
}

PyObject *mspy_str(const char *s)
{
    if (!s)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

int mspy_u64(PyObject *o, const char *what, uint64_t *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_OverflowError, "%s must be between 0 and 2**64 - 1", what);
        return -1;
    }
    *out = v;
    return 0;
}

int mspy_u32(PyObject *o, const char *what, uint32_t *out)
{
    uint64_t v;
    if (mspy_u64(o, what, &v))
        return -1;
    if (v > UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s must be between 0 and 2**32 - 1", what);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------ functions */

static int depth_arg(unsigned long depth, unsigned *out)
{
    if (depth == 0 || depth > MS_MAX_CBOR_DEPTH) {
        PyErr_Format(PyExc_ValueError, "max_depth must be 1 to %u", MS_MAX_CBOR_DEPTH);
        return -1;
    }
    *out = (unsigned)depth;
    return 0;
}

static PyObject *fn_cbor_decode(PyObject *mod, PyObject *args)
{
    Py_buffer b;
    unsigned long depth = MS_DEFAULT_CBOR_DEPTH;
    unsigned d;
    if (!PyArg_ParseTuple(args, "y*|k", &b, &depth))
        return NULL;
    PyObject *v = depth_arg(depth, &d) ? NULL : mspy_cbor_decode(b.buf, (size_t)b.len, d);
    PyBuffer_Release(&b);
    return v;
}

static PyObject *fn_cbor_encode(PyObject *mod, PyObject *args)
{
    PyObject *value;
    unsigned long depth = MS_DEFAULT_CBOR_DEPTH;
    unsigned d;
    if (!PyArg_ParseTuple(args, "O|k", &value, &depth) || depth_arg(depth, &d))
        return NULL;
    return mspy_cbor_encode(value, d);
}

/* ms_cbor_format(): diagnostic notation (form 0) or JSON (form 1). */
static PyObject *fn_cbor_format(PyObject *mod, PyObject *args)
{
    Py_buffer b;
    int form;
    unsigned long depth = MS_DEFAULT_CBOR_DEPTH;
    unsigned d;
    if (!PyArg_ParseTuple(args, "y*i|k", &b, &form, &depth))
        return NULL;
    PyObject *out = NULL;
    if (depth_arg(depth, &d))
        goto done;
    if (form != MS_CBOR_DIAG && form != MS_CBOR_JSON) {
        PyErr_SetString(PyExc_ValueError, "form must be 0 (diagnostic) or 1 (JSON)");
        goto done;
    }
    ssize_t n = ms_cbor_format(b.buf, (size_t)b.len, (ms_cbor_form)form, d, NULL, 0);
    if (n < 0) {
        mspy_raisef((int)n, "%s", ms_strerror((int)n));
        goto done;
    }
    char *text = PyMem_Malloc((size_t)n + 1);
    if (!text) {
        PyErr_NoMemory();
        goto done;
    }
    ms_cbor_format(b.buf, (size_t)b.len, (ms_cbor_form)form, d, text, (size_t)n + 1);
    out = PyUnicode_DecodeUTF8(text, n, "surrogateescape");
    PyMem_Free(text);
done:
    PyBuffer_Release(&b);
    return out;
}

static PyObject *fn_strerror(PyObject *mod, PyObject *arg)
{
    long st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred())
        return NULL;
    return mspy_str(ms_strerror((int)st));
}

static PyObject *fn_migration_id(PyObject *mod, PyObject *unused)
{
    uint8_t id[MS_MIGRATION_ID_SIZE];
    int rc = ms_migration_id_new(id);
    if (rc)
        return mspy_raisef(rc, "no random bytes for a migration id");
    return PyBytes_FromStringAndSize((const char *)id, MS_MIGRATION_ID_SIZE);
}

static PyObject *fn_formats(PyObject *mod, PyObject *unused)
{
    PyObject *out = PyList_New(0);
    for (const char *const *f = ms_formats(); out && *f; f++) {
        PyObject *s = mspy_str(*f);
        if (!s || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    if (!out)
        return NULL;
    PyObject *t = PyList_AsTuple(out);
    Py_DECREF(out);
    return t;
}

static PyObject *fn_known_features(PyObject *mod, PyObject *unused)
{
    uint64_t req, opt;
    ms_known_features(&req, &opt);
    return Py_BuildValue("(KK)", (unsigned long long)req, (unsigned long long)opt);
}

/* Names of the wire enumerations: (kind, value) -> str or None. */
static PyObject *fn_name(PyObject *mod, PyObject *args)
{
    const char *kind;
    unsigned long v;
    if (!PyArg_ParseTuple(args, "sk", &kind, &v))
        return NULL;
    unsigned u = v > UINT32_MAX ? UINT32_MAX : (unsigned)v;
    if (!strcmp(kind, "record"))
        return mspy_str(ms_record_type_name(u));
    if (!strcmp(kind, "page"))
        return mspy_str(ms_page_state_name(u));
    if (!strcmp(kind, "feature"))
        return mspy_str(ms_feature_name(u));
    if (!strcmp(kind, "tracker"))
        return mspy_str(ms_tracker_name(u));
    if (!strcmp(kind, "overlay"))
        return mspy_str(ms_overlay_kind_name(u));
    PyErr_Format(PyExc_ValueError, "no names of kind %s", kind);
    return NULL;
}

static PyObject *fn_overlay_render(PyObject *mod, PyObject *arg)
{
    ms_overlay o;
    if (mspy_overlay_from_tuple(arg, &o))
        return NULL;
    char why[256] = "";
    if (ms_overlay_check(&o, why, sizeof why))
        return mspy_raisef(MS_EINVAL, "invalid overlay: %s", why);
    uint8_t page[MS_OVERLAY_PAGE_SIZE];
    ms_overlay_render(&o, page);
    return PyBytes_FromStringAndSize((const char *)page, sizeof page);
}

static PyObject *fn_overlay_priority(PyObject *mod, PyObject *arg)
{
    unsigned long k = PyLong_AsUnsignedLong(arg);
    if (k == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromUnsignedLong(ms_overlay_priority(k > UINT32_MAX ? 0 : (unsigned)k));
}

static PyMethodDef functions[] = {
    {"cbor_decode", fn_cbor_decode, METH_VARARGS,
     "cbor_decode(data, max_depth=64): one CBOR item of the device-state profile as Python "
     "values."},
    {"cbor_encode", fn_cbor_encode, METH_VARARGS,
     "cbor_encode(value, max_depth=64): Python values as one deterministic CBOR item."},
    {"cbor_format", fn_cbor_format, METH_VARARGS,
     "cbor_format(data, form, max_depth=64): the item as text (0: diagnostic, 1: JSON)."},
    {"strerror", fn_strerror, METH_O, "strerror(status): the name of a status code."},
    {"formats", fn_formats, METH_NOARGS, "formats(): the formats this build reads."},
    {"migration_id", fn_migration_id, METH_NOARGS,
     "migration_id(): 16 random bytes naming a migration in parts."},
    {"known_features", fn_known_features, METH_NOARGS,
     "known_features(): (required, optional) feature bits this library implements."},
    {"name", fn_name, METH_VARARGS,
     "name(kind, value): the library's name of a record type, page state, feature bit, "
     "tracker or overlay kind, or None."},
    {"overlay_render", fn_overlay_render, METH_O,
     "overlay_render(overlay_tuple): the 4096 bytes the overlay shows the guest."},
    {"overlay_priority", fn_overlay_priority, METH_O,
     "overlay_priority(kind): the kind's fixed priority (0: unknown)."},
    {"replay", mspy_replay, METH_VARARGS,
     "replay(reader, handler): ms_replay() with the handler's methods as callbacks."},
    {"replay_dir", (PyCFunction)(void (*)(void))mspy_replay_dir, METH_VARARGS | METH_KEYWORDS,
     "replay_dir(reader, path, ...): ms_replay_dir_write()."},
    {"diff", (PyCFunction)(void (*)(void))mspy_diff, METH_VARARGS | METH_KEYWORDS,
     "diff(reader_a, reader_b, ...): ms_diff's items and totals."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "migstream._migstream",
    .m_doc = "The C half of the migstream package: libmigstream's API for Python.",
    .m_size = -1,
    .m_methods = functions,
};

static int add_errors(PyObject *m)
{
    PyObject *dict = Py_BuildValue("{sOsOsOsO}", "status", Py_None, "offset", Py_None, "record",
                                   Py_None, "message", Py_None);
    if (!dict)
        return -1;
    error_base = PyErr_NewExceptionWithDoc(
        "migstream.Error",
        "A failure the library reported: .status (an MS_E... code), .message (the "
        "library's text), .offset (byte offset) and .record (record index), None where "
        "not known.",
        NULL, dict);
    Py_DECREF(dict);
    if (!error_base || PyModule_AddObjectRef(m, "Error", error_base) < 0)
        return -1;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        PyObject *bases;
        if (errors[i].status == MS_ENOMEM)
            bases = PyTuple_Pack(2, error_base, PyExc_MemoryError);
        else if (errors[i].status == MS_EINVAL || errors[i].status == MS_ECBOR)
            bases = PyTuple_Pack(2, error_base, PyExc_ValueError);
        else if (errors[i].status == MS_EIO)
            bases = PyTuple_Pack(2, error_base, PyExc_OSError);
        else if (errors[i].status == MS_EAGAIN)
            bases = PyTuple_Pack(2, error_base, PyExc_BlockingIOError);
        else
            bases = PyTuple_Pack(1, error_base);
        PyObject *d = Py_BuildValue("{si}", "status", errors[i].status);
        char name[96];
        snprintf(name, sizeof name, "migstream.%s", errors[i].name);
        PyObject *cls =
            bases && d ? PyErr_NewExceptionWithDoc(name, errors[i].doc, bases, d) : NULL;
        Py_XDECREF(bases);
        Py_XDECREF(d);
        if (!cls || PyModule_AddObjectRef(m, errors[i].name, cls) < 0) {
            Py_XDECREF(cls);
            return -1;
        }
        error_class[-errors[i].status] = cls; /* the module keeps a reference too */
    }
    return 0;
}

PyMODINIT_FUNC PyInit__migstream(void);
PyMODINIT_FUNC PyInit__migstream(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    if (add_errors(m) < 0 || PyType_Ready(&mspy_PageData_Type) < 0 ||
        PyType_Ready(&mspy_Reader_Type) < 0 || PyType_Ready(&mspy_Writer_Type) < 0 ||
        PyType_Ready(&mspy_Extents_Type) < 0)
        goto fail;
    static PyStructSequence_Field extent_fields[] = {
        {"first", "first page index within the region"},
        {"count", "pages in the run"},
        {"state", "page state (PageState)"},
        {"arg", "FILL: the 8-byte word; IN_PLACE: the byte address; else 0"},
        {NULL, NULL},
    };
    static PyStructSequence_Desc extent_desc = {
        "migstream.Extent", "A run of pages in one state (FORMAT.md section 6.2).", extent_fields,
        4};
    mspy_Extent_Type = PyStructSequence_NewType(&extent_desc);
    if (!mspy_Extent_Type)
        goto fail;
    if (PyModule_AddObjectRef(m, "Reader", (PyObject *)&mspy_Reader_Type) < 0 ||
        PyModule_AddObjectRef(m, "Writer", (PyObject *)&mspy_Writer_Type) < 0 ||
        PyModule_AddObjectRef(m, "Extents", (PyObject *)&mspy_Extents_Type) < 0 ||
        PyModule_AddObjectRef(m, "Extent", (PyObject *)mspy_Extent_Type) < 0 ||
        PyModule_AddObjectRef(m, "PageData", (PyObject *)&mspy_PageData_Type) < 0 ||
        PyModule_AddStringConstant(m, "version", ms_version_string()) < 0 ||
        PyModule_AddIntConstant(m, "FORMAT_MAJOR", MS_FORMAT_MAJOR) < 0 ||
        PyModule_AddIntConstant(m, "FORMAT_MINOR", MS_FORMAT_MINOR) < 0 ||
        PyModule_AddIntConstant(m, "MAX_CBOR_DEPTH", MS_MAX_CBOR_DEPTH) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_CBOR_DEPTH", MS_DEFAULT_CBOR_DEPTH) < 0 ||
        PyModule_AddIntConstant(m, "HAVE_QEMU", MS_HAVE_QEMU) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
