/*
 * Schema sets (include/migstream/schema.h): the set object, and loading the
 * schema language (docs/COMPAT.md, "Schema files") from JSON or CBOR
 * documents, files and directories.
 *
 * JSON is parsed with jansson; a CBOR document is first turned into JSON
 * text by ms_cbor_format(), which checks the profile and the nesting, so
 * that both forms go through one parser and give the same messages. Every
 * document is checked whole before the set changes: a failed load leaves
 * the set as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "migstream/cbor.h"
#include "schema/schema_impl.h"

#define DEFAULT_FILE_SIZE (16u << 20)
#define DEFAULT_SCHEMAS 4096u
#define DEFAULT_FIELDS 65536u
#define DEFAULT_DEPTH 16u
#define MAX_DEPTH 64u
#define DEFAULT_FILES 1024u

static const char *const type_names[MSI_ST_COUNT] = {
    [MSI_ST_ANY] = "any",     [MSI_ST_UINT] = "uint", [MSI_ST_INT] = "int",
    [MSI_ST_FLOAT] = "float", [MSI_ST_BOOL] = "bool", [MSI_ST_NULL] = "null",
    [MSI_ST_BYTES] = "bytes", [MSI_ST_TEXT] = "text", [MSI_ST_ARRAY] = "array",
    [MSI_ST_MAP] = "map",
};

const char *msi_stype_name(msi_stype t)
{
    return (unsigned)t < MSI_ST_COUNT ? type_names[t] : "?";
}

void ms_schema_options_init(ms_schema_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_file_size = DEFAULT_FILE_SIZE;
    opts->max_schemas = DEFAULT_SCHEMAS;
    opts->max_fields = DEFAULT_FIELDS;
    opts->max_depth = DEFAULT_DEPTH;
    opts->max_files = DEFAULT_FILES;
    opts->max_cbor_depth = MS_DEFAULT_CBOR_DEPTH;
}

ms_schema_set *ms_schema_set_new(const ms_schema_options *opts)
{
    ms_schema_options o, given;
    ms_schema_options_init(&o);
    const char *why = NULL;
    if (opts && !(why = msi_struct_take(&given, MSI_STRUCT_END(ms_schema_options, allocator),
                                        opts, opts->struct_size))) {
        /* 0 means the default, limit by limit. */
        if (given.max_file_size)
            o.max_file_size = given.max_file_size;
        if (given.max_schemas)
            o.max_schemas = given.max_schemas;
        if (given.max_fields)
            o.max_fields = given.max_fields;
        if (given.max_depth)
            o.max_depth = given.max_depth;
        if (given.max_files)
            o.max_files = given.max_files;
        if (given.max_cbor_depth)
            o.max_cbor_depth = given.max_cbor_depth;
        o.allocator = given.allocator;
    }
    if (!why && o.max_depth > MAX_DEPTH)
        why = "max_depth exceeds 64";
    if (!why && o.max_cbor_depth > MS_MAX_CBOR_DEPTH)
        why = "max_cbor_depth exceeds the format's 256";
    ms_allocator a;
    msi_allocator_set(&a, why ? NULL : &o.allocator);
    ms_schema_set *s = msi_calloc(&a, 1, sizeof *s);
    if (!s)
        return NULL;
    s->opts = o;
    s->alloc = a;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        s->status = MS_EINVAL;
        msi_schema_err(s, "invalid schema options: %s", why);
    }
    return s;
}

int ms_schema_set_status(const ms_schema_set *s)
{
    return s ? s->status : MS_ENOMEM; /* NULL: what a constructor returns without memory */
}

void msi_snode_free(const ms_allocator *a, msi_snode *n)
{
    for (size_t i = 0; i < n->nfields; i++) {
        msi_free(a, n->fields[i].name);
        msi_snode_free(a, &n->fields[i].node);
    }
    msi_free(a, n->fields);
    msi_free(a, n->slots);
    if (n->items) {
        msi_snode_free(a, n->items);
        msi_free(a, n->items);
    }
    msi_free(a, n->hist);
    memset(n, 0, sizeof *n);
}

static void device_free(const ms_allocator *a, msi_sdevice *d)
{
    msi_free(a, d->schema);
    msi_free(a, d->path);
    msi_free(a, d->origin);
    msi_snode_free(a, &d->root);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t field_hash(const uint8_t *name, size_t len, uint64_t key)
{
    if (name)
        return hash_bytes(name, len);
    uint8_t b[9] = {0xff}; /* no text key hashes these 9 bytes: they are not UTF-8 */
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(key >> (8 * i));
    return hash_bytes(b, sizeof b);
}

/* Puts @index + 1 into the table of @nslots (a power of two) at the first
 * free place from @h. */
static void slot_put(uint32_t *slots, size_t nslots, uint64_t h, size_t index)
{
    size_t k = (size_t)h & (nslots - 1);
    while (slots[k])
        k = (k + 1) & (nslots - 1);
    slots[k] = (uint32_t)(index + 1);
}

/* Makes a table of at least 2 * @count places for @count entries, or
 * keeps *@slots when it is large enough; false without memory. */
static bool slots_fit(const ms_allocator *a, uint32_t **slots, size_t *nslots, size_t count,
                      bool *grown)
{
    *grown = false;
    if (*slots && 2 * count <= *nslots)
        return true;
    size_t n = *nslots ? *nslots : 32;
    while (n < 2 * count)
        n *= 2;
    uint32_t *t = msi_calloc(a, n, sizeof *t);
    if (!t)
        return false;
    msi_free(a, *slots);
    *slots = t;
    *nslots = n;
    *grown = true;
    return true;
}

/* The schemas' table, made afresh for the first @n schemas. */
static bool index_devices(ms_schema_set *s, size_t n)
{
    bool grown;
    if (!slots_fit(&s->alloc, &s->slots, &s->nslots, n, &grown))
        return false;
    if (!grown)
        memset(s->slots, 0, s->nslots * sizeof *s->slots);
    for (size_t i = 0; i < n; i++) {
        const char *nm = s->devices[i].schema;
        slot_put(s->slots, s->nslots, hash_bytes((const uint8_t *)nm, strlen(nm)), i);
    }
    return true;
}

/* Drops every schema from index @keep on: undoes a failed load. */
static void truncate_set(ms_schema_set *s, size_t keep, size_t nfields)
{
    while (s->ndevices > keep)
        device_free(&s->alloc, &s->devices[--s->ndevices]);
    s->nfields = nfields;
    if (s->slots && !index_devices(s, keep)) { /* no memory: scans instead */
        msi_free(&s->alloc, s->slots);
        s->slots = NULL;
        s->nslots = 0;
    }
}

void ms_schema_set_free(ms_schema_set *s)
{
    if (!s)
        return;
    truncate_set(s, 0, 0);
    msi_free(&s->alloc, s->devices);
    msi_free(&s->alloc, s->slots);
    msi_free(&s->alloc, s);
}

void msi_schema_err(ms_schema_set *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

const char *ms_schema_set_errmsg(const ms_schema_set *s)
{
    return s ? s->err : "out of memory creating the schema set";
}

size_t ms_schema_set_count(const ms_schema_set *s)
{
    return s ? s->ndevices : 0;
}

bool ms_schema_set_get(const ms_schema_set *s, size_t index, const char **name, uint32_t *version,
                       uint32_t *min_version)
{
    if (!s || index >= s->ndevices)
        return false;
    const msi_sdevice *d = &s->devices[index];
    if (name)
        *name = d->schema;
    if (version)
        *version = d->version;
    if (min_version)
        *min_version = d->min_version;
    return true;
}

bool ms_schema_set_format(const ms_schema_set *s, uint16_t *major, uint16_t *minor,
                          uint64_t *required_features)
{
    if (!s || !s->has_format)
        return false;
    if (major)
        *major = s->major;
    if (minor)
        *minor = s->minor;
    if (required_features)
        *required_features = s->features;
    return true;
}

bool ms_schema_set_learned(const ms_schema_set *s)
{
    return s && s->kind == MSI_SET_LEARNED;
}

msi_sdevice *msi_schema_find(const ms_schema_set *s, const char *name)
{
    /* Searched once per device record: through the table, which keeps
     * the array in insertion order for reports (a scan without one). */
    if (!s->slots) {
        for (size_t i = 0; i < s->ndevices; i++)
            if (strcmp(s->devices[i].schema, name) == 0)
                return &s->devices[i];
        return NULL;
    }
    size_t k = (size_t)hash_bytes((const uint8_t *)name, strlen(name)) & (s->nslots - 1);
    for (; s->slots[k]; k = (k + 1) & (s->nslots - 1))
        if (strcmp(s->devices[s->slots[k] - 1].schema, name) == 0)
            return &s->devices[s->slots[k] - 1];
    return NULL;
}

msi_sdevice *msi_schema_add_device(ms_schema_set *s, const char *name)
{
    if (s->ndevices >= s->opts.max_schemas) {
        msi_schema_err(s, "more than %u schemas (max_schemas)", s->opts.max_schemas);
        return NULL;
    }
    if (s->ndevices == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        msi_sdevice *p = msi_realloc(&s->alloc, s->devices, cap * sizeof *p);
        if (!p)
            goto nomem;
        s->devices = p;
        s->cap = cap;
    }
    msi_sdevice *d = &s->devices[s->ndevices];
    memset(d, 0, sizeof *d);
    if (!(d->schema = msi_strdup(&s->alloc, name)))
        goto nomem;
    bool grown;
    if (!slots_fit(&s->alloc, &s->slots, &s->nslots, s->ndevices + 1, &grown) ||
        (grown && !index_devices(s, s->ndevices))) {
        msi_free(&s->alloc, d->schema);
        goto nomem;
    }
    slot_put(s->slots, s->nslots, hash_bytes((const uint8_t *)name, strlen(name)), s->ndevices);
    d->root.type = MSI_ST_MAP;
    s->ndevices++;
    return d;
nomem:
    msi_schema_err(s, "out of memory");
    return NULL;
}

/* Fields of a node are scanned up to this many, then found by a table. */
#define SCAN_FIELDS 8

static bool field_is(const msi_sfield *f, const uint8_t *name, size_t len, uint64_t key)
{
    if (!name)
        return !f->name && f->key == key;
    return f->name && strlen(f->name) == len && memcmp(f->name, name, len) == 0;
}

msi_sfield *msi_snode_add_field(ms_schema_set *s, msi_snode *n, const uint8_t *name, size_t len,
                                uint64_t key)
{
    if (s->nfields >= s->opts.max_fields) {
        msi_schema_err(s, "more than %u fields (max_fields)", s->opts.max_fields);
        return NULL;
    }
    if (n->nfields == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 8;
        msi_sfield *p = msi_realloc(&s->alloc, n->fields, cap * sizeof *p);
        if (!p)
            goto nomem;
        n->fields = p;
        n->cap = cap;
    }
    char *copy = NULL;
    if (name && !(copy = msi_alloc(&s->alloc, len + 1)))
        goto nomem;
    if (name) {
        memcpy(copy, name, len);
        copy[len] = 0;
    }
    if (n->nfields + 1 > SCAN_FIELDS) {
        bool grown;
        if (!slots_fit(&s->alloc, &n->slots, &n->nslots, n->nfields + 1, &grown)) {
            msi_free(&s->alloc, copy);
            goto nomem;
        }
        for (size_t i = 0; grown && i < n->nfields; i++) {
            const msi_sfield *g = &n->fields[i];
            slot_put(n->slots, n->nslots,
                     field_hash((const uint8_t *)g->name, g->name ? strlen(g->name) : 0, g->key),
                     i);
        }
        slot_put(n->slots, n->nslots, field_hash(name, len, key), n->nfields);
    }
    msi_sfield *f = &n->fields[n->nfields++];
    memset(f, 0, sizeof *f);
    f->name = copy;
    f->key = name ? 0 : key;
    s->nfields++;
    return f;
nomem:
    msi_schema_err(s, "out of memory");
    return NULL;
}

static msi_sfield *find_field(const msi_snode *n, const uint8_t *name, size_t len, uint64_t key)
{
    if (!n->slots) {
        for (size_t i = 0; i < n->nfields; i++)
            if (field_is(&n->fields[i], name, len, key))
                return &n->fields[i];
        return NULL;
    }
    size_t k = (size_t)field_hash(name, len, key) & (n->nslots - 1);
    for (; n->slots[k]; k = (k + 1) & (n->nslots - 1))
        if (field_is(&n->fields[n->slots[k] - 1], name, len, key))
            return &n->fields[n->slots[k] - 1];
    return NULL;
}

msi_sfield *msi_snode_find_text(const msi_snode *n, const uint8_t *name, size_t len)
{
    return find_field(n, name, len, 0);
}

msi_sfield *msi_snode_find_key(const msi_snode *n, uint64_t key)
{
    return find_field(n, NULL, 0, key);
}

size_t msi_path_push_raw(char *buf, size_t cap, size_t len, const char *elem)
{
    size_t n = strlen(elem);
    if (len + n + 1 > cap) {
        if (len + 4 < cap && (len < 3 || strcmp(buf + len - 3, "...") != 0)) {
            memcpy(buf + len, "...", 4);
            len += 3;
        }
        return len;
    }
    memcpy(buf + len, elem, n + 1);
    return len + n;
}

size_t msi_path_push(char *buf, size_t cap, size_t len, const msi_sfield *f)
{
    char elem[600];
    if (!f->name) {
        snprintf(elem, sizeof elem, "/%llu", (unsigned long long)f->key);
    } else {
        /* Quoted as CBOR diagnostic notation, like ms_cbor_diff paths. */
        size_t k = 0;
        elem[k++] = '/';
        elem[k++] = '"';
        for (const char *p = f->name; *p && k < sizeof elem - 6; p++) {
            if (*p == '"' || *p == '\\')
                elem[k++] = '\\';
            elem[k++] = *p;
        }
        elem[k++] = '"';
        elem[k] = 0;
    }
    return msi_path_push_raw(buf, cap, len, elem);
}

/* ------------------------------------------------------------- loading */

typedef struct loader {
    ms_schema_set *s;
    const char *origin;
    char where[512]; /* what is being read, for messages */
} loader;

__attribute__((format(printf, 3, 4))) static int fail(loader *l, int status, const char *fmt, ...)
{
    char detail[700];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    msi_schema_err(l->s, "%s: %s%s%s", l->origin, l->where, l->where[0] ? ": " : "", detail);
    return status;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Every member of @obj must be one of the NULL-terminated @allowed: a typo
 * ("requird") is refused rather than silently meaning the default. */
static int check_members(loader *l, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(*a, key) == 0;
        if (!ok)
            return fail(l, MS_ECORRUPT, "unknown member \"%s\"", key);
    }
    return 0;
}

/* An unsigned integer member within [lo, hi]; absent: *out = dflt. */
static int get_uint(loader *l, json_t *obj, const char *name, uint64_t lo, uint64_t hi,
                    uint64_t dflt, bool required, uint64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) {
        if (required)
            return fail(l, MS_ECORRUPT, "member \"%s\" is missing", name);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(l, MS_ECORRUPT, "\"%s\" must be an integer, not %s", name, json_kind(v));
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < lo || (uint64_t)i > hi)
        return fail(l, MS_ECORRUPT, "\"%s\" is %lld: must be %llu to %llu", name, (long long)i,
                    (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)i;
    return 0;
}

static int get_bool(loader *l, json_t *obj, const char *name, bool dflt, bool *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return fail(l, MS_ECORRUPT, "\"%s\" must be true or false, not %s", name, json_kind(v));
    *out = json_is_true(v);
    return 0;
}

/* A name: text of 1..255 bytes without NUL (jansson has checked UTF-8). */
static int get_name(loader *l, json_t *obj, const char *member, const char **out)
{
    json_t *v = json_object_get(obj, member);
    if (!json_is_string(v))
        return fail(l, MS_ECORRUPT, "\"%s\" must be a string, not %s", member,
                    v ? json_kind(v) : "missing");
    size_t n = json_string_length(v);
    const char *p = json_string_value(v);
    if (n == 0 || n > MS_MAX_NAME_LEN || strlen(p) != n)
        return fail(l, MS_ECORRUPT, "\"%s\" must be 1 to %u bytes without NUL (%zu bytes)", member,
                    MS_MAX_NAME_LEN, n);
    *out = p;
    return 0;
}

static int parse_node(loader *l, json_t *obj, msi_snode *n, uint32_t version, unsigned depth);

static int parse_type(loader *l, json_t *obj, msi_stype dflt, msi_stype *out)
{
    json_t *v = json_object_get(obj, "type");
    if (!v) {
        if (dflt != MSI_ST_COUNT) {
            *out = dflt;
            return 0;
        }
        return fail(l, MS_ECORRUPT, "member \"type\" is missing");
    }
    if (json_is_string(v))
        for (int t = 0; t < MSI_ST_COUNT; t++)
            if (strcmp(json_string_value(v), type_names[t]) == 0) {
                *out = (msi_stype)t;
                return 0;
            }
    return fail(l, MS_ECORRUPT,
                "\"type\" must be one of any, uint, int, float, bool, null, bytes, text, array, "
                "map");
}

static int parse_fields(loader *l, json_t *arr, msi_snode *n, uint32_t version, unsigned depth)
{
    if (!json_is_array(arr))
        return fail(l, MS_ECORRUPT, "\"fields\" must be an array, not %s", json_kind(arr));
    static const char *const members[] = {"name",   "key",  "type",  "required",    "since",
                                          "fields", "open", "items", "description", NULL};
    size_t base = strlen(l->where);
    size_t i;
    json_t *fo;
    json_array_foreach(arr, i, fo)
    {
        snprintf(l->where + base, sizeof l->where - base, "%sfields[%zu]", base ? " " : "", i);
        if (!json_is_object(fo))
            return fail(l, MS_ECORRUPT, "a field must be an object, not %s", json_kind(fo));
        int rc = check_members(l, fo, members);
        if (rc)
            return rc;
        json_t *name = json_object_get(fo, "name"), *key = json_object_get(fo, "key");
        if (!name == !key)
            return fail(l, MS_ECORRUPT,
                        "a field has either \"name\" (a text key) or \"key\" "
                        "(an integer key), not %s",
                        name ? "both" : "neither");
        const char *nm = NULL;
        uint64_t k = 0;
        if (name) {
            if ((rc = get_name(l, fo, "name", &nm)))
                return rc;
            snprintf(l->where + base, sizeof l->where - base, "%sfield \"%s\"", base ? " " : "",
                     nm);
            if (msi_snode_find_text(n, (const uint8_t *)nm, strlen(nm)))
                return fail(l, MS_ECORRUPT, "the field is declared twice");
        } else {
            if ((rc = get_uint(l, fo, "key", 0, UINT64_MAX >> 1, 0, true, &k)))
                return rc;
            snprintf(l->where + base, sizeof l->where - base, "%sfield %llu", base ? " " : "",
                     (unsigned long long)k);
            if (msi_snode_find_key(n, k))
                return fail(l, MS_ECORRUPT, "the field is declared twice");
        }
        uint64_t since;
        bool required = false;
        if ((rc = get_uint(l, fo, "since", 0, UINT32_MAX, 0, false, &since)) ||
            (rc = get_bool(l, fo, "required", true, &required)))
            return rc;
        if (since > version)
            return fail(l, MS_ECORRUPT, "\"since\" is %llu, later than the schema's version %u",
                        (unsigned long long)since, version);
        msi_sfield *f = msi_snode_add_field(l->s, n, (const uint8_t *)nm, nm ? strlen(nm) : 0, k);
        if (!f)
            return fail(l, l->s->nfields >= l->s->opts.max_fields ? MS_ELIMIT : MS_ENOMEM, "%s",
                        l->s->nfields >= l->s->opts.max_fields ? "too many fields (max_fields)"
                                                               : "out of memory");
        f->required = required;
        f->since = (uint32_t)since;
        if ((rc = parse_node(l, fo, &f->node, version, depth + 1)))
            return rc;
    }
    l->where[base] = 0;
    return 0;
}

/* The members that give a value's shape: type, fields, open, items. */
static int parse_node(loader *l, json_t *obj, msi_snode *n, uint32_t version, unsigned depth)
{
    if (depth > l->s->opts.max_depth)
        return fail(l, MS_ELIMIT, "fields nest deeper than %u (max_depth)", l->s->opts.max_depth);
    int rc = parse_type(l, obj, depth == 0 ? MSI_ST_MAP : MSI_ST_COUNT, &n->type);
    if (rc)
        return rc;
    json_t *fields = json_object_get(obj, "fields"), *items = json_object_get(obj, "items");
    if (json_object_get(obj, "open") && n->type != MSI_ST_MAP)
        return fail(l, MS_ECORRUPT, "\"open\" applies to maps only");
    if (fields && n->type != MSI_ST_MAP)
        return fail(l, MS_ECORRUPT, "\"fields\" applies to maps only, not to type %s",
                    type_names[n->type]);
    if (items && n->type != MSI_ST_ARRAY)
        return fail(l, MS_ECORRUPT, "\"items\" applies to arrays only, not to type %s",
                    type_names[n->type]);
    if ((rc = get_bool(l, obj, "open", false, &n->open)))
        return rc;
    if (fields) {
        n->has_fields = true;
        if ((rc = parse_fields(l, fields, n, version, depth)))
            return rc;
    }
    if (items) {
        static const char *const members[] = {"type",  "fields",      "open",
                                              "items", "description", NULL};
        size_t base = strlen(l->where);
        snprintf(l->where + base, sizeof l->where - base, " items");
        if (!json_is_object(items))
            return fail(l, MS_ECORRUPT, "\"items\" must be an object, not %s", json_kind(items));
        if ((rc = check_members(l, items, members)))
            return rc;
        if (!(n->items = msi_calloc(&l->s->alloc, 1, sizeof *n->items)))
            return fail(l, MS_ENOMEM, "out of memory");
        if ((rc = parse_node(l, items, n->items, version, depth + 1)))
            return rc;
        l->where[base] = 0;
    }
    return 0;
}

static int parse_device(loader *l, json_t *dev, size_t index)
{
    static const char *const members[] = {"schema", "version", "min_version", "type", "fields",
                                          "open",   "items",   "description", NULL};
    snprintf(l->where, sizeof l->where, "devices[%zu]", index);
    if (!json_is_object(dev))
        return fail(l, MS_ECORRUPT, "a device must be an object, not %s", json_kind(dev));
    const char *name;
    uint64_t version, min_version;
    int rc = check_members(l, dev, members);
    if (rc || (rc = get_name(l, dev, "schema", &name)))
        return rc;
    snprintf(l->where, sizeof l->where, "schema \"%s\"", name);
    if ((rc = get_uint(l, dev, "version", 0, UINT32_MAX, 0, true, &version)) ||
        (rc = get_uint(l, dev, "min_version", 0, version, 0, false, &min_version)))
        return rc;
    const msi_sdevice *old = msi_schema_find(l->s, name);
    if (old)
        return fail(l, MS_ECORRUPT, "already defined%s%s", old->origin ? " in " : "",
                    old->origin ? old->origin : "");
    msi_sdevice *d = msi_schema_add_device(l->s, name);
    if (!d)
        return fail(l, l->s->ndevices >= l->s->opts.max_schemas ? MS_ELIMIT : MS_ENOMEM, "%s",
                    l->s->ndevices >= l->s->opts.max_schemas ? "too many schemas (max_schemas)"
                                                             : "out of memory");
    d->version = (uint32_t)version;
    d->min_version = (uint32_t)min_version;
    if (!(d->origin = msi_strdup(&l->s->alloc, l->origin)))
        return fail(l, MS_ENOMEM, "out of memory");
    snprintf(l->where, sizeof l->where, "schema \"%s\"", name);
    return parse_node(l, dev, &d->root, d->version, 0);
}

static int parse_format(loader *l, json_t *fmt, uint16_t *major, uint16_t *minor,
                        uint64_t *features)
{
    static const char *const members[] = {"major", "minor", "required_features", NULL};
    snprintf(l->where, sizeof l->where, "format");
    if (!json_is_object(fmt))
        return fail(l, MS_ECORRUPT, "must be an object, not %s", json_kind(fmt));
    uint64_t ma, mi;
    int rc = check_members(l, fmt, members);
    if (rc || (rc = get_uint(l, fmt, "major", 1, UINT16_MAX, MS_FORMAT_MAJOR, false, &ma)) ||
        (rc = get_uint(l, fmt, "minor", 0, UINT16_MAX, 0, true, &mi)))
        return rc;
    *major = (uint16_t)ma;
    *minor = (uint16_t)mi;
    *features = 0;
    json_t *feat = json_object_get(fmt, "required_features"), *v;
    if (!feat)
        return 0;
    if (!json_is_array(feat))
        return fail(l, MS_ECORRUPT, "\"required_features\" must be an array, not %s",
                    json_kind(feat));
    size_t i;
    json_array_foreach(feat, i, v)
    {
        int bit = -1;
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 64)
            bit = (int)json_integer_value(v);
        for (unsigned b = 0; json_is_string(v) && b < 64; b++) {
            const char *fname = ms_feature_name(b);
            if (fname && strcmp(fname, json_string_value(v)) == 0)
                bit = (int)b;
        }
        if (bit < 0)
            return fail(l, MS_ECORRUPT,
                        "required_features[%zu]: a feature name (DISCARDED, FILL, IN_PLACE, "
                        "OVERLAYS) or a bit number 0 to 63",
                        i);
        *features |= UINT64_C(1) << bit;
    }
    return 0;
}

static int parse_document(loader *l, json_t *root)
{
    static const char *const members[] = {"migstream_schema", "devices", "format", "description",
                                          NULL};
    l->where[0] = 0;
    if (!json_is_object(root))
        return fail(l, MS_ECORRUPT, "a schema file holds an object, not %s", json_kind(root));
    uint64_t lang;
    int rc = check_members(l, root, members);
    if (rc || (rc = get_uint(l, root, "migstream_schema", 0, UINT32_MAX, 0, true, &lang)))
        return rc;
    if (lang != MS_SCHEMA_LANGUAGE)
        return fail(l, MS_ECORRUPT, "schema language %llu: this library reads %d",
                    (unsigned long long)lang, MS_SCHEMA_LANGUAGE);
    json_t *fmt = json_object_get(root, "format");
    uint16_t major = 0, minor = 0;
    uint64_t features = 0;
    if (fmt && (rc = parse_format(l, fmt, &major, &minor, &features)))
        return rc;
    if (fmt && l->s->has_format &&
        (major != l->s->major || minor != l->s->minor || features != l->s->features)) {
        snprintf(l->where, sizeof l->where, "format");
        return fail(l, MS_ECORRUPT, "differs from the format another file of the set declares");
    }
    json_t *devs = json_object_get(root, "devices"), *dev;
    l->where[0] = 0;
    if (!json_is_array(devs))
        return fail(l, MS_ECORRUPT, "\"devices\" must be an array, not %s",
                    devs ? json_kind(devs) : "missing");
    size_t i;
    json_array_foreach(devs, i, dev)
    {
        if ((rc = parse_device(l, dev, i)))
            return rc;
    }
    if (fmt) {
        l->s->has_format = true;
        l->s->major = major;
        l->s->minor = minor;
        l->s->features = features;
    }
    return 0;
}

/* JSON values a document may hold: a field takes a handful (its object,
 * name, type, since, required, and its nested "fields" or "items"). */
#define VALUES_PER_FIELD 16u

/* Loads one document; the caller restores the set on failure. */
static int load_one(ms_schema_set *s, const void *data, size_t size, const char *origin)
{
    loader l = {.s = s, .origin = origin ? origin : "schema"};
    if (size > s->opts.max_file_size)
        return fail(&l, MS_ELIMIT, "%zu bytes, more than %u (max_file_size)", size,
                    s->opts.max_file_size);
    const uint8_t *p = data;
    char *text = NULL;
    size_t text_len = size;
    /* A JSON document starts with "{" (after any white space); a CBOR map
     * head is 0xa0..0xbb. Anything else is neither. */
    size_t k = 0;
    while (k < size && (p[k] == ' ' || p[k] == '\t' || p[k] == '\n' || p[k] == '\r'))
        k++;
    if (k < size && p[k] >= 0xa0 && p[k] <= 0xbb) {
        unsigned depth = 2 * s->opts.max_depth + 8;
        ssize_t n = ms_cbor_format(data, size, MS_CBOR_JSON, depth, NULL, 0);
        if (n < 0)
            return fail(&l, MS_ECORRUPT,
                        "not one CBOR item in the format's profile, or nested "
                        "deeper than %u",
                        depth);
        /* Compact CBOR grows as JSON (byte strings twice, keys quoted):
         * the text may take 4 times max_file_size at most. */
        if ((uint64_t)n > 4 * (uint64_t)s->opts.max_file_size)
            return fail(&l, MS_ELIMIT, "its JSON form would take %zd bytes, more than 4 times "
                        "max_file_size (%u)", n, s->opts.max_file_size);
        if (!(text = msi_alloc(&s->alloc, (size_t)n + 1)))
            return fail(&l, MS_ENOMEM, "out of memory");
        ms_cbor_format(data, size, MS_CBOR_JSON, depth, text, (size_t)n + 1);
        p = (const uint8_t *)text;
        text_len = (size_t)n;
    } else if (k == size || p[k] != '{') {
        return fail(&l, MS_ECORRUPT, "neither a JSON object nor a CBOR map");
    }
    size_t values = ms_json_values(p, text_len);
    uint64_t most = (uint64_t)VALUES_PER_FIELD * s->opts.max_fields + 4096;
    if (values > most) {
        msi_free(&s->alloc, text);
        return fail(&l, MS_ELIMIT, "about %zu JSON values, more than the %llu that %u fields "
                    "may take (max_fields)", values, (unsigned long long)most,
                    s->opts.max_fields);
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p, text_len, JSON_REJECT_DUPLICATES, &jerr);
    msi_free(&s->alloc, text);
    if (!root)
        return text ? fail(&l, MS_ECORRUPT, "%s", jerr.text)
                    : fail(&l, MS_ECORRUPT, "line %d column %d: %s", jerr.line, jerr.column,
                           jerr.text);
    int rc = parse_document(&l, root);
    json_decref(root);
    return rc;
}

int ms_schema_set_load(ms_schema_set *s, const void *data, size_t size, const char *origin)
{
    if (!s || (!data && size))
        return MS_EINVAL;
    if (s->status)
        return s->status;
    if (s->kind == MSI_SET_LEARNED) {
        msi_schema_err(s, "this set describes streams: it cannot load schema files too");
        return MS_ESTATE;
    }
    size_t keep = s->ndevices, nfields = s->nfields;
    int rc = load_one(s, data ? data : "", size, origin);
    if (rc) {
        truncate_set(s, keep, nfields);
        return rc;
    }
    s->kind = MSI_SET_LOADED;
    return 0;
}

/* Reads a whole file, refusing one larger than the limit before reading. */
static int read_file(ms_schema_set *s, const char *path, uint8_t **out, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        msi_schema_err(s, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return MS_EIO;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > s->opts.max_file_size) {
        msi_schema_err(s,
                       S_ISREG(st.st_mode) ? "%s: larger than %u bytes (max_file_size)"
                                           : "%s: not a regular file",
                       path, s->opts.max_file_size);
        close(fd);
        return S_ISREG(st.st_mode) ? MS_ELIMIT : MS_EIO;
    }
    uint8_t *buf = msi_alloc(&s->alloc, (size_t)st.st_size);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            msi_schema_err(s, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank while read");
            msi_free(&s->alloc, buf);
            close(fd);
            return MS_EIO;
        }
        got += (size_t)n;
    }
    close(fd);
    if (!buf) {
        msi_schema_err(s, "out of memory");
        return MS_ENOMEM;
    }
    *out = buf;
    *size = got;
    return 0;
}

static int load_file(ms_schema_set *s, const char *path)
{
    uint8_t *buf;
    size_t size;
    int rc = read_file(s, path, &buf, &size);
    if (rc)
        return rc;
    rc = load_one(s, buf, size, path);
    msi_free(&s->alloc, buf);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool schema_file_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 5 &&
           (strcmp(n + len - 5, ".json") == 0 || strcmp(n + len - 5, ".cbor") == 0);
}

static int load_dir(ms_schema_set *s, const char *path, DIR *dir)
{
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dir))) {
        if (!schema_file_name(e->d_name))
            continue;
        char **p =
            n >= s->opts.max_files ? NULL : msi_realloc(&s->alloc, names, (n + 1) * sizeof *p);
        char *full = p ? msi_alloc(&s->alloc, strlen(path) + strlen(e->d_name) + 2) : NULL;
        if (p)
            names = p;
        if (!full) {
            if (n >= s->opts.max_files)
                msi_schema_err(s, "%s: more than %u schema files (max_files)", path,
                               s->opts.max_files);
            else
                msi_schema_err(s, "out of memory");
            rc = n >= s->opts.max_files ? MS_ELIMIT : MS_ENOMEM;
            break;
        }
        sprintf(full, "%s/%s", path, e->d_name);
        names[n++] = full;
    }
    if (!rc && n == 0) {
        msi_schema_err(s, "%s: no schema files (*.json, *.cbor) in the directory", path);
        rc = MS_ELIMIT;
    }
    if (!rc) {
        qsort(names, n, sizeof *names, by_name);
        for (size_t i = 0; i < n && !rc; i++) {
            struct stat st;
            /* Only regular files (stat follows links); a directory named
             * "x.json" is not a schema file. */
            if (stat(names[i], &st) == 0 && !S_ISREG(st.st_mode))
                continue;
            rc = load_file(s, names[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        msi_free(&s->alloc, names[i]);
    msi_free(&s->alloc, names);
    return rc;
}

int ms_schema_set_load_path(ms_schema_set *s, const char *path)
{
    if (!s || !path)
        return MS_EINVAL;
    if (s->status)
        return s->status;
    if (s->kind == MSI_SET_LEARNED) {
        msi_schema_err(s, "this set describes streams: it cannot load schema files too");
        return MS_ESTATE;
    }
    size_t keep = s->ndevices, nfields = s->nfields;
    bool had_format = s->has_format;
    int rc;
    DIR *dir = opendir(path);
    if (dir) {
        rc = load_dir(s, path, dir);
        closedir(dir);
    } else if (errno == ENOTDIR) {
        rc = load_file(s, path);
    } else {
        msi_schema_err(s, "%s: %s", path, strerror(errno));
        rc = MS_EIO;
    }
    if (rc) {
        truncate_set(s, keep, nfields);
        s->has_format = had_format;
        return rc;
    }
    s->kind = MSI_SET_LOADED;
    return 0;
}
