/*
 * Shared by the fuzz targets: reading a stream to its end in both reader
 * modes while touching every byte the reader hands out.
 */
#ifndef FZ_COMMON_H
#define FZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads @data strictly and leniently, with small limits so that the fuzzer
 * explores limit handling too; returns a value derived from every view.
 * Leniently also through a read callback, whole and a few bytes at a time
 * with "would block" (MS_EAGAIN) between them: the two must agree. */
uint64_t fz_read_stream(const uint8_t *data, size_t size);

#endif
