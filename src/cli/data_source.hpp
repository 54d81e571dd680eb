// --data for bsp finetune and bsp eval: an in-memory data set (IDX, HDF5) or
// an image folder behind one BatchSource, the options that shape it
// (--workers, --crop-fraction, --mean, --std) and the normalisation chosen
// for it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "data/dataset.hpp"
#include "data/image_folder.hpp"
#include "data/source.hpp"
#include "train/comm.hpp"

namespace CLI {
class App;
}

namespace bsp::cli {

struct DataOptions {
  std::string spec;
  int64_t limit = 0;
  bool augment = true;        // finetune's training batches
  Augmentation aug;           // in-memory data: the random crop and flip
  int workers = 1;            // image folders: decoding threads
  double crop_fraction = 0.875;
  std::string mean, std;      // "m1,m2,m3": for a model without a stored normalisation (or the same)
};
// --workers, --crop-fraction, --mean, --std.
void add_data_options(CLI::App& sub, DataOptions& o);

// Images sampled for the normalisation of an image folder (spread evenly).
constexpr int64_t kStatsImages = 10000;

struct OpenedData {
  std::string name;
  bool folder = false;
  std::vector<std::string> classes;  // image folders with class folders
  Normalization norm;
  std::unique_ptr<BatchSource> train, test;  // as DataSet's parts

 private:
  friend OpenedData open_data(const DataOptions&, const Model&, const std::string&, DataPart);
  std::shared_ptr<DataSet> mem_;  // in-memory images the sources read
};

// Reads or lists the data, checks it against the model (shape, labels, the
// class names the model stores) and picks the normalisation: the model's
// (norm_mean/norm_std), else --mean/--std, else computed from the training
// images (evaluation: the evaluated ones); image folders: from up to
// kStatsImages of them, through the evaluation transform.
OpenedData open_data(const DataOptions& o, const Model& m, const std::string& model_name, DataPart part);

// "bsp SUB: warning: N images could not be read and were skipped (the first:
// PATH: WHY)" on stderr when any were. Data-parallel (comm of more than one
// rank): every rank calls it, N is the sum over the ranks, and rank 0 alone
// prints, naming its own first failure or saying that it had none.
void warn_unreadable(const char* sub, const OpenedData& d, train::Comm* comm = nullptr);

}  // namespace bsp::cli
