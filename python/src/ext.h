/*
 * The CPython extension module migstream._migstream: what its files share.
 *
 *   module.c  the module: exceptions (one class per MS_E... status), small
 *             helpers, the functions that need no handle
 *   pin.c     the reader's allocator, which keeps a block alive while
 *             Python holds a view of it (PageData)
 *   input.c   a stream's inputs: paths, descriptors, file objects, buffers
 *   cbor.c    device state: CBOR (FORMAT.md section 10) to Python values
 *             and back
 *   reader.c  migstream._migstream.Reader over ms_open()
 *   writer.c  migstream._migstream.Writer over ms_writer
 *   engines.c replay (callbacks, into a directory) and diff
 *
 * Only the library's public API is used (tests/meta/test_layers.py). The
 * GIL is released around every library call that reads or writes a stream;
 * callbacks the library makes into Python (file objects, write callables,
 * replay handlers) take it back for their duration.
 */
#ifndef MSPY_EXT_H
#define MSPY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/migstream.h>

/* ------------------------------------------------------------- module.c */

/* Raises the exception class of @status (migstream.Error and its
 * subclasses) with @message; @offset and @record become its attributes
 * (record < 0: None, as for the preamble; has_offset false: None). If an
 * exception is already set (a callback's), it becomes the new one's
 * __cause__. Returns NULL. */
PyObject *mspy_raise(int status, const char *message, bool has_offset, uint64_t offset,
                     int64_t record);
/* Same, formatting the message. */
PyObject *mspy_raisef(int status, const char *fmt, ...);
/* Sets .errno and .strerror of the IoError being raised, when @err is an
 * errno value (the cause an I/O callback or descriptor reported). */
void mspy_set_errno(int err);

/* A PyUnicode of NUL-terminated UTF-8 @s, or None for NULL. The library
 * hands out valid UTF-8; "surrogateescape" keeps a bad byte visible rather
 * than failing the record. */
PyObject *mspy_str(const char *s);

/* Converts a Python int to uint64_t / uint32_t, raising OverflowError or
 * TypeError with @what in the message. 0 or -1. */
int mspy_u64(PyObject *o, const char *what, uint64_t *out);
int mspy_u32(PyObject *o, const char *what, uint32_t *out);

/* -------------------------------------------------------------- pin.c */

/* The allocator a reader is given (ms_reader_options.allocator): blocks
 * carry a header, so that a block Python holds a view of (pinned) is not
 * freed or moved by the library: its free is deferred until the last view
 * goes, and a realloc of it moves the library to a fresh block. Called
 * without the GIL, from one reader's thread; pins change with the GIL held
 * from any thread, hence the lock. */
typedef struct mspy_heap mspy_heap;

mspy_heap *mspy_heap_new(void);
/* Frees the heap once the reader that used it is freed and no pin is left;
 * until then it only marks it. */
void mspy_heap_release(mspy_heap *h);
void mspy_heap_allocator(mspy_heap *h, ms_allocator *a);

/* The read-only view type that exports the bytes [ptr, ptr + len) of a
 * block of @h, keeping @owner (the Reader) alive. When the bytes are not
 * in any block of the heap (a library buffer this allocator did not make),
 * they are copied instead. Returns a memoryview, or NULL with an
 * exception. */
PyObject *mspy_view(mspy_heap *h, PyObject *owner, const uint8_t *ptr, size_t len);

extern PyTypeObject mspy_PageData_Type;

/* ------------------------------------------------------------- input.c */

/* The inputs of one stream, for ms_open(). Owns the descriptors it opened,
 * the buffers it holds and the references to file objects. */
typedef struct mspy_inputs mspy_inputs;

/* Builds the inputs from a sequence of Python objects: a str or
 * os.PathLike (a file, opened here), an int (a descriptor, read from its
 * current position, not closed), an object with the buffer protocol (bytes
 * in memory), or a file object (its readinto()/read()). NULL with an
 * exception. */
mspy_inputs *mspy_inputs_new(PyObject *seq);
void mspy_inputs_free(mspy_inputs *in);
const ms_input *mspy_inputs_array(const mspy_inputs *in, size_t *n);
/* After a failed library call: true when a Python callback failed, with
 * that exception set again (to become the cause of the library's). */
bool mspy_inputs_restore_error(mspy_inputs *in);

/* ------------------------------------------------------------- cbor.c */

/* Decodes exactly one CBOR item of the profile (FORMAT.md section 10,
 * floats allowed: device state) into Python values: unsigned and negative
 * integers as int, byte strings as bytes, text as str, arrays as list
 * (tuple when used as a map key), maps as dict, false/true/null as
 * False/True/None, floats as float. Refuses indefinite lengths, tags,
 * other simple values, invalid UTF-8, nesting deeper than @max_depth
 * containers, duplicate map keys and keys Python cannot hash (a map),
 * raising migstream.CborError with the byte offset in .offset. */
PyObject *mspy_cbor_decode(const uint8_t *p, size_t n, unsigned max_depth);

/* Encodes @value deterministically (preferred serialization: shortest
 * integers, lengths and floats that keep the value; map keys sorted by
 * their encoded bytes, RFC 8949 section 4.2.1) into a new bytes object.
 * Types: None, bool, int (-2^64 .. 2^64-1), float, str, bytes and any
 * buffer (a byte string), list and tuple (arrays), dict (maps). */
PyObject *mspy_cbor_encode(PyObject *value, unsigned max_depth);

/* ------------------------------------------------------------ reader.c */

/* A problem the reader stepped over (keep_going), kept until the GIL is
 * back: the callback runs without it. */
typedef struct mspy_problem {
    int status;
    uint64_t offset;
    int64_t record;
    char *message; /* malloc'd */
} mspy_problem;

typedef struct mspy_reader {
    PyObject_HEAD ms_reader *r;
    mspy_heap *heap;
    mspy_inputs *inputs;
    mspy_problem *pending; /* problems since the last call returned */
    size_t npending, cap_pending;
    bool pending_lost;   /* memory ran out keeping one */
    PyObject *problems;  /* list of (status, offset, record, message) */
    PyObject *last_view; /* the current record's data memoryview, or NULL */
    uint64_t records;    /* records handed out */
    bool busy;           /* a call is running on another thread */
    bool ended;          /* END was handed out */
    bool header_read;
} mspy_reader;

extern PyTypeObject mspy_Reader_Type;

/* Raises what a reader call that returned @rc means: WouldBlockError for
 * MS_EAGAIN, else the reader's sticky failure (with a callback's exception
 * as its cause, and errno for MS_EIO). NULL. */
PyObject *mspy_reader_raise(mspy_reader *self, int rc);
/* Moves the problems kept during a call into self->problems. */
void mspy_reader_flush_problems(mspy_reader *self);
/* Marks the reader busy for a library call that reads it; raises and
 * returns -1 when it is busy, closed, or (with @fresh) has read records
 * already. */
int mspy_reader_enter(mspy_reader *self, bool fresh);
void mspy_reader_leave(mspy_reader *self);
/* Drops the previous record's data view (releasing the memoryview, so
 * that using it raises ValueError instead of showing other bytes). */
void mspy_reader_drop_view(mspy_reader *self);

/* Python values of the structs a reader hands out. */
PyObject *mspy_region_tuple(const ms_region *g);
PyObject *mspy_overlay_tuple(const ms_overlay *o);
PyObject *mspy_totals_tuple(const ms_totals *t);
PyObject *mspy_device_tuple(const ms_device *d);
PyObject *mspy_round_tuple(const ms_round *rd);
PyObject *mspy_header_tuple(const ms_header *h);
/* An overlay from the tuple form above; the slot bytes stay owned by
 * @t's items. 0 or -1. */
int mspy_overlay_from_tuple(PyObject *t, ms_overlay *o);

/* One extent as an Extent struct sequence. */
PyObject *mspy_extent_new(const ms_extent *x);
/* The Extents sequence of a PAGES record (a copy of its extents). */
PyObject *mspy_extents_new(const ms_extent *x, size_t n);
extern PyTypeObject mspy_Extents_Type;
extern PyTypeObject *mspy_Extent_Type; /* a struct sequence */

/* ------------------------------------------------------------ writer.c */

extern PyTypeObject mspy_Writer_Type;

/* ----------------------------------------------------------- engines.c */

PyObject *mspy_replay(PyObject *mod, PyObject *args);
PyObject *mspy_replay_dir(PyObject *mod, PyObject *args, PyObject *kw);
PyObject *mspy_diff(PyObject *mod, PyObject *args, PyObject *kw);

#endif /* MSPY_EXT_H */
