/*
 * libmigstream: the final state of a stream's pages, and where its IN_PLACE
 * pages are.
 *
 * A stream may send a page many times, in any order, in several rounds;
 * what counts is its final state (FORMAT.md section 2): the state of its
 * last copy, or "missing" when no copy came. An ms_pagemap keeps that state
 * for every page of every region of a stream, in memory that follows what
 * the stream sent rather than the sizes its regions declare:
 *
 *     ms_pagemap *m = ms_pagemap_new(NULL);
 *     while ((rc = ms_reader_next(r, &rec)) > 0) {
 *         ms_pagemap_sync(m, r);          // regions declared so far
 *         ms_pagemap_apply(m, rec);       // PAGES records; others ignored
 *     }
 *     uint64_t n[MS_PAGEMAP_STATES];
 *     ms_pagemap_counts(m, region_id, n); // n[MS_PAGEMAP_MISSING]: never sent
 *     ms_pagemap_free(m);
 *
 * Pages are grouped in chunks of 4096 pages. A chunk no page of which was
 * sent costs nothing; a chunk whose pages are all in one state costs a
 * small entry (about 100 bytes); only a chunk holding pages in several
 * states has a map, of 4 bits per page (2 KiB). A run of 16 or more whole
 * chunks set to one state by one extent (a long ZERO run) costs a single
 * entry, however long. Every byte of this is charged to a budget
 * (ms_pagemap_options.max_memory) shared by all regions of the map, so a
 * hostile stream that scatters page states cannot make the map grow past
 * it: a region whose map would exceed the budget is given up instead (its
 * final states are then unknown), and the other regions go on.
 *
 * IN_PLACE pages (FORMAT.md section 6.2) are not in the stream: each
 * extent's argument is the address where they are. An ms_in_place keeps
 * those references and answers, for a page whose final state is IN_PLACE,
 * the address of its last reference.
 *
 * Threads: each object is used by one thread at a time; different objects
 * are independent (common.h, "Handles").
 */
#ifndef MIGSTREAM_PAGEMAP_H
#define MIGSTREAM_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reader.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_pagemap ms_pagemap;
typedef struct ms_in_place ms_in_place;

/**
 * The states a map holds, each below MS_PAGEMAP_STATES: MS_PAGEMAP_MISSING
 * (0: no copy of the page was sent), an ms_page_state (as sent: a DATA page
 * of zero bytes stays DATA), or a value of the caller's own given to
 * ms_pagemap_set(). 16 values leave room for the page states a later
 * format adds (FORMAT.md section 11.2): arrays of counts never grow.
 */
#define MS_PAGEMAP_MISSING 0u
#define MS_PAGEMAP_STATES 16u

/** Default of ms_pagemap_options.max_memory: 1 GiB, enough for 8 TiB of
 *  4 KiB pages in which every chunk holds pages in several states. */
#define MS_PAGEMAP_DEFAULT_MEMORY ((size_t)1 << 30)
/** Default and largest ms_pagemap_options.max_in_place. */
#define MS_IN_PLACE_DEFAULT_EXTENTS 4096u
#define MS_IN_PLACE_MAX_EXTENTS (1u << 20)

/** Options of ms_pagemap_new() and ms_in_place_new(). Fill with
 *  ms_pagemap_options_init() first; 0 means the default. */
typedef struct ms_pagemap_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** Bytes the page-state maps of all regions may use together; default
     *  MS_PAGEMAP_DEFAULT_MEMORY. Region entries and their names are not
     *  charged: the reader bounds their number (max_regions). */
    size_t max_memory;
    /** IN_PLACE extents an ms_in_place keeps (each 40 bytes; a lookup
     *  scans them all); default MS_IN_PLACE_DEFAULT_EXTENTS, at most
     *  MS_IN_PLACE_MAX_EXTENTS. */
    uint32_t max_in_place;
    ms_allocator allocator; /**< zeroed: malloc/realloc/free */
} ms_pagemap_options;

/** Fills @p opts with the defaults. */
MS_API void ms_pagemap_options_init(ms_pagemap_options *opts);

/* ------------------------------------------------------------------------ */
/* Page states                                                              */
/* ------------------------------------------------------------------------ */

/** One region of a map. A read-only view, valid for the map's lifetime. */
typedef struct ms_pagemap_region {
    ms_region region; /**< as declared; the name is the map's own copy */
    uint64_t pages;   /**< region.size / region.page_size */
    /** false: the region's final states were given up, because its map
     *  would have exceeded the budget or memory ran out. Its counts below
     *  still grow; its states cannot be asked for (MS_ESTATE). */
    bool tracked;
    /** Pages ms_pagemap_apply() saw sent, per state, every copy counted. */
    uint64_t sent[MS_PAGEMAP_STATES];
    uint64_t records; /**< PAGES records ms_pagemap_apply() applied */
    uint64_t bytes;   /**< their bytes on the wire, record headers included */
} ms_pagemap_region;

/** Creates an empty map. @p opts may be NULL (defaults).
 *  @return **new** map, or NULL when memory ran out. Bad options give a
 *          map in the failed state (common.h, "Handles"):
 *          ms_pagemap_status() is MS_EINVAL, ms_pagemap_errmsg() names the
 *          option, and every call that changes the map returns MS_EINVAL. */
MS_API ms_pagemap *ms_pagemap_new(const ms_pagemap_options *opts);

/** MS_EINVAL for a map made from bad options, else 0 (a region given up is
 *  the region's, not the map's); MS_ENOMEM for NULL. */
MS_API int ms_pagemap_status(const ms_pagemap *m);

/** Frees the map (NULL is fine). */
MS_API void ms_pagemap_free(ms_pagemap *m);

/**
 * Adds a region, every page of it missing. Maps are made for a region when
 * its first page is set, so a region never sent costs only its entry.
 * @param region [borrow] a region as the reader hands it out (the name is
 *               copied)
 * @return 0; MS_EINVAL when the id is already in the map or the size is not
 *         a non-zero multiple of a power-of-two page size; MS_ENOMEM.
 */
MS_API int ms_pagemap_add_region(ms_pagemap *m, const ms_region *region);

/**
 * Adds the regions @p r declared since the last call (ms_reader_region()
 * from ms_pagemap_region_count() on), so call it after each
 * ms_reader_next() that may have read a REGIONS record.
 * @return 0, or a ms_pagemap_add_region() status.
 */
MS_API int ms_pagemap_sync(ms_pagemap *m, const ms_reader *r);

/**
 * Applies a record: for a PAGES record of a region in the map, each extent
 * sets its pages to its state, and the region's sent, records and bytes
 * counts grow. Other records, and PAGES records whose pages were not
 * decoded (ms_record.status set), are ignored.
 * @param rec [borrow] as ms_reader_next() hands it out
 * @return 0; MS_EINVAL (a region not in the map, an extent outside its
 *         region or with state 0 or MS_PAGEMAP_STATES and above: nothing
 *         applied); MS_ELIMIT when the region's map would exceed max_memory
 *         or MS_ENOMEM: the region is then given up (tracked becomes
 *         false; ms_pagemap_errmsg() names it), its counts still grow, and
 *         the map goes on with the other regions; MS_ECORRUPT when a
 *         DUPLICATE extent names a source page whose last copy is not DATA
 *         or DUPLICATE (FORMAT.md section 6.2: extents apply in order), in
 *         a tracked region: the record is applied all the same, and
 *         ms_pagemap_errmsg() says which pages.
 */
MS_API int ms_pagemap_apply(ms_pagemap *m, const ms_record *rec);

/**
 * Sets pages [first, first + count) of region @p region_id to @p state,
 * whatever the stream said: for a caller that classifies pages itself (a
 * DATA page whose bytes are all zero as ZERO, say). Does not touch the
 * sent, records and bytes counts.
 * @param had [out, optional] MS_PAGEMAP_STATES counts: had[s] grows by the
 *            number of those pages that were in state s before
 * @return 0; MS_EINVAL (unknown region, pages outside it, state of
 *         MS_PAGEMAP_STATES and above); MS_ESTATE (the region was given
 *         up); MS_ELIMIT or MS_ENOMEM, after which the region is given up
 *         as with ms_pagemap_apply().
 */
MS_API int ms_pagemap_set(ms_pagemap *m, uint32_t region_id, uint64_t first, uint64_t count,
                          unsigned state, uint64_t *had);

/** Regions in the map, in the order they were added. */
MS_API size_t ms_pagemap_region_count(const ms_pagemap *m);

/** Region @p index (0 .. ms_pagemap_region_count() - 1), or NULL. */
MS_API const ms_pagemap_region *ms_pagemap_get_region(const ms_pagemap *m, size_t index);

/** The region with id @p id, or NULL. */
MS_API const ms_pagemap_region *ms_pagemap_find(const ms_pagemap *m, uint32_t id);

/**
 * Final pages per state of region @p region_id.
 * @param counts [out] MS_PAGEMAP_STATES counts, summing to the region's
 *               pages
 * @return 0, MS_EINVAL (unknown region), MS_ESTATE (given up).
 */
MS_API int ms_pagemap_counts(const ms_pagemap *m, uint32_t region_id, uint64_t *counts);

/**
 * The final state of page @p page of region @p region_id, and the run of
 * pages from it in that state: walk a region in page order with
 *
 *     for (uint64_t p = 0, end; p < pages; p = end)
 *         st = ms_pagemap_state(m, id, p, &end);
 *
 * Asking for pages in increasing order costs a constant amortized time per
 * run; asking for an earlier page starts the walk over. A later change to
 * the region's pages is seen by the next call.
 * @param run_end [out, optional] the first page after @p page that may be
 *                in another state (a run may be split in several: the next
 *                one can hold the same state), at most the region's pages
 * @return the state (0 .. MS_PAGEMAP_STATES - 1); MS_EINVAL (unknown
 *         region, @p page past its end), MS_ESTATE (given up), MS_ENOMEM.
 */
MS_API int ms_pagemap_state(ms_pagemap *m, uint32_t region_id, uint64_t page, uint64_t *run_end);

/**
 * The first and the last page of region @p region_id in final state
 * @p state (MS_PAGEMAP_MISSING: the pages never sent), by a walk over the
 * region's runs.
 * @param first, last [out] the pages, or UINT64_MAX when no page is in
 *                    that state
 * @return 0, MS_EINVAL, MS_ESTATE, MS_ENOMEM (as ms_pagemap_state()).
 */
MS_API int ms_pagemap_bounds(ms_pagemap *m, uint32_t region_id, unsigned state, uint64_t *first,
                             uint64_t *last);

/** Bytes the map's page-state maps use now (charged to max_memory). */
MS_API size_t ms_pagemap_memory(const ms_pagemap *m);

/** Message naming what the last failed call found and where (the region,
 *  the pages), or "". */
MS_API const char *ms_pagemap_errmsg(const ms_pagemap *m);

/* ------------------------------------------------------------------------ */
/* IN_PLACE references                                                      */
/* ------------------------------------------------------------------------ */

/** Creates an empty list of IN_PLACE references. @p opts may be NULL; only
 *  max_in_place and the allocator apply.
 *  @return **new** list, or NULL when memory ran out. Bad options give a
 *          list in the failed state (common.h, "Handles"):
 *          ms_in_place_status() is MS_EINVAL, ms_in_place_errmsg() names the
 *          option, and ms_in_place_add() returns MS_EINVAL. */
MS_API ms_in_place *ms_in_place_new(const ms_pagemap_options *opts);

/** MS_EINVAL for a list made from bad options, else 0; MS_ENOMEM for NULL. */
MS_API int ms_in_place_status(const ms_in_place *l);

/** Why the list is in the failed state, or "". */
MS_API const char *ms_in_place_errmsg(const ms_in_place *l);

/** Frees the list (NULL is fine). */
MS_API void ms_in_place_free(ms_in_place *l);

/**
 * Adds an IN_PLACE extent of @p region: page x->first + i is at address
 * x->arg + i * region->page_size. A later extent over the same pages
 * replaces what an earlier one said, as in the stream.
 * @param region, x [borrow] as an ms_pages of a PAGES record holds them
 * @return 0; MS_EINVAL (not an IN_PLACE extent, an address not aligned to
 *         the region's page size or a range that wraps 2^64: what the
 *         reader refuses); MS_ELIMIT (the list holds max_in_place extents
 *         already); MS_ENOMEM.
 */
MS_API int ms_in_place_add(ms_in_place *l, const ms_region *region, const ms_extent *x);

/** Extents in the list. */
MS_API size_t ms_in_place_count(const ms_in_place *l);

/** One extent of the list, as ms_in_place_add() took it. */
typedef struct ms_in_place_extent {
    uint32_t region;    /**< region id */
    uint32_t page_size; /**< the region's page size */
    uint64_t first;     /**< first page */
    uint64_t count;     /**< pages */
    /** Address of page @p first in the in-place space; page first + i is
     *  at address + i * page_size, the last byte at address + count *
     *  page_size - 1. */
    uint64_t address;
} ms_in_place_extent;

/** Extent @p index (0: the first added), or NULL past the end. */
MS_API const ms_in_place_extent *ms_in_place_get(const ms_in_place *l, size_t index);

/**
 * Called by ms_in_place_overlaps() for an extent @p later that references
 * bytes an earlier-in-address extent @p earlier references too, without
 * mapping the same region pages to the same addresses. Both are list
 * indexes (ms_in_place_get()). Return 0 to go on, negative to stop.
 */
typedef int (*ms_in_place_overlap_fn)(void *ctx, size_t later, size_t earlier);

/**
 * Checks FORMAT.md section 6.2's rule that no two IN_PLACE extents of a
 * stream reference overlapping bytes of the in-place space, unless both
 * map the same region pages to the same addresses: every extent counts,
 * in whichever region, including one whose pages a later copy replaced.
 * In address order, each extent is compared with the one reaching furthest
 * before it (sharing one mapping is transitive, so that one comparison
 * suffices), and each that breaks the rule is reported once: n log n for
 * n extents.
 * @param fn NULL: only count
 * @return the number of extents reported (0: the rule holds), the
 *         negative value @p fn returned, MS_EINVAL, or MS_ENOMEM.
 */
MS_API int ms_in_place_overlaps(const ms_in_place *l, ms_in_place_overlap_fn fn, void *ctx);

/**
 * The address of page @p page of region @p region_id by the last extent
 * that covers it. A lookup scans the extents from the newest.
 * @param run_end [out, optional] the first page after @p page at which the
 *                answer may change (the end of the covering extent, or the
 *                start of a later extent inside it); UINT64_MAX when no
 *                later extent of the region starts after @p page
 * @return the address, or UINT64_MAX when no extent covers the page (an
 *         address is aligned to a page size, so never UINT64_MAX).
 */
MS_API uint64_t ms_in_place_address(const ms_in_place *l, uint32_t region_id, uint64_t page,
                                    uint64_t *run_end);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_PAGEMAP_H */
