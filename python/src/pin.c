/*
 * Page data without copying, and without dangling views.
 *
 * A PAGES record's data is a view into the reader's buffers, valid until
 * the next call on the reader (reader.h). Python hands it out as a
 * memoryview; a program may keep that view, or a slice of it, or a numpy
 * array over it, past the next record or past closing the reader. So the
 * reader allocates through this heap: each block carries a header, a view
 * pins the block that holds its bytes, and while a block is pinned the
 * library's free() only marks it and its realloc() moves the library to a
 * fresh block. A view kept too long therefore reads bytes that may have
 * changed (a later record reused the buffer), never freed memory. The
 * reader also releases the memoryview it handed out at the next record
 * (reader.c), so that plain misuse raises instead of reading stale bytes.
 *
 * The library calls the allocator without the GIL; pins are taken and
 * dropped with the GIL held, possibly on another thread: one mutex guards
 * the block lists.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *prev, *next;
    size_t size;
    size_t pins;
    bool zombie; /* the library freed it while it was pinned */
} block;

/* The header, padded to keep the caller's bytes aligned like malloc's. */
#define HDR                                                                                        \
    ((sizeof(block) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t))

struct mspy_heap {
    pthread_mutex_t lock;
    block *live;    /* blocks the library owns */
    block *zombies; /* blocks only pins keep */
    bool released;  /* the reader is gone: free the heap with its last zombie */
};

static void *payload(block *b)
{
    return (uint8_t *)b + HDR;
}

static block *header(void *p)
{
    return (block *)(void *)((uint8_t *)p - HDR);
}

static void link_block(block **list, block *b)
{
    b->prev = NULL;
    b->next = *list;
    if (*list)
        (*list)->prev = b;
    *list = b;
}

static void unlink_block(block **list, block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        *list = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
}

mspy_heap *mspy_heap_new(void)
{
    mspy_heap *h = calloc(1, sizeof *h);
    if (h && pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

static void heap_destroy(mspy_heap *h)
{
    /* Blocks the library never freed (it frees all it has when the reader
     * is freed, so none should be left) go with the heap. */
    while (h->live) {
        block *b = h->live;
        unlink_block(&h->live, b);
        free(b);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void mspy_heap_release(mspy_heap *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->released = true;
    bool last = h->zombies == NULL;
    pthread_mutex_unlock(&h->lock);
    if (last)
        heap_destroy(h);
}

static void *heap_alloc(void *opaque, size_t size)
{
    mspy_heap *h = opaque;
    if (size > SIZE_MAX - HDR)
        return NULL;
    block *b = malloc(HDR + size);
    if (!b)
        return NULL;
    b->size = size;
    b->pins = 0;
    b->zombie = false;
    pthread_mutex_lock(&h->lock);
    link_block(&h->live, b);
    pthread_mutex_unlock(&h->lock);
    return payload(b);
}

static void heap_free(void *opaque, void *p)
{
    mspy_heap *h = opaque;
    if (!p)
        return;
    block *b = header(p);
    pthread_mutex_lock(&h->lock);
    unlink_block(&h->live, b);
    if (b->pins) {
        b->zombie = true;
        link_block(&h->zombies, b);
        b = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    free(b);
}

static void *heap_realloc(void *opaque, void *p, size_t size)
{
    mspy_heap *h = opaque;
    if (!p)
        return heap_alloc(opaque, size);
    if (size > SIZE_MAX - HDR)
        return NULL;
    block *b = header(p);
    pthread_mutex_lock(&h->lock);
    if (b->pins == 0) {
        unlink_block(&h->live, b);
        block *n = realloc(b, HDR + size);
        if (!n) {
            link_block(&h->live, b); /* realloc failed: b is unchanged */
            pthread_mutex_unlock(&h->lock);
            return NULL;
        }
        n->size = size;
        link_block(&h->live, n);
        pthread_mutex_unlock(&h->lock);
        return payload(n);
    }
    pthread_mutex_unlock(&h->lock);
    /* Pinned: the library gets a copy; the old block stays for its views. */
    void *q = heap_alloc(opaque, size);
    if (!q)
        return NULL;
    memcpy(q, p, b->size < size ? b->size : size);
    heap_free(opaque, p);
    return q;
}

void mspy_heap_allocator(mspy_heap *h, ms_allocator *a)
{
    a->alloc = heap_alloc;
    a->realloc = heap_realloc;
    a->free = heap_free;
    a->opaque = h;
}

/* The live block holding [p, p + len), pinned, or NULL. */
static block *pin(mspy_heap *h, const uint8_t *p, size_t len)
{
    block *found = NULL;
    pthread_mutex_lock(&h->lock);
    for (block *b = h->live; b; b = b->next) {
        const uint8_t *start = payload(b);
        if (p >= start && p <= start + b->size && len <= (size_t)(start + b->size - p)) {
            b->pins++;
            found = b;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

static void unpin(mspy_heap *h, block *b)
{
    bool destroy = false;
    pthread_mutex_lock(&h->lock);
    if (--b->pins == 0 && b->zombie) {
        unlink_block(&h->zombies, b);
        free(b);
        destroy = h->released && h->zombies == NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (destroy)
        heap_destroy(h);
}

/* ---------------------------------------------------------- PageData */

typedef struct {
    PyObject_HEAD mspy_heap *heap;
    block *blk;
    const uint8_t *ptr;
    Py_ssize_t len;
    PyObject *owner;
} PageData;

static int pagedata_getbuffer(PyObject *o, Py_buffer *view, int flags)
{
    PageData *self = (PageData *)o;
    return PyBuffer_FillInfo(view, o, (void *)(uintptr_t)self->ptr, self->len, 1, flags);
}

static PyBufferProcs pagedata_as_buffer = {
    .bf_getbuffer = pagedata_getbuffer,
};

static void pagedata_dealloc(PyObject *o)
{
    PageData *self = (PageData *)o;
    if (self->blk)
        unpin(self->heap, self->blk);
    Py_XDECREF(self->owner);
    Py_TYPE(o)->tp_free(o);
}

PyTypeObject mspy_PageData_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "migstream._migstream.PageData",
    .tp_basicsize = sizeof(PageData),
    .tp_dealloc = pagedata_dealloc,
    .tp_as_buffer = &pagedata_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The bytes of a record's page data, exported without copying.",
};

PyObject *mspy_view(mspy_heap *h, PyObject *owner, const uint8_t *ptr, size_t len)
{
    if (len > PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    block *b = (h && ptr && len) ? pin(h, ptr, len) : NULL;
    if (!b) {
        /* Not a block of ours (or nothing at all): a copy is always safe. */
        PyObject *copy = PyBytes_FromStringAndSize((const char *)ptr, ptr ? (Py_ssize_t)len : 0);
        if (!copy)
            return NULL;
        PyObject *mv = PyMemoryView_FromObject(copy);
        Py_DECREF(copy);
        return mv;
    }
    PageData *pd = PyObject_New(PageData, &mspy_PageData_Type);
    if (!pd) {
        unpin(h, b);
        return NULL;
    }
    pd->heap = h;
    pd->blk = b;
    pd->ptr = ptr;
    pd->len = (Py_ssize_t)len;
    Py_INCREF(owner);
    pd->owner = owner;
    PyObject *mv = PyMemoryView_FromObject((PyObject *)pd);
    Py_DECREF(pd);
    return mv;
}
