/*
 * DEVICE payloads (FORMAT.md section 7): a CBOR map holding the device path,
 * instance id, schema name and version, and the device's state as one
 * embedded CBOR data item, which is kept as encoded bytes so that a reader
 * can hand it out without re-encoding.
 */
#include "format/payload.h"

enum { DEV_PATH = 0, DEV_INSTANCE = 1, DEV_SCHEMA = 2, DEV_VERSION = 3, DEV_STATE = 4 };

int msi_device_state_check(const uint8_t *state, size_t n, unsigned max_depth, msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_in_init(&in, state, n);
    int rc = msi_cbor_skip(&in, max_depth, true);
    if (rc)
        return msi_perr_cbor(e, rc, &in, "device state");
    if (in.pos != n)
        return msi_perr_set(e, MS_ECBOR, in.pos,
                            "device state: %zu bytes after the single CBOR item", n - in.pos);
    return MS_OK;
}

int msi_device_encode(msi_buf *b, const char *path, uint32_t instance, const char *schema,
                      uint32_t version, const void *state, size_t state_size)
{
    int rc = msi_cbor_put_map(b, 5);
    rc = rc ? rc : msi_cbor_put_uint(b, DEV_PATH);
    rc = rc ? rc : msi_cbor_put_text(b, path, strlen(path));
    rc = rc ? rc : msi_cbor_put_uint(b, DEV_INSTANCE);
    rc = rc ? rc : msi_cbor_put_uint(b, instance);
    rc = rc ? rc : msi_cbor_put_uint(b, DEV_SCHEMA);
    rc = rc ? rc : msi_cbor_put_text(b, schema, strlen(schema));
    rc = rc ? rc : msi_cbor_put_uint(b, DEV_VERSION);
    rc = rc ? rc : msi_cbor_put_uint(b, version);
    rc = rc ? rc : msi_cbor_put_uint(b, DEV_STATE);
    rc = rc ? rc : msi_buf_append(b, state, state_size);
    return rc;
}

static int get_text(msi_cbor_in *in, msi_text *t, size_t max, const char *what, msi_perr *e)
{
    size_t at = in->pos;
    int rc = msi_cbor_get_text(in, &t->p, &t->len);
    if (rc)
        return msi_perr_cbor(e, rc, in, what);
    if (t->len == 0 || t->len > max)
        return msi_perr_set(e, MS_ECORRUPT, at, "%s: length %zu outside 1..%zu", what, t->len,
                            max);
    if (!msi_text_ok(t->p, t->len))
        return msi_perr_set(e, MS_ECORRUPT, at, "%s: not valid UTF-8 or contains NUL", what);
    return MS_OK;
}


int msi_device_decode(const uint8_t *p, size_t n, unsigned max_depth, msi_device_view *d,
                      msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_map m;
    uint64_t key;
    int rc;
    memset(d, 0, sizeof *d);
    msi_cbor_in_init(&in, p, n);
    if ((rc = msi_cbor_map_open(&in, &m)))
        return msi_perr_cbor(e, rc, &in, "DEVICE");
    while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
        size_t at = in.pos;
        switch (key) {
        case DEV_PATH:
            rc = get_text(&in, &d->path, MS_MAX_PATH_LEN, "device path (key 0)", e);
            break;
        case DEV_INSTANCE:
            rc = msi_get_u32(&in, &d->instance, "device instance (key 1)", e);
            break;
        case DEV_SCHEMA:
            rc = get_text(&in, &d->schema, MS_MAX_NAME_LEN, "device schema (key 2)", e);
            break;
        case DEV_VERSION:
            rc = msi_get_u32(&in, &d->version, "device schema version (key 3)", e);
            break;
        case DEV_STATE:
            rc = msi_cbor_skip(&in, max_depth, true);
            if (rc)
                rc = msi_perr_cbor(e, rc, &in, "device state (key 4)");
            d->state = p + at;
            d->state_size = in.pos - at;
            break;
        default:
            rc = msi_skip_unknown(&in, e, -1, key, "DEVICE unknown key");
        }
        if (rc)
            return rc;
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, &in, "DEVICE");
    if ((m.seen & 0x1f) != 0x1f)
        return msi_perr_set(e, MS_ECORRUPT, 0,
                            "DEVICE lacks a required key (path 0, instance 1, schema 2, "
                            "version 3, state 4)");
    if (in.pos != n)
        return msi_perr_set(e, MS_ECORRUPT, in.pos, "DEVICE: %zu trailing bytes", n - in.pos);
    return MS_OK;
}
