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
        // and updates. Key i is in slot i of the scratch (room for IPv6); Verdict[i] says what it
        // is (0: not IP, 4 or 6), Hash[i] holds its hash and Res6[i] the slot the walk found.
        byte* keys = s.Keys6;
        ulong* hash = s.Hash;
        for (uint i = 0; i < n; i++)
        {
            byte* key = keys + i * AclKey.Size6;
            if (!KeyOf(pkts[i], key, out bool v6))
            {
                s.Verdict[i] = 0;
                continue;
            }
            s.Verdict[i] = (byte)(v6 ? 6 : 4);
            ulong h = t.HashKey(key, v6, zone);
            hash[i] = h;
            uint home = t.SlotOf(h);
            s.Res6[i] = home;
            t.PrefetchTags(home);
        }
        for (uint i = 0; i < n; i++)
        {
            if (s.Verdict[i] != 0)
                s.Res6[i] = t.Scan(s.Res6[i], hash[i]);
        }
        uint kept = 0;
        for (uint i = 0; i < n; i++)
        {
            void* m = pkts[i];
            if (s.Verdict[i] == 0)
            {
                pkts[kept++] = m;
                continue;
            }
            bool v6 = s.Verdict[i] == 6;
            byte* key = keys + i * AclKey.Size6;
            FlowEntry* f = t.Lookup(key, v6, zone, now, true, hash[i], s.Res6[i], out bool fromLo, out _);
            if (f == null)
            {
                if (policy == FlowFullPolicy.Drop)
                    drop[nDrop++] = m;
                else
                    pkts[kept++] = m;
                continue;
            }
            t.Update(f, fromLo, TcpFlags(key, v6), Mbuf.PktLen(m), now);
            pkts[kept++] = m;
        }
        return kept;
    }

    /// <summary>The TCP flags of a key (0 when not TCP or not in the first segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte TcpFlags(byte* key, bool v6) => key[0] == 6 ? key[4 + 2 * (v6 ? 16 : 4) + 4] : (byte)0;

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
            uint ihl = (uint)(f[14] & 0xF) << 2;
            if ((f[14] >> 4) != 4 || ihl < 20 || seg < 14 + ihl)
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
