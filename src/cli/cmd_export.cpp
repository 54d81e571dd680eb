// bsp export: a bsp model out as an ONNX model (man/bsp-export.1).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "core/act_sparsity.hpp"
#include "core/safe_file.hpp"
#include "onnx/export.hpp"

namespace bsp::cli {

namespace {
struct ExportCliOptions {
  std::string input, output, dtype = "fp32";
  bool drop_act_rules = false;
};

void run_export(const ExportCliOptions& o) {
  if (o.output.empty()) fail_usage("no output file: give -o FILE");
  Model m = read_model(o.input);
  if (o.dtype == "int8" && (!m.compact || !m.compact->int8))
    fail("cannot export '{}' as int8: it has no int8 program{} (bsp compact --dtype int8 makes one)", o.input,
         m.compact_dropped.empty() ? "" : ": " + m.compact_dropped);
  if (o.dtype == "fp32") note_rebuilt_weights(m, "export", /*always=*/false);
  // ONNX has no activation rule: refused, or with --drop-act-rules left out with a warning per layer.
  for (Node& n : m.nodes) {
    const std::optional<ActRule> r = act_rule(n);
    if (!r) continue;
    if (!o.drop_act_rules)
      fail("cannot export '{}': layer '{}' has an activation rule (act_threshold {}), which ONNX cannot carry: "
           "--drop-act-rules exports the model without them",
           o.input, n.name, r->threshold);
    std::fprintf(stderr,
                 "bsp export: warning: layer '%s': activation rule (act_threshold %g, block %lldx%lldx%lld) not "
                 "exported: ONNX runtimes compute the layer on its whole input\n",
                 n.name.c_str(), r->threshold, static_cast<long long>(r->block[0]),
                 static_cast<long long>(r->block[1]), static_cast<long long>(r->block[2]));
    set_act_rule(n, 0, r->block);
  }
  m.history.push_back(command_line());
  OutputFile out(o.output);
  onnx_io::export_onnx(m, out.temp_path(), {.int8 = o.dtype == "int8"});
  out.commit();
}
}  // namespace

Runner setup_export(CLI::App& sub) {
  auto o = std::make_shared<ExportCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("-o,--output", o->output, "output ONNX file ('-' for stdout)")->type_name("FILE");
  sub.add_option("--dtype", o->dtype, "fp32: the graph's weights (default); int8: the int8 program as QuantizeLinear/DequantizeLinear (an int8-compacted model)")
      ->check(CLI::IsMember({"fp32", "int8"}))
      ->type_name("TYPE");
  sub.add_flag("--drop-act-rules", o->drop_act_rules,
               "export a model with activation rules without them (a warning per layer; refused otherwise)");
  return [o] { run_export(*o); };
}

}  // namespace bsp::cli
