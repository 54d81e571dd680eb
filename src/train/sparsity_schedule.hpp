// Sparsity that changes during training (bsp-finetune(1)):
//
//   GradualPruner: --gradual --pattern P --to D. The density of every
//     selected layer follows the cubic schedule of Zhu & Gupta ("To prune,
//     or not to prune", 2017):
//       d(t) = D + (d0 - D) * (1 - (t - t0) / (t1 - t0))^3,  t0 <= t <= t1,
//     from its density d0 at the start to D at step t1; every `every` steps
//     (and at t1) the layers are pruned to d(t) by the prune library
//     (sparsity/prune.hpp), whose masks only shrink.
//
//   Bdwp: --bdwp on nm:N:M layers (bi-directional weight pruning with SR-STE).
//     The layer keeps dense weights; before every step the forward mask is
//     the N:M mask of |W| along Cin and the data-gradient mask the N:M mask of
//     |W| along Cout (W^T pruned along its input axis); the weight gradient is
//     dense and the optimizer adds 2e-4 * (1 - forward mask) * W (SR-STE).
//     That is the paper's per-channel method (shared = 1). With shared = S
//     (--bdwp-shared S), S consecutive output channels (forward) or input
//     channels (data gradient) share their choice: the forward mask keeps, in
//     each group of M input channels at fixed (output block of S, tap), the N
//     of largest sum over the block of |W|, for all S rows alike; the
//     data-gradient mask likewise along Cout per block of S input channels.
//     Each row still keeps N of every M, so both masks are N:M masks; with
//     S = 8 the layers' 8-row blocks (net.hpp) multiply only the kept K.
//     every = k (--bdwp-every k): the masks are recomputed after every k-th
//     step only (SR-STE keeps using the forward mask in between).
//     grad_every = g (--bdwp-grad-every g, not the paper's): convolutions
//     compute the weight gradient of the pruned weights (forward mask 0) on
//     every g-th step only, scaled by g (so that over g steps its sum is
//     that of the dense method's, as an estimate sampled once); on the other
//     steps it is zero and the weight gradient costs the kept part only.
//     Fully connected layers keep the dense weight gradient (it is cheap).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "sparsity/pattern.hpp"
#include "train/net.hpp"
#include "train/optimizer.hpp"

namespace bsp::train {

struct GradualConfig {
  Pattern pattern;
  double to = 0.5;      // final density D of every selected layer
  int64_t every = 100;  // steps between pruning events
  double end = 0.75;    // t1 as a fraction of the training steps
};

class GradualPruner {
 public:
  // Layers: the conv2d and dense nodes bsp prune selects by default (all but
  // the first convolution). Throws UsageError for a pattern whose density is
  // fixed (nm:N:M) or a target outside (0, 1].
  GradualPruner(Model& m, const GradualConfig& c, int64_t total_steps);
  // Prunes when `done` (completed steps) is a pruning step. True if any mask changed.
  bool after_step(int64_t done);
  // Kept weights / weights over the selected layers.
  double density() const;

 private:
  GradualConfig c_;
  std::vector<Node*> layers_;
  std::vector<double> start_;  // d0 per layer
  int64_t t1_ = 0;
};

struct BdwpConfig {
  int64_t shared = 1;  // rows sharing their N:M choice (1: per channel, the paper)
  int64_t every = 1;   // steps between mask updates
  int64_t grad_every = 1;  // steps between dense weight gradients of convolutions
};

class Bdwp {
 public:
  // Every conv2d / dense node whose mask is nm:N:M. Throws UsageError when
  // there is none, or for a shared / every below 1.
  explicit Bdwp(Model& m, const BdwpConfig& c = {});
  bool contains(const Node* n) const;
  // The masks of node n, or nullptr when it is not a BDWP layer.
  const DualMask* masks(const Node* n) const;
  // Recomputes both masks of every layer from its current weights.
  void update_masks();
  // After `done` completed steps: updates the masks when done is a multiple
  // of `every`. True when they changed.
  bool after_step(int64_t done);
  // Before step `step` (0-based, over the whole run): whether the
  // convolutions compute their weight gradient densely (grad_every).
  void before_step(int64_t step);
  // After the backward pass of that step: the pruned weights' gradient of
  // the convolutions, scaled by grad_every or zeroed (grad_every > 1 only).
  void after_backward(std::vector<Param>& params) const;
  // Hands the masks to the network and the optimizer's rules (params of the net).
  void attach(Net& net, std::vector<ParamRule>& rules, const std::vector<Param>& params) const;

  // For a file write: the weights masked with the forward mask and the node
  // masks set to it; returns the dense weights by node name.
  std::map<std::string, Tensor> export_masked();
  // Undoes export_masked().
  void restore_dense(std::map<std::string, Tensor>& dense);

 private:
  struct Layer {
    Node* node;
    int64_t n, m;
    std::string pattern;
    DualMask masks;
    bool conv;
  };
  BdwpConfig c_;
  std::vector<Layer> layers_;
  std::vector<float> score_;  // scratch: per-block magnitude sums (shared > 1)
  std::vector<uint8_t> smask_;  // scratch: their N:M mask
};

}  // namespace bsp::train
