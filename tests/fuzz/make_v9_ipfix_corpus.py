#!/usr/bin/python3
"""Writes hand-built seeds for the netflow_v9, ipfix and template_cache fuzzers
(tests/fuzz/corpus/<name>/): a template and its data in one datagram, options data with sampling
rates, variable-length and enterprise fields, withdrawals, padding, and a serialized template cache.
The corpora also hold softflowd-* seeds, datagrams captured from softflowd 1.1.0 (-v 9 / -v 10,
IPv4 with VLANs and IPv6, sampled and not), which this script does not write."""

import os
import struct
import sys


def fset(set_id, body):
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def v9(source_id, *sets):
    return struct.pack("!HHIIII", 9, len(sets), 3_600_000, 1_700_000_000, 1, source_id) + b"".join(sets)


def ipfix(domain, *sets):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000, 1, domain) + body


def fields(*pairs):
    return b"".join(struct.pack("!HH", t, l) for t, l in pairs)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    v4 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (22, 4), (21, 4), (58, 2), (48, 1)]
    rec = struct.pack("!IIHHBIIIIHB", 0x0A000001, 0xC0A80001, 1234, 443, 6, 1500, 3, 3_590_000, 3_599_000, 100, 1)
    v9_seeds = {
        "v9-template-and-data": v9(1, fset(0, struct.pack("!HH", 256, len(v4)) + fields(*v4)), fset(256, rec * 3 + b"\0\0")),
        "v9-data-before-template": v9(1, fset(256, rec), fset(0, struct.pack("!HH", 256, len(v4)) + fields(*v4))),
        "v9-options-sampler": v9(1, fset(1, struct.pack("!HHH", 257, 4, 8) + fields((1, 4), (48, 1), (50, 4)) + b"\0\0"),
                                 fset(257, struct.pack("!IBI", 0, 1, 100) + b"\0\0\0"),
                                 fset(0, struct.pack("!HH", 256, len(v4)) + fields(*v4)), fset(256, rec)),
        "v9-ipv6-mpls-nat": v9(2, fset(0, struct.pack("!HH", 300, 6) + fields((27, 16), (28, 16), (70, 3), (71, 3), (225, 4), (227, 2))),
                               fset(300, bytes(range(32)) + b"\x03\xe8\x00\x03\xe9\x01" + b"\xc6\x33\x64\x01\x04\x00")),
    }
    t300 = struct.pack("!HH", 300, 4) + fields((1, 4), (82, 0xFFFF)) + struct.pack("!HHI", 0x8001, 0xFFFF, 9) + fields((2, 4))
    ipfix_seeds = {
        "ipfix-varlen-enterprise": ipfix(1, fset(2, t300),
                                         fset(300, struct.pack("!I", 7) + b"\x04eth0" + b"\xff\x00\x03abc" + struct.pack("!I", 1) + b"\0")),
        "ipfix-selector-options": ipfix(7, fset(3, struct.pack("!HHH", 400, 3, 1) + fields((302, 8), (305, 4), (306, 4))),
                                        fset(400, struct.pack("!QII", 1, 1, 99)),
                                        fset(2, struct.pack("!HH", 256, 3) + fields((1, 4), (302, 8), (152, 8))),
                                        fset(256, struct.pack("!IQQ", 9, 1, 1_700_000_000_000))),
        "ipfix-withdrawals": ipfix(1, fset(2, struct.pack("!HH", 256, 1) + fields((1, 4))), fset(2, struct.pack("!HHHH", 256, 0, 2, 0)),
                                   fset(3, struct.pack("!HH", 3, 0)), fset(256, struct.pack("!I", 5))),
        "ipfix-init-time": ipfix(1, fset(3, struct.pack("!HHH", 500, 2, 1) + fields((149, 4), (160, 8))),
                                 fset(500, struct.pack("!IQ", 1, 1_699_999_000_000)),
                                 fset(2, struct.pack("!HH", 256, 4) + fields((22, 4), (21, 4), (27, 16), (158, 4))),
                                 fset(256, struct.pack("!II", 1000, 2000) + bytes(16) + struct.pack("!I", 5))),
    }
    cache_seeds = {
        "serialized": b"SLTC\x01" + b"\x01" + bytes(10) + b"\xff\xff\xc0\x00\x02\x01" + struct.pack("!QBHH", (9 << 48) | 256, 0, 0, 2)
        + struct.pack("!HHIHHI", 1, 4, 0, 2, 4, 0)
        + b"\x02" + bytes(10) + b"\xff\xff\xc0\x00\x02\x01" + struct.pack("!HIBQQ", 9, 0, 1, 5, 100)
        + b"\x03" + bytes(10) + b"\xff\xff\xc0\x00\x02\x01" + struct.pack("!Q", 64)
        + b"\x04" + bytes(10) + b"\xff\xff\xc0\x00\x02\x01" + struct.pack("!HIQ", 10, 1, 1_699_999_000_000),
        "ops-template-hold-release": bytes([4, 0, 1, 10, 20, 0, 0, 1, 5, 3, 0, 1, 0, 4, 0, 2, 0, 4]),
        "ops-evict-and-expire": bytes([0, 0, 0, 1, 0, 0, 1, 0, 4, 32, 0, 1, 1, 0, 0, 1, 0, 4, 64, 0, 2, 1, 0, 0, 1, 0, 4,
                                       96, 0, 3, 1, 0, 0, 1, 0, 4, 4, 0, 5, 1, 100, 5, 0, 0, 200, 6, 1, 1, 1, 3, 0, 64, 7, 1, 1, 1, 3]),
    }
    for name, seeds in (("netflow_v9", v9_seeds), ("ipfix", ipfix_seeds), ("template_cache", cache_seeds)):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for seed, data in seeds.items():
            with open(os.path.join(root, name, seed), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
