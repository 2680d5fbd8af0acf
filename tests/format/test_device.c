/*
 * DEVICE records (FORMAT.md section 7) and the device-state CBOR profile
 * (section 10): what goes in comes back byte for byte; what is outside the
 * profile is refused by the writer (ms_writer_device) and by the reader; the
 * reader's depth limit (max_cbor_depth) is applied to device state.
 */
#include <stdlib.h>

#include "helpers.h"

#define MIB (1024u * 1024u)

typedef struct dev {
    const char *path;
    uint32_t instance;
    const char *schema;
    uint32_t version;
    th_buf state;
} dev;

/* A writer into @s accepting device state @depth deep (0: the default). */
static ms_writer *depth_writer(th_buf *s, uint32_t depth)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    if (depth)
        o.max_cbor_depth = depth;
    ms_writer *w = ms_writer_new(&o, th_sink_write, s);
    assert_non_null(w);
    assert_status(ms_writer_status(w), 0);
    return w;
}

/* Writes the devices into a stream, reads it back (memory and 3-byte
 * chunks) and compares every field and every state byte. */
static void devices_roundtrip(const dev *d, size_t n)
{
    th_buf s = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &s);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++) {
        int rc = ms_writer_device(w, d[i].path, d[i].instance, d[i].schema, d[i].version,
                                  d[i].state.data, d[i].state.len);
        if (rc)
            fail_msg("device %zu refused: %s", i, ms_writer_errmsg(w));
    }
    ms_totals t;
    assert_status(ms_writer_finish(w, &t), 0);
    assert_int_equal(t.devices, n);
    ms_writer_free(w);
    assert_int_equal(th_check_chain(s.data, s.len), n + 1);

    for (int via = 0; via < 2; via++) {
        ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
        assert_non_null(r);
        const ms_record *rec;
        size_t i = 0;
        int rc;
        while ((rc = ms_reader_next(r, &rec)) > 0) {
            if (rec->type == MS_REC_END) {
                assert_int_equal(rec->totals.devices, n);
                continue;
            }
            assert_int_equal(rec->type, MS_REC_DEVICE);
            assert_int_equal(rec->flags, MS_RECORD_MUST_UNDERSTAND);
            assert_true(i < n);
            const ms_device *g = &rec->device;
            assert_string_equal(g->path, d[i].path);
            assert_int_equal(g->instance, d[i].instance);
            assert_string_equal(g->schema, d[i].schema);
            assert_int_equal(g->version, d[i].version);
            assert_int_equal(g->state_size, d[i].state.len);
            assert_memory_equal(g->state, d[i].state.data, d[i].state.len);
            i++;
        }
        if (rc)
            fail_msg("%s", ms_reader_errmsg(r));
        assert_int_equal(i, n);
        assert_status(ms_reader_expect_eof(r), 0);
        ms_reader_free(r);
    }
    th_buf_free(&s);
}

static void hex(th_buf *b, const char *h)
{
    b->len = 0;
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(h, "%2x", &v), 1);
        th_buf_u8(b, (uint8_t)v);
        h += 2;
    }
}

/* @depth nested arrays (or maps {0: ...}) around 0. */
static void nested(th_buf *b, unsigned depth, bool maps)
{
    b->len = 0;
    for (unsigned i = 0; i < depth; i++) {
        if (maps) {
            th_buf_u8(b, 0xa1);
            th_buf_u8(b, 0x00);
        } else {
            th_buf_u8(b, 0x81);
        }
    }
    th_buf_u8(b, 0x00);
}

static void test_fields_roundtrip(void **state)
{
    (void)state;
    char long_path[1024], long_schema[256];
    memset(long_path, 'p', 1023);
    long_path[1023] = 0;
    memset(long_schema, 's', 255);
    long_schema[255] = 0;
    /* clang-format off */
    dev d[] = {
        {"pci0/0000:00:02.0/virtio-net", 0, "virtio-net", 1, {0}},
        {"cpu", 0, "x86-cpu", 7, {0}},
        {"cpu", 1, "x86-cpu", 7, {0}}, /* same path, another instance */
        {"cpu", UINT32_MAX, "x86-cpu", UINT32_MAX, {0}},
        {long_path, 3, long_schema, 0, {0}},
        {"pci0/\xe7\xbd\x91\xe5\x8d\xa1/\xc3\xbc/../\xf0\x9f\x98\x80", 9,
         "\xc3\xa9t\xc3\xa9", 2, {0}},                         /* UTF-8, "..": opaque */
        {"/", 0, "s", 0, {0}},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        th_cbor_head(&d[i].state, 5, 1);
        th_cbor_uint(&d[i].state, i);
        th_cbor_text(&d[i].state, d[i].path);
    }
    devices_roundtrip(d, sizeof d / sizeof d[0]);
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        th_buf_free(&d[i].state);
}

/* One device per item kind the profile allows (section 10). */
static void test_state_kinds(void **state)
{
    (void)state;
    /* clang-format off */
    static const char *items[] = {
        "00", "17", "18 18", "19 01 00", "1a 00 01 00 00", "1b ff ff ff ff ff ff ff ff",
        "20", "38 63", "39 01 00", "3b ff ff ff ff ff ff ff ff", /* -1 .. -2^64 */
        "40", "43 01 02 03", "44 00 00 00 00",                   /* byte strings */
        "60", "63 61 62 63", "62 c3 a9", "67 e2 82 ac f0 9f 98 80",   /* text */
        "80", "83 01 02 03", "82 01 82 02 82 03 80",             /* arrays, nested */
        "a0", "a1 01 02", "a2 61 61 81 a1 61 62 f6 20 40",       /* maps, any keys */
        "a2 20 41 00 41 01 f9 3e 00",                            /* {-1: h'00', h'01': 1.5} */
        "f9 3c 00", "fa 3f c0 00 00", "fb 40 09 21 fb 54 44 2d 18", /* 1.0, 1.5, pi */
        "f9 7e 00", "f9 7c 00", "f9 fc 00", "f9 80 00",          /* NaN, inf, -inf, -0 */
        "f4", "f5", "f6",                                        /* false, true, null */
    };
    /* clang-format on */
    const size_t n = sizeof items / sizeof items[0];
    dev *d = calloc(n + 1, sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        d[i] = (dev){"dev", (uint32_t)i, "kinds", 1, {0}};
        hex(&d[i].state, items[i]);
    }
    /* and one composite holding all of them, 256 bytes of bytes and text */
    d[n] = (dev){"dev/all", 0, "kinds", 1, {0}};
    th_buf *c = &d[n].state;
    th_cbor_head(c, 5, n + 2);
    for (size_t i = 0; i < n; i++) {
        th_buf item = {0};
        hex(&item, items[i]);
        th_cbor_uint(c, i);
        th_buf_append(c, item.data, item.len);
        th_buf_free(&item);
    }
    th_cbor_text(c, "bytes");
    th_cbor_head(c, 2, 256);
    for (int i = 0; i < 256; i++)
        th_buf_u8(c, (uint8_t)i);
    th_cbor_text(c, "text");
    th_cbor_head(c, 3, 300);
    for (int i = 0; i < 300; i++)
        th_buf_u8(c, (uint8_t)('a' + i % 26));
    devices_roundtrip(d, n + 1);
    for (size_t i = 0; i <= n; i++)
        th_buf_free(&d[i].state);
    free(d);
}

/* 256 containers deep is the spec limit (section 9); a writer and a reader
 * configured for it accept it. */
static void test_depth_limit_accepted(void **state)
{
    (void)state;
    dev d[] = {{"deep/arrays", 0, "deep", 1, {0}}, {"deep/maps", 0, "deep", 1, {0}}};
    nested(&d[0].state, 256, false);
    nested(&d[1].state, 256, true);
    th_buf s = {0};
    ms_writer *w = depth_writer(&s, 256);
    for (int i = 0; i < 2; i++)
        assert_status(ms_writer_device(w, d[i].path, 0, "deep", 1, d[i].state.data, d[i].state.len),
                      0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.max_cbor_depth = 256;
    ms_reader *r = ms_reader_new_memory(&o, s.data, s.len);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    o.max_cbor_depth = 100000; /* clamped to the spec's 256: still reads */
    r = ms_reader_new_memory(&o, s.data, s.len);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&s);
    th_buf_free(&d[0].state);
    th_buf_free(&d[1].state);
}

/* ------------------------------------------------------ writer refusals */

static uint32_t refusal_depth; /* writer's max_cbor_depth; 0: default */

static void expect_device_refusal(const char *path, const char *schema, const void *st, size_t n,
                                  int status, const char *frag)
{
    th_buf s = {0};
    th_alloc count;
    th_alloc_init(&count, SIZE_MAX);
    ms_writer_options o;
    ms_writer_options_init(&o);
    if (refusal_depth)
        o.max_cbor_depth = refusal_depth;
    o.allocator = th_allocator(&count);
    ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
    assert_non_null(w);
    size_t before = count.peak_block;
    int rc = ms_writer_device(w, path, 1, schema, 1, st, n);
    if (rc != status)
        fail_msg("status %d (%s), expected %d; message: %s", rc, ms_strerror(rc), status,
                 ms_writer_errmsg(w));
    assert_contains(ms_writer_errmsg(w), frag);
    /* refusing a state allocates nothing for what it claims */
    assert_int_equal(count.peak_block, before);
    /* sticky: the writer is done */
    static const uint8_t ok[] = {0x00};
    assert_status(ms_writer_device(w, "x", 0, "y", 0, ok, 1), status);
    assert_status(ms_writer_finish(w, NULL), status);
    ms_writer_free(w);
    assert_int_equal(count.live, 0);
    th_buf_free(&s);
}

static void test_writer_refuses_paths(void **state)
{
    (void)state;
    static const uint8_t st[] = {0xf6};
    char path[1025];
    memset(path, 'p', 1024);
    path[1024] = 0;
    expect_device_refusal("", "s", st, 1, MS_EINVAL, "path");
    expect_device_refusal(path, "s", st, 1, MS_EINVAL, "path"); /* 1024 bytes */
    static const char *bad_utf8[] = {
        "\xc3\x28",             /* bad continuation */
        "\xc0\xaf",             /* overlong '/' */
        "\xe0\x80\xaf",         /* overlong, 3 bytes */
        "\xed\xa0\x80",         /* UTF-16 surrogate */
        "\xf4\x90\x80\x80",     /* beyond U+10FFFF */
        "ok\xe2\x82",           /* truncated sequence */
        "\x80",                 /* lone continuation byte */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        expect_device_refusal(bad_utf8[i], "s", st, 1, MS_EINVAL, "UTF-8");
    char schema[257];
    memset(schema, 's', 256);
    schema[256] = 0;
    expect_device_refusal("dev", "", st, 1, MS_EINVAL, "schema");
    expect_device_refusal("dev", schema, st, 1, MS_EINVAL, "schema");
    expect_device_refusal("dev", "\xc3\x28", st, 1, MS_EINVAL, "schema");
    expect_device_refusal(NULL, "s", st, 1, MS_EINVAL, "NULL");
    expect_device_refusal("dev", NULL, st, 1, MS_EINVAL, "NULL");
    expect_device_refusal("dev", "s", NULL, 1, MS_EINVAL, "NULL");
}

static void test_writer_refuses_states(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        const char *frag;
    } bad[] = {
        {"01 02", "after"},                          /* two items */
        {"a0 00", "after"},                          /* map then a byte */
        {"82 01", "count"},                          /* array missing an element */
        {"82 43 01 02 03", "truncated"},             /* the same, count in range */
        {"43 01 02", "truncated"},                   /* byte string cut short */
        {"19 01", "truncated"},                      /* integer cut short */
        {"9f 01 ff", "indefinite"},                  /* indefinite array */
        {"5f 41 00 ff", "indefinite"},               /* indefinite byte string */
        {"7f 61 61 ff", "indefinite"},               /* indefinite text */
        {"bf 01 02 ff", "indefinite"},               /* indefinite map */
        {"81 9f ff", "indefinite"},                  /* nested */
        {"ff", ""},                                  /* a lone break */
        {"c1 1a 5f 00 00 00", "tag"},                /* epoch time */
        {"d8 20 60", "tag"},                         /* URI */
        {"82 01 c2 41 01", "tag"},                   /* bignum, nested */
        {"c6 00", ""},                               /* tag 6 (libcbor 0.8 quirk) */
        {"f7", "undefined"},                         /* simple value undefined */
        {"f0", ""},                                  /* unassigned simple value */
        {"f8 20", ""},                               /* one-byte simple value */
        {"1c", ""},                                  /* reserved additional info */
        {"9a 10 00 00 00", "count"},                 /* 2^28 elements promised */
        {"bb 00 00 00 01 00 00 00 00", "count"},     /* 2^32 pairs promised */
        {"5b 00 00 00 01 00 00 00 00", "truncated"}, /* 4 GiB of bytes promised */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_buf b = {0};
        hex(&b, bad[i].hex);
        expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, bad[i].frag);
        th_buf_free(&b);
    }
    /* no item at all */
    static const uint8_t one[] = {0};
    expect_device_refusal("dev", "s", one, 0, MS_ECBOR, "state");
    /* deeper than the format's 256, with a writer allowing 256 */
    th_buf b = {0};
    refusal_depth = 256;
    nested(&b, 257, false);
    expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, "nesting");
    nested(&b, 257, true);
    expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, "nesting");
    nested(&b, 5000, false);
    expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, "nesting");
    /* deeper than a default writer's 64: it never writes what a default
     * reader refuses (writer.h, max_cbor_depth) */
    refusal_depth = 0;
    nested(&b, 65, false);
    expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, "nesting");
    refusal_depth = 10;
    nested(&b, 11, true);
    expect_device_refusal("dev", "s", b.data, b.len, MS_ECBOR, "nesting");
    refusal_depth = 0;
    th_buf s = {0};
    ms_writer *w = depth_writer(&s, 0);
    nested(&b, 64, false);
    assert_status(ms_writer_device(w, "dev", 0, "s", 1, b.data, b.len), 0);
    ms_writer_free(w);
    w = depth_writer(&s, 10);
    nested(&b, 10, true);
    assert_status(ms_writer_device(w, "dev", 0, "s", 1, b.data, b.len), 0);
    ms_writer_free(w);
    th_buf_free(&s);
    th_buf_free(&b);

    /* a depth option beyond the format's 256: a writer in the failed state */
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.max_cbor_depth = 257;
    w = ms_writer_new(&o, th_sink_write, &s);
    assert_non_null(w);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "max_cbor_depth");
    assert_status(ms_writer_device(w, "dev", 0, "s", 1, one, 1), MS_EINVAL);
    ms_writer_free(w);
    th_buf_free(&s);
}

/* A state that is valid CBOR but makes the record exceed 64 MiB. */
static void test_writer_refuses_oversized(void **state)
{
    (void)state;
    const size_t n = MS_MAX_RECORD_PAYLOAD;
    uint8_t *st = malloc(n + 5);
    assert_non_null(st);
    st[0] = 0x5a; /* byte string, 4-byte length */
    st[1] = (uint8_t)(n >> 24);
    st[2] = (uint8_t)(n >> 16);
    st[3] = (uint8_t)(n >> 8);
    st[4] = (uint8_t)n;
    memset(st + 5, 0x33, n);
    th_buf s = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &s);
    assert_status(ms_writer_device(w, "big", 0, "blob", 1, st, n + 5), MS_ELIMIT);
    assert_contains(ms_writer_errmsg(w), "limit");
    ms_writer_free(w);
    th_buf_free(&s);
    free(st);
}

/* ------------------------------------------------------ reader refusals */

/* A writer allowing 256 writes depth @depth; a reader with max_cbor_depth
 * @max (0: the default, 64) reads it. */
static void read_depth(unsigned depth, uint32_t max, int want)
{
    th_buf st = {0}, s = {0};
    nested(&st, depth, false);
    ms_writer *w = depth_writer(&s, 256);
    assert_status(ms_writer_device(w, "deep", 0, "deep", 1, st.data, st.len), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    ms_reader_options o;
    ms_reader_options_init(&o);
    if (max)
        o.max_cbor_depth = max;
    ms_reader *r = ms_reader_new_memory(&o, s.data, s.len);
    assert_status(th_read_all(r, NULL), want);
    if (want) {
        assert_int_equal(ms_reader_error_record(r), 0);
        assert_contains(ms_reader_errmsg(r), "nesting");
        /* the offset is the head of the first container beyond the limit */
        const uint8_t *at = NULL;
        for (size_t i = 16 + 112; i + st.len <= s.len; i++)
            if (memcmp(s.data + i, st.data, st.len) == 0) {
                at = s.data + i;
                break;
            }
        assert_non_null(at);
        unsigned limit = max ? max : 64;
        assert_int_equal(ms_reader_error_offset(r), (uint64_t)(at - s.data) + limit);
    }
    ms_reader_free(r);
    th_buf_free(&st);
    th_buf_free(&s);
}

static void test_reader_depth_limit(void **state)
{
    (void)state;
    read_depth(100, 0, MS_ECBOR); /* default reader: 64 */
    read_depth(64, 0, 0);
    read_depth(65, 0, MS_ECBOR);
    read_depth(100, 100, 0);
    read_depth(100, 99, MS_ECBOR);
    read_depth(1, 1, 0);
    read_depth(2, 1, MS_ECBOR);
}

/* DEVICE payloads built by hand: the reader applies section 7 itself. */
static void expect_payload_refusal(const th_buf *payload, int status, const char *frag)
{
    th_buf s = {0}, b = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &s);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    th_stream_insert(&ts, 0, MS_REC_DEVICE, MS_RECORD_MUST_UNDERSTAND, payload->data, payload->len);
    th_stream_fix_end(&ts);
    th_stream_build(&ts, &b);
    ms_reader *r = ms_reader_new_memory(NULL, b.data, b.len);
    int rc = th_read_all(r, NULL);
    if (rc != status)
        fail_msg("status %d (%s), expected %d; message: %s", rc, ms_strerror(rc), status,
                 ms_reader_errmsg(r));
    assert_contains(ms_reader_errmsg(r), frag);
    assert_int_equal(ms_reader_error_record(r), 0);
    uint64_t off = ms_reader_error_offset(r);
    assert_true(off >= 112 && off <= 112 + 16 + payload->len);
    ms_reader_free(r);
    th_stream_free(&ts);
    th_buf_free(&s);
    th_buf_free(&b);
}

/* A DEVICE map with the five keys; @skip leaves one out, @path/@inst vary. */
static void device_payload(th_buf *b, int skip, const char *path, uint64_t inst,
                           const char *state_hex)
{
    th_buf st = {0};
    hex(&st, state_hex);
    b->len = 0;
    th_cbor_head(b, 5, skip >= 0 ? 4 : 5);
    if (skip != 0) {
        th_cbor_uint(b, 0);
        th_cbor_head(b, 3, strlen(path));
        th_buf_append(b, path, strlen(path));
    }
    if (skip != 1) {
        th_cbor_uint(b, 1);
        th_cbor_uint(b, inst);
    }
    if (skip != 2) {
        th_cbor_uint(b, 2);
        th_cbor_text(b, "schema");
    }
    if (skip != 3) {
        th_cbor_uint(b, 3);
        th_cbor_uint(b, 1);
    }
    if (skip != 4) {
        th_cbor_uint(b, 4);
        th_buf_append(b, st.data, st.len);
    }
    th_buf_free(&st);
}

static void test_reader_refuses_payloads(void **state)
{
    (void)state;
    th_buf p = {0};
    for (int skip = 0; skip < 5; skip++) {
        device_payload(&p, skip, "dev", 0, "f6");
        expect_payload_refusal(&p, MS_ECORRUPT, "required");
    }
    device_payload(&p, -1, "", 0, "f6");
    expect_payload_refusal(&p, MS_ECORRUPT, "path");
    char path[1025];
    memset(path, 'p', 1024);
    path[1024] = 0;
    device_payload(&p, -1, path, 0, "f6");
    expect_payload_refusal(&p, MS_ECORRUPT, "path");
    device_payload(&p, -1, "d\xc0\xafx", 0, "f6");
    expect_payload_refusal(&p, MS_ECORRUPT, "UTF-8");
    device_payload(&p, -1, "dex", 0, "f6");
    assert_int_equal(p.data[5], 'x');
    p.data[5] = 0; /* "de\0": a NUL inside the path (section 7: no NUL) */
    expect_payload_refusal(&p, MS_ECORRUPT, "NUL");
    device_payload(&p, -1, "dev", 1ull << 32, "f6");
    expect_payload_refusal(&p, MS_ECORRUPT, "32 bits");
    device_payload(&p, -1, "dev", 0, "9f ff");
    expect_payload_refusal(&p, MS_ECBOR, "indefinite");
    device_payload(&p, -1, "dev", 0, "c1 00");
    expect_payload_refusal(&p, MS_ECBOR, "tag");
    device_payload(&p, -1, "dev", 0, "f6");
    th_buf_u8(&p, 0x00); /* trailing byte after the map */
    expect_payload_refusal(&p, MS_ECORRUPT, "trailing");
    device_payload(&p, -1, "dev", 0, "f6");
    p.data[0] = 0xa6; /* a sixth pair: key 0 again, after key 4 */
    th_cbor_uint(&p, 0);
    th_cbor_text(&p, "dev2");
    expect_payload_refusal(&p, MS_ECBOR, "ascending");
    device_payload(&p, -1, "dev", 0, "f6");
    p.data[0] = 0xa6; /* a sixth pair with a text key */
    th_cbor_text(&p, "k");
    th_cbor_uint(&p, 0);
    expect_payload_refusal(&p, MS_ECBOR, "key");
    p.len = 0;
    th_cbor_head(&p, 4, 0); /* not a map */
    expect_payload_refusal(&p, MS_ECBOR, "map");
    th_buf_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_roundtrip),
        cmocka_unit_test(test_state_kinds),
        cmocka_unit_test(test_depth_limit_accepted),
        cmocka_unit_test(test_writer_refuses_paths),
        cmocka_unit_test(test_writer_refuses_states),
        cmocka_unit_test(test_writer_refuses_oversized),
        cmocka_unit_test(test_reader_depth_limit),
        cmocka_unit_test(test_reader_refuses_payloads),
    };
    return th_run_tests(tests);
}
