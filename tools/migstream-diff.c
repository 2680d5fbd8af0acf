/*
 * migstream-diff: compares two streams by the guest state they leave behind
 * (the "final state" of docs/FORMAT.md section 2), not by their bytes.
 * The library's ms_diff (migstream/diff.h) does the work; this file holds
 * the command line and prints what it reports, as text or as JSON Lines
 * (docs/man/migstream-diff.1 documents every line).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* One side: its stream (A or B) and the further inputs of that stream
 * (--with-a, --with-b), in any order. */
typedef struct side_args {
    const char **paths;
    size_t n;
    const char *format; /* once loaded (ms_reader_format(): static) */
    /* The input where its damage is (the part that holds it, else the
     * first), when the side could not be read to its end: the stream's
     * names live as long as argv. */
    const char *damaged_input;
    bool parts; /* a migration in parts: the damage names its part */
    /* A side that failed to load: where its reader stopped. */
    uint64_t error_offset;
    int64_t error_record, error_part;
} side_args;

/* Loads one side; 0 (read to its end, or kept up to its damage:
 * ms_diff_get_damage()), or -1: ms_diff_errmsg() says why when the handle
 * failed, else why was printed. Messages about the stream name its first
 * input. */
static int load(ms_diff *d, ms_diff_side side, side_args *a, mst_progress *pg)
{
    mst_stream st;
    const mst_stream_hooks hooks = {.progress = pg};
    if (mst_stream_open(&st, a->paths, a->n, &hooks)) {
        mst_stream_close(&st);
        return -1;
    }
    a->format = st.format;
    a->parts = ms_reader_part_count(st.r) > 1;
    int rc = ms_diff_load(d, side, st.r, st.in[0].name);
    a->damaged_input = st.in[0].name;
    int64_t part = ms_reader_error_part(st.r);
    const ms_part_info *pi = part >= 0 ? ms_reader_part_info(st.r, (uint32_t)part) : NULL;
    for (size_t k = 0; pi && pi->name && k < st.n; k++)
        if (strcmp(st.in[k].name, pi->name) == 0)
            a->damaged_input = st.in[k].name; /* the reader's copy goes with it */
    a->error_offset = ms_reader_error_offset(st.r);
    a->error_record = ms_reader_error_record(st.r);
    a->error_part = part;
    pg->base += st.bytes; /* B's bytes count on from A's */
    mst_stream_close(&st);
    return rc < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- output */

typedef struct printer {
    FILE *out;
    bool json;
    const ms_device *bad_device; /* a state that could not be printed */
} printer;

/* Page states as docs/FORMAT.md spells them; "missing": never sent (not a
 * state). A FILL page compares as the DATA it stands for. */
static const char *state_name(unsigned st)
{
    switch (st) {
    case MS_PAGEMAP_MISSING:
        return "missing";
    case MS_PAGE_DATA:
        return "DATA";
    case MS_PAGE_ZERO:
        return "ZERO";
    case MS_PAGE_DISCARDED:
        return "DISCARDED";
    case MS_PAGE_IN_PLACE:
        return "IN_PLACE";
    default:
        return "OTHER";
    }
}

/* Text form of a name (region, device path): as is, but with control bytes
 * and backslashes escaped so that a line stays one line. */
static void put_name(printer *p, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            fprintf(p->out, "\\x%02x", *c);
        else
            fputc(*c, p->out);
    }
}

/* Prints @p v; returns -1 if a CBOR item cannot be formatted. */
static int put_val(printer *p, const ms_diff_value *v)
{
    switch (v->type) {
    case MS_DIFF_NONE:
        fputs(p->json ? "null" : "(none)", p->out);
        break;
    case MS_DIFF_TEXT:
        mst_json_string(p->out, v->text);
        break;
    case MS_DIFF_UINT:
        fprintf(p->out, "%" PRIu64, v->num);
        break;
    case MS_DIFF_ADDRESS:
        fprintf(p->out, p->json ? "\"0x%" PRIx64 "\"" : "0x%" PRIx64, v->num);
        break;
    case MS_DIFF_VERSION:
        if (p->json)
            mst_json_string(p->out, v->text);
        else
            fputs(v->text, p->out);
        break;
    case MS_DIFF_CBOR: {
        char *t = mst_cbor_text(v->cbor, v->cbor_size, p->json ? MS_CBOR_JSON : MS_CBOR_DIAG);
        if (!t)
            return -1;
        fputs(t, p->out);
        free(t);
        break;
    }
    }
    return 0;
}

/* A value in JSON under the u64 rule (docs/OUTPUT.md): a region's size,
 * which the stream sets freely, is a string; the other numbers are u32. */
static void put_json_val(printer *p, const ms_diff_item *it, const ms_diff_value *v)
{
    if (v->type == MS_DIFF_UINT && strcmp(it->field, "size") == 0)
        mst_json_u64(p->out, v->num);
    else
        put_val(p, v);
}

/* "FIELD: A -> B" in text, "field":F,"a":A,"b":B} in JSON. */
static void put_change(printer *p, const ms_diff_item *it)
{
    if (p->json) {
        fprintf(p->out, ",\"field\":\"%s\",\"a\":", it->field);
        put_json_val(p, it, &it->a);
        fputs(",\"b\":", p->out);
        put_json_val(p, it, &it->b);
        fputs("}\n", p->out);
    } else {
        fprintf(p->out, " %s: ", it->field);
        put_val(p, &it->a);
        fputs(" -> ", p->out);
        put_val(p, &it->b);
        fputc('\n', p->out);
    }
}

static char side_letter(ms_diff_side s, bool lower)
{
    return s == MS_DIFF_A ? (lower ? 'a' : 'A') : (lower ? 'b' : 'B');
}

static void print_region_only(printer *p, const ms_diff_item *it)
{
    const ms_region *g = it->region;
    const uint64_t *n = it->states;
    ms_diff_value gpa = {.type = g->has_gpa ? MS_DIFF_ADDRESS : MS_DIFF_NONE, .num = g->gpa};
    if (p->json) {
        fprintf(p->out, "{\"kind\":\"region-only\",\"side\":\"%c\",\"region\":%" PRIu32
                ",\"region_name\":",
                side_letter(it->side, true), g->id);
        mst_json_string(p->out, g->name);
        fputs(",\"size\":", p->out);
        mst_json_u64(p->out, g->size);
        fprintf(p->out, ",\"page_size\":%" PRIu32 ",\"gpa\":", g->page_size);
        put_val(p, &gpa);
        fprintf(p->out,
                ",\"pages\":{\"DATA\":%" PRIu64 ",\"ZERO\":%" PRIu64 ",\"missing\":%" PRIu64 "}}\n",
                n[MS_PAGE_DATA], n[MS_PAGE_ZERO], n[MS_PAGEMAP_MISSING]);
    } else {
        fputs("region ", p->out);
        put_name(p, g->name);
        fprintf(p->out,
                ": only in %c (id %" PRIu32 ", size %" PRIu64 ", page_size %" PRIu32 ", gpa ",
                side_letter(it->side, false), g->id, g->size, g->page_size);
        put_val(p, &gpa);
        fprintf(p->out, "): %" PRIu64 " DATA, %" PRIu64 " ZERO, %" PRIu64 " missing pages\n",
                n[MS_PAGE_DATA], n[MS_PAGE_ZERO], n[MS_PAGEMAP_MISSING]);
    }
}

static void print_pages(printer *p, const ms_diff_item *it)
{
    uint64_t last = it->first + it->count - 1;
    if (p->json) {
        fprintf(p->out, "{\"kind\":\"memory\",\"region\":%" PRIu32 ",\"region_name\":",
                it->region->id);
        mst_json_string(p->out, it->region->name);
        fprintf(p->out,
                ",\"first_page\":%" PRIu64 ",\"last_page\":%" PRIu64 ",\"pages\":%" PRIu64
                ",\"a\":\"%s\",\"b\":\"%s\"}\n",
                it->first, last, it->count, state_name(it->state_a), state_name(it->state_b));
        return;
    }
    fputs("memory ", p->out);
    put_name(p, it->region->name);
    if (it->count == 1)
        fprintf(p->out, " page %" PRIu64 ": ", it->first);
    else
        fprintf(p->out, " pages %" PRIu64 "..%" PRIu64 ": ", it->first, last);
    if (it->state_a == it->state_b && it->state_a == MS_PAGE_IN_PLACE)
        fputs("IN_PLACE address differs", p->out);
    else if (it->state_a == it->state_b)
        fputs("data differs", p->out);
    else
        fprintf(p->out, "%s -> %s", state_name(it->state_a), state_name(it->state_b));
    fprintf(p->out, " (%" PRIu64 " page%s)\n", it->count, it->count == 1 ? "" : "s");
}

static void print_pages_total(printer *p, const ms_diff_item *it)
{
    if (p->json) {
        fprintf(p->out, "{\"kind\":\"memory-total\",\"region\":%" PRIu32 ",\"region_name\":",
                it->region->id);
        mst_json_string(p->out, it->region->name);
        fprintf(p->out, ",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 "}\n", it->pages, it->ranges);
    } else {
        fputs("memory ", p->out);
        put_name(p, it->region->name);
        fprintf(p->out, ": %" PRIu64 " page%s differ%s in %" PRIu64 " range%s\n", it->pages,
                it->pages == 1 ? "" : "s", it->pages == 1 ? "s" : "", it->ranges,
                it->ranges == 1 ? "" : "s");
    }
}

static void print_overlay(printer *p, const ms_diff_item *it)
{
    const char *kind = ms_overlay_kind_name(it->overlay->kind);
    const char *what = it->kind == MS_DIFF_OVERLAY ? "contents differ"
                       : it->side == MS_DIFF_A     ? "only in A"
                                                   : "only in B";
    if (!kind)
        kind = "unknown";
    if (p->json)
        fprintf(p->out,
                "{\"kind\":\"overlay\",\"gfn\":\"0x%" PRIx64 "\",\"overlay_kind\":\"%s\","
                "\"difference\":\"%s\"}\n",
                it->overlay->gfn, kind, what);
    else
        fprintf(p->out, "overlay frame 0x%" PRIx64 " %s: %s\n", it->overlay->gfn, kind, what);
}

/* Starts a device line; @p only: the side for device-only lines. */
static void dev_head(printer *p, const char *type, const ms_diff_item *it, bool only)
{
    const ms_device *d = it->device;
    if (p->json) {
        fprintf(p->out, "{\"kind\":\"%s\",", type);
        if (only)
            fprintf(p->out, "\"side\":\"%c\",", side_letter(it->side, true));
        fputs("\"path\":", p->out);
        mst_json_string(p->out, d->path);
        fprintf(p->out, ",\"instance\":%" PRIu32, d->instance);
    } else {
        fputs("device ", p->out);
        put_name(p, d->path);
        fprintf(p->out, "#%" PRIu32, d->instance);
    }
}

static int print_device(printer *p, const ms_diff_item *it)
{
    const ms_device *d = it->device;
    int rc = 0;
    switch (it->kind) {
    case MS_DIFF_DEVICE_ONLY:
        dev_head(p, "device-only", it, true);
        if (p->json) {
            fputs(",\"schema\":", p->out);
            mst_json_string(p->out, d->schema);
            fprintf(p->out, ",\"version\":%" PRIu32 "}\n", d->version);
        } else {
            fprintf(p->out, ": only in %c (schema ", side_letter(it->side, false));
            mst_json_string(p->out, d->schema);
            fprintf(p->out, ", version %" PRIu32 ")\n", d->version);
        }
        break;
    case MS_DIFF_DEVICE:
        dev_head(p, "device", it, false);
        put_change(p, it);
        break;
    default: /* MS_DIFF_DEVICE_STATE */
        dev_head(p, "device-state", it, false);
        if (p->json) {
            fputs(",\"at\":", p->out);
            mst_json_string(p->out, it->field);
            /* A side without the field has no "a" or "b" key: null would be
             * a CBOR null. */
            if (it->a.type != MS_DIFF_NONE) {
                fputs(",\"a\":", p->out);
                rc |= put_val(p, &it->a);
            }
            if (it->b.type != MS_DIFF_NONE) {
                fputs(",\"b\":", p->out);
                rc |= put_val(p, &it->b);
            }
            fputs("}\n", p->out);
        } else {
            fprintf(p->out, " state%s: ", it->field);
            rc |= put_val(p, &it->a);
            fputs(" -> ", p->out);
            rc |= put_val(p, &it->b);
            fputc('\n', p->out);
        }
        break;
    }
    if (rc) {
        p->bad_device = d;
        return MS_ECBOR;
    }
    return 0;
}

/* ms_diff_fn: one line per difference. */
static int print_item(void *ctx, const ms_diff_item *it)
{
    printer *p = ctx;
    switch (it->kind) {
    case MS_DIFF_META:
        if (p->json)
            fputs("{\"kind\":\"meta\"", p->out);
        else
            fputs("meta", p->out);
        put_change(p, it);
        break;
    case MS_DIFF_REGION:
        if (p->json) {
            fprintf(p->out, "{\"kind\":\"region\",\"region\":%" PRIu32 ",\"region_name\":",
                    it->region->id);
            mst_json_string(p->out, it->region->name);
        } else {
            fputs("region ", p->out);
            put_name(p, it->region->name);
        }
        put_change(p, it);
        break;
    case MS_DIFF_REGION_ONLY:
        print_region_only(p, it);
        break;
    case MS_DIFF_PAGES:
        print_pages(p, it);
        break;
    case MS_DIFF_PAGES_TOTAL:
        print_pages_total(p, it);
        break;
    case MS_DIFF_OVERLAY:
    case MS_DIFF_OVERLAY_ONLY:
        print_overlay(p, it);
        break;
    case MS_DIFF_DEVICE_ONLY:
    case MS_DIFF_DEVICE:
    case MS_DIFF_DEVICE_STATE:
        return print_device(p, it);
    }
    return 0;
}

/* When a side is of another format than libmigstream's: both formats,
 * before any difference (not one itself). */
static void print_formats(printer *p, const char *a, const char *b)
{
    if (strcmp(a, "migstream") == 0 && strcmp(b, "migstream") == 0)
        return;
    if (p->json) {
        fputs("{\"kind\":\"formats\",\"a\":", p->out);
        mst_json_string(p->out, a);
        fputs(",\"b\":", p->out);
        mst_json_string(p->out, b);
        fputs("}\n", p->out);
    } else {
        fprintf(p->out, "formats: A %s, B %s\n", a, b);
    }
}

/* A side read up to its damage: where it starts, after the differences
 * found in what was read, and on standard error. */
static void print_damage(printer *p, ms_diff_side side, const side_args *a,
                         const ms_diff_damage *dm)
{
    if (p->json) {
        mst_json_error_head(p->out);
        fprintf(p->out, "\"side\":\"%c\",\"input\":", side_letter(side, true));
        mst_json_string(p->out, a->damaged_input);
        if (a->parts) {
            fputs(",\"part\":", p->out);
            if (dm->part >= 0)
                fprintf(p->out, "%" PRId64, dm->part);
            else
                fputs("null", p->out);
        }
        fputc(',', p->out);
        mst_json_error_tail(p->out, dm->status, dm->offset, dm->record, dm->message);
    } else {
        fprintf(p->out, "damaged: %s\n", dm->message);
    }
    fflush(p->out); /* the output first, then the message */
    mst_error("%s", dm->message);
}

static void print_summary(printer *p, const ms_diff_totals *t, bool same, bool partial)
{
    if (p->json)
        fprintf(p->out,
                "{\"kind\":\"summary\",\"same\":%s,%s\"metadata\":%" PRIu64 ",\"regions\":%" PRIu64
                ",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 ",\"devices\":%" PRIu64
                ",\"overlays\":%" PRIu64 "}\n",
                same ? "true" : "false", partial ? "\"partial\":true," : "", t->metadata,
                t->regions, t->pages, t->ranges, t->devices, t->overlays);
    else if (same)
        fputs(partial ? "same up to the damage\n" : "same\n", p->out);
    else
        fprintf(p->out,
                "different%s: metadata %" PRIu64 ", regions %" PRIu64 ", pages %" PRIu64
                " in %" PRIu64 " ranges, devices %" PRIu64 "%s",
                partial ? " up to the damage" : "", t->metadata, t->regions, t->pages, t->ranges,
                t->devices, t->overlays ? "" : "\n");
    if (!p->json && !same && t->overlays)
        fprintf(p->out, ", overlays %" PRIu64 "\n", t->overlays);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: migstream-diff [--json] [-q] [--progress=MODE] [--with-a FILE]...\n"
               "                      [--with-b FILE]... A B\n"
               "\n"
               "Compares two migration streams by the guest state they describe:\n"
               "memory page by page, device state field by field, and stream metadata.\n"
               "A and B may be of any format this build reads (libmigstream's; QEMU's\n"
               "with the QEMU module), each its own; across formats only the metadata\n"
               "that describes the guest (page size, machine) is compared. A side that\n"
               "is a migration in parts is its first part, the others given with\n"
               "--with-a or --with-b; it compares as the same migration in one stream\n"
               "would (the PARTS feature and the format version it needs are not counted).\n"
               "One input may be \"-\" for standard input.\n"
               "\n"
               "  --json          one JSON object per line (JSON Lines) instead of text\n"
               "  --with-a FILE   a further input of stream A (a QEMU multifd channel\n"
               "                  capture, another part of a migration in parts), in any\n"
               "                  order; repeatable\n"
               "  --with-b FILE   the same for stream B\n"
               "  --max-output SIZE\n"
               "                  most bytes the temporary files may take (K, M, G, T\n"
               "                  suffixes; 'none': only the free space); default 1T\n");
    mst_print_progress_help(f, 15, false);
    fprintf(f, "  --help          print this help and exit\n"
               "  --version       print the version and exit\n"
               "\n"
               "DATA pages are kept in temporary files in $TMPDIR (default /tmp), within\n"
               "--max-output and the free space there (past them: exit status 2, the\n"
               "comparison cannot be made); device states within 256 MiB (a stream past\n"
               "that is refused: exit status 1). A stream that\n"
               "cannot be read to its end (a checksum mismatch, truncation) is compared\n"
               "as far as it was read, then where its damage starts is said (exit status\n"
               "1). One whose preamble is bad is refused (1).\n"
               "\n");
    mst_print_exit_table(f);
}

static void short_usage(void)
{
    fprintf(stderr, "usage: migstream-diff [--json] [-q] [--progress=MODE] [--with-a FILE]... "
                    "[--with-b FILE]... A B  (see --help)\n");
}

int main(int argc, char **argv)
{
    enum { OPT_WITH_A = 256, OPT_WITH_B, OPT_MAX_OUTPUT };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"progress", required_argument, NULL, 'P'},
        {"with-a", required_argument, NULL, OPT_WITH_A},
        {"with-b", required_argument, NULL, OPT_WITH_B},
        {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, quiet = false;
    mst_progress pg;
    ms_diff_options o;
    ms_diff_options_init(&o); /* temporary files in $TMPDIR, else /tmp */
    mst_init(argv[0]);
    /* Each side's inputs: its stream first, then its --with-X files. */
    side_args sides[2] = {{.paths = calloc((size_t)argc, sizeof(char *)), .n = 1},
                          {.paths = calloc((size_t)argc, sizeof(char *)), .n = 1}};
    ms_diff *d = NULL;
    int status = MST_EXIT_ERROR;
    if (!sides[0].paths || !sides[1].paths) {
        mst_error("out of memory");
        goto out;
    }
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, ":q", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'P':
            if (mst_progress_option(optarg))
                goto out;
            break;
        case OPT_WITH_A:
        case OPT_WITH_B:
            sides[opt - OPT_WITH_A].paths[sides[opt - OPT_WITH_A].n++] = optarg;
            break;
        case OPT_MAX_OUTPUT:
            if (mst_parse_output_limit("--max-output", optarg, &o.max_output))
                goto out;
            break;
        case 'h':
            usage(stdout);
            status = MST_EXIT_OK;
            goto out;
        case 'V':
            mst_print_version();
            status = MST_EXIT_OK;
            goto out;
        case ':':
            mst_error("option %s needs a value", argv[optind - 1]);
            short_usage();
            goto out;
        default: /* getopt's own message would name the program by its path */
            mst_error("invalid option: %s", argv[optind - 1]);
            short_usage();
            goto out;
        }
    }
    if (argc - optind != 2) {
        mst_error("expected two streams, A and B");
        short_usage();
        goto out;
    }
    sides[0].paths[0] = argv[optind];
    sides[1].paths[0] = argv[optind + 1];
    size_t stdin_uses = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sides[k].n; i++)
            stdin_uses += strcmp(sides[k].paths[i], "-") == 0;
    if (stdin_uses > 1) {
        mst_error(strcmp(argv[optind], "-") == 0 && strcmp(argv[optind + 1], "-") == 0
                      ? "standard input can be only one of A and B"
                      : "standard input can be only one of the inputs");
        goto out;
    }
    o.keep_damaged = true; /* compared up to the damage, which is reported */
    d = ms_diff_new(&o);
    if (!d) {
        mst_error("out of memory");
        goto out;
    }
    printer p = {.out = stdout, .json = json};
    uint64_t size_a = mst_paths_size(sides[0].paths, sides[0].n);
    uint64_t size_b = mst_paths_size(sides[1].paths, sides[1].n);
    mst_progress_init(&pg, quiet, size_a && size_b ? size_a + size_b : 0);
    for (int k = 0; k < 2; k++) {
        if (load(d, k ? MS_DIFF_B : MS_DIFF_A, &sides[k], &pg) == 0)
            continue;
        mst_progress_done(&pg);
        if (!ms_diff_status(d))
            goto out; /* printed */
        /* Temporary files past --max-output or the free space: the
         * output cannot be written, as in migstream-replay (exit 2). */
        status = ms_diff_output_full(d) ? MST_EXIT_ERROR : mst_exit_for(ms_diff_status(d));
        if (status != MST_EXIT_FAIL || !json) {
            mst_error("%s", ms_diff_errmsg(d));
            goto out;
        }
        /* A stream with nothing to compare (its preamble is bad), in
         * JSON: the error object, and nothing is compared. */
        const ms_diff_damage dm = {.status = ms_diff_status(d),
                                   .offset = sides[k].error_offset,
                                   .record = sides[k].error_record,
                                   .part = sides[k].error_part,
                                   .message = ms_diff_errmsg(d)};
        mst_json_output_head(stdout);
        print_damage(&p, k ? MS_DIFF_B : MS_DIFF_A, &sides[k], &dm);
        goto out;
    }
    if (json)
        mst_json_output_head(stdout);
    print_formats(&p, sides[0].format, sides[1].format);
    int rc = ms_diff_compare(d, print_item, &p);
    mst_progress_done(&pg);
    if (rc < 0) {
        fflush(stdout); /* the differences found so far come first */
        if (p.bad_device)
            mst_error("device %s#%" PRIu32 ": cannot compare the states: %s", p.bad_device->path,
                      p.bad_device->instance, ms_strerror(rc));
        else
            mst_error("%s", ms_diff_errmsg(d));
        goto out;
    }
    bool partial = false;
    for (int k = 0; k < 2; k++) {
        const ms_diff_damage *dm = ms_diff_get_damage(d, k ? MS_DIFF_B : MS_DIFF_A);
        if (dm) {
            print_damage(&p, k ? MS_DIFF_B : MS_DIFF_A, &sides[k], dm);
            partial = true;
        }
    }
    print_summary(&p, ms_diff_get_totals(d), rc == 0, partial);
    status = rc == 0 && !partial ? MST_EXIT_OK : MST_EXIT_FAIL;
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write the output: %s", strerror(errno));
        status = MST_EXIT_ERROR;
    }
    ms_diff_free(d);
    free(sides[0].paths);
    free(sides[1].paths);
    return status;
}
