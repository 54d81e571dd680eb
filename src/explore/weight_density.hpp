// The density allocation of `bsp explore --weights` (man/bsp-explore.1):
// from a per-layer sensitivity table (accuracy drop when one layer alone is
// pruned to each of a few densities, no finetuning) to per-layer densities
// that meet an overall density with the least predicted loss, written as a
// density file for `bsp prune --density-file` (bsp-prune(1)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bsp::explore {

struct DensityLayer {
  std::string name;
  int64_t weights = 0;           // prunable weights (the weight tensor's size)
  double start = 1.0;            // its density now (mask density, 1 without a mask)
  std::vector<double> densities; // measured, strictly decreasing, each < start
  std::vector<double> drops;     // drop in points at each, this layer alone pruned
};

// The layer's predicted drop at density d (start >= d >= the last measured
// density): linear between the measured points of its curve made
// non-decreasing as density falls (running maximum, negative drops as 0),
// 0 at `start`.
double predicted_drop(const DensityLayer& l, double d);

struct DensityPlan {
  std::vector<double> density;  // per layer, in the order given
  double overall = 1.0;         // sum(density x weights) / sum(weights)
  double predicted_drop = 0;    // sum of the layers' predicted drops
};

// Per-layer densities with sum(density x weights) = target x sum(weights)
// (the overall density bsp prune reports) and the least predicted loss:
// each curve is replaced by its lower convex hull over weights removed and
// the cheapest hull segment (predicted drop per weight removed) is taken
// first, the last one partly, which is optimal for the hull curves; ties go
// to the larger layer, then the earlier one. Throws UsageError when the
// layers already hold a density at or below the target, or when the target
// is below what the measured densities reach.
DensityPlan allocate_densities(const std::vector<DensityLayer>& layers, double target);
// The same checks alone, before anything is measured (drops are not read).
void check_density_target(const std::vector<DensityLayer>& layers, double target);

// A density file (bsp-prune(1)): `comment` lines first (each prefixed with
// "# "), then "LAYER DENSITY" for every layer whose density changes; layers
// left at their start density are listed in a comment only.
std::string density_file_text(const std::vector<DensityLayer>& layers, const DensityPlan& plan,
                              const std::vector<std::string>& comment);

}  // namespace bsp::explore
