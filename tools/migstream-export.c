/*
 * migstream-export: writes a stream back in another VMM's migration format.
 *
 *     migstream-export qemu [options] -o OUT STREAM [INPUT...]
 *     migstream-export xen [options] -o OUT STREAM [INPUT...]
 *
 * STREAM is a stream of any format ms_open() reads (a file, or - for
 * standard input), with its other inputs (a QEMU stream's multifd
 * channels, the other parts of a migration in parts); OUT is the QEMU migration stream that
 * `qemu-system-* -incoming` loads ("exec:cat OUT"), or the Xen migration
 * stream, - for standard output. The library does the writing
 * (include/migstream/qemu.h, xen.h); convert.c runs it around the atomic
 * output file; this file handles the command line and the summary.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s qemu [options] -o OUT STREAM [INPUT...]\n"
            "       %s xen [options] -o OUT STREAM [INPUT...]\n"
            "Exports STREAM as a QEMU migration stream (QEVM version 3) that\n"
            "qemu-system-* -incoming loads; with xen, as a Xen migration stream v2\n"
            "(docs/XEN.md). STREAM may be of any format this build reads\n"
            "(libmigstream's; QEMU's, Xen's and libvirt's save images with their\n"
            "modules): it is converted as it is read. INPUT... are the stream's other\n"
            "inputs, in any order: a QEMU stream's multifd channels, the other parts\n"
            "of a migration in parts. STREAM - reads standard input; OUT - writes to\n"
            "standard output.\n"
            "\n"
            "  -o, --output OUT      the stream to create (required)\n"
            "      --force           replace OUT if it exists\n"
            "      --machine TYPE    machine type for QEMU's CONFIGURATION section, instead\n"
            "                        of the stream's (the destination's must be the same)\n"
            "      --no-vmdesc       write no JSON trailer after QEMU's EOF\n"
            "      --max-output SIZE most bytes OUT may take (K, M, G, T suffixes; 'none':\n"
            "                        only the free space); default 1T. Both formats have\n"
            "                        an item per page, which a few bytes of ZERO or FILL\n"
            "                        extent can stand for\n"
            "      --libxl, --libxc  xen: write a libxl-wrapped or a bare libxc stream\n"
            "                        (default: as the stream came from the importer)\n"
            "      --verifiable      xen: leave out the records Xen 4.17's verify-stream-v2\n"
            "                        refuses although the spec allows them\n"
            "      --stats           print what was exported (on standard error when OUT\n"
            "                        is -)\n"
            "      --json            the same as JSON Lines (docs/OUTPUT.md)\n",
            mst_prog, mst_prog);
    mst_print_progress_help(f, 21, true);
    fputs("  -h, --help            show this help and exit\n"
          "  -V, --version         show the version and exit\n"
          "\n"
          "A stream that is damaged or holds what the format cannot carry (QEMU:\n"
          "IN_PLACE pages, overlays, device state without raw bytes; Xen: regions\n"
          "without a guest-physical address, devices that are not Xen records) is\n"
          "refused (exit status 1). An output that would take more than\n"
          "--max-output or the free space is not written (exit status 2).\n"
          "\n",
          f);
    mst_print_exit_table(f);
}

typedef struct args {
    const char *out, *in_path, *machine;
    char *const *extra; /* INPUT... */
    size_t nextra;
    bool force, quiet, no_vmdesc, stats, json;
    uint64_t max_output;
    bool xen, verifiable;
    uint32_t xen_format; /* an ms_xen_format, 0: auto */
} args;

static int parse_args(int argc, char **argv, args *a)
{
    enum {
        O_FORCE = 256,
        O_MACHINE,
        O_NO_VMDESC,
        O_STATS,
        O_LIBXL,
        O_LIBXC,
        O_VERIFIABLE,
        O_MAX_OUTPUT,
        O_JSON
    };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, O_FORCE},
        {"machine", required_argument, NULL, O_MACHINE},
        {"no-vmdesc", no_argument, NULL, O_NO_VMDESC},
        {"stats", no_argument, NULL, O_STATS},
        {"json", no_argument, NULL, O_JSON},
        {"max-output", required_argument, NULL, O_MAX_OUTPUT},
        {"libxl", no_argument, NULL, O_LIBXL},
        {"libxc", no_argument, NULL, O_LIBXC},
        {"verifiable", no_argument, NULL, O_VERIFIABLE},
        MST_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, ":o:qhV", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'o':
            a->out = optarg;
            break;
        case O_FORCE:
            a->force = true;
            break;
        case O_MACHINE:
            if (!*optarg || strlen(optarg) > 255)
                return mst_usage_error("--machine: 1 to 255 bytes expected");
            a->machine = optarg;
            break;
        case O_NO_VMDESC:
            a->no_vmdesc = true;
            break;
        case O_STATS:
            a->stats = true;
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_MAX_OUTPUT:
            if (mst_parse_output_limit("--max-output", optarg, &a->max_output))
                return MST_EXIT_ERROR;
            break;
        case O_LIBXL:
        case O_LIBXC:
            a->xen_format = opt == O_LIBXL ? 1u : 2u; /* MS_XEN_FORMAT_LIBXL, _LIBXC */
            break;
        case O_VERIFIABLE:
            a->verifiable = true;
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
        return mst_usage_error("expected a format (qemu or xen), then STREAM");
    a->xen = strcmp(argv[optind], "xen") == 0;
    if (!a->xen && strcmp(argv[optind], "qemu") != 0)
        return mst_usage_error("unknown format '%s' (qemu and xen are supported)", argv[optind]);
    if (a->xen && (a->machine || a->no_vmdesc))
        return mst_usage_error("%s applies to QEMU streams only",
                               a->machine ? "--machine" : "--no-vmdesc");
    if (!a->xen && (a->xen_format || a->verifiable))
        return mst_usage_error("%s applies to Xen streams only",
                               a->verifiable ? "--verifiable" : "--libxl/--libxc");
    if (npos < 2)
        return mst_usage_error("expected STREAM, the stream to export");
    if (!a->out || !*a->out)
        return mst_usage_error("-o OUT is required");
    a->in_path = argv[optind + 1];
    a->extra = argv + optind + 2;
    a->nextra = (size_t)(npos - 2);
    return 0;
}

#if MS_HAVE_QEMU || MS_HAVE_XEN
/* Whether a failure's message names its input itself: the reader's for a
 * part of a migration in parts or a multifd channel, and the exporters'
 * for a record of a part. Others are printed after the main input's name. */
static bool names_input(const char *msg)
{
    return strncmp(msg, "part ", 5) == 0 || strncmp(msg, "multifd", 7) == 0;
}
#endif

#if MS_HAVE_QEMU
static void print_stats(FILE *f, const ms_qemu_export_stats *s)
{
    char machine[1100]; /* from the stream: its control characters escaped */
    ms_escape_text(machine, sizeof machine, s->machine[0] ? s->machine : "-");
    fprintf(f, "machine: %s\n", machine);
    fprintf(f, "ram blocks: %" PRIu32 " (%" PRIu64 " bytes)\n", s->ram_blocks, s->ram_bytes);
    fprintf(f, "zero pages: %" PRIu64 "\n", s->zero_pages);
    fprintf(f, "normal pages: %" PRIu64 " (%" PRIu64 " from FILL)\n", s->normal_pages,
            s->fill_pages);
    fprintf(f, "discarded pages, not sent: %" PRIu64 "\n", s->discarded_pages);
    fprintf(f, "ram parts: %" PRIu64 "\n", s->ram_parts);
    fprintf(f, "devices: %" PRIu64 " (%" PRIu64 " records)\n", s->devices, s->device_records);
    if (s->libvirt_records) /* only from a libvirt save image */
        fprintf(f, "libvirt header records, left out: %" PRIu64 "\n", s->libvirt_records);
    fprintf(f, "bytes written: %" PRIu64 "\n", s->bytes_written);
}

/* --json: the input's pages by the state read, in QEMU pages; a FILL page
 * of the word 0 goes out as a QEMU zero page and counts as ZERO. */
static void print_json(FILE *f, const ms_qemu_export_stats *s)
{
    mst_convert_json_begin(f, "qemu");
    mst_convert_json_text(f, "machine", s->machine);
    fprintf(f, ",\"ram_blocks\":%" PRIu32, s->ram_blocks);
    MST_JSON_COUNTERS(f, {"ram_bytes", s->ram_bytes});
    fputs(",\"pages\":{\"DATA\":", f);
    mst_json_u64(f, s->normal_pages - s->fill_pages);
    MST_JSON_COUNTERS(f, {"ZERO", s->zero_pages}, {"FILL", s->fill_pages},
                      {"DISCARDED", s->discarded_pages});
    fputc('}', f);
    MST_JSON_COUNTERS(f, {"ram_parts", s->ram_parts}, {"devices", s->devices},
                      {"device_records", s->device_records},
                      {"libvirt_records", s->libvirt_records}, {"records", s->records},
                      {"bytes_read", s->bytes_read}, {"bytes_written", s->bytes_written});
    fputs("}\n", f);
}

/* The library's QEMU exporter (mst_convert_ops). */
static int qemu_run(mst_convert *cv)
{
    const args *a = cv->args;
    ms_qemu_export_options eo;
    ms_qemu_export_options_init(&eo);
    eo.machine = a->machine;
    eo.no_vmdesc = a->no_vmdesc;
    eo.max_output = mst_convert_output_limit(cv, a->max_output);
    ms_qemu_export *exp = cv->conv = ms_qemu_export_new(&eo);
    cv->made = exp != NULL;
    if (!exp) {
        cv->msg = "out of memory";
        return MS_ENOMEM;
    }
    if (!ms_qemu_export_run_reader(exp, cv->stream.r, mst_convert_write, cv))
        return 0;
    cv->msg = ms_qemu_export_errmsg(exp);
    cv->named = names_input(cv->msg);
    cv->output_full = ms_qemu_export_get_stats(exp)->output_full;
    return ms_qemu_export_status(exp);
}

static void qemu_finish(mst_convert *cv, FILE *summary)
{
    const args *a = cv->args;
    if (summary && a->json)
        print_json(summary, ms_qemu_export_get_stats(cv->conv));
    else if (summary && a->stats)
        print_stats(summary, ms_qemu_export_get_stats(cv->conv));
    ms_qemu_export_free(cv->conv);
}

static const mst_convert_ops qemu_ops = {"a QEMU stream", qemu_run, qemu_finish};
#define QEMU_OPS (&qemu_ops)
#else
#define QEMU_OPS NULL
#endif

#if MS_HAVE_XEN
static void print_xen_stats(FILE *f, const ms_xen_export_stats *s)
{
    fprintf(f, "format: %s\n", s->libxl ? "libxl" : "libxc");
    fprintf(f, "domain: %s\n", s->domain_type == MS_XEN_DOMAIN_PV ? "PV" : "HVM");
    fprintf(f, "xen records: %" PRIu64 " (%" PRIu64 " PAGE_DATA)\n", s->xen_records,
            s->page_data);
    fprintf(f, "records left out (--verifiable): %" PRIu64 "\n", s->dropped);
    fprintf(f, "bytes written: %" PRIu64 "\n", s->bytes_written);
}

/* --json: the pfn entries written by Xen's page type (DATA, ZERO and FILL
 * pages all go out with data; DISCARDED ones as XTAB). */
static void print_xen_json(FILE *f, const ms_xen_export_stats *s)
{
    mst_convert_json_begin(f, "xen");
    fprintf(f, ",\"libxl\":%s,\"domain_type\":\"%s\"", s->libxl ? "true" : "false",
            s->domain_type == MS_XEN_DOMAIN_PV ? "PV" : "HVM");
    MST_JSON_COUNTERS(f, {"xen_records", s->xen_records}, {"page_data_records", s->page_data});
    mst_convert_json_xen_page_types(f, s->pages);
    MST_JSON_COUNTERS(f, {"records_left_out", s->dropped}, {"records", s->records},
                      {"bytes_read", s->bytes_read}, {"bytes_written", s->bytes_written});
    fputs("}\n", f);
}

/* A stream as a Xen migration stream v2 (mst_convert_ops). */
static int xen_run(mst_convert *cv)
{
    const args *a = cv->args;
    ms_xen_export_options xo;
    ms_xen_export_options_init(&xo);
    xo.format = a->xen_format;
    xo.verifiable = a->verifiable;
    xo.max_output = mst_convert_output_limit(cv, a->max_output);
    ms_xen_export *exp = cv->conv = ms_xen_export_new(&xo);
    int status = ms_xen_export_status(exp);
    cv->made = !status;
    if (!status && ms_xen_export_run_reader(exp, cv->stream.r, mst_convert_write, cv)) {
        status = ms_xen_export_status(exp);
        cv->output_full = ms_xen_export_get_stats(exp)->output_full;
    }
    cv->msg = ms_xen_export_errmsg(exp);
    cv->named = names_input(cv->msg);
    return status;
}

static void xen_finish(mst_convert *cv, FILE *summary)
{
    const args *a = cv->args;
    if (summary && a->json)
        print_xen_json(summary, ms_xen_export_get_stats(cv->conv));
    else if (summary && a->stats)
        print_xen_stats(summary, ms_xen_export_get_stats(cv->conv));
    ms_xen_export_free(cv->conv);
}

static const mst_convert_ops xen_ops = {"a Xen stream", xen_run, xen_finish};
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
        mst_convert cv = {.ops = a.xen ? XEN_OPS : QEMU_OPS,
                          .args = &a,
                          .in_path = a.in_path,
                          .any_format = true,
                          .extra_paths = a.extra,
                          .nextra = a.nextra,
                          .out_path = a.out,
                          .force = a.force,
                          .quiet = a.quiet,
                          .exit_for = mst_exit_for};
        rc = cv.ops ? mst_convert_run(&cv) : mst_convert_no_module(a.xen ? "xen" : "qemu");
    }
    mst_convert_exit_signal();
    return rc < 0 ? MST_EXIT_OK : rc;
}
