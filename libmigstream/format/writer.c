/*
 * The writer (include/migstream/writer.h): turns calls into records.
 *
 * Small records (INFO, REGIONS, DEVICE, END) are serialized into `out`,
 * which is pushed to the output whenever a PAGES record goes out, when it
 * grows past OUT_FLUSH, and at flush/finish. PAGES records are batched: the
 * pending batch holds extents and DATA pages' bytes. By default those bytes
 * are copied into `stage` as pages are added: guest memory may change while
 * the writer reads it, and the record's checksum must cover the bytes that
 * go out. With stable_memory, the iovecs point straight at the caller's
 * memory, so uncompressed page data is never copied; before a call returns,
 * a pending batch that still points at caller memory is either written out
 * (when large) or copied into `stage` (when small), so callers that hand in
 * one page at a time still get full batches.
 *
 * An output that would block (writer.h, "Non-blocking output") is handed
 * each record whole; what it does not take is copied into `back` and
 * pushed before anything else is written. Every step that writes pushes
 * `back` first (push()) and, while it cannot, returns MS_EAGAIN having
 * changed nothing: each step is done or not begun, and a repeated call
 * goes on from the first step not done. So `back` holds at most one record,
 * and `out` at most OUT_FLUSH bytes plus one record. A data call that
 * returns MS_EAGAIN is remembered in `call`, with the first page it has not
 * taken in `resume`; settle()'s decision to end the batch is kept in
 * `closing`. Batches therefore end where a blocking writer ends them, and
 * the stream is byte for byte the same.
 *
 * max_bandwidth and the progress callback work per write to the output and
 * per record, never per page: the hot path (classifying and copying pages)
 * does not see them.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "format/compress.h"
#include "format/compress_pool.h"
#include "format/dedup.h"
#include "format/frame.h"
#include "format/options.h"
#include "migstream/overlay.h"
#include "migstream/writer.h"
#include "format/payload.h"
#include "format/zero.h"

#define WRITER_MAGIC 0x4d535754u /* "MSWT": catches use of a freed/foreign handle */
#define MAX_EXTENTS 8192u        /* per PAGES record: 192 KiB of extents */
#define OUT_FLUSH (256u * 1024)
#define DEFAULT_BATCH (1u << 20)
#define MAX_BATCH (32u << 20)
#define MAX_THREADS 64u
/* MS_FEATURE_ZSTD_WINDOW: records with data in one window chain at most,
 * so that a reader that starts at a chain's first record (encoding 1 or
 * 0) decodes at most this many records to reach any one (PERFORMANCE.md). */
#define WINDOW_CHAIN 64u
/* With workers, a large data call's pages are classified by them ahead of
 * the calling thread (msi_scan): spans of SCAN_BYTES of guest memory (at
 * most SCAN_PAGES pages), SCAN_AHEAD of them in flight: 8 MiB read ahead,
 * 9 bytes of results per page. */
#define SCAN_BYTES (2u << 20)
#define SCAN_PAGES 512u
#define SCAN_AHEAD 4u
_Static_assert(SCAN_AHEAD <= MSI_POOL_SCANS, "every scan in flight has a place in the pool");

/* A data call (pages, dirty, zero, fill, discard, in place) that returned
 * MS_EAGAIN, to be repeated with the same arguments. */
typedef struct data_call {
    const char *name; /* the API function; NULL: none outstanding */
    uint32_t region;
    uint64_t first, count, arg;
    const void *p1, *p2;
    int n;
} data_call;

struct ms_writer {
    uint32_t magic;
    ms_allocator alloc;
    ms_write_fn fn;        /* takes everything it is given, or fails (ms_writer_new) */
    ms_write_some_fn some; /* takes what it can (ms_writer_new_some, the fd writer) */
    void *ctx;
    int fd; /* >= 0 for the fd writer: lets messages carry errno */
    bool nonblocking; /* the output can say "would block": max_bandwidth never sleeps */
    int wait_ms;      /* ms_writer_poll_timeout() */

    int status;
    char msg[320];
    bool finished;
    int io_ret, io_errno; /* the failed output call (ms_writer_io_error) */

    ms_header hdr;
    uint64_t features; /* required features the stream may use */
    uint32_t batch_bytes;
    int level;
    uint32_t max_depth;

    uint64_t chain;   /* checksum of the last record (the chain's seed) */
    uint64_t written; /* bytes the output has taken */
    ms_totals totals; /* running counts for END */
    msi_buf out;      /* serialized bytes not yet handed out */
    msi_buf scratch;  /* CBOR payload under construction */
    msi_buf back;     /* bytes handed out that the output has not taken */
    size_t back_off;  /* ... from here on */

    data_call call; /* the data call to repeat, if any */
    uint64_t resume; /* its first page not taken */
    bool closing;    /* settle() ended the pending batch: it goes out next */
    bool end_queued; /* finish() queued END */
    ms_totals end_totals;

    /* max_bandwidth: a token bucket of bytes, refilled at `rate` per second */
    double rate, burst, tokens;
    uint64_t refill_ns;
    /* statistics and the progress callback */
    uint64_t start_ns, throttled_ns;
    ms_progress_fn progress;
    void *progress_ctx;
    uint32_t progress_records, progress_ms;
    uint64_t progress_last_records, progress_last_ns;
    ms_writer_stats stats;

    ms_region *regions;
    size_t nregions, regions_cap, regions_written;

    uint64_t pages_records;
    bool is_part; /* ms_writer_options.part: pages only inside rounds */
    bool any_round;
    uint64_t last_round;
    struct { uint64_t gfn; uint32_t kind; } *ov; /* overlays written: no duplicates */
    size_t nov, ov_cap;

    /* pending PAGES batch */
    bool pending;
    size_t p_region; /* index into regions */
    ms_extent *ext;
    uint32_t next;
    struct iovec *seg;
    size_t nseg, seg_cap;
    size_t first_borrowed; /* segments from here on point at caller memory */
    size_t data_bytes;
    uint8_t *stage;
    size_t stage_cap;
    bool stable; /* stable_memory: DATA pages are not copied (see the top) */
    /* DATA pages stay in the caller's memory until their batch goes out or
     * the call ends, as with stable_memory: stable_memory, or workers that
     * copy each batch themselves (threads > 1 without DUPLICATES), in which
     * case every call waits for the workers' copies before it returns. */
    bool borrow;
    bool copied_in_call; /* !borrow: this call copied page data (settle()) */

    msi_dedup *dedup; /* MS_FEATURE_DUPLICATES: pages sent as DATA */
    /* The hash classify_page() took of DATA page `dh_page` of region
     * `dh_region` (dh_valid), which remember() reuses: the table compares
     * bytes before it trusts a hash, so a page that changed between the
     * two costs a missed duplicate at worst, never a wrong reference. */
    bool dh_valid;
    size_t dh_region;
    uint64_t dh_page, dh;
    /* MS_FEATURE_ZSTD_WINDOW with compression: the previous record's data
     * (the next record's window) is `win` on this thread, or job
     * `win_job` of the pool; win_chain counts the records of the chain. */
    bool window;
    msi_buf win;
    bool win_valid;
    int win_job;
    uint32_t win_chain;

    msi_buf zbuf;
    void *cctx;
    void *hash;
    msi_pool *pool; /* compression workers (options.threads > 1), or NULL */
    msi_scan scans[SCAN_AHEAD]; /* put_memory() with the pool */
};

static int fail(ms_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ms_writer *w, int code, const char *fmt, ...)
{
    if (w->status)
        return w->status;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    w->status = code;
    return code;
}

static int check(const ms_writer *w)
{
    if (!w || w->magic != WRITER_MAGIC)
        return MS_EINVAL;
    if (w->status)
        return w->status;
    return w->finished || w->end_queued ? MS_ESTATE : MS_OK;
}

/* Another call while a data call waits to be repeated (writer.h). */
static int other_call(ms_writer *w, const char *what)
{
    const data_call *c = &w->call;
    char pages[64] = "";
    if (c->count)
        snprintf(pages, sizeof pages, ", pages %llu..+%llu", (unsigned long long)c->first,
                 (unsigned long long)c->count);
    return fail(w, MS_EINVAL, "%s() while %s() on region %u%s is unfinished: after MS_EAGAIN, "
                "repeat that call with the same arguments first", what, c->name, c->region,
                pages);
}

/* check() for every call but the data calls, which may be repeated. */
static int check_idle(ms_writer *w, const char *what)
{
    int rc = check(w);
    if (!rc && w->call.name)
        rc = other_call(w, what);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void io_fail(ms_writer *w, ssize_t ret, int err, size_t given)
{
    w->io_ret = ret < INT_MIN ? INT_MIN : ret > INT_MAX ? INT_MAX : (int)ret;
    w->io_errno = err;
    unsigned long long at = (unsigned long long)w->written;
    if (ret > 0) {
        fail(w, MS_EIO, "output callback says it took %zd bytes of the %zu it was given, at "
             "byte %llu", ret, given, at);
    } else if (w->fd >= 0) {
        fail(w, MS_EIO, "write to fd %d failed at byte %llu: %s", w->fd, at,
             strerror((int)-ret));
    } else {
        char cause[160];
        msi_io_cause(cause, sizeof cause, ret, err);
        fail(w, MS_EIO, "output callback failed at byte %llu: %s", at, cause);
    }
}

/* Drops the first @k bytes of @iov[*first..]. */
static void consume(struct iovec *iov, int *first, size_t k)
{
    while (k) {
        struct iovec *v = &iov[*first];
        if (k < v->iov_len) {
            v->iov_base = (uint8_t *)v->iov_base + k;
            v->iov_len -= k;
            return;
        }
        k -= v->iov_len;
        v->iov_len = 0;
        ++*first;
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* max_bandwidth: how many of @want bytes may go to the output now. A
 * blocking writer sleeps until a useful piece may (half a burst, or all
 * that is left); a non-blocking one returns 0 and says how long to wait. */
static size_t throttle(ms_writer *w, size_t want)
{
    for (;;) {
        uint64_t now = now_ns();
        w->tokens += (double)(now - w->refill_ns) * w->rate / 1e9;
        if (w->tokens > w->burst)
            w->tokens = w->burst;
        w->refill_ns = now;
        double need = (double)want < w->burst / 2 ? (double)want : w->burst / 2;
        if (w->tokens >= need)
            return w->tokens >= (double)want ? want : (size_t)w->tokens;
        uint64_t wait = (uint64_t)((need - w->tokens) / w->rate * 1e9) + 1;
        if (w->nonblocking) {
            w->wait_ms = (int)(wait / 1000000 + 1);
            return 0;
        }
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u),
                              .tv_nsec = (long)(wait % 1000000000u)};
        nanosleep(&ts, NULL); /* woken early (a signal): the loop sees it */
        w->throttled_ns += now_ns() - now;
    }
}

/* Hands @iov (@total bytes) to the output, as much of it as the output
 * (and max_bandwidth) takes now, and drops what it took from the front of
 * @iov. Returns the bytes taken: fewer than @total when the output would
 * block, max_bandwidth holds the rest back (w->wait_ms says which) or the
 * output failed (the sticky status is then set). */
static size_t out_write(ms_writer *w, struct iovec *iov, int iovcnt, size_t total)
{
    size_t done = 0;
    int first = 0;
    w->wait_ms = -1;
    while (done < total) {
        size_t allow = total - done;
        if (w->rate > 0 && !(allow = throttle(w, allow)))
            break;
        while (iov[first].iov_len == 0) /* allow > 0: a non-empty one follows */
            first++;
        int n = iovcnt - first, cut = -1;
        size_t cut_len = 0;
        if (allow < total - done) { /* max_bandwidth: hand out @allow bytes only */
            size_t sum = 0;
            for (cut = first; sum + iov[cut].iov_len < allow; cut++)
                sum += iov[cut].iov_len;
            cut_len = iov[cut].iov_len;
            iov[cut].iov_len = allow - sum;
            n = cut + 1 - first;
        }
        ssize_t k;
        int err = 0;
        if (w->some) {
            k = w->some(w->ctx, iov + first, n);
            if (k < 0)
                err = errno;
        } else {
            int rc = w->fn(w->ctx, iov + first, n);
            if (rc < 0)
                err = errno;
            k = rc < 0 ? rc : (ssize_t)allow;
        }
        if (cut >= 0)
            iov[cut].iov_len = cut_len;
        if (k == 0 || k == -EAGAIN || k == -EWOULDBLOCK)
            break; /* would block */
        if (k < 0 || (size_t)k > allow) {
            io_fail(w, k, err, allow);
            break;
        }
        done += (size_t)k;
        w->written += (uint64_t)k;
        if (w->rate > 0)
            w->tokens -= (double)k;
        consume(iov, &first, (size_t)k);
    }
    return done;
}

/* Writes @iov whole as far as the writer is concerned: what the output
 * does not take goes to `back`, which must be empty (push() first). The
 * iovecs may point at the caller's memory or at buffers about to be
 * reused, so `back` holds a copy. MS_OK or a sticky failure; never
 * MS_EAGAIN. */
static int emit(ms_writer *w, struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    size_t k = total ? out_write(w, iov, iovcnt, total) : 0;
    if (w->status)
        return w->status;
    if (k == total)
        return MS_OK;
    w->back.len = w->back_off = 0;
    if (msi_buf_reserve(&w->back, total - k))
        return fail(w, MS_ENOMEM, "out of memory keeping %zu bytes the output did not take",
                    total - k);
    for (int i = 0; i < iovcnt; i++)
        msi_buf_append(&w->back, iov[i].iov_base, iov[i].iov_len); /* reserved */
    return MS_OK;
}

/* Hands `back` to the output: MS_OK once all of it is taken, MS_EAGAIN
 * while the output would block (not sticky), or a sticky failure. */
static int push(ms_writer *w)
{
    size_t left = w->back.len - w->back_off;
    if (left == 0)
        return MS_OK;
    struct iovec iov = {w->back.data + w->back_off, left};
    size_t k = out_write(w, &iov, 1, left);
    w->back_off += k;
    if (w->status)
        return w->status;
    if (k < left)
        return MS_EAGAIN;
    w->back.len = w->back_off = 0;
    return MS_OK;
}

static size_t held(const ms_writer *w)
{
    return w->back.len - w->back_off + w->out.len;
}

static const ms_writer_stats *fill_stats(ms_writer *w, uint64_t now)
{
    ms_writer_stats *s = &w->stats;
    s->totals = w->end_queued ? w->end_totals : w->totals;
    if (!w->end_queued)
        s->totals.bytes = w->written + held(w);
    s->bytes_written = w->written;
    s->bytes_held = held(w);
    s->elapsed_ns = now - w->start_ns;
    s->throttled_ns = w->throttled_ns;
    s->finished = w->finished;
    return s;
}

/* After a record joined the stream: the progress callback, when due. */
static void tick(ms_writer *w)
{
    if (!w->progress ||
        w->totals.records - w->progress_last_records < w->progress_records)
        return;
    uint64_t now = w->progress_ms || !w->progress_records ? now_ns() : 0;
    if (w->progress_ms && now - w->progress_last_ns < (uint64_t)w->progress_ms * 1000000u)
        return;
    if (!now)
        now = now_ns();
    w->progress_last_records = w->totals.records;
    w->progress_last_ns = now;
    w->progress(w->progress_ctx, fill_stats(w, now));
}

/* Writes `out`; `back` must be empty. */
static int flush_out(ms_writer *w)
{
    if (w->out.len == 0)
        return MS_OK;
    struct iovec iov = {w->out.data, w->out.len};
    int rc = emit(w, &iov, 1);
    w->out.len = 0;
    return rc;
}

static int drain(ms_writer *w);

/* Before a small record is queued: batches still compressing come first,
 * and `out` gets room. MS_EAGAIN when the output would block. */
static int make_room(ms_writer *w)
{
    int rc = drain(w);
    if (!rc && w->out.len >= OUT_FLUSH && !(rc = push(w)))
        rc = flush_out(w);
    return rc;
}

/* Queues a record whose payload is w->scratch (make_room() first): the
 * record is taken, whatever the output does. */
static int put_record(ms_writer *w, uint16_t type, uint16_t flags)
{
    if (w->scratch.len > MS_MAX_RECORD_PAYLOAD)
        return fail(w, MS_ELIMIT, "record of type %u with %zu bytes exceeds the format's "
                    "%u-byte limit", type, w->scratch.len, MS_MAX_RECORD_PAYLOAD);
    uint8_t *h = msi_buf_grow(&w->out, MSI_RECORD_HEADER);
    if (!h || msi_buf_append(&w->out, w->scratch.data, w->scratch.len))
        return fail(w, MS_ENOMEM, "out of memory queuing a record");
    h = w->out.data + w->out.len - w->scratch.len - MSI_RECORD_HEADER;
    msi_record_header(h, type, flags, (uint32_t)w->scratch.len);
    struct iovec pl = {h + MSI_RECORD_HEADER, w->scratch.len};
    w->chain = msi_record_checksum(w->hash, w->chain, h, &pl, 1);
    msi_put64(h + 8, w->chain);
    w->totals.records++;
    w->scratch.len = 0;
    if (type != MS_REC_END) /* finish() reports END once the output took it */
        tick(w);
    /* While `back` waits, `out` waits too: make_room() bounds it. */
    if (w->out.len >= OUT_FLUSH && w->back.len == w->back_off)
        return flush_out(w);
    return MS_OK;
}

static int emit_regions(ms_writer *w)
{
    if (w->regions_written == w->nregions)
        return MS_OK;
    int rc = make_room(w);
    if (rc)
        return rc;
    w->scratch.len = 0;
    if (msi_regions_encode(&w->scratch, w->regions + w->regions_written,
                           w->nregions - w->regions_written))
        return fail(w, MS_ENOMEM, "out of memory encoding REGIONS");
    w->regions_written = w->nregions;
    return put_record(w, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND);
}

/* Writes one PAGES record (FORMAT.md section 6) for region @ri: @next
 * extents, then the DATA pages' bytes @data (@bytes in all), or the zstd
 * frame @z instead when it is smaller (@windowed: compressed with the
 * previous record's data as its window, encoding 2). Queued small records
 * go out first. `back` must be empty (push() first): the record is then
 * taken. */
static int write_pages(ms_writer *w, size_t ri, const ms_extent *ext, uint32_t next,
                       const struct iovec *data, size_t ndata, size_t bytes, const msi_buf *z,
                       bool windowed)
{
    int rc;
    const ms_region *r = &w->regions[ri];
    size_t stored = bytes;
    uint8_t encoding = MS_ENCODING_RAW;
    struct iovec zio;
    if (z && z->len < bytes) { /* else incompressible: store raw */
        encoding = windowed ? MS_ENCODING_ZSTD_WINDOW : MS_ENCODING_ZSTD;
        zio.iov_base = z->data;
        zio.iov_len = z->len;
        data = &zio;
        ndata = 1;
        stored = z->len;
    }

    size_t meta = MSI_PAGES_HEADER + (size_t)next * MSI_EXTENT_SIZE;
    uint8_t *p = msi_buf_grow(&w->out, MSI_RECORD_HEADER + meta);
    if (!p)
        return fail(w, MS_ENOMEM, "out of memory queuing PAGES");
    msi_record_header(p, MS_REC_PAGES, MS_RECORD_MUST_UNDERSTAND, (uint32_t)(meta + stored));
    msi_pages_header(p + MSI_RECORD_HEADER, r->id, next, encoding);
    for (uint32_t i = 0; i < next; i++) {
        msi_extent_encode(p + MSI_RECORD_HEADER + MSI_PAGES_HEADER + i * MSI_EXTENT_SIZE, &ext[i]);
        w->totals.pages[ext[i].state] += ext[i].count;
    }

    /* One iovec array: everything queued in `out` (ending with this record's
     * header and extents), then the page data. */
    struct iovec stackv[64], *iov = stackv;
    if (ndata + 1 > 64 && !(iov = msi_calloc(&w->alloc, ndata + 1, sizeof *iov)))
        return fail(w, MS_ENOMEM, "out of memory");
    iov[0].iov_base = p + MSI_RECORD_HEADER;
    iov[0].iov_len = meta;
    if (ndata) /* a batch of only ZERO extents has no data at all */
        memcpy(iov + 1, data, ndata * sizeof *iov);
    w->chain = msi_record_checksum(w->hash, w->chain, p, iov, (int)ndata + 1);
    msi_put64(p + 8, w->chain);
    iov[0].iov_base = w->out.data;
    iov[0].iov_len = w->out.len;
    rc = emit(w, iov, (int)ndata + 1);
    if (iov != stackv)
        msi_free(&w->alloc, iov);
    w->out.len = 0;
    w->totals.records++;
    w->pages_records++;
    if (!rc)
        tick(w);
    return rc;
}

/* Writes the oldest batch the workers have compressed. */
static int write_job(ms_writer *w, msi_job *j)
{
    int rc = push(w);
    if (rc)
        return rc; /* the job waits with the workers */
    rc = j->rc;
    if (rc)
        rc = fail(w, rc, "zstd compression of %zu bytes failed", j->data.len);
    struct iovec raw = {j->data.data, j->data.len};
    if (!rc)
        rc = write_pages(w, j->region, j->ext, j->next, &raw, 1, j->data.len, &j->zbuf,
                         j->prev >= 0);
    msi_pool_retire(w->pool, j);
    return rc;
}

/* Writes every batch still with the workers, in order. */
static int drain(ms_writer *w)
{
    msi_job *j;
    int rc = MS_OK;
    while (w->pool && (j = msi_pool_oldest(w->pool)))
        if ((rc = write_job(w, j)))
            break;
    return rc;
}

/* Whether the next record with data takes the previous one's as its zstd
 * window (FORMAT.md section 6.3, encoding 2), and what that makes of the
 * chain. */
static bool chain_on(ms_writer *w)
{
    bool on = w->window && w->win_valid && w->win_chain < WINDOW_CHAIN;
    w->win_chain = on ? w->win_chain + 1 : 1;
    w->win_valid = w->window;
    return on;
}

/* Hands the pending batch to the workers: pages already in the stage go
 * with the stage itself, pages still in the caller's memory as iovecs the
 * worker copies (the call waits for that before it returns: end_call()). */
static int submit_pages(ms_writer *w)
{
    msi_job *j;
    int rc;
    while (!(j = msi_pool_slot(w->pool))) /* all busy: write the oldest */
        if ((rc = write_job(w, msi_pool_oldest(w->pool))))
            return rc;
    size_t first = 0;
    if (w->first_borrowed) {
        /* The stage is the writer's copy already (copy_segment, secure):
         * the job takes the buffer and leaves its previous one to the
         * writer, which is one pass over the data fewer on this thread. */
        uint8_t *spare = j->data.data;
        size_t spare_cap = j->data.cap;
        j->data.data = w->stage;
        j->data.cap = w->stage_cap;
        j->data.len = w->seg[0].iov_len;
        w->stage = spare;
        w->stage_cap = spare_cap;
        first = 1;
    } else {
        j->data.len = 0;
    }
    size_t n = w->nseg - first;
    if (msi_buf_reserve(&j->data, w->data_bytes - j->data.len))
        return fail(w, MS_ENOMEM, "out of memory handing pages to a compression thread");
    if (n > j->src_cap) {
        struct iovec *v = msi_realloc(&w->alloc, j->src, n * sizeof *v);
        if (!v)
            return fail(w, MS_ENOMEM, "out of memory handing pages to a compression thread");
        j->src = v;
        j->src_cap = n;
    }
    if (n)
        memcpy(j->src, w->seg + first, n * sizeof *j->src);
    j->nsrc = n;
    j->region = (uint32_t)w->p_region;
    j->next = w->next;
    memcpy(j->ext, w->ext, (size_t)w->next * sizeof *w->ext);
    j->prev = chain_on(w) ? w->win_job : -1;
    w->win_job = msi_pool_index(w->pool, j);
    msi_pool_submit(w->pool, j);
    return MS_OK;
}

/* Single thread, ZSTD_WINDOW: keeps the data of the record just written as
 * the next one's window; the stage's buffer changes hands, caller memory
 * (stable_memory) is copied. */
static int keep_window(ms_writer *w)
{
    if (w->nseg == 1 && w->seg[0].iov_base == w->stage) {
        uint8_t *spare = w->win.data;
        size_t spare_cap = w->win.cap;
        w->win.data = w->stage;
        w->win.cap = w->stage_cap;
        w->win.len = w->data_bytes;
        w->stage = spare;
        w->stage_cap = spare_cap;
        return MS_OK;
    }
    w->win.len = 0;
    if (msi_buf_reserve(&w->win, w->data_bytes))
        return fail(w, MS_ENOMEM, "out of memory keeping the zstd window");
    for (size_t i = 0; i < w->nseg; i++)
        msi_buf_append(&w->win, w->seg[i].iov_base, w->seg[i].iov_len); /* reserved */
    return MS_OK;
}

/* Writes the pending batch as one PAGES record, compressed on this thread
 * or handed to the workers. MS_EAGAIN leaves the batch pending. */
static int emit_pages(ms_writer *w)
{
    int rc;
    if (!w->pending)
        return MS_OK;
    if ((rc = emit_regions(w)) || (rc = push(w)))
        return rc;
    if (w->pool && w->data_bytes > 0) {
        rc = submit_pages(w);
    } else {
        /* Batches with the workers precede this one. */
        if ((rc = drain(w)) || (rc = push(w)))
            return rc;
        const msi_buf *z = NULL;
        bool windowed = false;
        if (w->level > 0 && w->data_bytes > 0) {
            windowed = chain_on(w);
            rc = msi_zstd_compress(&w->cctx, w->level, w->seg, (int)w->nseg, w->data_bytes,
                                   windowed ? w->win.data : NULL, windowed ? w->win.len : 0,
                                   &w->zbuf);
            if (rc)
                return fail(w, rc, "zstd compression of %zu bytes failed", w->data_bytes);
            z = &w->zbuf;
        }
        rc = write_pages(w, w->p_region, w->ext, w->next, w->seg, w->nseg, w->data_bytes, z,
                         windowed);
        if (!rc && w->window && w->data_bytes > 0)
            rc = keep_window(w);
    }
    if (rc)
        return rc;
    w->pending = false;
    w->closing = false;
    w->next = 0;
    w->nseg = w->first_borrowed = 0;
    w->data_bytes = 0;
    return MS_OK;
}

/* ------------------------------------------------------------- page batches */

/* Makes the stage hold at least @cap bytes, keeping its contents. */
static int stage_reserve(ms_writer *w, size_t cap)
{
    if (cap <= w->stage_cap)
        return MS_OK;
    uint8_t *st = msi_realloc(&w->alloc, w->stage, cap);
    if (!st)
        return fail(w, MS_ENOMEM, "out of memory staging pages");
    w->stage = st;
    w->stage_cap = cap;
    return MS_OK;
}

/* Copies @p len bytes of page data into the stage, the batch's only
 * segment: the checksum and the output then see one and the same copy,
 * whatever the guest writes meanwhile. */
static int copy_segment(ms_writer *w, const uint8_t *p, size_t len)
{
    size_t staged = w->nseg ? w->seg[0].iov_len : 0;
    /* batch_bytes, or one page of a region whose pages are larger */
    if (staged + len > w->stage_cap &&
        stage_reserve(w, staged + len > w->batch_bytes ? staged + len : w->batch_bytes))
        return w->status;
    if (w->seg_cap == 0) {
        if (!(w->seg = msi_alloc(&w->alloc, 64 * sizeof *w->seg)))
            return fail(w, MS_ENOMEM, "out of memory batching pages");
        w->seg_cap = 64;
    }
    memcpy(w->stage + staged, p, len);
    w->seg[0].iov_base = w->stage;
    w->seg[0].iov_len = staged + len;
    w->nseg = w->first_borrowed = 1;
    w->data_bytes += len;
    w->copied_in_call = true;
    return MS_OK;
}

static int add_segment(ms_writer *w, const uint8_t *p, size_t len)
{
    if (!w->borrow)
        return copy_segment(w, p, len);
    /* Contiguous caller memory extends the last segment; the staged copy is
     * never extended, since caller memory that happens to follow it is not
     * part of it. */
    if (w->nseg > w->first_borrowed) {
        struct iovec *last = &w->seg[w->nseg - 1];
        if ((const uint8_t *)last->iov_base + last->iov_len == p) {
            last->iov_len += len;
            w->data_bytes += len;
            return MS_OK;
        }
    }
    if (w->nseg == w->seg_cap) {
        size_t cap = w->seg_cap ? w->seg_cap * 2 : 64;
        struct iovec *s = msi_realloc(&w->alloc, w->seg, cap * sizeof *s);
        if (!s)
            return fail(w, MS_ENOMEM, "out of memory batching pages");
        w->seg = s;
        w->seg_cap = cap;
    }
    w->seg[w->nseg].iov_base = (void *)(uintptr_t)p;
    w->seg[w->nseg].iov_len = len;
    w->nseg++;
    w->data_bytes += len;
    return MS_OK;
}

/* The argument an extent that continues @x must have: IN_PLACE and
 * DUPLICATE references advance with the pages, every other argument
 * repeats. */
static uint64_t continued_arg(const ms_extent *x, uint32_t ps)
{
    if (x->state == MS_PAGE_IN_PLACE)
        return x->arg + (uint64_t)x->count * ps;
    if (x->state == MS_PAGE_DUPLICATE)
        return x->arg + x->count;
    return x->arg;
}

/* Whether the writer looks for duplicates of region @ri's pages. */
static bool dedups(const ms_writer *w, size_t ri)
{
    return w->dedup && w->regions[ri].page_size == w->hdr.page_size;
}

/* Remembers @n DATA pages of region @ri from @idx, as they went out: the
 * writer's copy at @p (or the caller's stable memory). */
static void remember(ms_writer *w, size_t ri, uint64_t idx, uint64_t n, const uint8_t *p)
{
    const uint32_t ps = w->regions[ri].page_size;
    for (uint64_t i = 0; i < n; i++, p += ps) {
        bool known = w->dh_valid && w->dh_region == ri && w->dh_page == idx + i;
        msi_dedup_insert(w->dedup, (uint32_t)ri, idx + i, p,
                         known ? w->dh : msi_dedup_hash(w->dedup, p));
    }
}

/* Adds @n pages in @state with argument @arg (of the first page) starting
 * at page @idx of region @ri; DATA pages' bytes start at @p and are
 * contiguous. w->resume follows the pages taken, for MS_EAGAIN. */
static int add_run(ms_writer *w, size_t ri, uint64_t idx, uint64_t n, uint8_t state,
                   uint64_t arg, const uint8_t *p)
{
    const uint32_t ps = w->regions[ri].page_size;
    int rc;
    while (n > 0) {
        ms_extent *last = w->next ? &w->ext[w->next - 1] : NULL;
        if (w->pending &&
            (w->closing || w->p_region != ri || (last && idx < last->first + last->count)))
            if ((rc = emit_pages(w)))
                return rc;
        if (!w->pending) {
            w->pending = true;
            w->p_region = ri;
            last = NULL;
        }
        uint64_t take = n;
        if (state == MS_PAGE_DATA) {
            size_t room = w->data_bytes < w->batch_bytes ? (w->batch_bytes - w->data_bytes) / ps
                                                         : 0;
            if (room == 0 && w->data_bytes == 0)
                room = 1; /* a record always holds at least one page */
            if (room == 0) {
                if ((rc = emit_pages(w)))
                    return rc;
                continue;
            }
            if (take > room)
                take = room;
        }
        /* A DUPLICATE extent's sources stay clear of its own pages (FORMAT.md
         * section 6.2): no longer than the distance between the two. */
        uint64_t dist = state != MS_PAGE_DUPLICATE ? UINT64_MAX : arg > idx ? arg - idx : idx - arg;
        if (take > dist)
            take = dist;
        bool merge = last && last->state == state && last->first + last->count == idx &&
                     last->count < UINT32_MAX && continued_arg(last, ps) == arg &&
                     last->count < dist;
        if (!merge && w->next == MAX_EXTENTS) {
            if ((rc = emit_pages(w)))
                return rc;
            continue;
        }
        if (merge) {
            if (take > UINT32_MAX - last->count)
                take = UINT32_MAX - last->count;
            if (take > dist - last->count)
                take = dist - last->count;
            last->count += (uint32_t)take;
        } else {
            if (take > UINT32_MAX)
                take = UINT32_MAX;
            w->ext[w->next++] = (ms_extent){.first = idx, .count = (uint32_t)take,
                                            .state = state, .arg = arg};
        }
        if (state == MS_PAGE_DATA) {
            if ((rc = add_segment(w, p, (size_t)take * ps)))
                return rc;
            if (dedups(w, ri))
                remember(w, ri, idx, take,
                         w->borrow ? p : w->stage + w->seg[0].iov_len - (size_t)take * ps);
            p += (size_t)take * ps;
        }
        if (state == MS_PAGE_IN_PLACE)
            arg += take * ps;
        if (state == MS_PAGE_DUPLICATE)
            arg += take;
        idx += take;
        n -= take;
        w->resume = idx;
    }
    return MS_OK;
}

/* stable_memory: copies the pending batch's segments that point at the
 * caller's memory into the stage, so that nothing points there once the
 * call returns. */
static int secure(ms_writer *w)
{
    if (!w->borrow || !w->pending || w->nseg == w->first_borrowed)
        return MS_OK;
    size_t staged = w->first_borrowed ? w->seg[0].iov_len : 0;
    if (stage_reserve(w, w->data_bytes > w->batch_bytes ? w->data_bytes : w->batch_bytes))
        return w->status;
    for (size_t i = w->first_borrowed; i < w->nseg; i++) {
        memcpy(w->stage + staged, w->seg[i].iov_base, w->seg[i].iov_len);
        staged += w->seg[i].iov_len;
    }
    w->seg[0].iov_base = w->stage;
    w->seg[0].iov_len = staged;
    w->nseg = w->first_borrowed = 1;
    return MS_OK;
}

/* At the end of a data call: no pending segment may point at the caller's
 * memory; write a large batch out, copy a small one aside. The decision is
 * kept in `closing` across MS_EAGAIN. */
static int settle(ms_writer *w)
{
    if (!w->closing) {
        bool fresh = w->copied_in_call;
        w->copied_in_call = false;
        if (!w->pending)
            return MS_OK;
        if (!w->borrow) {
            /* Everything is copied already; end records where stable_memory
             * would, so that both write the same stream. */
            if (!fresh || w->data_bytes < w->batch_bytes / 2)
                return MS_OK;
        } else {
            if (w->nseg == w->first_borrowed)
                return MS_OK;
            if (w->data_bytes < w->batch_bytes / 2)
                return secure(w);
        }
        w->closing = true;
    }
    return emit_pages(w);
}

/* Starts data call @c, or goes on with it when it is the one that returned
 * MS_EAGAIN: *from is the first page to take. Any other call then is
 * refused. */
static int begin_call(ms_writer *w, const data_call *c, uint64_t *from)
{
    const data_call *o = &w->call;
    if (!o->name) {
        if (w->is_part && !w->any_round)
            return fail(w, MS_EINVAL,
                        "%s() before the first round: a part of a migration in "
                        "parts sends pages only inside rounds (start round 0 first)",
                        c->name);
        w->call = *c;
        w->resume = *from = c->first;
        return MS_OK;
    }
    if (strcmp(o->name, c->name) || o->region != c->region || o->first != c->first ||
        o->count != c->count || o->arg != c->arg || o->p1 != c->p1 || o->p2 != c->p2 ||
        o->n != c->n)
        return other_call(w, c->name);
    *from = w->resume;
    return MS_OK;
}

/* Ends a data call with status @rc; MS_EAGAIN keeps it for the repeat.
 * Whatever the status, no worker reads the caller's memory after this. */
static int end_call(ms_writer *w, int rc)
{
    if (rc == MS_EAGAIN) {
        int s = secure(w);
        rc = s ? s : MS_EAGAIN;
    } else {
        w->call.name = NULL;
    }
    if (w->pool && w->borrow)
        msi_pool_wait_copied(w->pool);
    return rc;
}

/* The state and argument of a page, given whether it is one repeated
 * 8-byte @word (in memory order): ZERO or (with the FILL feature) FILL;
 * anything else is DATA. */
static uint8_t classify(const ms_writer *w, bool uniform, uint64_t word, uint64_t *arg)
{
    *arg = 0;
    if (!uniform)
        return MS_PAGE_DATA;
    if (word == 0)
        return MS_PAGE_ZERO;
    if (!(w->features & MS_FEATURE_FILL))
        return MS_PAGE_DATA;
    uint8_t b[8];
    memcpy(b, &word, sizeof b);
    *arg = msi_get64(b); /* the wire's little-endian reading of the word */
    return MS_PAGE_FILL;
}

/* Classifies page @idx of region @ri at @p, which is about to be sent:
 * from scan @s's entry @k when a worker classified it (msi_scan), else
 * here. The duplicate table forgets the page's earlier copy, and a DATA
 * page whose bytes it holds under another page becomes a DUPLICATE of
 * that page (FORMAT.md section 6.2). */
static uint8_t classify_page(ms_writer *w, size_t ri, uint64_t idx, const uint8_t *p,
                             const msi_scan *s, size_t k, uint64_t *arg)
{
    const uint32_t ps = w->regions[ri].page_size;
    uint64_t word = 0;
    bool uniform = s ? s->uniform[k] : msi_page_uniform(p, ps, &word);
    if (s)
        word = s->val[k];
    uint8_t state = classify(w, uniform, word, arg);
    if (!dedups(w, ri))
        return state;
    msi_dedup_forget(w->dedup, (uint32_t)ri, idx, 1);
    w->dh_valid = state == MS_PAGE_DATA;
    if (!w->dh_valid)
        return state;
    w->dh_region = ri;
    w->dh_page = idx;
    w->dh = s && s->hash && !uniform ? s->val[k] : msi_dedup_hash(w->dedup, p);
    if (msi_dedup_find(w->dedup, (uint32_t)ri, idx, p, w->dh, arg)) {
        w->dh_valid = false;
        return MS_PAGE_DUPLICATE;
    }
    return state;
}

/* Adds @n pages of region @ri from @p, page @idx on, each classified once
 * (by scan @s, covering exactly these pages, when not NULL), one add_run()
 * per run of pages with the same state and argument (a DUPLICATE run's
 * sources advance with its pages). */
static int put_span(ms_writer *w, size_t ri, uint64_t idx, size_t n, const uint8_t *p,
                    const msi_scan *s)
{
    const uint32_t ps = w->regions[ri].page_size;
    uint64_t arg = 0, next_arg = 0;
    uint8_t state = n ? classify_page(w, ri, idx, p, s, 0, &arg) : 0, next = 0;
    /* With duplicates, each DATA page joins the batch (and the table)
     * before the next page is looked up, so that a page right after its
     * twin finds it; add_run() still merges the pages into one extent. */
    const bool one_by_one = dedups(w, ri);
    size_t k = 0;
    while (k < n) {
        size_t j = k + 1;
        bool looked = false; /* page j is classified into next, next_arg */
        if (!(one_by_one && state == MS_PAGE_DATA)) {
            while (j < n) {
                next = classify_page(w, ri, idx + j, p + j * ps, s, j, &next_arg);
                looked = true;
                if (next != state ||
                    next_arg != (state == MS_PAGE_DUPLICATE ? arg + (j - k) : arg))
                    break;
                j++;
                looked = false;
            }
        }
        int rc = add_run(w, ri, idx + k, j - k, state, arg, p + k * ps);
        if (rc)
            return rc;
        k = j;
        if (k < n && !looked) {
            state = classify_page(w, ri, idx + k, p + k * ps, s, k, &arg);
        } else {
            state = next;
            arg = next_arg;
        }
    }
    return MS_OK;
}

/* Gives the scans their arrays, once. */
static int scans_ready(ms_writer *w)
{
    for (unsigned i = 0; i < SCAN_AHEAD; i++) {
        msi_scan *s = &w->scans[i];
        if (s->uniform)
            continue;
        s->uniform = msi_alloc(&w->alloc, SCAN_PAGES);
        s->val = msi_calloc(&w->alloc, SCAN_PAGES, sizeof *s->val);
        if (!s->uniform || !s->val)
            return fail(w, MS_ENOMEM, "out of memory classifying pages");
    }
    return MS_OK;
}

/* put_span() over @n pages of region @ri from @p, page @idx on. With
 * workers and enough pages, the workers classify spans of SCAN_BYTES up
 * to SCAN_AHEAD spans ahead while this thread batches the ones before:
 * the stream is the same (a span boundary is no boundary of anything in
 * it, see add_run()), the calling thread is left the ordering. */
static int put_memory(ms_writer *w, size_t ri, uint64_t idx, size_t n, const uint8_t *p)
{
    const uint32_t ps = w->regions[ri].page_size;
    size_t span = SCAN_BYTES / ps;
    if (span > SCAN_PAGES)
        span = SCAN_PAGES;
    if (span == 0)
        span = 1;
    if (!w->pool || n < 2 * span)
        return put_span(w, ri, idx, n, p, NULL);
    int rc = scans_ready(w);
    if (rc)
        return rc;
    const bool hash = dedups(w, ri);
    size_t queued = 0, done = 0;
    unsigned head = 0, inflight = 0;
    while (done < n) {
        while (inflight < SCAN_AHEAD && queued < n) {
            msi_scan *s = &w->scans[(head + inflight) % SCAN_AHEAD];
            s->p = p + queued * ps;
            s->n = n - queued < span ? n - queued : span;
            s->ps = ps;
            s->hash = hash;
            msi_pool_scan_submit(w->pool, s);
            queued += s->n;
            inflight++;
        }
        msi_scan *s = &w->scans[head];
        msi_pool_scan_wait(w->pool, s);
        head = (head + 1) % SCAN_AHEAD;
        inflight--;
        if ((rc = put_span(w, ri, idx + done, s->n, s->p, s)))
            break;
        done += s->n;
    }
    /* Whatever happened, no worker reads the caller's memory after this. */
    for (; inflight; inflight--, head = (head + 1) % SCAN_AHEAD)
        msi_pool_scan_wait(w->pool, &w->scans[head]);
    return rc;
}

static int find_region(ms_writer *w, uint32_t id, uint64_t first, uint64_t count, size_t *ri)
{
    for (size_t i = 0; i < w->nregions; i++) {
        if (w->regions[i].id != id)
            continue;
        uint64_t pages = w->regions[i].size / w->regions[i].page_size;
        if (first > pages || count > pages - first)
            return fail(w, MS_EINVAL, "pages %llu..+%llu lie outside region %u \"%s\" (%llu "
                        "pages)", (unsigned long long)first, (unsigned long long)count, id,
                        w->regions[i].name, (unsigned long long)pages);
        *ri = i;
        return MS_OK;
    }
    return fail(w, MS_EINVAL, "region %u was not declared with ms_writer_add_region", id);
}

/* ---------------------------------------------------------------- the API */

void ms_writer_options_init(ms_writer_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->page_size = 4096;
    o->batch_bytes = DEFAULT_BATCH;
    o->max_cbor_depth = MS_DEFAULT_CBOR_DEPTH;
}

/* Why @o cannot be used, or NULL. */
static const char *options_problem(const ms_writer_options *o)
{
    if (!msi_is_pow2(o->page_size) || o->page_size < MS_MIN_PAGE_SIZE ||
        o->page_size > MS_MAX_BASE_PAGE_SIZE)
        return "page_size must be a power of two from 4096 to 65536";
    if (o->compress_level < 0 || o->compress_level > 19)
        return "compress_level must be 0 (off) to 19";
    if (o->threads > MAX_THREADS)
        return "threads must be at most 64";
    if (o->dedup_pages > (1u << 22))
        return "dedup_pages must be at most 2^22";
    if (o->max_cbor_depth > MSI_CBOR_MAX_DEPTH)
        return "max_cbor_depth exceeds the format's 256";
    if (o->features & ~(uint64_t)MSI_KNOWN_REQUIRED_FEATURES)
        return "features holds bits this library does not define";
    if ((o->features & MS_FEATURE_PARTS) && !o->part)
        return "features holds PARTS, which only part (the part the stream is) may set";
    if (o->part && (o->features & MS_FEATURE_DUPLICATES))
        return "features holds DUPLICATES, which a part of a migration in parts may not use "
               "(FORMAT.md section 6.2)";
    if (o->part && msi_part_check(o->part))
        return msi_part_check(o->part);
    if (o->writer_name && strlen(o->writer_name) > MS_WRITER_FIELD_LEN)
        return "writer_name is longer than 32 bytes";
    if (o->writer_version && strlen(o->writer_version) > MS_WRITER_FIELD_LEN)
        return "writer_version is longer than 32 bytes";
    if (o->machine && (!*o->machine || strlen(o->machine) > MS_MAX_NAME_LEN ||
                       !msi_text_ok((const uint8_t *)o->machine, strlen(o->machine))))
        return "machine must be 1 to 255 bytes of UTF-8";
    if (o->description && (!*o->description || strlen(o->description) > 65535 ||
                           !msi_text_ok((const uint8_t *)o->description, strlen(o->description))))
        return "description must be 1 to 65535 bytes of UTF-8";
    return NULL;
}

/* @bad_arg: why the other arguments cannot be used, or NULL. */
static ms_writer *writer_new(const ms_writer_options *opts, ms_write_fn fn,
                             ms_write_some_fn some, void *ctx, int fd, bool nonblocking,
                             const char *bad_arg)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    const char *why = NULL;
    if (opts)
        why = msi_struct_take(&o, MSI_WRITER_OPTIONS_END, opts, opts->struct_size);
    if (!why)
        why = options_problem(&o);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_writer *w = msi_calloc(&a, 1, sizeof *w);
    if (!w)
        return NULL;
    w->magic = WRITER_MAGIC;
    w->alloc = a;
    w->fn = fn;
    w->some = some;
    w->ctx = ctx;
    w->fd = fd;
    w->nonblocking = nonblocking;
    w->wait_ms = -1;
    w->start_ns = now_ns();
    msi_buf_init(&w->out, &w->alloc);
    msi_buf_init(&w->back, &w->alloc);
    msi_buf_init(&w->scratch, &w->alloc);
    msi_buf_init(&w->zbuf, &w->alloc);
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why)
        return fail(w, MS_EINVAL, "invalid writer options: %s", why), w;
    if (bad_arg)
        return fail(w, MS_EINVAL, "invalid argument: %s", bad_arg), w;
    const char *name = o.writer_name ? o.writer_name : "";
    const char *version = o.writer_version ? o.writer_version : "";
    w->level = o.compress_level;
    w->max_depth = o.max_cbor_depth ? o.max_cbor_depth : MS_DEFAULT_CBOR_DEPTH;
    w->batch_bytes = o.batch_bytes ? o.batch_bytes : DEFAULT_BATCH;
    if (w->batch_bytes > MAX_BATCH)
        w->batch_bytes = MAX_BATCH;
    if (w->batch_bytes < o.page_size)
        w->batch_bytes = o.page_size;
    w->ext = msi_calloc(&w->alloc, MAX_EXTENTS, sizeof *w->ext);
    w->hash = msi_hash_state_new();
    w->window = (o.features & MS_FEATURE_ZSTD_WINDOW) && w->level > 0;
    msi_buf_init(&w->win, &w->alloc);
    /* Workers only help when there is compression to do. */
    if (o.threads > 1 && w->level > 0 &&
        !(w->pool = msi_pool_new(&w->alloc, o.threads, w->level, MAX_EXTENTS, w->window))) {
        ms_writer_free(w);
        return NULL;
    }
    if ((o.features & MS_FEATURE_DUPLICATES) &&
        !(w->dedup = msi_dedup_new(&w->alloc, o.dedup_pages ? o.dedup_pages
                                                            : MS_WRITER_DEFAULT_DEDUP_PAGES,
                                   o.page_size))) {
        ms_writer_free(w);
        return NULL;
    }

    w->features = o.features | (o.part ? MS_FEATURE_PARTS : 0);
    w->is_part = o.part != NULL;
    w->stable = o.stable_memory;
    /* Workers copy the pages of their batches from the caller's memory,
     * unless the duplicate table needs the copy first: it must remember a
     * page's bytes as they went out, which only the writer's copy is. */
    w->borrow = w->stable || (w->pool && !w->dedup);
    if (o.max_bandwidth) {
        w->rate = (double)o.max_bandwidth;
        w->burst = w->rate / 100 > 65536 ? w->rate / 100 : 65536;
        w->tokens = w->burst;
        w->refill_ns = w->start_ns;
    }
    w->hdr.major = MS_FORMAT_MAJOR;
    w->hdr.minor = msi_minor_for(w->features);
    w->hdr.required_features = w->features;
    w->hdr.page_size = o.page_size;
    memcpy(w->hdr.writer_name, name, strlen(name) + 1);
    memcpy(w->hdr.writer_version, version, strlen(version) + 1);
    uint8_t *pre = msi_buf_grow(&w->out, MSI_PREAMBLE_SIZE);
    if (!w->ext || !w->hash || !pre) {
        ms_writer_free(w);
        return NULL;
    }
    msi_preamble_encode(&w->hdr, pre);
    w->chain = w->hdr.checksum;
    /* A part names itself first (FORMAT.md section 4.3): PART is record 0,
     * INFO comes after it. */
    if (o.part && (msi_part_encode(&w->scratch, o.part) ||
                   put_record(w, MS_REC_PART, MS_RECORD_MUST_UNDERSTAND))) {
        ms_writer_free(w);
        return NULL;
    }
    if (o.machine || o.description) {
        if (msi_info_encode(&w->scratch, o.machine, o.description) ||
            put_record(w, MS_REC_INFO, 0)) {
            ms_writer_free(w);
            return NULL;
        }
    }
    /* From here on: no progress call before the caller has its writer. */
    w->progress = o.progress;
    w->progress_ctx = o.progress_ctx;
    w->progress_records = o.progress_records;
    w->progress_ms = o.progress_ms;
    w->progress_last_ns = w->start_ns;
    return w;
}

ms_writer *ms_writer_new(const ms_writer_options *opts, ms_write_fn fn, void *ctx)
{
    return writer_new(opts, fn, NULL, ctx, -1, false, fn ? NULL : "no output callback");
}

ms_writer *ms_writer_new_some(const ms_writer_options *opts, ms_write_some_fn fn, void *ctx)
{
    return writer_new(opts, NULL, fn, ctx, -1, true, fn ? NULL : "no output callback");
}

ms_writer *ms_writer_new_fd(const ms_writer_options *opts, int fd)
{
    /* Asked once: sockets get MSG_NOSIGNAL (fdio.h). A blocking descriptor
     * takes everything, a non-blocking one what it can. */
    ms_write_some_fn some = fd >= 0 && msi_fd_is_socket(fd) ? msi_fd_send_some
                                                             : msi_fd_writev_some;
    return writer_new(opts, NULL, some, msi_fd_ctx(fd), fd, fd >= 0 && msi_fd_is_nonblocking(fd),
                      fd < 0 ? "negative file descriptor" : NULL);
}

void ms_writer_free(ms_writer *w)
{
    if (!w || w->magic != WRITER_MAGIC)
        return;
    for (size_t i = 0; i < w->nregions; i++)
        msi_free(&w->alloc, (void *)w->regions[i].name);
    msi_free(&w->alloc, w->regions);
    msi_free(&w->alloc, w->ov);
    msi_free(&w->alloc, w->ext);
    msi_free(&w->alloc, w->seg);
    msi_free(&w->alloc, w->stage);
    msi_buf_free(&w->out);
    msi_buf_free(&w->back);
    msi_buf_free(&w->scratch);
    msi_buf_free(&w->zbuf);
    msi_pool_free(w->pool);
    for (unsigned i = 0; i < SCAN_AHEAD; i++) {
        msi_free(&w->alloc, w->scans[i].uniform);
        msi_free(&w->alloc, w->scans[i].val);
    }
    msi_dedup_free(w->dedup);
    msi_buf_free(&w->win);
    msi_zstd_free(w->cctx, NULL);
    msi_hash_state_free(w->hash);
    w->magic = 0;
    ms_allocator a = w->alloc;
    msi_free(&a, w);
}

int ms_writer_add_region(ms_writer *w, const ms_region *region)
{
    int rc = check_idle(w, "ms_writer_add_region");
    if (rc)
        return rc;
    if (!region || !region->name)
        return fail(w, MS_EINVAL, "region or its name is NULL");
    size_t nl = strlen(region->name);
    const char *why = msi_region_check(region, nl, w->hdr.page_size);
    if (!why && !msi_text_ok((const uint8_t *)region->name, nl))
        why = "name is not valid UTF-8";
    if (why)
        return fail(w, MS_EINVAL, "region %u \"%s\": %s", region->id, region->name, why);
    for (size_t i = 0; i < w->nregions; i++) {
        const ms_region *o = &w->regions[i];
        if (o->id == region->id)
            return fail(w, MS_EINVAL, "region id %u is declared twice", region->id);
        if (o->has_gpa && region->has_gpa && region->gpa <= o->gpa + (o->size - 1) &&
            o->gpa <= region->gpa + (region->size - 1))
            return fail(w, MS_EINVAL, "region %u \"%s\" overlaps region %u \"%s\" in "
                        "guest-physical memory", region->id, region->name, o->id, o->name);
    }
    if (w->nregions == w->regions_cap) {
        size_t cap = w->regions_cap ? w->regions_cap * 2 : 8;
        ms_region *r = msi_realloc(&w->alloc, w->regions, cap * sizeof *r);
        if (!r)
            return fail(w, MS_ENOMEM, "out of memory adding a region");
        w->regions = r;
        w->regions_cap = cap;
    }
    char *name = msi_strdup(&w->alloc, region->name);
    if (!name)
        return fail(w, MS_ENOMEM, "out of memory adding a region");
    w->regions[w->nregions] = *region;
    w->regions[w->nregions].name = name;
    w->nregions++;
    return MS_OK;
}

static int pages_call(ms_writer *w, const char *name, uint32_t region_id, uint64_t first,
                      const struct iovec *iov, int iovcnt)
{
    int rc = check(w);
    size_t ri = 0;
    if (rc)
        return rc;
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return fail(w, MS_EINVAL, "invalid iovec array");
    uint64_t count = 0;
    if ((rc = find_region(w, region_id, first, 0, &ri)))
        return rc;
    const uint32_t ps = w->regions[ri].page_size;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len % ps)
            return fail(w, MS_EINVAL, "iovec %d holds %zu bytes, not a multiple of the page "
                        "size %u", i, iov[i].iov_len, ps);
        if (iov[i].iov_len && !iov[i].iov_base)
            return fail(w, MS_EINVAL, "iovec %d has a NULL base", i);
        count += iov[i].iov_len / ps;
    }
    if ((rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    if (count == 0)
        return w->call.name ? other_call(w, name) : MS_OK;

    data_call c = {.name = name, .region = region_id, .first = first, .count = count,
                   .p1 = iov[0].iov_base, .n = iovcnt};
    uint64_t from = 0, idx = first;
    if ((rc = begin_call(w, &c, &from)))
        return rc;
    for (int i = 0; i < iovcnt && !rc; i++) {
        uint64_t n = iov[i].iov_len / ps;
        if (idx + n > from) { /* after MS_EAGAIN, pages before `from` are taken */
            uint64_t skip = from > idx ? from - idx : 0;
            rc = put_memory(w, ri, idx + skip, (size_t)(n - skip),
                            (const uint8_t *)iov[i].iov_base + skip * ps);
        }
        idx += n;
    }
    if (!rc)
        rc = settle(w);
    return end_call(w, rc);
}

int ms_writer_pages(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count,
                    const void *mem)
{
    struct iovec iov;
    int rc = check(w);
    size_t ri = 0;
    if (rc)
        return rc;
    if ((rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    if (count && !mem)
        return fail(w, MS_EINVAL, "memory pointer is NULL");
    uint64_t bytes;
    if (msi_mul_overflow(count, w->regions[ri].page_size, &bytes) || bytes > SIZE_MAX)
        return fail(w, MS_EINVAL, "page count %llu is too large", (unsigned long long)count);
    iov.iov_base = (void *)(uintptr_t)mem;
    iov.iov_len = (size_t)bytes;
    return pages_call(w, "ms_writer_pages", region_id, first, &iov, 1);
}

int ms_writer_pagesv(ms_writer *w, uint32_t region_id, uint64_t first, const struct iovec *iov,
                     int iovcnt)
{
    return pages_call(w, "ms_writer_pagesv", region_id, first, iov, iovcnt);
}

/* A run of @count pages in one state, from @first (ZERO, DISCARDED, FILL,
 * IN_PLACE): resumable like the other data calls. */
static int run_call(ms_writer *w, const char *name, size_t ri, uint64_t first, uint64_t count,
                    uint8_t state, uint64_t arg)
{
    if (count == 0)
        return w->call.name ? other_call(w, name) : MS_OK;
    data_call c = {.name = name, .region = w->regions[ri].id, .first = first, .count = count,
                   .arg = arg};
    uint64_t from = 0;
    int rc = begin_call(w, &c, &from);
    if (rc)
        return rc;
    if (dedups(w, ri))
        msi_dedup_forget(w->dedup, (uint32_t)ri, from, first + count - from);
    if (state == MS_PAGE_IN_PLACE) /* the reference of page `from` */
        arg += (from - first) * w->regions[ri].page_size;
    rc = add_run(w, ri, from, first + count - from, state, arg, NULL);
    return end_call(w, rc);
}

int ms_writer_zero_pages(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count)
{
    int rc = check(w);
    size_t ri = 0;
    if (rc)
        return rc;
    if ((rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    return run_call(w, "ms_writer_zero_pages", ri, first, count, MS_PAGE_ZERO, 0);
}

/* Checks that the stream may use @state (its feature bit was requested). */
static int need_feature(ms_writer *w, uint64_t bit, const char *what)
{
    if (w->features & bit)
        return MS_OK;
    return fail(w, MS_EINVAL, "%s needs required feature bit %d (%s), which "
                "ms_writer_options.features did not request", what, __builtin_ctzll(bit),
                ms_feature_name((unsigned)__builtin_ctzll(bit)));
}

int ms_writer_discard(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count)
{
    int rc = check(w);
    size_t ri = 0;
    if (rc || (rc = need_feature(w, MS_FEATURE_DISCARDED, "DISCARDED pages")) ||
        (rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    return run_call(w, "ms_writer_discard", ri, first, count, MS_PAGE_DISCARDED, 0);
}

int ms_writer_fill_pages(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count,
                         uint64_t word)
{
    if (word == 0)
        return ms_writer_zero_pages(w, region_id, first, count);
    int rc = check(w);
    size_t ri = 0;
    if (rc || (rc = need_feature(w, MS_FEATURE_FILL, "FILL pages")) ||
        (rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    return run_call(w, "ms_writer_fill_pages", ri, first, count, MS_PAGE_FILL, word);
}

int ms_writer_in_place(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count,
                       uint64_t ref)
{
    int rc = check(w);
    size_t ri = 0;
    if (rc || (rc = need_feature(w, MS_FEATURE_IN_PLACE, "IN_PLACE pages")) ||
        (rc = find_region(w, region_id, first, count, &ri)))
        return rc;
    const uint32_t ps = w->regions[ri].page_size;
    uint64_t last;
    if (count == 0)
        return run_call(w, "ms_writer_in_place", ri, first, 0, MS_PAGE_IN_PLACE, ref);
    if (ref % ps)
        return fail(w, MS_EINVAL, "in-place reference 0x%llx is not aligned to region %u's page "
                    "size %u", (unsigned long long)ref, region_id, ps);
    if (msi_mul_overflow(count, ps, &last) || msi_add_overflow(ref, last - 1, &last))
        return fail(w, MS_EINVAL, "in-place reference 0x%llx plus %llu pages wraps around 2^64",
                    (unsigned long long)ref, (unsigned long long)count);
    return run_call(w, "ms_writer_in_place", ri, first, count, MS_PAGE_IN_PLACE, ref);
}

int ms_writer_dirty(ms_writer *w, uint32_t region_id, const uint64_t *bitmap,
                    uint32_t granularity, const void *mem)
{
    int rc = check(w);
    size_t ri = 0;
    if (rc || (rc = find_region(w, region_id, 0, 0, &ri)))
        return rc;
    const ms_region *g = &w->regions[ri];
    if (!bitmap || !mem)
        return fail(w, MS_EINVAL, "dirty bitmap or memory pointer is NULL");
    if (!msi_is_pow2(granularity) || granularity < 4096 || granularity > (1u << 30))
        return fail(w, MS_EINVAL, "dirty granularity %u is not a power of two from 4096 to "
                    "2^30", granularity);
    const uint32_t ps = g->page_size;
    const uint64_t units = (g->size + granularity - 1) / granularity;
    const uint64_t words = (units + 63) / 64;
    const uint8_t *base = mem;
    data_call c = {.name = "ms_writer_dirty", .region = region_id, .arg = granularity,
                   .p1 = bitmap, .p2 = mem};
    uint64_t from = 0;
    if ((rc = begin_call(w, &c, &from)))
        return rc;
    /* After MS_EAGAIN, the pages before `from` are taken: the units of the
     * words before its own give none of the others. */
    uint64_t run_a = 0, run_b = 0; /* pages [run_a, run_b) are dirty, not yet added */
    for (uint64_t i = from * ps / granularity / 64; i < words && !rc; i++) {
        uint64_t bits = bitmap[i];
        if (!bits)
            continue; /* 64 clean units at a time: the common case */
        if (i == words - 1 && units % 64 && (bits >> (units % 64))) {
            rc = fail(w, MS_EINVAL, "dirty bitmap of region %u has bits set past its %llu "
                      "units of %u bytes", region_id, (unsigned long long)units, granularity);
            break;
        }
        while (bits) {
            uint64_t u = i * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            /* The unit's bytes, clipped to the region, in whole pages. */
            uint64_t lo = u * granularity, hi = lo + granularity;
            if (hi > g->size)
                hi = g->size;
            uint64_t pa = lo / ps, pb = (hi + ps - 1) / ps;
            if (pa <= run_b && run_b > run_a) {
                if (pb > run_b)
                    run_b = pb;
                continue;
            }
            if (run_a < from)
                run_a = from;
            if (run_b > run_a &&
                (rc = put_memory(w, ri, run_a, (size_t)(run_b - run_a), base + run_a * ps)))
                break;
            run_a = pa;
            run_b = pb;
        }
    }
    if (run_a < from)
        run_a = from;
    if (!rc && run_b > run_a)
        rc = put_memory(w, ri, run_a, (size_t)(run_b - run_a), base + run_a * ps);
    if (!rc)
        rc = settle(w);
    return end_call(w, rc);
}

int ms_writer_round(ms_writer *w, const ms_round *round)
{
    int rc = check_idle(w, "ms_writer_round");
    if (rc)
        return rc;
    if (!round)
        return fail(w, MS_EINVAL, "round is NULL");
    const char *why = msi_round_check(round);
    if (why)
        return fail(w, MS_EINVAL, "round %llu: %s", (unsigned long long)round->number, why);
    if (w->any_round && round->number <= w->last_round)
        return fail(w, MS_EINVAL, "round %llu follows round %llu: round numbers must increase",
                    (unsigned long long)round->number, (unsigned long long)w->last_round);
    if (!w->any_round && (w->pending || w->pages_records))
        return fail(w, MS_EINVAL, "pages were sent before the first round: in a stream with "
                    "rounds, every page belongs to one (start round 0 first)");
    /* The batch so far belongs to the previous round; regions declared so
     * far go out first, so that readers see them before any round. Room
     * first: then REGIONS and ROUND are queued together or not at all. */
    if ((rc = emit_pages(w)) || (rc = make_room(w)) || (rc = emit_regions(w)))
        return rc;
    w->scratch.len = 0;
    if (msi_round_encode(&w->scratch, round))
        return fail(w, MS_ENOMEM, "out of memory encoding ROUND");
    w->any_round = true;
    w->last_round = round->number;
    w->win_valid = false; /* a zstd window never spans a ROUND (FORMAT.md 6.3) */
    w->totals.rounds++;
    /* Not must-understand: a reader that skips rounds still gets the final
     * state right, since a later copy of a page wins anyway. */
    return put_record(w, MS_REC_ROUND, 0);
}

int ms_writer_overlay(ms_writer *w, const ms_overlay *o)
{
    int rc = check_idle(w, "ms_writer_overlay");
    char why[200];
    if (rc || (rc = need_feature(w, MS_FEATURE_OVERLAYS, "an overlay")))
        return rc;
    if (ms_overlay_check(o, why, sizeof why))
        return fail(w, MS_EINVAL, "%s", why);
    const char *kind = ms_overlay_kind_name(o->kind);
    uint64_t gpa = o->gfn * MS_OVERLAY_PAGE_SIZE;
    bool inside = false;
    for (size_t i = 0; i < w->nregions && !inside; i++) {
        const ms_region *g = &w->regions[i];
        inside = g->has_gpa && gpa >= g->gpa && gpa - g->gpa < g->size;
    }
    if (!inside)
        return fail(w, MS_EINVAL, "%s overlay at frame 0x%llx lies outside every region with a "
                    "guest-physical address", kind, (unsigned long long)o->gfn);
    for (size_t i = 0; i < w->nov; i++)
        if (w->ov[i].gfn == o->gfn && w->ov[i].kind == o->kind)
            return fail(w, MS_EINVAL, "frame 0x%llx already has a %s overlay",
                        (unsigned long long)o->gfn, kind);
    if (w->nov == w->ov_cap) {
        size_t cap = w->ov_cap ? w->ov_cap * 2 : 8;
        void *grown = msi_realloc(&w->alloc, w->ov, cap * sizeof *w->ov);
        if (!grown)
            return fail(w, MS_ENOMEM, "out of memory");
        w->ov = grown;
        w->ov_cap = cap;
    }
    /* The region must be declared before the overlay refers to it. */
    if ((rc = emit_pages(w)) || (rc = make_room(w)) || (rc = emit_regions(w)))
        return rc;
    w->scratch.len = 0;
    if (msi_overlays_encode(&w->scratch, o, 1))
        return fail(w, MS_ENOMEM, "out of memory encoding OVERLAY");
    w->ov[w->nov].gfn = o->gfn;
    w->ov[w->nov].kind = o->kind;
    w->nov++;
    w->totals.overlays++;
    return put_record(w, MS_REC_OVERLAY, MS_RECORD_MUST_UNDERSTAND);
}

int ms_writer_device(ms_writer *w, const char *path, uint32_t instance, const char *schema,
                     uint32_t version, const void *state, size_t state_size)
{
    int rc = check_idle(w, "ms_writer_device");
    msi_perr e;
    if (rc)
        return rc;
    if (!path || !schema || (!state && state_size))
        return fail(w, MS_EINVAL, "device path, schema or state is NULL");
    size_t pl = strlen(path), sl = strlen(schema);
    if (pl == 0 || pl > MS_MAX_PATH_LEN || !msi_text_ok((const uint8_t *)path, pl))
        return fail(w, MS_EINVAL, "device path \"%s\" is empty, longer than %u bytes or not "
                    "UTF-8", path, MS_MAX_PATH_LEN);
    if (sl == 0 || sl > MS_MAX_NAME_LEN || !msi_text_ok((const uint8_t *)schema, sl))
        return fail(w, MS_EINVAL, "device \"%s\": schema name is empty, longer than %u bytes "
                    "or not UTF-8", path, MS_MAX_NAME_LEN);
    if ((rc = msi_device_state_check(state, state_size, w->max_depth, &e)))
        return fail(w, rc, "device \"%s\": state at byte %zu: %s", path, e.at, e.msg);
    if ((rc = emit_pages(w)) || (rc = make_room(w)))
        return rc;
    w->scratch.len = 0;
    if (msi_device_encode(&w->scratch, path, instance, schema, version, state, state_size))
        return fail(w, MS_ENOMEM, "out of memory encoding device \"%s\"", path);
    w->totals.devices++;
    return put_record(w, MS_REC_DEVICE, MS_RECORD_MUST_UNDERSTAND);
}

int ms_writer_record(ms_writer *w, uint16_t type, uint16_t flags, const void *payload,
                     size_t size)
{
    int rc = check_idle(w, "ms_writer_record");
    if (rc)
        return rc;
    if (type == 0 || ms_record_type_name(type))
        return fail(w, MS_EINVAL, "record type %u is invalid or defined by the format (use its "
                    "own function)", type);
    if (flags & ~MS_RECORD_MUST_UNDERSTAND)
        return fail(w, MS_EINVAL, "reserved record flag bits 0x%04x", flags);
    if (!payload && size)
        return fail(w, MS_EINVAL, "payload is NULL");
    if (size > MS_MAX_RECORD_PAYLOAD)
        return fail(w, MS_ELIMIT, "payload of %zu bytes exceeds the format's %u-byte limit",
                    size, MS_MAX_RECORD_PAYLOAD);
    if ((rc = emit_pages(w)) || (rc = make_room(w)))
        return rc;
    w->scratch.len = 0;
    if (msi_buf_append(&w->scratch, payload, size))
        return fail(w, MS_ENOMEM, "out of memory");
    return put_record(w, type, flags);
}

/* check() for flush and finish, which go on after finish() queued END. */
static int check_ending(ms_writer *w, const char *what)
{
    if (!w || w->magic != WRITER_MAGIC)
        return MS_EINVAL;
    if (w->status)
        return w->status;
    if (w->finished)
        return MS_ESTATE;
    return w->call.name ? other_call(w, what) : MS_OK;
}

/* Everything queued to the output: MS_EAGAIN until it took it all. */
static int push_all(ms_writer *w)
{
    int rc;
    if ((rc = push(w)) || (rc = flush_out(w)))
        return rc;
    return push(w);
}

int ms_writer_flush(ms_writer *w)
{
    int rc = check_ending(w, "ms_writer_flush");
    if (rc)
        return rc;
    if ((rc = emit_pages(w)) || (rc = emit_regions(w)) || (rc = drain(w)))
        return rc;
    return push_all(w);
}

int ms_writer_finish(ms_writer *w, ms_totals *totals)
{
    int rc = check_ending(w, "ms_writer_finish");
    if (rc)
        return rc;
    if (!w->end_queued) {
        if ((rc = emit_pages(w)) || (rc = make_room(w)) || (rc = emit_regions(w)))
            return rc;
        w->totals.bytes = w->written + held(w);
        w->scratch.len = 0;
        if (msi_end_encode(&w->scratch, &w->totals))
            return fail(w, MS_ENOMEM, "out of memory encoding END");
        w->end_totals = w->totals;
        if ((rc = put_record(w, MS_REC_END, MS_RECORD_MUST_UNDERSTAND)))
            return rc;
        w->end_queued = true;
    }
    if ((rc = push_all(w)))
        return rc;
    w->finished = true;
    if (w->progress)
        w->progress(w->progress_ctx, fill_stats(w, now_ns()));
    if (totals)
        *totals = w->end_totals;
    return MS_OK;
}

uint64_t ms_writer_bytes_written(const ms_writer *w)
{
    return w && w->magic == WRITER_MAGIC ? w->written : 0;
}

const ms_writer_stats *ms_writer_get_stats(ms_writer *w)
{
    if (!w || w->magic != WRITER_MAGIC)
        return NULL;
    return fill_stats(w, now_ns());
}

int ms_writer_poll_timeout(const ms_writer *w)
{
    return w && w->magic == WRITER_MAGIC ? w->wait_ms : -1;
}

int ms_writer_status(const ms_writer *w)
{
    if (!w)
        return MS_ENOMEM; /* the only reason a constructor returns NULL */
    if (w->magic != WRITER_MAGIC)
        return MS_EINVAL;
    return w->status;
}

int ms_writer_io_error(const ms_writer *w, int *err)
{
    bool failed = w && w->magic == WRITER_MAGIC && w->status == MS_EIO;
    if (err)
        *err = failed ? w->io_errno : 0;
    return failed ? w->io_ret : 0;
}

const char *ms_writer_errmsg(const ms_writer *w)
{
    if (!w)
        return "out of memory creating the writer";
    if (w->magic != WRITER_MAGIC)
        return "invalid writer handle";
    return w->status ? w->msg : "";
}
