using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Veth mirrors (the batched mirror kinds): the mirror is Linux's end of a veth pair
/// whose other end the dataplane serves with af_packet rings or XDP sockets. Everything a TAP
/// mirror does must work the same: punt, x-connect, the FIB from Linux's tables, a routing
/// daemon's session, carrier, deletion.</summary>
public sealed class VethMirrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpvm").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void VethAndXdpMirrors_PuntXconnectRouteBgpCarrier_DeletedWithThePair()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        var eal = LcpdProcess.TestEal($"lcpvm{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--pair", $"{a.PortName}={a.MirrorName},veth", "--pair", $"{b.PortName}={b.MirrorName},veth-xdp"]);
        JsonNode lcp = l.CtlJson("show", "lcp");
        Assert.Equal("veth", Net.Find(lcp, "host_if", a.MirrorName)["kind"]!.GetValue<string>());
        Assert.Equal("veth-xdp", Net.Find(lcp, "host_if", b.MirrorName)["kind"]!.GetValue<string>());
        // Linux's end: a veth with the port's MAC, checksums its own.
        string portMac = Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["mac"]!.GetValue<string>();
        string link = Cmd.InNsOk(topo.Rt, "ip", "-d", "link", "show", a.MirrorName);
        Assert.Contains("veth", link, StringComparison.Ordinal);
        Assert.Contains(portMac, link, StringComparison.Ordinal);
        Assert.Contains("tx-checksumming: off", Cmd.InNsOk(topo.Rt, "ethtool", "-k", a.MirrorName), StringComparison.Ordinal);

        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, a.RouterIp4);           // punt and x-connect through the af_packet mirror
        Net.Ping(b.Ns, b.RouterIp4);           // and through the XDP one
        Net.Ping(a.Ns, b.Ip4);
        Net.Ping(a.Ns, b.Ip6, v6: true);
        long linux = Net.LinuxForwarded(topo.Rt, false);
        Net.Ping(a.Ns, b.Ip4, count: 5);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));

        // TCP from a host to the router's Linux: checksums right both ways (a transfer completes).
        using (var sink = new Background(topo.Rt, "/usr/bin/python3", "-c",
            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',5201));s.listen();c,_=s.accept();n=0\nwhile True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n)"))
        {
            Thread.Sleep(500);
            CmdResult send = Cmd.Run("ip", ["netns", "exec", a.Ns, "/usr/bin/python3", "-c",
                $"import socket;s=socket.create_connection(('{a.RouterIp4}',5201));s.sendall(b'x'*4000000);s.close()"], TimeSpan.FromSeconds(60));
            Assert.True(send.Code == 0, send.ToString());
            Assert.True(sink.Wait(TimeSpan.FromSeconds(30)));
            Assert.Equal("4000000", sink.Output.Trim());
        }

        // A BGP session over the XDP mirror.
        using var routerBird = new Bird(topo.Rt, _dir, "r", Bird.BgpConf(b.RouterIp4, b.RouterIp4, b.Ip4, 65001, 65002, null, kernel: true));
        using var hostBird = new Bird(b.Ns, _dir, "h", Bird.BgpConf(b.Ip4, b.Ip4, b.RouterIp4, 65002, 65001, "100.98.0.0/24"));
        Net.WaitUntil(() => routerBird.HasRoute("100.98.0.0/24"), TimeSpan.FromSeconds(30), $"BGP over the veth-xdp mirror ({routerBird.Output})");
        Net.WaitUntil(() => l.CtlJson("show", "ip", "fib", "100.98.0.1").AsArray().Any(r => r?["prefix"]?.GetValue<string>() == "100.98.0.0/24"),
            TimeSpan.FromSeconds(10), "the BGP route in the FIB");

        // Carrier: the port's link goes, the veth mirror says NO-CARRIER.
        Cmd.InNsOk(a.Ns, "ip", "link", "set", a.Ifname, "down");
        Net.WaitUntil(() => Cmd.InNsOk(topo.Rt, "ip", "link", "show", a.MirrorName).Contains("NO-CARRIER", StringComparison.Ordinal),
            TimeSpan.FromSeconds(2), "NO-CARRIER on the veth mirror");
        Cmd.InNsOk(a.Ns, "ip", "link", "set", a.Ifname, "up");
        Net.WaitUntil(() => !Cmd.InNsOk(topo.Rt, "ip", "link", "show", a.MirrorName).Contains("NO-CARRIER", StringComparison.Ordinal),
            TimeSpan.FromSeconds(2), "carrier back on the veth mirror");

        // Deleting the pair removes both ends.
        string dpEnds() => Cmd.InNsOk(topo.Dp, "ip", "-o", "link", "show");
        Assert.Contains("lcpv", dpEnds(), StringComparison.Ordinal);
        l.CtlJson("lcp", "delete", a.MirrorName);
        l.CtlJson("lcp", "delete", b.MirrorName);
        Assert.False(Net.LinkExists(topo.Rt, a.MirrorName));
        Assert.False(Net.LinkExists(topo.Rt, b.MirrorName));
        Assert.DoesNotContain("lcpv", dpEnds(), StringComparison.Ordinal);
        CmdResult bad = l.Ctl("lcp", "create", a.PortName, "host-if", a.MirrorName, "veth", "persist");
        Assert.True(bad.Code != 0 && bad.Err.Contains("cannot persist", StringComparison.Ordinal), bad.ToString());
        Assert.All(l.CtlJson("show", "runtime").AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
    }
}
