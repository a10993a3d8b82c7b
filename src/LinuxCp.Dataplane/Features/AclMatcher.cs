using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Features;

/// <summary>Classifies a burst of keys (<see cref="AclKey"/>) against one family's rules of one
/// port and direction: <c>results[i]</c> is the 1-based rank of the first matching rule in
/// <see cref="AclRuleOrder"/>, 0 when none matches. Immutable once built, so any number of
/// workers may classify with it at once.</summary>
public unsafe interface IAclMatcher : IDisposable
{
    int RuleCount { get; }

    void Classify(byte** keys, uint* results, int n);
}

/// <summary>The order rules match in: priority (lower first), then id.</summary>
public static class AclRuleOrder
{
    public static AclRule[] Sort(IEnumerable<AclRule> rules) =>
        [.. rules.OrderBy(r => r.Priority).ThenBy(r => r.Id)];
}

/// <summary>The reference matcher: every rule in order, on the fields read back from the key
/// (<see cref="AclRule.Matches"/>). What the native matcher is checked against (tests, fuzzing)
/// and what runs when DPDK is not there (unit tests).</summary>
public sealed unsafe class ManagedAclMatcher(IReadOnlyList<AclRule> sorted, bool v6) : IAclMatcher
{
    private readonly AclRule[] _rules = [.. sorted];

    public int RuleCount => _rules.Length;

    public void Classify(byte** keys, uint* results, int n)
    {
        for (int i = 0; i < n; i++)
        {
            var (src, dst, proto, sport, dport, flags) = AclKey.Read(keys[i], v6);
            uint hit = 0;
            for (int r = 0; r < _rules.Length; r++)
            {
                if (_rules[r].Matches(v6, src, dst, proto, sport, dport, flags))
                {
                    hit = (uint)r + 1;
                    break;
                }
            }
            results[i] = hit;
        }
    }

    public void Dispose()
    {
    }
}

/// <summary>DPDK's rte_acl over the same rules (native/src/lcp_acl.c builds the context from
/// flat rule records); classification is one native call per burst, and costs about the same
/// for 10 rules or 1000.</summary>
public sealed unsafe class RteAclMatcher : IAclMatcher
{
    private void* _ctx;
    private static int s_seq;

    public int RuleCount { get; }

    public RteAclMatcher(IReadOnlyList<AclRule> sorted, bool v6, int socket)
    {
        if (sorted.Count == 0)
            throw new ArgumentException("a native classifier needs at least one rule (no rules: no classifier)");
        int words = DpdkSharp.Native.LcpShim.LCP_ACL_RULE_WORDS;
        var rec = new uint[sorted.Count * words];
        for (int i = 0; i < sorted.Count; i++)
            Encode(sorted[i], i, v6, rec.AsSpan(i * words, words));
        string name = $"lcpacl{Interlocked.Increment(ref s_seq)}";
        nint n = Marshal.StringToCoTaskMemUTF8(name);
        try
        {
            int error;
            fixed (uint* r = rec)
                _ctx = DpdkSharp.Native.LcpShim.lcp_acl_build((byte*)n, socket, v6 ? 1 : 0, r, (uint)sorted.Count, &error);
            if (_ctx == null)
                throw new InvalidOperationException($"rte_acl build of {sorted.Count} rule(s) failed: {DpdkSharp.Eal.StrError(error)}");
        }
        finally
        {
            Marshal.FreeCoTaskMem(n);
        }
        RuleCount = sorted.Count;
        // One classification here, on the control thread: the first call of a P/Invoke binds
        // its target and allocates, which must not happen on a worker.
        byte* key = stackalloc byte[AclKey.Size6];
        new Span<byte>(key, AclKey.Size6).Clear();
        uint result;
        Classify(&key, &result, 1);
    }

    /// <summary>One rule as the record lcp_acl_build reads (see lcp_shim.h).</summary>
    public static void Encode(AclRule r, int rank, bool v6, Span<uint> w)
    {
        if (r.V6 != v6)
            throw new ArgumentException($"rule {r.Id} is not of this family");
        w.Clear();
        w[0] = (uint)rank + 1;
        w[1] = (1u << 29) - 1 - (uint)rank; // rte_acl: the larger priority wins
        (uint proto, uint protoMask) = r.Proto >= 0 ? ((uint)r.Proto, 0xFFu) : (0u, 0u);
        w[2] = proto | (protoMask << 8) | ((uint)r.TcpFlags << 16) | ((uint)r.TcpFlagsMask << 24);
        w[3] = r.SportLo | ((uint)r.SportHi << 16);
        w[4] = r.DportLo | ((uint)r.DportHi << 16);
        w[5] = r.Src.Length;
        w[6] = r.Dst.Length;
        if (v6)
        {
            for (int k = 0; k < 4; k++)
            {
                w[7 + k] = (uint)(r.Src.Address >> (96 - 32 * k));
                w[11 + k] = (uint)(r.Dst.Address >> (96 - 32 * k));
            }
        }
        else
        {
            w[7] = (uint)r.Src.Address;
            w[11] = (uint)r.Dst.Address;
        }
    }

    public void Classify(byte** keys, uint* results, int n) =>
        DpdkSharp.Native.Dpdk.rte_acl_classify(_ctx, keys, results, (uint)n, 1);

    public void Dispose()
    {
        if (_ctx != null)
        {
            DpdkSharp.Native.Dpdk.rte_acl_free(_ctx);
            _ctx = null;
        }
    }
}
