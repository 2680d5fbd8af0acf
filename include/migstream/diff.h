/*
 * libmigstream: comparing two streams by the guest state they leave behind.
 *
 * Two streams of one guest differ in their bytes whenever they were batched,
 * ordered, compressed or retried differently; ms_diff compares what they
 * describe instead: the final state of FORMAT.md section 2, that is the
 * state of every page after its last copy, the last state of every device,
 * the overlays and the stream metadata. migstream-diff prints what it
 * reports; a VMM's test or a CI job can run it without the tool:
 *
 *     ms_diff *d = ms_diff_new(NULL);
 *     ms_reader *a = ms_reader_new_fd(NULL, fd_a), *b = ms_reader_new_fd(NULL, fd_b);
 *     if (ms_diff_load(d, MS_DIFF_A, a, "before.mig") < 0 ||
 *         ms_diff_load(d, MS_DIFF_B, b, "after.mig") < 0)
 *         die(ms_diff_errmsg(d));       // "stream B (after.mig): record 7 ..."
 *     int n = ms_diff_compare(d, on_difference, ctx);
 *     if (n < 0)
 *         die(ms_diff_errmsg(d));
 *     // n == 0: the same guest; else n differences were reported
 *     ms_diff_free(d); ms_reader_free(a); ms_reader_free(b);
 *
 * Each side is read to its end when it is loaded, through a reader the
 * caller made: the caller chooses its limits (ms_reader_options) and its
 * input. Neither guest is held in memory: while a side is read, each region
 * keeps a page-state map (pagemap.h: memory that follows what was sent,
 * within max_map_memory; a run of FILL pages is one entry with its word),
 * the contents of DATA pages go to an unlinked sparse temporary file per
 * side (at most the DATA pages the stream carries, within max_output and
 * the free space), and the last state of each device is kept in memory
 * (within max_device_memory). Time: in proportion to the streams' bytes
 * and the number of runs of page states, times a logarithm; a FILL run is
 * compared with another by its word, with DATA page by page. The
 * temporary files disappear with the process however it ends.
 *
 * Streams are untrusted input: a side that cannot be read to its END record
 * (bad preamble, corrupt or truncated record, unknown must-understand
 * record, bytes after END) fails to load, with a message that names the
 * side, the input and the reader's account of what failed and where (byte
 * offset, record index). With ms_diff_options.keep_damaged, such a side
 * is kept instead as far as it was read (the state its records before the
 * damage leave), and ms_diff_get_damage() says where its damage starts: a
 * good stream can then be compared with its truncated or corrupted copy.
 * Such a side's INFO (machine, description), when the damage comes before
 * its place (FORMAT.md section 4.3), is unknown and not compared.
 * A side whose preamble cannot be read still fails: it holds nothing.
 *
 * The comparison, in brief (docs/man/migstream-diff.1 explains each rule):
 *   - pages: a DATA page whose bytes are all zero counts as ZERO (writers
 *     differ in whether they detect such pages); a FILL page counts as the
 *     DATA it stands for; DISCARDED ("don't care") and IN_PLACE (compared
 *     by the address it is kept at) keep their own states; a page never
 *     sent is MISSING, which differs from ZERO (a page never sent may mean
 *     a lost record);
 *   - regions are paired by id and name, then name, then id; pairs with
 *     different page sizes are compared in units of the smaller one;
 *   - devices are paired by path and instance, then compared by schema,
 *     version and state (ms_cbor_diff(), field by field);
 *   - overlays are paired by frame and kind, and compared by the 4 KiB
 *     they build;
 *   - metadata: the header's format version, page size, feature bits,
 *     writer name and version, and INFO's machine and description; but
 *     when the two sides are of different formats (ms_reader_format():
 *     a QEMU stream read through ms_open() against its libmigstream
 *     import), only what describes the guest, the page size and the
 *     machine, since the rest describes each container. A migration in
 *     parts (open.h) compares as the same migration in one stream: its
 *     PARTS feature bit, and the format minor version that bit alone
 *     calls for, are not compared (a difference elsewhere in the version
 *     or the required features is reported with the headers' values);
 *   - not compared: END totals and the digest, record order and offsets,
 *     rounds, region ids once paired by name, records of unknown types.
 *
 * The library allocates with malloc here (as ms_cbor_diff() does).
 *
 * Threads: an ms_diff, and the readers given to it while it loads them,
 * are used by one thread at a time; different ones are independent
 * (common.h, "Handles"). The difference callback runs on the calling
 * thread.
 */
#ifndef MIGSTREAM_DIFF_H
#define MIGSTREAM_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "pagemap.h"
#include "reader.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_diff ms_diff;

/** Options. Fill with ms_diff_options_init() first; 0 or NULL means the
 *  default. */
typedef struct ms_diff_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** Bytes the page-state maps of each side may use (pagemap.h); default
     *  MS_PAGEMAP_DEFAULT_MEMORY. A side whose maps would exceed it fails
     *  to load with MS_ELIMIT. */
    size_t max_map_memory;
    /** Directory of the temporary files; NULL: $TMPDIR, else /tmp. The
     *  string is copied by ms_diff_new(). */
    const char *tmpdir;
    /** Bytes the temporary files of both sides may take; default
     *  MS_MAX_OUTPUT_DEFAULT (1 TiB), UINT64_MAX for no limit but the free
     *  space. Nor may they take more than the free space of the file
     *  system of tmpdir when the first is made. Each DATA page stored
     *  counts (again when it comes back as DATA after another state: its
     *  bytes may take a new place); FILL pages are kept in the page-state
     *  maps with their word and take no room there. Past it the side fails
     *  to load with MS_ELIMIT and a message saying how much they would
     *  take. */
    uint64_t max_output;
    /** Bytes the device states kept may take, both sides together (each
     *  state, its path and schema, and 64 bytes more); default
     *  MS_DIFF_DEFAULT_DEVICE_MEMORY. A later record of an instance
     *  replaces the earlier in the count too. Past it the side fails to
     *  load with MS_ELIMIT. */
    size_t max_device_memory;
    /** Keep a side that cannot be read to its end (a checksum mismatch,
     *  truncation, a corrupt or refused record, bytes after END) as far as
     *  it was read: ms_diff_load() returns MS_DIFF_DAMAGED, and
     *  ms_diff_get_damage() says where the damage starts. false: such a
     *  side fails to load. */
    bool keep_damaged;
} ms_diff_options;

/** Default of ms_diff_options.max_device_memory: 256 MiB. */
#define MS_DIFF_DEFAULT_DEVICE_MEMORY ((size_t)256 << 20)

/** Fills @p opts with the defaults. */
MS_API void ms_diff_options_init(ms_diff_options *opts);

/** ms_diff_load()'s result for a side kept up to its damage
 *  (ms_diff_options.keep_damaged). */
#define MS_DIFF_DAMAGED 1

/** The two sides. */
typedef enum ms_diff_side {
    MS_DIFF_A = 0,
    MS_DIFF_B = 1,
} ms_diff_side;

/**
 * Kinds of difference, reported in this order: META; for each region of A
 * in stream order, its REGION fields and PAGES ranges and its PAGES_TOTAL
 * (or REGION_ONLY for a region only A has); REGION_ONLY for the regions
 * only B has, in stream order; overlays of A in stream order (OVERLAY or
 * OVERLAY_ONLY), then OVERLAY_ONLY for those only B has; devices sorted by
 * path (byte-wise) then instance, each with DEVICE_ONLY, or its DEVICE
 * fields then its DEVICE_STATE fields. Values are stable.
 */
typedef enum ms_diff_kind {
    /** A metadata field: field is "format", "page_size",
     *  "required_features", "optional_features", "writer_name",
     *  "writer_version", "machine" or "description", in that order; only
     *  "page_size" and "machine" when the sides are of different formats
     *  (ms_reader_format()). */
    MS_DIFF_META = 1,
    /** A field of a pair of regions: "name", "size", "page_size" or
     *  "gpa" (an address, or none), in that order. */
    MS_DIFF_REGION = 2,
    /** A region only @p side has; states holds its final page counts. */
    MS_DIFF_REGION_ONLY = 3,
    /** A range of pages of a pair of regions that differ in the same way:
     *  state_a and state_b (both DATA: the bytes differ; both IN_PLACE: the
     *  addresses differ). */
    MS_DIFF_PAGES = 4,
    /** After the PAGES ranges of a pair of regions that has any: their
     *  number (ranges) and pages (pages). A total, not a difference: it is
     *  not counted in ms_diff_compare()'s result. */
    MS_DIFF_PAGES_TOTAL = 5,
    /** An overlay at the same frame and of the same kind on both sides
     *  builds other contents. */
    MS_DIFF_OVERLAY = 6,
    /** An overlay (frame and kind) only @p side has. */
    MS_DIFF_OVERLAY_ONLY = 7,
    /** A device instance (path and instance) only @p side has. */
    MS_DIFF_DEVICE_ONLY = 8,
    /** A field of a pair of devices: "schema" (text) or "version". */
    MS_DIFF_DEVICE = 9,
    /** A field of the states of a pair of devices: field is its path as
     *  ms_cbor_diff() gives it ("" for the whole state, /"rip", /regs/3);
     *  a and b are the CBOR items, MS_DIFF_NONE where the field is
     *  absent. */
    MS_DIFF_DEVICE_STATE = 10,
} ms_diff_kind;

/** Types of a value on one side of a difference. */
typedef enum ms_diff_value_type {
    MS_DIFF_NONE = 0,    /**< absent (no INFO machine, no gpa, no field) */
    MS_DIFF_TEXT = 1,    /**< text: a string the stream carries */
    MS_DIFF_UINT = 2,    /**< num */
    MS_DIFF_ADDRESS = 3, /**< num: a guest-physical address */
    MS_DIFF_VERSION = 4, /**< text "MAJOR.MINOR"; num: MAJOR << 16 | MINOR */
    MS_DIFF_CBOR = 5,    /**< cbor: one encoded CBOR item */
} ms_diff_value_type;

/** A value on one side of a difference. Pointers are valid during the
 *  callback only. */
typedef struct ms_diff_value {
    ms_diff_value_type type;
    const char *text;    /**< TEXT, VERSION */
    uint64_t num;        /**< UINT, ADDRESS, VERSION */
    const uint8_t *cbor; /**< CBOR */
    size_t cbor_size;
} ms_diff_value;

/**
 * One difference, as ms_diff_compare() hands it to its callback. A
 * read-only view: pointers are valid during the callback only, and members
 * that do not apply to the kind are 0 or NULL.
 */
typedef struct ms_diff_item {
    ms_diff_kind kind;
    /** The side that has it: the *_ONLY kinds. */
    ms_diff_side side;
    /** META, REGION, DEVICE: the field's name; DEVICE_STATE: the path in
     *  the state. */
    const char *field;
    ms_diff_value a, b; /**< META, REGION, DEVICE, DEVICE_STATE */
    /** REGION, PAGES, PAGES_TOTAL: the pair's region in A (its name names
     *  the pair); REGION_ONLY: the region. */
    const ms_region *region;
    const ms_region *region_b; /**< REGION, PAGES, PAGES_TOTAL: in B */
    /** PAGES: the range first .. first + count - 1, in units of @p unit
     *  bytes from the region's start: the smaller of the pair's page
     *  sizes. */
    uint64_t first, count;
    uint32_t unit;
    /** PAGES: the final state on each side: MS_PAGEMAP_MISSING,
     *  MS_PAGE_DATA, MS_PAGE_ZERO, MS_PAGE_DISCARDED or MS_PAGE_IN_PLACE
     *  (FILL pages count as DATA). */
    unsigned state_a, state_b;
    /** PAGES_TOTAL: pages and ranges of the pair that differ. */
    uint64_t pages, ranges;
    /** REGION_ONLY: MS_PAGEMAP_STATES counts of the region's pages by
     *  final state, as in state_a. */
    const uint64_t *states;
    /** OVERLAY: the overlay in A (synic slot pointers NULL); OVERLAY_ONLY:
     *  the overlay. */
    const ms_overlay *overlay;
    const ms_overlay *overlay_b; /**< OVERLAY: in B */
    /** DEVICE, DEVICE_STATE: the device in A; DEVICE_ONLY: the device. The
     *  state is its last one. */
    const ms_device *device;
    const ms_device *device_b; /**< DEVICE, DEVICE_STATE: in B */
} ms_diff_item;

/** Called for each difference; return 0 to go on, negative to stop
 *  (ms_diff_compare() then returns that value). */
typedef int (*ms_diff_fn)(void *ctx, const ms_diff_item *item);

/** What ms_diff_compare() found, counted as migstream-diff's summary line
 *  counts it. A read-only view. */
typedef struct ms_diff_totals {
    uint64_t metadata; /**< META items */
    uint64_t regions;  /**< REGION and REGION_ONLY items */
    uint64_t pages;    /**< pages in PAGES items */
    uint64_t ranges;   /**< PAGES items */
    uint64_t devices;  /**< DEVICE_ONLY, DEVICE and DEVICE_STATE items */
    uint64_t overlays; /**< OVERLAY and OVERLAY_ONLY items */
} ms_diff_totals;

/** Creates a comparison. @p opts may be NULL (defaults).
 *  @return **new** handle, or NULL when memory ran out. Bad options give a
 *          handle in the failed state (common.h, "Handles"):
 *          ms_diff_status() is MS_EINVAL, ms_diff_errmsg() names the option,
 *          and every call returns MS_EINVAL. */
MS_API ms_diff *ms_diff_new(const ms_diff_options *opts);

/** Frees the handle (NULL is fine) and closes its temporary files. */
MS_API void ms_diff_free(ms_diff *d);

/**
 * Loads side @p side: reads @p r to its END record with ms_replay(), and
 * checks that nothing follows it (ms_reader_expect_eof()). @p r may read
 * any format (a reader from ms_open(), open.h); its format decides what
 * metadata is compared (ms_diff_kind, MS_DIFF_META).
 * @param r    [borrow] a reader that has read nothing yet; it stays the
 *             caller's (free it after), and after a failure it holds the
 *             reader's own status, offset and record index
 * @param name [borrow] the input in messages ("after.mig", "standard
 *             input"), or NULL
 * @return 0; MS_DIFF_DAMAGED (only with ms_diff_options.keep_damaged) when
 *         the reader failed on the stream's contents after the preamble:
 *         the side holds what its records before the damage left, and
 *         ms_diff_get_damage() says where and why reading stopped; on
 *         failure the handle keeps the status and every later call
 *         returns it, and ms_diff_errmsg() gives "stream A (NAME): " and
 *         what failed: a reader status (see ms_reader_next(); MS_ECORRUPT
 *         also for bytes after END), MS_ELIMIT (page-state maps past
 *         max_map_memory, more IN_PLACE extents than 4096, temporary
 *         files past max_output or the free space, device states past
 *         max_device_memory), MS_EIO (a
 *         temporary file cannot be made or written), MS_ENOMEM; MS_ESTATE
 *         when the side is loaded already; MS_EINVAL.
 */
MS_API int ms_diff_load(ms_diff *d, ms_diff_side side, ms_reader *r, const char *name);

/**
 * Compares the two loaded sides and calls @p fn for each difference, in
 * the order of ms_diff_kind. Call once.
 * @param fn NULL: only count
 * @return the number of differences (0: the streams describe the same
 *         state; PAGES_TOTAL items are not counted; at most INT32_MAX);
 *         negative: the value @p fn returned, or MS_ESTATE (a side not
 *         loaded, or compared already), MS_EIO (a temporary file cannot be
 *         read), MS_ENOMEM, MS_ECBOR (device states that cannot be
 *         compared), with a message. Items reported before a failure stay
 *         reported, and ms_diff_get_totals() counts them.
 */
MS_API int ms_diff_compare(ms_diff *d, ms_diff_fn fn, void *ctx);

/** The counts of the last ms_diff_compare() (zero before it), valid for
 *  the handle's lifetime. */
MS_API const ms_diff_totals *ms_diff_get_totals(const ms_diff *d);

/** Where a side kept by ms_diff_options.keep_damaged stops: the reader's
 *  account of its damage. A read-only view. */
typedef struct ms_diff_damage {
    int status;      /**< the reader's status: MS_ECHECKSUM, MS_ETRUNCATED, ... */
    uint64_t offset; /**< ms_reader_error_offset(): the byte where it was found */
    int64_t record;  /**< ms_reader_error_record(): the record it is in */
    /** ms_reader_error_part(): the part of a migration in parts that holds
     *  the damage (offset and record count in it), or -1 */
    int64_t part;
    /** "stream B (NAME): " and the reader's message, as ms_diff_errmsg()
     *  would give it */
    const char *message;
} ms_diff_damage;

/** Where side @p side stops short of its end, valid for the handle's
 *  lifetime; NULL when the side was read to its end, is not loaded, or
 *  @p d or @p side is invalid. */
MS_API const ms_diff_damage *ms_diff_get_damage(const ms_diff *d, ms_diff_side side);

/** The sticky status: 0, or the failure that stopped the handle; MS_ENOMEM
 *  for NULL. */
MS_API int ms_diff_status(const ms_diff *d);

/** Whether the handle failed (MS_ELIMIT) because its temporary files
 *  would pass max_output or the free space where they are made: a failure
 *  of the comparison's own storage, not of a stream. false otherwise and
 *  for NULL. */
MS_API bool ms_diff_output_full(const ms_diff *d);

/** Message naming what failed and where, or "". */
MS_API const char *ms_diff_errmsg(const ms_diff *d);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_DIFF_H */
