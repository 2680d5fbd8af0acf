/*
 * libmigstream: common definitions shared by every public header.
 *
 * Export macro, library and format versions, the error model, the optional
 * allocator and the small value types (page states, record types) that both
 * the writer and the reader speak. The wire format these describe is
 * specified in docs/FORMAT.md; section numbers below refer to it.
 */
#ifndef MIGSTREAM_COMMON_H
#define MIGSTREAM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a symbol as part of the public ABI; everything else is hidden. */
#if defined(MS_BUILDING_LIBRARY) && defined(__GNUC__)
#define MS_API __attribute__((visibility("default")))
#else
#define MS_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

/** Library version (semantic versioning of the C API and ABI). */
#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
#define MS_VERSION_PATCH 0

/**
 * The newest stream format version this library reads and writes (FORMAT.md
 * section 11). Its writer stamps a stream with the lowest minor version that
 * defines everything the stream uses, never below 1: minor 3 for a stream
 * that may hold DUPLICATE pages or zstd-window data (MS_FEATURE_DUPLICATES,
 * MS_FEATURE_ZSTD_WINDOW), else 2 for a part of a migration in parts
 * (MS_FEATURE_PARTS), 1 otherwise, so that the same calls give the same
 * bytes as the 1.1 writer did (section 11.2).
 */
#define MS_FORMAT_MAJOR 1
#define MS_FORMAT_MINOR 3

/** Returns the library version as "MAJOR.MINOR.PATCH". Static string. */
MS_API const char *ms_version_string(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Status codes. Every function that can fail returns 0 (MS_OK) or one of
 * these negative values; a few return a positive count or flag, documented
 * where they do. The values are part of the ABI and are never renumbered.
 */
typedef enum ms_status {
    MS_OK = 0,
    MS_ENOMEM = -1,         /**< an allocation failed */
    MS_EINVAL = -2,         /**< the caller passed an invalid argument */
    MS_EIO = -3,            /**< the read or write callback (or fd) failed */
    MS_ETRUNCATED = -4,     /**< the stream ended early (no END record) */
    MS_EMAGIC = -5,         /**< not a libmigstream stream */
    MS_EVERSION = -6,       /**< newer major format version */
    MS_EFEATURE = -7,       /**< unknown required feature bit */
    MS_ECHECKSUM = -8,      /**< a checksum did not match */
    MS_ECORRUPT = -9,       /**< malformed structure or broken format rule */
    MS_EUNKNOWN = -10,      /**< unknown record type marked must-understand */
    MS_ELIMIT = -11,        /**< a size or count beyond the spec or a limit */
    MS_ESTATE = -12,        /**< call not valid in the handle's state */
    MS_ECBOR = -13,         /**< malformed or out-of-profile CBOR */
    MS_ECOMPRESS = -14,     /**< compressed data could not be decoded */
    /** The input or output would block: poll, then repeat the same call
     *  ("Non-blocking I/O" below). Never sticky. */
    MS_EAGAIN = -15,
} ms_status;

/** Static, human-readable name of a status code ("MS_ECHECKSUM: ..."). */
MS_API const char *ms_strerror(int status);

/**
 * Copies the text @p src into @p dst (@p size bytes with its NUL; @p dst
 * may be NULL when @p size is 0) with every control character written as
 * \xNN: the C0 controls and DEL, the C1 controls (U+0080 to U+009F, as
 * their two UTF-8 bytes), and any byte that is not part of well-formed
 * UTF-8. Text from a stream (region and RAM block names, device paths)
 * then cannot drive a terminal it is printed on. Every message of this
 * library (the errmsg functions) is written through it, and so are the
 * tools' messages. Truncates, as snprintf does, without cutting an escape.
 * @return the length of the whole escaped text (not counting the NUL).
 */
MS_API size_t ms_escape_text(char *dst, size_t size, const char *src);

/**
 * An upper bound of the JSON values (object keys included) the text @p
 * text of @p size bytes holds: the root, and one after each comma, colon
 * or opening bracket outside strings. A JSON parser takes tens of bytes per
 * value, so a file of many small values takes far more memory than its
 * size: count them first, and refuse past a limit, before parsing a JSON
 * file from elsewhere (the schema loader does, and migstream-pack).
 */
MS_API size_t ms_json_values(const void *text, size_t size);

/* ------------------------------------------------------------------------ */
/* Handles                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Every object (ms_writer, ms_reader, ms_schema_set, ms_qemu_import ...) is
 * an opaque handle made by ms_<object>_new...() and freed by
 * ms_<object>_free(), which accepts NULL. The constructors share one
 * failure model:
 *
 *  - NULL means only that memory ran out;
 *  - any other problem (invalid options, a NULL callback, a negative file
 *    descriptor) gives a handle in the failed state: ms_<object>_status()
 *    is MS_EINVAL, ms_<object>_errmsg() names the argument, and every call
 *    that can fail returns that status.
 *
 * ms_<object>_status(NULL) is MS_ENOMEM and ms_<object>_errmsg(NULL) says
 * "out of memory", so one check after a constructor covers both:
 *
 *     ms_writer *w = ms_writer_new_fd(&opts, fd);
 *     if (ms_writer_status(w)) {
 *         fprintf(stderr, "%s\n", ms_writer_errmsg(w));
 *         ms_writer_free(w);
 *         return -1;
 *     }
 *
 * A handle is used by one thread at a time; different handles are
 * independent and may be used from different threads at once. The library
 * keeps no global state that calls share (the one global it writes is the
 * choice, made once and atomically, of the CPU's fastest zero-page
 * routine), and the static strings it returns are constant. Functions
 * without a handle (ms_strerror(), ms_overlay_render(), ms_cbor_format()
 * ...) may be called from any thread at any time. Callbacks are called on
 * the thread that made the call, never from a thread of the library's own
 * (a writer's compression workers, ms_writer_options.threads, touch only
 * their copies of page batches). Each header says this for its handles.
 */

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/*
 * The I/O callbacks (ms_read_fn, ms_pread_fn in reader.h; ms_write_fn,
 * ms_write_some_fn in writer.h) report a failure with a negative return
 * value; returning -errno (for example -EPIPE) lets the library's message
 * name the cause. The failure is MS_EIO, and its cause stays reachable:
 * ms_reader_io_error() and ms_writer_io_error() give the value the
 * callback returned and the errno seen right after it returned, so neither
 * a callback's own code (-42) nor the errno of a callback that returns -1
 * is lost.
 *
 * -EAGAIN and -EWOULDBLOCK are not failures: they say that the input or
 * output would block, and the call returns MS_EAGAIN ("Non-blocking I/O"
 * below). The
 * file-descriptor entry points (ms_reader_new_fd(), ms_writer_new_fd() ...)
 * retry EINTR and return -errno themselves, -EAGAIN included on an
 * O_NONBLOCK descriptor. The library never closes a descriptor it is given.
 *
 * SIGPIPE: the file-descriptor writers send to a socket with MSG_NOSIGNAL,
 * so a peer that closed the connection gives MS_EIO with EPIPE as its
 * cause, never the signal. A pipe whose reader has gone raises SIGPIPE in
 * the writing thread, which by default ends the process (exit status 141
 * in a shell): a program that writes a stream into a pipe blocks or
 * ignores SIGPIPE (signal(SIGPIPE, SIG_IGN)) and then gets MS_EIO with
 * EPIPE instead. A write callback that sends on a socket itself should pass
 * MSG_NOSIGNAL too. The library never changes a signal's disposition. The
 * command-line tools leave SIGPIPE as they find it: like cat, a tool
 * writing into a pipe whose reader has gone ends with the signal.
 */

/* ------------------------------------------------------------------------ */
/* Non-blocking I/O                                                         */
/* ------------------------------------------------------------------------ */

/*
 * MS_EAGAIN means the same everywhere: the input or output would block.
 * Wait until the descriptor is ready (poll() for POLLIN or POLLOUT) and
 * repeat the same call with the same arguments: the handle kept its
 * position, so nothing is sent or read twice. MS_EAGAIN is never sticky:
 * the handle is not in a failed state, and ms_<object>_status() stays 0.
 * A read or write callback says "would block" by returning -EAGAIN or
 * -EWOULDBLOCK (a ms_write_some_fn also by taking fewer bytes than it was
 * given); the file-descriptor reader and writer do so on an O_NONBLOCK
 * descriptor. writer.h ("Non-blocking output") and reader.h ("Non-blocking
 * input") say which calls return it and what the repeated call does.
 * Memory stays bounded: a writer keeps at most the record the output did
 * not take (and the small records queued with it), a reader what has
 * arrived of the record it is reading.
 */

/* ------------------------------------------------------------------------ */
/* Growing structs (the ABI rule)                                           */
/* ------------------------------------------------------------------------ */

/*
 * Every struct a caller passes in can grow in a later version without
 * breaking programs built against this one, by one rule: the part of a
 * struct this library does not know must be all zero.
 *
 *  - Options and callback structs start with `size_t struct_size`, which
 *    their _init function sets (a callbacks struct: the caller, to sizeof).
 *    A smaller struct (from a program built against an older version) is
 *    accepted: the fields it lacks take their defaults. A larger one (from
 *    a program built against a newer version) is accepted only when every
 *    byte past the last field this library knows is zero, that is, when
 *    the program asks for nothing this library cannot do; otherwise the
 *    call fails with MS_EINVAL and a message naming the struct. struct_size
 *    0 (a struct never initialized) is MS_EINVAL too.
 *  - Value structs (ms_region, ms_round, ms_overlay) end in a `reserved`
 *    array that must be zero: a later version gives its words meanings in
 *    which zero means what this version does. Zero-initializing the struct
 *    (designated initializers, memset) is all it takes.
 *
 * Structs the library hands out (ms_record and what it points to) are read
 * only; later versions add members at their ends.
 */

/* ------------------------------------------------------------------------ */
/* Allocator                                                                */
/* ------------------------------------------------------------------------ */

/**
 * Optional allocator, passed in options. All three functions must be set, or
 * the whole struct left zeroed to use malloc/realloc/free. Semantics match
 * the C library's (realloc(NULL, n) allocates; free(NULL) does nothing).
 */
typedef struct ms_allocator {
    void *(*alloc)(void *opaque, size_t size);
    void *(*realloc)(void *opaque, void *ptr, size_t size);
    void (*free)(void *opaque, void *ptr);
    void *opaque;
} ms_allocator;

/* ------------------------------------------------------------------------ */
/* Wire-level enumerations (FORMAT.md sections 4 and 6)                     */
/* ------------------------------------------------------------------------ */

/** Record types (FORMAT.md section 4.3). 0 is never valid. */
typedef enum ms_record_type {
    MS_REC_INFO = 1,    /**< stream metadata (CBOR) */
    MS_REC_REGIONS = 2, /**< memory region declarations (CBOR) */
    MS_REC_PAGES = 3,   /**< a batch of page extents in one region */
    MS_REC_DEVICE = 4,  /**< one device's state (CBOR) */
    MS_REC_END = 5,     /**< totals; the last record of every stream */
    MS_REC_ROUND = 6,   /**< start of a pre-copy round (1.1, CBOR) */
    MS_REC_OVERLAY = 7, /**< hypervisor overlay pages (1.1, CBOR) */
    MS_REC_PART = 8,    /**< which part of a migration in parts a stream is (1.2, CBOR) */
} ms_record_type;

/** Record flag: a reader that does not know the type must refuse the stream. */
#define MS_RECORD_MUST_UNDERSTAND 0x0001u

/** State of a run of pages (FORMAT.md section 6.2). 0 is never valid. */
typedef enum ms_page_state {
    MS_PAGE_DATA = 1,      /**< contents follow in the record */
    MS_PAGE_ZERO = 2,      /**< every byte is zero; no contents on the wire */
    /** The guest hinted the page free: its contents do not matter (1.1,
     *  needs MS_FEATURE_DISCARDED). Not the same as ZERO. */
    MS_PAGE_DISCARDED = 3,
    /** Every 8-byte word of the page is the extent's argument, stored
     *  little-endian (1.1, needs MS_FEATURE_FILL). */
    MS_PAGE_FILL = 4,
    /** The page is not in the stream: it stays where it is, and the
     *  extent's argument is its byte address in the in-place space (1.1,
     *  needs MS_FEATURE_IN_PLACE). */
    MS_PAGE_IN_PLACE = 5,
    /** The page holds what page `arg + i` of the same region holds at this
     *  point of the stream, a page whose contents travelled as DATA (1.3,
     *  needs MS_FEATURE_DUPLICATES; FORMAT.md section 6.2). */
    MS_PAGE_DUPLICATE = 6,
} ms_page_state;


/**
 * Required feature bits (FORMAT.md section 3.2). A stream that uses one of
 * these sets its bit in the preamble, so that a reader without it refuses
 * the stream before reading any record.
 */
#define MS_FEATURE_DISCARDED (1u << 0) /**< page state DISCARDED */
#define MS_FEATURE_FILL (1u << 1)      /**< page state FILL */
#define MS_FEATURE_IN_PLACE (1u << 2)  /**< page state IN_PLACE */
#define MS_FEATURE_OVERLAYS (1u << 3)  /**< OVERLAY records */
/** The stream is one part of a migration sent over several connections
 *  (1.2): it starts with a PART record, and only a merge of every part
 *  gives the migration's final state (FORMAT.md section 2.1). */
#define MS_FEATURE_PARTS (1u << 4)
/** Page state DUPLICATE: a page equal to one sent earlier travels as a
 *  reference to it (1.3). */
#define MS_FEATURE_DUPLICATES (1u << 5)
/** Data encoding 2, zstd with the previous record's pages as its window
 *  (1.3). */
#define MS_FEATURE_ZSTD_WINDOW (1u << 6)

/** Dirty-page trackers a ROUND record names (FORMAT.md section 6.4).
 *  Readers pass values they do not know through. */
typedef enum ms_tracker {
    MS_TRACKER_NONE = 0,   /**< no tracking: a full pass over memory */
    MS_TRACKER_BITMAP = 1, /**< a dirty bitmap (KVM_GET_DIRTY_LOG) */
    MS_TRACKER_RING = 2,   /**< a dirty ring (KVM_CAP_DIRTY_LOG_RING) */
    MS_TRACKER_PML = 3,    /**< Intel page-modification logging */
} ms_tracker;

/** Hypervisor overlay kinds (FORMAT.md section 7.2). Each kind has a fixed
 *  priority (ms_overlay_priority()) that never changes. */
typedef enum ms_overlay_kind {
    MS_OVERLAY_HYPERCALL = 1,         /**< Hyper-V hypercall page */
    MS_OVERLAY_REFERENCE_TSC = 2,     /**< Hyper-V reference TSC page */
    MS_OVERLAY_SYNIC_MESSAGE = 3,     /**< SynIC message page (SIMP) */
    MS_OVERLAY_SYNIC_EVENT_FLAGS = 4, /**< SynIC event flags page (SIEFP) */
} ms_overlay_kind;

/** Encoding of a PAGES record's data section (FORMAT.md section 6.3). */
typedef enum ms_data_encoding {
    MS_ENCODING_RAW = 0,  /**< the pages' bytes as they are */
    MS_ENCODING_ZSTD = 1, /**< one zstd frame */
    /** One zstd frame compressed with the previous PAGES record's decoded
     *  data section as its window (1.3, needs MS_FEATURE_ZSTD_WINDOW). */
    MS_ENCODING_ZSTD_WINDOW = 2,
} ms_data_encoding;

/** The feature bits (FORMAT.md section 3.2) this library implements: a
 *  stream with other required bits is refused; other optional bits are
 *  reported as unknown by tools. Either pointer may be NULL. */
MS_API void ms_known_features(uint64_t *required, uint64_t *optional);

/** Name of a record type ("PAGES"), or NULL for a type this library does
 *  not know. Static string. */
MS_API const char *ms_record_type_name(unsigned type);

/** Name of a page state ("DATA", "ZERO"), or NULL if unknown. Static. */
MS_API const char *ms_page_state_name(unsigned state);

/** Name of a required feature bit number ("FILL" for bit 1), or NULL if
 *  unknown. Static. */
MS_API const char *ms_feature_name(unsigned bit);

/** Name of a dirty tracker ("bitmap"), or NULL if unknown. Static. */
MS_API const char *ms_tracker_name(unsigned tracker);

/* ------------------------------------------------------------------------ */
/* Spec limits (FORMAT.md section 9). A reader enforces these whatever its    */
/* options say; options can only lower them.                                */
/* ------------------------------------------------------------------------ */

#define MS_MAX_RECORD_PAYLOAD (64u * 1024 * 1024) /**< payload bytes per record */
#define MS_MIN_PAGE_SIZE 4096u
#define MS_MAX_BASE_PAGE_SIZE 65536u              /**< preamble page size */
#define MS_MAX_PAGE_SIZE (16u * 1024 * 1024)      /**< region page size */
#define MS_MAX_NAME_LEN 255u                      /**< region, schema, writer names */
#define MS_MAX_PATH_LEN 1023u                     /**< device path bytes */
#define MS_WRITER_FIELD_LEN 32u                   /**< preamble name/version fields */
#define MS_RECORD_HEADER_SIZE 16u                 /**< bytes before each payload */
#define MS_MAX_CBOR_DEPTH 256u                    /**< nesting, any payload */
#define MS_DEFAULT_CBOR_DEPTH 64u                 /**< library default for device state */
#define MS_OVERLAY_PAGE_SIZE 4096u                /**< every overlay covers 4 KiB */
#define MS_MAX_GFN ((UINT64_C(1) << 52) - 1)      /**< largest overlay frame number */
#define MS_MIGRATION_ID_SIZE 16u                  /**< bytes of a PART record's migration id */
/** Parts of one migration the library merges at most (ms_open(), and
 *  migstream-validate's cross-part checks): one reader per part is open at
 *  once, and the validator's page map records a part in a byte. */
#define MS_MAX_PARTS 255u

/**
 * Default of the output limits (max_output) of the work that writes what a
 * stream describes rather than what it carries: ms_replay_dir (images),
 * ms_diff (temporary files of page contents) and ms_qemu_export (QEMU page
 * items): 1 TiB. A stream of a few bytes can describe terabytes of FILL
 * pages; each refuses before writing past its limit, or past the free
 * space of the file system it writes to (docs/SECURITY.md, "Cost").
 */
#define MS_MAX_OUTPUT_DEFAULT (UINT64_C(1) << 40)

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_COMMON_H */
