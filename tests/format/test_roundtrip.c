/*
 * Round trips through the writer and the reader: guest memory goes in, the
 * stream is read back (from memory, through a callback in small random
 * chunks, and through a pipe), memory is rebuilt by applying the PAGES
 * records in order (FORMAT.md section 2, "final state") and compared byte for
 * byte with a model of what the writer was handed. END totals are checked
 * against the model, and every checksum against the rule of section 4.2
 * computed independently (helpers.c). All randomness is a fixed-seed PRNG.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

#define MAX_REGIONS 8
#define KIB 1024u
#define MIB (1024u * 1024u)

/* ------------------------------------------------------------------ model */

typedef struct region_model {
    ms_region r;
    char name[32];
    uint64_t pages;
    uint8_t *expect, *got;             /* contents: last written / rebuilt */
    uint8_t *expect_state, *got_state; /* per page: 0 = missing, else a state */
} region_model;

typedef struct model {
    region_model reg[MAX_REGIONS];
    size_t nreg;
    ms_totals totals; /* pages per state (every copy) and devices handed in */
} model;

static region_model *m_region(model *m, uint32_t id)
{
    for (size_t i = 0; i < m->nreg; i++)
        if (m->reg[i].r.id == id)
            return &m->reg[i];
    fail_msg("region %u not in the model", id);
    return NULL;
}

static void m_declare(model *m, uint32_t id, const char *name, bool has_gpa, uint64_t gpa,
                      uint64_t pages, uint32_t ps)
{
    assert_true(m->nreg < MAX_REGIONS);
    region_model *g = &m->reg[m->nreg++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->r = (ms_region){.id = id,
                       .name = g->name,
                       .has_gpa = has_gpa,
                       .gpa = gpa,
                       .size = pages * ps,
                       .page_size = ps};
    g->pages = pages;
    g->expect = calloc(pages, ps);
    g->got = malloc(pages * ps);
    g->expect_state = calloc(pages, 1);
    g->got_state = calloc(pages, 1);
    assert_true(g->expect && g->got && g->expect_state && g->got_state);
}

static void m_free(model *m)
{
    for (size_t i = 0; i < m->nreg; i++) {
        free(m->reg[i].expect);
        free(m->reg[i].got);
        free(m->reg[i].expect_state);
        free(m->reg[i].got_state);
    }
    memset(m, 0, sizeof *m);
}

static void m_add_to_writer(model *m, ms_writer *w, uint32_t id)
{
    assert_status(ms_writer_add_region(w, &m_region(m, id)->r), 0);
}

/* Records what the writer was handed: @mem (count pages) or zeros. */
static void m_note(model *m, uint32_t id, uint64_t first, uint64_t count, const uint8_t *mem)
{
    region_model *g = m_region(m, id);
    const size_t ps = g->r.page_size;
    assert_true(first + count <= g->pages);
    for (uint64_t i = 0; i < count; i++) {
        uint8_t *dst = g->expect + (first + i) * ps;
        uint8_t state = MS_PAGE_ZERO;
        if (mem) {
            memcpy(dst, mem + i * ps, ps);
            if (!th_all_zero(dst, ps))
                state = MS_PAGE_DATA;
        } else {
            memset(dst, 0, ps);
        }
        g->expect_state[first + i] = state;
        m->totals.pages[state]++;
    }
}

static void m_pages(model *m, ms_writer *w, uint32_t id, uint64_t first, uint64_t count,
                    const uint8_t *mem)
{
    assert_status(ms_writer_pages(w, id, first, count, mem), 0);
    m_note(m, id, first, count, mem);
}

static void m_zero(model *m, ms_writer *w, uint32_t id, uint64_t first, uint64_t count)
{
    assert_status(ms_writer_zero_pages(w, id, first, count), 0);
    m_note(m, id, first, count, NULL);
}

static void m_device(model *m, ms_writer *w, uint32_t instance)
{
    th_buf st = {0};
    th_cbor_head(&st, 4, 2); /* [instance, null] */
    th_cbor_uint(&st, instance);
    th_buf_u8(&st, 0xf6);
    assert_status(ms_writer_device(w, "cpu", instance, "test-cpu", 1, st.data, st.len), 0);
    th_buf_free(&st);
    m->totals.devices++;
}

static void m_finish(model *m, ms_writer *w)
{
    ms_totals t;
    assert_status(ms_writer_finish(w, &t), 0);
    for (unsigned s = 0; s < MS_PAGE_STATE_SLOTS; s++)
        assert_int_equal(t.pages[s], m->totals.pages[s]);
    assert_int_equal(t.devices, m->totals.devices);
    ms_writer_free(w);
}

/* ---------------------------------------------------------------- reading */

typedef struct pages_info {
    uint64_t first; /* first page of the first extent */
    uint32_t extents;
    uint8_t encoding;
    size_t data_size; /* decoded */
} pages_info;

typedef struct read_stats {
    size_t records; /* before END */
    pages_info *pg; /* one per PAGES record */
    size_t npg, pg_cap;
    uint64_t pages_wire; /* header + payload bytes of the PAGES records */
    size_t regions_records;
    ms_totals end;
    uint64_t end_offset;
} read_stats;

static void stats_free(read_stats *st)
{
    free(st->pg);
    memset(st, 0, sizeof *st);
}

static void m_reset_got(model *m)
{
    for (size_t i = 0; i < m->nreg; i++) {
        memset(m->reg[i].got, 0xa5, m->reg[i].pages * m->reg[i].r.page_size);
        memset(m->reg[i].got_state, 0, m->reg[i].pages);
    }
}

static void apply_pages(model *m, const ms_pages *pg)
{
    assert_non_null(pg->region);
    region_model *g = m_region(m, pg->region->id);
    const size_t ps = g->r.page_size;
    assert_int_equal(pg->region->page_size, ps);
    size_t cursor = 0;
    uint64_t next_free = 0;
    for (size_t k = 0; k < pg->extent_count; k++) {
        const ms_extent *x = &pg->extents[k];
        assert_true(x->count >= 1);
        assert_true(x->first >= next_free); /* ascending, section 6.2 */
        assert_true(x->first + x->count <= g->pages);
        assert_int_equal(x->arg, 0);
        next_free = x->first + x->count;
        for (uint32_t i = 0; i < x->count; i++) {
            uint8_t *dst = g->got + (x->first + i) * ps;
            if (x->state == MS_PAGE_DATA) {
                assert_true(cursor + ps <= pg->data_size);
                memcpy(dst, pg->data + cursor, ps);
                cursor += ps;
            } else {
                assert_int_equal(x->state, MS_PAGE_ZERO);
                memset(dst, 0, ps);
            }
            g->got_state[x->first + i] = x->state;
        }
    }
    assert_int_equal(cursor, pg->data_size); /* section 6.3 */
}

static int m_read(model *m, ms_reader *r, read_stats *st)
{
    const ms_record *rec;
    int rc;
    uint64_t expect_offset = 0;
    const ms_header *h;
    assert_status(ms_reader_header(r, &h), 0);
    assert_int_equal(h->major, 1);
    expect_offset = 112;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        assert_int_equal(rec->offset, expect_offset);
        assert_int_equal(rec->index, st->records);
        assert_true(rec->known);
        expect_offset += 16 + rec->length;
        switch (rec->type) {
        case MS_REC_REGIONS:
            st->regions_records++;
            for (size_t i = 0; i < rec->region_count; i++) {
                const ms_region *got = &rec->regions[i];
                const ms_region *want = &m_region(m, got->id)->r;
                assert_string_equal(got->name, want->name);
                assert_int_equal(got->has_gpa, want->has_gpa);
                if (want->has_gpa)
                    assert_int_equal(got->gpa, want->gpa);
                assert_int_equal(got->size, want->size);
                assert_int_equal(got->page_size, want->page_size);
            }
            break;
        case MS_REC_PAGES:
            if (st->npg == st->pg_cap) {
                st->pg_cap = st->pg_cap ? 2 * st->pg_cap : 64;
                st->pg = realloc(st->pg, st->pg_cap * sizeof *st->pg);
                assert_non_null(st->pg);
            }
            st->pg[st->npg++] = (pages_info){
                .first = rec->pages.extents[0].first,
                .extents = (uint32_t)rec->pages.extent_count,
                .encoding = rec->pages.encoding,
                .data_size = rec->pages.data_size,
            };
            st->pages_wire += 16 + rec->length;
            apply_pages(m, &rec->pages);
            break;
        case MS_REC_END:
            st->end = rec->totals;
            st->end_offset = rec->offset;
            break;
        default:
            break;
        }
        if (rec->type != MS_REC_END)
            st->records++;
    }
    return rc;
}

/* Every page handed in comes back exact and in the right state; pages
 * never written are never sent; END agrees with the model. */
static void m_check(const model *m, const read_stats *st)
{
    for (size_t i = 0; i < m->nreg; i++) {
        const region_model *g = &m->reg[i];
        const size_t ps = g->r.page_size;
        for (uint64_t p = 0; p < g->pages; p++) {
            if (g->got_state[p] != g->expect_state[p])
                fail_msg("region %u page %llu: state %u, expected %u", g->r.id,
                         (unsigned long long)p, g->got_state[p], g->expect_state[p]);
            if (g->expect_state[p] && memcmp(g->got + p * ps, g->expect + p * ps, ps) != 0)
                fail_msg("region %u page %llu: contents differ", g->r.id, (unsigned long long)p);
        }
    }
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++)
        assert_int_equal(st->end.pages[s], m->totals.pages[s]);
    assert_int_equal(st->end.devices, m->totals.devices);
    assert_int_equal(st->end.records, st->records);
    assert_int_equal(st->end.bytes, st->end_offset);
}

typedef struct chunk_src {
    const uint8_t *p;
    size_t len, pos;
    uint64_t rng;
} chunk_src;

/* Hands out 1..4099 bytes per call, so that reads split every structure. */
static ssize_t chunk_read(void *ctx, void *buf, size_t len)
{
    chunk_src *c = ctx;
    size_t n = 1 + (size_t)th_rand_below(&c->rng, 4099);
    if (n > len)
        n = len;
    if (n > c->len - c->pos)
        n = c->len - c->pos;
    memcpy(buf, c->p + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

/* Reads @s from memory and through a chunked callback; both must rebuild
 * the model. @out (optional) gets the memory reader's statistics. */
static void verify_stream(model *m, const th_buf *s, read_stats *out)
{
    th_check_chain(s->data, s->len);

    read_stats st = {0};
    m_reset_got(m);
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    assert_non_null(r);
    assert_status(m_read(m, r, &st), 0);
    assert_status(ms_reader_expect_eof(r), 0);
    assert_int_equal(ms_reader_offset(r), s->len);
    ms_reader_free(r);
    m_check(m, &st);

    read_stats st2 = {0};
    m_reset_got(m);
    chunk_src src = {.p = s->data, .len = s->len, .rng = s->len};
    r = ms_reader_new(NULL, chunk_read, &src);
    assert_non_null(r);
    assert_status(m_read(m, r, &st2), 0);
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    m_check(m, &st2);
    assert_int_equal(st.npg, st2.npg);
    assert_int_equal(st.records, st2.records);
    stats_free(&st2);

    if (out)
        *out = st;
    else
        stats_free(&st);
}

static ms_writer *new_writer(th_buf *out, uint32_t batch, int level)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "roundtrip";
    o.writer_version = "0";
    if (batch)
        o.batch_bytes = batch;
    o.compress_level = level;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_non_null(w);
    return w;
}

static uint8_t *pages_alloc(uint64_t n, size_t ps)
{
    uint8_t *p = malloc(n * ps);
    assert_non_null(p);
    return p;
}

/* Writes @n pages of one kind pattern in one call and round-trips them. */
static void simple_roundtrip(const th_page_kind *kinds, size_t nkinds, uint64_t n, uint32_t ps,
                             read_stats *st)
{
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 1234;
    m_declare(&m, 7, "ram", true, 0, n, ps);
    uint8_t *mem = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++)
        th_make_page(mem + i * ps, ps, kinds[i % nkinds], &rng);
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 7);
    m_pages(&m, w, 7, 0, n, mem);
    m_finish(&m, w);
    verify_stream(&m, &s, st);
    free(mem);
    th_buf_free(&s);
    m_free(&m);
}

/* ------------------------------------------------------------------ tests */

static void test_all_zero(void **state)
{
    (void)state;
    static const th_page_kind k[] = {TH_PAGE_ZERO};
    read_stats st;
    simple_roundtrip(k, 1, 64, 4096, &st);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], 64);
    assert_int_equal(st.end.pages[MS_PAGE_DATA], 0);
    assert_int_equal(st.npg, 1);
    assert_int_equal(st.pg[0].extents, 1); /* one run */
    assert_int_equal(st.pg[0].data_size, 0);
    stats_free(&st);
}

static void test_all_data(void **state)
{
    (void)state;
    static const th_page_kind k[] = {TH_PAGE_RANDOM};
    read_stats st;
    simple_roundtrip(k, 1, 64, 4096, &st);
    assert_int_equal(st.end.pages[MS_PAGE_DATA], 64);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], 0);
    stats_free(&st);
}

static void test_alternating(void **state)
{
    (void)state;
    static const th_page_kind k[] = {TH_PAGE_ZERO, TH_PAGE_RANDOM};
    read_stats st;
    simple_roundtrip(k, 2, 64, 4096, &st);
    assert_int_equal(st.end.pages[MS_PAGE_DATA], 32);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], 32);
    size_t extents = 0;
    for (size_t i = 0; i < st.npg; i++)
        extents += st.pg[i].extents;
    assert_int_equal(extents, 64); /* no run spans two pages */
    stats_free(&st);
}

/* A page that is zero but for one byte must be DATA, exact: the zero test
 * may not skip the first, middle or last byte. */
static void single_byte_pages(uint32_t ps, uint64_t n)
{
    static const th_page_kind k[] = {TH_PAGE_BYTE_FIRST, TH_PAGE_ZERO,      TH_PAGE_BYTE_MID,
                                     TH_PAGE_ZERO,       TH_PAGE_BYTE_LAST, TH_PAGE_ZERO};
    read_stats st;
    simple_roundtrip(k, 6, n, ps, &st); /* m_check checks each page's state */
    assert_int_equal(st.end.pages[MS_PAGE_DATA], n / 2);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], n / 2);
    stats_free(&st);
}

static void test_single_byte_4k(void **state)
{
    (void)state;
    single_byte_pages(4096, 60);
}

static void test_single_byte_2m(void **state)
{
    (void)state;
    single_byte_pages(2 * MIB, 6);
}

static th_page_kind random_kind(uint64_t *rng)
{
    uint64_t v = th_rand_below(rng, 100);
    if (v < 35)
        return TH_PAGE_ZERO;
    if (v < 60)
        return TH_PAGE_RANDOM;
    if (v < 85)
        return TH_PAGE_TEXT;
    return (th_page_kind)(TH_PAGE_BYTE_FIRST + v % 3);
}

/* Random mixes written in ascending chunks of random size. */
static void random_mix(uint64_t seed, uint32_t ps, uint64_t n, uint32_t batch, int level)
{
    model m = {0};
    th_buf s = {0};
    uint64_t rng = seed;
    m_declare(&m, 1, "ram", true, 1ull << 32, n, ps);
    uint8_t *mem = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++)
        th_make_page(mem + i * ps, ps, random_kind(&rng), &rng);
    ms_writer *w = new_writer(&s, batch, level);
    m_add_to_writer(&m, w, 1);
    for (uint64_t i = 0; i < n;) {
        uint64_t k = 1 + th_rand_below(&rng, 40);
        if (k > n - i)
            k = n - i;
        m_pages(&m, w, 1, i, k, mem + i * ps);
        i += k;
    }
    m_finish(&m, w);
    verify_stream(&m, &s, NULL);
    free(mem);
    th_buf_free(&s);
    m_free(&m);
}

static void test_random_mixes(void **state)
{
    (void)state;
    random_mix(1, 4096, 512, 0, 0);
    random_mix(2, 4096, 512, 64 * KIB, 0);
    random_mix(3, 8192, 256, 0, 1);
    random_mix(4, 4096, 300, 12288, 3);
}

static void huge_pages(uint32_t batch, int level)
{
    static const th_page_kind k[] = {TH_PAGE_RANDOM,     TH_PAGE_ZERO,     TH_PAGE_TEXT,
                                     TH_PAGE_BYTE_FIRST, TH_PAGE_BYTE_MID, TH_PAGE_BYTE_LAST,
                                     TH_PAGE_ZERO,       TH_PAGE_RANDOM};
    const uint32_t ps = 2 * MIB;
    const uint64_t n = 8;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 99;
    m_declare(&m, 3, "hugeram", true, 1ull << 30, n, ps);
    uint8_t *mem = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++)
        th_make_page(mem + i * ps, ps, k[i], &rng);
    ms_writer *w = new_writer(&s, batch, level);
    m_add_to_writer(&m, w, 3);
    m_pages(&m, w, 3, 0, 5, mem);
    m_pages(&m, w, 3, 5, 3, mem + 5 * ps);
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    assert_int_equal(st.end.pages[MS_PAGE_DATA], 6);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], 2);
    stats_free(&st);
    free(mem);
    th_buf_free(&s);
    m_free(&m);
}

static void test_huge_pages(void **state)
{
    (void)state;
    huge_pages(0, 0);       /* default batch (1 MiB) is smaller than one page */
    huge_pages(8 * MIB, 1); /* several 2 MiB pages per record, compressed */
}

static void test_several_regions(void **state)
{
    (void)state;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 555;
    m_declare(&m, 10, "ram-lo", true, 0, 64, 4096);
    m_declare(&m, 20, "ram-hi", true, 1ull << 32, 32, 16384);
    m_declare(&m, 30, "vram", false, 0, 8, 65536);
    m_declare(&m, 40, "rom", true, 1 * MIB, 4, 4096); /* declared mid-stream */
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 10);
    m_add_to_writer(&m, w, 20);
    m_add_to_writer(&m, w, 30);
    uint8_t *buf = pages_alloc(8, 65536);
    for (int step = 0; step < 60; step++) {
        if (step == 30) {
            m_add_to_writer(&m, w, 40);
            m_device(&m, w, 0);
        }
        size_t ri = (size_t)th_rand_below(&rng, step >= 30 ? 4 : 3);
        region_model *g = &m.reg[ri];
        uint64_t first = th_rand_below(&rng, g->pages);
        uint64_t count = 1 + th_rand_below(&rng, g->pages - first);
        if (count > 8)
            count = 8;
        for (uint64_t i = 0; i < count; i++)
            th_make_page(buf + i * g->r.page_size, g->r.page_size, random_kind(&rng), &rng);
        m_pages(&m, w, g->r.id, first, count, buf);
    }
    m_device(&m, w, 1);
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    assert_int_equal(st.regions_records, 2);
    stats_free(&st);
    free(buf);
    th_buf_free(&s);
    m_free(&m);
}

/* Pages in shuffled order, then rewritten: the final state is the last copy
 * of each page (section 2), and END counts every copy. */
static void test_out_of_order_and_rewrites(void **state)
{
    (void)state;
    const uint64_t n = 96;
    const uint32_t ps = 4096;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 2024;
    m_declare(&m, 5, "ram", true, 0, n, ps);
    uint64_t order[12];
    for (int i = 0; i < 12; i++)
        order[i] = (uint64_t)i;
    for (int i = 11; i > 0; i--) {
        uint64_t j = th_rand_below(&rng, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint8_t *buf = pages_alloc(8, ps);
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 5);
    for (int c = 0; c < 12; c++) { /* 12 chunks of 8 pages, shuffled */
        for (int i = 0; i < 8; i++)
            th_make_page(buf + (size_t)i * ps, ps, random_kind(&rng), &rng);
        m_pages(&m, w, 5, order[c] * 8, 8, buf);
    }
    for (int r = 0; r < 40; r++) { /* rewrites, some as zero, some to zero */
        uint64_t first = th_rand_below(&rng, n);
        uint64_t count = 1 + th_rand_below(&rng, 8);
        if (count > n - first)
            count = n - first;
        if (r % 5 == 4) {
            m_zero(&m, w, 5, first, count);
            continue;
        }
        for (uint64_t i = 0; i < count; i++)
            th_make_page(buf + i * ps, ps, random_kind(&rng), &rng);
        m_pages(&m, w, 5, first, count, buf);
    }
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    uint64_t copies = st.end.pages[MS_PAGE_DATA] + st.end.pages[MS_PAGE_ZERO];
    assert_true(copies > n); /* rewritten pages count twice */
    stats_free(&st);
    free(buf);
    th_buf_free(&s);
    m_free(&m);
}

static void test_pagesv(void **state)
{
    (void)state;
    const uint32_t ps = 4096;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 77;
    m_declare(&m, 1, "ram", false, 0, 64, ps);
    uint8_t *a = pages_alloc(5, ps), *b = pages_alloc(3, ps), *c = pages_alloc(4, ps);
    for (int i = 0; i < 5; i++)
        th_make_page(a + (size_t)i * ps, ps, i == 2 ? TH_PAGE_ZERO : TH_PAGE_RANDOM, &rng);
    for (int i = 0; i < 3; i++)
        th_make_page(b + (size_t)i * ps, ps, TH_PAGE_TEXT, &rng);
    for (int i = 0; i < 4; i++)
        th_make_page(c + (size_t)i * ps, ps, i % 2 ? TH_PAGE_ZERO : TH_PAGE_BYTE_LAST, &rng);
    struct iovec iov[] = {
        {a, 3 * ps},          /* a[0..2] */
        {a + 3 * ps, 2 * ps}, /* a[3..4]: adjacent to the previous iovec */
        {NULL, 0},            /* empty iovecs are allowed */
        {c, 4 * ps},
        {b, 3 * ps},
    };
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 1);
    assert_status(ms_writer_pagesv(w, 1, 10, iov, 5), 0);
    m_note(&m, 1, 10, 5, a);
    m_note(&m, 1, 15, 4, c);
    m_note(&m, 1, 19, 3, b);
    /* the same buffers again, elsewhere, in another order */
    struct iovec iov2[] = {{b, ps}, {a, 5 * ps}};
    assert_status(ms_writer_pagesv(w, 1, 40, iov2, 2), 0);
    m_note(&m, 1, 40, 1, b);
    m_note(&m, 1, 41, 5, a);
    m_finish(&m, w);
    verify_stream(&m, &s, NULL);

    /* An iovec that is not a whole number of pages is refused. */
    th_buf s2 = {0};
    w = new_writer(&s2, 0, 0);
    m_add_to_writer(&m, w, 1);
    struct iovec bad[] = {{a, ps}, {b, ps / 2}};
    assert_status(ms_writer_pagesv(w, 1, 0, bad, 2), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "multiple");
    assert_status(ms_writer_finish(w, NULL), MS_EINVAL); /* sticky */
    ms_writer_free(w);
    th_buf_free(&s2);

    free(a);
    free(b);
    free(c);
    th_buf_free(&s);
    m_free(&m);
}

static void test_zero_pages(void **state)
{
    (void)state;
    const uint32_t ps = 4096;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 5;
    m_declare(&m, 2, "ram", true, 0, 256, ps);
    uint8_t *buf = pages_alloc(16, ps);
    for (int i = 0; i < 16; i++)
        th_make_page(buf + (size_t)i * ps, ps, TH_PAGE_RANDOM, &rng);
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 2);
    m_zero(&m, w, 2, 0, 100);
    m_pages(&m, w, 2, 100, 16, buf);
    m_zero(&m, w, 2, 116, 140);
    m_zero(&m, w, 2, 104, 4);                            /* data pages become zero again */
    m_pages(&m, w, 2, 50, 2, buf);                       /* zero pages become data */
    assert_status(ms_writer_zero_pages(w, 2, 10, 0), 0); /* empty: nothing */
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    assert_int_equal(st.end.pages[MS_PAGE_ZERO], 100 + 140 + 4);
    assert_int_equal(st.end.pages[MS_PAGE_DATA], 16 + 2);
    stats_free(&st);
    free(buf);
    th_buf_free(&s);
    m_free(&m);
}

/* Text compresses and is stored as zstd; random bytes do not shrink and
 * are stored raw (section 6.3: SHOULD store raw). */
static void compress_level(int level)
{
    const uint32_t ps = 4096;
    const uint64_t n = 64;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 31 + (uint64_t)level;
    m_declare(&m, 1, "ram", true, 0, 3 * n, ps);
    uint8_t *text = pages_alloc(n, ps), *rnd = pages_alloc(n, ps), *mixed = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++) {
        th_make_page(text + i * ps, ps, TH_PAGE_TEXT, &rng);
        th_make_page(rnd + i * ps, ps, TH_PAGE_RANDOM, &rng);
        th_make_page(mixed + i * ps, ps, i % 3 ? TH_PAGE_TEXT : TH_PAGE_ZERO, &rng);
    }
    ms_writer *w = new_writer(&s, 0, level);
    m_add_to_writer(&m, w, 1);
    m_pages(&m, w, 1, 0, n, text);
    assert_status(ms_writer_flush(w), 0);
    m_pages(&m, w, 1, n, n, rnd);
    assert_status(ms_writer_flush(w), 0);
    m_pages(&m, w, 1, 2 * n, n, mixed);
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    assert_true(st.npg >= 3);
    for (size_t i = 0; i < st.npg; i++) {
        bool random = st.pg[i].first >= n && st.pg[i].first < 2 * n;
        assert_int_equal(st.pg[i].encoding, random ? MS_ENCODING_RAW : MS_ENCODING_ZSTD);
    }
    /* 192 pages of which 64 random: the stream is well under the raw size */
    assert_true(s.len < (2 * n + 8) * ps);
    printf("level %d: %llu pages -> %zu stream bytes\n", level, (unsigned long long)(3 * n), s.len);
    stats_free(&st);
    free(text);
    free(rnd);
    free(mixed);
    th_buf_free(&s);
    m_free(&m);
}

static void test_compress_level_1(void **state)
{
    (void)state;
    compress_level(1);
}

static void test_compress_level_3(void **state)
{
    (void)state;
    compress_level(3);
}

static void test_small_batches(void **state)
{
    (void)state;
    const uint32_t ps = 4096, batch = 8192;
    const uint64_t n = 200;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 8;
    m_declare(&m, 1, "ram", true, 0, n, ps);
    uint8_t *mem = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++)
        th_make_page(mem + i * ps, ps, TH_PAGE_RANDOM, &rng);
    ms_writer *w = new_writer(&s, batch, 0);
    m_add_to_writer(&m, w, 1);
    m_pages(&m, w, 1, 0, n, mem);
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    for (size_t i = 0; i < st.npg; i++)
        assert_true(st.pg[i].data_size <= batch);
    assert_true(st.npg >= n * ps / batch);
    stats_free(&st);

    /* a batch smaller than a page still carries one page per record */
    th_buf s2 = {0};
    model m2 = {0};
    m_declare(&m2, 1, "ram", true, 0, 16, ps);
    w = new_writer(&s2, 100, 0);
    m_add_to_writer(&m2, w, 1);
    m_pages(&m2, w, 1, 0, 16, mem);
    m_finish(&m2, w);
    verify_stream(&m2, &s2, &st);
    assert_int_equal(st.npg, 16);
    stats_free(&st);
    th_buf_free(&s2);
    m_free(&m2);

    free(mem);
    th_buf_free(&s);
    m_free(&m);
}

/* One page per call from a buffer the caller reuses at once: the writer
 * must still batch (fewer records than pages) and must have copied what it
 * keeps (writer.h: "when the call returns ... the caller may change its
 * memory"). */
static void one_at_a_time(uint32_t batch, int level, uint64_t max_call)
{
    const uint32_t ps = 4096;
    const uint64_t n = 256;
    model m = {0};
    th_buf s = {0};
    uint64_t rng = 4242 + batch + (uint64_t)level;
    m_declare(&m, 1, "ram", true, 0, n, ps);
    uint8_t *buf = pages_alloc(max_call, ps);
    ms_writer *w = new_writer(&s, batch, level);
    m_add_to_writer(&m, w, 1);
    for (uint64_t i = 0; i < n;) {
        uint64_t k = max_call == 1 ? 1 : 1 + th_rand_below(&rng, max_call);
        if (k > n - i)
            k = n - i;
        for (uint64_t j = 0; j < k; j++)
            th_make_page(buf + j * ps, ps, random_kind(&rng), &rng);
        if (k >= 2 && i % 2) { /* the same through ms_writer_pagesv, two iovecs */
            struct iovec iov[2] = {{buf, ps}, {buf + ps, (k - 1) * ps}};
            assert_status(ms_writer_pagesv(w, 1, i, iov, 2), 0);
            m_note(&m, 1, i, k, buf);
        } else {
            m_pages(&m, w, 1, i, k, buf);
        }
        memset(buf, 0xee, k * ps); /* the caller reuses its memory at once */
        if (i % 64 == 0)
            m_device(&m, w, (uint32_t)i); /* ends a batch in the middle */
        i += k;
    }
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    printf("batch %u, level %d, calls of <= %llu pages: %zu PAGES records for %llu pages\n", batch,
           level, (unsigned long long)max_call, st.npg, (unsigned long long)n);
    assert_true(st.npg < n);
    if (max_call == 1)
        assert_true(st.npg <= n / 16);
    stats_free(&st);
    free(buf);
    th_buf_free(&s);
    m_free(&m);
}

static void test_page_at_a_time(void **state)
{
    (void)state;
    one_at_a_time(0, 0, 1);
}

static void test_caller_memory_reuse(void **state)
{
    (void)state;
    one_at_a_time(0, 1, 1);         /* staged, then compressed at emit time */
    one_at_a_time(64 * KIB, 0, 12); /* some calls staged, some written at once */
    one_at_a_time(64 * KIB, 3, 12);
    one_at_a_time(32 * KIB, 0, 64); /* calls larger than a batch */
}

/* Many separate zero runs: more extents than one record takes. */
static void test_many_extents(void **state)
{
    (void)state;
    const uint64_t n = 20000;
    model m = {0};
    th_buf s = {0};
    m_declare(&m, 1, "ram", true, 0, n, 4096);
    ms_writer *w = new_writer(&s, 0, 0);
    m_add_to_writer(&m, w, 1);
    for (uint64_t i = 0; i < n; i += 2)
        m_zero(&m, w, 1, i, 1);
    m_finish(&m, w);
    read_stats st;
    verify_stream(&m, &s, &st);
    size_t extents = 0;
    for (size_t i = 0; i < st.npg; i++)
        extents += st.pg[i].extents;
    assert_int_equal(extents, n / 2);
    stats_free(&st);
    th_buf_free(&s);
    m_free(&m);
}

/* ------------------------------------------------------------- fd / pipe */

typedef struct pipe_job {
    model *m;
    int fd;
    uint8_t *mem;
    int rc;
} pipe_job;

static void *pipe_writer(void *arg)
{
    pipe_job *j = arg;
    model *m = j->m;
    const uint32_t ps = 4096;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.machine = "pipe-test";
    o.batch_bytes = 256 * KIB;
    ms_writer *w = ms_writer_new_fd(&o, j->fd);
    int rc = w ? 0 : MS_ENOMEM;
    if (!rc)
        rc = ms_writer_add_region(w, &m->reg[0].r);
    for (uint64_t i = 0; !rc && i < m->reg[0].pages; i += 32) {
        rc = ms_writer_pages(w, 1, i, 32, j->mem + i * ps);
        if (!rc)
            m_note(m, 1, i, 32, j->mem + i * ps);
    }
    if (!rc) {
        static const uint8_t dstate[] = {0xa1, 0x00, 0x20}; /* {0: -1} */
        rc = ms_writer_device(w, "dev", 0, "s", 1, dstate, sizeof dstate);
        m->totals.devices += rc == 0;
    }
    if (!rc)
        rc = ms_writer_finish(w, NULL);
    ms_writer_free(w);
    close(j->fd);
    j->rc = rc;
    return NULL;
}

static void test_fd_pipe(void **state)
{
    (void)state;
    const uint64_t n = 1024; /* 4 MiB: many times a pipe's buffer */
    const uint32_t ps = 4096;
    model m = {0};
    uint64_t rng = 6;
    m_declare(&m, 1, "ram", true, 0, n, ps);
    uint8_t *mem = pages_alloc(n, ps);
    for (uint64_t i = 0; i < n; i++)
        th_make_page(mem + i * ps, ps, random_kind(&rng), &rng);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pipe_job job = {.m = &m, .fd = fds[1], .mem = mem};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pipe_writer, &job), 0);

    m_reset_got(&m);
    read_stats st = {0};
    ms_reader *r = ms_reader_new_fd(NULL, fds[0]);
    assert_non_null(r);
    int rc = m_read(&m, r, &st);
    int eof = ms_reader_expect_eof(r);
    ms_reader_free(r);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(fds[0]);
    assert_status(job.rc, 0);
    assert_status(rc, 0);
    assert_status(eof, 0);
    m_check(&m, &st);
    stats_free(&st);
    free(mem);
    m_free(&m);
}

/* -------------------------------------------------------- 1 GiB of zeros */

/* Sums the PAGES records' bytes and checks that every page came back ZERO. */
static uint64_t zero_region_cost(const th_buf *s, uint64_t pages)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_record *rec;
    uint64_t cost = 0, covered = 0;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type != MS_REC_PAGES)
            continue;
        cost += 16 + rec->length;
        for (size_t k = 0; k < rec->pages.extent_count; k++) {
            assert_int_equal(rec->pages.extents[k].state, MS_PAGE_ZERO);
            covered += rec->pages.extents[k].count;
        }
    }
    assert_status(rc, 0);
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
    assert_int_equal(covered, pages);
    return cost;
}

static void test_zero_gib(void **state)
{
    (void)state;
    const uint64_t gib = 1024ull * MIB;
    const size_t chunk = 4 * MIB;
    uint8_t *zero = calloc(1, chunk);
    assert_non_null(zero);
    static const uint32_t sizes[] = {4096, 2 * MIB};
    for (int how = 0; how < 3; how++) {
        uint32_t ps = how == 2 ? sizes[1] : sizes[0];
        th_buf s = {0};
        ms_writer *w = new_writer(&s, 0, 0);
        ms_region reg = {.id = 1,
                         .name = "ram",
                         .has_gpa = true,
                         .gpa = 1ull << 32,
                         .size = gib,
                         .page_size = ps};
        assert_status(ms_writer_add_region(w, &reg), 0);
        if (how == 0) {
            assert_status(ms_writer_zero_pages(w, 1, 0, gib / ps), 0);
        } else {
            /* zero memory, handed in: 256 iovecs over one 4 MiB buffer */
            struct iovec iov[256];
            for (int i = 0; i < 256; i++)
                iov[i] = (struct iovec){zero, chunk};
            assert_status(ms_writer_pagesv(w, 1, 0, iov, 256), 0);
        }
        ms_totals t;
        assert_status(ms_writer_finish(w, &t), 0);
        ms_writer_free(w);
        assert_int_equal(t.pages[MS_PAGE_ZERO], gib / ps);
        uint64_t cost = zero_region_cost(&s, gib / ps);
        printf("1 GiB zero region, %u-byte pages, %s: PAGES records total %llu bytes "
               "(stream %zu bytes)\n",
               ps, how == 0 ? "ms_writer_zero_pages" : "zero memory", (unsigned long long)cost,
               s.len);
        assert_true(cost < 100);
        th_buf_free(&s);
    }
    free(zero);
}

/* ------------------------------------------------------------ wire layout */

/* The bytes follow FORMAT.md sections 3 and 4, and the same calls give the
 * same bytes (writer.h: "The writer is deterministic"). */
static void test_wire_layout(void **state)
{
    (void)state;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "layout-vmm";
    o.writer_version = "9.8.7";
    o.page_size = 8192;
    o.machine = "virt";
    th_buf a = {0}, b = {0};
    th_write_small_stream(&a, NULL);
    th_write_small_stream(&b, NULL);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    th_buf_free(&a);
    th_buf_free(&b);

    ms_writer *w = ms_writer_new(&o, th_sink_write, &a);
    assert_non_null(w);
    ms_region reg = {.id = 9, .name = "r", .size = 16 * 8192, .page_size = 8192};
    assert_status(ms_writer_add_region(w, &reg), 0);
    uint8_t *mem = pages_alloc(16, 8192);
    uint64_t rng = 1;
    for (int i = 0; i < 16; i++)
        th_make_page(mem + (size_t)i * 8192, 8192, TH_PAGE_RANDOM, &rng);
    assert_status(ms_writer_pages(w, 9, 0, 16, mem), 0); /* > 4 KiB payload */
    assert_status(ms_writer_finish(w, NULL), 0);
    assert_int_equal(ms_writer_bytes_written(w), a.len);
    ms_writer_free(w);
    free(mem);

    static const uint8_t magic[8] = {0x89, 0x4d, 0x49, 0x47, 0x53, 0x0d, 0x0a, 0x1a};
    const uint8_t *p = a.data;
    assert_memory_equal(p, magic, 8);
    assert_int_equal(th_get16(p + 8), 1);
    assert_int_equal(th_get16(p + 10), 1); /* uses nothing of 1.2 (FORMAT.md 11.2) */
    assert_int_equal(th_get32(p + 12), 112);
    assert_int_equal(th_get64(p + 16), 0); /* no feature unless asked for */
    assert_int_equal(th_get64(p + 24), 0);
    assert_int_equal(th_get32(p + 32), 8192);
    assert_int_equal(th_get32(p + 36), 0);
    assert_string_equal((const char *)p + 40, "layout-vmm");
    assert_true(th_all_zero(p + 40 + 10, 22));
    assert_string_equal((const char *)p + 72, "9.8.7");
    assert_true(th_all_zero(p + 72 + 5, 27));

    assert_int_equal(th_check_chain(a.data, a.len), 4); /* INFO REGIONS PAGES END */
    th_stream ts;
    th_stream_parse(&ts, a.data, a.len);
    static const uint16_t types[] = {MS_REC_INFO, MS_REC_REGIONS, MS_REC_PAGES, MS_REC_END};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ts.rec[i].type, types[i]);
        /* section 4.3: INFO without MUST_UNDERSTAND, the others with it */
        assert_int_equal(ts.rec[i].flags, i == 0 ? 0 : MS_RECORD_MUST_UNDERSTAND);
    }
    /* END's payload is exactly what section 8 derives from the records */
    th_buf end = {0};
    ms_totals t;
    th_stream_totals(&ts, 3, &t);
    th_cbor_end(&end, &t);
    assert_int_equal(end.len, ts.rec[3].payload.len);
    assert_memory_equal(end.data, ts.rec[3].payload.data, end.len);
    th_buf_free(&end);
    th_stream_free(&ts);
    th_buf_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_zero),
        cmocka_unit_test(test_all_data),
        cmocka_unit_test(test_alternating),
        cmocka_unit_test(test_single_byte_4k),
        cmocka_unit_test(test_single_byte_2m),
        cmocka_unit_test(test_random_mixes),
        cmocka_unit_test(test_huge_pages),
        cmocka_unit_test(test_several_regions),
        cmocka_unit_test(test_out_of_order_and_rewrites),
        cmocka_unit_test(test_pagesv),
        cmocka_unit_test(test_zero_pages),
        cmocka_unit_test(test_compress_level_1),
        cmocka_unit_test(test_compress_level_3),
        cmocka_unit_test(test_small_batches),
        cmocka_unit_test(test_page_at_a_time),
        cmocka_unit_test(test_caller_memory_reuse),
        cmocka_unit_test(test_many_extents),
        cmocka_unit_test(test_fd_pipe),
        cmocka_unit_test(test_zero_gib),
        cmocka_unit_test(test_wire_layout),
    };
    return th_run_tests(tests);
}
