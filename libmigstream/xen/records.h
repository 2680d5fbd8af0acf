/*
 * Xen's records, one table for both directions (docs/XEN.md sections 2
 * and 4): each libxc and libxl record type with its name, the guests it
 * belongs to, the body lengths Xen's spec allows, the DEVICE it becomes
 * (path, schema, instance) and the CBOR state it is kept in; the way back
 * from a DEVICE path to its record; and the states of the headers and of
 * page types.
 *
 * Owns: the table and every per-record rule (a record on its own). Rules
 * that span records are rules.c's. Calls: wire.h, input.h (integers) and
 * common/ only.
 */
#ifndef MSI_XEN_RECORDS_H
#define MSI_XEN_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "xen/wire.h"

typedef enum mx_side {
    MX_SIDE_LIBXC = 0,
    MX_SIDE_LIBXL = 1,
} mx_side;

/* The guests a record belongs to (a domain header type as a bit). */
#define MX_G_PV (1u << MS_XEN_DOMAIN_PV)
#define MX_G_HVM (1u << MS_XEN_DOMAIN_HVM)
#define MX_G_ANY (MX_G_PV | MX_G_HVM)

/* How the DEVICE's instance is chosen. */
typedef enum mx_inst {
    MX_INST_ZERO,    /* 0: a later record replaces the earlier (state per checkpoint) */
    MX_INST_ORDINAL, /* counts the records of this path from 0: each one kept */
    MX_INST_INDEX,   /* the emulator's index */
} mx_inst;

/* Lengths a body may have. */
typedef enum mx_len {
    MX_LEN_EXACT,   /* exactly len */
    MX_LEN_MIN,     /* at least len */
    MX_LEN_MULT,    /* a multiple of len, 0 included */
    MX_LEN_MULT_NZ, /* a non-zero multiple of len */
    MX_LEN_NONZERO, /* any but 0 */
    MX_LEN_ANY,
} mx_len;

typedef struct mx_rec_info {
    uint32_t type;
    uint8_t side;        /* mx_side */
    const char *name;    /* Xen's: "HVM_CONTEXT" */
    const char *path;    /* the DEVICE's: "xen/hvm_context"; vCPU records: the
                            last part, "basic"; NULL: no DEVICE (framing) */
    uint8_t guests;      /* MX_G_* */
    uint8_t min_version; /* libxc image version it needs (3: static data) */
    uint8_t len_rule;    /* mx_len */
    uint32_t len;
    uint8_t inst;  /* mx_inst */
    bool vcpu;     /* X86_PV_VCPU_*: u32 vcpu_id, u32 reserved, context */
    bool emulator; /* EMULATOR_*: u32 emulator_id, u32 index, data */
} mx_rec_info;

/* The entry of a known type, or NULL. */
const mx_rec_info *mx_rec_lookup(mx_side side, uint32_t type);
/* Xen's name of a record type; "unknown optional" / "unknown mandatory"
 * for one this library does not know. Static. */
const char *mx_rec_name(mx_side side, uint32_t type);
/* "x86 HVM", "x86 PV", or NULL. */
const char *mx_domain_name(uint32_t type);
/* "qemu-upstream" ...; NULL past the ids the spec names. */
const char *mx_emulator_name(uint32_t id);

/* Why @body (@len bytes) cannot be a record of @ri in a stream of image
 * @version (0: not known yet) and domain type @domain (0: not known), or
 * NULL; the message is written to @why. Checks the record on its own:
 * its length, its guests, and what the spec fixes in its fields. */
const char *mx_rec_check(const mx_rec_info *ri, uint32_t version, uint32_t domain,
                         const uint8_t *body, uint32_t len, char *why, size_t size);

/* The DEVICE of a record: path (at most MX_PATH_MAX bytes with its NUL),
 * schema and instance. @ri NULL: an unknown optional record of @type.
 * @ordinal: how many records of the same path came before. */
#define MX_PATH_MAX 64u
void mx_rec_device(mx_side side, uint32_t type, const mx_rec_info *ri, const uint8_t *body,
                   uint32_t len, uint32_t ordinal, char path[MX_PATH_MAX], const char **schema,
                   uint32_t *instance);

/* The DEVICE's state, appended to @b: {"raw": body, "fields": {...}}, with
 * "fields" only for what the spec defines. 0 or MS_ENOMEM / MS_ELIMIT. */
int mx_rec_state(msi_buf *b, mx_side side, uint32_t type, const mx_rec_info *ri,
                 const uint8_t *body, uint32_t len);

/* The state of "xen/header" (the image header's 24 and the domain header's
 * 16 bytes, as on the wire) and of "xen/libxl/header" (16 bytes). */
int mx_header_state(msi_buf *b, const uint8_t raw[MX_IHDR_SIZE + MX_DHDR_SIZE]);
int mx_libxl_header_state(msi_buf *b, const uint8_t raw[MX_LIBXL_HEADER_SIZE]);
/* The state of "xen/page_types": @n pfn entries of a PAGE_DATA record as on
 * the wire (type << 60 | pfn), reserved bits clear. */
int mx_page_types_state(msi_buf *b, const uint8_t *entries, size_t n);

/* Paths of the DEVICE records that are no Xen record. */
#define MX_PATH_HEADER "xen/header"
#define MX_PATH_LIBXL_HEADER "xen/libxl/header"
#define MX_PATH_PAGE_TYPES "xen/page_types"

/* What a DEVICE path names, for the export. */
typedef enum mx_path_kind {
    MX_PK_RECORD,       /* a record: side, type, ri (NULL for optional) */
    MX_PK_HEADER,       /* xen/header */
    MX_PK_LIBXL_HEADER, /* xen/libxl/header */
    MX_PK_PAGE_TYPES,   /* xen/page_types */
} mx_path_kind;

typedef struct mx_path_rec {
    mx_path_kind kind;
    mx_side side;
    uint32_t type;
    const mx_rec_info *ri; /* NULL: an optional record the table lacks */
    uint32_t vcpu_id;      /* vCPU records: the id in the path */
    uint32_t emulator_id;  /* emulator records: the id the path names */
} mx_path_rec;

/* Reads @path: 0 with @out set, or -1 when it names no Xen record. */
int mx_rec_from_path(const char *path, mx_path_rec *out);

/* Why the body of a device does not match its path and instance (a vCPU
 * id, an emulator id or index other than the path's), or NULL. */
const char *mx_rec_matches(const mx_path_rec *pr, uint32_t instance, const uint8_t *body,
                           uint32_t len, char *why, size_t size);

/* Clears the fields of @body (a copy about to be written) that the spec
 * reserves: "set to zero on save". */
void mx_rec_zero_reserved(const mx_rec_info *ri, uint8_t *body, uint32_t len);

#endif /* MSI_XEN_RECORDS_H */
