using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>A route flood that overruns a deliberately small netlink buffer: lcpd must notice
/// (ENOBUFS), resync by dump, and end with its FIB equal to the kernel's, route for route.</summary>
[Collection("lcpd")]
public sealed class RouteFloodTests
{
    private const int Routes = 20_000;

    private static HashSet<string> KernelPrefixes(Topology t) =>
        [.. Cmd.InNsOk(t.Rt, "ip", "-4", "route", "show", "table", "main").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')[0]).Where(p => p.StartsWith("100.", StringComparison.Ordinal))];

    private static HashSet<string> FibPrefixes(LcpdProcess l) =>
        [.. l.CtlJson("show", "ip", "fib").AsArray().Select(r => r!["prefix"]!.GetValue<string>())
            .Where(p => p.StartsWith("100.", StringComparison.Ordinal))];

    [Fact]
    public void RouteFlood_OverrunsSocket_FibEndsEqualToKernel()
    {
        using var t = new Topology(hosts: 1);
        TestHost h = t.Hosts[0];
        var eal = LcpdProcess.TestEal($"lcpt{t.Id}");
        eal.AddRange(t.VdevArgs());
        using var l = LcpdProcess.Start(t.Dp, eal, [.. LcpdProcess.TestFib, "--netlink-rcvbuf", "16384", "--netlink-batch", "64",
            "--netns", t.Rt, "--pair", $"{h.PortName}=lcp0"]);
        t.ConfigureRouterInterface(h);

        string batch = Path.Combine(Path.GetTempPath(), $"lcpt-flood-{t.Id}.batch");
        try
        {
            File.WriteAllLines(batch, Enumerable.Range(0, Routes).Select(i => $"route add 100.{i >> 8}.{i & 255}.0/24 via {h.Ip4}"));
            Cmd.InNsOk(t.Rt, "ip", "-batch", batch);
            Net.WaitUntil(() => FibPrefixes(l).Count == Routes, TimeSpan.FromSeconds(30), "FIB to hold every flooded route");
            Assert.Equal(KernelPrefixes(t), FibPrefixes(l));

            // Delete half with another flood; the FIB follows, route for route.
            File.WriteAllLines(batch, Enumerable.Range(0, Routes / 2).Select(i => $"route del 100.{i >> 8}.{i & 255}.0/24"));
            Cmd.InNsOk(t.Rt, "ip", "-batch", batch);
            Net.WaitUntil(() => FibPrefixes(l).Count == Routes / 2, TimeSpan.FromSeconds(30), "FIB to drop the deleted routes");
            Assert.Equal(KernelPrefixes(t), FibPrefixes(l));
        }
        finally
        {
            File.Delete(batch);
        }

        JsonNode stats = l.CtlJson("lcp", "resync");
        Assert.True(stats["overruns"]!.GetValue<long>() > 0, "the 16 KiB buffer must have overrun (otherwise this test proves nothing)");
        Assert.True(stats["resyncs"]!.GetValue<long>() >= 2);
        Assert.Equal(0, l.CtlJson("show", "ip", "fib", "summary")["fib_errors"]!.GetValue<long>());
        Net.Ping(h.Ns, h.RouterIp4);
    }
}
