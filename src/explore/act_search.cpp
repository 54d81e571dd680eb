#include "explore/act_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace bsp::explore {

const std::vector<double>& default_quantiles() {
  // Fine steps first: the first blocks zeroed are the ones that matter least,
  // and a budget of a point is usually spent within the first half.
  static const std::vector<double> q = {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  return q;
}

std::vector<Rung> threshold_ladder(std::vector<float> maxima, const std::vector<double>& quantiles) {
  std::vector<Rung> out;
  if (maxima.empty()) return out;
  std::sort(maxima.begin(), maxima.end());
  const size_t total = maxima.size();
  const size_t zeros = static_cast<size_t>(std::upper_bound(maxima.begin(), maxima.end(), 0.0f) - maxima.begin());
  const size_t finite = static_cast<size_t>(
      std::lower_bound(maxima.begin(), maxima.end(), std::numeric_limits<float>::infinity()) - maxima.begin());
  const size_t K = finite - zeros;  // nonzero finite maxima
  if (K == 0) return out;
  double last = static_cast<double>(zeros) / static_cast<double>(total);
  for (double q : quantiles) {
    const size_t k = std::clamp<size_t>(static_cast<size_t>(std::ceil(q * static_cast<double>(K))), 1, K);
    // Strictly above the k-th nonzero maximum: the rule zeroes |v| < t.
    const float t = std::nextafter(maxima[zeros + k - 1], std::numeric_limits<float>::infinity());
    if (!std::isfinite(t)) continue;
    const size_t below = static_cast<size_t>(std::lower_bound(maxima.begin(), maxima.end(), t) - maxima.begin());
    const double fraction = static_cast<double>(below) / static_cast<double>(total);
    if (fraction <= last) continue;
    out.push_back({static_cast<double>(t), fraction});
    last = fraction;
  }
  return out;
}

double drop_points(double base_accuracy, double accuracy) { return (base_accuracy - accuracy) * 100.0; }

void measure_sensitivity(std::vector<ActLayer>& layers, const Measurement& base, double stop_drop,
                         const Measure& measure,
                         const std::function<void(size_t, size_t, const Measurement&)>& on_eval) {
  for (size_t l = 0; l < layers.size(); ++l) {
    ActLayer& L = layers[l];
    L.drop.clear();
    L.sensitivity.clear();
    for (size_t k = 0; k < L.ladder.size(); ++k) {
      Rungs r(layers.size(), -1);
      r[l] = static_cast<int>(k);
      const Measurement m = measure(r);
      L.sensitivity.push_back(m);
      L.drop.push_back(drop_points(base.accuracy(), m.accuracy()));
      if (on_eval) on_eval(l, k, m);
      if (L.drop.back() > stop_drop) break;
    }
  }
}

namespace {

// The sensitivity curve made non-decreasing, negative drops as 0: index k+1
// holds rung k, index 0 no rule (0).
std::vector<double> envelope(const ActLayer& L) {
  std::vector<double> e{0.0};
  for (double d : L.drop) e.push_back(std::max(e.back(), d));
  return e;
}

double fraction_at(const ActLayer& L, int rung) { return rung < 0 ? L.base_fraction : L.ladder[static_cast<size_t>(rung)].fraction; }

}  // namespace

SearchResult greedy_search(const std::vector<ActLayer>& layers, const Measurement& base, double max_drop,
                           const Measure& measure, const std::function<void(const SearchStep&)>& on_step) {
  SearchResult res;
  std::vector<std::vector<double>> env;
  for (const ActLayer& L : layers) env.push_back(envelope(L));
  Rungs cur(layers.size(), -1);
  std::vector<bool> stopped(layers.size(), false);
  SearchStep start;
  start.rungs = cur;
  start.m = base;
  res.front.push_back(start);
  if (on_step) on_step(start);
  // Each pass raises one layer or stops one, so the loop ends.
  for (;;) {
    int pick = -1;
    double pick_cost = 0, pick_macs = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const ActLayer& L = layers[l];
      const int next = cur[l] + 1;
      if (stopped[l] || next >= static_cast<int>(L.drop.size())) continue;
      const double macs = (fraction_at(L, next) - fraction_at(L, cur[l])) * static_cast<double>(L.macs);
      if (!(macs > 0)) continue;
      const double cost = (env[l][static_cast<size_t>(next) + 1] - env[l][static_cast<size_t>(cur[l]) + 1]) / macs;
      if (pick < 0 || cost < pick_cost || (cost == pick_cost && macs > pick_macs)) {
        pick = static_cast<int>(l);
        pick_cost = cost;
        pick_macs = macs;
      }
    }
    if (pick < 0) break;
    Rungs trial = cur;
    ++trial[static_cast<size_t>(pick)];
    SearchStep s;
    s.layer = pick;
    s.rung = trial[static_cast<size_t>(pick)];
    s.rungs = trial;
    s.m = measure(trial);
    // Cost per MAC fraction of the whole model, a readable number.
    double total_macs = 0;
    for (const ActLayer& L : layers) total_macs += static_cast<double>(L.macs);
    s.predicted_cost = pick_cost * total_macs;
    // A step must also save MACs, measured: zeroing a layer's input changes
    // the inputs of the layers after it, which can have fewer zero blocks.
    s.within_budget = drop_points(base.accuracy(), s.m.accuracy()) <= max_drop + 1e-9;
    s.accepted = s.within_budget && s.m.macs_saved_fraction > res.front.back().m.macs_saved_fraction;
    if (s.accepted) {
      cur = trial;
      res.front.push_back(s);
    } else {
      stopped[static_cast<size_t>(pick)] = true;
      res.rejected.push_back(s);
    }
    if (on_step) on_step(s);
  }
  res.best = cur;
  return res;
}

}  // namespace bsp::explore
