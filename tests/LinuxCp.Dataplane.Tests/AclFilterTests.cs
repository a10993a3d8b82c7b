using System.Buffers.Binary;
using System.Runtime.InteropServices;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Features;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The classifier node on synthetic mbufs with the reference matcher: drops move out in
/// order, everything else stays in order, counters per rule slot, non-IP and malformed frames
/// untouched.</summary>
public sealed unsafe class AclFilterTests : IDisposable
{
    private readonly List<nint> _mem = [];
    private readonly AclScratch _s = new();
    private readonly long* _hits = (long*)NativeMemory.AllocZeroed(4096, sizeof(long)); // two per slot; slots are rule ids here

    public void Dispose()
    {
        _mem.ForEach(p => NativeMemory.Free((void*)p));
        _s.Dispose();
        NativeMemory.Free(_hits);
    }

    private void* Mbuf(byte[] frame)
    {
        byte* mem = (byte*)NativeMemory.AllocZeroed((nuint)(Layouts.SizeOf_rte_mbuf + 128 + frame.Length));
        _mem.Add((nint)mem);
        *(byte**)(mem + Layouts.rte_mbuf_buf_addr) = mem + Layouts.SizeOf_rte_mbuf;
        *(ushort*)(mem + Layouts.rte_mbuf_data_off) = 128;
        *(ushort*)(mem + Layouts.rte_mbuf_data_len) = (ushort)frame.Length;
        *(uint*)(mem + Layouts.rte_mbuf_pkt_len) = (uint)frame.Length;
        frame.CopyTo(new Span<byte>(mem + Layouts.SizeOf_rte_mbuf + 128, frame.Length));
        return mem;
    }

    private static byte[] Udp4(string src, string dst, ushort dport, ushort type = 0x0800)
    {
        var f = new byte[14 + 20 + 8 + 10];
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        f[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 38);
        f[14 + 8] = 64;
        f[14 + 9] = 17;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(f, 26);
        System.Net.IPAddress.Parse(dst).GetAddressBytes().CopyTo(f, 30);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), 5000);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(36), dport);
        return f;
    }

    private static byte[] Udp6(string src, ushort dport)
    {
        var f = new byte[14 + 40 + 8];
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x86DD);
        f[14] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(18), 8);
        f[20] = 17;
        f[21] = 64;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(f, 22);
        System.Net.IPAddress.Parse("2001:db8::1").GetAddressBytes().CopyTo(f, 38);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(56), dport);
        return f;
    }

    private static AclPortRules Rules(params string[] rules)
    {
        uint id = 1;
        var list = rules.SelectMany(w => AclRuleParser.Parse(w.Split(' '))).Select(r => r with { Id = id++ }).ToList();
        return new AclPortRules(list, r => (int)r.Id, (sorted, v6) => new ManagedAclMatcher(sorted, v6));
    }

    [Fact]
    public void Track_Bursts_AgreeWithOneLookupAtATime_RepeatsBothDirectionsIpv6TableFull()
    {
        // The tracker's passes over a burst (hashes, tag walks, then lookups; IPv4 through its
        // own key) against the same table used one packet at a time through classifier keys:
        // the same flows with the same counts and states. The bursts repeat flows (a new flow
        // several times in one burst), carry both directions, UDP, TCP with its flags, ICMP,
        // later fragments, IP options and IPv6, and a small table fills up (probe runs wrap around its end, new flows refused)
        // and is swept now and then.
        using var bulk = new FlowTable(256);
        using var one = new FlowTable(256);
        var to = new FlowTimeouts(Udp: 1);
        var rnd = new Random(11);
        void** pkts = (void**)NativeMemory.Alloc(AclScratch.Burst, (nuint)sizeof(void*));
        void** drop = (void**)NativeMemory.Alloc(AclScratch.Burst, (nuint)sizeof(void*));
        byte* key = (byte*)NativeMemory.AllocZeroed(AclKey.Size6);
        byte[] tcpFlags = [0x02, 0x12, 0x10, 0x11, 0x04, 0x18];
        byte[] Frame(int flow, bool reverse, int variant = 0)
        {
            if (flow >= 250)
                return Udp6($"2001:db8:1::{flow:x}", 53);
            // Flows 240-249 talk to their own address: the ports order them.
            string a = flow >= 240 ? $"10.2.0.{flow - 239}" : $"10.1.{flow / 100}.{flow % 100 + 1}", b = flow >= 240 ? a : "10.9.0.1";
            byte[] f = reverse ? Udp4(b, a, 5000) : Udp4(a, b, 53);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), reverse ? (ushort)53 : (ushort)5000);
            switch (flow % 6)
            {
                case 1: // TCP, with the flags that move its state (SYN, SYN-ACK, ACK, FIN, RST, PSH)
                    f[23] = 6;
                    f[47] = tcpFlags[variant % tcpFlags.Length];
                    break;
                case 2: // ICMP echo and reply: type and code are not part of the flow
                    f[23] = 1;
                    f[34] = reverse ? (byte)0 : (byte)8;
                    f[35] = 0;
                    break;
                case 3: // a later fragment: no ports
                    BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(20), 0x0010);
                    break;
                case 4: // TCP after IP options: the L4 header 4 bytes further on, its flags the last byte there
                    f[14] = 0x46;
                    f[23] = 6;
                    f[51] = tcpFlags[variant % tcpFlags.Length];
                    break;
                case 5: // a first fragment (more fragments follow): its ports count
                    BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(20), 0x2000);
                    break;
            }
            return f;
        }
        try
        {
            uint now = 0;
            for (int burst = 0; burst < 300; burst++)
            {
                now += (uint)rnd.Next(0, 60);
                uint n = (uint)rnd.Next(1, AclScratch.Burst + 1);
                for (int i = 0; i < n; i++)
                    pkts[i] = Mbuf(Frame(rnd.Next(300), rnd.Next(2) == 0, rnd.Next(6)));
                for (int i = 0; i < n; i++)
                {
                    Assert.True(FlowTracker.KeyOf(pkts[i], key, out bool v6));
                    FlowEntry* f = one.Lookup(key, v6, 3, now, true, out bool fromLo, out _);
                    if (f != null)
                        one.Update(f, fromLo, FlowTracker.TcpFlags(key, v6), DpdkSharp.Mbuf.PktLen(pkts[i]), now);
                }
                uint nd = 0;
                uint kept = FlowTracker.Track(bulk, _s, 3, pkts, n, now, FlowFullPolicy.Drop, drop, ref nd);
                Assert.Equal(n, kept + nd);
                if (burst % 40 == 39)
                {
                    Assert.Equal(one.Sweep(now, one.Slots, to), bulk.Sweep(now, bulk.Slots, to));
                }
            }
            Assert.Equal(one.Count, bulk.Count);
            Assert.Equal(one.Inserts, bulk.Inserts);
            Assert.True(bulk.TableFull > 0, "the table never filled up");
            Assert.Equal(one.TableFull, bulk.TableFull);
            int found = 0;
            for (int flow = 0; flow < 300; flow++)
            {
                Assert.True(FlowTracker.KeyOf(Mbuf(Frame(flow, false)), key, out bool v6));
                FlowEntry* a = one.Lookup(key, v6, 3, now, false, out _, out _), b = bulk.Lookup(key, v6, 3, now, false, out _, out _);
                Assert.Equal(a == null, b == null);
                if (a == null)
                    continue;
                found++;
                Assert.Equal(a->Packets, b->Packets);
                Assert.Equal(a->Bytes, b->Bytes);
                Assert.Equal(a->State, b->State);
            }
            Assert.Equal((int)bulk.Count, found);
        }
        finally
        {
            NativeMemory.Free(pkts);
            NativeMemory.Free(drop);
            NativeMemory.Free(key);
        }
    }

    [Fact]
    public void DropRule_MovesMatchingFramesOut_InOrder_CountsPerRule()
    {
        using AclPortRules rules = Rules("p0 src 10.0.0.0/8 proto udp dport 53 drop", "p0 proto udp dport 80 pass", "p0 src 2001:db8:bad::/48 drop");
        void*[] burst =
        [
            Mbuf(Udp4("10.1.1.1", "192.0.2.1", 53)),  // dropped by rule 1
            Mbuf(Udp4("10.1.1.1", "192.0.2.1", 80)),  // passed by rule 2
            Mbuf(Udp4("11.1.1.1", "192.0.2.1", 53)),  // no match
            Mbuf(Udp6("2001:db8:bad::7", 1)),         // dropped by rule 3
            Mbuf(Udp4("10.1.1.1", "192.0.2.1", 53, type: 0x0806)), // ARP ethertype: not classified
            Mbuf(Udp6("2001:db8:900d::7", 1)),        // no match
            Mbuf(Udp4("10.2.2.2", "192.0.2.9", 53)),  // dropped by rule 1
        ];
        void** pkts = stackalloc void*[burst.Length];
        void** drop = stackalloc void*[burst.Length];
        for (int i = 0; i < burst.Length; i++)
            pkts[i] = burst[i];
        uint nDrop = 0;
        uint kept = AclFilter.Filter(rules, _s, pkts, (uint)burst.Length, drop, ref nDrop, _hits);
        Assert.Equal(4u, kept);
        Assert.Equal(3u, nDrop);
        Assert.Equal([(nint)burst[1], (nint)burst[2], (nint)burst[4], (nint)burst[5]], Enumerable.Range(0, 4).Select(i => (nint)pkts[i]));
        Assert.Equal([(nint)burst[0], (nint)burst[3], (nint)burst[6]], Enumerable.Range(0, 3).Select(i => (nint)drop[i]));
        Assert.Equal(2, _hits[2 * 1]);       // rule 1: packets
        Assert.Equal(2 * 52, _hits[2 * 1 + 1]); // bytes
        Assert.Equal(1, _hits[2 * 2]); // rule 2, its IPv4 half (a rule without addresses is one per family)
        Assert.Equal(0, _hits[2 * 3]); // rule 2, its IPv6 half
        Assert.Equal(1, _hits[2 * 4]); // rule 3
    }

    [Fact]
    public void NoDropMatched_BurstUntouched_MalformedHeadersSkipped()
    {
        using AclPortRules rules = Rules("p0 drop priority 9");
        byte[] bad = Udp4("10.1.1.1", "192.0.2.1", 53);
        bad[14] = 0x43; // IHL 3
        byte[] shortFrame = new byte[20];
        void*[] burst = [Mbuf(bad), Mbuf(shortFrame)];
        void** pkts = stackalloc void*[2];
        void** drop = stackalloc void*[2];
        pkts[0] = burst[0];
        pkts[1] = burst[1];
        uint nDrop = 0;
        Assert.Equal(2u, AclFilter.Filter(rules, _s, pkts, 2, drop, ref nDrop, _hits));
        Assert.Equal(0u, nDrop);

        // The same catch-all rule drops a well-formed frame of either family.
        pkts[0] = Mbuf(Udp4("10.1.1.1", "192.0.2.1", 53));
        pkts[1] = Mbuf(Udp6("2001:db8::5", 53));
        Assert.Equal(0u, AclFilter.Filter(rules, _s, pkts, 2, drop, ref nDrop, _hits));
        Assert.Equal(2u, nDrop);
    }

    private static string Pfx(uint addr, int len)
    {
        uint masked = len == 0 ? 0 : addr & (uint.MaxValue << (32 - len));
        return $"{masked >> 24}.{masked >> 16 & 255}.{masked >> 8 & 255}.{masked & 255}/{len}";
    }

    [Fact]
    public void Prefilter_NeverChangesAVerdict_RandomRulesAndPackets()
    {
        // Rules drawn from a small value space so that packets hit them; every third field
        // "any", so some sets are wide. The filter's drops must be exactly the packets whose first
        // matching rule (reference order) drops.
        var rnd = new Random(4242);
        string[] protos = ["tcp", "udp", "icmp"];
        const int n = 64;
        void** pkts = stackalloc void*[n];
        void** drop = stackalloc void*[n];
        for (int round = 0; round < 60; round++)
        {
            var words = new List<string>();
            int count = rnd.Next(1, 40);
            for (int i = 0; i < count; i++)
            {
                var w = new List<string> { "p0" };
                if (rnd.Next(3) != 0)
                    w.AddRange(["src", Pfx((10u << 24) | ((uint)rnd.Next(4) << 16) | (uint)rnd.Next(65536), rnd.Next(8, 25))]);
                if (rnd.Next(3) != 0)
                    w.AddRange(["dst", Pfx((192u << 24) | ((uint)rnd.Next(4) << 8) | (uint)rnd.Next(256), rnd.Next(12, 33))]);
                string? proto = rnd.Next(3) != 0 ? protos[rnd.Next(3)] : null;
                if (proto is not null)
                    w.AddRange(["proto", proto]);
                if (proto is "tcp" or "udp" && rnd.Next(2) == 0)
                {
                    int lo = rnd.Next(50, 60);
                    w.AddRange(["dport", $"{lo}-{lo + rnd.Next(5)}"]);
                }
                if (proto is "icmp" && rnd.Next(2) == 0)
                {
                    int lo = rnd.Next(17, 21);
                    w.AddRange(["icmp-type", $"{lo}-{lo + rnd.Next(2)}"]);
                }
                if (!w.Contains("src") && !w.Contains("dst"))
                    w.AddRange(["src", "10.0.0.0/8"]); // keep every rule IPv4
                w.Add(rnd.Next(3) == 0 ? "pass" : "drop");
                w.AddRange(["priority", rnd.Next(10).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                words.Add(string.Join(' ', w));
            }
            using AclPortRules rules = Rules([.. words]);
            Assert.True(rules.Rules4.Length == count);
            var expectDrop = new HashSet<nint>();
            for (int i = 0; i < n; i++)
            {
                string src = $"10.{rnd.Next(5)}.{rnd.Next(256)}.1", dst = $"192.0.{rnd.Next(5)}.{rnd.Next(256)}";
                ushort dport = (ushort)rnd.Next(48, 66);
                byte[] f = Udp4(src, dst, dport);
                int kind = rnd.Next(4);
                if (kind == 0)
                    f[23] = 6; // TCP: the same bytes read as TCP ports
                else if (kind == 1)
                    f[23] = 1; // ICMP: type and code are the bytes where the ports were
                if (rnd.Next(8) == 0)
                    f[21] = 0x10; // a later fragment (offset 16): no ports
                bool later = f[21] != 0;
                ushort sp = later ? (ushort)0 : f[23] == 1 ? f[34] : (ushort)5000, dp = later ? (ushort)0 : f[23] == 1 ? f[35] : dport;
                void* m = Mbuf(f);
                pkts[i] = m;
                var key = (Src: (UInt128)BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(26)), Dst: (UInt128)BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(30)));
                AclRule? first = rules.Rules4.FirstOrDefault(r => r.Matches(false, key.Src, key.Dst, f[23], sp, dp, f[23] == 6 && !later ? f[14 + 20 + 13] : (byte)0));
                if (first?.Action == AclAction.Drop)
                    expectDrop.Add((nint)m);
            }
            uint nDrop = 0;
            uint kept = AclFilter.Filter(rules, _s, pkts, n, drop, ref nDrop, _hits);
            var dropped = Enumerable.Range(0, (int)nDrop).Select(i => (nint)drop[i]).ToHashSet();
            Assert.True(expectDrop.SetEquals(dropped), $"round {round}: {string.Join(" | ", words)}");
            Assert.Equal((uint)n, kept + nDrop);
        }
    }
    /// <summary>The one-pass checks' use of the pre-filter (read from the header, no key built)
    /// is sound: whenever it says a frame needs no rules, no rule matches it, for both families;
    /// and it does let most frames go (else the test would prove nothing).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NeedsRules_FromTheHeader_NeverSkipsAMatch(bool v6)
    {
        var rnd = new Random(v6 ? 66 : 44);
        string[] protos = ["tcp", "udp", "icmp"];
        int skipped = 0, frames = 0;
        for (int round = 0; round < 80; round++)
        {
            var words = new List<string>();
            for (int i = 0, count = rnd.Next(1, 30); i < count; i++)
            {
                var w = new List<string> { "p0" };
                w.AddRange(["src", v6 ? $"2001:db8:{rnd.Next(4):x}::/{rnd.Next(48, 65)}" : Pfx((10u << 24) | ((uint)rnd.Next(4) << 16), rnd.Next(8, 25))]);
                if (rnd.Next(2) == 0)
                    w.AddRange(["dst", v6 ? $"2001:db{rnd.Next(8, 10)}::/{rnd.Next(32, 49)}" : Pfx((192u << 24) | ((uint)rnd.Next(4) << 8), rnd.Next(12, 33))]);
                string? proto = rnd.Next(3) != 0 ? protos[rnd.Next(3)] : null;
                if (proto is not null)
                    w.AddRange(["proto", v6 && proto == "icmp" ? "icmp6" : proto]);
                if (proto is "tcp" or "udp" && rnd.Next(2) == 0)
                {
                    int lo = rnd.Next(50, 60);
                    w.AddRange(["dport", $"{lo}-{lo + rnd.Next(5)}"]);
                }
                w.Add("drop");
                words.Add(string.Join(' ', w));
            }
            using AclPortRules rules = Rules([.. words]);
            AclPrefilter* pre = v6 ? rules.Pre6 : rules.Pre4;
            if (pre == null)
                continue;
            AclRule[] list = v6 ? rules.Rules6 : rules.Rules4;
            for (int i = 0; i < 200; i++)
            {
                ushort dport = (ushort)rnd.Next(48, 66);
                byte proto = rnd.Next(3) switch { 0 => (byte)6, 1 => (byte)17, _ => v6 ? (byte)58 : (byte)1 };
                byte[] f = v6
                    ? Udp6($"{(rnd.Next(2) == 0 ? "2001" : "2a02")}:db8:{rnd.Next(5):x}::{rnd.Next(1, 999):x}", dport)
                    : Udp4($"{(rnd.Next(2) == 0 ? 10 : 11)}.{rnd.Next(5)}.{rnd.Next(256)}.1", $"192.0.{rnd.Next(5)}.{rnd.Next(256)}", dport);
                int ip = 14, l4 = v6 ? 54 : 34;
                f[v6 ? ip + 6 : ip + 9] = proto;
                if (v6 && rnd.Next(2) == 0)
                    System.Net.IPAddress.Parse($"2001:db{rnd.Next(8, 10)}::{rnd.Next(1, 99):x}").GetAddressBytes().CopyTo(f, 38);
                fixed (byte* fp = f)
                {
                    frames++;
                    if (v6 ? AclPrefilter.NeedsRules6(pre, fp, (uint)f.Length) : AclPrefilter.NeedsRules4(pre, fp, (uint)f.Length))
                        continue;
                    skipped++;
                    int n = v6 ? 16 : 4;
                    UInt128 Addr(int at) => v6 ? BinaryPrimitives.ReadUInt128BigEndian(f.AsSpan(at)) : BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(at));
                    UInt128 src = Addr(v6 ? ip + 8 : ip + 12), dst = Addr(v6 ? ip + 8 + n : ip + 16);
                    bool icmp = proto is 1 or 58;
                    ushort sp = icmp ? f[l4] : BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(l4));
                    ushort dp = icmp ? f[l4 + 1] : BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(l4 + 2));
                    AclRule? hit = list.FirstOrDefault(r => r.Matches(v6, src, dst, proto, sp, dp, proto == 6 && l4 + 13 < f.Length ? f[l4 + 13] : (byte)0));
                    Assert.True(hit is null, $"round {round}, frame {i}: skipped, but {hit} matches");
                }
            }
        }
        Assert.True(skipped > frames / 4, $"only {skipped} of {frames} frames skipped the rules");
    }
}
