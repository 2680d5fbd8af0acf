/*
 * Fuzz target: ms_replay_dir (migstream/replay_dir.h), the work of
 * migstream-replay, from an untrusted stream to files. Each input is replayed into a fresh output
 * directory in a scratch directory (tmpfs when there is one), which is then
 * removed; the target aborts when a run leaves a file or a descriptor
 * behind. An input that does not start with the magic is framed with valid
 * checksums first (fuzz_frame.h), so mutations reach the callbacks.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

/* Removes the finished output: only regular files, made by the replay. */
static void remove_output(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        fprintf(stderr, "fuzz_replay: the output %s is not a directory\n", path);
        abort();
    }
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            unlinkat(fd, e->d_name, 0) != 0)
            abort();
    closedir(d);
    if (rmdir(path) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[4200];
    const char *dir = fz_scratch_dir();
    if (!out[0])
        snprintf(out, sizeof out, "%s/out", dir);
    int fds = fz_open_fds();
    size_t n;
    uint8_t *stream = fz_stream(data, size, &n);
    if (!stream)
        return 0;
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.max_record_size = 1 << 20; /* keep memory per input small */
    ro.max_regions = 64;
    ro.max_cbor_depth = 32;
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    o.max_map_memory = 16u << 20;
    o.max_output = 64u << 20; /* FILL pages claim what they like: the output stays small */
    fz_mem in = {stream, n, 0};
    ms_replay_dir *rd = ms_replay_dir_new(&o);
    ms_reader *r = rd ? ms_reader_new(&ro, fz_mem_read, &in) : NULL;
    if (r) {
        int st = ms_replay_dir_write(rd, r, "fuzz", out);
        if (st == 0)
            remove_output(out);
        else if (!ms_replay_dir_errmsg(rd)[0]) { /* every failure says why */
            fprintf(stderr, "fuzz_replay: status %d without a message\n", st);
            abort();
        }
    }
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    free(stream);
    fz_check_clean(dir, fds);
    return 0;
}
