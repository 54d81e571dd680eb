#include "aie2/executor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "aie2/kernels.hpp"
#include "aie2/loops.hpp"
#include "aie2/plan.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

const char* instr_class_name(int c) {
  static const char* names[] = {"LOAD", "LOADW", "LOADFM", "LOADWM", "COMP", "WRITEFM", "WRITE"};
  return c >= 0 && c < kClsCount ? names[c] : "?";
}

Machine::Machine(const Hardware& hw, int64_t ddr_bytes)
    : ddr(static_cast<size_t>(ddr_bytes), 0),
      memtile(static_cast<size_t>(hw.cols), std::vector<uint8_t>(static_cast<size_t>(hw.memtile_memory), 0)),
      core(static_cast<size_t>(hw.cores()), std::vector<uint8_t>(static_cast<size_t>(hw.core_memory), 0)) {}

namespace {

constexpr int kRead = 0, kWrite = 1;
constexpr int kMaxLock = 63;  // AIE-ML locks hold 6-bit values

struct Win {
  int q, mode;
  int half;  // split buffers: which writer's channel range (lock pair) the window covers
};

struct BufState {
  const BufDecl* d = nullptr;
  std::vector<int> locks;             // [unit * 2 + lock] (unit: a member's lock pair, lock_unit())
  std::vector<std::vector<int>> waiters;  // like locks: the queues blocked on each, in the order they blocked
  std::vector<std::vector<Win>> win;  // [member * slots + slot]
  std::vector<std::vector<uint8_t>> written;  // shared buffers: bytes written this stage, per member
};

struct QState {
  const QueueProg* prog = nullptr;
  LoopCursor cur{nullptr};
  double t = 0;
  int state = 0;  // 0 ready, 1 blocked, 2 done
  double ddr_busy = 0;
  std::array<double, kClsCount> busy{};
  size_t record = 0;
  Instr blocked_on;      // the acquire it waits on
  bool pending = false;  // blocked_on is still to execute
  int64_t executed = 0;  // instructions, loops expanded (the work bound)
};

// The work bound on a program run (bsp-schedule(1), LIMITS): instructions
// one queue executes in a stage, loops expanded. A schedule within
// kMaxIterations generates about six per iteration in its busiest queue (a
// 4096x4096 map: 85,000 for 14,000 iterations); a program from a file may
// loop 2^31 times, and its run must still end soon.
constexpr int64_t kMaxQueueInstructions = kMaxIterations * 32;

int opc_class(Opc o) {
  switch (base_form(o)) {
    case Opc::Load: return kClsLoad;
    case Opc::LoadW: return kClsLoadW;
    case Opc::LoadFM: case Opc::LoadFMS: return kClsLoadFM;
    case Opc::LoadWM: return kClsLoadWM;
    case Opc::Comp: return kClsComp;
    case Opc::WriteFM: return kClsWriteFM;
    case Opc::Write: return kClsWrite;
    default: return -1;
  }
}

bool is_ddr_op(Opc o) { return o == Opc::Load || o == Opc::LoadW || o == Opc::Write; }

class Runner {
 public:
  Runner(const Program& p, const StageProg& s, Machine* m, double act_zero)
      : p_(p), s_(s), m_(m), hw_(p.hw),
        act_keep_(s.act && hw_.act_block_skip ? 1.0 - std::clamp(act_zero, 0.0, 1.0) : 1.0) {}

  StageTiming run() {
    setup();
    std::priority_queue<std::pair<double, int>, std::vector<std::pair<double, int>>, std::greater<>> heap;
    for (size_t q = 0; q < qs_.size(); ++q) heap.push({0.0, static_cast<int>(q)});
    while (!heap.empty()) {
      auto [t, q] = heap.top();
      heap.pop();
      QState& qs = qs_[static_cast<size_t>(q)];
      if (qs.state != 0 || qs.t != t) continue;
      now_ = t;
      step(q);
      for (int w : woken_) {
        QState& ws = qs_[static_cast<size_t>(w)];
        ws.state = 0;
        ws.t = std::max(ws.t, now_);
        heap.push({ws.t, w});
      }
      woken_.clear();
      if (qs.state == 0) heap.push({qs.t, q});
    }
    std::string stuck;
    int n = 0;
    for (const QState& qs : qs_) {
      if (qs.state == 2) continue;
      if (n++ < 3)
        stuck += fmt::format("{}{} waits at record {} ({} {})", stuck.empty() ? "" : "; ", qs.prog->name(), qs.record,
                             opc_name(qs.blocked_on.op), describe_lock(qs.blocked_on));
    }
    if (n) fail("stage {} '{}': deadlock: {}{}", s_.index, s_.name, stuck, n > 3 ? fmt::format(" (and {} more)", n - 3) : "");
    for (const QState& qs : qs_) {
      timing_.onchip_s = std::max(timing_.onchip_s, qs.t);
      for (int c = 0; c < kClsCount; ++c)
        timing_.queue_max[static_cast<size_t>(c)] = std::max(timing_.queue_max[static_cast<size_t>(c)], qs.busy[static_cast<size_t>(c)]);
    }
    if (!hw_.ddr_overlap) {
      double in = 0, out = 0;
      for (const QState& qs : qs_) {
        if (qs.prog->kind == QKind::ShimMM2S) in = std::max(in, qs.ddr_busy);
        if (qs.prog->kind == QKind::ShimS2MM) out = std::max(out, qs.ddr_busy);
      }
      timing_.ddr_s = in + out;
    }
    timing_.seconds = timing_.onchip_s + timing_.ddr_s;
    return timing_;
  }

 private:
  [[noreturn]] void error(int q, size_t record, Opc op, const std::string& what) const {
    fail("stage {} '{}', queue {}, record {} ({}): {}", s_.index, s_.name, qs_[static_cast<size_t>(q)].prog->name(),
         record, opc_name(op), what);
  }

  std::string describe_lock(const Instr& in) const {
    if (in.op != Opc::Acq) return "";
    int32_t b = in.a[0];
    if (b < 0 || static_cast<size_t>(b) >= s_.bufs.size()) return "";
    return fmt::format("{}[{}].{} {}", s_.bufs[static_cast<size_t>(b)].name, in.a[1], in.a[2] ? "full" : "free",
                       in.a[3]);
  }

  int64_t memory_size(Mem mem) const {
    return mem == Mem::DDR ? p_.ddr_bytes : mem == Mem::Memtile ? hw_.memtile_memory : hw_.core_memory;
  }

  void setup() {
    const std::string where = fmt::format("stage {} '{}'", s_.index, s_.name);
    bufs_.resize(s_.bufs.size());
    std::vector<int> core_locks(static_cast<size_t>(hw_.cores()), 0), mt_locks(static_cast<size_t>(hw_.cols), 0);
    struct Span {
      int64_t lo, hi;
      int32_t buf;
    };
    std::unordered_map<int64_t, std::vector<Span>> spans;  // (mem, tile) -> spans
    for (size_t i = 0; i < s_.bufs.size(); ++i) {
      const BufDecl& d = s_.bufs[i];
      BufState& b = bufs_[i];
      b.d = &d;
      const int64_t size = static_cast<int64_t>(d.slot_bytes) * d.slots;
      if (d.addr < 0 || d.addr + size > memory_size(d.mem))
        fail("{}: buffer '{}' [{}, {}) lies outside the {} bytes of its memory", where, d.name, d.addr, d.addr + size,
             memory_size(d.mem));
      // rows * cols * pitch * elem_bytes (int32 each) can pass int64: checked.
      int64_t layout = 0;
      const bool fits = d.rows >= 0 && d.cols >= 0 && d.pitch >= 0 && d.elem_bytes >= 0 &&
                        !__builtin_mul_overflow(static_cast<int64_t>(d.rows) * d.cols, static_cast<int64_t>(d.pitch), &layout) &&
                        !__builtin_mul_overflow(layout, static_cast<int64_t>(d.elem_bytes), &layout) && layout <= d.slot_bytes;
      if (!(d.flags & kBufLinear) && !fits)
        fail("{}: buffer '{}': its [{}][{}][{}] layout is larger than its slot", where, d.name, d.rows, d.cols, d.pitch);
      if (d.mem == Mem::Core) {
        const int64_t last = d.tile + static_cast<int64_t>(d.tile_count - 1) * d.tile_stride;
        if (d.tile < 0 || last >= hw_.cores() || d.tile_stride < 1)
          fail("{}: buffer '{}' names cores outside the array", where, d.name);
        if (d.addr < hw_.core_reserved) fail("{}: buffer '{}' overlaps the reserved core memory", where, d.name);
      } else if (d.mem == Mem::Memtile) {
        if (d.tile < 0 || d.tile >= hw_.cols || d.tile_count != 1)
          fail("{}: buffer '{}' names a memtile outside the array", where, d.name);
      }
      const bool locked = d.mem != Mem::DDR && !(d.flags & kBufPrivate);
      if (locked) {
        // Its slots then fit its memory, and so do the lock and window
        // tables below (one entry per slot and member).
        if (d.slot_bytes < 1) fail("{}: buffer '{}' has empty slots", where, d.name);
        if (d.free_init < 0 || d.free_init > kMaxLock || d.full_init < 0 || d.full_init > kMaxLock)
          fail("{}: buffer '{}': lock values must be 0..{}", where, d.name, kMaxLock);
        const int32_t pairs = lock_pairs(d);
        b.locks.resize(static_cast<size_t>(d.tile_count) * static_cast<size_t>(pairs) * 2);
        b.waiters.resize(b.locks.size());
        for (int32_t mbr = 0; mbr < d.tile_count; ++mbr) {
          for (int32_t u = 0; u < pairs; ++u) {
            b.locks[static_cast<size_t>(mbr * pairs + u) * 2] = d.free_init;
            b.locks[static_cast<size_t>(mbr * pairs + u) * 2 + 1] = d.full_init;
          }
          const int64_t tile = d.tile + static_cast<int64_t>(mbr) * d.tile_stride;
          if (d.mem == Mem::Core)
            core_locks[static_cast<size_t>(tile)] += 2 * pairs;
          else
            mt_locks[static_cast<size_t>(tile)] += 2 * pairs;
        }
        b.win.resize(static_cast<size_t>(d.tile_count) * static_cast<size_t>(d.slots));
        if ((d.flags & kBufShared) && m_) b.written.assign(static_cast<size_t>(d.tile_count), std::vector<uint8_t>(static_cast<size_t>(size), 0));
      }
      if (d.mem != Mem::DDR)
        for (int32_t mbr = 0; mbr < d.tile_count; ++mbr) {
          const int64_t tile = d.tile + static_cast<int64_t>(mbr) * d.tile_stride;
          spans[(static_cast<int64_t>(d.mem) << 32) | tile].push_back({d.addr, d.addr + size, static_cast<int32_t>(i)});
        }
      if (d.mem == Mem::Core && d.family != 255) {
        if (fam_.size() <= static_cast<size_t>(d.family)) fam_.resize(static_cast<size_t>(d.family) + 1);
        auto& f = fam_[static_cast<size_t>(d.family)];
        f.resize(static_cast<size_t>(hw_.cores()), {-1, -1});
        for (int32_t mbr = 0; mbr < d.tile_count; ++mbr) {
          const int64_t tile = d.tile + static_cast<int64_t>(mbr) * d.tile_stride;
          if (f[static_cast<size_t>(tile)].first >= 0)
            fail("{}: core {} has two buffers of family {}", where, tile, d.family);
          f[static_cast<size_t>(tile)] = {static_cast<int32_t>(i), mbr};
        }
      }
    }
    for (int64_t c = 0; c < hw_.cores(); ++c)
      if (core_locks[static_cast<size_t>(c)] > hw_.core_locks)
        fail("{}: core {} needs {} locks, it has {}", where, c, core_locks[static_cast<size_t>(c)], hw_.core_locks);
    for (int64_t c = 0; c < hw_.cols; ++c)
      if (mt_locks[static_cast<size_t>(c)] > hw_.memtile_locks)
        fail("{}: memtile {} needs {} locks, it has {}", where, c, mt_locks[static_cast<size_t>(c)], hw_.memtile_locks);
    for (auto& [key, v] : spans) {
      std::sort(v.begin(), v.end(), [](const Span& a, const Span& b) { return a.lo < b.lo; });
      for (size_t i = 1; i < v.size(); ++i)
        if (v[i].lo < v[i - 1].hi)
          fail("{}: buffers '{}' and '{}' overlap", where, s_.bufs[static_cast<size_t>(v[i - 1].buf)].name,
               s_.bufs[static_cast<size_t>(v[i].buf)].name);
    }
    if (s_.act) setup_act(where);
    port_free_.assign(static_cast<size_t>(hw_.cores() * hw_.core_s2mm), 0.0);
    qs_.resize(s_.queues.size());
    for (size_t q = 0; q < s_.queues.size(); ++q) {
      const QueueProg& qp = s_.queues[q];
      qs_[q].prog = &qp;
      qs_[q].cur = LoopCursor(&qp.code);
      const int64_t limit = qp.kind == QKind::Core || qp.kind == QKind::CoreMM2S ? hw_.cores() : hw_.cols;
      if (qp.tile < 0 || qp.tile >= limit) fail("{}: queue {} is outside the array", where, qp.name());
    }
  }

  // ---- the activation rule (man/bsp-isa.7, ACTIVATION RULES) ----

  // Checks the stage's rule against its buffers and, in functional runs,
  // finds the zero blocks of its view: the activation is complete when the
  // stage starts (the stages before have finished) and no queue of this
  // stage writes it.
  void setup_act(const std::string& where) {
    const ActDecl& a = *s_.act;
    act_rows_.clear();
    int64_t H = 0, F = 0;
    const BufDecl& first = s_.bufs[static_cast<size_t>(a.src)];
    for (int32_t j = 0; j < a.src_count; ++j) {
      const BufDecl& d = s_.bufs[static_cast<size_t>(a.src + j)];
      if ((d.mem != Mem::DDR && d.mem != Mem::Memtile) || (d.flags & kBufLinear) || d.slots != 1 ||
          d.cols != first.cols || (!a.flat && d.pitch != first.pitch) || d.elem_bytes != dtype_bytes(p_.dtype) ||
          (d.mem == Mem::DDR && a.src_count != 1))
        fail("{}: activation rule: buffer '{}' is not an activation in DDR or a row band of one", where, d.name);
      act_rows_.push_back(a.flat ? F : H);
      H += d.rows;
      F += d.slot_elems();
    }
    act_h_ = a.flat ? 1 : H;
    act_w_ = a.flat ? 1 : first.cols;
    act_c_ = a.flat ? F : a.C;
    if (a.flat ? a.c0 != 0 || a.C != F : a.c0 + static_cast<int64_t>(a.C) > first.pitch)
      fail("{}: activation rule: channels {}+{} are not inside its activation", where, a.c0, a.C);
    nby_ = (act_h_ + a.bh - 1) / a.bh, nbx_ = (act_w_ + a.bw - 1) / a.bw, nbc_ = (act_c_ + a.bc - 1) / a.bc;
    if (!m_) return;
    const bool q8 = p_.dtype == DType::Int8;
    if (p_.dtype != DType::Int8 && p_.dtype != DType::FP32)
      fail("{}: activation rule: {} programs do not run functionally", where, dtype_name(p_.dtype));
    float t = 0;
    std::memcpy(&t, &a.threshold, 4);
    if (q8 ? a.threshold < 1 || a.threshold > 256 : !(t > 0))
      fail("{}: activation rule without its threshold (int8: 1 to 256, set with the weights image)", where);
    act_zero_.assign(static_cast<size_t>(nby_ * nbx_ * nbc_), 1);
    // One pass over the view: a value at or above the threshold (or a NaN)
    // keeps its block.
    for (int32_t j = 0; j < a.src_count; ++j) {
      const BufDecl& d = s_.bufs[static_cast<size_t>(a.src + j)];
      const uint8_t* base = memory(d, 0) + d.addr;
      const int64_t elems = d.slot_elems();
      for (int64_t e = 0; e < elems; ++e) {
        bool small;
        if (q8) {
          small = std::abs(int32_t{reinterpret_cast<const int8_t*>(base)[e]}) < a.threshold;
        } else {
          float v;
          std::memcpy(&v, base + e * 4, 4);
          small = std::fabs(v) < t;
        }
        if (small) continue;
        const int64_t blk = act_block(j, e);
        if (blk >= 0) act_zero_[static_cast<size_t>(blk)] = 0;
      }
    }
    // A functional run knows the stage's own zero blocks: with the
    // extension it charges their share, not the one it was given.
    if (hw_.act_block_skip) {
      const auto zero = std::count(act_zero_.begin(), act_zero_.end(), uint8_t{1});
      act_keep_ = 1.0 - static_cast<double>(zero) / static_cast<double>(act_zero_.size());
    }
  }

  // The block of the rule's view that element e (a slot's linear element
  // index) of rule buffer j belongs to, or -1 outside the view's channels.
  int64_t act_block(int32_t j, int64_t e) const {
    const ActDecl& a = *s_.act;
    if (a.flat) return (act_rows_[static_cast<size_t>(j)] + e) / a.bc;
    const BufDecl& d = s_.bufs[static_cast<size_t>(a.src + j)];
    const int64_t c = e % d.pitch - a.c0;
    if (c < 0 || c >= a.C) return -1;
    const int64_t x = (e / d.pitch) % d.cols, y = act_rows_[static_cast<size_t>(j)] + e / (static_cast<int64_t>(d.pitch) * d.cols);
    return ((y / a.bh) * nbx_ + x / a.bw) * nbc_ + c / a.bc;
  }

  // ---- helpers ----

  // The core input (S2MM) channel a transfer into buffer d arrives on and the
  // half of a split buffer it writes: channels [split, pitch) (bytes of a
  // linear buffer) come on the next channel. A box may not straddle the split.
  std::pair<int32_t, int32_t> in_port(int q, size_t rec, Opc op, const BufDecl& d, int64_t dc, int64_t n) const {
    if (d.port < 0 || d.port >= hw_.core_s2mm) error(q, rec, op, fmt::format("buffer '{}': no core input channel {}", d.name, d.port));
    if (d.split <= 0) return {d.port, 0};
    if (dc < d.split && dc + n > d.split)
      error(q, rec, op, fmt::format("{} [{}, {}) straddles the split of buffer '{}' at {}",
                                    (d.flags & kBufLinear) ? "transfer of bytes" : "box of channels", dc, dc + n, d.name, d.split));
    if (dc < d.split) return {d.port, 0};
    return {static_cast<int32_t>((d.port + 1) % hw_.core_s2mm), 1};
  }

  const BufState& buf(int q, size_t rec, Opc op, int32_t b) const {
    if (b < 0 || static_cast<size_t>(b) >= bufs_.size()) error(q, rec, op, fmt::format("no buffer {}", b));
    return bufs_[static_cast<size_t>(b)];
  }
  BufState& buf_mut(int q, size_t rec, Opc op, int32_t b) { return const_cast<BufState&>(buf(q, rec, op, b)); }

  // The members an instruction addresses (-1: all of a group buffer), as a
  // range: this runs for every lock and transfer, so it allocates nothing.
  struct Members {
    int32_t lo, hi;
    struct It {
      int32_t v;
      int32_t operator*() const { return v; }
      It& operator++() { return ++v, *this; }
      bool operator!=(const It& o) const { return v != o.v; }
    };
    It begin() const { return {lo}; }
    It end() const { return {hi}; }
  };
  Members members(int q, size_t rec, Opc op, const BufDecl& d, int32_t member) const {
    if (member == -1) return {0, d.tile_count};
    if (member < 0 || member >= d.tile_count)
      error(q, rec, op, fmt::format("buffer '{}' has no member {}", d.name, member));
    return {member, member + 1};
  }

  uint8_t* memory(const BufDecl& d, int32_t member) {
    if (!m_) return nullptr;
    const int64_t tile = d.tile + static_cast<int64_t>(member) * d.tile_stride;
    switch (d.mem) {
      case Mem::DDR: return m_->ddr.data();
      case Mem::Memtile: return m_->memtile[static_cast<size_t>(tile)].data();
      case Mem::Core: return m_->core[static_cast<size_t>(tile)].data();
    }
    return nullptr;
  }

  // Whether queue q holds a window on the slot (on `half` of a split
  // buffer; -1: on both halves).
  bool holds(const BufState& b, int32_t member, int32_t slot, int q, bool need_write, int half) const {
    if (b.d->mem == Mem::DDR) return true;
    if (b.d->flags & kBufPrivate) return true;  // ownership checked by the caller
    bool got[2] = {false, false};
    for (const Win& w : b.win[static_cast<size_t>(member) * static_cast<size_t>(b.d->slots) + static_cast<size_t>(slot)])
      if (w.q == q && (!need_write || w.mode == kWrite)) got[w.half] = true;
    if (half >= 0) return got[half];
    return got[0] && (b.d->split <= 0 || got[1]);
  }

  void need_window(int q, size_t rec, Opc op, const BufState& b, int32_t member, int32_t slot, bool write,
                   int half = -1) const {
    if (slot < 0 || slot >= b.d->slots) error(q, rec, op, fmt::format("buffer '{}' has no slot {}", b.d->name, slot));
    if (!holds(b, member, slot, q, write, half))
      error(q, rec, op,
            fmt::format("{} buffer '{}' slot {} without holding its lock for {}", write ? "writes" : "reads", b.d->name,
                        slot, write ? "writing" : "reading"));
  }

  // ---- locks ----

  // The operands of an acquire or a release (buffer, slot, lock, value,
  // mode, members), checked the same way for both.
  struct LockOperands {
    int32_t b, slot, lock, value, mode;
    BufState* bs;
  };
  LockOperands lock_operands(int q, size_t rec, const Instr& in) {
    const LockOperands o{in.a[0], in.a[1], in.a[2], in.a[3], in.a[4], &buf_mut(q, rec, in.op, in.a[0])};
    const BufDecl& d = *o.bs->d;
    if (d.mem == Mem::DDR || (d.flags & kBufPrivate)) error(q, rec, in.op, fmt::format("buffer '{}' has no locks", d.name));
    if (o.lock < 0 || o.lock > (d.split > 0 ? 3 : 1))
      error(q, rec, in.op, d.split > 0 ? "lock must be 0 or 2 (free), 1 or 3 (full)" : "lock must be 0 (free) or 1 (full)");
    if (o.value < 1 || o.value > kMaxLock) error(q, rec, in.op, fmt::format("lock value {} out of range", o.value));
    if (o.slot < 0 || o.slot >= d.slots) error(q, rec, in.op, fmt::format("buffer '{}' has no slot {}", d.name, o.slot));
    if (o.mode != kRead && o.mode != kWrite) error(q, rec, in.op, "mode must be 0 (read) or 1 (write)");
    return o;
  }

  // The counter of lock `lock` (0 free, 1 full) of lock pair `unit`, and
  // the queues waiting on it.
  static int& lock_ref(BufState& bs, int32_t unit, int32_t lock) {
    return bs.locks[static_cast<size_t>(unit) * 2 + static_cast<size_t>(lock)];
  }
  static std::vector<int>& waiters_of(BufState& bs, int32_t unit, int32_t lock) {
    return bs.waiters[static_cast<size_t>(unit) * 2 + static_cast<size_t>(lock)];
  }

  bool acquire(int q, size_t rec, const Instr& in) {
    const LockOperands o = lock_operands(q, rec, in);
    const int32_t slot = o.slot, lock = o.lock, value = o.value, mode = o.mode;
    BufState& bs = *o.bs;
    const BufDecl& d = *bs.d;
    const auto ms = members(q, rec, in.op, d, in.a[5]);
    const int half = lock / 2;
    for (int32_t mbr : ms) {
      const int32_t u = lock_unit(d, mbr, slot, lock);
      if (lock_ref(bs, u, lock % 2) < value) {
        waiters_of(bs, u, lock % 2).push_back(q);
        return false;
      }
    }
    for (int32_t mbr : ms) {
      lock_ref(bs, lock_unit(d, mbr, slot, lock), lock % 2) -= value;
      auto& ws = bs.win[static_cast<size_t>(mbr) * static_cast<size_t>(d.slots) + static_cast<size_t>(slot)];
      const bool shared = (d.flags & kBufShared) != 0;
      for (const Win& w : ws) {
        if (w.q == q || w.half != half) continue;
        if (mode == kWrite && !(shared && w.mode == kWrite))
          error(q, rec, in.op,
                fmt::format("buffer '{}' slot {} overwritten while in use: {} holds it for {}", d.name, slot,
                            qs_[static_cast<size_t>(w.q)].prog->name(), w.mode == kWrite ? "writing" : "reading"));
        if (mode == kRead && w.mode == kWrite && !shared)
          error(q, rec, in.op,
                fmt::format("buffer '{}' slot {} read while {} writes it", d.name, slot,
                            qs_[static_cast<size_t>(w.q)].prog->name()));
      }
      ws.push_back({q, mode, half});
    }
    return true;
  }

  void release(int q, size_t rec, const Instr& in) {
    const LockOperands o = lock_operands(q, rec, in);
    const int32_t slot = o.slot, lock = o.lock, value = o.value, mode = o.mode;
    BufState& bs = *o.bs;
    const BufDecl& d = *bs.d;
    for (int32_t mbr : members(q, rec, in.op, d, in.a[5])) {
      auto& ws = bs.win[static_cast<size_t>(mbr) * static_cast<size_t>(d.slots) + static_cast<size_t>(slot)];
      auto it = std::find_if(ws.begin(), ws.end(), [&](const Win& w) { return w.q == q && w.mode == mode && w.half == lock / 2; });
      if (it == ws.end())
        error(q, rec, in.op,
              fmt::format("releases buffer '{}' slot {} ({}) without having acquired it", d.name, slot,
                          mode == kWrite ? "write" : "read"));
      ws.erase(it);
      const int32_t u = lock_unit(d, mbr, slot, lock);
      int& v = lock_ref(bs, u, lock % 2);
      v += value;
      if (v > kMaxLock) error(q, rec, in.op, fmt::format("lock of buffer '{}' overflows ({})", d.name, v));
      std::vector<int>& ws_lock = waiters_of(bs, u, lock % 2);
      woken_.insert(woken_.end(), ws_lock.begin(), ws_lock.end());
      ws_lock.clear();  // keeps its capacity: no allocation per wait
    }
  }

  // Lock pairs of a buffer per member, and the pair lock `lock` of a slot of
  // a member belongs to (a split buffer's second pair: locks 2 and 3).
  static int32_t lock_pairs(const BufDecl& d) { return (d.flags & kBufSlotLocks) ? d.slots : d.split > 0 ? 2 : 1; }
  static int32_t lock_unit(const BufDecl& d, int32_t member, int32_t slot, int32_t lock) {
    return member * lock_pairs(d) + ((d.flags & kBufSlotLocks) ? slot : lock / 2);
  }

  // ---- transfers ----

  // Bounds of a box access at (y, x, c) of h x w x n in buffer d.
  void box_bounds(int q, size_t rec, Opc op, const BufDecl& d, int64_t y, int64_t x, int64_t c, int64_t h, int64_t w,
                  int64_t n, const char* side) const {
    if (h == 0 || w == 0 || n == 0) return;
    if (d.flags & kBufLinear) error(q, rec, op, fmt::format("buffer '{}' holds raw bytes, not a feature map", d.name));
    bool ok;
    if (h == 1 && w == 1)
      ok = y >= 0 && x >= 0 && c >= 0 && y < d.rows && x < d.cols && (y * d.cols + x) * d.pitch + c + n <= d.slot_elems();
    else
      ok = y >= 0 && x >= 0 && c >= 0 && y + h <= d.rows && x + w <= d.cols && c + n <= d.pitch;
    if (!ok)
      error(q, rec, op,
            fmt::format("out-of-range address: {} box ({},{},{}) of {}x{}x{} is outside buffer '{}' [{}][{}][{}]", side,
                        y, x, c, h, w, n, d.name, d.rows, d.cols, d.pitch));
  }

  // Which memories and which queue a transfer instruction connects; an
  // error names the instruction otherwise.
  void check_route(int q, size_t rec, const Instr& in, const BufDecl& sd, const BufDecl& dd) {
    Mem want_src = Mem::DDR, want_dst = Mem::Memtile;
    const Opc op = base_form(in.op);
    switch (op) {
      case Opc::Load: want_src = Mem::DDR, want_dst = Mem::Memtile; break;
      // weights: into a memtile, or straight into core memory (linear)
      case Opc::LoadW: want_src = Mem::DDR, want_dst = dd.mem == Mem::Core && (dd.flags & kBufLinear) ? Mem::Core : Mem::Memtile; break;
      case Opc::LoadFM: case Opc::LoadFMS: case Opc::LoadWM: want_src = Mem::Memtile, want_dst = Mem::Core; break;
      case Opc::WriteFM: want_src = Mem::Core, want_dst = Mem::Memtile; break;
      case Opc::Write: want_src = Mem::Memtile, want_dst = Mem::DDR; break;
      default: break;
    }
    if (sd.mem != want_src || dd.mem != want_dst)
      error(q, rec, in.op, fmt::format("moves '{}' to '{}': wrong memories for this instruction", sd.name, dd.name));
    const QKind qk = qs_[static_cast<size_t>(q)].prog->kind;
    const bool right_queue = ((op == Opc::Load || op == Opc::LoadW) && qk == QKind::ShimMM2S) ||
                             ((op == Opc::LoadFM || op == Opc::LoadFMS || op == Opc::LoadWM) && qk == QKind::MemtileMM2S) ||
                             (op == Opc::WriteFM && qk == QKind::CoreMM2S) || (op == Opc::Write && qk == QKind::ShimS2MM);
    if (!right_queue) error(q, rec, in.op, fmt::format("not an instruction for a {} queue", qkind_name(qk)));
    if (sd.tile_count != 1) error(q, rec, in.op, fmt::format("source '{}' is a group buffer", sd.name));
  }

  // LOADW, LOADWM: bytes [soff, soff + n) of the source slot to doff of
  // every destination member's slot. Returns the bytes moved.
  int64_t linear_copy(int q, size_t rec, const Instr& in, const BufDecl& sd, const BufDecl& dd,
                      const Members& dms) {
    const auto& a = in.a;
    const int32_t sslot = a[1], dslot = a[5];
    const int64_t soff = a[2], n = a[3], doff = a[6];
    if (n < 0 || soff < 0 || doff < 0 || soff + n > sd.slot_bytes || doff + n > dd.slot_bytes)
      error(q, rec, in.op,
            fmt::format("out-of-range address: {} bytes from '{}'+{} to '{}'+{} (slots of {} and {} bytes)", n, sd.name,
                        soff, dd.name, doff, sd.slot_bytes, dd.slot_bytes));
    if (m_ && n > 0) {
      const uint8_t* s = memory(sd, 0) + sd.addr + static_cast<int64_t>(sslot) * sd.slot_bytes + soff;
      for (int32_t mbr : dms) {
        uint8_t* d = memory(dd, mbr) + dd.addr + static_cast<int64_t>(dslot) * dd.slot_bytes + doff;
        std::memcpy(d, s, static_cast<size_t>(n));
      }
    }
    return n;
  }

  // The box transfers: an h x w x n box, padded (LOADFM) or with source
  // steps (LOADFMS), to every destination member. Returns the bytes moved.
  int64_t box_copy(int q, size_t rec, const Instr& in, const BufDecl& sd, const BufDecl& dd, BufState& db,
                   const Members& dms) {
    const auto& a = in.a;
    const int32_t sslot = a[1], dslot = a[9];
    const int64_t sy = a[2], sx = a[3], sc = a[4], h = a[5], w = a[6], n = a[7], dy = a[10], dx = a[11], dc = a[12];
    // LOADFMS: the source rows and columns step by (sty, stx); no padding.
    const bool steps = base_form(in.op) == Opc::LoadFMS;
    const int64_t sty = steps ? a[13] & 255 : 1, stx = steps ? (a[13] >> 8) & 255 : 1;
    if (sty < 1 || stx < 1) error(q, rec, in.op, "steps must be at least 1");
    const int32_t pad_word = steps ? 0 : a[13];
    const int64_t pt = pad_part(pad_word, 0), pl = pad_part(pad_word, 1), pb = pad_part(pad_word, 2), pr = pad_part(pad_word, 3);
    if (h < 0 || w < 0 || n < 0) error(q, rec, in.op, "negative box size");
    if (pad_word && base_form(in.op) != Opc::LoadFM) error(q, rec, in.op, "only LOADFM pads");
    const int64_t hi = h - pt - pb, wi = w - pl - pr;
    if (h && w && n && (hi < 0 || wi < 0)) error(q, rec, in.op, "padding larger than the box");
    if (sd.elem_bytes != dd.elem_bytes) error(q, rec, in.op, "source and destination element sizes differ");
    box_bounds(q, rec, in.op, sd, sy, sx, sc, hi ? (hi - 1) * sty + 1 : 0, wi ? (wi - 1) * stx + 1 : 0, n, "source");
    box_bounds(q, rec, in.op, dd, dy, dx, dc, h, w, n, "destination");
    const int64_t E = sd.elem_bytes;
    const int64_t bytes = h * w * n * E;
    if (!m_ || bytes == 0) return bytes;
    const uint8_t* sbase = memory(sd, 0) + sd.addr + static_cast<int64_t>(sslot) * sd.slot_bytes;
    // A Z form reading the rule's activation writes its zero blocks as
    // zeros; from anywhere else (a staging copy a LOADZ filled, whose zero
    // blocks are already zero) it copies.
    const int32_t rule_buf = act_form(in.op) && s_.act && a[0] >= s_.act->src && a[0] - s_.act->src < s_.act->src_count
                                 ? a[0] - s_.act->src
                                 : -1;
    for (int32_t mbr : dms) {
      uint8_t* dbase = memory(dd, mbr) + dd.addr + static_cast<int64_t>(dslot) * dd.slot_bytes;
      std::vector<uint8_t>* wr = (dd.flags & kBufShared) && !db.written.empty() ? &db.written[static_cast<size_t>(mbr)] : nullptr;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const int64_t doff = (((dy + y) * dd.cols + dx + x) * dd.pitch + dc) * E;
          uint8_t* dp = dbase + doff;
          const bool pad = y < pt || y >= h - pb || x < pl || x >= w - pr;
          if (pad) {
            std::memset(dp, 0, static_cast<size_t>(n * E));
          } else {
            const int64_t se = ((sy + (y - pt) * sty) * sd.cols + sx + (x - pl) * stx) * sd.pitch + sc;
            std::memcpy(dp, sbase + se * E, static_cast<size_t>(n * E));
            if (rule_buf >= 0)
              for (int64_t i = 0; i < n; ++i) {
                const int64_t blk = act_block(rule_buf, se + i);
                if (blk >= 0 && act_zero_[static_cast<size_t>(blk)]) std::memset(dp + i * E, 0, static_cast<size_t>(E));
              }
          }
          if (wr) {
            uint8_t* flag = wr->data() + static_cast<int64_t>(dslot) * dd.slot_bytes + doff;
            for (int64_t i = 0; i < n * E; ++i) {
              if (flag[i])
                error(q, rec, in.op, fmt::format("buffer '{}' overwritten: these bytes were already written in this stage", dd.name));
              flag[i] = 1;
            }
          }
        }
    }
    return bytes;
  }

  // A transfer instruction: checked, its data moved (functional runs), and
  // its duration on queue q (0 when DDR time adds instead).
  double transfer(int q, size_t rec, const Instr& in) {
    const auto& a = in.a;
    const bool linear = in.op == Opc::LoadW || in.op == Opc::LoadWM;
    const int32_t src = a[0], sslot = a[1];
    const int32_t dst = linear ? a[4] : a[8], dslot = linear ? a[5] : a[9], dmember = linear ? a[7] : a[14];
    BufState& sb = buf_mut(q, rec, in.op, src);
    BufState& db = buf_mut(q, rec, in.op, dst);
    const BufDecl& sd = *sb.d;
    const BufDecl& dd = *db.d;
    check_route(q, rec, in, sd, dd);
    need_window(q, rec, in.op, sb, 0, sslot, false);
    const auto dms = members(q, rec, in.op, dd, dmember);
    const bool to_core = dd.mem == Mem::Core;
    // (a linear buffer is split by bytes: its destination offset and size)
    const auto [port, half] = to_core ? in_port(q, rec, in.op, dd, linear ? a[6] : a[12], linear ? a[3] : a[7])
                                      : std::pair<int32_t, int32_t>{0, 0};
    for (int32_t mbr : dms) need_window(q, rec, in.op, db, mbr, dslot, true, half);
    int64_t bytes = linear ? linear_copy(q, rec, in, sd, dd, dms) : box_copy(q, rec, in, sd, dd, db, dms);
    // The extension does not move the zero blocks of a ruled input to the
    // cores (LOADFMZ, LOADFMSZ); DDR reads (LOADZ) move whole 64-byte bursts,
    // which a block's 8-byte runs do not empty, and are charged in full.
    if (act_keep_ < 1.0 && (in.op == Opc::LoadFMZ || in.op == Opc::LoadFMSZ))
      bytes = static_cast<int64_t>(std::llround(static_cast<double>(bytes) * act_keep_));
    const double bw = is_ddr_op(base_form(in.op)) ? hw_.ddr_channel_gbps : hw_.stream_gbps;
    double d = bytes > 0 ? static_cast<double>(bytes) / (bw * 1e9) + static_cast<double>(hw_.dma_overhead_cycles) / (hw_.clock_ghz * 1e9) : 0.0;
    ClassStats& cs = timing_.cls[static_cast<size_t>(opc_class(in.op))];
    cs.busy_s += d;
    cs.bytes += bytes;
    ++cs.count;
    qs_[static_cast<size_t>(q)].busy[static_cast<size_t>(opc_class(in.op))] += d;
    if (is_ddr_op(base_form(in.op)) && !hw_.ddr_overlap) {
      qs_[static_cast<size_t>(q)].ddr_busy += d;
      return 0.0;
    }
    if (to_core && d > 0) {
      // The destination cores' input channel carries one transfer at a
      // time: this one starts when the channel of every member is free.
      const double t0 = qs_[static_cast<size_t>(q)].t;
      double start = t0;
      for (int32_t mbr : dms) start = std::max(start, port_free_[port_index(dd, mbr, port)]);
      for (int32_t mbr : dms) port_free_[port_index(dd, mbr, port)] = start + d;
      return start - t0 + d;
    }
    return d;
  }

  size_t port_index(const BufDecl& d, int32_t member, int32_t port) const {
    const int64_t tile = d.tile + static_cast<int64_t>(member) * d.tile_stride;
    return static_cast<size_t>(tile * hw_.core_s2mm + port);
  }

  // ---- compute ----

  double comp(int q, size_t rec, const Instr& in) {
    const QState& qs = qs_[static_cast<size_t>(q)];
    if (qs.prog->kind != QKind::Core) error(q, rec, in.op, "COMP runs on a core queue only");
    const auto& a = in.a;
    if (a[0] < 0 || static_cast<size_t>(a[0]) >= s_.kernels.size()) error(q, rec, in.op, fmt::format("no kernel {}", a[0]));
    const KernelDecl& k = s_.kernels[static_cast<size_t>(a[0])];
    const int64_t core = qs.prog->tile;
    const int64_t oh = a[5], ow = a[6], co = a[7], ci = a[8], nnz = a[9];
    const int32_t flags = a[10];
    if (oh < 0 || ow < 0 || co < 0 || ci < 0 || nnz < 0) error(q, rec, in.op, "negative operand");
    auto mine = [&](int32_t family, const char* what) -> std::pair<const BufState*, int32_t> {
      if (family < 0 || static_cast<size_t>(family) >= fam_.size() || fam_[static_cast<size_t>(family)].empty() ||
          fam_[static_cast<size_t>(family)][static_cast<size_t>(core)].first < 0)
        error(q, rec, in.op, fmt::format("core {} has no {} buffer", core, what));
      auto [b, mbr] = fam_[static_cast<size_t>(family)][static_cast<size_t>(core)];
      return {&bufs_[static_cast<size_t>(b)], mbr};
    };
    const bool last = (flags & kCLast) != 0;
    KernelCall c;
    c.k = &k;
    c.dtype = p_.dtype;
    c.oh = oh, c.ow = ow, c.co = co, c.ci = ci, c.nnz = nnz, c.flags = flags;
    c.pt = a[11], c.pl = a[12], c.pb = a[13], c.pr = a[14];
    const bool work = oh > 0 && ow > 0 && co > 0;
    for (int32_t b = 0; b < k.n_in; ++b) {
      auto [bs, mbr] = mine(k.in_buf + b, "input");
      need_window(q, rec, in.op, *bs, mbr, a[1], false);
      if (m_) c.in[b] = memory(*bs->d, mbr) + bs->d->addr + static_cast<int64_t>(a[1]) * bs->d->slot_bytes;
      c.in_l = Layout{bs->d->rows, bs->d->cols, bs->d->pitch};
    }
    if (k.w_buf >= 0) {
      auto [bs, mbr] = mine(k.w_buf, "weight");
      need_window(q, rec, in.op, *bs, mbr, a[2], false);
      if (m_) c.w = memory(*bs->d, mbr) + bs->d->addr + static_cast<int64_t>(a[2]) * bs->d->slot_bytes;
      c.w_bytes = bs->d->slot_bytes;
    }
    {
      auto [bs, mbr] = mine(k.out_buf, "output");
      if (last) need_window(q, rec, in.op, *bs, mbr, a[3], true);
      if (m_) c.out = memory(*bs->d, mbr) + bs->d->addr + static_cast<int64_t>(a[3]) * bs->d->slot_bytes;
      c.out_l = Layout{bs->d->rows, bs->d->cols, bs->d->pitch};
    }
    if (k.add_buf >= 0 && last) {
      auto [bs, mbr] = mine(k.add_buf, "residual");
      need_window(q, rec, in.op, *bs, mbr, a[4], false);
      if (m_) c.add = memory(*bs->d, mbr) + bs->d->addr + static_cast<int64_t>(a[4]) * bs->d->slot_bytes;
    }
    if (k.acc_buf >= 0) {
      auto [bs, mbr] = mine(k.acc_buf, "accumulator");
      if (m_) c.acc = memory(*bs->d, mbr) + bs->d->addr;
      if (bs->d->slot_elems() < c.out_l.rows * c.out_l.cols * c.out_l.pitch)
        error(q, rec, in.op, "the accumulator is smaller than the output tile");
    }
    // Checked for timing runs too (the kernels check the rest when they
    // run): the output tile fits its buffer and a convolution's stored
    // blocks (64 bytes or more each) its weight slot, which bounds the work
    // below.
    if (work && (oh > c.out_l.rows || ow > c.out_l.cols || co > c.out_l.pitch))
      error(q, rec, in.op, fmt::format("output tile of {}x{}x{} does not fit its buffer [{}][{}][{}]", oh, ow, co,
                                       c.out_l.rows, c.out_l.cols, c.out_l.pitch));
    // A sparse24 COMP's pairs (operand pt, 80 bytes each) and block indices
    // must fit instead: its blocks are stored compressed.
    const bool s24 = (k.flags & kKSparse24) != 0;
    if (s24 && p_.dtype != DType::Int8) error(q, rec, in.op, "the sparse operand is int8 only");
    if (work && s24 && (c.pt < 0 || c.pt * kPairBytes > c.w_bytes || 2 * nnz > c.w_bytes))
      error(q, rec, in.op, fmt::format("{} sparse pairs of {} weight blocks do not fit a weight slot of {} bytes", c.pt,
                                       nnz, c.w_bytes));
    if (work && !s24 && k.kind == KKind::Conv && nnz * kBlock * kBlock > c.w_bytes)
      error(q, rec, in.op, fmt::format("{} weight blocks do not fit a weight slot of {} bytes", nnz, c.w_bytes));
    if (m_ && work) {
      try {
        run_kernel(c);
      } catch (const Error& e) {
        error(q, rec, in.op, e.what());
      }
    }
    // A row pass (kKRows) sums the pass's rows of the window only.
    const int64_t rows = (k.flags & kKRows) ? k.kh - c.pt - c.pb : -1;
    int64_t cycles = 0;
    if (work) {
      try {
        cycles = comp_cycles(hw_, p_.dtype, k, oh * ow, co, ci, nnz, rows, s24 ? c.pt : -1);
      } catch (const Error& e) {
        error(q, rec, in.op, e.what());
      }
      // The extension skips the multiplications of zero input blocks: the
      // kernel's MAC cycles shrink with the blocks it gets, its call
      // overhead does not.
      if (act_keep_ < 1.0 && k.kind == KKind::Conv)
        cycles = hw_.kernel_overhead_cycles +
                 static_cast<int64_t>(std::ceil(static_cast<double>(cycles - hw_.kernel_overhead_cycles) * act_keep_));
    }
    const double d = static_cast<double>(cycles) / (hw_.clock_ghz * 1e9);
    ClassStats& cs = timing_.cls[kClsComp];
    cs.busy_s += d;
    ++cs.count;
    qs_[static_cast<size_t>(q)].busy[kClsComp] += d;
    if (work && k.kind == KKind::Conv) {
      const int64_t pos = (oh * ow + hw_.vec_positions - 1) / hw_.vec_positions * hw_.vec_positions;
      // pos * nnz * 64 * kh * kw: bounded by the checks above, but kh * kw
      // (16 bits each) can still take it past int64.
      int64_t macs = 0;
      if (__builtin_mul_overflow(pos * nnz * kBlock * kBlock, static_cast<int64_t>(k.kh) * k.kw, &macs) ||
          __builtin_add_overflow(cs.macs, static_cast<int64_t>(std::llround(static_cast<double>(macs) * act_keep_)), &cs.macs))
        error(q, rec, in.op, "more multiply-accumulates than int64 counts");
    }
    return d;
  }

  // Runs queue q from its current time until it blocks, finishes or spends
  // time. An acquire that blocks stays pending in the queue's state (the
  // cursor has moved past it) and is retried first when the queue wakes.
  void step(int q) {
    QState& qs = qs_[static_cast<size_t>(q)];
    Instr in;
    size_t rec = 0;
    for (;;) {
      if (qs.pending) {
        in = qs.blocked_on;
        rec = qs.record;
        qs.pending = false;
      } else {
        bool more;
        try {
          more = qs.cur.next(in, rec);
        } catch (const Error& e) {
          fail("stage {} '{}', queue {}: {}", s_.index, s_.name, qs.prog->name(), e.what());
        }
        if (!more) {
          qs.state = 2;
          return;
        }
        if (++qs.executed > kMaxQueueInstructions)
          fail("stage {} '{}', queue {}: more than {} instructions executed, above bsp's work limit (bsp-schedule(1), LIMITS)",
               s_.index, s_.name, qs.prog->name(), kMaxQueueInstructions);
        qs.record = rec;
      }
      if (in.op == Opc::Acq) {
        if (!acquire(q, rec, in)) {
          qs.state = 1;
          qs.blocked_on = in;
          qs.pending = true;
          return;
        }
        ++timing_.executed;
        continue;
      }
      ++timing_.executed;
      double d = 0;
      switch (in.op) {
        case Opc::Rel: release(q, rec, in); break;
        case Opc::Comp: d = comp(q, rec, in); break;
        case Opc::Load: case Opc::LoadW: case Opc::LoadFM: case Opc::LoadFMS: case Opc::LoadWM: case Opc::WriteFM: case Opc::Write:
        case Opc::LoadZ: case Opc::LoadFMZ: case Opc::LoadFMSZ:
          d = transfer(q, rec, in);
          break;
        default: error(q, rec, in.op, "not an executable instruction");
      }
      if (d > 0) {
        qs.t += d;
        return;
      }
    }
  }

  const Program& p_;
  const StageProg& s_;
  Machine* m_;
  const Hardware& hw_;
  std::vector<BufState> bufs_;
  std::vector<std::vector<std::pair<int32_t, int32_t>>> fam_;  // [family][core] -> (buffer, member)
  std::vector<QState> qs_;
  std::vector<int> woken_;
  std::vector<double> port_free_;  // [core * core_s2mm + channel]: when the core input channel is next free
  double now_ = 0;
  StageTiming timing_;
  // The activation rule: the share of blocks moved and multiplied (timing
  // with the extension), the first row (flat: element) of each rule buffer
  // in the view, the view's size and block grid, and its zero blocks
  // (functional runs).
  double act_keep_ = 1.0;
  std::vector<int64_t> act_rows_;
  int64_t act_h_ = 0, act_w_ = 0, act_c_ = 0, nby_ = 0, nbx_ = 0, nbc_ = 0;
  std::vector<uint8_t> act_zero_;
};

}  // namespace

StageTiming run_stage(const Program& p, const StageProg& s, Machine* m, double act_zero) {
  return Runner(p, s, m, act_zero).run();
}

}  // namespace bsp::aie2
