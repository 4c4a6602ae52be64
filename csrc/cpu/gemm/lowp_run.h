// Internal to csrc/cpu/gemm: the int8 / bf16 driver's prepared problem and its block loop
// (lowp_driver.cpp), shared with the int8 convolution (lowp_conv.cpp), which feeds the same
// micro-kernels block by block from its own gathered operand, and with the bf16 GEMM on a B
// packed once (lowp_bf16_packed.cpp).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cpu/gemm/kernels.h"
#include "cpu/gemm/lowp.h"
#include "forgeml/gemm_lowp.h"

namespace forgeml::gemm {

// The packed panels and +128 corrections of a PackedInt8 (defined in lowp_driver.cpp).
struct PackedInt8Access {
  static const uint32_t* panels(const PackedInt8& B);
  static const int32_t* corr(const PackedInt8& B);
};

namespace detail {

// 64-byte aligned 32-bit words, at least 64 bytes.
struct Words {
  std::unique_ptr<uint32_t, decltype(&std::free)> p{nullptr, &std::free};
  explicit Words(size_t n);
  uint32_t* get() const { return p.get(); }
};

// bf16 without a converted copy of A: fn fills rows [r0, r1) x groups [g0, g1) of op(A) as pairs at
// dst (row r0 + i at dst + i * stride); lowp_block calls it once per MR-row strip, for all groups.
struct StripFn {
  void (*fn)(const void* ctx, int64_t r0, int64_t r1, int64_t g0, int64_t g1, uint32_t* dst, int64_t stride) = nullptr;
  const void* ctx = nullptr;
};

// The prepared operands and the output.
struct Lowp {
  const LowpKernels* kern;
  const Kernel* f32;  // its bias + activation
  int64_t M, N, Kg, npad;
  const uint32_t* a;  // M x Kg words
  const uint32_t* b;  // depth block pc, panel p at b + pc * npad + p * NR * kc
  const float* row_scale;
  const float* col_scale;
  const int32_t* corr;
  float* C;
  int64_t ldc;
  const Epilogue* ep;
  bool accumulate = false;  // C += the product (bf16 only), then the epilogue
  int64_t lda = 0;          // words between A rows when not Kg (padded_rows)
  // When set, a is unused: each MR-row strip of A is converted into a per-thread buffer (reused
  // across calls) just before its tiles, so A is never written out whole and read back
  // (bf16_strips).
  StripFn strip{};
  int64_t a_stride() const { return lda ? lda : Kg; }
};

// Whether a bf16 product converts A strip by strip (StripFn): when all of packed B stays in L2
// (then a strip's tiles run over all of B's depth blocks and panels right after its conversion,
// the rows of A are read once, in order, and the converted strip stays in L1 / L2) and the rows are
// split over the threads (lowp_run splits panels instead when there are fewer MR-row units than
// panels, and each panel chunk would convert all of A again).
constexpr int64_t kStripBBytes = int64_t{512} << 10;
bool bf16_strips(const LowpKernels& k, int64_t M, int64_t Kg, int64_t npad, int threads);

// Words between the rows of a converted A: Kg, plus one cache line when the rows would lie a
// multiple of 4 KiB apart (then the 12 rows of a tile's A strip share one L1 set group and the B
// panel streaming past evicts them: 2048^3 bf16 ran at 190 GFLOP/s instead of 207).
inline int64_t padded_rows(int64_t Kg) { return Kg % 1024 == 0 ? Kg + 16 : Kg; }

// Rows [m0, m1) x panels [p0, p1) of C on the calling thread, the epilogue included.
void lowp_block(const Lowp& L, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// Threads worth waking for an M x N x K product.
int lowp_threads(int64_t M, int64_t N, int64_t K, int max_threads);

// The argument checks of a packed B against the active ISA.
void check_packed(const char* fn, const PackedInt8& B, const float* b_scale);

// f(begin, end) behind a plain function pointer: lowp_run's row preparation (fills rows [r0, r1)
// of a Lowp's A operand: a conversion or quantization of the caller's A) and B packing (panels
// [p0, p1)).
struct RangeFn {
  void (*fn)(const void* ctx, int64_t begin, int64_t end) = nullptr;
  const void* ctx = nullptr;
};
template <class F>
RangeFn range_fn(const F& f) {
  return {[](const void* c, int64_t b, int64_t e) { (*static_cast<const F*>(c))(b, e); }, &f};
}
template <class F>
StripFn strip_fn(const F& f) {
  return {[](const void* c, int64_t r0, int64_t r1, int64_t g0, int64_t g1, uint32_t* d, int64_t s) {
            (*static_cast<const F*>(c))(r0, r1, g0, g1, d, s);
          },
          &f};
}

// All of C over max_threads threads (from lowp_threads), Ctrl-C checked between row chunks.
// With prep, the A rows are filled inside the run: when the rows are split over the threads,
// each thread fills its own rows just before their tiles (in blocks that stay in its L2 while B
// is small enough to be read again per block), so A is not written out and read back in a
// separate pass. With pack, B's panels are packed inside the same parallel call, before any tile.
void lowp_run(const Lowp& L, int max_threads, RangeFn prep = {}, RangeFn pack = {});

// The argument checks every lowp GEMM shares.
void check_common(const char* fn, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool ta,
                  bool tb, const void* A, const void* B, const float* C);

// The epilogue on the whole of C (the reference and K == 0 paths).
void epilogue_all(const Epilogue& ep, float* C, int64_t ldc, int64_t M, int64_t N);

// Rows [r0, r1) of op(A) (M, K) into rows of ceil(K / 2) bf16 pairs at ap; op(B) (K, N) into the kernels'
// zero-padded panels at bp (ceil(K / 2) x npad words).
void pack_a_bf16_rows(const LowpKernels& k, bool ta, int64_t K, const float* A, int64_t lda, uint32_t* ap,
                      int64_t ap_stride, int64_t r0, int64_t r1);
// Rows [r0, r1) x groups [g0, g1) of the same into dst (row r0 + i at dst + i * dst_stride).
void pack_a_bf16_block(const LowpKernels& k, bool ta, int64_t K, const float* A, int64_t lda, uint32_t* dst,
                       int64_t dst_stride, int64_t r0, int64_t r1, int64_t g0, int64_t g1);
void pack_b_bf16(const LowpKernels& k, bool tb, int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* bp,
                 int max_threads);
void pack_b_bf16_panels(const LowpKernels& k, bool tb, int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* bp,
                        int64_t p0, int64_t p1);

}  // namespace detail
}  // namespace forgeml::gemm
