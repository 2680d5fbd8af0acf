/*
 * The conversion run of migstream-import and migstream-export (convert.h):
 * the steps around the library's call, in the order the tools' messages
 * and exit codes depend on.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "convert.h"

/* The signal that interrupted the conversion, or 0. */
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* No SA_RESTART: a blocked read or write returns, and the callbacks below
 * see the signal. A signal ignored at startup (nohup) stays ignored. */
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

int mst_convert_no_module(const char *name)
{
    mst_error("this build of libmigstream has no %s module (built with -D%s=false)",
              strcmp(name, "xen") == 0 ? "Xen" : "QEMU", name);
    return MST_EXIT_ERROR;
}

void mst_convert_exit_signal(void)
{
    if (got_signal) {
        signal(got_signal, SIG_DFL);
        raise(got_signal);
    }
}

static void counted(mst_convert_input *in, ssize_t k)
{
    if (k > 0) {
        in->cv->bytes += (uint64_t)k;
        mst_progress_update(&in->cv->progress, in->cv->bytes, 0);
    }
}

/* read(2) with EINTR retried; an interrupt stops the conversion (-1 with
 * errno EINTR: ms_open()'s inputs keep the errno of a failed read). */
static ssize_t read_fd(int fd, void *buf, size_t len)
{
    for (;;) {
        if (got_signal) {
            errno = EINTR;
            return -1;
        }
        ssize_t k = read(fd, buf, len);
        if (k >= 0 || errno != EINTR)
            return k;
    }
}

ssize_t mst_convert_read(void *ctx, void *buf, size_t len)
{
    mst_convert_input *in = ctx;
    ssize_t k = read_fd(in->fd, buf, len);
    counted(in, k);
    return k;
}

/* mst_stream_hooks.read for any_format: the stream counts the bytes for
 * the progress line itself. */
static ssize_t stream_read(void *ctx, int fd, void *buf, size_t len)
{
    (void)ctx;
    return read_fd(fd, buf, len);
}

ssize_t mst_convert_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    mst_convert_input *in = ctx;
    for (;;) {
        if (got_signal)
            return -1;
        ssize_t k = pread(in->fd, buf, len, (off_t)offset);
        if (k < 0 && errno == EINTR)
            continue;
        counted(in, k);
        return k;
    }
}

int mst_convert_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    int fd = ((mst_convert *)ctx)->out_fd;
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

uint64_t mst_convert_output_limit(mst_convert *cv, uint64_t max_output)
{
    uint64_t limit = max_output ? max_output : MS_MAX_OUTPUT_DEFAULT;
    struct statvfs v;
    struct stat sb;
    cv->out_limit_free = false;
    if (fstat(cv->out_fd, &sb) == 0 && S_ISREG(sb.st_mode) && fstatvfs(cv->out_fd, &v) == 0 &&
        v.f_frsize && (uint64_t)v.f_bavail <= limit / v.f_frsize) {
        limit = (uint64_t)v.f_bavail * v.f_frsize;
        cv->out_limit_free = true;
    }
    cv->out_limit = limit;
    return limit;
}

static void close_inputs(mst_convert *cv, size_t nextra)
{
    if (cv->any_format)
        mst_stream_close(&cv->stream);
    if (cv->in.fd >= 0 && cv->in.fd != STDIN_FILENO)
        close(cv->in.fd);
    for (size_t i = 0; !cv->any_format && i < nextra; i++)
        close(cv->extra[i].fd);
}

/* Opens the extra inputs, then the main one (the order of the messages
 * when several cannot be opened); with any_format, all of them as one
 * stream, the main one first, its progress line started first. 0, or -1
 * after printing why. */
static int open_inputs(mst_convert *cv, uint64_t *extra_size)
{
    cv->in.fd = -1;
    *extra_size = 0;
    if (cv->any_format) {
        size_t n = 1 + cv->nextra;
        const char **paths = malloc(n * sizeof *paths);
        if (!paths) {
            mst_error("out of memory");
            return -1;
        }
        paths[0] = cv->in_path;
        for (size_t i = 0; i < cv->nextra; i++)
            paths[1 + i] = cv->extra_paths[i];
        const mst_stream_hooks hooks = {.read = stream_read, .progress = &cv->progress};
        mst_progress_init(&cv->progress, cv->quiet, mst_paths_size(paths, n));
        int rc = mst_stream_open(&cv->stream, paths, n, &hooks);
        free(paths); /* the stream keeps the strings, which are the tool's */
        if (rc == 0)
            return 0;
        mst_progress_done(&cv->progress);
        mst_stream_close(&cv->stream);
        return -1;
    }
    for (size_t i = 0; i < cv->nextra; i++) {
        cv->extra[i].cv = cv;
        cv->extra[i].fd = mst_open_input(cv->extra_paths[i]);
        if (cv->extra[i].fd < 0) {
            close_inputs(cv, i);
            return -1;
        }
        *extra_size += mst_input_size(cv->extra[i].fd);
    }
    cv->in.cv = cv;
    cv->in.fd = mst_open_input(cv->in_path);
    if (cv->in.fd < 0) {
        close_inputs(cv, cv->nextra);
        return -1;
    }
    return 0;
}

/* A failed run's message (CV->msg, or the input whose read failed), and
 * when the output passed a limit that is the free space, a line that says
 * so: a --max-output that was not given is no explanation. */
static void report_failure(const mst_convert *cv)
{
    const mst_input *bad = cv->any_format ? mst_stream_failed_input(&cv->stream) : NULL;
    if (bad)
        mst_error("cannot read %s: %s", bad->name, strerror(bad->err));
    else if (cv->named)
        mst_error("%s", cv->msg);
    else
        mst_error("%s: %s", strcmp(cv->in_path, "-") == 0 ? "standard input" : cv->in_path,
                  cv->msg);
    if (cv->output_full && cv->out_limit_free)
        mst_error("that limit is the %" PRIu64 " bytes free where %s is made", cv->out_limit,
                  cv->out_path);
}

int mst_convert_run(mst_convert *cv)
{
    bool to_stdout = strcmp(cv->out_path, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        mst_error("refusing to write %s to a terminal", cv->ops->what);
        return MST_EXIT_ERROR;
    }
    uint64_t extra_size;
    if (open_inputs(cv, &extra_size))
        return MST_EXIT_ERROR;
    mst_out o;
    if (mst_out_open(&o, cv->out_path, cv->force)) {
        if (cv->any_format)
            mst_progress_done(&cv->progress);
        close_inputs(cv, cv->nextra);
        return MST_EXIT_ERROR;
    }
    /* Standard output is not removed on an interrupt: nothing to catch. */
    if (!to_stdout)
        catch_signals();
    cv->out_fd = o.fd;
    cv->bytes = 0;
    if (cv->any_format) {
        cv->in_size = cv->stream.size;
    } else {
        cv->in_size = mst_input_size(cv->in.fd);
        /* The total only when every input is a regular file (the extra ones
         * are never standard input; a pipe counts 0). */
        mst_progress_init(&cv->progress, cv->quiet, cv->in_size ? cv->in_size + extra_size : 0);
    }

    cv->conv = NULL;
    cv->msg = NULL;
    cv->made = cv->named = cv->output_full = cv->out_limit_free = false;
    int rc = MST_EXIT_OK;
    int status = cv->ops->run(cv);
    if (status && !cv->made) {
        mst_error("%s", cv->msg);
        rc = MST_EXIT_ERROR;
    } else if (status) {
        mst_progress_done(&cv->progress);
        if (!got_signal)
            report_failure(cv);
        rc = cv->output_full ? MST_EXIT_ERROR : cv->exit_for(status);
    }
    mst_progress_done(&cv->progress);
    if (!rc && !got_signal && mst_out_commit(&o))
        rc = MST_EXIT_ERROR;
    if (rc || got_signal)
        mst_out_abort(&o);
    cv->ops->finish(cv, rc || got_signal ? NULL : to_stdout ? stderr : stdout);
    close_inputs(cv, cv->nextra);
    return got_signal ? MST_EXIT_ERROR : rc;
}

void mst_convert_json_begin(FILE *f, const char *format)
{
    mst_json_output_head(f);
    fputs("{\"kind\":\"stats\",\"format\":", f);
    mst_json_string(f, format);
}

void mst_convert_json_counters(FILE *f, const mst_convert_counter *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, ",\"%s\":", c[i].name);
        mst_json_u64(f, c[i].v);
    }
}

void mst_convert_json_text(FILE *f, const char *name, const char *s)
{
    fprintf(f, ",\"%s\":", name);
    if (*s)
        mst_json_string(f, s);
    else
        fputs("null", f);
}

void mst_convert_json_xen_page_types(FILE *f, const uint64_t *pages)
{
    /* Xen's XEN_DOMCTL_PFINFO_* names (docs/XEN.md); 0x5-0x8 are reserved,
     * refused by the library, and kept here by number. */
    static const char *const names[16] = {
        "NOTAB", "L1TAB",     "L2TAB",     "L3TAB",     "L4TAB",     "0x5",    "0x6",    "0x7",
        "0x8",   "L1TAB_PIN", "L2TAB_PIN", "L3TAB_PIN", "L4TAB_PIN", "BROKEN", "XALLOC", "XTAB"};
    fputs(",\"page_types\":{", f);
    const char *sep = "";
    for (size_t i = 0; i < 16; i++) {
        if (!pages[i])
            continue;
        fprintf(f, "%s\"%s\":", sep, names[i]);
        mst_json_u64(f, pages[i]);
        sep = ",";
    }
    fputc('}', f);
}
