"""Minimal cost-complexity pruning (Breiman et al., CART ch. 3) on a fitted tree's arrays.

R(t) = weighted_n(t) / weighted_n(root) * impurity(t). The weakest link is the internal node
with the smallest effective alpha (R(t) - R(branch t)) / (leaves(branch t) - 1), the first such
node by id on ties; it is collapsed into a leaf and the next weakest link is searched, until the
root is a leaf (the path) or the weakest link's alpha exceeds ccp_alpha (pruning)."""

from __future__ import annotations

import numpy as np

from ._tree import TREE_FIELDS as FIELDS  # the per-node arrays a pruned tree keeps


def _weakest_links(cl, cr, impurity, wn, ccp_alpha=None):
    """Prunes weakest links in order. Returns (alphas, subtree impurities, in_tree, is_leaf)."""
    n = len(cl)
    r_node = wn * impurity / wn[0]
    internal = cl >= 0
    parent = np.full(n, -1, dtype=np.intp)
    parent[cl[internal]] = np.flatnonzero(internal)
    parent[cr[internal]] = np.flatnonzero(internal)
    n_leaves = np.zeros(n, dtype=np.int64)
    r_branch = np.zeros(n)
    for i in range(n - 1, -1, -1):  # children always have larger ids than their parent
        if not internal[i]:
            n_leaves[i], r_branch[i] = 1, r_node[i]
        if parent[i] >= 0:
            n_leaves[parent[i]] += n_leaves[i]
            r_branch[parent[i]] += r_branch[i]
    candidate = internal.copy()
    in_tree = np.ones(n, dtype=bool)
    alphas, impurities = [0.0], [r_branch[0]]
    while candidate[0]:
        idx = np.flatnonzero(candidate)
        eff = (r_node[idx] - r_branch[idx]) / (n_leaves[idx] - 1)
        j = int(np.argmin(eff))
        alpha, b = float(eff[j]), int(idx[j])
        if ccp_alpha is not None and ccp_alpha < alpha:
            break
        stack = [int(cl[b]), int(cr[b])]
        while stack:  # the branch below b leaves the tree
            c = stack.pop()
            in_tree[c] = candidate[c] = False
            if cl[c] >= 0:
                stack += [int(cl[c]), int(cr[c])]
        candidate[b] = False
        n_pruned, r_diff = n_leaves[b] - 1, r_node[b] - r_branch[b]
        n_leaves[b], r_branch[b] = 1, r_node[b]
        a = parent[b]
        while a >= 0:
            n_leaves[a] -= n_pruned
            r_branch[a] += r_diff
            a = parent[a]
        alphas.append(alpha)
        impurities.append(r_branch[0])
    return np.array(alphas), np.array(impurities), in_tree, in_tree & ~candidate


def pruning_path(fields: dict):
    """(ccp_alphas, impurities) of the nested subtrees, from the full tree to the root alone."""
    alphas, imps, _, _ = _weakest_links(
        fields["children_left"], fields["children_right"], fields["impurity"], fields["weighted_n_node_samples"]
    )
    return alphas, imps


def prune(fields: dict, ccp_alpha: float) -> tuple[dict, int]:
    """The tree pruned at ccp_alpha, renumbered in preorder (left first); returns (fields, depth)."""
    cl, cr = fields["children_left"], fields["children_right"]
    _, _, in_tree, leaf = _weakest_links(cl, cr, fields["impurity"], fields["weighted_n_node_samples"], ccp_alpha)
    order, depth_of, stack = [], [], [(0, 0)]
    while stack:
        node, depth = stack.pop()
        order.append(node)
        depth_of.append(depth)
        if not leaf[node]:
            stack += [(int(cr[node]), depth + 1), (int(cl[node]), depth + 1)]
    order = np.asarray(order, dtype=np.intp)
    new_id = np.full(len(cl), -1, dtype=np.intp)
    new_id[order] = np.arange(len(order))
    out = {k: np.asarray(fields[k])[order].copy() for k in FIELDS}
    is_leaf = leaf[order]
    out["children_left"] = np.where(is_leaf, -1, new_id[np.maximum(cl[order], 0)])
    out["children_right"] = np.where(is_leaf, -1, new_id[np.maximum(cr[order], 0)])
    out["feature"] = np.where(is_leaf, -2, out["feature"])
    out["threshold"] = np.where(is_leaf, -2.0, out["threshold"])
    out["missing_go_to_left"] = np.where(is_leaf, 0, out["missing_go_to_left"]).astype(np.uint8)
    return out, int(max(depth_of))
