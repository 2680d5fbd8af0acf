/*
 * libvirt's header and the data area after it (image.h; docs/FORMATS.md
 * section 2). libvirt writes the header's integers in its host's byte order
 * and reads them back swapped when the version does not read as one it
 * knows (qemuSaveImageBswapHeader): so does this file, by trying version 2
 * in both orders. Every failure names the header field or the part of the
 * data area, with its byte offset in the image.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libvirt/image.h"
#include "migstream/libvirt.h"

static const char *const format_names[MLV_FORMAT_COUNT] = {
    "raw", "gzip", "bzip2", "xz", "lzop", "zstd", "sparse",
};

const char *mlv_format_name(uint32_t format)
{
    return format < MLV_FORMAT_COUNT ? format_names[format] : NULL;
}

/* ------------------------------------------------------------------ input */

ssize_t mlv_in_read(mlv_in *in, void *buf, size_t len)
{
    ssize_t k =
        in->read ? in->read(in->read_ctx, buf, len) : in->pread(in->pread_ctx, buf, len, in->pos);
    if (k < 0)
        return k;
    if ((size_t)k > len)
        return MS_EIO;
    in->pos += (uint64_t)k;
    return k;
}

/* Reads up to @len bytes, stopping early only at the end: the count read,
 * or a negative failure. */
static ssize_t read_full(mlv_in *in, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = mlv_in_read(in, buf + got, len - got);
        if (k < 0)
            return k;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* ----------------------------------------------------------------- header */

static uint32_t get32(const uint8_t *p, bool swapped)
{
    return swapped ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
                   : msi_get32(p);
}

/* A failure in the header's field @field at byte @off of the image. */
static int hfail(msi_source *s, int status, uint64_t off, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int hfail(msi_source *s, int status, uint64_t off, const char *field, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return msi_source_fail(s, status, off, "libvirt header, %s at offset %llu: %s", field,
                           (unsigned long long)off, detail);
}

/* The magic as text for a message: printable bytes as they are, others as
 * \xNN. */
static void show_magic(const uint8_t *p, size_t n, char *out, size_t size)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k + 5 < size; i++)
        k += (size_t)snprintf(out + k, size - k,
                              p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' ? "%c" : "\\x%02x", p[i]);
}

static int check_format(msi_source *s, const mlv_header *h)
{
    const uint64_t start = mlv_stream_start(h);
    switch (h->format) {
    case MLV_FORMAT_RAW:
    case MLV_FORMAT_GZIP:
    case MLV_FORMAT_BZIP2:
    case MLV_FORMAT_XZ:
    case MLV_FORMAT_ZSTD:
        return 0;
    case MLV_FORMAT_LZOP:
        return hfail(s, MS_EFEATURE, MLV_OFF_FORMAT, "format",
                     "4 (lzop) is not read. The lzop-compressed QEMU stream starts at byte "
                     "%llu: `tail -c +%llu IMAGE | lzop -dc > IMAGE.qemu` writes it "
                     "uncompressed, and that file is read as a QEMU migration stream",
                     (unsigned long long)start, (unsigned long long)start + 1);
    case MLV_FORMAT_SPARSE:
        return hfail(s, MS_EFEATURE, MLV_OFF_FORMAT, "format",
                     "6 (sparse: QEMU's mapped-ram, pages at offsets of the image file) is not "
                     "read");
    default:
        return hfail(s, MS_EFEATURE, MLV_OFF_FORMAT, "format",
                     "%u is not a format libvirt defines (0 raw, 1 gzip, 2 bzip2, 3 xz, 4 lzop, "
                     "5 zstd, 6 sparse)",
                     h->format);
    }
}

int mlv_header_read(msi_source *s, mlv_in *in, uint32_t max_data_len, mlv_header *h)
{
    uint8_t b[MLV_HEADER_SIZE];
    char shown[MLV_MAGIC_LEN * 4 + 1];
    memset(h, 0, sizeof *h);
    ssize_t got = read_full(in, b, sizeof b);
    if (got < 0)
        return msi_source_fail(s, MS_EIO, 0,
                               "libvirt header at offset 0: reading the image failed");
    if ((size_t)got >= MLV_MAGIC_LEN && memcmp(b, MS_LIBVIRT_MAGIC_PARTIAL, MLV_MAGIC_LEN) == 0)
        return hfail(s, MS_ETRUNCATED, 0, "magic",
                     "\"%s\": libvirt did not finish this save (it writes that magic first and "
                     "\"%s\" once QEMU's stream is complete)",
                     MS_LIBVIRT_MAGIC_PARTIAL, MS_LIBVIRT_MAGIC);
    size_t cmp = (size_t)got < MLV_MAGIC_LEN ? (size_t)got : MLV_MAGIC_LEN;
    if (memcmp(b, MS_LIBVIRT_MAGIC, cmp) != 0) {
        show_magic(b, cmp, shown, sizeof shown);
        return hfail(s, MS_EMAGIC, 0, "magic", "\"%s\" is not libvirt's \"%s\"", shown,
                     MS_LIBVIRT_MAGIC);
    }
    if ((size_t)got < sizeof b)
        return hfail(s, MS_ETRUNCATED, (uint64_t)got, "end",
                     "the image ends after %zd bytes, within the %u-byte header", got,
                     MLV_HEADER_SIZE);

    /* Version 2 in the writer's byte order, whichever that was. */
    uint32_t le = get32(b + MLV_OFF_VERSION, false), be = get32(b + MLV_OFF_VERSION, true);
    if (le != MS_LIBVIRT_VERSION && be == MS_LIBVIRT_VERSION)
        h->swapped = true;
    h->version = get32(b + MLV_OFF_VERSION, h->swapped);
    if (h->version != MS_LIBVIRT_VERSION) {
        if (le == 1 || be == 1)
            return hfail(s, MS_EVERSION, MLV_OFF_VERSION, "version",
                         "1 (images of libvirt before compressed saves) is not read, only %u",
                         MS_LIBVIRT_VERSION);
        return hfail(s, MS_EVERSION, MLV_OFF_VERSION, "version",
                     "%u (0x%08x in the other byte order) is not %u, the only version read", le, be,
                     MS_LIBVIRT_VERSION);
    }
    h->data_len = get32(b + MLV_OFF_DATA_LEN, h->swapped);
    h->was_running = get32(b + MLV_OFF_WAS_RUNNING, h->swapped);
    h->format = get32(b + MLV_OFF_FORMAT, h->swapped);
    h->cookie_offset = get32(b + MLV_OFF_COOKIE, h->swapped);

    if (h->data_len == 0)
        return hfail(s, MS_ECORRUPT, MLV_OFF_DATA_LEN, "data_len",
                     "0, but the domain XML follows the header");
    if (h->data_len > max_data_len)
        return hfail(s, MS_ELIMIT, MLV_OFF_DATA_LEN, "data_len",
                     "%u bytes of domain XML, cookie and padding exceed max_xml_size (%u)",
                     h->data_len, max_data_len);
    if (h->cookie_offset >= h->data_len)
        return hfail(s, MS_ECORRUPT, MLV_OFF_COOKIE, "cookieOffset",
                     "%u lies outside data_len (%u): the cookie would start past the data",
                     h->cookie_offset, h->data_len);
    int rc = check_format(s, h);
    if (rc)
        return rc;

    /* What libvirt ignores: reported, not refused. */
    if (h->was_running > 1)
        msi_source_problem(s, 0, MLV_OFF_WAS_RUNNING,
                           "libvirt header, was_running at offset %u: %u (libvirt writes 0 or "
                           "1; taken as running)",
                           MLV_OFF_WAS_RUNNING, h->was_running);
    for (unsigned i = 0; i < MLV_UNUSED_WORDS; i++) {
        uint32_t w = get32(b + MLV_OFF_UNUSED + 4 * i, h->swapped);
        if (w) {
            msi_source_problem(s, 0, MLV_OFF_UNUSED + 4 * i,
                               "libvirt header, unused[%u] at offset %u: 0x%08x (libvirt "
                               "writes zero)",
                               i, MLV_OFF_UNUSED + 4 * i, w);
            break;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- the texts */

/* XML 1.0's characters: no control characters but tab, LF and CR. The
 * offset of the first other one in @p, or SIZE_MAX. */
static size_t bad_control(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return i;
    return SIZE_MAX;
}

/*
 * Reads the @len bytes of one text of the data area, which starts at byte
 * @start of the image: the bytes before the first NUL go to @out (then
 * NUL-terminated, the NUL not counted in its length), the rest must be
 * zero (a warning otherwise). Memory grows with the text, never with @len.
 */
static int read_text(msi_source *s, mlv_in *in, uint64_t start, uint32_t len, const char *what,
                     uint64_t data_end, msi_buf *out)
{
    uint8_t chunk[16384];
    bool ended = false, reported = false;
    uint32_t done = 0;
    while (done < len) {
        size_t want = len - done < sizeof chunk ? len - done : sizeof chunk;
        ssize_t k = mlv_in_read(in, chunk, want);
        if (k < 0)
            return msi_source_fail(s, MS_EIO, start + done,
                                   "libvirt %s at offset %llu: reading the image failed", what,
                                   (unsigned long long)(start + done));
        if (k == 0)
            return msi_source_fail(s, MS_ETRUNCATED, start + done,
                                   "libvirt %s at offset %llu: the image ends after %llu bytes, "
                                   "before the end of data_len (domain XML, cookie and padding "
                                   "end at byte %llu)",
                                   what, (unsigned long long)start,
                                   (unsigned long long)(start + done),
                                   (unsigned long long)data_end);
        size_t n = (size_t)k, text = n;
        if (!ended) {
            const uint8_t *nul = memchr(chunk, 0, n);
            if (nul) {
                text = (size_t)(nul - chunk);
                ended = true;
            }
            if (msi_buf_append(out, chunk, text))
                return msi_source_fail(s, MS_ENOMEM, start + done,
                                       "libvirt %s at offset %llu: out of memory holding %zu "
                                       "bytes",
                                       what, (unsigned long long)start, out->len + text);
            if (ended)
                text++; /* the NUL */
        } else {
            text = 0;
        }
        for (size_t i = text; i < n && !reported; i++) {
            if (chunk[i]) {
                msi_source_problem(s, 0, start + done + i,
                                   "libvirt %s at offset %llu: byte 0x%02x at offset %llu, "
                                   "after the text's NUL, is not padding (zero); libvirt "
                                   "ignores it",
                                   what, (unsigned long long)start, chunk[i],
                                   (unsigned long long)(start + done + i));
                reported = true;
            }
        }
        done += (uint32_t)n;
    }
    if (!ended)
        return msi_source_fail(s, MS_ECORRUPT, start,
                               "libvirt %s at offset %llu: no NUL ends it within its %u bytes",
                               what, (unsigned long long)start, len);
    if (msi_buf_append(out, "", 1))
        return msi_source_fail(s, MS_ENOMEM, start, "libvirt %s at offset %llu: out of memory",
                               what, (unsigned long long)start);
    out->len--; /* the NUL stays, uncounted */
    return 0;
}

/* The text of @out (read from byte @start) is text a DEVICE record can
 * carry and an XML parser would take. */
static int check_text(msi_source *s, const msi_buf *t, uint64_t start, const char *what)
{
    if (!msi_utf8_ok(t->data, t->len, false))
        return msi_source_fail(s, MS_ECORRUPT, start,
                               "libvirt %s at offset %llu: its %zu bytes are not UTF-8 text", what,
                               (unsigned long long)start, t->len);
    size_t bad = bad_control(t->data, t->len);
    if (bad != SIZE_MAX)
        return msi_source_fail(s, MS_ECORRUPT, start + bad,
                               "libvirt %s at offset %llu: control character 0x%02x at offset "
                               "%llu, which XML does not allow",
                               what, (unsigned long long)start, t->data[bad],
                               (unsigned long long)(start + bad));
    return 0;
}

/* Whether the XML's first element is <@root ...>, after white space. */
static bool starts_with_element(const msi_buf *t, const char *root)
{
    size_t i = 0, n = strlen(root);
    while (i < t->len &&
           (t->data[i] == ' ' || t->data[i] == '\t' || t->data[i] == '\n' || t->data[i] == '\r'))
        i++;
    if (t->len - i < n + 2 || t->data[i] != '<' || memcmp(t->data + i + 1, root, n) != 0)
        return false;
    uint8_t c = t->data[i + 1 + n];
    return c == '>' || c == ' ' || c == '/' || c == '\t' || c == '\n' || c == '\r';
}

int mlv_data_read(msi_source *s, mlv_in *in, const mlv_header *h, msi_buf *xml, msi_buf *cookie)
{
    const uint64_t start = MLV_HEADER_SIZE, end = mlv_stream_start(h);
    const uint32_t xml_len = h->cookie_offset ? h->cookie_offset : h->data_len;
    int rc;
    if ((rc = read_text(s, in, start, xml_len, "domain XML", end, xml)) ||
        (rc = check_text(s, xml, start, "domain XML")))
        return rc;
    if (xml->len == 0)
        return msi_source_fail(s, MS_ECORRUPT, start,
                               "libvirt domain XML at offset %llu: empty (its first byte is NUL)",
                               (unsigned long long)start);
    if (!starts_with_element(xml, "domain"))
        return msi_source_fail(s, MS_ECORRUPT, start,
                               "libvirt domain XML at offset %llu: it does not start with a "
                               "<domain> element",
                               (unsigned long long)start);
    if (!h->cookie_offset)
        return 0;
    const uint64_t at = start + h->cookie_offset;
    if ((rc = read_text(s, in, at, h->data_len - h->cookie_offset, "cookie", end, cookie)) ||
        (rc = check_text(s, cookie, at, "cookie")))
        return rc;
    return 0;
}

/* ------------------------------------------------------------ description */

bool mlv_xml_element(const char *xml, const char *tag, char *out, size_t size)
{
    char open[40], close[41];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *p = strstr(xml, open);
    if (!p || size == 0)
        return false;
    p += strlen(open);
    const char *e = strstr(p, close);
    if (!e)
        return false;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&apos;", '\''}, {"&quot;", '"'}};
    size_t k = 0;
    while (p < e && k + 1 < size) {
        char c = *p++;
        if (c == '&') {
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t n = strlen(ents[i].ent) - 1;
                if ((size_t)(e - p) >= n && memcmp(p, ents[i].ent + 1, n) == 0) {
                    c = ents[i].c;
                    p += n;
                    break;
                }
            }
        }
        out[k++] = c;
    }
    out[k] = 0;
    return true;
}
