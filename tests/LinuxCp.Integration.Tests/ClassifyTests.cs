using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>The classifier as input and output features, with real packets from the host
/// namespaces through the real daemon: drop rules stop what they match and count it, other
/// traffic passes, output rules also filter what Linux sends on a mirror.</summary>
[Collection("lcpd")]
public sealed class ClassifyTests
{
    private readonly RouterFixture _f;

    public ClassifyTests(RouterFixture f) => _f = f;

    // Receives UDP on a set of ports for a while and prints "port count" per port.
    private const string Receiver = """
        import socket, sys, select, time
        fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
        socks = {}
        for p in sys.argv[3:]:
            s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(p))); socks[s] = int(p)
        print('ready', flush=True)
        got = {p: 0 for p in socks.values()}
        end = time.time() + float(sys.argv[2])
        while time.time() < end:
            r, _, _ = select.select(list(socks), [], [], 0.1)
            for s in r:
                s.recv(2048); got[socks[s]] += 1
        for p, n in sorted(got.items()): print(p, n)
        """;

    private const string Sender = """
        import socket, sys, time
        fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        for i in range(int(sys.argv[2])):
            for p in sys.argv[3:]:
                s.sendto(b'x' * 64, (sys.argv[1], int(p)))
            time.sleep(0.01)
        """;

    /// <summary>Sends <paramref name="each"/> datagrams to each port of dst (in dstNs) from
    /// srcNs; returns how many arrived per port.</summary>
    internal static Dictionary<int, int> Udp(string srcNs, string dstNs, string dst, int each, params int[] ports)
    {
        string[] ps = [.. ports.Select(p => p.ToString())];
        var recv = Task.Run(() => Cmd.Run("ip", ["netns", "exec", dstNs, "/usr/bin/python3", "-c", Receiver, dst, "2", .. ps], TimeSpan.FromSeconds(20)));
        Thread.Sleep(600); // the receiver binds before anything is sent
        CmdResult sent = Cmd.InNs(srcNs, "/usr/bin/python3", ["-c", Sender, dst, each.ToString(), .. ps]);
        Assert.True(sent.Code == 0, $"udp send failed: {sent}");
        CmdResult r = recv.Result;
        Assert.True(r.Code == 0 && r.Out.Contains("ready"), $"udp receiver failed: {r}");
        return r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ')).ToDictionary(w => int.Parse(w[0]), w => int.Parse(w[1]));
    }

    private uint[] Add(params string[] words)
    {
        JsonArray a = _f.Lcpd.CtlJson(["classify", "add", "rule", .. words]).AsArray();
        return [.. a.Select(r => r!["id"]!.GetValue<uint>())];
    }

    private JsonObject Rule(uint id) => _f.Lcpd.CtlJson("show", "classify").AsArray().Select(r => r!.AsObject())
        .First(r => r["id"]!.GetValue<uint>() == id);

    private long Packets(uint id) => Rule(id)["packets"]!.GetValue<long>();

    private void DeleteAll() => _f.Lcpd.Ctl("classify", "del", "rule", "all");

    [Fact]
    public void InputDropRule_StopsMatchingTraffic_CountsIt_OtherTrafficPasses()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4); // resolve both sides: the transit goes through the fast path
        try
        {
            uint id = Add(_f.A.PortName, "input", "dst", $"{_f.B.Ip4}/32", "proto", "udp", "dport", "5001", "drop")[0];
            long drops = Net.ErrorCount(_f.Lcpd, "classify-drop");
            var got = Udp(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 50, 5001, 5002);
            Assert.Equal(0, got[5001]);
            Assert.Equal(50, got[5002]);
            Assert.Equal(50, Packets(id));
            Assert.Equal(50 * (14 + 20 + 8 + 64), Rule(id)["bytes"]!.GetValue<long>());
            Assert.True(Net.ErrorCount(_f.Lcpd, "classify-drop") >= drops + 50, "classify-drop counted");

            // A higher-priority pass rule lets the port through again; deleting it restores the drop.
            uint pass = Add(_f.A.PortName, "input", "dst", $"{_f.B.Ip4}/32", "proto", "udp", "dport", "5000-5001", "pass", "priority", "0")[0];
            _f.Lcpd.Ctl("classify", "del", "rule", id.ToString());
            uint drop2 = Add(_f.A.PortName, "input", "dst", $"{_f.B.Ip4}/32", "proto", "udp", "dport", "5001", "drop", "priority", "10")[0];
            Assert.Equal(20, Udp(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 20, 5001)[5001]);
            Assert.Equal(20, Packets(pass));
            Assert.Equal(0, Packets(drop2));
            _f.Lcpd.Ctl("classify", "del", "rule", pass.ToString());
            Assert.Equal(0, Udp(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 20, 5001)[5001]);
            Assert.Equal(20, Packets(drop2));

            // The worker stays allocation-free with rules in use.
            Assert.All(_f.Lcpd.CtlJson("show", "runtime").AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
        }
        finally
        {
            DeleteAll();
        }
        Assert.Equal(20, Udp(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 20, 5001)[5001]);
    }

    [Fact]
    public void InputDropRule_ToTheRouter_NeverReachesLinux()
    {
        // Traffic to the router's own address is punted, unless an input rule drops it first.
        uint id = Add(_f.A.PortName, "input", "dst", $"{_f.A.RouterIp4}/32", "proto", "icmp", "icmp-type", "8", "drop")[0];
        try
        {
            Assert.False(Net.PingOnce(_f.A.Ns, _f.A.RouterIp4), "ping to the router passed a drop rule");
            Assert.True(Packets(id) >= 1);
            Net.Ping(_f.A.Ns, _f.B.Ip4); // other ICMP still passes (and ARP: the rules see only IP)
        }
        finally
        {
            DeleteAll();
        }
        Net.Ping(_f.A.Ns, _f.A.RouterIp4);
    }

    [Fact]
    public void OutputDropRule_FiltersForwardedTraffic_AndWhatLinuxSendsOnTheMirror()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        uint udp = Add(_f.B.PortName, "output", "dst", $"{_f.B.Ip4}/32", "proto", "udp", "dport", "5003", "drop")[0];
        uint icmp = Add(_f.B.PortName, "output", "src", $"{_f.B.RouterIp4}/32", "proto", "icmp", "drop")[0];
        try
        {
            // Forwarded by the dataplane: the rule on the egress port drops it (traced: dropped
            // on output after its rewrite; the others forwarded).
            _f.Lcpd.Ctl("clear", "trace");
            _f.Lcpd.CtlJson("trace", "add", "100", "port", _f.A.PortName);
            var got = Udp(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 30, 5003, 5004);
            Assert.Equal(0, got[5003]);
            Assert.Equal(30, got[5004]);
            Assert.Equal(30, Packets(udp));
            var traced = _f.Lcpd.CtlJson("show", "trace").AsArray().Select(p => p!.AsObject()).ToList();
            _f.Lcpd.Ctl("clear", "trace");
            string Steps(JsonObject p) => string.Join('\n', p["steps"]!.AsArray().Select(x => x!["detail"]!.GetValue<string>()));
            var dropped = traced.Where(p => Steps(p).Contains("-> 5003", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(dropped);
            Assert.All(dropped, p =>
            {
                Assert.Equal(("dropped", "classify-drop"), (p["outcome"]!.GetValue<string>(), p["reason"]!.GetValue<string>()));
                Assert.Contains($"classify-drop on output of {_f.B.PortName}", Steps(p), StringComparison.Ordinal);
                Assert.Contains("ttl 63", Steps(p), StringComparison.Ordinal); // its rewrite is recorded
            });
            Assert.All(traced.Where(p => Steps(p).Contains("-> 5004", StringComparison.Ordinal)),
                p => Assert.Equal("forwarded", p["outcome"]!.GetValue<string>()));

            // Sent by Linux on B's mirror (x-connect to B's port): the same output rules apply.
            Assert.False(Net.PingOnce(_f.Topo.Rt, _f.B.Ip4), "ping from the router's Linux passed an output drop rule");
            Assert.True(Packets(icmp) >= 1, "the output rule counted Linux's echo request");
            got = Udp(_f.Topo.Rt, _f.B.Ns, _f.B.Ip4, 20, 5003, 5004);
            Assert.Equal(0, got[5003]);
            Assert.Equal(20, got[5004]);
            Assert.Equal(50, Packets(udp));
        }
        finally
        {
            DeleteAll();
        }
        Net.Ping(_f.Topo.Rt, _f.B.Ip4);
    }

    [Fact]
    public void Ipv6Rule_DropsEchoRequests_NeighbourDiscoveryStillWorks()
    {
        uint id = Add(_f.A.PortName, "input", "src", $"{_f.A.Ip6}/128", "proto", "icmp6", "icmp-type", "128", "drop")[0];
        try
        {
            Cmd.InNs(_f.A.Ns, "ip", "-6", "neigh", "flush", "all");
            Assert.False(Net.PingOnce(_f.A.Ns, _f.B.Ip6, v6: true), "echo request passed an IPv6 drop rule");
            Assert.True(Packets(id) >= 1);
            Assert.Equal("ip6", Rule(id)["src"]!.GetValue<string>().Contains(':') ? "ip6" : "ip4");
            // ND (types 135/136) is not matched: A resolved the router.
            string neigh = Cmd.InNsOk(_f.A.Ns, "ip", "-6", "neigh", "show", _f.A.RouterIp6, "dev", _f.A.Ifname);
            Assert.Contains("lladdr", neigh, StringComparison.Ordinal);
        }
        finally
        {
            DeleteAll();
        }
        Net.Ping(_f.A.Ns, _f.B.Ip6, v6: true);
    }

    [Fact]
    public void BadRules_ClearErrors_NothingInstalled()
    {
        int before = _f.Lcpd.CtlJson("show", "classify").AsArray().Count;
        (string[] Words, string Error)[] bad =
        [
            (["nosuchport", "drop"], "no dataplane port named 'nosuchport'"),
            ([_f.A.MirrorName, "drop"], "no dataplane port named"),
            ([_f.A.PortName, "src", "10.0.0.0/33", "drop"], "10.0.0.0/33"),
            ([_f.A.PortName, "dport", "9-2", "drop"], "9-2"),
            ([_f.A.PortName, "src", "10.0.0.0/8", "dst", "2001:db8::/32", "drop"], "2001:db8::"),
            ([_f.A.PortName, "drop", "priority", "5000"], "priority"),
        ];
        foreach (var (words, error) in bad)
        {
            CmdResult r = _f.Lcpd.Ctl(["classify", "add", "rule", .. words]);
            Assert.True(r.Code != 0, $"{string.Join(' ', words)} was accepted: {r}");
            Assert.Contains(error, r.Out + r.Err, StringComparison.Ordinal);
        }
        Assert.Equal(before, _f.Lcpd.CtlJson("show", "classify").AsArray().Count);
        CmdResult del = _f.Lcpd.Ctl("classify", "del", "rule", "999999");
        Assert.True(del.Code != 0);
        Assert.Contains("no classifier rule 999999", del.Out + del.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void ShowClassify_ShapeTableAndMetrics()
    {
        uint[] ids = Add(_f.A.PortName, "output", "proto", "udp", "sport", "7-9", "pass");
        try
        {
            Assert.Equal(2, ids.Length); // no address: one rule per family
            JsonNode rules = _f.Lcpd.CtlJson("show", "classify", "interface", _f.A.PortName);
            Assert.Equal("action bytes dir dport dst id packets port priority proto rule sport src".Split(' '),
                rules[0]!.AsObject().Select(p => p.Key).Order());
            Assert.Equal(["any-ip4", "any-ip6"], rules.AsArray().Select(r => r!["src"]!.GetValue<string>()).Order());
            string table = _f.Lcpd.Ctl("show", "classify").Out;
            Assert.Matches(@"^id +port +dir +src +dst +proto +sport +dport +action +priority +packets +bytes\n", table);
            Assert.Empty(_f.Lcpd.CtlJson("show", "classify", "interface", _f.B.PortName).AsArray());
            string metrics = Cmd.Run("curl", "-s", "--unix-socket", _f.Lcpd.Socket, "http://lcpd/metrics").Out;
            Assert.Contains($"lcp_classify_rule_packets_total{{rule=\"{ids[0]}\",port=\"{_f.A.PortName}\",dir=\"output\",action=\"pass\"}}", metrics, StringComparison.Ordinal);
            string added = _f.Lcpd.Ctl("classify", "add", "rule", _f.A.PortName, "dst", "192.0.2.0/24", "drop").Out;
            Assert.Matches(@"^rule \d+ added: \S+ input dst 192\.0\.2\.0/24 drop\n$", added);

            // REST: the same rules, added and deleted over HTTP.
            CmdResult post = Cmd.Run("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", _f.Lcpd.Socket, "-H", "Content-Type: application/json",
                "-d", $$"""{"port":"{{_f.B.PortName}}","direction":"input","dst":"198.18.0.0/15","proto":"tcp","dport":"22","action":"drop","priority":7}""",
                "http://lcpd/api/v1/classify");
            string[] lines = post.Out.TrimEnd().Split('\n');
            Assert.True(lines[^1] == "201", $"POST /api/v1/classify: {post}");
            JsonNode created = JsonNode.Parse(lines[0])!.AsArray()[0]!;
            Assert.Equal(7, created["priority"]!.GetValue<int>());
            Assert.Equal("22", created["dport"]!.GetValue<string>());
            string restRules = Cmd.Run("curl", "-s", "--unix-socket", _f.Lcpd.Socket, $"http://lcpd/api/v1/classify?interface={_f.B.PortName}").Out;
            Assert.Single(JsonNode.Parse(restRules)!.AsArray());
            CmdResult delete = Cmd.Run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "--unix-socket", _f.Lcpd.Socket,
                $"http://lcpd/api/v1/classify/{created["id"]}");
            Assert.Equal("200", delete.Out.Trim());
            CmdResult bad = Cmd.Run("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", _f.Lcpd.Socket, "-H", "Content-Type: application/json",
                "-d", """{"port":"nosuch","action":"drop"}""", "http://lcpd/api/v1/classify");
            Assert.EndsWith("\n400", bad.Out.TrimEnd(), StringComparison.Ordinal);
        }
        finally
        {
            DeleteAll();
        }
        Assert.Equal("no classifier rules\n", _f.Lcpd.Ctl("show", "classify").Out);
    }

    private const string Echo = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.1)
        print('ready', flush=True)
        end = time.time() + float(sys.argv[3])
        while time.time() < end:
            try:
                d, a = s.recvfrom(2048); s.sendto(d, a)
            except socket.timeout:
                pass
        """;

    private const string Client = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
        got = 0
        for i in range(int(sys.argv[3])):
            s.sendto(b'ping%d' % i, (sys.argv[1], int(sys.argv[2])))
            try:
                s.recv(2048); got += 1
            except socket.timeout:
                pass
        print(got)
        """;

    /// <summary>UDP request/response from srcNs to an echo server in dstNs; returns the replies received.</summary>
    private static int EchoReplies(string srcNs, string dstNs, string dst, int port, int count)
    {
        var server = Task.Run(() => Cmd.Run("ip", ["netns", "exec", dstNs, "/usr/bin/python3", "-c", Echo, dst, port.ToString(), "4"], TimeSpan.FromSeconds(20)));
        Thread.Sleep(600);
        CmdResult c = Cmd.InNs(srcNs, "/usr/bin/python3", "-c", Client, dst, port.ToString(), count.ToString());
        Assert.True(c.Code == 0, $"udp client failed: {c}");
        Assert.True(server.Result.Code == 0, $"echo server failed: {server.Result}");
        return int.Parse(c.Out.Trim());
    }

    [Fact]
    public void Reflect_AdmitsReturnTraffic_WhereADropRuleWouldMatch_StatefulFirewall()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        // B's side is "outside": UDP may leave towards B (reflect), only replies may come back.
        uint reflect = Add(_f.B.PortName, "output", "proto", "udp", "dst", $"{_f.B.Ip4}/32", "reflect")[0];
        uint drop = Add(_f.B.PortName, "input", "proto", "udp", "drop")[0];
        try
        {
            Assert.Equal(10, EchoReplies(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 6001, 10));
            Assert.Equal(10, Packets(reflect));
            Assert.Equal(10, Packets(drop)); // matched, and admitted by the flow reflect made

            // Traffic B starts is not a reply: dropped.
            Assert.Equal(0, EchoReplies(_f.B.Ns, _f.A.Ns, _f.A.Ip4, 6002, 5));
            Assert.Equal(15, Packets(drop));

            JsonObject flow = _f.Lcpd.CtlJson("show", "flows", "interface", _f.B.PortName).AsArray().Select(x => x!.AsObject())
                .Single(x => x["dport"]!.GetValue<int>() == 6001);
            Assert.Equal(_f.A.Ip4, flow["src"]!.GetValue<string>());
            Assert.Equal("established", flow["state"]!.GetValue<string>());
            Assert.True(flow["reflected"]!.GetValue<bool>());
            Assert.Equal(20ul, flow["packets"]!.GetValue<ulong>());
            Assert.Equal("action age_s bytes dport dst idle_s packets port proto reflected sport src state worker".Split(' ').Where(k => k != "action"),
                flow.Select(p => p.Key).Order());
        }
        finally
        {
            DeleteAll();
            _f.Lcpd.Ctl("clear", "flows");
        }
    }

    [Fact]
    public void FlowEnable_TracksBothDirections_SummaryAndTimeouts()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        _f.Lcpd.Ctl("clear", "flows");
        JsonNode s = _f.Lcpd.CtlJson("flow", "enable", _f.A.PortName);
        Assert.Contains(_f.A.PortName, s["tracked"]!.AsArray().Select(x => x!.GetValue<string>()));
        try
        {
            Assert.Equal(5, EchoReplies(_f.A.Ns, _f.B.Ns, _f.B.Ip4, 6003, 5));
            JsonObject flow = _f.Lcpd.CtlJson("show", "flows", "interface", _f.A.PortName).AsArray().Select(x => x!.AsObject())
                .Single(x => x["dport"]!.GetValue<int>() == 6003);
            Assert.Equal("established", flow["state"]!.GetValue<string>());
            Assert.False(flow["reflected"]!.GetValue<bool>());
            Assert.Equal(10ul, flow["packets"]!.GetValue<ulong>()); // requests in on A's port, replies out of it
            JsonNode sum = _f.Lcpd.CtlJson("show", "flow", "summary");
            Assert.True(sum["established"]!.GetValue<long>() >= 1);
            Assert.True(sum["inserts"]!.GetValue<long>() >= 1);
            Assert.Equal(99, sum["bytes_per_flow"]!.GetValue<int>());

            // A 1 s UDP timeout: the flow is swept away.
            _f.Lcpd.CtlJson("set", "flow", "timeouts", "udp", "1");
            Net.WaitUntil(() => !_f.Lcpd.CtlJson("show", "flows", "interface", _f.A.PortName).AsArray().Any(x => x!["dport"]!.GetValue<int>() == 6003),
                TimeSpan.FromSeconds(10), "the idle UDP flow expired");
            Assert.True(_f.Lcpd.CtlJson("show", "flow", "summary")["expiries"]!.GetValue<long>() >= 1);
            Assert.All(_f.Lcpd.CtlJson("show", "runtime").AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
        }
        finally
        {
            _f.Lcpd.Ctl("flow", "disable", _f.A.PortName);
            _f.Lcpd.Ctl("set", "flow", "timeouts", "udp", "300");
        }
        Assert.Empty(_f.Lcpd.CtlJson("show", "flow", "summary")["tracked"]!.AsArray());
    }

    private (int Status, string Body) Rest(string method, string path, string? json = null)
    {
        var args = new List<string> { "-s", "-w", "\n%{http_code}", "-X", method, "--unix-socket", _f.Lcpd.Socket };
        if (json is not null)
            args.AddRange(["-H", "Content-Type: application/json", "-d", json]);
        args.Add($"http://lcpd{path}");
        CmdResult r = Cmd.Run("curl", [.. args]);
        string[] lines = r.Out.TrimEnd().Split('\n');
        return (int.Parse(lines[^1]), string.Join('\n', lines[..^1]));
    }

    [Fact]
    public void PuntPolicers_OverRest_SetOffRestore_Metrics()
    {
        try
        {
            var (status, body) = Rest("GET", "/api/v1/punt/policers");
            Assert.Equal(200, status);
            JsonArray all = JsonNode.Parse(body)!.AsArray();
            Assert.Equal("arp-nd routing l2-control local ttl-expired glean no-route multicast other".Split(' '), all.Select(c => c!["class"]!.GetValue<string>()));
            Assert.Equal("burst class description passed policed port rate".Split(' '), all[0]!.AsObject().Select(p => p.Key).Order());

            (status, body) = Rest("PUT", "/api/v1/punt/policers/glean", """{"rate":100,"burst":10}""");
            Assert.Equal(200, status);
            JsonObject glean = Net.Find(JsonNode.Parse(body)!, "class", "glean");
            Assert.Equal(100, glean["rate"]!.GetValue<long>());
            Assert.Equal(10, glean["burst"]!.GetValue<long>());
            (status, body) = Rest("PUT", "/api/v1/punt/policers/glean", """{"off":true}""");
            Assert.Equal(200, status);
            Assert.Null(Net.Find(JsonNode.Parse(body)!, "class", "glean")["rate"]);
            (status, body) = Rest("PUT", "/api/v1/punt/policers/nosuch", """{"rate":1,"burst":1}""");
            Assert.Equal(400, status);
            Assert.Contains("unknown punt class 'nosuch'", body, StringComparison.Ordinal);
            (status, _) = Rest("PUT", "/api/v1/punt/policers/glean", """{"rate":0,"burst":1}""");
            Assert.Equal(400, status); // a rate of 0 is "off", said so explicitly

            // A port's own budget: shown for that port and after the class rows; the class's
            // budget stays for the others; default takes the port back.
            (status, body) = Rest("PUT", "/api/v1/punt/policers/routing", $$"""{"rate":50000,"burst":9000,"interface":"{{_f.A.PortName}}"}""");
            Assert.Equal(200, status);
            JsonObject own = Net.Find(JsonNode.Parse(body)!, "class", "routing");
            Assert.Equal((50000L, 9000L, _f.A.PortName), (own["rate"]!.GetValue<long>(), own["burst"]!.GetValue<long>(), own["port"]!.GetValue<string>()));
            JsonArray rows = _f.Lcpd.CtlJson("show", "punt", "policers").AsArray();
            Assert.Equal(10, rows.Count);
            Assert.Equal((20000L, _f.A.PortName), (rows[1]!["rate"]!.GetValue<long>(), rows[9]!["port"]!.GetValue<string>()));
            Assert.Equal(20000, Net.Find(_f.Lcpd.CtlJson("show", "punt", "policers", "interface", _f.B.PortName), "class", "routing")["rate"]!.GetValue<long>());
            CmdResult noPort = _f.Lcpd.Ctl("set", "punt", "policer", "routing", "default");
            Assert.True(noPort.Code != 0 && noPort.Err.Contains("interface <port> default", StringComparison.Ordinal), noPort.ToString());
            (status, body) = Rest("PUT", "/api/v1/punt/policers/routing", $$"""{"default":true,"interface":"{{_f.A.PortName}}"}""");
            Assert.Equal(200, status);
            Assert.Equal(20000, Net.Find(JsonNode.Parse(body)!, "class", "routing")["rate"]!.GetValue<long>());
            Assert.Equal(9, _f.Lcpd.CtlJson("show", "punt", "policers").AsArray().Count);

            string metrics = Rest("GET", "/metrics").Body;
            Assert.Contains("lcp_punt_policed_total{class=\"ttl-expired\"}", metrics, StringComparison.Ordinal);
            Assert.Contains("lcp_punt_passed_total{class=\"arp-nd\"}", metrics, StringComparison.Ordinal);
        }
        finally
        {
            _f.Lcpd.Ctl("set", "punt", "policer", "glean", "rate", "2000", "burst", "400");
            _f.Lcpd.Ctl("set", "punt", "policer", "routing", "interface", _f.A.PortName, "default");
        }
        Assert.Equal(2000, Net.Find(_f.Lcpd.CtlJson("show", "punt", "policers"), "class", "glean")["rate"]!.GetValue<long>());
    }
}
