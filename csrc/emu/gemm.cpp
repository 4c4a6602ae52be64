// The CUDA SGEMM under the SIMT emulator (forgeml._emu).
#include "cuda/gemm.cu"
