// The graph part of a bsp model file, format v1 (man/bsp-format.5): the root
// attributes, /graph and /history. The groups later stages add (/compact,
// /schedule, /program) are read and written by the model-file unit above the
// back ends (modelfile/model_file.hpp), which is what stages call.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/h5.hpp"
#include "core/model.hpp"

namespace bsp {

constexpr const char* kFormatName = "bsp";
constexpr int64_t kFormatMajor = 1;
// 1.1: each derived group (/compact, /schedule, /program) carries a
// content_hash of its own content (man/bsp-format.5, GROUP HASHES).
// 1.2: conv2d and dense nodes may carry an activation rule (act_threshold,
// act_block; man/bsp-format.5, ACTIVATION SPARSITY).
// 1.3: a stripped file leaves out the dense weights /compact holds
// (rebuilt_hash; man/bsp-format.5, DROPPED DENSE WEIGHTS).
constexpr int64_t kFormatMinor = 3;

// Opens a file for reading after checking that it exists, is readable, is
// HDF5 and is a bsp model of a version this bsp reads. Throws bsp::Error with
// the reason alone (the caller names the file).
h5::Handle open_model_file(const std::string& path);
// The graph, arch and history of an open model file, validated. A conv2d or
// dense node without a `weight` dataset (a stripped file: bsp-format(5),
// DROPPED DENSE WEIGHTS) is refused unless `weight_shape` is given: then the
// node gets an all-zero weight of the shape it returns (the shape its
// /compact layer records), counted against the LIMITS bound before it is
// allocated, and its name is appended to `weightless`.
using WeightShapeOf = std::function<Shape(const std::string& node)>;
Model read_graph(hid_t file, const WeightShapeOf& weight_shape = {}, std::vector<std::string>* weightless = nullptr);

// Creates a model file with its root attributes (format, version, producer, arch).
h5::Handle create_model_file(const std::string& path, const Model& m);
// Writes the graph and history of `m` into a new file. The caller validates m
// first (save_model does, before it creates the file).
// `no_weight`: nodes whose weight is left out (a stripped file).
void write_graph(const Model& m, hid_t file, const std::vector<std::string>& no_weight = {});

// A derived group's content hash (man/bsp-format.5, GROUP HASHES): written
// as the attribute content_hash (16 hex digits) of the group.
void write_group_hash(hid_t group, uint64_t hash);
// Checks it against `computed`, the hash of what was read: a mismatch means
// the group was edited after bsp wrote it, an error ("edited ...: `redo`").
// A group without the attribute is accepted in files of format 1.0 only.
void check_group_hash(hid_t file, hid_t group, uint64_t computed, const char* redo);

}  // namespace bsp
