/*
 * Compression on worker threads (ms_writer_options.threads): the writer
 * hands each PAGES batch, copied, to a pool of workers that compress
 * batches in parallel, and writes the results in submission order, so the
 * stream is byte for byte the one a single-threaded writer makes.
 */
#ifndef MSI_COMPRESS_POOL_H
#define MSI_COMPRESS_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "migstream/stream.h"
#include "common/util.h"

/* One batch: filled by the writer, compressed by a worker. */
typedef struct msi_job {
    uint32_t region;   /* index into the writer's regions */
    ms_extent *ext;    /* the batch's extents (capacity: the writer's max) */
    uint32_t next;     /* extents in use */
    msi_buf data;      /* the DATA pages' bytes, contiguous */
    msi_buf zbuf;      /* the compressed frame */
    int rc;            /* compression status */
} msi_job;

typedef struct msi_pool msi_pool;

/* @threads workers compressing at @level; jobs hold up to @max_extents
 * extents. NULL when out of memory or a thread cannot start. */
msi_pool *msi_pool_new(const ms_allocator *a, unsigned threads, int level, uint32_t max_extents);
/* Stops the workers (after the jobs in flight) and frees everything. */
void msi_pool_free(msi_pool *p);
/* A free job to fill, or NULL when every job is in flight: the caller then
 * writes and retires the oldest first. */
msi_job *msi_pool_slot(msi_pool *p);
/* Hands a job filled from msi_pool_slot() to the workers. */
void msi_pool_submit(msi_pool *p, msi_job *j);
/* The oldest job in flight, once its worker is done with it; NULL when
 * none is in flight. */
msi_job *msi_pool_oldest(msi_pool *p);
/* Frees the job msi_pool_oldest() returned, for reuse. */
void msi_pool_retire(msi_pool *p, msi_job *j);

#endif
