/*
 * ms_pagemap (include/migstream/pagemap.h): the final page states of a
 * stream's regions, one region_map.h map per region under one budget, with
 * the counts migstream-dump and migstream-validate report; and the options
 * it shares with ms_in_place, whose constructor lives here too.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/util.h"
#include "state/in_place.h"
#include "state/region_map.h"

typedef struct pm_region {
    ms_pagemap_region v; /* v.region.name is our copy */
    msi_pm *pm;          /* NULL until the first page is set */
    msi_pm_walk walk;    /* ms_pagemap_state's cursor */
    uint64_t walk_next;  /* the walk answers pages from here on */
    bool walking;
} pm_region;

struct ms_pagemap {
    ms_allocator alloc;
    msi_pm_budget budget;
    pm_region **r; /* in the order added; each entry stays where it is */
    size_t count, cap;
    size_t *by_id; /* indexes into r, sorted by region id */
    size_t last;   /* lookup cache: PAGES records come in runs per region */
    int status;    /* MS_EINVAL when made from bad options (sticky), else 0 */
    char err[320];
};

/* ---------------------------------------------------------------- options */

void ms_pagemap_options_init(ms_pagemap_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_memory = MS_PAGEMAP_DEFAULT_MEMORY;
    opts->max_in_place = MS_IN_PLACE_DEFAULT_EXTENTS;
}

/* The caller's options over the defaults (common.h, "Growing structs"):
 * NULL, or why they cannot be taken, with @o left at the defaults. */
static const char *options_take(ms_pagemap_options *o, const ms_pagemap_options *in)
{
    ms_pagemap_options_init(o);
    const char *why =
        in ? msi_struct_take(o, MSI_STRUCT_END(ms_pagemap_options, allocator), in, in->struct_size)
           : NULL;
    if (!why && o->max_in_place > MS_IN_PLACE_MAX_EXTENTS)
        why = "max_in_place exceeds MS_IN_PLACE_MAX_EXTENTS";
    if (why) {
        ms_pagemap_options_init(o);
        return why;
    }
    o->struct_size = sizeof *o;
    if (!o->max_memory)
        o->max_memory = MS_PAGEMAP_DEFAULT_MEMORY;
    if (!o->max_in_place)
        o->max_in_place = MS_IN_PLACE_DEFAULT_EXTENTS;
    return NULL;
}

/* ------------------------------------------------------------------ misc */

__attribute__((format(printf, 3, 4))) static int fail(ms_pagemap *m, int status, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return status;
}

static pm_region *find(ms_pagemap *m, uint32_t id)
{
    if (m->last < m->count && m->r[m->last]->v.region.id == id)
        return m->r[m->last];
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = m->r[m->by_id[mid]]->v.region.id;
        if (v == id) {
            m->last = m->by_id[mid];
            return m->r[m->last];
        }
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The region's final states are given up: its map is freed, the budget it
 * held goes back to the other regions. */
static int give_up(ms_pagemap *m, pm_region *pr, int status)
{
    msi_pm_free(pr->pm);
    pr->pm = NULL;
    pr->v.tracked = false;
    pr->walking = false;
    const ms_region *g = &pr->v.region;
    if (status == MS_ELIMIT)
        return fail(m, status,
                    "region %" PRIu32 " \"%s\" (%" PRIu64 " pages): the page-state maps would "
                    "exceed %zu MiB; its final states are given up",
                    g->id, g->name, pr->v.pages, m->budget.limit >> 20);
    return fail(m, status,
                "region %" PRIu32 " \"%s\" (%" PRIu64 " pages): out of memory for its page-state "
                "map; its final states are given up",
                g->id, g->name, pr->v.pages);
}

/* Sets pages of a tracked region, making its map on the first call. */
static int set_pages(ms_pagemap *m, pm_region *pr, uint64_t first, uint64_t count, unsigned st,
                     uint64_t *had)
{
    int rc = pr->pm ? 0 : msi_pm_new(&pr->pm, pr->v.pages, &m->budget, &m->alloc);
    if (rc == 0)
        rc = msi_pm_set(pr->pm, first, count, st, had);
    return rc == 0 ? 0 : give_up(m, pr, rc);
}

/* ------------------------------------------------------------------- API */

ms_pagemap *ms_pagemap_new(const ms_pagemap_options *opts)
{
    ms_pagemap_options o;
    const char *why = options_take(&o, opts);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_pagemap *m = msi_calloc(&a, 1, sizeof *m);
    if (!m)
        return NULL;
    m->alloc = a;
    m->budget.limit = o.max_memory;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        m->status = MS_EINVAL;
        snprintf(m->err, sizeof m->err, "invalid page map options: %s", why);
    }
    return m;
}

int ms_pagemap_status(const ms_pagemap *m)
{
    return m ? m->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

void ms_pagemap_free(ms_pagemap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        msi_pm_free(m->r[i]->pm);
        msi_free(&m->alloc, (char *)m->r[i]->v.region.name);
        msi_free(&m->alloc, m->r[i]);
    }
    msi_free(&m->alloc, m->r);
    msi_free(&m->alloc, m->by_id);
    ms_allocator a = m->alloc;
    msi_free(&a, m);
}

int ms_pagemap_add_region(ms_pagemap *m, const ms_region *region)
{
    if (!m || !region || !region->name)
        return MS_EINVAL;
    if (m->status)
        return m->status;
    m->err[0] = 0;
    if (!msi_is_pow2(region->page_size) || region->size == 0 || region->size % region->page_size)
        return fail(m, MS_EINVAL,
                    "region %" PRIu32 ": size %" PRIu64 " is not a non-zero multiple of a "
                    "power-of-two page size (%" PRIu32 ")",
                    region->id, region->size, region->page_size);
    if (find(m, region->id))
        return fail(m, MS_EINVAL, "region %" PRIu32 " is already in the map", region->id);
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        pm_region **r = msi_realloc(&m->alloc, m->r, cap * sizeof *r);
        if (!r)
            return fail(m, MS_ENOMEM, "out of memory");
        m->r = r;
        size_t *ix = msi_realloc(&m->alloc, m->by_id, cap * sizeof *ix);
        if (!ix)
            return fail(m, MS_ENOMEM, "out of memory");
        m->by_id = ix;
        m->cap = cap;
    }
    pm_region *pr = msi_calloc(&m->alloc, 1, sizeof *pr);
    char *name = msi_strdup(&m->alloc, region->name);
    if (!pr || !name) {
        msi_free(&m->alloc, pr);
        msi_free(&m->alloc, name);
        return fail(m, MS_ENOMEM, "out of memory");
    }
    pr->v.region = *region;
    pr->v.region.name = name;
    pr->v.pages = region->size / region->page_size;
    pr->v.tracked = true;
    /* Insertion into the id index: regions are few (the reader's
     * max_regions). */
    size_t k = m->count;
    while (k > 0 && m->r[m->by_id[k - 1]]->v.region.id > region->id) {
        m->by_id[k] = m->by_id[k - 1];
        k--;
    }
    m->by_id[k] = m->count;
    m->r[m->count++] = pr;
    return 0;
}

int ms_pagemap_sync(ms_pagemap *m, const ms_reader *r)
{
    if (!m || !r)
        return MS_EINVAL;
    if (m->status)
        return m->status;
    size_t n = ms_reader_region_count(r);
    for (size_t i = m->count; i < n; i++) {
        int rc = ms_pagemap_add_region(m, ms_reader_region(r, i));
        if (rc)
            return rc;
    }
    return 0;
}

int ms_pagemap_apply(ms_pagemap *m, const ms_record *rec)
{
    if (!m || !rec)
        return MS_EINVAL;
    if (m->status)
        return m->status;
    m->err[0] = 0;
    if (rec->type != MS_REC_PAGES || !rec->pages.region)
        return 0;
    const ms_pages *pg = &rec->pages;
    pm_region *pr = find(m, pg->region->id);
    if (!pr)
        return fail(m, MS_EINVAL,
                    "record %" PRIu64 " (PAGES at byte %" PRIu64 "): region %" PRIu32
                    " is not in the map",
                    rec->index, rec->offset, pg->region->id);
    for (size_t i = 0; i < pg->extent_count; i++) {
        const ms_extent *x = &pg->extents[i];
        if (x->state == 0 || x->state >= MS_PAGEMAP_STATES || x->first > pr->v.pages ||
            x->count > pr->v.pages - x->first)
            return fail(m, MS_EINVAL,
                        "record %" PRIu64 " (PAGES at byte %" PRIu64 "), extent %zu: pages %" PRIu64
                        "+%" PRIu32 " in state %u do not fit region %" PRIu32 " (%" PRIu64
                        " pages)",
                        rec->index, rec->offset, i, x->first, x->count, x->state, pr->v.region.id,
                        pr->v.pages);
    }
    pr->v.records++;
    pr->v.bytes += MS_RECORD_HEADER_SIZE + (uint64_t)rec->length;
    int rc = 0;
    for (size_t i = 0; i < pg->extent_count; i++) {
        const ms_extent *x = &pg->extents[i];
        pr->v.sent[x->state] += x->count;
        /* FORMAT.md section 6.2: a DUPLICATE's sources hold DATA sent
         * earlier (their last copy DATA or DUPLICATE), extents applied in
         * order. Applied all the same, so that the map follows the stream. */
        if (x->state == MS_PAGE_DUPLICATE && pr->v.tracked && !rc) {
            uint64_t n[MS_PAGEMAP_STATES] = {0};
            if (pr->pm)
                msi_pm_range_counts(pr->pm, x->arg, x->count, n);
            if (n[MS_PAGE_DATA] + n[MS_PAGE_DUPLICATE] != x->count)
                rc = fail(m, MS_ECORRUPT,
                          "record %" PRIu64 " (PAGES at byte %" PRIu64 "), extent %zu: "
                          "DUPLICATE pages %" PRIu64 "..%" PRIu64 " of region %" PRIu32
                          " refer to pages %" PRIu64 "..%" PRIu64 ", not all of which hold "
                          "DATA sent earlier (FORMAT.md section 6.2)",
                          rec->index, rec->offset, i, x->first, x->first + x->count - 1,
                          pr->v.region.id, x->arg, x->arg + x->count - 1);
        }
        if (pr->v.tracked) {
            int r = set_pages(m, pr, x->first, x->count, x->state, NULL);
            if (r)
                rc = r;
        }
    }
    return rc;
}

int ms_pagemap_set(ms_pagemap *m, uint32_t region_id, uint64_t first, uint64_t count,
                   unsigned state, uint64_t *had)
{
    if (!m)
        return MS_EINVAL;
    if (m->status)
        return m->status;
    m->err[0] = 0;
    pm_region *pr = find(m, region_id);
    if (!pr)
        return fail(m, MS_EINVAL, "region %" PRIu32 " is not in the map", region_id);
    if (state >= MS_PAGEMAP_STATES || first > pr->v.pages || count > pr->v.pages - first)
        return fail(m, MS_EINVAL,
                    "region %" PRIu32 ": pages %" PRIu64 "+%" PRIu64 " in state %u do not fit "
                    "its %" PRIu64 " pages",
                    region_id, first, count, state, pr->v.pages);
    if (!pr->v.tracked)
        return fail(m, MS_ESTATE, "region %" PRIu32 ": its final states were given up", region_id);
    return count ? set_pages(m, pr, first, count, state, had) : 0;
}

size_t ms_pagemap_region_count(const ms_pagemap *m)
{
    return m ? m->count : 0;
}

const ms_pagemap_region *ms_pagemap_get_region(const ms_pagemap *m, size_t index)
{
    return m && index < m->count ? &m->r[index]->v : NULL;
}

const ms_pagemap_region *ms_pagemap_find(const ms_pagemap *m, uint32_t id)
{
    if (!m)
        return NULL;
    /* find() only moves the lookup cache. */
    pm_region *pr = find((ms_pagemap *)m, id);
    return pr ? &pr->v : NULL;
}

/* The tracked region @id for a query, or NULL with a status in *rc. */
static pm_region *query(ms_pagemap *m, uint32_t id, int *rc)
{
    pm_region *pr = find(m, id);
    if (!pr)
        *rc = fail(m, MS_EINVAL, "region %" PRIu32 " is not in the map", id);
    else if (!pr->v.tracked)
        *rc = fail(m, MS_ESTATE, "region %" PRIu32 ": its final states were given up", id);
    return pr && pr->v.tracked ? pr : NULL;
}

int ms_pagemap_counts(const ms_pagemap *m, uint32_t region_id, uint64_t *counts)
{
    int rc = 0;
    if (!m || !counts)
        return MS_EINVAL;
    /* query() writes only the message buffer and the lookup cache. */
    pm_region *pr = query((ms_pagemap *)m, region_id, &rc);
    if (!pr)
        return rc;
    if (pr->pm) {
        msi_pm_counts(pr->pm, counts);
    } else {
        memset(counts, 0, MS_PAGEMAP_STATES * sizeof *counts);
        counts[MS_PAGEMAP_MISSING] = pr->v.pages;
    }
    return 0;
}

int ms_pagemap_state(ms_pagemap *m, uint32_t region_id, uint64_t page, uint64_t *run_end)
{
    int rc = 0;
    uint64_t end, dummy;
    if (!m)
        return MS_EINVAL;
    if (!run_end)
        run_end = &dummy;
    pm_region *pr = query(m, region_id, &rc);
    if (!pr)
        return rc;
    if (page >= pr->v.pages)
        return fail(m, MS_EINVAL,
                    "region %" PRIu32 ": page %" PRIu64 " is past its end (%" PRIu64 " pages)",
                    region_id, page, pr->v.pages);
    if (!pr->pm) {
        *run_end = pr->v.pages;
        return MS_PAGEMAP_MISSING;
    }
    if (!msi_pm_frozen(pr->pm)) { /* first query, or pages set since */
        if (msi_pm_freeze(pr->pm))
            return fail(m, MS_ENOMEM, "out of memory");
        pr->walking = false;
    }
    if (!pr->walking || page < pr->walk_next) {
        msi_pm_walk_init(&pr->walk, pr->pm);
        pr->walking = true;
    }
    int64_t slot;
    unsigned st = msi_pm_run(&pr->walk, page, &end, &slot);
    pr->walk_next = page;
    *run_end = end < pr->v.pages ? end : pr->v.pages;
    return (int)st;
}

int ms_pagemap_bounds(ms_pagemap *m, uint32_t region_id, unsigned state, uint64_t *first,
                      uint64_t *last)
{
    uint64_t f = UINT64_MAX, l = UINT64_MAX;
    if (!m || !first || !last)
        return MS_EINVAL;
    int rc = 0;
    pm_region *pr = query(m, region_id, &rc);
    for (uint64_t p = 0, end; pr && p < pr->v.pages; p = end) {
        int st = ms_pagemap_state(m, region_id, p, &end);
        if (st < 0) {
            rc = st;
            break;
        }
        if ((unsigned)st == state) {
            if (f == UINT64_MAX)
                f = p;
            l = end - 1;
        }
    }
    *first = rc ? UINT64_MAX : f;
    *last = rc ? UINT64_MAX : l;
    return rc;
}

size_t ms_pagemap_memory(const ms_pagemap *m)
{
    return m ? m->budget.used : 0;
}

const char *ms_pagemap_errmsg(const ms_pagemap *m)
{
    return m ? m->err : "out of memory creating the page map";
}

/* ------------------------------------------------------- ms_in_place */

ms_in_place *ms_in_place_new(const ms_pagemap_options *opts)
{
    ms_pagemap_options o;
    const char *why = options_take(&o, opts);
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    ms_in_place *l = msi_alloc(&a, sizeof *l);
    if (l)
        msi_in_place_init(l, &a, o.max_in_place);
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (l && why) {
        l->status = MS_EINVAL;
        snprintf(l->err, sizeof l->err, "invalid page map options: %s", why);
    }
    return l;
}

int ms_in_place_status(const ms_in_place *l)
{
    return l ? l->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_in_place_errmsg(const ms_in_place *l)
{
    return l ? l->err : "out of memory creating the IN_PLACE list";
}

void ms_in_place_free(ms_in_place *l)
{
    if (!l)
        return;
    msi_in_place_clear(l);
    ms_allocator a = l->alloc;
    msi_free(&a, l);
}
