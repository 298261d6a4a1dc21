// ConfigReader: typed access to a YAML tree that records errors with their key paths.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::config {

// Thrown once reading is over, with every problem found (one per line, each starting with its key path).
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::vector<std::string>& errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

// Replaces ${NAME} and ${NAME:-default} from the environment. Unset ${NAME} without default is an
// error (reported through `error`), so that a forgotten variable never becomes an empty address.
std::string substitute_env(const std::string& text, std::string* error);

// Reads one mapping. Keys that are read are remembered; finish() reports the others as unknown.
// Reading never throws: problems are collected and raised by ConfigReader::check().
class ConfigReader {
 public:
  ConfigReader(YAML::Node node, std::string path, std::shared_ptr<std::vector<std::string>> errors);
  static ConfigReader root(const YAML::Node& node);

  bool has(const std::string& key) const;
  bool is_scalar(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback);
  std::optional<std::string> optional_string(const std::string& key);
  // A scalar taken as written, without ${ENV} substitution: for values with a ${...} syntax of their
  // own (classifier templates).
  std::optional<std::string> literal_string(const std::string& key);
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  bool boolean(const std::string& key, bool fallback);
  // "500ms", "2s", "1m", "1h"; a bare number is seconds.
  std::chrono::milliseconds duration(const std::string& key, std::chrono::milliseconds fallback);
  // "64MiB", "512KiB", "1GB", "1000"; a bare number is bytes.
  std::uint64_t size(const std::string& key, std::uint64_t fallback);
  std::string one_of(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);
  // "host:port" or "[v6]:port"; the port is required.
  std::string listen_address(const std::string& key, const std::string& fallback);
  std::vector<std::string> string_list(const std::string& key);
  std::map<std::string, std::string> string_map(const std::string& key);
  // The same, or a string holding a JSON object of strings, so that one environment variable can
  // carry a whole map (Open-Falcon's `cluster` notation: {"graph-00":"10.0.0.1:6070,10.0.0.2:6070"}).
  std::map<std::string, std::string> string_map_or_json(const std::string& key);
  // A nested mapping; absent → an empty reader (defaults apply).
  ConfigReader child(const std::string& key);
  // A list of mappings, one reader per element (paths "key[0]", "key[1]", ...); absent → empty.
  std::vector<ConfigReader> list(const std::string& key);
  // The keys of this mapping in file order, for mappings keyed by data (prefixes, indexes); read each
  // with child() or the typed getters so that finish() knows it.
  std::vector<std::string> keys() const;

  void error(const std::string& key, const std::string& message);
  // Reports unknown keys of this mapping. Call after reading every key you know.
  void finish();
  // Throws ConfigError if anything was reported anywhere in the tree.
  void check() const;
  const std::string& path() const { return path_; }
  // The mapping itself, for sections that a component reads again later with its own reader.
  const YAML::Node& node() const { return node_; }
  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  std::optional<std::string> scalar(const std::string& key);

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<std::vector<std::string>> errors_;
  std::set<std::string> seen_;
};

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);
std::optional<std::uint64_t> parse_size(const std::string& text);

}  // namespace sluice::config
