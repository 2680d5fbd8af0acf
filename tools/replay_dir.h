/*
 * Replaying a stream into an output directory: the work of migstream-replay,
 * apart from its command line, signals and printing, so that a fuzz target
 * and the tests can run it over and over in one process.
 *
 * The directory holds one sparse raw image per memory region
 * ("region-<id>.img"), each device's last state as CBOR and as JSON
 * ("device-<n>.cbor", "device-<n>.json", in order of path then instance)
 * and manifest.json. Every name is made up here: names and paths from the
 * stream only appear inside the manifest, as JSON strings (FORMAT.md
 * section 7 asks consumers to sanitize device paths; we never use them).
 *
 * The directory is built under a fresh temporary name beside the output
 * path and renamed into place once complete, so a stream that turns out
 * damaged leaves nothing behind, and nothing the caller had is replaced
 * unless force is set. Every file is created relative to a descriptor of
 * that temporary directory, never following a symbolic link.
 */
#ifndef MST_REPLAY_DIR_H
#define MST_REPLAY_DIR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/migstream.h>

typedef enum mst_replay_status {
    MST_REPLAY_OK = 0,      /* the directory is in place */
    MST_REPLAY_REFUSED = 1, /* the stream was refused: damaged, truncated or
                               unsupported; nothing written */
    MST_REPLAY_ERROR = 2,   /* I/O, memory or output error; nothing written */
    MST_REPLAY_STOPPED = 3, /* *stop became non-zero; nothing written */
} mst_replay_status;

typedef struct mst_replay_options {
    /* Replace the output path if it exists (a directory, a file or a
     * symbolic link, which is replaced, not followed). */
    bool force;
    /* Skip fsync(): for tests and fuzzing, where durability does not
     * matter and the calls dominate the run time. */
    bool no_sync;
    /* Also write region-<id>.view.img, the guest-visible view of each
     * region that holds an overlay: the image with the active overlays
     * (FORMAT.md section 7.2) written over the RAM at their frames. */
    bool view;
    /* Name of the input in messages ("standard input", a file name). */
    const char *label;
    /* Reader options (limits); NULL: the library's defaults. */
    const ms_reader_options *reader;
    /* Bytes the page-state maps may use (tools/pagemap.h); 0: the
     * default, MST_PM_BUDGET_DEFAULT. */
    size_t map_budget;
    /* Checked between records and callbacks: non-zero stops the replay
     * (MST_REPLAY_STOPPED). May be set by a signal handler. NULL: never. */
    const volatile sig_atomic_t *stop;
    /* Called as pages are applied (bytes read so far, pages applied so
     * far), e.g. for a progress line. NULL: not called. */
    void (*progress)(void *ctx, uint64_t bytes, uint64_t pages);
    void *progress_ctx;
} mst_replay_options;

typedef struct mst_replay_result {
    /* The reader's status when the stream could not be read or was
     * refused (MS_EIO when the read callback failed), else 0. */
    int reader_status;
    uint64_t regions, devices, skipped_records;
    uint64_t digest; /* the stream digest (FORMAT.md section 4.2) */
} mst_replay_result;

/*
 * Replays the stream read through @read (with @read_ctx) into the directory
 * @out. @result [out, optional]. @err [out] gets a message for any status
 * other than MST_REPLAY_OK, without a program name or newline (truncated
 * to @err_size).
 */
mst_replay_status mst_replay_dir(ms_read_fn read, void *read_ctx, const char *out,
                                 const mst_replay_options *opts, mst_replay_result *result,
                                 char *err, size_t err_size);

#endif /* MST_REPLAY_DIR_H */
