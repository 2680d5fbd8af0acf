/*
 * Allocation-failure loops: a writer and a reader get an allocator (through
 * their options, the only way the library allocates per handle) that fails
 * the Nth call, for N = 0, 1, 2, ... until a run makes no failing call. Every
 * injected failure must come back as MS_ENOMEM (or NULL from *_new), stay
 * sticky, and leak nothing: the allocator counts live blocks, and ASan
 * builds check leaks of the whole process.
 */
#include <stdlib.h>

#include "helpers.h"

#define MAX_RUNS 5000

/* Runs one call; once a call failed, every later one must fail the same. */
typedef struct run {
    th_alloc *a;
    int status;
    const char *failed_call;
} run;

static void step(run *r, int rc, const char *what, void *handle_for_msg, bool is_writer)
{
    if (r->status) {
        if (rc != r->status)
            fail_msg("after %s failed with MS_ENOMEM, %s returned %d (not sticky)", r->failed_call,
                     what, rc);
        return;
    }
    if (rc == 0)
        return;
    const char *msg =
        is_writer ? ms_writer_errmsg(handle_for_msg) : ms_reader_errmsg(handle_for_msg);
    if (rc != MS_ENOMEM)
        fail_msg("%s returned %d (%s) after allocation %zu failed: %s", what, rc, ms_strerror(rc),
                 r->a->fail_at, msg);
    if (!r->a->failed)
        fail_msg("%s returned MS_ENOMEM without a failed allocation", what);
    assert_true(msg[0] != 0); /* the message says what ran out */
    r->status = rc;
    r->failed_call = what;
}

static void fill_pages(uint8_t *mem, size_t n, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++)
        th_make_page(mem + i * 4096, 4096,
                     i % 3 == 0   ? TH_PAGE_ZERO
                     : i % 3 == 1 ? TH_PAGE_TEXT
                                  : TH_PAGE_RANDOM,
                     &rng);
}

/* A small stream touching every writer path that allocates: INFO, two
 * REGIONS records, staged single pages, a large call, pagesv, zero pages,
 * compression, a device, flush and END. Returns the first failure or 0. */
static int write_stream(th_alloc *a, th_buf *out, int level)
{
    static uint8_t mem[80 * 4096];
    static bool filled;
    if (!filled) {
        fill_pages(mem, 80, 3);
        filled = true;
    }
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.allocator = th_allocator(a);
    o.machine = "alloc-test";
    o.description = "allocation failure loop";
    o.batch_bytes = 64 * 1024;
    o.compress_level = level;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    if (!w) {
        if (!a->failed)
            fail_msg("ms_writer_new returned NULL without a failed allocation");
        return MS_ENOMEM;
    }
    run r = {a, 0, NULL};
    const ms_region ram = {
        .id = 1, .name = "ram", .has_gpa = true, .gpa = 0, .size = 256 * 4096, .page_size = 4096};
    const ms_region rom = {
        .id = 2, .name = "rom", .has_gpa = false, .size = 8 * 8192, .page_size = 8192};
    static const uint8_t dev[] = {0xa2, 0x00, 0x82, 0x01, 0x20, 0x01, 0xf9, 0x3c, 0x00};
    step(&r, ms_writer_add_region(w, &ram), "add_region(ram)", w, true);
    for (uint64_t i = 0; i < 6; i++) /* one page per call: staged */
        step(&r, ms_writer_pages(w, 1, i, 1, mem + i * 4096), "pages(1 page)", w, true);
    step(&r, ms_writer_pages(w, 1, 10, 40, mem + 10 * 4096), "pages(40)", w, true);
    step(&r, ms_writer_zero_pages(w, 1, 100, 50), "zero_pages", w, true);
    struct iovec iov[70];
    for (int i = 0; i < 70; i++) /* more iovecs than the writer keeps on its stack */
        iov[i] = (struct iovec){mem + (size_t)(i % 2 ? 60 + i % 10 : i % 7) * 4096, 4096};
    step(&r, ms_writer_pagesv(w, 1, 160, iov, 70), "pagesv", w, true);
    step(&r, ms_writer_device(w, "cpu/0", 0, "cpu", 2, dev, sizeof dev), "device", w, true);
    step(&r, ms_writer_add_region(w, &rom), "add_region(rom)", w, true);
    step(&r, ms_writer_pages(w, 2, 0, 8, mem), "pages(rom)", w, true);
    step(&r, ms_writer_flush(w), "flush", w, true);
    step(&r, ms_writer_pages(w, 1, 0, 3, mem + 20 * 4096), "pages(rewrite)", w, true);
    step(&r, ms_writer_finish(w, NULL), "finish", w, true);
    if (r.status)
        assert_status(ms_writer_status(w), r.status);
    ms_writer_free(w);
    return r.status;
}

typedef struct mem_src {
    const uint8_t *p;
    size_t len, pos;
} mem_src;

/* At most 1000 bytes per call, so payload buffers grow in steps. */
static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    mem_src *m = ctx;
    size_t n = len < 1000 ? len : 1000;
    if (n > m->len - m->pos)
        n = m->len - m->pos;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

/* Reads @s to the end with the allocator; returns the first failure or 0. */
static int read_stream(th_alloc *a, const th_buf *s, bool callback, size_t *records)
{
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.allocator = th_allocator(a);
    mem_src src = {s->data, s->len, 0};
    ms_reader *r =
        callback ? ms_reader_new(&o, mem_read, &src) : ms_reader_new_memory(&o, s->data, s->len);
    if (!r) {
        if (!a->failed)
            fail_msg("ms_reader_new returned NULL without a failed allocation");
        return MS_ENOMEM;
    }
    run st = {a, 0, NULL};
    const ms_record *rec;
    size_t n = 0;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        n++;
    step(&st, rc, "ms_reader_next", r, false);
    if (rc == 0) {
        step(&st, ms_reader_expect_eof(r), "ms_reader_expect_eof", r, false);
    } else {
        assert_status(ms_reader_next(r, &rec), rc); /* sticky */
        assert_status(ms_reader_status(r), rc);
    }
    *records = n;
    ms_reader_free(r);
    return st.status;
}

static void test_writer_allocation_failures(void **state)
{
    (void)state;
    for (int level = 0; level <= 1; level++) {
        size_t n;
        for (n = 0; n < MAX_RUNS; n++) {
            th_alloc a;
            th_alloc_init(&a, n);
            th_buf out = {0};
            int rc = write_stream(&a, &out, level);
            if (a.live)
                fail_msg("allocation %zu failed: %zu blocks leaked", n, a.live);
            if (!a.failed) {
                /* nothing failed: the stream is complete and valid */
                assert_status(rc, 0);
                ms_reader *r = ms_reader_new_memory(NULL, out.data, out.len);
                assert_status(th_read_all(r, NULL), 0);
                assert_status(ms_reader_expect_eof(r), 0);
                ms_reader_free(r);
                th_buf_free(&out);
                break;
            }
            if (rc == 0) { /* a failure the writer worked around: still valid */
                ms_reader *r = ms_reader_new_memory(NULL, out.data, out.len);
                assert_status(th_read_all(r, NULL), 0);
                ms_reader_free(r);
            }
            th_buf_free(&out);
        }
        assert_true(n < MAX_RUNS);
        assert_true(n > 5); /* the loop did exercise failures */
        printf("writer, compress level %d: %zu allocation points\n", level, n);
    }
    /* A bad argument: a handle in the failed state (common.h, "Handles"). */
    ms_writer *w = ms_writer_new_fd(NULL, -1);
    assert_status(ms_writer_status(w), MS_EINVAL);
    ms_writer_free(w);
}

static void test_reader_allocation_failures(void **state)
{
    (void)state;
    th_alloc plain;
    th_alloc_init(&plain, SIZE_MAX);
    th_buf s = {0};
    assert_status(write_stream(&plain, &s, 1), 0); /* raw and zstd PAGES records */
    size_t want;
    assert_status(read_stream(&plain, &s, false, &want), 0);
    for (int callback = 0; callback < 2; callback++) {
        size_t n;
        for (n = 0; n < MAX_RUNS; n++) {
            th_alloc a;
            th_alloc_init(&a, n);
            size_t records = 0;
            int rc = read_stream(&a, &s, callback, &records);
            if (a.live)
                fail_msg("allocation %zu failed: %zu blocks leaked", n, a.live);
            if (!a.failed) {
                assert_status(rc, 0);
                assert_int_equal(records, want);
                break;
            }
            if (rc == 0)
                assert_int_equal(records, want);
        }
        assert_true(n < MAX_RUNS);
        assert_true(n > 3);
        printf("%s reader: %zu allocation points\n", callback ? "callback" : "memory", n);
    }
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_allocation_failures),
        cmocka_unit_test(test_reader_allocation_failures),
    };
    return th_run_tests(tests);
}
