/*
 * Framing (FORMAT.md sections 3 and 4): preamble encoding, record headers and
 * the checksum chain. Decoding the preamble lives in reader.c, where its
 * errors are reported with the reader's context.
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "format/frame.h"
#include "common/util.h"

/* 0x89 keeps the stream from looking like text; CR LF and SUB catch
 * line-ending translation, as in PNG's signature. */
const uint8_t msi_magic[MSI_MAGIC_LEN] = {0x89, 'M', 'I', 'G', 'S', '\r', '\n', 0x1a};

static void put_text_field(uint8_t *dst, const char *s)
{
    memset(dst, 0, MS_WRITER_FIELD_LEN);
    memcpy(dst, s, msi_strnlen(s, MS_WRITER_FIELD_LEN));
}

uint64_t msi_preamble_checksum(const uint8_t *p, size_t header_size)
{
    return XXH3_64bits_withSeed(p, header_size - 8, 0);
}

uint16_t msi_minor_for(uint64_t features)
{
    return features & MS_FEATURE_PARTS ? 2 : 1;
}

void msi_preamble_encode(ms_header *h, uint8_t *out)
{
    memset(out, 0, MSI_PREAMBLE_SIZE);
    memcpy(out, msi_magic, MSI_MAGIC_LEN);
    msi_put16(out + 8, h->major);
    msi_put16(out + 10, h->minor);
    msi_put32(out + 12, MSI_PREAMBLE_SIZE);
    msi_put64(out + 16, h->required_features);
    msi_put64(out + 24, h->optional_features);
    msi_put32(out + 32, h->page_size);
    /* 36..39 reserved, zero */
    put_text_field(out + 40, h->writer_name);
    put_text_field(out + 72, h->writer_version);
    h->checksum = msi_preamble_checksum(out, MSI_PREAMBLE_SIZE);
    msi_put64(out + MSI_PREAMBLE_SIZE - 8, h->checksum);
}

void msi_record_header(uint8_t *hdr, uint16_t type, uint16_t flags, uint32_t length)
{
    msi_put16(hdr, type);
    msi_put16(hdr + 2, flags);
    msi_put32(hdr + 4, length);
    memset(hdr + 8, 0, 8);
}

void *msi_hash_state_new(void)
{
    return XXH3_createState();
}

void msi_hash_state_free(void *state)
{
    XXH3_freeState(state);
}

uint64_t msi_record_checksum(void *state, uint64_t seed, const uint8_t *hdr,
                             const struct iovec *iov, int iovcnt)
{
    XXH3_state_t *st = state;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (iovcnt <= 1 && total < 4096) {
        /* Small records: one-shot hashing of a contiguous copy is cheaper
         * than setting up the streaming state. */
        uint8_t tmp[8 + 4096];
        memcpy(tmp, hdr, 8);
        if (iovcnt == 1 && total)
            memcpy(tmp + 8, iov[0].iov_base, total);
        return XXH3_64bits_withSeed(tmp, 8 + total, seed);
    }
    XXH3_64bits_reset_withSeed(st, seed);
    XXH3_64bits_update(st, hdr, 8);
    for (int i = 0; i < iovcnt; i++)
        XXH3_64bits_update(st, iov[i].iov_base, iov[i].iov_len);
    return XXH3_64bits_digest(st);
}

const char *msi_record_name(uint16_t type, char tmp[16])
{
    const char *name = ms_record_type_name(type);
    if (name)
        return name;
    snprintf(tmp, 16, "type 0x%04x", type);
    return tmp;
}
