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
 *   overlay.h hypervisor overlay pages: rendering, priorities
 *   cbor.h    formatting and comparing CBOR items (device state)
 *   pagemap.h ms_pagemap, ms_in_place: the final state of a stream's pages
 *   diff.h    ms_diff: comparing two streams by the state they leave behind
 *   replay_dir.h ms_replay_dir: a stream's final state written to a directory
 *   open.h    ms_open: a reader for a stream of any format this build reads
 *   modules.h which optional modules this build holds; their headers:
 *   schema.h  ms_schema_set: device-state schemas, validation, compatibility
 *             (when MS_HAVE_SCHEMA)
 *   qemu.h    ms_qemu_import, ms_qemu_export: QEMU migration streams
 *             (when MS_HAVE_QEMU)
 *   libvirt.h ms_libvirt_options: libvirt save images, read by ms_open()
 *             (when MS_HAVE_LIBVIRT)
 *   xen.h     ms_xen_import, ms_xen_export: Xen migration streams v2
 *             (when MS_HAVE_XEN)
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
#include "pagemap.h"
#include "diff.h"
#include "replay_dir.h"
#include "open.h"

#include <migstream/modules.h>
#if MS_HAVE_SCHEMA
#include "schema.h"
#endif
#if MS_HAVE_QEMU
#include "qemu.h"
#endif
#if MS_HAVE_LIBVIRT
#include "libvirt.h"
#endif
#if MS_HAVE_XEN
#include "xen.h"
#endif

#endif /* MIGSTREAM_H */
