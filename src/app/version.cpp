#include "app/version.hpp"

#include <CLI/Version.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>
#include <lz4.h>
#include <simdjson.h>
#include <spdlog/version.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::app {

namespace {

#define SLUICE_STR_INNER(x) #x
#define SLUICE_STR(x) SLUICE_STR_INNER(x)

std::string compiler() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string xxhash_version() {
  // XXH_versionNumber() is major*10000 + minor*100 + release.
  const unsigned n = XXH_versionNumber();
  return fmt::format("{}.{}.{}", n / 10000, (n / 100) % 100, n % 100);
}

// Name and version of sluice, its build and each library, in the order `sluice version` prints them.
std::vector<std::pair<std::string, std::string>> entries() {
  std::vector<std::pair<std::string, std::string>> e;
  e.emplace_back("version", SLUICE_VERSION);
  e.emplace_back("build_type", SLUICE_BUILD_TYPE);
  e.emplace_back("compiler", compiler());
  e.emplace_back("librdkafka", rd_kafka_version_str());
#ifdef SLUICE_YAML_CPP_VERSION
  // yaml-cpp has no version macro or function; the build may pass the version CMake found.
  e.emplace_back("yaml-cpp", SLUICE_YAML_CPP_VERSION);
#endif
  e.emplace_back("spdlog", fmt::format("{}.{}.{}", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH));
  e.emplace_back("fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, (FMT_VERSION / 100) % 100, FMT_VERSION % 100));
  e.emplace_back("simdjson", SLUICE_STR(SIMDJSON_VERSION));
  e.emplace_back("nlohmann-json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                                              NLOHMANN_JSON_VERSION_PATCH));
  e.emplace_back("zstd", ZSTD_versionString());
  e.emplace_back("lz4", LZ4_versionString());
  e.emplace_back("zlib", zlibVersion());
  e.emplace_back("xxhash", xxhash_version());
  e.emplace_back("cpp-httplib", CPPHTTPLIB_VERSION);
  e.emplace_back("cli11", CLI11_VERSION);
  return e;
}

}  // namespace

nlohmann::json version_info() {
  nlohmann::json out = nlohmann::json::object();
  for (auto& [name, version] : entries()) out[name] = version;
  return out;
}

std::string version_text() {
  std::string out;
  for (const auto& [name, version] : entries()) {
    out += fmt::format("{} {}\n", name == "version" ? std::string("sluice") : name, version);
  }
  return out;
}

}  // namespace sluice::app
