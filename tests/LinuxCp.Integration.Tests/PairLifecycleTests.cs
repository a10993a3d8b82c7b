using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Pairs created and deleted at run time through lcpctl.</summary>
[Collection("lcpd")]
public sealed class PairLifecycleTests
{
    private readonly RouterFixture _f;

    public PairLifecycleTests(RouterFixture f) => _f = f;

    [Fact]
    public void LcpCreateDelete_AtRunTime_MirrorAppearsCarriesTrafficAndGoes()
    {
        TestHost c = _f.C;
        CmdResult create = _f.Lcpd.Ctl("lcp", "create", c.PortName, "host-if", c.MirrorName, "netns", _f.Topo.Rt);
        Assert.True(create.Code == 0, create.ToString());
        try
        {
            Assert.True(Net.LinkExists(_f.Topo.Rt, c.MirrorName));
            Net.Find(_f.Lcpd.CtlJson("show", "lcp"), "host_if", c.MirrorName);
            _f.Topo.ConfigureRouterInterface(c);
            Net.Ping(c.Ns, c.RouterIp4);
            Net.Ping(c.Ns, _f.A.Ip4);

            // Duplicates are refused with a reason.
            CmdResult again = _f.Lcpd.Ctl("lcp", "create", c.PortName, "host-if", "other0", "netns", _f.Topo.Rt);
            Assert.Equal(1, again.Code);
            Assert.Contains("already paired", again.Err, StringComparison.Ordinal);
            CmdResult sameIf = _f.Lcpd.Ctl("lcp", "create", "0", "host-if", c.MirrorName, "netns", _f.Topo.Rt);
            Assert.Equal(1, sameIf.Code);
        }
        finally
        {
            CmdResult del = _f.Lcpd.Ctl("lcp", "delete", c.MirrorName);
            Assert.True(del.Code == 0, del.ToString());
        }
        Assert.False(Net.LinkExists(_f.Topo.Rt, c.MirrorName));
        Assert.DoesNotContain(_f.Lcpd.CtlJson("show", "lcp").AsArray(), p => p!["host_if"]!.GetValue<string>() == c.MirrorName);
        long noMirror = Net.ErrorCount(_f.Lcpd, "no-mirror");
        Assert.False(Net.PingOnce(c.Ns, c.RouterIp4));
        Net.WaitUntil(() => Net.ErrorCount(_f.Lcpd, "no-mirror") > noMirror, TimeSpan.FromSeconds(5), "no-mirror after delete");

        // The port can be paired again, by port id this time, and deleted by port name.
        CmdResult recreate = _f.Lcpd.Ctl("lcp", "create", "2", "host-if", c.MirrorName, "netns", _f.Topo.Rt);
        Assert.True(recreate.Code == 0, recreate.ToString());
        Assert.Equal(0, _f.Lcpd.Ctl("lcp", "delete", c.PortName).Code);
        Assert.False(Net.LinkExists(_f.Topo.Rt, c.MirrorName));
    }

    [Fact]
    public void LcpDelete_UnknownPair_Error()
    {
        CmdResult r = _f.Lcpd.Ctl("lcp", "delete", "nothing0");
        Assert.Equal(1, r.Code);
        Assert.Contains("no pair", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void LcpCreate_BadNames_Refused()
    {
        Assert.Contains("1 to 15", _f.Lcpd.Ctl("lcp", "create", _f.C.PortName, "host-if", "much-too-long-name0").Err, StringComparison.Ordinal);
        Assert.Contains("bad netns", _f.Lcpd.Ctl("lcp", "create", _f.C.PortName, "host-if", "x0", "netns", "../etc").Err, StringComparison.Ordinal);
        Assert.Contains("is a mirror", _f.Lcpd.Ctl("lcp", "create", "net_tap_lcp1", "host-if", "x0").Err, StringComparison.Ordinal);
    }
}
