/*
 * The QEMU captures of tests/data/qemu (zstd-compressed), for the tests of
 * the QEMU importer and exporter.
 */
#ifndef MS_TEST_QEMU_FIXTURE_H
#define MS_TEST_QEMU_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* Decompresses tests/data/qemu/NAME.qemu.zst into a malloc'd buffer; fails
 * the running test when it cannot. */
uint8_t *th_qemu_fixture(const char *name, size_t *size);

#endif
