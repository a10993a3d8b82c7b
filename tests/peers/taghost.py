#!/usr/bin/python3
"""A host on VLANs, for tests on a kernel without 8021q: IPv4 hosts behind 802.1Q / QinQ tags on
one interface, spoken through a raw packet socket (frames built and parsed with scapy).

  taghost.py serve <iface> <mac> <seconds> <tags>=<ip>/<len>[,<gw>] ...
      answer ARP and ICMP echo for each address, on its exact tag stack, for <seconds>
  taghost.py ping <iface> <mac> <tags> <src> <dst> <gw> <count>
      resolve <gw> by ARP on the tags, send <count> echo requests to <dst> through it, print
      'arp <mac>' and 'replies <n>'; exit 0 when every request was answered
  taghost.py send <iface> <mac> <tags> <dst-mac> <count>
      send <count> tagged UDP frames to <dst-mac> (nothing expected back)

<tags>: '100' (802.1Q VID 100), '88a8.10.20' or '8100.10.20' (outer TPID, outer VID, inner VID).
The kernel may hand a received frame's outer tag over as metadata (PACKET_AUXDATA): it is put
back, so the tag stack is always read from the frame's bytes.
"""
import select
import socket
import struct
import sys
import time

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40


def parse_tags(spec):
    parts = spec.split('.')
    if len(parts) == 1:
        return [(0x8100, int(parts[0]))]
    return [(int(parts[0], 16), int(parts[1])), (0x8100, int(parts[2]))]


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(':'))


def mac_str(b):
    return ':'.join(f'{x:02x}' for x in b)


def open_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    return s


def receive(s, timeout):
    """One frame as it was on the wire (outgoing copies skipped), or None after the timeout."""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return None
        data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(32))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        for level, kind, cdata in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                status, _, _, _, _, tci, tpid = struct.unpack('IIIHHHH', cdata[:20])
                if status & TP_STATUS_VLAN_VALID:
                    tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                    data = data[:12] + struct.pack('!HH', tpid, tci) + data[12:]
        return data


def split(frame):
    """(dst, src, tag stack, ethertype, payload) of a frame."""
    tags = []
    at = 12
    while len(frame) >= at + 4:
        t = struct.unpack('!H', frame[at:at + 2])[0]
        if t not in (0x8100, 0x88a8) or len(frame) < at + 4:
            break
        tags.append((t, struct.unpack('!H', frame[at + 2:at + 4])[0] & 0xfff))
        at += 4
    etype = struct.unpack('!H', frame[at:at + 2])[0] if len(frame) >= at + 2 else 0
    return frame[0:6], frame[6:12], tags, etype, frame[at + 2:]


def build(dst, src, tags, etype, payload):
    head = dst + src
    for tpid, vid in tags:
        head += struct.pack('!HH', tpid, vid)
    return head + struct.pack('!H', etype) + payload


def serve(iface, mac, seconds, specs):
    me = mac_bytes(mac)
    hosts = []
    for spec in specs:
        tags, addr = spec.split('=')
        hosts.append((parse_tags(tags), addr.split('/')[0]))
    s = open_socket(iface)
    end = time.time() + float(seconds)
    answered = 0
    while time.time() < end:
        frame = receive(s, 0.5)
        if frame is None:
            continue
        dst, src, tags, etype, payload = split(frame)
        for htags, ip in hosts:
            if tags != htags:
                continue
            if etype == 0x0806:
                a = ARP(payload)
                if a.op == 1 and a.pdst == ip:
                    r = ARP(op=2, hwsrc=mac, psrc=ip, hwdst=a.hwsrc, pdst=a.psrc)
                    s.send(build(src, me, tags, 0x0806, bytes(r)))
                    answered += 1
            elif etype == 0x0800 and dst == me:
                p = IP(payload)
                if p.dst == ip and p.haslayer(ICMP) and p[ICMP].type == 8:
                    r = IP(src=ip, dst=p.src) / ICMP(type=0, id=p[ICMP].id, seq=p[ICMP].seq) / bytes(p[ICMP].payload)
                    s.send(build(src, me, tags, 0x0800, bytes(r)))
                    answered += 1
    print(f'answered {answered}', flush=True)


def ping(iface, mac, tagspec, src_ip, dst_ip, gw, count):
    me = mac_bytes(mac)
    tags = parse_tags(tagspec)
    s = open_socket(iface)
    # ARP for the gateway on the tags, until it answers (or 5 s).
    gw_mac = None
    end = time.time() + 5
    while gw_mac is None and time.time() < end:
        req = ARP(op=1, hwsrc=mac, psrc=src_ip, hwdst='00:00:00:00:00:00', pdst=gw)
        s.send(build(b'\xff' * 6, me, tags, 0x0806, bytes(req)))
        t_end = time.time() + 0.5
        while time.time() < t_end:
            frame = receive(s, 0.2)
            if frame is None:
                continue
            _, _, ftags, etype, payload = split(frame)
            if ftags == tags and etype == 0x0806:
                a = ARP(payload)
                if a.op == 2 and a.psrc == gw:
                    gw_mac = a.hwsrc
                    break
    if gw_mac is None:
        print('arp none', flush=True)
        sys.exit(2)
    print(f'arp {gw_mac}', flush=True)
    replies = 0
    for seq in range(1, int(count) + 1):
        req = IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=0x4c43, seq=seq) / (b'x' * 24)
        s.send(build(mac_bytes(gw_mac), me, tags, 0x0800, bytes(req)))
        t_end = time.time() + 2
        while time.time() < t_end:
            frame = receive(s, 0.2)
            if frame is None:
                continue
            dst, _, ftags, etype, payload = split(frame)
            if dst != me or ftags != tags or etype != 0x0800:
                continue
            p = IP(payload)
            if p.src == dst_ip and p.haslayer(ICMP) and p[ICMP].type == 0 and p[ICMP].seq == seq:
                replies += 1
                break
    print(f'replies {replies}', flush=True)
    sys.exit(0 if replies == int(count) else 1)


def send(iface, mac, tagspec, dst_mac, count):
    s = open_socket(iface)
    frame = build(mac_bytes(dst_mac), mac_bytes(mac), parse_tags(tagspec), 0x0800,
                  bytes(IP(src='192.0.2.1', dst='192.0.2.2') / UDP(sport=9, dport=9) / (b'y' * 18)))
    for _ in range(int(count)):
        s.send(frame)
    print(f'sent {count}', flush=True)


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'serve':
        serve(args[0], args[1], args[2], args[3:])
    elif cmd == 'ping':
        ping(*args)
    elif cmd == 'send':
        send(*args)
    else:
        sys.exit(f'unknown command {cmd}')
