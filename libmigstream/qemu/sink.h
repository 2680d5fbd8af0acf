/*
 * The page sink of the QEMU importer (docs/QEMU.md section 2): every page,
 * whether it came from the "ram" section, a multifd channel or a mapped-ram
 * file, goes through here, in the order QEMU's destination applies them.
 *
 * Owns: the RAM block table (names, used lengths, the regions they
 * become), pass detection (a page the current pass has sent already starts
 * a round), the page file that keeps the previous copy of each page for
 * XBZRLE, and the output: a small FIFO of the REGIONS, ROUND and PAGES
 * records the source hands out, consecutive pages coalesced into one PAGES
 * record. Calls: input.h (errors) and format/ only.
 *
 * A PAGES record holds pages of one block from one origin (the main
 * stream, one multifd packet, mapped-ram), each extent after the previous
 * one; it is sealed when a page does not fit that, when a round starts, when
 * the driver hands out another record (mq_sink_seal), or at MQ_SINK_DATA_MAX
 * bytes of data, MQ_SINK_EXTENTS_MAX extents or MQ_SINK_PAGES_MAX pages. A
 * page sent as data is a DATA extent with its bytes, whatever the bytes
 * (the writer finds zero pages itself), a zero page a ZERO extent.
 *
 * Memory: the records not handed out yet, which is what one step of the
 * driver adds to the record still open (at most MQ_SINK_DATA_MAX of data);
 * one bit per page of the current pass (at most 64 MiB, see sink.c); the
 * latest copy of pages that came as XBZRLE more than once (1 MiB, once
 * one did).
 */
#ifndef MSI_QEMU_SINK_H
#define MSI_QEMU_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migstream/reader.h"
#include "qemu/input.h"

#define MQ_SINK_DATA_MAX (1u << 20) /* data bytes of a PAGES record */
#define MQ_SINK_EXTENTS_MAX 1024u   /* extents of a PAGES record */
#define MQ_SINK_PAGES_MAX 65536u    /* pages of a PAGES record, ZERO ones included */

typedef struct mq_sink mq_sink;

typedef struct mq_sink_config {
    uint32_t page_size;  /* QEMU's target page size */
    uint32_t max_blocks; /* max_ram_blocks */
    bool page_file;      /* keep previous copies for XBZRLE (!no_page_cache) */
    const char *tmpdir;  /* [borrow] of the page file; NULL: $TMPDIR, /tmp */
} mq_sink_config;

/* NULL when out of memory. @err [borrow] receives every failure. */
mq_sink *mq_sink_new(const ms_allocator *a, mq_error *err, const mq_sink_config *c);
/* NULL is fine. Closes the page file. */
void mq_sink_free(mq_sink *k);

/* ---- the block table ---- */

/* Adds block @name of @length bytes (a non-zero page multiple), read at
 * @off: MS_ECORRUPT for a name listed twice, MS_ELIMIT beyond max_blocks,
 * MS_EINVAL for a name no region may have, MS_ENOMEM. */
int mq_sink_add_block(mq_sink *k, const char *name, uint64_t length, uint64_t off);
/* The table is complete: queues its REGIONS record (none without blocks). */
int mq_sink_end_table(mq_sink *k, uint64_t off);
uint32_t mq_sink_page_size(const mq_sink *k);
uint32_t mq_sink_blocks(const mq_sink *k);
/* The block named @name, or UINT32_MAX. */
uint32_t mq_sink_find_block(const mq_sink *k, const char *name);
const char *mq_sink_block_name(const mq_sink *k, uint32_t bi);
uint64_t mq_sink_block_length(const mq_sink *k, uint32_t bi);

/* ---- pages ---- */

/* Where a page came from, for its record and for messages. */
typedef struct mq_where {
    const char *what; /* [borrow] the item as messages name it ("RAM item") */
    uint64_t offset;  /* of the item in its input (a channel's own bytes) */
    uint64_t origin;  /* the input: MQ_ORIGIN_*, or a multifd packet's */
    bool again;       /* decoded against its previous copy (XBZRLE): likely
                         to be read back, so kept in memory a while */
} mq_where;

#define MQ_ORIGIN_RAM 0u        /* items of the "ram" section */
#define MQ_ORIGIN_MAPPED_RAM 1u /* mapped-ram page areas */
#define MQ_ORIGIN_PACKETS 2u    /* + a running count of multifd packets */

/* Room for one page where mq_sink_page() would store it: a caller that
 * decodes a page there saves a copy. Valid until mq_sink_page() or
 * mq_sink_next(); NULL (failure set, naming @w) when out of memory. */
uint8_t *mq_sink_slot(mq_sink *k, const mq_where *w);
/* Page @addr (page-aligned, inside the block) of block @bi: @data is its
 * page_size bytes (possibly the slot), or NULL for a zero page. Starts a
 * round when the current pass has sent the page already. */
int mq_sink_page(mq_sink *k, uint32_t bi, uint64_t addr, const uint8_t *data, const mq_where *w);
/* The previous copy of a page into @page: what QEMU's destination holds
 * there (zero for a page never sent). Failures name "RAM item" at @off. */
int mq_sink_previous(mq_sink *k, uint32_t bi, uint64_t addr, uint8_t *page, uint64_t off);
/* Applies what the page file still has pending (at QEMU's EOF). */
int mq_sink_finish(mq_sink *k, uint64_t off);
/* Passes over RAM so far: the rounds started. */
uint64_t mq_sink_rounds(const mq_sink *k);

/* ---- output ---- */

/* Seals the open PAGES record, if any: another record follows, or its
 * origin has no more pages (a multifd packet). */
void mq_sink_seal(mq_sink *k);
/* Whether a sealed record waits to be handed out. A step that stops there
 * leaves the open record small, and with it what mq_sink_next() moves. */
bool mq_sink_ready(const mq_sink *k);
/* 1 with the oldest sealed record in *@rec (type, flags, offset and
 * contents; index left to the caller), valid until the next call; 0 when
 * none waits; or a failure writing the page file. Pages counts by state of
 * what was handed out go to @totals[state]. */
int mq_sink_next(mq_sink *k, ms_record *rec, uint64_t totals[MS_PAGE_STATE_SLOTS]);

/* Where the item @item of the record mq_sink_next() handed out last was
 * read: for REGIONS the block entry of region @item, for PAGES the item
 * of its page @item (pages counted across extents, as msi_source_copy()
 * counts them), for ROUND the page that started the round. */
typedef struct mq_blame {
    const char *context; /* the error context when it was read */
    const char *what;
    uint64_t offset;
    const char *block; /* REGIONS: the block's name, else NULL */
} mq_blame;
void mq_sink_blame(const mq_sink *k, uint64_t item, mq_blame *b);

#endif /* MSI_QEMU_SINK_H */
