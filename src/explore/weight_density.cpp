#include "explore/weight_density.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"

namespace bsp::explore {

namespace {

// The curve as (density, drop) points from `start` down, drops made
// non-decreasing and >= 0.
std::vector<std::pair<double, double>> curve(const DensityLayer& l) {
  std::vector<std::pair<double, double>> c{{l.start, 0.0}};
  for (size_t i = 0; i < l.densities.size() && i < l.drops.size(); ++i)
    c.emplace_back(l.densities[i], std::max(c.back().second, l.drops[i]));
  return c;
}

// Lower convex hull of the curve over weights removed, (start - d) x weights
// increasing: the points kept (monotone chain).
std::vector<std::pair<double, double>> hull(const DensityLayer& l) {
  const auto c = curve(l);
  std::vector<std::pair<double, double>> h;  // (removed, drop)
  for (const auto& [d, y] : c) {
    const std::pair<double, double> p{(l.start - d) * static_cast<double>(l.weights), y};
    while (h.size() >= 2) {
      const auto& a = h[h.size() - 2];
      const auto& b = h.back();
      // b lies on or above the segment a-p: drop it.
      const double cross = (b.first - a.first) * (p.second - a.second) - (b.second - a.second) * (p.first - a.first);
      if (cross <= 0) h.pop_back();
      else break;
    }
    h.push_back(p);
  }
  return h;
}

}  // namespace

double predicted_drop(const DensityLayer& l, double d) {
  const auto c = curve(l);
  if (d >= c.front().first) return 0.0;
  for (size_t i = 1; i < c.size(); ++i)
    if (d >= c[i].first) {
      const auto& [d0, y0] = c[i - 1];
      const auto& [d1, y1] = c[i];
      return y0 + (y1 - y0) * (d0 - d) / (d0 - d1);
    }
  return c.back().second;
}

void check_density_target(const std::vector<DensityLayer>& layers, double target) {
  double weights = 0, kept = 0, floor = 0;
  for (const DensityLayer& l : layers) {
    weights += static_cast<double>(l.weights);
    kept += l.start * static_cast<double>(l.weights);
    floor += (l.densities.empty() ? l.start : l.densities.back()) * static_cast<double>(l.weights);
  }
  if (weights <= 0) fail_usage("no prunable weights");
  const double now = kept / weights;
  if (target >= now - 1e-12)
    fail_usage("--density {} prunes nothing: the selected layers are at density {:.4f} already", target, now);
  if (target < floor / weights - 1e-12)
    fail_usage("--density {} is below what the measured densities reach ({:.4f}): add lower ones to --densities",
               target, floor / weights);
}

DensityPlan allocate_densities(const std::vector<DensityLayer>& layers, double target) {
  check_density_target(layers, target);
  double weights = 0, kept = 0;
  std::vector<std::vector<std::pair<double, double>>> hulls;
  for (const DensityLayer& l : layers) {
    weights += static_cast<double>(l.weights);
    kept += l.start * static_cast<double>(l.weights);
    hulls.push_back(hull(l));
  }
  double remove = kept - target * weights;  // weights still to remove
  std::vector<double> removed(layers.size(), 0.0);
  std::vector<size_t> at(layers.size(), 0);  // hull vertex each layer has reached
  while (remove > 0) {
    int pick = -1;
    double best = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& h = hulls[l];
      if (at[l] + 1 >= h.size()) continue;
      const double slope = (h[at[l] + 1].second - h[at[l]].second) / (h[at[l] + 1].first - h[at[l]].first);
      if (pick < 0 || slope < best ||
          (slope == best && layers[l].weights > layers[static_cast<size_t>(pick)].weights)) {
        pick = static_cast<int>(l);
        best = slope;
      }
    }
    if (pick < 0) break;  // rounding: everything is taken
    const size_t p = static_cast<size_t>(pick);
    const double room = hulls[p][at[p] + 1].first - removed[p];
    if (room <= remove) {
      removed[p] = hulls[p][at[p] + 1].first;
      remove -= room;
      ++at[p];
    } else {
      removed[p] += remove;
      remove = 0;
    }
  }
  DensityPlan plan;
  double sum = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const DensityLayer& L = layers[l];
    const double d = L.weights ? L.start - removed[l] / static_cast<double>(L.weights) : L.start;
    plan.density.push_back(d);
    plan.predicted_drop += predicted_drop(L, d);
    sum += d * static_cast<double>(L.weights);
  }
  plan.overall = sum / weights;
  return plan;
}

std::string density_file_text(const std::vector<DensityLayer>& layers, const DensityPlan& plan,
                              const std::vector<std::string>& comment) {
  std::string out;
  for (const std::string& c : comment) out += "# " + c + "\n";
  std::string same;
  for (size_t l = 0; l < layers.size(); ++l) {
    // Six decimals: the overall density is met to about 1e-6.
    const std::string d = fmt::format("{:.6f}", plan.density[l]);
    if (plan.density[l] >= layers[l].start - 5e-7) {
      same += " " + layers[l].name;
      continue;
    }
    out += fmt::format("{} {}  # predicted drop {:.3f}\n", layers[l].name, d, predicted_drop(layers[l], plan.density[l]));
  }
  if (!same.empty()) out += "# left as they are:" + same + "\n";
  return out;
}

}  // namespace bsp::explore
