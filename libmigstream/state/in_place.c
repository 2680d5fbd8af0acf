/*
 * IN_PLACE references, the last one wins (in_place.h; the public side is
 * ms_in_place in include/migstream/pagemap.h).
 */
#include "common/util.h"
#include "state/in_place.h"

void msi_in_place_init(ms_in_place *l, const ms_allocator *alloc, size_t max)
{
    memset(l, 0, sizeof *l);
    msi_allocator_set(&l->alloc, alloc);
    l->max = max;
}

void msi_in_place_clear(ms_in_place *l)
{
    msi_free(&l->alloc, l->e);
    l->e = NULL;
    l->n = l->cap = 0;
}

int ms_in_place_add(ms_in_place *l, const ms_region *region, const ms_extent *x)
{
    uint64_t last;
    if (!l || !region || !x || x->state != MS_PAGE_IN_PLACE || x->count == 0 ||
        !msi_is_pow2(region->page_size) || x->arg % region->page_size ||
        msi_add_overflow(x->arg, (uint64_t)x->count * region->page_size - 1, &last))
        return MS_EINVAL; /* the checks of FORMAT.md section 6.2, as the reader makes them */
    if (l->status)
        return l->status;
    if (l->n == l->max)
        return MS_ELIMIT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > l->max)
            cap = l->max;
        msi_in_place_extent *e = msi_realloc(&l->alloc, l->e, cap * sizeof *e);
        if (!e)
            return MS_ENOMEM;
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n++] = (msi_in_place_extent){.region = region->id,
                                         .page_size = region->page_size,
                                         .first = x->first,
                                         .count = x->count,
                                         .addr = x->arg};
    return 0;
}

size_t ms_in_place_count(const ms_in_place *l)
{
    return l ? l->n : 0;
}

uint64_t ms_in_place_address(const ms_in_place *l, uint32_t region_id, uint64_t page,
                             uint64_t *run_end)
{
    uint64_t stop = UINT64_MAX, dummy;
    if (!run_end)
        run_end = &dummy;
    for (size_t i = l ? l->n : 0; i-- > 0;) {
        const msi_in_place_extent *x = &l->e[i];
        if (x->region != region_id)
            continue;
        if (page >= x->first && page - x->first < x->count) {
            uint64_t e = x->first + x->count;
            *run_end = e < stop ? e : stop;
            return x->addr + (page - x->first) * x->page_size;
        }
        /* A later extent starting after @page cuts the answer short there. */
        if (x->first > page && x->first < stop)
            stop = x->first;
    }
    *run_end = stop;
    return UINT64_MAX;
}
