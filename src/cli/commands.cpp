#include "cli/command.hpp"

namespace bsp::cli {

// Every subcommand, in pipeline order.
const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"init", "create a model from the built-in zoo", setup_init},
      {"import", "convert an ONNX model into a bsp model file", setup_import},
      {"info", "describe a model file: layers, shapes, parameters, MACs, sparsity, history", setup_info},
      {"prune", "prune to a sparsity pattern: blocks, N:M, tile-wise, unstructured, channels", setup_prune},
      {"finetune", "train a model on a data set (from scratch or fine-tuning), holding its masks", setup_finetune},
      {"eval", "test accuracy, loss and images/s of a model on a data set", setup_eval},
      {"explore", "search per-layer activation thresholds or weight densities against an accuracy budget", setup_explore},
      {"compact", "store the weights in compact sparse forms (bsr, nm, tw), in fp32, bf16 or int8", setup_compact},
      {"strip", "drop the dense weights a compacted model's compact form holds: the deployable file", setup_strip},
      {"bench", "time a model on the dense baseline and on its sparse kernels, per layer and in total", setup_bench},
      {"schedule", "plan a model for an AIE2 array: work split, tiles, buffers, DDR layout, balance", setup_schedule},
      {"codegen", "generate the AIE2 program (instruction streams and weight image) of a scheduled model", setup_codegen},
      {"sim", "run the AIE2 program on a simulated array and compare with the reference forward", setup_sim},
      {"estimate", "time the AIE2 program per layer, per instruction class and in total", setup_estimate},
      {"export", "write a model as ONNX for other runtimes (masks and history kept in its metadata)", setup_export},
      {"plot", "draw training curves of finetune logs as SVG", setup_plot},
      {"help", "show the manual page of a subcommand (its --help where man is missing)", setup_help},
  };
  return table;
}

}  // namespace bsp::cli
