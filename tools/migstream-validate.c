/*
 * migstream-validate: checks a stream against docs/FORMAT.md and reports
 * every problem it can find, not just the first.
 *
 * Most checks are the reader's, run in its lenient mode
 * (ms_reader_options.on_problem): it reports each problem it can step over
 * and reads on, handing out damaged records with ms_record.status set. This
 * tool adds what spans the stream: devices sent twice, unknown optional
 * records and feature bits, a newer minor version, bytes after END, and
 * pages never sent. Reading is single-pass and memory stays bounded (see
 * MEMORY in docs/man/migstream-validate.1). The report format is documented
 * there too: keep it stable.
 */
#define _GNU_SOURCE /* open_memstream */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <migstream/migstream.h>

#include "common.h"
#include "parts.h"

#define PENDING_MAX 16 /* reader problems held per record, for context */

typedef enum { SEV_ERROR, SEV_WARNING } severity;

/* What a problem concerns, beyond its record. */
typedef struct concerns {
    enum { ABOUT_NONE, ABOUT_PAGES, ABOUT_DEVICE } kind;
    uint32_t region;
    const char *region_name;
    uint64_t first, last, missing; /* pages; missing: only for missing-pages */
    const char *path;
    uint32_t instance;
} concerns;

typedef struct pending {
    int status;
    uint64_t offset;
    int64_t record;
    int64_t part; /* of a migration in parts, or -1 */
    char *msg;
} pending;

/* The record each IN_PLACE extent of the overlap check came from, by its
 * index in the ms_in_place list. */
typedef struct in_place_at {
    uint64_t index, offset;
} in_place_at;

typedef struct validator {
    FILE *out;
    bool json, strict;
    ms_reader *r;
    /* A stream of another format (QEMU's ...): its records carry no wire
     * bytes and it has no digest; format names it. */
    bool foreign;
    const char *format;
    pending pend[PENDING_MAX];
    size_t npend;
    uint64_t errors, warnings;
    ms_pagemap *pm;
    mst_devset *ds;
    bool devset_warned;
    uint64_t records;
    bool end_seen;
    uint64_t digest, end_index, end_offset;
    uint64_t stream_bytes; /* up to the end of END */
    ms_in_place *inp; /* every IN_PLACE extent, for the overlap check */
    in_place_at *inp_at;
    size_t inp_cap;
    bool inp_full;
#if MS_HAVE_SCHEMA
    ms_schema_set *schema; /* --schema: device states are checked against it */
#endif
    /* The inputs are several parts of one migration, read as one */
    bool parts;
    mst_round_check *rounds; /* pages and devices of a round in one part */
    uint64_t round;          /* the round in effect */
    int64_t part;            /* the part of the problem being reported, or -1 */

    /* Framing (see watch_framing()): after a record whose checksum fails,
     * the reports are held until the records after it show whether they
     * still line up. Not for a migration in parts or another format. */
    bool watch;
    FILE *out_real; /* standard output, while the reports are held */
    char *held;     /* the held reports (open_memstream) */
    size_t held_len;
    int suspect;   /* 0; 1: the record after the suspect is awaited; 2: the next */
    ms_record sus; /* the suspect record: type, index, offset, length */
    uint64_t sus_errors, sus_warnings, sus_records;
    size_t sus_devices;
    uint64_t input_size; /* the input's, if a regular file; else 0 */
    bool framing_lost;
    mst_progress *pg; /* ended once the stream is read */
} validator;

/* ------------------------------------------------------------- reporting */

static const char *check_name(int status)
{
    switch (status) {
    case MS_ECHECKSUM:
        return "checksum";
    case MS_ECORRUPT:
        return "format";
    case MS_ECBOR:
        return "cbor";
    case MS_EUNKNOWN:
        return "must-understand";
    case MS_ELIMIT:
        return "limit";
    case MS_ECOMPRESS:
        return "compression";
    case MS_ETRUNCATED:
        return "truncated";
    case MS_EMAGIC:
        return "magic";
    case MS_EVERSION:
        return "version";
    case MS_EFEATURE:
        return "required-feature";
    case MS_EIO:
        return "io";
    case MS_ENOMEM:
        return "memory";
    case 0: /* a warning: a structural check of another format's stream */
        return "format";
    default:
        return "other";
    }
}

static void report(validator *v, severity sev, const char *check, int status, uint64_t offset,
                   int64_t record, const concerns *c, bool context_in_text, const char *msg)
{
    FILE *o = v->out;
    if (sev == SEV_ERROR)
        v->errors++;
    else
        v->warnings++;
    const char *sname = sev == SEV_ERROR ? "error" : "warning";
    if (!v->json) {
        fprintf(o, "%s %s: %s", sname, check, msg);
        if (context_in_text && c && c->kind == ABOUT_PAGES) {
            fprintf(o, " [region %" PRIu32 " ", c->region);
            mst_json_string(o, c->region_name);
            fprintf(o, " pages %" PRIu64 "..%" PRIu64 "]", c->first, c->last);
        } else if (context_in_text && c && c->kind == ABOUT_DEVICE) {
            fputs(" [device ", o);
            mst_json_string(o, c->path);
            fprintf(o, " instance %" PRIu32 "]", c->instance);
        }
        fputc('\n', o);
        return;
    }
    fprintf(o, "{\"kind\":\"problem\",\"severity\":\"%s\",\"check\":\"%s\",\"status\":", sname,
            check);
    if (status)
        mst_json_status(o, status);
    else
        fputs("null", o);
    fprintf(o, ",\"offset\":%" PRIu64 ",\"record\":", offset);
    if (record >= 0)
        fprintf(o, "%" PRId64, record);
    else
        fputs("null", o);
    if (v->parts) { /* offset and record count in this part */
        if (v->part >= 0)
            fprintf(o, ",\"part\":%" PRId64, v->part);
        else
            fputs(",\"part\":null", o);
    }
    fputs(",\"message\":", o);
    mst_json_string(o, msg);
    fputs(",\"concerns\":", o);
    if (c && c->kind == ABOUT_PAGES) {
        fprintf(o, "{\"region\":%" PRIu32 ",\"region_name\":", c->region);
        mst_json_string(o, c->region_name);
        fprintf(o, ",\"first_page\":%" PRIu64 ",\"last_page\":%" PRIu64, c->first, c->last);
        if (c->missing)
            fprintf(o, ",\"missing\":%" PRIu64, c->missing);
        fputc('}', o);
    } else if (c && c->kind == ABOUT_DEVICE) {
        fputs("{\"path\":", o);
        mst_json_string(o, c->path);
        fprintf(o, ",\"instance\":%" PRIu32 "}", c->instance);
    } else {
        fputs("null", o);
    }
    fputs("}\n", o);
}

__attribute__((format(printf, 8, 9))) static void
reportf(validator *v, severity sev, const char *check, uint64_t offset, int64_t record,
        const concerns *c, const ms_record *rec, const char *fmt, ...)
{
    char msg[1024], detail[900];
    va_list ap;
    va_start(ap, fmt);
    mst_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    v->part = rec && rec->part && v->parts ? (int64_t)rec->part->index : -1;
    if (rec) { /* worded like the reader's own messages */
        const char *name = ms_record_type_name(rec->type);
        char tn[16], in_part[320];
        if (!name)
            snprintf(tn, sizeof tn, "type 0x%04x", rec->type);
        snprintf(msg, sizeof msg, "%srecord %" PRIu64 " (%s at byte %" PRIu64 "): %s",
                 mst_part_prefix(v->r, rec, in_part, sizeof in_part), rec->index, name ? name : tn,
                 rec->offset, detail);
    } else if (record < 0) {
        snprintf(msg, sizeof msg, "preamble, byte %" PRIu64 ": %s", offset, detail);
    } else {
        snprintf(msg, sizeof msg, "%s", detail);
    }
    report(v, sev, check, 0, offset, record, c, false, msg);
}

/* Reader callback: holds the problem until its record is handed out, so
 * that the report can say which region, pages or device it concerns. */
static void on_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *message)
{
    validator *v = ctx;
    severity sev = status ? SEV_ERROR : SEV_WARNING; /* 0: a warning (reader.h) */
    v->part = ms_reader_error_part(v->r);
    if (v->npend == PENDING_MAX) {
        report(v, sev, check_name(status), status, offset, record, NULL, false, message);
        return;
    }
    pending *p = &v->pend[v->npend];
    p->msg = strdup(message);
    if (!p->msg) {
        report(v, sev, check_name(status), status, offset, record, NULL, false, message);
        return;
    }
    p->status = status;
    p->offset = offset;
    p->record = record;
    p->part = v->part;
    v->npend++;
}

/* What a decoded record concerns. */
static bool record_concerns(const ms_record *rec, concerns *c)
{
    memset(c, 0, sizeof *c);
    if (rec && rec->type == MS_REC_PAGES && rec->pages.region && rec->pages.extent_count) {
        const ms_pages *pg = &rec->pages;
        const ms_extent *e = &pg->extents[pg->extent_count - 1];
        c->kind = ABOUT_PAGES;
        c->region = pg->region->id;
        c->region_name = pg->region->name;
        c->first = pg->extents[0].first;
        c->last = e->first + e->count - 1;
        return true;
    }
    if (rec && rec->type == MS_REC_DEVICE && rec->device.path) {
        c->kind = ABOUT_DEVICE;
        c->path = rec->device.path;
        c->instance = rec->device.instance;
        return true;
    }
    return false;
}

static void flush_pending(validator *v, const ms_record *rec)
{
    concerns c;
    bool have = record_concerns(rec, &c);
    for (size_t i = 0; i < v->npend; i++) {
        pending *p = &v->pend[i];
        /* In parts, the record handed out next may be another part's. */
        bool same = !rec || p->part < 0 ||
                    (rec->part && p->part == rec->part->index && p->record == (int64_t)rec->index);
        v->part = p->part;
        report(v, p->status ? SEV_ERROR : SEV_WARNING, check_name(p->status), p->status, p->offset,
               p->record, have && same ? &c : NULL, true, p->msg);
        free(p->msg);
    }
    v->npend = 0;
}

/* ---------------------------------------------------------------- checks */

static void check_header(validator *v, const ms_header *h)
{
    if (h->minor > MS_FORMAT_MINOR)
        reportf(v, SEV_WARNING, "newer-minor", 10, -1, NULL, NULL,
                "stream format %u.%u is newer than this reader's %d.%d: records, keys and "
                "optional features it adds are skipped",
                h->major, h->minor, MS_FORMAT_MAJOR, MS_FORMAT_MINOR);
    /* Optional bits the library does not implement are ignored by the
     * reader (FORMAT.md section 3.2); say so. */
    uint64_t known_optional;
    ms_known_features(NULL, &known_optional);
    uint64_t unknown = h->optional_features & ~known_optional;
    if (unknown) {
        char bits[400];
        size_t n = 0;
        bits[0] = 0;
        for (int b = 0; b < 64 && n < sizeof bits - 8; b++)
            if (unknown >> b & 1)
                n += (size_t)snprintf(bits + n, sizeof bits - n, "%s%d", n ? ", " : "", b);
        reportf(v, SEV_WARNING, "optional-feature", 24, -1, NULL, NULL,
                "unknown optional feature bits 0x%016" PRIx64 " (bit %s): ignored", unknown,
                bits);
    }
}

static void keep_in_place(validator *v, const ms_record *rec)
{
    const ms_pages *pg = &rec->pages;
    for (size_t i = 0; pg->region && i < pg->extent_count && !v->inp_full; i++) {
        const ms_extent *e = &pg->extents[i];
        if (e->state != MS_PAGE_IN_PLACE)
            continue;
        size_t n = ms_in_place_count(v->inp);
        if (n == v->inp_cap) {
            size_t cap = v->inp_cap ? v->inp_cap * 2 : 64;
            in_place_at *p = realloc(v->inp_at, cap * sizeof *p);
            if (!p) {
                v->inp_full = true; /* the check is given up, as at its limit */
                return;
            }
            v->inp_at = p;
            v->inp_cap = cap;
        }
        int rc = ms_in_place_add(v->inp, pg->region, e);
        if (rc == MS_ELIMIT) {
            concerns c;
            record_concerns(rec, &c);
            reportf(v, SEV_WARNING, "in-place-limit", rec->offset, (int64_t)rec->index, &c, rec,
                    "more IN_PLACE extents than the overlap check holds (%u): later ones are "
                    "not checked",
                    MS_IN_PLACE_MAX_EXTENTS);
        }
        if (rc) {
            v->inp_full = true;
            return;
        }
        v->inp_at[n] = (in_place_at){rec->index, rec->offset};
    }
}

/* FORMAT.md section 6.2: IN_PLACE extents may share referenced bytes only
 * when they map the same region pages to the same addresses
 * (ms_in_place_overlaps()). */
static int on_overlap(void *ctx, size_t later, size_t earlier)
{
    validator *v = ctx;
    const ms_in_place_extent *x = ms_in_place_get(v->inp, later);
    const ms_in_place_extent *f = ms_in_place_get(v->inp, earlier);
    const in_place_at *xa = &v->inp_at[later], *fa = &v->inp_at[earlier];
    uint64_t x_end = x->address + x->count * x->page_size - 1;
    uint64_t f_end = f->address + f->count * f->page_size - 1;
    ms_record rec = {.type = MS_REC_PAGES, .index = xa->index, .offset = xa->offset};
    const ms_region *g = ms_reader_find_region(v->r, x->region);
    concerns c = {.kind = ABOUT_PAGES, .region = x->region, .region_name = g ? g->name : "",
                  .first = x->first, .last = x->first + x->count - 1};
    reportf(v, SEV_ERROR, "in-place-overlap", xa->offset, (int64_t)xa->index, &c, &rec,
            "IN_PLACE pages %" PRIu64 "..%" PRIu64 " of region %" PRIu32 " reference 0x%" PRIx64
            "..0x%" PRIx64 ", which overlaps the bytes that pages %" PRIu64 "..%" PRIu64
            " of region %" PRIu32 " (record %" PRIu64 ") reference at 0x%" PRIx64 "..0x%" PRIx64,
            x->first, x->first + x->count - 1, x->region, x->address, x_end, f->first,
            f->first + f->count - 1, f->region, fa->index, f->address, f_end);
    return 0;
}

static void check_in_place(validator *v)
{
    if (ms_in_place_overlaps(v->inp, on_overlap, v) == MS_ENOMEM)
        reportf(v, SEV_WARNING, "in-place-limit", v->end_offset, (int64_t)v->end_index, NULL,
                NULL, "out of memory: IN_PLACE extents were not checked for overlaps");
}

/* Unknown map keys of one record: their payload paths ("/9": key 9 of the
 * map; "/1/7": key 7 of the array's map 1), space-separated. */
typedef struct key_text {
    size_t n, len;
    bool cut;
    char text[256];
} key_text;

static void add_key(key_text *k, const char *path)
{
    if (k->cut)
        return;
    /* Room for this path and a final " ..." */
    if (k->len + 1 + strlen(path) + 4 >= sizeof k->text) {
        memcpy(k->text + k->len, " ...", 5);
        k->cut = true;
        return;
    }
    k->len += (size_t)sprintf(k->text + k->len, "%s%s", k->len ? " " : "", path);
}

/* Keys of the record's maps that this reader does not know: a later
 * minor's (FORMAT.md section 11.2), which the reader skips and lists. */
static void unknown_keys(const ms_record *rec, key_text *k)
{
    memset(k, 0, sizeof *k);
    k->n = rec->unknown_key_count;
    for (size_t i = 0; i < k->n && i < MS_MAX_LISTED_KEYS; i++)
        add_key(k, rec->unknown_keys[i]);
    if (k->n > MS_MAX_LISTED_KEYS && !k->cut)
        add_key(k, "...");
}

#if MS_HAVE_SCHEMA
/* --schema: each problem ms_schema_set_validate() finds in a device state.
 * A device without a schema in the set is a warning (--strict: invalid). */
typedef struct schema_ctx {
    validator *v;
    const ms_record *rec;
} schema_ctx;

static int on_schema_problem(void *ctx, const ms_schema_problem *p)
{
    schema_ctx *sc = ctx;
    concerns c;
    record_concerns(sc->rec, &c);
    bool unknown = p->check == MS_SCHEMA_UNKNOWN;
    reportf(sc->v, unknown ? SEV_WARNING : SEV_ERROR, unknown ? "unknown-schema" : "schema",
            sc->rec->offset, (int64_t)sc->rec->index, &c, sc->rec, "%s", p->message);
    return 0;
}

static void check_schema(validator *v, const ms_record *rec)
{
    schema_ctx sc = {v, rec};
    if (ms_schema_set_validate(v->schema, &rec->device, on_schema_problem, &sc) == MS_ENOMEM)
        reportf(v, SEV_WARNING, "schema", rec->offset, (int64_t)rec->index, NULL, rec,
                "out of memory: the device state was not checked against the schema");
}
#endif

static void check_record(validator *v, const ms_record *rec)
{
    if (rec->type == MS_REC_ROUND && !rec->status)
        v->round = rec->round.number;
    if (!rec->known && !(rec->flags & MS_RECORD_MUST_UNDERSTAND))
        reportf(v, SEV_WARNING, "unknown-record", rec->offset, (int64_t)rec->index, NULL, rec,
                "unknown record type 0x%04x without must-understand, %" PRIu32 " bytes: skipped",
                rec->type, rec->length);
    key_text keys;
    unknown_keys(rec, &keys);
    if (keys.n)
        reportf(v, SEV_WARNING, "unknown-key", rec->offset, (int64_t)rec->index, NULL, rec,
                "%zu unknown map key%s (payload path%s %s): ignored", keys.n,
                keys.n == 1 ? "" : "s", keys.n == 1 ? "" : "s", keys.text);
    if (rec->type == MS_REC_PAGES) {
        /* A region past the budget is untracked; a DUPLICATE that names a
         * page without DATA is an error (FORMAT.md section 6.2). */
        if (ms_pagemap_apply(v->pm, rec) == MS_ECORRUPT) {
            /* the report names the record already: from the extent on */
            const char *m = ms_pagemap_errmsg(v->pm), *x = strstr(m, "extent ");
            reportf(v, SEV_ERROR, "duplicate-source", rec->offset, (int64_t)rec->index, NULL,
                    rec, "%s", x ? x : m);
        }
        keep_in_place(v, rec);
    }
    if (rec->type == MS_REC_DEVICE && rec->device.path) {
        const mst_device_stats *e = mst_devset_add(v->ds, rec);
        concerns c;
        record_concerns(rec, &c);
        if (e && e->records > 1 && v->parts) /* the earlier record may be another part's */
            reportf(v, SEV_WARNING, "duplicate-device", rec->offset, (int64_t)rec->index, &c, rec,
                    "device \"%s\" instance %" PRIu32 " was already sent; this copy (%" PRIu64
                    " of the instance) replaces the earlier ones",
                    e->path, e->instance, e->records);
        else if (e && e->records > 1)
            reportf(v, SEV_WARNING, "duplicate-device", rec->offset, (int64_t)rec->index, &c, rec,
                    "device \"%s\" instance %" PRIu32 " was already sent in record %" PRIu64
                    " at byte %" PRIu64 "; this copy (%" PRIu64 " of the instance) replaces "
                    "the earlier ones",
                    e->path, e->instance, e->first_index, e->first_offset, e->records);
        else if (!e && mst_devset_full(v->ds) && !v->devset_warned) {
            v->devset_warned = true;
            reportf(v, SEV_WARNING, "device-limit", rec->offset, (int64_t)rec->index, &c, rec,
                    "more device instances than the duplicate check can hold (%zu): devices "
                    "from here on are not checked for duplicates",
                    mst_devset_count(v->ds));
        }
    }
#if MS_HAVE_SCHEMA
    if (rec->type == MS_REC_DEVICE && rec->device.path && !rec->status && v->schema)
        check_schema(v, rec);
#endif
    if (rec->type == MS_REC_END) {
        v->end_seen = true;
        v->digest = rec->checksum;
        v->end_index = rec->index;
        v->end_offset = rec->offset;
        /* Another format's END counts the bytes of its stream. */
        v->stream_bytes =
            v->foreign ? rec->totals.bytes : rec->offset + MS_RECORD_HEADER_SIZE + rec->length;
    }
}

/* Pages never sent, per region (FORMAT.md section 2: tools report them
 * apart from ZERO pages). */
static void check_missing(validator *v)
{
    ms_record end = {.type = MS_REC_END, .index = v->end_index, .offset = v->end_offset};
    for (size_t i = 0; i < ms_pagemap_region_count(v->pm); i++) {
        const ms_pagemap_region *s = ms_pagemap_get_region(v->pm, i);
        uint64_t counts[MST_STATES], first, last;
        concerns c = {.kind = ABOUT_PAGES, .region = s->region.id, .region_name = s->region.name};
        if (!mst_pagemap_final(v->pm, s, counts, &first, &last)) {
            c.first = 0;
            c.last = s->pages - 1;
            reportf(v, SEV_WARNING, "untracked-pages", v->end_offset, (int64_t)v->end_index, &c,
                    &end,
                    "region %" PRIu32 " \"%s\" (%" PRIu64 " pages) is too large for the "
                    "page map: pages never sent are not checked",
                    s->region.id, s->region.name, s->pages);
            continue;
        }
        if (!counts[MST_STATE_MISSING])
            continue;
        c.first = first;
        c.last = last;
        c.missing = counts[MST_STATE_MISSING];
        reportf(v, SEV_WARNING, "missing-pages", v->end_offset, (int64_t)v->end_index, &c, &end,
                "%" PRIu64 " of %" PRIu64 " pages of region %" PRIu32 " \"%s\" were never sent "
                "(first %" PRIu64 ", last %" PRIu64 "); a consumer treats them as zero",
                counts[MST_STATE_MISSING], s->pages, s->region.id, s->region.name, first, last);
    }
}

/* A migration in parts (FORMAT.md section 2.1): within one round, a page
 * and a device instance travel in one part. */
static void on_clash(void *ctx, const ms_record *rec, const mst_clash *k)
{
    validator *v = ctx;
    concerns c;
    record_concerns(rec, &c);
    if (k->region) {
        c.first = k->first;
        c.last = k->last;
        reportf(v, SEV_ERROR, "part-pages", rec->offset, (int64_t)rec->index, &c, rec,
                "pages %" PRIu64 "..%" PRIu64 " of region %" PRIu32 " \"%s\" were sent by part "
                "%" PRIu32 " too in this round (%" PRIu64 "): within a round, a page travels in "
                "one part",
                k->first, k->last, k->region->id, k->region->name, k->other, v->round);
    } else {
        reportf(v, SEV_ERROR, "part-device", rec->offset, (int64_t)rec->index, &c, rec,
                "device \"%s\" instance %" PRIu32 " was sent by part %" PRIu32 " too in this "
                "round (%" PRIu64 "): within a round, a device instance travels in one part",
                k->path, k->instance, k->other, v->round);
    }
}

static void on_untracked(void *ctx, const ms_record *rec, const ms_region *g)
{
    validator *v = ctx;
    concerns c = {.kind = ABOUT_PAGES,
                  .region = g->id,
                  .region_name = g->name,
                  .first = 0,
                  .last = g->size / g->page_size - 1};
    reportf(v, SEV_WARNING, "untracked-pages", rec->offset, (int64_t)rec->index, &c, rec,
            "region %" PRIu32 " \"%s\" is too large for the map of a round's pages: pages "
            "sent by two parts in one round are not checked in it",
            g->id, g->name);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--json] [--strict] [--schema FILE|DIR] [-q] [--progress=MODE]\n"
            "       STREAM [INPUT...]\n"
            "Checks a migration stream of any format this build reads (libmigstream's;\n"
            "QEMU's with the QEMU module) and reports every problem found, each with its\n"
            "byte offset and record index. STREAM \"-\" reads standard input. INPUTs are\n"
            "further inputs of the same stream, in any order: QEMU's multifd channel\n"
            "captures, or the other parts of a libmigstream migration in parts, checked\n"
            "as one with the rules that tie the parts together, each problem naming its\n"
            "part.\n"
            "\n"
            "  --json     JSON Lines: one object per problem, then a result object\n"
            "  --strict   warnings (e.g. unknown optional records) make the stream invalid\n"
            "  --schema FILE|DIR\n"
            "             check device states against a schema file or directory\n",
            mst_prog);
    mst_print_progress_help(f, 10, false);
    fputs("  --help     this text\n"
          "  --version  version of the tool and the library\n"
          "\n"
          "A truncated stream, or one that is no stream at all, is invalid (1).\n"
          "When a damaged length leaves the records after it out of line (the\n"
          "framing is lost), one error says where, and nothing after it is checked.\n"
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

static void print_result(validator *v)
{
    FILE *o = v->out;
    bool valid = v->errors == 0 && !(v->strict && v->warnings);
    /* Bytes of the stream, END included: not what was read after it. */
    uint64_t bytes = v->end_seen       ? v->stream_bytes
                     : v->framing_lost ? v->sus.offset /* read as records */
                                       : ms_reader_offset(v->r);
    /* Another format's stream not read to its end: its reader gives the
     * offset of its last record's item, not the bytes there were. */
    const bool no_bytes = v->foreign && !v->end_seen;
    uint64_t records = v->records;
    size_t nreg = ms_pagemap_region_count(v->pm), ndev = mst_devset_count(v->ds);
    uint32_t nparts = v->parts ? ms_reader_part_count(v->r) : 0;
    if (nparts) { /* every part's, as read */
        bytes = records = 0;
        for (uint32_t i = 0; i < nparts; i++) {
            const ms_part_info *pi = ms_reader_part_info(v->r, i);
            bytes += pi->bytes;
            records += pi->records;
        }
    }
    char bytes_json[24] = "null", head[48] = "stream: ";
    if (!no_bytes)
        snprintf(bytes_json, sizeof bytes_json, "%" PRIu64, bytes);
    if (nparts)
        snprintf(head, sizeof head, "migration: parts %" PRIu32 ", ", nparts);
    if (v->json) {
        fputs("{\"kind\":\"result\",", o);
        if (v->foreign) {
            fputs("\"format\":", o);
            mst_json_string(o, v->format);
            fputc(',', o);
        }
        fprintf(o,
                "\"valid\":%s,\"strict\":%s,\"errors\":%" PRIu64 ",\"warnings\":%" PRIu64
                ",\"records\":%" PRIu64 ",\"bytes\":%s"
                ",\"end\":%s,\"regions\":%zu,\"devices\":%zu,",
                valid ? "true" : "false", v->strict ? "true" : "false", v->errors, v->warnings,
                records, bytes_json, v->end_seen ? "true" : "false", nreg, ndev);
        if (v->parts)
            fprintf(o, "\"parts\":%" PRIu32 ",", nparts);
        if (v->framing_lost)
            fputs("\"framing_lost\":true,", o);
        fputs("\"digest\":", o);
        if (v->end_seen && !v->foreign)
            fprintf(o, "\"0x%016" PRIx64 "\"}\n", v->digest);
        else
            fputs("null}\n", o);
        return;
    }
    if (no_bytes)
        fprintf(o,
                "stream: format %s, records %" PRIu64 ", regions %zu, devices %zu, not read to its "
                "end\n",
                v->format, records, nreg, ndev);
    else if (v->foreign) /* no digest: its records have no checksums */
        fprintf(o,
                "stream: format %s, records %" PRIu64 ", bytes %" PRIu64 ", regions %zu, "
                "devices %zu\n",
                v->format, records, bytes, nreg, ndev);
    else if (v->end_seen)
        fprintf(o,
                "%srecords %" PRIu64 ", bytes %" PRIu64 ", regions %zu, devices %zu, "
                "digest 0x%016" PRIx64 "\n",
                head, records, bytes, nreg, ndev, v->digest);
    else if (v->framing_lost)
        fprintf(o,
                "%srecords %" PRIu64 ", bytes %" PRIu64
                ", regions %zu, devices %zu, framing lost at byte %" PRIu64 "\n",
                head, records, bytes, nreg, ndev, v->sus.offset);
    else
        fprintf(o,
                "%srecords %" PRIu64 ", bytes %" PRIu64
                ", regions %zu, devices %zu, no END record\n",
                head, records, bytes, nreg, ndev);
    fprintf(o, "result: %s, %" PRIu64 " error%s, %" PRIu64 " warning%s%s\n",
            valid ? "valid" : "invalid", v->errors, v->errors == 1 ? "" : "s", v->warnings,
            v->warnings == 1 ? "" : "s", !valid && !v->errors ? " (--strict)" : "");
}

/* ------------------------------------------------------------ framing */

/* A record whose checksum fails may be damaged alone, or its length may be
 * (or bytes before it may have been lost): then the records after it are
 * read from the wrong bytes, and every "record" found there is a
 * follow-on of that one damage. Which it is shows in the records after it:
 * when the framing holds, the next record verifies (its checksum chains
 * to the stored one, FORMAT.md section 4.2); when it is lost, the next
 * record fails its checksum too and its header or contents are invalid,
 * or the reader cannot go on (a length beyond the limit). A next record
 * that fails only its checksum is the damaged record's checksum field, or
 * a second damaged record, unless the record after it fails too. So the
 * reports from the suspect record on are held until that is known. */
static void hold_reports(validator *v, const ms_record *rec)
{
    FILE *f = open_memstream(&v->held, &v->held_len);
    if (!f)
        return; /* reported as they come: no framing check this time */
    v->out_real = v->out;
    v->out = f;
    v->suspect = 1;
    v->sus = (ms_record){
        .type = rec->type, .index = rec->index, .offset = rec->offset, .length = rec->length};
    v->sus_errors = v->errors;
    v->sus_warnings = v->warnings;
    v->sus_records = v->records - 1; /* the ones before it */
    v->sus_devices = mst_devset_count(v->ds);
}

/* Ends holding: the held reports are printed (@keep), or dropped. */
static void release_reports(validator *v, bool keep)
{
    fclose(v->out);
    v->out = v->out_real;
    if (keep && v->held_len)
        fwrite(v->held, 1, v->held_len, v->out);
    free(v->held);
    v->held = NULL;
    v->held_len = 0;
    v->suspect = 0;
}

/* The framing is lost at the suspect record: one error for it, in place
 * of everything reported from it on. @why: what the bytes where its
 * length leads hold. */
static void lose_framing(validator *v, const char *why_held)
{
    char why[700];
    snprintf(why, sizeof why, "%s", why_held); /* it may be a held problem's */
    release_reports(v, false);
    v->errors = v->sus_errors;
    v->warnings = v->sus_warnings;
    v->records = v->sus_records;
    mst_devset_forget(v->ds, v->sus_devices); /* devices of records that are none */
    for (size_t i = 0; i < v->npend; i++)
        free(v->pend[i].msg);
    v->npend = 0;
    v->framing_lost = true;
    char left[64] = "";
    if (v->input_size > v->sus.offset)
        snprintf(left, sizeof left, " (%" PRIu64 " bytes)", v->input_size - v->sus.offset);
    reportf(v, SEV_ERROR, "framing", v->sus.offset, (int64_t)v->sus.index, NULL, &v->sus,
            "framing lost: the record's checksum fails, and no record lines up where its "
            "length (%" PRIu32 " bytes) ends: %s. Its length field, or bytes before it, are "
            "damaged; the records after it cannot be found, so nothing from byte %" PRIu64
            " on is checked as records%s",
            v->sus.length, why, v->sus.offset, left);
}

/* The problems the reader found in record @index: a checksum mismatch,
 * and the first other one (its message). */
static void problems_of(const validator *v, int64_t index, bool *checksum, const char **other)
{
    *checksum = false;
    *other = NULL;
    for (size_t i = 0; i < v->npend; i++) {
        if (v->pend[i].record != index)
            continue;
        if (v->pend[i].status == MS_ECHECKSUM)
            *checksum = true;
        else if (v->pend[i].status && !*other)
            *other = v->pend[i].msg;
    }
}

/* For each record handed out, before its reports: true when the framing
 * is found lost (nothing more is read). */
static bool watch_framing(validator *v, const ms_record *rec)
{
    if (!v->watch)
        return false;
    bool checksum;
    const char *other;
    problems_of(v, (int64_t)rec->index, &checksum, &other);
    if (v->suspect) {
        if (!checksum) {
            release_reports(v, true); /* it lines up: the framing holds */
        } else if (other || v->suspect == 2) {
            char why[700];
            if (other)
                snprintf(why, sizeof why, "%s", other);
            else
                snprintf(why, sizeof why,
                         "records %" PRIu64 " and %" PRIu64 " after it fail their checksums too",
                         v->sus.index + 1, rec->index);
            lose_framing(v, why);
            return true;
        } else {
            v->suspect = 2;
            return false;
        }
    }
    if (checksum)
        hold_reports(v, rec);
    return false;
}

/* The reader stopped (@rc) while a suspect's verdict was pending: a
 * header it cannot read past, after problems in it or with a length beyond
 * the limit, is no record; a stream that ends, or an input that fails,
 * says nothing about the framing. */
static bool framing_stops(validator *v, int rc)
{
    int64_t at = ms_reader_error_record(v->r);
    bool checksum;
    const char *other;
    problems_of(v, at, &checksum, &other);
    if (at > (int64_t)v->sus.index && (other || rc == MS_ELIMIT)) {
        lose_framing(v, other ? other : ms_reader_errmsg(v->r));
        return true;
    }
    release_reports(v, true);
    return false;
}

/* Reads and checks the stream; returns the exit status. */
static int run(validator *v)
{
    const ms_header *h;
    const ms_record *rec;
    if (v->json)
        mst_json_output_head(v->out);
    int rc = ms_reader_header(v->r, &h);
    if (rc == 0) {
        if (!v->foreign) /* another format's header is not this format's preamble */
            check_header(v, h);
        while ((rc = ms_reader_next(v->r, &rec)) > 0) {
            v->records++;
            if (ms_pagemap_sync(v->pm, v->r) == MS_ENOMEM) {
                rc = MS_ENOMEM;
                break;
            }
            if (watch_framing(v, rec))
                break;
            flush_pending(v, rec);
            check_record(v, rec);
            if (v->rounds && mst_round_check_record(v->rounds, rec, on_clash, on_untracked, v)) {
                rc = MS_ENOMEM;
                break;
            }
        }
    }
    mst_progress_done(v->pg);
    if (v->suspect && rc < 0)
        framing_stops(v, rc);
    else if (v->suspect)
        release_reports(v, true); /* read to the end: the framing held */
    if (v->framing_lost) {
        print_result(v);
        return MST_EXIT_FAIL;
    }
    flush_pending(v, NULL);
    if (rc == 0) {
        /* FORMAT.md section 2: nothing may follow END in a file. The
         * reader's message for this names the record after END, so the
         * message is worded here. */
        int eof = ms_reader_expect_eof(v->r);
        if (eof == MS_ECORRUPT && v->parts) { /* the reader names the part */
            v->part = ms_reader_error_part(v->r);
            report(v, SEV_ERROR, "trailing-bytes", 0, ms_reader_error_offset(v->r),
                   ms_reader_error_record(v->r), NULL, false, ms_reader_errmsg(v->r));
        } else if (eof == MS_ECORRUPT)
            reportf(v, SEV_ERROR, "trailing-bytes", ms_reader_error_offset(v->r),
                    (int64_t)v->end_index, NULL, NULL,
                    "record %" PRIu64 " (END at byte %" PRIu64 "), byte %" PRIu64
                    ": bytes follow the END record",
                    v->end_index, v->end_offset, ms_reader_error_offset(v->r));
        else if (eof < 0)
            rc = eof;
        if (eof == 0 || eof == MS_ECORRUPT) {
            check_missing(v);
            check_in_place(v);
        }
    }
    if (rc == MS_EIO || rc == MS_ENOMEM) {
        fflush(v->out);
        mst_error("%s", rc == MS_ENOMEM && !ms_reader_status(v->r) ? "out of memory"
                                                                   : ms_reader_errmsg(v->r));
        return MST_EXIT_ERROR;
    }
    if (rc < 0) {
        v->part = ms_reader_error_part(v->r);
        report(v, SEV_ERROR, check_name(rc), rc, ms_reader_error_offset(v->r),
               ms_reader_error_record(v->r), NULL, false, ms_reader_errmsg(v->r));
    }
    print_result(v);
    return v->errors == 0 && !(v->strict && v->warnings) ? MST_EXIT_OK : MST_EXIT_FAIL;
}

int main(int argc, char **argv)
{
    validator v = {.out = stdout, .part = -1};
    const char *schema_path = NULL;
    bool only_args = false, quiet = false;
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
            v.json = true;
        } else if (strcmp(a, "--strict") == 0) {
            v.strict = true;
        } else if ((took = mst_progress_arg(argc, argv, &i, &quiet)) != 0) {
            if (took < 0)
                goto out;
        } else if (strcmp(a, "--schema") == 0 || strncmp(a, "--schema=", 9) == 0) {
            if (a[8] == '=') {
                schema_path = a + 9;
            } else if (i + 1 < argc) {
                schema_path = argv[++i];
            } else {
                status = usage_error("%s", "--schema needs a FILE or DIR");
                goto out;
            }
        } else {
            status = usage_error("unknown option '%s'", a);
            goto out;
        }
    }
    if (!npaths) {
        status = usage_error("%s", "no STREAM given");
        goto out;
    }
#if MS_HAVE_SCHEMA
    if (schema_path) {
        if (!(v.schema = ms_schema_set_new(NULL))) {
            mst_error("out of memory");
            goto out;
        }
        if (ms_schema_set_load_path(v.schema, schema_path) < 0) {
            mst_error("%s", ms_schema_set_errmsg(v.schema));
            goto out;
        }
    }
#else
    if (schema_path) {
        status = usage_error("%s", "--schema: this build of libmigstream has no schema module "
                                   "(built with -Dschema=false)");
        goto out;
    }
#endif
    ms_reader_options opts;
    ms_reader_options_init(&opts);
    opts.on_problem = on_problem;
    opts.problem_ctx = &v;
    mst_stream st;
    mst_progress_init(&pg, quiet, mst_paths_size(paths, npaths));
    v.pg = &pg;
    mst_stream_hooks hooks = {.reader = &opts, .progress = &pg};
    if (mst_stream_open(&st, paths, npaths, &hooks) == 0) {
        v.r = st.r;
        v.foreign = st.foreign;
        v.format = st.format;
        v.parts = mst_is_parts(st.r);
        v.watch = !v.parts && !v.foreign;
        v.input_size = st.size;
        v.pm = mst_pagemap_new();
        v.ds = mst_devset_new(MST_DEVSET_BUDGET);
        ms_pagemap_options po;
        ms_pagemap_options_init(&po);
        po.max_in_place = MS_IN_PLACE_MAX_EXTENTS; /* the overlap check: 40 MiB at most */
        v.inp = ms_in_place_new(&po);
        if (v.parts)
            v.rounds = mst_round_check_new();
        if (!v.pm || !v.ds || !v.inp || (v.parts && !v.rounds))
            mst_error("out of memory");
        else
            status = run(&v);
    }
    mst_progress_done(&pg); /* when run() did not */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write standard output");
        status = MST_EXIT_ERROR;
    }
    ms_pagemap_free(v.pm);
    ms_in_place_free(v.inp);
    free(v.inp_at);
    mst_devset_free(v.ds);
    mst_round_check_free(v.rounds);
    mst_stream_close(&st);
out:
#if MS_HAVE_SCHEMA
    ms_schema_set_free(v.schema);
#endif
    free(paths);
    return status;
}
