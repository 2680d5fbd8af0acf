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
 *     describes the section, a map of field names to values; a section sent
 *     as START, PARTs and END also keeps each part's length ("parts");
 *   - the CONFIGURATION section's subsections (capabilities, uuid,
 *     target-page-bits) become the first DEVICE record, "configuration",
 *     with their bytes as sent (docs/QEMU.md section 3.3).
 *
 * A multifd migration (capability "multifd") sends most pages over extra
 * connections, the channels: capture each one and add it with
 * ms_qemu_import_add_channel() before the run; the channels are read along
 * with the main stream and merged at its sync points. A mapped-ram stream
 * (QEMU 9.0+, "file:" migration, capability "mapped-ram") keeps pages at
 * fixed file offsets: it needs positional reads of the main stream
 * (ms_qemu_import_set_pread(), or ms_qemu_import_run_fd() on a regular file).
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
 *
 * Threads: an importer or exporter, with the writer or reader it makes, is
 * used by one thread at a time; different ones are independent (common.h,
 * "Handles"). The callbacks given to it run on the calling thread.
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
/** Most multifd channels (QEMU's multifd-channels parameter is a u8). */
#define MS_QEMU_MAX_CHANNELS 255u

/** Importer options and limits. Fill with ms_qemu_import_options_init()
 *  first; a limit of 0 means its default. */
typedef struct ms_qemu_import_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
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
    /* Since multifd and mapped-ram reading. zero_pages and normal_pages above
     * include the channels' pages; for mapped-ram, normal_pages are the pages
     * the file holds and zero_pages the pages its bitmaps leave out. */
    uint32_t channels;        /**< multifd channels read */
    uint64_t multifd_packets; /**< their packets (init records not counted) */
    uint64_t multifd_syncs;   /**< sync points of the main stream met */
    bool mapped_ram;          /**< the stream was a mapped-ram one */
    /** Per channel, in the order they were added (the first `channels`). */
    struct ms_qemu_channel_stats {
        uint32_t id;           /**< channel id of its init record */
        uint64_t bytes_read;   /**< its bytes consumed, init record included */
        uint64_t packets;      /**< packets, SYNC packets included */
        uint64_t normal_pages; /**< pages with data */
        uint64_t zero_pages;   /**< zero pages (QEMU 9.0+ sends them here) */
    } channel[MS_QEMU_MAX_CHANNELS];
} ms_qemu_import_stats;

/**
 * Creates an importer.
 * @param opts [borrow] options filled by ms_qemu_import_options_init(), or
 *        NULL for defaults. Strings are copied.
 * @return **new** importer, or NULL when memory ran out. Options this
 *         library cannot take (common.h, "Growing structs", which applies
 *         to the writer options they point to as well) give an importer in
 *         the failed state (common.h, "Handles"): ms_qemu_import_status()
 *         is MS_EINVAL and ms_qemu_import_errmsg() says why.
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
 *           the middle of an item or of the JSON trailer; a multifd channel
 *           ended before its SYNC packet; a mapped-ram page or bitmap lies
 *           past the end of the file;
 *         - MS_ECORRUPT: a malformed item: unknown section type, unknown RAM
 *           flags, a page outside its block, an unknown block name, a
 *           missing footer, bytes after the trailer, invalid JSON ...;
 *           a multifd channel that is not one (magic), has a duplicate id,
 *           a malformed packet, or is missing; a bad mapped-ram header;
 *         - MS_ECOMPRESS: a compressed or XBZRLE page that does not decode
 *           to exactly one page; a compressed multifd packet (zlib, zstd)
 *           whose data does not decode to exactly its normal pages;
 *         - MS_EFEATURE: a QEMU feature this importer does not read
 *           (postcopy, RDMA, multifd channels compressed with qpl, uadk or
 *           qatzip, multifd device
 *           state, mapped-ram without positional reads or with
 *           x-ignore-shared, no section footers, XBZRLE with
 *           no_page_cache);
 *         - MS_ELIMIT: a size beyond a limit of the options;
 *         - MS_EIO: @p in failed, or the page file could not be written;
 *         - MS_ESTATE: the importer already ran;
 *         - any status of the writer (MS_EINVAL for a block name the format
 *           cannot hold, MS_EIO when @p out failed, MS_ENOMEM ...).
 */
MS_API int ms_qemu_import_run(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                              void *out_ctx);

/** Same, reading @p in_fd and writing @p out_fd (retrying EINTR and short
 *  writes; neither descriptor is closed). When @p in_fd is a regular file
 *  and no positional reader was set, the main stream is read with pread(),
 *  so that a mapped-ram stream can be read. */
MS_API int ms_qemu_import_run_fd(ms_qemu_import *imp, int in_fd, int out_fd);

/**
 * Adds one multifd channel: the bytes QEMU sent over one extra connection of
 * a multifd migration, from its init record (magic 0x11223344) to its end.
 * Call once per channel before the run, in any order: each channel names
 * its id in its init record. All the migration's channels are needed. A
 * channel is read as the main stream reaches each sync point, never held
 * whole.
 * @param in   [borrow] read callback (ms_read_fn), valid until the run ends
 * @param name [borrow] what error messages call the channel (a file name),
 *             or NULL for "channel N" (N counting from 1 in the order
 *             added); copied
 * @return 0; MS_EINVAL (NULL @p in or @p imp); MS_ESTATE (the importer ran
 *         already); MS_ELIMIT (more than MS_QEMU_MAX_CHANNELS); MS_ENOMEM.
 */
MS_API int ms_qemu_import_add_channel(ms_qemu_import *imp, ms_read_fn in, void *in_ctx,
                                      const char *name);

/** Same, reading @p fd (not closed; EINTR retried). */
MS_API int ms_qemu_import_add_channel_fd(ms_qemu_import *imp, int fd, const char *name);

/** Positional read of the main stream (ms_pread_fn of reader.h). */
typedef ms_pread_fn ms_qemu_pread_fn;

/**
 * Reads the main stream through @p fn instead of a sequential callback:
 * needed for mapped-ram streams, whose pages and bitmaps lie at file offsets
 * the stream names (QEMU reads them with pread() too). Once set, the run
 * reads the main stream only through @p fn, and ms_qemu_import_run() may be
 * given a NULL read callback.
 * @return 0; MS_EINVAL (NULL @p fn or @p imp); MS_ESTATE (the importer ran
 *         already).
 */
MS_API int ms_qemu_import_set_pread(ms_qemu_import *imp, ms_qemu_pread_fn fn, void *ctx);

/** Counts of the last run (complete after success, partial after failure;
 *  when writing the output failed, they may count items read after the
 *  last one written, up to one PAGES record's worth). Valid until the
 *  importer is freed. */
MS_API const ms_qemu_import_stats *ms_qemu_import_get_stats(const ms_qemu_import *imp);

/** The sticky status: 0, or the failure that stopped the run. */
MS_API int ms_qemu_import_status(const ms_qemu_import *imp);

/** Message naming what failed and where, or "" if nothing failed. Valid
 *  until the importer is freed. */
MS_API const char *ms_qemu_import_errmsg(const ms_qemu_import *imp);

/** Byte offset in the QEMU stream of the item that failed (in the
 *  channel's own bytes when the message names a multifd channel). */
MS_API uint64_t ms_qemu_import_error_offset(const ms_qemu_import *imp);

/* ------------------------------------------------------------------------ */
/* Exporting back to QEMU                                                   */
/* ------------------------------------------------------------------------ */

/*
 * An exporter reads a libmigstream stream that came from QEMU (through an
 * importer) and writes it back as a QEMU migration stream, QEVM version 3,
 * that `qemu-system-* -incoming` loads (docs/QEMU.md section 7):
 *
 *     ms_qemu_export_options o;
 *     ms_qemu_export_options_init(&o);
 *     ms_qemu_export *exp = ms_qemu_export_new(&o);
 *     int rc = ms_qemu_export_run_fd(exp, stream_fd, qemu_fd);
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", ms_qemu_export_errmsg(exp));
 *     ms_qemu_export_free(exp);
 *
 * What is written:
 *   - the INFO machine becomes the CONFIGURATION section (QEMU's destination
 *     refuses any other machine type than its own), with the subsections of
 *     the DEVICE "configuration" when it comes before the first page;
 *   - the regions become the RAM block table of the "ram" section (START,
 *     version 4): block name = region name, used length = region size;
 *   - the pages follow in stream order in PART sections of "ram", a new PART
 *     at each ROUND, so that a later copy of a page replaces an earlier one
 *     on the destination as it does in the stream: ZERO as ZERO items, DATA
 *     and FILL as PAGE items; DISCARDED pages are not sent (what QEMU does
 *     for pages the guest hinted free); then an END section of "ram";
 *   - each device instance whose state has "parts" becomes START, PARTs and
 *     END sections cutting its "raw" bytes as the parts say, after the END
 *     of "ram"; every other one a FULL section with the "raw" bytes of its
 *     state, in the order of first appearance, the last record of an
 *     instance giving the bytes; then EOF and a JSON trailer.
 *
 * Refused: IN_PLACE pages (their contents are not in the stream), OVERLAY
 * records (QEMU rebuilds Hyper-V pages from the CPU state), device state
 * without "raw" (a stream not imported from QEMU), regions declared after
 * the first page, two regions with one name.
 *
 * The export is streaming: pages go out as their records arrive, so memory
 * does not grow with the guest. Device state is held until END (QEMU's
 * devices load after RAM: virtio checks its rings in guest memory), within
 * max_device_bytes. The input is read once through an ms_reader, which
 * checks every checksum; the QEMU stream's EOF is only written after the
 * input's END record was read and checked, so a failed export never ends in
 * a stream QEMU would load.
 */

typedef struct ms_qemu_export ms_qemu_export;

/** Exporter options and limits. Fill with ms_qemu_export_options_init()
 *  first; a limit of 0 means its default. */
typedef struct ms_qemu_export_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** [borrow] options of the reader of the input, or NULL for the
     *  defaults. Copied by ms_qemu_export_new(). */
    const ms_reader_options *reader;
    /** [borrow] machine type for the CONFIGURATION section, overriding the
     *  stream's INFO machine; copied by ms_qemu_export_new(). With neither,
     *  no CONFIGURATION section is written (as QEMU does for old machine
     *  types, whose send-configuration is off), which a destination of a
     *  newer machine type refuses. */
    const char *machine;
    /** QEMU's target page size, bytes: a power of two from 4096 to 65536;
     *  default 4096 (x86). A region page larger than this is sent as several
     *  QEMU pages; a smaller one is refused. */
    uint32_t page_size;
    /** Device state held until END (raw bytes, paths), bytes; default
     *  64 MiB. */
    uint64_t max_device_bytes;
    /** true: write no JSON trailer (VMDESCRIPTION). By default a trailer
     *  with no device description is written, since a destination whose
     *  machine does not set suppress-vmdesc expects one; the stream does not
     *  keep QEMU's own description. */
    bool no_vmdesc;
    ms_allocator allocator; /**< zeroed: malloc/realloc/free */
    /** Bytes the QEMU stream may take; default MS_MAX_OUTPUT_DEFAULT
     *  (1 TiB). QEMU's stream has an item per page: a ZERO or FILL extent
     *  of a few bytes can stand for terabytes of items. Checked before the
     *  items of each extent are written: past it the export fails with
     *  MS_ELIMIT, saying how much the stream would take. (migstream-export
     *  also holds it to the free space where it writes.) */
    uint64_t max_output;
} ms_qemu_export_options;

/** Fills @p opts with defaults. */
MS_API void ms_qemu_export_options_init(ms_qemu_export_options *opts);

/** What a run wrote; counts refer to QEMU's items. */
typedef struct ms_qemu_export_stats {
    uint64_t records;         /**< input records read, END included */
    uint64_t bytes_read;      /**< input bytes consumed */
    uint64_t bytes_written;   /**< QEMU stream bytes written */
    uint32_t ram_blocks;      /**< RAM blocks in the MEM_SIZE table */
    uint64_t ram_bytes;       /**< sum of their used lengths */
    uint64_t zero_pages;      /**< ZERO items */
    uint64_t normal_pages;    /**< PAGE items (DATA and FILL pages) */
    uint64_t fill_pages;      /**< of them, from FILL pages */
    uint64_t discarded_pages; /**< DISCARDED pages, not sent (QEMU pages) */
    uint64_t ram_parts;       /**< PART sections of "ram" */
    uint64_t devices;         /**< device instances: FULL sections, or START/PART/END for a
                                   state with "parts"; the record "configuration" goes
                                   into CONFIGURATION and is not counted */
    uint64_t device_records;  /**< DEVICE records read (a later one replaces) */
    char machine[256];        /**< CONFIGURATION machine type, or "" */
    /** The run failed (MS_ELIMIT) because the output would pass
     *  max_output: a failure of the output side, not of the input. */
    bool output_full;
    /** "libvirt/domain" records (schema "libvirt-domain") left out: the
     *  header of a libvirt save image read through ms_open() (libvirt.h),
     *  which QEMU's stream does not hold */
    uint64_t libvirt_records;
} ms_qemu_export_stats;

/**
 * Creates an exporter.
 * @param opts [borrow] options filled by ms_qemu_export_options_init(), or
 *        NULL for defaults. Strings are copied.
 * @return **new** exporter, or NULL when memory ran out. Options this
 *         library cannot take (a page_size out of range, an empty machine,
 *         a struct by common.h's "Growing structs", the reader options they
 *         point to included) give an exporter in the failed state (common.h,
 *         "Handles"): ms_qemu_export_status() is MS_EINVAL and
 *         ms_qemu_export_errmsg() says why.
 */
MS_API ms_qemu_export *ms_qemu_export_new(const ms_qemu_export_options *opts);

/** Frees the exporter (NULL is fine). */
MS_API void ms_qemu_export_free(ms_qemu_export *exp);

/**
 * Reads a whole libmigstream stream through @p in and writes a QEMU stream
 * through @p out. Runs once per exporter.
 *
 * When it fails, the output written so far ends before QEMU's EOF section:
 * QEMU refuses it, and a caller writing a file should discard it.
 *
 * @param in  [borrow] input callback (ms_read_fn)
 * @param out [borrow] output callback (ms_write_fn)
 * @return 0 when the stream was read to its END record and written whole;
 *         or, with ms_qemu_export_errmsg() naming the record (index and byte
 *         offset), region, page or device:
 *         - any status of the reader (MS_EMAGIC, MS_ECHECKSUM,
 *           MS_ETRUNCATED, MS_ECORRUPT, MS_ELIMIT ...), the input being
 *           malformed;
 *         - MS_ECORRUPT: bytes follow the END record;
 *         - MS_EFEATURE: something a QEMU stream cannot carry: IN_PLACE
 *           pages, OVERLAY records, a region declared after the first page,
 *           two regions with one name, a region page smaller than QEMU's, a
 *           device state without "raw", a device path longer than 255 bytes
 *           or named "ram";
 *         - MS_ELIMIT: device state beyond max_device_bytes; or the
 *           output would pass max_output (stats.output_full then set);
 *         - MS_EIO: @p in or @p out failed;
 *         - MS_ENOMEM; MS_ESTATE: the exporter already ran.
 */
MS_API int ms_qemu_export_run(ms_qemu_export *exp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                              void *out_ctx);

/** Same, reading @p in_fd and writing @p out_fd (retrying EINTR and short
 *  writes; neither descriptor is closed). */
MS_API int ms_qemu_export_run_fd(ms_qemu_export *exp, int in_fd, int out_fd);

/**
 * Same, reading the records of @p r: a reader of any format, from
 * ms_open() (open.h) for one, so that a stream of another VMM (a Xen
 * stream, a libvirt save image) is converted as it is read, with no
 * intermediate file. The exporter's reader options do not apply: @p r
 * reads with its own, which should leave on_problem unset (a damaged
 * stream is then refused at its first problem, as by ms_qemu_export_run()).
 * @param r [borrow] a reader that has read nothing yet; it stays the
 *        caller's (free it after the exporter is done with it), and after
 *        a failure of the input it holds the reader's own status
 * @return as ms_qemu_export_run(); MS_EINVAL for a NULL @p r.
 */
MS_API int ms_qemu_export_run_reader(ms_qemu_export *exp, ms_reader *r, ms_write_fn out,
                                     void *out_ctx);

/** Counts of the last run (complete after success, partial after failure).
 *  Valid until the exporter is freed. */
MS_API const ms_qemu_export_stats *ms_qemu_export_get_stats(const ms_qemu_export *exp);

/** The sticky status: 0, or the failure that stopped the run. */
MS_API int ms_qemu_export_status(const ms_qemu_export *exp);

/** Message naming what failed and where, or "" if nothing failed. Valid
 *  until the exporter is freed. */
MS_API const char *ms_qemu_export_errmsg(const ms_qemu_export *exp);

/** Byte offset in the input stream of the record that failed. */
MS_API uint64_t ms_qemu_export_error_offset(const ms_qemu_export *exp);

/** Index of the input record that failed, or -1 (the preamble, or no
 *  record). */
MS_API int64_t ms_qemu_export_error_record(const ms_qemu_export *exp);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_QEMU_H */
