// Elementwise kernels of the fused Dense step, baseline ISA: the portable and reference entries.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/dense_step/kernels.h"

namespace {
#include "cpu/dense_step/elementwise.inc"
}  // namespace

namespace forgeml::dense::detail {

void kernels_reference(Kernels& k) { k = table("reference"); }
void kernels_portable(Kernels& k) { k = table("portable"); }

}  // namespace forgeml::dense::detail
