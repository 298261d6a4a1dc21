// Column mapping of ingestion jobs: every type's conversion to its exact Native bytes, rejections
// with their reasons, defaults, required, Nullable, the `*` map, and `mapping:` errors with key paths.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstring>

#include "config/reader.hpp"
#include "core/native_block.hpp"
#include "pipeline/jobs/column_mapping.hpp"
#include "pipeline/jobs/column_types.hpp"

namespace sluice::pipeline::jobs {
namespace {

using transforms::FieldType;
using transforms::LogEvent;

std::uint64_t read_varint(std::string_view& s) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto b = static_cast<std::uint8_t>(s.front());
    s.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}
std::string read_str(std::string_view& s) {
  const auto n = read_varint(s);
  std::string out(s.substr(0, n));
  s.remove_prefix(n);
  return out;
}

template <typename T>
std::string le(T v) {
  std::string out;
  put_native_fixed(out, v);
  return out;
}
std::string str(std::string_view s) {
  std::string out;
  put_native_string(out, s);
  return out;
}
// A LowCardinality(String) column of one row holding `s` (not empty): its dictionary is "" and `s`.
std::string lc_one(std::string_view s) {
  std::string out;
  put_native_fixed<std::uint64_t>(out, 1);                            // keys version
  put_native_fixed<std::uint64_t>(out, (1u << 9) | (1u << 10));       // UInt8 numbers, keys in the block
  put_native_fixed<std::uint64_t>(out, 2);                            // keys: "", s
  out += str("");
  out += str(s);
  put_native_fixed<std::uint64_t>(out, 1);  // rows
  out += '\x01';
  return out;
}

// A block of one column: its row count, type and data bytes.
struct OneColumn {
  std::uint64_t rows = 0;
  std::string name, type, data;
};
OneColumn one_column(const std::string& body) {
  std::string_view s = body;
  OneColumn c;
  EXPECT_EQ(read_varint(s), 1u);
  c.rows = read_varint(s);
  c.name = read_str(s);
  c.type = read_str(s);
  c.data = std::string(s);
  return c;
}

MappingSpec spec_of(std::vector<ColumnSpec> columns) {
  MappingSpec spec;
  spec.table.push_back('t');  // (GCC 12 takes `= "t"` here for an overlapping memcpy: -Wrestrict)
  spec.columns = std::move(columns);
  return spec;
}

// A one-column mapping `v` of `type` fed one field value at a time.
class Column {
 public:
  explicit Column(const std::string& type, ClickHouseDialect dialect = ClickHouseDialect::modern,
                  std::optional<std::string> default_value = std::nullopt, bool required = false) {
    MappingSpec spec;
    spec.table = "t";
    spec.columns.push_back({"v", type, "", std::move(default_value), required});
    writer_ = compile_mapping(spec, dialect)->make_writer();
  }
  // The data bytes of the value, or the rejection reason prefixed with "rejected: ".
  std::string operator()(std::string_view value, FieldType type = FieldType::string) {
    LogEvent e;
    e.set("v", value, type);
    return run(e);
  }
  std::string missing() { return run(LogEvent{}); }
  std::string wire_type() {
    writer_->append(LogEvent{}, {});
    return one_column(writer_->take().body).type;
  }

 private:
  std::string run(const LogEvent& e) {
    if (auto r = writer_->append(e, {})) {
      EXPECT_EQ(writer_->rows(), 0u);
      return "rejected: " + r->reason;
    }
    auto block = one_column(writer_->take().body);
    EXPECT_EQ(block.rows, 1u);
    return block.data;
  }
  std::unique_ptr<MappedRowWriter> writer_;
};

TEST(ColumnMapping, IntegersAreRangeCheckedAndIntegralTextIsAccepted) {
  Column u8("UInt8");
  EXPECT_EQ(u8("255"), le<std::uint8_t>(255));
  EXPECT_EQ(u8("300"), "rejected: column v (UInt8): field 'v' is \"300\", out of range");
  EXPECT_EQ(u8("-1"), "rejected: column v (UInt8): field 'v' is \"-1\", out of range");
  EXPECT_EQ(u8("true", FieldType::boolean), le<std::uint8_t>(1));
  Column i64("Int64");
  EXPECT_EQ(i64("12.0"), le<std::int64_t>(12));
  EXPECT_EQ(i64("1e3"), le<std::int64_t>(1000));
  EXPECT_EQ(i64("+7"), le<std::int64_t>(7));
  EXPECT_EQ(i64("-9223372036854775808"), le<std::int64_t>(INT64_MIN));
  EXPECT_EQ(i64("9223372036854775808"), "rejected: column v (Int64): field 'v' is \"9223372036854775808\", out of range");
  EXPECT_EQ(i64("12.5"), "rejected: column v (Int64): field 'v' is \"12.5\", not an integer");
  EXPECT_EQ(i64("abc"), "rejected: column v (Int64): field 'v' is \"abc\", not an integer");
  EXPECT_EQ(Column("UInt64")("18446744073709551615"), le<std::uint64_t>(UINT64_MAX));
  EXPECT_EQ(Column("UInt16")("65535"), le<std::uint16_t>(65535));
  EXPECT_EQ(Column("UInt32")("4294967296"), "rejected: column v (UInt32): field 'v' is \"4294967296\", out of range");
  EXPECT_EQ(Column("Int8")("-128"), le<std::int8_t>(-128));
  EXPECT_EQ(Column("Int16")("-32769"), "rejected: column v (Int16): field 'v' is \"-32769\", out of range");
  EXPECT_EQ(Column("Int32")("-2147483648", FieldType::number), le<std::int32_t>(INT32_MIN));
}

TEST(ColumnMapping, FloatsAndBooleans) {
  EXPECT_EQ(Column("Float64")("1.5"), le<double>(1.5));
  EXPECT_EQ(Column("Float64")("-2e-3"), le<double>(-0.002));
  EXPECT_EQ(Column("Float32")("0.25"), le<float>(0.25f));
  EXPECT_EQ(Column("Float32")("1e40"), "rejected: column v (Float32): field 'v' is \"1e40\", out of range");
  EXPECT_EQ(Column("Float64")("x1"), "rejected: column v (Float64): field 'v' is \"x1\", not a number");
  Column b("Bool");
  EXPECT_EQ(b("true", FieldType::boolean), le<std::uint8_t>(1));
  EXPECT_EQ(b("FALSE"), le<std::uint8_t>(0));
  EXPECT_EQ(b("1"), le<std::uint8_t>(1));
  EXPECT_EQ(b("0", FieldType::number), le<std::uint8_t>(0));
  EXPECT_EQ(b("yes"), "rejected: column v (Bool): field 'v' is \"yes\", not a boolean (true, false, 1 or 0)");
  EXPECT_EQ(b.wire_type(), "Bool");
  EXPECT_EQ(Column("Bool", ClickHouseDialect::legacy).wire_type(), "UInt8");
}

TEST(ColumnMapping, Strings) {
  EXPECT_EQ(Column("String")("héllo"), str("héllo"));
  EXPECT_EQ(Column("String")("{\"a\":1}", FieldType::json), str("{\"a\":1}"));
  EXPECT_EQ(Column("String")("42", FieldType::number), str("42"));
  Column lc("LowCardinality(String)");
  EXPECT_EQ(lc("web-1"), lc_one("web-1"));  // with its dictionary, which spares the server hashing it
  EXPECT_EQ(lc.wire_type(), "LowCardinality(String)");
  EXPECT_EQ(Column("LowCardinality(String)", ClickHouseDialect::legacy)("web-1"), str("web-1"));
  EXPECT_EQ(Column("LowCardinality(String)", ClickHouseDialect::legacy).wire_type(), "String");
  Column fs("FixedString(4)");
  EXPECT_EQ(fs("ab"), std::string("ab\0\0", 4));
  EXPECT_EQ(fs("abcd"), "abcd");
  EXPECT_EQ(fs("abcde"), "rejected: column v (FixedString(4)): field 'v' is \"abcde\", longer than the column's fixed size");
}

TEST(ColumnMapping, DatesAndTimesFromTextAndUnixNumbers) {
  // 2024-01-02T03:04:05Z is 1704164645; 2024-01-02 is day 19724.
  Column d("Date");
  EXPECT_EQ(d("2024-01-02"), le<std::uint16_t>(19724));
  EXPECT_EQ(d("2024-01-02T23:59:59Z"), le<std::uint16_t>(19724));
  EXPECT_EQ(d("1704164645"), le<std::uint16_t>(19724));
  EXPECT_EQ(d("1969-12-31"), "rejected: column v (Date): field 'v' is \"1969-12-31\", out of range for Date (1970-01-01 to 2149-06-06)");
  Column dt("DateTime");
  EXPECT_EQ(dt("2024-01-02T03:04:05Z"), le<std::uint32_t>(1704164645));
  EXPECT_EQ(dt("2024-01-02 03:04:05"), le<std::uint32_t>(1704164645));
  EXPECT_EQ(dt("2024-01-02T05:34:05.999+02:30"), le<std::uint32_t>(1704164645));
  EXPECT_EQ(dt("2024-01-01T22:04:05-05:00"), le<std::uint32_t>(1704164645));
  EXPECT_EQ(dt("1704164645", FieldType::number), le<std::uint32_t>(1704164645));
  EXPECT_EQ(dt("1704164645123", FieldType::number), le<std::uint32_t>(1704164645));  // milliseconds by magnitude
  EXPECT_EQ(dt("-1"), "rejected: column v (DateTime): field 'v' is \"-1\", out of range for DateTime (1970 to 2106)");
  EXPECT_EQ(dt("2024-13-01 00:00:00"),
            "rejected: column v (DateTime): field 'v' is \"2024-13-01 00:00:00\", not a time (unix "
            "seconds/milliseconds/microseconds/nanoseconds, or RFC 3339 text)");
  Column ms("DateTime64(3)");
  EXPECT_EQ(ms("2024-01-02T03:04:05.123Z"), le<std::int64_t>(1704164645123));
  EXPECT_EQ(ms("2024-01-02 03:04:05.1"), le<std::int64_t>(1704164645100));
  EXPECT_EQ(ms("1704164645.5"), le<std::int64_t>(1704164645500));        // seconds
  EXPECT_EQ(ms("1704164645123"), le<std::int64_t>(1704164645123));       // milliseconds
  EXPECT_EQ(ms("1704164645123456"), le<std::int64_t>(1704164645123));    // microseconds
  EXPECT_EQ(ms("1704164645123456789"), le<std::int64_t>(1704164645123)); // nanoseconds
  EXPECT_EQ(ms("1.7041646451e9"), le<std::int64_t>(1704164645100));
  EXPECT_EQ(ms("-1.5"), le<std::int64_t>(-1500));
  Column us("DateTime64(6, 'UTC')");
  EXPECT_EQ(us("2024-01-02T03:04:05.123456Z"), le<std::int64_t>(1704164645123456));
  EXPECT_EQ(us.wire_type(), "DateTime64(6, 'UTC')");
  // ClickHouse 18.16 has no DateTime64: the column is a DateTime of whole seconds.
  Column legacy("DateTime64(3)", ClickHouseDialect::legacy);
  EXPECT_EQ(legacy("2024-01-02T03:04:05.999Z"), le<std::uint32_t>(1704164645));
  EXPECT_EQ(legacy.wire_type(), "DateTime");
}

TEST(ColumnMapping, UuidAndAddresses) {
  const std::uint8_t uuid[] = {0xe7, 0x11, 0xb3, 0x5c, 0x04, 0xc4, 0xf0, 0x61,
                               0xa0, 0xdb, 0xd3, 0x6a, 0x00, 0xa6, 0x7b, 0x90};
  Column u("UUID");
  EXPECT_EQ(u("61f0c404-5cb3-11e7-907b-a6006ad3dba0"), std::string(reinterpret_cast<const char*>(uuid), 16));
  EXPECT_EQ(u("61F0C4045CB311E7907BA6006AD3DBA0"), std::string(reinterpret_cast<const char*>(uuid), 16));
  EXPECT_EQ(u("61f0c404-5cb3-11e7-907b"), "rejected: column v (UUID): field 'v' is \"61f0c404-5cb3-11e7-907b\", not a UUID");
  Column v4("IPv4");
  EXPECT_EQ(v4("1.2.3.4"), le<std::uint32_t>(0x01020304));
  EXPECT_EQ(v4("16909060", FieldType::number), le<std::uint32_t>(0x01020304));
  EXPECT_EQ(v4("1.2.3"), "rejected: column v (IPv4): field 'v' is \"1.2.3\", not an IPv4 address");
  EXPECT_EQ(Column("IPv4", ClickHouseDialect::legacy).wire_type(), "UInt32");
  Column v6("IPv6");
  EXPECT_EQ(v6("2001:db8::1"), std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
  EXPECT_EQ(v6("10.0.0.1"), std::string("\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\0\0\x01", 16));
  EXPECT_EQ(v6("2001:zz::1"), "rejected: column v (IPv6): field 'v' is \"2001:zz::1\", not an IP address");
  EXPECT_EQ(Column("IPv6", ClickHouseDialect::legacy).wire_type(), "FixedString(16)");
}

TEST(ColumnMapping, ArraysFromJsonArrays) {
  Column s("Array(String)");
  EXPECT_EQ(s(R"(["a", 1, true, null, {"x": [1, 2]}, 2.5])", FieldType::json),
            le<std::uint64_t>(6) + str("a") + str("1") + str("true") + str("") + str("{\"x\":[1,2]}") + str("2.5"));
  EXPECT_EQ(s("[]", FieldType::json), le<std::uint64_t>(0));
  EXPECT_EQ(s("[\"csv\"]"), le<std::uint64_t>(1) + str("csv"));  // JSON text in a string field
  EXPECT_EQ(s("a,b"), "rejected: column v (Array(String)): field 'v' is \"a,b\", not a JSON array");
  EXPECT_EQ(s(R"({"a":1})", FieldType::json),
            "rejected: column v (Array(String)): field 'v' is \"{\\\"a\\\":1}\", not a JSON array");
  Column i("Array(Int64)");
  EXPECT_EQ(i(R"([1, -2, 3.0, "4"])", FieldType::json),
            le<std::uint64_t>(4) + le<std::int64_t>(1) + le<std::int64_t>(-2) + le<std::int64_t>(3) + le<std::int64_t>(4));
  EXPECT_EQ(i("[1.5]", FieldType::json),
            "rejected: column v (Array(Int64)): field 'v' is \"[1.5]\", not a JSON array of integers");
  Column f("Array(Float64)");
  EXPECT_EQ(f(R"([1, 2.5, "-3"])", FieldType::json), le<std::uint64_t>(3) + le<double>(1) + le<double>(2.5) + le<double>(-3));
  EXPECT_EQ(f("[true]", FieldType::json),
            "rejected: column v (Array(Float64)): field 'v' is \"[true]\", not a JSON array of numbers");
  // Offsets are running totals across rows; a missing field is an empty array.
  MappingSpec spec = spec_of({{"v", "Array(Int64)", "", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
  LogEvent e;
  e.set("v", "[7,8]", FieldType::json);
  ASSERT_FALSE(w->append(e, {}));
  ASSERT_FALSE(w->append(LogEvent{}, {}));
  e.set("v", "[9]", FieldType::json);
  ASSERT_FALSE(w->append(e, {}));
  EXPECT_EQ(one_column(w->take().body).data, le<std::uint64_t>(2) + le<std::uint64_t>(2) + le<std::uint64_t>(3) +
                                                 le<std::int64_t>(7) + le<std::int64_t>(8) + le<std::int64_t>(9));
}

TEST(ColumnMapping, MapFromJsonObjectAndLegacyNestedPair) {
  Column m("Map(String,String)");
  EXPECT_EQ(m(R"({"a": "x", "b": 2, "c": null, "d": [1]})", FieldType::json),
            le<std::uint64_t>(4) + str("a") + str("b") + str("c") + str("d") + str("x") + str("2") + str("") + str("[1]"));
  EXPECT_EQ(m("[1]", FieldType::json), "rejected: column v (Map(String, String)): field 'v' is \"[1]\", not a JSON object");
  EXPECT_EQ(m.wire_type(), "Map(String, String)");

  MappingSpec spec = spec_of({{"m", "Map(String, String)", "", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::legacy)->make_writer();
  LogEvent e;
  e.set("m", R"({"k":"v"})", FieldType::json);
  ASSERT_FALSE(w->append(e, {}));
  const auto body = w->take().body;
  std::string_view s = body;
  EXPECT_EQ(read_varint(s), 2u);
  EXPECT_EQ(read_varint(s), 1u);
  EXPECT_EQ(read_str(s), "m.Key");
  EXPECT_EQ(read_str(s), "Array(String)");
  EXPECT_EQ(std::string(s.substr(0, 8 + 2)), le<std::uint64_t>(1) + str("k"));
  s.remove_prefix(10);
  EXPECT_EQ(read_str(s), "m.Value");
  EXPECT_EQ(read_str(s), "Array(String)");
  EXPECT_EQ(std::string(s), le<std::uint64_t>(1) + str("v"));
}

TEST(ColumnMapping, StarMapTakesEveryFieldNoOtherColumnTakes) {
  MappingSpec spec = spec_of(
                   {{"host", "String", "", std::nullopt, false},
                    {"t", "String", "_topic", std::nullopt, false},
                    {"rest", "Map(String, String)", "*", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
  LogEvent e;
  e.set("a", "1", FieldType::number);
  e.set("host", "web-1");
  e.set("_topic", "shadowed");  // the column takes the message's topic; the field is not "other"
  e.set("b", "x y");
  ASSERT_FALSE(w->append(e, {"events", 0, 0, "", 0}));
  const auto body = w->take().body;
  std::string expected;
  put_varint(expected, 3);
  put_varint(expected, 1);
  put_native_column_header(expected, "host", "String");
  expected += str("web-1");
  put_native_column_header(expected, "t", "String");
  expected += str("events");
  put_native_column_header(expected, "rest", "Map(String, String)");
  expected += le<std::uint64_t>(2) + str("a") + str("b") + str("1") + str("x y");
  EXPECT_EQ(body, expected);
}

TEST(ColumnMapping, MissingFieldsTakeTheDefaultOrZeroUnlessRequired) {
  EXPECT_EQ(Column("UInt64", ClickHouseDialect::modern, "42").missing(), le<std::uint64_t>(42));
  EXPECT_EQ(Column("UInt64", ClickHouseDialect::modern, "42")("", FieldType::string), le<std::uint64_t>(42));
  EXPECT_EQ(Column("UInt64", ClickHouseDialect::modern, "42")("", FieldType::null), le<std::uint64_t>(42));
  EXPECT_EQ(Column("String", ClickHouseDialect::modern, "n/a").missing(), str("n/a"));
  EXPECT_EQ(Column("String", ClickHouseDialect::modern, "n/a")(""), str(""));  // an empty string is a value
  EXPECT_EQ(Column("DateTime64(3)", ClickHouseDialect::modern, "2024-01-02T03:04:05Z").missing(),
            le<std::int64_t>(1704164645000));
  EXPECT_EQ(Column("UInt32").missing(), le<std::uint32_t>(0));
  EXPECT_EQ(Column("String").missing(), str(""));
  EXPECT_EQ(Column("UUID").missing(), std::string(16, '\0'));
  EXPECT_EQ(Column("Array(String)").missing(), le<std::uint64_t>(0));
  EXPECT_EQ(Column("FixedString(3)").missing(), std::string(3, '\0'));
  Column req("UInt64", ClickHouseDialect::modern, std::nullopt, true);
  EXPECT_EQ(req.missing(), "rejected: column v (UInt64): field 'v' is missing and the column is required");
  EXPECT_EQ(req("", FieldType::null), "rejected: column v (UInt64): field 'v' is null and the column is required");
  EXPECT_EQ(req(""), "rejected: column v (UInt64): field 'v' is empty and the column is required");
  EXPECT_EQ(req("5"), le<std::uint64_t>(5));
}

TEST(ColumnMapping, NullableWritesNullForMissingAndNullFields) {
  Column n("Nullable(UInt32)");
  EXPECT_EQ(n.missing(), le<std::uint8_t>(1) + le<std::uint32_t>(0));
  EXPECT_EQ(n("", FieldType::null), le<std::uint8_t>(1) + le<std::uint32_t>(0));
  EXPECT_EQ(n("7", FieldType::number), le<std::uint8_t>(0) + le<std::uint32_t>(7));
  EXPECT_EQ(n("x"), "rejected: column v (Nullable(UInt32)): field 'v' is \"x\", not an integer");
  EXPECT_EQ(n.wire_type(), "Nullable(UInt32)");
  Column s("Nullable(String)");
  EXPECT_EQ(s.missing(), le<std::uint8_t>(1) + str(""));
  EXPECT_EQ(s("a"), le<std::uint8_t>(0) + str("a"));
  // A default fills a missing field; a null stays NULL.
  Column d("Nullable(Int8)", ClickHouseDialect::modern, "-1");
  EXPECT_EQ(d.missing(), le<std::uint8_t>(0) + le<std::int8_t>(-1));
  EXPECT_EQ(d("", FieldType::null), le<std::uint8_t>(1) + le<std::int8_t>(0));
  Column r("Nullable(Int8)", ClickHouseDialect::modern, std::nullopt, true);
  EXPECT_EQ(r.missing(), "rejected: column v (Nullable(Int8)): field 'v' is missing and the column is required");
  EXPECT_EQ(r("", FieldType::null), le<std::uint8_t>(1) + le<std::int8_t>(0));
  EXPECT_EQ(Column("Nullable(IPv6)", ClickHouseDialect::legacy).wire_type(), "Nullable(FixedString(16))");
}

TEST(ColumnMapping, MessageFieldsComeFromTheMessage) {
  MappingSpec spec = spec_of(
                   {{"topic", "LowCardinality(String)", "_topic", std::nullopt, false},
                    {"partition", "Int32", "_partition", std::nullopt, false},
                    {"offset", "UInt64", "_offset", std::nullopt, false},
                    {"key", "String", "_key", std::nullopt, false},
                    {"ts", "DateTime64(3)", "_timestamp", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
  ASSERT_FALSE(w->append(LogEvent{}, {"events", 3, 12345, "k1", 1704164645123}));
  std::string expected;
  put_varint(expected, 5);
  put_varint(expected, 1);
  put_native_column_header(expected, "topic", "LowCardinality(String)");
  expected += lc_one("events");
  put_native_column_header(expected, "partition", "Int32");
  expected += le<std::int32_t>(3);
  put_native_column_header(expected, "offset", "UInt64");
  expected += le<std::uint64_t>(12345);
  put_native_column_header(expected, "key", "String");
  expected += str("k1");
  put_native_column_header(expected, "ts", "DateTime64(3)");
  expected += le<std::int64_t>(1704164645123);
  EXPECT_EQ(w->take().body, expected);
}

TEST(ColumnMapping, ARejectedRowLeavesNothingBehind) {
  MappingSpec spec = spec_of(
                   {{"a", "String", "", std::nullopt, false},
                    {"tags", "Array(String)", "", std::nullopt, false},
                    {"n", "Nullable(UInt8)", "", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
  LogEvent bad;
  bad.set("a", "first");
  bad.set("tags", "[\"x\"]", FieldType::json);
  bad.set("n", "999", FieldType::number);
  auto r = w->append(bad, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, "column n (Nullable(UInt8)): field 'n' is \"999\", out of range");
  EXPECT_EQ(w->rows(), 0u);
  EXPECT_EQ(w->bytes(), 0u);
  LogEvent good;
  good.set("a", "second");
  good.set("n", "9");
  ASSERT_FALSE(w->append(good, {}));
  EXPECT_EQ(w->rows(), 1u);
  const auto req = w->take();
  EXPECT_EQ(req.table, "t");
  EXPECT_EQ(req.format, "Native");
  EXPECT_EQ(req.rows, 1u);
  std::string expected;
  put_varint(expected, 3);
  put_varint(expected, 1);
  put_native_column_header(expected, "a", "String");
  expected += str("second");
  put_native_column_header(expected, "tags", "Array(String)");
  expected += le<std::uint64_t>(0);
  put_native_column_header(expected, "n", "Nullable(UInt8)");
  expected += le<std::uint8_t>(0) + le<std::uint8_t>(9);
  EXPECT_EQ(req.body, expected);
  EXPECT_EQ(w->rows(), 0u);
}

TEST(ColumnMapping, FieldsAreFoundWhateverTheirOrderFromRecordToRecord) {
  MappingSpec spec = spec_of({{"a", "UInt8", "", std::nullopt, false}, {"b", "String", "", std::nullopt, false}});
  auto w = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
  LogEvent e;
  e.set("a", "1");
  e.set("b", "x");
  ASSERT_FALSE(w->append(e, {}));
  e.clear();
  e.set("b", "y");
  e.set("other", "z");
  e.set("a", "2");
  ASSERT_FALSE(w->append(e, {}));
  e.clear();
  e.set("other", "z");
  ASSERT_FALSE(w->append(e, {}));
  std::string expected;
  put_varint(expected, 2);
  put_varint(expected, 3);
  put_native_column_header(expected, "a", "UInt8");
  expected += le<std::uint8_t>(1) + le<std::uint8_t>(2) + le<std::uint8_t>(0);
  put_native_column_header(expected, "b", "String");
  expected += str("x") + str("y") + str("");
  EXPECT_EQ(w->take().body, expected);
}

TEST(ColumnMapping, RejectionShowsAtMostAHundredBytesOfTheValue) {
  const std::string long_value(300, '7');
  EXPECT_EQ(Column("UInt8")(long_value),
            "rejected: column v (UInt8): field 'v' is \"" + std::string(100, '7') + "\"..., not an integer");
}

TEST(ColumnMapping, CompileRefusesWhatItCannotWrite) {
  EXPECT_THROW(compile_mapping(spec_of({{"v", "Uint64", "", std::nullopt, false}}), ClickHouseDialect::modern),
               std::runtime_error);
  EXPECT_THROW(compile_mapping(spec_of({{"v", "String", "*", std::nullopt, false}}), ClickHouseDialect::modern),
               std::runtime_error);
  EXPECT_THROW(compile_mapping(spec_of({{"v", "String", "", std::nullopt, false}, {"v", "UInt8", "", std::nullopt, false}}),
                               ClickHouseDialect::modern),
               std::runtime_error);
  EXPECT_THROW(compile_mapping(spec_of({{"v", "Nullable(Array(String))", "", std::nullopt, false}}),
                               ClickHouseDialect::modern),
               std::runtime_error);
}

TEST(ColumnTypes, SpellingsAndComparison) {
  EXPECT_EQ(parse_column_type("Map( String ,String )")->name(), "Map(String, String)");
  EXPECT_EQ(parse_column_type("Nullable(DateTime64(3,'Europe/Berlin'))")->name(), "Nullable(DateTime64(3, 'Europe/Berlin'))");
  EXPECT_EQ(parse_column_type("DateTime('UTC')")->table_type(ClickHouseDialect::legacy), "DateTime('UTC')");
  EXPECT_EQ(parse_column_type("Bool")->table_type(ClickHouseDialect::legacy), "UInt8");
  EXPECT_EQ(parse_column_type("LowCardinality(String)")->table_type(ClickHouseDialect::legacy), "String");
  EXPECT_FALSE(parse_column_type("LowCardinality(UInt8)"));
  EXPECT_FALSE(parse_column_type("DateTime64(10)"));
  EXPECT_FALSE(parse_column_type("Nullable(Map(String, String))"));
  EXPECT_TRUE(same_column_type("DateTime64(3, 'UTC')", "DateTime64(3)"));
  EXPECT_FALSE(same_column_type("DateTime64(6)", "DateTime64(3)"));
  EXPECT_FALSE(same_column_type("Int32", "UInt64"));
  EXPECT_TRUE(same_column_type("Decimal(9, 2)", "Decimal(9, 2)"));
}

std::vector<std::string> spec_errors(const std::string& yaml, MappingSpec* out = nullptr) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto jobs = root.list("jobs");
  auto mapping = jobs.at(0).child("mapping");
  auto spec = read_mapping_spec(mapping);
  if (out) *out = spec;
  try {
    root.check();
  } catch (const config::ConfigError& e) {
    return e.errors();
  }
  return {};
}

TEST(ColumnMappingSpec, ReadsEveryKey) {
  MappingSpec spec;
  EXPECT_EQ(spec_errors(R"y(
jobs:
  - mapping:
      table: events
      create: false
      engine: ReplacingMergeTree
      order_by: [host, ts]
      partition_by: toYYYYMM(ts)
      ttl: ts + INTERVAL 7 DAY
      columns:
        - {name: ts, type: "DateTime64(3)", from: time, required: true}
        - {name: host, type: "LowCardinality( String )", default: unknown}
        - {name: extra, type: "Map(String,String)", from: "*"}
)y", &spec),
            std::vector<std::string>{});
  EXPECT_EQ(spec.table, "events");
  EXPECT_FALSE(spec.create);
  EXPECT_EQ(spec.engine, "ReplacingMergeTree");
  EXPECT_EQ(spec.order_by, (std::vector<std::string>{"host", "ts"}));
  EXPECT_EQ(spec.partition_by, "toYYYYMM(ts)");
  EXPECT_EQ(spec.ttl, "ts + INTERVAL 7 DAY");
  ASSERT_EQ(spec.columns.size(), 3u);
  EXPECT_EQ(spec.columns[0].from, "time");
  EXPECT_TRUE(spec.columns[0].required);
  EXPECT_EQ(spec.columns[1].type, "LowCardinality(String)");
  EXPECT_EQ(spec.columns[1].from, "host");
  EXPECT_EQ(spec.columns[1].default_value, "unknown");
  EXPECT_EQ(spec.columns[2].type, "Map(String, String)");
  EXPECT_EQ(spec.columns[2].from, "*");
}

TEST(ColumnMappingSpec, ErrorsNameTheirKeyPaths) {
  const auto errors = spec_errors(R"y(
jobs:
  - mapping:
      colour: blue
      columns:
        - {name: a, type: String}
        - {name: a, type: UInt8}
        - {name: b, type: Uint64}
        - {name: c, type: String, from: "*"}
        - {name: d, type: UInt8, default: "300"}
        - {name: e, type: UInt8, default: "1", required: true}
        - {name: f}
        - {name: g, type: String, nullable: true}
)y");
  const std::vector<std::string> expected = {
      "jobs[0].mapping.table: is required: the ClickHouse table the job writes to",
      "jobs[0].mapping.columns[1].name: column \"a\" is mapped twice (also columns[0])",
      std::string("jobs[0].mapping.columns[2].type: \"Uint64\" is not a supported type (supported: ") +
          supported_types_text() + ")",
      "jobs[0].mapping.columns[3].from: \"*\" (every field no other column takes) needs a Map(String, String) column, "
      "not String",
      "jobs[0].mapping.columns[4].default: column d (UInt8): the default \"300\" is out of range",
      "jobs[0].mapping.columns[5].required: a required column cannot have a default (which one should a missing field "
      "get?)",
      "jobs[0].mapping.columns[6].type: is required",
      "jobs[0].mapping.columns[7].nullable: unknown key (known keys here: default, from, name, required, type)",
      "jobs[0].mapping.colour: unknown key (known keys here: columns, create, engine, order_by, partition_by, table, "
      "ttl)",
  };
  EXPECT_EQ(errors, expected);
}

}  // namespace
}  // namespace sluice::pipeline::jobs
