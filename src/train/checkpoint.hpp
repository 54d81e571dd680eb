// The training state of a checkpoint: the group /train of a model file
// (man/bsp-format.5, TRAINING STATE). The model itself is saved as usual;
// this adds where training stands, the optimizer's momentum and, for BDWP,
// the dense weights.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "train/net.hpp"
#include "train/trainer.hpp"

namespace bsp::train {

struct Checkpoint {
  TrainState state;
  std::string config;                      // JSON text of the run's settings
  int64_t threads = 0;                     // OpenMP threads of the run
  std::map<std::string, Tensor> momentum;  // by parameter name ("conv1.weight")
  std::map<std::string, Tensor> dense;     // by node name (BDWP dense weights)
};

// Adds /train to the model file at `path`, just written by save_model().
// momentum: written when non-null.
void write_train_group(const std::string& path, const TrainState& s, const std::string& config, int64_t threads,
                       const std::vector<Param>* momentum, const std::map<std::string, const Tensor*>& dense);

// Puts a checkpoint's momentum and position into a Trainer built on the
// checkpoint's model. Throws bsp::Error when a parameter has no momentum.
void restore_checkpoint(Trainer& t, Checkpoint& c, const std::string& display);

// Reads /train of a model file; nullopt when it has none.
std::optional<Checkpoint> read_train_group(const std::string& path, const std::string& display);

}  // namespace bsp::train
