using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>The documented JSON shapes (docs/cli.md) of every lcpctl command, the REST API over
/// the API socket, its OpenAPI description, and /metrics in the Prometheus text format.</summary>
[Collection("lcpd")]
public sealed partial class RestAndContractTests : IDisposable
{
    private readonly RouterFixture _f;
    private readonly HttpClient _http;

    public RestAndContractTests(RouterFixture f)
    {
        _f = f;
        string socket = f.Lcpd.Socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://lcpd"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public void Dispose() => _http.Dispose();

    // The contract: every key of every command's --json output (objects, or array elements).
    public static readonly TheoryData<string, string> Shapes = new()
    {
        { "show version", "version dpdk runtime api_version" },
        { "show interfaces", "name port_id kind mac mtu admin_up link_up rx_packets tx_packets rx_bytes tx_bytes drops punts forwarded parent vlan kernel_if kernel_netns" },
        { "show lcp", "port host_if netns kind host_ifindex state reason table table_source persist adopted port_link_up mirror_admin_up mirror_carrier link_changes link_pending" },
        { "show errors", "reason kind count description per_worker" },
        { "show buffers", "pool size in_use available" },
        { "show runtime", "worker lcore queue running iterations max_loop_gap_us warmed_up allocated_bytes_since_warmup failure paths" },
        { "show latency", "path samples p50_us p90_us p99_us p999_us max_us mean_us over_100us over_1ms" },
        { "show ip fib", "prefix type source paths table nexthop_id" },
        { "show ip6 fib", "prefix type source paths table nexthop_id" },
        { "show ip fib summary", "ipv4 ipv6 commits fib_errors pending refused grace_timeouts groups paths nexthops targets syncing sync_progress tables" },
        { "show ip neighbors", "ip mac interface" },
        { "show capture", "running file port direction max written dropped error" },
        { "show dpdk", "version eal_args hugepages main_lcore lcores ports mempools" },
        { "show memory", "managed_heap_bytes managed_committed_bytes total_allocated_bytes gen0_collections gen1_collections gen2_collections gc_pause_total_ms gc_pause_percent rss_bytes hugepages_total hugepages_free hugepage_size_bytes dpdk_heap_bytes dpdk_heap_free_bytes dpdk_heap_allocated_bytes gc_suspensions gc_max_suspend_ms gc_last gc_triggers" },
        { "show log-level", "level" },
        { "lcp resync", "objects resyncs overruns malformed recovered" },
        { "lcp verify", "in_sync checked rounds differences" },
    };

    private static void AssertKeys(JsonNode? node, string keys, string what)
    {
        JsonObject? o = node as JsonObject ?? (node as JsonArray)?.FirstOrDefault() as JsonObject;
        Assert.True(o is not null, $"{what}: no object to check in {node?.ToJsonString()}");
        Assert.Equal(keys.Split(' ').Order(), o!.Select(p => p.Key).Order());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Json_Shape_MatchesTheContract(string command, string keys)
    {
        if (command == "show ip neighbors")
            Net.Ping(_f.A.Ns, _f.B.Ip4, count: 1); // at least one neighbour
        AssertKeys(_f.Lcpd.CtlJson(command.Split(' ')), keys, command);
    }

    [Fact]
    public void Json_NestedShapes_MatchTheContract()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 1);
        AssertKeys(_f.Lcpd.CtlJson("show", "runtime").AsArray()[0]!["paths"], "path calls packets packets_per_call cycles_per_packet", "runtime paths");
        JsonObject route = _f.Lcpd.CtlJson("show", "ip", "fib").AsArray().Select(r => r!.AsObject()).First(r => r["paths"]!.AsArray().Count > 0);
        AssertKeys(route["paths"], "via interface resolved", "fib paths");
        AssertKeys(_f.Lcpd.CtlJson("show", "ip", "fib", "summary")["tables"],
            "table netns index ipv4 ipv6 ipv4_capacity ipv6_capacity ipv4_tbl8 ipv6_tbl8 refused full", "fib summary tables");
        JsonNode dpdk = _f.Lcpd.CtlJson("show", "dpdk");
        AssertKeys(dpdk["lcores"], "lcore cpus role worker queue", "dpdk lcores");
        AssertKeys(dpdk["ports"], "port_id name driver socket queues", "dpdk ports");

        _f.Lcpd.Ctl("clear", "trace");
        AssertKeys(_f.Lcpd.CtlJson("trace", "add", "1"), "armed pending records port", "trace add");
        Net.Ping(_f.A.Ns, _f.A.RouterIp4, count: 1);
        JsonNode trace = _f.Lcpd.CtlJson("show", "trace");
        AssertKeys(trace, "index worker time_us rx_interface rx_port length outcome reason tx_interface steps", "show trace");
        AssertKeys(trace[0]!["steps"], "step detail", "trace steps");
        _f.Lcpd.Ctl("clear", "trace");
    }

    [Fact]
    public void EveryCommand_HasHelp()
    {
        foreach (var c in LinuxCp.Management.Contracts.CommandCatalog.All)
        {
            CmdResult r = Cmd.Run(Repo.Lcpctl, [.. c.Path.Split(' '), "--help"]);
            Assert.True(r.Code == 0, $"{c.Path} --help: {r}");
            Assert.Contains($"usage: lcpctl [--socket <path>] {c.Usage}", r.Out, StringComparison.Ordinal);
        }
    }

    private async Task<JsonNode> GetJson(string path, HttpStatusCode expect = HttpStatusCode.OK)
    {
        using HttpResponseMessage r = await _http.GetAsync(path);
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == expect, $"GET {path}: {(int)r.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    [Fact]
    public async Task Rest_ReadEndpoints_AnswerLikeTheCli()
    {
        var pairs = new (string Path, string[] Cli)[]
        {
            ("/api/v1/version", ["show", "version"]),
            ("/api/v1/lcp", ["show", "lcp"]),
            ("/api/v1/log-level", ["show", "log-level"]),
        };
        foreach (var (path, cli) in pairs)
            Assert.Equal(_f.Lcpd.CtlJson(cli).ToJsonString(), (await GetJson(path)).ToJsonString());

        // counters move, so compare shapes and identities for the rest
        foreach (var (path, cmd) in new[] { ("/api/v1/interfaces", "show interfaces"), ("/api/v1/errors", "show errors"),
                     ("/api/v1/runtime", "show runtime"), ("/api/v1/latency", "show latency"), ("/api/v1/ip/fib", "show ip fib"),
                     ("/api/v1/ip6/fib", "show ip6 fib"), ("/api/v1/ip/neighbors", "show ip neighbors"), ("/api/v1/dpdk", "show dpdk"),
                     ("/api/v1/memory", "show memory"), ("/api/v1/trace", "show trace"), ("/api/v1/capture", "show capture"),
                     ("/api/v1/buffers", "show buffers"), ("/api/v1/ip/fib/summary", "show ip fib summary") })
        {
            JsonNode rest = await GetJson(path);
            JsonNode cli = _f.Lcpd.CtlJson(cmd.Split(' '));
            Assert.Equal(cli.GetValueKind(), rest.GetValueKind());
            if (rest is JsonArray ra && cli is JsonArray ca && ca.Count > 0 && ra.Count > 0)
                Assert.Equal(((JsonObject)ca[0]!).Select(p => p.Key), ((JsonObject)ra[0]!).Select(p => p.Key));
            else if (rest is JsonObject ro && cli is JsonObject co)
                Assert.Equal(co.Select(p => p.Key), ro.Select(p => p.Key));
        }

        string subnet = $"{_f.B.Ip4[..^2]}.0/24";
        JsonNode one = await GetJson($"/api/v1/ip/fib?prefix={Uri.EscapeDataString(subnet)}");
        Assert.Equal(subnet, one[0]!["prefix"]!.GetValue<string>());
        Assert.Equal(_f.Lcpd.CtlJson("show", "ip", "fib", subnet).ToJsonString(), one.ToJsonString());
        JsonNode bad = await GetJson("/api/v1/ip/fib?prefix=300.1.1.1", HttpStatusCode.BadRequest);
        Assert.Contains("bad prefix", bad["error"]!.GetValue<string>(), StringComparison.Ordinal);
        // The table of the query: main by number is the same as no table; an unknown one is an error.
        JsonNode main = await GetJson($"/api/v1/ip/fib?prefix={Uri.EscapeDataString(subnet)}&table=254");
        Assert.Equal(one.ToJsonString(), main.ToJsonString());
        JsonNode noTable = await GetJson("/api/v1/ip/fib?table=4000", HttpStatusCode.BadRequest);
        Assert.Contains("4000", noTable["error"]!.GetValue<string>(), StringComparison.Ordinal);
        JsonNode verify = await GetJson("/api/v1/lcp/verify");
        Assert.True(verify["in_sync"]!.GetValue<bool>());
        Assert.True(verify["checked"]!.GetValue<long>() > 0);
        JsonNode missing = await GetJson("/api/v1/no/such/thing", HttpStatusCode.NotFound);
        Assert.Contains("no such endpoint", missing["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rest_CreatesAndDeletesAPair()
    {
        string port = _f.C.PortName, hostIf = $"r{_f.Topo.Id}"[..Math.Min(15, 1 + _f.Topo.Id.Length)];
        using (HttpResponseMessage r = await _http.PostAsJsonAsync("/api/v1/lcp", new { port, host_if = hostIf }))
        {
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.Created, body);
            Assert.Equal(hostIf, JsonNode.Parse(body)!["host_if"]!.GetValue<string>());
        }
        try
        {
            Assert.True(Net.LinkExists(_f.Topo.Rt, hostIf));
            using HttpResponseMessage dup = await _http.PostAsJsonAsync("/api/v1/lcp", new { port, host_if = hostIf });
            Assert.Equal(HttpStatusCode.BadRequest, dup.StatusCode);
            Assert.NotNull(JsonNode.Parse(await dup.Content.ReadAsStringAsync())!["error"]);
        }
        finally
        {
            using HttpResponseMessage del = await _http.DeleteAsync($"/api/v1/lcp/{hostIf}");
            Assert.Equal(HttpStatusCode.OK, del.StatusCode);
        }
        Assert.False(Net.LinkExists(_f.Topo.Rt, hostIf));
        using HttpResponseMessage again = await _http.DeleteAsync($"/api/v1/lcp/{hostIf}");
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);

        using HttpResponseMessage garbage = await _http.PostAsync("/api/v1/lcp", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, garbage.StatusCode);
    }

    [Fact]
    public async Task Rest_OpenApi_DescribesEveryEndpoint()
    {
        JsonNode doc = await GetJson("/openapi/v1.json");
        Assert.StartsWith("3.", doc["openapi"]!.GetValue<string>(), StringComparison.Ordinal);
        JsonObject paths = doc["paths"]!.AsObject();
        foreach (string p in new[] { "/api/v1/interfaces", "/api/v1/lcp", "/api/v1/lcp/{name}", "/api/v1/ip/fib", "/api/v1/ip/neighbors",
                     "/api/v1/errors", "/api/v1/runtime", "/api/v1/latency", "/api/v1/trace", "/api/v1/capture", "/metrics" })
            Assert.True(paths.ContainsKey(p), $"OpenAPI lacks {p}");
        Assert.NotNull(paths["/api/v1/lcp"]!["post"]);
        Assert.NotNull(paths["/api/v1/lcp/{name}"]!["delete"]);
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*""(?:,[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"")*)\})? (\S+)$")]
    private static partial Regex SampleLine();

    [Fact]
    public async Task Metrics_ParseAsPrometheusText()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 2);
        using HttpResponseMessage r = await _http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.StartsWith("text/plain", r.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        string text = await r.Content.ReadAsStringAsync();

        var types = new Dictionary<string, string>();
        var samples = new List<(string Name, string Labels, double Value)>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
                continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                string[] t = line.Split(' ');
                Assert.Equal(4, t.Length);
                Assert.Contains(t[3], new[] { "counter", "gauge", "summary", "histogram", "untyped" });
                Assert.True(types.TryAdd(t[2], t[3]), $"TYPE twice for {t[2]}");
                continue;
            }
            Match m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            Assert.True(double.TryParse(m.Groups[4].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v), line);
            samples.Add((m.Groups[1].Value, m.Groups[3].Value, v));
        }
        foreach (var (name, _, _) in samples)
        {
            string family = types.ContainsKey(name) ? name : Regex.Replace(name, "_(sum|count|bucket)$", "");
            Assert.True(types.TryGetValue(family, out string? type), $"no TYPE for {name}");
            if (type == "counter")
                Assert.EndsWith("_total", name, StringComparison.Ordinal);
        }
        double Value(string name, string labelPart) => samples.Single(s => s.Name == name && s.Labels.Contains(labelPart, StringComparison.Ordinal)).Value;

        long cliRx = Net.Find(_f.Lcpd.CtlJson("show", "interfaces"), "name", _f.A.PortName)["rx_packets"]!.GetValue<long>();
        double metricRx = Value("lcp_port_rx_packets_total", $"port=\"{_f.A.PortName}\"");
        Assert.True(metricRx > 0 && metricRx <= cliRx, $"metric {metricRx}, cli {cliRx}");
        Assert.True(Value("lcp_fib_routes", "family=\"ipv4\"") >= 2);
        Assert.True(Value("lcp_packets_total", "reason=\"punt-arp\"") >= 0);
        Assert.Contains(samples, s => s.Name == "lcp_latency_seconds" && s.Labels.Contains("path=\"loop-gap\"", StringComparison.Ordinal) && s.Labels.Contains("quantile=\"0.99\"", StringComparison.Ordinal));
        Assert.Contains(samples, s => s.Name == "lcp_gc_collections_total");
        Assert.Contains(samples, s => s.Name == "lcp_worker_loop_gap_max_seconds");
    }

    [Fact]
    public void GarbageHttp_GetsAnError_AndForwardingContinues()
    {
        foreach (string req in new[]
                 {
                     "GET /api/v1/interfaces HTTP/9.9\r\n\r\n",
                     "POST /api/v1/lcp HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{",
                     "GET /" + new string('a', 70000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
                     "XYZZY\r\n\r\n",
                 })
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.ReceiveTimeout = 15000;
            s.Connect(new UnixDomainSocketEndPoint(_f.Lcpd.Socket));
            try
            {
                s.Send(Encoding.ASCII.GetBytes(req));
            }
            catch (SocketException)
            {
                // the server may close before reading it all: fine
            }
            var buf = new byte[4096];
            int n;
            try
            {
                n = s.Receive(buf);
            }
            catch (SocketException)
            {
                n = 0;
            }
            string reply = Encoding.ASCII.GetString(buf, 0, n);
            Assert.True(n == 0 || reply.StartsWith("HTTP/1.1 4", StringComparison.Ordinal) || reply.StartsWith("HTTP/1.1 5", StringComparison.Ordinal),
                $"unexpected reply to garbage: {reply}");
        }
        Assert.False(_f.Lcpd.HasExited);
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 2);
    }
}
