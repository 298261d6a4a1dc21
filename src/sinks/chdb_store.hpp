// ChdbStore: the embedded ClickHouse store, running chDB's libchdb.so (dlopen'd on first use) in-process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

struct ChdbConfig {
  std::string path;                // data directory (created if missing)
  std::string library;             // libchdb.so; empty: $SLUICE_CHDB_LIBRARY, then the standard places
  std::string database = "sluice";
};

namespace chdb_detail {
class Connection;
}

// chDB keeps one engine per process, so stores are views on a process-wide connection per path:
// several stores on the same path share it; opening a different path while one is open throws
// (chDB refuses it); once every store on a path is gone, another path may be opened.
//
// Thread-safe. Calls on one path are serialized: chDB runs one statement at a time per connection
// anyway (two threads on one connection take twice as long as one).
//
// Inserts write the body to a file in <path>/insert-spool and run `INSERT INTO t SELECT * FROM
// file(...)`: chDB cuts inline INSERT data at the first blank line ("\n\n"), which binary Native
// bodies contain, and reading the file is faster than `FROM INFILE`. The files are kept and rewritten
// in place (one per insert running at once), which spares the kernel a fresh page per 4 KiB.
class ChdbStore final : public Store {
 public:
  // Loads the library and connects. Throws std::runtime_error when the library is missing or the
  // engine refuses the path.
  ChdbStore(ChdbConfig config, MetricsRegistry& metrics);
  ~ChdbStore() override;
  ChdbStore(const ChdbStore&) = delete;
  ChdbStore& operator=(const ChdbStore&) = delete;

  QueryResult query(std::string_view sql, std::string_view format = "TabSeparated") override;
  void insert(const InsertRequest& request) override;
  const std::string& database() const override { return config_.database; }
  ClickHouseDialect dialect() const override { return dialect_; }
  bool supports_dedup_token() const override { return dedup_token_; }
  bool embedded() const override { return true; }
  std::string describe() const override { return "chdb " + config_.path; }

  // `SELECT version()` of the embedded engine, e.g. "26.5.1.1".
  const std::string& server_version() const { return version_; }
  // Where the library is looked for, in order, given the configured path.
  static std::vector<std::string> library_candidates(const std::string& configured);

 private:
  ChdbConfig config_;
  chdb_detail::Connection* conn_ = nullptr;  // owned by the process-wide registry, released in ~ChdbStore
  std::string version_;
  ClickHouseDialect dialect_ = ClickHouseDialect::modern;
  bool dedup_token_ = true;
  Counter& queries_;
  Counter& inserts_;
  Counter& insert_rows_;
  Counter& insert_bytes_;
  Counter& errors_retryable_;
  Counter& errors_permanent_;
};

// The N of "Code: N." in a ClickHouse error message, if there is one.
std::optional<int> clickhouse_error_code(std::string_view message);
// Whether an error with this ClickHouse code may succeed when retried (memory, parts, timeouts,
// disk, cancellation). Everything else is the statement or the data being wrong.
bool clickhouse_error_retryable(int code);
// Message without a code (the engine itself failed, not the statement): retryable.
bool clickhouse_error_retryable(std::string_view message);

}  // namespace sluice::sinks
