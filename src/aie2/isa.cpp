#include "aie2/isa.hpp"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "core/error.hpp"

// Operand layouts (man/bsp-isa.7):
//   Stage   index, buffers, kernels, queues, name
//   Buf     id, mem, tile, tile_count, tile_stride, addr, slot_bytes, slots,
//           rows, cols, pitch, elem_bytes, free_init | port << 8, full_init | split << 8,
//           flags | family << 8 | name << 16
//   Kdef    id, kind, kh, kw, sh, sw, dh, dw, in_buf, n_in, w_buf, out_buf,
//           add_buf, acc_buf, flags
//   Kparam  kernel, n, then n (at most 13) of the kernel's int8 constants
//   Act     threshold, bh, bw, bc, c0, C, flat, src, src_count (one per stage at most, after the kparams)
//   Queue   kind, tile, channel, records, label
//   Acq/Rel buf, slot, lock (0 free, 1 full; 2, 3 a split buffer's second pair), value, mode (0 read, 1 write), member (-1: every tile)
//   Loop    count, body (instructions, Stride records not counted)
//   Stride  per-iteration increment of a[0..14] of the previous instruction
//   box     src, src_slot, sy, sx, sc, h, w, n, dst, dst_slot, dy, dx, dc, pad, dst_member
//           (Load, LoadFM, WriteFM, Write; LoadFMS: step_y | step_x << 8 for pad;
//           LoadZ, LoadFMZ, LoadFMSZ as their base forms)
//   linear  src, src_slot, src_offset, bytes, dst, dst_slot, dst_offset, dst_member
//           (LoadW, LoadWM)
//   Comp    kernel, in_slot, w_slot, out_slot, add_slot, oh, ow, co, ci, nnz, flags,
//           pad_top, pad_left, pad_bottom, pad_right

namespace bsp::aie2 {

const char* opc_name(Opc o) {
  switch (o) {
    case Opc::Stage: return "stage";
    case Opc::Buf: return "buf";
    case Opc::Kdef: return "kernel";
    case Opc::Kparam: return "kparam";
    case Opc::Queue: return "queue";
    case Opc::End: return "end";
    case Opc::Acq: return "acq";
    case Opc::Rel: return "rel";
    case Opc::Loop: return "loop";
    case Opc::Stride: return "stride";
    case Opc::Load: return "LOAD";
    case Opc::LoadW: return "LOADW";
    case Opc::LoadFM: return "LOADFM";
    case Opc::LoadFMS: return "LOADFMS";
    case Opc::LoadWM: return "LOADWM";
    case Opc::WriteFM: return "WRITEFM";
    case Opc::Write: return "WRITE";
    case Opc::Comp: return "COMP";
    case Opc::Act: return "act";
    case Opc::LoadZ: return "LOADZ";
    case Opc::LoadFMZ: return "LOADFMZ";
    case Opc::LoadFMSZ: return "LOADFMSZ";
  }
  return "?";
}

const char* qkind_name(QKind k) {
  switch (k) {
    case QKind::Core: return "core";
    case QKind::CoreMM2S: return "core.mm2s";
    case QKind::MemtileMM2S: return "memtile.mm2s";
    case QKind::ShimMM2S: return "shim.mm2s";
    case QKind::ShimS2MM: return "shim.s2mm";
  }
  return "?";
}

const char* kkind_name(KKind k) {
  switch (k) {
    case KKind::Conv: return "conv";
    case KKind::MaxPool: return "maxpool";
    case KKind::AvgPool: return "avgpool";
    case KKind::Eltwise: return "eltwise";
    case KKind::Softmax: return "softmax";
  }
  return "?";
}

std::string QueueProg::name() const {
  switch (kind) {
    case QKind::Core: return fmt::format("core{}", tile);
    case QKind::CoreMM2S: return fmt::format("core{}.mm2s{}", tile, channel);
    case QKind::MemtileMM2S: return fmt::format("memtile{}.mm2s{}", tile, channel);
    case QKind::ShimMM2S: return fmt::format("shim{}.mm2s{}", tile, channel);
    case QKind::ShimS2MM: return fmt::format("shim{}.s2mm{}", tile, channel);
  }
  return "?";
}

Instr make(Opc op, std::initializer_list<int32_t> args) {
  Instr in;
  in.op = op;
  size_t i = 0;
  for (int32_t a : args) {
    if (i >= kOperands) fail("internal: too many operands for {}", opc_name(op));
    in.a[i++] = a;
  }
  return in;
}

int64_t executed_instructions(const QueueProg& q) {
  int64_t n = 0;
  const auto& c = q.code;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].op == Opc::Stride) continue;
    if (c[i].op == Opc::Loop) {
      int64_t count = c[i].a[0], body = c[i].a[1];
      n += count * body;
      // Skip the body.
      size_t j = i + 1;
      for (int64_t b = 0; b < body && j < c.size(); ++j)
        if (c[j].op != Opc::Stride) ++b;
      while (j < c.size() && c[j].op == Opc::Stride) ++j;
      i = j - 1;
      continue;
    }
    ++n;
  }
  return n;
}

namespace {

int32_t narrow(int64_t v, const char* what) {
  if (v < INT32_MIN || v > INT32_MAX) fail("the program does not fit the ISA: {} = {} exceeds 32 bits", what, v);
  return static_cast<int32_t>(v);
}

void put(std::vector<int32_t>& w, Opc op, const std::array<int32_t, kOperands>& a) {
  w.push_back(static_cast<int32_t>(op));
  for (int32_t x : a) w.push_back(x);
}

}  // namespace

std::vector<int32_t> encode_program(const Program& p, std::vector<std::string>& names) {
  std::vector<int32_t> w;
  std::map<std::string, int32_t> ids;
  auto name_id = [&](const std::string& s) {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    int32_t id = static_cast<int32_t>(names.size());
    if (id >= 32767) fail("the program does not fit the ISA: more than 32767 names");
    names.push_back(s);
    ids[s] = id;
    return id;
  };
  for (const StageProg& s : p.stages) {
    put(w, Opc::Stage,
        make(Opc::Stage, {s.index, static_cast<int32_t>(s.bufs.size()), static_cast<int32_t>(s.kernels.size()),
                          static_cast<int32_t>(s.queues.size()), name_id(s.name)})
            .a);
    for (const BufDecl& b : s.bufs)
      put(w, Opc::Buf,
          make(Opc::Buf, {b.id, static_cast<int32_t>(b.mem), b.tile, b.tile_count, b.tile_stride,
                          narrow(b.addr, "buffer address"), b.slot_bytes, b.slots, b.rows, b.cols, b.pitch, b.elem_bytes,
                          b.free_init | (b.port << 8), b.full_init | (b.split << 8), (b.flags & 255) | ((b.family & 255) << 8) | (name_id(b.name) << 16)})
              .a);
    for (const KernelDecl& k : s.kernels)
      put(w, Opc::Kdef,
          make(Opc::Kdef, {k.id, static_cast<int32_t>(k.kind), k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, k.in_buf, k.n_in,
                           k.w_buf, k.out_buf, k.add_buf, k.acc_buf, k.flags})
              .a);
    for (const KernelDecl& k : s.kernels)
      for (size_t i = 0; i < k.consts.size(); i += 13) {
        Instr r = make(Opc::Kparam, {k.id, static_cast<int32_t>(std::min<size_t>(13, k.consts.size() - i))});
        for (size_t j = 0; j < 13 && i + j < k.consts.size(); ++j) r.a[2 + j] = k.consts[i + j];
        put(w, Opc::Kparam, r.a);
      }
    if (s.act) {
      const ActDecl& x = *s.act;
      put(w, Opc::Act, make(Opc::Act, {x.threshold, x.bh, x.bw, x.bc, x.c0, x.C, x.flat, x.src, x.src_count}).a);
    }
    for (const QueueProg& q : s.queues) {
      put(w, Opc::Queue,
          make(Opc::Queue, {static_cast<int32_t>(q.kind), q.tile, q.channel, static_cast<int32_t>(q.code.size()),
                            name_id(q.label)})
              .a);
      for (const Instr& in : q.code) put(w, in.op, in.a);
    }
  }
  put(w, Opc::End, {});
  return w;
}

void decode_program(const std::vector<int32_t>& words, const std::vector<std::string>& names, Program& p) {
  constexpr size_t R = kOperands + 1;
  if (words.size() % R) fail("program: {} words is not a whole number of records", words.size());
  const size_t n = words.size() / R;
  size_t i = 0;
  auto rec = [&](size_t k, Instr& in) {
    in.op = static_cast<Opc>(words[k * R]);
    for (int j = 0; j < kOperands; ++j) in.a[static_cast<size_t>(j)] = words[k * R + 1 + static_cast<size_t>(j)];
  };
  auto name = [&](int32_t id) -> std::string {
    if (id < 0 || static_cast<size_t>(id) >= names.size()) fail("program: bad name index {}", id);
    return names[static_cast<size_t>(id)];
  };
  p.stages.clear();
  Instr in;
  for (;;) {
    if (i >= n) fail("program: missing end record");
    rec(i++, in);
    if (in.op == Opc::End) break;
    if (in.op != Opc::Stage) fail("program: record {} is '{}', expected a stage header", i - 1, opc_name(in.op));
    StageProg s;
    s.index = in.a[0];
    s.name = name(in.a[4]);
    const int32_t nb = in.a[1], nk = in.a[2], nq = in.a[3];
    if (nb < 0 || nk < 0 || nq < 0) fail("program: stage '{}': negative counts", s.name);
    for (int32_t b = 0; b < nb; ++b) {
      if (i >= n) fail("program: truncated");
      rec(i++, in);
      if (in.op != Opc::Buf) fail("program: stage '{}': expected a buffer declaration", s.name);
      BufDecl d;
      d.id = in.a[0];
      d.mem = static_cast<Mem>(in.a[1]);
      d.tile = in.a[2], d.tile_count = in.a[3], d.tile_stride = in.a[4];
      d.addr = in.a[5];
      d.slot_bytes = in.a[6], d.slots = in.a[7];
      d.rows = in.a[8], d.cols = in.a[9], d.pitch = in.a[10], d.elem_bytes = in.a[11];
      d.free_init = in.a[12] & 255, d.full_init = in.a[13] & 255;
      d.port = in.a[12] >> 8, d.split = in.a[13] >> 8;
      d.flags = in.a[14] & 255;
      d.family = (in.a[14] >> 8) & 255;
      d.name = name(in.a[14] >> 16);
      if (d.id != b) fail("program: stage '{}': buffer {} declared as {}", s.name, b, d.id);
      if (static_cast<int32_t>(d.mem) < 0 || static_cast<int32_t>(d.mem) > 2) fail("program: buffer '{}': bad memory", d.name);
      if (d.slots < 1 || d.slot_bytes < 0 || d.tile_count < 1) fail("program: buffer '{}': bad size", d.name);
      if (d.rows < 0 || d.cols < 0 || d.pitch < 0 || (d.elem_bytes != 1 && d.elem_bytes != 2 && d.elem_bytes != 4))
        fail("program: buffer '{}': bad layout [{}][{}][{}] of {}-byte elements", d.name, d.rows, d.cols, d.pitch,
             d.elem_bytes);
      if (d.port < 0 || d.split < 0 || (d.split > 0 && (d.mem != Mem::Core || (d.flags & kBufSlotLocks) ||
                                                         ((d.flags & kBufLinear) && d.split >= d.slot_bytes))))
        fail("program: buffer '{}': bad input channel or split", d.name);
      s.bufs.push_back(d);
    }
    for (int32_t k = 0; k < nk; ++k) {
      if (i >= n) fail("program: truncated");
      rec(i++, in);
      if (in.op != Opc::Kdef) fail("program: stage '{}': expected a kernel declaration", s.name);
      KernelDecl d;
      d.id = in.a[0];
      d.kind = static_cast<KKind>(in.a[1]);
      d.kh = in.a[2], d.kw = in.a[3], d.sh = in.a[4], d.sw = in.a[5], d.dh = in.a[6], d.dw = in.a[7];
      d.in_buf = in.a[8], d.n_in = in.a[9], d.w_buf = in.a[10], d.out_buf = in.a[11], d.add_buf = in.a[12];
      d.acc_buf = in.a[13], d.flags = in.a[14];
      if (d.id != k) fail("program: stage '{}': kernel {} declared as {}", s.name, k, d.id);
      if (d.n_in < 1 || d.n_in > 4) fail("program: stage '{}': kernel {} has {} inputs", s.name, k, d.n_in);
      if (static_cast<uint32_t>(d.kind) > static_cast<uint32_t>(KKind::Softmax))
        fail("program: stage '{}': kernel {} has kind {}", s.name, k, static_cast<int32_t>(d.kind));
      // Windows, strides and dilations of at most 16 bits keep the executor's
      // sizes and cycle counts (products of them) inside int64.
      for (int32_t v : {d.kh, d.kw, d.sh, d.sw, d.dh, d.dw})
        if (v < 1 || v > 65535)
          fail("program: stage '{}': kernel {}: window {}x{}, stride {}x{}, dilation {}x{} out of range 1..65535",
               s.name, k, d.kh, d.kw, d.sh, d.sw, d.dh, d.dw);
      if ((d.flags & kKSparse24) && d.kind != KKind::Conv)
        fail("program: stage '{}': kernel {}: only a convolution uses the sparse operand", s.name, k);
      s.kernels.push_back(d);
    }
    while (i < n && static_cast<Opc>(words[i * R]) == Opc::Kparam) {
      rec(i++, in);
      if (in.a[0] < 0 || in.a[0] >= nk || in.a[1] < 0 || in.a[1] > 13)
        fail("program: stage '{}': bad kernel constants", s.name);
      auto& c = s.kernels[static_cast<size_t>(in.a[0])].consts;
      for (int32_t j = 0; j < in.a[1]; ++j) c.push_back(in.a[static_cast<size_t>(2 + j)]);
    }
    if (i < n && static_cast<Opc>(words[i * R]) == Opc::Act) {
      rec(i++, in);
      ActDecl x{in.a[0], in.a[1], in.a[2], in.a[3], in.a[4], in.a[5], in.a[6], in.a[7], in.a[8]};
      if (x.bh < 1 || x.bw < 1 || x.bc < 1 || x.c0 < 0 || x.C < 1 || (x.flat != 0 && x.flat != 1) || x.src < 0 ||
          x.src_count < 1 || x.src > nb - x.src_count)
        fail("program: stage '{}': bad activation rule (block {}x{}x{}, channels {}+{}, flat {}, buffers {}+{})", s.name,
             x.bh, x.bw, x.bc, x.c0, x.C, x.flat, x.src, x.src_count);
      s.act = x;
    }
    for (int32_t q = 0; q < nq; ++q) {
      if (i >= n) fail("program: truncated");
      rec(i++, in);
      if (in.op != Opc::Queue) fail("program: stage '{}': expected a queue header", s.name);
      QueueProg qp;
      qp.kind = static_cast<QKind>(in.a[0]);
      qp.tile = in.a[1], qp.channel = in.a[2];
      qp.label = name(in.a[4]);
      const int32_t len = in.a[3];
      if (len < 0 || i + static_cast<size_t>(len) > n) fail("program: stage '{}': truncated queue", s.name);
      for (int32_t r = 0; r < len; ++r) {
        rec(i++, in);
        switch (in.op) {
          case Opc::Acq: case Opc::Rel: case Opc::Loop: case Opc::Stride: case Opc::Load: case Opc::LoadW:
          case Opc::LoadFM: case Opc::LoadFMS: case Opc::LoadWM: case Opc::WriteFM: case Opc::Write: case Opc::Comp:
            break;
          case Opc::LoadZ: case Opc::LoadFMZ: case Opc::LoadFMSZ:
            if (!s.act) fail("program: stage '{}', queue {}: {} in a stage without an activation rule", s.name, qp.name(),
                             opc_name(in.op));
            break;
          default:
            fail("program: stage '{}', queue {}: unexpected record '{}'", s.name, qp.name(), opc_name(in.op));
        }
        qp.code.push_back(in);
      }
      s.queues.push_back(std::move(qp));
    }
    p.stages.push_back(std::move(s));
  }
  if (i != n) fail("program: records after the end");
}

namespace {

std::string operands(const Instr& in, const StageProg& s) {
  const auto& a = in.a;
  auto buf = [&](int32_t b) -> std::string {
    if (b < 0 || static_cast<size_t>(b) >= s.bufs.size()) return fmt::format("b{}?", b);
    return s.bufs[static_cast<size_t>(b)].name;
  };
  auto member = [&](int32_t m) { return m < 0 ? std::string("all") : fmt::format("#{}", m); };
  switch (in.op) {
    case Opc::Acq:
    case Opc::Rel:
      return fmt::format("{}[{}].{} {} {} {}", buf(a[0]), a[1], a[2] ? "full" : "free", a[3], a[4] ? "write" : "read",
                         member(a[5]));
    case Opc::Loop:
      return fmt::format("{} times, {} instructions", a[0], a[1]);
    case Opc::Load:
    case Opc::LoadFM:
    case Opc::LoadZ:
    case Opc::LoadFMZ:
    case Opc::WriteFM:
    case Opc::Write: {
      std::string pad;
      if (a[13])
        pad = fmt::format(" pad {},{},{},{}", pad_part(a[13], 0), pad_part(a[13], 1), pad_part(a[13], 2),
                          pad_part(a[13], 3));
      return fmt::format("{}[{}] ({},{},{}) -> {}[{}] ({},{},{}) {}x{}x{}{} {}", buf(a[0]), a[1], a[2], a[3], a[4],
                         buf(a[8]), a[9], a[10], a[11], a[12], a[5], a[6], a[7], pad, member(a[14]));
    }
    case Opc::LoadFMS:
    case Opc::LoadFMSZ:
      return fmt::format("{}[{}] ({},{},{}) -> {}[{}] ({},{},{}) {}x{}x{} step {},{} {}", buf(a[0]), a[1], a[2], a[3], a[4],
                         buf(a[8]), a[9], a[10], a[11], a[12], a[5], a[6], a[7], a[13] & 255, (a[13] >> 8) & 255,
                         member(a[14]));
    case Opc::LoadW:
    case Opc::LoadWM:
      return fmt::format("{}[{}]+{} -> {}[{}]+{} {} bytes {}", buf(a[0]), a[1], a[2], buf(a[4]), a[5], a[6], a[3],
                         member(a[7]));
    case Opc::Comp: {
      std::string fl;
      if (a[10] & kCFirst) fl += " first";
      if (a[10] & kCLast) fl += " last";
      std::string pad;
      if (a[11] || a[12] || a[13] || a[14]) pad = fmt::format(" pad {},{},{},{}", a[11], a[12], a[13], a[14]);
      return fmt::format("k{} in[{}] w[{}] out[{}] add[{}] {}x{} co={} ci={} nnz={}{}{}", a[0], a[1], a[2], a[3], a[4],
                         a[5], a[6], a[7], a[8], a[9], fl, pad);
    }
    default:
      return "";
  }
}

std::string strides(const Instr& s) {
  std::string out;
  for (int i = 0; i < kOperands; ++i)
    if (s.a[static_cast<size_t>(i)]) out += fmt::format(" a{}{:+d}", i, s.a[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

std::string program_asm(const Program& p) {
  std::string o;
  o += fmt::format("; bsp AIE2 program (man bsp-isa.7)\n; target {} ({} rows x {} columns), dtype {}\n", p.hw.name,
                   p.hw.rows, p.hw.cols, dtype_name(p.dtype));
  o += fmt::format("; DDR {} bytes: weights at 0..{}, input at {}, output at {}\n", p.ddr_bytes, p.ddr_const_bytes,
                   p.input_addr, p.output_addr);
  for (const StageProg& s : p.stages) {
    o += fmt::format("\nstage {} \"{}\"\n", s.index, s.name);
    for (const BufDecl& b : s.bufs) {
      const char* mem = b.mem == Mem::DDR ? "ddr" : b.mem == Mem::Memtile ? "memtile" : "core";
      std::string tiles = b.mem == Mem::DDR ? "" : fmt::format("{}", b.tile);
      if (b.tile_count > 1) tiles += fmt::format("+{}*{}", b.tile_stride, b.tile_count - 1);
      std::string layout = (b.flags & kBufLinear) ? "bytes" : fmt::format("[{}][{}][{}]x{}", b.rows, b.cols, b.pitch, b.elem_bytes);
      std::string fl;
      if (b.flags & kBufShared) fl += " shared";
      if (b.flags & kBufPrivate) fl += " private";
      if (b.flags & kBufSlotLocks) fl += " slot-locks";
      if (b.mem == Mem::Core && !(b.flags & kBufPrivate)) fl += fmt::format(" port={}", b.port);
      if (b.split > 0) fl += fmt::format(" split={}", b.split);
      o += fmt::format("  buf {:<3} {:<16} {}{} @{} {}x{} {} locks free={} full={}{}\n", b.id, b.name, mem,
                       tiles.empty() ? "" : "(" + tiles + ")", b.addr, b.slots, b.slot_bytes, layout, b.free_init,
                       b.full_init, fl);
    }
    for (const KernelDecl& k : s.kernels) {
      std::string fl;
      if (k.flags & kKRelu) fl += " relu";
      if (k.flags & kKSparse) fl += " sparse";
      if (k.flags & kKSparse24) fl += " sparse24";
      if (k.flags & kKAdd) fl += " add";
      if (k.flags & kKIncludePad) fl += " include_pad";
      if (k.flags & kKClip) fl += " clip";
      if (k.flags & kKSigmoid) fl += " sigmoid";
      if (k.flags & kKHardSigmoid) fl += " hardsigmoid";
      if (k.flags & kKHardSwish) fl += " hardswish";
      if (k.flags & kKMul) fl += " mul";
      if (k.flags & kKBcast) fl += " bcast";
      if (k.flags & kKRows) fl += " rows";
      auto bn = [&](int32_t f) { return f < 0 ? std::string("-") : fmt::format("f{}", f); };
      o += fmt::format("  kernel {} {} {}x{} stride {}x{} dilation {}x{} in={}{} w={} out={} add={} acc={}{}\n", k.id,
                       kkind_name(k.kind), k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, bn(k.in_buf),
                       k.n_in > 1 ? fmt::format("(x{})", k.n_in) : "", bn(k.w_buf), bn(k.out_buf), bn(k.add_buf),
                       bn(k.acc_buf), fl);
      if (!k.consts.empty()) {
        o += "    ; int8 constants:";
        for (int32_t v : k.consts) o += fmt::format(" {}", v);
        o += "\n";
      }
    }
    if (s.act) {
      const ActDecl& x = *s.act;
      const bool q8 = p.dtype == DType::Int8;
      float t;
      std::memcpy(&t, &x.threshold, 4);
      o += fmt::format("  act     |v| < {} block {}x{}x{} of {}[channels {}+{}]{} ({} buffer{} from {})\n",
                       q8 ? fmt::format("{}", x.threshold) : fmt::format("{}", t), x.bh, x.bw, x.bc,
                       x.src >= 0 && static_cast<size_t>(x.src) < s.bufs.size() ? s.bufs[static_cast<size_t>(x.src)].name : "?",
                       x.c0, x.C, x.flat ? " flat" : "", x.src_count, x.src_count > 1 ? "s" : "", x.src);
    }
    for (const QueueProg& q : s.queues) {
      o += fmt::format("  queue {} ; {}\n", q.name(), q.label);
      int depth = 0;
      int64_t body_left = -1;
      for (size_t i = 0; i < q.code.size(); ++i) {
        const Instr& in = q.code[i];
        if (in.op == Opc::Stride) {
          o += fmt::format("    {:{}}  ; stride{}\n", "", 2 * depth, strides(in));
          continue;
        }
        o += fmt::format("    {:{}}{:<8} {}\n", "", 2 * depth, opc_name(in.op), operands(in, s));
        if (in.op == Opc::Loop) {
          depth = 1;
          body_left = in.a[1];
          continue;
        }
        if (body_left > 0 && --body_left == 0) {
          bool more_strides = i + 1 < q.code.size() && q.code[i + 1].op == Opc::Stride;
          if (more_strides) {
            o += fmt::format("    {:{}}  ; stride{}\n", "", 2 * depth, strides(q.code[i + 1]));
            ++i;
          }
          depth = 0;
          o += "    endloop\n";
          body_left = -1;
        }
      }
    }
  }
  return o;
}

}  // namespace bsp::aie2
