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
        long before = Net.ErrorCount(_f.Lcpd, "punt-local");
        string outp = Net.Ping(_f.A.Ns, _f.A.RouterIp4);
        Assert.Contains("3 received", outp, StringComparison.Ordinal);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-local") >= before + 3);
    }

    [Fact]
    public void Host_PingsRouterAddress_Ipv6()
    {
        long before = Net.ErrorCount(_f.Lcpd, "punt-local");
        Net.Ping(_f.A.Ns, _f.A.RouterIp6, v6: true);
        Assert.True(Net.ErrorCount(_f.Lcpd, "punt-local") >= before + 3);
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
