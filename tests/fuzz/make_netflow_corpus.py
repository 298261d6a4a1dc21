#!/usr/bin/python3
"""Writes the seed corpus of the netflow fuzzer (tests/fuzz/corpus/netflow/): valid NetFlow v5
datagrams of 1, 2 and 30 records (sampled and not, uptime wrapped), a truncated one, and bare
v9/IPFIX headers, so fuzzing starts from inputs that reach every branch of the dispatcher. The corpus also holds
softflowd-v5-sampled, one datagram captured from softflowd 1.1.0 (-v 5 -s 4), which this script
does not write."""

import os
import struct
import sys


def header(count, uptime=3_600_000, secs=1_700_000_000, nsecs=500_000_000, seq=1, sampling=0, version=5):
    return struct.pack("!HHIIIIBBH", version, count, uptime, secs, nsecs, seq, 0, 0, sampling)


def record(i, first=3_590_000, last=3_599_000):
    return struct.pack("!IIIHHIIIIHHBBBBHHBBH",
                       0x0A000001 + i, 0xC0A80001 + i, 0x0A0000FE, 1 + i, 2 + i, 3 + i, 1500 * (i + 1),
                       first, last, 1024 + i, 443, 0, 0x1B, (6, 17, 1)[i % 3], 0xB8, 64512, 15169, 24, 16, 0)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "netflow")
    os.makedirs(out, exist_ok=True)
    seeds = {
        "v5-one-record": header(1) + record(0),
        "v5-two-records-sampled": header(2, sampling=0x4000 | 100) + record(0) + record(1),
        "v5-thirty-records": header(30, seq=99) + b"".join(record(i) for i in range(30)),
        "v5-uptime-wrapped": header(1, uptime=1_000) + record(0, first=0xFFFFF000, last=500),
        "v5-truncated": (header(3) + record(0) + record(1))[:-5],
        "v9-header": struct.pack("!HHIIII", 9, 1, 3_600_000, 1_700_000_000, 1, 0),
        "ipfix-header": struct.pack("!HHIII", 10, 16, 1_700_000_000, 1, 0),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
