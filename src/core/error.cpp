#include "core/error.hpp"

#include <cctype>
#include <cstring>

namespace bsp {

std::string errno_message(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace bsp
