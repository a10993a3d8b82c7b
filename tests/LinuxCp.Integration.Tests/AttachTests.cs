using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Attached kernel ports ("system" ports, seed 004): an existing veth becomes a
/// dataplane port (af_packet opened on it from its namespace), is routed through like a port
/// EAL probed, has its kernel side quietened while attached and restored after.</summary>
public sealed class AttachTests
{
    private static string Sysctl(string ns, string key) => Cmd.InNsOk(ns, "sysctl", "-n", key).Trim();

    [Fact]
    public void AttachedVeths_RoutedThroughLikeAnyPort_KernelSideQuietThenRestored()
    {
        using var topo = new Topology(hosts: 3, portIpv6: true);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1], c = topo.Hosts[2];
        // Host C's wire is moved to a namespace of its own (not lcpd's): attached from there.
        string sw = topo.AddNamespace("sw");
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", c.DpIfname, "netns", sw);
        Cmd.InNsOk(sw, "ip", "link", "set", c.DpIfname, "up");
        Cmd.InNsOk(topo.Dp, "sysctl", "-qw", $"net.ipv4.conf.{b.DpIfname}.arp_ignore=2");

        // Port A as EAL probes it, B attached on the launch line.
        var eal = LcpdProcess.TestEal($"lcpa{topo.Id}");
        eal.AddRange(["--vdev", $"{a.PortName},iface={a.DpIfname}"]);
        string bPort = $"net_af_packet_{b.DpIfname}", cPort = $"net_af_packet_{c.DpIfname}";
        using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--attach", b.DpIfname, "--pair", $"{a.PortName}={a.MirrorName}", "--pair", $"{bPort}={b.MirrorName}"]);
        JsonObject bIf = Net.Find(l.CtlJson("show", "interfaces"), "name", bPort);
        Assert.Equal(b.DpIfname, bIf["kernel_if"]!.GetValue<string>());
        Assert.True(bIf["link_up"]!.GetValue<bool>());
        // Its kernel side is quiet while lcpd owns it.
        Assert.Equal("1", Sysctl(topo.Dp, $"net.ipv6.conf.{b.DpIfname}.disable_ipv6"));
        Assert.Equal("8", Sysctl(topo.Dp, $"net.ipv4.conf.{b.DpIfname}.arp_ignore"));

        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        Net.Ping(a.Ns, b.Ip6, v6: true);
        long linux = Net.LinuxForwarded(topo.Rt, false);
        Net.Ping(a.Ns, b.Ip4, count: 5);
        Net.Ping(b.Ns, a.Ip4, count: 5);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));
        Assert.True(Net.Find(l.CtlJson("show", "interfaces"), "name", bPort)["forwarded"]!.GetValue<long>() >= 10);

        // At run time, from another namespace, then given back.
        JsonNode att = l.CtlJson("attach", c.DpIfname, "netns", sw);
        Assert.Equal(cPort, att["name"]!.GetValue<string>());
        Assert.Equal(sw, att["kernel_netns"]!.GetValue<string>());
        Assert.Equal("1", Sysctl(sw, $"net.ipv6.conf.{c.DpIfname}.disable_ipv6"));
        l.CtlJson("lcp", "create", cPort, "host-if", c.MirrorName);
        topo.ConfigureRouterInterface(c);
        Net.Ping(c.Ns, a.Ip4);
        Net.WaitUntil(() => Net.Find(l.CtlJson("show", "lcp"), "host_if", c.MirrorName)["port_link_up"]?.GetValue<bool>() == true,
            TimeSpan.FromSeconds(3), "the link of an interface attached from another namespace");

        CmdResult busy = l.Ctl("detach", c.DpIfname);
        Assert.True(busy.Code != 0 && busy.Err.Contains("delete it first", StringComparison.Ordinal), busy.ToString());
        l.CtlJson("lcp", "delete", c.MirrorName);
        JsonNode det = l.CtlJson("detach", c.DpIfname);
        Assert.Equal(cPort, det["name"]!.GetValue<string>());
        Assert.DoesNotContain(l.CtlJson("show", "interfaces").AsArray(), i => i!["name"]!.GetValue<string>() == cPort);
        Assert.Equal("0", Sysctl(sw, $"net.ipv6.conf.{c.DpIfname}.disable_ipv6"));
        Assert.Equal("0", Sysctl(sw, $"net.ipv4.conf.{c.DpIfname}.arp_ignore"));

        // The same through af_xdp (XDP sockets on the veth, generic mode).
        JsonNode xdp = l.CtlJson("attach", c.DpIfname, "netns", sw, "xdp");
        string xPort = $"net_af_xdp_{c.DpIfname}";
        Assert.Equal(xPort, xdp["name"]!.GetValue<string>());
        l.CtlJson("lcp", "create", xPort, "host-if", c.MirrorName);
        topo.ConfigureRouterInterface(c);
        Net.WaitUntil(() => Net.PingOnce(c.Ns, a.Ip4), TimeSpan.FromSeconds(10), "ping across the af_xdp port");
        linux = Net.LinuxForwarded(topo.Rt, false);
        Net.Ping(c.Ns, a.Ip4, count: 5);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));
        l.CtlJson("lcp", "delete", c.MirrorName);
        l.CtlJson("detach", xPort);

        // Refusals with the reason.
        CmdResult r = l.Ctl("attach", "nosuch0");
        Assert.True(r.Code != 0 && r.Err.Contains("no interface nosuch0", StringComparison.Ordinal), r.ToString());
        r = l.Ctl("attach", b.DpIfname);
        Assert.True(r.Code != 0 && r.Err.Contains("attached already", StringComparison.Ordinal), r.ToString());
        r = l.Ctl("detach", a.PortName);
        Assert.True(r.Code != 0 && r.Err.Contains("was not attached", StringComparison.Ordinal), r.ToString());
        r = l.Ctl("attach", b.MirrorName, "netns", topo.Rt);
        Assert.True(r.Code != 0 && r.Err.Contains("is the mirror of", StringComparison.Ordinal), r.ToString());

        // A clean stop gives B's interface its settings back (arp_ignore was 2).
        l.Signal(LcpdProcess.SIGTERM);
        Assert.Equal(0, l.WaitExit(TimeSpan.FromSeconds(15)));
        Assert.Equal("2", Sysctl(topo.Dp, $"net.ipv4.conf.{b.DpIfname}.arp_ignore"));
        Assert.Equal("0", Sysctl(topo.Dp, $"net.ipv6.conf.{b.DpIfname}.disable_ipv6"));
    }
}
