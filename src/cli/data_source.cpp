#include "cli/data_source.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "core/error.hpp"
#include "train/model_data.hpp"

namespace bsp::cli {

namespace {

std::vector<double> parse_list(const std::string& s, const char* option, int64_t C) {
  std::vector<double> v;
  size_t start = 0;
  for (;;) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const double x = std::strtod(item.c_str(), &end);
    if (item.empty() || *end || !std::isfinite(x)) fail_usage("{} must be {} comma-separated numbers, not '{}'", option, C, s);
    v.push_back(x);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (static_cast<int64_t>(v.size()) != C)
    fail_usage("{} has {} values but the model takes {} channels", option, v.size(), C);
  return v;
}

// Labels in range and, for class folders, the model's class names (when it has any).
void check_folder_fits(const Model& m, const std::string& model_name, const ImageFolder& f, const ImageList& l) {
  const int64_t K = train::model_classes(m);
  for (size_t i = 0; i < l.labels.size(); ++i)
    if (l.labels[i] >= K)
      fail("data '{}': label {} of '{}' is out of range: model '{}' has {} classes (0..{})", f.name, l.labels[i],
           l.paths[i], model_name, K, K - 1);
  const std::vector<std::string> names = train::model_class_names(m);
  if (!names.empty() && !f.classes.empty() && names != f.classes)
    fail("data '{}': its {} class folders are not the {} classes model '{}' was trained on ('{}' ... '{}')", f.name,
         f.classes.size(), names.size(), model_name, names.front(), names.back());
}

}  // namespace

void add_data_options(CLI::App& sub, DataOptions& o) {
  sub.add_option("--workers", o.workers, "image folders: threads decoding images ahead of use (default 1)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub.add_option("--crop-fraction", o.crop_fraction,
                 "image folders, evaluation transform: resize the shorter side to size/F, then center-crop to the "
                 "model's input size (default 0.875)")
      ->type_name("F");
  sub.add_option("--mean", o.mean, "per-channel input mean (pixels in [0, 1]) for a model without one")
      ->type_name("M1,M2,..");
  sub.add_option("--std", o.std, "per-channel input standard deviation for a model without one")
      ->type_name("S1,S2,..");
}

OpenedData open_data(const DataOptions& o, const Model& m, const std::string& model_name, DataPart part) {
  if (!(o.crop_fraction > 0 && o.crop_fraction <= 1)) fail_usage("--crop-fraction must be in (0, 1]");
  if (o.mean.empty() != o.std.empty()) fail_usage("--mean and --std go together");
  const Shape in = m.input_shape();
  const int64_t C = in[2];
  std::optional<Normalization> given;
  if (!o.mean.empty()) {
    given = Normalization{parse_list(o.mean, "--mean", C), parse_list(o.std, "--std", C)};
    for (double s : given->std)
      if (!(s > 0)) fail_usage("--std values must be positive");
  }
  const std::optional<Normalization> stored = train::model_normalization(m);
  if (given && stored && (given->mean != stored->mean || given->std != stored->std))
    fail_usage("model '{}' already holds the input normalisation it was trained with, and --mean/--std differ from it",
               model_name);
  const bool training = part == DataPart::Training;
  OpenedData d;
  d.name = o.spec;
  if (!is_image_folder(o.spec)) {
    d.mem_ = std::make_shared<DataSet>(load_data(o.spec, part));
    DataSet& ds = *d.mem_;
    d.name = ds.name;
    if (o.limit > 0) {
      if (ds.train) ds.train->limit(o.limit);
      if (ds.test) ds.test->limit(o.limit);
    }
    if (ds.train) train::check_data_fits(m, model_name, *ds.train, ds.name, "training");
    if (ds.test) train::check_data_fits(m, model_name, *ds.test, ds.name, "test");
    d.norm = stored ? *stored : given ? *given : channel_stats(training ? *ds.train : *ds.test);
    if (ds.train) d.train = std::make_unique<ImageSetSource>(*ds.train, d.norm, o.augment ? o.aug : Augmentation{});
    if (ds.test) d.test = std::make_unique<ImageSetSource>(*ds.test, d.norm, Augmentation{});
    return d;
  }
  ImageFolder f = read_image_folder(o.spec, part);
  d.folder = true;
  d.classes = f.classes;
  for (std::optional<ImageList>* l : {&f.train, &f.test}) {
    if (!*l) continue;
    if (o.limit > 0 && static_cast<int64_t>((*l)->paths.size()) > o.limit) {
      (*l)->paths.resize(static_cast<size_t>(o.limit));
      (*l)->labels.resize(static_cast<size_t>(o.limit));
    }
    check_folder_fits(m, model_name, f, **l);
  }
  FolderTransforms t;
  t.h = in[0];
  t.w = in[1];
  t.c = C;
  t.augment = o.augment;
  t.fraction = o.crop_fraction;
  t.workers = o.workers;
  if (stored || given) {
    t.norm = stored ? *stored : *given;
  } else {
    FolderSource sample(training ? *f.train : *f.test, t);
    t.norm = folder_stats(sample, kStatsImages);
  }
  d.norm = t.norm;
  if (f.train) d.train = std::make_unique<FolderSource>(std::move(*f.train), t);
  if (f.test) d.test = std::make_unique<FolderSource>(std::move(*f.test), t);
  return d;
}

void warn_unreadable(const char* sub, const OpenedData& d, train::Comm* comm) {
  Unreadable all;
  for (const BatchSource* s : {d.train.get(), d.test.get()}) {
    if (!s) continue;
    const Unreadable u = s->unreadable();
    if (u.count && !all.count) {
      all.first_path = u.first_path;
      all.first_why = u.first_why;
    }
    all.count += u.count;
  }
  int64_t total = all.count;
  if (comm && comm->size() > 1) {
    double n = static_cast<double>(all.count);
    comm->sum_ordered(&n, 1);
    total = static_cast<int64_t>(n);
    if (comm->rank() != 0) return;
  }
  if (total == 0) return;
  const std::string first = all.count ? fmt::format("the first: '{}': {}", all.first_path, all.first_why)
                                      : std::string("none in rank 0's share");
  std::fprintf(stderr, "bsp %s: warning: %lld image%s could not be read and %s skipped (%s)\n", sub,
               static_cast<long long>(total), total == 1 ? "" : "s", total == 1 ? "was" : "were", first.c_str());
}

}  // namespace bsp::cli
