/*
 * The QEMU exporter (docs/QEMU.md section 7): reads a libmigstream stream
 * through the public reader and writes QEMU's stream, QEVM version 3, as
 * QEMU 7.2's loader reads it (migration/savevm.c qemu_loadvm_state,
 * migration/ram.c ram_load_precopy): file header, CONFIGURATION (with the
 * subsections the import kept), the "ram" section as START (block table),
 * PARTs (pages) and END, the other iterable sections as START, PARTs and
 * END, one FULL section per other device, EOF, the JSON trailer. Pages
 * stream through; device state is held until END, since QEMU's devices must
 * load after RAM.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cbor_codec.h"
#include "common/fdio.h"
#include "format/options.h"
#include "format/parts.h"
#include "migstream/qemu.h"
#include "migstream/reader.h"
#include "common/util.h"
#include "qemu/input.h"
#include "qemu/wire.h"

#define DEF_DEVICES (64ull << 20)
#define OUT_CAP (256u << 10)
/* The DEVICE that carries CONFIGURATION's subsections (docs/QEMU.md
 * section 3.3). */
#define CONFIG_PATH MQ_CONFIG_NAME
#define CONFIG_MAX 4096u /* three subsections: 256 capability names fit */

/* Not 0: QEMU's loader finds the handler of a PART or END by the section id
 * its START gave it, and every handler not yet loaded holds 0, so a PART of
 * section 0 goes to the first handler registered ("timer"). Devices follow
 * from RAM_SECTION_ID + 1. */
#define RAM_SECTION_ID 1u

/* A device instance held until END: the last record's bytes, at the place
 * of the instance's first record. An iterable section (the state has
 * "parts") keeps the length of each part: START, PARTs, END. */
typedef struct held_device {
    char *path;
    uint32_t instance;
    uint32_t version;
    uint8_t *raw;
    size_t raw_len;
    uint64_t *parts;
    size_t nparts;
} held_device;

struct ms_qemu_export {
    ms_qemu_export_options opts;
    ms_reader_options ropts; /* the caller's, copied; or the defaults */
    ms_allocator alloc;
    char *machine_opt;
    int status;
    char msg[512];
    uint64_t err_offset;
    int64_t err_record;
    bool ran;
    ms_qemu_export_stats stats;

    ms_reader *r;
    bool r_borrowed; /* the caller's (ms_qemu_export_run_reader()) */
    ms_write_fn out;
    void *out_ctx;
    uint8_t *obuf;
    size_t olen;

    bool ram_started;  /* header, CONFIGURATION and the ram START are out */
    bool part_open;    /* a PART of "ram" is open */
    size_t last_block; /* region index of the last page item in the part */
    uint8_t *fill;     /* one QEMU page, for FILL pages */
    uint8_t *config;   /* CONFIGURATION's subsections, as written */
    size_t config_len;
    bool ignore_shared; /* x-ignore-shared: MEM_SIZE carries an address */

    held_device *dev;
    size_t ndev, dev_cap;
    uint64_t dev_bytes;
};

static int export_fail(ms_qemu_export *x, int status, uint64_t off, int64_t rec, const char *fmt,
                       ...)
    __attribute__((format(printf, 5, 6)));
static int export_fail(ms_qemu_export *x, int status, uint64_t off, int64_t rec, const char *fmt,
                       ...)
{
    if (x->status)
        return x->status;
    x->status = status;
    x->err_offset = off;
    x->err_record = rec;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
    return status;
}

/* "record 12 (PAGES) at offset 4567: " names the input record, after
 * "part 1 (b.mig), " in a migration in parts. */
static int rec_fail(ms_qemu_export *x, int status, const ms_record *rec, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rec_fail(ms_qemu_export *x, int status, const ms_record *rec, const char *fmt, ...)
{
    if (x->status)
        return x->status;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = ms_record_type_name(rec->type);
    char part[320];
    return export_fail(
        x, status, rec->offset, (int64_t)rec->index, "%srecord %llu (%s) at offset %llu: %s",
        msi_part_prefix(part, sizeof part, x->r, rec), (unsigned long long)rec->index,
        name ? name : "unknown type", (unsigned long long)rec->offset, what);
}

/* ------------------------------------------------------------------ output */

static int flush_out(ms_qemu_export *x)
{
    if (!x->olen)
        return 0;
    struct iovec iov = {.iov_base = x->obuf, .iov_len = x->olen};
    if (x->out(x->out_ctx, &iov, 1) < 0)
        return export_fail(x, MS_EIO, ms_reader_offset(x->r), -1,
                           "writing the QEMU stream failed after %llu bytes",
                           (unsigned long long)x->stats.bytes_written);
    x->stats.bytes_written += x->olen;
    x->olen = 0;
    return 0;
}

/* QEMU's stream is big-endian throughout (qemu_put_be32 ...). */
static int put(ms_qemu_export *x, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n) {
        if (x->olen == OUT_CAP && flush_out(x))
            return x->status;
        size_t k = OUT_CAP - x->olen < n ? OUT_CAP - x->olen : n;
        memcpy(x->obuf + x->olen, s, k);
        x->olen += k;
        s += k;
        n -= k;
    }
    return 0;
}

static int put_u8(ms_qemu_export *x, uint8_t v)
{
    return put(x, &v, 1);
}

static int put_be32(ms_qemu_export *x, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (24 - 8 * i));
    return put(x, b, 4);
}

static int put_be64(ms_qemu_export *x, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    return put(x, b, 8);
}

/* u8 length, then the bytes (block names, id strings); len <= 255. */
static int put_name(ms_qemu_export *x, const char *s)
{
    size_t n = strlen(s);
    int rc = put_u8(x, (uint8_t)n);
    return rc ? rc : put(x, s, n);
}

/* START or FULL header: type, section id, id string, instance, version. */
static int section_full_header(ms_qemu_export *x, uint8_t type, uint32_t id, const char *idstr,
                               uint32_t instance, uint32_t version)
{
    int rc;
    if ((rc = put_u8(x, type)) || (rc = put_be32(x, id)) || (rc = put_name(x, idstr)) ||
        (rc = put_be32(x, instance)) || (rc = put_be32(x, version)))
        return rc;
    return 0;
}

static int section_footer(ms_qemu_export *x, uint32_t id)
{
    int rc = put_u8(x, MQ_SEC_FOOTER);
    return rc ? rc : put_be32(x, id);
}

/* ------------------------------------------------------------------- RAM */

/* The file header, CONFIGURATION and the ram START: QEVM, version 3, the
 * machine type (vmstate_configuration: u32 length, name) and the
 * subsections the import kept (QEMU sends target-page-bits only where the
 * page is larger than the target's smallest, capabilities only with
 * x-ignore-shared, uuid only with validate-uuid), then the block table and
 * EOS (ram_save_setup). */
static int start_ram(ms_qemu_export *x, const ms_record *rec)
{
    size_t n = ms_reader_region_count(x->r);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const ms_region *g = ms_reader_region(x->r, i);
        if (msi_add_overflow(total, g->size, &total))
            return export_fail(x, MS_EFEATURE, rec ? rec->offset : ms_reader_offset(x->r),
                               rec ? (int64_t)rec->index : -1,
                               "the regions add up to more than 2^64 bytes");
    }
    int rc;
    if ((rc = put_be32(x, MQ_QEVM_MAGIC)) || (rc = put_be32(x, MQ_QEVM_VERSION)))
        return rc;
    if (x->stats.machine[0]) {
        uint32_t len = (uint32_t)strlen(x->stats.machine);
        if ((rc = put_u8(x, MQ_SEC_CONFIGURATION)) || (rc = put_be32(x, len)) ||
            (rc = put(x, x->stats.machine, len)) || (rc = put(x, x->config, x->config_len)))
            return rc;
    } else if (x->config_len) {
        return export_fail(x, MS_EFEATURE, rec ? rec->offset : ms_reader_offset(x->r),
                           rec ? (int64_t)rec->index : -1,
                           "the stream has CONFIGURATION subsections but no machine type (INFO "
                           "machine or --machine): QEMU's CONFIGURATION starts with it");
    }
    if ((rc = section_full_header(x, MQ_SEC_START, RAM_SECTION_ID, "ram", 0,
                                  MQ_RAM_SECTION_VERSION)) ||
        (rc = put_be64(x, total | MQ_RAM_FLAG_MEM_SIZE)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const ms_region *g = ms_reader_region(x->r, i);
        if ((rc = put_name(x, g->name)) || (rc = put_be64(x, g->size)))
            return rc;
        /* x-ignore-shared: the block's address in its memory region, which
         * QEMU's loader compares only for blocks it ignores (shared memory,
         * whose pages are not in the stream); the stream keeps none, and
         * main RAM backends sit at 0 (ROMs do not, but are not shared). */
        if (x->ignore_shared && (rc = put_be64(x, 0)))
            return rc;
    }
    if ((rc = put_be64(x, MQ_RAM_FLAG_EOS)) || (rc = section_footer(x, RAM_SECTION_ID)))
        return rc;
    x->stats.ram_blocks = (uint32_t)n;
    x->stats.ram_bytes = total;
    x->ram_started = true;
    return 0;
}

/* Ends the open PART: EOS, footer. */
static int close_part(ms_qemu_export *x)
{
    if (!x->part_open)
        return 0;
    x->part_open = false;
    int rc = put_be64(x, MQ_RAM_FLAG_EOS);
    return rc ? rc : section_footer(x, RAM_SECTION_ID);
}

/* Checks the regions a REGIONS record declared against what QEMU's block
 * table can hold. */
static int check_regions(ms_qemu_export *x, const ms_record *rec)
{
    if (x->ram_started)
        return rec_fail(x, MS_EFEATURE, rec,
                        "region %u '%s' is declared after the first page: QEMU's RAM block "
                        "table (MEM_SIZE) comes before every page",
                        rec->regions[0].id, rec->regions[0].name);
    size_t n = ms_reader_region_count(x->r);
    for (size_t k = 0; k < rec->region_count; k++) {
        const ms_region *g = &rec->regions[k];
        if (g->page_size < x->opts.page_size)
            return rec_fail(x, MS_EFEATURE, rec,
                            "region %u '%s' has %u-byte pages, smaller than QEMU's %u-byte "
                            "target page",
                            g->id, g->name, g->page_size, x->opts.page_size);
        for (size_t i = 0; i < n; i++) {
            const ms_region *o = ms_reader_region(x->r, i);
            if (o->id != g->id && strcmp(o->name, g->name) == 0)
                return rec_fail(x, MS_EFEATURE, rec,
                                "regions %u and %u are both named '%s': QEMU finds RAM blocks "
                                "by name",
                                o->id < g->id ? o->id : g->id, o->id < g->id ? g->id : o->id,
                                g->name);
        }
    }
    return 0;
}

static size_t region_index(const ms_qemu_export *x, const ms_region *g)
{
    size_t n = ms_reader_region_count(x->r);
    for (size_t i = 0; i < n; i++)
        if (ms_reader_region(x->r, i)->id == g->id)
            return i;
    return SIZE_MAX; /* not reached: the reader declared the region */
}

/* One page item: offset and flags, the block name unless CONTINUE. */
static int page_item(ms_qemu_export *x, size_t block, const ms_region *g, uint64_t offset,
                     uint64_t flags)
{
    int rc;
    if (!x->part_open) {
        if ((rc = put_u8(x, MQ_SEC_PART)) || (rc = put_be32(x, RAM_SECTION_ID)))
            return rc;
        x->part_open = true;
        x->last_block = SIZE_MAX;
        x->stats.ram_parts++;
    }
    /* Every part names its first block: QEMU's loader keeps the last block
     * across parts, but nothing promises that. */
    bool cont = block == x->last_block;
    if ((rc = put_be64(x, offset | flags | (cont ? MQ_RAM_FLAG_CONTINUE : 0))))
        return rc;
    if (!cont && (rc = put_name(x, g->name)))
        return rc;
    x->last_block = block;
    return 0;
}

static int write_pages(ms_qemu_export *x, const ms_record *rec)
{
    const ms_pages *pg = &rec->pages;
    const ms_region *g = pg->region;
    size_t block = region_index(x, g);
    uint32_t ps = x->opts.page_size;
    uint64_t sub = g->page_size / ps; /* QEMU pages per region page */
    const uint8_t *data = pg->data;
    int rc;
    for (size_t e = 0; e < pg->extent_count; e++) {
        const ms_extent *ex = &pg->extents[e];
        uint64_t qpages = (uint64_t)ex->count * sub;
        switch (ex->state) {
        case MS_PAGE_IN_PLACE:
            return rec_fail(x, MS_EFEATURE, rec,
                            "region %u '%s' pages %llu..%llu are IN_PLACE: their contents are "
                            "not in the stream, and a QEMU stream must carry every page it sends",
                            g->id, g->name, (unsigned long long)ex->first,
                            (unsigned long long)(ex->first + ex->count - 1));
        case MS_PAGE_DISCARDED:
            x->stats.discarded_pages += qpages;
            continue;
        case MS_PAGE_FILL:
            if (ex->arg) {
                for (uint32_t i = 0; i < ps; i += 8)
                    msi_put64(x->fill + i, ex->arg);
            }
            break;
        case MS_PAGE_DATA:
        case MS_PAGE_ZERO:
            break;
        default:
            return rec_fail(x, MS_EFEATURE, rec, "region %u '%s' page %llu: page state %u unknown",
                            g->id, g->name, (unsigned long long)ex->first, ex->state);
        }
        /* The items it takes, each of 8 bytes and the fill byte or the
         * page, and the block's name (1 + 255 bytes) at most once per
         * part: checked against max_output before any is written. */
        bool page = ex->state == MS_PAGE_DATA || ex->state == MS_PAGE_FILL;
        uint64_t item = 8 + (page ? ps : 1), done = x->stats.bytes_written + x->olen;
        if (!msi_output_fits(done, x->opts.max_output, qpages, item, 512)) {
            uint64_t total = msi_output_total(done, qpages, item, 0);
            double shown;
            const char *unit = msi_mib_gib(total, &shown);
            x->stats.output_full = true;
            return rec_fail(x, MS_ELIMIT, rec,
                            "region %u '%s' pages %llu..%llu: the output would take %llu bytes "
                            "(%.1f %s) with these %llu QEMU page items, more than its limit of "
                            "%llu bytes (max_output)",
                            g->id, g->name, (unsigned long long)ex->first,
                            (unsigned long long)(ex->first + ex->count - 1),
                            (unsigned long long)total, shown, unit, (unsigned long long)qpages,
                            (unsigned long long)x->opts.max_output);
        }
        for (uint64_t i = 0; i < ex->count; i++) {
            uint64_t base = (ex->first + i) * g->page_size;
            for (uint64_t j = 0; j < sub; j++) {
                uint64_t off = base + j * ps;
                if (ex->state == MS_PAGE_ZERO || (ex->state == MS_PAGE_FILL && !ex->arg)) {
                    /* ZERO: fill byte 0 (ram_handle_zero / save_zero_page). */
                    if ((rc = page_item(x, block, g, off, MQ_RAM_FLAG_ZERO)) ||
                        (rc = put_u8(x, 0)))
                        return rc;
                    x->stats.zero_pages++;
                } else {
                    const uint8_t *src = ex->state == MS_PAGE_FILL ? x->fill : data;
                    if ((rc = page_item(x, block, g, off, MQ_RAM_FLAG_PAGE)) ||
                        (rc = put(x, src, ps)))
                        return rc;
                    if (ex->state == MS_PAGE_DATA)
                        data += ps;
                    else
                        x->stats.fill_pages++;
                    x->stats.normal_pages++;
                }
            }
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- devices */

/* The "raw" byte string of a state map and its "parts" array, as the
 * importer writes them (docs/QEMU.md section 3.1). 1 with a view of raw (and
 * *parts_at the offset of the parts array in the state, or 0 without one),
 * 0 when the map has no "raw", negative when the state is not a map, "raw"
 * is not a byte string or "parts" not an array. */
static int find_raw(const ms_device *d, const uint8_t **raw, size_t *len, size_t *parts_at,
                    const char **why)
{
    size_t at;
    msi_cbor_in in;
    msi_cbor_tok v;
    *parts_at = 0;
    int found = msi_cbor_find_text_key(d->state, d->state_size, "raw", &at, why);
    if (found == -2)
        *why = "its state map has \"raw\" twice";
    if (found <= 0)
        return found < 0 ? -1 : 0;
    msi_cbor_in_init(&in, d->state, d->state_size);
    in.pos = at;
    if (msi_cbor_next(&in, &v) || v.kind != MSI_CBOR_BYTES) {
        *why = "its \"raw\" is not a byte string";
        return -1;
    }
    *raw = v.str;
    *len = v.len;
    int parts = msi_cbor_find_text_key(d->state, d->state_size, "parts", &at, why);
    if (parts == -2)
        *why = "its state map has \"parts\" twice";
    if (parts < 0)
        return -1;
    if (parts) {
        in.pos = at;
        if (msi_cbor_next(&in, &v) || v.kind != MSI_CBOR_ARRAY) {
            *why = "its \"parts\" is not an array";
            return -1;
        }
        *parts_at = at;
    }
    return 1;
}

/* Reads the "parts" array at @at into a new array: at least two lengths
 * (START's and END's), each an unsigned integer, adding up to @raw_len. */
static int read_parts(ms_qemu_export *x, const ms_record *rec, size_t at, size_t raw_len,
                      uint64_t **out, size_t *count)
{
    const ms_device *d = &rec->device;
    msi_cbor_in in;
    msi_cbor_tok t;
    msi_cbor_in_init(&in, d->state, d->state_size);
    in.pos = at;
    if (msi_cbor_next(&in, &t) || t.kind != MSI_CBOR_ARRAY)
        return rec_fail(x, MS_EFEATURE, rec, "device '%s' instance %u: \"parts\" is unreadable",
                        d->path, d->instance);
    /* Every element takes a byte: the count is bounded by the state. */
    if (t.u < 2 || t.u > d->state_size - in.pos)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%s' instance %u: \"parts\" lists %llu parts; an iterable "
                        "section has at least START and END",
                        d->path, d->instance, (unsigned long long)t.u);
    /* Held until END: within max_device_bytes before it is allocated. */
    if (t.u > x->opts.max_device_bytes / sizeof(uint64_t))
        return rec_fail(x, MS_ELIMIT, rec,
                        "device '%s' instance %u: %llu parts would take more than "
                        "max_device_bytes (%llu)",
                        d->path, d->instance, (unsigned long long)t.u,
                        (unsigned long long)x->opts.max_device_bytes);
    uint64_t *p = msi_alloc(&x->alloc, (size_t)t.u * sizeof *p);
    if (!p)
        return rec_fail(x, MS_ENOMEM, rec, "out of memory holding device '%s'", d->path);
    uint64_t sum = 0;
    for (size_t i = 0; i < t.u; i++) {
        msi_cbor_tok v;
        if (msi_cbor_next(&in, &v) || v.kind != MSI_CBOR_UINT || v.u > raw_len - sum) {
            msi_free(&x->alloc, p);
            return rec_fail(x, MS_EFEATURE, rec,
                            "device '%s' instance %u: part %zu of \"parts\" is not a length "
                            "within the %zu \"raw\" bytes",
                            d->path, d->instance, i, raw_len);
        }
        p[i] = v.u;
        sum += v.u;
    }
    if (sum != raw_len) {
        msi_free(&x->alloc, p);
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%s' instance %u: \"parts\" add up to %llu bytes, \"raw\" "
                        "holds %zu",
                        d->path, d->instance, (unsigned long long)sum, raw_len);
    }
    *out = p;
    *count = (size_t)t.u;
    return 0;
}

/* Whether the @n bytes at @p are @name. */
static bool is_name(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(p, name, n) == 0;
}

/*
 * The DEVICE "configuration": CONFIGURATION's subsections as QEMU sent them
 * (docs/QEMU.md section 3.3). They go out after the machine type, so they
 * must come before the first page. Each is checked against what the export
 * writes: target-page-bits must match the page size; mapped-ram is left out
 * of the capabilities (the export writes no mapped-ram layout, so the
 * destination runs without it); x-ignore-shared makes MEM_SIZE carry
 * addresses.
 */
static int hold_config(ms_qemu_export *x, const ms_record *rec, const uint8_t *raw, size_t len)
{
    if (x->ram_started)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '" CONFIG_PATH "' (QEMU's CONFIGURATION subsections) comes after "
                        "the first page, but QEMU's CONFIGURATION precedes the RAM section");
    if (len > CONFIG_MAX)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '" CONFIG_PATH "': %zu bytes of subsections, more than the %u "
                        "QEMU's three can take",
                        len, CONFIG_MAX);
    uint8_t *out = msi_alloc(&x->alloc, len ? len : 1);
    if (!out)
        return rec_fail(x, MS_ENOMEM, rec, "out of memory holding device '" CONFIG_PATH "'");
    size_t pos = 0, n = 0;
    bool ignore_shared = false;
    const char *bad = NULL;
#define NEED(k)                                                                                    \
    if ((k) > len - pos) {                                                                         \
        bad = "ends inside a subsection";                                                          \
        break;                                                                                     \
    }
    while (pos < len) {
        size_t start = pos;
        NEED(2)
        if (raw[pos] != MQ_SEC_SUBSECTION) {
            bad = "holds something other than a subsection (0x05)";
            break;
        }
        size_t nl = raw[pos + 1];
        NEED(2 + nl + 4)
        const char *name = (const char *)raw + pos + 2;
        pos += 2 + nl + 4;
        if (is_name(name, nl, MQ_SUB_TARGET_PAGE_BITS)) {
            NEED(4)
            uint32_t bits = mq_be32(raw + pos);
            pos += 4;
            if (bits > 16 || (1u << bits) != x->opts.page_size) {
                bad = "has target-page-bits other than the export's page size";
                break;
            }
        } else if (is_name(name, nl, MQ_SUB_UUID)) {
            NEED(16)
            pos += 16;
        } else if (is_name(name, nl, MQ_SUB_CAPABILITIES)) {
            /* Rewritten without mapped-ram; left out when nothing remains. */
            NEED(4)
            uint32_t count = mq_be32(raw + pos), kept = 0;
            size_t head = n;
            memcpy(out + n, raw + start, pos - start + 4);
            n += pos - start + 4;
            pos += 4;
            for (uint32_t i = 0; i < count && !bad; i++) {
                NEED(1)
                size_t cl = raw[pos];
                NEED(1 + cl)
                if (!is_name((const char *)raw + pos + 1, cl, MQ_CAP_MAPPED_RAM)) {
                    if (is_name((const char *)raw + pos + 1, cl, MQ_CAP_X_IGNORE_SHARED))
                        ignore_shared = true;
                    memcpy(out + n, raw + pos, 1 + cl);
                    n += 1 + cl;
                    kept++;
                }
                pos += 1 + cl;
            }
            if (bad)
                break;
            if (!kept) {
                n = head;
            } else {
                size_t c = head + 2 + nl + 4;
                out[c] = (uint8_t)(kept >> 24);
                out[c + 1] = (uint8_t)(kept >> 16);
                out[c + 2] = (uint8_t)(kept >> 8);
                out[c + 3] = (uint8_t)kept;
            }
            continue;
        } else {
            bad = "holds a subsection QEMU does not define for CONFIGURATION";
            break;
        }
        memcpy(out + n, raw + start, pos - start);
        n += pos - start;
    }
#undef NEED
    if (bad) {
        msi_free(&x->alloc, out);
        return rec_fail(x, MS_EFEATURE, rec, "device '" CONFIG_PATH "' at byte %zu of \"raw\": %s",
                        pos, bad);
    }
    msi_free(&x->alloc, x->config);
    x->config = out;
    x->config_len = n;
    x->ignore_shared = ignore_shared;
    return 0;
}

static int hold_device(ms_qemu_export *x, const ms_record *rec)
{
    const ms_device *d = &rec->device;
    x->stats.device_records++;
    size_t plen = strlen(d->path);
    if (plen > 255)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%.60s...' instance %u: a path of %zu bytes does not fit QEMU's "
                        "section id string (255 bytes at most)",
                        d->path, d->instance, plen);
    if (strcmp(d->path, "ram") == 0)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device 'ram' instance %u: QEMU's RAM section has that name", d->instance);
    /* A libvirt save image's header (libvirt.h): libvirt's, read before
     * the QEMU stream it wraps; QEMU never loads it. */
    if (strcmp(d->path, "libvirt/domain") == 0 && strcmp(d->schema, "libvirt-domain") == 0) {
        x->stats.libvirt_records++;
        return 0;
    }
    const uint8_t *raw = NULL;
    size_t len = 0, parts_at = 0;
    const char *why = NULL;
    int found = find_raw(d, &raw, &len, &parts_at, &why);
    if (found < 0)
        return rec_fail(x, MS_EFEATURE, rec, "device '%s' instance %u (schema '%s'): %s", d->path,
                        d->instance, d->schema, why);
    if (!found)
        return rec_fail(x, MS_EFEATURE, rec,
                        "device '%s' instance %u (schema '%s'): the state has no \"raw\" bytes "
                        "(only streams imported from QEMU carry the section bytes QEMU loads)",
                        d->path, d->instance, d->schema);
    if (strcmp(d->path, CONFIG_PATH) == 0 && d->instance == 0 && !parts_at)
        return hold_config(x, rec, raw, len);
    uint64_t *parts = NULL;
    size_t nparts = 0;
    int rc;
    if (parts_at && (rc = read_parts(x, rec, parts_at, len, &parts, &nparts)))
        return rc;
    held_device *h = NULL;
    for (size_t i = 0; i < x->ndev; i++)
        if (x->dev[i].instance == d->instance && strcmp(x->dev[i].path, d->path) == 0)
            h = &x->dev[i];
    uint64_t cost = len + nparts * sizeof *parts + (h ? 0 : plen + 1 + sizeof *h);
    uint64_t after = x->dev_bytes - (h ? h->raw_len + h->nparts * sizeof *h->parts : 0) + cost;
    if (after > x->opts.max_device_bytes) {
        msi_free(&x->alloc, parts);
        return rec_fail(x, MS_ELIMIT, rec,
                        "device '%s' instance %u: device state held until END would take "
                        "%llu bytes, beyond max_device_bytes (%llu)",
                        d->path, d->instance, (unsigned long long)after,
                        (unsigned long long)x->opts.max_device_bytes);
    }
    uint8_t *copy = msi_alloc(&x->alloc, len ? len : 1);
    if (!copy) {
        msi_free(&x->alloc, parts);
        return rec_fail(x, MS_ENOMEM, rec, "out of memory holding device '%s'", d->path);
    }
    if (len)
        memcpy(copy, raw, len);
    if (!h) {
        if (x->ndev == x->dev_cap) {
            size_t cap = x->dev_cap ? x->dev_cap * 2 : 64;
            held_device *n = msi_realloc(&x->alloc, x->dev, cap * sizeof *n);
            if (!n) {
                msi_free(&x->alloc, copy);
                msi_free(&x->alloc, parts);
                return rec_fail(x, MS_ENOMEM, rec, "out of memory holding device '%s'", d->path);
            }
            x->dev = n;
            x->dev_cap = cap;
        }
        h = &x->dev[x->ndev];
        memset(h, 0, sizeof *h);
        if (!(h->path = msi_strdup(&x->alloc, d->path))) {
            msi_free(&x->alloc, copy);
            msi_free(&x->alloc, parts);
            return rec_fail(x, MS_ENOMEM, rec, "out of memory holding device '%s'", d->path);
        }
        h->instance = d->instance;
        x->ndev++;
    }
    msi_free(&x->alloc, h->raw);
    msi_free(&x->alloc, h->parts);
    h->raw = copy;
    h->raw_len = len;
    h->parts = parts;
    h->nparts = nparts;
    h->version = d->version;
    x->dev_bytes = after;
    return 0;
}

/* ------------------------------------------------------------------ driver */

static int put_full(ms_qemu_export *x, const held_device *h, uint32_t id)
{
    int rc;
    if ((rc = section_full_header(x, MQ_SEC_FULL, id, h->path, h->instance, h->version)) ||
        (rc = put(x, h->raw, h->raw_len)))
        return rc;
    return section_footer(x, id);
}

/* An iterable section: its first part as START, the middle ones as PART,
 * the last as END, each with its footer. */
static int put_iterable(ms_qemu_export *x, const held_device *h, uint32_t id)
{
    const uint8_t *p = h->raw;
    int rc;
    for (size_t k = 0; k < h->nparts; k++) {
        if (k == 0)
            rc = section_full_header(x, MQ_SEC_START, id, h->path, h->instance, h->version);
        else if ((rc = put_u8(x, k + 1 == h->nparts ? MQ_SEC_END : MQ_SEC_PART)) == 0)
            rc = put_be32(x, id);
        if (rc || (rc = put(x, p, (size_t)h->parts[k])) || (rc = section_footer(x, id)))
            return rc;
        p += h->parts[k];
    }
    return 0;
}

/* After END: the ram END section (EOS only); the iterable sections, each as
 * START, PARTs and END in a row (QEMU's loader hands each part to its
 * section's handler whatever came between, and neither dirty-bitmap nor
 * block reads guest RAM: docs/QEMU.md section 7.1); the other devices as
 * FULL sections, in order of first appearance; EOF, then the trailer. */
static int finish(ms_qemu_export *x)
{
    int rc;
    if ((rc = close_part(x)) || (rc = put_u8(x, MQ_SEC_END)) ||
        (rc = put_be32(x, RAM_SECTION_ID)) || (rc = put_be64(x, MQ_RAM_FLAG_EOS)) ||
        (rc = section_footer(x, RAM_SECTION_ID)))
        return rc;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < x->ndev; i++) {
            const held_device *h = &x->dev[i];
            uint32_t id = RAM_SECTION_ID + 1 + (uint32_t)i;
            if ((pass == 0) != (h->nparts > 0))
                continue;
            if ((rc = h->nparts ? put_iterable(x, h, id) : put_full(x, h, id)))
                return rc;
            x->stats.devices++;
        }
    }
    if ((rc = put_u8(x, MQ_SEC_EOF)))
        return rc;
    if (!x->opts.no_vmdesc) {
        /* QEMU's loader reads the trailer and discards it; the stream keeps
         * no field descriptions to rebuild QEMU's, so none is claimed. */
        char js[64];
        int n = snprintf(js, sizeof js, "{\"page_size\":%u,\"devices\":[]}", x->opts.page_size);
        if ((rc = put_u8(x, MQ_SEC_VMDESCRIPTION)) || (rc = put_be32(x, (uint32_t)n)) ||
            (rc = put(x, js, (size_t)n)))
            return rc;
    }
    return flush_out(x);
}

/* The reader's failure, in the reader's words (it names the record and
 * offset); @p rc when the reader keeps no status. */
static int reader_fail(ms_qemu_export *x, int rc)
{
    int st = ms_reader_status(x->r);
    const char *msg = ms_reader_errmsg(x->r);
    if (!st)
        st = rc;
    return export_fail(x, st, ms_reader_error_offset(x->r), ms_reader_error_record(x->r), "%s",
                       msg && *msg ? msg : ms_strerror(st));
}

static int run(ms_qemu_export *x)
{
    const ms_header *hdr;
    int rc = ms_reader_header(x->r, &hdr);
    if (rc)
        return reader_fail(x, rc);
    if (x->machine_opt)
        snprintf(x->stats.machine, sizeof x->stats.machine, "%s", x->machine_opt);
    const ms_record *rec;
    int more;
    while ((more = ms_reader_next(x->r, &rec)) > 0) {
        rc = 0;
        x->stats.records++;
        if (rec->type == MS_REC_INFO) {
            if (!x->machine_opt && rec->info.machine)
                snprintf(x->stats.machine, sizeof x->stats.machine, "%s", rec->info.machine);
            continue;
        }
        if (rec->type == MS_REC_REGIONS) {
            if ((rc = check_regions(x, rec)))
                return rc;
            continue;
        }
        /* The block table goes out before the first page (or round): device
         * state is held until END anyway, so regions may follow it. */
        if (!x->ram_started && (rec->type == MS_REC_PAGES || rec->type == MS_REC_ROUND) &&
            (rc = start_ram(x, rec)))
            return rc;
        switch (rec->type) {
        case MS_REC_ROUND:
            /* A round's pages supersede the previous round's: a new PART
             * keeps them apart, as QEMU's iterations are. */
            rc = close_part(x);
            break;
        case MS_REC_PAGES:
            rc = write_pages(x, rec);
            break;
        case MS_REC_DEVICE:
            rc = hold_device(x, rec);
            break;
        case MS_REC_OVERLAY:
            rc = rec_fail(x, MS_EFEATURE, rec,
                          "overlay pages (first at gfn 0x%llx) have no QEMU counterpart: QEMU "
                          "rebuilds Hyper-V pages from the vCPUs' MSRs",
                          rec->overlay_count ? (unsigned long long)rec->overlays[0].gfn : 0ull);
            break;
        default:
            /* END is handled after the loop; other records do not change
             * the guest (unknown optional types). */
            break;
        }
        if (rc)
            return rc;
    }
    if (more < 0)
        return reader_fail(x, more);
    x->stats.bytes_read = ms_reader_offset(x->r);
    if ((rc = ms_reader_expect_eof(x->r)))
        return reader_fail(x, rc);
    if (!x->ram_started && (rc = start_ram(x, NULL)))
        return rc;
    return finish(x);
}

void ms_qemu_export_options_init(ms_qemu_export_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->page_size = 4096;
    opts->max_device_bytes = DEF_DEVICES;
    opts->max_output = MS_MAX_OUTPUT_DEFAULT;
}

ms_qemu_export *ms_qemu_export_new(const ms_qemu_export_options *opts)
{
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    const char *why = NULL, *which = "export options";
    if (opts)
        why = msi_struct_take(&o, MSI_STRUCT_END(ms_qemu_export_options, max_output), opts,
                              opts->struct_size);
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    if (!why && o.reader) {
        which = "export options: reader";
        why = msi_struct_take(&ro, MSI_READER_OPTIONS_END, o.reader, o.reader->struct_size);
    }
    if (!o.page_size)
        o.page_size = 4096;
    if (!why && (!msi_is_pow2(o.page_size) || o.page_size < 4096 || o.page_size > 65536))
        why = "page_size must be a power of two from 4096 to 65536";
    if (!o.max_device_bytes)
        o.max_device_bytes = DEF_DEVICES;
    if (!o.max_output)
        o.max_output = MS_MAX_OUTPUT_DEFAULT;
    if (!why && o.machine && (!*o.machine || strlen(o.machine) > 255))
        why = "machine must be 1 to 255 bytes";
    if (why) /* the defaults, for a handle that only carries the reason */
        ms_qemu_export_options_init(&o);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_qemu_export *x = msi_calloc(&a, 1, sizeof *x);
    if (!x)
        return NULL;
    x->alloc = a;
    x->err_record = -1;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        x->status = MS_EINVAL;
        snprintf(x->msg, sizeof x->msg, "invalid %s: %s", which, why);
    }
    if (o.machine && !(x->machine_opt = msi_strdup(&a, o.machine))) {
        msi_free(&a, x);
        return NULL;
    }
    o.machine = x->machine_opt;
    x->ropts = ro;
    x->ropts.struct_size = sizeof x->ropts;
    /* One failure stops the export: a damaged stream is not exported. */
    x->ropts.on_problem = NULL;
    o.reader = NULL;
    x->opts = o;
    return x;
}

void ms_qemu_export_free(ms_qemu_export *x)
{
    if (!x)
        return;
    if (!x->r_borrowed)
        ms_reader_free(x->r);
    for (size_t i = 0; i < x->ndev; i++) {
        msi_free(&x->alloc, x->dev[i].path);
        msi_free(&x->alloc, x->dev[i].raw);
        msi_free(&x->alloc, x->dev[i].parts);
    }
    msi_free(&x->alloc, x->config);
    msi_free(&x->alloc, x->dev);
    msi_free(&x->alloc, x->obuf);
    msi_free(&x->alloc, x->fill);
    msi_free(&x->alloc, x->machine_opt);
    ms_allocator a = x->alloc;
    msi_free(&a, x);
}

/* Runs over @reader, the caller's, or else a reader of @in of this
 * library's format. */
static int run_common(ms_qemu_export *x, ms_reader *reader, ms_read_fn in, void *in_ctx,
                      ms_write_fn out, void *out_ctx)
{
    if (x->ran || x->status)
        return x->status ? x->status : MS_ESTATE;
    x->ran = true;
    if (!in && !reader)
        return export_fail(x, MS_EINVAL, 0, -1, "input: no read callback");
    if (!out)
        return export_fail(x, MS_EINVAL, 0, -1, "output: no write callback");
    x->out = out;
    x->out_ctx = out_ctx;
    if (reader) {
        x->r = reader;
        x->r_borrowed = true;
    }
    if (!(x->obuf = msi_alloc(&x->alloc, OUT_CAP)) ||
        !(x->fill = msi_calloc(&x->alloc, 1, x->opts.page_size)) ||
        (!x->r && !(x->r = ms_reader_new(&x->ropts, in, in_ctx))))
        return export_fail(x, MS_ENOMEM, 0, -1, "out of memory");
    int rc = run(x);
    if (!x->stats.bytes_read)
        x->stats.bytes_read = ms_reader_offset(x->r);
    return rc ? x->status ? x->status : rc : 0;
}

int ms_qemu_export_run(ms_qemu_export *exp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                       void *out_ctx)
{
    if (!exp)
        return MS_EINVAL;
    return run_common(exp, NULL, in, in_ctx, out, out_ctx);
}

int ms_qemu_export_run_reader(ms_qemu_export *exp, ms_reader *r, ms_write_fn out, void *out_ctx)
{
    if (!exp)
        return MS_EINVAL;
    if (!r && !exp->ran && !exp->status) {
        exp->ran = true;
        return export_fail(exp, MS_EINVAL, 0, -1, "input: no reader");
    }
    return run_common(exp, r, NULL, NULL, out, out_ctx);
}

int ms_qemu_export_run_fd(ms_qemu_export *exp, int in_fd, int out_fd)
{
    if (!exp)
        return MS_EINVAL;
    if (in_fd < 0 || out_fd < 0) {
        exp->ran = true;
        return export_fail(exp, MS_EINVAL, 0, -1, "bad file descriptor");
    }
    return run_common(exp, NULL, msi_fd_read, msi_fd_ctx(in_fd), msi_fd_writev,
                      msi_fd_ctx(out_fd));
}

const ms_qemu_export_stats *ms_qemu_export_get_stats(const ms_qemu_export *exp)
{
    return exp ? &exp->stats : NULL;
}

int ms_qemu_export_status(const ms_qemu_export *exp)
{
    return exp ? exp->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_qemu_export_errmsg(const ms_qemu_export *exp)
{
    return exp ? exp->msg : "out of memory creating the exporter";
}

uint64_t ms_qemu_export_error_offset(const ms_qemu_export *exp)
{
    return exp ? exp->err_offset : 0;
}

int64_t ms_qemu_export_error_record(const ms_qemu_export *exp)
{
    return exp ? exp->err_record : -1;
}
