/*
 * Stream-level payloads: INFO (FORMAT.md 5.1), REGIONS (5.2) and END (8),
 * plus the payload error helpers the other codecs share.
 */
#include <stdio.h>

#include "format/payload.h"

enum { INFO_MACHINE = 0, INFO_DESCRIPTION = 1 };
enum { REG_ID = 0, REG_NAME = 1, REG_GPA = 2, REG_SIZE = 3, REG_PAGE_SIZE = 4 };
enum { END_RECORDS = 0, END_BYTES = 1, END_PAGES = 2, END_DEVICES = 3, END_ROUNDS = 4,
       END_OVERLAYS = 5 };

int msi_perr_set(msi_perr *e, int code, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->at = at;
    return code;
}

int msi_perr_cbor(msi_perr *e, int code, const msi_cbor_in *in, const char *what)
{
    if (code == MS_ECBOR)
        return msi_perr_set(e, code, in->err_pos, "%s: %s", what,
                            in->err ? in->err : "malformed CBOR");
    return msi_perr_set(e, code, in->pos, "%s: %s", what, ms_strerror(code));
}

int msi_get_u32(msi_cbor_in *in, uint32_t *v, const char *what, msi_perr *e)
{
    uint64_t u;
    size_t at = in->pos;
    int rc = msi_cbor_get_uint(in, &u);
    if (rc)
        return msi_perr_cbor(e, rc, in, what);
    if (u > UINT32_MAX)
        return msi_perr_set(e, MS_ECORRUPT, at, "%s: %llu exceeds 32 bits", what,
                            (unsigned long long)u);
    *v = (uint32_t)u;
    return MS_OK;
}

bool msi_text_ok(const uint8_t *s, size_t len)
{
    return msi_utf8_ok(s, len, false);
}

/* Reads a text value, checking UTF-8 and the length range. */
static int get_name(msi_cbor_in *in, msi_text *t, size_t max, const char *what, msi_perr *e)
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

int msi_skip_unknown(msi_cbor_in *in, msi_perr *e, int64_t index, uint64_t key,
                     const char *what)
{
    /* Unknown keys are ignored (section 11.2): skip their value whole,
     * checked against the profile, which admits no float outside a DEVICE
     * state item, whatever the map (section 10). */
    int rc = msi_cbor_skip(in, 16, false);
    if (rc)
        return msi_perr_cbor(e, rc, in, what);
    if (e->keys) {
        if (e->keys->count < MS_MAX_LISTED_KEYS) {
            char *p = e->keys->path[e->keys->count];
            if (index < 0)
                snprintf(p, sizeof e->keys->path[0], "/%llu", (unsigned long long)key);
            else
                snprintf(p, sizeof e->keys->path[0], "/%lld/%llu", (long long)index,
                         (unsigned long long)key);
        }
        e->keys->count++;
    }
    return MS_OK;
}

static int expect_consumed(const msi_cbor_in *in, msi_perr *e, const char *what)
{
    if (in->pos != in->len)
        return msi_perr_set(e, MS_ECORRUPT, in->pos, "%s: %zu trailing bytes after the CBOR item",
                            what, in->len - in->pos);
    return MS_OK;
}

/* -------------------------------------------------------------------- INFO */

int msi_info_encode(msi_buf *b, const char *machine, const char *description)
{
    int rc = msi_cbor_put_map(b, (machine != NULL) + (description != NULL));
    if (!rc && machine) {
        rc = msi_cbor_put_uint(b, INFO_MACHINE);
        rc = rc ? rc : msi_cbor_put_text(b, machine, strlen(machine));
    }
    if (!rc && description) {
        rc = msi_cbor_put_uint(b, INFO_DESCRIPTION);
        rc = rc ? rc : msi_cbor_put_text(b, description, strlen(description));
    }
    return rc;
}

int msi_info_decode(const uint8_t *p, size_t n, msi_text *machine, msi_text *description,
                    msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_map m;
    uint64_t key;
    int rc;
    msi_cbor_in_init(&in, p, n);
    machine->p = description->p = NULL;
    machine->len = description->len = 0;
    if ((rc = msi_cbor_map_open(&in, &m)))
        return msi_perr_cbor(e, rc, &in, "INFO");
    while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
        if (key == INFO_MACHINE)
            rc = get_name(&in, machine, MS_MAX_NAME_LEN, "INFO machine (key 0)", e);
        else if (key == INFO_DESCRIPTION)
            rc = get_name(&in, description, 65535, "INFO description (key 1)", e);
        else
            rc = msi_skip_unknown(&in, e, -1, key, "INFO unknown key");
        if (rc)
            return rc;
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, &in, "INFO");
    return expect_consumed(&in, e, "INFO");
}

/* ----------------------------------------------------------------- REGIONS */

const char *msi_region_check(const ms_region *r, size_t name_len, uint32_t base_page_size)
{
    uint64_t end;
    if (!msi_reserved_zero(r->reserved, sizeof r->reserved / sizeof r->reserved[0]))
        return "reserved words are not zero (a field of a newer version this library does not know)";
    if (name_len == 0 || name_len > MS_MAX_NAME_LEN)
        return "name length outside 1..255 bytes";
    if (!msi_is_pow2(r->page_size) || r->page_size < base_page_size ||
        r->page_size > MS_MAX_PAGE_SIZE)
        return "page size is not a power of two between the stream's page size and 16 MiB";
    if (r->size == 0 || r->size % r->page_size)
        return "size is zero or not a multiple of the page size";
    if (r->has_gpa && r->gpa % r->page_size)
        return "guest-physical base is not aligned to the page size";
    if (r->has_gpa && (msi_add_overflow(r->gpa, r->size - 1, &end)))
        return "region wraps around the end of the guest-physical address space";
    return NULL;
}

int msi_regions_encode(msi_buf *b, const ms_region *regions, size_t count)
{
    int rc = msi_cbor_put_array(b, count);
    for (size_t i = 0; i < count && !rc; i++) {
        const ms_region *r = &regions[i];
        rc = msi_cbor_put_map(b, r->has_gpa ? 5 : 4);
        rc = rc ? rc : msi_cbor_put_uint(b, REG_ID);
        rc = rc ? rc : msi_cbor_put_uint(b, r->id);
        rc = rc ? rc : msi_cbor_put_uint(b, REG_NAME);
        rc = rc ? rc : msi_cbor_put_text(b, r->name, strlen(r->name));
        if (r->has_gpa) {
            rc = rc ? rc : msi_cbor_put_uint(b, REG_GPA);
            rc = rc ? rc : msi_cbor_put_uint(b, r->gpa);
        }
        rc = rc ? rc : msi_cbor_put_uint(b, REG_SIZE);
        rc = rc ? rc : msi_cbor_put_uint(b, r->size);
        rc = rc ? rc : msi_cbor_put_uint(b, REG_PAGE_SIZE);
        rc = rc ? rc : msi_cbor_put_uint(b, r->page_size);
    }
    return rc;
}

static int region_decode(msi_cbor_in *in, msi_region_view *v, size_t index,
                         uint32_t base_page_size, msi_perr *e)
{
    msi_cbor_map m;
    uint64_t key, val;
    int rc;
    v->at = in->pos;
    memset(&v->r, 0, sizeof v->r);
    if ((rc = msi_cbor_map_open(in, &m)))
        return msi_perr_cbor(e, rc, in, "region");
    while ((rc = msi_cbor_map_key(in, &m, &key)) == 1) {
        size_t at = in->pos;
        if (key == REG_NAME) {
            if ((rc = get_name(in, &v->name, MS_MAX_NAME_LEN, "region name (key 1)", e)))
                return rc;
            continue;
        }
        if (key > REG_PAGE_SIZE) {
            if ((rc = msi_skip_unknown(in, e, (int64_t)index, key, "region unknown key")))
                return rc;
            continue;
        }
        if ((rc = msi_cbor_get_uint(in, &val)))
            return msi_perr_cbor(e, rc, in, "region field");
        switch (key) {
        case REG_ID:
            if (val > UINT32_MAX)
                return msi_perr_set(e, MS_ECORRUPT, at, "region id %llu exceeds 32 bits",
                                    (unsigned long long)val);
            v->r.id = (uint32_t)val;
            break;
        case REG_GPA:
            v->r.has_gpa = true;
            v->r.gpa = val;
            break;
        case REG_SIZE:
            v->r.size = val;
            break;
        case REG_PAGE_SIZE:
            if (val > UINT32_MAX)
                return msi_perr_set(e, MS_ECORRUPT, at, "region page size %llu too large",
                                    (unsigned long long)val);
            v->r.page_size = (uint32_t)val;
            break;
        }
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, in, "region");
    const uint64_t need = (1u << REG_ID) | (1u << REG_NAME) | (1u << REG_SIZE) |
                          (1u << REG_PAGE_SIZE);
    if ((m.seen & need) != need)
        return msi_perr_set(e, MS_ECORRUPT, v->at,
                            "region lacks a required key (id 0, name 1, size 3, page size 4)");
    const char *why = msi_region_check(&v->r, v->name.len, base_page_size);
    if (why)
        return msi_perr_set(e, MS_ECORRUPT, v->at, "region %u \"%.*s\": %s", v->r.id,
                            (int)v->name.len, (const char *)v->name.p, why);
    return MS_OK;
}

int msi_regions_decode(const uint8_t *p, size_t n, uint32_t base_page_size, size_t max,
                       const ms_allocator *a, msi_region_view **out, size_t *count,
                       msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_tok t;
    int rc;
    msi_cbor_in_init(&in, p, n);
    *out = NULL;
    *count = 0;
    if ((rc = msi_cbor_next(&in, &t)))
        return msi_perr_cbor(e, rc, &in, "REGIONS");
    if (t.kind != MSI_CBOR_ARRAY || t.u == 0)
        return msi_perr_set(e, MS_ECORRUPT, 0, "REGIONS: expected a non-empty CBOR array");
    if (t.u > max)
        return msi_perr_set(e, MS_ELIMIT, 0,
                            "REGIONS declares %llu regions; the limit allows %zu more",
                            (unsigned long long)t.u, max);
    msi_region_view *v = msi_calloc(a, (size_t)t.u, sizeof *v);
    if (!v)
        return msi_perr_set(e, MS_ENOMEM, 0, "REGIONS: out of memory");
    for (size_t i = 0; i < t.u; i++) {
        if ((rc = region_decode(&in, &v[i], i, base_page_size, e))) {
            msi_free(a, v);
            return rc;
        }
    }
    if ((rc = expect_consumed(&in, e, "REGIONS"))) {
        msi_free(a, v);
        return rc;
    }
    *out = v;
    *count = (size_t)t.u;
    return MS_OK;
}

/* --------------------------------------------------------------------- END */

int msi_end_encode(msi_buf *b, const ms_totals *t)
{
    size_t states = 0;
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++)
        states += t->pages[s] != 0;
    /* rounds and overlays (1.1) are omitted when zero, so a stream that
     * uses neither has a 1.0 END. */
    int rc = msi_cbor_put_map(b, 4 + (t->rounds != 0) + (t->overlays != 0));
    rc = rc ? rc : msi_cbor_put_uint(b, END_RECORDS);
    rc = rc ? rc : msi_cbor_put_uint(b, t->records);
    rc = rc ? rc : msi_cbor_put_uint(b, END_BYTES);
    rc = rc ? rc : msi_cbor_put_uint(b, t->bytes);
    rc = rc ? rc : msi_cbor_put_uint(b, END_PAGES);
    rc = rc ? rc : msi_cbor_put_map(b, states);
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS && !rc; s++) {
        if (!t->pages[s])
            continue;
        rc = msi_cbor_put_uint(b, s);
        rc = rc ? rc : msi_cbor_put_uint(b, t->pages[s]);
    }
    rc = rc ? rc : msi_cbor_put_uint(b, END_DEVICES);
    rc = rc ? rc : msi_cbor_put_uint(b, t->devices);
    if (t->rounds) {
        rc = rc ? rc : msi_cbor_put_uint(b, END_ROUNDS);
        rc = rc ? rc : msi_cbor_put_uint(b, t->rounds);
    }
    if (t->overlays) {
        rc = rc ? rc : msi_cbor_put_uint(b, END_OVERLAYS);
        rc = rc ? rc : msi_cbor_put_uint(b, t->overlays);
    }
    return rc;
}

int msi_end_decode(const uint8_t *p, size_t n, ms_totals *t, msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_map m, pm;
    uint64_t key, val;
    int rc;
    memset(t, 0, sizeof *t);
    msi_cbor_in_init(&in, p, n);
    if ((rc = msi_cbor_map_open(&in, &m)))
        return msi_perr_cbor(e, rc, &in, "END");
    while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
        if (key == END_PAGES) {
            if ((rc = msi_cbor_map_open(&in, &pm)))
                return msi_perr_cbor(e, rc, &in, "END page counts (key 2)");
            while ((rc = msi_cbor_map_key(&in, &pm, &key)) == 1) {
                size_t at = in.pos;
                if ((rc = msi_cbor_get_uint(&in, &val)))
                    return msi_perr_cbor(e, rc, &in, "END page count");
                if (key == 0 || key > MSI_LAST_PAGE_STATE)
                    return msi_perr_set(e, MS_ECORRUPT, at,
                                        "END counts pages of unknown state %llu",
                                        (unsigned long long)key);
                t->pages[key] = val;
            }
            if (rc < 0)
                return msi_perr_cbor(e, rc, &in, "END page counts");
            continue;
        }
        if (key > END_OVERLAYS) {
            if ((rc = msi_skip_unknown(&in, e, -1, key, "END unknown key")))
                return rc;
            continue;
        }
        if ((rc = msi_cbor_get_uint(&in, &val)))
            return msi_perr_cbor(e, rc, &in, "END field");
        if (key == END_RECORDS)
            t->records = val;
        else if (key == END_BYTES)
            t->bytes = val;
        else if (key == END_DEVICES)
            t->devices = val;
        else if (key == END_ROUNDS)
            t->rounds = val;
        else
            t->overlays = val;
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, &in, "END");
    const uint64_t need = 0xf;
    if ((m.seen & need) != need)
        return msi_perr_set(e, MS_ECORRUPT, 0,
                            "END lacks a required key (records 0, bytes 1, pages 2, devices 3)");
    return expect_consumed(&in, e, "END");
}
