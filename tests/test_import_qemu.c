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
#include <zstd.h>

#include "helpers.h"

#ifndef MS_QEMU_DATA
#error "MS_QEMU_DATA must name tests/data/qemu"
#endif

#define PS 4096u

/* ------------------------------------------------------------- fixtures */

static uint8_t *load_fixture(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.qemu.zst", MS_QEMU_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *z = malloc((size_t)n);
    assert_non_null(z);
    assert_int_equal(fread(z, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unsigned long long want = ZSTD_getFrameContentSize(z, (size_t)n);
    assert_true(want != ZSTD_CONTENTSIZE_ERROR && want != ZSTD_CONTENTSIZE_UNKNOWN);
    assert_true(want < (64u << 20));
    uint8_t *out = malloc((size_t)want);
    assert_non_null(out);
    size_t got = ZSTD_decompress(out, (size_t)want, z, (size_t)n);
    assert_false(ZSTD_isError(got));
    assert_int_equal(got, want);
    free(z);
    *size = got;
    return out;
}

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
    uint8_t *p = load_fixture(name, &n);
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
    uint8_t *p = load_fixture(name, &n), want[8192];
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
        uint8_t *p = load_fixture(names[f], &n);
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
    uint8_t *p1 = load_fixture("q35-no-vmdesc", &n1), *p2 = load_fixture("q35-paused", &n2);
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
    uint8_t *p1 = load_fixture("q35-paused", &n1), *p2 = load_fixture("q35-paused-again", &n2);
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
    uint8_t *p1 = load_fixture("q35-compress", &n1), *p2 = load_fixture("q35-paused", &n2);
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
static void test_xbzrle_live(void **state)
{
    (void)state;
    static const uint8_t boot[] = {
        0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x0f, 0x20, 0xc0, 0x66, 0x35, 0x00, 0x00, 0x01, 0x00, 0x0f,
        0x22, 0xc0, 0x43, 0xba, 0x00, 0x10, 0x8e, 0xc2, 0x26, 0x89, 0x1e, 0x00, 0x00, 0x26, 0x89,
        0x1e, 0x00, 0x08, 0x81, 0xc2, 0x00, 0x01, 0x81, 0xfa, 0x00, 0x50, 0x72, 0xea, 0xeb, 0xd8};
    size_t n;
    uint8_t *p = load_fixture("pc-xbzrle-live", &n);
    result res;
    import(p, n, &res);
    assert_status(res.rc, 0);
    assert_true(res.stats.xbzrle_pages > 0);
    assert_true(res.stats.ram_rounds >= 2);
    guest g;
    rebuild(&res.out, &g);
    assert_true(total_pages(&g.totals) > g.regions[0].r.size / PS);
    region_img *ram = find_region(&g, "pc.ram");
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
    guest_free(&g);
    th_buf_free(&res.out);
    free(p);
}

/* Reading in 1-byte and odd-sized pieces gives the same output. */
static void test_small_reads(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = load_fixture("q35-devices", &n);
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
    uint8_t *p = load_fixture("q35-paused", &n);
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
    uint8_t *p = load_fixture("q35-paused", &n);
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

/* Header, CONFIGURATION, and the ram START section with a MEM_SIZE table of
 * "pc.ram" (4 pages) and "rom" (1 page), ending with EOS and its footer. */
static void q_begin(th_buf *b)
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
    be64(b, 5 * PS | 0x04);
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
    be64(&b, 0x200); /* MULTIFD_FLUSH */
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
        cmocka_unit_test(test_limits),
    };
    return th_run_tests(tests);
}
