/*
 * Device state (vmsd.h; docs/QEMU.md section 3): QEMU's JSON trailer
 * (VMDESCRIPTION) and the CBOR state of each DEVICE record. Calls input.h,
 * wire.h and jansson only.
 *
 * QEMU writes the trailer while it saves, from what it actually wrote: for
 * each field its name, type and the bytes one element took ("size"), an
 * array length when the elements are alike ("array_len") or one entry per
 * element ("index") when they are not, nested descriptions for structs
 * ("struct", or "fields" inline for VMSTATE_WITH_TMP), and the subsections
 * it sent. A section is split into fields only when that description
 * accounts for every one of its bytes, subsection markers included; any
 * mismatch leaves the raw bytes alone.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "qemu/vmsd.h"
#include "qemu/wire.h"

/* Deepest description nesting followed; the CBOR of a decoded section
 * nests at most two more (state map, "fields" map) plus one per array. */
#define MAX_NEST 24

/* A description's key: QEMU's section name (idstr) and instance. */
typedef struct desc_key {
    const char *name; /* NULL: the description has none */
    long long instance;
    size_t index; /* in "devices" */
    size_t next;  /* first key of a group of one name and instance: the
                     offset of the first one no section was checked against */
} desc_key;

/* A subsection header where a description puts it (docs/QEMU.md 3.2). */
typedef struct desc_marker {
    uint64_t pos;
    const char *name; /* a view into the trailer */
    size_t len;
    long long version; /* -1: not given */
} desc_marker;

/* What a description accounts for, worked out once however many sections
 * it is checked against or decodes (docs/SECURITY.md, "Cost"). */
typedef struct desc_info {
    uint8_t state;     /* INFO_NONE until worked out */
    uint64_t expected; /* bytes its fields and subsections account for */
    uint64_t steps;    /* fields, elements and subsections a decoding visits */
    uint64_t out;      /* bound on the CBOR bytes a decoding writes */
    char *what;        /* INFO_MALFORMED: why */
    desc_marker *markers;
    size_t nmarkers, markers_cap;
} desc_info;

enum { INFO_NONE, INFO_OK, INFO_MALFORMED, INFO_NOMEM };

struct mq_vmsd {
    json_t *root;
    json_t *devices; /* array */
    uint64_t page_size;
    /* The descriptions sorted by name, instance and index, so that a
     * section finds its own in log time however many there are. */
    desc_key *keys;
    size_t nkeys;
    bool *used;      /* per description: a section was checked against it */
    bool *twice;     /* per description: an earlier one has its name and instance */
    desc_info *info; /* per description, worked out when first needed */
    const ms_allocator *alloc;
};

static int key_cmp(const void *x, const void *y)
{
    const desc_key *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    if (a->instance != b->instance)
        return a->instance < b->instance ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Builds d->keys, d->used and d->twice. MS_ENOMEM or 0. */
static int index_descriptions(const ms_allocator *a, mq_vmsd *d)
{
    size_t n = json_array_size(d->devices);
    if (n == 0)
        return 0;
    d->keys = msi_calloc(a, n, sizeof *d->keys);
    d->used = msi_calloc(a, n, sizeof *d->used);
    d->twice = msi_calloc(a, n, sizeof *d->twice);
    d->info = msi_calloc(a, n, sizeof *d->info);
    if (!d->keys || !d->used || !d->twice || !d->info)
        return MS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *dev = json_array_get(d->devices, i);
        json_t *inst = json_object_get(dev, "instance_id");
        const char *name = json_string_value(json_object_get(dev, "name"));
        if (!name)
            continue;
        d->keys[d->nkeys++] = (desc_key){
            name, json_is_integer(inst) ? (long long)json_integer_value(inst) : -1, i, 0};
    }
    qsort(d->keys, d->nkeys, sizeof *d->keys, key_cmp);
    for (size_t k = 1; k < d->nkeys; k++)
        if (strcmp(d->keys[k].name, d->keys[k - 1].name) == 0 &&
            d->keys[k].instance == d->keys[k - 1].instance)
            d->twice[d->keys[k].index] = true;
    return 0;
}

/* The first key (in "devices" order) with @name and, when @any_instance is
 * false, @instance; NULL when there is none. */
static const desc_key *find_key(const mq_vmsd *d, const char *name, long long instance,
                                bool any_instance)
{
    size_t lo = 0, hi = d->nkeys;
    while (lo < hi) { /* the first key not below (name, instance) */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->keys[mid].name, name);
        if (c < 0 || (c == 0 && !any_instance && d->keys[mid].instance < instance))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == d->nkeys || strcmp(d->keys[lo].name, name) != 0 ||
        (!any_instance && d->keys[lo].instance != instance))
        return NULL;
    return &d->keys[lo];
}

/* What jansson (2.14, 64-bit) allocates for @json, from its tokens: an
 * object 224 bytes, an array 128, a string or key 96 and its bytes, a number
 * 32, a member or element slot 16 (measured; each a little above the
 * allocator's real use). One pass, no allocation. */
static uint64_t parsed_bytes(const char *json, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        switch (json[i]) {
        case '"': {
            size_t j = i + 1;
            while (j < len && json[j] != '"')
                j += json[j] == '\\' ? 2 : 1;
            n += 96 + (j - i - 1);
            i = j;
            break;
        }
        case '{':
            n += 224;
            break;
        case '[':
            n += 128;
            break;
        case ',':
            n += 16;
            break;
        case '-':
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
            n += 32;
            while (i + 1 < len && json[i + 1] && strchr("0123456789.eE+-", json[i + 1]))
                i++;
            break;
        default:
            break;
        }
    }
    return n;
}

int mq_vmsd_parse(const ms_allocator *a, mq_error *e, const char *json, size_t len, uint64_t off,
                  mq_vmsd **out)
{
    json_error_t err;
    *out = NULL;
    /* A trailer of empty objects takes 75 times its size once parsed; the
     * ones QEMU writes take 12. */
    uint64_t parsed = parsed_bytes(json, len);
    if (parsed > (uint64_t)MQ_VMSD_PARSED_PER_BYTE * len + MQ_VMSD_PARSED_MIN)
        return mq_fail(e, MS_ELIMIT, off, "VMDESCRIPTION",
                       "the JSON trailer of %zu bytes would take about %llu KiB once parsed, more "
                       "than %u bytes for each of its bytes",
                       len, (unsigned long long)(parsed >> 10), MQ_VMSD_PARSED_PER_BYTE);
    json_t *root = json_loadb(json, len, 0, &err);
    if (!root)
        return mq_fail(e, MS_ECORRUPT, off, "VMDESCRIPTION",
                       "the JSON trailer is not valid JSON: line %d column %d: %s", err.line,
                       err.column, err.text);
    json_t *devices = json_object_get(root, "devices");
    if (!json_is_object(root) || !json_is_array(devices)) {
        json_decref(root);
        return mq_fail(e, MS_ECORRUPT, off, "VMDESCRIPTION",
                       "the JSON trailer has no \"devices\" array");
    }
    mq_vmsd *d = msi_calloc(a, 1, sizeof *d);
    if (!d) {
        json_decref(root);
        return mq_fail(e, MS_ENOMEM, off, "VMDESCRIPTION", "out of memory");
    }
    d->root = root;
    d->devices = devices;
    d->alloc = a;
    /* Bounded by the trailer's size limit. */
    if (index_descriptions(a, d)) {
        mq_vmsd_free(a, d);
        return mq_fail(e, MS_ENOMEM, off, "VMDESCRIPTION", "out of memory");
    }
    json_t *ps = json_object_get(root, "page_size");
    if (json_is_integer(ps) && json_integer_value(ps) > 0)
        d->page_size = (uint64_t)json_integer_value(ps);
    *out = d;
    return 0;
}

void mq_vmsd_free(const ms_allocator *a, mq_vmsd *d)
{
    if (!d)
        return;
    for (size_t i = 0; d->info && i < json_array_size(d->devices); i++) {
        msi_free(a, d->info[i].what);
        msi_free(a, d->info[i].markers);
    }
    json_decref(d->root);
    msi_free(a, d->info);
    msi_free(a, d->keys);
    msi_free(a, d->used);
    msi_free(a, d->twice);
    msi_free(a, d);
}

uint64_t mq_vmsd_page_size(const mq_vmsd *d)
{
    return d ? d->page_size : 0;
}

/* ------------------------------------------------------------- CBOR out */

static int cb_head(msi_buf *b, uint8_t major, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    major = (uint8_t)(major << 5);
    if (v < 24) {
        h[0] = (uint8_t)(major | v);
        n = 1;
    } else if (v <= 0xff) {
        h[0] = major | 24;
        h[1] = (uint8_t)v;
        n = 2;
    } else if (v <= 0xffff) {
        h[0] = major | 25;
        h[1] = (uint8_t)(v >> 8);
        h[2] = (uint8_t)v;
        n = 3;
    } else if (v <= 0xffffffffu) {
        h[0] = major | 26;
        for (int i = 0; i < 4; i++)
            h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        n = 5;
    } else {
        h[0] = major | 27;
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        n = 9;
    }
    return msi_buf_append(b, h, n);
}

static int cb_str(msi_buf *b, uint8_t major, const void *p, size_t n)
{
    int rc = cb_head(b, major, n);
    return rc ? rc : msi_buf_append(b, p, n);
}

static int cb_text(msi_buf *b, const char *s)
{
    return cb_str(b, 3, s, strlen(s));
}

/* ------------------------------------------------------------ decoding */

enum { OK = 0, MISMATCH = 1 }; /* besides negative MS_E... statuses */

typedef struct dec {
    const uint8_t *raw;
    size_t n, pos;
    int depth;
} dec;

/* Leaf types decoded to values; every other leaf is kept as bytes. The
 * integers are big-endian on QEMU's wire. */
static const struct leaf_type {
    const char *name;
    unsigned width;
    char kind; /* 'i' signed, 'u' unsigned, 'b' bool, 'f' float */
} leaf_types[] = {
    {"bool", 1, 'b'},         {"int8", 1, 'i'},         {"int16", 2, 'i'},
    {"int32", 4, 'i'},        {"int64", 8, 'i'},        {"uint8", 1, 'u'},
    {"uint16", 2, 'u'},       {"uint32", 4, 'u'},       {"uint64", 8, 'u'},
    {"int32 equal", 4, 'i'},  {"int32 le", 4, 'i'},     {"uint8 equal", 1, 'u'},
    {"uint16 equal", 2, 'u'}, {"uint32 equal", 4, 'u'}, {"uint64 equal", 8, 'u'},
    {"timer", 8, 'i'},        {"float64", 8, 'f'},
};

static int put_leaf(dec *d, msi_buf *out, const char *type, size_t size)
{
    const uint8_t *p = d->raw + d->pos;
    d->pos += size;
    for (size_t i = 0; type && i < sizeof leaf_types / sizeof leaf_types[0]; i++) {
        const struct leaf_type *t = &leaf_types[i];
        if (size != t->width || strcmp(type, t->name) != 0)
            continue;
        uint64_t v = 0;
        for (size_t k = 0; k < size; k++)
            v = (v << 8) | p[k];
        switch (t->kind) {
        case 'b':
            if (v > 1)
                break; /* not a bool after all: bytes */
            return msi_buf_append(out, v ? "\xf5" : "\xf4", 1);
        case 'f': {
            uint8_t f[9] = {0xfb};
            memcpy(f + 1, p, 8);
            return msi_buf_append(out, f, 9);
        }
        case 'i':
            if (size < 8 && (v >> (8 * size - 1)))
                v |= ~(uint64_t)0 << (8 * size); /* sign-extend */
            if ((int64_t)v < 0)
                return cb_head(out, 1, ~v); /* -1 - n */
            return cb_head(out, 0, v);
        default:
            return cb_head(out, 0, v);
        }
        break;
    }
    return cb_str(out, 2, p, size);
}

static int dec_vmsd(dec *d, json_t *desc, msi_buf *out);

/* A positive JSON integer that fits in size_t, or -1. */
static long long json_size(json_t *j)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return -1;
    return json_integer_value(j);
}

/* One element of a field: exactly "size" bytes. */
static int dec_elem(dec *d, json_t *f, msi_buf *out)
{
    long long size = json_size(json_object_get(f, "size"));
    if (size < 0 || (unsigned long long)size > d->n - d->pos)
        return MISMATCH;
    size_t start = d->pos;
    json_t *sub = json_object_get(f, "struct");
    if (!sub && json_object_get(f, "fields"))
        sub = f; /* VMSTATE_WITH_TMP: the description is inline */
    if (sub) {
        if (!json_is_object(sub))
            return MISMATCH;
        int rc = dec_vmsd(d, sub, out);
        if (rc)
            return rc;
        return d->pos - start == (size_t)size ? OK : MISMATCH;
    }
    json_t *type = json_object_get(f, "type");
    return put_leaf(d, out, json_string_value(type), (size_t)size);
}

/* Whether field description @f is named @name. */
static bool same_name(json_t *f, const char *name)
{
    const char *n = json_string_value(json_object_get(f, "name"));
    return n && strcmp(n, name) == 0;
}

/* Adds @key to @seen; MISMATCH when it is there already. */
static int new_key(json_t *seen, const char *key)
{
    if (json_object_get(seen, key))
        return MISMATCH;
    return json_object_set_new(seen, key, json_true()) ? MS_ENOMEM : OK;
}

/* A vmsd: its fields, then its subsections, as one CBOR map. */
static int dec_vmsd(dec *d, json_t *desc, msi_buf *out)
{
    json_t *fields = json_object_get(desc, "fields");
    json_t *subs = json_object_get(desc, "subsections");
    if ((fields && !json_is_array(fields)) || (subs && !json_is_array(subs)))
        return MISMATCH;
    if (++d->depth > MAX_NEST)
        return MISMATCH;
    msi_buf body;
    msi_buf_init(&body, out->alloc);
    json_t *seen = json_object();
    size_t pairs = 0, nf = json_array_size(fields);
    int rc = seen ? OK : MS_ENOMEM;
    for (size_t i = 0; i < nf && !rc;) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name) {
            rc = MISMATCH;
            break;
        }
        if ((rc = new_key(seen, name)) || (rc = cb_text(&body, name)))
            break;
        pairs++;
        /* Consecutive entries of one name are one array, as QEMU's
         * analyze-migration.py reads them (docs/QEMU.md 3.1): alike
         * elements come as one entry with "array_len", others one entry
         * each with "index"; since QEMU 9.1.3 the last of these has no
         * "index", and an array of pointers comes in runs of null and
         * non-null elements. A lone entry with neither is a value. */
        size_t j = i + 1;
        while (j < nf && same_name(json_array_get(fields, j), name))
            j++;
        if (j == i + 1 && !json_object_get(f, "index") && !json_object_get(f, "array_len")) {
            rc = dec_elem(d, f, &body);
            i = j;
            continue;
        }
        uint64_t count = 0, bytes = 0;
        for (size_t k = i; k < j && !rc; k++) {
            json_t *g = json_array_get(fields, k);
            json_t *gi = json_object_get(g, "index"), *alen = json_object_get(g, "array_len");
            long long n = alen ? json_size(alen) : 1, size = json_size(json_object_get(g, "size"));
            /* An index says where its element goes; each element takes
             * at least a byte, which bounds the count by the section. */
            if ((gi && json_size(gi) != (long long)count) || n < 1 || size < 1 ||
                (unsigned long long)n > (d->n - d->pos - bytes) / (size_t)size) {
                rc = MISMATCH;
                break;
            }
            count += (uint64_t)n;
            bytes += (uint64_t)n * (uint64_t)size;
        }
        if (rc || (rc = cb_head(&body, 4, count)))
            break;
        for (size_t k = i; k < j && !rc; k++) {
            json_t *g = json_array_get(fields, k);
            json_t *alen = json_object_get(g, "array_len");
            long long n = alen ? json_size(alen) : 1;
            for (long long e = 0; e < n && !rc; e++)
                rc = dec_elem(d, g, &body);
        }
        i = j;
    }
    /* Subsections follow the fields: 0x05, u8 name length, name, u32
     * version, then the subsection's own fields and subsections. */
    for (size_t i = 0; i < json_array_size(subs) && !rc; i++) {
        json_t *s = json_array_get(subs, i);
        const char *name = json_string_value(json_object_get(s, "vmsd_name"));
        long long version = json_size(json_object_get(s, "version"));
        size_t len = name ? strlen(name) : 0;
        const uint8_t *p = d->raw + d->pos;
        if (!name || len == 0 || len > 255 || version < 0 || version > 0xffffffffLL ||
            d->n - d->pos < 6 + len || p[0] != MQ_SEC_SUBSECTION || p[1] != len ||
            memcmp(p + 2, name, len) != 0 || mq_be32(p + 2 + len) != (uint32_t)version) {
            rc = MISMATCH;
            break;
        }
        d->pos += 6 + len;
        if ((rc = new_key(seen, name)) || (rc = cb_text(&body, name)))
            break;
        pairs++;
        rc = dec_vmsd(d, s, &body);
    }
    if (!rc && !(rc = cb_head(out, 5, pairs)))
        rc = msi_buf_append(out, body.data, body.len);
    msi_buf_free(&body);
    json_decref(seen);
    d->depth--;
    return rc;
}

static const desc_key *find_device(const mq_vmsd *desc, const mq_vmsd_section *s)
{
    return find_key(desc, s->idstr, s->instance, false);
}

static const desc_info *get_info(mq_vmsd *d, size_t index);
static bool decodable(const desc_info *in, size_t n);

int mq_vmsd_encode(const ms_allocator *a, mq_vmsd *desc, const mq_vmsd_section *s,
                   const uint8_t *raw, size_t n, const uint64_t *parts, size_t nparts, msi_buf *out,
                   bool *decoded, const char **schema)
{
    const desc_key *k = desc && s && !s->iterable ? find_device(desc, s) : NULL;
    json_t *dev = k ? json_array_get(desc->devices, k->index) : NULL;
    msi_buf fields;
    msi_buf_init(&fields, a);
    *decoded = false;
    *schema = NULL;
    if (dev) {
        json_t *vn = json_object_get(dev, "vmsd_name");
        json_t *ver = json_object_get(dev, "version");
        if (json_is_string(vn) && json_string_length(vn) > 0)
            *schema = json_string_value(vn);
        /* A description of another version describes other bytes; one that
         * does not account for exactly these bytes cannot decode them, and
         * one that would take more work than they justify is not tried. */
        const desc_info *in = NULL;
        if (!ver || (json_is_integer(ver) && json_integer_value(ver) == (json_int_t)s->version)) {
            if (!(in = get_info(desc, k->index))) {
                msi_buf_free(&fields);
                return MS_ENOMEM;
            }
        }
        if (decodable(in, n)) {
            dec d = {.raw = raw, .n = n, .pos = 0, .depth = 0};
            int rc = dec_vmsd(&d, dev, &fields);
            if (rc < 0) {
                msi_buf_free(&fields);
                return rc;
            }
            *decoded = rc == OK && d.pos == n;
        }
    }
    /* {"raw": bytes[, "parts": [uint...]][, "fields": map]} */
    int rc = cb_head(out, 5, 1 + (nparts > 0) + *decoded);
    if (!rc)
        rc = cb_text(out, "raw");
    if (!rc)
        rc = cb_str(out, 2, raw, n);
    if (!rc && nparts > 0 && !(rc = cb_text(out, "parts")) && !(rc = cb_head(out, 4, nparts)))
        for (size_t i = 0; i < nparts && !rc; i++)
            rc = cb_head(out, 0, parts[i]);
    if (!rc && *decoded && !(rc = cb_text(out, "fields")))
        rc = msi_buf_append(out, fields.data, fields.len);
    msi_buf_free(&fields);
    return rc;
}

/* ------------------------------------------------------------- checks */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* The CBOR head of a length or count, at most. */
#define CB_HEAD 9u

/* What measure() adds up for a description. */
typedef struct measure {
    uint64_t bytes, steps, out;
} measure;

static int add_marker(const ms_allocator *a, desc_info *in, uint64_t pos, const char *name,
                      long long version)
{
    if (in->nmarkers == in->markers_cap) {
        size_t cap = in->markers_cap ? 2 * in->markers_cap : 4;
        desc_marker *m = msi_realloc(a, in->markers, cap * sizeof *m);
        if (!m)
            return MS_ENOMEM;
        in->markers = m;
        in->markers_cap = cap;
    }
    in->markers[in->nmarkers++] = (desc_marker){pos, name, strlen(name), version};
    return 0;
}

/*
 * The bytes a description accounts for: its fields (size times array_len,
 * each index entry once) and its subsections (marker, name, version and
 * their own), as QEMU wrote them (docs/QEMU.md section 3.2). A struct's
 * size must be what its own fields account for. Also what decoding it
 * costs (steps, CBOR bytes; dec_vmsd), and, when @at is not UINT64_MAX (the
 * description starts at byte @at of the section, outside any array), where
 * each subsection header lies, into @in's markers: QEMU's loader expects
 * them there (vmstate_subsection_load). false with @what set when the
 * description cannot be walked; MS_ENOMEM in *@nomem.
 */
static bool measure_desc(const ms_allocator *a, json_t *vmsd, int depth, uint64_t at, desc_info *in,
                         measure *m, char *what, size_t what_size, bool *nomem)
{
    json_t *fields = json_object_get(vmsd, "fields");
    json_t *subs = json_object_get(vmsd, "subsections");
    uint64_t total = 0, steps = 1, out = CB_HEAD;
    if (depth > MAX_NEST) {
        snprintf(what, what_size, "descriptions nest deeper than %d", MAX_NEST);
        return false;
    }
    if ((fields && !json_is_array(fields)) || (subs && !json_is_array(subs))) {
        snprintf(what, what_size, "\"fields\" or \"subsections\" is not an array");
        return false;
    }
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        long long size = json_size(json_object_get(f, "size")), count = 1;
        if (!name || size < 0) {
            snprintf(what, what_size, "field %zu%s%s%s has no name or no size", i, name ? " '" : "",
                     name ? name : "", name ? "'" : "");
            return false;
        }
        json_t *alen = json_object_get(f, "array_len");
        if (alen && (count = json_size(alen)) < 0) {
            snprintf(what, what_size, "field '%s' has a bad array_len", name);
            return false;
        }
        json_t *sub = json_object_get(f, "struct");
        if (!sub && json_object_get(f, "fields"))
            sub = f; /* VMSTATE_WITH_TMP */
        /* One element: a leaf (its bytes, as CBOR) or a struct's map. */
        uint64_t elem_steps = 1, elem_out = sat_add((uint64_t)size, CB_HEAD);
        if (sub) {
            measure inner;
            /* Alike elements hold no subsections (QEMU compresses only those). */
            uint64_t sub_at = alen || at == UINT64_MAX ? UINT64_MAX : at + total;
            if (!json_is_object(sub) ||
                !measure_desc(a, sub, depth + 1, sub_at, in, &inner, what, what_size, nomem))
                return false;
            if (inner.bytes != (uint64_t)size) {
                snprintf(what, what_size,
                         "struct field '%s' is %lld bytes, but its own fields account for %llu",
                         name, size, (unsigned long long)inner.bytes);
                return false;
            }
            elem_steps = sat_add(inner.steps, 1);
            elem_out = inner.out;
        }
        /* Sizes beyond any section (max_section_size) are caught by the
         * comparison; keep the sum from wrapping. */
        if ((unsigned long long)size >
                (UINT64_MAX >> 2) / (unsigned long long)(count ? count : 1) ||
            total > (UINT64_MAX >> 2)) {
            snprintf(what, what_size, "field '%s' accounts for too many bytes", name);
            return false;
        }
        total += (uint64_t)size * (uint64_t)count;
        steps = sat_add(steps, sat_mul(elem_steps, (uint64_t)count));
        out = sat_add(
            out, sat_add(sat_add(strlen(name), 2 * CB_HEAD), sat_mul(elem_out, (uint64_t)count)));
    }
    for (size_t i = 0; i < json_array_size(subs); i++) {
        json_t *sub = json_array_get(subs, i);
        const char *name = json_string_value(json_object_get(sub, "vmsd_name"));
        measure inner;
        if (!name || !*name || strlen(name) > 255) {
            snprintf(what, what_size, "subsection %zu has no vmsd_name of 1 to 255 bytes", i);
            return false;
        }
        if (at != UINT64_MAX &&
            add_marker(a, in, at + total, name, json_size(json_object_get(sub, "version")))) {
            *nomem = true;
            return false;
        }
        uint64_t sub_at = at == UINT64_MAX ? UINT64_MAX : at + total + 6 + strlen(name);
        if (!json_is_object(sub) ||
            !measure_desc(a, sub, depth + 1, sub_at, in, &inner, what, what_size, nomem))
            return false;
        if (total > (UINT64_MAX >> 2) || inner.bytes > (UINT64_MAX >> 2)) {
            snprintf(what, what_size, "subsection '%s' accounts for too many bytes", name);
            return false;
        }
        total += 6 + strlen(name) + inner.bytes;
        steps = sat_add(steps, sat_add(inner.steps, 1));
        out = sat_add(out, sat_add(sat_add(strlen(name), CB_HEAD), inner.out));
    }
    *m = (measure){total, steps, out};
    return true;
}

/* The description at @index, worked out on first use; NULL when memory ran
 * out. */
static const desc_info *get_info(mq_vmsd *d, size_t index)
{
    desc_info *in = &d->info[index];
    if (in->state != INFO_NONE)
        return in->state == INFO_NOMEM ? NULL : in;
    char what[sizeof((mq_vmsd_check *)0)->what];
    bool nomem = false;
    measure m;
    if (measure_desc(d->alloc, json_array_get(d->devices, index), 0, 0, in, &m, what, sizeof what,
                     &nomem)) {
        in->state = INFO_OK;
        in->expected = m.bytes;
        in->steps = m.steps;
        in->out = m.out;
        return in;
    }
    msi_free(d->alloc, in->markers);
    in->markers = NULL;
    in->nmarkers = in->markers_cap = 0;
    if (nomem || !(in->what = msi_strdup(d->alloc, what))) {
        in->state = INFO_NOMEM;
        return NULL;
    }
    in->state = INFO_MALFORMED;
    return in;
}

/* Whether a section of @n bytes is decoded into fields by the description
 * @in: only when it accounts for exactly those bytes, when decoding takes
 * work and output in proportion to them, and when the state still fits a
 * record. */
static bool decodable(const desc_info *in, size_t n)
{
    return in && in->state == INFO_OK && in->expected == n &&
           in->steps <= (uint64_t)MQ_VMSD_STEPS_PER_BYTE * n + MQ_VMSD_STEPS_MIN &&
           in->out <= (uint64_t)MQ_VMSD_OUT_PER_BYTE * n + MQ_VMSD_OUT_MIN &&
           in->out <= MS_MAX_RECORD_PAYLOAD - n;
}

/* Each subsection header where the description puts it, as QEMU's loader
 * expects it. false with c->at and c->what at the first that is not. */
static bool check_markers(const desc_info *in, const uint8_t *raw, size_t n, mq_vmsd_check *c)
{
    for (size_t i = 0; i < in->nmarkers; i++) {
        const desc_marker *mk = &in->markers[i];
        const char *name = mk->name;
        size_t len = mk->len;
        const uint8_t *p = raw + mk->pos;
        if (mk->pos > n || n - mk->pos < 6 + len) {
            c->at = (size_t)mk->pos;
            snprintf(c->what, sizeof c->what, "subsection '%s' runs past the section's end", name);
            return false;
        }
        bool same_name = p[1] == len && memcmp(p + 2, name, len) == 0;
        if (p[0] != MQ_SEC_SUBSECTION || !same_name ||
            (mk->version >= 0 && mq_be32(p + 2 + len) != (uint64_t)mk->version)) {
            c->at = (size_t)mk->pos;
            if (p[0] != MQ_SEC_SUBSECTION)
                snprintf(c->what, sizeof c->what,
                         "subsection '%s' expected (0x05), found byte 0x%02x", name, p[0]);
            else if (!same_name)
                snprintf(c->what, sizeof c->what,
                         "subsection '%s' expected, found another name (%u bytes)", name, p[1]);
            else
                snprintf(c->what, sizeof c->what, "subsection '%s' version %lld expected, found %u",
                         name, mk->version, mq_be32(p + 2 + len));
            return false;
        }
    }
    return true;
}

int mq_vmsd_check_section(mq_vmsd *desc, const mq_vmsd_section *s, const uint8_t *raw, size_t n,
                          mq_vmsd_check *c)
{
    memset(c, 0, sizeof *c);
    c->verdict = MQ_VMSD_NONE;
    if (!desc || !s || json_array_size(desc->devices) == 0)
        return 0; /* a trailer that describes nothing: our exporter's */
    /* A section sent again (QEMU sends one "slirp" instance 0 per user
     * network) takes the next description of its name and instance; the
     * first once there is none left. The group's cursor only moves on. */
    desc_key *k = (desc_key *)find_key(desc, s->idstr, s->instance, false);
    if (k) {
        desc_key *end = desc->keys + desc->nkeys;
        while (k + k->next < end && strcmp(k[k->next].name, k->name) == 0 &&
               k[k->next].instance == k->instance && desc->used[k[k->next].index])
            k->next++;
        if (k + k->next < end && strcmp(k[k->next].name, k->name) == 0 &&
            k[k->next].instance == k->instance)
            k = k + k->next;
    }
    if (k)
        desc->used[k->index] = true;
    if (s->iterable)
        return 0;
    if (!k) {
        const desc_key *other = find_key(desc, s->idstr, 0, true);
        c->verdict = other ? MQ_VMSD_INSTANCE : MQ_VMSD_UNDESCRIBED;
        c->instance = other ? other->instance : -1;
        return 0;
    }
    json_t *found = json_array_get(desc->devices, k->index);
    c->vmsd_name = json_string_value(json_object_get(found, "vmsd_name"));
    json_t *ver = json_object_get(found, "version");
    c->version = json_is_integer(ver) ? (long long)json_integer_value(ver) : -1;
    if (ver && c->version != (long long)s->version) {
        c->verdict = MQ_VMSD_VERSION;
        return 0;
    }
    const desc_info *in = get_info(desc, k->index);
    if (!in)
        return MS_ENOMEM;
    if (in->state == INFO_MALFORMED) {
        c->verdict = MQ_VMSD_MALFORMED;
        snprintf(c->what, sizeof c->what, "%s", in->what);
        return 0;
    }
    c->expected = in->expected;
    if (c->expected != n) {
        c->verdict = MQ_VMSD_SIZE;
        return 0;
    }
    c->verdict = check_markers(in, raw, n, c) ? MQ_VMSD_OK : MQ_VMSD_MARKER;
    return 0;
}

bool mq_vmsd_unused(const mq_vmsd *desc, size_t *iter, const char **name, long long *instance,
                    const char **vmsd_name, bool *twice)
{
    size_t count = desc && desc->used ? json_array_size(desc->devices) : 0;
    for (; *iter < count; (*iter)++) {
        if (desc->used[*iter])
            continue;
        json_t *dev = json_array_get(desc->devices, *iter);
        json_t *inst = json_object_get(dev, "instance_id");
        *name = json_string_value(json_object_get(dev, "name"));
        *instance = json_is_integer(inst) ? (long long)json_integer_value(inst) : -1;
        *vmsd_name = json_string_value(json_object_get(dev, "vmsd_name"));
        *twice = desc->twice[*iter];
        (*iter)++;
        return true;
    }
    return false;
}
