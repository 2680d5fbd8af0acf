/*
 * Xen's records (records.h): the table of libxc and libxl record types and
 * what each becomes. Lengths and fields are those of Xen's specs
 * (libxc-migration-stream.pandoc revision 3 section 4, libxl-migration-
 * stream.pandoc revision 2 section 5); where Xen's own restore code checks
 * more than the spec says (the X86_PV_INFO width and levels, an emulator
 * id), the table follows the restore, since an export must be restorable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/cbor_codec.h"
#include "xen/input.h"
#include "xen/records.h"

#define V(t, n, p, g, mv, lr, l, in)                                                               \
    {                                                                                              \
        .type = (t), .side = MX_SIDE_LIBXC, .name = (n), .path = (p), .guests = (g),               \
        .min_version = (mv), .len_rule = (lr), .len = (l), .inst = (in)                            \
    }
#define VCPU(t, n, p)                                                                              \
    {                                                                                              \
        .type = (t), .side = MX_SIDE_LIBXC, .name = (n), .path = (p), .guests = MX_G_PV,           \
        .len_rule = MX_LEN_MIN, .len = 8, .inst = MX_INST_ZERO, .vcpu = true                       \
    }
#define L(t, n, p, lr, l, in, emu)                                                                 \
    {                                                                                              \
        .type = (t), .side = MX_SIDE_LIBXL, .name = (n), .path = (p), .guests = MX_G_ANY,          \
        .len_rule = (lr), .len = (l), .inst = (in), .emulator = (emu)                              \
    }

/* Indexed by type; the libxl table after the libxc one. */
static const mx_rec_info libxc_table[MX_LIBXC_TYPES] = {
    V(MX_END, "END", NULL, MX_G_ANY, 0, MX_LEN_EXACT, 0, MX_INST_ZERO),
    /* PAGE_DATA's length follows from its pfns: the source checks it. */
    V(MX_PAGE_DATA, "PAGE_DATA", NULL, MX_G_ANY, 0, MX_LEN_MIN, 8, MX_INST_ZERO),
    V(MX_X86_PV_INFO, "X86_PV_INFO", "xen/x86_pv_info", MX_G_PV, 0, MX_LEN_EXACT, 8, MX_INST_ZERO),
    /* A later record may grow the p2m: each one is kept. */
    V(MX_X86_PV_P2M_FRAMES, "X86_PV_P2M_FRAMES", "xen/x86_pv_p2m_frames", MX_G_PV, 0, MX_LEN_MIN, 8,
      MX_INST_ORDINAL),
    VCPU(MX_X86_PV_VCPU_BASIC, "X86_PV_VCPU_BASIC", "basic"),
    VCPU(MX_X86_PV_VCPU_EXTENDED, "X86_PV_VCPU_EXTENDED", "extended"),
    VCPU(MX_X86_PV_VCPU_XSAVE, "X86_PV_VCPU_XSAVE", "xsave"),
    V(MX_SHARED_INFO, "SHARED_INFO", "xen/shared_info", MX_G_PV, 0, MX_LEN_EXACT, 4096,
      MX_INST_ZERO),
    V(MX_X86_TSC_INFO, "X86_TSC_INFO", "xen/x86_tsc_info", MX_G_ANY, 0, MX_LEN_EXACT, 24,
      MX_INST_ZERO),
    V(MX_HVM_CONTEXT, "HVM_CONTEXT", "xen/hvm_context", MX_G_HVM, 0, MX_LEN_NONZERO, 0,
      MX_INST_ZERO),
    V(MX_HVM_PARAMS, "HVM_PARAMS", "xen/hvm_params", MX_G_HVM, 0, MX_LEN_MIN, 8, MX_INST_ZERO),
    V(MX_TOOLSTACK, "TOOLSTACK", "xen/toolstack", MX_G_ANY, 0, MX_LEN_ANY, 0, MX_INST_ZERO),
    VCPU(MX_X86_PV_VCPU_MSRS, "X86_PV_VCPU_MSRS", "msrs"),
    V(MX_VERIFY, "VERIFY", "xen/verify", MX_G_ANY, 0, MX_LEN_EXACT, 0, MX_INST_ORDINAL),
    V(MX_CHECKPOINT, "CHECKPOINT", "xen/checkpoint", MX_G_ANY, 0, MX_LEN_EXACT, 0, MX_INST_ORDINAL),
    V(MX_CHECKPOINT_DIRTY_PFN_LIST, "CHECKPOINT_DIRTY_PFN_LIST", "xen/checkpoint_dirty_pfn_list",
      MX_G_ANY, 0, MX_LEN_MULT, 8, MX_INST_ORDINAL),
    V(MX_STATIC_DATA_END, "STATIC_DATA_END", "xen/static_data_end", MX_G_ANY, 3, MX_LEN_EXACT, 0,
      MX_INST_ZERO),
    V(MX_X86_CPUID_POLICY, "X86_CPUID_POLICY", "xen/x86_cpuid_policy", MX_G_ANY, 3, MX_LEN_MULT_NZ,
      24, MX_INST_ZERO),
    V(MX_X86_MSR_POLICY, "X86_MSR_POLICY", "xen/x86_msr_policy", MX_G_ANY, 3, MX_LEN_MULT_NZ, 16,
      MX_INST_ZERO),
};

static const mx_rec_info libxl_table[MX_LIBXL_TYPES] = {
    L(MX_XL_END, "END", NULL, MX_LEN_EXACT, 0, MX_INST_ZERO, false),
    L(MX_XL_LIBXC_CONTEXT, "LIBXC_CONTEXT", NULL, MX_LEN_EXACT, 0, MX_INST_ZERO, false),
    L(MX_XL_EMULATOR_XENSTORE_DATA, "EMULATOR_XENSTORE_DATA", "xenstore", MX_LEN_MIN, 8,
      MX_INST_INDEX, true),
    L(MX_XL_EMULATOR_CONTEXT, "EMULATOR_CONTEXT", "context", MX_LEN_MIN, 8, MX_INST_INDEX, true),
    L(MX_XL_CHECKPOINT_END, "CHECKPOINT_END", "xen/libxl/checkpoint_end", MX_LEN_EXACT, 0,
      MX_INST_ORDINAL, false),
    /* libxl writes the u32 control_id alone; the spec draws it padded. */
    L(MX_XL_CHECKPOINT_STATE, "CHECKPOINT_STATE", "xen/libxl/checkpoint_state", MX_LEN_MIN, 4,
      MX_INST_ORDINAL, false),
};

static const char *const emulator_names[MX_EMU_IDS] = {"unknown", "qemu-traditional",
                                                       "qemu-upstream"};
static const char *const control_names[] = {"CHECKPOINT_NEW", "CHECKPOINT_SVM_SUSPENDED",
                                            "CHECKPOINT_SVM_READY", "CHECKPOINT_SVM_RESUMED"};

const mx_rec_info *mx_rec_lookup(mx_side side, uint32_t type)
{
    if (side == MX_SIDE_LIBXC)
        return type < MX_LIBXC_TYPES ? &libxc_table[type] : NULL;
    return type < MX_LIBXL_TYPES ? &libxl_table[type] : NULL;
}

const char *mx_rec_name(mx_side side, uint32_t type)
{
    const mx_rec_info *ri = mx_rec_lookup(side, type);
    if (ri)
        return ri->name;
    return type & MX_REC_OPTIONAL ? "unknown optional" : "unknown mandatory";
}

const char *mx_domain_name(uint32_t type)
{
    return type == MS_XEN_DOMAIN_PV ? "x86 PV" : type == MS_XEN_DOMAIN_HVM ? "x86 HVM" : NULL;
}

const char *mx_emulator_name(uint32_t id)
{
    return id < MX_EMU_IDS ? emulator_names[id] : NULL;
}

/* ------------------------------------------------------------ checks */

__attribute__((format(printf, 3, 4))) static const char *say(char *why, size_t size,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(why, size, fmt, ap);
    va_end(ap);
    return why;
}

static const char *check_length(const mx_rec_info *ri, uint32_t len, char *why, size_t size)
{
    switch (ri->len_rule) {
    case MX_LEN_EXACT:
        if (len != ri->len)
            return say(why, size, "a body of %u bytes; %s has exactly %u", len, ri->name, ri->len);
        break;
    case MX_LEN_MIN:
        if (len < ri->len)
            return say(why, size, "a body of %u bytes; %s has at least %u", len, ri->name, ri->len);
        break;
    case MX_LEN_MULT:
    case MX_LEN_MULT_NZ:
        if (len % ri->len || (ri->len_rule == MX_LEN_MULT_NZ && len == 0))
            return say(why, size, "a body of %u bytes; %s holds %s%u-byte entries", len, ri->name,
                       ri->len_rule == MX_LEN_MULT_NZ ? "one or more " : "", ri->len);
        break;
    case MX_LEN_NONZERO:
        if (len == 0)
            return say(why, size, "an empty body; %s is never empty", ri->name);
        break;
    default:
        break;
    }
    return NULL;
}

/* Key/value strings, each NUL-terminated, back to back (libxl's
 * EMULATOR_XENSTORE_DATA): empty, or ending with NUL and an even count. */
static const char *check_xenstore(const uint8_t *p, uint32_t n, char *why, size_t size)
{
    if (n == 0)
        return NULL;
    if (p[n - 1] != 0)
        return say(why, size, "xenstore data of %u bytes does not end with a NUL", n);
    uint64_t strings = 0;
    for (uint32_t i = 0; i < n; i++)
        strings += p[i] == 0;
    if (strings % 2)
        return say(why, size, "xenstore data holds %llu strings, not key/value pairs",
                   (unsigned long long)strings);
    return NULL;
}

const char *mx_rec_check(const mx_rec_info *ri, uint32_t version, uint32_t domain,
                         const uint8_t *body, uint32_t len, char *why, size_t size)
{
    const char *bad = check_length(ri, len, why, size);
    if (bad)
        return bad;
    if (domain && ri->side == MX_SIDE_LIBXC && !(ri->guests & (1u << domain)))
        return say(why, size, "%s belongs to %s guests, and this is an %s stream", ri->name,
                   ri->guests == MX_G_PV ? "x86 PV" : "x86 HVM", mx_domain_name(domain));
    if (version && version < ri->min_version)
        return say(why, size,
                   "%s came with version %u of the libxc format; this stream is "
                   "version %u",
                   ri->name, ri->min_version, version);
    if (ri->side == MX_SIDE_LIBXC) {
        switch (ri->type) {
        case MX_X86_PV_INFO: {
            unsigned w = body[0], l = body[1];
            /* Xen's restore takes only the two combinations it can build. */
            if (!((w == 8 && l == 4) || (w == 4 && l == 3)))
                return say(why, size,
                           "guest width %u with %u page-table levels (a 64-bit guest "
                           "has 8 and 4, a 32-bit one 4 and 3)",
                           w, l);
            break;
        }
        case MX_X86_PV_P2M_FRAMES:
            if (len % 8)
                return say(why, size, "a body of %u bytes, not a multiple of 8", len);
            if (msi_get32(body) > msi_get32(body + 4))
                return say(why, size, "p2m_start_pfn 0x%x lies after p2m_end_pfn 0x%x",
                           msi_get32(body), msi_get32(body + 4));
            break;
        case MX_HVM_PARAMS: {
            uint64_t want = 8 + 16 * (uint64_t)msi_get32(body);
            if (len != want)
                return say(why, size, "count %u needs a body of %llu bytes, not %u",
                           msi_get32(body), (unsigned long long)want, len);
            break;
        }
        default:
            break;
        }
        return NULL;
    }
    if (ri->emulator) {
        uint32_t id = msi_get32(body);
        if (id >= MX_EMU_IDS)
            return say(why, size,
                       "emulator_id 0x%x is reserved (0 unknown, 1 qemu-traditional, "
                       "2 qemu-upstream)",
                       id);
        if (ri->type == MX_XL_EMULATOR_XENSTORE_DATA)
            return check_xenstore(body + MX_EMU_HEADER_SIZE, len - MX_EMU_HEADER_SIZE, why, size);
    }
    if (ri->type == MX_XL_CHECKPOINT_STATE && len > 8)
        return say(why, size,
                   "a body of %u bytes; CHECKPOINT_STATE holds a u32 control_id and at "
                   "most 4 bytes of padding",
                   len);
    return NULL;
}

/* ------------------------------------------------------------ devices */

void mx_rec_device(mx_side side, uint32_t type, const mx_rec_info *ri, const uint8_t *body,
                   uint32_t len, uint32_t ordinal, char path[MX_PATH_MAX], const char **schema,
                   uint32_t *instance)
{
    (void)len;
    if (!ri) {
        snprintf(path, MX_PATH_MAX, "xen/%soptional/0x%08x", side == MX_SIDE_LIBXL ? "libxl/" : "",
                 type);
        *schema = "OPTIONAL";
        *instance = ordinal;
        return;
    }
    *schema = ri->name;
    if (ri->vcpu)
        snprintf(path, MX_PATH_MAX, "xen/vcpu/%u/%s", msi_get32(body), ri->path);
    else if (ri->emulator)
        snprintf(path, MX_PATH_MAX, "xen/emulator/%s/%s",
                 msi_get32(body) < MX_EMU_IDS ? emulator_names[msi_get32(body)] : "reserved",
                 ri->path);
    else
        snprintf(path, MX_PATH_MAX, "%s", ri->path);
    *instance = ri->inst == MX_INST_ORDINAL ? ordinal
                : ri->inst == MX_INST_INDEX ? msi_get32(body + 4)
                                            : 0;
}

/* ------------------------------------------------------------ states */

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

static int key(msi_buf *b, const char *k)
{
    return msi_cbor_put_text(b, k, strlen(k));
}

static int kv_uint(msi_buf *b, const char *k, uint64_t v)
{
    TRY(key(b, k));
    return msi_cbor_put_uint(b, v);
}

static int kv_text(msi_buf *b, const char *k, const char *v)
{
    TRY(key(b, k));
    return msi_cbor_put_text(b, v, strlen(v));
}

/* A byte string as text when it is UTF-8, else as bytes. */
static int put_string(msi_buf *b, const uint8_t *p, size_t n)
{
    if (msi_utf8_ok(p, n, false))
        return msi_cbor_put_text(b, (const char *)p, n);
    return msi_cbor_put_bytes(b, p, n);
}

/* An array of @n entries of @size bytes, each an array of its fields: @widths
 * lists their sizes (4 or 8), 0-terminated. */
static int put_table(msi_buf *b, const uint8_t *p, size_t n, size_t size, const uint8_t *widths)
{
    size_t nf = strlen((const char *)widths);
    TRY(msi_cbor_put_array(b, n));
    for (size_t i = 0; i < n; i++, p += size) {
        TRY(msi_cbor_put_array(b, nf));
        size_t at = 0;
        for (size_t f = 0; f < nf; at += widths[f++])
            TRY(msi_cbor_put_uint(b, widths[f] == 8 ? msi_get64(p + at) : msi_get32(p + at)));
    }
    return 0;
}

/* The "fields" of a record: the number of keys (0: none), written to @b
 * when @b is set. */
static int fields(msi_buf *b, mx_side side, uint32_t type, const mx_rec_info *ri, const uint8_t *p,
                  uint32_t len, size_t *count)
{
    static const uint8_t u64s[] = {8, 0};
    static const uint8_t u32s6[] = {4, 4, 4, 4, 4, 4, 0};
    static const uint8_t msr[] = {4, 4, 8, 0};
    static const uint8_t pairs[] = {8, 8, 0};
    *count = 0;
    if (!ri) {
        *count = 1;
        return b ? kv_uint(b, "type", type) : 0;
    }
    if (ri->vcpu) {
        *count = 1;
        return b ? kv_uint(b, "vcpu_id", msi_get32(p)) : 0;
    }
    if (side == MX_SIDE_LIBXL) {
        if (ri->emulator) {
            uint32_t id = msi_get32(p);
            *count = ri->type == MX_XL_EMULATOR_XENSTORE_DATA ? 4 : 3;
            if (!b)
                return 0;
            TRY(kv_uint(b, "emulator_id", id));
            TRY(kv_text(b, "emulator", mx_emulator_name(id)));
            TRY(kv_uint(b, "index", msi_get32(p + 4)));
            if (ri->type != MX_XL_EMULATOR_XENSTORE_DATA)
                return 0;
            const uint8_t *d = p + MX_EMU_HEADER_SIZE, *end = p + len;
            size_t strings = 0;
            for (const uint8_t *q = d; q < end; q++)
                strings += *q == 0;
            TRY(key(b, "entries"));
            TRY(msi_cbor_put_array(b, strings / 2));
            while (d < end) {
                TRY(msi_cbor_put_array(b, 2));
                for (int k = 0; k < 2; k++) {
                    size_t n = strlen((const char *)d); /* NUL-terminated: checked */
                    TRY(put_string(b, d, n));
                    d += n + 1;
                }
            }
            return 0;
        }
        if (ri->type == MX_XL_CHECKPOINT_STATE) {
            uint32_t c = msi_get32(p);
            *count = c < 4 ? 2 : 1;
            if (!b)
                return 0;
            TRY(kv_uint(b, "control_id", c));
            return c < 4 ? kv_text(b, "control", control_names[c]) : 0;
        }
        return 0;
    }
    switch (type) {
    case MX_X86_PV_INFO:
        *count = 2;
        if (b) {
            TRY(kv_uint(b, "guest_width", p[0]));
            TRY(kv_uint(b, "pt_levels", p[1]));
        }
        return 0;
    case MX_X86_PV_P2M_FRAMES:
        *count = 3;
        if (b) {
            TRY(kv_uint(b, "p2m_start_pfn", msi_get32(p)));
            TRY(kv_uint(b, "p2m_end_pfn", msi_get32(p + 4)));
            TRY(key(b, "p2m_pfns"));
            TRY(msi_cbor_put_array(b, (len - 8) / 8));
            for (uint32_t at = 8; at < len; at += 8)
                TRY(msi_cbor_put_uint(b, msi_get64(p + at)));
        }
        return 0;
    case MX_X86_TSC_INFO:
        *count = 4;
        if (b) {
            TRY(kv_uint(b, "mode", msi_get32(p)));
            TRY(kv_uint(b, "khz", msi_get32(p + 4)));
            TRY(kv_uint(b, "nsec", msi_get64(p + 8)));
            TRY(kv_uint(b, "incarnation", msi_get32(p + 16)));
        }
        return 0;
    case MX_HVM_PARAMS:
        *count = 1;
        if (b) {
            TRY(key(b, "params"));
            TRY(put_table(b, p + 8, msi_get32(p), 16, pairs));
        }
        return 0;
    case MX_CHECKPOINT_DIRTY_PFN_LIST:
        *count = 1;
        if (b) {
            TRY(key(b, "pfns"));
            TRY(put_table(b, p, len / 8, 8, u64s));
        }
        return 0;
    case MX_X86_CPUID_POLICY:
        *count = 1;
        if (b) {
            TRY(key(b, "leaves"));
            TRY(put_table(b, p, len / 24, 24, u32s6));
        }
        return 0;
    case MX_X86_MSR_POLICY:
        *count = 1;
        if (b) {
            TRY(key(b, "msrs"));
            TRY(put_table(b, p, len / 16, 16, msr));
        }
        return 0;
    default:
        return 0;
    }
}

int mx_rec_state(msi_buf *b, mx_side side, uint32_t type, const mx_rec_info *ri,
                 const uint8_t *body, uint32_t len)
{
    size_t n;
    fields(NULL, side, type, ri, body, len, &n);
    TRY(msi_cbor_put_map(b, n ? 2 : 1));
    TRY(key(b, "raw"));
    TRY(msi_cbor_put_bytes(b, body, len));
    if (!n)
        return 0;
    TRY(key(b, "fields"));
    TRY(msi_cbor_put_map(b, n));
    return fields(b, side, type, ri, body, len, &n);
}

int mx_header_state(msi_buf *b, const uint8_t raw[MX_IHDR_SIZE + MX_DHDR_SIZE])
{
    const uint8_t *d = raw + MX_IHDR_SIZE;
    const char *dn = mx_domain_name(msi_get32(d));
    TRY(msi_cbor_put_map(b, 2));
    TRY(key(b, "raw"));
    TRY(msi_cbor_put_bytes(b, raw, MX_IHDR_SIZE + MX_DHDR_SIZE));
    TRY(key(b, "fields"));
    TRY(msi_cbor_put_map(b, dn ? 7 : 6));
    TRY(kv_uint(b, "version", mx_be32(raw + 12)));
    TRY(kv_uint(b, "options", mx_be16(raw + 16)));
    TRY(kv_uint(b, "type", msi_get32(d)));
    if (dn)
        TRY(kv_text(b, "domain", dn));
    TRY(kv_uint(b, "page_shift", msi_get16(d + 4)));
    TRY(kv_uint(b, "xen_major", msi_get32(d + 8)));
    return kv_uint(b, "xen_minor", msi_get32(d + 12));
}

int mx_libxl_header_state(msi_buf *b, const uint8_t raw[MX_LIBXL_HEADER_SIZE])
{
    uint32_t opt = mx_be32(raw + 12);
    TRY(msi_cbor_put_map(b, 2));
    TRY(key(b, "raw"));
    TRY(msi_cbor_put_bytes(b, raw, MX_LIBXL_HEADER_SIZE));
    TRY(key(b, "fields"));
    TRY(msi_cbor_put_map(b, 3));
    TRY(kv_uint(b, "version", mx_be32(raw + 8)));
    TRY(kv_uint(b, "options", opt));
    TRY(key(b, "legacy"));
    return msi_cbor_put_bool(b, (opt & MX_LIBXL_OPT_LEGACY) != 0);
}

int mx_page_types_state(msi_buf *b, const uint8_t *entries, size_t n)
{
    TRY(msi_cbor_put_map(b, 2));
    TRY(key(b, "raw"));
    TRY(msi_cbor_put_bytes(b, entries, n * 8));
    TRY(key(b, "fields"));
    TRY(msi_cbor_put_map(b, 1));
    TRY(key(b, "pages"));
    TRY(msi_cbor_put_array(b, n));
    for (size_t i = 0; i < n; i++) {
        uint64_t e = msi_get64(entries + 8 * i);
        TRY(msi_cbor_put_array(b, 2));
        TRY(msi_cbor_put_uint(b, e & MX_PFN_MASK));
        TRY(msi_cbor_put_uint(b, e >> MX_TYPE_SHIFT));
    }
    return 0;
}

/* ------------------------------------------------------------ paths */

/* A decimal u32 without leading zeros at @s, ending at '/' or NUL. */
static bool parse_dec(const char *s, uint32_t *v, const char **end)
{
    uint64_t x = 0;
    const char *p = s;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((x = x * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
            return false;
    *v = (uint32_t)x;
    *end = p;
    return true;
}

/* "0x" and exactly 8 lowercase hex digits, as mx_rec_device writes them. */
static bool parse_hex32(const char *s, uint32_t *v)
{
    if (strncmp(s, "0x", 2) || strlen(s) != 10)
        return false;
    uint32_t x = 0;
    for (const char *p = s + 2; *p; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint32_t)d;
    }
    *v = x;
    return true;
}

int mx_rec_from_path(const char *path, mx_path_rec *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, MX_PATH_HEADER) == 0) {
        out->kind = MX_PK_HEADER;
        return 0;
    }
    if (strcmp(path, MX_PATH_LIBXL_HEADER) == 0) {
        out->kind = MX_PK_LIBXL_HEADER;
        return 0;
    }
    if (strcmp(path, MX_PATH_PAGE_TYPES) == 0) {
        out->kind = MX_PK_PAGE_TYPES;
        return 0;
    }
    out->kind = MX_PK_RECORD;
    const char *rest;
    if (strncmp(path, "xen/vcpu/", 9) == 0) {
        if (!parse_dec(path + 9, &out->vcpu_id, &rest) || *rest != '/')
            return -1;
        for (uint32_t t = 0; t < MX_LIBXC_TYPES; t++)
            if (libxc_table[t].vcpu && strcmp(rest + 1, libxc_table[t].path) == 0) {
                out->side = MX_SIDE_LIBXC;
                out->type = t;
                out->ri = &libxc_table[t];
                return 0;
            }
        return -1;
    }
    if (strncmp(path, "xen/emulator/", 13) == 0) {
        rest = path + 13;
        for (uint32_t id = 0; id < MX_EMU_IDS; id++) {
            size_t n = strlen(emulator_names[id]);
            if (strncmp(rest, emulator_names[id], n) || rest[n] != '/')
                continue;
            for (uint32_t t = 0; t < MX_LIBXL_TYPES; t++)
                if (libxl_table[t].emulator && strcmp(rest + n + 1, libxl_table[t].path) == 0) {
                    out->side = MX_SIDE_LIBXL;
                    out->type = t;
                    out->ri = &libxl_table[t];
                    out->emulator_id = id;
                    return 0;
                }
        }
        return -1;
    }
    if (strncmp(path, "xen/optional/", 13) == 0 || strncmp(path, "xen/libxl/optional/", 19) == 0) {
        out->side = path[4] == 'l' ? MX_SIDE_LIBXL : MX_SIDE_LIBXC;
        if (!parse_hex32(path + (out->side == MX_SIDE_LIBXL ? 19 : 13), &out->type) ||
            !(out->type & MX_REC_OPTIONAL))
            return -1;
        return 0;
    }
    for (int side = 0; side < 2; side++) {
        const mx_rec_info *t = side ? libxl_table : libxc_table;
        uint32_t n = side ? MX_LIBXL_TYPES : MX_LIBXC_TYPES;
        for (uint32_t i = 0; i < n; i++)
            if (t[i].path && !t[i].vcpu && !t[i].emulator && strcmp(path, t[i].path) == 0) {
                out->side = (mx_side)side;
                out->type = i;
                out->ri = &t[i];
                return 0;
            }
    }
    return -1;
}

const char *mx_rec_matches(const mx_path_rec *pr, uint32_t instance, const uint8_t *body,
                           uint32_t len, char *why, size_t size)
{
    if (!pr->ri)
        return NULL;
    if (pr->ri->vcpu && len >= 8 && msi_get32(body) != pr->vcpu_id)
        return say(why, size, "its raw bytes are for vcpu %u, its path for vcpu %u",
                   msi_get32(body), pr->vcpu_id);
    if (pr->ri->emulator && len >= 8) {
        if (msi_get32(body) != pr->emulator_id)
            return say(why, size, "its raw bytes are for emulator_id %u, its path names %s",
                       msi_get32(body), emulator_names[pr->emulator_id]);
        if (msi_get32(body + 4) != instance)
            return say(why, size, "its raw bytes are for emulator index %u, its instance is %u",
                       msi_get32(body + 4), instance);
    }
    return NULL;
}

void mx_rec_zero_reserved(const mx_rec_info *ri, uint8_t *body, uint32_t len)
{
    if (!ri)
        return;
    if (ri->vcpu && len >= 8) {
        memset(body + 4, 0, 4);
        return;
    }
    if (ri->side == MX_SIDE_LIBXL) {
        if (ri->type == MX_XL_CHECKPOINT_STATE && len > 4)
            memset(body + 4, 0, len - 4);
        return;
    }
    switch (ri->type) {
    case MX_X86_PV_INFO:
        memset(body + 2, 0, 6);
        break;
    case MX_X86_TSC_INFO:
        memset(body + 20, 0, 4);
        break;
    case MX_HVM_PARAMS:
        memset(body + 4, 0, 4);
        break;
    default:
        break;
    }
}
