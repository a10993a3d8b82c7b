#!/usr/bin/env python3
"""A large declarative configuration for the config layer's scale figures (issue 12):
PAIRS veth pairs spread over NS namespaces (each end two addresses: IPv4 /24 and IPv6 /64),
ROUTES routes via the pairs' far ends and ARPS static ARP entries, as one JSON document.
usage: mkconfig.py <prefix> [pairs=500] [namespaces=20] [routes=5000] [arps=5000]"""
import json
import sys

prefix = sys.argv[1]
pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 500
nss = int(sys.argv[3]) if len(sys.argv) > 3 else 20
routes = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
arps = int(sys.argv[5]) if len(sys.argv) > 5 else 5000

ifs, arp_entries, route_list = [], [], []
for i in range(pairs):
    a, b = f"sa{i}", f"sb{i}"
    na, nb = f"{prefix}-{i % nss}", f"{prefix}-{(i + 1) % nss}"
    net = f"100.{64 + i // 256}.{i % 256}"
    ifs.append({"name": a, "type": "VETH", "namespace": {"type": "NSID", "reference": na}, "enabled": True,
                "ip_addresses": [f"{net}.1/24", f"fd00:{i:x}::1/64"], "veth": {"peer_if_name": b}})
    ifs.append({"name": b, "type": "VETH", "namespace": {"type": "NSID", "reference": nb}, "enabled": True,
                "ip_addresses": [f"{net}.2/24", f"fd00:{i:x}::2/64"], "veth": {"peer_if_name": a}})
for k in range(routes):
    i = k % pairs
    route_list.append({"outgoing_interface": f"sa{i}", "dst_network": f"10.{k // 256}.{k % 256}.0/24",
                       "gw_addr": f"100.{64 + i // 256}.{i % 256}.2"})
for k in range(arps):
    i = k % pairs
    j = k // pairs
    arp_entries.append({"interface": f"sa{i}", "ip_address": f"100.{64 + i // 256}.{i % 256}.{10 + j}",
                        "hw_address": f"02:00:{(i >> 8) & 255:02x}:{i & 255:02x}:00:{j & 255:02x}"})
print(json.dumps({"linux_config": {"interfaces": ifs, "arp_entries": arp_entries, "routes": route_list}}))
