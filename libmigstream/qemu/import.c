/*
 * The QEMU importer (docs/QEMU.md): the public API, buffered input, QEMU's
 * file header, CONFIGURATION, COMMAND and section framing, non-RAM sections
 * held until the JSON trailer, and the trailer itself. The "ram" section's
 * items are read by qemu_ram.c, multifd channels by qemu_multifd.c,
 * mapped-ram pages by qemu_mapped_ram.c; device state is encoded by
 * qemu_vmsd.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/fdio.h"
#include "format/options.h"
#include "qemu/import.h"
#include "migstream/writer.h"

#define DEF_SECTION (16u << 20)
#define DEF_DEVICES (64ull << 20)
#define DEF_VMDESC (16u << 20)
#define MAX_VMDESC (256u << 20)
#define DEF_RAM (16ull << 40)
#define DEF_BLOCKS 4096u
#define MAX_SECTIONS 65536u /* section headers with distinct ids */
#define MAX_CONFIG_NAME 255u

/* Largest header after a footer that the footer check looks at: type, id,
 * idstr length and idstr, instance, version. */
#define NEXT_HEADER_MAX (1 + 4 + 1 + 255 + 4 + 4)

/* QEMU's COMMAND numbers (migration/savevm.c, enum qemu_vm_cmd). */
enum {
    CMD_OPEN_RETURN_PATH = 1,
    CMD_PING = 2,
    CMD_POSTCOPY_ADVISE = 3,
    CMD_POSTCOPY_LISTEN = 4,
    CMD_POSTCOPY_RUN = 5,
    CMD_POSTCOPY_RAM_DISCARD = 6,
    CMD_PACKAGED = 7,
    CMD_ENABLE_COLO = 8,
    CMD_POSTCOPY_RESUME = 9,
    CMD_RECV_BITMAP = 10,
    CMD_SWITCHOVER_START = 11,
};

static const char *const cmd_names[] = {
    "INVALID",      "OPEN_RETURN_PATH",     "PING",     "POSTCOPY_ADVISE", "POSTCOPY_LISTEN",
    "POSTCOPY_RUN", "POSTCOPY_RAM_DISCARD", "PACKAGED", "ENABLE_COLO",     "POSTCOPY_RESUME",
    "RECV_BITMAP",  "SWITCHOVER_START",
};

/* ------------------------------------------------------------------ errors */

int qi_fail(qi *q, int status, uint64_t off, const char *what, const char *fmt, ...)
{
    if (q->status)
        return q->status;
    q->status = status;
    q->err_offset = off;
    size_t n = 0;
    if (q->cur != SIZE_MAX) {
        const qi_section *s = &q->sections[q->cur];
        n = (size_t)snprintf(q->msg, sizeof q->msg, "section %u '%s' instance %u: ", s->id,
                             s->idstr, s->instance);
        if (n >= sizeof q->msg)
            n = sizeof q->msg - 1;
    }
    int k = snprintf(q->msg + n, sizeof q->msg - n, "%s at offset %llu: ", what,
                     (unsigned long long)off);
    if (k > 0)
        n += (size_t)k < sizeof q->msg - n ? (size_t)k : sizeof q->msg - n - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->msg + n, sizeof q->msg - n, fmt, ap);
    va_end(ap);
    return status;
}

/* A writer failure, in the writer's words. */
static int writer_fail(qi *q, uint64_t off, const char *what)
{
    return qi_fail(q, ms_writer_status(q->w), off, what, "writing the output: %s",
                   ms_writer_errmsg(q->w));
}

/* ------------------------------------------------------------------- input */

uint64_t qi_offset(const qi *q)
{
    return q->in.base + q->in.pos;
}

int qi_in_fill(qi_in *in, size_t n)
{
    if (in->end - in->pos >= n || in->eof)
        return 0;
    if (in->pos > 0) {
        memmove(in->buf, in->buf + in->pos, in->end - in->pos);
        in->base += in->pos;
        in->end -= in->pos;
        in->pos = 0;
    }
    while (in->end < n && !in->eof) {
        ssize_t k = in->pread ? in->pread(in->pread_ctx, in->buf + in->end, in->cap - in->end,
                                          in->base + in->end)
                              : in->fn(in->ctx, in->buf + in->end, in->cap - in->end);
        if (k < 0)
            return MS_EIO;
        if (k == 0)
            in->eof = true;
        else if ((size_t)k > in->cap - in->end)
            return MS_EIO; /* a callback that claims more than it was given */
        else
            in->end += (size_t)k;
    }
    return 0;
}

/* Reads until @n bytes are buffered or the input ends. 0 or MS_EIO. */
static int fill(qi *q, size_t n)
{
    return qi_in_fill(&q->in, n);
}

int qi_seek(qi *q, uint64_t to, uint64_t off, const char *what)
{
    qi_in *in = &q->in;
    if (!in->pread)
        return qi_fail(q, MS_EFEATURE, off, what,
                       "mapped-ram streams need positional reads of the main stream (a "
                       "file, not a pipe)");
    if (to < qi_offset(q))
        return qi_fail(q, MS_ECORRUPT, off, what, "offset 0x%llx lies behind the stream's 0x%llx",
                       (unsigned long long)to, (unsigned long long)qi_offset(q));
    if (to - in->base <= in->end) {
        in->pos = (size_t)(to - in->base);
        return 0;
    }
    in->base = to;
    in->pos = in->end = 0;
    in->eof = false;
    return 0;
}

int qi_need(qi *q, size_t n, uint64_t off, const char *what)
{
    if (fill(q, n))
        return qi_fail(q, MS_EIO, off, what, "reading the input failed");
    if (q->in.end - q->in.pos < n)
        return qi_fail(q, MS_ETRUNCATED, off, what,
                       "the stream ends after %llu bytes, %zu more were expected",
                       (unsigned long long)(q->in.base + q->in.end), n - (q->in.end - q->in.pos));
    return 0;
}

int qi_u8(qi *q, uint8_t *v, uint64_t off, const char *what)
{
    int rc = qi_need(q, 1, off, what);
    if (!rc)
        *v = q->in.buf[q->in.pos++];
    return rc;
}

int qi_u16(qi *q, uint16_t *v, uint64_t off, const char *what)
{
    int rc = qi_need(q, 2, off, what);
    if (!rc) {
        *v = qi_be16(q->in.buf + q->in.pos);
        q->in.pos += 2;
    }
    return rc;
}

int qi_u32(qi *q, uint32_t *v, uint64_t off, const char *what)
{
    int rc = qi_need(q, 4, off, what);
    if (!rc) {
        *v = qi_be32(q->in.buf + q->in.pos);
        q->in.pos += 4;
    }
    return rc;
}

int qi_u64(qi *q, uint64_t *v, uint64_t off, const char *what)
{
    int rc = qi_need(q, 8, off, what);
    if (!rc) {
        *v = qi_be64(q->in.buf + q->in.pos);
        q->in.pos += 8;
    }
    return rc;
}

int qi_bytes(qi *q, void *dst, size_t n, uint64_t off, const char *what)
{
    int rc = qi_need(q, n, off, what);
    if (!rc) {
        memcpy(dst, q->in.buf + q->in.pos, n);
        q->in.pos += n;
    }
    return rc;
}

int qi_name(qi *q, char out[256], uint64_t off, const char *what)
{
    uint8_t len;
    int rc = qi_u8(q, &len, off, what);
    if (rc)
        return rc;
    if (len == 0)
        return qi_fail(q, MS_ECORRUPT, off, what, "empty name (length byte 0)");
    if ((rc = qi_bytes(q, out, len, off, what)))
        return rc;
    out[len] = 0;
    if (memchr(out, 0, len))
        return qi_fail(q, MS_ECORRUPT, off, what, "name holds a NUL byte");
    return 0;
}

/* ------------------------------------------------------------ sections */

static qi_section *find_section(qi *q, uint32_t id)
{
    for (size_t i = q->nsections; i-- > 0;)
        if (q->sections[i].id == id)
            return &q->sections[i];
    return NULL;
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
static bool next_item_ok(qi *q, const uint8_t *p, size_t n, bool input_ends)
{
    if (n == 0)
        return input_ends; /* truncated after the footer: reported as such */
    switch (p[0]) {
    case QV_EOF:
        return (n == 1 && input_ends) || (n >= 2 && p[1] == QV_VMDESCRIPTION);
    case QV_START:
    case QV_FULL: {
        if (n < 6)
            return false;
        size_t len = p[5];
        if (len == 0 || n < 6 + len + 8 || !printable(p + 6, len))
            return false;
        const qi_section *s = find_section(q, qi_be32(p + 1));
        /* A known id comes back only under the same name and instance. */
        return !s || (strlen(s->idstr) == len && memcmp(s->idstr, p + 6, len) == 0 &&
                      s->instance == qi_be32(p + 6 + len));
    }
    case QV_PART:
    case QV_END: {
        if (n < 5)
            return false;
        /* An ended one too: the PART or END is then refused by name rather
         * than taken as the device's bytes. */
        const qi_section *s = find_section(q, qi_be32(p + 1));
        return s && s->iterable;
    }
    case QV_COMMAND: {
        if (n < 5)
            return false;
        uint16_t cmd = qi_be16(p + 1), len = qi_be16(p + 3);
        switch (cmd) {
        case CMD_OPEN_RETURN_PATH:
        case CMD_SWITCHOVER_START:
            return len == 0;
        case CMD_PING:
            return len == 4;
        default:
            return cmd > 0 && cmd <= CMD_SWITCHOVER_START;
        }
    }
    default:
        return false;
    }
}

static int hold_append(qi *q, qi_held *h, const uint8_t *p, size_t n, uint64_t start)
{
    const char *what = "section data";
    if (n > q->opts.max_section_size - h->data.len)
        return qi_fail(q, MS_ELIMIT, start, what,
                       "no section footer within %u bytes (max_section_size)",
                       q->opts.max_section_size);
    if (n > q->opts.max_device_bytes - q->held_bytes)
        return qi_fail(q, MS_ELIMIT, start, what,
                       "device sections exceed %llu bytes in all (max_device_bytes)",
                       (unsigned long long)q->opts.max_device_bytes);
    if (msi_buf_append(&h->data, p, n))
        return qi_fail(q, MS_ENOMEM, start, what, "out of memory holding %zu bytes", n);
    q->held_bytes += n;
    return 0;
}

/* Opens the next part (START, PART or END) of an iterable non-RAM section.
 * Each part is charged QI_PART_COST against max_device_bytes, so empty
 * parts cannot grow the list without bound. */
static int new_part(qi *q, qi_held *h, uint64_t off)
{
    if (QI_PART_COST > q->opts.max_device_bytes - q->held_bytes)
        return qi_fail(q, MS_ELIMIT, off, "section header",
                       "device sections exceed %llu bytes in all (max_device_bytes), "
                       "counting %u bytes for each part of an iterable section",
                       (unsigned long long)q->opts.max_device_bytes, QI_PART_COST);
    if (h->nparts == h->parts_cap) {
        size_t cap = h->parts_cap ? h->parts_cap * 2 : 8;
        uint64_t *n = msi_realloc(&q->alloc, h->parts, cap * sizeof *n);
        if (!n)
            return qi_fail(q, MS_ENOMEM, off, "section header", "out of memory");
        h->parts = n;
        h->parts_cap = cap;
    }
    h->parts[h->nparts++] = 0;
    q->held_bytes += QI_PART_COST;
    return 0;
}

/* Reads a non-RAM section's bytes up to and including its footer; for an
 * iterable section, as its newest part. */
static int read_held(qi *q, qi_section *s, uint64_t off)
{
    qi_held *h = &q->held[s->held];
    qi_in *in = &q->in;
    const uint64_t start = qi_offset(q);
    const size_t before = h->data.len;
    int rc;
    if (s->iterable && (rc = new_part(q, h, off)))
        return rc;
    for (;;) {
        if (fill(q, 1))
            return qi_fail(q, MS_EIO, qi_offset(q), "section data", "reading the input failed");
        if (in->pos == in->end)
            return qi_fail(q, MS_ETRUNCATED, start, "section data",
                           "the stream ends after %llu bytes, before the section's footer "
                           "(0x7e and section id %u)",
                           (unsigned long long)qi_offset(q), s->id);
        const uint8_t *p = in->buf + in->pos;
        const uint8_t *m = memchr(p, QV_FOOTER, in->end - in->pos);
        size_t plain = m ? (size_t)(m - p) : in->end - in->pos;
        rc = hold_append(q, h, p, plain, start);
        if (rc)
            return rc;
        in->pos += plain;
        if (!m)
            continue;
        /* A 0x7E: the footer if the section id follows and then an item. */
        if (fill(q, 5 + NEXT_HEADER_MAX))
            return qi_fail(q, MS_EIO, qi_offset(q), "section data", "reading the input failed");
        size_t avail = in->end - in->pos;
        p = in->buf + in->pos;
        if (avail >= 5 && qi_be32(p + 1) == s->id &&
            next_item_ok(q, p + 5, avail - 5, in->eof && avail < 5 + NEXT_HEADER_MAX)) {
            in->pos += 5;
            if (s->iterable)
                h->parts[h->nparts - 1] = h->data.len - before;
            return 0;
        }
        if ((rc = hold_append(q, h, p, 1, start)))
            return rc;
        in->pos++;
    }
}

static int new_section(qi *q, uint8_t type, uint32_t id, const char *idstr, uint32_t instance,
                       uint32_t version, uint64_t off, qi_section **out)
{
    if (q->nsections == MAX_SECTIONS)
        return qi_fail(q, MS_ELIMIT, off, "section header", "more than %u sections", MAX_SECTIONS);
    if (q->nsections == q->sections_cap) {
        size_t cap = q->sections_cap ? q->sections_cap * 2 : 64;
        qi_section *n = msi_realloc(&q->alloc, q->sections, cap * sizeof *n);
        if (!n)
            return qi_fail(q, MS_ENOMEM, off, "section header", "out of memory");
        q->sections = n;
        q->sections_cap = cap;
    }
    qi_section *s = &q->sections[q->nsections];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->instance = instance;
    s->version = version;
    snprintf(s->idstr, sizeof s->idstr, "%s", idstr);
    s->iterable = type == QV_START;
    s->is_ram = strcmp(idstr, "ram") == 0;
    s->held = SIZE_MAX;
    if (!s->is_ram) {
        if (q->nheld == q->held_cap) {
            size_t cap = q->held_cap ? q->held_cap * 2 : 64;
            qi_held *n = msi_realloc(&q->alloc, q->held, cap * sizeof *n);
            if (!n)
                return qi_fail(q, MS_ENOMEM, off, "section header", "out of memory");
            q->held = n;
            q->held_cap = cap;
        }
        s->held = q->nheld;
        memset(&q->held[q->nheld], 0, sizeof q->held[q->nheld]);
        q->held[q->nheld].section = q->nsections;
        msi_buf_init(&q->held[q->nheld].data, &q->alloc);
        q->nheld++;
    }
    q->nsections++;
    *out = s;
    return 0;
}

static int expect_footer(qi *q, const qi_section *s)
{
    uint64_t off = qi_offset(q);
    uint8_t t;
    uint32_t id;
    int rc = qi_u8(q, &t, off, "section footer");
    if (rc)
        return rc;
    if (t != QV_FOOTER)
        return qi_fail(q, t == QV_EOF || t <= QV_COMMAND ? MS_EFEATURE : MS_ECORRUPT, off,
                       "section footer",
                       "expected 0x7e, found 0x%02x (streams without section footers, from "
                       "machine types before 2.4, are not supported)",
                       t);
    if ((rc = qi_u32(q, &id, off, "section footer")))
        return rc;
    if (id != s->id)
        return qi_fail(q, MS_ECORRUPT, off, "section footer", "names section %u", id);
    return 0;
}

/* START or FULL: type, id, idstr, instance, version; then the contents. */
static int read_section_start(qi *q, uint8_t type, uint64_t off)
{
    uint32_t id, instance, version;
    char idstr[256];
    int rc;
    if ((rc = qi_u32(q, &id, off, "section header")) ||
        (rc = qi_name(q, idstr, off, "section header")) ||
        (rc = qi_u32(q, &instance, off, "section header")) ||
        (rc = qi_u32(q, &version, off, "section header")))
        return rc;
    q->stats.sections++;
    qi_section *s = find_section(q, id);
    if (s)
        return qi_fail(q, MS_ECORRUPT, off, "section header",
                       "section id %u is opened a second time (as '%s' instance %u)", id, idstr,
                       instance);
    /* The exporter takes a DEVICE of that path for CONFIGURATION's
     * subsections (docs/QEMU.md section 3.3); QEMU registers no such section. */
    if (strcmp(idstr, QI_CONFIG_PATH) == 0)
        return qi_fail(q, MS_EFEATURE, off, "section header",
                       "section %u is named '%s', which QEMU never sends and the import keeps "
                       "for CONFIGURATION's subsections",
                       id, idstr);
    if ((rc = new_section(q, type, id, idstr, instance, version, off, &s)))
        return rc;
    q->cur = (size_t)(s - q->sections);
    if (s->is_ram) {
        if (type != QV_START)
            return qi_fail(q, MS_ECORRUPT, off, "section header",
                           "the 'ram' section must start with START (0x01), not 0x%02x", type);
        if (version != 4)
            return qi_fail(q, MS_EVERSION, off, "section header",
                           "'ram' section version %u (only version 4 is read)", version);
        if ((rc = qr_load(q)) || (rc = expect_footer(q, s)))
            return rc;
    } else if ((rc = read_held(q, s, off))) {
        return rc;
    }
    q->cur = SIZE_MAX;
    return 0;
}

static int read_section_part(qi *q, uint8_t type, uint64_t off)
{
    uint32_t id;
    int rc = qi_u32(q, &id, off, "section header");
    if (rc)
        return rc;
    q->stats.sections++;
    qi_section *s = find_section(q, id);
    if (!s || !s->iterable || s->ended)
        return qi_fail(q, MS_ECORRUPT, off, "section header", "%s for section id %u, which %s",
                       type == QV_PART ? "PART" : "END", id,
                       !s         ? "no START opened"
                       : s->ended ? "has ended"
                                  : "is not iterable");
    q->cur = (size_t)(s - q->sections);
    if (type == QV_END)
        s->ended = true;
    if (s->is_ram) {
        if ((rc = qr_load(q)) || (rc = expect_footer(q, s)))
            return rc;
    } else if ((rc = read_held(q, s, off))) {
        return rc;
    }
    q->cur = SIZE_MAX;
    return 0;
}

/* Appends to q->config the bytes of a subsection item as read. */
static int config_keep(qi *q, uint64_t off, const void *p, size_t n)
{
    if (msi_buf_append(&q->config, p, n))
        return qi_fail(q, MS_ENOMEM, off, "CONFIGURATION subsection", "out of memory");
    return 0;
}

static int config_keep_u32(qi *q, uint64_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return config_keep(q, off, b, 4);
}

/* u8 length and name, as QEMU writes names. */
static int config_keep_name(qi *q, uint64_t off, const char *name)
{
    uint8_t len = (uint8_t)strlen(name);
    int rc = config_keep(q, off, &len, 1);
    return rc ? rc : config_keep(q, off, name, len);
}

/* CONFIGURATION: u32 length, machine type, then optional subsections. The
 * subsections are kept as sent (q->config): their layout is fixed, so the
 * items read are appended as they are read, and a destination that checks
 * them (capabilities, uuid) gets them back from the export. */
static int read_configuration(qi *q, uint64_t off)
{
    uint32_t len;
    int rc = qi_u32(q, &len, off, "CONFIGURATION");
    if (rc)
        return rc;
    if (len == 0 || len > MAX_CONFIG_NAME)
        return qi_fail(q, MS_ECORRUPT, off, "CONFIGURATION",
                       "machine type length %u (1 to %u expected)", len, MAX_CONFIG_NAME);
    if ((rc = qi_bytes(q, q->stats.machine, len, off, "CONFIGURATION")))
        return rc;
    q->stats.machine[len] = 0;
    if (!printable((const uint8_t *)q->stats.machine, len))
        return qi_fail(q, MS_ECORRUPT, off, "CONFIGURATION",
                       "machine type holds bytes that are not printable ASCII");
    unsigned seen = 0;
    for (;;) {
        if (fill(q, 1))
            return qi_fail(q, MS_EIO, qi_offset(q), "CONFIGURATION", "reading the input failed");
        if (q->in.pos == q->in.end || q->in.buf[q->in.pos] != QV_SUBSECTION)
            return 0;
        uint64_t soff = qi_offset(q);
        char name[256];
        uint32_t version;
        q->in.pos++;
        const uint8_t marker = QV_SUBSECTION;
        if ((rc = qi_name(q, name, soff, "CONFIGURATION subsection")) ||
            (rc = qi_u32(q, &version, soff, "CONFIGURATION subsection")) ||
            (rc = config_keep(q, soff, &marker, 1)) || (rc = config_keep_name(q, soff, name)) ||
            (rc = config_keep_u32(q, soff, version)))
            return rc;
        /* Each at most once (QEMU sends each once): what is kept stays
         * small. */
        static const char *const known[] = {"configuration/target-page-bits",
                                            "configuration/capabilities", "configuration/uuid"};
        for (unsigned k = 0; k < 3; k++) {
            if (strcmp(name, known[k]) != 0)
                continue;
            if (seen & (1u << k))
                return qi_fail(q, MS_ECORRUPT, soff, "CONFIGURATION subsection",
                               "'%s' is sent a second time", name);
            seen |= 1u << k;
        }
        if (strcmp(name, "configuration/target-page-bits") == 0) {
            uint32_t bits;
            if ((rc = qi_u32(q, &bits, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep_u32(q, soff, bits)))
                return rc;
            if (bits < 12 || bits > 16)
                return qi_fail(q, MS_EFEATURE, soff, "CONFIGURATION subsection",
                               "target page bits %u (12 to 16 are supported)", bits);
            q->page_size = 1u << bits;
        } else if (strcmp(name, "configuration/capabilities") == 0) {
            /* u32 count, then each capability's name (u8 length, bytes). */
            uint32_t count;
            if ((rc = qi_u32(q, &count, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep_u32(q, soff, count)))
                return rc;
            if (count > 256)
                return qi_fail(q, MS_ECORRUPT, soff, "CONFIGURATION subsection", "%u capabilities",
                               count);
            for (uint32_t i = 0; i < count; i++) {
                char cap[256];
                if ((rc = qi_name(q, cap, soff, "CONFIGURATION capability")) ||
                    (rc = config_keep_name(q, soff, cap)))
                    return rc;
                if (strcmp(cap, "x-ignore-shared") == 0)
                    q->ignore_shared = true;
                else if (strcmp(cap, "mapped-ram") == 0)
                    q->mapped_ram = true;
            }
        } else if (strcmp(name, "configuration/uuid") == 0) {
            /* multifd channels carry it too: they must match. */
            if ((rc = qi_bytes(q, q->uuid, sizeof q->uuid, soff, "CONFIGURATION subsection")) ||
                (rc = config_keep(q, soff, q->uuid, sizeof q->uuid)))
                return rc;
            q->have_uuid = true;
        } else {
            return qi_fail(q, MS_EFEATURE, soff, "CONFIGURATION subsection",
                           "unknown subsection '%s' version %u: its length is not known", name,
                           version);
        }
    }
}

static int read_command(qi *q, uint64_t off)
{
    uint16_t cmd, len;
    uint8_t data[16];
    int rc;
    if ((rc = qi_u16(q, &cmd, off, "COMMAND")) || (rc = qi_u16(q, &len, off, "COMMAND")))
        return rc;
    q->stats.commands++;
    const char *name = cmd < sizeof cmd_names / sizeof cmd_names[0] ? cmd_names[cmd] : "unknown";
    switch (cmd) {
    case CMD_OPEN_RETURN_PATH:
    case CMD_SWITCHOVER_START:
    case CMD_PING:
        if (len != (cmd == CMD_PING ? 4 : 0))
            return qi_fail(q, MS_ECORRUPT, off, "COMMAND", "%s (%u) with %u bytes of data", name,
                           cmd, len);
        return qi_bytes(q, data, len, off, "COMMAND");
    case CMD_POSTCOPY_ADVISE:
        /* Either nothing, or the OR of every block's page size and the target
         * page size. Blocks whose page size differs from the host's carry
         * one more field in MEM_SIZE that nothing announces per block. */
        if (len != 0 && len != 16)
            return qi_fail(q, MS_ECORRUPT, off, "COMMAND",
                           "POSTCOPY_ADVISE with %u bytes of data (0 or 16 expected)", len);
        if ((rc = qi_bytes(q, data, len, off, "COMMAND")))
            return rc;
        if (len == 16 && qi_be64(data) != qi_be64(data + 8))
            return qi_fail(q, MS_EFEATURE, off, "COMMAND",
                           "POSTCOPY_ADVISE: RAM blocks with page sizes 0x%llx besides the "
                           "target page size 0x%llx (huge pages with postcopy) are not supported",
                           (unsigned long long)qi_be64(data),
                           (unsigned long long)qi_be64(data + 8));
        return 0;
    default:
        if (cmd > 0 && cmd <= CMD_SWITCHOVER_START)
            return qi_fail(q, MS_EFEATURE, off, "COMMAND",
                           "%s (%u): postcopy, COLO and packaged streams are not supported", name,
                           cmd);
        return qi_fail(q, MS_ECORRUPT, off, "COMMAND", "unknown command %u", cmd);
    }
}

/* After EOF: nothing, or VMDESCRIPTION with the JSON trailer, then nothing. */
static int read_trailer(qi *q, qv_desc **desc)
{
    uint64_t off = qi_offset(q);
    if (fill(q, 1))
        return qi_fail(q, MS_EIO, off, "after EOF", "reading the input failed");
    if (q->in.pos == q->in.end)
        return 0;
    uint8_t t = q->in.buf[q->in.pos];
    if (t != QV_VMDESCRIPTION)
        return qi_fail(q, MS_ECORRUPT, off, "after EOF",
                       "byte 0x%02x: only the JSON trailer (VMDESCRIPTION, 0x06) may follow", t);
    q->in.pos++;
    uint32_t len;
    int rc = qi_u32(q, &len, off, "VMDESCRIPTION");
    if (rc)
        return rc;
    if (len > q->opts.max_vmdesc_size)
        return qi_fail(q, MS_ELIMIT, off, "VMDESCRIPTION",
                       "JSON trailer of %u bytes exceeds max_vmdesc_size (%u)", len,
                       q->opts.max_vmdesc_size);
    /* Grown as bytes arrive, never ahead of them. */
    msi_buf js;
    msi_buf_init(&js, &q->alloc);
    while (js.len < len) {
        if (fill(q, 1)) {
            msi_buf_free(&js);
            return qi_fail(q, MS_EIO, off, "VMDESCRIPTION", "reading the input failed");
        }
        size_t avail = q->in.end - q->in.pos;
        if (avail == 0) {
            size_t got = js.len;
            msi_buf_free(&js);
            return qi_fail(q, MS_ETRUNCATED, off, "VMDESCRIPTION",
                           "the stream ends after %zu of the JSON trailer's %u bytes", got, len);
        }
        size_t take = len - js.len < avail ? len - js.len : avail;
        if (msi_buf_append(&js, q->in.buf + q->in.pos, take)) {
            msi_buf_free(&js);
            return qi_fail(q, MS_ENOMEM, off, "VMDESCRIPTION", "out of memory");
        }
        q->in.pos += take;
    }
    q->stats.has_vmdesc = true;
    if (!q->opts.raw_only)
        rc = qv_parse(q, (const char *)js.data, js.len, off, desc);
    msi_buf_free(&js);
    if (rc)
        return rc;
    uint64_t end = qi_offset(q);
    if (fill(q, 1))
        return qi_fail(q, MS_EIO, end, "after the JSON trailer", "reading the input failed");
    if (q->in.pos != q->in.end)
        return qi_fail(q, MS_ECORRUPT, end, "after the JSON trailer",
                       "more bytes follow the end of QEMU's stream");
    return 0;
}

/* CONFIGURATION's subsections as the DEVICE "configuration" (docs/QEMU.md
 * section 3.3), before any page: the exporter writes them in QEMU's
 * CONFIGURATION, ahead of the RAM section. */
static int write_config(qi *q)
{
    if (!q->config.len)
        return 0;
    msi_buf cb;
    msi_buf_init(&cb, &q->alloc);
    const qi_section none = {.held = SIZE_MAX};
    bool decoded;
    const char *schema;
    int rc = 0;
    if (qv_encode(q, NULL, &none, q->config.data, q->config.len, NULL, 0, &cb, &decoded, &schema))
        rc = qi_fail(q, MS_ENOMEM, 8, "CONFIGURATION", "out of memory");
    else if (ms_writer_device(q->w, QI_CONFIG_PATH, 0, QI_CONFIG_PATH, QI_CONFIG_VERSION, cb.data,
                              cb.len))
        rc = qi_fail(q, ms_writer_status(q->w), 8, "CONFIGURATION", "writing the output: %s",
                     ms_writer_errmsg(q->w));
    else
        q->stats.devices++;
    msi_buf_free(&cb);
    return rc;
}

/* The held sections become DEVICE records, in stream order. */
static int write_devices(qi *q, const qv_desc *desc)
{
    msi_buf cb;
    msi_buf_init(&cb, &q->alloc);
    int rc = 0;
    for (size_t i = 0; i < q->nheld && !rc; i++) {
        const qi_section *s = &q->sections[q->held[i].section];
        const char *schema = NULL;
        bool decoded = false;
        cb.len = 0;
        if (qv_encode(q, desc, s, q->held[i].data.data, q->held[i].data.len, q->held[i].parts,
                      q->held[i].nparts, &cb, &decoded, &schema)) {
            rc = qi_fail(q, MS_ENOMEM, qi_offset(q), "device state",
                         "out of memory encoding "
                         "section %u '%s'",
                         s->id, s->idstr);
            break;
        }
        /* Without the trailer, the vmsd name is the id string's last
         * component: QEMU builds id strings as "DEVICE-PATH/VMSD-NAME". */
        if (!schema) {
            const char *slash = strrchr(s->idstr, '/');
            schema = slash && slash[1] ? slash + 1 : s->idstr;
        }
        if (ms_writer_device(q->w, s->idstr, s->instance, schema, s->version, cb.data, cb.len)) {
            rc = qi_fail(q, ms_writer_status(q->w), qi_offset(q), "device state",
                         "section %u '%s' instance %u: %s", s->id, s->idstr, s->instance,
                         ms_writer_errmsg(q->w));
            break;
        }
        q->stats.devices++;
        if (decoded)
            q->stats.devices_decoded++;
    }
    msi_buf_free(&cb);
    return rc;
}

/* At EOF: QEMU ends every iterable section before EOF
 * (qemu_savevm_state_complete_precopy); a non-RAM one left open would lose
 * its END on export. */
static int check_ended(qi *q, uint64_t eof_off)
{
    for (size_t i = 0; i < q->nsections; i++) {
        const qi_section *s = &q->sections[i];
        if (s->iterable && !s->ended && !s->is_ram) {
            q->cur = i;
            int rc = qi_fail(q, MS_ECORRUPT, eof_off, "EOF",
                             "the section was opened by START but not ended (END, 0x03)");
            q->cur = SIZE_MAX;
            return rc;
        }
    }
    return 0;
}

static int create_writer(qi *q, ms_write_fn out, void *out_ctx, int out_fd)
{
    ms_writer_options *o = &q->wopts;
    ms_writer_options_init(o);
    if (q->have_user_wopts)
        *o = q->user_wopts;
    if (!o->writer_name || !*o->writer_name)
        o->writer_name = "qemu";
    if (!o->machine && q->stats.machine[0])
        o->machine = q->stats.machine;
    if (o->page_size < q->page_size)
        o->page_size = q->page_size;
    q->w = out ? ms_writer_new(o, out, out_ctx) : ms_writer_new_fd(o, out_fd);
    if (!q->w)
        return qi_fail(q, MS_ENOMEM, qi_offset(q), "output", "cannot create the writer");
    if (ms_writer_status(q->w))
        return writer_fail(q, qi_offset(q), "output");
    return 0;
}

static int run(qi *q, ms_write_fn out, void *out_ctx, int out_fd)
{
    uint32_t magic, version;
    int rc;
    if ((rc = qi_u32(q, &magic, 0, "file header")))
        return rc;
    if (magic != MS_QEMU_MAGIC) {
        if (magic == 0x894D4947u)
            return qi_fail(q, MS_EMAGIC, 0, "file header",
                           "this is a libmigstream stream, not a QEMU one");
        return qi_fail(q, MS_EMAGIC, 0, "file header",
                       "magic 0x%08x is not QEMU's 0x5145564d (\"QEVM\")", magic);
    }
    if ((rc = qi_u32(q, &version, 4, "file header")))
        return rc;
    if (version != MS_QEMU_VERSION)
        return qi_fail(q, MS_EVERSION, 4, "file header",
                       "QEVM version %u (only version 3, QEMU 0.13 and later, is read)", version);
    if (fill(q, 1))
        return qi_fail(q, MS_EIO, 8, "section", "reading the input failed");
    if (q->in.pos < q->in.end && q->in.buf[q->in.pos] == QV_CONFIGURATION) {
        q->in.pos++;
        if ((rc = read_configuration(q, 8)))
            return rc;
    }
    if (q->mapped_ram && q->ignore_shared)
        return qi_fail(q, MS_EFEATURE, 8, "CONFIGURATION capability",
                       "mapped-ram with x-ignore-shared is not supported");
    if (q->mfd && q->mapped_ram)
        return qi_fail(q, MS_EINVAL, 8, "CONFIGURATION capability",
                       "a mapped-ram stream has no multifd channel streams (its channels "
                       "write into the file), but channels were given");
    if ((rc = qr_new(q)) || (q->mfd && (rc = qm_open(q))) ||
        (rc = create_writer(q, out, out_ctx, out_fd)) || (rc = write_config(q)))
        return rc;
    for (;;) {
        uint64_t off = qi_offset(q);
        uint8_t t;
        if ((rc = qi_u8(q, &t, off, "section type")))
            return rc;
        switch (t) {
        case QV_EOF:
            break;
        case QV_START:
        case QV_FULL:
            rc = read_section_start(q, t, off);
            break;
        case QV_PART:
        case QV_END:
            rc = read_section_part(q, t, off);
            break;
        case QV_COMMAND:
            rc = read_command(q, off);
            break;
        case QV_CONFIGURATION:
            rc = qi_fail(q, MS_ECORRUPT, off, "section type",
                         "CONFIGURATION (0x07) is only valid right after the file header");
            break;
        default:
            rc = qi_fail(q, MS_ECORRUPT, off, "section type",
                         "0x%02x is not a section type QEMU writes here (EOF 0x00, START "
                         "0x01, PART 0x02, END 0x03, FULL 0x04, COMMAND 0x08)",
                         t);
        }
        if (rc)
            return rc;
        if (t == QV_EOF)
            break;
    }
    /* EOF is one byte, just read. */
    if ((rc = check_ended(q, qi_offset(q) - 1)))
        return rc;
    qv_desc *desc = NULL;
    if ((q->mfd && (rc = qm_finish(q))) || (rc = qr_finish(q)) || (rc = read_trailer(q, &desc))) {
        qv_free(q, desc);
        return rc;
    }
    uint64_t ps = desc ? qv_page_size(desc) : 0;
    if (ps && ps != q->page_size) {
        qv_free(q, desc);
        return qi_fail(q, MS_ECORRUPT, qi_offset(q), "VMDESCRIPTION",
                       "page_size %llu, but the RAM section was read with %u-byte pages",
                       (unsigned long long)ps, q->page_size);
    }
    rc = write_devices(q, desc);
    qv_free(q, desc);
    if (rc)
        return rc;
    if (ms_writer_finish(q->w, NULL))
        return writer_fail(q, qi_offset(q), "output");
    return 0;
}

/* --------------------------------------------------------------- the API */

void ms_qemu_import_options_init(ms_qemu_import_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->max_section_size = DEF_SECTION;
    o->max_device_bytes = DEF_DEVICES;
    o->max_vmdesc_size = DEF_VMDESC;
    o->max_ram_bytes = DEF_RAM;
    o->max_ram_blocks = DEF_BLOCKS;
}

ms_qemu_import *ms_qemu_import_new(const ms_qemu_import_options *opts)
{
    ms_qemu_import_options o;
    ms_qemu_import_options_init(&o);
    const char *why = NULL, *which = "import options";
    if (opts)
        why = msi_struct_take(&o, MSI_STRUCT_END(ms_qemu_import_options, allocator), opts,
                              opts->struct_size);
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    if (!why && o.writer) {
        which = "import options: writer";
        why = msi_struct_take(&wo, MSI_WRITER_OPTIONS_END, o.writer, o.writer->struct_size);
    }
    if (why) { /* the defaults, for a handle that only carries the reason */
        ms_qemu_import_options_init(&o);
        o.writer = NULL;
    }
    if (!o.max_section_size)
        o.max_section_size = DEF_SECTION;
    if (!o.max_device_bytes)
        o.max_device_bytes = DEF_DEVICES;
    if (!o.max_vmdesc_size)
        o.max_vmdesc_size = DEF_VMDESC;
    if (o.max_vmdesc_size > MAX_VMDESC)
        o.max_vmdesc_size = MAX_VMDESC;
    if (!o.max_ram_bytes)
        o.max_ram_bytes = DEF_RAM;
    if (!o.max_ram_blocks)
        o.max_ram_blocks = DEF_BLOCKS;
    ms_allocator a;
    msi_allocator_set(&a, &o.allocator);
    qi *q = msi_calloc(&a, 1, sizeof *q);
    if (!q)
        return NULL;
    q->alloc = a;
    q->opts = o;
    q->opts.writer = NULL;
    q->cur = SIZE_MAX;
    q->page_size = 4096;
    msi_buf_init(&q->config, &q->alloc);
    if (o.tmpdir && !(q->tmpdir = msi_strdup(&a, o.tmpdir))) {
        msi_free(&a, q);
        return NULL;
    }
    q->opts.tmpdir = q->tmpdir;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        q->status = MS_EINVAL;
        snprintf(q->msg, sizeof q->msg, "invalid %s: %s", which, why);
    }
    /* The struct is copied; the strings it points to are the caller's. */
    if (o.writer) {
        q->user_wopts = wo;
        q->user_wopts.struct_size = sizeof q->user_wopts;
        q->have_user_wopts = true;
    }
    return q;
}

void ms_qemu_import_free(ms_qemu_import *imp)
{
    qi *q = imp;
    if (!q)
        return;
    qr_free(q);
    qm_free(q);
    qmr_free(q);
    ms_writer_free(q->w);
    for (size_t i = 0; i < q->nheld; i++) {
        msi_buf_free(&q->held[i].data);
        msi_free(&q->alloc, q->held[i].parts);
    }
    msi_buf_free(&q->config);
    msi_free(&q->alloc, q->held);
    msi_free(&q->alloc, q->sections);
    msi_free(&q->alloc, q->in.buf);
    msi_free(&q->alloc, q->tmpdir);
    ms_allocator a = q->alloc;
    msi_free(&a, q);
}

static int run_common(qi *q, ms_read_fn in, void *in_ctx, ms_write_fn out, void *out_ctx,
                      int out_fd)
{
    if (q->ran || q->status)
        return q->status ? q->status : MS_ESTATE;
    q->ran = true;
    if (!in && !q->in.pread)
        return qi_fail(q, MS_EINVAL, 0, "input", "no read callback");
    q->in.fn = in;
    q->in.ctx = in_ctx;
    q->in.cap = QI_IN_CAP;
    if (!(q->in.buf = msi_alloc(&q->alloc, q->in.cap)))
        return qi_fail(q, MS_ENOMEM, 0, "input", "out of memory");
    int rc = run(q, out, out_ctx, out_fd);
    q->stats.bytes_read = qi_offset(q);
    return rc ? q->status ? q->status : rc : 0;
}

int ms_qemu_import_run(ms_qemu_import *imp, ms_read_fn in, void *in_ctx, ms_write_fn out,
                       void *out_ctx)
{
    if (!imp)
        return MS_EINVAL;
    if (!out)
        return qi_fail(imp, MS_EINVAL, 0, "output", "no write callback");
    return run_common(imp, in, in_ctx, out, out_ctx, -1);
}

int ms_qemu_import_run_fd(ms_qemu_import *imp, int in_fd, int out_fd)
{
    if (!imp)
        return MS_EINVAL;
    if (in_fd < 0 || out_fd < 0)
        return qi_fail(imp, MS_EINVAL, 0, "input", "bad file descriptor");
    struct stat st;
    /* A regular file read from its start is read by offset. */
    off_t start = lseek(in_fd, 0, SEEK_CUR);
    if (!imp->in.pread && !imp->ran && start == 0 && fstat(in_fd, &st) == 0 &&
        S_ISREG(st.st_mode)) {
        imp->in.pread = msi_fd_pread;
        imp->in.pread_ctx = msi_fd_ctx(in_fd);
    }
    return run_common(imp, msi_fd_read, msi_fd_ctx(in_fd), NULL, NULL, out_fd);
}

int ms_qemu_import_set_pread(ms_qemu_import *imp, ms_qemu_pread_fn fn, void *ctx)
{
    if (!imp || !fn)
        return MS_EINVAL;
    if (imp->ran)
        return MS_ESTATE;
    if (imp->status) /* created from bad options */
        return imp->status;
    imp->in.pread = fn;
    imp->in.pread_ctx = ctx;
    return 0;
}

int ms_qemu_import_add_channel(ms_qemu_import *imp, ms_read_fn in, void *in_ctx,
                               const char *name)
{
    if (!imp || !in)
        return MS_EINVAL;
    if (imp->ran)
        return MS_ESTATE;
    if (imp->status) /* created from bad options */
        return imp->status;
    return qm_add(imp, in, in_ctx, name);
}

int ms_qemu_import_add_channel_fd(ms_qemu_import *imp, int fd, const char *name)
{
    if (!imp || fd < 0)
        return MS_EINVAL;
    if (imp->ran)
        return MS_ESTATE;
    if (imp->status) /* created from bad options */
        return imp->status;
    /* The descriptor's number is the context: it outlives this call. */
    return qm_add(imp, NULL, msi_fd_ctx(fd), name);
}

const ms_qemu_import_stats *ms_qemu_import_get_stats(const ms_qemu_import *imp)
{
    return imp ? &imp->stats : NULL;
}

int ms_qemu_import_status(const ms_qemu_import *imp)
{
    return imp ? imp->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

const char *ms_qemu_import_errmsg(const ms_qemu_import *imp)
{
    return imp ? imp->msg : "out of memory creating the importer";
}

uint64_t ms_qemu_import_error_offset(const ms_qemu_import *imp)
{
    return imp ? imp->err_offset : 0;
}
