// Internal to csrc/cpu/rnn: the per-row gate math of every ISA, one table per ISA.
//
// One row of one thread part (w units), every pointer at that row's slice (layout in rnn.h).
// dhn: dL/dh_t coming from step t+1 on input; on output whatever must be added to the next step's
// recurrent product. The tables are filled by the gates_*.cpp files (each compiled with its ISA's
// flags) and picked by registry.cpp; forward.cpp and backward.cpp only call gate_kernels().
#pragma once
#include <cstdint>

#include "forgeml/cpu_features.h"
#include "rnn.h"

namespace forgeml::rnn {

struct GateKernels {
  void (*act_fwd)(Act act, int64_t w, float* x);
  void (*act_bwd)(Act act, int64_t w, const float* h, const float* dy, const float* dhn, float* dz);
  void (*lstm_fwd)(int64_t w, float* z, const float* bias, const float* cprev, float* c, float* h);
  void (*lstm_bwd)(int64_t w, const float* gates, const float* c, const float* cprev, const float* dy, const float* dhn,
                   float* dcn, float* dz);
  void (*gru_fwd)(int64_t w, float* a, const float* b, const float* hprev, float* bh, float* h);
  void (*gru_bwd)(int64_t w, const float* gates, const float* bh, const float* hprev, const float* dy, float* dhn,
                  float* da, float* db);
  const char* name;
};

// The table for an ISA, each set up once (registry.cpp); gate_kernels() is the one for active_isa().
const GateKernels& gate_kernels_for(Isa isa);
const GateKernels& gate_kernels();

// Per-ISA entries: reference (libm math) and portable in gates_portable.cpp, the others in their
// gates_<isa>.cpp; an ISA this build lacks returns false.
void gate_kernels_reference(GateKernels& k);
void gate_kernels_portable(GateKernels& k);
bool gate_kernels_avx2(GateKernels& k);
bool gate_kernels_avx512(GateKernels& k);

}  // namespace forgeml::rnn
