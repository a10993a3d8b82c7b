using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>VLAN and QinQ sub-interfaces on real DPDK: each has its own TAP mirror (untagged in
/// Linux); tagged hosts (tests/peers/taghost.py: scapy over a raw socket, since this kernel has
/// no 8021q) reach Linux through them and are routed to and from an untagged host by the
/// dataplane; frames of unknown tags are counted.</summary>
public sealed class VlanTests
{
    private static readonly string TagHost = Path.Combine(Repo.Root, "tests", "peers", "taghost.py");

    private static CmdResult Tag(string ns, params string[] args) =>
        Cmd.Run("ip", ["netns", "exec", ns, "/usr/bin/python3", TagHost, .. args], TimeSpan.FromSeconds(60));

    private static void TagPing(string ns, string iface, string mac, string tags, string src, string dst, string gw, int count = 3)
    {
        CmdResult r = Tag(ns, "ping", iface, mac, tags, src, dst, gw, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(r.Code == 0, $"tagged ping {tags} {src} -> {dst} via {gw}: {r}");
    }

    [Fact]
    public void SubInterfaces_AnswerArpAndPing_RouteToAndFromAnUntaggedHost_UnknownTagsCounted()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        // Host A's namespace carries the tagged hosts: its interface keeps no address of its own.
        Cmd.InNsOk(a.Ns, "ip", "addr", "flush", "dev", a.Ifname);
        string mac = Cmd.InNsOk(a.Ns, "cat", $"/sys/class/net/{a.Ifname}/address").Trim();
        var eal = LcpdProcess.TestEal($"lcpv{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--pair", $"{a.PortName}={a.MirrorName}",
            "--pair", $"{a.PortName}.100=lcp0.100",
            "--pair", $"{a.PortName}.10.20=lcp0.q",
            "--pair", $"{a.PortName}.300.30=lcp0.d,tpid=8100",
            "--pair", $"{b.PortName}={b.MirrorName}"]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(b);
        foreach (var (ifname, net) in new[] { ("lcp0.100", "10.100.0"), ("lcp0.q", "10.120.0"), ("lcp0.d", "10.130.0") })
        {
            Cmd.InNsOk(topo.Rt, "ip", "addr", "add", $"{net}.1/24", "dev", ifname);
            Cmd.InNsOk(topo.Rt, "ip", "link", "set", ifname, "up");
        }
        string portMac = Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["mac"]!.GetValue<string>();
        // The mirrors are untagged TAPs with the parent's MAC.
        Assert.Contains(portMac, Cmd.InNsOk(topo.Rt, "ip", "link", "show", "lcp0.q"), StringComparison.Ordinal);

        using var hosts = new Background(a.Ns, "/usr/bin/python3", TagHost, "serve", a.Ifname, mac, "120",
            "100=10.100.0.2", "88a8.10.20=10.120.0.2", "8100.300.30=10.130.0.2");

        // Each sub-interface answers ARP and ping through its own mirror, on its own tags.
        TagPing(a.Ns, a.Ifname, mac, "100", "10.100.0.2", "10.100.0.1", "10.100.0.1");
        TagPing(a.Ns, a.Ifname, mac, "88a8.10.20", "10.120.0.2", "10.120.0.1", "10.120.0.1");
        TagPing(a.Ns, a.Ifname, mac, "8100.300.30", "10.130.0.2", "10.130.0.1", "10.130.0.1");

        // Routed between the tagged hosts and untagged host B, both ways (the first packets
        // resolve the neighbours in Linux), then again: the dataplane alone forwards.
        TagPing(a.Ns, a.Ifname, mac, "100", "10.100.0.2", b.Ip4, "10.100.0.1");
        TagPing(a.Ns, a.Ifname, mac, "88a8.10.20", "10.120.0.2", b.Ip4, "10.120.0.1");
        Net.Ping(b.Ns, "10.130.0.2");
        JsonNode before = l.CtlJson("show", "interfaces");
        long linux = Net.LinuxForwarded(topo.Rt, false);
        TagPing(a.Ns, a.Ifname, mac, "100", "10.100.0.2", b.Ip4, "10.100.0.1", count: 5);
        TagPing(a.Ns, a.Ifname, mac, "88a8.10.20", "10.120.0.2", b.Ip4, "10.120.0.1", count: 5);
        Net.Ping(b.Ns, "10.100.0.2", count: 5);
        Net.Ping(b.Ns, "10.120.0.2", count: 5);
        Net.Ping(b.Ns, "10.130.0.2", count: 5);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));
        JsonNode after = l.CtlJson("show", "interfaces");
        long Delta(string name, string field) => Net.Find(after, "name", name)[field]!.GetValue<long>() - Net.Find(before, "name", name)[field]!.GetValue<long>();
        // VLAN 100: 5 requests from its host, 5 replies to B's pings; forwarded out: 5 replies, 5 requests.
        Assert.True(Delta($"{a.PortName}.100", "forwarded") >= 10, $"forwarded on the sub-interface: {Delta($"{a.PortName}.100", "forwarded")}");
        Assert.True(Delta($"{a.PortName}.100", "tx_packets") >= 10);
        Assert.True(Delta($"{a.PortName}.10.20", "forwarded") >= 10);
        Assert.True(Delta($"{a.PortName}.300.30", "forwarded") >= 5);
        Assert.True(Delta(b.PortName, "forwarded") >= 25);
        // The parent counts what its wire carried, tagged or not.
        Assert.True(Delta(a.PortName, "rx_packets") >= 25 && Delta(a.PortName, "tx_packets") >= 25);

        JsonObject sub = Net.Find(after, "name", $"{a.PortName}.10.20");
        Assert.Equal("sub", sub["kind"]!.GetValue<string>());
        Assert.Equal(a.PortName, sub["parent"]!.GetValue<string>());
        Assert.Equal("dot1ad 10 inner-dot1q 20", sub["vlan"]!.GetValue<string>());
        Assert.Equal("dot1q 300 inner-dot1q 30", Net.Find(after, "name", $"{a.PortName}.300.30")["vlan"]!.GetValue<string>());
        Assert.Equal("dot1q 100", Net.Find(after, "name", $"{a.PortName}.100")["vlan"]!.GetValue<string>());
        Assert.Equal($"{a.PortName}.100", Net.Find(l.CtlJson("show", "lcp"), "host_if", "lcp0.100")["port"]!.GetValue<string>());

        // Tags no sub-interface has: dropped and counted (100 inside 200: exact match only).
        long unknown = Net.ErrorCount(l, "vlan-unknown");
        Assert.Equal(0, Tag(a.Ns, "send", a.Ifname, mac, "999", portMac, "5").Code);
        Assert.Equal(0, Tag(a.Ns, "send", a.Ifname, mac, "88a8.10.99", portMac, "5").Code);
        Net.WaitUntil(() => Net.ErrorCount(l, "vlan-unknown") >= unknown + 10, TimeSpan.FromSeconds(5), "unknown tags counted");

        // Deleting a sub-interface's pair removes it: its tags become unknown.
        l.CtlJson("lcp", "delete", "lcp0.d");
        Assert.DoesNotContain(l.CtlJson("show", "interfaces").AsArray(), i => i!["name"]!.GetValue<string>() == $"{a.PortName}.300.30");
        unknown = Net.ErrorCount(l, "vlan-unknown");
        Assert.Equal(0, Tag(a.Ns, "send", a.Ifname, mac, "8100.300.30", portMac, "3").Code);
        Net.WaitUntil(() => Net.ErrorCount(l, "vlan-unknown") >= unknown + 3, TimeSpan.FromSeconds(5), "a deleted sub-interface's tags are unknown");

        // lcp create makes one at run time.
        JsonNode made = l.CtlJson("lcp", "create", $"{a.PortName}.300.30", "host-if", "lcp0.d", "tpid", "8100");
        Assert.Equal($"{a.PortName}.300.30", made["port"]!.GetValue<string>());
        Cmd.InNsOk(topo.Rt, "ip", "addr", "add", "10.130.0.1/24", "dev", "lcp0.d");
        Cmd.InNsOk(topo.Rt, "ip", "link", "set", "lcp0.d", "up");
        TagPing(a.Ns, a.Ifname, mac, "8100.300.30", "10.130.0.2", "10.130.0.1", "10.130.0.1");

        // Bad sub-interfaces are refused with the reason.
        CmdResult bad = l.Ctl("lcp", "create", $"{a.PortName}.5000", "host-if", "lcp0.x");
        Assert.True(bad.Code != 0 && bad.Err.Contains("1 to 4094", StringComparison.Ordinal), bad.ToString());
        bad = l.Ctl("lcp", "create", $"{a.PortName}.7", "host-if", "lcp0.y", "tun");
        Assert.True(bad.Code != 0 && bad.Err.Contains("TAP", StringComparison.Ordinal), bad.ToString());
        bad = l.Ctl("lcp", "create", $"{a.PortName}.7", "host-if", "lcp0.y", "tpid", "8100");
        Assert.True(bad.Code != 0 && bad.Err.Contains("QinQ", StringComparison.Ordinal), bad.ToString());
        Assert.DoesNotContain(l.CtlJson("show", "interfaces").AsArray(), i => i!["name"]!.GetValue<string>() == $"{a.PortName}.7");
        Assert.All(l.CtlJson("show", "runtime").AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
    }
}
