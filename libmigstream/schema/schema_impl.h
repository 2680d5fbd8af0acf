/*
 * The in-memory form of a schema set (include/migstream/schema.h), shared by
 * loading (schema.c), validation (schema_validate.c), learning from streams
 * (schema_learn.c) and comparison (schema_compat.c).
 */
#ifndef MSI_SCHEMA_IMPL_H
#define MSI_SCHEMA_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "migstream/schema.h"
#include "common/util.h"

/* Value types of the schema language: CBOR major types, with major 7 split
 * into bool, null and float, and "int" covering majors 0 and 1. */
typedef enum msi_stype {
    MSI_ST_ANY,
    MSI_ST_UINT,
    MSI_ST_INT,
    MSI_ST_FLOAT,
    MSI_ST_BOOL,
    MSI_ST_NULL,
    MSI_ST_BYTES,
    MSI_ST_TEXT,
    MSI_ST_ARRAY,
    MSI_ST_MAP,
    MSI_ST_COUNT
} msi_stype;

const char *msi_stype_name(msi_stype t);

/* How many states of each version a map node was seen in (learned sets). */
typedef struct msi_vcount {
    uint32_t version;
    uint64_t n;
} msi_vcount;
#define MSI_MAX_VERSIONS 64 /* versions counted per node; beyond, "required" is not inferred */

typedef struct msi_sfield msi_sfield;

/* The shape of one value. */
typedef struct msi_snode {
    msi_stype type;
    bool has_fields; /* MAP: fields are declared (else any map) */
    bool open;       /* MAP: keys not declared are allowed */
    msi_sfield *fields;
    size_t nfields, cap;
    uint32_t *slots; /* past 8 fields: open addressing on the key, index + 1 */
    size_t nslots;
    struct msi_snode *items; /* ARRAY: the elements' shape, NULL: any */
    /* learned sets */
    uint32_t seen_types; /* bit per msi_stype */
    msi_vcount *hist;    /* MAP: states holding this map, per version */
    size_t nhist;
    bool hist_full;
} msi_snode;

struct msi_sfield {
    char *name;   /* text key, or NULL for an integer key */
    uint64_t key; /* integer key when name is NULL */
    bool required;
    uint32_t since;
    msi_snode node;
    uint64_t present; /* learned: maps that held it */
};

typedef struct msi_sdevice {
    char *schema;
    char *path;   /* learned: the first device path seen with it */
    char *origin; /* loaded: the file it came from */
    uint32_t version, min_version;
    msi_snode root;
} msi_sdevice;

struct ms_schema_set {
    int status; /* MS_EINVAL when created from bad options (sticky), else 0 */
    ms_schema_options opts;
    ms_allocator alloc;
    msi_sdevice *devices;
    size_t ndevices, cap;
    uint32_t *slots; /* open addressing on the schema name, index + 1 */
    size_t nslots;
    size_t nfields; /* all levels, against max_fields */
    enum { MSI_SET_EMPTY, MSI_SET_LOADED, MSI_SET_LEARNED } kind;
    bool has_format;
    uint16_t major, minor;
    uint64_t features;
    char err[1024];
};

void msi_schema_err(ms_schema_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
msi_sdevice *msi_schema_find(const ms_schema_set *s, const char *name);
msi_sdevice *msi_schema_add_device(ms_schema_set *s, const char *name);
void msi_snode_free(const ms_allocator *a, msi_snode *n);
/* Adds a field to a map node, named @name (@len bytes, copied) or, when
 * @name is NULL, with the integer key @key: NULL on no memory or past
 * max_fields (the set's error says which). Fields are found by a hash past
 * a few, so that a map of many fields costs the same per key. */
msi_sfield *msi_snode_add_field(ms_schema_set *s, msi_snode *n, const uint8_t *name, size_t len,
                                uint64_t key);
msi_sfield *msi_snode_find_text(const msi_snode *n, const uint8_t *name, size_t len);
msi_sfield *msi_snode_find_key(const msi_snode *n, uint64_t key);

/* Appends a field's path element (/"name" or /key) to buf of size cap
 * (truncating with "..." when full); returns the new length. */
size_t msi_path_push(char *buf, size_t cap, size_t len, const msi_sfield *f);
size_t msi_path_push_raw(char *buf, size_t cap, size_t len, const char *elem);

/* Learned sets: true when every map @parent held at a version at or after
 * @f's first version held @f. */
bool msi_learned_required(const msi_snode *parent, const msi_sfield *f);

#endif /* MSI_SCHEMA_IMPL_H */
