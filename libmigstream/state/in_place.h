/*
 * IN_PLACE references (FORMAT.md section 6.2): the list behind ms_in_place
 * (include/migstream/pagemap.h), which the diff and the replay into a
 * directory also keep. A page's final state says that it is IN_PLACE; this
 * list says where, since a page sent IN_PLACE twice takes its last
 * reference.
 *
 * The list keeps the extents in stream order, at most a cap of them (a live
 * update sends one per contiguous range of memory, so a few); a lookup scans
 * it from the newest, so its cost is bounded by that cap.
 */
#ifndef MSI_IN_PLACE_H
#define MSI_IN_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "migstream/pagemap.h"

struct ms_in_place {
    ms_allocator alloc;
    ms_in_place_extent *e;
    size_t n, cap, max;
    int status;   /* MS_EINVAL when made from bad options (sticky), else 0 */
    char err[96]; /* why, then */
};

/* An empty list that keeps at most @max extents; @alloc may be NULL
 * (malloc). Nothing is allocated until the first extent. */
void msi_in_place_init(ms_in_place *l, const ms_allocator *alloc, size_t max);
/* Frees the extents; the list is empty again. */
void msi_in_place_clear(ms_in_place *l);

#endif /* MSI_IN_PLACE_H */
