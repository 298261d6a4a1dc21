// Enrichment test support: MMDB files built with MaxMind::DB::Writer (Perl) and a fixed InterfaceDirectory.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fixtures/process.hpp"
#include "transforms/metadata.hpp"

namespace sluice::testing {

// One network of a test database: either an AS number or a country code (or both).
struct MmdbNetwork {
  std::string prefix;  // "192.0.2.0/24", "2001:db8::/32"
  std::uint32_t asn = 0;
  std::string country;  // ISO code, "" for none
};

// Writes an MMDB database to `path` with the real MaxMind writer. It is written next to `path` and
// renamed over it, the way databases are replaced in production.
inline void write_mmdb(const TempDir& dir, const std::string& path, const std::vector<MmdbNetwork>& networks) {
  std::string script = R"PERL(
use strict; use warnings;
use MaxMind::DB::Writer::Tree;
my %types = (autonomous_system_number => 'uint32', country => 'map', iso_code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6, record_size => 28, database_type => 'sluice-test', languages => ['en'],
  description => { en => 'sluice test database' }, remove_reserved_networks => 0,
  map_key_type_callback => sub { $types{ $_[0] } });
my ($out, @nets) = @ARGV;
while (@nets) {
  my ($prefix, $asn, $country) = splice(@nets, 0, 3);
  my %data;
  $data{autonomous_system_number} = $asn + 0 if $asn;
  $data{country} = { iso_code => $country } if $country ne '-';
  $tree->insert_network($prefix, \%data);
}
open my $fh, '>:raw', "$out.tmp" or die "cannot write $out.tmp: $!";
$tree->write_tree($fh);
close $fh or die;
rename "$out.tmp", $out or die "rename: $!";
)PERL";
  const auto script_path = dir / "write_mmdb.pl";
  write_file(script_path, script);
  std::vector<std::string> argv{"/usr/bin/perl", script_path, path};
  for (const auto& n : networks) {
    argv.push_back(n.prefix);
    argv.push_back(std::to_string(n.asn));
    argv.push_back(n.country.empty() ? "-" : n.country);
  }
  auto r = run_command(argv);
  if (r.exit_code != 0) throw std::runtime_error("writing the MMDB test database failed: " + r.err);
}

// A directory answering from fixed tables, the way the static-configuration provider does.
class FixedDirectory final : public transforms::InterfaceDirectory {
 public:
  void add_exporter(const Ip6& a, const std::string& name) {
    std::lock_guard lock(mutex_);
    exporters_[a] = std::make_shared<const transforms::ExporterInfo>(transforms::ExporterInfo{name});
  }
  void add_interface(const Ip6& a, std::uint32_t index, const std::string& name, const std::string& description,
                     std::uint32_t speed) {
    std::lock_guard lock(mutex_);
    interfaces_[{a, index}] =
        std::make_shared<const transforms::InterfaceInfo>(transforms::InterfaceInfo{name, description, speed});
  }
  std::shared_ptr<const transforms::ExporterInfo> exporter(const Ip6& a) override {
    std::lock_guard lock(mutex_);
    ++exporter_queries;
    auto it = exporters_.find(a);
    return it == exporters_.end() ? nullptr : it->second;
  }
  std::shared_ptr<const transforms::InterfaceInfo> interface(const Ip6& a, std::uint32_t index) override {
    std::lock_guard lock(mutex_);
    ++interface_queries;
    auto it = interfaces_.find({a, index});
    return it == interfaces_.end() ? nullptr : it->second;
  }
  std::uint64_t exporter_queries = 0, interface_queries = 0;

 private:
  std::mutex mutex_;
  std::map<Ip6, std::shared_ptr<const transforms::ExporterInfo>> exporters_;
  std::map<std::pair<Ip6, std::uint32_t>, std::shared_ptr<const transforms::InterfaceInfo>> interfaces_;
};

}  // namespace sluice::testing
