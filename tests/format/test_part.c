/*
 * One part of a migration in parts (FORMAT.md sections 2.1, 3.2, 5.3), on
 * its own: what the writer makes of ms_writer_options.part (required
 * feature PARTS, minor 2, PART as record 0 and INFO after it, pages only
 * inside rounds), what it refuses, and what a reader of the part hands
 * out and refuses (PART without the bit, the bit without PART, PART
 * elsewhere, INFO out of place, pages before the first ROUND, a bad PART
 * payload).
 */
#include <stdlib.h>

#include "helpers.h"

#define PS 4096u

static const uint8_t ID[MS_MIGRATION_ID_SIZE] = {0x6d, 0x69, 0x67, 0x72, 0x61, 0x74, 0x69, 0x6f,
                                                 0x6e, 0x2d, 0x69, 0x64, 0x2d, 0x30, 0x30, 0x31};

/* Part @index of @count: INFO, one region, two rounds with a page each,
 * a device in the last. */
static void write_part(th_buf *out, uint32_t index, uint32_t count, const char *machine)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.machine = machine;
    ms_part part = {.index = index, .count = count};
    memcpy(part.migration_id, ID, sizeof ID);
    o.part = &part;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_status(ms_writer_status(w), 0);
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .size = 16 * PS, .page_size = PS};
    uint8_t page[PS];
    memset(page, 0x40 + (int)index, sizeof page);
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_status(ms_writer_pages(w, 0, index, 1, page), 0);
    assert_status(ms_writer_round(w, &(ms_round){.number = 1, .final = true}), 0);
    assert_status(ms_writer_device(w, "cpu/0", index, "x86-cpu", 1, "\xa0", 1), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void test_writer_makes_a_part(void **state)
{
    (void)state;
    th_buf b = {0};
    write_part(&b, 1, 3, "pc");
    assert_int_equal(th_get16(b.data + 10), 2); /* minor 2: uses PARTS */
    assert_int_equal(th_get64(b.data + 16), MS_FEATURE_PARTS);

    th_stream ts;
    th_stream_parse(&ts, b.data, b.len);
    assert_int_equal(ts.rec[0].type, MS_REC_PART);
    assert_int_equal(ts.rec[0].flags, MS_RECORD_MUST_UNDERSTAND);
    /* {0: h'<id>', 1: 1, 2: 3} */
    th_buf want = {0};
    th_cbor_head(&want, 5, 3);
    th_cbor_uint(&want, 0);
    th_cbor_bytes(&want, ID, sizeof ID);
    th_cbor_uint(&want, 1);
    th_cbor_uint(&want, 1);
    th_cbor_uint(&want, 2);
    th_cbor_uint(&want, 3);
    assert_int_equal(ts.rec[0].payload.len, want.len);
    assert_memory_equal(ts.rec[0].payload.data, want.data, want.len);
    assert_int_equal(ts.rec[1].type, MS_REC_INFO);
    th_buf_free(&want);
    th_stream_free(&ts);

    /* Read on its own, it is a valid stream; every record names the part. */
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    const ms_record *rec;
    int rc;
    assert_int_equal(ms_reader_part_count(r), 0);
    assert_null(ms_reader_part_info(r, 0));
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        assert_non_null(rec->part);
        assert_int_equal(rec->part->index, 1);
        assert_int_equal(rec->part->count, 3);
        assert_memory_equal(rec->part->migration_id, ID, sizeof ID);
    }
    assert_status(rc, 0);
    assert_int_equal(ms_reader_part_count(r), 1);
    assert_int_equal(ms_reader_error_part(r), 1);
    const ms_part_info *pi = ms_reader_part_info(r, 0);
    assert_non_null(pi);
    assert_null(pi->name);
    assert_int_equal(pi->part.index, 1);
    assert_true(pi->ended);
    assert_int_equal(pi->bytes, b.len);
    assert_int_equal(pi->records, 8); /* PART INFO REGIONS ROUND PAGES ROUND DEVICE END */
    assert_int_equal(pi->totals.rounds, 2);
    assert_null(ms_reader_part_info(r, 1));
    ms_reader_free(r);

    /* A stream that is not a part names none. */
    th_buf plain = {0};
    th_write_small_stream(&plain, NULL);
    r = ms_reader_new_memory(NULL, plain.data, plain.len);
    while ((rc = ms_reader_next(r, &rec)) > 0)
        assert_null(rec->part);
    assert_status(rc, 0);
    assert_int_equal(ms_reader_error_part(r), -1);
    assert_int_equal(th_get16(plain.data + 10), 1); /* nothing of 1.2: minor 1 */
    ms_reader_free(r);
    th_buf_free(&plain);
    th_buf_free(&b);
}

/* The replay engine's part callback, first. */
typedef struct seen {
    int parts, first_type;
    ms_part part;
} seen;

static int on_part(void *ctx, const ms_part *p)
{
    seen *s = ctx;
    s->parts++;
    s->part = *p;
    return 0;
}

static int on_info(void *ctx, const ms_info *info)
{
    (void)info;
    seen *s = ctx;
    if (!s->first_type)
        s->first_type = MS_REC_INFO;
    return 0;
}

static void test_replay_part_callback(void **state)
{
    (void)state;
    th_buf b = {0};
    write_part(&b, 0, 2, "pc");
    seen s = {0};
    ms_replay_callbacks cb = {.struct_size = sizeof cb, .part = on_part, .info = on_info};
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(ms_replay(r, &cb, &s), 0);
    assert_int_equal(s.parts, 1);
    assert_int_equal(s.part.count, 2);
    ms_reader_free(r);
    th_buf_free(&b);
}

static ms_writer *writer_with_part(th_buf *out, const ms_part *part, uint64_t features)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.part = part;
    o.features = features;
    return ms_writer_new(&o, th_sink_write, out);
}

static void test_writer_refusals(void **state)
{
    (void)state;
    th_buf b = {0};
    static const struct {
        ms_part part;
        const char *frag;
    } bad[] = {
        {{.index = 0, .count = 0}, "count 0"},
        {{.index = 2, .count = 2}, "not below"},
        {{.index = 0, .count = 1, .reserved = {1}}, "reserved"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_writer *w = writer_with_part(&b, &bad[i].part, 0);
        assert_status(ms_writer_status(w), MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), bad[i].frag);
        ms_writer_free(w);
    }
    /* The bit comes with the PART record, never alone. */
    ms_writer *w = writer_with_part(&b, NULL, MS_FEATURE_PARTS);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "PARTS");
    ms_writer_free(w);

    /* Pages only inside rounds, whichever data call. */
    ms_part part = {.index = 0, .count = 2};
    uint8_t page[PS] = {1};
    ms_region reg = {.id = 0, .name = "ram", .size = 4 * PS, .page_size = PS};
    for (int call = 0; call < 3; call++) {
        w = writer_with_part(&b, &part, MS_FEATURE_DISCARDED);
        assert_status(ms_writer_add_region(w, &reg), 0);
        int rc = call == 0   ? ms_writer_pages(w, 0, 0, 1, page)
                 : call == 1 ? ms_writer_zero_pages(w, 0, 0, 1)
                             : ms_writer_discard(w, 0, 0, 1);
        assert_status(rc, MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), "only inside rounds");
        ms_writer_free(w);
    }
    /* A part without pages needs no round. */
    b.len = 0;
    w = writer_with_part(&b, &part, 0);
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, "\xa0", 1), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&b);
}

/* Reads @b, expecting a failure with @status at record @record whose
 * message holds @frag. */
static void expect_fail(const th_buf *b, int status, int64_t record, const char *frag)
{
    ms_reader *r = ms_reader_new_memory(NULL, b->data, b->len);
    int rc = th_read_all(r, NULL);
    if (rc != status)
        fail_msg("status %d (%s), expected %s: %s", rc, ms_strerror(rc), ms_strerror(status),
                 ms_reader_errmsg(r));
    assert_contains(ms_reader_errmsg(r), frag);
    if (ms_reader_error_record(r) != record)
        fail_msg("error record %lld, expected %lld (%s)", (long long)ms_reader_error_record(r),
                 (long long)record, ms_reader_errmsg(r));
    ms_reader_free(r);
}

static void edit(const th_buf *in, th_buf *out, void (*fn)(th_stream *))
{
    th_stream ts;
    th_stream_parse(&ts, in->data, in->len);
    fn(&ts);
    th_stream_fix_end(&ts);
    out->len = 0;
    th_stream_build(&ts, out);
    th_stream_free(&ts);
}

static void drop_bit(th_stream *ts)
{
    th_put64(ts->pre.data + 16, 0);
    th_stream_fix_preamble(ts);
}

static void drop_part(th_stream *ts)
{
    th_stream_remove(ts, 0);
}

static void part_twice(th_stream *ts)
{
    th_stream_insert(ts, 3, MS_REC_PART, MS_RECORD_MUST_UNDERSTAND, ts->rec[0].payload.data,
                     ts->rec[0].payload.len);
}

static void info_first(th_stream *ts)
{
    th_rec info = ts->rec[1];
    ts->rec[1] = ts->rec[0];
    ts->rec[0] = info;
}

static void pages_before_rounds(th_stream *ts)
{
    /* Every ROUND gone: pages outside any round, in a part. */
    for (size_t i = ts->n; i-- > 0;)
        if (ts->rec[i].type == MS_REC_ROUND)
            th_stream_remove(ts, i);
}

static void bad_payload(th_stream *ts, uint64_t index, uint64_t count, size_t id_len,
                        bool extra_key)
{
    th_buf p = {0};
    uint8_t id[32] = {0};
    th_cbor_head(&p, 5, extra_key ? 4 : 3);
    th_cbor_uint(&p, 0);
    th_cbor_bytes(&p, id, id_len);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, index);
    th_cbor_uint(&p, 2);
    th_cbor_uint(&p, count);
    if (extra_key) {
        th_cbor_uint(&p, 7);
        th_cbor_uint(&p, 1);
    }
    th_stream_set(ts, 0, p.data, p.len);
    th_buf_free(&p);
}

static void index_too_big(th_stream *ts)
{
    bad_payload(ts, 2, 2, 16, false);
}
static void count_zero(th_stream *ts)
{
    bad_payload(ts, 0, 0, 16, false);
}
static void short_id(th_stream *ts)
{
    bad_payload(ts, 0, 2, 15, false);
}
static void count_too_big(th_stream *ts)
{
    bad_payload(ts, 0, UINT64_C(1) << 32, 16, false);
}
static void unknown_key(th_stream *ts)
{
    bad_payload(ts, 1, 2, 16, true);
}

static void test_reader_refusals(void **state)
{
    (void)state;
    th_buf b = {0}, e = {0};
    write_part(&b, 0, 2, "pc");

    edit(&b, &e, drop_bit);
    expect_fail(&e, MS_ECORRUPT, 0, "does not set required feature bit 4 (PARTS)");
    edit(&b, &e, drop_part);
    expect_fail(&e, MS_ECORRUPT, 0, "does not start with a PART record");
    edit(&b, &e, part_twice);
    expect_fail(&e, MS_ECORRUPT, 3, "PART may only be the first record");
    edit(&b, &e, info_first);
    expect_fail(&e, MS_ECORRUPT, 0, "does not start with a PART record");
    edit(&b, &e, pages_before_rounds);
    expect_fail(&e, MS_ECORRUPT, 3, "pages appear only inside rounds");
    edit(&b, &e, index_too_big);
    expect_fail(&e, MS_ECORRUPT, 0, "not below the part count");
    edit(&b, &e, count_zero);
    expect_fail(&e, MS_ECORRUPT, 0, "count 0");
    edit(&b, &e, short_id);
    expect_fail(&e, MS_ECORRUPT, 0, "15 bytes, not 16");
    edit(&b, &e, count_too_big);
    expect_fail(&e, MS_ECORRUPT, 0, "exceeds 32 bits");

    /* A key of a later minor is ignored and listed. */
    edit(&b, &e, unknown_key);
    ms_reader *r = ms_reader_new_memory(NULL, e.data, e.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, MS_REC_PART);
    assert_int_equal(rec->unknown_key_count, 1);
    assert_string_equal(rec->unknown_keys[0], "/7");
    assert_int_equal(rec->part->index, 1);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);

    /* A reader that does not take PARTS refuses a part at its preamble. */
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.accept_features = ~(uint64_t)MS_FEATURE_PARTS;
    r = ms_reader_new_memory(&o, b.data, b.len);
    assert_status(th_read_all(r, NULL), MS_EFEATURE);
    assert_contains(ms_reader_errmsg(r), "PARTS (bit 4)");
    ms_reader_free(r);
    th_buf_free(&e);
    th_buf_free(&b);
}

/* A PART record without MUST_UNDERSTAND is still a PART: readers apply
 * the rules of every type they know (FORMAT.md section 4.3). */
static void no_must(th_stream *ts)
{
    ts->rec[0].flags = 0;
}

static void test_flags_do_not_matter(void **state)
{
    (void)state;
    th_buf b = {0}, e = {0};
    write_part(&b, 0, 2, NULL);
    edit(&b, &e, no_must);
    ms_reader *r = ms_reader_new_memory(NULL, e.data, e.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, MS_REC_PART);
    assert_non_null(rec->part);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&e);
    th_buf_free(&b);
}

static void test_migration_id(void **state)
{
    (void)state;
    uint8_t a[MS_MIGRATION_ID_SIZE], b[MS_MIGRATION_ID_SIZE];
    assert_status(ms_migration_id_new(a), 0);
    assert_status(ms_migration_id_new(b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_status(ms_migration_id_new(NULL), MS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_makes_a_part), cmocka_unit_test(test_replay_part_callback),
        cmocka_unit_test(test_writer_refusals),     cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_flags_do_not_matter), cmocka_unit_test(test_migration_id),
    };
    return th_run_tests(tests);
}
