/*
 * libmigstream: the values a stream carries, as the writer takes them and the
 * reader hands them out. Each struct mirrors one structure of docs/FORMAT.md.
 *
 * Strings in these structs are NUL-terminated UTF-8. In structs the reader
 * hands out, every pointer is a view into the reader's buffers and stays
 * valid until the next call on that reader, unless a comment says otherwise.
 */
#ifndef MIGSTREAM_STREAM_H
#define MIGSTREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The fixed preamble (FORMAT.md section 3). */
typedef struct ms_header {
    uint16_t major;
    uint16_t minor;
    uint32_t page_size;          /**< base page size of the stream */
    uint64_t required_features;  /**< bits a reader must understand */
    uint64_t optional_features;  /**< bits a reader may ignore */
    char writer_name[MS_WRITER_FIELD_LEN + 1];    /**< e.g. "qemu" */
    char writer_version[MS_WRITER_FIELD_LEN + 1]; /**< e.g. "7.2.0" */
    uint64_t checksum;           /**< the preamble's XXH3-64; seeds the chain */
} ms_header;

/** Stream metadata (INFO record, FORMAT.md section 5). NULL: absent. */
typedef struct ms_info {
    const char *machine;     /**< machine type, e.g. "pc-q35-7.2" */
    const char *description; /**< free text for people */
} ms_info;

/** A memory region (REGIONS record, FORMAT.md section 5.2). */
typedef struct ms_region {
    uint32_t id;         /**< unique in the stream, chosen by the writer */
    const char *name;    /**< e.g. "pc.ram"; 1..255 bytes */
    bool has_gpa;        /**< false: not mapped at a known address */
    uint64_t gpa;        /**< guest-physical base, page aligned */
    uint64_t size;       /**< bytes; a non-zero multiple of page_size */
    uint32_t page_size;  /**< transfer page size: a power-of-two multiple of
                              the header's page size, at most 16 MiB */
    uint64_t reserved[4]; /**< zero (common.h, "Growing structs") */
} ms_region;

/** A run of pages in one state (FORMAT.md section 6.2). */
typedef struct ms_extent {
    uint64_t first; /**< first page index within the region */
    uint32_t count; /**< pages in the run, at least 1 */
    uint8_t state;  /**< an ms_page_state */
    uint64_t arg;   /**< state-specific argument; 0 for DATA and ZERO */
} ms_extent;

/** A decoded PAGES record. */
typedef struct ms_pages {
    const ms_region *region;  /**< the region the pages belong to */
    const ms_extent *extents; /**< ascending, non-overlapping */
    size_t extent_count;
    /** Contents of the DATA extents, in extent order, page after page:
     *  data_size == (sum of DATA counts) * region->page_size. Already
     *  decompressed when the record was compressed. */
    const uint8_t *data;
    size_t data_size;
    uint8_t encoding;         /**< ms_data_encoding used on the wire */
} ms_pages;

/** A decoded DEVICE record (FORMAT.md section 7). */
typedef struct ms_device {
    const char *path;     /**< e.g. "pci0/0000:00:02.0/virtio-net" */
    uint32_t instance;    /**< instance id, distinguishes same-path devices */
    const char *schema;   /**< schema name of the state payload */
    uint32_t version;     /**< schema version */
    const uint8_t *state; /**< one CBOR data item, encoded */
    size_t state_size;
} ms_device;

/**
 * The start of a pre-copy round (ROUND record, FORMAT.md section 6.4).
 * Pages of a later round supersede earlier copies.
 */
typedef struct ms_round {
    uint64_t number;      /**< strictly ascending in a stream; usually 0, 1, ... */
    uint32_t tracker;     /**< ms_tracker that produced the round's page set */
    uint32_t granularity; /**< bytes per tracked unit (4096 for KVM and PML);
                               0 with MS_TRACKER_NONE */
    bool has_dirty;       /**< false: the dirty count is not known */
    uint64_t dirty;       /**< units the tracker reported dirty */
    bool final;           /**< the guest was stopped: the stop-and-copy round */
    uint64_t reserved[4]; /**< zero (common.h, "Growing structs") */
} ms_round;

/** One SynIC slot per synthetic interrupt source. */
#define MS_SYNIC_SLOTS 16u
#define MS_SYNIC_SLOT_SIZE 256u

/**
 * A hypervisor overlay page (OVERLAY record, FORMAT.md section 7.2): a
 * 4 KiB guest frame whose guest-visible contents the destination rebuilds
 * from the kind and its parameters, over the RAM page underneath. Only the
 * member for @p kind is meaningful.
 */
typedef struct ms_overlay {
    uint64_t gfn;  /**< guest frame number: guest-physical address / 4096 */
    uint32_t kind; /**< ms_overlay_kind */
    struct {
        /** 0: a stub that fails every hypercall ("mov rax, 2; ret");
         *  1: Intel (VMCALL); 2: AMD (VMMCALL). */
        uint32_t vendor;
    } hypercall;
    struct {
        /** true: sequence 1 and the scale follow from the guest's TSC
         *  frequency (Hz, above 10 MHz); false: sequence and scale as given. */
        bool has_frequency;
        uint64_t frequency;
        uint32_t sequence;
        uint64_t scale;  /**< 0.64 fixed point, 100 ns units per TSC tick */
        int64_t offset;  /**< 100 ns units added to the scaled TSC */
    } tsc;
    struct {
        uint32_t vp;                          /**< virtual processor index */
        uint16_t slot_mask;                   /**< bit s: slot[s] is set */
        const uint8_t *slot[MS_SYNIC_SLOTS];  /**< MS_SYNIC_SLOT_SIZE bytes each */
    } synic; /**< SYNIC_MESSAGE and SYNIC_EVENT_FLAGS */
    uint64_t reserved[4]; /**< zero (common.h, "Growing structs") */
} ms_overlay;

/**
 * Which part of a migration in parts a stream is (PART record, FORMAT.md
 * section 5.3): a migration sent over several connections at once, each
 * carrying one part, a stream of its own. The writer takes it in
 * ms_writer_options.part; readers hand it out with every record of a part
 * (ms_record.part).
 */
typedef struct ms_part {
    /** The same in every part of one migration, and in no other migration:
     *  16 random bytes (ms_migration_id_new()). */
    uint8_t migration_id[MS_MIGRATION_ID_SIZE];
    uint32_t index;       /**< this part: 0 .. count - 1 */
    uint32_t count;       /**< parts of the migration: at least 1 */
    uint64_t reserved[4]; /**< zero (common.h, "Growing structs") */
} ms_part;

/** Page counts per state, indexed by ms_page_state (index 0 unused). */
#define MS_PAGE_STATE_SLOTS 8

/** The END record's totals (FORMAT.md section 8). */
typedef struct ms_totals {
    uint64_t records;  /**< records before END */
    uint64_t bytes;    /**< stream bytes before END: END's byte offset */
    uint64_t pages[MS_PAGE_STATE_SLOTS]; /**< pages by state, every copy */
    uint64_t devices;  /**< DEVICE records */
    uint64_t rounds;   /**< ROUND records */
    uint64_t overlays; /**< overlays in OVERLAY records */
} ms_totals;

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_STREAM_H */
