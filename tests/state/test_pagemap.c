/*
 * The final page states of a stream's regions (ms_pagemap) and IN_PLACE
 * resolution (ms_in_place), over the public API: states and runs, spans,
 * the memory budget, per-state counts, walks, and IN_PLACE references
 * that overlap and supersede each other. A randomized run checks the map
 * against a plain array of states.
 */
#include <stdlib.h>

#include "helpers.h"

#define PS 4096u
#define CHUNK 4096u /* pages per chunk of the map (pagemap.h) */

static ms_region region(uint32_t id, const char *name, uint64_t pages)
{
    return (ms_region){
        .id = id, .name = name, .has_gpa = false, .size = pages * PS, .page_size = PS};
}

/* The state of every page by a walk, checked against @want. */
static void assert_states(ms_pagemap *m, uint32_t id, const uint8_t *want, uint64_t pages)
{
    uint64_t p = 0, end;
    while (p < pages) {
        int st = ms_pagemap_state(m, id, p, &end);
        assert_true(st >= 0);
        assert_true(end > p && end <= pages);
        for (uint64_t q = p; q < end; q++)
            if (want[q] != st)
                fail_msg("page %llu: state %d, expected %u", (unsigned long long)q, st, want[q]);
        p = end;
    }
}

static void assert_counts(ms_pagemap *m, uint32_t id, const uint8_t *want, uint64_t pages)
{
    uint64_t c[MS_PAGEMAP_STATES], w[MS_PAGEMAP_STATES] = {0};
    for (uint64_t p = 0; p < pages; p++)
        w[want[p]]++;
    assert_status(ms_pagemap_counts(m, id, c), 0);
    for (unsigned s = 0; s < MS_PAGEMAP_STATES; s++)
        assert_int_equal(c[s], w[s]);
}

/* ------------------------------------------------------------ states, runs */

static void test_states_and_runs(void **state)
{
    (void)state;
    ms_pagemap *m = ms_pagemap_new(NULL);
    assert_non_null(m);
    const ms_region r = region(3, "ram", 3 * CHUNK + 100);
    assert_status(ms_pagemap_add_region(m, &r), 0);
    const uint64_t n = 3 * CHUNK + 100;
    uint8_t *want = calloc(n, 1);

    /* Never sent: one run of MISSING, and no memory for the map yet. */
    uint64_t end;
    assert_int_equal(ms_pagemap_state(m, 3, 0, &end), MS_PAGEMAP_MISSING);
    assert_int_equal(end, n);
    assert_int_equal(ms_pagemap_memory(m), 0);

    /* Runs across chunk boundaries, then a page inside a run. */
    assert_status(ms_pagemap_set(m, 3, 10, CHUNK, MS_PAGE_DATA, NULL), 0);
    memset(want + 10, MS_PAGE_DATA, CHUNK);
    assert_status(ms_pagemap_set(m, 3, 2 * CHUNK - 5, 10, MS_PAGE_ZERO, NULL), 0);
    memset(want + 2 * CHUNK - 5, MS_PAGE_ZERO, 10);
    assert_status(ms_pagemap_set(m, 3, 100, 1, MS_PAGE_FILL, NULL), 0);
    want[100] = MS_PAGE_FILL;
    assert_status(ms_pagemap_set(m, 3, n - 1, 1, 15, NULL), 0); /* a caller's own state */
    want[n - 1] = 15;
    assert_states(m, 3, want, n);
    assert_counts(m, 3, want, n);
    assert_true(ms_pagemap_memory(m) > 0);

    /* A whole chunk back in one state needs no map again. */
    size_t before = ms_pagemap_memory(m);
    assert_status(ms_pagemap_set(m, 3, 0, CHUNK, MS_PAGE_ZERO, NULL), 0);
    memset(want, MS_PAGE_ZERO, CHUNK);
    assert_true(ms_pagemap_memory(m) < before);
    assert_states(m, 3, want, n);

    /* Asking for an earlier page starts the walk over; a change made after
     * a walk is seen by the next one. */
    assert_int_equal(ms_pagemap_state(m, 3, n - 1, NULL), 15);
    assert_int_equal(ms_pagemap_state(m, 3, 5, NULL), MS_PAGE_ZERO);
    assert_status(ms_pagemap_set(m, 3, 5, 1, MS_PAGE_DISCARDED, NULL), 0);
    want[5] = MS_PAGE_DISCARDED;
    assert_int_equal(ms_pagemap_state(m, 3, 5, &end), MS_PAGE_DISCARDED);
    assert_int_equal(end, 6);
    assert_states(m, 3, want, n);

    /* had[]: what the pages were before. */
    uint64_t had[MS_PAGEMAP_STATES] = {0};
    assert_status(ms_pagemap_set(m, 3, 0, 2 * CHUNK, MS_PAGE_ZERO, had), 0);
    uint64_t sum = 0;
    for (unsigned s = 0; s < MS_PAGEMAP_STATES; s++)
        sum += had[s];
    assert_int_equal(sum, 2 * CHUNK);
    /* Chunk 0 is ZERO but page 5; chunk 1 starts with the last 10 DATA
     * pages and ends with 5 ZERO ones. */
    assert_int_equal(had[MS_PAGE_DISCARDED], 1);
    assert_int_equal(had[MS_PAGE_FILL], 0); /* page 100 went with chunk 0 */
    assert_int_equal(had[MS_PAGE_DATA], 10);
    assert_int_equal(had[MS_PAGE_ZERO], CHUNK - 1 + 5);
    assert_int_equal(had[MS_PAGEMAP_MISSING], CHUNK - 15);
    memset(want, MS_PAGE_ZERO, 2 * CHUNK);
    assert_counts(m, 3, want, n);

    /* Bounds of a state, and of one no page is in. */
    uint64_t first, last;
    assert_status(ms_pagemap_bounds(m, 3, MS_PAGEMAP_MISSING, &first, &last), 0);
    assert_int_equal(first, 2 * CHUNK + 5);
    assert_int_equal(last, n - 2);
    assert_status(ms_pagemap_bounds(m, 3, MS_PAGE_IN_PLACE, &first, &last), 0);
    assert_int_equal(first, UINT64_MAX);
    assert_int_equal(last, UINT64_MAX);

    free(want);
    ms_pagemap_free(m);
}

/* A long run of whole chunks in one state costs one span, however long; a
 * page set inside it later splits it. */
static void test_spans(void **state)
{
    (void)state;
    ms_pagemap *m = ms_pagemap_new(NULL);
    const uint64_t n = (uint64_t)1 << 30; /* 4 TiB of 4 KiB pages */
    const ms_region r = region(1, "huge", n);
    assert_status(ms_pagemap_add_region(m, &r), 0);
    assert_status(ms_pagemap_set(m, 1, 7, n - 7, MS_PAGE_ZERO, NULL), 0);
    assert_true(ms_pagemap_memory(m) < 16384);
    assert_status(ms_pagemap_set(m, 1, n / 2, 3, MS_PAGE_DATA, NULL), 0);
    assert_true(ms_pagemap_memory(m) < 16384);
    uint64_t c[MS_PAGEMAP_STATES];
    assert_status(ms_pagemap_counts(m, 1, c), 0);
    assert_int_equal(c[MS_PAGEMAP_MISSING], 7);
    assert_int_equal(c[MS_PAGE_DATA], 3);
    assert_int_equal(c[MS_PAGE_ZERO], n - 10);
    /* The walk: missing, zero up to the data, the data, zero to the end. */
    uint64_t end, p = 0;
    unsigned seen[8];
    size_t runs = 0;
    while (p < n) {
        int st = ms_pagemap_state(m, 1, p, &end);
        assert_true(st >= 0);
        if (!runs || seen[runs - 1] != (unsigned)st) {
            assert_true(runs < 8);
            seen[runs++] = (unsigned)st;
        }
        p = end;
    }
    assert_int_equal(runs, 4);
    assert_int_equal(seen[0], MS_PAGEMAP_MISSING);
    assert_int_equal(seen[1], MS_PAGE_ZERO);
    assert_int_equal(seen[2], MS_PAGE_DATA);
    assert_int_equal(seen[3], MS_PAGE_ZERO);
    uint64_t first, last;
    assert_status(ms_pagemap_bounds(m, 1, MS_PAGE_DATA, &first, &last), 0);
    assert_int_equal(first, n / 2);
    assert_int_equal(last, n / 2 + 2);
    ms_pagemap_free(m);
}

/* ------------------------------------------------------------------ budget */

/* Page states scattered one per chunk: each chunk needs its own map, so the
 * budget runs out; the region is given up (and its memory returned), the
 * other region goes on. */
static void test_budget(void **state)
{
    (void)state;
    ms_pagemap_options o;
    ms_pagemap_options_init(&o);
    o.max_memory = 64 << 10;
    ms_pagemap *m = ms_pagemap_new(&o);
    assert_non_null(m);
    const ms_region big = region(0, "ram", 64 * CHUNK), small = region(1, "rom", 16);
    assert_status(ms_pagemap_add_region(m, &big), 0);
    assert_status(ms_pagemap_add_region(m, &small), 0);
    int rc = 0;
    uint64_t k;
    for (k = 0; k < 64 && rc == 0; k++)
        rc = ms_pagemap_set(m, 0, k * CHUNK + 7, 1, MS_PAGE_ZERO, NULL);
    assert_status(rc, MS_ELIMIT);
    assert_true(k > 2 && k < 64);
    assert_contains(ms_pagemap_errmsg(m), "region 0 \"ram\"");
    assert_contains(ms_pagemap_errmsg(m), "exceed");
    const ms_pagemap_region *g = ms_pagemap_find(m, 0);
    assert_non_null(g);
    assert_false(g->tracked);
    assert_int_equal(ms_pagemap_memory(m), 0);
    uint64_t c[MS_PAGEMAP_STATES], first, last;
    assert_status(ms_pagemap_counts(m, 0, c), MS_ESTATE);
    assert_status(ms_pagemap_state(m, 0, 0, NULL), MS_ESTATE);
    assert_status(ms_pagemap_bounds(m, 0, 0, &first, &last), MS_ESTATE);
    assert_status(ms_pagemap_set(m, 0, 0, 1, MS_PAGE_ZERO, NULL), MS_ESTATE);
    /* The other region is tracked, within the budget. */
    assert_status(ms_pagemap_set(m, 1, 3, 2, MS_PAGE_DATA, NULL), 0);
    assert_status(ms_pagemap_counts(m, 1, c), 0);
    assert_int_equal(c[MS_PAGE_DATA], 2);
    assert_int_equal(c[MS_PAGEMAP_MISSING], 14);
    assert_true(ms_pagemap_memory(m) <= o.max_memory);
    ms_pagemap_free(m);
}

/* ------------------------------------------------ records from a stream */

static void test_apply_stream(void **state)
{
    (void)state;
    th_buf s = {0};
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED | MS_FEATURE_IN_PLACE;
    wo.batch_bytes = 4 * PS; /* several PAGES records */
    ms_writer *w = ms_writer_new(&wo, th_sink_write, &s);
    const ms_region r0 = region(0, "ram", 64), r1 = region(9, "vram", 8);
    assert_status(ms_writer_add_region(w, &r0), 0);
    assert_status(ms_writer_add_region(w, &r1), 0);
    uint8_t *mem = calloc(16, PS);
    uint64_t rng = 7;
    for (int i = 0; i < 16; i += 2)
        th_make_page(mem + (size_t)i * PS, PS, TH_PAGE_RANDOM, &rng);
    assert_status(ms_writer_pages(w, 0, 0, 16, mem), 0);       /* 8 DATA, 8 ZERO */
    assert_status(ms_writer_fill_pages(w, 0, 20, 4, 0xcc), 0); /* FILL */
    assert_status(ms_writer_discard(w, 0, 2, 2), 0);           /* DATA -> DISCARDED */
    assert_status(ms_writer_in_place(w, 0, 40, 4, 0x100000), 0);
    assert_status(ms_writer_zero_pages(w, 9, 0, 8), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);

    ms_pagemap *m = ms_pagemap_new(NULL);
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    int rc;
    uint64_t pages_records = 0, pages_bytes = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        assert_status(ms_pagemap_sync(m, r), 0);
        assert_status(ms_pagemap_apply(m, rec), 0);
        if (rec->type == MS_REC_PAGES && rec->pages.region->id == 0) {
            pages_records++;
            pages_bytes += MS_RECORD_HEADER_SIZE + rec->length;
        }
    }
    assert_status(rc, 0);
    assert_int_equal(ms_pagemap_region_count(m), 2);
    const ms_pagemap_region *g = ms_pagemap_get_region(m, 0);
    assert_non_null(g);
    assert_string_equal(g->region.name, "ram");
    assert_int_equal(g->pages, 64);
    assert_true(g->tracked);
    assert_int_equal(g->sent[MS_PAGE_DATA], 8);
    assert_int_equal(g->sent[MS_PAGE_ZERO], 8);
    assert_int_equal(g->sent[MS_PAGE_FILL], 4);
    assert_int_equal(g->sent[MS_PAGE_DISCARDED], 2);
    assert_int_equal(g->sent[MS_PAGE_IN_PLACE], 4);
    assert_int_equal(g->records, pages_records);
    assert_int_equal(g->bytes, pages_bytes);
    assert_null(ms_pagemap_get_region(m, 2));
    assert_ptr_equal(ms_pagemap_find(m, 9), ms_pagemap_get_region(m, 1));
    assert_null(ms_pagemap_find(m, 5));

    uint64_t c[MS_PAGEMAP_STATES];
    assert_status(ms_pagemap_counts(m, 0, c), 0);
    assert_int_equal(c[MS_PAGE_DATA], 7); /* page 2 became DISCARDED */
    assert_int_equal(c[MS_PAGE_ZERO], 7); /* and page 3 */
    assert_int_equal(c[MS_PAGE_DISCARDED], 2);
    assert_int_equal(c[MS_PAGE_FILL], 4);
    assert_int_equal(c[MS_PAGE_IN_PLACE], 4);
    assert_int_equal(c[MS_PAGEMAP_MISSING], 64 - 16 - 4 - 4);
    uint64_t first, last;
    assert_status(ms_pagemap_bounds(m, 0, MS_PAGEMAP_MISSING, &first, &last), 0);
    assert_int_equal(first, 16);
    assert_int_equal(last, 63);
    assert_int_equal(ms_pagemap_state(m, 0, 21, NULL), MS_PAGE_FILL);
    assert_status(ms_pagemap_counts(m, 9, c), 0);
    assert_int_equal(c[MS_PAGE_ZERO], 8);

    /* Records that are not PAGES, and a region the map lacks. */
    ms_record other = {.type = MS_REC_DEVICE};
    assert_status(ms_pagemap_apply(m, &other), 0);
    ms_extent x = {.first = 0, .count = 1, .state = MS_PAGE_ZERO};
    const ms_region stranger = region(77, "x", 4);
    ms_record pages = {.type = MS_REC_PAGES,
                       .pages = {.region = &stranger, .extents = &x, .extent_count = 1}};
    assert_status(ms_pagemap_apply(m, &pages), MS_EINVAL);
    assert_contains(ms_pagemap_errmsg(m), "region 77");
    /* An extent past its region: nothing applied, not even counted. */
    x.first = 60;
    x.count = 8;
    pages.pages.region = &r0;
    assert_status(ms_pagemap_apply(m, &pages), MS_EINVAL);
    assert_int_equal(ms_pagemap_get_region(m, 0)->records, pages_records);

    ms_reader_free(r);
    ms_pagemap_free(m);
    free(mem);
    th_buf_free(&s);
}

/* ---------------------------------------------------------- bad arguments */

static void test_arguments(void **state)
{
    (void)state;
    ms_pagemap_options o;
    ms_pagemap_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.max_memory, MS_PAGEMAP_DEFAULT_MEMORY);
    assert_int_equal(o.max_in_place, MS_IN_PLACE_DEFAULT_EXTENTS);
    /* Bad options: handles in the failed state (common.h, "Handles"). */
    o.max_in_place = MS_IN_PLACE_MAX_EXTENTS + 1;
    ms_pagemap *bad = ms_pagemap_new(&o);
    assert_status(ms_pagemap_status(bad), MS_EINVAL);
    assert_contains(ms_pagemap_errmsg(bad), "max_in_place");
    ms_pagemap_free(bad);
    ms_in_place *badl = ms_in_place_new(&o);
    assert_status(ms_in_place_status(badl), MS_EINVAL);
    assert_contains(ms_in_place_errmsg(badl), "max_in_place");
    ms_in_place_free(badl);
    ms_pagemap_options zero = {0}; /* not filled by init */
    bad = ms_pagemap_new(&zero);
    assert_status(ms_pagemap_status(bad), MS_EINVAL);
    assert_contains(ms_pagemap_errmsg(bad), "_init");
    ms_pagemap_free(bad);

    ms_pagemap *m = ms_pagemap_new(NULL);
    ms_region r = region(1, "ram", 16);
    assert_status(ms_pagemap_add_region(m, &r), 0);
    assert_status(ms_pagemap_add_region(m, &r), MS_EINVAL); /* the same id */
    ms_region odd = region(2, "odd", 16);
    odd.page_size = 3000;
    assert_status(ms_pagemap_add_region(m, &odd), MS_EINVAL);
    odd.page_size = PS;
    odd.size = PS + 1;
    assert_status(ms_pagemap_add_region(m, &odd), MS_EINVAL);
    assert_status(ms_pagemap_set(m, 2, 0, 1, MS_PAGE_DATA, NULL), MS_EINVAL);
    assert_status(ms_pagemap_set(m, 1, 15, 2, MS_PAGE_DATA, NULL), MS_EINVAL);
    assert_status(ms_pagemap_set(m, 1, 0, 1, MS_PAGEMAP_STATES, NULL), MS_EINVAL);
    assert_status(ms_pagemap_set(m, 1, 16, 0, MS_PAGE_DATA, NULL), 0); /* nothing */
    assert_status(ms_pagemap_state(m, 1, 16, NULL), MS_EINVAL);
    assert_status(ms_pagemap_state(m, 7, 0, NULL), MS_EINVAL);
    assert_contains(ms_pagemap_errmsg(m), "region 7");
    assert_int_equal(ms_pagemap_region_count(NULL), 0);
    ms_pagemap_free(m);
    ms_pagemap_free(NULL);
    ms_in_place_free(NULL);
}

/* Every byte through the caller's allocator, all of it freed. */
static void test_allocator(void **state)
{
    (void)state;
    th_alloc a;
    th_alloc_init(&a, SIZE_MAX);
    ms_pagemap_options o;
    ms_pagemap_options_init(&o);
    o.allocator = th_allocator(&a);
    ms_pagemap *m = ms_pagemap_new(&o);
    const ms_region r = region(1, "ram", 5 * CHUNK);
    assert_status(ms_pagemap_add_region(m, &r), 0);
    for (uint64_t p = 0; p < 5 * CHUNK; p += 97)
        assert_status(ms_pagemap_set(m, 1, p, 3, MS_PAGE_DATA, NULL), 0);
    assert_true(ms_pagemap_state(m, 1, 0, NULL) >= 0);
    ms_in_place *l = ms_in_place_new(&o);
    ms_extent x = {.first = 0, .count = 2, .state = MS_PAGE_IN_PLACE, .arg = 0x2000};
    assert_status(ms_in_place_add(l, &r, &x), 0);
    assert_true(a.calls > 10);
    assert_true(a.live > 0);
    ms_in_place_free(l);
    ms_pagemap_free(m);
    assert_int_equal(a.live, 0);
}

/* The map against a plain array, over random runs of random states:
 * short runs inside chunks, runs across chunks, and long runs that become
 * spans and are split again. */
static void test_random_against_array(void **state)
{
    (void)state;
    const uint64_t n = 40 * CHUNK + 123;
    uint8_t *want = calloc(n, 1);
    ms_pagemap *m = ms_pagemap_new(NULL);
    const ms_region r = region(4, "ram", n);
    assert_status(ms_pagemap_add_region(m, &r), 0);
    uint64_t rng = 12345;
    for (int round = 0; round < 400; round++) {
        uint64_t len;
        switch (th_rand_below(&rng, 4)) {
        case 0:
            len = 1 + th_rand_below(&rng, 8);
            break;
        case 1:
            len = 1 + th_rand_below(&rng, 3 * CHUNK);
            break;
        case 2:
            len = 1 + th_rand_below(&rng, n);
            break;
        default:
            len = 16 * CHUNK + th_rand_below(&rng, 8 * CHUNK);
            break;
        }
        if (len > n)
            len = n;
        uint64_t first = th_rand_below(&rng, n - len + 1);
        unsigned st = (unsigned)th_rand_below(&rng, 6);
        uint64_t had[MS_PAGEMAP_STATES] = {0}, want_had[MS_PAGEMAP_STATES] = {0};
        for (uint64_t p = first; p < first + len; p++)
            want_had[want[p]]++;
        assert_status(ms_pagemap_set(m, 4, first, len, st, had), 0);
        for (unsigned s = 0; s < MS_PAGEMAP_STATES; s++)
            assert_int_equal(had[s], want_had[s]);
        memset(want + first, (int)st, len);
        if (round % 40 == 0) {
            assert_states(m, 4, want, n);
            assert_counts(m, 4, want, n);
        }
    }
    assert_states(m, 4, want, n);
    assert_counts(m, 4, want, n);
    for (unsigned s = 0; s < 6; s++) {
        uint64_t first, last, wf = UINT64_MAX, wl = UINT64_MAX;
        for (uint64_t p = 0; p < n; p++)
            if (want[p] == s) {
                if (wf == UINT64_MAX)
                    wf = p;
                wl = p;
            }
        assert_status(ms_pagemap_bounds(m, 4, s, &first, &last), 0);
        assert_int_equal(first, wf);
        assert_int_equal(last, wl);
    }
    ms_pagemap_free(m);
    free(want);
}

/* ------------------------------------------------------------- IN_PLACE */

static void test_in_place(void **state)
{
    (void)state;
    ms_in_place *l = ms_in_place_new(NULL);
    assert_non_null(l);
    const ms_region r = region(1, "ram", 1024),
                    big = {.id = 2, .name = "huge", .size = 64 << 20, .page_size = 2 << 20};
    uint64_t end;
    assert_int_equal(ms_in_place_address(l, 1, 0, &end), UINT64_MAX);
    assert_int_equal(end, UINT64_MAX);

    /* Pages 0..99 at 1 MiB, then 50..59 again at 16 MiB, then 95..104 at
     * 32 MiB: the last reference wins where they overlap. */
    ms_extent x = {.first = 0, .count = 100, .state = MS_PAGE_IN_PLACE, .arg = 1 << 20};
    assert_status(ms_in_place_add(l, &r, &x), 0);
    x = (ms_extent){.first = 50, .count = 10, .state = MS_PAGE_IN_PLACE, .arg = 16 << 20};
    assert_status(ms_in_place_add(l, &r, &x), 0);
    x = (ms_extent){.first = 95, .count = 10, .state = MS_PAGE_IN_PLACE, .arg = 32 << 20};
    assert_status(ms_in_place_add(l, &r, &x), 0);
    /* Another region with other page sizes, same pages. */
    x = (ms_extent){.first = 0, .count = 4, .state = MS_PAGE_IN_PLACE, .arg = 1ull << 40};
    assert_status(ms_in_place_add(l, &big, &x), 0);
    assert_int_equal(ms_in_place_count(l), 4);

    assert_int_equal(ms_in_place_address(l, 1, 0, &end), 1 << 20);
    assert_int_equal(end, 50); /* a later extent starts there */
    assert_int_equal(ms_in_place_address(l, 1, 49, &end), (1 << 20) + 49 * PS);
    assert_int_equal(end, 50);
    assert_int_equal(ms_in_place_address(l, 1, 50, &end), 16 << 20);
    assert_int_equal(end, 60);
    assert_int_equal(ms_in_place_address(l, 1, 59, &end), (16 << 20) + 9 * PS);
    assert_int_equal(ms_in_place_address(l, 1, 60, &end), (1 << 20) + 60 * PS);
    assert_int_equal(end, 95);
    assert_int_equal(ms_in_place_address(l, 1, 96, &end), (32 << 20) + PS);
    assert_int_equal(end, 105);
    assert_int_equal(ms_in_place_address(l, 1, 105, &end), UINT64_MAX);
    assert_int_equal(end, UINT64_MAX);
    assert_int_equal(ms_in_place_address(l, 2, 3, &end), (1ull << 40) + 3 * (2 << 20));
    assert_int_equal(end, 4);
    assert_int_equal(ms_in_place_address(l, 3, 0, NULL), UINT64_MAX);

    /* What the reader refuses is refused here too. */
    x = (ms_extent){.first = 0, .count = 1, .state = MS_PAGE_IN_PLACE, .arg = 100};
    assert_status(ms_in_place_add(l, &r, &x), MS_EINVAL); /* not aligned */
    x = (ms_extent){.first = 0, .count = 2, .state = MS_PAGE_IN_PLACE, .arg = UINT64_MAX - 4095};
    assert_status(ms_in_place_add(l, &r, &x), MS_EINVAL); /* wraps */
    x = (ms_extent){.first = 0, .count = 1, .state = MS_PAGE_DATA, .arg = 0};
    assert_status(ms_in_place_add(l, &r, &x), MS_EINVAL);
    assert_int_equal(ms_in_place_count(l), 4);
    ms_in_place_free(l);

    /* The cap. */
    ms_pagemap_options o;
    ms_pagemap_options_init(&o);
    o.max_in_place = 3;
    l = ms_in_place_new(&o);
    for (uint64_t i = 0; i < 3; i++) {
        x = (ms_extent){.first = i, .count = 1, .state = MS_PAGE_IN_PLACE, .arg = i * PS};
        assert_status(ms_in_place_add(l, &r, &x), 0);
    }
    assert_status(ms_in_place_add(l, &r, &x), MS_ELIMIT);
    assert_int_equal(ms_in_place_address(l, 1, 2, NULL), 2 * PS);
    ms_in_place_free(l);
}

/* Records what ms_in_place_overlaps() reports. */
typedef struct overlaps {
    size_t n, later[8], earlier[8];
    int stop_after; /* 0: never */
} overlaps;

static int on_overlap(void *ctx, size_t later, size_t earlier)
{
    overlaps *o = ctx;
    if (o->n < 8) {
        o->later[o->n] = later;
        o->earlier[o->n] = earlier;
    }
    o->n++;
    return o->stop_after && (int)o->n == o->stop_after ? -7 : 0;
}

/* FORMAT.md section 6.2: no two IN_PLACE extents reference overlapping
 * bytes unless they map the same pages of the same region to the same
 * addresses; every extent counts, replaced ones and other regions'. */
static void test_in_place_overlaps(void **state)
{
    (void)state;
    const ms_region r = region(1, "ram", 1024), r2 = region(2, "vram", 64),
                    big = {.id = 3, .name = "huge", .size = 64 << 20, .page_size = 2 << 20};
    ms_extent x = {.state = MS_PAGE_IN_PLACE};

    /* Allowed: the same mapping sent twice (pages 0..9 at 1 MiB, then
     * 5..14 at 1 MiB + 5 pages), a disjoint extent right after it. */
    ms_in_place *l = ms_in_place_new(NULL);
    x.first = 0, x.count = 10, x.arg = 1 << 20;
    assert_status(ms_in_place_add(l, &r, &x), 0);
    x.first = 5, x.count = 10, x.arg = (1 << 20) + 5 * PS;
    assert_status(ms_in_place_add(l, &r, &x), 0);
    x.first = 0, x.count = 4, x.arg = (1 << 20) + 15 * PS; /* vram, adjacent bytes */
    assert_status(ms_in_place_add(l, &r2, &x), 0);
    overlaps o = {0};
    assert_int_equal(ms_in_place_overlaps(l, on_overlap, &o), 0);
    assert_int_equal(o.n, 0);

    /* Refused: vram pages referencing ram's bytes; then ram pages 20..21
     * remapped onto bytes pages 0..1 of ram still hold (a replaced extent
     * counts as sent, whatever replaced its pages). */
    x.first = 4, x.count = 2, x.arg = (1 << 20) + 8 * PS;
    assert_status(ms_in_place_add(l, &r2, &x), 0); /* index 3 */
    x.first = 20, x.count = 2, x.arg = 1 << 20;
    assert_status(ms_in_place_add(l, &r, &x), 0); /* index 4 */
    x.first = 0, x.count = 10, x.arg = 1ull << 40;
    assert_status(ms_in_place_add(l, &r, &x), 0); /* index 5: replaces index 0's pages */
    assert_int_equal(ms_in_place_overlaps(l, on_overlap, &o), 2);
    assert_int_equal(o.n, 2);
    /* In address order: index 4 (at 1 MiB, after index 0 at the same
     * address) against index 0, then index 3 against index 1, the one
     * reaching furthest by then. */
    assert_int_equal(o.later[0], 4);
    assert_int_equal(o.earlier[0], 0);
    assert_int_equal(o.later[1], 3);
    assert_int_equal(o.earlier[1], 1);
    const ms_in_place_extent *e = ms_in_place_get(l, 3);
    assert_non_null(e);
    assert_int_equal(e->region, 2);
    assert_int_equal(e->first, 4);
    assert_int_equal(e->count, 2);
    assert_int_equal(e->address, (1 << 20) + 8 * PS);
    assert_null(ms_in_place_get(l, 6));

    /* A callback's stop, and counting without one. */
    o = (overlaps){.stop_after = 1};
    assert_int_equal(ms_in_place_overlaps(l, on_overlap, &o), -7);
    assert_int_equal(o.n, 1);
    assert_int_equal(ms_in_place_overlaps(l, NULL, NULL), 2);
    ms_in_place_free(l);

    /* Page sizes differ: 2 MiB pages of "huge" over 4 KiB pages of ram. */
    l = ms_in_place_new(NULL);
    x.first = 1, x.count = 1, x.arg = 4 << 20;
    assert_status(ms_in_place_add(l, &big, &x), 0);
    x.first = 0, x.count = 1, x.arg = (6 << 20) - PS; /* the last 4 KiB of huge's page */
    assert_status(ms_in_place_add(l, &r, &x), 0);
    assert_int_equal(ms_in_place_overlaps(l, NULL, NULL), 1);
    ms_in_place_free(l);
    assert_int_equal(ms_in_place_overlaps(NULL, NULL, NULL), MS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_and_runs),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_apply_stream),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_random_against_array),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_in_place_overlaps),
    };
    return th_run_tests(tests);
}
