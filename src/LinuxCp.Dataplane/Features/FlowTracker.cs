using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DpdkSharp;

namespace LinuxCp.Dataplane.Features;

/// <summary>The flow tracker's settings as the workers read them: which ports track every flow
/// (<c>flow enable</c>), which ports' flows stay alive (tracked, or with reflect rules), the
/// timeouts and the table-full policy. Immutable; part of the <see cref="FeatureSnapshot"/>.</summary>
public sealed class FlowSettings
{
    public static readonly FlowSettings Off = new(new bool[Interfaces.Max], new bool[Interfaces.Max], FlowTimeouts.Default, FlowFullPolicy.Pass);

    public readonly bool[] Tracked;
    public readonly bool[] Live;
    public readonly FlowTimeouts Timeouts;
    public readonly FlowFullPolicy FullPolicy;

    public FlowSettings(bool[] tracked, bool[] live, FlowTimeouts timeouts, FlowFullPolicy fullPolicy)
    {
        Tracked = tracked;
        Live = live;
        Timeouts = timeouts;
        FullPolicy = fullPolicy;
    }
}

/// <summary>What the classifier needs to handle reflect rules on a burst: the worker's flow table
/// (null: none yet), the port, the time, and whether the port's tracker counts the packets itself.</summary>
public readonly unsafe struct AclFlows(FlowTable? table, byte zone, uint now, bool tracked)
{
    public readonly FlowTable? Table = table;
    public readonly byte Zone = zone;
    public readonly uint Now = now;
    public readonly bool Tracked = tracked;
}

/// <summary>The tracker node: every IPv4/IPv6 packet of a burst on a tracked port finds or creates
/// its flow and moves its state on. A new flow that finds the table full is counted and, by the
/// policy, passed untracked or dropped. No allocation, no locks (the table is the worker's).</summary>
public static unsafe class FlowTracker
{
    /// <returns>the packets kept (the first that many of <paramref name="pkts"/>); dropped ones
    /// (table full, policy drop) go to <paramref name="drop"/></returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Track(FlowTable t, AclScratch s, byte zone, void** pkts, uint n, uint now, FlowFullPolicy policy, void** drop, ref uint nDrop)
    {
        // Three passes over the burst, so that the table's cache misses overlap instead of
        // following one another: key and hash of every packet (prefetching its tags), then the
        // tag walk to the one slot whose entry is read (prefetching that entry), then the lookups
        // and updates. Key i is in slot i of the scratch (room for IPv6): an IPv4 packet's is a
        // FlowKey4 in the table's order, built once from its headers; an IPv6 packet's is a
        // classifier key, through the general path (not inlined: the IPv4 loop keeps its
        // registers). Verdict[i] says which (0: neither), Hash[i] holds the hash and Res6[i]
        // the slot the walk found.
        byte* keys = s.Keys6;
        ulong* hash = s.Hash;
        uint* slot = s.Res6;
        byte* verdict = s.Verdict;
        for (uint i = 0; i < n; i++)
        {
            byte* key = keys + i * AclKey.Size6;
            byte* f = Mbuf.Data(pkts[i]);
            uint seg = Mbuf.DataLen(pkts[i]);
            ulong h;
            if (IsIpv4(f, seg))
            {
                FlowTable.Key4(f + 14, seg - 14, (FlowKey4*)key);
                h = FlowTable.Hash4((FlowKey4*)key, zone);
                verdict[i] = 4;
            }
            else if (Key6(t, pkts[i], key, zone, out h))
            {
                verdict[i] = 6;
            }
            else
            {
                verdict[i] = 0;
                continue;
            }
            hash[i] = h;
            uint home = t.SlotOf(h);
            slot[i] = home;
            t.PrefetchTags(home);
        }
        for (uint i = 0; i < n; i++)
        {
            if (verdict[i] != 0)
                slot[i] = t.Scan(slot[i], hash[i]);
        }
        uint kept = 0;
        for (uint i = 0; i < n; i++)
        {
            void* m = pkts[i];
            byte v = verdict[i];
            if (v != 0)
            {
                byte* key = keys + i * AclKey.Size6;
                FlowEntry* f;
                bool fromLo;
                byte flags;
                if (v == 4)
                {
                    var k = (FlowKey4*)key;
                    f = t.Lookup4(k, zone, now, hash[i], slot[i]);
                    fromLo = k->FromLo != 0;
                    flags = k->TcpFlags;
                }
                else
                {
                    f = Lookup6(t, key, zone, now, hash[i], slot[i], out fromLo);
                    flags = TcpFlags(key, true);
                }
                if (f == null)
                {
                    if (policy == FlowFullPolicy.Drop)
                    {
                        drop[nDrop++] = m;
                        continue;
                    }
                }
                else
                {
                    t.Update(f, fromLo, flags, Mbuf.PktLen(m), now);
                }
            }
            pkts[kept++] = m;
        }
        return kept;
    }

    /// <summary>An IPv6 frame's classifier key and its flow hash; false if it is not IPv6.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool Key6(FlowTable t, void* m, byte* key, byte zone, out ulong hash)
    {
        hash = 0;
        if (!KeyOf(m, key, out bool v6) || !v6)
            return false;
        hash = t.HashKey(key, true, zone);
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FlowEntry* Lookup6(FlowTable t, byte* key, byte zone, uint now, ulong hash, uint from, out bool fromLo) =>
        t.Lookup(key, true, zone, now, true, hash, from, out fromLo, out _);

    /// <summary>The TCP flags of a key (0 when not TCP or not in the first segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte TcpFlags(byte* key, bool v6) => key[0] == 6 ? key[4 + 2 * (v6 ? 16 : 4) + 4] : (byte)0;

    /// <summary>An untagged IPv4 frame whose header (version, IHL, options) is in its first
    /// <paramref name="seg"/> bytes: what the tracker and the classifier key take as IPv4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsIpv4(byte* f, uint seg) =>
        seg >= 34 && *(ushort*)(f + 12) == 0x0008 && (f[14] >> 4) == 4 && (f[14] & 0xF) >= 5 && seg >= 14 + ((uint)(f[14] & 0xF) << 2);

    /// <summary>Builds the classifier key of an untagged IPv4/IPv6 frame; false for anything else.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool KeyOf(void* m, byte* key, out bool v6)
    {
        byte* f = Mbuf.Data(m);
        uint seg = Mbuf.DataLen(m);
        v6 = false;
        if (seg < 34)
            return false;
        ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 12));
        if (type == 0x0800)
        {
            if (!IsIpv4(f, seg))
                return false;
            AclKey.Build4(f + 14, seg - 14, key);
            return true;
        }
        if (type == 0x86DD && seg >= 54 && (f[14] >> 4) == 6)
        {
            AclKey.Build6(f + 14, seg - 14, key);
            v6 = true;
            return true;
        }
        return false;
    }
}
