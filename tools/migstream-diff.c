/*
 * migstream-diff: compares two streams by the guest state they leave behind
 * (the "final state" of docs/FORMAT.md section 2), not by their bytes.
 *
 * Each stream is replayed (ms_replay) into a "side":
 *   - per region, a page-state map: 2 bits per page (missing, data, zero) in
 *     chunks covering 256 MiB of guest memory each, kept in a hash table; a
 *     chunk whose pages are all in one state needs no map, a chunk never
 *     touched needs nothing at all, and a run of 16 or more whole chunks
 *     set by one extent (a long ZERO run) is one "span" entry, so memory
 *     follows what the stream sent, not the sizes its regions declare;
 *   - the contents of DATA pages, in an unlinked sparse temporary file (one
 *     per side; each chunk that receives data gets its own 256 MiB window);
 *   - the last state of each device (path, instance), in memory.
 * The two sides are then walked together and every difference is printed,
 * as text or as JSON Lines (docs/man/migstream-diff.1 is the reference for
 * both and for every decision below).
 */
#define _GNU_SOURCE /* O_CLOEXEC, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* Page states as this tool tracks them; MISSING is 0 so that zeroed memory
 * means "never sent" (FORMAT.md section 2). */
enum { ST_MISSING = 0, ST_DATA = 1, ST_ZERO = 2 };
static const char *const state_name[] = {"missing", "data", "zero"};

#define CHUNK_BYTES ((uint64_t)1 << 28) /* guest bytes covered by one chunk */
#define CMP_BUF (1u << 20)              /* bytes read per side per step */
#define CB_FAIL (-10000)                /* a callback failed; the side's err says why */

#define SPAN_MIN_CHUNKS 16 /* whole chunks a run needs to become a span */

typedef struct chunk {
    uint64_t index; /* chunk number within its region */
    uint64_t seq;   /* when it last changed (the region's clock) */
    uint8_t *bits;  /* 2 bits per page, page i at bits[i / 4] >> 2 * (i % 4);
                       NULL: every page is in state 'uniform' */
    uint8_t uniform;
    int64_t file_off; /* the chunk's window in the temporary file; -1: none */
} chunk;

/* A run of whole chunks set to one state by a single extent (a long ZERO
 * run): one entry however long. A chunk older than the span over it is
 * stale: the span holds. */
typedef struct span {
    uint64_t c0, c1, seq; /* chunks [c0, c1) */
    uint8_t st;
} span;

typedef struct region {
    uint32_t id;
    char *name;
    bool has_gpa;
    uint64_t gpa, size, pages;
    uint32_t page_size;
    uint64_t chunk_pages; /* pages per chunk */
    chunk **tab;          /* open addressing on chunk index; NULL: empty slot */
    size_t tab_cap, nchunks;
    chunk **sorted; /* the chunks by index, built for the comparison */
    span *spans;    /* sorted, disjoint */
    size_t nspans, spans_cap;
    uint64_t clock;
    long match; /* index of the matching region on the other side, or -1 */
} region;

typedef struct device {
    char *path, *schema;
    uint32_t instance, version;
    uint8_t *state;
    size_t state_size;
} device;

typedef struct side {
    const char *label, *input; /* "A" / "B", and the path as given */
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
    char err[512];
} side;

/* ------------------------------------------------------------ small helpers */

__attribute__((format(printf, 2, 3))) static int fail(side *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return CB_FAIL;
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

static uint8_t bits_get(const chunk *c, uint64_t i)
{
    return (uint8_t)(c->bits[i >> 2] >> (2 * (i & 3)) & 3);
}

static void bits_set(chunk *c, uint64_t i, uint8_t st)
{
    uint8_t *b = &c->bits[i >> 2];
    unsigned sh = 2 * (unsigned)(i & 3);
    *b = (uint8_t)((*b & ~(3u << sh)) | (unsigned)st << sh);
}

static chunk *chunk_find(const region *rg, uint64_t index)
{
    if (!rg->tab_cap)
        return NULL;
    size_t mask = rg->tab_cap - 1;
    for (size_t i = (size_t)mix64(index) & mask; rg->tab[i]; i = (i + 1) & mask)
        if (rg->tab[i]->index == index)
            return rg->tab[i];
    return NULL;
}

/* The span holding chunk @p ci, or NULL. */
static const span *span_at(const region *rg, uint64_t ci)
{
    size_t lo = 0, hi = rg->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rg->spans[mid].c1 <= ci)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rg->nspans && rg->spans[lo].c0 <= ci ? &rg->spans[lo] : NULL;
}

/* Chunk @p index about to change: created if absent, reset to its span's
 * state if a span replaced it, and stamped with a new time. */
static chunk *chunk_touch(region *rg, uint64_t index)
{
    const span *sp = span_at(rg, index);
    chunk *c = chunk_find(rg, index);
    if (!c) {
        if (2 * (rg->nchunks + 1) > rg->tab_cap) { /* keep the load under 1/2 */
            size_t cap = rg->tab_cap ? 2 * rg->tab_cap : 16;
            chunk **tab = calloc(cap, sizeof *tab);
            if (!tab)
                return NULL;
            for (size_t k = 0; k < rg->tab_cap; k++) {
                if (!rg->tab[k])
                    continue;
                size_t i = (size_t)mix64(rg->tab[k]->index) & (cap - 1);
                while (tab[i])
                    i = (i + 1) & (cap - 1);
                tab[i] = rg->tab[k];
            }
            free(rg->tab);
            rg->tab = tab;
            rg->tab_cap = cap;
        }
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
        c->index = index;
        c->uniform = sp ? sp->st : ST_MISSING;
        c->file_off = -1;
        size_t i = (size_t)mix64(index) & (rg->tab_cap - 1);
        while (rg->tab[i])
            i = (i + 1) & (rg->tab_cap - 1);
        rg->tab[i] = c;
        rg->nchunks++;
    } else if (sp && sp->seq > c->seq) {
        free(c->bits);
        c->bits = NULL;
        c->uniform = sp->st;
    }
    c->seq = ++rg->clock;
    return c;
}

/* Chunks [c0, c1) of @p rg now all hold state @p st. */
static int add_span(region *rg, uint64_t c0, uint64_t c1, uint8_t st)
{
    /* Spans are few (each covers SPAN_MIN_CHUNKS chunks or more of one
     * extent): a sorted array with memmove is enough. At most one more
     * span results from a split. */
    if (rg->nspans + 2 > rg->spans_cap) {
        size_t cap = rg->spans_cap ? 2 * rg->spans_cap : 8;
        span *v = realloc(rg->spans, cap * sizeof *v);
        if (!v)
            return -1;
        rg->spans = v;
        rg->spans_cap = cap;
    }
    span *v = rg->spans;
    size_t i = 0;
    while (i < rg->nspans && v[i].c1 <= c0)
        i++;
    /* v[i..j) overlap [c0, c1); keep the parts outside it. */
    size_t j = i;
    while (j < rg->nspans && v[j].c0 < c1)
        j++;
    span head = i < j ? v[i] : (span){0}, tail = i < j ? v[j - 1] : head;
    bool keep_head = i < j && head.c0 < c0, keep_tail = i < j && tail.c1 > c1;
    size_t add = 1 + keep_head + keep_tail;
    memmove(&v[i + add], &v[j], (rg->nspans - j) * sizeof *v);
    rg->nspans = rg->nspans - (j - i) + add;
    if (keep_head) {
        head.c1 = c0;
        v[i++] = head;
    }
    v[i++] = (span){c0, c1, ++rg->clock, st};
    if (keep_tail) {
        tail.c0 = c1;
        v[i] = tail;
    }
    return 0;
}

/* Pages [first, first + n) of @p rg now hold state @p st. The range is
 * inside the region: the reader checked it (FORMAT.md section 6.2). */
static int set_range(side *s, region *rg, uint64_t first, uint64_t n, uint8_t st)
{
    uint64_t end = first + n, cp = rg->chunk_pages;
    while (first < end) {
        uint64_t ci = first / cp, cstart = ci * cp;
        uint64_t cend = min_u64(cstart + cp, rg->pages), e = min_u64(end, cend);
        if (first == cstart && e == cend) {
            /* Whole chunks from ci on: a long run becomes one span. */
            uint64_t whole = (end == rg->pages ? end + cp - 1 : end) / cp - ci;
            if (whole >= SPAN_MIN_CHUNKS && st != ST_DATA) {
                if (add_span(rg, ci, ci + whole, st))
                    return fail(s, "out of memory");
                first = min_u64(end, (ci + whole) * cp);
                continue;
            }
        }
        chunk *c = chunk_touch(rg, ci);
        if (!c)
            return fail(s, "out of memory");
        if (first == cstart && e == cend) {
            free(c->bits);
            c->bits = NULL;
            c->uniform = st;
        } else if (c->bits || c->uniform != st) {
            if (!c->bits) {
                c->bits = malloc((size_t)(cp / 4));
                if (!c->bits)
                    return fail(s, "out of memory");
                memset(c->bits, c->uniform * 0x55, (size_t)(cp / 4));
            }
            for (uint64_t p = first; p < e; p++)
                bits_set(c, p - cstart, st);
        }
        first = e;
    }
    return 0;
}

/* Marks @p n non-zero pages DATA and stores their contents. */
static int store_data(side *s, region *rg, uint64_t first, uint64_t n, const uint8_t *data)
{
    int rc = set_range(s, rg, first, n, ST_DATA);
    if (rc)
        return rc;
    if (s->fd < 0) {
        const char *dir = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/migstream-diff-XXXXXX", dir && *dir ? dir : "/tmp");
        s->fd = mkostemp(path, O_CLOEXEC);
        if (s->fd < 0)
            return fail(s, "cannot create a temporary file in %s: %s", dir && *dir ? dir : "/tmp",
                        strerror(errno));
        unlink(path);
    }
    uint64_t end = first + n, cp = rg->chunk_pages;
    size_t ps = rg->page_size;
    while (first < end) {
        uint64_t ci = first / cp, cstart = ci * cp;
        uint64_t e = min_u64(end, min_u64(cstart + cp, rg->pages));
        /* set_range made it: a DATA extent (at most a record's 64 MiB)
         * never covers SPAN_MIN_CHUNKS whole chunks. */
        chunk *c = chunk_find(rg, ci);
        if (!c)
            return fail(s, "internal error: no chunk for page %" PRIu64, first);
        if (c->file_off < 0) {
            uint64_t window = (min_u64(cstart + cp, rg->pages) - cstart) * ps;
            if ((uint64_t)s->next_off > (uint64_t)INT64_MAX - window)
                return fail(s, "temporary file would exceed the largest file offset");
            c->file_off = s->next_off;
            s->next_off += (int64_t)window;
        }
        if (pwrite_all(s->fd, data, (size_t)(e - first) * ps,
                       c->file_off + (int64_t)((first - cstart) * ps)))
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
    rg->chunk_pages = CHUNK_BYTES / r->page_size; /* page sizes are powers of two <= 16 MiB */
    rg->match = -1;
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

static int on_extent(void *ctx, const ms_region *r, const ms_extent *x, const uint8_t *data)
{
    side *s = ctx;
    region *rg = find_region(s, r->id);
    if (!rg)
        return fail(s, "pages for region %" PRIu32 ", which was never declared", r->id);
    if (x->state == MS_PAGE_ZERO)
        return set_range(s, rg, x->first, x->count, ST_ZERO);
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

/* Reads one stream into @p s. Returns 0, or -1 after printing why. */
static int load_side(side *s)
{
    int in = mst_open_input(s->input);
    if (in < 0)
        return -1;
    ms_reader *r = ms_reader_new_fd(NULL, in);
    if (!r) {
        mst_error("out of memory");
        if (in != STDIN_FILENO)
            close(in);
        return -1;
    }
    ms_replay_callbacks cb = {.struct_size = sizeof cb,
                              .header = on_header,
                              .info = on_info,
                              .region = on_region,
                              .extent = on_extent,
                              .device = on_device};
    int rc = ms_replay(r, &cb, s);
    if (rc == 0)
        rc = ms_reader_expect_eof(r);
    const char *name = strcmp(s->input, "-") == 0 ? "standard input" : s->input;
    if (rc == CB_FAIL) {
        mst_error("stream %s (%s): %s", s->label, name, s->err);
    } else if (rc < 0) {
        const char *msg = ms_reader_errmsg(r);
        mst_error("stream %s (%s): %s", s->label, name, *msg ? msg : ms_strerror(rc));
    }
    ms_reader_free(r);
    if (in != STDIN_FILENO)
        close(in);
    return rc < 0 ? -1 : 0;
}

static void free_side(side *s)
{
    for (size_t k = 0; k < s->nregions; k++) {
        region *rg = &s->regions[k];
        for (size_t i = 0; i < rg->tab_cap; i++) {
            if (rg->tab[i]) {
                free(rg->tab[i]->bits);
                free(rg->tab[i]);
            }
        }
        free(rg->tab);
        free(rg->sorted);
        free(rg->spans);
        free(rg->name);
    }
    free(s->regions);
    free(s->by_id);
    for (size_t i = 0; i < s->devs_cap; i++)
        dev_free(s->devs[i]);
    free(s->devs);
    free(s->machine);
    free(s->description);
    if (s->fd >= 0)
        close(s->fd);
}

/* ---------------------------------------------------------------- output */

static bool json;
static struct {
    uint64_t meta, regions, pages, ranges, devices;
} total;

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
static void put_name(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

/* Prints @p v; returns -1 if a CBOR item cannot be formatted. */
static int put_val(val v)
{
    switch (v.k) {
    case V_NONE:
        fputs(json ? "null" : "(none)", stdout);
        break;
    case V_STR:
        mst_json_string(stdout, v.s);
        break;
    case V_NUM:
        printf("%" PRIu64, v.n);
        break;
    case V_ADDR:
        printf(json ? "\"0x%" PRIx64 "\"" : "0x%" PRIx64, v.n);
        break;
    case V_RAW:
        if (json)
            mst_json_string(stdout, v.s);
        else
            fputs(v.s, stdout);
        break;
    case V_CBOR: {
        char *t =
            mst_cbor_text((const uint8_t *)v.s, (size_t)v.n, json ? MS_CBOR_JSON : MS_CBOR_DIAG);
        if (!t)
            return -1;
        fputs(t, stdout);
        free(t);
        break;
    }
    }
    return 0;
}

static void meta_line(const char *field, val a, val b)
{
    total.meta++;
    if (json) {
        printf("{\"type\":\"meta\",\"field\":\"%s\",\"a\":", field);
        put_val(a);
        fputs(",\"b\":", stdout);
        put_val(b);
        fputs("}\n", stdout);
    } else {
        printf("meta %s: ", field);
        put_val(a);
        fputs(" -> ", stdout);
        put_val(b);
        putchar('\n');
    }
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void compare_meta(const side *a, const side *b)
{
    char va[16], vb[16];
    snprintf(va, sizeof va, "%u.%u", a->hdr.major, a->hdr.minor);
    snprintf(vb, sizeof vb, "%u.%u", b->hdr.major, b->hdr.minor);
    if (strcmp(va, vb))
        meta_line("format", (val){V_RAW, va, 0}, (val){V_RAW, vb, 0});
    if (a->hdr.page_size != b->hdr.page_size)
        meta_line("page_size", v_num(a->hdr.page_size), v_num(b->hdr.page_size));
    if (a->hdr.required_features != b->hdr.required_features)
        meta_line("required_features", v_num(a->hdr.required_features),
                  v_num(b->hdr.required_features));
    if (a->hdr.optional_features != b->hdr.optional_features)
        meta_line("optional_features", v_num(a->hdr.optional_features),
                  v_num(b->hdr.optional_features));
    if (strcmp(a->hdr.writer_name, b->hdr.writer_name))
        meta_line("writer_name", v_str(a->hdr.writer_name), v_str(b->hdr.writer_name));
    if (strcmp(a->hdr.writer_version, b->hdr.writer_version))
        meta_line("writer_version", v_str(a->hdr.writer_version), v_str(b->hdr.writer_version));
    if (!str_eq(a->machine, b->machine))
        meta_line("machine", v_str(a->machine), v_str(b->machine));
    if (!str_eq(a->description, b->description))
        meta_line("description", v_str(a->description), v_str(b->description));
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

static int chunk_cmp(const void *x, const void *y)
{
    const chunk *a = *(chunk *const *)x, *b = *(chunk *const *)y;
    return (a->index > b->index) - (a->index < b->index);
}

static int sort_chunks(region *rg)
{
    rg->sorted = malloc((rg->nchunks ? rg->nchunks : 1) * sizeof *rg->sorted);
    if (!rg->sorted)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < rg->tab_cap; i++)
        if (rg->tab[i])
            rg->sorted[n++] = rg->tab[i];
    qsort(rg->sorted, n, sizeof *rg->sorted, chunk_cmp);
    return 0;
}

/* Walks one region's chunks and spans in page order (pages asked for only
 * ever increase). */
typedef struct walker {
    const region *rg;
    size_t k, s;      /* cursors into rg->sorted and rg->spans */
    const chunk *cur; /* the chunk holding the last page asked for, or NULL */
} walker;

/* State of page @p page, and in @p end the first page after it that may
 * be in another state (UINT64_MAX past the region's end). */
static uint8_t run_at(walker *w, uint64_t page, uint64_t *end)
{
    const region *rg = w->rg;
    w->cur = NULL;
    if (page >= rg->pages) {
        *end = UINT64_MAX;
        return ST_MISSING;
    }
    uint64_t cp = rg->chunk_pages, ci = page / cp, cstart = ci * cp;
    while (w->k < rg->nchunks && rg->sorted[w->k]->index < ci)
        w->k++;
    while (w->s < rg->nspans && rg->spans[w->s].c1 <= ci)
        w->s++;
    const span *sp = w->s < rg->nspans && rg->spans[w->s].c0 <= ci ? &rg->spans[w->s] : NULL;
    const chunk *c = w->k < rg->nchunks && rg->sorted[w->k]->index == ci ? rg->sorted[w->k] : NULL;
    if (c && sp && sp->seq > c->seq)
        c = NULL; /* stale: the span replaced it */
    if (!c) {
        size_t k = w->k + (w->k < rg->nchunks && rg->sorted[w->k]->index == ci);
        uint64_t next = k < rg->nchunks ? rg->sorted[k]->index : UINT64_MAX;
        if (sp)
            next = min_u64(next, sp->c1);
        else if (w->s < rg->nspans)
            next = min_u64(next, rg->spans[w->s].c0);
        *end = next == UINT64_MAX ? rg->pages : min_u64(next * cp, rg->pages);
        return sp ? sp->st : ST_MISSING;
    }
    w->cur = c;
    uint64_t cend = min_u64(cstart + cp, rg->pages);
    if (!c->bits) {
        *end = cend;
        return c->uniform;
    }
    uint8_t st = bits_get(c, page - cstart);
    uint64_t p = page + 1;
    while (p < cend && bits_get(c, p - cstart) == st)
        p++;
    *end = p;
    return st;
}

/* Pages by state, for a region present on one side only. */
static void count_states(const region *rg, uint64_t count[3])
{
    walker w = {rg, 0, 0, NULL};
    count[0] = count[1] = count[2] = 0;
    for (uint64_t p = 0, e; p < rg->pages; p = e) {
        uint8_t st = run_at(&w, p, &e);
        count[st] += e - p;
    }
}

static void region_only_line(const region *rg, const char *side_label)
{
    uint64_t n[3];
    count_states(rg, n);
    val gpa = rg->has_gpa ? (val){V_ADDR, NULL, rg->gpa} : v_none();
    total.regions++;
    if (json) {
        printf("{\"type\":\"region-only\",\"side\":\"%c\",\"region\":", side_label[0] + 'a' - 'A');
        mst_json_string(stdout, rg->name);
        printf(",\"id\":%" PRIu32 ",\"size\":%" PRIu64 ",\"page_size\":%" PRIu32 ",\"gpa\":",
               rg->id, rg->size, rg->page_size);
        put_val(gpa);
        printf(",\"data\":%" PRIu64 ",\"zero\":%" PRIu64 ",\"missing\":%" PRIu64 "}\n", n[ST_DATA],
               n[ST_ZERO], n[ST_MISSING]);
    } else {
        fputs("region ", stdout);
        put_name(rg->name);
        printf(": only in %s (id %" PRIu32 ", size %" PRIu64 ", page_size %" PRIu32 ", gpa ",
               side_label, rg->id, rg->size, rg->page_size);
        put_val(gpa);
        printf("): %" PRIu64 " data, %" PRIu64 " zero, %" PRIu64 " missing pages\n", n[ST_DATA],
               n[ST_ZERO], n[ST_MISSING]);
    }
}

static void region_line(const region *ra, const char *field, val a, val b)
{
    total.regions++;
    if (json) {
        fputs("{\"type\":\"region\",\"region\":", stdout);
        mst_json_string(stdout, ra->name);
        printf(",\"field\":\"%s\",\"a\":", field);
        put_val(a);
        fputs(",\"b\":", stdout);
        put_val(b);
        fputs("}\n", stdout);
    } else {
        fputs("region ", stdout);
        put_name(ra->name);
        printf(" %s: ", field);
        put_val(a);
        fputs(" -> ", stdout);
        put_val(b);
        putchar('\n');
    }
}

/* Differing pages are gathered into ranges: consecutive pages with the same
 * kind of difference form one range. */
typedef struct ranges {
    const region *rg;
    bool open;
    uint8_t a, b;
    uint64_t first, count;
    uint64_t nranges, npages; /* for this region */
} ranges;

static void range_flush(ranges *r)
{
    if (!r->open)
        return;
    r->open = false;
    r->nranges++;
    r->npages += r->count;
    uint64_t last = r->first + r->count - 1;
    if (json) {
        fputs("{\"type\":\"memory\",\"region\":", stdout);
        mst_json_string(stdout, r->rg->name);
        printf(",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
               ",\"a\":\"%s\",\"b\":\"%s\"}\n",
               r->first, last, r->count, state_name[r->a], state_name[r->b]);
        return;
    }
    fputs("memory ", stdout);
    put_name(r->rg->name);
    if (r->count == 1)
        printf(" page %" PRIu64 ": ", r->first);
    else
        printf(" pages %" PRIu64 "..%" PRIu64 ": ", r->first, last);
    if (r->a == r->b)
        fputs("data differs", stdout);
    else
        printf("%s -> %s", state_name[r->a], state_name[r->b]);
    printf(" (%" PRIu64 " page%s)\n", r->count, r->count == 1 ? "" : "s");
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
    uint64_t cstart = w->cur->index * w->rg->chunk_pages * w->rg->page_size;
    return w->cur->file_off + (int64_t)(byte - cstart);
}

typedef struct cmp_bufs {
    uint8_t *a, *b;
    size_t size;
} cmp_bufs;

/* Compares region @p ra of A with region @p rb of B, page by page, and
 * prints the differing ranges. Returns 0, or -1 after printing why. */
static int compare_pages(const side *sa, const region *ra, const side *sb, const region *rb,
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
        if (!buf->a || !buf->b) {
            mst_error("out of memory");
            return -1;
        }
    }
    walker wa = {ra, 0, 0, NULL}, wb = {rb, 0, 0, NULL};
    ranges rr = {.rg = ra};
    uint64_t u = 0, end_a = 0, end_b = 0;
    uint8_t st_a = ST_MISSING, st_b = ST_MISSING;
    while (u < units) {
        uint64_t e;
        if (u >= end_a) {
            st_a = run_at(&wa, u / ratio_a, &e);
            end_a = e == UINT64_MAX ? units : min_u64(units, e * ratio_a);
        }
        if (u >= end_b) {
            st_b = run_at(&wb, u / ratio_b, &e);
            end_b = e == UINT64_MAX ? units : min_u64(units, e * ratio_b);
        }
        uint64_t stop = min_u64(end_a, end_b);
        /* Contents are read where they decide: where both sides hold data,
         * and where a side's page is larger than the unit (a unit of a
         * DATA page may hold only zero bytes: it then counts as ZERO, as a
         * whole page of zero bytes does when it is loaded). */
        bool need_a = st_a == ST_DATA && (ratio_a > 1 || st_b == ST_DATA);
        bool need_b = st_b == ST_DATA && (ratio_b > 1 || st_a == ST_DATA);
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
                range_flush(&rr);
                mst_error("cannot read a temporary file: %s", strerror(errno));
                return -1;
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
        total.pages += rr.npages;
        total.ranges += rr.nranges;
        if (json) {
            fputs("{\"type\":\"memory-total\",\"region\":", stdout);
            mst_json_string(stdout, ra->name);
            printf(",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 "}\n", rr.npages, rr.nranges);
        } else {
            fputs("memory ", stdout);
            put_name(ra->name);
            printf(": %" PRIu64 " page%s differ%s in %" PRIu64 " range%s\n", rr.npages,
                   rr.npages == 1 ? "" : "s", rr.npages == 1 ? "s" : "", rr.nranges,
                   rr.nranges == 1 ? "" : "s");
        }
    }
    return 0;
}

static int compare_regions(side *a, side *b)
{
    cmp_bufs buf = {malloc(CMP_BUF), malloc(CMP_BUF), CMP_BUF};
    int rc = buf.a && buf.b ? 0 : -1;
    for (size_t k = 0; k < a->nregions && rc == 0; k++)
        rc = sort_chunks(&a->regions[k]);
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        rc = sort_chunks(&b->regions[k]);
    if (rc)
        mst_error("out of memory");
    match_regions(a, b);
    for (size_t k = 0; k < a->nregions && rc == 0; k++) {
        const region *ra = &a->regions[k];
        if (ra->match < 0) {
            region_only_line(ra, "A");
            continue;
        }
        const region *rb = &b->regions[ra->match];
        if (strcmp(ra->name, rb->name))
            region_line(ra, "name", v_str(ra->name), v_str(rb->name));
        if (ra->size != rb->size)
            region_line(ra, "size", v_num(ra->size), v_num(rb->size));
        if (ra->page_size != rb->page_size)
            region_line(ra, "page_size", v_num(ra->page_size), v_num(rb->page_size));
        if (ra->has_gpa != rb->has_gpa || (ra->has_gpa && ra->gpa != rb->gpa))
            region_line(ra, "gpa", ra->has_gpa ? (val){V_ADDR, NULL, ra->gpa} : v_none(),
                        rb->has_gpa ? (val){V_ADDR, NULL, rb->gpa} : v_none());
        rc = compare_pages(a, ra, b, rb, &buf);
    }
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        if (b->regions[k].match < 0)
            region_only_line(&b->regions[k], "B");
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
static void dev_head(const char *type, const char *side_label, const device *d)
{
    if (json) {
        printf("{\"type\":\"%s\",", type);
        if (side_label)
            printf("\"side\":\"%c\",", side_label[0] + 'a' - 'A');
        fputs("\"path\":", stdout);
        mst_json_string(stdout, d->path);
        printf(",\"instance\":%" PRIu32, d->instance);
    } else {
        fputs("device ", stdout);
        put_name(d->path);
        printf("#%" PRIu32, d->instance);
    }
}

static void device_only_line(const device *d, const char *side_label)
{
    total.devices++;
    dev_head("device-only", side_label, d);
    if (json) {
        fputs(",\"schema\":", stdout);
        mst_json_string(stdout, d->schema);
        printf(",\"version\":%" PRIu32 "}\n", d->version);
    } else {
        printf(": only in %s (schema ", side_label);
        mst_json_string(stdout, d->schema);
        printf(", version %" PRIu32 ")\n", d->version);
    }
}

static void device_line(const device *d, const char *field, val a, val b)
{
    total.devices++;
    dev_head("device", NULL, d);
    if (json) {
        printf(",\"field\":\"%s\",\"a\":", field);
        put_val(a);
        fputs(",\"b\":", stdout);
        put_val(b);
        fputs("}\n", stdout);
    } else {
        printf(" %s: ", field);
        put_val(a);
        fputs(" -> ", stdout);
        put_val(b);
        putchar('\n');
    }
}

/* ms_cbor_diff callback: one line per differing field of a device state. */
static int state_diff(void *ctx, const char *path, const uint8_t *a, size_t a_size,
                      const uint8_t *b, size_t b_size)
{
    const device *d = ctx;
    int rc = 0;
    total.devices++;
    dev_head("device-state", NULL, d);
    if (json) {
        fputs(",\"at\":", stdout);
        mst_json_string(stdout, path);
        /* A side without the field has no "a" or "b" key: null would be
         * a CBOR null. */
        if (a) {
            fputs(",\"a\":", stdout);
            rc |= put_val((val){V_CBOR, (const char *)a, a_size});
        }
        if (b) {
            fputs(",\"b\":", stdout);
            rc |= put_val((val){V_CBOR, (const char *)b, b_size});
        }
        fputs("}\n", stdout);
    } else {
        printf(" state%s: ", path);
        rc |= put_val(a ? (val){V_CBOR, (const char *)a, a_size} : v_none());
        fputs(" -> ", stdout);
        rc |= put_val(b ? (val){V_CBOR, (const char *)b, b_size} : v_none());
        putchar('\n');
    }
    return rc ? MS_ECBOR : 0;
}

static int compare_devices(const side *a, const side *b)
{
    device **da = sorted_devices(a), **db = sorted_devices(b);
    int rc = 0;
    if (!da || !db) {
        mst_error("out of memory");
        rc = -1;
    }
    size_t i = 0, j = 0;
    while (rc == 0 && (i < a->ndevs || j < b->ndevs)) {
        int c = i == a->ndevs ? 1 : j == b->ndevs ? -1 : dev_cmp(&da[i], &db[j]);
        if (c < 0) {
            device_only_line(da[i++], "A");
            continue;
        }
        if (c > 0) {
            device_only_line(db[j++], "B");
            continue;
        }
        const device *x = da[i++], *y = db[j++];
        if (strcmp(x->schema, y->schema))
            device_line(x, "schema", v_str(x->schema), v_str(y->schema));
        if (x->version != y->version)
            device_line(x, "version", v_num(x->version), v_num(y->version));
        int n =
            ms_cbor_diff(x->state, x->state_size, y->state, y->state_size, state_diff, (void *)x);
        if (n < 0) {
            fflush(stdout);
            mst_error("device %s#%" PRIu32 ": cannot compare the states: %s", x->path, x->instance,
                      ms_strerror(n));
            rc = -1;
        }
    }
    free(da);
    free(db);
    return rc;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: migstream-diff [--json] A B\n"
               "\n"
               "Compares two libmigstream streams by the guest state they describe:\n"
               "memory page by page, device state field by field, and stream metadata.\n"
               "A or B (not both) may be \"-\" for standard input.\n"
               "\n"
               "  --json     one JSON object per line (JSON Lines) instead of text\n"
               "  --help     print this help and exit\n"
               "  --version  print the version and exit\n"
               "\n"
               "DATA pages are kept in temporary files in $TMPDIR (default /tmp).\n"
               "Exit status: 0 same, 1 different, 2 usage or I/O error or unreadable stream.\n");
}

static void short_usage(void)
{
    fprintf(stderr, "usage: migstream-diff [--json] A B  (see --help)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    mst_init(argv[0]);
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return MST_EXIT_OK;
        case 'V':
            mst_print_version();
            return MST_EXIT_OK;
        default: /* getopt's own message would name the program by its path */
            mst_error("invalid option: %s", argv[optind - 1]);
            short_usage();
            return MST_EXIT_ERROR;
        }
    }
    if (argc - optind != 2) {
        mst_error("expected two streams, A and B");
        short_usage();
        return MST_EXIT_ERROR;
    }
    if (strcmp(argv[optind], "-") == 0 && strcmp(argv[optind + 1], "-") == 0) {
        mst_error("standard input can be only one of A and B");
        return MST_EXIT_ERROR;
    }
    side a = {.label = "A", .input = argv[optind], .fd = -1};
    side b = {.label = "B", .input = argv[optind + 1], .fd = -1};
    int status = MST_EXIT_ERROR;
    if (load_side(&a) || load_side(&b))
        goto out;
    compare_meta(&a, &b);
    if (compare_regions(&a, &b) || compare_devices(&a, &b))
        goto out;
    bool same = !total.meta && !total.regions && !total.ranges && !total.devices;
    if (json)
        printf("{\"type\":\"summary\",\"same\":%s,\"metadata\":%" PRIu64 ",\"regions\":%" PRIu64
               ",\"pages\":%" PRIu64 ",\"ranges\":%" PRIu64 ",\"devices\":%" PRIu64 "}\n",
               same ? "true" : "false", total.meta, total.regions, total.pages, total.ranges,
               total.devices);
    else if (same)
        puts("same");
    else
        printf("different: metadata %" PRIu64 ", regions %" PRIu64 ", pages %" PRIu64 " in %" PRIu64
               " ranges, devices %" PRIu64 "\n",
               total.meta, total.regions, total.pages, total.ranges, total.devices);
    status = same ? MST_EXIT_OK : MST_EXIT_FAIL;
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write the output: %s", strerror(errno));
        status = MST_EXIT_ERROR;
    }
    free_side(&a);
    free_side(&b);
    return status;
}
