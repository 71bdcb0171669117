// A tiny flag reader shared by the programs: "--name value" or "--name=value".
#ifndef SESSIONCTX_APPS_FLAGS_H_
#define SESSIONCTX_APPS_FLAGS_H_

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace sessionctx::apps {

class Flags {
 public:
  // Parse reads argv[first..]; words not starting with "--" are positional. Returns an
  // error message, or "" on success. `switches` take no value.
  std::string Parse(int argc, char** argv, int first,
                    const std::vector<std::string>& switches = {}) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        positional_.push_back(a);
        continue;
      }
      a = a.substr(2);
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        values_[a.substr(0, eq)] = a.substr(eq + 1);
        continue;
      }
      bool is_switch = false;
      for (const std::string& s : switches) is_switch |= s == a;
      if (is_switch) {
        values_[a] = "true";
      } else if (i + 1 < argc) {
        values_[a] = argv[++i];
      } else {
        return "flag --" + a + " needs a value";
      }
    }
    return "";
  }

  std::optional<std::string> Get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    used_[name] = true;
    return it->second;
  }
  std::string Get(const std::string& name, const std::string& fallback) const {
    return Get(name).value_or(fallback);
  }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  void Set(const std::string& name, const std::string& value) { values_[name] = value; }
  const std::vector<std::string>& positional() const { return positional_; }

  // Unknown returns the first flag that was given but never asked for.
  std::optional<std::string> Unknown() const {
    for (const auto& [k, v] : values_) {
      if (!used_.count(k)) return k;
    }
    return std::nullopt;
  }

 private:
  std::map<std::string, std::string> values_;
  mutable std::map<std::string, bool> used_;
  std::vector<std::string> positional_;
};

// ReadFile returns the file's bytes, or nullopt when it cannot be read.
inline std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// StripTrailingNewline: a secret file's trailing newline is not part of the secret.
inline std::string StripTrailingNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_FLAGS_H_
