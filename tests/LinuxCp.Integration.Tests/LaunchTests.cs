using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>lcpd's own lifecycle: clean stop on signals, TUN pairs, and start-up errors that
/// must end with a one-line reason and the documented exit code.</summary>
[Collection("lcpd")]
public sealed class LaunchTests
{
    private static List<string> Eal(Topology t)
    {
        var eal = LcpdProcess.TestEal($"lcpt{Repo.UniqueId()}");
        eal.AddRange(t.VdevArgs());
        return eal;
    }

    [Theory]
    [InlineData(LcpdProcess.SIGTERM)]
    [InlineData(LcpdProcess.SIGINT)]
    public void Signal_StopsCleanly_Exit0AndMirrorsRemoved(int sig)
    {
        using var t = new Topology(hosts: 1);
        using var l = LcpdProcess.Start(t.Dp, Eal(t), [.. LcpdProcess.TestFib, "--netns", t.Rt, "--pair", $"{t.Hosts[0].PortName}=lcp0"]);
        Assert.True(Net.LinkExists(t.Rt, "lcp0"));
        l.Signal(sig);
        int? code = l.WaitExit(TimeSpan.FromSeconds(10));
        Assert.True(code == 0, $"exit {code?.ToString() ?? "timeout"}:\n{l.Output}");
        Assert.False(Net.LinkExists(t.Rt, "lcp0"));
        Assert.False(File.Exists(l.Socket));
        Assert.DoesNotContain("Unhandled exception", l.Output, StringComparison.Ordinal);
    }

    /// <summary>A stop asked for while lcpd is still starting (here: as soon as its API socket
    /// appears, before the host runs) is not lost: lcpd finishes starting, then stops cleanly.</summary>
    [Fact]
    public void SignalDuringStartup_StopsCleanly_Exit0()
    {
        using var t = new Topology(hosts: 1);
        using var l = LcpdProcess.Launch(t.Dp, Eal(t), [.. LcpdProcess.TestFib, "--netns", t.Rt, "--pair", $"{t.Hosts[0].PortName}=lcp0"]);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(l.Socket) && sw.Elapsed < TimeSpan.FromSeconds(60))
            Thread.Sleep(2);
        Assert.True(File.Exists(l.Socket), $"no API socket:\n{l.Output}");
        l.Signal(LcpdProcess.SIGTERM);
        int? code = l.WaitExit(TimeSpan.FromSeconds(20));
        Assert.True(code == 0, $"exit {code?.ToString() ?? "timeout"}:\n{l.Output}");
        Assert.False(Net.LinkExists(t.Rt, "lcp0"));
        Assert.False(File.Exists(l.Socket));
    }

    [Fact]
    public void TunPair_PointToPoint_PingRouterAcrossTun()
    {
        using var t = new Topology(hosts: 1);
        TestHost h = t.Hosts[0];
        using var l = LcpdProcess.Start(t.Dp, Eal(t), [.. LcpdProcess.TestFib, "--netns", t.Rt, "--pair", $"{h.PortName}=tun0,tun"]);
        Assert.Equal("tun", Net.Find(l.CtlJson("show", "lcp"), "host_if", "tun0")["kind"]!.GetValue<string>());
        string link = Cmd.InNsOk(t.Rt, "ip", "-o", "link", "show", "dev", "tun0");
        Assert.Contains("POINTOPOINT", link, StringComparison.Ordinal);

        Cmd.InNsOk(t.Rt, "ip", "addr", "add", $"{h.RouterIp4}/32", "peer", $"{h.Ip4}/32", "dev", "tun0");
        Cmd.InNsOk(t.Rt, "ip", "link", "set", "tun0", "up");
        // A point-to-point link runs no ARP: the host knows the router's MAC statically.
        string portMac = Net.Find(l.CtlJson("show", "interfaces"), "name", h.PortName)["mac"]!.GetValue<string>();
        Cmd.InNsOk(h.Ns, "ip", "neigh", "replace", h.RouterIp4, "lladdr", portMac, "dev", h.Ifname, "nud", "permanent");

        Net.Ping(h.Ns, h.RouterIp4);
        var ifs = l.CtlJson("show", "interfaces");
        Assert.True(Net.Find(ifs, "name", "tun0")["rx_packets"]!.GetValue<long>() >= 3);
        Assert.True(Net.Find(ifs, "name", h.PortName)["punts"]!.GetValue<long>() >= 3);

        // ARP cannot cross a TUN: counted, not leaked.
        Cmd.InNs(h.Ns, "arping", "-c", "1", "-w", "1", "-I", h.Ifname, h.RouterIp4);
        Net.WaitUntil(() => Net.ErrorCount(l, "tun-not-ip") > 0, TimeSpan.FromSeconds(5), "tun-not-ip");
    }

    [Fact]
    public void TunPair_Transit_ForwardedThroughLearnedPeerAdjacency()
    {
        using var t = new Topology(hosts: 2);
        TestHost h0 = t.Hosts[0], h1 = t.Hosts[1];
        using var l = LcpdProcess.Start(t.Dp, Eal(t), [.. LcpdProcess.TestFib, "--netns", t.Rt,
            "--pair", $"{h0.PortName}=tun0,tun", "--pair", $"{h1.PortName}={h1.MirrorName}"]);
        t.EnableRouting();
        Cmd.InNsOk(t.Rt, "ip", "addr", "add", $"{h0.RouterIp4}/32", "peer", $"{h0.Ip4}/32", "dev", "tun0");
        Cmd.InNsOk(t.Rt, "ip", "link", "set", "tun0", "up");
        t.ConfigureRouterInterface(h1);
        string portMac = Net.Find(l.CtlJson("show", "interfaces"), "name", h0.PortName)["mac"]!.GetValue<string>();
        Cmd.InNsOk(h0.Ns, "ip", "neigh", "replace", h0.RouterIp4, "lladdr", portMac, "dev", h0.Ifname, "nud", "permanent");
        string h0Mac = Cmd.InNsOk(h0.Ns, "cat", $"/sys/class/net/{h0.Ifname}/address").Trim();

        // The peer route ("10.201.1.2 dev tun0") points at the link's one adjacency, resolved by
        // what the peer sends (there is no ARP on a point-to-point link; h0's IPv6 start-up
        // chatter may already have taught it).
        // (Nothing covers the address until the peer route reaches the FIB: an empty answer.)
        JsonObject? Route() => l.CtlJson("show", "ip", "fib", h0.Ip4).AsArray().FirstOrDefault()?.AsObject();
        bool Resolved() => Route()!["paths"]!.AsArray().Any(p => p!["resolved"]!.GetValue<bool>());
        Net.WaitUntil(() => Route()?["prefix"]!.GetValue<string>() == $"{h0.Ip4}/32", TimeSpan.FromSeconds(2), "peer route in the FIB");
        Assert.Equal("forward", Route()!["type"]!.GetValue<string>());
        Assert.Equal("tun0", Route()!["paths"]![0]!["interface"]!.GetValue<string>());

        Net.Ping(h0.Ns, h0.RouterIp4); // the peer speaks: its MAC becomes the adjacency
        Net.WaitUntil(Resolved, TimeSpan.FromSeconds(2), "the point-to-point adjacency to resolve");

        Net.Ping(h1.Ns, h0.Ip4); // resolves h1 in Linux (replies glean through lcp1 once)
        Net.WaitUntil(() => l.CtlJson("show", "ip", "neighbors").AsArray().Any(n => n!["ip"]!.GetValue<string>() == h1.Ip4),
            TimeSpan.FromSeconds(3), "h1 in the neighbour table");

        long linux = Net.LinuxForwarded(t.Rt, false);
        JsonNode ifs = l.CtlJson("show", "interfaces");
        long tunRx = Net.Find(ifs, "name", "tun0")["rx_packets"]!.GetValue<long>();
        long fwd0 = Net.Find(ifs, "name", h0.PortName)["forwarded"]!.GetValue<long>();
        long fwd1 = Net.Find(ifs, "name", h1.PortName)["forwarded"]!.GetValue<long>();
        string dump = Path.Combine(Path.GetTempPath(), $"lcpt-tun-{t.Id}.pcap");
        try
        {
            l.CtlJson("capture", "start", "port", h0.PortName, "tx", "max", "5", "file", dump);
            Net.Ping(h1.Ns, h0.Ip4, count: 5);
            Net.WaitUntil(() => !l.CtlJson("show", "capture")["running"]!.GetValue<bool>(), TimeSpan.FromSeconds(5), "capture to finish");

            // Both directions took the fast path: Linux forwarded nothing, the TUN carried nothing.
            Assert.Equal(linux, Net.LinuxForwarded(t.Rt, false));
            ifs = l.CtlJson("show", "interfaces");
            Assert.Equal(tunRx, Net.Find(ifs, "name", "tun0")["rx_packets"]!.GetValue<long>());
            Assert.True(Net.Find(ifs, "name", h1.PortName)["forwarded"]!.GetValue<long>() >= fwd1 + 5, "requests forwarded from h1's port");
            Assert.True(Net.Find(ifs, "name", h0.PortName)["forwarded"]!.GetValue<long>() >= fwd0 + 5, "replies forwarded from the TUN's port");
            // ...and the requests left towards h0 addressed to its MAC (the learned adjacency).
            CmdResult r = Cmd.Run("tshark", ["-r", dump, "-T", "fields", "-e", "eth.dst", "-e", "ip.dst"], TimeSpan.FromSeconds(60));
            Assert.True(r.Code == 0, r.ToString());
            string[] lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5, lines.Length);
            Assert.All(lines, line => Assert.Equal($"{h0Mac}\t{h0.Ip4}", line.Trim()));
        }
        finally
        {
            l.Ctl("capture", "stop");
            File.Delete(dump);
        }
    }

    /// <summary>A DHCP discover (UDP 0.0.0.0:68 to 255.255.255.255:67) from MAC 02:00:00:00:0b:ad
    /// on the interface argv[1].</summary>
    private const string DhcpFromNowhere = """
        import socket, struct, sys
        udp = struct.pack('!HHHH', 68, 67, 8 + 240, 0) + bytes(240)
        h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), bytes([255] * 4))
        c = sum(struct.unpack('!10H', h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
        h = h[:10] + struct.pack('!H', ~c & 0xffff) + h[12:]
        eth = bytes([255] * 6 + [2, 0, 0, 0, 0x0b, 0xad]) + struct.pack('!H', 0x0800)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((sys.argv[1], 0))
        s.send(eth + h + udp)
        """;

    /// <summary>Two hosts behind one TUN-paired port (a bridge between them and the port): Linux
    /// routes a prefix via each, and has no ARP there, so what it sends on the TUN must be given
    /// the MAC of the next hop it chose — the adjacency the FIB holds for that next hop (learned
    /// from what each host sent), not the last sender's.</summary>
    [Fact]
    public void TunPair_TwoNextHops_EachPacketTakesItsNextHopsAdjacency()
    {
        using var t = new Topology(hosts: 2);
        TestHost h0 = t.Hosts[0], h1 = t.Hosts[1];
        // h0's namespace becomes a switch: its end of the port's wire and two hosts on a bridge.
        Cmd.InNsOk(h0.Ns, "ip", "addr", "flush", "dev", h0.Ifname);
        Cmd.InNsOk(h0.Ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); // a silent switch
        Cmd.InNsOk(h0.Ns, "ip", "link", "add", "br0", "type", "bridge");
        Cmd.InNsOk(h0.Ns, "ip", "link", "set", h0.Ifname, "master", "br0");
        Cmd.InNsOk(h0.Ns, "ip", "link", "set", "br0", "up");
        var hosts = new List<(string Ns, string Ip, string Behind)>();
        for (int i = 0; i < 2; i++)
        {
            string ns = t.AddNamespace($"a{i}");
            string ip = $"10.201.1.{2 + i}", behind = $"10.9{1 + i}.0.1";
            Cmd.Ok("ip", "link", "add", $"s{i}", "netns", h0.Ns, "type", "veth", "peer", "name", "eth0", "netns", ns);
            Cmd.InNsOk(h0.Ns, "ip", "link", "set", $"s{i}", "master", "br0");
            Cmd.InNsOk(h0.Ns, "ip", "link", "set", $"s{i}", "up");
            Cmd.InNsOk(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1");
            Cmd.InNsOk(ns, "ip", "link", "set", "lo", "up");
            Cmd.InNsOk(ns, "ip", "addr", "add", $"{behind}/32", "dev", "lo");
            Cmd.InNsOk(ns, "ip", "addr", "add", $"{ip}/24", "dev", "eth0");
            Cmd.InNsOk(ns, "ethtool", "-K", "eth0", "tx", "off");
            Cmd.InNsOk(ns, "ip", "link", "set", "eth0", "up");
            Cmd.InNsOk(ns, "ip", "route", "add", "default", "via", h0.RouterIp4);
            hosts.Add((ns, ip, behind));
        }
        using var l = LcpdProcess.Start(t.Dp, Eal(t), [.. LcpdProcess.TestFib, "--netns", t.Rt,
            "--pair", $"{h0.PortName}=tun0,tun", "--pair", $"{h1.PortName}={h1.MirrorName}"]);
        t.EnableRouting();
        t.ConfigureRouterInterface(h1);
        Cmd.InNsOk(t.Rt, "ip", "addr", "add", $"{h0.RouterIp4}/24", "dev", "tun0");
        Cmd.InNsOk(t.Rt, "ip", "link", "set", "tun0", "up");
        Cmd.InNsOk(t.Rt, "ip", "route", "add", "10.91.0.0/16", "via", hosts[0].Ip, "dev", "tun0");
        Cmd.InNsOk(t.Rt, "ip", "route", "add", "10.92.0.0/16", "via", hosts[1].Ip, "dev", "tun0");
        string portMac = Net.Find(l.CtlJson("show", "interfaces"), "name", h0.PortName)["mac"]!.GetValue<string>();
        foreach (var (ns, _, _) in hosts)
            Cmd.InNsOk(ns, "ip", "neigh", "replace", h0.RouterIp4, "lladdr", portMac, "dev", "eth0", "nud", "permanent");

        // A host without an address yet on the link (a DHCP discover from 0.0.0.0; Linux sends
        // IGMP reports from 0.0.0.0 too when a link comes up before its address): it names the
        // link's peer but no neighbour (learnt, 0.0.0.0 would be the neighbour of every
        // gateway-less path and take the replies below).
        Cmd.InNsOk(h0.Ns, "python3", "-c", DhcpFromNowhere, "br0");
        Thread.Sleep(3 * 100); // three polls of what the workers learned
        Assert.DoesNotContain(l.CtlJson("show", "ip", "neighbors").AsArray(), n => n!["ip"]!.GetValue<string>() == "0.0.0.0");

        // Each host speaks to the router once: the workers learn its address and MAC. The second
        // speaks only once the first is in the FIB (the link's peer there too): the reply to it
        // must take the peer the workers saw last, not the FIB's copy, one poll older.
        string[] macs = [.. hosts.Select(h => Cmd.InNsOk(h.Ns, "cat", "/sys/class/net/eth0/address").Trim())];
        bool Learned(int i) => l.CtlJson("show", "ip", "neighbors").AsArray()
            .Any(x => x!["ip"]!.GetValue<string>() == hosts[i].Ip && x["mac"]!.GetValue<string>() == macs[i]);
        for (int i = 0; i < hosts.Count; i++)
        {
            Net.Ping(hosts[i].Ns, h0.RouterIp4, count: 1);
            Net.WaitUntil(() => Learned(i), TimeSpan.FromSeconds(3), $"host {i} learned as tun0's neighbour");
        }

        // Linux's own packets (the router pings what is behind each host, and each host), by
        // turns: with one adjacency for the whole link (the last sender), every other would go to
        // the wrong host, which does not forward, and be lost.
        for (int round = 0; round < 3; round++)
        {
            foreach (var (ns, ip, behind) in hosts)
            {
                Net.Ping(t.Rt, behind, count: 1);
                Net.Ping(t.Rt, ip, count: 1);
            }
        }

        // Transit through the dataplane takes the same adjacencies (Linux forwards nothing).
        Net.Ping(h1.Ns, hosts[0].Behind, count: 1); // h1 resolved in Linux once
        long linux = Net.LinuxForwarded(t.Rt, false);
        for (int round = 0; round < 2; round++)
            foreach (var (_, ip, behind) in hosts)
            {
                Net.Ping(h1.Ns, behind, count: 1);
                Net.Ping(h1.Ns, ip, count: 1);
            }
        Assert.Equal(linux, Net.LinuxForwarded(t.Rt, false));
        JsonArray fib = l.CtlJson("show", "ip", "fib").AsArray();
        Assert.Contains(fib, r => r!["prefix"]!.GetValue<string>() == $"{hosts[1].Ip}/32" && r["source"]!.GetValue<string>() == "neighbor");
    }

    [Fact]
    public void MirrorRefusesFrames_FreedAndCounted_NoMbufLeak()
    {
        // Without the FIB nothing follows Linux's link state, so a TAP that is down in Linux
        // really refuses what lcpd punts: the TX-failure path must free and count every mbuf.
        using var t = new Topology(hosts: 1);
        TestHost h = t.Hosts[0];
        using var l = LcpdProcess.Start(t.Dp, Eal(t), ["--no-fib", "--netns", t.Rt, "--pair", $"{h.PortName}=lcp0"]);
        t.ConfigureRouterInterface(h);
        Net.Ping(h.Ns, h.RouterIp4);
        long InUse() => l.CtlJson("show", "buffers").AsArray()[0]!["in_use"]!.GetValue<long>();
        long baseline = InUse();
        Cmd.InNsOk(t.Rt, "ip", "link", "set", "lcp0", "down");
        Cmd.InNs(h.Ns, "ping", "-f", "-c", "500", "-W", "1", h.RouterIp4);
        Assert.True(Net.ErrorCount(l, "mirror-tx-full") > 0, "punts to a down TAP are refused and counted");
        Net.WaitUntil(() => InUse() == baseline, TimeSpan.FromSeconds(5), $"in-use mbufs back to {baseline}");
    }

    private static CmdResult RunLcpd(params string[] args)
    {
        try
        {
            return Cmd.Run(Repo.Lcpd, args, TimeSpan.FromSeconds(60));
        }
        finally
        {
            Repo.CleanEalRuntime(args);
        }
    }

    private static string[] NullEal(string prefix) =>
        ["--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix, "--lcores", "0@0", "--vdev", "net_null0"];

    private static void AssertOneLineError(CmdResult r, int code, string expected)
    {
        Assert.True(r.Code == code, $"expected exit {code}: {r}");
        // lcpd's own reason is the last "lcpd:" line, and there is exactly one such line with the
        // reason (EAL's getopt may add its own "lcpd: unrecognized option" line before it).
        string[] ours = r.Err.Split('\n').Where(x => x.StartsWith("lcpd: ", StringComparison.Ordinal)).ToArray();
        Assert.True(ours.Length >= 1, $"expected an 'lcpd:' line: {r}");
        Assert.Contains(expected, ours[^1], StringComparison.Ordinal);
        Assert.Single(ours, x => x.Contains(expected, StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public void Start_UnknownPort_Exit1WithReason() =>
        AssertOneLineError(RunLcpd([.. NullEal($"lcpt{Repo.UniqueId()}"), "--", .. LcpdProcess.TestFib, "--api-socket", $"/run/lcpt-{Repo.UniqueId()}.sock",
            "--pair", "net_null7=x0"]), 1, "unknown port 'net_null7'");

    [Fact]
    public void Start_BadClassifyFile_Exit1NamingTheLine()
    {
        string file = Path.Combine(Path.GetTempPath(), $"lcpt-acl-{Repo.UniqueId()}");
        File.WriteAllText(file, "# filter\nnet_null0 input dst 10.0.0.0/8 drop\n\nnet_null0 input dport 70000 drop\n");
        try
        {
            AssertOneLineError(RunLcpd([.. NullEal($"lcpt{Repo.UniqueId()}"), "--", .. LcpdProcess.TestFib, "--api-socket", $"/run/lcpt-{Repo.UniqueId()}.sock",
                "--classify-file", file]), 1, $"--classify-file {file} line 4:");
            File.WriteAllText(file, "nosuch0 input drop\n");
            AssertOneLineError(RunLcpd([.. NullEal($"lcpt{Repo.UniqueId()}"), "--", .. LcpdProcess.TestFib, "--api-socket", $"/run/lcpt-{Repo.UniqueId()}.sock",
                "--classify-file", file]), 1, "no dataplane port named 'nosuch0'");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Start_ClassifyFile_RulesInstalledBeforeTraffic()
    {
        string file = Path.Combine(Path.GetTempPath(), $"lcpt-acl-{Repo.UniqueId()}");
        File.WriteAllText(file, "net_null0 input dst 10.0.0.0/8 drop # a comment\nnet_null0 output proto udp dport 53 pass priority 3\n");
        string sock = $"/run/lcpt-{Repo.UniqueId()}.sock";
        try
        {
            using var l = LcpdProcess.Start(null, NullEal($"lcpt{Repo.UniqueId()}"), [.. LcpdProcess.TestFib, "--classify-file", file], sock);
            var rules = l.CtlJson("show", "classify").AsArray();
            Assert.Equal(3, rules.Count); // the second line has no address: a rule per family
            Assert.Equal("net_null0 input dst 10.0.0.0/8 drop", rules.Select(r => r!["rule"]!.GetValue<string>()).First(r => r.Contains("input")));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Start_DuplicateHostIf_Exit2() =>
        AssertOneLineError(RunLcpd("--", "--pair", "a=x0", "--pair", "b=x0"), 2, "duplicate host-if x0");

    [Fact]
    public void Start_BadNetnsName_Exit2() =>
        AssertOneLineError(RunLcpd("--", "--netns", "bad/name"), 2, "bad netns name");

    [Fact]
    public void Start_MalformedOption_Exit2() =>
        AssertOneLineError(RunLcpd("--", "--pair"), 2, "needs a value");

    [Fact]
    public void Start_EalInitFailure_Exit1WithEalReason() =>
        AssertOneLineError(RunLcpd("--no-huge", "--file-prefix", $"lcpt{Repo.UniqueId()}", "--lcores", "0@0", "--bogus-eal-flag"), 1, "EAL init failed");

    [Fact]
    public void Start_NoPorts_Exit1() =>
        AssertOneLineError(RunLcpd("--no-huge", "-m", "1024", "--no-pci", "--file-prefix", $"lcpt{Repo.UniqueId()}", "--lcores", "0@0",
            "--", "--api-socket", $"/run/lcpt-{Repo.UniqueId()}.sock"), 1, "no ports");

    [Fact]
    public void Start_HostIfAlreadyExistsInNetns_Exit1()
    {
        string ns = $"lcpt-x-{Repo.UniqueId()}";
        Cmd.Ok("ip", "netns", "add", ns);
        try
        {
            Cmd.InNsOk(ns, "ip", "link", "add", "taken0", "type", "veth", "peer", "name", "taken1");
            AssertOneLineError(RunLcpd([.. NullEal($"lcpt{Repo.UniqueId()}"), "--", .. LcpdProcess.TestFib, "--api-socket", $"/run/lcpt-{Repo.UniqueId()}.sock",
                "--pair", $"net_null0=taken0,netns={ns}"]), 1, "already exists");
            Assert.True(Net.LinkExists(ns, "taken0"), "an interface lcpd did not create must be left alone");
        }
        finally
        {
            Cmd.Run("ip", "netns", "del", ns);
        }
    }

    [Fact]
    public void Start_WithoutPrivileges_Exit1()
    {
        CmdResult r = Cmd.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
            Repo.Lcpd, "--no-huge", "--", "--api-socket", "/tmp/lcpt-nopriv.sock"], TimeSpan.FromSeconds(60));
        AssertOneLineError(r, 1, "must run as root");
    }

    [Fact]
    public void Help_Exit0AndDocumentsOptions()
    {
        CmdResult r = RunLcpd("--help");
        Assert.Equal(0, r.Code);
        foreach (string opt in new[] { "--pair", "--netns", "--api-socket", "--no-punt-other", "SIGTERM" })
            Assert.Contains(opt, r.Out, StringComparison.Ordinal);
    }
}
