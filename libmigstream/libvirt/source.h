/*
 * libvirt save images as a foreign-format source (format/source.h;
 * docs/FORMATS.md section 2): the driver of the module. Its open reads
 * libvirt's header and the texts after it (image.c), then opens the QEMU
 * module's source over the rest of the image: the image itself, by
 * position shifted past the header, for a raw image; the decoder of unzip.c
 * for a compressed one. Its next hands out INFO, the DEVICE record
 * "libvirt/domain", then the QEMU source's records (its INFO replaced by
 * the first, its END counting the record added).
 *
 * A module that wraps another (docs/HACKING.md, "Layers"): it calls the
 * QEMU module's source and the format layer, and nothing above it.
 */
#ifndef MSI_LIBVIRT_SOURCE_H
#define MSI_LIBVIRT_SOURCE_H

#include "format/source.h"
#include "migstream/libvirt.h"

/* The DEVICE record of the header and texts. */
#define MLV_DEVICE_PATH "libvirt/domain"
#define MLV_DEVICE_SCHEMA "libvirt-domain"
#define MLV_DEVICE_VERSION 1u

/* "libvirt": a save image. s->options: an ms_libvirt_options (its qemu
 * member the QEMU stream's options, or NULL), or NULL for the defaults. It
 * must stay valid until the source is opened. */
extern const msi_source_ops mlv_source_ops;

/* Fills the limits of @o left 0 with their defaults, and clamps them. */
void mlv_options_defaults(ms_libvirt_options *o);

#endif /* MSI_LIBVIRT_SOURCE_H */
