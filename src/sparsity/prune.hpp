// Pruning a model to a sparsity pattern (man/bsp-prune.1): choose the layers,
// score, keep the highest-scoring units to a density, store the mask and zero
// the pruned weights. Independent of the command line: the trainer calls
// prune_layer() / prune_layers() for gradual pruning during training.
//
// Masks only shrink: a layer that already holds a mask of the same pattern
// family keeps every weight it pruned (those units are not candidates), so
// "prune a little, finetune, prune more" is a loop of calls. A mask of
// another family (or of the same family with parameters whose structure the
// old mask cannot nest in: a coarser block grid, another tile size) is only
// replaced with `force`; the new mask is then chosen afresh from the current
// weights, in which the earlier pruned weights are zero and score lowest.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.hpp"
#include "sparsity/pattern.hpp"

namespace bsp {

// What happened to one layer.
struct LayerPruneResult {
  std::string name;
  Op op = Op::Conv2d;
  std::string pattern;            // the layer's pattern afterwards ("" if it has no mask)
  double target = 1.0;            // the density asked for this layer (with global scope: the overall one)
  double density_before = 1.0;    // mask density (or nonzero fraction) before
  double density = 1.0;           // achieved: kept weights / weights
  double l2_kept = 1.0;           // ||W after||_2 / ||W before||_2 (1 for an all-zero layer)
  int64_t weights = 0, kept = 0;  // weights of the layer, kept by its mask
  bool pruned = true;             // false: left as it was (note says why)
  std::string note;
};

struct PruneResult {
  std::vector<LayerPruneResult> layers;  // in model order
  int64_t weights = 0, kept = 0;         // over the pruned layers
  double density = 1.0;                  // kept / weights
  double l2_kept = 1.0;                  // over the pruned layers
  std::vector<std::string> warnings;     // e.g. layers nm:N:M leaves dense
};

// The pattern settings shared by every layer of one pruning step.
struct PruneSettings {
  Pattern pattern;
  Criterion criterion = Criterion::L2;  // block and channel only
  Scope scope = Scope::Layer;
  bool force = false;  // replace masks of another family (see above)
};

// Prunes the given layers (conv2d/dense nodes of `m`) to their densities.
// With Scope::Global the densities form one budget, sum(density * weights),
// met with one threshold over the scores of all the layers (tw/tvw: one per
// step). Throws UsageError for a density outside (0, max_density], a family
// change without force, variance with a pattern that has no blocks; Error for
// non-finite weights. Nothing is modified when it throws.
PruneResult prune_layers(Model& m, const std::vector<std::pair<size_t, double>>& layer_densities,
                         const PruneSettings& s);

// The same on nodes (conv2d/dense) held anywhere, e.g. by a trainer.
PruneResult prune_nodes(const std::vector<std::pair<Node*, double>>& layer_densities, const PruneSettings& s);

// One layer at `density`, per-layer scope.
LayerPruneResult prune_layer(Node& n, const Pattern& p, double density, Criterion c = Criterion::L2,
                             bool force = false);

// What `bsp prune` asks for: the layer selection and densities on top of the
// settings.
struct PruneOptions {
  Pattern pattern;
  std::optional<double> density;           // nm: implied (N/M); required otherwise unless a density file
  Criterion criterion = Criterion::L2;
  std::optional<Scope> scope;              // default: global for tw/tvw, layer otherwise
  bool include_first = false;              // also prune the first conv
  bool include_depthwise = false;          // also prune depthwise convs (one input channel per group)
  std::optional<std::string> layers;       // ECMAScript regex searched in layer names
  std::optional<std::string> exclude;      // ECMAScript regex searched in layer names
  std::vector<std::pair<std::string, double>> density_file;  // per-layer densities
  std::string density_file_name;           // for messages
  bool force = false;
};

// Which layers a prune or a gradual schedule touches.
struct LayerSelection {
  bool include_first = false;      // the first conv2d (3 input channels, usually left dense)
  bool include_depthwise = false;  // depthwise convs: no channel block spans two of their inputs
  std::optional<std::string> layers, exclude;  // ECMAScript regexes searched in layer names
};

// Every conv2d and dense layer, minus the first conv and the depthwise convs
// unless included, filtered by the regexes. Throws UsageError for a bad regex
// or one that selects nothing, or when the model has no prunable layer.
std::vector<size_t> select_layers(const Model& m, const LayerSelection& s);

// A conv2d with one input channel per group (MobileNet's 3x3 stages).
bool is_depthwise(const Node& n);

// The selected layers and their densities, validated against the options;
// warnings (e.g. density-file layers outside the selection) are appended.
std::vector<std::pair<size_t, double>> plan_layers(const Model& m, const PruneOptions& o, Scope scope,
                                                   std::vector<std::string>& warnings);

// The scope the options mean (their own, or the pattern's default).
Scope effective_scope(const PruneOptions& o);

PruneResult prune_model(Model& m, const PruneOptions& o);

// Parses a density file: one "LAYER DENSITY" per line, '#' starts a comment,
// blank lines ignored. Throws UsageError naming `display` and the line for a
// malformed line, a bad or out-of-range number, a layer named twice.
std::vector<std::pair<std::string, double>> parse_density_file(std::string_view text, const std::string& display);

}  // namespace bsp
