/*
 * Checking a device's state against its schema (ms_schema_set_validate).
 *
 * The state is untrusted: it is first checked whole with msi_cbor_skip()
 * (profile of FORMAT.md section 10, nesting within max_cbor_depth), then
 * walked. The walk recurses only where the schema declares fields or items,
 * so its depth is bounded by the schema's (max_depth), never by the input;
 * any other value is stepped over with msi_cbor_skip().
 */
#include <stdarg.h>
#include <stdio.h>

#include "common/cbor_codec.h"
#include "migstream/cbor.h"
#include "schema/schema_impl.h"

typedef struct vctx {
    ms_schema_set *s;
    const ms_device *dev;
    ms_schema_problem_fn fn;
    void *ctx;
    int count;
    int stop; /* 0, 1 (stop quietly: first problem without callback) or the callback's value */
    char path[512];
    size_t plen;
} vctx;

static const char *const check_names[] = {
    [MS_SCHEMA_UNKNOWN] = "unknown-schema",
    [MS_SCHEMA_VERSION] = "version",
    [MS_SCHEMA_TYPE] = "type",
    [MS_SCHEMA_MISSING] = "missing",
    [MS_SCHEMA_UNEXPECTED] = "unexpected",
    [MS_SCHEMA_TOO_NEW] = "too-new",
    [MS_SCHEMA_DUPLICATE] = "duplicate",
    [MS_SCHEMA_MALFORMED] = "malformed",
};

const char *ms_schema_check_name(ms_schema_check check)
{
    if ((unsigned)check >= sizeof check_names / sizeof check_names[0])
        return NULL;
    return check_names[check];
}

__attribute__((format(printf, 3, 4))) static void problem(vctx *v, ms_schema_check check,
                                                          const char *fmt, ...)
{
    char detail[600], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    const ms_device *d = v->dev;
    snprintf(msg, sizeof msg, "device \"%s\" instance %u (schema \"%s\" version %u)%s%s%s: %s",
             d->path ? d->path : "", d->instance, d->schema, d->version, v->plen ? ": field " : "",
             v->plen ? v->path : "", "", detail);
    v->count++;
    if (!v->fn) {
        snprintf(v->s->err, sizeof v->s->err, "%.1000s", msg);
        v->stop = 1;
        return;
    }
    ms_schema_problem p = {.check = check, .device = d, .field = v->path, .message = msg};
    int rc = v->fn(v->ctx, &p);
    if (rc < 0)
        v->stop = rc;
}

static msi_stype tok_type(const msi_cbor_tok *t)
{
    switch (t->kind) {
    case MSI_CBOR_UINT:
        return MSI_ST_UINT;
    case MSI_CBOR_NINT:
        return MSI_ST_INT;
    case MSI_CBOR_BYTES:
        return MSI_ST_BYTES;
    case MSI_CBOR_TEXT:
        return MSI_ST_TEXT;
    case MSI_CBOR_ARRAY:
        return MSI_ST_ARRAY;
    case MSI_CBOR_MAP:
        return MSI_ST_MAP;
    case MSI_CBOR_FLOAT:
        return MSI_ST_FLOAT;
    case MSI_CBOR_SIMPLE:
        return t->u == 2 ? MSI_ST_NULL : MSI_ST_BOOL;
    default:
        return MSI_ST_ANY;
    }
}

static bool type_ok(msi_stype want, msi_stype got)
{
    return want == MSI_ST_ANY || want == got || (want == MSI_ST_INT && got == MSI_ST_UINT);
}

/* Skips the item starting at @start (whose head may have been read). The
 * whole state passed msi_cbor_skip() already, so this cannot fail. */
static void skip_from(msi_cbor_in *in, size_t start)
{
    in->pos = start;
    msi_cbor_skip(in, MS_MAX_CBOR_DEPTH, true);
}

static int walk(vctx *v, msi_cbor_in *in, const msi_snode *n);

static void walk_map(vctx *v, msi_cbor_in *in, const msi_snode *n, uint64_t pairs)
{
    bool small[64] = {false}, *seen = small;
    if (n->nfields > 64 && !(seen = msi_calloc(&v->s->alloc, n->nfields, sizeof *seen))) {
        v->stop = MS_ENOMEM;
        return;
    }
    size_t base = v->plen;
    for (uint64_t i = 0; i < pairs && !v->stop; i++) {
        size_t kstart = in->pos;
        msi_cbor_tok k;
        msi_sfield *f = NULL;
        if (msi_cbor_next(in, &k))
            break;
        if (k.kind == MSI_CBOR_TEXT)
            f = msi_snode_find_text(n, k.str, k.len);
        else if (k.kind == MSI_CBOR_UINT)
            f = msi_snode_find_key(n, k.u);
        else
            skip_from(in, kstart);
        if (!f) {
            if (!n->open) {
                char key[80], elem[90];
                ssize_t kl = ms_cbor_format(in->p + kstart, in->pos - kstart, MS_CBOR_DIAG, 8, key,
                                            sizeof key);
                if (kl < 0 || (size_t)kl >= sizeof key)
                    snprintf(key, sizeof key, "(a long key)");
                snprintf(elem, sizeof elem, "/%s", key);
                v->plen = msi_path_push_raw(v->path, sizeof v->path, v->plen, elem);
                problem(v, MS_SCHEMA_UNEXPECTED, "not in the schema");
                v->path[v->plen = base] = 0;
            }
            skip_from(in, in->pos);
            continue;
        }
        size_t idx = (size_t)(f - n->fields);
        v->plen = msi_path_push(v->path, sizeof v->path, v->plen, f);
        if (seen[idx])
            problem(v, MS_SCHEMA_DUPLICATE, "the key appears twice in the map");
        seen[idx] = true;
        if (f->since > v->dev->version)
            problem(v, MS_SCHEMA_TOO_NEW, "added in version %u, but the state is version %u",
                    f->since, v->dev->version);
        if (!v->stop)
            walk(v, in, &f->node);
        v->path[v->plen = base] = 0;
    }
    for (size_t i = 0; i < n->nfields && !v->stop; i++) {
        const msi_sfield *f = &n->fields[i];
        if (!seen[i] && f->required && f->since <= v->dev->version) {
            v->plen = msi_path_push(v->path, sizeof v->path, v->plen, f);
            if (f->since)
                problem(v, MS_SCHEMA_MISSING, "required (%s, since version %u) but absent",
                        msi_stype_name(f->node.type), f->since);
            else
                problem(v, MS_SCHEMA_MISSING, "required (%s) but absent",
                        msi_stype_name(f->node.type));
            v->path[v->plen = base] = 0;
        }
    }
    if (seen != small)
        msi_free(&v->s->alloc, seen);
}

/* Checks the item at @in against @n and steps over it. */
static int walk(vctx *v, msi_cbor_in *in, const msi_snode *n)
{
    size_t start = in->pos;
    msi_cbor_tok t;
    if (msi_cbor_next(in, &t))
        return MS_ECBOR;
    msi_stype got = tok_type(&t);
    if (!type_ok(n->type, got)) {
        problem(v, MS_SCHEMA_TYPE, "expected %s, found %s", msi_stype_name(n->type),
                msi_stype_name(got));
        skip_from(in, start);
        return 0;
    }
    if (got == MSI_ST_MAP && n->type == MSI_ST_MAP && n->has_fields) {
        walk_map(v, in, n, t.u);
        return 0;
    }
    if (got == MSI_ST_ARRAY && n->items) {
        size_t base = v->plen;
        for (uint64_t i = 0; i < t.u && !v->stop; i++) {
            char elem[32];
            snprintf(elem, sizeof elem, "/%llu", (unsigned long long)i);
            v->plen = msi_path_push_raw(v->path, sizeof v->path, v->plen, elem);
            walk(v, in, n->items);
            v->path[v->plen = base] = 0;
        }
        return 0;
    }
    skip_from(in, start);
    return 0;
}

int ms_schema_set_validate(ms_schema_set *s, const ms_device *device, ms_schema_problem_fn fn,
                           void *ctx)
{
    if (!s || !device || !device->schema || (!device->state && device->state_size))
        return MS_EINVAL;
    if (s->status)
        return s->status;
    vctx v = {.s = s, .dev = device, .fn = fn, .ctx = ctx};
    s->err[0] = 0;
    const msi_sdevice *d = msi_schema_find(s, device->schema);
    if (!d) {
        problem(&v, MS_SCHEMA_UNKNOWN, "no schema \"%s\" in the set", device->schema);
        return v.stop < 0 ? v.stop : v.count;
    }
    if (device->version > d->version || device->version < d->min_version) {
        problem(&v, MS_SCHEMA_VERSION, "the schema reads versions %u to %u", d->min_version,
                d->version);
        return v.stop < 0 ? v.stop : v.count;
    }
    msi_cbor_in in;
    msi_cbor_in_init(&in, device->state, device->state_size);
    if (msi_cbor_skip(&in, s->opts.max_cbor_depth, true) || in.pos != device->state_size) {
        if (in.err)
            problem(&v, MS_SCHEMA_MALFORMED, "byte %zu: %s", in.err_pos, in.err);
        else
            problem(&v, MS_SCHEMA_MALFORMED, "byte %zu: bytes follow the state's CBOR item",
                    in.pos);
        return v.stop < 0 ? v.stop : v.count;
    }
    msi_cbor_in_init(&in, device->state, device->state_size);
    walk(&v, &in, &d->root);
    return v.stop < 0 ? v.stop : v.count;
}
