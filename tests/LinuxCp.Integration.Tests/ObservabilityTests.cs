using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Seeing into the dataplane: trace, capture, runtime per path, latency histograms,
/// errors per worker, memory and DPDK views, run-time log level. Real lcpd, real traffic.</summary>
[Collection("lcpd")]
public sealed class ObservabilityTests
{
    private readonly RouterFixture _f;

    public ObservabilityTests(RouterFixture f) => _f = f;

    private static List<JsonObject> Steps(JsonObject packet) =>
        [.. packet["steps"]!.AsArray().Select(s => s!.AsObject())];

    private static string Step(JsonObject packet, string step) =>
        Steps(packet).FirstOrDefault(s => s["step"]!.GetValue<string>() == step)?["detail"]?.GetValue<string>()
        ?? throw new Xunit.Sdk.XunitException($"no step '{step}' in {packet.ToJsonString()}");

    [Fact]
    public void Trace_FollowsForwardedAndPuntedPackets()
    {
        // Resolve both sides first so the traced echo request is forwarded, not gleaned.
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 2);
        _f.Lcpd.Ctl("clear", "trace");
        JsonNode armed = _f.Lcpd.CtlJson("trace", "add", "20", "port", _f.A.PortName);
        Assert.Equal(20, armed["armed"]!.GetValue<int>());

        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 2);   // transit: forwarded
        Net.Ping(_f.A.Ns, _f.A.RouterIp4, count: 1); // to the router: punted (local)

        JsonArray trace = _f.Lcpd.CtlJson("show", "trace").AsArray();
        var packets = trace.Select(p => p!.AsObject()).ToList();
        Assert.All(packets, p => Assert.Equal(_f.A.PortName, p["rx_interface"]!.GetValue<string>())); // port filter

        JsonObject fwd = packets.First(p => p["outcome"]!.GetValue<string>() == "forwarded"
            && Step(p, "ip4").Contains($"-> {_f.B.Ip4}", StringComparison.Ordinal));
        Assert.Contains($"{_f.A.Ip4} -> {_f.B.Ip4} ttl 64", Step(fwd, "ip4"), StringComparison.Ordinal);
        Assert.Contains("forward", Step(fwd, "fib-lookup"), StringComparison.Ordinal);
        // Traced, the packet took the passes that carry production traffic: the one-pass IPv4
        // check and the single-path loop (one resolved path to B).
        Assert.Contains("ip4 fast pass", Step(fwd, "classify"), StringComparison.Ordinal);
        Assert.Contains("(single-path pass)", Step(fwd, "fib-lookup"), StringComparison.Ordinal);
        var rewrites = Steps(fwd).Where(s => s["step"]!.GetValue<string>() == "rewrite").Select(s => s["detail"]!.GetValue<string>()).ToList();
        Assert.Contains(rewrites, r => r.StartsWith("ip4 ", StringComparison.Ordinal) && r.Contains("ttl 63", StringComparison.Ordinal));
        string bMac = Cmd.InNsOk(_f.B.Ns, "cat", $"/sys/class/net/{_f.B.Ifname}/address").Trim();
        Assert.Contains(rewrites, r => r.StartsWith("ethernet ", StringComparison.Ordinal) && r.Contains($"-> {bMac}", StringComparison.Ordinal));
        Assert.Equal(_f.B.PortName, fwd["tx_interface"]!.GetValue<string>());

        JsonObject local = packets.First(p => p["outcome"]!.GetValue<string>() == "punted"
            && p["reason"]!.GetValue<string>() == "punt-local");
        Assert.Contains($"-> {_f.A.RouterIp4}", Step(local, "ip4"), StringComparison.Ordinal);
        Assert.Equal(_f.A.MirrorName, local["tx_interface"]!.GetValue<string>());

        // clear drops the records and disarms
        JsonNode cleared = _f.Lcpd.CtlJson("clear", "trace");
        Assert.Equal(0, cleared["records"]!.GetValue<int>());
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 1);
        Assert.Empty(_f.Lcpd.CtlJson("show", "trace").AsArray());
    }

    [Fact]
    public void Trace_BudgetIsBounded_AndBadArgumentsAreRefused()
    {
        _f.Lcpd.Ctl("clear", "trace");
        _f.Lcpd.CtlJson("trace", "add", "2");
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 3);
        Assert.Equal(2, _f.Lcpd.CtlJson("show", "trace").AsArray().Count);
        _f.Lcpd.Ctl("clear", "trace");

        CmdResult bad = _f.Lcpd.Ctl("trace", "add", "zero");
        Assert.Equal(1, bad.Code);
        Assert.Contains("bad packet count", bad.Err, StringComparison.Ordinal);
        CmdResult badPort = _f.Lcpd.Ctl("trace", "add", "3", "port", "nosuchport");
        Assert.Equal(1, badPort.Code);
        Assert.Contains("unknown port", badPort.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Capture_WritesPcapThatTsharkReads()
    {
        string file = Path.Combine(Path.GetTempPath(), $"lcp-cap-{Repo.UniqueId()}.pcap");
        try
        {
            Net.Ping(_f.A.Ns, _f.B.Ip4, count: 1);
            JsonNode started = _f.Lcpd.CtlJson("capture", "start", "port", _f.B.PortName, "both", "max", "100", "file", file);
            Assert.True(started["running"]!.GetValue<bool>());
            // a second capture is refused while one runs
            Assert.Equal(1, _f.Lcpd.Ctl("capture", "start", "port", _f.A.PortName, "file", file + ".2").Code);

            Net.Ping(_f.A.Ns, _f.B.Ip4, count: 3);
            JsonNode stopped = _f.Lcpd.CtlJson("capture", "stop");
            Assert.False(stopped["running"]!.GetValue<bool>());
            long written = stopped["written"]!.GetValue<long>();
            Assert.True(written >= 6, stopped.ToJsonString()); // 3 requests out, 3 replies in

            CmdResult t = Cmd.Run("tshark", ["-r", file, "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type", "-e", "ip.ttl"], TimeSpan.FromSeconds(60));
            Assert.True(t.Code == 0, t.ToString());
            var lines = t.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
            Assert.Equal(written, lines.Count);
            // requests leave port B forwarded (TTL decremented), replies arrive from B
            Assert.Contains(lines, l => l[0] == _f.A.Ip4 && l[1] == _f.B.Ip4 && l[2] == "8" && l[3] == "63");
            Assert.Contains(lines, l => l[0] == _f.B.Ip4 && l[1] == _f.A.Ip4 && l[2] == "0" && l[3] == "64");
        }
        finally
        {
            _f.Lcpd.Ctl("capture", "stop");
            File.Delete(file);
            File.Delete(file + ".2");
        }
    }

    [Fact]
    public void Capture_StopsItselfAtMax()
    {
        string file = Path.Combine(Path.GetTempPath(), $"lcp-cap-{Repo.UniqueId()}.pcap");
        try
        {
            _f.Lcpd.CtlJson("capture", "start", "port", _f.A.PortName, "rx", "max", "2", "file", file);
            Net.Ping(_f.A.Ns, _f.B.Ip4, count: 4);
            Net.WaitUntil(() => !_f.Lcpd.CtlJson("show", "capture")["running"]!.GetValue<bool>(), TimeSpan.FromSeconds(5), "capture to finish");
            JsonNode st = _f.Lcpd.CtlJson("show", "capture");
            Assert.Equal(2, st["written"]!.GetValue<long>());
            CmdResult t = Cmd.Run("tshark", ["-r", file, "-T", "fields", "-e", "frame.number"], TimeSpan.FromSeconds(60));
            Assert.Equal(2, t.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        finally
        {
            _f.Lcpd.Ctl("capture", "stop");
            File.Delete(file);
        }
    }

    [Fact]
    public void Capture_BadFileOrPort_IsAClearError()
    {
        CmdResult r = _f.Lcpd.Ctl("capture", "start", "port", _f.A.PortName, "file", "/nonexistent-dir/x.pcap");
        Assert.Equal(1, r.Code);
        Assert.Contains("cannot create capture file", r.Err, StringComparison.Ordinal);
        r = _f.Lcpd.Ctl("capture", "start", "port", "bogus", "file", "/tmp/x.pcap");
        Assert.Equal(1, r.Code);
        Assert.Contains("unknown port", r.Err, StringComparison.Ordinal);
        r = _f.Lcpd.Ctl("capture", "start", "file", "/tmp/x.pcap");
        Assert.Equal(1, r.Code);
        Assert.Contains("usage", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Runtime_ReportsPerPathFigures_AndClearResetsThem()
    {
        Net.Ping(_f.A.Ns, _f.B.Ip4, count: 1);
        _f.Lcpd.CtlJson("clear", "runtime");
        JsonObject Path(JsonNode rt, string p) => rt.AsArray()[0]!["paths"]!.AsArray().Select(x => x!.AsObject()).Single(x => x["path"]!.GetValue<string>() == p);
        long before = Path(_f.Lcpd.CtlJson("show", "runtime"), "lookup")["packets"]!.GetValue<long>();
        Assert.True(before <= 1, "clear runtime did not reset the path counters");

        // enough bursts that some fall on sampled iterations
        Cmd.InNs(_f.A.Ns, "ping", "-4", "-c", "200", "-i", "0.005", "-W", "1", "-q", _f.B.Ip4);
        JsonNode rt = _f.Lcpd.CtlJson("show", "runtime");
        Assert.True(Path(rt, "lookup")["packets"]!.GetValue<long>() >= 200);
        Assert.True(Path(rt, "rewrite")["packets"]!.GetValue<long>() >= 200);
        Assert.True(Path(rt, "tx")["packets"]!.GetValue<long>() >= 200);
        JsonObject rx = Path(rt, "rx");
        Assert.True(rx["packets"]!.GetValue<long>() >= 400);
        Assert.True(rx["packets_per_call"]!.GetValue<double>() >= 1);
        Assert.NotNull(Path(rt, "classify")["cycles_per_packet"]);
        Assert.True(Path(rt, "classify")["cycles_per_packet"]!.GetValue<double>() > 0);
    }

    [Fact]
    public void Latency_HasOrderedPercentiles_ForLoopGapsAndForwarding()
    {
        Cmd.InNs(_f.A.Ns, "ping", "-4", "-c", "100", "-i", "0.005", "-W", "1", "-q", _f.B.Ip4);
        JsonArray lat = _f.Lcpd.CtlJson("show", "latency").AsArray();
        foreach (string path in new[] { "loop-gap", "forward" })
        {
            JsonObject o = Net.Find(lat, "path", path);
            Assert.True(o["samples"]!.GetValue<long>() > 0, $"{path}: no samples");
            double p50 = o["p50_us"]!.GetValue<double>(), p99 = o["p99_us"]!.GetValue<double>(), max = o["max_us"]!.GetValue<double>();
            Assert.True(p50 <= p99 && p99 <= max && max > 0, o.ToJsonString());
        }
    }

    [Fact]
    public void Errors_PerWorker_AndClear()
    {
        Net.Ping(_f.A.Ns, _f.A.RouterIp4, count: 1);
        JsonObject local = Net.Find(_f.Lcpd.CtlJson("show", "errors"), "reason", "punt-local");
        var per = local["per_worker"]!.AsArray().Select(x => x!.GetValue<long>()).ToList();
        Assert.Equal(local["count"]!.GetValue<long>(), per.Sum());
        Assert.True(per.Sum() >= 1);

        _f.Lcpd.CtlJson("clear", "errors");
        Assert.Equal(0, Net.ErrorCount(_f.Lcpd, "punt-local"));
        Net.Ping(_f.A.Ns, _f.A.RouterIp4, count: 2);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-local") >= 2);
    }

    [Fact]
    public void ShowDpdk_And_ShowMemory_ReportRealFigures()
    {
        JsonNode d = _f.Lcpd.CtlJson("show", "dpdk");
        Assert.Contains("--no-huge", d["eal_args"]!.AsArray().Select(a => a!.GetValue<string>()));
        JsonObject worker = d["lcores"]!.AsArray().Select(l => l!.AsObject()).Single(l => l["worker"] is not null);
        Assert.Equal(0, worker["queue"]!.GetValue<int>());
        Assert.Contains(d["ports"]!.AsArray(), p => p!["name"]!.GetValue<string>() == _f.A.PortName && p["driver"]!.GetValue<string>() == "net_af_packet");
        Assert.True(d["mempools"]!.AsArray()[0]!["in_use"]!.GetValue<long>() > 0);

        JsonNode m = _f.Lcpd.CtlJson("show", "memory");
        Assert.True(m["rss_bytes"]!.GetValue<long>() > 10 << 20);
        Assert.True(m["managed_heap_bytes"]!.GetValue<long>() > 0);
        Assert.True(m["dpdk_heap_allocated_bytes"]!.GetValue<long>() > 0);
        Assert.True(m["gen0_collections"]!.GetValue<long>() >= 0);
    }

    [Fact]
    public void LogLevel_ChangesAtRunTime()
    {
        try
        {
            Assert.Equal("debug", _f.Lcpd.CtlJson("set", "log-level", "debug")["level"]!.GetValue<string>());
            Assert.Equal("debug", _f.Lcpd.CtlJson("show", "log-level")["level"]!.GetValue<string>());
            CmdResult bad = _f.Lcpd.Ctl("set", "log-level", "loud");
            Assert.Equal(1, bad.Code);
            Assert.Contains("usage", bad.Err, StringComparison.Ordinal);
        }
        finally
        {
            _f.Lcpd.Ctl("set", "log-level", "info");
        }
    }
}
