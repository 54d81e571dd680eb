// The op table: one entry per op (core/op_table.cpp) that says everything
// bsp decides about it in one place: its name in model files, its inputs and
// parameters, its shape rule, its reference forward, its role in the fusion
// pass (core/fusion.hpp), and how each back end runs it. A back end that
// cannot run an op says so in the entry (Run::Unsupported and why); the user
// then gets one error naming the node, the op and the back end
// (fail_unsupported below).
//
// Adding an op (the test 'op_table' walks the table and runs every op's
// example model through every back end that claims it, so a missing piece
// fails there):
//   1. core/model.hpp: append it to enum Op and name it in kOpCount. Never
//      reorder: the values are hashed into model files (content_hash).
//   2. core/op_table.cpp: its entry. The shape rule and the reference
//      forward are written in the entry; the math goes in
//      core/reference_ops.cpp.
//   3. For every back end the entry names with Run::Native (one whose
//      entry says Run::Unsupported needs nothing: it refuses the op with the
//      entry's note before its own code sees it):
//        trainer  a Layer (forward and backward) in train/, listed in
//                 train/net.cpp's make_layer;
//        fp32     kernels/runner.cpp (Run::Reference needs nothing: the
//                 entry's reference forward runs);
//        int8     a q8::Kind with its rule in compact/int8.cpp (quantize)
//                 and its integer op in compact/int8_forward.cpp;
//        aie2     a stage in aie2/lower.cpp and its kernel in
//                 aie2/kernels.cpp.
//      Otherwise Run::Unsupported with the reason.
//   4. tests/unit/test_op_table.cpp: its example model.
//   5. man/bsp-format.5 (NODES), and INT8 SEMANTICS when it has them.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "core/model.hpp"

namespace bsp {

// What the fusion pass may do with an op (core/fusion.hpp).
enum class Role {
  Layer,       // conv2d, dense: heads a group; a batchnorm, add and activation after it can join
  Norm,        // batchnorm: folded into the layer before it, else heads its own group
  Residual,    // add: a two-input add can join a layer's epilogue
  Activation,  // relu, clip: joins the group whose value it alone reads
  Other,       // runs alone
};

enum class Backend { Trainer, Fp32, Int8, Aie2 };
constexpr std::array<Backend, 4> kBackends{Backend::Trainer, Backend::Fp32, Backend::Int8, Backend::Aie2};
const char* backend_name(Backend b);  // "the trainer", "the fp32 kernels", "the int8 program", "the AIE2 back end"

// How one back end runs an op.
enum class Run {
  Native,       // its own implementation
  Reference,    // the entry's reference forward (fp32 kernels only)
  Free,         // no computation: a view or an in-place write (AIE2 concat and flatten)
  Folded,       // only folded into the layer before it (by the fusion pass)
  LastOnly,     // only as the model's last node
  Unsupported,  // not at all
};

struct Handling {
  Run run = Run::Unsupported;
  // How, or why not; completes fail_unsupported's message. For LastOnly and
  // Folded it says where the op runs, starting with "only".
  const char* note = "";
};

using ShapeList = std::vector<const Shape*>;
using TensorList = std::vector<const Tensor*>;

struct OpEntry {
  Op op;
  const char* name;          // the op attribute of a node in a model file
  int min_inputs, max_inputs;  // max_inputs -1: any number
  std::array<const char*, 4> required{}, optional{};  // parameter names (null-terminated lists)
  bool weighted = false;     // carries a weight (and may carry a mask): the layers bsp prunes
  // Takes an activation rule on its input (act_threshold, act_block;
  // core/act_sparsity.hpp): the reference forward zeroes the input's small
  // blocks first; the trainer runs the rule as a layer before the node's, the
  // fp32 and int8 runners as a pre-step on a copy of the input (int8: T on
  // the quantised input), the AIE2 back end refuses it (aie2/lower.cpp).
  bool act_rule = false;
  Role role = Role::Other;
  // Output shape from the input shapes (no batch dimension); the input count
  // is checked before. Throws bsp::Error naming the node.
  Shape (*shape)(const Node& n, const ShapeList& in);
  // The fp32 reference forward of one node on [N, ...] inputs (the oracle).
  Tensor (*reference)(const Node& n, const TensorList& in);
  Handling trainer, fp32, int8, aie2;

  const Handling& on(Backend b) const;
};

// Every op, in enum order.
const std::vector<OpEntry>& op_table();
const OpEntry& op_entry(Op op);

// The error a back end raises for a node it cannot run, from the entry's
// note: "node 'bn1': the AIE2 back end runs op 'batchnorm' only folded into
// the conv2d or dense layer it directly follows".
[[noreturn]] void fail_unsupported(const Node& n, Backend b);
// Throws fail_unsupported unless `b` runs node `n`: Unsupported always
// throws, LastOnly unless `last`. Native, Reference, Free and Folded pass
// (a back end that finds a Folded op unfolded calls fail_unsupported itself).
void require_backend(const Node& n, Backend b, bool last);

}  // namespace bsp
