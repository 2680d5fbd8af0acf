/*
 * The test vectors of docs/FORMAT.md section 12: each block in the document
 * is parsed (offsets checked), the same stream is built with the writer from
 * the inputs the document states, and the two must agree byte for byte. Each
 * vector is then read back. With MS_VECTOR_DUMP=DIR set, the writer's bytes
 * are saved as DIR/NAME.bin instead (how the blocks are produced, with
 * scripts/annotate-vector.py), and nothing is compared.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <migstream/migstream.h>

#ifndef MS_FORMAT_MD
#error "MS_FORMAT_MD must name docs/FORMAT.md"
#endif

typedef struct sink {
    uint8_t *data;
    size_t len, cap;
} sink;

static int sink_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    sink *s = ctx;
    for (int i = 0; i < iovcnt; i++) {
        if (s->len + iov[i].iov_len > s->cap) {
            size_t cap = (s->len + iov[i].iov_len) * 2;
            uint8_t *d = realloc(s->data, cap);
            if (!d)
                return -1;
            s->data = d;
            s->cap = cap;
        }
        memcpy(s->data + s->len, iov[i].iov_base, iov[i].iov_len);
        s->len += iov[i].iov_len;
    }
    return 0;
}

/* ---- the inputs of each vector, as FORMAT.md section 12 states them ---- */

static ms_writer *vector_writer_features(sink *s, const char *machine, uint64_t features)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "example";
    o.writer_version = "1.0";
    o.machine = machine;
    o.features = features;
    ms_writer *w = ms_writer_new(&o, sink_write, s);
    assert_non_null(w);
    return w;
}

/* Vectors 12.1 to 12.4 use no feature: a format 1.0 reader loads them. */
static ms_writer *vector_writer(sink *s, const char *machine)
{
    return vector_writer_features(s, machine, 0);
}

static void build_empty(sink *s)
{
    ms_writer *w = vector_writer(s, NULL);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void build_pages(sink *s)
{
    ms_writer *w = vector_writer(s, "pc-q35-7.2");
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 4 * 4096,
                   .page_size = 4096};
    static uint8_t mem[4 * 4096];
    memset(mem, 0, sizeof mem);
    memset(mem + 4096, 0xab, 4096);
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, 4, mem), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void build_zero_gib(sink *s)
{
    ms_writer *w = vector_writer(s, NULL);
    ms_region r = {.id = 1, .name = "ram", .has_gpa = true, .gpa = 0x100000000ull,
                   .size = 1ull << 30, .page_size = 4096};
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    assert_int_equal(ms_writer_zero_pages(w, 1, 0, (1ull << 30) / 4096), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void build_device(sink *s)
{
    ms_writer *w = vector_writer(s, NULL);
    /* {0: h'525400123456', 1: true} */
    static const uint8_t state[] = {0xa2, 0x00, 0x46, 0x52, 0x54, 0x00, 0x12,
                                    0x34, 0x56, 0x01, 0xf5};
    assert_int_equal(ms_writer_device(w, "pci0/0000:00:02.0/virtio-net", 0, "virtio-net", 1,
                                      state, sizeof state),
                     0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* Vector 12.5: two rounds, every page state, two overlays at one frame. */
static void build_live(sink *s)
{
    ms_writer *w = vector_writer_features(s, NULL, MS_FEATURE_DISCARDED | MS_FEATURE_FILL |
                                                       MS_FEATURE_IN_PLACE |
                                                       MS_FEATURE_OVERLAYS);
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 8 * 4096,
                   .page_size = 4096};
    static uint8_t mem[8 * 4096];
    memset(mem, 0, sizeof mem);
    memcpy(mem, "migstrm!", 8);                 /* page 0: DATA */
    memset(mem + 3 * 4096, 0xcc, 4096);         /* page 3: FILL 0xcc */
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, 4, mem), 0);
    assert_int_equal(ms_writer_discard(w, 0, 4, 2), 0);           /* free page hint */
    assert_int_equal(ms_writer_in_place(w, 0, 6, 2, 0x40000000), 0); /* kept in place */

    /* Round 1: the guest zeroed page 0 and reused page 4. */
    memset(mem, 0, 8);
    for (int i = 0; i < 4096; i += 8)
        memcpy(mem + 4 * 4096 + i, "\xef\xbe\xad\xde\0\0\0\0", 8);
    uint64_t dirty = (1u << 0) | (1u << 4);
    ms_round r1 = {.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = 4096,
                   .has_dirty = true, .dirty = 2, .final = true};
    assert_int_equal(ms_writer_round(w, &r1), 0);
    assert_int_equal(ms_writer_dirty(w, 0, &dirty, 4096, mem), 0);

    ms_overlay tsc = {.gfn = 2, .kind = MS_OVERLAY_REFERENCE_TSC};
    tsc.tsc.has_frequency = true;
    tsc.tsc.frequency = 2500000000u;
    ms_overlay hc = {.gfn = 2, .kind = MS_OVERLAY_HYPERCALL};
    hc.hypercall.vendor = 1;
    assert_int_equal(ms_writer_overlay(w, &tsc), 0);
    assert_int_equal(ms_writer_overlay(w, &hc), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* Vector 12.6: a migration in two parts. Part @k of it. */
static void build_part(sink *s, uint32_t k)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "example";
    o.writer_version = "1.0";
    o.machine = k == 0 ? "pc" : NULL; /* INFO in part 0 */
    ms_part part = {.index = k, .count = 2};
    for (uint8_t i = 0; i < MS_MIGRATION_ID_SIZE; i++)
        part.migration_id[i] = i;
    o.part = &part;
    ms_writer *w = ms_writer_new(&o, sink_write, s);
    assert_non_null(w);
    ms_region r = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 4 * 4096, .page_size = 4096};
    static uint8_t mem[2 * 4096];
    memset(mem, 0, sizeof mem);
    assert_int_equal(ms_writer_add_region(w, &r), 0);
    /* Round 0: part 0 sends pages 0 and 1, part 1 pages 2 and 3. */
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    if (k == 0) {
        memcpy(mem, "part 0", 6); /* page 0: DATA, page 1: ZERO */
        assert_int_equal(ms_writer_pages(w, 0, 0, 2, mem), 0);
    } else {
        memcpy(mem + 4096, "part 1", 6); /* page 2: ZERO, page 3: DATA */
        assert_int_equal(ms_writer_pages(w, 0, 2, 2, mem), 0);
    }
    /* Round 1, final: the guest zeroed page 0, which part 1 sends now;
     * part 0 has nothing to send, and still starts the round. */
    ms_round r1 = {.number = 1,
                   .tracker = MS_TRACKER_BITMAP,
                   .granularity = 4096,
                   .has_dirty = true,
                   .dirty = 1,
                   .final = true};
    assert_int_equal(ms_writer_round(w, &r1), 0);
    if (k == 1)
        assert_int_equal(ms_writer_zero_pages(w, 0, 0, 1), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void build_parts_0(sink *s)
{
    build_part(s, 0);
}

static void build_parts_1(sink *s)
{
    build_part(s, 1);
}

static const struct vector {
    const char *name;
    void (*build)(sink *);
} vectors[] = {
    {"empty", build_empty},
    {"pages", build_pages},
    {"zero-gib", build_zero_gib},
    {"device", build_device},
    {"live", build_live},
    {"parts-0", build_parts_0},
    {"parts-1", build_parts_1},
};

/* ---- parsing FORMAT.md ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Parses the block "```hex vector=NAME" into bytes; NULL if absent. */
static uint8_t *parse_block(const char *doc, const char *name, size_t *out_len)
{
    char open[128];
    snprintf(open, sizeof open, "```hex vector=%s\n", name);
    const char *p = strstr(doc, open);
    if (!p)
        return NULL;
    p += strlen(open);
    const char *end = strstr(p, "```");
    assert_non_null(end);
    size_t cap = 1 << 16, len = 0;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    int line = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        line++;
        char buf[512];
        size_t n = (size_t)(eol - p);
        assert_true(n < sizeof buf);
        memcpy(buf, p, n);
        buf[n] = 0;
        p = eol + 1;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = 0;
        char *c = buf;
        while (isspace((unsigned char)*c))
            c++;
        if (!*c)
            continue;
        char *colon = strchr(c, ':');
        if (!colon)
            fail_msg("vector %s line %d: no offset", name, line);
        unsigned long off = strtoul(c, NULL, 16);
        if (off != len)
            fail_msg("vector %s line %d: offset %lx, but %zx bytes precede it", name, line,
                     off, len);
        for (char *tok = strtok(colon + 1, " \t"); tok; tok = strtok(NULL, " \t")) {
            char *star = strchr(tok, '*');
            unsigned long byte = strtoul(tok, NULL, 16);
            unsigned long rep = star ? strtoul(star + 1, NULL, 10) : 1;
            assert_true(byte <= 0xff && rep >= 1);
            while (len + rep > cap) {
                cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            memset(out + len, (int)byte, rep);
            len += rep;
        }
    }
    *out_len = len;
    return out;
}

static void test_vectors_match_writer(void **state)
{
    (void)state;
    size_t doc_len;
    char *doc = slurp(MS_FORMAT_MD, &doc_len);
    const char *dump = getenv("MS_VECTOR_DUMP");
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        sink s = {0};
        vectors[i].build(&s);
        if (dump) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s.bin", dump, vectors[i].name);
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            fwrite(s.data, 1, s.len, f);
            fclose(f);
            free(s.data);
            continue; /* regenerating the document's blocks: nothing to compare yet */
        }
        size_t want_len = 0;
        uint8_t *want = parse_block(doc, vectors[i].name, &want_len);
        if (!want)
            fail_msg("FORMAT.md has no block for vector %s", vectors[i].name);
        size_t k = 0;
        while (k < want_len && k < s.len && want[k] == s.data[k])
            k++;
        if (k != want_len || k != s.len)
            fail_msg("vector %s: writer and FORMAT.md differ at byte %zu (writer %zu bytes, "
                     "document %zu)", vectors[i].name, k, s.len, want_len);

        /* Every vector is a valid stream. */
        ms_reader *r = ms_reader_new_memory(NULL, want, want_len);
        const ms_record *rec;
        int rc;
        while ((rc = ms_reader_next(r, &rec)) > 0)
            ;
        if (rc != 0)
            fail_msg("vector %s does not read back: %s", vectors[i].name, ms_reader_errmsg(r));
        assert_int_equal(ms_reader_expect_eof(r), 0);
        ms_reader_free(r);
        free(want);
        free(s.data);
    }
    free(doc);
}

/* Vector 12.6 read whole: the two parts merged through ms_open() give the
 * totals and the migration digest the document states. */
typedef struct mem_in {
    const uint8_t *p;
    size_t len, pos;
} mem_in;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    mem_in *m = ctx;
    size_t k = m->len - m->pos < len ? m->len - m->pos : len;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

static void test_parts_merged(void **state)
{
    (void)state;
    size_t doc_len, len[2];
    char *doc = slurp(MS_FORMAT_MD, &doc_len);
    uint8_t *part[2] = {parse_block(doc, "parts-0", &len[0]), parse_block(doc, "parts-1", &len[1])};
    assert_non_null(part[0]);
    assert_non_null(part[1]);
    const char *sec = strstr(doc, "### 12.6");
    assert_non_null(sec);
    const char *at = strstr(sec, "the migration digest (section 8) is\n`0x");
    assert_non_null(at);
    unsigned long long want = strtoull(strchr(at, '`') + 1, NULL, 16);

    /* Given in the other order: the PART records say which is which. */
    mem_in mi[2] = {{part[1], len[1], 0}, {part[0], len[0], 0}};
    ms_input in[2] = {{.read = mem_read, .read_ctx = &mi[0], .name = "parts-1"},
                      {.read = mem_read, .read_ctx = &mi[1], .name = "parts-0"}};
    ms_reader *r = ms_open(NULL, in, 2);
    const ms_record *rec;
    int rc, data_pages = 0;
    uint64_t digest = 0;
    ms_totals t = {0};
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type == MS_REC_END) {
            digest = rec->checksum;
            t = rec->totals;
        }
        if (rec->type == MS_REC_PAGES)
            for (size_t i = 0; i < rec->pages.extent_count; i++)
                data_pages += rec->pages.extents[i].state == MS_PAGE_DATA;
    }
    if (rc)
        fail_msg("vector parts does not read back whole: %s", ms_reader_errmsg(r));
    assert_int_equal(ms_reader_expect_eof(r), 0);
    assert_int_equal(digest, want);
    assert_int_equal(t.records, 12);
    assert_int_equal(t.bytes, 8901);
    assert_int_equal(t.pages[MS_PAGE_DATA], 2);
    assert_int_equal(t.pages[MS_PAGE_ZERO], 3);
    assert_int_equal(t.rounds, 2);
    assert_int_equal(data_pages, 2);
    ms_reader_free(r);
    free(part[0]);
    free(part[1]);
    free(doc);
}

/* Section 6.2's promise: a 1 GiB zero region is one PAGES record of 56 bytes. */
static void test_zero_gib_record_size(void **state)
{
    (void)state;
    sink s = {0};
    build_zero_gib(&s);
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    size_t pages_bytes = 0, pages_records = 0;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type == MS_REC_PAGES) {
            pages_records++;
            pages_bytes += 16 + rec->length;
            assert_int_equal(rec->pages.extent_count, 1);
            assert_int_equal(rec->pages.extents[0].count, 262144);
        }
    }
    assert_int_equal(ms_reader_status(r), 0);
    assert_int_equal(pages_records, 1);
    assert_int_equal(pages_bytes, 56);
    ms_reader_free(r);
    free(s.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_match_writer),
        cmocka_unit_test(test_zero_gib_record_size),
        cmocka_unit_test(test_parts_merged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
