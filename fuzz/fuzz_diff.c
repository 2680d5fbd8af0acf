/*
 * Fuzz target: migstream-diff's engine (tools/diff_engine.c) on two
 * untrusted streams. The input is "u32 LE, A, B": the u32's low 31 bits,
 * taken modulo what follows, are A's length, its top bit asks for JSON Lines
 * instead of text. Each side is a stream, or records framed with valid
 * checksums (fuzz_frame.h). The differences go to /dev/null; the target
 * aborts when a run leaves a temporary file or a descriptor behind, or when
 * a stream differs from itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "diff_engine.h"
#include "fuzz_common.h"
#include "fuzz_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    const char *dir = fz_scratch_dir();
    if (!devnull) {
        devnull = fopen("/dev/null", "we"); /* kept for the process */
        if (!devnull)
            abort();
    }
    if (size < 4)
        return 0;
    int fds = fz_open_fds();
    uint32_t prefix = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                      (uint32_t)data[3] << 24;
    size_t rest = size - 4, an = (prefix & 0x7fffffffu) % (rest + 1);
    size_t sa, sb;
    uint8_t *a = fz_stream(data + 4, an, &sa);
    uint8_t *b = fz_stream(data + 4 + an, rest - an, &sb);
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.max_record_size = 1 << 20;
    ro.max_regions = 64;
    ro.max_cbor_depth = 32;
    mst_diff_options o = {
        .json = (prefix >> 31) & 1,
        .reader = &ro,
        .map_budget = 16u << 20,
        .tmpdir = dir,
    };
    mst_diff *d = a && b ? mst_diff_new(&o) : NULL;
    if (d) {
        char err[512];
        fz_mem ma = {a, sa, 0}, mb = {b, sb, 0};
        if (mst_diff_load(d, 0, fz_mem_read, &ma, "a", err, sizeof err) == MST_DIFF_SAME &&
            mst_diff_load(d, 1, fz_mem_read, &mb, "b", err, sizeof err) == MST_DIFF_SAME) {
            int rc = mst_diff_compare(d, devnull, NULL, err, sizeof err);
            /* A stream compared with itself is the same. */
            if (rc == MST_DIFF_DIFFERENT && sa == sb && memcmp(a, b, sa) == 0) {
                fprintf(stderr, "fuzz_diff: a stream differs from itself\n");
                abort();
            }
        }
        mst_diff_free(d);
    }
    free(a);
    free(b);
    fz_check_clean(dir, fds);
    return 0;
}
