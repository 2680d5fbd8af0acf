/*
 * Hostile and damaged save images, made from the real q35-raw and q35-gzip
 * images of tests/data/libvirt: every header field out of range, the texts
 * broken, the image cut at every byte of its header and data area and at
 * points of its QEMU stream, compressed data corrupted. Each is refused
 * with a message naming libvirt's field (or QEMU's item) and its offset,
 * and memory stays bounded whatever a length claims; what libvirt itself
 * ignores (padding, unused words) is reported as a problem and read.
 */
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"
#include "libvirt_fixture.h"

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    th_buf *m = ctx; /* data: the bytes; cap: the read position */
    size_t k = m->len - m->cap < len ? m->len - m->cap : len;
    memcpy(buf, m->data + m->cap, k);
    m->cap += k;
    return (ssize_t)k;
}

typedef struct outcome {
    int status;
    char msg[512];
    size_t problems;
    char problem[512];
    size_t peak; /* the allocator's peak bytes */
} outcome;

static void on_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *msg)
{
    (void)status;
    (void)offset;
    (void)record;
    outcome *o = ctx;
    if (!o->problems++)
        snprintf(o->problem, sizeof o->problem, "%s", msg);
}

/* Reads @img (@n bytes) through ms_open() with a counting allocator. */
static outcome read_image(const uint8_t *img, size_t n, const ms_libvirt_options *lo)
{
    outcome out;
    memset(&out, 0, sizeof out);
    th_alloc a;
    th_alloc_init(&a, SIZE_MAX);
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.allocator = th_allocator(&a);
    ro.on_problem = on_problem;
    ro.problem_ctx = &out;
    ms_open_options o;
    ms_open_options_init(&o);
    o.reader = &ro;
    o.libvirt = lo;
    o.format = "libvirt"; /* judged by the module, not by the bids */
    th_buf m = {(uint8_t *)(uintptr_t)img, n, 0};
    ms_reader *r = ms_open(&o, &(ms_input){.read = mem_read, .read_ctx = &m}, 1);
    int rc = ms_reader_status(r);
    const ms_record *rec;
    while (!rc && (rc = ms_reader_next(r, &rec)) > 0)
        rc = 0;
    out.status = rc;
    snprintf(out.msg, sizeof out.msg, "%s", rc ? ms_reader_errmsg(r) : "");
    ms_reader_free(r);
    assert_int_equal(a.live, 0);
    out.peak = a.peak_bytes;
    return out;
}

/* A real image, to be edited. */
typedef struct image {
    uint8_t *p;
    size_t n;
} image;

static image load(const char *name)
{
    image im;
    im.p = th_libvirt_image(name, &im.n);
    return im;
}

static void put32(uint8_t *p, uint32_t v)
{
    th_put32(p, v);
}

static void expect(const image *im, int status, const char *a, const char *b)
{
    outcome o = read_image(im->p, im->n, NULL);
    if (o.status != status || (a && !strstr(o.msg, a)) || (b && !strstr(o.msg, b)))
        print_error("got %d \"%s\"; wanted %d with \"%s\" and \"%s\"\n", o.status, o.msg, status,
                    a ? a : "", b ? b : "");
    assert_int_equal(o.status, status);
}

static void test_magic(void **state)
{
    (void)state;
    image im = load("q35-raw");
    memcpy(im.p, "LibvirtQemudPart", 16);
    expect(&im, MS_ETRUNCATED, "libvirt header, magic at offset 0", "did not finish this save");
    memcpy(im.p, "LibvirtQemudSavX", 16);
    expect(&im, MS_EMAGIC, "\"LibvirtQemudSavX\" is not libvirt's", NULL);
    im.p[15] = 0x01;
    expect(&im, MS_EMAGIC, "LibvirtQemudSav\\x01", NULL);

    /* Bids: the partial magic of a short file, and libvirt's prefix with
     * another ending, are still the module's to refuse. */
    const char *paths[1];
    char *p = th_lv_temp("LibvirtQem", 10);
    paths[0] = p;
    ms_reader *r = ms_open_files(NULL, paths, 1);
    assert_status(ms_reader_status(r), 0);
    assert_status(ms_reader_next(r, &(const ms_record *){NULL}), MS_ETRUNCATED);
    assert_contains(ms_reader_errmsg(r),
                    "the image ends after 10 bytes, within the 92-byte header");
    assert_string_equal(ms_reader_format(r), "libvirt");
    ms_reader_free(r);
    unlink(p);
    free(p);
    memcpy(im.p, "LibvirtQemudXXXX", 16);
    p = th_lv_temp(im.p, im.n);
    paths[0] = p;
    r = ms_open_files(NULL, paths, 1);
    assert_status(ms_reader_next(r, &(const ms_record *){NULL}), MS_EMAGIC);
    assert_contains(ms_reader_errmsg(r), "\"LibvirtQemudXXXX\" is not libvirt's");
    ms_reader_free(r);
    unlink(p);
    free(p);
    free(im.p);
}

static void test_version(void **state)
{
    (void)state;
    image im = load("q35-raw");
    put32(im.p + TH_LV_VERSION, 3);
    expect(&im, MS_EVERSION, "version at offset 16: 3", "the only version read");
    put32(im.p + TH_LV_VERSION, 1);
    expect(&im, MS_EVERSION, "version at offset 16: 1 ", NULL);
    put32(im.p + TH_LV_VERSION, 0x01000000); /* 1, written big-endian */
    expect(&im, MS_EVERSION, "version at offset 16: 1 ", NULL);
    put32(im.p + TH_LV_VERSION, 0xffffffff);
    expect(&im, MS_EVERSION, "4294967295", NULL);
    free(im.p);
}

/* A header written by a big-endian host: libvirt reads it swapped, and so
 * does the module, with the same result. */
static void test_swapped(void **state)
{
    (void)state;
    image im = load("q35-raw");
    for (unsigned off = TH_LV_VERSION; off < TH_LV_HEADER; off += 4) {
        uint32_t v = th_get32(im.p + off);
        im.p[off] = (uint8_t)(v >> 24);
        im.p[off + 1] = (uint8_t)(v >> 16);
        im.p[off + 2] = (uint8_t)(v >> 8);
        im.p[off + 3] = (uint8_t)v;
    }
    outcome o = read_image(im.p, im.n, NULL);
    assert_status(o.status, 0);
    assert_int_equal(o.problems, 0);
    free(im.p);
}

static void test_lengths(void **state)
{
    (void)state;
    image im = load("q35-raw");
    const uint32_t data_len = th_get32(im.p + TH_LV_DATA_LEN);
    put32(im.p + TH_LV_DATA_LEN, 0);
    expect(&im, MS_ECORRUPT, "data_len at offset 20: 0", NULL);

    /* Huge: refused by the limit before anything is read or allocated. */
    put32(im.p + TH_LV_DATA_LEN, 0xffffffff);
    expect(&im, MS_ELIMIT, "data_len at offset 20: 4294967295 bytes", "max_xml_size (16777216)");
    outcome o = read_image(im.p, im.n, NULL);
    assert_true(o.peak < (256u << 10));

    /* Within the limit but past the image's end: memory grows with what
     * arrives, not with what data_len claims. */
    put32(im.p + TH_LV_DATA_LEN, 16u << 20);
    put32(im.p + TH_LV_COOKIE, 0);
    o = read_image(im.p, im.n, NULL);
    assert_status(o.status, MS_ETRUNCATED);
    assert_contains(o.msg, "libvirt domain XML at offset 92: the image ends after 487746 bytes");
    assert_true(o.peak < (1u << 20));
    free(im.p);

    im = load("q35-raw");
    put32(im.p + TH_LV_COOKIE, data_len);
    expect(&im, MS_ECORRUPT, "cookieOffset at offset 32: 67048 lies outside data_len (67048)",
           NULL);
    put32(im.p + TH_LV_COOKIE, 0xfffffff0);
    expect(&im, MS_ECORRUPT, "cookieOffset at offset 32", NULL);

    /* A smaller data_len: the QEMU stream is then looked for inside the
     * padding, and QEMU's magic is not there. */
    put32(im.p + TH_LV_COOKIE, 0);
    put32(im.p + TH_LV_DATA_LEN, 2000);
    expect(&im, MS_EMAGIC, "QEMU stream (from offset 2092 of the image",
           "file header at offset 0: magic 0x00000000 is not QEMU's");
    free(im.p);
}

static void test_format(void **state)
{
    (void)state;
    image im = load("q35-raw");
    put32(im.p + TH_LV_FORMAT, 4);
    expect(&im, MS_EFEATURE, "format at offset 28: 4 (lzop) is not read", "lzop -dc");
    put32(im.p + TH_LV_FORMAT, 6);
    expect(&im, MS_EFEATURE, "format at offset 28: 6 (sparse", NULL);
    put32(im.p + TH_LV_FORMAT, 99);
    expect(&im, MS_EFEATURE, "format at offset 28: 99 is not a format libvirt defines", NULL);
    /* A raw stream under a compressed format's name: the decoder says so. */
    put32(im.p + TH_LV_FORMAT, 1);
    expect(&im, MS_ECOMPRESS, "gzip data at offset 6713", "incorrect header check");
    put32(im.p + TH_LV_FORMAT, 2);
    expect(&im, MS_ECOMPRESS, "bzip2 data at offset", "no bzip2 stream starts here");
    put32(im.p + TH_LV_FORMAT, 3);
    expect(&im, MS_ECOMPRESS, "xz data at offset", "no xz stream starts here");
    put32(im.p + TH_LV_FORMAT, 5);
    expect(&im, MS_ECOMPRESS, "zstd data at offset", NULL);
    free(im.p);
}

static void test_texts(void **state)
{
    (void)state;
    image im = load("q35-raw");
    const uint32_t cookie = th_get32(im.p + TH_LV_COOKIE);
    uint8_t *xml = im.p + TH_LV_HEADER;

    xml[0] = 0;
    expect(&im, MS_ECORRUPT, "domain XML at offset 92: empty", NULL);
    xml[0] = '<';
    memcpy(xml + 1, "noma", 4);
    expect(&im, MS_ECORRUPT, "does not start with a <domain> element", NULL);
    memcpy(xml + 1, "doma", 4);
    xml[10] = 0x01;
    expect(&im, MS_ECORRUPT, "control character 0x01 at offset 102", NULL);
    xml[10] = 0xc3; /* a lead byte without its continuation */
    expect(&im, MS_ECORRUPT, "domain XML at offset 92: its", "not UTF-8 text");
    xml[10] = ' ';
    /* No NUL within the XML's area (up to the cookie). */
    memset(xml + cookie - 40, 'x', 40);
    expect(&im, MS_ECORRUPT, "domain XML at offset 92: no NUL ends it within its 1276 bytes", NULL);
    free(im.p);

    im = load("q35-raw");
    uint8_t *ck = im.p + TH_LV_HEADER + th_get32(im.p + TH_LV_COOKIE);
    ck[3] = 0x1b;
    expect(&im, MS_ECORRUPT, "libvirt cookie at offset 1368: control character 0x1b", NULL);
    free(im.p);
}

/* What libvirt ignores: reported, then read. */
static void test_problems(void **state)
{
    (void)state;
    image im = load("q35-raw");
    const size_t start = th_lv_stream_start(im.p);
    im.p[start - 10] = 0x55;
    outcome o = read_image(im.p, im.n, NULL);
    assert_status(o.status, 0);
    assert_int_equal(o.problems, 1);
    assert_contains(o.problem, "byte 0x55 at offset 67130");
    im.p[start - 10] = 0;
    put32(im.p + TH_LV_UNUSED + 8, 7);
    put32(im.p + TH_LV_WAS_RUNNING, 9);
    o = read_image(im.p, im.n, NULL);
    assert_status(o.status, 0);
    assert_int_equal(o.problems, 2);
    assert_contains(o.problem, "was_running at offset 24: 9");
    free(im.p);
}

/* Cut at every byte of the header and data area: refused, truncated; and
 * at points in the QEMU stream, raw and compressed: QEMU's truncation or
 * the decoder's, with the offsets said. */
static void test_truncation(void **state)
{
    (void)state;
    image im = load("q35-raw");
    const size_t start = th_lv_stream_start(im.p);
    for (size_t n = 1; n <= start; n += n < 200 ? 1 : 997) {
        outcome o = read_image(im.p, n, NULL);
        if (n >= 16)
            assert_status(o.status, MS_ETRUNCATED);
        else
            assert_true(o.status == MS_ETRUNCATED || o.status == MS_EMAGIC);
        assert_true(o.peak < (1u << 20));
    }
    outcome o = read_image(im.p, start, NULL);
    assert_status(o.status, MS_ETRUNCATED);
    assert_contains(o.msg, "QEMU stream (from offset 67140 of the image; offsets below count from "
                           "there): file header at offset 0");
    o = read_image(im.p, start + 300000, NULL);
    assert_status(o.status, MS_ETRUNCATED);
    assert_contains(o.msg, "QEMU stream (from offset 67140");
    free(im.p);

    im = load("q35-gzip");
    for (size_t cut = th_lv_stream_start(im.p) + 1; cut < im.n; cut += 9973) {
        o = read_image(im.p, cut, NULL);
        assert_status(o.status, MS_ETRUNCATED);
        assert_contains(o.msg, "the image ends before the gzip stream does");
    }
    free(im.p);
}

/* Compressed data damaged in its middle: the codec's complaint, at its
 * offset in the image. */
static void test_corrupt(void **state)
{
    (void)state;
    static const struct {
        const char *name, *codec;
    } cases[] = {
        {"q35-gzip", "gzip"}, {"q35-bzip2", "bzip2"}, {"q35-xz", "xz"}, {"q35-zstd", "zstd"}};
    for (size_t i = 0; i < 4; i++) {
        image im = load(cases[i].name);
        const size_t start = th_lv_stream_start(im.p);
        for (size_t k = 0; k < 64; k++)
            im.p[start + (im.n - start) / 2 + k] ^= 0xa5;
        outcome o = read_image(im.p, im.n, NULL);
        /* The codecs check their CRCs after handing out a block's bytes
         * (gzip at the member's end, bzip2 at the 900 kB block's): then
         * QEMU's reader refuses the garbage first, naming where. */
        if (o.status == MS_ECOMPRESS) {
            char want[64];
            snprintf(want, sizeof want, "%s data at offset ", cases[i].codec);
            assert_contains(o.msg, want);
        } else {
            assert_true(o.status < 0);
            assert_contains(o.msg, "-compressed from offset 67140 of the image; offsets below "
                                   "count its decompressed bytes): ");
        }
        /* Bytes after the end of the compressed stream. */
        free(im.p);
        im = load(cases[i].name);
        uint8_t *longer = malloc(im.n + 8);
        memcpy(longer, im.p, im.n);
        memcpy(longer + im.n, "garbage!", 8);
        o = read_image(longer, im.n + 8, NULL);
        assert_int_not_equal(o.status, 0);
        free(longer);
        free(im.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic),    cmocka_unit_test(test_version),
        cmocka_unit_test(test_swapped),  cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_format),   cmocka_unit_test(test_texts),
        cmocka_unit_test(test_problems), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corrupt),
    };
    return th_run_tests(tests);
}
