#!/usr/bin/python3
"""Writes a deterministic traffic pcap for flow exporter tests, and prints its ground truth as JSON.

usage: gen_traffic.py OUT.pcap --flows N --seed S [--ipv6] [--vlan] [--start UNIX] [--spread SECONDS]

Each flow is one direction of a TCP, UDP or ICMP conversation between varied hosts and ports, with
several packets of varied sizes spread over a few seconds. Directional 5-tuples are unique, so an
exporter that keeps them apart reports one record per flow. The summary gives totals and, per flow,
the times of its first and last packets, packets and bytes counted as IP bytes (IPv4 total length, or IPv6 payload length + 40, as exporters
count them) plus the frame bytes on the wire. For ICMP the ports are 0 and type*256+code, the way
NetFlow exporters report them.
"""

import argparse
import json
import random
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

WELL_KNOWN = [22, 25, 53, 80, 123, 443, 993, 3306, 5432, 8080, 8443]


def host_pools(rng, ipv6):
    """Clients and servers from a few distinct networks, so addresses vary in every octet."""
    if ipv6:
        clients = ["2001:db8:%x::%x" % (rng.randrange(1, 0xFFFF), rng.randrange(1, 0xFFFF)) for _ in range(300)]
        servers = ["2001:db8:ffff:%x::%x" % (rng.randrange(1, 0xFFFF), rng.randrange(1, 0xFFFF)) for _ in range(80)]
    else:
        nets = ["10.%d.%d.%d", "172.16.%d.%d", "192.168.%d.%d", "198.51.100.%d"]
        clients = []
        for _ in range(300):
            pattern = rng.choice(nets)
            octets = tuple(rng.randrange(1, 255) for _ in range(pattern.count("%d")))
            clients.append(pattern % octets)
        servers = ["203.0.113.%d" % i for i in range(1, 60)] + ["100.64.%d.%d" % (rng.randrange(256), rng.randrange(1, 255)) for _ in range(40)]
    return sorted(set(clients)), sorted(set(servers))


def make_flows(rng, count, ipv6):
    clients, servers = host_pools(rng, ipv6)
    seen = set()
    flows = []
    while len(flows) < count:
        proto = rng.choices([6, 17, 58 if ipv6 else 1], weights=[55, 35, 10])[0]
        src, dst = rng.choice(clients), rng.choice(servers)
        if rng.random() < 0.3:  # some traffic flows server → client
            src, dst = dst, src
        if proto in (1, 58):
            icmp_type, icmp_code = (128, 0) if ipv6 else rng.choice([(8, 0), (0, 0), (3, 3), (11, 0)])
            sport, dport = 0, icmp_type * 256 + icmp_code
        else:
            sport, dport = rng.randrange(1024, 65535), rng.choice(WELL_KNOWN)
            icmp_type = icmp_code = None
        key = (src, dst, proto, sport, dport)
        if key in seen:
            continue
        seen.add(key)
        flows.append({"key": key, "icmp": (icmp_type, icmp_code), "packets": rng.randrange(1, 9),
                      "tos": rng.choice([0, 0, 0, 0x10, 0x28, 0xb8])})
    return flows


def build_packet(flow, index, last, payload_len, ipv6, vlan):
    src, dst, proto, sport, dport = flow["key"]
    if ipv6:
        ip = IPv6(src=src, dst=dst, tc=flow["tos"], hlim=64)
    else:
        ip = IP(src=src, dst=dst, tos=flow["tos"], ttl=64, id=index & 0xFFFF)
    if proto == 6:
        flags = "S" if index == 0 else ("FA" if last and index > 0 else "PA")
        l4 = TCP(sport=sport, dport=dport, flags=flags, seq=1000 + index * 1500, window=65535)
    elif proto == 17:
        l4 = UDP(sport=sport, dport=dport)
    elif ipv6:
        l4 = ICMPv6EchoRequest(id=index, seq=index)
    else:
        icmp_type, icmp_code = flow["icmp"]
        l4 = ICMP(type=icmp_type, code=icmp_code, id=index)
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan:
        frame = frame / Dot1Q(vlan=100 + (sport % 50))
    return frame / ip / l4 / Raw(b"\x5a" * payload_len)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ipv6", action="store_true")
    parser.add_argument("--vlan", action="store_true")
    parser.add_argument("--start", type=float, default=1_700_000_000.0, help="unix time of the first packet")
    parser.add_argument("--spread", type=float, default=4.0, help="seconds the flows start within")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    flows = make_flows(rng, args.flows, args.ipv6)
    packets = []  # (time, sequence, flow index, bytes)
    sequence = 0
    for i, flow in enumerate(flows):
        t = args.start + rng.random() * args.spread
        flow["ip_bytes"] = flow["frame_bytes"] = 0
        flow["first"] = t
        for n in range(flow["packets"]):
            payload_len = rng.choice([0, 0, 20, 64, 200, 512, 1000, 1400]) + rng.randrange(0, 32)
            pkt = build_packet(flow, n, n == flow["packets"] - 1, payload_len, args.ipv6, args.vlan)
            raw = bytes(pkt)
            l3 = 18 if args.vlan else 14
            if args.ipv6:
                ip_len = int.from_bytes(raw[l3 + 4:l3 + 6], "big") + 40
            else:
                ip_len = int.from_bytes(raw[l3 + 2:l3 + 4], "big")
            flow["ip_bytes"] += ip_len
            flow["frame_bytes"] += len(raw)
            packets.append((t, sequence, raw))
            sequence += 1
            flow["last"] = t
            t += rng.uniform(0.001, 0.4)
    packets.sort(key=lambda p: (p[0], p[1]))

    writer = PcapWriter(args.out, linktype=1, sync=False)
    writer.write_header(None)  # write_packet() alone does not write the file header
    for t, _, raw in packets:
        # Timestamps are whole microseconds so pcap readers see exactly the times reported here.
        micros = round(t * 1_000_000)
        writer.write_packet(raw, sec=micros // 1_000_000, usec=micros % 1_000_000)
    writer.close()

    summary = {
        "flows": len(flows),
        "packets": sum(f["packets"] for f in flows),
        "bytes": sum(f["ip_bytes"] for f in flows),
        "frame_bytes": sum(f["frame_bytes"] for f in flows),
        "first": min(p[0] for p in packets),
        "last": max(p[0] for p in packets),
        "by_5tuple": [
            {"src": f["key"][0], "dst": f["key"][1], "proto": f["key"][2],
             "sport": f["key"][3], "dport": f["key"][4], "packets": f["packets"], "bytes": f["ip_bytes"],
             "frame_bytes": f["frame_bytes"], "tos": f["tos"], "first": f["first"], "last": f["last"]}
            for f in flows
        ],
    }
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
