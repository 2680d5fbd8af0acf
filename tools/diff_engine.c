/*
 * Comparing two streams by their final state (diff_engine.h).
 *
 * Each stream is replayed (ms_replay) into a "side":
 *   - per region, a page-state map (tools/pagemap.h), so memory follows
 *     what the stream sent, not the sizes its regions declare;
 *   - the contents of DATA pages, in an unlinked sparse temporary file (one
 *     per side; each map chunk that receives data gets its own window);
 *   - the last state of each device (path, instance), in memory.
 * The two sides are then walked together and every difference is printed,
 * as text or as JSON Lines (docs/man/migstream-diff.1 is the reference for
 * both and for every decision below).
 */
#define _GNU_SOURCE /* O_CLOEXEC, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "diff_engine.h"
#include "inplace.h"
#include "pagemap.h"

/* Page states as this engine tracks them (pagemap.h): final contents are
 * compared, so a DATA page of zero bytes is recorded as ZERO and a FILL page
 * as the DATA it stands for. DISCARDED ("don't care") and IN_PLACE (not in
 * the stream: compared by address) keep their own states. */
enum {
    ST_MISSING = MST_PM_MISSING,
    ST_DATA = MST_PM_DATA,
    ST_ZERO = MST_PM_ZERO,
    ST_DISCARDED = MS_PAGE_DISCARDED,
    ST_IN_PLACE = MS_PAGE_IN_PLACE,
};

static const char *state_name(unsigned st)
{
    static const char *const name[] = {"missing", "data", "zero", "discarded", "other",
                                       "in-place"};
    return st < sizeof name / sizeof name[0] ? name[st] : "other";
}

#define CMP_BUF (1u << 20) /* bytes read per side per step */
#define CB_FAIL (-10000)   /* a callback failed; the side's err says why */

typedef struct region {
    uint32_t id;
    char *name;
    bool has_gpa;
    uint64_t gpa, size, pages;
    uint32_t page_size;
    mst_pm *map;
    long match; /* index of the matching region on the other side, or -1 */
} region;

typedef struct device {
    char *path, *schema;
    uint32_t instance, version;
    uint8_t *state;
    size_t state_size;
} device;

typedef struct side {
    const char *label; /* "A" / "B" */
    char *input;       /* the name as given */
    const mst_diff_options *o;
    bool loaded;
    mst_pm_budget budget;
    ms_header hdr;
    char *machine, *description; /* NULL: absent */
    region *regions;             /* in declaration order */
    size_t nregions, regions_cap;
    size_t *by_id; /* region indexes sorted by id */
    size_t last;   /* region lookup cache */
    device **devs; /* open addressing on (path, instance) */
    size_t devs_cap, ndevs;
    int fd; /* temporary file, -1 until the first DATA page */
    int64_t next_off;
    mst_inplace inplace; /* IN_PLACE extents: the addresses compared */
    struct overlay *overlays; /* bounded by the reader's overlay limit */
    size_t noverlays;
    char err[512];
} side;

/* An overlay and the 4 KiB it shows: two overlays of one kind at one frame
 * are the same when they show the same bytes. */
typedef struct overlay {
    ms_overlay o; /* slot pointers cleared */
    uint8_t page[MS_OVERLAY_PAGE_SIZE];
} overlay;

struct mst_diff {
    mst_diff_options o;
    side s[2];
    FILE *out;
    bool json;
    mst_diff_totals total;
    char *err;
    size_t err_size;
};

/* ------------------------------------------------------------ small helpers */

__attribute__((format(printf, 2, 3))) static int fail(side *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return CB_FAIL;
}

/* The engine's message for mst_diff_compare; returns -1. */
__attribute__((format(printf, 2, 3))) static int oops(mst_diff *df, const char *fmt, ...)
{
    if (df->err && df->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(df->err, df->err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, int64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, int64_t off)
{
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* the file is shorter than what was written */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* ------------------------------------------------------- page-state maps */

/* Pages [first, first + n) of @p rg now hold state @p st. The range is
 * inside the region: the reader checked it (FORMAT.md section 6.2). */
static int set_range(side *s, region *rg, uint64_t first, uint64_t n, unsigned st)
{
    int rc = mst_pm_set(rg->map, first, n, st, NULL);
    if (rc == MST_PM_EBUDGET)
        return fail(s,
                    "region %" PRIu32 " \"%s\": the page-state maps would exceed %zu MiB; "
                    "the stream scatters page states too finely",
                    rg->id, rg->name, s->budget.limit >> 20);
    if (rc == MST_PM_ENOMEM)
        return fail(s, "out of memory");
    if (rc)
        return fail(s, "region %" PRIu32 ": pages %" PRIu64 "+%" PRIu64 " outside the region",
                    rg->id, first, n);
    return 0;
}

static const char *tmp_dir(const side *s)
{
    const char *dir = s->o->tmpdir ? s->o->tmpdir : getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

/* Marks @p n non-zero pages DATA and stores their contents. */
static int store_data(side *s, region *rg, uint64_t first, uint64_t n, const uint8_t *data)
{
    int rc = set_range(s, rg, first, n, ST_DATA);
    if (rc)
        return rc;
    if (s->fd < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/migstream-diff-XXXXXX", tmp_dir(s));
        s->fd = mkostemp(path, O_CLOEXEC);
        if (s->fd < 0)
            return fail(s, "cannot create a temporary file in %s: %s", tmp_dir(s),
                        strerror(errno));
        unlink(path);
    }
    uint64_t end = first + n, cp = MST_PM_CHUNK_PAGES;
    size_t ps = rg->page_size;
    while (first < end) {
        uint64_t cstart = first / cp * cp;
        uint64_t e = min_u64(end, min_u64(cstart + cp, rg->pages));
        /* set_range made the chunk: DATA never becomes a span. */
        int64_t *slot = mst_pm_slot(rg->map, first);
        if (!slot)
            return fail(s, "internal error: no chunk for page %" PRIu64, first);
        if (*slot < 0) {
            uint64_t window = (min_u64(cstart + cp, rg->pages) - cstart) * ps;
            if ((uint64_t)s->next_off > (uint64_t)INT64_MAX - window)
                return fail(s, "temporary file would exceed the largest file offset");
            *slot = s->next_off;
            s->next_off += (int64_t)window;
        }
        if (pwrite_all(s->fd, data, (size_t)(e - first) * ps,
                       *slot + (int64_t)((first - cstart) * ps)))
            return fail(s, "cannot write the temporary file: %s", strerror(errno));
        data += (size_t)(e - first) * ps;
        first = e;
    }
    return 0;
}

/* ------------------------------------------------------ replay callbacks */

static int on_header(void *ctx, const ms_header *h)
{
    ((side *)ctx)->hdr = *h;
    return 0;
}

static int on_info(void *ctx, const ms_info *info)
{
    side *s = ctx;
    s->machine = dup_or_null(info->machine);
    s->description = dup_or_null(info->description);
    if ((info->machine && !s->machine) || (info->description && !s->description))
        return fail(s, "out of memory");
    return 0;
}

static int on_region(void *ctx, const ms_region *r)
{
    side *s = ctx;
    if (s->nregions == s->regions_cap) {
        size_t cap = s->regions_cap ? 2 * s->regions_cap : 8;
        region *nr = realloc(s->regions, cap * sizeof *nr);
        if (!nr)
            return fail(s, "out of memory");
        s->regions = nr;
        size_t *ni = realloc(s->by_id, cap * sizeof *ni);
        if (!ni)
            return fail(s, "out of memory");
        s->by_id = ni;
        s->regions_cap = cap;
    }
    region *rg = &s->regions[s->nregions];
    memset(rg, 0, sizeof *rg);
    rg->id = r->id;
    rg->name = strdup(r->name);
    if (!rg->name)
        return fail(s, "out of memory");
    rg->has_gpa = r->has_gpa;
    rg->gpa = r->gpa;
    rg->size = r->size;
    rg->page_size = r->page_size;
    rg->pages = r->size / r->page_size;
    rg->match = -1;
    if (!(rg->map = mst_pm_new(rg->pages, &s->budget))) {
        free(rg->name);
        return fail(s, "out of memory tracking region %" PRIu32 " \"%s\"", r->id, r->name);
    }
    /* Insertion into the id index: regions are few (4096 by default). */
    size_t k = s->nregions;
    while (k > 0 && s->regions[s->by_id[k - 1]].id > r->id) {
        s->by_id[k] = s->by_id[k - 1];
        k--;
    }
    s->by_id[k] = s->nregions++;
    return 0;
}

static region *find_region(side *s, uint32_t id)
{
    if (s->last < s->nregions && s->regions[s->last].id == id)
        return &s->regions[s->last];
    size_t lo = 0, hi = s->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = s->regions[s->by_id[mid]].id;
        if (v == id) {
            s->last = s->by_id[mid];
            return &s->regions[s->last];
        }
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* FILL pages are compared as the bytes they stand for: stored like DATA,
 * a page at a time from one pattern page. */
static int store_fill(side *s, region *rg, uint64_t first, uint64_t count, uint64_t word)
{
    uint8_t *page = malloc(rg->page_size);
    if (!page)
        return fail(s, "out of memory");
    for (size_t k = 0; k < rg->page_size; k++)
        page[k] = (uint8_t)(word >> (8 * (k % 8))); /* little-endian (FORMAT.md 6.2) */
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++)
        rc = store_data(s, rg, first + i, 1, page);
    free(page);
    return rc;
}

static int on_overlay(void *ctx, const ms_overlay *o)
{
    side *s = ctx;
    overlay *grown = realloc(s->overlays, (s->noverlays + 1) * sizeof *grown);
    if (!grown)
        return fail(s, "out of memory");
    s->overlays = grown;
    overlay *v = &grown[s->noverlays];
    if (ms_overlay_render(o, v->page)) /* the reader checked it */
        return fail(s, "overlay at frame 0x%" PRIx64 " cannot be rendered", o->gfn);
    v->o = *o;
    memset(v->o.synic.slot, 0, sizeof v->o.synic.slot);
    s->noverlays++;
    return 0;
}

static int on_extent(void *ctx, const ms_region *r, const ms_extent *x, const uint8_t *data)
{
    side *s = ctx;
    region *rg = find_region(s, r->id);
    if (!rg)
        return fail(s, "pages for region %" PRIu32 ", which was never declared", r->id);
    if (x->state == MS_PAGE_ZERO || x->state == MS_PAGE_DISCARDED)
        return set_range(s, rg, x->first, x->count, x->state);
    if (x->state == MS_PAGE_IN_PLACE) {
        if (mst_inplace_add(&s->inplace, r, x))
            return fail(s, "region %" PRIu32 ": %s", r->id,
                        errno == E2BIG ? "more IN_PLACE extents than this tool compares (4096)"
                                       : "out of memory");
        return set_range(s, rg, x->first, x->count, ST_IN_PLACE);
    }
    if (x->state == MS_PAGE_FILL)
        return store_fill(s, rg, x->first, x->count, x->arg);
    if (x->state != MS_PAGE_DATA || !data)
        return fail(s, "page state %u is not one this tool knows", x->state);
    /* A DATA page of zero bytes has the effect of a ZERO page: it is
     * recorded as one, so that writers that do not detect zero pages
     * compare equal to writers that do. */
    size_t ps = rg->page_size;
    uint64_t i = 0;
    bool z = all_zero(data, ps);
    while (i < x->count) {
        uint64_t j = i + 1;
        bool zj = false;
        while (j < x->count && (zj = all_zero(data + j * ps, ps)) == z)
            j++;
        int rc = z ? set_range(s, rg, x->first + i, j - i, ST_ZERO)
                   : store_data(s, rg, x->first + i, j - i, data + i * ps);
        if (rc)
            return rc;
        i = j;
        z = zj;
    }
    return 0;
}

static uint64_t dev_hash(const char *path, uint32_t instance)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return mix64(h ^ instance);
}

static void dev_free(device *d)
{
    if (!d)
        return;
    free(d->path);
    free(d->schema);
    free(d->state);
    free(d);
}

static int on_device(void *ctx, const ms_device *d)
{
    side *s = ctx;
    if (2 * (s->ndevs + 1) > s->devs_cap) {
        size_t cap = s->devs_cap ? 2 * s->devs_cap : 16;
        device **t = calloc(cap, sizeof *t);
        if (!t)
            return fail(s, "out of memory");
        for (size_t k = 0; k < s->devs_cap; k++) {
            if (!s->devs[k])
                continue;
            size_t i = (size_t)dev_hash(s->devs[k]->path, s->devs[k]->instance) & (cap - 1);
            while (t[i])
                i = (i + 1) & (cap - 1);
            t[i] = s->devs[k];
        }
        free(s->devs);
        s->devs = t;
        s->devs_cap = cap;
    }
    device *nd = calloc(1, sizeof *nd);
    if (!nd)
        return fail(s, "out of memory");
    nd->path = strdup(d->path);
    nd->schema = strdup(d->schema);
    nd->instance = d->instance;
    nd->version = d->version;
    nd->state_size = d->state_size;
    nd->state = malloc(d->state_size ? d->state_size : 1);
    if (!nd->path || !nd->schema || !nd->state) {
        dev_free(nd);
        return fail(s, "out of memory");
    }
    memcpy(nd->state, d->state, d->state_size);
    /* A later record for the same path and instance replaces an earlier
     * one (FORMAT.md section 2). */
    size_t mask = s->devs_cap - 1, i = (size_t)dev_hash(d->path, d->instance) & mask;
    for (; s->devs[i]; i = (i + 1) & mask) {
        if (s->devs[i]->instance == d->instance && strcmp(s->devs[i]->path, d->path) == 0) {
            dev_free(s->devs[i]);
            s->devs[i] = nd;
            return 0;
        }
    }
    s->devs[i] = nd;
    s->ndevs++;
    return 0;
}

static void free_side(side *s)
{
    for (size_t k = 0; k < s->nregions; k++) {
        mst_pm_free(s->regions[k].map);
        free(s->regions[k].name);
    }
    free(s->regions);
    free(s->by_id);
    for (size_t i = 0; i < s->devs_cap; i++)
        dev_free(s->devs[i]);
    free(s->devs);
    free(s->machine);
    free(s->description);
    free(s->input);
    free(s->overlays);
    mst_inplace_free(&s->inplace);
    if (s->fd >= 0)
        close(s->fd);
}

mst_diff *mst_diff_new(const mst_diff_options *opts)
{
    mst_diff *df = calloc(1, sizeof *df);
    if (!df)
        return NULL;
    if (opts)
        df->o = *opts;
    df->json = df->o.json;
    for (int i = 0; i < 2; i++) {
        side *s = &df->s[i];
        s->label = i ? "B" : "A";
        s->o = &df->o;
        s->fd = -1;
        s->budget.limit = df->o.map_budget ? df->o.map_budget : MST_PM_BUDGET_DEFAULT;
    }
    return df;
}

void mst_diff_free(mst_diff *df)
{
    if (!df)
        return;
    free_side(&df->s[0]);
    free_side(&df->s[1]);
    free(df);
}

int mst_diff_load(mst_diff *df, unsigned which, ms_read_fn read, void *read_ctx, const char *name,
                  char *err, size_t err_size)
{
    char scratch[2];
    if (!err || !err_size) {
        err = scratch;
        err_size = sizeof scratch;
    }
    err[0] = 0;
    if (which > 1 || !read || df->s[which].loaded) {
        snprintf(err, err_size, "invalid side to load");
        return MST_DIFF_ERROR;
    }
    side *s = &df->s[which];
    s->loaded = true;
    if (!name)
        name = s->label;
    if (!(s->input = strdup(name))) {
        snprintf(err, err_size, "out of memory");
        return MST_DIFF_ERROR;
    }
    ms_reader *r = ms_reader_new(df->o.reader, read, read_ctx);
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return MST_DIFF_ERROR;
    }
    ms_replay_callbacks cb = {.struct_size = sizeof cb,
                              .header = on_header,
                              .info = on_info,
                              .region = on_region,
                              .extent = on_extent,
                              .device = on_device,
                              .overlay = on_overlay};
    int rc = ms_replay(r, &cb, s);
    if (rc == 0)
        rc = ms_reader_expect_eof(r);
    if (rc == CB_FAIL) {
        snprintf(err, err_size, "stream %s (%s): %s", s->label, name, s->err);
    } else if (rc < 0) {
        const char *msg = ms_reader_errmsg(r);
        snprintf(err, err_size, "stream %s (%s): %s", s->label, name,
                 *msg ? msg : ms_strerror(rc));
    }
    ms_reader_free(r);
    return rc < 0 ? MST_DIFF_ERROR : MST_DIFF_SAME;
}

/* ---------------------------------------------------------------- output */

/* A value on one side of a difference. */
typedef enum { V_NONE, V_STR, V_NUM, V_ADDR, V_RAW, V_CBOR } vkind;
typedef struct val {
    vkind k;
    const char *s; /* V_STR, V_RAW; V_CBOR: the encoded item */
    uint64_t n;    /* V_NUM, V_ADDR; V_CBOR: its size */
} val;

static val v_none(void)
{
    return (val){V_NONE, NULL, 0};
}
static val v_str(const char *s)
{
    return s ? (val){V_STR, s, 0} : v_none();
}
static val v_num(uint64_t n)
{
    return (val){V_NUM, NULL, n};
}

/* Text form of a name (region, device path): as is, but with control bytes
 * and backslashes escaped so that a line stays one line. */
static void put_name(mst_diff *df, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            fprintf(df->out, "\\x%02x", *p);
        else
            fputc(*p, df->out);
    }
}

/* Prints @p v; returns -1 if a CBOR item cannot be formatted. */
static int put_val(mst_diff *df, val v)
{
    switch (v.k) {
    case V_NONE:
        fputs(df->json ? "null" : "(none)", df->out);
        break;
    case V_STR:
        mst_json_string(df->out, v.s);
        break;
    case V_NUM:
        fprintf(df->out, "%" PRIu64, v.n);
        break;
    case V_ADDR:
        fprintf(df->out, df->json ? "\"0x%" PRIx64 "\"" : "0x%" PRIx64, v.n);
        break;
    case V_RAW:
        if (df->json)
            mst_json_string(df->out, v.s);
        else
            fputs(v.s, df->out);
        break;
    case V_CBOR: {
        char *t =
            mst_cbor_text((const uint8_t *)v.s, (size_t)v.n, df->json ? MS_CBOR_JSON : MS_CBOR_DIAG);
        if (!t)
            return -1;
        fputs(t, df->out);
        free(t);
        break;
    }
    }
    return 0;
}

static void meta_line(mst_diff *df, const char *field, val a, val b)
{
    df->total.meta++;
    if (df->json) {
        fprintf(df->out, "{\"type\":\"meta\",\"field\":\"%s\",\"a\":", field);
        put_val(df, a);
        fputs(",\"b\":", df->out);
        put_val(df, b);
        fputs("}\n", df->out);
    } else {
        fprintf(df->out, "meta %s: ", field);
        put_val(df, a);
        fputs(" -> ", df->out);
        put_val(df, b);
        fputc('\n', df->out);
    }
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void compare_meta(mst_diff *df, const side *a, const side *b)
{
    char va[16], vb[16];
    snprintf(va, sizeof va, "%u.%u", a->hdr.major, a->hdr.minor);
    snprintf(vb, sizeof vb, "%u.%u", b->hdr.major, b->hdr.minor);
    if (strcmp(va, vb))
        meta_line(df, "format", (val){V_RAW, va, 0}, (val){V_RAW, vb, 0});
    if (a->hdr.page_size != b->hdr.page_size)
        meta_line(df, "page_size", v_num(a->hdr.page_size), v_num(b->hdr.page_size));
    if (a->hdr.required_features != b->hdr.required_features)
        meta_line(df, "required_features", v_num(a->hdr.required_features),
                  v_num(b->hdr.required_features));
    if (a->hdr.optional_features != b->hdr.optional_features)
        meta_line(df, "optional_features", v_num(a->hdr.optional_features),
                  v_num(b->hdr.optional_features));
    if (strcmp(a->hdr.writer_name, b->hdr.writer_name))
        meta_line(df, "writer_name", v_str(a->hdr.writer_name), v_str(b->hdr.writer_name));
    if (strcmp(a->hdr.writer_version, b->hdr.writer_version))
        meta_line(df, "writer_version", v_str(a->hdr.writer_version), v_str(b->hdr.writer_version));
    if (!str_eq(a->machine, b->machine))
        meta_line(df, "machine", v_str(a->machine), v_str(b->machine));
    if (!str_eq(a->description, b->description))
        meta_line(df, "description", v_str(a->description), v_str(b->description));
}

/* ------------------------------------------------------------- regions */

/* Pairs regions (see the man page, "Matching regions"): same id and name,
 * then same name, then same id. */
static void match_regions(side *a, side *b)
{
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < a->nregions; i++) {
            region *ra = &a->regions[i];
            if (ra->match >= 0)
                continue;
            for (size_t j = 0; j < b->nregions; j++) {
                region *rb = &b->regions[j];
                bool same_id = ra->id == rb->id, same_name = strcmp(ra->name, rb->name) == 0;
                if (rb->match >= 0 || !(pass == 0   ? same_id && same_name
                                        : pass == 1 ? same_name
                                                    : same_id))
                    continue;
                ra->match = (long)j;
                rb->match = (long)i;
                break;
            }
        }
    }
}

/* Walks one region's map in page order (pages asked for only ever
 * increase), remembering where the current chunk's pages are stored. */
typedef struct walker {
    mst_pm_walk w;
    const region *rg;
    int64_t slot;         /* the current chunk's window in the temporary file */
    uint64_t chunk_start; /* byte offset of the current chunk in the region */
} walker;

static void walker_init(walker *w, const region *rg)
{
    mst_pm_walk_init(&w->w, rg->map);
    w->rg = rg;
    w->slot = -1;
    w->chunk_start = 0;
}

/* State of page @p page, and in @p end the first page after it that may
 * be in another state (UINT64_MAX past the region's end). */
static unsigned run_at(walker *w, uint64_t page, uint64_t *end)
{
    unsigned st = mst_pm_run(&w->w, page, end, &w->slot);
    w->chunk_start = page / MST_PM_CHUNK_PAGES * MST_PM_CHUNK_PAGES * w->rg->page_size;
    return st;
}

static void region_only_line(mst_diff *df, const region *rg, const char *side_label)
{
    uint64_t n[MST_PM_STATES];
    mst_pm_counts(rg->map, n);
    val gpa = rg->has_gpa ? (val){V_ADDR, NULL, rg->gpa} : v_none();
    df->total.regions++;
    if (df->json) {
        fprintf(df->out, "{\"type\":\"region-only\",\"side\":\"%c\",\"region\":", side_label[0] + 'a' - 'A');
        mst_json_string(df->out, rg->name);
        fprintf(df->out, ",\"id\":%" PRIu32 ",\"size\":%" PRIu64 ",\"page_size\":%" PRIu32 ",\"gpa\":",
               rg->id, rg->size, rg->page_size);
        put_val(df, gpa);
        fprintf(df->out, ",\"data\":%" PRIu64 ",\"zero\":%" PRIu64 ",\"missing\":%" PRIu64 "}\n", n[ST_DATA],
               n[ST_ZERO], n[ST_MISSING]);
    } else {
        fputs("region ", df->out);
        put_name(df, rg->name);
        fprintf(df->out, ": only in %s (id %" PRIu32 ", size %" PRIu64 ", page_size %" PRIu32 ", gpa ",
               side_label, rg->id, rg->size, rg->page_size);
        put_val(df, gpa);
        fprintf(df->out, "): %" PRIu64 " data, %" PRIu64 " zero, %" PRIu64 " missing pages\n", n[ST_DATA],
               n[ST_ZERO], n[ST_MISSING]);
    }
}

static void region_line(mst_diff *df, const region *ra, const char *field, val a, val b)
{
    df->total.regions++;
    if (df->json) {
        fputs("{\"type\":\"region\",\"region\":", df->out);
        mst_json_string(df->out, ra->name);
        fprintf(df->out, ",\"field\":\"%s\",\"a\":", field);
        put_val(df, a);
        fputs(",\"b\":", df->out);
        put_val(df, b);
        fputs("}\n", df->out);
    } else {
        fputs("region ", df->out);
        put_name(df, ra->name);
        fprintf(df->out, " %s: ", field);
        put_val(df, a);
        fputs(" -> ", df->out);
        put_val(df, b);
        fputc('\n', df->out);
    }
}

/* Differing pages are gathered into ranges: consecutive pages with the same
 * kind of difference form one range. */
typedef struct ranges {
    mst_diff *df;
    const region *rg;
    bool open;
    uint8_t a, b;
    uint64_t first, count;
    uint64_t nranges, npages; /* for this region */
} ranges;

static void range_flush(ranges *r)
{
    mst_diff *df = r->df;
    if (!r->open)
        return;
    r->open = false;
    r->nranges++;
    r->npages += r->count;
    uint64_t last = r->first + r->count - 1;
    if (df->json) {
        fputs("{\"type\":\"memory\",\"region\":", df->out);
        mst_json_string(df->out, r->rg->name);
        fprintf(df->out, ",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
               ",\"a\":\"%s\",\"b\":\"%s\"}\n",
               r->first, last, r->count, state_name(r->a), state_name(r->b));
        return;
    }
    fputs("memory ", df->out);
    put_name(df, r->rg->name);
    if (r->count == 1)
        fprintf(df->out, " page %" PRIu64 ": ", r->first);
    else
        fprintf(df->out, " pages %" PRIu64 "..%" PRIu64 ": ", r->first, last);
    if (r->a == r->b && r->a == ST_IN_PLACE)
        fputs("in-place address differs", df->out);
    else if (r->a == r->b)
        fputs("data differs", df->out);
    else
        fprintf(df->out, "%s -> %s", state_name(r->a), state_name(r->b));
    fprintf(df->out, " (%" PRIu64 " page%s)\n", r->count, r->count == 1 ? "" : "s");
}

static void range_add(ranges *r, uint8_t a, uint8_t b, uint64_t first, uint64_t n)
{
    if (r->open && r->a == a && r->b == b && r->first + r->count == first) {
        r->count += n;
        return;
    }
    range_flush(r);
    r->open = true;
    r->a = a;
    r->b = b;
    r->first = first;
    r->count = n;
}

/* Byte offset in the temporary file of comparison unit @p u (of @p unit
 * bytes) of a DATA page in the walker's current chunk. */
static int64_t unit_offset(const walker *w, uint64_t u, uint64_t unit)
{
    uint64_t byte = u * unit; /* within the region */
    return w->slot + (int64_t)(byte - w->chunk_start);
}

typedef struct cmp_bufs {
    uint8_t *a, *b;
    size_t size;
} cmp_bufs;

/* Compares region @p ra of A with region @p rb of B, page by page, and
 * prints the differing ranges. Returns 0, or -1 with a message. */
static int compare_pages(mst_diff *df, const side *sa, const region *ra, const side *sb, const region *rb,
                         cmp_bufs *buf)
{
    /* When the page sizes differ, pages are compared in units of the
     * smaller one (both are powers of two). */
    uint64_t unit = ra->page_size < rb->page_size ? ra->page_size : rb->page_size;
    uint64_t ratio_a = ra->page_size / unit, ratio_b = rb->page_size / unit;
    uint64_t units = (ra->size > rb->size ? ra->size : rb->size) / unit;
    if (buf->size < unit) {
        free(buf->a);
        free(buf->b);
        buf->size = (size_t)unit;
        buf->a = malloc(buf->size);
        buf->b = malloc(buf->size);
        if (!buf->a || !buf->b)
            return oops(df, "out of memory");
    }
    walker wa, wb;
    walker_init(&wa, ra);
    walker_init(&wb, rb);
    ranges rr = {.df = df, .rg = ra};
    uint64_t u = 0, end_a = 0, end_b = 0;
    uint8_t st_a = ST_MISSING, st_b = ST_MISSING;
    while (u < units) {
        uint64_t e;
        if (u >= end_a) {
            st_a = (uint8_t)run_at(&wa, u / ratio_a, &e);
            end_a = e == UINT64_MAX ? units : min_u64(units, e * ratio_a);
        }
        if (u >= end_b) {
            st_b = (uint8_t)run_at(&wb, u / ratio_b, &e);
            end_b = e == UINT64_MAX ? units : min_u64(units, e * ratio_b);
        }
        uint64_t stop = min_u64(end_a, end_b);
        /* Contents are read where they decide: where both sides hold data,
         * and where a side's page is larger than the unit (a unit of a
         * DATA page may hold only zero bytes: it then counts as ZERO, as a
         * whole page of zero bytes does when it is loaded). */
        bool need_a = st_a == ST_DATA && (ratio_a > 1 || st_b == ST_DATA);
        bool need_b = st_b == ST_DATA && (ratio_b > 1 || st_a == ST_DATA);
        if (st_a == ST_IN_PLACE && st_b == ST_IN_PLACE) {
            /* Same state: the pages must be in place at the same address. */
            for (uint64_t v = u; v < stop;) {
                uint64_t ea, eb;
                uint64_t aa = mst_inplace_addr(&sa->inplace, ra->id, v / ratio_a, &ea) +
                              v % ratio_a * unit;
                uint64_t ab = mst_inplace_addr(&sb->inplace, rb->id, v / ratio_b, &eb) +
                              v % ratio_b * unit;
                uint64_t next = min_u64(stop, min_u64(ea == UINT64_MAX ? stop : ea * ratio_a,
                                                      eb == UINT64_MAX ? stop : eb * ratio_b));
                if (next <= v)
                    next = v + 1;
                /* Within [v, next) both advance by one unit per unit. */
                if (aa != ab)
                    range_add(&rr, ST_IN_PLACE, ST_IN_PLACE, v, next - v);
                v = next;
            }
            u = stop;
            continue;
        }
        if (!need_a && !need_b) {
            if (st_a != st_b)
                range_add(&rr, st_a, st_b, u, stop - u);
            u = stop;
            continue;
        }
        /* A run never crosses a chunk boundary of either side, so its
         * bytes are contiguous in each side's temporary file. */
        int64_t off_a = need_a ? unit_offset(&wa, u, unit) : 0;
        int64_t off_b = need_b ? unit_offset(&wb, u, unit) : 0;
        for (uint64_t v = u; v < stop;) {
            uint64_t n = min_u64(stop - v, buf->size / unit);
            size_t bytes = (size_t)(n * unit);
            if ((need_a && pread_all(sa->fd, buf->a, bytes, off_a)) ||
                (need_b && pread_all(sb->fd, buf->b, bytes, off_b))) {
                int saved = errno;
                range_flush(&rr);
                return oops(df, "cannot read a temporary file: %s", strerror(saved));
            }
            if (!need_a || !need_b || memcmp(buf->a, buf->b, bytes) != 0) {
                for (uint64_t i = 0; i < n; i++) {
                    const uint8_t *pa = buf->a + i * unit, *pb = buf->b + i * unit;
                    uint8_t ea =
                        need_a && ratio_a > 1 && all_zero(pa, (size_t)unit) ? ST_ZERO : st_a;
                    uint8_t eb =
                        need_b && ratio_b > 1 && all_zero(pb, (size_t)unit) ? ST_ZERO : st_b;
                    if (ea != eb || (ea == ST_DATA && memcmp(pa, pb, (size_t)unit) != 0))
                        range_add(&rr, ea, eb, v + i, 1);
                }
            }
            v += n;
            off_a += (int64_t)bytes;
            off_b += (int64_t)bytes;
        }
        u = stop;
    }
    range_flush(&rr);
    if (rr.nranges) {
        df->total.pages += rr.npages;
        df->total.ranges += rr.nranges;
        if (df->json) {
            fputs("{\"type\":\"memory-total\",\"region\":", df->out);
            mst_json_string(df->out, ra->name);
            fprintf(df->out, ",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 "}\n", rr.npages, rr.nranges);
        } else {
            fputs("memory ", df->out);
            put_name(df, ra->name);
            fprintf(df->out, ": %" PRIu64 " page%s differ%s in %" PRIu64 " range%s\n", rr.npages,
                   rr.npages == 1 ? "" : "s", rr.npages == 1 ? "s" : "", rr.nranges,
                   rr.nranges == 1 ? "" : "s");
        }
    }
    return 0;
}

static int compare_regions(mst_diff *df, side *a, side *b)
{
    cmp_bufs buf = {malloc(CMP_BUF), malloc(CMP_BUF), CMP_BUF};
    int rc = buf.a && buf.b ? 0 : -1;
    for (size_t k = 0; k < a->nregions && rc == 0; k++)
        rc = mst_pm_freeze(a->regions[k].map);
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        rc = mst_pm_freeze(b->regions[k].map);
    if (rc)
        rc = oops(df, "out of memory");
    match_regions(a, b);
    for (size_t k = 0; k < a->nregions && rc == 0; k++) {
        const region *ra = &a->regions[k];
        if (ra->match < 0) {
            region_only_line(df, ra, "A");
            continue;
        }
        const region *rb = &b->regions[ra->match];
        if (strcmp(ra->name, rb->name))
            region_line(df, ra, "name", v_str(ra->name), v_str(rb->name));
        if (ra->size != rb->size)
            region_line(df, ra, "size", v_num(ra->size), v_num(rb->size));
        if (ra->page_size != rb->page_size)
            region_line(df, ra, "page_size", v_num(ra->page_size), v_num(rb->page_size));
        if (ra->has_gpa != rb->has_gpa || (ra->has_gpa && ra->gpa != rb->gpa))
            region_line(df, ra, "gpa", ra->has_gpa ? (val){V_ADDR, NULL, ra->gpa} : v_none(),
                        rb->has_gpa ? (val){V_ADDR, NULL, rb->gpa} : v_none());
        rc = compare_pages(df, a, ra, b, rb, &buf);
    }
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        if (b->regions[k].match < 0)
            region_only_line(df, &b->regions[k], "B");
    free(buf.a);
    free(buf.b);
    return rc;
}

/* ------------------------------------------------------------- devices */

static int dev_cmp(const void *x, const void *y)
{
    const device *a = *(device *const *)x, *b = *(device *const *)y;
    int c = strcmp(a->path, b->path);
    return c ? c : (a->instance > b->instance) - (a->instance < b->instance);
}

static device **sorted_devices(const side *s)
{
    device **v = malloc((s->ndevs ? s->ndevs : 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < s->devs_cap; i++)
        if (s->devs[i])
            v[n++] = s->devs[i];
    qsort(v, n, sizeof *v, dev_cmp);
    return v;
}

/* Starts a device line; @p side_label: "A" or "B" for device-only lines. */
static void dev_head(mst_diff *df, const char *type, const char *side_label, const device *d)
{
    if (df->json) {
        fprintf(df->out, "{\"type\":\"%s\",", type);
        if (side_label)
            fprintf(df->out, "\"side\":\"%c\",", side_label[0] + 'a' - 'A');
        fputs("\"path\":", df->out);
        mst_json_string(df->out, d->path);
        fprintf(df->out, ",\"instance\":%" PRIu32, d->instance);
    } else {
        fputs("device ", df->out);
        put_name(df, d->path);
        fprintf(df->out, "#%" PRIu32, d->instance);
    }
}

static void device_only_line(mst_diff *df, const device *d, const char *side_label)
{
    df->total.devices++;
    dev_head(df, "device-only", side_label, d);
    if (df->json) {
        fputs(",\"schema\":", df->out);
        mst_json_string(df->out, d->schema);
        fprintf(df->out, ",\"version\":%" PRIu32 "}\n", d->version);
    } else {
        fprintf(df->out, ": only in %s (schema ", side_label);
        mst_json_string(df->out, d->schema);
        fprintf(df->out, ", version %" PRIu32 ")\n", d->version);
    }
}

static void device_line(mst_diff *df, const device *d, const char *field, val a, val b)
{
    df->total.devices++;
    dev_head(df, "device", NULL, d);
    if (df->json) {
        fprintf(df->out, ",\"field\":\"%s\",\"a\":", field);
        put_val(df, a);
        fputs(",\"b\":", df->out);
        put_val(df, b);
        fputs("}\n", df->out);
    } else {
        fprintf(df->out, " %s: ", field);
        put_val(df, a);
        fputs(" -> ", df->out);
        put_val(df, b);
        fputc('\n', df->out);
    }
}

typedef struct state_ctx {
    mst_diff *df;
    const device *dev;
} state_ctx;

/* ms_cbor_diff callback: one line per differing field of a device state. */
static int state_diff(void *ctx, const char *path, const uint8_t *a, size_t a_size,
                      const uint8_t *b, size_t b_size)
{
    const state_ctx *x = ctx;
    mst_diff *df = x->df;
    const device *d = x->dev;
    int rc = 0;
    df->total.devices++;
    dev_head(df, "device-state", NULL, d);
    if (df->json) {
        fputs(",\"at\":", df->out);
        mst_json_string(df->out, path);
        /* A side without the field has no "a" or "b" key: null would be
         * a CBOR null. */
        if (a) {
            fputs(",\"a\":", df->out);
            rc |= put_val(df, (val){V_CBOR, (const char *)a, a_size});
        }
        if (b) {
            fputs(",\"b\":", df->out);
            rc |= put_val(df, (val){V_CBOR, (const char *)b, b_size});
        }
        fputs("}\n", df->out);
    } else {
        fprintf(df->out, " state%s: ", path);
        rc |= put_val(df, a ? (val){V_CBOR, (const char *)a, a_size} : v_none());
        fputs(" -> ", df->out);
        rc |= put_val(df, b ? (val){V_CBOR, (const char *)b, b_size} : v_none());
        fputc('\n', df->out);
    }
    return rc ? MS_ECBOR : 0;
}

static int compare_devices(mst_diff *df, const side *a, const side *b)
{
    device **da = sorted_devices(a), **db = sorted_devices(b);
    int rc = 0;
    if (!da || !db)
        rc = oops(df, "out of memory");
    size_t i = 0, j = 0;
    while (rc == 0 && (i < a->ndevs || j < b->ndevs)) {
        int c = i == a->ndevs ? 1 : j == b->ndevs ? -1 : dev_cmp(&da[i], &db[j]);
        if (c < 0) {
            device_only_line(df, da[i++], "A");
            continue;
        }
        if (c > 0) {
            device_only_line(df, db[j++], "B");
            continue;
        }
        const device *x = da[i++], *y = db[j++];
        if (strcmp(x->schema, y->schema))
            device_line(df, x, "schema", v_str(x->schema), v_str(y->schema));
        if (x->version != y->version)
            device_line(df, x, "version", v_num(x->version), v_num(y->version));
        state_ctx sx = {df, x};
        int n = ms_cbor_diff(x->state, x->state_size, y->state, y->state_size, state_diff, &sx);
        if (n < 0)
            rc = oops(df, "device %s#%" PRIu32 ": cannot compare the states: %s", x->path,
                      x->instance, ms_strerror(n));
    }
    free(da);
    free(db);
    return rc;
}

/* ------------------------------------------------------------------ entry */

static const overlay *find_overlay(const side *s, uint64_t gfn, uint32_t kind)
{
    for (size_t i = 0; i < s->noverlays; i++)
        if (s->overlays[i].o.gfn == gfn && s->overlays[i].o.kind == kind)
            return &s->overlays[i];
    return NULL;
}

static void overlay_line(mst_diff *df, const overlay *v, const char *what)
{
    const char *kind = ms_overlay_kind_name(v->o.kind);
    df->total.overlays++;
    if (df->json)
        fprintf(df->out, "{\"type\":\"overlay\",\"gfn\":\"0x%" PRIx64 "\",\"kind\":\"%s\","
                         "\"difference\":\"%s\"}\n", v->o.gfn, kind, what);
    else
        fprintf(df->out, "overlay frame 0x%" PRIx64 " %s: %s\n", v->o.gfn, kind, what);
}

/* Overlays (FORMAT.md section 7.2), matched by frame and kind: one side
 * only, or the contents the parameters build differ. Quadratic, but the
 * reader bounds each side's count. */
static void compare_overlays(mst_diff *df, const side *a, const side *b)
{
    for (size_t i = 0; i < a->noverlays; i++) {
        const overlay *x = &a->overlays[i];
        const overlay *y = find_overlay(b, x->o.gfn, x->o.kind);
        if (!y)
            overlay_line(df, x, "only in A");
        else if (memcmp(x->page, y->page, sizeof x->page) != 0)
            overlay_line(df, x, "contents differ");
    }
    for (size_t i = 0; i < b->noverlays; i++)
        if (!find_overlay(a, b->overlays[i].o.gfn, b->overlays[i].o.kind))
            overlay_line(df, &b->overlays[i], "only in B");
}

int mst_diff_compare(mst_diff *df, FILE *out, mst_diff_totals *totals, char *err, size_t err_size)
{
    side *a = &df->s[0], *b = &df->s[1];
    df->out = out;
    df->err = err;
    df->err_size = err_size;
    if (err && err_size)
        err[0] = 0;
    memset(&df->total, 0, sizeof df->total);
    if (!out || !a->loaded || !b->loaded) {
        oops(df, "both sides must be loaded before they are compared");
        return MST_DIFF_ERROR;
    }
    compare_meta(df, a, b);
    if (compare_regions(df, a, b))
        return MST_DIFF_ERROR;
    compare_overlays(df, a, b);
    if (compare_devices(df, a, b))
        return MST_DIFF_ERROR;
    const mst_diff_totals *t = &df->total;
    bool same = !t->meta && !t->regions && !t->ranges && !t->devices && !t->overlays;
    if (df->json)
        fprintf(out,
                "{\"type\":\"summary\",\"same\":%s,\"metadata\":%" PRIu64 ",\"regions\":%" PRIu64
                ",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 ",\"devices\":%" PRIu64
                ",\"overlays\":%" PRIu64 "}\n",
                same ? "true" : "false", t->meta, t->regions, t->pages, t->ranges, t->devices,
                t->overlays);
    else if (same)
        fputs("same\n", out);
    else
        fprintf(out,
                "different: metadata %" PRIu64 ", regions %" PRIu64 ", pages %" PRIu64
                " in %" PRIu64 " ranges, devices %" PRIu64 "%s",
                t->meta, t->regions, t->pages, t->ranges, t->devices,
                t->overlays ? "" : "\n");
    if (!df->json && !same && t->overlays)
        fprintf(out, ", overlays %" PRIu64 "\n", t->overlays);
    if (totals)
        *totals = *t;
    return same ? MST_DIFF_SAME : MST_DIFF_DIFFERENT;
}
