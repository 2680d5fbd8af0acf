/*
 * Real libvirt save images (tests/data/libvirt, made by libvirt 9.0 and
 * QEMU 7.2) read through ms_open(): each leaves the same final state as
 * the QEMU stream inside it read directly, the only difference being the
 * device libvirt/domain, whose state holds the image's domain XML and
 * cookie byte for byte; every compression format, concatenated streams,
 * positional and pipe-like reads, the refusal of lzop, the limits, and
 * every allocation failing in turn.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"
#include "libvirt_fixture.h"

/* The images ms_open() reads, and the one it refuses. */
static const char *const readable[] = {"q35-raw",      "q35-gzip", "q35-bzip2",
                                       "q35-xz",       "q35-zstd", "q35-running-managed",
                                       "q35-redefined"};

/* ------------------------------------------------------------- helpers */

/* Reads @r to its end: 0 or the status; the records in *@records. */
static int drain(ms_reader *r, size_t *records)
{
    int rc = ms_reader_status(r);
    const ms_record *rec;
    size_t k = 0;
    if (rc)
        return rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        k++;
    if (records)
        *records = k;
    return rc;
}

static ms_reader *open_path(const ms_open_options *o, const char *path)
{
    const char *paths[] = {path};
    return ms_open_files(o, paths, 1);
}

/* A sequential read callback over a buffer, with short reads (a pipe). */
typedef struct memin {
    const uint8_t *p;
    size_t n, pos;
} memin;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t k = m->n - m->pos < len ? m->n - m->pos : len;
    if (k > 777)
        k = 777;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* Positional reads over a buffer, counting them. */
typedef struct memat {
    const uint8_t *p;
    size_t n;
    size_t calls;
} memat;

static ssize_t mem_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
    memat *m = ctx;
    m->calls++;
    if (off >= m->n)
        return 0;
    size_t k = m->n - off < len ? m->n - (size_t)off : len;
    memcpy(buf, m->p + off, k);
    return (ssize_t)k;
}

/* A minimal CBOR reader for the DEVICE state the module writes: a map of
 * text keys to text or bool. */
static uint64_t cbor_head(const uint8_t **p, const uint8_t *end, unsigned *major)
{
    assert_true(*p < end);
    uint8_t b = *(*p)++;
    *major = b >> 5;
    uint64_t v = b & 31;
    if (v < 24)
        return v;
    unsigned n = v == 24 ? 1 : v == 25 ? 2 : v == 26 ? 4 : 8;
    assert_true(v <= 27 && (size_t)(end - *p) >= n);
    v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | *(*p)++;
    return v;
}

typedef struct lv_state {
    char *xml, *cookie, *format;
    int was_running; /* -1: absent */
    unsigned pairs;
} lv_state;

static char *cbor_text(const uint8_t **p, const uint8_t *end)
{
    unsigned major;
    uint64_t n = cbor_head(p, end, &major);
    assert_int_equal(major, 3);
    assert_true(n <= (uint64_t)(end - *p));
    char *s = malloc((size_t)n + 1);
    memcpy(s, *p, (size_t)n);
    s[n] = 0;
    *p += n;
    return s;
}

static void decode_state(const uint8_t *p, size_t n, lv_state *st)
{
    const uint8_t *end = p + n;
    unsigned major;
    memset(st, 0, sizeof *st);
    st->was_running = -1;
    st->pairs = (unsigned)cbor_head(&p, end, &major);
    assert_int_equal(major, 5);
    for (unsigned i = 0; i < st->pairs; i++) {
        char *key = cbor_text(&p, end);
        if (strcmp(key, "was_running") == 0) {
            assert_true(p < end && (*p == 0xf4 || *p == 0xf5));
            st->was_running = *p++ == 0xf5;
        } else if (strcmp(key, "xml") == 0) {
            st->xml = cbor_text(&p, end);
        } else if (strcmp(key, "cookie") == 0) {
            st->cookie = cbor_text(&p, end);
        } else if (strcmp(key, "format") == 0) {
            st->format = cbor_text(&p, end);
        } else {
            fail_msg("unexpected key %s", key);
        }
        free(key);
    }
    assert_ptr_equal(p, end);
}

static void free_state(lv_state *st)
{
    free(st->xml);
    free(st->cookie);
    free(st->format);
}

static int count_diff(void *ctx, const ms_diff_item *item)
{
    int *devices = ctx;
    /* The one difference allowed: the device only the image has. */
    if (item->kind == MS_DIFF_DEVICE_ONLY && item->side == MS_DIFF_A &&
        strcmp(item->device->path, "libvirt/domain") == 0) {
        ++*devices;
        return 0;
    }
    if (item->kind == MS_DIFF_META)
        return 0; /* writer name, description */
    print_error("unexpected difference of kind %d\n", (int)item->kind);
    return -1;
}

/* ---------------------------------------------------------------- tests */

/* Each image through ms_open() and its QEMU stream, decompressed apart from
 * the module and read directly: the same final state. */
static void same_as_inner(const char *name)
{
    size_t n, qn;
    uint8_t *img = th_libvirt_image(name, &n);
    uint8_t *q = th_libvirt_inner(img, n, &qn);
    char *ipath = th_lv_temp(img, n), *qpath = th_lv_temp(q, qn);

    ms_reader *a = open_path(NULL, ipath), *b = open_path(NULL, qpath);
    assert_status(ms_reader_status(a), 0);
    ms_diff *d = ms_diff_new(NULL);
    if (ms_diff_load(d, MS_DIFF_A, a, name) || ms_diff_load(d, MS_DIFF_B, b, qpath))
        print_error("%s: %s\n", name, ms_diff_errmsg(d));
    assert_status(ms_diff_status(d), 0);
    assert_string_equal(ms_reader_format(a), "libvirt");
    assert_string_equal(ms_reader_format(b), "qemu");
    int devices = 0;
    assert_true(ms_diff_compare(d, count_diff, &devices) >= 0);
    assert_int_equal(devices, 1);
    const ms_diff_totals *t = ms_diff_get_totals(d);
    assert_int_equal(t->regions, 0);
    assert_int_equal(t->pages, 0);
    assert_int_equal(t->overlays, 0);
    ms_diff_free(d);
    ms_reader_free(a);
    ms_reader_free(b);
    unlink(ipath);
    unlink(qpath);
    free(ipath);
    free(qpath);
    free(q);
    free(img);
}

static void test_same_as_inner(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++)
        same_as_inner(readable[i]);
}

/* INFO first, then libvirt/domain with the texts exactly as in the image,
 * then QEMU's records; the END counts them. */
static void test_xml_intact(void **state)
{
    (void)state;
    static const char *const formats[] = {"raw", "gzip", "bzip2", "xz", "lzop", "zstd"};
    for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
        size_t n;
        uint8_t *img = th_libvirt_image(readable[i], &n);
        th_lv_header h;
        th_lv_header_get(img, &h);
        const char *xml = (const char *)img + TH_LV_HEADER;
        const char *cookie = xml + h.cookie_offset;
        assert_true(h.cookie_offset > 0); /* libvirt 9.0 writes one */
        char *path = th_lv_temp(img, n);
        ms_reader *r = open_path(NULL, path);
        const ms_record *rec;
        assert_int_equal(ms_reader_next(r, &rec), 1);
        assert_int_equal(rec->type, MS_REC_INFO);
        assert_int_equal(rec->index, 0);
        assert_string_equal(rec->info.machine, "pc-q35-7.2");
        assert_contains(rec->info.description, "domain 'ms-libvirt'");
        assert_contains(rec->info.description, "5a1e0c4d-2b7f-4f6e-9c3a-0d1e2f3a4b5c");
        assert_contains(rec->info.description, h.was_running ? "running" : "paused");
        assert_int_equal(ms_reader_next(r, &rec), 1);
        assert_int_equal(rec->type, MS_REC_DEVICE);
        assert_string_equal(rec->device.path, "libvirt/domain");
        assert_int_equal(rec->device.instance, 0);
        assert_string_equal(rec->device.schema, "libvirt-domain");
        assert_int_equal(rec->device.version, 1);
        lv_state st;
        decode_state(rec->device.state, rec->device.state_size, &st);
        assert_int_equal(st.pairs, 4);
        assert_string_equal(st.xml, xml);
        assert_true(strncmp(st.xml, "<domain type='qemu'", 19) == 0);
        assert_string_equal(st.cookie, cookie);
        assert_int_equal(st.was_running, h.was_running);
        assert_string_equal(st.format, formats[h.format]);
        if (strcmp(readable[i], "q35-redefined") == 0) /* rewritten by libvirt */
            assert_contains(st.xml, "<description>Sauvegardé à chaud &amp; relu ✓</description>");
        free_state(&st);
        size_t k = 2, devices = 1;
        int rc;
        while ((rc = ms_reader_next(r, &rec)) > 0) {
            assert_int_equal(rec->index, k);
            assert_int_not_equal(rec->type, MS_REC_INFO);
            if (rec->type == MS_REC_DEVICE)
                devices++;
            if (rec->type == MS_REC_END) {
                assert_int_equal(rec->totals.records, k);
                assert_int_equal(rec->totals.devices, devices);
                assert_int_equal(rec->totals.bytes, n); /* the whole image read */
            }
            k++;
        }
        assert_status(rc, 0);
        ms_reader_free(r);
        unlink(path);
        free(path);
        free(img);
    }
}

/* The loader's pattern is at 0x100000 of pc.ram in the paused guests. */
static void test_pattern(void **state)
{
    (void)state;
    static const char *const paused[] = {"q35-raw", "q35-xz", "q35-zstd"};
    for (size_t i = 0; i < sizeof paused / sizeof paused[0]; i++) {
        size_t n;
        uint8_t *img = th_libvirt_image(paused[i], &n);
        memin m = {img, n, 0};
        ms_input in = {.read = mem_read, .read_ctx = &m, .name = paused[i]};
        ms_reader *r = ms_open(NULL, &in, 1);
        const ms_record *rec;
        int rc, found = 0;
        while ((rc = ms_reader_next(r, &rec)) > 0) {
            if (rec->type != MS_REC_PAGES || strcmp(rec->pages.region->name, "pc.ram") != 0)
                continue;
            const uint8_t *data = rec->pages.data;
            for (size_t e = 0; e < rec->pages.extent_count; e++) {
                const ms_extent *x = &rec->pages.extents[e];
                if (x->state != MS_PAGE_DATA)
                    continue;
                for (uint32_t k = 0; k < x->count; k++, data += 4096) {
                    uint64_t page = x->first + k;
                    if (page < 0x100 || page > 0x101)
                        continue;
                    for (size_t b = 0; b < 4096; b++) {
                        size_t at = (size_t)(page - 0x100) * 4096 + b;
                        assert_int_equal(data[b], (uint8_t)(7 * at + 3));
                    }
                    found++;
                }
            }
        }
        assert_status(rc, 0);
        assert_int_equal(found, 2);
        ms_reader_free(r);
        free(img);
    }
}

/* A raw image read by position only (the QEMU stream's offsets shifted
 * past the header) or as a pipe; a compressed one by position too. */
static void test_positional(void **state)
{
    (void)state;
    static const char *const names[] = {"q35-raw", "q35-gzip"};
    for (size_t i = 0; i < 2; i++) {
        size_t n, want, got;
        uint8_t *img = th_libvirt_image(names[i], &n);
        char *path = th_lv_temp(img, n);
        ms_reader *r = open_path(NULL, path);
        assert_status(drain(r, &want), 0);
        ms_reader_free(r);

        memat at = {img, n, 0};
        ms_input in = {.pread = mem_pread, .pread_ctx = &at, .name = "by position"};
        r = ms_open(NULL, &in, 1);
        assert_status(drain(r, &got), 0);
        assert_int_equal(got, want);
        assert_true(at.calls > 2);
        ms_reader_free(r);

        memin m = {img, n, 0};
        ms_input pipe = {.read = mem_read, .read_ctx = &m, .name = "pipe"};
        r = ms_open(NULL, &pipe, 1);
        assert_status(drain(r, &got), 0);
        assert_int_equal(got, want);
        assert_int_equal(m.pos, n);
        ms_reader_free(r);
        unlink(path);
        free(path);
        free(img);
    }
}

/* lzop: refused, with the command that gives the QEMU stream. */
static void test_lzop_refused(void **state)
{
    (void)state;
    size_t n;
    uint8_t *img = th_libvirt_image("q35-lzop", &n);
    char *path = th_lv_temp(img, n), want[64];
    ms_reader *r = open_path(NULL, path);
    assert_status(drain(r, NULL), MS_EFEATURE);
    assert_contains(ms_reader_errmsg(r), "format at offset 28: 4 (lzop) is not read");
    snprintf(want, sizeof want, "tail -c +%zu IMAGE | lzop -dc", th_lv_stream_start(img) + 1);
    assert_contains(ms_reader_errmsg(r), want);
    ms_reader_free(r);
    unlink(path);
    free(path);
    free(img);
}

/* Several streams one after another (concatenated `PROG -c` outputs, as
 * `PROG -dc` reads them) read as one. */
static void test_concatenated(void **state)
{
    (void)state;
    size_t n, qn, want;
    uint8_t *img = th_libvirt_image("q35-raw", &n);
    uint8_t *q = th_libvirt_inner(img, n, &qn);
    ms_reader *r = ms_open(NULL, &(ms_input){.read = mem_read, .read_ctx = &(memin){img, n, 0}}, 1);
    assert_status(drain(r, &want), 0);
    ms_reader_free(r);
    static const uint32_t formats[] = {1, 2, 3, 5};
    for (size_t f = 0; f < 4; f++) {
        for (unsigned pieces = 1; pieces <= 3; pieces += 2) {
            size_t zn, in, got;
            uint8_t *z = th_lv_compress(formats[f], q, qn, pieces, &zn);
            uint8_t *image = th_lv_rewrap(img, formats[f], z, zn, &in);
            memin m = {image, in, 0};
            r = ms_open(NULL, &(ms_input){.read = mem_read, .read_ctx = &m}, 1);
            int rc = drain(r, &got);
            if (rc)
                print_error("format %u, %u pieces: %s\n", formats[f], pieces, ms_reader_errmsg(r));
            assert_status(rc, 0);
            assert_int_equal(got, want);
            ms_reader_free(r);
            free(image);
            free(z);
        }
    }
    free(q);
    free(img);
}

/* Limits: data_len above max_xml_size, a stream longer than
 * max_stream_size, a zstd window beyond max_decoder_memory. */
static void test_limits(void **state)
{
    (void)state;
    size_t n;
    uint8_t *img = th_libvirt_image("q35-gzip", &n);
    ms_libvirt_options lo;
    ms_libvirt_options_init(&lo);
    ms_open_options o;
    ms_open_options_init(&o);
    o.libvirt = &lo;

    lo.max_xml_size = 4096;
    ms_reader *r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &(memin){img, n, 0}}, 1);
    assert_status(drain(r, NULL), MS_ELIMIT);
    assert_contains(ms_reader_errmsg(r), "data_len at offset 20: 67048 bytes");
    assert_contains(ms_reader_errmsg(r), "max_xml_size (4096)");
    ms_reader_free(r);

    ms_libvirt_options_init(&lo);
    lo.max_stream_size = 100000;
    r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &(memin){img, n, 0}}, 1);
    assert_status(drain(r, NULL), MS_ELIMIT);
    assert_contains(ms_reader_errmsg(r), "gzip data at offset");
    assert_contains(ms_reader_errmsg(r), "more than max_stream_size (100000 bytes)");
    ms_reader_free(r);

    /* A zstd frame header asking for a 1 GiB window (Window_Descriptor
     * exponent 20): refused before the window is allocated. */
    static const uint8_t frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00};
    size_t in;
    uint8_t *image = th_lv_rewrap(img, 5, frame, sizeof frame, &in);
    ms_libvirt_options_init(&lo);
    lo.max_decoder_memory = 16u << 20;
    r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &(memin){image, in, 0}}, 1);
    assert_status(drain(r, NULL), MS_ELIMIT);
    assert_contains(ms_reader_errmsg(r), "max_decoder_memory (16777216)");
    ms_reader_free(r);
    free(image);

    /* Options of a newer caller, with a field this library lacks set. */
    struct {
        ms_libvirt_options known;
        uint64_t later;
    } newer;
    memset(&newer, 0, sizeof newer);
    ms_libvirt_options_init(&newer.known);
    newer.known.struct_size = sizeof newer;
    newer.later = 1;
    o.libvirt = &newer.known;
    r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &(memin){img, n, 0}}, 1);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "invalid libvirt options");
    ms_reader_free(r);
    free(img);
}

/* Every allocation failing in turn: MS_ENOMEM (or success, where the QEMU
 * module can do without the memory), nothing leaked. */
static void test_alloc_failures(void **state)
{
    (void)state;
    /* Every allocation of one image; the first ones (this module's, the
     * decoder's, the QEMU module's set-up) of the others: the QEMU
     * module's tests cover the rest. */
    static const char *const names[] = {"q35-gzip", "q35-raw", "q35-bzip2", "q35-xz"};
    for (size_t i = 0; i < 4; i++) {
        size_t n;
        uint8_t *img = th_libvirt_image(names[i], &n);
        size_t points = 0;
        for (size_t fail_at = 0; i == 0 || fail_at < 64; fail_at++) {
            th_alloc a;
            th_alloc_init(&a, fail_at);
            ms_reader_options ro;
            ms_reader_options_init(&ro);
            ro.allocator = th_allocator(&a);
            ms_open_options o;
            ms_open_options_init(&o);
            o.reader = &ro;
            memin m = {img, n, 0};
            ms_reader *r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &m}, 1);
            int rc = r ? drain(r, NULL) : MS_ENOMEM;
            ms_reader_free(r);
            assert_int_equal(a.live, 0);
            if (!a.failed) {
                assert_status(rc, 0);
                break;
            }
            /* The QEMU module steps over a few failures (its bitmap of the
             * pages of a pass is a help, not a need). */
            if (rc != 0)
                assert_status(rc, MS_ENOMEM);
            points++;
        }
        print_message("%s: %zu allocation points\n", names[i], points);
        assert_true(points > 5);
        free(img);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_inner), cmocka_unit_test(test_xml_intact),
        cmocka_unit_test(test_pattern),       cmocka_unit_test(test_positional),
        cmocka_unit_test(test_lzop_refused),  cmocka_unit_test(test_concatenated),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_alloc_failures),
    };
    return th_run_tests(tests);
}
