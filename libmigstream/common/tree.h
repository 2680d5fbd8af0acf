/*
 * A balanced search tree (AVL), intrusive: a struct kept in one starts with
 * an msi_tree_node, and the caller owns its memory. What the library looks
 * up by a value a stream chooses (chunk numbers, section ids, names) goes in
 * one, so that no choice of keys makes a lookup cost more than O(log n)
 * (docs/SECURITY.md, "Cost"): hash tables with a fixed hash function can be
 * made to collide, sorted arrays to move their tail on every insertion.
 *
 * The depth is at most 1.44 log2(n + 2), which bounds the recursion of
 * these functions whatever the keys. Keys are unique within a tree.
 */
#ifndef MSI_TREE_H
#define MSI_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct msi_tree_node {
    uint64_t key; /* for msi_tree_cmp_u64; free for callers with their own order */
    struct msi_tree_node *l, *r;
    int h; /* height: 1 for a leaf */
} msi_tree_node;

/* Compares the key @key points to with node @n's: negative, 0 or positive. */
typedef int (*msi_tree_cmp)(const void *key, const msi_tree_node *n);

/* Orders nodes by their key field; @key points to a uint64_t. */
int msi_tree_cmp_u64(const void *key, const msi_tree_node *n);

/* Each returns the new root. Insert: @n, whose key @key (as @cmp sees it)
 * is not in the tree yet. Remove: the node whose key is @key, which must be
 * in the tree. */
msi_tree_node *msi_tree_insert(msi_tree_node *root, msi_tree_node *n, const void *key,
                               msi_tree_cmp cmp);
msi_tree_node *msi_tree_remove(msi_tree_node *root, const void *key, msi_tree_cmp cmp);

/* The node with key @key; the one with the smallest key not below @key; the
 * one with the largest key not above it. NULL when there is none. */
msi_tree_node *msi_tree_find(const msi_tree_node *root, const void *key, msi_tree_cmp cmp);
msi_tree_node *msi_tree_ceil(const msi_tree_node *root, const void *key, msi_tree_cmp cmp);
msi_tree_node *msi_tree_floor(const msi_tree_node *root, const void *key, msi_tree_cmp cmp);

/* The nodes in key order into @out from index @n on; returns the index
 * after the last one written. */
size_t msi_tree_list(msi_tree_node *root, msi_tree_node **out, size_t n);

/* Calls @fn on every node, children before their parent, so that @fn may
 * free it. */
void msi_tree_each_post(msi_tree_node *root, void (*fn)(msi_tree_node *n, void *ctx), void *ctx);

#endif /* MSI_TREE_H */
