// Internals of the scheduler: deriving a StagePlan from a Decision (buffers,
// weight chunks, work per core) and its analytic cost, which the search
// minimises. The estimator (estimate.hpp) later times the generated program
// itself; this model only ranks candidates.
#pragma once

#include <limits>
#include <vector>

#include "aie2/isa.hpp"
#include "aie2/schedule.hpp"

namespace bsp::aie2 {

struct PlanContext {
  const Hardware& hw;
  DType dtype;
  const Stage& st;
  const Occupancy& occ;         // conv only
  std::vector<Place> in_place;  // per stage input
  Place out_place, add_place;
  int64_t memtile_free;  // memtile bytes not taken by resident activations during the stage
};

// Output-channel boundaries for pc parts of J chunks each: pc * J contiguous
// groups of 8-channel block rows with balanced work (stored blocks for a
// sparse conv, channels otherwise). Returns pc * J + 1 boundaries. With
// `rows`, a sparse conv may also trade single block rows between the groups
// to even them out further: *rows receives the row order the boundaries
// then cut (Decision::rows; empty when the contiguous groups stay).
std::vector<int64_t> balanced_groups(const PlanContext& c, int64_t pc, int64_t J, std::vector<int64_t>* rows = nullptr);

// Splits w into `parts` contiguous non-empty groups (parts <= w.size())
// minimising the largest sum; returns parts + 1 boundaries into w.
std::vector<int64_t> linear_partition(const std::vector<int64_t>& w, int64_t parts);

// Fills every derived field of `p` from p.d. Returns false (with `why`) when
// the plan does not fit core or memtile memory or the locks, or, given
// must_beat, as soon as its estimate is sure to be >= must_beat (p is then
// left incomplete). same_split: a plan derived in the same context with the
// same split of the work (p.d.ps, ny, nx, pc, cbounds, rows, ci_t), whose
// rectangles, weight chunks, channel runs and work per core are copied, not
// derived again.
bool derive_plan(const PlanContext& c, StagePlan& p, std::string* why = nullptr,
                 double must_beat = std::numeric_limits<double>::infinity(), const StagePlan* same_split = nullptr);

// The padded multiply-accumulates (what the vector unit really executes) and
// the cycles of one COMP with these operands. nnz: stored 8x8 blocks (conv).
int64_t comp_cycles(const Hardware& hw, DType t, const Stage& st, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz);
// The same from a kernel declaration (what the estimator sees).
int64_t comp_cycles(const Hardware& hw, DType t, const KernelDecl& k, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz);

// A 1x1 convolution with stride and no padding whose input stays in the
// memtiles reads only every stride-th row and column: the memtile DMA sends
// just those (LOADFMS), so a core's input tile is its output tile's size.
inline bool subsampled_input(const PlanContext& c) {
  const Stage& st = c.st;
  return st.kind == StageKind::Conv && st.kh == 1 && st.kw == 1 && (st.sh > 1 || st.sw > 1) && st.pt == 0 &&
         st.pl == 0 && st.pb == 0 && st.pr == 0 && st.in.size() == 1 && !st.in[0].flat && st.sh < 256 && st.sw < 256 &&
         c.in_place[0] == Place::Memtile;
}
// Input rows and columns of a tile of h x w outputs.
inline int64_t in_rows(const PlanContext& c, int64_t h) {
  const bool window = c.st.kind == StageKind::Conv || c.st.kind == StageKind::Pool;
  return window && !subsampled_input(c) ? c.st.ih(h) : h;
}
inline int64_t in_cols(const PlanContext& c, int64_t w) {
  const bool window = c.st.kind == StageKind::Conv || c.st.kind == StageKind::Pool;
  return window && !subsampled_input(c) ? c.st.iw(w) : w;
}

// Spatial grid for ps parts: ny x nx minimising the largest rectangle; false
// when no factorisation fits the output.
bool spatial_grid(int64_t Ho, int64_t Wo, int64_t ps, int64_t& ny, int64_t& nx);

// [a * n / parts, (a + 1) * n / parts): the even split used for rectangles.
inline int64_t split_at(int64_t n, int64_t parts, int64_t a) { return a * n / parts; }

}  // namespace bsp::aie2
