using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>The struct model of a namespace's kernel routes: several routes per prefix (metric,
/// TOS), best-route choice, removal in any order, tables kept apart, sync marks, and interned
/// next-hop lists that are freed when the last route using them goes.</summary>
public sealed class KernelRoutesTests
{
    private const byte Unicast = 1, Blackhole = 6; // RTN_UNICAST, RTN_BLACKHOLE
    private static readonly RouteKey P = new(254, Prefix.Parse("198.51.100.0/24"));
    private static readonly RouteNextHop Gw1 = new(3, 0x0A000002, true, 1);
    private static readonly RouteNextHop Gw2 = new(4, 0x0A000102, true, 1);

    private static KernelRoute R(KernelRoutes r, uint metric, byte type, params RouteNextHop[] hops) =>
        new() { Metric = metric, Type = type, Hops = r.Hops.Acquire(hops) };

    [Fact]
    public void SeveralMetrics_BestIsLowest_RemovalInAnyOrderKeepsTheRest()
    {
        using var r = new KernelRoutes();
        r.Put(P, R(r, 200, Unicast, Gw1));
        r.Put(P, R(r, 100, Unicast, Gw2));
        r.Put(P, R(r, 300, Blackhole));
        Assert.Equal(3, r.Count);
        Assert.True(r.TryGetBest(P, out KernelRoute best));
        Assert.Equal(100u, best.Metric);
        Assert.Equal(Gw2, Assert.Single(r.Hops.Get(best.Hops)));

        // Removing the first-stored route promotes another; the best follows.
        Assert.True(r.Remove(P, 200, 0));
        Assert.True(r.TryGetBest(P, out best));
        Assert.Equal(100u, best.Metric);
        Assert.True(r.Remove(P, 100, 0));
        Assert.True(r.TryGetBest(P, out best));
        Assert.Equal(300u, best.Metric);
        Assert.Equal(Blackhole, best.Type);
        Assert.False(r.Remove(P, 100, 0));
        Assert.True(r.Remove(P, 300, 0));
        Assert.False(r.TryGetBest(P, out _));
        Assert.Equal(0, r.Count);
    }

    [Fact]
    public void Replace_SameKey_OneRoute_OldHopsReleased()
    {
        using var r = new KernelRoutes();
        r.Put(P, R(r, 0, Unicast, Gw1));
        r.Put(P, R(r, 0, Unicast, Gw2)); // replace
        Assert.Equal(1, r.Count);
        Assert.True(r.TryGet(P, 0, 0, out KernelRoute route));
        Assert.Equal(Gw2, Assert.Single(r.Hops.Get(route.Hops)));
        Assert.Equal(1, r.Hops.Count); // Gw1's list is gone
        r.Remove(P, 0, 0);
        Assert.Equal(0, r.Hops.Count);
    }

    [Fact]
    public void SamePrefix_TwoTables_KeptApart()
    {
        using var r = new KernelRoutes();
        var other = new RouteKey(100, Prefix.Parse("198.51.100.0/24"));
        r.Put(P, R(r, 0, Unicast, Gw1));
        r.Put(other, R(r, 0, Unicast, Gw2));
        Assert.Equal(2, r.Count);
        Assert.True(r.TryGetBest(other, out KernelRoute b));
        Assert.Equal(Gw2, Assert.Single(r.Hops.Get(b.Hops)));
        Assert.True(r.Remove(P, 0, 0));
        Assert.True(r.TryGetBest(other, out _));
    }

    private readonly struct Stale(byte epoch) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => route.Mark != epoch;
    }

    [Fact]
    public void Mark_StampsOneRoute_CollectFindsTheUnmarked()
    {
        using var r = new KernelRoutes();
        r.Put(P, R(r, 10, Unicast, Gw1));
        r.Put(P, R(r, 20, Unicast, Gw2));
        r.Mark(P, 20, 0, 7);
        using var stale = new NativeList<(RouteKey, uint, byte)>();
        r.Collect(stale, new Stale(7));
        Assert.Equal(1, stale.Count);
        Assert.Equal(10u, stale[0].Item2);
    }

    [Fact]
    public void HopLists_InternedByContent_SharedAndRefCounted()
    {
        var hops = new HopSets();
        int a = hops.Acquire([Gw1, Gw2]);
        int b = hops.Acquire([Gw1, Gw2]);
        int c = hops.Acquire([Gw2, Gw1]); // another order is another list (buckets differ)
        int single = hops.Acquire([Gw1]);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a, single);
        Assert.Equal(0, hops.Acquire([]));
        Assert.Equal(3, hops.Count);
        hops.Release(a);
        Assert.Equal([Gw1, Gw2], hops.Get(b)); // still referenced once
        hops.Release(b);
        Assert.Equal(2, hops.Count);
        int again = hops.Acquire([Gw1, Gw2]); // reuses the freed id
        Assert.Equal(a, again);
    }

    [Fact]
    public void ManyPrefixes_AllFoundAndRemoved()
    {
        using var r = new KernelRoutes();
        static RouteKey K(uint i) => new(254, new Prefix(false, 0x64000000u + (i << 8), 24));
        for (uint i = 0; i < 50_000; i++)
            r.Put(K(i), R(r, 0, Unicast, Gw1));
        Assert.Equal(50_000, r.Count);
        Assert.Equal(1, r.Hops.Count); // one shared list
        for (uint i = 0; i < 50_000; i += 2)
            Assert.True(r.Remove(K(i), 0, 0));
        Assert.Equal(25_000, r.Count);
        Assert.True(r.TryGetBest(K(1), out _));
        Assert.False(r.TryGetBest(K(0), out _));
    }
}
