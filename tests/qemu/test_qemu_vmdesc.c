/*
 * The QEMU module's checks of device sections against the JSON trailer
 * (docs/QEMU.md section 3.5), as a reader's on_problem sees them: none on
 * the captures of tests/data/qemu; on copies whose trailer or section bytes
 * were changed, each disagreement once, as an error (QEMU's loader would
 * fail) or a warning (status 0: it would not), with the offset, the
 * section's id, name and instance and the vmsd's name, while the stream
 * is still read to its end. Descriptions no section came for are named at
 * most 64 times.
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "helpers.h"
#include "qemu_fixture.h"

/* ------------------------------------------------------------- problems */

#define MAX_PROBLEMS 128

typedef struct problem {
    int status;
    uint64_t offset;
    int64_t record;
    char msg[512];
} problem;

typedef struct problems {
    problem p[MAX_PROBLEMS];
    size_t n;
} problems;

static void on_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *msg)
{
    problems *ps = ctx;
    assert_true(ps->n < MAX_PROBLEMS);
    problem *p = &ps->p[ps->n++];
    p->status = status;
    p->offset = offset;
    p->record = record;
    snprintf(p->msg, sizeof p->msg, "%s", msg);
}

typedef struct memin {
    const uint8_t *p;
    size_t n, pos;
} memin;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t k = m->n - m->pos < len ? m->n - m->pos : len;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* Reads @n bytes of a QEMU stream to its end through ms_open(), collecting
 * the problems; the reading must succeed. */
static void read_qemu(const uint8_t *q, size_t n, problems *ps)
{
    memset(ps, 0, sizeof *ps);
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.on_problem = on_problem;
    ro.problem_ctx = ps;
    ms_open_options o;
    ms_open_options_init(&o);
    o.reader = &ro;
    memin m = {q, n, 0};
    ms_input in = {.read = mem_read, .read_ctx = &m, .name = "vm.qemu"};
    ms_reader *r = ms_open(&o, &in, 1);
    size_t records;
    int rc = th_read_all(r, &records);
    if (rc)
        fail_msg("%s", ms_reader_errmsg(r));
    assert_string_equal(ms_reader_format(r), "qemu");
    ms_reader_free(r);
}

/* The one problem whose message holds @needle. */
static const problem *find(const problems *ps, const char *needle)
{
    const problem *found = NULL;
    for (size_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].msg, needle)) {
            assert_null(found);
            found = &ps->p[i];
        }
    if (!found)
        fail_msg("no problem says \"%s\" (%zu problems)", needle, ps->n);
    return found;
}

/* ------------------------------------------------------------ captures */

typedef struct capture {
    uint8_t *p;
    size_t n;
    size_t trailer; /* offset of VMDESCRIPTION (0x06) */
} capture;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void load(const char *name, capture *c)
{
    c->p = th_qemu_fixture(name, &c->n);
    /* EOF, VMDESCRIPTION, u32 length, the JSON to the end. */
    c->trailer = 0;
    for (size_t i = c->n - 6; i > 0; i--)
        if (c->p[i] == 0x06 && c->p[i - 1] == 0x00 && be32(c->p + i + 1) == c->n - i - 5) {
            c->trailer = i;
            break;
        }
    assert_true(c->trailer > 0);
}

/* The trailer as JSON (new reference). */
static json_t *trailer(const capture *c)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)c->p + c->trailer + 5, c->n - c->trailer - 5, 0, &e);
    assert_non_null(j);
    return j;
}

/* Replaces the trailer with @j (taken). */
static void set_trailer(capture *c, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(text);
    size_t len = strlen(text);
    c->p = realloc(c->p, c->trailer + 5 + len);
    assert_non_null(c->p);
    c->p[c->trailer + 1] = (uint8_t)(len >> 24);
    c->p[c->trailer + 2] = (uint8_t)(len >> 16);
    c->p[c->trailer + 3] = (uint8_t)(len >> 8);
    c->p[c->trailer + 4] = (uint8_t)len;
    memcpy(c->p + c->trailer + 5, text, len);
    c->n = c->trailer + 5 + len;
    free(text);
}

/* The description of section @name instance @instance. */
static json_t *device(json_t *t, const char *name, int instance)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t, "devices"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "name")), name) == 0 &&
            json_integer_value(json_object_get(d, "instance_id")) == instance)
            return d;
    }
    fail_msg("no description of %s instance %d", name, instance);
    return NULL;
}

/* The field @name of a description. */
static json_t *field(json_t *dev, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(dev, "fields"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return f;
    }
    fail_msg("no field %s", name);
    return NULL;
}

/* ---------------------------------------------------------------- tests */

/* QEMU writes the trailer from what it saves: no capture has a problem,
 * nor a stream without a trailer, nor one our exporter wrote (a trailer
 * that describes no device). */
static void test_captures_clean(void **state)
{
    (void)state;
    static const char *const names[] = {"q35-paused",     "pc-paused",        "q35-devices",
                                        "q35-config",     "q35-dirty-bitmap", "q35-compress",
                                        "pc-xbzrle-live", "q35-no-vmdesc"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        size_t n;
        uint8_t *q = th_qemu_fixture(names[k], &n);
        problems ps;
        read_qemu(q, n, &ps);
        if (ps.n)
            fail_msg("%s: %s", names[k], ps.p[0].msg);
        free(q);
    }

    /* Imported, exported back: its trailer describes nothing. */
    size_t n;
    uint8_t *q = th_qemu_fixture("q35-paused", &n);
    th_buf mig = {0}, back = {0};
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    memin in = {q, n, 0};
    assert_status(ms_qemu_import_run(imp, mem_read, &in, th_sink_write, &mig), 0);
    ms_qemu_import_free(imp);
    ms_qemu_export *x = ms_qemu_export_new(NULL);
    memin in2 = {mig.data, mig.len, 0};
    assert_status(ms_qemu_export_run(x, mem_read, &in2, th_sink_write, &back), 0);
    ms_qemu_export_free(x);
    problems ps;
    read_qemu(back.data, back.len, &ps);
    assert_int_equal(ps.n, 0);
    th_buf_free(&mig);
    th_buf_free(&back);
    free(q);
}

/* The trailer's fields account for another size than the section's:
 * QEMU's loader would not find the footer where its fields end. */
static void test_size(void **state)
{
    (void)state;
    capture c;
    load("q35-paused", &c);
    json_t *t = trailer(&c);
    json_object_set_new(field(device(t, "cpu_common", 0), "halted"), "size", json_integer(5));
    set_trailer(&c, t);
    problems ps;
    read_qemu(c.p, c.n, &ps);
    assert_int_equal(ps.n, 1);
    const problem *p = find(&ps, "'cpu_common'");
    assert_status(p->status, MS_ECORRUPT);
    assert_contains(p->msg, "section 4 'cpu_common' instance 0: section data at offset");
    assert_contains(p->msg, "8 bytes, but the JSON trailer's fields for vmsd 'cpu_common' "
                            "version 1 account for 9");
    /* The section's bytes, after its header: FULL, id, name, instance,
     * version. */
    const uint8_t hdr[] = {0x04, 0, 0, 0, 4, 10, 'c', 'p', 'u', '_', 'c', 'o', 'm', 'm', 'o', 'n'};
    const uint8_t *at = memmem(c.p, c.n, hdr, sizeof hdr);
    assert_non_null(at);
    assert_int_equal(p->offset, (uint64_t)(at - c.p) + sizeof hdr + 8);
    assert_true(p->record > 0);
    free(c.p);
}

/* A subsection's header where the description puts another: an error at
 * that byte. */
static void test_marker(void **state)
{
    (void)state;
    capture c;
    load("q35-paused", &c);
    static const char sub[] = "\x05\x14pckbd/extended_state";
    uint8_t *at = memmem(c.p, c.n, sub, sizeof sub - 1);
    assert_non_null(at);
    *at = 0x06;
    problems ps;
    read_qemu(c.p, c.n, &ps);
    assert_int_equal(ps.n, 1);
    const problem *p = find(&ps, "section 24 'pckbd' instance 0: section data");
    assert_status(p->status, MS_ECORRUPT);
    assert_int_equal(p->offset, (uint64_t)(at - c.p));
    assert_contains(p->msg, "byte 4 of the section, as the JSON trailer's fields for vmsd "
                            "'pckbd' version 3 place it: subsection 'pckbd/extended_state' "
                            "expected (0x05), found byte 0x06");
    free(c.p);
}

/* What QEMU's loader does not read: warnings (status 0). A description of
 * another version; a section without a description, and a description
 * without its section; a description of another instance; a description
 * given twice; one that cannot be walked. */
static void test_warnings(void **state)
{
    (void)state;
    capture c;
    load("q35-paused", &c);
    json_t *t = trailer(&c);
    json_object_set_new(device(t, "timer", 0), "version", json_integer(3));
    json_object_set_new(device(t, "port92", 0), "name", json_string("port93"));
    json_object_set_new(device(t, "i2c_bus", 0), "instance_id", json_integer(1));
    json_array_append(json_object_get(t, "devices"), device(t, "apic", 0));
    json_object_del(field(device(t, "hpet", 0), "config"), "size");
    set_trailer(&c, t);
    problems ps;
    read_qemu(c.p, c.n, &ps);
    assert_int_equal(ps.n, 7);
    for (size_t i = 0; i < ps.n; i++)
        assert_int_equal(ps.p[i].status, 0);
    assert_contains(find(&ps, "'timer'")->msg,
                    "section 0 'timer' instance 0: section header at offset 292246: version 2, "
                    "but the JSON trailer describes vmsd 'timer' version 3");
    assert_contains(find(&ps, "'port92' instance 0:")->msg,
                    "the JSON trailer does not describe it");
    const problem *p = find(&ps, "'port93'");
    assert_contains(p->msg, "VMDESCRIPTION at offset");
    assert_contains(p->msg, "the JSON trailer describes 'port93' instance 0 (vmsd 'port92'), but "
                            "no section of that name and instance was sent");
    assert_int_equal(p->offset, c.trailer);
    assert_contains(find(&ps, "'i2c_bus' instance 0:")->msg,
                    "the JSON trailer describes 'i2c_bus' as instance 1, not 0");
    assert_contains(find(&ps, "'i2c_bus' instance 1 (vmsd")->msg, "no section");
    assert_contains(find(&ps, "'apic' instance 0 a second time")->msg, "VMDESCRIPTION");
    assert_contains(find(&ps, "'hpet'")->msg,
                    "the JSON trailer's description of vmsd 'hpet' cannot be checked: field");
    free(c.p);
}

/* However many descriptions no section came for, 64 are named and the
 * rest counted. */
static void test_unused_bounded(void **state)
{
    (void)state;
    capture c;
    load("q35-paused", &c);
    json_t *t = trailer(&c);
    json_t *devs = json_object_get(t, "devices");
    for (int i = 0; i < 1000; i++) {
        json_t *d = json_deep_copy(device(t, "timer", 0));
        json_object_set_new(d, "instance_id", json_integer(100 + i));
        json_array_append_new(devs, d);
    }
    set_trailer(&c, t);
    problems ps;
    read_qemu(c.p, c.n, &ps);
    assert_int_equal(ps.n, 65);
    assert_contains(ps.p[64].msg, "936 more descriptions of the JSON trailer match no section");
    free(c.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_clean), cmocka_unit_test(test_size),
        cmocka_unit_test(test_marker),         cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_unused_bounded),
    };
    return th_run_tests(tests);
}
