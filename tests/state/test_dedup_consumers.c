/*
 * DUPLICATE pages (format 1.3, FORMAT.md section 6.2) in the consumers
 * that resolve them: the page map (which checks each source's last copy),
 * the replay into a directory (which copies the source's bytes) and the
 * comparison (which compares the contents they stand for). Streams come
 * from the writer (MS_FEATURE_DUPLICATES) and by hand for the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "migstream/migstream.h"

#define PS 4096u
#define NPAGES 64u

static uint8_t mem[NPAGES * PS];

/* Pages 0..15 distinct data, 16..31 copies of them, 40 a copy of 3, the
 * rest zero; then a second round that changes page 3 and copies its old
 * bytes to page 50 (sent after page 3 again: DATA, not a reference). */
static void write_stream(th_buf *s, uint64_t features, uint8_t *final)
{
    uint64_t rng = 5;
    memset(mem, 0, sizeof mem);
    for (unsigned p = 0; p < 16; p++)
        th_make_page(mem + p * PS, PS, TH_PAGE_TEXT, &rng);
    memcpy(mem + 16 * PS, mem, 16 * PS);
    memcpy(mem + 40 * PS, mem + 3 * PS, PS);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = features;
    ms_writer *w = ms_writer_new(&o, th_sink_write, s);
    ms_region ram = {.id = 0, .name = "ram", .has_gpa = true, .size = NPAGES * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &ram), 0);
    ms_round r0 = {.number = 0}, r1 = {.number = 1};
    assert_int_equal(ms_writer_round(w, &r0), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, NPAGES, mem), 0);
    assert_int_equal(ms_writer_round(w, &r1), 0);
    memcpy(mem + 50 * PS, mem + 3 * PS, PS);
    th_make_page(mem + 3 * PS, PS, TH_PAGE_RANDOM, &rng);
    assert_int_equal(ms_writer_pages(w, 0, 0, 4, mem), 0);
    assert_int_equal(ms_writer_pages(w, 0, 50, 1, mem + 50 * PS), 0);
    ms_totals t;
    assert_int_equal(ms_writer_finish(w, &t), 0);
    ms_writer_free(w);
    if (features)
        assert_int_equal(t.pages[MS_PAGE_DUPLICATE], 17);
    memcpy(final, mem, sizeof mem);
}

/* Replays @s into a fresh directory: its status, its message in @msg, and
 * region 0's image in @img (NPAGES pages) when it succeeded. */
static int replay(const th_buf *s, char *msg, size_t n, uint8_t *img)
{
    char dir[] = "/tmp/test-dedup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[256], path[300], cmd[300];
    snprintf(out, sizeof out, "%s/out", dir);
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    ms_replay_dir *rd = ms_replay_dir_new(&o);
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    int rc = ms_replay_dir_write(rd, r, "test.mig", out);
    snprintf(msg, n, "%s", ms_replay_dir_errmsg(rd));
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    if (rc == 0 && img) {
        snprintf(path, sizeof path, "%s/region-0.img", out);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(img, 1, NPAGES * PS, f), NPAGES * PS);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return rc;
}

static void test_replay(void **state)
{
    (void)state;
    static uint8_t final[NPAGES * PS], got[NPAGES * PS];
    th_buf s = {0};
    write_stream(&s, MS_FEATURE_DUPLICATES, final);
    char msg[512];
    if (replay(&s, msg, sizeof msg, got))
        fail_msg("%s", msg);
    assert_memory_equal(got, final, sizeof got);
    th_buf_free(&s);
}

static int no_difference(void *ctx, const ms_diff_item *it)
{
    if (it->kind == MS_DIFF_PAGES) /* the header says 1.1 against 1.3 */
        ++*(int *)ctx;
    return 0;
}

/* The same memory with and without duplicates: no difference. */
static void test_diff(void **state)
{
    (void)state;
    static uint8_t final[NPAGES * PS];
    th_buf a = {0}, b = {0};
    write_stream(&a, 0, final);
    write_stream(&b, MS_FEATURE_DUPLICATES, final);
    ms_diff *d = ms_diff_new(NULL);
    ms_reader *ra = ms_reader_new_memory(NULL, a.data, a.len);
    ms_reader *rb = ms_reader_new_memory(NULL, b.data, b.len);
    assert_true(ms_diff_load(d, MS_DIFF_A, ra, "a") >= 0);
    if (ms_diff_load(d, MS_DIFF_B, rb, "b") < 0)
        fail_msg("%s", ms_diff_errmsg(d));
    int n = 0;
    int rc = ms_diff_compare(d, no_difference, &n);
    assert_true(rc >= 0);
    assert_int_equal(n, 0);
    ms_diff_free(d);
    ms_reader_free(ra);
    ms_reader_free(rb);
    th_buf_free(&a);
    th_buf_free(&b);
}

/* A hand-made stream: page 0 DATA, page 1 ZERO, then one extent of
 * @state at page 4 naming page @src: what the page map says of it. */
static int pagemap_verdict(uint64_t src, bool resend_zero)
{
    th_stream ts = {0};
    th_buf b = {0}, p = {0};
    th_write_small_stream(&b, NULL); /* a preamble to start from */
    th_stream_parse(&ts, b.data, b.len);
    while (ts.n > 1) /* END stays last */
        th_stream_remove(&ts, 0);
    th_put64(ts.pre.data + 16, MS_FEATURE_DUPLICATES);
    th_stream_fix_preamble(&ts);
    th_buf_free(&b);
    th_cbor_head(&b, 4, 1);
    th_cbor_region(&b, 0, "ram", true, 0, 8 * PS, PS);
    th_stream_insert(&ts, ts.n - 1, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, b.data, b.len);
    th_buf_free(&b);
    th_pages_head(&p, 0, 2, MS_ENCODING_RAW);
    th_pages_extent(&p, 0, 1, MS_PAGE_DATA);
    th_pages_extent(&p, 1, 1, MS_PAGE_ZERO);
    uint8_t page[PS];
    memset(page, 0x5a, PS);
    th_buf_append(&p, page, PS);
    th_stream_insert(&ts, ts.n - 1, MS_REC_PAGES, MS_RECORD_MUST_UNDERSTAND, p.data, p.len);
    th_buf_free(&p);
    if (resend_zero) { /* page 0 sent again, ZERO: no longer a source */
        th_pages_head(&p, 0, 1, MS_ENCODING_RAW);
        th_pages_extent(&p, 0, 1, MS_PAGE_ZERO);
        th_stream_insert(&ts, ts.n - 1, MS_REC_PAGES, MS_RECORD_MUST_UNDERSTAND, p.data, p.len);
        th_buf_free(&p);
    }
    th_pages_head(&p, 0, 1, MS_ENCODING_RAW);
    th_pages_extent_arg(&p, 4, 1, MS_PAGE_DUPLICATE, src);
    th_stream_insert(&ts, ts.n - 1, MS_REC_PAGES, MS_RECORD_MUST_UNDERSTAND, p.data, p.len);
    th_buf_free(&p);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    th_stream_free(&ts);

    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    ms_pagemap *m = ms_pagemap_new(NULL);
    const ms_record *rec;
    int rc, verdict = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        ms_pagemap_sync(m, r);
        int a = ms_pagemap_apply(m, rec);
        if (a && !verdict) {
            verdict = a;
            assert_non_null(strstr(ms_pagemap_errmsg(m), "DUPLICATE"));
        }
    }
    assert_int_equal(rc, 0); /* the reader alone cannot tell */
    ms_pagemap_free(m);
    ms_reader_free(r);

    /* the replay refuses what the map refuses */
    char msg[512];
    rc = replay(&b, msg, sizeof msg, NULL);
    if (verdict)
        assert_non_null(strstr(msg, "DUPLICATE"));
    assert_int_equal(rc != 0, verdict != 0);
    th_buf_free(&b);
    return verdict;
}

static void test_sources(void **state)
{
    (void)state;
    assert_int_equal(pagemap_verdict(0, false), 0);           /* DATA: a source */
    assert_int_equal(pagemap_verdict(1, false), MS_ECORRUPT); /* ZERO: not one */
    assert_int_equal(pagemap_verdict(2, false), MS_ECORRUPT); /* never sent */
    assert_int_equal(pagemap_verdict(0, true), MS_ECORRUPT);  /* overwritten by ZERO */
}

int main(void)
{
    th_apply_filter();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
