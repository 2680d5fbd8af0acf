/*
 * Learning a schema set from streams (ms_schema_set_learn_header and
 * ms_schema_set_learn_device): what the DEVICE records of a release's
 * streams show, so that migstream-compat can compare releases from their
 * streams alone.
 *
 * Each map node counts the states it was seen in per version, and each
 * field the maps that held it: a field is required when every map of a
 * version at or after its first holds it (msi_learned_required). States are
 * untrusted; they are checked with msi_cbor_skip() first, and learning
 * recurses at most max_depth levels, stepping over anything deeper.
 */
#include "common/cbor_codec.h"
#include "schema/schema_impl.h"

int ms_schema_set_learn_header(ms_schema_set *s, const ms_header *h)
{
    if (!s || !h)
        return MS_EINVAL;
    if (s->status)
        return s->status;
    if (s->kind == MSI_SET_LOADED) {
        msi_schema_err(s, "this set was loaded from schema files: it cannot learn from streams");
        return MS_ESTATE;
    }
    s->kind = MSI_SET_LEARNED;
    if (!s->has_format || h->minor > s->minor)
        s->minor = h->minor;
    if (!s->has_format || h->major > s->major)
        s->major = h->major;
    s->features |= h->required_features;
    s->has_format = true;
    return 0;
}

static msi_stype tok_type(const msi_cbor_tok *t)
{
    static const msi_stype map[] = {
        [MSI_CBOR_UINT] = MSI_ST_UINT,   [MSI_CBOR_NINT] = MSI_ST_INT,
        [MSI_CBOR_BYTES] = MSI_ST_BYTES, [MSI_CBOR_TEXT] = MSI_ST_TEXT,
        [MSI_CBOR_ARRAY] = MSI_ST_ARRAY, [MSI_CBOR_MAP] = MSI_ST_MAP,
        [MSI_CBOR_FLOAT] = MSI_ST_FLOAT,
    };
    if (t->kind == MSI_CBOR_SIMPLE)
        return t->u == 2 ? MSI_ST_NULL : MSI_ST_BOOL;
    return (size_t)t->kind < sizeof map / sizeof map[0] ? map[t->kind] : MSI_ST_ANY;
}

/* The type a node has from the types its values had: one type, or "int"
 * for unsigned and negative integers together, or "any". */
static void settle_type(msi_snode *n, msi_stype got)
{
    n->seen_types |= 1u << got;
    uint32_t ints = 1u << MSI_ST_UINT | 1u << MSI_ST_INT;
    if ((n->seen_types & (n->seen_types - 1)) == 0)
        n->type = got;
    else if ((n->seen_types & ~ints) == 0)
        n->type = MSI_ST_INT;
    else
        n->type = MSI_ST_ANY;
}

static int count_version(ms_schema_set *s, msi_snode *n, uint32_t version)
{
    for (size_t i = 0; i < n->nhist; i++)
        if (n->hist[i].version == version) {
            n->hist[i].n++;
            return 0;
        }
    if (n->nhist == MSI_MAX_VERSIONS) {
        n->hist_full = true;
        return 0;
    }
    msi_vcount *p = msi_realloc(&s->alloc, n->hist, (n->nhist + 1) * sizeof *p);
    if (!p)
        return MS_ENOMEM;
    n->hist = p;
    n->hist[n->nhist++] = (msi_vcount){.version = version, .n = 1};
    return 0;
}

bool msi_learned_required(const msi_snode *parent, const msi_sfield *f)
{
    if (parent->hist_full)
        return false;
    uint64_t maps = 0;
    for (size_t i = 0; i < parent->nhist; i++)
        if (parent->hist[i].version >= f->since)
            maps += parent->hist[i].n;
    return f->present == maps;
}

static int learn(ms_schema_set *s, msi_cbor_in *in, msi_snode *n, uint32_t version, unsigned depth);

static int learn_map(ms_schema_set *s, msi_cbor_in *in, msi_snode *n, uint64_t pairs,
                     uint32_t version, unsigned depth)
{
    int rc = count_version(s, n, version);
    n->has_fields = true;
    for (uint64_t i = 0; i < pairs && !rc; i++) {
        size_t kstart = in->pos;
        msi_cbor_tok k;
        if ((rc = msi_cbor_next(in, &k)))
            break;
        msi_sfield *f = NULL;
        if (k.kind == MSI_CBOR_TEXT)
            f = msi_snode_find_text(n, k.str, k.len);
        else if (k.kind == MSI_CBOR_UINT)
            f = msi_snode_find_key(n, k.u);
        else {
            /* Keys of other types cannot be named in a schema: such a map
             * is open, and the pair is stepped over. */
            in->pos = kstart;
            n->open = true;
            if ((rc = msi_cbor_skip(in, MS_MAX_CBOR_DEPTH, true)) ||
                (rc = msi_cbor_skip(in, MS_MAX_CBOR_DEPTH, true)))
                break;
            continue;
        }
        if (!f) {
            if (k.kind == MSI_CBOR_TEXT &&
                (k.len == 0 || k.len > MS_MAX_NAME_LEN || memchr(k.str, 0, k.len))) {
                /* A key the language cannot name: as above. */
                n->open = true;
                rc = msi_cbor_skip(in, MS_MAX_CBOR_DEPTH, true);
                continue;
            }
            bool text = k.kind == MSI_CBOR_TEXT;
            if (!(f = msi_snode_add_field(s, n, text ? k.str : NULL, k.len, text ? 0 : k.u)))
                return s->nfields >= s->opts.max_fields ? MS_ELIMIT : MS_ENOMEM;
            f->since = version;
        }
        if (version < f->since)
            f->since = version;
        f->present++;
        rc = learn(s, in, &f->node, version, depth + 1);
    }
    return rc;
}

static int learn(ms_schema_set *s, msi_cbor_in *in, msi_snode *n, uint32_t version, unsigned depth)
{
    size_t start = in->pos;
    msi_cbor_tok t;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    settle_type(n, tok_type(&t));
    bool deeper = depth < s->opts.max_depth;
    if (t.kind == MSI_CBOR_MAP && deeper)
        return learn_map(s, in, n, t.u, version, depth);
    if (t.kind == MSI_CBOR_ARRAY && deeper) {
        if (!n->items && !(n->items = msi_calloc(&s->alloc, 1, sizeof *n->items)))
            return MS_ENOMEM;
        for (uint64_t i = 0; i < t.u && !rc; i++)
            rc = learn(s, in, n->items, version, depth + 1);
        return rc;
    }
    in->pos = start;
    return msi_cbor_skip(in, MS_MAX_CBOR_DEPTH, true);
}

int ms_schema_set_learn_device(ms_schema_set *s, const ms_device *dev)
{
    if (!s || !dev || !dev->schema || !dev->path || (!dev->state && dev->state_size))
        return MS_EINVAL;
    if (s->status)
        return s->status;
    if (s->kind == MSI_SET_LOADED) {
        msi_schema_err(s, "this set was loaded from schema files: it cannot learn from streams");
        return MS_ESTATE;
    }
    s->kind = MSI_SET_LEARNED;
    msi_cbor_in in;
    msi_cbor_in_init(&in, dev->state, dev->state_size);
    if (msi_cbor_skip(&in, s->opts.max_cbor_depth, true) || in.pos != dev->state_size) {
        msi_schema_err(
            s, "device \"%s\" instance %u (schema \"%s\" version %u): state byte %zu: %s",
            dev->path, dev->instance, dev->schema, dev->version, in.err ? in.err_pos : in.pos,
            in.err ? in.err : "bytes follow the state's CBOR item");
        return MS_ECBOR;
    }
    msi_sdevice *d = msi_schema_find(s, dev->schema);
    if (!d) {
        size_t nf = s->nfields;
        if (!(d = msi_schema_add_device(s, dev->schema)))
            return s->ndevices >= s->opts.max_schemas ? MS_ELIMIT : MS_ENOMEM;
        d->root.type = MSI_ST_ANY; /* until a state is seen */
        d->version = d->min_version = dev->version;
        if (!(d->path = msi_strdup(&s->alloc, dev->path))) {
            s->nfields = nf;
            msi_schema_err(s, "out of memory");
            return MS_ENOMEM;
        }
    }
    if (dev->version > d->version)
        d->version = dev->version;
    if (dev->version < d->min_version)
        d->min_version = dev->version;
    msi_cbor_in_init(&in, dev->state, dev->state_size);
    int rc = learn(s, &in, &d->root, dev->version, 0);
    if (rc == MS_ELIMIT)
        msi_schema_err(s,
                       "device \"%s\" (schema \"%s\"): more than %u fields in the set "
                       "(max_fields)",
                       dev->path, dev->schema, s->opts.max_fields);
    else if (rc == MS_ENOMEM)
        msi_schema_err(s, "out of memory");
    return rc;
}
