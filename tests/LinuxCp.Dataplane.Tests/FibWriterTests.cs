using DpdkSharp;
using LinuxCp.Dataplane.Fib;
using LinuxCp.TestSupport;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The FIB writer on the managed reference backend: source priority, ECMP weights, id
/// recycling, transactions whose grace period times out, exhaustion of every id and table space,
/// table growth, nexthop objects and several tables. No DPDK.</summary>
public sealed class FibWriterTests : IDisposable
{
    private static readonly TableId Main = new(0, 254);
    private readonly ManagedFibBackend _b = new();
    private readonly TestPublisher _pub = new();
    private readonly FibWriter _f;
    private readonly List<string> _warnings = [];

    public FibWriterTests()
    {
        _f = new FibWriter(_b, _pub, Main, new FibCapacity(1024, 64), new FibCapacity(1024, 64));
        _f.Warn = _warnings.Add;
    }

    public void Dispose() => _f.Dispose();

    private static readonly MacAddress PortMac = MacAddress.Parse("02:00:00:00:00:01");

    private static Prefix P(string s) => Prefix.Parse(s);

    private static UInt128 Ip(string s) => Prefix.Parse(s).Address;

    private static RouteTarget Via(ushort port, string gw, int weight = 1) => RouteTarget.Via(gw.Contains(':'), new NextHop(port, Ip(gw), weight));

    private void Up(ushort port) => _f.SetPort(port, true, 1500, PortMac);

    /// <summary>The group a worker would find for an address in the published copy.</summary>
    private int Lookup(string ip, int table = 0) => _f.Lookup(table, ip.Contains(':'), Ip(ip));

    private GroupKind KindAt(string ip, int table = 0) => _f.PublishedKind(Lookup(ip, table));

    /// <summary>Both copies hold the same for a prefix (a settled commit).</summary>
    private void AssertCopiesAgree(string prefix, int table = 0)
    {
        var k = new FibKey(table, P(prefix));
        FibSnapshot a = _pub.Published.Last(s => s.V4[table] != 0);
        nint[] fibs = k.V6 ? a.V6 : a.V4;
        // The other copy is the one the previous distinct snapshot named.
        FibSnapshot b = _pub.Published.Last(s => (k.V6 ? s.V6 : s.V4)[table] != fibs[table]);
        bool inA = _b.TryGetExact(fibs[table], k, out ushort na);
        bool inB = _b.TryGetExact((k.V6 ? b.V6 : b.V4)[table], k, out ushort nb);
        Assert.Equal(inA, inB);
        Assert.Equal(na, nb);
    }

    [Fact]
    public void Sources_LocalBeatsKernelBeatsNeighbor_RemovalFallsBack()
    {
        Up(1);
        Prefix host = P("10.0.0.5/32");
        _f.Set(0, host, RouteSource.Neighbor, Via(1, "10.0.0.5"));
        _f.Commit();
        Assert.Equal(GroupKind.Forward, KindAt("10.0.0.5"));
        _f.Set(0, host, RouteSource.Kernel, RouteTarget.BlackholeTarget);
        _f.Commit();
        Assert.Equal(GroupKind.Blackhole, KindAt("10.0.0.5"));
        _f.Set(0, host, RouteSource.Local, RouteTarget.LocalTarget);
        _f.Commit();
        Assert.Equal(GroupKind.Local, KindAt("10.0.0.5"));
        Assert.Equal(RouteSource.Local, _f.Installed(0, host)!.Source);
        _f.Set(0, host, RouteSource.Local, null);
        _f.Commit();
        Assert.Equal(GroupKind.Blackhole, KindAt("10.0.0.5"));
        _f.Set(0, host, RouteSource.Kernel, null);
        _f.Set(0, host, RouteSource.Neighbor, null);
        _f.Commit();
        Assert.Equal(0, Lookup("10.0.0.5"));
        Assert.Equal(0, _f.Count4);
        AssertCopiesAgree("10.0.0.5/32");
    }

    [Fact]
    public void Commit_ReportsWrites_SecondCopyLevelAfterGrace()
    {
        Up(1);
        for (int i = 0; i < 10; i++)
            _f.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        Assert.Equal(10, _f.Pending);
        CommitResult r = _f.Commit();
        Assert.Equal((10, 0, false, false, 0), (r.FibWrites, r.Refused, r.GraceTimedOut, r.Deferred, r.Pending));
        Assert.Equal(10, _f.Count4);
        for (int i = 0; i < 10; i++)
            AssertCopiesAgree($"198.51.{i}.0/24");
        Assert.Equal(0, _f.Commit().FibWrites); // nothing left
    }

    [Fact]
    public void GraceTimeout_SecondCopyAndIdReuseWait_ThenSettle()
    {
        Up(1);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        int oldGroup = Lookup("198.51.100.1");

        // A worker misses its quiescent point: the route moves in the published copy only, and
        // the released group id is not handed out again.
        _pub.GraceCompletes = false;
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.2"));
        CommitResult r = _f.Commit();
        Assert.True(r.GraceTimedOut);
        Assert.False(r.Deferred);
        int newGroup = Lookup("198.51.100.1");
        Assert.NotEqual(oldGroup, newGroup);
        FibSnapshot published = _pub.Current;
        nint other = _pub.Published.Last(s => s.V4[0] != published.V4[0]).V4[0];
        Assert.True(_b.TryGetExact(other, new FibKey(0, P("198.51.100.0/24")), out ushort stale));
        Assert.Equal(oldGroup, stale); // the copy a lagging worker may read is untouched

        // Still no grace: the next commit applies nothing at all.
        _f.Set(0, P("203.0.113.0/24"), RouteSource.Kernel, Via(1, "10.0.0.3"));
        CommitResult d = _f.Commit();
        Assert.True(d.Deferred);
        Assert.Equal(0, d.FibWrites);
        Assert.True(d.Pending >= 1);
        Assert.Equal(0, Lookup("203.0.113.1"));

        // The workers are back: the deferred copy is settled, then the pending change applied.
        _pub.GraceCompletes = true;
        CommitResult ok = _f.Commit();
        Assert.False(ok.GraceTimedOut);
        Assert.Equal(1, ok.FibWrites);
        Assert.Equal(GroupKind.Forward, KindAt("203.0.113.1"));
        AssertCopiesAgree("198.51.100.0/24");
        Assert.True(_f.GraceTimeouts >= 2);
        Assert.Contains(_warnings, w => w.Contains("grace period", StringComparison.Ordinal));
    }

    [Fact]
    public void GraceTimeout_PathSlotNotRewrittenUntilAGracePeriodPasses()
    {
        Up(1);
        _f.SetNeighbor(1, false, Ip("10.0.0.1"), MacAddress.Parse("02:00:00:00:00:aa"));
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        int pid = _f.PublishedBuckets(Lookup("198.51.100.1"))[0];
        _pub.GraceCompletes = false;
        _f.SetNeighbor(1, false, Ip("10.0.0.1"), MacAddress.Parse("02:00:00:00:00:bb"));
        Assert.True(_f.Commit().GraceTimedOut); // flipped to the new MAC, old slot may be in use
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:bb").Bits, _f.PublishedPath(pid).DstMac);
        _f.SetNeighbor(1, false, Ip("10.0.0.1"), MacAddress.Parse("02:00:00:00:00:cc"));
        Assert.True(_f.Commit().Deferred); // writing the other slot now could tear a worker's read
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:bb").Bits, _f.PublishedPath(pid).DstMac);
        _pub.GraceCompletes = true;
        _f.Commit();
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:cc").Bits, _f.PublishedPath(pid).DstMac);
    }

    [Fact]
    public void Ecmp_EqualWeights_OneBucketEach_UnequalWeights_Expanded()
    {
        Up(1);
        Up(2);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel,
            RouteTarget.Via(false, new NextHop(1, Ip("10.0.0.1"), 1), new NextHop(2, Ip("10.0.1.1"), 1)));
        _f.Set(0, P("203.0.113.0/24"), RouteSource.Kernel,
            RouteTarget.Via(false, new NextHop(1, Ip("10.0.0.1"), 1), new NextHop(2, Ip("10.0.1.1"), 3)));
        _f.Commit();
        int[] equal = _f.PublishedBuckets(Lookup("198.51.100.1"));
        Assert.Equal(2, equal.Length);
        int[] weighted = _f.PublishedBuckets(Lookup("203.0.113.1"));
        Assert.Equal(16, weighted.Length);
        Assert.Equal(4, weighted.Count(p => p == equal[0]));  // 1/4 of the buckets
        Assert.Equal(12, weighted.Count(p => p == equal[1])); // 3/4
        Assert.Equal(2, _f.Paths); // the two groups share the two adjacencies
    }

    [Fact]
    public void RoutesThroughOneGateway_ShareOneGroup_IdsRecycledAfterGrace()
    {
        Up(1);
        for (int i = 0; i < 100; i++)
            _f.Set(0, P($"100.64.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        Assert.Equal(1, _f.Groups);
        Assert.Equal(1, _f.Targets);
        int g = Lookup("100.64.7.1");
        for (int i = 0; i < 100; i++)
            _f.Set(0, P($"100.64.{i}.0/24"), RouteSource.Kernel, null);
        _f.Commit();
        Assert.Equal((0, 0, 0), (_f.Groups, _f.Paths, _f.Targets));
        _f.Set(0, P("192.0.2.0/24"), RouteSource.Kernel, Via(1, "10.0.0.9"));
        _f.Commit();
        Assert.Equal(g, Lookup("192.0.2.1")); // the freed id came back after the grace period
    }

    [Fact]
    public void UnresolvedNeighborOrPortDown_Gleans_ResolvedForwards()
    {
        Up(1);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        int pid = _f.PublishedBuckets(Lookup("198.51.100.1"))[0];
        Assert.Equal(PathKind.Glean, _f.PublishedPath(pid).Kind);
        _f.SetNeighbor(1, false, Ip("10.0.0.1"), MacAddress.Parse("02:00:00:00:00:aa"));
        _f.Commit();
        PathSlot s = _f.PublishedPath(pid);
        Assert.Equal((PathKind.Forward, (ushort)1, (ushort)1500), (s.Kind, s.TxPort, s.Mtu));
        Assert.Equal(PortMac.Bits, s.SrcMac);
        _f.SetPort(1, false, 1500, PortMac);
        _f.Commit();
        Assert.Equal(PathKind.Glean, _f.PublishedPath(pid).Kind);
    }

    [Fact]
    public void PointToPointPort_EveryNextHopUsesTheLearnedPeer()
    {
        _f.SetPort(3, true, 1400, PortMac, pointToPoint: true);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, RouteTarget.Via(false, new NextHop(3, 0, 1)));
        _f.Commit();
        int pid = _f.PublishedBuckets(Lookup("198.51.100.1"))[0];
        Assert.Equal(PathKind.Glean, _f.PublishedPath(pid).Kind); // the peer has not spoken
        _pub.Peers[3] = 0x0000_0200_0000_00bbUL;
        Assert.True(_f.RefreshPeers());
        _f.Commit();
        Assert.Equal(0x0000_0200_0000_00bbUL, _f.PublishedPath(pid).DstMac);
        Assert.Equal(1, _f.PublishedPath(pid).LinkPeer); // the link's peer, not the next hop's own MAC
        Assert.False(_f.RefreshPeers());
    }

    [Fact]
    public void PointToPointPort_ANeighbourWithItsOwnMac_OthersUseThePeer()
    {
        _f.SetPort(3, true, 1400, PortMac, pointToPoint: true);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(3, "10.0.1.2"));
        _f.Set(0, P("203.0.113.0/24"), RouteSource.Kernel, Via(3, "10.0.1.3"));
        _f.Set(0, P("2001:db8:99::/48"), RouteSource.Kernel, Via(3, "2001:db8:1::3"));
        _pub.Peers[3] = 0x0000_0200_0000_00bbUL; // the last sender on the link
        Assert.True(_f.RefreshPeers());
        _f.SetNeighbor(3, false, Ip("10.0.1.2"), new MacAddress(0x0000_0200_0000_00a2UL));
        _f.SetNeighbor(3, true, Ip("2001:db8:1::3"), new MacAddress(0x0000_0200_0000_00a3UL));
        _f.Commit();
        ulong Mac(string ip) => _f.PublishedPath(_f.PublishedBuckets(Lookup(ip))[0]).DstMac;
        byte LinkPeer(string ip) => _f.PublishedPath(_f.PublishedBuckets(Lookup(ip))[0]).LinkPeer;
        Assert.Equal(0x0000_0200_0000_00a2UL, Mac("198.51.100.1"));
        Assert.Equal(0x0000_0200_0000_00bbUL, Mac("203.0.113.1"));
        Assert.Equal((0, 1), (LinkPeer("198.51.100.1"), LinkPeer("203.0.113.1")));
        Assert.Equal(0x0000_0200_0000_00a3UL, Mac("2001:db8:99::1"));

        // The neighbour forgotten: back to the peer.
        _f.SetNeighbor(3, false, Ip("10.0.1.2"), null);
        _f.Commit();
        Assert.Equal(0x0000_0200_0000_00bbUL, Mac("198.51.100.1"));
        Assert.Equal(1, LinkPeer("198.51.100.1"));
    }

    [Fact]
    public void GroupIdsExhausted_RefusedAndPunted_RecoverWhenIdsFree()
    {
        Up(1);
        // One distinct gateway per prefix: one group and one path each; the group ids run out
        // first (32763 after the reserved ones).
        int n = NextHopTables.MaxGroups;
        using var big = new FibWriter(_b, _pub, new TableId(9, 254), new FibCapacity((uint)n + 100, 64), new FibCapacity(16, 16));
        var warnings = new List<string>();
        big.Warn = warnings.Add;
        big.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < n; i++)
            big.Set(0, new Prefix(false, 0x64000000u + ((uint)i << 8), 24), RouteSource.Kernel, RouteTarget.Via(false, new NextHop(1, 0x0A000000u + (uint)i + 1, 1)));
        CommitResult r = big.Commit();
        Assert.False(r.GraceTimedOut);
        Assert.True(big.Refusals > 0);
        Assert.Contains(warnings, w => w.Contains("no group or path id left", StringComparison.Ordinal));
        Assert.Equal(n, big.Count4); // every prefix is in: the refused ones punt to Linux
        var last = new Prefix(false, 0x64000000u + ((uint)(n - 1) << 8), 24);
        Assert.Equal(GroupKind.PuntToLinux, big.Installed(0, last)!.Kind);

        // Ids come back: the degraded targets resolve and their prefixes forward again.
        for (int i = 0; i < 100; i++)
            big.Set(0, new Prefix(false, 0x64000000u + ((uint)i << 8), 24), RouteSource.Kernel, null);
        big.Commit();
        big.Commit();
        Assert.Equal(GroupKind.Forward, big.Installed(0, last)!.Kind);
    }

    [Fact]
    public void TableFull_RefusedThenGrown_AllInstalled()
    {
        using var small = new FibWriter(_b, _pub, new TableId(8, 254), new FibCapacity(16, 4), new FibCapacity(16, 4));
        var warnings = new List<string>();
        small.Warn = warnings.Add;
        small.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < 20; i++)
            small.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        CommitResult r = small.Commit();
        Assert.Equal(4, r.Refused);
        Assert.Equal(1, small.TablesGrown);
        Assert.Equal(20, small.Count4);
        Assert.Equal(0, small.RefusedPrefixes);
        Assert.Equal(32u, small.Tables()[0].Capacity4.Routes);
        Assert.Contains(warnings, w => w.Contains("grew", StringComparison.Ordinal));
    }

    [Fact]
    public void TableFull_NoMemoryToGrow_RefusalsCountedAndRetriedAsRoutesLeave()
    {
        using var small = new FibWriter(_b, _pub, new TableId(8, 254), new FibCapacity(16, 4), new FibCapacity(16, 4))
        {
            AvailableMemory = () => 0,
        };
        var warnings = new List<string>();
        small.Warn = warnings.Add;
        small.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < 20; i++)
            small.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        small.Commit();
        Assert.Equal((16, 4), (small.Count4, small.RefusedPrefixes));
        Assert.True(small.Tables()[0].Full);
        Assert.Contains(warnings, w => w.Contains("EAL has 0 MiB free", StringComparison.Ordinal));
        // Room comes back: the refused prefixes get in, as many as left.
        for (int i = 0; i < 3; i++)
            small.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, null);
        small.Commit(); // one commit: the room is given to refused prefixes at once
        Assert.Equal((16, 1), (small.Count4, small.RefusedPrefixes));
        Assert.True(small.Tables()[0].Full); // the one left still cannot get in: full again
    }

    [Fact]
    public void TableFull_RoutesLeave_RefusedInstalledInThatCommit_NoLongerFull()
    {
        using var small = new FibWriter(_b, _pub, new TableId(8, 254), new FibCapacity(16, 4), new FibCapacity(16, 4))
        {
            AvailableMemory = () => 0,
        };
        small.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < 20; i++)
            small.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        small.Commit();
        Assert.True(small.Tables()[0].Full);
        for (int i = 0; i < 5; i++)
            small.Set(0, P($"198.51.{i}.0/24"), RouteSource.Kernel, null);
        small.Commit(); // nothing else arrives after this one
        Assert.Equal((15, 0), (small.Count4, small.RefusedPrefixes));
        Assert.False(small.Tables()[0].Full);
    }

    [Fact]
    public void Tbl8NeedsTwoGrowthsInOneCommit_InstancesNamedApart_AllInstalled()
    {
        using var small = new FibWriter(_b, _pub, new TableId(8, 254), new FibCapacity(1000, 2), new FibCapacity(16, 4));
        small.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < 7; i++)
            small.Set(0, P($"198.51.{i}.128/25"), RouteSource.Kernel, Via(1, "10.0.0.1")); // a tbl8 block each
        small.Commit();
        Assert.Equal((7, 0), (small.Count4, small.RefusedPrefixes));
        Assert.Equal(2, small.TablesGrown); // 2 -> 4 -> 8 blocks
        Assert.Equal(8u, small.Tables()[0].Capacity4.Tbl8);
        Assert.False(small.Tables()[0].Full);
    }

    [Fact]
    public void Tbl8Exhausted_DeepPrefixesRefused_ShallowStillFit()
    {
        using var small = new FibWriter(_b, _pub, new TableId(8, 254), new FibCapacity(1000, 2), new FibCapacity(16, 4))
        {
            AvailableMemory = () => 0,
        };
        small.SetPort(1, true, 1500, PortMac);
        for (int i = 0; i < 5; i++)
            small.Set(0, P($"198.51.{i}.128/25"), RouteSource.Kernel, Via(1, "10.0.0.1")); // each its own tbl8 block
        small.Set(0, P("203.0.113.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        CommitResult r = small.Commit();
        Assert.Equal(3, r.Refused);
        Assert.Equal(3, small.Count4);
        Assert.NotNull(small.Installed(0, P("203.0.113.0/24")));
    }

    [Fact]
    public void NexthopObject_ReplacedGroup_MovesRoutesWithoutTouchingThem()
    {
        Up(1);
        Up(2);
        var nh = new NexthopKey(0, 10);
        _f.SetNexthop(nh, Via(1, "10.0.0.1"));
        for (int i = 0; i < 50; i++)
            _f.Set(0, P($"100.64.{i}.0/24"), RouteSource.Kernel, RouteTarget.Object(nh));
        _f.Commit();
        int g = Lookup("100.64.3.1");
        Assert.Equal(nh, _f.Installed(0, P("100.64.3.0/24"))!.Nexthop);
        long writes = _b.Writes;

        _f.SetNexthop(nh, RouteTarget.Via(false, new NextHop(1, Ip("10.0.0.1"), 1), new NextHop(2, Ip("10.0.1.1"), 1)));
        CommitResult r = _f.Commit();
        Assert.Equal((0, 1), (r.FibWrites, r.GroupRewrites));
        Assert.Equal(writes, _b.Writes); // not one route written
        Assert.Equal(g, Lookup("100.64.3.1"));
        Assert.Equal(2, _f.PublishedBuckets(g).Length);
        Assert.True(_f.GroupCopiesEqual(g));

        _f.SetNexthop(nh, RouteTarget.BlackholeTarget);
        _f.Commit();
        Assert.Equal(GroupKind.Blackhole, _f.PublishedKind(g));
        Assert.Equal(0, _f.Paths); // the old content's paths were released
    }

    [Fact]
    public void NexthopObject_RouteBeforeObject_PuntsThenForwards()
    {
        Up(1);
        var nh = new NexthopKey(0, 11);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, RouteTarget.Object(nh));
        _f.Commit();
        Assert.Equal(GroupKind.PuntToLinux, KindAt("198.51.100.1"));
        _f.SetNexthop(nh, Via(1, "10.0.0.1"));
        _f.Commit();
        Assert.Equal(GroupKind.Forward, KindAt("198.51.100.1"));
        // Deleted while a route still names it: the route punts until the kernel removes it.
        _f.SetNexthop(nh, null);
        _f.Commit();
        Assert.Equal(GroupKind.PuntToLinux, KindAt("198.51.100.1"));
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, null);
        _f.Commit();
        Assert.Equal(0, _f.Groups);
    }

    [Fact]
    public void TwoTables_SamePrefix_DifferentNextHops_ClosedWhenEmpty()
    {
        Up(1);
        Up(2);
        int t = _f.OpenTable(new TableId(0, 100), new FibCapacity(64, 8), new FibCapacity(64, 8), out string? err);
        Assert.Null(err);
        Assert.Equal(1, t);
        Assert.NotEqual(0, _pub.Current.V4[t]);
        _f.Set(0, P("10.9.0.0/16"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Set(t, P("10.9.0.0/16"), RouteSource.Kernel, Via(2, "10.0.1.1"));
        _f.Commit();
        Assert.NotEqual(Lookup("10.9.1.1", 0), Lookup("10.9.1.1", t));
        Assert.Equal((ushort)2, _f.Installed(t, P("10.9.0.0/16"))!.Paths[0].Port);
        Assert.False(_f.CloseTable(t)); // not empty
        _f.Set(t, P("10.9.0.0/16"), RouteSource.Kernel, null);
        _f.Commit();
        int live = _b.Live;
        Assert.True(_f.CloseTable(t));
        Assert.Equal(0, _pub.Current.V4[t]);
        Assert.Equal(live - 4, _b.Live); // two copies, two families
        Assert.Equal(-1, _f.TableIndex(new TableId(0, 100)));
    }

    [Fact]
    public void OpenTable_OutOfMemory_OneLineReason()
    {
        _b.FailCreate = true;
        int t = _f.OpenTable(new TableId(0, 100), new FibCapacity(64, 8), new FibCapacity(64, 8), out string? err);
        Assert.Equal(-1, t);
        Assert.Contains("not enough EAL memory", err, StringComparison.Ordinal);
        _b.FailCreate = false;
    }

    [Fact]
    public void DropInstalled_LostUntilTheSourceIsSetAgain()
    {
        Up(1);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        Assert.True(_f.DropInstalled(0, P("198.51.100.0/24")));
        Assert.Equal(0, Lookup("198.51.100.1"));
        Assert.Empty(_f.CheckDataplane(0, false)); // the model agrees it is not installed
        // A resync replays the same wish: that alone puts it back.
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        Assert.Equal(GroupKind.Forward, KindAt("198.51.100.1"));
    }

    [Fact]
    public void Staged_LoadUnpublishedUntilCommit_SecondCopyWrittenOnceByCatchUp()
    {
        Up(1);
        _f.Set(0, P("192.0.2.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        int published = _pub.Published.Count;
        long opsBefore = _b.Writes;

        // A load in batches: each written into the standby copy alone, nothing published, the
        // serving copy unchanged (the earlier route still there, the new ones not yet).
        for (int batch = 0; batch < 3; batch++)
        {
            for (int i = 0; i < 10; i++)
                _f.Set(0, P($"198.51.{batch * 10 + i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
            Assert.True(_f.Stage(out int refused));
            Assert.Equal(0, refused);
        }
        Assert.Equal(published, _pub.Published.Count);
        Assert.Equal(0, Lookup("198.51.5.1"));
        Assert.NotEqual(0, Lookup("192.0.2.1"));
        Assert.Equal(30, _b.Writes - opsBefore); // one copy
        Assert.Equal(30, _f.Pending);

        // The last batch and the publish; the other copy is left for later.
        _f.Set(0, P("198.51.30.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        CommitResult r = _f.Commit(deferSecondCopy: true);
        Assert.Equal((31, false), (r.FibWrites, r.GraceTimedOut));
        Assert.NotEqual(0, Lookup("198.51.5.1"));
        Assert.NotEqual(0, Lookup("198.51.30.1"));
        Assert.Equal(31, _b.Writes - opsBefore);
        Assert.Empty(_f.CheckDataplane(0, false)); // the copy behind is not checked yet

        Assert.True(_f.CatchUp());
        Assert.Equal(62, _b.Writes - opsBefore); // the other copy, once
        Assert.False(_f.CatchUp());
        Assert.Empty(_f.CheckDataplane(0, false)); // both copies now
        for (int i = 0; i <= 30; i++)
            AssertCopiesAgree($"198.51.{i}.0/24");

        // Business as usual after: a change lands in the copy that was behind, then in both.
        _f.Set(0, P("198.51.5.0/24"), RouteSource.Kernel, null);
        _f.Commit();
        Assert.Equal(0, Lookup("198.51.5.1"));
        AssertCopiesAgree("198.51.5.0/24");
        Assert.Empty(_f.CheckDataplane(0, false));
    }

    [Fact]
    public void ShadowLoad_HelperWritesTheOtherCopyOnce_BothCopiesLevelAfterCatchUp()
    {
        Up(1);
        int helper = 0;
        _f.BeginShadowLoads(() => helper = Environment.CurrentManagedThreadId);
        long before = _b.Writes;
        // A start-up load in batches, with a delete and a change among them (ops of every kind).
        for (int batch = 0; batch < 4; batch++)
        {
            for (int i = 0; i < 200; i++)
                _f.Set(0, P($"10.{batch}.{i}.0/24"), RouteSource.Kernel, Via(1, "10.255.0.1"));
            _f.Set(0, P($"2001:db8:{batch}::/48"), RouteSource.Kernel, Via(1, "fe80::1"));
            if (batch == 2)
            {
                _f.Set(0, P("10.0.7.0/24"), RouteSource.Kernel, null);
                _f.Set(0, P("10.1.9.0/24"), RouteSource.Kernel, RouteTarget.BlackholeTarget);
            }
            Assert.True(_f.Stage(out int refused));
            Assert.Equal(0, refused);
        }
        _f.Set(0, P("10.9.0.0/16"), RouteSource.Kernel, Via(1, "10.255.0.1"));
        Assert.False(_f.Commit(deferSecondCopy: true).GraceTimedOut);
        Assert.True(_f.CatchUp());
        _f.EndShadowLoads();

        Assert.NotEqual(0, helper);
        Assert.NotEqual(Environment.CurrentManagedThreadId, helper);
        // 804 adds, one delete and one change in the first copy (807 writes); the other copy
        // the same, from the helper and the last batch's replay: each write made once per copy.
        Assert.Equal(2 * 807, _b.Writes - before);
        Assert.Empty(_f.CheckDataplane(0, false));
        Assert.Empty(_f.CheckDataplane(0, true));
        foreach (string p in new[] { "10.0.7.0/24", "10.1.9.0/24", "10.3.199.0/24", "10.9.0.0/16", "2001:db8:3::/48" })
            AssertCopiesAgree(p);
        Assert.Equal(0, Lookup("10.0.7.1"));
        Assert.Equal(GroupKind.Blackhole, KindAt("10.1.9.1"));

        // After the load: commits write both copies themselves.
        _f.Set(0, P("10.2.2.0/24"), RouteSource.Kernel, null);
        long mid = _b.Writes;
        _f.Commit();
        Assert.Equal(2, _b.Writes - mid);
        AssertCopiesAgree("10.2.2.0/24");
    }

    [Fact]
    public void ShadowLoad_AnOrdinaryCommitMidLoad_LevelsTheCopiesWithoutWritingTwice()
    {
        Up(1);
        _f.BeginShadowLoads();
        long before = _b.Writes;
        for (int i = 0; i < 100; i++)
            _f.Set(0, P($"203.0.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        Assert.True(_f.Stage(out _));
        // Another namespace commits before the load ends: the staged writes are published and
        // the copy the helper was writing is levelled (its part not written again).
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        Assert.Equal(101, _f.Commit().FibWrites);
        Assert.Equal(202, _b.Writes - before);
        // The load goes on, now staging into the other copy, the helper writing the first.
        for (int i = 100; i < 150; i++)
            _f.Set(0, P($"203.0.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        Assert.True(_f.Stage(out _));
        _f.Commit();
        _f.EndShadowLoads();
        Assert.Equal(302, _b.Writes - before);
        Assert.Empty(_f.CheckDataplane(0, false));
        foreach (string p in new[] { "203.0.0.0/24", "203.0.149.0/24", "198.51.100.0/24" })
            AssertCopiesAgree(p);
    }

    [Fact]
    public void ShadowLoad_TableFullMidLoad_GrownAfterTheLoad_BothCopiesHoldEverything()
    {
        using var small = new FibWriter(_b, _pub, new TableId(9, 254), new FibCapacity(64, 4), new FibCapacity(64, 4));
        small.SetPort(1, true, 1500, PortMac);
        small.BeginShadowLoads();
        int refused = 0;
        for (int batch = 0; batch < 5; batch++)
        {
            for (int i = 0; i < 20; i++)
                small.Set(0, P($"198.51.{batch * 20 + i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
            Assert.True(small.Stage(out int r));
            refused += r;
        }
        Assert.Equal(100 - 64, refused); // the staged copy is full; the helper's copy got the same ops
        Assert.False(small.Commit(deferSecondCopy: true).GraceTimedOut);
        Assert.True(small.CatchUp()); // levels the copies, then grows the table and retries
        small.EndShadowLoads();
        Assert.Equal(1, small.TablesGrown);
        Assert.Equal(100, small.Count4);
        Assert.Equal(0, small.RefusedPrefixes);
        Assert.Empty(small.CheckDataplane(0, false));
        Assert.NotEqual(0, small.Lookup(0, false, Ip("198.51.99.1")));
    }

    /// <summary>Stores nothing and allocates nothing: counts the writes per instance.</summary>
    private sealed class CountingBackend : IFibBackend
    {
        private int _next;
        public readonly long[] Writes = new long[64];
        public nint Create(string name, bool v6, FibCapacity c, out int errno)
        {
            errno = 0;
            return ++_next;
        }
        public void Free(nint fib, bool v6) { }
        public int Add(nint fib, in FibKey p, ushort nextHop)
        {
            Interlocked.Increment(ref Writes[fib]);
            return 0;
        }
        public int Delete(nint fib, in FibKey p)
        {
            Interlocked.Increment(ref Writes[fib]);
            return 0;
        }
        public bool TryGetExact(nint fib, in FibKey p, out ushort nextHop)
        {
            nextHop = 0;
            return false;
        }
        public ushort Lookup(nint fib, bool v6, UInt128 address) => 0;
        public long EstimateBytes(bool v6, FibCapacity c) => 0;
        public uint MaxTbl8(bool v6) => 1024;
    }

    private static void LargeLoad(FibWriter w, RouteTarget via, int count)
    {
        w.BeginShadowLoads();
        for (int i = 0; i < count; i++)
        {
            w.Set(0, new Prefix(false, (UInt128)(0x0A000000u + ((uint)i << 8)), 24), RouteSource.Kernel, via);
            if (i % 20_000 == 19_999)
                Assert.True(w.Stage(out _));
        }
        Assert.False(w.Commit(deferSecondCopy: true).GraceTimedOut);
    }

    [Fact]
    public void LargeStagedLoad_OpLogIsNative_NoManagedAllocationPerWrite()
    {
        // 150,000 writes: a managed log would have grown to large-object arrays (megabytes),
        // each of which starts a gen2 collection. (The reference backend allocates itself: a
        // backend that only counts.)
        var counting = new CountingBackend();
        using var big = new FibWriter(counting, _pub, new TableId(10, 254), new FibCapacity(1 << 18, 64), new FibCapacity(1024, 64));
        big.SetPort(1, true, 1500, PortMac);
        RouteTarget via = Via(1, "10.0.0.1");
        big.Set(0, P("10.255.0.0/24"), RouteSource.Kernel, via); // interns the target, sizes the maps' first steps
        big.Commit();
        LargeLoad(big, via, 1000); // the code paths once (JIT, the helper's thread)
        Assert.True(big.CatchUp());
        for (int i = 0; i < 1000; i++)
            big.Set(0, new Prefix(false, (UInt128)(0x0A000000u + ((uint)i << 8)), 24), RouteSource.Kernel, null);
        big.Commit();
        long before = GC.GetAllocatedBytesForCurrentThread();
        LargeLoad(big, via, 150_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(big.CatchUp());
        big.EndShadowLoads();
        Assert.True(allocated < 64 * 1024, $"{allocated} bytes allocated on the writer's thread during the load");
        Assert.Equal(150_000, big.Count4); // (10.255.0.0/24 is among them)
    }

    [Fact]
    public void LargeStagedLoad_LogSpansChunks_BothCopiesLevel_LogReusedAfter()
    {
        using var big = new FibWriter(_b, _pub, new TableId(11, 254), new FibCapacity(1 << 18, 64), new FibCapacity(1024, 64));
        big.SetPort(1, true, 1500, PortMac);
        RouteTarget via = Via(1, "10.0.0.1");
        long before = _b.Writes;
        LargeLoad(big, via, 150_000); // three chunks of the op log
        Assert.True(big.CatchUp());
        big.EndShadowLoads();
        Assert.Equal(300_000, _b.Writes - before);
        Assert.Equal(150_000, big.Count4);
        Assert.Empty(big.CheckDataplane(0, false));
        // The log was emptied and its extra chunks freed: the next commit writes both copies.
        big.Set(0, P("10.0.5.0/24"), RouteSource.Kernel, null);
        Assert.Equal(1, big.Commit().FibWrites);
        Assert.Equal(0, big.Lookup(0, false, Ip("10.0.5.1")));
        Assert.Empty(big.CheckDataplane(0, false));
    }

    [Fact]
    public void Staged_ThenAnOrdinaryCommit_PublishesEverythingAndLevelsBothCopies()
    {
        Up(1);
        for (int i = 0; i < 5; i++)
            _f.Set(0, P($"203.0.{i}.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        Assert.True(_f.Stage(out _));
        // Something else commits before the load ends (another namespace, a peer refresh):
        // nothing new is dirty, yet the staged writes are published and both copies level.
        CommitResult r = _f.Commit();
        Assert.Equal(5, r.FibWrites);
        Assert.NotEqual(0, Lookup("203.0.4.1"));
        Assert.Equal(0, _f.Pending);
        for (int i = 0; i < 5; i++)
            AssertCopiesAgree($"203.0.{i}.0/24");
        Assert.Empty(_f.CheckDataplane(0, false));
    }

    [Fact]
    public void CheckDataplane_FindsAPrefixMissingFromACopy()
    {
        Up(1);
        _f.Set(0, P("198.51.100.0/24"), RouteSource.Kernel, Via(1, "10.0.0.1"));
        _f.Commit();
        Assert.Empty(_f.CheckDataplane(0, false));
        _b.Delete(_pub.Current.V4[0], new FibKey(0, P("198.51.100.0/24"))); // behind the writer's back
        string d = Assert.Single(_f.CheckDataplane(0, false));
        Assert.Contains("198.51.100.0/24: missing from copy", d, StringComparison.Ordinal);
    }

    [Fact]
    public void Ipv6_ForwardsAndAttached()
    {
        Up(1);
        _f.Set(0, P("2001:db8:1::/64"), RouteSource.Kernel, RouteTarget.Attached(1, true));
        _f.Set(0, P("2001:db8:9::/48"), RouteSource.Kernel, Via(1, "2001:db8:1::2"));
        _f.Commit();
        Assert.Equal(GroupKind.Glean, KindAt("2001:db8:1::5"));
        Assert.Equal(GroupKind.Forward, KindAt("2001:db8:9::1"));
        Assert.Equal(2, _f.Count6);
    }
}
