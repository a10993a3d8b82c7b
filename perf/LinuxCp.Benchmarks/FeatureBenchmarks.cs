using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Features;

namespace LinuxCp.Benchmarks;

/// <summary>Synthetic 64-frame bursts of IPv4/UDP in native mbuf layouts for the feature nodes.</summary>
internal sealed unsafe class SyntheticBurst : IDisposable
{
    public const int Burst = 64;
    private const int Room = 192;
    private readonly byte* _mem;
    public readonly void** Mbufs;

    /// <param name="flow">the i-th frame's flow number (10.254.0.0 -> 10.253.0.0 + flow, UDP 1000 -> 1001)</param>
    public SyntheticBurst(Func<int, uint> flow)
    {
        int size = Layouts.SizeOf_rte_mbuf + Room;
        _mem = (byte*)NativeMemory.AlignedAlloc((nuint)(size * Burst), 64);
        NativeMemory.Clear(_mem, (nuint)(size * Burst));
        Mbufs = (void**)NativeMemory.Alloc(Burst * 8);
        for (int i = 0; i < Burst; i++)
        {
            byte* m = _mem + i * size;
            byte* f = m + Layouts.SizeOf_rte_mbuf + 64;
            *(byte**)(m + Layouts.rte_mbuf_buf_addr) = m + Layouts.SizeOf_rte_mbuf;
            *(ushort*)(m + Layouts.rte_mbuf_data_off) = 64;
            *(ushort*)(m + Layouts.rte_mbuf_data_len) = 60;
            *(uint*)(m + Layouts.rte_mbuf_pkt_len) = 60;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0800);
            f[14] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 16, 2), 46);
            f[22] = 64;
            f[23] = 17;
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(f + 26, 4), 0x0AFE0000u);
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(f + 30, 4), 0x0AFD0000u + flow(i));
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 34, 2), 1000);
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 36, 2), 1001);
            Mbufs[i] = m;
        }
    }

    /// <summary>Gives the i-th frame another flow (its destination address).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void SetFlow(int i, uint flow)
    {
        byte* f = (byte*)Mbufs[i] + Layouts.SizeOf_rte_mbuf + 64;
        *(uint*)(f + 30) = BinaryPrimitives.ReverseEndianness(0x0AFD0000u + flow);
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_mem);
        NativeMemory.Free(Mbufs);
    }
}

/// <summary>The flow tracker per packet: a burst of 64 packets of existing flows in a table of
/// 1024 or 1M flows, and one sweep step (32 entries, nothing expiring). TrackBurst64 tracks the
/// same 64 flows every time, so their entries stay in the caches whatever the table's size;
/// TrackBurst64Cold gives each burst the next 64 flows of a random order of all of them, so in
/// the 1M table every lookup is a miss, as with real traffic over a million flows. Rewrite64 is
/// the cost of that rewrite alone (included in the cold figure).</summary>
[MemoryDiagnoser]
public unsafe class FlowBenchmarks
{
    [Params(1024, 1 << 20)]
    public int Flows { get; set; }

    private FlowTable? _t;
    private AclScratch? _s;
    private SyntheticBurst? _burst;
    private void** _drop;

    [GlobalSetup]
    public void Setup()
    {
        _t = new FlowTable(Flows);
        _s = new AclScratch();
        _drop = (void**)NativeMemory.Alloc(SyntheticBurst.Burst * 8);
        // Create every flow once, then measure bursts of existing flows spread over the table.
        for (int first = 0; first < Flows; first += SyntheticBurst.Burst)
        {
            using var b = new SyntheticBurst(i => (uint)(first + i));
            uint nd = 0;
            FlowTracker.Track(_t, _s, 0, b.Mbufs, SyntheticBurst.Burst, 0, FlowFullPolicy.Pass, _drop, ref nd);
        }
        var rnd = new Random(3);
        _burst = new SyntheticBurst(_ => (uint)rnd.Next(Flows));
        _order = new uint[Flows];
        for (uint i = 0; i < _order.Length; i++)
            _order[i] = i;
        rnd.Shuffle(_order);
    }

    private uint[]? _order;
    private int _next;

    [Benchmark(OperationsPerInvoke = SyntheticBurst.Burst)]
    public uint TrackBurst64()
    {
        uint nd = 0;
        return FlowTracker.Track(_t!, _s!, 0, _burst!.Mbufs, SyntheticBurst.Burst, 1000, FlowFullPolicy.Pass, _drop, ref nd);
    }

    [Benchmark(OperationsPerInvoke = SyntheticBurst.Burst)]
    public uint TrackBurst64Cold()
    {
        NextFlows();
        uint nd = 0;
        return FlowTracker.Track(_t!, _s!, 0, _burst!.Mbufs, SyntheticBurst.Burst, 1000, FlowFullPolicy.Pass, _drop, ref nd);
    }

    [Benchmark(OperationsPerInvoke = SyntheticBurst.Burst)]
    public int Rewrite64()
    {
        NextFlows();
        return _next;
    }

    private void NextFlows()
    {
        uint[] order = _order!;
        for (int i = 0; i < SyntheticBurst.Burst; i++)
        {
            _burst!.SetFlow(i, order[_next]);
            if (++_next == order.Length)
                _next = 0;
        }
    }

    [Benchmark]
    public int SweepStep32() => _t!.Sweep(2000, 32, FlowTimeouts.Default);

    [GlobalCleanup]
    public void Cleanup()
    {
        _t?.Dispose();
        _s?.Dispose();
        _burst?.Dispose();
        NativeMemory.Free(_drop);
    }
}

/// <summary>The classifier node on a burst of 64 frames against 100 rules none of which matches
/// (the pre-filter's case), against 100 rules that the pre-filter cannot rule out (rte_acl for
/// every frame), and one punt policer decision.</summary>
[MemoryDiagnoser]
public unsafe class FeatureNodeBenchmarks
{
    private AclPortRules? _miss, _wide;
    private AclScratch? _s;
    private SyntheticBurst? _burst;
    private void** _drop;
    private long* _hits;
    private long* _buckets;
    private PuntPolicers? _pol;
    private long _now;

    [GlobalSetup]
    public void Setup()
    {
        BenchEal.Ensure();
        _s = new AclScratch();
        _burst = new SyntheticBurst(i => (uint)i);
        _drop = (void**)NativeMemory.Alloc(SyntheticBurst.Burst * 8);
        _hits = (long*)NativeMemory.AllocZeroed(2 * 4096, sizeof(long));
        _buckets = (long*)NativeMemory.AllocZeroed((nuint)PuntBuckets.Longs, sizeof(long));
        _pol = PuntPolicers.Defaults(1_000_000_000, 1);
        IAclMatcher Native(AclRule[] r, bool v6) => new RteAclMatcher(r, v6, 0);
        // As perf/scripts/lcpd-dut.sh's BENCH_ACL: varied sources, destinations, protocols, ports.
        var miss = Enumerable.Range(0, 100).SelectMany(i => AclRuleParser.Parse(
            $"p0 input src 100.{64 + (i >> 8 & 63)}.{i & 255}.0/24 dst 10.{i % 200}.0.0/16 proto {(i % 2 == 0 ? "tcp" : "udp")} dport {2000 + i}-{2010 + i} drop".Split(' ')))
            .Select((r, k) => r with { Id = (uint)k + 1 }).ToList();
        _miss = new AclPortRules(miss, r => (int)r.Id, Native);
        // Each field's value set holds the frames' value, but no rule matches a frame: half
        // name the frames' destinations and another port, half their port and another network.
        // The pre-filter passes every frame, and rte_acl classifies them all.
        var wide = Enumerable.Range(0, 100).SelectMany(i => AclRuleParser.Parse((i % 2 == 0
                ? $"p0 input dst 10.253.0.0/16 proto udp dport {2000 + i} drop"
                : $"p0 input dst 10.{i}.0.0/16 proto udp dport 1001 drop").Split(' ')))
            .Select((r, k) => r with { Id = (uint)k + 1 }).ToList();
        _wide = new AclPortRules(wide, r => (int)r.Id, Native);
    }

    [Benchmark(OperationsPerInvoke = SyntheticBurst.Burst)]
    public uint Filter64_100RulesNoneMatch()
    {
        uint nd = 0;
        return AclFilter.Filter(_miss!, _s!, _burst!.Mbufs, SyntheticBurst.Burst, _drop, ref nd, _hits);
    }

    [Benchmark(OperationsPerInvoke = SyntheticBurst.Burst)]
    public uint Filter64_100RulesThroughRteAcl()
    {
        uint nd = 0;
        return AclFilter.Filter(_wide!, _s!, _burst!.Mbufs, SyntheticBurst.Burst, _drop, ref nd, _hits);
    }

    [Benchmark]
    public bool PuntAdmit() => PuntBuckets.Admit(_buckets, _pol!, 0, PuntClass.TtlExpired, _now += 1000);

    [GlobalCleanup]
    public void Cleanup()
    {
        _miss?.Dispose();
        _wide?.Dispose();
        _s?.Dispose();
        _burst?.Dispose();
        NativeMemory.Free(_drop);
        NativeMemory.Free(_hits);
        NativeMemory.Free(_buckets);
    }
}
