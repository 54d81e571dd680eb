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

class Bdwp {
 public:
  // Every conv2d / dense node whose mask is nm:N:M. Throws UsageError when
  // there is none.
  Bdwp(Model& m);
  bool contains(const Node* n) const;
  // Recomputes both masks of every layer from its current weights.
  void update_masks();
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
  };
  std::vector<Layer> layers_;
};

}  // namespace bsp::train
