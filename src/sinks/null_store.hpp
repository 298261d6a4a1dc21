// NullStore: a store that accepts and discards every insert; measures the pipeline without a database.
#pragma once

#include <atomic>

#include "sinks/store.hpp"

namespace sluice::sinks {

class NullStore final : public Store {
 public:
  QueryResult query(std::string_view, std::string_view) override { return {}; }
  void insert(const InsertRequest& r) override { rows_.fetch_add(r.rows, std::memory_order_relaxed); }
  const std::string& database() const override { return database_; }
  ClickHouseDialect dialect() const override { return ClickHouseDialect::modern; }
  bool supports_dedup_token() const override { return true; }
  std::string describe() const override { return "null"; }
  std::uint64_t rows() const { return rows_.load(std::memory_order_relaxed); }

 private:
  std::string database_ = "sluice";
  std::atomic<std::uint64_t> rows_{0};
};

}  // namespace sluice::sinks
