using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DpdkSharp;

namespace LinuxCp.Dataplane.Features;

/// <summary>The rules of one port and direction as the workers use them: a matcher per family
/// (null: no rules of that family) and, per match rank, the rule's action and counter slot.
/// Immutable; replaced whole when rules change and freed after a grace period.</summary>
public sealed unsafe class AclPortRules : IDisposable
{
    public IAclMatcher? V4 { get; }
    public IAclMatcher? V6 { get; }

    /// <summary>Per family, the pre-filter (null: every key goes to the matcher).</summary>
    internal AclPrefilter* Pre4, Pre6;

    /// <summary>Per family, indexed by rank - 1.</summary>
    public AclRule[] Rules4 { get; }
    public AclRule[] Rules6 { get; }

    internal readonly AclAction[] Action4, Action6;
    internal readonly int[] Slot4, Slot6;

    /// <param name="slotOf">the counter slot of a rule (stable across rebuilds, so counters survive rule changes)</param>
    /// <param name="matcher">builds a matcher over sorted rules of one family</param>
    public AclPortRules(IEnumerable<AclRule> rules, Func<AclRule, int> slotOf, Func<AclRule[], bool, IAclMatcher> matcher)
    {
        var all = rules.ToList();
        Rules4 = AclRuleOrder.Sort(all.Where(r => !r.V6));
        Rules6 = AclRuleOrder.Sort(all.Where(r => r.V6));
        V4 = Rules4.Length != 0 ? matcher(Rules4, false) : null;
        V6 = Rules6.Length != 0 ? matcher(Rules6, true) : null;
        Action4 = [.. Rules4.Select(r => r.Action)];
        Action6 = [.. Rules6.Select(r => r.Action)];
        Slot4 = [.. Rules4.Select(slotOf)];
        Slot6 = [.. Rules6.Select(slotOf)];
        Pre4 = AclPrefilter.Build(Rules4, false);
        Pre6 = AclPrefilter.Build(Rules6, true);
    }

    public int Count => Rules4.Length + Rules6.Length;

    public void Dispose()
    {
        V4?.Dispose();
        V6?.Dispose();
        AclPrefilter.Free(ref Pre4);
        AclPrefilter.Free(ref Pre6);
    }
}

/// <summary>A sound pre-filter in front of the matcher: for each key field (protocol, the top 16
/// bits of the source and of the destination, source port, destination port), the set of values
/// that at least one rule of the family accepts. A rule matches only if every field matches, so a
/// key with a field outside its set can match no rule and never reaches the matcher. Typical
/// traffic against a filter list misses in one or two bit tests; a rule that accepts anything in
/// every field (e.g. `drop` on its own) makes the sets full, and the pre-filter is not built.
/// Native memory (about 33 KiB), immutable once built.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct AclPrefilter
{
    public const int Words16 = 65536 / 64;

    public fixed ulong Proto[4];
    public fixed ulong Src[Words16];
    public fixed ulong Dst[Words16];
    public fixed ulong Sport[Words16];
    public fixed ulong Dport[Words16];

    /// <summary>The pre-filter of one family's rules, or null when it could not reject any key.</summary>
    public static AclPrefilter* Build(IReadOnlyList<AclRule> rules, bool v6)
    {
        if (rules.Count == 0)
            return null;
        var p = (AclPrefilter*)NativeMemory.AlignedAlloc((nuint)sizeof(AclPrefilter), 64);
        NativeMemory.Clear(p, (nuint)sizeof(AclPrefilter));
        int bits = v6 ? 128 : 32;
        foreach (AclRule r in rules)
        {
            if (r.Proto < 0)
                SetRange(p->Proto, 0, 255);
            else
                SetRange(p->Proto, r.Proto, r.Proto);
            SetPrefix(p->Src, r.Src, bits);
            SetPrefix(p->Dst, r.Dst, bits);
            SetRange(p->Sport, r.SportLo, r.SportHi);
            SetRange(p->Dport, r.DportLo, r.DportHi);
        }
        if (Full(p->Proto, 4) && Full(p->Src, Words16) && Full(p->Dst, Words16) && Full(p->Sport, Words16) && Full(p->Dport, Words16))
        {
            NativeMemory.AlignedFree(p);
            return null;
        }
        return p;
    }

    public static void Free(ref AclPrefilter* p)
    {
        if (p != null)
            NativeMemory.AlignedFree(p);
        p = null;
    }

    private static void SetPrefix(ulong* bm, LinuxCp.Dataplane.Fib.Prefix pfx, int bits)
    {
        int top = (int)(pfx.Address >> (bits - 16)) & 0xFFFF;
        if (pfx.Length >= 16)
        {
            SetRange(bm, top, top);
            return;
        }
        int free = 16 - pfx.Length;
        int lo = top & ~((1 << free) - 1);
        SetRange(bm, lo, lo | ((1 << free) - 1));
    }

    private static void SetRange(ulong* bm, int lo, int hi)
    {
        for (int v = lo; v <= hi;)
        {
            if ((v & 63) == 0 && v + 63 <= hi)
            {
                bm[v >> 6] = ulong.MaxValue;
                v += 64;
            }
            else
            {
                bm[v >> 6] |= 1UL << (v & 63);
                v++;
            }
        }
    }

    private static bool Full(ulong* bm, int words)
    {
        for (int i = 0; i < words; i++)
            if (bm[i] != ulong.MaxValue)
                return false;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Has(ulong* bm, uint v) => (bm[v >> 6] & (1UL << (int)(v & 63))) != 0;

    /// <summary><see cref="MayMatch"/> read from an IPv4 header without options that is a first
    /// fragment of TCP, UDP or anything else (ICMP: type and code), with 4 bytes after it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MayMatch4(AclPrefilter* p, byte* ip) => MayMatchAt(p, ip[9], ip + 20, ip + 12, ip + 16);

    /// <summary><see cref="MayMatch"/> read from an IPv6 header with 4 bytes after it (the key
    /// takes the next header as the protocol and the 4 bytes after the fixed header as ports,
    /// as <see cref="AclKey.Build6"/> does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MayMatch6(AclPrefilter* p, byte* ip) => MayMatchAt(p, ip[6], ip + 40, ip + 8, ip + 24);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MayMatchAt(AclPrefilter* p, byte proto, byte* l4, byte* src, byte* dst)
    {
        if (!Has(p->Proto, proto))
            return false;
        uint sport, dport;
        if (proto is 6 or 17 or 132)
        {
            sport = BinaryPrimitives.ReverseEndianness(*(ushort*)l4);
            dport = BinaryPrimitives.ReverseEndianness(*(ushort*)(l4 + 2));
        }
        else if (proto is 1 or 58) // as AclKey reads them, whatever the family
        {
            sport = l4[0];
            dport = l4[1];
        }
        else
        {
            sport = dport = 0;
        }
        return Has(p->Dport, dport) && Has(p->Sport, sport)
            && Has(p->Dst, BinaryPrimitives.ReverseEndianness(*(ushort*)dst))
            && Has(p->Src, BinaryPrimitives.ReverseEndianness(*(ushort*)src));
    }

    /// <summary>For a frame the one-pass IPv4 check accepted (untagged, IHL 5): must the rules
    /// see it? True unless the pre-filter can tell from the header that none matches (a later
    /// fragment or a short segment: the rules see it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsRules4(AclPrefilter* p, byte* frame, uint seg) =>
        seg < 38 || (*(ushort*)(frame + 20) & 0xFF1F) != 0 || MayMatch4(p, frame + 14);

    /// <summary>The same for a frame the one-pass IPv6 check accepted (untagged): true unless the
    /// pre-filter can tell from the header that no rule matches (a segment too short for the
    /// ports: the rules see it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsRules6(AclPrefilter* p, byte* frame, uint seg) => seg < 58 || MayMatch6(p, frame + 14);

    /// <summary>Could a rule match this key? (false: certainly not). <paramref name="n"/> is the
    /// address length in bytes (4 or 16); fields as <see cref="AclKey"/> lays them out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MayMatch(AclPrefilter* p, byte* key, int n)
    {
        byte* l4 = key + 4 + 2 * n;
        return Has(p->Proto, key[0])
            && Has(p->Dport, BinaryPrimitives.ReverseEndianness(*(ushort*)(l4 + 2)))
            && Has(p->Sport, BinaryPrimitives.ReverseEndianness(*(ushort*)l4))
            && Has(p->Dst, BinaryPrimitives.ReverseEndianness(*(ushort*)(key + 4 + n)))
            && Has(p->Src, BinaryPrimitives.ReverseEndianness(*(ushort*)(key + 4)));
    }
}

/// <summary>A worker's scratch for the classifier: keys and their pointers, results, and which
/// packet of the burst each key belongs to. Native memory, allocated once per worker.</summary>
public sealed unsafe class AclScratch : IDisposable
{
    public const int Burst = 64;

    public readonly byte* Keys4, Keys6;
    public readonly byte** Ptr4, Ptr6;
    public readonly uint* Res4, Res6;
    public readonly ushort* Idx4, Idx6;
    public readonly byte* Verdict;
    /// <summary>The flow tracker's key hashes.</summary>
    public readonly ulong* Hash;

    public AclScratch()
    {
        Keys4 = (byte*)NativeMemory.AlignedAlloc(Burst * AclKey.Size4, 64);
        Keys6 = (byte*)NativeMemory.AlignedAlloc(Burst * AclKey.Size6, 64);
        Ptr4 = (byte**)NativeMemory.Alloc(Burst, (nuint)sizeof(byte*));
        Ptr6 = (byte**)NativeMemory.Alloc(Burst, (nuint)sizeof(byte*));
        Res4 = (uint*)NativeMemory.Alloc(Burst, sizeof(uint));
        Res6 = (uint*)NativeMemory.Alloc(Burst, sizeof(uint));
        Idx4 = (ushort*)NativeMemory.Alloc(Burst, sizeof(ushort));
        Idx6 = (ushort*)NativeMemory.Alloc(Burst, sizeof(ushort));
        Verdict = (byte*)NativeMemory.Alloc(Burst);
        Hash = (ulong*)NativeMemory.Alloc(Burst, sizeof(ulong));
        for (int i = 0; i < Burst; i++)
        {
            Ptr4[i] = Keys4 + i * AclKey.Size4;
            Ptr6[i] = Keys6 + i * AclKey.Size6;
        }
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(Keys4);
        NativeMemory.AlignedFree(Keys6);
        NativeMemory.Free(Ptr4);
        NativeMemory.Free(Ptr6);
        NativeMemory.Free(Res4);
        NativeMemory.Free(Res6);
        NativeMemory.Free(Idx4);
        NativeMemory.Free(Idx6);
        NativeMemory.Free(Verdict);
        NativeMemory.Free(Hash);
    }
}

/// <summary>The classifier node: filters a burst of Ethernet frames in place against a port's
/// rules. IPv4 and IPv6 frames (untagged, headers in the first segment) are keyed and classified
/// in bulk per family; a frame whose first matching rule is <see cref="AclAction.Drop"/> moves to
/// the drop buffer; everything else (no match, pass, reflect, non-IP, malformed: the classifier
/// after this node judges those) stays, in arrival order. Each match counts packets and bytes on
/// the rule's slot. No allocation, no locks.</summary>
public static unsafe class AclFilter
{
    private const byte Keep = 0, Dropped = 1;

    /// <param name="hits">the worker's rule counters: two longs (packets, bytes) per slot</param>
    /// <returns>the frames kept (the first that many of <paramref name="pkts"/>)</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Filter(AclPortRules rules, AclScratch s, void** pkts, uint n, void** drop, ref uint nDrop, long* hits) =>
        Filter(rules, s, pkts, n, drop, ref nDrop, hits, default);

    /// <param name="flows">reflect: a reflect match creates (or refreshes) a flow; a drop match
    /// whose flow a reflect rule created is admitted (the return traffic of a stateful rule)</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Filter(AclPortRules rules, AclScratch s, void** pkts, uint n, void** drop, ref uint nDrop, long* hits, in AclFlows flows)
    {
        uint n4 = 0, n6 = 0;
        bool any4 = rules.V4 is not null, any6 = rules.V6 is not null;
        AclPrefilter* pre4 = rules.Pre4, pre6 = rules.Pre6;
        for (uint i = 0; i < n; i++)
        {
            void* m = pkts[i];
            s.Verdict[i] = Keep;
            byte* f = Mbuf.Data(m);
            uint seg = Mbuf.DataLen(m);
            if (seg < 34)
                continue;
            ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 12));
            if (type == 0x0800 && any4)
            {
                uint ihl = (uint)(f[14] & 0xF) << 2;
                if ((f[14] >> 4) != 4 || ihl < 20 || seg < 14 + ihl)
                    continue;
                // The common case, read straight from the header (no options, first fragment,
                // ports in the segment): most packets a filter list does not name stop here.
                if (pre4 != null && ihl == 20 && seg >= 38 && (*(ushort*)(f + 20) & 0xFF1F) == 0
                    && !AclPrefilter.MayMatch4(pre4, f + 14))
                    continue;
                byte* k = s.Ptr4[n4];
                AclKey.Build4(f + 14, seg - 14, k);
                if (pre4 == null || AclPrefilter.MayMatch(pre4, k, 4))
                    s.Idx4[n4++] = (ushort)i;
            }
            else if (type == 0x86DD && any6 && seg >= 54 && (f[14] >> 4) == 6)
            {
                byte* k = s.Ptr6[n6];
                AclKey.Build6(f + 14, seg - 14, k);
                if (pre6 == null || AclPrefilter.MayMatch(pre6, k, 16))
                    s.Idx6[n6++] = (ushort)i;
            }
        }
        bool dropped = false;
        if (n4 != 0)
        {
            rules.V4!.Classify(s.Ptr4, s.Res4, (int)n4);
            dropped |= Apply(s.Res4, s.Idx4, n4, rules.Action4, rules.Slot4, pkts, s.Verdict, hits, s.Ptr4, false, in flows);
        }
        if (n6 != 0)
        {
            rules.V6!.Classify(s.Ptr6, s.Res6, (int)n6);
            dropped |= Apply(s.Res6, s.Idx6, n6, rules.Action6, rules.Slot6, pkts, s.Verdict, hits, s.Ptr6, true, in flows);
        }
        if (!dropped)
            return n;
        uint kept = 0;
        for (uint i = 0; i < n; i++)
        {
            if (s.Verdict[i] == Dropped)
                drop[nDrop++] = pkts[i];
            else
                pkts[kept++] = pkts[i];
        }
        return kept;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Apply(uint* res, ushort* idx, uint n, AclAction[] actions, int[] slots, void** pkts, byte* verdict, long* hits,
        byte** keys, bool v6, in AclFlows flows)
    {
        bool dropped = false;
        for (uint j = 0; j < n; j++)
        {
            uint rank = res[j];
            if (rank == 0)
                continue;
            int slot = slots[rank - 1];
            uint len = Mbuf.PktLen(pkts[idx[j]]);
            hits[2 * slot]++;
            hits[2 * slot + 1] += len;
            AclAction a = actions[rank - 1];
            if (a == AclAction.Pass)
                continue;
            FlowTable? t = flows.Table;
            FlowEntry* f = null;
            bool fromLo = false;
            if (t is not null)
                f = t.Lookup(keys[j], v6, flows.Zone, flows.Now, a == AclAction.Reflect, out fromLo, out _);
            if (a == AclAction.Reflect)
            {
                if (f != null)
                    f->Flags |= FlowEntry.Reflected;
            }
            else if (f == null || (f->Flags & FlowEntry.Reflected) == 0)
            {
                verdict[idx[j]] = Dropped;
                dropped = true;
                continue;
            }
            // A tracked port's tracker counts the packet itself, after the classifier.
            if (f != null && !flows.Tracked)
                t!.Update(f, fromLo, FlowTracker.TcpFlags(keys[j], v6), len, flows.Now);
        }
        return dropped;
    }
}
