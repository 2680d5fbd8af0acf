/* The QEMU captures (qemu_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <zstd.h>

#include "qemu_fixture.h"

#ifndef MS_QEMU_DATA
#error "MS_QEMU_DATA must name tests/data/qemu"
#endif

uint8_t *th_qemu_fixture(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.qemu.zst", MS_QEMU_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *z = malloc((size_t)n);
    assert_non_null(z);
    assert_int_equal(fread(z, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unsigned long long want = ZSTD_getFrameContentSize(z, (size_t)n);
    assert_true(want != ZSTD_CONTENTSIZE_ERROR && want != ZSTD_CONTENTSIZE_UNKNOWN);
    assert_true(want < (64u << 20));
    uint8_t *out = malloc((size_t)want);
    assert_non_null(out);
    size_t got = ZSTD_decompress(out, (size_t)want, z, (size_t)n);
    assert_false(ZSTD_isError(got));
    assert_int_equal(got, want);
    free(z);
    *size = got;
    return out;
}
