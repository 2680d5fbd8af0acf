/*
 * migstream-export: writes a stream back in another VMM's migration format.
 *
 *     migstream-export qemu [options] -o OUT STREAM
 *
 * STREAM is a stream imported from QEMU (a file, or - for standard input);
 * OUT is the QEMU migration stream that `qemu-system-* -incoming` loads
 * ("exec:cat OUT"), - for standard output. The library does the writing
 * (include/migstream/qemu.h); this file handles the command line, the
 * atomic output file and the summary.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* Reads an input of the stream (mst_stream_hooks.read); an interrupt stops
 * the export. */
static ssize_t read_input(void *ctx, int fd, void *buf, size_t len)
{
    (void)ctx;
    for (;;) {
        if (got_signal) {
            errno = EINTR;
            return -1;
        }
        ssize_t k = read(fd, buf, len);
        if (k < 0 && errno == EINTR)
            continue;
        return k;
    }
}

static int write_output(void *ctx, const struct iovec *iov, int iovcnt)
{
    int fd = *(int *)ctx;
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            if (got_signal)
                return -1;
            ssize_t k = write(fd, p, left);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return -1;
            p += k;
            left -= (size_t)k;
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s qemu [options] -o OUT STREAM\n"
            "       %s xen [options] -o OUT STREAM\n"
            "Exports STREAM as a QEMU migration stream (QEVM version 3) that\n"
            "qemu-system-* -incoming loads; with xen, as a Xen migration stream v2\n"
            "(docs/XEN.md). STREAM may be of any format this build reads\n"
            "(libmigstream's; QEMU's, Xen's and libvirt's save images with their\n"
            "modules): it is converted as it is read. STREAM - reads standard input;\n"
            "OUT - writes to standard output.\n"
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
            "                        is -)\n",
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

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mst_error("%s", msg);
    fprintf(stderr, "Try '%s --help'.\n", mst_prog);
    return MST_EXIT_ERROR;
}

typedef struct args {
    const char *out, *in_path, *machine;
    bool force, quiet, no_vmdesc, stats;
    uint64_t max_output;
    bool xen, verifiable;
    uint32_t xen_format; /* an ms_xen_format, 0: auto */
} args;

static int parse_args(int argc, char **argv, args *a)
{
    enum { O_FORCE = 256, O_MACHINE, O_NO_VMDESC, O_STATS, O_LIBXL, O_LIBXC, O_VERIFIABLE,
           O_MAX_OUTPUT };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, O_FORCE},
        {"machine", required_argument, NULL, O_MACHINE},
        {"no-vmdesc", no_argument, NULL, O_NO_VMDESC},
        {"stats", no_argument, NULL, O_STATS},
        {"max-output", required_argument, NULL, O_MAX_OUTPUT},
        {"libxl", no_argument, NULL, O_LIBXL},
        {"libxc", no_argument, NULL, O_LIBXC},
        {"verifiable", no_argument, NULL, O_VERIFIABLE},
        {"quiet", no_argument, NULL, 'q'},
        {"progress", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
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
                return bad_usage("--machine: 1 to 255 bytes expected");
            a->machine = optarg;
            break;
        case O_NO_VMDESC:
            a->no_vmdesc = true;
            break;
        case O_STATS:
            a->stats = true;
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
        case 'q':
            a->quiet = true;
            break;
        case 'P':
            if (mst_progress_option(optarg))
                return MST_EXIT_ERROR;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case 'V':
            mst_print_version();
            return -1;
        case ':':
            return bad_usage("option %s needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return bad_usage("unknown option -%c", optopt);
            return bad_usage("unknown option %s", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if (npos < 1)
        return bad_usage("expected a format (qemu or xen), then STREAM");
    a->xen = strcmp(argv[optind], "xen") == 0;
    if (!a->xen && strcmp(argv[optind], "qemu") != 0)
        return bad_usage("unknown format '%s' (qemu and xen are supported)", argv[optind]);
    if (a->xen && (a->machine || a->no_vmdesc))
        return bad_usage("%s applies to QEMU streams only",
                         a->machine ? "--machine" : "--no-vmdesc");
    if (!a->xen && (a->xen_format || a->verifiable))
        return bad_usage("%s applies to Xen streams only",
                         a->verifiable ? "--verifiable" : "--libxl/--libxc");
    if (npos < 2)
        return bad_usage("expected STREAM, the stream to export");
    if (npos > 2)
        return bad_usage("unexpected argument '%s'", argv[optind + 2]);
    if (!a->out || !*a->out)
        return bad_usage("-o OUT is required");
    a->in_path = argv[optind + 1];
    return 0;
}

/* --max-output, and at most the free space of the file system when OUT is
 * a file (a FIFO or a device written in place, standard output: the limit
 * alone); *free_space says which. */
static uint64_t output_limit(const args *a, int fd, bool *free_space)
{
    uint64_t limit = a->max_output ? a->max_output : MS_MAX_OUTPUT_DEFAULT;
    struct statvfs v;
    struct stat sb;
    *free_space = false;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fstatvfs(fd, &v) == 0 && v.f_frsize &&
        (uint64_t)v.f_bavail <= limit / v.f_frsize) {
        limit = (uint64_t)v.f_bavail * v.f_frsize;
        *free_space = true;
    }
    return limit;
}

/* The library's message for a failed export; when the output would have
 * passed a limit that is the free space, says so. */
static void report_failure(const args *a, const mst_stream *st, const char *msg,
                           bool output_full, bool free_space, uint64_t limit)
{
    const mst_input *bad = mst_stream_failed_input(st);
    if (bad)
        mst_error("cannot read %s: %s", bad->name, strerror(bad->err));
    else
        mst_error("%s: %s", strcmp(a->in_path, "-") == 0 ? "standard input" : a->in_path, msg);
    if (output_full && free_space)
        mst_error("that limit is the %" PRIu64 " bytes free where %s is made", limit, a->out);
}

/* Library statuses that mean "this input is refused" rather than "the
 * export could not be carried out"; an output past its limit cannot be
 * written (exit 2, as in migstream-replay). */
static int exit_for(int status, bool output_full)
{
    if (output_full)
        return MST_EXIT_ERROR;
    switch (status) {
    case MS_EIO:
    case MS_ENOMEM:
    case MS_ESTATE:
    case MS_EINVAL:
        return MST_EXIT_ERROR;
    default:
        return MST_EXIT_FAIL;
    }
}

static void catch_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
}

/* Opens STREAM through ms_open(): a stream of any format this build
 * reads, converted as it is read; starts the progress line. 0, or -1
 * having said why. */
#if MS_HAVE_QEMU || MS_HAVE_XEN
static int open_input(const args *a, mst_stream *st, mst_progress *pg)
{
    const char *paths[] = {a->in_path};
    const mst_stream_hooks hooks = {.read = read_input, .progress = pg};
    mst_progress_init(pg, a->quiet, mst_paths_size(paths, 1));
    if (mst_stream_open(st, paths, 1, &hooks) == 0)
        return 0;
    mst_progress_done(pg);
    mst_stream_close(st);
    return -1;
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

static int export(const args *a)
{
    bool to_stdout = strcmp(a->out, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        mst_error("refusing to write a QEMU stream to a terminal");
        return MST_EXIT_ERROR;
    }
    mst_progress pg;
    mst_stream st;
    if (open_input(a, &st, &pg))
        return MST_EXIT_ERROR;
    mst_out o;
    if (mst_out_open(&o, a->out, a->force)) {
        mst_progress_done(&pg);
        mst_stream_close(&st);
        return MST_EXIT_ERROR;
    }
    if (!to_stdout)
        catch_signals();

    ms_qemu_export_options eo;
    ms_qemu_export_options_init(&eo);
    eo.machine = a->machine;
    eo.no_vmdesc = a->no_vmdesc;
    bool free_space;
    eo.max_output = output_limit(a, o.fd, &free_space);
    ms_qemu_export *exp = ms_qemu_export_new(&eo);
    int rc = MST_EXIT_OK;
    if (!exp) {
        mst_error("out of memory");
        rc = MST_EXIT_ERROR;
    } else if (ms_qemu_export_run_reader(exp, st.r, write_output, &o.fd)) {
        mst_progress_done(&pg);
        bool full = ms_qemu_export_get_stats(exp)->output_full;
        if (!got_signal)
            report_failure(a, &st, ms_qemu_export_errmsg(exp), full, free_space,
                           eo.max_output);
        rc = exit_for(ms_qemu_export_status(exp), full);
    }
    mst_progress_done(&pg);
    if (!rc && !got_signal && mst_out_commit(&o))
        rc = MST_EXIT_ERROR;
    if (rc || got_signal)
        mst_out_abort(&o);
    if (!rc && !got_signal && a->stats)
        print_stats(to_stdout ? stderr : stdout, ms_qemu_export_get_stats(exp));
    ms_qemu_export_free(exp);
    mst_stream_close(&st);
    return got_signal ? MST_EXIT_ERROR : rc;
}

#else
static int export(const args *a)
{
    (void)a;
    mst_error("this build of libmigstream has no QEMU module (built with -Dqemu=false)");
    return MST_EXIT_ERROR;
}
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

/* A stream as a Xen migration stream v2. */
static int export_xen(const args *a)
{
    bool to_stdout = strcmp(a->out, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        mst_error("refusing to write a Xen stream to a terminal");
        return MST_EXIT_ERROR;
    }
    mst_progress pg;
    mst_stream st;
    if (open_input(a, &st, &pg))
        return MST_EXIT_ERROR;
    mst_out o;
    if (mst_out_open(&o, a->out, a->force)) {
        mst_progress_done(&pg);
        mst_stream_close(&st);
        return MST_EXIT_ERROR;
    }
    if (!to_stdout)
        catch_signals();
    ms_xen_export_options xo;
    ms_xen_export_options_init(&xo);
    xo.format = a->xen_format;
    xo.verifiable = a->verifiable;
    bool free_space;
    xo.max_output = output_limit(a, o.fd, &free_space);
    ms_xen_export *exp = ms_xen_export_new(&xo);
    int rc = MST_EXIT_OK;
    if (ms_xen_export_status(exp)) {
        mst_error("%s", ms_xen_export_errmsg(exp));
        rc = MST_EXIT_ERROR;
    } else if (ms_xen_export_run_reader(exp, st.r, write_output, &o.fd)) {
        mst_progress_done(&pg);
        bool full = ms_xen_export_get_stats(exp)->output_full;
        if (!got_signal)
            report_failure(a, &st, ms_xen_export_errmsg(exp), full, free_space, xo.max_output);
        rc = exit_for(ms_xen_export_status(exp), full);
    }
    mst_progress_done(&pg);
    if (!rc && !got_signal && mst_out_commit(&o))
        rc = MST_EXIT_ERROR;
    if (rc || got_signal)
        mst_out_abort(&o);
    if (!rc && !got_signal && a->stats)
        print_xen_stats(to_stdout ? stderr : stdout, ms_xen_export_get_stats(exp));
    ms_xen_export_free(exp);
    mst_stream_close(&st);
    return got_signal ? MST_EXIT_ERROR : rc;
}
#else
static int export_xen(const args *a)
{
    (void)a;
    mst_error("this build of libmigstream has no Xen module (built with -Dxen=false)");
    return MST_EXIT_ERROR;
}
#endif

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    mst_init(argv[0]);
    int rc = parse_args(argc, argv, &a);
    if (rc == 0)
        rc = a.xen ? export_xen(&a) : export(&a);
    if (got_signal) {
        signal(got_signal, SIG_DFL);
        raise(got_signal);
    }
    return rc < 0 ? MST_EXIT_OK : rc;
}
