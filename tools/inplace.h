/*
 * IN_PLACE references (docs/FORMAT.md section 6.2), as migstream-replay
 * lists them in its manifest and migstream-diff compares them: the page
 * state map says which pages are IN_PLACE at the end, this list says where
 * each one is, since a page sent IN_PLACE twice takes its last reference.
 *
 * The list keeps the extents in stream order, at most MST_INPLACE_MAX of
 * them (a live update sends one per contiguous range of memory, so a few);
 * a lookup scans it from the newest, so its cost is bounded by that cap.
 */
#ifndef MST_INPLACE_H
#define MST_INPLACE_H

#include <stdbool.h>
#include <stdint.h>

#include "migstream/stream.h"

#define MST_INPLACE_MAX 4096u

typedef struct mst_inplace_extent {
    uint32_t region;
    uint32_t page_size;
    uint64_t first, count, addr; /* page first + i is at addr + i * page_size */
} mst_inplace_extent;

typedef struct mst_inplace {
    mst_inplace_extent *e;
    size_t n, cap;
} mst_inplace;

/* Adds an IN_PLACE extent of region @region. 0, or -1 when the list is at
 * MST_INPLACE_MAX or memory ran out (errno says which: E2BIG or ENOMEM). */
int mst_inplace_add(mst_inplace *l, const ms_region *region, const ms_extent *x);
void mst_inplace_free(mst_inplace *l);

/* The address of page @page of region @region by the last extent that
 * covers it, or UINT64_MAX when none does. *@end gets the first page after
 * @page at which the answer may change (the covering extent's end, or the
 * start of a later extent inside it). */
uint64_t mst_inplace_addr(const mst_inplace *l, uint32_t region, uint64_t page, uint64_t *end);

#endif
