/*
 * libmigstream: writing a stream.
 *
 * A VMM creates one ms_writer per outgoing migration, declares its memory
 * regions, hands in guest memory and device state, and finishes with END:
 *
 *     ms_writer_options o;
 *     ms_writer_options_init(&o);
 *     o.writer_name = "myvmm"; o.writer_version = "1.2";
 *     ms_writer *w = ms_writer_new_fd(&o, sock);
 *     ms_region ram = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0,
 *                      .size = ram_size, .page_size = 4096};
 *     ms_writer_add_region(w, &ram);
 *     ms_writer_pages(w, 0, 0, ram_size / 4096, guest_ram);
 *     ms_writer_device(w, "cpu/0", 0, "x86-cpu", 1, cbor, cbor_len);
 *     int rc = ms_writer_finish(w, NULL);
 *     ms_writer_free(w);
 *
 * Output is strictly sequential (no seeking), so pipes and sockets work. The
 * writer is deterministic: the same calls produce the same bytes, whether
 * the output blocks or not ("Non-blocking output" below).
 *
 * Errors are sticky: after a call fails, every later call returns the same
 * status, and ms_writer_errmsg() says what went wrong (MS_EAGAIN is not an
 * error and is never sticky).
 *
 * Threads: a writer is used by one thread at a time (a VMM may hand it
 * from its migration thread to its main loop, not share it); different
 * writers are independent (common.h, "Handles"). The output and progress
 * callbacks run on the thread that calls the writer. With
 * ms_writer_options.threads > 1 the writer has compression workers of its
 * own, which classify the pages of a large call ahead of the calling
 * thread, copy the pages of a batch out of the caller's memory (unless
 * the writer copied them already, as it does with MS_FEATURE_DUPLICATES)
 * and compress them: the caller's memory is read only during the call
 * that hands it in, which waits for the workers before returning.
 */
#ifndef MIGSTREAM_WRITER_H
#define MIGSTREAM_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_writer ms_writer;

/**
 * Output callback. Must consume every byte of the iovecs, in order, or fail.
 * @param ctx     [borrow] the pointer given to ms_writer_new
 * @param iov     [borrow] buffers valid only during the call
 * @return 0 on success; -EAGAIN or -EWOULDBLOCK when it took nothing
 *         because the output would block (the writer keeps the bytes and
 *         its call returns MS_EAGAIN: "Non-blocking output" below); another
 *         negative value on failure (reported as MS_EIO; -errno lets the
 *         message name the cause, and ms_writer_io_error() gives it back,
 *         common.h "Callbacks")
 */
typedef int (*ms_write_fn)(void *ctx, const struct iovec *iov, int iovcnt);

/**
 * Output callback that may take part of what it is given, as write(2) does
 * on a non-blocking socket (ms_writer_new_some()).
 * @param ctx     [borrow] the pointer given to ms_writer_new_some
 * @param iov     [borrow] buffers valid only during the call
 * @return the bytes it took from the start of the iovecs (the writer calls
 *         again with the rest as long as it takes some); 0, -EAGAIN or
 *         -EWOULDBLOCK when it can take nothing now (the writer keeps the
 *         rest, and its call returns MS_EAGAIN); another negative value on
 *         failure (MS_EIO, as for ms_write_fn). More bytes than it was
 *         given is a failure too.
 */
typedef ssize_t (*ms_write_some_fn)(void *ctx, const struct iovec *iov, int iovcnt);

/**
 * What a writer has done so far: handed to the progress callback
 * (ms_writer_options.progress) and returned by ms_writer_get_stats(). A
 * read-only view; later versions add members at its end.
 */
typedef struct ms_writer_stats {
    /** The stream so far, counted as END counts it: records, bytes (the
     *  byte END would start at if it came now), pages per state, devices,
     *  rounds, overlays. Pages still batching or with the compression
     *  workers are counted when their PAGES record is written. Once
     *  ms_writer_finish() has queued END: END's totals. */
    ms_totals totals;
    uint64_t bytes_written; /**< bytes the output has taken (ms_writer_bytes_written()) */
    /** Bytes of the stream the output has not taken yet: the record it
     *  would not take and the small records queued with it. */
    uint64_t bytes_held;
    uint64_t elapsed_ns; /**< since the writer was created (CLOCK_MONOTONIC) */
    /** Time the writer slept to keep to max_bandwidth (a blocking writer;
     *  a non-blocking one returns MS_EAGAIN instead, and the caller waits). */
    uint64_t throttled_ns;
    bool finished; /**< ms_writer_finish() has returned 0: the last call */
} ms_writer_stats;

/** Progress callback (ms_writer_options.progress). Called on the thread
 *  that calls the writer, from inside its calls: it may read @p stats (a
 *  view valid during the call) and call ms_writer_bytes_written(), but no
 *  other function of the writer. */
typedef void (*ms_progress_fn)(void *ctx, const ms_writer_stats *stats);

/** Writer options. Always fill with ms_writer_options_init() first. */
typedef struct ms_writer_options {
    size_t struct_size;         /**< set by init (common.h, "Growing structs") */
    const char *writer_name;    /**< VMM name, at most 32 bytes; default "" */
    const char *writer_version; /**< VMM version, at most 32 bytes; default "" */
    uint32_t page_size;         /**< base page size; default 4096 */
    const char *machine;        /**< INFO machine type, or NULL */
    const char *description;    /**< INFO description, or NULL */
    /** Upper bound of a PAGES record's page data, bytes; default 1 MiB.
     *  A record always holds at least one page. */
    uint32_t batch_bytes;
    /** zstd level for page data: 0 stores raw (default); 1..19 compress,
     *  and a batch that does not shrink is stored raw. */
    int compress_level;
    /** Deepest CBOR nesting accepted in device state; default
     *  MS_DEFAULT_CBOR_DEPTH, the reader's default, so that a default writer
     *  never writes what a default reader refuses; at most 256. */
    uint32_t max_cbor_depth;
    ms_allocator allocator;     /**< zeroed: malloc/realloc/free */
    /**
     * Required features the stream may use (MS_FEATURE_...), written in the
     * preamble before any page, so that a reader lacking one refuses the
     * stream up front. Default 0: a stream every format 1.x reader loads.
     * MS_FEATURE_FILL makes the writer detect pages of one repeated
     * non-zero word and send them as FILL, at no extra cost (the same pass
     * finds zero pages); MS_FEATURE_DISCARDED, MS_FEATURE_IN_PLACE and
     * MS_FEATURE_OVERLAYS enable the calls that write those.
     * MS_FEATURE_DUPLICATES (format 1.3) makes the writer send a DATA page
     * equal to one it sent earlier in the same region as a DUPLICATE
     * reference (dedup_pages below). MS_FEATURE_ZSTD_WINDOW (format 1.3),
     * with compress_level > 0, compresses each batch with the previous
     * batch's pages as the zstd window (encoding 2), which finds repeats
     * across records; the chain restarts at every round and every 64
     * records with data (docs/PERFORMANCE.md weighs what it costs). A
     * stream with either bit is stamped minor 3; without, minor 1.
     */
    uint64_t features;
    /**
     * Threads that compress page batches (with compress_level > 0): 0 or 1
     * compresses on the calling thread; N > 1 starts N workers, which
     * classify the pages of a call of 4 MiB or more (zero, fill, data; with
     * MS_FEATURE_DUPLICATES also their hashes) ahead of the calling thread,
     * copy each batch's pages out of the caller's memory and compress
     * batches in parallel, while the calling thread builds batches from the
     * classified pages and writes finished records in order, chaining their
     * checksums. The stream is byte for byte the one a single thread
     * writes. At most 64.
     */
    uint32_t threads;
    /**
     * false (default): the memory handed to ms_writer_pages(),
     * ms_writer_pagesv() and ms_writer_dirty() may change while the call
     * reads it, as a running guest's does during a pre-copy round. Each
     * DATA page is then copied once into the writer's buffer before it is
     * checksummed and sent, so the record is consistent whatever the guest
     * writes meanwhile (a page torn by such a write is a page the dirty log
     * marks again, and a later round sends it anew).
     * true: the caller guarantees the memory holds still until the call
     * returns (a paused guest, a snapshot, a file): uncompressed DATA pages
     * go to the output without being copied (zero-copy). With true and
     * memory that does change, a record's checksum may not match its
     * bytes, and readers refuse the stream.
     */
    bool stable_memory;
    /**
     * Bytes per second the writer hands to its output, at most: a token
     * bucket over the stream's bytes, whose bursts are at most 10 ms of the
     * rate (and at least 64 KiB). 0 (the default): no limit. A blocking
     * writer sleeps to keep to it. A writer whose output can say it would
     * block (made by ms_writer_new_some(), or by ms_writer_new_fd() on an
     * O_NONBLOCK descriptor) returns MS_EAGAIN instead, and
     * ms_writer_poll_timeout() says how long to wait before repeating the
     * call. The check costs a clock read per write to the output, none per
     * page.
     */
    uint64_t max_bandwidth;
    /**
     * Called with the writer's statistics as the stream grows: after a
     * record is added to it, once at least progress_records records and at
     * least progress_ms milliseconds have passed since the last call (0:
     * no minimum; both 0: after every record); and once more, with
     * finished set and END's totals, when ms_writer_finish() returns 0.
     * NULL (default): never. See ms_progress_fn for what it may do.
     */
    ms_progress_fn progress;
    void *progress_ctx;
    uint32_t progress_records;
    uint32_t progress_ms;
    /**
     * [borrow] Makes the stream one part of a migration in parts
     * (FORMAT.md section 2.1), or NULL (the default): a migration sent
     * over part->count connections at once, one writer per connection,
     * each with the same migration id and its own index. Copied. The
     * writer sets required feature MS_FEATURE_PARTS, stamps format 1.2 and
     * writes the PART record first (INFO after it). The caller keeps the
     * parts consistent, as section 2.1 requires: every part declares the
     * regions it sends pages of, identically; every part starts the same
     * rounds (number, tracker, granularity, dirty count and final flag
     * equal; a part with nothing to send in a round still starts it), and
     * pages go only inside rounds (data calls before the first
     * ms_writer_round() fail); a page goes to at most one part in a round;
     * a device instance to at most one part in a round; an overlay to one
     * part.
     *
     *     uint8_t id[MS_MIGRATION_ID_SIZE];
     *     ms_migration_id_new(id);                      // once per migration
     *     for (uint32_t k = 0; k < n; k++) {           // one writer per connection
     *         ms_part part = {.index = k, .count = n};
     *         memcpy(part.migration_id, id, sizeof id);
     *         o.part = &part;
     *         w[k] = ms_writer_new_fd(&o, sock[k]);   // each used by its own thread
     *     }
     */
    const ms_part *part;
    /**
     * With MS_FEATURE_DUPLICATES in features: how many pages the writer
     * remembers to find duplicates among (FORMAT.md section 6.2, page state
     * DUPLICATE). Each costs a copy of the page plus 48 bytes, so the
     * default, MS_WRITER_DEFAULT_DEDUP_PAGES (16384), holds 64 MiB of
     * 4 KiB pages (allocated 2 MiB larger, to align the copies for
     * transparent huge pages); rounded up to a power of two, at most
     * 2^22. A page
     * whose contents equal a remembered page's (its XXH3 hash matches, then
     * its bytes are compared) goes out as a DUPLICATE reference to it;
     * every other DATA page is remembered, in place of an older one with
     * the same hash slot. Only regions whose page size is the stream's base
     * page size take part. Without the feature: ignored.
     */
    uint32_t dedup_pages;
} ms_writer_options;

/** Default of ms_writer_options.dedup_pages. */
#define MS_WRITER_DEFAULT_DEDUP_PAGES 16384u

/** Fills @p opts with defaults. */
MS_API void ms_writer_options_init(ms_writer_options *opts);

/**
 * Fills @p id with 16 random bytes (getrandom(2)): a migration id for the
 * parts of one migration (ms_writer_options.part).
 * @return 0, MS_EINVAL (@p id NULL), MS_EIO (no random bytes to be had).
 */
MS_API int ms_migration_id_new(uint8_t id[MS_MIGRATION_ID_SIZE]);

/**
 * Creates a writer that emits through @p fn. The preamble (and INFO, when
 * set) is queued at once and written with the first flush.
 * @param opts [borrow] options filled by ms_writer_options_init(), or NULL
 *        for defaults. Strings are copied.
 * @return **new** writer, or NULL when memory ran out. An invalid option or
 *         a NULL @p fn gives a writer in the failed state (common.h,
 *         "Handles"): ms_writer_status() is MS_EINVAL, ms_writer_errmsg()
 *         names the option, and every call fails. Check ms_writer_status()
 *         after creating one (it is MS_ENOMEM for NULL).
 */
MS_API ms_writer *ms_writer_new(const ms_writer_options *opts, ms_write_fn fn, void *ctx);

/** Same, with an output that may take part of what it is given and say
 *  when it would block (ms_write_some_fn): for an event loop that writes
 *  to its own connection ("Non-blocking output" below). */
MS_API ms_writer *ms_writer_new_some(const ms_writer_options *opts, ms_write_some_fn fn,
                                     void *ctx);

/** Same, writing to a file descriptor with writev(), retrying short writes
 *  and EINTR. The descriptor stays the caller's and is not closed; a
 *  negative one gives a writer in the failed state. A socket is written
 *  with send() and MSG_NOSIGNAL: a peer that closed the connection makes
 *  the writer fail with MS_EIO (EPIPE), never raises SIGPIPE. A pipe whose
 *  reader has gone does raise SIGPIPE, which ends the process unless the
 *  caller blocks or ignores it (common.h, "Callbacks"). On a descriptor
 *  with O_NONBLOCK set (when the writer is created) the writer writes what
 *  the descriptor takes and returns MS_EAGAIN when it would block
 *  ("Non-blocking output" below); on a blocking one it behaves as a writer
 *  of ms_writer_new(). */
MS_API ms_writer *ms_writer_new_fd(const ms_writer_options *opts, int fd);

/*
 * Non-blocking output. A writer whose output would block (an O_NONBLOCK
 * descriptor, a ms_write_some_fn that takes part or nothing, a ms_write_fn
 * that returns -EAGAIN) returns MS_EAGAIN (common.h, "Non-blocking I/O"):
 * wait until the output can take more (poll() for POLLOUT) and repeat the
 * same call with the same arguments. MS_EAGAIN is never sticky. What the
 * writer has taken it keeps and sends first, so nothing is sent twice, and
 * the stream is byte for byte the one a blocking output would get for the
 * same calls, each repeated until it returned something else. The writer
 * holds at most one record the output did not take, plus the small records
 * queued with it (about 256 KiB).
 *
 *  - Data calls (ms_writer_pages(), _pagesv(), _dirty(), _zero_pages(),
 *    _fill_pages(), _discard(), _in_place()) may take some pages and
 *    return MS_EAGAIN: the repeated call, with the same arguments, goes on
 *    from the first page not taken. Until it has returned something else,
 *    any other call on the writer (a data call with other arguments
 *    included) fails with MS_EINVAL and a message naming the unfinished
 *    call; ms_writer_free() and the query functions are fine. Pages of the
 *    call are read again when it is repeated: for a running guest that is
 *    what the dirty log expects anyway. With stable_memory, the writer
 *    copies what it took before it returns MS_EAGAIN: the memory need not
 *    hold still between the calls.
 *  - The calls that write one record (ms_writer_round(), _device(),
 *    _overlay(), _record()) either take it or return MS_EAGAIN having
 *    taken nothing: the caller repeats the call, or makes another.
 *    ms_writer_add_region() writes nothing yet and never returns
 *    MS_EAGAIN.
 *  - ms_writer_flush() and ms_writer_finish() return MS_EAGAIN until the
 *    output has taken everything, then 0. Once ms_writer_finish() has
 *    returned MS_EAGAIN, END is queued: repeat ms_writer_finish() (other
 *    calls that add records are MS_ESTATE).
 *
 * An event loop that writes a migration over a non-blocking socket:
 *
 *     ms_writer *w = ms_writer_new_fd(&o, sock);        // O_NONBLOCK
 *     ...
 *     while ((rc = ms_writer_dirty(w, 0, bitmap, 4096, ram)) == MS_EAGAIN)
 *         poll(&(struct pollfd){.fd = sock, .events = POLLOUT}, 1, -1);
 *
 * (a VMM returns to its loop instead of calling poll() itself, and repeats
 * the call when the socket is writable).
 */

/** Frees the writer (NULL is fine) without writing END. Use
 *  ms_writer_finish() first for a complete stream. */
MS_API void ms_writer_free(ms_writer *w);

/**
 * Declares a region. Regions are written in a REGIONS record before the next
 * PAGES record; ids must be unique in the stream.
 * @return 0, MS_EINVAL (bad size, page size, name, gpa range or duplicate
 *         id, with a message), MS_ENOMEM, or a sticky earlier error.
 */
MS_API int ms_writer_add_region(ms_writer *w, const ms_region *region);

/**
 * Writes @p count pages of region @p region_id starting at page @p first,
 * read from @p mem (count * page_size bytes). Zero pages are detected and
 * sent as ZERO runs, pages of one repeated 8-byte word as FILL runs (with
 * MS_FEATURE_FILL); the rest as DATA. Pages may be written in any order and
 * more than once: a later copy of a page supersedes an earlier one.
 *
 * @p mem is only read during the call: when the call returns, the bytes are
 * either written out or copied, and the caller may change its memory.
 * @return 0, MS_EINVAL (unknown region, pages outside it), MS_EIO, MS_ENOMEM,
 *         MS_EAGAIN (the output would block: repeat the call; see
 *         "Non-blocking output").
 */
MS_API int ms_writer_pages(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count,
                           const void *mem);

/**
 * Same as ms_writer_pages(), with the pages' bytes gathered from @p iov in
 * order. Every iov_len must be a multiple of the region's page size; the
 * total gives the page count. A repeat after MS_EAGAIN passes iovecs with
 * the same bases and lengths (the array itself may be another).
 */
MS_API int ms_writer_pagesv(ms_writer *w, uint32_t region_id, uint64_t first,
                            const struct iovec *iov, int iovcnt);

/** Marks @p count pages as zero without reading any memory (for a VMM that
 *  knows, e.g. pages never touched). @return as ms_writer_pages(). */
MS_API int ms_writer_zero_pages(ms_writer *w, uint32_t region_id, uint64_t first,
                                uint64_t count);

/**
 * Starts a pre-copy round (FORMAT.md section 6.4). Pages written after it
 * belong to it, until the next round or the end. In a stream with rounds
 * every page belongs to one, so start round 0 before the first pages.
 *
 *     ms_writer_round(w, &(ms_round){.number = 0});          // full pass
 *     ms_writer_pages(w, 0, 0, npages, ram);
 *     for (n = 1; dirty pages remain; n++) {
 *         ioctl(vm, KVM_GET_DIRTY_LOG, &log);                // log.dirty_bitmap = bm
 *         ms_writer_round(w, &(ms_round){.number = n, .tracker = MS_TRACKER_BITMAP,
 *                                        .granularity = 4096});
 *         ms_writer_dirty(w, 0, bm, 4096, ram);
 *     }
 *
 * @return 0, MS_EINVAL (number not above the previous round's, pages sent
 *         before the first round, tracker granularity out of range), MS_EIO,
 *         MS_ENOMEM, MS_EAGAIN (nothing taken: repeat the call).
 */
MS_API int ms_writer_round(ms_writer *w, const ms_round *round);

/**
 * Writes the pages of region @p region_id that @p bitmap marks dirty, read
 * from @p mem, the whole region's memory (region size bytes). The bitmap is
 * KVM's layout: bit i of word i / 64 (least significant bit first) covers
 * bytes [i * granularity, (i + 1) * granularity) of the region; words cover
 * the region rounded up to 64 units. A region page partly covered by a
 * dirty unit is sent whole. Each dirty page is classified like
 * ms_writer_pages() does (ZERO, FILL or DATA).
 * @param granularity bytes per bit: a power of two from 4096 to 2^30
 * @return 0, MS_EINVAL (NULL pointers, bad granularity, bits set past the
 *         region's end), MS_EIO, MS_ENOMEM, MS_EAGAIN (repeat the call with
 *         the same bitmap: it goes on after the pages taken).
 */
MS_API int ms_writer_dirty(ms_writer *w, uint32_t region_id, const uint64_t *bitmap,
                           uint32_t granularity, const void *mem);

/**
 * Marks @p count pages as DISCARDED: the guest hinted them free (virtio-
 * balloon free page hints, free page reporting), so their contents do not
 * matter and are not sent. A later copy of a page (the guest reused it)
 * replaces this. Needs MS_FEATURE_DISCARDED.
 * @return 0, MS_EINVAL (feature not requested, pages outside the region),
 *         MS_EIO, MS_EAGAIN (repeat the call).
 */
MS_API int ms_writer_discard(ms_writer *w, uint32_t region_id, uint64_t first,
                             uint64_t count);

/**
 * Marks @p count pages as filled with the 8-byte @p word, repeated (stored
 * little-endian: a byte pattern 0xcc is 0xcccccccccccccccc). Word 0 writes
 * ZERO pages. Needs MS_FEATURE_FILL for a non-zero word. @return as
 * ms_writer_discard().
 */
MS_API int ms_writer_fill_pages(ms_writer *w, uint32_t region_id, uint64_t first,
                                uint64_t count, uint64_t word);

/**
 * Marks @p count pages as IN_PLACE: their contents are not sent because the
 * destination finds them where they are (a live update that keeps guest
 * memory). Page first + i is at byte address @p ref + i * page_size of the
 * in-place space both sides share (host physical memory, or the offset in a
 * memory file handed over). Needs MS_FEATURE_IN_PLACE.
 * @return 0, MS_EINVAL (feature not requested, @p ref not aligned to the
 *         region's page size, the referenced range wraps 2^64), MS_EIO,
 *         MS_EAGAIN (repeat the call).
 */
MS_API int ms_writer_in_place(ms_writer *w, uint32_t region_id, uint64_t first,
                              uint64_t count, uint64_t ref);

/**
 * Writes one hypervisor overlay (FORMAT.md section 7.2) as an OVERLAY
 * record. The guest page underneath travels as ordinary RAM. Needs
 * MS_FEATURE_OVERLAYS.
 * @param o [borrow] checked with ms_overlay_check(); its frame must lie in a
 *        declared region with a guest-physical address, and no earlier
 *        overlay may have the same frame and kind
 * @return 0, MS_EINVAL (with a message naming the problem), MS_EIO,
 *         MS_ENOMEM, MS_EAGAIN (nothing taken).
 */
MS_API int ms_writer_overlay(ms_writer *w, const ms_overlay *o);

/**
 * Writes one device's state.
 * @param path, schema [borrow] UTF-8 strings (see ms_device for limits)
 * @param state [borrow] exactly one encoded CBOR data item in the profile of
 *        FORMAT.md section 10 (it is checked, then embedded as is)
 * @return 0, MS_EINVAL (bad strings), MS_ECBOR (state not one valid item),
 *         MS_ELIMIT (record would exceed the spec's size), MS_EIO, MS_ENOMEM,
 *         MS_EAGAIN (nothing taken).
 */
MS_API int ms_writer_device(ms_writer *w, const char *path, uint32_t instance,
                            const char *schema, uint32_t version, const void *state,
                            size_t state_size);

/**
 * Writes a record of a type this library does not define: a private-use type
 * (0x8000..0xFFFF, FORMAT.md section 11.3) or a type of a later format
 * version. Readers that do not know @p type skip it, unless @p flags has
 * MS_RECORD_MUST_UNDERSTAND, in which case they refuse the stream.
 * @param payload [borrow] @p size bytes, copied
 * @return 0, MS_EINVAL (type 0, a type defined by this library, or reserved
 *         flag bits), MS_ELIMIT (payload beyond 64 MiB), MS_EIO, MS_ENOMEM,
 *         MS_EAGAIN (nothing taken).
 */
MS_API int ms_writer_record(ms_writer *w, uint16_t type, uint16_t flags, const void *payload,
                            size_t size);

/** Writes any queued pages and pushes buffered bytes to the output.
 *  @return 0 once the output has taken everything, MS_EAGAIN before
 *          (repeat), or a sticky error. */
MS_API int ms_writer_flush(ms_writer *w);

/**
 * Writes the END record and flushes. After it, only ms_writer_free() and
 * the query functions are valid.
 * @param totals [out, optional] the totals written in END
 * @return 0 once the output has taken the whole stream, MS_EAGAIN before
 *         (repeat the call), or the first error that occurred.
 */
MS_API int ms_writer_finish(ms_writer *w, ms_totals *totals);

/** Bytes the output has taken so far. */
MS_API uint64_t ms_writer_bytes_written(const ms_writer *w);

/** The writer's statistics now (ms_writer_stats), or NULL for an invalid
 *  handle. A view valid until the next call on the writer. */
MS_API const ms_writer_stats *ms_writer_get_stats(ms_writer *w);

/**
 * After MS_EAGAIN, how long to wait before repeating the call, in the
 * units of poll()'s timeout: -1 when the output would block (wait until it
 * is writable: poll() for POLLOUT, with no timeout of the writer's); the
 * milliseconds max_bandwidth asks for when it held the bytes back (the
 * output itself may be writable: wait that long, without POLLOUT, then
 * repeat). Meaningful only right after MS_EAGAIN.
 *
 *     int t = ms_writer_poll_timeout(w);
 *     poll(&(struct pollfd){.fd = sock, .events = t < 0 ? POLLOUT : 0}, 1, t);
 */
MS_API int ms_writer_poll_timeout(const ms_writer *w);

/** The sticky status (0 if none). */
MS_API int ms_writer_status(const ms_writer *w);

/** Message describing the last failure, or "" if none. Valid until the next
 *  call on the writer. */
MS_API const char *ms_writer_errmsg(const ms_writer *w);

/**
 * The cause of an MS_EIO failure (common.h, "Callbacks").
 * @param err [out, optional] the errno seen right after the output callback
 *        returned
 * @return the value the output callback returned (for the descriptor
 *         writer, -errno: -EPIPE when the peer closed a socket), or 0 when
 *         the writer has not failed on its output.
 */
MS_API int ms_writer_io_error(const ms_writer *w, int *err);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_WRITER_H */
