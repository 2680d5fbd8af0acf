/*
 * libmigstream: reading a migration stream of any format the library knows.
 *
 * ms_open() recognizes a stream by its first bytes (each format module
 * bids on them, as libarchive's readers do) and returns an ms_reader that
 * hands out its contents as this format's records, whatever the format:
 * this library's own streams, and the streams of the VMMs whose modules
 * this build holds (modules.h): QEMU's migration stream with its multifd
 * channels or as a mapped-ram file, libvirt's save images (libvirt.h), Xen's
 * migration stream v2 (xen.h) ...
 * Everything reader.h and replay.h say then holds; the records of another
 * VMM's stream carry no wire bytes (payload NULL, length and checksum 0)
 * and their offsets are byte offsets in that stream, where its own tools
 * would look:
 *
 *     const char *files[] = {"vm.qemu", "vm.qemu.channel1", "vm.qemu.channel2"};
 *     ms_reader *r = ms_open_files(NULL, files, 3);
 *     int rc = ms_reader_status(r);        // MS_ENOMEM for NULL
 *     const ms_record *rec;
 *     while (!rc && (rc = ms_reader_next(r, &rec)) > 0)
 *         ...;                             // regions, pages, devices, END
 *     if (rc < 0)
 *         fprintf(stderr, "%s: %s\n", ms_reader_format(r), ms_reader_errmsg(r));
 *     ms_reader_free(r);
 *
 * A stream that travels over several connections (QEMU's multifd
 * channels) is opened with all its inputs, in any order: the library tells
 * the main one from the others by their bytes, and refuses an input that
 * belongs to no stream it knows, or to another format, naming it. A lone
 * input that no format recognizes is read as this library's own format,
 * whose reader then says what is wrong with it (a damaged magic, with the
 * magic it expected; an empty stream), as ms_reader_new() would.
 *
 * A libmigstream migration in parts (FORMAT.md section 2.1: several
 * streams, one per connection, each starting with a PART record) is opened
 * with every part, in any order: the reader reads each part's preamble and
 * PART record when it is made, and refuses inputs that are not all the
 * parts of one migration (other migration ids, a part missing or given
 * twice, a stream that is not a part among them). It then hands out what
 * the single stream of the migration would hold, round by round: each
 * part's records before its first round (part 0's, then part 1's ...);
 * then, for each round, its ROUND record once and the round's records of
 * part 0, part 1 ...; at last one END. Each record carries the part it
 * comes from (ms_record.part), and its offset and index are those in that
 * part's stream; a region declared by several parts is handed out once
 * (a REGIONS record lists only the regions it declares first, and is left
 * out when none is new), INFO once. The END is the migration's: part
 * NULL, no payload, totals summed over the parts (rounds: the migration's),
 * offset and index the parts' bytes and records, checksum the migration
 * digest (FORMAT.md section 8). The reader checks the rules across parts
 * that cost nothing to check (the same rounds, regions and INFO alike,
 * each overlay once) and refuses, naming the part, the record and the
 * byte (ms_reader_error_part()); a lenient reader (on_problem) hears of
 * problems with the part named. Pages and devices sent by two parts in one
 * round are migstream-validate's to find. ms_reader_part_count() and
 * ms_reader_part_info() say what each part held, its END totals and
 * digest included; ms_reader_expect_eof() checks every part's end. One
 * input alone is read as the stream it is, part or not.
 *
 * The inputs are read once, in order (positional reads where the format
 * needs them, as QEMU's mapped-ram does), never held whole: memory stays
 * bounded by the reader's and the format module's limits.
 *
 * The reader follows reader.h, threads included (one thread at a time per
 * reader). Its inputs should block: an input that says it would block
 * while ms_open() reads its first bytes to recognize it, or while another
 * VMM's format module reads it (modules do not resume), makes the reader
 * fail. A libmigstream stream arriving on a non-blocking descriptor is
 * read with ms_reader_new_fd() (reader.h, "Non-blocking input").
 */
#ifndef MIGSTREAM_OPEN_H
#define MIGSTREAM_OPEN_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reader.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ms_qemu_import_options; /* qemu.h, when the QEMU module is built */
struct ms_libvirt_options;     /* libvirt.h, when the libvirt module is built */
struct ms_xen_import_options;  /* xen.h, when the Xen module is built */

/** One input of a stream. */
typedef struct ms_input {
    /** Sequential reads (ms_read_fn); may be NULL when @p pread is set. */
    ms_read_fn read;
    void *read_ctx;
    /** Positional reads (a regular file), or NULL. Formats that need them
     *  (QEMU's mapped-ram) fail without them, saying so. */
    ms_pread_fn pread;
    void *pread_ctx;
    /** [borrow] what messages call the input ("vm.qemu", "standard
     *  input"), or NULL ("input N"). Copied. */
    const char *name;
} ms_input;

/** Options of ms_open(). Fill with ms_open_options_init() first. */
typedef struct ms_open_options {
    size_t struct_size; /**< set by init (common.h, "Growing structs") */
    /** [borrow] the reader's options (limits, on_problem), or NULL for
     *  the defaults. Copied. */
    const ms_reader_options *reader;
    /** [borrow] the format to read ("migstream", "qemu" ...: the names
     *  ms_formats() lists), or NULL to recognize it by its bytes. */
    const char *format;
    /** [borrow] the QEMU module's limits (its import options; their writer
     *  options are not used), or NULL for the defaults. Ignored when the
     *  module is not built. */
    const struct ms_qemu_import_options *qemu;
    /** [borrow] the libvirt module's limits (libvirt.h), or NULL for the
     *  defaults; copied. Its qemu member, when set, replaces @p qemu for
     *  the QEMU stream inside a save image. Ignored when the module is not
     *  built. */
    const struct ms_libvirt_options *libvirt;
    /** [borrow] the Xen module's limits (its import options, xen.h; their
     *  writer options are not used), or NULL for the defaults. Ignored
     *  when the module is not built. */
    const struct ms_xen_import_options *xen;
} ms_open_options;

/** Fills @p opts with the defaults. */
MS_API void ms_open_options_init(ms_open_options *opts);

/**
 * Opens the stream whose inputs are @p inputs: its main input and, for a
 * format that has them, its extra inputs (QEMU's multifd channels), in any
 * order; or every part of a libmigstream migration in parts, in any
 * order. Reads up to 64 bytes of each input to recognize it (and, of
 * parts, up to their PART records); the reader goes on from there.
 * @param inputs [borrow] @p n inputs; the callbacks and their contexts must
 *        stay valid until the reader is freed
 * @return **new** reader, or NULL when memory ran out. Among several
 *         inputs, one that is no stream this build reads (MS_EMAGIC);
 *         several main inputs that are not the parts of one migration,
 *         extra inputs without their main input (a multifd channel
 *         alone), an extra input of another format or none of the main
 *         one's (MS_EINVAL); more than MS_MAX_PARTS parts (MS_ELIMIT); an
 *         unknown @p format name (MS_EINVAL); a failing read (MS_EIO); or
 *         any failure reading the parts' preambles and PART records give
 *         a reader in the failed state (common.h, "Handles") whose message
 *         names the input. A lone input that no format recognizes gives a
 *         reader of this library's format, which fails on its first call
 *         (MS_EMAGIC, or MS_ETRUNCATED for an empty input).
 */
MS_API ms_reader *ms_open(const ms_open_options *opts, const ms_input *inputs, size_t n);

/**
 * The same for files: "-" is standard input (read sequentially); regular
 * files are also read by position. The reader owns the descriptors and
 * closes them when freed.
 */
MS_API ms_reader *ms_open_files(const ms_open_options *opts, const char *const *paths, size_t n);

/** The names of the formats this build reads, in the order they bid,
 *  NULL-terminated: "migstream", then the modules' ("qemu", "libvirt",
 *  "xen"). Static. */
MS_API const char *const *ms_formats(void);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_OPEN_H */
