#include "train/checkpoint.hpp"

#include "core/h5.hpp"

namespace bsp::train {

void write_train_group(const std::string& path, const TrainState& s, const std::string& config, int64_t threads,
                       const std::vector<Param>* momentum, const std::map<std::string, const Tensor*>& dense) {
  h5::Handle f = h5::open_file_readwrite(path);
  h5::Handle g = h5::create_group(f, "train");
  h5::write_attr(g, "config", config);
  h5::write_attr(g, "epoch", s.epoch);
  h5::write_attr(g, "step", s.step);
  h5::write_attr(g, "complete", int64_t{s.complete ? 1 : 0});
  h5::write_attr(g, "loss_sum", s.loss_sum);
  h5::write_attr(g, "correct", s.correct);
  h5::write_attr(g, "seen", s.seen);
  h5::write_attr(g, "seconds", s.seconds);
  h5::write_attr(g, "threads", threads);
  if (momentum) {
    h5::Handle mg = h5::create_group(g, "momentum");
    for (const Param& p : *momentum) h5::write_array(mg, p.name, p.momentum);
  }
  if (!dense.empty()) {
    h5::Handle dg = h5::create_group(g, "dense");
    for (const auto& [name, t] : dense) h5::write_array(dg, name, *t);
  }
  h5::flush(f);
}

void restore_checkpoint(Trainer& t, Checkpoint& c, const std::string& display) {
  for (Param& p : t.params()) {
    auto it = c.momentum.find(p.name);
    if (it == c.momentum.end() || it->second.shape() != p.momentum.shape())
      fail("cannot resume from '{}': no momentum for '{}'", display, p.name);
    p.momentum = std::move(it->second);
  }
  t.state() = c.state;
  t.restore_dense(c.dense);
  t.weights_restored();
}

std::optional<Checkpoint> read_train_group(const std::string& path, const std::string& display) {
  try {
    h5::Handle f = h5::open_file_readonly(path);
    if (!h5::exists(f, "train")) return std::nullopt;
    h5::Handle g = h5::open_group(f, "train");
    Checkpoint c;
    auto get_int = [&](const char* k) {
      AttrValue v = h5::read_attr(g, k);
      if (auto* i = std::get_if<int64_t>(&v)) return *i;
      fail("/train attribute '{}' is not an integer", k);
    };
    auto get_double = [&](const char* k) {
      AttrValue v = h5::read_attr(g, k);
      if (auto* d = std::get_if<double>(&v)) return *d;
      if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
      fail("/train attribute '{}' is not a number", k);
    };
    AttrValue cfg = h5::read_attr(g, "config");
    if (auto* s = std::get_if<std::string>(&cfg))
      c.config = *s;
    else
      fail("/train attribute 'config' is not a string");
    c.state.epoch = get_int("epoch");
    c.state.step = get_int("step");
    c.state.complete = get_int("complete") != 0;
    c.state.loss_sum = get_double("loss_sum");
    c.state.correct = get_int("correct");
    c.state.seen = get_int("seen");
    c.state.seconds = get_double("seconds");
    c.threads = get_int("threads");
    if (h5::exists(g, "momentum")) {
      h5::Handle mg = h5::open_group(g, "momentum");
      for (const auto& name : h5::children(mg)) c.momentum.emplace(name, h5::read_array<float>(mg, name));
    }
    if (h5::exists(g, "dense")) {
      h5::Handle dg = h5::open_group(g, "dense");
      for (const auto& name : h5::children(dg)) c.dense.emplace(name, h5::read_array<float>(dg, name));
    }
    return c;
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read the training state of '{}': {}", display, e.what()), e.exit_code());
  }
}

}  // namespace bsp::train
