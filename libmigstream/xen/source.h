/*
 * Xen's migration stream v2 as a foreign-format source (format/source.h):
 * the driver of the module. It reads the libxl header and records, the
 * libxc headers and records, and hands out the records of the common
 * model one Xen record at a time (docs/XEN.md sections 2 to 4):
 *
 *   INFO      the domain type as machine ("x86 HVM"), when open() read it;
 *   DEVICE    "xen/libxl/header", "xen/header", then one per Xen record
 *             that is not PAGE_DATA or framing, in stream order;
 *   REGIONS   the guest's pfns: at the first PAGE_DATA (HVM) or at each
 *             X86_PV_P2M_FRAMES that grows them (PV);
 *   ROUND     at the first page, at each new pass over memory (a pfn not
 *             above the one before: Xen's saver walks pfns upward in every
 *             iteration), and at the first page after CHECKPOINT or VERIFY;
 *   PAGES     PAGE_DATA pages (pages.h), preceded by a DEVICE
 *             "xen/page_types" when the record has page types that the
 *             page states do not say;
 *   END       after the libxl END (wrapped) or the libxc END (bare).
 *
 * A record's offset is the byte offset of the Xen record (or header) it
 * came from; a PAGES record's is the PAGE_DATA of its first page. Each
 * next() reads at most one Xen record's header and body, or the pages of a
 * PAGE_DATA record up to the PAGES record they fill, before it has a
 * record to hand out.
 */
#ifndef MSI_XEN_SOURCE_H
#define MSI_XEN_SOURCE_H

#include "format/source.h"
#include "migstream/xen.h"

/* "xen". s->options: an ms_xen_import_options (writer ignored), or NULL
 * for the defaults. */
extern const msi_source_ops mx_source_ops;

/* Fills the limits of @o left 0 with their defaults; NULL, or why @o
 * cannot be taken (a limit out of range). */
const char *mx_options_defaults(ms_xen_import_options *o);

/* The counts of the import so far. @s opened, or at least initialized. */
void mx_source_stats(const msi_source *s, ms_xen_import_stats *out);

/* The Xen stream's bytes read so far. */
uint64_t mx_source_offset(const msi_source *s);

/* msi_source_copy() stopped because @w failed (status @rc) on the record
 * the source handed out last: sets the source's error to name the Xen
 * record it came from (and the pfn, for a page). Returns the status. */
int mx_source_writer_failed(msi_source *s, const msi_copy_stop *stop, ms_writer *w, int rc);

#endif /* MSI_XEN_SOURCE_H */
