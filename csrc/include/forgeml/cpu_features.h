// What this CPU can run, detected once with cpuid (x86-64) and chosen by the kernels at run time,
// so one wheel runs on any x86-64 and aarch64 builds only the portable path.
#pragma once

namespace forgeml {

// reference: the plain loops kept as the oracle; portable: the blocked kernels in plain C++.
enum class Isa { reference = 0, portable = 1, avx2 = 2, avx512 = 3 };

const char* isa_name(Isa isa);
Isa detected_isa();  // the best level this CPU and OS support
// The level the kernels use: detected_isa(), lowered by FORGEML_ISA=reference|portable|avx2|avx512
// (read once at start-up; tests force every path this way) or by set_active_isa().
Isa active_isa();
void set_active_isa(Isa isa);  // throws if the CPU lacks it

}  // namespace forgeml
