/*
 * PART payloads (FORMAT.md section 5.3): which part of a migration in parts
 * a stream is, and the random migration id that ties the parts together.
 * The rules that span parts (section 2.1) are the merging reader's
 * (format/parts.c) and the validator's.
 */
#include <errno.h>
#include <sys/random.h>

#include "format/payload.h"
#include "migstream/writer.h"

enum { PART_ID = 0, PART_INDEX = 1, PART_COUNT = 2 };

const char *msi_part_check(const ms_part *p)
{
    if (!msi_reserved_zero(p->reserved, sizeof p->reserved / sizeof p->reserved[0]))
        return "reserved words are not zero (a field of a newer version this library does not "
               "know)";
    if (p->count == 0)
        return "a migration has at least one part (count 0)";
    if (p->index >= p->count)
        return "the part index is not below the part count";
    return NULL;
}

int msi_part_encode(msi_buf *b, const ms_part *p)
{
    int rc = msi_cbor_put_map(b, 3);
    rc = rc ? rc : msi_cbor_put_uint(b, PART_ID);
    rc = rc ? rc : msi_cbor_put_bytes(b, p->migration_id, MS_MIGRATION_ID_SIZE);
    rc = rc ? rc : msi_cbor_put_uint(b, PART_INDEX);
    rc = rc ? rc : msi_cbor_put_uint(b, p->index);
    rc = rc ? rc : msi_cbor_put_uint(b, PART_COUNT);
    rc = rc ? rc : msi_cbor_put_uint(b, p->count);
    return rc;
}

int msi_part_decode(const uint8_t *p, size_t n, ms_part *part, msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_map m;
    uint64_t key;
    int rc;
    memset(part, 0, sizeof *part);
    msi_cbor_in_init(&in, p, n);
    if ((rc = msi_cbor_map_open(&in, &m)))
        return msi_perr_cbor(e, rc, &in, "PART");
    while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
        size_t at = in.pos;
        if (key == PART_ID) {
            const uint8_t *id;
            size_t len;
            if ((rc = msi_cbor_get_bytes(&in, &id, &len)))
                return msi_perr_cbor(e, rc, &in, "PART migration id (key 0)");
            if (len != MS_MIGRATION_ID_SIZE)
                return msi_perr_set(e, MS_ECORRUPT, at, "PART migration id is %zu bytes, not %u",
                                    len, MS_MIGRATION_ID_SIZE);
            memcpy(part->migration_id, id, MS_MIGRATION_ID_SIZE);
        } else if (key == PART_INDEX) {
            if ((rc = msi_get_u32(&in, &part->index, "PART index (key 1)", e)))
                return rc;
        } else if (key == PART_COUNT) {
            if ((rc = msi_get_u32(&in, &part->count, "PART count (key 2)", e)))
                return rc;
        } else if ((rc = msi_skip_unknown(&in, e, -1, key, "PART unknown key"))) {
            return rc; /* a later minor's key: ignored (section 11.2) */
        }
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, &in, "PART");
    if ((m.seen & 7) != 7)
        return msi_perr_set(e, MS_ECORRUPT, 0,
                            "PART lacks a required key (migration id 0, "
                            "index 1, count 2)");
    const char *why = msi_part_check(part);
    if (why)
        return msi_perr_set(e, MS_ECORRUPT, 0, "PART index %u of %u: %s", part->index, part->count,
                            why);
    if (in.pos != in.len)
        return msi_perr_set(e, MS_ECORRUPT, in.pos,
                            "PART: %zu trailing bytes after the CBOR "
                            "item",
                            in.len - in.pos);
    return MS_OK;
}

int ms_migration_id_new(uint8_t id[MS_MIGRATION_ID_SIZE])
{
    if (!id)
        return MS_EINVAL;
    size_t got = 0;
    while (got < MS_MIGRATION_ID_SIZE) {
        ssize_t k = getrandom(id + got, MS_MIGRATION_ID_SIZE - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return MS_EIO;
        got += (size_t)k;
    }
    return MS_OK;
}
