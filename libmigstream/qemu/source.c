/*
 * The driver of the QEMU module (source.h; docs/QEMU.md): QEMU's file
 * header, CONFIGURATION, COMMAND and section framing, non-RAM sections held
 * until the JSON trailer, the trailer, and the state machine that steps the
 * parts below it and hands out records. The "ram" section's items are
 * ram.c's, multifd channels multifd.c's, mapped-ram pages mapped_ram.c's;
 * they all put pages into the sink (sink.c), whose records are handed out
 * first. Device state is encoded by vmsd.c. Calls every part below it;
 * nothing below calls back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/tree.h"
#include "format/frame.h"
#include "format/payload.h"
#include "qemu/mapped_ram.h"
#include "qemu/multifd.h"
#include "qemu/ram.h"
#include "qemu/sink.h"
#include "qemu/source.h"
#include "qemu/vmsd.h"
#include "qemu/wire.h"

#define DEF_SECTION (16u << 20)
#define DEF_DEVICES (64ull << 20)
#define DEF_VMDESC (16u << 20)
#define MAX_VMDESC (256u << 20)
#define DEF_RAM (16ull << 40)
#define DEF_BLOCKS 4096u
#define MAX_SECTIONS 65536u /* section headers with distinct ids */
#define MAX_CONFIG_NAME MQ_NAME_MAX

/* Largest header after a footer that the footer check looks at: type, id,
 * idstr length and idstr, instance, version. */
#define NEXT_HEADER_MAX (1 + 4 + 1 + 255 + 4 + 4)

/* What one part of an iterable section costs against max_device_bytes
 * besides its bytes: its length here and in the DEVICE record. Empty parts
 * would otherwise cost nothing. */
#define PART_COST 16u

/* The DEVICE path, schema and version that carry CONFIGURATION's
 * subsections (docs/QEMU.md section 3.3): QEMU's vmstate_configuration. */
#define CONFIG_PATH MQ_CONFIG_NAME
#define CONFIG_VERSION MQ_CONFIG_VERSION
#define CONFIG_OFFSET MQ_FILE_HEADER_SIZE /* where CONFIGURATION starts */

void mq_options_defaults(ms_qemu_import_options *o)
{
    if (!o->max_section_size)
        o->max_section_size = DEF_SECTION;
    if (!o->max_device_bytes)
        o->max_device_bytes = DEF_DEVICES;
    if (!o->max_vmdesc_size)
        o->max_vmdesc_size = DEF_VMDESC;
    if (o->max_vmdesc_size > MAX_VMDESC)
        o->max_vmdesc_size = MAX_VMDESC;
    if (!o->max_ram_bytes)
        o->max_ram_bytes = DEF_RAM;
    if (!o->max_ram_blocks)
        o->max_ram_blocks = DEF_BLOCKS;
    if (!o->max_decode_ratio)
        o->max_decode_ratio = MS_DEFAULT_DECODE_RATIO;
    if (!o->max_decode_allowance)
        o->max_decode_allowance = MS_DECODE_ALLOWANCE;
}

/* A section as its header named it. */
typedef struct mq_section {
    uint32_t id;
    uint32_t instance;
    uint32_t version;
    char idstr[256];
    uint64_t offset;      /* of its first header */
    uint64_t data_offset; /* of its bytes, after that header */
    bool iterable;        /* opened by START */
    bool ended;           /* END seen */
    bool is_ram;
    size_t held; /* index in held, or SIZE_MAX for RAM */
} mq_section;

/* Raw bytes of a non-RAM section, held until the end of the stream. A
 * section opened by START also keeps the length of each part (START, PARTs,
 * END) in stream order: QEMU's loader reads each part up to its own end
 * marker, so the export must cut the bytes where QEMU did. */
typedef struct mq_held {
    size_t section; /* index in sections */
    msi_buf data;
    uint64_t *parts;
    size_t nparts, parts_cap;
} mq_held;

enum step_state {
    ST_INFO,     /* INFO, when CONFIGURATION named a machine */
    ST_CONFIG,   /* DEVICE "configuration", when it had subsections */
    ST_SECTIONS, /* the next item of the main stream */
    ST_RAM,      /* items of "ram" */
    ST_MRAM,     /* mapped-ram pages, after the MEM_SIZE table */
    ST_SYNC,     /* the channels, up to a sync point */
    ST_FINISH,   /* the channels, after QEMU's EOF */
    ST_TRAILER,  /* the JSON trailer */
    ST_DEVICES,  /* a DEVICE record per held section */
    ST_END,
    ST_DONE,
};

typedef struct mq_src {
    msi_source *src; /* where problems go (msi_source_problem) */
    ms_qemu_import_options o;
    const ms_allocator *alloc;
    mq_error err;
    mq_in in;
    enum step_state state;
    uint32_t page_size; /* QEMU's target page size */
    bool ignore_shared; /* x-ignore-shared: MEM_SIZE carries an address */
    bool mapped_ram;    /* capability mapped-ram: pages at file offsets */
    bool have_uuid;     /* configuration/uuid was sent */
    uint8_t uuid[16];
    char machine[256]; /* CONFIGURATION's machine type, or "" */
    msi_buf config;    /* CONFIGURATION's subsections, as sent */
    size_t cur;        /* section being read (index), or SIZE_MAX */

    mq_section *sections;
    size_t nsections, sections_cap;
    /* The sections by id (mq_section_id nodes): a section is looked up for
     * every header and for every candidate footer in a device's bytes. */
    msi_tree_node *by_id;
    mq_held *held;
    size_t nheld, held_cap;
    uint64_t held_bytes;

    mq_sink *sink;
    mq_ram *ram;
    mq_multifd *mfd; /* channels given, or NULL */
    mq_mram *mram;   /* mapped-ram block headers, or NULL */
    uint64_t table_off;
    mq_vmsd *desc;     /* the trailer, once read */
    size_t dev_next;   /* the held section whose DEVICE comes next */
    msi_buf dev_state; /* the state of the DEVICE handed out */

    ms_record rec; /* a record of the driver's own */
    ms_totals totals;
    /* The record handed out last, for mq_source_writer_failed. */
    enum { LAST_NONE, LAST_SINK, LAST_CONFIG, LAST_DEVICE } last;
    size_t last_dev;
    bool last_decoded;

    uint64_t sections_read, commands, devices, devices_decoded;
    bool has_vmdesc, mapped_ram_read;
    uint64_t vmdesc_offset; /* of VMDESCRIPTION */
} mq_src;

/* ------------------------------------------------------------------ errors */

/* The section being read, for the context of messages. */
static void set_cur(mq_src *d, size_t cur)
{
    d->cur = cur;
    if (cur == SIZE_MAX) {
        mq_error_context(&d->err, NULL);
        return;
    }
    const mq_section *s = &d->sections[cur];
    mq_error_context(&d->err, "section %u '%s' instance %u: ", s->id, s->idstr, s->instance);
}

/* The module's failure, as the source's. */
static int sync_error(msi_source *s, mq_src *d)
{
    return msi_source_fail(s, d->err.status ? d->err.status : MS_ENOMEM, d->err.offset, "%s",
                           d->err.msg);
}

/* ------------------------------------------------------------ sections */

/* A section's place in the tree of ids; key: the id. */
typedef struct mq_section_id {
    msi_tree_node node;
    size_t index; /* in sections */
} mq_section_id;

static mq_section *find_section(mq_src *d, uint32_t id)
{
    uint64_t key = id;
    const mq_section_id *x = (const mq_section_id *)msi_tree_find(d->by_id, &key, msi_tree_cmp_u64);
    return x ? &d->sections[x->index] : NULL;
}

/* Indexes section @k (not indexed yet) by its id: 0 or MS_ENOMEM. */
static int index_section(mq_src *d, size_t k)
{
    mq_section_id *x = msi_alloc(d->alloc, sizeof *x);
    if (!x)
        return MS_ENOMEM;
    x->node.key = d->sections[k].id;
    x->index = k;
    d->by_id = msi_tree_insert(d->by_id, &x->node, &x->node.key, msi_tree_cmp_u64);
    return 0;
}

static void free_section_id(msi_tree_node *n, void *alloc)
{
    msi_free(alloc, n);
}

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    return true;
}

/*
 * Whether @p (the @n bytes after a candidate footer, all there is when
 * @n < NEXT_HEADER_MAX) starts like the item QEMU writes after a section.
 * QEMU gives a section's length nowhere: the footer (0x7E and the section id)
 * ends it, and a device's state may hold those five bytes too. A match
 * counts only when a well-formed item follows: a section header for a
 * section that may come next, a known COMMAND, or EOF followed by the JSON
 * trailer or by the end of the input.
 */
static bool next_item_ok(mq_src *d, const uint8_t *p, size_t n, bool input_ends)
{
    if (n == 0)
        return input_ends; /* truncated after the footer: reported as such */
    switch (p[0]) {
    case MQ_SEC_EOF:
        return (n == 1 && input_ends) || (n >= 2 && p[1] == MQ_SEC_VMDESCRIPTION);
    case MQ_SEC_START:
    case MQ_SEC_FULL: {
        if (n < 6)
            return false;
        size_t len = p[5];
        if (len == 0 || n < 6 + len + 8 || !printable(p + 6, len))
            return false;
        const mq_section *s = find_section(d, mq_be32(p + 1));
        /* A known id comes back only under the same name and instance. */
        return !s || (strlen(s->idstr) == len && memcmp(s->idstr, p + 6, len) == 0 &&
                      s->instance == mq_be32(p + 6 + len));
    }
    case MQ_SEC_PART:
    case MQ_SEC_END: {
        if (n < 5)
            return false;
        /* An ended one too: the PART or END is then refused by name rather
         * than taken as the device's bytes. */
        const mq_section *s = find_section(d, mq_be32(p + 1));
        return s && s->iterable;
    }
    case MQ_SEC_COMMAND: {
        if (n < 5)
            return false;
        uint16_t cmd = mq_be16(p + 1), len = mq_be16(p + 3);
        switch (cmd) {
        case MQ_CMD_OPEN_RETURN_PATH:
        case MQ_CMD_SWITCHOVER_START:
            return len == 0;
        case MQ_CMD_PING:
            return len == 4;
        default:
            return cmd > 0 && cmd <= MQ_CMD_MAX;
        }
    }
    default:
        return false;
    }
}

static int hold_append(mq_src *d, mq_held *h, const uint8_t *p, size_t n, uint64_t start)
{
    const char *what = "section data";
    if (n > d->o.max_section_size - h->data.len)
        return mq_fail(&d->err, MS_ELIMIT, start, what,
                       "no section footer within %u bytes (max_section_size)",
                       d->o.max_section_size);
    if (n > d->o.max_device_bytes - d->held_bytes)
        return mq_fail(&d->err, MS_ELIMIT, start, what,
                       "device sections exceed %llu bytes in all (max_device_bytes)",
                       (unsigned long long)d->o.max_device_bytes);
    if (msi_buf_append(&h->data, p, n))
        return mq_fail(&d->err, MS_ENOMEM, start, what, "out of memory holding %zu bytes", n);
    d->held_bytes += n;
    return 0;
}

/* Opens the next part (START, PART or END) of an iterable non-RAM section.
 * Each part is charged PART_COST against max_device_bytes, so empty parts
 * cannot grow the list without bound. */
static int new_part(mq_src *d, mq_held *h, uint64_t off)
{
    if (PART_COST > d->o.max_device_bytes - d->held_bytes)
        return mq_fail(&d->err, MS_ELIMIT, off, "section header",
                       "device sections exceed %llu bytes in all (max_device_bytes), "
                       "counting %u bytes for each part of an iterable section",
                       (unsigned long long)d->o.max_device_bytes, PART_COST);
    if (h->nparts == h->parts_cap) {
        size_t cap = h->parts_cap ? h->parts_cap * 2 : 8;
        uint64_t *n = msi_realloc(d->alloc, h->parts, cap * sizeof *n);
        if (!n)
            return mq_fail(&d->err, MS_ENOMEM, off, "section header", "out of memory");
        h->parts = n;
        h->parts_cap = cap;
    }
    h->parts[h->nparts++] = 0;
    d->held_bytes += PART_COST;
    return 0;
}

/* Reads a non-RAM section's bytes up to and including its footer; for an
 * iterable section, as its newest part. */
static int read_held(mq_src *d, mq_section *s, uint64_t off)
{
    mq_held *h = &d->held[s->held];
    mq_in *in = &d->in;
    const uint64_t start = mq_in_offset(in);
    const size_t before = h->data.len;
    int rc;
    if (s->iterable && (rc = new_part(d, h, off)))
        return rc;
    for (;;) {
        if (mq_in_fill(in, 1))
            return mq_fail(&d->err, MS_EIO, mq_in_offset(in), "section data",
                           "reading the input failed");
        if (in->pos == in->end)
            return mq_fail(&d->err, MS_ETRUNCATED, start, "section data",
                           "the stream ends after %llu bytes, before the section's footer "
                           "(0x7e and section id %u)",
                           (unsigned long long)mq_in_offset(in), s->id);
        const uint8_t *p = in->buf + in->pos;
        const uint8_t *m = memchr(p, MQ_SEC_FOOTER, in->end - in->pos);
        size_t plain = m ? (size_t)(m - p) : in->end - in->pos;
        if ((rc = hold_append(d, h, p, plain, start)))
            return rc;
        in->pos += plain;
        if (!m)
            continue;
        /* A 0x7E: the footer if the section id follows and then an item. */
        if (mq_in_fill(in, 5 + NEXT_HEADER_MAX))
            return mq_fail(&d->err, MS_EIO, mq_in_offset(in), "section data",
                           "reading the input failed");
        size_t avail = in->end - in->pos;
        p = in->buf + in->pos;
        if (avail >= 5 && mq_be32(p + 1) == s->id &&
            next_item_ok(d, p + 5, avail - 5, in->eof && avail < 5 + NEXT_HEADER_MAX)) {
            in->pos += 5;
            if (s->iterable)
                h->parts[h->nparts - 1] = h->data.len - before;
            return 0;
        }
        if ((rc = hold_append(d, h, p, 1, start)))
            return rc;
        in->pos++;
    }
}

static int new_section(mq_src *d, uint8_t type, uint32_t id, const char *idstr, uint32_t instance,
                       uint32_t version, uint64_t off, mq_section **out)
{
    if (d->nsections == MAX_SECTIONS)
        return mq_fail(&d->err, MS_ELIMIT, off, "section header", "more than %u sections",
                       MAX_SECTIONS);
    if (d->nsections == d->sections_cap) {
        size_t cap = d->sections_cap ? d->sections_cap * 2 : 64;
        mq_section *n = msi_realloc(d->alloc, d->sections, cap * sizeof *n);
        if (!n)
            return mq_fail(&d->err, MS_ENOMEM, off, "section header", "out of memory");
        d->sections = n;
        d->sections_cap = cap;
    }
    mq_section *s = &d->sections[d->nsections];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->instance = instance;
    s->version = version;
    s->offset = off;
    snprintf(s->idstr, sizeof s->idstr, "%s", idstr);
    s->iterable = type == MQ_SEC_START;
    s->is_ram = strcmp(idstr, "ram") == 0;
    s->held = SIZE_MAX;
    if (!s->is_ram) {
        if (d->nheld == d->held_cap) {
            size_t cap = d->held_cap ? d->held_cap * 2 : 64;
            mq_held *n = msi_realloc(d->alloc, d->held, cap * sizeof *n);
            if (!n)
                return mq_fail(&d->err, MS_ENOMEM, off, "section header", "out of memory");
            d->held = n;
            d->held_cap = cap;
        }
        s->held = d->nheld;
        memset(&d->held[d->nheld], 0, sizeof d->held[d->nheld]);
        d->held[d->nheld].section = d->nsections;
        msi_buf_init(&d->held[d->nheld].data, d->alloc);
        d->nheld++;
    }
    if (index_section(d, d->nsections))
        return mq_fail(&d->err, MS_ENOMEM, off, "section header", "out of memory");
    d->nsections++;
    *out = s;
    return 0;
}

static int expect_footer(mq_src *d, const mq_section *s)
{
    uint64_t off = mq_in_offset(&d->in);
    uint8_t t;
    uint32_t id;
    int rc = mq_u8(&d->in, &t, off, "section footer");
    if (rc)
        return rc;
    if (t != MQ_SEC_FOOTER)
        return mq_fail(&d->err, t == MQ_SEC_EOF || t <= MQ_SEC_COMMAND ? MS_EFEATURE : MS_ECORRUPT,
                       off, "section footer",
                       "expected 0x7e, found 0x%02x (streams without section footers, from "
                       "machine types before 2.4, are not supported)",
                       t);
    if ((rc = mq_u32(&d->in, &id, off, "section footer")))
        return rc;
    if (id != s->id)
        return mq_fail(&d->err, MS_ECORRUPT, off, "section footer", "names section %u", id);
    return 0;
}

/* The "ram" section's START, PART or END: its items are read a step at a
 * time (ST_RAM); any other section is held whole. */
static int enter_section(mq_src *d, mq_section *s, uint64_t off)
{
    int rc;
    set_cur(d, (size_t)(s - d->sections));
    if (s->is_ram) {
        d->state = ST_RAM;
        return 0;
    }
    if ((rc = read_held(d, s, off)))
        return rc;
    set_cur(d, SIZE_MAX);
    return 0;
}

/* START or FULL: type, id, idstr, instance, version; then the contents. */
static int read_section_start(mq_src *d, uint8_t type, uint64_t off)
{
    uint32_t id, instance, version;
    char idstr[256];
    int rc;
    if ((rc = mq_u32(&d->in, &id, off, "section header")) ||
        (rc = mq_name(&d->in, idstr, off, "section header")) ||
        (rc = mq_u32(&d->in, &instance, off, "section header")) ||
        (rc = mq_u32(&d->in, &version, off, "section header")))
        return rc;
    d->sections_read++;
    mq_section *s = find_section(d, id);
    if (s)
        return mq_fail(&d->err, MS_ECORRUPT, off, "section header",
                       "section id %u is opened a second time (as '%s' instance %u)", id, idstr,
                       instance);
    /* The exporter takes a DEVICE of that path for CONFIGURATION's
     * subsections (docs/QEMU.md section 3.3); QEMU registers no such section. */
    if (strcmp(idstr, CONFIG_PATH) == 0)
        return mq_fail(&d->err, MS_EFEATURE, off, "section header",
                       "section %u is named '%s', which QEMU never sends and the import keeps "
                       "for CONFIGURATION's subsections",
                       id, idstr);
    if ((rc = new_section(d, type, id, idstr, instance, version, off, &s)))
        return rc;
    s->data_offset = mq_in_offset(&d->in);
    if (s->is_ram) {
        set_cur(d, (size_t)(s - d->sections));
        if (type != MQ_SEC_START)
            return mq_fail(&d->err, MS_ECORRUPT, off, "section header",
                           "the 'ram' section must start with START (0x01), not 0x%02x", type);
        if (version != MQ_RAM_SECTION_VERSION)
            return mq_fail(&d->err, MS_EVERSION, off, "section header",
                           "'ram' section version %u (only version 4 is read)", version);
    }
    return enter_section(d, s, off);
}

static int read_section_part(mq_src *d, uint8_t type, uint64_t off)
{
    uint32_t id;
    int rc = mq_u32(&d->in, &id, off, "section header");
    if (rc)
        return rc;
    d->sections_read++;
    mq_section *s = find_section(d, id);
    if (!s || !s->iterable || s->ended)
        return mq_fail(&d->err, MS_ECORRUPT, off, "section header",
                       "%s for section id %u, which %s", type == MQ_SEC_PART ? "PART" : "END", id,
                       !s         ? "no START opened"
                       : s->ended ? "has ended"
                                  : "is not iterable");
    if (type == MQ_SEC_END)
        s->ended = true;
    return enter_section(d, s, off);
}

/* ------------------------------------------------------- CONFIGURATION */

/* Appends to d->config the bytes of a subsection item as read. */
static int config_keep(mq_src *d, uint64_t off, const void *p, size_t n)
{
    if (msi_buf_append(&d->config, p, n))
        return mq_fail(&d->err, MS_ENOMEM, off, "CONFIGURATION subsection", "out of memory");
    return 0;
}

static int config_keep_u32(mq_src *d, uint64_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return config_keep(d, off, b, 4);
}

/* u8 length and name, as QEMU writes names. */
static int config_keep_name(mq_src *d, uint64_t off, const char *name)
{
    uint8_t len = (uint8_t)strlen(name);
    int rc = config_keep(d, off, &len, 1);
    return rc ? rc : config_keep(d, off, name, len);
}

/* CONFIGURATION: u32 length, machine type, then optional subsections. The
 * subsections are kept as sent (d->config): their layout is fixed, so the
 * items read are appended as they are read, and a destination that checks
 * them (capabilities, uuid) gets them back from the export. */
static int read_configuration(mq_src *d, uint64_t off)
{
    mq_in *in = &d->in;
    uint32_t len;
    int rc = mq_u32(in, &len, off, "CONFIGURATION");
    if (rc)
        return rc;
    if (len == 0 || len > MAX_CONFIG_NAME)
        return mq_fail(&d->err, MS_ECORRUPT, off, "CONFIGURATION",
                       "machine type length %u (1 to %u expected)", len, MAX_CONFIG_NAME);
    if ((rc = mq_bytes(in, d->machine, len, off, "CONFIGURATION")))
        return rc;
    d->machine[len] = 0;
    if (!printable((const uint8_t *)d->machine, len))
        return mq_fail(&d->err, MS_ECORRUPT, off, "CONFIGURATION",
                       "machine type holds bytes that are not printable ASCII");
    unsigned seen = 0;
    for (;;) {
        if (mq_in_fill(in, 1))
            return mq_fail(&d->err, MS_EIO, mq_in_offset(in), "CONFIGURATION",
                           "reading the input failed");
        if (in->pos == in->end || in->buf[in->pos] != MQ_SEC_SUBSECTION)
            return 0;
        uint64_t soff = mq_in_offset(in);
        char name[256];
        uint32_t version;
        in->pos++;
        const uint8_t marker = MQ_SEC_SUBSECTION;
        if ((rc = mq_name(in, name, soff, "CONFIGURATION subsection")) ||
            (rc = mq_u32(in, &version, soff, "CONFIGURATION subsection")) ||
            (rc = config_keep(d, soff, &marker, 1)) || (rc = config_keep_name(d, soff, name)) ||
            (rc = config_keep_u32(d, soff, version)))
            return rc;
        /* Each at most once (QEMU sends each once): what is kept stays
         * small. */
        static const char *const known[] = {MQ_SUB_TARGET_PAGE_BITS, MQ_SUB_CAPABILITIES,
                                            MQ_SUB_UUID};
        for (unsigned k = 0; k < 3; k++) {
            if (strcmp(name, known[k]) != 0)
                continue;
            if (seen & (1u << k))
                return mq_fail(&d->err, MS_ECORRUPT, soff, "CONFIGURATION subsection",
                               "'%s' is sent a second time", name);
            seen |= 1u << k;
        }
        if (strcmp(name, MQ_SUB_TARGET_PAGE_BITS) == 0) {
            uint32_t bits;
            if ((rc = mq_u32(in, &bits, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep_u32(d, soff, bits)))
                return rc;
            if (bits < 12 || bits > 16)
                return mq_fail(&d->err, MS_EFEATURE, soff, "CONFIGURATION subsection",
                               "target page bits %u (12 to 16 are supported)", bits);
            d->page_size = 1u << bits;
        } else if (strcmp(name, MQ_SUB_CAPABILITIES) == 0) {
            /* u32 count, then each capability's name (u8 length, bytes). */
            uint32_t count;
            if ((rc = mq_u32(in, &count, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep_u32(d, soff, count)))
                return rc;
            if (count > 256)
                return mq_fail(&d->err, MS_ECORRUPT, soff, "CONFIGURATION subsection",
                               "%u capabilities", count);
            for (uint32_t i = 0; i < count; i++) {
                char cap[256];
                if ((rc = mq_name(in, cap, soff, "CONFIGURATION capability")) ||
                    (rc = config_keep_name(d, soff, cap)))
                    return rc;
                if (strcmp(cap, MQ_CAP_X_IGNORE_SHARED) == 0)
                    d->ignore_shared = true;
                else if (strcmp(cap, MQ_CAP_MAPPED_RAM) == 0)
                    d->mapped_ram = true;
            }
        } else if (strcmp(name, MQ_SUB_UUID) == 0) {
            /* multifd channels carry it too: they must match. */
            if ((rc = mq_bytes(in, d->uuid, sizeof d->uuid, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep(d, soff, d->uuid, sizeof d->uuid)))
                return rc;
            d->have_uuid = true;
        } else {
            return mq_fail(&d->err, MS_EFEATURE, soff, "CONFIGURATION subsection",
                           "unknown subsection '%s' version %u: its length is not known", name,
                           version);
        }
    }
}

/* ------------------------------------------------------------- commands */

static int read_command(mq_src *d, uint64_t off)
{
    uint16_t cmd, len;
    uint8_t data[16];
    int rc;
    if ((rc = mq_u16(&d->in, &cmd, off, "COMMAND")) || (rc = mq_u16(&d->in, &len, off, "COMMAND")))
        return rc;
    d->commands++;
    const char *name = mq_cmd_name(cmd);
    switch (cmd) {
    case MQ_CMD_OPEN_RETURN_PATH:
    case MQ_CMD_SWITCHOVER_START:
    case MQ_CMD_PING:
        if (len != (cmd == MQ_CMD_PING ? 4 : 0))
            return mq_fail(&d->err, MS_ECORRUPT, off, "COMMAND", "%s (%u) with %u bytes of data",
                           name, cmd, len);
        return mq_bytes(&d->in, data, len, off, "COMMAND");
    case MQ_CMD_POSTCOPY_ADVISE:
        /* Either nothing, or the OR of every block's page size and the target
         * page size. Blocks whose page size differs from the host's carry
         * one more field in MEM_SIZE that nothing announces per block. */
        if (len != 0 && len != 16)
            return mq_fail(&d->err, MS_ECORRUPT, off, "COMMAND",
                           "POSTCOPY_ADVISE with %u bytes of data (0 or 16 expected)", len);
        if ((rc = mq_bytes(&d->in, data, len, off, "COMMAND")))
            return rc;
        if (len == 16 && mq_be64(data) != mq_be64(data + 8))
            return mq_fail(&d->err, MS_EFEATURE, off, "COMMAND",
                           "POSTCOPY_ADVISE: RAM blocks with page sizes 0x%llx besides the "
                           "target page size 0x%llx (huge pages with postcopy) are not supported",
                           (unsigned long long)mq_be64(data),
                           (unsigned long long)mq_be64(data + 8));
        return 0;
    default:
        if (cmd > 0 && cmd <= MQ_CMD_MAX)
            return mq_fail(&d->err, MS_EFEATURE, off, "COMMAND",
                           "%s (%u): postcopy, COLO and packaged streams are not supported", name,
                           cmd);
        return mq_fail(&d->err, MS_ECORRUPT, off, "COMMAND", "unknown command %u", cmd);
    }
}

/* ------------------------------------------------------------- the trailer */

/* After EOF: nothing, or VMDESCRIPTION with the JSON trailer, then nothing. */
static int read_trailer(mq_src *d)
{
    mq_in *in = &d->in;
    uint64_t off = mq_in_offset(in);
    if (mq_in_fill(in, 1))
        return mq_fail(&d->err, MS_EIO, off, "after EOF", "reading the input failed");
    if (in->pos == in->end)
        return 0;
    uint8_t t = in->buf[in->pos];
    if (t != MQ_SEC_VMDESCRIPTION)
        return mq_fail(&d->err, MS_ECORRUPT, off, "after EOF",
                       "byte 0x%02x: only the JSON trailer (VMDESCRIPTION, 0x06) may follow", t);
    in->pos++;
    d->vmdesc_offset = off;
    uint32_t len;
    int rc = mq_u32(in, &len, off, "VMDESCRIPTION");
    if (rc)
        return rc;
    if (len > d->o.max_vmdesc_size)
        return mq_fail(&d->err, MS_ELIMIT, off, "VMDESCRIPTION",
                       "JSON trailer of %u bytes exceeds max_vmdesc_size (%u)", len,
                       d->o.max_vmdesc_size);
    /* Grown as bytes arrive, never ahead of them. */
    msi_buf js;
    msi_buf_init(&js, d->alloc);
    while (js.len < len) {
        if (mq_in_fill(in, 1)) {
            msi_buf_free(&js);
            return mq_fail(&d->err, MS_EIO, off, "VMDESCRIPTION", "reading the input failed");
        }
        size_t avail = in->end - in->pos;
        if (avail == 0) {
            size_t got = js.len;
            msi_buf_free(&js);
            return mq_fail(&d->err, MS_ETRUNCATED, off, "VMDESCRIPTION",
                           "the stream ends after %zu of the JSON trailer's %u bytes", got, len);
        }
        size_t take = len - js.len < avail ? len - js.len : avail;
        if (msi_buf_append(&js, in->buf + in->pos, take)) {
            msi_buf_free(&js);
            return mq_fail(&d->err, MS_ENOMEM, off, "VMDESCRIPTION", "out of memory");
        }
        in->pos += take;
    }
    d->has_vmdesc = true;
    if (!d->o.raw_only)
        rc = mq_vmsd_parse(d->alloc, &d->err, (const char *)js.data, js.len, off, &d->desc);
    msi_buf_free(&js);
    if (rc)
        return rc;
    uint64_t end = mq_in_offset(in);
    if (mq_in_fill(in, 1))
        return mq_fail(&d->err, MS_EIO, end, "after the JSON trailer", "reading the input failed");
    if (in->pos != in->end)
        return mq_fail(&d->err, MS_ECORRUPT, end, "after the JSON trailer",
                       "more bytes follow the end of QEMU's stream");
    return 0;
}

/* At EOF: QEMU ends every iterable section before EOF
 * (qemu_savevm_state_complete_precopy); a non-RAM one left open would lose
 * its END on export. */
static int check_ended(mq_src *d, uint64_t eof_off)
{
    for (size_t i = 0; i < d->nsections; i++) {
        const mq_section *s = &d->sections[i];
        if (s->iterable && !s->ended && !s->is_ram) {
            set_cur(d, i);
            int rc = mq_fail(&d->err, MS_ECORRUPT, eof_off, "EOF",
                             "the section was opened by START but not ended (END, 0x03)");
            set_cur(d, SIZE_MAX);
            return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- records */

static void own_record(mq_src *d, uint16_t type, uint16_t flags, uint64_t offset)
{
    memset(&d->rec, 0, sizeof d->rec);
    d->rec.type = type;
    d->rec.flags = flags;
    d->rec.offset = offset;
}

/* CONFIGURATION's subsections as the DEVICE "configuration" (docs/QEMU.md
 * section 3.3), before any page: the exporter writes them in QEMU's
 * CONFIGURATION, ahead of the RAM section. */
static int config_record(mq_src *d)
{
    bool decoded;
    const char *schema;
    d->dev_state.len = 0;
    if (mq_vmsd_encode(d->alloc, NULL, NULL, d->config.data, d->config.len, NULL, 0, &d->dev_state,
                       &decoded, &schema))
        return mq_fail(&d->err, MS_ENOMEM, CONFIG_OFFSET, "CONFIGURATION", "out of memory");
    own_record(d, MS_REC_DEVICE, MS_RECORD_MUST_UNDERSTAND, CONFIG_OFFSET);
    d->rec.device = (ms_device){.path = CONFIG_PATH,
                                .instance = 0,
                                .schema = CONFIG_PATH,
                                .version = CONFIG_VERSION,
                                .state = d->dev_state.data,
                                .state_size = d->dev_state.len};
    d->devices++;
    d->last = LAST_CONFIG;
    return 1;
}

/* ------------------------------------------------------------ checks */

/* Reports a problem that does not stop the reading (msi_source_problem):
 * "section ID 'NAME' instance N: WHAT at offset OFF: DETAIL", as the
 * module's failures read. Status 0 makes it a warning. */
__attribute__((format(printf, 6, 7))) static void problem(mq_src *d, int status,
                                                          const mq_section *s, const char *what,
                                                          uint64_t off, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* Names from the trailer are any JSON string: one line, printable. */
    for (char *c = detail; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (s)
        msi_source_problem(d->src, status, off,
                           "section %u '%s' instance %u: %s at offset %llu: %s", s->id, s->idstr,
                           s->instance, what, (unsigned long long)off, detail);
    else
        msi_source_problem(d->src, status, off, "%s at offset %llu: %s", what,
                           (unsigned long long)off, detail);
}

/*
 * A device section against the JSON trailer (docs/QEMU.md section 3.2).
 * QEMU writes the trailer from what it saves, so each FULL section has a
 * description of its name and instance whose fields and subsections
 * account for exactly its bytes. QEMU's loader never reads the trailer:
 * it reads a section by the destination's own vmsd, and fails when the
 * section's bytes end elsewhere than the footer or a subsection is not
 * where it expects it (errors); a section the trailer does not describe,
 * or describes at another version, it loads all the same (warnings).
 */
static void check_section(mq_src *d, const mq_section *s, const mq_held *h)
{
    const mq_vmsd_section vs = {s->idstr, s->instance, s->version, s->iterable};
    mq_vmsd_check c;
    if (!d->desc || mq_vmsd_check_section(d->desc, &vs, h->data.data, h->data.len, &c))
        return; /* no trailer (or no memory to check it): nothing said */
    const char *vmsd = c.vmsd_name ? c.vmsd_name : s->idstr;
    switch (c.verdict) {
    case MQ_VMSD_UNDESCRIBED:
        problem(d, 0, s, "section header", s->offset, "the JSON trailer does not describe it");
        break;
    case MQ_VMSD_INSTANCE:
        problem(d, 0, s, "section header", s->offset,
                "the JSON trailer describes '%s' as instance %lld, not %u", s->idstr, c.instance,
                s->instance);
        break;
    case MQ_VMSD_VERSION:
        problem(d, 0, s, "section header", s->offset,
                "version %u, but the JSON trailer describes vmsd '%s' version %lld", s->version,
                vmsd, c.version);
        break;
    case MQ_VMSD_MALFORMED:
        problem(d, 0, s, "section header", s->offset,
                "the JSON trailer's description of vmsd '%s' cannot be checked: %s", vmsd, c.what);
        break;
    case MQ_VMSD_SIZE:
        problem(d, MS_ECORRUPT, s, "section data", s->data_offset,
                "%zu bytes, but the JSON trailer's fields for vmsd '%s' version %u account for "
                "%llu",
                h->data.len, vmsd, s->version, (unsigned long long)c.expected);
        break;
    case MQ_VMSD_MARKER:
        problem(d, MS_ECORRUPT, s, "section data", s->data_offset + c.at,
                "byte %zu of the section, as the JSON trailer's fields for vmsd '%s' version %u "
                "place it: %s",
                c.at, vmsd, s->version, c.what);
        break;
    default:
        break;
    }
}

/* After the last section: the descriptions no section came for (warnings:
 * the loader does not read them). At most MAX_UNUSED are named. */
#define MAX_UNUSED 64u
static void check_trailer(mq_src *d)
{
    size_t iter = 0, named = 0, more = 0;
    const char *name, *vmsd;
    long long instance;
    bool twice;
    while (mq_vmsd_unused(d->desc, &iter, &name, &instance, &vmsd, &twice)) {
        if (named == MAX_UNUSED) {
            more++;
            continue;
        }
        named++;
        if (twice)
            problem(d, 0, NULL, "VMDESCRIPTION", d->vmdesc_offset,
                    "the JSON trailer describes '%s' instance %lld a second time", name, instance);
        else
            problem(d, 0, NULL, "VMDESCRIPTION", d->vmdesc_offset,
                    "the JSON trailer describes '%s' instance %lld (vmsd '%s'), but no section "
                    "of that name and instance was sent",
                    name ? name : "(no name)", instance, vmsd ? vmsd : "?");
    }
    if (more)
        problem(d, 0, NULL, "VMDESCRIPTION", d->vmdesc_offset,
                "%zu more descriptions of the JSON trailer match no section", more);
}

/* The next held section as a DEVICE record, in stream order. */
static int device_record(mq_src *d)
{
    if (d->dev_next == d->nheld) {
        if (d->desc)
            check_trailer(d);
        d->state = ST_END;
        return 0;
    }
    const size_t i = d->dev_next++;
    mq_held *h = &d->held[i];
    const mq_section *s = &d->sections[h->section];
    check_section(d, s, h);
    const mq_vmsd_section vs = {s->idstr, s->instance, s->version, s->iterable};
    const char *schema = NULL;
    bool decoded = false;
    d->dev_state.len = 0;
    if (mq_vmsd_encode(d->alloc, d->desc, &vs, h->data.data, h->data.len, h->parts, h->nparts,
                       &d->dev_state, &decoded, &schema))
        return mq_fail(&d->err, MS_ENOMEM, mq_in_offset(&d->in), "device state",
                       "out of memory encoding section %u '%s'", s->id, s->idstr);
    /* Without the trailer, the vmsd name is the id string's last
     * component: QEMU builds id strings as "DEVICE-PATH/VMSD-NAME". */
    if (!schema) {
        const char *slash = strrchr(s->idstr, '/');
        schema = slash && slash[1] ? slash + 1 : s->idstr;
    }
    /* A record a reader would hand out; refused as a writer refuses it. */
    size_t pl = strlen(s->idstr), sl = strlen(schema);
    if (!msi_text_ok((const uint8_t *)s->idstr, pl))
        return mq_fail(&d->err, MS_EINVAL, mq_in_offset(&d->in), "device state",
                       "section %u '%s' instance %u: device path \"%s\" is empty, longer than %u "
                       "bytes or not UTF-8",
                       s->id, s->idstr, s->instance, s->idstr, MS_MAX_PATH_LEN);
    if (sl == 0 || sl > MS_MAX_NAME_LEN || !msi_text_ok((const uint8_t *)schema, sl))
        return mq_fail(&d->err, MS_EINVAL, mq_in_offset(&d->in), "device state",
                       "section %u '%s' instance %u: device \"%s\": schema name is empty, longer "
                       "than %u bytes or not UTF-8",
                       s->id, s->idstr, s->instance, s->idstr, MS_MAX_NAME_LEN);
    own_record(d, MS_REC_DEVICE, MS_RECORD_MUST_UNDERSTAND, s->offset);
    d->rec.device = (ms_device){.path = s->idstr,
                                .instance = s->instance,
                                .schema = schema,
                                .version = s->version,
                                .state = d->dev_state.data,
                                .state_size = d->dev_state.len};
    d->devices++;
    if (decoded)
        d->devices_decoded++;
    d->last = LAST_DEVICE;
    d->last_dev = i;
    d->last_decoded = decoded;
    return 1;
}

static int end_record(mq_src *d)
{
    own_record(d, MS_REC_END, MS_RECORD_MUST_UNDERSTAND, mq_in_offset(&d->in));
    d->totals.bytes = mq_in_offset(&d->in);
    d->totals.devices = d->devices;
    d->totals.rounds = mq_sink_rounds(d->sink);
    d->rec.totals = d->totals;
    d->last = LAST_NONE;
    d->state = ST_DONE;
    return 1;
}

/* ------------------------------------------------------------- stepping */

static int read_item(mq_src *d)
{
    uint64_t off = mq_in_offset(&d->in);
    uint8_t t;
    int rc = mq_u8(&d->in, &t, off, "section type");
    if (rc)
        return rc;
    switch (t) {
    case MQ_SEC_EOF:
        /* EOF is one byte, just read. */
        if ((rc = check_ended(d, off)))
            return rc;
        d->state = d->mfd ? ST_FINISH : ST_TRAILER;
        return 0;
    case MQ_SEC_START:
    case MQ_SEC_FULL:
        return read_section_start(d, t, off);
    case MQ_SEC_PART:
    case MQ_SEC_END:
        return read_section_part(d, t, off);
    case MQ_SEC_COMMAND:
        return read_command(d, off);
    case MQ_SEC_CONFIGURATION:
        return mq_fail(&d->err, MS_ECORRUPT, off, "section type",
                       "CONFIGURATION (0x07) is only valid right after the file header");
    default:
        return mq_fail(&d->err, MS_ECORRUPT, off, "section type",
                       "0x%02x is not a section type QEMU writes here (EOF 0x00, START "
                       "0x01, PART 0x02, END 0x03, FULL 0x04, COMMAND 0x08)",
                       t);
    }
}

/* One item of "ram", and what the driver does between items. */
static int ram_step(mq_src *d)
{
    uint64_t entry;
    int rc = mq_ram_step(d->ram);
    switch (rc) {
    case MQ_RAM_ITEM:
        return 0;
    case MQ_RAM_EOS:
        if ((rc = expect_footer(d, &d->sections[d->cur])))
            return rc;
        set_cur(d, SIZE_MAX);
        d->state = ST_SECTIONS;
        return 0;
    case MQ_RAM_SYNC:
        /* Messages name the channel, not the main stream's section. */
        mq_error_context(&d->err, NULL);
        mq_multifd_sync_begin(d->mfd, mq_ram_sync_offset(d->ram));
        d->state = ST_SYNC;
        return 0;
    case MQ_RAM_BLOCK:
        /* mapped-ram: the block's header follows its entry; the next entry
         * comes after the space of its pages. */
        if (!d->mapped_ram)
            return 0;
        return mq_mram_header(&d->mram, d->alloc, &d->err, &d->in, d->sink,
                              mq_ram_last_block(d->ram, &entry));
    case MQ_RAM_TABLE:
        d->table_off = mq_ram_table_offset(d->ram);
        if ((rc = mq_sink_end_table(d->sink, d->table_off)))
            return rc;
        /* mapped-ram pages are complete in the file once the table is read. */
        if (d->mapped_ram) {
            d->mapped_ram_read = true;
            d->state = ST_MRAM;
        }
        return 0;
    default:
        return rc;
    }
}

static int trailer_step(mq_src *d)
{
    int rc;
    if ((rc = mq_sink_finish(d->sink, mq_in_offset(&d->in))) || (rc = read_trailer(d)))
        return rc;
    uint64_t ps = mq_vmsd_page_size(d->desc);
    if (ps && ps != d->page_size)
        return mq_fail(&d->err, MS_ECORRUPT, mq_in_offset(&d->in), "VMDESCRIPTION",
                       "page_size %llu, but the RAM section was read with %u-byte pages",
                       (unsigned long long)ps, d->page_size);
    /* Devices come after every page. */
    mq_sink_seal(d->sink);
    d->state = ST_DEVICES;
    return 0;
}

/* Does one step: 1 with a record of the driver's in d->rec, 0 when the
 * sink may have records (or the step only moved on), 2 after END, or a
 * failure. */
static int step(mq_src *d)
{
    int rc;
    switch (d->state) {
    case ST_INFO:
        d->state = ST_CONFIG;
        if (!d->machine[0])
            return 0;
        own_record(d, MS_REC_INFO, 0, CONFIG_OFFSET);
        d->rec.info.machine = d->machine;
        d->last = LAST_NONE;
        return 1;
    case ST_CONFIG:
        d->state = ST_SECTIONS;
        return d->config.len ? config_record(d) : 0;
    case ST_SECTIONS:
        return read_item(d);
    case ST_RAM:
        return ram_step(d);
    case ST_MRAM:
        rc = mq_mram_step(d->mram, &d->in, d->sink, d->table_off);
        if (rc == 1)
            d->state = ST_RAM;
        return rc < 0 ? rc : 0;
    case ST_SYNC:
        rc = mq_multifd_sync_step(d->mfd, d->sink);
        if (rc == 1) {
            set_cur(d, d->cur);
            d->state = ST_RAM;
        }
        return rc < 0 ? rc : 0;
    case ST_FINISH:
        rc = mq_multifd_finish_step(d->mfd, d->sink, mq_in_offset(&d->in));
        if (rc == 1)
            d->state = ST_TRAILER;
        return rc < 0 ? rc : 0;
    case ST_TRAILER:
        return trailer_step(d);
    case ST_DEVICES:
        return device_record(d);
    case ST_END:
        return end_record(d);
    default:
        return 2;
    }
}

/* ------------------------------------------------------------- the ops */

static int bid(const uint8_t *head, size_t len)
{
    if (len < 4 || mq_be32(head) != MQ_QEVM_MAGIC)
        return 0;
    if (len < MQ_FILE_HEADER_SIZE)
        return 50; /* the magic, and no version to tell */
    /* QEVM with another version: QEMU's, but not read (open says why). */
    return mq_be32(head + 4) == MQ_QEVM_VERSION ? 100 : 10;
}

/* A multifd channel starts with its init record's magic and version 1. */
static int bid_extra(const uint8_t *head, size_t len)
{
    if (len < 4 || mq_be32(head) != MQ_MF_MAGIC)
        return 0;
    return len >= 8 && mq_be32(head + 4) == MQ_MF_VERSION ? 100 : 50;
}

/* The file header, CONFIGURATION, the parts, the channels' init records. */
static int open_stream(msi_source *s, mq_src *d)
{
    mq_in *in = &d->in;
    uint32_t magic, version;
    int rc;
    if (!s->io.read && !s->io.pread)
        return mq_fail(&d->err, MS_EINVAL, 0, "input", "no read callback");
    if (mq_in_open(in, d->alloc, MQ_IN_CAP, &d->err, false))
        return mq_fail(&d->err, MS_ENOMEM, 0, "input", "out of memory");
    in->read = s->io.read;
    in->read_ctx = s->io.read_ctx;
    in->pread = s->io.pread;
    in->pread_ctx = s->io.pread_ctx;
    if ((rc = mq_u32(in, &magic, 0, "file header")))
        return rc;
    if (magic != MQ_QEVM_MAGIC) {
        if (magic == mq_be32(msi_magic))
            return mq_fail(&d->err, MS_EMAGIC, 0, "file header",
                           "this is a libmigstream stream, not a QEMU one");
        return mq_fail(&d->err, MS_EMAGIC, 0, "file header",
                       "magic 0x%08x is not QEMU's 0x5145564d (\"QEVM\")", magic);
    }
    if ((rc = mq_u32(in, &version, 4, "file header")))
        return rc;
    if (version != MQ_QEVM_VERSION)
        return mq_fail(&d->err, MS_EVERSION, 4, "file header",
                       "QEVM version %u (only version 3, QEMU 0.13 and later, is read)", version);
    if (mq_in_fill(in, 1))
        return mq_fail(&d->err, MS_EIO, CONFIG_OFFSET, "section", "reading the input failed");
    if (in->pos < in->end && in->buf[in->pos] == MQ_SEC_CONFIGURATION) {
        in->pos++;
        if ((rc = read_configuration(d, CONFIG_OFFSET)))
            return rc;
    }
    if (d->mapped_ram && d->ignore_shared)
        return mq_fail(&d->err, MS_EFEATURE, CONFIG_OFFSET, "CONFIGURATION capability",
                       "mapped-ram with x-ignore-shared is not supported");
    if (s->io.nchannels && d->mapped_ram)
        return mq_fail(&d->err, MS_EINVAL, CONFIG_OFFSET, "CONFIGURATION capability",
                       "a mapped-ram stream has no multifd channel streams (its channels "
                       "write into the file), but channels were given");
    const mq_sink_config kc = {.page_size = d->page_size,
                               .max_blocks = d->o.max_ram_blocks,
                               .page_file = !d->o.no_page_cache,
                               .tmpdir = d->o.tmpdir};
    const mq_ram_config rc_ = {.page_size = d->page_size,
                               .max_ram_bytes = d->o.max_ram_bytes,
                               .ignore_shared = d->ignore_shared,
                               .mapped_ram = d->mapped_ram,
                               .channels = s->io.nchannels > 0,
                               .page_file = !d->o.no_page_cache};
    if (!(d->sink = mq_sink_new(d->alloc, &d->err, &kc)) ||
        !(d->ram = mq_ram_new(d->alloc, &d->err, in, d->sink, &rc_)))
        return mq_fail(&d->err, MS_ENOMEM, mq_in_offset(in), "RAM", "out of memory");
    if (s->io.nchannels) {
        if (s->io.nchannels > MS_QEMU_MAX_CHANNELS)
            return mq_fail(&d->err, MS_ELIMIT, 0, "multifd", "%zu channels (at most %u)",
                           s->io.nchannels, MS_QEMU_MAX_CHANNELS);
        if (!(d->mfd = mq_multifd_new(d->alloc, &d->err, s->io.channels, s->io.nchannels,
                                      d->o.max_decode_allowance, d->o.max_decode_ratio)))
            return mq_fail(&d->err, MS_ENOMEM, 0, "multifd", "out of memory");
        if ((rc = mq_multifd_open(d->mfd, d->page_size, d->have_uuid ? d->uuid : NULL)))
            return rc;
    }
    /* The version a libmigstream stream of the same contents would carry
     * (FORMAT.md section 11.2), not the newest this library knows. */
    s->header.major = MS_FORMAT_MAJOR;
    s->header.minor = msi_minor_for(s->header.required_features);
    s->header.page_size = d->page_size;
    snprintf(s->header.writer_name, sizeof s->header.writer_name, "qemu");
    s->info.machine = d->machine[0] ? d->machine : NULL;
    d->state = ST_INFO;
    return 0;
}

static int src_open(msi_source *s)
{
    mq_src *d = msi_calloc(&s->alloc, 1, sizeof *d);
    if (!d)
        return msi_source_fail(s, MS_ENOMEM, 0, "input at offset 0: out of memory");
    s->state = d;
    d->src = s;
    d->alloc = &s->alloc;
    ms_qemu_import_options_init(&d->o);
    if (s->options) { /* the caller's, by common.h's "Growing structs" */
        const ms_qemu_import_options *o = s->options;
        const char *why = msi_struct_take(&d->o, MSI_QEMU_IMPORT_OPTIONS_END, o, o->struct_size);
        if (why)
            return msi_source_fail(s, MS_EINVAL, 0, "invalid QEMU options: %s", why);
        d->o.struct_size = sizeof d->o;
    }
    d->o.writer = NULL;
    mq_options_defaults(&d->o);
    d->cur = SIZE_MAX;
    d->page_size = 4096;
    msi_buf_init(&d->config, d->alloc);
    msi_buf_init(&d->dev_state, d->alloc);
    return open_stream(s, d) ? sync_error(s, d) : 0;
}

static int src_next(msi_source *s, const ms_record **out)
{
    mq_src *d = s->state;
    for (;;) {
        int got = mq_sink_next(d->sink, &d->rec, d->totals.pages);
        if (got < 0)
            return sync_error(s, d);
        if (got) {
            d->last = LAST_SINK;
        } else {
            int rc = step(d);
            if (rc < 0 || d->err.status)
                return sync_error(s, d);
            if (rc == 2)
                return 0;
            if (rc == 0)
                continue;
        }
        d->rec.index = d->totals.records++;
        d->rec.known = true;
        *out = &d->rec;
        return 1;
    }
}

static void src_close(msi_source *s)
{
    mq_src *d = s->state;
    if (!d)
        return;
    mq_ram_free(d->ram);
    mq_multifd_free(d->mfd);
    mq_mram_free(d->mram);
    mq_sink_free(d->sink);
    mq_vmsd_free(d->alloc, d->desc);
    for (size_t i = 0; i < d->nheld; i++) {
        msi_buf_free(&d->held[i].data);
        msi_free(d->alloc, d->held[i].parts);
    }
    msi_free(d->alloc, d->held);
    msi_free(d->alloc, d->sections);
    msi_tree_each_post(d->by_id, free_section_id, (void *)d->alloc);
    msi_buf_free(&d->config);
    msi_buf_free(&d->dev_state);
    mq_in_close(&d->in, d->alloc);
    msi_free(d->alloc, d);
    s->state = NULL;
}

/* The exporter with its default options. */
static int src_export(ms_read_fn in, void *in_ctx, ms_write_fn out, void *out_ctx, char *err,
                      size_t err_size)
{
    ms_qemu_export *x = ms_qemu_export_new(NULL);
    if (!x) {
        snprintf(err, err_size, "out of memory");
        return MS_ENOMEM;
    }
    int rc = ms_qemu_export_run(x, in, in_ctx, out, out_ctx);
    if (rc)
        snprintf(err, err_size, "%s", ms_qemu_export_errmsg(x));
    ms_qemu_export_free(x);
    return rc;
}

const msi_source_ops mq_source_ops = {
    .name = "qemu",
    .title = "QEMU migration stream",
    .bid = bid,
    .bid_extra = bid_extra,
    .extra_title = "multifd channel",
    .open = src_open,
    .next = src_next,
    .close = src_close,
    .export = src_export,
};

/* ------------------------------------------------------ for the importer */

uint64_t mq_source_offset(const msi_source *s)
{
    const mq_src *d = s->state;
    return d ? mq_in_offset(&d->in) : 0;
}

void mq_source_stats(const msi_source *s, ms_qemu_import_stats *o)
{
    const mq_src *d = s->state;
    memset(o, 0, sizeof *o);
    if (!d)
        return;
    o->bytes_read = mq_in_offset(&d->in);
    o->sections = d->sections_read;
    if (d->ram) {
        const mq_ram_counts *n = mq_ram_counts_of(d->ram);
        o->ram_blocks = n->blocks;
        o->ram_bytes = n->bytes;
        o->zero_pages = n->zero_pages;
        o->normal_pages = n->normal_pages;
        o->xbzrle_pages = n->xbzrle_pages;
        o->compressed_pages = n->compressed_pages;
    }
    uint64_t normal, zero;
    mq_mram_counts(d->mram, &normal, &zero);
    o->normal_pages += normal;
    o->zero_pages += zero;
    o->mapped_ram = d->mapped_ram_read;
    o->ram_rounds = d->sink ? mq_sink_rounds(d->sink) : 0;
    o->devices = d->devices;
    o->devices_decoded = d->devices_decoded;
    o->commands = d->commands;
    o->has_vmdesc = d->has_vmdesc;
    snprintf(o->machine, sizeof o->machine, "%s", d->machine);
    if (d->mfd)
        mq_multifd_stats(d->mfd, o);
}

int mq_source_writer_failed(msi_source *s, const msi_copy_stop *stop, ms_writer *w, int rc)
{
    mq_src *d = s->state;
    int st = ms_writer_status(w) ? ms_writer_status(w) : rc;
    const char *msg = ms_writer_errmsg(w);
    switch (d->last) {
    case LAST_SINK: {
        mq_blame b;
        mq_sink_blame(d->sink, stop->item, &b);
        mq_error_context(&d->err, "%s", b.context);
        if (b.block)
            mq_fail(&d->err, st, b.offset, b.what, "block '%s': writing the output: %s", b.block,
                    msg);
        else
            mq_fail(&d->err, st, b.offset, b.what, "writing the output: %s", msg);
        break;
    }
    case LAST_CONFIG:
        mq_error_context(&d->err, NULL);
        mq_fail(&d->err, st, CONFIG_OFFSET, "CONFIGURATION", "writing the output: %s", msg);
        d->devices--;
        break;
    case LAST_DEVICE: {
        const mq_section *sec = &d->sections[d->held[d->last_dev].section];
        mq_error_context(&d->err, NULL);
        mq_fail(&d->err, st, mq_in_offset(&d->in), "device state",
                "section %u '%s' instance %u: %s", sec->id, sec->idstr, sec->instance, msg);
        d->devices--;
        if (d->last_decoded)
            d->devices_decoded--;
        break;
    }
    default:
        mq_error_context(&d->err, NULL);
        mq_fail(&d->err, st, mq_in_offset(&d->in), "output", "writing the output: %s", msg);
        break;
    }
    return sync_error(s, d);
}
