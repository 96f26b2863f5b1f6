// AdamW, in place, as torch.optim.AdamW (decoupled weight decay, bias-corrected moments). The bias corrections are
// computed once in double; the per-element update runs in float32, split across threads in contiguous chunks.
// Legend: n parameters; param, grad, m (first moment), v (second moment) all (n).
#include <cmath>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

// p −= lr·wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·(m / bc1) / (sqrt(v / bc2) + eps),
// with bc1 = 1 − β1^step and bc2 = 1 − β2^step.
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
           double eps, double weight_decay, double step) {
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - beta1), one_minus_b2 = static_cast<float>(1.0 - beta2);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, step)));
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, step)));
  const float epsf = static_cast<float>(eps);
  parallel_rows(n, 8, [=](int64_t begin, int64_t end) {  // by value: lets the loop vectorise
    for (int64_t i = begin; i < end; ++i) {
      const float g = grad[i];
      const float mi = b1 * m[i] + one_minus_b1 * g;
      const float vi = b2 * v[i] + one_minus_b2 * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + epsf);
    }
  });
}

}  // namespace dpo
