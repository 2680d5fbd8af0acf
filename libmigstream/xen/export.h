/*
 * The Xen exporter (docs/XEN.md section 6): a libmigstream stream read
 * through the public reader, written as a libxl or bare libxc stream of
 * Xen's migration format v2. The public ms_xen_export_* API and the entry
 * the source's export op uses.
 *
 * Owns: the exporter. Calls: input (errors, big-endian integers), records
 * (the table, per-record rules, DEVICE paths), rules (the order of libxc
 * records), and the public reader.
 */
#ifndef MSI_XEN_EXPORT_H
#define MSI_XEN_EXPORT_H

#include <stddef.h>

#include "migstream/xen.h"

/* Exports the stream read through @in to @out. @o NULL: the defaults;
 * @stats (optional) gets the counts. 0, or a status with the message in
 * @err (@err_size bytes, NUL-terminated). */
int mx_export(const ms_xen_export_options *o, ms_read_fn in, void *in_ctx, ms_write_fn out,
              void *out_ctx, ms_xen_export_stats *stats, char *err, size_t err_size);

#endif /* MSI_XEN_EXPORT_H */
