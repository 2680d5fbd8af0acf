/*
 * The compression pool (see compress_pool.h). Jobs live in a ring: the
 * writer fills them at `tail`, workers take them in order at `start`, and
 * the writer writes them out in order from `head`. One mutex guards the
 * indexes; compressing happens outside it, each worker with its own zstd
 * context, reused for every job.
 */
#include <pthread.h>
#include <string.h>

#include "format/compress.h"
#include "format/compress_pool.h"

struct msi_pool {
    ms_allocator alloc;
    int level;
    msi_job *jobs;
    bool *done;
    unsigned njobs;
    unsigned head, start, count; /* oldest in flight, next to compress, in flight */
    unsigned queued;             /* submitted, not yet taken by a worker */
    bool stop;
    bool sync; /* lock, work and finished were initialised */
    pthread_mutex_t lock;
    pthread_cond_t work, finished;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker(void *arg)
{
    msi_pool *p = arg;
    void *cctx = NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queued && !p->stop)
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->queued)
            break; /* stopping, nothing left */
        unsigned i = p->start;
        p->start = (p->start + 1) % p->njobs;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        msi_job *j = &p->jobs[i];
        struct iovec iov = {j->data.data, j->data.len};
        j->rc = msi_zstd_compress(&cctx, p->level, &iov, 1, j->data.len, &j->zbuf);
        pthread_mutex_lock(&p->lock);
        p->done[i] = true;
        pthread_cond_broadcast(&p->finished);
    }
    pthread_mutex_unlock(&p->lock);
    msi_zstd_free(cctx, NULL);
    return NULL;
}

msi_pool *msi_pool_new(const ms_allocator *a, unsigned threads, int level, uint32_t max_extents)
{
    msi_pool *p = msi_calloc(a, 1, sizeof *p);
    if (!p)
        return NULL;
    p->alloc = *a;
    p->level = level;
    /* Two jobs per worker: one compressing while the writer fills the next. */
    p->njobs = 2 * threads;
    p->jobs = msi_calloc(a, p->njobs, sizeof *p->jobs);
    p->done = msi_calloc(a, p->njobs, sizeof *p->done);
    p->threads = msi_calloc(a, threads, sizeof *p->threads);
    bool ok = p->jobs && p->done && p->threads && pthread_mutex_init(&p->lock, NULL) == 0;
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
    }
    if (p->sync) {
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->finished);
        pthread_mutex_destroy(&p->lock);
    }
    ms_allocator a = p->alloc;
    msi_free(&a, p->jobs);
    msi_free(&a, p->done);
    msi_free(&a, p->threads);
    msi_free(&a, p);
}

msi_job *msi_pool_slot(msi_pool *p)
{
    /* Only the writer's thread changes head and count's growth. */
    if (p->count == p->njobs)
        return NULL;
    return &p->jobs[(p->head + p->count) % p->njobs];
}

void msi_pool_submit(msi_pool *p, msi_job *j)
{
    unsigned i = (unsigned)(j - p->jobs);
    pthread_mutex_lock(&p->lock);
    p->done[i] = false;
    p->count++;
    p->queued++;
    pthread_cond_signal(&p->work);
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
