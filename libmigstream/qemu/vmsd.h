/*
 * Device state (docs/QEMU.md section 3): QEMU's JSON trailer
 * (VMDESCRIPTION), which describes the fields of the device sections, and
 * the CBOR state of each DEVICE record: the section's raw bytes, the
 * lengths of its parts, and its fields where the trailer accounts for
 * every byte.
 *
 * Owns: the parsed trailer. Calls: input.h (errors), wire.h, jansson.
 */
#ifndef MSI_QEMU_VMSD_H
#define MSI_QEMU_VMSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "qemu/input.h"

typedef struct mq_vmsd mq_vmsd;

/* The section a state belongs to, as its header named it. */
typedef struct mq_vmsd_section {
    const char *idstr;
    uint32_t instance;
    uint32_t version;
    bool iterable; /* opened by START: the trailer describes no such section */
} mq_vmsd_section;

/* Parses the JSON trailer (read at @off). MS_ECORRUPT (failure set) when it
 * is not JSON or lacks "devices"; MS_ENOMEM. */
int mq_vmsd_parse(const ms_allocator *a, mq_error *e, const char *json, size_t len, uint64_t off,
                  mq_vmsd **out);
/* NULL is fine. */
void mq_vmsd_free(const ms_allocator *a, mq_vmsd *d);
/* QEMU's page size as the trailer gives it, or 0. */
uint64_t mq_vmsd_page_size(const mq_vmsd *d);

/* Appends to @out the CBOR state of a section's @n bytes @raw (docs/QEMU.md
 * section 3.1): {"raw": bytes[, "parts": [lengths]][, "fields": {...}]};
 * "parts" when @nparts > 0 (a section opened by START). @desc and @s may be
 * NULL (no fields). *decoded tells whether the field map is present;
 * *schema points to the vmsd name from the trailer, or NULL. MS_ENOMEM
 * only. */
int mq_vmsd_encode(const ms_allocator *a, const mq_vmsd *desc, const mq_vmsd_section *s,
                   const uint8_t *raw, size_t n, const uint64_t *parts, size_t nparts, msi_buf *out,
                   bool *decoded, const char **schema);

#endif /* MSI_QEMU_VMSD_H */
