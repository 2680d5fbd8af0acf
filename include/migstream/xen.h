/*
 * libmigstream: Xen's migration stream v2.
 *
 * Xen's toolstack saves and migrates a guest as a libxc stream (Xen's
 * docs/specs/libxc-migration-stream.pandoc, revision 3: an image header
 * "XENF", a domain header, then records: PAGE_DATA, vCPU contexts,
 * HVM_CONTEXT, ...), which `xl` and libxl wrap in a libxl stream
 * ("LibxlFmt", libxl-migration-stream.pandoc, revision 2) that adds the
 * device model's state. docs/XEN.md says what is read and how it maps.
 *
 * An importer reads such a stream, wrapped or bare, and writes the same
 * guest state as a libmigstream stream:
 *
 *     ms_xen_import *imp = ms_xen_import_new(NULL);
 *     int rc = ms_xen_import_run_fd(imp, xen_fd, out_fd);
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", ms_xen_import_errmsg(imp));
 *     ms_xen_import_free(imp);
 *
 * What becomes what:
 *   - the guest's frames (pfns) become one region, "pfn", at guest-physical
 *     address 0 with 4096-byte pages: page i is pfn i. An HVM guest's
 *     region spans max_guest_bytes (Xen's stream does not say how large
 *     the guest is); a PV guest's ends at the last pfn of its
 *     X86_PV_P2M_FRAMES, and a later X86_PV_P2M_FRAMES that grows the p2m
 *     adds a region for the new frames;
 *   - PAGE_DATA pages with data (normal pages, page tables) become DATA
 *     pages (ZERO when all zero), XALLOC pages ZERO pages, XTAB and BROKEN
 *     pages DISCARDED pages; the types that this does not say (page
 *     tables, pinned or not, XALLOC, BROKEN) are kept per block of 4096
 *     pfns in DEVICE records "xen/page_types" (instance: the block), one
 *     before the pages that change its types;
 *   - every other record becomes a DEVICE record in stream order, its path
 *     naming the record ("xen/hvm_context", "xen/vcpu/0/basic",
 *     "xen/emulator/qemu-upstream/context" ...), its state a CBOR map
 *     {"raw": the record's body, "fields": what Xen's spec defines in it};
 *     the image and domain headers become "xen/header", the libxl header
 *     "xen/libxl/header"; an unknown optional record (type bit 31)
 *     "xen/optional/0xTYPE";
 *   - each pass over memory (Xen's saver sends every iteration in
 *     ascending pfn order), each CHECKPOINT and the VERIFY pass start a
 *     round.
 *
 * An exporter writes such a libmigstream stream back as a Xen stream,
 * libxl-wrapped or bare, with every record in the order it came:
 *
 *     ms_xen_export *exp = ms_xen_export_new(NULL);
 *     int rc = ms_xen_export_run_fd(exp, stream_fd, xen_fd);
 *
 * Both run in one pass over their input, which is untrusted: every length
 * is checked against a limit before anything is allocated for it, memory
 * stays within the limits of the options, and a failure names the record
 * (its Xen type name, index and byte offset) and what was wrong.
 */
#ifndef MIGSTREAM_XEN_H
#define MIGSTREAM_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reader.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Xen's domain types (the domain header's type). */
#define MS_XEN_DOMAIN_PV 1u  /**< x86 PV */
#define MS_XEN_DOMAIN_HVM 2u /**< x86 HVM */

/** Page types of a PAGE_DATA pfn entry: XEN_DOMCTL_PFINFO_* (bits 60-63),
 *  the index of the page counts in the stats below. Pinned page tables are
 *  the page-table type + 8 (9 to 12); 5 to 8 are reserved. */
#define MS_XEN_PAGE_TYPES 16u
#define MS_XEN_PAGE_NOTAB 0x0u  /**< a normal page */
#define MS_XEN_PAGE_L1TAB 0x1u  /**< L1 to L4 page-table pages: 0x1 to 0x4 */
#define MS_XEN_PAGE_BROKEN 0xdu /**< a broken page: no data */
#define MS_XEN_PAGE_XALLOC 0xeu /**< allocate only: no data */
#define MS_XEN_PAGE_XTAB 0xfu   /**< an invalid page: no data */

/* ------------------------------------------------------------------------ */
/* Importing                                                                */
/* ------------------------------------------------------------------------ */

typedef struct ms_xen_import ms_xen_import;

/** Importer options and limits. Fill with ms_xen_import_options_init()
 *  first; a limit of 0 means its default. */
typedef struct ms_xen_import_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /**
     * [borrow] options of the writer that produces the output, or NULL for
     * the defaults. The struct is copied by ms_xen_import_new(); the strings
     * it points to must stay valid until the run ends. Where it names no
     * writer or machine, "xen", the Xen version of the domain header and
     * the domain type ("x86 HVM") are used. The feature DISCARDED is always
     * added (XTAB and BROKEN pages need it).
     */
    const ms_writer_options *writer;
    /** Size of an HVM guest's region, and the bound of every pfn: bytes, a
     *  multiple of 4096; default 1 TiB, at most 2^64 - 4096. */
    uint64_t max_guest_bytes;
    /** Largest record other than PAGE_DATA, bytes (its body is held
     *  whole); default 16 MiB, at most 24 MiB. */
    uint32_t max_record_size;
    /** Most pfn entries in one PAGE_DATA record; default 65536 (Xen's
     *  saver sends 1024). */
    uint32_t max_batch_pfns;
    ms_allocator allocator; /**< zeroed: malloc/realloc/free */
} ms_xen_import_options;

/** Fills @p opts with defaults. */
MS_API void ms_xen_import_options_init(ms_xen_import_options *opts);

/** What a run read; counts refer to Xen's records, not to records written. */
typedef struct ms_xen_import_stats {
    uint64_t bytes_read;  /**< input bytes consumed */
    bool libxl;           /**< the stream had the libxl wrapper */
    uint32_t version;     /**< libxc image version: 2 or 3 (0: not read) */
    uint32_t domain_type; /**< MS_XEN_DOMAIN_PV or _HVM (0: not read) */
    uint32_t xen_major;   /**< Xen version of the domain header */
    uint32_t xen_minor;
    uint64_t records;                  /**< records read, libxc and libxl, ENDs included */
    uint64_t page_data;                /**< PAGE_DATA records */
    uint64_t pages[MS_XEN_PAGE_TYPES]; /**< pfn entries by page type */
    uint64_t rounds;                   /**< rounds written */
    uint64_t checkpoints;              /**< CHECKPOINT records */
    uint64_t devices;                  /**< DEVICE records written */
    uint64_t optional;                 /**< unknown optional records kept */
} ms_xen_import_stats;

/**
 * Creates an importer.
 * @param opts [borrow] options filled by ms_xen_import_options_init(), or
 *        NULL for defaults.
 * @return **new** importer, or NULL when memory ran out. Options this
 *         library cannot take (a limit out of range, a struct by common.h's
 *         "Growing structs", the writer options they point to included)
 *         give an importer in the failed state (common.h, "Handles").
 */
MS_API ms_xen_import *ms_xen_import_new(const ms_xen_import_options *opts);

/** Frees the importer (NULL is fine). */
MS_API void ms_xen_import_free(ms_xen_import *imp);

/**
 * Reads a whole Xen stream through @p in and writes a complete libmigstream
 * stream (END included) through @p out. Runs once per importer. When it
 * fails, the output has no END record: a caller writing a file should
 * discard it.
 * @return 0 when the stream was read to its END and the output finished;
 *         or, with ms_xen_import_errmsg() naming the record and offset:
 *         - MS_EMAGIC: neither a libxl nor a libxc stream (an `xl save`
 *           file, with xl's own header, is named as such);
 *         - MS_EVERSION: a libxl version other than 2, a libxc version
 *           other than 2 or 3;
 *         - MS_ETRUNCATED: the input ended before the END record;
 *         - MS_ECORRUPT: a malformed header or record (a length its type
 *           does not allow, a reserved page type, a pfn outside the guest,
 *           records out of the order Xen's spec requires ...), bytes after
 *           END;
 *         - MS_EUNKNOWN: a mandatory record type this importer does not
 *           know (bit 31 clear);
 *         - MS_EFEATURE: a big-endian stream, pages other than 4096 bytes,
 *           a domain type other than x86 PV and HVM;
 *         - MS_ELIMIT: a record or a pfn beyond a limit of the options;
 *         - MS_EIO: @p in failed; MS_ESTATE: the importer already ran;
 *         - any status of the writer (MS_EIO when @p out failed ...).
 */
MS_API int ms_xen_import_run(ms_xen_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                             void *out_ctx);

/** Same, reading @p in_fd and writing @p out_fd (retrying EINTR and short
 *  writes; neither descriptor is closed). */
MS_API int ms_xen_import_run_fd(ms_xen_import *imp, int in_fd, int out_fd);

/** Counts of the last run (partial after a failure). Valid until the
 *  importer is freed. */
MS_API const ms_xen_import_stats *ms_xen_import_get_stats(const ms_xen_import *imp);

/** The sticky status: 0, or the failure that stopped the run. */
MS_API int ms_xen_import_status(const ms_xen_import *imp);

/** Message naming what failed and where, or "" if nothing failed. Valid
 *  until the importer is freed. */
MS_API const char *ms_xen_import_errmsg(const ms_xen_import *imp);

/** Byte offset in the Xen stream of the record that failed. */
MS_API uint64_t ms_xen_import_error_offset(const ms_xen_import *imp);

/* ------------------------------------------------------------------------ */
/* Exporting                                                                */
/* ------------------------------------------------------------------------ */

typedef struct ms_xen_export ms_xen_export;

/** What the export writes. */
typedef enum ms_xen_format {
    /** As the stream came from the importer: libxl-wrapped when it holds
     *  "xen/libxl/header", bare when its first Xen record is "xen/header";
     *  libxl-wrapped for a stream with neither. */
    MS_XEN_FORMAT_AUTO = 0,
    MS_XEN_FORMAT_LIBXL = 1, /**< a libxl stream (what `xl migrate` sends) */
    MS_XEN_FORMAT_LIBXC = 2, /**< a bare libxc stream */
} ms_xen_format;

/** Exporter options. Fill with ms_xen_export_options_init() first. */
typedef struct ms_xen_export_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** [borrow] options of the reader of the input, or NULL for the
     *  defaults. Copied by ms_xen_export_new(). */
    const ms_reader_options *reader;
    uint32_t format; /**< an ms_xen_format; default MS_XEN_FORMAT_AUTO */
    /** The domain type written when the stream has no "xen/header":
     *  MS_XEN_DOMAIN_HVM (the default) or MS_XEN_DOMAIN_PV. */
    uint32_t domain_type;
    /** Most pfn entries per PAGE_DATA record: 1 to 65536; default 1024,
     *  as Xen's saver. Pages are held until their record is full. */
    uint32_t batch_pfns;
    /**
     * true: leave out the records that Xen 4.17's verify-stream-v2 refuses
     * although the spec defines or allows them: unknown optional records
     * (it knows no type beyond its own), TOOLSTACK and
     * CHECKPOINT_DIRTY_PFN_LIST (stats.dropped counts them). false (the
     * default): every record goes back out. (Debian's verify-stream-v2, run
     * by Python 3, also refuses every EMULATOR_XENSTORE_DATA that holds
     * data: a bug of the checker's, not of the stream, which this option
     * leaves alone; docs/XEN.md section 6.3.)
     */
    bool verifiable;
    ms_allocator allocator; /**< zeroed: malloc/realloc/free */
    /** Bytes the Xen stream may take; default MS_MAX_OUTPUT_DEFAULT
     *  (1 TiB). PAGE_DATA has an entry (and, but for DISCARDED pages, 4 KiB)
     *  per page: a ZERO or FILL extent of a few bytes can stand for
     *  terabytes. Checked before the pages of each extent are written:
     *  past it the export fails with MS_ELIMIT, saying how much. */
    uint64_t max_output;
} ms_xen_export_options;

/** Fills @p opts with defaults. */
MS_API void ms_xen_export_options_init(ms_xen_export_options *opts);

/** What a run wrote. */
typedef struct ms_xen_export_stats {
    uint64_t records;                  /**< input records read, END included */
    uint64_t bytes_read;               /**< input bytes consumed */
    uint64_t bytes_written;            /**< Xen stream bytes written */
    bool libxl;                        /**< written with the libxl wrapper */
    uint32_t domain_type;              /**< the domain header's type */
    uint64_t xen_records;              /**< records written, libxc and libxl, ENDs included */
    uint64_t page_data;                /**< PAGE_DATA records written */
    uint64_t pages[MS_XEN_PAGE_TYPES]; /**< pfn entries by page type */
    uint64_t dropped;                  /**< records left out (verifiable) */
    /** The run failed (MS_ELIMIT) because the output would pass
     *  max_output: a failure of the output side, not of the input. */
    bool output_full;
} ms_xen_export_stats;

/**
 * Creates an exporter.
 * @param opts [borrow] options filled by ms_xen_export_options_init(), or
 *        NULL for defaults.
 * @return **new** exporter, or NULL when memory ran out; bad options give an
 *         exporter in the failed state (common.h, "Handles").
 */
MS_API ms_xen_export *ms_xen_export_new(const ms_xen_export_options *opts);

/** Frees the exporter (NULL is fine). */
MS_API void ms_xen_export_free(ms_xen_export *exp);

/**
 * Reads a whole libmigstream stream through @p in and writes a Xen stream
 * through @p out. Runs once per exporter. The Xen stream's END is only
 * written after the input's END was read and checked; a failed export
 * ends without it and should be discarded.
 *
 * Regions must have a guest-physical address (page i of a region at gpa G
 * is pfn (G + i * page_size) / 4096); DATA, ZERO and FILL pages become
 * pages with data (ZERO ones as 4096 zero bytes: Xen's stream has no zero
 * pages), DISCARDED pages XTAB entries, each with the type the last
 * "xen/page_types" of its block gives it; DEVICE records with the paths
 * the importer writes become their Xen records, in stream order.
 *
 * @return 0, or with ms_xen_export_errmsg() naming the input record (index,
 *         byte offset):
 *         - any status of the reader, the input being malformed;
 *         - MS_ECORRUPT: bytes follow the END record;
 *         - MS_EFEATURE: what a Xen stream cannot carry: IN_PLACE pages,
 *           OVERLAY records, a region without a guest-physical address or
 *           beyond pfn 2^52, a device that is not a Xen record, a Xen
 *           record whose raw bytes break Xen's spec or come where the spec
 *           does not allow them, libxl records in a bare libxc stream;
 *         - MS_ELIMIT: the output would pass max_output
 *           (stats.output_full then set);
 *         - MS_EIO: @p in or @p out failed; MS_ENOMEM; MS_ESTATE: the
 *           exporter already ran.
 */
MS_API int ms_xen_export_run(ms_xen_export *exp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                             void *out_ctx);

/** Same, reading @p in_fd and writing @p out_fd (neither is closed). */
MS_API int ms_xen_export_run_fd(ms_xen_export *exp, int in_fd, int out_fd);

/**
 * Same, reading the records of @p r: a reader of any format, from
 * ms_open() (open.h) for one, so that a stream of another VMM (a QEMU
 * stream, a libvirt save image) is converted as it is read, with no
 * intermediate file. The exporter's reader options do not apply: @p r
 * reads with its own, which should leave on_problem unset (a damaged
 * stream is then refused at its first problem, as by ms_xen_export_run()).
 * @param r [borrow] a reader that has read nothing yet; it stays the
 *        caller's (free it after the exporter is done with it)
 * @return as ms_xen_export_run(); MS_EINVAL for a NULL @p r.
 */
MS_API int ms_xen_export_run_reader(ms_xen_export *exp, ms_reader *r, ms_write_fn out,
                                    void *out_ctx);

/** Counts of the last run. Valid until the exporter is freed. */
MS_API const ms_xen_export_stats *ms_xen_export_get_stats(const ms_xen_export *exp);

/** The sticky status: 0, or the failure that stopped the run. */
MS_API int ms_xen_export_status(const ms_xen_export *exp);

/** Message naming what failed and where, or "" if nothing failed. */
MS_API const char *ms_xen_export_errmsg(const ms_xen_export *exp);

/** Byte offset in the input stream of the record that failed. */
MS_API uint64_t ms_xen_export_error_offset(const ms_xen_export *exp);

/** Index of the input record that failed, or -1. */
MS_API int64_t ms_xen_export_error_record(const ms_xen_export *exp);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_XEN_H */
