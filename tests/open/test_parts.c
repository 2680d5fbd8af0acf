/*
 * A migration in parts read as one stream (FORMAT.md section 2.1, open.h):
 * ms_open() over every part, in any order, gives the final state the single
 * stream of the same migration gives, its records in round order with the
 * part they come from, one END with the summed totals and the migration
 * digest; and it refuses, naming the part, the record and the byte, what
 * is not one migration or breaks a rule across parts that it checks.
 */
#include <stdlib.h>
#include <xxhash.h>

#include "helpers.h"

#define PS 4096u
#define RAM_PAGES 64u
#define VRAM_PAGES 8u
#define MAX_PARTS 4u
#define ROUNDS 3u

static const uint8_t ID[MS_MIGRATION_ID_SIZE] = "channels-test-01";

/* ------------------------------------------------------------ the migration */

/* The same migration written as one stream and as @n parts. */
typedef struct mig {
    th_buf single;
    th_buf part[MAX_PARTS];
    uint32_t n;
} mig;

static void mig_free(mig *m)
{
    th_buf_free(&m->single);
    for (uint32_t k = 0; k < MAX_PARTS; k++)
        th_buf_free(&m->part[k]);
}

/* The part that sends page @page in round @round: pages move between
 * parts from round to round, so that a later round's copy comes on
 * another connection than the copy it replaces. */
static uint32_t part_of(uint32_t n, uint32_t round, uint64_t page)
{
    return (uint32_t)((page / 8 + round) % n);
}

typedef struct writers {
    ms_writer *w[MAX_PARTS + 1]; /* [0]: the single stream; [1 + k]: part k */
    uint32_t n;
} writers;

#define W(call) assert_status((call), 0)

static void page_fill(uint8_t *p, uint32_t round, uint64_t page)
{
    memset(p, (int)(page * 7 + round * 31 + 1), PS);
    memcpy(p, &page, sizeof page);
}

/* Page @page of ram in round @round, to the single stream and its part. */
static void send_page(writers *ws, uint32_t round, uint64_t page, bool zero)
{
    uint8_t buf[PS];
    if (zero)
        memset(buf, 0, sizeof buf);
    else
        page_fill(buf, round, page);
    W(ms_writer_pages(ws->w[0], 0, page, 1, buf));
    W(ms_writer_pages(ws->w[1 + part_of(ws->n, round, page)], 0, page, 1, buf));
}

static void send_device(writers *ws, uint32_t part, uint32_t instance, uint8_t value)
{
    uint8_t state[2] = {0x18, value}; /* CBOR uint value */
    W(ms_writer_device(ws->w[0], "cpu", instance, "x86-cpu", 1, state, 2));
    W(ms_writer_device(ws->w[1 + part], "cpu", instance, "x86-cpu", 1, state, 2));
}

static void build(mig *m, uint32_t n)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    writers ws = {.n = n};
    ms_part parts[MAX_PARTS];
    for (uint32_t k = 0; k <= n; k++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.writer_name = "test";
        o.machine = "pc";
        o.features = MS_FEATURE_FILL | MS_FEATURE_OVERLAYS;
        if (k > 0) {
            parts[k - 1] = (ms_part){.index = k - 1, .count = n};
            memcpy(parts[k - 1].migration_id, ID, sizeof ID);
            o.part = &parts[k - 1];
        }
        ws.w[k] = ms_writer_new(&o, th_sink_write, k ? &m->part[k - 1] : &m->single);
        W(ms_writer_status(ws.w[k]));
        ms_region ram = {
            .id = 0, .name = "ram", .has_gpa = true, .size = RAM_PAGES * PS, .page_size = PS};
        W(ms_writer_add_region(ws.w[k], &ram));
    }
    /* vram: declared by the parts that send it only (part 0 here). */
    ms_region vram = {.id = 1, .name = "vram", .size = VRAM_PAGES * PS, .page_size = PS};
    W(ms_writer_add_region(ws.w[0], &vram));
    W(ms_writer_add_region(ws.w[1], &vram));

    for (uint32_t r = 0; r < ROUNDS; r++) {
        ms_round rd = {.number = r, .final = r == ROUNDS - 1};
        if (r > 0) {
            rd.tracker = MS_TRACKER_BITMAP;
            rd.granularity = PS;
            rd.has_dirty = true;
            rd.dirty = 5 - r;
        }
        for (uint32_t k = 0; k <= n; k++)
            W(ms_writer_round(ws.w[k], &rd));
        if (r == 0) {
            for (uint64_t p = 0; p < RAM_PAGES; p++)
                send_page(&ws, r, p, p % 5 == 0);
            uint8_t v[VRAM_PAGES * PS];
            memset(v, 0xcc, sizeof v); /* FILL */
            W(ms_writer_pages(ws.w[0], 1, 0, VRAM_PAGES, v));
            W(ms_writer_pages(ws.w[1], 1, 0, VRAM_PAGES, v));
            send_device(&ws, n - 1, 0, 10);
        } else if (r == 1) {
            static const uint64_t dirty[] = {3, 17, 40, 63};
            for (size_t i = 0; i < 4; i++)
                send_page(&ws, r, dirty[i], false);
            send_device(&ws, 0, 0, 11); /* replaces round 0's, from another part */
            ms_overlay tsc = {.gfn = 9, .kind = MS_OVERLAY_REFERENCE_TSC};
            tsc.tsc.has_frequency = true;
            tsc.tsc.frequency = 2000000000u;
            W(ms_writer_overlay(ws.w[0], &tsc));
            W(ms_writer_overlay(ws.w[n], &tsc));
        } else {
            send_page(&ws, r, 3, false);
            send_page(&ws, r, 17, true); /* sent again, now zero */
            send_device(&ws, n - 1, 0, 12);
            send_device(&ws, 0, 1, 13);
        }
    }
    for (uint32_t k = 0; k <= n; k++) {
        W(ms_writer_finish(ws.w[k], NULL));
        ms_writer_free(ws.w[k]);
    }
}

/* ----------------------------------------------------- the final state */

typedef struct image {
    uint8_t mem[2][RAM_PAGES * PS];
    uint8_t dev[2];
    int devices, parts, rounds, overlays;
    ms_totals end;
    uint64_t digest;
} image;

static int on_extent(void *ctx, const ms_region *r, const ms_extent *e, const uint8_t *data)
{
    image *im = ctx;
    assert_true(r->id < 2);
    uint8_t *p = im->mem[r->id] + e->first * PS;
    size_t len = (size_t)e->count * PS;
    if (e->state == MS_PAGE_DATA)
        memcpy(p, data, len);
    else if (e->state == MS_PAGE_ZERO)
        memset(p, 0, len);
    else if (e->state == MS_PAGE_FILL)
        memset(p, (int)(e->arg & 0xff), len);
    else
        fail_msg("state %u", e->state);
    return 0;
}

static int on_device(void *ctx, const ms_device *d)
{
    image *im = ctx;
    assert_true(d->instance < 2 && d->state_size == 2);
    im->dev[d->instance] = d->state[1];
    im->devices++;
    return 0;
}

static int on_part(void *ctx, const ms_part *p)
{
    image *im = ctx;
    assert_int_equal(p->index, (uint32_t)im->parts); /* in part order */
    im->parts++;
    return 0;
}

static int on_round(void *ctx, const ms_round *r)
{
    image *im = ctx;
    assert_int_equal(r->number, (uint64_t)im->rounds);
    im->rounds++;
    return 0;
}

static int on_overlay(void *ctx, const ms_overlay *o)
{
    (void)o;
    ((image *)ctx)->overlays++;
    return 0;
}

static int on_end(void *ctx, const ms_totals *t, uint64_t digest)
{
    image *im = ctx;
    im->end = *t;
    im->digest = digest;
    return 0;
}

static const ms_replay_callbacks replay_cb = {
    .struct_size = sizeof replay_cb,
    .extent = on_extent,
    .device = on_device,
    .round = on_round,
    .overlay = on_overlay,
    .end = on_end,
    .part = on_part,
};

/* Memory inputs for ms_open(). */
typedef struct mem_in {
    const uint8_t *p;
    size_t len, pos;
} mem_in;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    mem_in *m = ctx;
    size_t k = m->len - m->pos < len ? m->len - m->pos : len;
    if (k > 7)
        k = k / 2 + 1; /* short reads, as a socket gives */
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

static const char *const NAMES[] = {"part-a", "part-b", "part-c", "part-d"};

/* Opens @n buffers; @order[i] is the part the i-th input holds. */
static ms_reader *open_bufs(const ms_reader_options *ro, th_buf *const *bufs, size_t n, mem_in *mi,
                            ms_input *in)
{
    for (size_t i = 0; i < n; i++) {
        mi[i] = (mem_in){bufs[i]->data, bufs[i]->len, 0};
        in[i] = (ms_input){.read = mem_read, .read_ctx = &mi[i], .name = NAMES[i]};
    }
    ms_open_options o;
    ms_open_options_init(&o);
    o.reader = ro;
    return ms_open(&o, in, n);
}

static ms_reader *open_parts(mig *m, const uint32_t *order, mem_in *mi, ms_input *in)
{
    th_buf *bufs[MAX_PARTS];
    for (uint32_t i = 0; i < m->n; i++)
        bufs[i] = &m->part[order[i]];
    return open_bufs(NULL, bufs, m->n, mi, in);
}

static void test_merge_equals_single(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= MAX_PARTS; n++) {
        mig m;
        build(&m, n);
        image *one = calloc(1, sizeof *one), *all = calloc(1, sizeof *all);
        assert_non_null(one);
        assert_non_null(all);
        ms_reader *r = ms_reader_new_memory(NULL, m.single.data, m.single.len);
        W(ms_replay(r, &replay_cb, one));
        ms_reader_free(r);

        uint32_t order[MAX_PARTS];
        for (uint32_t i = 0; i < n; i++)
            order[i] = (n - i) % n; /* not in part order: 0, n-1, ..., 1 */
        mem_in mi[MAX_PARTS];
        ms_input in[MAX_PARTS];
        r = open_parts(&m, order, mi, in);
        W(ms_reader_status(r));
        assert_string_equal(ms_reader_format(r), "migstream");
        const ms_header *h;
        W(ms_reader_header(r, &h));
        assert_int_equal(h->minor, 2);
        assert_int_equal(h->required_features,
                         MS_FEATURE_PARTS | MS_FEATURE_FILL | MS_FEATURE_OVERLAYS);
        W(ms_replay(r, &replay_cb, all));
        W(ms_reader_expect_eof(r));

        /* The same final state: memory, devices, overlays. */
        assert_memory_equal(one->mem, all->mem, sizeof one->mem);
        assert_memory_equal(one->dev, all->dev, sizeof one->dev);
        assert_int_equal(all->dev[0], 12);
        assert_int_equal(one->overlays, all->overlays);
        assert_int_equal(all->parts, (int)n);
        assert_int_equal(one->rounds, ROUNDS);
        assert_int_equal(all->rounds, ROUNDS);
        /* Totals: the single stream's, but for records and bytes, which are
         * the parts' summed. */
        assert_memory_equal(one->end.pages, all->end.pages, sizeof one->end.pages);
        assert_int_equal(one->end.devices, all->end.devices);
        assert_int_equal(one->end.overlays, all->end.overlays);
        assert_int_equal(all->end.rounds, ROUNDS);
        uint64_t bytes = 0, records = 0;
        XXH3_state_t *st = XXH3_createState();
        XXH3_64bits_reset(st);
        assert_int_equal(ms_reader_part_count(r), n);
        for (uint32_t k = 0; k < n; k++) {
            const ms_part_info *pi = ms_reader_part_info(r, k);
            assert_non_null(pi);
            assert_int_equal(pi->part.index, k);
            assert_true(pi->ended);
            assert_int_equal(pi->bytes, m.part[k].len);
            for (uint32_t i = 0; i < n && n > 1; i++) /* one input: a plain reader */
                if (order[i] == k)
                    assert_string_equal(pi->name, NAMES[i]);
            bytes += pi->totals.bytes;
            records += pi->totals.records;
            uint8_t le[8];
            th_put64(le, pi->digest);
            XXH3_64bits_update(st, le, 8);
        }
        assert_null(ms_reader_part_info(r, n));
        assert_int_equal(all->end.bytes, bytes);
        assert_int_equal(all->end.records, records);
        /* FORMAT.md section 8: one part's digest is the migration's */
        if (n > 1)
            assert_int_equal(all->digest, XXH3_64bits_digest(st));
        else
            assert_int_equal(all->digest, ms_reader_part_info(r, 0)->digest);
        XXH3_freeState(st);
        ms_reader_free(r);
        free(one);
        free(all);
        mig_free(&m);
    }
}

/* The records, one by one: PART of each part first, one ROUND per round,
 * each record with its part, offsets and indexes in that part. */
static void test_merge_order(void **state)
{
    (void)state;
    mig m;
    build(&m, 3);
    static const uint32_t order[] = {2, 0, 1};
    mem_in mi[3];
    ms_input in[3];
    ms_reader *r = open_parts(&m, order, mi, in);
    const ms_record *rec;
    int rc, parts = 0, infos = 0, rounds = 0;
    uint32_t last_part = 0;
    uint64_t last_round = 0;
    size_t regions = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type == MS_REC_END) {
            assert_null(rec->part);
            assert_null(rec->payload);
            continue;
        }
        assert_non_null(rec->part);
        /* Within a round (and before the first), parts come in order. */
        if (rec->type == MS_REC_ROUND) {
            assert_int_equal(rec->part->index, 0);
            last_part = 0;
            last_round = rec->round.number;
            rounds++;
        } else {
            assert_true(rec->part->index >= last_part);
            last_part = rec->part->index;
        }
        /* The record is where it says, in its part's stream. */
        const th_buf *b = &m.part[rec->part->index];
        assert_true(rec->offset + 16 + rec->length <= b->len);
        assert_int_equal(th_get16(b->data + rec->offset), rec->type);
        if (rec->type == MS_REC_PART) {
            assert_int_equal(rec->index, 0);
            assert_int_equal(rec->part->index, (uint32_t)parts);
            parts++;
        }
        if (rec->type == MS_REC_INFO)
            infos++;
        if (rec->type == MS_REC_REGIONS)
            regions += rec->region_count;
        if (rec->type == MS_REC_DEVICE && rec->device.state[1] == 11)
            assert_int_equal(last_round, 1);
    }
    assert_status(rc, 0);
    assert_int_equal(parts, 3);
    assert_int_equal(infos, 1);   /* the same INFO in every part: handed out once */
    assert_int_equal(regions, 2); /* ram in every part, vram in part 0: once each */
    assert_int_equal(rounds, ROUNDS);
    assert_int_equal(ms_reader_region_count(r), 2);
    ms_reader_free(r);
    mig_free(&m);
}

/* ---------------------------------------------------------- refusals */

static void expect_open_fail(th_buf *const *bufs, size_t n, int status, const char *frag,
                             const char *frag2)
{
    mem_in mi[MAX_PARTS + 1];
    ms_input in[MAX_PARTS + 1];
    ms_reader *r = open_bufs(NULL, bufs, n, mi, in);
    int rc = ms_reader_status(r);
    if (!rc)
        rc = th_read_all(r, NULL);
    if (!rc)
        rc = ms_reader_expect_eof(r);
    if (rc != status)
        fail_msg("status %d (%s), expected %s: %s", rc, ms_strerror(rc), ms_strerror(status),
                 ms_reader_errmsg(r));
    assert_contains(ms_reader_errmsg(r), frag);
    if (frag2)
        assert_contains(ms_reader_errmsg(r), frag2);
    ms_reader_free(r);
}

/* Part @k of @m with edit @fn applied (END fixed), into @out. */
static void edited(const mig *m, uint32_t k, void (*fn)(th_stream *), th_buf *out)
{
    th_stream ts;
    th_stream_parse(&ts, m->part[k].data, m->part[k].len);
    fn(&ts);
    th_stream_fix_end(&ts);
    out->len = 0;
    th_stream_build(&ts, out);
    th_stream_free(&ts);
}

static void other_id(th_stream *ts)
{
    th_rec *p = &ts->rec[0];
    p->payload.data[3] ^= 1; /* map(3), key 0, bytes(16) head, first id byte */
}

static void extra_round(th_stream *ts)
{
    th_buf b = {0};
    th_cbor_round(&b, &(ms_round){.number = 7});
    th_stream_insert(ts, ts->n - 1, MS_REC_ROUND, 0, b.data, b.len);
    th_buf_free(&b);
}

static void drop_last_round(th_stream *ts)
{
    size_t last = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (ts->rec[i].type == MS_REC_ROUND)
            last = i;
    th_stream_remove(ts, last);
}

static void other_dirty(th_stream *ts)
{
    size_t i = th_stream_find(ts, MS_REC_ROUND, 1);
    th_buf b = {0};
    th_cbor_round(&b, &(ms_round){.number = 1,
                                  .tracker = MS_TRACKER_BITMAP,
                                  .granularity = PS,
                                  .has_dirty = true,
                                  .dirty = 99});
    th_stream_set(ts, i, b.data, b.len);
    th_buf_free(&b);
}

static void bigger_ram(th_stream *ts)
{
    size_t i = th_stream_find(ts, MS_REC_REGIONS, 0);
    th_buf b = {0};
    th_cbor_head(&b, 4, 1);
    th_cbor_region(&b, 0, "ram", true, 0, 2 * RAM_PAGES * PS, PS);
    th_stream_set(ts, i, b.data, b.len);
    th_buf_free(&b);
}

/* Part 0's vram at a guest-physical address past ram ... */
static void vram_mapped(th_stream *ts)
{
    size_t i = th_stream_find(ts, MS_REC_REGIONS, 0);
    th_buf b = {0};
    th_cbor_head(&b, 4, 2);
    th_cbor_region(&b, 0, "ram", true, 0, RAM_PAGES * PS, PS);
    th_cbor_region(&b, 1, "vram", true, RAM_PAGES * PS, VRAM_PAGES * PS, PS);
    th_stream_set(ts, i, b.data, b.len);
    th_buf_free(&b);
}

/* ... and part 1's rom over it, apart from part 1's own ram. */
static void overlapping_region(th_stream *ts)
{
    size_t i = th_stream_find(ts, MS_REC_REGIONS, 0);
    th_buf b = {0};
    th_cbor_head(&b, 4, 2);
    th_cbor_region(&b, 0, "ram", true, 0, RAM_PAGES * PS, PS);
    th_cbor_region(&b, 5, "rom", true, (RAM_PAGES + 1) * PS, PS, PS);
    th_stream_set(ts, i, b.data, b.len);
    th_buf_free(&b);
}

static void other_info(th_stream *ts)
{
    th_buf b = {0};
    th_cbor_head(&b, 5, 1);
    th_cbor_uint(&b, 0);
    th_cbor_text(&b, "q35");
    th_stream_set(ts, 1, b.data, b.len);
    th_buf_free(&b);
}

static void trailing_byte(th_stream *ts)
{
    th_buf_u8(&ts->trailer, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    mig m;
    build(&m, 3);
    th_buf e = {0}, plain = {0};
    th_buf *set[MAX_PARTS + 1];

    /* Not all of one migration. */
    set[0] = &m.part[0];
    set[1] = &m.part[1];
    expect_open_fail(set, 2, MS_EINVAL, "has 3 parts, but 2 inputs are given", NULL);
    set[2] = &m.part[1];
    expect_open_fail(set, 3, MS_EINVAL, "are both part 1 of migration", "part-b");
    edited(&m, 2, other_id, &e);
    set[2] = &e;
    expect_open_fail(set, 3, MS_EINVAL, "parts of different migrations", "part-c");
    th_write_small_stream(&plain, NULL);
    set[2] = &plain;
    expect_open_fail(set, 3, MS_EINVAL, "both main inputs", "part-c is no part");
    set[2] = &m.part[2];
    set[3] = &m.part[0];
    expect_open_fail(set, 4, MS_EINVAL, "has 3 parts, but 4 inputs are given", NULL);

    /* Rounds that differ, regions declared otherwise, INFO. */
    edited(&m, 1, extra_round, &e);
    set[0] = &m.part[0];
    set[1] = &e;
    set[2] = &m.part[2];
    expect_open_fail(set, 3, MS_ECORRUPT, "part 1 (part-b), record",
                     "ROUND 7, but part 0 "
                     "(part-a), record");
    edited(&m, 2, drop_last_round, &e);
    set[1] = &m.part[1];
    set[2] = &e;
    expect_open_fail(set, 3, MS_ECORRUPT, "part 2 (part-c), record", "the part ends, but part 0");
    edited(&m, 1, other_dirty, &e);
    set[1] = &e;
    set[2] = &m.part[2];
    expect_open_fail(set, 3, MS_ECORRUPT, "ROUND 1 differs in its dirty count", "part 1");
    edited(&m, 2, bigger_ram, &e);
    set[1] = &m.part[1];
    set[2] = &e;
    expect_open_fail(set, 3, MS_ECORRUPT, "region 0 \"ram\" differs from the region 0",
                     "part 2 (part-c), record 2 (REGIONS");
    th_buf e0 = {0};
    edited(&m, 0, vram_mapped, &e0);
    edited(&m, 1, overlapping_region, &e);
    set[0] = &e0;
    set[1] = &e;
    set[2] = &m.part[2];
    expect_open_fail(set, 3, MS_ECORRUPT,
                     "region 5 \"rom\" overlaps region 1 \"vram\" of "
                     "part 0",
                     "part 1 (part-b), record 2 (REGIONS");
    set[0] = &m.part[0];
    th_buf_free(&e0);
    edited(&m, 2, other_info, &e);
    set[1] = &m.part[1];
    set[2] = &e;
    expect_open_fail(set, 3, MS_ECORRUPT, "INFO differs", "part 2 (part-c), record 1 (INFO");

    /* A part's own failure, named by the part. */
    e.len = 0;
    th_buf_append(&e, m.part[1].data, m.part[1].len - 3);
    set[1] = &e;
    set[2] = &m.part[2];
    expect_open_fail(set, 3, MS_ETRUNCATED, "part 1 (part-b): record", NULL);
    edited(&m, 2, trailing_byte, &e);
    set[1] = &m.part[1];
    set[2] = &e;
    expect_open_fail(set, 3, MS_ECORRUPT, "part 2 (part-c): record", "bytes follow the END");
    th_buf_free(&e);
    th_buf_free(&plain);
    mig_free(&m);
}

/* A base page size other than the other parts'. */
static void test_page_size(void **state)
{
    (void)state;
    th_buf a = {0}, b = {0};
    for (int k = 0; k < 2; k++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.page_size = k ? 8192 : 4096;
        ms_part part = {.index = (uint32_t)k, .count = 2};
        memcpy(part.migration_id, ID, sizeof ID);
        o.part = &part;
        ms_writer *w = ms_writer_new(&o, th_sink_write, k ? &b : &a);
        W(ms_writer_finish(w, NULL));
        ms_writer_free(w);
    }
    th_buf *set[] = {&a, &b};
    expect_open_fail(set, 2, MS_ECORRUPT, "base page size 8192, but part 0 (part-a) has 4096",
                     NULL);
    th_buf_free(&a);
    th_buf_free(&b);
}

/* A lenient reader hears of each problem with its part named, and
 * ms_reader_error_part() says which part while it listens. */
typedef struct heard {
    ms_reader *r;
    int count;
    int64_t part[8];
    int64_t record[8];
    char msg[8][600];
} heard;

static void on_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *msg)
{
    (void)status;
    (void)offset;
    heard *h = ctx;
    if (h->count < 8) {
        h->part[h->count] = ms_reader_error_part(h->r);
        h->record[h->count] = record;
        snprintf(h->msg[h->count], sizeof h->msg[0], "%s", msg);
    }
    h->count++;
}

static void test_lenient(void **state)
{
    (void)state;
    mig m;
    build(&m, 3);
    th_buf info = {0}, ov = {0};
    edited(&m, 1, other_info, &info);
    /* A damaged checksum in part 2's last DEVICE record: the bytes differ
     * from what the chain says. */
    th_buf_append(&ov, m.part[2].data, m.part[2].len);
    th_stream ts;
    th_stream_parse(&ts, ov.data, ov.len);
    size_t dev = th_stream_find(&ts, MS_REC_DEVICE, 0);
    uint64_t at = th_stream_offset(&ts, dev + 1);
    th_stream_free(&ts);
    ov.data[at - 1] ^= 1; /* the device state's last byte: still a CBOR uint */

    heard h = {0};
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.on_problem = on_problem;
    ro.problem_ctx = &h;
    th_buf *set[] = {&m.part[0], &info, &ov};
    mem_in mi[3];
    ms_input in[3];
    ms_reader *r = open_bufs(&ro, set, 3, mi, in);
    h.r = r;
    W(ms_reader_status(r));
    const ms_record *rec;
    int rc, damaged = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        damaged += rec->status != 0;
    assert_status(rc, 0);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.part[0], 1);
    assert_int_equal(h.record[0], 1);
    assert_contains(h.msg[0], "part 1 (part-b), record 1 (INFO at byte");
    assert_contains(h.msg[0], "INFO differs");
    assert_int_equal(h.part[1], 2);
    assert_int_equal(h.record[1], (int64_t)dev);
    assert_contains(h.msg[1], "part 2 (part-c): record");
    assert_contains(h.msg[1], "checksum mismatch");
    assert_int_equal(damaged, 2);
    assert_int_equal(ms_reader_error_part(r), -1);
    ms_reader_free(r);
    th_buf_free(&info);
    th_buf_free(&ov);
    mig_free(&m);
}

/* An overlay of a frame and kind in two parts. */
static void test_overlay_twice(void **state)
{
    (void)state;
    th_buf b[2] = {{0}};
    for (uint32_t k = 0; k < 2; k++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.features = MS_FEATURE_OVERLAYS;
        ms_part part = {.index = k, .count = 2};
        memcpy(part.migration_id, ID, sizeof ID);
        o.part = &part;
        ms_writer *w = ms_writer_new(&o, th_sink_write, &b[k]);
        ms_region ram = {.id = 0, .name = "ram", .has_gpa = true, .size = 16 * PS, .page_size = PS};
        W(ms_writer_add_region(w, &ram));
        ms_overlay hc = {.gfn = 2, .kind = MS_OVERLAY_HYPERCALL};
        W(ms_writer_overlay(w, &hc));
        W(ms_writer_finish(w, NULL));
        ms_writer_free(w);
    }
    th_buf *set[] = {&b[0], &b[1]};
    expect_open_fail(set, 2, MS_ECORRUPT,
                     "frame 0x2 already has a HYPERCALL overlay in an "
                     "earlier part",
                     "part 1 (part-b), record 2 (OVERLAY");
    th_buf_free(&b[0]);
    th_buf_free(&b[1]);
}

/* ms_diff (diff.h): a migration in parts compares as the same migration in
 * one stream, its PARTS feature and the minor version that feature calls
 * for left out; what else differs in the header is still reported. */
static int diff_collect(void *ctx, const ms_diff_item *it)
{
    char(*fields)[32] = ctx;
    for (int i = 0; i < 4; i++)
        if (!fields[i][0]) {
            snprintf(fields[i], sizeof fields[i], "%s", it->field ? it->field : "?");
            break;
        }
    return 0;
}

static int diff_parts(mig *m, const th_buf *single, char fields[4][32])
{
    static const uint32_t order[MAX_PARTS] = {1, 0, 2, 3};
    mem_in mi[MAX_PARTS];
    ms_input in[MAX_PARTS];
    ms_diff *d = ms_diff_new(NULL);
    ms_reader *ra = ms_reader_new_memory(NULL, single->data, single->len);
    ms_reader *rb = open_parts(m, order, mi, in);
    W(ms_diff_load(d, MS_DIFF_A, ra, "single"));
    W(ms_diff_load(d, MS_DIFF_B, rb, "parts"));
    memset(fields, 0, 4 * sizeof fields[0]);
    int rc = ms_diff_compare(d, diff_collect, fields);
    assert_true(rc >= 0);
    ms_reader_free(ra);
    ms_reader_free(rb);
    ms_diff_free(d);
    return rc;
}

static void test_diff(void **state)
{
    (void)state;
    mig m;
    build(&m, 3);
    char fields[4][32];
    assert_int_equal(diff_parts(&m, &m.single, fields), 0);

    /* Against a stream that requires less (FILL alone), the required
     * features still differ, the PARTS bit aside. */
    th_buf other = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.machine = "pc";
    o.features = MS_FEATURE_FILL;
    ms_writer *w = ms_writer_new(&o, th_sink_write, &other);
    W(ms_writer_finish(w, NULL));
    ms_writer_free(w);
    assert_true(diff_parts(&m, &other, fields) >= 1);
    assert_string_equal(fields[0], "required_features");
    assert_string_equal(fields[1], "?"); /* then regions: no other metadata */
    th_buf_free(&other);
    mig_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_page_size),
        cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_overlay_twice),
        cmocka_unit_test(test_diff),
    };
    return th_run_tests(tests);
}
