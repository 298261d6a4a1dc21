// Helpers of the ingestion-job end-to-end tests: payloads made by real tools (kcat, protoc, Apache Avro).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fixtures/etcd_server.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing::jobs_e2e {

// One JSON object per line, ids [first, first + n): {"id":…, "host":"h<id%7>", "bytes":id*3, "ratio":id/4}.
inline std::string json_events(std::uint64_t first, std::uint64_t n) {
  std::string out;
  for (std::uint64_t id = first; id < first + n; ++id) {
    out += "{\"id\":" + std::to_string(id) + ",\"host\":\"h" + std::to_string(id % 7) + "\",\"bytes\":" +
           std::to_string(id * 3) + ",\"ratio\":" + std::to_string(static_cast<double>(id) / 4) +
           ",\"meta\":{\"region\":\"r" + std::to_string(id % 3) + "\"}}\n";
  }
  return out;
}

// Each line of `lines` becomes one message (kcat -l).
inline void produce_lines(const MockKafka& kafka, const std::string& topic, const std::string& lines, const TempDir& dir) {
  static int sequence = 0;
  const auto file = dir / ("lines-" + std::to_string(++sequence) + ".txt");
  write_file(file, lines);
  auto r = run_command({"kcat", "-P", "-b", kafka.bootstrap(), "-t", topic, "-l", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// Each file becomes one message (kcat -P with file arguments), for binary payloads.
inline void produce_files(const MockKafka& kafka, const std::string& topic, const std::vector<std::string>& files) {
  std::vector<std::string> argv{"kcat", "-P", "-b", kafka.bootstrap(), "-t", topic};
  argv.insert(argv.end(), files.begin(), files.end());
  auto r = run_command(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

inline const char* kEventAvsc = R"({"type":"record","name":"Event","namespace":"demo","fields":[
  {"name":"id","type":"long"},{"name":"host","type":"string"},{"name":"bytes","type":"long"},
  {"name":"ratio","type":"double"},{"name":"meta","type":{"type":"record","name":"Meta","fields":[
    {"name":"region","type":"string"}]}}]})";

// Writes Confluent-framed Avro datums (schema id `schema_id`) made by the Apache Avro Python library,
// one file per record; returns the files.
inline std::vector<std::string> avro_events(const TempDir& dir, std::uint64_t first, std::uint64_t n, int schema_id) {
  write_file(dir / "event.avsc", kEventAvsc);
  write_file(dir / "encode_avro.py", R"(import io, json, struct, sys
import avro.schema, avro.io
schema = avro.schema.parse(open(sys.argv[1]).read())
out, first, n, sid = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
writer = avro.io.DatumWriter(schema)
for i in range(first, first + n):
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", sid))
    writer.write({"id": i, "host": "h%d" % (i % 7), "bytes": i * 3, "ratio": i / 4, "meta": {"region": "r%d" % (i % 3)}},
                 avro.io.BinaryEncoder(buf))
    open("%s/avro-%d.bin" % (out, i), "wb").write(buf.getvalue())
)");
  auto r = run_command({"/usr/bin/python3", dir / "encode_avro.py", dir / "event.avsc", dir.path(), std::to_string(first),
                        std::to_string(n), std::to_string(schema_id)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files;
  for (std::uint64_t i = first; i < first + n; ++i) files.push_back(dir / ("avro-" + std::to_string(i) + ".bin"));
  return files;
}

inline const char* kEventProto = R"(syntax = "proto3";
package demo;
message Meta { string region = 1; }
message Event {
  uint64 id = 1;
  string host = 2;
  uint64 bytes = 3;
  double ratio = 4;
  Meta meta = 5;
}
)";

// Writes the descriptor set (protoc) and one protoc-encoded message per record; returns the files.
inline std::vector<std::string> protobuf_events(const TempDir& dir, std::uint64_t first, std::uint64_t n) {
  write_file(dir / "event.proto", kEventProto);
  auto d = run_command({"protoc", "--proto_path=" + dir.path(), "--include_imports",
                        "--descriptor_set_out=" + (dir / "event.desc"), dir / "event.proto"});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  // One shell for all records: protoc --encode reads text format on stdin.
  std::string script = "set -e\n";
  for (std::uint64_t i = first; i < first + n; ++i) {
    script += "printf 'id: " + std::to_string(i) + " host: \"h" + std::to_string(i % 7) + "\" bytes: " +
              std::to_string(i * 3) + " ratio: " + std::to_string(static_cast<double>(i) / 4) + " meta { region: \"r" +
              std::to_string(i % 3) + "\" }' | protoc --proto_path=" + dir.path() + " --encode=demo.Event " +
              (dir / "event.proto") + " > " + (dir / ("proto-" + std::to_string(i) + ".bin")) + "\n";
  }
  write_file(dir / "encode_proto.sh", script);
  auto r = run_command({"/bin/sh", dir / "encode_proto.sh"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files;
  for (std::uint64_t i = first; i < first + n; ++i) files.push_back(dir / ("proto-" + std::to_string(i) + ".bin"));
  return files;
}

// The columns every test job writes, with `host_from` as the source of `host`.
inline std::string event_columns(const std::string& host_from = "host") {
  return "    columns:\n"
         "      - {name: id, type: UInt64, required: true}\n"
         "      - {name: host, type: LowCardinality(String), from: " + host_from + "}\n"
         "      - {name: bytes, type: UInt64, required: true}\n"
         "      - {name: ratio, type: Float64}\n"
         "      - {name: region, type: String, from: meta.region}\n"
         "      - {name: topic, type: String, from: _topic}\n";
}

}  // namespace sluice::testing::jobs_e2e
