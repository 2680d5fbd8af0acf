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
#include "parts.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static sigset_t unblocked; /* the signal mask at start */

/* Catches the signals that end a run, unless they are ignored (nohup), and
 * blocks them: they are taken only while waiting for input (see read_input),
 * so that a signal cannot slip in between a check and a blocking read. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old;
    sigset_t set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) {
            sigaction(sigs[i], &sa, NULL);
            sigaddset(&set, sigs[i]);
        }
    sigprocmask(SIG_BLOCK, &set, &unblocked);
}

typedef struct input {
    int fd;
    int err; /* errno of a failed read */
} input;

/* The reader's input. Waits in ppoll() with the caught signals unblocked:
 * a signal then stops a read that waits on a pipe, instead of the read being
 * retried as ms_reader_new_fd() would. */
static ssize_t read_input(void *ctx, void *buf, size_t len)
{
    input *in = ctx;
    for (;;) {
        struct pollfd p = {.fd = in->fd, .events = POLLIN};
        if (!got_signal && ppoll(&p, 1, NULL, &unblocked) < 0 && errno != EINTR) {
            in->err = errno;
            return -1;
        }
        if (got_signal) {
            in->err = EINTR;
            return -1;
        }
        ssize_t n = read(in->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN) {
            in->err = errno;
            return -1;
        }
    }
}

static void show_progress(void *ctx, uint64_t bytes, uint64_t pages)
{
    mst_progress_update(ctx, bytes, pages);
}

/* -------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] -o DIR STREAM [PART...]\n"
            "Applies STREAM (a file, or - for standard input; several files are the parts\n"
            "of one migration, in any order) and writes the guest's final\n"
            "state to DIR: region-<id>.img (sparse raw images), device-<n>.cbor and\n"
            "device-<n>.json, overlay-<n>.bin (each overlay's 4 KiB), and manifest.json.\n"
            "\n"
            "  -o, --output DIR  directory to create (required)\n"
            "      --force       replace DIR if it exists\n"
            "      --view        also write region-<id>.view.img, the guest-visible view\n"
            "                    of each region with overlays: active overlays applied\n"
            "  -q, --quiet       no progress bar\n"
            "  -h, --help        show this help and exit\n"
            "  -V, --version     show the version and exit\n"
            "\n"
            "Exit status: 0 done; 1 the stream was refused (damaged, truncated or\n"
            "unsupported), nothing written; 2 usage or I/O error, nothing written.\n",
            mst_prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"view", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    bool force = false, quiet = false, view = false;
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
        case 'q':
            quiet = true;
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
    if (!out || !*out || optind >= argc) {
        mst_error(!out || !*out ? "-o DIR is required" : "expected a STREAM");
        fprintf(stderr, "Try '%s --help'.\n", mst_prog);
        return MST_EXIT_ERROR;
    }
    const char *name = argv[optind];
    char label[4200];
    snprintf(label, sizeof label, "%s", strcmp(name, "-") ? name : "standard input");
    /* Several STREAMs: the parts of one migration, read as one by the
     * library, each through read_input() as a single stream is. */
    const size_t nparts = (size_t)(argc - optind);
    if (nparts > 1)
        snprintf(label, sizeof label, "%s and %zu more part%s", name, nparts - 1,
                 nparts > 2 ? "s" : "");
    input one = {-1, 0}, *ins = nparts > 1 ? calloc(nparts, sizeof *ins) : &one;
    ms_input *mi = nparts > 1 ? calloc(nparts, sizeof *mi) : NULL;
    if (!ins || (nparts > 1 && !mi)) {
        mst_error("out of memory");
        if (ins != &one)
            free(ins);
        return MST_EXIT_ERROR;
    }

    /* An interrupted run removes its temporary directory, then dies of the
     * signal as it would have. */
    catch_signals();
    uint64_t total = 0;
    int status = MST_EXIT_OK;
    for (size_t i = 0; i < nparts; i++) {
        ins[i] = (input){mst_open_input(argv[optind + (int)i]), 0};
        if (ins[i].fd < 0) {
            status = MST_EXIT_ERROR;
            break;
        }
        total += mst_input_size(ins[i].fd);
        if (mi)
            mi[i] =
                (ms_input){.read = read_input, .read_ctx = &ins[i], .name = argv[optind + (int)i]};
    }
    struct stat st;
    if (!status && !force && lstat(out, &st) == 0) { /* the library refuses it too */
        mst_error("%s exists; use --force to replace it", out);
        status = MST_EXIT_ERROR;
    }
    if (status) {
        for (size_t i = 0; i < nparts; i++)
            if (ins[i].fd > STDIN_FILENO)
                close(ins[i].fd);
        if (ins != &one)
            free(ins);
        free(mi);
        return status;
    }
    input *in = ins; /* the one whose read failed, below */
    mst_progress progress;
    mst_progress_init(&progress, quiet, total);
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.force = force;
    o.view = view;
    o.stop = &got_signal;
    o.progress = show_progress;
    o.progress_ctx = &progress;
    ms_replay_dir *rd = ms_replay_dir_new(&o);
    ms_reader *r = !rd  ? NULL
                   : mi ? ms_open(NULL, mi, nparts)
                        : ms_reader_new(NULL, read_input, in);
    int rc = r ? ms_replay_dir_write(rd, r, label, out) : MS_ENOMEM;
    mst_progress_done(&progress);
    for (size_t i = 0; i < nparts; i++)
        if (ins[i].err)
            in = &ins[i];
    if (rc == MS_REPLAY_DIR_STOPPED || got_signal) {
        status = MST_EXIT_ERROR;
    } else if (!r) {
        mst_error("out of memory");
        status = MST_EXIT_ERROR;
    } else if (rc != 0) {
        /* The stream was refused (exit 1), unless it could not be read at
         * all; a failed read is reported with its errno, which only we
         * know. Failures on the output side exit 2. */
        int ss = ms_replay_dir_get_result(rd)->stream_status;
        if (ss == MS_EIO && in->err)
            mst_error("cannot read %s: %s", nparts > 1 ? argv[optind + (int)(in - ins)] : label,
                      strerror(in->err));
        else
            mst_error("%s", ms_replay_dir_errmsg(rd));
        status = ss && ss != MS_EIO && ss != MS_ENOMEM && ss != MS_EINVAL ? MST_EXIT_FAIL
                                                                         : MST_EXIT_ERROR;
    }
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    for (size_t i = 0; i < nparts; i++)
        if (ins[i].fd != STDIN_FILENO)
            close(ins[i].fd);
    if (ins != &one)
        free(ins);
    free(mi);
    if (got_signal) { /* die of it as we would have, the temporary directory gone */
        signal(got_signal, SIG_DFL);
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        raise(got_signal);
    }
    return status;
}
