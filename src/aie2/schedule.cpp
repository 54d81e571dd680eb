#include "aie2/schedule.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>

#include "aie2/isa.hpp"
#include "aie2/plan.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/shapes.hpp"
#include "sparsity/blocks.hpp"

namespace bsp::aie2 {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align(int64_t x, int64_t a) { return (x + a - 1) / a * a; }
}  // namespace

int64_t param_bytes_per_channel(DType) { return 12; }

int64_t chunk_bytes(DType t, bool sparse, int64_t channels, int64_t block_rows, int64_t nnz, int64_t kh, int64_t kw) {
  int64_t bytes = align(channels * param_bytes_per_channel(t), 4);
  if (sparse) bytes += align(2 * block_rows + 2 * nnz, 4);
  bytes += nnz * kBlock * kBlock * kh * kw * dtype_bytes(t);
  return align(bytes, 4);
}

int64_t chunk_bytes_24(int64_t channels, int64_t block_rows, int64_t nnz, int64_t pairs) {
  return align(channels * param_bytes_per_channel(DType::Int8), 4) + align(2 * block_rows + 2 * nnz, 4) +
         pairs * kPairBytes;
}

int64_t rows_pairs(const Occupancy& o, const Decision& d, int64_t r0, int64_t r1, int64_t b0, int64_t b1, int64_t taps) {
  int64_t n = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t x = block_row(d, r);
    n += (o.count(x, x + 1, b0, b1) * taps + 1) / 2;
  }
  return n;
}

int64_t rows_count(const Occupancy& o, const Decision& d, int64_t r0, int64_t r1, int64_t b0, int64_t b1) {
  if (d.rows.empty()) return o.count(r0, r1, b0, b1);
  int64_t n = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t x = d.rows[static_cast<size_t>(r)];
    n += o.count(x, x + 1, b0, b1);
  }
  return n;
}

std::vector<ChannelRun> channel_runs(const Decision& d, int64_t c0, int64_t c1) {
  std::vector<ChannelRun> v;
  for (int64_t c = c0; c < c1;) {
    // Up to the end of this block row (or c1), then merge with the previous run when consecutive.
    const int64_t e = std::min(c1, (c / kBlock + 1) * kBlock);
    const int64_t oc = out_channel(d, c);
    if (!v.empty() && v.back().c0 + v.back().n == oc)
      v.back().n += e - c;
    else
      v.push_back({c - c0, oc, e - c});
    c = e;
  }
  if (v.empty()) v.push_back({0, c0, 0});
  return v;
}

namespace {
// h mixed with a block-bit vector, 64 bits (blocks) a word.
uint64_t mix_bits(uint64_t h, const std::vector<uint8_t>& bits) {
  for (size_t i = 0; i < bits.size(); i += 64) {
    uint64_t word = 0;
    for (size_t b = 0; b < 64 && i + b < bits.size(); ++b) word |= static_cast<uint64_t>(bits[i + b]) << b;
    h = mix64(h ^ word);
  }
  return h;
}
}  // namespace

uint64_t schedule_fingerprint(const Lowered& g, const std::vector<Occupancy>& occ, DType t) {
  uint64_t h = mix64(0x5ced01e + static_cast<uint64_t>(t));
  auto add = [&](int64_t v) { h = mix64(h ^ static_cast<uint64_t>(v)); };
  for (size_t s = 0; s < g.stages.size(); ++s) {
    const Stage& st = g.stages[s];
    add(static_cast<int64_t>(st.kind));
    add(static_cast<int64_t>(hash_name(st.name)));
    for (int64_t v : {st.H, st.W, st.Cin, st.Ho, st.Wo, st.Cout, st.kh, st.kw, st.sh, st.sw, st.dh, st.dw, st.pt,
                      st.pl, st.pb, st.pr, static_cast<int64_t>(st.relu), static_cast<int64_t>(st.add.has_value())})
      add(v);
    if (st.groups != 1 || st.affine) {
      add(st.groups);
      add(static_cast<int64_t>(st.affine));
    }
    if (st.clip)
      for (double b : {st.clip_lo, st.clip_hi}) add(static_cast<int64_t>(std::bit_cast<uint64_t>(b)));
    if (st.fn != EltFn::None) {
      add(static_cast<int64_t>(st.fn));
      add(static_cast<int64_t>(st.bcast));
      for (double b : {st.alpha, st.beta}) add(static_cast<int64_t>(std::bit_cast<uint64_t>(b)));
    }
    if (st.act) {  // only then: the fingerprints of stages without a rule stay what they were
      add(static_cast<int64_t>(std::bit_cast<uint64_t>(st.act->threshold)));
      for (int64_t b : st.act->block) add(b);
    }
    const Occupancy& o = occ[s];
    add(o.rows);
    add(o.cols);
    if (o.sparse24) add(0x2424);  // only then: other fingerprints stay what they were
    h = mix_bits(h, o.bits);
  }
  for (const Storage& s : g.storages) {
    add(s.H);
    add(s.W);
    add(s.C);
  }
  return h;
}

namespace {

// Distinct values of ceil(n / k) for k = 1..n, largest first, at most `most`
// of them (spread over the range).
std::vector<int64_t> tile_options(int64_t n, size_t most) {
  // In O(sqrt(n)) steps (a map may be 2^24 rows): from k, every k' up to
  // (n - 1) / (x - 1) gives the same x.
  std::vector<int64_t> v;
  for (int64_t k = 1; k <= n;) {
    const int64_t x = ceil_div(n, k);
    v.push_back(x);
    k = x == 1 ? n + 1 : (n - 1) / (x - 1) + 1;
  }
  if (v.size() <= most) return v;
  std::vector<int64_t> out;
  for (size_t i = 0; i < most; ++i) out.push_back(v[i * (v.size() - 1) / (most - 1)]);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// 1, 2, 4, ... up to n, and n itself.
std::vector<int64_t> geometric(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t x = 1; x < n; x *= 2) v.push_back(x);
  v.push_back(n);
  return v;
}

// Weight slots a core needs at least: one when its weights arrive once (one
// chunk, one pass), else two.
int64_t fewest_w_slots(const PlanContext& c, const StagePlan& base) {
  return c.st.kind == StageKind::Conv && base.J == 1 && base.K == 1 ? 1 : 2;
}

int64_t core_bytes_needed(const PlanContext& c, const StagePlan& base, int64_t th, int64_t tw, int64_t w_slots) {
  const Stage& st = c.st;
  const int64_t es = dtype_bytes(c.dtype);
  const bool conv = st.kind == StageKind::Conv;
  int64_t co_max = 0;
  for (size_t g = 1; g < base.d.cbounds.size(); ++g) co_max = std::max(co_max, base.d.cbounds[g] - base.d.cbounds[g - 1]);
  const int64_t cin = conv ? std::min(base.d.ci_t, st.Cin) : co_max;
  const int64_t rows = pass_rows(st, base.d);
  const int64_t ih = rows > 0 ? rows : in_rows(c, th), iw = in_cols(c, tw);
  int64_t n = align(c.hw.core_reserved, 64);
  n += static_cast<int64_t>(st.in.size()) * 2 * align(ih * iw * cin * es, 64);
  if (conv) n += w_slots * align(base.chunk_max, 64);
  const int64_t out = 2 * align(th * tw * co_max * es, 64);
  n += out * (st.add ? 2 : 1);
  if (base.K > 1) n += align(th * tw * co_max * kAccBytes, 64);
  return n;
}

// How far (relative) above the best analytic cost a runner-up may be.
constexpr double kTuneWithin = 0.1;

// The (spatial parts, channel parts) splits of N cores worth trying: every
// core, and for convolutions also no more weight streams than the memtiles'
// MM2S channels leave beside the input streams (a channel shared by two
// weight streams halves both). fixed: the paper's split, output width
// across the columns (at most one column per output column), channels
// across the rows.
std::vector<std::pair<int64_t, int64_t>> core_splits(const PlanContext& c, bool fixed, int64_t N) {
  const Hardware& hw = c.hw;
  const Stage& st = c.st;
  const int64_t positions = st.Ho * st.Wo;
  const bool conv = st.kind == StageKind::Conv;
  const int64_t groups = st.kind == StageKind::Softmax ? 1 : ceil_div(st.Cout, kBlock);
  std::set<int64_t> ps_set;
  for (int64_t d = 1; d <= N; ++d)
    if (N % d == 0 && d <= positions) ps_set.insert(d);
  ps_set.insert(std::min(N, positions));
  for (int64_t pc = 1; pc <= std::min(N, groups); pc *= 2) ps_set.insert(std::max<int64_t>(1, std::min(positions, N / pc)));
  if (fixed) {
    ps_set.clear();
    ps_set.insert(std::max<int64_t>(1, std::min({hw.cols, st.Wo, N})));
  }
  std::vector<std::pair<int64_t, int64_t>> splits;
  for (int64_t ps : ps_set) {
    int64_t pc = st.kind == StageKind::Softmax ? 1 : std::min(N / ps, groups);
    if (fixed && st.kind != StageKind::Softmax) pc = std::min({hw.rows, groups, std::max<int64_t>(1, N / ps)});
    splits.push_back({ps, pc});
    const int64_t pc_ch = hw.cols * hw.memtile_mm2s - ps;
    if (!fixed && conv && pc_ch >= 1 && pc_ch < pc) splits.push_back({ps, pc_ch});
  }
  return splits;
}

// Input channels per pass of a convolution, largest first (1, 2, 4, ...
// passes of whole 8-channel blocks); for a whole-map pool one pass (0), then
// input rows per pass for 2, 4, ... passes (derive_plan takes them only when
// one pass does not fit); {0} for other stages.
std::vector<int64_t> pass_options(const Stage& st) {
  if (whole_map_pool(st)) {
    std::vector<int64_t> v{0};
    for (int64_t K = 2; K < 2 * st.H; K *= 2) {
      const int64_t r = ceil_div(st.H, std::min(K, st.H));
      if (r < st.H && v.back() != r) v.push_back(r);
    }
    return v;
  }
  if (st.kind != StageKind::Conv) return {0};
  if (st.Cin <= kBlock) return {st.Cin};
  std::vector<int64_t> v;
  const int64_t kb = ceil_div(st.Cin, kBlock);
  for (int64_t K : geometric(kb)) {
    int64_t ci = kBlock * ceil_div(kb, K);
    if (v.empty() || v.back() != ci) v.push_back(ci);
  }
  return v;
}

// For split d (ps, pc, grid set): the feasible (channel chunks J, input
// pass) pairs worth trying, as probe plans with 1x1 tiles. For the three
// fewest J that fit, the two coarsest input passes that fit, and when
// neither takes the whole rh x rw rectangle as one tile, the coarsest that
// does: one tile streams each core's weights once.
std::vector<StagePlan> probe_splits(const PlanContext& c, bool fixed, Decision d, const std::vector<int64_t>& ci_options,
                                    int64_t rh, int64_t rw, std::string& why) {
  const Stage& st = c.st;
  const bool conv = st.kind == StageKind::Conv;
  const int64_t groups = st.kind == StageKind::Softmax ? 1 : ceil_div(st.Cout, kBlock);
  const int64_t Jmax = std::max<int64_t>(1, ceil_div(groups, d.pc));
  std::vector<StagePlan> probes;
  int feasible_js = 0;
  for (int64_t J : geometric(Jmax)) {
    if (feasible_js >= 3) break;
    d.cbounds = balanced_groups(c, d.pc, J, fixed ? nullptr : &d.rows);
    int fits = 0;
    bool whole = false;
    for (size_t ki = 0; ki < ci_options.size() && fits < 3 && !(fits == 2 && whole); ++ki) {
      d.ci_t = ci_options[ki];
      d.th = d.tw = 1;
      d.order = 'A';
      d.w_resident = false;
      StagePlan probe;
      probe.d = d;
      std::string w;
      bool fit = derive_plan(c, probe, &w);
      // One chunk in one pass is loaded once with chunks outer ('B') and
      // then needs one weight slot where 'A' reloads it into two.
      if (!fit && conv && static_cast<int64_t>(d.cbounds.size()) - 1 == d.pc && ci_options[ki] >= st.Cin) {
        probe.d.order = 'B';
        fit = derive_plan(c, probe, &w);
      }
      if (!fit) {
        why = w;
        continue;
      }
      const bool one_tile = core_bytes_needed(c, probe, rh, rw, fewest_w_slots(c, probe)) <= c.hw.core_memory;
      if (fits == 2 && !one_tile) continue;
      ++fits;
      whole = whole || one_tile;
      probes.push_back(std::move(probe));
    }
    if (fits) ++feasible_js;
  }
  return probes;
}

// Tiles for a probe: for each height the widest that fits the core; then
// four sizes from the largest down (smaller tiles pipeline better).
// Weights loaded once per stage (one chunk, one pass, kept across the
// tiles) need one slot instead of two, which leaves room for larger tiles.
std::vector<std::pair<int64_t, int64_t>> tile_candidates(const PlanContext& c, const StagePlan& probe, int64_t rh,
                                                         int64_t rw) {
  std::vector<std::pair<int64_t, int64_t>> tiles;
  for (int64_t w_slots : {int64_t(2), int64_t(1)}) {
    if (w_slots < fewest_w_slots(c, probe)) continue;
    std::vector<std::pair<int64_t, int64_t>> fit;
    for (int64_t th : tile_options(rh, 10))
      for (int64_t tw : tile_options(rw, 16))
        if (core_bytes_needed(c, probe, th, tw, w_slots) <= c.hw.core_memory) {
          fit.push_back({th, tw});
          break;
        }
    if (fit.empty()) continue;
    std::sort(fit.begin(), fit.end(), [](auto a, auto b) { return a.first * a.second > b.first * b.second; });
    const int64_t top = fit.front().first * fit.front().second;
    for (int64_t target : {top, top / 2, top / 4, top / 8}) {
      if (target < 1) break;
      // The fitting tile with the area closest to the target, halving the
      // width of the largest when nothing is close.
      std::pair<int64_t, int64_t> pick = fit.front();
      int64_t err = std::numeric_limits<int64_t>::max();
      for (auto t : fit) {
        int64_t e = std::llabs(t.first * t.second - target);
        if (e < err) err = e, pick = t;
      }
      if (pick.first * pick.second > 2 * target && pick.second > 1) {
        int64_t f = ceil_div(pick.first * pick.second, target);
        pick.second = std::max<int64_t>(1, ceil_div(pick.second, f));
      }
      if (std::find(tiles.begin(), tiles.end(), pick) == tiles.end()) tiles.push_back(pick);
    }
  }
  return tiles;
}

// The best plans found so far: with keep 1 only the best (swapped in, no
// copy: the planner's hot loop), with keep > 1 the best `keep` within
// kTuneWithin of the fastest, fastest first (the runners-up of
// tune_schedule).
class BestPlans {
 public:
  explicit BestPlans(size_t keep) : keep_(keep) {}
  // What a candidate must beat to be kept.
  double bound() const {
    if (keep_ == 1) return best_t_;
    // Runners-up only within kTuneWithin of the best: farther ones are
    // seldom faster when timed, and the bound keeps the pruning.
    const double near =
        top_.empty() ? std::numeric_limits<double>::infinity() : top_.front().est_seconds * (1 + kTuneWithin);
    return top_.size() < keep_ ? near : std::min(near, top_.back().est_seconds);
  }
  // Offers a derived candidate; with keep 1 a kept one is swapped with
  // `best` (p then holds the old best, which its next use overwrites).
  void offer(StagePlan& p, StagePlan& best) {
    if (keep_ > 1) {
      if (p.est_seconds < bound()) {
        auto at = std::find_if(top_.begin(), top_.end(), [&](const StagePlan& q) { return p.est_seconds < q.est_seconds; });
        top_.insert(at, p);
        if (top_.size() > keep_) top_.pop_back();
        // a new best moves the window
        while (top_.size() > 1 && top_.back().est_seconds >= top_.front().est_seconds * (1 + kTuneWithin)) top_.pop_back();
        found_ = true;
      }
    } else if (p.est_seconds < best_t_) {
      best_t_ = p.est_seconds;
      std::swap(best, p);
      found_ = true;
    }
  }
  bool finish(StagePlan& best, std::vector<StagePlan>* runners_up) {
    if (keep_ > 1 && found_) {
      best = std::move(top_.front());
      if (runners_up) runners_up->assign(std::make_move_iterator(top_.begin() + 1), std::make_move_iterator(top_.end()));
    }
    return found_;
  }

 private:
  size_t keep_;
  std::vector<StagePlan> top_;
  double best_t_ = std::numeric_limits<double>::infinity();
  bool found_ = false;
};

// The best plan for one stage, or false when nothing fits. For every split
// of the cores (spatial parts x channel parts) it finds the fewest channel
// chunks J and input passes K that fit, tries those and the next finer ones
// (and the fewest passes that hold the whole rectangle in one tile),
// with tiles from the largest that fits down to an eighth of it (smaller
// tiles pipeline better), both loop orders and, for convolutions, weights
// streamed or resident in the memtile; the analytic time decides.
bool choose_plan(const PlanContext& c, bool fixed, StagePlan& best, std::string& why, int64_t N, size_t keep = 1,
                 std::vector<StagePlan>* runners_up = nullptr) {
  const Stage& st = c.st;
  const bool conv = st.kind == StageKind::Conv;
  BestPlans found(keep);
  why = "nothing fits";
  const std::vector<int64_t> ci_options = pass_options(st);
  for (auto [ps, pc] : core_splits(c, fixed, N)) {
    Decision d;
    d.ps = ps;
    d.pc = pc;
    if (fixed) {
      d.ny = 1, d.nx = ps;  // columns of the output only
    } else if (!spatial_grid(st.Ho, st.Wo, ps, d.ny, d.nx)) {
      continue;
    }
    const int64_t rh = ceil_div(st.Ho, d.ny), rw = ceil_div(st.Wo, d.nx);
    // One candidate plan reused for every tile, order and residency below:
    // derive_plan sets each of its fields, and keeping the vectors' storage
    // saves an allocation per field and candidate (the planner's hot loop).
    StagePlan p;
    std::string w;
    for (const StagePlan& probe : probe_splits(c, fixed, d, ci_options, rh, rw, why))
      for (auto [th, tw] : tile_candidates(c, probe, rh, rw)) {
        const int64_t T = ceil_div(rh, th) * ceil_div(rw, tw);
        // The work bound (kMaxIterations): a plan whose loops run longer is
        // not considered (the probes' 1x1 tiles are only a feasibility test).
        int64_t iterations;
        if (__builtin_mul_overflow(T, probe.J, &iterations) || __builtin_mul_overflow(iterations, probe.K, &iterations) ||
            iterations > kMaxIterations) {
          why = fmt::format("its largest tiles need more than {} loop iterations per core (bsp-schedule(1), LIMITS)",
                            kMaxIterations);
          continue;
        }
        for (char order : {'A', 'B'}) {
          // With one tile the orders are the same loop; with one chunk 'B'
          // keeps it across the tiles where 'A' reloads it.
          if (order == 'B' && T == 1) continue;
          if (order == 'B' && probe.J == 1 && probe.K > 1) continue;  // the same loop as 'A'
          for (bool wres : {false, true}) {
            if (wres && (!conv || (order == 'B' && probe.K == 1))) continue;  // nothing to reuse
            p.d = probe.d;
            p.d.th = th, p.d.tw = tw, p.d.order = order, p.d.w_resident = wres;
            if (!derive_plan(c, p, &w, found.bound(), &probe)) {
              why = w;
              continue;
            }
            found.offer(p, best);
          }
        }
      }
  }
  return found.finish(best, runners_up);
}

PlanContext context(const Schedule& S, size_t s, int64_t memtile_free) {
  const Stage& st = S.graph.stages[s];
  PlanContext c{S.hw, S.dtype, st, S.occupancy[s], {}, Place::DDR, Place::DDR, memtile_free};
  for (const View& v : st.in) c.in_place.push_back(S.storages[static_cast<size_t>(v.storage)].place);
  c.out_place = S.storages[static_cast<size_t>(st.out.storage)].place;
  if (st.add) c.add_place = S.storages[static_cast<size_t>(st.add->storage)].place;
  return c;
}

bool live_at(const Storage& s, int stage) { return s.first_stage <= stage && stage <= s.last_stage; }

// Bytes of the resident area in use (its top address) during `stage`.
int64_t resident_top(const Schedule& S, int stage) {
  int64_t top = 0;
  for (size_t i = 0; i < S.storages.size(); ++i) {
    const StoragePlan& p = S.storages[i];
    if (p.place == Place::Memtile && live_at(S.graph.storages[i], stage)) top = std::max(top, p.memtile_addr + p.band_bytes);
  }
  return top;
}

// First-fit placement of intervals [lo, hi] (stage lifetimes) into an address
// range: returns the lowest aligned address where `bytes` does not collide
// with a placed block alive at the same time, or -1 past `limit`.
struct Placed {
  int64_t addr, bytes;
  int lo, hi;
};
int64_t first_fit(const std::vector<Placed>& placed, int64_t bytes, int lo, int hi, int64_t limit) {
  std::vector<std::pair<int64_t, int64_t>> busy;
  for (const Placed& p : placed)
    if (!(p.hi < lo || hi < p.lo)) busy.push_back({p.addr, p.addr + p.bytes});
  std::sort(busy.begin(), busy.end());
  int64_t at = 0;
  for (auto [a, b] : busy) {
    if (at + bytes <= a) break;
    at = std::max(at, align(b, 64));
  }
  if (limit >= 0 && at + bytes > limit) return -1;
  return at;
}

// Keeps activations in the memtiles: each resident storage is cut into row
// bands over the memtiles; the resident area is the lower `fraction` of the
// memtile, the rest stays for the stages' staging buffers.
void plan_residency(Schedule& S, const std::vector<bool>& forbid, double fraction) {
  const int64_t es = dtype_bytes(S.dtype);
  const int64_t cols = S.hw.cols;
  const int64_t limit = static_cast<int64_t>(static_cast<double>(S.hw.memtile_memory) * fraction) / 64 * 64;
  std::vector<Placed> placed;
  // Largest first: big activations (the costliest to spill) get placed
  // before small ones fragment the area.
  auto band_bytes = [&](const Storage& s) { return align(ceil_div(s.H, cols) * s.W * s.C * es, 64); };
  std::vector<size_t> order(S.graph.storages.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return band_bytes(S.graph.storages[a]) > band_bytes(S.graph.storages[b]);
  });
  for (size_t i : order) {
    const Storage& s = S.graph.storages[i];
    StoragePlan& p = S.storages[i];
    p = StoragePlan{};
    if (s.is_input || s.is_output || forbid[i]) continue;
    const int64_t band_rows = ceil_div(s.H, cols);
    const int64_t bytes = band_bytes(s);
    int64_t at = first_fit(placed, bytes, s.first_stage, s.last_stage, limit);
    if (at < 0) continue;
    placed.push_back({at, bytes, s.first_stage, s.last_stage});
    p.place = Place::Memtile;
    p.band_rows = band_rows;
    p.memtile_addr = at;
    p.band_bytes = bytes;
  }
}

}  // namespace

// DDR: the weights image from address 0 in stage order, then the activations
// that are not resident, placed by lifetime.
void layout_ddr(Schedule& S) {
  int64_t at = 0;
  for (StagePlan& p : S.stages)
    for (auto& part : p.chunks)
      for (Chunk& ch : part) {
        ch.ddr_addr = at;
        at = align(at + ch.bytes, 64);
      }
  S.ddr_const_bytes = at;
  const int64_t es = dtype_bytes(S.dtype);
  const int n_stages = static_cast<int>(S.graph.stages.size());
  std::vector<Placed> placed;
  int64_t top = 0;
  for (size_t i = 0; i < S.graph.storages.size(); ++i) {
    const Storage& s = S.graph.storages[i];
    StoragePlan& p = S.storages[i];
    if (p.place != Place::DDR) continue;
    const int64_t bytes = align(s.elements() * es, 64);
    int lo = s.is_input ? -1 : s.first_stage, hi = s.is_output ? n_stages : s.last_stage;
    int64_t a = first_fit(placed, bytes, lo, hi, -1);
    placed.push_back({a, bytes, lo, hi});
    p.ddr_addr = S.ddr_const_bytes + a;
    top = std::max(top, a + bytes);
  }
  S.ddr_bytes = S.ddr_const_bytes + top;
}

namespace {

Schedule base_schedule(const Model& m, const Hardware& hw, DType dtype, bool dense = false) {
  Schedule S;
  S.hw = hw;
  S.dtype = dtype;
  S.graph = lower(m);
  std::vector<Occupancy> occ(S.graph.stages.size());
  for (size_t s = 0; s < S.graph.stages.size(); ++s) {
    const Stage& st = S.graph.stages[s];
    if (st.kind == StageKind::Conv) {
      occ[s] = block_occupancy(st, m, dense);
      // The sparse operand: int8 only (aie_api's sparse int8 x int8 mode),
      // not for the dense counterpart nor a first layer of fewer input
      // channels than a vector (packed differently, cycles_of).
      occ[s].sparse24 = !dense && dtype == DType::Int8 && hw.macs_int8_sparse > 0 && st.groups == 1 && !st.affine &&
                        st.Cin >= hw.vec_cin && two_of_four(st, m);
    }
  }
  S.occupancy.set(std::move(occ));
  S.storages.assign(S.graph.storages.size(), StoragePlan{});
  S.fingerprint = schedule_fingerprint(S.graph, S.occupancy.all(), dtype);
  return S;
}

}  // namespace

namespace {

// A stage's plan depends only on its context (the places of its operands and
// the memtile bytes left to it); make_schedule plans the same stages under
// two residency fractions (and again after each spill), most of them in the
// same context: the plans already made are kept here per stage and reused.
struct PlannedStage {
  std::vector<Place> in_place;
  Place out_place, add_place;
  int64_t memtile_free;
  bool fits;
  std::string why;
  StagePlan plan;
  std::vector<StagePlan> runners_up;  // ScheduleOptions::tune > 1: the next best plans
};
using PlanMemo = std::vector<std::vector<PlannedStage>>;  // [stage][contexts seen]

bool same_context(const PlannedStage& e, const PlanContext& c) {
  return e.in_place == c.in_place && e.out_place == c.out_place && e.add_place == c.add_place &&
         e.memtile_free == c.memtile_free;
}

// What a stage's plan depends on besides the hardware: its geometry, kind
// and operands' shapes, its weight blocks and its context. Stages with the
// same key (a dense network's repeated blocks) get the same plan. A sparse
// stage's blocks enter as a hash (a VGG-16 fc has 1.6 M of them); a match
// is confirmed on the blocks themselves (same_blocks).
std::vector<int64_t> plan_key(const Stage& st, const Occupancy& occ, const PlanContext& c) {
  std::vector<int64_t> k = {static_cast<int64_t>(st.kind), st.H, st.W, st.Cin, st.Ho, st.Wo, st.Cout, st.kh, st.kw,
                            st.sh, st.sw, st.dh, st.dw, st.pt, st.pl, st.pb, st.pr, st.relu, st.pool_max,
                            st.count_include_pad, st.add.has_value(), static_cast<int64_t>(st.in.size()),
                            static_cast<int64_t>(st.fn), st.bcast, st.groups, st.affine, occ.sparse24};
  auto view = [&](const View& v) { k.insert(k.end(), {v.H, v.W, v.C, v.flat}); };
  for (const View& v : st.in) view(v);
  if (st.add) view(*st.add);
  view(st.out);
  for (Place pl : c.in_place) k.push_back(static_cast<int64_t>(pl));
  k.insert(k.end(), {static_cast<int64_t>(c.out_place), static_cast<int64_t>(c.add_place), c.memtile_free, occ.rows,
                     occ.cols, occ.nnz});
  if (!occ.dense()) k.push_back(static_cast<int64_t>(mix_bits(0x0cc, occ.bits)));
  return k;
}

bool same_blocks(const Occupancy& a, const Occupancy& b) { return a.dense() == b.dense() && (a.dense() || a.bits == b.bits); }

// Plans every stage with the lower `fraction` of each memtile for resident
// activations, spilling to DDR what does not fit.
Schedule plan_stages(const Schedule& base, const ScheduleOptions& opt, double fraction, PlanMemo& memo,
                     std::vector<std::vector<StagePlan>>& runners_up) {
  Schedule S = base;
  const Hardware& hw = S.hw;
  const size_t n = S.graph.stages.size();
  memo.resize(n);
  runners_up.assign(n, {});
  const size_t keep = static_cast<size_t>(std::max(1, opt.tune));
  std::vector<bool> forbid(S.graph.storages.size(), !opt.resident);
  for (int attempt = 0;; ++attempt) {
    plan_residency(S, forbid, fraction);
    S.stages.assign(n, StagePlan{});
    // Given the residency plan the stages are planned independently: in
    // parallel; the first stage that fits nowhere decides what to spill.
    std::vector<std::string> whys(n);
    std::vector<char> fits(n, 0);
    // Plans made for an earlier stage with the same key (plan_key).
    std::mutex shared_lock;
    std::vector<std::pair<std::vector<int64_t>, size_t>> shared;  // key, stage planned
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t s = 0; s < n; ++s) {
      PlanContext c = context(S, s, hw.memtile_memory - resident_top(S, static_cast<int>(s)));
      auto seen = std::find_if(memo[s].begin(), memo[s].end(), [&](const PlannedStage& e) { return same_context(e, c); });
      if (seen != memo[s].end()) {
        S.stages[s] = seen->plan;
        fits[s] = seen->fits;
        whys[s] = seen->why;
        runners_up[s] = seen->runners_up;
        continue;
      }
      std::vector<int64_t> key = plan_key(S.graph.stages[s], S.occupancy[s], c);
      {
        std::lock_guard<std::mutex> g(shared_lock);
        auto same = std::find_if(shared.begin(), shared.end(), [&](const auto& e) {
          return e.first == key && same_blocks(S.occupancy[e.second], S.occupancy[s]);
        });
        if (same != shared.end()) {
          const PlannedStage& e = memo[same->second].back();
          S.stages[s] = e.plan;
          fits[s] = e.fits;
          whys[s] = e.why;
          runners_up[s] = e.runners_up;
          memo[s].push_back({c.in_place, c.out_place, c.add_place, c.memtile_free, e.fits, e.why, e.plan, e.runners_up});
          continue;
        }
      }
      // Fewer cores when nothing fits all of them (too many streams for the
      // locks and channels): halve until something does.
      bool ok = false;
      for (int64_t cores = hw.cores(); cores >= 1 && !ok; cores /= 2)
        ok = choose_plan(c, opt.fixed_mapping, S.stages[s], whys[s], cores, keep, &runners_up[s]);
      fits[s] = ok;
      std::lock_guard<std::mutex> g(shared_lock);
      memo[s].push_back({c.in_place, c.out_place, c.add_place, c.memtile_free, ok, whys[s], S.stages[s], runners_up[s]});
      shared.push_back({std::move(key), s});
    }
    int bad = -1;
    std::string why;
    for (size_t s = 0; s < n && bad < 0; ++s)
      if (!fits[s]) bad = static_cast<int>(s), why = whys[s];
    if (bad < 0) break;
    // Spill the resident activations alive at the failing stage and retry.
    bool spilled = false;
    for (size_t i = 0; i < S.graph.storages.size(); ++i)
      if (S.storages[i].place == Place::Memtile && live_at(S.graph.storages[i], bad)) {
        forbid[i] = true;
        spilled = true;
      }
    if (!spilled)
      fail("layer '{}' cannot be scheduled on {}: {}{}", S.graph.stages[static_cast<size_t>(bad)].name, hw.name, why,
           why.find("LIMITS") == std::string::npos ? " (its smallest tile does not fit)" : "");
  }
  return S;
}

double planned_seconds(const Schedule& S) {
  double t = 0;
  for (const StagePlan& p : S.stages) t += p.est_seconds;
  return t;
}

// The work bound (kMaxIterations, bsp-schedule(1), LIMITS) over the whole
// schedule; each stage's plan is within it already (derive_plan).
void check_work(const Schedule& S) {
  int64_t total = 0;
  for (size_t s = 0; s < S.stages.size(); ++s) {
    const StagePlan& p = S.stages[s];
    total += p.T * p.J * p.K;  // each <= kMaxIterations
    if (total > kMaxIterations)
      fail("the schedule needs more than {} loop iterations per core (at layer '{}'), above bsp's work limit "
           "(bsp-schedule(1), LIMITS): the model's activations are too large for {}",
           kMaxIterations, S.graph.stages[s].name, S.hw.name);
  }
}

}  // namespace

Schedule make_schedule(const Model& m, const Hardware& hw, DType dtype, const ScheduleOptions& opt) {
  const Schedule base = base_schedule(m, hw, dtype, opt.dense);
  // How much of the memtiles resident activations may take: half leaves
  // room for staging (weights kept in the memtile, DDR tiles); seven eighths
  // keeps more activations on chip. The analytic time decides (when half
  // already holds them all, more cannot help).
  PlanMemo memo;
  std::vector<std::vector<StagePlan>> runners_up, runners_up_t;
  Schedule S = plan_stages(base, opt, 0.5, memo, runners_up);
  bool spilled = false;
  for (size_t i = 0; i < S.storages.size(); ++i)
    spilled = spilled || (S.storages[i].place == Place::DDR && !S.graph.storages[i].is_input && !S.graph.storages[i].is_output);
  if (opt.resident && spilled) {
    Schedule T = plan_stages(base, opt, 0.875, memo, runners_up_t);
    if (planned_seconds(T) < planned_seconds(S)) S = std::move(T), runners_up = std::move(runners_up_t);
  }
  check_work(S);
  layout_ddr(S);
  if (opt.tune > 1) tune_schedule(S, runners_up);
  return S;
}

namespace {
// A stored activation plan is the one plan_residency() could have made
// (man/bsp-format.5, SCHEDULE): a DDR row has no memtile fields; a resident
// row is no network input or output, has ceil(H / cols) rows per band and
// that band's 64-aligned bytes, lies 64-aligned inside the memtile and
// overlaps no other resident activation alive at the same time. (A DDR row's
// address is checked against layout_ddr() afterwards.)
void check_storages(const Schedule& S, const std::vector<StoragePlan>& plans) {
  const int64_t es = dtype_bytes(S.dtype), cols = S.hw.cols;
  std::vector<size_t> resident;
  for (size_t i = 0; i < plans.size(); ++i) {
    const Storage& st = S.graph.storages[i];
    const StoragePlan& p = plans[i];
    if (p.place == Place::DDR) {
      if (p.band_rows != 0 || p.memtile_addr != -1 || p.band_bytes != 0)
        fail("activation '{}' is in DDR but has memtile bands ({} rows at {}, {} bytes)", st.name, p.band_rows,
             p.memtile_addr, p.band_bytes);
      continue;
    }
    if (st.is_input || st.is_output) fail("activation '{}' is the network's input or output: it cannot be resident", st.name);
    if (p.ddr_addr != -1) fail("activation '{}' is resident but has DDR address {}", st.name, p.ddr_addr);
    const int64_t rows = ceil_div(st.H, cols), bytes = align(rows * st.W * st.C * es, 64);
    if (p.band_rows != rows || p.band_bytes != bytes)
      fail("activation '{}': bands of {} rows and {} bytes, expected {} and {}", st.name, p.band_rows, p.band_bytes,
           rows, bytes);
    if (p.memtile_addr < 0 || p.memtile_addr % 64 || p.memtile_addr > S.hw.memtile_memory - bytes)
      fail("activation '{}': memtile address {} is not a 64-aligned place for {} bytes in {}", st.name,
           p.memtile_addr, bytes, S.hw.memtile_memory);
    for (size_t j : resident) {
      const Storage& o = S.graph.storages[j];
      const bool alive_together = !(o.last_stage < st.first_stage || st.last_stage < o.first_stage);
      const bool overlap = p.memtile_addr < plans[j].memtile_addr + plans[j].band_bytes &&
                           plans[j].memtile_addr < p.memtile_addr + bytes;
      if (alive_together && overlap)
        fail("activations '{}' and '{}' overlap in the memtiles while both are alive", o.name, st.name);
    }
    resident.push_back(i);
  }
}
}  // namespace

uint64_t model_fingerprint(const Model& m, const Hardware& hw, DType dtype) {
  return base_schedule(m, hw, dtype).fingerprint;
}

void check_program_fits(const Model& m, const Program& p) {
  if (model_fingerprint(m, p.hw, p.dtype) != p.fingerprint)
    fail("the stored program's fingerprint does not match the model's layers and masks: run 'bsp schedule' and "
         "'bsp codegen' again");
  const Shape out = infer_shapes(m).back();
  if (p.input_shape != m.input_shape() || shape_numel(p.output_shape) != shape_numel(out))
    fail("the stored program takes {} and returns {}, the model {} and {}: run 'bsp codegen' again",
         shape_str(p.input_shape), shape_str(p.output_shape), shape_str(m.input_shape()), shape_str(out));
}

Schedule rebuild_schedule(const Model& m, const Hardware& hw, DType dtype, const std::vector<Decision>& decisions,
                          const std::vector<StoragePlan>& storages, uint64_t fingerprint) {
  Schedule S = base_schedule(m, hw, dtype);
  if (S.fingerprint != fingerprint)
    fail("the schedule does not match the model (its layers or masks changed since 'bsp schedule'): schedule again");
  if (decisions.size() != S.graph.stages.size() || storages.size() != S.graph.storages.size())
    fail("the schedule does not match the model: schedule again");
  check_storages(S, storages);
  S.storages = storages;
  S.stages.assign(decisions.size(), StagePlan{});
  for (size_t s = 0; s < decisions.size(); ++s) {
    PlanContext c = context(S, s, hw.memtile_memory - resident_top(S, static_cast<int>(s)));
    S.stages[s].d = decisions[s];
    std::string why;
    if (!derive_plan(c, S.stages[s], &why))
      fail("the stored schedule of layer '{}' is invalid: {}", S.graph.stages[s].name, why);
  }
  check_work(S);
  const std::vector<StoragePlan> saved = S.storages;
  layout_ddr(S);
  for (size_t i = 0; i < saved.size(); ++i)
    if (saved[i].place == Place::DDR && saved[i].ddr_addr != S.storages[i].ddr_addr)
      fail("the stored schedule's DDR layout is inconsistent: schedule again");
  return S;
}

}  // namespace bsp::aie2
