/*
 * migstream-replay: applies a stream and writes the guest's final state to a
 * directory: one sparse raw image per memory region, each device's state as
 * CBOR and as JSON, and manifest.json. The library's ms_replay_dir
 * (migstream/replay_dir.h) does the work; this file holds the command line,
 * the signal handling, the progress line and the messages.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static sigset_t unblocked; /* the signal mask at start */
static sigset_t caught;    /* the signals on_signal takes */

/* Catches the signals that end a run, unless they are ignored (nohup). They
 * stay deliverable, so that a signal stops a long write at once (the
 * library checks got_signal within its writes: ms_replay_dir_options.stop),
 * and are blocked only from the check to the wait for input (see
 * read_input), so that a signal cannot slip in between a check and a
 * blocking read. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&caught);
    sigprocmask(SIG_SETMASK, NULL, &unblocked);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) {
            sigaction(sigs[i], &sa, NULL);
            sigaddset(&caught, sigs[i]);
        }
}

/* Sequential reads of every input (mst_stream_hooks.read). The caught
 * signals are blocked from the check of got_signal to ppoll(), which
 * unblocks them while it waits: a signal then stops a read that waits on a
 * pipe, instead of the read being retried. */
static ssize_t read_input(void *ctx, int fd, void *buf, size_t len)
{
    (void)ctx;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        sigset_t was;
        sigprocmask(SIG_BLOCK, &caught, &was);
        int polled = got_signal ? 0 : ppoll(&p, 1, NULL, &was);
        int e = errno;
        sigprocmask(SIG_SETMASK, &was, NULL);
        if (polled < 0 && e != EINTR) {
            errno = e;
            return -1;
        }
        if (got_signal) {
            errno = EINTR;
            return -1;
        }
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

typedef struct progress {
    mst_progress line;
    const mst_stream *stream;
} progress;

/* The bytes read from every input of the stream, and the pages applied. */
static void show_progress(void *ctx, uint64_t bytes, uint64_t pages)
{
    progress *p = ctx;
    (void)bytes; /* the offset in the main input only */
    mst_progress_update(&p->line, p->stream->bytes, pages);
}

/* -------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] -o DIR STREAM [INPUT...]\n"
            "Applies STREAM (a file, or - for standard input), a migration stream of any\n"
            "format this build reads (libmigstream's; QEMU's with the QEMU module), and\n"
            "writes the guest's final state to DIR: region-<id>.img (sparse raw images),\n"
            "device-<n>.cbor and device-<n>.json, overlay-<n>.bin (each overlay's 4 KiB),\n"
            "and manifest.json. INPUTs are further inputs of the same stream, in any\n"
            "order: QEMU's multifd channel captures, or the other parts of a libmigstream\n"
            "migration in parts, replayed as one.\n"
            "\n"
            "  -o, --output DIR  directory to create (required)\n"
            "      --force       replace DIR if it exists\n"
            "      --view        also write region-<id>.view.img, the guest-visible view\n"
            "                    of each region with overlays: active overlays applied\n"
            "      --max-output SIZE\n"
            "                    most bytes the output may take (K, M, G, T suffixes;\n"
            "                    'none': only the free space); default 1T. A stream can\n"
            "                    describe far more than it carries (FILL pages): the run\n"
            "                    is refused before it writes past this or the free space\n",
            mst_prog);
    mst_print_progress_help(f, 17, true);
    fputs("  -h, --help        show this help and exit\n"
          "  -V, --version     show the version and exit\n"
          "\n"
          "A refused stream (damaged, truncated or unsupported), or an output that\n"
          "would take more than --max-output or the free space, writes nothing.\n"
          "\n",
          f);
    mst_print_exit_table(f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"progress", required_argument, NULL, 'P'},
        {"version", no_argument, NULL, 'V'},
        {"view", no_argument, NULL, 'v'},
        {"max-output", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    bool force = false, quiet = false, view = false;
    uint64_t max_output = MS_MAX_OUTPUT_DEFAULT;
    mst_init(argv[0]);
    opterr = 0; /* messages below, as "PROG: ..." */
    for (int opt; (opt = getopt_long(argc, argv, ":o:qhV", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'v':
            view = true;
            break;
        case 'm':
            if (mst_parse_output_limit("--max-output", optarg, &max_output))
                return MST_EXIT_ERROR;
            break;
        case 'q':
            quiet = true;
            break;
        case 'P':
            if (mst_progress_option(optarg))
                return MST_EXIT_ERROR;
            break;
        case 'h':
            usage(stdout);
            return MST_EXIT_OK;
        case 'V':
            mst_print_version();
            return MST_EXIT_OK;
        case ':':
            mst_error("option %s needs a value", argv[optind - 1]);
            fprintf(stderr, "Try '%s --help'.\n", mst_prog);
            return MST_EXIT_ERROR;
        default:
            if (optopt)
                mst_error("unknown option -%c", optopt);
            else
                mst_error("unknown option %s", argv[optind - 1]);
            fprintf(stderr, "Try '%s --help'.\n", mst_prog);
            return MST_EXIT_ERROR;
        }
    }
    if (!out || !*out || optind == argc) {
        mst_error(!out || !*out ? "-o DIR is required" : "expected a STREAM");
        fprintf(stderr, "Try '%s --help'.\n", mst_prog);
        return MST_EXIT_ERROR;
    }
    /* STREAM [INPUT...]: the inputs of one stream, in any order; messages
     * about the stream name the first. */
    const char *name = argv[optind];
    const char *label = strcmp(name, "-") ? name : "standard input";

    /* An interrupted run removes its temporary directory, then dies of the
     * signal as it would have. */
    catch_signals();
    struct stat sb;
    if (!force && lstat(out, &sb) == 0) { /* the library refuses it too */
        mst_error("%s exists; use --force to replace it", out);
        return MST_EXIT_ERROR;
    }
    mst_stream st;
    const char *const *paths = (const char *const *)argv + optind;
    progress pg = {.stream = &st};
    mst_progress_init(&pg.line, quiet, mst_paths_size(paths, (size_t)(argc - optind)));
    /* The bytes as they are read; the pages as they are applied. */
    const mst_stream_hooks hooks = {.read = read_input, .progress = &pg.line};
    ms_replay_dir *rd = NULL;
    int rc = MS_ENOMEM, status = MST_EXIT_OK;
    if (mst_stream_open(&st, paths, (size_t)(argc - optind), &hooks)) {
        status = MST_EXIT_ERROR;
        goto done;
    }
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.force = force;
    o.view = view;
    o.max_output = max_output;
    o.stop = &got_signal;
    o.progress = show_progress;
    o.progress_ctx = &pg;
    rd = ms_replay_dir_new(&o);
    if (rd)
        rc = ms_replay_dir_write(rd, st.r, label, out);
    mst_progress_done(&pg.line);
    if (rc == MS_REPLAY_DIR_STOPPED || got_signal) {
        status = MST_EXIT_ERROR;
    } else if (!rd) {
        mst_error("out of memory");
        status = MST_EXIT_ERROR;
    } else if (rc != 0) {
        /* The stream was refused (exit 1), unless it could not be read at
         * all; a failed read is reported with its errno, which only we
         * know. Failures on the output side exit 2. */
        int ss = ms_replay_dir_get_result(rd)->stream_status;
        const mst_input *bad = mst_stream_failed_input(&st);
        if (ss == MS_EIO && bad)
            mst_error("cannot read %s: %s", bad->name, strerror(bad->err));
        else
            mst_error("%s", ms_replay_dir_errmsg(rd));
        status = ss && ss != MS_EIO && ss != MS_ENOMEM && ss != MS_EINVAL ? MST_EXIT_FAIL
                                                                         : MST_EXIT_ERROR;
    }
done:
    mst_progress_done(&pg.line);
    ms_replay_dir_free(rd);
    mst_stream_close(&st);
    if (got_signal) { /* die of it as we would have, the temporary directory gone */
        signal(got_signal, SIG_DFL);
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        raise(got_signal);
    }
    return status;
}
