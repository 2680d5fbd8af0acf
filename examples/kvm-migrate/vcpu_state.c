/*
 * vCPU state <-> CBOR (vcpu_state.h). The field tables below are the whole
 * schema: names, sizes and kinds; schema.json says the same for the tools.
 * Padding in KVM's structs is not carried.
 */
#include "vcpu_state.h"

#include <migstream/cbor.h>

#include <cbor.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { F_UINT, F_BYTES, F_SEGMENT, F_DTABLE } kind;

typedef struct field {
    const char *name;
    size_t off, size;
    kind k;
} field;

#define UINT(st, m) {#m, offsetof(st, m), sizeof(((st *)0)->m), F_UINT}
#define BYTES(st, m) {#m, offsetof(st, m), sizeof(((st *)0)->m), F_BYTES}
#define SEG(m) {#m, offsetof(struct kvm_sregs, m), sizeof(struct kvm_segment), F_SEGMENT}
#define DT(m) {#m, offsetof(struct kvm_sregs, m), sizeof(struct kvm_dtable), F_DTABLE}

static const field regs_fields[] = {
    UINT(struct kvm_regs, rax), UINT(struct kvm_regs, rbx), UINT(struct kvm_regs, rcx),
    UINT(struct kvm_regs, rdx), UINT(struct kvm_regs, rsi), UINT(struct kvm_regs, rdi),
    UINT(struct kvm_regs, rsp), UINT(struct kvm_regs, rbp), UINT(struct kvm_regs, r8),
    UINT(struct kvm_regs, r9),  UINT(struct kvm_regs, r10), UINT(struct kvm_regs, r11),
    UINT(struct kvm_regs, r12), UINT(struct kvm_regs, r13), UINT(struct kvm_regs, r14),
    UINT(struct kvm_regs, r15), UINT(struct kvm_regs, rip), UINT(struct kvm_regs, rflags),
};

static const field segment_fields[] = {
    UINT(struct kvm_segment, base),    UINT(struct kvm_segment, limit),
    UINT(struct kvm_segment, selector), UINT(struct kvm_segment, type),
    UINT(struct kvm_segment, present), UINT(struct kvm_segment, dpl),
    UINT(struct kvm_segment, db),      UINT(struct kvm_segment, s),
    UINT(struct kvm_segment, l),       UINT(struct kvm_segment, g),
    UINT(struct kvm_segment, avl),     UINT(struct kvm_segment, unusable),
};

static const field dtable_fields[] = {
    UINT(struct kvm_dtable, base),
    UINT(struct kvm_dtable, limit),
};

static const field sregs_fields[] = {
    SEG(cs), SEG(ds), SEG(es), SEG(fs), SEG(gs), SEG(ss), SEG(tr), SEG(ldt),
    DT(gdt), DT(idt),
    UINT(struct kvm_sregs, cr0), UINT(struct kvm_sregs, cr2), UINT(struct kvm_sregs, cr3),
    UINT(struct kvm_sregs, cr4), UINT(struct kvm_sregs, cr8), UINT(struct kvm_sregs, efer),
    UINT(struct kvm_sregs, apic_base), BYTES(struct kvm_sregs, interrupt_bitmap),
};

static const field fpu_fields[] = {
    BYTES(struct kvm_fpu, fpr),       UINT(struct kvm_fpu, fcw),
    UINT(struct kvm_fpu, fsw),        UINT(struct kvm_fpu, ftwx),
    UINT(struct kvm_fpu, last_opcode), UINT(struct kvm_fpu, last_ip),
    UINT(struct kvm_fpu, last_dp),    BYTES(struct kvm_fpu, xmm),
    UINT(struct kvm_fpu, mxcsr),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct part {
    const char *path, *schema;
    const field *fields;
    size_t nfields;
    size_t off; /* of the KVM struct in vcpu_state */
} parts[VCPU_PARTS] = {
    {"vcpu0/regs", "kvm-x86-regs", regs_fields, COUNT(regs_fields), offsetof(vcpu_state, regs)},
    {"vcpu0/sregs", "kvm-x86-sregs", sregs_fields, COUNT(sregs_fields),
     offsetof(vcpu_state, sregs)},
    {"vcpu0/fpu", "kvm-x86-fpu", fpu_fields, COUNT(fpu_fields), offsetof(vcpu_state, fpu)},
};

const char *vcpu_part_path(int part)
{
    return parts[part].path;
}

const char *vcpu_part_schema(int part)
{
    return parts[part].schema;
}

uint32_t vcpu_part_version(int part)
{
    (void)part;
    return 1;
}

int vcpu_part_find(const char *path)
{
    for (int i = 0; i < VCPU_PARTS; i++)
        if (strcmp(parts[i].path, path) == 0)
            return i;
    return -1;
}

static uint64_t load_uint(const uint8_t *p, size_t size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static void store_uint(uint8_t *p, size_t size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

static const field *sub_fields(kind k, size_t *n)
{
    if (k == F_SEGMENT) {
        *n = COUNT(segment_fields);
        return segment_fields;
    }
    *n = COUNT(dtable_fields);
    return dtable_fields;
}

/* A map of @p n fields read from the struct at @p base; NULL when out of
 * memory. */
static cbor_item_t *encode_map(const uint8_t *base, const field *f, size_t n)
{
    cbor_item_t *map = cbor_new_definite_map(n);
    if (!map)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = base + f[i].off;
        cbor_item_t *val;
        if (f[i].k == F_UINT) {
            val = cbor_build_uint64(load_uint(p, f[i].size));
        } else if (f[i].k == F_BYTES) {
            val = cbor_build_bytestring(p, f[i].size);
        } else {
            size_t m;
            const field *sub = sub_fields(f[i].k, &m);
            val = encode_map(p, sub, m);
        }
        cbor_item_t *key = cbor_build_string(f[i].name);
        bool ok = val && key &&
                  cbor_map_add(map, (struct cbor_pair){.key = cbor_move(key), .value = cbor_move(val)});
        if (!ok) {
            cbor_decref(&map);
            return NULL;
        }
    }
    return map;
}

int vcpu_encode(const vcpu_state *s, int part, uint8_t **out, size_t *out_len)
{
    const struct part *pt = &parts[part];
    cbor_item_t *map = encode_map((const uint8_t *)s + pt->off, pt->fields, pt->nfields);
    if (!map)
        return -1;
    size_t cap;
    *out_len = cbor_serialize_alloc(map, out, &cap);
    cbor_decref(&map);
    return *out_len ? 0 : -1;
}

static int bad(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char raw[512];
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    ms_escape_text(err, err_len, raw); /* field names from the stream */
    return -1;
}

/* The state comes from the stream: it is read one item head at a time
 * (ms_cbor_next), allocating nothing, never with libcbor's cbor_load, which
 * allocates what the input's counts declare. Nesting follows the field
 * tables, not the input. */
static int decode_map(uint8_t *base, const field *f, size_t n, const uint8_t *cbor, size_t len,
                      size_t *pos, const char *where, char *err, size_t err_len)
{
    ms_cbor_item it;
    if (ms_cbor_next(cbor, len, pos, &it) || it.kind != MS_CBOR_MAP)
        return bad(err, err_len, "%s: not a map", where);
    if (it.u > n) /* each key once, each known */
        return bad(err, err_len, "%s: %llu fields, more than the %zu it has", where,
                   (unsigned long long)it.u, n);
    bool seen[32] = {false};
    for (uint64_t i = 0, count = it.u; i < count; i++) {
        ms_cbor_item k, v;
        if (ms_cbor_next(cbor, len, pos, &k) || k.kind != MS_CBOR_TEXT)
            return bad(err, err_len, "%s: a key is not a text string", where);
        size_t j = 0;
        while (j < n && !(strlen(f[j].name) == k.len && memcmp(f[j].name, k.str, k.len) == 0))
            j++;
        if (j == n)
            return bad(err, err_len, "%s: unknown field '%.*s'", where, (int)(k.len < 64 ? k.len : 64),
                       (const char *)k.str);
        if (seen[j])
            return bad(err, err_len, "%s.%s: given twice", where, f[j].name);
        seen[j] = true;
        uint8_t *p = base + f[j].off;
        if (f[j].k == F_UINT) {
            if (ms_cbor_next(cbor, len, pos, &v) || v.kind != MS_CBOR_UINT)
                return bad(err, err_len, "%s.%s: not an unsigned integer", where, f[j].name);
            if (f[j].size < 8 && v.u >> (8 * f[j].size))
                return bad(err, err_len, "%s.%s: %llu does not fit in %zu bytes", where, f[j].name,
                           (unsigned long long)v.u, f[j].size);
            store_uint(p, f[j].size, v.u);
        } else if (f[j].k == F_BYTES) {
            if (ms_cbor_next(cbor, len, pos, &v) || v.kind != MS_CBOR_BYTES || v.len != f[j].size)
                return bad(err, err_len, "%s.%s: not a byte string of %zu bytes", where, f[j].name,
                           f[j].size);
            memcpy(p, v.str, f[j].size);
        } else {
            char sub_where[64];
            snprintf(sub_where, sizeof sub_where, "%s.%s", where, f[j].name);
            size_t m;
            const field *sub = sub_fields(f[j].k, &m);
            if (decode_map(p, sub, m, cbor, len, pos, sub_where, err, err_len))
                return -1;
        }
    }
    for (size_t j = 0; j < n; j++)
        if (!seen[j])
            return bad(err, err_len, "%s.%s: missing", where, f[j].name);
    return 0;
}

int vcpu_decode(vcpu_state *s, int part, const uint8_t *cbor, size_t len, char *err,
                size_t err_len)
{
    const struct part *pt = &parts[part];
    size_t pos = 0;
    if (decode_map((uint8_t *)s + pt->off, pt->fields, pt->nfields, cbor, len, &pos, pt->path, err,
                   err_len))
        return -1;
    if (pos != len)
        return bad(err, err_len, "%s: bytes after the state", pt->path);
    return 0;
}
