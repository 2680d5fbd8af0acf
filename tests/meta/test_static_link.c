/*
 * Links against libmigstream.a, not the shared library, and defines names
 * the library uses internally (its allocator wrappers, the QEMU importer's
 * helpers, its zero-page check): if any of them escaped the archive, this
 * program would not link (duplicate symbols) or would call the wrong one.
 * Then writes and reads a small stream through the archive's code.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

/* Same names as library internals, different meanings. */
int msi_alloc(int x);
int msi_page_uniform(int x);
int msi_fd_read(int x);
int qi_fail(int x);
int msi_alloc(int x)
{
    return x + 1;
}
int msi_page_uniform(int x)
{
    return x + 2;
}
int msi_fd_read(int x)
{
    return x + 3;
}
int qi_fail(int x)
{
    return x + 4;
}

typedef struct sink {
    uint8_t buf[1 << 16];
    size_t len;
} sink;

static int put(void *ctx, const struct iovec *iov, int iovcnt)
{
    sink *s = ctx;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > sizeof s->buf - s->len)
            return -1;
        memcpy(s->buf + s->len, iov[i].iov_base, iov[i].iov_len);
        s->len += iov[i].iov_len;
    }
    return 0;
}

int main(void)
{
    if (msi_alloc(1) != 2 || msi_page_uniform(1) != 3 || msi_fd_read(1) != 4 || qi_fail(1) != 5) {
        fprintf(stderr, "test_static_link: a local definition was not the one called\n");
        return 1;
    }
    static sink s;
    static uint8_t ram[4 * 4096];
    memset(ram + 4096, 0x5a, 4096);
    ms_writer *w = ms_writer_new(NULL, put, &s);
    ms_region reg = {.id = 0, .name = "ram", .size = sizeof ram, .page_size = 4096};
    if (ms_writer_status(w) || ms_writer_add_region(w, &reg) || ms_writer_pages(w, 0, 0, 4, ram) ||
        ms_writer_finish(w, NULL)) {
        fprintf(stderr, "test_static_link: writing failed: %s\n", ms_writer_errmsg(w));
        return 1;
    }
    ms_writer_free(w);
    ms_reader *r = ms_reader_new_memory(NULL, s.buf, s.len);
    const ms_record *rec;
    int rc;
    uint64_t data = 0, zero = 0;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        if (rec->type == MS_REC_END) {
            data = rec->totals.pages[MS_PAGE_DATA];
            zero = rec->totals.pages[MS_PAGE_ZERO];
        }
    if (rc || data != 1 || zero != 3) {
        fprintf(stderr, "test_static_link: reading back: rc %d, %llu DATA, %llu ZERO: %s\n", rc,
                (unsigned long long)data, (unsigned long long)zero, ms_reader_errmsg(r));
        return 1;
    }
    ms_reader_free(r);
    printf("libmigstream.a %s: only the ms_ API is visible; a %zu-byte stream read back\n",
           ms_version_string(), s.len);
    return 0;
}
