/*
 * QEMU's wire constants, defined once for every part of libmigstream/qemu/
 * (docs/QEMU.md sections 1 and 2): the section types of the main stream, the
 * flags of RAM items, COMMAND numbers and names, the layout of multifd init
 * records and packets, and the mapped-ram block header. Values and names
 * are QEMU's (migration/savevm.c and savevm.h, migration/ram.c,
 * migration/multifd.h, docs/devel/migration/mapped-ram.rst); every integer
 * on QEMU's wire is big-endian.
 *
 * The lowest part of the module: it holds no code and includes only the
 * public qemu.h.
 */
#ifndef MSI_QEMU_WIRE_H
#define MSI_QEMU_WIRE_H

#include <stdint.h>

#include "migstream/qemu.h"

/* ---- the file header: "QEVM", u32 version ---- */

#define MQ_QEVM_MAGIC MS_QEMU_MAGIC     /* QEMU_VM_FILE_MAGIC */
#define MQ_QEVM_VERSION MS_QEMU_VERSION /* QEMU_VM_FILE_VERSION, the only one read */
#define MQ_FILE_HEADER_SIZE 8u

/* ---- section types (QEMU_VM_*) ---- */

enum {
    MQ_SEC_EOF = 0x00,
    MQ_SEC_START = 0x01,
    MQ_SEC_PART = 0x02,
    MQ_SEC_END = 0x03,
    MQ_SEC_FULL = 0x04,
    MQ_SEC_SUBSECTION = 0x05,
    MQ_SEC_VMDESCRIPTION = 0x06,
    MQ_SEC_CONFIGURATION = 0x07,
    MQ_SEC_COMMAND = 0x08,
    MQ_SEC_FOOTER = 0x7e,
};

/* Longest machine type, block name and id string: QEMU sends a u8 length. */
#define MQ_NAME_MAX 255u

/* ---- CONFIGURATION (vmstate_configuration, version 1) ---- */

#define MQ_CONFIG_NAME "configuration"
#define MQ_CONFIG_VERSION 1u
#define MQ_SUB_TARGET_PAGE_BITS "configuration/target-page-bits" /* u32 */
#define MQ_SUB_CAPABILITIES "configuration/capabilities"         /* u32 count, u8-length names */
#define MQ_SUB_UUID "configuration/uuid"                         /* 16 bytes */
#define MQ_CAP_X_IGNORE_SHARED "x-ignore-shared"
#define MQ_CAP_MAPPED_RAM "mapped-ram"

/* ---- the "ram" section: RAM_SAVE_FLAG_* in the low bits of each item's u64 ---- */

#define MQ_RAM_SECTION_VERSION 4u

enum {
    MQ_RAM_FLAG_ZERO = 0x002,
    MQ_RAM_FLAG_MEM_SIZE = 0x004,
    MQ_RAM_FLAG_PAGE = 0x008,
    MQ_RAM_FLAG_EOS = 0x010,
    MQ_RAM_FLAG_CONTINUE = 0x020,
    MQ_RAM_FLAG_XBZRLE = 0x040,
    MQ_RAM_FLAG_HOOK = 0x080,
    MQ_RAM_FLAG_COMPRESS_PAGE = 0x100,
    MQ_RAM_FLAG_MULTIFD_FLUSH = 0x200,
};

/* The byte after an XBZRLE item's block name (ENCODING_FLAG_XBZRLE). */
#define MQ_XBZRLE_ENCODING 0x01

/* ---- COMMAND numbers (enum qemu_vm_cmd) ---- */

enum {
    MQ_CMD_OPEN_RETURN_PATH = 1,
    MQ_CMD_PING = 2,
    MQ_CMD_POSTCOPY_ADVISE = 3,
    MQ_CMD_POSTCOPY_LISTEN = 4,
    MQ_CMD_POSTCOPY_RUN = 5,
    MQ_CMD_POSTCOPY_RAM_DISCARD = 6,
    MQ_CMD_PACKAGED = 7,
    MQ_CMD_ENABLE_COLO = 8,
    MQ_CMD_POSTCOPY_RESUME = 9,
    MQ_CMD_RECV_BITMAP = 10,
    MQ_CMD_SWITCHOVER_START = 11,
    MQ_CMD_MAX = MQ_CMD_SWITCHOVER_START,
};

/* QEMU's name of a command, or "unknown". */
static inline const char *mq_cmd_name(unsigned cmd)
{
    static const char *const names[] = {
        "INVALID",      "OPEN_RETURN_PATH",     "PING",     "POSTCOPY_ADVISE", "POSTCOPY_LISTEN",
        "POSTCOPY_RUN", "POSTCOPY_RAM_DISCARD", "PACKAGED", "ENABLE_COLO",     "POSTCOPY_RESUME",
        "RECV_BITMAP",  "SWITCHOVER_START",
    };
    return cmd <= MQ_CMD_MAX ? names[cmd] : "unknown";
}

/* ---- multifd channels (migration/multifd.h) ---- */

/* Init record: u32 magic, u32 version, 16-byte uuid, u8 channel id, unused. */
#define MQ_MF_MAGIC 0x11223344u
#define MQ_MF_VERSION 1u
#define MQ_MF_INIT_SIZE 64u
#define MQ_MF_INIT_UUID 8u
#define MQ_MF_INIT_ID 24u

/* Packet header, then page_count u64 offsets, page_count being
 * MQ_MF_PACKET_SIZE / target page size. */
#define MQ_MF_PACKET_SIZE (512u * 1024) /* MULTIFD_PACKET_SIZE */
#define MQ_MF_HEADER_SIZE 320u          /* the packet up to its offsets */
#define MQ_MF_P_MAGIC 0u
#define MQ_MF_P_VERSION 4u
#define MQ_MF_P_FLAGS 8u
#define MQ_MF_P_PAGES_ALLOC 12u
#define MQ_MF_P_NORMAL 16u /* 7.2: pages_used */
#define MQ_MF_P_NEXT_SIZE 20u
#define MQ_MF_P_PACKET_NUM 24u
#define MQ_MF_P_ZERO 32u /* 9.0+; 0 before */
#define MQ_MF_P_NAME 64u
#define MQ_MF_P_NAME_SIZE 256u

/* Packet flags. */
#define MQ_MF_SYNC 0x01u
#define MQ_MF_COMPRESSION 0x3eu /* MULTIFD_FLAG_COMPRESSION_MASK (0x1f << 1) */
#define MQ_MF_ZLIB 0x02u
#define MQ_MF_ZSTD 0x04u
#define MQ_MF_QPL 0x08u
#define MQ_MF_UADK 0x10u
#define MQ_MF_QATZIP 0x20u
#define MQ_MF_DEVICE_STATE 0x40u

/* QEMU's sender compresses a packet into a buffer of twice the packet size
 * and fails beyond it; its receiver reads into one of that size. */
#define MQ_MF_ZIP_MAX (2u * MQ_MF_PACKET_SIZE)

/* ---- mapped-ram: MappedRamHeader after each MEM_SIZE entry, packed ---- */

#define MQ_MR_VERSION 1u
#define MQ_MR_HEADER_SIZE 28u
#define MQ_MR_H_VERSION 0u        /* u32 */
#define MQ_MR_H_PAGE_SIZE 4u      /* u64 */
#define MQ_MR_H_BITMAP_OFFSET 12u /* u64 */
#define MQ_MR_H_PAGES_OFFSET 20u  /* u64 */

#endif /* MSI_QEMU_WIRE_H */
