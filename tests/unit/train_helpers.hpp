// Helpers for the trainer's unit tests: layout conversions between the
// model's NHWC and the trainer's channel-major activations, and the
// one-node models the forward / gradient checks run on.
#pragma once

#include <cmath>
#include <functional>

#include "core/model.hpp"
#include "test_helpers.hpp"
#include "train/net.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace bsp::test {

// [n, H, W, C] or [n, F] -> the Value's rows.
inline void to_channel_major(const Tensor& x, train::Value& v) {
  const int64_t n = x.dim(0), C = v.C, hw = v.H * v.W;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < C; ++c) v.act[static_cast<size_t>((c * n + j) * hw + p)] = x[static_cast<size_t>((j * hw + p) * C + c)];
}

// The Value's rows -> [n, H, W, C] (maps) or [n, C] (vectors).
inline Tensor from_channel_major(const train::Value& v, int64_t n, const float* rows) {
  const int64_t C = v.C, hw = v.H * v.W;
  Tensor y(v.is_map ? Shape{n, v.H, v.W, C} : Shape{n, C});
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < C; ++c) y[static_cast<size_t>((j * hw + p) * C + c)] = rows[(c * n + j) * hw + p];
  return y;
}

// Random values for every parameter (batchnorm variances positive).
inline void randomize(Model& m, uint64_t seed) {
  for (Node& n : m.nodes)
    for (auto& [k, t] : n.params) {
      fill_normal(t.data(), t.size(), k == "weight" ? 0.5 : 0.3, mix64(seed ^ hash_name(n.name + k)));
      if (k == "var" || k == "gamma")
        for (auto& v : t) v = 0.5f + std::abs(v);
    }
}

inline float rel_err(double a, double b) {
  return static_cast<float>(std::abs(a - b) / std::max(1.0, std::max(std::abs(a), std::abs(b))));
}

}  // namespace bsp::test
