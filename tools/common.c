/*
 * Shared tool chores (see common.h).
 */
#define _GNU_SOURCE /* mkdtemp, nftw flags */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

const char *mst_prog = "migstream";

void mst_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    mst_prog = slash ? slash + 1 : (argv0 ? argv0 : mst_prog);
}

void mst_print_version(void)
{
    printf("%s (libmigstream %s, format %d.%d)\n", mst_prog, ms_version_string(),
           MS_FORMAT_MAJOR, MS_FORMAT_MINOR);
}

void mst_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    char raw[4096];
    vsnprintf(raw, sizeof raw, fmt, ap);
    ms_escape_text(buf, size, raw);
}

/* "PROG: message": the message cut at MAX - 1 bytes, then escaped. */
static void print_error(size_t max, const char *fmt, va_list ap)
{
    char raw[4096], msg[4096];
    vsnprintf(raw, max < sizeof raw ? max : sizeof raw, fmt, ap);
    ms_escape_text(msg, sizeof msg, raw);
    fprintf(stderr, "%s: %s\n", mst_prog, msg);
}

void mst_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(4096, fmt, ap);
    va_end(ap);
}

int mst_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(512, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", mst_prog);
    return MST_EXIT_ERROR;
}

int mst_common_option(int opt, char **argv, bool *quiet, void (*usage)(FILE *f))
{
    switch (opt) {
    case 'q':
        *quiet = true;
        return 0;
    case 'P':
        return mst_progress_option(optarg) ? MST_EXIT_ERROR : 0;
    case 'h':
        usage(stdout);
        return -1;
    case 'V':
        mst_print_version();
        return -1;
    case ':':
        return mst_usage_error("option %s needs a value", argv[optind - 1]);
    default:
        if (optopt)
            return mst_usage_error("unknown option -%c", optopt);
        return mst_usage_error("unknown option %s", argv[optind - 1]);
    }
}

int mst_exit_for(int status)
{
    switch (status) {
    case 0:
        return MST_EXIT_OK;
    case MS_EIO:
    case MS_ENOMEM:
    case MS_EINVAL:
    case MS_ESTATE:
        return MST_EXIT_ERROR;
    default:
        return MST_EXIT_FAIL;
    }
}

void mst_print_exit_table(FILE *f)
{
    fputs("Exit status (the same in every migstream tool):\n"
          "  0  success: valid, same, compatible, done\n"
          "  1  the answer is no: invalid, different, incompatible; or an input\n"
          "     stream that is bad, damaged or refused (what could be read before\n"
          "     the damage is reported first)\n"
          "  2  usage error, I/O error, out of memory, or interrupted\n"
          "Output formats: docs/OUTPUT.md.\n",
          f);
}

int mst_open_input(const char *path)
{
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        mst_error("cannot open %s: %s", path, strerror(errno));
    return fd;
}

uint64_t mst_input_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    return 0;
}

/* ------------------------------------------------------------ streams */

/* mst_stream_open()'s failure: kept, and printed unless quiet. */
__attribute__((format(printf, 3, 4))) static int stream_fail(mst_stream *s, int status,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mst_vformat(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    s->status = status;
    if (!s->hooks.quiet)
        mst_error("%s", s->why);
    return -1;
}

static ssize_t stream_read(void *ctx, void *buf, size_t len)
{
    mst_input *in = ctx;
    mst_stream *s = in->stream;
    ssize_t k;
    if (s->hooks.read) {
        k = s->hooks.read(s->hooks.ctx, in->fd, buf, len);
    } else {
        /* A descriptor inherited non-blocking is waited on: the readers of
         * other formats cannot resume after "would block" (open.h). */
        for (;;) {
            k = read(in->fd, buf, len);
            if (k >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
                break;
            struct pollfd p = {.fd = in->fd, .events = POLLIN};
            if (errno != EINTR && poll(&p, 1, -1) < 0 && errno != EINTR)
                break;
        }
    }
    if (k < 0) {
        in->err = errno ? errno : EIO;
        return -in->err;
    }
    in->seq += (uint64_t)k;
    if (in->seq > in->end) {
        s->bytes += in->seq - in->end;
        in->end = in->seq;
    }
    if (s->hooks.progress)
        mst_progress_update(s->hooks.progress, s->bytes, 0);
    return k;
}

static ssize_t stream_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    mst_input *in = ctx;
    ssize_t k;
    if (offset > (uint64_t)INT64_MAX)
        return 0; /* past any file's end */
    do
        k = pread(in->fd, buf, len, (off_t)offset);
    while (k < 0 && errno == EINTR);
    if (k < 0) {
        in->err = errno ? errno : EIO;
        return -in->err;
    }
    /* Bytes read again (the first bytes, read by position to recognize the
     * stream, then in order) are counted once. */
    if (offset + (uint64_t)k > in->end) {
        in->stream->bytes += offset + (uint64_t)k - (offset > in->end ? offset : in->end);
        in->end = offset + (uint64_t)k;
    }
    if (in->stream->hooks.progress)
        mst_progress_update(in->stream->hooks.progress, in->stream->bytes, 0);
    return k;
}

const mst_input *mst_stream_failed_input(const mst_stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].err)
            return &s->in[i];
    return NULL;
}

void mst_stream_close(mst_stream *s)
{
    ms_reader_free(s->r); /* first: it reads through the inputs */
    s->r = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].fd > STDIN_FILENO)
            close(s->in[i].fd);
    free(s->in);
    s->in = NULL;
    s->n = 0;
}

int mst_stream_open(mst_stream *s, const char *const *paths, size_t n,
                    const mst_stream_hooks *hooks)
{
    memset(s, 0, sizeof *s);
    if (hooks)
        s->hooks = *hooks;
    ms_input *ins = calloc(n ? n : 1, sizeof *ins);
    s->in = calloc(n ? n : 1, sizeof *s->in);
    if (!ins || !s->in) {
        free(ins);
        return stream_fail(s, MS_ENOMEM, "out of memory");
    }
    bool all_regular = true;
    for (size_t i = 0; i < n; i++) {
        mst_input *in = &s->in[i];
        bool std = strcmp(paths[i], "-") == 0;
        for (size_t k = 0; std && k < i; k++)
            if (strcmp(paths[k], "-") == 0) {
                free(ins);
                return stream_fail(s, MS_EINVAL, "standard input can be only one of the inputs");
            }
        in->stream = s;
        in->path = paths[i];
        in->name = std ? "standard input" : paths[i];
        in->fd = std ? STDIN_FILENO : open(paths[i], O_RDONLY | O_CLOEXEC);
        s->n = i + 1;
        if (in->fd < 0) {
            free(ins);
            return stream_fail(s, MS_EIO, "cannot open %s: %s", paths[i], strerror(errno));
        }
        struct stat st;
        if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode)) {
            in->regular = true;
            in->dev = st.st_dev;
            in->ino = st.st_ino;
            for (size_t k = 0; k < i; k++)
                if (s->in[k].regular && s->in[k].dev == in->dev && s->in[k].ino == in->ino) {
                    free(ins);
                    if (strcmp(s->in[k].path, in->path) == 0)
                        return stream_fail(s, MS_EINVAL, "%s is given twice", in->name);
                    return stream_fail(s, MS_EINVAL, "%s and %s are the same file", s->in[k].name,
                                       in->name);
                }
        }
        ins[i].read = stream_read;
        ins[i].read_ctx = in;
        ins[i].name = in->name;
        uint64_t size = mst_input_size(in->fd);
        /* A regular file read from its start can also be read by offset. */
        if (in->regular && lseek(in->fd, 0, SEEK_CUR) == 0) {
            ins[i].pread = stream_pread;
            ins[i].pread_ctx = in;
            s->size += size;
        } else {
            all_regular = false;
        }
    }
    if (!all_regular)
        s->size = 0;
    ms_open_options o;
    ms_open_options_init(&o);
    o.reader = s->hooks.reader;
    s->r = ms_open(&o, ins, n);
    free(ins); /* ms_open copies them; the contexts stay ours */
    int st = ms_reader_status(s->r);
    const mst_input *bad = mst_stream_failed_input(s);
    if (st == MS_EIO && bad)
        return stream_fail(s, MS_EIO, "cannot read %s: %s", bad->name, strerror(bad->err));
    if (st == MS_EINVAL || st == MS_EIO || st == MS_ENOMEM)
        return stream_fail(s, st, "%s", s->r ? ms_reader_errmsg(s->r) : "out of memory");
    s->format = ms_reader_format(s->r);
    s->foreign = s->format && strcmp(s->format, "migstream") != 0;
    return 0;
}

/* ------------------------------------------------------------ JSON */

void mst_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void mst_json_hex(FILE *f, const uint8_t *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

void mst_json_u64(FILE *f, uint64_t v)
{
    fprintf(f, "\"%" PRIu64 "\"", v);
}

void mst_json_x64(FILE *f, uint64_t v)
{
    fprintf(f, "\"0x%" PRIx64 "\"", v);
}

void mst_json_output_head(FILE *f)
{
    fputs("{\"kind\":\"output\",\"tool\":", f);
    mst_json_string(f, mst_prog);
    fprintf(f, ",\"schema_version\":%d}\n", MST_SCHEMA_VERSION);
}

void mst_json_status(FILE *f, int status)
{
    const char *name = ms_strerror(status), *colon = strchr(name, ':');
    fprintf(f, "\"%.*s\"", (int)(colon ? (size_t)(colon - name) : strlen(name)), name);
}

void mst_json_error_head(FILE *f)
{
    fputs("{\"kind\":\"error\",", f);
}

void mst_json_error_tail(FILE *f, int status, uint64_t offset, int64_t record, const char *message)
{
    fputs("\"status\":", f);
    mst_json_status(f, status);
    fprintf(f, ",\"offset\":%" PRIu64 ",\"record\":", offset);
    if (record >= 0)
        fprintf(f, "%" PRId64, record);
    else
        fputs("null", f);
    fputs(",\"message\":", f);
    mst_json_string(f, message);
    fputs("}\n", f);
}

char *mst_cbor_text(const uint8_t *cbor, size_t n, ms_cbor_form form)
{
    ssize_t len = ms_cbor_format(cbor, n, form, 0, NULL, 0);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        ms_cbor_format(cbor, n, form, 0, s, (size_t)len + 1);
    return s;
}

/* ------------------------------------------------------------ atomic files */

int mst_out_open(mst_out *o, const char *path, bool force)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    if (strcmp(path, "-") == 0) {
        o->fd = STDOUT_FILENO;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        o->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0) {
            mst_error("cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        if (isatty(o->fd)) {
            mst_error("refusing to write a binary stream to the terminal %s", path);
            close(o->fd);
            o->fd = -1;
            return -1;
        }
        o->device = true;
        return 0;
    }
    if (!force && lstat(path, &st) == 0) {
        mst_error("%s exists; use --force to replace it", path);
        return -1;
    }
    size_t n = strlen(path);
    o->final_path = strdup(path);
    o->tmp_path = malloc(n + 16);
    if (!o->final_path || !o->tmp_path) {
        mst_error("out of memory");
        mst_out_abort(o);
        return -1;
    }
    snprintf(o->tmp_path, n + 16, "%s.tmp-XXXXXX", path);
    o->fd = mkstemp(o->tmp_path);
    if (o->fd < 0) {
        mst_error("cannot create a temporary file beside %s: %s", path, strerror(errno));
        free(o->tmp_path);
        o->tmp_path = NULL;
        mst_out_abort(o);
        return -1;
    }
    fchmod(o->fd, 0644);
    return 0;
}

int mst_out_commit(mst_out *o)
{
    int rc = 0;
    if (o->device) {
        if (close(o->fd) != 0) {
            mst_error("cannot write the output: %s", strerror(errno));
            rc = -1;
        }
        o->fd = -1;
        o->device = false;
        return rc;
    }
    if (!o->final_path)
        return 0; /* standard output */
    if (fsync(o->fd) != 0 || close(o->fd) != 0) {
        mst_error("cannot write %s: %s", o->final_path, strerror(errno));
        rc = -1;
    }
    o->fd = -1;
    if (rc == 0 && rename(o->tmp_path, o->final_path) != 0) {
        mst_error("cannot rename %s to %s: %s", o->tmp_path, o->final_path, strerror(errno));
        rc = -1;
    }
    if (rc)
        unlink(o->tmp_path);
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
    return rc;
}

void mst_out_abort(mst_out *o)
{
    if ((o->final_path || o->device) && o->fd >= 0)
        close(o->fd);
    if (o->tmp_path)
        unlink(o->tmp_path);
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
    o->fd = -1;
    o->device = false;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int mst_dir_begin(mst_dir *d, const char *path, bool force)
{
    struct stat st;
    memset(d, 0, sizeof *d);
    d->force = force;
    if (!force && lstat(path, &st) == 0) {
        mst_error("%s exists; use --force to replace it", path);
        return -1;
    }
    size_t n = strlen(path);
    d->final_path = strdup(path);
    d->tmp_path = malloc(n + 16);
    if (!d->final_path || !d->tmp_path) {
        mst_error("out of memory");
        mst_dir_abort(d);
        return -1;
    }
    /* Trailing slashes would put the temporary directory inside PATH. */
    while (n > 1 && d->final_path[n - 1] == '/')
        d->final_path[--n] = 0;
    snprintf(d->tmp_path, n + 16, "%s.tmp-XXXXXX", d->final_path);
    if (!mkdtemp(d->tmp_path)) {
        mst_error("cannot create a temporary directory beside %s: %s", path, strerror(errno));
        free(d->tmp_path);
        d->tmp_path = NULL;
        mst_dir_abort(d);
        return -1;
    }
    chmod(d->tmp_path, 0755);
    return 0;
}

int mst_dir_commit(mst_dir *d)
{
    struct stat st;
    char *old = NULL;
    if (d->force && lstat(d->final_path, &st) == 0) {
        /* Move the old output aside first, so that a failure leaves either
         * the old or the new output complete, never neither. */
        size_t n = strlen(d->final_path) + 16;
        old = malloc(n);
        if (!old)
            return -1;
        snprintf(old, n, "%s.old-%ld", d->final_path, (long)getpid());
        if (rename(d->final_path, old) != 0) {
            mst_error("cannot move %s aside: %s", d->final_path, strerror(errno));
            free(old);
            return -1;
        }
    }
    if (rename(d->tmp_path, d->final_path) != 0) {
        mst_error("cannot rename %s to %s: %s", d->tmp_path, d->final_path, strerror(errno));
        if (old)
            rename(old, d->final_path);
        free(old);
        return -1;
    }
    if (old) {
        if (S_ISDIR(st.st_mode))
            rm_tree(old);
        else
            unlink(old);
        free(old);
    }
    free(d->tmp_path);
    free(d->final_path);
    d->tmp_path = d->final_path = NULL;
    return 0;
}

void mst_dir_abort(mst_dir *d)
{
    if (d->tmp_path)
        rm_tree(d->tmp_path);
    free(d->tmp_path);
    free(d->final_path);
    d->tmp_path = d->final_path = NULL;
}

/* ---------------------------------------------------------------- progress */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static mst_progress_mode progress_mode = MST_PROGRESS_AUTO;

int mst_progress_option(const char *mode)
{
    if (strcmp(mode, "auto") == 0)
        progress_mode = MST_PROGRESS_AUTO;
    else if (strcmp(mode, "json") == 0)
        progress_mode = MST_PROGRESS_JSON;
    else if (strcmp(mode, "none") == 0)
        progress_mode = MST_PROGRESS_NONE;
    else {
        mst_error("--progress wants auto, json or none, not '%s'", mode);
        fprintf(stderr, "Try '%s --help'.\n", mst_prog);
        return -1;
    }
    return 0;
}

int mst_progress_arg(int argc, char **argv, int *i, bool *quiet)
{
    const char *a = argv[*i];
    if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
        *quiet = true;
        return 1;
    }
    if (strcmp(a, "--progress") != 0 && strncmp(a, "--progress=", 11) != 0)
        return 0;
    const char *mode = a[10] == '=' ? a + 11 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (mode)
        return mst_progress_option(mode) ? -1 : 1;
    mst_error("option --progress needs a MODE (auto, json or none)");
    fprintf(stderr, "Try '%s --help'.\n", mst_prog);
    return -1;
}

/* One option of a --help: its description from column @width + 3, or on
 * the next lines when the option is wider. */
static void help_option(FILE *f, int width, const char *opt, const char *const *desc)
{
    int n = (int)strlen(opt);
    fprintf(f, "  %s", opt);
    for (size_t i = 0; desc[i]; i++) {
        if (i || n > width)
            fprintf(f, "\n  %*s", width, "");
        else
            fprintf(f, "%*s", width - n, "");
        fprintf(f, " %s", desc[i]);
    }
    fputc('\n', f);
}

void mst_print_progress_help(FILE *f, int width, bool shorts)
{
    static const char *const quiet[] = {"no progress line", NULL};
    static const char *const mode[] = {"progress on standard error: auto (a line",
                                       "when it is a terminal; the default), json",
                                       "(JSON Lines, even with -q), or none", NULL};
    help_option(f, width, "-q, --quiet", quiet);
    help_option(f, width, shorts ? "    --progress=MODE" : "--progress=MODE", mode);
}

uint64_t mst_paths_size(const char *const *paths, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (strcmp(paths[i], "-") == 0 || stat(paths[i], &st) != 0 || !S_ISREG(st.st_mode))
            return 0;
        sum += (uint64_t)st.st_size;
    }
    return sum;
}

void mst_progress_init(mst_progress *p, bool quiet, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->json = progress_mode == MST_PROGRESS_JSON;
    p->enabled = progress_mode == MST_PROGRESS_AUTO && !quiet && isatty(STDERR_FILENO);
    p->total = total;
    p->start = p->last = p->last_json = now();
}

/* {"kind":"progress",...}: counts the tool made, numbers (docs/OUTPUT.md,
 * "u64 values"). */
static void progress_json(mst_progress *p, double t, bool done)
{
    fputs("{\"kind\":\"progress\",\"tool\":", stderr);
    mst_json_string(stderr, mst_prog);
    fprintf(stderr, ",\"bytes\":%" PRIu64, p->bytes);
    if (p->total)
        fprintf(stderr, ",\"total\":%" PRIu64, p->total);
    fprintf(stderr, ",\"elapsed_s\":%.3f%s}\n", t - p->start, done ? ",\"done\":true" : "");
    fflush(stderr);
}

void mst_progress_update(mst_progress *p, uint64_t bytes, uint64_t pages)
{
    if (!p->enabled && !p->json)
        return;
    p->bytes = p->base + bytes;
    bytes = p->bytes;
    double t = now();
    if (p->json) {
        if (t - p->last_json >= 0.25 && !p->finished) {
            p->last_json = t;
            progress_json(p, t, false);
        }
        return;
    }
    if (t - p->last < 0.1)
        return;
    p->last = t;
    double rate = bytes / (t - p->start > 1e-6 ? t - p->start : 1e-6);
    char counted[40] = "";
    if (pages)
        snprintf(counted, sizeof counted, "  %llu pages", (unsigned long long)pages);
    if (p->total) {
        double left = p->total > bytes ? (double)(p->total - bytes) / (rate > 1 ? rate : 1) : 0;
        fprintf(stderr, "\r%5.1f%%  %llu MiB%s  %.0f MiB/s  ETA %.0fs   ",
                100.0 * (double)bytes / (double)p->total, (unsigned long long)(bytes >> 20),
                counted, rate / 1048576, left);
    } else {
        fprintf(stderr, "\r%llu MiB%s  %.0f MiB/s   ", (unsigned long long)(bytes >> 20), counted,
                rate / 1048576);
    }
}

void mst_progress_done(mst_progress *p)
{
    if (p->enabled)
        fputs("\r\033[K", stderr);
    if (p->json && !p->finished)
        progress_json(p, now(), true);
    p->finished = true;
}

/* ----------------------------------------------------------- page map */

ms_pagemap *mst_pagemap_new(void)
{
    ms_pagemap_options o;
    ms_pagemap_options_init(&o);
    o.max_memory = MST_PAGEMAP_BUDGET;
    return ms_pagemap_new(&o);
}

void mst_lump_states(const uint64_t *in, uint64_t out[MST_STATES])
{
    memset(out, 0, MST_STATES * sizeof *out);
    for (unsigned s = 0; s < MS_PAGEMAP_STATES; s++)
        out[s < MST_STATES ? s : MST_STATE_OTHER] += in[s];
}

bool mst_pagemap_final(ms_pagemap *m, const ms_pagemap_region *s, uint64_t counts[MST_STATES],
                       uint64_t *first_missing, uint64_t *last_missing)
{
    uint64_t all[MS_PAGEMAP_STATES];
    memset(counts, 0, MST_STATES * sizeof *counts);
    *first_missing = *last_missing = UINT64_MAX;
    if (ms_pagemap_counts(m, s->region.id, all) != 0)
        return false; /* given up */
    mst_lump_states(all, counts);
    if (all[MS_PAGEMAP_MISSING])
        ms_pagemap_bounds(m, s->region.id, MS_PAGEMAP_MISSING, first_missing, last_missing);
    return true;
}

/* --------------------------------------------------------- device set */

struct mst_devset {
    mst_device_stats *e; /* in order of first appearance */
    size_t count, cap;
    size_t *slot; /* open addressing: index + 1, 0 = empty */
    size_t nslots;
    size_t budget, used;
    bool full;
};

mst_devset *mst_devset_new(size_t budget)
{
    mst_devset *s = calloc(1, sizeof *s);
    if (s)
        s->budget = budget;
    return s;
}

void mst_devset_free(mst_devset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->e[i].path);
        free(s->e[i].schema);
    }
    free(s->e);
    free(s->slot);
    free(s);
}

size_t mst_device_hash(const char *path, uint32_t instance)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h = (h ^ instance) * 0x100000001b3ull;
    return (size_t)(h ^ (h >> 32));
}

static bool dev_grow(mst_devset *s)
{
    size_t n = s->nslots ? s->nslots * 2 : 64;
    size_t cap = s->cap ? s->cap * 2 : 32;
    size_t more = (n - s->nslots) * sizeof *s->slot + (cap - s->cap) * sizeof *s->e;
    if (more > s->budget - s->used) {
        s->full = true;
        return false;
    }
    size_t *slot = calloc(n, sizeof *slot);
    mst_device_stats *e = realloc(s->e, cap * sizeof *e);
    if (!slot || !e) {
        free(slot);
        if (e)
            s->e = e;
        return false;
    }
    s->e = e;
    s->cap = cap;
    for (size_t i = 0; i < s->count; i++) {
        size_t k = mst_device_hash(e[i].path, e[i].instance) & (n - 1);
        while (slot[k])
            k = (k + 1) & (n - 1);
        slot[k] = i + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->used += more;
    s->nslots = n;
    return true;
}

mst_device_stats *mst_devset_add(mst_devset *s, const ms_record *rec)
{
    const ms_device *d = &rec->device;
    if (rec->type != MS_REC_DEVICE || !d->path)
        return NULL;
    size_t k = 0;
    if (s->nslots) {
        k = mst_device_hash(d->path, d->instance) & (s->nslots - 1);
        for (; s->slot[k]; k = (k + 1) & (s->nslots - 1)) {
            mst_device_stats *e = &s->e[s->slot[k] - 1];
            if (e->instance != d->instance || strcmp(e->path, d->path) != 0)
                continue;
            char *schema = strdup(d->schema);
            if (!schema)
                return NULL;
            free(e->schema);
            e->schema = schema;
            e->version = d->version;
            e->records++;
            e->bytes += MS_RECORD_HEADER_SIZE + (uint64_t)rec->length;
            e->last_index = rec->index;
            e->last_offset = rec->offset;
            return e;
        }
    }
    if (s->full)
        return NULL;
    size_t strings = strlen(d->path) + strlen(d->schema) + 2;
    if (strings > s->budget - s->used) {
        s->full = true;
        return NULL;
    }
    if ((s->count + 1) * 2 > s->nslots || s->count == s->cap) {
        if (!dev_grow(s))
            return NULL;
        k = mst_device_hash(d->path, d->instance) & (s->nslots - 1);
        while (s->slot[k])
            k = (k + 1) & (s->nslots - 1);
    }
    mst_device_stats *e = &s->e[s->count];
    memset(e, 0, sizeof *e);
    e->path = strdup(d->path);
    e->schema = strdup(d->schema);
    if (!e->path || !e->schema) {
        free(e->path);
        free(e->schema);
        return NULL;
    }
    s->used += strings;
    e->instance = d->instance;
    e->version = d->version;
    e->records = 1;
    e->bytes = MS_RECORD_HEADER_SIZE + (uint64_t)rec->length;
    e->first_index = e->last_index = rec->index;
    e->first_offset = e->last_offset = rec->offset;
    s->slot[k] = ++s->count;
    return e;
}

void mst_devset_forget(mst_devset *s, size_t count)
{
    if (count >= s->count)
        return;
    for (size_t i = count; i < s->count; i++) {
        free(s->e[i].path);
        free(s->e[i].schema);
    }
    s->count = count;
    /* Open addressing: the table is rebuilt rather than holes made. */
    memset(s->slot, 0, s->nslots * sizeof *s->slot);
    for (size_t i = 0; i < s->count; i++) {
        size_t k = mst_device_hash(s->e[i].path, s->e[i].instance) & (s->nslots - 1);
        while (s->slot[k])
            k = (k + 1) & (s->nslots - 1);
        s->slot[k] = i + 1;
    }
}

bool mst_devset_full(const mst_devset *s)
{
    return s->full;
}

size_t mst_devset_count(const mst_devset *s)
{
    return s->count;
}

const mst_device_stats *mst_devset_get(const mst_devset *s, size_t i)
{
    return i < s->count ? &s->e[i] : NULL;
}

double mst_percent(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

int mst_parse_output_limit(const char *option, const char *s, uint64_t *out)
{
    if (strcmp(s, "none") == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
    unsigned shift = 0;
    if (isdigit((unsigned char)*s) && errno == 0 && *end) {
        const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*end));
        if (u && *u && end[1] == 0) {
            shift = 10 * (unsigned)(u - units + 1);
            end++;
        }
    }
    if (!isdigit((unsigned char)*s) || errno || *end || v == 0 || v > (UINT64_MAX >> shift)) {
        mst_error("%s: '%s' is not a size in bytes (a number with K, M, G or T, or 'none')",
                  option, s);
        return -1;
    }
    *out = (uint64_t)v << shift;
    return 0;
}
