// The `csv` record decoder: RFC 4180 rows (quoted fields, doubled quotes, CRLF) into string fields.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records::detail {
namespace {

using transforms::FieldType;
using transforms::LogEvent;

class CsvDecoder final : public RecordDecoder {
 public:
  explicit CsvDecoder(const DecoderSpec& spec)
      : delimiter_(spec.csv_delimiter), header_(spec.csv_header), columns_(spec.csv_columns),
        max_fields_(spec.max_fields), out_(spec.max_fields) {}

  void decode(std::span<const std::byte> payload, LogEvent& event, RecordSink& sink) override {
    const std::string_view text = as_text(payload);
    std::size_t pos = 0;
    std::size_t line = 1;  // of the row's first byte, for the operator who opens the message
    bool header_pending = header_;
    names_ = columns_.empty() ? nullptr : &columns_;
    while (pos < text.size()) {
      const std::size_t start = pos;
      const std::size_t row = line;
      const bool ok = parse_row(text, pos);
      line += static_cast<std::size_t>(std::count(text.begin() + static_cast<std::ptrdiff_t>(start),
                                                  text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
      std::string_view raw = text.substr(start, pos - start);
      while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.remove_suffix(1);
      if (!ok) {
        reject(sink, raw, "csv: line {}: {}", row, error_);
        continue;
      }
      if (count_ == 1 && !quoted_ && values_[0].empty()) continue;  // a blank line
      if (header_pending) {
        header_pending = false;
        if (!columns_.empty()) continue;  // the configured names win; the header line is skipped
        if (!take_header(sink, raw, text.substr(pos))) return;
        continue;
      }
      if (!names_) {
        reject(sink, raw, "csv: line {}: no header line before it to name the columns", row);
        continue;
      }
      if (count_ != names_->size()) {
        reject(sink, raw, "csv: line {} has {} fields, expected {}", row, count_, names_->size());
        continue;
      }
      out_.begin(event);
      for (std::size_t i = 0; i < count_; ++i) out_.add_value((*names_)[i], values_[i], FieldType::string);
      sink.record(event);
    }
  }

 private:
  template <typename... Args>
  void reject(RecordSink& sink, std::string_view raw, fmt::format_string<Args...> format, Args&&... args) {
    reason_.clear();
    fmt::format_to(std::back_inserter(reason_), format, std::forward<Args>(args)...);
    sink.reject(reason_, as_bytes(raw));
  }

  // The header row names the columns of this message; a bad one makes the rest undecodable.
  bool take_header(RecordSink& sink, std::string_view raw, std::string_view rest) {
    const auto whole = [&] {
      return std::string_view(raw.data(), static_cast<std::size_t>(rest.data() + rest.size() - raw.data()));
    };
    if (count_ > max_fields_) {
      reject(sink, whole(), "csv: the header names {} columns, more than {} (max_fields)", count_, max_fields_);
      return false;
    }
    for (std::size_t i = 0; i < count_; ++i) {
      if (values_[i].empty()) {
        reject(sink, whole(), "csv: column {} of the header line has no name", i + 1);
        return false;
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (values_[j] == values_[i]) {
          reject(sink, whole(), "csv: the header line names column '{}' twice (columns {} and {})", values_[i], j + 1, i + 1);
          return false;
        }
      }
    }
    header_used_.resize(count_);  // keeps capacity; strings beyond are reused later
    for (std::size_t i = 0; i < count_; ++i) header_used_[i].assign(values_[i]);
    names_ = &header_used_;
    return true;
  }

  std::string& slot() {
    if (count_ >= values_.size()) values_.emplace_back();
    std::string& v = values_[count_++];
    v.clear();
    return v;
  }

  // One row from `pos` (which it moves past the line end) into values_[0..count_). Fields past
  // max_fields + 1 are counted but not kept: such a row is rejected for its width anyway.
  bool parse_row(std::string_view text, std::size_t& pos) {
    count_ = 0;
    quoted_ = false;
    std::size_t ignored = 0;
    const std::size_t n = text.size();
    while (true) {
      const bool keep = count_ <= max_fields_;
      std::string* value = keep ? &slot() : nullptr;
      if (!keep) ++ignored;
      if (pos < n && text[pos] == '"') {
        quoted_ = quoted_ || count_ == 1;
        ++pos;
        while (true) {
          const void* q = std::memchr(text.data() + pos, '"', n - pos);
          if (!q) {
            pos = n;
            error_.assign("unterminated quoted field");
            return false;
          }
          const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(q) - text.data());
          if (value) value->append(text.data() + pos, at - pos);
          pos = at + 1;
          if (pos < n && text[pos] == '"') {  // a doubled quote stands for one
            if (value) value->push_back('"');
            ++pos;
            continue;
          }
          break;
        }
        if (pos == n) break;
        const char c = text[pos];
        if (c == delimiter_) {
          ++pos;
          continue;
        }
        if (c == '\n') {
          ++pos;
          break;
        }
        if (c == '\r' && (pos + 1 == n || text[pos + 1] == '\n')) {
          pos += pos + 1 == n ? 1 : 2;
          break;
        }
        error_.clear();
        fmt::format_to(std::back_inserter(error_), "unexpected character '{}' after a closing quote (field {})",
                       c, count_ + ignored);
        const void* nl = std::memchr(text.data() + pos, '\n', n - pos);
        pos = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1 : n;
        return false;
      }
      std::size_t end = pos;
      while (end < n && text[end] != delimiter_ && text[end] != '\n') ++end;
      std::size_t stop = end;
      if ((end == n || text[end] == '\n') && stop > pos && text[stop - 1] == '\r') --stop;
      if (value) value->assign(text.data() + pos, stop - pos);
      if (end < n && text[end] == delimiter_) {
        pos = end + 1;
        continue;
      }
      pos = end < n ? end + 1 : n;
      break;
    }
    count_ += ignored;
    return true;
  }

  char delimiter_;
  bool header_;
  std::vector<std::string> columns_;
  std::size_t max_fields_;
  FieldOutput out_;
  std::vector<std::string> values_;
  std::size_t count_ = 0;
  bool quoted_ = false;  // the first field was quoted (so a lone "" is a row, not a blank line)
  std::vector<std::string> header_used_;
  const std::vector<std::string>* names_ = nullptr;
  std::string error_;
  std::string reason_;
};

class CsvFactory final : public RecordDecoderFactory {
 public:
  explicit CsvFactory(const DecoderSpec& spec) : spec_(spec) {
    if (spec.csv_columns.size() > spec.max_fields)
      throw std::runtime_error(fmt::format("decoder: csv columns lists {} names, more than max_fields ({})",
                                           spec.csv_columns.size(), spec.max_fields));
    for (std::size_t i = 0; i < spec.csv_columns.size(); ++i) {
      if (spec.csv_columns[i].empty())
        throw std::runtime_error(fmt::format("decoder: csv column {} has an empty name", i + 1));
      if (std::find(spec.csv_columns.begin(), spec.csv_columns.begin() + static_cast<std::ptrdiff_t>(i),
                    spec.csv_columns[i]) != spec.csv_columns.begin() + static_cast<std::ptrdiff_t>(i))
        throw std::runtime_error(fmt::format("decoder: csv column '{}' is named twice", spec.csv_columns[i]));
    }
  }
  std::unique_ptr<RecordDecoder> make() const override { return std::make_unique<CsvDecoder>(spec_); }

 private:
  DecoderSpec spec_;
};

}  // namespace

std::unique_ptr<RecordDecoderFactory> make_csv_factory(const DecoderSpec& spec) {
  return std::make_unique<CsvFactory>(spec);
}

}  // namespace sluice::decoders::records::detail
