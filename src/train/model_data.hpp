// What ties a model to a data set: its input normalisation (stored in the
// model's input node), whether the data fits it, whether it was ever trained.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"

namespace bsp::train {

// The input node's "norm_mean" / "norm_std" attributes (float64[C]), set by
// bsp finetune: the per-channel normalisation the model was trained with.
std::optional<Normalization> model_normalization(const Model& m);
void set_model_normalization(Model& m, const Normalization& nm);

// The input node's "class_names" attribute (one name a line), set by bsp
// finetune from the class folders of an image-folder data set: the name of
// output k is line k. Empty when the model has none.
std::vector<std::string> model_class_names(const Model& m);
void set_model_class_names(Model& m, const std::vector<std::string>& names);

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
