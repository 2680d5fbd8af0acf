/*
 * QEMU's migration stream as a foreign-format source (format/source.h):
 * the driver of the module. It reads the main stream's file header,
 * CONFIGURATION, sections and commands, holds the non-RAM sections until
 * the JSON trailer, and steps the parts below it (ram, multifd, mapped-ram)
 * a bounded amount per record, handing out what they put in the sink.
 *
 * Owns: the main stream's cursor, the sections and held device state,
 * CONFIGURATION, the error of the import, and the order of the steps.
 * Calls: every part below it (input, sink, ram, multifd, mapped_ram,
 * vmsd) and the public exporter. Its one caller is import.c.
 *
 * The records: INFO (the machine type, when CONFIGURATION names one),
 * DEVICE "configuration" (CONFIGURATION's subsections, when there are
 * any), REGIONS at the MEM_SIZE table, ROUND at every pass over RAM, PAGES
 * (sink.h says how pages are grouped), DEVICE for each held section after
 * the trailer, END. A record's offset is the byte offset of the QEMU item
 * it came from: for PAGES the first page's item, in a multifd channel's own
 * bytes for its pages (a record holds pages of one packet); for ROUND the
 * page that started the pass; for a device the section's first header; for
 * END the bytes read. Each next() reads at most one RAM item, one multifd
 * packet, MQ_MRAM_STEP_PAGES mapped-ram pages, one non-RAM section or the
 * trailer before it has a record to hand out, except while pages coalesce
 * into the record still open (at most MQ_SINK_PAGES_MAX of them).
 */
#ifndef MSI_QEMU_SOURCE_H
#define MSI_QEMU_SOURCE_H

#include "format/source.h"
#include "migstream/qemu.h"

/* "qemu": QEMU's main stream, its multifd channels as the source's
 * channels, positional reads for mapped-ram. s->options: an
 * ms_qemu_import_options (writer ignored), or NULL for the defaults. */
extern const msi_source_ops mq_source_ops;

/* The last field of ms_qemu_import_options this library knows (common.h,
 * "Growing structs"). */
#define MSI_QEMU_IMPORT_OPTIONS_END MSI_STRUCT_END(ms_qemu_import_options, max_decode_allowance)

/* Fills the limits of @o left 0 with their defaults. */
void mq_options_defaults(ms_qemu_import_options *o);

/* The counts of the import so far (ms_qemu_import_stats). @s opened, or at
 * least initialized. */
void mq_source_stats(const msi_source *s, ms_qemu_import_stats *out);

/* The main stream's bytes read so far. */
uint64_t mq_source_offset(const msi_source *s);

/* msi_source_copy() stopped because @w failed (status @rc) on the record
 * the source handed out last: sets the source's error to what the importer
 * says, naming the QEMU item the failing call wrote. Returns the status. */
int mq_source_writer_failed(msi_source *s, const msi_copy_stop *stop, ms_writer *w, int rc);

#endif /* MSI_QEMU_SOURCE_H */
