// The model graph: nodes in topological order, each with its op, input names,
// attributes and parameters. This is what every bsp stage reads and writes
// (file format: man/bsp-format.5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/dtype.hpp"
#include "core/tensor.hpp"

namespace bsp {

namespace compact {
struct CompactModel;  // src/compact/compact.hpp: the /compact group of a file
}
namespace aie2 {
struct Schedule;     // src/aie2/schedule.hpp: the /schedule group of a file
struct ProgramFile;  // src/aie2/store.hpp: the /program group of a file
}

enum class Op {
  Input,          // attrs: shape [H, W, C]
  Conv2d,         // params: weight OHWI [Cout, kh, kw, Cin/groups], bias [Cout]?
                  // attrs: stride [sh, sw], pad [top, left, bottom, right],
                  //        dilation [dh, dw], groups
  Dense,          // params: weight [out, in], bias [out]?
  BatchNorm,      // params: gamma, beta, mean, var [C]; attrs: eps
  Relu,
  MaxPool,        // attrs: kernel [kh, kw], stride [sh, sw], pad [t, l, b, r]
  AvgPool,        // as MaxPool, plus count_include_pad (0/1)
  GlobalAvgPool,  // [H, W, C] -> [C]
  Add,            // two or more inputs of equal shape
  Concat,         // along channels (the last axis)
  Flatten,        // [H, W, C] -> [H*W*C] in NHWC order
  Softmax,        // over the last axis
  Clip,           // attrs: min, max (float64): min(max(x, min), max); relu6 is [0, 6]
  Sigmoid,        // 1 / (1 + exp(-x))
  HardSigmoid,    // attrs: alpha, beta (float64): min(max(alpha * x + beta, 0), 1)
  HardSwish,      // x * hardsigmoid(x) with alpha 1/6, beta 1/2 (torch's)
  Mul,            // two inputs: the same shape, or [H, W, C] times [1, 1, C] (second) broadcast over H and W
};
// The number of ops: name the last one here when appending (the op table,
// core/op_table.hpp, has an entry for each).
constexpr size_t kOpCount = static_cast<size_t>(Op::Mul) + 1;

const char* op_name(Op op);
std::optional<Op> op_from_name(std::string_view name);
bool op_has_weight(Op op);  // conv2d, dense: the layers that can be pruned

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

class Attrs {
 public:
  void set(const std::string& key, AttrValue v) { m_[key] = std::move(v); }
  bool has(const std::string& key) const { return m_.count(key) != 0; }
  int64_t get_int(const std::string& key, std::optional<int64_t> def = {}) const;
  double get_double(const std::string& key, std::optional<double> def = {}) const;
  std::string get_string(const std::string& key, std::optional<std::string> def = {}) const;
  std::vector<int64_t> get_ints(const std::string& key, std::optional<std::vector<int64_t>> def = {}) const;
  const std::map<std::string, AttrValue>& all() const { return m_; }

 private:
  std::map<std::string, AttrValue> m_;
};

// A layer's sparsity mask. `bits` holds 1 for kept, 0 for pruned, either one
// per weight element (granularity "element", same shape as the weight) or one
// per block (granularity "block", shape [ceil(Cout/R), ceil(Cin/C)] where a
// block covers R output x kh x kw x C input weights of a conv, R x C of a
// dense layer).
//
// Tile-wise masks (patterns "tw:G", "tvw:G") are element masks that also
// record their tile structure, over the weight seen as B[K, N] with
// K = kh*kw*Cin (the weight's row for output channel n is B[:, n]) and
// N = Cout: the kept output channels are split into tiles, each with the set
// of rows of B it keeps. Every kept bit lies in a kept row of its column's
// tile; for tvw the 2:4 groups are 4 consecutive kept rows of a tile, in
// order, for each of its columns.
struct Mask {
  std::string pattern;   // e.g. "block:8x8", "nm:2:4", "tw:128", "unstructured"
  double density = 1.0;  // achieved fraction of weights kept
  int64_t block_rows = 0, block_cols = 0;  // 0 for an element mask
  Array<uint8_t> bits;

  // Tile-wise masks only (empty otherwise):
  Array<int32_t> column_tile;  // [N]: the tile of each output channel, -1 = channel pruned;
                               // a tile's columns are in increasing n, tiles numbered in order
                               // of their first column
  Array<uint8_t> tile_rows;    // [tiles, K]: 1 = row k of B kept in that tile

  bool is_block() const { return block_rows > 0; }
  bool is_tiled() const { return !column_tile.empty(); }
  // A deep copy (Array copies share their storage).
  Mask clone() const {
    Mask c;
    c.pattern = pattern;
    c.density = density;
    c.block_rows = block_rows;
    c.block_cols = block_cols;
    c.bits = bits.clone();
    c.column_tile = column_tile.clone();
    c.tile_rows = tile_rows.clone();
    return c;
  }
  int64_t tiles() const { return tile_rows.empty() ? 0 : tile_rows.dim(0); }
};

struct Node {
  std::string name;
  Op op = Op::Input;
  std::vector<std::string> inputs;
  Attrs attrs;
  std::map<std::string, Tensor> params;  // "weight", "bias", "gamma", "beta", "mean", "var"
  std::optional<Mask> mask;

  bool has_param(const std::string& p) const { return params.count(p) != 0; }
  const Tensor& param(const std::string& p) const;
  Tensor& param(const std::string& p);
};

struct Model {
  std::string arch;                  // e.g. "resnet50"; free text for imported models
  std::vector<Node> nodes;           // topological order; nodes[0] is the input
  std::vector<std::string> history;  // command lines that made the file, oldest first
  // The compact weights written by `bsp compact` (/compact), or null. Loading
  // drops a /compact group made from other weights than the graph now holds
  // (a later stage changed them) and says why in compact_dropped.
  std::shared_ptr<const compact::CompactModel> compact;
  std::string compact_dropped;
  // The AIE2 schedule (/schedule, bsp schedule) and program (/program, bsp
  // codegen), or null; like /compact, dropped on load (with the reason in
  // aie2_dropped) when made from other weights or masks.
  std::shared_ptr<const aie2::Schedule> schedule;
  std::shared_ptr<const aie2::ProgramFile> program;
  std::string aie2_dropped;
  // Dense weights left out of the file (bsp strip; bsp-format(5), DROPPED
  // DENSE WEIGHTS). drop_dense: save_model leaves out the weight of every
  // layer whose /compact form holds its values, while /compact is fresh.
  // rebuilt: set by load_model for a file without them, whose weights it
  // rebuilt from /compact (fp32 bitwise, bf16 widened, int8 dequantised with
  // the batchnorm unfolded): `as_loaded` is graph_hash() of the graph as
  // rebuilt, `source` the content_hash() of the graph they were compacted
  // from, which content_hash() returns while the graph is still as loaded.
  bool drop_dense = false;
  struct Rebuilt {
    uint64_t as_loaded = 0, source = 0;
    DType dtype = DType::FP32;
    std::vector<std::string> nodes;
  };
  std::optional<Rebuilt> rebuilt;

  const Node* find(std::string_view name) const;
  Node* find(std::string_view name);
  size_t index_of(std::string_view name) const;  // throws if missing
  const Node& input() const;
  Shape input_shape() const;  // [H, W, C]

  // Checks names, input order, op attributes, parameter shapes and values
  // (finite; a batchnorm's variance >= 0, eps > 0); throws bsp::Error naming
  // the node on the first problem. values_scanned: the parameters were
  // already checked with check_finite_values as they were read.
  void validate(bool values_scanned = false) const;
};

// The index of the first NaN or infinity in v[0, count), if any.
std::optional<size_t> find_nonfinite(const float* v, size_t count);
// Throws unless v[first, first + count) are all finite, naming the node,
// the parameter and the first bad index (the VALUES rule of bsp-format(5)).
void check_finite_values(const std::string& node, const std::string& param, const float* v, size_t first,
                         size_t count);

// A graph's wiring by node index, for the passes that run it node by node:
// each node's inputs, and the last node that reads each node's value (the
// last node's is nodes.size(): the result, never freed).
struct Wiring {
  std::vector<std::vector<size_t>> inputs;
  std::vector<size_t> last_use;
};
Wiring wiring(const Model& m);

// Throws unless a batch of shape x is [N, H, W, C] of the model's input.
void check_batch_input(const Model& m, const Shape& x);

// A 64-bit fingerprint of the graph: node names, ops, inputs, attributes,
// parameters and masks (not the history, the arch or the compact weights).
// A graph rebuilt from a stripped file (Model::rebuilt) and not changed
// since has the fingerprint of the graph it was compacted from.
uint64_t content_hash(const Model& m);
// The fingerprint of the graph as it is in memory, with the weights of the
// nodes in `weights` (if given) replaced by those tensors.
uint64_t graph_hash(const Model& m, const std::map<std::string, Tensor>* weights = nullptr);

// A deep copy of the graph: arch, history and every node with its
// parameters and mask (not the compact, schedule or program groups). For
// work on a private model: the evaluator's network, finetune's memory probe.
Model clone_graph(const Model& m);

// Trainable parameter count of a node (BN running statistics not counted),
// the convention torchvision's parameter counts use.
int64_t trainable_params(const Node& n);

}  // namespace bsp
