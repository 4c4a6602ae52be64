// The tree kernels under the SIMT emulator.
#include "cuda/tree.cu"
