// libFuzzer target: bsp's model-file reader (load_model, the path every
// subcommand reads its input through) on arbitrary bytes. A clean refusal is
// a bsp::Error; anything else (a sanitizer report, another exception, a
// signal, a hang) is a crash. Most inputs die in HDF5's own parser: start it
// from real files (tests/fuzz/make_seeds.sh), and see fuzz_edit for the
// structure-aware target that reaches bsp's validation.
#include "fuzz_common.hpp"
#include "modelfile/model_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = bsp::fuzz::scratch_path("model");
  bsp::fuzz::write_file(path, data, size);
  bsp::fuzz::load_and_exercise(path);
  return 0;
}
