// The DDR image of the constants: packed weight chunks (man/bsp-isa.7).
#include <cstring>

#include "aie2/codegen.hpp"
#include "aie2/plan.hpp"
#include "aie2/sparse24.hpp"
#include "compact/compact.hpp"
#include "compact/int8.hpp"
#include "core/error.hpp"
#include "core/fold.hpp"

namespace bsp::aie2 {

std::vector<ChannelParams> conv_params(const Stage& st, const Model& m) {
  const Node& conv = m.nodes[static_cast<size_t>(st.conv_node)];
  std::vector<ChannelParams> p(static_cast<size_t>(st.Cout));
  if (conv.has_param("bias")) {
    const Tensor& b = conv.param("bias");
    for (int64_t c = 0; c < st.Cout; ++c) p[static_cast<size_t>(c)].bias = b[static_cast<size_t>(c)];
  }
  if (st.bn_node >= 0) {  // the batchnorm's channel affine, as the reference forward applies it
    const ChannelAffine a = batchnorm_affine(m.nodes[static_cast<size_t>(st.bn_node)]);
    for (int64_t c = 0; c < st.Cout; ++c) {
      p[static_cast<size_t>(c)].scale = a.scale[static_cast<size_t>(c)];
      p[static_cast<size_t>(c)].shift = a.shift[static_cast<size_t>(c)];
    }
  }
  return p;
}

namespace {

// The int8 constants of a stage's kernel (layouts in man/bsp-isa.7). The
// int8 program folds the graph with the same fusion pass as the lowering
// (q8::check_folding holds for every program bsp reads or makes).
std::vector<int32_t> int8_consts(const Stage& st, const q8::QModel& q) {
  auto node = [&](int i) -> const q8::QNode& { return q.nodes.at(static_cast<size_t>(i)); };
  std::vector<int32_t> c;
  switch (st.kind) {
    case StageKind::Conv: {
      const q8::QNode& qc = node(st.conv_node);
      c.push_back(qc.lo);
      c.push_back(qc.hi);
      if (st.add_node >= 0) {
        const q8::QNode& qa = node(st.add_node);
        c.insert(c.end(), {1, qa.in_mult.at(static_cast<size_t>(st.add_self)), qa.in_mult.at(static_cast<size_t>(1 - st.add_self)),
                           qa.in_shift, qa.lo, qa.hi});
      } else {
        c.insert(c.end(), {0, 0, 0, 0, -128, 127});
      }
      break;
    }
    case StageKind::Pool: {
      const q8::QNode& qp = node(st.out_node);
      if (qp.kind == q8::Kind::MaxPool) break;
      if (whole_map_pool(st)) {
        // One window, no padding: only the divisor kh * kw (an avgpool's
        // table has a rescale for every count up to it).
        const int64_t n = st.kh * st.kw;
        const size_t at = qp.kind == q8::Kind::GlobalAvgPool ? 0 : static_cast<size_t>(n - 1);
        if (at >= qp.count_rq.size()) fail("internal: layer '{}' has no rescale for its window of {}", st.name, n);
        c.insert(c.end(), {static_cast<int32_t>(n), 1, qp.count_rq[at].mult, qp.count_rq[at].shift});
        break;
      }
      c.push_back(qp.kind == q8::Kind::GlobalAvgPool ? static_cast<int32_t>(st.kh * st.kw) : 1);
      c.push_back(static_cast<int32_t>(qp.count_rq.size()));
      for (auto r : qp.count_rq) c.insert(c.end(), {r.mult, r.shift});
      break;
    }
    case StageKind::Eltwise: {
      const int32_t n = static_cast<int32_t>(st.in.size());
      if (st.add_node >= 0) {
        const q8::QNode& qa = node(st.add_node);
        c.insert(c.end(), {0, n});
        for (int32_t v : qa.in_mult) c.push_back(v);
        c.insert(c.end(), {qa.in_shift, qa.lo, qa.hi});
      } else if (st.clip) {
        const q8::QNode& qc = node(st.out_node);
        c.insert(c.end(), {3, 1, 1, 0, qc.lo, qc.hi});
      } else if (st.fn == EltFn::Mul) {
        // The int32 product rescaled once: m0 and shift are the node's rq.
        const q8::QNode& qm = node(st.out_node);
        if (qm.kind != q8::Kind::Mul) fail("internal: layer '{}' is not an int8 mul", st.name);
        c.insert(c.end(), {5, 2, qm.prod_rq.mult, 0, qm.prod_rq.shift, -128, 127});
      } else if (st.fn != EltFn::None) {
        // The node's 256-entry table, 4 entries per word: entry 4k + j
        // (for x = 4k + j - 128) in byte j of word k, little-endian.
        const q8::QNode& ql = node(st.out_node);
        if (ql.kind != q8::Kind::Lut || ql.table.size() != 256)
          fail("internal: layer '{}' has no int8 lookup table", st.name);
        c.insert(c.end(), {4, 1, 1, 0, -128, 127});
        for (size_t k = 0; k < 256; k += 4) {
          uint32_t w = 0;
          for (size_t j = 0; j < 4; ++j) w |= static_cast<uint32_t>(static_cast<uint8_t>(ql.table[k + j])) << (8 * j);
          c.push_back(static_cast<int32_t>(w));
        }
      } else {
        c.insert(c.end(), {st.relu ? 1 : 2, 1, 1, 0, -128, 127});
      }
      break;
    }
    case StageKind::Softmax:
      fail("layer '{}': int8 programs cannot run a softmax on the array", st.name);
  }
  // The concats the output is a slice of, innermost first: each rescales.
  c.push_back(static_cast<int32_t>(st.concat_path.size()));
  for (auto [cn, k] : st.concat_path) {
    const q8::QNode& qc = node(cn);
    c.push_back(qc.in_rq.at(static_cast<size_t>(k)).mult);
    c.push_back(qc.in_rq.at(static_cast<size_t>(k)).shift);
  }
  return c;
}

// A sparse24 chunk's pairs (man/bsp-isa.7, SPARSE OPERAND), after its
// counts and indices: per block row (positions [r0, r1) of the row order),
// its units (stored block e, tap t) in the order e * taps + t, two by two
// (an odd last one with an all-zero unit); unit 2p gives reduction indices
// 0-7 of pair p, unit 2p + 1 indices 8-15. Returns the pairs written.
int64_t pack_pairs_24(const Stage& st, const StagePlan& p, const Occupancy& occ, const Chunk& ch, const Array<int8_t>& wq,
                      uint8_t* at) {
  const int64_t KHW = st.kh * st.kw;
  const int64_t r0 = ch.co0 / kBlock, r1 = (ch.co1 + kBlock - 1) / kBlock;
  const int64_t b0 = ch.ci0 / kBlock, b1 = (ch.ci1 + kBlock - 1) / kBlock;
  int64_t pairs = 0;
  std::vector<std::pair<int64_t, int64_t>> units;  // (block column, tap)
  int8_t dec[kPairElems];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t rr = block_row(p.d, r);
    units.clear();
    for (int64_t b = b0; b < b1; ++b)
      if (occ.at(rr, b))
        for (int64_t t = 0; t < KHW; ++t) units.emplace_back(b, t);
    for (size_t u = 0; u < units.size(); u += 2) {
      for (int64_t o = 0; o < kBlock; ++o)
        for (int64_t k = 0; k < 16; ++k) {
          const size_t ui = u + static_cast<size_t>(k / kBlock);
          int8_t v = 0;
          if (ui < units.size()) {
            const auto [b, t] = units[ui];
            const int64_t oc = rr * kBlock + o, ic = b * kBlock + k % kBlock;
            if (r * kBlock + o < ch.co1 && ic < ch.ci1) v = wq[static_cast<size_t>((oc * KHW + t) * st.Cin + ic)];
          }
          dec[16 * o + k] = v;
        }
      if (const int64_t bad = pack_pair(dec, at + pairs * kPairBytes); bad >= 0) {
        const auto [b, t] = units[u + static_cast<size_t>(bad % 16 / kBlock)];
        fail("layer '{}': output channel {}, tap {}, input channels {}..{} keep more than 2 of 4 weights: no sparse operand",
             st.name, rr * kBlock + bad / 16, t, b * kBlock + bad % kBlock, b * kBlock + bad % kBlock + 3);
      }
      ++pairs;
    }
  }
  return pairs;
}

}  // namespace

std::vector<uint8_t> build_const_image(const Schedule& S, const Model& m, Program* prog) {
  if (S.dtype == DType::BF16) fail("bf16 programs can be scheduled and estimated, not built into a DDR image yet");
  const bool int8 = S.dtype == DType::Int8;
  const q8::QModel* q = nullptr;
  if (int8) {
    if (!(m.compact && m.compact->int8))
      fail("the schedule is for int8 but the model has no int8 weights: run 'bsp compact --dtype int8' first");
    q = &*m.compact->int8;
    if (q->nodes.size() != m.nodes.size()) fail("internal: the int8 program does not match the graph");
    if (prog) {
      if (prog->stages.size() != S.graph.stages.size()) fail("internal: the program does not match the schedule");
      for (size_t s = 0; s < S.graph.stages.size(); ++s) {
        for (KernelDecl& k : prog->stages[s].kernels) k.consts = int8_consts(S.graph.stages[s], *q);
        // The int8 threshold T of a rule: from the scale of the conv's input (int8.hpp).
        if (auto& a = prog->stages[s].act) {
          const int32_t T = q->nodes.at(static_cast<size_t>(S.graph.stages[s].conv_node)).act_q;
          if (T < 1) fail("layer '{}': the int8 program has no threshold for its activation rule", S.graph.stages[s].name);
          a->threshold = T;
        }
      }
    }
  }
  std::vector<uint8_t> img(static_cast<size_t>(S.ddr_const_bytes), 0);
  for (size_t s = 0; s < S.graph.stages.size(); ++s) {
    const Stage& st = S.graph.stages[s];
    if (st.kind != StageKind::Conv) continue;
    const StagePlan& p = S.stages[s];
    const Occupancy& occ = S.occupancy[s];
    const bool sparse = !occ.dense() || occ.sparse24;  // sparse24 chunks always carry counts and indices
    if (occ.sparse24 && !int8) fail("internal: layer '{}': the sparse operand is int8 only", st.name);
    const Tensor w = stage_weight(st, m);
    const int64_t KHW = st.kh * st.kw;
    if (static_cast<int64_t>(w.size()) != st.Cout * KHW * st.Cin) fail("layer '{}': weight size mismatch", st.name);
    const q8::QNode* qn = int8 ? &q->nodes[static_cast<size_t>(st.conv_node)] : nullptr;
    const Array<int8_t> wq = qn ? stage_weight_i8(st, *qn) : Array<int8_t>();
    if (qn && static_cast<int64_t>(wq.size()) != st.Cout * KHW * st.Cin)
      fail("layer '{}': the int8 weight has the wrong size", st.name);
    const std::vector<ChannelParams> prm = int8 ? std::vector<ChannelParams>() : conv_params(st, m);
    for (const auto& part : p.chunks)
      for (const Chunk& ch : part) {
        if (ch.bytes == 0) continue;
        uint8_t* base = img.data() + ch.ddr_addr;
        uint8_t* at = base;
        // Positions in the stage's block-row order (Decision::rows): the
        // channels and block rows in the order the core computes them.
        for (int64_t c = ch.co0; c < ch.co1; ++c) {
          if (int8) {
            const size_t o = static_cast<size_t>(out_channel(p.d, c));
            int32_t v[3] = {qn->bias[o], qn->rq[o].mult, qn->rq[o].shift};
            std::memcpy(at, v, sizeof v);
            at += sizeof v;
          } else {
            const ChannelParams& cp = prm[static_cast<size_t>(out_channel(p.d, c))];
            float v[3] = {cp.bias, cp.scale, cp.shift};
            std::memcpy(at, v, sizeof v);
            at += sizeof v;
          }
        }
        const int64_t r0 = ch.co0 / kBlock, r1 = (ch.co1 + kBlock - 1) / kBlock;
        const int64_t b0 = ch.ci0 / kBlock, b1 = (ch.ci1 + kBlock - 1) / kBlock;
        if (sparse) {
          uint16_t* cnt = reinterpret_cast<uint16_t*>(at);
          uint16_t* idx = cnt + (r1 - r0);
          int64_t n = 0;
          for (int64_t r = r0; r < r1; ++r) {
            uint16_t k = 0;
            for (int64_t b = b0; b < b1; ++b)
              if (occ.at(block_row(p.d, r), b)) {
                idx[n++] = static_cast<uint16_t>(b - b0);
                ++k;
              }
            cnt[r - r0] = k;
          }
          at += ((2 * (r1 - r0) + 2 * n) + 3) / 4 * 4;
        }
        if (occ.sparse24) {
          const int64_t pairs = pack_pairs_24(st, p, occ, ch, wq, at);
          if (pairs != ch.pairs) fail("internal: layer '{}': packed {} pairs, expected {}", st.name, pairs, ch.pairs);
          if ((at - base) + pairs * kPairBytes > ch.bytes)
            fail("internal: layer '{}': chunk overflows its {} bytes", st.name, ch.bytes);
          continue;
        }
        const int64_t es = int8 ? 1 : 4;
        int64_t blk = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t rr = block_row(p.d, r);  // the block row in the weight
            if (sparse && !occ.at(rr, b)) continue;
            const int64_t start = blk * kBlock * KHW * kBlock;
            for (int64_t o = 0; o < kBlock; ++o) {
              const int64_t oc = rr * kBlock + o;
              for (int64_t kk = 0; kk < KHW; ++kk)
                for (int64_t i = 0; i < kBlock; ++i) {
                  const int64_t ic = b * kBlock + i;
                  const bool real = r * kBlock + o < ch.co1 && ic < ch.ci1;
                  const size_t src = static_cast<size_t>((oc * KHW + kk) * st.Cin + ic);
                  const int64_t dst = start + (o * KHW + kk) * kBlock + i;
                  if (int8)
                    reinterpret_cast<int8_t*>(at)[dst] = real ? wq[src] : int8_t{0};
                  else
                    reinterpret_cast<float*>(at)[dst] = real ? w[src] : 0.0f;
                }
            }
            ++blk;
          }
        if (blk != ch.nnz) fail("internal: layer '{}': packed {} blocks, expected {}", st.name, blk, ch.nnz);
        const int64_t used = (at - base) + blk * kBlock * KHW * kBlock * es;
        if (used > ch.bytes) fail("internal: layer '{}': chunk overflows its {} bytes", st.name, ch.bytes);
      }
  }
  return img;
}

}  // namespace bsp::aie2
