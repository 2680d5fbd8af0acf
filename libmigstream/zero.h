/*
 * Uniform-page detection: the writer's hot path, run over every byte of
 * guest memory it is handed. A page whose 8-byte words are all equal is a
 * ZERO page (the word is 0) or a FILL page (any other word); every other
 * page is DATA. Both cases cost one pass, so FILL detection is free.
 */
#ifndef MSI_ZERO_H
#define MSI_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when p[0..len) is the 8-byte word *word (read from p's first 8
 * bytes, in memory order, stored into *word) repeated. len is a multiple of
 * 256. Exits at the first block that differs. */
bool msi_page_uniform(const void *p, size_t len, uint64_t *word);

/* True when p[0..len) is all zero. len is a multiple of 256. */
bool msi_is_zero(const void *p, size_t len);

#endif
