// The DDR image of the constants: packed weight chunks (man/bsp-isa.7).
#include <cmath>
#include <cstring>

#include "aie2/codegen.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

std::vector<ChannelParams> conv_params(const Stage& st, const Model& m) {
  const Node& conv = m.nodes[static_cast<size_t>(st.conv_node)];
  std::vector<ChannelParams> p(static_cast<size_t>(st.Cout));
  if (conv.has_param("bias")) {
    const Tensor& b = conv.param("bias");
    for (int64_t c = 0; c < st.Cout; ++c) p[static_cast<size_t>(c)].bias = b[static_cast<size_t>(c)];
  }
  if (st.bn_node >= 0) {
    // As ref::batchnorm computes it: scale = gamma / sqrt(var + eps) in double.
    const Node& bn = m.nodes[static_cast<size_t>(st.bn_node)];
    const Tensor &g = bn.param("gamma"), &be = bn.param("beta"), &mu = bn.param("mean"), &var = bn.param("var");
    const double eps = bn.attrs.get_double("eps", 1e-5);
    for (int64_t c = 0; c < st.Cout; ++c) {
      size_t i = static_cast<size_t>(c);
      double s = g[i] / std::sqrt(static_cast<double>(var[i]) + eps);
      p[i].scale = static_cast<float>(s);
      p[i].shift = static_cast<float>(be[i] - s * mu[i]);
    }
  }
  return p;
}

std::vector<uint8_t> build_const_image(const Schedule& S, const Model& m) {
  if (S.dtype != DType::FP32)
    fail("building a {} weight image is not supported yet (fp32 models only)", dtype_name(S.dtype));
  std::vector<uint8_t> img(static_cast<size_t>(S.ddr_const_bytes), 0);
  for (size_t s = 0; s < S.graph.stages.size(); ++s) {
    const Stage& st = S.graph.stages[s];
    if (st.kind != StageKind::Conv) continue;
    const StagePlan& p = S.stages[s];
    const Occupancy& occ = S.occupancy[s];
    const bool sparse = !occ.dense();
    const Node& node = m.nodes[static_cast<size_t>(st.conv_node)];
    const Tensor& w = node.param("weight");
    const int64_t KHW = st.kh * st.kw;
    if (static_cast<int64_t>(w.size()) != st.Cout * KHW * st.Cin) fail("layer '{}': weight size mismatch", st.name);
    const std::vector<ChannelParams> prm = conv_params(st, m);
    for (const auto& part : p.chunks)
      for (const Chunk& ch : part) {
        if (ch.bytes == 0) continue;
        uint8_t* base = img.data() + ch.ddr_addr;
        uint8_t* at = base;
        for (int64_t c = ch.co0; c < ch.co1; ++c) {
          const ChannelParams& cp = prm[static_cast<size_t>(c)];
          float v[3] = {cp.bias, cp.scale, cp.shift};
          std::memcpy(at, v, sizeof v);
          at += sizeof v;
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
              if (occ.at(r, b)) {
                idx[n++] = static_cast<uint16_t>(b - b0);
                ++k;
              }
            cnt[r - r0] = k;
          }
          at += ((2 * (r1 - r0) + 2 * n) + 3) / 4 * 4;
        }
        float* data = reinterpret_cast<float*>(at);
        int64_t blk = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t b = b0; b < b1; ++b) {
            if (sparse && !occ.at(r, b)) continue;
            float* out = data + blk * kBlock * KHW * kBlock;
            for (int64_t o = 0; o < kBlock; ++o) {
              const int64_t oc = r * kBlock + o;
              for (int64_t kk = 0; kk < KHW; ++kk)
                for (int64_t i = 0; i < kBlock; ++i) {
                  const int64_t ic = b * kBlock + i;
                  float v = 0;
                  if (oc < ch.co1 && ic < ch.ci1) v = w[static_cast<size_t>((oc * KHW + kk) * st.Cin + ic)];
                  out[(o * KHW + kk) * kBlock + i] = v;
                }
            }
            ++blk;
          }
        if (blk != ch.nnz) fail("internal: layer '{}': packed {} blocks, expected {}", st.name, blk, ch.nnz);
        const int64_t used = (at - base) + blk * kBlock * KHW * kBlock * 4;
        if (used > ch.bytes) fail("internal: layer '{}': chunk overflows its {} bytes", st.name, ch.bytes);
      }
  }
  return img;
}

}  // namespace bsp::aie2
