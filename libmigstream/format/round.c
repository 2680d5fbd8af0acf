/*
 * ROUND payloads (FORMAT.md section 6.4): the start of a pre-copy round,
 * with the dirty tracker that chose its pages. Rounds change nothing in the
 * final state (a later copy of a page wins anyway); they let tools show how
 * a migration converged and check that pages only appear inside rounds.
 */
#include "format/payload.h"

enum { ROUND_NUMBER = 0, ROUND_TRACKER = 1, ROUND_GRANULARITY = 2, ROUND_DIRTY = 3,
       ROUND_FINAL = 4 };

#define MIN_GRANULARITY 4096u
#define MAX_GRANULARITY (1u << 30)

const char *ms_tracker_name(unsigned tracker)
{
    switch (tracker) {
    case MS_TRACKER_NONE: return "none";
    case MS_TRACKER_BITMAP: return "bitmap";
    case MS_TRACKER_RING: return "ring";
    case MS_TRACKER_PML: return "pml";
    default: return NULL;
    }
}

const char *msi_round_check(const ms_round *r)
{
    if (!msi_reserved_zero(r->reserved, sizeof r->reserved / sizeof r->reserved[0]))
        return "reserved words are not zero (a field of a newer version this library does not know)";
    if (r->tracker == MS_TRACKER_NONE)
        return r->granularity ? "a round without a tracker has no granularity" : NULL;
    if (!msi_is_pow2(r->granularity) || r->granularity < MIN_GRANULARITY ||
        r->granularity > MAX_GRANULARITY)
        return "granularity is not a power of two from 4096 to 2^30 bytes";
    return NULL;
}

int msi_round_encode(msi_buf *b, const ms_round *r)
{
    bool gran = r->tracker != MS_TRACKER_NONE;
    int rc = msi_cbor_put_map(b, 2 + gran + r->has_dirty + r->final);
    rc = rc ? rc : msi_cbor_put_uint(b, ROUND_NUMBER);
    rc = rc ? rc : msi_cbor_put_uint(b, r->number);
    rc = rc ? rc : msi_cbor_put_uint(b, ROUND_TRACKER);
    rc = rc ? rc : msi_cbor_put_uint(b, r->tracker);
    if (gran) {
        rc = rc ? rc : msi_cbor_put_uint(b, ROUND_GRANULARITY);
        rc = rc ? rc : msi_cbor_put_uint(b, r->granularity);
    }
    if (r->has_dirty) {
        rc = rc ? rc : msi_cbor_put_uint(b, ROUND_DIRTY);
        rc = rc ? rc : msi_cbor_put_uint(b, r->dirty);
    }
    if (r->final) {
        rc = rc ? rc : msi_cbor_put_uint(b, ROUND_FINAL);
        rc = rc ? rc : msi_cbor_put_bool(b, true);
    }
    return rc;
}

int msi_round_decode(const uint8_t *p, size_t n, ms_round *r, msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_map m;
    uint64_t key, v;
    int rc;
    memset(r, 0, sizeof *r);
    msi_cbor_in_init(&in, p, n);
    if ((rc = msi_cbor_map_open(&in, &m)))
        return msi_perr_cbor(e, rc, &in, "ROUND");
    while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
        size_t at = in.pos;
        if (key == ROUND_FINAL) {
            if ((rc = msi_cbor_get_bool(&in, &r->final)))
                return msi_perr_cbor(e, rc, &in, "ROUND final (key 4)");
            continue;
        }
        if (key > ROUND_FINAL) {
            /* A later minor's key: ignored (FORMAT.md section 11.2). */
            if ((rc = msi_skip_unknown(&in, e, -1, key, "ROUND unknown key")))
                return rc;
            continue;
        }
        if ((rc = msi_cbor_get_uint(&in, &v)))
            return msi_perr_cbor(e, rc, &in, "ROUND field");
        if (key == ROUND_NUMBER) {
            r->number = v;
        } else if (key == ROUND_TRACKER || key == ROUND_GRANULARITY) {
            if (v > UINT32_MAX)
                return msi_perr_set(e, MS_ECORRUPT, at, "ROUND %s %llu is out of range",
                                    key == ROUND_TRACKER ? "tracker" : "granularity",
                                    (unsigned long long)v);
            if (key == ROUND_TRACKER)
                r->tracker = (uint32_t)v;
            else
                r->granularity = (uint32_t)v;
        } else {
            r->has_dirty = true;
            r->dirty = v;
        }
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, &in, "ROUND");
    if ((m.seen & 3) != 3)
        return msi_perr_set(e, MS_ECORRUPT, 0, "ROUND lacks a required key (number 0, tracker 1)");
    if (r->tracker != MS_TRACKER_NONE && !(m.seen & 4))
        return msi_perr_set(e, MS_ECORRUPT, 0, "ROUND with tracker %u lacks its granularity "
                            "(key 2)", r->tracker);
    if (r->tracker == MS_TRACKER_NONE && (m.seen & 4))
        return msi_perr_set(e, MS_ECORRUPT, 0, "ROUND without a tracker has a granularity "
                            "(key 2), which only a tracker has");
    const char *why = msi_round_check(r);
    if (why)
        return msi_perr_set(e, MS_ECORRUPT, 0, "ROUND %llu: %s", (unsigned long long)r->number,
                            why);
    if (in.pos != in.len)
        return msi_perr_set(e, MS_ECORRUPT, in.pos, "ROUND: %zu trailing bytes after the CBOR "
                            "item", in.len - in.pos);
    return MS_OK;
}
