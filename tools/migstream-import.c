/*
 * migstream-import: turns another VMM's migration stream into a stream.
 *
 *     migstream-import qemu [options] -o OUT MAIN [CHANNEL...]
 *     migstream-import xen [options] -o OUT STREAM
 *
 * MAIN is QEMU's main migration stream (a file, or - for standard input:
 * QEMU's "exec:" and "fd:" migration write a pipe); each CHANNEL is the
 * capture of one multifd channel connection. STREAM is a Xen migration
 * stream v2, libxl-wrapped or bare. The library does the reading
 * (include/migstream/qemu.h, xen.h); this file handles the command line,
 * the atomic output file and the summary.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s qemu [options] -o OUT MAIN [CHANNEL...]\n"
            "       %s xen [options] -o OUT STREAM\n"
            "Imports a QEMU migration stream (QEVM version 3, QEMU 7.2 to 10.x) into a\n"
            "stream. MAIN is the main migration stream, - for standard input; each CHANNEL\n"
            "is the capture of one multifd channel connection, in any order; OUT - writes\n"
            "to standard output. With xen, imports a Xen migration stream v2 (libxl-\n"
            "wrapped or bare libxc, docs/XEN.md) the same way.\n"
            "\n"
            "  -o, --output OUT      stream to create (required)\n"
            "      --force           replace OUT if it exists\n"
            "      --raw-only        keep device state as raw bytes only, without the\n"
            "                        field map the JSON trailer allows\n"
            "      --compress LEVEL  zstd level for page data, 0 (off) to 19\n"
            "      --fill            send pages of one repeated 8-byte word as FILL pages\n"
            "                        (format 1.1, feature FILL) instead of data\n"
            "      --dedup           send pages equal to earlier ones as references\n"
            "                        (format 1.3, DUPLICATE pages)\n"
            "      --dedup-pages N   pages --dedup remembers (default 16384)\n"
            "      --window          compress each batch with the previous one as its\n"
            "                        window (format 1.3; with --compress)\n"
            "      --tmpdir DIR      directory of the temporary page file that XBZRLE pages\n"
            "                        are decoded against (default: $TMPDIR, else /tmp)\n"
            "      --stats           print what was imported (on standard error when OUT\n"
            "                        is -)\n"
            "      --json            the same as JSON Lines (docs/OUTPUT.md)\n",
            mst_prog, mst_prog);
    mst_print_progress_help(f, 21, true);
    fputs("  -h, --help            show this help and exit\n"
          "  -V, --version         show the version and exit\n"
          "\n"
          "      --raw-only and --tmpdir apply to QEMU streams only.\n"
          "\n"
          "An input stream that is malformed or uses a feature that is not supported\n"
          "is refused (exit status 1).\n"
          "\n",
          f);
    mst_print_exit_table(f);
}

typedef struct args {
    bool xen; /* the format: xen, else qemu */
    const char *out, *main_path, *tmpdir;
    char **channels;
    bool force, quiet, raw_only, stats, json, fill;
    int level;
    uint64_t features;    /* --dedup, --window */
    uint32_t dedup_pages; /* --dedup-pages */
    int nchannels;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    enum {
        O_FORCE = 256,
        O_RAW_ONLY,
        O_COMPRESS,
        O_TMPDIR,
        O_STATS,
        O_JSON,
        O_FILL,
        O_DEDUP,
        O_DEDUP_PAGES,
        O_WINDOW
    };
    static const struct option longopts[] = {
        {"dedup", no_argument, NULL, O_DEDUP},
        {"dedup-pages", required_argument, NULL, O_DEDUP_PAGES},
        {"window", no_argument, NULL, O_WINDOW},
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, O_FORCE},
        {"raw-only", no_argument, NULL, O_RAW_ONLY},
        {"compress", required_argument, NULL, O_COMPRESS},
        {"tmpdir", required_argument, NULL, O_TMPDIR},
        {"stats", no_argument, NULL, O_STATS},
        {"json", no_argument, NULL, O_JSON},
        {"fill", no_argument, NULL, O_FILL},
        MST_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, ":o:qhV", longopts, NULL)) != -1;) {
        char *end;
        long v;
        switch (opt) {
        case 'o':
            a->out = optarg;
            break;
        case O_FORCE:
            a->force = true;
            break;
        case O_RAW_ONLY:
            a->raw_only = true;
            break;
        case O_COMPRESS:
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > 19)
                return mst_usage_error("--compress %s: must be 0 (off) to 19", optarg);
            a->level = (int)v;
            break;
        case O_TMPDIR:
            a->tmpdir = optarg;
            break;
        case O_DEDUP:
            a->features |= MS_FEATURE_DUPLICATES;
            break;
        case O_DEDUP_PAGES:
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > (1l << 22))
                return mst_usage_error("--dedup-pages %s: must be 1 to 4194304", optarg);
            a->dedup_pages = (uint32_t)v;
            a->features |= MS_FEATURE_DUPLICATES;
            break;
        case O_WINDOW:
            a->features |= MS_FEATURE_ZSTD_WINDOW;
            break;
        case O_STATS:
            a->stats = true;
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_FILL:
            a->fill = true;
            break;
        default: {
            int rc = mst_common_option(opt, argv, &a->quiet, usage);
            if (rc)
                return rc;
            break;
        }
        }
    }
    int npos = argc - optind;
    if (npos < 1)
        return mst_usage_error("expected a format (qemu or xen), then MAIN");
    a->xen = strcmp(argv[optind], "xen") == 0;
    if (!a->xen && strcmp(argv[optind], "qemu") != 0)
        return mst_usage_error("unknown format '%s' (qemu and xen are supported)", argv[optind]);
    if (npos < 2)
        return mst_usage_error(a->xen ? "expected STREAM, the Xen migration stream"
                                      : "expected MAIN, QEMU's main migration stream");
    if (a->xen && npos > 2)
        return mst_usage_error("a Xen migration stream is one input: '%s' is one too many",
                               argv[optind + 2]);
    if (a->xen && (a->raw_only || a->tmpdir))
        return mst_usage_error("%s applies to QEMU streams only",
                               a->raw_only ? "--raw-only" : "--tmpdir");
    if (!a->out || !*a->out)
        return mst_usage_error("-o OUT is required");
    a->main_path = argv[optind + 1];
    a->channels = argv + optind + 2;
    a->nchannels = npos - 2;
#if MS_HAVE_QEMU
    if (a->nchannels > (int)MS_QEMU_MAX_CHANNELS)
        return mst_usage_error("%d channels given (QEMU uses at most %u)", a->nchannels,
                               MS_QEMU_MAX_CHANNELS);
#endif
    for (int i = 0; i < a->nchannels; i++)
        if (strcmp(a->channels[i], "-") == 0)
            return mst_usage_error("a CHANNEL cannot be standard input");
    return 0;
}

/* Library statuses that mean "this input is refused" rather than "the
 * import could not be carried out". */
static int exit_for(int status)
{
    switch (status) {
    case MS_EIO:
    case MS_ENOMEM:
    case MS_ESTATE:
        return MST_EXIT_ERROR;
    default:
        return MST_EXIT_FAIL;
    }
}

/* The writer's options both formats take from the command line. */
static void writer_options(const args *a, ms_writer_options *wo, const char *description)
{
    ms_writer_options_init(wo);
    wo->compress_level = a->level;
    if (a->fill)
        wo->features |= MS_FEATURE_FILL;
    wo->description = description;
}

#if MS_HAVE_QEMU
static void print_stats(FILE *f, const ms_qemu_import_stats *s, char *const *names)
{
    char machine[1100]; /* from the stream: its control characters escaped */
    ms_escape_text(machine, sizeof machine, s->machine[0] ? s->machine : "-");
    fprintf(f, "machine: %s\n", machine);
    fprintf(f, "ram blocks: %" PRIu32 " (%" PRIu64 " bytes)\n", s->ram_blocks, s->ram_bytes);
    fprintf(f, "zero pages: %" PRIu64 "\n", s->zero_pages);
    fprintf(f, "normal pages: %" PRIu64 "\n", s->normal_pages);
    fprintf(f, "xbzrle pages: %" PRIu64 "\n", s->xbzrle_pages);
    fprintf(f, "compressed pages: %" PRIu64 "\n", s->compressed_pages);
    fprintf(f, "ram passes: %" PRIu64 "\n", s->ram_rounds);
    fprintf(f, "devices: %" PRIu64 " (%" PRIu64 " with fields)\n", s->devices, s->devices_decoded);
    fprintf(f, "json trailer: %s\n", s->has_vmdesc ? "yes" : "no");
    fprintf(f, "bytes read: %" PRIu64 "\n", s->bytes_read);
    if (s->mapped_ram)
        fprintf(f, "mapped-ram: yes\n");
    if (s->channels) {
        fprintf(f, "multifd channels: %" PRIu32 " (%" PRIu64 " packets, %" PRIu64 " sync points)\n",
                s->channels, s->multifd_packets, s->multifd_syncs);
        for (uint32_t i = 0; i < s->channels; i++) {
            const struct ms_qemu_channel_stats *c = &s->channel[i];
            fprintf(f,
                    "channel %" PRIu32 " (%s): %" PRIu64 " packets, %" PRIu64
                    " normal pages, %" PRIu64 " zero pages, %" PRIu64 " bytes\n",
                    c->id, names[i], c->packets, c->normal_pages, c->zero_pages, c->bytes_read);
        }
    }
}

/* --json: QEMU's items as read, not the page states written (the writer
 * stores an all-zero page as ZERO, --fill and --dedup make FILL and
 * DUPLICATE pages). */
static void print_json(FILE *f, const ms_qemu_import_stats *s, char *const *names)
{
    mst_convert_json_begin(f, "qemu");
    mst_convert_json_text(f, "machine", s->machine);
    fprintf(f, ",\"ram_blocks\":%" PRIu32, s->ram_blocks);
    MST_JSON_COUNTERS(f, {"ram_bytes", s->ram_bytes}, {"zero_pages", s->zero_pages},
                      {"normal_pages", s->normal_pages}, {"xbzrle_pages", s->xbzrle_pages},
                      {"compressed_pages", s->compressed_pages}, {"ram_rounds", s->ram_rounds},
                      {"sections", s->sections}, {"commands", s->commands}, {"devices", s->devices},
                      {"devices_with_fields", s->devices_decoded});
    fprintf(f, ",\"json_trailer\":%s,\"mapped_ram\":%s", s->has_vmdesc ? "true" : "false",
            s->mapped_ram ? "true" : "false");
    MST_JSON_COUNTERS(f, {"multifd_packets", s->multifd_packets},
                      {"multifd_syncs", s->multifd_syncs});
    fputs(",\"channels\":[", f);
    for (uint32_t i = 0; i < s->channels; i++) {
        const struct ms_qemu_channel_stats *c = &s->channel[i];
        fprintf(f, "%s{\"id\":%" PRIu32 ",\"input\":", i ? "," : "", c->id);
        mst_json_string(f, names[i]);
        MST_JSON_COUNTERS(f, {"packets", c->packets}, {"normal_pages", c->normal_pages},
                          {"zero_pages", c->zero_pages}, {"bytes_read", c->bytes_read});
        fputc('}', f);
    }
    fputc(']', f);
    MST_JSON_COUNTERS(f, {"bytes_read", s->bytes_read});
    fputs("}\n", f);
}

/* The library's QEMU importer (mst_convert_ops): the main stream with its
 * multifd channels. */
static int qemu_run(mst_convert *cv)
{
    const args *a = cv->args;
    ms_writer_options wo;
    writer_options(a, &wo, "imported from a QEMU migration stream by migstream-import");
    wo.features |= a->features;
    wo.dedup_pages = a->dedup_pages;
    ms_qemu_import_options io;
    ms_qemu_import_options_init(&io);
    io.writer = &wo;
    io.tmpdir = a->tmpdir;
    io.raw_only = a->raw_only;
    ms_qemu_import *imp = ms_qemu_import_new(&io);
    for (int i = 0; imp && i < a->nchannels; i++) {
        if (ms_qemu_import_add_channel(imp, mst_convert_read, &cv->extra[i], a->channels[i])) {
            ms_qemu_import_free(imp);
            imp = NULL;
        }
    }
    /* A regular file is read by offset: mapped-ram streams need it. */
    if (imp && cv->in_size && ms_qemu_import_set_pread(imp, mst_convert_pread, &cv->in)) {
        ms_qemu_import_free(imp);
        imp = NULL;
    }
    cv->conv = imp;
    cv->made = imp != NULL;
    if (!imp) {
        cv->msg = "out of memory";
        return MS_ENOMEM;
    }
    if (!ms_qemu_import_run(imp, mst_convert_read, &cv->in, mst_convert_write, cv))
        return 0;
    /* A channel's failure names the channel's file itself. */
    cv->msg = ms_qemu_import_errmsg(imp);
    cv->named = strncmp(cv->msg, "multifd", 7) == 0;
    return ms_qemu_import_status(imp);
}

static void qemu_finish(mst_convert *cv, FILE *summary)
{
    const args *a = cv->args;
    if (summary) {
        const ms_qemu_import_stats *s = ms_qemu_import_get_stats(cv->conv);
        if (a->json)
            print_json(summary, s, a->channels);
        else if (a->stats)
            print_stats(summary, s, a->channels);
        /* In a multifd migration the data pages travel in the channels
         * (QEMU 7.2 keeps zero pages in the main stream, and its main
         * stream does not say it is multifd): without channels, a main
         * stream with RAM blocks and no data page is most likely one. */
        if (!s->channels && s->ram_blocks && !s->normal_pages && !s->xbzrle_pages &&
            !s->compressed_pages)
            mst_error("warning: the stream declares %" PRIu32 " RAM blocks but holds no data "
                      "page: with multifd the pages are in the channel streams, give them as "
                      "CHANNEL arguments",
                      s->ram_blocks);
    }
    ms_qemu_import_free(cv->conv);
}

static const mst_convert_ops qemu_ops = {"a stream", qemu_run, qemu_finish};
#define QEMU_OPS (&qemu_ops)
#define MAX_CHANNELS MS_QEMU_MAX_CHANNELS
#else
#define QEMU_OPS NULL
#define MAX_CHANNELS 1 /* no QEMU stream is read */
#endif

#if MS_HAVE_XEN
static void print_xen_stats(FILE *f, const ms_xen_import_stats *s)
{
    fprintf(f, "format: %s, image version %" PRIu32 "\n", s->libxl ? "libxl" : "libxc",
            s->version);
    fprintf(f, "domain: %s, Xen %" PRIu32 ".%" PRIu32 "\n",
            s->domain_type == MS_XEN_DOMAIN_PV ? "PV" : "HVM", s->xen_major, s->xen_minor);
    fprintf(f, "records: %" PRIu64 " (%" PRIu64 " PAGE_DATA)\n", s->records, s->page_data);
    fprintf(f, "rounds: %" PRIu64 "\n", s->rounds);
    fprintf(f, "checkpoints: %" PRIu64 "\n", s->checkpoints);
    fprintf(f, "devices: %" PRIu64 "\n", s->devices);
    fprintf(f, "unknown optional records kept: %" PRIu64 "\n", s->optional);
    fprintf(f, "bytes read: %" PRIu64 "\n", s->bytes_read);
}

/* --json: the pfn entries by Xen's page type as read (the importer stores
 * an all-zero page as ZERO: docs/XEN.md). */
static void print_xen_json(FILE *f, const ms_xen_import_stats *s)
{
    mst_convert_json_begin(f, "xen");
    fprintf(f, ",\"libxl\":%s,\"image_version\":%" PRIu32 ",\"domain_type\":\"%s\"",
            s->libxl ? "true" : "false", s->version,
            s->domain_type == MS_XEN_DOMAIN_PV ? "PV" : "HVM");
    fprintf(f, ",\"xen_major\":%" PRIu32 ",\"xen_minor\":%" PRIu32, s->xen_major, s->xen_minor);
    MST_JSON_COUNTERS(f, {"records", s->records}, {"page_data_records", s->page_data});
    mst_convert_json_xen_page_types(f, s->pages);
    MST_JSON_COUNTERS(f, {"rounds", s->rounds}, {"checkpoints", s->checkpoints},
                      {"devices", s->devices}, {"optional_records", s->optional},
                      {"bytes_read", s->bytes_read});
    fputs("}\n", f);
}

/* A Xen stream: one input, no page file (mst_convert_ops). */
static int xen_run(mst_convert *cv)
{
    ms_writer_options wo;
    writer_options(cv->args, &wo, "imported from a Xen migration stream by migstream-import");
    ms_xen_import_options xo;
    ms_xen_import_options_init(&xo);
    xo.writer = &wo;
    ms_xen_import *imp = cv->conv = ms_xen_import_new(&xo);
    int status = ms_xen_import_status(imp);
    cv->made = !status;
    if (!status && ms_xen_import_run(imp, mst_convert_read, &cv->in, mst_convert_write, cv))
        status = ms_xen_import_status(imp);
    cv->msg = ms_xen_import_errmsg(imp);
    return status;
}

static void xen_finish(mst_convert *cv, FILE *summary)
{
    const args *a = cv->args;
    if (summary && a->json)
        print_xen_json(summary, ms_xen_import_get_stats(cv->conv));
    else if (summary && a->stats)
        print_xen_stats(summary, ms_xen_import_get_stats(cv->conv));
    ms_xen_import_free(cv->conv);
}

static const mst_convert_ops xen_ops = {"a stream", xen_run, xen_finish};
#define XEN_OPS (&xen_ops)
#else
#define XEN_OPS NULL
#endif

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    mst_init(argv[0]);
    int rc = parse_args(argc, argv, &a);
    if (rc == 0) {
        mst_convert_input channels[MAX_CHANNELS];
        mst_convert cv = {.ops = a.xen ? XEN_OPS : QEMU_OPS,
                          .args = &a,
                          .in_path = a.main_path,
                          .out_path = a.out,
                          .force = a.force,
                          .quiet = a.quiet,
                          .extra_paths = a.channels,
                          .extra = channels,
                          .nextra = (size_t)a.nchannels,
                          .exit_for = exit_for};
        rc = cv.ops ? mst_convert_run(&cv) : mst_convert_no_module(a.xen ? "xen" : "qemu");
    }
    mst_convert_exit_signal();
    return rc < 0 ? MST_EXIT_OK : rc;
}
