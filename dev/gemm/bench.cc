// Standalone check and benchmark for dpo::sgemm (native/gemm.cc), outside the Node addon.
// (a) compares sgemm with a double-precision triple loop over odd, zero-sized and strided shapes, all four
//     transpose combinations, accumulate on and off, with and without a bias row; (b) prints median GFLOP/s for the shapes we are judged on.
// Build: g++ -O3 -march=native -std=c++17 -pthread dev/gemm/bench.cc -o /tmp/gemm_bench
// Run:   DPO_NUM_THREADS=2 /tmp/gemm_bench [--check-only | --bench-only] [--repeats R] [M N K ta tb]
//        DPO_NUM_THREADS=2 /tmp/gemm_bench --step-a [--rounds R]: the GEMMs of one `dpo bench train` step at shape (a)
//        (L4 C256 V512 T128 P4, live reference), each timed as the step calls it; prints GFLOP/s per shape and the
//        GEMM milliseconds of a step (Σ calls × median time), the figure to compare before and after a change.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../../native/gemm.cc"
#include "../../native/threadpool.cc"

namespace {

struct Shape {
  int64_t m, n, k;
  bool ta, tb;
};

// Fills v with uniform values in [-1, 1).
void fill_random(std::vector<float>& v, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : v) x = dist(rng);
}

// Returns max |C - ref| / (|A|·|B| row-col norm bound + |C0|) for one configuration; the denominator is the sum
// of |terms| so the error is relative to the magnitude the float accumulation actually works with.
double check_one(const Shape& s, int64_t pad, bool accumulate, bool with_bias, std::mt19937& rng) {
  const int64_t a_rows = s.ta ? s.k : s.m, a_cols = s.ta ? s.m : s.k;  // stored A
  const int64_t b_rows = s.tb ? s.n : s.k, b_cols = s.tb ? s.k : s.n;  // stored B
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = s.n + pad;
  std::vector<float> a(std::max<int64_t>(1, a_rows * lda)), b(std::max<int64_t>(1, b_rows * ldb));
  std::vector<float> c(std::max<int64_t>(1, s.m * ldc)), bias(std::max<int64_t>(1, s.n));
  fill_random(a, rng);
  fill_random(b, rng);
  fill_random(c, rng);
  fill_random(bias, rng);
  if (!accumulate)  // garbage that must not leak into the result
    for (int64_t i = 0; i < s.m * ldc; ++i) c[i] = std::nanf("");
  const std::vector<float> c0 = c;
  dpo::sgemm(s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, c.data(), ldc, accumulate,
             with_bias ? bias.data() : nullptr);
  double worst = 0.0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double ref = accumulate ? c0[i * ldc + j] : 0.0, mag = accumulate ? std::fabs(ref) : 0.0;
      if (with_bias) ref += bias[j], mag += std::fabs(bias[j]);
      for (int64_t p = 0; p < s.k; ++p) {
        const double x = s.ta ? a[p * lda + i] : a[i * lda + p];
        const double y = s.tb ? b[j * ldb + p] : b[p * ldb + j];
        ref += x * y;
        mag += std::fabs(x * y);
      }
      const double err = std::fabs(c[i * ldc + j] - ref) / (mag + 1e-30);
      if (!(err <= 1.0)) return INFINITY;  // NaN or wildly wrong
      worst = std::max(worst, err);
    }
    // Padding between rows of C must be untouched.
    for (int64_t j = s.n; j < ldc && i + 1 < s.m; ++j)
      if (std::memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0) return INFINITY;
  }
  return worst;
}

int run_checks() {
  std::mt19937 rng(1234);
  const int64_t dims[] = {0, 1, 3, 7, 13, 17, 31, 65, 127, 129, 255, 257};
  std::vector<Shape> shapes;
  for (int64_t m : dims)
    for (int64_t n : dims)
      for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{257}})
        if ((m * 7 + n * 3 + k) % 5 == 0 || m <= 1 || n <= 1)  // a deterministic subsample keeps this fast
          for (int t = 0; t < 4; ++t) shapes.push_back({m, n, k, (t & 1) != 0, (t & 2) != 0});
  // Larger shapes that take the threaded, multi-panel path (K > KC, N > NR panel split, M over MC).
  const Shape big[] = {{300, 200, 600, false, false}, {257, 129, 513, true, false}, {31, 1000, 300, false, true},
                       {500, 17, 1000, true, true},   {1, 4097, 40, false, false},  {4100, 5, 33, true, true},
                       {145, 4113, 20, false, true},  {7, 2000, 300, true, false},  {13, 700, 500, false, true},
                       {50, 4500, 1000, false, true}};
  for (const Shape& s : big) shapes.push_back(s);
  int failures = 0;
  double worst = 0.0;
  for (const Shape& s : shapes) {
    for (int64_t pad : {int64_t{0}, int64_t{5}}) {
      for (int mode = 0; mode < 4; ++mode) {
        const bool accumulate = (mode & 1) != 0, with_bias = (mode & 2) != 0;
        const double err = check_one(s, pad, accumulate, with_bias, rng);
        worst = std::max(worst, err);
        if (!(err < 1e-5)) {
          ++failures;
          std::printf("FAIL m=%lld n=%lld k=%lld ta=%d tb=%d pad=%lld acc=%d bias=%d rel_err=%g\n", (long long)s.m,
                      (long long)s.n, (long long)s.k, s.ta, s.tb, (long long)pad, accumulate, with_bias, err);
        }
      }
    }
  }
  std::printf("check: %zu shapes x 2 strides x 2 accumulate modes x bias or not, %d failures, max relative error %.3g\n",
              shapes.size(), failures, worst);
  return failures;
}

// Median GFLOP/s of `repeats` timed calls after warm-up.
double bench_one(const Shape& s, int repeats) {
  const int64_t a_cols = s.ta ? s.m : s.k, b_cols = s.tb ? s.k : s.n;
  std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
  std::mt19937 rng(0);
  fill_random(a, rng);
  fill_random(b, rng);
  for (int i = 0; i < 3; ++i)
    dpo::sgemm(s.ta, s.tb, s.m, s.n, s.k, a.data(), a_cols, b.data(), b_cols, c.data(), s.n, false);
  std::vector<double> secs;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    dpo::sgemm(s.ta, s.tb, s.m, s.n, s.k, a.data(), a_cols, b.data(), b_cols, c.data(), s.n, false);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  return 2.0 * s.m * s.n * s.k / secs[secs.size() / 2] / 1e9;
}


// The GEMMs of one DPO step at shape (a), as dpo bench train's DPO_PROFILE=1 lists them: rows R·T = 1024, C = 256,
// 4C = 1024, 3C = 768, completion rows 2P·(T − T_p) = 256 (the LM head, V = 512). `bias` marks linear layers, timed
// as kernels_matmul.cc's linear_forward calls sgemm. calls = per step (policy + reference forwards, policy backward).
struct StepGemm {
  Shape s;
  bool bias;
  int calls;
};
const StepGemm kStepA[] = {
    {{1024, 256, 1024, false, false}, true, 8},  {{1024, 1024, 256, false, false}, true, 8},
    {{1024, 768, 256, false, false}, true, 8},   {{1024, 256, 256, false, false}, true, 8},
    {{256, 1024, 1024, true, false}, false, 4},  {{1024, 256, 1024, false, true}, false, 4},
    {{1024, 256, 1024, true, false}, false, 4},  {{1024, 1024, 256, false, true}, false, 4},
    {{1024, 256, 768, false, true}, false, 4},   {{256, 768, 1024, true, false}, false, 4},
    {{256, 256, 1024, true, false}, false, 4},   {{1024, 256, 256, false, true}, false, 4},
    {{256, 512, 256, false, true}, false, 6},    {{256, 256, 512, false, false}, false, 3},
    {{512, 256, 256, true, false}, false, 3},
};

// Times every step-(a) GEMM `rounds` times, interleaved (round-robin over the shapes, so load drift hits all alike),
// with fresh operands per shape as the step has. Prints per-shape median GFLOP/s and the step's GEMM milliseconds.
void bench_step_a(int rounds) {
  struct Buffers {
    std::vector<float> a, b, c, bias;
  };
  std::vector<Buffers> bufs;
  std::mt19937 rng(0);
  for (const StepGemm& g : kStepA) {
    Buffers x{std::vector<float>(g.s.m * g.s.k), std::vector<float>(g.s.k * g.s.n), std::vector<float>(g.s.m * g.s.n),
              std::vector<float>(g.s.n)};
    fill_random(x.a, rng);
    fill_random(x.b, rng);
    fill_random(x.bias, rng);
    bufs.push_back(std::move(x));
  }
  const size_t count = sizeof(kStepA) / sizeof(kStepA[0]);
  std::vector<std::vector<double>> secs(count);
  for (int r = -2; r < rounds; ++r) {
    for (size_t i = 0; i < count; ++i) {
      const Shape& s = kStepA[i].s;
      Buffers& x = bufs[i];
      const auto t0 = std::chrono::steady_clock::now();
      for (int c = 0; c < kStepA[i].calls; ++c)
        dpo::sgemm(s.ta, s.tb, s.m, s.n, s.k, x.a.data(), s.ta ? s.m : s.k, x.b.data(), s.tb ? s.k : s.n, x.c.data(),
                   s.n, false, kStepA[i].bias ? x.bias.data() : nullptr);
      if (r >= 0) secs[i].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  double total_ms = 0.0, total_flop = 0.0;
  for (size_t i = 0; i < count; ++i) {
    const Shape& s = kStepA[i].s;
    std::sort(secs[i].begin(), secs[i].end());
    const double med = secs[i][secs[i].size() / 2], best = secs[i][0];
    const double flop = 2.0 * s.m * s.n * s.k * kStepA[i].calls;
    total_ms += med * 1e3;
    total_flop += flop;
    std::printf("m=%-5lld n=%-5lld k=%-5lld ta=%d tb=%d bias=%d x%d  median %6.1f GFLOP/s  best %6.1f  %6.2f ms/step\n",
                (long long)s.m, (long long)s.n, (long long)s.k, s.ta, s.tb, kStepA[i].bias, kStepA[i].calls,
                flop / med / 1e9, flop / best / 1e9, med * 1e3);
  }
  std::printf("step (a) GEMMs: %.2f ms/step, %.1f GFLOP/s\n", total_ms, total_flop / (total_ms / 1e3) / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  // Start the pool and let its workers reach their wait loop before the first job: a worker that starts after the
  // first job is published reads that job's generation as already seen and never runs it (threadpool.cc startup race).
  dpo::num_threads();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  bool check = true, bench = true, step_a = false;
  int repeats = 20, rounds = 15;
  std::vector<Shape> shapes = {
      {1024, 1024, 1024, false, false}, {4096, 768, 768, false, false},  {4096, 3072, 768, false, false},
      {4096, 768, 3072, false, false},  {4096, 2304, 768, false, false}, {768, 768, 4096, true, false},
      {768, 3072, 4096, true, false},   {4096, 768, 768, false, true},   {4096, 3072, 768, false, true},
      {4096, 768, 3072, false, true},   {1024, 1024, 1024, true, true},
  };
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--check-only")) bench = false;
    else if (!std::strcmp(argv[i], "--bench-only")) check = false;
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--step-a")) step_a = true;
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else rest.push_back(argv[i]);
  }
  if (rest.size() == 5) {
    shapes = {{std::atoll(rest[0].c_str()), std::atoll(rest[1].c_str()), std::atoll(rest[2].c_str()),
               rest[3] == "1", rest[4] == "1"}};
  }
  if (step_a) {
    std::printf("threads=%d\n", dpo::num_threads());
    bench_step_a(rounds);
    return 0;
  }
  int failures = check ? run_checks() : 0;
  if (bench) {
    std::printf("threads=%d\n", dpo::num_threads());
    for (const Shape& s : shapes)
      std::printf("m=%lld n=%lld k=%lld ta=%d tb=%d  %.1f GFLOP/s\n", (long long)s.m, (long long)s.n, (long long)s.k,
                  s.ta, s.tb, bench_one(s, repeats));
  }
  return failures == 0 ? 0 : 1;
}
