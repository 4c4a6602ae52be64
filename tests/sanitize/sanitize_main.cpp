// Standalone AddressSanitizer + UndefinedBehaviorSanitizer run of the CPU kernels (built by
// .ci/stage_sanitizers.sh from the kernel sources, no Python: a sanitized extension module
// cannot be loaded into an unsanitized interpreter reliably). Random shapes including 0 and 1,
// every ISA path, NaN inputs, checked against the reference loops; the structure validators on
// random corruptions, with every accepted input then walked by the kernels; set_num_threads
// racing convolutions. Exit status 0 and no sanitizer report means clean.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpu/conv/conv.h"
#include "cpu/tree/compact.h"
#include "cpu/tree/compact_rows.h"
#include "cpu/tree/split.h"
#include "cpu/tree/tree.h"
#include "forgeml/cpu_features.h"
#include "forgeml/gemm.h"
#include "forgeml/gemm_lowp.h"
#include "forgeml/parallel.h"
#include "forgeml/validate.h"

namespace fg = forgeml::gemm;
namespace fc = forgeml::conv;
using forgeml::Isa;

static int g_failures = 0;
#define EXPECT(cond, ...)                                  \
  do {                                                     \
    if (!(cond)) {                                         \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                   \
      std::fprintf(stderr, "\n");                          \
      ++g_failures;                                        \
    }                                                      \
  } while (0)

static std::mt19937_64 rng(20261202);
static int64_t pick(std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); }
static std::vector<float> randv(int64_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

static bool close(float a, float b, float tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= tol * (1.f + std::fabs(b));
}

static void test_gemm(Isa isa) {
  for (int rep = 0; rep < 60; ++rep) {
    const int64_t M = pick({0, 1, 3, 17, 64, 97}), N = pick({0, 1, 5, 33, 70}), K = pick({0, 1, 7, 40, 129});
    const bool ta = rng() & 1, tb = rng() & 1;
    const auto act = static_cast<fg::Activation>(rng() % 5);
    std::vector<float> A = randv(M * K), B = randv(K * N), bias = randv(N);
    if (M * K > 0 && rng() % 3 == 0) A[rng() % (M * K)] = NAN;
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    std::vector<float> C(M * N, 7.f), R(M * N, 7.f);
    fg::Epilogue ep{N > 0 ? bias.data() : nullptr, act};
    forgeml::set_active_isa(isa);
    fg::sgemm(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), N, ep);
    fg::sgemm_reference(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, R.data(), N, ep);
    for (int64_t i = 0; i < M * N; ++i)
      EXPECT(close(C[i], R[i], 1e-3f), "sgemm %s M=%ld N=%ld K=%ld act=%d at %ld: %g vs %g",
             forgeml::isa_name(isa), M, N, K, int(act), i, C[i], R[i]);
  }
}

// The bf16 GEMM on a packed B (the recurrent kernels' per-step product): strided A, both B
// layouts, accumulate on and off, against gemm_bf16 plus C's old values.
static void test_bf16_packed(Isa isa) {
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t M = pick({0, 1, 3, 13, 40}), N = pick({0, 1, 5, 33, 70}), K = pick({0, 1, 7, 40, 129});
    const int64_t lda = K + pick({0, 3}), ldc = N + pick({0, 2});
    const bool tb = rng() & 1, accumulate = rng() & 1;
    std::vector<float> A = randv(M * lda), B = randv(K * N), C0 = randv(M * ldc), bias = randv(N);
    std::vector<float> C = C0, R(M * ldc, 0.f);
    fg::Epilogue ep{N > 0 ? bias.data() : nullptr, fg::Activation::tanh};
    forgeml::set_active_isa(isa);
    const fg::PackedBf16 P(tb, K, N, B.data(), tb ? std::max<int64_t>(1, K) : std::max<int64_t>(1, N));
    fg::gemm_bf16_packed(M, A.data(), std::max<int64_t>(1, lda), P, accumulate, C.data(), std::max<int64_t>(1, ldc),
                         ep);
    if (M > 0 && N > 0 && K > 0) fg::gemm_bf16(false, tb, M, N, K, A.data(), lda, B.data(), tb ? K : N, R.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float want = std::tanh((accumulate ? C0[i * ldc + j] : 0.f) + R[i * ldc + j] + bias[j]);
        EXPECT(close(C[i * ldc + j], want, 1e-3f), "gemm_bf16_packed %s M=%ld N=%ld K=%ld at (%ld, %ld): %g vs %g",
               forgeml::isa_name(isa), M, N, K, i, j, C[i * ldc + j], want);
      }
  }
}

static void test_conv(Isa isa) {
  for (int rep = 0; rep < 25; ++rep) {
    fc::Geom g;
    g.N = pick({0, 1, 2}), g.H = pick({1, 4, 7}), g.W = pick({1, 5, 9}), g.C = pick({0, 1, 3, 16, 17});
    g.KH = pick({1, 2, 3}), g.KW = pick({1, 3}), g.O = pick({0, 1, 5, 16, 33});
    g.sh = pick({1, 2}), g.sw = pick({1, 3}), g.dh = pick({1, 2}), g.dw = 1;
    g.pt = pick({0, 1}), g.pb = pick({0, 2}), g.pl = pick({0, 1}), g.pr = 1;
    try {
      g.finish();
    } catch (const std::invalid_argument&) {
      continue;  // window larger than the padded input
    }
    const auto act = static_cast<fg::Activation>(rng() % 4);
    std::vector<float> x = randv(g.N * g.H * g.W * g.C), w = randv(g.K() * g.O), b = randv(g.O);
    const int64_t ny = g.N * g.OH * g.OW * g.O;
    std::vector<float> y(ny), yr(ny), dy = randv(ny);
    std::vector<float> dx(x.size()), dw(w.size()), db(g.O), rx(x.size()), rw(w.size()), rb(g.O);
    forgeml::set_active_isa(Isa::reference);  // the reference table's loops are the oracle
    fc::forward(g, x.data(), w.data(), b.data(), act, yr.data());
    fc::backward(g, x.data(), w.data(), dy.data(), rx.data(), rw.data(), rb.data());
    forgeml::set_active_isa(isa);
    fc::forward(g, x.data(), w.data(), b.data(), act, y.data());
    for (int64_t i = 0; i < ny; ++i) EXPECT(close(y[i], yr[i], 1e-3f), "conv fwd %s at %ld", forgeml::isa_name(isa), i);
    fc::backward(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    for (size_t i = 0; i < dx.size(); ++i) EXPECT(close(dx[i], rx[i], 2e-3f), "conv dx %s at %zu", forgeml::isa_name(isa), i);
    for (size_t i = 0; i < dw.size(); ++i) EXPECT(close(dw[i], rw[i], 2e-3f), "conv dw %s at %zu", forgeml::isa_name(isa), i);
    for (int64_t i = 0; i < g.O; ++i) EXPECT(close(db[i], rb[i], 2e-3f), "conv db %s at %ld", forgeml::isa_name(isa), i);
    fc::Geom p = g;
    p.O = 0, p.dh = p.dw = 1;
    try {
      p.finish();
    } catch (const std::invalid_argument&) {
      continue;
    }
    std::vector<float> py(p.N * p.OH * p.OW * p.C), pdy = randv(py.size()), pdx(x.size());
    for (auto kind : {fc::Pool::max, fc::Pool::avg}) {
      fc::pool_forward(p, kind, x.data(), py.data());
      fc::pool_backward(p, kind, x.data(), pdy.data(), pdx.data());
    }
  }
}

// A random valid forest (children after parents), then random corruptions: whatever the
// validator accepts, the kernels must walk without reading outside the arrays.
static void test_forest() {
  for (int rep = 0; rep < 400; ++rep) {
    const int d = static_cast<int>(pick({1, 2, 5}));
    const int64_t n_nodes = pick({1, 3, 7, 15});
    std::vector<int32_t> nodes(n_nodes * 4, -1);
    std::vector<int64_t> roots = {0};
    for (int64_t i = 0; 2 * i + 2 < n_nodes; ++i) {
      float thr = randv(1)[0];
      nodes[i * 4] = static_cast<int32_t>(rng() % d) | static_cast<int32_t>((rng() & 1) << 30);
      std::memcpy(&nodes[i * 4 + 1], &thr, 4);
      nodes[i * 4 + 2] = static_cast<int32_t>(2 * i + 1), nodes[i * 4 + 3] = static_cast<int32_t>(2 * i + 2);
    }
    const int corruptions = static_cast<int>(rng() % 3);
    for (int c = 0; c < corruptions; ++c) {
      int64_t at = rng() % nodes.size();
      nodes[at] = static_cast<int32_t>(pick({-1, 0, 1, 5, 1 << 30, -7, 100, n_nodes}));
    }
    if (rng() % 5 == 0) roots[0] = pick({-1, n_nodes, 1});
    std::vector<double> values(n_nodes * 2, 1.0);
    bool ok = true;
    try {
      forgeml::check_forest_nodes(nodes.data(), n_nodes, roots.data(), 1, d);
    } catch (const std::invalid_argument&) {
      ok = false;
    }
    if (corruptions == 0 && roots[0] == 0) EXPECT(ok, "a valid forest was rejected");
    if (!ok) continue;
    const int64_t n = pick({0, 1, 300});
    std::vector<float> X = randv(n * d);
    if (n) X[0] = NAN;
    std::vector<double> out(n * 2);
    std::vector<int64_t> leaf(n);
    forgeml::tree::forest_predict(X.data(), n, d, nodes.data(), values.data(), 2, roots.data(), 1, out.data(), 2);
    forgeml::tree::forest_apply(X.data(), n, d, nodes.data(), roots.data(), 1, leaf.data(), 2);
    for (int64_t r = 0; r < n; ++r) EXPECT(out[r * 2] == 1.0, "forest_predict: row %ld", r);
  }
}

// The checked row walk over compact arrays as a file stores them, after random corruption of the
// nodes, node ids and roots: it throws std::invalid_argument or returns, never reads outside them.
// Uncorrupted, it equals compact_predict bit for bit.
static void test_compact_rows() {
  namespace ft = forgeml::tree;
  for (int rep = 0; rep < 2000; ++rep) {
    const int64_t d = pick({1, 3}), n_trees = pick({1, 2, 17}), per_tree = pick({1, 3, 7, 31});
    std::vector<int32_t> flat(n_trees * per_tree * 4, -1);
    std::vector<int64_t> roots(n_trees);
    for (int64_t t = 0; t < n_trees; ++t) {  // complete binary trees, node i's children 2i+1, 2i+2
      const int64_t base = t * per_tree;
      roots[t] = base;
      for (int64_t i = 0; 2 * i + 2 < per_tree; ++i) {
        const float thr = randv(1)[0];
        int32_t* nd = &flat[(base + i) * 4];
        nd[0] = static_cast<int32_t>(rng() % d) | static_cast<int32_t>((rng() & 1) << 30);
        std::memcpy(nd + 1, &thr, 4);
        nd[2] = static_cast<int32_t>(base + 2 * i + 1), nd[3] = static_cast<int32_t>(base + 2 * i + 2);
      }
    }
    const int64_t N = n_trees * per_tree;
    ft::CompactForest c = ft::compact_forest(flat.data(), N, roots.data(), n_trees, d);
    std::vector<double> values(N * 2);
    for (auto& v : values) v = randv(1)[0];
    // a version 3 file's arrays (top blocks; each leaf's row of values in its word) or version 2's
    const int levels = static_cast<int>(pick({0, 3, 6, 9}));
    std::vector<int32_t> top;
    std::vector<ft::CompactNode> walked = c.nodes;  // (compact_predict reads c's normalised leaves)
    if (levels) {
      const ft::CompactArrays valid{c.nodes.data(), N, c.source.data(), c.roots.data(), n_trees,
                                    values.data(),  N, 2,               d};
      top = ft::compact_top_blocks(valid, levels);
      for (int64_t i = 0; i < N; ++i)
        if (walked[i].right == i % per_tree) walked[i].feature = c.source[i];
    }
    const int corruptions = static_cast<int>(rng() % 3);
    for (int k = 0; k < corruptions; ++k) {
      const int32_t bad = static_cast<int32_t>(pick({-1, 0, 1, 2, 5, 1 << 30, -7, 100, N, INT32_MIN}));
      switch (rng() % 4) {
        case 0: reinterpret_cast<int32_t*>(walked.data())[rng() % (walked.size() * 3)] = bad; break;
        case 1: c.source[rng() % c.source.size()] = bad; break;
        case 2: c.roots[rng() % c.roots.size()] = bad; break;
        default:
          if (levels) top[rng() % top.size()] = bad;
          else reinterpret_cast<int32_t*>(walked.data())[rng() % (walked.size() * 3)] = bad;
          break;
      }
    }
    ft::CompactArrays f{walked.data(), N,      c.source.data(), c.roots.data(), n_trees,
                        values.data(),  N,      2,               d};
    f.top = levels ? top.data() : nullptr, f.top_levels = levels, f.leaf_rows = levels > 0;
    const int64_t n = pick({0, 1, 5, 67});  // 67: the AVX-512 coded walk (>= 64 rows, layout built)
    std::vector<float> X = randv(n * d);
    if (n) X[0] = NAN;
    std::vector<double> out(n * 2), want(n * 2);
    try {
      ft::check_compact_arrays(f);
      ft::compact_predict_rows(f, X.data(), n, out.data());
    } catch (const std::invalid_argument&) {
      EXPECT(corruptions > 0, "compact_predict_rows rejected a valid forest");
      continue;
    }
    if (corruptions) continue;
    if (rng() & 1) c.coded();  // built: 67 rows take the coded walk (AVX-512)
    ft::compact_predict(c, X.data(), n, values.data(), 2, nullptr, 0, want.data(), 2);
    for (int64_t i = 0; i < n * 2; ++i) EXPECT(out[i] == want[i], "compact_predict_rows: entry %ld", i);
  }
}

// The random splitter's exact remainder (split.h's 128-bit fraction) against %: every divisor a bin
// span can take and some past the table, at edge and random draws.
static void test_draw_remainder() {
  const uint64_t edges[] = {0, 1, 2, 254, 255, 256, UINT64_MAX, UINT64_MAX - 1, uint64_t{1} << 63};
  for (uint64_t d = 1; d < 300; ++d) {
    for (int i = 0; i < 20000 + 9; ++i) {
      const uint64_t x = i < 9 ? edges[i] : rng();
      EXPECT(forgeml::tree::draw_remainder(x, d) == x % d, "draw_remainder(%llu, %llu)",
             static_cast<unsigned long long>(x), static_cast<unsigned long long>(d));
    }
  }
}

static void test_csr() {
  for (int rep = 0; rep < 2000; ++rep) {
    const int64_t rows = pick({0, 1, 4}), cols = pick({0, 1, 3});
    std::vector<int64_t> indptr(rows + 1, 0);
    for (int64_t r = 0; r < rows; ++r) indptr[r + 1] = indptr[r] + static_cast<int64_t>(rng() % (cols + 1));
    std::vector<int32_t> indices(indptr[rows]);
    for (auto& i : indices) i = static_cast<int32_t>(cols ? rng() % cols : 0);
    const int corruptions = static_cast<int>(rng() % 3);
    for (int c = 0; c < corruptions; ++c) {
      if (rng() & 1) indptr[rng() % indptr.size()] = pick({-1, 0, 2, 99});
      else if (!indices.empty()) indices[rng() % indices.size()] = static_cast<int32_t>(pick({-1, cols, 1 << 30}));
    }
    try {
      forgeml::check_csr(indptr.data(), static_cast<int64_t>(indptr.size()), indices.data(),
                         static_cast<int64_t>(indices.size()), static_cast<int64_t>(indices.size()), rows, cols);
    } catch (const std::invalid_argument&) {
      EXPECT(corruptions > 0, "a valid CSR structure was rejected");
      continue;
    }
    double sum = 0;  // walk it as a kernel would
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) sum += indices[p];
    EXPECT(sum >= 0, "csr walk");
  }
}

// set_num_threads from another thread while convolutions size per-thread buffers.
static void test_thread_race() {
  fc::Geom g;
  g.N = 3, g.H = 12, g.W = 13, g.C = 16, g.KH = 3, g.KW = 3, g.O = 24, g.pt = g.pb = g.pl = g.pr = 1;
  g.finish();
  std::vector<float> x = randv(g.N * g.H * g.W * g.C), w = randv(g.K() * g.O);
  std::vector<float> y(g.N * g.OH * g.OW * g.O), dy = randv(y.size()), dx(x.size()), dw(w.size()), db(g.O);
  std::atomic<bool> stop{false};
  std::thread toggler([&] {
    for (int i = 0; !stop.load(); ++i) forgeml::set_num_threads(1 + i % 8);
  });
  for (int i = 0; i < 30; ++i) {
    fc::forward(g, x.data(), w.data(), nullptr, fg::Activation::relu, y.data());
    fc::backward(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  }
  stop = true;
  toggler.join();
  forgeml::set_num_threads(2);
}

int main() {
  const Isa best = forgeml::detected_isa();
  for (Isa isa : {Isa::reference, Isa::portable, Isa::avx2, Isa::avx512}) {
    if (isa > best) continue;
    test_gemm(isa);
    test_bf16_packed(isa);
    test_conv(isa);
    std::printf("gemm + bf16 packed + conv + pool on %s: done\n", forgeml::isa_name(isa));
  }
  forgeml::set_active_isa(best);
  test_forest();
  test_compact_rows();
  test_csr();
  test_draw_remainder();
  std::printf("validators + forest walks + split draws: done\n");
  for (Isa isa : {Isa::portable, best}) {
    forgeml::set_active_isa(isa);
    test_thread_race();
  }
  std::printf("set_num_threads racing conv: done\n");
  std::printf("%d failures\n", g_failures);
  return g_failures ? 1 : 0;
}
