/*
 * Shared test helpers (see helpers.h). The framing code here is written from
 * docs/FORMAT.md sections 3, 4, 6, 7.2 and 8 so that tests check the library
 * against the spec rather than against itself.
 */
#include <stdlib.h>
#include <xxhash.h>

#include "helpers.h"

#define PREAMBLE_MIN 112u
#define RECORD_HEADER 16u

/* ------------------------------------------------------------ little-endian */

uint16_t th_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t th_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t th_get64(const uint8_t *p)
{
    return (uint64_t)th_get32(p) | (uint64_t)th_get32(p + 4) << 32;
}

void th_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void th_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void th_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------ buffers */

void th_buf_append(th_buf *b, const void *p, size_t n)
{
    /* @p may point into @b itself: keep its offset across a realloc */
    const uint8_t *src = p;
    bool inside = b->data && src >= b->data && src < b->data + b->len;
    size_t src_off = inside ? (size_t)(src - b->data) : 0;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        assert_non_null(d);
        b->data = d;
        b->cap = cap;
    }
    if (inside)
        src = b->data + src_off;
    if (n)
        memmove(b->data + b->len, src, n);
    b->len += n;
}

void th_buf_u8(th_buf *b, uint8_t v)
{
    th_buf_append(b, &v, 1);
}

void th_buf_free(th_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int th_sink_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    th_buf *b = ctx;
    for (int i = 0; i < iovcnt; i++)
        th_buf_append(b, iov[i].iov_base, iov[i].iov_len);
    return 0;
}

/* ------------------------------------------------------------------- random */

uint64_t th_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t th_rand_below(uint64_t *s, uint64_t n)
{
    return n ? th_rand(s) % n : 0;
}

void th_rand_fill(uint64_t *s, void *p, size_t n)
{
    uint8_t *d = p;
    while (n >= 8) {
        uint64_t v = th_rand(s);
        memcpy(d, &v, 8);
        d += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = th_rand(s);
        memcpy(d, &v, n);
    }
}

void th_make_page(uint8_t *p, size_t ps, th_page_kind kind, uint64_t *rng)
{
    uint8_t nz = (uint8_t)(1 + th_rand_below(rng, 255));
    switch (kind) {
    case TH_PAGE_ZERO:
        memset(p, 0, ps);
        break;
    case TH_PAGE_RANDOM:
        th_rand_fill(rng, p, ps);
        break;
    case TH_PAGE_TEXT: {
        unsigned tag = (unsigned)th_rand_below(rng, 1000000);
        size_t off = 0;
        for (unsigned line = 0; off < ps; line++) {
            char tmp[96];
            int k = snprintf(tmp, sizeof tmp, "page %06u line %05u: the quick brown fox jumps\n",
                             tag, line);
            size_t take = (size_t)k < ps - off ? (size_t)k : ps - off;
            memcpy(p + off, tmp, take);
            off += take;
        }
        break;
    }
    case TH_PAGE_BYTE_FIRST:
    case TH_PAGE_BYTE_MID:
    case TH_PAGE_BYTE_LAST:
        memset(p, 0, ps);
        p[kind == TH_PAGE_BYTE_FIRST ? 0 : kind == TH_PAGE_BYTE_MID ? ps / 2 : ps - 1] = nz;
        break;
    default:
        fail_msg("bad page kind %d", (int)kind);
    }
}

bool th_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* ------------------------------------------------------------------ running */

void th_apply_filter(void)
{
    const char *f = getenv("MS_TEST_FILTER");
    if (f && *f)
        cmocka_set_test_filter(f);
}

/* ------------------------------------------------------------------ reading */

int th_read_all(ms_reader *r, size_t *records)
{
    const ms_record *rec;
    size_t n = 0;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        if (rec->type != MS_REC_END)
            n++;
    if (records)
        *records = n;
    return rc;
}

/* ------------------------------------------------------------- small stream */

void th_write_small_stream(th_buf *out, const ms_writer_options *o)
{
    static const ms_region ram = {
        .id = 1, .name = "ram", .has_gpa = true, .gpa = 0, .size = 16 * 4096, .page_size = 4096};
    static const ms_region vram = {
        .id = 2, .name = "vram", .has_gpa = false, .size = 4 * 8192, .page_size = 8192};
    static const uint8_t state[] = {0xa2, 0x00, 0x43, 1,
                                    2,    3,    0x01, 0xf5}; /* {0:h'010203',1:true} */
    uint64_t rng = 42;
    uint8_t *mem = malloc(16 * 4096);
    assert_non_null(mem);
    for (unsigned i = 0; i < 16; i++)
        th_make_page(mem + i * 4096, 4096,
                     (i % 4 == 2 || i % 4 == 3) ? TH_PAGE_ZERO : TH_PAGE_RANDOM, &rng);
    uint8_t *vmem = malloc(4 * 8192);
    assert_non_null(vmem);
    for (unsigned i = 0; i < 4; i++)
        th_make_page(vmem + i * 8192, 8192, TH_PAGE_TEXT, &rng);

    ms_writer *w = ms_writer_new(o, th_sink_write, out);
    assert_non_null(w);
    assert_status(ms_writer_add_region(w, &ram), 0);
    assert_status(ms_writer_add_region(w, &vram), 0);
    assert_status(ms_writer_pages(w, 1, 0, 16, mem), 0);
    assert_status(ms_writer_pages(w, 2, 0, 4, vmem), 0);
    assert_status(ms_writer_device(w, "cpu/0", 0, "x86-cpu", 3, state, sizeof state), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    free(mem);
    free(vmem);
}

/* ---------------------------------------------------------------- allocator */

/* Each block carries its size in a 16-byte prefix (keeps malloc alignment). */
#define PREFIX 16u

static void *a_alloc(void *opaque, size_t size)
{
    th_alloc *a = opaque;
    size_t call = a->calls++;
    if (size > a->peak_block)
        a->peak_block = size;
    if (call == a->fail_at) {
        a->failed = true;
        return NULL;
    }
    uint8_t *p = malloc(size + PREFIX);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    a->live++;
    a->bytes += size;
    if (a->bytes > a->peak_bytes)
        a->peak_bytes = a->bytes;
    return p + PREFIX;
}

static void a_free(void *opaque, void *ptr)
{
    th_alloc *a = opaque;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - PREFIX;
    size_t size;
    memcpy(&size, p, sizeof size);
    assert_true(a->live > 0);
    a->live--;
    a->bytes -= size;
    free(p);
}

static void *a_realloc(void *opaque, void *ptr, size_t size)
{
    th_alloc *a = opaque;
    if (!ptr)
        return a_alloc(opaque, size);
    size_t call = a->calls++;
    if (size > a->peak_block)
        a->peak_block = size;
    if (call == a->fail_at) {
        a->failed = true;
        return NULL;
    }
    uint8_t *p = (uint8_t *)ptr - PREFIX;
    size_t old;
    memcpy(&old, p, sizeof old);
    uint8_t *q = realloc(p, size + PREFIX);
    if (!q)
        return NULL;
    memcpy(q, &size, sizeof size);
    a->bytes = a->bytes - old + size;
    if (a->bytes > a->peak_bytes)
        a->peak_bytes = a->bytes;
    return q + PREFIX;
}

void th_alloc_init(th_alloc *a, size_t fail_at)
{
    memset(a, 0, sizeof *a);
    a->fail_at = fail_at;
}

ms_allocator th_allocator(th_alloc *a)
{
    return (ms_allocator){.alloc = a_alloc, .realloc = a_realloc, .free = a_free, .opaque = a};
}

/* --------------------------------------------------------------------- CBOR */

void th_cbor_head(th_buf *b, unsigned major, uint64_t v)
{
    uint8_t m = (uint8_t)(major << 5);
    if (v < 24) {
        th_buf_u8(b, m | (uint8_t)v);
    } else if (v <= 0xff) {
        th_buf_u8(b, m | 24);
        th_buf_u8(b, (uint8_t)v);
    } else if (v <= 0xffff) {
        th_buf_u8(b, m | 25);
        for (int s = 8; s >= 0; s -= 8)
            th_buf_u8(b, (uint8_t)(v >> s));
    } else if (v <= 0xffffffffu) {
        th_buf_u8(b, m | 26);
        for (int s = 24; s >= 0; s -= 8)
            th_buf_u8(b, (uint8_t)(v >> s));
    } else {
        th_buf_u8(b, m | 27);
        for (int s = 56; s >= 0; s -= 8)
            th_buf_u8(b, (uint8_t)(v >> s));
    }
}

void th_cbor_uint(th_buf *b, uint64_t v)
{
    th_cbor_head(b, 0, v);
}

void th_cbor_text(th_buf *b, const char *s)
{
    th_cbor_head(b, 3, strlen(s));
    th_buf_append(b, s, strlen(s));
}

void th_cbor_int(th_buf *b, int64_t v)
{
    /* major 1 encodes -1 - n (RFC 8949 section 3.1) */
    if (v >= 0)
        th_cbor_head(b, 0, (uint64_t)v);
    else
        th_cbor_head(b, 1, (uint64_t)(-(v + 1)));
}

void th_cbor_bool(th_buf *b, bool v)
{
    th_buf_u8(b, v ? 0xf5 : 0xf4);
}

void th_cbor_bytes(th_buf *b, const void *p, size_t n)
{
    th_cbor_head(b, 2, n);
    th_buf_append(b, p, n);
}

bool th_cbor_array_count(const uint8_t *p, size_t n, uint64_t *count)
{
    if (n == 0 || p[0] >> 5 != 4)
        return false;
    unsigned ai = p[0] & 31u;
    if (ai < 24) {
        *count = ai;
        return true;
    }
    if (ai > 27)
        return false; /* indefinite lengths are outside the profile */
    size_t len = (size_t)1 << (ai - 24);
    if (n < 1 + len)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | p[1 + i];
    *count = v;
    return true;
}

void th_cbor_round(th_buf *b, const ms_round *r)
{
    /* FORMAT.md section 6.4: granularity only with a tracker, dirty only
     * when known, final only when true */
    bool gran = r->tracker != 0;
    th_cbor_head(b, 5, 2 + gran + r->has_dirty + r->final);
    th_cbor_uint(b, 0);
    th_cbor_uint(b, r->number);
    th_cbor_uint(b, 1);
    th_cbor_uint(b, r->tracker);
    if (gran) {
        th_cbor_uint(b, 2);
        th_cbor_uint(b, r->granularity);
    }
    if (r->has_dirty) {
        th_cbor_uint(b, 3);
        th_cbor_uint(b, r->dirty);
    }
    if (r->final) {
        th_cbor_uint(b, 4);
        th_cbor_bool(b, true);
    }
}

void th_cbor_overlay(th_buf *b, const ms_overlay *o)
{
    th_cbor_head(b, 5, 3);
    th_cbor_uint(b, 0);
    th_cbor_uint(b, o->gfn);
    th_cbor_uint(b, 1);
    th_cbor_uint(b, o->kind);
    th_cbor_uint(b, 2);
    switch (o->kind) {
    case MS_OVERLAY_HYPERCALL:
        th_cbor_head(b, 5, 1);
        th_cbor_uint(b, 0);
        th_cbor_uint(b, o->hypercall.vendor);
        break;
    case MS_OVERLAY_REFERENCE_TSC: {
        bool off = o->tsc.offset != 0;
        th_cbor_head(b, 5, (o->tsc.has_frequency ? 1 : 2) + off);
        if (!o->tsc.has_frequency) {
            th_cbor_uint(b, 0);
            th_cbor_uint(b, o->tsc.sequence);
            th_cbor_uint(b, 1);
            th_cbor_uint(b, o->tsc.scale);
        }
        if (off) {
            th_cbor_uint(b, 2);
            th_cbor_int(b, o->tsc.offset);
        }
        if (o->tsc.has_frequency) {
            th_cbor_uint(b, 3);
            th_cbor_uint(b, o->tsc.frequency);
        }
        break;
    }
    default: { /* SynIC kinds, and unknown kinds for hostile streams */
        unsigned slots = 0;
        for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
            slots += (o->synic.slot_mask >> s) & 1u;
        th_cbor_head(b, 5, 1 + (slots != 0));
        th_cbor_uint(b, 0);
        th_cbor_uint(b, o->synic.vp);
        if (slots) {
            th_cbor_uint(b, 1);
            th_cbor_head(b, 5, slots);
            for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++) {
                if (!((o->synic.slot_mask >> s) & 1u))
                    continue;
                th_cbor_uint(b, s);
                th_cbor_bytes(b, o->synic.slot[s], MS_SYNIC_SLOT_SIZE);
            }
        }
    }
    }
}

void th_cbor_end(th_buf *b, const ms_totals *t)
{
    unsigned states = 0;
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++)
        states += t->pages[s] != 0;
    /* keys 4 (rounds) and 5 (overlays) are optional: writers omit zeros */
    th_cbor_head(b, 5, 4 + (t->rounds != 0) + (t->overlays != 0));
    th_cbor_uint(b, 0);
    th_cbor_uint(b, t->records);
    th_cbor_uint(b, 1);
    th_cbor_uint(b, t->bytes);
    th_cbor_uint(b, 2);
    th_cbor_head(b, 5, states);
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++) {
        if (!t->pages[s])
            continue;
        th_cbor_uint(b, s);
        th_cbor_uint(b, t->pages[s]);
    }
    th_cbor_uint(b, 3);
    th_cbor_uint(b, t->devices);
    if (t->rounds) {
        th_cbor_uint(b, 4);
        th_cbor_uint(b, t->rounds);
    }
    if (t->overlays) {
        th_cbor_uint(b, 5);
        th_cbor_uint(b, t->overlays);
    }
}

void th_cbor_region(th_buf *b, uint32_t id, const char *name, bool has_gpa, uint64_t gpa,
                    uint64_t size, uint32_t page_size)
{
    th_cbor_head(b, 5, has_gpa ? 5 : 4);
    th_cbor_uint(b, 0);
    th_cbor_uint(b, id);
    th_cbor_uint(b, 1);
    th_cbor_text(b, name);
    if (has_gpa) {
        th_cbor_uint(b, 2);
        th_cbor_uint(b, gpa);
    }
    th_cbor_uint(b, 3);
    th_cbor_uint(b, size);
    th_cbor_uint(b, 4);
    th_cbor_uint(b, page_size);
}

/* -------------------------------------------------------------------- PAGES */

void th_pages_head(th_buf *b, uint32_t region_id, uint32_t extents, uint8_t encoding)
{
    uint8_t h[16] = {0};
    th_put32(h, region_id);
    th_put32(h + 4, extents);
    h[8] = encoding;
    th_buf_append(b, h, sizeof h);
}

void th_pages_extent(th_buf *b, uint64_t first, uint32_t count, uint8_t state)
{
    th_pages_extent_arg(b, first, count, state, 0);
}

void th_pages_extent_arg(th_buf *b, uint64_t first, uint32_t count, uint8_t state, uint64_t arg)
{
    uint8_t x[24] = {0};
    th_put64(x, first);
    th_put32(x + 8, count);
    x[12] = state;
    th_put64(x + 16, arg);
    th_buf_append(b, x, sizeof x);
}

/* ----------------------------------------------------------- editable stream */

static void rec_reserve(th_stream *ts)
{
    if (ts->n < ts->cap)
        return;
    ts->cap = ts->cap ? ts->cap * 2 : 16;
    ts->rec = realloc(ts->rec, ts->cap * sizeof *ts->rec);
    assert_non_null(ts->rec);
}

void th_stream_parse(th_stream *ts, const uint8_t *s, size_t n)
{
    memset(ts, 0, sizeof *ts);
    assert_true(n >= 16);
    uint32_t hs = th_get32(s + 12);
    assert_true(hs >= PREAMBLE_MIN && hs <= n);
    th_buf_append(&ts->pre, s, hs);
    size_t off = hs;
    while (n - off >= RECORD_HEADER) {
        uint32_t len = th_get32(s + off + 4);
        if (len > n - off - RECORD_HEADER)
            break;
        rec_reserve(ts);
        th_rec *r = &ts->rec[ts->n++];
        memset(r, 0, sizeof *r);
        r->type = th_get16(s + off);
        r->flags = th_get16(s + off + 2);
        th_buf_append(&r->payload, s + off + RECORD_HEADER, len);
        off += RECORD_HEADER + len;
    }
    th_buf_append(&ts->trailer, s + off, n - off);
}

void th_stream_free(th_stream *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        th_buf_free(&ts->rec[i].payload);
    free(ts->rec);
    th_buf_free(&ts->pre);
    th_buf_free(&ts->trailer);
    memset(ts, 0, sizeof *ts);
}

size_t th_stream_find(const th_stream *ts, uint16_t type, size_t nth)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->rec[i].type == type && nth-- == 0)
            return i;
    fail_msg("no record of type %u (occurrence asked)", type);
    return 0;
}

void th_stream_insert(th_stream *ts, size_t at, uint16_t type, uint16_t flags, const void *p,
                      size_t n)
{
    assert_true(at <= ts->n);
    rec_reserve(ts);
    memmove(&ts->rec[at + 1], &ts->rec[at], (ts->n - at) * sizeof *ts->rec);
    ts->n++;
    th_rec *r = &ts->rec[at];
    memset(r, 0, sizeof *r);
    r->type = type;
    r->flags = flags;
    th_buf_append(&r->payload, p, n);
}

void th_stream_remove(th_stream *ts, size_t at)
{
    assert_true(at < ts->n);
    th_buf_free(&ts->rec[at].payload);
    memmove(&ts->rec[at], &ts->rec[at + 1], (ts->n - at - 1) * sizeof *ts->rec);
    ts->n--;
}

void th_stream_set(th_stream *ts, size_t at, const void *p, size_t n)
{
    assert_true(at < ts->n);
    th_buf *b = &ts->rec[at].payload;
    b->len = 0;
    th_buf_append(b, p, n);
}

uint64_t th_stream_offset(const th_stream *ts, size_t at)
{
    uint64_t off = ts->pre.len;
    for (size_t i = 0; i < at && i < ts->n; i++)
        off += RECORD_HEADER + ts->rec[i].payload.len;
    return off;
}

void th_stream_fix_preamble(th_stream *ts)
{
    size_t hs = ts->pre.len;
    th_put64(ts->pre.data + hs - 8, XXH3_64bits_withSeed(ts->pre.data, hs - 8, 0));
}

void th_stream_totals(const th_stream *ts, size_t upto, ms_totals *t)
{
    memset(t, 0, sizeof *t);
    t->records = upto;
    t->bytes = th_stream_offset(ts, upto);
    for (size_t i = 0; i < upto; i++) {
        const th_rec *r = &ts->rec[i];
        uint64_t overlays;
        if (r->type == MS_REC_DEVICE)
            t->devices++;
        if (r->type == MS_REC_ROUND)
            t->rounds++;
        /* each element of an OVERLAY record's array is one overlay */
        if (r->type == MS_REC_OVERLAY &&
            th_cbor_array_count(r->payload.data, r->payload.len, &overlays))
            t->overlays += overlays;
        if (r->type != MS_REC_PAGES || r->payload.len < 16)
            continue;
        uint32_t next = th_get32(r->payload.data + 4);
        for (uint32_t k = 0; k < next && 16 + 24 * (size_t)(k + 1) <= r->payload.len; k++) {
            const uint8_t *x = r->payload.data + 16 + 24 * (size_t)k;
            if (x[12] < MS_PAGE_STATE_SLOTS)
                t->pages[x[12]] += th_get32(x + 8);
        }
    }
}

void th_stream_fix_end(th_stream *ts)
{
    assert_true(ts->n > 0);
    assert_int_equal(ts->rec[ts->n - 1].type, MS_REC_END);
    ms_totals t;
    th_stream_totals(ts, ts->n - 1, &t);
    th_buf b = {0};
    th_cbor_end(&b, &t);
    th_stream_set(ts, ts->n - 1, b.data, b.len);
    th_buf_free(&b);
}

static uint64_t record_sum(uint64_t seed, const uint8_t *hdr8, const uint8_t *payload, size_t len)
{
    uint8_t *tmp = malloc(8 + len);
    assert_non_null(tmp);
    memcpy(tmp, hdr8, 8);
    if (len)
        memcpy(tmp + 8, payload, len);
    uint64_t sum = XXH3_64bits_withSeed(tmp, 8 + len, seed);
    free(tmp);
    return sum;
}

void th_stream_build(const th_stream *ts, th_buf *out)
{
    out->len = 0;
    th_buf_append(out, ts->pre.data, ts->pre.len);
    uint64_t seed = th_get64(ts->pre.data + ts->pre.len - 8);
    for (size_t i = 0; i < ts->n; i++) {
        const th_rec *r = &ts->rec[i];
        uint8_t h[RECORD_HEADER];
        th_put16(h, r->type);
        th_put16(h + 2, r->flags);
        th_put32(h + 4, (uint32_t)r->payload.len);
        seed = record_sum(seed, h, r->payload.data, r->payload.len);
        th_put64(h + 8, seed);
        th_buf_append(out, h, sizeof h);
        th_buf_append(out, r->payload.data, r->payload.len);
    }
    th_buf_append(out, ts->trailer.data, ts->trailer.len);
}

size_t th_check_chain(const uint8_t *s, size_t n)
{
    assert_true(n >= PREAMBLE_MIN);
    uint32_t hs = th_get32(s + 12);
    assert_true(hs >= PREAMBLE_MIN && hs <= n);
    uint64_t seed = th_get64(s + hs - 8);
    assert_true(seed == XXH3_64bits_withSeed(s, hs - 8, 0));
    size_t off = hs, count = 0;
    while (off < n) {
        assert_true(n - off >= RECORD_HEADER);
        uint32_t len = th_get32(s + off + 4);
        assert_true(len <= n - off - RECORD_HEADER);
        uint64_t sum = record_sum(seed, s + off, s + off + RECORD_HEADER, len);
        if (sum != th_get64(s + off + 8))
            fail_msg("record %zu at byte %zu: stored checksum %016llx, spec says %016llx", count,
                     off, (unsigned long long)th_get64(s + off + 8), (unsigned long long)sum);
        seed = sum;
        off += RECORD_HEADER + len;
        count++;
    }
    return count;
}
