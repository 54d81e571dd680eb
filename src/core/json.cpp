#include "core/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.hpp"

namespace bsp {

namespace {
const char* type_name(const Json& j) {
  if (j.is_null()) return "null";
  if (j.is_bool()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}
}  // namespace

bool Json::as_bool() const {
  if (!is_bool()) fail("expected a boolean, found {}", type_name(*this));
  return std::get<bool>(v_);
}
int64_t Json::as_int() const {
  if (is_int()) return std::get<int64_t>(v_);
  if (std::holds_alternative<double>(v_)) {
    double d = std::get<double>(v_);
    if (std::floor(d) == d && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
    fail("expected an integer, found {}", d);
  }
  fail("expected an integer, found {}", type_name(*this));
}
double Json::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
  if (std::holds_alternative<double>(v_)) return std::get<double>(v_);
  fail("expected a number, found {}", type_name(*this));
}
const std::string& Json::as_string() const {
  if (!is_string()) fail("expected a string, found {}", type_name(*this));
  return std::get<std::string>(v_);
}
const Json::Array& Json::as_array() const {
  if (!is_array()) fail("expected an array, found {}", type_name(*this));
  return std::get<Array>(v_);
}
Json::Array& Json::as_array() {
  if (!is_array()) fail("expected an array, found {}", type_name(*this));
  return std::get<Array>(v_);
}
const Json::Object& Json::as_object() const {
  if (!is_object()) fail("expected an object, found {}", type_name(*this));
  return std::get<Object>(v_);
}

Json& Json::operator[](std::string_view key) {
  if (is_null()) v_ = Object{};
  if (!is_object()) fail("expected an object, found {}", type_name(*this));
  auto& o = std::get<Object>(v_);
  for (auto& [k, v] : o)
    if (k == key) return v;
  o.emplace_back(std::string(key), Json());
  return o.back().second;
}
const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : std::get<Object>(v_))
    if (k == key) return &v;
  return nullptr;
}
const Json& Json::at(std::string_view key) const {
  const Json* j = find(key);
  if (!j) fail("missing key '{}'", key);
  return *j;
}
void Json::push_back(Json v) {
  if (is_null()) v_ = Array{};
  as_array().push_back(std::move(v));
}
size_t Json::size() const {
  if (is_array()) return std::get<Array>(v_).size();
  if (is_object()) return std::get<Object>(v_).size();
  return 0;
}

// ---- output ----

static void escape_to(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  if (is_null()) {
    out += "null";
  } else if (is_bool()) {
    out += std::get<bool>(v_) ? "true" : "false";
  } else if (is_int()) {
    out += fmt::format("{}", std::get<int64_t>(v_));
  } else if (std::holds_alternative<double>(v_)) {
    double d = std::get<double>(v_);
    if (!std::isfinite(d))
      out += "null";  // JSON has no NaN/Inf
    else
      out += fmt::format("{}", d);
  } else if (is_string()) {
    escape_to(out, std::get<std::string>(v_));
  } else if (is_array()) {
    const auto& a = std::get<Array>(v_);
    out += '[';
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) out += ',';
      newline(depth + 1);
      a[i].dump_to(out, indent, depth + 1);
    }
    if (!a.empty()) newline(depth);
    out += ']';
  } else {
    const auto& o = std::get<Object>(v_);
    out += '{';
    for (size_t i = 0; i < o.size(); ++i) {
      if (i) out += ',';
      newline(depth + 1);
      escape_to(out, o[i].first);
      out += indent < 0 ? ":" : ": ";
      o[i].second.dump_to(out, indent, depth + 1);
    }
    if (!o.empty()) newline(depth);
    out += '}';
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// ---- parsing ----

namespace {
class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Json parse_document() {
    Json v = value(0);
    ws();
    if (p_ != t_.size()) error("unexpected text after the value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p_ && i < t_.size(); ++i) {
      if (t_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    fail("invalid JSON at line {}, column {}: {}", line, col, what);
  }
  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) error(fmt::format("expected '{}'", c));
  }
  Json value(int depth) {
    if (depth > 200) error("nested too deeply");
    ws();
    if (p_ >= t_.size()) error("unexpected end of input");
    char c = t_[p_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json(string());
    if (c == 't' || c == 'f' || c == 'n') return literal();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    error(fmt::format("unexpected character '{}'", c));
  }
  Json object(int depth) {
    ++p_;
    Json o = Json::object();
    if (eat('}')) return o;
    do {
      ws();
      if (p_ >= t_.size() || t_[p_] != '"') error("expected a string key");
      std::string k = string();
      expect(':');
      o[k] = value(depth + 1);
    } while (eat(','));
    expect('}');
    return o;
  }
  Json array(int depth) {
    ++p_;
    Json a = Json::array();
    if (eat(']')) return a;
    do {
      a.push_back(value(depth + 1));
    } while (eat(','));
    expect(']');
    return a;
  }
  Json literal() {
    for (auto [word, val] : {std::pair<std::string_view, Json>{"true", Json(true)},
                             {"false", Json(false)},
                             {"null", Json(nullptr)}}) {
      if (t_.substr(p_, word.size()) == word) {
        p_ += word.size();
        return val;
      }
    }
    error("unknown literal");
  }
  Json number() {
    size_t start = p_;
    bool is_float = false;
    if (t_[p_] == '-') ++p_;
    while (p_ < t_.size()) {
      char c = t_[p_];
      if (c >= '0' && c <= '9') {
        ++p_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_float = true;
        ++p_;
      } else {
        break;
      }
    }
    std::string s(t_.substr(start, p_ - start));
    char* end = nullptr;
    if (!is_float) {
      errno = 0;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == '\0' && errno == 0) return Json(v);
    }
    double d = std::strtod(s.c_str(), &end);
    if (!end || *end != '\0' || s == "-") {
      p_ = start;
      error("malformed number");
    }
    return Json(d);
  }
  unsigned hex4() {
    if (p_ + 4 > t_.size()) error("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = t_[p_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else error("bad \\u escape");
    }
    return v;
  }
  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::string string() {
    ++p_;  // opening quote
    std::string out;
    while (true) {
      if (p_ >= t_.size()) error("unterminated string");
      char c = t_[p_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= t_.size()) error("unterminated string");
      char e = t_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && t_.substr(p_, 2) == "\\u") {
            p_ += 2;
            unsigned lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: error("bad escape");
      }
    }
  }

  std::string_view t_;
  size_t p_ = 0;
};
}  // namespace

Json Json::parse(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace bsp
