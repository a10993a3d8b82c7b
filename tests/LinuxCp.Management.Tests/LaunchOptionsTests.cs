using LinuxCp.Management.Config;

namespace LinuxCp.Management.Tests;

public class LaunchOptionsTests
{
    [Fact]
    public void Parse_EalOnly_AllArgsGoToEal()
    {
        var o = LaunchOptions.Parse(["-l", "0-1", "--vdev", "net_null0"]);
        Assert.Equal(["-l", "0-1", "--vdev", "net_null0"], o.EalArgs);
        Assert.Empty(o.Pairs);
    }

    [Fact]
    public void Parse_FullLine_SplitsAtDoubleDash()
    {
        var o = LaunchOptions.Parse(["--no-huge", "--", "--pair", "net_af_packet0=lcp0,tun,netns=rt,persist",
            "--pair", "1=lcp1", "--netns", "dflt", "--api-socket", "/run/x.sock", "--no-punt-other",
            "--idle-sleep-us", "50", "--mbufs", "4096", "--log-level", "debug"]);
        Assert.Equal(["--no-huge"], o.EalArgs);
        Assert.Equal(new PairSpec("net_af_packet0", "lcp0", true, "rt", true), o.Pairs[0]);
        Assert.Equal(new PairSpec("1", "lcp1", false, null, false), o.Pairs[1]);
        Assert.Equal("dflt", o.Netns);
        Assert.Equal("/run/x.sock", o.ApiSocket);
        Assert.False(o.PuntOther);
        Assert.Equal(50u, o.IdleSleepMicros);
        Assert.Equal(4096u, o.Mbufs);
        Assert.Equal("debug", o.LogLevel);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Parse_Help_SetsHelp(string flag)
    {
        Assert.True(LaunchOptions.Parse([flag]).Help);
        Assert.True(LaunchOptions.Parse(["-l", "0", "--", flag]).Help);
    }

    [Theory]
    [InlineData("--pair", "noequals", "expected <port>[.<vid>[.<inner>]]=<host-if>")]
    [InlineData("--pair", "p=", "expected <port>[.<vid>[.<inner>]]=<host-if>")]
    [InlineData("--pair", "=lcp0", "expected <port>[.<vid>[.<inner>]]=<host-if>")]
    [InlineData("--pair", "p=x,tun,veth", "a TUN or a veth, not both")]
    [InlineData("--pair", "p.5=x,tpid=9999", "tpid '9999' is 88a8")]
    [InlineData("--bond", "b0=p1", "two members or more")]
    [InlineData("--bond", "b0=p1,p2,mode=rr", "mode 'rr' is lacp")]
    [InlineData("--bond", "noequals", "expected <name>=<port>,<port>")]
    [InlineData("--attach", "bad/name", "interface 'bad/name'")]
    [InlineData("--unknown-vlan", "maybe", "drop or punt")]
    [InlineData("--link-poll", "5", "--link-poll takes a number from 10 to 10000")]
    [InlineData("--pair", "p=this-name-is-too-long", "1 to 15 characters")]
    [InlineData("--pair", "p=bad/name", "may only contain")]
    [InlineData("--pair", "p=lcp0,bogus", "unknown pair option 'bogus'")]
    [InlineData("--pair", "p=lcp0,netns=../x", "bad netns name")]
    [InlineData("--netns", "a/b", "bad netns name")]
    [InlineData("--idle-sleep-us", "-1", "takes a number")]
    [InlineData("--mbufs", "12", "takes a number")]
    [InlineData("--log-level", "loud", "bad log level")]
    [InlineData("--frobnicate", null, "unknown option '--frobnicate'")]
    [InlineData("--fib-tbl8", "40000", "takes a number")]
    [InlineData("--fib6-tbl8", "100", "takes a number")]
    public void Parse_Malformed_ThrowsWithReason(string opt, string? value, string expected)
    {
        string[] args = value is null ? ["--", opt] : ["--", opt, value];
        var e = Assert.Throws<UsageException>(() => LaunchOptions.Parse(args));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MissingValue_Throws() =>
        Assert.Contains("needs a value", Assert.Throws<UsageException>(() => LaunchOptions.Parse(["--", "--netns"])).Message, StringComparison.Ordinal);

    [Fact]
    public void Parse_DuplicateHostIf_Throws() =>
        Assert.Contains("duplicate host-if lcp0", Assert.Throws<UsageException>(() =>
            LaunchOptions.Parse(["--", "--pair", "a=lcp0", "--pair", "b=lcp0"])).Message, StringComparison.Ordinal);

    [Fact]
    public void Parse_SameHostIfInOtherNetns_Allowed() =>
        Assert.Equal(2, LaunchOptions.Parse(["--", "--pair", "a=lcp0,netns=x", "--pair", "b=lcp0,netns=y"]).Pairs.Count);

    [Fact]
    public void Parse_PortPairedTwice_Throws() =>
        Assert.Contains("paired twice", Assert.Throws<UsageException>(() =>
            LaunchOptions.Parse(["--", "--pair", "a=lcp0", "--pair", "a=lcp1"])).Message, StringComparison.Ordinal);
}

public sealed class QueueMapTests
{
    [Fact]
    public void QueueMap_ParsesAndValidates()
    {
        var o = LinuxCp.Management.Config.LaunchOptions.Parse(["--", "--queue-map", "1=1,2=0"]);
        Assert.Equal((ushort)1, o.QueueMap[1]);
        Assert.Equal((ushort)0, o.QueueMap[2]);
        Assert.Throws<LinuxCp.Management.Config.UsageException>(() => LinuxCp.Management.Config.LaunchOptions.Parse(["--", "--queue-map", "1=1,1=0"]));
        Assert.Throws<LinuxCp.Management.Config.UsageException>(() => LinuxCp.Management.Config.LaunchOptions.Parse(["--", "--queue-map", "x"]));

        Assert.Equal(new ushort[] { 1, 0 }, LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], o.QueueMap));
        Assert.Equal(new ushort[] { 0, 1 }, LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], null));
        Assert.Throws<ArgumentException>(() => LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], new Dictionary<uint, ushort> { [1] = 0, [2] = 0 }));
        Assert.Throws<ArgumentException>(() => LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], new Dictionary<uint, ushort> { [1] = 0, [2] = 2 }));
        Assert.Throws<ArgumentException>(() => LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], new Dictionary<uint, ushort> { [1] = 0 }));
        Assert.Throws<ArgumentException>(() => LinuxCp.Dataplane.DataplaneEngine.QueueAssignment([1, 2], new Dictionary<uint, ushort> { [1] = 0, [2] = 1, [5] = 0 }));
    }
}
