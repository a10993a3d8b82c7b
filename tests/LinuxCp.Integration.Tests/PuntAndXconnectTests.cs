using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>phy -> host punt and host -> phy x-connect through a real lcpd, real kernel mirrors
/// and Linux hosts in namespaces.</summary>
[Collection("lcpd")]
public sealed partial class PuntAndXconnectTests
{
    private readonly RouterFixture _f;

    public PuntAndXconnectTests(RouterFixture f) => _f = f;

    [Fact]
    public void Host_PingsRouterAddress_Ipv4()
    {
        long before = Net.ErrorCount(_f.Lcpd, "punt-ip4");
        string outp = Net.Ping(_f.A.Ns, _f.A.RouterIp4);
        Assert.Contains("3 received", outp, StringComparison.Ordinal);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-ip4") >= before + 3);
    }

    [Fact]
    public void Host_PingsRouterAddress_Ipv6()
    {
        long before = Net.ErrorCount(_f.Lcpd, "punt-ip6");
        Net.Ping(_f.A.Ns, _f.A.RouterIp6, v6: true);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-ip6") >= before + 3);
    }

    [Fact]
    public void Arping_RouterAddress_AnswersWithPortMac()
    {
        CmdResult r = Cmd.InNs(_f.A.Ns, "arping", "-c", "2", "-w", "5", "-I", _f.A.Ifname, _f.A.RouterIp4);
        Assert.True(r.Code == 0, r.ToString());
        Match m = ReplyMac().Match(r.Out);
        Assert.True(m.Success, r.Out);
        string portMac = Net.Find(_f.Lcpd.CtlJson("show", "interfaces"), "name", _f.A.PortName)["mac"]!.GetValue<string>();
        Assert.Equal(portMac, m.Groups[1].Value.ToLowerInvariant());
        // The mirror carries the port's MAC too.
        string mirrorMac = Net.Find(_f.Lcpd.CtlJson("show", "interfaces"), "name", _f.A.MirrorName)["mac"]!.GetValue<string>();
        Assert.Equal(portMac, mirrorMac);
    }

    [GeneratedRegex(@"reply from \S+ \[([0-9A-Fa-f:]{17})\]")]
    private static partial Regex ReplyMac();

    [Fact]
    public void HostA_ReachesHostB_ThroughRouter_Ipv4AndIpv6()
    {
        JsonNode before = _f.Lcpd.CtlJson("show", "interfaces");
        Net.Ping(_f.A.Ns, _f.B.Ip4);
        Net.Ping(_f.A.Ns, _f.B.Ip6, v6: true);
        JsonNode after = _f.Lcpd.CtlJson("show", "interfaces");
        long Delta(string name, string counter) =>
            Net.Find(after, "name", name)[counter]!.GetValue<long>() - Net.Find(before, "name", name)[counter]!.GetValue<long>();
        // Requests punted on port A, x-connected out of port B (and the replies the other way).
        Assert.True(Delta(_f.A.PortName, "punts") >= 6);
        Assert.True(Delta(_f.B.MirrorName, "rx_packets") >= 6);
        Assert.True(Delta(_f.B.PortName, "tx_packets") >= 6);
        Assert.True(Delta(_f.B.PortName, "punts") >= 6);
        Assert.True(Delta(_f.A.PortName, "tx_packets") >= 6);
    }

    [Fact]
    public void ShowLcp_ListsLaunchPairs_WithKernelIfindex()
    {
        JsonNode lcp = _f.Lcpd.CtlJson("show", "lcp");
        JsonObject a = Net.Find(lcp, "host_if", _f.A.MirrorName);
        Assert.Equal(_f.A.PortName, a["port"]!.GetValue<string>());
        Assert.Equal(_f.Topo.Rt, a["netns"]!.GetValue<string>());
        Assert.Equal("tap", a["kind"]!.GetValue<string>());
        string link = Cmd.InNsOk(_f.Topo.Rt, "ip", "-o", "link", "show", "dev", _f.A.MirrorName);
        Assert.StartsWith($"{a["host_ifindex"]!.GetValue<int>()}:", link, StringComparison.Ordinal);
    }

    [Fact]
    public void UnpairedPort_TrafficDroppedAsNoMirror()
    {
        long before = Net.ErrorCount(_f.Lcpd, "no-mirror");
        Assert.False(Net.PingOnce(_f.C.Ns, _f.C.RouterIp4, waitSeconds: 1));
        Net.WaitUntil(() => Net.ErrorCount(_f.Lcpd, "no-mirror") > before, TimeSpan.FromSeconds(5), "no-mirror drops");
    }
}
