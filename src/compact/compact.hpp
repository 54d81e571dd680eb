// A compacted model: every conv2d/dense layer's weights in a compact form
// (weights.hpp), in fp32, bf16 or int8; for int8 also the integer program
// (int8.hpp). Stored in a model file's /compact group (man/bsp-format.5).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "core/model.hpp"

namespace bsp::compact {

struct CompactModel {
  DType dtype = DType::FP32;
  uint64_t source_hash = 0;                  // content_hash() of the graph it was made from
  std::map<std::string, CompactLayer> layers;  // one per conv2d/dense node
  // dtype int8: the quantised program. Its Conv/Dense nodes' `weight` arrays
  // are the expanded int8 values of `layers` (kept in memory for the
  // reference; the file stores only the compact form).
  std::optional<q8::QModel> int8;

  const CompactLayer* layer(const std::string& name) const {
    auto it = layers.find(name);
    return it == layers.end() ? nullptr : &it->second;
  }
};

struct CompactOptions {
  std::optional<Format> format;  // nullopt: auto per layer (auto_format)
  DType dtype = DType::FP32;
  bool pow2 = false;             // int8: power-of-two scales
  // int8: the fp32 forward that calibration observes (q8::CalibForward);
  // empty: the reference forward (exact, slow). bsp compact passes the fp32
  // kernels' (kernels::calibration_forward).
  q8::CalibForward calib_forward;
};

// The format a layer gets: auto, or the forced one for every pruned layer
// (layers without a mask stay dense). Throws when a pruned layer cannot take
// the forced format (nm without an N:M pattern).
Format layer_format(const Node& n, const std::optional<Format>& forced);

// Compacts every conv2d/dense layer. For int8, `calib` [N, H, W, C] gives the
// activation scales (required then).
CompactModel compact_model(const Model& m, const CompactOptions& opt, const Tensor* calib = nullptr);

// The fp32 weight of layer `name` expanded from the compact form (bf16 widened).
// Not for int8 models (their weights are the quantised, folded ones).
Tensor expand_weight(const CompactModel& c, const std::string& name);

// Whether a layer's compact form stores its weight values: every layer but
// an fp32 dense one, whose compact form is the graph's weight itself.
bool holds_values(const CompactLayer& l);

// The fp32 weight of layer `name` rebuilt from the compact form, for a file
// whose dense weights were dropped (bsp-format(5), DROPPED DENSE WEIGHTS):
// fp32 bitwise the weight it was made from (a pruned -0 comes back +0), bf16 widened, int8 dequantised
// (q * w_scale[o]) with the gain of a batchnorm folded into the layer
// divided out again (float(g[o]); 0 where that is 0). `m`: the graph the
// compact form was made from (its batchnorms).
Tensor rebuild_weight(const Model& m, const CompactModel& c, const std::string& name);

// Dense bytes (the graph's fp32 weight) and compact bytes of a layer.
struct LayerBytes {
  int64_t dense = 0, compact = 0;
};
LayerBytes layer_bytes(const Model& m, const std::string& name);

// Read and write the /compact group of an open file. Whether a stored group
// still fits the model is decided by the model-file unit
// (modelfile/model_file.hpp) from stored_source_hash(): the content_hash() of
// the graph it was made from, nullopt when the file has none.
// `rebuilt_hash`: the file's graph leaves out the weights the group holds
// (written as the attribute rebuilt_hash, graph_hash() of the graph with
// them rebuilt); load_compact returns it in *rebuilt_hash.
void save_compact(const Model& m, const CompactModel& c, int64_t file_id,
                  std::optional<uint64_t> rebuilt_hash = std::nullopt);
std::optional<uint64_t> stored_source_hash(int64_t file_id);
std::shared_ptr<const CompactModel> load_compact(const Model& m, int64_t file_id,
                                                 std::optional<uint64_t>* rebuilt_hash = nullptr);
// The weight shape /compact records for layer `name` (a stripped file's
// graph has none), read before the group is loaded.
Shape stored_weight_shape(int64_t file_id, const std::string& name);

}  // namespace bsp::compact
