/*
 * Where the format layer's options structs end, for msi_struct_take()
 * (common.h, "Growing structs"). The writer and the reader take their
 * options with these, and so does every layer above that takes them nested
 * in its own (the QEMU importer's writer options, the exporter's reader
 * options): a field added at the end of ms_writer_options or
 * ms_reader_options is then known everywhere at once, by changing one line.
 */
#ifndef MSI_OPTIONS_H
#define MSI_OPTIONS_H

#include "common/util.h"
#include "migstream/reader.h"
#include "migstream/writer.h"

#define MSI_WRITER_OPTIONS_END MSI_STRUCT_END(ms_writer_options, dedup_pages)
#define MSI_READER_OPTIONS_END MSI_STRUCT_END(ms_reader_options, max_decode_ratio)

#endif /* MSI_OPTIONS_H */
