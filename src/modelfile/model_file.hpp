// Whole model files: the graph (core/model_io.hpp) and the groups later
// stages add to it, /compact (compact/compact.hpp), /schedule and /program
// (aie2/store.hpp). This unit sits above the back ends so that core knows
// only itself, and it is the one place that decides what a change makes
// stale.
//
// Each part is made from the ones before it:
//   graph (nodes, parameters, masks)
//     <- /compact   made from the graph: stale when the graph's content_hash
//                   differs from its source_hash
//     <- /schedule  made from the graph and, for int8, /compact's int8
//                   program: stale when aie2::model_hash differs
//     <- /program   made from the /schedule: stale with it, or when a new
//                   schedule replaces the one it was generated from
// A stage that changes the graph (finetune, prune) writes it with
// save_model, which leaves every stale group out of the file; compact,
// schedule and codegen replace their part with set_compact, set_schedule and
// set_program, which drop what was made from the old one. Reading a file
// made elsewhere drops a stale group too and says why in
// Model::compact_dropped or Model::aie2_dropped.
#pragma once

#include <memory>
#include <string>

#include "core/model.hpp"

namespace bsp {

// Loads a model with its groups. `display` names the file in error messages
// ("cannot read 'x.h5': not an HDF5 file"). Unknown groups are ignored, so
// files of a newer minor version open; a newer major version is refused.
Model load_model(const std::string& path, const std::string& display);

// Writes a model (normally to an OutputFile's temporary path) with every
// group that is not stale. With m.drop_dense and a fresh /compact, the
// weights /compact holds are left out of the graph (bsp-format(5), DROPPED
// DENSE WEIGHTS); load_model rebuilds them from it.
struct SaveOptions {
  int compress_level = 0;  // 1..9: every dataset shuffled and deflated (h5::CompressScope); 0: as bsp always writes
};
void save_model(const Model& m, const std::string& path, const SaveOptions& opt = {});

// Replace one part, dropping what was made from the part it replaces.
void set_compact(Model& m, std::shared_ptr<const compact::CompactModel> c);
void set_schedule(Model& m, std::shared_ptr<const aie2::Schedule> s);
void set_program(Model& m, std::shared_ptr<const aie2::ProgramFile> p);

}  // namespace bsp
