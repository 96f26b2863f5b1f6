// Single-precision GEMM (see gemm.h): a GotoBLAS/BLIS-style blocked algorithm with packed panels and a
// register-blocked micro-kernel (AVX2+FMA 6x16; a portable 4x8 scalar kernel elsewhere), split over the thread pool.
// Tiny problems take plain loops (sgemm_small). dev/gemm/bench.cc checks both paths against a double-precision triple
// loop over odd, empty and strided shapes, and times them against numpy. Not here: other dtypes, batching.
//
// Legend
//   M, N, K   C (M, N) = op(A) (M, K) · op(B) (K, N); op() is the optional transpose, folded into the packing.
//   MR x NR   micro-tile: the kernel holds an MR x NR block of C in registers (AVX2: 6 x 16 = 12 ymm accumulators)
//             and streams a KC-deep MR-row sliver of packed A against a KC-deep NR-column sliver of packed B.
//   KC        depth of a K panel: one KC x NR sliver of B (16 KiB) stays in L1d (32 KiB) during a sweep of ir.
//   MC        rows of A packed per block: MC x KC floats (144 KiB) stay in L2 (512 KiB), reused over all NC columns.
//   NC        columns per column panel, sized so that all K x NC of it fits a packed-B budget (16 MiB, L3 is 32 MiB).
// Loop order, outer to inner:
//   jc (N, step NC): one round trip through the thread pool; its tasks are (row block x column range) pieces
//     > task: rows [ic, ic + MC) (MC shrinks so each thread gets >= 4 blocks, except for small M, which keeps
//       blocks tall and splits the columns instead)
//       > pc (K, step KC): pack A block [ic, pc] into MR-row slivers (per-thread buffer; small M: packed once into
//         a buffer shared by the tasks, as B is)
//         > B chunk (256 columns): packed once into the shared panel by whichever task needs it first
//           > jr (step NR) > ir (step MR): micro-kernel; edge tiles go through a scratch tile.
// Accumulation: the first K panel stores (or adds, when accumulate) into C, plus the bias row when there is one (the
// linear layer's epilogue, so C is written once rather than prefilled with the bias and read back); later K panels add.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "kernels_common.h"
#include "threadpool.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DPO_GEMM_AVX2 1
#endif

namespace dpo {
namespace {

#if DPO_GEMM_AVX2
constexpr int64_t MR = 6, NR = 16;
#else
constexpr int64_t MR = 4, NR = 8;
#endif
// Zen 3 (L1d 32 KiB, L2 512 KiB per core): KC 192-512 and MC 72-240 all measured within noise of these.
constexpr int64_t KC = 256;  // 6x16 kernel: B sliver 16 KiB + A sliver 6 KiB in L1d
constexpr int64_t MC = 144;  // A block 144 x 256 x 4 B = 144 KiB in L2; multiple of MR
// NC is not fixed: a column panel is as wide as lets all K rows of it be packed within this budget (16 MiB, in L3),
// so a panel needs one round trip through the pool: K = 768 gives NC up to 5456, K = 4096 gives 1024.
constexpr int64_t kPackedBFloats = int64_t{4} << 20;
constexpr int64_t kChunkSlivers = 16;  // B is packed lazily in chunks of 16 slivers (256 columns) x KC
static_assert(MC % MR == 0, "MC must be a multiple of MR");

// Below this many multiply-adds, packing and threading cost more than they save.
constexpr int64_t kSmallWork = 32 * 1024;
// Below this many multiply-adds, one thread does the whole product (a pool round trip costs a few microseconds).
constexpr int64_t kSerialWork = 1 << 20;

// --- reference / tiny-problem path -----------------------------------------------------------------------------

// Plain loops: C (M, N) = op(A) · op(B) (+ C). Obvious, slow, used for tiny shapes.
void sgemm_small(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    float* crow = c + i * ldc;
    if (!accumulate) std::fill(crow, crow + n, 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float aip = trans_a ? a[p * lda + i] : a[i * lda + p];
      if (trans_b) {
        for (int64_t j = 0; j < n; ++j) crow[j] += aip * b[j * ldb + p];
      } else {
        const float* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) crow[j] += aip * brow[j];
      }
    }
  }
}

// --- few rows of A (decoding) --------------------------------------------------------------------------------------

// M <= kGemvRows (one new token per sequence while decoding): packing all of B would cost more than the product, so
// B is streamed once, unpacked, split by columns across the threads. Bᵀ stored (N, K): a dot product per output;
// B stored (K, N): C rows accumulate axpys of B's rows. A's few rows are first copied contiguous.
constexpr int64_t kGemvRows = 4;

void sgemm_few_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, bool parallel) {
  thread_local std::vector<float> rows;  // (M, K) contiguous copy of op(A)
  rows.resize(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) rows[i * k + p] = trans_a ? a[p * lda + i] : a[i * lda + p];
  const float* ar = rows.data();
  auto columns = [&](int64_t j0, int64_t j1) {
    if (trans_b) {
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = 0; i < m; ++i) {
          const float v = row_dot(ar + i * k, b + j * ldb, k);
          c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
      return;
    }
    for (int64_t i = 0; i < m; ++i) {
      float* crow = c + i * ldc;
      if (!accumulate) std::fill(crow + j0, crow + j1, 0.0f);
      for (int64_t p = 0; p < k; ++p) {
        const float aip = ar[i * k + p];
        const float* brow = b + p * ldb;
        for (int64_t j = j0; j < j1; ++j) crow[j] += aip * brow[j];  // vectorised by the compiler
      }
    }
  };
  if (parallel) {
    parallel_for((n + 63) / 64, [&](int64_t c0, int64_t c1) { columns(c0 * 64, std::min(n, c1 * 64)); });
  } else {
    columns(0, n);
  }
}

// --- packing buffers ------------------------------------------------------------------------------------------

// A 64-byte aligned float buffer that only grows. One per thread (thread_local), so concurrent GEMMs on different
// threads never share one; the packed-B panel lives in the calling thread's buffer and is only read by the workers.
class PackBuffer {
 public:
  ~PackBuffer() { std::free(data_); }
  float* get(int64_t floats) {
    if (floats > capacity_) {
      std::free(data_);
      const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
      capacity_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local PackBuffer tls_packed_a;  // (MC/MR slivers, KC, MR): the thread's current A block
thread_local PackBuffer tls_packed_b;  // (K panels, NC/NR slivers, KC, NR): the caller's current B column panel
thread_local PackBuffer tls_shared_a;  // (row blocks, K panels, MC/MR slivers, KC, MR): the caller's A, small M only

// --- packing --------------------------------------------------------------------------------------------------

// Packs op(A)[0:mc, 0:kc] into MR-row slivers: pa[s][p][i] = op(A)[s*MR + i][p], zero-padded past mc.
// `a` points at op(A)[0][0]; op(A)[i][p] is a[i*lda + p], or a[p*lda + i] when trans.
void pack_a(bool trans, int64_t mc, int64_t kc, const float* a, int64_t lda, float* pa) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, pa += MR * kc) {
    const int64_t rows = std::min(MR, mc - i0);
    if (trans) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a + p * lda + i0;
        for (int64_t i = 0; i < MR; ++i) pa[p * MR + i] = i < rows ? src[i] : 0.0f;
      }
    } else if (rows == MR) {
      const float* src = a + i0 * lda;
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < MR; ++i) pa[p * MR + i] = src[i * lda + p];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < MR; ++i) pa[p * MR + i] = i < rows ? a[(i0 + i) * lda + p] : 0.0f;
    }
  }
}

// Packs NR-column slivers [s_begin, s_end) of op(B)[0:kc, 0:nc]: pb[s][p][j] = op(B)[p][s*NR + j], zero-padded
// past nc. `b` points at op(B)[0][0]; op(B)[p][j] is b[p*ldb + j], or b[j*ldb + p] when trans.
void pack_b(bool trans, int64_t kc, int64_t nc, const float* b, int64_t ldb, float* pb, int64_t s_begin,
            int64_t s_end) {
  for (int64_t s = s_begin; s < s_end; ++s) {
    const int64_t j0 = s * NR, cols = std::min(NR, nc - j0);
    float* dst = pb + s * NR * kc;
    if (cols < NR) std::fill(dst, dst + NR * kc, 0.0f);
    if (trans) {
      for (int64_t j = 0; j < cols; ++j) {
        const float* src = b + (j0 + j) * ldb;
        for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
      }
    } else if (cols == NR) {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, b + p * ldb + j0, NR * sizeof(float));
    } else {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, b + p * ldb + j0, cols * sizeof(float));
    }
  }
}

// --- micro-kernel ---------------------------------------------------------------------------------------------

// C[0:MR, 0:NR] (=|+=) pa (kc, MR) · pb (kc, NR) (+ bias[0:NR] on every row), both packed slivers. `add` selects +=
// over =; bias may be null.
#if DPO_GEMM_AVX2
void micro_kernel(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, bool add, const float* bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  // The C tile is touched only after the loop; start fetching its lines now (first and last float of each row).
  for (int64_t i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p, pa += MR, pb += NR) {
    // A streams from L2 and B's first pass from L3: ask for both 16 steps ahead (measured +1-5% over none).
    _mm_prefetch(reinterpret_cast<const char*>(pa + 16 * MR), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(pb + 16 * NR), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
    __m256 ai = _mm256_broadcast_ss(pa + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(pa + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(pa + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(pa + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(pa + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(pa + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256 bias_lo = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 bias_hi = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  for (int64_t i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    __m256 lo = acc[i][0], hi = acc[i][1];
    if (bias) lo = _mm256_add_ps(lo, bias_lo), hi = _mm256_add_ps(hi, bias_hi);
    if (add) lo = _mm256_add_ps(lo, _mm256_loadu_ps(row)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
    _mm256_storeu_ps(row, lo);
    _mm256_storeu_ps(row + 8, hi);
  }
}
#else
void micro_kernel(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, bool add, const float* bias) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, pa += MR, pb += NR)
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += pa[i] * pb[j];
  for (int64_t i = 0; i < MR; ++i)
    for (int64_t j = 0; j < NR; ++j) {
      const float v = bias ? acc[i][j] + bias[j] : acc[i][j];
      c[i * ldc + j] = add ? c[i * ldc + j] + v : v;
    }
}
#endif

// C[0:mc, 0:nc] (=|+=) packed A block (mc rows) · packed B columns (nc columns) (+ bias[0:nc] when not null), one
// micro-tile at a time.
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc,
                  bool add, const float* bias) {
  alignas(64) float edge[MR * NR];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t cols = std::min(NR, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t rows = std::min(MR, mc - ir);
      float* ctile = c + ir * ldc + jr;
      const float* tile_bias = bias ? bias + jr : nullptr;
      if (rows == MR && cols == NR) {
        micro_kernel(kc, pa + ir * kc, pb + jr * kc, ctile, ldc, add, tile_bias);
        continue;
      }
      micro_kernel(kc, pa + ir * kc, pb + jr * kc, edge, NR, false, nullptr);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float v = tile_bias ? edge[i * NR + j] + tile_bias[j] : edge[i * NR + j];
          ctile[i * ldc + j] = add ? ctile[i * ldc + j] + v : v;
        }
    }
  }
}

// Runs fn(task) for task in [0, tasks): on the pool when `parallel`, else inline. The pool hands tasks out one at a
// time, so a thread slowed by other load on the machine simply takes fewer of them.
void run_tasks(bool parallel, int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (!parallel || tasks <= 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  parallel_tasks(static_cast<int>(tasks), [&](int t, int) { fn(t); });
}

int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

// Start of part `part` when `count` units are split into `parts` near-equal contiguous ranges.
int64_t split_point(int64_t count, int64_t part, int64_t parts) { return count * part / parts; }

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate, const float* bias) {
  if (m <= 0 || n <= 0) return;
  const int64_t work = m * n * k;
  if (bias != nullptr && (k <= 0 || work < kSmallWork || m <= kGemvRows)) {
    // The paths without a packed epilogue: C (+)= bias first, then accumulate the product onto it.
    for (int64_t i = 0; i < m; ++i) {
      float* crow = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) crow[j] = accumulate ? crow[j] + bias[j] : bias[j];
    }
    accumulate = true;
    bias = nullptr;
  }
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  if (work < kSmallWork) {
    sgemm_small(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    return;
  }
  const int64_t threads = work < kSerialWork ? 1 : num_threads();
  const bool parallel = threads > 1;
  if (m <= kGemvRows) {
    sgemm_few_rows(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, parallel);
    return;
  }

  // Balanced K panels: k = 257 gives two panels of 129 and 128 rather than 256 and 1.
  const int64_t k_panels = ceil_div(k, KC), kc_max = ceil_div(k, k_panels);
  // Balanced column panels of at most kPackedBFloats / K columns.
  const int64_t n_panels = ceil_div(n, std::max(NR, kPackedBFloats / (k_panels * kc_max) / NR * NR));
  const int64_t nc_max = ceil_div(ceil_div(n, n_panels), NR) * NR;
  // Row blocks: at most MC rows, whole MR slivers, and (threaded) at least 4 per thread, a multiple of the threads.
  const int64_t row_slivers = ceil_div(m, MR);
  int64_t row_blocks = ceil_div(m, MC);
  if (parallel) row_blocks = std::min(row_slivers, ceil_div(std::max(row_blocks, 4 * threads), threads) * threads);
  int64_t mc_block = ceil_div(row_slivers, row_blocks) * MR;
  // Small M (M = 256 would get blocks of 36 rows): so short a block uses each B sliver for few micro-tiles. Keep the
  // blocks up to MC tall and split the columns instead (below); A is then packed once, into a buffer shared by the
  // tasks (as B is), rather than once per column block. Only while all of packed A fits the B budget. Measured +6-11%
  // on the M = 256 GEMMs of a DPO step at shape (a) (dev/gemm/ab.cc).
  const bool share_a = parallel && mc_block < MC / 2 && ceil_div(m, MC) * MC * k <= kPackedBFloats;
  if (share_a) mc_block = ceil_div(row_slivers, ceil_div(m, MC)) * MR;
  row_blocks = ceil_div(m, mc_block);
  // Shared A: block (rb, kp) at (rb * k_panels + kp) * a_block_floats, packed by the first task that needs it, kept
  // for every column panel. State per block: 0 not packed, 1 being packed, 2 packed.
  const int64_t a_block_floats = mc_block * kc_max;
  float* shared_a = share_a ? tls_shared_a.get(row_blocks * k_panels * a_block_floats) : nullptr;
  std::unique_ptr<std::atomic<int>[]> a_state(share_a ? new std::atomic<int>[row_blocks * k_panels] : nullptr);
  for (int64_t i = 0; share_a && i < row_blocks * k_panels; ++i) a_state[i].store(0, std::memory_order_relaxed);

  for (int64_t jc = 0; jc < n; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n - jc);
    const int64_t col_slivers = ceil_div(nc, NR);
    // Too few row blocks to keep every thread busy (small M): also split the columns, in whole B chunks.
    int64_t col_blocks = parallel && row_blocks < 2 * threads ? ceil_div(4 * threads, row_blocks) : 1;
    const int64_t chunk_slivers = std::min(kChunkSlivers, ceil_div(col_slivers, col_blocks));
    const int64_t chunks = ceil_div(col_slivers, chunk_slivers);
    col_blocks = std::min(col_blocks, chunks);
    // Packed B, (k_panels, col_slivers, kc, NR); chunk (kp, ch) is packed by the first task that needs it.
    const int64_t panel_floats = col_slivers * NR * kc_max;
    float* packed_b = tls_packed_b.get(k_panels * panel_floats);
    // Per (kp, chunk): 0 not packed, 1 being packed, 2 packed.
    std::unique_ptr<std::atomic<int>[]> chunk_state(new std::atomic<int>[k_panels * chunks]);
    for (int64_t i = 0; i < k_panels * chunks; ++i) chunk_state[i].store(0, std::memory_order_relaxed);

    // One task: rows [ic, ic + mc) x chunks [ch_begin, ch_end) of this column panel, over all of K.
    run_tasks(parallel, row_blocks * col_blocks, [&](int64_t task) {
      const int64_t ic = task / col_blocks * mc_block, mc = std::min(mc_block, m - ic);
      const int64_t cb = task % col_blocks;
      const int64_t ch_begin = split_point(chunks, cb, col_blocks);
      const int64_t ch_count = split_point(chunks, cb + 1, col_blocks) - ch_begin;
      float* packed_a = share_a ? nullptr : tls_packed_a.get(a_block_floats);  // (mc_block/MR, kc, MR)
      for (int64_t kp = 0; kp < k_panels; ++kp) {
        const int64_t pc = kp * kc_max, kc = std::min(kc_max, k - pc);
        const float* a_block = trans_a ? a + pc * lda + ic : a + ic * lda + pc;  // op(A)[ic][pc]
        if (share_a) {
          const int64_t id = task / col_blocks * k_panels + kp;
          packed_a = shared_a + id * a_block_floats;
          int expected = 0;
          if (a_state[id].load(std::memory_order_acquire) != 2 && a_state[id].compare_exchange_strong(expected, 1)) {
            pack_a(trans_a, mc, kc, a_block, lda, packed_a);
            a_state[id].store(2, std::memory_order_release);
          }
          while (a_state[id].load(std::memory_order_acquire) != 2) std::this_thread::yield();
        } else {
          pack_a(trans_a, mc, kc, a_block, lda, packed_a);
        }
        float* panel = packed_b + kp * panel_floats;
        for (int64_t q = 0; q < ch_count; ++q) {
          // Start each task at a different chunk so that concurrent tasks pack different chunks.
          const int64_t ch = ch_begin + (q + task) % ch_count;
          const int64_t s_begin = ch * chunk_slivers, s_end = std::min(col_slivers, s_begin + chunk_slivers);
          std::atomic<int>& state = chunk_state[kp * chunks + ch];
          int expected = 0;
          if (state.load(std::memory_order_acquire) != 2 && state.compare_exchange_strong(expected, 1)) {
            const float* b_panel = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;  // op(B)[pc][jc]
            pack_b(trans_b, kc, nc, b_panel, ldb, panel, s_begin, s_end);
            state.store(2, std::memory_order_release);
          }
          // Else another task is packing it; that task is running, so this wait ends.
          while (state.load(std::memory_order_acquire) != 2) std::this_thread::yield();
          const int64_t col_begin = s_begin * NR, col_end = std::min(nc, s_end * NR);
          macro_kernel(mc, col_end - col_begin, kc, packed_a, panel + s_begin * NR * kc,
                       c + ic * ldc + jc + col_begin, ldc, accumulate || kp > 0,
                       bias != nullptr && kp == 0 ? bias + jc + col_begin : nullptr);
        }
      }
    });
  }
}

}  // namespace dpo
