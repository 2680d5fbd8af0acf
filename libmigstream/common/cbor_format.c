/*
 * Presenting and comparing CBOR items (include/migstream/cbor.h).
 *
 * Formatting walks the item with an explicit stack, so input nesting never
 * becomes C recursion. Diffing recurses, but only over items that have
 * already passed msi_cbor_skip() with the nesting limit, so its depth is
 * bounded by that limit (at most MSI_CBOR_MAX_DEPTH).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cbor_codec.h"
#include "migstream/cbor.h"

#define DEFAULT_DEPTH 64u

/* snprintf-style output: counts everything, stores what fits. */
typedef struct out {
    char *buf;
    size_t size, len;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_string(out *o, const uint8_t *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char esc[8];
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c == '\n') {
            put(o, "\\n", 2);
        } else if (c == '\t') {
            put(o, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&s[i], 1);
        }
    }
    put(o, "\"", 1);
}

/* The largest magnitude a JSON parser that reads numbers as doubles keeps
 * exactly: 2^53 - 1. */
#define JSON_EXACT_MAX ((UINT64_C(1) << 53) - 1)

static void put_scalar(out *o, const msi_cbor_tok *t, ms_cbor_form form)
{
    char tmp[64];
    /* In JSON, an integer beyond +-(2^53 - 1) is a string of its decimal
     * digits: a parser reading numbers as doubles would round it. */
    bool quote = form == MS_CBOR_JSON &&
                 (t->kind == MSI_CBOR_UINT || t->kind == MSI_CBOR_NINT) &&
                 t->u >= (t->kind == MSI_CBOR_UINT ? JSON_EXACT_MAX + 1 : JSON_EXACT_MAX);
    if (quote)
        puts_(o, "\"");
    switch (t->kind) {
    case MSI_CBOR_UINT:
        snprintf(tmp, sizeof tmp, "%" PRIu64, t->u);
        puts_(o, tmp);
        break;
    case MSI_CBOR_NINT:
        if (t->u == UINT64_MAX)
            puts_(o, "-18446744073709551616");
        else {
            snprintf(tmp, sizeof tmp, "-%" PRIu64, t->u + 1);
            puts_(o, tmp);
        }
        break;
    case MSI_CBOR_BYTES:
        puts_(o, form == MS_CBOR_JSON ? "\"" : "h'");
        for (size_t i = 0; i < t->len; i++) {
            snprintf(tmp, sizeof tmp, "%02x", t->str[i]);
            put(o, tmp, 2);
        }
        puts_(o, form == MS_CBOR_JSON ? "\"" : "'");
        break;
    case MSI_CBOR_TEXT:
        put_string(o, t->str, t->len);
        break;
    case MSI_CBOR_SIMPLE:
        puts_(o, t->u == 0 ? "false" : t->u == 1 ? "true" : "null");
        break;
    case MSI_CBOR_FLOAT:
        if (isnan(t->f))
            puts_(o, form == MS_CBOR_JSON ? "null" : "NaN");
        else if (isinf(t->f))
            puts_(o, form == MS_CBOR_JSON ? "null" : t->f > 0 ? "Infinity" : "-Infinity");
        else {
            snprintf(tmp, sizeof tmp, "%.17g", t->f);
            puts_(o, tmp);
            if (!strpbrk(tmp, ".e"))
                puts_(o, ".0"); /* keep it recognisably a float */
        }
        break;
    default:
        break;
    }
    if (quote)
        puts_(o, "\"");
}

typedef struct frame {
    uint64_t total; /* items in the container (2 per map pair) */
    uint64_t done;
    bool map;
} frame;

ssize_t ms_cbor_format(const void *cbor, size_t size, ms_cbor_form form, unsigned max_depth,
                       char *buf, size_t bufsize)
{
    if ((!cbor && size) || (!buf && bufsize) || (form != MS_CBOR_DIAG && form != MS_CBOR_JSON))
        return MS_EINVAL;
    if (max_depth == 0)
        max_depth = DEFAULT_DEPTH;
    if (max_depth > MSI_CBOR_MAX_DEPTH)
        max_depth = MSI_CBOR_MAX_DEPTH;
    /* Validate first: the walk below can then trust counts and depth. */
    msi_cbor_in in;
    msi_cbor_in_init(&in, cbor, size);
    if (msi_cbor_skip(&in, max_depth, true) || in.pos != size)
        return MS_ECBOR;
    msi_cbor_in_init(&in, cbor, size);

    out o = {buf, bufsize, 0};
    frame st[MSI_CBOR_MAX_DEPTH + 1];
    unsigned depth = 0;
    st[0] = (frame){.total = 1, .done = 0, .map = false};
    for (;;) {
        while (depth > 0 && st[depth].done == st[depth].total) {
            puts_(&o, st[depth].map ? "}" : "]");
            depth--;
        }
        if (depth == 0 && st[0].done == 1)
            break;
        frame *f = &st[depth];
        bool key = f->map && f->done % 2 == 0;
        if (depth > 0 && f->done > 0)
            puts_(&o, f->map && !key ? ": " : ", ");
        f->done++;
        size_t at = in.pos;
        msi_cbor_tok t;
        if (msi_cbor_next(&in, &t))
            return MS_ECBOR; /* cannot happen after validation */
        if (key && form == MS_CBOR_JSON && t.kind != MSI_CBOR_TEXT) {
            /* JSON keys are strings: use the key's diagnostic text. */
            in.pos = at;
            if (msi_cbor_skip(&in, max_depth, true))
                return MS_ECBOR;
            ssize_t n = ms_cbor_format((const uint8_t *)cbor + at, in.pos - at, MS_CBOR_DIAG,
                                       max_depth, NULL, 0);
            char *tmp = n >= 0 ? malloc((size_t)n + 1) : NULL;
            if (!tmp)
                return n < 0 ? (int)n : MS_ENOMEM;
            ms_cbor_format((const uint8_t *)cbor + at, in.pos - at, MS_CBOR_DIAG, max_depth, tmp,
                           (size_t)n + 1);
            put_string(&o, (const uint8_t *)tmp, (size_t)n);
            free(tmp);
            continue;
        }
        if (t.kind == MSI_CBOR_ARRAY || t.kind == MSI_CBOR_MAP) {
            bool map = t.kind == MSI_CBOR_MAP;
            puts_(&o, map ? "{" : "[");
            st[++depth] = (frame){.total = map ? t.u * 2 : t.u, .done = 0, .map = map};
        } else {
            put_scalar(&o, &t, form);
        }
    }
    if (bufsize)
        buf[o.len < bufsize ? o.len : bufsize - 1] = 0;
    return (ssize_t)o.len;
}

/* ------------------------------------------------------------------- diff */

typedef struct span {
    const uint8_t *p;
    size_t n;
} span;

typedef struct diff_ctx {
    ms_cbor_diff_fn fn;
    void *ctx;
    char path[1024];
    size_t path_len;
    int count;
} diff_ctx;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Appends "/" and a segment to the path; returns the old length. */
static size_t path_push(diff_ctx *d, const uint8_t *key, size_t key_n, uint64_t index)
{
    size_t old = d->path_len;
    char seg[128];
    if (key) {
        msi_cbor_in in;
        msi_cbor_tok t;
        msi_cbor_in_init(&in, key, key_n);
        bool plain = !msi_cbor_next(&in, &t) && t.kind == MSI_CBOR_TEXT && t.len > 0 &&
                     t.len < sizeof seg;
        for (size_t i = 0; plain && i < t.len; i++)
            plain = (t.str[i] >= 'a' && t.str[i] <= 'z') || (t.str[i] >= 'A' && t.str[i] <= 'Z') ||
                    (t.str[i] >= '0' && t.str[i] <= '9') || t.str[i] == '_' || t.str[i] == '-' ||
                    t.str[i] == '.';
        if (plain) {
            memcpy(seg, t.str, t.len);
            seg[t.len] = 0;
        } else if (ms_cbor_format(key, key_n, MS_CBOR_DIAG, 0, seg, sizeof seg) < 0) {
            snprintf(seg, sizeof seg, "?");
        }
    } else {
        snprintf(seg, sizeof seg, "%" PRIu64, index);
    }
    int n = snprintf(d->path + d->path_len, sizeof d->path - d->path_len, "/%s", seg);
    if (n > 0)
        d->path_len += (size_t)n;
    if (d->path_len >= sizeof d->path)
        d->path_len = sizeof d->path - 1;
    return old;
}

static int report(diff_ctx *d, span a, span b)
{
    d->count++;
    if (!d->fn)
        return 0;
    d->path[d->path_len] = 0;
    return d->fn(d->ctx, d->path, a.p, a.n, b.p, b.n);
}

/* Splits a container's children into spans (2 per map pair). */
static int children(span s, msi_cbor_tok *t, span **kids, size_t *n)
{
    msi_cbor_in in;
    msi_cbor_in_init(&in, s.p, s.n);
    if (msi_cbor_next(&in, t))
        return MS_ECBOR;
    uint64_t count = t->kind == MSI_CBOR_MAP ? t->u * 2 : t->u;
    span *c = calloc(count ? (size_t)count : 1, sizeof *c);
    if (!c)
        return MS_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        size_t at = in.pos;
        if (msi_cbor_skip(&in, MSI_CBOR_MAX_DEPTH, true)) {
            free(c);
            return MS_ECBOR;
        }
        c[i] = (span){s.p + at, in.pos - at};
    }
    *kids = c;
    *n = (size_t)count;
    return 0;
}

static int diff_item(diff_ctx *d, span a, span b);

static int diff_maps(diff_ctx *d, span *ca, size_t na, span *cb, size_t nb)
{
    /* Pairs sorted by key bytes, then merged: O(n log n) however hostile. */
    size_t pa = na / 2, pb = nb / 2, i = 0, j = 0;
    qsort(ca, pa, 2 * sizeof *ca, span_cmp);
    qsort(cb, pb, 2 * sizeof *cb, span_cmp);
    while (i < pa || j < pb) {
        int c = i == pa ? 1 : j == pb ? -1 : span_cmp(&ca[2 * i], &cb[2 * j]);
        const span *key = c <= 0 ? &ca[2 * i] : &cb[2 * j];
        size_t old = path_push(d, key->p, key->n, 0);
        int rc;
        if (c == 0)
            rc = diff_item(d, ca[2 * i + 1], cb[2 * j + 1]);
        else if (c < 0)
            rc = report(d, ca[2 * i + 1], (span){NULL, 0});
        else
            rc = report(d, (span){NULL, 0}, cb[2 * j + 1]);
        d->path_len = old;
        if (rc < 0)
            return rc;
        i += c <= 0;
        j += c >= 0;
    }
    return 0;
}

static int diff_item(diff_ctx *d, span a, span b)
{
    if (!a.p || !b.p) /* present on one side only */
        return report(d, a, b);
    if (a.n == b.n && memcmp(a.p, b.p, a.n) == 0)
        return 0;
    msi_cbor_tok ta, tb;
    msi_cbor_in ia, ib;
    msi_cbor_in_init(&ia, a.p, a.n);
    msi_cbor_in_init(&ib, b.p, b.n);
    if (msi_cbor_next(&ia, &ta) || msi_cbor_next(&ib, &tb))
        return MS_ECBOR;
    bool containers = (ta.kind == MSI_CBOR_MAP || ta.kind == MSI_CBOR_ARRAY) && ta.kind == tb.kind;
    if (!containers)
        return report(d, a, b);
    span *ca = NULL, *cb = NULL;
    size_t na, nb;
    int rc = children(a, &ta, &ca, &na);
    if (!rc)
        rc = children(b, &tb, &cb, &nb);
    if (!rc && ta.kind == MSI_CBOR_MAP) {
        rc = diff_maps(d, ca, na, cb, nb);
    } else if (!rc) {
        for (size_t i = 0; i < (na > nb ? na : nb) && rc >= 0; i++) {
            size_t old = path_push(d, NULL, 0, i);
            rc = diff_item(d, i < na ? ca[i] : (span){NULL, 0}, i < nb ? cb[i] : (span){NULL, 0});
            d->path_len = old;
        }
    }
    free(ca);
    free(cb);
    return rc < 0 ? rc : 0;
}

int ms_cbor_diff(const void *a, size_t a_size, const void *b, size_t b_size, ms_cbor_diff_fn fn,
                 void *ctx)
{
    msi_cbor_in in;
    if ((!a && a_size) || (!b && b_size))
        return MS_EINVAL;
    msi_cbor_in_init(&in, a, a_size);
    if (msi_cbor_skip(&in, MSI_CBOR_MAX_DEPTH, true) || in.pos != a_size)
        return MS_ECBOR;
    msi_cbor_in_init(&in, b, b_size);
    if (msi_cbor_skip(&in, MSI_CBOR_MAX_DEPTH, true) || in.pos != b_size)
        return MS_ECBOR;
    diff_ctx d = {.fn = fn, .ctx = ctx, .path_len = 0, .count = 0};
    int rc = diff_item(&d, (span){a, a_size}, (span){b, b_size});
    return rc < 0 ? rc : d.count;
}

int ms_cbor_next(const void *cbor, size_t size, size_t *pos, ms_cbor_item *item)
{
    if (!cbor || !pos || !item || *pos > size)
        return MS_EINVAL;
    msi_cbor_in in;
    msi_cbor_tok t;
    msi_cbor_in_init(&in, cbor, size);
    in.pos = *pos;
    if (msi_cbor_next(&in, &t))
        return MS_ECBOR;
    static const ms_cbor_kind kinds[] = {
        [MSI_CBOR_UINT] = MS_CBOR_UINT,   [MSI_CBOR_NINT] = MS_CBOR_NINT,
        [MSI_CBOR_BYTES] = MS_CBOR_BYTES, [MSI_CBOR_TEXT] = MS_CBOR_TEXT,
        [MSI_CBOR_ARRAY] = MS_CBOR_ARRAY, [MSI_CBOR_MAP] = MS_CBOR_MAP,
        [MSI_CBOR_SIMPLE] = MS_CBOR_SIMPLE, [MSI_CBOR_FLOAT] = MS_CBOR_FLOAT,
    };
    *item = (ms_cbor_item){kinds[t.kind], t.u, t.str, t.len, t.f};
    *pos = in.pos;
    return 0;
}
