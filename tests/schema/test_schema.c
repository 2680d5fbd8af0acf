/*
 * Device-state schemas (include/migstream/schema.h): loading the schema
 * language (docs/COMPAT.md) and refusing malformed or oversized files with
 * a message naming the member; validating states; learning sets from device
 * states; and ms_schema_compare finding each kind of incompatible change.
 */
#include <stdlib.h>

#include "helpers.h"

#define NET_V2                                                                                     \
    "{\"migstream_schema\": 1, \"format\": {\"minor\": 1},"                                        \
    " \"devices\": [{\"schema\": \"virtio-net\", \"version\": 2, \"min_version\": 1,"              \
    "  \"fields\": [{\"name\": \"mac\", \"type\": \"bytes\"},"                                     \
    "   {\"name\": \"queues\", \"type\": \"uint\", \"since\": 2},"                                 \
    "   {\"key\": 7, \"type\": \"bool\", \"required\": false},"                                    \
    "   {\"name\": \"regs\", \"type\": \"map\", \"fields\": [{\"name\": \"a\", \"type\": "         \
    "\"int\"}]},"                                                                                  \
    "   {\"name\": \"rings\", \"type\": \"array\", \"items\": {\"type\": \"uint\"}}]}]}"

static ms_schema_set *load(const char *json)
{
    ms_schema_set *s = ms_schema_set_new(NULL);
    assert_non_null(s);
    int rc = ms_schema_set_load(s, json, strlen(json), "test.json");
    if (rc)
        print_error("%s\n", ms_schema_set_errmsg(s));
    assert_status(rc, 0);
    return s;
}

/* Loads @json expecting @status and a message containing @msg. */
static void refused(const char *json, int status, const char *msg)
{
    ms_schema_set *s = ms_schema_set_new(NULL);
    assert_non_null(s);
    assert_status(ms_schema_set_load(s, json, strlen(json), "bad.json"), status);
    assert_contains(ms_schema_set_errmsg(s), "bad.json: ");
    assert_contains(ms_schema_set_errmsg(s), msg);
    assert_int_equal(ms_schema_set_count(s), 0);
    ms_schema_set_free(s);
}

static void test_load(void **st)
{
    (void)st;
    ms_schema_set *s = load(NET_V2);
    const char *name;
    uint32_t v, minv;
    uint16_t major, minor;
    uint64_t feat;
    assert_int_equal(ms_schema_set_count(s), 1);
    assert_true(ms_schema_set_get(s, 0, &name, &v, &minv));
    assert_string_equal(name, "virtio-net");
    assert_int_equal(v, 2);
    assert_int_equal(minv, 1);
    assert_false(ms_schema_set_get(s, 1, NULL, NULL, NULL));
    assert_true(ms_schema_set_format(s, &major, &minor, &feat));
    assert_int_equal(major, 1);
    assert_int_equal(minor, 1);
    assert_int_equal(feat, 0);
    /* A schema name defined twice, even across loads, is refused and the
     * set keeps what it had. */
    assert_status(ms_schema_set_load(s, NET_V2, strlen(NET_V2), "again.json"), MS_ECORRUPT);
    assert_contains(ms_schema_set_errmsg(s), "already defined in test.json");
    assert_int_equal(ms_schema_set_count(s), 1);
    ms_schema_set_free(s);
    ms_schema_set_free(NULL);
}

static void test_load_cbor(void **st)
{
    (void)st;
    /* {"migstream_schema": 1, "devices": [{"schema": "x", "version": 3}]} */
    th_buf b = {0};
    th_cbor_head(&b, 5, 2);
    th_cbor_text(&b, "migstream_schema");
    th_cbor_uint(&b, 1);
    th_cbor_text(&b, "devices");
    th_cbor_head(&b, 4, 1);
    th_cbor_head(&b, 5, 2);
    th_cbor_text(&b, "schema");
    th_cbor_text(&b, "x");
    th_cbor_text(&b, "version");
    th_cbor_uint(&b, 3);
    ms_schema_set *s = ms_schema_set_new(NULL);
    assert_status(ms_schema_set_load(s, b.data, b.len, "x.cbor"), 0);
    uint32_t v;
    assert_true(ms_schema_set_get(s, 0, NULL, &v, NULL));
    assert_int_equal(v, 3);
    /* Truncated CBOR is refused. */
    assert_status(ms_schema_set_load(s, b.data, b.len - 1, "y.cbor"), MS_ECORRUPT);
    assert_contains(ms_schema_set_errmsg(s), "y.cbor: not one CBOR item");
    ms_schema_set_free(s);
    th_buf_free(&b);
}

static void test_malformed(void **st)
{
    (void)st;
    refused("", MS_ECORRUPT, "neither a JSON object nor a CBOR map");
    refused("{\"migstream_schema\": 1,\n \"devices\": [", MS_ECORRUPT, "line 2 column");
    refused("[]", MS_ECORRUPT, "neither a JSON object");
    refused("{\"devices\": []}", MS_ECORRUPT, "member \"migstream_schema\" is missing");
    refused("{\"migstream_schema\": 2, \"devices\": []}", MS_ECORRUPT, "schema language 2");
    refused("{\"migstream_schema\": 1, \"devices\": [], \"devices\": []}", MS_ECORRUPT,
            "duplicate");
    refused("{\"migstream_schema\": 1, \"devices\": {}}", MS_ECORRUPT,
            "\"devices\" must be an array, not an object");
    refused("{\"migstream_schema\": 1, \"devices\": [], \"extra\": 1}", MS_ECORRUPT,
            "unknown member \"extra\"");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"version\": 1}]}", MS_ECORRUPT,
            "devices[0]: \"schema\" must be a string");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"\", \"version\": 1}]}",
            MS_ECORRUPT, "1 to 255 bytes");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"a\\u0000b\", \"version\": 1}]}",
            MS_ECORRUPT, "is not allowed"); /* jansson refuses NUL itself */
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": -1}]}",
            MS_ECORRUPT, "schema \"n\": \"version\" is -1: must be 0 to 4294967295");
    refused(
        "{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 4294967296}]}",
        MS_ECORRUPT, "\"version\" is 4294967296");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"min_version\": 2}]}",
            MS_ECORRUPT, "\"min_version\" is 2: must be 0 to 1");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"string\"}]}]}",
            MS_ECORRUPT, "schema \"n\" field \"a\": \"type\" must be one of");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"key\": 1, \"type\": \"uint\"}]}]}",
            MS_ECORRUPT, "not both");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"type\": \"uint\"}]}]}",
            MS_ECORRUPT, "not neither");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"uint\"}, {\"name\": \"a\", \"type\": "
            "\"int\"}]}]}",
            MS_ECORRUPT, "field \"a\": the field is declared twice");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"uint\", \"since\": 2}]}]}",
            MS_ECORRUPT, "\"since\" is 2, later than the schema's version 1");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"uint\", \"requird\": false}]}]}",
            MS_ECORRUPT, "unknown member \"requird\"");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"uint\", \"fields\": []}]}]}",
            MS_ECORRUPT, "\"fields\" applies to maps only");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1, "
            "\"fields\": [{\"name\": \"a\", \"type\": \"map\", \"items\": {}}]}]}",
            MS_ECORRUPT, "\"items\" applies to arrays only");
    refused("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", \"version\": 1}, "
            "{\"schema\": \"n\", \"version\": 2}]}",
            MS_ECORRUPT, "schema \"n\": already defined in bad.json");
    refused("{\"migstream_schema\": 1, \"format\": {\"minor\": 1, \"required_features\": "
            "[\"TURBO\"]}, \"devices\": []}",
            MS_ECORRUPT, "format: required_features[0]");
}

/* Fields nested deeper than max_depth, more fields or schemas than the
 * limits, a file larger than max_file_size: refused with MS_ELIMIT. */
static void test_hostile_sizes(void **st)
{
    (void)st;
    char *deep = malloc(64 * 1024);
    assert_non_null(deep);
    size_t n = (size_t)sprintf(deep, "{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"n\", "
                                     "\"version\": 1, \"fields\": [");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(deep + n, "{\"name\": \"f\", \"type\": \"map\", \"fields\": [");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(deep + n, "]}");
    sprintf(deep + n, "]}]}");
    refused(deep, MS_ELIMIT, "nest deeper than 16 (max_depth)");

    ms_schema_options o;
    ms_schema_options_init(&o);
    o.max_fields = 3;
    o.max_schemas = 1;
    o.max_file_size = 4096;
    ms_schema_set *s = ms_schema_set_new(&o);
    assert_non_null(s);
    assert_status(ms_schema_set_load(s, NET_V2, strlen(NET_V2), "f.json"), MS_ELIMIT);
    assert_contains(ms_schema_set_errmsg(s), "max_fields");
    const char *two = "{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"a\", \"version\": "
                      "1}, {\"schema\": \"b\", \"version\": 1}]}";
    assert_status(ms_schema_set_load(s, two, strlen(two), "f.json"), MS_ELIMIT);
    assert_contains(ms_schema_set_errmsg(s), "max_schemas");
    memset(deep, ' ', 8192);
    deep[8191] = 0;
    assert_status(ms_schema_set_load(s, deep, 8191, "big.json"), MS_ELIMIT);
    assert_contains(ms_schema_set_errmsg(s), "max_file_size");
    assert_int_equal(ms_schema_set_count(s), 0);
    ms_schema_set_free(s);
    /* Out-of-range options are refused at creation. */
    o.max_depth = 1000;
    s = ms_schema_set_new(&o);
    assert_status(ms_schema_set_status(s), MS_EINVAL);
    assert_contains(ms_schema_set_errmsg(s), "max_depth");
    assert_status(ms_schema_set_load(s, "{}", 2, "f.json"), MS_EINVAL);
    ms_schema_set_free(s);
    assert_status(ms_schema_set_status(NULL), MS_ENOMEM);
    free(deep);
}

typedef struct seen {
    int n;
    ms_schema_check checks[16];
    char fields[16][64];
    char last[1024];
} seen;

static int on_problem(void *ctx, const ms_schema_problem *p)
{
    seen *s = ctx;
    if (s->n < 16) {
        s->checks[s->n] = p->check;
        snprintf(s->fields[s->n], sizeof s->fields[0], "%s", p->field);
    }
    snprintf(s->last, sizeof s->last, "%s", p->message);
    s->n++;
    return 0;
}

static int validate(ms_schema_set *s, const char *schema, uint32_t version, const th_buf *state,
                    seen *out)
{
    ms_device d = {.path = "pci0/net",
                   .instance = 3,
                   .schema = schema,
                   .version = version,
                   .state = state->data,
                   .state_size = state->len};
    memset(out, 0, sizeof *out);
    return ms_schema_set_validate(s, &d, on_problem, out);
}

static void test_validate(void **st)
{
    (void)st;
    ms_schema_set *s = load(NET_V2);
    seen r;
    /* A valid version 2 state: {"mac": h'52', "queues": 2, 7: true,
     * "regs": {"a": -1}, "rings": [1, 2]} */
    th_buf b = {0};
    th_cbor_head(&b, 5, 5);
    th_cbor_text(&b, "mac");
    th_cbor_bytes(&b, "R", 1);
    th_cbor_text(&b, "queues");
    th_cbor_uint(&b, 2);
    th_cbor_uint(&b, 7);
    th_cbor_bool(&b, true);
    th_cbor_text(&b, "regs");
    th_cbor_head(&b, 5, 1);
    th_cbor_text(&b, "a");
    th_cbor_int(&b, -1);
    th_cbor_text(&b, "rings");
    th_cbor_head(&b, 4, 2);
    th_cbor_uint(&b, 1);
    th_cbor_uint(&b, 2);
    assert_int_equal(validate(s, "virtio-net", 2, &b, &r), 0);
    /* The same state as version 1: "queues" came in version 2. */
    assert_int_equal(validate(s, "virtio-net", 1, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_TOO_NEW);
    assert_string_equal(r.fields[0], "/\"queues\"");
    assert_contains(r.last, "device \"pci0/net\" instance 3 (schema \"virtio-net\" version 1): "
                            "field /\"queues\": added in version 2");
    /* Versions outside [1, 2] and unknown schemas. */
    assert_int_equal(validate(s, "virtio-net", 3, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_VERSION);
    assert_int_equal(validate(s, "virtio-blk", 1, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_UNKNOWN);
    th_buf_free(&b);

    /* {"queues": "x", "regs": {"a": 1.5}, "rings": [1, null], "zzz": 1,
     * "queues": 3}: wrong types at every level, an unexpected key, a
     * duplicate, "mac" missing. */
    th_cbor_head(&b, 5, 5);
    th_cbor_text(&b, "queues");
    th_cbor_text(&b, "x");
    th_cbor_text(&b, "regs");
    th_cbor_head(&b, 5, 1);
    th_cbor_text(&b, "a");
    th_buf_append(&b, "\xf9\x3e\x00", 3);
    th_cbor_text(&b, "rings");
    th_cbor_head(&b, 4, 2);
    th_cbor_uint(&b, 1);
    th_buf_u8(&b, 0xf6);
    th_cbor_text(&b, "zzz");
    th_cbor_uint(&b, 1);
    th_cbor_text(&b, "queues");
    th_cbor_uint(&b, 3);
    assert_int_equal(validate(s, "virtio-net", 2, &b, &r), 6);
    static const ms_schema_check want[] = {MS_SCHEMA_TYPE,      MS_SCHEMA_TYPE,
                                           MS_SCHEMA_TYPE,      MS_SCHEMA_UNEXPECTED,
                                           MS_SCHEMA_DUPLICATE, MS_SCHEMA_MISSING};
    static const char *const where[] = {"/\"queues\"", "/\"regs\"/\"a\"", "/\"rings\"/1",
                                        "/\"zzz\"",    "/\"queues\"",     "/\"mac\""};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r.checks[i], want[i]);
        assert_string_equal(r.fields[i], where[i]);
    }
    /* Without a callback: the first problem, in the set's message. */
    ms_device d = {
        .path = "p", .schema = "virtio-net", .version = 2, .state = b.data, .state_size = b.len};
    assert_int_equal(ms_schema_set_validate(s, &d, NULL, NULL), 1);
    assert_contains(ms_schema_set_errmsg(s), "field /\"queues\": expected uint, found text");
    th_buf_free(&b);

    /* Not a map; malformed CBOR; trailing bytes. */
    th_cbor_uint(&b, 1);
    assert_int_equal(validate(s, "virtio-net", 2, &b, &r), 1);
    assert_contains(r.last, "expected map, found uint");
    th_buf_u8(&b, 0);
    assert_int_equal(validate(s, "virtio-net", 2, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_MALFORMED);
    b.len = 0;
    th_cbor_head(&b, 5, 1000); /* a map announcing 1000 pairs, holding none */
    assert_int_equal(validate(s, "virtio-net", 2, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_MALFORMED);
    th_buf_free(&b);
    ms_schema_set_free(s);
}

/* Deep input nesting is refused by the depth check before any walk. */
static void test_validate_deep(void **st)
{
    (void)st;
    ms_schema_set *s = load("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"d\", "
                            "\"version\": 1, \"type\": \"any\"}]}");
    th_buf b = {0};
    for (int i = 0; i < 10000; i++)
        th_cbor_head(&b, 4, 1);
    th_cbor_uint(&b, 0);
    seen r;
    assert_int_equal(validate(s, "d", 1, &b, &r), 1);
    assert_int_equal(r.checks[0], MS_SCHEMA_MALFORMED);
    assert_contains(r.last, "nesting");
    th_buf_free(&b);
    ms_schema_set_free(s);
}

typedef struct issues {
    int n;
    ms_compat_check checks[16];
    ms_compat_direction dirs[16];
    bool warnings[16];
    char last[1024];
} issues;

static int on_issue(void *ctx, const ms_compat_issue *is)
{
    issues *x = ctx;
    if (x->n < 16) {
        x->checks[x->n] = is->check;
        x->dirs[x->n] = is->direction;
        x->warnings[x->n] = is->warning;
    }
    snprintf(x->last, sizeof x->last, "%s", is->message);
    x->n++;
    return 0;
}

/* Compares NET_V2 with NET_V2 edited by replacing @from with @to. */
static int compare_edit(const char *from, const char *to, unsigned flags, issues *x)
{
    const char *at = strstr(NET_V2, from);
    assert_non_null(at);
    char edited[2048];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - NET_V2), NET_V2, to, at + strlen(from));
    ms_schema_set *o = load(NET_V2), *n = load(edited);
    memset(x, 0, sizeof *x);
    int rc = ms_schema_compare(o, n, flags, on_issue, x);
    ms_schema_set_free(o);
    ms_schema_set_free(n);
    return rc;
}

static void test_compare(void **st)
{
    (void)st;
    issues x;
    static const struct {
        const char *from, *to;
        int errors;
        ms_compat_check check;
        const char *msg;
    } cases[] = {
        {"\"virtio-net\"", "\"virtio-net2\"", 1, MS_COMPAT_DEVICE_REMOVED, "has no such schema"},
        {"{\"name\": \"mac\", \"type\": \"bytes\"},", "", 1, MS_COMPAT_FIELD_REMOVED,
         "field /\"mac\": OLD writes it (bytes, version 2) but NEW version 2 does not have it"},
        {"\"type\": \"bytes\"", "\"type\": \"text\"", 1, MS_COMPAT_TYPE_CHANGED,
         "OLD writes bytes, NEW reads text"},
        {"\"type\": \"int\"", "\"type\": \"uint\"", 1, MS_COMPAT_TYPE_CHANGED,
         "field /\"regs\"/\"a\": OLD writes int, NEW reads uint"},
        {"\"items\": {\"type\": \"uint\"}", "\"items\": {\"type\": \"bool\"}", 1,
         MS_COMPAT_TYPE_CHANGED, "field /\"rings\"/*"},
        {"\"required\": false", "\"required\": true", 1, MS_COMPAT_REQUIRED_ADDED,
         "field /7: NEW requires it"},
        {"\"version\": 2, \"min_version\": 1", "\"version\": 1, \"min_version\": 1", -1, 0, NULL},
        {"\"min_version\": 1", "\"min_version\": 3", -1, 0, NULL},
        {"\"since\": 2", "\"since\": 1", 0, 0, NULL}, /* earlier since: still reads it */
        {"\"type\": \"int\"", "\"type\": \"any\"", 0, 0, NULL},
        {"\"format\": {\"minor\": 1}",
         "\"format\": {\"minor\": 1, \"required_features\": [\"FILL\"]}", 1,
         MS_COMPAT_FEATURE_ADDED, "FILL (bit 1)"},
        {"\"format\": {\"minor\": 1}", "\"format\": {\"major\": 2, \"minor\": 0}", 1,
         MS_COMPAT_FORMAT_MAJOR, "major version 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].errors < 0)
            continue; /* needs a schema that is valid with the edit: below */
        int rc = compare_edit(cases[i].from, cases[i].to, 0, &x);
        if (rc != cases[i].errors)
            print_error("case %zu: %d errors (%s)\n", i, rc, x.last);
        assert_int_equal(rc, cases[i].errors);
        if (cases[i].errors) {
            assert_int_equal(x.checks[0], cases[i].check);
            assert_contains(x.last, cases[i].msg);
        }
    }
    /* Version went down: NET_V2 as version 1, without the field of 2. */
    char v1[2048];
    const char *q = strstr(NET_V2, "{\"name\": \"queues\"");
    const char *q_end = strstr(q, "},") + 2;
    snprintf(v1, sizeof v1, "%.*s%s", (int)(q - NET_V2), NET_V2, q_end);
    char *ver = strstr(v1, "\"version\": 2");
    ver[strlen("\"version\": ")] = '1';
    ms_schema_set *o = load(NET_V2), *n = load(v1);
    memset(&x, 0, sizeof x);
    assert_int_equal(ms_schema_compare(o, n, 0, on_issue, &x), 1);
    assert_int_equal(x.checks[0], MS_COMPAT_VERSION_DOWN);
    assert_contains(x.last, "OLD writes version 2, NEW reads up to version 1");
    /* The other way round it is fine old-to-new; both ways, NEW's version
     * 2 is too new for OLD. */
    assert_int_equal(ms_schema_compare(n, o, 0, NULL, NULL), 0);
    memset(&x, 0, sizeof x);
    assert_int_equal(ms_schema_compare(n, o, MS_COMPAT_BOTH_WAYS, on_issue, &x), 1);
    assert_int_equal(x.dirs[0], MS_COMPAT_NEW_TO_OLD);
    assert_int_equal(x.checks[0], MS_COMPAT_VERSION_DOWN);
    assert_contains(x.last, "NEW writes version 2, OLD reads up to version 1");
    ms_schema_set_free(n);
    /* min_version raised past what OLD writes. */
    n = load("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"virtio-net\", "
             "\"version\": 3, \"min_version\": 3, \"open\": true}]}");
    memset(&x, 0, sizeof x);
    assert_int_equal(ms_schema_compare(o, n, 0, on_issue, &x), 1);
    assert_int_equal(x.checks[0], MS_COMPAT_VERSION_DROPPED);
    ms_schema_set_free(n);
    /* A callback's negative value stops the comparison and is returned. */
    assert_status(ms_schema_compare(o, o, 2, NULL, NULL), MS_EINVAL);
    assert_int_equal(ms_schema_compare(o, o, 0, NULL, NULL), 0);
    ms_schema_set_free(o);
}

static void learn(ms_schema_set *s, const char *path, uint32_t version, const th_buf *state)
{
    ms_device d = {.path = path,
                   .schema = "net",
                   .version = version,
                   .state = state->data,
                   .state_size = state->len};
    assert_status(ms_schema_set_learn_device(s, &d), 0);
}

/* Sets learned from states: required fields, types, version ranges. */
static void test_learn(void **st)
{
    (void)st;
    th_buf a = {0}, b = {0}, c = {0};
    /* a: {"mac": h'', "q": 1}   b: {"mac": h'', "q": 1, "mtu": 9000}
     * c: {"mac": h'', "q": -1} */
    th_cbor_head(&a, 5, 2);
    th_cbor_text(&a, "mac");
    th_cbor_bytes(&a, "", 0);
    th_cbor_text(&a, "q");
    th_cbor_uint(&a, 1);
    th_cbor_head(&b, 5, 3);
    th_buf_append(&b, a.data + 1, a.len - 1);
    th_cbor_text(&b, "mtu");
    th_cbor_uint(&b, 9000);
    th_cbor_head(&c, 5, 2);
    th_cbor_text(&c, "mac");
    th_cbor_bytes(&c, "", 0);
    th_cbor_text(&c, "q");
    th_cbor_int(&c, -1);

    ms_schema_set *old_set = ms_schema_set_new(NULL), *new_set = ms_schema_set_new(NULL);
    ms_header h = {.major = 1, .minor = 1};
    assert_status(ms_schema_set_learn_header(old_set, &h), 0);
    assert_status(ms_schema_set_learn_header(new_set, &h), 0);
    learn(old_set, "n0", 2, &a);
    /* NEW holds mtu in one state of two: optional, so compatible. */
    learn(new_set, "n0", 2, &b);
    learn(new_set, "n1", 2, &a);
    issues x = {0};
    assert_int_equal(ms_schema_compare(old_set, new_set, 0, on_issue, &x), 0);
    assert_true(ms_schema_set_learned(new_set));
    /* A set that learned cannot load files, and the reverse. */
    assert_status(ms_schema_set_load(new_set, NET_V2, strlen(NET_V2), "x"), MS_ESTATE);
    ms_schema_set *loaded = load(NET_V2);
    assert_status(
        ms_schema_set_learn_device(
            loaded, &(ms_device){.path = "p", .schema = "s", .state = a.data, .state_size = a.len}),
        MS_ESTATE);
    ms_schema_set_free(loaded);
    ms_schema_set_free(new_set);

    /* NEW holds mtu in every version 2 state: required without a bump. */
    new_set = ms_schema_set_new(NULL);
    learn(new_set, "n0", 2, &b);
    memset(&x, 0, sizeof x);
    assert_int_equal(ms_schema_compare(old_set, new_set, 0, on_issue, &x), 1);
    assert_int_equal(x.checks[0], MS_COMPAT_REQUIRED_ADDED);
    /* ...but in version 3 states only, it is a proper bump. */
    ms_schema_set_free(new_set);
    new_set = ms_schema_set_new(NULL);
    learn(new_set, "n0", 3, &b);
    assert_int_equal(ms_schema_compare(old_set, new_set, 0, NULL, NULL), 0);
    ms_schema_set_free(new_set);

    /* A negative q in OLD's states: int; a learned NEW reader with only
     * positive values is not taken to refuse negatives. */
    ms_schema_set_free(old_set);
    old_set = ms_schema_set_new(NULL);
    learn(old_set, "n0", 2, &c);
    new_set = ms_schema_set_new(NULL);
    learn(new_set, "n0", 2, &a);
    assert_int_equal(ms_schema_compare(old_set, new_set, 0, NULL, NULL), 0);
    /* Against a declared uint it is a type change. */
    ms_schema_set *decl = load("{\"migstream_schema\": 1, \"devices\": [{\"schema\": \"net\", "
                               "\"version\": 2, \"fields\": [{\"name\": \"mac\", \"type\": "
                               "\"bytes\"}, {\"name\": \"q\", \"type\": \"uint\"}]}]}");
    memset(&x, 0, sizeof x);
    assert_int_equal(ms_schema_compare(old_set, decl, 0, on_issue, &x), 1);
    assert_int_equal(x.checks[0], MS_COMPAT_TYPE_CHANGED);
    assert_contains(x.last, "OLD writes int, NEW reads uint");
    ms_schema_set_free(decl);

    /* Malformed states are refused with the device named. */
    ms_device bad = {.path = "n9",
                     .schema = "net",
                     .version = 1,
                     .state = (const uint8_t *)"\xa1",
                     .state_size = 1};
    assert_status(ms_schema_set_learn_device(new_set, &bad), MS_ECBOR);
    assert_contains(ms_schema_set_errmsg(new_set), "device \"n9\" instance 0");
    ms_schema_set_free(old_set);
    ms_schema_set_free(new_set);
    th_buf_free(&a);
    th_buf_free(&b);
    th_buf_free(&c);
}

/* Every allocation failure during a load and a validation is reported as
 * MS_ENOMEM, never a crash, and leaks nothing (ASan checks). */
static void test_alloc_failures(void **st)
{
    (void)st;
    for (size_t fail_at = 0;; fail_at++) {
        th_alloc al;
        th_alloc_init(&al, fail_at);
        ms_schema_options o;
        ms_schema_options_init(&o);
        o.allocator = th_allocator(&al);
        ms_schema_set *s = ms_schema_set_new(&o);
        if (!s)
            continue;
        int rc = ms_schema_set_load(s, NET_V2, strlen(NET_V2), "a.json");
        ms_schema_set_free(s);
        assert_int_equal(al.live, 0);
        if (!al.failed) {
            assert_status(rc, 0);
            break;
        }
        assert_status(rc, MS_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),           cmocka_unit_test(test_load_cbor),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_validate),       cmocka_unit_test(test_validate_deep),
        cmocka_unit_test(test_compare),        cmocka_unit_test(test_learn),
        cmocka_unit_test(test_alloc_failures),
    };
    return th_run_tests(tests);
}
