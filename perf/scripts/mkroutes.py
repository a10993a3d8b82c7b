#!/usr/bin/env python3
"""Route lists for `ip -batch`: mkroutes.py <ipv4 routes> [uniform|realistic] [ipv6 routes].

uniform: N /24s from 100.0.0.0 via 10.0.0.2. realistic: IPv4 prefix lengths in the shares of an
Internet table (most /24, /16-/23, 1.5% /25-/32 carved out of the /24s, which need tbl8 groups
as in real tables), and IPv6 routes via 2001:db8::2 clustered in random /32 allocations of
2400::/6 (mostly /48 and /32-/44). Deterministic (fixed seeds), no duplicates.
"""
import ipaddress, random, sys
n, mix, n6 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = sys.stdout.write
def v4(a, length):
    out(f"route add {ipaddress.IPv4Address(a)}/{length} via 10.0.0.2\n")
if mix == "uniform":
    for i in range(n):
        v4(0x64000000 + (i << 8), 24)  # 100.0.0.0/24, 100.0.1.0/24, ...
else:
    # Shares of an Internet table; each length fills its own run of address space from 11.0.0.0,
    # /25-/32 are carved out of the /24s (they need tbl8 groups, as in real tables).
    shares = [(16, .005), (17, .005), (18, .01), (19, .02), (20, .04), (21, .06), (22, .10), (23, .12)]
    longer = int(n * .015)
    cursor = 11 << 24
    made = 0
    for length, share in shares:
        cursor = (cursor + (1 << (32 - length)) - 1) & ~((1 << (32 - length)) - 1)
        for _ in range(int(n * share)):
            v4(cursor, length); cursor += 1 << (32 - length); made += 1
    n24 = n - made - longer
    base24 = cursor
    for i in range(n24):
        v4(base24 + (i << 8), 24)
    rnd = random.Random(1)
    i = 0
    taken = set()
    while i < longer:  # a few /24s split into several longer prefixes each
        b = base24 + (rnd.randrange(n24) << 8)
        for length in rnd.sample(range(25, 33), 4):
            if i == longer:
                break
            a = b + (rnd.randrange(1 << (length - 24)) << (32 - length))
            if (a, length) not in taken:
                taken.add((a, length)); v4(a, length); i += 1
if n6:
    rnd = random.Random(6)
    lengths = [(48, .50), (44, .08), (40, .07), (36, .04), (32, .20), (29, .03), (46, .04), (47, .02), (56, .02)]
    pool = [l for l, s in lengths for _ in range(int(s * 100))]
    i = 0
    seen = set()
    while i < n6:
        # an allocation: a /32 (or /29) somewhere in 2400::/6, holding up to 60 prefixes
        alloc = (0x2400 << 112) | (rnd.getrandbits(22) << 96)
        for _ in range(rnd.randint(1, 60)):
            if i == n6:
                break
            length = rnd.choice(pool)
            p = alloc | ((rnd.getrandbits(length - 32) << (128 - length)) if length > 32 else 0)
            p &= ((1 << length) - 1) << (128 - length)
            if (p, length) in seen:
                continue
            seen.add((p, length))
            out(f"route add {ipaddress.IPv6Address(p)}/{length} via 2001:db8::2\n"); i += 1
