// The CUDA convolution and pooling kernels compiled for the SIMT emulator (forgeml._emu).
#include "cuda/conv.cu"
