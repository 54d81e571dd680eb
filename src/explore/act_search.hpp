// The activation search of `bsp explore --activations` (man/bsp-explore.1),
// after Spex / Sparse-Blox (AICAS 2023): per layer, a ladder of thresholds
// cut from the layer's own input distribution; a sensitivity table (accuracy
// with one layer's rule alone); then a greedy search that raises, one rung
// at a time, the threshold of the layer whose next rung costs the least
// predicted accuracy per MAC saved, keeping a step only when the measured
// drop of the whole model stays within the budget.
//
// Nothing here runs a model: a Measure callback evaluates a configuration
// (one rung per layer), so the search can be tested on synthetic tables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bsp::explore {

// One rung of a layer's ladder: a threshold and the zero-block fraction of
// the layer's input it gives on the baseline model's held-out inputs.
struct Rung {
  double threshold = 0;  // a float32 value (stored exactly in act_threshold)
  double fraction = 0;
};

// The default ladder: fractions of a layer's nonzero input blocks to zero.
const std::vector<double>& default_quantiles();

// Cuts a ladder from a sample of block maxima (a NaN block: +infinity).
// For each q (ascending, in (0, 1)) the threshold just above the
// ceil(q * K)-th smallest of the K nonzero finite maxima, so that the rule
// zeroes about q of the blocks that are not zero already; a rung that would
// zero no more blocks than the one before it is left out. The result is
// scale-free: it depends only on the order of the maxima.
std::vector<Rung> threshold_ladder(std::vector<float> maxima, const std::vector<double>& quantiles);

// What a configuration measures. Fractions are of the model's conv2d/dense
// layers taken together (bsp-explore(1), FRONT).
struct Measurement {
  int64_t n = 0, correct = 0;       // held-out images, correctly classified
  double zero_block_fraction = 0;   // zero input blocks / input blocks
  double macs_saved_fraction = 0;   // sum of zero-block fraction x MACs / MACs
  double act_bytes = 0;             // per image: bytes of the nonzero input blocks (fp32)
  double act_bytes_saved_fraction = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0; }
};

// A configuration: per searched layer, the index of its rung (-1: no rule).
using Rungs = std::vector<int>;
using Measure = std::function<Measurement(const Rungs&)>;

struct ActLayer {
  std::string name;
  int64_t macs = 0;            // dense MACs per image
  double base_fraction = 0;    // zero-block fraction of its input without a rule (blocks already zero)
  std::vector<Rung> ladder;
  std::vector<double> drop;    // sensitivity: drop in points with this layer alone at rung k (may stop early)
  std::vector<Measurement> sensitivity;  // the measurements behind `drop`
};

// Accuracy drop in points (percentage points of top-1 accuracy).
double drop_points(double base_accuracy, double accuracy);

// Measures each layer alone at its rungs in order (every other searched
// layer without a rule), stopping a layer at the first rung whose drop
// exceeds stop_drop (its higher rungs would cost more; the search never
// goes past the rungs measured). on_eval(layer, rung, m) after each one.
void measure_sensitivity(std::vector<ActLayer>& layers, const Measurement& base, double stop_drop,
                         const Measure& measure,
                         const std::function<void(size_t, size_t, const Measurement&)>& on_eval = {});

// One evaluation of the search.
struct SearchStep {
  int layer = -1;  // the layer raised (-1: the baseline)
  int rung = -1;   // to this rung
  bool accepted = true;       // kept: within the budget and saving more MACs than the last kept step
  bool within_budget = true;  // the measured drop is <= max_drop
  double predicted_cost = 0;  // predicted drop (points) per MAC fraction saved of the step
  Rungs rungs;                // the configuration measured
  Measurement m;
};

struct SearchResult {
  std::vector<SearchStep> front;     // the baseline and every accepted step, in order
  std::vector<SearchStep> rejected;  // steps not kept (their layer then stops)
  Rungs best;                        // the last accepted configuration
};

// The greedy search. A layer's predicted cost for its next rung is the rise
// of its sensitivity curve made non-decreasing (running maximum, negative
// drops as 0) divided by the MACs the rung adds (its fraction rise x the
// layer's MACs); the cheapest layer goes first (ties: more MACs saved, then
// the earlier layer). A step is kept when the measured drop of the whole
// model is <= max_drop and its measured MACs saved exceed the last kept
// step's (so the front rises in MACs saved); otherwise that layer stops
// where it is. The search
// ends when no layer can rise. Deterministic: it depends only on its inputs.
SearchResult greedy_search(const std::vector<ActLayer>& layers, const Measurement& base, double max_drop,
                           const Measure& measure, const std::function<void(const SearchStep&)>& on_step = {});

}  // namespace bsp::explore
