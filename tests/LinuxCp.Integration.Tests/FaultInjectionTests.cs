using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Faults injected into a real lcpd on real DPDK with real mirrors and Linux peers:
/// SIGKILL in the middle of route floods, link flaps under traffic, a mirror namespace deleted
/// and created again, a routing daemon (BIRD) restarted, each with the netlink socket overrun on
/// purpose (a 16 KiB receive buffer); tables used up. After each, the FIB must equal the
/// kernel's (`lcp verify`), no mirror may be lost, traffic must flow and the mempool must be back
/// to its idle count.</summary>
[Collection("lcpd")]
public sealed class FaultInjectionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpf").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly string[] Overrun = ["--netlink-rcvbuf", "16384", "--netlink-batch", "64"];

    private static LcpdProcess Start(Topology topo, IEnumerable<string> lcpdArgs, IEnumerable<string>? fib = null)
    {
        var eal = LcpdProcess.TestEal($"lcpf{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        return LcpdProcess.Start(topo.Dp, eal, [.. fib ?? LcpdProcess.TestFib, "--netns", topo.Rt, .. lcpdArgs]);
    }

    private static string[] Pairs(Topology topo, string options = "") =>
        [.. topo.Hosts.SelectMany(h => new[] { "--pair", $"{h.PortName}={h.MirrorName}{options}" })];

    private static long InUse(LcpdProcess l) => l.CtlJson("show", "buffers").AsArray().Sum(b => b!["in_use"]!.GetValue<long>());

    private static JsonNode Summary(LcpdProcess l) => l.CtlJson("show", "ip", "fib", "summary");

    private static int IfIndex(string ns, string ifname) =>
        int.Parse(Cmd.InNsOk(ns, "cat", $"/sys/class/net/{ifname}/ifindex").Trim(), CultureInfo.InvariantCulture);

    /// <summary>`lcp verify` until it reports the FIB in sync (a dump applied after a restart or an
    /// overrun takes a moment); fails with the last answer.</summary>
    private static void WaitInSync(LcpdProcess l, string what, int seconds = 30)
    {
        var sw = Stopwatch.StartNew();
        CmdResult r;
        do
        {
            r = l.Ctl("lcp", "verify", "--json");
            if (r.Code == 0)
                return;
            Thread.Sleep(250);
        }
        while (sw.Elapsed < TimeSpan.FromSeconds(seconds));
        Assert.Fail($"{what}: FIB not equal to the kernel's after {seconds} s:\n{r.Out[..Math.Min(r.Out.Length, 3000)]}");
    }

    private static void WaitIdleMbufs(LcpdProcess l, long idle, string what) =>
        Net.WaitUntil(() => InUse(l) == idle, TimeSpan.FromSeconds(10), $"{what}: in-use mbufs back to the idle {idle} (now {InUse(l)})");

    private static void AssertWorkersHealthy(LcpdProcess l)
    {
        Assert.False(l.HasExited, "lcpd died:\n" + l.Output);
        foreach (JsonNode? w in l.CtlJson("show", "runtime").AsArray())
        {
            Assert.True(w!["running"]!.GetValue<bool>(), $"worker {w["worker"]} stopped: {w["failure"]}");
            Assert.Equal(0, w["allocated_bytes_since_warmup"]!.GetValue<long>());
        }
    }

    /// <summary>A file of route changes for `ip -force -batch`: replaces and deletes of /24s under
    /// 100.64/10 (of a pool of 16384) through the given gateways, in random order.</summary>
    private static string FloodFile(string dir, Random rnd, int ops, params string[] gateways)
    {
        string path = Path.Combine(dir, $"flood-{rnd.Next()}.batch");
        var sb = new StringBuilder();
        for (int i = 0; i < ops; i++)
        {
            int n = rnd.Next(16384);
            string prefix = $"100.{64 + (n >> 8)}.{n & 255}.0/24";
            sb.Append(rnd.Next(4) == 0 ? $"route del {prefix}\n" : $"route replace {prefix} via {gateways[rnd.Next(gateways.Length)]}\n");
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>Runs a flood file to the end. A random flood deletes routes that are not there;
    /// `ip -force` goes on after those (exit 1), anything else fails the test.</summary>
    private static void Flood(string ns, string file)
    {
        CmdResult r = Cmd.Run("ip", ["netns", "exec", ns, "ip", "-force", "-batch", file], TimeSpan.FromSeconds(120));
        bool onlyMissing = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .All(l => l.Contains("No such process", StringComparison.Ordinal) || l.StartsWith("Command failed", StringComparison.Ordinal));
        Assert.True(r.Code == 0 || (r.Code == 1 && onlyMissing), $"flood {file}: {r}");
    }

    /// <summary>lcpd killed with SIGKILL at a random moment of a route flood and started again at
    /// once (the flood still running while it dumps the tables), 20 times: every time, the FIB
    /// equals the kernel's, both persistent mirrors are adopted with their ifindex, transit
    /// traffic is forwarded, and the mempool is back to its idle count.</summary>
    [Fact]
    public void Sigkill_AtRandomMomentsOfRouteFloods_20Restarts_FibEqualsKernel_MirrorsKept_MempoolIdle()
    {
        int seed = Environment.TickCount;
        var rnd = new Random(seed);
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        string[] args = [.. Pairs(topo, ",persist"), .. Overrun];
        LcpdProcess l = Start(topo, args);
        var floods = new List<string>();
        try
        {
            topo.EnableRouting();
            topo.ConfigureRouterInterface(a);
            topo.ConfigureRouterInterface(b);
            long idle = InUse(l);
            Net.Ping(a.Ns, b.Ip4);
            int ifA = IfIndex(topo.Rt, a.MirrorName), ifB = IfIndex(topo.Rt, b.MirrorName);
            for (int round = 0; round < 20; round++)
            {
                string file = FloodFile(_dir, rnd, 20_000, a.Ip4, b.Ip4);
                floods.Add(file);
                int killAfterMs = rnd.Next(1200);
                using (var flood = new Background(topo.Rt, "ip", "-force", "-batch", file))
                {
                    Thread.Sleep(killAfterMs);
                    l.Signal(9);
                    Assert.NotNull(l.WaitExit(TimeSpan.FromSeconds(10)));
                    l.Dispose();
                    l = Start(topo, args);
                    Assert.True(flood.Wait(TimeSpan.FromSeconds(60)), "the flood did not finish");
                }
                string where = $"round {round} (seed {seed}, killed {killAfterMs} ms into the flood)";
                WaitInSync(l, where);
                foreach (JsonNode? p in l.CtlJson("show", "lcp").AsArray())
                {
                    Assert.Equal("up", p!["state"]!.GetValue<string>());
                    Assert.True(p["adopted"]!.GetValue<bool>(), $"{where}: {p["host_if"]} not adopted");
                }
                Assert.Equal(ifA, IfIndex(topo.Rt, a.MirrorName));
                Assert.Equal(ifB, IfIndex(topo.Rt, b.MirrorName));
                Net.Ping(a.Ns, b.Ip4);
                WaitIdleMbufs(l, idle, where);
                AssertWorkersHealthy(l);
            }
        }
        finally
        {
            l.Dispose();
            floods.ForEach(File.Delete);
        }
    }

    /// <summary>The cable of port 0 pulled and put back every 100 ms for a minute (its far end
    /// flapped in the host's namespace) while host B pings host A 100 times a second through the
    /// dataplane and route floods overrun the netlink socket: lcpd stays up, counts what it could
    /// not send, and afterwards forwards, holds the kernel's FIB and has every mbuf back.</summary>
    [Fact]
    public void LinkFlaps_Every100ms_ForAMinute_UnderTrafficAndNetlinkOverrun_Recovers()
    {
        var rnd = new Random(Environment.TickCount);
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = Start(topo, [.. Pairs(topo), .. Overrun]);
        var files = new List<string>();
        try
        {
            topo.EnableRouting();
            topo.ConfigureRouterInterface(a);
            topo.ConfigureRouterInterface(b);
            long idle = InUse(l);
            Net.Ping(b.Ns, a.Ip4);
            long sentBefore = Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["tx_packets"]!.GetValue<long>();
            using (var pinger = new Background(b.Ns, "ping", "-q", "-i", "0.01", "-W", "1", a.Ip4))
            using (var flap = new Background(a.Ns, "bash", "-c",
                       $"for i in $(seq 300); do ip link set {a.Ifname} down; sleep 0.1; ip link set {a.Ifname} up; sleep 0.1; done"))
            {
                var sw = Stopwatch.StartNew();
                while (!flap.Wait(TimeSpan.FromMilliseconds(100)))
                {
                    string file = FloodFile(_dir, rnd, 5000, b.Ip4);
                    files.Add(file);
                    Flood(topo.Rt, file);
                    Assert.False(l.HasExited, "lcpd died during the flaps:\n" + l.Output);
                    Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), "the flapping loop did not end");
                }
                Assert.Equal(0, flap.ExitCode);
                pinger.Term();
            }
            // The link came back: the host's default route went with the link, put it back.
            Cmd.InNsOk(a.Ns, "ip", "route", "replace", "default", "via", a.RouterIp4);
            Net.WaitUntil(() => Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["link_up"]!.GetValue<bool>(),
                TimeSpan.FromSeconds(5), "port 0's link up again");
            JsonNode stats = l.CtlJson("lcp", "resync");
            Assert.True(stats["overruns"]!.GetValue<long>() > 0, "the floods must have overrun the 16 KiB socket");
            WaitInSync(l, "after the flaps");
            Net.Ping(a.Ns, b.Ip4, count: 5);
            Net.Ping(b.Ns, a.Ip4, count: 5);
            Assert.True(Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["tx_packets"]!.GetValue<long>() > sentBefore + 1000,
                "the pings were forwarded to port 0 between the flaps");
            WaitIdleMbufs(l, idle, "after the flaps");
            AssertWorkersHealthy(l);
        }
        finally
        {
            files.ForEach(File.Delete);
        }
    }

    /// <summary>The mirrors' namespace deleted under traffic and route floods, created again and
    /// flooded again at once: the pairs come back in the new namespace, the FIB follows the new
    /// namespace's tables exactly, traffic flows, mbufs return.</summary>
    [Fact]
    public void MirrorNamespace_DeletedAndCreatedAgain_UnderFloodsAndTraffic_Recovers()
    {
        var rnd = new Random(Environment.TickCount);
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = Start(topo, [.. Pairs(topo), .. Overrun]);
        var files = new List<string>();
        try
        {
            topo.EnableRouting();
            topo.ConfigureRouterInterface(a);
            topo.ConfigureRouterInterface(b);
            for (int round = 0; round < 3; round++)
            {
                Net.Ping(a.Ns, b.Ip4);
                long idle = InUse(l);
                string file = FloodFile(_dir, rnd, 20_000, a.Ip4, b.Ip4);
                files.Add(file);
                using (var pinger = new Background(a.Ns, "ping", "-q", "-i", "0.01", "-W", "1", b.Ip4))
                using (var flood = new Background(topo.Rt, "ip", "-force", "-batch", file))
                {
                    Thread.Sleep(rnd.Next(500));
                    Cmd.Ok("ip", "netns", "del", topo.Rt);
                    Net.WaitUntil(() => l.CtlJson("show", "lcp").AsArray().All(p => p!["state"]!.GetValue<string>() == "down"),
                        TimeSpan.FromSeconds(10), $"round {round}: the pairs down with their namespace");
                    flood.Wait(TimeSpan.FromSeconds(60));
                    Cmd.Ok("ip", "netns", "add", topo.Rt);
                    Net.WaitUntil(() => l.CtlJson("show", "lcp").AsArray().All(p => p!["state"]!.GetValue<string>() == "up")
                        && topo.Hosts.All(h => Net.LinkExists(topo.Rt, h.MirrorName)), TimeSpan.FromSeconds(10), $"round {round}: mirrors back");
                    pinger.Term();
                }
                topo.EnableRouting();
                topo.ConfigureRouterInterface(a);
                topo.ConfigureRouterInterface(b);
                string again = FloodFile(_dir, rnd, 20_000, a.Ip4, b.Ip4);
                files.Add(again);
                Flood(topo.Rt, again);
                WaitInSync(l, $"round {round}");
                Net.Ping(a.Ns, b.Ip4);
                WaitIdleMbufs(l, idle, $"round {round}");
            }
            Assert.True(l.CtlJson("lcp", "resync")["overruns"]!.GetValue<long>() > 0, "the floods must have overrun the 16 KiB socket");
            AssertWorkersHealthy(l);
        }
        finally
        {
            files.ForEach(File.Delete);
        }
    }

    /// <summary>BIRD (a real routing daemon) exports 5000 static routes into the mirrors'
    /// namespace; it is stopped (it withdraws them all) and started again (it adds them all back
    /// at once) three times, with the netlink socket overrun: each time the FIB follows,
    /// and ends equal to the kernel's with every route through the daemon's gateway.</summary>
    [Fact]
    public void RoutingDaemonRestarted_AllRoutesWithdrawnAndReAdded_FibFollows()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = Start(topo, [.. Pairs(topo), .. Overrun]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        string dir = _dir;
        try
        {
            var conf = new StringBuilder();
            conf.Append(CultureInfo.InvariantCulture, $"router id {b.RouterIp4};\nprotocol device {{ }}\n");
            conf.Append("protocol kernel { ipv4 { import none; export all; }; persist off; learn off; }\n");
            conf.Append("protocol static { ipv4;\n");
            for (int i = 0; i < 5000; i++)
                conf.Append(CultureInfo.InvariantCulture, $"  route 100.{64 + (i >> 8)}.{i & 255}.0/24 via {b.Ip4};\n");
            conf.Append("}\n");
            string cfg = Path.Combine(dir, "bird.conf");
            Cmd.InNsOk(b.Ns, "ip", "addr", "add", "100.64.1.1/32", "dev", "lo");
            File.WriteAllText(cfg, conf.ToString());
            long FibRoutes() => Summary(l)["ipv4"]!.GetValue<long>();
            long baseRoutes = FibRoutes();
            int KernelBird() => Cmd.InNsOk(topo.Rt, "ip", "-4", "route", "show", "proto", "bird").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            for (int round = 0; round < 3; round++)
            {
                using (var bird = new Background(topo.Rt, "bird", "-f", "-c", cfg, "-s", Path.Combine(dir, "bird.ctl"), "-P", Path.Combine(dir, "bird.pid")))
                {
                    Net.WaitUntil(() => KernelBird() == 5000, TimeSpan.FromSeconds(30), $"round {round}: BIRD's 5000 routes in the kernel ({bird.Output})");
                    WaitInSync(l, $"round {round}, BIRD running");
                    Assert.True(FibRoutes() >= baseRoutes + 5000);
                    Net.Ping(a.Ns, "100.64.1.1"); // B's loopback address, reached through BIRD's route
                    bird.Term();
                    Assert.True(bird.Wait(TimeSpan.FromSeconds(20)), "BIRD did not stop");
                }
                Net.WaitUntil(() => KernelBird() == 0, TimeSpan.FromSeconds(10), $"round {round}: BIRD withdrew its routes");
                WaitInSync(l, $"round {round}, BIRD stopped");
                Assert.Equal(baseRoutes, FibRoutes());
            }
            Assert.True(l.CtlJson("lcp", "resync")["overruns"]!.GetValue<long>() > 0, "5000 routes at once must overrun the 16 KiB socket");
            AssertWorkersHealthy(l);
        }
        finally
        {
            File.Delete(Path.Combine(dir, "bird.conf"));
        }
    }

    /// <summary>IPv4 prefixes longer than /24 in more distinct /24s than tbl8 groups can ever
    /// exist (32767): the table grows to the limit, then the rest are refused, counted and logged
    /// naming the table and the limit, and punted to Linux (which still forwards them). When routes
    /// leave, the refused ones are installed and the table is no longer full.</summary>
    [Fact]
    public void Tbl8GroupsUsedUp_RefusedCountedLogged_PuntedToLinux_RecoveredWhenRoutesLeave()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = Start(topo, Pairs(topo));
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        const int N = 33_500;
        string file = Path.Combine(_dir, "tbl8.batch");
        static string P(int i) => $"{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/25";
        try
        {
            File.WriteAllLines(file, Enumerable.Range(0, N).Select(i => $"route add {P(i)} via {b.Ip4}"));
            Cmd.InNsOk(topo.Rt, "ip", "-batch", file);
            Net.WaitUntil(() => Summary(l)["tables"]![0]!["full"]!.GetValue<bool>(), TimeSpan.FromSeconds(60), "the table marked full");
            JsonNode s = Summary(l);
            long refused = s["refused"]!.GetValue<long>();
            Assert.True(refused > 0, $"some /25s refused: {s.ToJsonString()}");
            Assert.True(s["tables"]![0]!["ipv4_tbl8"]!.GetValue<int>() == 32767, $"grown to the tbl8 limit: {s.ToJsonString()}\n{l.Output}");
            Assert.Contains("tbl8 groups at the maximum (32767)", l.Output, StringComparison.Ordinal);
            Assert.False(l.HasExited);

            // The last /25 added was refused: it punts to Linux, which forwards it.
            Cmd.InNsOk(b.Ns, "ip", "addr", "add", P(N - 1).Replace(".0/25", ".1/32", StringComparison.Ordinal), "dev", "lo");
            long linux = Net.LinuxForwarded(topo.Rt, false);
            Net.Ping(a.Ns, P(N - 1).Replace(".0/25", ".1", StringComparison.Ordinal));
            Assert.True(Net.LinuxForwarded(topo.Rt, false) > linux, "a refused prefix is forwarded by Linux");

            // Routes leave: the refused ones are installed as room appears.
            File.WriteAllLines(file, Enumerable.Range(0, 2000).Select(i => $"route del {P(i)}"));
            Cmd.InNsOk(topo.Rt, "ip", "-batch", file);
            Net.WaitUntil(() => Summary(l)["refused"]!.GetValue<long>() == 0 && !Summary(l)["tables"]![0]!["full"]!.GetValue<bool>(),
                TimeSpan.FromSeconds(60), "the refused prefixes installed once routes left");
            WaitInSync(l, "after routes left");
            Net.Ping(a.Ns, b.Ip4);
            AssertWorkersHealthy(l);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The FIB full by route count: lcpd on the README's `--no-huge -m 512`, where the
    /// default table is sized to the memory and cannot grow; routes beyond its capacity are
    /// refused (counted, logged with the memory it would take), punt to Linux, which forwards
    /// them; when routes leave, the refused ones are installed and the table is not full.</summary>
    [Fact]
    public void FibFull_RoutesBeyondWhatMemoryAllows_RefusedCountedPunted_RecoveredWhenRoutesLeave()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        var eal = LcpdProcess.TestEal($"lcpf{topo.Id}");
        eal[eal.IndexOf("-m") + 1] = "512";
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, ["--netns", topo.Rt, .. Pairs(topo)]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        long cap = Summary(l)["tables"]![0]!["ipv4_capacity"]!.GetValue<long>();
        Assert.InRange(cap, 4096, 1 << 20);
        int n = (int)cap + 3000;
        string file = Path.Combine(_dir, "full.batch");
        static string P(int i) => $"{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24";
        File.WriteAllLines(file, Enumerable.Range(0, n).Select(i => $"route add {P(i)} via {b.Ip4}"));
        Cmd.Run("ip", ["netns", "exec", topo.Rt, "ip", "-batch", file], TimeSpan.FromSeconds(300));
        Net.WaitUntil(() => Summary(l)["tables"]![0]!["full"]!.GetValue<bool>() && Summary(l)["refused"]!.GetValue<long>() > 0,
            TimeSpan.FromSeconds(120), "the table full with refused prefixes");
        JsonNode s = Summary(l);
        Assert.Equal(cap, s["tables"]![0]!["ipv4_capacity"]!.GetValue<long>()); // could not grow
        Assert.Contains("give EAL more memory", l.Output, StringComparison.Ordinal);
        Assert.False(l.HasExited);
        // The last prefix added was refused: Linux forwards it.
        Cmd.InNsOk(b.Ns, "ip", "addr", "add", P(n - 1).Replace(".0/24", ".1/32", StringComparison.Ordinal), "dev", "lo");
        long linux = Net.LinuxForwarded(topo.Rt, false);
        Net.Ping(a.Ns, P(n - 1).Replace(".0/24", ".1", StringComparison.Ordinal));
        Assert.True(Net.LinuxForwarded(topo.Rt, false) > linux, "a refused prefix is forwarded by Linux");

        File.WriteAllLines(file, Enumerable.Range(0, 5000).Select(i => $"route del {P(i)}"));
        Cmd.InNsOk(topo.Rt, "ip", "-batch", file);
        Net.WaitUntil(() => Summary(l)["refused"]!.GetValue<long>() == 0 && !Summary(l)["tables"]![0]!["full"]!.GetValue<bool>(),
            TimeSpan.FromSeconds(60), "the refused prefixes installed once routes left");
        WaitInSync(l, "after routes left", 60);
        Net.Ping(a.Ns, b.Ip4);
        AssertWorkersHealthy(l);
    }

    /// <summary>A UDP flood of ten times the pool (3800 mbufs) from host A to host B: lcpd holds
    /// no mbuf beyond its burst, so nothing runs out: no frame is refused for lack of mbufs,
    /// every frame received is accounted for, and the pool is back to its idle count. A pair
    /// whose mirror's RX ring would take what the workers need is refused, naming the --mbufs
    /// that would fit, at start and at run time, and nothing of it is left behind.</summary>
    [Fact]
    public void MbufPool_FloodOfTenTimesThePool_NothingRunsOut_APairThatWouldDrainItIsRefused()
    {
        using var topo = new Topology(hosts: 3);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1], c = topo.Hosts[2];
        using LcpdProcess l = Start(topo, ["--mbufs", "3800", "--pair", $"{a.PortName}={a.MirrorName}", "--pair", $"{b.PortName}={b.MirrorName}"]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        long idle = InUse(l);
        const int Frames = 38_000; // ten times the pool
        const string flood = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            payload = b"x" * 64
            for i in range(int(sys.argv[2])):
                try:
                    s.sendto(payload, (sys.argv[1], 9))
                except OSError:
                    pass
            """;
        long rx0 = Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName)["rx_packets"]!.GetValue<long>();
        CmdResult fr = Cmd.Run("ip", ["netns", "exec", a.Ns, "/usr/bin/python3", "-c", flood, b.Ip4, Frames.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(120));
        Assert.Equal(0, fr.Code);
        Thread.Sleep(500);
        JsonObject pa = Net.Find(l.CtlJson("show", "interfaces"), "name", a.PortName);
        long rx = pa["rx_packets"]!.GetValue<long>() - rx0;
        Assert.True(rx > Frames / 2, $"the flood reached lcpd ({rx} of {Frames})");
        Assert.DoesNotContain("found no free mbuf", l.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("mbufs free (below", l.Output, StringComparison.Ordinal);
        WaitIdleMbufs(l, idle, "after the flood");
        Net.Ping(a.Ns, b.Ip4);

        // A third mirror's ring (1023 mbufs) would leave less than the reserve: refused, with the fix.
        CmdResult create = l.Ctl("lcp", "create", c.PortName, "host-if", c.MirrorName);
        Assert.Equal(1, create.Code);
        Assert.Contains("not enough free mbufs for lcp2's RX ring", create.Err, StringComparison.Ordinal);
        Assert.Contains("give --mbufs", create.Err, StringComparison.Ordinal);
        Assert.False(Net.LinkExists(topo.Rt, c.MirrorName), "nothing of the refused pair is left");
        Assert.Equal(2, l.CtlJson("show", "lcp").AsArray().Count);
        WaitIdleMbufs(l, idle, "after the refusal");
        AssertWorkersHealthy(l);

    }

    [Fact]
    public void MbufPool_TooSmallForTheMirrorsRings_StartRefusedWithTheFix()
    {
        using var topo = new Topology(hosts: 1);
        TestHost a = topo.Hosts[0];
        var eal = LcpdProcess.TestEal($"lcpf{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Launch(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--mbufs", "1024",
            "--pair", $"{a.PortName}={a.MirrorName}"]);
        Assert.Equal(1, l.WaitExit(TimeSpan.FromSeconds(60)));
        Assert.Contains($"not enough free mbufs for {a.MirrorName}'s RX ring", l.Output, StringComparison.Ordinal);
        Assert.Contains("give --mbufs", l.Output, StringComparison.Ordinal);
        Assert.False(Net.LinkExists(topo.Rt, a.MirrorName));
    }

    private static Socket Connect(LcpdProcess l)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 20000, SendTimeout = 20000 };
        s.Connect(new UnixDomainSocketEndPoint(l.Socket));
        return s;
    }

    /// <summary>Reads until the peer closes or <paramref name="timeout"/>: (text, closed by peer).</summary>
    private static (string Text, bool Closed) ReadAll(Socket s, TimeSpan timeout)
    {
        var sb = new StringBuilder();
        var buf = new byte[65536];
        var sw = Stopwatch.StartNew();
        s.ReceiveTimeout = 500;
        while (sw.Elapsed < timeout)
        {
            try
            {
                int n = s.Receive(buf);
                if (n == 0)
                    return (sb.ToString(), true);
                sb.Append(Encoding.UTF8.GetString(buf, 0, n));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
            }
            catch (SocketException)
            {
                return (sb.ToString(), true);
            }
        }
        return (sb.ToString(), false);
    }

    /// <summary>200 concurrent hostile clients on the API socket (JSON lines and HTTP on the same
    /// socket): garbage, oversized lines, slow-loris half requests that never end, HTTP bodies of
    /// every wrong type. Every connection ends with an error reply or is cut off within the
    /// limits (10 s per request), lcpd never answers 5xx or hangs, serves a good client right
    /// after, and a request that deletes every pair is answered and in the audit log.</summary>
    [Fact]
    public void HostileApiClients_200Concurrent_GarbageOversizedSlowLorisWrongTypes_AllAnsweredOrCut()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        string tokens = Path.Combine(_dir, "tokens");
        File.WriteAllText(tokens, "rw-token-fault-0123456789 rw ops\n");
        File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        int port = 20000 + Random.Shared.Next(20000);
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", "lo", "up");
        using LcpdProcess l = Start(topo, [.. Pairs(topo), "--http", $"127.0.0.1:{port}", "--api-token-file", tokens]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        topo.ConfigureRouterInterface(b);
        Net.Ping(a.Ns, b.Ip4);
        // The socket is the credential: root only.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(l.Socket));

        string[] wrongBodies =
        [
            "[]", "\"text\"", "123", "null", "true", "{\"port\": 5}", "{\"port\": \"x\", \"host_if\": []}", "{\"port\": true, \"host_if\": {}}",
            "{\"port\": \"net_af_packet0\", \"host_if\": \"lcpz\", \"table\": \"main\"}", "{\"port\": \"net_af_packet0\", \"host_if\": \"lcpz\", \"table\": -1}",
            "{\"port\": \"net_af_packet0\", \"host_if\": \"" + new string('a', 300) + "\"}", "{", "{\"a\":" + new string('[', 5000) + new string(']', 5000) + "}",
            "\u0000\u0001\u0002", "{\"count\": \"many\"}",
        ];
        string[] posts = ["/api/v1/lcp", "/api/v1/trace", "/api/v1/capture", "/api/v1/log-level", "/api/v1/config"];
        var outcomes = new string[200];
        var connectRefused = new string?[200];
        var clients = Enumerable.Range(0, 200).Select(i => new Thread(() =>
        {
            Socket s;
            try
            {
                s = Connect(l);
            }
            catch (SocketException e)
            {
                outcomes[i] = "cut"; // the listen backlog was full: refused by the kernel, not hung
                connectRefused[i] = e.SocketErrorCode.ToString();
                return;
            }
            try
            {
                string req;
                switch (i % 5)
                {
                    case 0: // garbage line
                        req = "\u00ff\u00fe garbage " + i + "\n";
                        break;
                    case 1: // oversized line
                        req = new string('x', 200_000) + "\n";
                        break;
                    case 2: // slow-loris: half a request, never finished
                        s.Send("{\"v\":1,\"argv\":[\"show\","u8.ToArray());
                        var (t2, closed2) = ReadAll(s, TimeSpan.FromSeconds(25));
                        outcomes[i] = closed2 ? "cut" : "HUNG";
                        return;
                    case 3: // HTTP, wrong body type
                        string body = wrongBodies[i % wrongBodies.Length];
                        string path = posts[i % posts.Length];
                        req = $"{(path == "/api/v1/log-level" ? "PUT" : "POST")} {path} HTTP/1.1\r\nHost: lcpd\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
                        break;
                    default: // HTTP slow-loris: headers that never end
                        s.Send("GET /api/v1/version HTTP/1.1\r\nHost: lcpd\r\nX-Slow: "u8.ToArray());
                        var (t4, closed4) = ReadAll(s, TimeSpan.FromSeconds(25));
                        outcomes[i] = closed4 ? (t4.Contains(" 5", StringComparison.Ordinal) && t4.StartsWith("HTTP/1.1 5", StringComparison.Ordinal) ? "5xx" : "cut") : "HUNG";
                        return;
                }
                try
                {
                    s.Send(Encoding.UTF8.GetBytes(req));
                }
                catch (SocketException)
                {
                    outcomes[i] = "cut"; // refused mid-send (oversized): closed by lcpd
                    return;
                }
                var (text, closed) = ReadAll(s, TimeSpan.FromSeconds(25));
                if (text.StartsWith("HTTP/1.1 5", StringComparison.Ordinal))
                    outcomes[i] = "5xx: " + text[..Math.Min(200, text.Length)];
                else if (text.StartsWith("HTTP/1.1 4", StringComparison.Ordinal) || text.Contains("\"ok\":false", StringComparison.Ordinal))
                    outcomes[i] = "error reply";
                else if (text.Length == 0 && closed)
                    outcomes[i] = "cut";
                else
                    outcomes[i] = (closed ? "closed: " : "HUNG: ") + text[..Math.Min(200, text.Length)];
            }
            catch (SocketException)
            {
                outcomes[i] = "cut"; // closed by lcpd while we were still sending
            }
            finally
            {
                s.Dispose();
            }
        }) { IsBackground = true }).ToList();
        clients.ForEach(t => t.Start());
        var deadline = DateTime.UtcNow.AddSeconds(90);
        Assert.True(clients.All(t => t.Join(TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)))), "the hostile clients did not finish");

        // During and after the storm, a good client is served.
        Assert.Equal(0, l.Ctl("show", "version").Code);
        var bad = outcomes.Select((o, i) => (o, i)).Where(x => x.o is not ("error reply" or "cut")).ToList();
        Assert.True(bad.Count == 0, "unexpected outcomes:\n" + string.Join("\n", bad.Take(20).Select(x => $"client {x.i} (kind {x.i % 5}): {x.o}")));
        Assert.Contains(outcomes, o => o == "error reply");
        Assert.True(connectRefused.Count(x => x is not null) < 20, "the kernel refused connections: " + string.Join(",", connectRefused.Where(x => x is not null)));

        // The TCP listener: 100 slow clients (headers that never end, bodies that never come)
        // are all cut off by Kestrel's limits, and a client with a token is served afterwards.
        const string loris = """
            import select, socket, sys, time
            port, n = int(sys.argv[1]), int(sys.argv[2])
            socks = []
            for i in range(n):
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.send(b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2 == 0 else
                           b"POST /api/v1/lcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                    socks.append(s)
                except OSError:
                    pass  # refused at the connection limit: cut off too
            t0, pending = time.time(), list(socks)
            while pending and time.time() - t0 < 40:
                r, _, _ = select.select(pending, [], [], 0.5)
                for s in r:
                    try:
                        if s.recv(65536):
                            continue
                    except OSError:
                        pass
                    pending.remove(s)
            print(f"connected={len(socks)} open={len(pending)} seconds={time.time() - t0:.1f}")
            """;
        CmdResult lr = Cmd.Run("ip", ["netns", "exec", topo.Dp, "/usr/bin/python3", "-c", loris, port.ToString(CultureInfo.InvariantCulture), "100"], TimeSpan.FromSeconds(90));
        Assert.True(lr.Code == 0 && lr.Out.Contains(" open=0 ", StringComparison.Ordinal), $"slow TCP clients not all cut off: {lr}");
        CmdResult good = Cmd.InNs(topo.Dp, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer rw-token-fault-0123456789",
            $"http://127.0.0.1:{port}/api/v1/version");
        Assert.Equal("200", good.Out.Trim());

        // Delete everything: answered, audited, and the router is then exactly empty of pairs.
        foreach (string ifname in topo.Hosts.Select(h => h.MirrorName))
            Assert.Equal(0, l.Ctl("lcp", "delete", ifname).Code);
        Assert.Empty(l.CtlJson("show", "lcp").AsArray());
        Net.WaitUntil(() => l.Output.Contains("audit: unix socket: lcp delete lcp1 -> ok", StringComparison.Ordinal), TimeSpan.FromSeconds(5), "the deletes audited");
        AssertWorkersHealthy(l);
    }
}
