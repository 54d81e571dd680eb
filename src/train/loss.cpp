#include "train/loss.hpp"

#include <cmath>

namespace bsp::train {

LossSum softmax_xent(const float* logits, int64_t K, int64_t n, const int64_t* labels, float* grad,
                     int64_t mean_over) {
  const double denom = static_cast<double>(mean_over > 0 ? mean_over : n);
  double loss = 0;
  int64_t correct = 0;
#pragma omp parallel for reduction(+ : loss, correct) schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    float mx = logits[j];
    int64_t arg = 0;
    for (int64_t k = 1; k < K; ++k)
      if (logits[k * n + j] > mx) {
        mx = logits[k * n + j];
        arg = k;
      }
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(logits[k * n + j] - mx));
    const int64_t y = labels[j];
    loss += std::log(sum) - static_cast<double>(logits[y * n + j] - mx);
    correct += arg == y;
    if (grad) {
      const double inv = 1.0 / (sum * denom);
      for (int64_t k = 0; k < K; ++k) {
        double p = std::exp(static_cast<double>(logits[k * n + j] - mx)) * inv;
        if (k == y) p -= 1.0 / denom;
        grad[k * n + j] = static_cast<float>(p);
      }
    }
  }
  return {loss, correct};
}

}  // namespace bsp::train
