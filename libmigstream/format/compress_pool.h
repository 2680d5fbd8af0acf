/*
 * Compression on worker threads (ms_writer_options.threads): the writer
 * hands each PAGES batch to a pool of workers that copy its pages out of
 * the caller's memory (when the writer has not copied them already),
 * compress batches in parallel, and the writer writes the results in
 * submission order, so the stream is byte for byte the one a
 * single-threaded writer makes.
 *
 * The same workers classify pages ahead of the writer (msi_scan): a large
 * data call's memory is split into spans whose pages the workers test for
 * uniformity (and hash, for the duplicate table) while the writer turns
 * the spans before them into batches. Classification is a function of the
 * page's bytes alone, so where it runs does not change the stream.
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

/* A span of caller memory to classify: which pages are one repeated
 * 8-byte word, and that word, or for every other page its hash (when
 * `hash` is set). Filled by the writer, run by a worker or, when no worker
 * has started it by the time the writer needs it, by the writer itself. */
typedef struct msi_scan {
    const uint8_t *p;  /* the span's first page */
    size_t n;          /* its pages (at most the arrays' capacity) */
    uint32_t ps;       /* their size */
    bool hash;         /* hash the pages that are not uniform */
    uint8_t *uniform;  /* [n] 1: page i is one repeated word */
    uint64_t *val;     /* [n] that word (memory order), or the page's hash */
    int state;         /* the pool's (msi_pool_scan_submit) */
    uint64_t seq;      /* the pool's: scans are started in submission order */
} msi_scan;

/* Classifies @s's pages on this thread (what a worker does with it). */
void msi_scan_run(msi_scan *s);

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

/* Most scans queued at once. */
#define MSI_POOL_SCANS 8
/* Queues scan @s; workers take scans before batches, since the writer
 * waits for them. At most MSI_POOL_SCANS may be queued or running. */
void msi_pool_scan_submit(msi_pool *p, msi_scan *s);
/* Returns once @s is classified: when no worker has started it yet, this
 * thread runs it. After this, no worker reads @s's memory. */
void msi_pool_scan_wait(msi_pool *p, msi_scan *s);

#endif
