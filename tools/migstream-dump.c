/*
 * migstream-dump: shows a stream for people (text) or scripts (JSON Lines):
 * a header block, one line per record and a totals block; or the totals
 * alone (--summary); or one page's final contents (--page) or one device's
 * final state (--device).
 *
 * The stream is read once, front to back, through the public reader, so
 * standard input and pipes work and memory stays bounded by the largest
 * record, plus the page map of the totals (2 bits per page, see common.h).
 * Every output line is documented in docs/man/migstream-dump.1: keep them
 * stable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <migstream/migstream.h>

#include "common.h"
#include "parts.h"

#define DIAG_MAX 200 /* text mode: device state shown on a record line, bytes */
#define HEAD_MAX 16  /* unknown records: payload bytes shown */
#define KEYS_SHOWN 16 /* unknown map keys listed per record */

typedef enum { MODE_FULL, MODE_SUMMARY, MODE_PAGE, MODE_DEVICE } dump_mode;

typedef struct type_stats {
    uint16_t type;
    uint64_t records, bytes;
} type_stats;

/* Unknown map keys of one record (see unknown_keys()), as payload paths:
 * "/9" (key 9 of the map), "/1/7" (key 7 of the array's map 1). */
typedef struct key_list {
    size_t n;                  /* unknown keys found */
    char path[KEYS_SHOWN][40]; /* the first KEYS_SHOWN of them */
} key_list;

/* A record before the first PAGES, DEVICE or END record (INFO, REGIONS or
 * unknown), kept until the header is printed: the header lists the regions
 * they declare. At most SAVED_MAX are kept; the header comes out sooner if
 * there are more. A stream of another format may hand out a DEVICE before
 * its regions (QEMU's CONFIGURATION subsections): that one is kept too. */
#define SAVED_MAX 1024
typedef struct saved_record {
    ms_record rec;
    ms_region *regions;
    char *machine, *description;
    char *path, *schema;
    uint8_t *state;
    uint8_t head[HEAD_MAX];
    key_list keys;
} saved_record;

/* One instance of the --device path: its last record wins. */
typedef struct device_copy {
    uint32_t instance;
    char *schema;
    uint32_t version;
    uint8_t *state;
    size_t state_size;
    uint64_t records, last_index, last_offset;
} device_copy;

/* One pre-copy round: its ROUND record and what was sent until the next. */
typedef struct round_stats {
    ms_round round;
    uint64_t index, offset;      /* the ROUND record */
    uint64_t sent[MST_STATES];   /* pages per state */
    uint64_t records, bytes;     /* PAGES records, headers included */
} round_stats;
#define MAX_ROUNDS 65536u /* rounds listed by --summary; later ones are counted only */

/* Which DATA copy of a region each of its pages holds (1-based, in stream
 * order; 0: none), in chunks of SRC_CHUNK pages found by a hash of their
 * index, made when a DATA or DUPLICATE page lands in them, within
 * SRC_BUDGET bytes (the page-state budget of a consumer that resolves
 * DUPLICATE sources, FORMAT.md section 9). */
#define SRC_CHUNK 4096u
#define SRC_BUDGET MS_PAGEMAP_DEFAULT_MEMORY
typedef struct src_chunk {
    uint64_t index; /* page / SRC_CHUNK */
    uint64_t *seq;  /* NULL: a free slot */
} src_chunk;
typedef struct src_map {
    src_chunk *slots;
    size_t cap, used; /* cap a power of two, at most half used */
    bool full;        /* past SRC_BUDGET */
} src_map;

typedef struct dump {
    FILE *out;
    bool json;
    dump_mode mode;
    ms_reader *r;
    /* A stream of another format (QEMU's ...): its records carry no wire
     * bytes, so lengths, checksums, byte counts, shares and the digest do
     * not apply; format names it. */
    bool foreign;
    const char *format;
    const ms_header *hdr;
    uint64_t preamble; /* header_size: where record 0 starts */

    /* totals */
    type_stats *types; /* sorted by type */
    size_t ntypes;
    uint64_t records;
    uint64_t end_index, end_offset; /* the END record */
    uint64_t stream_bytes;          /* up to the end of END */
    /* A damaged stream: its totals count what was read before the damage,
     * read_end bytes (the end of the last whole record; per part, in
     * part_end, for a migration in parts). */
    bool partial;
    uint64_t read_end;
    uint64_t *part_end;
    ms_pagemap *pm;
    mst_devset *ds;
    round_stats *rounds;
    size_t nrounds;
    uint64_t rounds_seen;

    /* header look-ahead */
    saved_record *saved;
    size_t nsaved;
    bool header_done;
    bool regions_seen; /* a REGIONS record was read */

    /* --page */
    const char *page_region; /* the REGION part of REGION:PFN */
    bool page_by_id;
    uint32_t page_id;
    uint64_t pfn;
    bool region_found, page_outside;
    ms_region page_reg;
    char page_reg_name[MS_MAX_NAME_LEN + 1];
    uint8_t *page;       /* page_size bytes: the last DATA copy */
    unsigned page_state; /* MST_STATE_MISSING until a copy arrives */
    uint64_t page_arg;   /* FILL word or IN_PLACE address of the last copy */
    uint64_t page_copies, page_index, page_offset;
    int64_t page_part; /* of the last copy, read among several parts; else -1 */
    /* DUPLICATE pages (FORMAT.md section 6.2), in a stream that may hold
     * them: which DATA copy of the region each page holds (src_map), so
     * that the --page's last DUPLICATE names the DATA copy its contents
     * came from (page_seq); its bytes are read on a second pass. */
    src_map srcs;
    uint64_t data_seq;              /* DATA pages of the region so far */
    uint64_t page_seq;              /* the DATA copy the --page holds, 1-based; 0: none */
    uint64_t src_index, src_offset; /* the record of that copy */
    bool src_read;                  /* its bytes are in page */
    const char *const *paths;       /* the inputs, for that second pass */
    size_t npaths;
    bool rereadable; /* one regular file */

    /* --device */
    const char *device_path;
    device_copy *devs; /* by first appearance (the device set's order) */
    size_t ndevs, devs_cap, devs_bytes;

    /* The inputs are several parts of one migration, read as one */
    bool parts;
    mst_progress *pg; /* ended once the stream is read */
} dump;

/* ------------------------------------------------------------ small output */

static void put_str(dump *d, const char *s)
{
    mst_json_string(d->out, s);
}

static void put_hex64(dump *d, uint64_t v)
{
    fprintf(d->out, "\"0x%016" PRIx64 "\"", v);
}

static const char *type_label(uint16_t type, char tmp[8])
{
    const char *name = ms_record_type_name(type);
    if (name)
        return name;
    snprintf(tmp, 8, "0x%04x", type);
    return tmp;
}

/* FORMAT.md section 6.3's data encodings, as dump prints them. */
static const char *encoding_name(unsigned e)
{
    return e == MS_ENCODING_ZSTD ? "zstd" : e == MS_ENCODING_ZSTD_WINDOW ? "zstd-window" : "raw";
}

static const char *state_name(unsigned st)
{
    const char *n = ms_page_state_name(st);
    return n ? n : "OTHER";
}

/* Text: the page counts per state of a set of extents or totals. DATA and
 * ZERO always; the states of format 1.1 and OTHER when there are any. */
static void put_counts_text(dump *d, const uint64_t *c)
{
    fprintf(d->out, "DATA %" PRIu64 " ZERO %" PRIu64, c[MS_PAGE_DATA], c[MS_PAGE_ZERO]);
    for (unsigned st = MS_PAGE_ZERO + 1; st <= MST_STATE_OTHER; st++)
        if (c[st])
            fprintf(d->out, " %s %" PRIu64, state_name(st), c[st]);
}

/* JSON: counts the tool made are numbers; @declared: counts a stream
 * declares (END's totals), strings (the u64 rule, docs/OUTPUT.md). */
static void put_count_json(dump *d, const char *sep, const char *name, uint64_t v, bool declared)
{
    fprintf(d->out, "%s\"%s\":", sep, name);
    if (declared)
        mst_json_u64(d->out, v);
    else
        fprintf(d->out, "%" PRIu64, v);
}

static void put_counts_json(dump *d, const uint64_t *c, bool missing, bool declared)
{
    put_count_json(d, "{", "DATA", c[MS_PAGE_DATA], declared);
    put_count_json(d, ",", "ZERO", c[MS_PAGE_ZERO], declared);
    for (unsigned st = MS_PAGE_ZERO + 1; st <= MST_STATE_OTHER; st++)
        if (c[st])
            put_count_json(d, ",", state_name(st), c[st], declared);
    if (missing)
        put_count_json(d, ",", "missing", c[MST_STATE_MISSING], false);
    fputc('}', d->out);
}

static void put_region_text(dump *d, const ms_region *g)
{
    fprintf(d->out, "%" PRIu32 " ", g->id);
    put_str(d, g->name);
    if (g->has_gpa)
        fprintf(d->out, " gpa 0x%" PRIx64, g->gpa);
    else
        fputs(" gpa none", d->out);
    fprintf(d->out, " size %" PRIu64 " page-size %" PRIu32 " pages %" PRIu64, g->size, g->page_size,
            g->size / g->page_size);
}

static void put_region_json(dump *d, const ms_region *g)
{
    fprintf(d->out, "{\"id\":%" PRIu32 ",\"name\":", g->id);
    put_str(d, g->name);
    fputs(",\"gpa\":", d->out);
    if (g->has_gpa)
        fprintf(d->out, "\"0x%" PRIx64 "\"", g->gpa);
    else
        fputs("null", d->out);
    fputs(",\"size\":", d->out);
    mst_json_u64(d->out, g->size);
    fprintf(d->out, ",\"page_size\":%" PRIu32 ",\"pages\":%" PRIu64 "}", g->page_size,
            g->size / g->page_size);
}

/* Device state in diagnostic notation, cut at DIAG_MAX bytes (on a UTF-8
 * character boundary) when LIMIT is set. */
static void put_diag(dump *d, const uint8_t *cbor, size_t n, bool limit)
{
    char small[DIAG_MAX + 1];
    if (limit) {
        ssize_t len = ms_cbor_format(cbor, n, MS_CBOR_DIAG, 0, small, sizeof small);
        if (len < 0) {
            fputs("<invalid CBOR>", d->out);
            return;
        }
        if ((size_t)len <= DIAG_MAX) {
            fputs(small, d->out);
            return;
        }
        size_t cut = DIAG_MAX;
        while (cut > 0 && ((unsigned char)small[cut] & 0xc0) == 0x80)
            cut--;
        fprintf(d->out, "%.*s... (%zd bytes in all)", (int)cut, small, len);
        return;
    }
    char *s = mst_cbor_text(cbor, n, MS_CBOR_DIAG);
    fputs(s ? s : "<invalid CBOR>", d->out);
    free(s);
}

static void put_json_state(dump *d, const uint8_t *cbor, size_t n)
{
    char *s = mst_cbor_text(cbor, n, MS_CBOR_JSON);
    fputs(s ? s : "null", d->out);
    free(s);
}

/* ------------------------------------------------------ rounds, overlays */

static void put_tracker(dump *d, uint32_t tracker)
{
    const char *n = ms_tracker_name(tracker);
    if (n)
        fputs(n, d->out);
    else
        fprintf(d->out, "%" PRIu32, tracker);
}

/* A round after its number: " tracker bitmap granularity 4096 ...". */
static void put_round_rest(dump *d, const ms_round *r)
{
    fputs(" tracker ", d->out);
    put_tracker(d, r->tracker);
    if (r->tracker != MS_TRACKER_NONE)
        fprintf(d->out, " granularity %" PRIu32, r->granularity);
    if (r->has_dirty)
        fprintf(d->out, " dirty %" PRIu64, r->dirty);
    if (r->final)
        fputs(" final", d->out);
}

static void put_round_text(dump *d, const ms_round *r)
{
    fprintf(d->out, "round %" PRIu64, r->number);
    put_round_rest(d, r);
}

static void put_round_json(dump *d, const ms_round *r)
{
    FILE *o = d->out;
    fprintf(o, "\"round\":%" PRIu64 ",\"tracker\":", r->number);
    if (ms_tracker_name(r->tracker))
        fprintf(o, "\"%s\"", ms_tracker_name(r->tracker));
    else
        fprintf(o, "%" PRIu32, r->tracker);
    fprintf(o, ",\"granularity\":%" PRIu32 ",\"dirty\":", r->granularity);
    if (r->has_dirty)
        mst_json_u64(o, r->dirty);
    else
        fputs("null", o);
    fprintf(o, ",\"final\":%s", r->final ? "true" : "false");
}

/* One overlay parameter: " name value" (text) or ',"name":value' (JSON);
 * @hex writes the value as a quoted hex string in JSON and 0x... in text. */
static void put_param(dump *d, bool json, const char *name, uint64_t v, bool hex)
{
    if (json && hex)
        fprintf(d->out, ",\"%s\":\"0x%" PRIx64 "\"", name, v);
    else if (json)
        fprintf(d->out, ",\"%s\":\"%" PRIu64 "\"", name, v);
    else if (hex)
        fprintf(d->out, " %s 0x%" PRIx64, name, v);
    else
        fprintf(d->out, " %s %" PRIu64, name, v);
}

static void put_overlay_params(dump *d, const ms_overlay *v, bool json)
{
    switch (v->kind) {
    case MS_OVERLAY_HYPERCALL:
        put_param(d, json, "vendor", v->hypercall.vendor, false);
        break;
    case MS_OVERLAY_REFERENCE_TSC:
        if (v->tsc.has_frequency) {
            put_param(d, json, "frequency", v->tsc.frequency, false);
        } else {
            put_param(d, json, "sequence", v->tsc.sequence, false);
            put_param(d, json, "scale", v->tsc.scale, true);
        }
        if (json)
            fprintf(d->out, ",\"offset\":\"%" PRId64 "\"", v->tsc.offset);
        else
            fprintf(d->out, " offset %" PRId64, v->tsc.offset);
        break;
    default:
        put_param(d, json, "vp", v->synic.vp, false);
        put_param(d, json, "slots", v->synic.slot_mask, true);
    }
}

static void put_overlay_text(dump *d, const ms_overlay *v)
{
    const char *kind = ms_overlay_kind_name(v->kind);
    fprintf(d->out, "%s frame 0x%" PRIx64 " priority %u", kind ? kind : "?", v->gfn,
            ms_overlay_priority(v->kind));
    put_overlay_params(d, v, false);
}

static void put_overlay_json(dump *d, const ms_overlay *v)
{
    const char *kind = ms_overlay_kind_name(v->kind);
    fprintf(d->out, "{\"gfn\":\"0x%" PRIx64 "\",\"kind\":\"%s\",\"kind_code\":%" PRIu32
            ",\"priority\":%u", v->gfn, kind ? kind : "?", v->kind, ms_overlay_priority(v->kind));
    put_overlay_params(d, v, true);
    fputc('}', d->out);
}

/* ------------------------------------------------------- unknown map keys */

/* The keys of @rec's maps that this reader does not know (a later minor's),
 * as the reader lists them. */
static void unknown_keys(const ms_record *rec, key_list *k)
{
    memset(k, 0, sizeof *k);
    k->n = rec->unknown_key_count;
    for (size_t i = 0; i < k->n && i < KEYS_SHOWN && i < MS_MAX_LISTED_KEYS; i++)
        snprintf(k->path[i], sizeof k->path[i], "%s", rec->unknown_keys[i]);
}

static void put_keys_text(dump *d, const key_list *k)
{
    if (!k || !k->n)
        return;
    fputs(" unknown-keys", d->out);
    for (size_t i = 0; i < k->n && i < KEYS_SHOWN; i++)
        fprintf(d->out, " %s", k->path[i]);
    if (k->n > KEYS_SHOWN)
        fprintf(d->out, " ... (%zu in all)", k->n);
}

static void put_keys_json(dump *d, const key_list *k)
{
    if (!k || !k->n)
        return;
    fputs(",\"unknown_keys\":[", d->out);
    for (size_t i = 0; i < k->n && i < KEYS_SHOWN; i++)
        fprintf(d->out, "%s\"%s\"", i ? "," : "", k->path[i]);
    fputc(']', d->out);
    if (k->n > KEYS_SHOWN)
        fprintf(d->out, ",\"unknown_keys_more\":%zu", k->n - KEYS_SHOWN);
}

/* --------------------------------------------------------------- records */

static void page_span(const ms_pages *pg, uint64_t counts[MST_STATES], uint64_t *first,
                      uint64_t *last)
{
    memset(counts, 0, MST_STATES * sizeof *counts);
    for (size_t i = 0; i < pg->extent_count; i++) {
        unsigned st = pg->extents[i].state;
        counts[st && st < MST_STATE_OTHER ? st : MST_STATE_OTHER] += pg->extents[i].count;
    }
    *first = pg->extent_count ? pg->extents[0].first : 0;
    *last = pg->extent_count ? pg->extents[pg->extent_count - 1].first +
                                   pg->extents[pg->extent_count - 1].count - 1
                             : 0;
}

static uint64_t pages_wire_data(const ms_record *rec)
{
    return rec->length - 16 - 24 * (uint64_t)rec->pages.extent_count;
}

static void record_text(dump *d, const ms_record *rec, const key_list *keys)
{
    char tmp[8];
    if (d->foreign)
        fprintf(d->out, "%12" PRIu64 " %7" PRIu64 " %-8s %9s  ", rec->offset, rec->index,
                type_label(rec->type, tmp), "-");
    else
        fprintf(d->out, "%12" PRIu64 " %7" PRIu64 " %-8s %9" PRIu32 "  ", rec->offset, rec->index,
                type_label(rec->type, tmp), rec->length);
    if (rec->part) /* offset and index count in this part's stream */
        fprintf(d->out, "part %" PRIu32 " ", rec->part->index);
    else if (d->parts && rec->type == MS_REC_END)
        fputs("migration ", d->out);
    if (!rec->known) {
        fputs("unknown optional record, skipped; payload ", d->out);
        for (uint32_t i = 0; i < rec->length && i < HEAD_MAX; i++)
            fprintf(d->out, "%02x", rec->payload[i]);
        if (rec->length > HEAD_MAX)
            fputs("...", d->out);
        if (rec->length == 0)
            fputs("empty", d->out);
        fputc('\n', d->out);
        return;
    }
    switch (rec->type) {
    case MS_REC_INFO:
        if (rec->info.machine) {
            fputs("machine ", d->out);
            put_str(d, rec->info.machine);
        }
        if (rec->info.description) {
            fputs(rec->info.machine ? " description " : "description ", d->out);
            put_str(d, rec->info.description);
        }
        if (!rec->info.machine && !rec->info.description)
            fputs("empty", d->out);
        break;
    case MS_REC_REGIONS:
        fprintf(d->out, "regions %zu:", rec->region_count);
        for (size_t i = 0; i < rec->region_count; i++) {
            fputs(i ? "; " : " ", d->out);
            put_region_text(d, &rec->regions[i]);
        }
        break;
    case MS_REC_PAGES: {
        uint64_t c[MST_STATES], first, last;
        page_span(&rec->pages, c, &first, &last);
        fprintf(d->out, "region %" PRIu32 " ", rec->pages.region->id);
        put_str(d, rec->pages.region->name);
        fprintf(d->out, " pages %" PRIu64 "..%" PRIu64 " extents %zu ", first, last,
                rec->pages.extent_count);
        put_counts_text(d, c);
        if (d->foreign) /* no encoding on the wire: the pages as read */
            fprintf(d->out, " data %zu", rec->pages.data_size);
        else if (rec->pages.encoding != MS_ENCODING_RAW)
            fprintf(d->out, " encoding %s data %" PRIu64 " decoded %zu",
                    encoding_name(rec->pages.encoding), pages_wire_data(rec),
                    rec->pages.data_size);
        else
            fprintf(d->out, " encoding raw data %zu", rec->pages.data_size);
        break;
    }
    case MS_REC_DEVICE:
        fputs("path ", d->out);
        put_str(d, rec->device.path);
        fprintf(d->out, " instance %" PRIu32 " schema ", rec->device.instance);
        put_str(d, rec->device.schema);
        fprintf(d->out, " version %" PRIu32 " state-size %zu state ", rec->device.version,
                rec->device.state_size);
        put_diag(d, rec->device.state, rec->device.state_size, true);
        break;
    case MS_REC_ROUND:
        put_round_text(d, &rec->round);
        break;
    case MS_REC_PART:
        fputs("migration ", d->out);
        for (unsigned i = 0; i < MS_MIGRATION_ID_SIZE; i++)
            fprintf(d->out, "%02x", rec->part->migration_id[i]);
        fprintf(d->out, " index %" PRIu32 " count %" PRIu32, rec->part->index, rec->part->count);
        break;
    case MS_REC_OVERLAY:
        fprintf(d->out, "overlays %zu:", rec->overlay_count);
        for (size_t i = 0; i < rec->overlay_count; i++) {
            fputs(i ? "; " : " ", d->out);
            put_overlay_text(d, &rec->overlays[i]);
        }
        break;
    case MS_REC_END:
        fprintf(d->out, "records %" PRIu64 " bytes %" PRIu64 " pages ", rec->totals.records,
                rec->totals.bytes);
        put_counts_text(d, rec->totals.pages);
        fprintf(d->out, " devices %" PRIu64, rec->totals.devices);
        if (rec->totals.rounds)
            fprintf(d->out, " rounds %" PRIu64, rec->totals.rounds);
        if (rec->totals.overlays)
            fprintf(d->out, " overlays %" PRIu64, rec->totals.overlays);
        if (!d->foreign)
            fprintf(d->out, " digest 0x%016" PRIx64, rec->checksum);
        break;
    default:
        break;
    }
    put_keys_text(d, keys);
    fputc('\n', d->out);
}

static void record_json(dump *d, const ms_record *rec, const key_list *keys)
{
    char tmp[8];
    FILE *o = d->out;
    fprintf(o,
            "{\"kind\":\"record\",\"offset\":%" PRIu64 ",\"index\":%" PRIu64 ",\"type\":\"%s\","
            "\"type_code\":%u,\"flags\":%u,",
            rec->offset, rec->index, type_label(rec->type, tmp), rec->type, rec->flags);
    if (d->foreign) {
        fputs("\"length\":null,\"checksum\":null", o);
    } else {
        fprintf(o, "\"length\":%" PRIu32 ",\"checksum\":", rec->length);
        put_hex64(d, rec->checksum);
    }
    if (rec->part)
        fprintf(o, ",\"part\":%" PRIu32, rec->part->index);
    else if (d->parts)
        fputs(",\"part\":null", o);
    fprintf(o, ",\"known\":%s", rec->known ? "true" : "false");
    if (!rec->known) {
        fputs(",\"payload_head\":", o);
        mst_json_hex(o, rec->payload, rec->length < HEAD_MAX ? rec->length : HEAD_MAX);
        fputs("}\n", o);
        return;
    }
    switch (rec->type) {
    case MS_REC_INFO:
        fputs(",\"machine\":", o);
        if (rec->info.machine)
            put_str(d, rec->info.machine);
        else
            fputs("null", o);
        fputs(",\"description\":", o);
        if (rec->info.description)
            put_str(d, rec->info.description);
        else
            fputs("null", o);
        break;
    case MS_REC_REGIONS:
        fputs(",\"regions\":[", o);
        for (size_t i = 0; i < rec->region_count; i++) {
            if (i)
                fputc(',', o);
            put_region_json(d, &rec->regions[i]);
        }
        fputc(']', o);
        break;
    case MS_REC_PAGES: {
        uint64_t c[MST_STATES], first, last;
        page_span(&rec->pages, c, &first, &last);
        fprintf(o, ",\"region\":%" PRIu32 ",\"region_name\":", rec->pages.region->id);
        put_str(d, rec->pages.region->name);
        fprintf(o, ",\"first_page\":%" PRIu64 ",\"last_page\":%" PRIu64 ",\"pages\":", first, last);
        put_counts_json(d, c, false, false);
        if (d->foreign)
            fprintf(o, ",\"encoding\":null,\"data_bytes\":null,\"decoded_bytes\":%zu",
                    rec->pages.data_size);
        else
            fprintf(o, ",\"encoding\":\"%s\",\"data_bytes\":%" PRIu64 ",\"decoded_bytes\":%zu",
                    encoding_name(rec->pages.encoding), pages_wire_data(rec),
                    rec->pages.data_size);
        fputs(",\"extents\":[", o);
        for (size_t i = 0; i < rec->pages.extent_count; i++) {
            const ms_extent *e = &rec->pages.extents[i];
            fprintf(o, "%s{\"first\":%" PRIu64 ",\"count\":%" PRIu32 ",\"state\":\"%s\"",
                    i ? "," : "", e->first, e->count, state_name(e->state));
            if (e->state == MS_PAGE_FILL || e->state == MS_PAGE_IN_PLACE)
                fprintf(o, ",\"arg\":\"0x%" PRIx64 "\"", e->arg);
            fputc('}', o);
        }
        fputc(']', o);
        break;
    }
    case MS_REC_DEVICE:
        fputs(",\"path\":", o);
        put_str(d, rec->device.path);
        fprintf(o, ",\"instance\":%" PRIu32 ",\"schema\":", rec->device.instance);
        put_str(d, rec->device.schema);
        fprintf(o, ",\"version\":%" PRIu32 ",\"state_size\":%zu,\"state\":", rec->device.version,
                rec->device.state_size);
        put_json_state(d, rec->device.state, rec->device.state_size);
        break;
    case MS_REC_END:
        /* END's totals are what the stream declares: strings. */
        fprintf(o, ",\"records\":\"%" PRIu64 "\",\"bytes\":\"%" PRIu64 "\",\"pages\":",
                rec->totals.records, rec->totals.bytes);
        put_counts_json(d, rec->totals.pages, false, true);
        fprintf(o, ",\"devices\":\"%" PRIu64 "\"", rec->totals.devices);
        if (rec->totals.rounds)
            fprintf(o, ",\"rounds\":\"%" PRIu64 "\"", rec->totals.rounds);
        if (rec->totals.overlays)
            fprintf(o, ",\"overlays\":\"%" PRIu64 "\"", rec->totals.overlays);
        fputs(",\"digest\":", o);
        if (d->foreign || d->partial)
            fputs("null", o);
        else
            put_hex64(d, rec->checksum);
        break;
    case MS_REC_ROUND:
        fputc(',', o);
        put_round_json(d, &rec->round);
        break;
    case MS_REC_PART:
        fputs(",\"migration\":", o);
        mst_json_hex(o, rec->part->migration_id, MS_MIGRATION_ID_SIZE);
        fprintf(o, ",\"part_index\":%" PRIu32 ",\"part_count\":%" PRIu32, rec->part->index,
                rec->part->count);
        break;
    case MS_REC_OVERLAY:
        fputs(",\"overlays\":[", o);
        for (size_t i = 0; i < rec->overlay_count; i++) {
            if (i)
                fputc(',', o);
            put_overlay_json(d, &rec->overlays[i]);
        }
        fputc(']', o);
        break;
    default:
        break;
    }
    put_keys_json(d, keys);
    fputs("}\n", o);
}

static void print_record(dump *d, const ms_record *rec, const key_list *keys)
{
    if (d->json)
        record_json(d, rec, keys);
    else
        record_text(d, rec, keys);
}

static void saved_free(saved_record *s)
{
    free(s->regions);
    free(s->machine);
    free(s->description);
    free(s->path);
    free(s->schema);
    free(s->state);
}

/* ---------------------------------------------------------------- header */

/* The parts of a migration read as one (FORMAT.md section 2.1): in the
 * header, each part's file, preamble and writer; in the totals (@end),
 * what each part held, as its own END counts it, and its digest. */
static void print_parts(dump *d, bool end)
{
    FILE *o = d->out;
    uint32_t n = d->parts ? ms_reader_part_count(d->r) : 0;
    if (!n)
        return;
    if (d->json)
        fputs(",\"parts\":[", o);
    for (uint32_t i = 0; i < n; i++) {
        const ms_part_info *pi = ms_reader_part_info(d->r, i);
        if (d->json) {
            fprintf(o, "%s{\"index\":%" PRIu32 ",\"file\":", i ? "," : "", pi->part.index);
            put_str(d, pi->name);
            if (end && !pi->ended) { /* damaged before its END */
                fprintf(o, ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"ended\":false",
                        pi->records, d->part_end ? d->part_end[i] : 0);
            } else if (end) {
                fprintf(o, ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"pages\":", pi->records,
                        pi->bytes);
                put_counts_json(d, pi->totals.pages, false, true);
                fprintf(o,
                        ",\"devices\":\"%" PRIu64 "\",\"rounds\":\"%" PRIu64
                        "\",\"overlays\":\"%" PRIu64 "\",\"digest\":",
                        pi->totals.devices, pi->totals.rounds, pi->totals.overlays);
                put_hex64(d, pi->digest);
            } else {
                fputs(",\"migration\":", o);
                mst_json_hex(o, pi->part.migration_id, MS_MIGRATION_ID_SIZE);
                fprintf(o, ",\"count\":%" PRIu32 ",\"required_features\":", pi->part.count);
                put_hex64(d, pi->header.required_features);
                fputs(",\"writer_name\":", o);
                put_str(d, pi->header.writer_name);
                fputs(",\"writer_version\":", o);
                put_str(d, pi->header.writer_version);
                fprintf(o, ",\"preamble_bytes\":%" PRIu32, pi->header_size);
            }
            fputc('}', o);
        } else if (end && !pi->ended) {
            fprintf(o, "  part      %" PRIu32 " records %" PRIu64 " bytes %" PRIu64 " no END\n",
                    pi->part.index, pi->records, d->part_end ? d->part_end[i] : 0);
        } else if (end) {
            fprintf(o, "  part      %" PRIu32 " records %" PRIu64 " bytes %" PRIu64 " pages ",
                    pi->part.index, pi->records, pi->bytes);
            put_counts_text(d, pi->totals.pages);
            fprintf(o, " devices %" PRIu64 " rounds %" PRIu64, pi->totals.devices,
                    pi->totals.rounds);
            if (pi->totals.overlays)
                fprintf(o, " overlays %" PRIu64, pi->totals.overlays);
            fprintf(o, " digest 0x%016" PRIx64 "\n", pi->digest);
        } else {
            if (i == 0) {
                fprintf(o, "  parts     %" PRIu32 " migration ", n);
                for (unsigned k = 0; k < MS_MIGRATION_ID_SIZE; k++)
                    fprintf(o, "%02x", pi->part.migration_id[k]);
                fputc('\n', o);
            }
            fprintf(o, "  part      %" PRIu32 " file ", pi->part.index);
            put_str(d, pi->name);
            fprintf(o, " required 0x%016" PRIx64 " writer ", pi->header.required_features);
            put_str(d, pi->header.writer_name);
            fputs(" version ", o);
            put_str(d, pi->header.writer_version);
            fprintf(o, " preamble %" PRIu32 "\n", pi->header_size);
        }
    }
    if (d->json)
        fputc(']', o);
}

static void print_header(dump *d)
{
    const ms_header *h = d->hdr;
    size_t nreg = ms_reader_region_count(d->r);
    FILE *o = d->out;
    /* What a later minor may add and this reader skips (FORMAT.md sections
     * 3.2 and 11): said in the header, the records follow. */
    uint64_t known_optional;
    ms_known_features(NULL, &known_optional);
    const uint64_t unknown_optional = h->optional_features & ~known_optional;
    const bool newer = h->minor > MS_FORMAT_MINOR;
    if (d->foreign && d->json) {
        /* The members of this format's preamble do not apply. */
        fputs("{\"kind\":\"header\",\"format\":", o);
        put_str(d, d->format);
        fprintf(o,
                ",\"major\":null,\"minor\":null,\"required_features\":null,"
                "\"optional_features\":null,\"writer_name\":null,\"writer_version\":null,"
                "\"page_size\":%" PRIu32 ",\"preamble_bytes\":null,\"preamble_checksum\":null,"
                "\"regions\":[",
                h->page_size);
        for (size_t i = 0; i < nreg; i++) {
            if (i)
                fputc(',', o);
            put_region_json(d, ms_reader_region(d->r, i));
        }
        fputs("]}\n", o);
    } else if (d->foreign) {
        fprintf(o, "header\n  format    %s\n  page-size %" PRIu32 "\n  regions   %zu\n", d->format,
                h->page_size, nreg);
        for (size_t i = 0; i < nreg; i++) {
            fputs("  region    ", o);
            put_region_text(d, ms_reader_region(d->r, i));
            fputc('\n', o);
        }
        fputs("records\n", o);
    } else if (d->json) {
        fprintf(o,
                "{\"kind\":\"header\",\"format\":\"%u.%u\",\"major\":%u,\"minor\":%u,"
                "\"required_features\":",
                h->major, h->minor, h->major, h->minor);
        put_hex64(d, h->required_features);
        fputs(",\"optional_features\":", o);
        put_hex64(d, h->optional_features);
        if (unknown_optional) {
            fputs(",\"unknown_optional_features\":", o);
            put_hex64(d, unknown_optional);
        }
        if (newer)
            fprintf(o, ",\"newer_minor\":true,\"reader_format\":\"%d.%d\"", MS_FORMAT_MAJOR,
                    MS_FORMAT_MINOR);
        fputs(",\"writer_name\":", o);
        put_str(d, h->writer_name);
        fputs(",\"writer_version\":", o);
        put_str(d, h->writer_version);
        fprintf(o,
                ",\"page_size\":%" PRIu32 ",\"preamble_bytes\":%" PRIu64 ",\"preamble_checksum\":",
                h->page_size, d->preamble);
        put_hex64(d, h->checksum);
        print_parts(d, false);
        fputs(",\"regions\":[", o);
        for (size_t i = 0; i < nreg; i++) {
            if (i)
                fputc(',', o);
            put_region_json(d, ms_reader_region(d->r, i));
        }
        fputs("]}\n", o);
    } else {
        fprintf(o, "header\n  format    %u.%u", h->major, h->minor);
        if (newer)
            fprintf(o, " (newer than this reader's %d.%d)", MS_FORMAT_MAJOR, MS_FORMAT_MINOR);
        fprintf(o, "\n  features  required 0x%016" PRIx64 " optional 0x%016" PRIx64,
                h->required_features, h->optional_features);
        if (unknown_optional)
            fprintf(o, " unknown-optional 0x%016" PRIx64, unknown_optional);
        fputc('\n', o);
        fputs("  writer    ", o);
        put_str(d, h->writer_name);
        fputs(" version ", o);
        put_str(d, h->writer_version);
        fprintf(o, "\n  page-size %" PRIu32 "\n", h->page_size);
        fprintf(o, "  preamble  bytes %" PRIu64 " checksum 0x%016" PRIx64 "\n", d->preamble,
                h->checksum);
        print_parts(d, false);
        fprintf(o, "  regions   %zu\n", nreg);
        for (size_t i = 0; i < nreg; i++) {
            fputs("  region    ", o);
            put_region_text(d, ms_reader_region(d->r, i));
            fputc('\n', o);
        }
        fputs("records\n", o);
    }
    for (size_t i = 0; i < d->nsaved; i++) {
        saved_record *s = &d->saved[i];
        if (!s->rec.known)
            s->rec.payload = s->head;
        print_record(d, &s->rec, &s->keys);
        saved_free(s);
    }
    free(d->saved);
    d->saved = NULL;
    d->nsaved = 0;
    d->header_done = true;
}

/* Whether @rec is kept for after the header (see saved_record). */
static bool to_save(const dump *d, const ms_record *rec)
{
    if (d->header_done || d->nsaved == SAVED_MAX)
        return false;
    return rec->type == MS_REC_INFO || rec->type == MS_REC_REGIONS || rec->type == MS_REC_PART ||
           !rec->known || (d->foreign && rec->type == MS_REC_DEVICE && !d->regions_seen);
}

/* Keeps a leading INFO or REGIONS record for after the header. */
static int save_record(dump *d, const ms_record *rec, const key_list *keys)
{
    saved_record *p = realloc(d->saved, (d->nsaved + 1) * sizeof *p);
    if (!p)
        return -1;
    d->saved = p;
    saved_record *s = &p[d->nsaved];
    memset(s, 0, sizeof *s);
    s->rec = *rec;
    s->rec.payload = NULL;
    s->keys = *keys;
    if (!rec->known) {
        /* Only the head of an unknown payload is ever shown; rec.payload is
         * pointed at it when printed (the array moves as it grows). */
        memcpy(s->head, rec->payload, rec->length < HEAD_MAX ? rec->length : HEAD_MAX);
    } else if (rec->type == MS_REC_REGIONS) {
        /* Region names point into the reader's region table, which lives
         * as long as the reader; the array itself is reused. */
        s->regions = malloc((rec->region_count ? rec->region_count : 1) * sizeof *s->regions);
        if (!s->regions)
            return -1;
        memcpy(s->regions, rec->regions, rec->region_count * sizeof *s->regions);
        s->rec.regions = s->regions;
    } else if (rec->type == MS_REC_DEVICE) {
        const ms_device *v = &rec->device;
        s->path = strdup(v->path);
        s->schema = strdup(v->schema);
        s->state = malloc(v->state_size ? v->state_size : 1);
        if (!s->path || !s->schema || !s->state) {
            saved_free(s);
            return -1;
        }
        memcpy(s->state, v->state, v->state_size);
        s->rec.device.path = s->path;
        s->rec.device.schema = s->schema;
        s->rec.device.state = s->state;
    } else {
        if ((rec->info.machine && !(s->machine = strdup(rec->info.machine))) ||
            (rec->info.description && !(s->description = strdup(rec->info.description)))) {
            free(s->machine);
            return -1;
        }
        s->rec.info.machine = s->machine;
        s->rec.info.description = s->description;
    }
    d->nsaved++;
    return 0;
}

/* ---------------------------------------------------------------- totals */

static int count_type(dump *d, const ms_record *rec)
{
    size_t i = 0;
    while (i < d->ntypes && d->types[i].type < rec->type)
        i++;
    if (i == d->ntypes || d->types[i].type != rec->type) {
        type_stats *t = realloc(d->types, (d->ntypes + 1) * sizeof *t);
        if (!t)
            return -1;
        d->types = t;
        memmove(t + i + 1, t + i, (d->ntypes - i) * sizeof *t);
        t[i] = (type_stats){.type = rec->type};
        d->ntypes++;
    }
    d->types[i].records++;
    d->types[i].bytes += MS_RECORD_HEADER_SIZE + (uint64_t)rec->length;
    d->records++;
    return 0;
}

/* Per-round statistics: a ROUND opens a round, PAGES add to the last one. */
static int count_round(dump *d, const ms_record *rec)
{
    if (rec->type == MS_REC_ROUND) {
        d->rounds_seen++;
        if (d->nrounds == MAX_ROUNDS)
            return 0;
        round_stats *r = realloc(d->rounds, (d->nrounds + 1) * sizeof *r);
        if (!r)
            return -1;
        d->rounds = r;
        r[d->nrounds++] = (round_stats){.round = rec->round, .index = rec->index,
                                        .offset = rec->offset};
        return 0;
    }
    if (rec->type != MS_REC_PAGES || !d->nrounds || d->rounds_seen > d->nrounds)
        return 0;
    round_stats *r = &d->rounds[d->nrounds - 1];
    uint64_t c[MST_STATES], first, last;
    page_span(&rec->pages, c, &first, &last);
    for (unsigned st = 0; st < MST_STATES; st++)
        r->sent[st] += c[st];
    r->records++;
    r->bytes += MS_RECORD_HEADER_SIZE + (uint64_t)rec->length;
    return 0;
}

/* The bytes a part of the stream takes and its share of TOTAL: ' bytes N
 * share P%' (text) or ',"bytes":N,"percent":P' (JSON); for a stream of
 * another format, whose records have no wire bytes, nothing (text) or
 * nulls (JSON). */
static void put_share(dump *d, uint64_t bytes, uint64_t total)
{
    if (d->json && d->foreign)
        fputs(",\"bytes\":null,\"percent\":null", d->out);
    else if (d->json)
        fprintf(d->out, ",\"bytes\":%" PRIu64 ",\"percent\":%.2f", bytes,
                mst_percent(bytes, total));
    else if (!d->foreign)
        fprintf(d->out, " bytes %" PRIu64 " share %.2f%%", bytes, mst_percent(bytes, total));
}

static void print_rounds(dump *d, uint64_t total)
{
    FILE *o = d->out;
    for (size_t i = 0; i < d->nrounds; i++) {
        const round_stats *r = &d->rounds[i];
        if (d->json) {
            fprintf(o, "%s{", i ? "," : "");
            put_round_json(d, &r->round);
            fprintf(o, ",\"index\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"sent\":", r->index,
                    r->offset);
            put_counts_json(d, r->sent, false, false);
            fprintf(o, ",\"records\":%" PRIu64, r->records);
            put_share(d, r->bytes, total);
            fputc('}', o);
        } else {
            fprintf(o, "  round     %" PRIu64, r->round.number);
            put_round_rest(d, &r->round);
            fputs(" sent ", o);
            put_counts_text(d, r->sent);
            fprintf(o, " records %" PRIu64, r->records);
            put_share(d, r->bytes, total);
            fputc('\n', o);
        }
    }
    if (!d->json && d->rounds_seen > d->nrounds)
        fprintf(o, "  rounds    %" PRIu64 " more not listed (memory limit)\n",
                d->rounds_seen - d->nrounds);
}

static void print_totals(dump *d, uint64_t digest)
{
    FILE *o = d->out;
    const uint64_t total = d->stream_bytes;
    char tmp[8];
    size_t nreg = ms_pagemap_region_count(d->pm), ndev = mst_devset_count(d->ds);
    if (d->json) {
        fputs(d->partial ? "{\"kind\":\"totals\",\"partial\":true," : "{\"kind\":\"totals\",", o);
        if (d->foreign) {
            fputs("\"format\":", o);
            put_str(d, d->format);
            fprintf(o,
                    ",\"bytes\":%" PRIu64 ",\"records\":%" PRIu64
                    ",\"preamble_bytes\":null,\"preamble_percent\":null,\"types\":[",
                    total, d->records);
        } else {
            fprintf(o,
                    "\"bytes\":%" PRIu64 ",\"records\":%" PRIu64 ",\"preamble_bytes\":%" PRIu64
                    ",\"preamble_percent\":%.2f,\"types\":[",
                    total, d->records, d->preamble, mst_percent(d->preamble, total));
        }
        for (size_t i = 0; i < d->ntypes; i++) {
            const type_stats *t = &d->types[i];
            fprintf(o, "%s{\"type\":\"%s\",\"type_code\":%u,\"known\":%s,\"records\":%" PRIu64,
                    i ? "," : "", type_label(t->type, tmp), t->type,
                    ms_record_type_name(t->type) ? "true" : "false", t->records);
            put_share(d, t->bytes, total);
            fputc('}', o);
        }
        fputs("],\"regions\":[", o);
    } else {
        fputs(d->partial ? "totals (partial: what was read before the damage)\n" : "totals\n", o);
        if (d->foreign)
            fprintf(o, "  stream    format %s bytes %" PRIu64 " records %" PRIu64 "\n", d->format,
                    total, d->records);
        else
            fprintf(o, "  stream    bytes %" PRIu64 " records %" PRIu64 "\n", total, d->records);
        if (!d->foreign)
            fprintf(o, "  preamble  bytes %" PRIu64 " share %.2f%%\n", d->preamble,
                    mst_percent(d->preamble, total));
        for (size_t i = 0; i < d->ntypes; i++) {
            const type_stats *t = &d->types[i];
            fprintf(o, "  type      %s records %" PRIu64, type_label(t->type, tmp), t->records);
            put_share(d, t->bytes, total);
            fprintf(o, "%s\n", ms_record_type_name(t->type) ? "" : " unknown");
        }
    }
    for (size_t i = 0; i < nreg; i++) {
        const ms_pagemap_region *s = ms_pagemap_get_region(d->pm, i);
        uint64_t c[MST_STATES], sent[MST_STATES], fm, lm;
        bool tracked = mst_pagemap_final(d->pm, s, c, &fm, &lm);
        mst_lump_states(s->sent, sent);
        if (d->json) {
            fprintf(o, "%s{\"id\":%" PRIu32 ",\"name\":", i ? "," : "", s->region.id);
            put_str(d, s->region.name);
            fprintf(o, ",\"pages\":%" PRIu64 ",\"final\":", s->pages);
            if (tracked)
                put_counts_json(d, c, true, false);
            else
                fputs("null", o);
            fputs(",\"sent\":", o);
            put_counts_json(d, sent, false, false);
            fprintf(o, ",\"records\":%" PRIu64, s->records);
            put_share(d, s->bytes, total);
            fputc('}', o);
        } else {
            fprintf(o, "  region    %" PRIu32 " ", s->region.id);
            put_str(d, s->region.name);
            fprintf(o, " pages %" PRIu64 " final ", s->pages);
            if (tracked) {
                put_counts_text(d, c);
                fprintf(o, " missing %" PRIu64, c[MST_STATE_MISSING]);
            } else {
                fputs("untracked", o);
            }
            fputs(" sent ", o);
            put_counts_text(d, sent);
            fprintf(o, " records %" PRIu64, s->records);
            put_share(d, s->bytes, total);
            fputc('\n', o);
        }
    }
    if (d->json)
        fputs("],\"rounds\":[", o);
    print_rounds(d, total);
    if (d->json)
        fputs("],\"devices\":[", o);
    for (size_t i = 0; i < ndev; i++) {
        const mst_device_stats *s = mst_devset_get(d->ds, i);
        if (d->json) {
            fputs(i ? ",{\"path\":" : "{\"path\":", o);
            put_str(d, s->path);
            fprintf(o, ",\"instance\":%" PRIu32 ",\"schema\":", s->instance);
            put_str(d, s->schema);
            fprintf(o, ",\"version\":%" PRIu32 ",\"records\":%" PRIu64, s->version, s->records);
            put_share(d, s->bytes, total);
            fputc('}', o);
        } else {
            fputs("  device    ", o);
            put_str(d, s->path);
            fprintf(o, " instance %" PRIu32 " schema ", s->instance);
            put_str(d, s->schema);
            fprintf(o, " version %" PRIu32 " records %" PRIu64, s->version, s->records);
            put_share(d, s->bytes, total);
            fputc('\n', o);
        }
    }
    if (d->json) {
        fprintf(o, "],\"devices_complete\":%s", mst_devset_full(d->ds) ? "false" : "true");
        print_parts(d, true);
        fputs(",\"digest\":", o);
        if (d->foreign || d->partial)
            fputs("null", o);
        else
            put_hex64(d, digest);
        fputs("}\n", o);
    } else {
        if (mst_devset_full(d->ds))
            fputs("  devices   incomplete (memory limit)\n", o);
        print_parts(d, true);
        if (!d->foreign && !d->partial)
            fprintf(o, "  digest    0x%016" PRIx64 "%s\n", digest, d->parts ? " (migration)" : "");
    }
}

/* ---------------------------------------------------------------- --page */

/* Checks each new region against the REGION of --page. */
static void page_match(dump *d)
{
    size_t n = ms_reader_region_count(d->r);
    for (size_t i = 0; i < n && !d->region_found; i++) {
        const ms_region *g = ms_reader_region(d->r, i);
        if (d->page_by_id ? g->id != d->page_id : strcmp(g->name, d->page_region) != 0)
            continue;
        d->region_found = true;
        d->page_reg = *g;
        snprintf(d->page_reg_name, sizeof d->page_reg_name, "%s", g->name);
        d->page_reg.name = d->page_reg_name;
        d->page_outside = d->pfn >= g->size / g->page_size;
    }
}

static src_chunk *src_find(src_map *m, uint64_t index)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = (size_t)(index * UINT64_C(0x9E3779B97F4A7C15) >> 20) & mask;
    for (; m->slots[i].seq; i = (i + 1) & mask)
        if (m->slots[i].index == index)
            return &m->slots[i];
    return &m->slots[i]; /* the free slot it would take */
}

/* The chunk's entries, made (zeroed) when @make; NULL when absent, or
 * without memory or past the budget (then -1 in *rc). */
static uint64_t *src_chunk_of(src_map *m, uint64_t page, bool make, int *rc)
{
    uint64_t index = page / SRC_CHUNK;
    src_chunk *c = src_find(m, index);
    if (c && c->seq)
        return c->seq;
    if (!make)
        return NULL;
    if ((m->used + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        size_t bytes = (m->used + 1) * SRC_CHUNK * sizeof(uint64_t) + cap * sizeof(src_chunk);
        src_chunk *grown = bytes <= SRC_BUDGET ? calloc(cap, sizeof *grown) : NULL;
        if (!grown) {
            m->full = bytes > SRC_BUDGET;
            *rc = -1;
            return NULL;
        }
        src_map old = *m;
        m->slots = grown;
        m->cap = cap;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].seq)
                *src_find(m, old.slots[i].index) = old.slots[i];
        free(old.slots);
        c = src_find(m, index);
    }
    if ((m->used + 1) * SRC_CHUNK * sizeof(uint64_t) + m->cap * sizeof(src_chunk) > SRC_BUDGET) {
        m->full = true;
        *rc = -1;
        return NULL;
    }
    if (!(c->seq = calloc(SRC_CHUNK, sizeof(uint64_t)))) {
        *rc = -1;
        return NULL;
    }
    c->index = index;
    m->used++;
    return c->seq;
}

static void src_free(src_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].seq);
    free(m->slots);
}

/* Pages [first, first + count) hold DATA copies seq, seq + 1, ... or,
 * with from, what pages [from, from + count) hold (a DUPLICATE extent: the
 * ranges do not meet, section 6.2), or none (seq 0, no from: ZERO, FILL,
 * DISCARDED, IN_PLACE). A run at a time within both pages' chunks. 0, or
 * -1 (d->srcs.full says whether past the budget). */
static int src_set(dump *d, uint64_t first, uint64_t count, uint64_t seq, const uint64_t *from)
{
    int rc = 0;
    for (uint64_t k = 0; k < count;) {
        uint64_t page = first + k, at = page % SRC_CHUNK;
        uint64_t n = SRC_CHUNK - at < count - k ? SRC_CHUNK - at : count - k;
        const uint64_t *sc = NULL;
        if (from) {
            uint64_t sp = *from + k, sat = sp % SRC_CHUNK;
            if (SRC_CHUNK - sat < n)
                n = SRC_CHUNK - sat;
            sc = src_chunk_of(&d->srcs, sp, false, &rc);
            if (sc)
                sc += sat;
        }
        uint64_t *c = src_chunk_of(&d->srcs, page, sc || seq, &rc);
        if (rc)
            return rc;
        if (c && sc)
            memcpy(c + at, sc, (size_t)n * sizeof *c);
        else if (c && seq)
            for (uint64_t j = 0; j < n; j++)
                c[at + j] = seq + k + j;
        else if (c)
            memset(c + at, 0, (size_t)n * sizeof *c);
        k += n;
    }
    return 0;
}

static int page_apply(dump *d, const ms_record *rec)
{
    const ms_pages *pg = &rec->pages;
    if (!d->region_found || d->page_outside || pg->region->id != d->page_reg.id)
        return 0;
    bool dups = d->hdr && (d->hdr->required_features & MS_FEATURE_DUPLICATES);
    size_t data_at = 0; /* DATA pages before the extent, in this record */
    for (size_t i = 0; i < pg->extent_count; i++) {
        const ms_extent *e = &pg->extents[i];
        if (dups &&
            src_set(d, e->first, e->count, e->state == MS_PAGE_DATA ? d->data_seq + data_at + 1 : 0,
                    e->state == MS_PAGE_DUPLICATE ? &e->arg : NULL))
            return -1;
        if (d->pfn >= e->first && d->pfn - e->first < e->count) {
            d->page_state = e->state < MST_STATE_OTHER ? e->state : MST_STATE_OTHER;
            d->page_arg = e->state == MS_PAGE_IN_PLACE
                              ? e->arg + (d->pfn - e->first) * pg->region->page_size
                          : e->state == MS_PAGE_DUPLICATE ? e->arg + (d->pfn - e->first)
                                                          : e->arg;
            d->page_copies++;
            d->page_index = rec->index;
            d->page_offset = rec->offset;
            d->page_part = rec->part && d->parts ? (int64_t)rec->part->index : -1;
            if (e->state == MS_PAGE_DATA) {
                size_t ps = pg->region->page_size;
                if (!d->page && !(d->page = malloc(ps)))
                    return -1;
                memcpy(d->page, pg->data + (data_at + (size_t)(d->pfn - e->first)) * ps, ps);
            }
            if (!dups) /* nothing more to follow in this record */
                return 0;
        }
        if (e->state == MS_PAGE_DATA)
            data_at += e->count;
    }
    d->data_seq += data_at;
    return 0;
}

/* hexdump -C style; a run of lines equal to the one before prints as "*". */
static void hexdump(FILE *o, const uint8_t *p, size_t n)
{
    bool starred = false;
    for (size_t at = 0; at < n; at += 16) {
        if (at && memcmp(p + at, p + at - 16, 16) == 0) {
            if (!starred)
                fputs("*\n", o);
            starred = true;
            continue;
        }
        starred = false;
        fprintf(o, "%08zx ", at);
        for (size_t k = 0; k < 16; k++)
            fprintf(o, "%s%02x", k == 8 ? "  " : " ", p[at + k]);
        fputs("  |", o);
        for (size_t k = 0; k < 16; k++)
            fputc(p[at + k] >= 0x20 && p[at + k] < 0x7f ? p[at + k] : '.', o);
        fputs("|\n", o);
    }
    fprintf(o, "%08zx\n", n);
}

/* Reads the stream again up to DATA copy d->page_seq of the --page's
 * region, and keeps its bytes and record: the contents of a DUPLICATE page
 * (the reference was resolved to that copy as the stream was read). A
 * second read, for a regular file only; 0, or -1 having said why. */
static int read_source(dump *d)
{
    mst_stream st;
    const mst_stream_hooks hooks = {.quiet = true};
    if (mst_stream_open(&st, d->paths, d->npaths, &hooks)) {
        mst_error("%s", st.why);
        return -1;
    }
    const ms_header *h;
    const ms_record *rec;
    uint64_t seq = 0;
    int rc = ms_reader_header(st.r, &h);
    while (rc == 0 && !d->src_read && ms_reader_next(st.r, &rec) > 0) {
        if (rec->type != MS_REC_PAGES || rec->pages.region->id != d->page_reg.id)
            continue;
        size_t data_at = 0, ps = rec->pages.region->page_size;
        for (size_t i = 0; i < rec->pages.extent_count && !d->src_read; i++) {
            const ms_extent *e = &rec->pages.extents[i];
            if (e->state != MS_PAGE_DATA)
                continue;
            if (d->page_seq - seq <= e->count) {
                if (!d->page && !(d->page = malloc(ps))) {
                    mst_error("out of memory");
                    mst_stream_close(&st);
                    return -1;
                }
                memcpy(d->page, rec->pages.data + (data_at + (d->page_seq - seq - 1)) * ps, ps);
                d->src_index = rec->index;
                d->src_offset = rec->offset;
                d->src_read = true;
            }
            seq += e->count;
            data_at += e->count;
        }
    }
    if (!d->src_read)
        mst_error("the stream changed as it was read again: DATA copy %" PRIu64
                  " of region %" PRIu32 " is not there",
                  d->page_seq, d->page_reg.id);
    mst_stream_close(&st);
    return d->src_read ? 0 : -1;
}

static int print_page(dump *d)
{
    FILE *o = d->out;
    if (!d->region_found) {
        mst_error("no region %s%s in the stream", d->page_by_id ? "with id " : "named ",
                  d->page_region);
        return MST_EXIT_FAIL;
    }
    const ms_region *g = &d->page_reg;
    uint64_t pages = g->size / g->page_size;
    if (d->page_outside) {
        mst_error("page %" PRIu64 " is outside region %" PRIu32 " \"%s\" (%" PRIu64 " pages)",
                  d->pfn, g->id, g->name, pages);
        return MST_EXIT_FAIL;
    }
    const char *state = d->page_state == MST_STATE_MISSING ? "missing" : state_name(d->page_state);
    size_t ps = g->page_size;
    uint8_t *zero = NULL;
    if (d->page_state == MS_PAGE_DUPLICATE) {
        /* The DATA copy the reference was resolved to (FORMAT.md 6.2). */
        int rc = 0;
        const uint64_t *c = src_chunk_of(&d->srcs, d->pfn, false, &rc);
        d->page_seq = c ? c[d->pfn % SRC_CHUNK] : 0;
        if (d->page_seq && d->rereadable && read_source(d))
            return MST_EXIT_ERROR;
    }
    const uint8_t *bytes = d->page_state == MS_PAGE_DATA || d->src_read ? d->page : NULL;
    if (d->page_state == MS_PAGE_ZERO || d->page_state == MS_PAGE_FILL) {
        if (!(zero = calloc(1, ps))) {
            mst_error("out of memory");
            return MST_EXIT_ERROR;
        }
        for (size_t k = 0; d->page_state == MS_PAGE_FILL && k < ps; k++)
            zero[k] = (uint8_t)(d->page_arg >> (8 * (k % 8))); /* arg is little-endian */
        bytes = zero;
    }
    if (d->json) {
        fprintf(o, "{\"kind\":\"page\",\"region\":%" PRIu32 ",\"region_name\":", g->id);
        put_str(d, g->name);
        fprintf(o, ",\"page\":%" PRIu64 ",\"page_size\":%zu,\"gpa\":", d->pfn, ps);
        if (g->has_gpa)
            fprintf(o, "\"0x%" PRIx64 "\"", g->gpa + d->pfn * ps);
        else
            fputs("null", o);
        fprintf(o, ",\"state\":\"%s\",\"copies\":%" PRIu64 ",\"record\":", state, d->page_copies);
        if (d->page_copies)
            fprintf(o, "%" PRIu64 ",\"record_offset\":%" PRIu64, d->page_index, d->page_offset);
        else
            fputs("null,\"record_offset\":null", o);
        if (d->page_copies && d->page_part >= 0)
            fprintf(o, ",\"record_part\":%" PRId64, d->page_part);
        if (d->page_state == MS_PAGE_FILL || d->page_state == MS_PAGE_IN_PLACE)
            fprintf(o, ",\"%s\":\"0x%" PRIx64 "\"",
                    d->page_state == MS_PAGE_FILL ? "fill" : "address", d->page_arg);
        if (d->page_state == MS_PAGE_DUPLICATE) {
            fprintf(o, ",\"source\":%" PRIu64 ",\"source_record\":", d->page_arg);
            if (d->src_read)
                fprintf(o, "%" PRIu64 ",\"source_record_offset\":%" PRIu64, d->src_index,
                        d->src_offset);
            else
                fputs("null,\"source_record_offset\":null", o);
        }
        fputs(",\"data\":", o);
        if (bytes)
            mst_json_hex(o, bytes, ps);
        else
            fputs("null", o);
        fputs("}\n", o);
    } else {
        fprintf(o, "page %" PRIu64 " of region %" PRIu32 " ", d->pfn, g->id);
        put_str(d, g->name);
        if (g->has_gpa)
            fprintf(o, " gpa 0x%" PRIx64, g->gpa + d->pfn * ps);
        fprintf(o, " page-size %zu: %s", ps, state);
        if (d->page_copies && d->page_part >= 0)
            fprintf(o, ", last copy in part %" PRId64 ",", d->page_part);
        if (d->page_copies)
            fprintf(o, "%s record %" PRIu64 " at byte %" PRIu64 " (%" PRIu64 " %s)",
                    d->page_part >= 0 ? "" : ", last copy in", d->page_index, d->page_offset,
                    d->page_copies, d->page_copies == 1 ? "copy" : "copies");
        if (d->page_state == MS_PAGE_ZERO)
            fputs("; a ZERO page: every byte is zero", o);
        else if (d->page_state == MS_PAGE_FILL)
            fprintf(o, "; a FILL page: every 8-byte word is 0x%016" PRIx64 " (little-endian)",
                    d->page_arg);
        else if (d->page_state == MS_PAGE_DISCARDED)
            fputs("; a DISCARDED page: the guest hinted it free, its contents do not matter", o);
        else if (d->page_state == MS_PAGE_IN_PLACE)
            fprintf(o, "; an IN_PLACE page: not in the stream, kept in place at address 0x%" PRIx64,
                    d->page_arg);
        else if (d->page_state == MS_PAGE_DUPLICATE && d->src_read)
            fprintf(o,
                    "; a DUPLICATE page: it holds what page %" PRIu64 " of the region held "
                    "when that record came, the DATA copy of record %" PRIu64 " at byte %" PRIu64,
                    d->page_arg, d->src_index, d->src_offset);
        else if (d->page_state == MS_PAGE_DUPLICATE && d->page_seq)
            fprintf(o,
                    "; a DUPLICATE page: it holds what page %" PRIu64 " of the region held "
                    "when that record came (its bytes need a second read of the stream, which "
                    "only a file named as STREAM allows; migstream-replay writes them)",
                    d->page_arg);
        else if (d->page_state == MS_PAGE_DUPLICATE)
            fprintf(o,
                    "; a DUPLICATE page of page %" PRIu64 ", which held no DATA sent earlier "
                    "(FORMAT.md section 6.2: the stream is invalid)",
                    d->page_arg);
        else if (d->page_state == MST_STATE_MISSING)
            fputs("; never sent in this stream", o);
        fputc('\n', o);
        if (bytes)
            hexdump(o, bytes, ps);
    }
    free(zero);
    return MST_EXIT_OK;
}

/* -------------------------------------------------------------- --device */

/* Keeps the state of a record of the --device path. Its instance is found
 * through the device set (d->ds: a hash of path and instance, in order of
 * first appearance, within MST_DEVSET_BUDGET), so each record costs the
 * same however many instances came before; devs[i] is the state of the
 * set's entry i. The states kept are held within MST_DEVSET_BUDGET too.
 * 0, -1 without memory, 1 past a budget (d->devs_full says which). */
static int device_apply(dump *d, const ms_record *rec)
{
    const ms_device *v = &rec->device;
    if (strcmp(v->path, d->device_path) != 0)
        return 0;
    const mst_device_stats *e = mst_devset_add(d->ds, rec);
    if (!e)
        return mst_devset_full(d->ds) ? 1 : -1;
    size_t i = (size_t)(e - mst_devset_get(d->ds, 0));
    if (i == d->ndevs) {
        if (d->ndevs == d->devs_cap) {
            size_t cap = d->devs_cap ? 2 * d->devs_cap : 16;
            device_copy *p = realloc(d->devs, cap * sizeof *p);
            if (!p)
                return -1;
            d->devs = p;
            d->devs_cap = cap;
        }
        memset(&d->devs[i], 0, sizeof d->devs[i]);
        d->devs[i].instance = v->instance;
        d->ndevs++;
    }
    device_copy *c = &d->devs[i];
    if (v->state_size > c->state_size &&
        v->state_size - c->state_size > MST_DEVSET_BUDGET - d->devs_bytes)
        return 1;
    char *schema = strdup(v->schema);
    uint8_t *state = malloc(v->state_size ? v->state_size : 1);
    if (!schema || !state) {
        free(schema);
        free(state);
        return -1;
    }
    memcpy(state, v->state, v->state_size);
    free(c->schema);
    free(c->state);
    d->devs_bytes = d->devs_bytes - c->state_size + v->state_size;
    c->schema = schema;
    c->state = state;
    c->state_size = v->state_size;
    c->version = v->version;
    c->records++;
    c->last_index = rec->index;
    c->last_offset = rec->offset;
    return 0;
}

static int by_instance(const void *a, const void *b)
{
    uint32_t x = ((const device_copy *)a)->instance, y = ((const device_copy *)b)->instance;
    return x < y ? -1 : x > y;
}

static int print_devices(dump *d)
{
    FILE *o = d->out;
    if (d->ndevs == 0) {
        mst_error("no device with path \"%s\" in the stream", d->device_path);
        return MST_EXIT_FAIL;
    }
    qsort(d->devs, d->ndevs, sizeof *d->devs, by_instance);
    for (size_t i = 0; i < d->ndevs; i++) {
        const device_copy *c = &d->devs[i];
        if (d->json) {
            fputs("{\"kind\":\"device\",\"path\":", o);
            put_str(d, d->device_path);
            fprintf(o, ",\"instance\":%" PRIu32 ",\"schema\":", c->instance);
            put_str(d, c->schema);
            fprintf(o,
                    ",\"version\":%" PRIu32 ",\"records\":%" PRIu64 ",\"record\":%" PRIu64
                    ",\"record_offset\":%" PRIu64 ",\"state_size\":%zu,\"state\":",
                    c->version, c->records, c->last_index, c->last_offset, c->state_size);
            put_json_state(d, c->state, c->state_size);
            fputs("}\n", o);
        } else {
            fputs("device ", o);
            put_str(d, d->device_path);
            fprintf(o, " instance %" PRIu32 " schema ", c->instance);
            put_str(d, c->schema);
            fprintf(o,
                    " version %" PRIu32 " state-size %zu, last record %" PRIu64 " at byte %" PRIu64
                    " (%" PRIu64 " %s)\n",
                    c->version, c->state_size, c->last_index, c->last_offset, c->records,
                    c->records == 1 ? "record" : "records");
            put_diag(d, c->state, c->state_size, false);
            fputc('\n', o);
        }
    }
    return MST_EXIT_OK;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--json | --summary] [-q] [--progress=MODE] STREAM [INPUT...]\n"
            "       %s [--json] --page REGION:PFN STREAM [INPUT...]\n"
            "       %s [--json] --device PATH STREAM [INPUT...]\n"
            "Shows a migration stream of any format this build reads (libmigstream's;\n"
            "QEMU's with the QEMU module): a header block, one line per record and a\n"
            "totals block. STREAM \"-\" reads standard input. INPUTs are further inputs\n"
            "of the same stream, in any order: QEMU's multifd channel captures, or the\n"
            "other parts of a libmigstream migration in parts, shown as one, round by\n"
            "round, each record with its part, and each part's own facts in the header\n"
            "and totals.\n"
            "\n"
            "  --json            JSON Lines: one object per header, record and totals\n"
            "  --summary         only the totals block\n"
            "  --page REGION:PFN one page's final contents as a hexdump; REGION is a\n"
            "                    region id (decimal) or name, PFN a page index\n"
            "  --device PATH     the final state of every instance of device PATH\n",
            mst_prog, mst_prog, mst_prog);
    mst_print_progress_help(f, 17, false);
    fputs("  --help            this text\n"
          "  --version         version of the tool and the library\n"
          "\n"
          "A bad stream is shown up to the damage, with the totals of what was read,\n"
          "then where the damage starts (exit status 1); so is --page or --device\n"
          "naming nothing in the stream (without totals).\n"
          "\n",
          f);
    mst_print_exit_table(f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", mst_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", mst_prog);
    return MST_EXIT_ERROR;
}

/* Parses decimal, or hexadecimal with 0x; the whole string. */
static bool parse_u64(const char *s, uint64_t *v)
{
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, base);
    if (errno || *end)
        return false;
    *v = x;
    return true;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Reads the stream; returns the exit status. */
static int run(dump *d)
{
    const ms_record *rec = NULL;
    if (d->json)
        mst_json_output_head(d->out);
    int rc = ms_reader_header(d->r, &d->hdr);
    bool nomem = false;
    int kept = 0; /* device_apply: 1 past a budget */
    uint64_t digest = 0;
    key_list keys;
    if (rc == 0) {
        d->preamble = ms_reader_offset(d->r);
        for (uint32_t i = 0; d->parts && i < ms_reader_part_count(d->r); i++)
            d->preamble = i ? d->preamble + ms_reader_part_info(d->r, i)->header_size
                            : ms_reader_part_info(d->r, i)->header_size;
        while ((rc = ms_reader_next(d->r, &rec)) > 0) {
            if (count_type(d, rec) || ms_pagemap_sync(d->pm, d->r) == MS_ENOMEM) {
                nomem = true;
                break;
            }
            /* Another format's records have no wire bytes: its offset. */
            d->read_end = d->foreign ? ms_reader_offset(d->r)
                                     : rec->offset + MS_RECORD_HEADER_SIZE + rec->length;
            if (d->part_end && rec->part && rec->part->index < ms_reader_part_count(d->r))
                d->part_end[rec->part->index] = d->read_end;
            if (rec->type == MS_REC_END) {
                digest = rec->checksum;
                d->end_index = rec->index;
                d->end_offset = rec->offset;
                /* Another format's END counts the bytes of its stream. */
                d->stream_bytes = d->foreign ? rec->totals.bytes
                                             : rec->offset + MS_RECORD_HEADER_SIZE + rec->length;
            }
            switch (d->mode) {
            case MODE_FULL:
            case MODE_SUMMARY:
                ms_pagemap_apply(d->pm, rec); /* a region past the budget is untracked */
                if (count_round(d, rec))
                    nomem = true;
                if (rec->type == MS_REC_DEVICE && !mst_devset_add(d->ds, rec) &&
                    !mst_devset_full(d->ds))
                    nomem = true;
                break;
            case MODE_PAGE:
                if (rec->type == MS_REC_REGIONS)
                    page_match(d);
                if (rec->type == MS_REC_PAGES && page_apply(d, rec))
                    nomem = true;
                break;
            case MODE_DEVICE:
                if (rec->type == MS_REC_DEVICE && (kept = device_apply(d, rec)) != 0)
                    nomem = true;
                break;
            }
            if (nomem)
                break;
            if (d->mode != MODE_FULL)
                continue;
            unknown_keys(rec, &keys);
            if (rec->type == MS_REC_REGIONS)
                d->regions_seen = true;
            if (to_save(d, rec)) {
                if (save_record(d, rec, &keys)) {
                    nomem = true;
                    break;
                }
                continue;
            }
            if (!d->header_done)
                print_header(d);
            print_record(d, rec, &keys);
        }
        if (d->mode == MODE_FULL && !d->header_done)
            print_header(d);
    }
    mst_progress_done(d->pg);
    if (nomem && d->srcs.full) { /* the page-state budget, as diff's: exit 2 */
        mst_error("following the DUPLICATE pages of region %" PRIu32 " would take more than "
                  "%zu MiB",
                  d->page_reg.id, (size_t)SRC_BUDGET >> 20);
        return MST_EXIT_ERROR;
    }
    if (nomem && kept > 0) { /* a limit, as the reader's: exit 1 */
        mst_error("the states of device \"%s\" would take more than %u MiB",
                  d->device_path, MST_DEVSET_BUDGET >> 20);
        return MST_EXIT_FAIL;
    }
    if (nomem) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    /* After END, a file must hold nothing more (FORMAT.md section 2). The
     * stream itself is complete then, so its output comes out before the
     * error. The reader's message names the record after END: say it here. */
    char msg[256];
    const char *why = ms_reader_errmsg(d->r);
    int64_t where = ms_reader_error_record(d->r);
    bool trailing = false;
    if (rc == 0 && d->parts) { /* the parts' bytes, as read to their ENDs */
        d->stream_bytes = 0;
        for (uint32_t i = 0; i < ms_reader_part_count(d->r); i++)
            d->stream_bytes += ms_reader_part_info(d->r, i)->bytes;
    }
    if (rc == 0 && d->parts && (rc = ms_reader_expect_eof(d->r)) == MS_ECORRUPT) {
        trailing = true; /* the reader names the part and its END */
        where = ms_reader_error_record(d->r);
        why = ms_reader_errmsg(d->r);
    } else if (rc == 0 && (rc = ms_reader_expect_eof(d->r)) == MS_ECORRUPT) {
        trailing = true;
        where = (int64_t)d->end_index;
        snprintf(msg, sizeof msg,
                 "record %" PRIu64 " (END at byte %" PRIu64 "), byte %" PRIu64
                 ": bytes follow the END record",
                 d->end_index, d->end_offset, ms_reader_error_offset(d->r));
        why = msg;
    } else if (rc < 0) {
        why = ms_reader_errmsg(d->r);
        where = ms_reader_error_record(d->r);
    }
    /* A damaged stream (not an input that failed): the totals of what was
     * read before the damage, marked partial, then the error. */
    bool damaged = rc < 0 && !trailing && mst_exit_for(rc) == MST_EXIT_FAIL && d->hdr &&
                   (d->mode == MODE_FULL || d->mode == MODE_SUMMARY);
    if (damaged) {
        d->partial = true;
        d->stream_bytes = d->records ? d->read_end : d->preamble;
        for (uint32_t i = 0; d->parts && d->part_end && i < ms_reader_part_count(d->r); i++) {
            const ms_part_info *pi = ms_reader_part_info(d->r, i);
            if (!d->part_end[i])
                d->part_end[i] = pi->header_size; /* no record read whole */
            d->stream_bytes = i ? d->stream_bytes + (pi->ended ? pi->bytes : d->part_end[i])
                                : (pi->ended ? pi->bytes : d->part_end[i]);
        }
        print_totals(d, 0);
    }
    int status = MST_EXIT_OK;
    if (rc == 0 || trailing) {
        switch (d->mode) {
        case MODE_FULL:
        case MODE_SUMMARY:
            print_totals(d, digest);
            break;
        case MODE_PAGE:
            status = print_page(d);
            break;
        case MODE_DEVICE:
            status = print_devices(d);
            break;
        }
    }
    if (rc == 0)
        return status;
    if (d->json) {
        mst_json_error_head(d->out);
        mst_json_error_tail(d->out, rc, ms_reader_error_offset(d->r), where, why);
    }
    fflush(d->out);
    mst_error("%s", why);
    return mst_exit_for(rc);
}

int main(int argc, char **argv)
{
    dump d = {.out = stdout, .mode = MODE_FULL, .page_part = -1};
    const char *page_arg = NULL;
    bool summary = false, only_args = false, quiet = false;
    int took;
    mst_progress pg;
    mst_init(argv[0]);
    /* STREAM [INPUT...]: the inputs of one stream, in any order (QEMU's
     * multifd channels, the parts of a migration in parts). */
    const char **paths = calloc((size_t)argc, sizeof *paths);
    size_t npaths = 0;
    if (!paths) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    int status = MST_EXIT_ERROR;
    char *region_part = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            paths[npaths++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_args = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            status = MST_EXIT_OK;
            goto out;
        } else if (strcmp(a, "--version") == 0) {
            mst_print_version();
            status = MST_EXIT_OK;
            goto out;
        } else if (strcmp(a, "--json") == 0) {
            d.json = true;
        } else if ((took = mst_progress_arg(argc, argv, &i, &quiet)) != 0) {
            if (took < 0)
                goto out;
        } else if (strcmp(a, "--summary") == 0) {
            summary = true;
        } else if (strcmp(a, "--page") == 0 || strncmp(a, "--page=", 7) == 0 ||
                   strcmp(a, "--device") == 0 || strncmp(a, "--device=", 9) == 0) {
            bool is_page = a[2] == 'p';
            const char *eq = strchr(a, '=');
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                status = usage_error("option %s needs an argument", a);
                goto out;
            }
            if ((is_page ? page_arg : d.device_path) != NULL) {
                status = usage_error("option %s given twice", is_page ? "--page" : "--device");
                goto out;
            }
            if (is_page)
                page_arg = v;
            else
                d.device_path = v;
        } else {
            status = usage_error("unknown option '%s'", a);
            goto out;
        }
    }
    if (!npaths) {
        status = usage_error("%s", "no STREAM given");
        goto out;
    }
    if (page_arg && d.device_path) {
        status = usage_error("%s", "--page and --device exclude each other");
        goto out;
    }
    if (summary && (page_arg || d.device_path)) {
        status = usage_error("--summary excludes %s", page_arg ? "--page" : "--device");
        goto out;
    }
    if (page_arg) {
        const char *colon = strrchr(page_arg, ':');
        if (!colon || colon == page_arg || !parse_u64(colon + 1, &d.pfn)) {
            status = usage_error("--page wants REGION:PFN (e.g. 0:5 or pc.ram:0x10), not '%s'",
                                 page_arg);
            goto out;
        }
        region_part = strndup(page_arg, (size_t)(colon - page_arg));
        if (!region_part) {
            mst_error("out of memory");
            goto out;
        }
        d.page_region = region_part;
        uint64_t id;
        d.page_by_id = all_digits(region_part) && parse_u64(region_part, &id) && id <= UINT32_MAX;
        if (d.page_by_id)
            d.page_id = (uint32_t)id;
        d.mode = MODE_PAGE;
    } else if (d.device_path) {
        d.mode = MODE_DEVICE;
    } else if (summary) {
        d.mode = MODE_SUMMARY;
    }

    mst_stream st;
    mst_progress_init(&pg, quiet, mst_paths_size(paths, npaths));
    const mst_stream_hooks hooks = {.progress = &pg};
    d.pg = &pg;
    if (mst_stream_open(&st, paths, npaths, &hooks) == 0) {
        d.r = st.r;
        d.paths = paths;
        d.npaths = npaths;
        /* Standard input, even a file, is read once: its offset is ours. */
        d.rereadable = st.n == 1 && st.in[0].regular && strcmp(paths[0], "-") != 0;
        d.foreign = st.foreign;
        d.format = st.format;
        d.parts = mst_is_parts(st.r);
        if (d.parts)
            d.part_end = calloc(ms_reader_part_count(st.r), sizeof *d.part_end);
        d.pm = mst_pagemap_new();
        d.ds = mst_devset_new(MST_DEVSET_BUDGET);
        if (!d.pm || !d.ds || (d.parts && !d.part_end))
            mst_error("out of memory");
        else
            status = run(&d);
    }
    mst_progress_done(&pg); /* when run() did not */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write standard output");
        status = MST_EXIT_ERROR;
    }
    for (size_t i = 0; i < d.nsaved; i++)
        saved_free(&d.saved[i]);
    free(d.saved);
    for (size_t i = 0; i < d.ndevs; i++) {
        free(d.devs[i].schema);
        free(d.devs[i].state);
    }
    free(d.devs);
    free(d.page);
    src_free(&d.srcs);
    free(d.types);
    free(d.rounds);
    free(d.part_end);
    ms_pagemap_free(d.pm);
    mst_devset_free(d.ds);
    mst_stream_close(&st);
out:
    free(region_part);
    free(paths);
    return status;
}
