/*
 * Fuzz target: CBOR text and comparison (cbor.h) on untrusted device state.
 * The input's first byte picks where to split it into the two sides of a
 * diff; both sides are also formatted in both forms.
 */
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

static int count(void *ctx, const char *path, const uint8_t *a, size_t an, const uint8_t *b,
                 size_t bn)
{
    char text[64];
    *(size_t *)ctx += strlen(path);
    if (a)
        ms_cbor_format(a, an, MS_CBOR_DIAG, 0, text, sizeof text);
    if (b)
        ms_cbor_format(b, bn, MS_CBOR_JSON, 0, text, sizeof text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[512];
    size_t paths = 0;
    if (size == 0)
        return 0;
    size_t cut = 1 + (size - 1) * data[0] / 256;
    const uint8_t *a = data + 1, *b = data + cut;
    size_t an = cut - 1, bn = size - cut;
    ms_cbor_format(a, an, MS_CBOR_DIAG, 0, text, sizeof text);
    ms_cbor_format(a, an, MS_CBOR_JSON, 200, text, sizeof text);
    ms_cbor_format(b, bn, MS_CBOR_JSON, 0, NULL, 0);
    ms_cbor_diff(a, an, b, bn, count, &paths);
    ms_cbor_diff(a, an, a, an, count, &paths);
    return 0;
}
