#!/usr/bin/python3
"""Writes the seed corpus of the sflow fuzzer (tests/fuzz/corpus/sflow/): hand-built sFlow v5
datagrams with flow and expanded flow samples whose raw headers are Ethernet/IPv4/TCP, 802.1Q IPv6/UDP,
QinQ ICMP, MPLS, VXLAN and IPv4/IPv6 header protocols, extended switch/router/gateway records, sampled
IPv4/IPv6 records, counter samples, an IPv6 agent and a truncated datagram, so fuzzing starts from
inputs that reach every branch. The corpus also holds pmacctd-sfprobe-*, datagrams captured from
pmacctd 1.7.7's sfprobe plugin, which this script does not write."""

import os
import struct
import sys


def u32(*v):
    return struct.pack("!%dI" % len(v), *v)


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def rec(fmt, body):
    return u32(fmt, len(body)) + body


def eth(etype, tags=()):
    b = bytes.fromhex("020000000002020000000001")
    for tpid, vid in tags:
        b += struct.pack("!HH", tpid, vid)
    return b + struct.pack("!H", etype)


def ipv4(proto, payload, tos=0x28):
    return struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), 1, 0, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([192, 0, 2, 7])) + payload


def ipv6(nxt, payload):
    return struct.pack("!IHBB16s16s", (6 << 28) | (0xb8 << 20) | 0x12345, len(payload), nxt, 64,
                       bytes.fromhex("20010db8000000000000000000000001"),
                       bytes.fromhex("20010db8000000000000000000000002")) + payload


def tcp(sport=40000, dport=443):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 65535, 0, 0)


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def raw_header(pkt, proto=1, frame=None):
    return rec(1, u32(proto, frame or len(pkt) + 4, 4, len(pkt)) + pad(pkt))


def flow_sample(records, rate=1000, inp=3, out=7):
    return rec(1, u32(1, 3, rate, rate * 10, 0, inp, out, len(records)) + b"".join(records))


def expanded(records, rate=2048):
    return rec(3, u32(1, 0, 3, rate, rate * 10, 0, 0, 1234567890, 0, 9, len(records)) + b"".join(records))


def datagram(samples, agent=u32(1) + bytes([192, 0, 2, 1])):
    return u32(5) + agent + u32(0, 1, 86400000, len(samples)) + b"".join(samples)


SWITCH = rec(1001, u32(10, 0, 20, 0))
ROUTER = rec(1002, u32(1) + bytes([192, 0, 2, 254]) + u32(24, 16))
GATEWAY = rec(1003, u32(1) + bytes([192, 0, 2, 9]) + u32(64496, 64497, 64498, 2, 2, 2, 64510, 64511, 1, 2, 64512, 64513,
                                                      2, 0xFBF00001, 0xFBF00002, 100))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "sflow")
    os.makedirs(out, exist_ok=True)
    inner = eth(0x0800) + ipv4(6, tcp(33000, 8080))
    mpls = struct.pack("!II", (16000 << 12) | 64, (3 << 12) | 0x100 | 64)
    seeds = {
        "ipv4-tcp": datagram([flow_sample([SWITCH, raw_header(eth(0x0800) + ipv4(6, tcp()))])]),
        "ipv6-udp-vlan": datagram([flow_sample([raw_header(eth(0x86DD, [(0x8100, 100)]) + ipv6(17, udp(5353, 53)))])]),
        "qinq-icmp": datagram([flow_sample([raw_header(eth(0x0800, [(0x88A8, 200), (0x8100, 30)]) + ipv4(1, bytes([3, 3, 0, 0, 0, 0, 0, 0])))])]),
        "mpls": datagram([flow_sample([raw_header(eth(0x8847) + mpls + ipv4(17, udp(1000, 2000)))])]),
        "vxlan": datagram([flow_sample([raw_header(eth(0x0800) + ipv4(17, udp(51000, 4789, bytes([8, 0, 0, 0, 0, 0x12, 0x34, 0]) + inner)))])]),
        "header-ipv4-ipv6": datagram([flow_sample([raw_header(ipv4(6, tcp()), 11)]),
                                      flow_sample([raw_header(ipv6(0, bytes([6, 0, 0, 0, 0, 0, 0, 0]) + tcp()), 12)])]),
        "expanded-gateway": datagram([expanded([GATEWAY, ROUTER, SWITCH, raw_header(eth(0x0800) + ipv4(6, tcp()))])]),
        "sampled-ip": datagram([flow_sample([rec(3, u32(576, 17, 0x0A000001, 0x0A000002, 123, 124, 0, 0x20))]),
                                flow_sample([rec(2, u32(1300) + bytes(16) + u32(0x86DD)),
                                             rec(4, u32(1280, 6) + bytes(32) + u32(443, 50000, 0x11, 0x0C))])]),
        "counters": datagram([rec(2, u32(1, 3, 1, 1, 4, 7, 8)), rec(4, u32(1, 0, 3, 0)),
                              flow_sample([rec((4300 << 12) | 1, u32(1))])]),
        "agent-ipv6": datagram([flow_sample([])], agent=u32(2) + bytes.fromhex("20010db8000000000000000000000007")),
    }
    seeds["truncated"] = seeds["expanded-gateway"][:-30]
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
