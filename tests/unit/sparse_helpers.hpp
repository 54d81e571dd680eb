// Masks for the compact and kernel tests. Block and unstructured masks are
// built directly with random structure (any density, 0 and 1 included: the
// kernels' edge cases); N:M and tile-wise masks come from bsp prune's API,
// with directly built all-or-nothing tile masks for the edge cases it refuses.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "core/model.hpp"
#include "core/rng.hpp"
#include "sparsity/mask.hpp"
#include "sparsity/prune.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"

namespace bsp::test {

// A conv case of the kernel tests: batch, image, channels, kernel, stride,
// padding on every side, the block density kept; dilation and a kernel
// width other than k (0: square).
struct ConvCase {
  int64_t N, H, W, C, Cout, k, stride, pad;
  double density;
  int64_t dil = 1;
  int64_t kw = 0;
};

// A random small case: batch 1-3, 3-12 pixels a side, 1-40 channels each
// way, 1x1 or 3x3, stride 1 or 2, any padding up to k/2, any density.
inline ConvCase random_conv_case(Rng& r) {
  const auto below = [&r](int64_t n) { return static_cast<int64_t>(r.below(static_cast<uint64_t>(n))); };
  ConvCase c{};
  c.N = 1 + below(3);
  c.H = 3 + below(10);
  c.W = 3 + below(10);
  c.C = 1 + below(40);
  c.Cout = 1 + below(40);
  c.k = 1 + 2 * below(2);
  c.stride = 1 + below(2);
  c.pad = below(c.k / 2 + 1);
  c.density = r.uniform();
  c.dil = 1;
  c.kw = 0;
  return c;
}

// Keeps each R x C block with probability `density` (0 and 1 give empty and
// full layers); zeroes the rest of the weights.
inline void block_prune(Node& n, int64_t R, int64_t C, double density, uint64_t seed) {
  const Tensor& w = n.param("weight");
  const int64_t O = w.dim(0), I = w.shape().back();
  Mask m;
  m.pattern = "block:" + std::to_string(R) + "x" + std::to_string(C);
  m.block_rows = R, m.block_cols = C;
  m.bits = Array<uint8_t>({(O + R - 1) / R, (I + C - 1) / C});
  Rng rng(seed);
  for (auto& b : m.bits) b = rng.uniform() < density;
  n.mask = std::move(m);
  apply_mask(n);
  const Array<uint8_t> e = element_mask(n);
  int64_t kept = 0;
  for (auto v : e) kept += v;
  n.mask->density = static_cast<double>(kept) / static_cast<double>(e.size());
}

// N largest magnitudes of every M consecutive input channels (bsp prune).
inline void nm_prune(Node& n, int64_t N, int64_t M) {
  n.mask.reset();
  Pattern p;
  p.family = PatternFamily::NM;
  p.n = N, p.m = M;
  prune_layer(n, p, static_cast<double>(N) / static_cast<double>(M));
}

// Tile-wise at density col_density * row_density with tiles of G (bsp
// prune); at density 0 or 1 a directly built mask without tile structure.
inline void tw_prune(Node& n, int64_t G, double col_density, double row_density, uint64_t seed) {
  const double d = col_density * row_density;
  if (d > 0 && d < 1) {
    n.mask.reset();
    Pattern p;
    p.family = PatternFamily::TW;
    p.tile = G;
    prune_layer(n, p, d);
    return;
  }
  Tensor& w = n.param("weight");
  const int64_t O = w.dim(0), K = static_cast<int64_t>(w.size()) / O;
  Mask m;
  m.pattern = "tw:" + std::to_string(G);
  m.bits = Array<uint8_t>(w.shape());
  Rng rng(seed);
  std::vector<int64_t> cols;
  for (int64_t o = 0; o < O; ++o)
    if (rng.uniform() < col_density) cols.push_back(o);
  int64_t kept = 0;
  for (size_t t = 0; t < cols.size(); t += static_cast<size_t>(G))
    for (int64_t k = 0; k < K; ++k) {
      if (rng.uniform() >= row_density) continue;
      for (size_t j = t; j < std::min(cols.size(), t + static_cast<size_t>(G)); ++j, ++kept)
        m.bits[static_cast<size_t>(cols[j] * K + k)] = 1;
    }
  m.density = static_cast<double>(kept) / static_cast<double>(w.size());
  n.mask = std::move(m);
  apply_mask(n);
}

inline void unstructured_prune(Node& n, double density, uint64_t seed) {
  Tensor& w = n.param("weight");
  Mask m;
  m.pattern = "unstructured";
  m.bits = Array<uint8_t>(w.shape());
  Rng rng(seed);
  for (auto& b : m.bits) b = rng.uniform() < density;
  m.density = density;
  n.mask = std::move(m);
  apply_mask(n);
}

// Non-trivial batchnorm statistics so that folding is exercised.
inline void randomise_batchnorms(Model& m, uint64_t seed) {
  Rng rng(seed);
  for (Node& n : m.nodes) {
    if (n.op != Op::BatchNorm) continue;
    for (size_t c = 0; c < n.param("gamma").size(); ++c) {
      n.param("gamma")[c] = static_cast<float>(0.5 + rng.uniform());
      n.param("beta")[c] = static_cast<float>(rng.uniform() - 0.5);
      n.param("mean")[c] = static_cast<float>(0.2 * (rng.uniform() - 0.5));
      n.param("var")[c] = static_cast<float>(0.5 + rng.uniform());
    }
  }
}

// One conv node of case c in a model of its own ([H, W, C] input), with
// random weights and bias and its 8x8 blocks kept with probability
// c.density (block_prune).
inline Model conv_case_model(const ConvCase& c, uint64_t seed) {
  GraphBuilder b("t", c.H, c.W, c.C);
  const int64_t kw = c.kw ? c.kw : c.k;
  GraphBuilder::ConvSpec spec{c.Cout, c.k, kw, c.stride, {c.pad, c.kw ? 0 : c.pad, c.pad, c.kw ? 0 : c.pad}, 1, true};
  b.conv("conv", "input", spec);
  Model m = b.finish();
  Node& n = m.nodes[1];
  if (c.dil != 1) n.attrs.set("dilation", std::vector<int64_t>{c.dil, c.dil});
  n.param("weight") = random_tensor({c.Cout, c.k, kw, c.C}, seed, 0.2);
  n.param("bias") = random_tensor({c.Cout}, seed + 1);
  block_prune(n, 8, 8, c.density, seed + 2);
  return m;
}

}  // namespace bsp::test
