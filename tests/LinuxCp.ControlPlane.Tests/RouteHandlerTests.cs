using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>Routes from kernel messages to FIB entries: translation of next hops, route types,
/// metrics, IPv6 multipath append/delete, tables, and the allocation-free path.</summary>
public sealed class RouteHandlerTests : IDisposable
{
    private readonly SyncHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void ViaMirrorGateway_Forwards_ViaLinuxInterface_Punts()
    {
        _h.Feed(w => w
            .Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1))
            .Route(false, "203.0.113.0/24", hops: (2, "192.168.9.1", 1)));
        FibEntry e = _h.Entry("198.51.100.7")!;
        Assert.Equal(GroupKind.Forward, e.Kind);
        Assert.Equal(((ushort)0, SyncHarness.Ip("10.0.0.2")), (e.Paths[0].Port, e.Paths[0].Via));
        Assert.Equal(RouteSource.Kernel, e.Source);
        Assert.Equal(GroupKind.PuntToLinux, _h.Kind("203.0.113.1"));
    }

    [Fact]
    public void DevOnly_OnTap_Attached_OnTun_ToThePeer()
    {
        _h.Feed(w => w
            .Route(false, "10.0.0.0/24", hops: (10, null, 1))
            .Route(false, "10.2.0.0/24", hops: (12, null, 1)));
        FibEntry attached = _h.Entry("10.0.0.9")!;
        Assert.Equal(GroupKind.Glean, attached.Kind);
        Assert.Equal((ushort)0, attached.Paths[0].Port);
        FibEntry tun = _h.Entry("10.2.0.9")!;
        Assert.Equal(GroupKind.Forward, tun.Kind);
        Assert.Equal(((ushort)2, UInt128.Zero), (tun.Paths[0].Port, tun.Paths[0].Via));
    }

    [Fact]
    public void Types_BlackholeUnreachableProhibitThrow()
    {
        _h.Feed(w => w
            .Route(false, "192.0.2.0/26", type: Nl.RtnBlackhole)
            .Route(false, "192.0.2.64/26", type: Nl.RtnUnreachable)
            .Route(false, "192.0.2.128/26", type: Nl.RtnProhibit)
            .Route(false, "192.0.2.192/26", type: Nl.RtnThrow));
        Assert.Equal(GroupKind.Blackhole, _h.Kind("192.0.2.1"));
        Assert.Equal(GroupKind.Unreachable, _h.Kind("192.0.2.65"));
        Assert.Equal(GroupKind.Unreachable, _h.Kind("192.0.2.129"));
        Assert.Equal(GroupKind.PuntToLinux, _h.Kind("192.0.2.193"));
    }

    [Fact]
    public void LowestMetricWins_DeletingItFallsBack()
    {
        _h.Feed(w => w
            .Route(false, "198.51.100.0/24", metric: 200, hops: (11, "10.0.1.2", 1))
            .Route(false, "198.51.100.0/24", metric: 100, hops: (10, "10.0.0.2", 1)));
        Assert.Equal((ushort)0, _h.Entry("198.51.100.1")!.Paths[0].Port);
        _h.Feed(w => w.Route(true, "198.51.100.0/24", metric: 100, hops: (10, "10.0.0.2", 1)));
        Assert.Equal((ushort)1, _h.Entry("198.51.100.1")!.Paths[0].Port);
        _h.Feed(w => w.Route(true, "198.51.100.0/24", metric: 200));
        Assert.Null(_h.Entry("198.51.100.1"));
        Assert.Equal(0, _h.Ns.Routes.Count);
    }

    [Fact]
    public void Replace_SameKey_NewNextHop()
    {
        _h.Feed(w => w.Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1)));
        _h.Feed(w => w.Route(false, "198.51.100.0/24", nlflags: Nl.FReplace, hops: (11, "10.0.1.2", 1)));
        Assert.Equal((ushort)1, _h.Entry("198.51.100.1")!.Paths[0].Port);
        Assert.Equal(1, _h.Ns.Routes.Count);
    }

    [Fact]
    public void Ipv6Multipath_AppendedHopByHop_DeletedHopByHop()
    {
        _h.Feed(w => w.Route(false, "2001:db8:9::/48", hops: (10, "2001:db8:1::2", 1)));
        _h.Feed(w => w.Route(false, "2001:db8:9::/48", nlflags: Nl.FAppend | Nl.FCreate, hops: (11, "2001:db8:2::2", 1)));
        FibEntry e = _h.Entry("2001:db8:9::1")!;
        Assert.Equal(2, e.Paths.Count);
        _h.Feed(w => w.Route(true, "2001:db8:9::/48", hops: (10, "2001:db8:1::2", 1)));
        e = _h.Entry("2001:db8:9::1")!;
        Assert.Equal((ushort)1, Assert.Single(e.Paths).Port);
        _h.Feed(w => w.Route(true, "2001:db8:9::/48", hops: (11, "2001:db8:2::2", 1)));
        Assert.Null(_h.Entry("2001:db8:9::1"));
    }

    [Fact]
    public void Ecmp_Ipv4Multipath_WeightsKept()
    {
        _h.Feed(w => w.Route(false, "198.51.100.0/24", hops: [(10, "10.0.0.2", 1), (11, "10.0.1.2", 3)]));
        FibEntry e = _h.Entry("198.51.100.1")!;
        Assert.Equal(2, e.Paths.Count);
        Assert.Equal(16, _h.Fib.PublishedBuckets(e.Group).Length);
    }

    [Fact]
    public void MultipathWithOneHopThroughLinux_Punts()
    {
        _h.Feed(w => w.Route(false, "198.51.100.0/24", hops: [(10, "10.0.0.2", 1), (2, "192.168.9.1", 1)]));
        Assert.Equal(GroupKind.PuntToLinux, _h.Kind("198.51.100.1"));
    }

    [Fact]
    public void LocalTable_NotFollowed_OtherTables_KeptUntilBound()
    {
        _h.Feed(w => w
            .Route(false, "10.0.0.1/32", table: Nl.TableLocal, type: Nl.RtnLocal, hops: (10, null, 1))
            .Route(false, "198.51.100.0/24", table: 100, hops: (10, "10.0.0.2", 1)));
        Assert.Equal(1, _h.Ns.Routes.Count); // table 100's route is in the model...
        Assert.Null(_h.Entry("198.51.100.1")); // ...not in the FIB: no port forwards in table 100
        // A rule binds lcp1 to table 100: the table opens, the route goes in.
        _h.Feed(w => w.Rule(false, 100, iifname: "lcp1", priority: 1000));
        int t = _h.Ns.TableIndex(100);
        Assert.True(t > 0);
        Assert.Equal(GroupKind.Forward, _h.Kind("198.51.100.1", t));
        Assert.Contains(((ushort)1, t), _h.PortTables);
    }

    [Fact]
    public void MirrorAddedLater_RoutesThroughItTranslatedAgain()
    {
        using var h = new SyncHarness(SyncHarness.Lcp0);
        h.Feed(w => w.Route(false, "198.51.100.0/24", hops: (11, "10.0.1.2", 1)));
        Assert.Equal(GroupKind.PuntToLinux, h.Kind("198.51.100.1")); // ifindex 11 is not a mirror (yet)
        h.Ns.SetMirrors([SyncHarness.Lcp0, SyncHarness.Lcp1]);
        h.Fib.Commit();
        Assert.Equal(GroupKind.Forward, h.Kind("198.51.100.1"));
        h.Ns.SetMirrors([SyncHarness.Lcp0]);
        h.Fib.Commit();
        Assert.Equal(GroupKind.PuntToLinux, h.Kind("198.51.100.1"));
    }

    [Fact]
    public void KnownNextHops_ApplyingRoutesAllocatesAlmostNothing()
    {
        // Warm up: the next-hop list, its target and group exist.
        _h.Feed(w => w.Route(false, "100.64.0.0/24", hops: (10, "10.0.0.2", 1)));
        var w = new NetlinkWriter();
        for (int i = 1; i <= 5000; i++)
            w.Route(false, $"100.{64 + (i >> 8)}.{i & 255}.0/24", hops: (10, "10.0.0.2", 1));
        byte[] batch = w.ToArray();
        var sink = _h.Ns;
        long before = GC.GetAllocatedBytesForCurrentThread();
        NetlinkParser.Parse(batch, ref sink);
        long perRoute = (GC.GetAllocatedBytesForCurrentThread() - before) / 5000;
        // The writer's batch sets are presized; the route model is native memory. What is left
        // is hash-set growth amortised over the batch.
        Assert.True(perRoute < 16, $"{perRoute} bytes allocated per route");
        _h.Fib.Commit();
        Assert.Equal(5001, _h.Fib.Count4);
    }
}
