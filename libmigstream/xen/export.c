/*
 * The Xen exporter (export.h; docs/XEN.md section 6): reads a libmigstream
 * stream through the public reader and writes Xen's stream as Xen 4.17's
 * saver lays it out: the libxl header and LIBXC_CONTEXT (when wrapped),
 * the image and domain headers, the libxc records in stream order with
 * pages batched into PAGE_DATA records, the libxc END, the libxl records
 * that followed it, the libxl END. Records go out as their input records
 * arrive; only the pages of one PAGE_DATA record are held.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/cbor_codec.h"
#include "common/fdio.h"
#include "common/util.h"
#include "format/options.h"
#include "format/parts.h"
#include "migstream/reader.h"
#include "xen/export.h"
#include "xen/input.h"
#include "xen/records.h"
#include "xen/rules.h"
#include "xen/types.h"
#include "xen/wire.h"

#define OUT_CAP (256u << 10)
#define DEF_BATCH 1024u  /* Xen's saver: MAX_BATCH_SIZE */
#define MAX_BATCH 16384u /* 64 MiB of pages: within Xen's 128 MiB record limit */

/* Where the libxc part of the stream is. */
enum { MODE_LIBXC, MODE_CKPT, MODE_AFTER };

typedef struct mx_exp {
    ms_xen_export_options o;
    const ms_allocator *alloc;
    mx_error err;
    int64_t err_record;
    ms_reader *r;
    bool r_borrowed; /* the caller's (ms_xen_export_run_reader()) */
    ms_write_fn out;
    void *out_ctx;
    uint8_t *obuf;
    size_t olen;
    ms_xen_export_stats *st;

    /* The headers the stream gave, and what is decided. */
    bool have_libxl_hdr, have_hdr;
    uint8_t libxl_raw[MX_LIBXL_HEADER_SIZE];
    uint8_t hdr_raw[MX_IHDR_SIZE + MX_DHDR_SIZE];
    bool decided, libxl;
    uint32_t version, domain;

    /* What is written. */
    bool started, libxc_started;
    int mode;
    bool last_ckpt; /* the last libxc record written was CHECKPOINT */
    mx_rules rules;

    /* The PAGE_DATA record being filled, and its pfns (a hash set, so that
     * a pfn sent twice starts the next record, as Xen's saver never puts
     * one twice in a record). */
    uint8_t *batch; /* pfn entries as on the wire */
    uint8_t *data;
    uint32_t nbatch, ndata;
    uint64_t *in_batch; /* UINT64_MAX: empty */
    size_t in_batch_cap;
    uint8_t *fill; /* one page of a FILL word */

    /* The page types of "xen/page_types" records, per block of pfns. */
    mx_types *kept;
    uint64_t *entries; /* a record's entries, decoded */
    size_t entries_cap;

    uint8_t *body; /* a device's raw bytes, reserved fields cleared */
    size_t body_cap;
} mx_exp;

/* ------------------------------------------------------------- errors */

/* "record 12 (PAGES) at offset 4567: " names the input record, after
 * "part 1 (b.mig), " in a migration in parts. */
__attribute__((format(printf, 4, 5))) static int
rec_fail(mx_exp *x, int status, const ms_record *rec, const char *fmt, ...)
{
    if (x->err.status)
        return x->err.status;
    char what[400], part[320], name[400];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *tn = ms_record_type_name(rec->type);
    snprintf(name, sizeof name, "%srecord %llu (%s)", msi_part_prefix(part, sizeof part, x->r, rec),
             (unsigned long long)rec->index, tn ? tn : "unknown type");
    x->err_record = (int64_t)rec->index;
    return mx_fail(&x->err, status, rec->offset, name, "%s", what);
}

static int out_fail(mx_exp *x)
{
    return mx_fail(&x->err, MS_EIO, ms_reader_offset(x->r), "output",
                   "writing the Xen stream failed after %llu bytes",
                   (unsigned long long)x->st->bytes_written);
}

/* ------------------------------------------------------------- output */

static int flush_out(mx_exp *x)
{
    if (!x->olen)
        return 0;
    struct iovec iov = {.iov_base = x->obuf, .iov_len = x->olen};
    if (x->out(x->out_ctx, &iov, 1) < 0)
        return out_fail(x);
    x->st->bytes_written += x->olen;
    x->olen = 0;
    return 0;
}

static int put(mx_exp *x, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n) {
        if (x->olen == OUT_CAP && flush_out(x))
            return x->err.status;
        size_t k = OUT_CAP - x->olen < n ? OUT_CAP - x->olen : n;
        memcpy(x->obuf + x->olen, s, k);
        x->olen += k;
        s += k;
        n -= k;
    }
    return 0;
}

static int put_zeros(mx_exp *x, size_t n)
{
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = put(x, zeros, k);
        if (rc)
            return rc;
        n -= k;
    }
    return 0;
}

/* A record: type, body length, then the body in @nparts pieces, padded to
 * 8 bytes. */
static int put_record(mx_exp *x, uint32_t type, const struct iovec *parts, int nparts)
{
    uint64_t len = 0;
    for (int i = 0; i < nparts; i++)
        len += parts[i].iov_len;
    uint8_t h[MX_RHDR_SIZE];
    msi_put32(h, type);
    msi_put32(h + 4, (uint32_t)len);
    int rc = put(x, h, sizeof h);
    for (int i = 0; i < nparts && !rc; i++)
        rc = put(x, parts[i].iov_base, parts[i].iov_len);
    if (!rc)
        rc = put_zeros(x, mx_padded((uint32_t)len) - (uint32_t)len);
    if (!rc)
        x->st->xen_records++;
    return rc;
}

static int put_simple(mx_exp *x, uint32_t type, const void *body, size_t len)
{
    struct iovec v = {.iov_base = (void *)body, .iov_len = len};
    return put_record(x, type, &v, len ? 1 : 0);
}

/* ------------------------------------------------------------ structure */

/* The format, decided at the first thing written. */
static void decide(mx_exp *x)
{
    if (x->decided)
        return;
    x->decided = true;
    x->libxl = x->o.format == MS_XEN_FORMAT_LIBXL ||
               (x->o.format == MS_XEN_FORMAT_AUTO && (x->have_libxl_hdr || !x->have_hdr));
    x->st->libxl = x->libxl;
}

static int start(mx_exp *x)
{
    decide(x);
    if (x->started)
        return 0;
    x->started = true;
    if (!x->libxl)
        return 0;
    uint8_t h[MX_LIBXL_HEADER_SIZE];
    /* Reserved option bits are written 0; the legacy bit is kept. */
    uint32_t opt = x->have_libxl_hdr ? mx_be32(x->libxl_raw + 12) & MX_LIBXL_OPT_LEGACY : 0;
    mx_put_be64(h, MX_LIBXL_IDENT);
    mx_put_be32(h + 8, MX_LIBXL_VERSION);
    mx_put_be32(h + 12, opt);
    return put(x, h, sizeof h);
}

static int write_libxc_headers(mx_exp *x)
{
    x->version = x->have_hdr ? mx_be32(x->hdr_raw + 12) : 3;
    x->domain = x->have_hdr ? msi_get32(x->hdr_raw + MX_IHDR_SIZE) : x->o.domain_type;
    x->st->domain_type = x->domain;
    uint8_t h[MX_IHDR_SIZE + MX_DHDR_SIZE] = {0}, *dh = h + MX_IHDR_SIZE;
    mx_put_be64(h, MX_IHDR_MARKER);
    mx_put_be32(h + 8, MX_IHDR_ID);
    mx_put_be32(h + 12, x->version);
    /* Options: little-endian; reserved fields 0. */
    msi_put32(dh, x->domain);
    msi_put16(dh + 4, MX_PAGE_SHIFT);
    /* The Xen version that saved the guest; 4.17 (the spec revision read)
     * for a stream that did not come from Xen. */
    msi_put32(dh + 8, x->have_hdr ? msi_get32(x->hdr_raw + MX_IHDR_SIZE + 8) : 4);
    msi_put32(dh + 12, x->have_hdr ? msi_get32(x->hdr_raw + MX_IHDR_SIZE + 12) : 17);
    mx_rules_init(&x->rules, x->version, x->domain);
    return put(x, h, sizeof h);
}

static int flush_batch(mx_exp *x, const ms_record *rec);

/* Before a libxc record goes out: the libxl header, LIBXC_CONTEXT and the
 * libxc headers the first time; CHECKPOINT_END when a checkpoint's libxl
 * records end without one (a stream imported bare). */
static int enter_libxc(mx_exp *x, const ms_record *rec)
{
    int rc = start(x);
    if (rc)
        return rc;
    if (!x->libxc_started) {
        if (x->libxl && (rc = put_simple(x, MX_XL_LIBXC_CONTEXT, NULL, 0)))
            return rc;
        x->libxc_started = true;
        x->mode = MODE_LIBXC;
        return write_libxc_headers(x);
    }
    /* After a CHECKPOINT, libxl reads its own records up to CHECKPOINT_END
     * before libxc goes on: an empty checkpoint has that record alone. */
    if (x->mode == MODE_CKPT || (x->libxl && x->mode == MODE_LIBXC && x->last_ckpt)) {
        if ((rc = put_simple(x, MX_XL_CHECKPOINT_END, NULL, 0)))
            return rc;
        x->mode = MODE_LIBXC;
        x->last_ckpt = false;
    } else if (x->mode == MODE_AFTER) {
        return rec_fail(x, MS_EFEATURE, rec,
                        "a libxc record after the libxl records that follow the libxc stream's "
                        "END");
    }
    return 0;
}

/* The libxc END, with the STATIC_DATA_END a version 3 stream must hold
 * when nothing called for it before. */
static int end_libxc(mx_exp *x, const ms_record *rec)
{
    char why[256];
    int rc;
    if (x->version >= 3 && !x->rules.static_end) {
        const char *bad = mx_rules_next(&x->rules, MX_STATIC_DATA_END, NULL, 0, why, sizeof why);
        if (bad)
            return rec_fail(x, MS_EFEATURE, rec, "%s", bad);
        if ((rc = put_simple(x, MX_STATIC_DATA_END, NULL, 0)))
            return rc;
    }
    x->mode = MODE_AFTER;
    return put_simple(x, MX_END, NULL, 0);
}

/* Before a libxl record goes out: after a CHECKPOINT its records belong to
 * the checkpoint; otherwise the libxc stream ends first. */
static int enter_libxl(mx_exp *x, const ms_record *rec, const char *name)
{
    int rc = start(x);
    if (rc || (rc = flush_batch(x, rec)))
        return rc;
    if (!x->libxl)
        return rec_fail(x, MS_EFEATURE, rec,
                        "%s is a libxl record, and the export writes a bare libxc stream", name);
    if (x->libxc_started && x->mode == MODE_LIBXC) {
        if (x->last_ckpt) {
            x->mode = MODE_CKPT;
        } else if ((rc = end_libxc(x, rec))) {
            return rc;
        }
    }
    return 0;
}

/* A libxc record through the rules, with STATIC_DATA_END first where a
 * version 3 stream needs one the input did not have. */
static int libxc_rules(mx_exp *x, const ms_record *rec, uint32_t type, const uint8_t *p,
                       uint32_t len)
{
    char why[256];
    const char *bad;
    int rc;
    if (mx_rules_need_static_end(&x->rules, type)) {
        if ((bad = mx_rules_next(&x->rules, MX_STATIC_DATA_END, NULL, 0, why, sizeof why)))
            return rec_fail(x, MS_EFEATURE, rec, "%s", bad);
        if ((rc = put_simple(x, MX_STATIC_DATA_END, NULL, 0)))
            return rc;
    }
    if ((bad = mx_rules_next(&x->rules, type, p, len, why, sizeof why)))
        return rec_fail(x, MS_EFEATURE, rec, "%s cannot go out here: %s",
                        mx_rec_name(MX_SIDE_LIBXC, type), bad);
    x->last_ckpt = type == MX_CHECKPOINT;
    return 0;
}

/* ------------------------------------------------------------- pages */

/* The slot of @pfn in the batch's set: where it is, or the empty one where
 * it would go. */
static size_t batch_slot(const mx_exp *x, uint64_t pfn)
{
    size_t m = x->in_batch_cap - 1, i = (size_t)(pfn * 0x9e3779b97f4a7c15ull >> 20) & m;
    while (x->in_batch[i] != UINT64_MAX && x->in_batch[i] != pfn)
        i = (i + 1) & m;
    return i;
}

static int flush_batch(mx_exp *x, const ms_record *rec)
{
    if (!x->nbatch)
        return 0;
    int rc = enter_libxc(x, rec);
    uint64_t len = 8 + 8ull * x->nbatch + (uint64_t)MX_PAGE_SIZE * x->ndata;
    if (rc || (rc = libxc_rules(x, rec, MX_PAGE_DATA, NULL, (uint32_t)len)))
        return rc;
    uint8_t h[8] = {0};
    msi_put32(h, x->nbatch);
    struct iovec v[3] = {{.iov_base = h, .iov_len = 8},
                         {.iov_base = x->batch, .iov_len = 8ull * x->nbatch},
                         {.iov_base = x->data, .iov_len = (size_t)MX_PAGE_SIZE * x->ndata}};
    rc = put_record(x, MX_PAGE_DATA, v, x->ndata ? 3 : 2);
    x->st->page_data++;
    /* Emptied whole: taking the pfns out one by one left later ones of a
     * probe chain behind an empty slot, unfound, until no slot was empty
     * and batch_slot() looped for ever (a FILL run sent twice did it). The
     * set has 2 slots per pfn of a batch, so this costs what the batch
     * did. */
    memset(x->in_batch, 0xff, x->in_batch_cap * sizeof *x->in_batch);
    x->nbatch = x->ndata = 0;
    return rc;
}

/* One Xen page: pfn, its state, and its bytes (DATA, FILL) or NULL. */
static int add_page(mx_exp *x, const ms_record *rec, uint64_t pfn, uint8_t state,
                    const uint8_t *bytes)
{
    unsigned t = mx_types_get(x->kept, pfn), type;
    const char *clash = NULL;
    if (state == MS_PAGE_DISCARDED) {
        type = t ? t : MX_PT_XTAB;
        if (type != MX_PT_XTAB && type != MX_PT_BROKEN)
            clash = "a DISCARDED page";
    } else {
        type = t ? t : MX_PT_NOTAB;
        if (type == MX_PT_BROKEN)
            clash = state == MS_PAGE_ZERO ? "a ZERO page" : "a page with data";
        else if (type == MX_PT_XALLOC && state != MS_PAGE_ZERO)
            clash = "a page with data (XALLOC pages have none: zero)";
    }
    if (clash)
        return rec_fail(x, MS_EFEATURE, rec,
                        "pfn 0x%llx: \"" MX_PATH_PAGE_TYPES "\" instance %llu gives it page type "
                        "0x%x, but it is %s",
                        (unsigned long long)pfn, (unsigned long long)(pfn >> MX_TYPES_SHIFT), type,
                        clash);
    if (x->nbatch == x->o.batch_pfns || x->in_batch[batch_slot(x, pfn)] == pfn) {
        int rc = flush_batch(x, rec);
        if (rc)
            return rc;
    }
    x->in_batch[batch_slot(x, pfn)] = pfn;
    msi_put64(x->batch + 8 * (size_t)x->nbatch++, (uint64_t)type << MX_TYPE_SHIFT | pfn);
    x->st->pages[type]++;
    if (mx_page_type_has_data(type)) {
        uint8_t *d = x->data + (size_t)x->ndata++ * MX_PAGE_SIZE;
        if (bytes)
            memcpy(d, bytes, MX_PAGE_SIZE);
        else
            memset(d, 0, MX_PAGE_SIZE);
    }
    return 0;
}

static int write_pages(mx_exp *x, const ms_record *rec)
{
    const ms_pages *pg = &rec->pages;
    const ms_region *g = pg->region;
    uint64_t sub = g->page_size / MX_PAGE_SIZE, base = g->gpa / MX_PAGE_SIZE;
    const uint8_t *data = pg->data;
    for (size_t e = 0; e < pg->extent_count; e++) {
        const ms_extent *ex = &pg->extents[e];
        const uint8_t *fill = NULL;
        switch (ex->state) {
        case MS_PAGE_IN_PLACE:
            return rec_fail(x, MS_EFEATURE, rec,
                            "region %u '%s' pages %llu..%llu are IN_PLACE: Xen's stream (4.17, "
                            "libxc format revision 3) has no record for memory left in place",
                            g->id, g->name, (unsigned long long)ex->first,
                            (unsigned long long)(ex->first + ex->count - 1));
        case MS_PAGE_FILL:
            for (uint32_t i = 0; i < MX_PAGE_SIZE; i += 8)
                msi_put64(x->fill + i, ex->arg);
            fill = x->fill;
            break;
        case MS_PAGE_DATA:
        case MS_PAGE_ZERO:
        case MS_PAGE_DISCARDED:
            break;
        default:
            return rec_fail(x, MS_EFEATURE, rec, "region %u '%s' page %llu: page state %u unknown",
                            g->id, g->name, (unsigned long long)ex->first, ex->state);
        }
        /* An entry of 8 bytes per Xen page, and its 4 KiB but for
         * DISCARDED pages, a record header per batch (16 bytes, and the
         * count's 8 rounded): checked against max_output first. */
        uint64_t pages = (uint64_t)ex->count * sub, done = x->st->bytes_written + x->olen;
        uint64_t item = 8 + (ex->state == MS_PAGE_DISCARDED ? 0 : MX_PAGE_SIZE) + 1;
        if (!msi_output_fits(done, x->o.max_output, pages, item, 64)) {
            uint64_t total = msi_output_total(done, pages, item, 0);
            double shown;
            const char *unit = msi_mib_gib(total, &shown);
            x->st->output_full = true;
            return rec_fail(x, MS_ELIMIT, rec,
                            "region %u '%s' pages %llu..%llu: the output would take %llu bytes "
                            "(%.1f %s) with these %llu Xen pages, more than its limit of %llu "
                            "bytes (max_output)",
                            g->id, g->name, (unsigned long long)ex->first,
                            (unsigned long long)(ex->first + ex->count - 1),
                            (unsigned long long)total, shown, unit, (unsigned long long)pages,
                            (unsigned long long)x->o.max_output);
        }
        for (uint64_t i = 0; i < ex->count; i++) {
            for (uint64_t j = 0; j < sub; j++) {
                uint64_t pfn = base + (ex->first + i) * sub + j;
                const uint8_t *bytes = ex->state == MS_PAGE_DATA ? data : fill;
                int rc = add_page(x, rec, pfn, ex->state, bytes);
                if (rc)
                    return rc;
                if (ex->state == MS_PAGE_DATA)
                    data += MX_PAGE_SIZE;
            }
        }
    }
    return 0;
}

/* Regions map to pfns through their guest-physical address (a region ends
 * below 2^64, so its pfns are below 2^52, as PAGE_DATA needs). */
static int check_regions(mx_exp *x, const ms_record *rec)
{
    for (size_t k = 0; k < rec->region_count; k++) {
        const ms_region *g = &rec->regions[k];
        if (!g->has_gpa)
            return rec_fail(x, MS_EFEATURE, rec,
                            "region %u '%s' has no guest-physical address: Xen's PAGE_DATA names "
                            "guest frames (pfns)",
                            g->id, g->name);
    }
    return 0;
}

/* ------------------------------------------------------------ devices */

/* The "raw" byte string of a state map: 1 with a view, 0 without one,
 * -1 (with @why) when the state is not a map or "raw" no byte string. */
static int find_raw(const ms_device *d, const uint8_t **raw, size_t *len, const char **why)
{
    size_t at;
    int found = msi_cbor_find_text_key(d->state, d->state_size, "raw", &at, why);
    if (found == -2)
        *why = "its state map has \"raw\" twice";
    if (found <= 0)
        return found < 0 ? -1 : 0;
    msi_cbor_in in;
    msi_cbor_tok v;
    msi_cbor_in_init(&in, d->state, d->state_size);
    in.pos = at;
    if (msi_cbor_next(&in, &v) || v.kind != MSI_CBOR_BYTES) {
        *why = "its \"raw\" is not a byte string";
        return -1;
    }
    *raw = v.str;
    *len = v.len;
    return 1;
}

/* A block's page types, as the importer wrote them: ascending pfns of the
 * block (its instance), kept types, no reserved bit. */
static int load_page_types(mx_exp *x, const ms_record *rec, const uint8_t *raw, size_t len)
{
    uint64_t block = rec->device.instance;
    if (len % 8)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_PAGE_TYPES "\": %zu raw bytes are not pfn entries (8 bytes "
                        "each)",
                        len);
    size_t n = len / 8;
    if (n > MX_TYPES_BLOCK)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_PAGE_TYPES "\": %zu entries for a block of %u pfns", n,
                        MX_TYPES_BLOCK);
    if (n > x->entries_cap) {
        uint64_t *e = msi_realloc(x->alloc, x->entries, n * sizeof *e);
        if (!e)
            return rec_fail(x, MS_ENOMEM, rec, "out of memory");
        x->entries = e;
        x->entries_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t e = msi_get64(raw + 8 * i), pfn = e & MX_PFN_MASK;
        unsigned t = (unsigned)(e >> MX_TYPE_SHIFT);
        if (!mx_page_type_known(t) || !mx_types_kept(t) || (e & MX_PFN_RESERVED) ||
            pfn >> MX_TYPES_SHIFT != block || (i && pfn <= (x->entries[i - 1] & MX_PFN_MASK)))
            return rec_fail(x, MS_EFEATURE, rec,
                            "\"" MX_PATH_PAGE_TYPES "\" instance %llu: entry %zu (0x%016llx) is "
                            "not a page table, XALLOC or BROKEN entry above the one before in "
                            "pfns 0x%llx to 0x%llx",
                            (unsigned long long)block, i, (unsigned long long)e,
                            (unsigned long long)(block << MX_TYPES_SHIFT),
                            (unsigned long long)(((block + 1) << MX_TYPES_SHIFT) - 1));
        x->entries[i] = e;
    }
    int rc = mx_types_replace(x->kept, block, x->entries, n);
    if (rc)
        return rec_fail(x, rc, rec,
                        rc == MS_ELIMIT ? "more than %u pfns with page types"
                                        : "out of memory keeping %u page types",
                        MX_TYPES_MAX);
    return 0;
}

static int load_header(mx_exp *x, const ms_record *rec, const uint8_t *raw, size_t len)
{
    if (x->libxc_started)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_HEADER "\" comes after the libxc stream's start");
    if (len != sizeof x->hdr_raw || mx_be64(raw) != MX_IHDR_MARKER ||
        mx_be32(raw + 8) != MX_IHDR_ID)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_HEADER "\": the raw bytes are not a libxc image header and "
                        "domain header (40 bytes, marker and \"XENF\")");
    uint32_t version = mx_be32(raw + 12), type = msi_get32(raw + MX_IHDR_SIZE);
    if ((version != 2 && version != 3) || (mx_be16(raw + 16) & MX_IHDR_OPT_BIG_ENDIAN) ||
        !mx_domain_name(type) || msi_get16(raw + MX_IHDR_SIZE + 4) != MX_PAGE_SHIFT)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_HEADER "\": version %u, %s, domain type %u, page_shift %u: "
                        "the export writes versions 2 and 3, little-endian, x86 PV or HVM, "
                        "4096-byte pages",
                        version, mx_be16(raw + 16) & 1 ? "big-endian" : "little-endian", type,
                        msi_get16(raw + MX_IHDR_SIZE + 4));
    memcpy(x->hdr_raw, raw, len);
    x->have_hdr = true;
    return 0;
}

static int load_libxl_header(mx_exp *x, const ms_record *rec, const uint8_t *raw, size_t len)
{
    if (x->started)
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_LIBXL_HEADER "\" comes after the stream's start");
    if (len != MX_LIBXL_HEADER_SIZE || mx_be64(raw) != MX_LIBXL_IDENT ||
        mx_be32(raw + 8) != MX_LIBXL_VERSION || (mx_be32(raw + 12) & MX_LIBXL_OPT_BIG_ENDIAN))
        return rec_fail(x, MS_EFEATURE, rec,
                        "\"" MX_PATH_LIBXL_HEADER "\": the raw bytes are not a little-endian libxl "
                        "header of version 2");
    memcpy(x->libxl_raw, raw, len);
    x->have_libxl_hdr = true;
    return 0;
}

static bool dropped(const mx_path_rec *pr)
{
    if (!pr->ri)
        return true; /* an unknown optional record */
    return pr->side == MX_SIDE_LIBXC &&
           (pr->type == MX_TOOLSTACK || pr->type == MX_CHECKPOINT_DIRTY_PFN_LIST);
}

static int write_device(mx_exp *x, const ms_record *rec)
{
    const ms_device *d = &rec->device;
    mx_path_rec pr;
    const uint8_t *raw = NULL;
    size_t len = 0;
    const char *why = NULL;
    int rc;
    if (mx_rec_from_path(d->path, &pr))
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%s' instance %u is not a Xen record (docs/XEN.md section 4 lists "
                        "the paths the export writes)",
                        d->path, d->instance);
    int found = find_raw(d, &raw, &len, &why);
    if (found <= 0)
        return rec_fail(x, MS_EFEATURE, rec, "device '%s' instance %u: %s", d->path, d->instance,
                        found < 0 ? why : "the state has no \"raw\" bytes");
    switch (pr.kind) {
    case MX_PK_HEADER:
        return load_header(x, rec, raw, len);
    case MX_PK_LIBXL_HEADER:
        return load_libxl_header(x, rec, raw, len);
    case MX_PK_PAGE_TYPES:
        return (rc = flush_batch(x, rec)) ? rc : load_page_types(x, rec, raw, len);
    default:
        break;
    }
    const char *name = pr.ri ? pr.ri->name : "an optional record";
    if (len > MX_REC_LENGTH_MAX)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%s': %zu raw bytes, more than Xen reads in a record (128 MiB)",
                        d->path, len);
    if (x->o.verifiable && dropped(&pr)) {
        x->st->dropped++;
        return 0;
    }
    char buf[256];
    if ((why = mx_rec_matches(&pr, d->instance, raw, (uint32_t)len, buf, sizeof buf)))
        return rec_fail(x, MS_EFEATURE, rec, "device '%s' instance %u: %s", d->path, d->instance,
                        why);
    if (pr.side == MX_SIDE_LIBXC) {
        if ((rc = flush_batch(x, rec)) || (rc = enter_libxc(x, rec)))
            return rc;
    } else if ((rc = enter_libxl(x, rec, name))) {
        return rc;
    }
    if (pr.ri &&
        (why = mx_rec_check(pr.ri, x->version, x->domain, raw, (uint32_t)len, buf, sizeof buf)))
        return rec_fail(x, MS_EFEATURE, rec, "device '%s' (%s): %s", d->path, name, why);
    if (pr.side == MX_SIDE_LIBXC && pr.ri &&
        (rc = libxc_rules(x, rec, pr.type, raw, (uint32_t)len)))
        return rc;
    if (pr.side == MX_SIDE_LIBXL && pr.type == MX_XL_CHECKPOINT_END) {
        if (x->mode != MODE_CKPT)
            return rec_fail(x, MS_EFEATURE, rec,
                            "CHECKPOINT_END outside a checkpoint (no libxc CHECKPOINT before it)");
        x->mode = MODE_LIBXC;
        x->last_ckpt = false;
    }
    if (pr.side == MX_SIDE_LIBXC && !pr.ri)
        x->last_ckpt = false;
    if (len > x->body_cap) {
        uint8_t *b = msi_realloc(x->alloc, x->body, len);
        if (!b)
            return rec_fail(x, MS_ENOMEM, rec, "out of memory");
        x->body = b;
        x->body_cap = len;
    }
    if (len)
        memcpy(x->body, raw, len);
    /* "Padding and reserved fields are set to zero on save." */
    mx_rec_zero_reserved(pr.ri, x->body, (uint32_t)len);
    return put_simple(x, pr.type, x->body, len);
}

/* ------------------------------------------------------------------ driver */

/* After the input's END: the pages held, the libxc END (and CHECKPOINT_END
 * when a checkpoint was open), the libxl END. */
static int finish(mx_exp *x, const ms_record *rec)
{
    int rc;
    if ((rc = flush_batch(x, rec)))
        return rc;
    if (!x->libxc_started && (rc = enter_libxc(x, rec)))
        return rc;
    if (x->libxl) {
        if (x->mode == MODE_LIBXC && x->last_ckpt)
            x->mode = MODE_CKPT;
        if (x->mode == MODE_CKPT && (rc = put_simple(x, MX_XL_CHECKPOINT_END, NULL, 0)))
            return rc;
        if (x->mode != MODE_AFTER && (rc = end_libxc(x, rec)))
            return rc;
        rc = put_simple(x, MX_XL_END, NULL, 0);
    } else {
        rc = end_libxc(x, rec);
    }
    return rc ? rc : flush_out(x);
}

static int reader_fail(mx_exp *x, int rc)
{
    int st = ms_reader_status(x->r);
    const char *msg = ms_reader_errmsg(x->r);
    if (!st)
        st = rc;
    if (x->err.status)
        return x->err.status;
    x->err.status = st;
    x->err.offset = ms_reader_error_offset(x->r);
    x->err_record = ms_reader_error_record(x->r);
    snprintf(x->err.msg, sizeof x->err.msg, "%s", msg && *msg ? msg : ms_strerror(st));
    return st;
}

static int run(mx_exp *x)
{
    const ms_header *hdr;
    int rc = ms_reader_header(x->r, &hdr);
    if (rc)
        return reader_fail(x, rc);
    const ms_record *rec, *last = NULL;
    int more;
    while ((more = ms_reader_next(x->r, &rec)) > 0) {
        x->st->records++;
        last = rec;
        switch (rec->type) {
        case MS_REC_REGIONS:
            rc = check_regions(x, rec);
            break;
        case MS_REC_PAGES:
            rc = write_pages(x, rec);
            break;
        case MS_REC_ROUND:
            /* Xen marks no rounds (a page sent again replaces its copy),
             * but its saver ends a batch with each iteration. */
            rc = flush_batch(x, rec);
            break;
        case MS_REC_DEVICE:
            rc = write_device(x, rec);
            break;
        case MS_REC_OVERLAY:
            rc = rec_fail(x, MS_EFEATURE, rec,
                          "overlay pages (first at gfn 0x%llx) have no counterpart in Xen's "
                          "stream",
                          rec->overlay_count ? (unsigned long long)rec->overlays[0].gfn : 0ull);
            break;
        default:
            /* INFO, END (after the loop), unknown optional records of a
             * later format. */
            rc = 0;
            break;
        }
        if (rc)
            return rc;
    }
    if (more < 0)
        return reader_fail(x, more);
    x->st->bytes_read = ms_reader_offset(x->r);
    if ((rc = ms_reader_expect_eof(x->r)))
        return reader_fail(x, rc);
    return finish(x, last);
}

/* ------------------------------------------------------------ the options */

void ms_xen_export_options_init(ms_xen_export_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->domain_type = MS_XEN_DOMAIN_HVM;
    opts->batch_pfns = DEF_BATCH;
    opts->max_output = MS_MAX_OUTPUT_DEFAULT;
}

/* The caller's options over the defaults; NULL or why they cannot be
 * taken (@o then holds the defaults). */
static const char *take_options(ms_xen_export_options *o, ms_reader_options *ro,
                                const ms_xen_export_options *in)
{
    ms_xen_export_options_init(o);
    ms_reader_options_init(ro);
    const char *why = NULL;
    if (in)
        why = msi_struct_take(o, MSI_STRUCT_END(ms_xen_export_options, max_output), in,
                              in->struct_size);
    if (!why && o->reader &&
        (why = msi_struct_take(ro, MSI_READER_OPTIONS_END, o->reader, o->reader->struct_size)))
        why = "reader options: newer than this library, or never initialized";
    if (!o->domain_type)
        o->domain_type = MS_XEN_DOMAIN_HVM;
    if (!o->batch_pfns)
        o->batch_pfns = DEF_BATCH;
    if (!o->max_output)
        o->max_output = MS_MAX_OUTPUT_DEFAULT;
    if (!why && o->format > MS_XEN_FORMAT_LIBXC)
        why = "format must be MS_XEN_FORMAT_AUTO, _LIBXL or _LIBXC";
    if (!why && !mx_domain_name(o->domain_type))
        why = "domain_type must be MS_XEN_DOMAIN_PV or MS_XEN_DOMAIN_HVM";
    if (!why && o->batch_pfns > MAX_BATCH)
        why = "batch_pfns must be 1 to 16384";
    if (why) {
        ms_xen_export_options_init(o);
        ms_reader_options_init(ro);
    }
    o->reader = NULL;
    ro->struct_size = sizeof *ro;
    ro->on_problem = NULL; /* one failure stops the export */
    return why;
}

static void exp_free(mx_exp *x)
{
    if (!x->r_borrowed)
        ms_reader_free(x->r);
    msi_free(x->alloc, x->obuf);
    msi_free(x->alloc, x->batch);
    msi_free(x->alloc, x->data);
    msi_free(x->alloc, x->fill);
    msi_free(x->alloc, x->in_batch);
    msi_free(x->alloc, x->entries);
    mx_types_free(x->kept);
    msi_free(x->alloc, x->body);
}

/* Runs @x, set up with its options, over @in (or x->r, the caller's
 * reader, when set) and @out. */
static int exp_run(mx_exp *x, const ms_reader_options *ro, ms_read_fn in, void *in_ctx,
                   ms_write_fn out, void *out_ctx)
{
    x->err_record = -1;
    if (!in && !x->r)
        return mx_fail(&x->err, MS_EINVAL, 0, "input", "no read callback");
    if (!out)
        return mx_fail(&x->err, MS_EINVAL, 0, "output", "no write callback");
    x->out = out;
    x->out_ctx = out_ctx;
    if (!(x->obuf = msi_alloc(x->alloc, OUT_CAP)) ||
        !(x->batch = msi_alloc(x->alloc, (size_t)x->o.batch_pfns * 8)) ||
        !(x->data = msi_alloc(x->alloc, (size_t)x->o.batch_pfns * MX_PAGE_SIZE)) ||
        !(x->fill = msi_alloc(x->alloc, MX_PAGE_SIZE)) || !(x->kept = mx_types_new(x->alloc)) ||
        (!x->r && !(x->r = ms_reader_new(ro, in, in_ctx))))
        return mx_fail(&x->err, MS_ENOMEM, 0, "export", "out of memory");
    x->in_batch_cap = 2;
    while (x->in_batch_cap < 2 * (size_t)x->o.batch_pfns)
        x->in_batch_cap *= 2;
    if (!(x->in_batch = msi_alloc(x->alloc, x->in_batch_cap * sizeof *x->in_batch)))
        return mx_fail(&x->err, MS_ENOMEM, 0, "export", "out of memory");
    memset(x->in_batch, 0xff, x->in_batch_cap * sizeof *x->in_batch);
    int rc = run(x);
    if (!x->st->bytes_read)
        x->st->bytes_read = ms_reader_offset(x->r);
    return rc ? (x->err.status ? x->err.status : rc) : 0;
}

int mx_export(const ms_xen_export_options *o, ms_read_fn in, void *in_ctx, ms_write_fn out,
              void *out_ctx, ms_xen_export_stats *stats, char *err, size_t err_size)
{
    ms_xen_export_stats local;
    mx_exp x;
    ms_reader_options ro;
    memset(&x, 0, sizeof x);
    memset(&local, 0, sizeof local);
    x.st = stats ? stats : &local;
    memset(x.st, 0, sizeof *x.st);
    const char *why = take_options(&x.o, &ro, o);
    ms_allocator a;
    msi_allocator_set(&a, &x.o.allocator);
    x.alloc = &a;
    int rc = why ? mx_fail(&x.err, MS_EINVAL, 0, "export options", "%s", why)
                 : exp_run(&x, &ro, in, in_ctx, out, out_ctx);
    if (rc && err && err_size)
        snprintf(err, err_size, "%s", x.err.msg);
    exp_free(&x);
    return rc;
}

/* ------------------------------------------------------------ public API */

struct ms_xen_export {
    ms_xen_export_options opts;
    ms_reader_options ropts;
    ms_allocator alloc;
    mx_error err;
    int64_t err_record;
    bool ran;
    ms_xen_export_stats stats;
};

ms_xen_export *ms_xen_export_new(const ms_xen_export_options *opts)
{
    ms_xen_export_options o;
    ms_reader_options ro;
    const char *why = take_options(&o, &ro, opts);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_xen_export *x = msi_calloc(&a, 1, sizeof *x);
    if (!x)
        return NULL;
    x->alloc = a;
    x->opts = o;
    x->ropts = ro;
    x->err_record = -1;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        x->err.status = MS_EINVAL;
        snprintf(x->err.msg, sizeof x->err.msg, "invalid export options: %s", why);
    }
    return x;
}

void ms_xen_export_free(ms_xen_export *x)
{
    if (!x)
        return;
    ms_allocator a = x->alloc;
    msi_free(&a, x);
}

/* Runs over @reader, the caller's, or else a reader of @in of this
 * library's format. */
static int run_public(ms_xen_export *exp, ms_reader *reader, ms_read_fn in, void *in_ctx,
                      ms_write_fn out, void *out_ctx)
{
    if (!exp)
        return MS_EINVAL;
    if (exp->ran || exp->err.status)
        return exp->err.status ? exp->err.status : MS_ESTATE;
    exp->ran = true;
    mx_exp x;
    memset(&x, 0, sizeof x);
    x.o = exp->opts;
    x.alloc = &exp->alloc;
    x.st = &exp->stats;
    x.r = reader;
    x.r_borrowed = reader != NULL;
    int rc = exp_run(&x, &exp->ropts, in, in_ctx, out, out_ctx);
    if (rc) {
        exp->err = x.err;
        exp->err.status = rc;
        exp->err_record = x.err_record;
    }
    exp_free(&x);
    return rc;
}

int ms_xen_export_run(ms_xen_export *exp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                      void *out_ctx)
{
    return run_public(exp, NULL, in, in_ctx, out, out_ctx);
}

int ms_xen_export_run_reader(ms_xen_export *exp, ms_reader *r, ms_write_fn out, void *out_ctx)
{
    if (exp && !r && !exp->ran && !exp->err.status) {
        exp->ran = true;
        return mx_fail(&exp->err, MS_EINVAL, 0, "input", "no reader");
    }
    return run_public(exp, r, NULL, NULL, out, out_ctx);
}

int ms_xen_export_run_fd(ms_xen_export *exp, int in_fd, int out_fd)
{
    if (!exp)
        return MS_EINVAL;
    if (in_fd < 0 || out_fd < 0) {
        exp->ran = true;
        return mx_fail(&exp->err, MS_EINVAL, 0, "input", "bad file descriptor");
    }
    return ms_xen_export_run(exp, msi_fd_read, msi_fd_ctx(in_fd), msi_fd_writev,
                             msi_fd_ctx(out_fd));
}

const ms_xen_export_stats *ms_xen_export_get_stats(const ms_xen_export *exp)
{
    return exp ? &exp->stats : NULL;
}

int ms_xen_export_status(const ms_xen_export *exp)
{
    return exp ? exp->err.status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_xen_export_errmsg(const ms_xen_export *exp)
{
    return exp ? exp->err.msg : "out of memory creating the exporter";
}

uint64_t ms_xen_export_error_offset(const ms_xen_export *exp)
{
    return exp ? exp->err.offset : 0;
}

int64_t ms_xen_export_error_record(const ms_xen_export *exp)
{
    return exp ? exp->err_record : -1;
}
