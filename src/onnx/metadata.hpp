// What bsp keeps in an exported ONNX model's metadata_props beyond what ONNX
// itself can say, so that bsp import restores the model losslessly (the
// ONNX graph alone runs in any runtime; these only go back into bsp):
//   bsp.format   "1"
//   bsp.arch     the model's arch
//   bsp.history  JSON array of its history lines
//   bsp.node.N   JSON object for node N: "eps" (a batchnorm's, exactly: ONNX
//                stores float32), "norm_mean" and "norm_std" (the input's
//                normalisation: the ONNX graph takes normalised images),
//                "mask" (pattern, density, block [R, C] or
//                null, the bits packed eight to a byte, LSB first, in base64,
//                and for tile-wise masks column_tile and tile_rows)
#pragma once

#include <map>
#include <string>

#include "core/model.hpp"

namespace bsp::onnx_io {

using Metadata = std::map<std::string, std::string>;

// The metadata of model m (arch, history, every node's extras).
Metadata bsp_metadata(const Model& m);

// Restores what bsp_metadata() saved into m, whose graph came from the same
// ONNX file (its node names are the exported ones). Returns false when the
// metadata holds no bsp.format (a file not written by bsp). Throws
// bsp::Error when it names nodes the graph lacks or does not fit them.
bool restore_bsp_metadata(const Metadata& md, Model& m);

}  // namespace bsp::onnx_io
