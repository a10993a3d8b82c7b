using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>Table bindings (explicit, rules) and mark-and-sweep resync.</summary>
public sealed class TableAndResyncTests
{
    [Fact]
    public void ExplicitBinding_TwoTablesWithOverlappingPrefixes_EachPortItsOwn()
    {
        using var h = new SyncHarness(SyncHarness.Lcp0, SyncHarness.Lcp1 with { Table = 200 });
        h.Feed(w => w
            .Route(false, "10.9.0.0/16", hops: (10, "10.0.0.2", 1))
            .Route(false, "10.9.0.0/16", table: 200, hops: (11, "10.0.1.2", 1)));
        int t = h.Ns.TableIndex(200);
        Assert.Equal(("explicit", 200u), (h.Ns.Binding(SyncHarness.Lcp1 with { Table = 200 }).Source, h.Ns.Binding(SyncHarness.Lcp1 with { Table = 200 }).Table));
        Assert.Equal((ushort)0, h.Entry("10.9.1.1", 0)!.Paths[0].Port);
        Assert.Equal((ushort)1, h.Entry("10.9.1.1", t)!.Paths[0].Port);
    }

    [Fact]
    public void Rules_LowestPriorityWins_DeleteReturnsToMain_OtherSelectorsWarnedOnce()
    {
        using var h = new SyncHarness();
        h.Feed(w => w
            .Rule(false, 100, iifname: "lcp1", priority: 2000)
            .Rule(false, 300, iifname: "lcp1", priority: 1000));
        Assert.Equal(300u, h.Ns.Binding(SyncHarness.Lcp1).Table);
        h.Feed(w => w.Rule(true, 300, iifname: "lcp1", priority: 1000));
        Assert.Equal(100u, h.Ns.Binding(SyncHarness.Lcp1).Table);
        h.Feed(w => w.Rule(true, 100, iifname: "lcp1", priority: 2000));
        Assert.Equal(("main", 254u), (h.Ns.Binding(SyncHarness.Lcp1).Source, h.Ns.Binding(SyncHarness.Lcp1).Table));

        h.Feed(w => w.Rule(false, 500, from: "10.0.0.0/8", priority: 100));
        h.Feed(w => w.Rule(false, 500, from: "10.0.0.0/8", priority: 100)); // the same again
        Assert.Single(h.Warnings, w => w.Contains("does not apply it", StringComparison.Ordinal));
        Assert.Single(h.Ns.Rules.Unsupported);
    }

    [Fact]
    public void DefaultRules_Understood()
    {
        using var h = new SyncHarness();
        h.Feed(w => w
            .Rule(false, Nl.TableLocal, priority: 0)
            .Rule(false, Nl.TableMain, priority: 32766)
            .Rule(false, Nl.TableDefault, priority: 32767));
        Assert.Empty(h.Ns.Rules.Unsupported);
        Assert.Empty(h.Warnings);
    }

    private static void FullState(NetlinkWriter w) => w
        .Link(false, 1, "lo", mtu: 65536)
        .Link(false, 2, "eth9")
        .Link(false, 10, "lcp0", mac: SyncHarness.Mac0.Bits)
        .Link(false, 11, "lcp1", mac: SyncHarness.Mac1.Bits)
        .Link(false, 12, "tun2")
        .Address(false, 10, "10.0.0.1/24")
        .Nexthop(false, 1, ifindex: 11, gateway: "10.0.1.2")
        .Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1))
        .Route(false, "203.0.113.0/24", nhid: 1)
        .Neighbor(false, 10, "10.0.0.2", 0x0000_aa00_0000_0002UL);

    [Fact]
    public void Resync_SameState_NothingRemoved_NoFibWrite()
    {
        using var h = new SyncHarness();
        h.Feed(FullState);
        long writes = h.Backend.Writes;
        Assert.Equal(0, h.Resync(FullState));
        Assert.Equal(writes, h.Backend.Writes);
        Assert.Equal(GroupKind.Forward, h.Kind("203.0.113.1"));
    }

    [Fact]
    public void Resync_WhatTheDumpLacks_IsRemoved_EveryKind()
    {
        using var h = new SyncHarness();
        h.Feed(FullState);
        h.Feed(w => w
            .Route(false, "192.0.2.0/24", hops: (11, "10.0.1.2", 1))
            .Address(false, 11, "10.0.1.1/24")
            .Neighbor(false, 11, "10.0.1.2", 0x0000_aa00_0000_0003UL)
            .Nexthop(false, 2, ifindex: 10, gateway: "10.0.0.9")
            .Route(false, "192.0.3.0/24", nhid: 2));
        Assert.NotNull(h.Entry("192.0.2.1"));
        // The overrun lost their deletions: the resync's dump no longer has them.
        int removed = h.Resync(FullState);
        Assert.Equal(5, removed); // 2 routes, an address, a neighbour, a nexthop
        Assert.Null(h.Entry("192.0.2.1"));
        Assert.Null(h.Entry("192.0.3.1"));
        Assert.Null(h.Entry("10.0.1.1"));
        Assert.Null(h.Entry("10.0.1.2"));
        Assert.Equal(1, h.Fib.Nexthops);
        Assert.Equal(GroupKind.Forward, h.Kind("198.51.100.1"));
        Assert.Equal(GroupKind.Local, h.Kind("10.0.0.1"));
    }

    [Fact]
    public void Resync_EmptyDump_WithdrawsEverythingOfTheNamespace()
    {
        using var h = new SyncHarness();
        h.Feed(FullState);
        h.Resync(_ => { });
        Assert.Equal((0, 0), (h.Fib.Count4, h.Fib.Count6));
        Assert.Equal(0, h.Fib.Nexthops);
        Assert.Single(h.Deleted, m => m.IfIndex == 10); // the mirror links went too
    }

    [Fact]
    public void Malformed_Counted_TheRestApplied()
    {
        using var h = new SyncHarness();
        var w = new NetlinkWriter();
        w.Begin(Nl.NewRoute, 0).Bytes(new byte[5]).End(); // rtmsg cut short
        w.Route(false, "198.51.100.0/24", hops: (10, "10.0.0.2", 1));
        h.Feed(w);
        Assert.Equal(1, h.Malformed);
        Assert.NotNull(h.Entry("198.51.100.1"));
    }
}
