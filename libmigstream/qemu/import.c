/*
 * The QEMU importer's public API (include/migstream/qemu.h): options,
 * channels and positional reads collected before the run, then the run
 * itself, which opens the QEMU source (source.c) and copies its records
 * into an ms_writer (format/source.h's msi_source_copy). The top of
 * libmigstream/qemu/: it calls the source and the format layer, and
 * nothing calls it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "format/options.h"
#include "format/source.h"
#include "migstream/qemu.h"
#include "migstream/writer.h"
#include "qemu/input.h"
#include "qemu/source.h"

struct ms_qemu_import {
    ms_qemu_import_options opts;
    ms_allocator alloc;
    char *tmpdir;
    bool ran;
    mq_error err;
    ms_qemu_import_stats stats;
    ms_writer_options user_wopts; /* the caller's, copied */
    bool have_user_wopts;
    msi_source_channel *ch; /* multifd channels, names copied */
    size_t nch;
    ms_pread_fn pread;
    void *pread_ctx;
};

void ms_qemu_import_options_init(ms_qemu_import_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    mq_options_defaults(o);
}

ms_qemu_import *ms_qemu_import_new(const ms_qemu_import_options *opts)
{
    ms_qemu_import_options o;
    ms_qemu_import_options_init(&o);
    const char *why = NULL, *which = "import options";
    if (opts)
        why = msi_struct_take(&o, MSI_QEMU_IMPORT_OPTIONS_END, opts,
                              opts->struct_size);
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    if (!why && o.writer) {
        which = "import options: writer";
        why = msi_struct_take(&wo, MSI_WRITER_OPTIONS_END, o.writer, o.writer->struct_size);
    }
    if (why) { /* the defaults, for a handle that only carries the reason */
        ms_qemu_import_options_init(&o);
        o.writer = NULL;
    }
    mq_options_defaults(&o);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_qemu_import *imp = msi_calloc(&a, 1, sizeof *imp);
    if (!imp)
        return NULL;
    imp->alloc = a;
    imp->opts = o;
    imp->opts.writer = NULL;
    if (o.tmpdir && !(imp->tmpdir = msi_strdup(&a, o.tmpdir))) {
        msi_free(&a, imp);
        return NULL;
    }
    imp->opts.tmpdir = imp->tmpdir;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        imp->err.status = MS_EINVAL;
        snprintf(imp->err.msg, sizeof imp->err.msg, "invalid %s: %s", which, why);
    }
    /* The struct is copied; the strings it points to are the caller's. */
    if (o.writer) {
        imp->user_wopts = wo;
        imp->user_wopts.struct_size = sizeof imp->user_wopts;
        imp->have_user_wopts = true;
    }
    return imp;
}

void ms_qemu_import_free(ms_qemu_import *imp)
{
    if (!imp)
        return;
    for (size_t i = 0; i < imp->nch; i++)
        msi_free(&imp->alloc, (void *)imp->ch[i].name);
    msi_free(&imp->alloc, imp->ch);
    msi_free(&imp->alloc, imp->tmpdir);
    ms_allocator a = imp->alloc;
    msi_free(&a, imp);
}

/* ---------------------------------------------------------------- the run */

/* The source's failure, as the importer's. */
static int source_failed(ms_qemu_import *imp, const msi_source *s)
{
    mq_error *e = &imp->err;
    if (e->status)
        return e->status;
    e->status = s->status;
    e->offset = s->err_offset;
    snprintf(e->msg, sizeof e->msg, "%s", s->msg);
    return e->status;
}

/* The writer's failure outside any record, in the writer's words. */
static int writer_failed(ms_qemu_import *imp, ms_writer *w, uint64_t off)
{
    return mq_fail(&imp->err, ms_writer_status(w), off, "output", "writing the output: %s",
                   ms_writer_errmsg(w));
}

/* The writer, as the options say: the caller's options, with the writer
 * name "qemu" and CONFIGURATION's machine type where they name none, and
 * at least QEMU's page size. */
static ms_writer *create_writer(ms_qemu_import *imp, const msi_source *s, ms_write_fn out,
                                void *out_ctx, int out_fd)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    if (imp->have_user_wopts)
        o = imp->user_wopts;
    if (!o.writer_name || !*o.writer_name)
        o.writer_name = s->header.writer_name;
    if (!o.machine && s->info.machine)
        o.machine = s->info.machine;
    if (o.page_size < s->header.page_size)
        o.page_size = s->header.page_size;
    ms_writer *w = out ? ms_writer_new(&o, out, out_ctx) : ms_writer_new_fd(&o, out_fd);
    if (!w)
        mq_fail(&imp->err, MS_ENOMEM, mq_source_offset(s), "output", "cannot create the writer");
    else if (ms_writer_status(w))
        writer_failed(imp, w, mq_source_offset(s));
    return w;
}

static int run(ms_qemu_import *imp, msi_source *s, ms_write_fn out, void *out_ctx, int out_fd)
{
    int rc;
    if ((rc = msi_source_open(s)))
        return source_failed(imp, s);
    ms_writer *w = create_writer(imp, s, out, out_ctx, out_fd);
    if (imp->err.status) {
        ms_writer_free(w);
        return imp->err.status;
    }
    msi_copy_stop stop;
    if ((rc = msi_source_copy(s, w, &stop))) {
        if (stop.writer_failed)
            mq_source_writer_failed(s, &stop, w, rc);
        rc = source_failed(imp, s);
    } else if (ms_writer_finish(w, NULL)) {
        rc = writer_failed(imp, w, mq_source_offset(s));
    }
    ms_writer_free(w);
    return rc;
}

static int run_common(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                      void *out_ctx, int out_fd)
{
    if (imp->ran || imp->err.status)
        return imp->err.status ? imp->err.status : MS_ESTATE;
    imp->ran = true;
    const msi_source_io io = {.read = in,
                              .read_ctx = in_ctx,
                              .pread = imp->pread,
                              .pread_ctx = imp->pread_ctx,
                              .channels = imp->ch,
                              .nchannels = imp->nch};
    msi_source s;
    msi_source_init(&s, &mq_source_ops, &imp->alloc, &io, &imp->opts);
    int rc = run(imp, &s, out, out_ctx, out_fd);
    mq_source_stats(&s, &imp->stats);
    msi_source_close(&s);
    return rc;
}

int ms_qemu_import_run(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                       void *out_ctx)
{
    if (!imp)
        return MS_EINVAL;
    if (!out)
        return mq_fail(&imp->err, MS_EINVAL, 0, "output", "no write callback");
    return run_common(imp, in, in_ctx, out, out_ctx, -1);
}

int ms_qemu_import_run_fd(ms_qemu_import *imp, int in_fd, int out_fd)
{
    if (!imp)
        return MS_EINVAL;
    if (in_fd < 0 || out_fd < 0)
        return mq_fail(&imp->err, MS_EINVAL, 0, "input", "bad file descriptor");
    struct stat st;
    /* A regular file read from its start is read by offset. */
    off_t start = lseek(in_fd, 0, SEEK_CUR);
    if (!imp->pread && !imp->ran && start == 0 && fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode)) {
        imp->pread = msi_fd_pread;
        imp->pread_ctx = msi_fd_ctx(in_fd);
    }
    return run_common(imp, msi_fd_read, msi_fd_ctx(in_fd), NULL, NULL, out_fd);
}

/* ------------------------------------------------------------- the inputs */

int ms_qemu_import_set_pread(ms_qemu_import *imp, ms_qemu_pread_fn fn, void *ctx)
{
    if (!imp || !fn)
        return MS_EINVAL;
    if (imp->ran)
        return MS_ESTATE;
    if (imp->err.status) /* created from bad options */
        return imp->err.status;
    imp->pread = fn;
    imp->pread_ctx = ctx;
    return 0;
}

static int add_channel(ms_qemu_import *imp, ms_read_fn fn, void *ctx, const char *name)
{
    if (imp->ran)
        return MS_ESTATE;
    if (imp->err.status) /* created from bad options */
        return imp->err.status;
    if (imp->nch == MS_QEMU_MAX_CHANNELS)
        return MS_ELIMIT;
    msi_source_channel *n = msi_realloc(&imp->alloc, imp->ch, (imp->nch + 1) * sizeof *n);
    if (!n)
        return MS_ENOMEM;
    imp->ch = n;
    /* NULL or "": the source calls it "channel N", N counting from 1. */
    char *copy = NULL;
    if (name && *name && !(copy = msi_strdup(&imp->alloc, name)))
        return MS_ENOMEM;
    imp->ch[imp->nch++] = (msi_source_channel){.read = fn, .ctx = ctx, .name = copy};
    return 0;
}

int ms_qemu_import_add_channel(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, const char *name)
{
    if (!imp || !in)
        return MS_EINVAL;
    return add_channel(imp, in, in_ctx, name);
}

int ms_qemu_import_add_channel_fd(ms_qemu_import *imp, int fd, const char *name)
{
    if (!imp || fd < 0)
        return MS_EINVAL;
    /* The descriptor's number is the context: it outlives this call. */
    return add_channel(imp, msi_fd_read, msi_fd_ctx(fd), name);
}

/* ----------------------------------------------------------- the results */

const ms_qemu_import_stats *ms_qemu_import_get_stats(const ms_qemu_import *imp)
{
    return imp ? &imp->stats : NULL;
}

int ms_qemu_import_status(const ms_qemu_import *imp)
{
    return imp ? imp->err.status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_qemu_import_errmsg(const ms_qemu_import *imp)
{
    return imp ? imp->err.msg : "out of memory creating the importer";
}

uint64_t ms_qemu_import_error_offset(const ms_qemu_import *imp)
{
    return imp ? imp->err.offset : 0;
}
