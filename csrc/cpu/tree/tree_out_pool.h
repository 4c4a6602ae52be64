// Grown trees' node arrays (TreeOut) kept for the next trees: a forest's trees are copied into its
// fields and dropped, and the next forest's trees would first touch fresh pages again (a page
// fault per 4 KiB written, ~5% of an ExtraTrees fit). A returned tree's pages are madvised free
// (the kernel may take them back under memory pressure; untouched by it, they are written again
// without a fault); its vectors keep their capacity.
#pragma once
#include <cstddef>

#include "cpu/tree/tree.h"

namespace forgeml::tree {

// An empty TreeOut: one returned earlier (vectors cleared, capacity kept) when the pool holds one.
TreeOut take_tree_out();
// t back to the pool, or freed when the pool holds kMaxTreeOutBytes of used arrays already.
void give_tree_out(TreeOut&& t) noexcept;
// Frees every held tree (forgeml.release_cached_memory); returns their used bytes.
size_t tree_out_pool_release();
// The trees the pool holds (tests).
size_t tree_out_pool_trees();

constexpr size_t kMaxTreeOutBytes = size_t{512} << 20;

}  // namespace forgeml::tree
