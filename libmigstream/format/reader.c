/*
 * The reader (include/migstream/reader.h): pulls records, checks them, and
 * hands out views.
 *
 * Reads are exact: the preamble, then per record its 16-byte header and its
 * payload, so the reader never consumes input past END. A payload buffer
 * grows only as bytes arrive (at most doubling what has been received), so a
 * hostile length field costs nothing until the bytes are really there.
 * Reading from memory skips the copy: payload views point into the caller's
 * buffer.
 *
 * Every read can stop halfway when the input would block (MS_EAGAIN): what
 * came of the preamble, a record header or a payload stays in the reader
 * (`have`, payload.len), and the repeated call goes on from there.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "format/compress.h"
#include "format/frame.h"
#include "format/options.h"
#include "format/source.h"
#include "migstream/overlay.h"
#include "migstream/reader.h"
#include "format/payload.h"

#define READER_MAGIC 0x4d535244u /* "MSRD" */
#define DEFAULT_MAX_REGIONS 4096u
#define DEFAULT_MAX_OVERLAYS 1024u
#define MAX_OVERLAYS 4096u /* keeps the duplicate check's linear scans cheap */
#define FIRST_CHUNK (64u * 1024)

typedef struct region_slot {
    ms_region r;
    char name[MS_MAX_NAME_LEN + 1];
} region_slot;

struct ms_reader {
    uint32_t magic;
    ms_allocator alloc;
    ms_read_fn fn;
    void *ctx;
    int fd;
    const uint8_t *mem; /* memory source, or NULL */
    size_t mem_len;

    uint32_t max_record;
    uint32_t max_regions;
    uint32_t max_depth;
    uint32_t max_overlays;
    ms_problem_fn on_problem;
    void *problem_ctx;
    uint64_t accept_features;

    int status;
    char msg[512];
    uint64_t err_offset;
    int64_t err_record;

    bool have_header;
    bool done; /* END handed out */
    int io_ret, io_errno; /* the failed read call (ms_reader_io_error) */

    /* The unit being read when the input would block: the preamble
     * (pre_size 0 until its fixed part is in and checked), or the current
     * record's header, then its payload (payload.len bytes so far). */
    uint8_t pre[MSI_PREAMBLE_MAX];
    uint32_t pre_size;
    uint8_t head[MSI_RECORD_HEADER];
    size_t have;      /* bytes of pre or head read so far */
    bool in_record;   /* rec.offset and rec.index are set */
    bool have_head;   /* head is complete and checked: the payload is next */
    ms_header hdr;
    uint64_t pos;   /* bytes consumed */
    uint64_t chain; /* checksum of the previous record */
    uint64_t index; /* index of the next record */
    ms_totals seen; /* counted as records are read, checked against END */

    region_slot **regions;
    size_t nregions, regions_cap;
    size_t last_region; /* lookup cache */

    uint64_t pages_records; /* PAGES records so far */
    uint64_t decoded;       /* bytes decoded from zstd so far */
    uint32_t decode_ratio;  /* max_decode_ratio */
    bool have_part;         /* the PART record was read: every record is of this part */
    ms_part part;
    ms_part_info part_info; /* ms_reader_part_info() */
    bool any_round;
    uint64_t last_round;
    /* (frame, kind) of every overlay so far: duplicates are refused */
    struct overlay_key { uint64_t gfn; uint32_t kind; } *ov_keys;
    size_t nov, ov_cap;
    ms_overlay *rec_overlays;
    size_t rec_overlays_cap;

    msi_buf payload;  /* non-memory sources */
    msi_buf strings;  /* NUL-terminated copies for the current record */
    msi_buf dbuf;     /* decompressed page data */
    /* ZSTD_WINDOW streams: the last PAGES record's decoded data section,
     * the window of an encoding 2 record that follows (FORMAT.md 6.3);
     * win_ok is false before any, and after a ROUND. */
    msi_buf win;
    bool win_ok;
    ms_extent *ext;
    size_t ext_cap;
    ms_region *rec_regions;
    size_t rec_regions_cap;
    msi_keys keys; /* unknown map keys of the current record */
    const char *key_paths[MS_MAX_LISTED_KEYS];
    msi_source *src;              /* a foreign stream's records, or NULL */
    void (*on_free)(void *ctx);   /* msi_reader_on_free() */
    void *on_free_ctx;
    void *dctx;
    void *hash;
    ms_record rec;
};

/* ------------------------------------------------------------------ errors */

__attribute__((format(printf, 5, 0))) static int vfail(ms_reader *r, int code, uint64_t at,
                                                      int64_t record, const char *fmt,
                 va_list ap)
{
    if (r->status)
        return r->status;
    char detail[400];
    msi_vformat(detail, sizeof detail, fmt, ap);
    char tn[16];
    if (record < 0)
        snprintf(r->msg, sizeof r->msg, "preamble, byte %llu: %s", (unsigned long long)at,
                 detail);
    else if (!r->rec.type) /* no record header was read */
        snprintf(r->msg, sizeof r->msg, "record %lld at byte %llu: %s", (long long)record,
                 (unsigned long long)at, detail);
    else if (at == r->rec.offset)
        snprintf(r->msg, sizeof r->msg, "record %lld (%s at byte %llu): %s", (long long)record,
                 msi_record_name(r->rec.type, tn), (unsigned long long)at, detail);
    else
        snprintf(r->msg, sizeof r->msg, "record %lld (%s at byte %llu), byte %llu: %s",
                 (long long)record, msi_record_name(r->rec.type, tn),
                 (unsigned long long)r->rec.offset, (unsigned long long)at, detail);
    r->status = code;
    r->err_offset = at;
    r->err_record = record;
    return code;
}

__attribute__((format(printf, 4, 5))) static int fail_pre(ms_reader *r, int code, uint64_t at,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(r, code, at, -1, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 4, 5))) static int fail_rec(ms_reader *r, int code, uint64_t at,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(r, code, at, r->have_header ? (int64_t)r->index : -1, fmt, ap);
    va_end(ap);
    return rc;
}

/* A payload decoder's failure, placed at its exact byte. */
static int fail_payload(ms_reader *r, int code, const msi_perr *e)
{
    return fail_rec(r, code, r->rec.offset + MSI_RECORD_HEADER + e->at, "%s", e->msg);
}

/* In lenient mode, turns a failure inside one record into a report and
 * clears the sticky status so reading goes on; returns the status to keep
 * (0 when stepped over). Only problems confined to a record's payload or its
 * checksum qualify: after them the next record still starts at a known byte. */
static int step_over(ms_reader *r, int rc)
{
    if (!r->on_problem || rc == MS_ENOMEM || rc == MS_EIO || rc == MS_ETRUNCATED)
        return rc;
    r->on_problem(r->problem_ctx, rc, r->err_offset, r->err_record, r->msg);
    r->status = 0;
    r->msg[0] = 0;
    if (!r->rec.status)
        r->rec.status = rc;
    return 0;
}

/* ------------------------------------------------------------------- input */

/* Reads into @buf until *have == @n or the input ends (*have < @n then).
 * MS_EAGAIN: the input would block; the bytes that came are kept in @buf
 * and counted in *have, so the repeated call goes on from there. */
static int fill(ms_reader *r, uint8_t *buf, size_t n, size_t *have)
{
    if (r->mem) {
        size_t left = r->mem_len - (size_t)r->pos, want = n - *have;
        size_t got = want < left ? want : left;
        memcpy(buf + *have, r->mem + r->pos, got);
        *have += got;
        r->pos += got;
        return MS_OK;
    }
    while (*have < n) {
        ssize_t k = r->fn(r->ctx, buf + *have, n - *have);
        if (k == 0)
            break;
        if (k == -EAGAIN || k == -EWOULDBLOCK)
            return MS_EAGAIN;
        if (k < 0 || (size_t)k > n - *have) {
            r->io_errno = k < 0 ? errno : 0;
            r->io_ret = k < INT_MIN ? INT_MIN : k > INT_MAX ? INT_MAX : (int)k;
            if (r->fd >= 0 && k < 0)
                return fail_rec(r, MS_EIO, r->pos, "read from fd %d failed: %s", r->fd,
                                strerror((int)-k));
            if (k > 0)
                return fail_rec(r, MS_EIO, r->pos, "input callback returned %zd for a read of "
                                "%zu bytes", k, n - *have);
            char cause[160];
            msi_io_cause(cause, sizeof cause, k, r->io_errno);
            return fail_rec(r, MS_EIO, r->pos, "input callback failed: %s", cause);
        }
        *have += (size_t)k;
        r->pos += (uint64_t)k;
    }
    return MS_OK;
}

/* Reads the current record's payload of @len bytes (resuming after
 * MS_EAGAIN with the payload.len bytes that came); *out views it. */
static int read_payload(ms_reader *r, size_t len, const uint8_t **out)
{
    if (r->mem) {
        size_t left = r->mem_len - (size_t)r->pos;
        if (left < len)
            return fail_rec(r, MS_ETRUNCATED, r->mem_len, "stream truncated inside the "
                            "payload: %zu of %zu bytes present", left, len);
        *out = r->mem + r->pos;
        r->pos += len;
        return MS_OK;
    }
    while (r->payload.len < len) {
        size_t step = len - r->payload.len;
        size_t cap = r->payload.len > FIRST_CHUNK ? r->payload.len : FIRST_CHUNK;
        if (step > cap)
            step = cap;
        if (msi_buf_reserve(&r->payload, step))
            return fail_rec(r, MS_ENOMEM, r->pos, "out of memory reading a %zu-byte payload",
                            len);
        size_t want = r->payload.len + step;
        int rc = fill(r, r->payload.data, want, &r->payload.len);
        if (rc)
            return rc;
        if (r->payload.len < want)
            return fail_rec(r, MS_ETRUNCATED, r->pos, "stream truncated inside the payload: "
                            "%zu of %zu bytes present", r->payload.len, len);
    }
    *out = r->payload.data;
    return MS_OK;
}

/* A NUL-terminated copy of @t in the per-record string buffer. The buffer is
 * sized before a record's strings are copied, so earlier copies stay put. */
static const char *keep_text(ms_reader *r, msi_text t)
{
    if (!t.p)
        return NULL;
    char *s = (char *)r->strings.data + r->strings.len;
    memcpy(s, t.p, t.len);
    s[t.len] = 0;
    r->strings.len += t.len + 1;
    return s;
}

static int reserve_strings(ms_reader *r, size_t n)
{
    r->strings.len = 0;
    if (msi_buf_reserve(&r->strings, n))
        return fail_rec(r, MS_ENOMEM, r->rec.offset, "out of memory");
    return MS_OK;
}

/* ---------------------------------------------------------------- preamble */

/* The stream requires @bits, features this library implements but the
 * caller's accept_features leaves out: name each. */
static int refuse_features(ms_reader *r, uint64_t bits, uint64_t at)
{
    char names[200];
    size_t len = 0;
    int n = __builtin_popcountll(bits), k = 0;
    for (uint64_t b = bits; b; b &= b - 1, k++) {
        int bit = __builtin_ctzll(b);
        const char *sep = k == 0 ? "" : k == n - 1 ? " and " : ", ";
        int w = snprintf(names + len, sizeof names - len, "%s%s (bit %d)", sep,
                         ms_feature_name((unsigned)bit), bit);
        if (w < 0 || (size_t)w >= sizeof names - len)
            break;
        len += (size_t)w;
    }
    return fail_pre(r, MS_EFEATURE, at, "stream requires feature%s %s, which accept_features "
                    "leaves out", n > 1 ? "s" : "", names);
}

/* The caller's accept_features (reader.h), for a stream's preamble (@at:
 * its required bits) or a foreign stream's header (0). */
static int check_accepted(ms_reader *r, uint64_t at)
{
    uint64_t refused = r->hdr.required_features & ~r->accept_features;
    return refused ? refuse_features(r, refused, at) : MS_OK;
}

static int read_header(ms_reader *r)
{
    uint8_t *p = r->pre;
    int rc;
    if (!r->pre_size) {
        if ((rc = fill(r, p, MSI_PREAMBLE_FIXED, &r->have)))
            return rc;
        size_t got = r->have;
        if (got == 0)
            return fail_pre(r, MS_ETRUNCATED, 0, "the stream is empty");
        if (memcmp(p, msi_magic, got < MSI_MAGIC_LEN ? got : MSI_MAGIC_LEN) != 0) {
            if (got >= 4 && memcmp(p, "QEVM", 4) == 0)
                return fail_pre(r, MS_EMAGIC, 0, "this is a QEMU migration stream (magic QEVM), "
                                "not a libmigstream stream");
            return fail_pre(r, MS_EMAGIC, 0, "bad magic %02x %02x %02x %02x...: not a "
                            "libmigstream stream (expected 89 4d 49 47 53 0d 0a 1a)", p[0],
                            got > 1 ? p[1] : 0, got > 2 ? p[2] : 0, got > 3 ? p[3] : 0);
        }
        if (got < MSI_PREAMBLE_FIXED)
            return fail_pre(r, MS_ETRUNCATED, got, "preamble truncated: %zu of %u bytes", got,
                            MSI_PREAMBLE_FIXED);
        r->hdr.major = msi_get16(p + 8);
        r->hdr.minor = msi_get16(p + 10);
        if (r->hdr.major != MS_FORMAT_MAJOR)
            return fail_pre(r, MS_EVERSION, 8, "stream format %u.%u is not readable by this "
                            "reader, which reads format %u.x (libmigstream %s)", r->hdr.major,
                            r->hdr.minor, MS_FORMAT_MAJOR, ms_version_string());
        uint32_t hs = msi_get32(p + 12);
        if (hs < MSI_PREAMBLE_SIZE || hs > MSI_PREAMBLE_MAX || hs % 8)
            return fail_pre(r, MS_ECORRUPT, 12, "header size %u is outside %u..%u or not a "
                            "multiple of 8", hs, MSI_PREAMBLE_SIZE, MSI_PREAMBLE_MAX);
        r->pre_size = hs;
    }
    const uint32_t size = r->pre_size;
    if ((rc = fill(r, p, size, &r->have)))
        return rc;
    if (r->have < size)
        return fail_pre(r, MS_ETRUNCATED, r->pos, "preamble truncated: %zu of %u bytes", r->have,
                        size);
    uint64_t stored = msi_get64(p + size - 8);
    uint64_t sum = msi_preamble_checksum(p, size);
    if (stored != sum)
        return fail_pre(r, MS_ECHECKSUM, size - 8, "preamble checksum mismatch (stored "
                        "%016llx, computed %016llx)", (unsigned long long)stored,
                        (unsigned long long)sum);
    r->hdr.checksum = sum;
    r->hdr.required_features = msi_get64(p + 16);
    r->hdr.optional_features = msi_get64(p + 24);
    r->hdr.page_size = msi_get32(p + 32);
    uint64_t unknown = r->hdr.required_features & ~(uint64_t)MSI_KNOWN_REQUIRED_FEATURES;
    if (unknown)
        return fail_pre(r, MS_EFEATURE, 16, "stream requires features this reader does not "
                        "know (required bits 0x%016llx; lowest unknown: bit %d)",
                        (unsigned long long)unknown, __builtin_ctzll(unknown));
    if ((rc = check_accepted(r, 16)))
        return rc;
    /* FORMAT.md section 6.2: a part's DUPLICATE sources would depend on
     * what the other parts sent. */
    if ((r->hdr.required_features & MS_FEATURE_PARTS) &&
        (r->hdr.required_features & MS_FEATURE_DUPLICATES))
        return fail_pre(r, MS_ECORRUPT, 16, "required features PARTS (bit 4) and DUPLICATES "
                        "(bit 5) together: a part of a migration in parts may not hold "
                        "DUPLICATE pages");
    if (msi_get32(p + 36))
        return fail_pre(r, MS_ECORRUPT, 36, "reserved preamble field is not zero");
    if (!msi_is_pow2(r->hdr.page_size) || r->hdr.page_size < MS_MIN_PAGE_SIZE ||
        r->hdr.page_size > MS_MAX_BASE_PAGE_SIZE)
        return fail_pre(r, MS_ECORRUPT, 32, "page size %u is not a power of two between %u and "
                        "%u", r->hdr.page_size, MS_MIN_PAGE_SIZE, MS_MAX_BASE_PAGE_SIZE);
    for (int f = 0; f < 2; f++) {
        const uint8_t *field = p + 40 + 32 * f;
        char *dst = f ? r->hdr.writer_version : r->hdr.writer_name;
        size_t n = msi_strnlen((const char *)field, MS_WRITER_FIELD_LEN);
        for (size_t k = n; k < MS_WRITER_FIELD_LEN; k++)
            if (field[k])
                return fail_pre(r, MS_ECORRUPT, 40 + 32 * f + k, "writer %s field has bytes "
                                "after its NUL padding", f ? "version" : "name");
        if (!msi_text_ok(field, n))
            return fail_pre(r, MS_ECORRUPT, 40 + 32 * f, "writer %s is not valid UTF-8",
                            f ? "version" : "name");
        memcpy(dst, field, n);
        dst[n] = 0;
    }
    r->chain = sum;
    r->have_header = true;
    r->have = 0;
    return MS_OK;
}

/* ------------------------------------------------------------ record types */

static const ms_region *find_region(ms_reader *r, uint32_t id)
{
    if (r->last_region < r->nregions && r->regions[r->last_region]->r.id == id)
        return &r->regions[r->last_region]->r;
    for (size_t i = 0; i < r->nregions; i++)
        if (r->regions[i]->r.id == id) {
            r->last_region = i;
            return &r->regions[i]->r;
        }
    return NULL;
}

static int do_info(ms_reader *r, const uint8_t *p, size_t n)
{
    msi_text machine, description;
    msi_perr e = {.keys = &r->keys};
    int rc;
    /* FORMAT.md section 4.3: INFO comes first, right after PART in a part. */
    const bool in_part = r->hdr.required_features & MS_FEATURE_PARTS;
    if (r->index != (in_part ? 1u : 0u))
        return fail_rec(r, MS_ECORRUPT, r->rec.offset,
                        in_part ? "INFO may only be the second "
                                  "record of a part, right after PART"
                                : "INFO may only be the first record");
    if ((rc = msi_info_decode(p, n, &machine, &description, &e)))
        return fail_payload(r, rc, &e);
    if ((rc = reserve_strings(r, machine.len + description.len + 2)))
        return rc;
    r->rec.info.machine = keep_text(r, machine);
    r->rec.info.description = keep_text(r, description);
    return MS_OK;
}

static bool overlaps(const ms_region *a, const ms_region *b)
{
    return a->has_gpa && b->has_gpa && a->gpa <= b->gpa + (b->size - 1) &&
           b->gpa <= a->gpa + (a->size - 1);
}

static int do_regions(ms_reader *r, const uint8_t *p, size_t n)
{
    msi_region_view *v;
    size_t count;
    msi_perr e = {.keys = &r->keys};
    int rc = msi_regions_decode(p, n, r->hdr.page_size, r->max_regions - r->nregions, &r->alloc,
                                &v, &count, &e);
    if (rc)
        return fail_payload(r, rc, &e);
    if (r->nregions + count > r->regions_cap) {
        region_slot **slots = msi_realloc(&r->alloc, r->regions,
                                          (r->nregions + count) * sizeof *slots);
        if (!slots) {
            msi_free(&r->alloc, v);
            return fail_rec(r, MS_ENOMEM, r->rec.offset, "out of memory");
        }
        r->regions = slots;
        r->regions_cap = r->nregions + count;
    }
    if (count > r->rec_regions_cap) {
        ms_region *rv = msi_realloc(&r->alloc, r->rec_regions, count * sizeof *rv);
        if (!rv) {
            msi_free(&r->alloc, v);
            return fail_rec(r, MS_ENOMEM, r->rec.offset, "out of memory");
        }
        r->rec_regions = rv;
        r->rec_regions_cap = count;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t at = r->rec.offset + MSI_RECORD_HEADER + v[i].at;
        for (size_t k = 0; k < r->nregions; k++) {
            const ms_region *o = &r->regions[k]->r;
            if (o->id == v[i].r.id)
                rc = fail_rec(r, MS_ECORRUPT, at, "region id %u is declared twice", o->id);
            else if (overlaps(o, &v[i].r))
                rc = fail_rec(r, MS_ECORRUPT, at, "region %u \"%.*s\" overlaps region %u \"%s\" "
                              "in guest-physical memory", v[i].r.id, (int)v[i].name.len,
                              (const char *)v[i].name.p, o->id, o->name);
            if (rc)
                break;
        }
        region_slot *s = rc ? NULL : msi_alloc(&r->alloc, sizeof *s);
        if (!rc && !s)
            rc = fail_rec(r, MS_ENOMEM, r->rec.offset, "out of memory");
        if (rc) {
            msi_free(&r->alloc, v);
            return rc;
        }
        s->r = v[i].r;
        memcpy(s->name, v[i].name.p, v[i].name.len);
        s->name[v[i].name.len] = 0;
        s->r.name = s->name;
        r->regions[r->nregions++] = s;
        r->rec_regions[i] = s->r;
    }
    msi_free(&r->alloc, v);
    r->rec.regions = r->rec_regions;
    r->rec.region_count = count;
    return MS_OK;
}

static int do_pages(ms_reader *r, const uint8_t *p, size_t n)
{
    uint32_t rid, next;
    uint8_t enc;
    uint64_t data_pages, need;
    msi_perr e = {.keys = &r->keys};
    int rc;
    const uint64_t payload_at = r->rec.offset + MSI_RECORD_HEADER;
    /* A record that fails leaves no window behind: a reader that goes on
     * past it must not decode the next record against other bytes. */
    const bool win_ok = r->win_ok;
    r->win_ok = false;
    /* FORMAT.md section 2.1: a part's pages belong to rounds, which tie them
     * to the other parts' pages, even when the part has no ROUND at all. */
    if ((r->hdr.required_features & MS_FEATURE_PARTS) && !r->any_round)
        return fail_rec(r, MS_ECORRUPT, r->rec.offset,
                        "PAGES before the first ROUND: in a part "
                        "of a migration in parts, pages appear only inside rounds");
    if ((rc = msi_pages_head(p, n, &rid, &next, &enc, &e)))
        return fail_payload(r, rc, &e);
    const ms_region *reg = find_region(r, rid);
    if (!reg)
        return fail_rec(r, MS_ECORRUPT, payload_at, "PAGES refers to region %u, which no "
                        "earlier REGIONS record declares", rid);
    if (next > r->ext_cap) {
        ms_extent *x = msi_realloc(&r->alloc, r->ext, (size_t)next * sizeof *x);
        if (!x)
            return fail_rec(r, MS_ENOMEM, payload_at, "out of memory for %u extents", next);
        r->ext = x;
        r->ext_cap = next;
    }
    if ((rc = msi_pages_extents(p, n, reg, r->hdr.required_features, next, r->ext, &data_pages,
                                &e)))
        return fail_payload(r, rc, &e);
    size_t meta = MSI_PAGES_HEADER + (size_t)next * MSI_EXTENT_SIZE;
    size_t stored = n - meta;
    ms_pages *pg = &r->rec.pages;
    pg->region = reg;
    pg->extents = r->ext;
    pg->extent_count = next;
    pg->encoding = enc;
    if (msi_mul_overflow(data_pages, reg->page_size, &need) || need > r->max_record - meta)
        return fail_rec(r, MS_ELIMIT, payload_at + 4, "DATA extents declare %llu pages of %u "
                        "bytes: more than a record may hold (limit %u bytes)",
                        (unsigned long long)data_pages, reg->page_size, r->max_record);
    if (enc == MS_ENCODING_ZSTD_WINDOW && !(r->hdr.required_features & MS_FEATURE_ZSTD_WINDOW))
        return fail_rec(r, MS_ECORRUPT, payload_at + 8, "encoding 2 (zstd-window) needs "
                        "required feature bit 6 (ZSTD_WINDOW), which the preamble does not set");
    if (enc == MS_ENCODING_ZSTD_WINDOW && !win_ok)
        return fail_rec(r, MS_ECORRUPT, payload_at + 8, "encoding 2 (zstd-window) without a "
                        "window: no PAGES record with data since the stream's start or the "
                        "last ROUND");
    if (enc == MS_ENCODING_RAW) {
        if (stored != need)
            return fail_rec(r, MS_ECORRUPT, payload_at + meta, "data section holds %zu bytes; "
                            "the DATA extents need %llu (%llu pages of %u bytes)", stored,
                            (unsigned long long)need, (unsigned long long)data_pages,
                            reg->page_size);
        pg->data = p + meta;
        pg->data_size = stored;
    } else {
        const char *why = "";
        if (need == 0) /* FORMAT.md section 6.3: one encoding per content */
            return fail_rec(r, MS_ECORRUPT, payload_at + 8, "encoding %u (%s) in a record with "
                            "no DATA extent, which must use encoding 0", enc,
                            enc == MS_ENCODING_ZSTD ? "zstd" : "zstd-window");
        if (stored == 0)
            return fail_rec(r, MS_ECORRUPT, payload_at + meta, "empty zstd data section for "
                            "%llu DATA pages", (unsigned long long)data_pages);
        /* The stream's decoding work, bounded by its bytes (section 9). */
        uint64_t allowed = MS_DECODE_ALLOWANCE + (uint64_t)r->decode_ratio * r->pos;
        if (r->decoded + need > allowed)
            return fail_rec(r, MS_ELIMIT, payload_at + meta, "zstd data would decode to %llu "
                            "bytes in all, more than the %llu a stream of %llu bytes may "
                            "(1 GiB and %u times its bytes: max_decode_ratio)",
                            (unsigned long long)(r->decoded + need),
                            (unsigned long long)allowed, (unsigned long long)r->pos,
                            r->decode_ratio);
        r->decoded += need;
        r->dbuf.len = 0;
        if (msi_buf_reserve(&r->dbuf, (size_t)need))
            return fail_rec(r, MS_ENOMEM, payload_at + meta, "out of memory");
        bool wnd = enc == MS_ENCODING_ZSTD_WINDOW;
        rc = msi_zstd_decompress(&r->dctx, p + meta, stored, r->dbuf.data, (size_t)need,
                                 wnd ? r->win.data : NULL, wnd ? r->win.len : 0, &why);
        if (rc)
            return fail_rec(r, rc, payload_at + meta, "%s", why);
        r->dbuf.len = (size_t)need;
        pg->data = r->dbuf.data;
        pg->data_size = (size_t)need;
    }
    if ((r->hdr.required_features & MS_FEATURE_ZSTD_WINDOW) && need > 0) {
        /* This record's data is the next one's window: a decoded buffer
         * changes hands (the view stays valid until the next call, as
         * reader.h promises), raw data is copied out of the payload. */
        if (enc != MS_ENCODING_RAW) {
            msi_buf t = r->win;
            r->win = r->dbuf;
            r->dbuf = t;
        } else {
            r->win.len = 0;
            if (msi_buf_append(&r->win, pg->data, pg->data_size))
                return fail_rec(r, MS_ENOMEM, payload_at + meta, "out of memory keeping the "
                                "zstd window");
        }
        r->win_ok = true;
    } else {
        r->win_ok = win_ok; /* no data: the window stays the one before */
    }
    for (uint32_t i = 0; i < next; i++)
        r->seen.pages[r->ext[i].state] += r->ext[i].count;
    r->pages_records++;
    return MS_OK;
}

static int do_round(ms_reader *r, const uint8_t *p, size_t n)
{
    ms_round *rd = &r->rec.round;
    msi_perr e = {.keys = &r->keys};
    int rc = msi_round_decode(p, n, rd, &e);
    if (rc)
        return fail_payload(r, rc, &e);
    const uint64_t at = r->rec.offset + MSI_RECORD_HEADER;
    if (!r->any_round && r->pages_records)
        return fail_rec(r, MS_ECORRUPT, at, "ROUND %llu follows %llu PAGES records sent outside "
                        "any round: in a stream with rounds, pages appear only inside rounds",
                        (unsigned long long)rd->number, (unsigned long long)r->pages_records);
    if (r->any_round && rd->number <= r->last_round)
        return fail_rec(r, MS_ECORRUPT, at, "ROUND %llu follows round %llu: round numbers must "
                        "increase", (unsigned long long)rd->number,
                        (unsigned long long)r->last_round);
    r->any_round = true;
    r->win_ok = false; /* a zstd window never spans a ROUND (FORMAT.md 6.3) */
    r->last_round = rd->number;
    r->seen.rounds++;
    return MS_OK;
}

/* The region holding guest frame @gfn, or NULL. */
static const ms_region *region_of_frame(const ms_reader *r, uint64_t gfn)
{
    uint64_t gpa = gfn * MS_OVERLAY_PAGE_SIZE; /* gfn < 2^52: no overflow */
    for (size_t i = 0; i < r->nregions; i++) {
        const ms_region *g = &r->regions[i]->r;
        if (g->has_gpa && gpa >= g->gpa && gpa - g->gpa < g->size)
            return g;
    }
    return NULL;
}

static int do_overlay(ms_reader *r, const uint8_t *p, size_t n)
{
    const uint64_t at = r->rec.offset + MSI_RECORD_HEADER;
    size_t count;
    msi_perr e = {.keys = &r->keys};
    int rc;
    if (!(r->hdr.required_features & MS_FEATURE_OVERLAYS))
        return fail_rec(r, MS_ECORRUPT, r->rec.offset, "OVERLAY record in a stream whose "
                        "preamble does not set required feature bit 3 (OVERLAYS)");
    rc = msi_overlays_decode(p, n, r->max_overlays - r->nov, &r->alloc, &r->rec_overlays,
                             &r->rec_overlays_cap, &count, &e);
    if (rc)
        return fail_payload(r, rc, &e);
    if (r->nov + count > r->ov_cap) {
        struct overlay_key *k = msi_realloc(&r->alloc, r->ov_keys, (r->nov + count) * sizeof *k);
        if (!k)
            return fail_rec(r, MS_ENOMEM, at, "out of memory");
        r->ov_keys = k;
        r->ov_cap = r->nov + count;
    }
    for (size_t i = 0; i < count; i++) {
        const ms_overlay *o = &r->rec_overlays[i];
        const char *kind = ms_overlay_kind_name(o->kind);
        if (!region_of_frame(r, o->gfn))
            return fail_rec(r, MS_ECORRUPT, at, "overlay %zu (%s at frame 0x%llx, address "
                            "0x%llx) lies outside every region declared with a guest-physical "
                            "address", i, kind, (unsigned long long)o->gfn,
                            (unsigned long long)o->gfn * MS_OVERLAY_PAGE_SIZE);
        /* Linear: the limit keeps this at most a million comparisons. */
        for (size_t k = 0; k < r->nov; k++)
            if (r->ov_keys[k].gfn == o->gfn && r->ov_keys[k].kind == o->kind)
                return fail_rec(r, MS_ECORRUPT, at, "overlay %zu: frame 0x%llx already has a %s "
                                "overlay (one of each kind per frame)", i,
                                (unsigned long long)o->gfn, kind);
        r->ov_keys[r->nov].gfn = o->gfn;
        r->ov_keys[r->nov].kind = o->kind;
        r->nov++;
    }
    r->rec.overlays = r->rec_overlays;
    r->rec.overlay_count = count;
    r->seen.overlays += count;
    return MS_OK;
}

static int do_part(ms_reader *r, const uint8_t *p, size_t n)
{
    msi_perr e = {.keys = &r->keys};
    ms_part part;
    int rc;
    if (!(r->hdr.required_features & MS_FEATURE_PARTS))
        return fail_rec(r, MS_ECORRUPT, r->rec.offset,
                        "PART record in a stream whose preamble "
                        "does not set required feature bit 4 (PARTS)");
    if (r->index != 0)
        return fail_rec(r, MS_ECORRUPT, r->rec.offset, "PART may only be the first record");
    if ((rc = msi_part_decode(p, n, &part, &e)))
        return fail_payload(r, rc, &e);
    r->part = part;
    r->have_part = true;
    return MS_OK;
}

static int do_device(ms_reader *r, const uint8_t *p, size_t n)
{
    msi_device_view d;
    msi_perr e = {.keys = &r->keys};
    int rc = msi_device_decode(p, n, r->max_depth, &d, &e);
    if (rc)
        return fail_payload(r, rc, &e);
    if ((rc = reserve_strings(r, d.path.len + d.schema.len + 2)))
        return rc;
    r->rec.device.path = keep_text(r, d.path);
    r->rec.device.schema = keep_text(r, d.schema);
    r->rec.device.instance = d.instance;
    r->rec.device.version = d.version;
    r->rec.device.state = d.state;
    r->rec.device.state_size = d.state_size;
    r->seen.devices++;
    return MS_OK;
}

static int do_end(ms_reader *r, const uint8_t *p, size_t n)
{
    ms_totals *t = &r->rec.totals;
    msi_perr e = {.keys = &r->keys};
    int rc = msi_end_decode(p, n, t, &e);
    if (rc)
        return fail_payload(r, rc, &e);
    const uint64_t at = r->rec.offset + MSI_RECORD_HEADER;
    /* END ends the stream even when its totals disagree (a lenient reader
     * reports that and stops here, rather than reading on). */
    r->done = true;
    if (t->records != r->index)
        return fail_rec(r, MS_ECORRUPT, at, "END counts %llu records but %llu precede it: "
                        "records were lost or added", (unsigned long long)t->records,
                        (unsigned long long)r->index);
    if (t->bytes != r->rec.offset)
        return fail_rec(r, MS_ECORRUPT, at, "END says it starts at byte %llu but it starts at "
                        "byte %llu", (unsigned long long)t->bytes,
                        (unsigned long long)r->rec.offset);
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++)
        if (t->pages[s] != r->seen.pages[s])
            return fail_rec(r, MS_ECORRUPT, at, "END counts %llu pages in state %u but the "
                            "stream holds %llu", (unsigned long long)t->pages[s], s,
                            (unsigned long long)r->seen.pages[s]);
    if (t->devices != r->seen.devices)
        return fail_rec(r, MS_ECORRUPT, at, "END counts %llu devices but the stream holds %llu",
                        (unsigned long long)t->devices, (unsigned long long)r->seen.devices);
    if (t->rounds != r->seen.rounds)
        return fail_rec(r, MS_ECORRUPT, at, "END counts %llu rounds but the stream holds %llu",
                        (unsigned long long)t->rounds, (unsigned long long)r->seen.rounds);
    if (t->overlays != r->seen.overlays)
        return fail_rec(r, MS_ECORRUPT, at, "END counts %llu overlays but the stream holds %llu",
                        (unsigned long long)t->overlays, (unsigned long long)r->seen.overlays);
    return MS_OK;
}

/* The record types this reader knows (FORMAT.md section 4.3). */
static const struct {
    uint16_t type;
    int (*decode)(ms_reader *, const uint8_t *, size_t);
} record_table[] = {
    {MS_REC_INFO, do_info},       {MS_REC_REGIONS, do_regions}, {MS_REC_PAGES, do_pages},
    {MS_REC_DEVICE, do_device},   {MS_REC_END, do_end},         {MS_REC_ROUND, do_round},
    {MS_REC_OVERLAY, do_overlay}, {MS_REC_PART, do_part},
};

/* -------------------------------------------------------------------- API */

void ms_reader_options_init(ms_reader_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->max_record_size = MS_MAX_RECORD_PAYLOAD;
    o->max_regions = DEFAULT_MAX_REGIONS;
    o->max_cbor_depth = MS_DEFAULT_CBOR_DEPTH;
    o->max_overlays = DEFAULT_MAX_OVERLAYS;
    o->accept_features = UINT64_MAX;
    o->max_decode_ratio = MS_DEFAULT_DECODE_RATIO;
}

static ssize_t mem_read_unused(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}

/* @bad_arg: why the other arguments cannot be used, or NULL. */
static ms_reader *reader_new(const ms_reader_options *opts, ms_read_fn fn, void *ctx, int fd,
                             const char *bad_arg)
{
    ms_reader_options o;
    ms_reader_options_init(&o);
    const char *why = NULL;
    if (opts)
        why = msi_struct_take(&o, MSI_READER_OPTIONS_END, opts, opts->struct_size);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_reader *r = msi_calloc(&a, 1, sizeof *r);
    if (!r)
        return NULL;
    r->magic = READER_MAGIC;
    r->alloc = a;
    r->err_record = -1;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why || bad_arg) {
        r->status = MS_EINVAL;
        snprintf(r->msg, sizeof r->msg, "%s: %s",
                 why ? "invalid reader options" : "invalid argument", why ? why : bad_arg);
        return r;
    }
    r->fn = fn;
    r->ctx = ctx;
    r->fd = fd;
    r->max_record = o.max_record_size && o.max_record_size < MS_MAX_RECORD_PAYLOAD
                        ? o.max_record_size
                        : MS_MAX_RECORD_PAYLOAD;
    r->max_regions = o.max_regions ? o.max_regions : DEFAULT_MAX_REGIONS;
    r->max_depth = o.max_cbor_depth ? o.max_cbor_depth : MS_DEFAULT_CBOR_DEPTH;
    r->max_overlays = o.max_overlays ? o.max_overlays : DEFAULT_MAX_OVERLAYS;
    if (r->max_overlays > MAX_OVERLAYS)
        r->max_overlays = MAX_OVERLAYS;
    r->on_problem = o.on_problem;
    r->problem_ctx = o.problem_ctx;
    r->accept_features = o.accept_features;
    r->decode_ratio = o.max_decode_ratio ? o.max_decode_ratio : MS_DEFAULT_DECODE_RATIO;
    if (r->max_depth > MSI_CBOR_MAX_DEPTH)
        r->max_depth = MSI_CBOR_MAX_DEPTH;
    if (!(r->hash = msi_hash_state_new())) {
        msi_free(&a, r);
        return NULL;
    }
    msi_buf_init(&r->payload, &r->alloc);
    msi_buf_init(&r->strings, &r->alloc);
    msi_buf_init(&r->dbuf, &r->alloc);
    msi_buf_init(&r->win, &r->alloc);
    return r;
}

ms_reader *ms_reader_new(const ms_reader_options *opts, ms_read_fn fn, void *ctx)
{
    return reader_new(opts, fn, ctx, -1, fn ? NULL : "no read callback");
}

ms_reader *ms_reader_new_fd(const ms_reader_options *opts, int fd)
{
    return reader_new(opts, msi_fd_read, msi_fd_ctx(fd), fd,
                      fd < 0 ? "negative file descriptor" : NULL);
}

ms_reader *ms_reader_new_memory(const ms_reader_options *opts, const void *buf, size_t size)
{
    ms_reader *r = reader_new(opts, mem_read_unused, NULL, -1,
                              !buf && size ? "NULL buffer of non-zero size" : NULL);
    if (r && !r->status) {
        static const uint8_t empty[1];
        r->mem = buf ? buf : empty;
        r->mem_len = size;
    }
    return r;
}

void ms_reader_free(ms_reader *r)
{
    if (!r || r->magic != READER_MAGIC)
        return;
    for (size_t i = 0; i < r->nregions; i++)
        msi_free(&r->alloc, r->regions[i]);
    msi_free(&r->alloc, r->regions);
    msi_free(&r->alloc, r->rec_regions);
    msi_free(&r->alloc, r->ext);
    msi_free(&r->alloc, r->ov_keys);
    msi_free(&r->alloc, r->rec_overlays);
    msi_buf_free(&r->payload);
    msi_buf_free(&r->strings);
    msi_buf_free(&r->dbuf);
    msi_buf_free(&r->win);
    msi_zstd_free(NULL, r->dctx);
    msi_hash_state_free(r->hash);
    r->magic = 0;
    msi_source_destroy(r->src);
    void (*on_free)(void *) = r->on_free;
    void *on_free_ctx = r->on_free_ctx;
    ms_allocator a = r->alloc;
    msi_free(&a, r);
    if (on_free) /* last: the callbacks used above may need what it frees */
        on_free(on_free_ctx);
}

/* ------------------------------------------------------- foreign sources */

/* The source's failure, in its own words, becomes the reader's. */
static int adopt_source_error(ms_reader *r)
{
    msi_source *s = r->src;
    if (r->status)
        return r->status;
    r->status = s->status ? s->status : MS_ECORRUPT;
    snprintf(r->msg, sizeof r->msg, "%s", s->msg[0] ? s->msg : ms_strerror(r->status));
    r->err_offset = s->err_offset;
    r->err_record = s->err_record != MSI_SOURCE_NO_RECORD ? s->err_record
                    : r->have_header                      ? (int64_t)r->index
                                                          : -1;
    return r->status;
}

/* A problem the source steps over, to on_problem. */
static void source_problem(void *ctx, int status, uint64_t offset, const char *msg)
{
    ms_reader *r = ctx;
    if (r->on_problem)
        r->on_problem(r->problem_ctx, status, offset, r->have_header ? (int64_t)r->index : -1,
                      msg);
}

static int source_header(ms_reader *r)
{
    if (msi_source_open(r->src))
        return adopt_source_error(r);
    r->hdr = r->src->header;
    int rc = check_accepted(r, 0);
    if (rc)
        return rc;
    r->have_header = true;
    return MS_OK;
}

/* A source's REGIONS record: its regions join the reader's table, within
 * its limit, as a stream's would. */
static int source_regions(ms_reader *r, const ms_record *rec)
{
    if (rec->region_count > r->max_regions - r->nregions)
        return fail_rec(r, MS_ELIMIT, rec->offset, "more than %u regions (max_regions)",
                        r->max_regions);
    if (r->nregions + rec->region_count > r->regions_cap) {
        region_slot **slots = msi_realloc(&r->alloc, r->regions,
                                          (r->nregions + rec->region_count) * sizeof *slots);
        if (!slots)
            return fail_rec(r, MS_ENOMEM, rec->offset, "out of memory");
        r->regions = slots;
        r->regions_cap = r->nregions + rec->region_count;
    }
    for (size_t i = 0; i < rec->region_count; i++) {
        const ms_region *g = &rec->regions[i];
        if (find_region(r, g->id))
            return fail_rec(r, MS_ECORRUPT, rec->offset, "region id %u is declared twice",
                            g->id);
        region_slot *s = msi_alloc(&r->alloc, sizeof *s);
        if (!s)
            return fail_rec(r, MS_ENOMEM, rec->offset, "out of memory");
        s->r = *g;
        snprintf(s->name, sizeof s->name, "%s", g->name);
        s->r.name = s->name;
        r->regions[r->nregions++] = s;
    }
    return MS_OK;
}

static int source_next(ms_reader *r, const ms_record **out)
{
    const ms_record *rec;
    int rc = msi_source_next(r->src, &rec);
    if (rc < 0)
        return adopt_source_error(r);
    if (rc == 0) { /* a source hands out END last: it cannot end without it */
        r->done = true;
        return 0;
    }
    r->pos = rec->offset;
    if (rec->type == MS_REC_REGIONS && (rc = source_regions(r, rec)))
        return rc;
    if (rec->type == MS_REC_END) {
        r->done = true;
        r->pos = rec->totals.bytes;
    }
    r->index++;
    *out = rec;
    return 1;
}

ms_reader *msi_reader_new_source(const ms_reader_options *opts, msi_source *src)
{
    ms_reader *r = reader_new(opts, mem_read_unused, NULL, -1, src ? NULL : "no source");
    if (!r) {
        msi_source_destroy(src);
        return NULL;
    }
    r->src = src;
    if (src) {
        src->problem = source_problem;
        src->problem_ctx = r;
    }
    return r;
}

ms_reader *msi_reader_new_failed(const ms_reader_options *opts, int status, const char *msg)
{
    ms_reader *r = reader_new(opts, mem_read_unused, NULL, -1, NULL);
    if (r && !r->status) {
        r->status = status;
        snprintf(r->msg, sizeof r->msg, "%s", msg);
    }
    return r;
}

int msi_reader_on_free(ms_reader *r, void (*fn)(void *ctx), void *ctx)
{
    if (!r || r->on_free)
        return MS_EINVAL;
    r->on_free = fn;
    r->on_free_ctx = ctx;
    return MS_OK;
}

const char *ms_reader_format(const ms_reader *r)
{
    if (!r || r->magic != READER_MAGIC)
        return NULL;
    return r->src ? r->src->ops->name : "migstream";
}

/* -------------------------------------------------------------------- API */

int ms_reader_header(ms_reader *r, const ms_header **out)
{
    if (!r || r->magic != READER_MAGIC)
        return MS_EINVAL;
    if (r->status)
        return r->status;
    if (!r->have_header) {
        int rc = r->src ? source_header(r) : read_header(r);
        if (rc)
            return rc;
    }
    if (out)
        *out = &r->hdr;
    return MS_OK;
}

int ms_reader_next(ms_reader *r, const ms_record **out)
{
    int rc = ms_reader_header(r, NULL);
    if (rc)
        return rc;
    if (r->done)
        return 0;
    if (r->src)
        return source_next(r, out);

    ms_record *rec = &r->rec;
    if (!r->in_record) {
        memset(rec, 0, sizeof *rec);
        rec->offset = r->pos;
        rec->index = r->index;
        r->in_record = true;
        r->have = 0;
        r->payload.len = 0;
    }
    const uint8_t *h = r->head;
    if (!r->have_head) {
        if ((rc = fill(r, r->head, sizeof r->head, &r->have)))
            return rc;
        if (r->have == 0)
            return fail_rec(r, MS_ETRUNCATED, r->pos, "stream ends after %llu records without "
                            "an END record", (unsigned long long)r->index);
        if (r->have < sizeof r->head)
            return fail_rec(r, MS_ETRUNCATED, r->pos, "stream truncated inside a record header: "
                            "%zu of %zu bytes present", r->have, sizeof r->head);
        rec->type = msi_get16(h);
        rec->flags = msi_get16(h + 2);
        rec->length = msi_get32(h + 4);
        rec->checksum = msi_get64(h + 8);
        /* A bad type or flag word still leaves the length usable, so even
         * these can be stepped over in lenient mode. */
        if (rec->type == 0 &&
            (rc = step_over(r, fail_rec(r, MS_ECORRUPT, rec->offset, "record type 0 is invalid"))))
            return rc;
        if ((rec->flags & ~MS_RECORD_MUST_UNDERSTAND) &&
            (rc = step_over(r, fail_rec(r, MS_ECORRUPT, rec->offset + 2, "reserved record flag "
                                        "bits 0x%04x are set",
                                        rec->flags & ~MS_RECORD_MUST_UNDERSTAND))))
            return rc;
        if (rec->length > r->max_record)
            return fail_rec(r, MS_ELIMIT, rec->offset + 4, "payload length %u exceeds the limit "
                            "of %u bytes", rec->length, r->max_record);
        r->have_head = true;
    }
    const uint8_t *payload = NULL;
    if ((rc = read_payload(r, rec->length, &payload)))
        return rc;
    r->in_record = r->have_head = false; /* the next call starts a record */
    rec->payload = payload;
    struct iovec pl = {(void *)(uintptr_t)payload, rec->length};
    uint64_t sum = msi_record_checksum(r->hash, r->chain, h, &pl, 1);
    if (sum != rec->checksum &&
        (rc = step_over(r, fail_rec(r, MS_ECHECKSUM, rec->offset + 8, "checksum mismatch "
                                    "(stored %016llx, computed %016llx): the record is corrupt, "
                                    "or a record before it is missing or out of order",
                                    (unsigned long long)rec->checksum,
                                    (unsigned long long)sum))))
        return rc;

    /* FORMAT.md section 5.3: a part says which part it is before anything
     * else. */
    if (rec->index == 0 && (r->hdr.required_features & MS_FEATURE_PARTS) &&
        rec->type != MS_REC_PART &&
        (rc = step_over(r, fail_rec(r, MS_ECORRUPT, rec->offset,
                                    "the stream requires feature "
                                    "PARTS but does not start with a PART record"))))
        return rc;
    rec->known = false;
    r->keys.count = 0;
    for (size_t i = 0; i < sizeof record_table / sizeof record_table[0]; i++) {
        if (record_table[i].type != rec->type)
            continue;
        rec->known = true;
        if (!(rc = record_table[i].decode(r, payload, rec->length)) && r->keys.count) {
            size_t listed = r->keys.count < MS_MAX_LISTED_KEYS ? r->keys.count
                                                                : MS_MAX_LISTED_KEYS;
            for (size_t k = 0; k < listed; k++)
                r->key_paths[k] = r->keys.path[k];
            rec->unknown_keys = r->key_paths;
            rec->unknown_key_count = r->keys.count;
        }
        if (rc) {
            int keep = step_over(r, rc);
            if (keep)
                return keep;
            /* The record is handed out undecoded: clear any half-filled view. */
            memset(&rec->info, 0, sizeof *rec - offsetof(ms_record, info));
            rec->status = rc;
        }
        break;
    }
    if (!rec->known && (rec->flags & MS_RECORD_MUST_UNDERSTAND) &&
        (rc = step_over(r, fail_rec(r, MS_EUNKNOWN, rec->offset, "unknown record type 0x%04x "
                                    "is marked must-understand: this reader (format %u.%u) "
                                    "cannot apply it", rec->type, MS_FORMAT_MAJOR,
                                    MS_FORMAT_MINOR))))
        return rc;
    if (rec->type == MS_REC_END) {
        r->done = true; /* even an END too damaged to decode ends the stream */
        r->part_info.ended = true;
        r->part_info.bytes = r->pos;
        r->part_info.totals = rec->totals;
        r->part_info.digest = rec->checksum;
    }
    if (r->have_part)
        rec->part = &r->part;
    /* The chain goes on from the stored checksum (FORMAT.md section 4.2), so
     * one corrupt record does not condemn every record after it. */
    sum = rec->checksum;
    r->chain = sum;
    r->index++;
    *out = rec;
    return 1;
}

int ms_reader_expect_eof(ms_reader *r)
{
    if (!r || r->magic != READER_MAGIC)
        return MS_EINVAL;
    if (r->status)
        return r->status;
    if (!r->done)
        return MS_ESTATE;
    if (r->src) { /* a source checks its own input's end before its END ... */
        if (!r->src->ops->expect_eof)
            return MS_OK;
        int rc = r->src->ops->expect_eof(r->src); /* ... or here, when it has several */
        return rc ? adopt_source_error(r) : MS_OK;
    }
    uint64_t at = r->pos;
    if (r->mem && r->pos < r->mem_len) {
        r->index--; /* problems here belong to the END record, already counted */
        int rc = fail_rec(r, MS_ECORRUPT, at, "%zu bytes follow the END record",
                          r->mem_len - (size_t)r->pos);
        r->index++;
        return rc;
    }
    uint8_t b;
    size_t got = 0;
    r->index--;
    int rc = fill(r, &b, 1, &got);
    if (!rc && got)
        rc = fail_rec(r, MS_ECORRUPT, at, "bytes follow the END record");
    r->index++;
    return rc;
}

const ms_region *ms_reader_region(const ms_reader *r, size_t index)
{
    if (!r || r->magic != READER_MAGIC || index >= r->nregions)
        return NULL;
    return &r->regions[index]->r;
}

size_t ms_reader_region_count(const ms_reader *r)
{
    return r && r->magic == READER_MAGIC ? r->nregions : 0;
}

const ms_region *ms_reader_find_region(const ms_reader *r, uint32_t id)
{
    if (!r || r->magic != READER_MAGIC)
        return NULL;
    for (size_t i = 0; i < r->nregions; i++)
        if (r->regions[i]->r.id == id)
            return &r->regions[i]->r;
    return NULL;
}

uint64_t ms_reader_offset(const ms_reader *r)
{
    return r && r->magic == READER_MAGIC ? r->pos : 0;
}

int ms_reader_status(const ms_reader *r)
{
    if (!r)
        return MS_ENOMEM; /* the only reason a constructor returns NULL */
    return r->magic == READER_MAGIC ? r->status : MS_EINVAL;
}

const char *ms_reader_errmsg(const ms_reader *r)
{
    if (!r)
        return "out of memory creating the reader";
    if (r->magic != READER_MAGIC)
        return "invalid reader handle";
    return r->status ? r->msg : "";
}

uint64_t ms_reader_error_offset(const ms_reader *r)
{
    return r && r->magic == READER_MAGIC ? r->err_offset : 0;
}

int64_t ms_reader_error_record(const ms_reader *r)
{
    return r && r->magic == READER_MAGIC ? r->err_record : -1;
}

int64_t ms_reader_error_part(const ms_reader *r)
{
    if (!r || r->magic != READER_MAGIC)
        return -1;
    if (r->src)
        return r->src->err_part;
    return r->have_part ? (int64_t)r->part.index : -1;
}

uint32_t ms_reader_part_count(const ms_reader *r)
{
    if (!r || r->magic != READER_MAGIC)
        return 0;
    if (r->src)
        return r->src->ops->part_count ? r->src->ops->part_count(r->src) : 0;
    return r->have_part ? 1 : 0;
}

const ms_part_info *ms_reader_part_info(ms_reader *r, uint32_t i)
{
    if (!r || r->magic != READER_MAGIC)
        return NULL;
    if (r->src)
        return r->src->ops->part_info ? r->src->ops->part_info(r->src, i) : NULL;
    if (!r->have_part || i != 0)
        return NULL;
    ms_part_info *pi = &r->part_info; /* a view, refreshed here */
    pi->header = r->hdr;
    pi->header_size = r->pre_size;
    pi->part = r->part;
    pi->records = r->index;
    if (!pi->ended) /* after END, what expect_eof() read is not the part's */
        pi->bytes = r->pos;
    return pi;
}

int ms_reader_io_error(const ms_reader *r, int *err)
{
    bool failed = r && r->magic == READER_MAGIC && r->status == MS_EIO;
    if (err)
        *err = failed ? r->io_errno : 0;
    return failed ? r->io_ret : 0;
}
