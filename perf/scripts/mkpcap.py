#!/usr/bin/env python3
"""mkpcap.py OUT.pcap [--flows N] [--size BYTES] [--ipv6] [--vlan VID[.INNER]]

Frames for the pcap-replay topology of ../shared/bench, extending its tools/mkpcap.py (IPv4,
60 bytes) with frame sizes and IPv6. Same Ethernet addresses as the bench (testpmd flowgen's).
IPv4: 10.254.0.0 -> 10.253.0.0 + i, UDP 1000 -> 1001 (the bench's ROUTES apply).
IPv6: 2001:db8::1 -> 2001:200:0:(i % 2)::(i // 2 + 1), UDP 1000 -> 1001: even flows fall in
l3fwd's default 2001:200::/64 (port 0), odd ones in 2001:200:0:1::/64 (port 1).
--size is the frame length without FCS (60 = a 64-byte frame on the wire); IPv6/UDP needs 62.
--vlan: the frames carry an 802.1Q tag (VID), or two (VID.INNER: 802.1ad outer, 802.1Q inner),
within --size (a 64-byte tagged frame has 4 bytes less of IP).
"""
import argparse, struct

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--flows", type=int, default=1024)
ap.add_argument("--size", type=int, default=None)
ap.add_argument("--ipv6", action="store_true")
ap.add_argument("--vlan", default=None)
a = ap.parse_args()
size = a.size or (62 if a.ipv6 else 60)
eth_hdr = bytes.fromhex("000102030401") + bytes.fromhex("000102030400")
tags = b""
if a.vlan:
    vids = [int(v) for v in a.vlan.split(".")]
    tpids = [0x8100] if len(vids) == 1 else [0x88A8, 0x8100]
    tags = b"".join(struct.pack("!HH", t, v) for t, v in zip(tpids, vids))
eth_hdr += tags
size -= len(tags)
with open(a.out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(a.flows):
        if a.ipv6:
            plen = size - 14 - 40
            assert plen >= 8, "IPv6/UDP frames need at least 62 bytes"
            src = bytes.fromhex("20010db8000000000000000000000001")
            dst = bytes.fromhex("200102000000") + struct.pack("!H", i % 2) + struct.pack("!Q", i // 2 + 1)
            udp = struct.pack("!HHHH", 1000, 1001, plen, 0) + bytes(plen - 8)
            pseudo = src + dst + struct.pack("!IxxxB", plen, 17)
            c = csum(pseudo + udp) or 0xFFFF
            udp = udp[:6] + struct.pack("!H", c) + udp[8:]
            pkt = eth_hdr + struct.pack("!H", 0x86DD) + struct.pack("!IHBB", 6 << 28, plen, 17, 64) + src + dst + udp
        else:
            tot = size - 14
            assert tot >= 28
            s = (10 << 24) | (254 << 16)
            d = ((10 << 24) | (253 << 16)) + i
            ip = struct.pack("!BBHHHBBHII", 0x45, 0, tot, 0, 0, 64, 17, 0, s, d)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            udp = struct.pack("!HHHH", 1000, 1001, tot - 20, 0) + bytes(tot - 28)
            pkt = eth_hdr + struct.pack("!H", 0x0800) + ip + udp
        assert len(pkt) == size + len(tags), (len(pkt), size)
        f.write(struct.pack("<IIII", 0, i, len(pkt), len(pkt)))
        f.write(pkt)
