// Image-folder data sets for bsp finetune and bsp eval: the
// ImageNet/torchvision layout DIR/train/CLASS/*.{jpg,jpeg,png} and
// DIR/val/CLASS/..., or list files of "path label" lines, decoded on worker
// threads with the torchvision transforms (image_transform.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/source.hpp"

namespace bsp {

// The files of one split and their classes.
struct ImageList {
  std::string name;  // for messages: "DIR/train", "list.txt"
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

struct ImageFolder {
  std::string name;                  // the --data argument
  std::vector<std::string> classes;  // folder layout: the sorted class names (index = label); list files: empty
  std::optional<ImageList> train;    // DataPart::Training
  // Training: the val split, absent when there is none. Evaluation: the val
  // split, or a list file's images.
  std::optional<ImageList> test;
};

// True when `spec` names an image-folder data set: a directory holding
// train/ or val/ (class folders) or train.txt or val.txt (list files), or a
// file whose name ends in ".txt" (one list file).
bool is_image_folder(const std::string& spec);

// Lists the data set (no image is opened). Class folders: the sorted names of
// the subdirectories of train/ (val/ must have the same ones), each holding
// *.jpg, *.jpeg, *.png at any depth (case-insensitive, hidden files skipped),
// sorted by path. List files: "PATH LABEL" lines (the label is the last
// field; relative paths are relative to the list file; blank lines and lines
// starting with '#' skipped). Throws bsp::Error: no class folders, classes of
// val/ that differ, an unreadable list, a bad label, no images.
ImageFolder read_image_folder(const std::string& spec, DataPart part);

// How a source turns files into model inputs.
struct FolderTransforms {
  int64_t h = 0, w = 0, c = 0;  // the model's input; c is 1 (gray) or 3 (RGB)
  Normalization norm;
  bool augment = true;     // training batches: RandomResizedCrop + flip; else the evaluation transform
  double fraction = 0.875; // evaluation: Resize to size / fraction, CenterCrop to size
  int workers = 1;         // decoding threads
};

class FolderSource : public BatchSource {
 public:
  FolderSource(ImageList list, FolderTransforms t);
  const std::string& name() const { return list_.name; }
  int64_t size() const override { return static_cast<int64_t>(list_.paths.size()); }
  int64_t h() const override { return t_.h; }
  int64_t w() const override { return t_.w; }
  int64_t c() const override { return t_.c; }
  int64_t label(int64_t i) const override { return list_.labels[static_cast<size_t>(i)]; }
  void fill(const BatchRequest& r, Batch& out) const override;
  int workers() const override { return t_.workers; }
  Unreadable unreadable() const override;

  // One image through the transforms into out [h, w, c], not normalised
  // (pixel scale 0..255). False when it cannot be read (recorded).
  bool load(int64_t i, bool train, uint64_t draw, float* out) const;

 private:
  void record_bad(int64_t i, const std::string& why) const;

  ImageList list_;
  FolderTransforms t_;
  std::vector<float> scale_, shift_;  // the normalisation as one multiply and one add (batch.cpp's rule)
  std::unique_ptr<std::atomic<uint8_t>[]> bad_;  // per image: 1 once it failed to decode
  mutable std::mutex mu_;
  mutable Unreadable unreadable_;
};

// Mean and standard deviation per channel (pixels scaled to [0, 1]) of up
// to `max_images` images of `src`, spread evenly over it, through the
// evaluation transform (unreadable ones skipped).
Normalization folder_stats(const FolderSource& src, int64_t max_images);

}  // namespace bsp
