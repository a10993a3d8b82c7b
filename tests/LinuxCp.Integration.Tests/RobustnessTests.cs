using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Malformed frames, hostile API clients, no mbuf leaks, no allocation in the loop.</summary>
[Collection("lcpd")]
public sealed class RobustnessTests
{
    private readonly RouterFixture _f;

    public RobustnessTests(RouterFixture f) => _f = f;

    private string PortMacHex(TestHost h) =>
        Net.Find(_f.Lcpd.CtlJson("show", "interfaces"), "name", h.PortName)["mac"]!.GetValue<string>().Replace(":", "", StringComparison.Ordinal);

    [Fact]
    public void MalformedFrames_CountedByReason_TrafficUndisturbed()
    {
        string dst = PortMacHex(_f.A);
        const string src = "020000aaaaaa";
        string ip4Ok = "45000014" + "00000000" + "40010000" + "0ac90102" + "0ac90101"; // 20-byte header
        var cases = new Dictionary<string, string>
        {
            ["ip4-bad-ihl"] = dst + src + "0800" + "43" + ip4Ok[2..],
            ["ip4-bad-length"] = dst + src + "0800" + "450003e8" + ip4Ok[8..],
            ["ip4-truncated"] = dst + src + "0800" + ip4Ok[..20],
            ["ip4-bad-version"] = dst + src + "0800" + "65" + ip4Ok[2..],
            ["ip6-bad-version"] = dst + src + "86dd" + "40" + new string('0', 78),
            ["ip6-truncated"] = dst + src + "86dd" + "60" + new string('0', 60),
            ["arp-truncated"] = dst + src + "0806" + "0001080006040001",
        };
        var before = cases.Keys.ToDictionary(k => k, k => Net.ErrorCount(_f.Lcpd, k));
        long notForUs = Net.ErrorCount(_f.Lcpd, "l2-not-for-us");

        const int n = 5;
        var frames = new List<string>();
        for (int i = 0; i < n; i++)
        {
            frames.AddRange(cases.Values);
            frames.Add("020000bbbbbb" + src + "0800" + ip4Ok); // unicast to someone else
        }
        Net.SendRawFrames(_f.A.Ns, _f.A.Ifname, frames);

        Net.WaitUntil(() => cases.Keys.All(k => Net.ErrorCount(_f.Lcpd, k) >= before[k] + n),
            TimeSpan.FromSeconds(5), "malformed-frame counters");
        foreach (string k in cases.Keys)
            Assert.Equal(before[k] + n, Net.ErrorCount(_f.Lcpd, k));
        Assert.True(Net.ErrorCount(_f.Lcpd, "l2-not-for-us") >= notForUs + n);
        Net.Ping(_f.A.Ns, _f.B.Ip4);
    }

    private long InUse() => _f.Lcpd.CtlJson("show", "buffers").AsArray()[0]!["in_use"]!.GetValue<long>();

    [Fact]
    public void Mempool_AfterForwardedAndPuntedFlood_InUseReturnsToBaseline()
    {
        long baseline = InUse();
        Assert.True(baseline > 0, "taps hold RX buffers, so some mbufs are always in use");

        // Flood across the router (fast path) and to the router (punt + x-connect).
        Cmd.InNs(_f.A.Ns, "ping", "-f", "-c", "2000", "-W", "1", _f.B.Ip4);
        Cmd.InNs(_f.A.Ns, "ping", "-f", "-c", "1000", "-W", "1", _f.A.RouterIp4);

        Net.WaitUntil(() => InUse() == baseline, TimeSpan.FromSeconds(5), $"in-use mbufs back to {baseline} (now {InUse()})");
        Net.Ping(_f.A.Ns, _f.B.Ip4);
    }

    [Fact]
    public void WorkerLoop_AfterWarmupAndTraffic_AllocatesNothing()
    {
        Net.WaitUntil(() => _f.Lcpd.CtlJson("show", "runtime").AsArray().All(w => w!["warmed_up"]!.GetValue<bool>()),
            TimeSpan.FromSeconds(10), "workers warmed up");
        Cmd.InNs(_f.A.Ns, "ping", "-f", "-c", "1000", "-W", "1", _f.B.Ip4);
        Net.Ping(_f.A.Ns, _f.B.Ip6, v6: true);
        Thread.Sleep(200); // the figure is refreshed every 1024 loop iterations
        foreach (JsonNode? w in _f.Lcpd.CtlJson("show", "runtime").AsArray())
        {
            Assert.True(w!["running"]!.GetValue<bool>());
            Assert.Equal(0, w["allocated_bytes_since_warmup"]!.GetValue<long>());
            Assert.True(w["iterations"]!.GetValue<long>() > 0);
        }
    }

    private static string Exchange(Socket s, string request)
    {
        try
        {
            s.Send(Encoding.UTF8.GetBytes(request));
        }
        catch (SocketException)
        {
            // The server may answer and close before it read everything (oversized request).
        }
        var buf = new byte[65536];
        var sb = new StringBuilder();
        while (!sb.ToString().Contains('\n', StringComparison.Ordinal))
        {
            int n = s.Receive(buf);
            if (n == 0)
                break;
            sb.Append(Encoding.UTF8.GetString(buf, 0, n));
        }
        return sb.ToString();
    }

    private Socket Connect()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 15000 };
        s.Connect(new UnixDomainSocketEndPoint(_f.Lcpd.Socket));
        return s;
    }

    [Fact]
    public void ApiSocket_GarbageAndOversizedRequests_ErrorRepliesAndLcpdKeepsServing()
    {
        using (Socket s = Connect())
        {
            foreach (string bad in new[] { "garbage\n", "{\"v\":1}\n", "{\"v\":9,\"argv\":[]}\n", "\u0001\u0002\u00ff\n",
                         "{\"v\":1,\"argv\":[\"show\",\"nonsense\"]}\n", "{\"v\":1,\"argv\":[\"lcp\",\"create\"]}\n" })
            {
                JsonNode reply = JsonNode.Parse(Exchange(s, bad))!;
                Assert.False(reply["ok"]!.GetValue<bool>());
                Assert.False(string.IsNullOrEmpty(reply["error"]!.GetValue<string>()));
            }
            // The same connection still answers a good request.
            Assert.True(JsonNode.Parse(Exchange(s, "{\"v\":1,\"argv\":[\"show\",\"version\"]}\n"))!["ok"]!.GetValue<bool>());
        }
        using (Socket s = Connect())
        {
            string reply = Exchange(s, new string('x', 70_000));
            Assert.Contains("larger than", reply, StringComparison.Ordinal);
        }
        // Many idle connections: the extra ones are refused with an error, not hung.
        var idle = new List<Socket>();
        try
        {
            for (int i = 0; i < 40; i++)
                idle.Add(Connect());
            Thread.Sleep(300);
            using Socket extra = Connect();
            string r = Exchange(extra, "{\"v\":1,\"argv\":[\"show\",\"version\"]}\n");
            Assert.Contains("too many", r, StringComparison.Ordinal);
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
        Thread.Sleep(300);
        Assert.Equal(0, _f.Lcpd.Ctl("show", "lcp").Code);
        Net.Ping(_f.A.Ns, _f.B.Ip4);
    }

    [Fact]
    public void Lcpctl_ExitCodes_UsageLcpdErrorAndNotRunning()
    {
        CmdResult unknown = _f.Lcpd.Ctl("show", "bogus");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("unknown command", unknown.Err, StringComparison.Ordinal);

        CmdResult bad = _f.Lcpd.Ctl("lcp", "create", "no_such_port", "host-if", "x0");
        Assert.Equal(1, bad.Code);
        Assert.Contains("unknown port 'no_such_port'", bad.Err, StringComparison.Ordinal);
        Assert.Single(bad.Err.Trim().Split('\n'));

        CmdResult help = _f.Lcpd.Ctl("show", "interfaces", "--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("usage: lcpctl", help.Out, StringComparison.Ordinal);

        CmdResult down = Cmd.Run(Repo.Lcpctl, "--socket", "/run/lcpt-no-such.sock", "show", "lcp");
        Assert.Equal(1, down.Code);
        Assert.Contains("is lcpd running", down.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Lcpctl_HumanOutput_AlignedTable()
    {
        CmdResult r = _f.Lcpd.Ctl("show", "interfaces");
        Assert.Equal(0, r.Code);
        string[] lines = r.Out.TrimEnd('\n').Split('\n');
        Assert.StartsWith("name", lines[0], StringComparison.Ordinal);
        Assert.True(lines.Length >= 6, r.Out); // header + 3 phys + 2 mirrors
        int col = lines[0].IndexOf("port_id", StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.Equal(' ', l[col - 1]));
    }
}
