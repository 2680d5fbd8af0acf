/*
 * The QEMU exporter (include/migstream/qemu.h, docs/QEMU.md section 7): the
 * single-stream captures in tests/data/qemu are imported, exported back to
 * QEMU's format and imported again, and both imports must describe the same
 * guest (every region's final bytes, every device's section bytes); small
 * streams built here check page states, rounds, large region pages and
 * every refusal.
 * tests/qemu-loop.sh closes the loop through a real QEMU.
 */
#include <stdlib.h>

#include "helpers.h"
#include "qemu_fixture.h"

#define PS 4096u

/* ------------------------------------------------------------- fixtures */


/* -------------------------------------------------------------- running */

typedef struct memin {
    const uint8_t *p;
    size_t len, pos, chunk;
} memin;

/* Hands out at most `chunk` bytes per call, so that records straddle reads. */
static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t n = m->len - m->pos;
    if (n > len)
        n = len;
    if (m->chunk && n > m->chunk)
        n = m->chunk;
    if (!n)
        return 0;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static void import(const uint8_t *p, size_t n, th_buf *out)
{
    memset(out, 0, sizeof *out);
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    assert_non_null(imp);
    memin m = {p, n, 0, 0};
    int rc = ms_qemu_import_run(imp, mem_read, &m, th_sink_write, out);
    if (rc)
        print_error("import: %s\n", ms_qemu_import_errmsg(imp));
    assert_status(rc, 0);
    ms_qemu_import_free(imp);
}

typedef struct result {
    int rc;
    char msg[512];
    uint64_t err_offset;
    int64_t err_record;
    ms_qemu_export_stats stats;
    th_buf out;
} result;

static void export_opts(const uint8_t *p, size_t n, const ms_qemu_export_options *o, size_t chunk,
                        result *res)
{
    memset(res, 0, sizeof *res);
    ms_qemu_export *x = ms_qemu_export_new(o);
    assert_non_null(x);
    memin m = {p, n, 0, chunk};
    res->rc = ms_qemu_export_run(x, mem_read, &m, th_sink_write, &res->out);
    assert_int_equal(res->rc, ms_qemu_export_status(x));
    snprintf(res->msg, sizeof res->msg, "%s", ms_qemu_export_errmsg(x));
    res->err_offset = ms_qemu_export_error_offset(x);
    res->err_record = ms_qemu_export_error_record(x);
    res->stats = *ms_qemu_export_get_stats(x);
    /* A second run is refused. */
    memin again = {p, n, 0, 0};
    int rc2 = ms_qemu_export_run(x, mem_read, &again, th_sink_write, &res->out);
    assert_int_equal(rc2, res->rc ? res->rc : MS_ESTATE);
    ms_qemu_export_free(x);
}

static void export(const uint8_t *p, size_t n, result *res)
{
    export_opts(p, n, NULL, 0, res);
}

/* Where @k bytes @what first occur in @p, or NULL (memmem is not C11). */
static const uint8_t *find_mem(const void *p, size_t n, const void *what, size_t k)
{
    const uint8_t *b = p;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, what, k) == 0)
            return b + i;
    return NULL;
}

/* ------------------------------------------------------- a guest's state */

/* What a stream says of the guest: every region's final bytes (pages never
 * sent, DISCARDED ones too, read as zero), by region name; every device
 * instance's last state, in order of first appearance. */
typedef struct guest_region {
    char name[256];
    uint64_t size;
    uint8_t *mem;
    uint8_t *sent; /* per stream page: 0 never sent or DISCARDED, 1 sent */
    uint32_t page_size;
} guest_region;

typedef struct guest_device {
    char path[1024];
    uint32_t instance, version;
    uint8_t *state;
    size_t state_size;
} guest_device;

typedef struct guest {
    char machine[256];
    guest_region reg[16];
    size_t nreg;
    guest_device dev[128];
    size_t ndev;
} guest;

static guest_region *guest_find(guest *g, const char *name)
{
    for (size_t i = 0; i < g->nreg; i++)
        if (strcmp(g->reg[i].name, name) == 0)
            return &g->reg[i];
    return NULL;
}

static void guest_load(guest *g, const uint8_t *s, size_t n)
{
    memset(g, 0, sizeof *g);
    ms_reader *r = ms_reader_new_memory(NULL, s, n);
    assert_non_null(r);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type == MS_REC_INFO && rec->info.machine) {
            snprintf(g->machine, sizeof g->machine, "%s", rec->info.machine);
        } else if (rec->type == MS_REC_REGIONS) {
            for (size_t i = 0; i < rec->region_count; i++) {
                assert_true(g->nreg < 16);
                guest_region *gr = &g->reg[g->nreg++];
                snprintf(gr->name, sizeof gr->name, "%s", rec->regions[i].name);
                gr->size = rec->regions[i].size;
                gr->page_size = rec->regions[i].page_size;
                gr->mem = calloc(1, gr->size);
                gr->sent = calloc(1, gr->size / gr->page_size);
                assert_non_null(gr->mem);
                assert_non_null(gr->sent);
            }
        } else if (rec->type == MS_REC_PAGES) {
            guest_region *gr = guest_find(g, rec->pages.region->name);
            assert_non_null(gr);
            const uint8_t *data = rec->pages.data;
            uint32_t ps = gr->page_size;
            for (size_t e = 0; e < rec->pages.extent_count; e++) {
                const ms_extent *x = &rec->pages.extents[e];
                for (uint64_t k = 0; k < x->count; k++) {
                    uint8_t *dst = gr->mem + (x->first + k) * ps;
                    gr->sent[x->first + k] = x->state != MS_PAGE_DISCARDED;
                    if (x->state == MS_PAGE_DATA) {
                        memcpy(dst, data, ps);
                        data += ps;
                    } else if (x->state == MS_PAGE_FILL) {
                        for (uint32_t b = 0; b < ps; b += 8)
                            th_put64(dst + b, x->arg);
                    } else {
                        memset(dst, 0, ps);
                    }
                }
            }
        } else if (rec->type == MS_REC_DEVICE) {
            guest_device *d = NULL;
            for (size_t i = 0; i < g->ndev; i++)
                if (g->dev[i].instance == rec->device.instance &&
                    strcmp(g->dev[i].path, rec->device.path) == 0)
                    d = &g->dev[i];
            if (!d) {
                assert_true(g->ndev < 128);
                d = &g->dev[g->ndev++];
                snprintf(d->path, sizeof d->path, "%s", rec->device.path);
                d->instance = rec->device.instance;
            }
            free(d->state);
            d->version = rec->device.version;
            d->state_size = rec->device.state_size;
            d->state = malloc(d->state_size);
            assert_non_null(d->state);
            memcpy(d->state, rec->device.state, d->state_size);
        }
    }
    assert_status(rc, 0);
    ms_reader_free(r);
}

static void guest_free(guest *g)
{
    for (size_t i = 0; i < g->nreg; i++) {
        free(g->reg[i].mem);
        free(g->reg[i].sent);
    }
    for (size_t i = 0; i < g->ndev; i++)
        free(g->dev[i].state);
}

/* The "raw" byte string of an imported device state: the CBOR map holds it
 * under the text key "raw" (docs/QEMU.md section 3.1). Written here from
 * RFC 8949 rather than with the library's codec. */
static const uint8_t *raw_of(const guest_device *d, size_t *len)
{
    const uint8_t *p = d->state, *end = d->state + d->state_size;
    static const uint8_t key[] = {0x63, 'r', 'a', 'w'};
    for (; p + sizeof key < end; p++) {
        if (memcmp(p, key, sizeof key))
            continue;
        const uint8_t *v = p + sizeof key;
        unsigned ai = v[0] & 31;
        assert_int_equal(v[0] >> 5, 2); /* a byte string */
        uint64_t n = ai;
        size_t h = 1;
        if (ai >= 24) {
            size_t w = (size_t)1 << (ai - 24);
            n = 0;
            for (size_t i = 0; i < w; i++)
                n = n << 8 | v[1 + i];
            h += w;
        }
        *len = (size_t)n;
        return v + h;
    }
    fail_msg("device %s has no raw bytes", d->path);
    return NULL;
}

/* Two guests are the same: same machine, regions (name, size) with the same
 * bytes, devices with the same path, instance, version and raw bytes, in
 * the same order. */
static void assert_same_guest(const guest *a, const guest *b)
{
    assert_string_equal(a->machine, b->machine);
    assert_int_equal(a->nreg, b->nreg);
    for (size_t i = 0; i < a->nreg; i++) {
        assert_string_equal(a->reg[i].name, b->reg[i].name);
        assert_int_equal(a->reg[i].size, b->reg[i].size);
        if (memcmp(a->reg[i].mem, b->reg[i].mem, a->reg[i].size) != 0)
            fail_msg("region %s: bytes differ", a->reg[i].name);
    }
    assert_int_equal(a->ndev, b->ndev);
    for (size_t i = 0; i < a->ndev; i++) {
        assert_string_equal(a->dev[i].path, b->dev[i].path);
        assert_int_equal(a->dev[i].instance, b->dev[i].instance);
        assert_int_equal(a->dev[i].version, b->dev[i].version);
        size_t la, lb;
        const uint8_t *ra = raw_of(&a->dev[i], &la), *rb = raw_of(&b->dev[i], &lb);
        assert_int_equal(la, lb);
        if (memcmp(ra, rb, la) != 0)
            fail_msg("device %s: raw bytes differ", a->dev[i].path);
        /* An iterable section's parts, too: the whole state, then. */
        if (find_mem(a->dev[i].state, a->dev[i].state_size, "\x65parts", 6)) {
            assert_int_equal(a->dev[i].state_size, b->dev[i].state_size);
            assert_memory_equal(a->dev[i].state, b->dev[i].state, a->dev[i].state_size);
        }
    }
}

/* ------------------------------------------------- round trips of captures */

static void round_trip(const char *name)
{
    size_t n;
    uint8_t *q = th_qemu_fixture(name, &n);
    th_buf s1, s2;
    import(q, n, &s1);
    result res;
    /* Small reads: records straddle them. */
    export_opts(s1.data, s1.len, NULL, 777, &res);
    if (res.rc)
        print_error("%s: %s\n", name, res.msg);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.bytes_written, res.out.len);
    assert_int_equal(res.stats.bytes_read, s1.len);
    import(res.out.data, res.out.len, &s2);

    /* The QEMU stream itself, read through ms_open() and exported as it is
     * read: the same bytes as the export of its import. */
    memin qm = {q, n, 0, 777};
    ms_input in = {.read = mem_read, .read_ctx = &qm, .name = name};
    ms_reader *qr = ms_open(NULL, &in, 1);
    ms_qemu_export *qx = ms_qemu_export_new(NULL);
    th_buf direct;
    memset(&direct, 0, sizeof direct);
    int qrc = ms_qemu_export_run_reader(qx, qr, th_sink_write, &direct);
    if (qrc)
        print_error("%s, from its reader: %s\n", name, ms_qemu_export_errmsg(qx));
    assert_status(qrc, 0);
    assert_int_equal(direct.len, res.out.len);
    assert_memory_equal(direct.data, res.out.data, direct.len);
    /* The reader stays the caller's; a second run is refused. */
    assert_int_equal(ms_qemu_export_run_reader(qx, qr, th_sink_write, &direct), MS_ESTATE);
    ms_qemu_export_free(qx);
    ms_reader_free(qr);
    th_buf_free(&direct);

    guest a, b;
    guest_load(&a, s1.data, s1.len);
    guest_load(&b, s2.data, s2.len);
    /* QEVM, version 3, CONFIGURATION with the machine and the subsections
     * the import kept (the device "configuration"), ram START id 1. */
    const uint8_t *o = res.out.data;
    assert_memory_equal(o, "QEVM\0\0\0\3\7", 9);
    size_t ml = (size_t)o[9] << 24 | (size_t)o[10] << 16 | (size_t)o[11] << 8 | o[12];
    size_t cl = 0;
    if (strcmp(a.dev[0].path, "configuration") == 0) {
        const uint8_t *craw = raw_of(&a.dev[0], &cl);
        assert_memory_equal(o + 13 + ml, craw, cl);
    }
    assert_memory_equal(o + 13 + ml + cl, "\1\0\0\0\1\3ram\0\0\0\0\0\0\0\4", 17);
    assert_string_equal(res.stats.machine, a.machine);
    assert_int_equal(res.stats.ram_blocks, a.nreg);
    assert_int_equal(res.stats.devices, a.ndev - (cl > 0));
    assert_true(a.ndev > 10);
    assert_same_guest(&a, &b);
    /* Every page QEMU sent is sent back: a page is sent in the re-import
     * exactly where it was in the import. */
    for (size_t i = 0; i < a.nreg; i++)
        assert_memory_equal(a.reg[i].sent, b.reg[i].sent, a.reg[i].size / a.reg[i].page_size);
    guest_free(&a);
    guest_free(&b);
    th_buf_free(&s1);
    th_buf_free(&s2);
    th_buf_free(&res.out);
    free(q);
}

static void test_q35_paused(void **state)
{
    (void)state;
    round_trip("q35-paused");
}

static void test_pc_paused(void **state)
{
    (void)state;
    round_trip("pc-paused");
}

static void test_q35_paused_again(void **state)
{
    (void)state;
    round_trip("q35-paused-again");
}

static void test_q35_no_vmdesc(void **state)
{
    (void)state;
    round_trip("q35-no-vmdesc");
}

static void test_q35_devices(void **state)
{
    (void)state;
    round_trip("q35-devices");
}

static void test_q35_compress(void **state)
{
    (void)state;
    round_trip("q35-compress");
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The unsigned integers of the "parts" array of an imported state (CBOR
 * read here from RFC 8949). */
static size_t parts_of(const guest_device *d, uint64_t *out, size_t max)
{
    const uint8_t *p = find_mem(d->state, d->state_size, "\x65parts", 6);
    assert_non_null(p);
    p += 6;
    assert_int_equal(p[0] >> 5, 4);
    size_t n = p[0] & 31; /* fewer than 24 here */
    assert_true(n <= max);
    p++;
    for (size_t i = 0; i < n; i++) {
        unsigned ai = p[0] & 31;
        assert_int_equal(p[0] >> 5, 0);
        uint64_t v = ai;
        size_t w = ai < 24 ? 0 : (size_t)1 << (ai - 24);
        if (w) {
            v = 0;
            for (size_t k = 0; k < w; k++)
                v = v << 8 | p[1 + k];
        }
        out[i] = v;
        p += 1 + w;
    }
    return n;
}

/* The iterable "dirty-bitmap" goes back as START, PART and END with the
 * parts QEMU sent, right after the ram END and before the devices sent
 * whole. */
static void test_q35_dirty_bitmap(void **state)
{
    (void)state;
    round_trip("q35-dirty-bitmap");
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-dirty-bitmap", &n);
    th_buf s1;
    import(q, n, &s1);
    result res;
    export(s1.data, s1.len, &res);
    assert_status(res.rc, 0);
    guest a;
    guest_load(&a, s1.data, s1.len);
    const guest_device *d = NULL;
    for (size_t i = 0; i < a.ndev; i++)
        if (strcmp(a.dev[i].path, "dirty-bitmap") == 0)
            d = &a.dev[i];
    assert_non_null(d);
    uint64_t parts[16];
    size_t np = parts_of(d, parts, 16), rl;
    assert_true(np >= 3);
    const uint8_t *raw = raw_of(d, &rl);
    const uint8_t *o = res.out.data;
    const uint8_t *at = find_mem(o, res.out.len, "\014dirty-bitmap", 13);
    assert_non_null(at);
    at -= 5;
    assert_int_equal(at[0], 0x01);
    uint32_t id = rd32(at + 1);
    /* ram END (EOS only) just before */
    assert_memory_equal(at - 18, "\x03\0\0\0\x01\0\0\0\0\0\0\0\x10\x7e\0\0\0\x01", 18);
    const uint8_t *p = at + 5 + 13 + 8;
    for (size_t k = 0; k < np; k++) {
        if (k > 0) {
            assert_int_equal(p[0], k + 1 == np ? 0x03 : 0x02);
            assert_int_equal(rd32(p + 1), id);
            p += 5;
        }
        assert_memory_equal(p, raw, parts[k]);
        raw += parts[k];
        p += parts[k];
        assert_int_equal(p[0], 0x7e);
        assert_int_equal(rd32(p + 1), id);
        p += 5;
    }
    assert_int_equal(p[0], 0x04); /* then the devices sent whole */
    guest_free(&a);
    th_buf_free(&s1);
    th_buf_free(&res.out);
    free(q);
}

/* CONFIGURATION goes back byte for byte with its subsections, and MEM_SIZE
 * carries an address per block (x-ignore-shared). */
static void test_q35_config(void **state)
{
    (void)state;
    round_trip("q35-config");
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-config", &n);
    th_buf s1;
    import(q, n, &s1);
    result res;
    export(s1.data, s1.len, &res);
    assert_status(res.rc, 0);
    const uint8_t *ram = find_mem(q, n, "\x03ram\0\0\0\0\0\0\0\x04", 12);
    assert_non_null(ram);
    size_t upto = (size_t)(ram - q) - 5;
    assert_memory_equal(res.out.data, q, upto);
    /* START ram header, MEM_SIZE: first entry name, length, address. */
    const uint8_t *e = res.out.data + upto + 17 + 8;
    size_t nl = e[0];
    assert_memory_equal(e + 1, "pc.ram", nl);
    assert_int_equal(rd32(e + 1 + nl + 4), 32u << 20);
    assert_memory_equal(e + 1 + nl + 8, "\0\0\0\0\0\0\0\0", 8);
    th_buf_free(&s1);
    th_buf_free(&res.out);
    free(q);
}

/* Several passes, XBZRLE pages: exported as PAGE items in stream order, one
 * PART per round, so the last copy of each page wins on the way back too. */
static void test_pc_xbzrle_live(void **state)
{
    (void)state;
    round_trip("pc-xbzrle-live");
    size_t n;
    uint8_t *q = th_qemu_fixture("pc-xbzrle-live", &n);
    th_buf s1;
    import(q, n, &s1);
    result res;
    export(s1.data, s1.len, &res);
    assert_status(res.rc, 0);
    assert_true(res.stats.ram_parts > 1);
    th_buf_free(&s1);
    th_buf_free(&res.out);
    free(q);
}

/* The paused captures differ from their export only in section ids: the
 * same items, byte for byte, up to QEMU's EOF. */
static void test_same_items_as_qemu(void **state)
{
    (void)state;
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-no-vmdesc", &n);
    th_buf s1;
    import(q, n, &s1);
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    o.no_vmdesc = true;
    result res;
    export_opts(s1.data, s1.len, &o, 0, &res);
    assert_status(res.rc, 0);
    assert_int_equal(res.out.len, n);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += q[i] != res.out.data[i];
    /* Each differing byte is in a section id (big-endian u32 < 256 here:
     * the low byte), two per section (header, footer) and one per PART. */
    assert_true(diff > 0);
    assert_true(diff <= 2 * (res.stats.devices + 2 + res.stats.ram_parts));
    th_buf_free(&s1);
    th_buf_free(&res.out);
    free(q);
}

/* ----------------------------------------------- streams built by hand */

static const uint8_t RAW_STATE[] = {0xa1, 0x63, 'r', 'a', 'w', 0x43, 1, 2, 3};

static ms_writer *new_writer(th_buf *out, uint64_t features, const char *machine)
{
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.features = features;
    wo.machine = machine;
    memset(out, 0, sizeof *out);
    ms_writer *w = ms_writer_new(&wo, th_sink_write, out);
    assert_non_null(w);
    return w;
}

static void add_region(ms_writer *w, uint32_t id, const char *name, uint64_t pages, uint32_t ps)
{
    ms_region g = {.id = id, .name = name, .size = pages * ps, .page_size = ps};
    assert_status(ms_writer_add_region(w, &g), 0);
}

static void finish(ms_writer *w)
{
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* FILL becomes PAGE items with the pattern; DISCARDED pages are not sent;
 * rounds are applied in order (the later copy wins); an 8 KiB region page
 * becomes two QEMU pages. */
static void test_page_states(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, MS_FEATURE_FILL | MS_FEATURE_DISCARDED, "pc-i440fx-7.2");
    add_region(w, 0, "pc.ram", 8, PS);
    add_region(w, 1, "big", 2, 2 * PS);
    uint8_t page[2 * PS];
    uint64_t rng = 7;
    assert_status(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    th_rand_fill(&rng, page, PS);
    assert_status(ms_writer_pages(w, 0, 0, 1, page), 0);
    assert_status(ms_writer_fill_pages(w, 0, 1, 2, 0x0123456789abcdefull), 0);
    assert_status(ms_writer_discard(w, 0, 3, 2), 0);
    assert_status(ms_writer_zero_pages(w, 0, 5, 3), 0);
    th_rand_fill(&rng, page, 2 * PS);
    assert_status(ms_writer_pages(w, 1, 1, 1, page), 0);
    assert_status(ms_writer_round(
                      w, &(ms_round){.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = PS}),
                  0);
    uint8_t later[PS];
    th_rand_fill(&rng, later, PS);
    assert_status(ms_writer_pages(w, 0, 0, 1, later), 0); /* replaces page 0 */
    assert_status(ms_writer_device(w, "timer", 0, "timer", 2, RAW_STATE, sizeof RAW_STATE), 0);
    finish(w);

    result res;
    export(s.data, s.len, &res);
    if (res.rc)
        print_error("%s\n", res.msg);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.fill_pages, 2);
    assert_int_equal(res.stats.discarded_pages, 2);
    assert_int_equal(res.stats.normal_pages, 2 + 1 + 2 + 1); /* 2 DATA copies, FILL, big */
    assert_int_equal(res.stats.zero_pages, 3);
    assert_int_equal(res.stats.ram_parts, 2);
    assert_int_equal(res.stats.devices, 1);

    th_buf back;
    import(res.out.data, res.out.len, &back);
    guest a, b;
    guest_load(&a, s.data, s.len);
    guest_load(&b, back.data, back.len);
    assert_same_guest(&a, &b);
    guest_region *r = guest_find(&b, "pc.ram");
    assert_memory_equal(r->mem, later, PS);
    assert_int_equal(r->mem[PS], 0xef);
    assert_int_equal(r->mem[PS + 7], 0x01);
    assert_false(r->sent[3] || r->sent[4]); /* DISCARDED: not sent */
    assert_true(r->sent[5] && r->sent[6] && r->sent[7]);
    guest_region *big = guest_find(&b, "big");
    assert_int_equal(big->page_size, PS); /* QEMU's page */
    assert_memory_equal(big->mem + 2 * PS, page, 2 * PS);
    guest_free(&a);
    guest_free(&b);
    th_buf_free(&back);
    th_buf_free(&res.out);
    th_buf_free(&s);
}

/* A device sent twice keeps the place of its first record and the bytes of
 * its last; without a machine, no CONFIGURATION section. */
static void test_device_order(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, 0, NULL);
    add_region(w, 0, "pc.ram", 1, PS);
    assert_status(ms_writer_zero_pages(w, 0, 0, 1), 0);
    static const uint8_t second[] = {0xa1, 0x63, 'r', 'a', 'w', 0x41, 9};
    assert_status(ms_writer_device(w, "a", 0, "a", 1, RAW_STATE, sizeof RAW_STATE), 0);
    assert_status(ms_writer_device(w, "b", 0, "b", 1, RAW_STATE, sizeof RAW_STATE), 0);
    assert_status(ms_writer_device(w, "a", 0, "a", 3, second, sizeof second), 0);
    finish(w);
    result res;
    export(s.data, s.len, &res);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.devices, 2);
    assert_int_equal(res.stats.device_records, 3);
    assert_int_equal(res.out.data[8], 0x01); /* START right after the header */
    th_buf back;
    import(res.out.data, res.out.len, &back);
    guest b;
    guest_load(&b, back.data, back.len);
    assert_int_equal(b.ndev, 2);
    assert_string_equal(b.dev[0].path, "a");
    assert_int_equal(b.dev[0].version, 3);
    size_t len;
    const uint8_t *raw = raw_of(&b.dev[0], &len);
    assert_int_equal(len, 1);
    assert_int_equal(raw[0], 9);
    assert_string_equal(b.dev[1].path, "b");
    guest_free(&b);
    th_buf_free(&back);
    th_buf_free(&res.out);
    th_buf_free(&s);
}

/* Refusals: the status, the record named, and what is wrong. */
static void expect_refusal(th_buf *s, int status, const char *needle)
{
    result res;
    export(s->data, s->len, &res);
    assert_status(res.rc, status);
    assert_contains(res.msg, needle);
    /* What was written before the refusal ends before QEMU's EOF: QEMU's
     * format, read by the importer, refuses it. */
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    assert_non_null(imp);
    memin m = {res.out.data, res.out.len, 0, 0};
    th_buf back = {0};
    assert_true(ms_qemu_import_run(imp, mem_read, &m, th_sink_write, &back) < 0);
    ms_qemu_import_free(imp);
    th_buf_free(&back);
    th_buf_free(&res.out);
    th_buf_free(s);
}

static void test_refuse_in_place(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, MS_FEATURE_IN_PLACE, "pc");
    add_region(w, 4, "pc.ram", 16, PS);
    assert_status(ms_writer_zero_pages(w, 4, 0, 2), 0);
    assert_status(ms_writer_in_place(w, 4, 2, 3, 0x100000), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "region 4 'pc.ram' pages 2..4 are IN_PLACE");
}

static void test_refuse_no_raw(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 1, PS);
    static const uint8_t fields_only[] = {0xa1, 0x66, 'f', 'i', 'e', 'l', 'd', 's', 0xa0};
    assert_status(ms_writer_device(w, "cpu", 1, "x86-cpu", 12, fields_only, sizeof fields_only), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE,
                   "device 'cpu' instance 1 (schema 'x86-cpu'): the state has no "
                   "\"raw\" bytes");
    w = new_writer(&s, 0, "pc");
    static const uint8_t not_map[] = {0x01};
    assert_status(ms_writer_device(w, "cpu", 0, "x86-cpu", 12, not_map, sizeof not_map), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "the state is not a CBOR map");
    w = new_writer(&s, 0, "pc");
    static const uint8_t raw_text[] = {0xa1, 0x63, 'r', 'a', 'w', 0x61, 'x'};
    assert_status(ms_writer_device(w, "cpu", 0, "x86-cpu", 12, raw_text, sizeof raw_text), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "\"raw\" is not a byte string");
    w = new_writer(&s, 0, "pc");
    assert_status(ms_writer_device(w, "ram", 0, "ram", 4, RAW_STATE, sizeof RAW_STATE), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "QEMU's RAM section has that name");
    w = new_writer(&s, 0, "pc");
    char path[300];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = 0;
    assert_status(ms_writer_device(w, path, 0, "x", 1, RAW_STATE, sizeof RAW_STATE), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "a path of 299 bytes");
}

static void test_refuse_overlay(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, MS_FEATURE_OVERLAYS, "pc");
    ms_region g = {
        .id = 0, .name = "pc.ram", .has_gpa = true, .gpa = 0, .size = 16 * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &g), 0);
    ms_overlay o;
    memset(&o, 0, sizeof o);
    o.gfn = 3;
    o.kind = MS_OVERLAY_HYPERCALL;
    o.hypercall.vendor = 1;
    assert_status(ms_writer_overlay(w, &o), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "(OVERLAY) at offset");
}

static void test_refuse_regions(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 1, PS);
    assert_status(ms_writer_zero_pages(w, 0, 0, 1), 0);
    assert_status(ms_writer_flush(w), 0);
    add_region(w, 1, "late", 1, PS);
    assert_status(ms_writer_zero_pages(w, 1, 0, 1), 0);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "region 1 'late' is declared after the first page");

    w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 1, PS);
    add_region(w, 1, "pc.ram", 1, PS);
    finish(w);
    expect_refusal(&s, MS_EFEATURE, "regions 0 and 1 are both named 'pc.ram'");

    /* A QEMU page larger than the region's. */
    w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 4, PS);
    finish(w);
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    o.page_size = 2 * PS;
    result res;
    export_opts(s.data, s.len, &o, 0, &res);
    assert_status(res.rc, MS_EFEATURE);
    assert_contains(res.msg, "region 0 'pc.ram' has 4096-byte pages, smaller than QEMU's 8192");
    assert_int_equal(res.err_record, 1);
    th_buf_free(&res.out);
    th_buf_free(&s);
}

static void test_refuse_limits_and_damage(void **state)
{
    (void)state;
    th_buf s;
    ms_writer *w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 1, PS);
    uint8_t big[1100];
    big[0] = 0xa1;
    big[1] = 0x63;
    memcpy(big + 2, "raw", 3);
    big[5] = 0x59; /* bytes, u16 length */
    big[6] = 0x04;
    big[7] = 0x00;
    memset(big + 8, 0x5a, 1024);
    assert_status(ms_writer_device(w, "dev", 0, "dev", 1, big, 8 + 1024), 0);
    finish(w);
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    o.max_device_bytes = 1000;
    result res;
    export_opts(s.data, s.len, &o, 0, &res);
    assert_status(res.rc, MS_ELIMIT);
    assert_contains(res.msg, "beyond max_device_bytes (1000)");
    th_buf_free(&res.out);

    /* Truncated input: the reader's status and words; no EOF written. */
    export(s.data, s.len - 3, &res);
    if (res.rc != MS_ETRUNCATED)
        print_error("%s\n", res.msg);
    assert_status(res.rc, MS_ETRUNCATED);
    assert_true(res.msg[0] != 0);
    th_buf_free(&res.out);
    /* One flipped byte: a checksum failure names the record. */
    s.data[s.len - 30] ^= 1;
    export(s.data, s.len, &res);
    assert_true(res.rc == MS_ECHECKSUM || res.rc == MS_ECORRUPT || res.rc == MS_ECBOR);
    assert_contains(res.msg, "record");
    th_buf_free(&res.out);
    s.data[s.len - 30] ^= 1;
    /* Bytes after END. */
    th_buf_u8(&s, 0);
    export(s.data, s.len, &res);
    assert_status(res.rc, MS_ECORRUPT);
    th_buf_free(&res.out);
    /* Not a stream at all. */
    uint8_t qevm[64] = {'Q', 'E', 'V', 'M', 0, 0, 0, 3};
    export(qevm, sizeof qevm, &res);
    assert_status(res.rc, MS_EMAGIC);
    th_buf_free(&res.out);
    th_buf_free(&s);
}

/* CBOR heads for states built here (RFC 8949: major type, then the value). */
static void cb_head(th_buf *b, uint8_t major, uint64_t v)
{
    if (v < 24) {
        th_buf_u8(b, (uint8_t)(major << 5 | v));
    } else if (v <= 0xff) {
        th_buf_u8(b, (uint8_t)(major << 5 | 24));
        th_buf_u8(b, (uint8_t)v);
    } else {
        th_buf_u8(b, (uint8_t)(major << 5 | 25));
        th_buf_u8(b, (uint8_t)(v >> 8));
        th_buf_u8(b, (uint8_t)v);
    }
}

/* {"raw": @raw[, "parts": [@parts...]]}; nparts SIZE_MAX: "parts" is the
 * text "x" instead of an array. */
static void state_with_parts(th_buf *b, const void *raw, size_t n, const uint64_t *parts,
                             size_t nparts)
{
    memset(b, 0, sizeof *b);
    cb_head(b, 5, nparts ? 2 : 1);
    cb_head(b, 3, 3);
    th_buf_append(b, "raw", 3);
    cb_head(b, 2, n);
    th_buf_append(b, raw, n);
    if (!nparts)
        return;
    cb_head(b, 3, 5);
    th_buf_append(b, "parts", 5);
    if (nparts == SIZE_MAX) {
        cb_head(b, 3, 1);
        th_buf_u8(b, 'x');
        return;
    }
    cb_head(b, 4, nparts);
    for (size_t i = 0; i < nparts; i++)
        cb_head(b, 0, parts[i]);
}

/* A device with "parts" goes out as START, PARTs (an empty one too) and
 * END, before the devices sent whole, whatever the record order; the
 * re-import gives the same state. */
static void test_iterable_built(void **state)
{
    (void)state;
    th_buf s, st;
    ms_writer *w = new_writer(&s, 0, "pc-i440fx-7.2");
    add_region(w, 0, "pc.ram", 1, PS);
    assert_status(ms_writer_zero_pages(w, 0, 0, 1), 0);
    assert_status(ms_writer_device(w, "timer", 0, "timer", 2, RAW_STATE, sizeof RAW_STATE), 0);
    static const uint64_t parts[] = {2, 0, 3, 1};
    state_with_parts(&st, "abcdef", 6, parts, 4);
    assert_status(ms_writer_device(w, "bm", 0, "bm", 1, st.data, st.len), 0);
    finish(w);
    result res;
    export(s.data, s.len, &res);
    if (res.rc)
        print_error("%s\n", res.msg);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.devices, 2);
    /* "timer" is device 0 (id 2), "bm" device 1 (id 3). */
    /* clang-format off */
    static const uint8_t want[] = {
        0x01, 0, 0, 0, 3, 2, 'b', 'm', 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b', 0x7e, 0, 0, 0, 3,
        0x02, 0, 0, 0, 3, 0x7e, 0, 0, 0, 3,
        0x02, 0, 0, 0, 3, 'c', 'd', 'e', 0x7e, 0, 0, 0, 3,
        0x03, 0, 0, 0, 3, 'f', 0x7e, 0, 0, 0, 3,
        0x04, 0, 0, 0, 2, 5, 't', 'i', 'm', 'e', 'r'};
    /* clang-format on */
    const uint8_t *at = find_mem(res.out.data, res.out.len, want, sizeof want);
    assert_non_null(at);
    th_buf back;
    import(res.out.data, res.out.len, &back);
    guest b;
    guest_load(&b, back.data, back.len);
    assert_int_equal(b.ndev, 2);
    assert_string_equal(b.dev[0].path, "bm");
    assert_int_equal(b.dev[0].state_size, st.len);
    assert_memory_equal(b.dev[0].state, st.data, st.len);
    guest_free(&b);
    th_buf_free(&back);
    th_buf_free(&res.out);
    th_buf_free(&st);
    th_buf_free(&s);

    /* Parts that do not describe "raw". */
    static const struct {
        uint64_t parts[3];
        size_t n;
        const char *why;
    } bad[] = {
        {{6}, 1, "lists 1 parts"},
        {{2, 3}, 2, "add up to 5 bytes, \"raw\" holds 6"},
        {{2, 5, 0}, 3, "part 1 of \"parts\" is not a length within the 6"},
        {{0}, SIZE_MAX, "\"parts\" is not an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w = new_writer(&s, 0, "pc");
        state_with_parts(&st, "abcdef", 6, bad[i].parts, bad[i].n);
        assert_status(ms_writer_device(w, "bm", 0, "bm", 1, st.data, st.len), 0);
        finish(w);
        th_buf_free(&st);
        expect_refusal(&s, MS_EFEATURE, bad[i].why);
    }
    /* Many parts: within max_device_bytes before they are held. */
    static const uint64_t zeros[200];
    w = new_writer(&s, 0, "pc");
    state_with_parts(&st, "", 0, zeros, 200);
    assert_status(ms_writer_device(w, "bm", 0, "bm", 1, st.data, st.len), 0);
    finish(w);
    th_buf_free(&st);
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    o.max_device_bytes = 1000;
    export_opts(s.data, s.len, &o, 0, &res);
    assert_status(res.rc, MS_ELIMIT);
    assert_contains(res.msg, "200 parts would take more than max_device_bytes (1000)");
    th_buf_free(&res.out);
    o.max_device_bytes = 0; /* the default */
    export_opts(s.data, s.len, &o, 0, &res);
    assert_status(res.rc, 0);
    th_buf_free(&res.out);
    th_buf_free(&s);
}

static void subsection(th_buf *b, const char *name)
{
    th_buf_u8(b, 0x05);
    th_buf_u8(b, (uint8_t)strlen(name));
    th_buf_append(b, name, strlen(name));
    th_buf_append(b, "\0\0\0\1", 4);
}

static void be32_to(th_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    th_buf_append(b, x, 4);
}

static void cap_names(th_buf *b, const char *const *caps, uint32_t n)
{
    subsection(b, "configuration/capabilities");
    be32_to(b, n);
    for (uint32_t i = 0; i < n; i++) {
        th_buf_u8(b, (uint8_t)strlen(caps[i]));
        th_buf_append(b, caps[i], strlen(caps[i]));
    }
}

/* Exports a stream whose device "configuration" holds @cfg, then one zero
 * page. */
static void config_stream(th_buf *s, const th_buf *cfg, const char *machine, bool after_page)
{
    th_buf st;
    state_with_parts(&st, cfg->data, cfg->len, NULL, 0);
    ms_writer *w = new_writer(s, 0, machine);
    add_region(w, 0, "pc.ram", 1, PS);
    if (after_page) {
        assert_status(ms_writer_zero_pages(w, 0, 0, 1), 0);
        assert_status(ms_writer_flush(w), 0);
    }
    assert_status(ms_writer_device(w, "configuration", 0, "configuration", 1, st.data, st.len), 0);
    if (!after_page)
        assert_status(ms_writer_zero_pages(w, 0, 0, 1), 0);
    finish(w);
    th_buf_free(&st);
}

/* CONFIGURATION's subsections from the device "configuration": written
 * after the machine type; mapped-ram is left out of the capabilities (and
 * the subsection with it when nothing remains); x-ignore-shared adds an
 * address to each MEM_SIZE entry. Then every refusal. */
static void test_config_built(void **state)
{
    (void)state;
    static const char *const caps[] = {"mapped-ram", "x-ignore-shared"};
    th_buf cfg = {0}, want = {0}, s;
    subsection(&cfg, "configuration/target-page-bits");
    be32_to(&cfg, 12);
    cap_names(&cfg, caps, 2);
    subsection(&cfg, "configuration/uuid");
    th_buf_append(&cfg, "0123456789abcdef", 16);
    subsection(&want, "configuration/target-page-bits");
    be32_to(&want, 12);
    cap_names(&want, caps + 1, 1);
    subsection(&want, "configuration/uuid");
    th_buf_append(&want, "0123456789abcdef", 16);
    config_stream(&s, &cfg, "pc", false);
    result res;
    export(s.data, s.len, &res);
    if (res.rc)
        print_error("%s\n", res.msg);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.devices, 0);
    const uint8_t *o = res.out.data;
    assert_memory_equal(o + 15, want.data, want.len);
    const uint8_t *mem = o + 15 + want.len + 17;
    /* MEM_SIZE: total, name, length, address 0 */
    assert_memory_equal(mem + 8, "\x06pc.ram\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\0\0", 23);
    th_buf back;
    import(res.out.data, res.out.len, &back);
    guest b;
    guest_load(&b, back.data, back.len);
    assert_string_equal(b.dev[0].path, "configuration");
    size_t rl;
    const uint8_t *raw = raw_of(&b.dev[0], &rl);
    assert_int_equal(rl, want.len);
    assert_memory_equal(raw, want.data, rl);
    guest_free(&b);
    th_buf_free(&back);
    th_buf_free(&res.out);
    th_buf_free(&s);
    th_buf_free(&want);

    /* mapped-ram alone: no capabilities subsection, no address. */
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    cap_names(&cfg, caps, 1);
    config_stream(&s, &cfg, "pc", false);
    export(s.data, s.len, &res);
    assert_status(res.rc, 0);
    assert_memory_equal(res.out.data + 15, "\x01\0\0\0\x01\x03ram", 9);
    th_buf_free(&res.out);
    th_buf_free(&s);

    /* Refusals. */
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    subsection(&cfg, "configuration/uuid");
    th_buf_append(&cfg, "0123456789abcdef", 16);
    config_stream(&s, &cfg, "pc", true);
    expect_refusal(&s, MS_EFEATURE, "comes after the first page");
    config_stream(&s, &cfg, NULL, false);
    expect_refusal(&s, MS_EFEATURE, "CONFIGURATION subsections but no machine type");
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    subsection(&cfg, "configuration/target-page-bits");
    be32_to(&cfg, 13);
    config_stream(&s, &cfg, "pc", false);
    expect_refusal(&s, MS_EFEATURE, "target-page-bits other than the export's page size");
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    subsection(&cfg, "configuration/other");
    config_stream(&s, &cfg, "pc", false);
    expect_refusal(&s, MS_EFEATURE, "a subsection QEMU does not define");
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    subsection(&cfg, "configuration/uuid");
    th_buf_append(&cfg, "0123", 4);
    config_stream(&s, &cfg, "pc", false);
    expect_refusal(&s, MS_EFEATURE, "at byte 24 of \"raw\": ends inside a subsection");
    th_buf_free(&cfg);
    memset(&cfg, 0, sizeof cfg);
    subsection(&cfg, "configuration/capabilities");
    be32_to(&cfg, 3); /* a count beyond the names */
    th_buf_append(&cfg, "\x0fx-ignore-shared", 16);
    config_stream(&s, &cfg, "pc", false);
    expect_refusal(&s, MS_EFEATURE, "ends inside a subsection");
    th_buf_free(&cfg);
}

static int failing_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    (void)ctx;
    (void)iov;
    (void)iovcnt;
    return -1;
}

static void test_api(void **state)
{
    (void)state;
    ms_qemu_export_options o;
    ms_qemu_export_options_init(&o);
    o.page_size = 3000;
    /* Bad options: an exporter in the failed state naming the option
     * (common.h, "Handles"), whose run fails with the same status. */
    ms_qemu_export *bad = ms_qemu_export_new(&o);
    assert_int_equal(ms_qemu_export_status(bad), MS_EINVAL);
    assert_non_null(strstr(ms_qemu_export_errmsg(bad), "page_size"));
    assert_int_equal(ms_qemu_export_run_fd(bad, 0, 1), MS_EINVAL);
    ms_qemu_export_free(bad);
    o.page_size = 4096;
    /* A newer caller's larger struct: accepted while the part this library
     * does not know is zero (common.h, "Growing structs"). */
    struct {
        ms_qemu_export_options o;
        uint64_t newer;
    } big;
    memset(&big, 0, sizeof big);
    big.o = o;
    big.o.struct_size = sizeof big;
    bad = ms_qemu_export_new(&big.o);
    assert_int_equal(ms_qemu_export_status(bad), 0);
    ms_qemu_export_free(bad);
    big.newer = 1;
    bad = ms_qemu_export_new(&big.o);
    assert_int_equal(ms_qemu_export_status(bad), MS_EINVAL);
    assert_non_null(strstr(ms_qemu_export_errmsg(bad), "newer"));
    ms_qemu_export_free(bad);
    ms_qemu_export_free(NULL);
    assert_int_equal(ms_qemu_export_status(NULL), MS_ENOMEM);
    assert_int_equal(ms_qemu_export_run_fd(NULL, 0, 1), MS_EINVAL);
    assert_int_equal(ms_qemu_export_run_reader(NULL, NULL, th_sink_write, NULL), MS_EINVAL);
    bad = ms_qemu_export_new(NULL);
    assert_int_equal(ms_qemu_export_run_reader(bad, NULL, th_sink_write, NULL), MS_EINVAL);
    assert_contains(ms_qemu_export_errmsg(bad), "no reader");
    ms_qemu_export_free(bad);

    /* The output callback fails: MS_EIO. */
    th_buf s;
    ms_writer *w = new_writer(&s, 0, "pc");
    add_region(w, 0, "pc.ram", 1, PS);
    finish(w);
    ms_qemu_export *x = ms_qemu_export_new(NULL);
    memin m = {s.data, s.len, 0, 0};
    assert_status(ms_qemu_export_run(x, mem_read, &m, failing_write, NULL), MS_EIO);
    assert_contains(ms_qemu_export_errmsg(x), "writing the QEMU stream failed");
    ms_qemu_export_free(x);

    /* --machine overrides INFO. */
    ms_qemu_export_options_init(&o);
    o.machine = "pc-q35-7.2";
    result res;
    export_opts(s.data, s.len, &o, 0, &res);
    assert_status(res.rc, 0);
    assert_memory_equal(res.out.data + 8, "\7\0\0\0\12pc-q35-7.2", 15);
    assert_string_equal(res.stats.machine, "pc-q35-7.2");
    th_buf_free(&res.out);
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q35_paused),
        cmocka_unit_test(test_pc_paused),
        cmocka_unit_test(test_q35_paused_again),
        cmocka_unit_test(test_q35_no_vmdesc),
        cmocka_unit_test(test_q35_devices),
        cmocka_unit_test(test_q35_compress),
        cmocka_unit_test(test_pc_xbzrle_live),
        cmocka_unit_test(test_q35_dirty_bitmap),
        cmocka_unit_test(test_q35_config),
        cmocka_unit_test(test_same_items_as_qemu),
        cmocka_unit_test(test_page_states),
        cmocka_unit_test(test_device_order),
        cmocka_unit_test(test_refuse_in_place),
        cmocka_unit_test(test_refuse_no_raw),
        cmocka_unit_test(test_refuse_overlay),
        cmocka_unit_test(test_refuse_regions),
        cmocka_unit_test(test_refuse_limits_and_damage),
        cmocka_unit_test(test_iterable_built),
        cmocka_unit_test(test_config_built),
        cmocka_unit_test(test_api),
    };
    return th_run_tests(tests);
}
