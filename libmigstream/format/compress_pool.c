/*
 * The compression pool (see compress_pool.h). Jobs live in a ring: the
 * writer fills them at `tail`, workers take them in order at `start`, and
 * the writer writes them out in order from `head`. One mutex guards the
 * indexes and flags; copying and compressing happen outside it, each
 * worker with its own zstd context, reused for every job. A job whose
 * window is the job before it waits, after its own copy, for that job's
 * copy (never for its compression): workers take jobs in order, so the
 * job waited for has a worker already, and nothing waits in a circle.
 */
#include <pthread.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "format/compress.h"
#include "format/compress_pool.h"
#include "format/zero.h"

enum { SCAN_IDLE, SCAN_QUEUED, SCAN_RUNNING, SCAN_DONE };

struct msi_pool {
    ms_allocator alloc;
    int level;
    msi_job *jobs;
    bool *done;
    bool *copied; /* the job's `src` is in its `data` */
    unsigned njobs;
    unsigned reserve; /* jobs kept out of use: 1 with windows (msi_pool_new) */
    unsigned head, start, count; /* oldest in flight, next to compress, in flight */
    unsigned queued;             /* submitted, not yet taken by a worker */
    msi_scan *scans[MSI_POOL_SCANS]; /* queued scans; NULL: free */
    unsigned nscans;                 /* of them not NULL */
    uint64_t scan_seq;
    bool stop;
    bool sync; /* lock, work and finished were initialised */
    pthread_mutex_t lock;
    pthread_cond_t work, finished;
    pthread_t *threads;
    unsigned nthreads;
};

void msi_scan_run(msi_scan *s)
{
    const uint8_t *q = s->p;
    for (size_t i = 0; i < s->n; i++, q += s->ps) {
        uint64_t word;
        s->uniform[i] = msi_page_uniform(q, s->ps, &word);
        s->val[i] = s->uniform[i] ? word : s->hash ? XXH3_64bits(q, s->ps) : 0;
    }
}

/* The oldest queued scan, taken off the queue (lock held), or NULL. */
static msi_scan *take_scan(msi_pool *p)
{
    unsigned best = MSI_POOL_SCANS;
    for (unsigned k = 0; k < MSI_POOL_SCANS; k++)
        if (p->scans[k] && (best == MSI_POOL_SCANS || p->scans[k]->seq < p->scans[best]->seq))
            best = k;
    if (best == MSI_POOL_SCANS)
        return NULL;
    msi_scan *s = p->scans[best];
    p->scans[best] = NULL;
    p->nscans--;
    s->state = SCAN_RUNNING;
    return s;
}

static void *worker(void *arg)
{
    msi_pool *p = arg;
    void *cctx = NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queued && !p->nscans && !p->stop)
            pthread_cond_wait(&p->work, &p->lock);
        msi_scan *s = take_scan(p);
        if (s) { /* the writer is waiting for these: first */
            pthread_mutex_unlock(&p->lock);
            msi_scan_run(s);
            pthread_mutex_lock(&p->lock);
            s->state = SCAN_DONE;
            pthread_cond_broadcast(&p->finished);
            continue;
        }
        if (!p->queued)
            break; /* stopping, nothing left */
        unsigned i = p->start;
        p->start = (p->start + 1) % p->njobs;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        msi_job *j = &p->jobs[i];
        for (size_t k = 0; k < j->nsrc; k++) /* reserved by the writer */
            msi_buf_append(&j->data, j->src[k].iov_base, j->src[k].iov_len);
        const msi_job *w = NULL;
        pthread_mutex_lock(&p->lock);
        p->copied[i] = true;
        pthread_cond_broadcast(&p->finished);
        if (j->prev >= 0) {
            while (!p->copied[j->prev])
                pthread_cond_wait(&p->finished, &p->lock);
            w = &p->jobs[j->prev];
        }
        pthread_mutex_unlock(&p->lock);
        struct iovec iov = {j->data.data, j->data.len};
        j->rc = msi_zstd_compress(&cctx, p->level, &iov, 1, j->data.len, w ? w->data.data : NULL,
                                  w ? w->data.len : 0, &j->zbuf);
        pthread_mutex_lock(&p->lock);
        p->done[i] = true;
        pthread_cond_broadcast(&p->finished);
    }
    pthread_mutex_unlock(&p->lock);
    msi_zstd_free(cctx, NULL);
    return NULL;
}

msi_pool *msi_pool_new(const ms_allocator *a, unsigned threads, int level, uint32_t max_extents,
                       bool window)
{
    msi_pool *p = msi_calloc(a, 1, sizeof *p);
    if (!p)
        return NULL;
    p->alloc = *a;
    p->level = level;
    /* Two jobs per worker: one compressing while the writer fills the next.
     * With windows one more, never in use: a job's slot is filled again
     * only once the job after it (which may read its data as its window)
     * is retired. */
    p->reserve = window ? 1 : 0;
    p->njobs = 2 * threads + p->reserve;
    p->jobs = msi_calloc(a, p->njobs, sizeof *p->jobs);
    p->done = msi_calloc(a, p->njobs, sizeof *p->done);
    p->copied = msi_calloc(a, p->njobs, sizeof *p->copied);
    p->threads = msi_calloc(a, threads, sizeof *p->threads);
    bool ok = p->jobs && p->done && p->copied && p->threads && pthread_mutex_init(&p->lock, NULL) == 0;
    if (ok && pthread_cond_init(&p->work, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        ok = false;
    } else if (ok && pthread_cond_init(&p->finished, NULL) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        ok = false;
    }
    p->sync = ok;
    for (unsigned i = 0; ok && i < p->njobs; i++) {
        msi_buf_init(&p->jobs[i].data, &p->alloc);
        msi_buf_init(&p->jobs[i].zbuf, &p->alloc);
        ok = (p->jobs[i].ext = msi_calloc(a, max_extents, sizeof *p->jobs[i].ext)) != NULL;
    }
    for (unsigned i = 0; ok && i < threads; i++) {
        ok = pthread_create(&p->threads[i], NULL, worker, p) == 0;
        p->nthreads += ok;
    }
    if (!ok) {
        msi_pool_free(p);
        return NULL;
    }
    return p;
}

void msi_pool_free(msi_pool *p)
{
    if (!p)
        return;
    if (p->nthreads) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
    }
    for (unsigned i = 0; p->jobs && i < p->njobs; i++) {
        msi_free(&p->alloc, p->jobs[i].ext);
        msi_buf_free(&p->jobs[i].data);
        msi_buf_free(&p->jobs[i].zbuf);
        msi_free(&p->alloc, p->jobs[i].src);
    }
    if (p->sync) {
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->finished);
        pthread_mutex_destroy(&p->lock);
    }
    ms_allocator a = p->alloc;
    msi_free(&a, p->jobs);
    msi_free(&a, p->done);
    msi_free(&a, p->copied);
    msi_free(&a, p->threads);
    msi_free(&a, p);
}

msi_job *msi_pool_slot(msi_pool *p)
{
    /* Only the writer's thread changes head and count's growth. */
    if (p->count + p->reserve >= p->njobs)
        return NULL;
    return &p->jobs[(p->head + p->count) % p->njobs];
}

int msi_pool_index(const msi_pool *p, const msi_job *j)
{
    return (int)(j - p->jobs);
}

void msi_pool_submit(msi_pool *p, msi_job *j)
{
    unsigned i = (unsigned)(j - p->jobs);
    pthread_mutex_lock(&p->lock);
    p->done[i] = false;
    p->copied[i] = false;
    p->count++;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void msi_pool_wait_copied(msi_pool *p)
{
    if (p->count == 0)
        return;
    pthread_mutex_lock(&p->lock);
    for (unsigned k = 0; k < p->count; k++)
        while (!p->copied[(p->head + k) % p->njobs])
            pthread_cond_wait(&p->finished, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

msi_job *msi_pool_oldest(msi_pool *p)
{
    if (p->count == 0)
        return NULL;
    pthread_mutex_lock(&p->lock);
    while (!p->done[p->head])
        pthread_cond_wait(&p->finished, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return &p->jobs[p->head];
}

void msi_pool_retire(msi_pool *p, msi_job *j)
{
    (void)j; /* always the oldest */
    pthread_mutex_lock(&p->lock);
    p->head = (p->head + 1) % p->njobs;
    p->count--;
    pthread_mutex_unlock(&p->lock);
}

void msi_pool_scan_submit(msi_pool *p, msi_scan *s)
{
    pthread_mutex_lock(&p->lock);
    s->state = SCAN_QUEUED; /* with no free place, msi_pool_scan_wait() runs it */
    s->seq = p->scan_seq++;
    for (unsigned k = 0; k < MSI_POOL_SCANS; k++)
        if (!p->scans[k]) {
            p->scans[k] = s;
            p->nscans++;
            break;
        }
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void msi_pool_scan_wait(msi_pool *p, msi_scan *s)
{
    pthread_mutex_lock(&p->lock);
    if (s->state == SCAN_QUEUED) {
        /* No worker has it: running it here beats waiting for one. */
        for (unsigned k = 0; k < MSI_POOL_SCANS; k++)
            if (p->scans[k] == s) {
                p->scans[k] = NULL;
                p->nscans--;
            }
        s->state = SCAN_RUNNING;
        pthread_mutex_unlock(&p->lock);
        msi_scan_run(s);
        pthread_mutex_lock(&p->lock);
        s->state = SCAN_DONE;
    }
    while (s->state != SCAN_DONE)
        pthread_cond_wait(&p->finished, &p->lock);
    s->state = SCAN_IDLE;
    pthread_mutex_unlock(&p->lock);
}
