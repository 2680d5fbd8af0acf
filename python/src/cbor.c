/*
 * Device state between CBOR and Python values (FORMAT.md sections 7.1 and
 * 10). CBOR is not in Python's standard library, and libcbor's loader
 * allocates what a length field claims (docs: STYLE.md, "libcbor 0.8.0"),
 * so both directions are written here against the profile:
 *
 *  - decoding accepts exactly one item: definite lengths, no tags, simple
 *    values false/true/null, half/single/double floats, UTF-8 text; an
 *    array's count may not exceed the bytes left, nor a map's pairs half of
 *    them, checked before anything is allocated; nesting is bounded, so
 *    the recursion is too;
 *  - encoding is deterministic (RFC 8949 section 4.2.1): the shortest form
 *    of every integer, length and float that keeps the value, map keys
 *    sorted by their encoded bytes, NaN as f97e00.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ decoding */

typedef struct dec {
    const uint8_t *p;
    size_t n;
    size_t pos;
    unsigned max_depth;
} dec;

static PyObject *dec_fail(const dec *d, size_t at, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "CBOR: %s at byte %zu of the item", what, at);
    return mspy_raise(MS_ECBOR, msg, true, at, -1);
}

/* Reads an item head. 0, or -1 with an exception. */
static int dec_head(dec *d, uint8_t *major, uint8_t *ai, uint64_t *arg)
{
    size_t at = d->pos;
    if (d->pos >= d->n) {
        dec_fail(d, at, "the item ends early");
        return -1;
    }
    uint8_t b = d->p[d->pos++];
    *major = b >> 5;
    *ai = b & 31;
    size_t len;
    if (*ai < 24) {
        *arg = *ai;
        return 0;
    } else if (*ai <= 27) {
        len = (size_t)1 << (*ai - 24);
    } else if (*ai == 31) {
        dec_fail(d, at, "an indefinite length, which the profile does not allow");
        return -1;
    } else {
        dec_fail(d, at, "reserved additional information");
        return -1;
    }
    if (d->n - d->pos < len) {
        dec_fail(d, at, "the item ends early");
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | d->p[d->pos + i];
    *arg = v;
    /* Floats keep their bytes for PyFloat_Unpack*; the position moves here
     * for every other kind. */
    if (*major != 7)
        d->pos += len;
    return 0;
}

static PyObject *dec_item(dec *d, unsigned depth, bool as_key);

static PyObject *dec_array(dec *d, uint64_t count, unsigned depth, bool as_key, size_t at)
{
    if (count > d->n - d->pos)
        return dec_fail(d, at, "an array with more elements than bytes left");
    PyObject *out = as_key ? PyTuple_New((Py_ssize_t)count) : PyList_New((Py_ssize_t)count);
    if (!out)
        return NULL;
    for (uint64_t i = 0; i < count; i++) {
        PyObject *x = dec_item(d, depth + 1, as_key);
        if (!x) {
            Py_DECREF(out);
            return NULL;
        }
        if (as_key)
            PyTuple_SET_ITEM(out, (Py_ssize_t)i, x);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, x);
    }
    return out;
}

static PyObject *dec_map(dec *d, uint64_t pairs, unsigned depth, bool as_key, size_t at)
{
    if (pairs > (d->n - d->pos) / 2)
        return dec_fail(d, at, "a map with more pairs than bytes left");
    if (as_key)
        return dec_fail(d, at,
                        "a map used as a map key, which Python cannot hash (read "
                        "state_cbor instead)");
    PyObject *out = PyDict_New();
    if (!out)
        return NULL;
    for (uint64_t i = 0; i < pairs; i++) {
        size_t key_at = d->pos;
        PyObject *k = dec_item(d, depth + 1, true);
        if (!k)
            goto fail;
        int has = PyDict_Contains(out, k);
        if (has != 0) {
            Py_DECREF(k);
            if (has > 0)
                dec_fail(d, key_at, "a map key that the map holds already");
            goto fail;
        }
        PyObject *v = dec_item(d, depth + 1, false);
        if (!v || PyDict_SetItem(out, k, v) < 0) {
            Py_DECREF(k);
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *dec_simple(dec *d, uint8_t ai, size_t at)
{
    switch (ai) {
    case 20:
        Py_RETURN_FALSE;
    case 21:
        Py_RETURN_TRUE;
    case 22:
        Py_RETURN_NONE;
    case 25:
    case 26:
    case 27: {
        const char *b = (const char *)d->p + d->pos;
        double v = ai == 25   ? PyFloat_Unpack2(b, 0)
                   : ai == 26 ? PyFloat_Unpack4(b, 0)
                              : PyFloat_Unpack8(b, 0);
        if (v == -1.0 && PyErr_Occurred())
            return NULL;
        d->pos += (size_t)1 << (ai - 24);
        return PyFloat_FromDouble(v);
    }
    default:
        return dec_fail(d, at, "a simple value other than false, true and null");
    }
}

static PyObject *dec_item(dec *d, unsigned depth, bool as_key)
{
    size_t at = d->pos;
    uint8_t major, ai;
    uint64_t arg;
    if (dec_head(d, &major, &ai, &arg))
        return NULL;
    switch (major) {
    case 0:
        return PyLong_FromUnsignedLongLong(arg);
    case 1: {
        if (arg <= (uint64_t)INT64_MAX)
            return PyLong_FromLongLong(-1 - (int64_t)arg);
        PyObject *u = PyLong_FromUnsignedLongLong(arg);
        if (!u)
            return NULL;
        PyObject *v = PyNumber_Invert(u); /* ~u == -1 - u */
        Py_DECREF(u);
        return v;
    }
    case 2:
    case 3:
        if (arg > d->n - d->pos)
            return dec_fail(d, at, "a string longer than the bytes left");
        d->pos += (size_t)arg;
        if (major == 2)
            return PyBytes_FromStringAndSize((const char *)d->p + d->pos - arg, (Py_ssize_t)arg);
        {
            PyObject *s =
                PyUnicode_DecodeUTF8((const char *)d->p + d->pos - arg, (Py_ssize_t)arg, "strict");
            if (!s && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                return dec_fail(d, at, "a text string that is not valid UTF-8");
            }
            return s;
        }
    case 4:
    case 5:
        if (depth + 1 > d->max_depth) {
            char what[96];
            snprintf(what, sizeof what, "nesting deeper than %u arrays and maps", d->max_depth);
            return dec_fail(d, at, what);
        }
        return major == 4 ? dec_array(d, arg, depth, as_key, at)
                          : dec_map(d, arg, depth, as_key, at);
    case 6:
        return dec_fail(d, at, "a tag, which the profile does not allow");
    default:
        return dec_simple(d, ai, at);
    }
}

PyObject *mspy_cbor_decode(const uint8_t *p, size_t n, unsigned max_depth)
{
    dec d = {.p = p, .n = n, .pos = 0, .max_depth = max_depth};
    PyObject *v = dec_item(&d, 0, false);
    if (v && d.pos != n) {
        Py_DECREF(v);
        return dec_fail(&d, d.pos, "bytes after the item");
    }
    return v;
}

/* ------------------------------------------------------------ encoding */

typedef struct enc {
    uint8_t *p;
    size_t len, cap;
    unsigned max_depth;
} enc;

static int enc_reserve(enc *e, size_t extra)
{
    if (extra <= e->cap - e->len)
        return 0;
    if (extra > (size_t)PY_SSIZE_T_MAX - e->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = e->cap ? e->cap : 64;
    while (cap - e->len < extra)
        cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? (size_t)PY_SSIZE_T_MAX : cap * 2;
    uint8_t *q = PyMem_Realloc(e->p, cap);
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    e->p = q;
    e->cap = cap;
    return 0;
}

static int enc_put(enc *e, const void *p, size_t n)
{
    if (enc_reserve(e, n))
        return -1;
    if (n)
        memcpy(e->p + e->len, p, n);
    e->len += n;
    return 0;
}

static int enc_head(enc *e, uint8_t major, uint64_t v)
{
    uint8_t b[9];
    size_t n;
    if (v < 24) {
        b[0] = (uint8_t)(major << 5 | v);
        n = 1;
    } else {
        size_t w = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
        b[0] = (uint8_t)(major << 5 | (w == 1 ? 24 : w == 2 ? 25 : w == 4 ? 26 : 27));
        for (size_t i = 0; i < w; i++)
            b[1 + i] = (uint8_t)(v >> (8 * (w - 1 - i)));
        n = 1 + w;
    }
    return enc_put(e, b, n);
}

/* Where the encoder is, for messages: a chain of map keys and array
 * indexes, turned into text (/"regs"/3) only when something fails. */
typedef struct frame {
    const struct frame *up;
    PyObject *key; /* a map key, or NULL: an array index */
    Py_ssize_t index;
} frame;

static size_t path_text(const frame *f, char *out, size_t size)
{
    if (!f)
        return 0;
    size_t n = path_text(f->up, out, size);
    if (n >= size)
        return n;
    if (!f->key)
        return n + (size_t)snprintf(out + n, size - n, "/%zd", f->index);
    PyObject *r = PyObject_Repr(f->key);
    const char *s = r ? PyUnicode_AsUTF8(r) : NULL;
    if (!s)
        PyErr_Clear();
    n += (size_t)snprintf(out + n, size - n, "/%.60s", s ? s : "?");
    Py_XDECREF(r);
    return n;
}

static int enc_fail(const frame *f, const char *what)
{
    char path[256] = "", msg[400];
    path_text(f, path, sizeof path);
    snprintf(msg, sizeof msg, "CBOR: %s%s%s", what, path[0] ? " at " : "", path);
    mspy_raise(MS_ECBOR, msg, false, 0, -1);
    return -1;
}

static int enc_int(enc *e, PyObject *o, const frame *f)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (!overflow)
        return v >= 0 ? enc_head(e, 0, (uint64_t)v) : enc_head(e, 1, (uint64_t)(-(v + 1)));
    PyObject *mag = overflow > 0 ? (Py_INCREF(o), o) : PyNumber_Invert(o); /* -1 - o */
    if (!mag)
        return -1;
    unsigned long long u = PyLong_AsUnsignedLongLong(mag);
    Py_DECREF(mag);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        return enc_fail(f, overflow > 0 ? "an integer above 2**64 - 1" : "an integer below -2**64");
    }
    return enc_head(e, overflow > 0 ? 0 : 1, u);
}

static int enc_float(enc *e, double v)
{
    uint8_t b[9];
    if (v != v) { /* NaN: one encoding for all of them */
        static const uint8_t nan[3] = {0xf9, 0x7e, 0x00};
        return enc_put(e, nan, sizeof nan);
    }
    if (PyFloat_Pack2(v, (char *)b + 1, 0) == 0 && PyFloat_Unpack2((char *)b + 1, 0) == v) {
        b[0] = 0xf9;
        return enc_put(e, b, 3);
    }
    PyErr_Clear(); /* Pack2 raises OverflowError past the half range */
    if (PyFloat_Pack4(v, (char *)b + 1, 0) == 0 && PyFloat_Unpack4((char *)b + 1, 0) == v) {
        b[0] = 0xfa;
        return enc_put(e, b, 5);
    }
    PyErr_Clear();
    if (PyFloat_Pack8(v, (char *)b + 1, 0) < 0)
        return -1;
    b[0] = 0xfb;
    return enc_put(e, b, 9);
}

static int enc_value(enc *e, PyObject *o, unsigned depth, const frame *f);

typedef struct pair {
    size_t off, len; /* the encoded key in the keys buffer */
    const uint8_t *key;
    PyObject *pykey, *value; /* borrowed from the items list */
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* A map: its keys encoded first, then sorted by those bytes. The items are
 * a snapshot (strong references), whatever a key's repr does later. */
static int enc_map(enc *e, PyObject *o, unsigned depth, const frame *f)
{
    PyObject *items = PyDict_Items(o);
    if (!items)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(items);
    pair *pairs = PyMem_Calloc(n ? (size_t)n : 1, sizeof *pairs);
    enc keys = {.max_depth = e->max_depth};
    int rc = -1;
    if (!pairs) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);
        pair *p = &pairs[i];
        p->pykey = PyTuple_GET_ITEM(kv, 0);
        p->value = PyTuple_GET_ITEM(kv, 1);
        p->off = keys.len;
        frame sub = {.up = f, .key = p->pykey};
        if (enc_value(&keys, p->pykey, depth + 1, &sub))
            goto out;
        p->len = keys.len - p->off;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        pairs[i].key = keys.p + pairs[i].off;
    qsort(pairs, (size_t)n, sizeof *pairs, pair_cmp);
    if (enc_head(e, 5, (uint64_t)n))
        goto out;
    for (Py_ssize_t i = 0; i < n; i++) {
        frame sub = {.up = f, .key = pairs[i].pykey};
        if (i && pair_cmp(&pairs[i - 1], &pairs[i]) == 0) {
            enc_fail(&sub, "two map keys with the same encoding");
            goto out;
        }
        if (enc_put(e, pairs[i].key, pairs[i].len) || enc_value(e, pairs[i].value, depth + 1, &sub))
            goto out;
    }
    rc = 0;
out:
    PyMem_Free(keys.p);
    PyMem_Free(pairs);
    Py_DECREF(items);
    return rc;
}

static int enc_value(enc *e, PyObject *o, unsigned depth, const frame *f)
{
    if (o == Py_None)
        return enc_put(e, "\xf6", 1);
    if (o == Py_True)
        return enc_put(e, "\xf5", 1);
    if (o == Py_False)
        return enc_put(e, "\xf4", 1);
    if (PyLong_Check(o))
        return enc_int(e, o, f);
    if (PyFloat_Check(o))
        return enc_float(e, PyFloat_AS_DOUBLE(o));
    if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
        return enc_head(e, 3, (uint64_t)n) || enc_put(e, s, (size_t)n) ? -1 : 0;
    }
    if (PyList_Check(o) || PyTuple_Check(o) || PyDict_Check(o)) {
        if (depth + 1 > e->max_depth) {
            char what[96];
            snprintf(what, sizeof what, "nesting deeper than %u arrays and maps", e->max_depth);
            return enc_fail(f, what);
        }
        if (PyDict_Check(o))
            return enc_map(e, o, depth, f);
        PyObject *t = PySequence_Tuple(o); /* a snapshot */
        if (!t)
            return -1;
        Py_ssize_t n = PyTuple_GET_SIZE(t);
        int rc = enc_head(e, 4, (uint64_t)n);
        for (Py_ssize_t i = 0; !rc && i < n; i++) {
            frame sub = {.up = f, .index = i};
            rc = enc_value(e, PyTuple_GET_ITEM(t, i), depth + 1, &sub);
        }
        Py_DECREF(t);
        return rc;
    }
    if (PyObject_CheckBuffer(o)) {
        Py_buffer b;
        if (PyObject_GetBuffer(o, &b, PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        int rc = enc_head(e, 2, (uint64_t)b.len) || enc_put(e, b.buf, (size_t)b.len) ? -1 : 0;
        PyBuffer_Release(&b);
        return rc;
    }
    char path[256] = "";
    path_text(f, path, sizeof path);
    PyErr_Format(PyExc_TypeError,
                 "cannot encode a %.100s as CBOR%s%s (device state holds None, bool, int, "
                 "float, str, bytes, list, tuple and dict)",
                 Py_TYPE(o)->tp_name, path[0] ? " at " : "", path);
    return -1;
}

PyObject *mspy_cbor_encode(PyObject *value, unsigned max_depth)
{
    enc e = {.max_depth = max_depth};
    if (enc_value(&e, value, 0, NULL)) {
        PyMem_Free(e.p);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)e.p, (Py_ssize_t)e.len);
    PyMem_Free(e.p);
    return out;
}
