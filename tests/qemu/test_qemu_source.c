/*
 * The QEMU module as a foreign-format source (libmigstream/qemu/source.h,
 * format/source.h): its bid, the records it hands out for the captures of
 * tests/data/qemu (the same guest as the imported stream read back by the
 * reader), the bounds on what one next() call hands out and on the memory
 * it takes, multifd channels given as file descriptors, failures, which
 * next() reports as the import does, and XBZRLE pages decoded against
 * previous copies kept in memory or in the page file.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <migstream/migstream.h>

#include "format/source.h"
#include "qemu/sink.h"
#include "qemu/source.h"
#include "qemu_fixture.h"

#define PS 4096u
#define MAX_CH 4

/* ------------------------------------------------------------- inputs */

typedef struct memin {
    const uint8_t *p;
    size_t len, pos, chunk;
} memin;

/* At most `chunk` bytes per call (when set), so that items straddle reads. */
static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t n = m->len - m->pos;
    if (n > len)
        n = len;
    if (m->chunk && n > m->chunk)
        n = m->chunk;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

typedef struct obuf {
    uint8_t *p;
    size_t len, cap;
} obuf;

static int obuf_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    obuf *b = ctx;
    for (int i = 0; i < iovcnt; i++) {
        size_t n = iov[i].iov_len;
        if (n > b->cap - b->len) {
            size_t cap = b->cap ? b->cap : 1 << 16;
            while (cap - b->len < n)
                cap *= 2;
            b->p = realloc(b->p, cap);
            assert_non_null(b->p);
            b->cap = cap;
        }
        memcpy(b->p + b->len, iov[i].iov_base, n);
        b->len += n;
    }
    return 0;
}

/* A capture: the main stream and its multifd channels. */
typedef struct capture {
    const char *name;
    uint8_t *main;
    size_t main_len;
    uint8_t *ch[MAX_CH];
    size_t ch_len[MAX_CH];
    size_t nch;
} capture;

static void load(const char *name, size_t nch, capture *c)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->main = th_qemu_fixture(name, &c->main_len);
    for (size_t i = 0; i < nch; i++) {
        char n[128];
        snprintf(n, sizeof n, "%s.chan%zu", name, i);
        c->ch[i] = th_qemu_fixture(n, &c->ch_len[i]);
    }
    c->nch = nch;
}

static void unload(capture *c)
{
    free(c->main);
    for (size_t i = 0; i < c->nch; i++)
        free(c->ch[i]);
}

/* The single-stream and multifd captures (the multifd ones with their
 * channels). */
static const struct {
    const char *name;
    size_t nch;
} captures[] = {
    {"q35-paused", 0},   {"pc-paused", 0},        {"q35-devices", 0},      {"q35-no-vmdesc", 0},
    {"q35-compress", 0}, {"pc-xbzrle-live", 0},   {"q35-dirty-bitmap", 0}, {"q35-config", 0},
    {"q35-multifd", 2},  {"q35-multifd-zlib", 2}, {"q35-multifd-zstd", 2}, {"pc-multifd-live", 3},
};

/* ------------------------------------------------------------- the guest */

typedef struct region_img {
    ms_region r;
    char name[256];
    uint8_t *mem;
} region_img;

typedef struct device_rec {
    char path[256], schema[256];
    uint32_t instance, version;
    uint8_t *state;
    size_t size;
} device_rec;

/* What a sequence of records leaves: memory, devices, rounds. */
typedef struct guest {
    region_img regions[16];
    size_t nregions;
    device_rec devices[64];
    size_t ndevices;
    ms_round rounds[128];
    size_t nrounds;
    char machine[256];
    ms_totals totals;
    uint64_t pages; /* every page of every PAGES record */
} guest;

static region_img *region_of(guest *g, uint32_t id)
{
    for (size_t i = 0; i < g->nregions; i++)
        if (g->regions[i].r.id == id)
            return &g->regions[i];
    fail_msg("no region %u", id);
    return NULL;
}

static void apply(guest *g, const ms_record *rec)
{
    switch (rec->type) {
    case MS_REC_INFO:
        snprintf(g->machine, sizeof g->machine, "%s", rec->info.machine ? rec->info.machine : "");
        break;
    case MS_REC_REGIONS:
        for (size_t i = 0; i < rec->region_count; i++) {
            assert_true(g->nregions < 16);
            region_img *ri = &g->regions[g->nregions++];
            ri->r = rec->regions[i];
            snprintf(ri->name, sizeof ri->name, "%s", rec->regions[i].name);
            ri->r.name = ri->name;
            /* A damaged table may declare anything up to max_ram_bytes:
             * such a region's pages are checked, not kept. */
            if (ri->r.size <= (1u << 30)) {
                ri->mem = calloc(1, (size_t)ri->r.size);
                assert_non_null(ri->mem);
            }
        }
        break;
    case MS_REC_PAGES: {
        const ms_pages *pg = &rec->pages;
        region_img *ri = region_of(g, pg->region->id);
        const uint8_t *data = pg->data;
        for (size_t e = 0; e < pg->extent_count; e++) {
            const ms_extent *x = &pg->extents[e];
            uint8_t *dst = ri->mem ? ri->mem + x->first * ri->r.page_size : NULL;
            size_t bytes = (size_t)x->count * ri->r.page_size;
            assert_true((x->first + x->count) * ri->r.page_size <= ri->r.size);
            if (x->state == MS_PAGE_DATA) {
                if (dst)
                    memcpy(dst, data, bytes);
                data += bytes;
            } else {
                assert_int_equal(x->state, MS_PAGE_ZERO);
                if (dst)
                    memset(dst, 0, bytes);
            }
            g->pages += x->count;
        }
        assert_int_equal((size_t)(data - pg->data), pg->data_size);
        break;
    }
    case MS_REC_ROUND:
        assert_true(g->nrounds < 128);
        g->rounds[g->nrounds++] = rec->round;
        break;
    case MS_REC_DEVICE: {
        assert_true(g->ndevices < 64);
        device_rec *d = &g->devices[g->ndevices++];
        snprintf(d->path, sizeof d->path, "%s", rec->device.path);
        snprintf(d->schema, sizeof d->schema, "%s", rec->device.schema);
        d->instance = rec->device.instance;
        d->version = rec->device.version;
        d->size = rec->device.state_size;
        d->state = malloc(d->size ? d->size : 1);
        assert_non_null(d->state);
        memcpy(d->state, rec->device.state, d->size);
        break;
    }
    case MS_REC_END:
        g->totals = rec->totals;
        break;
    default:
        fail_msg("record type %u", rec->type);
    }
}

static void guest_free(guest *g)
{
    for (size_t i = 0; i < g->nregions; i++)
        free(g->regions[i].mem);
    for (size_t i = 0; i < g->ndevices; i++)
        free(g->devices[i].state);
}

static void guest_same(const guest *a, const guest *b)
{
    assert_string_equal(a->machine, b->machine);
    assert_int_equal(a->nregions, b->nregions);
    for (size_t i = 0; i < a->nregions; i++) {
        const region_img *x = &a->regions[i], *y = &b->regions[i];
        assert_int_equal(x->r.id, y->r.id);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->r.size, y->r.size);
        assert_int_equal(x->r.page_size, y->r.page_size);
        assert_int_equal(x->r.has_gpa, y->r.has_gpa);
        assert_memory_equal(x->mem, y->mem, (size_t)x->r.size);
    }
    assert_int_equal(a->ndevices, b->ndevices);
    for (size_t i = 0; i < a->ndevices; i++) {
        const device_rec *x = &a->devices[i], *y = &b->devices[i];
        assert_string_equal(x->path, y->path);
        assert_string_equal(x->schema, y->schema);
        assert_int_equal(x->instance, y->instance);
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->size, y->size);
        assert_memory_equal(x->state, y->state, x->size);
    }
    assert_int_equal(a->nrounds, b->nrounds);
    for (size_t i = 0; i < a->nrounds; i++) {
        assert_int_equal(a->rounds[i].number, b->rounds[i].number);
        assert_int_equal(a->rounds[i].tracker, b->rounds[i].tracker);
        assert_int_equal(a->rounds[i].granularity, b->rounds[i].granularity);
        assert_int_equal(a->rounds[i].has_dirty, b->rounds[i].has_dirty);
    }
    /* The writer stores a page of zeros sent as data as ZERO, so only the
     * sums of the page counts agree. */
    assert_int_equal(a->pages, b->pages);
    assert_int_equal(a->totals.devices, b->totals.devices);
    assert_int_equal(a->totals.rounds, b->totals.rounds);
}

/* ------------------------------------------------------------ allocation */

/* Counts the bytes the source holds, and their peak. */
typedef struct counting {
    size_t now, peak;
} counting;

static void *count_alloc(void *opaque, size_t size)
{
    counting *c = opaque;
    size_t *p = malloc(sizeof(size_t) * 2 + size);
    if (!p)
        return NULL;
    p[0] = size;
    c->now += size;
    if (c->now > c->peak)
        c->peak = c->now;
    return p + 2;
}

static void count_free(void *opaque, void *ptr)
{
    counting *c = opaque;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    c->now -= p[0];
    free(p);
}

static void *count_realloc(void *opaque, void *ptr, size_t size)
{
    if (!ptr)
        return count_alloc(opaque, size);
    size_t old = ((size_t *)ptr)[-2];
    void *n = count_alloc(opaque, size);
    if (!n)
        return NULL;
    memcpy(n, ptr, old < size ? old : size);
    count_free(opaque, ptr);
    return n;
}

/* ------------------------------------------------------------- running */

typedef struct src_result {
    int rc;
    char msg[512];
    uint64_t err_offset;
    guest g;
    uint64_t records;
    size_t max_data, max_extents;
    uint64_t max_pages, max_advance;
    size_t peak;
} src_result;

/* Runs the source over @c (reads of at most @chunk bytes) and checks every
 * record as a reader would hand it out. */
static void run_source(const capture *c, size_t chunk, src_result *res)
{
    memset(res, 0, sizeof *res);
    memin m = {c->main, c->main_len, 0, chunk}, cm[MAX_CH];
    msi_source_channel ch[MAX_CH];
    for (size_t i = 0; i < c->nch; i++) {
        cm[i] = (memin){c->ch[i], c->ch_len[i], 0, chunk};
        ch[i] = (msi_source_channel){mem_read, &cm[i], NULL};
    }
    const msi_source_io io = {
        .read = mem_read, .read_ctx = &m, .channels = ch, .nchannels = c->nch};
    counting cnt = {0, 0};
    const ms_allocator a = {count_alloc, count_realloc, count_free, &cnt};
    msi_source s;
    msi_source_init(&s, &mq_source_ops, &a, &io, NULL);
    int rc = msi_source_open(&s);
    if (!rc) {
        assert_int_equal(s.header.page_size, PS);
        assert_string_equal(s.header.writer_name, "qemu");
        const ms_record *rec;
        bool first = true, ended = false;
        uint64_t before = mq_source_offset(&s);
        while ((rc = msi_source_next(&s, &rec)) > 0) {
            assert_false(ended);
            uint64_t now = mq_source_offset(&s);
            if (now - before > res->max_advance)
                res->max_advance = now - before;
            before = now;
            assert_int_equal(rec->index, res->records);
            res->records++;
            assert_true(rec->known);
            assert_null(rec->payload);
            assert_int_equal(rec->status, 0);
            if (first && s.info.machine)
                assert_int_equal(rec->type, MS_REC_INFO);
            first = false;
            if (rec->type == MS_REC_PAGES) {
                const ms_pages *p = &rec->pages;
                uint64_t pages = 0, data = 0;
                assert_int_equal(p->encoding, MS_ENCODING_RAW);
                assert_true(p->extent_count > 0);
                for (size_t i = 0; i < p->extent_count; i++) {
                    const ms_extent *x = &p->extents[i];
                    assert_true(x->count > 0);
                    if (i)
                        assert_true(x->first >= p->extents[i - 1].first + p->extents[i - 1].count);
                    pages += x->count;
                    if (x->state == MS_PAGE_DATA)
                        data += x->count;
                }
                assert_int_equal(p->data_size, data * p->region->page_size);
                if (p->data_size > res->max_data)
                    res->max_data = p->data_size;
                if (p->extent_count > res->max_extents)
                    res->max_extents = p->extent_count;
                if (pages > res->max_pages)
                    res->max_pages = pages;
            }
            if (rec->type == MS_REC_END) {
                ended = true;
                assert_int_equal(rec->totals.records, rec->index);
                assert_int_equal(rec->totals.bytes, c->main_len);
            }
            apply(&res->g, rec);
        }
        if (!rc) {
            assert_true(ended);
            /* After END: 0 again, and nothing else. */
            assert_int_equal(msi_source_next(&s, &rec), 0);
        }
    }
    res->rc = s.status;
    assert_int_equal(rc < 0 ? rc : 0, s.status);
    snprintf(res->msg, sizeof res->msg, "%s", s.msg);
    res->err_offset = s.err_offset;
    msi_source_close(&s);
    res->peak = cnt.peak;
    assert_int_equal(cnt.now, 0); /* close frees everything */
}

typedef struct imp_result {
    int rc;
    char msg[512];
    uint64_t err_offset;
    obuf out;
    ms_qemu_import_stats stats;
} imp_result;

static void run_import(const capture *c, size_t chunk, imp_result *res)
{
    memset(res, 0, sizeof *res);
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    assert_non_null(imp);
    memin m = {c->main, c->main_len, 0, chunk}, cm[MAX_CH];
    for (size_t i = 0; i < c->nch; i++) {
        cm[i] = (memin){c->ch[i], c->ch_len[i], 0, chunk};
        assert_int_equal(ms_qemu_import_add_channel(imp, mem_read, &cm[i], NULL), 0);
    }
    res->rc = ms_qemu_import_run(imp, mem_read, &m, obuf_write, &res->out);
    snprintf(res->msg, sizeof res->msg, "%s", ms_qemu_import_errmsg(imp));
    res->err_offset = ms_qemu_import_error_offset(imp);
    res->stats = *ms_qemu_import_get_stats(imp);
    ms_qemu_import_free(imp);
}

/* Reads an imported stream strictly and rebuilds its guest. */
static void read_back(const obuf *b, guest *g)
{
    memset(g, 0, sizeof *g);
    ms_reader *r = ms_reader_new_memory(NULL, b->p, b->len);
    assert_non_null(r);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        apply(g, rec);
    assert_int_equal(rc, 0);
    assert_int_equal(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
}

/* ---------------------------------------------------------------- bid */

static void test_bid(void **state)
{
    (void)state;
    uint8_t head[MSI_SOURCE_BID_BYTES];
    memset(head, 0, sizeof head);
    memcpy(head, "QEVM\0\0\0\3\x07", 9);
    assert_int_equal(mq_source_ops.bid(head, sizeof head), 100);
    assert_int_equal(mq_source_ops.bid(head, 8), 100);
    /* QEMU's magic with another version: QEMU's, but not certain. */
    head[7] = 2;
    int b = mq_source_ops.bid(head, sizeof head);
    assert_true(b > 0 && b < 100);
    assert_true(mq_source_ops.bid(head, 4) > 0); /* the magic alone */
    assert_int_equal(mq_source_ops.bid(head, 3), 0);
    assert_int_equal(mq_source_ops.bid(head, 0), 0);

    /* A libmigstream stream. */
    obuf out = {0};
    ms_writer *w = ms_writer_new(NULL, obuf_write, &out);
    assert_non_null(w);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    assert_true(out.len >= 16);
    assert_int_equal(
        mq_source_ops.bid(out.p, out.len < MSI_SOURCE_BID_BYTES ? out.len : MSI_SOURCE_BID_BYTES),
        0);
    free(out.p);

    /* A multifd channel, and the captures' main streams. */
    capture c;
    load("q35-multifd", 2, &c);
    assert_int_equal(mq_source_ops.bid(c.ch[0], MSI_SOURCE_BID_BYTES), 0);
    assert_int_equal(mq_source_ops.bid(c.main, MSI_SOURCE_BID_BYTES), 100);
    unload(&c);

    /* Random bytes. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000; i++) {
        for (size_t k = 0; k < sizeof head; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            head[k] = (uint8_t)x;
        }
        if (memcmp(head, "QEVM", 4) == 0)
            head[0] = 0;
        assert_int_equal(mq_source_ops.bid(head, sizeof head), 0);
    }
    assert_string_equal(mq_source_ops.name, "qemu");
    assert_non_null(mq_source_ops.export);
}

/* -------------------------------------------------------- the captures */

/* The records of every capture rebuild the guest the import wrote, within
 * the bounds of a record; reads of 1000 bytes change nothing. */
static void test_captures(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof captures / sizeof captures[0]; k++) {
        capture c;
        load(captures[k].name, captures[k].nch, &c);
        src_result sr;
        imp_result ir;
        guest back;
        run_source(&c, 0, &sr);
        if (sr.rc)
            fail_msg("%s: %s", c.name, sr.msg);
        run_import(&c, 0, &ir);
        assert_int_equal(ir.rc, 0);
        read_back(&ir.out, &back);
        guest_same(&sr.g, &back);
        assert_int_equal(sr.g.nrounds, ir.stats.ram_rounds);
        assert_int_equal(sr.g.ndevices, ir.stats.devices);
        assert_int_equal(sr.g.pages, ir.stats.zero_pages + ir.stats.normal_pages +
                                         ir.stats.xbzrle_pages + ir.stats.compressed_pages);
        assert_true(sr.max_data <= MQ_SINK_DATA_MAX);
        assert_true(sr.max_extents <= MQ_SINK_EXTENTS_MAX);
        assert_true(sr.max_pages <= MQ_SINK_PAGES_MAX);
        print_message("%-18s %6llu records, %2zu rounds, largest PAGES %7zu bytes %4zu extents "
                      "%5llu pages, most read by one next() %7llu bytes, peak memory %zu KiB\n",
                      c.name, (unsigned long long)sr.records, sr.g.nrounds, sr.max_data,
                      sr.max_extents, (unsigned long long)sr.max_pages,
                      (unsigned long long)sr.max_advance, sr.peak >> 10);

        src_result small;
        run_source(&c, 1000, &small);
        assert_int_equal(small.rc, 0);
        guest_same(&sr.g, &small.g);
        assert_int_equal(small.records, sr.records);

        guest_free(&sr.g);
        guest_free(&small.g);
        guest_free(&back);
        free(ir.out.p);
        unload(&c);
    }
}

/* What one next() takes stays bounded however long the stream: records of
 * at most MQ_SINK_DATA_MAX bytes of data, an advance of the main stream far
 * below its size, and memory far below the guest's (32 MiB) and the
 * stream's, for a live guest of 40 passes over three channels and one of
 * several XBZRLE passes. */
static void test_bounded(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t nch;
    } live[] = {{"pc-multifd-live", 3}, {"pc-xbzrle-live", 0}, {"q35-multifd-zstd", 2}};
    for (size_t k = 0; k < 3; k++) {
        capture c;
        load(live[k].name, live[k].nch, &c);
        src_result sr;
        run_source(&c, 0, &sr);
        assert_int_equal(sr.rc, 0);
        assert_true(sr.g.nrounds >= 1);
        assert_true(sr.max_data <= MQ_SINK_DATA_MAX);
        assert_true(sr.max_extents <= MQ_SINK_EXTENTS_MAX);
        /* The zero pages of a paused guest coalesce into long records, read
         * in a few hundred KiB of the main stream; a page a record would
         * read the whole stream in one call. */
        assert_true(sr.max_advance <= (1u << 20));
        assert_true(sr.peak <= (6u << 20));
        guest_free(&sr.g);
        unload(&c);
    }
}

/* ------------------------------------------------------------- channels */

/* A temporary file holding @n bytes, open for reading at its start. */
static int temp_fd(const uint8_t *p, size_t n)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/ms-test-chan-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* Channels given as descriptors import exactly as channels given as
 * callbacks, and name themselves in messages the same way. */
static void test_channel_fds(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t nch;
    } mf[] = {{"q35-multifd", 2}, {"q35-multifd-zstd", 2}, {"pc-multifd-live", 3}};
    for (size_t k = 0; k < 3; k++) {
        capture c;
        load(mf[k].name, mf[k].nch, &c);
        imp_result cb;
        run_import(&c, 0, &cb);
        assert_int_equal(cb.rc, 0);

        /* In reverse order: each channel names its id. */
        int fds[MAX_CH];
        ms_qemu_import *imp = ms_qemu_import_new(NULL);
        assert_non_null(imp);
        for (size_t i = c.nch; i-- > 0;) {
            fds[i] = temp_fd(c.ch[i], c.ch_len[i]);
            char name[32];
            snprintf(name, sizeof name, "fd-chan%zu", i);
            assert_int_equal(ms_qemu_import_add_channel_fd(imp, fds[i], name), 0);
        }
        memin m = {c.main, c.main_len, 0, 0};
        obuf out = {0};
        assert_int_equal(ms_qemu_import_run(imp, mem_read, &m, obuf_write, &out), 0);
        const ms_qemu_import_stats *s = ms_qemu_import_get_stats(imp);
        assert_int_equal(s->channels, c.nch);
        assert_int_equal(s->multifd_packets, cb.stats.multifd_packets);
        assert_int_equal(s->normal_pages, cb.stats.normal_pages);
        for (size_t i = 0; i < c.nch; i++) {
            /* added in reverse: stats.channel[j] is channel nch - 1 - j */
            assert_int_equal(s->channel[i].id, c.nch - 1 - i);
            assert_int_equal(s->channel[i].bytes_read, c.ch_len[c.nch - 1 - i]);
        }
        assert_int_equal(out.len, cb.out.len);
        assert_memory_equal(out.p, cb.out.p, out.len);
        ms_qemu_import_free(imp);
        for (size_t i = 0; i < c.nch; i++)
            close(fds[i]);
        free(out.p);
        free(cb.out.p);

        /* A cut channel, as a descriptor: named by the name given. */
        imp = ms_qemu_import_new(NULL);
        assert_non_null(imp);
        for (size_t i = 0; i < c.nch; i++) {
            fds[i] = temp_fd(c.ch[i], i == 0 ? 5000 : c.ch_len[i]);
            assert_int_equal(ms_qemu_import_add_channel_fd(imp, fds[i], i ? NULL : "cut0"), 0);
        }
        m.pos = 0;
        out = (obuf){0};
        assert_int_equal(ms_qemu_import_run(imp, mem_read, &m, obuf_write, &out), MS_ETRUNCATED);
        assert_non_null(strstr(ms_qemu_import_errmsg(imp), "multifd channel 0 (cut0) packet "));
        assert_non_null(strstr(ms_qemu_import_errmsg(imp), "the channel ends after 5000 bytes"));
        ms_qemu_import_free(imp);
        for (size_t i = 0; i < c.nch; i++)
            close(fds[i]);
        free(out.p);
        unload(&c);
    }
    /* Not before a run: descriptors are checked. */
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    assert_int_equal(ms_qemu_import_add_channel_fd(imp, -1, NULL), MS_EINVAL);
    assert_int_equal(ms_qemu_import_add_channel_fd(NULL, 0, NULL), MS_EINVAL);
    ms_qemu_import_free(imp);
}

/* ------------------------------------------------------------- failures */

/* A damaged capture fails through next() with the status, message and
 * offset the import gives. */
static void same_failure(const capture *c, const char *label)
{
    src_result sr;
    imp_result ir;
    run_source(c, 0, &sr);
    run_import(c, 0, &ir);
    if (sr.rc != ir.rc || strcmp(sr.msg, ir.msg) != 0 || sr.err_offset != ir.err_offset)
        fail_msg("%s: source %d at %llu \"%s\", import %d at %llu \"%s\"", label, sr.rc,
                 (unsigned long long)sr.err_offset, sr.msg, ir.rc,
                 (unsigned long long)ir.err_offset, ir.msg);
    guest_free(&sr.g);
    free(ir.out.p);
}

static void test_failures(void **state)
{
    (void)state;
    uint64_t x = 42;
    unsigned failed = 0;
    for (size_t k = 0; k < sizeof captures / sizeof captures[0]; k++) {
        capture c;
        load(captures[k].name, captures[k].nch, &c);
        uint8_t *orig = c.main;
        size_t orig_len = c.main_len;
        uint8_t *bad = malloc(orig_len);
        assert_non_null(bad);
        for (int i = 0; i < 24; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            char label[128];
            memcpy(bad, orig, orig_len);
            c.main = bad;
            if (i % 3 == 0) { /* cut */
                c.main_len = (size_t)((x >> 16) % orig_len);
                snprintf(label, sizeof label, "%s cut at %zu", c.name, c.main_len);
            } else { /* a byte changed, mostly in the headers */
                size_t at = (size_t)((x >> 16) % (i % 3 == 1 ? orig_len : 4096));
                bad[at] ^= (uint8_t)(1u << ((x >> 40) % 8));
                c.main_len = orig_len;
                snprintf(label, sizeof label, "%s byte %zu", c.name, at);
            }
            src_result sr;
            run_source(&c, 0, &sr);
            failed += sr.rc != 0;
            guest_free(&sr.g);
            same_failure(&c, label);
        }
        c.main = orig;
        c.main_len = orig_len;
        /* A cut channel. */
        if (c.nch) {
            size_t keep = c.ch_len[0];
            c.ch_len[0] = 5000;
            same_failure(&c, "channel cut");
            c.ch_len[0] = keep;
            c.nch--; /* a channel missing */
            same_failure(&c, "channel missing");
            c.nch++;
        }
        free(bad);
        unload(&c);
    }
    assert_true(failed > 100);
}

/* A failing output: the import names the QEMU item whose record the
 * writer could not write. */
static int fail_after(void *ctx, const struct iovec *iov, int iovcnt)
{
    size_t *left = ctx, n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    if (n > *left)
        return -1;
    *left -= n;
    return 0;
}

static void test_output_fails(void **state)
{
    (void)state;
    capture c;
    load("q35-devices", 0, &c);
    static const size_t limits[] = {0, 100000, 200000, 300000};
    static const char *const want[] = {"section 2 'ram' instance 0: RAM item at offset ",
                                       "section 2 'ram' instance 0: RAM item at offset ",
                                       "section 2 'ram' instance 0: RAM item at offset ",
                                       "device state at offset "};
    for (size_t i = 0; i < 4; i++) {
        ms_qemu_import *imp = ms_qemu_import_new(NULL);
        memin m = {c.main, c.main_len, 0, 0};
        size_t left = limits[i];
        assert_int_equal(ms_qemu_import_run(imp, mem_read, &m, fail_after, &left), MS_EIO);
        const char *msg = ms_qemu_import_errmsg(imp);
        if (strncmp(msg, want[i], strlen(want[i])) != 0)
            fail_msg("limit %zu: %s", limits[i], msg);
        char at[32];
        snprintf(at, sizeof at, "%llu: ", (unsigned long long)ms_qemu_import_error_offset(imp));
        assert_non_null(strstr(msg, at));
        assert_non_null(strstr(msg, "output callback failed"));
        ms_qemu_import_free(imp);
    }
    unload(&c);
}

/* ------------------------------------------------------------ XBZRLE */

static void put_be(obuf *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    struct iovec iov = {x, (size_t)n};
    obuf_write(b, &iov, 1);
}

static void put_bytes(obuf *b, const void *p, size_t n)
{
    struct iovec iov = {(void *)(uintptr_t)p, n};
    obuf_write(b, &iov, 1);
}

/* A page item of "pc.ram": the block's name on the part's first item,
 * CONTINUE after it. */
static void page_item(obuf *b, uint64_t page, unsigned flag, bool *named)
{
    put_be(b, page * PS | flag | (*named ? 0x20 : 0), 8);
    if (!*named) {
        put_be(b, 6, 1);
        put_bytes(b, "pc.ram", 6);
        *named = true;
    }
}

#define XPAGES 600u /* more than the 256 places kept in memory: they are reused */

/* XBZRLE pages decode against the right previous copy whether it is kept
 * in memory, was pushed to the page file by another page, or was replaced
 * by a ZERO or PAGE item in between: a stream of four passes over 600
 * pages, built here, rebuilds the memory it says. */
static void test_xbzrle_kept(void **state)
{
    (void)state;
    static uint8_t want[XPAGES][PS];
    uint8_t page[PS];
    obuf b = {0};
    put_bytes(&b, "QEVM\0\0\0\3", 8);
    /* START of "ram" (section 2): the block table. */
    put_be(&b, 0x01, 1);
    put_be(&b, 2, 4);
    put_be(&b, 3, 1);
    put_bytes(&b, "ram", 3);
    put_be(&b, 0, 4);
    put_be(&b, 4, 4);
    put_be(&b, (uint64_t)XPAGES * PS | 0x04, 8);
    put_be(&b, 6, 1);
    put_bytes(&b, "pc.ram", 6);
    put_be(&b, (uint64_t)XPAGES * PS, 8);
    put_be(&b, 0x10, 8);
    put_be(&b, 0x7e, 1);
    put_be(&b, 2, 4);
    for (unsigned pass = 1; pass <= 4; pass++) {
        bool named = false;
        put_be(&b, 0x02, 1);
        put_be(&b, 2, 4);
        for (unsigned i = 0; i < XPAGES; i++) {
            /* Every other pass downwards: the places are met in another
             * order. */
            unsigned p = pass % 2 ? i : XPAGES - 1 - i;
            unsigned kind = pass == 1                 ? 1
                            : pass == 3 && p % 5 == 0 ? 0
                            : pass == 3 && p % 5 == 1 ? 1
                                                      : 2;
            if (kind == 0) { /* ZERO */
                page_item(&b, p, 0x02, &named);
                put_be(&b, 0, 1);
                memset(want[p], 0, PS);
            } else if (kind == 1) { /* PAGE */
                for (unsigned k = 0; k < PS; k++)
                    page[k] = (uint8_t)(p * 31 + k * 7 + pass);
                page_item(&b, p, 0x08, &named);
                put_bytes(&b, page, PS);
                memcpy(want[p], page, PS);
            } else { /* XBZRLE: 8 new bytes, the rest as before */
                uint8_t enc[16];
                unsigned at = 100 + p % 64 + pass * 16; /* each pass its own bytes */
                size_t n = 0;
                enc[n++] = (uint8_t)(at & 0x7f) | (at > 127 ? 0x80 : 0);
                if (at > 127)
                    enc[n++] = (uint8_t)(at >> 7);
                enc[n++] = 8;
                for (unsigned k = 0; k < 8; k++)
                    enc[n++] = want[p][at + k] = (uint8_t)(pass * 16 + k + p);
                page_item(&b, p, 0x40, &named);
                put_be(&b, 0x01, 1);
                put_be(&b, n, 2);
                put_bytes(&b, enc, n);
            }
        }
        put_be(&b, 0x10, 8);
        put_be(&b, 0x7e, 1);
        put_be(&b, 2, 4);
    }
    put_be(&b, 0x00, 1); /* EOF, no trailer */

    capture c = {.name = "built", .main = b.p, .main_len = b.len};
    imp_result ir;
    run_import(&c, 0, &ir);
    if (ir.rc)
        fail_msg("%s", ir.msg);
    assert_int_equal(ir.stats.xbzrle_pages, XPAGES * 2 + XPAGES * 3 / 5);
    assert_int_equal(ir.stats.ram_rounds, 4);
    guest g;
    read_back(&ir.out, &g);
    assert_int_equal(g.nregions, 1);
    for (unsigned p = 0; p < XPAGES; p++)
        if (memcmp(g.regions[0].mem + (size_t)p * PS, want[p], PS) != 0)
            fail_msg("page %u differs", p);
    /* The source's records say the same. */
    src_result sr;
    run_source(&c, 0, &sr);
    assert_int_equal(sr.rc, 0);
    guest_same(&sr.g, &g);
    guest_free(&sr.g);
    guest_free(&g);
    free(ir.out.p);
    free(b.p);
}

/* The module's export is the exporter with its default options. */
static void test_export(void **state)
{
    (void)state;
    capture c;
    load("q35-paused", 0, &c);
    imp_result ir;
    run_import(&c, 0, &ir);
    assert_int_equal(ir.rc, 0);
    memin in = {ir.out.p, ir.out.len, 0, 0};
    obuf a = {0}, b = {0};
    char err[256] = "";
    assert_int_equal(mq_source_ops.export(mem_read, &in, obuf_write, &a, err, sizeof err), 0);
    ms_qemu_export *x = ms_qemu_export_new(NULL);
    in.pos = 0;
    assert_int_equal(ms_qemu_export_run(x, mem_read, &in, obuf_write, &b), 0);
    ms_qemu_export_free(x);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    /* A stream that is not one: the exporter's message. */
    in = (memin){c.main, c.main_len, 0, 0};
    assert_true(mq_source_ops.export(mem_read, &in, obuf_write, &a, err, sizeof err) < 0);
    assert_true(err[0] != 0);
    free(a.p);
    free(b.p);
    free(ir.out.p);
    unload(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bid),         cmocka_unit_test(test_captures),
        cmocka_unit_test(test_bounded),     cmocka_unit_test(test_channel_fds),
        cmocka_unit_test(test_failures),    cmocka_unit_test(test_output_fails),
        cmocka_unit_test(test_xbzrle_kept), cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
