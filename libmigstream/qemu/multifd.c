/*
 * The QEMU importer's multifd channels (docs/QEMU.md, "multifd"): each
 * extra connection of a multifd migration starts with a 64-byte init record
 * and then carries packets, each a fixed-size header (block name and page
 * offsets) followed by the pages. Order across channels exists only at the
 * main stream's sync points: a channel's packets up to its SYNC packet
 * belong before the sync point, so at each one every channel is read, in id
 * order, up to its SYNC packet. Nothing of a channel is held beyond its
 * read buffer and one packet's offsets.
 *
 * Layouts from QEMU's migration/multifd.h and multifd.c (7.2 to 10.x), all
 * big-endian:
 *   init record: u32 magic 0x11223344, u32 version 1, 16-byte uuid, u8 id,
 *                7 + 32 unused bytes;
 *   packet:      u32 magic, u32 version, u32 flags, u32 pages_alloc,
 *                u32 normal pages (7.2: pages_used), u32 next_packet_size,
 *                u64 packet_num, u32 zero pages (9.0+; before, unused and 0),
 *                28 unused bytes, 256-byte block name, then page_count u64
 *                offsets (normal pages first, then zero pages), page_count
 *                being MULTIFD_PACKET_SIZE (512 KiB) / target page size;
 *                then next_packet_size bytes: the normal pages, or with
 *                multifd-compression zlib or zstd (flag 0x02 or 0x04) the
 *                continuation of the channel's compressed stream that
 *                decodes to them (qemu_multifd_zip.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "qemu/import.h"
#include "qemu/multifd_zip.h"

#define MF_MAGIC 0x11223344u
#define MF_VERSION 1u
#define MF_INIT_SIZE 64u
#define MF_PACKET_SIZE (512u * 1024) /* MULTIFD_PACKET_SIZE */
#define MF_HEADER_SIZE 320u          /* the packet up to its offsets */

/* Packet flags. */
#define MF_SYNC 0x01u
#define MF_COMPRESSION 0x3eu /* MULTIFD_FLAG_COMPRESSION_MASK (0x1f << 1) */
#define MF_DEVICE_STATE 0x40u

/* QEMU's sender compresses a packet into a buffer of twice the packet size
 * and fails beyond it; its receiver reads into one of that size. */
#define MF_ZIP_MAX (2u * MF_PACKET_SIZE)

/* Channel buffer: a packet header with its offsets (1344 bytes with 4 KiB
 * pages) and a page of up to 64 KiB at a time. */
#define MF_IN_CAP (96u * 1024)

typedef struct qm_chan {
    qi_in in;
    int fd; /* for ms_qemu_import_add_channel_fd, else -1 */
    char *name;
    size_t index; /* order added: stats.channel[index] */
    uint32_t id;
    uint64_t packets;
    qmz *zip; /* decompression stream, from the first compressed packet */
} qm_chan;

struct qm_state {
    qm_chan *ch;
    size_t n;
    qm_chan **by_id; /* by_id[i]: the channel whose id is i */
    uint32_t page_count;
    uint64_t *offsets; /* one packet's page offsets */
    uint8_t *page;
    uint64_t syncs;
    uint64_t max_num; /* highest packet_num seen */
    bool any_num;
    bool any_method;
    /* Compression of the first packet with normal pages (0: none), and
     * where it was met: QEMU uses one method for every channel. */
    uint32_t method;
    uint32_t method_chan;
    uint64_t method_packet;
    char what[320]; /* "multifd channel ID (NAME) packet K" for messages */
};

int qm_add(qi *q, ms_read_fn fn, void *ctx, const char *name)
{
    if (!q->mfd && !(q->mfd = msi_calloc(&q->alloc, 1, sizeof *q->mfd)))
        return MS_ENOMEM;
    qm_state *m = q->mfd;
    if (m->n == MS_QEMU_MAX_CHANNELS)
        return MS_ELIMIT;
    qm_chan *nc = msi_realloc(&q->alloc, m->ch, (m->n + 1) * sizeof *nc);
    if (!nc)
        return MS_ENOMEM;
    m->ch = nc;
    qm_chan *c = &m->ch[m->n];
    memset(c, 0, sizeof *c);
    char def[32];
    snprintf(def, sizeof def, "channel %zu", m->n + 1);
    if (!(c->name = msi_strdup(&q->alloc, name && *name ? name : def)))
        return MS_ENOMEM;
    /* No callback: the context is a descriptor (msi_fd_ctx). */
    c->in.fn = fn ? fn : msi_fd_read;
    c->in.ctx = ctx;
    c->index = m->n++;
    return 0;
}

void qm_free(qi *q)
{
    qm_state *m = q->mfd;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        msi_free(&q->alloc, m->ch[i].name);
        msi_free(&q->alloc, m->ch[i].in.buf);
        qmz_free(m->ch[i].zip);
    }
    msi_free(&q->alloc, m->ch);
    msi_free(&q->alloc, m->by_id);
    msi_free(&q->alloc, m->offsets);
    msi_free(&q->alloc, m->page);
    msi_free(&q->alloc, m);
    q->mfd = NULL;
}

/* ------------------------------------------------------------ reading */

static uint64_t chan_offset(const qm_chan *c)
{
    return c->in.base + c->in.pos;
}

/* Names the channel, and the packet being read, for messages. */
static const char *where(qi *q, const qm_chan *c, bool packet)
{
    qm_state *m = q->mfd;
    if (packet)
        snprintf(m->what, sizeof m->what, "multifd channel %u (%s) packet %llu", c->id, c->name,
                 (unsigned long long)c->packets);
    else
        snprintf(m->what, sizeof m->what, "multifd channel (%s)", c->name);
    return m->what;
}

static void note_read(qi *q, const qm_chan *c)
{
    q->stats.channel[c->index].bytes_read = chan_offset(c);
}

/* Makes @n bytes of the channel available; a clear error otherwise. */
static int chan_need(qi *q, qm_chan *c, size_t n, uint64_t off, const char *what)
{
    if (qi_in_fill(&c->in, n))
        return qi_fail(q, MS_EIO, off, what, "reading the channel failed");
    if (c->in.end - c->in.pos < n)
        return qi_fail(q, MS_ETRUNCATED, off, what,
                       "the channel ends after %llu bytes, %zu more were expected",
                       (unsigned long long)(c->in.base + c->in.end),
                       n - (c->in.end - c->in.pos));
    return 0;
}

/* Whether the channel has no byte left. */
static int chan_at_end(qi *q, qm_chan *c, bool *end)
{
    if (qi_in_fill(&c->in, 1))
        return qi_fail(q, MS_EIO, chan_offset(c), where(q, c, false),
                       "reading the channel failed");
    *end = c->in.pos == c->in.end;
    return 0;
}

int qm_open(qi *q)
{
    qm_state *m = q->mfd;
    m->page_count = MF_PACKET_SIZE / q->page_size;
    m->offsets = msi_calloc(&q->alloc, m->page_count, sizeof *m->offsets);
    m->page = msi_alloc(&q->alloc, q->page_size);
    m->by_id = msi_calloc(&q->alloc, m->n, sizeof *m->by_id);
    if (!m->offsets || !m->page || !m->by_id)
        return qi_fail(q, MS_ENOMEM, 0, "multifd", "out of memory");
    q->stats.channels = (uint32_t)m->n;
    const qm_chan *first = NULL;
    for (size_t i = 0; i < m->n; i++) {
        qm_chan *c = &m->ch[i];
        const char *what = where(q, c, false);
        c->in.cap = MF_IN_CAP;
        if (!(c->in.buf = msi_alloc(&q->alloc, c->in.cap)))
            return qi_fail(q, MS_ENOMEM, 0, what, "out of memory");
        int rc = chan_need(q, c, MF_INIT_SIZE, 0, what);
        if (rc)
            return rc;
        const uint8_t *p = c->in.buf + c->in.pos;
        uint32_t magic = qi_be32(p), version = qi_be32(p + 4);
        if (magic == MS_QEMU_MAGIC)
            return qi_fail(q, MS_ECORRUPT, 0, what,
                           "this is a main stream (\"QEVM\"), not a multifd channel");
        if (magic != MF_MAGIC)
            return qi_fail(q, MS_ECORRUPT, 0, what,
                           "init record magic 0x%08x is not multifd's 0x11223344", magic);
        if (version != MF_VERSION)
            return qi_fail(q, MS_EVERSION, 0, what, "init record version %u (only 1 is read)",
                           version);
        c->id = p[24];
        if (c->id >= m->n)
            return qi_fail(q, MS_ECORRUPT, 0, what,
                           "channel id %u, but %zu channels are given: ids run from 0 to the "
                           "channel count - 1, so a channel is missing",
                           c->id, m->n);
        for (size_t j = 0; j < i; j++)
            if (m->ch[j].id == c->id)
                return qi_fail(q, MS_ECORRUPT, 0, what,
                               "channel id %u is also the id of %s: the same channel twice, "
                               "or channels of two migrations",
                               c->id, m->ch[j].name);
        /* QEMU's destination checks the uuid against its own. */
        if (q->have_uuid && memcmp(p + 8, q->uuid, 16) != 0)
            return qi_fail(q, MS_ECORRUPT, 0, what,
                           "channel %u's uuid differs from the main stream's "
                           "(configuration/uuid): a channel of another migration",
                           c->id);
        if (first && memcmp(p + 8, first->in.buf + 8, 16) != 0)
            return qi_fail(q, MS_ECORRUPT, 0, what,
                           "channel %u's uuid differs from %s's: channels of two migrations",
                           c->id, first->name);
        if (!first)
            first = c;
        m->by_id[c->id] = c;
        q->stats.channel[c->index].id = c->id;
        note_read(q, c);
    }
    /* The first channel's init record stays in its buffer for the uuid
     * comparison above; only now are the records consumed. */
    for (size_t i = 0; i < m->n; i++)
        m->ch[i].in.pos += MF_INIT_SIZE;
    return 0;
}

static const char *compression_name(uint32_t flags)
{
    switch (flags & MF_COMPRESSION) {
    case 0x02:
        return "zlib";
    case 0x04:
        return "zstd";
    case 0x08:
        return "qpl";
    case 0x10:
        return "uadk";
    case 0x20:
        return "qatzip";
    default:
        return "unknown";
    }
}

/*
 * Decodes the @normal pages of a compressed packet (method m->method) from
 * the channel's next @len bytes, one page at a time, and writes them. The
 * bytes must decode to exactly the pages: after the last one, the rest of
 * the packet (QEMU's flush marker) must decode to nothing. The output never
 * exceeds one page at a time, whatever the data claims.
 */
static int read_compressed(qi *q, qm_chan *c, uint32_t bi, uint32_t normal, uint32_t len,
                           const char *what)
{
    qm_state *m = q->mfd;
    const uint32_t ps = q->page_size;
    const uint64_t start = chan_offset(c);
    const char *name = compression_name(m->method);
    if (!c->zip && !(c->zip = qmz_new(&q->alloc, m->method)))
        return qi_fail(q, MS_ENOMEM, start, what, "out of memory for %s", name);
    uint32_t left = len; /* compressed bytes of the packet not consumed yet */
    uint64_t made_all = 0;
    for (uint32_t i = 0; i <= normal; i++) {
        /* i == normal: one byte of room, to see whether anything follows. */
        uint8_t extra;
        uint8_t *out = i < normal ? m->page : &extra;
        const size_t room = i < normal ? ps : 1;
        size_t have = 0;
        while (have < room) {
            size_t avail = c->in.end - c->in.pos;
            if (avail > left)
                avail = left;
            int rc;
            if (!avail && left) {
                if ((rc = chan_need(q, c, 1, start, what)))
                    return rc;
                avail = c->in.end - c->in.pos;
                if (avail > left)
                    avail = left;
            }
            size_t used, made;
            const char *why = "";
            uint64_t at = chan_offset(c);
            rc = qmz_step(c->zip, c->in.buf + c->in.pos, avail, &used, out + have, room - have,
                          &made, &why);
            if (rc)
                return qi_fail(q, rc, at, what, "%s data at byte %u of the packet's %u: %s",
                               name, len - left, len, why);
            c->in.pos += used;
            left -= (uint32_t)used;
            have += made;
            made_all += made;
            if (used || made)
                continue;
            if (left)
                return qi_fail(q, MS_ECOMPRESS, at, what,
                               "%s data at byte %u of the packet's %u does not decode", name,
                               len - left, len);
            if (i < normal)
                return qi_fail(q, MS_ECOMPRESS, start, what,
                               "%u bytes of %s data decode to %llu bytes, but the packet has "
                               "%u normal pages (%llu bytes)",
                               len, name, (unsigned long long)made_all, normal,
                               (unsigned long long)normal * ps);
            break;
        }
        if (i == normal) {
            if (have)
                return qi_fail(q, MS_ECOMPRESS, start, what,
                               "%u bytes of %s data decode to more than the packet's %u normal "
                               "pages (%llu bytes)",
                               len, name, normal, (unsigned long long)normal * ps);
            break;
        }
        q->stats.normal_pages++;
        q->stats.channel[c->index].normal_pages++;
        int rc = qr_put_page(q, bi, m->offsets[i], m->page, start, what);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Reads one packet of @c and writes its pages. *sync tells whether it was a
 * SYNC packet; with @after_last (after QEMU's EOF) a packet must carry
 * nothing.
 */
static int read_packet(qi *q, qm_chan *c, bool after_last, bool *sync)
{
    qm_state *m = q->mfd;
    const uint32_t ps = q->page_size;
    const uint64_t off = chan_offset(c);
    c->packets++;
    q->stats.channel[c->index].packets++;
    q->stats.multifd_packets++;
    const char *what = where(q, c, true);
    int rc = chan_need(q, c, 12, off, what);
    if (rc)
        return rc;
    const uint8_t *p = c->in.buf + c->in.pos;
    uint32_t magic = qi_be32(p), version = qi_be32(p + 4), flags = qi_be32(p + 8);
    if (magic != MF_MAGIC)
        return qi_fail(q, MS_ECORRUPT, off, what, "packet magic 0x%08x (0x11223344 expected)",
                       magic);
    if (version != MF_VERSION)
        return qi_fail(q, MS_EVERSION, off, what, "packet version %u (only 1 is read)", version);
    if (flags & ~(MF_SYNC | MF_COMPRESSION | MF_DEVICE_STATE))
        return qi_fail(q, MS_ECORRUPT, off, what, "flags 0x%x unknown", flags);
    if (flags & MF_DEVICE_STATE)
        return qi_fail(q, MS_EFEATURE, off, what,
                       "a device state packet (flags 0x%x, QEMU 10.0+ VFIO): not supported",
                       flags);
    const uint32_t zip = flags & MF_COMPRESSION;
    if (zip && zip != QMZ_ZLIB && zip != QMZ_ZSTD) {
        if (zip & (zip - 1))
            return qi_fail(q, MS_ECORRUPT, off, what,
                           "flags 0x%x name several compression methods", flags);
        return qi_fail(q, MS_EFEATURE, off, what,
                       "compressed with %s (flags 0x%x, multifd-compression): only zlib and "
                       "zstd are read",
                       compression_name(flags), flags);
    }
    const size_t len = MF_HEADER_SIZE + (size_t)m->page_count * 8;
    if ((rc = chan_need(q, c, len, off, what)))
        return rc;
    p = c->in.buf + c->in.pos;
    uint32_t alloc = qi_be32(p + 12), normal = qi_be32(p + 16), next = qi_be32(p + 20);
    uint64_t num = qi_be64(p + 24);
    uint32_t zero = qi_be32(p + 32);
    if (alloc > m->page_count)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "pages_alloc %u exceeds the %u offsets a packet holds with %u-byte pages",
                       alloc, m->page_count, ps);
    if (normal > alloc || zero > alloc - normal)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "%u normal and %u zero pages exceed pages_alloc %u", normal, zero, alloc);
    /* QEMU's destination decompresses every channel with its own
     * multifd-compression: the first packet with pages or a compression flag
     * (9.0+ flags packets of zero pages too) decides for all. 7.2 flags only
     * packets with normal pages, so a packet without either says nothing. */
    if (normal || zip) {
        if (!m->any_method) {
            m->any_method = true;
            m->method = zip;
            m->method_chan = c->id;
            m->method_packet = c->packets;
        } else if (zip != m->method) {
            return qi_fail(q, MS_ECORRUPT, off, what,
                           "%s%s (flags 0x%x), but channel %u packet %llu was %s: QEMU "
                           "compresses every channel with one method",
                           zip ? "compressed with " : "",
                           zip ? compression_name(zip) : "uncompressed", flags, m->method_chan,
                           (unsigned long long)m->method_packet,
                           m->method ? compression_name(m->method) : "uncompressed");
        }
    }
    /* Without pages, next_packet_size is whatever the previous packet left
     * (QEMU 7.2 does not reset it). */
    if (normal && !zip && next != (uint64_t)normal * ps)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "next_packet_size %u for %u uncompressed pages of %u bytes", next, normal,
                       ps);
    if (normal && zip && (next == 0 || next > MF_ZIP_MAX))
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "next_packet_size %u for %u pages compressed with %s (1 to %u expected)",
                       next, normal, compression_name(zip), MF_ZIP_MAX);
    if (after_last && (normal || zero || (flags & MF_SYNC)))
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "%s after the main stream's last sync point",
                       flags & MF_SYNC ? "a SYNC packet" : "pages");
    if (!m->any_num || num > m->max_num)
        m->max_num = num;
    m->any_num = true;
    *sync = flags & MF_SYNC;
    uint32_t bi = UINT32_MAX;
    if (normal + zero) {
        char name[256];
        memcpy(name, p + 64, 256);
        if (!memchr(name, 0, sizeof name))
            return qi_fail(q, MS_ECORRUPT, off, what, "block name is not NUL-terminated");
        if (!name[0])
            return qi_fail(q, MS_ECORRUPT, off, what, "%u pages but no block name",
                           normal + zero);
        bi = qr_block_find(q, name);
        if (bi == UINT32_MAX)
            return qi_fail(q, MS_ECORRUPT, off, what,
                           "unknown RAM block '%s' (not in the MEM_SIZE table)", name);
        uint64_t blen = qr_block_length(q, bi);
        for (uint32_t i = 0; i < normal + zero; i++) {
            uint64_t a = qi_be64(p + MF_HEADER_SIZE + (size_t)i * 8);
            if (a % ps || a >= blen)
                return qi_fail(q, MS_ECORRUPT, off, what,
                               "%s page %u at 0x%llx %s block '%s' (used length 0x%llx)",
                               i < normal ? "normal" : "zero", i < normal ? i : i - normal,
                               (unsigned long long)a,
                               a % ps ? "is not page-aligned in" : "lies outside", name,
                               (unsigned long long)blen);
            m->offsets[i] = a;
        }
    }
    c->in.pos += len;
    if (zip && normal && (rc = read_compressed(q, c, bi, normal, next, what)))
        return rc;
    for (uint32_t i = 0; i < (zip ? 0 : normal); i++) {
        uint64_t poff = chan_offset(c);
        if ((rc = chan_need(q, c, ps, poff, what)))
            return rc;
        memcpy(m->page, c->in.buf + c->in.pos, ps);
        c->in.pos += ps;
        q->stats.normal_pages++;
        q->stats.channel[c->index].normal_pages++;
        if ((rc = qr_put_page(q, bi, m->offsets[i], m->page, poff, what)))
            return rc;
    }
    for (uint32_t i = normal; i < normal + zero; i++) {
        q->stats.zero_pages++;
        q->stats.channel[c->index].zero_pages++;
        if ((rc = qr_put_page(q, bi, m->offsets[i], NULL, off, what)))
            return rc;
    }
    note_read(q, c);
    return 0;
}

int qm_sync(qi *q, uint64_t off)
{
    qm_state *m = q->mfd;
    /* Messages name the channel, not the main stream's section. */
    size_t cur = q->cur;
    q->cur = SIZE_MAX;
    int rc = 0;
    m->syncs++;
    q->stats.multifd_syncs++;
    for (size_t i = 0; i < m->n && !rc; i++) {
        qm_chan *c = m->by_id[i];
        for (bool sync = false; !sync && !rc;) {
            bool end = false;
            if ((rc = chan_at_end(q, c, &end)))
                break;
            if (end) {
                rc = qi_fail(q, MS_ETRUNCATED, chan_offset(c), where(q, c, false),
                             "channel %u ends after %llu bytes and %llu packets, before its "
                             "SYNC packet for sync point %llu (main stream offset %llu)",
                             c->id, (unsigned long long)chan_offset(c),
                             (unsigned long long)c->packets, (unsigned long long)m->syncs,
                             (unsigned long long)off);
                break;
            }
            rc = read_packet(q, c, false, &sync);
        }
    }
    q->cur = cur;
    return rc;
}

int qm_finish(qi *q)
{
    qm_state *m = q->mfd;
    int rc = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        qm_chan *c = m->by_id[i];
        for (;;) {
            bool end = false, sync = false;
            if ((rc = chan_at_end(q, c, &end)) || end)
                break;
            if ((rc = read_packet(q, c, true, &sync)))
                break;
        }
        total += c->packets;
    }
    if (rc)
        return rc;
    if (!m->syncs)
        return qi_fail(q, MS_ECORRUPT, qi_offset(q), "multifd",
                       "%zu channels were given, but the main stream has no sync point: not a "
                       "multifd migration",
                       m->n);
    /* QEMU numbers every packet of every channel from 0 (packet_num): the
     * packets of a missing channel leave the count short. */
    if (m->any_num && total != m->max_num + 1)
        return qi_fail(q, MS_ECORRUPT, qi_offset(q), "multifd",
                       "the %zu channels given hold %llu packets, but QEMU numbered them up to "
                       "%llu: a channel is missing",
                       m->n, (unsigned long long)total, (unsigned long long)m->max_num);
    return 0;
}
