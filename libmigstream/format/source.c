/*
 * Foreign-format sources (source.h): the calls every module shares, and
 * the copy of a source's records into a writer that every importer uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format/source.h"

void msi_source_init(msi_source *s, const msi_source_ops *ops, const ms_allocator *alloc,
                     const msi_source_io *io, const void *options)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    msi_allocator_set(&s->alloc, alloc);
    if (io)
        s->io = *io;
    s->options = options;
    s->err_record = MSI_SOURCE_NO_RECORD;
    s->err_part = -1;
}

msi_source *msi_source_create(const msi_source_ops *ops, const ms_allocator *alloc,
                              const msi_source_io *io, const void *options)
{
    ms_allocator a;
    msi_allocator_set(&a, alloc);
    msi_source *s = msi_alloc(&a, sizeof *s);
    if (s)
        msi_source_init(s, ops, &a, io, options);
    return s;
}

void msi_source_destroy(msi_source *s)
{
    if (!s)
        return;
    msi_source_close(s);
    ms_allocator a = s->alloc;
    msi_free(&a, s);
}

void msi_source_problem(msi_source *s, int status, uint64_t offset, const char *fmt, ...)
{
    if (!s->problem)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->problem(s->problem_ctx, status, offset, msg);
}

int msi_source_fail(msi_source *s, int status, uint64_t offset, const char *fmt, ...)
{
    if (s->status)
        return s->status;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    s->status = status;
    s->err_offset = offset;
    return status;
}

int msi_source_open(msi_source *s)
{
    if (s->status)
        return s->status;
    int rc = s->ops->open(s);
    if (rc < 0 && !s->status)
        msi_source_fail(s, rc, 0, "%s", ms_strerror(rc));
    return rc < 0 ? s->status : 0;
}

int msi_source_next(msi_source *s, const ms_record **out)
{
    if (s->status)
        return s->status;
    int rc = s->ops->next(s, out);
    if (rc < 0 && !s->status)
        msi_source_fail(s, rc, 0, "%s", ms_strerror(rc));
    return rc < 0 ? s->status : rc;
}

void msi_source_close(msi_source *s)
{
    if (s && s->ops && s->ops->close)
        s->ops->close(s);
    if (s)
        s->state = NULL;
}

/* One extent of a PAGES record; @data points at its DATA pages' bytes. A
 * failure leaves in *@done the extent's pages written before the failing
 * call. */
static int copy_extent(ms_writer *w, const ms_pages *p, const ms_extent *x, const uint8_t *data,
                       uint64_t *done)
{
    const uint32_t id = p->region->id;
    *done = 0;
    switch (x->state) {
    case MS_PAGE_DATA: {
        int rc = 0;
        for (uint32_t i = 0; i < x->count && !rc; i++) {
            *done = i;
            rc = ms_writer_pages(w, id, x->first + i, 1, data + (size_t)i * p->region->page_size);
        }
        return rc;
    }
    case MS_PAGE_ZERO:
        return ms_writer_zero_pages(w, id, x->first, x->count);
    case MS_PAGE_DISCARDED:
        return ms_writer_discard(w, id, x->first, x->count);
    case MS_PAGE_FILL:
        return ms_writer_fill_pages(w, id, x->first, x->count, x->arg);
    case MS_PAGE_IN_PLACE:
        return ms_writer_in_place(w, id, x->first, x->count, x->arg);
    default:
        return MS_EINVAL; /* a source hands out only the states it may */
    }
}

/* Writes @rec; on failure *@item is the first item of the failing call. */
static int copy_record(ms_writer *w, const ms_record *rec, uint64_t *item)
{
    int rc = 0;
    *item = 0;
    switch (rec->type) {
    case MS_REC_INFO:
    case MS_REC_END:
    case MS_REC_PART: /* the copy is one stream: the parts are merged already */
        return 0;
    case MS_REC_REGIONS:
        for (size_t i = 0; i < rec->region_count && !rc; i++) {
            *item = i;
            rc = ms_writer_add_region(w, &rec->regions[i]);
        }
        return rc;
    case MS_REC_PAGES: {
        const ms_pages *p = &rec->pages;
        const uint8_t *data = p->data;
        uint64_t first = 0, done = 0;
        for (size_t i = 0; i < p->extent_count && !rc; i++) {
            rc = copy_extent(w, p, &p->extents[i], data, &done);
            *item = first + done;
            first += p->extents[i].count;
            if (p->extents[i].state == MS_PAGE_DATA)
                data += (size_t)p->extents[i].count * p->region->page_size;
        }
        return rc;
    }
    case MS_REC_ROUND:
        return ms_writer_round(w, &rec->round);
    case MS_REC_OVERLAY:
        for (size_t i = 0; i < rec->overlay_count && !rc; i++) {
            *item = i;
            rc = ms_writer_overlay(w, &rec->overlays[i]);
        }
        return rc;
    case MS_REC_DEVICE: {
        const ms_device *d = &rec->device;
        return ms_writer_device(w, d->path, d->instance, d->schema, d->version, d->state,
                                d->state_size);
    }
    default:
        return ms_writer_record(w, rec->type, rec->flags, rec->payload, rec->length);
    }
}

int msi_source_copy(msi_source *s, ms_writer *w, msi_copy_stop *stop)
{
    const ms_record *rec;
    int rc;
    memset(stop, 0, sizeof *stop);
    while ((rc = msi_source_next(s, &rec)) > 0) {
        if (rec->type == MS_REC_END)
            return 0;
        if ((rc = copy_record(w, rec, &stop->item))) {
            stop->writer_failed = true;
            stop->rec = rec;
            return rc;
        }
    }
    return rc < 0 ? rc : msi_source_fail(s, MS_ECORRUPT, 0, "the source ended without END");
}
