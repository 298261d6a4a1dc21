// Store: something that speaks ClickHouse SQL and takes inserts (a ClickHouse server, embedded chDB).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/flow_batch.hpp"

namespace sluice::sinks {

// What a failed call means for the caller: retry later, or never (dead letters).
class StoreError : public std::runtime_error {
 public:
  StoreError(const std::string& what, bool retryable) : std::runtime_error(what), retryable_(retryable) {}
  bool retryable() const { return retryable_; }

 private:
  bool retryable_;
};

// One insert: a whole block in one format, into one table.
struct InsertRequest {
  std::string table;         // unqualified; the store's database applies
  std::string format;        // "Native"
  std::string body;          // encoded rows
  std::uint64_t rows = 0;
  std::string dedup_token;   // insert_deduplication_token when non-empty and supported
};

// An insert refused for a missing table or database (UNKNOWN_TABLE 60, UNKNOWN_DATABASE 81) says nothing
// about its rows: a server shutting down detaches its databases, a migration re-creates a table, an
// operator fixes a schema. Stores report it as retryable for inserts, so that the data waits in Kafka
// rather than in dead letters; for a statement (DDL, a query) it stays permanent.
inline bool clickhouse_insert_destination_missing(int code) { return code == 60 || code == 81; }

struct QueryResult {
  std::string data;               // the result in the requested format
  std::uint64_t rows_read = 0;    // when the store reports it
  std::uint64_t bytes_read = 0;
};

// Thread-safe: sinks call insert() from several threads at once.
class Store {
 public:
  virtual ~Store() = default;
  // Runs one statement (DDL or query). Throws StoreError.
  virtual QueryResult query(std::string_view sql, std::string_view format = "TabSeparated") = 0;
  // Throws StoreError; returns only once the rows are durably stored.
  virtual void insert(const InsertRequest& request) = 0;
  // The database sluice's tables live in.
  virtual const std::string& database() const = 0;
  // The SQL dialect the server speaks (decided from SELECT version() when connecting).
  virtual ClickHouseDialect dialect() const = 0;
  // Whether insert_deduplication_token is honoured (ClickHouse >= 22.2).
  virtual bool supports_dedup_token() const = 0;
  // Whether the store runs inside this process (embedded chDB): its work is on this process's cores,
  // so work that spares it (sorting a block by the table's key) is worth doing here.
  virtual bool embedded() const { return false; }
  // Human-readable name for logs and status ("clickhouse http://127.0.0.1:8123", "chdb ./data/chdb").
  virtual std::string describe() const = 0;
};

}  // namespace sluice::sinks
