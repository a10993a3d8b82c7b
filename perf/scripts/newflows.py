#!/usr/bin/env python3
"""newflows.py IFACE DST_MAC RATE

Sends RATE UDP frames a second on IFACE (an AF_PACKET socket), each the first of a new flow:
10.252.0.0/16 sources and ports 1024-61023 that no earlier frame used (2^16 x 60,000 before
they repeat), to 10.251.0.1 port 2000. 60-byte frames (64 on the wire), IPv4 checksum set,
UDP checksum 0. Paced in 10 ms ticks; runs until killed. For lcpd-dut.sh's BENCH_NEW_FLOWS.
"""
import socket, struct, sys, time

iface, dmac, rate = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
smac = bytes.fromhex("0200000000c2")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))


def csum(b):
    v = sum(struct.unpack("!10H", b))
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return (~v) & 0xFFFF


def frame(i):
    src = (10 << 24) | (252 << 16) | (i & 0xFFFF)
    sport = 1024 + (i >> 16) % 60000
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 28, 0, 0, 64, 17, 0, src, (10 << 24) | (251 << 16) | 1)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, 2000, 8, 0)
    return (dmac + smac + b"\x08\x00" + ip + udp).ljust(60, b"\0")


tick, i, owed, t = 0.01, 0, 0.0, time.monotonic()
while True:
    owed += rate * tick
    while owed >= 1:
        s.send(frame(i))
        i += 1
        owed -= 1
    t += tick
    time.sleep(max(0.0, t - time.monotonic()))
