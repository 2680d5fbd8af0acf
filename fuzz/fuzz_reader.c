/*
 * Fuzz target: the stream reader over a whole stream, as bytes arrive from
 * an untrusted source. Reads strictly, then leniently (the validator's
 * mode), touching every view the reader hands out so that AddressSanitizer
 * checks their bounds. Most random inputs stop at a checksum; fuzz_records
 * goes past them.
 */
#include <stddef.h>
#include <stdint.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_read_stream(data, size);
    return 0;
}
