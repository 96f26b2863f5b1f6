// Rotary position embedding, HF rotate-half layout: each head's vector is split into halves (x1, x2) and rotated
// pairwise by the angle whose cos/sin are given per (batch, position). inverse rotates back (negated sin), which is
// also the backward. out may be x (in place) or disjoint from it, not partially overlapping.
// Legend: B batch, T time, H heads, D head size, half = D/2; x, out (B, T, H, D); cos, sin (B, T, D/2).
#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

void rope_forward(float* out, const float* x, const float* cos, const float* sin, int64_t b, int64_t t, int64_t h,
                  int64_t d, bool inverse) {
  const int64_t half = d / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  parallel_rows(b * t, h * d * 3, [=](int64_t begin, int64_t end) {  // by value: lets the loop vectorise
    for (int64_t bt = begin; bt < end; ++bt) {
      const float* c = cos + bt * half;
      const float* s = sin + bt * half;
      for (int64_t hi = 0; hi < h; ++hi) {
        const float* x1 = x + (bt * h + hi) * d;
        const float* x2 = x1 + half;
        float* y1 = out + (bt * h + hi) * d;
        float* y2 = y1 + half;
        // No loop-carried dependence whether out == x or the two are disjoint: each i reads its pair, then writes it.
#pragma GCC ivdep
        for (int64_t i = 0; i < half; ++i) {
          const float first = x1[i], second = x2[i], si = sign * s[i];
          y1[i] = first * c[i] - second * si;
          y2[i] = second * c[i] + first * si;
        }
      }
    }
  });
}

}  // namespace dpo
