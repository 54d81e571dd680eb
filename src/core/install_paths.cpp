#include "core/install_paths.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

// Set by meson: the install locations relative to the executable's directory
// (e.g. "../share/bsp"), the configured absolute ones, and the source tree's.
#ifndef BSP_DATADIR_FROM_BIN
#define BSP_DATADIR_FROM_BIN ""
#endif
#ifndef BSP_DATADIR
#define BSP_DATADIR ""
#endif
#ifndef BSP_SOURCE_DATADIR
#define BSP_SOURCE_DATADIR ""
#endif
#ifndef BSP_MANDIR_FROM_BIN
#define BSP_MANDIR_FROM_BIN ""
#endif
#ifndef BSP_MANDIR
#define BSP_MANDIR ""
#endif
#ifndef BSP_SOURCE_MANDIR
#define BSP_SOURCE_MANDIR ""
#endif

namespace bsp {

namespace {

namespace fs = std::filesystem;

std::string beside_executable(const char* rel) {
  if (!*rel) return "";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (exe.parent_path() / rel).lexically_normal().string();
}

std::vector<std::string> candidates(const char* from_bin, const char* configured, const char* source) {
  std::vector<std::string> v;
  for (const std::string& d : {beside_executable(from_bin), std::string(configured), std::string(source)})
    if (!d.empty()) v.push_back(d);
  return v;
}

bool exists(const std::string& p, bool dir) {
  std::error_code ec;
  return dir ? fs::is_directory(p, ec) : fs::is_regular_file(p, ec);
}

}  // namespace

std::string find_data_dir() {
  if (const char* env = std::getenv("BSP_DATA_DIR"); env && *env) return env;
  for (const std::string& d : candidates(BSP_DATADIR_FROM_BIN, BSP_DATADIR, BSP_SOURCE_DATADIR))
    if (exists(d + "/aie2", true)) return d;
  return "";
}

std::string data_dir_candidates() {
  std::string s;
  for (const std::string& d : candidates(BSP_DATADIR_FROM_BIN, BSP_DATADIR, BSP_SOURCE_DATADIR))
    s += (s.empty() ? "'" : ", '") + d + "'";
  return s;
}

std::string find_man_page(const std::string& name, int section) {
  const std::string file = name + "." + std::to_string(section);
  const std::string sub = "/man" + std::to_string(section) + "/";
  for (const std::string& d : candidates(BSP_MANDIR_FROM_BIN, BSP_MANDIR, "")) {
    if (exists(d + sub + file, false)) return d + sub + file;
  }
  if (*BSP_SOURCE_MANDIR && exists(std::string(BSP_SOURCE_MANDIR) + "/" + file, false))
    return std::string(BSP_SOURCE_MANDIR) + "/" + file;
  return "";
}

}  // namespace bsp
