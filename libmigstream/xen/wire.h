/*
 * Xen's wire constants, defined once for every part of libmigstream/xen/
 * (docs/XEN.md section 1): the libxl header and records
 * (libxl-migration-stream.pandoc, revision 2), the libxc image and domain
 * headers and records (libxc-migration-stream.pandoc, revision 3), page
 * types (XEN_DOMCTL_PFINFO_*), emulator ids and checkpoint states. Headers
 * are big-endian; records are little-endian (the only order read), each
 * padded to 8 bytes.
 *
 * The lowest part of the module: it holds no code and includes only the
 * public xen.h.
 */
#ifndef MSI_XEN_WIRE_H
#define MSI_XEN_WIRE_H

#include <stdint.h>

#include "migstream/xen.h"

/* ---- the libxl header: u64 ident, u32 version, u32 options (big-endian) ---- */

#define MX_LIBXL_IDENT 0x4c6962786c466d74ull /* "LibxlFmt" */
#define MX_LIBXL_VERSION 2u
#define MX_LIBXL_HEADER_SIZE 16u
#define MX_LIBXL_OPT_BIG_ENDIAN 0x1u
#define MX_LIBXL_OPT_LEGACY 0x2u /* made by the legacy conversion tool */

/* ---- the libxc image header: u64 marker, u32 id, u32 version, u16 options,
 *      u16 + u32 reserved (big-endian) ---- */

#define MX_IHDR_MARKER 0xffffffffffffffffull
#define MX_IHDR_ID 0x58454e46u /* "XENF" */
#define MX_IHDR_SIZE 24u
#define MX_IHDR_OPT_BIG_ENDIAN 0x1u

/* ---- the domain header: u32 type, u16 page_shift, u16 reserved, u32
 *      xen_major, u32 xen_minor (in the stream's order: little-endian) ---- */

#define MX_DHDR_SIZE 16u
#define MX_PAGE_SHIFT 12u
#define MX_PAGE_SIZE 4096u

/* `xl save` files start with xl's own header, not read here. */
#define MX_XL_MAGIC "Xen saved domain, xl format\n \0 \r"
#define MX_XL_MAGIC_LEN 32u

/* ---- records: u32 type, u32 body_length, body, zeros to 8 bytes ---- */

#define MX_RHDR_SIZE 8u
#define MX_REC_OPTIONAL 0x80000000u /* bit 31: a restore may ignore it */
/* Longest record Xen's own restore reads (REC_LENGTH_MAX). */
#define MX_REC_LENGTH_MAX (128u << 20)

static inline uint32_t mx_padded(uint32_t len)
{
    return (uint32_t)(((uint64_t)len + 7) & ~7ull);
}

/* libxc record types. */
enum {
    MX_END = 0x00,
    MX_PAGE_DATA = 0x01,
    MX_X86_PV_INFO = 0x02,
    MX_X86_PV_P2M_FRAMES = 0x03,
    MX_X86_PV_VCPU_BASIC = 0x04,
    MX_X86_PV_VCPU_EXTENDED = 0x05,
    MX_X86_PV_VCPU_XSAVE = 0x06,
    MX_SHARED_INFO = 0x07,
    MX_X86_TSC_INFO = 0x08,
    MX_HVM_CONTEXT = 0x09,
    MX_HVM_PARAMS = 0x0a,
    MX_TOOLSTACK = 0x0b,
    MX_X86_PV_VCPU_MSRS = 0x0c,
    MX_VERIFY = 0x0d,
    MX_CHECKPOINT = 0x0e,
    MX_CHECKPOINT_DIRTY_PFN_LIST = 0x0f,
    MX_STATIC_DATA_END = 0x10,
    MX_X86_CPUID_POLICY = 0x11,
    MX_X86_MSR_POLICY = 0x12,
    MX_LIBXC_TYPES, /* one past the last libxc type defined */
};

/* libxl record types. */
enum {
    MX_XL_END = 0x00,
    MX_XL_LIBXC_CONTEXT = 0x01,
    MX_XL_EMULATOR_XENSTORE_DATA = 0x02,
    MX_XL_EMULATOR_CONTEXT = 0x03,
    MX_XL_CHECKPOINT_END = 0x04,
    MX_XL_CHECKPOINT_STATE = 0x05,
    MX_LIBXL_TYPES,
};

/* ---- PAGE_DATA: u32 count, u32 reserved, count u64 pfn entries, pages ---- */

#define MX_PFN_MASK ((1ull << 52) - 1)        /* bits 0-51 */
#define MX_PFN_RESERVED 0x0ff0000000000000ull /* bits 52-59 */
#define MX_TYPE_SHIFT 60
#define MX_PFN_LIMIT (1ull << 52) /* pfns are below this */

enum {
    MX_PT_NOTAB = 0x0,
    MX_PT_L1TAB = 0x1,
    MX_PT_L4TAB = 0x4,
    MX_PT_PINNED = 0x8, /* with L1TAB..L4TAB: the pinned variants 0x9..0xc */
    MX_PT_L1TAB_PIN = 0x9,
    MX_PT_L4TAB_PIN = 0xc,
    MX_PT_BROKEN = 0xd,
    MX_PT_XALLOC = 0xe,
    MX_PT_XTAB = 0xf,
};

/* Types 5 to 8 are reserved: a restore refuses them. */
static inline int mx_page_type_known(unsigned t)
{
    return t <= MX_PT_L4TAB || (t >= MX_PT_L1TAB_PIN && t <= MX_PT_XTAB);
}

/* NOTAB and the page tables, pinned or not, carry a page of data. */
static inline int mx_page_type_has_data(unsigned t)
{
    return t <= MX_PT_L4TAB || (t >= MX_PT_L1TAB_PIN && t <= MX_PT_L4TAB_PIN);
}

/* ---- emulator records: u32 emulator_id, u32 index, then their data ---- */

enum {
    MX_EMU_UNKNOWN = 0,
    MX_EMU_QEMU_TRADITIONAL = 1,
    MX_EMU_QEMU_UPSTREAM = 2,
    MX_EMU_IDS,
};
#define MX_EMU_HEADER_SIZE 8u

/* ---- CHECKPOINT_STATE: u32 control_id ---- */

enum {
    MX_CKPT_NEW = 0,
    MX_CKPT_SVM_SUSPENDED = 1,
    MX_CKPT_SVM_READY = 2,
    MX_CKPT_SVM_RESUMED = 3,
};

#endif /* MSI_XEN_WIRE_H */
