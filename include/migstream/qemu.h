/*
 * libmigstream: importing a QEMU migration stream.
 *
 * QEMU (7.2 up to 10.x) writes its own stream format when it migrates or
 * saves a guest: magic "QEVM", version 3, then sections of RAM and device
 * state (docs/QEMU.md describes what is read and how it maps). An importer
 * reads such a stream from a callback, a file or a pipe, and writes the same
 * guest state as a libmigstream stream through an ms_writer it creates:
 *
 *     ms_qemu_import_options o;
 *     ms_qemu_import_options_init(&o);
 *     ms_qemu_import *imp = ms_qemu_import_new(&o);
 *     int rc = ms_qemu_import_run_fd(imp, qemu_fd, out_fd);
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", ms_qemu_import_errmsg(imp));
 *     ms_qemu_import_free(imp);
 *
 * What becomes what:
 *   - the CONFIGURATION section's machine type becomes the INFO machine;
 *   - each RAM block of the "ram" section becomes a region named after the
 *     block (pc.ram, 0000:00:01.0/vga.vram ...), its used length as size,
 *     with no guest-physical address (a block's offset is not an address);
 *   - ZERO items become ZERO pages; PAGE, XBZRLE and compressed (zlib) items
 *     become DATA pages, XBZRLE decoded against the page's previous copy;
 *   - every other section becomes a DEVICE record: path = the section's id
 *     string, instance = its instance id, version = its version id, and a
 *     CBOR state holding the raw section bytes and, when QEMU's JSON trailer
 *     describes the section, a map of field names to values.
 *
 * The import is streaming: the input is read once, in order, and never held
 * whole. Memory is bounded by the limits in the options: device sections
 * are held until the end (their field layout is only known from the JSON
 * trailer, which QEMU writes last), RAM pages are not. Previous copies of
 * pages, which XBZRLE needs, go to a sparse temporary file.
 *
 * The input is untrusted: every length is checked against a limit before
 * anything is allocated for it, and a failure names the byte offset, the
 * section (id, name, instance) and what QEMU's format expected there.
 */
#ifndef MIGSTREAM_QEMU_H
#define MIGSTREAM_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reader.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_qemu_import ms_qemu_import;

/** QEMU's file magic, "QEVM", as the stream's first four bytes (big-endian). */
#define MS_QEMU_MAGIC 0x5145564Du
/** The only QEMU stream version read (QEMU_VM_FILE_VERSION). */
#define MS_QEMU_VERSION 3u

/** Importer options and limits. Fill with ms_qemu_import_options_init()
 *  first; a limit of 0 means its default. */
typedef struct ms_qemu_import_options {
    size_t struct_size; /**< set by init; lets the struct grow */
    /**
     * [borrow] options of the writer that produces the output, or NULL for
     * the defaults. The struct is copied by ms_qemu_import_new(); the
     * strings it points to must stay valid until the run ends. When its
     * machine is NULL, the machine type of QEMU's CONFIGURATION section is
     * used; when its writer_name is NULL or "", "qemu" is used. Its
     * page_size is raised to QEMU's page size when smaller.
     */
    const ms_writer_options *writer;
    /** Largest non-RAM section, bytes; default 16 MiB. A section is held
     *  whole until the end of the stream. */
    uint32_t max_section_size;
    /** All non-RAM sections together, bytes; default 64 MiB. */
    uint64_t max_device_bytes;
    /** Largest JSON trailer (VMDESCRIPTION), bytes; default 16 MiB. */
    uint32_t max_vmdesc_size;
    /** Largest guest: the sum of RAM block lengths; default 16 TiB. */
    uint64_t max_ram_bytes;
    /** Most RAM blocks; default 4096 (the stream reader's region limit). */
    uint32_t max_ram_blocks;
    /** [borrow] directory of the temporary page file that XBZRLE decoding
     *  reads previous copies from; NULL: $TMPDIR, else /tmp. Copied by
     *  ms_qemu_import_new(). The file is unlinked as soon as it is created
     *  and only holds pages sent as data: it is sparse, at most the guest's
     *  RAM. */
    const char *tmpdir;
    /** true: keep no page file; an XBZRLE page is then refused (MS_EFEATURE).
     *  For streams known to have none. */
    bool no_page_cache;
    /** true: device state keeps only the raw section bytes, even where the
     *  JSON trailer describes the fields. */
    bool raw_only;
    ms_allocator allocator; /**< zeroed: malloc/realloc/free */
} ms_qemu_import_options;

/** Fills @p opts with defaults. */
MS_API void ms_qemu_import_options_init(ms_qemu_import_options *opts);

/** What a run saw; counts refer to QEMU's items, not to records written. */
typedef struct ms_qemu_import_stats {
    uint64_t bytes_read;       /**< input bytes consumed */
    uint64_t sections;         /**< section headers (START, PART, END, FULL) */
    uint32_t ram_blocks;       /**< RAM blocks in the MEM_SIZE table */
    uint64_t ram_bytes;        /**< sum of their used lengths */
    uint64_t zero_pages;       /**< ZERO items (QEMU's "duplicate" count) */
    uint64_t normal_pages;     /**< PAGE items (QEMU's "normal" count) */
    uint64_t xbzrle_pages;     /**< XBZRLE items, decoded */
    uint64_t compressed_pages; /**< COMPRESS_PAGE items, inflated */
    /** Passes over RAM: 1 + the number of times the stream went back to a
     *  page at or before the previous one (0 when no page was sent). */
    uint64_t ram_rounds;
    uint64_t devices;         /**< DEVICE records written */
    uint64_t devices_decoded; /**< of them, with a field map */
    uint64_t commands;        /**< COMMAND items */
    bool has_vmdesc;          /**< a JSON trailer was present */
    char machine[256];        /**< CONFIGURATION machine type, or "" */
} ms_qemu_import_stats;

/**
 * Creates an importer.
 * @param opts [borrow] options filled by ms_qemu_import_options_init(), or
 *        NULL for defaults. Strings are copied.
 * @return **new** importer, or NULL when memory ran out or @p opts has a
 *         struct_size this library does not know.
 */
MS_API ms_qemu_import *ms_qemu_import_new(const ms_qemu_import_options *opts);

/** Frees the importer (NULL is fine) and removes its page file. */
MS_API void ms_qemu_import_free(ms_qemu_import *imp);

/**
 * Reads a whole QEMU stream through @p in and writes a complete libmigstream
 * stream (END included) through @p out. Runs once per importer.
 *
 * When it fails, the output written so far is not a complete stream (it has
 * no END record): a caller writing a file should discard it.
 *
 * @param in  [borrow] input callback (ms_read_fn), called until it returns 0
 * @param out [borrow] output callback (ms_write_fn)
 * @return 0 when the stream was read to its end and the output finished;
 *         or, with ms_qemu_import_errmsg() saying where and what:
 *         - MS_EMAGIC: the input is not a QEMU stream ("QEVM");
 *         - MS_EVERSION: a QEVM version other than 3;
 *         - MS_ETRUNCATED: the input ended before QEMU's EOF section, or in
 *           the middle of an item or of the JSON trailer;
 *         - MS_ECORRUPT: a malformed item: unknown section type, unknown RAM
 *           flags, a page outside its block, an unknown block name, a
 *           missing footer, bytes after the trailer, invalid JSON ...;
 *         - MS_ECOMPRESS: a compressed or XBZRLE page that does not decode
 *           to exactly one page;
 *         - MS_EFEATURE: a QEMU feature this importer does not read
 *           (postcopy, RDMA, mapped-ram, multifd page data, no section
 *           footers, XBZRLE with no_page_cache);
 *         - MS_ELIMIT: a size beyond a limit of the options;
 *         - MS_EIO: @p in failed, or the page file could not be written;
 *         - MS_ESTATE: the importer already ran;
 *         - any status of the writer (MS_EINVAL for a block name the format
 *           cannot hold, MS_EIO when @p out failed, MS_ENOMEM ...).
 */
MS_API int ms_qemu_import_run(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                              void *out_ctx);

/** Same, reading @p in_fd and writing @p out_fd (retrying EINTR and short
 *  writes; neither descriptor is closed). */
MS_API int ms_qemu_import_run_fd(ms_qemu_import *imp, int in_fd, int out_fd);

/** Counts of the last run (complete after success, partial after failure).
 *  Valid until the importer is freed. */
MS_API const ms_qemu_import_stats *ms_qemu_import_get_stats(const ms_qemu_import *imp);

/** The sticky status: 0, or the failure that stopped the run. */
MS_API int ms_qemu_import_status(const ms_qemu_import *imp);

/** Message naming what failed and where, or "" if nothing failed. Valid
 *  until the importer is freed. */
MS_API const char *ms_qemu_import_errmsg(const ms_qemu_import *imp);

/** Byte offset in the QEMU stream of the item that failed. */
MS_API uint64_t ms_qemu_import_error_offset(const ms_qemu_import *imp);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_QEMU_H */
