/*
 * The Xen importer's public API (include/migstream/xen.h): options, then
 * the run, which opens the Xen source (source.c) and copies its records
 * into an ms_writer (format/source.h's msi_source_copy). The top of
 * libmigstream/xen/: it calls the source and the format layer, and nothing
 * calls it.
 */
#include <stdio.h>
#include <string.h>

#include "common/fdio.h"
#include "format/source.h"
#include "migstream/writer.h"
#include "migstream/xen.h"
#include "xen/input.h"
#include "xen/source.h"

struct ms_xen_import {
    ms_xen_import_options opts;
    ms_allocator alloc;
    bool ran;
    mx_error err;
    ms_xen_import_stats stats;
    ms_writer_options wopts; /* the caller's, copied */
    bool have_wopts;
};

void ms_xen_import_options_init(ms_xen_import_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    mx_options_defaults(o);
}

ms_xen_import *ms_xen_import_new(const ms_xen_import_options *opts)
{
    ms_xen_import_options o;
    ms_xen_import_options_init(&o);
    const char *why = NULL, *which = "import options";
    if (opts)
        why = msi_struct_take(&o, MSI_STRUCT_END(ms_xen_import_options, allocator), opts,
                              opts->struct_size);
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    if (!why && o.writer) {
        which = "import options: writer";
        why = msi_struct_take(&wo, MSI_STRUCT_END(ms_writer_options, stable_memory), o.writer,
                              o.writer->struct_size);
    }
    if (!why)
        why = mx_options_defaults(&o);
    if (why) { /* the defaults, for a handle that only carries the reason */
        ms_xen_import_options_init(&o);
        o.writer = NULL;
    }
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_xen_import *imp = msi_calloc(&a, 1, sizeof *imp);
    if (!imp)
        return NULL;
    imp->alloc = a;
    imp->opts = o;
    imp->opts.writer = NULL;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        imp->err.status = MS_EINVAL;
        snprintf(imp->err.msg, sizeof imp->err.msg, "invalid %s: %s", which, why);
    } else if (o.writer) {
        imp->wopts = wo;
        imp->wopts.struct_size = sizeof imp->wopts;
        imp->have_wopts = true;
    }
    return imp;
}

void ms_xen_import_free(ms_xen_import *imp)
{
    if (!imp)
        return;
    ms_allocator a = imp->alloc;
    msi_free(&a, imp);
}

/* ---------------------------------------------------------------- the run */

static int source_failed(ms_xen_import *imp, const msi_source *s)
{
    mx_error *e = &imp->err;
    if (e->status)
        return e->status;
    e->status = s->status;
    e->offset = s->err_offset;
    snprintf(e->msg, sizeof e->msg, "%s", s->msg);
    return e->status;
}

static int writer_failed(ms_xen_import *imp, ms_writer *w, uint64_t off)
{
    return mx_fail(&imp->err, ms_writer_status(w) ? ms_writer_status(w) : MS_ENOMEM, off, "output",
                   "writing the output: %s", ms_writer_errmsg(w));
}

/* The caller's writer options, with "xen", the Xen version and the domain
 * type where they name none, and the DISCARDED feature that XTAB and
 * BROKEN pages need (the preamble comes before any page). */
static ms_writer *create_writer(ms_xen_import *imp, const msi_source *s, ms_write_fn out,
                                void *out_ctx, int out_fd)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    if (imp->have_wopts)
        o = imp->wopts;
    if (!o.writer_name || !*o.writer_name) {
        o.writer_name = s->header.writer_name;
        if (!o.writer_version || !*o.writer_version)
            o.writer_version = s->header.writer_version;
    }
    if (!o.machine && s->info.machine)
        o.machine = s->info.machine;
    if (o.page_size < s->header.page_size)
        o.page_size = s->header.page_size;
    o.features |= s->header.required_features;
    ms_writer *w = out ? ms_writer_new(&o, out, out_ctx) : ms_writer_new_fd(&o, out_fd);
    if (!w)
        mx_fail(&imp->err, MS_ENOMEM, mx_source_offset(s), "output", "cannot create the writer");
    else if (ms_writer_status(w))
        writer_failed(imp, w, mx_source_offset(s));
    return w;
}

static int run(ms_xen_import *imp, msi_source *s, ms_write_fn out, void *out_ctx, int out_fd)
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
            mx_source_writer_failed(s, &stop, w, rc);
        rc = source_failed(imp, s);
    } else if (ms_writer_finish(w, NULL)) {
        rc = writer_failed(imp, w, mx_source_offset(s));
    }
    ms_writer_free(w);
    return rc;
}

static int run_common(ms_xen_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                      void *out_ctx, int out_fd)
{
    if (imp->ran || imp->err.status)
        return imp->err.status ? imp->err.status : MS_ESTATE;
    imp->ran = true;
    const msi_source_io io = {.read = in, .read_ctx = in_ctx};
    msi_source s;
    msi_source_init(&s, &mx_source_ops, &imp->alloc, &io, &imp->opts);
    int rc = run(imp, &s, out, out_ctx, out_fd);
    mx_source_stats(&s, &imp->stats);
    msi_source_close(&s);
    return rc;
}

int ms_xen_import_run(ms_xen_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                      void *out_ctx)
{
    if (!imp)
        return MS_EINVAL;
    if (!out && !imp->err.status) {
        imp->ran = true;
        return mx_fail(&imp->err, MS_EINVAL, 0, "output", "no write callback");
    }
    return run_common(imp, in, in_ctx, out, out_ctx, -1);
}

int ms_xen_import_run_fd(ms_xen_import *imp, int in_fd, int out_fd)
{
    if (!imp)
        return MS_EINVAL;
    if ((in_fd < 0 || out_fd < 0) && !imp->err.status) {
        imp->ran = true;
        return mx_fail(&imp->err, MS_EINVAL, 0, "input", "bad file descriptor");
    }
    return run_common(imp, msi_fd_read, msi_fd_ctx(in_fd), NULL, NULL, out_fd);
}

const ms_xen_import_stats *ms_xen_import_get_stats(const ms_xen_import *imp)
{
    return imp ? &imp->stats : NULL;
}

int ms_xen_import_status(const ms_xen_import *imp)
{
    return imp ? imp->err.status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_xen_import_errmsg(const ms_xen_import *imp)
{
    return imp ? imp->err.msg : "out of memory creating the importer";
}

uint64_t ms_xen_import_error_offset(const ms_xen_import *imp)
{
    return imp ? imp->err.offset : 0;
}
