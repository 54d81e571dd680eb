// bsp export: a bsp model out as an ONNX model (man/bsp-export.1).
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/safe_file.hpp"
#include "onnx/export.hpp"

namespace bsp::cli {

namespace {
struct ExportCliOptions {
  std::string input, output;
};

void run_export(const ExportCliOptions& o) {
  if (o.output.empty()) fail_usage("no output file: give -o FILE");
  Model m = read_model(o.input);
  m.history.push_back(command_line());
  OutputFile out(o.output);
  onnx_io::export_onnx(m, out.temp_path());
  out.commit();
}
}  // namespace

Runner setup_export(CLI::App& sub) {
  auto o = std::make_shared<ExportCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("-o,--output", o->output, "output ONNX file ('-' for stdout)")->type_name("FILE");
  return [o] { run_export(*o); };
}

}  // namespace bsp::cli
