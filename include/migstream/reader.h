/*
 * libmigstream: reading a stream.
 *
 * A pull API: each ms_reader_next() reads one record, checks its framing,
 * checksum and contents, and hands out a view of it:
 *
 *     ms_reader *r = ms_reader_new_fd(NULL, fd);
 *     const ms_record *rec;
 *     int rc;
 *     while ((rc = ms_reader_next(r, &rec)) > 0) {
 *         if (rec->type == MS_REC_PAGES) use(&rec->pages);
 *     }
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", ms_reader_errmsg(r));
 *     ms_reader_free(r);
 *
 * Memory use is bounded by the largest record (and the reader's limits), not
 * by the stream: a reader never allocates because a length field says so
 * before the bytes have arrived. The input is read sequentially; the reader
 * never reads past the END record.
 *
 * Streams are untrusted input. Every failure leaves the reader in a failed
 * state in which every later call returns the same status, with a message
 * that names what was wrong, the byte offset and the record index.
 *
 * Threads: a reader, and the views it hands out, are used by one thread at
 * a time; different readers are independent (common.h, "Handles"). The
 * read and problem callbacks run on the thread that calls the reader.
 */
#ifndef MIGSTREAM_READER_H
#define MIGSTREAM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_reader ms_reader;

/**
 * Input callback: read up to @p len bytes into @p buf.
 * @return bytes read (1..len), 0 at end of input, -EAGAIN or -EWOULDBLOCK
 *         when nothing can be read now (the reader's call returns
 *         MS_EAGAIN; see "Non-blocking input" below), another negative
 *         value on failure (MS_EIO; -errno lets the message name the cause,
 *         and ms_reader_io_error() gives it back).
 */
typedef ssize_t (*ms_read_fn)(void *ctx, void *buf, size_t len);

/**
 * Positional input callback, for inputs that are read at offsets the
 * stream names (QEMU's mapped-ram files): up to @p len bytes at byte
 * @p offset into @p buf.
 * @return bytes read (1..len), 0 at or past the end of input, negative on
 *         failure.
 */
typedef ssize_t (*ms_pread_fn)(void *ctx, void *buf, size_t len, uint64_t offset);

/**
 * Problem callback, for tools that report every problem in a damaged stream
 * rather than stop at the first (see ms_reader_options.on_problem).
 * @param status  the MS_E... code the problem would have stopped the reader
 *                with; or, for a stream of another format (open.h), the
 *                status of a structural problem that its format module
 *                found and stepped over (QEMU's device sections against its
 *                JSON trailer: docs/QEMU.md section 3.5), 0 when that
 *                format's own loader would not fail on it (a warning)
 * @param offset  byte offset of the problem
 * @param record  record index, or -1 for the preamble
 * @param message the same text ms_reader_errmsg() would give, valid during
 *                the call
 */
typedef void (*ms_problem_fn)(void *ctx, int status, uint64_t offset, int64_t record,
                              const char *message);

/** Reader options and limits. Fill with ms_reader_options_init() first. A
 *  limit of 0 means "the default"; no limit can exceed the spec's. */
typedef struct ms_reader_options {
    size_t struct_size;        /**< set by init (common.h, "Growing structs") */
    uint32_t max_record_size;  /**< payload bytes; default and max 64 MiB */
    uint32_t max_regions;      /**< regions per stream; default 4096 */
    uint32_t max_cbor_depth;   /**< CBOR nesting in device state; default 64 */
    ms_allocator allocator;    /**< zeroed: malloc/realloc/free */
    /**
     * NULL (the default): the first problem stops the reader. Set: problems
     * the reader can step over are reported here and reading goes on: a
     * checksum mismatch (the chain resumes from the stored checksum), a
     * record whose contents break the format (handed out with
     * ms_record.status set and its decoded members unset), an unknown
     * must-understand record, END totals that disagree; for a stream of
     * another format, the structural checks its module makes (status 0 for
     * warnings). Problems that leave no way forward (a bad preamble, a
     * length beyond the limit, truncation, I/O errors, no memory) still stop
     * the reader.
     */
    ms_problem_fn on_problem;
    void *problem_ctx;
    uint32_t max_overlays;     /**< overlays per stream; default 1024, at most 4096 */
    /**
     * The required features (MS_FEATURE_...) the caller handles. A stream
     * whose preamble requires any other bit, a bit of a later library
     * version included, is refused there, before any record is read: the
     * reader fails with MS_EFEATURE and a message naming the feature ("...
     * requires feature IN_PLACE (bit 2), which accept_features leaves out").
     * A receiver that applies pages itself sets exactly the bits it handles
     * (README.md's receive_vm()). Default UINT64_MAX: every feature this
     * library implements. Not a limit: 0 means what it says, streams that
     * need no feature at all (DATA and ZERO pages, devices).
     */
    uint64_t accept_features;
    /**
     * zstd data sections a stream may decode, in all: at most
     * MS_DECODE_ALLOWANCE (1 GiB) plus this many times the stream's bytes
     * read so far; default MS_DEFAULT_DECODE_RATIO (1024), UINT32_MAX
     * nearly no limit. A frame of a few KiB can decode to 64 MiB, and
     * decoding is the reader's work: without a bound, a 1 MB stream cost
     * seconds of it (FORMAT.md section 9 lists this limit). Past it the
     * reader fails with MS_ELIMIT, naming the record and the totals.
     */
    uint32_t max_decode_ratio;
} ms_reader_options;

/** What every stream may decode from zstd whatever its size
 *  (ms_reader_options.max_decode_ratio): 1 GiB. */
#define MS_DECODE_ALLOWANCE (UINT64_C(1) << 30)
/** Default of ms_reader_options.max_decode_ratio. */
#define MS_DEFAULT_DECODE_RATIO 1024u

/** Fills @p opts with defaults. */
MS_API void ms_reader_options_init(ms_reader_options *opts);

/** Unknown map keys a record lists at most (ms_record.unknown_keys). */
#define MS_MAX_LISTED_KEYS 64u

/** A record as ms_reader_next() hands it out. Views stay valid until the
 *  next call on the reader. */
typedef struct ms_record {
    uint16_t type;       /**< ms_record_type, or a type this reader lacks */
    uint16_t flags;
    uint32_t length;     /**< payload bytes on the wire */
    uint64_t offset;     /**< byte offset of the record header */
    uint64_t index;      /**< record index, 0 = first after the preamble */
    uint64_t checksum;   /**< the record's chained XXH3-64 */
    bool known;          /**< false: a record type this reader does not know */
    /** 0, or (only with ms_reader_options.on_problem) the status of a
     *  problem found in this record; its decoded members are then unset
     *  unless only the checksum failed. */
    int status;
    const uint8_t *payload; /**< raw payload bytes as on the wire */

    /* Decoded contents; which member is set depends on @p type. */
    ms_info info;               /**< MS_REC_INFO */
    const ms_region *regions;   /**< MS_REC_REGIONS: the regions it declares */
    size_t region_count;
    ms_pages pages;             /**< MS_REC_PAGES */
    ms_device device;           /**< MS_REC_DEVICE */
    ms_totals totals;           /**< MS_REC_END */
    ms_round round;             /**< MS_REC_ROUND */
    const ms_overlay *overlays; /**< MS_REC_OVERLAY: the overlays it adds */
    size_t overlay_count;

    /**
     * Map keys of the payload that this reader does not know: keys a later
     * minor version added (FORMAT.md section 11.2), which the reader skips
     * and lists here so that tools can report them. Each is a payload path:
     * "/9" is key 9 of the record's map, "/1/7" key 7 of the map at index
     * 1 of the record's array (REGIONS, OVERLAY); in payload order. At most
     * MS_MAX_LISTED_KEYS are listed; unknown_key_count counts them all.
     * NULL and 0 when there are none, and for a record with a status.
     */
    const char *const *unknown_keys;
    size_t unknown_key_count;

    /**
     * The part of a migration in parts (FORMAT.md section 2.1) the record
     * belongs to: for MS_REC_PART, what the record declares; for every
     * record after it, the same part, so that offset and index name a
     * place in that part's stream (part->index). NULL in a stream that is
     * not a part, and for the END record of a whole migration that a
     * merging reader (open.h) hands out. A view, like the rest.
     */
    const ms_part *part;
} ms_record;

/** Creates a reader pulling bytes through @p fn.
 *  @return **new** reader, or NULL when memory ran out. Invalid options or
 *          a NULL @p fn give a reader in the failed state (common.h,
 *          "Handles"): ms_reader_status() is MS_EINVAL and every call
 *          returns it, ms_reader_errmsg() names the argument. */
MS_API ms_reader *ms_reader_new(const ms_reader_options *opts, ms_read_fn fn, void *ctx);

/** Same, reading a file descriptor (retries EINTR; never closes it). A
 *  negative descriptor gives a reader in the failed state. An O_NONBLOCK
 *  descriptor is read without blocking: calls return MS_EAGAIN when no
 *  byte is there ("Non-blocking input" below). */
MS_API ms_reader *ms_reader_new_fd(const ms_reader_options *opts, int fd);

/** Same, reading a buffer in memory. @p buf [borrow] must outlive the
 *  reader; NULL with a non-zero @p size gives a reader in the failed
 *  state. */
MS_API ms_reader *ms_reader_new_memory(const ms_reader_options *opts, const void *buf,
                                       size_t size);

/** Frees the reader (NULL is fine). */
MS_API void ms_reader_free(ms_reader *r);

/*
 * Non-blocking input. When the read callback says it would block (an
 * O_NONBLOCK descriptor with nothing to read), ms_reader_header(),
 * ms_reader_next() and ms_reader_expect_eof() return MS_EAGAIN (common.h,
 * "Non-blocking I/O"): wait until the input is readable (poll() for
 * POLLIN) and repeat the call. The bytes that came are kept, whether they
 * are part of the preamble, of a record header or of a payload, and the
 * repeated call goes on from there. MS_EAGAIN is not sticky; like any
 * call, the one that returns it ends the views handed out before it.
 * Memory stays bounded as in blocking use: a payload buffer grows only as
 * its bytes arrive. A loop over a non-blocking descriptor:
 *
 *     while ((rc = ms_reader_next(r, &rec)) != 0) {
 *         if (rc == MS_EAGAIN) {
 *             poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, -1);
 *             continue;
 *         }
 *         if (rc < 0)
 *             break;                 // ms_reader_errmsg(r) says why
 *         apply(rec);
 *     }
 *
 * ms_replay() passes MS_EAGAIN through but cannot resume (a second call
 * would report the header again): an event loop drives ms_reader_next()
 * itself. A reader of another VMM's format (open.h) does not resume
 * either: its input should block.
 */

/**
 * Reads and checks the preamble if not done yet.
 * @param out [out] view of the header, valid for the reader's lifetime
 * @return 0, MS_EMAGIC, MS_EVERSION, MS_EFEATURE (a required feature this
 *         library does not know, or one ms_reader_options.accept_features
 *         leaves out), MS_ECHECKSUM, MS_ETRUNCATED, MS_ECORRUPT, MS_EIO,
 *         MS_EAGAIN (the input would block: repeat the call).
 */
MS_API int ms_reader_header(ms_reader *r, const ms_header **out);

/**
 * Reads the next record.
 * @param out [out] the record, valid until the next call on the reader
 * @return 1 with a record; 0 after the END record has been handed out;
 *         negative on failure: MS_ETRUNCATED (input ended before END),
 *         MS_ECHECKSUM, MS_ECORRUPT, MS_EUNKNOWN, MS_ELIMIT, MS_ECBOR,
 *         MS_ECOMPRESS, MS_EIO, MS_ENOMEM, or any ms_reader_header() status;
 *         MS_EAGAIN when the input would block, the record's bytes so far
 *         kept (repeat the call).
 */
MS_API int ms_reader_next(ms_reader *r, const ms_record **out);

/**
 * After END: checks that the input holds nothing more. Reads at most one
 * byte. For files; a transport may carry other data after a stream.
 * @return 0, MS_ECORRUPT (bytes follow END), MS_ESTATE (END not reached),
 *         MS_EIO, MS_EAGAIN (no byte and no end of input yet: repeat).
 */
MS_API int ms_reader_expect_eof(ms_reader *r);

/** Regions declared so far. @return NULL if @p index is out of range. */
MS_API const ms_region *ms_reader_region(const ms_reader *r, size_t index);
MS_API size_t ms_reader_region_count(const ms_reader *r);
/** The region with id @p id, or NULL. */
MS_API const ms_region *ms_reader_find_region(const ms_reader *r, uint32_t id);

/**
 * What a reader knows of one part of a migration in parts (FORMAT.md
 * section 2.1). A read-only view; later versions add members at its end.
 */
typedef struct ms_part_info {
    const char *name;     /**< the input's name (open.h), or NULL */
    ms_header header;     /**< the part's preamble */
    uint32_t header_size; /**< its preamble's bytes: where the part's record 0 starts */
    ms_part part;         /**< its PART record */
    uint64_t records;     /**< records read from the part so far */
    uint64_t bytes;       /**< bytes of the part read so far, up to the end of its END */
    bool ended;           /**< its END record has been read, and with it: */
    ms_totals totals;     /**< ... the part's own END totals */
    uint64_t digest;      /**< ... its END's checksum: the part's stream digest */
} ms_part_info;

/**
 * The parts a reader reads: for the reader ms_open() makes over every part
 * of a migration (open.h), all of them, once the reader is made; for a
 * reader of one part, 1 once it has read the PART record; 0 for a stream
 * that is not a part.
 */
MS_API uint32_t ms_reader_part_count(const ms_reader *r);

/**
 * The @p i th part the reader reads, in part index order (for a reader of
 * one part, i = 0 is that part, whatever its index).
 * @return a view valid until the next call on the reader, or NULL when
 *         @p i is out of range.
 */
MS_API const ms_part_info *ms_reader_part_info(ms_reader *r, uint32_t i);

/** Bytes consumed from the input so far. For a stream of another format
 *  (open.h), the byte offset of the last record's item in it. */
MS_API uint64_t ms_reader_offset(const ms_reader *r);

/** The format of the stream the reader reads: "migstream" (this library's
 *  own), or, for a reader made by ms_open() (open.h) over another VMM's
 *  stream, that format's short name ("qemu"). Static string; NULL for an
 *  invalid handle. */
MS_API const char *ms_reader_format(const ms_reader *r);

/** The sticky status: 0, or the failure that stopped the reader. */
MS_API int ms_reader_status(const ms_reader *r);
/** Message naming what failed and where, or "" if nothing failed. */
MS_API const char *ms_reader_errmsg(const ms_reader *r);
/** Byte offset at which the failing structure starts. */
MS_API uint64_t ms_reader_error_offset(const ms_reader *r);
/** Index of the failing record, or -1 if the preamble failed. */
MS_API int64_t ms_reader_error_record(const ms_reader *r);
/**
 * For a reader of a migration in parts (open.h): the index of the part
 * the failure is in, whose stream ms_reader_error_offset() and
 * ms_reader_error_record() count in; -1 when it is in no one part (parts
 * that disagree, or a failure before the parts were told apart) or the
 * stream is not in parts. While ms_reader_options.on_problem runs, the
 * same for the problem it reports.
 */
MS_API int64_t ms_reader_error_part(const ms_reader *r);

/**
 * The cause of an MS_EIO failure (common.h, "Callbacks").
 * @param err [out, optional] the errno seen right after the read callback
 *        returned (0 when it returned a count larger than it was asked for)
 * @return the value the read callback returned (for the descriptor reader,
 *         -errno), or 0 when the reader has not failed on its input.
 */
MS_API int ms_reader_io_error(const ms_reader *r, int *err);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_READER_H */
