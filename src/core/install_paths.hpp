// Where an installed bsp finds its files. Each is looked up in order:
// beside the executable (PREFIX/bin/bsp -> PREFIX/share/...: a relocated or
// DESTDIR install works), the prefix it was configured with, and the source
// tree (a bsp run from its build directory).
#pragma once

#include <string>

namespace bsp {

// The data directory (holding aie2/*.json): $BSP_DATA_DIR, else the first
// of the places above that holds aie2/; "" when none does.
std::string find_data_dir();
// The manual page NAME.SECTION ("bsp-prune", 1); "" when none is found.
std::string find_man_page(const std::string& name, int section);
// The places find_data_dir() looks, for an error message.
std::string data_dir_candidates();

}  // namespace bsp
