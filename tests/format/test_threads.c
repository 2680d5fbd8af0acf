/*
 * Compression on worker threads (ms_writer_options.threads): the stream
 * must be byte for byte the one the single-threaded writer makes, whatever
 * the batching, the calls in between (rounds, devices, regions) and the
 * number of threads; a failing output must stop it cleanly, and a writer
 * freed with batches in flight must not hang or leak. Also the writer
 * against memory that another process keeps changing (a running guest),
 * and the same stream whether it copies page data or not.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

#define PS 4096u
#define PAGES 1536u /* 6 MiB: several batches at every batch size below */

static uint8_t *guest(uint64_t seed)
{
    uint8_t *m = malloc((size_t)PAGES * PS);
    assert_non_null(m);
    uint64_t rng = seed;
    for (unsigned p = 0; p < PAGES; p++) {
        /* Compressible text, random data and zero pages in runs. */
        th_page_kind k = (p / 7) % 3 == 0 ? TH_PAGE_TEXT
                         : (p / 5) % 4 == 0 ? TH_PAGE_RANDOM
                                            : TH_PAGE_ZERO;
        th_make_page(m + (size_t)p * PS, PS, k, &rng);
    }
    return m;
}

/* One scripted migration: the calls a VMM makes, with a few of every kind
 * between batches. Returns the stream. */
static void migrate_with(th_buf *out, unsigned threads, int level, uint32_t batch, uint8_t *mem,
                         uint64_t extra)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.compress_level = level;
    o.batch_bytes = batch;
    o.threads = threads;
    o.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED | extra;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_non_null(w);
    assert_int_equal(ms_writer_status(w), 0);
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0,
                   .size = (uint64_t)PAGES * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, PAGES / 2, mem), 0);
    /* One page at a time: batches staged, not handed over, until full. */
    for (unsigned p = PAGES / 2; p < PAGES; p++)
        assert_int_equal(ms_writer_pages(w, 0, p, 1, mem + (size_t)p * PS), 0);
    static const uint8_t state[] = {0xa1, 0x01, 0x02};
    assert_int_equal(ms_writer_device(w, "dev", 0, "s", 1, state, sizeof state), 0);
    /* The guest changes; the caller reuses its memory at once. */
    uint64_t bits[PAGES / 64] = {0};
    for (unsigned p = 3; p < PAGES; p += 5) {
        mem[(size_t)p * PS + 17] ^= 0x5a;
        bits[p / 64] |= 1ull << (p % 64);
    }
    /* and one dirty run long enough for the workers to classify it */
    for (unsigned p = 100; p < 100 + 1100; p++)
        bits[p / 64] |= 1ull << (p % 64);
    ms_round r1 = {.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = PS};
    assert_int_equal(ms_writer_round(w, &r1), 0);
    assert_int_equal(ms_writer_dirty(w, 0, bits, PS, mem), 0);
    memset(mem, 0xee, PS); /* changed after the call: must not reach the stream */
    assert_int_equal(ms_writer_discard(w, 0, PAGES - 8, 8), 0);
    ms_region r2 = {.id = 1, .name = "late", .size = 64 * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &r2), 0);
    assert_int_equal(ms_writer_pages(w, 1, 0, 64, mem + PS), 0);
    /* Everything again in one call: large enough for the workers to
     * classify pages ahead of the calling thread (writer.c, SCAN_BYTES). */
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 2, .final = true}), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, PAGES, mem), 0);
    assert_int_equal(ms_writer_flush(w), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void migrate(th_buf *out, unsigned threads, int level, uint32_t batch, uint8_t *mem)
{
    migrate_with(out, threads, level, batch, mem, 0);
}

static void test_threads_identical(void **state)
{
    (void)state;
    static const uint32_t batches[] = {64 * 1024, 256 * 1024, 1u << 20};
    static const int levels[] = {1, 3};
    static const unsigned threads[] = {2, 3, 8};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
            uint8_t *mem = guest(b * 10 + l + 1);
            uint8_t *copy = malloc((size_t)PAGES * PS);
            assert_non_null(copy);
            memcpy(copy, mem, (size_t)PAGES * PS);
            th_buf one = {0};
            migrate(&one, 1, levels[l], batches[b], mem);
            for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                memcpy(mem, copy, (size_t)PAGES * PS);
                th_buf many = {0};
                migrate(&many, threads[t], levels[l], batches[b], mem);
                if (many.len != one.len || memcmp(many.data, one.data, one.len) != 0)
                    fail_msg("%u threads, level %d, batch %u: %zu bytes, single thread %zu, "
                             "streams differ", threads[t], levels[l], batches[b], many.len,
                             one.len);
                th_buf_free(&many);
            }
            /* The stream is valid and compressed some batches. */
            ms_reader *r = ms_reader_new_memory(NULL, one.data, one.len);
            const ms_record *rec;
            int rc, zstd = 0;
            while ((rc = ms_reader_next(r, &rec)) > 0)
                zstd += rec->type == MS_REC_PAGES && rec->pages.encoding == MS_ENCODING_ZSTD;
            assert_int_equal(rc, 0);
            assert_true(zstd > 0);
            ms_reader_free(r);
            th_buf_free(&one);
            free(mem);
            free(copy);
        }
    }
}

/* Format 1.3's DUPLICATE pages and windows: the workers hash pages for the
 * duplicate table ahead of the calling thread, which looks them up in
 * order, so the stream is still the single thread's. */
static void test_threads_identical_duplicates(void **state)
{
    (void)state;
    const uint64_t v13 = MS_FEATURE_DUPLICATES | MS_FEATURE_ZSTD_WINDOW;
    uint8_t *mem = guest(77);
    /* twins: every 9th page copies page 1 (TEXT) */
    for (unsigned p = 9; p < PAGES; p += 9)
        memcpy(mem + (size_t)p * PS, mem + PS, PS);
    for (unsigned p = 40; p < 60; p++) /* FILL pages */
        memset(mem + (size_t)p * PS, 0x3c, PS);
    uint8_t *copy = malloc((size_t)PAGES * PS);
    assert_non_null(copy);
    memcpy(copy, mem, (size_t)PAGES * PS);
    th_buf one = {0};
    migrate_with(&one, 1, 1, 1u << 20, mem, v13);
    for (unsigned t = 2; t <= 3; t++) {
        memcpy(mem, copy, (size_t)PAGES * PS);
        th_buf many = {0};
        migrate_with(&many, t, 1, 1u << 20, mem, v13);
        if (many.len != one.len || memcmp(many.data, one.data, one.len) != 0)
            fail_msg("%u threads with duplicates: %zu bytes, single thread %zu, streams differ",
                     t, many.len, one.len);
        th_buf_free(&many);
    }
    /* It holds DUPLICATE pages, and reads back. */
    ms_reader *r = ms_reader_new_memory(NULL, one.data, one.len);
    const ms_record *rec;
    int rc;
    uint64_t dups = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        if (rec->type == MS_REC_PAGES)
            for (uint32_t i = 0; i < rec->pages.extent_count; i++)
                if (rec->pages.extents[i].state == MS_PAGE_DUPLICATE)
                    dups += rec->pages.extents[i].count;
    assert_int_equal(rc, 0);
    assert_true(dups > 100);
    ms_reader_free(r);
    th_buf_free(&one);
    free(mem);
    free(copy);
}

/* Fails the @n-th output call. */
typedef struct failing {
    th_buf b;
    int calls, fail_at;
} failing;

static int failing_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    failing *f = ctx;
    if (f->calls++ == f->fail_at)
        return -5;
    return th_sink_write(&f->b, iov, iovcnt);
}

static void test_threads_output_failure(void **state)
{
    (void)state;
    uint8_t *mem = guest(99);
    for (int at = 0; at < 6; at++) {
        failing f = {.fail_at = at};
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.compress_level = 1;
        o.batch_bytes = 64 * 1024;
        o.threads = 4;
        ms_writer *w = ms_writer_new(&o, failing_write, &f);
        assert_non_null(w);
        ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)PAGES * PS, .page_size = PS};
        assert_int_equal(ms_writer_add_region(w, &r), 0);
        int rc = ms_writer_pages(w, 0, 0, PAGES, mem);
        if (rc == 0)
            rc = ms_writer_finish(w, NULL);
        assert_int_equal(rc, MS_EIO);
        assert_int_equal(ms_writer_status(w), MS_EIO);
        ms_writer_free(w); /* with batches in flight: joins, frees */
        th_buf_free(&f.b);
    }
    free(mem);
}

/* Freed before finishing, batches still with the workers. */
static void test_threads_free_in_flight(void **state)
{
    (void)state;
    uint8_t *mem = guest(7);
    th_buf out = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.compress_level = 3;
    o.batch_bytes = 64 * 1024;
    o.threads = 2;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &out);
    ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)PAGES * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, PAGES, mem), 0);
    ms_writer_free(w);
    th_buf_free(&out);
    free(mem);
}

static void test_threads_option_checked(void **state)
{
    (void)state;
    th_buf out = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.threads = 65;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &out);
    assert_non_null(w);
    assert_int_equal(ms_writer_status(w), MS_EINVAL);
    assert_non_null(strstr(ms_writer_errmsg(w), "threads"));
    ms_writer_free(w);
    th_buf_free(&out);
}

/* Writes @p mem in calls of @p call pages, then 5 single pages. */
static void write_in_calls(th_buf *out, bool stable, uint32_t batch, unsigned call,
                           const uint8_t *mem)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.batch_bytes = batch;
    o.stable_memory = stable;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_non_null(w);
    ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)PAGES * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    for (unsigned p = 0; p < PAGES; p += call) {
        unsigned n = PAGES - p < call ? PAGES - p : call;
        assert_int_equal(ms_writer_pages(w, 0, p, n, mem + (size_t)p * PS), 0);
    }
    for (unsigned p = 1; p < PAGES; p += PAGES / 5)
        assert_int_equal(ms_writer_pages(w, 0, p, 1, mem + (size_t)p * PS), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* Copying page data (the default) or not (stable_memory) changes where the
 * bytes come from, never the stream. */
static void test_threads_stable_identical(void **state)
{
    (void)state;
    uint8_t *mem = guest(5);
    static const uint32_t batches[] = {16 * 1024, 256 * 1024, 1u << 20};
    static const unsigned calls[] = {1, 3, 100, PAGES};
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
            th_buf copied = {0}, borrowed = {0};
            write_in_calls(&copied, false, batches[b], calls[c], mem);
            write_in_calls(&borrowed, true, batches[b], calls[c], mem);
            if (copied.len != borrowed.len || memcmp(copied.data, borrowed.data, copied.len))
                fail_msg("batch %u, %u pages per call: %zu bytes copying, %zu with "
                         "stable_memory, streams differ",
                         batches[b], calls[c], copied.len, borrowed.len);
            th_buf_free(&copied);
            th_buf_free(&borrowed);
        }
    }
    free(mem);
}

/*
 * A running guest: another process keeps rewriting the pages while the
 * writer reads them, with default options (stable_memory false). Each page
 * is copied once before it is checksummed, so every record reads back
 * valid, however the writes fall; the pages themselves may be torn, as in
 * any pre-copy round, for the next round to send again.
 */
static void test_threads_live_memory(void **state)
{
    (void)state;
    enum { LIVE_PAGES = 256 };
    const size_t size = (size_t)LIVE_PAGES * PS;
    uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    uint64_t rng = 11;
    th_rand_fill(&rng, mem, size);
    pid_t guest_pid = fork();
    assert_true(guest_pid >= 0);
    if (guest_pid == 0) {
        /* The guest: rewrites 8-byte words all over its memory, forever. */
        volatile uint64_t *words = (volatile uint64_t *)(void *)mem;
        for (uint64_t i = 1;; i++)
            words[(i * 0x9e3779b97f4a7c15ull >> 20) % (size / 8)] = i;
    }
    th_buf out = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.batch_bytes = 64 * 1024;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &out);
    assert_non_null(w);
    ms_region r = {.id = 0, .name = "ram", .size = size, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    for (uint64_t n = 0; n < 64; n++) {
        ms_round rd = {.number = n};
        assert_int_equal(ms_writer_round(w, &rd), 0);
        assert_int_equal(ms_writer_pages(w, 0, 0, LIVE_PAGES, mem), 0);
        /* and one page at a time, which batches through the same copy */
        for (unsigned p = 0; p < LIVE_PAGES; p += 7)
            assert_int_equal(ms_writer_pages(w, 0, p, 1, mem + (size_t)p * PS), 0);
    }
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    kill(guest_pid, SIGKILL);
    waitpid(guest_pid, NULL, 0);

    ms_reader *rd = ms_reader_new_memory(NULL, out.data, out.len);
    size_t records;
    int rc = th_read_all(rd, &records);
    if (rc != 0)
        fail_msg("live memory made an invalid stream: %s", ms_reader_errmsg(rd));
    assert_true(records > 64);
    ms_reader_free(rd);
    th_buf_free(&out);
    munmap(mem, size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_threads_identical_duplicates),
        cmocka_unit_test(test_threads_output_failure),
        cmocka_unit_test(test_threads_free_in_flight),
        cmocka_unit_test(test_threads_option_checked),
        cmocka_unit_test(test_threads_stable_identical),
        cmocka_unit_test(test_threads_live_memory),
    };
    return th_run_tests(tests);
}
