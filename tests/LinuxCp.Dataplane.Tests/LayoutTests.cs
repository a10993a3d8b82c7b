using DpdkSharp;
using DpdkSharp.Native;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The generated layouts (libclang) against the offsetof/sizeof probe compiled into
/// liblcpshim.so from the installed headers.</summary>
public unsafe class LayoutTests
{
    [Fact]
    public void Layouts_GeneratedOffsets_MatchCompiledProbe() =>
        Assert.Empty(LayoutCheck.Mismatches());

    [Fact]
    public void Layouts_Probe_KnowsEveryGeneratedEntry()
    {
        foreach (var (name, _) in Layouts.Entries)
        {
            using var n = new NativeUtf8(name);
            Assert.NotEqual(-1, (long)LcpShim.lcp_probe_layout(n.Pointer));
        }
    }

    [Fact]
    public void Layouts_UnknownName_ProbeAnswersMinusOne()
    {
        using var n = new NativeUtf8("rte_mbuf.no_such_field");
        Assert.Equal(-1, (long)LcpShim.lcp_probe_layout(n.Pointer));
    }

    [Fact]
    public void EthStats_GeneratedStruct_HasProbedSize() =>
        Assert.Equal(Layouts.SizeOf_rte_eth_stats, sizeof(rte_eth_stats));

    [Fact]
    public void Shim_Abi_MatchesHeader() =>
        Assert.Equal(LcpShim.LCP_SHIM_ABI, LcpShim.lcp_shim_abi());
}
