// A/B timing of two versions of native/gemm.cc in one process (dev tool): the working copy against a saved copy
// (BASE, e.g. `git show HEAD:native/gemm.cc > /tmp/gemm_base.cc`), call by call, alternating which goes first, over
// the GEMMs of a DPO step at shape (a) (bench.cc --step-a's list). On a shared, loaded machine two separate runs
// differ by more than most changes; interleaving in one process puts the same load on both. A round (every shape,
// both versions) counts only if it ran within 10% of the fastest round: rounds during which another program held a
// core are dropped, since a threading change shows only when both threads have a core.
// The linear layers are timed as each version's linear_forward did: the working copy passes the bias to sgemm;
// BASE_PREFILL=1 makes the base prefill C with the bias and accumulate (gemm.cc before the bias epilogue).
// Build: g++ -O3 -march=native -std=c++17 -pthread -Inative -DBASE='"/tmp/gemm_base.cc"' [-DBASE_PREFILL=1] dev/gemm/ab.cc
//        (-DNEW='"/tmp/other.cc"' replaces the working copy, to compare two experiments)
// Run:   DPO_NUM_THREADS=2 ./a.out [rounds]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <thread>
#include <vector>

#ifndef NEW
#define NEW "../../native/gemm.cc"
#endif
#include NEW
#include "../../native/threadpool.cc"

// The base version, compiled into namespace base::dpo; it sees the shared helpers (thread pool, row_dot) of ::dpo.
namespace base {
namespace dpo {
using namespace ::dpo;
}
#include BASE
}  // namespace base

#ifndef BASE_PREFILL
#define BASE_PREFILL 0
#endif

namespace {

struct StepGemm {
  int64_t m, n, k;
  bool ta, tb, bias;
  int calls;
};
// As dev/gemm/bench.cc's kStepA.
const StepGemm kStepA[] = {
    {1024, 256, 1024, false, false, true, 8},  {1024, 1024, 256, false, false, true, 8},
    {1024, 768, 256, false, false, true, 8},   {1024, 256, 256, false, false, true, 8},
    {256, 1024, 1024, true, false, false, 4},  {1024, 256, 1024, false, true, false, 4},
    {1024, 256, 1024, true, false, false, 4},  {1024, 1024, 256, false, true, false, 4},
    {1024, 256, 768, false, true, false, 4},   {256, 768, 1024, true, false, false, 4},
    {256, 256, 1024, true, false, false, 4},   {1024, 256, 256, false, true, false, 4},
    {256, 512, 256, false, true, false, 6},    {256, 256, 512, false, false, false, 3},
    {512, 256, 256, true, false, false, 3},
};

void run(int version, const StepGemm& g, const float* a, const float* b, float* c, const float* bias) {
  const int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  if (version == 0) {
    dpo::sgemm(g.ta, g.tb, g.m, g.n, g.k, a, lda, b, ldb, c, g.n, false, g.bias ? bias : nullptr);
    return;
  }
#if BASE_PREFILL
  if (g.bias) {
    dpo::parallel_rows(g.m, g.n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(c + r * g.n, bias, g.n * sizeof(float));
    });
    base::dpo::sgemm(g.ta, g.tb, g.m, g.n, g.k, a, lda, b, ldb, c, g.n, true);
    return;
  }
  base::dpo::sgemm(g.ta, g.tb, g.m, g.n, g.k, a, lda, b, ldb, c, g.n, false);
#else
  base::dpo::sgemm(g.ta, g.tb, g.m, g.n, g.k, a, lda, b, ldb, c, g.n, false, g.bias ? bias : nullptr);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  dpo::num_threads();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  const size_t count = sizeof(kStepA) / sizeof(kStepA[0]);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::vector<float>> as, bs, cs, biases;
  for (const StepGemm& g : kStepA) {
    as.emplace_back(g.m * g.k);
    bs.emplace_back(g.k * g.n);
    cs.emplace_back(g.m * g.n);
    biases.emplace_back(g.n);
    for (auto* v : {&as.back(), &bs.back(), &biases.back()})
      for (float& x : *v) x = dist(rng);
  }
  std::vector<std::vector<double>> round_secs[2];  // [version][round][shape]
  std::vector<double> round_total;
  for (int r = -2; r < rounds; ++r) {
    std::vector<double> secs_r[2] = {std::vector<double>(count), std::vector<double>(count)};
    for (size_t i = 0; i < count; ++i)
      for (int v = 0; v < 2; ++v) {
        const int which = (r + 2 + static_cast<int>(i) + v) % 2;
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < kStepA[i].calls; ++c)
          run(which, kStepA[i], as[i].data(), bs[i].data(), cs[i].data(), biases[i].data());
        secs_r[which][i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    if (r < 0) continue;
    double t = 0.0;
    for (int v = 0; v < 2; ++v) {
      for (double x : secs_r[v]) t += x;
      round_secs[v].push_back(secs_r[v]);
    }
    round_total.push_back(t);
  }
  const double fastest = *std::min_element(round_total.begin(), round_total.end());
  std::vector<double> secs[2][count];
  int kept = 0;
  for (int r = 0; r < rounds; ++r) {
    if (round_total[r] > 1.1 * fastest) continue;
    ++kept;
    for (int v = 0; v < 2; ++v)
      for (size_t i = 0; i < count; ++i) secs[v][i].push_back(round_secs[v][r][i]);
  }
  double total[2] = {0, 0}, total_best[2] = {0, 0};
  std::printf("GFLOP/s, median of %d of %d rounds (best); new = %s, base = %s\n", kept, rounds, NEW, BASE);
  for (size_t i = 0; i < count; ++i) {
    const StepGemm& g = kStepA[i];
    const double flop = 2.0 * g.m * g.n * g.k * g.calls;
    double med[2], best[2];
    for (int v = 0; v < 2; ++v) {
      std::sort(secs[v][i].begin(), secs[v][i].end());
      med[v] = secs[v][i][secs[v][i].size() / 2];
      best[v] = secs[v][i][0];
      total[v] += med[v];
      total_best[v] += best[v];
    }
    std::printf("m=%-5lld n=%-5lld k=%-5lld ta=%d tb=%d bias=%d x%d  new %6.1f (%6.1f)  base %6.1f (%6.1f)  new/base %.3f\n",
                (long long)g.m, (long long)g.n, (long long)g.k, g.ta, g.tb, g.bias, g.calls, flop / med[0] / 1e9,
                flop / best[0] / 1e9, flop / med[1] / 1e9, flop / best[1] / 1e9, med[1] / med[0]);
  }
  std::printf("step (a) GEMMs, ms: new %.2f (best %.2f), base %.2f (best %.2f), speed-up %.3f (best %.3f)\n",
              total[0] * 1e3, total_best[0] * 1e3, total[1] * 1e3, total_best[1] * 1e3, total[1] / total[0],
              total_best[1] / total_best[0]);
  return 0;
}
