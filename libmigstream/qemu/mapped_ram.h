/*
 * mapped-ram (docs/QEMU.md section 2.2): with the mapped-ram capability
 * every page of a block has a fixed place in the file, a bitmap says which
 * pages the file holds, and each MEM_SIZE entry is followed by the block's
 * MappedRamHeader. Reading it needs positional reads of the main stream.
 *
 * Owns: the blocks' headers (bitmap and page offsets), one bitmap chunk,
 * and the counts of its pages. Calls: input.h, sink.h, wire.h. The driver
 * reads each header after its block's entry, then, once the table is read,
 * the pages a step at a time.
 */
#ifndef MSI_QEMU_MAPPED_RAM_H
#define MSI_QEMU_MAPPED_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "qemu/input.h"
#include "qemu/sink.h"

typedef struct mq_mram mq_mram;

/* Pages a step reads at most. */
#define MQ_MRAM_STEP_PAGES 256u

/* Reads block @bi's MappedRamHeader from the main stream @in (right after
 * its MEM_SIZE entry) and moves @in past the block's pages. *@s is created
 * by the first call (NULL before). */
int mq_mram_header(mq_mram **s, const ms_allocator *a, mq_error *err, mq_in *in,
                   const mq_sink *sink, uint32_t bi);
/* After the MEM_SIZE table (the MEM_SIZE item at @off): hands up to
 * MQ_MRAM_STEP_PAGES pages to the sink, as the bitmaps say. 1 once every
 * block's pages are done, 0 when more remain, or a failure. @s may be NULL
 * (no block). */
int mq_mram_step(mq_mram *s, mq_in *in, mq_sink *sink, uint64_t off);
void mq_mram_free(mq_mram *s);

/* Pages the file holds (normal) and those its bitmaps leave out (zero). */
void mq_mram_counts(const mq_mram *s, uint64_t *normal, uint64_t *zero);

#endif /* MSI_QEMU_MAPPED_RAM_H */
