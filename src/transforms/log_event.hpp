// LogEvent: one log line on its way through the outlet: its identity, message, time and parsed fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::transforms {

// How a field's value is written to sinks that keep types (Elasticsearch); ClickHouse's
// Map(String, String) takes every value as its text.
enum class FieldType : std::uint8_t {
  string,
  number,   // value holds the number as JSON writes it
  boolean,  // "true" / "false"
  null,     // value is empty
  json,     // value holds a JSON object or array, serialized
};

struct LogField {
  std::string name;
  std::string value;
  FieldType type = FieldType::string;
};

// Events are reused from line to line: clear() keeps the capacity of every string, so that parsing a
// steady stream of lines allocates nothing once warmed up.
class LogEvent {
 public:
  // Identity of the line: where it was read. (host, path, file_id, offset) is unique.
  std::string host;
  std::string path;
  std::uint64_t file_id = 0;
  std::uint64_t offset = 0;
  std::string source;            // the bus topic it came from; rules are selected by it
  std::int64_t timestamp_ms = 0; // event time: the time it was read, until a rule parses one
  std::string message;           // the line, or what a rule made of it
  std::string route;             // empty: the default destinations; otherwise a route name from the rules

  void clear() {
    host.clear();
    path.clear();
    source.clear();
    message.clear();
    route.clear();
    file_id = offset = 0;
    timestamp_ms = 0;
    used_ = 0;
  }

  std::size_t field_count() const { return used_; }
  const LogField& field(std::size_t i) const { return fields_[i]; }
  LogField& field(std::size_t i) { return fields_[i]; }

  LogField* find(std::string_view name) {
    for (std::size_t i = 0; i < used_; ++i) {
      if (fields_[i].name == name) return &fields_[i];
    }
    return nullptr;
  }
  const LogField* find(std::string_view name) const { return const_cast<LogEvent*>(this)->find(name); }

  // Sets a field, replacing the value of one with the same name.
  LogField& set(std::string_view name, std::string_view value, FieldType type = FieldType::string) {
    LogField* f = find(name);
    if (!f) f = &append_field(name);
    f->value.assign(value);
    f->type = type;
    return *f;
  }
  // Appends a field without looking for one of the same name (parsers of fresh events use it).
  LogField& append_field(std::string_view name) {
    if (used_ == fields_.size()) fields_.emplace_back();
    LogField& f = fields_[used_++];
    f.name.assign(name);
    f.value.clear();
    f.type = FieldType::string;
    return f;
  }
  bool erase(std::string_view name) {
    for (std::size_t i = 0; i < used_; ++i) {
      if (fields_[i].name == name) {
        // Keep order: later fields move up; the erased strings keep their capacity at the end.
        for (std::size_t j = i + 1; j < used_; ++j) std::swap(fields_[j - 1], fields_[j]);
        --used_;
        return true;
      }
    }
    return false;
  }

 private:
  std::vector<LogField> fields_;
  std::size_t used_ = 0;
};

}  // namespace sluice::transforms
