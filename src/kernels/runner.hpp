// Running a whole model with the fast CPU kernels: the library entry point
// behind bsp eval and bsp bench.
//
// A compacted model runs its compact forms: bsr layers on the block-sparse
// kernel, nm and tw layers on theirs, dense layers on the dense kernel; an
// int8 model runs the int8 program (bit-identical to q8::reference_forward).
// A model that is not compacted runs every layer on the dense kernel (bsp's
// dense path). Path::Blas runs every convolution and dense layer through
// OpenBLAS instead (the baseline of bsp bench). fp32 steps fold a batchnorm
// into the layer before it and fuse a following residual add and relu into
// the layer's epilogue, so results match the reference forward to rounding.
// With fuse_add = false the add stays a step of its own: then the step
// outputs are exactly the tensors the int8 program keeps (int8 calibration).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compact/int8.hpp"
#include "core/model.hpp"

namespace bsp::kernels {

enum class Path {
  Auto,   // the compact forms when the model has them, else Dense
  Dense,  // bsp's dense kernel for every layer, fp32 (compact data ignored)
  Blas,   // OpenBLAS (im2col + sgemm) for every layer, fp32
};
const char* path_name(Path p);

// One executed step: a graph node and the nodes fused into it.
struct StepInfo {
  std::string name;        // the main graph node
  Op op;
  std::vector<std::string> fused;  // batchnorm / add / relu folded into it
  std::string kernel;      // "bsr", "dense", "nm", "tw", "blas", "int8-bsr", ..., "ref" for other ops
  int64_t macs = 0;        // dense multiply-accumulates per image (conv2d/dense)
};

// Per step, over the passes since the runner was made or reset_act_stats:
// the blocks of the step's input its activation rule zeroed (all zero),
// and all its rule blocks (0 for steps without a rule).
struct ActStat {
  int64_t zero_blocks = 0, blocks = 0;
  double fraction() const { return blocks ? static_cast<double>(zero_blocks) / static_cast<double>(blocks) : 0.0; }
};

class Runner {
 public:
  // The model must outlive the runner (parameters of non-conv ops are read
  // from it). Preparing packs every layer's weights.
  explicit Runner(const Model& m, Path path = Path::Auto, bool fuse_add = true);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  bool is_int8() const;
  const std::vector<StepInfo>& steps() const;
  // Whether the kernels skip the zero input blocks that activation rules
  // leave (default on; off: the rule applied, every block multiplied, for
  // bsp bench's comparison).
  void set_act_skip(bool on);
  const std::vector<ActStat>& act_stats() const;  // per step
  void reset_act_stats();
  // x [N, H, W, C] -> the last node's output. Not for concurrent calls on one
  // runner (it keeps its activation buffers between passes). `on_step(i, ms)`, when given,
  // is called after step i with its wall time; `on_output(node, t)` sees the
  // tensor each fp32 step produces (node: the last node of its fused chain).
  Tensor forward(const Tensor& x, const std::function<void(size_t step, double ms)>& on_step = {},
                 const std::function<void(size_t node, const Tensor& out)>& on_output = {}) const;
  // Like forward, but a final softmax is not applied: its input (the logits;
  // int8: dequantised) comes out instead. Other models: forward's output.
  // `on_output` as for forward (fp32 steps only: int8 tensors are integers).
  Tensor logits(const Tensor& x, const std::function<void(size_t node, const Tensor& out)>& on_output = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runner(m).forward(x): the fast forward of a whole model.
Tensor fast_forward(const Model& m, const Tensor& x);

// The forward int8 calibration observes (compact::CompactOptions::calib_forward):
// bsp's fp32 dense kernels, which are far faster than the reference forward,
// with residual adds unfused so that every tensor the int8 program keeps is
// seen. The closure owns its runner; `m` must outlive it.
q8::CalibForward calibration_forward(const Model& m);

}  // namespace bsp::kernels
