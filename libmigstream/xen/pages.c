/*
 * The page sink (pages.h): regions over the guest's pfns and the two slots
 * PAGES records are built in. Calls input.h and format/ only; the source
 * calls it.
 */
#include <stdio.h>
#include <string.h>

#include "xen/pages.h"
#include "xen/wire.h"

#define SLOT_PAGES (MX_PAGES_DATA_MAX / MX_PAGE_SIZE)

typedef struct slot {
    ms_extent *ext; /* MX_PAGES_EXTENTS_MAX */
    uint8_t *data;  /* MX_PAGES_DATA_MAX */
    size_t next;    /* extents used */
    size_t pages;   /* data pages used */
    uint64_t count; /* pages of every state */
    uint32_t region;
} slot;

typedef struct region {
    ms_region r;
    char name[32];
    uint64_t first; /* pfn of page 0 */
} region;

struct mx_pages {
    const ms_allocator *alloc;
    region *regions;
    size_t nregions, cap, declared;
    ms_region *out; /* the regions of the last mx_pages_new_regions() */
    slot s[2];
    int open;   /* the slot that takes pages */
    bool ready; /* the other slot holds a sealed record */
};

mx_pages *mx_pages_new(const ms_allocator *a)
{
    mx_pages *k = msi_calloc(a, 1, sizeof *k);
    if (k)
        k->alloc = a;
    return k;
}

void mx_pages_free(mx_pages *k)
{
    if (!k)
        return;
    for (int i = 0; i < 2; i++) {
        msi_free(k->alloc, k->s[i].ext);
        msi_free(k->alloc, k->s[i].data);
    }
    msi_free(k->alloc, k->regions);
    msi_free(k->alloc, k->out);
    msi_free(k->alloc, k);
}

/* ------------------------------------------------------------ regions */

int mx_pages_add_region(mx_pages *k, uint64_t first, uint64_t count)
{
    if (k->nregions == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 4;
        region *n = msi_realloc(k->alloc, k->regions, cap * sizeof *n);
        if (!n)
            return MS_ENOMEM;
        k->regions = n;
        k->cap = cap;
        /* Names live in the entries, which moved. */
        for (size_t i = 0; i < k->nregions; i++)
            k->regions[i].r.name = k->regions[i].name;
    }
    region *g = &k->regions[k->nregions];
    memset(g, 0, sizeof *g);
    if (k->nregions == 0)
        snprintf(g->name, sizeof g->name, "pfn");
    else
        snprintf(g->name, sizeof g->name, "pfn-0x%llx", (unsigned long long)first);
    g->first = first;
    g->r = (ms_region){.id = (uint32_t)k->nregions,
                       .name = g->name,
                       .has_gpa = true,
                       .gpa = first * MX_PAGE_SIZE,
                       .size = count * MX_PAGE_SIZE,
                       .page_size = MX_PAGE_SIZE};
    k->nregions++;
    return 0;
}

uint64_t mx_pages_end(const mx_pages *k)
{
    if (!k->nregions)
        return 0;
    const region *g = &k->regions[k->nregions - 1];
    return g->first + g->r.size / MX_PAGE_SIZE;
}

bool mx_pages_locate(const mx_pages *k, uint64_t pfn, uint32_t *rid, uint64_t *index)
{
    /* Regions follow each other from pfn 0: the last one that starts at or
     * before @pfn holds it, if any does. */
    for (size_t i = k->nregions; i-- > 0;) {
        const region *g = &k->regions[i];
        if (pfn >= g->first) {
            if (pfn - g->first >= g->r.size / MX_PAGE_SIZE)
                return false;
            *rid = (uint32_t)i;
            *index = pfn - g->first;
            return true;
        }
    }
    return false;
}

int mx_pages_new_regions(mx_pages *k, const ms_region **res, size_t *count)
{
    *count = 0;
    *res = NULL;
    size_t n = k->nregions - k->declared;
    if (!n)
        return 0;
    ms_region *out = msi_realloc(k->alloc, k->out, n * sizeof *out);
    if (!out)
        return MS_ENOMEM;
    k->out = out;
    for (size_t i = 0; i < n; i++)
        out[i] = k->regions[k->declared + i].r;
    k->declared = k->nregions;
    *count = n;
    *res = out;
    return 0;
}

/* ------------------------------------------------------------ pages */

static void seal(mx_pages *k)
{
    k->ready = true;
    k->open ^= 1;
    slot *o = &k->s[k->open];
    o->next = o->pages = 0;
    o->count = 0;
}

bool mx_pages_empty(const mx_pages *k)
{
    return k->s[k->open].next == 0;
}

bool mx_pages_seal(mx_pages *k)
{
    if (!k->s[k->open].next)
        return false;
    seal(k);
    return true;
}

bool mx_pages_ready(const mx_pages *k)
{
    return k->ready;
}

int mx_pages_add(mx_pages *k, uint32_t rid, uint64_t index, uint8_t state, uint8_t **data)
{
    slot *o = &k->s[k->open];
    if (!o->ext) {
        o->ext = msi_alloc(k->alloc, MX_PAGES_EXTENTS_MAX * sizeof *o->ext);
        o->data = msi_alloc(k->alloc, MX_PAGES_DATA_MAX);
        if (!o->ext || !o->data)
            return MS_ENOMEM;
    }
    int sealed = 0;
    if (o->next) {
        ms_extent *x = &o->ext[o->next - 1];
        bool extends = x->state == state && x->first + x->count == index;
        /* Extents ascend within a record; a page before the last extent's
         * end, or one that does not fit, goes into the next record. */
        if (o->region != rid || index < x->first + x->count || o->count == MX_PAGES_MAX ||
            (state == MS_PAGE_DATA && o->pages == SLOT_PAGES) ||
            (!extends && o->next == MX_PAGES_EXTENTS_MAX)) {
            if (k->ready)
                return MS_ESTATE;
            seal(k);
            sealed = 1;
            o = &k->s[k->open];
            if (!o->ext) {
                o->ext = msi_alloc(k->alloc, MX_PAGES_EXTENTS_MAX * sizeof *o->ext);
                o->data = msi_alloc(k->alloc, MX_PAGES_DATA_MAX);
                if (!o->ext || !o->data)
                    return MS_ENOMEM;
            }
        }
    }
    if (o->next && o->ext[o->next - 1].state == state &&
        o->ext[o->next - 1].first + o->ext[o->next - 1].count == index) {
        o->ext[o->next - 1].count++;
    } else {
        o->ext[o->next++] = (ms_extent){.first = index, .count = 1, .state = state, .arg = 0};
    }
    o->region = rid;
    o->count++;
    if (state == MS_PAGE_DATA)
        *data = o->data + (size_t)o->pages++ * MX_PAGE_SIZE;
    return sealed;
}

void mx_pages_take(mx_pages *k, ms_record *rec, uint64_t totals[MS_PAGE_STATE_SLOTS])
{
    const slot *o = &k->s[k->open ^ 1];
    ms_pages *p = &rec->pages;
    rec->type = MS_REC_PAGES;
    rec->flags = MS_RECORD_MUST_UNDERSTAND;
    p->region = &k->regions[o->region].r;
    p->extents = o->ext;
    p->extent_count = o->next;
    p->data = o->pages ? o->data : NULL;
    p->data_size = o->pages * MX_PAGE_SIZE;
    p->encoding = MS_ENCODING_RAW;
    for (size_t i = 0; i < o->next; i++)
        totals[o->ext[i].state] += o->ext[i].count;
    k->ready = false;
}
