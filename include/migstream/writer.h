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
 * writer is deterministic: the same calls produce the same bytes.
 *
 * Errors are sticky: after a call fails, every later call returns the same
 * status, and ms_writer_errmsg() says what went wrong. A writer is not
 * thread-safe; use one per thread.
 */
#ifndef MIGSTREAM_WRITER_H
#define MIGSTREAM_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
 * @return 0 on success, a negative value on failure (reported as MS_EIO;
 *         -errno lets the message name the cause, common.h "Callbacks")
 */
typedef int (*ms_write_fn)(void *ctx, const struct iovec *iov, int iovcnt);

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
     */
    uint64_t features;
    /**
     * Threads that compress page batches (with compress_level > 0): 0 or 1
     * compresses on the calling thread; N > 1 starts N workers, which
     * compress batches in parallel while the calling thread goes on, at
     * the cost of one copy of each batch. The stream is byte for byte the
     * one a single thread writes. At most 64.
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
} ms_writer_options;

/** Fills @p opts with defaults. */
MS_API void ms_writer_options_init(ms_writer_options *opts);

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

/** Same, writing to a file descriptor with writev(), retrying short writes
 *  and EINTR. The descriptor stays the caller's and is not closed; a
 *  negative one gives a writer in the failed state. A socket is written
 *  with send() and MSG_NOSIGNAL: a peer that closed the connection makes
 *  the writer fail with MS_EIO (EPIPE), never raises SIGPIPE. A pipe whose
 *  reader has gone does raise SIGPIPE, which ends the process unless the
 *  caller blocks or ignores it (common.h, "Callbacks"). */
MS_API ms_writer *ms_writer_new_fd(const ms_writer_options *opts, int fd);

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
 * @return 0, MS_EINVAL (unknown region, pages outside it), MS_EIO, MS_ENOMEM.
 */
MS_API int ms_writer_pages(ms_writer *w, uint32_t region_id, uint64_t first, uint64_t count,
                           const void *mem);

/**
 * Same as ms_writer_pages(), with the pages' bytes gathered from @p iov in
 * order. Every iov_len must be a multiple of the region's page size; the
 * total gives the page count.
 */
MS_API int ms_writer_pagesv(ms_writer *w, uint32_t region_id, uint64_t first,
                            const struct iovec *iov, int iovcnt);

/** Marks @p count pages as zero without reading any memory (for a VMM that
 *  knows, e.g. pages never touched). */
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
 *         MS_ENOMEM.
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
 *         region's end), MS_EIO, MS_ENOMEM.
 */
MS_API int ms_writer_dirty(ms_writer *w, uint32_t region_id, const uint64_t *bitmap,
                           uint32_t granularity, const void *mem);

/**
 * Marks @p count pages as DISCARDED: the guest hinted them free (virtio-
 * balloon free page hints, free page reporting), so their contents do not
 * matter and are not sent. A later copy of a page (the guest reused it)
 * replaces this. Needs MS_FEATURE_DISCARDED.
 * @return 0, MS_EINVAL (feature not requested, pages outside the region).
 */
MS_API int ms_writer_discard(ms_writer *w, uint32_t region_id, uint64_t first,
                             uint64_t count);

/**
 * Marks @p count pages as filled with the 8-byte @p word, repeated (stored
 * little-endian: a byte pattern 0xcc is 0xcccccccccccccccc). Word 0 writes
 * ZERO pages. Needs MS_FEATURE_FILL for a non-zero word.
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
 *         region's page size, the referenced range wraps 2^64).
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
 *         MS_ENOMEM.
 */
MS_API int ms_writer_overlay(ms_writer *w, const ms_overlay *o);

/**
 * Writes one device's state.
 * @param path, schema [borrow] UTF-8 strings (see ms_device for limits)
 * @param state [borrow] exactly one encoded CBOR data item in the profile of
 *        FORMAT.md section 10 (it is checked, then embedded as is)
 * @return 0, MS_EINVAL (bad strings), MS_ECBOR (state not one valid item),
 *         MS_ELIMIT (record would exceed the spec's size), MS_EIO, MS_ENOMEM.
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
 *         flag bits), MS_ELIMIT (payload beyond 64 MiB), MS_EIO, MS_ENOMEM.
 */
MS_API int ms_writer_record(ms_writer *w, uint16_t type, uint16_t flags, const void *payload,
                            size_t size);

/** Writes any queued pages and pushes buffered bytes to the output. */
MS_API int ms_writer_flush(ms_writer *w);

/**
 * Writes the END record and flushes. After it, only ms_writer_free() and
 * the query functions are valid.
 * @param totals [out, optional] the totals written in END
 * @return 0 or the first error that occurred.
 */
MS_API int ms_writer_finish(ms_writer *w, ms_totals *totals);

/** Bytes handed to the output so far. */
MS_API uint64_t ms_writer_bytes_written(const ms_writer *w);

/** The sticky status (0 if none). */
MS_API int ms_writer_status(const ms_writer *w);

/** Message describing the last failure, or "" if none. Valid until the next
 *  call on the writer. */
MS_API const char *ms_writer_errmsg(const ms_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_WRITER_H */
