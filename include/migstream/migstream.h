/*
 * libmigstream: a versioned, checksummed stream format for virtual machine
 * migration, and the library that writes and reads it.
 *
 * Include this umbrella header; the pieces are:
 *   common.h  versions, status codes, allocator, wire enumerations, limits
 *   stream.h  the values a stream carries (header, regions, pages, devices)
 *   writer.h  ms_writer: producing a stream
 *   reader.h  ms_reader: consuming a stream
 *   replay.h  ms_replay: applying a stream through callbacks
 *   cbor.h    formatting and comparing CBOR items (device state)
 *   qemu.h    ms_qemu_import: reading a QEMU migration stream
 *   schema.h  ms_schema_set: device-state schemas, validation, compatibility
 *
 * The format itself is specified in docs/FORMAT.md.
 */
#ifndef MIGSTREAM_H
#define MIGSTREAM_H

#include "common.h"
#include "stream.h"
#include "writer.h"
#include "reader.h"
#include "replay.h"
#include "overlay.h"
#include "cbor.h"
#include "qemu.h"
#include "schema.h"

#endif /* MIGSTREAM_H */
