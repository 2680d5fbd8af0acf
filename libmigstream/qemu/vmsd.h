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

/* The bounds of docs/SECURITY.md ("Cost") on the trailer. Parsed, it may
 * take MQ_VMSD_PARSED_PER_BYTE bytes of memory per byte of JSON, plus
 * MQ_VMSD_PARSED_MIN (jansson's nodes, estimated before parsing; QEMU's
 * trailers take 12 to 15). A section is decoded into fields only when its
 * description's walk takes at most MQ_VMSD_STEPS_PER_BYTE steps (fields,
 * elements, subsections) per byte of the section plus MQ_VMSD_STEPS_MIN,
 * and writes at most MQ_VMSD_OUT_PER_BYTE bytes of CBOR per byte plus
 * MQ_VMSD_OUT_MIN (QEMU 7.2's take at most 1 step and 17 bytes per byte,
 * counted the way these are), within a record. */
#define MQ_VMSD_PARSED_PER_BYTE 24u
#define MQ_VMSD_PARSED_MIN (64u << 10)
#define MQ_VMSD_STEPS_PER_BYTE 4u
#define MQ_VMSD_STEPS_MIN 64u
#define MQ_VMSD_OUT_PER_BYTE 32u
#define MQ_VMSD_OUT_MIN 512u

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
 * NULL (no fields). Fields are decoded only within the bounds above. *decoded tells whether the
 * field map is present; *schema points to the vmsd name from the trailer, or NULL. MS_ENOMEM only.
 */
int mq_vmsd_encode(const ms_allocator *a, mq_vmsd *desc, const mq_vmsd_section *s,
                   const uint8_t *raw, size_t n, const uint64_t *parts, size_t nparts, msi_buf *out,
                   bool *decoded, const char **schema);

/* ------------------------------------------------------------- checks */

/* What the trailer says of a section's bytes (docs/QEMU.md section 3.2). */
typedef enum mq_vmsd_verdict {
    MQ_VMSD_OK,          /* described, and the bytes are what it accounts for */
    MQ_VMSD_NONE,        /* nothing to check: no description of any device,
                            or an iterable section, which QEMU never describes */
    MQ_VMSD_UNDESCRIBED, /* no description of its name and instance */
    MQ_VMSD_INSTANCE,    /* descriptions of its name for other instances only
                            (instance: the first of them) */
    MQ_VMSD_VERSION,     /* described at another version (version) */
    MQ_VMSD_SIZE,        /* the fields account for expected bytes, not n */
    MQ_VMSD_MARKER,      /* a subsection's header is not at byte at (what) */
    MQ_VMSD_MALFORMED,   /* the description cannot be walked (what) */
} mq_vmsd_verdict;

typedef struct mq_vmsd_check {
    mq_vmsd_verdict verdict;
    const char *vmsd_name; /* of the description, or NULL (views into it) */
    long long instance, version;
    uint64_t expected;
    size_t at;
    char what[200];
} mq_vmsd_check;

/*
 * Checks section @s, whose bytes are @raw[0, @n), against the trailer: its
 * description (by name and instance) and the bytes that its fields and
 * subsections account for, with each subsection's header where the
 * description puts it. The description found is marked as used (see
 * mq_vmsd_unused). @desc may be NULL (MQ_VMSD_NONE). MS_ENOMEM only.
 */
int mq_vmsd_check_section(mq_vmsd *desc, const mq_vmsd_section *s, const uint8_t *raw, size_t n,
                          mq_vmsd_check *out);

/* The next description (from *@iter, 0 first) that no section was checked
 * against: its name, instance and vmsd name (NULL when it has none), and
 * whether an earlier description has the same name and instance. false
 * when there is none left. */
bool mq_vmsd_unused(const mq_vmsd *desc, size_t *iter, const char **name, long long *instance,
                    const char **vmsd_name, bool *twice);

#endif /* MSI_QEMU_VMSD_H */
