// A/B timing of two versions of native/kernels_attention.cc in one process (dev tool): the working copy against a
// saved copy (see base.cc), alternating which goes first, at shape (a)'s attention sizes (B = 8 rows per call, T = 128,
// H = KVH = 4, D = 64), causal and with a padding mask. Prints medians and minima over rounds (the machine is shared:
// compare minima when the load moves) and the largest relative difference between the two versions' outputs.
// ONLY_NEW=1 runs the working copy alone (for perf).
// Build: g++ -O3 -march=native -std=c++17 -pthread -fno-math-errno -Inative -DBASE='"/tmp/attn_base.cc"'
//          dev/attention/ab.cc dev/attention/base.cc native/kernels_attention.cc native/gemm.cc native/threadpool.cc
//          -o /tmp/attn_ab
// Run:   DPO_NUM_THREADS=2 /tmp/attn_ab [rounds] [B T H KVH D]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels.h"

namespace dpo {
void attention_forward_base(float*, float*, const float*, const float*, const float*, const uint8_t*, int64_t, int64_t,
                            int64_t, int64_t, int64_t, int64_t, float);
void attention_backward_base(float*, float*, float*, const float*, const float*, const float*, const float*,
                             const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float);
}  // namespace dpo

using Clock = std::chrono::steady_clock;

struct Case {
  int64_t b, t, h, kvh, d;
  std::vector<float> q, k, v, dout;
  std::vector<uint8_t> mask;  // empty: causal
};

struct Out {
  std::vector<float> out, probs, dq, dk, dv;
};

template <typename Fwd, typename Bwd>
void run(const Case& c, Out& o, Fwd fwd, Bwd bwd, double& fwd_ms, double& bwd_ms) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
  const uint8_t* mask = c.mask.empty() ? nullptr : c.mask.data();
  auto t0 = Clock::now();
  fwd(o.out.data(), o.probs.data(), c.q.data(), c.k.data(), c.v.data(), mask, c.b, c.t, c.t, c.h, c.kvh, c.d, scale);
  auto t1 = Clock::now();
  bwd(o.dq.data(), o.dk.data(), o.dv.data(), c.dout.data(), c.q.data(), c.k.data(), c.v.data(), o.probs.data(), c.b,
      c.t, c.t, c.h, c.kvh, c.d, scale);
  auto t2 = Clock::now();
  fwd_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  bwd_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]) / (1e-3 + std::fabs(b[i])));
  return m;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  const bool only_new = std::getenv("ONLY_NEW") != nullptr;  // for profiling the working copy alone
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  Case c{argc > 6 ? std::atoll(argv[2]) : 8, argc > 6 ? std::atoll(argv[3]) : 128, argc > 6 ? std::atoll(argv[4]) : 4,
         argc > 6 ? std::atoll(argv[5]) : 4, argc > 6 ? std::atoll(argv[6]) : 64, {}, {}, {}, {}, {}};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& x, int64_t n) { x.resize(n); for (auto& e : x) e = nd(rng); };
  fill(c.q, c.b * c.t * c.h * c.d);
  fill(c.k, c.b * c.t * c.kvh * c.d);
  fill(c.v, c.b * c.t * c.kvh * c.d);
  fill(c.dout, c.b * c.t * c.h * c.d);
  const double causal_flop = 4.0 * c.b * c.h * c.d * (c.t * (c.t + 1) / 2.0);  // QKᵀ and PV over the lower triangle
  for (int masked = 0; masked < 2; ++masked) {
    if (masked) {  // padding: row bi has t − 8·bi real tokens, causal among them
      c.mask.assign(c.b * c.t * c.t, 0);
      for (int64_t bi = 0; bi < c.b; ++bi) {
        const int64_t len = std::max<int64_t>(1, c.t - 8 * bi);
        for (int64_t i = 0; i < c.t; ++i)
          for (int64_t j = 0; j <= std::min(i, len - 1); ++j) c.mask[(bi * c.t + i) * c.t + j] = 1;
      }
    }
    Out o[2];
    for (auto& x : o) {
      x.out.resize(c.q.size()); x.probs.resize(c.b * c.h * c.t * c.t);
      x.dq.resize(c.q.size()); x.dk.resize(c.k.size()); x.dv.resize(c.k.size());
    }
    std::vector<double> f[2], g[2];
    for (int r = 0; r < rounds; ++r) {
      for (int s = 0; s < 2; ++s) {
        const int which = only_new ? 1 : (r + s) % 2;  // 0 base, 1 new
        double fm, bm;
        if (which == 0) run(c, o[0], dpo::attention_forward_base, dpo::attention_backward_base, fm, bm);
        else run(c, o[1], dpo::attention_forward, dpo::attention_backward, fm, bm);
        f[which].push_back(fm);
        g[which].push_back(bm);
      }
    }
    for (auto* x : {&f[0], &f[1], &g[0], &g[1]}) if (x->empty()) x->push_back(0.0);
    std::printf("%s B%lld T%lld H%lld KVH%lld D%lld: fwd base %.3f new %.3f ms (%.2fx) | "
                "bwd base %.3f new %.3f ms (%.2fx)\n",
                masked ? "padding mask" : "causal      ", (long long)c.b, (long long)c.t, (long long)c.h,
                (long long)c.kvh, (long long)c.d, median(f[0]), median(f[1]), median(f[0]) / median(f[1]), median(g[0]),
                median(g[1]), median(g[0]) / median(g[1]));
    std::printf("  min: fwd base %.3f new %.3f ms | bwd base %.3f new %.3f ms\n",
                *std::min_element(f[0].begin(), f[0].end()),
                *std::min_element(f[1].begin(), f[1].end()), *std::min_element(g[0].begin(), g[0].end()),
                *std::min_element(g[1].begin(), g[1].end()));
    std::printf("  useful GFLOP/s fwd base %.1f new %.1f | bwd base %.1f new %.1f\n", causal_flop / median(f[0]) / 1e6,
                causal_flop / median(f[1]) / 1e6, 2 * causal_flop / median(g[0]) / 1e6,
                2 * causal_flop / median(g[1]) / 1e6);
    std::printf("  max rel diff: out %.2e probs %.2e dq %.2e dk %.2e dv %.2e\n", max_rel(o[1].out, o[0].out),
                max_rel(o[1].probs, o[0].probs), max_rel(o[1].dq, o[0].dq), max_rel(o[1].dk, o[0].dk),
                max_rel(o[1].dv, o[0].dv));
  }
}
