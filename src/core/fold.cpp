// The batchnorm fold (the rules are in fold.hpp).
#include "core/fold.hpp"

#include <cmath>

namespace bsp {

std::vector<double> batchnorm_gain(const Node& bn) {
  const Tensor &gamma = bn.param("gamma"), &var = bn.param("var");
  const double eps = bn.attrs.get_double("eps", 1e-5);
  std::vector<double> g(gamma.size());
  for (size_t c = 0; c < g.size(); ++c) g[c] = gamma[c] / std::sqrt(static_cast<double>(var[c]) + eps);
  return g;
}

ChannelAffine batchnorm_affine(const Node& bn) {
  const std::vector<double> g = batchnorm_gain(bn);
  const Tensor &beta = bn.param("beta"), &mean = bn.param("mean");
  ChannelAffine a;
  a.scale.resize(g.size());
  a.shift.resize(g.size());
  for (size_t c = 0; c < g.size(); ++c) {
    a.scale[c] = static_cast<float>(g[c]);
    a.shift[c] = static_cast<float>(beta[c] - g[c] * mean[c]);
  }
  return a;
}

FoldedLayer fold_batchnorm(const Tensor& weight, const Tensor* bias, const Node* bn) {
  const int64_t O = weight.dim(0), K = static_cast<int64_t>(weight.size()) / O;
  FoldedLayer f{weight.clone(), Tensor({O})};
  if (bias) f.bias = bias->clone();
  if (!bn) return f;
  const std::vector<double> g = batchnorm_gain(*bn);
  const Tensor &beta = bn->param("beta"), &mean = bn->param("mean");
  for (int64_t o = 0; o < O; ++o) {
    const size_t c = static_cast<size_t>(o);
    const float gf = static_cast<float>(g[c]);
    for (int64_t k = 0; k < K; ++k) f.weight[static_cast<size_t>(o * K + k)] *= gf;
    f.bias[c] = static_cast<float>((f.bias[c] - mean[c]) * g[c] + beta[c]);
  }
  return f;
}

FoldedLayer fold_batchnorm(const Node& layer, const Node* bn) {
  return fold_batchnorm(layer.param("weight"), layer.has_param("bias") ? &layer.param("bias") : nullptr, bn);
}

}  // namespace bsp
