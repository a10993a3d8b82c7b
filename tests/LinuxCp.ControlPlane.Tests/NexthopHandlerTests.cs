using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>Kernel nexthop objects: routes by nhid alone (compat mode 0), groups with weights,
/// replacing a group or a member in one commit without touching the routes, deletion.</summary>
public sealed class NexthopHandlerTests : IDisposable
{
    private readonly SyncHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void RouteByNhidOnly_FollowsTheObject()
    {
        _h.Feed(w => w
            .Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2")
            .Route(false, "198.51.100.0/24", nhid: 1));
        FibEntry e = _h.Entry("198.51.100.1")!;
        Assert.Equal(GroupKind.Forward, e.Kind);
        Assert.Equal(new NexthopKey(0, 1), e.Nexthop);
        Assert.Equal(((ushort)0, SyncHarness.Ip("10.0.0.2")), (e.Paths[0].Port, e.Paths[0].Via));
    }

    [Fact]
    public void CompatMode_RouteCarriesBoth_TheObjectWins()
    {
        // With nexthop_compat_mode=1 the kernel repeats the gateway: the route must still follow
        // the object (so replacing the object moves it).
        _h.Feed(w => w
            .Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2")
            .Route(false, "198.51.100.0/24", nhid: 1, hops: (10, "10.0.0.2", 1)));
        Assert.Equal(new NexthopKey(0, 1), _h.Entry("198.51.100.1")!.Nexthop);
    }

    [Fact]
    public void Group_WeightsBecomeBuckets()
    {
        _h.Feed(w => w
            .Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2")
            .Nexthop(false, 2, ifindex: 11, gateway: "10.0.1.2")
            .Nexthop(false, 10, group: [(1, 1), (2, 3)])
            .Route(false, "198.51.100.0/24", nhid: 10));
        FibEntry e = _h.Entry("198.51.100.1")!;
        Assert.Equal(2, e.Paths.Count);
        int[] buckets = _h.Fib.PublishedBuckets(e.Group);
        Assert.Equal(16, buckets.Length);
        Assert.Equal(2, buckets.Distinct().Count());
    }

    [Fact]
    public void ReplaceGroup_SameFibGroup_NewBuckets_NoRouteWritten()
    {
        _h.Feed(w =>
        {
            w.Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2").Nexthop(false, 2, ifindex: 11, gateway: "10.0.1.2")
             .Nexthop(false, 10, group: [(1, 1)]);
            for (int i = 0; i < 200; i++)
                w.Route(false, $"100.64.{i}.0/24", nhid: 10);
        });
        int g = _h.Entry("100.64.5.1")!.Group;
        long writes = _h.Backend.Writes;
        CommitResult r = _h.Feed(w => w.Nexthop(false, 10, group: [(1, 1), (2, 1)]));
        Assert.Equal((0, 1), (r.FibWrites, r.GroupRewrites));
        Assert.Equal(writes, _h.Backend.Writes);
        FibEntry e = _h.Entry("100.64.5.1")!;
        Assert.Equal(g, e.Group);
        Assert.Equal(2, e.Paths.Count);
    }

    [Fact]
    public void ReplaceMember_GroupsUsingItFollow()
    {
        _h.Feed(w => w
            .Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2")
            .Nexthop(false, 10, group: [(1, 1)])
            .Route(false, "198.51.100.0/24", nhid: 10));
        _h.Feed(w => w.Nexthop(false, 1, ifindex: 11, gateway: "10.0.1.2"));
        FibEntry e = _h.Entry("198.51.100.1")!;
        Assert.Equal(((ushort)1, SyncHarness.Ip("10.0.1.2")), (e.Paths[0].Port, e.Paths[0].Via));
    }

    [Fact]
    public void Delete_RoutesUsingItGoToo()
    {
        _h.Feed(w => w
            .Nexthop(false, 1, ifindex: 10, gateway: "10.0.0.2")
            .Route(false, "198.51.100.0/24", nhid: 1)
            .Route(false, "203.0.113.0/24", hops: (10, "10.0.0.2", 1)));
        _h.Feed(w => w.Nexthop(true, 1));
        Assert.Null(_h.Entry("198.51.100.1"));
        Assert.NotNull(_h.Entry("203.0.113.1"));
        Assert.Equal(1, _h.Ns.Routes.Count);
        Assert.Equal(0, _h.Fib.Nexthops);
    }

    [Fact]
    public void BlackholeAndForeignDevice()
    {
        _h.Feed(w => w
            .Nexthop(false, 3, blackhole: true)
            .Nexthop(false, 4, ifindex: 2, gateway: "192.168.9.1")
            .Route(false, "192.0.2.0/25", nhid: 3)
            .Route(false, "192.0.2.128/25", nhid: 4));
        Assert.Equal(GroupKind.Blackhole, _h.Kind("192.0.2.1"));
        Assert.Equal(GroupKind.PuntToLinux, _h.Kind("192.0.2.129"));
    }

    [Fact]
    public void Ipv6RouteByNhid()
    {
        _h.Feed(w => w
            .Nexthop(false, 6, ifindex: 11, gateway: "2001:db8:2::2")
            .Route(false, "2001:db8:99::/48", nhid: 6));
        FibEntry e = _h.Entry("2001:db8:99::1")!;
        Assert.Equal(GroupKind.Forward, e.Kind);
        Assert.Equal((ushort)1, e.Paths[0].Port);
    }
}
