/*
 * Shared by fuzz_replay and fuzz_diff (fuzz_frame.h).
 */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <xxhash.h>

#include "fuzz_frame.h"

static const uint8_t magic[8] = {0x89, 'M', 'I', 'G', 'S', '\r', '\n', 0x1a};

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool failed;
} buf;

static uint8_t *room(buf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (n > cap - b->n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->n;
    b->n += n;
    return at;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A CBOR head in its shortest form (RFC 8949 section 4.2.1). */
static void cbor_head(buf *b, unsigned major, uint64_t v)
{
    int extra = v < 24 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    uint8_t *p = room(b, 1 + (size_t)extra);
    if (!p)
        return;
    p[0] = (uint8_t)(major << 5 | (extra == 0 ? v : extra == 1 ? 24 : extra == 2 ? 25 : extra == 4 ? 26 : 27));
    for (int i = 0; i < extra; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (extra - 1 - i)));
}

uint8_t *fz_stream(const uint8_t *data, size_t size, size_t *out_size)
{
    buf b = {0};
    if (size >= sizeof magic && memcmp(data, magic, sizeof magic) == 0) {
        uint8_t *p = room(&b, size ? size : 1);
        if (!p)
            return NULL;
        memcpy(p, data, size);
        *out_size = size;
        return b.p;
    }
    uint8_t *pre = room(&b, 112);
    if (!pre)
        return NULL;
    memset(pre, 0, 112);
    memcpy(pre, magic, 8);
    put_le(pre + 8, 1, 2);
    put_le(pre + 12, 112, 4);
    put_le(pre + 32, 4096, 4);
    memcpy(pre + 40, "fuzz", 4);
    uint64_t chain = XXH3_64bits_withSeed(pre, 104, 0);
    put_le(pre + 104, chain, 8);
    uint64_t records = 0, devices = 0, pages[256] = {0};
    size_t i = 0;
    while (i + 4 <= size) {
        uint16_t type = data[i] % 8, flags = data[i + 1] & 1;
        size_t len = (size_t)get_le(data + i + 2, 2);
        i += 4;
        if (len > size - i)
            len = size - i;
        size_t at = b.n;
        if (!room(&b, 16))
            break;
        if (type == 5 && len == 0) { /* END with the totals the records imply */
            cbor_head(&b, 5, 4);
            cbor_head(&b, 0, 0);
            cbor_head(&b, 0, records);
            cbor_head(&b, 0, 1);
            cbor_head(&b, 0, at);
            cbor_head(&b, 0, 2);
            size_t states = 0;
            for (int s = 1; s < 256; s++)
                states += pages[s] != 0;
            cbor_head(&b, 5, states);
            for (int s = 1; s < 256; s++) {
                if (pages[s]) {
                    cbor_head(&b, 0, (uint64_t)s);
                    cbor_head(&b, 0, pages[s]);
                }
            }
            cbor_head(&b, 0, 3);
            cbor_head(&b, 0, devices);
            flags = 1;
        } else {
            uint8_t *p = room(&b, len);
            if (!p)
                break;
            memcpy(p, data + i, len);
        }
        i += len;
        if (b.failed)
            break;
        uint8_t *h = b.p + at;
        size_t plen = b.n - at - 16;
        put_le(h, type, 2);
        put_le(h + 2, flags, 2);
        put_le(h + 4, plen, 4);
        XXH3_state_t *st = XXH3_createState();
        if (!st) {
            b.failed = true;
            break;
        }
        XXH3_64bits_reset_withSeed(st, chain);
        XXH3_64bits_update(st, h, 8);
        XXH3_64bits_update(st, h + 16, plen);
        chain = XXH3_64bits_digest(st);
        XXH3_freeState(st);
        put_le(h + 8, chain, 8);
        /* Totals for a later END (FORMAT.md section 8). */
        const uint8_t *pl = h + 16;
        if (type == 3 && plen >= 16) {
            uint64_t n = get_le(pl + 4, 4);
            for (uint64_t k = 0; k < n && 16 + 24 * k + 24 <= plen; k++)
                pages[pl[16 + 24 * k + 12]] += get_le(pl + 16 + 24 * k + 8, 4);
        }
        devices += type == 4;
        records++;
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *out_size = b.n;
    return b.p;
}

ssize_t fz_mem_read(void *ctx, void *out, size_t len)
{
    fz_mem *m = ctx;
    size_t n = m->size - m->pos < len ? m->size - m->pos : len;
    memcpy(out, m->p + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static char scratch[4096];

static void remove_scratch(void)
{
    rmdir(scratch);
}

const char *fz_scratch_dir(void)
{
    if (scratch[0])
        return scratch;
    const char *tmp = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", tmp && *tmp ? tmp : "/tmp", "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        snprintf(scratch, sizeof scratch, "%s/migstream-fuzz-XXXXXX", bases[i]);
        if (access(bases[i], W_OK) == 0 && mkdtemp(scratch)) {
            atexit(remove_scratch);
            return scratch;
        }
    }
    fprintf(stderr, "fuzz: cannot make a scratch directory\n");
    abort();
}

int fz_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

void fz_check_clean(const char *dir, int fds_before)
{
    int fds = fz_open_fds();
    if (fds != fds_before) {
        fprintf(stderr, "fuzz: %d descriptors open after the input, %d before\n", fds,
                fds_before);
        abort();
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        abort();
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "fuzz: %s/%s was left behind\n", dir, e->d_name);
            abort();
        }
    }
    closedir(d);
}
