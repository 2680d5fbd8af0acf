/*
 * The writer's max_bandwidth and progress callback (writer.h): a limited
 * writer takes about the time the limit implies, sleeping when it blocks
 * and returning MS_EAGAIN with a poll timeout when it does not; the stream
 * is the unlimited writer's. The progress callback is called as often as
 * asked, sees counts that only grow, and its last call carries END's
 * totals, which ms_writer_get_stats() gives on demand too. These are loose
 * timing checks, not a benchmark.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "helpers.h"

#define PS 4096u
#define PAGES 2048u /* 8 MiB of random pages: 8 MiB of stream */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *guest(void)
{
    uint8_t *m = malloc((size_t)PAGES * PS);
    assert_non_null(m);
    uint64_t rng = 11;
    th_rand_fill(&rng, m, (size_t)PAGES * PS);
    return m;
}

/* Takes everything (or at most `most` bytes), and every `block_every`-th
 * call says it would block. */
typedef struct sink {
    th_buf buf;
    unsigned calls, block_every;
    size_t most;
} sink;

static ssize_t sink_some(void *ctx, const struct iovec *iov, int iovcnt)
{
    sink *s = ctx;
    if (s->block_every && ++s->calls % s->block_every == 0)
        return -EAGAIN;
    size_t took = 0;
    for (int i = 0; i < iovcnt && (!s->most || took < s->most); i++) {
        size_t n = iov[i].iov_len;
        if (s->most && n > s->most - took)
            n = s->most - took;
        th_buf_append(&s->buf, iov[i].iov_base, n);
        took += n;
    }
    return (ssize_t)took;
}

/* Writes the guest, repeating calls on MS_EAGAIN the way an event loop
 * would: poll() with the writer's timeout. Counts the waits of each kind. */
typedef struct waits {
    size_t output, limit;
    double limit_ms;
} waits;

#define REPEAT(w, wt, call)                                                                        \
    do {                                                                                           \
        int rc_;                                                                                   \
        while ((rc_ = (call)) == MS_EAGAIN) {                                                      \
            int t_ = ms_writer_poll_timeout(w);                                                    \
            if (t_ < 0) {                                                                          \
                (wt)->output++;                                                                    \
            } else {                                                                               \
                (wt)->limit++;                                                                     \
                (wt)->limit_ms += t_;                                                              \
                poll(NULL, 0, t_);                                                                 \
            }                                                                                      \
        }                                                                                          \
        assert_status(rc_, 0);                                                                     \
    } while (0)

static void write_guest(ms_writer *w, const uint8_t *mem, waits *wt, ms_totals *t)
{
    ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)PAGES * PS, .page_size = PS};
    REPEAT(w, wt, ms_writer_add_region(w, &r));
    REPEAT(w, wt, ms_writer_round(w, &(ms_round){.number = 0}));
    REPEAT(w, wt, ms_writer_pages(w, 0, 0, PAGES / 2, mem));
    static const uint8_t st[] = {0xa1, 0x01, 0x02};
    REPEAT(w, wt, ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, st, sizeof st));
    REPEAT(w, wt, ms_writer_round(w, &(ms_round){.number = 1}));
    REPEAT(w, wt, ms_writer_pages(w, 0, PAGES / 2, PAGES / 2, mem + (size_t)PAGES / 2 * PS));
    REPEAT(w, wt, ms_writer_zero_pages(w, 0, 0, 16));
    REPEAT(w, wt, ms_writer_finish(w, t));
}

static void test_bandwidth(void **state)
{
    (void)state;
    uint8_t *mem = guest();
    th_buf ref = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &ref);
    waits wt = {0};
    write_guest(w, mem, &wt, NULL);
    ms_writer_free(w);

    const uint64_t rate = 16u << 20; /* 16 MiB/s: the 8 MiB stream in about 0.5 s */
    const double expect = (double)ref.len / (double)rate;
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.max_bandwidth = rate;
        sink s = {.block_every = nonblocking ? 7 : 0};
        th_buf plain = {0};
        w = nonblocking ? ms_writer_new_some(&o, sink_some, &s)
                        : ms_writer_new(&o, th_sink_write, &plain);
        memset(&wt, 0, sizeof wt);
        double t0 = now_s();
        write_guest(w, mem, &wt, NULL);
        double took = now_s() - t0;
        const ms_writer_stats *st = ms_writer_get_stats(w);
        if (took < expect * 0.7 || took > expect * 3 + 0.5)
            fail_msg("%s writer: %zu bytes at %llu B/s took %.3f s, expected about %.3f s",
                     nonblocking ? "non-blocking" : "blocking", ref.len, (unsigned long long)rate,
                     took, expect);
        const th_buf *got = nonblocking ? &s.buf : &plain;
        assert_int_equal(got->len, ref.len);
        assert_memory_equal(got->data, ref.data, ref.len);
        if (nonblocking) {
            /* It never slept: it said how long to wait, and the caller did. */
            assert_int_equal(st->throttled_ns, 0);
            assert_true(wt.limit > 10);
            assert_true(wt.output > 0); /* the sink's own "would block": -1 */
            assert_true(wt.limit_ms / 1000 > expect * 0.5);
        } else {
            assert_int_equal(wt.limit + wt.output, 0);
            assert_true((double)st->throttled_ns / 1e9 > expect * 0.5);
        }
        ms_writer_free(w);
        th_buf_free(&plain);
        th_buf_free(&s.buf);
    }
    th_buf_free(&ref);
    free(mem);
}

/* ---------------------------------------------------------------- progress */

typedef struct progress_log {
    size_t calls, finished;
    ms_writer_stats last;
    ms_writer *w;
} progress_log;

static void on_progress(void *ctx, const ms_writer_stats *st)
{
    progress_log *p = ctx;
    if (p->calls) { /* counts only grow */
        assert_true(st->totals.records >= p->last.totals.records);
        assert_true(st->totals.bytes >= p->last.totals.bytes);
        assert_true(st->bytes_written >= p->last.bytes_written);
        assert_true(st->elapsed_ns >= p->last.elapsed_ns);
        for (int s = 0; s < MS_PAGE_STATE_SLOTS; s++)
            assert_true(st->totals.pages[s] >= p->last.totals.pages[s]);
    }
    if (!st->finished) /* then totals.bytes is where END starts */
        assert_int_equal(st->totals.bytes, st->bytes_written + st->bytes_held);
    if (p->w)
        assert_int_equal(ms_writer_bytes_written(p->w), st->bytes_written);
    p->calls++;
    p->finished += st->finished;
    p->last = *st;
}

static void check_final(const progress_log *p, const ms_totals *t, const th_buf *stream)
{
    assert_int_equal(p->finished, 1);
    assert_true(p->last.finished);
    assert_memory_equal(&p->last.totals, t, sizeof *t); /* END's totals, exactly */
    assert_int_equal(p->last.bytes_written, stream->len);
    assert_int_equal(p->last.bytes_held, 0);
    /* And what a reader finds in END. */
    ms_reader *r = ms_reader_new_memory(NULL, stream->data, stream->len);
    const ms_record *rec;
    ms_totals end = {0};
    while (ms_reader_next(r, &rec) > 0)
        if (rec->type == MS_REC_END)
            end = rec->totals;
    assert_status(ms_reader_status(r), 0);
    assert_memory_equal(&end, t, sizeof end);
    ms_reader_free(r);
}

static void test_progress(void **state)
{
    (void)state;
    uint8_t *mem = guest();
    static const struct {
        uint32_t records, ms;
        int level;
        unsigned threads;
    } cfg[] = {{0, 0, 0, 0}, {3, 0, 0, 0}, {0, 0, 1, 3}, {4, 0, 3, 2}};
    size_t every_record_calls = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.batch_bytes = 256 * 1024;
        o.compress_level = cfg[c].level;
        o.threads = cfg[c].threads;
        o.machine = "pc"; /* INFO: a record before the callback can be called */
        progress_log p = {0};
        o.progress = on_progress;
        o.progress_ctx = &p;
        o.progress_records = cfg[c].records;
        o.progress_ms = cfg[c].ms;
        th_buf out = {0};
        ms_writer *w = ms_writer_new(&o, th_sink_write, &out);
        p.w = w;
        waits wt = {0};
        ms_totals t;
        write_guest(w, mem, &wt, &t);
        check_final(&p, &t, &out);
        /* Every record but INFO and END gives a call, then the last one. */
        size_t records = (size_t)t.records - 1;
        if (cfg[c].records == 0)
            assert_int_equal(p.calls, records + 1);
        else
            assert_int_equal(p.calls, records / cfg[c].records + 1);
        if (c == 0)
            every_record_calls = p.calls;
        /* On demand: the same final numbers. */
        const ms_writer_stats *st = ms_writer_get_stats(w);
        assert_memory_equal(&st->totals, &t, sizeof t);
        assert_true(st->finished);
        ms_writer_free(w);
        th_buf_free(&out);
    }
    assert_true(every_record_calls > 30);
    assert_null(ms_writer_get_stats(NULL));
    free(mem);
}

/* progress_ms: at most one call per interval, in a run the limit makes
 * last about 0.5 s. */
static void test_progress_interval(void **state)
{
    (void)state;
    uint8_t *mem = guest();
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.batch_bytes = 64 * 1024; /* many records */
    o.max_bandwidth = 16u << 20;
    progress_log p = {0};
    o.progress = on_progress;
    o.progress_ctx = &p;
    o.progress_ms = 100;
    th_buf out = {0};
    ms_writer *w = ms_writer_new(&o, th_sink_write, &out);
    waits wt = {0};
    ms_totals t;
    double t0 = now_s();
    write_guest(w, mem, &wt, &t);
    double took = now_s() - t0;
    check_final(&p, &t, &out);
    /* t.records is about 130; calls at most one per 100 ms, plus the last. */
    if (p.calls < 2 || (double)p.calls > took * 10 + 2)
        fail_msg("%zu progress calls in %.3f s at one per 100 ms", p.calls, took);
    ms_writer_free(w);
    th_buf_free(&out);
    free(mem);
}

/* Non-blocking: the writer holds at most a record and the small records
 * queued with it, whatever the output takes. */
static void test_held_bounded(void **state)
{
    (void)state;
    uint8_t *mem = guest();
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.batch_bytes = 128 * 1024;
    sink s = {.block_every = 3, .most = 10000};
    ms_writer *w = ms_writer_new_some(&o, sink_some, &s);
    ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)PAGES * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    uint64_t most = 0;
    for (unsigned p = 0; p < PAGES; p += 16) {
        int rc;
        while ((rc = ms_writer_pages(w, 0, p, 16, mem + (size_t)p * PS)) == MS_EAGAIN) {
            uint64_t held = ms_writer_get_stats(w)->bytes_held;
            most = held > most ? held : most;
        }
        assert_status(rc, 0);
    }
    while (ms_writer_finish(w, NULL) == MS_EAGAIN)
        ;
    assert_status(ms_writer_status(w), 0);
    assert_true(most > 0);
    if (most > 128 * 1024 + 4096)
        fail_msg("the writer held %llu bytes", (unsigned long long)most);
    ms_writer_free(w);
    th_buf_free(&s.buf);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bandwidth),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_progress_interval),
        cmocka_unit_test(test_held_bounded),
    };
    return th_run_tests(tests);
}
