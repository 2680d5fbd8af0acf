/*
 * The page types the page states do not say (docs/XEN.md section 3.2):
 * which pfns are page tables (pinned or not), XALLOC or BROKEN pages, as
 * their latest PAGE_DATA entry says. Pfns fall into blocks of
 * MX_TYPES_BLOCK pfns; the importer hands out a DEVICE "xen/page_types"
 * with the types of a block (instance: the block number) whenever they
 * change, before the pages that change them, and the exporter keeps the
 * same map from those records to give each page its type. A block's last
 * record therefore holds its final types, however the pages were batched.
 *
 * Owns: mx_types, a hash of blocks, each an ascending array of entries as
 * on the wire (type << 60 | pfn). Calls: wire.h and common/ only.
 */
#ifndef MSI_XEN_TYPES_H
#define MSI_XEN_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "xen/wire.h"

#define MX_TYPES_SHIFT 12u /* 4096 pfns (16 MiB) a block */
#define MX_TYPES_BLOCK (1u << MX_TYPES_SHIFT)
#define MX_TYPES_MAX (1u << 22)         /* typed pfns kept at once: 32 MiB */
#define MX_TYPES_PFN_LIMIT (1ull << 44) /* block numbers fit a DEVICE instance */

typedef struct mx_types mx_types;

/* NULL when out of memory. */
mx_types *mx_types_new(const ms_allocator *a);
/* NULL is fine. */
void mx_types_free(mx_types *t);

/* Whether @type is one the map keeps: a page table, XALLOC or BROKEN (not
 * NOTAB or XTAB, which a page's state says). */
static inline int mx_types_kept(unsigned type)
{
    return type != MX_PT_NOTAB && type != MX_PT_XTAB;
}

/* The type kept for @pfn, or 0 when none is. */
unsigned mx_types_get(const mx_types *t, uint64_t pfn);
/* Keeps @type for @pfn (< MX_TYPES_PFN_LIMIT), or forgets its type when
 * @type is not kept. 1 when that changed the map, 0 when not, MS_ENOMEM,
 * or MS_ELIMIT beyond MX_TYPES_MAX typed pfns. */
int mx_types_set(mx_types *t, uint64_t pfn, unsigned type);
/* The entries of block @block, ascending; *@n of them (0: none). A view
 * valid until the map changes. */
const uint64_t *mx_types_block(const mx_types *t, uint64_t block, size_t *n);
/* Replaces the entries of block @block with @n entries (ascending pfns of
 * the block, kept types: the caller checked them). 0, MS_ENOMEM or
 * MS_ELIMIT. */
int mx_types_replace(mx_types *t, uint64_t block, const uint64_t *entries, size_t n);

#endif /* MSI_XEN_TYPES_H */
