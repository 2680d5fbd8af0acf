/*
 * Format 1.3 in the writer and the reader: DUPLICATE pages (FORMAT.md
 * section 6.2) and zstd-window data (section 6.3). Each stream written
 * here is read back and resolved page by page, as a consumer would, and
 * compared with the memory it was written from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "migstream/migstream.h"

#define PS 4096u
#define NPAGES 256u

/* A region's image as a reader rebuilds it, with the state of each page's
 * last copy, checking section 6.2's rule on DUPLICATE sources. */
typedef struct image {
    uint8_t *mem;
    uint8_t state[NPAGES];
    uint64_t dups;
    unsigned windowed; /* records with encoding 2 */
} image;

static void apply(image *im, const ms_record *rec)
{
    const ms_pages *pg = &rec->pages;
    const uint8_t *d = pg->data;
    if (pg->encoding == MS_ENCODING_ZSTD_WINDOW)
        im->windowed++;
    for (uint32_t i = 0; i < pg->extent_count; i++) {
        const ms_extent *x = &pg->extents[i];
        for (uint32_t k = 0; k < x->count; k++) {
            uint8_t *to = im->mem + (x->first + k) * PS;
            switch (x->state) {
            case MS_PAGE_DATA:
                memcpy(to, d, PS);
                d += PS;
                break;
            case MS_PAGE_ZERO:
                memset(to, 0, PS);
                break;
            case MS_PAGE_DUPLICATE: {
                uint64_t src = x->arg + k;
                /* the source's last copy holds data (DATA or DUPLICATE) */
                assert_true(im->state[src] == MS_PAGE_DATA || im->state[src] == MS_PAGE_DUPLICATE);
                memcpy(to, im->mem + src * PS, PS);
                im->dups++;
                break;
            }
            default:
                fail_msg("unexpected state %u", x->state);
            }
            im->state[x->first + k] = x->state;
        }
    }
}

static void read_image(const th_buf *s, image *im)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        if (rec->type == MS_REC_PAGES)
            apply(im, rec);
    if (rc)
        fail_msg("%s", ms_reader_errmsg(r));
    ms_reader_free(r);
}

static ms_writer *new_writer(th_buf *s, uint64_t features, int level, uint32_t threads, bool stable,
                             uint32_t batch)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.features = features;
    o.compress_level = level;
    o.threads = threads;
    o.stable_memory = stable;
    o.batch_bytes = batch;
    ms_writer *w = ms_writer_new(&o, th_sink_write, s);
    assert_int_equal(ms_writer_status(w), 0);
    ms_region ram = {.id = 0, .name = "ram", .has_gpa = true, .size = NPAGES * PS, .page_size = PS};
    assert_int_equal(ms_writer_add_region(w, &ram), 0);
    return w;
}

/* Guest memory with duplicates at every distance: 64 distinct pages of
 * text-like data, then copies of them, single and in runs, and zero pages. */
static uint8_t *make_memory(uint64_t seed)
{
    uint8_t *m = calloc(NPAGES, PS);
    uint64_t rng = seed;
    for (unsigned p = 0; p < 64; p++)
        th_make_page(m + p * PS, PS, p % 2 ? TH_PAGE_TEXT : TH_PAGE_RANDOM, &rng);
    for (unsigned p = 64; p < NPAGES; p++) {
        unsigned kind = (unsigned)th_rand_below(&rng, 4);
        if (kind == 0)
            continue; /* zero */
        if (kind == 3)
            th_make_page(m + p * PS, PS, TH_PAGE_TEXT, &rng);
        else /* a copy of one of the first pages, or of the page 64 before */
            memcpy(m + p * PS, m + (kind == 1 ? th_rand_below(&rng, 64) : p - 64) * PS, PS);
    }
    return m;
}

static void write_round(ms_writer *w, uint64_t number, const uint8_t *mem, uint64_t first,
                        uint64_t count)
{
    ms_round rd = {.number = number};
    assert_int_equal(ms_writer_round(w, &rd), 0);
    assert_int_equal(ms_writer_pages(w, 0, first, count, mem + first * PS), 0);
}

static void test_duplicates_round_trip(void **state)
{
    (void)state;
    uint8_t *mem = make_memory(1);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_DUPLICATES, 0, 0, false, 0);
    write_round(w, 0, mem, 0, NPAGES);
    ms_totals t;
    assert_int_equal(ms_writer_finish(w, &t), 0);
    ms_writer_free(w);
    assert_int_equal(th_get16(s.data + 10), 3); /* minor 3 */
    assert_int_equal(th_get64(s.data + 16), MS_FEATURE_DUPLICATES);
    assert_true(t.pages[MS_PAGE_DUPLICATE] > 64);
    image im = {.mem = calloc(NPAGES, PS)};
    read_image(&s, &im);
    assert_memory_equal(im.mem, mem, NPAGES * PS);
    assert_int_equal(im.dups, t.pages[MS_PAGE_DUPLICATE]);
    free(im.mem);
    free(mem);
    th_buf_free(&s);
}

/* Without the feature the same memory is all DATA and the stream is a
 * format 1.1 one, byte for byte as before. */
static void test_default_unchanged(void **state)
{
    (void)state;
    uint8_t *mem = make_memory(2);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, 0, 3, 0, false, 0);
    write_round(w, 0, mem, 0, NPAGES);
    ms_totals t;
    assert_int_equal(ms_writer_finish(w, &t), 0);
    ms_writer_free(w);
    assert_int_equal(th_get16(s.data + 10), 1);
    assert_int_equal(th_get64(s.data + 16), 0);
    assert_int_equal(t.pages[MS_PAGE_DUPLICATE], 0);
    free(mem);
    th_buf_free(&s);
}

/* A page sent again stops being a source (section 6.2): round 1 changes
 * pages and copies their old and new contents elsewhere, in every order. */
static void test_resent_pages(void **state)
{
    (void)state;
    uint8_t *mem = make_memory(3);
    uint8_t *old = malloc(NPAGES * PS);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_DUPLICATES, 1, 0, false, 16 * PS);
    write_round(w, 0, mem, 0, NPAGES);
    memcpy(old, mem, NPAGES * PS);
    uint64_t rng = 9;
    /* page 10 changes, page 5 takes page 10's old bytes (sent before 10
     * is resent: may refer to it), page 20 too (after: must not) */
    th_make_page(mem + 10 * PS, PS, TH_PAGE_TEXT, &rng);
    memcpy(mem + 5 * PS, old + 10 * PS, PS);
    memcpy(mem + 20 * PS, old + 10 * PS, PS);
    memcpy(mem + 30 * PS, mem + 10 * PS, PS); /* the new bytes: may refer to 10 */
    write_round(w, 1, mem, 0, 64);
    /* round 2, one page per call, backwards: every page of 0..63 resent */
    ms_round rd = {.number = 2};
    assert_int_equal(ms_writer_round(w, &rd), 0);
    memcpy(mem + 40 * PS, old + 3 * PS, PS);
    memset(mem + 3 * PS, 0, PS);
    for (int p = 63; p >= 0; p--)
        assert_int_equal(ms_writer_pages(w, 0, (uint64_t)p, 1, mem + (size_t)p * PS), 0);
    /* zero and fill calls also end a page's role as a source */
    assert_int_equal(ms_writer_zero_pages(w, 0, 64, 8), 0);
    memset(mem + 64 * PS, 0, 8 * PS);
    assert_int_equal(ms_writer_pages(w, 0, 72, 8, mem + 72 * PS), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    image im = {.mem = calloc(NPAGES, PS)};
    read_image(&s, &im);
    assert_memory_equal(im.mem, mem, NPAGES * PS);
    free(im.mem);
    free(old);
    free(mem);
    th_buf_free(&s);
}

/* One thread or several, copied or stable memory: the same bytes. */
static void test_threads_identical(void **state)
{
    (void)state;
    uint8_t *mem = make_memory(4);
    static const uint64_t feats[] = {0, MS_FEATURE_DUPLICATES, MS_FEATURE_ZSTD_WINDOW,
                                     MS_FEATURE_DUPLICATES | MS_FEATURE_ZSTD_WINDOW};
    for (size_t f = 0; f < 4; f++) {
        for (int level = 1; level <= 3; level += 2) {
            th_buf ref = {0};
            for (int v = 0; v < 6; v++) {
                th_buf s = {0};
                uint32_t threads = v < 2 ? 1 : v < 4 ? 2 : 3;
                ms_writer *w = new_writer(&s, feats[f], level, threads, v % 2, 8 * PS);
                write_round(w, 0, mem, 0, NPAGES);
                write_round(w, 1, mem, 100, 50);
                for (uint64_t p = 0; p < 40; p += 3) /* calls of a page */
                    assert_int_equal(ms_writer_pages(w, 0, 160 + p, 1, mem + (160 + p) * PS), 0);
                assert_int_equal(ms_writer_finish(w, NULL), 0);
                ms_writer_free(w);
                if (v == 0) {
                    ref = s;
                    image im = {.mem = calloc(NPAGES, PS)};
                    read_image(&s, &im);
                    assert_memory_equal(im.mem, mem, NPAGES * PS);
                    if (feats[f] & MS_FEATURE_ZSTD_WINDOW)
                        assert_true(im.windowed > 0);
                    else
                        assert_int_equal(im.windowed, 0);
                    free(im.mem);
                    continue;
                }
                assert_int_equal(s.len, ref.len);
                assert_memory_equal(s.data, ref.data, s.len);
                th_buf_free(&s);
            }
            th_buf_free(&ref);
        }
    }
    free(mem);
}

/* Builds @ts and reads it: refused as corrupt, with @frag in the message. */
static void expect_refused(const th_stream *ts, const char *frag)
{
    th_buf b = {0};
    th_stream_build(ts, &b);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    assert_int_equal(th_read_all(r, NULL), MS_ECORRUPT);
    if (!strstr(ms_reader_errmsg(r), frag))
        fail_msg("\"%s\" does not say \"%s\"", ms_reader_errmsg(r), frag);
    ms_reader_free(r);
    th_buf_free(&b);
}

/* Records encoded 2 (and the encoding-1 record that starts each chain)
 * with the window bit; the refusals of section 6.3. */
static void test_window_refusals(void **state)
{
    (void)state;
    uint8_t *mem = make_memory(5);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_ZSTD_WINDOW, 3, 0, false, 8 * PS);
    write_round(w, 0, mem, 0, NPAGES);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    size_t first = th_stream_find(&ts, MS_REC_PAGES, 0),
           second = th_stream_find(&ts, MS_REC_PAGES, 1);
    assert_int_equal(ts.rec[first].payload.data[8], MS_ENCODING_ZSTD);
    assert_int_equal(ts.rec[second].payload.data[8], MS_ENCODING_ZSTD_WINDOW);

    /* without its feature bit */
    th_stream bad;
    th_stream_parse(&bad, s.data, s.len);
    th_put64(bad.pre.data + 16, 0);
    th_stream_fix_preamble(&bad);
    expect_refused(&bad, "feature bit 6");
    th_stream_free(&bad);

    /* with the first record gone, the second has no window */
    th_stream_parse(&bad, s.data, s.len);
    th_stream_remove(&bad, first);
    th_stream_fix_end(&bad);
    expect_refused(&bad, "without a window");
    th_stream_free(&bad);

    /* a ROUND between two records ends the window */
    th_stream_parse(&bad, s.data, s.len);
    th_buf rd = {0};
    ms_round r9 = {.number = 9};
    th_cbor_round(&rd, &r9);
    th_stream_insert(&bad, second, MS_REC_ROUND, 0, rd.data, rd.len);
    th_stream_fix_end(&bad);
    expect_refused(&bad, "without a window");
    th_buf_free(&rd);
    th_stream_free(&bad);

    th_stream_free(&ts);
    th_buf_free(&s);
    free(mem);
}

/* The writer refuses a table larger than 2^22 pages. */
static void test_options(void **state)
{
    (void)state;
    th_buf s = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_DUPLICATES;
    o.dedup_pages = (1u << 22) + 1;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
    assert_int_equal(ms_writer_status(w), MS_EINVAL);
    assert_non_null(strstr(ms_writer_errmsg(w), "dedup_pages"));
    ms_writer_free(w);
    o.dedup_pages = 3; /* rounded up to 4 */
    w = ms_writer_new(&o, th_sink_write, &s);
    assert_int_equal(ms_writer_status(w), 0);
    ms_writer_free(w);
    th_buf_free(&s);

    /* a part of a migration in parts may not hold DUPLICATE pages */
    ms_part part = {.index = 0, .count = 2};
    o.dedup_pages = 0;
    o.part = &part;
    w = ms_writer_new(&o, th_sink_write, &s);
    assert_int_equal(ms_writer_status(w), MS_EINVAL);
    assert_non_null(strstr(ms_writer_errmsg(w), "DUPLICATES"));
    ms_writer_free(w);
    o.features = MS_FEATURE_ZSTD_WINDOW; /* a window is fine */
    w = ms_writer_new(&o, th_sink_write, &s);
    assert_int_equal(ms_writer_status(w), 0);
    ms_writer_free(w);
    th_buf_free(&s);

    /* and a reader refuses the two bits together at the preamble */
    th_write_small_stream(&s, NULL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    th_put64(ts.pre.data + 16, MS_FEATURE_PARTS | MS_FEATURE_DUPLICATES);
    th_stream_fix_preamble(&ts);
    expect_refused(&ts, "PARTS (bit 4) and DUPLICATES");
    th_stream_free(&ts);
    th_buf_free(&s);
}

int main(void)
{
    th_apply_filter();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates_round_trip), cmocka_unit_test(test_default_unchanged),
        cmocka_unit_test(test_resent_pages),          cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_window_refusals),       cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
