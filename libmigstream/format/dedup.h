/*
 * The writer's table of pages it sent as DATA, to send a later page with
 * the same contents as a DUPLICATE reference (FORMAT.md section 6.2).
 *
 * A bounded table: `entries` slots (a power of two), each holding a copy
 * of one page as it went out, the page's XXH3-64 hash, its region and
 * index. A page is looked up in the slot its hash selects; a hit is only
 * a candidate until the bytes compare equal, so a hash collision never
 * makes a wrong reference. A second table, keyed by region and page,
 * finds the slot of a page that is sent again (in any state), whose entry
 * then goes: a reference must name a page whose last copy in the stream
 * still holds the bytes the entry remembers.
 */
#ifndef MSI_DEDUP_H
#define MSI_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

typedef struct msi_dedup msi_dedup;

/* A table of @entries slots (rounded up to a power of two, at most 2^22)
 * of @page_size-byte pages. NULL when memory ran out. */
msi_dedup *msi_dedup_new(const ms_allocator *a, uint32_t entries, uint32_t page_size);
void msi_dedup_free(msi_dedup *d);

/* The hash pages are looked up by. */
uint64_t msi_dedup_hash(const msi_dedup *d, const uint8_t *page);

/* A page of region @ri whose contents equal @page (hash @h) and which the
 * table holds: true and its index in *src. Never page @self itself. */
bool msi_dedup_find(const msi_dedup *d, uint32_t ri, uint64_t self, const uint8_t *page, uint64_t h,
                    uint64_t *src);

/* Remembers that page @idx of region @ri went out holding @page (hash @h),
 * in place of whatever its slot held. */
void msi_dedup_insert(msi_dedup *d, uint32_t ri, uint64_t idx, const uint8_t *page, uint64_t h);

/* Pages @first..+@count of region @ri are sent again: the table forgets
 * them. Costs at most min(@count, entries) probes, none for pages past
 * the range the table has seen. */
void msi_dedup_forget(msi_dedup *d, uint32_t ri, uint64_t first, uint64_t count);

/* Bytes the table holds (for the writer's documentation and tests). */
size_t msi_dedup_bytes(const msi_dedup *d);

#endif /* MSI_DEDUP_H */
