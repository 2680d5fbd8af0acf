/*
 * Uniform-page detection: the writer's hot path, run over every byte of
 * guest memory it is handed. A page whose 8-byte words are all equal is a
 * ZERO page (the word is 0) or a FILL page (any other word); every other
 * page is DATA. Both cases cost one pass, so FILL detection is free.
 *
 * The work is done by an AVX2 routine when the CPU has AVX2, else by a
 * portable one; the choice is made once, on first use, and is thread-safe.
 */
#ifndef MSI_ZERO_H
#define MSI_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when p[0..len) is the 8-byte word *word (read from p's first 8
 * bytes, in memory order, stored into *word) repeated. len is a multiple of
 * 256. p needs no alignment. *word is stored whatever the result. Exits soon
 * after the first byte that differs: the first 64 bytes are checked on their
 * own, since data pages nearly always differ there. */
bool msi_page_uniform(const void *p, size_t len, uint64_t *word);

/* True when p[0..len) is all zero. len is a multiple of 256. */
bool msi_is_zero(const void *p, size_t len);

/* The two implementations behind msi_page_uniform(), callable directly so
 * that tests can check both on any CPU, with the same contract.
 * msi_page_uniform_avx2() may only be called when msi_cpu_has_avx2() is
 * true; where the compiler or architecture has no AVX2 it is the portable
 * routine and msi_cpu_has_avx2() is false. */
bool msi_page_uniform_portable(const void *p, size_t len, uint64_t *word);
bool msi_page_uniform_avx2(const void *p, size_t len, uint64_t *word);
bool msi_cpu_has_avx2(void);

#endif
