// Version information: sluice's own version and build, and the versions of the libraries linked in.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::app {

// {"version", "build_type", "compiler", "librdkafka", "spdlog", ...}; library versions are the ones
// actually loaded at run time where the library can tell (librdkafka, zstd, lz4, zlib, xxhash).
nlohmann::json version_info();

// The `sluice version` output: one "name version" per line, sluice first.
std::string version_text();

}  // namespace sluice::app
