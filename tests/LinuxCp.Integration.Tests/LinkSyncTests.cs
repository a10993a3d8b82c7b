using System.Diagnostics;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>lcp-sync on real DPDK: a port's carrier goes to its mirror (a routing daemon on the
/// mirror reacts at once), and admin state and MTU set through lcpctl appear on the mirror.</summary>
public sealed class LinkSyncTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpl").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static bool NoCarrier(string ns, string ifname) =>
        Cmd.InNsOk(ns, "ip", "link", "show", ifname).Contains("NO-CARRIER", StringComparison.Ordinal);

    private static JsonObject Lcp(LcpdProcess l, string hostIf) => Net.Find(l.CtlJson("show", "lcp"), "host_if", hostIf);

    [Fact]
    public void PortCarrierLost_MirrorNoCarrierWithinASecond_BirdWithdraws_ThenBothComeBack()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = LcpdProcess.StartRouter(topo);
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["port_link_up"]?.GetValue<bool>() == true
                            && Lcp(l, a.MirrorName)["mirror_carrier"]?.GetValue<bool>() == true,
            TimeSpan.FromSeconds(5), "show lcp: port link up, mirror carrier on");
        Assert.False(NoCarrier(topo.Rt, a.MirrorName));

        // BGP between the router (on lcp0) and host A, with a hold time far longer than the
        // test's patience: a withdrawal seen within seconds comes from the carrier, not a timer.
        using var routerBird = new Bird(topo.Rt, _dir, "r",
            Bird.BgpConf(a.RouterIp4, a.RouterIp4, a.Ip4, 65001, 65002, null, kernel: true, extraBgp: "hold time 90; check link yes;"));
        using var hostBird = new Bird(a.Ns, _dir, "h",
            Bird.BgpConf(a.Ip4, a.Ip4, a.RouterIp4, 65002, 65001, "100.99.0.0/24", extraBgp: "hold time 90;"));
        bool InFib() => l.CtlJson("show", "ip", "fib", "100.99.0.1").AsArray().Any(r => r?["prefix"]?.GetValue<string>() == "100.99.0.0/24");
        Net.WaitUntil(() => routerBird.HasRoute("100.99.0.0/24") && InFib(), TimeSpan.FromSeconds(30),
            $"the host's BGP route in BIRD and the FIB ({routerBird.Output} {hostBird.Output})");

        // Host A's end of the wire goes down: the port's kernel interface loses its carrier.
        Cmd.InNsOk(a.Ns, "ip", "link", "set", a.Ifname, "down");
        var sw = Stopwatch.StartNew();
        Net.WaitUntil(() => NoCarrier(topo.Rt, a.MirrorName), TimeSpan.FromSeconds(5), "NO-CARRIER on the mirror");
        TimeSpan carrierOff = sw.Elapsed;
        Assert.True(carrierOff < TimeSpan.FromSeconds(1), $"the mirror lost its carrier {carrierOff.TotalMilliseconds:F0} ms after the port");
        Assert.False(NoCarrier(topo.Rt, b.MirrorName)); // the other pair is untouched
        JsonObject down = Lcp(l, a.MirrorName);
        Assert.False(down["port_link_up"]!.GetValue<bool>());
        Net.WaitUntil(() => Lcp(l, a.MirrorName)["mirror_carrier"]?.GetValue<bool>() == false, TimeSpan.FromSeconds(2), "show lcp: mirror carrier off");
        Assert.Equal(1, Lcp(l, a.MirrorName)["link_changes"]!.GetValue<long>());
        Assert.False(Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["link_up"]!.GetValue<bool>());
        Net.WaitUntil(() => !routerBird.HasRoute("100.99.0.0/24") && !InFib(), TimeSpan.FromSeconds(10),
            $"BIRD withdrew the route learnt over the port, and the FIB lost it ({routerBird.Ctl("show", "protocols").Out})");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "withdrawn well inside the 90 s hold time");

        // Back up: carrier, session and route return.
        Cmd.InNsOk(a.Ns, "ip", "link", "set", a.Ifname, "up");
        Net.WaitUntil(() => !NoCarrier(topo.Rt, a.MirrorName), TimeSpan.FromSeconds(2), "carrier back on the mirror");
        Net.WaitUntil(() => routerBird.Session().Established && routerBird.HasRoute("100.99.0.0/24") && InFib(), TimeSpan.FromSeconds(30),
            $"BGP back and the route in the FIB ({routerBird.Ctl("show", "protocols").Out})");
        Assert.Equal(2, Lcp(l, a.MirrorName)["link_changes"]!.GetValue<long>());
        // Host A's own default route went with its link; forwarding through the port works again.
        Cmd.InNsOk(a.Ns, "ip", "route", "replace", "default", "via", a.RouterIp4);
        Net.Ping(b.Ns, a.Ip4);
    }

    [Fact]
    public void SetInterfaceStateAndMtu_AppearOnTheMirror_AndThePortFollows()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = LcpdProcess.StartRouter(topo);
        Net.Ping(a.Ns, b.Ip4);

        JsonNode r = l.CtlJson("set", "interface", "state", b.PortName, "down");
        Assert.Equal(b.MirrorName, r["host_if"]!.GetValue<string>());
        Assert.DoesNotContain(",UP", Cmd.InNsOk(topo.Rt, "ip", "link", "show", b.MirrorName), StringComparison.Ordinal);
        Net.WaitUntil(() => !Net.Find(l.CtlJson("show", "interfaces"), "name", b.PortName)["admin_up"]!.GetValue<bool>(),
            TimeSpan.FromSeconds(5), "the port follows its mirror down");
        Assert.False(Lcp(l, b.MirrorName)["mirror_admin_up"]!.GetValue<bool>());
        Assert.False(Net.PingOnce(a.Ns, b.Ip4));

        l.CtlJson("set", "interface", "state", b.PortName, "up");
        Assert.Contains(",UP", Cmd.InNsOk(topo.Rt, "ip", "link", "show", b.MirrorName), StringComparison.Ordinal);
        Net.WaitUntil(() => Net.Find(l.CtlJson("show", "interfaces"), "name", b.PortName)["admin_up"]!.GetValue<bool>(),
            TimeSpan.FromSeconds(5), "the port follows its mirror up");
        // Linux flushed the routes of the downed link; they come back with it.
        Net.WaitUntil(() => Net.PingOnce(a.Ns, b.Ip4), TimeSpan.FromSeconds(10), "forwarding through the port again");

        l.CtlJson("set", "interface", "mtu", a.PortName, "1400");
        Assert.Contains("mtu 1400", Cmd.InNsOk(topo.Rt, "ip", "link", "show", a.MirrorName), StringComparison.Ordinal);
        Net.WaitUntil(() => Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["mtu"]!.GetValue<int>() == 1400,
            TimeSpan.FromSeconds(5), "the port's MTU follows its mirror's");

        CmdResult bad = l.Ctl("set", "interface", "mtu", a.PortName, "20");
        Assert.True(bad.Code != 0 && bad.Err.Contains("from 68 to 9600", StringComparison.Ordinal), bad.ToString());
        bad = l.Ctl("set", "interface", "state", "nosuchport", "up");
        Assert.True(bad.Code != 0 && bad.Err.Contains("no dataplane port named 'nosuchport'", StringComparison.Ordinal), bad.ToString());
        bad = l.Ctl("set", "interface", "state", a.PortName, "sideways");
        Assert.True(bad.Code != 0 && bad.Err.Contains("usage", StringComparison.Ordinal), bad.ToString());
    }
}
