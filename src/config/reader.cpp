#include "config/reader.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace sluice::config {
namespace {

std::string join_lines(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e;
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(const std::vector<std::string>& errors) : std::runtime_error(join_lines(errors)), errors_(errors) {}

std::string substitute_env(const std::string& text, std::string* error) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      // Braces nest, so a default may itself be a JSON object: ${GRAPH_CLUSTER:-{"graph-00":"..."}}.
      std::size_t close = std::string::npos;
      int depth = 1;
      for (std::size_t k = i + 2; k < text.size(); ++k) {
        if (text[k] == '{') ++depth;
        if (text[k] == '}' && --depth == 0) {
          close = k;
          break;
        }
      }
      if (close == std::string::npos) {
        if (error) *error = "unterminated ${...} in '" + text + "'";
        return text;
      }
      const std::string inner = text.substr(i + 2, close - i - 2);
      const auto sep = inner.find(":-");
      const std::string name = inner.substr(0, sep);
      const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
      if (value && *value) {
        out += value;
      } else if (sep != std::string::npos) {
        out += inner.substr(sep + 2);
      } else if (value) {
        out += value;
      } else {
        if (error) *error = "environment variable " + name + " is not set (write ${" + name + ":-default} to give a default)";
        return text;
      }
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || value < 0) return std::nullopt;
  const std::string unit(ptr, end);
  double ms = 0;
  if (unit.empty() || unit == "s") ms = value * 1000;
  else if (unit == "ms") ms = value;
  else if (unit == "m") ms = value * 60'000;
  else if (unit == "h") ms = value * 3'600'000;
  else return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || value < 0) return std::nullopt;
  std::string unit(ptr, end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::pair<const char*, double> units[] = {
      {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1024.0 * 1024},
      {"GiB", 1024.0 * 1024 * 1024}};
  for (const auto& [name, mult] : units) {
    if (unit == name) return static_cast<std::uint64_t>(value * mult);
  }
  return std::nullopt;
}

ConfigReader::ConfigReader(YAML::Node node, std::string path, std::shared_ptr<std::vector<std::string>> errors)
    : node_(std::move(node)), path_(std::move(path)), errors_(std::move(errors)) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    errors_->push_back(fmt::format("{}: expected a mapping of keys to values", path_.empty() ? "(top level)" : path_));
    node_ = YAML::Node();
  }
}

ConfigReader ConfigReader::root(const YAML::Node& node) {
  return ConfigReader(node, "", std::make_shared<std::vector<std::string>>());
}

bool ConfigReader::has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }
bool ConfigReader::is_scalar(const std::string& key) const { return has(key) && node_[key].IsScalar(); }

void ConfigReader::error(const std::string& key, const std::string& message) {
  errors_->push_back(fmt::format("{}: {}", key_path(key), message));
}

std::optional<std::string> ConfigReader::scalar(const std::string& key) {
  seen_.insert(key);
  if (!has(key)) return std::nullopt;
  const YAML::Node value = node_[key];
  if (value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) {
    error(key, "expected a single value, got a list or mapping");
    return std::nullopt;
  }
  std::string err;
  auto text = substitute_env(value.Scalar(), &err);
  if (!err.empty()) {
    error(key, err);
    return std::nullopt;
  }
  return text;
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) {
  auto v = scalar(key);
  return v ? *v : fallback;
}

std::optional<std::string> ConfigReader::optional_string(const std::string& key) { return scalar(key); }

std::optional<std::string> ConfigReader::literal_string(const std::string& key) {
  seen_.insert(key);
  if (!has(key) || node_[key].IsNull()) return std::nullopt;
  if (!node_[key].IsScalar()) {
    error(key, "expected a single value, got a list or mapping");
    return std::nullopt;
  }
  return node_[key].Scalar();
}

std::int64_t ConfigReader::integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto v = scalar(key);
  if (!v) return fallback;
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size()) {
    error(key, fmt::format("expected an integer, got '{}'", *v));
    return fallback;
  }
  if (out < min || out > max) {
    error(key, fmt::format("expected an integer between {} and {}, got {}", min, max, out));
    return fallback;
  }
  return out;
}

bool ConfigReader::boolean(const std::string& key, bool fallback) {
  auto v = scalar(key);
  if (!v) return fallback;
  if (*v == "true" || *v == "yes" || *v == "on") return true;
  if (*v == "false" || *v == "no" || *v == "off") return false;
  error(key, fmt::format("expected true or false, got '{}'", *v));
  return fallback;
}

std::chrono::milliseconds ConfigReader::duration(const std::string& key, std::chrono::milliseconds fallback) {
  auto v = scalar(key);
  if (!v) return fallback;
  auto d = parse_duration(*v);
  if (!d) {
    error(key, fmt::format("expected a duration such as 500ms, 10s, 5m or 1h, got '{}'", *v));
    return fallback;
  }
  return *d;
}

std::uint64_t ConfigReader::size(const std::string& key, std::uint64_t fallback) {
  auto v = scalar(key);
  if (!v) return fallback;
  auto s = parse_size(*v);
  if (!s) {
    error(key, fmt::format("expected a size such as 65536, 512KiB, 64MiB or 1GB, got '{}'", *v));
    return fallback;
  }
  return *s;
}

std::string ConfigReader::one_of(const std::string& key, const std::string& fallback,
                                 const std::vector<std::string>& allowed) {
  auto v = scalar(key);
  if (!v) return fallback;
  for (const auto& a : allowed) {
    if (*v == a) return *v;
  }
  error(key, fmt::format("expected one of {}, got '{}'", fmt::join(allowed, ", "), *v));
  return fallback;
}

std::string ConfigReader::listen_address(const std::string& key, const std::string& fallback) {
  auto v = scalar(key);
  if (!v) return fallback;
  const auto colon = v->rfind(':');
  bool ok = colon != std::string::npos && colon > 0 && colon + 1 < v->size();
  if (ok) {
    int port = -1;
    auto [ptr, ec] = std::from_chars(v->data() + colon + 1, v->data() + v->size(), port);
    ok = ec == std::errc() && ptr == v->data() + v->size() && port >= 0 && port <= 65535;
  }
  if (!ok) {
    error(key, fmt::format("expected host:port such as 0.0.0.0:2055 or [::]:2055, got '{}'", *v));
    return fallback;
  }
  return *v;
}

std::vector<std::string> ConfigReader::string_list(const std::string& key) {
  seen_.insert(key);
  std::vector<std::string> out;
  if (!has(key)) return out;
  const YAML::Node value = node_[key];
  if (value.IsNull()) return out;
  if (value.IsScalar()) {  // "a,b,c" from an environment variable
    std::string err;
    auto text = substitute_env(value.Scalar(), &err);
    if (!err.empty()) {
      error(key, err);
      return out;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
      auto comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      auto item = text.substr(start, comma - start);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
      if (!item.empty()) out.push_back(item);
      start = comma + 1;
    }
    return out;
  }
  if (!value.IsSequence()) {
    error(key, "expected a list");
    return out;
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].IsScalar()) {
      error(key + "[" + std::to_string(i) + "]", "expected a single value");
      continue;
    }
    std::string err;
    auto text = substitute_env(value[i].Scalar(), &err);
    if (!err.empty()) error(key + "[" + std::to_string(i) + "]", err);
    else out.push_back(text);
  }
  return out;
}

std::map<std::string, std::string> ConfigReader::string_map(const std::string& key) {
  seen_.insert(key);
  std::map<std::string, std::string> out;
  if (!has(key)) return out;
  const YAML::Node value = node_[key];
  if (value.IsNull()) return out;
  if (!value.IsMap()) {
    error(key, "expected a mapping of names to values");
    return out;
  }
  for (const auto& kv : value) {
    const auto name = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      error(key + "." + name, "expected a single value");
      continue;
    }
    std::string err;
    auto text = substitute_env(kv.second.Scalar(), &err);
    if (!err.empty()) error(key + "." + name, err);
    else out[name] = text;
  }
  return out;
}

std::map<std::string, std::string> ConfigReader::string_map_or_json(const std::string& key) {
  if (!has(key) || !node_[key].IsScalar()) return string_map(key);
  seen_.insert(key);
  std::map<std::string, std::string> out;
  std::string err;
  const auto text = substitute_env(node_[key].Scalar(), &err);
  if (!err.empty()) {
    error(key, err);
    return out;
  }
  if (text.find_first_not_of(" \t") == std::string::npos) return out;  // an empty variable: nothing configured
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error(key, "expected a mapping, or a JSON object such as {\"graph-00\":\"127.0.0.1:6070\"}; got \"" + text + "\"");
    return out;
  }
  for (const auto& [name, value] : j.items()) {
    if (!value.is_string()) {
      error(key + "." + name, "expected a string");
      continue;
    }
    out[name] = value.get<std::string>();
  }
  return out;
}

ConfigReader ConfigReader::child(const std::string& key) {
  seen_.insert(key);
  YAML::Node sub;
  if (has(key)) sub = node_[key];
  return ConfigReader(sub, key_path(key), errors_);
}

std::vector<ConfigReader> ConfigReader::list(const std::string& key) {
  seen_.insert(key);
  std::vector<ConfigReader> out;
  if (!has(key)) return out;
  const YAML::Node value = node_[key];
  if (value.IsNull()) return out;
  if (!value.IsSequence()) {
    error(key, "expected a list of mappings");
    return out;
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    out.emplace_back(value[i], key_path(key) + "[" + std::to_string(i) + "]", errors_);
  }
  return out;
}

std::vector<std::string> ConfigReader::keys() const {
  std::vector<std::string> out;
  if (!node_ || !node_.IsMap()) return out;
  for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
  return out;
}

void ConfigReader::finish() {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const auto key = kv.first.as<std::string>();
    if (!seen_.count(key)) {
      std::string known;
      for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
      error(key, fmt::format("unknown key (known keys here: {})", known.empty() ? "none" : known));
    }
  }
}

void ConfigReader::check() const {
  if (!errors_->empty()) throw ConfigError(*errors_);
}

}  // namespace sluice::config
