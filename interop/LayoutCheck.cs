using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>Compares the generated layout constants with the native probe compiled against the
/// installed DPDK headers. A mismatch means the bindings were generated for another DPDK.</summary>
public static unsafe class LayoutCheck
{
    public static List<string> Mismatches()
    {
        var bad = new List<string>();
        int abi = LcpShim.lcp_shim_abi();
        if (abi != LcpShim.LCP_SHIM_ABI)
            bad.Add($"liblcpshim ABI {abi}, bindings expect {LcpShim.LCP_SHIM_ABI}");
        foreach (var (name, value) in Layouts.Entries)
        {
            using var n = new NativeUtf8(name);
            long probed = LcpShim.lcp_probe_layout(n.Pointer);
            if (probed != value)
                bad.Add($"{name}: generated {value}, installed DPDK {probed}");
        }
        return bad;
    }
}
