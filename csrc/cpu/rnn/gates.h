// Per-row gate math, written as plain loops that the compiler vectorises for the ISA of the file
// that includes it (gates_portable.cpp, gates_avx2.cpp, gates_avx512.cpp); the anonymous namespace
// keeps each file's copy apart. Reference math uses libm; fast math uses exp_fast below.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace forgeml::rnn {
namespace {

// exp(x) = 2^n * e^r with n = round(x / ln 2), |r| <= ln2/2: degree-7 Taylor (rel. error < 5e-9)
// plus float rounding. Branch-free so loops over it vectorise. Inputs clamped to [-87, 88].
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float t = x * 1.44269504f + shifter;
  float n = t - shifter;
  int32_t ti;
  std::memcpy(&ti, &t, 4);
  int32_t bits = (ti - 0x4B400000 + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, 4);
  float r = x - n * 0.693145752f;  // ln2 split in two for an exact reduction
  r = r - n * 1.42860677e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * scale;
}

struct FastMath {
  static float sigmoid(float x) { return 1.0f / (1.0f + exp_fast(-x)); }
  static float tanh(float x) {  // (1 - e^{-2|x|}) / (1 + e^{-2|x|}) with the sign of x
    float e = exp_fast(-2.0f * std::fabs(x));
    return std::copysign((1.0f - e) / (1.0f + e), x);
  }
};

struct LibmMath {
  static float sigmoid(float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x)))); }
  static float tanh(float x) { return std::tanh(x); }
};

template <class M>
struct Rows {
  static void act_fwd(Act act, int64_t w, float* x) {
    switch (act) {
      case Act::tanh: for (int64_t j = 0; j < w; ++j) x[j] = M::tanh(x[j]); break;
      case Act::sigmoid: for (int64_t j = 0; j < w; ++j) x[j] = M::sigmoid(x[j]); break;
      case Act::relu: for (int64_t j = 0; j < w; ++j) x[j] = std::max(x[j], 0.0f); break;
      case Act::linear: break;
    }
  }

  // dz = (dhn + dy) * act'(.) written from the output h.
  static void act_bwd(Act act, int64_t w, const float* __restrict h, const float* __restrict dy,
                      const float* __restrict dhn, float* __restrict dz) {
    for (int64_t j = 0; j < w; ++j) dz[j] = dhn[j];
    if (dy)
      for (int64_t j = 0; j < w; ++j) dz[j] += dy[j];
    switch (act) {
      case Act::tanh: for (int64_t j = 0; j < w; ++j) dz[j] *= 1.0f - h[j] * h[j]; break;
      case Act::sigmoid: for (int64_t j = 0; j < w; ++j) dz[j] *= h[j] * (1.0f - h[j]); break;
      case Act::relu: for (int64_t j = 0; j < w; ++j) dz[j] = h[j] > 0.0f ? dz[j] : 0.0f; break;
      case Act::linear: break;
    }
  }

  // z = [z_i z_f z_c z_o] (4w) pre-activations without the bias b (4w) in, activated gates
  // [i f g o] out.
  static void lstm_fwd(int64_t w, float* __restrict z, const float* __restrict b, const float* __restrict cprev,
                       float* __restrict c, float* __restrict h) {
    float* __restrict zi = z;
    float* __restrict zf = z + w;
    float* __restrict zg = z + 2 * w;
    float* __restrict zo = z + 3 * w;
    const float *bi = b, *bf = b + w, *bg = b + 2 * w, *bo = b + 3 * w;
    for (int64_t j = 0; j < w; ++j) {
      float i = M::sigmoid(zi[j] + bi[j]), f = M::sigmoid(zf[j] + bf[j]), g = M::tanh(zg[j] + bg[j]),
            o = M::sigmoid(zo[j] + bo[j]);
      float ct = f * cprev[j] + i * g;
      zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
      c[j] = ct;
      h[j] = o * M::tanh(ct);
    }
  }

  // dhn: dL/dh_t from step t+1 (dy added here); dcn: dL/dc_t in, dL/dc_{t-1} out.
  static void lstm_bwd(int64_t w, const float* __restrict gates, const float* __restrict c,
                       const float* __restrict cprev, const float* __restrict dy, const float* __restrict dhn,
                       float* __restrict dcn, float* __restrict dz) {
    const float *gi = gates, *gf = gates + w, *gg = gates + 2 * w, *go = gates + 3 * w;
    float *di = dz, *df = dz + w, *dg = dz + 2 * w, *dout = dz + 3 * w;
    for (int64_t j = 0; j < w; ++j) {
      float dh = dhn[j] + (dy ? dy[j] : 0.0f);
      float i = gi[j], f = gf[j], g = gg[j], o = go[j];
      float tc = M::tanh(c[j]);
      float dc = dcn[j] + dh * o * (1.0f - tc * tc);
      dout[j] = dh * tc * o * (1.0f - o);
      di[j] = dc * g * i * (1.0f - i);
      df[j] = dc * cprev[j] * f * (1.0f - f);
      dg[j] = dc * i * (1.0f - g * g);
      dcn[j] = dc * f;
    }
  }

  // a = x·W + b0 (3w) in, gates [z r h~] out; b = h_{t-1}·R + b1 (3w).
  static void gru_fwd(int64_t w, float* __restrict a, const float* __restrict b, const float* __restrict hprev,
                      float* __restrict bh, float* __restrict h) {
    float *az = a, *ar = a + w, *ah = a + 2 * w;
    const float *bz = b, *br = b + w, *bhh = b + 2 * w;
    for (int64_t j = 0; j < w; ++j) {
      float z = M::sigmoid(az[j] + bz[j]), r = M::sigmoid(ar[j] + br[j]);
      float ht = M::tanh(ah[j] + r * bhh[j]);
      az[j] = z, ar[j] = r, ah[j] = ht;
      bh[j] = bhh[j];
      h[j] = z * hprev[j] + (1.0f - z) * ht;
    }
  }

  // dhn: dL/dh_t in (dy added here), dL/dh_{t-1} through the z-path out (R's part is added by GEMM).
  // da: grads of the input-side pre-activations; db: of the recurrent side (differs in the h block).
  static void gru_bwd(int64_t w, const float* __restrict gates, const float* __restrict bh,
                      const float* __restrict hprev, const float* __restrict dy, float* __restrict dhn,
                      float* __restrict da, float* __restrict db) {
    const float *gz = gates, *gr = gates + w, *gh = gates + 2 * w;
    for (int64_t j = 0; j < w; ++j) {
      float dh = dhn[j] + (dy ? dy[j] : 0.0f);
      float z = gz[j], r = gr[j], ht = gh[j];
      float dzp = dh * (hprev[j] - ht) * z * (1.0f - z);
      float dah = dh * (1.0f - z) * (1.0f - ht * ht);
      float drp = dah * bh[j] * r * (1.0f - r);
      da[j] = dzp, da[w + j] = drp, da[2 * w + j] = dah;
      db[j] = dzp, db[w + j] = drp, db[2 * w + j] = dah * r;
      dhn[j] = dh * z;
    }
  }

  static GateKernels table(const char* name) {
    return {&act_fwd, &act_bwd, &lstm_fwd, &lstm_bwd, &gru_fwd, &gru_bwd, name};
  }
};

}  // namespace
}  // namespace forgeml::rnn
