/*
 * Comparing two streams by their final state (ms_diff), over the public
 * API with streams the public writer makes: each kind of difference is
 * reported once, in order, with the right values; the same state written
 * differently compares equal; a damaged side is reported with the side, the
 * input and the reader's offset; the handle's states, limits and stops.
 */
#include <stdlib.h>

#include "helpers.h"

#define PS 4096u

/* ------------------------------------------------------------- collecting */

typedef struct item {
    ms_diff_kind kind;
    ms_diff_side side;
    char field[64];
    ms_diff_value_type ta, tb;
    char a[64], b[64]; /* TEXT, VERSION; CBOR in diagnostic notation */
    uint64_t na, nb;
    char region[32], region_b[32];
    uint64_t first, count, pages, ranges;
    uint32_t unit;
    unsigned sa, sb;
    uint64_t data, zero, missing; /* REGION_ONLY */
    uint64_t gfn;
    uint32_t okind, okind_b;
    char device[64], device_b[64];
    uint32_t instance;
} item;

typedef struct log {
    item it[64];
    size_t n;
    size_t stop_at; /* return -42 at this item; SIZE_MAX: never */
} log_t;

static void value(const ms_diff_value *v, ms_diff_value_type *t, char *text, uint64_t *num)
{
    *t = v->type;
    *num = v->num;
    text[0] = 0;
    if (v->type == MS_DIFF_TEXT || v->type == MS_DIFF_VERSION)
        snprintf(text, 64, "%s", v->text);
    if (v->type == MS_DIFF_CBOR)
        assert_true(ms_cbor_format(v->cbor, v->cbor_size, MS_CBOR_DIAG, 0, text, 64) >= 0);
}

static int collect(void *ctx, const ms_diff_item *d)
{
    log_t *l = ctx;
    assert_true(l->n < 64);
    if (l->n == l->stop_at)
        return -42;
    item *it = &l->it[l->n++];
    memset(it, 0, sizeof *it);
    it->kind = d->kind;
    it->side = d->side;
    if (d->field)
        snprintf(it->field, sizeof it->field, "%s", d->field);
    value(&d->a, &it->ta, it->a, &it->na);
    value(&d->b, &it->tb, it->b, &it->nb);
    if (d->region)
        snprintf(it->region, sizeof it->region, "%s", d->region->name);
    if (d->region_b)
        snprintf(it->region_b, sizeof it->region_b, "%s", d->region_b->name);
    it->first = d->first;
    it->count = d->count;
    it->unit = d->unit;
    it->sa = d->state_a;
    it->sb = d->state_b;
    it->pages = d->pages;
    it->ranges = d->ranges;
    if (d->states) {
        it->data = d->states[MS_PAGE_DATA];
        it->zero = d->states[MS_PAGE_ZERO];
        it->missing = d->states[MS_PAGEMAP_MISSING];
    }
    if (d->overlay) {
        it->gfn = d->overlay->gfn;
        it->okind = d->overlay->kind;
    }
    if (d->overlay_b)
        it->okind_b = d->overlay_b->kind;
    if (d->device) {
        snprintf(it->device, sizeof it->device, "%s", d->device->path);
        it->instance = d->device->instance;
        assert_non_null(d->device->state);
    }
    if (d->device_b)
        snprintf(it->device_b, sizeof it->device_b, "%s", d->device_b->path);
    return 0;
}

/* Loads @a and @b and compares them; returns ms_diff_compare()'s value. */
static int diff(const th_buf *a, const th_buf *b, log_t *l, ms_diff_totals *totals)
{
    ms_diff *d = ms_diff_new(NULL);
    assert_non_null(d);
    ms_reader *ra = ms_reader_new_memory(NULL, a->data, a->len);
    ms_reader *rb = ms_reader_new_memory(NULL, b->data, b->len);
    int rc = ms_diff_load(d, MS_DIFF_A, ra, "a.mig");
    if (rc)
        fail_msg("%s", ms_diff_errmsg(d));
    rc = ms_diff_load(d, MS_DIFF_B, rb, "b.mig");
    if (rc)
        fail_msg("%s", ms_diff_errmsg(d));
    memset(l, 0, sizeof *l);
    l->stop_at = SIZE_MAX;
    rc = ms_diff_compare(d, collect, l);
    if (rc < 0)
        fail_msg("%s", ms_diff_errmsg(d));
    *totals = *ms_diff_get_totals(d);
    uint64_t n =
        totals->metadata + totals->regions + totals->ranges + totals->devices + totals->overlays;
    assert_int_equal((uint64_t)rc, n);
    ms_reader_free(ra);
    ms_reader_free(rb);
    ms_diff_free(d);
    return rc;
}

/* ---------------------------------------------------------------- streams */

static ms_writer *begin(th_buf *out, const char *name, uint64_t features, uint32_t batch, int level)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = name;
    o.writer_version = "1";
    o.features = features;
    if (batch)
        o.batch_bytes = batch;
    o.compress_level = level;
    out->len = 0;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    assert_non_null(w);
    assert_status(ms_writer_status(w), 0);
    return w;
}

static void end(ms_writer *w)
{
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static ms_region region(uint32_t id, const char *name, uint64_t pages, uint32_t ps)
{
    return (ms_region){.id = id, .name = name, .size = pages * ps, .page_size = ps};
}

/* A guest of 64 text-like and random pages with zero runs and a device. */
static void guest(th_buf *out, uint32_t batch, int level)
{
    ms_writer *w = begin(out, "t", 0, batch, level);
    const ms_region r = region(0, "ram", 64, PS);
    assert_status(ms_writer_add_region(w, &r), 0);
    uint8_t *mem = calloc(64, PS);
    uint64_t rng = 99;
    for (int i = 0; i < 64; i++)
        if (i % 5)
            th_make_page(mem + (size_t)i * PS, PS, i % 2 ? TH_PAGE_TEXT : TH_PAGE_RANDOM, &rng);
    /* Pages sent twice: only the last copy counts. */
    assert_status(ms_writer_pages(w, 0, 0, 64, mem), 0);
    assert_status(ms_writer_pages(w, 0, 8, 8, mem), 0);
    assert_status(ms_writer_pages(w, 0, 8, 8, mem + 8 * PS), 0);
    const uint8_t state[] = {0xa1, 0x00, 0x01};
    assert_status(ms_writer_device(w, "cpu/0", 0, "cpu", 1, state, sizeof state), 0);
    end(w);
    free(mem);
}

/* ------------------------------------------------------------------ tests */

static void test_same(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    guest(&a, 0, 0);
    assert_int_equal(diff(&a, &a, &l, &t), 0);
    assert_int_equal(l.n, 0);
    /* Batched and compressed otherwise: other bytes, the same state. */
    guest(&b, 2 * PS, 3);
    assert_true(a.len != b.len);
    assert_int_equal(diff(&a, &b, &l, &t), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(t.metadata + t.regions + t.pages + t.ranges + t.devices + t.overlays, 0);
    th_buf_free(&a);
    th_buf_free(&b);
}

static void test_meta(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    ms_writer *w = begin(&a, "vmm-a", 0, 0, 0);
    end(w);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "vmm-b";
    o.writer_version = "1";
    o.machine = "pc-q35";
    o.features = MS_FEATURE_FILL;
    b.len = 0;
    w = ms_writer_new(&o, th_sink_write, &b);
    end(w);
    assert_int_equal(diff(&a, &b, &l, &t), 3);
    assert_int_equal(t.metadata, 3);
    assert_int_equal(l.it[0].kind, MS_DIFF_META);
    assert_string_equal(l.it[0].field, "required_features");
    assert_int_equal(l.it[0].ta, MS_DIFF_UINT);
    assert_int_equal(l.it[0].na, 0);
    assert_int_equal(l.it[0].nb, MS_FEATURE_FILL);
    assert_string_equal(l.it[1].field, "writer_name");
    assert_int_equal(l.it[1].ta, MS_DIFF_TEXT);
    assert_string_equal(l.it[1].a, "vmm-a");
    assert_string_equal(l.it[1].b, "vmm-b");
    assert_string_equal(l.it[2].field, "machine");
    assert_int_equal(l.it[2].ta, MS_DIFF_NONE);
    assert_int_equal(l.it[2].tb, MS_DIFF_TEXT);
    assert_string_equal(l.it[2].b, "pc-q35");
    th_buf_free(&a);
    th_buf_free(&b);
}

static void test_regions(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    ms_writer *w = begin(&a, "t", 0, 0, 0);
    ms_region ra[] = {region(0, "ram", 16, PS), region(1, "vram", 4, PS),
                      region(2, "only-a", 4, PS), region(4, "extra", 4, PS)};
    ra[0].has_gpa = true;
    for (int i = 0; i < 4; i++)
        assert_status(ms_writer_add_region(w, &ra[i]), 0);
    uint8_t mem[2 * PS];
    uint64_t rng = 1;
    th_rand_fill(&rng, mem, sizeof mem);
    assert_status(ms_writer_pages(w, 4, 0, 2, mem), 0);
    assert_status(ms_writer_zero_pages(w, 4, 3, 1), 0);
    end(w);
    w = begin(&b, "t", 0, 0, 0);
    ms_region rb[] = {region(0, "ram", 32, PS), region(5, "vram", 4, PS), region(2, "other", 4, PS),
                      region(3, "rom", 2, PS)};
    rb[0].has_gpa = true;
    rb[0].gpa = 0x100000;
    for (int i = 0; i < 4; i++)
        assert_status(ms_writer_add_region(w, &rb[i]), 0);
    end(w);
    assert_int_equal(diff(&a, &b, &l, &t), 5);
    assert_int_equal(t.regions, 5);
    item *it = l.it;
    assert_int_equal(it[0].kind, MS_DIFF_REGION);
    assert_string_equal(it[0].field, "size");
    assert_string_equal(it[0].region, "ram");
    assert_int_equal(it[0].na, 16 * PS);
    assert_int_equal(it[0].nb, 32 * PS);
    assert_string_equal(it[1].field, "gpa");
    assert_int_equal(it[1].ta, MS_DIFF_ADDRESS);
    assert_int_equal(it[1].na, 0);
    assert_int_equal(it[1].nb, 0x100000);
    /* vram is matched by name: its ids differ, which is not reported. */
    assert_int_equal(it[2].kind, MS_DIFF_REGION);
    assert_string_equal(it[2].field, "name");
    assert_string_equal(it[2].region, "only-a");
    assert_string_equal(it[2].region_b, "other");
    assert_string_equal(it[2].b, "other");
    assert_int_equal(it[3].kind, MS_DIFF_REGION_ONLY);
    assert_int_equal(it[3].side, MS_DIFF_A);
    assert_string_equal(it[3].region, "extra");
    assert_int_equal(it[3].data, 2);
    assert_int_equal(it[3].zero, 1);
    assert_int_equal(it[3].missing, 1);
    assert_int_equal(it[4].kind, MS_DIFF_REGION_ONLY);
    assert_int_equal(it[4].side, MS_DIFF_B);
    assert_string_equal(it[4].region, "rom");
    assert_int_equal(it[4].missing, 2);
    th_buf_free(&a);
    th_buf_free(&b);
}

/* Every kind of page difference, ranges merged where they continue. */
static void test_pages(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    const uint64_t f = MS_FEATURE_FILL | MS_FEATURE_DISCARDED | MS_FEATURE_IN_PLACE;
    const ms_region r = region(0, "ram", 64, PS);
    uint8_t x[4 * PS], y[PS];
    uint64_t rng = 5;
    th_rand_fill(&rng, x, sizeof x);
    th_rand_fill(&rng, y, sizeof y);

    ms_writer *w = begin(&a, "t", f, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_pages(w, 0, 0, 4, x), 0);   /* same on both sides */
    assert_status(ms_writer_pages(w, 0, 4, 1, x), 0);   /* data differs */
    assert_status(ms_writer_zero_pages(w, 0, 5, 2), 0); /* zero -> data */
    assert_status(ms_writer_pages(w, 0, 10, 1, y), 0);  /* data -> discarded */
    assert_status(ms_writer_in_place(w, 0, 12, 4, 1 << 20), 0);
    assert_status(ms_writer_fill_pages(w, 0, 20, 4, 0xcc), 0);
    end(w);

    w = begin(&b, "t", f, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_pages(w, 0, 0, 4, x), 0);
    assert_status(ms_writer_pages(w, 0, 4, 1, y), 0);
    assert_status(ms_writer_pages(w, 0, 5, 2, x), 0);
    assert_status(ms_writer_zero_pages(w, 0, 7, 3), 0); /* missing -> zero */
    assert_status(ms_writer_discard(w, 0, 10, 1), 0);
    assert_status(ms_writer_in_place(w, 0, 12, 2, 1 << 20), 0);
    assert_status(ms_writer_in_place(w, 0, 14, 2, 2 << 20), 0); /* address differs */
    assert_status(ms_writer_fill_pages(w, 0, 20, 2, 0xcc), 0);  /* FILL: the same */
    assert_status(ms_writer_fill_pages(w, 0, 22, 1, 0xdd), 0);  /* another word */
    assert_status(ms_writer_pages(w, 0, 23, 1, y), 0);          /* FILL is DATA: differs */
    end(w);

    assert_int_equal(diff(&a, &b, &l, &t), 6);
    static const struct {
        uint64_t first, count;
        unsigned a, b;
    } want[] = {
        {4, 1, MS_PAGE_DATA, MS_PAGE_DATA},          {5, 2, MS_PAGE_ZERO, MS_PAGE_DATA},
        {7, 3, MS_PAGEMAP_MISSING, MS_PAGE_ZERO},    {10, 1, MS_PAGE_DATA, MS_PAGE_DISCARDED},
        {14, 2, MS_PAGE_IN_PLACE, MS_PAGE_IN_PLACE}, {22, 2, MS_PAGE_DATA, MS_PAGE_DATA},
    };
    for (size_t i = 0; i < 6; i++) {
        const item *it = &l.it[i];
        assert_int_equal(it->kind, MS_DIFF_PAGES);
        assert_string_equal(it->region, "ram");
        assert_string_equal(it->region_b, "ram");
        assert_int_equal(it->unit, PS);
        assert_int_equal(it->first, want[i].first);
        assert_int_equal(it->count, want[i].count);
        assert_int_equal(it->sa, want[i].a);
        assert_int_equal(it->sb, want[i].b);
    }
    assert_int_equal(l.n, 7);
    assert_int_equal(l.it[6].kind, MS_DIFF_PAGES_TOTAL);
    assert_int_equal(l.it[6].pages, 11);
    assert_int_equal(l.it[6].ranges, 6);
    assert_int_equal(t.pages, 11);
    assert_int_equal(t.ranges, 6);
    th_buf_free(&a);
    th_buf_free(&b);
}

/* Regions of other page sizes are compared in units of the smaller one; a
 * unit of a larger DATA page whose bytes are all zero counts as ZERO. */
static void test_page_sizes(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    uint8_t big[2 * 8192] = {0}, small[4 * PS];
    uint64_t rng = 8;
    th_rand_fill(&rng, big, PS);          /* page 0: random, then zeros */
    th_rand_fill(&rng, big + 8192, 8192); /* page 1: random */
    memcpy(small, big, sizeof small);
    small[3 * PS + 17] ^= 1; /* unit 3 differs */

    ms_writer *w = begin(&a, "t", 0, 0, 0);
    const ms_region ra = region(0, "ram", 2, 8192);
    assert_status(ms_writer_add_region(w, &ra), 0);
    assert_status(ms_writer_pages(w, 0, 0, 2, big), 0);
    end(w);
    w = begin(&b, "t", 0, 0, 0);
    const ms_region rb = region(0, "ram", 4, PS);
    assert_status(ms_writer_add_region(w, &rb), 0);
    assert_status(ms_writer_pages(w, 0, 0, 4, small), 0); /* unit 1 goes as ZERO */
    end(w);
    assert_int_equal(diff(&a, &b, &l, &t), 2);
    assert_int_equal(l.it[0].kind, MS_DIFF_REGION);
    assert_string_equal(l.it[0].field, "page_size");
    assert_int_equal(l.it[0].na, 8192);
    assert_int_equal(l.it[0].nb, PS);
    assert_int_equal(l.it[1].kind, MS_DIFF_PAGES);
    assert_int_equal(l.it[1].unit, PS);
    assert_int_equal(l.it[1].first, 3);
    assert_int_equal(l.it[1].count, 1);
    assert_int_equal(l.it[1].sa, MS_PAGE_DATA);
    assert_int_equal(l.it[1].sb, MS_PAGE_DATA);
    assert_int_equal(l.it[2].kind, MS_DIFF_PAGES_TOTAL);
    th_buf_free(&a);
    th_buf_free(&b);
}

static void test_overlays(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    log_t l;
    ms_diff_totals t;
    ms_region r = region(0, "ram", 256, PS);
    r.has_gpa = true;
    r.gpa = 1 << 20; /* frames 0x100..0x1ff */
    ms_overlay hv = {.gfn = 0x100, .kind = MS_OVERLAY_HYPERCALL};
    ms_overlay tsc = {.gfn = 0x101, .kind = MS_OVERLAY_REFERENCE_TSC};
    tsc.tsc.has_frequency = true;
    tsc.tsc.frequency = 2000000000u;
    ms_overlay ev = {.gfn = 0x102, .kind = MS_OVERLAY_SYNIC_EVENT_FLAGS};

    ms_writer *w = begin(&a, "t", MS_FEATURE_OVERLAYS, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    hv.hypercall.vendor = 1;
    assert_status(ms_writer_overlay(w, &hv), 0);
    assert_status(ms_writer_overlay(w, &tsc), 0);
    end(w);
    w = begin(&b, "t", MS_FEATURE_OVERLAYS, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    hv.hypercall.vendor = 2;
    assert_status(ms_writer_overlay(w, &ev), 0);
    assert_status(ms_writer_overlay(w, &hv), 0);
    end(w);
    assert_int_equal(diff(&a, &b, &l, &t), 3);
    assert_int_equal(t.overlays, 3);
    assert_int_equal(l.it[0].kind, MS_DIFF_OVERLAY);
    assert_int_equal(l.it[0].gfn, 0x100);
    assert_int_equal(l.it[0].okind, MS_OVERLAY_HYPERCALL);
    assert_int_equal(l.it[0].okind_b, MS_OVERLAY_HYPERCALL);
    assert_int_equal(l.it[1].kind, MS_DIFF_OVERLAY_ONLY);
    assert_int_equal(l.it[1].side, MS_DIFF_A);
    assert_int_equal(l.it[1].gfn, 0x101);
    assert_int_equal(l.it[2].kind, MS_DIFF_OVERLAY_ONLY);
    assert_int_equal(l.it[2].side, MS_DIFF_B);
    assert_int_equal(l.it[2].gfn, 0x102);
    th_buf_free(&a);
    th_buf_free(&b);
}

/* A CBOR map of text keys to unsigned values, keys given in order. */
static void cbor_map(th_buf *m, const char *const *keys, const uint64_t *vals, size_t n)
{
    m->len = 0;
    th_cbor_head(m, 5, n);
    for (size_t i = 0; i < n; i++) {
        th_cbor_text(m, keys[i]);
        th_cbor_uint(m, vals[i]);
    }
}

static void test_devices(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0}, s = {0};
    log_t l;
    ms_diff_totals t;
    static const char *const k2[] = {"rip", "rax"}, *const k3[] = {"rax", "rbx", "rip"};
    static const uint64_t v2[] = {1, 2}, v3[] = {2, 5, 3}, v0[] = {7, 7};
    const uint8_t tiny[] = {0xa1, 0x00, 0x01};

    ms_writer *w = begin(&a, "t", 0, 0, 0);
    cbor_map(&s, k2, v0, 2);
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86", 1, s.data, s.len), 0);
    cbor_map(&s, k2, v2, 2); /* the last copy counts */
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86", 1, s.data, s.len), 0);
    assert_status(ms_writer_device(w, "net", 0, "virtio-net", 1, tiny, sizeof tiny), 0);
    assert_status(ms_writer_device(w, "a-only", 0, "s", 4, tiny, sizeof tiny), 0);
    end(w);
    w = begin(&b, "t", 0, 0, 0);
    assert_status(ms_writer_device(w, "net", 0, "virtio-net-2", 1, tiny, sizeof tiny), 0);
    cbor_map(&s, k3, v3, 3);
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86", 2, s.data, s.len), 0);
    assert_status(ms_writer_device(w, "b-only", 3, "s", 1, tiny, sizeof tiny), 0);
    end(w);

    assert_int_equal(diff(&a, &b, &l, &t), 6);
    assert_int_equal(t.devices, 6);
    const item *it = l.it;
    assert_int_equal(it[0].kind, MS_DIFF_DEVICE_ONLY);
    assert_int_equal(it[0].side, MS_DIFF_A);
    assert_string_equal(it[0].device, "a-only");
    assert_int_equal(it[1].kind, MS_DIFF_DEVICE_ONLY);
    assert_int_equal(it[1].side, MS_DIFF_B);
    assert_string_equal(it[1].device, "b-only");
    assert_int_equal(it[1].instance, 3);
    assert_int_equal(it[2].kind, MS_DIFF_DEVICE);
    assert_string_equal(it[2].device, "cpu/0");
    assert_string_equal(it[2].device_b, "cpu/0");
    assert_string_equal(it[2].field, "version");
    assert_int_equal(it[2].na, 1);
    assert_int_equal(it[2].nb, 2);
    /* Keys in the order of their encoded bytes: "rbx" before "rip". */
    assert_int_equal(it[3].kind, MS_DIFF_DEVICE_STATE);
    assert_string_equal(it[3].field, "/rbx");
    assert_int_equal(it[3].ta, MS_DIFF_NONE);
    assert_int_equal(it[3].tb, MS_DIFF_CBOR);
    assert_string_equal(it[3].b, "5");
    assert_string_equal(it[4].field, "/rip");
    assert_string_equal(it[4].a, "1");
    assert_string_equal(it[4].b, "3");
    assert_int_equal(it[5].kind, MS_DIFF_DEVICE);
    assert_string_equal(it[5].device, "net");
    assert_string_equal(it[5].field, "schema");
    assert_string_equal(it[5].a, "virtio-net");
    assert_string_equal(it[5].b, "virtio-net-2");
    th_buf_free(&a);
    th_buf_free(&b);
    th_buf_free(&s);
}

/* ------------------------------------------------------ failures, states */

/* Loads @s as side B after a good A: returns the status, the message in
 * @msg, and the reader's error offset in @offset. */
static int load_bad(const th_buf *good, const th_buf *s, const char *name, char *msg, size_t n,
                    uint64_t *offset)
{
    ms_diff *d = ms_diff_new(NULL);
    ms_reader *ra = ms_reader_new_memory(NULL, good->data, good->len);
    ms_reader *rb = ms_reader_new_memory(NULL, s->data, s->len);
    assert_status(ms_diff_load(d, MS_DIFF_A, ra, "a.mig"), 0);
    int rc = ms_diff_load(d, MS_DIFF_B, rb, name);
    snprintf(msg, n, "%s", ms_diff_errmsg(d));
    *offset = ms_reader_error_offset(rb);
    if (rc) {
        /* A failed handle stays failed. */
        assert_status(ms_diff_status(d), rc);
        assert_status(ms_diff_compare(d, collect, NULL), rc);
    }
    ms_reader_free(ra);
    ms_reader_free(rb);
    ms_diff_free(d);
    return rc;
}

static void test_damaged(void **state)
{
    (void)state;
    th_buf a = {0}, bad = {0};
    char msg[1024], want[64];
    uint64_t off;
    guest(&a, 0, 0);

    /* A flipped byte in a PAGES record's data. */
    th_buf_append(&bad, a.data, a.len);
    bad.data[a.len / 2] ^= 0x40;
    assert_status(load_bad(&a, &bad, "b.mig", msg, sizeof msg, &off), MS_ECHECKSUM);
    assert_contains(msg, "stream B (b.mig): record ");
    assert_contains(msg, "checksum mismatch");
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)off);
    assert_contains(msg, want);

    /* Truncated, without a name. */
    bad.len = a.len - 10;
    memcpy(bad.data, a.data, bad.len);
    assert_status(load_bad(&a, &bad, NULL, msg, sizeof msg, &off), MS_ETRUNCATED);
    assert_contains(msg, "stream B: ");

    /* Bytes after END. */
    bad.len = 0;
    th_buf_append(&bad, a.data, a.len);
    th_buf_append(&bad, "x", 1);
    assert_status(load_bad(&a, &bad, "b.mig", msg, sizeof msg, &off), MS_ECORRUPT);
    assert_contains(msg, "bytes follow the END record");

    /* Not a stream. */
    bad.len = 0;
    th_buf_append(&bad, "hello, world", 12);
    assert_status(load_bad(&a, &bad, "text", msg, sizeof msg, &off), MS_EMAGIC);
    assert_contains(msg, "stream B (text): preamble, byte 0");
    th_buf_free(&a);
    th_buf_free(&bad);
}

/* keep_damaged: a side is kept as far as it was read, and its damage is
 * said; a side without a preamble still fails. */
static char kept_msg[1024];

static int load_kept(const th_buf *good, const th_buf *s, log_t *l, ms_diff_damage *dm)
{
    ms_diff_options o;
    ms_diff_options_init(&o);
    o.keep_damaged = true;
    ms_diff *d = ms_diff_new(&o);
    ms_reader *ra = ms_reader_new_memory(NULL, good->data, good->len);
    ms_reader *rb = ms_reader_new_memory(NULL, s->data, s->len);
    assert_status(ms_diff_load(d, MS_DIFF_A, ra, "a.mig"), 0);
    int rc = ms_diff_load(d, MS_DIFF_B, rb, "b.mig");
    assert_null(ms_diff_get_damage(d, MS_DIFF_A));
    assert_null(ms_diff_get_damage(d, (ms_diff_side)2));
    assert_null(ms_diff_get_damage(NULL, MS_DIFF_B));
    if (rc == MS_DIFF_DAMAGED) {
        const ms_diff_damage *got = ms_diff_get_damage(d, MS_DIFF_B);
        assert_non_null(got);
        assert_int_equal(got->offset, ms_reader_error_offset(rb));
        assert_int_equal(got->record, ms_reader_error_record(rb));
        assert_int_equal(got->part, -1);
        *dm = *got;
        snprintf(kept_msg, sizeof kept_msg, "%s", got->message); /* the handle's */
        dm->message = kept_msg;
        memset(l, 0, sizeof *l);
        l->stop_at = SIZE_MAX;
        rc = ms_diff_compare(d, collect, l);
        assert_true(rc >= 0);
        assert_status(ms_diff_status(d), 0);
        assert_contains(ms_diff_get_damage(d, MS_DIFF_B)->message, "stream B (b.mig): ");
        rc = rc ? 100 + rc : MS_DIFF_DAMAGED; /* the differences, told apart */
    } else {
        assert_null(ms_diff_get_damage(d, MS_DIFF_B));
    }
    ms_reader_free(ra);
    ms_reader_free(rb);
    ms_diff_free(d);
    return rc;
}

static void test_keep_damaged(void **state)
{
    (void)state;
    th_buf a = {0}, bad = {0};
    ms_diff_damage dm;
    log_t l;
    guest(&a, 0, 0);

    /* A flipped byte in the first PAGES record: B keeps its region, no
     * page, no device. */
    th_buf_append(&bad, a.data, a.len);
    bad.data[a.len / 2] ^= 0x40;
    int rc = load_kept(&a, &bad, &l, &dm);
    assert_true(rc > 100);
    assert_status(dm.status, MS_ECHECKSUM);
    assert_true(dm.record > 0);
    assert_contains(dm.message, "checksum mismatch");
    assert_int_equal(l.it[l.n - 1].kind, MS_DIFF_DEVICE_ONLY);
    assert_int_equal(l.it[l.n - 1].side, MS_DIFF_A);

    /* Bytes after END: all was read, nothing differs. */
    bad.len = 0;
    th_buf_append(&bad, a.data, a.len);
    th_buf_append(&bad, "x", 1);
    assert_int_equal(load_kept(&a, &bad, &l, &dm), MS_DIFF_DAMAGED);
    assert_status(dm.status, MS_ECORRUPT);
    assert_int_equal(l.n, 0);

    /* Truncated before END. */
    bad.len = a.len - 10;
    assert_int_equal(load_kept(&a, &bad, &l, &dm), MS_DIFF_DAMAGED);
    assert_status(dm.status, MS_ETRUNCATED);

    /* No preamble: nothing to keep. */
    bad.len = 0;
    th_buf_append(&bad, "hello, world", 12);
    assert_status(load_kept(&a, &bad, &l, &dm), MS_EMAGIC);
    th_buf_free(&a);
    th_buf_free(&bad);
}

static void test_handle_states(void **state)
{
    (void)state;
    th_buf a = {0};
    guest(&a, 0, 0);
    ms_diff *d = ms_diff_new(NULL);
    ms_reader *ra = ms_reader_new_memory(NULL, a.data, a.len);
    ms_reader *ra2 = ms_reader_new_memory(NULL, a.data, a.len);
    assert_status(ms_diff_compare(d, NULL, NULL), MS_ESTATE); /* nothing loaded */
    assert_status(ms_diff_load(d, MS_DIFF_A, ra, "a"), 0);
    assert_status(ms_diff_load(d, MS_DIFF_A, ra2, "a"), MS_ESTATE); /* loaded already */
    assert_status(ms_diff_load(d, (ms_diff_side)2, ra2, "a"), MS_EINVAL);
    assert_status(ms_diff_compare(d, NULL, NULL), MS_ESTATE); /* B missing */
    assert_status(ms_diff_load(d, MS_DIFF_B, ra2, "a"), 0);
    assert_status(ms_diff_status(d), 0);
    assert_int_equal(ms_diff_compare(d, NULL, NULL), 0);
    assert_status(ms_diff_compare(d, NULL, NULL), MS_ESTATE); /* compared already */
    ms_reader_free(ra);
    ms_reader_free(ra2);
    ms_diff_free(d);
    ms_diff_free(NULL);

    /* A callback that stops: its value comes back, and the totals count
     * what was reported. */
    th_buf c = {0};
    ms_writer *w = begin(&c, "other", 0, 0, 0); /* writer_name, region only in A, device */
    end(w);
    d = ms_diff_new(NULL);
    ra = ms_reader_new_memory(NULL, a.data, a.len);
    ms_reader *rc = ms_reader_new_memory(NULL, c.data, c.len);
    assert_status(ms_diff_load(d, MS_DIFF_A, ra, "a"), 0);
    assert_status(ms_diff_load(d, MS_DIFF_B, rc, "c"), 0);
    log_t l = {.stop_at = 1};
    assert_int_equal(ms_diff_compare(d, collect, &l), -42);
    assert_int_equal(l.n, 1);
    assert_int_equal(ms_diff_get_totals(d)->metadata, 1);
    assert_int_equal(ms_diff_get_totals(d)->regions, 1); /* the one refused */
    assert_status(ms_diff_status(d), 0);                 /* the caller's stop is not a failure */
    ms_reader_free(ra);
    ms_reader_free(rc);
    ms_diff_free(d);

    ms_diff_options zero = {0}; /* not filled by init: a failed handle */
    d = ms_diff_new(&zero);
    assert_status(ms_diff_status(d), MS_EINVAL);
    assert_contains(ms_diff_errmsg(d), "_init");
    ms_diff_free(d);
    th_buf_free(&a);
    th_buf_free(&c);
}

static void test_limits(void **state)
{
    (void)state;
    th_buf s = {0}, a = {0};
    /* Page states scattered one per map chunk. */
    ms_writer *w = begin(&s, "t", 0, 0, 0);
    const ms_region r = region(0, "ram", 64 * 4096, PS);
    assert_status(ms_writer_add_region(w, &r), 0);
    for (uint64_t k = 0; k < 64; k++)
        assert_status(ms_writer_zero_pages(w, 0, k * 4096 + 7, 1), 0);
    end(w);
    ms_diff_options o;
    ms_diff_options_init(&o);
    assert_int_equal(o.max_map_memory, MS_PAGEMAP_DEFAULT_MEMORY);
    o.max_map_memory = 64 << 10;
    ms_diff *d = ms_diff_new(&o);
    ms_reader *rd = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_diff_load(d, MS_DIFF_B, rd, "s"), MS_ELIMIT);
    assert_contains(ms_diff_errmsg(d), "stream B (s): region 0 \"ram\"");
    assert_contains(ms_diff_errmsg(d), "exceed");
    ms_reader_free(rd);
    ms_diff_free(d);

    /* The temporary files cannot be made: named with the directory. */
    guest(&a, 0, 0);
    ms_diff_options_init(&o);
    o.tmpdir = "/nonexistent/dir";
    d = ms_diff_new(&o);
    rd = ms_reader_new_memory(NULL, a.data, a.len);
    assert_status(ms_diff_load(d, MS_DIFF_A, rd, "a.mig"), MS_EIO);
    assert_contains(ms_diff_errmsg(d),
                    "stream A (a.mig): cannot create a temporary file in /nonexistent/dir");
    ms_reader_free(rd);
    ms_diff_free(d);
    th_buf_free(&s);
    th_buf_free(&a);
}

/* FILL runs are compared by their words, whatever their length: 4 TiB of
 * FILL pages on each side, another word on 2^30 pages of B, and a DATA page
 * of B that holds the bytes A's FILL word stands for (the same). The
 * temporary files' limit counts DATA pages; device states have theirs. */
static void test_fill_and_keep_limits(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    const uint64_t pages = (uint64_t)1 << 30;
    const ms_region r = region(0, "ram", pages, PS);
    const uint64_t word = 0x0123456789abcdefu;
    uint8_t pat[PS];
    for (size_t k = 0; k < PS; k++)
        pat[k] = (uint8_t)(word >> (8 * (k % 8)));
    ms_writer *w = begin(&a, "t", MS_FEATURE_FILL, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_fill_pages(w, 0, 0, pages, word), 0);
    end(w);
    w = begin(&b, "t", MS_FEATURE_FILL, 0, 0);
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_fill_pages(w, 0, 0, pages, word), 0);
    assert_status(ms_writer_fill_pages(w, 0, pages / 2, pages / 4, 7), 0);
    assert_status(ms_writer_pages(w, 0, 5, 1, pat), 0);
    pat[100] ^= 1;
    assert_status(ms_writer_pages(w, 0, 9, 1, pat), 0);
    static uint8_t st[3 + PS] = {0x59, PS >> 8, PS & 0xff}; /* h'00...', 4 KiB */
    assert_status(ms_writer_device(w, "cpu", 0, "cpu", 1, st, sizeof st), 0);
    end(w);
    log_t l;
    ms_diff_totals t;
    assert_int_equal(diff(&a, &b, &l, &t), 3);
    assert_int_equal(l.it[0].kind, MS_DIFF_PAGES);
    assert_int_equal(l.it[0].first, 9);
    assert_int_equal(l.it[0].count, 1);
    assert_int_equal(l.it[1].first, pages / 2);
    assert_int_equal(l.it[1].count, pages / 4);
    assert_int_equal(l.it[1].sa, MS_PAGE_DATA);
    assert_int_equal(l.it[1].sb, MS_PAGE_DATA);
    assert_int_equal(l.it[3].kind, MS_DIFF_DEVICE_ONLY);

    /* The DATA page takes 4 KiB of temporary files (the writer sent the
     * other as FILL): 4095 bytes are too little. */
    ms_diff_options o;
    ms_diff_options_init(&o);
    assert_true(o.max_output == MS_MAX_OUTPUT_DEFAULT);
    o.max_output = PS - 1;
    ms_diff *d = ms_diff_new(&o);
    ms_reader *rd = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(ms_diff_load(d, MS_DIFF_B, rd, "b.mig"), MS_ELIMIT);
    assert_contains(ms_diff_errmsg(d), "stream B (b.mig): region 0 \"ram\": the temporary "
                                       "files would take 4096 bytes (4.0 KiB) with these DATA "
                                       "pages, more than their limit of 4095 bytes (max_output)");
    assert_true(ms_diff_output_full(d));
    ms_reader_free(rd);
    ms_diff_free(d);

    /* The device state (4 KiB) does not fit in 1 KiB. */
    ms_diff_options_init(&o);
    assert_int_equal(o.max_device_memory, MS_DIFF_DEFAULT_DEVICE_MEMORY);
    o.max_device_memory = 1024;
    d = ms_diff_new(&o);
    rd = ms_reader_new_memory(NULL, b.data, b.len);
    assert_status(ms_diff_load(d, MS_DIFF_B, rd, "b.mig"), MS_ELIMIT);
    assert_contains(ms_diff_errmsg(d), "device \"cpu\" instance 0: the device states kept "
                                       "would take more than 0 MiB");
    ms_reader_free(rd);
    ms_diff_free(d);
    th_buf_free(&a);
    th_buf_free(&b);
}

#if MS_HAVE_QEMU
/* A buffer read sequentially, as a pipe would give it. */
typedef struct memin {
    const uint8_t *p;
    size_t n, pos;
} memin;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t k = m->n - m->pos < len ? m->n - m->pos : len;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* A guest written by this library's writer, with @machine, and the same
 * guest exported as a QEMU migration stream into @q. */
static void guest_both(th_buf *mig, th_buf *q, const char *machine, uint64_t seed)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "vmm";
    o.writer_version = "2.0";
    o.description = "a guest";
    o.machine = machine;
    o.features = MS_FEATURE_FILL;
    mig->len = 0;
    ms_writer *w = ms_writer_new(&o, th_sink_write, mig);
    const ms_region r = region(0, "pc.ram", 16, PS);
    assert_status(ms_writer_add_region(w, &r), 0);
    uint8_t mem[4 * PS];
    th_rand_fill(&seed, mem, sizeof mem);
    assert_status(ms_writer_pages(w, 0, 0, 4, mem), 0);
    assert_status(ms_writer_zero_pages(w, 0, 4, 12), 0);
    /* QEMU's device state as the import keeps it: its raw bytes. */
    const uint8_t state[] = {0xa1, 0x63, 'r', 'a', 'w', 0x42, 0x01, 0x02};
    assert_status(ms_writer_device(w, "timer", 0, "timer", 2, state, sizeof state), 0);
    end(w);

    memin in = {mig->data, mig->len, 0};
    ms_qemu_export *x = ms_qemu_export_new(NULL);
    q->len = 0;
    assert_status(ms_qemu_export_run(x, mem_read, &in, th_sink_write, q), 0);
    ms_qemu_export_free(x);
}

/* Across formats only the guest's metadata is compared: the page size and
 * the machine, not the format version, feature bits, writer or
 * description, which describe each container. */
static void test_across_formats(void **state)
{
    (void)state;
    th_buf mig = {0}, q = {0}, other = {0}, unused = {0};
    guest_both(&mig, &q, "pc-q35-7.2", 3);
    guest_both(&other, &unused, "pc-i440fx-7.2", 3);

    const th_buf *b_side[] = {&mig, &other};
    for (int k = 0; k < 2; k++) {
        memin in = {q.data, q.len, 0};
        ms_input input = {.read = mem_read, .read_ctx = &in, .name = "vm.qemu"};
        ms_reader *ra = ms_open(NULL, &input, 1);
        ms_reader *rb = ms_reader_new_memory(NULL, b_side[k]->data, b_side[k]->len);
        ms_diff *d = ms_diff_new(NULL);
        assert_status(ms_diff_load(d, MS_DIFF_A, ra, "vm.qemu"), 0);
        assert_string_equal(ms_reader_format(ra), "qemu");
        assert_status(ms_diff_load(d, MS_DIFF_B, rb, "vm.mig"), 0);
        log_t l;
        memset(&l, 0, sizeof l);
        l.stop_at = SIZE_MAX;
        int n = ms_diff_compare(d, collect, &l);
        if (k == 0) {
            /* writer "qemu" against "vmm" 2.0, no description against one,
             * feature bits: none of it reported. */
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 1);
            assert_int_equal(l.it[0].kind, MS_DIFF_META);
            assert_string_equal(l.it[0].field, "machine");
            assert_string_equal(l.it[0].a, "pc-q35-7.2");
            assert_string_equal(l.it[0].b, "pc-i440fx-7.2");
        }
        ms_diff_free(d);
        ms_reader_free(ra);
        ms_reader_free(rb);
    }

    /* The same format on both sides: every field, as before. */
    log_t l;
    ms_diff_totals t;
    th_buf plain = {0};
    ms_writer *w = begin(&plain, "t", 0, 0, 0);
    end(w);
    assert_int_equal(diff(&mig, &plain, &l, &t), 7);
    static const char *const fields[] = {"required_features", "writer_name", "writer_version",
                                         "machine", "description"};
    for (size_t i = 0, k = 0; i < l.n; i++)
        if (l.it[i].kind == MS_DIFF_META)
            assert_string_equal(l.it[i].field, fields[k++]);
    assert_int_equal(t.metadata, 5);
    th_buf_free(&mig);
    th_buf_free(&q);
    th_buf_free(&other);
    th_buf_free(&unused);
    th_buf_free(&plain);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_regions),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_page_sizes),
        cmocka_unit_test(test_overlays),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_keep_damaged),
        cmocka_unit_test(test_handle_states),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_fill_and_keep_limits),
#if MS_HAVE_QEMU
        cmocka_unit_test(test_across_formats),
#endif
    };
    return th_run_tests(tests);
}
