/*
 * Non-blocking I/O (common.h, "Non-blocking I/O"): a reader whose input
 * says "would block" at any byte hands out exactly the records a reader of
 * the whole stream in memory does, keeps what came of a preamble, record
 * header or payload across MS_EAGAIN, allocates nothing ahead of the bytes
 * that arrived, and reads an O_NONBLOCK socket with poll().
 */
#define _DEFAULT_SOURCE /* socketpair flags on older libcs */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define PS 4096u

/* ------------------------------------------------------------------ inputs */

/* Hands out a buffer in pieces of 1..max_step bytes and says "would block"
 * in eagain_pct percent of the calls (never twice in a row, so that a
 * reader that repeats its call always gets on). */
typedef struct flaky_in {
    const uint8_t *p;
    size_t len, pos, max_step;
    unsigned eagain_pct;
    uint64_t rng;
    bool blocked_last;
    size_t blocked; /* "would block" answers given */
} flaky_in;

static ssize_t flaky_read(void *ctx, void *buf, size_t len)
{
    flaky_in *in = ctx;
    if (!in->blocked_last && th_rand_below(&in->rng, 100) < in->eagain_pct) {
        in->blocked_last = true;
        in->blocked++;
        return (in->blocked & 1) ? -EAGAIN : -EWOULDBLOCK;
    }
    in->blocked_last = false;
    size_t n = 1 + (size_t)th_rand_below(&in->rng, in->max_step);
    if (n > len)
        n = len;
    if (n > in->len - in->pos)
        n = in->len - in->pos;
    memcpy(buf, in->p + in->pos, n);
    in->pos += n;
    return (ssize_t)n;
}

/* ----------------------------------------------------------------- streams */

/* A stream with records of every size: regions, rounds, raw and zstd PAGES
 * records of up to 256 KiB (several payload reads each), devices, FILL and
 * DISCARDED pages. */
static void write_mixed(th_buf *out, int level)
{
    enum { N = 512 };
    uint8_t *mem = malloc((size_t)N * PS);
    assert_non_null(mem);
    uint64_t rng = 7;
    for (unsigned p = 0; p < N; p++)
        th_make_page(mem + (size_t)p * PS, PS,
                     p % 5 == 0 ? TH_PAGE_ZERO
                     : p % 3    ? TH_PAGE_RANDOM
                                : TH_PAGE_TEXT,
                     &rng);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.compress_level = level;
    o.batch_bytes = 256 * 1024;
    o.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED;
    o.machine = "test-pc";
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    ms_region r = {
        .id = 3, .name = "ram", .has_gpa = true, .size = (uint64_t)N * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_status(ms_writer_pages(w, 3, 0, N, mem), 0);
    static const uint8_t state[] = {0xa1, 0x01, 0x43, 1, 2, 3};
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, state, sizeof state), 0);
    assert_status(ms_writer_round(w, &(ms_round){.number = 1, .final = true}), 0);
    assert_status(ms_writer_fill_pages(w, 3, 10, 5, 0x0101010101010101u), 0);
    assert_status(ms_writer_discard(w, 3, 100, 20), 0);
    assert_status(ms_writer_pages(w, 3, 200, 40, mem), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    free(mem);
}

/* ----------------------------------------------------------------- reading */

/* Calls ms_reader_next() until it does not return MS_EAGAIN; counts the
 * MS_EAGAIN answers, which must change nothing the reader reports. */
static int next_through(ms_reader *r, const ms_record **rec, size_t *eagain)
{
    for (;;) {
        uint64_t before = ms_reader_offset(r);
        int rc = ms_reader_next(r, rec);
        if (rc != MS_EAGAIN)
            return rc;
        ++*eagain;
        assert_status(ms_reader_status(r), 0); /* never sticky */
        assert_string_equal(ms_reader_errmsg(r), "");
        assert_true(ms_reader_offset(r) >= before); /* what came is kept */
    }
}

/* Reads @s through a flaky input and, in lockstep, from memory: the two
 * readers must hand out the same records, byte for byte. */
static void compare_flaky(const th_buf *s, size_t max_step, unsigned eagain_pct, uint64_t seed)
{
    flaky_in in = {
        .p = s->data, .len = s->len, .max_step = max_step, .eagain_pct = eagain_pct, .rng = seed};
    ms_reader *a = ms_reader_new(NULL, flaky_read, &in);
    ms_reader *b = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_header *ha, *hb;
    size_t eagain = 0;
    int rc;
    while ((rc = ms_reader_header(a, &ha)) == MS_EAGAIN)
        eagain++;
    assert_status(rc, 0);
    assert_status(ms_reader_header(b, &hb), 0);
    assert_memory_equal(ha, hb, sizeof *ha);
    size_t records = 0;
    for (;;) {
        const ms_record *ra, *rb;
        int ka = next_through(a, &ra, &eagain), kb = ms_reader_next(b, &rb);
        assert_status(ka, kb);
        if (ka <= 0)
            break;
        records++;
        assert_int_equal(ra->type, rb->type);
        assert_int_equal(ra->offset, rb->offset);
        assert_int_equal(ra->index, rb->index);
        assert_int_equal(ra->length, rb->length);
        assert_int_equal(ra->checksum, rb->checksum);
        assert_memory_equal(ra->payload, rb->payload, ra->length);
        if (ra->type == MS_REC_PAGES) {
            assert_int_equal(ra->pages.data_size, rb->pages.data_size);
            if (ra->pages.data_size)
                assert_memory_equal(ra->pages.data, rb->pages.data, ra->pages.data_size);
            assert_int_equal(ra->pages.extent_count, rb->pages.extent_count);
            assert_memory_equal(ra->pages.extents, rb->pages.extents,
                                ra->pages.extent_count * sizeof *ra->pages.extents);
        }
    }
    assert_int_equal(ms_reader_offset(a), s->len);
    /* After END, the end of input; a "would block" first changes nothing. */
    in.blocked_last = false;
    in.eagain_pct = 100;
    assert_status(ms_reader_expect_eof(a), MS_EAGAIN);
    assert_status(ms_reader_expect_eof(a), 0);
    assert_true(records >= 5);
    if (eagain_pct)
        assert_true(eagain > 0);
    ms_reader_free(a);
    ms_reader_free(b);
}

static void test_reader_flaky(void **state)
{
    (void)state;
    for (int level = 0; level <= 3; level += 3) {
        th_buf s = {0};
        write_mixed(&s, level);
        compare_flaky(&s, 1, 50, 1);           /* a byte at a time, blocking half the time */
        compare_flaky(&s, 7, 30, 2);           /* a few bytes */
        compare_flaky(&s, 100000, 20, 3);      /* large pieces */
        compare_flaky(&s, SIZE_MAX / 2, 0, 4); /* whole reads, never blocking */
        th_buf_free(&s);
    }
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    for (uint64_t seed = 10; seed < 40; seed++)
        compare_flaky(&s, 1 + seed % 23, 40, seed);
    th_buf_free(&s);
}

/* An input that has given @avail bytes and then would block forever. */
typedef struct stalled_in {
    const uint8_t *p;
    size_t avail, pos;
} stalled_in;

static ssize_t stalled_read(void *ctx, void *buf, size_t len)
{
    stalled_in *in = ctx;
    if (in->pos == in->avail)
        return -EAGAIN;
    size_t n = in->avail - in->pos < len ? in->avail - in->pos : len;
    memcpy(buf, in->p + in->pos, n);
    in->pos += n;
    return (ssize_t)n;
}

/* A record header that announces 60 MiB, and then little: the reader
 * allocates for what arrived, not for what the header says. */
static void test_reader_bounded(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    size_t len = 60u << 20;
    uint8_t *big = calloc(1, len);
    assert_non_null(big);
    th_stream_insert(&ts, 1, 0x8001, 0, big, len);
    free(big);
    th_stream_fix_end(&ts);
    uint64_t at = th_stream_offset(&ts, 1); /* the big record's header */
    s.len = 0;
    th_stream_build(&ts, &s);
    th_stream_free(&ts);

    th_alloc counter;
    th_alloc_init(&counter, SIZE_MAX);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.allocator = th_allocator(&counter);
    /* Up to the big record's header and 1000 bytes of its payload. */
    stalled_in in = {.p = s.data, .avail = (size_t)at + 16 + 1000};
    const ms_record *rec;
    ms_reader *r = ms_reader_new(&o, stalled_read, &in);
    assert_int_equal(ms_reader_next(r, &rec), 1);
    for (int i = 0; i < 3; i++)
        assert_status(ms_reader_next(r, &rec), MS_EAGAIN);
    assert_int_equal(ms_reader_offset(r), in.avail);
    if (counter.peak_bytes > 1u << 20)
        fail_msg("peak %zu bytes for 1000 bytes of a 60 MiB payload", counter.peak_bytes);
    /* Then the rest arrives: the record is handed out whole. */
    in.avail = s.len;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, 0x8001);
    assert_int_equal(rec->length, len);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&s);
}

/* MS_EAGAIN inside the preamble and right after it, for every split. */
static void test_reader_preamble(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    for (size_t cut = 0; cut <= 112 + 16; cut++) {
        stalled_in in = {.p = s.data, .avail = cut};
        ms_reader *r = ms_reader_new(NULL, stalled_read, &in);
        const ms_header *h;
        int rc = ms_reader_header(r, &h);
        if (cut < 112) {
            assert_status(rc, MS_EAGAIN);
            assert_status(ms_reader_status(r), 0);
        } else {
            assert_status(rc, 0);
        }
        in.avail = s.len;
        assert_status(ms_reader_header(r, &h), 0);
        assert_int_equal(h->page_size, 4096);
        assert_status(th_read_all(r, NULL), 0);
        ms_reader_free(r);
    }
    th_buf_free(&s);
}

/* ------------------------------------------------------ O_NONBLOCK sockets */

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void small_buffers(int fd)
{
    int size = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
}

typedef struct feeder {
    int fd;
    const th_buf *s;
} feeder;

/* Writes the stream into a blocking socket in pieces, pausing now and then,
 * so that the reader finds nothing to read at many points. */
static void *feed(void *arg)
{
    feeder *f = arg;
    uint64_t rng = 99;
    size_t pos = 0;
    while (pos < f->s->len) {
        size_t n = 1 + (size_t)th_rand_below(&rng, 3000);
        if (n > f->s->len - pos)
            n = f->s->len - pos;
        ssize_t k = write(f->fd, f->s->data + pos, n);
        if (k <= 0)
            break;
        pos += (size_t)k;
        if (th_rand_below(&rng, 8) == 0)
            usleep(200);
    }
    close(f->fd);
    return NULL;
}

static void test_reader_socket(void **state)
{
    (void)state;
    th_buf s = {0};
    write_mixed(&s, 1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    small_buffers(sv[0]);
    small_buffers(sv[1]);
    set_nonblocking(sv[0]);
    feeder f = {.fd = sv[1], .s = &s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, feed, &f), 0);

    ms_reader *r = ms_reader_new_fd(NULL, sv[0]);
    ms_reader *m = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *ra, *rb;
    size_t waits = 0;
    int rc;
    while ((rc = ms_reader_next(r, &ra)) != 0) {
        if (rc == MS_EAGAIN) {
            struct pollfd p = {.fd = sv[0], .events = POLLIN};
            assert_int_equal(poll(&p, 1, 10000), 1);
            waits++;
            continue;
        }
        assert_int_equal(rc, 1);
        assert_int_equal(ms_reader_next(m, &rb), 1);
        assert_int_equal(ra->offset, rb->offset);
        assert_int_equal(ra->checksum, rb->checksum);
        if (ra->type == MS_REC_PAGES && ra->pages.data_size)
            assert_memory_equal(ra->pages.data, rb->pages.data, ra->pages.data_size);
    }
    assert_int_equal(ms_reader_next(m, &rb), 0);
    for (;;) {
        rc = ms_reader_expect_eof(r);
        if (rc != MS_EAGAIN)
            break;
        struct pollfd p = {.fd = sv[0], .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
    }
    assert_status(rc, 0);
    assert_true(waits > 10);
    pthread_join(t, NULL);
    close(sv[0]);
    ms_reader_free(r);
    ms_reader_free(m);
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_flaky),
        cmocka_unit_test(test_reader_bounded),
        cmocka_unit_test(test_reader_preamble),
        cmocka_unit_test(test_reader_socket),
    };
    return th_run_tests(tests);
}
