using System.Buffers.Binary;
using System.Runtime.InteropServices;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Features;

namespace LinuxCp.Dataplane.Tests;

/// <summary>Punt classes from real header layouts (bounds-checked on short frames) and the token
/// bucket: burst, refill, rate split over workers, off, counters.</summary>
public sealed unsafe class PuntPolicerTests : IDisposable
{
    private readonly long* _b = (long*)NativeMemory.AllocZeroed((nuint)PuntBuckets.Longs, sizeof(long));

    public void Dispose() => NativeMemory.Free(_b);

    private static PuntClass Of(byte[] f, Reason r, int? len = null)
    {
        fixed (byte* p = f)
            return PuntClasses.Of(p, (uint)(len ?? f.Length), r);
    }

    private static byte[] Ip4(byte proto, ushort sport = 0, ushort dport = 0, ushort fragment = 0)
    {
        byte[] ip = Frames.Ip4(payload: 8);
        ip[9] = proto;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(6), fragment);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(20), sport);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(22), dport);
        return Frames.Ether(Frames.PortMac, 0x0800, ip);
    }

    private static byte[] Ip6(byte next, byte firstL4Byte = 0, ushort dport = 0)
    {
        byte[] ip = Frames.Ip6(payload: 8);
        ip[6] = next;
        ip[40] = firstL4Byte;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(42), dport);
        return Frames.Ether(Frames.PortMac, 0x86DD, ip);
    }

    [Fact]
    public void Classes_ControlProtocolsHaveTheirOwn_RestByReason()
    {
        Assert.Equal(PuntClass.ArpNd, Of(Frames.Ether(Frames.Broadcast, 0x0806, Frames.Arp()), Reason.PuntArp));
        Assert.Equal(PuntClass.ArpNd, Of(Ip6(58, 135), Reason.PuntMulticast));
        Assert.Equal(PuntClass.ArpNd, Of(Ip6(58, 134), Reason.PuntIp6LinkLocal));
        Assert.Equal(PuntClass.Local, Of(Ip6(58, 128), Reason.PuntLocal)); // echo request: not ND
        Assert.Equal(PuntClass.Routing, Of(Ip4(6, 40000, 179), Reason.PuntLocal));
        Assert.Equal(PuntClass.Routing, Of(Ip4(6, 179, 40000), Reason.PuntLocal));
        Assert.Equal(PuntClass.Routing, Of(Ip4(89), Reason.PuntMulticast));
        Assert.Equal(PuntClass.Routing, Of(Ip4(17, 49152, 3784), Reason.PuntLocal));
        Assert.Equal(PuntClass.Routing, Of(Ip6(6, 0, 179), Reason.PuntLocal));
        Assert.Equal(PuntClass.Local, Of(Ip4(6, 40000, 22), Reason.PuntLocal));
        Assert.Equal(PuntClass.TtlExpired, Of(Ip4(17, 1000, 179), Reason.PuntTtl)); // UDP 179 is not BGP
        Assert.Equal(PuntClass.Glean, Of(Ip4(17), Reason.PuntGlean));
        Assert.Equal(PuntClass.NoRoute, Of(Ip4(17), Reason.PuntUnreachable));
        Assert.Equal(PuntClass.Multicast, Of(Ip4(17), Reason.PuntMulticast));
        Assert.Equal(PuntClass.Other, Of(Ip4(17), Reason.PuntIp4Options));
        // A later fragment has no ports: a TCP fragment "to 179" is not BGP.
        Assert.Equal(PuntClass.Local, Of(Ip4(6, 40000, 179, fragment: 0x00B9), Reason.PuntLocal));
        byte[] lacp = Frames.Ether([0x01, 0x80, 0xC2, 0, 0, 0x02], 0x8809, new byte[40]);
        Assert.Equal(PuntClass.L2Control, Of(lacp, Reason.PuntOther));
        byte[] isis = Frames.Ether([0x01, 0x80, 0xC2, 0, 0, 0x14], 0x0100, new byte[40]);
        Assert.Equal(PuntClass.Routing, Of(isis, Reason.PuntOther));
        Assert.Equal(PuntClass.L2Control, Of(Frames.Ether(Frames.PortMac, 0x88CC, new byte[40]), Reason.PuntOther));
    }

    [Fact]
    public void Classes_ShortFrames_FallBackOnTheReason()
    {
        byte[] bgp = Ip4(6, 40000, 179);
        for (int len = 0; len < bgp.Length; len++)
        {
            PuntClass c = Of(bgp, Reason.PuntLocal, len);
            Assert.True(c is PuntClass.Local or PuntClass.Routing, $"{len}: {c}");
            if (len < 14 + 20 + 4)
                Assert.Equal(PuntClass.Local, c);
        }
        Assert.Equal(PuntClass.TtlExpired, Of(new byte[3], Reason.PuntTtl));
    }

    [Fact]
    public void PortBudget_OwnBucketSize_OthersKeepTheClasss_DefaultRestores()
    {
        const long hz = 1_000_000_000;
        var p = new PuntPolicers([.. Enumerable.Repeat((1000L, 100L), (int)PuntClass.Count)], hz, workers: 1)
            .WithPort(3, PuntClass.Routing, (1000, 10))
            .WithPort(5, PuntClass.Routing, (0, 0)); // not policed on port 5
        long now = 5 * hz;
        int Burst(int port)
        {
            int passed = 0;
            for (int i = 0; i < 1000; i++)
                passed += PuntBuckets.Admit(_b, p, port, PuntClass.Routing, now) ? 1 : 0;
            return passed;
        }
        Assert.Equal((10, 100, 1000), (Burst(3), Burst(4), Burst(5)));
        Assert.Equal((1000L, 10L), p.Budget(3, PuntClass.Routing));
        Assert.Equal((1000L, 100L), p.Budget(3, PuntClass.Local)); // other classes: the class's

        // A later change of the class leaves the port's own budget alone; default drops it.
        p = p.With(PuntClass.Routing, 2000, 50, hz, 1);
        Assert.Equal((1000L, 10L), p.Budget(3, PuntClass.Routing));
        Assert.Equal((2000L, 50L), p.Budget(4, PuntClass.Routing));
        p = p.WithPort(3, PuntClass.Routing, null);
        Assert.Equal((2000L, 50L), p.Budget(3, PuntClass.Routing));
        Assert.Single(p.Overrides);
        Assert.Empty(p.WithoutPort(5).Overrides);
        Assert.Throws<ArgumentOutOfRangeException>(() => p.WithPort(Interfaces.Max, PuntClass.Routing, (1, 1)));
    }

    [Fact]
    public void Bucket_BurstThenRate_SplitOverWorkers()
    {
        const long hz = 1_000_000_000;
        var p = new PuntPolicers([.. Enumerable.Repeat((1000L, 100L), (int)PuntClass.Count)], hz, workers: 2);
        long now = 5 * hz;
        int passed = 0;
        for (int i = 0; i < 1000; i++)
            passed += PuntBuckets.Admit(_b, p, 3, PuntClass.TtlExpired, now) ? 1 : 0;
        Assert.Equal(50, passed); // a worker's share of the burst
        // One second later: a worker's share of the rate (500), never more than its burst.
        now += hz / 10;
        passed = 0;
        for (int i = 0; i < 1000; i++)
            passed += PuntBuckets.Admit(_b, p, 3, PuntClass.TtlExpired, now) ? 1 : 0;
        Assert.Equal(50, passed); // 0.1 s x 500/s
        now += 10 * hz;
        passed = 0;
        for (int i = 0; i < 1000; i++)
            passed += PuntBuckets.Admit(_b, p, 3, PuntClass.TtlExpired, now) ? 1 : 0;
        Assert.Equal(50, passed); // capped at the burst
        Assert.Equal(150, PuntBuckets.Passed(_b, 3, PuntClass.TtlExpired));
        Assert.Equal(2850, PuntBuckets.Policed(_b, 3, PuntClass.TtlExpired));
        // Other ports and classes have their own buckets.
        Assert.True(PuntBuckets.Admit(_b, p, 4, PuntClass.TtlExpired, now));
        Assert.True(PuntBuckets.Admit(_b, p, 3, PuntClass.Routing, now));
    }

    [Fact]
    public void Off_PassesEverything_AndCountsIt()
    {
        var p = PuntPolicers.Defaults(1_000_000_000, 1).With(PuntClass.Glean, 0, 0, 1_000_000_000, 1);
        Assert.True(p.Any);
        for (int i = 0; i < 10_000; i++)
            Assert.True(PuntBuckets.Admit(_b, p, 0, PuntClass.Glean, 1000));
        Assert.Equal(10_000, PuntBuckets.Passed(_b, 0, PuntClass.Glean));
        Assert.False(PuntPolicers.Off.Any);
        Assert.Equal((20_000L, 4000L), PuntPolicers.Defaults(1, 1).Settings[(int)PuntClass.Routing]);
    }
}
