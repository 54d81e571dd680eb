#include "aie2/codegen.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "aie2/loops.hpp"
#include "aie2/plan.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

namespace {

int32_t i32(int64_t v, const char* what) {
  if (v < INT32_MIN || v > INT32_MAX) fail("the program does not fit the ISA: {} = {} exceeds 32 bits", what, v);
  return static_cast<int32_t>(v);
}

struct QKey {
  QKind kind;
  int32_t tile, channel;
  bool operator<(const QKey& o) const {
    return std::tie(kind, tile, channel) < std::tie(o.kind, o.tile, o.channel);
  }
};

struct QBuild {
  std::vector<Instr> flat;
  std::vector<size_t> units;
  std::vector<std::string> streams;
};

// A tile of work: output rows/columns (possibly empty) and its input window.
struct TileGeom {
  int64_t oy0 = 0, ox0 = 0, oh = 0, ow = 0;
  int64_t iy0 = 0, ix0 = 0, ih = 0, iw = 0;  // unclipped input window
  int64_t cy0 = 0, cy1 = 0, cx0 = 0, cx1 = 0;  // clipped to the input
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  bool subsampled = false;  // every stride-th row and column of [cy0, cy1) x [cx0, cx1) (LOADFMS)
  bool empty() const { return oh <= 0 || ow <= 0; }
};

class Gen {
 public:
  Gen(const Schedule& S, size_t si)
      : S_(S), si_(si), st_(S.graph.stages[si]), p_(S.stages[si]), hw_(S.hw), es_(dtype_bytes(S.dtype)) {}

  StageProg run() {
    prog_.index = static_cast<int32_t>(si_);
    prog_.name = st_.name;
    declare();
    create_streams();
    iterate();
    assemble();
    return std::move(prog_);
  }

 private:
  // ---- declarations ----

  int32_t add_buf(BufDecl d) {
    d.id = static_cast<int32_t>(prog_.bufs.size());
    prog_.bufs.push_back(std::move(d));
    return prog_.bufs.back().id;
  }

  bool conv() const { return st_.kind == StageKind::Conv; }
  int64_t cores() const { return p_.d.ps * p_.d.pc; }
  int64_t co_max() const {
    int64_t m = 0;
    for (size_t g = 1; g < p_.d.cbounds.size(); ++g) m = std::max(m, p_.d.cbounds[g] - p_.d.cbounds[g - 1]);
    return m;
  }
  int64_t cin_tile() const { return conv() ? std::min(p_.d.ci_t, st_.Cin) : co_max(); }
  int64_t out_channels() const { return hw_.out_channels(); }
  // The core input channel of stage input b: inputs alternate over the two
  // (weights, when there are, on the second; the residual operand on the
  // one the plan chose, p_.add_port).
  int32_t in_port(int64_t b) const { return static_cast<int32_t>(b % hw_.core_s2mm); }
  // A buffer whose two slots travel on two streams that run independently:
  // each slot needs its own lock pair.
  static void own_slot_locks(BufDecl& d) {
    d.flags |= kBufSlotLocks;
    d.free_init = 1;
  }
  // Output tiles do when the core has two output (MM2S) channels.
  void slot_locks(BufDecl& d) const {
    if (out_channels() >= 2 && d.slots >= 2) own_slot_locks(d);
  }

  // A DDR view of a storage: [H][W][C] or, flat, [1][1][H*W*C].
  int32_t ddr_buf(int storage, bool flat) {
    auto key = std::make_pair(storage, flat);
    auto it = ddr_bufs_.find(key);
    if (it != ddr_bufs_.end()) return it->second;
    const Storage& s = S_.graph.storages[static_cast<size_t>(storage)];
    const StoragePlan& sp = S_.storages[static_cast<size_t>(storage)];
    BufDecl d;
    d.mem = Mem::DDR;
    d.addr = sp.ddr_addr;
    d.rows = i32(flat ? 1 : s.H, "rows");
    d.cols = i32(flat ? 1 : s.W, "cols");
    d.pitch = i32(flat ? s.elements() : s.C, "pitch");
    d.elem_bytes = i32(es_, "element");
    d.slot_bytes = i32(s.elements() * es_, "buffer size");
    d.name = "ddr:" + s.name;
    int32_t id = add_buf(d);
    ddr_bufs_[key] = id;
    return id;
  }

  // The memtile bands of a resident storage, for reading or writing.
  const std::vector<int32_t>& band_bufs(int storage, bool flat, bool write) {
    auto key = std::make_tuple(storage, flat, write);
    auto it = bands_.find(key);
    if (it != bands_.end()) return it->second;
    const Storage& s = S_.graph.storages[static_cast<size_t>(storage)];
    const StoragePlan& sp = S_.storages[static_cast<size_t>(storage)];
    std::vector<int32_t> ids;
    for (int64_t m = 0; m < hw_.cols; ++m) {
      int64_t y0 = m * sp.band_rows, y1 = std::min(s.H, (m + 1) * sp.band_rows);
      if (y0 >= y1) break;
      BufDecl d;
      d.mem = Mem::Memtile;
      d.tile = i32(m, "tile");
      d.addr = sp.memtile_addr;
      d.rows = i32(flat ? 1 : y1 - y0, "rows");
      d.cols = i32(flat ? 1 : s.W, "cols");
      d.pitch = i32(flat ? (y1 - y0) * s.W * s.C : s.C, "pitch");
      d.elem_bytes = i32(es_, "element");
      d.slot_bytes = i32((y1 - y0) * s.W * s.C * es_, "buffer size");
      if (write) {
        d.free_init = 63;
        d.flags = kBufShared;
      } else {
        d.full_init = 63;
      }
      d.name = "band" + std::to_string(m) + ":" + s.name;
      ids.push_back(add_buf(d));
    }
    return bands_[key] = ids;
  }

  BufDecl core_decl(const Buffer& b, int32_t family, int64_t tile, int64_t count, int64_t stride, int64_t rows,
                    int64_t cols, int64_t pitch, int64_t elem) {
    BufDecl d;
    d.mem = Mem::Core;
    d.tile = i32(tile, "tile");
    d.tile_count = i32(count, "tiles");
    d.tile_stride = i32(stride, "tile stride");
    d.addr = b.addr;
    d.slot_bytes = i32(b.slot_bytes, "slot");
    d.slots = i32(b.slots, "slots");
    d.rows = i32(rows, "rows"), d.cols = i32(cols, "cols"), d.pitch = i32(pitch, "pitch");
    d.elem_bytes = i32(elem, "element");
    d.family = family;
    d.free_init = b.slots > 1 ? 2 : 1;
    d.name = b.name;
    return d;
  }

  const Buffer& staging(int64_t m, const std::string& name) const {
    for (const Buffer& b : p_.memtile[static_cast<size_t>(m)])
      if (b.name == name) return b;
    fail("internal: no memtile buffer '{}' in memtile {}", name, m);
  }

  int32_t mt_buf(int64_t m, const std::string& name, int64_t rows, int64_t cols, int64_t pitch, bool linear) {
    const Buffer& b = staging(m, name);
    BufDecl d;
    d.mem = Mem::Memtile;
    d.tile = i32(m, "tile");
    d.addr = b.addr;
    d.slot_bytes = i32(b.slot_bytes, "slot");
    d.slots = i32(b.slots, "slots");
    if (linear) {
      d.flags = kBufLinear;
      d.elem_bytes = 1;
    } else {
      d.rows = i32(rows, "rows"), d.cols = i32(cols, "cols"), d.pitch = i32(pitch, "pitch");
      d.elem_bytes = i32(es_, "element");
    }
    d.free_init = b.slots > 1 ? 2 : 1;
    d.name = name;
    return add_buf(d);
  }

  void declare() {
    declare_core_buffers();
    declare_ddr();
    declare_staging();
    declare_kernel();
    declare_act();
  }

  // A conv's activation rule (man/bsp-isa.7, ACTIVATION RULES): over its
  // input view, read from its DDR buffer or its memtile row bands. The int8
  // threshold needs the input's scale: build_const_image sets it.
  void declare_act() {
    if (!conv() || !st_.act) return;
    const View& v = st_.in.at(0);
    const Storage& s = S_.graph.storages[static_cast<size_t>(v.storage)];
    ActDecl a;
    if (S_.dtype != DType::Int8) {
      const float t = st_.act->t();
      std::memcpy(&a.threshold, &t, 4);
    }
    a.bh = i32(st_.act->block[0], "act block"), a.bw = i32(st_.act->block[1], "act block");
    a.bc = i32(st_.act->block[2], "act block");
    a.flat = v.flat ? 1 : 0;
    a.c0 = i32(v.flat ? 0 : v.c0, "act channels");
    a.C = i32(v.flat ? s.elements() : v.C, "act channels");
    if (in_src_.at(0) >= 0) {
      a.src = in_src_[0];
      a.src_count = 1;
    } else {
      const std::vector<int32_t>& bands = band_bufs(v.storage, v.flat, false);
      a.src = bands.front();
      a.src_count = i32(static_cast<int64_t>(bands.size()), "bands");
      for (size_t m = 1; m < bands.size(); ++m)
        if (bands[m] != bands[0] + static_cast<int32_t>(m)) fail("internal: layer '{}': row bands not declared in order", st_.name);
    }
    prog_.act = a;
  }
  // The instruction form of an input transfer: the Z form for the ruled
  // input while load_inputs emits it.
  Opc zf(Opc o) const { return z_ ? z_form(o) : o; }

  // Core buffers: inputs, weights, output, residual operand, accumulator.
  void declare_core_buffers() {
    const Decision& d = p_.d;
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    core_in_.assign(static_cast<size_t>(n_in), {});
    for (int64_t b = 0; b < n_in; ++b) {
      const Buffer& cb = p_.core_in[static_cast<size_t>(b)];
      if (st_.channelwise()) {
        for (int64_t i = 0; i < cores(); ++i) {
          BufDecl x = core_decl(cb, static_cast<int32_t>(kFamIn0 + b), i, 1, 1, p_.ih, p_.iw, cin_tile(), es_);
          x.name = cb.name + ".c" + std::to_string(i);
          x.port = in_port(b);
          x.split = i32(p_.fm_split, "split");
          core_in_[static_cast<size_t>(b)].push_back(add_buf(x));
        }
      } else {
        for (int64_t s = 0; s < d.ps; ++s) {
          BufDecl x = core_decl(cb, static_cast<int32_t>(kFamIn0 + b), core_index(d, s, 0), d.pc, 1, p_.ih, p_.iw,
                                cin_tile(), es_);
          x.name = cb.name + ".s" + std::to_string(s);
          x.port = in_port(b);
          x.split = i32(p_.fm_split, "split");  // channels [split, ci) on the second stream and input channel
          core_in_[static_cast<size_t>(b)].push_back(add_buf(x));
        }
      }
    }
    if (conv()) {
      for (int64_t q = 0; q < d.pc; ++q) {
        BufDecl x = core_decl(p_.core_w, kFamW, q, d.ps, d.pc, 0, 0, 0, 1);
        x.flags = kBufLinear;
        x.name = "w.q" + std::to_string(q);
        x.port = static_cast<int32_t>(1 % hw_.core_s2mm);
        // Written straight from DDR by two shim streams: bytes [0, split)
        // by the first (this channel), the rest by the second (the other).
        if (w_split()) x.split = i32(w_half(q), "split");
        core_w_.push_back(add_buf(x));
      }
    }
    for (int64_t i = 0; i < cores(); ++i) {
      BufDecl x = core_decl(p_.core_out, kFamOut, i, 1, 1, d.th, d.tw, co_max(), es_);
      x.name = "out.c" + std::to_string(i);
      slot_locks(x);
      core_out_.push_back(add_buf(x));
      if (st_.add) {
        BufDecl a = core_decl(p_.core_add, kFamAdd, i, 1, 1, d.th, d.tw, co_max(), es_);
        a.name = "add.c" + std::to_string(i);
        a.port = static_cast<int32_t>(p_.add_port % hw_.core_s2mm);
        core_add_.push_back(add_buf(a));
      }
      if (p_.K > 1) {  // [th][tw][co_max] partial sums, int32 (int8) or fp32
        BufDecl a = core_decl(p_.core_acc, kFamAcc, i, 1, 1, d.th, d.tw, co_max(), kAccBytes);
        a.flags = kBufPrivate;
        a.free_init = 0;
        a.name = "acc.c" + std::to_string(i);
        add_buf(a);
      }
    }
  }

  // DDR views and resident bands.
  void declare_ddr() {
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    for (int64_t b = 0; b < n_in; ++b) {
      const View& v = st_.in[static_cast<size_t>(b)];
      if (placed_ddr(v.storage))
        in_src_.push_back(ddr_buf(v.storage, v.flat));
      else
        in_src_.push_back(-1);
    }
    if (st_.add && placed_ddr(st_.add->storage)) add_src_ = ddr_buf(st_.add->storage, false);
    if (placed_ddr(st_.out.storage)) out_dst_ = ddr_buf(st_.out.storage, false);
    if (conv()) {
      int64_t lo = -1, hi = -1;
      for (const auto& part : p_.chunks)
        for (const Chunk& ch : part) {
          if (ch.bytes == 0) continue;
          if (lo < 0 || ch.ddr_addr < lo) lo = ch.ddr_addr;
          hi = std::max(hi, ch.ddr_addr + ch.bytes);
        }
      if (lo < 0) lo = hi = 0;
      BufDecl w;
      w.mem = Mem::DDR;
      w.addr = lo;
      w.slot_bytes = i32(hi - lo, "weights");
      w.flags = kBufLinear;
      w.name = "ddr:weights";
      w_ddr_base_ = lo;
      w_ddr_ = add_buf(w);
    }
  }

  // Memtile staging.
  void declare_staging() {
    const Decision& d = p_.d;
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    const int64_t cin = cin_tile();
    in_stage_.assign(static_cast<size_t>(n_in), {});
    for (int64_t b = 0; b < n_in; ++b) {
      if (in_src_[static_cast<size_t>(b)] < 0) continue;
      std::string nm = p_.core_in[static_cast<size_t>(b)].name;
      if (st_.channelwise()) {
        for (int64_t i = 0; i < cores(); ++i)
          in_stage_[static_cast<size_t>(b)].push_back(
              mt_buf(core_col(hw_, i), nm + ".c" + std::to_string(i), p_.ih, p_.iw, cin, false));
      } else {
        for (int64_t s = 0; s < d.ps; ++s)
          in_stage_[static_cast<size_t>(b)].push_back(
              mt_buf(core_col(hw_, core_index(d, s, 0)), nm + ".s" + std::to_string(s), p_.ih, p_.iw, cin, false));
      }
    }
    if (conv())
      for (int64_t q = 0; q < d.pc; ++q) {
        if (p_.w_direct) {  // no staging: DDR -> core
          w_stage_.push_back(-1);
          continue;
        }
        w_stage_.push_back(mt_buf(q % hw_.cols, "w.q" + std::to_string(q), 0, 0, 0, true));
        // Two shim streams fill it: one slot each (per-slot locks), or both
        // the one slot, disjoint parts once (shared, a free credit each).
        BufDecl& b = prog_.bufs[static_cast<size_t>(w_stage_.back())];
        if (p_.ldw_streams == 2 && b.slots == 2) own_slot_locks(b);
        if (p_.ldw_streams == 2 && b.slots == 1) b.flags |= kBufShared, b.free_init = 2;
      }
    if (st_.add && add_src_ >= 0)
      for (int64_t i = 0; i < cores(); ++i)
        add_stage_.push_back(mt_buf(core_col(hw_, i), "add.c" + std::to_string(i), d.th, d.tw, co_max(), false));
    if (out_dst_ >= 0)
      for (int64_t i = 0; i < cores(); ++i)
        out_stage_.push_back(mt_buf(core_col(hw_, i), "out.c" + std::to_string(i), d.th, d.tw, co_max(), false));
    for (int32_t b : out_stage_) slot_locks(prog_.bufs[static_cast<size_t>(b)]);
  }

  // The kernel.
  void declare_kernel() {
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    KernelDecl k;
    k.id = 0;
    switch (st_.kind) {
      case StageKind::Conv: k.kind = KKind::Conv; break;
      case StageKind::Pool: k.kind = st_.pool_max ? KKind::MaxPool : KKind::AvgPool; break;
      case StageKind::Eltwise: k.kind = KKind::Eltwise; break;
      case StageKind::Softmax: k.kind = KKind::Softmax; break;
    }
    k.kh = i32(st_.kh, "kh"), k.kw = i32(st_.kw, "kw"), k.sh = i32(st_.sh, "sh"), k.sw = i32(st_.sw, "sw");
    if (p_.subsample) k.sh = k.sw = 1;  // the input tiles arrive subsampled
    k.dh = i32(st_.dh, "dh"), k.dw = i32(st_.dw, "dw");
    k.in_buf = kFamIn0;
    k.n_in = i32(n_in, "inputs");
    k.w_buf = conv() ? kFamW : -1;
    k.out_buf = kFamOut;
    k.add_buf = st_.add ? kFamAdd : -1;
    k.acc_buf = p_.K > 1 ? kFamAcc : -1;
    // A sparse24 chunk always carries its counts and indices (kKSparse24 alone).
    const bool s24 = conv() && S_.occupancy[si_].sparse24;
    k.flags = (st_.relu ? kKRelu : 0) | (conv() && !s24 && !S_.occupancy[si_].dense() ? kKSparse : 0) |
              (s24 ? kKSparse24 : 0) |
              (st_.add ? kKAdd : 0) | (st_.count_include_pad ? kKIncludePad : 0) | (st_.clip ? kKClip : 0) |
              (rows_pass() > 0 ? kKRows : 0);
    switch (st_.fn) {
      case EltFn::None: break;
      case EltFn::Sigmoid: k.flags |= kKSigmoid; break;
      case EltFn::HardSigmoid: k.flags |= kKHardSigmoid; break;
      case EltFn::HardSwish: k.flags |= kKHardSwish; break;
      case EltFn::Mul: k.flags |= kKMul | (st_.bcast ? kKBcast : 0); break;
    }
    // fp32: the clip bounds, or hardsigmoid's alpha and beta, as float32
    // bits (int8 programs get their integer constants with the image).
    auto float_bits = [&](double b) {
      const float f = static_cast<float>(b);
      int32_t bits;
      std::memcpy(&bits, &f, 4);
      k.consts.push_back(bits);
    };
    if (st_.clip)
      for (double b : {st_.clip_lo, st_.clip_hi}) float_bits(b);
    if (st_.fn == EltFn::HardSigmoid)
      for (double b : {st_.alpha, st_.beta}) float_bits(b);
    prog_.kernels.push_back(k);
  }

  // Runs of consecutive output channels of positions [co0, co0 + co), all
  // empty when the tile is (n = 0): the same transfers in every iteration.
  std::vector<ChannelRun> runs_of(int64_t co0, int64_t co, int64_t n) const {
    std::vector<ChannelRun> r = channel_runs(p_.d, co0, co0 + co);
    if (n == 0)
      for (ChannelRun& x : r) x.n = 0;
    return r;
  }

  // The bytes [lo, hi) of a weight load of `bytes` that shim stream x of a
  // part moves: all of load c when loads alternate (whole), else its half.
  std::pair<int64_t, int64_t> load_piece(int64_t bytes, bool whole, int64_t c, int64_t x) const {
    const int64_t ns = p_.ldw_streams;
    if (whole) return c % ns == x ? std::make_pair(int64_t(0), bytes) : std::make_pair(int64_t(0), int64_t(0));
    const int64_t half = bytes / ns / 4 * 4;  // 4-byte aligned
    return {x * half, x == ns - 1 ? bytes : (x + 1) * half};
  }

  // LOADW of bytes [lo, hi) of weight chunk ch into buffer dst (a memtile
  // staging buffer or a core's weight buffer), slot, at byte offset at.
  Instr load_w(const Chunk& ch, int64_t lo, int64_t hi, int32_t dst, int64_t slot, int64_t at) const {
    return make(Opc::LoadW, {w_ddr_, 0, i32(ch.bytes ? ch.ddr_addr - w_ddr_base_ + lo : 0, "offset"),
                             i32(hi - lo, "bytes"), dst, static_cast<int32_t>(slot), i32(at, "offset"), kAll});
  }

  // w_direct with two shim streams: the core weight buffer is split where
  // part q's single chunk is cut (load_piece's halves).
  bool w_split() const { return p_.w_direct && p_.ldw_streams == 2; }
  int64_t w_half(int64_t q) const { return load_piece(p_.chunks[static_cast<size_t>(q)][0].bytes, false, 0, 0).second; }

  bool placed_ddr(int storage) const { return S_.storages[static_cast<size_t>(storage)].place == Place::DDR; }

  // ---- streams ----

  // A stream on channel `channel` of a tile (the plan chose it; cores have
  // one queue of each kind).
  QKey new_stream(QKind kind, int64_t tile, const std::string& label, int32_t channel = 0) {
    QKey k{kind, static_cast<int32_t>(tile), channel};
    qs_[k].streams.push_back(label);
    return k;
  }

  // Emits go to a handful of queues in long runs: the last one found is
  // kept (map nodes do not move) to skip the tree walk.
  void emit(const QKey& k, const Instr& in) {
    if (!last_q_ || k < last_k_ || last_k_ < k) {
      last_k_ = k;
      last_q_ = &qs_[k];
    }
    last_q_->flat.push_back(in);
  }

  void unit() {
    for (auto& [k, q] : qs_) q.units.push_back(q.flat.size());
  }

  void create_streams() {
    const Decision& d = p_.d;
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    for (int64_t i = 0; i < cores(); ++i) {
      core_q_.push_back(new_stream(QKind::Core, i, "kernel"));
      // Output tiles alternate over the core's MM2S channels (slot s on channel s).
      for (int64_t c = 0; c < out_channels(); ++c)
        core_out_q_.push_back(new_stream(QKind::CoreMM2S, i, "out", static_cast<int32_t>(c)));
    }
    const int64_t n_fm = st_.channelwise() ? cores() : d.ps;
    fm_q_.assign(static_cast<size_t>(n_in), {});
    ld_q_.assign(static_cast<size_t>(n_in), {});
    for (int64_t b = 0; b < n_in; ++b)
      for (int64_t f = 0; f < n_fm; ++f) {
        const int64_t m = core_col(hw_, st_.channelwise() ? f : core_index(d, f, 0));
        std::string tag = "in" + std::to_string(b) + (st_.channelwise() ? ".c" : ".s") + std::to_string(f);
        const int64_t ns = p_.fm_streams();
        for (int64_t x = 0; x < ns; ++x)
          fm_q_[static_cast<size_t>(b)].push_back(new_stream(QKind::MemtileMM2S, m,
                                                             "LOADFM " + tag + (ns > 1 ? "." + std::to_string(x) : ""),
                                                             p_.ch_fm[static_cast<size_t>(b)][static_cast<size_t>(f * ns + x)]));
        if (in_src_[static_cast<size_t>(b)] >= 0)
          ld_q_[static_cast<size_t>(b)].push_back(
              new_stream(QKind::ShimMM2S, m, "LOAD " + tag, p_.ch_ld[static_cast<size_t>(b)][static_cast<size_t>(f * ns)]));
      }
    if (conv())
      for (int64_t q = 0; q < d.pc; ++q) {
        const int64_t m = q % hw_.cols;
        for (int64_t x = 0; x < p_.ldw_streams; ++x)
          ldw_q_.push_back(new_stream(QKind::ShimMM2S, m,
                                      "LOADW w.q" + std::to_string(q) + (p_.ldw_streams > 1 ? "." + std::to_string(x) : ""),
                                      p_.ch_ldw[static_cast<size_t>(q * p_.ldw_streams + x)]));
        if (!p_.w_direct)
          wm_q_.push_back(new_stream(QKind::MemtileMM2S, m, "LOADWM w.q" + std::to_string(q), p_.ch_wm[static_cast<size_t>(q)]));
      }
    if (st_.add)
      for (int64_t i = 0; i < cores(); ++i) {
        const int64_t m = core_col(hw_, i);
        am_q_.push_back(new_stream(QKind::MemtileMM2S, m, "LOADFM add.c" + std::to_string(i), p_.ch_am[static_cast<size_t>(i)]));
        if (add_src_ >= 0)
          lda_q_.push_back(new_stream(QKind::ShimMM2S, m, "LOAD add.c" + std::to_string(i), p_.ch_lda[static_cast<size_t>(i)]));
      }
    if (out_dst_ >= 0)
      for (int64_t i = 0; i < cores(); ++i)
        wr_q_.push_back(new_stream(QKind::ShimS2MM, core_col(hw_, i), "WRITE out.c" + std::to_string(i), p_.ch_wr[static_cast<size_t>(i)]));
  }

  // ---- instructions ----

  static Instr acq(int32_t buf, int64_t slot, int lock, int value, int mode, int member) {
    return make(Opc::Acq, {buf, static_cast<int32_t>(slot), lock, value, mode, member});
  }
  static Instr rel(int32_t buf, int64_t slot, int lock, int value, int mode, int member) {
    return make(Opc::Rel, {buf, static_cast<int32_t>(slot), lock, value, mode, member});
  }
  static constexpr int kFree = 0, kFull = 1, kRead = 0, kWrite = 1, kAll = -1;

  static Instr box(Opc op, int32_t src, int64_t sslot, int64_t sy, int64_t sx, int64_t sc, int64_t h, int64_t w,
                   int64_t n, int32_t dst, int64_t dslot, int64_t dy, int64_t dx, int64_t dc, int32_t pad, int member) {
    return make(op, {src, i32(sslot, "slot"), i32(sy, "y"), i32(sx, "x"), i32(sc, "c"), i32(h, "h"), i32(w, "w"),
                     i32(n, "n"), dst, i32(dslot, "slot"), i32(dy, "y"), i32(dx, "x"), i32(dc, "c"), pad, member});
  }

  TileGeom tile(int64_t s, int64_t t) const {
    const Decision& d = p_.d;
    const Rect& r = p_.rects[static_cast<size_t>(s)];
    TileGeom g;
    const int64_t u = t / p_.tx, v = t % p_.tx;
    g.oy0 = r.y0 + u * d.th;
    g.ox0 = r.x0 + v * d.tw;
    g.oh = std::max<int64_t>(0, std::min(r.y1, g.oy0 + d.th) - g.oy0);
    g.ow = std::max<int64_t>(0, std::min(r.x1, g.ox0 + d.tw) - g.ox0);
    if (g.empty()) {
      g.oh = g.ow = 0;
      return g;
    }
    const bool window = st_.kind == StageKind::Conv || st_.kind == StageKind::Pool;
    if (p_.subsample) {
      // Every sh-th row and sw-th column from (oy0 * sh, ox0 * sw): the
      // source window [cy0, cy1) x [cx0, cx1) spans them, the tile holds oh x ow.
      g.iy0 = g.cy0 = g.oy0 * st_.sh;
      g.ix0 = g.cx0 = g.ox0 * st_.sw;
      g.cy1 = g.cy0 + (g.oh - 1) * st_.sh + 1;
      g.cx1 = g.cx0 + (g.ow - 1) * st_.sw + 1;
      g.ih = g.oh, g.iw = g.ow;
      g.pt = g.pb = g.pl = g.pr = 0;
      g.subsampled = true;
      return g;
    }
    if (window) {
      g.iy0 = g.oy0 * st_.sh - st_.pt;
      g.ix0 = g.ox0 * st_.sw - st_.pl;
      g.ih = st_.ih(g.oh);
      g.iw = st_.iw(g.ow);
    } else {
      g.iy0 = g.oy0, g.ix0 = g.ox0, g.ih = g.oh, g.iw = g.ow;
    }
    g.cy0 = std::max<int64_t>(0, g.iy0);
    g.cy1 = std::min(st_.H, g.iy0 + g.ih);
    g.cx0 = std::max<int64_t>(0, g.ix0);
    g.cx1 = std::min(st_.W, g.ix0 + g.iw);
    g.pt = g.cy0 - g.iy0;
    g.pb = g.iy0 + g.ih - g.cy1;
    g.pl = g.cx0 - g.ix0;
    g.pr = g.ix0 + g.iw - g.cx1;
    if (g.pt > 255 || g.pb > 255 || g.pl > 255 || g.pr > 255) fail("layer '{}': padding over 255 is not supported", st_.name);
    return g;
  }

  // A whole-map pool in row passes (pass_rows): pass k's input tile holds
  // input rows [k * r, min(H, (k + 1) * r)) of the window, no padding.
  int64_t rows_pass() const { return pass_rows(st_, p_.d); }
  TileGeom pass_tile(TileGeom g, int64_t k) const {
    const int64_t r = rows_pass();
    if (r == 0 || g.empty()) return g;
    g.iy0 = g.cy0 = k * r;
    g.cy1 = std::min(st_.H, g.cy0 + r);
    g.ih = g.cy1 - g.cy0;
    return g;
  }

  // A mul's broadcast scale ([1, 1, C]): whatever the output tile, every
  // core gets the one pixel, its channels only, at the start of its input
  // buffer (the kernel reads it as [C], kKBcast).
  static TileGeom scale_tile() {
    TileGeom g;
    g.oh = g.ow = g.ih = g.iw = 1;
    g.cy1 = g.cx1 = 1;
    return g;
  }

  // Emits the transfers that fill core input `dst` (slot) with the window
  // of view `v` at tile g (subsampled: every stride-th row and column),
  // channels [c0, c0 + n) of the view, from resident bands.
  void fm_from_bands(const QKey& q, const View& v, const TileGeom& g, int64_t c0, int64_t n, int32_t dst,
                     int64_t dslot, int member, int64_t dc = 0) {
    if (g.empty() || n == 0) return;
    const Storage& s = S_.graph.storages[static_cast<size_t>(v.storage)];
    const StoragePlan& sp = S_.storages[static_cast<size_t>(v.storage)];
    const auto& bands = band_bufs(v.storage, v.flat, false);
    if (v.flat) {
      const int64_t be = sp.band_rows * s.W * s.C;
      const int64_t f0 = v.c0 + c0, f1 = f0 + n;
      for (size_t m = 0; m < bands.size(); ++m) {
        int64_t a = std::max(f0, static_cast<int64_t>(m) * be), b = std::min(f1, static_cast<int64_t>(m + 1) * be);
        if (a >= b) continue;
        emit(q, acq(bands[m], 0, kFull, 1, kRead, kAll));
        emit(q, box(zf(Opc::LoadFM), bands[m], 0, 0, 0, a - static_cast<int64_t>(m) * be, 1, 1, b - a, dst, dslot, 0, 0,
                    dc + a - f0, 0, member));
        emit(q, rel(bands[m], 0, kFull, 1, kRead, kAll));
      }
      return;
    }
    if (g.subsampled) {
      // Rows iy0 + k * sh (k < ih) of each band, every sw-th column.
      const int32_t step = static_cast<int32_t>(st_.sh | (st_.sw << 8));
      auto cdiv = [](int64_t x, int64_t b) { return x >= 0 ? (x + b - 1) / b : -(-x / b); };  // ceil, b > 0
      for (size_t m = 0; m < bands.size(); ++m) {
        const int64_t y0 = static_cast<int64_t>(m) * sp.band_rows, y1 = std::min(s.H, y0 + sp.band_rows);
        const int64_t k0 = std::max<int64_t>(0, cdiv(y0 - g.iy0, st_.sh));
        const int64_t k1 = std::min<int64_t>(g.ih, cdiv(y1 - g.iy0, st_.sh));
        if (k1 <= k0) continue;
        emit(q, acq(bands[m], 0, kFull, 1, kRead, kAll));
        emit(q, box(zf(Opc::LoadFMS), bands[m], 0, g.iy0 + k0 * st_.sh - y0, g.cx0, v.c0 + c0, k1 - k0, g.iw, n, dst, dslot,
                    k0, 0, dc, step, member));
        emit(q, rel(bands[m], 0, kFull, 1, kRead, kAll));
      }
      return;
    }
    bool first = true;
    for (size_t m = 0; m < bands.size(); ++m) {
      const int64_t y0 = static_cast<int64_t>(m) * sp.band_rows, y1 = std::min(s.H, y0 + sp.band_rows);
      const int64_t a = std::max(g.cy0, y0), b = std::min(g.cy1, y1);
      if (a >= b) continue;
      const bool last = b == g.cy1;
      const int64_t top = first ? g.pt : 0, bottom = last ? g.pb : 0;
      const int64_t h = (b - a) + top + bottom;
      const int64_t dy = first ? 0 : a - g.iy0;
      emit(q, acq(bands[m], 0, kFull, 1, kRead, kAll));
      emit(q, box(zf(Opc::LoadFM), bands[m], 0, a - y0, g.cx0, v.c0 + c0, h, g.iw, n, dst, dslot, dy, 0, dc,
                  pack_pad(top, g.pl, bottom, g.pr), member));
      emit(q, rel(bands[m], 0, kFull, 1, kRead, kAll));
      first = false;
    }
  }

  // Output tile of core i (channel positions [co0, co0 + co)) to resident
  // bands, one transfer per run of consecutive output channels.
  void out_to_bands(const QKey& q, int32_t src, int64_t sslot, const TileGeom& g, int64_t co0, int64_t co) {
    if (g.empty() || co == 0) return;
    const std::vector<ChannelRun> runs = channel_runs(p_.d, co0, co0 + co);
    const View& v = st_.out;
    const Storage& s = S_.graph.storages[static_cast<size_t>(v.storage)];
    const StoragePlan& sp = S_.storages[static_cast<size_t>(v.storage)];
    const auto& bands = band_bufs(v.storage, false, true);
    for (size_t m = 0; m < bands.size(); ++m) {
      const int64_t y0 = static_cast<int64_t>(m) * sp.band_rows, y1 = std::min(s.H, y0 + sp.band_rows);
      const int64_t a = std::max(g.oy0, y0), b = std::min(g.oy0 + g.oh, y1);
      if (a >= b) continue;
      emit(q, acq(bands[m], 0, kFree, 1, kWrite, kAll));
      for (const ChannelRun& r : runs)
        emit(q, box(Opc::WriteFM, src, sslot, a - g.oy0, 0, r.off, b - a, g.ow, r.n, bands[m], 0, a - y0, g.ox0,
                    v.c0 + r.c0, 0, kAll));
      emit(q, rel(bands[m], 0, kFree, 1, kWrite, kAll));
    }
  }

  // One iteration of the stage's loops: tile t, channel chunk j, input pass
  // k, and what it loads, releases and which slots it uses.
  struct Step {
    int64_t t = 0, j = 0, k = 0;
    bool fm_load = false, fm_rel = false, w_load = false, w_rel = false, first = false, last = false;
    int64_t fm_slot = 0, w_slot = 0, out_slot = 0;
    int64_t ci0 = 0, ci = 0;  // the pass's input channels (conv)
  };

  // Iteration `it` in the plan's loop order; fm_n, w_n, out_n count the
  // input tiles, weight chunks and output tiles loaded so far.
  Step step(int64_t it, int64_t fm_n, int64_t w_n, int64_t out_n) const {
    const Decision& d = p_.d;
    const int64_t T = p_.T, J = p_.J, K = p_.K;
    const bool orderA = d.order == 'A';
    Step x;
    if (orderA) {
      x.t = it / (J * K), x.j = (it / K) % J, x.k = it % K;
    } else {
      x.j = it / (T * K), x.t = (it / K) % T, x.k = it % K;
    }
    x.fm_load = st_.channelwise() || st_.kind == StageKind::Softmax || !(orderA && K == 1) || x.j == 0;
    x.fm_rel = st_.channelwise() || st_.kind == StageKind::Softmax || !(orderA && K == 1) || x.j == J - 1;
    x.w_load = conv() && (!(d.order == 'B' && K == 1) || x.t == 0);
    x.w_rel = conv() && (!(d.order == 'B' && K == 1) || x.t == T - 1);
    x.first = x.k == 0, x.last = x.k == K - 1;
    x.fm_slot = (x.fm_load ? fm_n : fm_n - 1) % 2;
    x.w_slot = (x.w_load ? w_n : w_n - 1) % 2;
    x.out_slot = out_n % 2;
    x.ci0 = x.k * d.ci_t;
    x.ci = conv() ? std::min(st_.Cin, x.ci0 + d.ci_t) - x.ci0 : 0;
    return x;
  }

  void iterate() {
    const Decision& d = p_.d;
    // Prologue: resident weights are loaded once.
    unit();
    if (conv() && d.w_resident) load_resident_weights();
    int64_t fm_n = 0, w_n = 0, out_n = 0;
    for (int64_t it = 0; it < p_.T * p_.J * p_.K; ++it) {
      unit();
      const Step x = step(it, fm_n, w_n, out_n);
      for (int64_t s = 0; s < d.ps; ++s) {
        const TileGeom g = tile(s, x.t);
        for (int64_t q = 0; q < d.pc; ++q) {
          core_program(x, g, s, q);
          if (x.last) output_path(x, g, s, q);
        }
      }
      if (x.fm_load) load_inputs(x);
      if (x.w_load) load_weights(x);
      if (x.fm_load) ++fm_n;
      if (x.w_load) ++w_n;
      if (x.last) ++out_n;
    }
    // Epilogue.
    unit();
    if (conv() && d.w_resident)
      for (int64_t q = 0; q < d.pc; ++q)
        emit(wm_q_[static_cast<size_t>(q)],
             rel(w_stage_[static_cast<size_t>(q)], 0, kFull, static_cast<int>(p_.ldw_streams), kRead, kAll));
  }

  // Resident weights: every part's chunks into its memtile buffer once.
  void load_resident_weights() {
    for (int64_t q = 0; q < p_.d.pc; ++q) {
      const int32_t wb = w_stage_[static_cast<size_t>(q)];
      const auto& chunks = p_.chunks[static_cast<size_t>(q)];
      const int64_t ns = p_.ldw_streams;
      for (int64_t x = 0; x < ns; ++x) {
        // Stream x loads every ns-th chunk, or its half of a single one.
        const QKey& lq = ldw_q_[static_cast<size_t>(q * ns + x)];
        emit(lq, acq(wb, 0, kFree, 1, kWrite, kAll));
        int64_t off = 0;
        for (size_t c = 0; c < chunks.size(); ++c) {
          const Chunk& ch = chunks[c];
          const auto [lo, hi] = load_piece(ch.bytes, chunks.size() >= static_cast<size_t>(ns), static_cast<int64_t>(c), x);
          if (hi > lo) emit(lq, load_w(ch, lo, hi, wb, 0, off + lo));
          off += ch.bytes;
        }
        emit(lq, rel(wb, 0, kFull, 1, kWrite, kAll));
      }
      emit(wm_q_[static_cast<size_t>(q)], acq(wb, 0, kFull, static_cast<int>(ns), kRead, kAll));
    }
  }

  // The kernel program of core (s, q) for one iteration: acquire its
  // operands, COMP, release them.
  void core_program(const Step& x, const TileGeom& g, int64_t s, int64_t q) {
    const Decision& d = p_.d;
    const int64_t J = p_.J, K = p_.K;
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    const int64_t i = core_index(d, s, q);
    const int64_t co0 = d.cbounds[static_cast<size_t>(q * J + x.j)], co1 = d.cbounds[static_cast<size_t>(q * J + x.j + 1)];
    const int64_t co = co1 - co0;
    const QKey& cq = core_q_[static_cast<size_t>(i)];
    const int in_member = st_.channelwise() ? 0 : static_cast<int>(q);
    const int32_t in_fam_idx = static_cast<int32_t>(st_.channelwise() ? i : s);
    if (x.fm_load)
      for (int64_t b = 0; b < n_in; ++b)
        for (int y = 0; y < p_.fm_streams(); ++y)
          emit(cq, acq(core_in_[static_cast<size_t>(b)][static_cast<size_t>(in_fam_idx)], x.fm_slot, 2 * y + kFull, 1,
                       kRead, in_member));
    if (x.w_load)
      for (int y = 0; y < (w_split() ? 2 : 1); ++y)
        emit(cq, acq(core_w_[static_cast<size_t>(q)], x.w_slot, 2 * y + kFull, 1, kRead, static_cast<int>(s)));
    if (x.last) {
      emit(cq, acq(core_out_[static_cast<size_t>(i)], x.out_slot, kFree, 1, kWrite, 0));
      if (st_.add) emit(cq, acq(core_add_[static_cast<size_t>(i)], x.out_slot, kFull, 1, kRead, 0));
    }
    const Chunk* chunk = conv() ? &p_.chunks[static_cast<size_t>(q)][static_cast<size_t>(x.j * K + x.k)] : nullptr;
    const int64_t nnz = chunk ? chunk->nnz : 0;
    const bool pool = st_.kind == StageKind::Pool;
    // Row passes: the window rows before and after the pass's (kKRows).
    const TileGeom pg = pass_tile(g, x.k);
    const int64_t pad_t = rows_pass() > 0 ? pg.cy0 : g.pt, pad_b = rows_pass() > 0 ? st_.H - pg.cy1 : g.pb;
    // Operand pt: a pool's padding rows above, a sparse24 conv's pair count.
    const int64_t a11 = pool ? pad_t : chunk && S_.occupancy[si_].sparse24 ? chunk->pairs : 0;
    const int32_t kernel = 0;
    emit(cq, make(Opc::Comp, {kernel, static_cast<int32_t>(x.fm_slot), static_cast<int32_t>(x.w_slot),
                              static_cast<int32_t>(x.out_slot), static_cast<int32_t>(x.out_slot), i32(g.oh, "oh"),
                              i32(g.ow, "ow"), i32(g.empty() ? 0 : co, "co"), i32(conv() ? x.ci : co, "ci"),
                              i32(nnz, "nnz"), (x.first ? kCFirst : 0) | (x.last ? kCLast : 0),
                              i32(a11, "pt"), i32(pool ? g.pl : 0, "pad"), i32(pool ? pad_b : 0, "pad"),
                              i32(pool ? g.pr : 0, "pad")}));
    if (x.last) {
      emit(cq, rel(core_out_[static_cast<size_t>(i)], x.out_slot, kFull, 1, kWrite, 0));
      if (st_.add) emit(cq, rel(core_add_[static_cast<size_t>(i)], x.out_slot, kFree, 1, kRead, 0));
    }
    if (x.fm_rel)
      for (int64_t b = 0; b < n_in; ++b)
        for (int y = 0; y < p_.fm_streams(); ++y)
          emit(cq, rel(core_in_[static_cast<size_t>(b)][static_cast<size_t>(in_fam_idx)], x.fm_slot, 2 * y + kFree, 1,
                       kRead, in_member));
    if (x.w_rel)
      for (int y = 0; y < (w_split() ? 2 : 1); ++y)
        emit(cq, rel(core_w_[static_cast<size_t>(q)], x.w_slot, 2 * y + kFree, 1, kRead, static_cast<int>(s)));
  }

  // The output path of core (s, q) in the last pass: its output tile out
  // (to DDR through memtile staging, or into resident bands), and the
  // residual operand in for the next.
  void output_path(const Step& x, const TileGeom& g, int64_t s, int64_t q) {
    const Decision& d = p_.d;
    const int64_t J = p_.J;
    const int64_t i = core_index(d, s, q);
    const int64_t co0 = d.cbounds[static_cast<size_t>(q * J + x.j)], co1 = d.cbounds[static_cast<size_t>(q * J + x.j + 1)];
    const int64_t co = co1 - co0;
    const int64_t out_slot = x.out_slot;
    const QKey& oq = core_out_q_[static_cast<size_t>(i * out_channels() + out_slot % out_channels())];
    const int32_t ob = core_out_[static_cast<size_t>(i)];
    emit(oq, acq(ob, out_slot, kFull, 1, kRead, 0));
    const int64_t n = g.empty() ? 0 : co;
    if (out_dst_ >= 0) {
      const int32_t sb = out_stage_[static_cast<size_t>(i)];
      emit(oq, acq(sb, out_slot, kFree, 1, kWrite, kAll));
      emit(oq, box(Opc::WriteFM, ob, out_slot, 0, 0, 0, g.oh, g.ow, n, sb, out_slot, 0, 0, 0, 0, kAll));
      emit(oq, rel(sb, out_slot, kFull, 1, kWrite, kAll));
      const QKey& wq = wr_q_[static_cast<size_t>(i)];
      emit(wq, acq(sb, out_slot, kFull, 1, kRead, kAll));
      for (const ChannelRun& r : runs_of(co0, co, n))
        emit(wq, box(Opc::Write, sb, out_slot, 0, 0, r.off, g.oh, g.ow, r.n, out_dst_, 0, g.oy0, g.ox0,
                     st_.out.c0 + r.c0, 0, kAll));
      emit(wq, rel(sb, out_slot, kFree, 1, kRead, kAll));
    } else {
      out_to_bands(oq, ob, out_slot, g, co0, n);
    }
    emit(oq, rel(ob, out_slot, kFree, 1, kRead, 0));
    if (st_.add) add_operand(g, i, co0, co, n, out_slot);
  }

  // The residual operand of core i's output tile: from DDR through memtile
  // staging, or from resident bands.
  void add_operand(const TileGeom& g, int64_t i, int64_t co0, int64_t co, int64_t n, int64_t out_slot) {
    const QKey& aq = am_q_[static_cast<size_t>(i)];
    const int32_t cb = core_add_[static_cast<size_t>(i)];
    if (add_src_ >= 0) {
      const int32_t sb = add_stage_[static_cast<size_t>(i)];
      const QKey& lq = lda_q_[static_cast<size_t>(i)];
      emit(lq, acq(sb, out_slot, kFree, 1, kWrite, kAll));
      for (const ChannelRun& r : runs_of(co0, co, n))
        emit(lq, box(Opc::Load, add_src_, 0, g.oy0, g.ox0, st_.add->c0 + r.c0, g.oh, g.ow, r.n, sb, out_slot, 0, 0,
                     r.off, 0, kAll));
      emit(lq, rel(sb, out_slot, kFull, 1, kWrite, kAll));
      emit(aq, acq(sb, out_slot, kFull, 1, kRead, kAll));
      emit(aq, acq(cb, out_slot, kFree, 1, kWrite, kAll));
      emit(aq, box(Opc::LoadFM, sb, out_slot, 0, 0, 0, g.oh, g.ow, n, cb, out_slot, 0, 0, 0, 0, kAll));
      emit(aq, rel(cb, out_slot, kFull, 1, kWrite, kAll));
      emit(aq, rel(sb, out_slot, kFree, 1, kRead, kAll));
    } else {
      emit(aq, acq(cb, out_slot, kFree, 1, kWrite, kAll));
      TileGeom ag = g;  // the operand has the output's geometry, no window or padding
      ag.iy0 = ag.cy0 = g.oy0, ag.cy1 = g.oy0 + g.oh, ag.ix0 = ag.cx0 = g.ox0, ag.cx1 = g.ox0 + g.ow;
      ag.ih = g.oh, ag.iw = g.ow, ag.pt = ag.pb = ag.pl = ag.pr = 0;
      ag.subsampled = false;
      for (const ChannelRun& r : runs_of(co0, co, n)) fm_from_bands(aq, *st_.add, ag, r.c0, r.n, cb, out_slot, kAll, r.off);
      emit(aq, rel(cb, out_slot, kFull, 1, kWrite, kAll));
    }
  }

  // Inputs: one stream per rectangle (broadcast to its pc cores) or, for
  // channelwise stages, per core.
  void load_inputs(const Step& x) {
    const Decision& d = p_.d;
    const int64_t J = p_.J;
    const int64_t n_in = static_cast<int64_t>(st_.in.size());
    const int64_t n_fm = st_.channelwise() ? cores() : d.ps;
    const int64_t fm_slot = x.fm_slot;
    for (int64_t b = 0; b < n_in; ++b) {
      const View& v = st_.in[static_cast<size_t>(b)];
      z_ = b == 0 && prog_.act.has_value();
      for (int64_t f = 0; f < n_fm; ++f) {
        const int64_t s = st_.channelwise() ? f / d.pc : f;
        TileGeom g = pass_tile(tile(s, x.t), x.k);
        if (b == 1 && st_.bcast && !g.empty()) g = scale_tile();
        int64_t c0, n;
        if (st_.channelwise() || st_.kind == StageKind::Softmax) {
          const int64_t q = st_.channelwise() ? f % d.pc : 0;
          c0 = d.cbounds[static_cast<size_t>(q * J + x.j)];
          n = d.cbounds[static_cast<size_t>(q * J + x.j + 1)] - c0;
        } else {
          c0 = x.ci0;
          n = x.ci;
        }
        if (g.empty()) n = 0;
        const int32_t cb = core_in_[static_cast<size_t>(b)][static_cast<size_t>(f)];
        const QKey& fq = fm_q_[static_cast<size_t>(b)][static_cast<size_t>(f * p_.fm_streams())];
        if (p_.fm_split > 0) {
          // Channels [0, split) on the first stream, the rest on the
          // second, each under its own lock pair of the slot.
          const int64_t na = std::min(n, p_.fm_split);
          for (int y = 0; y < 2; ++y) {
            const QKey& xq = fm_q_[static_cast<size_t>(b)][static_cast<size_t>(f * 2 + y)];
            const int64_t lo = y ? na : 0, hi = y ? n : na;
            emit(xq, acq(cb, fm_slot, 2 * y + kFree, 1, kWrite, kAll));
            fm_from_bands(xq, v, g, c0 + lo, hi - lo, cb, fm_slot, kAll, lo);
            emit(xq, rel(cb, fm_slot, 2 * y + kFull, 1, kWrite, kAll));
          }
        } else if (in_src_[static_cast<size_t>(b)] >= 0) {
          input_from_ddr(b, f, v, g, c0, n, cb, fq, fm_slot);
        } else {
          emit(fq, acq(cb, fm_slot, kFree, 1, kWrite, kAll));
          fm_from_bands(fq, v, g, c0, n, cb, fm_slot, kAll);
          emit(fq, rel(cb, fm_slot, kFull, 1, kWrite, kAll));
        }
      }
      z_ = false;
    }
  }

  // Input b's tile g (channels [c0, c0 + n) of view v) from DDR through its
  // memtile staging buffer into core buffer cb on stream fq.
  void input_from_ddr(int64_t b, int64_t f, const View& v, const TileGeom& g, int64_t c0, int64_t n, int32_t cb,
                      const QKey& fq, int64_t fm_slot) {
    const int32_t sb = in_stage_[static_cast<size_t>(b)][static_cast<size_t>(f)];
    const int32_t src = in_src_[static_cast<size_t>(b)];
    const QKey& lq = ld_q_[static_cast<size_t>(b)][static_cast<size_t>(f)];
    const int64_t ch = g.cy1 - g.cy0, cw = g.cx1 - g.cx0;
    emit(lq, acq(sb, fm_slot, kFree, 1, kWrite, kAll));
    if (v.flat)
      emit(lq, box(zf(Opc::Load), src, 0, 0, 0, v.c0 + c0, 1, 1, n, sb, fm_slot, 0, 0, 0, 0, kAll));
    else
      emit(lq, box(zf(Opc::Load), src, 0, g.cy0, g.cx0, v.c0 + c0, n ? ch : 0, cw, n, sb, fm_slot, 0, 0, 0, 0, kAll));
    emit(lq, rel(sb, fm_slot, kFull, 1, kWrite, kAll));
    emit(fq, acq(sb, fm_slot, kFull, 1, kRead, kAll));
    emit(fq, acq(cb, fm_slot, kFree, 1, kWrite, kAll));
    if (v.flat)
      emit(fq, box(zf(Opc::LoadFM), sb, fm_slot, 0, 0, 0, 1, 1, n, cb, fm_slot, 0, 0, 0, 0, kAll));
    else
      emit(fq, box(zf(Opc::LoadFM), sb, fm_slot, 0, 0, 0, n ? g.ih : 0, g.iw, n, cb, fm_slot, 0, 0, 0,
                   pack_pad(g.pt, g.pl, g.pb, g.pr), kAll));
    emit(fq, rel(cb, fm_slot, kFull, 1, kWrite, kAll));
    emit(fq, rel(sb, fm_slot, kFree, 1, kRead, kAll));
  }

  // Weights: one stream per channel part, broadcast to its ps cores.
  void load_weights(const Step& x) {
    const Decision& d = p_.d;
    const int64_t K = p_.K;
    const int64_t w_slot = x.w_slot;
    for (int64_t q = 0; q < d.pc; ++q) {
      const Chunk& ch = p_.chunks[static_cast<size_t>(q)][static_cast<size_t>(x.j * K + x.k)];
      const int32_t cb = core_w_[static_cast<size_t>(q)];
      if (p_.w_direct) {
        // DDR -> the part's cores: shim stream y writes its piece
        // [lo, hi) of the chunk under the core buffer's lock pair y.
        const int64_t ns = p_.ldw_streams;
        for (int64_t y = 0; y < ns; ++y) {
          const QKey& lq = ldw_q_[static_cast<size_t>(q * ns + y)];
          const auto [lo, hi] = load_piece(ch.bytes, false, 0, y);
          const int pair = w_split() ? static_cast<int>(2 * y) : 0;
          emit(lq, acq(cb, w_slot, pair + kFree, 1, kWrite, kAll));
          emit(lq, load_w(ch, lo, hi, cb, w_slot, lo));
          emit(lq, rel(cb, w_slot, pair + kFull, 1, kWrite, kAll));
        }
        continue;
      }
      const int32_t sb = w_stage_[static_cast<size_t>(q)];
      const QKey& wq = wm_q_[static_cast<size_t>(q)];
      if (d.w_resident) {
        int64_t off = 0;
        for (int64_t c = 0; c < x.j * K + x.k; ++c) off += p_.chunks[static_cast<size_t>(q)][static_cast<size_t>(c)].bytes;
        emit(wq, acq(cb, w_slot, kFree, 1, kWrite, kAll));
        emit(wq, make(Opc::LoadWM, {sb, 0, i32(off, "offset"), i32(ch.bytes, "bytes"), cb, static_cast<int32_t>(w_slot), 0,
                                    kAll}));
        emit(wq, rel(cb, w_slot, kFull, 1, kWrite, kAll));
        continue;
      }
      // Two shim streams: one slot each, or halves of the one slot.
      const int64_t ns = p_.ldw_streams;
      const bool halves = ns > 1 && prog_.bufs[static_cast<size_t>(sb)].slots == 1;
      for (int64_t y = 0; y < ns; ++y) {
        if (!halves && y != w_slot % ns) continue;
        const QKey& lq = ldw_q_[static_cast<size_t>(q * ns + y)];
        const auto [lo, hi] = load_piece(ch.bytes, !halves, 0, halves ? y : 0);
        emit(lq, acq(sb, w_slot, kFree, 1, kWrite, kAll));
        emit(lq, load_w(ch, lo, hi, sb, w_slot, lo));
        emit(lq, rel(sb, w_slot, kFull, 1, kWrite, kAll));
      }
      emit(wq, acq(sb, w_slot, kFull, halves ? static_cast<int>(ns) : 1, kRead, kAll));
      emit(wq, acq(cb, w_slot, kFree, 1, kWrite, kAll));
      emit(wq, make(Opc::LoadWM, {sb, static_cast<int32_t>(w_slot), 0, i32(ch.bytes, "bytes"), cb,
                                  static_cast<int32_t>(w_slot), 0, kAll}));
      emit(wq, rel(cb, w_slot, kFull, 1, kWrite, kAll));
      emit(wq, rel(sb, w_slot, kFree, halves ? static_cast<int>(ns) : 1, kRead, kAll));
    }
  }

  void assemble() {
    const int64_t JK = p_.J * p_.K;
    std::set<size_t> per;
    for (int64_t x : {int64_t(1), int64_t(2), int64_t(4), p_.K, 2 * p_.K, JK, 2 * JK, p_.T * p_.K, 2 * p_.T * p_.K})
      if (x > 0 && x < 100000) per.insert(static_cast<size_t>(x));
    std::vector<size_t> periods(per.rbegin(), per.rend());
    for (auto& [k, q] : qs_) {
      QueueProg qp;
      qp.kind = k.kind;
      qp.tile = k.tile;
      qp.channel = k.channel;
      for (size_t i = 0; i < q.streams.size(); ++i) qp.label += (i ? ", " : "") + q.streams[i];
      qp.code = compress_loops(q.flat, q.units, periods);
      if (!qp.code.empty()) prog_.queues.push_back(std::move(qp));
    }
  }

  const Schedule& S_;
  size_t si_;
  const Stage& st_;
  const StagePlan& p_;
  const Hardware& hw_;
  int64_t es_;
  StageProg prog_;
  std::map<std::pair<int, bool>, int32_t> ddr_bufs_;
  std::map<std::tuple<int, bool, bool>, std::vector<int32_t>> bands_;
  std::vector<std::vector<int32_t>> core_in_, in_stage_;
  std::vector<int32_t> core_w_, core_out_, core_add_, w_stage_, add_stage_, out_stage_, in_src_;
  int32_t add_src_ = -1, out_dst_ = -1, w_ddr_ = -1;
  bool z_ = false;  // load_inputs is emitting the ruled input's transfers
  int64_t w_ddr_base_ = 0;
  std::map<QKey, QBuild> qs_;
  QKey last_k_{};
  QBuild* last_q_ = nullptr;
  std::vector<QKey> core_q_, core_out_q_, ldw_q_, wm_q_, am_q_, lda_q_, wr_q_;
  std::vector<std::vector<QKey>> fm_q_, ld_q_;
};

}  // namespace

StageProg generate_stage(const Schedule& S, size_t stage) { return Gen(S, stage).run(); }

Program generate_program(const Schedule& S) {
  Program p;
  p.hw = S.hw;
  p.dtype = S.dtype;
  p.ddr_bytes = S.ddr_bytes;
  p.ddr_const_bytes = S.ddr_const_bytes;
  p.fingerprint = S.fingerprint;
  const Storage& in = S.graph.storages[static_cast<size_t>(S.graph.input_storage)];
  const Storage& out = S.graph.storages[static_cast<size_t>(S.graph.output_storage)];
  p.input_addr = S.storages[static_cast<size_t>(S.graph.input_storage)].ddr_addr;
  p.output_addr = S.storages[static_cast<size_t>(S.graph.output_storage)].ddr_addr;
  p.input_shape = {in.H, in.W, in.C};
  p.output_shape = {out.H, out.W, out.C};
  // Stages are independent: generate them in parallel, report the first error.
  const size_t n = S.graph.stages.size();
  p.stages.resize(n);
  std::vector<std::string> errors(n);
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t s = 0; s < n; ++s) {
    try {
      p.stages[s] = generate_stage(S, s);
    } catch (const std::exception& e) {
      errors[s] = e.what();
    }
  }
  for (const std::string& e : errors)
    if (!e.empty()) fail("{}", e);
  return p;
}

}  // namespace bsp::aie2
