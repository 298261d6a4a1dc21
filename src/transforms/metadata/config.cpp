#include "transforms/metadata/config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace sluice::transforms::metadata {
namespace {

InterfaceInfo read_interface(config::ConfigReader& r) {
  InterfaceInfo info;
  info.name = r.string("name", "");
  info.description = r.string("description", "");
  info.speed = static_cast<std::uint32_t>(r.integer("speed", 0, 0, std::numeric_limits<std::uint32_t>::max()));
  r.finish();
  return info;
}

StaticExporter read_static(config::ConfigReader& r) {
  StaticExporter entry;
  const auto text = r.optional_string("exporters");
  if (!text) {
    r.error("exporters", "required: the exporter address or prefix this entry applies to (192.0.2.1, 192.0.2.0/24)");
  } else if (auto p = parse_prefix(*text)) {
    entry.exporters = *p;
  } else {
    r.error("exporters", fmt::format("expected an address or a prefix such as 192.0.2.0/24 or 2001:db8::/48 "
                                     "(host bits clear), got '{}'",
                                     *text));
  }
  if (auto name = r.optional_string("name")) {
    entry.exporter = std::make_shared<const ExporterInfo>(ExporterInfo{*name});
  }
  auto interfaces = r.child("interfaces");
  for (const auto& key : interfaces.keys()) {
    std::uint32_t index = 0;
    auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
    auto sub = interfaces.child(key);
    if (ec != std::errc() || ptr != key.data() + key.size()) {
      interfaces.error(key, "expected an ifIndex (a number) as key");
      continue;
    }
    entry.interfaces[index] = std::make_shared<const InterfaceInfo>(read_interface(sub));
  }
  interfaces.finish();
  if (r.has("default_interface")) {
    auto sub = r.child("default_interface");
    entry.default_interface = std::make_shared<const InterfaceInfo>(read_interface(sub));
  } else {
    r.child("default_interface");
  }
  r.finish();
  return entry;
}

template <typename E>
E read_enum(config::ConfigReader& r, const std::string& key, E fallback,
            const std::vector<std::pair<std::string, E>>& names) {
  std::vector<std::string> allowed;
  std::string fallback_name;
  for (const auto& [n, v] : names) {
    allowed.push_back(n);
    if (v == fallback && fallback_name.empty()) fallback_name = n;
  }
  const auto chosen = r.one_of(key, fallback_name, allowed);
  for (const auto& [n, v] : names) {
    if (n == chosen) return v;
  }
  return fallback;
}

SnmpV3Credentials read_v3(config::ConfigReader& r) {
  SnmpV3Credentials c;
  c.user = r.string("user", "");
  if (c.user.empty()) r.error("user", "required: the SNMPv3 user name");
  c.level = read_enum(r, "security_level", SecurityLevel::auth_priv,
                      {{"authPriv", SecurityLevel::auth_priv},
                       {"authNoPriv", SecurityLevel::auth_no_priv},
                       {"noAuthNoPriv", SecurityLevel::no_auth_no_priv}});
  c.auth = read_enum(r, "auth_protocol", AuthProtocol::sha,
                     {{"SHA", AuthProtocol::sha}, {"SHA256", AuthProtocol::sha256}, {"MD5", AuthProtocol::md5}});
  c.auth_passphrase = r.string("auth_passphrase", "");
  c.priv = read_enum(r, "priv_protocol", PrivProtocol::aes, {{"AES", PrivProtocol::aes}, {"DES", PrivProtocol::des}});
  c.priv_passphrase = r.string("priv_passphrase", "");
  if (c.level == SecurityLevel::no_auth_no_priv) {
    c.auth = AuthProtocol::none;
    c.priv = PrivProtocol::none;
  } else {
    // net-snmp (and RFC 3414 key localisation) needs at least 8 characters.
    if (c.auth_passphrase.size() < 8) r.error("auth_passphrase", "required with authNoPriv/authPriv, at least 8 characters");
    if (c.level == SecurityLevel::auth_no_priv) {
      c.priv = PrivProtocol::none;
    } else if (c.priv_passphrase.size() < 8) {
      r.error("priv_passphrase", "required with authPriv, at least 8 characters");
    }
  }
  r.finish();
  return c;
}

}  // namespace

MetadataConfig parse_metadata_config(config::ConfigReader& reader, const std::string& data_dir) {
  MetadataConfig cfg;

  for (auto& entry : reader.list("static")) cfg.static_entries.push_back(read_static(entry));

  auto cache = reader.child("cache");
  cfg.cache.ttl = cache.duration("ttl", cfg.cache.ttl);
  cfg.cache.refresh = cache.duration("refresh", cfg.cache.refresh);
  if (cfg.cache.refresh >= cfg.cache.ttl) {
    cache.error("refresh", "must be shorter than cache.ttl, so that values are refreshed before they expire");
  }
  if (cfg.cache.refresh.count() <= 0) cache.error("refresh", "must be positive");
  cfg.cache.max_exporters = static_cast<std::size_t>(cache.integer("max_exporters", 4096, 1, 1'000'000));
  cfg.cache.max_interfaces = static_cast<std::size_t>(cache.integer("max_interfaces", 4096, 1, 1'000'000));
  const std::string default_path = (data_dir.empty() ? std::string(".") : data_dir) + "/metadata-cache.json";
  cfg.cache.path = cache.string("path", default_path);
  if (!cache.boolean("persist", true)) cfg.cache.path.clear();
  cfg.cache.save_every = cache.duration("save_every", cfg.cache.save_every);
  if (cfg.cache.save_every.count() <= 0) cache.error("save_every", "must be positive");
  cache.finish();

  auto snmp = reader.child("snmp");
  auto& s = cfg.snmp;
  s.enabled = snmp.boolean("enabled", true);
  s.port = static_cast<std::uint16_t>(snmp.integer("port", 161, 1, 65535));
  s.timeout = snmp.duration("timeout", s.timeout);
  if (s.timeout.count() <= 0) snmp.error("timeout", "must be positive");
  s.retries = static_cast<int>(snmp.integer("retries", 1, 0, 10));
  s.concurrency = static_cast<int>(snmp.integer("concurrency", 8, 1, 256));
  s.queue = static_cast<std::size_t>(snmp.integer("queue", 4096, 1, 1'000'000));
  s.retry_after = snmp.duration("retry_after", s.retry_after);
  auto breaker = snmp.child("breaker");
  s.breaker_failures = static_cast<int>(breaker.integer("failures", 3, 1, 1000));
  s.breaker_open_for = breaker.duration("open_for", s.breaker_open_for);
  breaker.finish();

  // v3 users first so that they win over a community on an equal prefix.
  auto v3 = snmp.child("v3");
  for (const auto& key : v3.keys()) {
    auto sub = v3.child(key);
    auto creds = read_v3(sub);
    if (auto p = parse_prefix(key)) s.credentials.add(*p, creds);
    else v3.error(key, "expected a prefix such as 203.0.113.0/24 as key");
  }
  v3.finish();
  const auto communities = snmp.string_map("communities");
  bool has_default = false;
  for (const auto& [key, community] : communities) {
    if (auto p = parse_prefix(key)) {
      s.credentials.add(*p, SnmpV2cCredentials{community});
      has_default = has_default || p->length == 0;
    } else {
      snmp.error("communities." + key, "expected a prefix such as 192.0.2.0/24 or ::/0 as key");
    }
  }
  const auto community = snmp.string("community", "public");
  if (!has_default) s.credentials.add(*parse_prefix("::/0"), SnmpV2cCredentials{community});
  snmp.finish();

  reader.finish();
  return cfg;
}

}  // namespace sluice::transforms::metadata
