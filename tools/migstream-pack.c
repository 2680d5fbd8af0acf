/*
 * migstream-pack: the inverse of migstream-replay. Packs raw memory images
 * (a pmemsave dump, a core file's RAM, a replay directory) and device state
 * files into a stream:
 *
 *     migstream-pack -o OUT IMAGE                one region at gpa 0
 *     migstream-pack -o OUT --region N:B:F ...   several regions
 *     migstream-pack -o OUT DIR                  a migstream-replay directory
 *
 * Images are read in fixed chunks of the region (memory stays bounded), and
 * the file system's holes (SEEK_DATA/SEEK_HOLE) become ZERO pages without
 * being read. The call sequence given to the writer depends only on the
 * images' contents, never on which of their zeros are holes, and the writer
 * is deterministic: so pack, replay, pack gives the same stream twice.
 */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cbor.h>
#include <jansson.h>

#include "common.h"

#define CHUNK (1u << 20) /* bytes of image handed to the writer per call */

typedef struct pack_region {
    ms_region r;
    char *name;       /* owned; r.name points here */
    const char *path; /* image file (owned by argv or `paths`) */
    int fd;
    uint64_t file_size;
} pack_region;

typedef struct pack_device {
    char *path, *schema;
    uint32_t instance, version;
    uint8_t *state;
    size_t size;
    char *file; /* the state's file, for messages */
} pack_device;

typedef struct pack {
    pack_region *regions;
    size_t nregions;
    pack_device *devices;
    size_t ndevices;
    char *owned[4]; /* writer_name, writer_version, machine, description */
    char **paths;   /* file paths built for a directory's contents */
    size_t npaths;
    ms_writer_options opts;
    uint64_t total_bytes;
} pack;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* ------------------------------------------------------------- arguments */

/* Parses a decimal number with an optional K, M, G or T suffix (powers of
 * 1024), or a 0x-prefixed hexadecimal number. */
static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    unsigned long long v = strtoull(s, &end, hex ? 16 : 10);
    if (errno || end == s || (hex && end == s + 2))
        return false;
    unsigned shift = 0;
    if (!hex && *end) {
        const char *units = "KMGT";
        const char *u = strchr(units, *end >= 'a' && *end <= 'z' ? *end - 'a' + 'A' : *end);
        if (!u || !*u)
            return false;
        shift = 10 * (unsigned)(u - units + 1);
        end++;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static bool parse_decimal_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Splits @s at its last @n colons into n + 1 fields (the first field keeps
 * any colons it holds). Modifies @s. */
static bool split_right(char *s, int n, char **fields)
{
    for (int k = n; k > 0; k--) {
        char *c = strrchr(s, ':');
        if (!c)
            return false;
        *c = 0;
        fields[k] = c + 1;
    }
    fields[0] = s;
    return true;
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* ------------------------------------------------------------ input files */

/* JSON values a JSON input of the tool (a device state, the manifest) may
 * hold: jansson takes tens of bytes for each, so a file of many small
 * values took gigabytes (64 MB: 5 GB). Counted before parsing. */
#define MAX_JSON_VALUES (1u << 20)

/* Bytes of manifest.json at most: 4096 regions and thousands of devices
 * take far less. */
#define MAX_MANIFEST (16u << 20)

/* Parses the JSON text @buf of @n bytes from @path, refusing (exit 1) a
 * text of more than MAX_JSON_VALUES values; NULL after printing why. */
static json_t *load_json(const char *path, const uint8_t *buf, size_t n, size_t flags, int *rc)
{
    size_t values = ms_json_values(buf, n);
    *rc = MST_EXIT_FAIL;
    if (values > MAX_JSON_VALUES) {
        mst_error("%s: about %zu JSON values, more than this tool reads (%u)", path, values,
                  MAX_JSON_VALUES);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)buf, n, flags | JSON_REJECT_DUPLICATES, &err);
    if (!j)
        mst_error("%s:%d:%d: %s", path, err.line, err.column, err.text);
    return j;
}

/* Reads a whole small file (a device state, at most what a record holds;
 * the manifest, at most @limit bytes) into memory. */
static int read_small_file(const char *path, uint8_t **out, size_t *n, uint64_t limit)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mst_error("cannot open %s: %s", path, strerror(errno));
        return MST_EXIT_ERROR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mst_error("%s: not a regular file", path);
        close(fd);
        return MST_EXIT_ERROR;
    }
    if ((uint64_t)st.st_size > limit) {
        if (limit == MS_MAX_RECORD_PAYLOAD)
            mst_error("%s: %lld bytes is more than a device state can hold (%u)", path,
                      (long long)st.st_size, MS_MAX_RECORD_PAYLOAD);
        else
            mst_error("%s: %lld bytes is more than this tool reads (%llu)", path,
                      (long long)st.st_size, (unsigned long long)limit);
        close(fd);
        return MST_EXIT_FAIL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        mst_error("out of memory reading %s", path);
        close(fd);
        return MST_EXIT_ERROR;
    }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            mst_error("cannot read %s: %s", path, k < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            return MST_EXIT_ERROR;
        }
        got += (size_t)k;
    }
    close(fd);
    *out = buf;
    *n = size;
    return MST_EXIT_OK;
}

/* ------------------------------------------------------------ JSON to CBOR */

typedef struct cbuf {
    uint8_t *p;
    size_t len, cap;
} cbuf;

static uint8_t *cb_room(cbuf *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return NULL;
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

/* Appends one item head (or a whole scalar) encoded by libcbor. */
static int cb_head(cbuf *b, size_t (*enc)(size_t, unsigned char *, size_t), size_t v)
{
    uint8_t *p = cb_room(b, 9);
    if (!p)
        return -1;
    b->len += enc(v, p, 9);
    return 0;
}

static int cb_text(cbuf *b, const char *s, size_t n)
{
    if (cb_head(b, cbor_encode_string_start, n))
        return -1;
    uint8_t *p = cb_room(b, n);
    if (!p)
        return -1;
    memcpy(p, s, n);
    b->len += n;
    return 0;
}

/* JSON to CBOR: objects become maps with text keys (in file order), arrays
 * arrays, integers the shortest integer, reals 64-bit floats, strings text,
 * true/false/null the simple values. Returns 0 or -1 (no memory). */
static int json_to_cbor(cbuf *b, json_t *j)
{
    uint8_t *p = cb_room(b, 9);
    if (!p)
        return -1;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        if (cb_head(b, cbor_encode_map_start, json_object_size(j)))
            return -1;
        json_object_foreach(j, key, v)
        {
            if (cb_text(b, key, strlen(key)) || json_to_cbor(b, v))
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (cb_head(b, cbor_encode_array_start, json_array_size(j)))
            return -1;
        json_array_foreach(j, i, v)
        {
            if (json_to_cbor(b, v))
                return -1;
        }
        return 0;
    }
    case JSON_STRING:
        return cb_text(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        /* -1 - v does not overflow for any negative v */
        b->len += v >= 0 ? cbor_encode_uint((uint64_t)v, p, 9)
                         : cbor_encode_negint((uint64_t)(-(v + 1)), p, 9);
        return 0;
    }
    case JSON_REAL:
        b->len += cbor_encode_double(json_real_value(j), p, 9);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        b->len += cbor_encode_bool(json_is_true(j), p, 9);
        return 0;
    case JSON_NULL:
        b->len += cbor_encode_null(p, 9);
        return 0;
    }
    return -1;
}

/* Loads a device state file: FILE.json is converted, anything else is taken
 * as CBOR (checked later by the writer). */
static int load_state(pack_device *d)
{
    uint8_t *buf;
    size_t n;
    int rc = read_small_file(d->file, &buf, &n, MS_MAX_RECORD_PAYLOAD);
    if (rc)
        return rc;
    size_t fl = strlen(d->file);
    if (fl < 5 || strcmp(d->file + fl - 5, ".json") != 0) {
        d->state = buf;
        d->size = n;
        return MST_EXIT_OK;
    }
    json_t *j = load_json(d->file, buf, n, JSON_DECODE_ANY, &rc);
    free(buf);
    if (!j)
        return rc;
    cbuf b = {NULL, 0, 0};
    rc = json_to_cbor(&b, j);
    json_decref(j);
    if (rc) {
        mst_error("out of memory converting %s", d->file);
        free(b.p);
        return MST_EXIT_ERROR;
    }
    d->state = b.p;
    d->size = b.len;
    return MST_EXIT_OK;
}

static int open_image(pack_region *pr)
{
    if (strcmp(pr->path, "-") == 0) {
        mst_error("an image must be a file, not standard input (its size is needed first)");
        return MST_EXIT_ERROR;
    }
    pr->fd = open(pr->path, O_RDONLY | O_CLOEXEC);
    if (pr->fd < 0) {
        mst_error("cannot open %s: %s", pr->path, strerror(errno));
        return MST_EXIT_ERROR;
    }
    struct stat st;
    off_t end;
    if (fstat(pr->fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) ||
        (end = lseek(pr->fd, 0, SEEK_END)) < 0) {
        mst_error("%s: not a regular file or block device", pr->path);
        return MST_EXIT_ERROR;
    }
    pr->file_size = (uint64_t)end;
    return MST_EXIT_OK;
}

/* ---------------------------------------------------- replay directories */

static const char *dir_path(pack *pk, const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n), **v = realloc(pk->paths, (pk->npaths + 1) * sizeof *v);
    if (v)
        pk->paths = v;
    if (!p || !v) {
        free(p);
        return NULL;
    }
    snprintf(p, n, "%s/%s", dir, name);
    pk->paths[pk->npaths++] = p;
    return p;
}

/* Manifest field accessors: print "MANIFEST: WHERE: KEY ..." and fail. */
static const char *mf_file;

static bool mf_uint(json_t *o, const char *where, const char *key, uint64_t max, uint64_t *v)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) > max) {
        mst_error("%s: %s: \"%s\" must be an integer from 0 to %" PRIu64, mf_file, where, key, max);
        return false;
    }
    *v = (uint64_t)json_integer_value(j);
    return true;
}

/* A u64 member under the u64 rule (docs/OUTPUT.md): a decimal string; in
 * a manifest of layout 1 (@number), an integer. */
static bool mf_u64(json_t *o, const char *where, const char *key, bool number, uint64_t max,
                   uint64_t *v)
{
    if (number)
        return mf_uint(o, where, key, max, v);
    json_t *j = json_object_get(o, key);
    const char *t = json_is_string(j) ? json_string_value(j) : "";
    char *end;
    errno = 0;
    unsigned long long x = *t >= '0' && *t <= '9' ? strtoull(t, &end, 10) : 0;
    if (!*t || *t < '0' || *t > '9' || errno || *end || x > max) {
        mst_error("%s: %s: \"%s\" must be a string of decimal digits, from 0 to %" PRIu64,
                  mf_file, where, key, max);
        return false;
    }
    *v = x;
    return true;
}

/* A string member; with @nullable, null (or absence) gives NULL. */
static bool mf_string(json_t *o, const char *where, const char *key, bool nullable, const char **s)
{
    json_t *j = json_object_get(o, key);
    if (nullable && (!j || json_is_null(j))) {
        *s = NULL;
        return true;
    }
    if (!json_is_string(j) || strlen(json_string_value(j)) != json_string_length(j)) {
        mst_error("%s: %s: \"%s\" must be a string%s", mf_file, where, key,
                  nullable ? " or null" : "");
        return false;
    }
    *s = json_string_value(j);
    return true;
}

static bool mf_expect(json_t *o, const char *where, const char *key, const char *want)
{
    const char *s;
    if (!mf_string(o, where, key, false, &s))
        return false;
    if (strcmp(s, want) != 0) {
        mst_error("%s: %s: \"%s\" is \"%s\", expected \"%s\"", mf_file, where, key, s, want);
        return false;
    }
    return true;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

/* Reads DIR/manifest.json (written by migstream-replay): writer options,
 * regions in manifest order with their ids, and devices. File names are
 * derived from ids and positions, never taken from the manifest (which only
 * has to agree). */
static int load_dir(pack *pk, const char *dir)
{
    const char *mpath = dir_path(pk, dir, "manifest.json");
    if (!mpath) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    mf_file = mpath;
    uint8_t *text;
    size_t len;
    int rc = read_small_file(mpath, &text, &len, MAX_MANIFEST);
    if (rc)
        return rc;
    json_t *m = load_json(mpath, text, len, 0, &rc);
    free(text);
    if (!m)
        return rc;
    rc = MST_EXIT_FAIL;
    uint64_t v, ps;
    const char *s[4];
    json_t *regions = json_object_get(m, "regions"), *devices = json_object_get(m, "devices");
    /* Layout 2 ("schema_version": 2) is what migstream-replay writes; layout
     * 1 ("manifest_version": 1, sizes as numbers) what it wrote before. */
    bool layout1 = json_object_get(m, "schema_version") == NULL;
    if (!mf_uint(m, "top level", layout1 ? "manifest_version" : "schema_version", UINT32_MAX, &v))
        goto out;
    if (v != (layout1 ? 1 : MS_REPLAY_DIR_SCHEMA_VERSION)) {
        mst_error("%s: %s %" PRIu64 " is not supported (this tool reads schema_version %d, "
                  "and manifest_version 1)",
                  mpath, layout1 ? "manifest_version" : "schema_version", v,
                  MS_REPLAY_DIR_SCHEMA_VERSION);
        goto out;
    }
    if (!mf_uint(m, "top level", "page_size", UINT32_MAX, &ps) ||
        !mf_string(m, "top level", "writer_name", false, &s[0]) ||
        !mf_string(m, "top level", "writer_version", false, &s[1]) ||
        !mf_string(m, "top level", "machine", true, &s[2]) ||
        !mf_string(m, "top level", "description", true, &s[3]))
        goto out;
    if (!json_is_array(regions) || !json_is_array(devices)) {
        mst_error("%s: \"regions\" and \"devices\" must be arrays", mpath);
        goto out;
    }
    bool oom = false;
    for (int i = 0; i < 4; i++)
        pk->owned[i] = dup_or_null(s[i], &oom);
    pk->opts.page_size = (uint32_t)ps;
    pk->opts.writer_name = pk->owned[0];
    pk->opts.writer_version = pk->owned[1];
    pk->opts.machine = pk->owned[2];
    pk->opts.description = pk->owned[3];

    size_t nr = json_array_size(regions), nd = json_array_size(devices);
    pk->regions = calloc(nr ? nr : 1, sizeof *pk->regions);
    pk->devices = calloc(nd ? nd : 1, sizeof *pk->devices);
    if (oom || !pk->regions || !pk->devices) {
        mst_error("out of memory");
        rc = MST_EXIT_ERROR;
        goto out;
    }
    char where[64], name[64];
    for (size_t i = 0; i < nr; i++) {
        json_t *r = json_array_get(regions, i);
        pack_region *pr = &pk->regions[i];
        const char *rname, *gpa;
        uint64_t id, size, rps;
        pr->fd = -1;
        snprintf(where, sizeof where, "regions[%zu]", i);
        if (!json_is_object(r)) {
            mst_error("%s: %s must be an object", mpath, where);
            goto out;
        }
        if (!mf_uint(r, where, "id", UINT32_MAX, &id) ||
            !mf_string(r, where, "name", false, &rname) ||
            !mf_string(r, where, "gpa", true, &gpa) ||
            !mf_u64(r, where, "size", layout1, INT64_MAX, &size) ||
            !mf_uint(r, where, "page_size", UINT32_MAX, &rps))
            goto out;
        snprintf(name, sizeof name, "region-%" PRIu64 ".img", id);
        if (!mf_expect(r, where, "file", name))
            goto out;
        pr->r.id = (uint32_t)id;
        pr->r.size = size;
        pr->r.page_size = (uint32_t)rps;
        if (gpa) {
            if (strncmp(gpa, "0x", 2) != 0 || !parse_u64(gpa, &pr->r.gpa)) {
                mst_error("%s: %s: \"gpa\" must be a hexadecimal string (\"0x...\") or null", mpath,
                          where);
                goto out;
            }
            pr->r.has_gpa = true;
        }
        pk->nregions++;
        if (!(pr->name = strdup(rname)) || !(pr->path = dir_path(pk, dir, name))) {
            mst_error("out of memory");
            rc = MST_EXIT_ERROR;
            goto out;
        }
        pr->r.name = pr->name;
    }
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(devices, i);
        pack_device *pd = &pk->devices[i];
        const char *path, *schema;
        uint64_t inst, ver;
        snprintf(where, sizeof where, "devices[%zu]", i);
        if (!json_is_object(d)) {
            mst_error("%s: %s must be an object", mpath, where);
            goto out;
        }
        if (!mf_string(d, where, "path", false, &path) ||
            !mf_uint(d, where, "instance", UINT32_MAX, &inst) ||
            !mf_string(d, where, "schema", false, &schema) ||
            !mf_uint(d, where, "version", UINT32_MAX, &ver))
            goto out;
        snprintf(name, sizeof name, "device-%zu.cbor", i);
        if (!mf_expect(d, where, "cbor", name))
            goto out;
        pk->ndevices++;
        pd->instance = (uint32_t)inst;
        pd->version = (uint32_t)ver;
        const char *file = dir_path(pk, dir, name);
        if (!(pd->path = strdup(path)) || !(pd->schema = strdup(schema)) || !file ||
            !(pd->file = strdup(file))) {
            mst_error("out of memory");
            rc = MST_EXIT_ERROR;
            goto out;
        }
    }
    rc = MST_EXIT_OK;
out:
    json_decref(m);
    return rc;
}

/* ------------------------------------------------------------------ pages */

/* Fills @buf with [off, off + len) of the image, reading only the ranges the
 * file system holds as data (all of it when it cannot tell). */
static int read_chunk(const pack_region *pr, uint8_t *buf, uint64_t off, size_t len, bool *seek)
{
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        uint64_t stop = end;
        if (*seek) {
            off_t d = lseek(pr->fd, (off_t)pos, SEEK_DATA);
            if (d < 0 && errno == ENXIO) {
                d = (off_t)end; /* no data after pos */
            } else if (d < 0) {
                *seek = false; /* not supported here: read everything */
                d = (off_t)pos;
            }
            if ((uint64_t)d > pos) {
                uint64_t z = (uint64_t)d < end ? (uint64_t)d : end;
                memset(buf + (pos - off), 0, (size_t)(z - pos));
                pos = z;
                continue;
            }
            if (*seek) {
                off_t h = lseek(pr->fd, (off_t)pos, SEEK_HOLE);
                if (h > (off_t)pos && (uint64_t)h < end)
                    stop = (uint64_t)h;
            }
        }
        while (pos < stop) {
            ssize_t k = pread(pr->fd, buf + (pos - off), (size_t)(stop - pos), (off_t)pos);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                mst_error("cannot read %s at byte %" PRIu64 ": %s", pr->path, pos,
                          k < 0 ? strerror(errno) : "file shrank");
                return -1;
            }
            pos += (uint64_t)k;
        }
    }
    return 0;
}

/* Hands the region to the writer chunk by chunk on a fixed grid from the
 * region's start. A chunk holding any data goes through ms_writer_pages()
 * (holes in it read as zeros); a run of chunks wholly inside a hole goes
 * through ms_writer_zero_pages() at once, which the writer treats exactly
 * like all-zero pages given to ms_writer_pages(). */
static int pack_region_pages(ms_writer *w, const pack_region *pr, uint8_t *buf, size_t chunk,
                             mst_progress *pg, uint64_t *done, uint64_t *pages)
{
    const uint64_t size = pr->r.size, ps = pr->r.page_size;
    bool seek = true;
    uint64_t off = 0;
    while (off < size) {
        if (got_signal)
            return -1;
        size_t len = size - off < chunk ? (size_t)(size - off) : chunk;
        if (seek) {
            off_t d = lseek(pr->fd, (off_t)off, SEEK_DATA);
            if (d < 0 && errno == ENXIO)
                d = (off_t)size;
            else if (d < 0)
                seek = false;
            if (seek && (uint64_t)d >= off + len) {
                uint64_t hole_end = (uint64_t)d < size ? (uint64_t)d : size;
                uint64_t span = hole_end == size ? size - off : (hole_end - off) / chunk * chunk;
                if (ms_writer_zero_pages(w, pr->r.id, off / ps, span / ps)) {
                    mst_error("%s", ms_writer_errmsg(w));
                    return -1;
                }
                off += span;
                *done += span;
                *pages += span / ps;
                mst_progress_update(pg, *done, *pages);
                continue;
            }
        }
        if (read_chunk(pr, buf, off, len, &seek))
            return -1;
        if (ms_writer_pages(w, pr->r.id, off / ps, len / ps, buf)) {
            mst_error("%s", ms_writer_errmsg(w));
            return -1;
        }
        off += len;
        *done += len;
        *pages += len / ps;
        mst_progress_update(pg, *done, *pages);
    }
    return 0;
}

/* ------------------------------------------------------------------- main */

static int device_order(const void *a, const void *b)
{
    const pack_device *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    return x->instance < y->instance ? -1 : x->instance > y->instance;
}

static int discard(void *ctx, const struct iovec *iov, int iovcnt)
{
    (void)ctx;
    (void)iov;
    (void)iovcnt;
    return 0;
}

/* Declares every region and writes every device state to @w. */
static int declare(ms_writer *w, const pack *pk, int refusal)
{
    for (size_t i = 0; i < pk->nregions; i++)
        if (ms_writer_add_region(w, &pk->regions[i].r)) {
            mst_error("%s", ms_writer_errmsg(w));
            return refusal;
        }
    return 0;
}

static int write_devices(ms_writer *w, const pack *pk)
{
    for (size_t i = 0; i < pk->ndevices; i++) {
        const pack_device *d = &pk->devices[i];
        if (ms_writer_device(w, d->path, d->instance, d->schema, d->version, d->state, d->size)) {
            int rc = ms_writer_status(w);
            mst_error("%s: %s", d->file, ms_writer_errmsg(w));
            return rc == MS_ECBOR || rc == MS_ELIMIT || rc == MS_EINVAL ? MST_EXIT_FAIL
                                                                        : MST_EXIT_ERROR;
        }
    }
    return 0;
}

static void pack_free(pack *pk)
{
    for (size_t i = 0; i < pk->nregions; i++) {
        free(pk->regions[i].name);
        if (pk->regions[i].fd >= 0)
            close(pk->regions[i].fd);
    }
    for (size_t i = 0; i < pk->ndevices; i++) {
        free(pk->devices[i].path);
        free(pk->devices[i].schema);
        free(pk->devices[i].state);
        free(pk->devices[i].file);
    }
    for (size_t i = 0; i < pk->npaths; i++)
        free(pk->paths[i]);
    for (int i = 0; i < 4; i++)
        free(pk->owned[i]);
    free(pk->paths);
    free(pk->regions);
    free(pk->devices);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] -o OUT IMAGE\n"
            "       %s [options] -o OUT --region NAME:BASE:FILE [--region ...]\n"
            "       %s [options] -o OUT DIR\n"
            "Packs raw memory images and device states into a stream; DIR is a directory\n"
            "written by migstream-replay. OUT - writes to standard output.\n"
            "\n"
            "  -o, --output OUT              stream to create (required)\n"
            "      --force                   replace OUT if it exists\n"
            "      --region NAME:BASE:FILE   a region from FILE at guest-physical BASE\n"
            "                                (- for none); repeatable\n"
            "      --page-size SIZE          page size of the regions (default 4096)\n"
            "      --device PATH:SCHEMA:VERSION:FILE\n"
            "                                a device's state, FILE in CBOR or, when named\n"
            "                                *.json, JSON; repeatable\n"
            "      --compress LEVEL          zstd level for page data, 0 (off) to 19\n"
            "      --threads N               compress on N threads (1 to 64; same stream)\n"
            "      --fill                    send pages of one repeated 8-byte word as FILL\n"
            "                                pages (format 1.1, feature FILL): 16 bytes\n"
            "                                instead of a page of data\n"
            "      --dedup                   send pages equal to earlier ones as references\n"
            "                                (format 1.3, DUPLICATE pages)\n"
            "      --dedup-pages N           pages --dedup remembers (default 16384)\n"
            "      --window                  compress each batch with the previous one as\n"
            "                                its window (format 1.3; with --compress)\n",
            mst_prog, mst_prog, mst_prog);
    mst_print_progress_help(f, 29, true);
    fputs("  -h, --help                    show this help and exit\n"
          "  -V, --version                 show the version and exit\n"
          "\n"
          "An input whose contents are refused (exit status 1) writes nothing.\n"
          "\n",
          f);
    mst_print_exit_table(f);
}

/* The command line, before any file is looked at. */
typedef struct args {
    const char *out, *input; /* input: IMAGE or DIR, NULL with --region */
    bool force, quiet, have_ps, dir_mode, fill;
    uint64_t page_size, level, threads;
    uint64_t features, dedup_pages; /* --dedup, --window; --dedup-pages */
    char **regions, **devices; /* the --region and --device values */
    size_t nregions, ndevices;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    enum {
        O_FORCE = 256,
        O_REGION,
        O_PAGE_SIZE,
        O_DEVICE,
        O_COMPRESS,
        O_THREADS,
        O_FILL,
        O_DEDUP,
        O_DEDUP_PAGES,
        O_WINDOW
    };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, O_FORCE},
        {"region", required_argument, NULL, O_REGION},
        {"page-size", required_argument, NULL, O_PAGE_SIZE},
        {"device", required_argument, NULL, O_DEVICE},
        {"compress", required_argument, NULL, O_COMPRESS},
        {"threads", required_argument, NULL, O_THREADS},
        {"fill", no_argument, NULL, O_FILL},
        {"dedup", no_argument, NULL, O_DEDUP},
        {"dedup-pages", required_argument, NULL, O_DEDUP_PAGES},
        {"window", no_argument, NULL, O_WINDOW},
        MST_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    a->page_size = 4096;
    a->threads = 1;
    a->regions = calloc((size_t)argc, sizeof *a->regions);
    a->devices = calloc((size_t)argc, sizeof *a->devices);
    if (!a->regions || !a->devices) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    opterr = 0; /* messages below, as "PROG: ..." */
    for (int opt; (opt = getopt_long(argc, argv, ":o:qhV", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'o':
            a->out = optarg;
            break;
        case O_FORCE:
            a->force = true;
            break;
        case O_FILL:
            a->fill = true;
            break;
        case O_REGION:
            a->regions[a->nregions++] = optarg;
            break;
        case O_DEVICE:
            a->devices[a->ndevices++] = optarg;
            break;
        case O_PAGE_SIZE:
            a->have_ps = true;
            if (!parse_u64(optarg, &a->page_size) || !is_pow2(a->page_size) ||
                a->page_size < MS_MIN_PAGE_SIZE || a->page_size > MS_MAX_PAGE_SIZE)
                return mst_usage_error("--page-size %s: must be a power of two from 4096 to 16M",
                                       optarg);
            break;
        case O_COMPRESS:
            if (!parse_u64(optarg, &a->level) || a->level > 19)
                return mst_usage_error("--compress %s: must be 0 (off) to 19", optarg);
            break;
        case O_DEDUP:
            a->features |= MS_FEATURE_DUPLICATES;
            break;
        case O_DEDUP_PAGES:
            if (!parse_u64(optarg, &a->dedup_pages) || a->dedup_pages < 1 ||
                a->dedup_pages > (1u << 22))
                return mst_usage_error("--dedup-pages %s: must be 1 to 4194304", optarg);
            a->features |= MS_FEATURE_DUPLICATES;
            break;
        case O_WINDOW:
            a->features |= MS_FEATURE_ZSTD_WINDOW;
            break;
        case O_THREADS:
            if (!parse_u64(optarg, &a->threads) || a->threads < 1 || a->threads > 64)
                return mst_usage_error("--threads %s: must be 1 to 64", optarg);
            break;
        default: {
            int rc = mst_common_option(opt, argv, &a->quiet, usage);
            if (rc)
                return rc;
            break;
        }
        }
    }
    int npos = argc - optind;
    struct stat st;
    if (!a->out || !*a->out)
        return mst_usage_error("-o OUT is required");
    if (a->nregions && npos != 0)
        return mst_usage_error("--region and an IMAGE or DIR exclude each other");
    if (!a->nregions && npos != 1)
        return mst_usage_error("expected exactly one IMAGE or DIR");
    a->input = npos ? argv[optind] : NULL;
    a->dir_mode = a->input && stat(a->input, &st) == 0 && S_ISDIR(st.st_mode);
    if (a->dir_mode && (a->ndevices || a->have_ps))
        return mst_usage_error("--device and --page-size do not apply to a replay directory "
                               "(its manifest gives both)");
    return 0;
}

/* IMAGE or --region arguments, and --device arguments, into @pk. */
static int load_args(pack *pk, const args *a)
{
    pk->opts.writer_name = "migstream-pack";
    pk->opts.writer_version = ms_version_string();
    pk->opts.page_size =
        (uint32_t)(a->page_size < MS_MAX_BASE_PAGE_SIZE ? a->page_size : MS_MAX_BASE_PAGE_SIZE);
    size_t nr = a->nregions ? a->nregions : 1;
    pk->regions = calloc(nr, sizeof *pk->regions);
    pk->devices = calloc(a->ndevices ? a->ndevices : 1, sizeof *pk->devices);
    if (!pk->regions || !pk->devices) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    for (size_t i = 0; i < nr; i++) {
        pack_region *pr = &pk->regions[i];
        pr->fd = -1;
        pk->nregions++;
        pr->r.id = (uint32_t)i;
        pr->r.page_size = (uint32_t)a->page_size;
        pr->r.has_gpa = true;
        if (!a->nregions) {
            pr->name = strdup("ram");
            pr->path = a->input;
        } else {
            char *f[3], *arg = a->regions[i];
            char *copy = strdup(arg);
            if (!copy || !split_right(copy, 2, f) || !*f[0] || !*f[2] ||
                !(strcmp(f[1], "-") == 0 || parse_u64(f[1], &pr->r.gpa))) {
                free(copy);
                return mst_usage_error("--region %s: expected NAME:BASE:FILE (BASE a number or -)",
                                       arg);
            }
            pr->r.has_gpa = strcmp(f[1], "-") != 0;
            pr->name = strdup(f[0]);
            pr->path = arg + (f[2] - copy); /* FILE within argv, which outlives pk */
            free(copy);
        }
        if (!pr->name) {
            mst_error("out of memory");
            return MST_EXIT_ERROR;
        }
        pr->r.name = pr->name;
    }
    for (size_t i = 0; i < a->ndevices; i++) {
        pack_device *pd = &pk->devices[i];
        char *f[4], *arg = a->devices[i];
        char *copy = strdup(arg);
        pk->ndevices++;
        if (!copy || !split_right(copy, 3, f) || !*f[0] || !*f[1] || !*f[3] ||
            !parse_decimal_u32(f[2], &pd->version)) {
            free(copy);
            return mst_usage_error("--device %s: expected PATH:SCHEMA:VERSION:FILE (VERSION a "
                                   "decimal number)",
                                   arg);
        }
        pd->path = strdup(f[0]);
        pd->schema = strdup(f[1]);
        pd->file = strdup(f[3]);
        free(copy);
        if (!pd->path || !pd->schema || !pd->file) {
            mst_error("out of memory");
            return MST_EXIT_ERROR;
        }
    }
    return 0;
}

/* Opens the images and loads the device states, then checks everything on a
 * writer that discards its output, so that a refused input creates no output
 * at all. */
static int check_inputs(pack *pk, const args *a)
{
    int rc = 0;
    for (size_t i = 0; i < pk->nregions; i++) {
        pack_region *pr = &pk->regions[i];
        if ((rc = open_image(pr)))
            return rc;
        if (a->dir_mode && pr->file_size != pr->r.size) {
            mst_error("%s: %" PRIu64 " bytes, but the manifest gives region %" PRIu32
                      " a size of %" PRIu64,
                      pr->path, pr->file_size, pr->r.id, pr->r.size);
            return MST_EXIT_FAIL;
        }
        if (!a->dir_mode && (pr->file_size == 0 || pr->file_size % a->page_size)) {
            mst_error("%s: %" PRIu64 " bytes is not a non-zero multiple of the page size %" PRIu64,
                      pr->path, pr->file_size, a->page_size);
            return MST_EXIT_FAIL;
        }
        pr->r.size = pr->file_size;
        pk->total_bytes += pr->file_size;
        /* Reopened when packed: a directory may hold thousands of images. */
        close(pr->fd);
        pr->fd = -1;
    }
    for (size_t i = 0; i < pk->ndevices; i++)
        if ((rc = load_state(&pk->devices[i])))
            return rc;
    /* The stream's device order: by path, then instance (the order
     * migstream-replay lists them in), whatever the order given. */
    qsort(pk->devices, pk->ndevices, sizeof *pk->devices, device_order);
    for (size_t i = 1; i < pk->ndevices; i++)
        if (device_order(&pk->devices[i - 1], &pk->devices[i]) == 0) {
            mst_error("device \"%s\" instance %" PRIu32 " is given twice", pk->devices[i].path,
                      pk->devices[i].instance);
            return a->dir_mode ? MST_EXIT_FAIL : MST_EXIT_ERROR;
        }
    /* A region the writer refuses is a bad argument, or a bad manifest. */
    const int refused = a->dir_mode ? MST_EXIT_FAIL : MST_EXIT_ERROR;
    ms_writer *dry = ms_writer_new(&pk->opts, discard, NULL);
    if (!dry) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    if (ms_writer_status(dry)) {
        mst_error("%s", ms_writer_errmsg(dry));
        rc = refused;
    } else if (!(rc = declare(dry, pk, refused))) {
        rc = write_devices(dry, pk);
    }
    ms_writer_free(dry);
    return rc;
}

static int write_stream(pack *pk, const args *a)
{
    bool to_stdout = strcmp(a->out, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        mst_error("refusing to write a stream to a terminal");
        return MST_EXIT_ERROR;
    }
    mst_out o;
    if (mst_out_open(&o, a->out, a->force))
        return MST_EXIT_ERROR;
    if (!to_stdout) {
        /* An interrupted run removes its temporary file. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
        struct sigaction old;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
                sigaction(sigs[i], &sa, NULL); /* not when ignored (nohup) */
    }
    size_t chunk = CHUNK;
    for (size_t i = 0; i < pk->nregions; i++)
        if (pk->regions[i].r.page_size > chunk)
            chunk = pk->regions[i].r.page_size;
    int rc = MST_EXIT_OK;
    uint8_t *buf = malloc(chunk);
    ms_writer *w = buf ? ms_writer_new_fd(&pk->opts, o.fd) : NULL;
    mst_progress pg;
    mst_progress_init(&pg, a->quiet, pk->total_bytes);
    uint64_t done_bytes = 0, done_pages = 0;
    if (!w) {
        mst_error("out of memory");
        rc = MST_EXIT_ERROR;
    } else if (declare(w, pk, MST_EXIT_ERROR)) {
        rc = MST_EXIT_ERROR;
    }
    for (size_t i = 0; i < pk->nregions && !rc; i++) {
        pack_region *pr = &pk->regions[i];
        if (open_image(pr)) {
            rc = MST_EXIT_ERROR;
        } else if (pr->file_size != pr->r.size) {
            mst_error("%s changed size while packing", pr->path);
            rc = MST_EXIT_ERROR;
        } else if (pack_region_pages(w, pr, buf, chunk, &pg, &done_bytes, &done_pages)) {
            rc = MST_EXIT_ERROR;
        }
        if (pr->fd >= 0)
            close(pr->fd);
        pr->fd = -1;
    }
    /* Checked already: a failure now is the output's. */
    if (!rc && !got_signal && write_devices(w, pk))
        rc = MST_EXIT_ERROR;
    if (!rc && !got_signal && ms_writer_finish(w, NULL)) {
        mst_error("%s", ms_writer_errmsg(w));
        rc = MST_EXIT_ERROR;
    }
    mst_progress_done(&pg);
    ms_writer_free(w);
    free(buf);
    if (!rc && !got_signal && mst_out_commit(&o))
        rc = MST_EXIT_ERROR;
    if (rc || got_signal)
        mst_out_abort(&o);
    return got_signal ? MST_EXIT_ERROR : rc;
}

int main(int argc, char **argv)
{
    args a;
    pack pk;
    memset(&a, 0, sizeof a);
    memset(&pk, 0, sizeof pk);
    ms_writer_options_init(&pk.opts);
    mst_init(argv[0]);
    int rc = parse_args(argc, argv, &a);
    if (rc == 0)
        rc = a.dir_mode ? load_dir(&pk, a.input) : load_args(&pk, &a);
    pk.opts.compress_level = (int)a.level;
    pk.opts.threads = (uint32_t)a.threads;
    if (a.fill)
        pk.opts.features |= MS_FEATURE_FILL;
    pk.opts.features |= a.features;
    pk.opts.dedup_pages = (uint32_t)a.dedup_pages;
    if (rc == 0)
        rc = check_inputs(&pk, &a);
    if (rc == 0)
        rc = write_stream(&pk, &a);
    pack_free(&pk);
    free(a.regions);
    free(a.devices);
    if (got_signal) { /* die of it as we would have, the temporary file gone */
        signal(got_signal, SIG_DFL);
        raise(got_signal);
    }
    return rc < 0 ? MST_EXIT_OK : rc; /* -1: --help or --version */
}
