#include "transforms/metadata/snmp_client.hpp"

#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

// net-snmp after the C++ headers: it defines macros with common names.
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

namespace sluice::transforms::metadata {
namespace {

// net-snmp is built without NETSNMP_REENTRANT here: its session list, USM user list and engine-ID
// cache are process-wide. Every call into it holds this lock, so that two directories (tests, a
// reload) never use it at once.
std::mutex& netsnmp_lock() {
  static std::mutex m;
  return m;
}

void init_netsnmp_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Our configuration comes from sluice's YAML: no snmp.conf, no persistent state under /var/lib.
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
    // We ask numeric OIDs only: loading MIB files would cost startup time and print hundreds of
    // warnings about MIBs that Debian does not ship.
    char no_mibs[] = "mibs :";
    netsnmp_config_remember(no_mibs);
    init_snmp("sluice");
  });
}

// Column OIDs (without the index): ifName, ifAlias, ifHighSpeed (ifXTable) and ifSpeed (ifTable).
const oid kSysNameOid[] = {1, 3, 6, 1, 2, 1, 1, 5, 0};
const oid kIfName[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1};
const oid kIfAlias[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18};
const oid kIfHighSpeed[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15};
const oid kIfSpeed[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 5};
constexpr std::size_t kColumnLen = 11;
constexpr std::size_t kIfSpeedLen = 10;

// OID of a column plus an index appended.
struct IndexedOid {
  oid parts[MAX_OID_LEN];
  std::size_t len;
};

IndexedOid column(const oid* base, std::size_t base_len, std::uint32_t index) {
  IndexedOid o{};
  std::copy(base, base + base_len, o.parts);
  o.parts[base_len] = index;
  o.len = base_len + 1;
  return o;
}

bool has_prefix(const netsnmp_variable_list* v, const oid* base, std::size_t base_len) {
  return v->name_length == base_len + 1 && snmp_oid_compare(v->name, base_len, base, base_len) == 0;
}

bool is_exception(const netsnmp_variable_list* v) {
  return v->type == SNMP_NOSUCHOBJECT || v->type == SNMP_NOSUCHINSTANCE || v->type == SNMP_ENDOFMIBVIEW;
}

std::optional<std::string> as_string(const netsnmp_variable_list* v) {
  if (v->type != ASN_OCTET_STR) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(v->val.string), v->val_len);
}

std::optional<std::uint64_t> as_number(const netsnmp_variable_list* v) {
  switch (v->type) {
    case ASN_INTEGER:
    case ASN_GAUGE:
    case ASN_COUNTER:
    case ASN_TIMETICKS:
      return static_cast<std::uint64_t>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFUL);
    default:
      return std::nullopt;
  }
}

std::string peer_name(const Ip6& address, std::uint16_t port) {
  if (ip6_is_v4_mapped(address)) return "udp:" + ip6_to_string(address) + ":" + std::to_string(port);
  return "udp6:[" + ip6_to_string(address) + "]:" + std::to_string(port);
}

}  // namespace

struct SnmpClient::Impl {
  struct Session {
    void* handle = nullptr;
    std::size_t outstanding = 0;
    std::chrono::steady_clock::time_point last_used{};
    bool failed = false;  // close once idle, so that a rebooted agent gets a fresh engine-ID discovery
  };
  struct Pending {
    int reqid = 0;
    FetchRequest request;
    bool done = false;
    FetchReply reply;
  };

  SnmpConfig config;
  Callback done;
  std::unordered_map<Ip6, Session, Ip6Hash> sessions;
  std::list<std::unique_ptr<Pending>> pending;
  // Queries still owned by a session, by request id. net-snmp may call back for a request after its
  // answer was handled (closing a session calls back for what it still lists), so the callback looks
  // the query up here instead of trusting a pointer that may be gone.
  std::unordered_map<int, Pending*> by_reqid;

  static int on_response(int operation, netsnmp_session*, int reqid, netsnmp_pdu* pdu, void* magic) {
    auto* impl = static_cast<Impl*>(magic);
    const auto found = impl->by_reqid.find(reqid);
    if (found == impl->by_reqid.end() || found->second->done) return 1;
    Pending* p = found->second;
    p->done = true;
    if (operation == NETSNMP_CALLBACK_OP_TIMED_OUT) {
      p->reply.status = FetchStatus::timeout;
      p->reply.error = "no answer (timeout)";
    } else if (operation != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu) {
      p->reply.status = FetchStatus::error;
      p->reply.error = "query failed (operation " + std::to_string(operation) + ")";
    } else if (pdu->command != SNMP_MSG_RESPONSE) {
      p->reply.status = FetchStatus::error;
      p->reply.error = "agent sent a report instead of a response (check SNMPv3 user, keys and level)";
    } else if (pdu->errstat != SNMP_ERR_NOERROR) {
      p->reply.status = FetchStatus::error;
      p->reply.error = std::string("agent error: ") + snmp_errstring(static_cast<int>(pdu->errstat));
    } else {
      p->reply.status = FetchStatus::ok;
      parse(p->request, pdu, p->reply.result);
    }
    return 1;
  }

  static void parse(const FetchRequest& request, const netsnmp_pdu* pdu, FetchResult& out) {
    out.exporter = request.exporter;
    struct Fields {
      std::optional<std::string> name, alias;
      std::optional<std::uint64_t> high_speed, speed;
    };
    std::unordered_map<std::uint32_t, Fields> fields;
    for (const auto index : request.interfaces) fields[index];
    for (const netsnmp_variable_list* v = pdu->variables; v; v = v->next_variable) {
      if (is_exception(v)) continue;
      if (v->name_length == std::size(kSysNameOid) &&
          snmp_oid_compare(v->name, v->name_length, kSysNameOid, std::size(kSysNameOid)) == 0) {
        if (auto s = as_string(v)) out.exporter_info = std::make_shared<const ExporterInfo>(ExporterInfo{*s});
        continue;
      }
      const auto index = static_cast<std::uint32_t>(v->name[v->name_length - 1]);
      const auto it = fields.find(index);
      if (it == fields.end()) continue;
      if (has_prefix(v, kIfName, kColumnLen)) it->second.name = as_string(v);
      else if (has_prefix(v, kIfAlias, kColumnLen)) it->second.alias = as_string(v);
      else if (has_prefix(v, kIfHighSpeed, kColumnLen)) it->second.high_speed = as_number(v);
      else if (has_prefix(v, kIfSpeed, kIfSpeedLen)) it->second.speed = as_number(v);
    }
    for (const auto index : request.interfaces) {
      const auto& f = fields[index];
      if (!f.name && !f.alias && !f.high_speed && !f.speed) {
        out.interfaces.emplace_back(index, nullptr);  // the agent has no such interface
        continue;
      }
      InterfaceInfo info;
      info.name = f.name.value_or("");
      info.description = f.alias.value_or("");
      if (f.high_speed) info.speed = static_cast<std::uint32_t>(*f.high_speed);
      else if (f.speed) info.speed = static_cast<std::uint32_t>(*f.speed / 1'000'000);
      out.interfaces.emplace_back(index, std::make_shared<const InterfaceInfo>(std::move(info)));
    }
  }

  // Returns the session for this exporter, opening it if needed; null with `error` set on failure.
  void* session_for(const Ip6& address, const SnmpCredentials& credentials, FetchReply& error) {
    if (auto it = sessions.find(address); it != sessions.end()) return it->second.handle;
    netsnmp_session s;
    snmp_sess_init(&s);
    std::string peer = peer_name(address, config.port);
    s.peername = peer.data();
    s.timeout = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(config.timeout).count());
    s.retries = config.retries;
    std::string community, user;
    if (const auto* v2 = std::get_if<SnmpV2cCredentials>(&credentials)) {
      community = v2->community;
      s.version = SNMP_VERSION_2c;
      s.community = reinterpret_cast<u_char*>(community.data());
      s.community_len = community.size();
    } else {
      const auto& v3 = std::get<SnmpV3Credentials>(credentials);
      user = v3.user;
      s.version = SNMP_VERSION_3;
      s.securityName = user.data();
      s.securityNameLen = user.size();
      s.securityLevel = v3.level == SecurityLevel::auth_priv      ? SNMP_SEC_LEVEL_AUTHPRIV
                        : v3.level == SecurityLevel::auth_no_priv ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                                  : SNMP_SEC_LEVEL_NOAUTH;
      if (v3.level != SecurityLevel::no_auth_no_priv) {
        switch (v3.auth) {
          case AuthProtocol::md5:
            s.securityAuthProto = usmHMACMD5AuthProtocol;
            break;
          case AuthProtocol::sha256:
            s.securityAuthProto = usmHMAC192SHA256AuthProtocol;
            break;
          default:
            s.securityAuthProto = usmHMACSHA1AuthProtocol;
        }
        s.securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
        s.securityAuthKeyLen = USM_AUTH_KU_LEN;
        auto pass = v3.auth_passphrase;
        if (generate_Ku(s.securityAuthProto, static_cast<u_int>(s.securityAuthProtoLen),
                        reinterpret_cast<const u_char*>(pass.data()), pass.size(), s.securityAuthKey,
                        &s.securityAuthKeyLen) != SNMPERR_SUCCESS) {
          error.error = "cannot derive the SNMPv3 authentication key for user " + user;
          return nullptr;
        }
      }
      if (v3.level == SecurityLevel::auth_priv) {
        s.securityPrivProto = v3.priv == PrivProtocol::des ? usmDESPrivProtocol : usmAESPrivProtocol;
        s.securityPrivProtoLen = USM_PRIV_PROTO_AES_LEN;
        s.securityPrivKeyLen = USM_PRIV_KU_LEN;
        auto pass = v3.priv_passphrase;
        if (generate_Ku(s.securityAuthProto, static_cast<u_int>(s.securityAuthProtoLen),
                        reinterpret_cast<const u_char*>(pass.data()), pass.size(), s.securityPrivKey,
                        &s.securityPrivKeyLen) != SNMPERR_SUCCESS) {
          error.error = "cannot derive the SNMPv3 privacy key for user " + user;
          return nullptr;
        }
      }
    }
    void* handle = snmp_sess_open(&s);
    if (!handle) {
      int sys_errno = 0, snmp_errno = 0;
      char* text = nullptr;
      snmp_error(&s, &sys_errno, &snmp_errno, &text);
      error.status = snmp_errno == SNMPERR_TIMEOUT ? FetchStatus::timeout : FetchStatus::error;
      error.error = std::string("cannot open an SNMP session to ") + peer + ": " + (text ? text : "unknown error");
      SNMP_FREE(text);
      return nullptr;
    }
    sessions[address].handle = handle;
    return handle;
  }

  void close_session(const Ip6& address) {
    const auto it = sessions.find(address);
    if (it == sessions.end()) return;
    snmp_sess_close(it->second.handle);
    sessions.erase(it);
  }

  // Runs the callbacks of finished queries (without the library lock: they may send again).
  void finish_done(std::unique_lock<std::mutex>& lock) {
    std::vector<std::unique_ptr<Pending>> finished;
    for (auto it = pending.begin(); it != pending.end();) {
      if (!(*it)->done) {
        ++it;
        continue;
      }
      if (auto s = sessions.find((*it)->request.exporter); s != sessions.end()) {
        auto& session = s->second;
        if (session.outstanding > 0) --session.outstanding;
        if ((*it)->reply.status != FetchStatus::ok) session.failed = true;
        if (session.outstanding == 0 && session.failed) close_session((*it)->request.exporter);
      }
      by_reqid.erase((*it)->reqid);
      finished.push_back(std::move(*it));
      it = pending.erase(it);
    }
    lock.unlock();
    for (auto& p : finished) done(p->request, std::move(p->reply));
    lock.lock();
  }
};

SnmpClient::SnmpClient(const SnmpConfig& config, Callback done) : impl_(std::make_unique<Impl>()) {
  init_netsnmp_once();
  impl_->config = config;
  impl_->done = std::move(done);
}

SnmpClient::~SnmpClient() {
  std::lock_guard lock(netsnmp_lock());
  impl_->by_reqid.clear();  // what the closing sessions call back for is no longer waited for
  for (auto& [address, s] : impl_->sessions) snmp_sess_close(s.handle);  // drops outstanding requests
}

std::size_t SnmpClient::in_flight() const { return impl_->pending.size(); }

void SnmpClient::send(FetchRequest request, const SnmpCredentials& credentials) {
  std::unique_lock lock(netsnmp_lock());
  FetchReply failure;
  void* handle = impl_->session_for(request.exporter, credentials, failure);
  if (!handle) {
    lock.unlock();
    impl_->done(request, std::move(failure));
    return;
  }
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
  snmp_add_null_var(pdu, kSysNameOid, std::size(kSysNameOid));
  for (const auto index : request.interfaces) {
    for (const auto& o : {column(kIfName, kColumnLen, index), column(kIfAlias, kColumnLen, index),
                          column(kIfHighSpeed, kColumnLen, index), column(kIfSpeed, kIfSpeedLen, index)}) {
      snmp_add_null_var(pdu, o.parts, o.len);
    }
  }
  auto p = std::make_unique<Impl::Pending>();
  p->request = std::move(request);
  p->reqid = snmp_sess_async_send(handle, pdu, &Impl::on_response, impl_.get());
  if (p->reqid == 0) {
    snmp_free_pdu(pdu);
    int sys_errno = 0, snmp_errno = 0;
    char* text = nullptr;
    snmp_sess_error(handle, &sys_errno, &snmp_errno, &text);
    FetchReply reply;
    reply.error = std::string("cannot send the SNMP query: ") + (text ? text : "unknown error");
    SNMP_FREE(text);
    impl_->close_session(p->request.exporter);
    lock.unlock();
    impl_->done(p->request, std::move(reply));
    return;
  }
  impl_->by_reqid[p->reqid] = p.get();
  auto& session = impl_->sessions[p->request.exporter];
  ++session.outstanding;
  session.last_used = std::chrono::steady_clock::now();
  impl_->pending.push_back(std::move(p));
}

void SnmpClient::poll(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(netsnmp_lock());
  // An idle session costs a socket; a busy exporter keeps its own (and its SNMPv3 engine ID).
  const auto idle_before = std::chrono::steady_clock::now() - std::chrono::seconds(60);
  for (auto it = impl_->sessions.begin(); it != impl_->sessions.end();) {
    if (it->second.outstanding == 0 && it->second.last_used < idle_before) {
      snmp_sess_close(it->second.handle);
      it = impl_->sessions.erase(it);
    } else {
      ++it;
    }
  }
  if (impl_->pending.empty()) return;
  netsnmp_large_fd_set fds;
  netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
  int numfds = 0;
  int block = 0;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(max_wait.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((max_wait.count() % 1000) * 1000);
  for (auto& [address, s] : impl_->sessions) {
    if (s.outstanding > 0) snmp_sess_select_info2(s.handle, &numfds, &fds, &tv, &block);
  }
  lock.unlock();
  const int ready = netsnmp_large_fd_set_select(numfds, &fds, nullptr, nullptr, &tv);
  lock.lock();
  for (auto& [address, s] : impl_->sessions) {
    if (s.outstanding == 0) continue;
    if (ready > 0) snmp_sess_read2(s.handle, &fds);
    snmp_sess_timeout(s.handle);
  }
  netsnmp_large_fd_set_cleanup(&fds);
  impl_->finish_done(lock);
}

}  // namespace sluice::transforms::metadata
