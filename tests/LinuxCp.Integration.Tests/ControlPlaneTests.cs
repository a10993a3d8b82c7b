using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Control plane v2 on real DPDK, real mirrors and Linux peers: restart over persistent
/// mirrors, mirrors and namespaces lost from outside, kernel nexthop objects with compat mode
/// off, two tables with overlapping prefixes, lcp verify. Each test runs its own lcpd (some kill
/// it), in the shared collection so they never overlap the other lcpd tests.</summary>
[Collection("lcpd")]
public sealed class ControlPlaneTests
{
    private static LcpdProcess Start(Topology topo, IEnumerable<string> lcpdArgs, string? socket = null)
    {
        var eal = LcpdProcess.TestEal($"lcpc{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        return LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, .. lcpdArgs], socket);
    }

    private static string[] Pairs(Topology topo, string options = "") =>
        [.. topo.Hosts.SelectMany(h => new[] { "--pair", $"{h.PortName}={h.MirrorName}{options}" })];

    private static long Counter(LcpdProcess l, string port, string name) =>
        Net.Find(l.CtlJson("show", "interfaces"), "name", port)[name]!.GetValue<long>();

    private static JsonObject Lcp(LcpdProcess l, string hostIf) => Net.Find(l.CtlJson("show", "lcp"), "host_if", hostIf);

    private static int IfIndex(string ns, string ifname) =>
        int.Parse(Cmd.InNsOk(ns, "cat", $"/sys/class/net/{ifname}/ifindex").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Transit A -> B goes through the dataplane, not Linux (after the neighbours resolved).</summary>
    private static void AssertForwardedByDataplane(Topology topo, LcpdProcess l, string dst)
    {
        Net.Ping(topo.Hosts[0].Ns, dst);
        Net.WaitUntil(() => l.CtlJson("show", "ip", "neighbors").AsArray().Count >= 2, TimeSpan.FromSeconds(5), "neighbours in the FIB");
        long linux = Net.LinuxForwarded(topo.Rt, false);
        long fwd = Counter(l, topo.Hosts[0].PortName, "forwarded");
        Net.Ping(topo.Hosts[0].Ns, dst, count: 5);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));
        Assert.True(Counter(l, topo.Hosts[0].PortName, "forwarded") >= fwd + 5, "forwarded by the dataplane");
    }

    [Fact]
    public void Sigkill_Restart_PersistentMirrorsAdopted_AddressesRoutesIfindexKept_ForwardingBack()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        var l = Start(topo, Pairs(topo, ",persist"));
        int ifA, ifB;
        try
        {
            topo.EnableRouting();
            topo.ConfigureRouterInterface(a);
            topo.ConfigureRouterInterface(b);
            // 1000 routes through B, as a routing daemon would have installed them.
            var batch = new System.Text.StringBuilder();
            for (int i = 0; i < 1000; i++)
                batch.Append(System.Globalization.CultureInfo.InvariantCulture, $"route add 100.{64 + i / 256}.{i % 256}.0/24 via {b.Ip4}\n");
            File.WriteAllText($"/tmp/lcpc-{topo.Id}.batch", batch.ToString());
            Cmd.InNsOk(topo.Rt, "ip", "-batch", $"/tmp/lcpc-{topo.Id}.batch");
            Net.WaitUntil(() => l.CtlJson("show", "ip", "fib", "summary")["ipv4"]!.GetValue<long>() >= 1000, TimeSpan.FromSeconds(10), "1000 routes in the FIB");
            AssertForwardedByDataplane(topo, l, b.Ip4);
            ifA = IfIndex(topo.Rt, a.MirrorName);
            ifB = IfIndex(topo.Rt, b.MirrorName);
            l.Signal(9);
            Assert.NotNull(l.WaitExit(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            l.Dispose();
            File.Delete($"/tmp/lcpc-{topo.Id}.batch");
        }

        // The mirrors outlived lcpd, with what Linux put on them.
        Assert.True(Net.LinkExists(topo.Rt, a.MirrorName));
        string addrs = Cmd.InNsOk(topo.Rt, "ip", "-4", "-o", "addr", "show", "dev", a.MirrorName);
        Assert.Contains(a.RouterIp4, addrs, StringComparison.Ordinal);
        int routesBefore = Cmd.InNsOk(topo.Rt, "ip", "route", "show").Split('\n').Count(x => x.StartsWith("100.", StringComparison.Ordinal));
        Assert.Equal(1000, routesBefore);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        using LcpdProcess again = Start(topo, Pairs(topo, ",persist"));
        JsonObject pa = Lcp(again, a.MirrorName);
        Assert.True(pa["adopted"]!.GetValue<bool>());
        Assert.Equal("up", pa["state"]!.GetValue<string>());
        Assert.Equal(ifA, pa["host_ifindex"]!.GetValue<int>());
        Assert.Equal(ifA, IfIndex(topo.Rt, a.MirrorName));
        Assert.Equal(ifB, IfIndex(topo.Rt, b.MirrorName));
        Assert.Contains(a.RouterIp4, Cmd.InNsOk(topo.Rt, "ip", "-4", "-o", "addr", "show", "dev", a.MirrorName), StringComparison.Ordinal);
        Net.WaitUntil(() => again.CtlJson("show", "ip", "fib", "summary")["ipv4"]!.GetValue<long>() >= 1000, TimeSpan.FromSeconds(10), "the FIB rebuilt from the dump");
        AssertForwardedByDataplane(topo, again, b.Ip4);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"forwarding back after {sw.Elapsed}");
        Assert.Equal(0, again.Ctl("lcp", "verify").Code);
    }

    [Fact]
    public void Restart_NotPersistent_ExistingInterfaceRefusedWithTheFix()
    {
        using var topo = new Topology(hosts: 1);
        TestHost a = topo.Hosts[0];
        Cmd.InNsOk(topo.Rt, "ip", "link", "add", a.MirrorName, "type", "veth", "peer", "name", $"x{topo.Id}"[..Math.Min(15, topo.Id.Length + 1)]);
        var eal = LcpdProcess.TestEal($"lcpc{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Launch(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--pair", $"{a.PortName}={a.MirrorName},persist"]);
        Assert.Equal(1, l.WaitExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("is a veth device, not a persistent TAP it could adopt", l.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void MirrorDeletedFromOutside_PairDown_ResyncRecreatesIt()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0];
        using LcpdProcess l = Start(topo, Pairs(topo));
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        Net.Ping(a.Ns, a.RouterIp4);
        Cmd.InNsOk(topo.Rt, "ip", "link", "del", a.MirrorName);
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["state"]!.GetValue<string>() == "down", TimeSpan.FromSeconds(5), "the pair down");
        Assert.Contains("deleted from outside", Lcp(l, a.MirrorName)["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        // Its port punts nothing to a dead mirror: counted as no-mirror.
        long noMirror = Net.ErrorCount(l, "no-mirror");
        Assert.False(Net.PingOnce(a.Ns, a.RouterIp4));
        Net.WaitUntil(() => Net.ErrorCount(l, "no-mirror") > noMirror, TimeSpan.FromSeconds(5), "no-mirror drops");
        Assert.DoesNotContain(l.CtlJson("show", "ip", "fib").AsArray(), r => r!["prefix"]!.GetValue<string>() == $"{a.RouterIp4}/32");

        JsonNode resync = l.CtlJson("lcp", "resync");
        Assert.Equal(1, resync["recovered"]!.GetValue<int>());
        Assert.Equal("up", Lcp(l, a.MirrorName)["state"]!.GetValue<string>());
        topo.ConfigureRouterInterface(a);
        Net.Ping(a.Ns, a.RouterIp4);
    }

    [Fact]
    public void NamespaceDeletedAndCreatedAgain_PairDownThenBack()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0];
        using LcpdProcess l = Start(topo, Pairs(topo));
        Cmd.Ok("ip", "netns", "del", topo.Rt);
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["state"]!.GetValue<string>() == "down", TimeSpan.FromSeconds(5), "the pair down with its namespace");
        // Every pair of the namespace goes down for that reason (not as a mirror deleted from
        // outside: that kind is not brought back by itself).
        Net.WaitUntil(() => l.CtlJson("show", "lcp").AsArray().All(p => p!["state"]!.GetValue<string>() == "down"), TimeSpan.FromSeconds(5), "all pairs down");
        foreach (JsonNode? p in l.CtlJson("show", "lcp").AsArray())
            Assert.Contains($"netns {topo.Rt} was deleted", p!["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, l.CtlJson("show", "ip", "fib", "summary")["ipv4"]!.GetValue<long>());

        Cmd.Ok("ip", "netns", "add", topo.Rt);
        Net.WaitUntil(() => l.CtlJson("show", "lcp").AsArray().All(p => p!["state"]!.GetValue<string>() == "up")
            && topo.Hosts.All(h => Net.LinkExists(topo.Rt, h.MirrorName)), TimeSpan.FromSeconds(10), "the mirrors re-created in the new namespace");
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(topo.Hosts[1]);
        Net.Ping(a.Ns, a.RouterIp4);
        Net.WaitUntil(() => l.CtlJson("show", "ip", "fib", a.RouterIp4).AsArray().Count == 1, TimeSpan.FromSeconds(5), "the new namespace's addresses in the FIB");
        Net.Ping(a.Ns, topo.Hosts[1].Ip4);
    }

    [Fact]
    public void NexthopObjects_CompatModeOff_SingleGroupAndReplace()
    {
        using var topo = new Topology(hosts: 3);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1], c = topo.Hosts[2];
        using LcpdProcess l = Start(topo, Pairs(topo));
        topo.EnableRouting();
        foreach (TestHost h in topo.Hosts)
            topo.ConfigureRouterInterface(h);
        // B and C both answer for the service address; which one gets the packets shows which
        // next hop the dataplane uses.
        foreach (TestHost h in new[] { b, c })
            Cmd.InNsOk(h.Ns, "ip", "addr", "add", "198.51.100.1/32", "dev", "lo");
        Cmd.InNsOk(topo.Rt, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0");
        Net.Ping(a.Ns, b.Ip4);
        Net.Ping(a.Ns, c.Ip4); // resolve both gateways
        Cmd.InNsOk(topo.Rt, "ip", "nexthop", "add", "id", "1", "via", b.Ip4, "dev", b.MirrorName);
        Cmd.InNsOk(topo.Rt, "ip", "nexthop", "add", "id", "2", "via", c.Ip4, "dev", c.MirrorName);
        Cmd.InNsOk(topo.Rt, "ip", "route", "add", "198.51.100.0/24", "nhid", "1");
        // With compat mode off, the route message names the object only.
        Assert.DoesNotContain("via", Cmd.InNsOk(topo.Rt, "ip", "route", "show", "198.51.100.0/24"), StringComparison.Ordinal);

        JsonObject Route() => l.CtlJson("show", "ip", "fib", "198.51.100.0/24").AsArray()[0]!.AsObject();
        Net.WaitUntil(() => Route()["prefix"]!.GetValue<string>() == "198.51.100.0/24", TimeSpan.FromSeconds(2), "the route by nhid");
        Assert.Equal(("forward", 1u, b.Ip4), (Route()["type"]!.GetValue<string>(), Route()["nexthop_id"]!.GetValue<uint>(), Route()["paths"]![0]!["via"]!.GetValue<string>()));
        long linux = Net.LinuxForwarded(topo.Rt, false);
        long txB = Counter(l, b.PortName, "tx_packets");
        Net.Ping(a.Ns, "198.51.100.1", count: 5);
        Assert.True(Counter(l, b.PortName, "tx_packets") >= txB + 5, "to B");
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));

        // A group, then the group replaced: the route follows without being touched.
        Cmd.InNsOk(topo.Rt, "ip", "nexthop", "add", "id", "10", "group", "1");
        Cmd.InNsOk(topo.Rt, "ip", "route", "replace", "198.51.100.0/24", "nhid", "10");
        Net.WaitUntil(() => Route()["nexthop_id"]!.GetValue<uint>() == 10, TimeSpan.FromSeconds(2), "the route on the group");
        long commits = l.CtlJson("show", "ip", "fib", "summary")["commits"]!.GetValue<long>();
        Cmd.InNsOk(topo.Rt, "ip", "nexthop", "replace", "id", "10", "group", "2");
        Net.WaitUntil(() => Route()["paths"]![0]!["via"]!.GetValue<string>() == c.Ip4, TimeSpan.FromSeconds(2), "the group replaced");
        Assert.True(l.CtlJson("show", "ip", "fib", "summary")["commits"]!.GetValue<long>() > commits);
        long txC = Counter(l, c.PortName, "tx_packets");
        Net.Ping(a.Ns, "198.51.100.1", count: 5);
        Assert.True(Counter(l, c.PortName, "tx_packets") >= txC + 5, "now to C");
        Assert.Equal(0, l.Ctl("lcp", "verify").Code);

        // Deleting the object deletes its routes (the kernel says nothing per route).
        Cmd.InNsOk(topo.Rt, "ip", "nexthop", "del", "id", "10");
        Net.WaitUntil(() => l.CtlJson("show", "ip", "fib", "198.51.100.0/24").AsArray().All(r => r!["prefix"]!.GetValue<string>() != "198.51.100.0/24"),
            TimeSpan.FromSeconds(2), "the route gone with its nexthop");
    }

    [Fact]
    public void TwoTables_OverlappingPrefixes_EachPortForwardsInItsOwn()
    {
        using var topo = new Topology(hosts: 4);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1], c = topo.Hosts[2], d = topo.Hosts[3];
        using LcpdProcess l = Start(topo, Pairs(topo));
        topo.EnableRouting();
        foreach (TestHost h in topo.Hosts)
            topo.ConfigureRouterInterface(h);
        foreach (TestHost h in new[] { b, c })
            Cmd.InNsOk(h.Ns, "ip", "addr", "add", "198.51.100.1/32", "dev", "lo");
        // A's port forwards in table 100 (learnt from the rule Linux holds); D's in main.
        Cmd.InNsOk(topo.Rt, "ip", "rule", "add", "iif", a.MirrorName, "lookup", "100", "pref", "1000");
        Cmd.InNsOk(topo.Rt, "ip", "route", "add", "198.51.100.0/24", "via", b.Ip4, "table", "100");
        Cmd.InNsOk(topo.Rt, "ip", "route", "add", "198.51.100.0/24", "via", c.Ip4);
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["table"]!.GetValue<uint>() == 100, TimeSpan.FromSeconds(3), "A bound to table 100");
        Assert.Equal("rule", Lcp(l, a.MirrorName)["table_source"]!.GetValue<string>());
        Assert.Equal(b.Ip4, l.CtlJson("show", "ip", "fib", "table", "100", "198.51.100.0/24")[0]!["paths"]![0]!["via"]!.GetValue<string>());
        Assert.Equal(c.Ip4, l.CtlJson("show", "ip", "fib", "198.51.100.0/24")[0]!["paths"]![0]!["via"]!.GetValue<string>());

        Net.Ping(a.Ns, "198.51.100.1");
        Net.Ping(d.Ns, "198.51.100.1"); // resolve through Linux first
        long linux = Net.LinuxForwarded(topo.Rt, false);
        long txB = Counter(l, b.PortName, "tx_packets"), txC = Counter(l, c.PortName, "tx_packets");
        Net.Ping(a.Ns, "198.51.100.1", count: 5);
        Assert.True(Counter(l, b.PortName, "tx_packets") >= txB + 5, "A's traffic in table 100, to B");
        Assert.True(Counter(l, c.PortName, "tx_packets") < txC + 5, "none of A's traffic to C");
        txB = Counter(l, b.PortName, "tx_packets");
        txC = Counter(l, c.PortName, "tx_packets");
        Net.Ping(d.Ns, "198.51.100.1", count: 5);
        Assert.True(Counter(l, c.PortName, "tx_packets") >= txC + 5, "D's traffic in main, to C");
        Assert.True(Counter(l, b.PortName, "tx_packets") < txB + 5, "none of D's traffic to B");
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));
        Assert.Equal(0, l.Ctl("lcp", "verify").Code);

        // The rule goes: A's port is back in main.
        Cmd.InNsOk(topo.Rt, "ip", "rule", "del", "iif", a.MirrorName, "lookup", "100", "pref", "1000");
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["table"]!.GetValue<uint>() == 254, TimeSpan.FromSeconds(3), "A back in main");
    }

    [Fact]
    public void Verify_FindsAPlantedDifference_ResyncRepairs()
    {
        using var topo = new Topology(hosts: 2);
        using LcpdProcess l = Start(topo, [.. Pairs(topo), "--debug-commands"]);
        topo.EnableRouting();
        foreach (TestHost h in topo.Hosts)
            topo.ConfigureRouterInterface(h);
        Cmd.InNsOk(topo.Rt, "ip", "route", "add", "198.51.100.0/24", "via", topo.Hosts[1].Ip4);
        Net.WaitUntil(() => l.Ctl("lcp", "verify").Code == 0, TimeSpan.FromSeconds(5), "in sync to begin with");
        Assert.Equal(0, l.Ctl("debug", "fib-drop", "198.51.100.0/24").Code);

        CmdResult v = l.Ctl("lcp", "verify");
        Assert.Equal(1, v.Code);
        Assert.Contains("198.51.100.0/24", v.Out, StringComparison.Ordinal);
        Assert.Contains("missing from the FIB", v.Out, StringComparison.Ordinal);
        JsonObject diff = l.Ctl("lcp", "verify", "--json").Out is string js ? JsonNode.Parse(js)!.AsObject() : throw new InvalidOperationException();
        Assert.False(diff["in_sync"]!.GetValue<bool>());

        Assert.Equal(0, l.Ctl("lcp", "resync").Code);
        Assert.Equal(0, l.Ctl("lcp", "verify").Code);
    }

    [Fact]
    public void DebugCommands_OffByDefault()
    {
        using var topo = new Topology(hosts: 1);
        using LcpdProcess l = Start(topo, Pairs(topo));
        CmdResult r = l.Ctl("debug", "fib-drop", "10.0.0.0/8");
        Assert.Equal(1, r.Code);
        Assert.Contains("--debug-commands", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadmeLaunchLine_NoHuge512_StartsWithAFibSizedToFit()
    {
        // The README's example, with its veths (eth1, eth2) made in this test's namespace and its
        // mirror namespace named uniquely; the EAL options are the README's.
        using var topo = new Topology(hosts: 0);
        foreach (string e in new[] { "eth1", "eth2" })
        {
            Cmd.InNsOk(topo.Dp, "ip", "link", "add", e, "type", "veth", "peer", "name", $"{e}p");
            Cmd.InNsOk(topo.Dp, "sysctl", "-qw", $"net.ipv6.conf.{e}.disable_ipv6=1");
            Cmd.InNsOk(topo.Dp, "ip", "link", "set", e, "up");
            Cmd.InNsOk(topo.Dp, "ip", "link", "set", $"{e}p", "up");
        }
        string[] eal = ["--no-huge", "-m", "512", "--no-pci", "--lcores", "0@0,1@1",
            "--vdev", "net_af_packet0,iface=eth1", "--vdev", "net_af_packet1,iface=eth2", "--file-prefix", $"lcpc{topo.Id}"];
        using LcpdProcess l = LcpdProcess.Launch(topo.Dp, eal, ["--netns", topo.Rt, "--pair", "net_af_packet0=lcp0", "--pair", "net_af_packet1=lcp1"]);
        l.WaitReady(TimeSpan.FromSeconds(60));
        Assert.Contains("FIB sized to", l.Output, StringComparison.Ordinal);
        JsonNode t = l.CtlJson("show", "ip", "fib", "summary")["tables"]![0]!;
        long cap = t["ipv4_capacity"]!.GetValue<long>();
        Assert.InRange(cap, 4096, (1 << 20) - 1);
        Assert.Equal(2, l.CtlJson("show", "lcp").AsArray().Count);
        l.Signal(LcpdProcess.SIGTERM);
        Assert.Equal(0, l.WaitExit(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public void FibSizesAsked_TooBigForEalMemory_RefusedNamingTheOption()
    {
        using var topo = new Topology(hosts: 1);
        var eal = LcpdProcess.TestEal($"lcpc{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Launch(topo.Dp, eal, ["--fib-routes", "4194304"]);
        Assert.Equal(1, l.WaitExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("--fib-routes 4194304", l.Output, StringComparison.Ordinal);
        Assert.Contains("MiB of EAL memory", l.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("No such file", l.Output, StringComparison.Ordinal);
    }
}
