// JSON records handed to a mapped job's columns as slots (no event) give exactly the rows and the
// rejections that decoding into events first gives: the same Native bytes, the same reasons.
#include <gtest/gtest.h>

#include <cctype>
#include <random>

#include "decoders/records/record_decoder.hpp"
#include "pipeline/jobs/column_mapping.hpp"

namespace sluice::pipeline::jobs {
namespace {

using decoders::records::DecoderSpec;
using decoders::records::FieldSlots;
using decoders::records::RecordSink;

MappingSpec mapping() {
  MappingSpec spec;
  spec.table.push_back('t');
  spec.columns = {
      {"id", "UInt64", "", std::nullopt, true},
      {"host", "LowCardinality(String)", "", std::nullopt, false},
      {"city", "String", "user.address.city", std::string("nowhere"), false},
      {"bytes", "Nullable(Int32)", "", std::nullopt, false},
      {"ratio", "Float64", "", std::nullopt, false},
      {"ok", "Bool", "", std::nullopt, false},
      {"ts", "DateTime64(3)", "", std::nullopt, false},
      {"tags", "Array(String)", "", std::nullopt, false},
      {"labels", "Map(String, String)", "", std::nullopt, false},
      {"empty", "String", "", std::nullopt, false},
      {"topic", "String", "_topic", std::nullopt, false},
  };
  return spec;
}

// Feeds one writer, either from events (slots() is null) or from slots, and keeps what was refused.
class Feed final : public RecordSink {
 public:
  Feed(MappedRowWriter& writer, bool use_slots) : writer_(writer), use_slots_(use_slots) {}
  void record(transforms::LogEvent& event) override {
    ++events;
    if (auto r = writer_.append(event, meta)) refused.push_back("mapping: " + r->reason);
  }
  FieldSlots* slots() override { return use_slots_ ? &writer_ : nullptr; }
  void record_slots() override {
    ++slot_records;
    if (auto r = writer_.append_slots(meta)) refused.push_back("mapping: " + r->reason);
  }
  void reject(std::string_view reason, std::span<const std::byte> bytes) override {
    refused.push_back("decode: " + std::string(reason) + " | " +
                      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  MessageMeta meta;
  std::vector<std::string> refused;
  int events = 0;
  int slot_records = 0;

 private:
  MappedRowWriter& writer_;
  bool use_slots_;
};

struct Outcome {
  std::string body;
  std::uint64_t rows = 0;
  std::vector<std::string> refused;
  int slot_records = 0;
  int events = 0;
};

// Every kind a number can land in: numbers reach the slots as values, and each column must take them as it
// takes their text.
const std::vector<std::string> kNumberColumnTypes = {
    "UInt8", "UInt16", "UInt32", "UInt64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64",
    "Nullable(UInt8)", "Nullable(Float32)", "Date", "DateTime", "DateTime64(3)", "DateTime64(9)",
    "Nullable(DateTime64(6))", "String", "LowCardinality(String)", "Bool", "IPv4", "FixedString(4)", "Array(Int64)"};

MappingSpec one_column(const std::string& type) {
  MappingSpec spec;
  spec.table.push_back('n');
  spec.columns.push_back({"c", type, "v", std::nullopt, false});
  return spec;
}

Outcome run(const std::vector<std::string>& messages, const std::string& kind, bool use_slots, std::size_t max_fields,
            const MappingSpec& columns = mapping()) {
  DecoderSpec spec;
  spec.kind = kind;
  spec.max_fields = max_fields;
  spec.max_depth = 8;
  auto decoder = decoders::records::make_record_decoder_factory(spec)->make();
  auto writer = compile_mapping(columns, ClickHouseDialect::modern)->make_writer();
  Feed feed(*writer, use_slots);
  feed.meta.topic = "events";
  transforms::LogEvent event;
  for (const auto& m : messages) decoder->decode(std::as_bytes(std::span(m.data(), m.size())), event, feed);
  Outcome o;
  o.rows = writer->rows();
  o.body = writer->take().body;
  o.refused = feed.refused;
  o.slot_records = feed.slot_records;
  o.events = feed.events;
  return o;
}

const std::vector<std::string> kDocuments = {
    R"({"id": 1, "host": "a", "user": {"address": {"city": "Lyon"}}, "bytes": 10, "ratio": 0.5, "ok": true,
        "ts": 1763700000123, "tags": ["x", "y"], "labels": {"k": "v"}, "empty": {}})",
    R"({"host": "b", "id": 2})",                                          // other order, defaults
    R"({"id": 3, "bytes": null, "ok": false, "ts": "2026-11-21 10:00:00.5"})",
    R"({"id": 4, "id": 5, "host": "dup"})",                               // a repeated name: the last wins
    R"({"id": "6", "bytes": "12", "ratio": "1e3", "ok": "true"})",        // numbers as text
    R"({"id": 7, "bytes": 3000000000})",                                  // out of range: refused
    R"({"id": -1})",                                                      // negative into UInt64: refused
    R"({"host": "no id"})",                                               // required and missing: refused
    R"({"id": 8, "tags": "not an array"})",                               // refused
    R"({"id": 9, "user": {"address": {}}, "labels": {}})",                // empty objects are values
    R"({"id": 10, "user": {"address": {"city": null}}})",
    R"({"id": 11, "ratio": 18446744073709551615, "bytes": -2147483648})",
    R"({"id": 12, "host": "h\u00e9\n\"q\"", "tags": [1, 2.5, null, true, {"a": [1]}]})",
    R"({"id": 13, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9})",  // past max_fields
    R"({"id": 14, "x": 1, "x": 2, "x": 3, "x": 4, "x": 5, "x": 6, "x": 7, "x": 8, "x": 9})",  // repeats count once
    R"([{"id": 15}, {"id": 16, "host": "in an array"}, 3])",
    R"({"id": 17, "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}})",       // past max_depth
    R"({"id": 18,)",
    R"("just a string")",
    R"({"id": 19, "ts": 1763700000, "ok": 1})",
    "",
};

void expect_same(const Outcome& events, const Outcome& slots) {
  EXPECT_EQ(slots.rows, events.rows);
  EXPECT_EQ(slots.refused, events.refused);
  EXPECT_TRUE(slots.body == events.body) << "the Native blocks differ";
}

TEST(JsonSlots, EveryDocumentGivesTheRowsAndRejectionsOfTheEventPath) {
  for (const auto& doc : kDocuments) {
    SCOPED_TRACE(doc);
    const auto events = run({doc}, "json", false, 10);
    const auto slots = run({doc}, "json", true, 10);
    expect_same(events, slots);
  }
  // All in one batch, and most of them went the slot way.
  const auto events = run(kDocuments, "json", false, 10);
  const auto slots = run(kDocuments, "json", true, 10);
  expect_same(events, slots);
  EXPECT_GT(events.rows, 10u);
  EXPECT_GT(slots.slot_records, 15);
  EXPECT_LE(slots.events, 2);  // only the records with more values than max_fields
}

TEST(JsonSlots, JsonLinesWithBlankAndCarriageReturnLines) {
  std::string message;
  for (const auto& doc : kDocuments) {
    std::string line = doc;
    for (auto& ch : line) {
      if (ch == '\n') ch = ' ';
    }
    message += line + "\r\n\n";
  }
  expect_same(run({message}, "json-lines", false, 10), run({message}, "json-lines", true, 10));
}

TEST(JsonSlots, NumbersGiveEveryNumericColumnWhatTheirTextGives) {
  const std::vector<std::string> numbers = {
      "0", "1", "-1", "127", "128", "-128", "-129", "255", "256", "65535", "65536", "-32769", "4294967295",
      "4294967296", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615",
      "18446744073709551616", "1e3", "1.0", "-0.0", "0.1", "1.5", "-2.5e-7", "3.4028234663852886e38", "3.5e38",
      "-3.5e38", "1e308", "1e20", "123456789012345678901234", "9007199254740993", "1763700000", "1763700000123",
      "1763700000123456", "1763700000123456789", "99999999999", "100000000000", "999999999999999999",
      "1000000000000000000", "4102444800", "1763700000.5", "16909060", "1234", "12345"};
  std::vector<std::string> docs;
  for (const auto& n : numbers) docs.push_back(R"({"v": )" + n + "}");
  std::uint64_t rows = 0, refused = 0;
  for (const auto& type : kNumberColumnTypes) {
    SCOPED_TRACE(type);
    for (const auto& doc : docs) {
      SCOPED_TRACE(doc);
      expect_same(run({doc}, "json", false, 10, one_column(type)), run({doc}, "json", true, 10, one_column(type)));
    }
    const auto events = run(docs, "json", false, 10, one_column(type));
    const auto slots = run(docs, "json", true, 10, one_column(type));
    expect_same(events, slots);
    rows += slots.rows;
    refused += slots.refused.size();
  }
  // Both outcomes are well represented: most numbers fit most columns, and each column refuses some.
  EXPECT_GT(rows, 500u);
  EXPECT_GT(refused, 100u);
}

TEST(JsonSlots, RandomRecordsAgree) {
  std::mt19937 rng(7);
  const std::vector<std::string> names = {"id", "host", "bytes", "ratio", "ok", "ts", "tags", "labels", "other", "user"};
  const std::vector<std::string> values = {"1", "-5", "0", "42", "3.25", "1e20", "\"text\"", "\"42\"", "true", "false",
                                           "null", "[]", "[\"a\"]", "{}", "{\"address\": {\"city\": \"Paris\"}}",
                                           "{\"k\": 1}", "18446744073709551615", "\"2026-11-21T10:00:00Z\""};
  std::vector<std::string> docs;
  for (int i = 0; i < 3000; ++i) {
    std::string d = "{";
    const int n = static_cast<int>(rng() % 9);
    for (int k = 0; k < n; ++k) {
      if (k) d += ",";
      d += "\"" + names[rng() % names.size()] + "\":" + values[rng() % values.size()];
    }
    d += "}";
    docs.push_back(std::move(d));
  }
  const auto events = run(docs, "json", false, 6);
  const auto slots = run(docs, "json", true, 6);
  expect_same(events, slots);
  EXPECT_GT(events.rows, 50u);
  EXPECT_GT(events.refused.size(), 500u);
}

}  // namespace
}  // namespace sluice::pipeline::jobs
