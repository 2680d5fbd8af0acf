/*
 * libmigstream: replaying a stream into a directory.
 *
 * ms_replay_dir_write() applies a stream (with ms_replay(), the engine a
 * VMM receives a migration with) and writes the guest's final state
 * (FORMAT.md section 2) to a new directory: the files a test, a forensic
 * tool or migstream-pack can read back without the library.
 *
 *     ms_replay_dir *rd = ms_replay_dir_new(NULL);
 *     ms_reader *r = ms_reader_new_fd(NULL, fd);
 *     int rc = ms_replay_dir_write(rd, r, "vm.mig", "vm-state");
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", ms_replay_dir_errmsg(rd));
 *     ms_reader_free(r);
 *     ms_replay_dir_free(rd);
 *
 * The directory holds (docs/man/migstream-replay.1 describes each file and
 * every member of the manifest):
 *   - region-<id>.img: one sparse raw image per memory region, exactly the
 *     region's size; pages that are zero (sent as ZERO, or as DATA whose
 *     bytes are all zero), DISCARDED, IN_PLACE or never sent are holes;
 *   - device-<n>.cbor and device-<n>.json: each device's last state, as the
 *     stream carried it and as JSON, numbered in order of path then
 *     instance;
 *   - overlay-<n>.bin: the 4 KiB each overlay builds, in stream order;
 *   - region-<id>.view.img, with ms_replay_dir_options.view: the guest's
 *     view of each region that holds an overlay (the active overlays
 *     written over the RAM at their frames, FORMAT.md section 7.2);
 *   - manifest.json: the stream's metadata, totals and digest, each
 *     region's final page counts and IN_PLACE references, the overlays and
 *     the devices. For a stream of another format (a reader from
 *     ms_open(), open.h) the format is its name ("qemu") and the members
 *     that belong to this format's preamble and checksums (writer name and
 *     version, digest) are null. Its "schema_version" member is
 *     MS_REPLAY_DIR_SCHEMA_VERSION (docs/schemas/manifest.schema.json;
 *     directories written before it have "manifest_version": 1 instead).
 * Every file name is made up here: names and paths from the stream (device
 * paths such as ../../etc/passwd) appear only inside the manifest, as JSON
 * strings; FORMAT.md section 7 asks consumers to sanitize device paths, and
 * these never become paths.
 *
 * The directory is built under a fresh temporary name beside the output
 * path (PATH.tmp-XXXXXX) and renamed into place only once the stream was
 * read to its END record with nothing after it and every file was written
 * (and synced): a stream that turns out damaged, a failure or a stop
 * leaves nothing behind, and nothing the caller had is replaced unless
 * force is set; with force, the old output is moved aside before the new
 * one is renamed into place, so that one of them is complete at every
 * moment. Every file is made relative to a descriptor of the temporary
 * directory and never through a symbolic link.
 *
 * Memory: the reader's largest record, a page-state map per region
 * (pagemap.h: what was sent, not what was declared, within max_map_memory;
 * a run of FILL pages is one entry with its word), IN_PLACE references
 * (4096 extents at most) and a small entry per device and overlay; never a
 * whole region. Output: at most max_output bytes; FILL pages are written
 * once, at the end, whatever number of times the stream sent them. Time:
 * in proportion to the stream's bytes and the bytes written. The library allocates with malloc
 * here. Streams are untrusted input: every failure is reported with a
 * message that names what failed and where.
 *
 * Threads: an ms_replay_dir, and the reader it is given while it writes,
 * are used by one thread at a time; different ones are independent and
 * may write different directories at once (common.h, "Handles"). The
 * progress callback runs on the calling thread.
 */
#ifndef MIGSTREAM_REPLAY_DIR_H
#define MIGSTREAM_REPLAY_DIR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "pagemap.h"
#include "reader.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of manifest.json's layout, its "schema_version" member:
 *  page states spelled as FORMAT.md spells them ("DATA"), sizes and the
 *  stream's totals as strings (docs/OUTPUT.md). Layout 1 was
 *  "manifest_version": 1. */
#define MS_REPLAY_DIR_SCHEMA_VERSION 2

typedef struct ms_replay_dir ms_replay_dir;

/** Options. Fill with ms_replay_dir_options_init() first; 0 or NULL means
 *  the default. */
typedef struct ms_replay_dir_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** Replace the output path if it exists (a directory, a file or a
     *  symbolic link, which is replaced, not followed). Default false:
     *  an existing path is an error (MS_EINVAL). */
    bool force;
    /** Skip fsync(): for tests and fuzzing, where durability does not
     *  matter and the calls dominate the run time. */
    bool no_sync;
    /** Also write region-<id>.view.img for each region that holds an
     *  overlay. */
    bool view;
    /** Bytes the page-state maps may use (pagemap.h); default
     *  MS_PAGEMAP_DEFAULT_MEMORY. Past it the replay fails with
     *  MS_ELIMIT. */
    size_t max_map_memory;
    /** Checked between records and callbacks, and within long writes
     *  (every 256 KiB): when it points at a non-zero value, the replay stops
     *  (MS_REPLAY_DIR_STOPPED) and leaves nothing. May be set by a signal
     *  handler. NULL: never. */
    const volatile sig_atomic_t *stop;
    /** Called as pages are applied, with the stream bytes read so far and
     *  the pages applied so far (for a progress line). NULL: not called. */
    void (*progress)(void *ctx, uint64_t bytes, uint64_t pages);
    void *progress_ctx;
    /** Bytes the output may take: the images' DATA and FILL pages, the
     *  device, overlay and view files and the manifest; default
     *  MS_MAX_OUTPUT_DEFAULT (1 TiB), UINT64_MAX for no limit but the free
     *  space. The output may not take more than the free space of the file
     *  system it is made in either. Checked before anything is written that
     *  would pass it: the replay then fails with MS_ELIMIT and a message
     *  saying how much the output would take. FILL pages are contents of
     *  the image and count; pages that are holes (ZERO, DISCARDED, IN_PLACE,
     *  never sent) do not. */
    uint64_t max_output;
} ms_replay_dir_options;

/** Fills @p opts with the defaults. */
MS_API void ms_replay_dir_options_init(ms_replay_dir_options *opts);

/** ms_replay_dir_write(): *stop became non-zero; nothing was written. */
#define MS_REPLAY_DIR_STOPPED 1

/** What the last ms_replay_dir_write() did. A read-only view. */
typedef struct ms_replay_dir_result {
    /** 0, or the status with which the stream stopped the replay: the
     *  reader's (the stream is damaged, truncated or refused; MS_EIO when
     *  reading failed, MS_ENOMEM when the reader ran out of memory),
     *  MS_EFEATURE for a page state this replay cannot apply, MS_ECORRUPT
     *  for IN_PLACE references that overlap (FORMAT.md section 6.2), or
     *  MS_ELIMIT for more IN_PLACE extents than the replay keeps (4096,
     *  a limit section 9 allows). 0 when the replay failed on the output
     *  side (files, memory, the page maps' budget). */
    int stream_status;
    uint64_t regions;         /**< regions declared */
    uint64_t devices;         /**< device instances (path and instance) */
    uint64_t overlays;        /**< overlays */
    uint64_t skipped_records; /**< records of unknown types, skipped */
    uint64_t pages;           /**< pages applied, every copy counted */
    /** The stream digest (FORMAT.md section 4.2), once END was read; 0 for
     *  a stream of another format (open.h), which has no checksums. */
    uint64_t digest;
} ms_replay_dir_result;

/** Creates a replay job, reusable for any number of streams. @p opts may
 *  be NULL (defaults).
 *  @return **new** handle, or NULL when memory ran out. Bad options give a
 *          job in the failed state (common.h, "Handles"):
 *          ms_replay_dir_status() is MS_EINVAL, ms_replay_dir_errmsg()
 *          names the option, and ms_replay_dir_write() returns MS_EINVAL. */
MS_API ms_replay_dir *ms_replay_dir_new(const ms_replay_dir_options *opts);

/** MS_EINVAL for a job made from bad options, else 0 (a failed write is the
 *  write's: see its return value); MS_ENOMEM for NULL. */
MS_API int ms_replay_dir_status(const ms_replay_dir *rd);

/** Frees the handle (NULL is fine). */
MS_API void ms_replay_dir_free(ms_replay_dir *rd);

/**
 * Replays @p r to its END record into the new directory @p path.
 * @param r    [borrow] a reader that has read nothing yet; it stays the
 *             caller's, and after a failure it holds the reader's own
 *             status, offset and record index
 * @param name [borrow] the input in messages ("vm.mig", "standard input"),
 *             or NULL ("stream")
 * @param path [borrow] the directory to make
 * @return 0 when the directory is in place; MS_REPLAY_DIR_STOPPED; or,
 *         with nothing written and ms_replay_dir_errmsg() saying why: a
 *         reader status when the stream was refused or could not be read
 *         ("NAME: record 2 (PAGES at byte 204), byte 212: checksum
 *         mismatch ..."; also in ms_replay_dir_result.stream_status);
 *         MS_EFEATURE (a page state this replay cannot apply); MS_ECORRUPT
 *         (IN_PLACE references that overlap: FORMAT.md section 6.2, with
 *         ms_in_place_overlaps()); MS_EINVAL
 *         (@p path exists and force is not set, or NULL arguments);
 *         MS_EIO (the output cannot be made or written: the message names
 *         the file and the system's reason); MS_ELIMIT (page-state maps
 *         past max_map_memory, more than 4096 IN_PLACE extents, or an
 *         output past max_output or the free space); MS_ENOMEM.
 */
MS_API int ms_replay_dir_write(ms_replay_dir *rd, ms_reader *r, const char *name, const char *path);

/** The result of the last ms_replay_dir_write(), valid for the handle's
 *  lifetime; counts cover what was read before a failure. */
MS_API const ms_replay_dir_result *ms_replay_dir_get_result(const ms_replay_dir *rd);

/** Message naming what the last ms_replay_dir_write() found wrong and
 *  where, or "" after one that succeeded. */
MS_API const char *ms_replay_dir_errmsg(const ms_replay_dir *rd);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_REPLAY_DIR_H */
