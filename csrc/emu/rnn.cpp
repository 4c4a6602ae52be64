// The CUDA recurrent kernels under the SIMT emulator (forgeml._emu).
#include "cuda/rnn.cu"
