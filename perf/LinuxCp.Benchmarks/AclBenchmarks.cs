using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Benchmarks;

/// <summary>Random rules and packets for the classifier: rules with random prefixes, protocols,
/// port ranges and flags; packets biased towards the rules' prefixes so that some match.</summary>
internal static class AclSamples
{
    public static List<AclRule> Rules(Random rnd, int n, bool v6)
    {
        var list = new List<AclRule>(n);
        for (int i = 0; i < n; i++)
        {
            int proto = rnd.Next(5) switch { 0 => -1, 1 => 6, 2 => 17, 3 => v6 ? 58 : 1, _ => rnd.Next(256) };
            (ushort, ushort) R(int max)
            {
                if (rnd.Next(3) == 0)
                    return (0, ushort.MaxValue);
                int a = rnd.Next(max + 1), b = rnd.Next(max + 1);
                return ((ushort)Math.Min(a, b), (ushort)Math.Max(a, b));
            }
            bool ports = proto is 6 or 17, icmp = proto is 1 or 58;
            var (sl, sh) = ports ? R(65535) : icmp ? R(255) : ((ushort)0, ushort.MaxValue);
            var (dl, dh) = ports ? R(65535) : icmp ? R(255) : ((ushort)0, ushort.MaxValue);
            byte mask = proto == 6 && rnd.Next(3) == 0 ? (byte)rnd.Next(256) : (byte)0;
            list.Add(new AclRule((uint)i + 1, "p0", AclDirection.Input, v6, Pfx(rnd, v6), Pfx(rnd, v6), proto, sl, sh, dl, dh,
                (byte)(rnd.Next(256) & mask), mask, (AclAction)rnd.Next(3), (ushort)rnd.Next(16)));
        }
        return list;
    }

    private static Prefix Pfx(Random rnd, bool v6)
    {
        int len = rnd.Next(4) == 0 ? 0 : rnd.Next((v6 ? 128 : 32) + 1);
        UInt128 a = v6
            ? new UInt128(0x20010DB800000000UL | (uint)rnd.Next(0x10000), (ulong)rnd.NextInt64())
            : 0x0A000000u | ((uint)rnd.Next(1 << 16) << 8) | (uint)rnd.Next(256); // 10.x.y.z: rules overlap
        return new Prefix(v6, a, len);
    }

    /// <summary>A packet's IP header and L4 bytes (60 bytes for IPv6, 40 for IPv4), near a rule's addresses.</summary>
    public static byte[] Packet(Random rnd, bool v6, IReadOnlyList<AclRule> near)
    {
        var b = new byte[v6 ? 60 : 40];
        byte proto = rnd.Next(4) switch { 0 => 6, 1 => 17, 2 => (byte)(v6 ? 58 : 1), _ => (byte)rnd.Next(256) };
        AclRule? r = near.Count > 0 && rnd.Next(2) == 0 ? near[rnd.Next(near.Count)] : null;
        UInt128 Addr(Prefix? p)
        {
            UInt128 x = v6 ? new UInt128((ulong)rnd.NextInt64(), (ulong)rnd.NextInt64()) : (uint)rnd.Next();
            if (p is not Prefix q || q.Length == 0)
                return x;
            int bits = v6 ? 128 : 32;
            UInt128 host = q.Length == bits ? 0 : (v6 ? UInt128.MaxValue : uint.MaxValue) >> q.Length;
            return q.Address | (x & host);
        }
        UInt128 src = Addr(r?.Src), dst = Addr(r?.Dst);
        if (r is not null && r.Proto >= 0 && rnd.Next(2) == 0)
            proto = (byte)r.Proto;
        int l4 = v6 ? 40 : 20;
        if (v6)
        {
            b[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), 20);
            b[6] = proto;
            Prefix.ToBytes(src, true, b.AsSpan(8, 16));
            Prefix.ToBytes(dst, true, b.AsSpan(24, 16));
        }
        else
        {
            b[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), 40);
            if (rnd.Next(10) == 0)
                BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), (ushort)rnd.Next(1, 0x1FFF)); // a later fragment
            b[9] = proto;
            Prefix.ToBytes(src, false, b.AsSpan(12, 4));
            Prefix.ToBytes(dst, false, b.AsSpan(16, 4));
        }
        ushort sp = (ushort)(r is not null && rnd.Next(2) == 0 ? rnd.Next(r.SportLo, r.SportHi + 1) : rnd.Next(65536));
        ushort dp = (ushort)(r is not null && rnd.Next(2) == 0 ? rnd.Next(r.DportLo, r.DportHi + 1) : rnd.Next(65536));
        if (proto is 1 or 58)
        {
            b[l4] = (byte)sp;
            b[l4 + 1] = (byte)dp;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(l4), sp);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(l4 + 2), dp);
            b[l4 + 13] = (byte)rnd.Next(256);
        }
        return b;
    }

    public static unsafe void Key(byte[] packet, bool v6, byte* key)
    {
        fixed (byte* p = packet)
        {
            if (v6)
                AclKey.Build6(p, (uint)packet.Length, key);
            else
                AclKey.Build4(p, (uint)packet.Length, key);
        }
    }
}

/// <summary>`LinuxCp.Benchmarks acl-check [rounds]`: rte_acl and the reference matcher classify
/// the same random packets against the same random rules (1 to 2000 per round, both families);
/// exits 1 at the first disagreement, printing the rules and the packet.</summary>
internal static unsafe class AclCheck
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 200;
        int seed = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount;
        BenchEal.Ensure();
        var rnd = new Random(seed);
        long packets = 0, matched = 0;
        byte* keys = stackalloc byte[64 * AclKey.Size6];
        byte** ptrs = stackalloc byte*[64];
        uint* a = stackalloc uint[64];
        uint* b = stackalloc uint[64];
        for (int i = 0; i < 64; i++)
            ptrs[i] = keys + i * AclKey.Size6;
        for (int round = 0; round < rounds; round++)
        {
            bool v6 = round % 2 == 1;
            int n = round % 10 == 9 ? 2000 : 1 + rnd.Next(round % 3 == 0 ? 1000 : 20);
            AclRule[] rules = AclRuleOrder.Sort(AclSamples.Rules(rnd, n, v6));
            using var native = new RteAclMatcher(rules, v6, 0);
            using var reference = new ManagedAclMatcher(rules, v6);
            var batch = new byte[64][];
            for (int k = 0; k < 64; k++)
            {
                batch[k] = AclSamples.Packet(rnd, v6, rules);
                AclSamples.Key(batch[k], v6, ptrs[k]);
            }
            native.Classify(ptrs, a, 64);
            reference.Classify(ptrs, b, 64);
            for (int k = 0; k < 64; k++)
            {
                packets++;
                matched += b[k] != 0 ? 1 : 0;
                if (a[k] != b[k])
                {
                    Console.Error.WriteLine($"acl-check: seed {seed} round {round}: rte_acl says rule rank {a[k]}, the reference {b[k]}");
                    Console.Error.WriteLine($"  packet: {Convert.ToHexString(batch[k])}");
                    foreach (uint rank in new[] { a[k], b[k] }.Where(x => x != 0).Distinct())
                        Console.Error.WriteLine($"  rank {rank}: {rules[rank - 1].Words()}");
                    return 1;
                }
            }
        }
        Console.WriteLine($"acl-check: {rounds} rounds, {packets} packets, {matched} matched a rule, rte_acl and the reference agree (seed {seed})");
        return 0;
    }
}

/// <summary>Classifying one 32-packet burst against 1, 100 and 1000 rules (rte_acl, bulk), per packet,
/// none of the rules matching: the cost a port with rules adds to every packet.</summary>
[MemoryDiagnoser]
public unsafe class AclBenchmarks
{
    public const int Burst = 32;

    [Params(1, 100, 1000)]
    public int Rules { get; set; }

    private RteAclMatcher? _acl;
    private byte* _keys;
    private byte** _ptrs;
    private uint* _results;

    [GlobalSetup]
    public void Setup()
    {
        BenchEal.Ensure();
        var rnd = new Random(7);
        // Rules on 10.x sources; packets from 172.16/12: none match, every field is looked at.
        var rules = AclSamples.Rules(rnd, Rules, false).Select(r => r with { Src = new Prefix(false, 0x0A000000u | ((uint)rnd.Next(1 << 16) << 8), 24) }).ToList();
        _acl = new RteAclMatcher(AclRuleOrder.Sort(rules), false, 0);
        _keys = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(Burst * AclKey.Size4, 64);
        _ptrs = (byte**)System.Runtime.InteropServices.NativeMemory.Alloc(Burst, (nuint)sizeof(byte*));
        _results = (uint*)System.Runtime.InteropServices.NativeMemory.Alloc(Burst, sizeof(uint));
        for (int i = 0; i < Burst; i++)
        {
            byte[] p = AclSamples.Packet(rnd, false, []);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(12), 0xAC100000u | (uint)rnd.Next(1 << 20));
            _ptrs[i] = _keys + i * AclKey.Size4;
            AclSamples.Key(p, false, _ptrs[i]);
        }
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint ClassifyBurst32()
    {
        _acl!.Classify(_ptrs, _results, Burst);
        return _results[0];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _acl?.Dispose();
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_keys);
        System.Runtime.InteropServices.NativeMemory.Free(_ptrs);
        System.Runtime.InteropServices.NativeMemory.Free(_results);
    }
}
