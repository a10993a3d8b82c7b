using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DpdkSharp;

namespace LinuxCp.Dataplane.Features;

/// <summary>The rules of one port and direction as the workers use them: a matcher per family
/// (null: no rules of that family) and, per match rank, the rule's action and counter slot.
/// Immutable; replaced whole when rules change and freed after a grace period.</summary>
public sealed class AclPortRules : IDisposable
{
    public IAclMatcher? V4 { get; }
    public IAclMatcher? V6 { get; }

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
    }

    public int Count => Rules4.Length + Rules6.Length;

    public void Dispose()
    {
        V4?.Dispose();
        V6?.Dispose();
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
    public static uint Filter(AclPortRules rules, AclScratch s, void** pkts, uint n, void** drop, ref uint nDrop, long* hits)
    {
        uint n4 = 0, n6 = 0;
        bool any4 = rules.V4 is not null, any6 = rules.V6 is not null;
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
                AclKey.Build4(f + 14, seg - 14, s.Ptr4[n4]);
                s.Idx4[n4++] = (ushort)i;
            }
            else if (type == 0x86DD && any6 && seg >= 54 && (f[14] >> 4) == 6)
            {
                AclKey.Build6(f + 14, seg - 14, s.Ptr6[n6]);
                s.Idx6[n6++] = (ushort)i;
            }
        }
        bool dropped = false;
        if (n4 != 0)
        {
            rules.V4!.Classify(s.Ptr4, s.Res4, (int)n4);
            dropped |= Apply(s.Res4, s.Idx4, n4, rules.Action4, rules.Slot4, pkts, s.Verdict, hits);
        }
        if (n6 != 0)
        {
            rules.V6!.Classify(s.Ptr6, s.Res6, (int)n6);
            dropped |= Apply(s.Res6, s.Idx6, n6, rules.Action6, rules.Slot6, pkts, s.Verdict, hits);
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
    private static bool Apply(uint* res, ushort* idx, uint n, AclAction[] actions, int[] slots, void** pkts, byte* verdict, long* hits)
    {
        bool dropped = false;
        for (uint j = 0; j < n; j++)
        {
            uint rank = res[j];
            if (rank == 0)
                continue;
            int slot = slots[rank - 1];
            hits[2 * slot]++;
            hits[2 * slot + 1] += Mbuf.PktLen(pkts[idx[j]]);
            if (actions[rank - 1] == AclAction.Drop)
            {
                verdict[idx[j]] = Dropped;
                dropped = true;
            }
        }
        return dropped;
    }
}
