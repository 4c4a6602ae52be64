// The CUDA bf16 / int8 GEMMs under the SIMT emulator (forgeml._emu).
#include "cuda/gemm_lowp.cu"
