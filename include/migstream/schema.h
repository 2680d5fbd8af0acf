/*
 * libmigstream: device-state schemas.
 *
 * A DEVICE record (FORMAT.md section 7.1) carries the name and version of
 * the schema its state follows, but the format leaves the state itself to
 * the VMM. A schema set says what each schema's state holds: the fields of
 * its map, their types, which are required and which version added each.
 * The language is described in docs/COMPAT.md ("Schema files"):
 *
 *     {"migstream_schema": 1,
 *      "devices": [
 *        {"schema": "virtio-net", "version": 2,
 *         "fields": [{"name": "mac", "type": "bytes"},
 *                    {"name": "queues", "type": "uint", "since": 2}]}]}
 *
 * A VMM loads its set once and checks each device state it receives (or is
 * about to send) with ms_schema_set_validate():
 *
 *     ms_schema_set *s = ms_schema_set_new(NULL);
 *     if (ms_schema_set_load_path(s, "/usr/share/vmm/schemas") < 0)
 *         die(ms_schema_set_errmsg(s));
 *     ...
 *     if (rec->type == MS_REC_DEVICE && ms_schema_set_validate(s, &rec->device, NULL, NULL))
 *         refuse(ms_schema_set_errmsg(s));
 *
 * A set can also be learned from streams (ms_schema_set_learn_header(),
 * ms_schema_set_learn_device()): it then describes what the streams carry,
 * and two sets, an older release's and a newer one's, can be compared with
 * ms_schema_compare() to find every change that breaks migration between
 * them. migstream-validate --schema and migstream-compat are built on these.
 *
 * Schema files are input the caller trusts less than its own code: loading
 * bounds their size, the number of schemas and fields and their nesting
 * (ms_schema_options), and a malformed file is refused with a message that
 * names the file, the JSON line and column or the member at fault. Device
 * states are untrusted: validation checks their CBOR profile and nesting
 * before walking them and never recurses deeper than the schema does.
 *
 * Threads: a schema set is used by one thread at a time, validation
 * included (it keeps the last message); different sets are independent
 * (common.h, "Handles"). A VMM that validates on several threads loads one
 * set per thread.
 */
#ifndef MIGSTREAM_SCHEMA_H
#define MIGSTREAM_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_schema_set ms_schema_set;

/** The version of the schema language this library reads: the value of a
 *  schema file's "migstream_schema" member. */
#define MS_SCHEMA_LANGUAGE 1

/** Loading limits. Fill with ms_schema_options_init(); 0 means the default. */
typedef struct ms_schema_options {
    size_t struct_size;      /**< set by init (common.h, "Growing structs") */
    uint32_t max_file_size;  /**< bytes of one schema file; default 16 MiB */
    uint32_t max_schemas;    /**< schemas in the set; default 4096 */
    uint32_t max_fields;     /**< fields in the set, all levels; default 65536 */
    uint32_t max_depth;      /**< nesting of map and array fields; default 16, at most 64 */
    uint32_t max_files;      /**< files of a directory; default 1024 */
    uint32_t max_cbor_depth; /**< nesting of a state checked; default 64, at most 256 */
    ms_allocator allocator;  /**< zeroed: malloc/realloc/free */
} ms_schema_options;

/** Fills @p opts with the defaults. */
MS_API void ms_schema_options_init(ms_schema_options *opts);

/** Creates an empty set. @p opts may be NULL (defaults).
 *  @return **new** set, or NULL when memory ran out. Bad options give a set
 *          in the failed state (common.h, "Handles"): ms_schema_set_status()
 *          is MS_EINVAL, ms_schema_set_errmsg() names the option, and every
 *          call that can fail returns MS_EINVAL. */
MS_API ms_schema_set *ms_schema_set_new(const ms_schema_options *opts);

/** MS_EINVAL for a set created from bad options, else 0; MS_ENOMEM for
 *  NULL (what ms_schema_set_new() returns without memory). A failed load
 *  is not sticky: it leaves the set as it was, with ms_schema_set_errmsg()
 *  saying why. */
MS_API int ms_schema_set_status(const ms_schema_set *s);

/** Frees the set (NULL is fine). */
MS_API void ms_schema_set_free(ms_schema_set *s);

/**
 * Adds the schemas of one schema document, JSON or CBOR (a CBOR map with the
 * same members; told apart by the first byte) to the set.
 * @param data   [borrow] the document
 * @param origin [borrow] name of the document for messages (a file name),
 *               or NULL
 * @return 0; MS_ECORRUPT when the document is malformed or breaks the
 *         language (the message names the member, or line and column),
 *         MS_ELIMIT past a limit, MS_ECORRUPT also when a schema name is
 *         already in the set, MS_ESTATE on a set that learned from streams,
 *         MS_ENOMEM. On failure the set is left as it was.
 */
MS_API int ms_schema_set_load(ms_schema_set *s, const void *data, size_t size, const char *origin);

/**
 * Adds a schema file, or every file of a directory whose name ends in
 * ".json" or ".cbor" (in byte order of their names; other files and
 * subdirectories are ignored). A directory is one set: a schema name may
 * appear in only one of its files.
 * @return 0, MS_EIO (cannot open or read; the message names the file and
 *         the system's reason), MS_ELIMIT (file too large, too many files,
 *         or a directory without schema files), or any ms_schema_set_load()
 *         status. On failure the set is left as it was.
 */
MS_API int ms_schema_set_load_path(ms_schema_set *s, const char *path);

/** Message naming what the last failed call found and where, or "". */
MS_API const char *ms_schema_set_errmsg(const ms_schema_set *s);

/** Number of schemas in the set. */
MS_API size_t ms_schema_set_count(const ms_schema_set *s);

/** Name, version and oldest version accepted of schema @p index (in the
 *  order loaded or first seen). Any out pointer may be NULL.
 *  @return false if @p index is out of range. The name stays valid for the
 *  set's lifetime. */
MS_API bool ms_schema_set_get(const ms_schema_set *s, size_t index, const char **name,
                              uint32_t *version, uint32_t *min_version);

/**
 * The stream format the set declares (a schema file's "format" member) or
 * has seen (learned streams: the largest minor and every required feature
 * bit any stream set). Any out pointer may be NULL.
 * @return false when the set says nothing about the format.
 */
MS_API bool ms_schema_set_format(const ms_schema_set *s, uint16_t *major, uint16_t *minor,
                                 uint64_t *required_features);

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

/** What a validation problem is about. */
typedef enum ms_schema_check {
    MS_SCHEMA_UNKNOWN = 1,    /**< no schema of the device's name in the set */
    MS_SCHEMA_VERSION = 2,    /**< a version newer than the schema, or older
                                   than its min_version */
    MS_SCHEMA_TYPE = 3,       /**< a value of another type than the schema's */
    MS_SCHEMA_MISSING = 4,    /**< a required field is absent */
    MS_SCHEMA_UNEXPECTED = 5, /**< a field the schema does not have (closed map) */
    MS_SCHEMA_TOO_NEW = 6,    /**< a field added in a later version than the state's */
    MS_SCHEMA_DUPLICATE = 7,  /**< a map key that appears twice */
    MS_SCHEMA_MALFORMED = 8,  /**< the state is not one CBOR item in the profile */
} ms_schema_check;

/** One problem found by ms_schema_set_validate(). Pointers are valid
 *  during the callback only. */
typedef struct ms_schema_problem {
    ms_schema_check check;
    const ms_device *device; /**< the device checked */
    /** Where in the state: map keys and array indexes separated by "/",
     *  text keys quoted as in CBOR diagnostic notation (/"regs"/"rip",
     *  /0/3); "" for the state as a whole. */
    const char *field;
    const char *message; /**< the whole message, device and field named */
} ms_schema_problem;

/** Called for each problem; return 0 to go on, negative to stop. */
typedef int (*ms_schema_problem_fn)(void *ctx, const ms_schema_problem *problem);

/**
 * Checks a device's state against the set's schema named device->schema:
 * the version is within [min_version, version]; the state is a map; every
 * field has the schema's type; every required field whose "since" is not
 * later than the state's version is present; no field is newer than the
 * state's version; a closed map holds no other key; no key appears twice.
 * Nested map and array fields are checked the same way.
 * @param device [borrow] as handed out in ms_record.device, or filled in by
 *               the caller (state: one CBOR item in the FORMAT.md section 10
 *               profile)
 * @param fn     called for each problem; NULL: stop at the first, whose
 *               message ms_schema_set_errmsg() then gives
 * @return 0 when the state is valid, the number of problems (> 0)
 *         otherwise (only MS_SCHEMA_UNKNOWN for a device without schema);
 *         negative: MS_EINVAL, MS_ENOMEM or the callback's value.
 */
MS_API int ms_schema_set_validate(ms_schema_set *s, const ms_device *device,
                                  ms_schema_problem_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* Learning a set from streams                                              */
/* ------------------------------------------------------------------------ */

/**
 * Records a stream's format version and required feature bits in a set that
 * describes streams. A set that learns cannot also load schema files
 * (MS_ESTATE), and the reverse.
 * @return 0, MS_ESTATE, MS_EINVAL.
 */
MS_API int ms_schema_set_learn_header(ms_schema_set *s, const ms_header *header);

/**
 * Records what one device state shows: its schema name and version, and for
 * a map state every key with the CBOR type of its value, recursively for
 * nested maps (as deep as max_depth). A field is then "required" when every
 * state of a version at or after its first version holds it, and its
 * "since" is the lowest version it was seen in. Integers are typed "uint"
 * when no state held a negative value, else "int"; a field seen with values
 * of different types is typed "any".
 * @return 0, MS_ECBOR (state malformed: the message names the device),
 *         MS_ELIMIT, MS_ESTATE, MS_ENOMEM, MS_EINVAL.
 */
MS_API int ms_schema_set_learn_device(ms_schema_set *s, const ms_device *device);

/** True when the set was learned from streams rather than loaded. */
MS_API bool ms_schema_set_learned(const ms_schema_set *s);

/* ------------------------------------------------------------------------ */
/* Comparing an older release's set with a newer one's                      */
/* ------------------------------------------------------------------------ */

/** Kinds of incompatible change (docs/COMPAT.md, "What migstream-compat
 *  reports"). Values are stable. */
typedef enum ms_compat_check {
    MS_COMPAT_DEVICE_REMOVED = 1,  /**< the reader has no schema the writer uses */
    MS_COMPAT_FIELD_REMOVED = 2,   /**< the reader lacks a field the writer writes */
    MS_COMPAT_TYPE_CHANGED = 3,    /**< the reader's type does not accept the writer's */
    MS_COMPAT_REQUIRED_ADDED = 4,  /**< the reader requires a field the writer may
                                        omit, at a version the writer writes */
    MS_COMPAT_VERSION_DOWN = 5,    /**< the reader's version is below the writer's */
    MS_COMPAT_VERSION_DROPPED = 6, /**< the reader's min_version is above a
                                        version the writer writes */
    MS_COMPAT_SINCE_CHANGED = 7,   /**< the reader says a field came in a later
                                        version than one the writer writes it in */
    MS_COMPAT_FORMAT_MAJOR = 8,    /**< the newer streams use another major version */
    MS_COMPAT_FEATURE_ADDED = 9,   /**< the newer streams set a required feature
                                        bit the older ones never set */
    MS_COMPAT_MINOR_NEWER = 10,    /**< the newer streams have a newer minor
                                        version (a warning: FORMAT.md 11.1) */
} ms_compat_check;

/** Which release reads what the other wrote. */
typedef enum ms_compat_direction {
    MS_COMPAT_OLD_TO_NEW = 0, /**< the newer release reads the older one's
                                   streams (an upgrade) */
    MS_COMPAT_NEW_TO_OLD = 1, /**< the older release reads the newer one's
                                   streams (a migration back) */
} ms_compat_direction;

/** One difference found by ms_schema_compare(). Pointers are valid during
 *  the callback only; those that do not apply are NULL. */
typedef struct ms_compat_issue {
    ms_compat_check check;
    ms_compat_direction direction;
    bool warning;            /**< does not make the sets incompatible */
    const char *schema;      /**< the device schema, NULL for format issues */
    const char *device_path; /**< a device path that uses it, when known */
    const char *field;       /**< field path, as in ms_schema_problem */
    uint32_t old_version;    /**< the schema's version in OLD (0 if absent) */
    uint32_t new_version;    /**< and in NEW */
    const char *old_type;    /**< the field's type names ("uint") */
    const char *new_type;
    const char *message; /**< the whole message */
} ms_compat_issue;

typedef int (*ms_compat_fn)(void *ctx, const ms_compat_issue *issue);

/** ms_schema_compare() flag: also check that OLD reads what NEW writes. */
#define MS_COMPAT_BOTH_WAYS 0x1u

/**
 * Compares an older release's set with a newer one's. Device schemas are
 * checked in direction MS_COMPAT_OLD_TO_NEW (NEW must read every state OLD
 * writes), and also MS_COMPAT_NEW_TO_OLD with MS_COMPAT_BOTH_WAYS; the
 * stream format (when both sets know it) is checked for what an OLD reader
 * cannot load in NEW's streams. Issues are reported schema by schema in
 * OLD's order (then NEW's for the other direction), fields in schema order.
 * @param flags 0 or MS_COMPAT_BOTH_WAYS
 * @return the number of issues that are not warnings (0: compatible);
 *         MS_EINVAL, MS_ENOMEM, or the callback's negative value.
 */
MS_API int ms_schema_compare(const ms_schema_set *old_set, const ms_schema_set *new_set,
                             unsigned flags, ms_compat_fn fn, void *ctx);

/** Stable name of a check ("field-removed"), or NULL. Static string. */
MS_API const char *ms_compat_check_name(ms_compat_check check);

/** Stable name of a validation check ("missing"), or NULL. Static. */
MS_API const char *ms_schema_check_name(ms_schema_check check);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_SCHEMA_H */
