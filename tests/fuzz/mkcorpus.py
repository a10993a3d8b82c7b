#!/usr/bin/python3
"""Builds the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/) from real traffic
and real kernel dumps, in throw-away namespaces of its own:

  frame    frames captured on a veth (AF_PACKET) while ping, ping6, arping and UDP run across it,
           each prefixed by the target's selector byte (1: the port's MAC is the frame's own)
  netlink  the kernel's answers to dump requests (links, addresses, routes with multipath and
           nexthop ids, neighbours, nexthop objects and groups, rules), one datagram per file
  api      JSON-lines requests as lcpctl sends them, and REST bodies
  launch   launch lines of the docs and tests (words separated by newlines)
  config   the config documents of docs/config.md and tests

Run as root: tests/fuzz/mkcorpus.py [out=tests/fuzz/corpus]. Re-running replaces the corpus.
"""
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fuzz", "corpus")
NS_A, NS_B = f"fzc-a-{os.getpid()}", f"fzc-b-{os.getpid()}"


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def in_ns(ns):
    """Enter a network namespace in this thread (setns)."""
    import ctypes
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def frames():
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", "fz0", "netns", NS_A, "type", "veth", "peer", "name", "fz1", "netns", NS_B)
    for ns, dev, v4, v6 in ((NS_A, "fz0", "10.77.0.1/24", "fd77::1/64"), (NS_B, "fz1", "10.77.0.2/24", "fd77::2/64")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
        sh("ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad")
    got = []

    def capture():
        in_ns(NS_A)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        s.bind(("fz0", 0))
        s.settimeout(0.5)
        end = time.time() + 6
        while time.time() < end:
            try:
                got.append(s.recv(2048))
            except socket.timeout:
                pass

    t = threading.Thread(target=capture)
    t.start()
    time.sleep(0.5)
    b = ["ip", "netns", "exec", NS_B]
    sh(*b, "ping", "-c", "2", "-i", "0.2", "10.77.0.1", check=False)
    sh(*b, "ping", "-c", "2", "-i", "0.2", "-s", "1400", "10.77.0.1", check=False)
    sh(*b, "ping", "-c", "2", "-i", "0.2", "-t", "1", "10.77.0.1", check=False)
    sh(*b, "ping", "-c", "1", "-R", "10.77.0.1", check=False)          # IPv4 options
    sh(*b, "ping", "-c", "2", "-i", "0.2", "-b", "10.77.0.255", check=False)
    sh(*b, "ping", "-6", "-c", "2", "-i", "0.2", "fd77::1", check=False)
    sh(*b, "ping", "-6", "-c", "2", "-i", "0.2", "ff02::1%fz1", check=False)
    sh(*b, "arping", "-c", "2", "-w", "1", "-I", "fz1", "10.77.0.1", check=False)
    sh(*b, "python3", "-c", "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
       "[s.sendto(b'x'*n, ('10.77.0.1', 9)) for n in (0, 18, 200)]; "
       "t=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.sendto(b'y'*30, ('fd77::1', 9))", check=False)
    sh(*b, "python3", "-c", "import socket; s=socket.socket(); s.settimeout(0.5)\ntry: s.connect(('10.77.0.1', 22))\nexcept Exception: pass", check=False)
    t.join()
    seen = set()
    for f in got:
        key = f[12:14] + f[14:40]
        if key in seen:
            continue
        seen.add(key)
        put("frame", b"\x01" + f)
        put("frame", b"\x00" + f)
    print(f"frame: {len(seen)} distinct frames captured")


NLMSG_HDR = struct.Struct("=IHHII")


def dump(ns, msg_type, body):
    """One dump request in a namespace; returns the kernel's datagrams."""
    out = []
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        in_ns(ns)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        s.bind((0, 0))
        s.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(body), msg_type, 0x301, 1, 0) + body)
        chunks = []
        while True:
            d = s.recv(65536)
            chunks.append(d)
            if any(struct.unpack_from("=H", m, 4)[0] in (2, 3) for m in messages(d)):  # NLMSG_ERROR / DONE
                break
        data = b"".join(struct.pack("=I", len(c)) + c for c in chunks)
        os.write(w, data)
        os._exit(0)
    os.close(w)
    buf = b""
    while True:
        d = os.read(r, 1 << 20)
        if not d:
            break
        buf += d
    os.waitpid(pid, 0)
    i = 0
    while i < len(buf):
        n = struct.unpack_from("=I", buf, i)[0]
        out.append(buf[i + 4:i + 4 + n])
        i += 4 + n
    return out


def messages(datagram):
    i = 0
    while i + 16 <= len(datagram):
        n = struct.unpack_from("=I", datagram, i)[0]
        if n < 16:
            break
        yield datagram[i:i + n]
        i += (n + 3) & ~3


def netlink():
    a = ["ip", "-n", NS_A]
    sh(*a, "link", "add", "fzv0", "type", "veth", "peer", "name", "fzv1")
    sh(*a, "link", "set", "fzv0", "up")
    sh(*a, "link", "set", "fzv1", "up", "mtu", "9000")
    sh(*a, "addr", "add", "10.78.0.1/24", "dev", "fzv0")
    sh(*a, "addr", "add", "10.78.1.1/30", "dev", "fzv1")
    sh(*a, "addr", "add", "fd78::1/64", "dev", "fzv0", "nodad")
    sh(*a, "neigh", "replace", "10.78.0.2", "lladdr", "02:00:00:00:78:02", "dev", "fzv0", "nud", "permanent")
    sh(*a, "neigh", "replace", "10.78.0.3", "lladdr", "02:00:00:00:78:03", "dev", "fzv0", "nud", "reachable")
    sh(*a, "neigh", "replace", "fd78::2", "lladdr", "02:00:00:00:78:12", "dev", "fzv0", "nud", "permanent")
    sh(*a, "route", "add", "198.51.100.0/24", "via", "10.78.0.2")
    sh(*a, "route", "add", "203.0.113.0/24", "nexthop", "via", "10.78.0.2", "weight", "1", "nexthop", "via", "10.78.0.3", "weight", "3")
    sh(*a, "route", "add", "blackhole", "192.0.2.0/24")
    sh(*a, "route", "add", "unreachable", "192.0.2.128/25")
    sh(*a, "route", "add", "10.99.0.0/16", "via", "10.78.0.2", "table", "100", "metric", "20")
    sh(*a, "-6", "route", "add", "2001:db8::/32", "via", "fd78::2")
    sh(*a, "route", "add", "100.64.0.0/24", "via", "inet6", "fd78::2", "dev", "fzv0", check=False)
    sh(*a, "nexthop", "add", "id", "1", "via", "10.78.0.2", "dev", "fzv0", check=False)
    sh(*a, "nexthop", "add", "id", "2", "via", "10.78.0.3", "dev", "fzv0", check=False)
    sh(*a, "nexthop", "add", "id", "3", "group", "1/2,3", check=False)
    sh(*a, "nexthop", "add", "id", "4", "blackhole", check=False)
    sh(*a, "route", "add", "198.18.0.0/15", "nhid", "3", check=False)
    sh(*a, "rule", "add", "from", "10.78.0.0/24", "table", "100", "priority", "100")
    count = 0
    rtgen = lambda fam: struct.pack("=Bxxx", fam)  # noqa: E731
    ifinfo = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
    ndmsg = struct.pack("=BxxxiHBB", 0, 0, 0, 0, 0)
    rtmsg = lambda fam: struct.pack("=BBBBBBBBI", fam, 0, 0, 0, 0, 0, 0, 0, 0)  # noqa: E731
    nhmsg = struct.pack("=BBBBI", 0, 0, 0, 0, 0)
    for t, body in ((18, ifinfo), (22, rtgen(0)), (26, rtmsg(2)), (26, rtmsg(10)), (30, ndmsg), (106, nhmsg), (34, rtmsg(2))):
        for d in dump(NS_A, t, body):
            msgs = list(messages(d))
            for m in msgs:
                put("netlink", m)
                count += 1
            put("netlink", d[:8192])
    print(f"netlink: {count} kernel messages")


def api():
    import json
    reqs = [["show", "interfaces"], ["show", "ip", "fib", "summary"], ["lcp", "create", "0", "host-if", "lcp0", "netns", "r"],
            ["lcp", "delete", "lcp0"], ["show", "ip", "fib", "10.0.0.0/8", "table", "100"], ["trace", "add", "10"],
            ["set", "log-level", "debug"], ["config", "status"]]
    for r in reqs:
        put("api", json.dumps({"v": 1, "argv": r}).encode())
    put("api", json.dumps({"v": 1, "argv": ["config", "update"], "input": "linux_config: {}\n"}).encode())
    put("api", b'{"v":2,"argv":["show","version"]}')
    put("api", b'{"v":1,"argv":"show"}')
    put("api", b'[1,2,3]')
    put("api", b'A{"port":"0","host_if":"lcp0","netns":"r","tun":false,"persist":true,"table":100}')
    put("api", b'B{"count":10,"port":"0"}')
    put("api", b'C{"port":"0","file":"/tmp/x.pcap","direction":"rx","max":100}')
    put("api", b'D{"level":"info"}')
    print("api: seeds written")


def launch():
    lines = []
    for f in [os.path.join(ROOT, "README.md")] + [os.path.join(ROOT, "docs", x) for x in sorted(os.listdir(os.path.join(ROOT, "docs"))) if x.endswith(".md")]:
        for m in re.finditer(r"(?:bin/)?lcpd ([^\n`]*(?:\\\n[^\n`]*)*)", open(f, encoding="utf-8").read()):
            words = m.group(1).replace("\\\n", " ").split()
            if len(words) > 2:
                lines.append(words)
    lines.append(["--lcores", "0@0,1@1,(2-3)@(0,1)", "--no-pci", "--", "--pair", "0=lcp0,persist,table=100"])
    lines.append(["-l", "0-1", "-m", "512", "--no-huge", "--", "--check", "--json"])
    for w in lines:
        put("launch", "\n".join(w).encode())
    print(f"launch: {len(lines)} launch lines")


def config():
    n = 0
    for f in [os.path.join(ROOT, "docs", "config.md"), os.path.join(ROOT, "README.md")]:
        for m in re.finditer(r"```(?:yaml|json)\n(.*?)```", open(f, encoding="utf-8").read(), re.S):
            put("config", m.group(1).encode())
            n += 1
    put("config", b'{"linux_config":{"interfaces":[{"name":"v1","type":"VETH","veth":{"peer_if_name":"v2"},"ip_addresses":["10.0.0.1/24"]}]}}')
    put("config", b'linuxConfig:\n  routes:\n  - outgoingInterface: lcp0\n    dstNetwork: 10.1.0.0/16\n    gwAddr: 10.0.0.2\n')
    print(f"config: {n + 2} documents")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    try:
        frames()
        netlink()
    finally:
        sh("ip", "netns", "del", NS_A, check=False)
        sh("ip", "netns", "del", NS_B, check=False)
    api()
    launch()
    config()


if __name__ == "__main__":
    main()
