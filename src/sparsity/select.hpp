// Keeping the highest-scoring units (weights, blocks, channels, tile rows)
// until they cover a target number of weights: the one selection step every
// magnitude-based pattern shares, per layer or across layers (one global
// threshold).
//
// Units have a score (< 0: not a candidate, e.g. already pruned; never kept)
// and a weight (how many weights of the layer they cover). Units are taken
// in decreasing score; the unit at which the kept weight crosses the target
// is kept if that lands closer to the target than stopping before it (ties
// keep). Equal scores are taken in order: span by span, then by index, so the
// result is deterministic and does not depend on the thread count.
//
// Cost: O(units) with two histogram passes over the 32-bit float keys (a
// radix select) and one marking pass; no sort, no per-unit allocation.
// Work on fewer than ~2^16 units runs on one thread here and in the pattern
// code: a parallel region costs more than that, far more on a busy machine.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <tuple>
#include <vector>

namespace bsp {

// A span of units, as the selection sees it:
//   int64_t size() const;
//   float score(int64_t i) const;    // >= 0 for candidates, < 0 otherwise
//   int64_t weight(int64_t i) const;  // >= 1
//   void set(int64_t i, bool keep);   // the result, written for every unit
// set() is called from several threads at once for different i.
template <class S>
concept UnitSpan = requires(S s, const S cs, int64_t i) {
  { cs.size() } -> std::convertible_to<int64_t>;
  { cs.score(i) } -> std::convertible_to<float>;
  { cs.weight(i) } -> std::convertible_to<int64_t>;
  s.set(i, true);
};

struct SelectOptions {
  double target = 0;              // weights to keep
  bool keep_at_least_one = false;  // keep the best unit even when the target rounds to nothing
};

namespace select_detail {

// Nonnegative floats order like their bit patterns; candidates only.
inline uint32_t key(float s) { return s > 0.0f ? std::bit_cast<uint32_t>(s) : 0u; }

constexpr int64_t kChunk = 16384;
constexpr int64_t kSmall = 32768;  // below this many units: sort instead of histograms

struct Chunk {
  int span;
  int64_t begin, end;
};

// Decides the boundary unit: keep it if that lands at least as close to the
// target as not keeping it.
inline bool keep_boundary(double before, int64_t w, const SelectOptions& o) {
  if (before == 0 && o.keep_at_least_one) return true;
  return before + static_cast<double>(w) - o.target <= o.target - before;
}

// Finds the bin where the cumulative weight, walked from the top bin down
// starting at `acc`, reaches the target; adds the weight above it to `acc`.
int find_bin(const std::vector<int64_t>& hist, double target, double& acc);

}  // namespace select_detail

// Returns the number of weights kept.
template <UnitSpan S>
int64_t select_top(std::vector<S>& spans, const SelectOptions& o) {
  using namespace select_detail;
  std::vector<Chunk> chunks;
  for (int s = 0; s < static_cast<int>(spans.size()); ++s)
    for (int64_t b = 0; b < spans[s].size(); b += kChunk) chunks.push_back({s, b, std::min(b + kChunk, spans[s].size())});
  const int64_t nchunks = static_cast<int64_t>(chunks.size());
  int64_t units = 0;
  for (const auto& s : spans) units += s.size();
  // Everything fits: keep every candidate.
  auto keep_all = [&] {
#pragma omp parallel for if (units > kSmall) schedule(dynamic)
    for (int64_t c = 0; c < nchunks; ++c) {
      S& sp = spans[chunks[c].span];
      for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) sp.set(i, sp.score(i) >= 0);
    }
  };

  if (units <= kSmall) {
    // Few units: sort (score desc, then span and index) and walk.
    std::vector<std::tuple<float, int, int64_t>> order;
    order.reserve(static_cast<size_t>(units));
    int64_t total = 0;
    for (int s = 0; s < static_cast<int>(spans.size()); ++s)
      for (int64_t i = 0; i < spans[s].size(); ++i) {
        float sc = spans[s].score(i);
        spans[s].set(i, false);
        if (sc >= 0) {
          order.emplace_back(sc > 0 ? sc : 0.0f, s, i);
          total += spans[s].weight(i);
        }
      }
    if (static_cast<double>(total) <= o.target) {
      keep_all();
      return total;
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      return std::tie(std::get<1>(a), std::get<2>(a)) < std::tie(std::get<1>(b), std::get<2>(b));
    });
    double cum = 0;
    for (const auto& [sc, s, i] : order) {
      const int64_t w = spans[s].weight(i);
      if (cum + static_cast<double>(w) >= o.target) {
        if (keep_boundary(cum, w, o)) {
          spans[s].set(i, true);
          cum += static_cast<double>(w);
        }
        break;
      }
      spans[s].set(i, true);
      cum += static_cast<double>(w);
    }
    return static_cast<int64_t>(cum);
  }

  // Radix select on the 32-bit keys: the high 16 bits, then the low 16 bits
  // inside the bin where the target falls, give the boundary key exactly.
  // The first histogram also gives the candidates' total weight.
  double acc = 0;
  uint32_t boundary = 0;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int64_t> hist(65536, 0);
    const uint32_t high = boundary;
#pragma omp parallel
    {
      std::vector<int64_t> local(65536, 0);
#pragma omp for schedule(dynamic) nowait
      for (int64_t c = 0; c < nchunks; ++c) {
        const S& sp = spans[chunks[c].span];
        for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) {
          const float sc = sp.score(i);
          if (sc < 0) continue;
          const uint32_t k = key(sc);
          if (pass == 0)
            local[k >> 16] += sp.weight(i);
          else if ((k >> 16) == high)
            local[k & 0xffffu] += sp.weight(i);
        }
      }
#pragma omp critical
      for (size_t b = 0; b < hist.size(); ++b) hist[b] += local[b];
    }
    if (pass == 0) {
      int64_t total = 0;
      for (int64_t h : hist) total += h;
      if (static_cast<double>(total) <= o.target) {
        keep_all();
        return total;
      }
    }
    const int bin = find_bin(hist, o.target, acc);
    boundary = pass == 0 ? static_cast<uint32_t>(bin) : (high << 16) | static_cast<uint32_t>(bin);
  }

  // Keep every unit above the boundary key; units at the boundary key (ties)
  // are decided in order afterwards, chunk by chunk.
  std::vector<uint8_t> has_ties(static_cast<size_t>(nchunks), 0);
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < nchunks; ++c) {
    S& sp = spans[chunks[c].span];
    for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) {
      const float sc = sp.score(i);
      const uint32_t k = key(sc);
      sp.set(i, sc >= 0 && k > boundary);
      if (sc >= 0 && k == boundary) has_ties[static_cast<size_t>(c)] = 1;
    }
  }
  double cum = acc;
  bool done = false;
  for (int64_t c = 0; c < nchunks && !done; ++c) {
    if (!has_ties[static_cast<size_t>(c)]) continue;
    S& sp = spans[chunks[c].span];
    for (int64_t i = chunks[c].begin; i < chunks[c].end && !done; ++i) {
      const float sc = sp.score(i);
      if (sc < 0 || key(sc) != boundary) continue;
      const int64_t w = sp.weight(i);
      if (cum + static_cast<double>(w) >= o.target) {
        done = true;
        if (!keep_boundary(cum, w, o)) break;
      }
      sp.set(i, true);
      cum += static_cast<double>(w);
    }
  }
  return static_cast<int64_t>(cum);
}

}  // namespace bsp
