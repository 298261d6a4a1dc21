#include "sinks/clickhouse_http_store.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

#include "sinks/clickhouse_compression.hpp"

namespace sluice::sinks {
namespace {

// Servers close idle keep-alive connections (keep_alive_timeout, 3 s by default); a connection
// idle for longer than this is reopened rather than risk writing an insert into a closed socket.
constexpr auto kIdleReuseLimit = std::chrono::milliseconds(2000);
constexpr std::size_t kMaxMessage = 2000;

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 16);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "`";
  for (const char c : name) {
    if (c == '`' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::string trimmed(std::string_view s, std::size_t max) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() > max) return std::string(s.substr(0, max)) + "...";
  return std::string(s);
}

// scheme://host[:port][/] → scheme://host:port. Anything else is a configuration error.
std::string normalize_url(const std::string& url) {
  const auto bad = [&](const std::string& why) {
    return StoreError("clickhouse url '" + url + "': " + why + " (expected http://host:port)", false);
  };
  const auto sep = url.find("://");
  if (sep == std::string::npos) throw bad("no scheme");
  const auto scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") throw bad("scheme must be http or https");
  std::string rest = url.substr(sep + 3);
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    if (slash != rest.size() - 1) throw bad("paths are not supported");
    rest.resize(slash);
  }
  if (rest.empty()) throw bad("no host");
  const auto close = rest.rfind(']');
  const auto colon = rest.rfind(':');
  const bool has_port = colon != std::string::npos && (close == std::string::npos || colon > close);
  if (has_port) {
    int port = 0;
    const auto digits = std::string_view(rest).substr(colon + 1);
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || p != digits.data() + digits.size() || port <= 0 || port > 65535) throw bad("bad port");
    return scheme + "://" + rest;
  }
  return scheme + "://" + rest + (scheme == "http" ? ":8123" : ":8443");
}

std::uint64_t summary_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  }
  return 0;
}

}  // namespace

bool clickhouse_code_is_retryable(int code) {
  switch (code) {
    case 159:  // TIMEOUT_EXCEEDED
    case 160:  // TOO_SLOW
    case 164:  // READONLY: the server (or user) is read-only for now
    case 173:  // CANNOT_ALLOCATE_MEMORY
    case 192:  // UNKNOWN_USER — credentials are configuration, not a property of the rows:
    case 193:  // WRONG_PASSWORD   dead-lettering data while an operator fixes them would lose it
    case 194:  // REQUIRED_PASSWORD
    case 195:  // IP_ADDRESS_NOT_ALLOWED
    case 201:  // QUOTA_EXPIRED
    case 202:  // TOO_MANY_SIMULTANEOUS_QUERIES
    case 203:  // NO_FREE_CONNECTION
    case 209:  // SOCKET_TIMEOUT
    case 210:  // NETWORK_ERROR
    case 225:  // NO_ZOOKEEPER
    case 236:  // ABORTED
    case 241:  // MEMORY_LIMIT_EXCEEDED
    case 242:  // TABLE_IS_READ_ONLY (replica lost its coordination session)
    case 243:  // NOT_ENOUGH_SPACE
    case 252:  // TOO_MANY_PARTS
    case 285:  // TOO_FEW_LIVE_REPLICAS
    case 286:  // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    case 319:  // UNKNOWN_STATUS_OF_INSERT
    case 373:  // SESSION_IS_LOCKED
    case 394:  // QUERY_WAS_CANCELLED
    case 425:  // SYSTEM_ERROR
    case 439:  // CANNOT_SCHEDULE_TASK
    case 497:  // ACCESS_DENIED
    case 516:  // AUTHENTICATION_FAILED
    case 999:  // KEEPER_EXCEPTION
    case 1000:  // POCO_EXCEPTION: mostly network and I/O trouble inside the server
      return true;
    default:
      // Unknown table/database (60, 81), syntax (62), type and parse errors (27, 53, 70, 117, ...)
      // will fail the same way on every retry.
      return false;
  }
}

std::optional<int> parse_clickhouse_error_code(std::string_view body) {
  const auto at = body.find("Code: ");
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = body.data() + at + 6;
  const char* end = body.data() + body.size();
  int code = 0;
  const auto [p, ec] = std::from_chars(begin, end, code);
  if (ec != std::errc() || p == begin) return std::nullopt;
  return code;
}

std::optional<ClickHouseVersion> parse_clickhouse_version(std::string_view text) {
  ClickHouseVersion v;
  int* parts[] = {&v.major, &v.minor, &v.patch};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 3; ++i) {
    const auto [next, ec] = std::from_chars(p, end, *parts[i]);
    if (ec != std::errc()) return i >= 2 ? std::optional(v) : std::nullopt;
    p = next;
    if (p == end || *p != '.') return i >= 1 ? std::optional(v) : std::nullopt;
    ++p;
  }
  return v;
}

struct ClickHouseHttpStore::Connection {
  Connection(const std::string& base_url, const ClickHouseHttpConfig& config, ClickHouseCodec codec)
      : client(base_url), compressor(codec) {
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);
    client.set_connection_timeout(config.connect_timeout_ms / 1000, (config.connect_timeout_ms % 1000) * 1000);
    client.set_read_timeout(config.request_timeout_ms / 1000, (config.request_timeout_ms % 1000) * 1000);
    client.set_write_timeout(config.request_timeout_ms / 1000, (config.request_timeout_ms % 1000) * 1000);
    // Credentials go in headers, which every server version reads and which stay out of access logs.
    httplib::Headers headers{{"X-ClickHouse-User", config.user}};
    if (!config.password.empty()) headers.emplace("X-ClickHouse-Key", config.password);
    client.set_default_headers(std::move(headers));
  }

  httplib::Client client;
  ClickHouseCompressor compressor;
  std::string body;  // compressed insert body, reused across inserts
  std::chrono::steady_clock::time_point last_used{};
};

// A checked-out connection; goes back to the pool on destruction unless marked broken.
class ClickHouseHttpStore::Lease {
 public:
  explicit Lease(ClickHouseHttpStore& store) : store_(store), conn_(store.checkout()) {}
  ~Lease() { store_.give_back(std::move(conn_), healthy_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Connection* operator->() { return conn_.get(); }
  void broken() { healthy_ = false; }

 private:
  ClickHouseHttpStore& store_;
  std::unique_ptr<Connection> conn_;
  bool healthy_ = true;
};

ClickHouseHttpStore::ClickHouseHttpStore(ClickHouseHttpConfig config, MetricsRegistry& metrics)
    : config_(std::move(config)),
      base_url_(normalize_url(config_.url)),
      inserts_(metrics.counter("clickhouse_inserts_total", "Inserts the ClickHouse server acknowledged",
                               {{"url", base_url_}})),
      insert_rows_(metrics.counter("clickhouse_insert_rows_total", "Rows the ClickHouse server acknowledged",
                                   {{"url", base_url_}})),
      insert_bytes_(metrics.counter("clickhouse_insert_bytes_total",
                                    "Uncompressed bytes of inserts the ClickHouse server acknowledged",
                                    {{"url", base_url_}})),
      wire_bytes_(metrics.counter("clickhouse_sent_bytes_total", "Body bytes of acknowledged inserts as sent (after compression)",
                                  {{"url", base_url_}})),
      queries_(metrics.counter("clickhouse_queries_total", "Statements run on the ClickHouse server",
                               {{"url", base_url_}})),
      retryable_errors_(metrics.counter("clickhouse_errors_total", "Failed ClickHouse requests by kind",
                                        {{"url", base_url_}, {"kind", "retryable"}})),
      permanent_errors_(metrics.counter("clickhouse_errors_total", "Failed ClickHouse requests by kind",
                                        {{"url", base_url_}, {"kind", "permanent"}})),
      connections_discarded_(metrics.counter("clickhouse_connections_discarded_total",
                                             "ClickHouse connections dropped after a transport error",
                                             {{"url", base_url_}})),
      connections_open_(metrics.gauge("clickhouse_connections_open", "ClickHouse connections in the pool",
                                      {{"url", base_url_}})) {
  if (config_.pool_size < 1) throw StoreError("clickhouse pool_size must be at least 1", false);
  if (config_.database.empty()) throw StoreError("clickhouse database must not be empty", false);
  detect_server();
}

ClickHouseHttpStore::~ClickHouseHttpStore() = default;

void ClickHouseHttpStore::detect_server() {
  const auto version = post(query_path("", false), "SELECT version()", "SELECT version()");
  version_text_ = trimmed(version.body, 100);
  const auto parsed = parse_clickhouse_version(version_text_);
  if (!parsed) throw StoreError(describe() + ": cannot parse server version '" + version_text_ + "'", false);

  // Types differ by release rather than by a clean version line (IPv6 arrived in 19.3, usable UInt128
  // much later), so ask the server whether it can build the modern column types at all.
  const auto probe = send(query_path("", false),
                          "SELECT toTypeName(CAST('::' AS IPv6)), toTypeName(CAST(0 AS UInt128))", "type probe");
  if (probe.status == 200) {
    dialect_ = ClickHouseDialect::modern;
  } else {
    const auto code = parse_clickhouse_error_code(probe.body);
    if (code && clickhouse_code_is_retryable(*code)) fail_status("type probe", probe.status, probe.body);
    dialect_ = ClickHouseDialect::legacy;
  }
  dedup_token_ = parsed->at_least(22, 2);

  post(query_path("", false), "CREATE DATABASE IF NOT EXISTS " + quote_identifier(config_.database),
       "CREATE DATABASE " + config_.database);
  spdlog::info("{}: server {}, {} dialect, deduplication tokens {}, database {}", describe(), version_text_,
               dialect_ == ClickHouseDialect::legacy ? "legacy (no IPv6/UInt128/LowCardinality)" : "modern",
               dedup_token_ ? "honoured" : "not supported (at-least-once)", config_.database);
}

std::string ClickHouseHttpStore::query_path(std::string_view extra_params, bool with_database) const {
  std::string path = "/?";
  if (with_database) path += "database=" + url_encode(config_.database) + "&";
  path += extra_params;
  if (path.back() == '&') path.pop_back();
  return path;
}

std::unique_ptr<ClickHouseHttpStore::Connection> ClickHouseHttpStore::checkout() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [&] { return !idle_.empty() || open_ < config_.pool_size; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    lock.unlock();
    if (std::chrono::steady_clock::now() - c->last_used > kIdleReuseLimit) {
      // The server may have closed it; a fresh connection costs one handshake.
      c->client.stop();
    }
    return c;
  }
  ++open_;
  connections_open_.set(open_);
  lock.unlock();
  const auto codec = config_.compression == ClickHouseHttpConfig::Compression::zstd ? ClickHouseCodec::zstd
                     : config_.compression == ClickHouseHttpConfig::Compression::lz4 ? ClickHouseCodec::lz4
                                                                                      : ClickHouseCodec::none;
  try {
    return std::make_unique<Connection>(base_url_, config_, codec);
  } catch (...) {
    give_back(nullptr, false);
    throw;
  }
}

void ClickHouseHttpStore::give_back(std::unique_ptr<Connection> c, bool healthy) {
  if (c && healthy) c->last_used = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (c && healthy) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
      connections_open_.set(open_);
      if (c) connections_discarded_.inc();
    }
  }
  available_.notify_one();
  // A discarded connection's socket closes here, outside the lock.
}

void ClickHouseHttpStore::fail_transport(std::string_view what, const std::string& error) {
  retryable_errors_.inc();
  throw StoreError(describe() + ": " + std::string(what) + " failed: cannot reach the server (" + error +
                       "); will retry",
                   true);
}

void ClickHouseHttpStore::fail_status(std::string_view what, int status, std::string_view body, bool insert) {
  const auto code = parse_clickhouse_error_code(body);
  const bool retryable =
      code ? clickhouse_code_is_retryable(*code) || (insert && clickhouse_insert_destination_missing(*code))
           : (status >= 500 || status == 408 || status == 429);
  (retryable ? retryable_errors_ : permanent_errors_).inc();
  throw StoreError(describe() + ": " + std::string(what) + " failed (HTTP " + std::to_string(status) +
                       "): " + trimmed(body, kMaxMessage),
                   retryable);
}

ClickHouseHttpStore::Response ClickHouseHttpStore::send(const std::string& path_and_query, std::string_view body,
                                                        std::string_view what) {
  Lease conn(*this);
  auto res = conn->client.Post(path_and_query, body.data(), body.size(), "text/plain; charset=UTF-8");
  if (!res) {
    conn.broken();
    fail_transport(what, httplib::to_string(res.error()));
  }
  return {res->status, std::move(res->body), res->get_header_value("X-ClickHouse-Summary")};
}

ClickHouseHttpStore::Response ClickHouseHttpStore::post(const std::string& path_and_query, std::string_view body,
                                                        std::string_view what) {
  auto res = send(path_and_query, body, what);
  if (res.status != 200) fail_status(what, res.status, res.body);
  return res;
}

QueryResult ClickHouseHttpStore::query(std::string_view sql, std::string_view format) {
  // wait_end_of_query: the server buffers the result, so a failure mid-way is an HTTP error
  // rather than an exception text appended to a 200 body.
  std::string params = "wait_end_of_query=1";
  if (!format.empty()) params += "&default_format=" + url_encode(format);
  // Akvorado's schema keeps ExporterAddress as LowCardinality(IPv6), which modern servers only
  // create with this setting; legacy servers do not know it (and get plain types anyway).
  if (dialect_ == ClickHouseDialect::modern) params += "&allow_suspicious_low_cardinality_types=1";
  auto res = post(query_path(params, true), sql, trimmed(sql, 200));
  queries_.inc();
  QueryResult out;
  out.data = std::move(res.body);
  if (!res.summary.empty()) {
    const auto j = nlohmann::json::parse(res.summary, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      out.rows_read = summary_field(j, "read_rows");
      out.bytes_read = summary_field(j, "read_bytes");
    }
  }
  return out;
}

void ClickHouseHttpStore::insert(const InsertRequest& request) {
  const std::string target = quote_identifier(config_.database) + "." + quote_identifier(request.table);
  const std::string sql =
      "INSERT INTO " + target + " FORMAT " + (request.format.empty() ? std::string("Native") : request.format);
  std::string params = "query=" + url_encode(sql);
  if (dedup_token_ && !request.dedup_token.empty()) {
    params += "&insert_deduplication_token=" + url_encode(request.dedup_token);
  }
  const bool compressed = config_.compression != ClickHouseHttpConfig::Compression::none;
  if (compressed) params += "&decompress=1";
  const auto path = query_path(params, true);
  const auto what = "INSERT INTO " + config_.database + "." + request.table + " (" +
                    std::to_string(request.rows) + " rows)";

  Lease conn(*this);
  std::string_view body = request.body;
  if (compressed) {
    conn->compressor.compress(request.body, conn->body);
    body = conn->body;
  }
  auto res = conn->client.Post(path, body.data(), body.size(), "application/octet-stream");
  if (!res) {
    conn.broken();
    fail_transport(what, httplib::to_string(res.error()));
  }
  if (res->status != 200) fail_status(what, res->status, res->body, true);
  inserts_.inc();
  insert_rows_.inc(request.rows);
  insert_bytes_.inc(request.body.size());
  wire_bytes_.inc(body.size());
}

}  // namespace sluice::sinks
