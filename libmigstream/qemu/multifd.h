/*
 * multifd channels (docs/QEMU.md section 2.1): the extra connections of a
 * multifd migration, each an init record and then packets of page offsets
 * and pages, into the page sink.
 *
 * Owns: the channels (their cursors, names, ids, decompression streams),
 * one packet's offsets, and their counts. Calls: input.h, sink.h,
 * multifd_zip.h, wire.h. The driver decides when a channel is read: at a
 * sync point of the main stream every channel, in id order, up to its SYNC
 * packet (mq_multifd_sync_step, a packet per call), and after QEMU's EOF
 * whatever is left (mq_multifd_finish_step).
 */
#ifndef MSI_QEMU_MULTIFD_H
#define MSI_QEMU_MULTIFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/source.h"
#include "migstream/qemu.h"
#include "qemu/input.h"
#include "qemu/sink.h"

typedef struct mq_multifd mq_multifd;

/* The channels @ch[0, n) (1 to MS_QEMU_MAX_CHANNELS; their callbacks
 * [borrow], names copied, a NULL or empty name "channel N" counting from 1).
 * The channels' zlib or zstd data decodes to at most @decode_allowance
 * bytes plus @decode_ratio times their bytes read, all channels together
 * (ms_qemu_import_options). NULL when out of memory. */
mq_multifd *mq_multifd_new(const ms_allocator *a, mq_error *err, const msi_source_channel *ch,
                           size_t n, uint64_t decode_allowance, uint32_t decode_ratio);
void mq_multifd_free(mq_multifd *m);

/* Reads every channel's init record: ids 0 to n - 1, each once, with the
 * uuid of the main stream's configuration/uuid when @uuid is not NULL. */
int mq_multifd_open(mq_multifd *m, uint32_t page_size, const uint8_t *uuid);

/* A sync point of the main stream at @main_off begins. */
void mq_multifd_sync_begin(mq_multifd *m, uint64_t main_off);
/* Reads one packet of the channel whose turn it is: 1 when every channel
 * reached its SYNC packet, 0 when more remain, or a failure. */
int mq_multifd_sync_step(mq_multifd *m, mq_sink *sink);
/* After QEMU's EOF (the main stream at @main_off): reads one packet left in
 * a channel, which must carry nothing; 1 when every channel ended and the
 * packets add up, 0 when more remain, or a failure. */
int mq_multifd_finish_step(mq_multifd *m, mq_sink *sink, uint64_t main_off);

/* Adds the channels' counts to @s (channels, packets, syncs, per channel;
 * their pages to zero_pages and normal_pages). */
void mq_multifd_stats(const mq_multifd *m, ms_qemu_import_stats *s);

#endif /* MSI_QEMU_MULTIFD_H */
