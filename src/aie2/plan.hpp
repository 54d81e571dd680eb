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

// The work bound (bsp-schedule(1), LIMITS): loop iterations (tile x
// channel chunk x input pass, T * J * K) per core, one stage's or the whole
// schedule's summed. The generated program, its timing (bsp estimate) and
// simulation grow with it; VGG-16 at 224x224 on npu1 needs about 2,500,
// and 65,536 take bsp estimate about 20 s and 1.5 GB.
constexpr int64_t kMaxIterations = int64_t{1} << 16;

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
// the cycles of one COMP with these operands. nnz: stored 8x8 blocks (conv);
// pairs: a sparse24 conv's compressed unit pairs, -1 for any other.
int64_t comp_cycles(const Hardware& hw, DType t, const Stage& st, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz, int64_t pairs = -1);
// The same from a kernel declaration (what the estimator sees); rows: the
// window rows the COMP sums (a row pass of kKRows), -1 the kernel's kh.
int64_t comp_cycles(const Hardware& hw, DType t, const KernelDecl& k, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz, int64_t rows = -1, int64_t pairs = -1);

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

// An average pool whose window is its whole input map (one output pixel, no
// padding or dilation: a global average, a squeeze-excitation pool). When
// one core cannot hold the map (two input slots of H x W x its channels),
// it sums the window in K passes of d.ci_t input rows each (Decision::ci_t;
// 0: one pass), into an accumulator (int32 for int8, fp32 for fp32), and
// divides (int8: rescales) the whole window's sum in the last pass.
inline bool whole_map_pool(const Stage& st) {
  return st.kind == StageKind::Pool && !st.pool_max && st.Ho == 1 && st.Wo == 1 && st.kh == st.H && st.kw == st.W &&
         st.pt == 0 && st.pl == 0 && st.pb == 0 && st.pr == 0 && st.dh == 1 && st.dw == 1 && st.in.size() == 1;
}
// The input rows per pass of a pool summed in row passes, 0 for every other
// stage and plan.
inline int64_t pass_rows(const Stage& st, const Decision& d) {
  return whole_map_pool(st) && d.ci_t > 0 && d.ci_t < st.H ? d.ci_t : 0;
}

// Spatial grid for ps parts: ny x nx minimising the largest rectangle; false
// when no factorisation fits the output.
bool spatial_grid(int64_t Ho, int64_t Wo, int64_t ps, int64_t& ny, int64_t& nx);

// [a * n / parts, (a + 1) * n / parts): the even split used for rectangles.
inline int64_t split_at(int64_t n, int64_t parts, int64_t a) { return a * n / parts; }

}  // namespace bsp::aie2
