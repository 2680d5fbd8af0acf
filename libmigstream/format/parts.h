/*
 * A migration in parts read as one stream (FORMAT.md section 2.1): the
 * source that merges the parts' readers round by round, for ms_open().
 */
#ifndef MSI_PARTS_H
#define MSI_PARTS_H

#include <stddef.h>

#include "format/source.h"

/*
 * A source over @n inputs, each a part of one migration (in any order):
 * it reads every part's preamble and PART record when opened, refuses
 * inputs that are not the parts of one migration, all of them, and then
 * hands out the records the single stream would hold (format/parts.c). The
 * inputs, their names included, must outlive the source; @opts is copied.
 * NULL when out of memory.
 */
msi_source *msi_parts_create(const ms_reader_options *opts, const msi_source_channel *inputs,
                             size_t n);

/*
 * For the messages of a layer that reads records through @r and refuses
 * one (the exporters): "part 1 (b.mig), " when @r merges several parts,
 * naming the part @rec is in (its offset and index count in that part);
 * else "". Into @buf of @size bytes; returns @buf.
 */
const char *msi_part_prefix(char *buf, size_t size, ms_reader *r, const ms_record *rec);

#endif /* MSI_PARTS_H */
