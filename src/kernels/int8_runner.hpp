// The int8 program of a compacted int8 model on the fast kernels: one step
// per group of the fusion pass, conv2d and dense layers on the VNNI
// block-sparse kernel (bsr 8x8 layers skip their pruned blocks; tw layers
// run on the tw kernel, tw.hpp; other forms run on the 8x8 blocks covering
// their nonzero int8 weights) with the
// group's residual add in the epilogue, adds and pools on the int8 vector
// ops, every other op with the scalar int8 reference. The result is
// bit-identical to q8::reference_forward.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "compact/compact.hpp"
#include "core/fusion.hpp"
#include "kernels/buffer_pool.hpp"
#include "kernels/conv_i8.hpp"
#include "kernels/nm_i8.hpp"
#include "kernels/runner.hpp"
#include "kernels/tw.hpp"

namespace bsp::kernels {

class Int8Runner {
 public:
  Int8Runner(const Model& m, const compact::CompactModel& c);
  const std::vector<StepInfo>& steps() const { return infos_; }
  // before_softmax: a final softmax's input (dequantised) instead of its output.
  Tensor forward(const Tensor& x, const std::function<void(size_t, double)>& on_step, bool before_softmax = false) const;
  // As Runner's (runner.hpp).
  void set_act_skip(bool on) { act_skip_ = on; }
  const std::vector<ActStat>& act_stats() const { return act_stats_; }
  void reset_act_stats() { act_stats_.assign(steps_.size(), {}); }

 private:
  struct Step {
    size_t node;
    size_t out;                 // the slot written: node, or the add fused into the conv
    std::vector<size_t> in;     // the slots read (a fused add's addend too, for their last use)
    struct Link {
      size_t node;
      std::vector<size_t> in;   // its input slots
    };
    std::vector<Link> chain;    // steps without a kernel: the group's computations, in order
    std::unique_ptr<ConvI8> conv;
    std::unique_ptr<NmConvI8> nm;  // an nm layer on its own kernel (instead of conv)
    std::unique_ptr<TwConvI8> tw;  // a tw layer on its own kernel (instead of conv)
    std::optional<q8::FusedAdd> add;  // a residual add fused into the conv ...
    size_t addend = 0;                // ... and the slot of its other input
    ConvGeom geom;
    bool dense_layer = false;
    bool width_fold = false;  // the stem: conv on the width-folded input
    std::vector<int8_t> depthwise_w;  // a depthwise conv (ops_i8): its weights [kh*kw, C] tap-major
    std::array<int64_t, 3> act_block{};  // conv and depthwise steps with qn.act_q > 0: the input's
                                         // rule (int8.hpp), applied before the layer
  };
  void prepare_layer(Step& s, StepInfo& info, const compact::CompactModel& c, const Shape& in, const FusedGroup& g);
  void prepare_depthwise(Step& s, StepInfo& info, const Shape& in, const FusedGroup& g);

  const Model& m_;
  const q8::QModel& q_;
  std::vector<Step> steps_;
  std::vector<StepInfo> infos_;
  std::vector<size_t> last_use_;
  size_t final_ = 0;  // the slot holding the model's output
  mutable BufferPool<int8_t> buffers_;  // activations reused across steps and passes
  bool act_skip_ = true;
  mutable std::vector<ActStat> act_stats_;  // per step
};

}  // namespace bsp::kernels
