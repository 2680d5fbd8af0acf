/*
 * The order of a libxc stream's records (docs/XEN.md section 2.3): what
 * Xen's spec requires of records across the stream, checked the same way
 * on what the importer reads and on what the exporter writes. A record on
 * its own is records.c's.
 *
 * Version 3 mandates STATIC_DATA_END, once, before any memory or register
 * content, with the CPUID and MSR policies before it; an x86 PV stream
 * sends X86_PV_INFO, then X86_PV_P2M_FRAMES, then PAGE_DATA, then the vCPU
 * records; an HVM stream sends HVM_PARAMS before HVM_CONTEXT.
 *
 * Owns: mx_rules. Calls: wire.h only.
 */
#ifndef MSI_XEN_RULES_H
#define MSI_XEN_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen/wire.h"

typedef struct mx_rules {
    uint32_t version; /* the image header's: 2 or 3 */
    uint32_t domain;  /* the domain header's type */
    bool static_end;  /* STATIC_DATA_END came */
    bool pv_info;     /* X86_PV_INFO came */
    uint8_t width;    /* its guest width */
    bool p2m;         /* an X86_PV_P2M_FRAMES came */
    bool pages;       /* a PAGE_DATA came */
    bool params;      /* an HVM_PARAMS came */
} mx_rules;

void mx_rules_init(mx_rules *r, uint32_t version, uint32_t domain);

/* Whether a STATIC_DATA_END must come before a record of @type. */
bool mx_rules_need_static_end(const mx_rules *r, uint32_t type);

/* Why a libxc record of @type (its body @p, @len bytes, already checked on
 * its own) may not come now, written to @why; or NULL, with the record
 * taken into the state. */
const char *mx_rules_next(mx_rules *r, uint32_t type, const uint8_t *p, uint32_t len, char *why,
                          size_t size);

#endif /* MSI_XEN_RULES_H */
