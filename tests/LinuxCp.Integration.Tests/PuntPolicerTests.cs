using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Control-plane protection: a flood of TTL=1 packets on the port a BGP session runs
/// over is policed in the dataplane, so the session (BIRD on both ends, 3 s hold time) stays
/// established and is never reset, while the flood's excess is dropped and counted.</summary>
public sealed class PuntPolicerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpp").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private const string Flood = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
        payload = b"x" * 32
        end = time.time() + float(sys.argv[2])
        n = 0
        while time.time() < end:
            for _ in range(256):
                try:
                    s.sendto(payload, (sys.argv[1], 33434))
                    n += 1
                except OSError:
                    pass
        print(n)
        """;

    [Fact]
    public void TtlExpiryFlood_OnTheBgpPort_IsPoliced_SessionStaysEstablished()
    {
        using var topo = new Topology(hosts: 2);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];
        using LcpdProcess l = LcpdProcess.StartRouter(topo);
        Net.Ping(a.Ns, b.Ip4); // both neighbours resolved: the flood is a TTL expiry, nothing else

        using var routerBird = new Bird(topo.Rt, _dir, "r", Bird.BgpConf(a.RouterIp4, a.RouterIp4, a.Ip4, 65001, 65002, null));
        using var hostBird = new Bird(a.Ns, _dir, "h", Bird.BgpConf(a.Ip4, a.Ip4, a.RouterIp4, 65002, 65001, "100.99.0.0/24"));
        Net.WaitUntil(() => routerBird.Session().Established && hostBird.Session().Established, TimeSpan.FromSeconds(30),
            $"BGP established ({routerBird.Output} {hostBird.Output})");
        Net.WaitUntil(() => routerBird.HasRoute("100.99.0.0/24"), TimeSpan.FromSeconds(10), "the host's route learned over BGP");
        string since = routerBird.Session().Since;

        JsonNode Policers() => l.CtlJson("show", "punt", "policers");
        long Of(JsonNode p, string cls, string field) => Net.Find(p, "class", cls)[field]!.GetValue<long>();
        JsonNode before = Policers();

        // Six times the hold time of TTL=1 packets, as fast as the host can send them.
        const int Seconds = 18;
        using (var flood = new Background(a.Ns, "/usr/bin/python3", "-c", Flood, b.Ip4, Seconds.ToString(CultureInfo.InvariantCulture)))
        {
            var deadline = DateTime.UtcNow.AddSeconds(Seconds + 10);
            while (!flood.Wait(TimeSpan.FromMilliseconds(500)))
            {
                var (up, s) = routerBird.Session();
                Assert.True(up && Bird.SameSession(s, since), $"the BGP session went down or was reset during the flood: since {s} (was {since}); policers {Policers().ToJsonString()}");
                Assert.True(DateTime.UtcNow < deadline, "the flood did not end");
            }
            long sent = long.Parse(flood.Output.Trim().Split('\n')[^1], CultureInfo.InvariantCulture);
            JsonNode after = Policers();
            long policed = Of(after, "ttl-expired", "policed") - Of(before, "ttl-expired", "policed");
            long passed = Of(after, "ttl-expired", "passed") - Of(before, "ttl-expired", "passed");
            Assert.True(sent > 100_000, $"the flood was too slow to mean anything ({sent} packets)");
            Assert.True(policed > sent / 2, $"most of the flood is policed ({policed} of {sent}; passed {passed})");
            // The budget: 1000/s and a burst of 200 per port.
            Assert.True(passed <= 1000 * (Seconds + 3) + 200, $"the policer let {passed} through in {Seconds} s");
            Assert.Equal(Of(before, "routing", "policed"), Of(after, "routing", "policed"));
            Assert.True(Of(after, "routing", "passed") > Of(before, "routing", "passed"), "BGP keepalives were punted through the routing class");
            Assert.True(Net.ErrorCount(l, "punt-policed") >= policed);
        }
        Thread.Sleep(4000); // longer than the hold time: a session hurt by the flood would show it now
        var (stillUp, sinceAfter) = routerBird.Session();
        Assert.True(stillUp && Bird.SameSession(sinceAfter, since), $"BGP session reset after the flood (since {sinceAfter}, was {since})");
        Net.Ping(a.Ns, b.Ip4);

        // The budget can be changed and policing turned off per class.
        JsonNode set = l.CtlJson("set", "punt", "policer", "ttl-expired", "rate", "50", "burst", "10");
        Assert.Equal(50, Of(set, "ttl-expired", "rate"));
        Assert.Null(Net.Find(l.CtlJson("set", "punt", "policer", "glean", "off"), "class", "glean")["rate"]);
        CmdResult bad = l.Ctl("set", "punt", "policer", "bogus", "off");
        Assert.True(bad.Code != 0 && bad.Err.Contains("unknown punt class 'bogus'", StringComparison.Ordinal), bad.ToString());
        Assert.All(l.CtlJson("show", "runtime").AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
    }
}
