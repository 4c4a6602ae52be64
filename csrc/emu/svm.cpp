// The CUDA kernel SVC under the SIMT emulator.
#include "cuda/svm.cu"
