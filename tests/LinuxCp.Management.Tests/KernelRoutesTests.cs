using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Management.Tests;

/// <summary>The struct model of a namespace's kernel routes: several routes per prefix (metric,
/// TOS), best-route choice, removal in any order, and interned next-hop lists that are freed
/// when the last route using them goes.</summary>
public sealed class KernelRoutesTests
{
    private const byte Unicast = 1, Blackhole = 6; // RTN_UNICAST, RTN_BLACKHOLE
    private static readonly Prefix P = Prefix.Parse("198.51.100.0/24");
    private static readonly RouteNextHop Gw1 = new(3, 0x0A000002, true, 1);
    private static readonly RouteNextHop Gw2 = new(4, 0x0A000102, true, 1);

    [Fact]
    public void SeveralMetrics_BestIsLowest_RemovalInAnyOrderKeepsTheRest()
    {
        using var r = new KernelRoutes();
        r.Put(P, 200, 0, Unicast, r.Hops.Acquire([Gw1]));
        r.Put(P, 100, 0, Unicast, r.Hops.Acquire([Gw2]));
        r.Put(P, 300, 0, Blackhole, r.Hops.Acquire([]));
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
        Assert.Empty(r.Keys());
    }

    [Fact]
    public void Replace_SameKey_OneRoute_OldHopsReleased()
    {
        using var r = new KernelRoutes();
        int before = r.Hops.Count;
        r.Put(P, 0, 0, Unicast, r.Hops.Acquire([Gw1]));
        r.Put(P, 0, 0, Unicast, r.Hops.Acquire([Gw2])); // replace
        Assert.Equal(1, r.Count);
        Assert.True(r.TryGetValue(P, 0, 0, out KernelRoute route));
        Assert.Equal(Gw2, Assert.Single(r.Hops.Get(route.Hops)));
        Assert.Equal(before + 1, r.Hops.Count); // Gw1's list is gone
        r.Remove(P, 0, 0);
        Assert.Equal(before, r.Hops.Count);
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
        Assert.Equal(4, hops.Count); // empty + 3
        hops.Release(a);
        Assert.Equal([Gw1, Gw2], hops.Get(b)); // still referenced once
        hops.Release(b);
        Assert.Equal(3, hops.Count);
        int again = hops.Acquire([Gw1, Gw2]); // reuses the freed id
        Assert.Equal(a, again);
    }

    [Fact]
    public void ManyPrefixes_AllFoundAndRemoved()
    {
        using var r = new KernelRoutes();
        for (uint i = 0; i < 50_000; i++)
            r.Put(new Prefix(false, 0x64000000u + (i << 8), 24), 0, 0, Unicast, r.Hops.Acquire([Gw1]));
        Assert.Equal(50_000, r.Count);
        Assert.Equal(2, r.Hops.Count); // one shared list (+ the empty one)
        for (uint i = 0; i < 50_000; i += 2)
            Assert.True(r.Remove(new Prefix(false, 0x64000000u + (i << 8), 24), 0, 0));
        Assert.Equal(25_000, r.Count);
        Assert.True(r.TryGetBest(new Prefix(false, 0x64000000u + (1u << 8), 24), out _));
        Assert.False(r.TryGetBest(new Prefix(false, 0x64000000u, 24), out _));
    }
}
