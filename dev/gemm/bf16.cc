// Experiment (not shipped): does a bf16 GEMM pay on an AVX2/FMA CPU without AVX512-BF16? An emulated-bf16 twin of
// native/gemm.cc's packed 6x16 kernel, timed against dpo::sgemm in the same process and checked against fp64.
//   - Operands are rounded to bf16 (round to nearest even; NaN kept quiet) while they are packed, and stored as
//     16-bit words: half the bytes of fp32 panels.
//   - The panels use the layout AVX512-BF16's vdpbf16ps reads: k in pairs, each 32-bit lane holding (k even, k odd).
//     A sliver: (kc/2, MR, 2) words; B sliver: (kc/2, NR, 2) words. An odd kc is padded with a zero k.
//   - The kernel widens in registers: a pair's odd half is `lane & 0xffff0000`, its even half `lane << 16`, both exact
//     fp32 values; then fp32 FMAs into the same 12 fp32 accumulators as the fp32 kernel. fp32 accumulation throughout.
// The driver is gemm.cc's (same KC, MC, thread split and lazily packed B chunks), cut down to what the experiment needs
// (no accumulate, no bias, no tiny-shape or few-rows paths), so the only differences are the packing and the kernel.
// Build: g++ -O3 -march=native -std=c++17 -pthread dev/gemm/bf16.cc -o /tmp/gemm_bf16
// Run:   DPO_NUM_THREADS=2 /tmp/gemm_bf16 [--rounds R]   (accuracy, the kernels alone, then fp32 vs bf16 at 1024³ and
//        shape (a)'s GEMMs)
// Result on the AMD EPYC (Zen 3, AVX2/FMA, no AVX-512) dev machine, 2 threads: bf16 is NOT kept. The fp32 kernel
// already runs at the FMA peak when its panels are hot (~100 GFLOP/s a core), so emulation can only add work: the
// widened-A variant's kernel matches fp32 (its 2 extra integer ops per k issue beside the FMAs) but packing with
// rounding costs more, 0.83x over shape (a)'s step GEMMs; the full pair layout needs more than the 16 ymm registers
// (GCC spills accumulators) and runs at ~0.6x. Halving the panel bytes buys nothing, as these GEMMs are not memory
// bound. Accuracy: median |C - C64| / |C64| 2.3e-3 against fp32's 2.7e-7 (K = 1024, N(0, 1) inputs).
// A real gain needs AVX512-BF16: vdpbf16ps does 32 multiply-adds per zmm instruction (two k per fp32 lane, exactly
// this file's pair layout), twice vfmadd231ps zmm where both issue at the same rate.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "../../native/gemm.cc"
#include "../../native/threadpool.cc"

#if !(defined(__AVX2__) && defined(__FMA__))
#error "dev/gemm/bf16.cc measures the AVX2/FMA emulation; build with -march=native on an AVX2 machine"
#endif

namespace bf16x {

using dpo::KC;
using dpo::MC;
using dpo::MR;
using dpo::NR;

// fp32 -> bf16, round to nearest even; a NaN stays a (quiet) NaN instead of rounding to inf.
inline uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// 8 fp32 -> 8 bf16 (RNE, NaN quiet), as the low halves of 8 32-bit lanes.
inline __m256i to_bf16_8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(nan));
}

// Packs op(A)[0:mc, 0:kc] into MR-row slivers, zero-padded past mc and (odd kc) past kc. Two layouts:
//   bf16 pairs (kWideA false): pa[s][p/2][i][p%2] = bf16(op(A)[s*MR + i][p]), the vdpbf16ps layout;
//   widened (kWideA true):     pa[s][p][i] = fp32(bf16(op(A)[s*MR + i][p])), fp32 slivers holding bf16 values, so
//                              the kernel broadcasts A as the fp32 kernel does and only B is widened in registers.
// Scalar: packing A is a small share of the work and the fp32 pack_a is scalar too.
template <bool kWideA>
void pack_a(bool trans, int64_t mc, int64_t kc, const float* a, int64_t lda, void* out) {
  const int64_t kp = (kc + 1) / 2 * 2;
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t rows = std::min(MR, mc - i0);
    for (int64_t p = 0; p < kp; ++p)
      for (int64_t i = 0; i < MR; ++i) {
        const float v = (i < rows && p < kc) ? (trans ? a[p * lda + i0 + i] : a[(i0 + i) * lda + p]) : 0.0f;
        if constexpr (kWideA) {
          static_cast<float*>(out)[i0 * kp + p * MR + i] = from_bf16(to_bf16(v));
        } else {
          static_cast<uint16_t*>(out)[i0 * kp + (p / 2) * MR * 2 + i * 2 + (p % 2)] = to_bf16(v);
        }
      }
  }
}

// Packs NR-column slivers [s_begin, s_end) of op(B)[0:kc, 0:nc]: pb[s][p/2][j][p%2] = bf16(op(B)[p][s*NR + j]).
// Non-transposed full slivers take a vector path (two k rows of 8 columns -> one interleaved 256-bit store).
void pack_b(bool trans, int64_t kc, int64_t nc, const float* b, int64_t ldb, uint16_t* pb, int64_t s_begin,
            int64_t s_end) {
  const int64_t kp = (kc + 1) / 2 * 2;
  for (int64_t s = s_begin; s < s_end; ++s) {
    const int64_t j0 = s * NR, cols = std::min(NR, nc - j0);
    uint16_t* dst = pb + s * NR * kp;
    if (!trans && cols == NR) {
      for (int64_t p = 0; p < kp; p += 2) {
        for (int64_t h = 0; h < NR; h += 8) {
          const __m256 even = _mm256_loadu_ps(b + p * ldb + j0 + h);
          const __m256 odd = p + 1 < kc ? _mm256_loadu_ps(b + (p + 1) * ldb + j0 + h) : _mm256_setzero_ps();
          // lane = even | odd << 16: the pair (k even, k odd) of one column
          const __m256i pair = _mm256_or_si256(to_bf16_8(even), _mm256_slli_epi32(to_bf16_8(odd), 16));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (p / 2) * NR * 2 + h * 2), pair);
        }
      }
      continue;
    }
    for (int64_t p = 0; p < kp; ++p)
      for (int64_t j = 0; j < NR; ++j) {
        const float v = (j < cols && p < kc) ? (trans ? b[(j0 + j) * ldb + p] : b[p * ldb + j0 + j]) : 0.0f;
        dst[(p / 2) * NR * 2 + j * 2 + (p % 2)] = to_bf16(v);
      }
  }
}

// C[0:MR, 0:NR] (=|+=) pa · pb over kp/2 k pairs. Per pair, the even k then the odd k: B's 16 columns are two 256-bit
// loads of (even, odd) lanes, widened to fp32 as lane << 16 (even) or lane & 0xffff0000 (odd); each A row is one
// broadcast, split the same way in the bf16-pair layout (one more ALU op per row and k) or already fp32 (kWideA).
// 12 FMAs per k, as the fp32 kernel; 12 accumulators + 2 B vectors + A + the mask = the 16 ymm registers.
template <bool kWideA>
void micro_kernel(int64_t kp, const void* a_sliver, const uint16_t* pb, float* c, int64_t ldc, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const float* pa = static_cast<const float*>(a_sliver);  // per pair: 2·MR floats (kWideA) or MR pair words
  constexpr int64_t kAStep = kWideA ? 2 * MR : MR;          // floats per k pair
  for (int64_t q = 0; q < kp / 2; ++q, pa += kAStep, pb += 2 * NR) {
    _mm_prefetch(reinterpret_cast<const char*>(pa + 8 * kAStep), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(pb + 16 * NR), _MM_HINT_T0);
    // B is loaded again for the odd k (an L1 hit) rather than kept: 12 accumulators + lo, hi, A and the mask already
    // fill the 16 registers, and keeping both raw B vectors made GCC spill 5 accumulators to the stack.
    auto b_lanes = [&](int64_t half) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 16 * half)); };
    // even k: columns 0-7 (lo) and 8-15 (hi)
    __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(b_lanes(0), 16));
    __m256 hi = _mm256_castsi256_ps(_mm256_slli_epi32(b_lanes(1), 16));
    auto a_even = [&](int64_t i) {
      if constexpr (kWideA) return _mm256_broadcast_ss(pa + i);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(_mm256_broadcast_ss(pa + i)), 16));
    };
    auto a_odd = [&](int64_t i) {
      if constexpr (kWideA) return _mm256_broadcast_ss(pa + MR + i);
      return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(_mm256_broadcast_ss(pa + i)), hi_mask));
    };
    __m256 ai = a_even(0);
    c00 = _mm256_fmadd_ps(ai, lo, c00), c01 = _mm256_fmadd_ps(ai, hi, c01);
    ai = a_even(1);
    c10 = _mm256_fmadd_ps(ai, lo, c10), c11 = _mm256_fmadd_ps(ai, hi, c11);
    ai = a_even(2);
    c20 = _mm256_fmadd_ps(ai, lo, c20), c21 = _mm256_fmadd_ps(ai, hi, c21);
    ai = a_even(3);
    c30 = _mm256_fmadd_ps(ai, lo, c30), c31 = _mm256_fmadd_ps(ai, hi, c31);
    ai = a_even(4);
    c40 = _mm256_fmadd_ps(ai, lo, c40), c41 = _mm256_fmadd_ps(ai, hi, c41);
    ai = a_even(5);
    c50 = _mm256_fmadd_ps(ai, lo, c50), c51 = _mm256_fmadd_ps(ai, hi, c51);
    // odd k (the empty asm keeps GCC from reusing the even phase's loads, which would hold 2 more registers)
    asm volatile("" ::: "memory");
    lo = _mm256_castsi256_ps(_mm256_and_si256(b_lanes(0), hi_mask));
    hi = _mm256_castsi256_ps(_mm256_and_si256(b_lanes(1), hi_mask));
    ai = a_odd(0);
    c00 = _mm256_fmadd_ps(ai, lo, c00), c01 = _mm256_fmadd_ps(ai, hi, c01);
    ai = a_odd(1);
    c10 = _mm256_fmadd_ps(ai, lo, c10), c11 = _mm256_fmadd_ps(ai, hi, c11);
    ai = a_odd(2);
    c20 = _mm256_fmadd_ps(ai, lo, c20), c21 = _mm256_fmadd_ps(ai, hi, c21);
    ai = a_odd(3);
    c30 = _mm256_fmadd_ps(ai, lo, c30), c31 = _mm256_fmadd_ps(ai, hi, c31);
    ai = a_odd(4);
    c40 = _mm256_fmadd_ps(ai, lo, c40), c41 = _mm256_fmadd_ps(ai, hi, c41);
    ai = a_odd(5);
    c50 = _mm256_fmadd_ps(ai, lo, c50), c51 = _mm256_fmadd_ps(ai, hi, c51);
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    __m256 l = acc[i][0], h = acc[i][1];
    if (add) l = _mm256_add_ps(l, _mm256_loadu_ps(row)), h = _mm256_add_ps(h, _mm256_loadu_ps(row + 8));
    _mm256_storeu_ps(row, l);
    _mm256_storeu_ps(row + 8, h);
  }
}

template <bool kWideA>
void macro_kernel(int64_t mc, int64_t nc, int64_t kp, const void* a_block, const uint16_t* pb, float* c, int64_t ldc,
                  bool add) {
  // A sliver ir/MR starts ir·kp elements in: floats when widened, 16-bit words in the pair layout.
  auto a_sliver = [&](int64_t ir) -> const void* {
    if constexpr (kWideA) return static_cast<const float*>(a_block) + ir * kp;
    return static_cast<const uint16_t*>(a_block) + ir * kp;
  };
  alignas(64) float tile[MR * NR];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t cols = std::min(NR, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t rows = std::min(MR, mc - ir);
      float* ctile = c + ir * ldc + jr;
      if (rows == MR && cols == NR) {
        micro_kernel<kWideA>(kp, a_sliver(ir), pb + jr * kp, ctile, ldc, add);
        continue;
      }
      micro_kernel<kWideA>(kp, a_sliver(ir), pb + jr * kp, tile, NR, false);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) ctile[i * ldc + j] = add ? ctile[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
    }
  }
}

template <class T>
struct Buffer {
  T* data = nullptr;
  int64_t cap = 0;
  ~Buffer() { std::free(data); }
  T* get(int64_t n) {
    if (n > cap) {
      std::free(data);
      data = static_cast<T*>(std::aligned_alloc(64, (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64));
      cap = n;
    }
    return data;
  }
};
thread_local Buffer<float> tls_a;         // packed A block, either layout
thread_local Buffer<float> tls_shared_a;  // the caller's shared packed A (small M)
thread_local Buffer<uint16_t> tls_b;

// C (M, N) = op(A) · op(B) with bf16 operands and fp32 accumulation; M > 4 and enough work to thread (as gemm.cc's
// packed path). The driver mirrors dpo::sgemm.
template <bool kWideA>
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float* c, int64_t ldc) {
  using dpo::ceil_div;
  const int64_t threads = dpo::num_threads();
  const bool parallel = threads > 1;
  const int64_t k_panels = ceil_div(k, KC), kc_max = ceil_div(ceil_div(k, k_panels), 2) * 2;
  const int64_t row_slivers = ceil_div(m, MR);
  int64_t row_blocks = ceil_div(m, MC);
  if (parallel) row_blocks = std::min(row_slivers, ceil_div(std::max(row_blocks, 4 * threads), threads) * threads);
  int64_t mc_block = ceil_div(row_slivers, row_blocks) * MR;
  // Small M: tall blocks, split columns, A packed once into a shared buffer (gemm.cc's share_a).
  const bool share_a = parallel && mc_block < MC / 2 && ceil_div(m, MC) * MC * k <= dpo::kPackedBFloats;
  if (share_a) mc_block = ceil_div(row_slivers, ceil_div(m, MC)) * MR;
  row_blocks = ceil_div(m, mc_block);
  const int64_t a_block_floats = mc_block * kc_max;  // floats: enough for either A layout
  float* shared_a = share_a ? tls_shared_a.get(row_blocks * k_panels * a_block_floats) : nullptr;
  std::unique_ptr<std::atomic<int>[]> a_state(new std::atomic<int>[share_a ? row_blocks * k_panels : 0]);
  for (int64_t i = 0; share_a && i < row_blocks * k_panels; ++i) a_state[i].store(0, std::memory_order_relaxed);
  const int64_t col_slivers = ceil_div(n, NR);
  int64_t col_blocks = parallel && row_blocks < 2 * threads ? ceil_div(4 * threads, row_blocks) : 1;
  const int64_t chunk_slivers = std::min(dpo::kChunkSlivers, ceil_div(col_slivers, col_blocks));
  const int64_t chunks = ceil_div(col_slivers, chunk_slivers);
  col_blocks = std::min(col_blocks, chunks);
  const int64_t panel_words = col_slivers * NR * kc_max;
  uint16_t* packed_b = tls_b.get(k_panels * panel_words);
  std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[k_panels * chunks]);
  for (int64_t i = 0; i < k_panels * chunks; ++i) state[i].store(0, std::memory_order_relaxed);
  dpo::run_tasks(parallel, row_blocks * col_blocks, [&](int64_t task) {
    const int64_t ic = task / col_blocks * mc_block, mc = std::min(mc_block, m - ic);
    const int64_t cb = task % col_blocks;
    const int64_t ch_begin = dpo::split_point(chunks, cb, col_blocks);
    const int64_t ch_count = dpo::split_point(chunks, cb + 1, col_blocks) - ch_begin;
    float* packed_a = share_a ? nullptr : tls_a.get(a_block_floats);
    for (int64_t kp = 0; kp < k_panels; ++kp) {
      const int64_t pc = kp * kc_max, kc = std::min(kc_max, k - pc), kc2 = (kc + 1) / 2 * 2;
      const float* a_block = trans_a ? a + pc * lda + ic : a + ic * lda + pc;
      if (share_a) {
        const int64_t id = task / col_blocks * k_panels + kp;
        packed_a = shared_a + id * a_block_floats;
        int expected = 0;
        if (a_state[id].load(std::memory_order_acquire) != 2 && a_state[id].compare_exchange_strong(expected, 1)) {
          pack_a<kWideA>(trans_a, mc, kc, a_block, lda, packed_a);
          a_state[id].store(2, std::memory_order_release);
        }
        while (a_state[id].load(std::memory_order_acquire) != 2) std::this_thread::yield();
      } else {
        pack_a<kWideA>(trans_a, mc, kc, a_block, lda, packed_a);
      }
      uint16_t* panel = packed_b + kp * panel_words;
      for (int64_t q = 0; q < ch_count; ++q) {
        const int64_t ch = ch_begin + (q + task) % ch_count;
        const int64_t s_begin = ch * chunk_slivers, s_end = std::min(col_slivers, s_begin + chunk_slivers);
        std::atomic<int>& st = state[kp * chunks + ch];
        int expected = 0;
        if (st.load(std::memory_order_acquire) != 2 && st.compare_exchange_strong(expected, 1)) {
          pack_b(trans_b, kc, n, trans_b ? b + pc : b + pc * ldb, ldb, panel, s_begin, s_end);
          st.store(2, std::memory_order_release);
        }
        while (st.load(std::memory_order_acquire) != 2) std::this_thread::yield();
        const int64_t col_begin = s_begin * NR, col_end = std::min(n, s_end * NR);
        macro_kernel<kWideA>(mc, col_end - col_begin, kc2, packed_a, panel + s_begin * NR * kc2, c + ic * ldc + col_begin, ldc,
                     kp > 0);
      }
    }
  });
}

}  // namespace bf16x

namespace {

struct Shape {
  int64_t m, n, k;
  bool ta, tb;
  int calls;  // per DPO step at shape (a); 1 for the square
};

void fill_normal(std::vector<float>& v, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  for (float& x : v) x = d(rng);
}

// Max, mean and median of |C − C64| / |C64| (elementwise, over entries with |C64| > 1e-3·rms: near-zero sums from
// cancellation make the plain relative error unbounded), and max and mean of |C − C64| / Σ|a·b| (the error relative
// to the magnitude the accumulation works with, bounded by about K·u for any data).
struct Errors {
  double max_rel, mean_rel, median_rel, max_bound, mean_bound;
};

Errors errors_vs_fp64(const Shape& s, const std::vector<float>& a, const std::vector<float>& b,
                      const std::vector<float>& c) {
  const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  std::vector<double> ref(s.m * s.n), mag(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t p = 0; p < s.k; ++p) {
      const double x = s.ta ? a[p * lda + i] : a[i * lda + p];
      for (int64_t j = 0; j < s.n; ++j) {
        const double y = s.tb ? b[j * ldb + p] : b[p * ldb + j];
        ref[i * s.n + j] += x * y;
        mag[i * s.n + j] += std::fabs(x * y);
      }
    }
  double rms = 0.0;
  for (double r : ref) rms += r * r;
  rms = std::sqrt(rms / ref.size());
  Errors e{0, 0, 0, 0, 0};
  std::vector<double> rels;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(c[i] - ref[i]);
    e.max_bound = std::max(e.max_bound, err / mag[i]);
    e.mean_bound += err / mag[i];
    if (std::fabs(ref[i]) > 1e-3 * rms) {
      e.max_rel = std::max(e.max_rel, err / std::fabs(ref[i]));
      e.mean_rel += err / std::fabs(ref[i]);
      rels.push_back(err / std::fabs(ref[i]));
    }
  }
  e.mean_rel /= std::max<size_t>(1, rels.size());
  std::nth_element(rels.begin(), rels.begin() + rels.size() / 2, rels.end());
  e.median_rel = rels.empty() ? 0.0 : rels[rels.size() / 2];
  e.mean_bound /= ref.size();
  return e;
}

using Gemm = void (*)(const Shape&, const float*, const float*, float*);
void run_fp32(const Shape& s, const float* a, const float* b, float* c) {
  dpo::sgemm(s.ta, s.tb, s.m, s.n, s.k, a, s.ta ? s.m : s.k, b, s.tb ? s.k : s.n, c, s.n, false);
}
void run_bf16(const Shape& s, const float* a, const float* b, float* c) {
  bf16x::gemm_bf16<false>(s.ta, s.tb, s.m, s.n, s.k, a, s.ta ? s.m : s.k, b, s.tb ? s.k : s.n, c, s.n);
}
void run_bf16_wide_a(const Shape& s, const float* a, const float* b, float* c) {
  bf16x::gemm_bf16<true>(s.ta, s.tb, s.m, s.n, s.k, a, s.ta ? s.m : s.k, b, s.tb ? s.k : s.n, c, s.n);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  dpo::num_threads();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int rounds = 15;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);

  // Shape (a)'s step GEMMs (dev/gemm/bench.cc --step-a, without the linear layers' bias) and the 1024³ ceiling shape.
  const std::vector<Shape> shapes = {
      {1024, 1024, 1024, false, false, 1}, {1024, 256, 1024, false, false, 8}, {1024, 1024, 256, false, false, 8},
      {1024, 768, 256, false, false, 8},   {1024, 256, 256, false, false, 8},  {256, 1024, 1024, true, false, 4},
      {1024, 256, 1024, false, true, 4},   {1024, 256, 1024, true, false, 4},  {1024, 1024, 256, false, true, 4},
      {1024, 256, 768, false, true, 4},    {256, 768, 1024, true, false, 4},   {256, 256, 1024, true, false, 4},
      {1024, 256, 256, false, true, 4},    {256, 512, 256, false, true, 6},    {256, 256, 512, false, false, 3},
      {512, 256, 256, true, false, 3},
  };

  // Accuracy: N(0, 1) operands (weights and activations are of this kind up to scale, which bf16 does not care
  // about), each variant against an fp64 product of the same fp32 inputs. Plus odd sizes for the edge paths.
  // Both bf16 variants round A and B to bf16 and accumulate in fp32, so they give the same products.
  constexpr int kVariants = 3;
  const char* names[kVariants] = {"fp32", "bf16", "bf16-wideA"};
  const Gemm gemms[kVariants] = {run_fp32, run_bf16, run_bf16_wide_a};
  std::printf("accuracy vs fp64, N(0,1) inputs. rel = |C - C64| / |C64| over entries with |C64| > 1e-3 rms (max, mean,"
              " median); bound = |C - C64| / sum|a*b| (max, mean)\n");
  std::mt19937 rng(7);
  const Shape checks[] = {shapes[0], shapes[1], shapes[5], shapes[6], {257, 129, 513, true, true, 1},
                          {31, 1000, 37, false, true, 1}};
  for (const Shape& s : checks) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    fill_normal(a, rng, 1.0f);
    fill_normal(b, rng, 1.0f);
    for (int v = 0; v < kVariants; ++v) {
      gemms[v](s, a.data(), b.data(), c.data());
      const Errors e = errors_vs_fp64(s, a, b, c);
      std::printf("m=%-5lld n=%-5lld k=%-5lld ta=%d tb=%d %-10s rel %.1e %.1e %.1e  bound %.1e %.1e\n", (long long)s.m,
                  (long long)s.n, (long long)s.k, s.ta, s.tb, names[v], e.max_rel, e.mean_rel, e.median_rel,
                  e.max_bound, e.mean_bound);
    }
  }

  // Kernel alone, one thread, packed slivers hot in L1 (kc = 256): what each inner loop costs with packing and memory
  // out of the picture. fp32: gemm.cc's micro_kernel; bf16 variants: micro_kernel<kWideA> above.
  {
    using bf16x::MR;
    using bf16x::NR;
    constexpr int64_t kc = 256, reps = 20000;
    std::vector<float> a(MR * kc), b(kc * NR), tile(MR * NR);
    fill_normal(a, rng, 1.0f);
    fill_normal(b, rng, 1.0f);
    alignas(64) static float pa32[MR * kc], pb32[kc * NR], pa_wide[MR * kc];
    alignas(64) static uint16_t pa16[MR * kc], pb16[kc * NR];
    dpo::pack_a(false, MR, kc, a.data(), kc, pa32);
    dpo::pack_b(false, kc, NR, b.data(), NR, pb32, 0, 1);
    bf16x::pack_a<false>(false, MR, kc, a.data(), kc, pa16);
    bf16x::pack_a<true>(false, MR, kc, a.data(), kc, pa_wide);
    bf16x::pack_b(false, kc, NR, b.data(), NR, pb16, 0, 1);
    auto time_kernel = [&](auto&& call) -> double {
      double best = 1e30;
      for (int trial = 0; trial < 7; ++trial) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < reps; ++r) call();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return 2.0 * MR * NR * kc * reps / best / 1e9;
    };
    const double f32 = time_kernel([&] { dpo::micro_kernel(kc, pa32, pb32, tile.data(), NR, false, nullptr); });
    const double pair = time_kernel([&] { bf16x::micro_kernel<false>(kc, pa16, pb16, tile.data(), NR, false); });
    const double wide = time_kernel([&] { bf16x::micro_kernel<true>(kc, pa_wide, pb16, tile.data(), NR, false); });
    std::printf("micro-kernel alone (1 thread, L1, best of 7): fp32 %.1f GFLOP/s, bf16 %.1f (%.2fx), bf16-wideA %.1f (%.2fx)\n",
                f32, pair, pair / f32, wide, wide / f32);
  }

  // Speed: the variants alternate shape by shape and round by round in this one process (the first rotates), so load
  // hits them alike.
  struct Buffers {
    std::vector<float> a, b, c;
  };
  std::vector<Buffers> bufs;
  for (const Shape& s : shapes) {
    Buffers x{std::vector<float>(s.m * s.k), std::vector<float>(s.k * s.n), std::vector<float>(s.m * s.n)};
    fill_normal(x.a, rng, 1.0f);
    fill_normal(x.b, rng, 1.0f);
    bufs.push_back(std::move(x));
  }
  // Rounds (every shape, every variant) that ran more than 10% slower than the fastest are dropped: another program
  // held a core then (as in dev/gemm/ab.cc).
  std::vector<std::vector<double>> round_secs;  // [round][variant * shapes + shape]
  std::vector<double> round_total;
  for (int r = -2; r < rounds; ++r) {
    std::vector<double> this_round(kVariants * shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i)
      for (int v = 0; v < kVariants; ++v) {
        const int which = (r + 2 + static_cast<int>(i) + v) % kVariants;
        const int reps = std::max(1, shapes[i].calls);
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < reps; ++c) gemms[which](shapes[i], bufs[i].a.data(), bufs[i].b.data(), bufs[i].c.data());
        this_round[which * shapes.size() + i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
      }
    if (r < 0) continue;
    double t = 0.0;
    for (size_t i = 0; i < this_round.size(); ++i) t += this_round[i] * shapes[i % shapes.size()].calls;
    round_secs.push_back(this_round);
    round_total.push_back(t);
  }
  const double fastest = *std::min_element(round_total.begin(), round_total.end());
  std::vector<std::vector<double>> secs[kVariants];
  for (auto& v : secs) v.resize(shapes.size());
  int kept = 0;
  for (size_t r = 0; r < round_secs.size(); ++r) {
    if (round_total[r] > 1.1 * fastest) continue;
    ++kept;
    for (int v = 0; v < kVariants; ++v)
      for (size_t i = 0; i < shapes.size(); ++i) secs[v][i].push_back(round_secs[r][v * shapes.size() + i]);
  }
  std::printf("threads=%d, %d of %d rounds kept; GFLOP/s median (best); speed relative to fp32 (ratio of medians)\n",
              dpo::num_threads(), kept, rounds);
  double step_ms[kVariants] = {};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    const double flop = 2.0 * s.m * s.n * s.k;
    double med[kVariants], best[kVariants];
    for (int v = 0; v < kVariants; ++v) {
      std::sort(secs[v][i].begin(), secs[v][i].end());
      med[v] = secs[v][i][secs[v][i].size() / 2];
      best[v] = secs[v][i][0];
      if (i > 0) step_ms[v] += med[v] * s.calls * 1e3;
    }
    std::printf("m=%-5lld n=%-5lld k=%-5lld ta=%d tb=%d x%d  fp32 %6.1f (%6.1f)  bf16 %6.1f (%6.1f) %.2f  bf16-wideA %6.1f (%6.1f) %.2f\n",
                (long long)s.m, (long long)s.n, (long long)s.k, s.ta, s.tb, s.calls, flop / med[0] / 1e9,
                flop / best[0] / 1e9, flop / med[1] / 1e9, flop / best[1] / 1e9, med[0] / med[1], flop / med[2] / 1e9,
                flop / best[2] / 1e9, med[0] / med[2]);
  }
  std::printf("shape (a) step GEMMs (ms, sum of calls x median): fp32 %.2f, bf16 %.2f (%.2fx), bf16-wideA %.2f (%.2fx)\n",
              step_ms[0], step_ms[1], step_ms[0] / step_ms[1], step_ms[2], step_ms[0] / step_ms[2]);
  return 0;
}
