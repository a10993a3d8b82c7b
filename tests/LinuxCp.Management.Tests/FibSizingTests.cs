using LinuxCp.Dataplane.Fib;
using LinuxCp.Management.Config;
using Xunit;

namespace LinuxCp.Management.Tests;

/// <summary>The FIB's size against the memory EAL has: defaults kept, scaled down with a note,
/// explicit sizes taken or refused naming the options; the IPv6 tbl8 default.</summary>
public sealed class FibSizingTests
{
    private static readonly RteFibBackend Rte = new(0);
    private const long GiB = 1L << 30;

    [Fact]
    public void Defaults_FitInPlentyOfMemory_Unchanged()
    {
        FibPlan p = FibSizing.Plan(null, null, null, Rte, 4 * GiB);
        Assert.Equal(new FibCapacity(LaunchOptions.DefaultFibRoutes, LaunchOptions.DefaultFibTbl8), p.V4);
        Assert.Equal(new FibCapacity(LaunchOptions.DefaultFib6Routes, LaunchOptions.DefaultFib6Tbl8), p.V6);
        Assert.Null(p.Note);
        Assert.True(p.Bytes < 2 * GiB, $"{p.Bytes >> 20} MiB");
    }

    [Fact]
    public void Defaults_InLittleMemory_ScaledDownWithANote_AndTheyFit()
    {
        long available = 400L << 20;
        FibPlan p = FibSizing.Plan(null, null, null, Rte, available);
        Assert.True(p.V4.Routes < LaunchOptions.DefaultFibRoutes && p.V6.Tbl8 < LaunchOptions.DefaultFib6Tbl8);
        Assert.True(p.Bytes <= available - FibSizing.Reserve);
        Assert.Contains("FIB sized to", p.Note, StringComparison.Ordinal);
        Assert.Contains("-m", p.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void Explicit_TooBig_RefusedNamingEveryOptionGiven()
    {
        var e = Assert.Throws<FibCapacityException>(() => FibSizing.Plan(1 << 22, null, null, Rte, GiB, tbl8v6: 1 << 18));
        Assert.Contains("--fib-routes 4194304", e.Message, StringComparison.Ordinal);
        Assert.Contains("--fib6-tbl8 262144", e.Message, StringComparison.Ordinal);
        Assert.Contains("MiB", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ipv6Tbl8_FollowsIpv4Tbl8WhenOnlyThatIsGiven_AndCanExceedWhatTwoByteEntriesIndex()
    {
        Assert.Equal(16384u, FibSizing.Plan(null, null, 4096, Rte, 4 * GiB).V6.Tbl8);
        Assert.Equal(100000u, FibSizing.Plan(null, null, 4096, Rte, 4 * GiB, tbl8v6: 100000).V6.Tbl8);
        Assert.True(Rte.MaxTbl8(true) > 32767);
        Assert.Equal(32767u, Rte.MaxTbl8(false));
        // An IPv6 instance costs more per tbl8 group and for its tbl24 (4-byte entries).
        Assert.True(Rte.EstimateBytes(true, new(1024, 1024)) > Rte.EstimateBytes(false, new(1024, 1024)));
    }

    [Fact]
    public void NoMemoryAtAll_RefusedSayingWhatToDo()
    {
        var e = Assert.Throws<FibCapacityException>(() => FibSizing.Plan(null, null, null, Rte, 64L << 20));
        Assert.Contains("--no-fib", e.Message, StringComparison.Ordinal);
    }
}
