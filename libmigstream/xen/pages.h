/*
 * The page sink of the Xen importer (docs/XEN.md section 3): the regions
 * the guest's pfns map to, and the PAGES records that PAGE_DATA pages
 * coalesce into.
 *
 * A PAGES record holds pages of one region in ascending extents, at most
 * MX_PAGES_DATA_MAX bytes of data, MX_PAGES_EXTENTS_MAX extents and
 * MX_PAGES_MAX pages; a page that does not fit seals it and opens the
 * next. Two records at most exist: the open one, and one sealed record
 * waiting to be handed out (the source hands it out before it adds
 * another page), each in a slot of its own, so that a page's data is read
 * straight into the record that hands it out.
 *
 * Owns: mx_pages. Calls: input.h (errors) and format/ only.
 */
#ifndef MSI_XEN_PAGES_H
#define MSI_XEN_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migstream/reader.h"
#include "xen/input.h"

#define MX_PAGES_DATA_MAX (1u << 20) /* data bytes of a PAGES record */
#define MX_PAGES_EXTENTS_MAX 1024u   /* extents of a PAGES record */
#define MX_PAGES_MAX 65536u          /* pages of a PAGES record */

typedef struct mx_pages mx_pages;

/* NULL when out of memory. */
mx_pages *mx_pages_new(const ms_allocator *a);
/* NULL is fine. */
void mx_pages_free(mx_pages *k);

/* ---- regions: pfns [first, first + count) ---- */

/* Adds a region of @count pfns from @first, named "pfn" when it is the
 * first one, else "pfn-0xFIRST": 0 or MS_ENOMEM. */
int mx_pages_add_region(mx_pages *k, uint64_t first, uint64_t count);
/* The pfns the regions cover: [0, end). */
uint64_t mx_pages_end(const mx_pages *k);
/* The region and page index of @pfn: false when no region covers it. */
bool mx_pages_locate(const mx_pages *k, uint64_t pfn, uint32_t *region, uint64_t *index);
/* The regions added since the last call (for a REGIONS record) in *@out,
 * valid until the next call; *@count 0 when none. 0 or MS_ENOMEM. */
int mx_pages_new_regions(mx_pages *k, const ms_region **out, size_t *count);

/* ---- pages ---- */

/* Adds page @index of region @region in @state (MS_PAGE_DATA, _ZERO or
 * _DISCARDED). For DATA, *@data is where its bytes go (4096 of them, to be
 * filled before the next call). Returns 1 when the open record was sealed
 * first (it waits to be handed out), 0, or MS_ESTATE when a sealed record
 * still waits (a bug of the caller's). */
int mx_pages_add(mx_pages *k, uint32_t region, uint64_t index, uint8_t state, uint8_t **data);
/* Whether the open record holds no page yet. */
bool mx_pages_empty(const mx_pages *k);
/* Seals the open record when it holds pages: true when it did. */
bool mx_pages_seal(mx_pages *k);
/* Whether a sealed record waits. */
bool mx_pages_ready(const mx_pages *k);
/* Hands out the sealed record: fills the pages member of @rec (and type,
 * flags), valid until the sealed slot is used again (after the next
 * mx_pages_add() that seals); adds its page counts to @totals[state]. */
void mx_pages_take(mx_pages *k, ms_record *rec, uint64_t totals[MS_PAGE_STATE_SLOTS]);

#endif /* MSI_XEN_PAGES_H */
