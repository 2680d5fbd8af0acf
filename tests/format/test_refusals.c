/*
 * Every refusal: each test plants one fault in an otherwise valid stream
 * (checksums recomputed by helpers.c unless the fault is in a checksum) and
 * checks the exact status, that the message names the problem, and that
 * ms_reader_error_record() / ms_reader_error_offset() point at the faulty
 * record and byte. Each case is read from memory and through a callback
 * (in small chunks); both must agree, and the failure must be sticky.
 * The writer's refusals of bad calls are at the end.
 */
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

#define MIB (1024u * 1024u)
#define PRE 112u

/* ----------------------------------------------------------------- helpers */

typedef struct chunk_src {
    const uint8_t *p;
    size_t len, pos, step;
} chunk_src;

static ssize_t chunk_read(void *ctx, void *buf, size_t len)
{
    chunk_src *c = ctx;
    size_t n = c->step < len ? c->step : len;
    if (n > c->len - c->pos)
        n = c->len - c->pos;
    if (n)
        memcpy(buf, c->p + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

typedef struct expect {
    int status;
    int64_t record;   /* -1: preamble */
    uint64_t lo, hi;  /* error offset within [lo, hi] */
    const char *frag; /* the message contains this */
} expect;

/* Reads @s with one reader, checks the failure, its stickiness, and that
 * the records before the failing one were handed out. */
static void check_reader(ms_reader *r, const expect *e)
{
    size_t n;
    int rc = th_read_all(r, &n);
    assert_status(rc, e->status);
    assert_status(ms_reader_status(r), e->status);
    const char *msg = ms_reader_errmsg(r);
    assert_contains(msg, e->frag);
    if (ms_reader_error_record(r) != e->record)
        fail_msg("error record %lld, expected %lld (%s)", (long long)ms_reader_error_record(r),
                 (long long)e->record, msg);
    uint64_t off = ms_reader_error_offset(r);
    if (off < e->lo || off > e->hi)
        fail_msg("error offset %llu, expected %llu..%llu (%s)", (unsigned long long)off,
                 (unsigned long long)e->lo, (unsigned long long)e->hi, msg);
    if (e->record >= 0)
        assert_int_equal(n, (size_t)e->record);
    /* sticky: every later call fails the same way, message unchanged */
    char saved[600];
    snprintf(saved, sizeof saved, "%s", msg);
    const ms_record *rec;
    for (int i = 0; i < 3; i++)
        assert_status(ms_reader_next(r, &rec), e->status);
    assert_status(ms_reader_header(r, NULL), e->status);
    assert_status(ms_reader_expect_eof(r), e->status);
    assert_string_equal(ms_reader_errmsg(r), saved);
    assert_int_equal(ms_reader_error_offset(r), off);
}

static void expect_fail_opts(const th_buf *s, const ms_reader_options *o, const expect *e)
{
    ms_reader *r = ms_reader_new_memory(o, s->data, s->len);
    assert_non_null(r);
    check_reader(r, e);
    ms_reader_free(r);

    chunk_src src = {.p = s->data, .len = s->len, .step = 7};
    r = ms_reader_new(o, chunk_read, &src);
    assert_non_null(r);
    check_reader(r, e);
    ms_reader_free(r);
}

static void expect_fail(const th_buf *s, int status, int64_t record, uint64_t lo, uint64_t hi,
                        const char *frag)
{
    expect e = {status, record, lo, hi, frag};
    expect_fail_opts(s, NULL, &e);
}

/* Reads @s to END with both readers; returns the record count before END. */
static size_t expect_ok(const th_buf *s)
{
    size_t n, n2;
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    assert_non_null(r);
    int rc = th_read_all(r, &n);
    if (rc)
        fail_msg("%s", ms_reader_errmsg(r));
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    chunk_src src = {.p = s->data, .len = s->len, .step = 5};
    r = ms_reader_new(NULL, chunk_read, &src);
    assert_status(th_read_all(r, &n2), 0);
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    assert_int_equal(n, n2);
    return n;
}

static void small_stream(th_stream *ts, th_buf *raw)
{
    th_buf b = {0};
    th_write_small_stream(&b, NULL);
    th_stream_parse(ts, b.data, b.len);
    if (raw)
        *raw = b;
    else
        th_buf_free(&b);
}

/* Concatenates the preamble and the original bytes of records in @order
 * (checksums untouched): drops, swaps and duplicates on the wire. */
static void splice(const th_stream *ts, const th_buf *raw, const size_t *order, size_t n,
                   th_buf *out)
{
    out->len = 0;
    th_buf_append(out, raw->data, ts->pre.len);
    for (size_t i = 0; i < n; i++) {
        uint64_t off = th_stream_offset(ts, order[i]);
        th_buf_append(out, raw->data + off, 16 + ts->rec[order[i]].payload.len);
    }
}

/* ------------------------------------------------------------- baseline */

static void test_baseline(void **state)
{
    (void)state;
    th_stream ts;
    th_buf raw, b = {0};
    small_stream(&ts, &raw);
    /* the layout the other tests rely on */
    assert_int_equal(ts.n, 5);
    assert_int_equal(ts.rec[0].type, MS_REC_REGIONS);
    assert_int_equal(ts.rec[1].type, MS_REC_PAGES);
    assert_int_equal(ts.rec[2].type, MS_REC_PAGES);
    assert_int_equal(ts.rec[3].type, MS_REC_DEVICE);
    assert_int_equal(ts.rec[4].type, MS_REC_END);
    /* rebuilding with helpers.c's chain gives the writer's bytes */
    th_stream_build(&ts, &b);
    assert_int_equal(b.len, raw.len);
    assert_memory_equal(b.data, raw.data, raw.len);
    assert_int_equal(expect_ok(&b), 4);
    th_buf_free(&b);
    th_buf_free(&raw);
    th_stream_free(&ts);
}

/* ------------------------------------------------------------- preamble */

static void patched_preamble(void (*patch)(uint8_t *pre, void *arg), void *arg, bool fix,
                             th_buf *out)
{
    th_stream ts;
    small_stream(&ts, NULL);
    patch(ts.pre.data, arg);
    if (fix)
        th_stream_fix_preamble(&ts);
    th_stream_build(&ts, out);
    th_stream_free(&ts);
}

static void set16(uint8_t *p, void *arg)
{
    const uint64_t *a = arg; /* {offset, value} */
    th_put16(p + a[0], (uint16_t)a[1]);
}

static void set32(uint8_t *p, void *arg)
{
    const uint64_t *a = arg;
    th_put32(p + a[0], (uint32_t)a[1]);
}

static void set64(uint8_t *p, void *arg)
{
    const uint64_t *a = arg;
    th_put64(p + a[0], a[1]);
}

static void xor8(uint8_t *p, void *arg)
{
    const uint64_t *a = arg;
    p[a[0]] ^= (uint8_t)a[1];
}

static void test_newer_major(void **state)
{
    (void)state;
    th_buf b = {0};
    uint64_t major2[] = {8, 2};
    patched_preamble(set16, major2, true, &b);
    expect_fail(&b, MS_EVERSION, -1, 8, 8, "format 2.1");
    /* a major version is checked before anything after the first 16 bytes:
     * a 2.x preamble may have another size and no valid 1.x checksum */
    th_put32(b.data + 12, 40);
    expect_fail(&b, MS_EVERSION, -1, 8, 8, "format 2.1");
    th_buf_free(&b);

    uint64_t major0[] = {8, 0};
    patched_preamble(set16, major0, true, &b);
    expect_fail(&b, MS_EVERSION, -1, 8, 8, "format 0.1");
    th_buf_free(&b);
}

static void test_unknown_required_feature(void **state)
{
    (void)state;
    th_buf b = {0};
    uint64_t bit5[] = {16, 1u << 5};
    patched_preamble(set64, bit5, true, &b);
    expect_fail(&b, MS_EFEATURE, -1, 16, 23, "bit 5");
    th_buf_free(&b);
    uint64_t bit63[] = {16, 1ull << 63};
    patched_preamble(set64, bit63, true, &b);
    expect_fail(&b, MS_EFEATURE, -1, 16, 23, "bit 63");
    th_buf_free(&b);
}

/* Section 3.1/3.2/11: a newer minor, unknown optional bits and a longer
 * preamble are all read. */
static void test_forward_compatible_preamble(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    small_stream(&ts, NULL);
    th_put16(ts.pre.data + 10, 7);                     /* minor 7 */
    th_put64(ts.pre.data + 24, 0x8000000000000101ull); /* optional bits */
    th_stream_fix_preamble(&ts);
    th_stream_build(&ts, &b);
    assert_int_equal(expect_ok(&b), 4);
    const ms_header *h;
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(ms_reader_header(r, &h), 0);
    assert_int_equal(h->major, 1);
    assert_int_equal(h->minor, 7);
    assert_int_equal(h->optional_features, 0x8000000000000101ull);
    ms_reader_free(r);

    /* a 1.1 preamble of 128 bytes: 16 bytes of extension before the
     * checksum; the chain is seeded by the new checksum */
    th_buf pre = {0};
    th_buf_append(&pre, ts.pre.data, 104);
    static const uint8_t ext[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    th_buf_append(&pre, ext, sizeof ext);
    th_buf_append(&pre, ts.pre.data + 104, 8);
    th_put32(pre.data + 12, 128);
    th_put16(pre.data + 10, 1);
    th_buf_free(&ts.pre);
    ts.pre = pre;
    th_stream_fix_preamble(&ts);
    th_stream_fix_end(&ts); /* END's byte total moves by 16 */
    th_stream_build(&ts, &b);
    assert_int_equal(expect_ok(&b), 4);
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void test_bad_magic(void **state)
{
    (void)state;
    th_buf b = {0};
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t flip[] = {i, 0x20};
        patched_preamble(xor8, flip, true, &b);
        expect_fail(&b, MS_EMAGIC, -1, 0, 0, "magic");
        th_buf_free(&b);
    }
    /* CR LF translated to LF: the PNG-style check of section 3.1 */
    th_buf good = {0};
    th_write_small_stream(&good, NULL);
    th_buf_append(&b, good.data, 5);
    th_buf_append(&b, good.data + 6, good.len - 6);
    expect_fail(&b, MS_EMAGIC, -1, 0, 0, "magic");
    th_buf_free(&b);
    th_buf_free(&good);
    th_buf_append(&b, "hello, world\n", 13);
    expect_fail(&b, MS_EMAGIC, -1, 0, 0, "magic");
    th_buf_free(&b);
}

static void test_qemu_stream(void **state)
{
    (void)state;
    /* QEMU_VM_FILE_MAGIC "QEVM" then QEMU_VM_FILE_VERSION 3, big-endian */
    static const uint8_t qemu[] = {'Q',  'E', 'V', 'M', 0,   0,   0,   3,   0x01, 0x00, 0x00, 0x00,
                                   0x0c, 'p', 'c', '-', 'q', '3', '5', '-', '7',  '.',  '2',  0};
    th_buf b = {0};
    th_buf_append(&b, qemu, sizeof qemu);
    expect_fail(&b, MS_EMAGIC, -1, 0, 0, "QEMU");
    th_buf_free(&b);
}

static void test_preamble_checksum(void **state)
{
    (void)state;
    th_buf b = {0};
    uint64_t name[] = {40, 0x01}; /* writer name changed, checksum kept */
    patched_preamble(xor8, name, false, &b);
    expect_fail(&b, MS_ECHECKSUM, -1, 104, 104, "checksum");
    th_buf_free(&b);
    uint64_t sum[] = {110, 0x80}; /* the checksum itself */
    patched_preamble(xor8, sum, false, &b);
    expect_fail(&b, MS_ECHECKSUM, -1, 104, 104, "checksum");
    th_buf_free(&b);
}

static void test_preamble_fields(void **state)
{
    (void)state;
    th_buf b = {0};
    /* section 3.1 checks 3 and 6, with a valid checksum each time */
    uint64_t size100[] = {12, 100}, size116[] = {12, 116}, size8k[] = {12, 8192};
    patched_preamble(set32, size100, true, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 12, 12, "header size");
    th_buf_free(&b);
    patched_preamble(set32, size116, true, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 12, 12, "header size");
    th_buf_free(&b);
    patched_preamble(set32, size8k, true, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 12, 12, "header size");
    th_buf_free(&b);
    uint64_t reserved[] = {36, 1};
    patched_preamble(set32, reserved, true, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 36, 39, "reserved");
    th_buf_free(&b);
    static const uint64_t bad_sizes[] = {0, 2048, 4097, 6000, 131072};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        uint64_t ps[] = {32, bad_sizes[i]};
        patched_preamble(set32, ps, true, &b);
        expect_fail(&b, MS_ECORRUPT, -1, 32, 35, "page size");
        th_buf_free(&b);
    }
    uint64_t after_nul[] = {40 + 20, 'x'}; /* byte after the name's NUL */
    patched_preamble(xor8, after_nul, true, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 40, 71, "writer name");
    th_buf_free(&b);
    uint64_t bad_utf8[] = {72, 0xff ^ 'a'}; /* writer version "a..." -> 0xff */
    th_stream ts;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_version = "abc";
    th_buf good = {0};
    th_write_small_stream(&good, &o);
    th_stream_parse(&ts, good.data, good.len);
    xor8(ts.pre.data, bad_utf8);
    th_stream_fix_preamble(&ts);
    th_stream_build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, -1, 72, 103, "UTF-8");
    th_buf_free(&b);
    th_buf_free(&good);
    th_stream_free(&ts);
}

static void test_truncated_preamble(void **state)
{
    (void)state;
    th_buf good = {0}, b = {0};
    th_write_small_stream(&good, NULL);
    expect_fail(&b, MS_ETRUNCATED, -1, 0, 0, "empty"); /* no bytes at all */
    static const size_t cuts[] = {4, 15, 16, 50, 111};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        b.len = 0;
        th_buf_append(&b, good.data, cuts[i]);
        expect_fail(&b, MS_ETRUNCATED, -1, 0, cuts[i], "truncated");
    }
    th_buf_free(&b);
    th_buf_free(&good);
}

/* ---------------------------------------------------------------- records */

static void test_flipped_payload_byte(void **state)
{
    (void)state;
    th_stream ts;
    th_buf raw, b = {0};
    small_stream(&ts, &raw);
    for (size_t i = 0; i < ts.n; i++) {
        uint64_t off = th_stream_offset(&ts, i);
        size_t len = ts.rec[i].payload.len;
        b.len = 0;
        th_buf_append(&b, raw.data, raw.len);
        b.data[off + 16 + len / 2] ^= 0x04;
        expect_fail(&b, MS_ECHECKSUM, (int64_t)i, off, off + 15, "checksum");
    }
    /* the header's first 8 bytes are covered too: clear MUST_UNDERSTAND */
    size_t dev = th_stream_find(&ts, MS_REC_DEVICE, 0);
    uint64_t off = th_stream_offset(&ts, dev);
    b.len = 0;
    th_buf_append(&b, raw.data, raw.len);
    b.data[off + 2] &= (uint8_t)~MS_RECORD_MUST_UNDERSTAND;
    expect_fail(&b, MS_ECHECKSUM, (int64_t)dev, off, off + 15, "checksum");
    th_buf_free(&b);
    th_buf_free(&raw);
    th_stream_free(&ts);
}

static void test_record_header_fields(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    small_stream(&ts, NULL);
    size_t dev = th_stream_find(&ts, MS_REC_DEVICE, 0);
    uint64_t off = th_stream_offset(&ts, dev);
    ts.rec[dev].flags |= 0x0100; /* a reserved flag bit, checksum valid */
    th_stream_build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, (int64_t)dev, off, off + 3, "flag");
    ts.rec[dev].flags = MS_RECORD_MUST_UNDERSTAND;
    ts.rec[dev].type = 0; /* type 0 is invalid */
    th_stream_build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, (int64_t)dev, off, off + 1, "type 0");
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void test_unknown_must_understand(void **state)
{
    (void)state;
    static const uint16_t types[] = {0x0009, 0x0100, 0x8000, 0xffff};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        th_stream ts;
        th_buf b = {0};
        small_stream(&ts, NULL);
        th_stream_insert(&ts, 2, types[i], MS_RECORD_MUST_UNDERSTAND, "abc", 3);
        th_stream_fix_end(&ts);
        th_stream_build(&ts, &b);
        char frag[16];
        snprintf(frag, sizeof frag, "0x%04x", types[i]);
        uint64_t off = th_stream_offset(&ts, 2);
        expect_fail(&b, MS_EUNKNOWN, 2, off, off, frag);
        th_buf_free(&b);
        th_stream_free(&ts);
    }
}

static void test_unknown_optional_record(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    small_stream(&ts, NULL);
    static const char hello[] = "private data";
    th_stream_insert(&ts, 0, 0x8001, 0, hello, sizeof hello);
    th_stream_insert(&ts, 3, 0x0042, 0, NULL, 0); /* empty payload */
    th_stream_insert(&ts, ts.n - 1, 0x7fff, 0, "\x01\x02", 2);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);

    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    const ms_record *rec;
    int rc;
    size_t unknown = 0, index = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        assert_int_equal(rec->index, index);
        assert_int_equal(rec->type, ts.rec[index].type);
        assert_int_equal(rec->length, ts.rec[index].payload.len);
        if (!rec->known) {
            unknown++;
            assert_int_equal(rec->flags, 0);
            if (rec->length)
                assert_memory_equal(rec->payload, ts.rec[index].payload.data, rec->length);
        }
        if (rec->type == MS_REC_END)
            assert_int_equal(rec->totals.records, ts.n - 1); /* unknown ones count */
        index++;
    }
    assert_status(rc, 0);
    assert_status(ms_reader_expect_eof(r), 0);
    assert_int_equal(unknown, 3);
    assert_int_equal(index, ts.n);
    ms_reader_free(r);
    assert_int_equal(expect_ok(&b), ts.n - 1);
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void test_missing_end(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    small_stream(&ts, NULL);
    th_stream_remove(&ts, ts.n - 1);
    th_stream_build(&ts, &b);
    expect_fail(&b, MS_ETRUNCATED, (int64_t)ts.n, b.len, b.len, "END");
    /* even with nothing but the preamble */
    b.len = ts.pre.len;
    expect_fail(&b, MS_ETRUNCATED, 0, b.len, b.len, "END");
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void test_truncated_records(void **state)
{
    (void)state;
    th_stream ts;
    th_buf raw, b = {0};
    small_stream(&ts, &raw);
    for (size_t i = 0; i < ts.n; i++) {
        uint64_t off = th_stream_offset(&ts, i);
        size_t len = ts.rec[i].payload.len;
        /* inside the header */
        static const size_t in_header[] = {1, 5, 8, 15};
        for (size_t k = 0; k < 4; k++) {
            b.len = 0;
            th_buf_append(&b, raw.data, off + in_header[k]);
            expect_fail(&b, MS_ETRUNCATED, (int64_t)i, b.len, b.len, "header");
        }
        /* inside the payload */
        size_t cuts[] = {0, len / 2, len - 1};
        for (size_t k = 0; k < 3; k++) {
            if (len == 0)
                continue;
            b.len = 0;
            th_buf_append(&b, raw.data, off + 16 + cuts[k]);
            expect_fail(&b, MS_ETRUNCATED, (int64_t)i, b.len, b.len, "payload");
        }
    }
    th_buf_free(&b);
    th_buf_free(&raw);
    th_stream_free(&ts);
}

static void test_length_limits(void **state)
{
    (void)state;
    th_stream ts;
    th_buf raw, b = {0};
    small_stream(&ts, &raw);
    size_t dev = th_stream_find(&ts, MS_REC_DEVICE, 0);
    uint64_t off = th_stream_offset(&ts, dev);

    /* 64 MiB + 1: beyond the spec, refused before reading the payload,
     * whatever the options say */
    b.len = 0;
    th_buf_append(&b, raw.data, raw.len);
    th_put32(b.data + off + 4, MS_MAX_RECORD_PAYLOAD + 1);
    expect_fail(&b, MS_ELIMIT, (int64_t)dev, off + 4, off + 7, "limit");
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.max_record_size = UINT32_MAX;
    expect e = {MS_ELIMIT, (int64_t)dev, off + 4, off + 7, "limit"};
    expect_fail_opts(&b, &o, &e);

    /* exactly 64 MiB is allowed: what follows is a truncation */
    th_put32(b.data + off + 4, MS_MAX_RECORD_PAYLOAD);
    expect_fail(&b, MS_ETRUNCATED, (int64_t)dev, b.len, b.len, "truncated");

    /* a reader limit of 4096 refuses the first PAGES record (> 4096) */
    size_t pg = th_stream_find(&ts, MS_REC_PAGES, 0);
    assert_true(ts.rec[pg].payload.len > 4096);
    uint64_t poff = th_stream_offset(&ts, pg);
    o.max_record_size = 4096;
    expect e2 = {MS_ELIMIT, (int64_t)pg, poff + 4, poff + 7, "4096"};
    expect_fail_opts(&raw, &o, &e2);

    th_buf_free(&b);
    th_buf_free(&raw);
    th_stream_free(&ts);
}

static void test_dropped_swapped_duplicated(void **state)
{
    (void)state;
    th_stream ts;
    th_buf raw, b = {0};
    small_stream(&ts, &raw); /* REGIONS PAGES PAGES DEVICE END */

    static const size_t dropped[] = {0, 1, 3, 4}; /* record 2 dropped */
    splice(&ts, &raw, dropped, 4, &b);
    uint64_t at = th_stream_offset(&ts, 2); /* record 3 now sits there */
    expect_fail(&b, MS_ECHECKSUM, 2, at, at + 15, "checksum");

    static const size_t first_dropped[] = {1, 2, 3, 4};
    splice(&ts, &raw, first_dropped, 4, &b);
    expect_fail(&b, MS_ECHECKSUM, 0, PRE, PRE + 15, "checksum");

    static const size_t swapped[] = {0, 2, 1, 3, 4};
    splice(&ts, &raw, swapped, 5, &b);
    at = th_stream_offset(&ts, 1);
    expect_fail(&b, MS_ECHECKSUM, 1, at, at + 15, "checksum");

    static const size_t duplicated[] = {0, 1, 1, 2, 3, 4};
    splice(&ts, &raw, duplicated, 6, &b);
    at = th_stream_offset(&ts, 2);
    expect_fail(&b, MS_ECHECKSUM, 2, at, at + 15, "checksum");

    th_buf_free(&b);
    th_buf_free(&raw);
    th_stream_free(&ts);
}

static void test_bytes_after_end(void **state)
{
    (void)state;
    th_buf b = {0};
    th_write_small_stream(&b, NULL);
    size_t end = b.len;
    th_buf_append(&b, "\0", 1);
    for (int via = 0; via < 2; via++) {
        chunk_src src = {.p = b.data, .len = b.len, .step = 3};
        ms_reader *r =
            via ? ms_reader_new(NULL, chunk_read, &src) : ms_reader_new_memory(NULL, b.data, b.len);
        assert_status(ms_reader_expect_eof(r), MS_ESTATE); /* END not reached yet */
        assert_status(ms_reader_status(r), 0);             /* and not a failure */
        assert_status(th_read_all(r, NULL), 0);            /* a transport reader stops */
        assert_int_equal(ms_reader_offset(r), end);        /* never reads past END */
        assert_status(ms_reader_expect_eof(r), MS_ECORRUPT);
        assert_contains(ms_reader_errmsg(r), "END");
        assert_int_equal(ms_reader_error_offset(r), end);
        assert_status(ms_reader_expect_eof(r), MS_ECORRUPT);
        ms_reader_free(r);
    }
    th_buf_free(&b);
}

/* END totals that disagree with the stream, each re-encoded validly. */
static void test_end_totals(void **state)
{
    (void)state;
    for (int what = 0; what < 8; what++) {
        th_stream ts;
        th_buf b = {0}, end = {0};
        small_stream(&ts, NULL);
        size_t ei = ts.n - 1;
        ms_totals t;
        th_stream_totals(&ts, ei, &t);
        const char *frag = "END";
        /* clang-format off */
        switch (what) {
        case 0: t.records++; frag = "records"; break;
        case 1: t.records--; frag = "records"; break;
        case 2: t.bytes++; frag = "byte"; break;
        case 3: t.pages[MS_PAGE_DATA]++; frag = "pages"; break;
        case 4: t.pages[MS_PAGE_ZERO] = 0; frag = "pages"; break;
        case 5: t.devices = 0; frag = "devices"; break;
        case 6: t.pages[3] = 1; frag = "state"; break; /* a state 1.0 lacks */
        case 7: break; /* handled below: a required key missing */
        }
        /* clang-format on */
        th_cbor_end(&end, &t);
        if (what == 7) { /* drop "devices": map(3) without key 3 */
            end.data[0] = 0xa3;
            end.len -= 2;
            frag = "required";
        }
        th_stream_set(&ts, ei, end.data, end.len);
        th_stream_build(&ts, &b);
        uint64_t off = th_stream_offset(&ts, ei);
        expect_fail(&b, MS_ECORRUPT, (int64_t)ei, off, off + 16 + end.len, frag);
        th_buf_free(&end);
        th_buf_free(&b);
        th_stream_free(&ts);
    }
}

static void test_record_order(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0}, info = {0};
    small_stream(&ts, NULL);
    th_cbor_head(&info, 5, 1);
    th_cbor_uint(&info, 0);
    th_cbor_text(&info, "pc");
    /* INFO anywhere but record 0 */
    th_stream_insert(&ts, 1, MS_REC_INFO, 0, info.data, info.len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    uint64_t off = th_stream_offset(&ts, 1);
    expect_fail(&b, MS_ECORRUPT, 1, off, off + 16, "INFO");
    /* INFO as record 0 is fine, a second one is not */
    th_stream_insert(&ts, 0, MS_REC_INFO, 0, info.data, info.len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    off = th_stream_offset(&ts, 2);
    expect_fail(&b, MS_ECORRUPT, 2, off, off + 16, "INFO");
    th_stream_remove(&ts, 2);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    assert_int_equal(expect_ok(&b), 5);
    th_buf_free(&info);
    th_buf_free(&b);
    th_stream_free(&ts);
}

/* Section 5: unknown keys are ignored, a key held twice is refused. */
static void info_stream(const char *payload_hex, th_buf *out)
{
    th_stream ts;
    th_buf p = {0};
    small_stream(&ts, NULL);
    for (const char *h = payload_hex; *h;) {
        unsigned v;
        if (*h == ' ') {
            h++;
            continue;
        }
        assert_int_equal(sscanf(h, "%2x", &v), 1);
        th_buf_u8(&p, (uint8_t)v);
        h += 2;
    }
    th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, out);
    th_buf_free(&p);
    th_stream_free(&ts);
}

static void test_info_map_rules(void **state)
{
    (void)state;
    th_buf b = {0};
    info_stream("a2 00 62 70 63 05 82 01 02", &b); /* {0: "pc", 5: [1, 2]} */
    assert_int_equal(expect_ok(&b), 5);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, MS_REC_INFO);
    assert_string_equal(rec->info.machine, "pc");
    assert_null(rec->info.description);
    ms_reader_free(r);

    info_stream("a2 00 62 70 63 00 62 70 63", &b); /* key 0 twice */
    expect_fail(&b, MS_ECBOR, 0, PRE + 16, PRE + 16 + 9, "duplicate");
    info_stream("a1 61 6b 00", &b); /* a text key */
    expect_fail(&b, MS_ECBOR, 0, PRE + 16, PRE + 16 + 4, "key");
    info_stream("a1 00 60", &b); /* empty machine */
    expect_fail(&b, MS_ECORRUPT, 0, PRE + 16, PRE + 16 + 3, "machine");
    info_stream("a0 00", &b); /* a trailing byte */
    expect_fail(&b, MS_ECORRUPT, 0, PRE + 16, PRE + 16 + 2, "trailing");
    th_buf_free(&b);
}

/* An unknown key held twice: section 5 says a reader MUST refuse it. */
static void test_info_duplicate_unknown_key(void **state)
{
    (void)state;
    th_buf b = {0};
    info_stream("a2 18 40 00 18 40 00", &b); /* {64: 0, 64: 0} */
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    int rc = th_read_all(r, NULL);
    ms_reader_free(r);
    th_buf_free(&b);
    assert_int_equal(rc, MS_ECBOR);
}

/* -------------------------------------------------- PAGES, hand-built */

/* preamble + REGIONS {1 "ram" gpa 0, 8 pages of 4096} + PAGES @pages + END */
static void pages_stream(const th_buf *pages, th_buf *out, uint64_t *payload_at)
{
    th_buf empty = {0}, regions = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &empty);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream ts;
    th_stream_parse(&ts, empty.data, empty.len);
    th_cbor_head(&regions, 4, 1);
    th_cbor_region(&regions, 1, "ram", true, 0, 8 * 4096, 4096);
    th_stream_insert(&ts, 0, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, regions.data, regions.len);
    th_stream_insert(&ts, 1, MS_REC_PAGES, MS_RECORD_MUST_UNDERSTAND, pages->data, pages->len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, out);
    *payload_at = th_stream_offset(&ts, 1) + 16;
    th_stream_free(&ts);
    th_buf_free(&empty);
    th_buf_free(&regions);
}

/* A valid PAGES payload: DATA 0..1, ZERO 2..4, DATA 6, raw. */
static void good_pages(th_buf *p)
{
    p->len = 0;
    th_pages_head(p, 1, 3, MS_ENCODING_RAW);
    th_pages_extent(p, 0, 2, MS_PAGE_DATA);
    th_pages_extent(p, 2, 3, MS_PAGE_ZERO);
    th_pages_extent(p, 6, 1, MS_PAGE_DATA);
    for (int i = 0; i < 3 * 4096; i++)
        th_buf_u8(p, (uint8_t)(i * 7 + 1));
}

#define EXT(k) (16u + 24u * (k)) /* payload offset of extent k */

static void expect_pages_fault(const th_buf *p, int status, uint64_t lo, uint64_t hi,
                               const char *frag)
{
    th_buf b = {0};
    uint64_t at;
    pages_stream(p, &b, &at);
    expect_fail(&b, status, 1, at + lo, at + hi, frag);
    th_buf_free(&b);
}

static void test_pages_good_control(void **state)
{
    (void)state;
    th_buf p = {0}, b = {0};
    uint64_t at;
    good_pages(&p);
    pages_stream(&p, &b, &at);
    assert_int_equal(expect_ok(&b), 2);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, MS_REC_PAGES);
    assert_int_equal(rec->pages.extent_count, 3);
    assert_int_equal(rec->pages.data_size, 3 * 4096);
    assert_memory_equal(rec->pages.data, p.data + EXT(3), 3 * 4096);
    ms_reader_free(r);
    th_buf_free(&p);
    th_buf_free(&b);
}

static void test_pages_extent_outside_region(void **state)
{
    (void)state;
    th_buf p = {0};
    good_pages(&p);
    th_put32(p.data + EXT(2) + 8, 3); /* pages 6..8 of 0..7 */
    th_buf_append(&p, p.data + EXT(3), 2 * 4096);
    expect_pages_fault(&p, MS_ECORRUPT, EXT(2), EXT(2) + 23, "outside");
    good_pages(&p);
    th_put64(p.data + EXT(2), 8); /* first page just past the end */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(2), EXT(2) + 23, "outside");
    good_pages(&p);
    th_put64(p.data + EXT(2), UINT64_MAX); /* first + count wraps */
    th_put32(p.data + EXT(2) + 8, 2);
    th_buf_append(&p, p.data + EXT(3), 4096);
    expect_pages_fault(&p, MS_ECORRUPT, EXT(2), EXT(2) + 23, "outside");
    th_buf_free(&p);
}

static void test_pages_extents_out_of_order(void **state)
{
    (void)state;
    th_buf p = {0};
    good_pages(&p);
    /* swap extents 0 and 1: ZERO 2..4 then DATA 0..1 */
    uint8_t tmp[24];
    memcpy(tmp, p.data + EXT(0), 24);
    memcpy(p.data + EXT(0), p.data + EXT(1), 24);
    memcpy(p.data + EXT(1), tmp, 24);
    expect_pages_fault(&p, MS_ECORRUPT, EXT(1), EXT(1) + 23, "ascend");
    good_pages(&p);
    th_put64(p.data + EXT(1), 1); /* ZERO 1..3 overlaps DATA 0..1 */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(1), EXT(1) + 23, "overlap");
    th_buf_free(&p);
}

static void test_pages_extent_fields(void **state)
{
    (void)state;
    th_buf p = {0};
    good_pages(&p);
    th_put32(p.data + EXT(1) + 8, 0); /* zero count */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(1), EXT(1) + 23, "count");
    static const uint8_t states[] = {0, 3, 255};
    for (size_t i = 0; i < 3; i++) {
        good_pages(&p);
        p.data[EXT(1) + 12] = states[i];
        expect_pages_fault(&p, MS_ECORRUPT, EXT(1), EXT(1) + 23, "state");
    }
    for (unsigned k = 13; k < 16; k++) { /* reserved bytes */
        good_pages(&p);
        p.data[EXT(2) + k] = 0x10;
        expect_pages_fault(&p, MS_ECORRUPT, EXT(2), EXT(2) + 23, "reserved");
    }
    good_pages(&p);
    th_put64(p.data + EXT(0) + 16, 1); /* arg must be 0 for DATA */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(0), EXT(0) + 23, "argument");
    good_pages(&p);
    th_put64(p.data + EXT(1) + 16, 1ull << 40); /* ... and for ZERO */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(1), EXT(1) + 23, "argument");
    th_buf_free(&p);
}

static void test_pages_header_fields(void **state)
{
    (void)state;
    th_buf p = {0};
    for (unsigned k = 9; k < 16; k++) {
        good_pages(&p);
        p.data[k] = 1;
        expect_pages_fault(&p, MS_ECORRUPT, 0, 15, "reserved");
    }
    good_pages(&p);
    p.data[8] = 2; /* unknown encoding */
    expect_pages_fault(&p, MS_ECORRUPT, 0, 15, "encoding");
    good_pages(&p);
    th_put32(p.data + 4, 0); /* no extents */
    expect_pages_fault(&p, MS_ECORRUPT, 0, 15, "extents");
    good_pages(&p);
    th_put32(p.data + 4, 1000000); /* more extents than the payload holds */
    expect_pages_fault(&p, MS_ECORRUPT, 0, 15, "extents");
    p.len = 10; /* shorter than the batch header */
    expect_pages_fault(&p, MS_ECORRUPT, 0, 15, "header");
    th_buf_free(&p);
}

static void test_pages_data_size(void **state)
{
    (void)state;
    th_buf p = {0};
    good_pages(&p);
    th_buf_u8(&p, 0); /* one byte too many */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(3), EXT(3), "data");
    good_pages(&p);
    p.len -= 4096; /* one page short */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(3), EXT(3), "data");
    good_pages(&p);
    p.len = EXT(3); /* none at all */
    expect_pages_fault(&p, MS_ECORRUPT, EXT(3), EXT(3), "data");
    good_pages(&p);
    p.data[8] = MS_ENCODING_ZSTD; /* raw bytes claimed to be zstd */
    expect_pages_fault(&p, MS_ECOMPRESS, EXT(3), EXT(3), "zstd");
    th_buf_free(&p);
}

/* A zstd frame that declares a huge content size (2^40 bytes) for one DATA
 * page: refused from the frame header, before anything is allocated for it. */
static void test_pages_zstd_huge_frame(void **state)
{
    (void)state;
    th_buf p = {0}, s = {0};
    th_pages_head(&p, 1, 1, MS_ENCODING_ZSTD);
    th_pages_extent(&p, 0, 1, MS_PAGE_DATA);
    /* magic; descriptor: single segment, 8-byte content size; 2^40; then
     * one empty last raw block */
    static const uint8_t frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0,
                                    1,    0,    0,    0x01, 0x00, 0x00};
    th_buf_append(&p, frame, sizeof frame);
    expect_pages_fault(&p, MS_ECOMPRESS, EXT(1), EXT(1), "content size");

    uint64_t at;
    pages_stream(&p, &s, &at);
    th_alloc a;
    th_alloc_init(&a, SIZE_MAX);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.allocator = th_allocator(&a);
    ms_reader *r = ms_reader_new_memory(&o, s.data, s.len);
    assert_status(th_read_all(r, NULL), MS_ECOMPRESS);
    ms_reader_free(r);
    assert_true(a.peak_block < 64 * 1024);
    th_buf_free(&p);
    th_buf_free(&s);
}

static void test_pages_undeclared_region(void **state)
{
    (void)state;
    th_buf p = {0};
    good_pages(&p);
    th_put32(p.data, 2);
    expect_pages_fault(&p, MS_ECORRUPT, 0, 3, "region 2");
    th_buf_free(&p);
}

/* -------------------------------------------------------------- REGIONS */

/* preamble + one or two REGIONS records + END. */
static void regions_stream(const th_buf *r0, const th_buf *r1, th_buf *out, uint64_t *offs)
{
    th_buf empty = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &empty);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream ts;
    th_stream_parse(&ts, empty.data, empty.len);
    th_stream_insert(&ts, 0, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, r0->data, r0->len);
    if (r1)
        th_stream_insert(&ts, 1, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, r1->data, r1->len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, out);
    offs[0] = th_stream_offset(&ts, 0);
    offs[1] = th_stream_offset(&ts, 1);
    th_stream_free(&ts);
    th_buf_free(&empty);
}

typedef struct rdesc {
    uint32_t id;
    const char *name;
    bool has_gpa;
    uint64_t gpa, size;
    uint32_t ps;
} rdesc;

static void regions_payload(th_buf *b, const rdesc *d, size_t n)
{
    b->len = 0;
    th_cbor_head(b, 4, n);
    for (size_t i = 0; i < n; i++)
        th_cbor_region(b, d[i].id, d[i].name, d[i].has_gpa, d[i].gpa, d[i].size, d[i].ps);
}

static void test_regions_faults(void **state)
{
    (void)state;
    th_buf a = {0}, c = {0}, b = {0};
    uint64_t off[2];
    /* control: two records, three regions */
    const rdesc good[] = {{1, "lo", true, 0, 1 * MIB, 4096}, {2, "hi", true, 1 * MIB, MIB, 4096}};
    const rdesc more[] = {{3, "vram", false, 0, 8 * MIB, 2 * MIB}};
    regions_payload(&a, good, 2);
    regions_payload(&c, more, 1);
    regions_stream(&a, &c, &b, off);
    assert_int_equal(expect_ok(&b), 2);

    /* duplicate id in one record */
    const rdesc dup1[] = {{1, "lo", true, 0, MIB, 4096}, {1, "hi", true, MIB, MIB, 4096}};
    regions_payload(&a, dup1, 2);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "twice");
    /* duplicate id across records */
    const rdesc dup2[] = {{2, "other", false, 0, MIB, 4096}};
    regions_payload(&a, good, 2);
    regions_payload(&c, dup2, 1);
    regions_stream(&a, &c, &b, off);
    expect_fail(&b, MS_ECORRUPT, 1, off[1] + 16, off[1] + 16 + c.len, "twice");
    /* overlapping guest-physical ranges, by one page */
    const rdesc ovl[] = {{1, "lo", true, 0, MIB, 4096}, {2, "hi", true, MIB - 4096, MIB, 4096}};
    regions_payload(&a, ovl, 2);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "overlap");
    /* touching is not overlapping, and regions without gpa never overlap */
    const rdesc touch[] = {{1, "lo", true, 0, MIB, 4096},
                           {2, "hi", true, MIB, MIB, 4096},
                           {3, "x", false, 0, MIB, 4096},
                           {4, "y", false, 0, MIB, 4096}};
    regions_payload(&a, touch, 4);
    regions_stream(&a, NULL, &b, off);
    assert_int_equal(expect_ok(&b), 1);

    /* each region rule of section 5.2 */
    static const struct {
        rdesc d;
        const char *frag;
    } bad[] = {
        {{1, "r", true, 0, 0, 4096}, "size"},                         /* size 0 */
        {{1, "r", true, 0, 4096 + 512, 4096}, "size"},                /* not a multiple */
        {{1, "r", true, 0, MIB, 3 * 4096}, "page size"},              /* not a power of 2 */
        {{1, "r", true, 0, MIB, 2048}, "page size"},                  /* below the base */
        {{1, "r", true, 0, 64 * MIB, 32 * MIB}, "page size"},         /* above 16 MiB */
        {{1, "r", true, 4096 * 3 + 1, MIB, 4096}, "aligned"},         /* gpa misaligned */
        {{1, "r", true, UINT64_MAX - 4095, 2 * 4096, 4096}, "wraps"}, /* gpa + size wraps */
        {{1, "", true, 0, MIB, 4096}, "name"},                        /* empty name */
        {{1, "a\xc3(b", true, 0, MIB, 4096}, "UTF-8"},                /* bad UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        regions_payload(&a, &bad[i].d, 1);
        regions_stream(&a, NULL, &b, off);
        expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, bad[i].frag);
    }
    /* a name of 256 bytes */
    char longname[257];
    memset(longname, 'n', 256);
    longname[256] = 0;
    rdesc ln = {1, longname, false, 0, MIB, 4096};
    regions_payload(&a, &ln, 1);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "name");

    /* a name holding a NUL byte (section 5.2: no NUL) */
    a.len = 0;
    th_cbor_head(&a, 4, 1);
    th_cbor_head(&a, 5, 4);
    th_cbor_uint(&a, 0);
    th_cbor_uint(&a, 1);
    th_cbor_uint(&a, 1);
    th_cbor_head(&a, 3, 3);
    th_buf_append(&a, "a\0b", 3);
    th_cbor_uint(&a, 3);
    th_cbor_uint(&a, MIB);
    th_cbor_uint(&a, 4);
    th_cbor_uint(&a, 4096);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "NUL");

    /* an empty array; a region map without its size (key 3) */
    a.len = 0;
    th_cbor_head(&a, 4, 0);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "array");
    a.len = 0;
    th_cbor_head(&a, 4, 1);
    th_cbor_head(&a, 5, 3);
    th_cbor_uint(&a, 0);
    th_cbor_uint(&a, 1);
    th_cbor_uint(&a, 1);
    th_cbor_text(&a, "r");
    th_cbor_uint(&a, 4);
    th_cbor_uint(&a, 4096);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "required");
    /* an id beyond 32 bits */
    a.len = 0;
    th_cbor_head(&a, 4, 1);
    th_cbor_head(&a, 5, 4);
    th_cbor_uint(&a, 0);
    th_cbor_uint(&a, 1ull << 32);
    th_cbor_uint(&a, 1);
    th_cbor_text(&a, "r");
    th_cbor_uint(&a, 3);
    th_cbor_uint(&a, MIB);
    th_cbor_uint(&a, 4);
    th_cbor_uint(&a, 4096);
    regions_stream(&a, NULL, &b, off);
    expect_fail(&b, MS_ECORRUPT, 0, off[0] + 16, off[0] + 16 + a.len, "32 bits");

    /* more regions than the reader's limit */
    const rdesc three[] = {{1, "a", false, 0, MIB, 4096},
                           {2, "b", false, 0, MIB, 4096},
                           {3, "c", false, 0, MIB, 4096}};
    regions_payload(&a, three, 3);
    regions_stream(&a, NULL, &b, off);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.max_regions = 2;
    expect e = {MS_ELIMIT, 0, off[0] + 16, off[0] + 16 + a.len, "limit"};
    expect_fail_opts(&b, &o, &e);
    o.max_regions = 3;
    ms_reader *r = ms_reader_new_memory(&o, b.data, b.len);
    assert_status(th_read_all(r, NULL), 0);
    assert_int_equal(ms_reader_region_count(r), 3);
    assert_non_null(ms_reader_find_region(r, 2));
    assert_string_equal(ms_reader_find_region(r, 2)->name, "b");
    assert_null(ms_reader_find_region(r, 4));
    ms_reader_free(r);

    th_buf_free(&a);
    th_buf_free(&b);
    th_buf_free(&c);
}

/* ------------------------------------------------------ hostile lengths */

/* A record header claiming 60 MiB followed by 10 bytes: the reader must not
 * allocate for the claim (reader.h, FORMAT.md section 9). */
static void test_hostile_length(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    small_stream(&ts, NULL);
    b.len = 0;
    th_buf_append(&b, ts.pre.data, ts.pre.len);
    uint8_t h[16] = {0};
    th_put16(h, MS_REC_PAGES);
    th_put16(h + 2, MS_RECORD_MUST_UNDERSTAND);
    th_put32(h + 4, 60 * MIB);
    th_buf_append(&b, h, 16);
    th_buf_append(&b, "0123456789", 10);

    for (int via = 0; via < 2; via++) {
        th_alloc count;
        th_alloc_init(&count, SIZE_MAX);
        ms_reader_options o;
        ms_reader_options_init(&o);
        o.allocator = th_allocator(&count);
        chunk_src src = {.p = b.data, .len = b.len, .step = 4096};
        ms_reader *r =
            via ? ms_reader_new(&o, chunk_read, &src) : ms_reader_new_memory(&o, b.data, b.len);
        assert_non_null(r);
        assert_status(th_read_all(r, NULL), MS_ETRUNCATED);
        assert_int_equal(ms_reader_error_record(r), 0);
        assert_contains(ms_reader_errmsg(r), "truncated");
        ms_reader_free(r);
        printf("%s reader: peak single allocation %zu bytes, peak total %zu bytes\n",
               via ? "callback" : "memory", count.peak_block, count.peak_bytes);
        assert_true(count.peak_block < MIB);
        assert_true(count.peak_bytes < MIB);
        assert_int_equal(count.live, 0);
    }

    /* CBOR counts that promise more than the payload holds (STYLE.md,
     * libcbor fact 1): refused without allocating for them */
    static const uint8_t huge_array[] = {0x9a, 0x10, 0x00, 0x00, 0x00};
    th_stream_insert(&ts, 0, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, huge_array,
                     sizeof huge_array);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    th_alloc count;
    th_alloc_init(&count, SIZE_MAX);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.allocator = th_allocator(&count);
    expect e = {MS_ECBOR, 0, PRE + 16, PRE + 16, "count"};
    expect_fail_opts(&b, &o, &e);
    assert_true(count.peak_block < 64 * 1024);
    th_buf_free(&b);
    th_stream_free(&ts);
}

/* ------------------------------------------------------------ I/O errors */

static ssize_t failing_read(void *ctx, void *buf, size_t len)
{
    chunk_src *c = ctx;
    if (c->pos >= c->step) /* the "device" fails after @step bytes */
        return -5;
    size_t n = len < c->step - c->pos ? len : c->step - c->pos;
    memcpy(buf, c->p + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

static ssize_t overlong_read(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0, len);
    return (ssize_t)len + 1; /* claims more than asked: a broken callback */
}

static void test_io_errors(void **state)
{
    (void)state;
    th_buf good = {0};
    th_write_small_stream(&good, NULL);
    /* the callback fails in the preamble, and inside a record */
    static const size_t at[] = {0, 50, 200, 5000};
    for (size_t i = 0; i < 4; i++) {
        chunk_src src = {.p = good.data, .len = good.len, .step = at[i]};
        ms_reader *r = ms_reader_new(NULL, failing_read, &src);
        assert_status(th_read_all(r, NULL), MS_EIO);
        assert_contains(ms_reader_errmsg(r), "callback");
        assert_int_equal(ms_reader_error_offset(r), at[i]);
        assert_status(ms_reader_next(r, NULL), MS_EIO);
        ms_reader_free(r);
    }
    ms_reader *r = ms_reader_new(NULL, overlong_read, NULL);
    assert_status(th_read_all(r, NULL), MS_EIO);
    ms_reader_free(r);

    /* file descriptors the other way round: reading a pipe's write end and
     * writing its read end fail with EBADF */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    r = ms_reader_new_fd(NULL, fds[1]);
    assert_non_null(r);
    assert_status(th_read_all(r, NULL), MS_EIO);
    assert_contains(ms_reader_errmsg(r), "fd");
    ms_reader_free(r);
    ms_writer *w = ms_writer_new_fd(NULL, fds[0]);
    assert_non_null(w);
    assert_status(ms_writer_flush(w), MS_EIO);
    assert_contains(ms_writer_errmsg(w), "fd");
    assert_status(ms_writer_finish(w, NULL), MS_EIO);
    ms_writer_free(w);
    close(fds[0]);
    close(fds[1]);
    th_buf_free(&good);
}

/* ------------------------------------------------------- writer refusals */

static ms_writer *writer(th_buf *out)
{
    ms_writer *w = ms_writer_new(NULL, th_sink_write, out);
    assert_non_null(w);
    return w;
}

static void expect_writer_refusal(const ms_region *reg, const ms_region *first, const char *frag)
{
    th_buf out = {0};
    ms_writer *w = writer(&out);
    if (first)
        assert_status(ms_writer_add_region(w, first), 0);
    assert_status(ms_writer_add_region(w, reg), MS_EINVAL);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), frag);
    assert_status(ms_writer_finish(w, NULL), MS_EINVAL); /* sticky */
    ms_writer_free(w);
    th_buf_free(&out);
}

static void test_writer_region_refusals(void **state)
{
    (void)state;
    const ms_region ok = {
        .id = 1, .name = "ram", .has_gpa = true, .gpa = 0, .size = MIB, .page_size = 4096};
    ms_region r = ok;
    r.size = 0;
    expect_writer_refusal(&r, NULL, "size");
    r = ok;
    r.size = MIB + 100;
    expect_writer_refusal(&r, NULL, "size");
    r = ok;
    r.page_size = 12288;
    expect_writer_refusal(&r, NULL, "page size");
    r = ok;
    r.page_size = 32 * MIB;
    r.size = 64 * MIB;
    expect_writer_refusal(&r, NULL, "page size");
    r = ok;
    r.gpa = 512;
    expect_writer_refusal(&r, NULL, "aligned");
    r = ok;
    r.name = "";
    expect_writer_refusal(&r, NULL, "name");
    r = ok;
    r.name = "\xff";
    expect_writer_refusal(&r, NULL, "UTF-8");
    r = ok;
    r.id = 2; /* overlaps "ok" */
    r.gpa = MIB - 4096;
    expect_writer_refusal(&r, &ok, "overlaps");
    r = ok;
    r.gpa = 4 * MIB; /* duplicate id */
    expect_writer_refusal(&r, &ok, "twice");
}

static int failing_sink(void *ctx, const struct iovec *iov, int iovcnt)
{
    (void)iov;
    (void)iovcnt;
    int *calls = ctx;
    return ++*calls > 1 ? -1 : 0; /* the first write works, then the "disk" fails */
}

static void test_writer_call_refusals(void **state)
{
    (void)state;
    th_buf out = {0};
    const ms_region ram = {.id = 1, .name = "ram", .size = 16 * 4096, .page_size = 4096};
    static uint8_t page[4096 * 2];
    memset(page, 0x5a, sizeof page);

    ms_writer *w = writer(&out);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_pages(w, 9, 0, 1, page), MS_EINVAL); /* undeclared region */
    assert_contains(ms_writer_errmsg(w), "9");
    assert_status(ms_writer_pages(w, 1, 0, 1, page), MS_EINVAL); /* sticky */
    ms_writer_free(w);

    w = writer(&out);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_pages(w, 1, 15, 2, page), MS_EINVAL); /* past the end */
    assert_contains(ms_writer_errmsg(w), "outside");
    ms_writer_free(w);

    w = writer(&out);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_zero_pages(w, 1, 16, 1), MS_EINVAL);
    ms_writer_free(w);

    w = writer(&out);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_pages(w, 1, 0, 1, NULL), MS_EINVAL);
    ms_writer_free(w);

    /* after finish, only queries */
    w = writer(&out);
    assert_status(ms_writer_finish(w, NULL), 0);
    assert_status(ms_writer_add_region(w, &ram), MS_ESTATE);
    assert_status(ms_writer_finish(w, NULL), MS_ESTATE);
    assert_status(ms_writer_flush(w), MS_ESTATE);
    ms_writer_free(w);

    /* invalid options: a writer in the failed state that names the option
     * (writer.h, ms_writer_new) */
    static const struct {
        int which;
        const char *frag;
    } bad_opts[] = {{0, "page_size"},      {1, "page_size"},       {2, "page_size"},
                    {3, "writer_name"},    {4, "writer_version"},  {5, "compress_level"},
                    {6, "compress_level"}, {7, "machine"},         {8, "machine"},
                    {9, "description"},    {10, "max_cbor_depth"}, {11, "init"}};
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        /* clang-format off */
        switch (bad_opts[i].which) {
        case 0: o.page_size = 1000; break;
        case 1: o.page_size = 2048; break;
        case 2: o.page_size = 131072; break;
        case 3: o.writer_name = "a name that is longer than 32 bytes"; break;
        case 4: o.writer_version = "123456789012345678901234567890123"; break;
        case 5: o.compress_level = 20; break;
        case 6: o.compress_level = -1; break;
        case 7: o.machine = ""; break;
        case 8: o.machine = "pc\xff"; break;
        case 9: o.description = ""; break;
        case 10: o.max_cbor_depth = 1000; break;
        case 11: memset(&o, 0, sizeof o); break; /* not initialised */
        }
        /* clang-format on */
        out.len = 0;
        w = ms_writer_new(&o, th_sink_write, &out);
        assert_non_null(w);
        assert_status(ms_writer_status(w), MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), bad_opts[i].frag);
        assert_status(ms_writer_add_region(w, &ram), MS_EINVAL);
        assert_status(ms_writer_finish(w, NULL), MS_EINVAL);
        ms_writer_free(w);
        assert_int_equal(out.len, 0); /* nothing was written */
    }
    /* bad arguments: a handle in the failed state that names the argument
     * (common.h, "Handles") */
    w = ms_writer_new(NULL, NULL, &out);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "no output callback");
    assert_status(ms_writer_add_region(w, &ram), MS_EINVAL);
    ms_writer_free(w);
    w = ms_writer_new_fd(NULL, -1);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "file descriptor");
    ms_writer_free(w);
    /* NULL only ever means no memory */
    assert_status(ms_writer_status(NULL), MS_ENOMEM);
    assert_contains(ms_writer_errmsg(NULL), "out of memory");

    /* the output failing: MS_EIO, sticky */
    int calls = 0;
    w = ms_writer_new(NULL, failing_sink, &calls);
    assert_non_null(w);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_pages(w, 1, 0, 2, page), 0);
    assert_status(ms_writer_flush(w), 0);
    assert_status(ms_writer_pages(w, 1, 2, 2, page), 0);
    assert_status(ms_writer_flush(w), MS_EIO);
    assert_contains(ms_writer_errmsg(w), "failed");
    assert_status(ms_writer_finish(w, NULL), MS_EIO);
    ms_writer_free(w);

    /* reader arguments */
    ms_reader_options ro;
    memset(&ro, 0, sizeof ro); /* not filled by ms_reader_options_init() */
    static const struct {
        int which;
        const char *frag;
    } bad_readers[] = {{0, "init"}, {1, "no read callback"}, {2, "file descriptor"},
                       {3, "NULL buffer"}};
    for (size_t i = 0; i < sizeof bad_readers / sizeof bad_readers[0]; i++) {
        ms_reader *r = bad_readers[i].which == 0   ? ms_reader_new_memory(&ro, out.data, out.len)
                       : bad_readers[i].which == 1 ? ms_reader_new(NULL, NULL, NULL)
                       : bad_readers[i].which == 2 ? ms_reader_new_fd(NULL, -1)
                                                   : ms_reader_new_memory(NULL, NULL, 10);
        assert_non_null(r);
        assert_status(ms_reader_status(r), MS_EINVAL);
        assert_contains(ms_reader_errmsg(r), bad_readers[i].frag);
        const ms_record *rec;
        assert_status(ms_reader_next(r, &rec), MS_EINVAL);
        assert_status(ms_reader_header(r, NULL), MS_EINVAL);
        ms_reader_free(r);
    }
    assert_status(ms_reader_status(NULL), MS_ENOMEM);
    th_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_newer_major),
        cmocka_unit_test(test_unknown_required_feature),
        cmocka_unit_test(test_forward_compatible_preamble),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_qemu_stream),
        cmocka_unit_test(test_preamble_checksum),
        cmocka_unit_test(test_preamble_fields),
        cmocka_unit_test(test_truncated_preamble),
        cmocka_unit_test(test_flipped_payload_byte),
        cmocka_unit_test(test_record_header_fields),
        cmocka_unit_test(test_unknown_must_understand),
        cmocka_unit_test(test_unknown_optional_record),
        cmocka_unit_test(test_missing_end),
        cmocka_unit_test(test_truncated_records),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_dropped_swapped_duplicated),
        cmocka_unit_test(test_bytes_after_end),
        cmocka_unit_test(test_end_totals),
        cmocka_unit_test(test_record_order),
        cmocka_unit_test(test_info_map_rules),
        cmocka_unit_test(test_info_duplicate_unknown_key),
        cmocka_unit_test(test_pages_good_control),
        cmocka_unit_test(test_pages_extent_outside_region),
        cmocka_unit_test(test_pages_extents_out_of_order),
        cmocka_unit_test(test_pages_extent_fields),
        cmocka_unit_test(test_pages_header_fields),
        cmocka_unit_test(test_pages_data_size),
        cmocka_unit_test(test_pages_zstd_huge_frame),
        cmocka_unit_test(test_pages_undeclared_region),
        cmocka_unit_test(test_regions_faults),
        cmocka_unit_test(test_hostile_length),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_writer_region_refusals),
        cmocka_unit_test(test_writer_call_refusals),
    };
    return th_run_tests(tests);
}
