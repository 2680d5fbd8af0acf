/*
 * Compression on worker threads (ms_writer_options.threads): the writer
 * hands each PAGES batch to a pool of workers that copy its pages out of
 * the caller's memory (when the writer has not copied them already),
 * compress batches in parallel, and the writer writes the results in
 * submission order, so the stream is byte for byte the one a
 * single-threaded writer makes.
 */
#ifndef MSI_COMPRESS_POOL_H
#define MSI_COMPRESS_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "migstream/stream.h"
#include "common/util.h"

/* One batch: filled by the writer, copied and compressed by a worker. */
typedef struct msi_job {
    uint32_t region;   /* index into the writer's regions */
    ms_extent *ext;    /* the batch's extents (capacity: the writer's max) */
    uint32_t next;     /* extents in use */
    msi_buf data;      /* the DATA pages' bytes, contiguous (the worker
                          appends `src` to what the writer put there, into
                          capacity the writer reserved) */
    struct iovec *src; /* caller memory the worker copies into `data` */
    size_t nsrc, src_cap;
    int prev;          /* the job whose data is this one's zstd window, or -1 */
    msi_buf zbuf;      /* the compressed frame */
    int rc;            /* compression status */
} msi_job;

typedef struct msi_pool msi_pool;

/* @threads workers compressing at @level; jobs hold up to @max_extents
 * extents. With @window, a job's data stays untouched until the job after
 * it is done, so that it can serve as that job's window. NULL when out of
 * memory or a thread cannot start. */
msi_pool *msi_pool_new(const ms_allocator *a, unsigned threads, int level, uint32_t max_extents,
                       bool window);
/* Stops the workers (after the jobs in flight) and frees everything. */
void msi_pool_free(msi_pool *p);
/* A free job to fill, or NULL when every job is in flight: the caller then
 * writes and retires the oldest first. */
msi_job *msi_pool_slot(msi_pool *p);
/* The index of job @j, for msi_job.prev. */
int msi_pool_index(const msi_pool *p, const msi_job *j);
/* Hands a job filled from msi_pool_slot() to the workers. */
void msi_pool_submit(msi_pool *p, msi_job *j);
/* Waits until no job in flight still has caller memory to copy. */
void msi_pool_wait_copied(msi_pool *p);
/* The oldest job in flight, once its worker is done with it; NULL when
 * none is in flight. */
msi_job *msi_pool_oldest(msi_pool *p);
/* Frees the job msi_pool_oldest() returned, for reuse. */
void msi_pool_retire(msi_pool *p, msi_job *j);

#endif
