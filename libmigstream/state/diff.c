/*
 * ms_diff (include/migstream/diff.h): comparing two streams by their final
 * state.
 *
 * Each stream is replayed (ms_replay) into a "side":
 *   - per region, a page-state map (region_map.h), so memory follows what
 *     the stream sent, not the sizes its regions declare;
 *   - the contents of DATA pages, in an unlinked sparse temporary file (one
 *     per side; each map chunk that receives data gets its own window);
 *   - IN_PLACE references (in_place.h), compared by address;
 *   - the last state of each device (path, instance), and each overlay
 *     with the 4 KiB it builds, in memory.
 * The two sides are then walked together and each difference is handed to
 * the caller's callback (docs/man/migstream-diff.1 is the reference for the
 * rules below, and for the output migstream-diff makes of them).
 */
#define _GNU_SOURCE /* O_CLOEXEC, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "migstream/diff.h"
#include "migstream/overlay.h"
#include "migstream/replay.h"
#include "migstream/cbor.h"
#include "common/util.h"
#include "format/frame.h"
#include "state/in_place.h"
#include "state/region_map.h"

/* Page states as the comparison tracks them (region_map.h): final contents
 * are compared, so a DATA page of zero bytes is recorded as ZERO, and a FILL
 * page (its word, which is never 0, kept with it in the map) is reported as
 * the DATA it stands for. DISCARDED ("don't care") and IN_PLACE (not in the
 * stream: compared by address) keep their own states. */
enum {
    ST_MISSING = MSI_PM_MISSING,
    ST_DATA = MSI_PM_DATA,
    ST_ZERO = MSI_PM_ZERO,
    ST_DISCARDED = MS_PAGE_DISCARDED,
    ST_FILL = MS_PAGE_FILL,
    ST_IN_PLACE = MS_PAGE_IN_PLACE,
};

#define CMP_BUF (1u << 20) /* bytes read per side per step */
#define CB_FAIL (-10000)   /* a replay callback failed; the side says why */

typedef struct region {
    ms_region r; /* r.name is our copy */
    uint64_t pages;
    msi_pm *map;
    long match; /* index of the matching region on the other side, or -1 */
} region;

typedef struct overlay {
    ms_overlay o; /* slot pointers cleared: the contents are in page */
    uint8_t page[MS_OVERLAY_PAGE_SIZE];
} overlay;

/* What both sides keep, against the options' limits: the temporary files'
 * bytes (against max_output, or the free space when the first file was
 * made and it was smaller) and the device states' bytes. */
typedef struct keep {
    uint64_t tmp_bytes, tmp_limit;
    bool tmp_free; /* tmp_limit is the free space */
    bool tmp_full; /* a side failed for want of room there */
    size_t dev_bytes, dev_limit;
} keep;

typedef struct side {
    const char *label; /* "A" / "B" */
    keep *keep;
    bool loaded;
    const char *format; /* ms_reader_format(): static */
    msi_pm_budget budget;
    ms_header hdr;
    char *machine, *description; /* NULL: absent */
    region *regions;             /* in declaration order */
    size_t nregions, regions_cap;
    size_t *by_id;    /* region indexes sorted by id */
    size_t last;      /* region lookup cache */
    ms_device **devs; /* open addressing on (path, instance); members owned */
    size_t devs_cap, ndevs;
    int fd; /* temporary file, -1 until the first DATA page */
    int64_t next_off;
    ms_in_place in_place; /* IN_PLACE extents: the addresses compared */
    overlay *overlays;    /* bounded by the reader's overlay limit */
    size_t noverlays;
    const char *tmpdir;
    ms_allocator alloc; /* malloc: for the maps */
    int status;         /* of a failed callback */
    char err[512];
    bool have_header;      /* the preamble was read */
    bool info_seen;        /* an INFO record was read */
    bool damaged;          /* kept up to its damage (keep_damaged) */
    ms_diff_damage damage; /* then: where; message points to damage_msg */
    char damage_msg[1024];
} side;

struct ms_diff {
    side s[2];
    keep keep;
    char *tmpdir;
    bool compared;
    bool keep_damaged;
    int status; /* sticky */
    ms_diff_totals total;
    ms_diff_fn fn;
    void *ctx;
    int cb_rc; /* what the caller's callback returned, when negative */
    char err[1024];
};

/* ------------------------------------------------------------ small helpers */

/* A replay callback's failure: the side keeps the status and the message. */
__attribute__((format(printf, 3, 4))) static int fail(side *s, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    s->status = status;
    return CB_FAIL;
}

/* The handle's failure: sticky, with its message. */
__attribute__((format(printf, 3, 4))) static int oops(ms_diff *df, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(df->err, sizeof df->err, fmt, ap);
    va_end(ap);
    df->status = status;
    return status;
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

/* Pages [first, first + n) of @p rg now hold state @p st (FILL: with the
 * word @p arg); @p had, when not NULL, gets what they were before. The
 * range is inside the region: the reader checked it (FORMAT.md section
 * 6.2). */
static int set_range(side *s, region *rg, uint64_t first, uint64_t n, unsigned st, uint64_t arg,
                     uint64_t *had)
{
    int rc = st == ST_FILL ? msi_pm_set_arg(rg->map, first, n, st, arg, had)
                           : msi_pm_set(rg->map, first, n, st, had);
    if (rc == MS_ELIMIT)
        return fail(s, MS_ELIMIT,
                    "region %" PRIu32 " \"%s\": the page-state maps would exceed %zu MiB; "
                    "the stream scatters page states too finely",
                    rg->r.id, rg->r.name, s->budget.limit >> 20);
    if (rc == MS_ENOMEM)
        return fail(s, MS_ENOMEM, "out of memory");
    if (rc)
        return fail(s, MS_ECORRUPT,
                    "region %" PRIu32 ": pages %" PRIu64 "+%" PRIu64 " outside the region",
                    rg->r.id, first, n);
    return 0;
}

static const char *tmp_dir(const side *s)
{
    const char *dir = s->tmpdir ? s->tmpdir : getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

/* Creates the side's temporary file, and takes the free space of its file
 * system as the limit of the temporary files when it is below
 * max_output. */
static int make_tmp(side *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/migstream-diff-XXXXXX", tmp_dir(s));
    s->fd = mkostemp(path, O_CLOEXEC);
    if (s->fd < 0)
        return fail(s, MS_EIO, "cannot create a temporary file in %s: %s", tmp_dir(s),
                    strerror(errno));
    unlink(path);
    struct statvfs v;
    keep *k = s->keep;
    if (fstatvfs(s->fd, &v) == 0 && v.f_frsize &&
        (uint64_t)v.f_bavail <= (k->tmp_limit - k->tmp_bytes) / v.f_frsize) {
        k->tmp_limit = k->tmp_bytes + (uint64_t)v.f_bavail * v.f_frsize;
        k->tmp_free = true;
    }
    return 0;
}

/* Marks @p n non-zero pages DATA and stores their contents. */
static int store_data(side *s, region *rg, uint64_t first, uint64_t n, const uint8_t *data)
{
    uint64_t had[MSI_PM_STATES] = {0};
    int rc = s->fd < 0 ? make_tmp(s) : 0;
    if (rc)
        return rc;
    size_t ps = rg->r.page_size;
    if ((rc = set_range(s, rg, first, n, ST_DATA, 0, had)))
        return rc;
    /* Pages that were DATA already are written over in place. */
    keep *k = s->keep;
    uint64_t more = (n - had[ST_DATA]) * ps;
    if (more > k->tmp_limit - k->tmp_bytes) {
        uint64_t total = k->tmp_bytes > UINT64_MAX - more ? UINT64_MAX : k->tmp_bytes + more;
        double shown;
        const char *unit = msi_mib_gib(total, &shown);
        k->tmp_full = true;
        if (k->tmp_free)
            return fail(s, MS_ELIMIT,
                        "region %" PRIu32 " \"%s\": the temporary files would take %" PRIu64
                        " bytes (%.1f %s) with these DATA pages, more than the %" PRIu64
                        " bytes free where they are made (%s)",
                        rg->r.id, rg->r.name, total, shown, unit, k->tmp_limit, tmp_dir(s));
        return fail(s, MS_ELIMIT,
                    "region %" PRIu32 " \"%s\": the temporary files would take %" PRIu64
                    " bytes (%.1f %s) with these DATA pages, more than their limit of %" PRIu64
                    " bytes (max_output)",
                    rg->r.id, rg->r.name, total, shown, unit, k->tmp_limit);
    }
    k->tmp_bytes += more;
    uint64_t end = first + n, cp = MSI_PM_CHUNK_PAGES;
    while (first < end) {
        uint64_t cstart = first / cp * cp;
        uint64_t e = min_u64(end, min_u64(cstart + cp, rg->pages));
        /* set_range made the chunk: DATA never becomes a span. */
        int64_t *slot = msi_pm_slot(rg->map, first);
        if (!slot)
            return fail(s, MS_EINVAL, "internal error: no chunk for page %" PRIu64, first);
        if (*slot < 0) {
            uint64_t window = (min_u64(cstart + cp, rg->pages) - cstart) * ps;
            if ((uint64_t)s->next_off > (uint64_t)INT64_MAX - window)
                return fail(s, MS_ELIMIT, "temporary file would exceed the largest file offset");
            *slot = s->next_off;
            s->next_off += (int64_t)window;
        }
        if (pwrite_all(s->fd, data, (size_t)(e - first) * ps,
                       *slot + (int64_t)((first - cstart) * ps)))
            return fail(s, MS_EIO, "cannot write the temporary file: %s", strerror(errno));
        data += (size_t)(e - first) * ps;
        first = e;
    }
    return 0;
}

/* ------------------------------------------------------ replay callbacks */

static int on_header(void *ctx, const ms_header *h)
{
    side *s = ctx;
    s->hdr = *h;
    s->have_header = true;
    return 0;
}

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static int on_info(void *ctx, const ms_info *info)
{
    side *s = ctx;
    s->info_seen = true;
    s->machine = dup_or_null(info->machine);
    s->description = dup_or_null(info->description);
    if ((info->machine && !s->machine) || (info->description && !s->description))
        return fail(s, MS_ENOMEM, "out of memory");
    return 0;
}

static int on_region(void *ctx, const ms_region *r)
{
    side *s = ctx;
    if (s->nregions == s->regions_cap) {
        size_t cap = s->regions_cap ? 2 * s->regions_cap : 8;
        region *nr = realloc(s->regions, cap * sizeof *nr);
        if (!nr)
            return fail(s, MS_ENOMEM, "out of memory");
        s->regions = nr;
        size_t *ni = realloc(s->by_id, cap * sizeof *ni);
        if (!ni)
            return fail(s, MS_ENOMEM, "out of memory");
        s->by_id = ni;
        s->regions_cap = cap;
    }
    region *rg = &s->regions[s->nregions];
    memset(rg, 0, sizeof *rg);
    rg->r = *r;
    char *name = strdup(r->name);
    if (!name)
        return fail(s, MS_ENOMEM, "out of memory");
    rg->r.name = name;
    rg->pages = r->size / r->page_size;
    rg->match = -1;
    int rc = msi_pm_new(&rg->map, rg->pages, &s->budget, &s->alloc);
    if (rc) {
        free(name);
        if (rc == MS_ELIMIT)
            return fail(s, rc,
                        "region %" PRIu32 " \"%s\": the page-state maps would exceed %zu MiB",
                        r->id, r->name, s->budget.limit >> 20);
        return fail(s, rc, "out of memory tracking region %" PRIu32 " \"%s\"", r->id, r->name);
    }
    /* Insertion into the id index: regions are few (4096 by default). */
    size_t k = s->nregions;
    while (k > 0 && s->regions[s->by_id[k - 1]].r.id > r->id) {
        s->by_id[k] = s->by_id[k - 1];
        k--;
    }
    s->by_id[k] = s->nregions++;
    return 0;
}

static region *find_region(side *s, uint32_t id)
{
    if (s->last < s->nregions && s->regions[s->last].r.id == id)
        return &s->regions[s->last];
    size_t lo = 0, hi = s->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = s->regions[s->by_id[mid]].r.id;
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

/* DUPLICATE pages (FORMAT.md section 6.2) take their sources' contents as
 * the comparison holds them: a DATA page's stored bytes, or zero. The
 * comparison keeps contents, not how they came (a FILL page is stored as
 * DATA, a DATA page of zeros as ZERO), so it refuses only sources with no
 * contents at all; migstream-validate and the replay check the rest. */
static int store_duplicate(side *s, region *rg, uint64_t first, uint32_t count, uint64_t src)
{
    const size_t ps = rg->r.page_size;
    uint8_t *page = NULL;
    int rc = 0;
    for (uint32_t k = 0; k < count && rc == 0; k++) {
        uint64_t n[MSI_PM_STATES] = {0};
        msi_pm_range_counts(rg->map, src + k, 1, n);
        if (n[ST_ZERO]) {
            rc = set_range(s, rg, first + k, 1, ST_ZERO, 0, NULL);
            continue;
        }
        const int64_t *slot = msi_pm_slot(rg->map, src + k);
        if (!n[ST_DATA] || !slot || *slot < 0) {
            rc = fail(s, MS_ECORRUPT,
                      "region %" PRIu32 ": DUPLICATE page %" PRIu64 " refers to page %" PRIu64
                      ", which holds no DATA sent earlier (FORMAT.md section 6.2)",
                      rg->r.id, first + k, src + k);
            break;
        }
        if (!page && !(page = malloc(ps)))
            return fail(s, MS_ENOMEM, "out of memory");
        uint64_t cstart = (src + k) / MSI_PM_CHUNK_PAGES * MSI_PM_CHUNK_PAGES;
        if (pread_all(s->fd, page, ps, *slot + (int64_t)((src + k - cstart) * ps))) {
            rc = fail(s, MS_EIO, "cannot read the temporary file: %s", strerror(errno));
            break;
        }
        rc = store_data(s, rg, first + k, 1, page);
    }
    free(page);
    return rc;
}

static int on_overlay(void *ctx, const ms_overlay *o)
{
    side *s = ctx;
    overlay *grown = realloc(s->overlays, (s->noverlays + 1) * sizeof *grown);
    if (!grown)
        return fail(s, MS_ENOMEM, "out of memory");
    s->overlays = grown;
    overlay *v = &grown[s->noverlays];
    if (ms_overlay_render(o, v->page)) /* the reader checked it */
        return fail(s, MS_ECORRUPT, "overlay at frame 0x%" PRIx64 " cannot be rendered", o->gfn);
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
        return fail(s, MS_ECORRUPT, "pages for region %" PRIu32 ", which was never declared",
                    r->id);
    if (x->state == MS_PAGE_ZERO || x->state == MS_PAGE_DISCARDED)
        return set_range(s, rg, x->first, x->count, x->state, 0, NULL);
    if (x->state == MS_PAGE_IN_PLACE) {
        int rc = ms_in_place_add(&s->in_place, r, x);
        if (rc)
            return fail(s, rc, "region %" PRIu32 ": %s", r->id,
                        rc == MS_ELIMIT   ? "more IN_PLACE extents than the comparison keeps (4096)"
                        : rc == MS_ENOMEM ? "out of memory"
                                          : "an IN_PLACE reference the reader should refuse");
        return set_range(s, rg, x->first, x->count, ST_IN_PLACE, 0, NULL);
    }
    if (x->state == MS_PAGE_FILL) /* one entry per run, with its word */
        return set_range(s, rg, x->first, x->count, ST_FILL, x->arg, NULL);
    if (x->state == MS_PAGE_DUPLICATE)
        return store_duplicate(s, rg, x->first, x->count, x->arg);
    if (x->state != MS_PAGE_DATA || !data)
        return fail(s, MS_EFEATURE, "page state %u is not one the comparison knows", x->state);
    /* A DATA page of zero bytes has the effect of a ZERO page: it is
     * recorded as one, so that writers that do not detect zero pages
     * compare equal to writers that do. */
    size_t ps = rg->r.page_size;
    uint64_t i = 0;
    bool z = all_zero(data, ps);
    while (i < x->count) {
        uint64_t j = i + 1;
        bool zj = false;
        while (j < x->count && (zj = all_zero(data + j * ps, ps)) == z)
            j++;
        int rc = z ? set_range(s, rg, x->first + i, j - i, ST_ZERO, 0, NULL)
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

static void dev_free(ms_device *d)
{
    if (!d)
        return;
    free((char *)d->path);
    free((char *)d->schema);
    free((uint8_t *)d->state);
    free(d);
}

/* Bytes a kept device state counts for (ms_diff_options.max_device_memory). */
static size_t dev_cost(const ms_device *d)
{
    return d->state_size + strlen(d->path) + strlen(d->schema) + 64;
}

static int on_device(void *ctx, const ms_device *d)
{
    side *s = ctx;
    if (2 * (s->ndevs + 1) > s->devs_cap) {
        size_t cap = s->devs_cap ? 2 * s->devs_cap : 16;
        ms_device **t = calloc(cap, sizeof *t);
        if (!t)
            return fail(s, MS_ENOMEM, "out of memory");
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
    /* A later record for the same path and instance replaces an earlier
     * one (FORMAT.md section 2), in the count of what is kept too. */
    size_t mask = s->devs_cap - 1, i = (size_t)dev_hash(d->path, d->instance) & mask;
    for (; s->devs[i]; i = (i + 1) & mask)
        if (s->devs[i]->instance == d->instance && strcmp(s->devs[i]->path, d->path) == 0)
            break;
    keep *k = s->keep;
    size_t was = s->devs[i] ? dev_cost(s->devs[i]) : 0, cost = dev_cost(d);
    if (cost > was && cost - was > k->dev_limit - k->dev_bytes)
        return fail(s, MS_ELIMIT,
                    "device \"%s\" instance %" PRIu32 ": the device states kept would take more "
                    "than %zu MiB",
                    d->path, d->instance, k->dev_limit >> 20);
    ms_device *nd = calloc(1, sizeof *nd);
    if (!nd)
        return fail(s, MS_ENOMEM, "out of memory");
    char *path = strdup(d->path), *schema = strdup(d->schema);
    uint8_t *state = malloc(d->state_size ? d->state_size : 1);
    nd->path = path;
    nd->schema = schema;
    nd->state = state;
    nd->instance = d->instance;
    nd->version = d->version;
    nd->state_size = d->state_size;
    if (!path || !schema || !state) {
        dev_free(nd);
        return fail(s, MS_ENOMEM, "out of memory");
    }
    memcpy(state, d->state, d->state_size);
    k->dev_bytes = k->dev_bytes - was + cost;
    if (s->devs[i])
        dev_free(s->devs[i]);
    else
        s->ndevs++;
    s->devs[i] = nd;
    return 0;
}

static void free_side(side *s)
{
    for (size_t k = 0; k < s->nregions; k++) {
        msi_pm_free(s->regions[k].map);
        free((char *)s->regions[k].r.name);
    }
    free(s->regions);
    free(s->by_id);
    for (size_t i = 0; i < s->devs_cap; i++)
        dev_free(s->devs[i]);
    free(s->devs);
    free(s->machine);
    free(s->description);
    free(s->overlays);
    msi_in_place_clear(&s->in_place);
    if (s->fd >= 0)
        close(s->fd);
}

/* ---------------------------------------------------------------- handle */

void ms_diff_options_init(ms_diff_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_map_memory = MS_PAGEMAP_DEFAULT_MEMORY;
    opts->max_output = MS_MAX_OUTPUT_DEFAULT;
    opts->max_device_memory = MS_DIFF_DEFAULT_DEVICE_MEMORY;
}

ms_diff *ms_diff_new(const ms_diff_options *opts)
{
    ms_diff_options o;
    ms_diff_options_init(&o);
    const char *why =
        opts ? msi_struct_take(&o, MSI_STRUCT_END(ms_diff_options, keep_damaged), opts,
                               opts->struct_size)
             : NULL;
    ms_diff *df = calloc(1, sizeof *df);
    if (!df)
        return NULL;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        df->status = MS_EINVAL;
        snprintf(df->err, sizeof df->err, "invalid diff options: %s", why);
        ms_diff_options_init(&o);
    }
    df->keep_damaged = o.keep_damaged;
    if (o.tmpdir && !(df->tmpdir = strdup(o.tmpdir))) {
        free(df);
        return NULL;
    }
    df->keep.tmp_limit = o.max_output ? o.max_output : MS_MAX_OUTPUT_DEFAULT;
    df->keep.dev_limit = o.max_device_memory ? o.max_device_memory : MS_DIFF_DEFAULT_DEVICE_MEMORY;
    for (int i = 0; i < 2; i++) {
        side *s = &df->s[i];
        s->keep = &df->keep;
        s->label = i ? "B" : "A";
        s->fd = -1;
        s->tmpdir = df->tmpdir;
        s->budget.limit = o.max_map_memory ? o.max_map_memory : MS_PAGEMAP_DEFAULT_MEMORY;
        msi_allocator_set(&s->alloc, NULL);
        msi_in_place_init(&s->in_place, NULL, MS_IN_PLACE_DEFAULT_EXTENTS);
    }
    return df;
}

void ms_diff_free(ms_diff *df)
{
    if (!df)
        return;
    free_side(&df->s[0]);
    free_side(&df->s[1]);
    free(df->tmpdir);
    free(df);
}

bool ms_diff_output_full(const ms_diff *df)
{
    return df && df->status == MS_ELIMIT && df->keep.tmp_full;
}

int ms_diff_status(const ms_diff *df)
{
    return df ? df->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_diff_errmsg(const ms_diff *df)
{
    return df ? df->err : "out of memory creating the comparison";
}

const ms_diff_damage *ms_diff_get_damage(const ms_diff *df, ms_diff_side which)
{
    if (!df || (which != MS_DIFF_A && which != MS_DIFF_B) || !df->s[which].damaged)
        return NULL;
    return &df->s[which].damage;
}

/* Failures of the reader that are about the stream's bytes, after which
 * what was read before stays good: a side can be kept up to them. Not
 * what is about the input or this process (MS_EIO, MS_ENOMEM, MS_EAGAIN,
 * MS_EINVAL, MS_ESTATE). */
static bool is_damage(int rc)
{
    switch (rc) {
    case MS_ETRUNCATED:
    case MS_EMAGIC:
    case MS_EVERSION:
    case MS_EFEATURE:
    case MS_ECHECKSUM:
    case MS_ECORRUPT:
    case MS_EUNKNOWN:
    case MS_ELIMIT:
    case MS_ECBOR:
    case MS_ECOMPRESS:
        return true;
    default:
        return false;
    }
}

const ms_diff_totals *ms_diff_get_totals(const ms_diff *df)
{
    static const ms_diff_totals none;
    return df ? &df->total : &none;
}

int ms_diff_load(ms_diff *df, ms_diff_side which, ms_reader *r, const char *name)
{
    if (!df)
        return MS_EINVAL;
    if (df->status)
        return df->status;
    if ((which != MS_DIFF_A && which != MS_DIFF_B) || !r)
        return MS_EINVAL;
    side *s = &df->s[which];
    if (s->loaded || df->compared)
        return MS_ESTATE;
    s->loaded = true;
    s->format = ms_reader_format(r);
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
    if (rc == 0)
        return 0;
    const char *msg = rc == CB_FAIL ? s->err : ms_reader_errmsg(r);
    if (rc != CB_FAIL && df->keep_damaged && s->have_header && is_damage(rc)) {
        /* What the records before the damage left is the side's state. */
        if (name)
            snprintf(s->damage_msg, sizeof s->damage_msg, "stream %s (%s): %s", s->label, name,
                     *msg ? msg : ms_strerror(rc));
        else
            snprintf(s->damage_msg, sizeof s->damage_msg, "stream %s: %s", s->label,
                     *msg ? msg : ms_strerror(rc));
        s->damaged = true;
        s->damage = (ms_diff_damage){.status = rc,
                                     .offset = ms_reader_error_offset(r),
                                     .record = ms_reader_error_record(r),
                                     .part = ms_reader_error_part(r),
                                     .message = s->damage_msg};
        return MS_DIFF_DAMAGED;
    }
    if (rc == CB_FAIL)
        rc = s->status;
    if (name)
        return oops(df, rc, "stream %s (%s): %s", s->label, name, *msg ? msg : ms_strerror(rc));
    return oops(df, rc, "stream %s: %s", s->label, *msg ? msg : ms_strerror(rc));
}

/* ---------------------------------------------------------------- reports */

/* Counts an item and hands it to the caller. */
static int emit(ms_diff *df, const ms_diff_item *it)
{
    ms_diff_totals *t = &df->total;
    switch (it->kind) {
    case MS_DIFF_META:
        t->metadata++;
        break;
    case MS_DIFF_REGION:
    case MS_DIFF_REGION_ONLY:
        t->regions++;
        break;
    case MS_DIFF_PAGES:
        t->pages += it->count;
        t->ranges++;
        break;
    case MS_DIFF_PAGES_TOTAL:
        break;
    case MS_DIFF_OVERLAY:
    case MS_DIFF_OVERLAY_ONLY:
        t->overlays++;
        break;
    case MS_DIFF_DEVICE_ONLY:
    case MS_DIFF_DEVICE:
    case MS_DIFF_DEVICE_STATE:
        t->devices++;
        break;
    }
    int rc = df->fn ? df->fn(df->ctx, it) : 0;
    if (rc < 0)
        df->cb_rc = rc;
    return rc < 0 ? rc : 0;
}

static ms_diff_value v_none(void)
{
    return (ms_diff_value){.type = MS_DIFF_NONE};
}

static ms_diff_value v_text(const char *s)
{
    return s ? (ms_diff_value){.type = MS_DIFF_TEXT, .text = s} : v_none();
}

static ms_diff_value v_uint(uint64_t n)
{
    return (ms_diff_value){.type = MS_DIFF_UINT, .num = n};
}

static ms_diff_value v_addr(bool has, uint64_t n)
{
    return has ? (ms_diff_value){.type = MS_DIFF_ADDRESS, .num = n} : v_none();
}

static int meta(ms_diff *df, const char *field, ms_diff_value a, ms_diff_value b)
{
    ms_diff_item it = {.kind = MS_DIFF_META, .field = field, .a = a, .b = b};
    return emit(df, &it);
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether the side's INFO (machine, description) is known: read, or
 * absent from a stream read past its place, record 0, or record 1 after
 * a PART (FORMAT.md section 4.3). A side whose damage comes at or before
 * that place may have lost it: its INFO is unknown, and not compared (the
 * damage is reported already). */
static bool info_known(const side *s)
{
    int64_t slot = s->hdr.required_features & MS_FEATURE_PARTS ? 1 : 0;
    return s->info_seen || !s->damaged || s->damage.record > slot;
}

/* Two streams of different formats (a QEMU stream and its import): only
 * what describes the guest is compared, the page size and the machine; the
 * format version, feature bits, writer and description describe each
 * container. */
static int compare_meta_across(ms_diff *df, const side *a, const side *b)
{
    int rc = 0;
    if (a->hdr.page_size != b->hdr.page_size)
        rc = meta(df, "page_size", v_uint(a->hdr.page_size), v_uint(b->hdr.page_size));
    if (!rc && info_known(a) && info_known(b) && !str_eq(a->machine, b->machine))
        rc = meta(df, "machine", v_text(a->machine), v_text(b->machine));
    return rc;
}

/* A migration in parts against the same migration in one stream (FORMAT.md
 * section 2.1): the PARTS feature, and the minor version a writer stamps
 * because of it alone, describe how the migration travelled, not the
 * guest. They are left out of the comparison; a difference in anything
 * else is reported with the headers' own values. */
static uint64_t required_by_effect(const ms_header *h)
{
    return h->required_features & ~(uint64_t)MS_FEATURE_PARTS;
}

static uint32_t version_by_effect(const ms_header *h)
{
    uint16_t minor = h->minor;
    if ((h->required_features & MS_FEATURE_PARTS) && minor == msi_minor_for(h->required_features))
        minor = msi_minor_for(required_by_effect(h));
    return (uint32_t)h->major << 16 | minor;
}

static int compare_meta(ms_diff *df, const side *a, const side *b)
{
    if (!str_eq(a->format, b->format))
        return compare_meta_across(df, a, b);
    char va[16], vb[16];
    snprintf(va, sizeof va, "%u.%u", a->hdr.major, a->hdr.minor);
    snprintf(vb, sizeof vb, "%u.%u", b->hdr.major, b->hdr.minor);
    int rc = 0;
    if (version_by_effect(&a->hdr) != version_by_effect(&b->hdr))
        rc = meta(df, "format",
                  (ms_diff_value){MS_DIFF_VERSION, va, (uint64_t)a->hdr.major << 16 | a->hdr.minor,
                                  NULL, 0},
                  (ms_diff_value){MS_DIFF_VERSION, vb, (uint64_t)b->hdr.major << 16 | b->hdr.minor,
                                  NULL, 0});
    if (!rc && a->hdr.page_size != b->hdr.page_size)
        rc = meta(df, "page_size", v_uint(a->hdr.page_size), v_uint(b->hdr.page_size));
    if (!rc && required_by_effect(&a->hdr) != required_by_effect(&b->hdr))
        rc = meta(df, "required_features", v_uint(a->hdr.required_features),
                  v_uint(b->hdr.required_features));
    if (!rc && a->hdr.optional_features != b->hdr.optional_features)
        rc = meta(df, "optional_features", v_uint(a->hdr.optional_features),
                  v_uint(b->hdr.optional_features));
    if (!rc && strcmp(a->hdr.writer_name, b->hdr.writer_name))
        rc = meta(df, "writer_name", v_text(a->hdr.writer_name), v_text(b->hdr.writer_name));
    if (!rc && strcmp(a->hdr.writer_version, b->hdr.writer_version))
        rc = meta(df, "writer_version", v_text(a->hdr.writer_version),
                  v_text(b->hdr.writer_version));
    /* INFO: unless a damaged side may have lost it. */
    bool info = info_known(a) && info_known(b);
    if (!rc && info && !str_eq(a->machine, b->machine))
        rc = meta(df, "machine", v_text(a->machine), v_text(b->machine));
    if (!rc && info && !str_eq(a->description, b->description))
        rc = meta(df, "description", v_text(a->description), v_text(b->description));
    return rc;
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
                bool same_id = ra->r.id == rb->r.id,
                     same_name = strcmp(ra->r.name, rb->r.name) == 0;
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
    msi_pm_walk w;
    const region *rg;
    int64_t slot;         /* the current chunk's window in the temporary file */
    uint64_t chunk_start; /* byte offset of the current chunk in the region */
} walker;

static void walker_init(walker *w, const region *rg)
{
    msi_pm_walk_init(&w->w, rg->map);
    w->rg = rg;
    w->slot = -1;
    w->chunk_start = 0;
}

/* State of page @p page, and in @p end the first page after it that may
 * be in another state (UINT64_MAX past the region's end). */
static unsigned run_at(walker *w, uint64_t page, uint64_t *end)
{
    unsigned st = msi_pm_run(&w->w, page, end, &w->slot);
    w->chunk_start = page / MSI_PM_CHUNK_PAGES * MSI_PM_CHUNK_PAGES * w->rg->r.page_size;
    return st;
}

/* The state of the run of units of @p ratio per page that starts at unit
 * @p u, and in @p end the unit where it ends (at most @p units); for FILL,
 * its word in @p word and the run ends where the word changes. */
static uint8_t next_run(walker *w, uint64_t u, uint64_t ratio, uint64_t units, uint64_t *end,
                        uint64_t *word)
{
    uint64_t e, page = u / ratio;
    uint8_t st = (uint8_t)run_at(w, page, &e);
    if (st == ST_FILL) {
        uint64_t we;
        *word = msi_pm_arg(w->rg->map, page, &we);
        e = min_u64(e, we);
    }
    *end = e >= units / ratio + 1 ? units : min_u64(units, e * ratio);
    return st;
}

static int region_only(ms_diff *df, const region *rg, ms_diff_side which)
{
    uint64_t n[MSI_PM_STATES];
    msi_pm_counts(rg->map, n);
    ms_diff_item it = {.kind = MS_DIFF_REGION_ONLY, .side = which, .region = &rg->r, .states = n};
    return emit(df, &it);
}

static int region_field(ms_diff *df, const region *ra, const region *rb, const char *field,
                        ms_diff_value a, ms_diff_value b)
{
    ms_diff_item it = {.kind = MS_DIFF_REGION,
                       .field = field,
                       .a = a,
                       .b = b,
                       .region = &ra->r,
                       .region_b = &rb->r};
    return emit(df, &it);
}

/* Differing pages are gathered into ranges: consecutive pages with the same
 * kind of difference form one range. */
typedef struct ranges {
    ms_diff *df;
    const region *ra, *rb;
    uint32_t unit;
    bool open;
    uint8_t a, b;
    uint64_t first, count;
    uint64_t nranges, npages; /* for this pair */
    int rc;                   /* the callback stopped the comparison */
} ranges;

static void range_flush(ranges *r)
{
    if (!r->open || r->rc)
        return;
    r->open = false;
    r->nranges++;
    r->npages += r->count;
    ms_diff_item it = {.kind = MS_DIFF_PAGES,
                       .region = &r->ra->r,
                       .region_b = &r->rb->r,
                       .first = r->first,
                       .count = r->count,
                       .unit = r->unit,
                       .state_a = r->a,
                       .state_b = r->b};
    r->rc = emit(r->df, &it);
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
 * reports the differing ranges. Returns 0, or a negative status. */
static int compare_pages(ms_diff *df, const side *sa, const region *ra, const side *sb,
                         const region *rb, cmp_bufs *buf)
{
    /* When the page sizes differ, pages are compared in units of the
     * smaller one (both are powers of two). */
    uint64_t unit = ra->r.page_size < rb->r.page_size ? ra->r.page_size : rb->r.page_size;
    uint64_t ratio_a = ra->r.page_size / unit, ratio_b = rb->r.page_size / unit;
    uint64_t units = (ra->r.size > rb->r.size ? ra->r.size : rb->r.size) / unit;
    if (buf->size < unit) {
        free(buf->a);
        free(buf->b);
        buf->size = (size_t)unit;
        buf->a = malloc(buf->size);
        buf->b = malloc(buf->size);
        if (!buf->a || !buf->b)
            return oops(df, MS_ENOMEM, "out of memory");
    }
    walker wa, wb;
    walker_init(&wa, ra);
    walker_init(&wb, rb);
    ranges rr = {.df = df, .ra = ra, .rb = rb, .unit = (uint32_t)unit};
    uint64_t u = 0, end_a = 0, end_b = 0, word_a = 0, word_b = 0;
    uint8_t st_a = ST_MISSING, st_b = ST_MISSING;
    while (u < units && !rr.rc) {
        if (u >= end_a)
            st_a = next_run(&wa, u, ratio_a, units, &end_a, &word_a);
        if (u >= end_b)
            st_b = next_run(&wb, u, ratio_b, units, &end_b, &word_b);
        uint64_t stop = min_u64(end_a, end_b);
        /* FILL pages are the DATA they stand for; never zero (their word
         * is not 0), so that their bytes decide only against DATA. */
        uint8_t show_a = st_a == ST_FILL ? ST_DATA : st_a, show_b = st_b == ST_FILL ? ST_DATA : st_b;
        if (st_a == ST_FILL && st_b == ST_FILL) {
            if (word_a != word_b)
                range_add(&rr, ST_DATA, ST_DATA, u, stop - u);
            u = stop;
            continue;
        }
        /* Contents are read where they decide: where both sides hold data,
         * and where a side's page is larger than the unit (a unit of a
         * DATA page may hold only zero bytes: it then counts as ZERO, as a
         * whole page of zero bytes does when it is loaded). */
        bool need_a = st_a == ST_DATA && (ratio_a > 1 || show_b == ST_DATA);
        bool need_b = st_b == ST_DATA && (ratio_b > 1 || show_a == ST_DATA);
        if (st_a == ST_IN_PLACE && st_b == ST_IN_PLACE) {
            /* Same state: the pages must be in place at the same address. */
            for (uint64_t v = u; v < stop;) {
                uint64_t ea, eb;
                uint64_t aa = ms_in_place_address(&sa->in_place, ra->r.id, v / ratio_a, &ea) +
                              v % ratio_a * unit;
                uint64_t ab = ms_in_place_address(&sb->in_place, rb->r.id, v / ratio_b, &eb) +
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
            if (show_a != show_b)
                range_add(&rr, show_a, show_b, u, stop - u);
            u = stop;
            continue;
        }
        /* Bytes to compare: read from the temporary file (DATA), or the
         * pattern of a FILL word (against DATA, as much as is read). */
        bool have_a = need_a || (st_a == ST_FILL && need_b);
        bool have_b = need_b || (st_b == ST_FILL && need_a);
        /* A run never crosses a chunk boundary of either side, so its
         * bytes are contiguous in each side's temporary file. */
        int64_t off_a = need_a ? unit_offset(&wa, u, unit) : 0;
        int64_t off_b = need_b ? unit_offset(&wb, u, unit) : 0;
        bool patterned = false;
        for (uint64_t v = u; v < stop && !rr.rc;) {
            uint64_t n = min_u64(stop - v, buf->size / unit);
            size_t bytes = (size_t)(n * unit);
            const side *bad = need_a && pread_all(sa->fd, buf->a, bytes, off_a)   ? sa
                              : need_b && pread_all(sb->fd, buf->b, bytes, off_b) ? sb
                                                                                  : NULL;
            if (bad) {
                int saved = errno;
                range_flush(&rr);
                if (rr.rc)
                    return rr.rc;
                return oops(df, MS_EIO, "stream %s: cannot read its temporary file: %s", bad->label,
                            strerror(saved));
            }
            if (!patterned && (have_a != need_a || have_b != need_b)) {
                /* Once per run: every read after it fills no more bytes. */
                uint8_t *p = have_a != need_a ? buf->a : buf->b;
                uint64_t word = have_a != need_a ? word_a : word_b;
                for (size_t k = 0; k < bytes; k++)
                    p[k] = (uint8_t)(word >> (8 * (k % 8))); /* little-endian (FORMAT.md 6.2) */
                patterned = true;
            }
            if (!have_a || !have_b || memcmp(buf->a, buf->b, bytes) != 0) {
                for (uint64_t i = 0; i < n; i++) {
                    const uint8_t *pa = buf->a + i * unit, *pb = buf->b + i * unit;
                    uint8_t ea =
                        need_a && ratio_a > 1 && all_zero(pa, (size_t)unit) ? ST_ZERO : show_a;
                    uint8_t eb =
                        need_b && ratio_b > 1 && all_zero(pb, (size_t)unit) ? ST_ZERO : show_b;
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
    if (rr.rc)
        return rr.rc;
    if (!rr.nranges)
        return 0;
    ms_diff_item it = {.kind = MS_DIFF_PAGES_TOTAL,
                       .region = &ra->r,
                       .region_b = &rb->r,
                       .unit = (uint32_t)unit,
                       .pages = rr.npages,
                       .ranges = rr.nranges};
    return emit(df, &it);
}

static int compare_regions(ms_diff *df, side *a, side *b)
{
    cmp_bufs buf = {malloc(CMP_BUF), malloc(CMP_BUF), CMP_BUF};
    int rc = buf.a && buf.b ? 0 : MS_ENOMEM;
    for (size_t k = 0; k < a->nregions && rc == 0; k++)
        rc = msi_pm_freeze(a->regions[k].map);
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        rc = msi_pm_freeze(b->regions[k].map);
    if (rc)
        rc = oops(df, MS_ENOMEM, "out of memory");
    match_regions(a, b);
    for (size_t k = 0; k < a->nregions && rc == 0; k++) {
        const region *ra = &a->regions[k];
        if (ra->match < 0) {
            rc = region_only(df, ra, MS_DIFF_A);
            continue;
        }
        const region *rb = &b->regions[ra->match];
        if (!rc && strcmp(ra->r.name, rb->r.name))
            rc = region_field(df, ra, rb, "name", v_text(ra->r.name), v_text(rb->r.name));
        if (!rc && ra->r.size != rb->r.size)
            rc = region_field(df, ra, rb, "size", v_uint(ra->r.size), v_uint(rb->r.size));
        if (!rc && ra->r.page_size != rb->r.page_size)
            rc = region_field(df, ra, rb, "page_size", v_uint(ra->r.page_size),
                              v_uint(rb->r.page_size));
        if (!rc && (ra->r.has_gpa != rb->r.has_gpa || (ra->r.has_gpa && ra->r.gpa != rb->r.gpa)))
            rc = region_field(df, ra, rb, "gpa", v_addr(ra->r.has_gpa, ra->r.gpa),
                              v_addr(rb->r.has_gpa, rb->r.gpa));
        if (!rc)
            rc = compare_pages(df, a, ra, b, rb, &buf);
    }
    for (size_t k = 0; k < b->nregions && rc == 0; k++)
        if (b->regions[k].match < 0)
            rc = region_only(df, &b->regions[k], MS_DIFF_B);
    free(buf.a);
    free(buf.b);
    return rc;
}

/* ------------------------------------------------------------- overlays */

static const overlay *find_overlay(const side *s, uint64_t gfn, uint32_t kind)
{
    for (size_t i = 0; i < s->noverlays; i++)
        if (s->overlays[i].o.gfn == gfn && s->overlays[i].o.kind == kind)
            return &s->overlays[i];
    return NULL;
}

/* Overlays (FORMAT.md section 7.2), matched by frame and kind: one side
 * only, or the contents the parameters build differ. Quadratic, but the
 * reader bounds each side's count. */
static int compare_overlays(ms_diff *df, const side *a, const side *b)
{
    int rc = 0;
    for (size_t i = 0; i < a->noverlays && !rc; i++) {
        const overlay *x = &a->overlays[i];
        const overlay *y = find_overlay(b, x->o.gfn, x->o.kind);
        if (!y) {
            ms_diff_item it = {.kind = MS_DIFF_OVERLAY_ONLY, .side = MS_DIFF_A, .overlay = &x->o};
            rc = emit(df, &it);
        } else if (memcmp(x->page, y->page, sizeof x->page) != 0) {
            ms_diff_item it = {.kind = MS_DIFF_OVERLAY, .overlay = &x->o, .overlay_b = &y->o};
            rc = emit(df, &it);
        }
    }
    for (size_t i = 0; i < b->noverlays && !rc; i++) {
        const overlay *y = &b->overlays[i];
        if (!find_overlay(a, y->o.gfn, y->o.kind)) {
            ms_diff_item it = {.kind = MS_DIFF_OVERLAY_ONLY, .side = MS_DIFF_B, .overlay = &y->o};
            rc = emit(df, &it);
        }
    }
    return rc;
}

/* ------------------------------------------------------------- devices */

static int dev_cmp(const void *x, const void *y)
{
    const ms_device *a = *(ms_device *const *)x, *b = *(ms_device *const *)y;
    int c = strcmp(a->path, b->path);
    return c ? c : (a->instance > b->instance) - (a->instance < b->instance);
}

static const ms_device **sorted_devices(const side *s)
{
    const ms_device **v = malloc((s->ndevs ? s->ndevs : 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < s->devs_cap; i++)
        if (s->devs[i])
            v[n++] = s->devs[i];
    qsort(v, n, sizeof *v, dev_cmp);
    return v;
}

typedef struct state_ctx {
    ms_diff *df;
    const ms_device *a, *b;
} state_ctx;

/* ms_cbor_diff callback: one item per differing field of a device state. */
static int state_diff(void *ctx, const char *path, const uint8_t *a, size_t a_size,
                      const uint8_t *b, size_t b_size)
{
    const state_ctx *x = ctx;
    ms_diff_item it = {
        .kind = MS_DIFF_DEVICE_STATE,
        .field = path,
        .a = a ? (ms_diff_value){.type = MS_DIFF_CBOR, .cbor = a, .cbor_size = a_size} : v_none(),
        .b = b ? (ms_diff_value){.type = MS_DIFF_CBOR, .cbor = b, .cbor_size = b_size} : v_none(),
        .device = x->a,
        .device_b = x->b};
    return emit(x->df, &it);
}

static int compare_devices(ms_diff *df, const side *a, const side *b)
{
    const ms_device **da = sorted_devices(a), **db = sorted_devices(b);
    int rc = 0;
    if (!da || !db)
        rc = oops(df, MS_ENOMEM, "out of memory");
    size_t i = 0, j = 0;
    while (rc == 0 && (i < a->ndevs || j < b->ndevs)) {
        int c = i == a->ndevs ? 1 : j == b->ndevs ? -1 : dev_cmp(&da[i], &db[j]);
        if (c != 0) {
            ms_diff_item it = {.kind = MS_DIFF_DEVICE_ONLY,
                               .side = c < 0 ? MS_DIFF_A : MS_DIFF_B,
                               .device = c < 0 ? da[i++] : db[j++]};
            rc = emit(df, &it);
            continue;
        }
        const ms_device *x = da[i++], *y = db[j++];
        ms_diff_item it = {.kind = MS_DIFF_DEVICE, .device = x, .device_b = y};
        if (strcmp(x->schema, y->schema)) {
            it.field = "schema";
            it.a = v_text(x->schema);
            it.b = v_text(y->schema);
            rc = emit(df, &it);
        }
        if (!rc && x->version != y->version) {
            it.field = "version";
            it.a = v_uint(x->version);
            it.b = v_uint(y->version);
            rc = emit(df, &it);
        }
        if (rc)
            break;
        state_ctx sx = {df, x, y};
        int n = ms_cbor_diff(x->state, x->state_size, y->state, y->state_size, state_diff, &sx);
        if (n < 0)
            rc = df->cb_rc ? df->cb_rc
                           : oops(df, n, "device %s#%" PRIu32 ": cannot compare the states: %s",
                                  x->path, x->instance, ms_strerror(n));
    }
    free(da);
    free(db);
    return rc;
}

/* ------------------------------------------------------------------ entry */

int ms_diff_compare(ms_diff *df, ms_diff_fn fn, void *ctx)
{
    if (!df)
        return MS_EINVAL;
    if (df->status)
        return df->status;
    side *a = &df->s[0], *b = &df->s[1];
    if (df->compared || !a->loaded || !b->loaded)
        return MS_ESTATE;
    df->compared = true;
    df->fn = fn;
    df->ctx = ctx;
    df->cb_rc = 0;
    memset(&df->total, 0, sizeof df->total);
    int rc = compare_meta(df, a, b);
    if (!rc)
        rc = compare_regions(df, a, b);
    if (!rc)
        rc = compare_overlays(df, a, b);
    if (!rc)
        rc = compare_devices(df, a, b);
    if (rc < 0)
        return rc;
    const ms_diff_totals *t = &df->total;
    uint64_t n = t->metadata + t->regions + t->ranges + t->devices + t->overlays;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}
