/*
 * libmigstream: libvirt save images.
 *
 * `virsh save`, `virsh managedsave` and libvirt's save API write a QEMU
 * guest's state to a file: libvirt's header ("LibvirtQemudSave", version 2,
 * the length of what follows it, whether the guest was running, the
 * compression format, where a cookie starts), the domain XML and an
 * optional cookie XML, then the QEMU migration stream (qemu.h), raw or
 * compressed by gzip, bzip2, xz, lzop or zstd (qemu.conf's
 * save_image_format). docs/FORMATS.md says what is read and how it maps.
 *
 * There is no API of its own: ms_open() (open.h) recognizes such an image
 * by its magic and hands out its contents as records, as it does any other
 * format:
 *
 *     ms_libvirt_options lo;
 *     ms_libvirt_options_init(&lo);
 *     lo.max_xml_size = 1 << 20;        // a limit of 0 means its default
 *     ms_open_options o;
 *     ms_open_options_init(&o);
 *     o.libvirt = &lo;
 *     const char *files[] = {"/var/lib/libvirt/qemu/save/vm1.save"};
 *     ms_reader *r = ms_open_files(&o, files, 1);
 *
 * What becomes what:
 *   - the header, domain XML and cookie become the DEVICE record
 *     "libvirt/domain" (instance 0, schema "libvirt-domain" version 1),
 *     whose CBOR state is a map: "xml" (text), "cookie" (text, when the
 *     image has one), "was_running" (bool), "format" ("raw", "gzip",
 *     "bzip2", "xz" or "zstd"); it comes right after INFO;
 *   - INFO: QEMU's machine type, and a description naming the domain (its
 *     <name> and <uuid>), whether it was running and the format;
 *   - everything else is the QEMU stream's, as qemu.h describes it.
 * Record offsets of the QEMU stream's records, and offsets in messages
 * about it, count bytes of the QEMU stream (decompressed, when it is
 * compressed), which starts after the header and its data_len bytes; the
 * header's own records are at offset 0.
 *
 * Refused: an incomplete save ("LibvirtQemudPart", MS_ETRUNCATED), header
 * versions other than 2 (MS_EVERSION), lzop and libvirt's "sparse" format
 * (MS_EFEATURE; the message says how to decompress an lzop image), lengths
 * beyond the limits below (MS_ELIMIT), and a domain XML or cookie that is
 * not NUL-terminated UTF-8 text (MS_ECORRUPT).
 *
 * The image is untrusted: every length is checked before anything is
 * allocated for it, the texts grow as their bytes arrive, and a compressed
 * stream is decompressed as QEMU's reader asks for bytes, never more than
 * it asks for in one call, with a bounded decoder: memory never depends on
 * how far the stream expands, and nothing is written to disk.
 */
#ifndef MIGSTREAM_LIBVIRT_H
#define MIGSTREAM_LIBVIRT_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ms_qemu_import_options; /* qemu.h */

/** The magic of a complete save image: its first 16 bytes (no NUL). */
#define MS_LIBVIRT_MAGIC "LibvirtQemudSave"
/** The magic while libvirt is still writing the image. */
#define MS_LIBVIRT_MAGIC_PARTIAL "LibvirtQemudPart"
/** The only header version read (libvirt's QEMU_SAVE_VERSION). */
#define MS_LIBVIRT_VERSION 2u

/** Limits for reading a save image. Fill with ms_libvirt_options_init()
 *  first; a limit of 0 means its default. */
typedef struct ms_libvirt_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** Largest data_len: the domain XML, the cookie and libvirt's padding
     *  (64 KiB) together, bytes; default 16 MiB, at most 32 MiB (so that
     *  the DEVICE record stays below the format's 64 MiB). The texts are
     *  held; the padding is read and dropped. */
    uint32_t max_xml_size;
    /** Most memory a decoder may take, bytes; default 128 MiB, at least
     *  8 MiB. xz's dictionary and zstd's window must fit (libvirt's xz -3
     *  needs 5 MiB, zstd's default level 2 MiB); gzip takes 45 KiB and
     *  bzip2 at most 3.7 MiB whatever this says. */
    uint64_t max_decoder_memory;
    /** Longest QEMU stream a compressed image may decompress to, bytes;
     *  default 1 TiB. Bounds the time a decompression bomb costs (its
     *  memory is bounded anyway). Not checked for raw images. */
    uint64_t max_stream_size;
    /** [borrow] the limits of the QEMU stream inside (their writer options
     *  are not used), or NULL: ms_open_options.qemu, else the defaults. */
    const struct ms_qemu_import_options *qemu;
} ms_libvirt_options;

/** Fills @p opts with the defaults. */
MS_API void ms_libvirt_options_init(ms_libvirt_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_LIBVIRT_H */
