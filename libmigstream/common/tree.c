/*
 * The AVL tree of tree.h. Recursive: the depth is bounded by the tree's
 * height, at most 1.44 log2(n + 2), never by the input.
 */
#include "common/tree.h"

int msi_tree_cmp_u64(const void *key, const msi_tree_node *n)
{
    uint64_t k = *(const uint64_t *)key;
    return (k > n->key) - (k < n->key);
}

static int height(const msi_tree_node *t)
{
    return t ? t->h : 0;
}

static void fix_height(msi_tree_node *t)
{
    int a = height(t->l), b = height(t->r);
    t->h = (a > b ? a : b) + 1;
}

static msi_tree_node *rotate_right(msi_tree_node *t)
{
    msi_tree_node *l = t->l;
    t->l = l->r;
    l->r = t;
    fix_height(t);
    fix_height(l);
    return l;
}

static msi_tree_node *rotate_left(msi_tree_node *t)
{
    msi_tree_node *r = t->r;
    t->r = r->l;
    r->l = t;
    fix_height(t);
    fix_height(r);
    return r;
}

static msi_tree_node *rebalance(msi_tree_node *t)
{
    fix_height(t);
    int bal = height(t->l) - height(t->r);
    if (bal > 1) {
        if (height(t->l->l) < height(t->l->r))
            t->l = rotate_left(t->l);
        return rotate_right(t);
    }
    if (bal < -1) {
        if (height(t->r->r) < height(t->r->l))
            t->r = rotate_right(t->r);
        return rotate_left(t);
    }
    return t;
}

msi_tree_node *msi_tree_insert(msi_tree_node *t, msi_tree_node *n, const void *key,
                               msi_tree_cmp cmp)
{
    if (!t) {
        n->l = n->r = NULL;
        n->h = 1;
        return n;
    }
    if (cmp(key, t) < 0)
        t->l = msi_tree_insert(t->l, n, key, cmp);
    else
        t->r = msi_tree_insert(t->r, n, key, cmp);
    return rebalance(t);
}

static msi_tree_node *remove_min(msi_tree_node *t, msi_tree_node **min)
{
    if (!t->l) {
        *min = t;
        return t->r;
    }
    t->l = remove_min(t->l, min);
    return rebalance(t);
}

msi_tree_node *msi_tree_remove(msi_tree_node *t, const void *key, msi_tree_cmp cmp)
{
    int c = cmp(key, t);
    if (c < 0) {
        t->l = msi_tree_remove(t->l, key, cmp);
    } else if (c > 0) {
        t->r = msi_tree_remove(t->r, key, cmp);
    } else {
        msi_tree_node *l = t->l, *r = t->r, *min;
        if (!r)
            return l;
        r = remove_min(r, &min);
        min->l = l;
        min->r = r;
        return rebalance(min);
    }
    return rebalance(t);
}

msi_tree_node *msi_tree_find(const msi_tree_node *t, const void *key, msi_tree_cmp cmp)
{
    while (t) {
        int c = cmp(key, t);
        if (c == 0)
            return (msi_tree_node *)t;
        t = c < 0 ? t->l : t->r;
    }
    return NULL;
}

msi_tree_node *msi_tree_ceil(const msi_tree_node *t, const void *key, msi_tree_cmp cmp)
{
    const msi_tree_node *best = NULL;
    while (t) {
        if (cmp(key, t) <= 0) {
            best = t;
            t = t->l;
        } else {
            t = t->r;
        }
    }
    return (msi_tree_node *)best;
}

msi_tree_node *msi_tree_floor(const msi_tree_node *t, const void *key, msi_tree_cmp cmp)
{
    const msi_tree_node *best = NULL;
    while (t) {
        if (cmp(key, t) >= 0) {
            best = t;
            t = t->r;
        } else {
            t = t->l;
        }
    }
    return (msi_tree_node *)best;
}

size_t msi_tree_list(msi_tree_node *t, msi_tree_node **out, size_t n)
{
    if (!t)
        return n;
    n = msi_tree_list(t->l, out, n);
    out[n++] = t;
    return msi_tree_list(t->r, out, n);
}

void msi_tree_each_post(msi_tree_node *t, void (*fn)(msi_tree_node *n, void *ctx), void *ctx)
{
    if (!t)
        return;
    msi_tree_each_post(t->l, fn, ctx);
    msi_tree_each_post(t->r, fn, ctx);
    fn(t, ctx);
}
