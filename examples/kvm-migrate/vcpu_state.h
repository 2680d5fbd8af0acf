/*
 * The vCPU's state as libmigstream device records: one record per KVM
 * state block (general registers, special registers, FPU), each a CBOR map
 * of field names to values, described by schema.json.
 */
#ifndef KVM_MIGRATE_VCPU_STATE_H
#define KVM_MIGRATE_VCPU_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "vm.h"

enum { VCPU_REGS, VCPU_SREGS, VCPU_FPU, VCPU_PARTS };

/* Device path, schema name and schema version of part @p part. */
const char *vcpu_part_path(int part);
const char *vcpu_part_schema(int part);
uint32_t vcpu_part_version(int part);
/* The part whose device path is @p path, or -1. */
int vcpu_part_find(const char *path);

/* Encodes part @p part of @p s as a CBOR map into a malloc'd buffer. */
int vcpu_encode(const vcpu_state *s, int part, uint8_t **out, size_t *out_len);

/* Decodes a CBOR map written by vcpu_encode() into part @p part of @p s.
 * Every field must be present once, of its type and in its range; -1 with
 * the reason in @p err otherwise. */
int vcpu_decode(vcpu_state *s, int part, const uint8_t *cbor, size_t len, char *err,
                size_t err_len);

#endif
