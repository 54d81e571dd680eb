// What ties a model to a data set: its input normalisation (stored in the
// model's input node), whether the data fits it, whether it was ever trained.
#pragma once

#include <optional>
#include <string>

#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"

namespace bsp::train {

// The input node's "norm_mean" / "norm_std" attributes (float64[C]), set by
// bsp finetune: the per-channel normalisation the model was trained with.
std::optional<Normalization> model_normalization(const Model& m);
void set_model_normalization(Model& m, const Normalization& nm);

// Outputs of the last node (the logits, or the softmax over them).
int64_t model_classes(const Model& m);

// Throws bsp::Error when the images do not have the model's input shape or a
// label is outside [0, classes). `what`: "training", "test".
void check_data_fits(const Model& m, const std::string& model_name, const ImageSet& s, const std::string& data_name,
                     const std::string& what);

// True when the history holds only `bsp init` commands: the weights are the
// zoo's random initialisation.
bool never_trained(const Model& m);

}  // namespace bsp::train
