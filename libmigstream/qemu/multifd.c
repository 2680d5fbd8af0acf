/*
 * multifd channels (multifd.h; docs/QEMU.md section 2.1): each extra
 * connection of a multifd migration starts with a 64-byte init record and
 * then carries packets, each a fixed-size header (block name and page
 * offsets) followed by the pages. Order across channels exists only at the
 * main stream's sync points: a channel's packets up to its SYNC packet
 * belong before the sync point, so at each one every channel is read, in id
 * order, up to its SYNC packet. Nothing of a channel is held beyond its
 * read buffer and one packet's offsets. Calls input.h, sink.h and
 * multifd_zip.h only.
 *
 * Layouts from QEMU's migration/multifd.h and multifd.c (7.2 to 10.x), all
 * big-endian (wire.h):
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
 *                decodes to them (multifd_zip.c).
 */
#include <stdio.h>
#include <string.h>

#include "qemu/multifd.h"
#include "qemu/multifd_zip.h"
#include "qemu/wire.h"

typedef struct mf_chan {
    mq_in in;
    char *name;
    size_t index; /* order given: stats.channel[index] */
    uint32_t id;
    uint64_t packets;
    uint64_t bytes_read, normal_pages, zero_pages;
    mq_zip *zip; /* decompression stream, from the first compressed packet */
} mf_chan;

struct mq_multifd {
    const ms_allocator *alloc;
    mq_error *err;
    mf_chan *ch;
    size_t n;
    mf_chan **by_id; /* by_id[i]: the channel whose id is i */
    uint32_t ps;
    uint32_t page_count;
    uint64_t *offsets; /* one packet's page offsets */
    uint64_t syncs;
    uint64_t packets;
    uint64_t max_num; /* highest packet_num seen */
    bool any_num;
    /* zlib and zstd decoding, all channels together: at most allowance +
     * ratio times the channels' bytes read (ms_qemu_import_options). */
    uint64_t decode_allowance;
    uint32_t decode_ratio;
    uint64_t decoded;
    bool any_method;
    /* Compression of the first packet with normal pages (0: none), and
     * where it was met: QEMU uses one method for every channel. */
    uint32_t method;
    uint32_t method_chan;
    uint64_t method_packet;
    /* The sync point being reached: the main stream's offset, the id of
     * the channel whose turn it is. After EOF: the channel being ended and
     * the packets counted so far. */
    uint64_t sync_off;
    size_t turn;
    bool opened, finishing;
    uint64_t total;
    char what[320]; /* "multifd channel ID (NAME) packet K" for messages */
};

mq_multifd *mq_multifd_new(const ms_allocator *a, mq_error *err, const msi_source_channel *ch,
                           size_t n, uint64_t decode_allowance, uint32_t decode_ratio)
{
    mq_multifd *m = msi_calloc(a, 1, sizeof *m);
    if (!m)
        return NULL;
    m->alloc = a;
    m->err = err;
    m->decode_allowance = decode_allowance;
    m->decode_ratio = decode_ratio;
    if (!(m->ch = msi_calloc(a, n, sizeof *m->ch))) {
        msi_free(a, m);
        return NULL;
    }
    for (size_t i = 0; i < n; i++, m->n++) {
        mf_chan *c = &m->ch[i];
        char def[32];
        snprintf(def, sizeof def, "channel %zu", i + 1);
        if (!(c->name = msi_strdup(a, ch[i].name && *ch[i].name ? ch[i].name : def))) {
            mq_multifd_free(m);
            return NULL;
        }
        c->in.read = ch[i].read;
        c->in.read_ctx = ch[i].ctx;
        c->index = i;
    }
    return m;
}

void mq_multifd_free(mq_multifd *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        msi_free(m->alloc, m->ch[i].name);
        mq_in_close(&m->ch[i].in, m->alloc);
        mq_zip_free(m->ch[i].zip);
    }
    msi_free(m->alloc, m->ch);
    msi_free(m->alloc, m->by_id);
    msi_free(m->alloc, m->offsets);
    msi_free(m->alloc, m);
}

void mq_multifd_stats(const mq_multifd *m, ms_qemu_import_stats *s)
{
    if (!m->opened)
        return;
    s->channels = (uint32_t)m->n;
    s->multifd_packets = m->packets;
    s->multifd_syncs = m->syncs;
    for (size_t i = 0; i < m->n && i < MS_QEMU_MAX_CHANNELS; i++) {
        const mf_chan *c = &m->ch[i];
        s->channel[i] = (struct ms_qemu_channel_stats){.id = c->id,
                                                       .bytes_read = c->bytes_read,
                                                       .packets = c->packets,
                                                       .normal_pages = c->normal_pages,
                                                       .zero_pages = c->zero_pages};
        s->normal_pages += c->normal_pages;
        s->zero_pages += c->zero_pages;
    }
}

/* ------------------------------------------------------------ reading */

static uint64_t chan_offset(const mf_chan *c)
{
    return mq_in_offset(&c->in);
}

/* Names the channel, and the packet being read, for messages. */
static const char *where(mq_multifd *m, const mf_chan *c, bool packet)
{
    if (packet)
        snprintf(m->what, sizeof m->what, "multifd channel %u (%s) packet %llu", c->id, c->name,
                 (unsigned long long)c->packets);
    else
        snprintf(m->what, sizeof m->what, "multifd channel (%s)", c->name);
    return m->what;
}

int mq_multifd_open(mq_multifd *m, uint32_t page_size, const uint8_t *uuid)
{
    m->opened = true;
    m->ps = page_size;
    m->page_count = MQ_MF_PACKET_SIZE / page_size;
    m->offsets = msi_calloc(m->alloc, m->page_count, sizeof *m->offsets);
    m->by_id = msi_calloc(m->alloc, m->n, sizeof *m->by_id);
    if (!m->offsets || !m->by_id)
        return mq_fail(m->err, MS_ENOMEM, 0, "multifd", "out of memory");
    const mf_chan *first = NULL;
    for (size_t i = 0; i < m->n; i++) {
        mf_chan *c = &m->ch[i];
        const char *what = where(m, c, false);
        if (mq_in_open(&c->in, m->alloc, MQ_CHANNEL_IN_CAP, m->err, true))
            return mq_fail(m->err, MS_ENOMEM, 0, what, "out of memory");
        int rc = mq_in_need(&c->in, MQ_MF_INIT_SIZE, 0, what);
        if (rc)
            return rc;
        const uint8_t *p = mq_in_peek(&c->in);
        uint32_t magic = mq_be32(p), version = mq_be32(p + 4);
        if (magic == MQ_QEVM_MAGIC)
            return mq_fail(m->err, MS_ECORRUPT, 0, what,
                           "this is a main stream (\"QEVM\"), not a multifd channel");
        if (magic != MQ_MF_MAGIC)
            return mq_fail(m->err, MS_ECORRUPT, 0, what,
                           "init record magic 0x%08x is not multifd's 0x11223344", magic);
        if (version != MQ_MF_VERSION)
            return mq_fail(m->err, MS_EVERSION, 0, what, "init record version %u (only 1 is read)",
                           version);
        c->id = p[MQ_MF_INIT_ID];
        if (c->id >= m->n)
            return mq_fail(m->err, MS_ECORRUPT, 0, what,
                           "channel id %u, but %zu channels are given: ids run from 0 to the "
                           "channel count - 1, so a channel is missing",
                           c->id, m->n);
        for (size_t j = 0; j < i; j++)
            if (m->ch[j].id == c->id)
                return mq_fail(m->err, MS_ECORRUPT, 0, what,
                               "channel id %u is also the id of %s: the same channel twice, "
                               "or channels of two migrations",
                               c->id, m->ch[j].name);
        /* QEMU's destination checks the uuid against its own. */
        if (uuid && memcmp(p + MQ_MF_INIT_UUID, uuid, 16) != 0)
            return mq_fail(m->err, MS_ECORRUPT, 0, what,
                           "channel %u's uuid differs from the main stream's "
                           "(configuration/uuid): a channel of another migration",
                           c->id);
        if (first && memcmp(p + MQ_MF_INIT_UUID, mq_in_peek(&first->in) + MQ_MF_INIT_UUID, 16))
            return mq_fail(m->err, MS_ECORRUPT, 0, what,
                           "channel %u's uuid differs from %s's: channels of two migrations", c->id,
                           first->name);
        if (!first)
            first = c;
        m->by_id[c->id] = c;
        c->bytes_read = chan_offset(c);
    }
    /* The first channel's init record stays in its buffer for the uuid
     * comparison above; only now are the records consumed. */
    for (size_t i = 0; i < m->n; i++)
        m->ch[i].in.pos += MQ_MF_INIT_SIZE;
    return 0;
}

static const char *compression_name(uint32_t flags)
{
    switch (flags & MQ_MF_COMPRESSION) {
    case MQ_MF_ZLIB:
        return "zlib";
    case MQ_MF_ZSTD:
        return "zstd";
    case MQ_MF_QPL:
        return "qpl";
    case MQ_MF_UADK:
        return "uadk";
    case MQ_MF_QATZIP:
        return "qatzip";
    default:
        return "unknown";
    }
}

/*
 * Decodes the @normal pages of a compressed packet (method m->method) from
 * the channel's next @len bytes, one page at a time, into the sink. The
 * bytes must decode to exactly the pages: after the last one, the rest of
 * the packet (QEMU's flush marker) must decode to nothing. The output never
 * exceeds one page at a time, whatever the data claims.
 */
static int read_compressed(mq_multifd *m, mf_chan *c, mq_sink *sink, uint32_t bi, uint32_t normal,
                           uint32_t len, const mq_where *pw)
{
    const uint32_t ps = m->ps;
    const uint64_t start = chan_offset(c);
    const char *what = pw->what;
    const char *name = compression_name(m->method);
    const mq_where w = {.what = what, .offset = start, .origin = pw->origin};
    /* The decoding work, bounded by the bytes the channels carried: a
     * packet's header and offsets already keep it under 1400 times them
     * (512 KiB of pages after at least 384 bytes), but a stream of 1 byte
     * of data per packet would still decode gigabytes per megabyte. The
     * packet's pages are counted before they are decoded, as the reader
     * counts a record's (FORMAT.md section 9). */
    uint64_t read = 0;
    for (size_t k = 0; k < m->n; k++)
        read += chan_offset(&m->ch[k]);
    const uint64_t need = (uint64_t)normal * ps;
    uint64_t allowed;
    if (msi_mul_overflow(m->decode_ratio, read, &allowed) ||
        msi_add_overflow(allowed, m->decode_allowance, &allowed))
        allowed = UINT64_MAX;
    if (m->decoded + need > allowed)
        return mq_fail(m->err, MS_ELIMIT, start, what,
                       "%s data would decode to %llu bytes in all channels, more than the %llu "
                       "that their %llu bytes read may (%llu bytes and %u times their bytes: "
                       "max_decode_ratio)",
                       name, (unsigned long long)(m->decoded + need), (unsigned long long)allowed,
                       (unsigned long long)read, (unsigned long long)m->decode_allowance,
                       m->decode_ratio);
    m->decoded += need;
    if (!c->zip && !(c->zip = mq_zip_new(m->alloc, m->method)))
        return mq_fail(m->err, MS_ENOMEM, start, what, "out of memory for %s", name);
    uint32_t left = len; /* compressed bytes of the packet not consumed yet */
    uint64_t made_all = 0;
    for (uint32_t i = 0; i <= normal; i++) {
        /* i == normal: one byte of room, to see whether anything follows. */
        uint8_t extra;
        uint8_t *out = &extra;
        if (i < normal && !(out = mq_sink_slot(sink, &w)))
            return m->err->status;
        const size_t room = i < normal ? ps : 1;
        size_t have = 0;
        while (have < room) {
            size_t avail = mq_in_avail(&c->in);
            if (avail > left)
                avail = left;
            int rc;
            if (!avail && left) {
                if ((rc = mq_in_need(&c->in, 1, start, what)))
                    return rc;
                avail = mq_in_avail(&c->in);
                if (avail > left)
                    avail = left;
            }
            size_t used, made;
            const char *why = "";
            uint64_t at = chan_offset(c);
            rc = mq_zip_step(c->zip, mq_in_peek(&c->in), avail, &used, out + have, room - have,
                             &made, &why);
            if (rc)
                return mq_fail(m->err, rc, at, what, "%s data at byte %u of the packet's %u: %s",
                               name, len - left, len, why);
            c->in.pos += used;
            left -= (uint32_t)used;
            have += made;
            made_all += made;
            if (used || made)
                continue;
            if (left)
                return mq_fail(m->err, MS_ECOMPRESS, at, what,
                               "%s data at byte %u of the packet's %u does not decode", name,
                               len - left, len);
            if (i < normal)
                return mq_fail(m->err, MS_ECOMPRESS, start, what,
                               "%u bytes of %s data decode to %llu bytes, but the packet has "
                               "%u normal pages (%llu bytes)",
                               len, name, (unsigned long long)made_all, normal,
                               (unsigned long long)normal * ps);
            break;
        }
        if (i == normal) {
            if (have)
                return mq_fail(m->err, MS_ECOMPRESS, start, what,
                               "%u bytes of %s data decode to more than the packet's %u normal "
                               "pages (%llu bytes)",
                               len, name, normal, (unsigned long long)normal * ps);
            break;
        }
        c->normal_pages++;
        int rc = mq_sink_page(sink, bi, m->offsets[i], out, &w);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Reads one packet of @c and hands its pages to the sink. *sync tells
 * whether it was a SYNC packet; with @after_last (after QEMU's EOF) a packet
 * must carry nothing.
 */
static int read_packet(mq_multifd *m, mf_chan *c, mq_sink *sink, bool after_last, bool *sync)
{
    const uint32_t ps = m->ps;
    const uint64_t off = chan_offset(c);
    c->packets++;
    m->packets++;
    const char *what = where(m, c, true);
    int rc = mq_in_need(&c->in, 12, off, what);
    if (rc)
        return rc;
    const uint8_t *p = mq_in_peek(&c->in);
    uint32_t magic = mq_be32(p + MQ_MF_P_MAGIC), version = mq_be32(p + MQ_MF_P_VERSION),
             flags = mq_be32(p + MQ_MF_P_FLAGS);
    if (magic != MQ_MF_MAGIC)
        return mq_fail(m->err, MS_ECORRUPT, off, what, "packet magic 0x%08x (0x11223344 expected)",
                       magic);
    if (version != MQ_MF_VERSION)
        return mq_fail(m->err, MS_EVERSION, off, what, "packet version %u (only 1 is read)",
                       version);
    if (flags & ~(MQ_MF_SYNC | MQ_MF_COMPRESSION | MQ_MF_DEVICE_STATE))
        return mq_fail(m->err, MS_ECORRUPT, off, what, "flags 0x%x unknown", flags);
    if (flags & MQ_MF_DEVICE_STATE)
        return mq_fail(m->err, MS_EFEATURE, off, what,
                       "a device state packet (flags 0x%x, QEMU 10.0+ VFIO): not supported", flags);
    const uint32_t zip = flags & MQ_MF_COMPRESSION;
    if (zip && zip != MQ_MF_ZLIB && zip != MQ_MF_ZSTD) {
        if (zip & (zip - 1))
            return mq_fail(m->err, MS_ECORRUPT, off, what,
                           "flags 0x%x name several compression methods", flags);
        return mq_fail(m->err, MS_EFEATURE, off, what,
                       "compressed with %s (flags 0x%x, multifd-compression): only zlib and "
                       "zstd are read",
                       compression_name(flags), flags);
    }
    const size_t len = MQ_MF_HEADER_SIZE + (size_t)m->page_count * 8;
    if ((rc = mq_in_need(&c->in, len, off, what)))
        return rc;
    p = mq_in_peek(&c->in);
    uint32_t alloc = mq_be32(p + MQ_MF_P_PAGES_ALLOC), normal = mq_be32(p + MQ_MF_P_NORMAL),
             next = mq_be32(p + MQ_MF_P_NEXT_SIZE);
    uint64_t num = mq_be64(p + MQ_MF_P_PACKET_NUM);
    uint32_t zero = mq_be32(p + MQ_MF_P_ZERO);
    if (alloc > m->page_count)
        return mq_fail(m->err, MS_ECORRUPT, off, what,
                       "pages_alloc %u exceeds the %u offsets a packet holds with %u-byte pages",
                       alloc, m->page_count, ps);
    if (normal > alloc || zero > alloc - normal)
        return mq_fail(m->err, MS_ECORRUPT, off, what,
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
            return mq_fail(m->err, MS_ECORRUPT, off, what,
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
        return mq_fail(m->err, MS_ECORRUPT, off, what,
                       "next_packet_size %u for %u uncompressed pages of %u bytes", next, normal,
                       ps);
    if (normal && zip && (next == 0 || next > MQ_MF_ZIP_MAX))
        return mq_fail(m->err, MS_ECORRUPT, off, what,
                       "next_packet_size %u for %u pages compressed with %s (1 to %u expected)",
                       next, normal, compression_name(zip), MQ_MF_ZIP_MAX);
    if (after_last && (normal || zero || (flags & MQ_MF_SYNC)))
        return mq_fail(m->err, MS_ECORRUPT, off, what, "%s after the main stream's last sync point",
                       flags & MQ_MF_SYNC ? "a SYNC packet" : "pages");
    if (!m->any_num || num > m->max_num)
        m->max_num = num;
    m->any_num = true;
    *sync = flags & MQ_MF_SYNC;
    uint32_t bi = UINT32_MAX;
    if (normal + zero) {
        char name[MQ_MF_P_NAME_SIZE];
        memcpy(name, p + MQ_MF_P_NAME, sizeof name);
        if (!memchr(name, 0, sizeof name))
            return mq_fail(m->err, MS_ECORRUPT, off, what, "block name is not NUL-terminated");
        if (!name[0])
            return mq_fail(m->err, MS_ECORRUPT, off, what, "%u pages but no block name",
                           normal + zero);
        bi = mq_sink_find_block(sink, name);
        if (bi == UINT32_MAX)
            return mq_fail(m->err, MS_ECORRUPT, off, what,
                           "unknown RAM block '%s' (not in the MEM_SIZE table)", name);
        uint64_t blen = mq_sink_block_length(sink, bi);
        for (uint32_t i = 0; i < normal + zero; i++) {
            uint64_t a = mq_be64(p + MQ_MF_HEADER_SIZE + (size_t)i * 8);
            if (a % ps || a >= blen)
                return mq_fail(m->err, MS_ECORRUPT, off, what,
                               "%s page %u at 0x%llx %s block '%s' (used length 0x%llx)",
                               i < normal ? "normal" : "zero", i < normal ? i : i - normal,
                               (unsigned long long)a,
                               a % ps ? "is not page-aligned in" : "lies outside", name,
                               (unsigned long long)blen);
            m->offsets[i] = a;
        }
    }
    c->in.pos += len;
    /* Each packet is an origin of its own: its pages' offsets are the
     * channel's, and its records say so. */
    const uint64_t origin = MQ_ORIGIN_PACKETS + m->packets;
    if (zip && normal) {
        const mq_where w = {.what = what, .offset = off, .origin = origin};
        if ((rc = read_compressed(m, c, sink, bi, normal, next, &w)))
            return rc;
    }
    for (uint32_t i = 0; i < (zip ? 0 : normal); i++) {
        const mq_where w = {.what = what, .offset = chan_offset(c), .origin = origin};
        if ((rc = mq_in_need(&c->in, ps, w.offset, what)))
            return rc;
        const uint8_t *page = mq_in_peek(&c->in);
        c->in.pos += ps;
        c->normal_pages++;
        if ((rc = mq_sink_page(sink, bi, m->offsets[i], page, &w)))
            return rc;
    }
    const mq_where wz = {.what = what, .offset = off, .origin = origin};
    for (uint32_t i = normal; i < normal + zero; i++) {
        c->zero_pages++;
        if ((rc = mq_sink_page(sink, bi, m->offsets[i], NULL, &wz)))
            return rc;
    }
    /* No later page shares the packet's origin: its record is complete, and
     * the sink need not keep it open (nor move it) until the next page. */
    mq_sink_seal(sink);
    c->bytes_read = chan_offset(c);
    return 0;
}

void mq_multifd_sync_begin(mq_multifd *m, uint64_t main_off)
{
    m->syncs++;
    m->sync_off = main_off;
    m->turn = 0;
}

int mq_multifd_sync_step(mq_multifd *m, mq_sink *sink)
{
    mf_chan *c = m->by_id[m->turn];
    bool end = false, sync = false;
    int rc = mq_in_at_end(&c->in, &end, chan_offset(c), where(m, c, false));
    if (rc)
        return rc;
    if (end)
        return mq_fail(m->err, MS_ETRUNCATED, chan_offset(c), where(m, c, false),
                       "channel %u ends after %llu bytes and %llu packets, before its SYNC "
                       "packet for sync point %llu (main stream offset %llu)",
                       c->id, (unsigned long long)chan_offset(c), (unsigned long long)c->packets,
                       (unsigned long long)m->syncs, (unsigned long long)m->sync_off);
    if ((rc = read_packet(m, c, sink, false, &sync)))
        return rc;
    if (sync)
        m->turn++;
    return m->turn == m->n;
}

int mq_multifd_finish_step(mq_multifd *m, mq_sink *sink, uint64_t main_off)
{
    if (!m->finishing) {
        m->finishing = true;
        m->turn = 0;
        m->total = 0;
    }
    while (m->turn < m->n) {
        mf_chan *c = m->by_id[m->turn];
        bool end = false, sync = false;
        int rc = mq_in_at_end(&c->in, &end, chan_offset(c), where(m, c, false));
        if (rc)
            return rc;
        if (!end)
            return read_packet(m, c, sink, true, &sync);
        m->total += c->packets;
        m->turn++;
    }
    if (!m->syncs)
        return mq_fail(m->err, MS_ECORRUPT, main_off, "multifd",
                       "%zu channels were given, but the main stream has no sync point: not a "
                       "multifd migration",
                       m->n);
    /* QEMU numbers every packet of every channel from 0 (packet_num): the
     * packets of a missing channel leave the count short. */
    if (m->any_num && m->total != m->max_num + 1)
        return mq_fail(m->err, MS_ECORRUPT, main_off, "multifd",
                       "the %zu channels given hold %llu packets, but QEMU numbered them up to "
                       "%llu: a channel is missing",
                       m->n, (unsigned long long)m->total, (unsigned long long)m->max_num);
    return 1;
}
