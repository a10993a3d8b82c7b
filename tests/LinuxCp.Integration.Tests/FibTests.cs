using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>The netlink-fed FIB and the fast path: Linux configures, the dataplane forwards.</summary>
[Collection("lcpd")]
public sealed class FibTests
{
    private readonly RouterFixture _f;

    public FibTests(RouterFixture f) => _f = f;

    private long LinuxForwarded(bool v6) => Net.LinuxForwarded(_f.Topo.Rt, v6);

    private long Counter(string port, string name) =>
        Net.Find(_f.Lcpd.CtlJson("show", "interfaces"), "name", port)[name]!.GetValue<long>();

    private JsonArray Fib(string prefix, bool v6 = false) => _f.Lcpd.CtlJson("show", v6 ? "ip6" : "ip", "fib", prefix).AsArray();

    private void WaitFib(string prefix, Func<JsonArray, bool> cond, string what, bool v6 = false) =>
        Net.WaitUntil(() => cond(Fib(prefix, v6)), TimeSpan.FromSeconds(1), what);

    [Fact]
    public void Transit_AfterResolution_ForwardedByDataplaneNotLinux()
    {
        // First packets resolve the neighbours through Linux.
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        Net.Ping(_f.A.Ns, _f.B.Ip6, v6: true);
        Net.WaitUntil(() => _f.Lcpd.CtlJson("show", "ip", "neighbors").AsArray().Count >= 4, TimeSpan.FromSeconds(3), "neighbours in the FIB");

        long linux4 = LinuxForwarded(false), linux6 = LinuxForwarded(true);
        long fwdA = Counter(_f.A.PortName, "forwarded"), fwdB = Counter(_f.B.PortName, "forwarded");
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 5);
        Net.Ping(_f.A.Ns, _f.B.Ip6, count: 5, v6: true);
        Assert.Equal(linux4, LinuxForwarded(false));
        Assert.Equal(linux6, LinuxForwarded(true));
        Assert.True(Counter(_f.A.PortName, "forwarded") >= fwdA + 10, "requests forwarded on A's port");
        Assert.True(Counter(_f.B.PortName, "forwarded") >= fwdB + 10, "replies forwarded on B's port");

        JsonObject host = Fib(_f.B.Ip4)[0]!.AsObject();
        Assert.Equal($"{_f.B.Ip4}/32", host["prefix"]!.GetValue<string>());
        Assert.Equal("forward", host["type"]!.GetValue<string>());
        Assert.Equal(_f.B.MirrorName, host["paths"]![0]!["interface"]!.GetValue<string>());
    }

    [Fact]
    public void RouteAddDelete_InLinux_ReachesFibWithinOneSecond()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4); // resolve the gateway
        Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "add", "198.51.100.0/24", "via", _f.B.Ip4);
        try
        {
            WaitFib("198.51.100.0/24", a => a.Count == 1 && a[0]!["prefix"]!.GetValue<string>() == "198.51.100.0/24", "route added");
            JsonObject r = Fib("198.51.100.0/24")[0]!.AsObject();
            Assert.Equal("forward", r["type"]!.GetValue<string>());
            Assert.Equal(_f.B.Ip4, r["paths"]![0]!["via"]!.GetValue<string>());
            Assert.Equal("kernel", r["source"]!.GetValue<string>());

            // Replace keeps one route, with the new next hop.
            Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "replace", "198.51.100.0/24", "via", _f.A.Ip4);
            WaitFib("198.51.100.0/24", a => a.Count == 1 && a[0]!["paths"]![0]!["via"]!.GetValue<string>() == _f.A.Ip4, "route replaced");
        }
        finally
        {
            Cmd.InNs(_f.Topo.Rt, "ip", "route", "del", "198.51.100.0/24");
        }
        WaitFib("198.51.100.0/24", a => a.Count == 0 || a[0]!["prefix"]!.GetValue<string>() != "198.51.100.0/24", "route deleted");

        Cmd.InNsOk(_f.Topo.Rt, "ip", "-6", "route", "add", "2001:db8:99::/48", "via", _f.B.Ip6);
        try
        {
            WaitFib("2001:db8:99::/48", a => a.Count == 1 && a[0]!["prefix"]!.GetValue<string>() == "2001:db8:99::/48", "v6 route added", v6: true);
        }
        finally
        {
            Cmd.InNs(_f.Topo.Rt, "ip", "-6", "route", "del", "2001:db8:99::/48");
        }
        WaitFib("2001:db8:99::/48", a => a.Count == 0, "v6 route deleted", v6: true);
    }

    [Fact]
    public void EcmpRoute_TwoNextHops_BothPathsInFib()
    {
        Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "add", "203.0.113.0/24", "nexthop", "via", _f.A.Ip4, "nexthop", "via", _f.B.Ip4);
        try
        {
            WaitFib("203.0.113.0/24", a => a.Count == 1 && a[0]!["paths"]!.AsArray().Count == 2, "ECMP route with two paths");
            var vias = Fib("203.0.113.0/24")[0]!["paths"]!.AsArray().Select(p => p!["via"]!.GetValue<string>()).Order().ToArray();
            Assert.Equal(new[] { _f.A.Ip4, _f.B.Ip4 }.Order().ToArray(), vias);
        }
        finally
        {
            Cmd.InNs(_f.Topo.Rt, "ip", "route", "del", "203.0.113.0/24");
        }
    }

    [Fact]
    public async Task EcmpRoute_Flows_SpreadOverPathsAndStayOnOne()
    {
        // Two gateways on B's link: B itself and a second one with a static MAC. A sniffer in
        // B's namespace sees the frames for both (a veth hands every frame to packet sockets).
        const string otherMac = "02:00:00:00:77:77";
        string gw2 = "10.201.2.77";
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        Cmd.InNsOk(_f.Topo.Rt, "ip", "neigh", "replace", gw2, "lladdr", otherMac, "dev", _f.B.MirrorName, "nud", "permanent");
        Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "add", "203.0.113.0/24", "nexthop", "via", _f.B.Ip4, "nexthop", "via", gw2);
        try
        {
            WaitFib("203.0.113.0/24", a => a.Count == 1 && a[0]!["paths"]!.AsArray().All(p => p!["resolved"]!.GetValue<bool>())
                && a[0]!["paths"]!.AsArray().Count == 2, "ECMP route with two resolved paths");
            const string sniffer = """
                import socket, sys, time, collections
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
                s.bind((sys.argv[1], 0)); s.settimeout(0.2)
                seen = collections.defaultdict(set)
                end = time.time() + float(sys.argv[2])
                while time.time() < end:
                    try: f = s.recv(2048)
                    except socket.timeout: continue
                    if len(f) < 38 or f[23] != 17 or f[30:33] != bytes([203, 0, 113]): continue
                    seen[f[36] << 8 | f[37]].add(f[0:6].hex())
                print(len(seen), sum(1 for v in seen.values() if len(v) > 1),
                      len({next(iter(v)) for v in seen.values()}))
                """;
            const string sender = """
                import socket, time
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                for rep in range(5):
                    for port in range(2000, 2064):
                        s.sendto(b'x' * 32, ('203.0.113.9', port))
                    time.sleep(0.05)
                """;
            var sniff = Task.Run(() => Cmd.InNs(_f.B.Ns, "/usr/bin/python3", "-c", sniffer, _f.B.Ifname, "3"));
            Thread.Sleep(500);
            Cmd.InNsOk(_f.A.Ns, "/usr/bin/python3", "-c", sender);
            CmdResult r = await sniff;
            Assert.True(r.Code == 0, r.ToString());
            int[] v = r.Out.Trim().Split(' ').Select(int.Parse).ToArray();
            Assert.True(v[0] >= 60, $"flows seen: {r.Out}");
            Assert.Equal(0, v[1]);          // no flow switched path (no reordering within a flow)
            Assert.Equal(2, v[2]);          // flows spread over both paths
        }
        finally
        {
            Cmd.InNs(_f.Topo.Rt, "ip", "route", "del", "203.0.113.0/24");
            Cmd.InNs(_f.Topo.Rt, "ip", "neigh", "del", gw2, "dev", _f.B.MirrorName);
        }
    }

    [Fact]
    public void BlackholeAndUnreachable_DropOrPuntForIcmp()
    {
        Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "add", "blackhole", "192.0.2.0/24");
        Cmd.InNsOk(_f.Topo.Rt, "ip", "route", "add", "unreachable", "198.18.0.0/24");
        try
        {
            WaitFib("192.0.2.0/24", a => a.Count == 1 && a[0]!["type"]!.GetValue<string>() == "blackhole", "blackhole route");
            WaitFib("198.18.0.0/24", a => a.Count == 1 && a[0]!["type"]!.GetValue<string>() == "unreachable", "unreachable route");
            long bh = Net.ErrorCount(_f.Lcpd, "blackhole");
            Assert.False(Net.PingOnce(_f.A.Ns, "192.0.2.1"));
            Assert.True(Net.ErrorCount(_f.Lcpd, "blackhole") > bh);

            CmdResult r = Cmd.InNs(_f.A.Ns, "ping", "-c", "1", "-W", "2", "198.18.0.1");
            Assert.Contains("Unreachable", r.Out, StringComparison.OrdinalIgnoreCase);
            Assert.True(Net.ErrorCount(_f.Lcpd, "punt-unreachable") > 0);
        }
        finally
        {
            Cmd.InNs(_f.Topo.Rt, "ip", "route", "del", "192.0.2.0/24");
            Cmd.InNs(_f.Topo.Rt, "ip", "route", "del", "198.18.0.0/24");
        }
    }

    [Fact]
    public void TtlOne_PuntedAndLinuxSendsTimeExceeded()
    {
        long before = Net.ErrorCount(_f.Lcpd, "punt-ttl-expired");
        CmdResult r = Cmd.InNs(_f.A.Ns, "ping", "-c", "1", "-t", "1", "-W", "2", _f.B.Ip4);
        Assert.Contains("Time to live exceeded", r.Out, StringComparison.Ordinal);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-ttl-expired") > before);
    }

    [Fact]
    public void MirrorDownStopsTransit_UpRestores()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        Cmd.InNsOk(_f.Topo.Rt, "ip", "link", "set", _f.B.MirrorName, "down");
        try
        {
            Net.WaitUntil(() => !Net.PingOnce(_f.A.Ns, _f.B.Ip4), TimeSpan.FromSeconds(5), "transit to stop");
            long downDrops = Net.ErrorCount(_f.Lcpd, "port-down");
            Net.PingOnce(_f.B.Ns, _f.A.Ip4);
            Assert.True(Net.ErrorCount(_f.Lcpd, "port-down") > downDrops, "ingress on a down port is dropped");
        }
        finally
        {
            Cmd.InNsOk(_f.Topo.Rt, "ip", "link", "set", _f.B.MirrorName, "up");
            Cmd.InNs(_f.Topo.Rt, "ip", "-6", "addr", "replace", $"{_f.B.RouterIp6}/64", "dev", _f.B.MirrorName, "nodad");
        }
        Net.WaitUntil(() => Net.PingOnce(_f.A.Ns, _f.B.Ip4), TimeSpan.FromSeconds(10), "transit to come back");
    }

    [Fact]
    public void MirrorMtu_AppliedToPort()
    {
        Cmd.InNsOk(_f.Topo.Rt, "ip", "link", "set", _f.B.MirrorName, "mtu", "1400");
        try
        {
            Net.WaitUntil(() => Counter(_f.B.PortName, "mtu") == 1400, TimeSpan.FromSeconds(2), "port MTU 1400");
        }
        finally
        {
            Cmd.InNsOk(_f.Topo.Rt, "ip", "link", "set", _f.B.MirrorName, "mtu", "1500");
        }
        Net.WaitUntil(() => Counter(_f.B.PortName, "mtu") == 1500, TimeSpan.FromSeconds(2), "port MTU back to 1500");
    }

    [Fact]
    public void NeighborFlush_RemovedThenReResolved()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        bool Has() => _f.Lcpd.CtlJson("show", "ip", "neighbors").AsArray().Any(n => n!["ip"]!.GetValue<string>() == _f.B.Ip4);
        Net.WaitUntil(Has, TimeSpan.FromSeconds(2), "neighbour B resolved");
        Cmd.InNsOk(_f.Topo.Rt, "ip", "neigh", "flush", "dev", _f.B.MirrorName);
        Net.WaitUntil(() => !Has(), TimeSpan.FromSeconds(2), "neighbour B flushed");
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        Net.WaitUntil(Has, TimeSpan.FromSeconds(2), "neighbour B re-resolved");
    }

    [Fact]
    public void LcpResync_OnDemand_KeepsFibEqual()
    {
        int before = _f.Lcpd.CtlJson("show", "ip", "fib").AsArray().Count;
        JsonNode r = _f.Lcpd.CtlJson("lcp", "resync");
        Assert.True(r["objects"]!.GetValue<int>() > 0);
        Assert.Equal(before, _f.Lcpd.CtlJson("show", "ip", "fib").AsArray().Count);
        JsonNode sum = _f.Lcpd.CtlJson("show", "ip", "fib", "summary");
        Assert.Equal(before, sum["ipv4"]!.GetValue<long>());
        Assert.Equal(0, sum["fib_errors"]!.GetValue<long>());
    }
}
