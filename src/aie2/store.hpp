// The /schedule and /program groups of a model file (man/bsp-format.5,
// sections SCHEDULE and PROGRAM). A model keeps them as Model::schedule and
// Model::program; whether a stored group still fits the model is decided by
// the model-file unit (modelfile/model_file.hpp) from stored_source().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aie2/isa.hpp"
#include "aie2/schedule.hpp"
#include "core/model.hpp"

namespace bsp::aie2 {

// A generated program with the DDR image of its constants (empty when the
// program was generated for timing only).
struct ProgramFile {
  Program program;
  std::vector<uint8_t> const_image;
  uint64_t source_hash = 0;  // model_hash() of the model it was generated from
};

// What a schedule or program depends on: the graph and its parameters
// (content_hash), and for int8 the quantised program of /compact.
uint64_t model_hash(const Model& m, DType dtype);

// The device data type a model runs in by default: its compact dtype (int8,
// bf16), else fp32.
DType model_dtype(const Model& m);

// What a stored /schedule or /program group says it was made from; nullopt
// when the file has no such group. `readable` is false for a group of
// another format version (not ours to read).
struct GroupSource {
  bool readable = false;
  DType dtype = DType::FP32;
  uint64_t source_hash = 0;  // model_hash() of the model it was made from
};
std::optional<GroupSource> stored_source(int64_t file_id, const char* group);  // "schedule", "program"

void save_schedule(const Model& m, const Schedule& s, int64_t file_id);
// Reads a stored schedule that stored_source() showed to fit `m`.
std::shared_ptr<const Schedule> load_schedule(const Model& m, int64_t file_id);

void save_program(const ProgramFile& p, int64_t file_id);
std::shared_ptr<const ProgramFile> load_program(int64_t file_id);

// The schedule as JSON (bsp schedule --json): per stage the split, tiles,
// loop order, buffers, traffic, imbalance and analytic time.
Json schedule_json(const Schedule& s);

}  // namespace bsp::aie2
