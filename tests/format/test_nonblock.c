/*
 * Non-blocking I/O (common.h, "Non-blocking I/O").
 *
 * The reader: whose input says "would block" at any byte hands out exactly
 * the records a reader of the whole stream in memory does, keeps what came
 * of a preamble, record header or payload across MS_EAGAIN, allocates
 * nothing ahead of the bytes that arrived, and reads an O_NONBLOCK socket
 * with poll().
 *
 * The writer: whose output takes a byte at a time, a few bytes, or says
 * "would block" at random writes, call after repeated call, the stream a
 * blocking output gets, byte for byte, with every kind of call, with and
 * without compression, worker threads and stable_memory; keeps its
 * position in data calls and refuses any other call until the repeat;
 * takes nothing from a single-record call that returns MS_EAGAIN; never
 * leaves a pending batch pointing at stable memory. And a 64 MiB guest
 * migrated in rounds over an O_NONBLOCK socketpair with 4 KiB socket
 * buffers, the reader on the other end polling too: memory arrives byte
 * for byte, and the stream is the blocking writer's.
 */
#define _DEFAULT_SOURCE /* usleep */
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

/* ----------------------------------------------------------------- writer */

/* Outputs that take part of what they are given, or nothing. */
typedef enum out_mode {
    OUT_ONE_BYTE,       /* one byte a call, "would block" every other call */
    OUT_FEW,            /* 1..64 bytes, "would block" in a third of the calls */
    OUT_RANDOM,         /* 1..32 KiB, or "would block" half the time */
    OUT_ALL_OR_NOTHING, /* an ms_write_fn: everything, or -EAGAIN half the time */
    OUT_MODES
} out_mode;

typedef struct part_out {
    th_buf *buf;
    out_mode mode;
    uint64_t rng;
    bool blocked_last; /* never "would block" twice in a row: repeats get on */
    size_t calls, blocked;
    bool hold;         /* test-driven: say "would block" while set */
    size_t take_limit; /* test-driven: at most this many bytes in all (0: none) */
} part_out;

static bool part_block(part_out *o, unsigned pct)
{
    o->calls++;
    if (o->hold || (!o->blocked_last && th_rand_below(&o->rng, 100) < pct)) {
        o->blocked_last = true;
        o->blocked++;
        return true;
    }
    o->blocked_last = false;
    return false;
}

static ssize_t part_some(void *ctx, const struct iovec *iov, int iovcnt)
{
    part_out *o = ctx;
    static const unsigned pct[] = {50, 33, 50, 0};
    if (part_block(o, pct[o->mode]))
        return (o->blocked & 1) ? 0 : -EAGAIN;
    size_t max = o->mode == OUT_ONE_BYTE ? 1
                 : o->mode == OUT_FEW    ? 1 + (size_t)th_rand_below(&o->rng, 64)
                                         : 1 + (size_t)th_rand_below(&o->rng, 32 * 1024);
    if (o->take_limit) {
        if (o->buf->len >= o->take_limit)
            return -EWOULDBLOCK;
        if (max > o->take_limit - o->buf->len)
            max = o->take_limit - o->buf->len;
    }
    size_t took = 0;
    for (int i = 0; i < iovcnt && took < max; i++) {
        size_t n = iov[i].iov_len < max - took ? iov[i].iov_len : max - took;
        th_buf_append(o->buf, iov[i].iov_base, n);
        took += n;
    }
    return (ssize_t)took;
}

static int part_all(void *ctx, const struct iovec *iov, int iovcnt)
{
    part_out *o = ctx;
    if (part_block(o, 50))
        return -EAGAIN;
    return th_sink_write(o->buf, iov, iovcnt);
}

static ms_writer *part_writer(const ms_writer_options *opts, part_out *o)
{
    ms_writer *w = o->mode == OUT_ALL_OR_NOTHING ? ms_writer_new(opts, part_all, o)
                                                 : ms_writer_new_some(opts, part_some, o);
    assert_status(ms_writer_status(w), 0);
    return w;
}

/* Repeats a writer call while it returns MS_EAGAIN (counted in @eagain),
 * checking that MS_EAGAIN is not sticky, then checks its status. */
#define REPEAT(eagain, call, want)                                                                 \
    do {                                                                                           \
        int rc_;                                                                                   \
        while ((rc_ = (call)) == MS_EAGAIN) {                                                      \
            (eagain)++;                                                                            \
            assert_status(ms_writer_status(w), 0);                                                 \
        }                                                                                          \
        assert_status(rc_, want);                                                                  \
    } while (0)

#define GPAGES 1280u /* 5 MiB: several batches at 256 KiB; the last call is
                           * large enough for the workers to classify ahead */

static uint8_t *script_guest(uint64_t seed)
{
    uint8_t *m = malloc((size_t)GPAGES * PS);
    assert_non_null(m);
    uint64_t rng = seed;
    for (unsigned p = 0; p < GPAGES; p++) {
        th_page_kind k = (p / 7) % 3 == 0   ? TH_PAGE_TEXT
                         : (p / 5) % 4 == 0 ? TH_PAGE_RANDOM
                         : p % 11 == 0      ? TH_PAGE_BYTE_MID
                                            : TH_PAGE_ZERO;
        th_make_page(m + (size_t)p * PS, PS, k, &rng);
    }
    for (unsigned p = 300; p < 310; p++) /* FILL pages */
        memset(m + (size_t)p * PS, 0x5c, PS);
    return m;
}

static ms_writer_options script_options(int level, unsigned threads, bool stable)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.machine = "nonblock";
    o.compress_level = level;
    o.threads = threads;
    o.stable_memory = stable;
    o.batch_bytes = 256 * 1024;
    o.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS;
    return o;
}

/* Every kind of call, each repeated while it returns MS_EAGAIN. Changes
 * @mem between calls as a running guest would. Returns the MS_EAGAINs. */
static size_t script(ms_writer *w, uint8_t *mem)
{
    size_t eagain = 0;
    ms_region r0 = {.id = 0,
                    .name = "ram",
                    .has_gpa = true,
                    .gpa = 0,
                    .size = (uint64_t)GPAGES * PS,
                    .page_size = PS};
    ms_region r1 = {.id = 1, .name = "late", .size = 64 * 8192, .page_size = 8192};
    REPEAT(eagain, ms_writer_add_region(w, &r0), 0);
    REPEAT(eagain, ms_writer_round(w, &(ms_round){.number = 0}), 0);
    REPEAT(eagain, ms_writer_pages(w, 0, 0, GPAGES / 2, mem), 0);
    for (unsigned p = GPAGES / 2; p < GPAGES / 2 + 40; p++) /* page by page */
        REPEAT(eagain, ms_writer_pages(w, 0, p, 1, mem + (size_t)p * PS), 0);
    struct iovec v[3] = {{mem + (size_t)(GPAGES / 2 + 40) * PS, 30 * PS},
                         {mem + 17 * PS, 2 * PS},
                         {mem + (size_t)(GPAGES / 2 + 72) * PS, (GPAGES / 2 - 72) * PS}};
    REPEAT(eagain, ms_writer_pagesv(w, 0, GPAGES / 2 + 40, v, 3), 0);
    static const uint8_t state[] = {0xa2, 0x01, 0x02, 0x03, 0x44, 1, 2, 3, 4};
    REPEAT(eagain, ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, state, sizeof state), 0);
    ms_overlay ov = {.gfn = 5, .kind = MS_OVERLAY_HYPERCALL, .hypercall = {.vendor = 1}};
    REPEAT(eagain, ms_writer_overlay(w, &ov), 0);
    REPEAT(eagain, ms_writer_flush(w), 0);

    /* Round 1: the guest changed some pages. */
    uint64_t bits[GPAGES / 64] = {0};
    for (unsigned p = 3; p < GPAGES; p += 5) {
        mem[(size_t)p * PS + 17] ^= 0x5a;
        bits[p / 64] |= 1ull << (p % 64);
    }
    for (unsigned p = 200; p < 260; p++) /* a long dirty run */
        bits[p / 64] |= 1ull << (p % 64);
    ms_round r = {.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = PS};
    REPEAT(eagain, ms_writer_round(w, &r), 0);
    REPEAT(eagain, ms_writer_dirty(w, 0, bits, PS, mem), 0);
    memset(mem, 0xee, PS); /* changed after the call: must not reach the stream */
    REPEAT(eagain, ms_writer_discard(w, 0, GPAGES - 8, 8), 0);
    REPEAT(eagain, ms_writer_zero_pages(w, 0, 100, 50), 0);
    REPEAT(eagain, ms_writer_fill_pages(w, 0, 150, 20, 0x1111111111111111u), 0);
    REPEAT(eagain, ms_writer_in_place(w, 0, 400, 100, 0x40000000), 0);
    REPEAT(eagain, ms_writer_add_region(w, &r1), 0);
    REPEAT(eagain, ms_writer_pages(w, 1, 0, 64, mem + PS), 0);
    static const uint8_t priv[] = "private";
    REPEAT(eagain, ms_writer_record(w, 0x8123, 0, priv, sizeof priv), 0);
    ms_round fin = {.number = 2, .final = true};
    REPEAT(eagain, ms_writer_round(w, &fin), 0);
    REPEAT(eagain, ms_writer_pages(w, 0, 0, GPAGES, mem), 0);
    ms_totals t;
    REPEAT(eagain, ms_writer_finish(w, &t), 0);
    assert_int_equal(t.rounds, 3);
    return eagain;
}

static void reference_stream(th_buf *out, const ms_writer_options *o, uint64_t seed)
{
    uint8_t *mem = script_guest(seed);
    ms_writer *w = ms_writer_new(o, th_sink_write, out);
    assert_int_equal(script(w, mem), 0);
    ms_writer_free(w);
    free(mem);
}

static void same_stream(const th_buf *a, const th_buf *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        size_t at = 0;
        while (at < a->len && at < b->len && a->data[at] == b->data[at])
            at++;
        fail_msg("%s: %zu bytes, blocking output %zu; first difference at byte %zu", what, a->len,
                 b->len, at);
    }
}

static void test_writer_partial(void **state)
{
    (void)state;
    /* extra: format 1.3's DUPLICATE pages and zstd windows */
    const uint64_t v13 = MS_FEATURE_DUPLICATES | MS_FEATURE_ZSTD_WINDOW;
    const struct {
        int level;
        unsigned threads;
        bool stable;
        uint64_t extra;
    } cfg[] = {
        {0, 0, false, 0},   {0, 0, true, 0},   {3, 0, false, 0},   {3, 0, true, 0},
        {1, 3, false, 0},   {1, 2, true, 0},   {0, 0, false, v13}, {3, 0, false, v13},
        {1, 2, false, v13}, {1, 3, true, v13},
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        ms_writer_options o = script_options(cfg[c].level, cfg[c].threads, cfg[c].stable);
        o.features |= cfg[c].extra;
        th_buf ref = {0};
        reference_stream(&ref, &o, c + 1);
        assert_int_equal(th_check_chain(ref.data, ref.len) > 10, true);
        for (int mode = 0; mode < OUT_MODES; mode++) {
            /* A byte at a time over the whole stream: once is enough. */
            if (mode == OUT_ONE_BYTE && c > 1)
                continue;
            th_buf got = {0};
            part_out out = {.buf = &got, .mode = (out_mode)mode, .rng = 1000 + c * 10 + mode};
            uint8_t *mem = script_guest(c + 1);
            ms_writer *w = part_writer(&o, &out);
            size_t eagain = script(w, mem);
            char what[96];
            snprintf(what, sizeof what, "level %d, %u threads, stable %d, 1.3 %d, output mode %d",
                     cfg[c].level, cfg[c].threads, cfg[c].stable, cfg[c].extra != 0, mode);
            same_stream(&got, &ref, what);
            if (mode != OUT_ALL_OR_NOTHING && eagain == 0)
                fail_msg("%s: no MS_EAGAIN", what);
            assert_int_equal(ms_writer_bytes_written(w), got.len);
            ms_writer_free(w);
            free(mem);
            th_buf_free(&got);
        }
        th_buf_free(&ref);
    }
}

/* A part of a migration in parts (ms_writer_options.part) through every
 * output that would block: the PART record, queued with the preamble and
 * INFO, and the rest come out as a blocking output gets them. */
static void test_writer_partial_part(void **state)
{
    (void)state;
    ms_part part = {.migration_id = "nonblocking-part", .index = 1, .count = 2};
    for (int level = 0; level <= 1; level++) {
        ms_writer_options o = script_options(level, level ? 2 : 0, false);
        o.part = &part;
        th_buf ref = {0};
        reference_stream(&ref, &o, 7);
        assert_int_equal(th_get64(ref.data + 16) & MS_FEATURE_PARTS, MS_FEATURE_PARTS);
        for (int mode = OUT_FEW; mode < OUT_MODES; mode++) {
            th_buf got = {0};
            part_out out = {.buf = &got, .mode = (out_mode)mode, .rng = 77 + mode};
            uint8_t *mem = script_guest(7);
            ms_writer *w = part_writer(&o, &out);
            size_t eagain = script(w, mem);
            char what[64];
            snprintf(what, sizeof what, "a part, level %d, output mode %d", level, mode);
            same_stream(&got, &ref, what);
            if (mode != OUT_ALL_OR_NOTHING && eagain == 0)
                fail_msg("%s: no MS_EAGAIN", what);
            ms_writer_free(w);
            free(mem);
            th_buf_free(&got);
        }
        ms_reader *r = ms_reader_new_memory(NULL, ref.data, ref.len);
        const ms_record *rec;
        assert_int_equal(ms_reader_next(r, &rec), 1);
        assert_int_equal(rec->type, MS_REC_PART);
        assert_status(th_read_all(r, NULL), 0);
        ms_reader_free(r);
        th_buf_free(&ref);
    }
}

/* After MS_EAGAIN from a data call: the same call goes on, any other is
 * MS_EINVAL and names the unfinished one. */
static void test_writer_other_call(void **state)
{
    (void)state;
    uint8_t *mem = script_guest(3);
    for (int which = 0; which < 4; which++) {
        ms_writer_options o = script_options(0, 0, false);
        o.batch_bytes = 64 * 1024;
        th_buf got = {0};
        part_out out = {.buf = &got, .mode = OUT_RANDOM, .take_limit = 1000};
        ms_writer *w = part_writer(&o, &out);
        ms_region r = {.id = 0,
                       .name = "ram",
                       .has_gpa = true,
                       .size = (uint64_t)GPAGES * PS,
                       .page_size = PS};
        assert_status(ms_writer_add_region(w, &r), 0);
        int rc;
        while ((rc = ms_writer_pages(w, 0, 0, 256, mem + PS)) == 0)
            ; /* the output takes 1000 bytes in all: MS_EAGAIN soon */
        assert_status(rc, MS_EAGAIN);
        assert_status(ms_writer_pages(w, 0, 0, 256, mem + PS), MS_EAGAIN); /* the same: fine */
        static const uint8_t st[] = {0xf6};
        switch (which) {
        case 0:
            rc = ms_writer_pages(w, 0, 0, 255, mem + PS);
            break;
        case 1:
            rc = ms_writer_pages(w, 0, 0, 256, mem);
            break;
        case 2:
            rc = ms_writer_device(w, "d", 0, "s", 1, st, 1);
            break;
        default:
            rc = ms_writer_finish(w, NULL);
            break;
        }
        assert_status(rc, MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), "ms_writer_pages() on region 0, pages 0..+256 is "
                                             "unfinished");
        assert_status(ms_writer_status(w), MS_EINVAL); /* a caller's bug: sticky */
        ms_writer_free(w);
        th_buf_free(&got);
    }
    free(mem);
}

/* A single-record call that returns MS_EAGAIN has taken nothing: the
 * caller may make another call instead. */
static void test_writer_nothing_taken(void **state)
{
    (void)state;
    static const uint8_t a[] = {0x01}, b[] = {0x02};
    ms_writer_options o;
    ms_writer_options_init(&o);
    th_buf ref = {0};
    ms_writer *w = ms_writer_new(&o, th_sink_write, &ref);
    assert_status(ms_writer_device(w, "b", 0, "s", 1, b, 1), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);

    th_buf got = {0};
    part_out out = {.buf = &got, .mode = OUT_RANDOM, .hold = true};
    w = part_writer(&o, &out);
    /* Records the output cannot take: the first waits whole, the second
     * fills the queue of small records past its 256 KiB. */
    uint8_t *big = calloc(1, 300 * 1024);
    assert_non_null(big);
    assert_status(ms_writer_record(w, 0x8000, 0, big, 300 * 1024), 0);
    assert_status(ms_writer_record(w, 0x8000, 0, big, 300 * 1024), 0);
    assert_status(ms_writer_device(w, "a", 0, "s", 1, a, 1), MS_EAGAIN);
    assert_status(ms_writer_status(w), 0);
    out.hold = false;
    REPEAT(out.blocked, ms_writer_device(w, "b", 0, "s", 1, b, 1), 0);
    ms_totals t;
    REPEAT(out.blocked, ms_writer_finish(w, &t), 0);
    assert_int_equal(t.devices, 1);
    ms_writer_free(w);
    /* The stream is the reference with the private record before it. */
    th_stream ts;
    th_stream_parse(&ts, got.data, got.len);
    assert_int_equal(ts.n, 4);
    assert_int_equal(ts.rec[2].type, MS_REC_DEVICE);
    th_stream_remove(&ts, 0);
    th_stream_remove(&ts, 0);
    th_stream_fix_end(&ts);
    got.len = 0;
    th_stream_build(&ts, &got);
    th_stream_free(&ts);
    same_stream(&got, &ref, "device after MS_EAGAIN");
    free(big);
    th_buf_free(&got);
    th_buf_free(&ref);
}

/* With stable_memory, the pages a call took before MS_EAGAIN are the
 * writer's: the caller may change its memory before repeating. */
static void test_writer_stable_secured(void **state)
{
    (void)state;
    enum { N = 64 };
    for (int stable = 0; stable < 2; stable++) {
        uint8_t *mem = malloc(N * PS), *orig = malloc(N * PS);
        assert_non_null(mem);
        assert_non_null(orig);
        uint64_t rng = 5;
        for (unsigned p = 0; p < N; p++)
            th_make_page(mem + p * PS, PS, TH_PAGE_RANDOM, &rng);
        memcpy(orig, mem, N * PS);
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.stable_memory = stable;
        o.batch_bytes = 16 * PS;
        th_buf got = {0};
        part_out out = {.buf = &got, .mode = OUT_RANDOM, .take_limit = 1000};
        ms_writer *w = part_writer(&o, &out);
        ms_region r = {.id = 0, .name = "ram", .size = N * PS, .page_size = PS};
        assert_status(ms_writer_add_region(w, &r), 0);
        /* The first batch goes out (1000 bytes of it taken), the second is
         * full and cannot: MS_EAGAIN with 32 pages taken. */
        assert_status(ms_writer_pages(w, 0, 0, N, mem), MS_EAGAIN);
        memset(mem, 0x77, N * PS); /* the guest writes everything */
        out.take_limit = 0;
        REPEAT(out.blocked, ms_writer_pages(w, 0, 0, N, mem), 0);
        REPEAT(out.blocked, ms_writer_finish(w, NULL), 0);
        ms_writer_free(w);
        ms_reader *rd = ms_reader_new_memory(NULL, got.data, got.len);
        const ms_record *rec;
        int rc;
        uint64_t originals = 0;
        while ((rc = ms_reader_next(rd, &rec)) > 0) {
            if (rec->type != MS_REC_PAGES)
                continue;
            const uint8_t *d = rec->pages.data;
            for (size_t i = 0; i < rec->pages.extent_count; i++) {
                const ms_extent *x = &rec->pages.extents[i];
                if (x->state != MS_PAGE_DATA)
                    continue; /* none: without MS_FEATURE_FILL, 0x77 pages are DATA */
                for (uint64_t k = 0; k < x->count; k++, d += PS) {
                    uint64_t pg = x->first + k;
                    if (pg < 32) { /* taken before MS_EAGAIN: as they were then */
                        assert_memory_equal(d, orig + pg * PS, PS);
                        originals++;
                    } else {
                        assert_memory_equal(d, mem + pg * PS, PS);
                    }
                }
            }
        }
        assert_status(rc, 0);
        assert_int_equal(originals, 32);
        ms_reader_free(rd);
        th_buf_free(&got);
        free(mem);
        free(orig);
    }
}

/* ------------------------------------------- a live migration over sockets */

#define BIG_PAGES (64u * 1024 * 1024 / PS)

typedef struct receiver {
    int fd;
    uint8_t *ram;
    uint64_t end_checksum, bytes;
    int rc;
    size_t waits;
} receiver;

/* The destination: a non-blocking reader that polls, applying every page. */
static void *receive(void *arg)
{
    receiver *rv = arg;
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.accept_features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED;
    ms_reader *r = ms_reader_new_fd(&o, rv->fd);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) != 0) {
        if (rc == MS_EAGAIN) {
            struct pollfd p = {.fd = rv->fd, .events = POLLIN};
            if (poll(&p, 1, 30000) != 1)
                break;
            rv->waits++;
            continue;
        }
        if (rc < 0)
            break;
        if (rec->index % 8 == 0)
            usleep(300); /* a slower destination now and then: the source waits */
        if (rec->type == MS_REC_END)
            rv->end_checksum = rec->checksum;
        if (rec->type != MS_REC_PAGES)
            continue;
        const ms_pages *pg = &rec->pages;
        const uint8_t *d = pg->data;
        for (size_t i = 0; i < pg->extent_count; i++) {
            const ms_extent *x = &pg->extents[i];
            uint8_t *dst = rv->ram + x->first * PS;
            size_t len = (size_t)x->count * PS;
            if (x->state == MS_PAGE_DATA) {
                memcpy(dst, d, len);
                d += len;
            } else if (x->state == MS_PAGE_ZERO) {
                memset(dst, 0, len);
            } else if (x->state == MS_PAGE_FILL) {
                for (size_t k = 0; k < len; k++)
                    dst[k] = (uint8_t)(x->arg >> (8 * (k % 8)));
            }
        }
    }
    rv->rc = rc;
    rv->bytes = ms_reader_offset(r);
    ms_reader_free(r);
    return NULL;
}

static uint8_t *big_guest(void)
{
    uint8_t *m = malloc((size_t)BIG_PAGES * PS);
    assert_non_null(m);
    uint64_t rng = 77;
    for (unsigned p = 0; p < BIG_PAGES; p++) {
        /* A quarter of the pages hold data, in runs; the rest never touched. */
        th_page_kind k = (p / 16) % 4 != 0 ? TH_PAGE_ZERO : p % 3 ? TH_PAGE_TEXT : TH_PAGE_RANDOM;
        th_make_page(m + (size_t)p * PS, PS, k, &rng);
    }
    return m;
}

typedef struct sender {
    ms_writer *w;
    int fd; /* -1: a blocking output, never MS_EAGAIN */
    size_t waits;
} sender;

/* Repeats a writer call on MS_EAGAIN, polling the socket for POLLOUT. */
#define SEND(snd, call)                                                                            \
    do {                                                                                           \
        int rc_;                                                                                   \
        while ((rc_ = (call)) == MS_EAGAIN) {                                                      \
            assert_true((snd)->fd >= 0);                                                           \
            struct pollfd p_ = {.fd = (snd)->fd, .events = POLLOUT};                               \
            assert_int_equal(poll(&p_, 1, 30000), 1);                                              \
            (snd)->waits++;                                                                        \
        }                                                                                          \
        if (rc_)                                                                                   \
            fail_msg("%s: %s", #call, ms_writer_errmsg((snd)->w));                                 \
    } while (0)

/* Pre-copy in rounds: everything, then three rounds of what the guest
 * dirtied, then the stop-and-copy round and a device. */
static void migrate_rounds(sender *sd, uint8_t *mem)
{
    ms_writer *w = sd->w;
    ms_region r = {.id = 0,
                   .name = "pc.ram",
                   .has_gpa = true,
                   .gpa = 0,
                   .size = (uint64_t)BIG_PAGES * PS,
                   .page_size = PS};
    SEND(sd, ms_writer_add_region(w, &r));
    SEND(sd, ms_writer_round(w, &(ms_round){.number = 0}));
    SEND(sd, ms_writer_pages(w, 0, 0, BIG_PAGES, mem));
    uint64_t *bits = calloc(BIG_PAGES / 64, sizeof *bits);
    assert_non_null(bits);
    uint64_t rng = 3;
    for (uint64_t n = 1; n <= 4; n++) {
        memset(bits, 0, BIG_PAGES / 64 * sizeof *bits);
        for (unsigned k = 0; k < BIG_PAGES / 50; k++) { /* 2 % of the pages */
            uint64_t p = th_rand_below(&rng, BIG_PAGES);
            th_make_page(mem + p * PS, PS, k % 7 == 0 ? TH_PAGE_ZERO : TH_PAGE_RANDOM, &rng);
            if (k % 11 == 0)
                memset(mem + p * PS, 0x3c, PS); /* FILL */
            bits[p / 64] |= 1ull << (p % 64);
        }
        ms_round rd = {
            .number = n, .tracker = MS_TRACKER_BITMAP, .granularity = PS, .final = n == 4};
        SEND(sd, ms_writer_round(w, &rd));
        SEND(sd, ms_writer_dirty(w, 0, bits, PS, mem));
    }
    static const uint8_t cpu[] = {0xa1, 0x00, 0x19, 0x12, 0x34};
    SEND(sd, ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, cpu, sizeof cpu));
    SEND(sd, ms_writer_finish(w, NULL));
    free(bits);
}

static void test_socket_migration(void **state)
{
    (void)state;
    static const struct {
        int level;
        unsigned threads;
        bool stable;
    } cfg[] = {{0, 0, false}, {1, 0, false}, {1, 2, false}, {0, 2, true}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.compress_level = cfg[c].level;
        o.threads = cfg[c].threads;
        o.stable_memory = cfg[c].stable;
        o.features = MS_FEATURE_FILL;

        /* What a blocking writer makes of the same calls. */
        th_buf ref = {0};
        uint8_t *mem = big_guest();
        sender bs = {.w = ms_writer_new(&o, th_sink_write, &ref), .fd = -1};
        migrate_rounds(&bs, mem);
        ms_writer_free(bs.w);
        free(mem);
        ms_reader *rr = ms_reader_new_memory(NULL, ref.data, ref.len);
        const ms_record *rec;
        uint64_t ref_end = 0;
        while (ms_reader_next(rr, &rec) > 0)
            ref_end = rec->checksum;
        assert_status(ms_reader_status(rr), 0);
        ms_reader_free(rr);

        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        for (int i = 0; i < 2; i++) {
            small_buffers(sv[i]);
            set_nonblocking(sv[i]);
        }
        receiver rv = {.fd = sv[1], .ram = malloc((size_t)BIG_PAGES * PS)};
        assert_non_null(rv.ram);
        memset(rv.ram, 0xa5, (size_t)BIG_PAGES * PS);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, receive, &rv), 0);
        mem = big_guest();
        sender sd = {.w = ms_writer_new_fd(&o, sv[0]), .fd = sv[0]};
        assert_status(ms_writer_status(sd.w), 0);
        migrate_rounds(&sd, mem);
        assert_int_equal(ms_writer_bytes_written(sd.w), ref.len);
        ms_writer_free(sd.w);
        pthread_join(t, NULL);
        close(sv[0]);
        close(sv[1]);

        assert_status(rv.rc, 0);
        assert_int_equal(rv.bytes, ref.len);
        assert_int_equal(rv.end_checksum, ref_end); /* the chain: every byte the same */
        assert_memory_equal(rv.ram, mem, (size_t)BIG_PAGES * PS);
        assert_true(sd.waits > 0); /* both sides did wait for the other */
        assert_true(rv.waits > 0);
        free(rv.ram);
        free(mem);
        th_buf_free(&ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_flaky),          cmocka_unit_test(test_reader_bounded),
        cmocka_unit_test(test_reader_preamble),       cmocka_unit_test(test_reader_socket),
        cmocka_unit_test(test_writer_partial),        cmocka_unit_test(test_writer_partial_part),
        cmocka_unit_test(test_writer_other_call),     cmocka_unit_test(test_writer_nothing_taken),
        cmocka_unit_test(test_writer_stable_secured), cmocka_unit_test(test_socket_migration),
    };
    return th_run_tests(tests);
}
