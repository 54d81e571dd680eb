// Softmax cross-entropy on feature-major logits [K, n] (net.hpp).
#pragma once

#include <cstdint>

namespace bsp::train {

struct LossSum {
  double loss = 0;      // sum over the batch of -log softmax(logits)[label]
  int64_t correct = 0;  // argmax == label
};

// grad (nullable) receives d(mean loss)/d(logits) = (softmax - onehot) / mean_over, [K, n]:
// mean_over is the batch the loss is a mean over, n by default (0), the
// global batch when n images are one rank's share of it.
LossSum softmax_xent(const float* logits, int64_t K, int64_t n, const int64_t* labels, float* grad,
                     int64_t mean_over = 0);

}  // namespace bsp::train
