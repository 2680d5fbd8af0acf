/*
 * What a reader does with a later minor version's additions (FORMAT.md
 * section 11.2): map keys it does not know are skipped, and listed in
 * ms_record.unknown_keys as payload paths, so that tools can report them
 * without knowing which keys each record type defines.
 */
#include "helpers.h"

/* Reads @s: for its first @max records, the unknown keys listed, joined by
 * spaces, in @keys[i] and their count in @counts[i]. Returns how many
 * records were read. */
static size_t read_keys(const th_buf *s, char keys[][512], size_t *counts, size_t max)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_record *rec;
    int rc;
    size_t n = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0 && n < max) {
        keys[n][0] = 0;
        counts[n] = rec->unknown_key_count;
        size_t listed = counts[n] < MS_MAX_LISTED_KEYS ? counts[n] : MS_MAX_LISTED_KEYS;
        if (counts[n])
            assert_non_null(rec->unknown_keys);
        else
            assert_null(rec->unknown_keys);
        for (size_t k = 0; k < listed; k++) {
            size_t len = strlen(keys[n]);
            snprintf(keys[n] + len, 512 - len, "%s%s", k ? " " : "", rec->unknown_keys[k]);
        }
        n++;
    }
    assert_status(rc, 0);
    ms_reader_free(r);
    return n;
}

static void test_unknown_keys_listed(void **state)
{
    (void)state;
    th_buf s = {0}, p = {0}, out = {0};
    th_write_small_stream(&s, NULL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);

    /* INFO {0: machine, 2: 1, 7: [1, 2]}: keys 2 and 7 are a later minor's. */
    th_cbor_head(&p, 5, 3);
    th_cbor_uint(&p, 0);
    th_cbor_text(&p, "pc");
    th_cbor_uint(&p, 2);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 7);
    th_cbor_head(&p, 4, 2);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 2);
    th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);

    /* REGIONS: the second region's map gains key 9. */
    size_t ri = th_stream_find(&ts, MS_REC_REGIONS, 0);
    p.len = 0;
    th_cbor_head(&p, 4, 2);
    th_cbor_region(&p, 1, "ram", true, 0, 16 * 4096, 4096);
    th_buf region = {0};
    th_cbor_region(&region, 2, "vram", false, 0, 4 * 8192, 8192);
    region.data[0]++; /* one more pair in the map (a small map's head) */
    th_buf_append(&p, region.data, region.len);
    th_cbor_uint(&p, 9);
    th_cbor_text(&p, "later");
    th_stream_set(&ts, ri, p.data, p.len);

    /* DEVICE: keys 5 and 6 after the state. */
    size_t di = th_stream_find(&ts, MS_REC_DEVICE, 0);
    th_rec *dev = &ts.rec[di];
    p.len = 0;
    th_buf_append(&p, dev->payload.data, dev->payload.len);
    p.data[0] += 2;
    th_cbor_uint(&p, 5);
    th_cbor_bool(&p, true);
    th_cbor_uint(&p, 6);
    th_cbor_bytes(&p, "ab", 2);
    th_stream_set(&ts, di, p.data, p.len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &out);

    char keys[16][512];
    size_t counts[16];
    size_t n = read_keys(&out, keys, counts, 16);
    assert_true(n >= 4);
    assert_string_equal(keys[0], "/2 /7"); /* INFO */
    assert_int_equal(counts[0], 2);
    assert_string_equal(keys[ri], "/1/9"); /* the second region's map */
    assert_string_equal(keys[di], "/5 /6");
    for (size_t i = 0; i < n; i++)
        if (i != 0 && i != ri && i != di)
            assert_int_equal(counts[i], 0);

    th_stream_free(&ts);
    th_buf_free(&s);
    th_buf_free(&p);
    th_buf_free(&region);
    th_buf_free(&out);
}

/* More unknown keys than a record lists: all are counted, the first
 * MS_MAX_LISTED_KEYS are listed, in payload order. */
static void test_many_unknown_keys(void **state)
{
    (void)state;
    th_buf s = {0}, p = {0}, out = {0};
    th_write_small_stream(&s, NULL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    th_cbor_head(&p, 5, 101);
    th_cbor_uint(&p, 0);
    th_cbor_text(&p, "pc");
    for (uint64_t k = 2; k < 102; k++) {
        th_cbor_uint(&p, k);
        th_cbor_uint(&p, k);
    }
    th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &out);

    ms_reader *r = ms_reader_new_memory(NULL, out.data, out.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->type, MS_REC_INFO);
    assert_int_equal(rec->unknown_key_count, 100);
    for (size_t k = 0; k < MS_MAX_LISTED_KEYS; k++) {
        char want[16];
        snprintf(want, sizeof want, "/%zu", k + 2);
        assert_string_equal(rec->unknown_keys[k], want);
    }
    /* The next record starts afresh. */
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->unknown_key_count, 0);
    ms_reader_free(r);
    th_stream_free(&ts);
    th_buf_free(&s);
    th_buf_free(&p);
    th_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_keys_listed),
        cmocka_unit_test(test_many_unknown_keys),
    };
    return th_run_tests(tests);
}
