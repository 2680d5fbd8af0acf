/*
 * Framing (FORMAT.md sections 3 and 4): the preamble, the 16-byte record
 * header, and the chained XXH3-64 record checksum.
 */
#ifndef MSI_FRAME_H
#define MSI_FRAME_H

#include <stdint.h>
#include <sys/uio.h>

#include "migstream/stream.h"

#define MSI_MAGIC_LEN 8
extern const uint8_t msi_magic[MSI_MAGIC_LEN];

#define MSI_PREAMBLE_SIZE 112u     /* header_size written by format 1.0 */
#define MSI_PREAMBLE_MAX 4096u     /* largest header_size a 1.x reader accepts */
#define MSI_PREAMBLE_FIXED 16u     /* magic, major, minor, header_size */
#define MSI_RECORD_HEADER 16u

/* Feature bits known to this library (FORMAT.md section 3.2). */
#define MSI_KNOWN_REQUIRED_FEATURES                                                                \
    (MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS |          \
     MS_FEATURE_PARTS)
#define MSI_KNOWN_OPTIONAL_FEATURES 0u

/* The minor version a writer stamps on a stream that requires @features:
 * the lowest that defines them all, never below 1 (FORMAT.md section
 * 11.2), so that a stream using nothing of a later minor keeps its bytes. */
uint16_t msi_minor_for(uint64_t features);

/* Encodes the 1.0 preamble into out[MSI_PREAMBLE_SIZE] and sets h->checksum. */
void msi_preamble_encode(ms_header *h, uint8_t *out);

/* Record header: fills bytes 0..7 (type, flags, length); bytes 8..15 take the
 * checksum once it is known. */
void msi_record_header(uint8_t *hdr, uint16_t type, uint16_t flags, uint32_t length);

/* Checksum of a record whose header bytes 0..7 are @hdr and whose payload is
 * the concatenation of @iov, chained from @seed (the previous record's
 * checksum, or the preamble's). */
uint64_t msi_record_checksum(void *state, uint64_t seed, const uint8_t *hdr,
                             const struct iovec *iov, int iovcnt);
/* A streaming hash state, one per writer or reader (xxHash's state layout
 * is not part of its stable ABI, so it is allocated by the library). */
void *msi_hash_state_new(void);
void msi_hash_state_free(void *state);
uint64_t msi_preamble_checksum(const uint8_t *p, size_t header_size);

/* Name of a record type for messages ("PAGES", or "type 0x0042"). The result
 * is static for known types and uses @tmp (16 bytes) otherwise. */
const char *msi_record_name(uint16_t type, char tmp[16]);

#endif /* MSI_FRAME_H */
