/*
 * The replay engine (replay.h), the lenient reading mode
 * (ms_reader_options.on_problem) and private records (ms_writer_record).
 */
#include <stdlib.h>

#include "helpers.h"

/* ---- a replay target that rebuilds memory and logs the event order ---- */

typedef struct target {
    char log[4096]; /* one letter per event: H I R E D U Z(end) */
    size_t nlog;
    uint8_t *mem[8]; /* by region id (ids < 8 in these tests) */
    uint32_t page_size[8];
    size_t devices;
    uint64_t digest;
    int stop_at;     /* event number at which to return -42, or -1 */
} target;

static int note(target *t, char c)
{
    if (t->nlog + 1 < sizeof t->log)
        t->log[t->nlog++] = c;
    return (int)t->nlog - 1 == t->stop_at ? -42 : 0;
}

static int on_header(void *c, const ms_header *h)
{
    assert_int_equal(h->major, 1);
    return note(c, 'H');
}
static int on_info(void *c, const ms_info *i)
{
    (void)i;
    return note(c, 'I');
}
static int on_region(void *c, const ms_region *r)
{
    target *t = c;
    assert_true(r->id < 8);
    t->mem[r->id] = calloc(1, (size_t)r->size);
    t->page_size[r->id] = r->page_size;
    return note(c, 'R');
}
static int on_extent(void *c, const ms_region *r, const ms_extent *x, const uint8_t *data)
{
    target *t = c;
    assert_non_null(t->mem[r->id]); /* regions come before their pages */
    uint8_t *dst = t->mem[r->id] + x->first * r->page_size;
    size_t n = (size_t)x->count * r->page_size;
    if (x->state == MS_PAGE_DATA) {
        assert_non_null(data);
        memcpy(dst, data, n);
    } else {
        assert_null(data);
        memset(dst, 0, n);
    }
    return note(c, 'E');
}
static int on_device(void *c, const ms_device *d)
{
    target *t = c;
    assert_non_null(d->state);
    t->devices++;
    return note(c, 'D');
}
static int on_unknown(void *c, const ms_record *rec)
{
    assert_false(rec->known);
    return note(c, 'U');
}
static int on_end(void *c, const ms_totals *tot, uint64_t digest)
{
    target *t = c;
    (void)tot;
    t->digest = digest;
    return note(c, 'Z');
}

static const ms_replay_callbacks all_cb = {
    .struct_size = sizeof(ms_replay_callbacks),
    .header = on_header, .info = on_info, .region = on_region, .extent = on_extent,
    .device = on_device, .unknown = on_unknown, .end = on_end,
};

static void target_free(target *t)
{
    for (int i = 0; i < 8; i++)
        free(t->mem[i]);
}

/* Rebuilds region @id from the raw reader, the reference for replay. */
static uint8_t *reference(const th_buf *s, uint32_t id, size_t *size, uint64_t *end_sum)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_record *rec;
    uint8_t *mem = NULL;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type == MS_REC_REGIONS)
            for (size_t i = 0; i < rec->region_count; i++)
                if (rec->regions[i].id == id) {
                    *size = (size_t)rec->regions[i].size;
                    mem = calloc(1, *size);
                }
        if (rec->type == MS_REC_END)
            *end_sum = rec->checksum;
        if (rec->type != MS_REC_PAGES || rec->pages.region->id != id)
            continue;
        const uint8_t *d = rec->pages.data;
        size_t ps = rec->pages.region->page_size;
        for (size_t i = 0; i < rec->pages.extent_count; i++) {
            const ms_extent *x = &rec->pages.extents[i];
            if (x->state == MS_PAGE_DATA) {
                memcpy(mem + x->first * ps, d, x->count * ps);
                d += x->count * ps;
            } else {
                memset(mem + x->first * ps, 0, x->count * ps);
            }
        }
    }
    assert_int_equal(ms_reader_status(r), 0);
    ms_reader_free(r);
    return mem;
}

static void test_replay_rebuilds_memory(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    target t = {.stop_at = -1};
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, &all_cb, &t), 0);
    ms_reader_free(r);
    /* order: header first, END last, each region before its pages */
    assert_int_equal(t.log[0], 'H');
    assert_int_equal(t.log[t.nlog - 1], 'Z');
    assert_int_equal(t.devices, 1);
    for (uint32_t id = 1; id <= 2; id++) {
        size_t size = 0;
        uint64_t end_sum = 0;
        uint8_t *want = reference(&s, id, &size, &end_sum);
        assert_non_null(want);
        assert_memory_equal(t.mem[id], want, size);
        assert_true(t.digest == end_sum); /* the stream digest is END's checksum */
        free(want);
    }
    target_free(&t);
    th_buf_free(&s);
}

static void test_replay_stops_on_callback_error(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    for (int stop = 0; stop < 4; stop++) {
        target t = {.stop_at = stop};
        ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
        assert_int_equal(ms_replay(r, &all_cb, &t), -42);
        assert_int_equal(t.nlog, (size_t)stop + 1); /* nothing after the stop */
        ms_reader_free(r);
        target_free(&t);
    }
    th_buf_free(&s);
}

/* A callbacks struct from an older caller (smaller struct_size) must not be
 * read past its end: only the fields it has are used. */
static void test_replay_short_callbacks(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    struct {
        size_t struct_size;
        int (*header)(void *, const ms_header *);
    } old = {sizeof old, on_header};
    target t = {.stop_at = -1};
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, (const ms_replay_callbacks *)(const void *)&old, &t), 0);
    assert_string_equal(t.log, "H");
    ms_reader_free(r);
    th_buf_free(&s);
}

static void test_replay_bad_stream(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    target t = {.stop_at = -1};
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len - 20); /* END cut */
    assert_status(ms_replay(r, &all_cb, &t), MS_ETRUNCATED);
    assert_true(strchr(t.log, 'Z') == NULL); /* no end callback for a bad stream */
    ms_reader_free(r);
    target_free(&t);
    th_buf_free(&s);
}

/* ---- private records ---- */

static void write_with_record(th_buf *s, uint16_t type, uint16_t flags, int *rc)
{
    ms_writer *w = ms_writer_new(NULL, th_sink_write, s);
    *rc = ms_writer_record(w, type, flags, "abc", 3);
    if (*rc == 0)
        assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void test_private_records(void **state)
{
    (void)state;
    th_buf s = {0};
    int rc;
    write_with_record(&s, 0x8001, 0, &rc);
    assert_status(rc, 0);
    th_check_chain(s.data, s.len);
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, 0x8001);
    assert_false(rec->known);
    assert_int_equal(rec->length, 3);
    assert_memory_equal(rec->payload, "abc", 3);
    ms_reader_free(r);
    target t = {.stop_at = -1};
    r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, &all_cb, &t), 0);
    assert_string_equal(t.log, "HUZ");
    ms_reader_free(r);
    th_buf_free(&s);

    write_with_record(&s, 0x8002, MS_RECORD_MUST_UNDERSTAND, &rc);
    assert_status(rc, 0);
    r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(th_read_all(r, NULL), MS_EUNKNOWN);
    assert_contains(ms_reader_errmsg(r), "0x8002");
    ms_reader_free(r);
    th_buf_free(&s);

    /* refused: format-defined types, type 0, reserved flags */
    static const struct { uint16_t type, flags; } bad[] = {
        {MS_REC_PAGES, 0}, {MS_REC_END, 0}, {0, 0}, {0x8003, 0x0002}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_with_record(&s, bad[i].type, bad[i].flags, &rc);
        assert_status(rc, MS_EINVAL);
        th_buf_free(&s);
    }
}

/* ---- lenient reading ---- */

typedef struct problems {
    int status[16];
    int64_t record[16];
    uint64_t offset[16];
    size_t n;
} problems;

static void on_problem(void *c, int status, uint64_t offset, int64_t record, const char *msg)
{
    problems *p = c;
    assert_true(msg && *msg);
    if (p->n < 16) {
        p->status[p->n] = status;
        p->offset[p->n] = offset;
        p->record[p->n] = record;
        p->n++;
    }
}

static void test_lenient_reports_and_goes_on(void **state)
{
    (void)state;
    th_buf s = {0}, b = {0};
    th_write_small_stream(&s, NULL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    /* An unknown must-understand record after the first, and the END left as
     * it was (so its totals are off by one record and its bytes). */
    th_stream_insert(&ts, 1, 0x7000, MS_RECORD_MUST_UNDERSTAND, "x", 1);
    th_stream_build(&ts, &b);
    /* then one flipped byte in the payload of record 2 (checksum breaks) */
    uint64_t at2 = th_stream_offset(&ts, 2);
    b.data[at2 + 16] ^= 0x40;

    ms_reader_options o;
    ms_reader_options_init(&o);
    problems p = {0};
    o.on_problem = on_problem;
    o.problem_ctx = &p;
    ms_reader *r = ms_reader_new_memory(&o, b.data, b.len);
    const ms_record *rec;
    int rc;
    size_t n = 0, flagged = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        n++;
        flagged += rec->status != 0;
    }
    assert_status(rc, 0); /* reached END */
    assert_int_equal(n, ts.n);
    assert_true(p.n >= 3);
    assert_status(p.status[0], MS_EUNKNOWN);
    assert_int_equal(p.record[0], 1);
    assert_status(p.status[1], MS_ECHECKSUM);
    assert_int_equal(p.record[1], 2);
    assert_int_equal(p.offset[1], at2 + 8);
    /* END's totals disagree with what was read */
    assert_status(p.status[p.n - 1], MS_ECORRUPT);
    assert_int_equal(p.record[p.n - 1], (int64_t)ts.n - 1);
    assert_true(flagged >= 3);
    ms_reader_free(r);

    /* Without on_problem the same stream stops at the first problem. */
    r = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(th_read_all(r, NULL), MS_EUNKNOWN);
    ms_reader_free(r);
    th_stream_free(&ts);
    th_buf_free(&s);
    th_buf_free(&b);
}

static void test_lenient_still_stops_on_truncation(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    ms_reader_options o;
    ms_reader_options_init(&o);
    problems p = {0};
    o.on_problem = on_problem;
    o.problem_ctx = &p;
    ms_reader *r = ms_reader_new_memory(&o, s.data, s.len - 30);
    assert_status(th_read_all(r, NULL), MS_ETRUNCATED);
    assert_int_equal(p.n, 0);
    ms_reader_free(r);
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_rebuilds_memory),
        cmocka_unit_test(test_replay_stops_on_callback_error),
        cmocka_unit_test(test_replay_short_callbacks),
        cmocka_unit_test(test_replay_bad_stream),
        cmocka_unit_test(test_private_records),
        cmocka_unit_test(test_lenient_reports_and_goes_on),
        cmocka_unit_test(test_lenient_still_stops_on_truncation),
    };
    return th_run_tests(tests);
}
