using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>Links (mirror state, deletion, VRF devices), addresses and neighbours.</summary>
public sealed class LinkAddressNeighborTests : IDisposable
{
    private readonly SyncHarness _h = new();

    public void Dispose() => _h.Dispose();

    private void Neighbor(int ifindex, string ip, ulong mac = 0x0000_aa00_0000_0002UL, ushort state = Nl.NudReachable) =>
        _h.Feed(w => w.Neighbor(false, ifindex, ip, mac, state));

    [Fact]
    public void MirrorAdminDown_PathsGlean_AndAResyncIsAsked()
    {
        _h.Feed(w => w.Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1)));
        Neighbor(10, "10.0.0.2");
        int pid = _h.Fib.PublishedBuckets(_h.Entry("198.51.100.1")!.Group)[0];
        Assert.Equal(PathKind.Forward, _h.Fib.PublishedPath(pid).Kind);
        _h.Feed(w => w.Link(false, 10, "lcp0", flags: 0, mac: SyncHarness.Mac0.Bits));
        Assert.Equal(PathKind.Glean, _h.Fib.PublishedPath(pid).Kind);
        Assert.True(_h.Ns.ResyncWanted); // Linux flushes IPv4 routes of a downed link silently
        Assert.Contains((10, false, (ushort)1500), _h.LinkApplied);
    }

    [Fact]
    public void MirrorMtu_AppliedToThePortAndThePaths()
    {
        _h.Feed(w => w.Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1)));
        Neighbor(10, "10.0.0.2");
        _h.Feed(w => w.Link(false, 10, "lcp0", mtu: 1400, mac: SyncHarness.Mac0.Bits));
        int pid = _h.Fib.PublishedBuckets(_h.Entry("198.51.100.1")!.Group)[0];
        Assert.Equal((ushort)1400, _h.Fib.PublishedPath(pid).Mtu);
        Assert.Contains((10, true, (ushort)1400), _h.LinkApplied);
    }

    [Fact]
    public void MirrorDeleted_Reported_NeighboursLeaveTheFib()
    {
        _h.Feed(w => w.Route(false, "10.0.0.0/24", hops: (10, null, 1)));
        Neighbor(10, "10.0.0.2");
        Assert.Equal(GroupKind.Forward, _h.Kind("10.0.0.2"));
        _h.Feed(w => w.Link(true, 10, "lcp0"));
        Assert.Equal(SyncHarness.Lcp0, Assert.Single(_h.Deleted));
        Assert.Null(_h.Fib.Installed(0, Prefix.Parse("10.0.0.2/32"))); // the connected /24 goes with the kernel's own message
        Assert.True(_h.Ns.ResyncWanted);
        Assert.Empty(_h.Fib.Neighbors());
    }

    [Fact]
    public void VrfDevice_MembersForwardInItsTable_LeavingItReturnsToMain()
    {
        // Synthetic l3mdev messages: this kernel cannot create VRF devices.
        _h.Feed(w => w
            .Link(false, 50, "vrf-blue", kind: "vrf", vrfTable: 1001)
            .Route(false, "198.51.100.0/24", table: 1001, hops: (11, "10.0.1.2", 1))
            .Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1))
            .Link(false, 11, "lcp1", master: 50, mac: SyncHarness.Mac1.Bits));
        int t = _h.Ns.TableIndex(1001);
        Assert.True(t > 0);
        Assert.Contains(((ushort)1, t), _h.PortTables);
        Assert.Equal((ushort)1, _h.Entry("198.51.100.1", t)!.Paths[0].Port);
        Assert.Equal((ushort)0, _h.Entry("198.51.100.1", 0)!.Paths[0].Port); // main keeps its own
        Assert.Equal(("vrf", 1001u), (_h.Ns.Binding(SyncHarness.Lcp1).Source, _h.Ns.Binding(SyncHarness.Lcp1).Table));

        _h.Feed(w => w.Link(false, 11, "lcp1", master: 0, mac: SyncHarness.Mac1.Bits));
        Assert.Contains(((ushort)1, 0), _h.PortTables);
        Assert.Equal(-1, _h.Ns.TableIndex(1001)); // no port uses it: withdrawn and closed
        Assert.Equal(-1, _h.Fib.TableIndex(new TableId(0, 1001)));
    }

    [Fact]
    public void Address_LocalInEveryActiveTable_UntilTheLastCopyGoes()
    {
        _h.Feed(w => w
            .Address(false, 10, "10.0.0.1/24")
            .Address(false, 11, "10.0.0.1/32")
            .Rule(false, 100, iifname: "lcp1"));
        int t = _h.Ns.TableIndex(100);
        Assert.Equal(GroupKind.Local, _h.Kind("10.0.0.1"));
        Assert.Equal(GroupKind.Local, _h.Kind("10.0.0.1", t));
        _h.Feed(w => w.Address(true, 10, "10.0.0.1/24"));
        Assert.Equal(GroupKind.Local, _h.Kind("10.0.0.1")); // still on lcp1
        _h.Feed(w => w.Address(true, 11, "10.0.0.1/32"));
        Assert.Null(_h.Entry("10.0.0.1"));
        Assert.Null(_h.Entry("10.0.0.1", t));
    }

    [Fact]
    public void Neighbor_ResolvedHostRouteAndAdjacency_FailedRemoved()
    {
        _h.Feed(w => w.Route(false, "10.0.0.0/24", hops: (10, null, 1)));
        Assert.Equal(GroupKind.Glean, _h.Kind("10.0.0.2"));
        Neighbor(10, "10.0.0.2");
        FibEntry e = _h.Entry("10.0.0.2")!;
        Assert.Equal((GroupKind.Forward, RouteSource.Neighbor), (e.Kind, e.Source));
        Assert.True(e.Paths[0].Resolved);
        Neighbor(10, "10.0.0.2", state: Nl.NudFailed);
        Assert.Equal(GroupKind.Glean, _h.Kind("10.0.0.2"));
        Assert.Empty(_h.Fib.Neighbors());
    }

    [Fact]
    public void Neighbor_OnATun_Ignored_OnLinuxInterface_Ignored()
    {
        Neighbor(12, "10.2.0.2");
        Neighbor(2, "192.168.9.1");
        Assert.Null(_h.Entry("10.2.0.2"));
        Assert.Null(_h.Entry("192.168.9.1"));
        Assert.Empty(_h.Fib.Neighbors());
    }

    [Fact]
    public void Neighbor_HostRouteInEveryTableWhoseAttachedRouteReachesIt()
    {
        Neighbor(11, "10.0.1.2");
        Assert.Null(_h.Entry("10.0.1.2")); // no attached route reaches it yet: Linux would not either
        _h.Feed(w => w.Route(false, "10.0.1.0/24", hops: (11, null, 1)));
        Assert.Equal((GroupKind.Forward, RouteSource.Neighbor), (_h.Kind("10.0.1.2"), _h.Entry("10.0.1.2")!.Source));
        // lcp1's port moves to table 100 by a rule; the connected route stays in main (so does
        // the host route), and table 100 gets its own attached route (as a VRF would have).
        _h.Feed(w => w.Rule(false, 100, iifname: "lcp1"));
        int t = _h.Ns.TableIndex(100);
        Assert.Equal(RouteSource.Neighbor, _h.Entry("10.0.1.2")!.Source);
        Assert.Null(_h.Entry("10.0.1.2", t));
        _h.Feed(w => w.Route(false, "10.0.1.0/24", table: 100, hops: (11, null, 1)));
        Assert.Equal(GroupKind.Forward, _h.Kind("10.0.1.2", t));
        _h.Feed(w => w.Route(true, "10.0.1.0/24", hops: (11, null, 1)));
        Assert.Null(_h.Entry("10.0.1.2"));
        Assert.Equal(GroupKind.Forward, _h.Kind("10.0.1.2", t));
    }

    [Fact]
    public void LearnedOnATun_HostRouteWhereAttached_AdjacencyMac_KeptOverResync_GoneWithTheMirror()
    {
        _h.Feed(w => w.Route(false, "10.2.0.0/24", hops: (12, null, 1))
            .Route(false, "198.51.100.0/24", hops: (12, "10.2.0.3", 1)));
        const ulong MacA = 0x0000_a200_0000_0002UL, MacB = 0x0000_a300_0000_0002UL;
        Assert.True(_h.Ns.Neighbors.Learned(SyncHarness.Tun2, false, SyncHarness.Ip("10.2.0.2"), MacA));
        Assert.True(_h.Ns.Neighbors.Learned(SyncHarness.Tun2, false, SyncHarness.Ip("10.2.0.3"), MacB));
        Assert.True(_h.Ns.Neighbors.Learned(SyncHarness.Tun2, false, SyncHarness.Ip("192.0.2.7"), MacB)); // a routed source: no host route
        Assert.False(_h.Ns.Neighbors.Learned(SyncHarness.Tun2, false, SyncHarness.Ip("10.2.0.2"), MacA)); // nothing new
        Assert.False(_h.Ns.Neighbors.Learned(SyncHarness.Lcp0, false, SyncHarness.Ip("10.0.0.9"), MacA)); // a TAP has Linux's
        _h.Fib.Commit();
        FibEntry host = _h.Entry("10.2.0.2")!;
        Assert.Equal((GroupKind.Forward, RouteSource.Neighbor), (host.Kind, host.Source));
        Assert.Null(_h.Entry("192.0.2.7"));
        int pid = _h.Fib.PublishedBuckets(_h.Entry("198.51.100.1")!.Group)[0];
        Assert.Equal(MacB, _h.Fib.PublishedPath(pid).DstMac);

        // A netlink resync (Linux has no neighbours there) does not sweep them.
        _h.Resync(w => w.Route(false, "10.2.0.0/24", hops: (12, null, 1)).Route(false, "198.51.100.0/24", hops: (12, "10.2.0.3", 1))
            .Link(false, 12, "tun2").Link(false, 10, "lcp0", mac: SyncHarness.Mac0.Bits).Link(false, 11, "lcp1", mac: SyncHarness.Mac1.Bits));
        Assert.Equal(RouteSource.Neighbor, _h.Entry("10.2.0.2")!.Source);

        // The mirror goes: its learned neighbours with it.
        _h.Ns.SetMirrors([SyncHarness.Lcp0, SyncHarness.Lcp1]);
        _h.Fib.Commit();
        Assert.NotEqual(RouteSource.Neighbor, _h.Entry("10.2.0.2")?.Source);
        _h.Ns.SetMirrors([SyncHarness.Lcp0, SyncHarness.Lcp1, SyncHarness.Tun2]);
        _h.Fib.Commit();
        Assert.NotEqual(RouteSource.Neighbor, _h.Entry("10.2.0.2")?.Source); // forgotten, not brought back
        Assert.True(_h.Ns.Neighbors.Learned(SyncHarness.Tun2, false, SyncHarness.Ip("10.2.0.2"), MacA));
    }
}
