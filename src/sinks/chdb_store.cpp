#include "sinks/chdb_store.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>

namespace sluice::sinks {

namespace fs = std::filesystem;

// The C API of libchdb (chDB >= 26.3), declared here because no header ships with the library.
// Handles are opaque: a connection is a pointer to a pointer-sized handle, results are opaque.
namespace {
struct ChdbConnectionHandle;
using chdb_connection = ChdbConnectionHandle*;
struct ChdbResult;

struct ChdbApi {
  chdb_connection* (*connect)(int argc, char** argv) = nullptr;
  void (*close_conn)(chdb_connection* conn) = nullptr;
  ChdbResult* (*query_n)(chdb_connection conn, const char* query, std::size_t query_len, const char* format,
                         std::size_t format_len) = nullptr;
  const char* (*result_buffer)(ChdbResult* result) = nullptr;
  std::size_t (*result_length)(ChdbResult* result) = nullptr;
  const char* (*result_error)(ChdbResult* result) = nullptr;
  // Rows and bytes read from storage (chdb_result_rows_read counts the rows of the result set).
  std::uint64_t (*result_storage_rows_read)(ChdbResult* result) = nullptr;
  std::uint64_t (*result_storage_bytes_read)(ChdbResult* result) = nullptr;
  void (*destroy_query_result)(ChdbResult* result) = nullptr;
  void (*set_signal_handlers_enabled)(int enabled) = nullptr;
};

constexpr const char* kSystemLibrary = "/usr/local/lib/libchdb.so";
constexpr const char* kSetupLibrary = "/opt/sluice-deps/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so";

// The dispositions of the standard signals, so that whatever chDB changes while connecting is put
// back: sluice owns SIGTERM/SIGINT (graceful drain) and crash handling.
class SignalDispositions {
 public:
  SignalDispositions() {
    for (int s = 1; s < kCount; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      sigaction(s, nullptr, &saved_[s]);
    }
  }
  void restore() const {
    for (int s = 1; s < kCount; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      struct sigaction now {};
      sigaction(s, nullptr, &now);
      if (now.sa_handler != saved_[s].sa_handler) {
        spdlog::debug("chdb: restoring the process's handler for signal {} that chDB replaced", s);
      }
      sigaction(s, &saved_[s], nullptr);
    }
  }

 private:
  static constexpr int kCount = 32;
  std::array<struct sigaction, kCount> saved_{};
};

std::string quote_identifier(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out += '\\';
    out += c;
  }
  out += '`';
  return out;
}

std::string quote_string(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

bool valid_format_name(std::string_view f) {
  return !f.empty() && std::all_of(f.begin(), f.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

namespace chdb_detail {

struct CallResult {
  bool ok = false;
  std::string data;   // result, or the error message
  std::uint64_t rows_read = 0, bytes_read = 0;
};

// One chDB connection on one path. Calls are serialized here: the engine runs one statement per
// connection at a time, and SET-style session state must not leak between callers.
class Connection {
 public:
  Connection(const ChdbApi& api, chdb_connection* handle, std::string path)
      : api_(api), handle_(handle), path_(std::move(path)), spool_dir_(path_ + "/insert-spool") {}
  ~Connection() {
    api_.close_conn(handle_);
    for (const auto& f : free_spool_files_) ::unlink(f.c_str());
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  CallResult run(std::string_view sql, std::string_view format) {
    std::lock_guard lock(mutex_);
    CallResult out;
    ChdbResult* r = api_.query_n(*handle_, sql.data(), sql.size(), format.data(), format.size());
    if (r == nullptr) {
      out.data = "chDB returned no result";
      return out;
    }
    std::unique_ptr<ChdbResult, void (*)(ChdbResult*)> guard(r, api_.destroy_query_result);
    if (const char* e = api_.result_error(r); e != nullptr && *e != '\0') {
      out.data = e;  // statistics of an error result are not meaningful
      return out;
    }
    out.ok = true;
    if (const char* buf = api_.result_buffer(r); buf != nullptr) out.data.assign(buf, api_.result_length(r));
    out.rows_read = api_.result_storage_rows_read(r);
    out.bytes_read = api_.result_storage_bytes_read(r);
    return out;
  }

  const std::string& path() const { return path_; }
  const std::string& spool_dir() const { return spool_dir_; }
  // A spool file for one insert's body, reused across inserts: overwriting pages the kernel already
  // holds costs a memcpy, while a fresh file takes and charges a new page for every 4 KiB written.
  // Names stay unique across reopenings, so that no cache keyed by file name outlives a connection.
  std::string acquire_spool_file() {
    {
      std::lock_guard lock(spool_mutex_);
      if (!free_spool_files_.empty()) {
        auto path = std::move(free_spool_files_.back());
        free_spool_files_.pop_back();
        return path;
      }
    }
    return spool_dir_ + "/" + nonce_ + "-" + std::to_string(spool_seq_.fetch_add(1)) + ".block";
  }
  void release_spool_file(std::string path) {
    std::lock_guard lock(spool_mutex_);
    free_spool_files_.push_back(std::move(path));
  }

 private:
  const ChdbApi& api_;
  chdb_connection* handle_;
  std::string path_;
  std::string spool_dir_;
  std::mutex mutex_;
  std::atomic<std::uint64_t> spool_seq_{0};
  std::mutex spool_mutex_;
  std::vector<std::string> free_spool_files_;  // as many as inserts ever ran at once
  std::string nonce_ = std::to_string(::getpid()) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
};

// The process-wide chDB engine: the library (loaded once and never unloaded: its threads and static
// state outlive any connection) and the open connection per path. This is process-wide state
// because chDB's own state is.
class Engine {
 public:
  static Engine& instance() {
    static Engine engine;
    return engine;
  }

  Connection& acquire(const ChdbConfig& config, const std::string& path) {
    std::lock_guard lock(mutex_);
    const ChdbApi& api = load(config.library);
    if (auto it = open_.find(path); it != open_.end()) {
      ++it->second.users;
      return *it->second.conn;
    }
    if (!open_.empty()) {
      throw std::runtime_error("chdb: cannot open '" + path + "': this process already has chDB open on '" +
                               open_.begin()->first +
                               "', and chDB allows one data path per process; use the same path or close "
                               "the other store first");
    }
    std::error_code ec;
    fs::create_directories(path + "/insert-spool", ec);
    if (ec) throw std::runtime_error("chdb: cannot create data directory '" + path + "': " + ec.message());
    // Bodies left by a crash mid-insert: their batches were never acknowledged and will be replayed.
    for (const auto& entry : fs::directory_iterator(path + "/insert-spool", ec)) fs::remove(entry.path(), ec);

    std::string arg0 = "clickhouse";
    std::string arg1 = "--path=" + path;
    std::array<char*, 2> argv{arg0.data(), arg1.data()};
    const SignalDispositions host_signals;
    // Off: chDB's crash handlers would sleep minutes before dying and replace the process's own.
    // Turning them off resets some signals to SIG_DFL, hence the restore below.
    api.set_signal_handlers_enabled(0);
    chdb_connection* handle = api.connect(static_cast<int>(argv.size()), argv.data());
    host_signals.restore();
    if (handle == nullptr || *handle == nullptr) {
      throw std::runtime_error("chdb: the engine could not open '" + path +
                               "' (is another process using this data directory? check its permissions "
                               "and free space)");
    }
    auto& slot = open_[path];
    slot.conn = std::make_unique<Connection>(api, handle, path);
    slot.users = 1;
    return *slot.conn;
  }

  void release(Connection& conn) {
    std::lock_guard lock(mutex_);
    auto it = open_.find(conn.path());
    if (it == open_.end() || --it->second.users > 0) return;
    const std::string path = it->first;
    open_.erase(it);  // closes the connection
    spdlog::info("chdb: closed {}", path);
  }

  const std::string& library_path() const { return library_path_; }

 private:
  Engine() = default;

  const ChdbApi& load(const std::string& configured) {
    if (handle_ != nullptr) {
      if (!configured.empty()) {
        std::error_code ec;
        if (!fs::exists(configured, ec)) {
          throw std::runtime_error("chdb: libchdb.so not found (tried " + configured +
                                   "); run scripts/setup.sh to install chDB, or fix the configured library path");
        }
        if (!fs::equivalent(configured, library_path_, ec)) {
          throw std::runtime_error("chdb: library '" + configured + "' requested, but '" + library_path_ +
                                   "' is already loaded in this process; configure the same library everywhere");
        }
      }
      return api_;
    }
    const auto candidates = ChdbStore::library_candidates(configured);
    std::string tried;
    for (const auto& c : candidates) {
      if (!tried.empty()) tried += ", ";
      tried += c;
      if (!fs::exists(c)) continue;
      void* h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) {
        const char* err = ::dlerror();
        throw std::runtime_error("chdb: cannot load '" + c + "': " + (err ? err : "unknown error") +
                                 "; run scripts/setup.sh to reinstall chDB");
      }
      bind(h, c);
      handle_ = h;
      library_path_ = c;
      spdlog::info("chdb: loaded {}", c);
      return api_;
    }
    throw std::runtime_error("chdb: libchdb.so not found (tried " + tried +
                             "); run scripts/setup.sh to install chDB, or set SLUICE_CHDB_LIBRARY to its path");
  }

  template <typename F>
  static void resolve(void* h, const std::string& lib, const char* name, F& fn) {
    fn = reinterpret_cast<F>(::dlsym(h, name));
    if (fn == nullptr) {
      throw std::runtime_error("chdb: '" + lib + "' does not export " + name +
                               " (chDB 26.3 or newer is needed); run scripts/setup.sh");
    }
  }

  void bind(void* h, const std::string& lib) {
    resolve(h, lib, "chdb_connect", api_.connect);
    resolve(h, lib, "chdb_close_conn", api_.close_conn);
    resolve(h, lib, "chdb_query_n", api_.query_n);
    resolve(h, lib, "chdb_result_buffer", api_.result_buffer);
    resolve(h, lib, "chdb_result_length", api_.result_length);
    resolve(h, lib, "chdb_result_error", api_.result_error);
    resolve(h, lib, "chdb_result_storage_rows_read", api_.result_storage_rows_read);
    resolve(h, lib, "chdb_result_storage_bytes_read", api_.result_storage_bytes_read);
    resolve(h, lib, "chdb_destroy_query_result", api_.destroy_query_result);
    resolve(h, lib, "chdb_set_signal_handlers_enabled", api_.set_signal_handlers_enabled);
  }

  struct Open {
    std::unique_ptr<Connection> conn;
    int users = 0;
  };
  std::mutex mutex_;
  void* handle_ = nullptr;
  std::string library_path_;
  ChdbApi api_;
  std::map<std::string, Open> open_;
};

}  // namespace chdb_detail

namespace {

// The body of one insert, written where the engine reads it with file(). The file goes back to the
// connection's pool when done; one whose write failed is removed instead.
class SpoolFile {
 public:
  explicit SpoolFile(chdb_detail::Connection& conn) : conn_(conn), path_(conn.acquire_spool_file()) {}
  ~SpoolFile() {
    if (failed_) {
      ::unlink(path_.c_str());
    } else {
      conn_.release_spool_file(std::move(path_));
    }
  }
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  // Overwrites the file in place and cuts it to the body's size. Returns an error text, empty on success.
  std::string write(std::string_view body) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail();
    std::size_t done = 0;
    while (done < body.size()) {
      const ssize_t n = ::pwrite(fd, body.data() + done, body.size() - done, static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        const auto err = fail();
        ::close(fd);
        return err;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::ftruncate(fd, static_cast<off_t>(body.size())) != 0) {
      const auto err = fail();
      ::close(fd);
      return err;
    }
    if (::close(fd) != 0) return fail();
    return {};
  }
  const std::string& path() const { return path_; }

 private:
  std::string fail() {
    failed_ = true;
    return std::strerror(errno);
  }
  chdb_detail::Connection& conn_;
  std::string path_;
  bool failed_ = false;
};

std::string absolute_path(const std::string& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw std::runtime_error("chdb: cannot create data directory '" + p + "': " + ec.message());
  auto abs = fs::weakly_canonical(fs::absolute(p), ec);
  if (ec) throw std::runtime_error("chdb: cannot resolve data directory '" + p + "': " + ec.message());
  return abs.string();
}

}  // namespace

std::vector<std::string> ChdbStore::library_candidates(const std::string& configured) {
  if (!configured.empty()) return {configured};
  if (const char* env = std::getenv("SLUICE_CHDB_LIBRARY"); env != nullptr && *env != '\0') return {env};
  return {kSystemLibrary, kSetupLibrary};
}

ChdbStore::ChdbStore(ChdbConfig config, MetricsRegistry& metrics)
    : config_(std::move(config)),
      queries_(metrics.counter("chdb_queries_total", "Statements run on the embedded store",
                               {{"path", config_.path}})),
      inserts_(metrics.counter("chdb_inserts_total", "Blocks inserted into the embedded store",
                               {{"path", config_.path}})),
      insert_rows_(metrics.counter("chdb_insert_rows_total", "Rows sent to the embedded store (before deduplication)",
                                   {{"path", config_.path}})),
      insert_bytes_(metrics.counter("chdb_insert_bytes_total", "Encoded bytes inserted into the embedded store",
                                    {{"path", config_.path}})),
      errors_retryable_(metrics.counter("chdb_errors_total", "Failed statements on the embedded store",
                                        {{"path", config_.path}, {"retryable", "true"}})),
      errors_permanent_(metrics.counter("chdb_errors_total", "Failed statements on the embedded store",
                                        {{"path", config_.path}, {"retryable", "false"}})) {
  if (config_.path.empty()) throw std::runtime_error("chdb: the data directory (path) must be set");
  if (config_.database.empty()) throw std::runtime_error("chdb: the database name must be set");
  const std::string path = absolute_path(config_.path);
  auto& engine = chdb_detail::Engine::instance();
  conn_ = &engine.acquire(config_, path);
  try {
    // Akvorado's schema keeps ExporterAddress as LowCardinality(IPv6), which ClickHouse creates only
    // with this setting; the session is the store's own, so it is set once here.
    query("SET allow_suspicious_low_cardinality_types = 1");
    query("CREATE DATABASE IF NOT EXISTS " + quote_identifier(config_.database));
    version_ = trim(query("SELECT version()").data);
  } catch (const StoreError& e) {
    engine.release(*conn_);
    throw std::runtime_error(std::string("chdb: opening '") + path + "' failed: " + e.what());
  } catch (...) {
    engine.release(*conn_);
    throw;
  }
  int major = 0, minor = 0;
  const char* p = version_.data();
  const char* end = p + version_.size();
  auto r = std::from_chars(p, end, major);
  if (r.ptr < end && *r.ptr == '.') std::from_chars(r.ptr + 1, end, minor);
  // IPv6 and LowCardinality columns exist since 19.x; insert_deduplication_token since 22.2.
  dialect_ = major >= 20 ? ClickHouseDialect::modern : ClickHouseDialect::legacy;
  dedup_token_ = major > 22 || (major == 22 && minor >= 2);
  spdlog::info("chdb: opened {} (ClickHouse {}, database {}, library {})", path, version_, config_.database,
               engine.library_path());
}

ChdbStore::~ChdbStore() {
  if (conn_ != nullptr) chdb_detail::Engine::instance().release(*conn_);
}

QueryResult ChdbStore::query(std::string_view sql, std::string_view format) {
  queries_.inc();
  auto r = conn_->run(sql, format);
  if (!r.ok) {
    const bool retry = clickhouse_error_retryable(r.data);
    (retry ? errors_retryable_ : errors_permanent_).inc();
    throw StoreError("chdb query failed: " + trim(std::move(r.data)), retry);
  }
  return QueryResult{std::move(r.data), r.rows_read, r.bytes_read};
}

void ChdbStore::insert(const InsertRequest& request) {
  const std::string target = quote_identifier(config_.database) + "." + quote_identifier(request.table);
  if (request.table.empty() || !valid_format_name(request.format)) {
    errors_permanent_.inc();
    throw StoreError("chdb insert into " + target + ": invalid request (table '" + request.table + "', format '" +
                         request.format + "')",
                     false);
  }
  if (request.body.empty()) return;

  SpoolFile file(*conn_);
  if (auto err = file.write(request.body); !err.empty()) {
    errors_retryable_.inc();
    throw StoreError("chdb insert into " + target + ": cannot write the block to " + file.path() + ": " + err +
                         " (check free space in the data directory)",
                     true);
  }
  // Synchronous (chDB turns async_insert on by default), so the rows are in parts on return. The
  // file's columns are matched by name against the table's, as `INSERT ... FORMAT` does. With a
  // token, each MergeTree under the table's views (non_replicated_deduplication_window > 0) drops a
  // replayed block, and force_enable makes the engine fail rather than silently skip dedup. Without
  // one, dedup by content is off too, lest two equal batches be taken for a replay.
  // The spool file is rewritten in place by the next insert: it is read with pread, never mapped (a
  // mapping cached by the engine would outlive the body), and no schema is cached by its name.
  std::string settings = "async_insert=0, use_structure_from_insertion_table_in_table_functions=1, "
                         "storage_file_read_method='pread', schema_inference_use_cache_for_file=0, ";
  if (!request.dedup_token.empty()) {
    settings += "deduplicate_insert='enable', deduplicate_insert_select='force_enable', insert_deduplicate=1, "
                "deduplicate_blocks_in_dependent_materialized_views=1, insert_deduplication_token=" +
                quote_string(request.dedup_token);
  } else {
    settings += "deduplicate_insert='disable', deduplicate_insert_select='disable', insert_deduplicate=0";
  }
  const std::string sql = "INSERT INTO " + target + " SETTINGS " + settings + " SELECT * FROM file(" +
                          quote_string(file.path()) + ", " + quote_string(request.format) + ")";
  queries_.inc();
  auto r = conn_->run(sql, "TabSeparated");
  if (!r.ok) {
    const auto code = clickhouse_error_code(r.data);  // none: the engine failed, not the statement
    const bool retry = !code || clickhouse_error_retryable(*code) || clickhouse_insert_destination_missing(*code);
    (retry ? errors_retryable_ : errors_permanent_).inc();
    throw StoreError("chdb insert of " + std::to_string(request.rows) + " rows into " + target +
                         " failed: " + trim(std::move(r.data)),
                     retry);
  }
  inserts_.inc();
  insert_rows_.inc(request.rows);
  insert_bytes_.inc(request.body.size());
}

std::optional<int> clickhouse_error_code(std::string_view message) {
  constexpr std::string_view kTag = "Code: ";
  const auto at = message.find(kTag);
  if (at == std::string_view::npos) return std::nullopt;
  int code = 0;
  const char* begin = message.data() + at + kTag.size();
  const auto [ptr, ec] = std::from_chars(begin, message.data() + message.size(), code);
  if (ec != std::errc{} || ptr == begin) return std::nullopt;
  return code;
}

bool clickhouse_error_retryable(int code) {
  switch (code) {
    case 74:   // CANNOT_READ_FROM_FILE_DESCRIPTOR
    case 75:   // CANNOT_WRITE_TO_FILE_DESCRIPTOR
    case 76:   // CANNOT_OPEN_FILE (also: too many open files)
    case 77:   // CANNOT_CLOSE_FILE
    case 159:  // TIMEOUT_EXCEEDED
    case 160:  // TOO_SLOW
    case 173:  // CANNOT_ALLOCATE_MEMORY
    case 202:  // TOO_MANY_SIMULTANEOUS_QUERIES
    case 203:  // NO_FREE_CONNECTION
    case 204:  // CANNOT_FSYNC
    case 209:  // SOCKET_TIMEOUT
    case 210:  // NETWORK_ERROR
    case 236:  // ABORTED
    case 241:  // MEMORY_LIMIT_EXCEEDED
    case 242:  // TABLE_IS_READ_ONLY
    case 243:  // NOT_ENOUGH_SPACE
    case 252:  // TOO_MANY_PARTS
    case 294:  // CANNOT_WRITE_TO_FILE
    case 319:  // UNKNOWN_STATUS_OF_INSERT
    case 394:  // QUERY_WAS_CANCELLED
    case 425:  // SYSTEM_ERROR
    case 439:  // CANNOT_SCHEDULE_TASK
    case 473:  // DEADLOCK_AVOIDED
    case 586:  // CANNOT_CREATE_FILE
    case 641:  // CANNOT_APPEND_TO_FILE
    case 677:  // THREAD_WAS_CANCELED
    case 735:  // QUERY_WAS_CANCELLED_BY_CLIENT
    case 999:  // KEEPER_EXCEPTION
      return true;
    default:
      return false;
  }
}

bool clickhouse_error_retryable(std::string_view message) {
  const auto code = clickhouse_error_code(message);
  return code ? clickhouse_error_retryable(*code) : true;
}

}  // namespace sluice::sinks
