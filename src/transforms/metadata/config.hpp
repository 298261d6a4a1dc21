// MetadataConfig: the `metadata:` section (static exporter/interface entries, SNMP polling, cache).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "config/reader.hpp"
#include "transforms/metadata.hpp"
#include "transforms/metadata/prefix.hpp"

namespace sluice::transforms::metadata {

// One static entry: every exporter inside `exporters` gets these answers before SNMP is asked.
struct StaticExporter {
  Prefix exporters;
  std::shared_ptr<const ExporterInfo> exporter;  // null: name from SNMP
  std::unordered_map<std::uint32_t, std::shared_ptr<const InterfaceInfo>> interfaces;
  std::shared_ptr<const InterfaceInfo> default_interface;  // null: other ifIndexes from SNMP
};

enum class AuthProtocol { none, md5, sha, sha256 };
enum class PrivProtocol { none, des, aes };
enum class SecurityLevel { no_auth_no_priv, auth_no_priv, auth_priv };

struct SnmpV3Credentials {
  std::string user;
  SecurityLevel level = SecurityLevel::auth_priv;
  AuthProtocol auth = AuthProtocol::sha;
  std::string auth_passphrase;
  PrivProtocol priv = PrivProtocol::aes;
  std::string priv_passphrase;
};

struct SnmpV2cCredentials {
  std::string community;
};

using SnmpCredentials = std::variant<SnmpV2cCredentials, SnmpV3Credentials>;

struct SnmpConfig {
  bool enabled = true;
  std::uint16_t port = 161;
  // Communities and v3 users in one table: the longest prefix wins, v3 first on equal prefixes.
  PrefixTable<SnmpCredentials> credentials;
  std::chrono::milliseconds timeout{1000};  // per attempt
  int retries = 1;
  int concurrency = 8;              // queries in flight at once
  std::size_t queue = 4096;         // pending fetches; beyond, counted and retried later
  std::chrono::milliseconds retry_after{30'000};  // a failed fetch is tried again after this
  int breaker_failures = 3;         // consecutive failures that open an exporter's breaker
  std::chrono::milliseconds breaker_open_for{30'000};
};

struct CacheConfig {
  std::chrono::milliseconds ttl{std::chrono::hours(24)};       // a value not refreshed for this long is dropped
  std::chrono::milliseconds refresh{std::chrono::minutes(30)};  // a used value older than this is fetched again
  std::size_t max_exporters = 4096;
  std::size_t max_interfaces = 4096;  // per exporter
  std::string path;                   // empty: not persisted
  std::chrono::milliseconds save_every{std::chrono::minutes(5)};
};

struct MetadataConfig {
  std::vector<StaticExporter> static_entries;
  SnmpConfig snmp;
  CacheConfig cache;
};

// Reads the `metadata:` mapping (pass root.child("metadata")). The cache file defaults to
// <data_dir>/metadata-cache.json. Problems are recorded in the reader with their key paths;
// the caller's check() raises them.
MetadataConfig parse_metadata_config(config::ConfigReader& reader, const std::string& data_dir);

}  // namespace sluice::transforms::metadata
