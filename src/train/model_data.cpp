#include "train/model_data.hpp"

#include <cmath>

#include "core/shapes.hpp"

namespace bsp::train {

std::optional<Normalization> model_normalization(const Model& m) {
  const Node& in = m.input();
  if (!in.attrs.has("norm_mean") || !in.attrs.has("norm_std")) return std::nullopt;
  auto get = [&](const char* key) {
    const auto& all = in.attrs.all();
    const AttrValue& v = all.at(key);
    if (auto* d = std::get_if<std::vector<double>>(&v)) return *d;
    if (auto* d = std::get_if<double>(&v)) return std::vector<double>{*d};
    fail("input attribute '{}' must be a float64 list", key);
  };
  Normalization nm{get("norm_mean"), get("norm_std")};
  const int64_t C = m.input_shape().at(2);
  if (static_cast<int64_t>(nm.mean.size()) != C || static_cast<int64_t>(nm.std.size()) != C)
    fail("input attributes 'norm_mean' / 'norm_std' must have {} entries", C);
  // Finite, and a positive std: (x - mean) / std of a finite pixel is finite.
  for (size_t c = 0; c < nm.mean.size(); ++c)
    if (!std::isfinite(nm.mean[c]))
      fail("input attribute 'norm_mean' holds {} for channel {} (must be finite)", nm.mean[c], c);
  for (size_t c = 0; c < nm.std.size(); ++c)
    if (!(nm.std[c] > 0) || !std::isfinite(nm.std[c]))
      fail("input attribute 'norm_std' holds {} for channel {} (must be finite and positive)", nm.std[c], c);
  return nm;
}

void set_model_normalization(Model& m, const Normalization& nm) {
  m.nodes.at(0).attrs.set("norm_mean", nm.mean);
  m.nodes.at(0).attrs.set("norm_std", nm.std);
}

std::vector<std::string> model_class_names(const Model& m) {
  const Node& in = m.input();
  if (!in.attrs.has("class_names")) return {};
  const AttrValue& v = in.attrs.all().at("class_names");
  const auto* text = std::get_if<std::string>(&v);
  if (!text) fail("input attribute 'class_names' must be a string");
  std::vector<std::string> names;
  size_t start = 0;
  for (size_t nl; (nl = text->find('\n', start)) != std::string::npos; start = nl + 1) names.push_back(text->substr(start, nl - start));
  if (start < text->size()) names.push_back(text->substr(start));
  return names;
}

void set_model_class_names(Model& m, const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& n : names) {
    if (n.find('\n') != std::string::npos) fail("class name '{}' holds a line break", n);
    text += n + "\n";
  }
  m.nodes.at(0).attrs.set("class_names", text);
}

int64_t model_classes(const Model& m) {
  const std::vector<Shape> shapes = infer_shapes(m);
  const Shape& s = shapes.back();
  if (s.size() != 1) fail("the model's output is {} (a feature map), not a vector of class scores", shape_str(s));
  return s[0];
}

void check_data_fits(const Model& m, const std::string& model_name, const ImageSet& s, const std::string& data_name,
                     const std::string& what) {
  const Shape in = m.input_shape();
  if (s.h != in[0] || s.w != in[1] || s.c != in[2])
    fail("data '{}' does not fit model '{}': {} images are {}x{}x{} (HxWxC) but the model takes {}x{}x{}", data_name,
         model_name, what, s.h, s.w, s.c, in[0], in[1], in[2]);
  const int64_t K = model_classes(m);
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t y = s.labels[static_cast<size_t>(i)];
    if (y < 0 || y >= K)
      fail("data '{}': label {} of {} image {} is out of range: model '{}' has {} classes (0..{})", data_name, y, what,
           i, model_name, K, K - 1);
  }
}

bool never_trained(const Model& m) {
  for (const auto& h : m.history)
    if (h.rfind("bsp init", 0) != 0) return false;
  return true;
}

}  // namespace bsp::train
