/*
 * Format 1.1 (docs/FORMAT.md revision 2): pre-copy rounds (section 6.4),
 * page states DISCARDED, FILL and IN_PLACE (section 6.2), overlays
 * (section 7.2), the feature bits that guard them (section 3.2) and the END
 * keys `rounds` and `overlays` (section 8).
 *
 * Streams are written with the writer and replayed into an image that
 * applies every extent as section 2 says, then compared page by page with
 * what the test handed in; hostile streams are built with the stream
 * editing of helpers.c, whose framing and totals follow FORMAT.md, not the
 * library.
 * Expected values (dirty page sets, TSC scales, overlay contents) are
 * computed here from the spec's rules, independently of the library.
 */
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

#define PS 4096u
#define KIB 1024u
#define MIB (1024u * 1024u)
#define ALL_FEATURES                                                                               \
    (MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS)
#define MAX_IMG_REGIONS 4u

/* ================================================================ image */

/* One extent as replay handed it out, with the round it belongs to. */
typedef struct seen_extent {
    uint32_t region;
    ms_extent x;
    int64_t round; /* -1: before any round */
} seen_extent;

typedef struct img_region {
    bool declared;
    ms_region r;
    uint8_t *mem;   /* size bytes: the rebuilt guest memory */
    uint8_t *state; /* per page: 0 while missing, else the last copy's state */
    uint64_t *arg;  /* per page: FILL word, IN_PLACE address of this page */
    int64_t *round; /* per page: round of the last copy */
} img_region;

/* A replay target that applies extents as FORMAT.md section 2 describes and
 * logs the order of events: R round, E extent, O overlay, U unknown, Z END. */
typedef struct image {
    img_region reg[MAX_IMG_REGIONS];
    char log[16384];
    size_t nlog;
    ms_round rounds[64];
    size_t nrounds;
    seen_extent *ext;
    size_t next, ext_cap;
    ms_overlay ov[16]; /* slot views cleared: they die with the callback */
    uint8_t ov_page[16][MS_OVERLAY_PAGE_SIZE];
    size_t nov;
    size_t unknown;
    bool ended;
    ms_totals totals;
} image;

static void note(image *im, char c)
{
    if (im->nlog + 1 < sizeof im->log)
        im->log[im->nlog++] = c;
    im->log[im->nlog] = 0;
}

static int on_region(void *c, const ms_region *r)
{
    image *im = c;
    assert_true(r->id < MAX_IMG_REGIONS);
    img_region *g = &im->reg[r->id];
    assert_false(g->declared);
    size_t pages = (size_t)(r->size / r->page_size);
    g->declared = true;
    g->r = *r;
    g->r.name = NULL; /* a view: not kept */
    g->mem = calloc(1, (size_t)r->size);
    g->state = calloc(pages, 1);
    g->arg = calloc(pages, sizeof *g->arg);
    g->round = calloc(pages, sizeof *g->round);
    assert_true(g->mem && g->state && g->arg && g->round);
    return 0;
}

static int on_round(void *c, const ms_round *r)
{
    image *im = c;
    assert_true(im->nrounds < sizeof im->rounds / sizeof im->rounds[0]);
    im->rounds[im->nrounds++] = *r;
    note(im, 'R');
    return 0;
}

static void store_word(uint8_t *p, size_t n, uint64_t w)
{
    for (size_t i = 0; i < n; i += 8)
        th_put64(p + i, w); /* FILL words are stored little-endian */
}

static int on_extent(void *c, const ms_region *r, const ms_extent *x, const uint8_t *data)
{
    image *im = c;
    assert_true(r->id < MAX_IMG_REGIONS);
    img_region *g = &im->reg[r->id];
    assert_true(g->declared); /* a region is declared before its pages */
    assert_true(x->count >= 1);
    assert_true(x->first + x->count <= r->size / r->page_size);
    uint8_t *dst = g->mem + x->first * r->page_size;
    size_t n = (size_t)x->count * r->page_size;
    switch (x->state) {
    case MS_PAGE_DATA:
        assert_non_null(data);
        memcpy(dst, data, n);
        break;
    case MS_PAGE_ZERO:
        assert_null(data);
        memset(dst, 0, n);
        break;
    case MS_PAGE_FILL:
        assert_null(data);
        store_word(dst, n, x->arg);
        break;
    case MS_PAGE_DISCARDED: /* don't care: leave whatever is there */
    case MS_PAGE_IN_PLACE:  /* not in the stream: nothing to write */
        assert_null(data);
        break;
    default:
        fail_msg("extent with state %u handed out", x->state);
    }
    int64_t round = im->nrounds ? (int64_t)im->rounds[im->nrounds - 1].number : -1;
    for (uint32_t i = 0; i < x->count; i++) {
        g->state[x->first + i] = x->state;
        g->arg[x->first + i] = x->state == MS_PAGE_IN_PLACE ? x->arg + (uint64_t)i * r->page_size
                               : x->state == MS_PAGE_FILL   ? x->arg
                                                            : 0;
        g->round[x->first + i] = round;
    }
    if (im->next == im->ext_cap) {
        im->ext_cap = im->ext_cap ? im->ext_cap * 2 : 64;
        im->ext = realloc(im->ext, im->ext_cap * sizeof *im->ext);
        assert_non_null(im->ext);
    }
    im->ext[im->next++] = (seen_extent){.region = r->id, .x = *x, .round = round};
    note(im, 'E');
    return 0;
}

static int on_overlay(void *c, const ms_overlay *o)
{
    image *im = c;
    assert_true(im->nov < sizeof im->ov / sizeof im->ov[0]);
    assert_status(ms_overlay_render(o, im->ov_page[im->nov]), 0);
    im->ov[im->nov] = *o;
    memset(im->ov[im->nov].synic.slot, 0, sizeof im->ov[im->nov].synic.slot);
    im->nov++;
    note(im, 'O');
    return 0;
}

static int on_unknown(void *c, const ms_record *rec)
{
    image *im = c;
    assert_false(rec->known);
    im->unknown++;
    note(im, 'U');
    return 0;
}

static int on_end(void *c, const ms_totals *t, uint64_t digest)
{
    image *im = c;
    (void)digest;
    im->ended = true;
    im->totals = *t;
    note(im, 'Z');
    return 0;
}

static const ms_replay_callbacks image_cb = {
    .struct_size = sizeof(ms_replay_callbacks),
    .region = on_region,
    .extent = on_extent,
    .unknown = on_unknown,
    .end = on_end,
    .round = on_round,
    .overlay = on_overlay,
};

static void image_free(image *im)
{
    for (unsigned i = 0; i < MAX_IMG_REGIONS; i++) {
        free(im->reg[i].mem);
        free(im->reg[i].state);
        free(im->reg[i].arg);
        free(im->reg[i].round);
    }
    free(im->ext);
    memset(im, 0, sizeof *im);
}

/* Replays @s into @im (zeroed by the caller); fails the test on any error. */
static void replay(const th_buf *s, image *im)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    assert_non_null(r);
    int rc = ms_replay(r, &image_cb, im);
    if (rc)
        fail_msg("replay failed: %s (%s)", ms_strerror(rc), ms_reader_errmsg(r));
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    assert_true(im->ended);
}

/* Asserts pages [first, first + count) of region @id are in @state, with
 * @arg for FILL (the same word) and IN_PLACE (the first page's address). */
static void expect_run(const image *im, uint32_t id, uint64_t first, uint64_t count, uint8_t state,
                       uint64_t arg)
{
    const img_region *g = &im->reg[id];
    assert_true(g->declared);
    for (uint64_t p = first; p < first + count; p++) {
        uint64_t want = state == MS_PAGE_IN_PLACE ? arg + (p - first) * g->r.page_size
                        : state == MS_PAGE_FILL   ? arg
                                                  : 0;
        if (g->state[p] != state || g->arg[p] != want)
            fail_msg("region %u page %llu: state %u arg 0x%llx, expected state %u arg 0x%llx", id,
                     (unsigned long long)p, g->state[p], (unsigned long long)g->arg[p], state,
                     (unsigned long long)want);
    }
}

/* ================================================================ writing */

static ms_writer *new_writer(th_buf *out, uint64_t features)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "example";
    o.writer_version = "1.0";
    o.features = features;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_non_null(w);
    assert_status(ms_writer_status(w), 0);
    return w;
}

static void add_region(ms_writer *w, uint32_t id, bool has_gpa, uint64_t gpa, uint64_t size,
                       uint32_t page_size)
{
    ms_region r = {.id = id,
                   .name = id == 0   ? "ram"
                           : id == 1 ? "vram"
                                     : "rom",
                   .has_gpa = has_gpa,
                   .gpa = gpa,
                   .size = size,
                   .page_size = page_size};
    assert_status(ms_writer_add_region(w, &r), 0);
}

static void start_round(ms_writer *w, uint64_t number, uint32_t tracker, uint32_t gran)
{
    ms_round r = {.number = number, .tracker = tracker, .granularity = gran};
    int rc = ms_writer_round(w, &r);
    if (rc)
        fail_msg("round %llu: %s", (unsigned long long)number, ms_writer_errmsg(w));
}

/* Finishes @w and checks the stream against FORMAT.md's framing: the chain,
 * the END totals helpers.c derives from the records, the writer's own
 * totals, and END's canonical encoding. */
static void finish(ms_writer *w, th_buf *s, ms_totals *out)
{
    ms_totals t;
    int rc = ms_writer_finish(w, &t);
    if (rc)
        fail_msg("finish: %s", ms_writer_errmsg(w));
    ms_writer_free(w);
    th_check_chain(s->data, s->len);
    th_stream ts;
    th_stream_parse(&ts, s->data, s->len);
    assert_int_equal(ts.trailer.len, 0);
    assert_int_equal(ts.rec[ts.n - 1].type, MS_REC_END);
    ms_totals spec;
    th_stream_totals(&ts, ts.n - 1, &spec);
    assert_int_equal(spec.records, t.records);
    assert_int_equal(spec.bytes, t.bytes);
    for (unsigned k = 0; k < MS_PAGE_STATE_SLOTS; k++)
        assert_int_equal(spec.pages[k], t.pages[k]);
    assert_int_equal(spec.devices, t.devices);
    assert_int_equal(spec.rounds, t.rounds);
    assert_int_equal(spec.overlays, t.overlays);
    th_buf end = {0};
    th_cbor_end(&end, &spec);
    const th_buf *got = &ts.rec[ts.n - 1].payload;
    assert_int_equal(got->len, end.len);
    assert_memory_equal(got->data, end.data, end.len);
    th_buf_free(&end);
    th_stream_free(&ts);
    if (out)
        *out = t;
}

static void expect_totals(const ms_totals *t, uint64_t data, uint64_t zero, uint64_t discarded,
                          uint64_t fill, uint64_t in_place, uint64_t rounds, uint64_t overlays)
{
    assert_int_equal(t->pages[MS_PAGE_DATA], data);
    assert_int_equal(t->pages[MS_PAGE_ZERO], zero);
    assert_int_equal(t->pages[MS_PAGE_DISCARDED], discarded);
    assert_int_equal(t->pages[MS_PAGE_FILL], fill);
    assert_int_equal(t->pages[MS_PAGE_IN_PLACE], in_place);
    assert_int_equal(t->pages[6], 0);
    assert_int_equal(t->rounds, rounds);
    assert_int_equal(t->overlays, overlays);
}

static void fill_word(uint8_t *p, size_t n, uint64_t w)
{
    store_word(p, n, w);
}

/* ================================================= 1. round trips, states */

/* Pages with contents the FILL rule of section 6.2 must recognise, and
 * near misses it must not. */
static void make_state_pages(uint8_t *m, uint64_t *rng)
{
    th_make_page(m + 0 * PS, PS, TH_PAGE_RANDOM, rng);
    memset(m + 1 * PS, 0, PS);
    memset(m + 2 * PS, 0xcc, PS);                     /* byte pattern */
    fill_word(m + 3 * PS, PS, 0x00000000deadbeefull); /* 64-bit pattern */
    for (unsigned i = 0; i < PS; i++)                 /* 01 02 .. 08 repeated */
        m[4 * PS + i] = (uint8_t)(i % 8 + 1);
    memset(m + 5 * PS, 0xcc, PS); /* one byte off */
    m[5 * PS + PS - 1] = 0xcd;
    th_make_page(m + 6 * PS, PS, TH_PAGE_TEXT, rng);
    fill_word(m + 7 * PS, PS, 0x1111111111111111ull); /* one word off, mid page */
    th_put64(m + 7 * PS + 2048, 0x1111111111111112ull);
}

static void test_states_roundtrip(void **state)
{
    (void)state;
    uint64_t rng = 1;
    uint8_t *m = malloc(8 * PS);
    make_state_pages(m, &rng);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, ALL_FEATURES);
    add_region(w, 0, true, 0, 32 * PS, PS);
    start_round(w, 0, MS_TRACKER_NONE, 0);
    assert_status(ms_writer_pages(w, 0, 0, 8, m), 0);
    assert_status(ms_writer_discard(w, 0, 8, 4), 0);
    assert_status(ms_writer_fill_pages(w, 0, 12, 2, 0x1122334455667788ull), 0);
    assert_status(ms_writer_fill_pages(w, 0, 14, 2, 0), 0); /* word 0: ZERO */
    assert_status(ms_writer_in_place(w, 0, 16, 4, 0x40000000), 0);
    /* continues the previous reference: one extent */
    assert_status(ms_writer_in_place(w, 0, 20, 2, 0x40000000 + 4 * PS), 0);
    assert_status(ms_writer_in_place(w, 0, 22, 2, 0x80000000), 0); /* does not */
    ms_totals t;
    finish(w, &s, &t);
    expect_totals(&t, 4, 3, 4, 5, 8, 1, 0);

    image im = {0};
    replay(&s, &im);
    expect_run(&im, 0, 0, 1, MS_PAGE_DATA, 0);
    expect_run(&im, 0, 1, 1, MS_PAGE_ZERO, 0);
    expect_run(&im, 0, 2, 1, MS_PAGE_FILL, 0xccccccccccccccccull);
    expect_run(&im, 0, 3, 1, MS_PAGE_FILL, 0xdeadbeefull);
    expect_run(&im, 0, 4, 1, MS_PAGE_FILL, 0x0807060504030201ull);
    expect_run(&im, 0, 5, 3, MS_PAGE_DATA, 0);
    expect_run(&im, 0, 8, 4, MS_PAGE_DISCARDED, 0);
    expect_run(&im, 0, 12, 2, MS_PAGE_FILL, 0x1122334455667788ull);
    expect_run(&im, 0, 14, 2, MS_PAGE_ZERO, 0);
    expect_run(&im, 0, 16, 6, MS_PAGE_IN_PLACE, 0x40000000);
    expect_run(&im, 0, 22, 2, MS_PAGE_IN_PLACE, 0x80000000);
    expect_run(&im, 0, 24, 8, 0, 0); /* never sent: missing */
    /* DATA, ZERO and FILL pages rebuild the exact bytes handed in */
    assert_memory_equal(im.reg[0].mem, m, 8 * PS);
    for (unsigned p = 12; p < 14; p++)
        for (unsigned i = 0; i < PS; i++)
            assert_int_equal(im.reg[0].mem[p * PS + i], 0x88 - 0x11 * (i % 8));

    /* the writer's extents, merged where runs continue (section 6.2) */
    static const ms_extent want[] = {
        {0, 1, MS_PAGE_DATA, 0},
        {1, 1, MS_PAGE_ZERO, 0},
        {2, 1, MS_PAGE_FILL, 0xccccccccccccccccull},
        {3, 1, MS_PAGE_FILL, 0xdeadbeefull},
        {4, 1, MS_PAGE_FILL, 0x0807060504030201ull},
        {5, 3, MS_PAGE_DATA, 0},
        {8, 4, MS_PAGE_DISCARDED, 0},
        {12, 2, MS_PAGE_FILL, 0x1122334455667788ull},
        {14, 2, MS_PAGE_ZERO, 0},
        {16, 6, MS_PAGE_IN_PLACE, 0x40000000},
        {22, 2, MS_PAGE_IN_PLACE, 0x80000000},
    };
    assert_int_equal(im.next, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < im.next; i++) {
        assert_int_equal(im.ext[i].x.first, want[i].first);
        assert_int_equal(im.ext[i].x.count, want[i].count);
        assert_int_equal(im.ext[i].x.state, want[i].state);
        assert_int_equal(im.ext[i].x.arg, want[i].arg);
        assert_int_equal(im.ext[i].round, 0);
    }
    assert_string_equal(im.log, "REEEEEEEEEEEZ");
    expect_totals(&im.totals, 4, 3, 4, 5, 8, 1, 0);

    /* the preamble names exactly the features requested */
    assert_int_equal(th_get64(s.data + 16), ALL_FEATURES);
    assert_int_equal(th_get64(s.data + 24), 0);
    assert_int_equal(th_get16(s.data + 10), 1);
    image_free(&im);
    th_buf_free(&s);
    free(m);
}

/* FILL detection is part of MS_FEATURE_FILL: without it the same pages are
 * DATA, so a stream stays readable by a reader without the feature. */
static void test_fill_detection_needs_feature(void **state)
{
    (void)state;
    static const uint64_t sets[] = {0, MS_FEATURE_DISCARDED, MS_FEATURE_FILL};
    for (size_t k = 0; k < 3; k++) {
        uint64_t rng = 7;
        uint8_t *m = malloc(8 * PS);
        make_state_pages(m, &rng);
        th_buf s = {0};
        ms_writer *w = new_writer(&s, sets[k]);
        add_region(w, 0, true, 0, 8 * PS, PS);
        assert_status(ms_writer_pages(w, 0, 0, 8, m), 0);
        ms_totals t;
        finish(w, &s, &t);
        assert_int_equal(th_get64(s.data + 16), sets[k]);
        image im = {0};
        replay(&s, &im);
        assert_memory_equal(im.reg[0].mem, m, 8 * PS);
        if (sets[k] & MS_FEATURE_FILL) {
            expect_totals(&t, 4, 1, 0, 3, 0, 0, 0);
            expect_run(&im, 0, 2, 1, MS_PAGE_FILL, 0xccccccccccccccccull);
            expect_run(&im, 0, 3, 1, MS_PAGE_FILL, 0xdeadbeefull);
        } else {
            expect_totals(&t, 7, 1, 0, 0, 0, 0, 0);
            expect_run(&im, 0, 0, 1, MS_PAGE_DATA, 0);
            expect_run(&im, 0, 2, 6, MS_PAGE_DATA, 0);
        }
        expect_run(&im, 0, 1, 1, MS_PAGE_ZERO, 0);
        assert_int_equal(im.nrounds, 0); /* no round asked for, none written */
        image_free(&im);
        th_buf_free(&s);
        free(m);
    }
}

/* Every 8-byte word of a FILL page is arg, little-endian, whatever the page
 * size: checked over every byte pattern shape on 8 KiB and 64 KiB pages. */
static void test_fill_large_pages(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {8192, 65536};
    for (size_t k = 0; k < 2; k++) {
        uint32_t ps = sizes[k];
        uint8_t *m = malloc(3 * (size_t)ps);
        fill_word(m, ps, 0x00000000deadbeefull);
        fill_word(m + ps, ps, 0xfffffffffffffffeull);
        fill_word(m + 2 * (size_t)ps, ps, 0x8000000000000000ull);
        th_buf s = {0};
        ms_writer *w = new_writer(&s, MS_FEATURE_FILL);
        add_region(w, 0, true, 0, 3 * (uint64_t)ps, ps);
        assert_status(ms_writer_pages(w, 0, 0, 3, m), 0);
        finish(w, &s, NULL);
        image im = {0};
        replay(&s, &im);
        expect_run(&im, 0, 0, 1, MS_PAGE_FILL, 0xdeadbeefull);
        expect_run(&im, 0, 1, 1, MS_PAGE_FILL, 0xfffffffffffffffeull);
        expect_run(&im, 0, 2, 1, MS_PAGE_FILL, 0x8000000000000000ull);
        assert_memory_equal(im.reg[0].mem, m, 3 * (size_t)ps);
        image_free(&im);
        th_buf_free(&s);
        free(m);
    }
}

static void test_fill_pages_call(void **state)
{
    (void)state;
    /* word 0 writes ZERO, which needs no feature */
    th_buf s = {0};
    ms_writer *w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 8 * PS, PS);
    assert_status(ms_writer_fill_pages(w, 0, 2, 3, 0), 0);
    assert_status(ms_writer_fill_pages(w, 0, 0, 0, 0), 0);
    ms_totals t;
    finish(w, &s, &t);
    expect_totals(&t, 0, 3, 0, 0, 0, 0, 0);
    assert_int_equal(th_get64(s.data + 16), 0);
    image im = {0};
    replay(&s, &im);
    expect_run(&im, 0, 2, 3, MS_PAGE_ZERO, 0);
    image_free(&im);
    th_buf_free(&s);

    /* a non-zero word: FILL with exactly that argument, consecutive calls
     * with the same word merged */
    w = new_writer(&s, MS_FEATURE_FILL);
    add_region(w, 0, true, 0, 8 * PS, PS);
    assert_status(ms_writer_fill_pages(w, 0, 0, 2, 0x00000000deadbeefull), 0);
    assert_status(ms_writer_fill_pages(w, 0, 2, 2, 0x00000000deadbeefull), 0);
    assert_status(ms_writer_fill_pages(w, 0, 4, 1, 0xdeadbeef00000000ull), 0);
    finish(w, &s, &t);
    expect_totals(&t, 0, 0, 0, 5, 0, 0, 0);
    memset(&im, 0, sizeof im);
    replay(&s, &im);
    assert_int_equal(im.next, 2);
    assert_int_equal(im.ext[0].x.count, 4);
    expect_run(&im, 0, 0, 4, MS_PAGE_FILL, 0xdeadbeefull);
    expect_run(&im, 0, 4, 1, MS_PAGE_FILL, 0xdeadbeef00000000ull);
    assert_int_equal(im.reg[0].mem[0], 0xef);
    assert_int_equal(im.reg[0].mem[3], 0xde);
    assert_int_equal(im.reg[0].mem[4], 0);
    assert_int_equal(im.reg[0].mem[4 * PS + 4], 0xef);
    image_free(&im);
    th_buf_free(&s);
}

static void test_in_place_call(void **state)
{
    (void)state;
    const uint32_t ps = 8192;
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_IN_PLACE);
    add_region(w, 0, true, 0, 16 * (uint64_t)ps, ps);
    assert_status(ms_writer_in_place(w, 0, 0, 2, 0x10000), 0);
    assert_status(ms_writer_in_place(w, 0, 2, 3, 0x10000 + 2 * ps), 0); /* continues */
    assert_status(ms_writer_in_place(w, 0, 5, 1, 0x10000 + 6 * ps), 0); /* a gap */
    assert_status(ms_writer_in_place(w, 0, 6, 1, 0x10000 + 7 * ps), 0); /* continues it */
    assert_status(ms_writer_in_place(w, 0, 7, 0, 0x1234), 0);           /* nothing */
    /* the last bytes of the 2^64 space: allowed, ending exactly at 2^64 */
    assert_status(ms_writer_in_place(w, 0, 8, 2, 0 - 2 * (uint64_t)ps), 0);
    ms_totals t;
    finish(w, &s, &t);
    expect_totals(&t, 0, 0, 0, 0, 9, 0, 0);
    image im = {0};
    replay(&s, &im);
    assert_int_equal(im.next, 3);
    assert_int_equal(im.ext[0].x.first, 0);
    assert_int_equal(im.ext[0].x.count, 5);
    assert_int_equal(im.ext[1].x.first, 5);
    assert_int_equal(im.ext[1].x.count, 2);
    expect_run(&im, 0, 0, 5, MS_PAGE_IN_PLACE, 0x10000);
    expect_run(&im, 0, 5, 2, MS_PAGE_IN_PLACE, 0x10000 + 6 * ps);
    expect_run(&im, 0, 8, 2, MS_PAGE_IN_PLACE, 0 - 2 * (uint64_t)ps);
    expect_run(&im, 0, 7, 1, 0, 0);
    assert_true(th_all_zero(im.reg[0].mem, 16 * (size_t)ps));
    image_free(&im);
    th_buf_free(&s);
}

/* =========================================================== dirty pages */

/* Region pages that a KVM-layout bitmap marks dirty, from the rule of
 * writer.h and FORMAT.md section 6.4: a page is sent when any unit that
 * overlaps it has its bit set (bit i of word i / 64). */
static bool page_dirty(const uint64_t *bm, uint64_t page, uint32_t ps, uint32_t gran, uint64_t size)
{
    uint64_t lo = page * ps, hi = lo + ps; /* the page's bytes [lo, hi) */
    if (hi > size)
        hi = size;
    for (uint64_t u = lo / gran; u * gran < hi; u++)
        if (bm[u / 64] >> (u % 64) & 1)
            return true;
    return false;
}

/* Writes round 1 of region 0 (@pages pages of @ps) with @bm at @gran over
 * memory of mixed contents and checks every page: dirty ones carry the
 * memory's bytes, clean ones were never sent. Returns the PAGES extents. */
static size_t dirty_case(uint64_t pages, uint32_t ps, uint32_t gran, const uint64_t *bm)
{
    const uint64_t size = pages * ps;
    uint8_t *m = malloc((size_t)size);
    uint64_t rng = pages * 31 + ps + gran;
    for (uint64_t p = 0; p < pages; p++) {
        uint8_t *q = m + p * ps;
        switch (th_rand_below(&rng, 4)) {
        case 0:
            memset(q, 0, ps);
            break;
        case 1:
            fill_word(q, ps, 0xcc);
            break;
        case 2:
            th_make_page(q, ps, TH_PAGE_TEXT, &rng);
            break;
        default:
            th_make_page(q, ps, TH_PAGE_RANDOM, &rng);
        }
    }
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_FILL);
    add_region(w, 0, true, 0, size, ps);
    start_round(w, 0, MS_TRACKER_NONE, 0);
    start_round(w, 1, MS_TRACKER_BITMAP, gran);
    int rc = ms_writer_dirty(w, 0, bm, gran, m);
    if (rc)
        fail_msg("dirty: %s", ms_writer_errmsg(w));
    ms_totals t;
    finish(w, &s, &t);
    image im = {0};
    replay(&s, &im);
    uint64_t sent = 0;
    for (uint64_t p = 0; p < pages; p++) {
        const img_region *g = &im.reg[0];
        if (page_dirty(bm, p, ps, gran, size)) {
            sent++;
            if (g->state[p] == 0)
                fail_msg("dirty page %llu was not sent", (unsigned long long)p);
            assert_int_equal(g->round[p], 1);
            assert_memory_equal(g->mem + p * ps, m + p * ps, ps);
            /* classified like ms_writer_pages(): ZERO, FILL, else DATA */
            uint8_t want = th_all_zero(m + p * ps, ps) ? MS_PAGE_ZERO
                           : th_get64(m + p * ps) == 0xcc && th_get64(m + p * ps + 8) == 0xcc
                               ? MS_PAGE_FILL
                               : MS_PAGE_DATA;
            assert_int_equal(g->state[p], want);
        } else if (g->state[p] != 0) {
            fail_msg("clean page %llu was sent", (unsigned long long)p);
        }
    }
    assert_int_equal(t.pages[MS_PAGE_DATA] + t.pages[MS_PAGE_ZERO] + t.pages[MS_PAGE_FILL], sent);
    assert_int_equal(t.rounds, 2);
    /* adjacent extents of one state are merged */
    for (size_t i = 1; i < im.next; i++) {
        const ms_extent *a = &im.ext[i - 1].x, *b = &im.ext[i].x;
        assert_false(a->first + a->count == b->first && a->state == b->state && a->arg == b->arg &&
                     a->state != MS_PAGE_IN_PLACE);
    }
    size_t n = im.next;
    image_free(&im);
    th_buf_free(&s);
    free(m);
    return n;
}

static void test_dirty_page_granularity(void **state)
{
    (void)state;
    /* 200 units: not a multiple of 64, so the last word is partly used */
    uint64_t bm[4] = {0};
    uint64_t rng = 99;
    for (unsigned u = 0; u < 200; u++)
        if (th_rand_below(&rng, 3) == 0)
            bm[u / 64] |= 1ull << (u % 64);
    bm[0] |= 1;             /* first unit */
    bm[3] |= 1ull << 7;     /* unit 199, the last */
    bm[1] |= 0xffull << 20; /* a run of 8 */
    dirty_case(200, PS, PS, bm);
    /* every unit dirty: the whole region, in few extents */
    uint64_t all[4] = {~0ull, ~0ull, ~0ull, 0xff};
    dirty_case(200, PS, PS, all);
}

/* 2 MiB region pages tracked at 4 KiB: one dirty unit sends its whole
 * region page (section 6.4). */
static void test_dirty_huge_pages(void **state)
{
    (void)state;
    uint64_t bm[32] = {0};                /* 8 MiB / 4 KiB = 2048 units */
    bm[600 / 64] |= 1ull << (600 % 64);   /* inside region page 1 */
    bm[2047 / 64] |= 1ull << (2047 % 64); /* the last unit of page 3 */
    size_t n = dirty_case(4, 2 * MIB, PS, bm);
    assert_int_equal(n, 2);
}

/* 64 KiB units over 4 KiB pages: a dirty unit sends its 16 pages; in a
 * region that is not a whole number of units, the last unit is clipped. */
static void test_dirty_coarse_granularity(void **state)
{
    (void)state;
    uint64_t bm[1] = {(1ull << 3) | (1ull << 16) | (1ull << 4)};
    dirty_case(258, PS, 64 * KIB, bm); /* 17 units, the last of 2 pages */
    uint64_t bm2[1] = {1ull << 1};
    dirty_case(20, PS, 64 * KIB, bm2); /* 2 units, the second of 4 pages */
    /* units larger than the region's 8 KiB pages, and 2^30 units */
    uint64_t bm3[1] = {0x5};
    dirty_case(40, 8192, 16 * KIB, bm3);
    uint64_t bm4[1] = {0x1};
    dirty_case(4, 16 * KIB, 1u << 30, bm4); /* one unit covers the region */
}

static void test_dirty_empty_bitmap(void **state)
{
    (void)state;
    uint64_t bm[4] = {0};
    uint8_t *m = calloc(200, PS);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 200 * PS, PS);
    start_round(w, 0, MS_TRACKER_NONE, 0);
    assert_status(ms_writer_pages(w, 0, 0, 1, m), 0);
    start_round(w, 1, MS_TRACKER_BITMAP, PS);
    assert_status(ms_writer_dirty(w, 0, bm, PS, m), 0);
    ms_totals t;
    finish(w, &s, &t);
    expect_totals(&t, 0, 1, 0, 0, 0, 2, 0);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    /* ROUND, REGIONS, PAGES, ROUND, END: round 1 has no PAGES record */
    assert_int_equal(ts.n, 5);
    assert_int_equal(ts.rec[3].type, MS_REC_ROUND);
    assert_int_equal(ts.rec[4].type, MS_REC_END);
    th_stream_free(&ts);
    th_buf_free(&s);
    free(m);
}

/* Bits past the region's last unit are a caller error (writer.h). */
static void test_dirty_refusals(void **state)
{
    (void)state;
    uint8_t *m = calloc(200, PS);
    static const struct {
        unsigned bit;
        uint32_t gran;
        const char *frag;
    } cases[] = {
        {200, PS, "past"},      /* the first unit after 200 */
        {255, PS, "past"},      /* the last bit of the last word */
        {13, 64 * KIB, "past"}, /* 200 pages = 12.5 units: units 0..12 */
        {0, 2048, "granularity"}, {0, 3 * PS, "granularity"}, {0, 1u << 31, "granularity"},
        {0, 0, "granularity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t bm[4] = {1, 0, 0, 0};
        bm[cases[i].bit / 64] |= 1ull << (cases[i].bit % 64);
        th_buf s = {0};
        ms_writer *w = new_writer(&s, 0);
        add_region(w, 0, true, 0, 200 * PS, PS);
        assert_status(ms_writer_dirty(w, 0, bm, cases[i].gran, m), MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), cases[i].frag);
        /* sticky */
        assert_status(ms_writer_zero_pages(w, 0, 0, 1), MS_EINVAL);
        assert_status(ms_writer_finish(w, NULL), MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), cases[i].frag);
        ms_writer_free(w);
        th_buf_free(&s);
    }
    th_buf s = {0};
    uint64_t bm[4] = {0};
    ms_writer *w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 200 * PS, PS);
    assert_status(ms_writer_dirty(w, 0, NULL, PS, m), MS_EINVAL);
    ms_writer_free(w);
    w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 200 * PS, PS);
    assert_status(ms_writer_dirty(w, 0, bm, PS, NULL), MS_EINVAL);
    ms_writer_free(w);
    w = new_writer(&s, 0);
    assert_status(ms_writer_dirty(w, 5, bm, PS, m), MS_EINVAL); /* no such region */
    assert_contains(ms_writer_errmsg(w), "region 5");
    ms_writer_free(w);
    th_buf_free(&s);
    free(m);
}

/* ================================================================ rounds */

static void test_round_records(void **state)
{
    (void)state;
    static const ms_round rounds[] = {
        {.number = 0, .tracker = MS_TRACKER_NONE},
        {.number = 1,
         .tracker = MS_TRACKER_BITMAP,
         .granularity = 4096,
         .has_dirty = true,
         .dirty = 3},
        {.number = 5, .tracker = MS_TRACKER_PML, .granularity = 4096}, /* a gap: allowed */
        {.number = 6, .tracker = 9, .granularity = 1u << 30, .has_dirty = true, .dirty = 0},
        {.number = UINT64_MAX,
         .tracker = MS_TRACKER_RING,
         .granularity = 8192,
         .has_dirty = true,
         .dirty = UINT64_MAX,
         .final = true},
    };
    const size_t nr = sizeof rounds / sizeof rounds[0];
    uint8_t *m = calloc(8, PS);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 8 * PS, PS);
    for (size_t i = 0; i < nr; i++) {
        int rc = ms_writer_round(w, &rounds[i]);
        if (rc)
            fail_msg("round %zu: %s", i, ms_writer_errmsg(w));
        /* round i sends pages i and i + 1 (round 3 sends none) */
        if (i != 3) {
            m[i * PS] = (uint8_t)(i + 1);
            assert_status(ms_writer_pages(w, 0, i, 2, m + i * PS), 0);
        }
    }
    ms_totals t;
    finish(w, &s, &t);
    assert_int_equal(t.rounds, nr);

    /* every ROUND record: flags 0 (skippable), canonical payload, and its
     * pages after it, before the next ROUND */
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    size_t k = 0;
    for (size_t i = 0; i < ts.n; i++) {
        if (ts.rec[i].type != MS_REC_ROUND)
            continue;
        assert_int_equal(ts.rec[i].flags, 0);
        th_buf want = {0};
        th_cbor_round(&want, &rounds[k]);
        assert_int_equal(ts.rec[i].payload.len, want.len);
        assert_memory_equal(ts.rec[i].payload.data, want.data, want.len);
        th_buf_free(&want);
        k++;
    }
    assert_int_equal(k, nr);
    th_stream_free(&ts);

    /* the reader decodes every field */
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    k = 0;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type != MS_REC_ROUND)
            continue;
        const ms_round *a = &rec->round, *b = &rounds[k++];
        assert_int_equal(a->number, b->number);
        assert_int_equal(a->tracker, b->tracker);
        assert_int_equal(a->granularity, b->granularity);
        assert_int_equal(a->has_dirty, b->has_dirty);
        assert_int_equal(a->dirty, b->dirty);
        assert_int_equal(a->final, b->final);
    }
    assert_status(ms_reader_status(r), 0);
    assert_int_equal(k, nr);
    ms_reader_free(r);

    /* replay: each round's callback comes before its extents */
    image im = {0};
    replay(&s, &im);
    assert_string_equal(im.log, "REEREEREERREEZ");
    assert_int_equal(im.nrounds, nr);
    for (size_t i = 0; i < im.next; i++) {
        /* the extents that follow round index ri cover pages ri, ri + 1 */
        const seen_extent *x = &im.ext[i];
        size_t ri = 0;
        while (ri < nr && rounds[ri].number != (uint64_t)x->round)
            ri++;
        assert_true(ri < nr);
        assert_true(x->x.first >= ri && x->x.first + x->x.count <= ri + 2);
    }
    static const uint8_t final_state[8] = {
        MS_PAGE_DATA, MS_PAGE_DATA, MS_PAGE_DATA, MS_PAGE_ZERO, MS_PAGE_DATA, MS_PAGE_ZERO, 0, 0};
    static const uint64_t final_round[8] = {0, 1, 5, 5, UINT64_MAX, UINT64_MAX, 0, 0};
    for (unsigned p = 0; p < 8; p++) {
        assert_int_equal(im.reg[0].state[p], final_state[p]);
        if (final_state[p])
            assert_int_equal((uint64_t)im.reg[0].round[p], final_round[p]);
    }
    assert_memory_equal(im.reg[0].mem, m, 6 * PS);
    expect_totals(&im.totals, t.pages[MS_PAGE_DATA], t.pages[MS_PAGE_ZERO], 0, 0, 0, nr, 0);
    assert_null(ms_tracker_name(9));
    image_free(&im);
    th_buf_free(&s);
    free(m);
}

/* ============================================================== overlays */

static uint8_t slot_a[MS_SYNIC_SLOT_SIZE], slot_b[MS_SYNIC_SLOT_SIZE];

/* One overlay of every kind and parameter form, in region 0 (gpa 1 MiB,
 * 1 MiB: frames 0x100..0x1ff). */
static size_t sample_overlays(ms_overlay *o)
{
    for (unsigned i = 0; i < MS_SYNIC_SLOT_SIZE; i++) {
        slot_a[i] = (uint8_t)(i * 3 + 1);
        slot_b[i] = (uint8_t)(255 - i);
    }
    slot_a[4] = 240; /* SYNIC_MESSAGE payload size: the largest allowed */
    slot_b[4] = 17;
    memset(o, 0, 7 * sizeof *o);
    o[0].gfn = 0x100;
    o[0].kind = MS_OVERLAY_REFERENCE_TSC;
    o[0].tsc.has_frequency = true;
    o[0].tsc.frequency = 2500000000u;
    o[0].tsc.offset = -5;
    o[1].gfn = 0x100; /* same frame, another kind */
    o[1].kind = MS_OVERLAY_HYPERCALL;
    o[1].hypercall.vendor = 1;
    o[2].gfn = 0x101;
    o[2].kind = MS_OVERLAY_REFERENCE_TSC;
    o[2].tsc.sequence = 0xfffffffeu;
    o[2].tsc.scale = 0x0123456789abcdefull;
    o[2].tsc.offset = INT64_MIN;
    o[3].gfn = 0x102;
    o[3].kind = MS_OVERLAY_SYNIC_MESSAGE;
    o[3].synic.vp = 3;
    o[3].synic.slot_mask = 1u | 1u << 15;
    o[3].synic.slot[0] = slot_a;
    o[3].synic.slot[15] = slot_b;
    o[4].gfn = 0x102;
    o[4].kind = MS_OVERLAY_SYNIC_EVENT_FLAGS;
    o[4].synic.vp = 0xffffffffu;
    o[5].gfn = 0x1ff; /* the region's last frame */
    o[5].kind = MS_OVERLAY_HYPERCALL;
    o[5].hypercall.vendor = 0;
    o[6].gfn = 0x103;
    o[6].kind = MS_OVERLAY_SYNIC_EVENT_FLAGS;
    o[6].synic.vp = 1;
    o[6].synic.slot_mask = 1u << 7;
    o[6].synic.slot[7] = slot_a;
    return 7;
}

static void assert_overlay_equal(const ms_overlay *a, const ms_overlay *b, bool slots)
{
    assert_int_equal(a->gfn, b->gfn);
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case MS_OVERLAY_HYPERCALL:
        assert_int_equal(a->hypercall.vendor, b->hypercall.vendor);
        break;
    case MS_OVERLAY_REFERENCE_TSC:
        assert_int_equal(a->tsc.has_frequency, b->tsc.has_frequency);
        assert_int_equal(a->tsc.frequency, b->tsc.frequency);
        if (!a->tsc.has_frequency) {
            assert_int_equal(a->tsc.sequence, b->tsc.sequence);
            assert_int_equal(a->tsc.scale, b->tsc.scale);
        }
        assert_true(a->tsc.offset == b->tsc.offset);
        break;
    default:
        assert_int_equal(a->synic.vp, b->synic.vp);
        assert_int_equal(a->synic.slot_mask, b->synic.slot_mask);
        for (unsigned s = 0; slots && s < MS_SYNIC_SLOTS; s++)
            if (a->synic.slot_mask >> s & 1)
                assert_memory_equal(a->synic.slot[s], b->synic.slot[s], MS_SYNIC_SLOT_SIZE);
    }
}

static void test_overlays_roundtrip(void **state)
{
    (void)state;
    ms_overlay o[8];
    size_t n = sample_overlays(o);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_OVERLAYS);
    add_region(w, 0, true, MIB, MIB, PS);
    add_region(w, 1, false, 0, 16 * PS, PS);
    start_round(w, 0, MS_TRACKER_NONE, 0);
    assert_status(ms_writer_zero_pages(w, 0, 0, 256), 0);
    for (size_t i = 0; i < n; i++) {
        int rc = ms_writer_overlay(w, &o[i]);
        if (rc)
            fail_msg("overlay %zu: %s", i, ms_writer_errmsg(w));
    }
    ms_totals t;
    finish(w, &s, &t);
    expect_totals(&t, 0, 256, 0, 0, 0, 1, n);
    assert_int_equal(th_get64(s.data + 16), MS_FEATURE_OVERLAYS);

    /* one OVERLAY record per call: must-understand, canonical payload */
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    for (size_t i = 0; i < n; i++) {
        size_t at = th_stream_find(&ts, MS_REC_OVERLAY, i);
        assert_int_equal(ts.rec[at].flags, MS_RECORD_MUST_UNDERSTAND);
        assert_true(at > th_stream_find(&ts, MS_REC_REGIONS, 0));
        th_buf want = {0};
        th_cbor_head(&want, 4, 1);
        th_cbor_overlay(&want, &o[i]);
        assert_int_equal(ts.rec[at].payload.len, want.len);
        assert_memory_equal(ts.rec[at].payload.data, want.data, want.len);
        th_buf_free(&want);
    }
    th_stream_free(&ts);

    /* read back field by field, slot bytes included */
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    size_t k = 0;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type != MS_REC_OVERLAY)
            continue;
        assert_int_equal(rec->overlay_count, 1);
        assert_overlay_equal(&rec->overlays[0], &o[k++], true);
    }
    assert_status(ms_reader_status(r), 0);
    assert_int_equal(k, n);
    ms_reader_free(r);

    /* replay hands each one out in order; contents as rendered from the
     * caller's overlay */
    image im = {0};
    replay(&s, &im);
    assert_int_equal(im.nov, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t page[MS_OVERLAY_PAGE_SIZE];
        assert_status(ms_overlay_render(&o[i], page), 0);
        assert_memory_equal(im.ov_page[i], page, sizeof page);
        assert_overlay_equal(&im.ov[i], &o[i], false);
    }
    assert_string_equal(im.log, "REOOOOOOOZ");
    expect_totals(&im.totals, 0, 256, 0, 0, 0, 1, n);
    image_free(&im);
    th_buf_free(&s);
}

/* ================================================= the multi-round guest */

#define G_PAGES 4096u
#define G_ROUNDS 6u /* round 0, four live rounds, the stopped round */

typedef struct counting_sink {
    uint64_t bytes;
} counting_sink;

static int count_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    counting_sink *c = ctx;
    for (int i = 0; i < iovcnt; i++)
        c->bytes += iov[i].iov_len;
    return 0;
}

/* The guest writes page @p: random data, zeros, a fill pattern or text. */
static void guest_write(uint8_t *mem, uint32_t p, uint64_t *rng)
{
    uint8_t *q = mem + (size_t)p * PS;
    switch (th_rand_below(rng, 8)) {
    case 0:
    case 1:
        memset(q, 0, PS);
        break;
    case 2:
        fill_word(q, PS, 0xcccccccccccccccc);
        break;
    case 3:
        fill_word(q, PS, 0x00000000deadbeefull);
        break;
    case 4:
        th_make_page(q, PS, TH_PAGE_TEXT, rng);
        break;
    default:
        th_make_page(q, PS, TH_PAGE_RANDOM, rng);
    }
}

static void set_bit(uint64_t *bm, uint32_t p)
{
    bm[p / 64] |= 1ull << (p % 64);
}

/* A pre-copy migration of a running guest (section 6.4): round 0 sends
 * every page except those the guest hinted free; each later round sends the
 * pages a KVM-layout dirty bitmap reports, and more hints; the last round
 * runs with the guest stopped. The replayed memory must equal the guest's
 * final memory wherever the final state is not DISCARDED, and a page is
 * DISCARDED exactly when it was hinted free and not written since. */
static void test_multi_round_guest(void **state)
{
    (void)state;
    uint64_t rng = 2026, reused = 0, late_hints = 0;
    uint8_t *mem = calloc(G_PAGES, PS);
    bool *hinted = calloc(G_PAGES, sizeof *hinted); /* free, not reused since */
    uint64_t bm[G_PAGES / 64];
    uint64_t dirty_sets[G_ROUNDS][G_PAGES / 64];
    bool *hint_round = calloc(G_PAGES, sizeof *hint_round);
    assert_true(mem && hinted && hint_round);
    for (uint32_t p = 0; p < G_PAGES; p++)
        if (th_rand_below(&rng, 3))
            guest_write(mem, p, &rng); /* a third of memory never touched */
    for (uint32_t p = 0; p < G_PAGES; p++)
        hinted[p] = th_rand_below(&rng, 8) == 0;

    th_buf s = {0};
    counting_sink full = {0};
    ms_writer *w = new_writer(&s, MS_FEATURE_DISCARDED | MS_FEATURE_FILL);
    ms_writer_options fo;
    ms_writer_options_init(&fo);
    fo.features = MS_FEATURE_DISCARDED | MS_FEATURE_FILL;
    ms_writer *wf = ms_writer_new(&fo, count_write, &full); /* every page, every round */
    add_region(w, 0, true, 0, (uint64_t)G_PAGES * PS, PS);
    add_region(wf, 0, true, 0, (uint64_t)G_PAGES * PS, PS);

    /* round 0: a full pass that skips hinted pages */
    start_round(w, 0, MS_TRACKER_NONE, 0);
    start_round(wf, 0, MS_TRACKER_NONE, 0);
    for (uint32_t p = 0; p < G_PAGES;) {
        uint32_t q = p;
        while (q < G_PAGES && hinted[q] == hinted[p])
            q++;
        if (hinted[p])
            assert_status(ms_writer_discard(w, 0, p, q - p), 0);
        else
            assert_status(ms_writer_pages(w, 0, p, q - p, mem + (size_t)p * PS), 0);
        p = q;
    }
    assert_status(ms_writer_pages(wf, 0, 0, G_PAGES, mem), 0);
    memset(dirty_sets[0], 0xff, sizeof dirty_sets[0]);

    for (uint32_t round = 1; round < G_ROUNDS; round++) {
        bool stopped = round == G_ROUNDS - 1;
        /* the guest runs: it dirties fewer pages each round, reusing some
         * hinted ones; the stopped round only collects what is left */
        memset(bm, 0, sizeof bm);
        uint32_t writes = stopped ? 40 : 400 / round;
        for (uint32_t i = 0; i < writes; i++) {
            uint32_t p = (uint32_t)th_rand_below(&rng, G_PAGES);
            if (i % 5 == 0) /* reuse a hinted page when one is near */
                for (uint32_t k = 0; k < 64; k++)
                    if (hinted[(p + k) % G_PAGES]) {
                        p = (p + k) % G_PAGES;
                        break;
                    }
            reused += hinted[p];
            guest_write(mem, p, &rng);
            hinted[p] = false;
            set_bit(bm, p);
        }
        for (uint32_t i = 0; i < G_PAGES; i += 509) { /* deliberate reuse */
            uint32_t p = (i + round * 7) % G_PAGES;
            if (hinted[p]) {
                reused++;
                guest_write(mem, p, &rng);
                hinted[p] = false;
                set_bit(bm, p);
            }
        }
        /* new free page hints, after this round's writes */
        memset(hint_round, 0, G_PAGES * sizeof *hint_round);
        uint32_t nhints = stopped ? 0 : 60;
        for (uint32_t i = 0; i < nhints; i++) {
            uint32_t p = (uint32_t)th_rand_below(&rng, G_PAGES);
            late_hints += !hinted[p];
            hinted[p] = hint_round[p] = true;
        }
        uint64_t dirty = 0;
        for (uint32_t i = 0; i < G_PAGES / 64; i++)
            dirty += (uint64_t)__builtin_popcountll(bm[i]);
        memcpy(dirty_sets[round], bm, sizeof bm);

        ms_round rd = {.number = round,
                       .tracker = MS_TRACKER_BITMAP,
                       .granularity = PS,
                       .has_dirty = true,
                       .dirty = dirty,
                       .final = stopped};
        assert_status(ms_writer_round(w, &rd), 0);
        assert_status(ms_writer_round(wf, &rd), 0);
        int rc = ms_writer_dirty(w, 0, bm, PS, mem);
        if (rc)
            fail_msg("round %u: %s", round, ms_writer_errmsg(w));
        for (uint32_t p = 0; p < G_PAGES;) {
            uint32_t q = p;
            while (q < G_PAGES && hint_round[q] == hint_round[p])
                q++;
            if (hint_round[p])
                assert_status(ms_writer_discard(w, 0, p, q - p), 0);
            p = q;
        }
        assert_status(ms_writer_pages(wf, 0, 0, G_PAGES, mem), 0);
    }
    ms_totals t;
    finish(w, &s, &t);
    assert_status(ms_writer_finish(wf, NULL), 0);
    ms_writer_free(wf);
    assert_int_equal(t.rounds, G_ROUNDS);

    image im = {0};
    replay(&s, &im);
    const img_region *g = &im.reg[0];
    uint64_t discarded = 0;
    for (uint32_t p = 0; p < G_PAGES; p++) {
        if (g->state[p] == 0)
            fail_msg("page %u is missing at END", p);
        if (hinted[p]) {
            /* free and never reused: DISCARDED, not ZERO (section 6.2) */
            if (g->state[p] != MS_PAGE_DISCARDED)
                fail_msg("page %u was hinted free but is in state %u", p, g->state[p]);
            discarded++;
            continue;
        }
        if (g->state[p] == MS_PAGE_DISCARDED)
            fail_msg("page %u was written after its hint but is DISCARDED", p);
        if (memcmp(g->mem + (size_t)p * PS, mem + (size_t)p * PS, PS) != 0)
            fail_msg("page %u differs from the guest's final memory", p);
    }
    /* the scenario did what it claims: hinted pages were reused, and pages
     * hinted in later rounds stayed free */
    assert_true(reused >= 20);
    assert_true(late_hints >= 100);
    assert_true(discarded > late_hints / 2);

    /* each round sent exactly its dirty pages (and the hints after them) */
    assert_int_equal(im.nrounds, G_ROUNDS);
    static uint64_t sent_sets[G_ROUNDS][G_PAGES / 64];
    memset(sent_sets, 0, sizeof sent_sets);
    for (size_t i = 0; i < im.next; i++) {
        const seen_extent *x = &im.ext[i];
        assert_true(x->round >= 0 && x->round < (int64_t)G_ROUNDS);
        if (x->x.state == MS_PAGE_DISCARDED)
            continue;
        for (uint64_t p = x->x.first; p < x->x.first + x->x.count; p++) {
            if (!(dirty_sets[x->round][p / 64] >> (p % 64) & 1))
                fail_msg("round %lld sent clean page %llu", (long long)x->round,
                         (unsigned long long)p);
            sent_sets[x->round][p / 64] |= 1ull << (p % 64);
        }
    }
    for (uint32_t r = 1; r < G_ROUNDS; r++)
        for (uint32_t i = 0; i < G_PAGES / 64; i++)
            if (sent_sets[r][i] != dirty_sets[r][i])
                fail_msg("round %u: dirty pages of word %u were not all sent", r, i);
    for (uint32_t i = 0; i < G_ROUNDS; i++) {
        assert_int_equal(im.rounds[i].number, i);
        assert_int_equal(im.rounds[i].final, i == G_ROUNDS - 1);
    }
    uint64_t sent = 0;
    for (unsigned k = MS_PAGE_DATA; k <= MS_PAGE_FILL; k++)
        sent += t.pages[k];
    assert_true(t.pages[MS_PAGE_FILL] > 0 && t.pages[MS_PAGE_ZERO] > 0);
    assert_true(sent < 2 * G_PAGES);

    /* the live stream is much smaller than a full pass per round */
    if (s.len * 2 >= full.bytes)
        fail_msg("live stream %zu bytes, full passes %llu bytes", s.len,
                 (unsigned long long)full.bytes);
    image_free(&im);
    th_buf_free(&s);
    free(mem);
    free(hinted);
    free(hint_round);
}

/* ===================================================== reader refusals */

typedef struct chunk_src {
    const uint8_t *p;
    size_t len, pos;
} chunk_src;

static ssize_t chunk_read(void *ctx, void *buf, size_t len)
{
    chunk_src *c = ctx;
    size_t n = len < 5 ? len : 5;
    if (n > c->len - c->pos)
        n = c->len - c->pos;
    memcpy(buf, c->p + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

/* Reads @s from memory and through a callback in 5-byte steps; both must
 * fail with @status at record @record, at a byte in [lo, hi], with a
 * message holding @frag, and stay failed. */
static void expect_fail_opts(const th_buf *s, const ms_reader_options *o, int status,
                             int64_t record, uint64_t lo, uint64_t hi, const char *frag)
{
    for (int mode = 0; mode < 2; mode++) {
        chunk_src src = {.p = s->data, .len = s->len};
        ms_reader *r =
            mode ? ms_reader_new(o, chunk_read, &src) : ms_reader_new_memory(o, s->data, s->len);
        assert_non_null(r);
        size_t n;
        int rc = th_read_all(r, &n);
        const char *msg = ms_reader_errmsg(r);
        if (rc != status)
            fail_msg("status %d (%s), expected %s: %s", rc, ms_strerror(rc), ms_strerror(status),
                     msg);
        assert_contains(msg, frag);
        if (ms_reader_error_record(r) != record)
            fail_msg("error record %lld, expected %lld (%s)", (long long)ms_reader_error_record(r),
                     (long long)record, msg);
        uint64_t off = ms_reader_error_offset(r);
        if (off < lo || off > hi)
            fail_msg("error offset %llu, expected %llu..%llu (%s)", (unsigned long long)off,
                     (unsigned long long)lo, (unsigned long long)hi, msg);
        if (record >= 0)
            assert_int_equal(n, (size_t)record);
        const ms_record *rec;
        assert_status(ms_reader_next(r, &rec), status);
        assert_int_equal(ms_reader_error_offset(r), off);
        ms_reader_free(r);
    }
}

static void expect_fail(const th_buf *s, int status, int64_t record, uint64_t lo, uint64_t hi,
                        const char *frag)
{
    expect_fail_opts(s, NULL, status, record, lo, hi, frag);
}

/* Reads @s to END; returns the number of records before END. */
static size_t expect_ok_opts(const th_buf *s, const ms_reader_options *o)
{
    ms_reader *r = ms_reader_new_memory(o, s->data, s->len);
    size_t n;
    int rc = th_read_all(r, &n);
    if (rc)
        fail_msg("refused: %s", ms_reader_errmsg(r));
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    return n;
}

static size_t expect_ok(const th_buf *s)
{
    return expect_ok_opts(s, NULL);
}

/* A stream of just a preamble with @features and END, to insert into. */
static void base_stream(th_stream *ts, uint64_t features)
{
    th_buf b = {0};
    ms_writer *w = new_writer(&b, features);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream_parse(ts, b.data, b.len);
    th_buf_free(&b);
}

/* Inserts a record before END with the flags writers use (section 4.3);
 * returns its index. */
static size_t push(th_stream *ts, uint16_t type, const th_buf *p)
{
    uint16_t flags = type == MS_REC_ROUND || type == MS_REC_INFO ? 0 : MS_RECORD_MUST_UNDERSTAND;
    size_t at = ts->n - 1;
    th_stream_insert(ts, at, type, flags, p->data, p->len);
    return at;
}

static size_t push_regions(th_stream *ts, uint32_t id, bool has_gpa, uint64_t gpa, uint64_t size)
{
    th_buf b = {0};
    th_cbor_head(&b, 4, 1);
    th_cbor_region(&b, id, id ? "vram" : "ram", has_gpa, gpa, size, PS);
    size_t at = push(ts, MS_REC_REGIONS, &b);
    th_buf_free(&b);
    return at;
}

static size_t push_round(th_stream *ts, uint64_t number, uint32_t tracker, uint32_t gran)
{
    th_buf b = {0};
    ms_round r = {.number = number, .tracker = tracker, .granularity = gran};
    th_cbor_round(&b, &r);
    size_t at = push(ts, MS_REC_ROUND, &b);
    th_buf_free(&b);
    return at;
}

/* A PAGES record of region 0 with one extent without data. */
static size_t push_extent(th_stream *ts, uint64_t first, uint32_t count, uint8_t state,
                          uint64_t arg)
{
    th_buf b = {0};
    th_pages_head(&b, 0, 1, MS_ENCODING_RAW);
    th_pages_extent_arg(&b, first, count, state, arg);
    size_t at = push(ts, MS_REC_PAGES, &b);
    th_buf_free(&b);
    return at;
}

static uint64_t payload_at(const th_stream *ts, size_t i)
{
    return th_stream_offset(ts, i) + 16;
}

static void build(th_stream *ts, th_buf *out)
{
    th_stream_fix_end(ts);
    th_stream_build(ts, out);
}

/* ---- page states ---- */

/* One PAGES record (region 0, 16 pages) with one extent, in a stream whose
 * preamble sets @features: refused at @field of the extent. */
static void expect_extent_fault(uint64_t features, uint8_t state, uint32_t count, uint64_t arg,
                                unsigned field, const char *frag)
{
    th_stream ts;
    th_buf b = {0};
    base_stream(&ts, features);
    push_regions(&ts, 0, true, 0, 16 * PS);
    size_t at = push_extent(&ts, 0, count, state, arg);
    build(&ts, &b);
    uint64_t x = payload_at(&ts, at) + 16 + field;
    expect_fail(&b, MS_ECORRUPT, (int64_t)at, x, x, frag);
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void expect_extent_ok(uint64_t features, uint8_t state, uint32_t count, uint64_t arg)
{
    th_stream ts;
    th_buf b = {0};
    base_stream(&ts, features);
    push_regions(&ts, 0, true, 0, 16 * PS);
    push_extent(&ts, 0, count, state, arg);
    build(&ts, &b);
    assert_int_equal(expect_ok(&b), 2);
    th_buf_free(&b);
    th_stream_free(&ts);
}

static void test_refuse_page_states(void **state)
{
    (void)state;
    /* a state without its feature bit, even when every other bit is set */
    expect_extent_fault(ALL_FEATURES & ~MS_FEATURE_DISCARDED, MS_PAGE_DISCARDED, 1, 0, 12,
                        "feature bit 0");
    expect_extent_fault(ALL_FEATURES & ~MS_FEATURE_FILL, MS_PAGE_FILL, 1, 0xcc, 12,
                        "feature bit 1");
    expect_extent_fault(ALL_FEATURES & ~MS_FEATURE_IN_PLACE, MS_PAGE_IN_PLACE, 1, 0, 12,
                        "feature bit 2");
    expect_extent_fault(0, MS_PAGE_FILL, 1, 0xcc, 12, "FILL");
    /* the same extents with their bit set are read */
    expect_extent_ok(MS_FEATURE_DISCARDED, MS_PAGE_DISCARDED, 16, 0);
    expect_extent_ok(MS_FEATURE_FILL, MS_PAGE_FILL, 16, 0xcc);
    expect_extent_ok(MS_FEATURE_IN_PLACE, MS_PAGE_IN_PLACE, 16, 0);
    /* arguments */
    expect_extent_fault(ALL_FEATURES, MS_PAGE_FILL, 1, 0, 16, "word 0");
    expect_extent_fault(ALL_FEATURES, MS_PAGE_DISCARDED, 1, 1, 16, "argument must be zero");
    expect_extent_fault(ALL_FEATURES, MS_PAGE_DISCARDED, 2, 1ull << 63, 16, "argument");
    expect_extent_fault(ALL_FEATURES, MS_PAGE_IN_PLACE, 1, 4097, 16, "aligned");
    expect_extent_fault(ALL_FEATURES, MS_PAGE_IN_PLACE, 1, 2048, 16, "aligned");
    /* arg + count * page_size must not exceed 2^64 (section 6.2) */
    expect_extent_fault(ALL_FEATURES, MS_PAGE_IN_PLACE, 2, 0 - (uint64_t)PS, 16, "wraps");
    expect_extent_fault(ALL_FEATURES, MS_PAGE_IN_PLACE, 16, 0 - 15 * (uint64_t)PS, 16, "wraps");
    expect_extent_ok(ALL_FEATURES, MS_PAGE_IN_PLACE, 2, 0 - 2 * (uint64_t)PS);
    expect_extent_ok(ALL_FEATURES, MS_PAGE_IN_PLACE, 16, 0 - 16 * (uint64_t)PS);
    /* states past IN_PLACE are reserved (section 11.2) */
    expect_extent_fault(ALL_FEATURES, 6, 1, 0, 12, "unknown page state 6");
    expect_extent_fault(ALL_FEATURES, 255, 1, 0, 12, "unknown page state 255");
}

/* ---- rounds ---- */

static void test_refuse_round_order(void **state)
{
    (void)state;
    th_stream ts;
    th_buf b = {0};
    /* PAGES before the first ROUND */
    base_stream(&ts, 0);
    push_regions(&ts, 0, true, 0, 16 * PS);
    push_extent(&ts, 0, 1, MS_PAGE_ZERO, 0);
    size_t at = push_round(&ts, 0, 0, 0);
    build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, (int64_t)at, payload_at(&ts, at), payload_at(&ts, at),
                "outside any round");
    th_stream_free(&ts);

    /* REGIONS (not PAGES) before the first ROUND is fine, as in vector 12.5's
     * mirror image; then numbers must increase */
    for (int k = 0; k < 3; k++) {
        static const uint64_t second[] = {1, 0, 7};
        base_stream(&ts, 0);
        push_regions(&ts, 0, true, 0, 16 * PS);
        push_round(&ts, 1, 0, 0);
        push_extent(&ts, 0, 1, MS_PAGE_ZERO, 0);
        at = push_round(&ts, second[k], MS_TRACKER_BITMAP, PS);
        push_extent(&ts, 0, 1, MS_PAGE_ZERO, 0);
        build(&ts, &b);
        if (k < 2)
            expect_fail(&b, MS_ECORRUPT, (int64_t)at, payload_at(&ts, at), payload_at(&ts, at),
                        "must increase");
        else
            assert_int_equal(expect_ok(&b), 5);
        th_stream_free(&ts);
    }
    th_buf_free(&b);
}

/* A ROUND payload given as CBOR-building steps, after ROUND 0: checked alone. */
static uint64_t round_payload_stream(const th_buf *p, th_buf *out, size_t *at)
{
    th_stream ts;
    base_stream(&ts, 0);
    push_round(&ts, 0, 0, 0);
    *at = push(&ts, MS_REC_ROUND, p);
    build(&ts, out);
    uint64_t pat = payload_at(&ts, *at);
    th_stream_free(&ts);
    return pat;
}

/* {0: number 1, 1: tracker, [2: gran]} plus, when @extra_key, key 7 holding
 * a nested item that must be skipped whole. */
static void round_map(th_buf *p, uint64_t tracker, bool has_gran, uint64_t gran, bool extra_key)
{
    p->len = 0;
    th_cbor_head(p, 5, 2 + has_gran + extra_key);
    th_cbor_uint(p, 0);
    th_cbor_uint(p, 1);
    th_cbor_uint(p, 1);
    th_cbor_uint(p, tracker);
    if (has_gran) {
        th_cbor_uint(p, 2);
        th_cbor_uint(p, gran);
    }
    if (extra_key) {
        th_cbor_uint(p, 7);
        th_cbor_head(p, 4, 2); /* [h'00ff', {0: -3}] */
        th_cbor_bytes(p, "\x00\xff", 2);
        th_cbor_head(p, 5, 1);
        th_cbor_uint(p, 0);
        th_cbor_int(p, -3);
    }
}

static void expect_round_fault(const th_buf *p, const char *frag)
{
    th_buf b = {0};
    size_t at;
    uint64_t lo = round_payload_stream(p, &b, &at);
    assert_int_equal(at, 1);
    assert_int_equal(lo, 112 + 16 + 5 + 16); /* after ROUND 0's 5-byte payload */
    expect_fail(&b, MS_ECORRUPT, (int64_t)at, lo, lo + p->len, frag);
    th_buf_free(&b);
}

static const ms_round *expect_round_ok(const th_buf *p, ms_round *out)
{
    th_buf b = {0};
    size_t at;
    round_payload_stream(p, &b, &at);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    int rc = ms_reader_next(r, &rec);
    if (rc != 1)
        fail_msg("refused: %s", ms_reader_errmsg(r));
    assert_int_equal(rec->type, MS_REC_ROUND);
    *out = rec->round;
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&b);
    return out;
}

static void test_refuse_round_fields(void **state)
{
    (void)state;
    th_buf p = {0};
    ms_round got;
    round_map(&p, MS_TRACKER_BITMAP, false, 0, false); /* no granularity */
    expect_round_fault(&p, "granularity");
    static const uint64_t bad[] = {0,        2048,       3 * PS,    4096 + 1, (1u << 30) + 4096,
                                   1u << 31, 1ull << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        round_map(&p, MS_TRACKER_PML, true, bad[i], false);
        expect_round_fault(&p, bad[i] > UINT32_MAX ? "out of range" : "granularity");
    }
    round_map(&p, MS_TRACKER_NONE, true, PS, false); /* tracker 0 with granularity */
    expect_round_fault(&p, "granularity");
    /* the limits themselves are fine */
    round_map(&p, MS_TRACKER_RING, true, PS, false);
    assert_int_equal(expect_round_ok(&p, &got)->granularity, PS);
    round_map(&p, MS_TRACKER_RING, true, 1u << 30, false);
    assert_int_equal(expect_round_ok(&p, &got)->granularity, 1u << 30);
    /* a tracker this document does not name is accepted (section 6.4) */
    round_map(&p, 9, true, 8192, false);
    expect_round_ok(&p, &got);
    assert_int_equal(got.tracker, 9);
    assert_int_equal(got.granularity, 8192);
    /* unknown key 7 is skipped whole, the rest decoded */
    round_map(&p, MS_TRACKER_BITMAP, true, PS, true);
    expect_round_ok(&p, &got);
    assert_int_equal(got.number, 1);
    assert_int_equal(got.tracker, MS_TRACKER_BITMAP);
    assert_false(got.has_dirty);
    assert_false(got.final);
    /* number missing; keys out of order */
    p.len = 0;
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 0);
    expect_round_fault(&p, "required");
    th_buf_free(&p);
}

/* Reads a stream of ROUND 0 then a ROUND with payload @p; returns the
 * reader's status with the message in @msg, having freed everything, so a
 * failing assertion after it leaks nothing. */
static int round_status(const th_buf *p, char *msg, size_t msg_size)
{
    th_buf b = {0};
    size_t at;
    round_payload_stream(p, &b, &at);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    int rc = th_read_all(r, NULL);
    snprintf(msg, msg_size, "%s", ms_reader_errmsg(r));
    ms_reader_free(r);
    th_buf_free(&b);
    return rc;
}

/* FORMAT.md section 6.4: granularity is absent when tracker is 0; a ROUND
 * {0: 1, 1: 0, 2: 0} carries one anyway (of 0) and is refused. */
static void test_round_zero_granularity_without_tracker(void **state)
{
    (void)state;
    th_buf p = {0};
    char msg[600];
    round_map(&p, MS_TRACKER_NONE, true, 0, false);
    int rc = round_status(&p, msg, sizeof msg);
    th_buf_free(&p);
    assert_status(rc, MS_ECORRUPT);
    assert_contains(msg, "granularity");
}

/* FORMAT.md section 6.4 bounds tracker to 32 bits; values it does not name
 * below that are accepted (the round trip of tracker 9 above). */
static void test_round_tracker_beyond_32_bits(void **state)
{
    (void)state;
    th_buf p = {0};
    char msg[600];
    round_map(&p, 1ull << 32, true, PS, false);
    int rc = round_status(&p, msg, sizeof msg);
    th_buf_free(&p);
    assert_status(rc, MS_ECORRUPT);
    assert_contains(msg, "tracker");
}

/* ---- overlays ---- */

/* preamble(@features) + REGIONS {0 gpa 1 MiB, 1 MiB} + REGIONS {1, no gpa}
 * + one OVERLAY per payload in @p[0..n) + END. */
static void overlay_stream(uint64_t features, const th_buf *p, size_t n, th_buf *out, size_t *first,
                           uint64_t *first_payload)
{
    th_stream ts;
    base_stream(&ts, features);
    push_regions(&ts, 0, true, MIB, MIB);
    push_regions(&ts, 1, false, 0, MIB);
    for (size_t i = 0; i < n; i++) {
        size_t at = push(&ts, MS_REC_OVERLAY, &p[i]);
        if (i == 0) {
            *first = at;
            *first_payload = payload_at(&ts, at);
        }
    }
    build(&ts, out);
    th_stream_free(&ts);
}

/* An OVERLAY payload holding the @n overlays of @o. */
static void ov_payload(th_buf *p, const ms_overlay *o, size_t n)
{
    p->len = 0;
    th_cbor_head(p, 4, n);
    for (size_t i = 0; i < n; i++)
        th_cbor_overlay(p, &o[i]);
}

static ms_overlay hc(uint64_t gfn, uint32_t vendor)
{
    ms_overlay o;
    memset(&o, 0, sizeof o);
    o.gfn = gfn;
    o.kind = MS_OVERLAY_HYPERCALL;
    o.hypercall.vendor = vendor;
    return o;
}

static ms_overlay tsc(uint64_t gfn, uint64_t hz)
{
    ms_overlay o;
    memset(&o, 0, sizeof o);
    o.gfn = gfn;
    o.kind = MS_OVERLAY_REFERENCE_TSC;
    o.tsc.has_frequency = true;
    o.tsc.frequency = hz;
    return o;
}

/* The last OVERLAY record of the stream built from @p[0..n) is refused;
 * the offset lies in [start + lo, start + hi] of its payload. */
static void expect_ov_fault(const th_buf *p, size_t n, int status, uint64_t lo, uint64_t hi,
                            const char *frag)
{
    th_buf b = {0};
    size_t first;
    uint64_t pat;
    overlay_stream(ALL_FEATURES, p, n, &b, &first, &pat);
    uint64_t last_pat = pat;
    for (size_t i = 0; i + 1 < n; i++)
        last_pat += p[i].len + 16;
    expect_fail(&b, status, (int64_t)(first + n - 1), last_pat + lo, last_pat + hi, frag);
    th_buf_free(&b);
}

static void expect_ov_ok(const th_buf *p, size_t n)
{
    th_buf b = {0};
    size_t first;
    uint64_t pat;
    overlay_stream(ALL_FEATURES, p, n, &b, &first, &pat);
    assert_int_equal(expect_ok(&b), 2 + n);
    th_buf_free(&b);
}

static void test_refuse_overlay_feature_and_place(void **state)
{
    (void)state;
    th_buf p[3] = {{0}};
    ms_overlay o[3];
    th_buf b = {0};
    size_t first;
    uint64_t pat;
    /* OVERLAY without the OVERLAYS bit, whatever else is set */
    o[0] = hc(0x100, 1);
    ov_payload(&p[0], o, 1);
    overlay_stream(ALL_FEATURES & ~MS_FEATURE_OVERLAYS, p, 1, &b, &first, &pat);
    expect_fail(&b, MS_ECORRUPT, (int64_t)first, pat - 16, pat + p[0].len, "OVERLAYS");
    expect_ov_ok(p, 1);

    /* frames inside region 0 are 0x100..0x1ff; region 1 has no gpa */
    static const uint64_t outside[] = {0, 0xff, 0x200, 0x1000, MS_MAX_GFN};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        o[0] = hc(outside[i], 2);
        ov_payload(&p[0], o, 1);
        expect_ov_fault(p, 1, MS_ECORRUPT, 0, 0, "outside every region");
    }
    o[0] = hc(0x1ff, 2);
    ov_payload(&p[0], o, 1);
    expect_ov_ok(p, 1);
    /* the second overlay of a record is outside */
    o[0] = hc(0x100, 2);
    o[1] = tsc(0x300, 3000000000u);
    ov_payload(&p[0], o, 2);
    expect_ov_fault(p, 1, MS_ECORRUPT, 0, 0, "overlay 1");

    /* only a region without gpa: nothing can hold an overlay */
    th_stream ts;
    base_stream(&ts, ALL_FEATURES);
    push_regions(&ts, 1, false, 0, MIB);
    o[0] = hc(0, 0);
    ov_payload(&p[0], o, 1);
    size_t at = push(&ts, MS_REC_OVERLAY, &p[0]);
    build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, (int64_t)at, payload_at(&ts, at), payload_at(&ts, at),
                "outside every region");
    th_stream_free(&ts);
    /* an overlay before its region is declared */
    base_stream(&ts, ALL_FEATURES);
    o[0] = hc(0x100, 0);
    ov_payload(&p[0], o, 1);
    at = push(&ts, MS_REC_OVERLAY, &p[0]);
    push_regions(&ts, 0, true, MIB, MIB);
    build(&ts, &b);
    expect_fail(&b, MS_ECORRUPT, (int64_t)at, payload_at(&ts, at), payload_at(&ts, at),
                "outside every region");
    th_stream_free(&ts);
    th_buf_free(&b);
    for (int i = 0; i < 3; i++)
        th_buf_free(&p[i]);
}

static void test_refuse_overlay_duplicates(void **state)
{
    (void)state;
    th_buf p[3] = {{0}};
    ms_overlay o[3];
    /* two kinds at one frame: fine, in one record or two */
    o[0] = hc(0x100, 1);
    o[1] = tsc(0x100, 2500000000u);
    ov_payload(&p[0], o, 2);
    expect_ov_ok(p, 1);
    ov_payload(&p[0], o, 1);
    ov_payload(&p[1], o + 1, 1);
    expect_ov_ok(p, 2);
    /* the same kind twice: within one record ... */
    o[2] = hc(0x100, 2);
    ov_payload(&p[0], o, 3);
    expect_ov_fault(p, 1, MS_ECORRUPT, 0, 0, "already has a HYPERCALL");
    /* ... and across records, even with other parameters */
    ov_payload(&p[0], o, 2);
    ov_payload(&p[1], o + 2, 1);
    expect_ov_fault(p, 2, MS_ECORRUPT, 0, 0, "already has a HYPERCALL");
    o[2] = tsc(0x100, 3000000000u);
    ov_payload(&p[1], o + 2, 1);
    expect_ov_fault(p, 2, MS_ECORRUPT, 0, 0, "already has a REFERENCE_TSC");
    for (int i = 0; i < 3; i++)
        th_buf_free(&p[i]);
}

/* Builds [{0: gfn, 1: kind, 2: params}] where params is written by the
 * caller after this returns the offset at which params start. */
static size_t ov_head(th_buf *p, uint64_t gfn, uint64_t kind)
{
    p->len = 0;
    th_cbor_head(p, 4, 1);
    th_cbor_head(p, 5, 3);
    th_cbor_uint(p, 0);
    th_cbor_uint(p, gfn);
    th_cbor_uint(p, 1);
    th_cbor_uint(p, kind);
    th_cbor_uint(p, 2);
    return p->len;
}

static void test_refuse_overlay_kinds_and_params(void **state)
{
    (void)state;
    th_buf p = {0};
    size_t at;
    /* unknown kinds: 9 and 0 */
    static const uint64_t kinds[] = {9, 0, 5, 1ull << 32};
    for (size_t i = 0; i < 4; i++) {
        at = ov_head(&p, 0x100, kinds[i]);
        th_cbor_head(&p, 5, 1);
        th_cbor_uint(&p, 0);
        th_cbor_uint(&p, 0);
        char frag[40];
        snprintf(frag, sizeof frag, "unknown kind %llu", (unsigned long long)kinds[i]);
        expect_ov_fault(&p, 1, MS_ECORRUPT, 2, at, frag); /* at the kind value */
    }
    /* params missing: map(2) without key 2 */
    p.len = 0;
    th_cbor_head(&p, 4, 1);
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 0x100);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, MS_OVERLAY_HYPERCALL);
    expect_ov_fault(&p, 1, MS_ECORRUPT, 1, 1, "lacks a required key");
    /* an OVERLAY holds one or more overlays */
    p.len = 0;
    th_cbor_head(&p, 4, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, 0, 0, "no overlay");
    /* unknown overlay-map key 3 is ignored (section 7.2) */
    p.len = 0;
    th_cbor_head(&p, 4, 1);
    th_cbor_head(&p, 5, 4);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 0x100);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, MS_OVERLAY_HYPERCALL);
    th_cbor_uint(&p, 2);
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 2);
    th_cbor_uint(&p, 3);
    th_cbor_text(&p, "later");
    expect_ov_ok(&p, 1);

    /* HYPERCALL: vendor missing, vendor 3, unknown key 1 */
    at = ov_head(&p, 0x100, MS_OVERLAY_HYPERCALL);
    th_cbor_head(&p, 5, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "vendor");
    at = ov_head(&p, 0x100, MS_OVERLAY_HYPERCALL);
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 3);
    expect_ov_fault(&p, 1, MS_ECORRUPT, 1, 1, "vendor");
    at = ov_head(&p, 0x100, MS_OVERLAY_HYPERCALL);
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, p.len, "unknown parameter key 1");

    /* REFERENCE_TSC: frequency at or below 10 MHz; both forms; neither */
    static const uint64_t slow[] = {10000000, 9999999, 1, 0};
    for (size_t i = 0; i < 4; i++) {
        at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC);
        th_cbor_head(&p, 5, 1);
        th_cbor_uint(&p, 3);
        th_cbor_uint(&p, slow[i]);
        expect_ov_fault(&p, 1, MS_ECORRUPT, 1, 1, "10 MHz");
    }
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC);
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, 10000001);
    expect_ov_ok(&p, 1);
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* scale and frequency */
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 12345);
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, 2000000000);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "either frequency");
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* all four */
    th_cbor_head(&p, 5, 4);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 12345);
    th_cbor_uint(&p, 2);
    th_cbor_int(&p, -1);
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, 2000000000);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "either frequency");
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* only an offset */
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 2);
    th_cbor_int(&p, -7);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "either frequency");
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* sequence without scale */
    th_cbor_head(&p, 5, 1);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 1);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "either frequency");
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* sequence beyond 32 bits */
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 1ull << 32);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 1);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, p.len, "sequence");
    at = ov_head(&p, 0x100, MS_OVERLAY_REFERENCE_TSC); /* unknown key 4 */
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, 2000000000);
    th_cbor_uint(&p, 4);
    th_cbor_uint(&p, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, p.len, "unknown parameter key 4");
    th_buf_free(&p);
}

/* SynIC params {0: vp, 1: {slot: bytes}} with one slot of @len bytes. */
static size_t synic_one_slot(th_buf *p, uint32_t kind, uint64_t slot, size_t len, uint8_t b4)
{
    uint8_t bytes[300];
    memset(bytes, 0x5a, sizeof bytes);
    bytes[4] = b4;
    ov_head(p, 0x100, kind);
    th_cbor_head(p, 5, 2);
    th_cbor_uint(p, 0);
    th_cbor_uint(p, 2);
    th_cbor_uint(p, 1);
    th_cbor_head(p, 5, 1);
    th_cbor_uint(p, slot);
    size_t slot_at = p->len;
    th_cbor_bytes(p, bytes, len);
    return slot_at;
}

static void test_refuse_overlay_synic(void **state)
{
    (void)state;
    th_buf p = {0};
    size_t at;
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_MESSAGE, 15, 256, 240);
    expect_ov_ok(&p, 1);
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_MESSAGE, 16, 256, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "SINT 15");
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_EVENT_FLAGS, 255, 256, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "SINT 15");
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_MESSAGE, 0, 255, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "not 256");
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_EVENT_FLAGS, 3, 257, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "not 256");
    /* the payload-size rule is the message page's alone */
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_MESSAGE, 2, 256, 241);
    expect_ov_fault(&p, 1, MS_ECORRUPT, 1, 1, "240");
    at = synic_one_slot(&p, MS_OVERLAY_SYNIC_EVENT_FLAGS, 2, 256, 241);
    expect_ov_ok(&p, 1);
    /* vp missing; unknown key 2 */
    at = ov_head(&p, 0x100, MS_OVERLAY_SYNIC_EVENT_FLAGS);
    th_cbor_head(&p, 5, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, at, "vp");
    at = ov_head(&p, 0x100, MS_OVERLAY_SYNIC_MESSAGE);
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 2);
    th_cbor_uint(&p, 0);
    expect_ov_fault(&p, 1, MS_ECORRUPT, at, p.len, "unknown parameter key 2");
    th_buf_free(&p);
}

/* gfn below 2^52 (section 7.2): checked on its own, before regions. */
static void test_refuse_overlay_gfn_bits(void **state)
{
    (void)state;
    th_buf p = {0}, b = {0};
    ms_overlay o;
    static const uint64_t gfns[] = {MS_MAX_GFN + 1, 1ull << 60, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        o = hc(gfns[i], 1);
        ov_payload(&p, &o, 1);
        expect_ov_fault(&p, 1, MS_ECORRUPT, 1, 1, "52 bits");
    }
    /* the top frame, in a region at the top of the address space */
    th_stream ts;
    base_stream(&ts, ALL_FEATURES);
    push_regions(&ts, 0, true, 0 - (uint64_t)MIB, MIB);
    o = hc(MS_MAX_GFN, 1);
    ov_payload(&p, &o, 1);
    push(&ts, MS_REC_OVERLAY, &p);
    build(&ts, &b);
    assert_int_equal(expect_ok(&b), 2);
    th_stream_free(&ts);
    th_buf_free(&p);
    th_buf_free(&b);
}

static void test_refuse_overlay_limit(void **state)
{
    (void)state;
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    assert_int_equal(ro.max_overlays, 1024);
    ro.max_overlays = 2;
    th_buf p[3] = {{0}}, b = {0};
    ms_overlay o[3] = {hc(0x100, 1), hc(0x101, 1), hc(0x102, 1)};
    size_t first;
    uint64_t pat;
    /* three in one record */
    ov_payload(&p[0], o, 3);
    overlay_stream(ALL_FEATURES, p, 1, &b, &first, &pat);
    expect_fail_opts(&b, &ro, MS_ELIMIT, (int64_t)first, pat, pat, "limit");
    assert_int_equal(expect_ok(&b), 3); /* the default limit reads it */
    /* one per record: the third record is refused */
    for (int i = 0; i < 3; i++)
        ov_payload(&p[i], o + i, 1);
    overlay_stream(ALL_FEATURES, p, 3, &b, &first, &pat);
    uint64_t third = pat + 2 * (p[0].len + 16);
    expect_fail_opts(&b, &ro, MS_ELIMIT, (int64_t)first + 2, third, third, "limit");
    /* two are within it */
    overlay_stream(ALL_FEATURES, p, 2, &b, &first, &pat);
    assert_int_equal(expect_ok_opts(&b, &ro), 4);
    th_buf_free(&b);
    for (int i = 0; i < 3; i++)
        th_buf_free(&p[i]);
}

/* ---- END and the preamble ---- */

static void test_refuse_end_totals(void **state)
{
    (void)state;
    for (int what = 0; what < 6; what++) {
        th_stream ts;
        th_buf b = {0}, end = {0}, p = {0};
        base_stream(&ts, ALL_FEATURES);
        push_round(&ts, 0, 0, 0);
        push_regions(&ts, 0, true, MIB, MIB);
        push_round(&ts, 1, MS_TRACKER_BITMAP, PS);
        ms_overlay o[2] = {hc(0x100, 1), tsc(0x100, 2500000000u)};
        ov_payload(&p, o, 2);
        push(&ts, MS_REC_OVERLAY, &p);
        build(&ts, &b);
        assert_int_equal(expect_ok(&b), 4);
        size_t ei = ts.n - 1;
        ms_totals t;
        th_stream_totals(&ts, ei, &t);
        assert_int_equal(t.rounds, 2);
        assert_int_equal(t.overlays, 2);
        const char *frag = NULL;
        /* clang-format off */
        switch (what) {
        case 0: t.rounds++; frag = "rounds"; break;
        case 1: t.rounds--; frag = "rounds"; break;
        case 2: t.rounds = 0; frag = "rounds"; break; /* key 4 omitted */
        case 3: t.overlays++; frag = "overlays"; break;
        case 4: t.overlays = 1; frag = "overlays"; break;
        case 5: t.overlays = 0; frag = "overlays"; break; /* key 5 omitted */
        }
        /* clang-format on */
        th_cbor_end(&end, &t);
        th_stream_set(&ts, ei, end.data, end.len);
        th_stream_build(&ts, &b);
        uint64_t off = payload_at(&ts, ei);
        expect_fail(&b, MS_ECORRUPT, (int64_t)ei, off, off, frag);
        th_buf_free(&end);
        th_buf_free(&b);
        th_buf_free(&p);
        th_stream_free(&ts);
    }
}

/* Bits 4..63 are reserved for later versions: still refused up front. */
static void test_refuse_unknown_feature(void **state)
{
    (void)state;
    static const uint64_t bits[] = {1u << 5, 1u << 6, 1ull << 63};
    for (size_t i = 0; i < 3; i++) {
        th_stream ts;
        th_buf b = {0};
        base_stream(&ts, ALL_FEATURES);
        th_put64(ts.pre.data + 16, ALL_FEATURES | bits[i]);
        th_stream_fix_preamble(&ts);
        build(&ts, &b);
        char frag[16];
        snprintf(frag, sizeof frag, "bit %d", __builtin_ctzll(bits[i]));
        expect_fail(&b, MS_EFEATURE, -1, 16, 23, frag);
        th_buf_free(&b);
        th_stream_free(&ts);
    }
    uint64_t req = 0;
    ms_known_features(&req, NULL);
    assert_int_equal(req, ALL_FEATURES | MS_FEATURE_PARTS);
}

/* ====================================================== writer refusals */

typedef struct wcase {
    const char *name;
    uint64_t features;
    bool round0; /* start round 0 before the call */
    int (*call)(ms_writer *w);
    const char *frag;
} wcase;

static int w_discard(ms_writer *w)
{
    return ms_writer_discard(w, 0, 0, 1);
}
static int w_fill(ms_writer *w)
{
    return ms_writer_fill_pages(w, 0, 0, 1, 0xcc);
}
static int w_in_place(ms_writer *w)
{
    return ms_writer_in_place(w, 0, 0, 1, 0);
}
static int w_in_place_misaligned(ms_writer *w)
{
    return ms_writer_in_place(w, 1, 0, 1, PS);
}
static int w_in_place_wraps(ms_writer *w)
{
    return ms_writer_in_place(w, 0, 0, 2, 0 - (uint64_t)PS);
}
static int w_discard_outside(ms_writer *w)
{
    return ms_writer_discard(w, 0, 250, 7);
}
static int w_overlay(ms_writer *w)
{
    ms_overlay o = hc(0x100, 1);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_below(ms_writer *w)
{
    ms_overlay o = hc(0xff, 1);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_past(ms_writer *w)
{
    ms_overlay o = hc(0x200, 1);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_dup(ms_writer *w)
{
    ms_overlay o = tsc(0x100, 2000000000), o2 = hc(0x100, 0);
    int rc = ms_writer_overlay(w, &o);
    rc = rc ? rc : ms_writer_overlay(w, &o2); /* another kind: fine */
    o.tsc.frequency = 3000000000u;
    return rc ? rc : ms_writer_overlay(w, &o);
}
static int w_overlay_vendor(ms_writer *w)
{
    ms_overlay o = hc(0x100, 3);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_slow_tsc(ms_writer *w)
{
    ms_overlay o = tsc(0x100, 10000000);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_kind(ms_writer *w)
{
    ms_overlay o = hc(0x100, 0);
    o.kind = 9;
    return ms_writer_overlay(w, &o);
}
static int w_overlay_gfn(ms_writer *w)
{
    ms_overlay o = hc(MS_MAX_GFN + 1, 0);
    return ms_writer_overlay(w, &o);
}
static int w_overlay_payload(ms_writer *w)
{
    uint8_t slot[MS_SYNIC_SLOT_SIZE] = {0};
    slot[4] = 241;
    ms_overlay o = hc(0x100, 0);
    o.kind = MS_OVERLAY_SYNIC_MESSAGE;
    o.synic.slot_mask = 1u << 9;
    o.synic.slot[9] = slot;
    return ms_writer_overlay(w, &o);
}
static int w_overlay_no_slot(ms_writer *w)
{
    ms_overlay o = hc(0x100, 0);
    o.kind = MS_OVERLAY_SYNIC_EVENT_FLAGS;
    o.synic.slot_mask = 1u << 2; /* marked present, no bytes */
    return ms_writer_overlay(w, &o);
}
static int w_overlay_null(ms_writer *w)
{
    return ms_writer_overlay(w, NULL);
}
static int w_round_equal(ms_writer *w)
{
    ms_round r = {.number = 0};
    return ms_writer_round(w, &r);
}
static int w_round_smaller(ms_writer *w)
{
    ms_round r = {.number = 4};
    int rc = ms_writer_round(w, &r);
    r.number = 3;
    return rc ? rc : ms_writer_round(w, &r);
}
static int w_round_gran(ms_writer *w)
{
    ms_round r = {.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = 2048};
    return ms_writer_round(w, &r);
}
static int w_round_no_gran(ms_writer *w)
{
    ms_round r = {.number = 1, .tracker = MS_TRACKER_RING};
    return ms_writer_round(w, &r);
}
static int w_round_big_gran(ms_writer *w)
{
    ms_round r = {.number = 1, .tracker = MS_TRACKER_PML, .granularity = 1u << 31};
    return ms_writer_round(w, &r);
}
static int w_round_none_gran(ms_writer *w)
{
    ms_round r = {.number = 1, .tracker = MS_TRACKER_NONE, .granularity = PS};
    return ms_writer_round(w, &r);
}
static int w_round_null(ms_writer *w)
{
    return ms_writer_round(w, NULL);
}
static int w_pages_then_round(ms_writer *w)
{
    int rc = ms_writer_zero_pages(w, 0, 0, 4);
    ms_round r = {.number = 0};
    return rc ? rc : ms_writer_round(w, &r);
}
static int w_flushed_pages_then_round(ms_writer *w)
{
    static const uint8_t page[PS] = {1};
    int rc = ms_writer_pages(w, 0, 0, 1, page);
    rc = rc ? rc : ms_writer_flush(w);
    ms_round r = {.number = 0};
    return rc ? rc : ms_writer_round(w, &r);
}

static void test_writer_refusals(void **state)
{
    (void)state;
    const uint64_t all = ALL_FEATURES;
    static const wcase cases[] = {
        {"discard without feature", ALL_FEATURES & ~MS_FEATURE_DISCARDED, true, w_discard,
         "feature bit 0 (DISCARDED)"},
        {"fill without feature", ALL_FEATURES & ~MS_FEATURE_FILL, true, w_fill,
         "feature bit 1 (FILL)"},
        {"in place without feature", ALL_FEATURES & ~MS_FEATURE_IN_PLACE, true, w_in_place,
         "feature bit 2 (IN_PLACE)"},
        {"overlay without feature", ALL_FEATURES & ~MS_FEATURE_OVERLAYS, true, w_overlay,
         "feature bit 3 (OVERLAYS)"},
        {"in place misaligned", 0, true, w_in_place_misaligned, "aligned"},
        {"in place wraps", 0, true, w_in_place_wraps, "wraps"},
        {"discard outside region", 0, true, w_discard_outside, "outside region 0"},
        {"overlay below region", 0, true, w_overlay_below, "outside every region"},
        {"overlay past region", 0, true, w_overlay_past, "outside every region"},
        {"overlay duplicate", 0, true, w_overlay_dup, "already has a REFERENCE_TSC"},
        {"overlay vendor", 0, true, w_overlay_vendor, "vendor"},
        {"overlay slow tsc", 0, true, w_overlay_slow_tsc, "10 MHz"},
        {"overlay kind", 0, true, w_overlay_kind, "unknown overlay kind"},
        {"overlay gfn", 0, true, w_overlay_gfn, "52 bits"},
        {"overlay message size", 0, true, w_overlay_payload, "240"},
        {"overlay slot", 0, true, w_overlay_no_slot, "no contents"},
        {"overlay null", 0, true, w_overlay_null, "NULL"},
        {"round equal", 0, true, w_round_equal, "must increase"},
        {"round smaller", 0, true, w_round_smaller, "must increase"},
        {"round granularity", 0, true, w_round_gran, "granularity"},
        {"round without granularity", 0, true, w_round_no_gran, "granularity"},
        {"round huge granularity", 0, true, w_round_big_gran, "granularity"},
        {"round none with granularity", 0, true, w_round_none_gran, "granularity"},
        {"round null", 0, true, w_round_null, "NULL"},
        {"pages before round", 0, false, w_pages_then_round, "before the first round"},
        {"flushed pages before round", 0, false, w_flushed_pages_then_round,
         "before the first round"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const wcase *c = &cases[i];
        th_buf s = {0};
        ms_writer *w = new_writer(&s, c->features ? c->features : all);
        add_region(w, 0, true, MIB, MIB, PS);
        add_region(w, 1, false, 0, 16 * 8192, 8192);
        if (c->round0)
            start_round(w, 0, MS_TRACKER_NONE, 0);
        int rc = c->call(w);
        if (rc != MS_EINVAL)
            fail_msg("%s: status %d (%s), message \"%s\"", c->name, rc, ms_strerror(rc),
                     ms_writer_errmsg(w));
        char msg[400];
        snprintf(msg, sizeof msg, "%s", ms_writer_errmsg(w));
        if (!strstr(msg, c->frag))
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, msg, c->frag);
        /* sticky: good calls fail the same way, the message stays */
        ms_round r1 = {.number = 100};
        ms_overlay o = hc(0x1ff, 1);
        assert_status(ms_writer_round(w, &r1), MS_EINVAL);
        assert_status(ms_writer_zero_pages(w, 0, 0, 1), MS_EINVAL);
        assert_status(ms_writer_overlay(w, &o), MS_EINVAL);
        assert_status(ms_writer_flush(w), MS_EINVAL);
        assert_status(ms_writer_finish(w, NULL), MS_EINVAL);
        assert_status(ms_writer_status(w), MS_EINVAL);
        assert_string_equal(ms_writer_errmsg(w), msg);
        ms_writer_free(w);
        /* nothing after the failure reached the output: no END */
        if (s.len >= 112 + 16) {
            th_stream ts;
            th_stream_parse(&ts, s.data, s.len);
            for (size_t k = 0; k < ts.n; k++)
                assert_int_not_equal(ts.rec[k].type, MS_REC_END);
            th_stream_free(&ts);
        }
        th_buf_free(&s);
    }

    /* features the library does not define: a writer born failed */
    th_buf s = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = 1u << 5;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
    assert_non_null(w);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "features");
    ms_round r0 = {.number = 0};
    assert_status(ms_writer_round(w, &r0), MS_EINVAL);
    ms_writer_free(w);
    th_buf_free(&s);
}

/* ===================================================== overlay contents */

/* floor(10^7 * 2^64 / hz) by schoolbook long division, one bit at a time
 * over the 88-bit dividend: independent of the library's arithmetic. */
static uint64_t expected_scale(uint64_t hz)
{
    /* dividend bits, most significant first: 10^7 (24 bits) then 64 zeros */
    uint64_t q = 0, rem_hi = 0, rem = 0; /* remainder as a 128-bit pair */
    for (int i = 87; i >= 0; i--) {
        uint64_t bit = i >= 64 ? (10000000ull >> (i - 64)) & 1 : 0;
        rem_hi = rem_hi << 1 | rem >> 63;
        rem = rem << 1 | bit;
        q <<= 1; /* bits above 64 are zero when hz > 10^7 */
        if (rem_hi || rem >= hz) {
            if (rem < hz)
                rem_hi--;
            rem -= hz;
            q |= 1;
        }
    }
    return q;
}

static void test_overlay_render(void **state)
{
    (void)state;
    uint8_t page[MS_OVERLAY_PAGE_SIZE], want[MS_OVERLAY_PAGE_SIZE];
    /* hypercall pages: the vendor's sequence at 0, zeros after (TLFS) */
    static const uint8_t stub[] = {0x48, 0xc7, 0xc0, 0x02, 0x00, 0x00, 0x00, 0xc3};
    static const uint8_t intel[] = {0x0f, 0x01, 0xc1, 0xc3};
    static const uint8_t amd[] = {0x0f, 0x01, 0xd9, 0xc3};
    const uint8_t *seqs[] = {stub, intel, amd};
    const size_t lens[] = {sizeof stub, sizeof intel, sizeof amd};
    for (uint32_t v = 0; v < 3; v++) {
        ms_overlay o = hc(7, v);
        memset(page, 0xee, sizeof page);
        assert_status(ms_overlay_render(&o, page), 0);
        memset(want, 0, sizeof want);
        memcpy(want, seqs[v], lens[v]);
        assert_memory_equal(page, want, sizeof page);
    }
    ms_overlay bad = hc(7, 3);
    assert_status(ms_overlay_render(&bad, page), MS_EINVAL);
    assert_status(ms_overlay_render(NULL, page), MS_EINVAL);
    char why[200];
    assert_status(ms_overlay_check(&bad, why, sizeof why), MS_EINVAL);
    assert_contains(why, "HYPERCALL");
    assert_contains(why, "vendor");
    ms_overlay good = hc(7, 2);
    assert_status(ms_overlay_check(&good, NULL, 0), 0);

    /* reference TSC from a frequency: sequence 1, scale floor(10^7 2^64 / f) */
    assert_int_equal(expected_scale(2500000000u), 73786976294838206ull); /* 2^64 / 250 */
    assert_int_equal(expected_scale(20000000u), 1ull << 63);
    static const uint64_t freqs[] = {2500000000u, 10000001u,  3000000000u, 1234567891u,
                                     20000000u,   1ull << 40, UINT64_MAX,  0x8000000000000001ull};
    for (size_t i = 0; i < sizeof freqs / sizeof freqs[0]; i++) {
        uint64_t scale = expected_scale(freqs[i]);
#ifdef __SIZEOF_INT128__
        /* scale * f <= 10^7 2^64 < (scale + 1) * f */
        __extension__ typedef unsigned __int128 u128;
        u128 n = (u128)10000000u << 64;
        assert_true((u128)scale * freqs[i] <= n && (u128)(scale + 1) * freqs[i] > n);
#endif
        ms_overlay o = tsc(9, freqs[i]);
        o.tsc.offset = i % 2 ? -(int64_t)(i * 1000003) : (int64_t)i;
        o.tsc.sequence = 77; /* ignored with a frequency */
        o.tsc.scale = 88;
        memset(page, 0xee, sizeof page);
        assert_status(ms_overlay_render(&o, page), 0);
        memset(want, 0, sizeof want);
        th_put32(want, 1);
        th_put64(want + 8, scale);
        th_put64(want + 16, (uint64_t)o.tsc.offset);
        assert_memory_equal(page, want, sizeof page);
    }
    /* explicit sequence and scale, taken as given (sequence 0 included) */
    static const int64_t offsets[] = {0, -1, INT64_MIN, INT64_MAX, -123456789012345};
    for (size_t i = 0; i < 5; i++) {
        ms_overlay o = tsc(9, 0);
        o.tsc.has_frequency = false;
        o.tsc.sequence = (uint32_t)(i * 0x40000001u);
        o.tsc.scale = 0xfedcba9876543210ull >> i;
        o.tsc.offset = offsets[i];
        assert_status(ms_overlay_render(&o, page), 0);
        memset(want, 0, sizeof want);
        th_put32(want, o.tsc.sequence);
        th_put64(want + 8, o.tsc.scale);
        th_put64(want + 16, (uint64_t)offsets[i]);
        assert_memory_equal(page, want, sizeof page);
    }
    ms_overlay slow = tsc(9, 10000000);
    assert_status(ms_overlay_render(&slow, page), MS_EINVAL);

    /* SynIC pages: slot s at 256 s, absent slots zero */
    uint8_t slots[MS_SYNIC_SLOTS][MS_SYNIC_SLOT_SIZE];
    for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
        for (unsigned i = 0; i < MS_SYNIC_SLOT_SIZE; i++)
            slots[s][i] = (uint8_t)(s * 16 + i % 16 + 1);
    for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
        slots[s][4] = (uint8_t)(s * 15); /* payload size <= 240 */
    static const uint16_t masks[] = {0, 0x8001, 0xffff, 0x0420};
    for (uint32_t kind = MS_OVERLAY_SYNIC_MESSAGE; kind <= MS_OVERLAY_SYNIC_EVENT_FLAGS; kind++)
        for (size_t m = 0; m < 4; m++) {
            ms_overlay o = hc(9, 0);
            o.kind = kind;
            o.synic.vp = 5;
            o.synic.slot_mask = masks[m];
            memset(want, 0, sizeof want);
            for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
                if (masks[m] >> s & 1) {
                    o.synic.slot[s] = slots[s];
                    memcpy(want + 256 * s, slots[s], 256);
                }
            memset(page, 0xee, sizeof page);
            assert_status(ms_overlay_render(&o, page), 0);
            assert_memory_equal(page, want, sizeof page);
        }
}

static void test_overlay_priorities_and_names(void **state)
{
    (void)state;
    assert_int_equal(ms_overlay_priority(MS_OVERLAY_HYPERCALL), 400);
    assert_int_equal(ms_overlay_priority(MS_OVERLAY_REFERENCE_TSC), 300);
    assert_int_equal(ms_overlay_priority(MS_OVERLAY_SYNIC_MESSAGE), 200);
    assert_int_equal(ms_overlay_priority(MS_OVERLAY_SYNIC_EVENT_FLAGS), 100);
    assert_int_equal(ms_overlay_priority(0), 0);
    assert_int_equal(ms_overlay_priority(5), 0);
    assert_int_equal(ms_overlay_priority(9), 0);

    /* the active overlay is the highest priority whatever the order: every
     * permutation of the four kinds, and of subsets */
    static const unsigned perms[][4] = {{1, 2, 3, 4}, {4, 3, 2, 1}, {2, 4, 1, 3},
                                        {3, 1, 4, 2}, {4, 2, 3, 1}, {2, 3, 4, 1}};
    for (size_t p = 0; p < sizeof perms / sizeof perms[0]; p++)
        for (size_t n = 1; n <= 4; n++) {
            ms_overlay set[4];
            unsigned best = 0;
            size_t best_i = 0;
            for (size_t i = 0; i < n; i++) {
                set[i] = hc(2, 0);
                set[i].kind = perms[p][i];
                if (ms_overlay_priority(perms[p][i]) > best) {
                    best = ms_overlay_priority(perms[p][i]);
                    best_i = i;
                }
            }
            assert_int_equal(ms_overlay_active(set, n), best_i);
        }
    assert_int_equal(ms_overlay_active(NULL, 0), 0);

    assert_string_equal(ms_overlay_kind_name(1), "HYPERCALL");
    assert_string_equal(ms_overlay_kind_name(2), "REFERENCE_TSC");
    assert_string_equal(ms_overlay_kind_name(3), "SYNIC_MESSAGE");
    assert_string_equal(ms_overlay_kind_name(4), "SYNIC_EVENT_FLAGS");
    assert_null(ms_overlay_kind_name(0));
    assert_null(ms_overlay_kind_name(5));
    assert_string_equal(ms_tracker_name(0), "none");
    assert_string_equal(ms_tracker_name(1), "bitmap");
    assert_string_equal(ms_tracker_name(2), "ring");
    assert_string_equal(ms_tracker_name(3), "pml");
    assert_null(ms_tracker_name(4));
    assert_null(ms_tracker_name(9));
    assert_string_equal(ms_feature_name(0), "DISCARDED");
    assert_string_equal(ms_feature_name(1), "FILL");
    assert_string_equal(ms_feature_name(2), "IN_PLACE");
    assert_string_equal(ms_feature_name(3), "OVERLAYS");
    assert_string_equal(ms_feature_name(4), "PARTS");
    assert_null(ms_feature_name(5));
    assert_null(ms_feature_name(63));
    assert_string_equal(ms_page_state_name(3), "DISCARDED");
    assert_string_equal(ms_page_state_name(4), "FILL");
    assert_string_equal(ms_page_state_name(5), "IN_PLACE");
    assert_null(ms_page_state_name(6));
    assert_null(ms_page_state_name(0));
    assert_string_equal(ms_record_type_name(6), "ROUND");
    assert_string_equal(ms_record_type_name(7), "OVERLAY");
    assert_string_equal(ms_record_type_name(8), "PART");
    assert_null(ms_record_type_name(9));
}

/* ======================================================== compatibility */

/* Section 11.2: a 1.1 stream that sets no feature bit is one a 1.0 reader
 * loads. Such a reader does not know ROUND (so skips it: writers leave
 * MUST_UNDERSTAND clear) nor END key 4 (so ignores it). Simulated here by
 * retyping every ROUND record to a type this reader does not know and
 * dropping END's key 4, which a 1.0 reader would skip. */
static void test_compat_reader_1_0(void **state)
{
    (void)state;
    uint64_t rng = 5;
    uint8_t *m = malloc(32 * PS);
    for (unsigned p = 0; p < 32; p++)
        th_make_page(m + p * PS, PS, p % 3 ? TH_PAGE_RANDOM : TH_PAGE_ZERO, &rng);
    th_buf s = {0};
    ms_writer *w = new_writer(&s, 0);
    add_region(w, 0, true, 0, 32 * PS, PS);
    start_round(w, 0, MS_TRACKER_NONE, 0);
    assert_status(ms_writer_pages(w, 0, 0, 32, m), 0);
    uint64_t bm[1] = {0x00f0000f};
    for (unsigned p = 0; p < 32; p++)
        if (bm[0] >> p & 1)
            th_make_page(m + p * PS, PS, TH_PAGE_TEXT, &rng);
    ms_round r1 = {.number = 1,
                   .tracker = MS_TRACKER_BITMAP,
                   .granularity = PS,
                   .has_dirty = true,
                   .dirty = 8,
                   .final = true};
    assert_status(ms_writer_round(w, &r1), 0);
    assert_status(ms_writer_dirty(w, 0, bm, PS, m), 0);
    ms_totals t;
    finish(w, &s, &t);
    assert_int_equal(t.rounds, 2);

    /* the preamble of a stream without features is the one of vectors
     * 12.1 to 12.4, byte for byte (FORMAT.md section 12) */
    static const uint8_t vec_sum[8] = {0x94, 0xa8, 0x2a, 0x0b, 0x7b, 0xda, 0xef, 0x2b};
    assert_int_equal(th_get16(s.data + 8), 1);
    assert_int_equal(th_get16(s.data + 10), 1);
    assert_int_equal(th_get32(s.data + 12), 112);
    assert_int_equal(th_get64(s.data + 16), 0);
    assert_int_equal(th_get64(s.data + 24), 0);
    assert_memory_equal(s.data + 104, vec_sum, 8);

    image full = {0};
    replay(&s, &full);
    assert_int_equal(full.nrounds, 2);

    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    size_t retyped = 0;
    for (size_t i = 0; i < ts.n; i++)
        if (ts.rec[i].type == MS_REC_ROUND) {
            assert_int_equal(ts.rec[i].flags, 0);
            ts.rec[i].type = 0x7ff0;
            retyped++;
        }
    assert_int_equal(retyped, 2);
    /* records, bytes, pages and devices are unchanged by the retyping: the
     * keys a 1.0 reader checks stay valid */
    ms_totals t10;
    th_stream_totals(&ts, ts.n - 1, &t10);
    assert_int_equal(t10.records, t.records);
    assert_int_equal(t10.bytes, t.bytes);
    for (unsigned k = 0; k < MS_PAGE_STATE_SLOTS; k++)
        assert_int_equal(t10.pages[k], t.pages[k]);
    assert_int_equal(t10.devices, t.devices);
    assert_int_equal(t10.rounds, 0);
    th_buf b = {0};
    /* this reader still counts rounds: with key 4 kept, END disagrees */
    th_stream_build(&ts, &b);
    uint64_t end_at = payload_at(&ts, ts.n - 1);
    expect_fail(&b, MS_ECORRUPT, (int64_t)ts.n - 1, end_at, end_at, "rounds");
    build(&ts, &b); /* END without key 4 */
    image old = {0};
    replay(&b, &old);
    assert_int_equal(old.nrounds, 0);
    assert_int_equal(old.unknown, 2);
    /* the retyped ROUND records arrive where the rounds began */
    assert_int_equal(old.log[0], 'U');
    assert_null(strchr(old.log, 'R'));
    assert_int_equal(strlen(old.log), strlen(full.log));
    for (size_t i = 0; i < strlen(full.log); i++)
        assert_int_equal(old.log[i], full.log[i] == 'R' ? 'U' : full.log[i]);
    /* the same memory either way */
    assert_memory_equal(old.reg[0].mem, full.reg[0].mem, 32 * PS);
    assert_memory_equal(old.reg[0].state, full.reg[0].state, 32);
    assert_memory_equal(old.reg[0].mem, m, 32 * PS);
    image_free(&old);
    image_free(&full);
    th_buf_free(&b);
    th_stream_free(&ts);
    th_buf_free(&s);
    free(m);
}

/* A stream that sets one feature bit names exactly that bit; vector 12.5's
 * preamble (all four bits) is reproduced byte for byte. */
static void test_compat_feature_preambles(void **state)
{
    (void)state;
    static const uint64_t sets[] = {MS_FEATURE_DISCARDED, MS_FEATURE_FILL, MS_FEATURE_IN_PLACE,
                                    MS_FEATURE_OVERLAYS, ALL_FEATURES};
    for (size_t i = 0; i < 5; i++) {
        th_buf s = {0};
        ms_writer *w = new_writer(&s, sets[i]);
        finish(w, &s, NULL);
        assert_int_equal(th_get64(s.data + 16), sets[i]);
        const ms_header *h;
        ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
        assert_status(ms_reader_header(r, &h), 0);
        assert_int_equal(h->required_features, sets[i]);
        assert_int_equal(h->minor, 1);
        ms_reader_free(r);
        if (sets[i] == ALL_FEATURES) {
            static const uint8_t vec_sum[8] = {0xe7, 0x99, 0x64, 0xfb, 0xeb, 0xc8, 0x3c, 0xeb};
            assert_memory_equal(s.data + 104, vec_sum, 8);
        }
        th_buf_free(&s);
    }
}

/* ================================================================ main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_roundtrip),
        cmocka_unit_test(test_fill_detection_needs_feature),
        cmocka_unit_test(test_fill_large_pages),
        cmocka_unit_test(test_fill_pages_call),
        cmocka_unit_test(test_in_place_call),
        cmocka_unit_test(test_dirty_page_granularity),
        cmocka_unit_test(test_dirty_huge_pages),
        cmocka_unit_test(test_dirty_coarse_granularity),
        cmocka_unit_test(test_dirty_empty_bitmap),
        cmocka_unit_test(test_dirty_refusals),
        cmocka_unit_test(test_round_records),
        cmocka_unit_test(test_overlays_roundtrip),
        cmocka_unit_test(test_multi_round_guest),
        cmocka_unit_test(test_refuse_page_states),
        cmocka_unit_test(test_refuse_round_order),
        cmocka_unit_test(test_refuse_round_fields),
        cmocka_unit_test(test_round_zero_granularity_without_tracker),
        cmocka_unit_test(test_round_tracker_beyond_32_bits),
        cmocka_unit_test(test_refuse_overlay_feature_and_place),
        cmocka_unit_test(test_refuse_overlay_duplicates),
        cmocka_unit_test(test_refuse_overlay_kinds_and_params),
        cmocka_unit_test(test_refuse_overlay_synic),
        cmocka_unit_test(test_refuse_overlay_gfn_bits),
        cmocka_unit_test(test_refuse_overlay_limit),
        cmocka_unit_test(test_refuse_end_totals),
        cmocka_unit_test(test_refuse_unknown_feature),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_overlay_render),
        cmocka_unit_test(test_overlay_priorities_and_names),
        cmocka_unit_test(test_compat_reader_1_0),
        cmocka_unit_test(test_compat_feature_preambles),
    };
    return th_run_tests(tests);
}
