/*
 * Turning a fuzz input into a stream for the targets that replay whole
 * streams (fuzz_replay, fuzz_diff): an input that starts with the format's
 * magic is a stream as it is; any other input is a list of records that the
 * harness frames with correct checksums, so that mutations reach past them.
 */
#ifndef FZ_FRAME_H
#define FZ_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns a malloc'd stream built from @data, its length in @out_size, or
 * NULL when out of memory. Without the magic, @data is read as records
 * "type (1 byte, taken mod 8), flags (1 byte, bit 0 kept), length (2 bytes
 * LE), payload" (fuzz_records' format) behind a valid preamble (page size
 * 4096, no feature bits), each with its chained checksum (FORMAT.md 4.2);
 * an END record (type 5) of length 0 gets the totals the records before it
 * imply (FORMAT.md section 8), so that inputs reach the end of a replay.
 */
uint8_t *fz_stream(const uint8_t *data, size_t size, size_t *out_size);

/* Reads a buffer, as an ms_read_fn. */
typedef struct fz_mem {
    const uint8_t *p;
    size_t size, pos;
} fz_mem;
ssize_t fz_mem_read(void *ctx, void *buf, size_t len);

/* A fresh directory for a target's files, made once per process under
 * /dev/shm when it can be written (no disk I/O), else $TMPDIR or /tmp, and
 * removed at exit. Aborts when none can be made. */
const char *fz_scratch_dir(void);

/* Descriptors the process has open (/proc/self/fd), or -1. */
int fz_open_fds(void);

/* Aborts unless @dir is empty and as many descriptors are open as
 * @fds_before (fz_open_fds() when the input started): a target that leaves
 * a file or a descriptor behind is caught at the input that did it. */
void fz_check_clean(const char *dir, int fds_before);

#endif
