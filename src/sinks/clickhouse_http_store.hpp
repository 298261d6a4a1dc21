// ClickHouseHttpStore: a Store on a ClickHouse server's HTTP interface, with a keep-alive connection pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

struct ClickHouseHttpConfig {
  std::string url;  // http://host:port or https://host:port
  std::string database = "sluice";
  std::string user = "default";
  std::string password;
  enum class Compression { none, lz4, zstd } compression = Compression::lz4;
  int connect_timeout_ms = 2000;
  int request_timeout_ms = 60000;
  int pool_size = 4;
};

// What a failed answer means, from the server's `Code: N` (or the transport error).
// Exposed for tests and for other stores that see the same codes.
bool clickhouse_code_is_retryable(int code);
// Parses "Code: N" from an exception text; nullopt when absent.
std::optional<int> parse_clickhouse_error_code(std::string_view body);

struct ClickHouseVersion {
  int major = 0, minor = 0, patch = 0;
  bool at_least(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
};
std::optional<ClickHouseVersion> parse_clickhouse_version(std::string_view text);

class ClickHouseHttpStore final : public Store {
 public:
  // Connects, reads the server version, decides the dialect and creates the database.
  // Throws StoreError(retryable=true) when the server cannot be reached (the caller retries),
  // StoreError(retryable=false) for a malformed URL; other failures are classified as for inserts.
  ClickHouseHttpStore(ClickHouseHttpConfig config, MetricsRegistry& metrics);
  ~ClickHouseHttpStore() override;

  QueryResult query(std::string_view sql, std::string_view format = "TabSeparated") override;
  void insert(const InsertRequest& request) override;
  const std::string& database() const override { return config_.database; }
  ClickHouseDialect dialect() const override { return dialect_; }
  bool supports_dedup_token() const override { return dedup_token_; }
  std::string describe() const override { return "clickhouse " + base_url_; }

  const std::string& server_version() const { return version_text_; }

 private:
  struct Connection;
  class Lease;
  struct Response {
    int status = 0;
    std::string body;
    std::string summary;  // X-ClickHouse-Summary, when the server sends it
  };

  // Sends one POST on a pooled connection; throws StoreError on transport errors only.
  Response send(const std::string& path_and_query, std::string_view body, std::string_view what);
  // The same, and throws StoreError on a non-200 answer too.
  Response post(const std::string& path_and_query, std::string_view body, std::string_view what);
  std::string query_path(std::string_view extra_params, bool with_database) const;
  [[noreturn]] void fail_transport(std::string_view what, const std::string& error);
  // `insert`: a missing table or database is retryable (clickhouse_insert_destination_missing).
  [[noreturn]] void fail_status(std::string_view what, int status, std::string_view body, bool insert = false);
  void detect_server();

  std::unique_ptr<Connection> checkout();
  void give_back(std::unique_ptr<Connection> c, bool healthy);

  ClickHouseHttpConfig config_;
  std::string base_url_;  // scheme://host:port, no trailing slash
  std::string version_text_;
  ClickHouseDialect dialect_ = ClickHouseDialect::modern;
  bool dedup_token_ = false;

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // connections checked out or idle

  Counter& inserts_;
  Counter& insert_rows_;
  Counter& insert_bytes_;
  Counter& wire_bytes_;
  Counter& queries_;
  Counter& retryable_errors_;
  Counter& permanent_errors_;
  Counter& connections_discarded_;
  Gauge& connections_open_;
};

}  // namespace sluice::sinks
