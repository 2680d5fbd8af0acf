/*
 * libmigstream: hypervisor overlay pages (FORMAT.md section 7.2).
 *
 * An overlay is carried as parameters, not as page contents: the kind and a
 * few values rebuild the 4 KiB the guest sees. These functions are the one
 * definition of that mapping, shared by the writer (which checks what it is
 * given), the reader (which checks what it reads), replay tools (which write
 * the guest-visible view) and a destination VMM:
 *
 *     uint8_t page[MS_OVERLAY_PAGE_SIZE];
 *     size_t a = ms_overlay_active(overlays_at_frame, n);
 *     ms_overlay_render(&overlays_at_frame[a], page);
 *
 * Several overlays may be pending at one frame; the one the guest sees is
 * the kind with the highest fixed priority, whatever order they came in.
 *
 * These functions keep no state: any thread may call them at any time.
 */
#ifndef MIGSTREAM_OVERLAY_H
#define MIGSTREAM_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Name of an overlay kind ("REFERENCE_TSC"), or NULL if unknown. Static. */
MS_API const char *ms_overlay_kind_name(unsigned kind);

/** Fixed priority of a kind (higher wins at a shared frame; never changes
 *  between versions), or 0 for an unknown kind. */
MS_API unsigned ms_overlay_priority(unsigned kind);

/**
 * Checks an overlay's kind and parameters against FORMAT.md section 7.2
 * (not its frame against regions: that needs the stream).
 * @param why [out, optional] @p why_size bytes for a message naming the
 *        parameter that is wrong
 * @return 0, or MS_EINVAL with a message.
 */
MS_API int ms_overlay_check(const ms_overlay *o, char *why, size_t why_size);

/**
 * Builds the 4 KiB the guest sees at the overlay's frame.
 * @param page [out] MS_OVERLAY_PAGE_SIZE bytes
 * @return 0, or MS_EINVAL when ms_overlay_check() would fail.
 */
MS_API int ms_overlay_render(const ms_overlay *o, uint8_t *page);

/**
 * Of @p n overlays at one frame, the index of the active one: the highest
 * priority kind. @return an index below @p n, or @p n when n is 0.
 */
MS_API size_t ms_overlay_active(const ms_overlay *set, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_OVERLAY_H */
