/*
 * The "ram" section of QEMU's main stream (docs/QEMU.md section 2): its
 * items, one per mq_ram_step(), into the page sink. The MEM_SIZE table's
 * entries become blocks of the sink; ZERO, PAGE, XBZRLE and COMPRESS_PAGE
 * items become pages.
 *
 * Owns: the section's item decoding (CONTINUE's last block, XBZRLE and
 * zlib), where multifd channels sync, and the counts of its items. Calls:
 * input.h, sink.h, wire.h. What happens between items is the driver's: at
 * a block entry (mapped-ram's header follows it), at the table's end
 * (mapped-ram's pages), at a sync point (the channels) the step returns a
 * code instead of calling across.
 */
#ifndef MSI_QEMU_RAM_H
#define MSI_QEMU_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "qemu/input.h"
#include "qemu/sink.h"

typedef struct mq_ram mq_ram;

typedef struct mq_ram_config {
    uint32_t page_size;
    uint64_t max_ram_bytes; /* the MEM_SIZE total */
    bool ignore_shared;     /* x-ignore-shared: MEM_SIZE entries carry an address */
    bool mapped_ram;        /* pages lie in the file: page items are refused */
    bool channels;          /* multifd channels were given */
    bool page_file;         /* previous copies are kept: XBZRLE is read */
} mq_ram_config;

/* What a step read, besides a failure (negative). */
enum {
    MQ_RAM_ITEM = 0,  /* an item; the part goes on */
    MQ_RAM_EOS = 1,   /* EOS: this part of the section ended (its footer follows) */
    MQ_RAM_SYNC = 2,  /* a sync point: the channels must reach it before the next step */
    MQ_RAM_BLOCK = 3, /* a MEM_SIZE entry: mq_ram_last_block() */
    MQ_RAM_TABLE = 4, /* the MEM_SIZE table ended */
};

/* NULL when out of memory. @in, @sink and @err [borrow]. */
mq_ram *mq_ram_new(const ms_allocator *a, mq_error *err, mq_in *in, mq_sink *sink,
                   const mq_ram_config *c);
void mq_ram_free(mq_ram *r);

/* Reads one item of a START, PART or END of "ram" (or one MEM_SIZE entry). */
int mq_ram_step(mq_ram *r);

/* After MQ_RAM_SYNC: the offset of the item that made it. */
uint64_t mq_ram_sync_offset(const mq_ram *r);
/* After MQ_RAM_BLOCK: the block just added and the offset of its entry. */
uint32_t mq_ram_last_block(const mq_ram *r, uint64_t *entry);
/* After MQ_RAM_TABLE: the offset of the MEM_SIZE item. */
uint64_t mq_ram_table_offset(const mq_ram *r);

/* Items read (QEMU's counts). */
typedef struct mq_ram_counts {
    uint64_t zero_pages, normal_pages, xbzrle_pages, compressed_pages;
    uint32_t blocks;
    uint64_t bytes; /* sum of the blocks' used lengths */
} mq_ram_counts;
const mq_ram_counts *mq_ram_counts_of(const mq_ram *r);

#endif /* MSI_QEMU_RAM_H */
