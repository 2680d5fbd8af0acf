/*
 * Zero-page detection: the writer's hot path, run over every byte of guest
 * memory it is handed.
 */
#ifndef MSI_ZERO_H
#define MSI_ZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True when p[0..len) is all zero. len is a multiple of 256. */
bool msi_is_zero(const void *p, size_t len);

#endif
