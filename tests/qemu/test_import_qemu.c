/*
 * The QEMU importer (include/migstream/qemu.h, docs/QEMU.md): real streams
 * captured from Debian's QEMU 7.2 by scripts/capture-qemu.sh (stored zstd-
 * compressed in tests/data/qemu/ with QEMU's own query-migrate figures), and
 * small streams built here byte by byte for the error paths.
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>

#include <jansson.h>
#include <zlib.h>

#include "helpers.h"
#include "qemu_fixture.h"

#ifndef MS_QEMU_DATA
#error "MS_QEMU_DATA must name tests/data/qemu"
#endif

#define PS 4096u

/* ------------------------------------------------------------- fixtures */


static json_t *load_query_migrate(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.query-migrate.json", MS_QEMU_DATA, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        print_error("%s: %s\n", path, err.text);
        fail();
    }
    return j;
}

static uint64_t qm_get(json_t *qm, const char *obj, const char *key)
{
    json_t *v = json_object_get(json_object_get(qm, obj), key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

/* The 8 KiB pattern the captures load at guest-physical 0x100000. */
static void make_pattern(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(7 * i + 3);
}

/* -------------------------------------------------------------- running */

typedef struct memin {
    const uint8_t *p;
    size_t len, pos, chunk;
} memin;

/* Hands out at most `chunk` bytes per call, so that items straddle reads. */
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

typedef struct result {
    int rc;
    char msg[512];
    uint64_t err_offset;
    ms_qemu_import_stats stats;
    th_buf out;
} result;

static void import_opts(const uint8_t *p, size_t n, const ms_qemu_import_options *o, size_t chunk,
                        result *res)
{
    memset(res, 0, sizeof *res);
    ms_qemu_import *imp = ms_qemu_import_new(o);
    assert_non_null(imp);
    memin m = {p, n, 0, chunk};
    res->rc = ms_qemu_import_run(imp, mem_read, &m, th_sink_write, &res->out);
    assert_int_equal(res->rc, ms_qemu_import_status(imp));
    snprintf(res->msg, sizeof res->msg, "%s", ms_qemu_import_errmsg(imp));
    res->err_offset = ms_qemu_import_error_offset(imp);
    res->stats = *ms_qemu_import_get_stats(imp);
    /* A second run is refused. */
    assert_true(ms_qemu_import_run(imp, mem_read, &m, th_sink_write, &res->out) < 0);
    ms_qemu_import_free(imp);
}

static void import(const uint8_t *p, size_t n, result *res)
{
    import_opts(p, n, NULL, 0, res);
}

/* ---------------------------------------------------- the imported guest */

typedef struct region_img {
    ms_region r;
    char name[256];
    uint8_t *mem;
} region_img;

typedef struct device_rec {
    char path[1024], schema[256];
    uint32_t instance, version;
    uint8_t *state;
    size_t size;
} device_rec;

typedef struct guest {
    region_img regions[64];
    size_t nregions;
    device_rec devices[128];
    size_t ndevices;
    ms_totals totals;
} guest;

/* Reads an imported stream strictly and rebuilds memory and devices. */
static void rebuild(const th_buf *stream, guest *g)
{
    memset(g, 0, sizeof *g);
    ms_reader *r = ms_reader_new_memory(NULL, stream->data, stream->len);
    assert_non_null(r);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type == MS_REC_REGIONS) {
            for (size_t i = 0; i < rec->region_count; i++) {
                assert_true(g->nregions < 64);
                region_img *ri = &g->regions[g->nregions++];
                ri->r = rec->regions[i];
                snprintf(ri->name, sizeof ri->name, "%s", rec->regions[i].name);
                ri->r.name = ri->name;
                ri->mem = calloc(1, (size_t)ri->r.size);
                assert_non_null(ri->mem);
            }
        } else if (rec->type == MS_REC_PAGES) {
            const ms_pages *pg = &rec->pages;
            region_img *ri = NULL;
            for (size_t i = 0; i < g->nregions; i++)
                if (g->regions[i].r.id == pg->region->id)
                    ri = &g->regions[i];
            assert_non_null(ri);
            const uint8_t *data = pg->data;
            for (size_t e = 0; e < pg->extent_count; e++) {
                const ms_extent *x = &pg->extents[e];
                uint8_t *dst = ri->mem + x->first * ri->r.page_size;
                size_t bytes = (size_t)x->count * ri->r.page_size;
                if (x->state == MS_PAGE_DATA) {
                    memcpy(dst, data, bytes);
                    data += bytes;
                } else if (x->state == MS_PAGE_ZERO) {
                    memset(dst, 0, bytes);
                } else if (x->state == MS_PAGE_FILL) {
                    for (size_t k = 0; k < bytes; k += 8)
                        th_put64(dst + k, x->arg);
                } else {
                    fail_msg("unexpected page state %u", x->state);
                }
            }
        } else if (rec->type == MS_REC_DEVICE) {
            assert_true(g->ndevices < 128);
            device_rec *d = &g->devices[g->ndevices++];
            snprintf(d->path, sizeof d->path, "%s", rec->device.path);
            snprintf(d->schema, sizeof d->schema, "%s", rec->device.schema);
            d->instance = rec->device.instance;
            d->version = rec->device.version;
            d->size = rec->device.state_size;
            d->state = malloc(d->size);
            assert_non_null(d->state);
            memcpy(d->state, rec->device.state, d->size);
        } else if (rec->type == MS_REC_END) {
            g->totals = rec->totals;
        }
    }
    assert_status(rc, 0);
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);
}

static void guest_free(guest *g)
{
    for (size_t i = 0; i < g->nregions; i++)
        free(g->regions[i].mem);
    for (size_t i = 0; i < g->ndevices; i++)
        free(g->devices[i].state);
}

static region_img *find_region(guest *g, const char *name)
{
    for (size_t i = 0; i < g->nregions; i++)
        if (strcmp(g->regions[i].name, name) == 0)
            return &g->regions[i];
    fail_msg("no region %s", name);
    return NULL;
}

static device_rec *find_device(guest *g, const char *path, uint32_t instance)
{
    for (size_t i = 0; i < g->ndevices; i++)
        if (strcmp(g->devices[i].path, path) == 0 && g->devices[i].instance == instance)
            return &g->devices[i];
    return NULL;
}

/* The JSON form of a device's CBOR state, for looking at its fields.
 * Numbers are read as doubles: jansson has no integers beyond INT64_MAX,
 * and QEMU has uint64 fields full of ones. */
static json_t *state_json(const device_rec *d)
{
    ssize_t n = ms_cbor_format(d->state, d->size, MS_CBOR_JSON, 0, NULL, 0);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    ms_cbor_format(d->state, d->size, MS_CBOR_JSON, 0, s, (size_t)n + 1);
    json_error_t err;
    json_t *j = json_loads(s, JSON_DECODE_INT_AS_REAL, &err);
    if (!j)
        fail_msg("%s state as JSON: %s at %d: %.80s", d->path, err.text, err.position,
                 s + (err.position > 20 ? err.position - 20 : 0));
    free(s);
    return j;
}

static uint64_t total_pages(const ms_totals *t)
{
    uint64_t n = 0;
    for (int i = 0; i < MS_PAGE_STATE_SLOTS; i++)
        n += t->pages[i];
    return n;
}

/* ---------------------------------------------------- the real captures */

/* Page counts equal QEMU's own, every item is one page of the output, and
 * every page of every block was sent. */
static void check_counts(const char *name, bool compare_qemu)
{
    size_t n;
    uint8_t *p = th_qemu_fixture(name, &n);
    result res;
    import(p, n, &res);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.bytes_read, n);
    const ms_qemu_import_stats *s = &res.stats;
    if (compare_qemu) {
        json_t *qm = load_query_migrate(name);
        assert_int_equal(s->zero_pages, qm_get(qm, "ram", "duplicate"));
        assert_int_equal(s->normal_pages, qm_get(qm, "ram", "normal"));
        assert_int_equal(s->xbzrle_pages, qm_get(qm, "xbzrle-cache", "pages"));
        assert_int_equal(s->ram_bytes, qm_get(qm, "ram", "total"));
        json_decref(qm);
    }
    guest g;
    rebuild(&res.out, &g);
    uint64_t items = s->zero_pages + s->normal_pages + s->xbzrle_pages + s->compressed_pages;
    assert_int_equal(total_pages(&g.totals), items);
    assert_int_equal(g.nregions, s->ram_blocks);
    uint64_t pages = 0;
    for (size_t i = 0; i < g.nregions; i++) {
        assert_false(g.regions[i].r.has_gpa);
        pages += g.regions[i].r.size / PS;
    }
    assert_int_equal(pages * PS, s->ram_bytes);
    assert_true(items >= pages); /* a paused guest sends each page once */
    if (s->ram_rounds == 1)
        assert_int_equal(items, pages);
    assert_int_equal(g.ndevices, s->devices);
    guest_free(&g);
    th_buf_free(&res.out);
    free(p);
}

static void test_counts_q35(void **state)
{
    (void)state;
    check_counts("q35-paused", true);
}

static void test_counts_pc(void **state)
{
    (void)state;
    check_counts("pc-paused", true);
}

static void test_counts_devices(void **state)
{
    (void)state;
    check_counts("q35-devices", true);
}

static void test_counts_no_vmdesc(void **state)
{
    (void)state;
    check_counts("q35-no-vmdesc", true);
}

static void test_counts_xbzrle(void **state)
{
    (void)state;
    check_counts("pc-xbzrle-live", true);
}

/* QEMU 7.2's compression counters do not count stream items (its
 * "duplicate" also grows for some pages sent compressed), so only the
 * stream's own consistency is checked here; test_compress_same_memory
 * checks the contents. */
static void test_counts_compress(void **state)
{
    (void)state;
    check_counts("q35-compress", false);
}

/* The loader's pattern lies in pc.ram at 0x100000, byte for byte. */
static void check_pattern(const char *name)
{
    size_t n;
    uint8_t *p = th_qemu_fixture(name, &n), want[8192];
    make_pattern(want, sizeof want);
    result res;
    import(p, n, &res);
    assert_status(res.rc, 0);
    guest g;
    rebuild(&res.out, &g);
    region_img *ram = find_region(&g, "pc.ram");
    assert_true(ram->r.size >= 0x100000 + sizeof want);
    assert_memory_equal(ram->mem + 0x100000, want, sizeof want);
    /* and nothing of it right before or after */
    assert_true(th_all_zero(ram->mem + 0x100000 - 64, 64));
    assert_true(th_all_zero(ram->mem + 0x100000 + sizeof want, 64));
    guest_free(&g);
    th_buf_free(&res.out);
    free(p);
}

static void test_pattern(void **state)
{
    (void)state;
    check_pattern("q35-paused");
    check_pattern("pc-paused");
    check_pattern("q35-no-vmdesc");
    check_pattern("q35-devices");
    check_pattern("q35-compress");
}

/* Every device the JSON trailer lists is a DEVICE record with its schema
 * (vmsd name) and version; with fields decoded, leaf values agree with the
 * raw bytes. */
static void test_devices(void **state)
{
    (void)state;
    static const char *const names[] = {"q35-paused", "pc-paused", "q35-devices", "pc-xbzrle-live"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t n;
        uint8_t *p = th_qemu_fixture(names[f], &n);
        result res;
        import(p, n, &res);
        assert_status(res.rc, 0);
        assert_true(res.stats.has_vmdesc);
        guest g;
        rebuild(&res.out, &g);
        /* The trailer is the stream's last bytes: find it by its length. */
        const char *js = memmem(p, n, "{\"page_size\"", 12);
        assert_non_null(js);
        json_t *vm = json_loadb(js, n - (size_t)((const uint8_t *)js - p), 0, NULL);
        assert_non_null(vm);
        size_t i;
        json_t *dev;
        size_t described = 0;
        json_array_foreach(json_object_get(vm, "devices"), i, dev)
        {
            const char *dname = json_string_value(json_object_get(dev, "name"));
            uint32_t inst = (uint32_t)json_integer_value(json_object_get(dev, "instance_id"));
            device_rec *d = find_device(&g, dname, inst);
            if (!d)
                fail_msg("%s: device %s instance %u missing", names[f], dname, inst);
            json_t *vn = json_object_get(dev, "vmsd_name");
            if (vn) {
                assert_string_equal(d->schema, json_string_value(vn));
                assert_int_equal(d->version, json_integer_value(json_object_get(dev, "version")));
                described++;
            }
            json_t *st = state_json(d);
            assert_non_null(json_object_get(st, "raw"));
            assert_non_null(json_object_get(st, "fields"));
            json_decref(st);
        }
        assert_int_equal(res.stats.devices_decoded, res.stats.devices);
        assert_true(described > 20);
        json_decref(vm);

        /* i8259: sixteen uint8 fields, the section's 16 bytes in order. */
        device_rec *pic = find_device(&g, "i8259", 0);
        assert_non_null(pic);
        assert_string_equal(pic->schema, "i8259");
        json_t *st = state_json(pic);
        const char *raw = json_string_value(json_object_get(st, "raw"));
        json_t *fields = json_object_get(st, "fields");
        assert_int_equal(strlen(raw), 32);
        assert_int_equal(json_object_size(fields), 16);
        const char *key;
        json_t *v;
        size_t k = 0;
        json_object_foreach(fields, key, v)
        {
            unsigned byte;
            assert_int_equal(sscanf(raw + 2 * k, "%2x", &byte), 1);
            assert_true(json_number_value(v) == (double)byte);
            k++;
        }
        json_decref(st);

        /* A subsection nests under its name: fw_cfg/dma holds dma_addr. */
        device_rec *fw = find_device(&g, "fw_cfg", 0);
        if (fw) {
            st = state_json(fw);
            json_t *dma = json_object_get(json_object_get(st, "fields"), "fw_cfg/dma");
            assert_non_null(json_object_get(dma, "dma_addr"));
            json_decref(st);
        }
        guest_free(&g);
        th_buf_free(&res.out);
        free(p);
    }
}

/* Without the trailer, the same devices come with their raw bytes only;
 * the schema is the id string's last component. */
static void test_no_vmdesc(void **state)
{
    (void)state;
    size_t n1, n2;
    uint8_t *p1 = th_qemu_fixture("q35-no-vmdesc", &n1), *p2 = th_qemu_fixture("q35-paused", &n2);
    result r1, r2;
    import(p1, n1, &r1);
    import(p2, n2, &r2);
    assert_status(r1.rc, 0);
    assert_status(r2.rc, 0);
    assert_false(r1.stats.has_vmdesc);
    assert_int_equal(r1.stats.devices_decoded, 0);
    guest g1, g2;
    rebuild(&r1.out, &g1);
    rebuild(&r2.out, &g2);
    assert_int_equal(g1.ndevices, g2.ndevices);
    size_t same_raw = 0;
    for (size_t i = 0; i < g1.ndevices; i++) {
        device_rec *a = &g1.devices[i], *b = find_device(&g2, a->path, a->instance);
        assert_non_null(b);
        assert_string_equal(a->schema, b->schema);
        assert_int_equal(a->version, b->version);
        json_t *sa = state_json(a), *sb = state_json(b);
        assert_int_equal(json_object_size(sa), 1);
        assert_non_null(json_object_get(sa, "raw"));
        /* Same machine, same devices: the same bytes, but for clocks. */
        if (json_equal(json_object_get(sa, "raw"), json_object_get(sb, "raw")))
            same_raw++;
        json_decref(sa);
        json_decref(sb);
    }
    assert_true(same_raw + 3 >= g1.ndevices);
    assert_non_null(find_device(&g1, "0000:00:1f.0/ICH9LPC", 0));
    assert_string_equal(find_device(&g1, "0000:00:1f.0/ICH9LPC", 0)->schema, "ICH9LPC");
    guest_free(&g1);
    guest_free(&g2);
    th_buf_free(&r1.out);
    th_buf_free(&r2.out);
    free(p1);
    free(p2);
}

/* Two captures of one paused guest: memory equal, devices equal but for
 * the RTC (its clock follows the host's). */
static void test_recapture(void **state)
{
    (void)state;
    size_t n1, n2;
    uint8_t *p1 = th_qemu_fixture("q35-paused", &n1), *p2 = th_qemu_fixture("q35-paused-again", &n2);
    result r1, r2;
    import(p1, n1, &r1);
    import(p2, n2, &r2);
    guest g1, g2;
    rebuild(&r1.out, &g1);
    rebuild(&r2.out, &g2);
    assert_int_equal(g1.nregions, g2.nregions);
    for (size_t i = 0; i < g1.nregions; i++) {
        assert_int_equal(g1.regions[i].r.size, g2.regions[i].r.size);
        assert_memory_equal(g1.regions[i].mem, g2.regions[i].mem, g1.regions[i].r.size);
    }
    assert_int_equal(g1.ndevices, g2.ndevices);
    for (size_t i = 0; i < g1.ndevices; i++) {
        device_rec *a = &g1.devices[i], *b = &g2.devices[i];
        assert_string_equal(a->path, b->path);
        bool same = a->size == b->size && memcmp(a->state, b->state, a->size) == 0;
        if (!same && strcmp(a->path, "mc146818rtc") != 0)
            fail_msg("device %s differs between the captures", a->path);
    }
    guest_free(&g1);
    guest_free(&g2);
    th_buf_free(&r1.out);
    th_buf_free(&r2.out);
    free(p1);
    free(p2);
}

/* Compressed pages inflate to the memory of the same paused guest. */
static void test_compress_same_memory(void **state)
{
    (void)state;
    size_t n1, n2;
    uint8_t *p1 = th_qemu_fixture("q35-compress", &n1), *p2 = th_qemu_fixture("q35-paused", &n2);
    result r1, r2;
    import(p1, n1, &r1);
    import(p2, n2, &r2);
    assert_status(r1.rc, 0);
    assert_true(r1.stats.compressed_pages > 10);
    /* Compression threads reorder pages within the pass: still one pass. */
    assert_int_equal(r1.stats.ram_rounds, 1);
    guest g1, g2;
    rebuild(&r1.out, &g1);
    rebuild(&r2.out, &g2);
    assert_int_equal(g1.nregions, g2.nregions);
    for (size_t i = 0; i < g1.nregions; i++) {
        assert_string_equal(g1.regions[i].name, g2.regions[i].name);
        assert_memory_equal(g1.regions[i].mem, g2.regions[i].mem, g1.regions[i].r.size);
    }
    guest_free(&g1);
    guest_free(&g2);
    th_buf_free(&r1.out);
    th_buf_free(&r2.out);
    free(p1);
    free(p2);
}

/* The live guest runs capture-qemu.sh's boot sector, which writes its
 * counter into the first word and the word at 0x800 of the 64 pages from
 * 0x10000, page after page. XBZRLE pages are decoded against earlier
 * copies: each page must hold exactly those two words, and the pages'
 * counters must read as one pass of the loop (a value X up to some page,
 * X - 1 after it). */
static void check_live_memory(guest *g);

static void test_xbzrle_live(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = th_qemu_fixture("pc-xbzrle-live", &n);
    result res;
    import(p, n, &res);
    assert_status(res.rc, 0);
    assert_true(res.stats.xbzrle_pages > 0);
    assert_true(res.stats.ram_rounds >= 2);
    guest g;
    rebuild(&res.out, &g);
    assert_true(total_pages(&g.totals) > g.regions[0].r.size / PS);
    check_live_memory(&g);
    guest_free(&g);
    th_buf_free(&res.out);
    free(p);
}

/* What the running boot sector leaves in memory (see above). */
static void check_live_memory(guest *g)
{
    static const uint8_t boot[] = {
        0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x0f, 0x20, 0xc0, 0x66, 0x35, 0x00, 0x00, 0x01, 0x00, 0x0f,
        0x22, 0xc0, 0x43, 0xba, 0x00, 0x10, 0x8e, 0xc2, 0x26, 0x89, 0x1e, 0x00, 0x00, 0x26, 0x89,
        0x1e, 0x00, 0x08, 0x81, 0xc2, 0x00, 0x01, 0x81, 0xfa, 0x00, 0x50, 0x72, 0xea, 0xeb, 0xd8};
    region_img *ram = find_region(g, "pc.ram");
    assert_memory_equal(ram->mem + 0x7c00, boot, sizeof boot);
    uint16_t w0[64], w1[64];
    for (unsigned pg = 0; pg < 64; pg++) {
        const uint8_t *page = ram->mem + 0x10000 + pg * PS;
        w0[pg] = (uint16_t)(page[0] | page[1] << 8); /* the guest's little-endian words */
        w1[pg] = (uint16_t)(page[0x800] | page[0x801] << 8);
        assert_true(th_all_zero(page + 2, 0x800 - 2));
        assert_true(th_all_zero(page + 0x802, PS - 0x802));
    }
    /* The vCPU stopped somewhere in one pass: X before that point, X - 1
     * after it; within a page the second word lags at most by one. */
    bool older = false;
    for (unsigned pg = 0; pg < 64; pg++) {
        if (!older && w0[pg] == (uint16_t)(w0[0] - 1))
            older = true;
        assert_int_equal(w0[pg], older ? (uint16_t)(w0[0] - 1) : w0[0]);
        assert_true(w1[pg] == w0[pg] || w1[pg] == (uint16_t)(w0[pg] - 1));
    }
    assert_true(w0[0] != 0);
}

/* Reading in 1-byte and odd-sized pieces gives the same output. */
static void test_small_reads(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = th_qemu_fixture("q35-devices", &n);
    result a, b;
    import(p, n, &a);
    import_opts(p, n, NULL, 7, &b);
    assert_status(b.rc, 0);
    assert_int_equal(a.out.len, b.out.len);
    assert_memory_equal(a.out.data, b.out.data, a.out.len);
    th_buf_free(&a.out);
    th_buf_free(&b.out);
    free(p);
}

/* Every cut of a real stream is refused as truncated, except the one right
 * after EOF, which is a stream without its (optional) trailer. */
static void test_truncations(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = th_qemu_fixture("q35-paused", &n);
    const uint8_t *js = memmem(p, n, "{\"page_size\"", 12);
    assert_non_null(js);
    size_t eof_end = (size_t)(js - p) - 5; /* before 0x06 and the length */
    assert_int_equal(p[eof_end - 1], 0x00);
    assert_int_equal(p[eof_end], 0x06);
    size_t cuts[600], nc = 0;
    for (size_t c = 0; c < 300; c++)
        cuts[nc++] = c;
    for (size_t c = 300; c < n && nc < 560; c += n / 250)
        cuts[nc++] = c;
    for (size_t c = eof_end - 20; c < eof_end + 20; c++)
        cuts[nc++] = c;
    for (size_t i = 0; i < nc; i++) {
        result res;
        import(p, cuts[i], &res);
        if (cuts[i] == eof_end) {
            assert_status(res.rc, 0);
            assert_false(res.stats.has_vmdesc);
        } else {
            if (res.rc != MS_ETRUNCATED)
                fail_msg("cut at %zu: %d %s", cuts[i], res.rc, res.msg);
            assert_contains(res.msg, "at offset");
            assert_true(res.err_offset <= cuts[i]);
        }
        th_buf_free(&res.out);
    }
    free(p);
}

/* Flipped bytes anywhere: an error or a stream, never a crash (run under
 * the sanitizers). */
static void test_flips(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = th_qemu_fixture("q35-paused", &n);
    uint64_t rng = 7;
    for (int i = 0; i < 300; i++) {
        size_t at = i < 100 ? (size_t)th_rand_below(&rng, 600) : (size_t)th_rand_below(&rng, n);
        uint8_t old = p[at];
        p[at] ^= (uint8_t)(1u << th_rand_below(&rng, 8));
        result res;
        import(p, n, &res);
        if (res.rc)
            assert_true(res.msg[0] != 0);
        th_buf_free(&res.out);
        p[at] = old;
    }
    free(p);
}

/* ------------------------------------------------ streams built by hand */

static void be16(th_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    th_buf_append(b, x, 2);
}
static void be32(th_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    th_buf_append(b, x, 4);
}
static void be64(th_buf *b, uint64_t v)
{
    be32(b, (uint32_t)(v >> 32));
    be32(b, (uint32_t)v);
}
static void name8(th_buf *b, const char *s)
{
    th_buf_u8(b, (uint8_t)strlen(s));
    th_buf_append(b, s, strlen(s));
}

/* Header, CONFIGURATION, and the ram START section (id 2) up to its
 * MEM_SIZE item of @total bytes, which the blocks' entries follow. */
static void q_ram_start(th_buf *b, uint64_t total)
{
    memset(b, 0, sizeof *b);
    be32(b, 0x5145564d);
    be32(b, 3);
    th_buf_u8(b, 0x07);
    be32(b, 6);
    th_buf_append(b, "pc-7.2", 6);
    th_buf_u8(b, 0x01);
    be32(b, 2);
    name8(b, "ram");
    be32(b, 0);
    be32(b, 4);
    be64(b, total | 0x04);
}

/* q_ram_start with a MEM_SIZE table of "pc.ram" (4 pages) and "rom" (1
 * page), ending with EOS and its footer. */
static void q_begin(th_buf *b)
{
    q_ram_start(b, 5 * PS);
    name8(b, "pc.ram");
    be64(b, 4 * PS);
    name8(b, "rom");
    be64(b, PS);
    be64(b, 0x10);
    th_buf_u8(b, 0x7e);
    be32(b, 2);
}

static void q_part(th_buf *b)
{
    th_buf_u8(b, 0x02);
    be32(b, 2);
}
static void q_eos(th_buf *b)
{
    be64(b, 0x10);
    th_buf_u8(b, 0x7e);
    be32(b, 2);
}
static void q_page(th_buf *b, uint64_t addr, const char *block, uint8_t fill)
{
    be64(b, addr | (block ? 0x08 : 0x28));
    if (block)
        name8(b, block);
    uint8_t page[PS];
    memset(page, fill, PS);
    th_buf_append(b, page, PS);
}
/* A FULL device section "dev" instance 0 version 1 holding @data. */
static void q_device(th_buf *b, uint32_t id, const void *data, size_t n)
{
    th_buf_u8(b, 0x04);
    be32(b, id);
    name8(b, "dev");
    be32(b, 0);
    be32(b, 1);
    th_buf_append(b, data, n);
    th_buf_u8(b, 0x7e);
    be32(b, id);
}
static void q_trailer(th_buf *b, const char *json)
{
    th_buf_u8(b, 0x06);
    be32(b, (uint32_t)strlen(json));
    th_buf_append(b, json, strlen(json));
}

static void expect_fail(th_buf *b, int status, uint64_t offset, const char *text)
{
    result res;
    import(b->data, b->len, &res);
    if (res.rc != status || res.err_offset != offset || !strstr(res.msg, text))
        fail_msg("got %d at %llu \"%s\"; expected %d at %llu with \"%s\"", res.rc,
                 (unsigned long long)res.err_offset, res.msg, status, (unsigned long long)offset,
                 text);
    th_buf_free(&res.out);
    th_buf_free(b);
}

static void test_built_good(void **state)
{
    (void)state;
    th_buf b;
    q_begin(&b);
    q_part(&b);
    q_page(&b, PS, "pc.ram", 0xab);
    be64(&b, 2 * PS | 0x22); /* ZERO, CONTINUE */
    th_buf_u8(&b, 0);
    /* XBZRLE against page 1: unchanged 10 bytes, 3 new bytes 01 02 03 */
    be64(&b, PS | 0x60);
    th_buf_u8(&b, 1);
    be16(&b, 5);
    static const uint8_t delta[] = {10, 3, 1, 2, 3};
    th_buf_append(&b, delta, sizeof delta);
    /* COMPRESS_PAGE into "rom" page 0 */
    uint8_t page[PS], z[PS + 64];
    for (unsigned i = 0; i < PS; i++)
        page[i] = (uint8_t)(i / 16);
    uLongf zl = sizeof z;
    assert_int_equal(compress2(z, &zl, page, PS, 1), Z_OK);
    be64(&b, 0x100);
    name8(&b, "rom");
    be32(&b, (uint32_t)zl);
    th_buf_append(&b, z, zl);
    q_eos(&b);
    /* a device whose bytes hold its own footer pattern, not followed by a
     * section header: it is data */
    static const uint8_t dev[] = {0x7e, 0, 0, 0, 3, 0xff, 0x7e, 0, 0, 0, 3, 0x42, 0x01};
    q_device(&b, 3, dev, sizeof dev);
    th_buf_u8(&b, 0x08); /* COMMAND SWITCHOVER_START */
    be16(&b, 11);
    be16(&b, 0);
    th_buf_u8(&b, 0x00);
    q_trailer(&b, "{\"page_size\": 4096, \"devices\": [{\"name\": \"dev\", \"instance_id\": 0, "
                  "\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": ["
                  "{\"name\": \"a\", \"type\": \"buffer\", \"size\": 11},"
                  "{\"name\": \"b\", \"type\": \"uint8\", \"size\": 1},"
                  "{\"name\": \"c\", \"type\": \"bool\", \"size\": 1}]}]}");
    result res;
    import(b.data, b.len, &res);
    if (res.rc)
        fail_msg("%s", res.msg);
    assert_int_equal(res.stats.normal_pages, 1);
    assert_int_equal(res.stats.zero_pages, 1);
    assert_int_equal(res.stats.xbzrle_pages, 1);
    assert_int_equal(res.stats.compressed_pages, 1);
    assert_int_equal(res.stats.ram_rounds, 2); /* page 1 came again */
    assert_int_equal(res.stats.commands, 1);
    assert_string_equal(res.stats.machine, "pc-7.2");
    guest g;
    rebuild(&res.out, &g);
    region_img *ram = find_region(&g, "pc.ram"), *rom = find_region(&g, "rom");
    uint8_t want[PS];
    memset(want, 0xab, PS);
    memcpy(want + 10, "\x01\x02\x03", 3);
    assert_memory_equal(ram->mem + PS, want, PS);
    assert_true(th_all_zero(ram->mem + 2 * PS, PS));
    assert_memory_equal(rom->mem, page, PS);
    assert_int_equal(g.ndevices, 1);
    json_t *st = state_json(&g.devices[0]);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), "7e00000003ff7e00000003420"
                                                                       "1");
    json_t *f = json_object_get(st, "fields");
    assert_true(json_number_value(json_object_get(f, "b")) == 0x42);
    assert_true(json_is_true(json_object_get(f, "c")));
    json_decref(st);
    guest_free(&g);
    th_buf_free(&res.out);
    th_buf_free(&b);
}

static void test_built_errors(void **state)
{
    (void)state;
    th_buf b;
    size_t at;

    memset(&b, 0, sizeof b);
    th_buf_append(&b, "QEVX\0\0\0\3", 8);
    expect_fail(&b, MS_EMAGIC, 0, "magic 0x51455658");
    memset(&b, 0, sizeof b);
    th_buf_append(&b, "\x89MIGS\r\n\x1a", 8);
    expect_fail(&b, MS_EMAGIC, 0, "libmigstream stream");
    memset(&b, 0, sizeof b);
    th_buf_append(&b, "QEVM\0\0\0\2", 8);
    expect_fail(&b, MS_EVERSION, 4, "version 2");

    q_begin(&b);
    at = b.len;
    th_buf_u8(&b, 0x09);
    expect_fail(&b, MS_ECORRUPT, at, "0x09 is not a section type");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    be64(&b, 0x02);
    name8(&b, "pc.ram");
    th_buf_u8(&b, 0x5a);
    expect_fail(&b, MS_ECORRUPT, at, "fill byte 0x5a");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    q_page(&b, 4 * PS, "pc.ram", 1);
    expect_fail(&b, MS_ECORRUPT, at, "outside block 'pc.ram'");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    q_page(&b, 0, "pc.rom", 1);
    expect_fail(&b, MS_ECORRUPT, at, "unknown RAM block 'pc.rom'");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    q_page(&b, 0, NULL, 1);
    expect_fail(&b, MS_ECORRUPT, at, "CONTINUE, but no block");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    be64(&b, 0x400);
    expect_fail(&b, MS_ECORRUPT, at, "flags 0x400 unknown");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    be64(&b, 0x80);
    expect_fail(&b, MS_EFEATURE, at, "RDMA");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    be64(&b, 0x40);
    name8(&b, "pc.ram");
    th_buf_u8(&b, 1);
    be16(&b, 2);
    th_buf_append(&b, "\x00\x00", 2); /* empty new-bytes run */
    expect_fail(&b, MS_ECOMPRESS, at, "XBZRLE");

    q_begin(&b);
    q_part(&b);
    at = b.len;
    be64(&b, 0x100);
    name8(&b, "pc.ram");
    be32(&b, 5);
    th_buf_append(&b, "junk!", 5);
    expect_fail(&b, MS_ECOMPRESS, at, "COMPRESS_PAGE");

    /* the section's idstr is empty */
    q_begin(&b);
    at = b.len;
    th_buf_u8(&b, 0x04);
    be32(&b, 3);
    th_buf_u8(&b, 0);
    expect_fail(&b, MS_ECORRUPT, at, "empty name");

    /* a device section that never ends */
    q_begin(&b);
    at = b.len + 17;
    th_buf_u8(&b, 0x04);
    be32(&b, 3);
    name8(&b, "dev");
    be32(&b, 0);
    be32(&b, 1);
    th_buf_append(&b, "abc", 3);
    expect_fail(&b, MS_ETRUNCATED, at, "footer");

    /* JSON trailer: too long, not JSON, followed by more bytes */
    q_begin(&b);
    th_buf_u8(&b, 0x00);
    at = b.len;
    th_buf_u8(&b, 0x06);
    be32(&b, 0xffffffffu);
    expect_fail(&b, MS_ELIMIT, at, "max_vmdesc_size");
    q_begin(&b);
    th_buf_u8(&b, 0x00);
    at = b.len;
    q_trailer(&b, "{\"devices\": [");
    expect_fail(&b, MS_ECORRUPT, at, "not valid JSON");
    q_begin(&b);
    th_buf_u8(&b, 0x00);
    q_trailer(&b, "{\"devices\": []}");
    at = b.len;
    th_buf_u8(&b, 0x00);
    expect_fail(&b, MS_ECORRUPT, at, "more bytes follow");

    /* a MEM_SIZE total the blocks exceed; a second table */
    memset(&b, 0, sizeof b);
    be32(&b, 0x5145564d);
    be32(&b, 3);
    th_buf_u8(&b, 0x01);
    be32(&b, 2);
    name8(&b, "ram");
    be32(&b, 0);
    be32(&b, 4);
    be64(&b, PS | 0x04);
    at = b.len;
    name8(&b, "pc.ram");
    be64(&b, 2 * PS);
    expect_fail(&b, MS_ECORRUPT, at, "exceeds the 0x1000 bytes");

    /* postcopy is refused up front */
    memset(&b, 0, sizeof b);
    be32(&b, 0x5145564d);
    be32(&b, 3);
    at = b.len;
    th_buf_u8(&b, 0x08);
    be16(&b, 4);
    be16(&b, 0);
    expect_fail(&b, MS_EFEATURE, at, "POSTCOPY_LISTEN");
}

/* A description that does not account for the bytes leaves them raw. */
static void test_built_mismatch(void **state)
{
    (void)state;
    th_buf b;
    q_begin(&b);
    static const uint8_t dev[] = {1, 2, 3};
    q_device(&b, 3, dev, sizeof dev);
    th_buf_u8(&b, 0x00);
    q_trailer(&b, "{\"devices\": [{\"name\": \"dev\", \"instance_id\": 0, \"vmsd_name\": \"dev\","
                  " \"version\": 1, \"fields\": [{\"name\": \"a\", \"type\": \"uint16\", "
                  "\"size\": 2}]}]}");
    result res;
    import(b.data, b.len, &res);
    assert_status(res.rc, 0);
    assert_int_equal(res.stats.devices, 1);
    assert_int_equal(res.stats.devices_decoded, 0);
    guest g;
    rebuild(&res.out, &g);
    json_t *st = state_json(&g.devices[0]);
    assert_int_equal(json_object_size(st), 1);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), "010203");
    json_decref(st);
    guest_free(&g);
    th_buf_free(&res.out);
    th_buf_free(&b);
}

/* One device section described by @trailer_fields, imported: its state as
 * JSON (NULL fields when the description did not match). */
static json_t *import_described(const uint8_t *dev, size_t n, const char *trailer_fields,
                                uint64_t *decoded)
{
    th_buf b;
    q_begin(&b);
    q_device(&b, 3, dev, n);
    th_buf_u8(&b, 0x00);
    char trailer[2048];
    snprintf(trailer, sizeof trailer,
             "{\"devices\": [{\"name\": \"dev\", \"instance_id\": 0, \"vmsd_name\": "
             "\"dev\", \"version\": 1, \"fields\": [%s]}]}",
             trailer_fields);
    q_trailer(&b, trailer);
    result res;
    import(b.data, b.len, &res);
    assert_status(res.rc, 0);
    *decoded = res.stats.devices_decoded;
    guest g;
    rebuild(&res.out, &g);
    assert_int_equal(g.ndevices, 1);
    json_t *st = state_json(&g.devices[0]);
    guest_free(&g);
    th_buf_free(&res.out);
    th_buf_free(&b);
    return st;
}

/* Arrays as QEMU's trailers describe them (docs/QEMU.md 3.1): one entry per
 * element with "index", where QEMU 9.1.3 on leave it off the last element
 * (ich9_ahci's ports in a real q35 guest); arrays of pointers in runs of
 * null and non-null elements; "array_len" for alike elements. The same
 * fields as analyze-migration.py reads them. */
static void test_built_arrays(void **state)
{
    (void)state;
    static const uint8_t dev[] = {1, 2, 3, '0', '0', 7, 8, '0', 0x12, 0x34, 9, 10};
    uint64_t decoded;
#define S1(x) "{\"fields\": [{\"name\": \"" x "\", \"type\": \"uint8\", \"size\": 1}]}"
    json_t *st = import_described(
        dev, sizeof dev,
        "{\"name\": \"port\", \"index\": 0, \"type\": \"struct\", \"struct\": " S1("x")
        ", \"size\": 1},"
        "{\"name\": \"port\", \"index\": 1, \"type\": \"struct\", \"struct\": " S1("x")
        ", \"size\": 1},"
        "{\"name\": \"port\", \"type\": \"struct\", \"struct\": " S1("x") ", \"size\": 1},"
        "{\"name\": \"css\", \"array_len\": 2, \"type\": \"nullptr\", \"size\": 1},"
        "{\"name\": \"css\", \"type\": \"struct\", \"struct\": {\"fields\": ["
        "{\"name\": \"y\", \"type\": \"uint8\", \"size\": 1},"
        "{\"name\": \"z\", \"type\": \"uint8\", \"size\": 1}]}, \"size\": 2},"
        "{\"name\": \"css\", \"type\": \"nullptr\", \"size\": 1},"
        "{\"name\": \"v\", \"type\": \"uint16\", \"size\": 2},"
        "{\"name\": \"w\", \"array_len\": 2, \"type\": \"uint8\", \"size\": 1}",
        &decoded);
    assert_int_equal(decoded, 1);
    json_t *f = json_object_get(st, "fields");
    assert_non_null(f);
    json_t *port = json_object_get(f, "port");
    assert_int_equal(json_array_size(port), 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(json_number_value(json_object_get(json_array_get(port, i), "x")) == i + 1);
    json_t *css = json_object_get(f, "css");
    assert_int_equal(json_array_size(css), 4);
    assert_true(json_is_string(json_array_get(css, 0))); /* the null pointer's '0' */
    assert_true(json_is_string(json_array_get(css, 1)));
    assert_true(json_number_value(json_object_get(json_array_get(css, 2), "z")) == 8);
    assert_true(json_is_string(json_array_get(css, 3)));
    assert_true(json_number_value(json_object_get(f, "v")) == 0x1234);
    assert_int_equal(json_array_size(json_object_get(f, "w")), 2);
    json_decref(st);

    /* An index out of its place, or one name in two places, is not a
     * layout the importer guesses: raw bytes only. */
    static const uint8_t two[] = {1, 2};
    st = import_described(two, sizeof two,
                          "{\"name\": \"a\", \"index\": 0, \"type\": \"uint8\", \"size\": 1},"
                          "{\"name\": \"a\", \"index\": 2, \"type\": \"uint8\", \"size\": 1}",
                          &decoded);
    assert_int_equal(decoded, 0);
    assert_null(json_object_get(st, "fields"));
    json_decref(st);
    static const uint8_t three[] = {1, 2, 3};
    st = import_described(three, sizeof three,
                          "{\"name\": \"a\", \"type\": \"uint8\", \"size\": 1},"
                          "{\"name\": \"b\", \"type\": \"uint8\", \"size\": 1},"
                          "{\"name\": \"a\", \"type\": \"uint8\", \"size\": 1}",
                          &decoded);
    assert_int_equal(decoded, 0);
    json_decref(st);
#undef S1
}

/* Limits hold before any allocation: a 1 KiB section limit. */
static void test_limits(void **state)
{
    (void)state;
    th_buf b;
    q_begin(&b);
    size_t at = b.len + 17;
    uint8_t junk[2048];
    memset(junk, 0x11, sizeof junk);
    q_device(&b, 3, junk, sizeof junk);
    th_buf_u8(&b, 0x00);
    ms_qemu_import_options o;
    ms_qemu_import_options_init(&o);
    o.max_section_size = 1024;
    result res;
    import_opts(b.data, b.len, &o, 0, &res);
    assert_status(res.rc, MS_ELIMIT);
    assert_int_equal(res.err_offset, at);
    assert_contains(res.msg, "max_section_size");
    th_buf_free(&res.out);
    th_buf_free(&b);
}

/* --------------------------------------- iterable sections, configuration */

static size_t find_bytes(const uint8_t *p, size_t n, size_t from, const void *what, size_t k)
{
    for (size_t i = from; i + k <= n; i++)
        if (memcmp(p + i, what, k) == 0)
            return i;
    return SIZE_MAX;
}

/* The hex of @n bytes, as ms_cbor_format writes a byte string in JSON. */
static char *hex_of(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", p[i]);
    s[2 * n] = 0;
    return s;
}

/* q35-dirty-bitmap: the "dirty-bitmap" section QEMU sent as START, PART and
 * END becomes one device whose "raw" joins the parts and whose "parts" gives
 * their lengths. The parts are found in the capture here from QEMU's layout:
 * START after the id string, instance and version; each PART or END right
 * after another section's footer (0x7e, u32 id); each up to its footer. */
static void test_iterable_capture(void **state)
{
    (void)state;
    check_counts("q35-dirty-bitmap", true);
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-dirty-bitmap", &n);
    size_t at = find_bytes(q, n, 0, "\014dirty-bitmap", 13);
    assert_true(at != SIZE_MAX && at >= 5);
    assert_int_equal(q[at - 5], 0x01); /* START */
    uint8_t footer[5] = {0x7e};
    memcpy(footer + 1, q + at - 4, 4);
    size_t starts[8], lens[8], nparts = 0, pos = at + 13 + 8;
    for (;;) {
        size_t end = find_bytes(q, n, pos, footer, 5);
        assert_true(end != SIZE_MAX && nparts < 8);
        starts[nparts] = pos;
        lens[nparts++] = end - pos;
        /* the next PART or END of this section */
        size_t next = SIZE_MAX;
        for (size_t i = end + 5; i + 5 <= n; i++)
            if ((q[i] == 0x02 || q[i] == 0x03) && memcmp(q + i + 1, footer + 1, 4) == 0 &&
                q[i - 5] == 0x7e) {
                next = i;
                break;
            }
        if (next == SIZE_MAX)
            break;
        pos = next + 5;
        if (q[next] == 0x03) {
            end = find_bytes(q, n, pos, footer, 5);
            assert_true(end != SIZE_MAX && nparts < 8);
            starts[nparts] = pos;
            lens[nparts++] = end - pos;
            break;
        }
    }
    assert_true(nparts >= 3); /* START, at least one PART, END */
    result res;
    import(q, n, &res);
    assert_status(res.rc, 0);
    guest g;
    rebuild(&res.out, &g);
    device_rec *d = find_device(&g, "dirty-bitmap", 0);
    assert_non_null(d);
    json_t *st = state_json(d);
    json_t *parts = json_object_get(st, "parts");
    assert_int_equal(json_array_size(parts), nparts);
    th_buf joined = {0};
    for (size_t i = 0; i < nparts; i++) {
        assert_true(json_number_value(json_array_get(parts, i)) == (double)lens[i]);
        th_buf_append(&joined, q + starts[i], lens[i]);
    }
    char *hex = hex_of(joined.data, joined.len);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), hex);
    free(hex);
    /* Sections sent whole have no "parts". */
    json_t *t = state_json(find_device(&g, "timer", 0));
    assert_null(json_object_get(t, "parts"));
    json_decref(t);
    json_decref(st);
    th_buf_free(&joined);
    guest_free(&g);
    th_buf_free(&res.out);
    free(q);
}

/* q35-config: CONFIGURATION's subsections (capabilities x-ignore-shared,
 * uuid) become the first device, "configuration", with the bytes between
 * the machine type and the ram START as sent; MEM_SIZE carries addresses. */
static void test_config_capture(void **state)
{
    (void)state;
    check_counts("q35-config", true);
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-config", &n);
    assert_int_equal(q[8], 0x07);
    size_t ml = (size_t)q[9] << 24 | (size_t)q[10] << 16 | (size_t)q[11] << 8 | q[12];
    size_t from = 13 + ml;
    size_t ram = find_bytes(q, n, from, "\003ram\0\0\0\0\0\0\0\4", 12);
    assert_true(ram != SIZE_MAX && ram >= from + 5);
    ram -= 5; /* START, section id */
    assert_int_equal(q[ram], 0x01);
    assert_int_equal(q[from], 0x05);
    result res;
    import(q, n, &res);
    assert_status(res.rc, 0);
    guest g;
    rebuild(&res.out, &g);
    assert_string_equal(g.devices[0].path, "configuration");
    assert_string_equal(g.devices[0].schema, "configuration");
    assert_int_equal(g.devices[0].version, 1);
    json_t *st = state_json(&g.devices[0]);
    char *hex = hex_of(q + from, ram - from);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), hex);
    assert_true(strstr(hex, "782d69676e6f72652d736861726564") != NULL); /* x-ignore-shared */
    assert_int_equal(json_object_size(st), 1);
    free(hex);
    json_decref(st);
    guest_free(&g);
    th_buf_free(&res.out);
    free(q);
}

/* An iterable device section "bm" (id 3) part: type, id, @data, footer. */
static void q_iter(th_buf *b, uint8_t type, const void *data, size_t n)
{
    th_buf_u8(b, type);
    be32(b, 3);
    if (type == 0x01) {
        name8(b, "bm");
        be32(b, 0);
        be32(b, 1);
    }
    th_buf_append(b, data, n);
    th_buf_u8(b, 0x7e);
    be32(b, 3);
}

/* Parts interleaved with ram's keep their order and lengths (an empty one
 * too); hostile part sequences are refused. */
static void test_built_parts(void **state)
{
    (void)state;
    th_buf b;
    q_begin(&b);
    q_iter(&b, 0x01, "ab", 2);
    q_part(&b);
    q_page(&b, 0, "pc.ram", 1);
    q_eos(&b);
    q_iter(&b, 0x02, "", 0);
    q_iter(&b, 0x02, "cde", 3);
    q_iter(&b, 0x03, "f", 1);
    th_buf_u8(&b, 0x00);
    result res;
    import(b.data, b.len, &res);
    if (res.rc)
        fail_msg("%s", res.msg);
    guest g;
    rebuild(&res.out, &g);
    assert_int_equal(g.ndevices, 1);
    json_t *st = state_json(&g.devices[0]);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), "616263646566");
    json_t *parts = json_object_get(st, "parts");
    assert_int_equal(json_array_size(parts), 4);
    static const double want[] = {2, 0, 3, 1};
    for (size_t i = 0; i < 4; i++)
        assert_true(json_number_value(json_array_get(parts, i)) == want[i]);
    json_decref(st);
    guest_free(&g);
    th_buf_free(&res.out);
    th_buf_free(&b);

    /* a PART after END */
    q_begin(&b);
    q_iter(&b, 0x01, "ab", 2);
    q_iter(&b, 0x03, "c", 1);
    size_t at = b.len;
    q_iter(&b, 0x02, "d", 1);
    expect_fail(&b, MS_ECORRUPT, at, "PART for section id 3, which has ended");
    /* a PART of a section never opened */
    q_begin(&b);
    at = b.len;
    q_iter(&b, 0x02, "d", 1);
    expect_fail(&b, MS_ECORRUPT, at, "PART for section id 3, which no START opened");
    /* EOF with the section still open */
    q_begin(&b);
    q_iter(&b, 0x01, "ab", 2);
    at = b.len;
    th_buf_u8(&b, 0x00);
    expect_fail(&b, MS_ECORRUPT, at, "section 3 'bm' instance 0: EOF at offset");
    /* QEMU has no section named "configuration" */
    q_begin(&b);
    at = b.len;
    th_buf_u8(&b, 0x04);
    be32(&b, 3);
    name8(&b, "configuration");
    be32(&b, 0);
    be32(&b, 1);
    expect_fail(&b, MS_EFEATURE, at, "named 'configuration'");

    /* Empty parts are not free: each counts against max_device_bytes. */
    q_begin(&b);
    q_iter(&b, 0x01, "", 0);
    for (int i = 0; i < 100; i++)
        q_iter(&b, 0x02, "", 0);
    q_iter(&b, 0x03, "", 0);
    th_buf_u8(&b, 0x00);
    ms_qemu_import_options o;
    ms_qemu_import_options_init(&o);
    o.max_device_bytes = 1000;
    import_opts(b.data, b.len, &o, 0, &res);
    assert_status(res.rc, MS_ELIMIT);
    assert_contains(res.msg, "for each part of an iterable section");
    th_buf_free(&res.out);
    o.max_device_bytes = 102 * 16;
    import_opts(b.data, b.len, &o, 0, &res);
    assert_status(res.rc, 0);
    th_buf_free(&res.out);
    th_buf_free(&b);
}

/* CONFIGURATION's subsections: kept byte for byte; each at most once. */
static void test_built_config(void **state)
{
    (void)state;
    th_buf b = {0};
    be32(&b, 0x5145564d);
    be32(&b, 3);
    th_buf_u8(&b, 0x07);
    be32(&b, 6);
    th_buf_append(&b, "pc-7.2", 6);
    size_t from = b.len;
    th_buf_u8(&b, 0x05);
    name8(&b, "configuration/target-page-bits");
    be32(&b, 1);
    be32(&b, 12);
    th_buf_u8(&b, 0x05);
    name8(&b, "configuration/capabilities");
    be32(&b, 1);
    be32(&b, 2);
    name8(&b, "validate-uuid");
    name8(&b, "zzz");
    th_buf_u8(&b, 0x05);
    name8(&b, "configuration/uuid");
    be32(&b, 1);
    th_buf_append(&b, "0123456789abcdef", 16);
    size_t to = b.len;
    th_buf_u8(&b, 0x00);
    result res;
    import(b.data, b.len, &res);
    if (res.rc)
        fail_msg("%s", res.msg);
    guest g;
    rebuild(&res.out, &g);
    assert_int_equal(g.ndevices, 1);
    assert_string_equal(g.devices[0].path, "configuration");
    json_t *st = state_json(&g.devices[0]);
    char *hex = hex_of(b.data + from, to - from);
    assert_string_equal(json_string_value(json_object_get(st, "raw")), hex);
    free(hex);
    json_decref(st);
    guest_free(&g);
    th_buf_free(&res.out);

    /* The uuid twice. */
    b.len = to;
    size_t at = b.len;
    th_buf_u8(&b, 0x05);
    name8(&b, "configuration/uuid");
    be32(&b, 1);
    th_buf_append(&b, "0123456789abcdef", 16);
    th_buf_u8(&b, 0x00);
    expect_fail(&b, MS_ECORRUPT, at, "'configuration/uuid' is sent a second time");
}

/* ------------------------------------------------------------- multifd */

/* A capture NAME of a multifd migration: NAME.qemu.zst and its channels
 * NAME.chanN.qemu.zst (scripts/capture-qemu.sh). */
typedef struct capture {
    uint8_t *main;
    size_t main_len;
    uint8_t *ch[4];
    size_t ch_len[4];
    size_t nch;
} capture;

static void load_multifd(const char *name, size_t nch, capture *c)
{
    memset(c, 0, sizeof *c);
    c->main = th_qemu_fixture(name, &c->main_len);
    for (size_t i = 0; i < nch; i++) {
        char chan[128];
        snprintf(chan, sizeof chan, "%s.chan%zu", name, i);
        c->ch[i] = th_qemu_fixture(chan, &c->ch_len[i]);
    }
    c->nch = nch;
}

static void capture_free(capture *c)
{
    free(c->main);
    for (size_t i = 0; i < c->nch; i++)
        free(c->ch[i]);
}

/* pread over a memory buffer (a memin), in pieces of at most `chunk`. */
static ssize_t mem_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    memin *m = ctx;
    if (offset >= m->len)
        return 0;
    size_t n = m->len - (size_t)offset;
    if (n > len)
        n = len;
    if (m->chunk && n > m->chunk)
        n = m->chunk;
    memcpy(buf, m->p + offset, n);
    return (ssize_t)n;
}

/* Imports @main with the channels @ch (in that order) and the options @o
 * (NULL: the defaults), reading the main stream by offset when @pread is
 * set. */
static void import_channels_opts(const uint8_t *main, size_t n, const uint8_t *const *ch,
                                 const size_t *ch_len, size_t nch, bool pread, size_t chunk,
                                 const ms_qemu_import_options *o, result *res)
{
    memset(res, 0, sizeof *res);
    ms_qemu_import *imp = ms_qemu_import_new(o);
    assert_non_null(imp);
    memin m = {main, n, 0, chunk}, cm[8];
    assert_true(nch <= 8);
    for (size_t i = 0; i < nch; i++) {
        cm[i] = (memin){ch[i], ch_len[i], 0, chunk};
        char name[32];
        snprintf(name, sizeof name, "c%zu", i);
        assert_status(ms_qemu_import_add_channel(imp, mem_read, &cm[i], name), 0);
    }
    if (pread)
        assert_status(ms_qemu_import_set_pread(imp, mem_pread, &m), 0);
    res->rc = ms_qemu_import_run(imp, pread ? NULL : mem_read, &m, th_sink_write, &res->out);
    assert_int_equal(res->rc, ms_qemu_import_status(imp));
    snprintf(res->msg, sizeof res->msg, "%s", ms_qemu_import_errmsg(imp));
    res->err_offset = ms_qemu_import_error_offset(imp);
    res->stats = *ms_qemu_import_get_stats(imp);
    /* Channels cannot be added once the importer ran. */
    assert_status(ms_qemu_import_add_channel(imp, mem_read, &m, NULL), MS_ESTATE);
    ms_qemu_import_free(imp);
}

static void import_channels(const uint8_t *main, size_t n, const uint8_t *const *ch,
                            const size_t *ch_len, size_t nch, bool pread, size_t chunk,
                            result *res)
{
    import_channels_opts(main, n, ch, ch_len, nch, pread, chunk, NULL, res);
}

static void import_capture(const capture *c, result *res)
{
    import_channels(c->main, c->main_len, (const uint8_t *const *)c->ch, c->ch_len, c->nch,
                    false, 0, res);
}

/* Counts equal QEMU's (normal pages all come from the channels), and every
 * channel's share adds up. */
static void check_multifd_counts(const char *name, size_t nch)
{
    capture c;
    load_multifd(name, nch, &c);
    result res;
    import_capture(&c, &res);
    assert_status(res.rc, 0);
    const ms_qemu_import_stats *s = &res.stats;
    json_t *qm = load_query_migrate(name);
    assert_int_equal(s->zero_pages, qm_get(qm, "ram", "duplicate"));
    assert_int_equal(s->normal_pages, qm_get(qm, "ram", "normal"));
    assert_int_equal(s->ram_bytes, qm_get(qm, "ram", "total"));
    assert_true(s->ram_rounds >= 1 && s->ram_rounds <= qm_get(qm, "ram", "dirty-sync-count"));
    /* QEMU counts each packet's header (and its pages) in multifd-bytes. */
    uint64_t hdr = 320 + 8 * (512 * 1024 / PS);
    assert_int_equal(s->multifd_packets * hdr + s->normal_pages * PS,
                     qm_get(qm, "ram", "multifd-bytes"));
    json_decref(qm);
    assert_int_equal(s->channels, nch);
    uint64_t packets = 0, normal = 0;
    for (size_t i = 0; i < nch; i++) {
        assert_int_equal(s->channel[i].id, i);
        assert_int_equal(s->channel[i].bytes_read, c.ch_len[i]);
        assert_true(s->channel[i].packets >= s->multifd_syncs);
        packets += s->channel[i].packets;
        normal += s->channel[i].normal_pages;
        assert_int_equal(s->channel[i].zero_pages, 0); /* 7.2 keeps them in the main stream */
    }
    assert_int_equal(packets, s->multifd_packets);
    assert_int_equal(normal, s->normal_pages);
    guest g;
    rebuild(&res.out, &g);
    assert_int_equal(total_pages(&g.totals), s->zero_pages + s->normal_pages);
    guest_free(&g);
    th_buf_free(&res.out);
    capture_free(&c);
}

static void test_multifd_counts(void **state)
{
    (void)state;
    check_multifd_counts("q35-multifd", 2);
    check_multifd_counts("pc-multifd-live", 3);
    /* With multifd-compression, QEMU 7.2 still counts the pages' plain
     * size in multifd-bytes. */
    check_multifd_counts("q35-multifd-zlib", 2);
    check_multifd_counts("q35-multifd-zstd", 2);
}

/* The paused guest over multifd (@name) rebuilds the same memory as
 * without. */
static void check_multifd_same_memory(const char *name)
{
    capture c;
    load_multifd(name, 2, &c);
    size_t n;
    uint8_t *plain = th_qemu_fixture("q35-paused", &n);
    result a, b;
    import_capture(&c, &a);
    import(plain, n, &b);
    assert_status(a.rc, 0);
    assert_status(b.rc, 0);
    guest ga, gb;
    rebuild(&a.out, &ga);
    rebuild(&b.out, &gb);
    assert_int_equal(ga.nregions, gb.nregions);
    for (size_t i = 0; i < ga.nregions; i++) {
        assert_string_equal(ga.regions[i].name, gb.regions[i].name);
        assert_int_equal(ga.regions[i].r.size, gb.regions[i].r.size);
        assert_memory_equal(ga.regions[i].mem, gb.regions[i].mem, (size_t)ga.regions[i].r.size);
    }
    uint8_t want[8192];
    make_pattern(want, sizeof want);
    assert_memory_equal(find_region(&ga, "pc.ram")->mem + 0x100000, want, sizeof want);
    assert_int_equal(a.stats.zero_pages, b.stats.zero_pages);
    assert_int_equal(a.stats.normal_pages, b.stats.normal_pages);
    guest_free(&ga);
    guest_free(&gb);
    th_buf_free(&a.out);
    th_buf_free(&b.out);
    free(plain);
    capture_free(&c);
}

static void test_multifd_same_memory(void **state)
{
    (void)state;
    check_multifd_same_memory("q35-multifd");
    /* multifd-compression zlib and zstd. */
    check_multifd_same_memory("q35-multifd-zlib");
    check_multifd_same_memory("q35-multifd-zstd");
}

/* Channels in any order, and read in small pieces: the same output. */
static void test_multifd_order(void **state)
{
    (void)state;
    capture c;
    load_multifd("pc-multifd-live", 3, &c);
    const uint8_t *rev[3] = {c.ch[2], c.ch[0], c.ch[1]};
    size_t rev_len[3] = {c.ch_len[2], c.ch_len[0], c.ch_len[1]};
    result a, b;
    import_capture(&c, &a);
    import_channels(c.main, c.main_len, rev, rev_len, 3, true, 1000, &b);
    assert_status(a.rc, 0);
    assert_status(b.rc, 0);
    assert_int_equal(a.out.len, b.out.len);
    assert_memory_equal(a.out.data, b.out.data, a.out.len);
    assert_int_equal(b.stats.channel[0].id, 2);
    assert_int_equal(b.stats.channel[1].id, 0);
    assert_int_equal(b.stats.channel[0].packets, a.stats.channel[2].packets);
    th_buf_free(&a.out);
    th_buf_free(&b.out);
    capture_free(&c);
}

/* The running guest over multifd: several passes, pages of later passes
 * win (the boot sector's counters read as one pass of its loop). */
static void test_multifd_live(void **state)
{
    (void)state;
    capture c;
    load_multifd("pc-multifd-live", 3, &c);
    result res;
    import_capture(&c, &res);
    assert_status(res.rc, 0);
    assert_true(res.stats.ram_rounds >= 3);
    assert_true(res.stats.multifd_syncs >= 3);
    guest g;
    rebuild(&res.out, &g);
    check_live_memory(&g);
    guest_free(&g);
    th_buf_free(&res.out);
    capture_free(&c);
}

/* Offset of the first packet of a channel capture that carries pages. */
static size_t first_page_packet(const uint8_t *ch, size_t len)
{
    size_t at = 64;
    while (at + 320 <= len) {
        uint32_t normal = (uint32_t)ch[at + 16] << 24 | (uint32_t)ch[at + 17] << 16 |
                          (uint32_t)ch[at + 18] << 8 | ch[at + 19];
        if (normal)
            return at;
        at += 320 + 8 * (512 * 1024 / PS);
    }
    fail_msg("no packet with pages");
    return 0;
}

static void expect_channels_fail(const capture *c, uint8_t **ch, size_t *ch_len, size_t nch,
                                 int status, const char *text)
{
    result res;
    import_channels(c->main, c->main_len, (const uint8_t *const *)ch, ch_len, nch, false, 0,
                    &res);
    if (res.rc != status || !strstr(res.msg, text))
        fail_msg("got %d \"%s\"; expected %d with \"%s\"", res.rc, res.msg, status, text);
    th_buf_free(&res.out);
}

static void test_multifd_errors(void **state)
{
    (void)state;
    capture c;
    load_multifd("q35-multifd", 2, &c);
    uint8_t *ch[3] = {c.ch[0], c.ch[1], c.ch[0]};
    size_t len[3] = {c.ch_len[0], c.ch_len[1], c.ch_len[0]};
    /* A missing channel: by its id, or by the packets QEMU numbered. */
    expect_channels_fail(&c, ch + 1, len + 1, 1, MS_ECORRUPT, "channel id 1, but 1 channels");
    expect_channels_fail(&c, ch, len, 1, MS_ECORRUPT, "a channel is missing");
    /* The same channel twice. */
    uint8_t *dup[2] = {c.ch[0], c.ch[0]};
    expect_channels_fail(&c, dup, len, 2, MS_ECORRUPT, "is also the id of c0");
    /* Too many channels for the ids. */
    expect_channels_fail(&c, ch, len, 3, MS_ECORRUPT, "also the id of");
    /* The main stream given as a channel. */
    uint8_t *mainc[2] = {c.ch[0], c.main};
    size_t mainl[2] = {c.ch_len[0], c.main_len};
    expect_channels_fail(&c, mainc, mainl, 2, MS_ECORRUPT, "not a multifd channel");

    /* Damaged copies of channel 0. */
    uint8_t *bad = malloc(c.ch_len[0]);
    assert_non_null(bad);
    uint8_t *pair[2] = {bad, c.ch[1]};
    size_t pkt = first_page_packet(c.ch[0], c.ch_len[0]);
    struct {
        size_t at, len;
        uint64_t v;
        int status;
        const char *text;
    } cases[] = {
        {0, 4, 0x11223345, MS_ECORRUPT, "init record magic 0x11223345"},
        {4, 4, 2, MS_EVERSION, "init record version 2"},
        {pkt, 4, 0xdeadbeef, MS_ECORRUPT, "packet magic 0xdeadbeef"},
        {pkt + 8, 4, 0x08, MS_EFEATURE, "compressed with qpl"},
        {pkt + 8, 4, 0x06, MS_ECORRUPT, "several compression methods"},
        {pkt + 8, 4, 0x100, MS_ECORRUPT, "flags 0x100 unknown"},
        {pkt + 8, 4, 0x40, MS_EFEATURE, "device state packet"},
        {pkt + 12, 4, 129, MS_ECORRUPT, "pages_alloc 129 exceeds the 128"},
        {pkt + 16, 4, 129, MS_ECORRUPT, "normal and 0 zero pages exceed pages_alloc 128"},
        {pkt + 20, 4, 4096, MS_ECORRUPT, "next_packet_size 4096"},
        {pkt + 32, 4, 128, MS_ECORRUPT, "zero pages exceed pages_alloc"},
        {pkt + 64, 1, 'X', MS_ECORRUPT, "unknown RAM block"},
        {pkt + 320, 8, 0x2000000, MS_ECORRUPT, "lies outside block 'pc.ram'"},
        {pkt + 320, 8, 0x1001, MS_ECORRUPT, "is not page-aligned"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, c.ch[0], c.ch_len[0]);
        for (size_t k = 0; k < cases[i].len; k++)
            bad[cases[i].at + k] = (uint8_t)(cases[i].v >> (8 * (cases[i].len - 1 - k)));
        result res;
        import_channels(c.main, c.main_len, (const uint8_t *const *)pair, len, 2, false, 0,
                        &res);
        if (res.rc != cases[i].status || !strstr(res.msg, cases[i].text))
            fail_msg("case %zu: got %d \"%s\"; expected %d with \"%s\"", i, res.rc, res.msg,
                     cases[i].status, cases[i].text);
        /* The message names the channel and, past the init record, the
         * packet and its offset in the channel. */
        assert_contains(res.msg, "multifd channel");
        if (cases[i].at >= 64) {
            assert_contains(res.msg, "packet");
            assert_int_equal(res.err_offset, pkt);
        }
        th_buf_free(&res.out);
    }
    /* A truncated channel: in a packet, or before a SYNC packet. */
    memcpy(bad, c.ch[0], c.ch_len[0]);
    size_t cuts[] = {pkt + 100, pkt + 1344 + 10, 64};
    for (size_t i = 0; i < 3; i++) {
        size_t l2[2] = {cuts[i], c.ch_len[1]};
        expect_channels_fail(&c, pair, l2, 2, MS_ETRUNCATED, "multifd channel");
    }
    size_t l3[2] = {64, c.ch_len[1]};
    expect_channels_fail(&c, pair, l3, 2, MS_ETRUNCATED, "before its SYNC packet for sync point 1");
    free(bad);
    capture_free(&c);

    /* A MULTIFD_FLUSH item and no channel: the pages are elsewhere. */
    th_buf b;
    q_begin(&b);
    size_t at = b.len + 5;
    q_part(&b);
    be64(&b, 0x200);
    q_eos(&b);
    th_buf_u8(&b, 0x00);
    expect_fail(&b, MS_EFEATURE, at, "MULTIFD_FLUSH");
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The packet with pages after the one at @at in a compressed channel. */
static size_t next_page_packet(const uint8_t *ch, size_t len, size_t at)
{
    for (;;) {
        assert_true(at + 1344 <= len);
        uint32_t normal = rd32(ch + at + 16);
        at += 1344 + (normal ? rd32(ch + at + 20) : 0);
        if (at + 1344 <= len && rd32(ch + at + 16))
            return at;
    }
}

/* Damaged copies of the compressed captures: each error names the channel,
 * the packet and the offset of what failed, and nothing decodes beyond the
 * packet's pages. */
static void test_multifd_compressed_errors(void **state)
{
    (void)state;
    static const char *const names[] = {"q35-multifd-zlib", "q35-multifd-zstd"};
    for (size_t n = 0; n < 2; n++) {
        const char *zname = n ? "zstd" : "zlib";
        const uint32_t zflag = n ? 0x04 : 0x02;
        capture c;
        load_multifd(names[n], 2, &c);
        size_t big = c.ch_len[0] > c.ch_len[1] ? c.ch_len[0] : c.ch_len[1];
        uint8_t *bad = malloc(big);
        assert_non_null(bad);
        size_t p0 = first_page_packet(c.ch[0], c.ch_len[0]);
        size_t p0b = next_page_packet(c.ch[0], c.ch_len[0], p0);
        size_t p1 = first_page_packet(c.ch[1], c.ch_len[1]);
        uint32_t normal = rd32(c.ch[0] + p0 + 16), next = rd32(c.ch[0] + p0 + 20);
        assert_int_equal(rd32(c.ch[0] + p0 + 8) & 0x3e, zflag);
        char t_bytes[96], t_more[128], t_less[128], t_zero[128], t_other[96];
        snprintf(t_bytes, sizeof t_bytes, "%s data at byte 0 of the packet's %u:", zname, next);
        snprintf(t_more, sizeof t_more,
                 "%u bytes of %s data decode to more than the packet's %u normal pages", next,
                 zname, normal - 1);
        snprintf(t_less, sizeof t_less,
                 "%u bytes of %s data decode to %u bytes, but the packet has %u normal pages",
                 next, zname, normal * PS, normal + 1);
        snprintf(t_zero, sizeof t_zero,
                 "next_packet_size 0 for %u pages compressed with %s (1 to 1048576 expected)",
                 normal, zname);
        snprintf(t_other, sizeof t_other, "compressed with %s (flags 0x%x), but channel 0 packet",
                 n ? "zlib" : "zstd", n ? 0x02 : 0x04);
        struct {
            size_t chan, at, len;
            uint32_t v;
            int status;
            size_t err_at;
            const char *text;
        } cases[] = {
            /* Corrupt data: the first bytes (zlib header, zstd frame
             * header), and the start of a later packet's continuation. */
            {0, p0 + 1344, 4, 0xffffffff, MS_ECOMPRESS, p0 + 1344, t_bytes},
            {0, p0b + 1344, 4, 0xffffffff, MS_ECOMPRESS, p0b + 1344, "data at byte 0"},
            /* The data decodes to more or fewer pages than the header says. */
            {0, p0 + 16, 4, normal - 1, MS_ECOMPRESS, p0 + 1344, t_more},
            {0, p0 + 16, 4, normal + 1, MS_ECOMPRESS, p0 + 1344, t_less},
            /* next_packet_size out of bounds, or short of the data. */
            {0, p0 + 20, 4, 0, MS_ECORRUPT, p0, t_zero},
            {0, p0 + 20, 4, 0x100001, MS_ECORRUPT, p0, "next_packet_size 1048577"},
            {0, p0 + 20, 4, next / 2, MS_ECOMPRESS, p0 + 1344, "decode to"},
            /* A method other than the first packet's, or none. */
            {1, p1 + 8, 4, zflag ^ 0x06, MS_ECORRUPT, p1, t_other},
            {1, p1 + 8, 4, 0, MS_ECORRUPT, p1, "uncompressed (flags 0x0), but channel 0"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t k = cases[i].chan;
            uint8_t *ch[2] = {c.ch[0], c.ch[1]};
            ch[k] = bad;
            memcpy(bad, c.ch[k], c.ch_len[k]);
            for (size_t j = 0; j < cases[i].len; j++)
                bad[cases[i].at + j] = (uint8_t)(cases[i].v >> (8 * (cases[i].len - 1 - j)));
            result res;
            import_channels(c.main, c.main_len, (const uint8_t *const *)ch, c.ch_len, 2, false,
                            0, &res);
            if (res.rc != cases[i].status || !strstr(res.msg, cases[i].text) ||
                res.err_offset != cases[i].err_at)
                fail_msg("%s case %zu: got %d at %llu \"%s\"; expected %d at %zu with \"%s\"",
                         zname, i, res.rc, (unsigned long long)res.err_offset, res.msg,
                         cases[i].status, cases[i].err_at, cases[i].text);
            char chan[64];
            snprintf(chan, sizeof chan, "multifd channel %zu (c%zu) packet ", k, k);
            assert_contains(res.msg, chan);
            th_buf_free(&res.out);
        }
        free(bad);
        capture_free(&c);
    }
    /* An uncompressed channel that claims zlib or zstd decodes as such, and
     * fails there. */
    capture c;
    load_multifd("q35-multifd", 2, &c);
    size_t pkt = first_page_packet(c.ch[0], c.ch_len[0]);
    uint8_t *bad = malloc(c.ch_len[0]);
    assert_non_null(bad);
    uint8_t *pair[2] = {bad, c.ch[1]};
    for (uint32_t flag = 0x02; flag <= 0x04; flag += 0x02) {
        memcpy(bad, c.ch[0], c.ch_len[0]);
        bad[pkt + 11] = (uint8_t)flag;
        result res;
        import_channels(c.main, c.main_len, (const uint8_t *const *)pair, c.ch_len, 2, false, 0,
                        &res);
        assert_status(res.rc, MS_ECOMPRESS);
        assert_contains(res.msg, flag == 0x02 ? "zlib data at byte 0" : "zstd data at byte 0");
        assert_int_equal(res.err_offset, pkt + 1344);
        th_buf_free(&res.out);
    }
    free(bad);
    capture_free(&c);
}

/* A multifd migration built from docs/QEMU.md section 2.1: a QEMU 7.2 main
 * stream whose ram section's setup EOS is its one sync point, "pc.ram" of
 * 128 pages, and one channel of @packets packets, each 128 normal pages
 * (every page of the block) compressed with @flag (0x02 zlib, 0x04 zstd),
 * the last one also SYNC. Every page is 0x5a: zstd's data is RLE blocks,
 * 16 bytes a packet for 512 KiB. */
static void mf_build(th_buf *mainb, th_buf *chan, uint32_t flag, uint32_t packets)
{
    q_ram_start(mainb, 128 * PS);
    name8(mainb, "pc.ram");
    be64(mainb, 128 * PS);
    q_eos(mainb);
    th_buf_u8(mainb, 0x00);

    memset(chan, 0, sizeof *chan);
    uint8_t init[64] = {0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1};
    th_buf_append(chan, init, sizeof init);
    static uint8_t pages[128 * PS];
    memset(pages, 0x5a, sizeof pages);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (flag == 0x02)
        assert_int_equal(deflateInit(&zs, 9), Z_OK);
    static uint8_t data[128 * PS];
    for (uint32_t k = 0; k < packets; k++) {
        size_t len = 0;
        if (flag == 0x04) {
            if (k == 0) { /* frame header: no size, no checksum, 128 KiB window */
                static const uint8_t fh[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38};
                memcpy(data, fh, sizeof fh);
                len = sizeof fh;
            }
            for (int b = 0; b < 4; b++) { /* RLE block of 128 KiB, not the last */
                static const uint8_t rle[] = {0x02, 0x00, 0x10, 0x5a};
                memcpy(data + len, rle, sizeof rle);
                len += sizeof rle;
            }
        } else {
            zs.next_in = pages;
            zs.avail_in = sizeof pages;
            zs.next_out = data;
            zs.avail_out = sizeof data;
            assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
            assert_int_equal(zs.avail_in, 0);
            len = sizeof data - zs.avail_out;
        }
        be32(chan, 0x11223344);
        be32(chan, 1);
        be32(chan, flag | (k + 1 == packets ? 0x01 : 0));
        be32(chan, 128);
        be32(chan, 128);
        be32(chan, (uint32_t)len);
        be64(chan, k);
        uint8_t unused[32 + 256] = {0};
        memcpy(unused + 32, "pc.ram", 6);
        th_buf_append(chan, unused, sizeof unused);
        for (uint32_t i = 0; i < 128; i++)
            be64(chan, (uint64_t)i * PS);
        th_buf_append(chan, data, len);
    }
    if (flag == 0x02)
        deflateEnd(&zs);
}

/* The channels' decoding is bounded by their bytes read (max_decode_ratio,
 * max_decode_allowance): a packet's pages are counted before they are
 * decoded, and the one that would go past the bound is refused with the
 * channel, the packet, the offset of its data and the totals. */
static void test_multifd_decode_bound(void **state)
{
    (void)state;
    for (uint32_t flag = 0x02; flag <= 0x04; flag += 0x02) {
        const char *zname = flag == 0x02 ? "zlib" : "zstd";
        th_buf mainb, chan;
        mf_build(&mainb, &chan, flag, 8);
        const uint8_t *ch[1] = {chan.data};
        size_t ch_len[1] = {chan.len};
        /* The defaults: 4 MiB decoded from a few KiB is within 1 GiB. */
        result res;
        import_channels_opts(mainb.data, mainb.len, ch, ch_len, 1, false, 0, NULL, &res);
        assert_status(res.rc, 0);
        assert_int_equal(res.stats.normal_pages, 8 * 128);
        th_buf_free(&res.out);

        /* 1 MiB and 16 times the bytes read: packets 1 and 2 decode
         * (1 MiB), packet 3 would take 1.5 MiB. */
        ms_qemu_import_options o;
        ms_qemu_import_options_init(&o);
        o.max_decode_allowance = 1 << 20;
        o.max_decode_ratio = 16;
        import_channels_opts(mainb.data, mainb.len, ch, ch_len, 1, false, 0, &o, &res);
        assert_status(res.rc, MS_ELIMIT);
        /* Packet 3's data: after the init record, two packets and its own
         * header and offsets. */
        size_t len1 = 0, len2 = 0, at = 64;
        len1 = rd32(chan.data + at + 20);
        at += 1344 + len1;
        len2 = rd32(chan.data + at + 20);
        at += 1344 + len2 + 1344;
        char want[320];
        snprintf(want, sizeof want,
                 "multifd channel 0 (c0) packet 3 at offset %zu: %s data would decode to "
                 "1572864 bytes in all channels, more than the %zu that their %zu bytes read "
                 "may (1048576 bytes and 16 times their bytes: max_decode_ratio)",
                 at, zname, (size_t)(1 << 20) + 16 * at, at);
        if (strcmp(res.msg, want) != 0 || res.err_offset != at)
            fail_msg("got \"%s\" at %llu; expected \"%s\"", res.msg,
                     (unsigned long long)res.err_offset, want);
        assert_int_equal(res.stats.channel[0].normal_pages, 2 * 128);
        th_buf_free(&res.out);

        /* A bound that holds them all lets the stream through. */
        o.max_decode_allowance = 4 << 20;
        import_channels_opts(mainb.data, mainb.len, ch, ch_len, 1, false, 0, &o, &res);
        assert_status(res.rc, 0);
        th_buf_free(&res.out);
        th_buf_free(&mainb);
        th_buf_free(&chan);
    }
}

/* ------------------------------------------------------------ mapped-ram */

/* A mapped-ram stream built from QEMU's layout (docs/devel/migration/
 * mapped-ram.rst, migration/ram.c): "pc.ram" (8 pages) and "rom" (1 page),
 * each entry followed by its MappedRamHeader, the bitmap right after it,
 * the pages at the next 1 MiB boundary; the stream goes on after the page
 * area. pc.ram holds pages 1, 2 and 6 (filled with 0x10 + index), rom none.
 * @hdr_at receives the offset of pc.ram's header. */
#define MR_ALIGN 0x100000u
static void mr_build(th_buf *b, size_t *hdr_at)
{
    memset(b, 0, sizeof *b);
    be32(b, 0x5145564d);
    be32(b, 3);
    th_buf_u8(b, 0x07);
    be32(b, 6);
    th_buf_append(b, "pc-9.0", 6);
    th_buf_u8(b, 0x05);
    name8(b, "configuration/capabilities");
    be32(b, 1);
    be32(b, 2);
    name8(b, "multifd");
    name8(b, "mapped-ram");
    th_buf_u8(b, 0x01);
    be32(b, 2);
    name8(b, "ram");
    be32(b, 0);
    be32(b, 4);
    be64(b, 9 * PS | 0x04);
    static const struct {
        const char *name;
        uint32_t pages;
        uint8_t bits;
    } blocks[] = {{"pc.ram", 8, 0x46}, {"rom", 1, 0x00}};
    for (size_t i = 0; i < 2; i++) {
        name8(b, blocks[i].name);
        be64(b, (uint64_t)blocks[i].pages * PS);
        if (i == 0)
            *hdr_at = b->len;
        uint64_t bm = b->len + 28, pages = (bm + 8 + MR_ALIGN - 1) / MR_ALIGN * MR_ALIGN;
        be32(b, 1);
        be64(b, PS);
        be64(b, bm);
        be64(b, pages);
        uint8_t bitmap[8] = {blocks[i].bits}; /* one little-endian long */
        th_buf_append(b, bitmap, 8);
        uint8_t page[PS];
        memset(page, 0, PS);
        while (b->len < pages)
            th_buf_append(b, page, b->len + PS <= pages ? PS : pages - b->len);
        for (uint32_t pg = 0; pg < blocks[i].pages; pg++) {
            /* unwritten pages are holes in QEMU's file: zero here */
            memset(page, blocks[i].bits >> pg & 1 ? 0x10 + pg : 0, PS);
            th_buf_append(b, page, PS);
        }
    }
    q_eos(b);
    th_buf_u8(b, 0x00);
}

static void mr_import(const th_buf *b, bool pread, result *res)
{
    import_channels(b->data, b->len, NULL, NULL, 0, pread, 4093, res);
}

static void test_mapped_ram(void **state)
{
    (void)state;
    th_buf b;
    size_t hdr;
    mr_build(&b, &hdr);
    result res;
    mr_import(&b, true, &res);
    assert_status(res.rc, 0);
    assert_true(res.stats.mapped_ram);
    assert_int_equal(res.stats.normal_pages, 3);
    assert_int_equal(res.stats.zero_pages, 6);
    assert_int_equal(res.stats.ram_rounds, 1);
    guest g;
    rebuild(&res.out, &g);
    region_img *ram = find_region(&g, "pc.ram");
    for (unsigned pg = 0; pg < 8; pg++) {
        uint8_t want[PS];
        memset(want, 0x46 >> pg & 1 ? 0x10 + pg : 0, PS);
        assert_memory_equal(ram->mem + pg * PS, want, PS);
    }
    assert_int_equal(total_pages(&g.totals), 9);
    guest_free(&g);
    th_buf_free(&res.out);

    /* Without positional reads it cannot be read. */
    mr_import(&b, false, &res);
    assert_status(res.rc, MS_EFEATURE);
    assert_contains(res.msg, "positional reads");
    th_buf_free(&res.out);

    /* Hostile headers: each a clear error at the header's offset. */
    struct {
        size_t at, len;
        uint64_t v;
        int status;
        const char *text;
    } cases[] = {
        {0, 4, 2, MS_EVERSION, "MappedRamHeader version 2"},
        {0, 4, 0, MS_ECORRUPT, "MappedRamHeader version 0"},
        {4, 8, 8192, MS_ECORRUPT, "page size 8192, but the stream's target page size is 4096"},
        {20, 8, MR_ALIGN + 1, MS_ECORRUPT, "is not aligned to the page size"},
        {12, 8, 0, MS_ECORRUPT, "does not lie between the header's end"},
        {12, 8, MR_ALIGN - 4, MS_ECORRUPT, "does not lie between"},
        {20, 8, 0xfffffffffffff000ull, MS_ECORRUPT, "would end past any file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_buf c;
        mr_build(&c, &hdr);
        for (size_t k = 0; k < cases[i].len; k++)
            c.data[hdr + cases[i].at + k] = (uint8_t)(cases[i].v >> (8 * (cases[i].len - 1 - k)));
        mr_import(&c, true, &res);
        if (res.rc != cases[i].status || !strstr(res.msg, cases[i].text) ||
            res.err_offset != hdr || !strstr(res.msg, "mapped-ram block 'pc.ram'"))
            fail_msg("case %zu: got %d at %llu \"%s\"; expected %d at %zu with \"%s\"", i, res.rc,
                     (unsigned long long)res.err_offset, res.msg, cases[i].status, hdr,
                     cases[i].text);
        th_buf_free(&res.out);
        th_buf_free(&c);
    }
    /* A bit past the block's pages. */
    th_buf c;
    mr_build(&c, &hdr);
    c.data[hdr + 28 + 1] = 0x01; /* page 8 of 8 */
    mr_import(&c, true, &res);
    assert_status(res.rc, MS_ECORRUPT);
    assert_contains(res.msg, "marks page 8, past the block's 8 pages");
    th_buf_free(&res.out);
    th_buf_free(&c);
    /* The file ends in the bitmap, or in a page area: the bitmap and the
     * pages lie before the rest of the stream, so the stream's next item is
     * missing too, and is found missing first. */
    size_t cut[] = {hdr + 30, MR_ALIGN + 2 * PS + 100};
    for (size_t i = 0; i < 2; i++) {
        mr_build(&c, &hdr);
        c.len = cut[i];
        mr_import(&c, true, &res);
        assert_status(res.rc, MS_ETRUNCATED);
        assert_contains(res.msg, "the stream ends after");
        th_buf_free(&res.out);
        th_buf_free(&c);
    }
    /* A page item in the main stream of a mapped-ram migration. */
    mr_build(&c, &hdr);
    c.len -= 1; /* drop EOF */
    size_t at = c.len + 5;
    q_part(&c);
    q_page(&c, 0, "pc.ram", 1);
    q_eos(&c);
    th_buf_u8(&c, 0x00);
    mr_import(&c, true, &res);
    assert_status(res.rc, MS_ECORRUPT);
    assert_int_equal(res.err_offset, at);
    assert_contains(res.msg, "a page item (flags 0x8) in a mapped-ram stream");
    th_buf_free(&res.out);
    th_buf_free(&c);
    /* Channels are not mapped-ram's. */
    const uint8_t *one[1] = {b.data};
    size_t one_len[1] = {b.len};
    import_channels(b.data, b.len, one, one_len, 1, true, 0, &res);
    assert_status(res.rc, MS_EINVAL);
    assert_contains(res.msg, "no multifd channel streams");
    th_buf_free(&res.out);
    th_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_q35),
        cmocka_unit_test(test_counts_pc),
        cmocka_unit_test(test_counts_devices),
        cmocka_unit_test(test_counts_no_vmdesc),
        cmocka_unit_test(test_counts_xbzrle),
        cmocka_unit_test(test_counts_compress),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_no_vmdesc),
        cmocka_unit_test(test_recapture),
        cmocka_unit_test(test_compress_same_memory),
        cmocka_unit_test(test_xbzrle_live),
        cmocka_unit_test(test_small_reads),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_flips),
        cmocka_unit_test(test_built_good),
        cmocka_unit_test(test_built_errors),
        cmocka_unit_test(test_built_mismatch),
        cmocka_unit_test(test_built_arrays),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_iterable_capture),
        cmocka_unit_test(test_config_capture),
        cmocka_unit_test(test_built_parts),
        cmocka_unit_test(test_built_config),
        cmocka_unit_test(test_multifd_counts),
        cmocka_unit_test(test_multifd_same_memory),
        cmocka_unit_test(test_multifd_order),
        cmocka_unit_test(test_multifd_live),
        cmocka_unit_test(test_multifd_errors),
        cmocka_unit_test(test_multifd_compressed_errors),
        cmocka_unit_test(test_multifd_decode_bound),
        cmocka_unit_test(test_mapped_ram),
    };
    return th_run_tests(tests);
}
