using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Features;

public enum FlowState : byte
{
    New,
    Established,
    FinWait,
    Closed,
    Count,
}

/// <summary>Idle timeouts by state, in seconds: a flow not seen for this long is removed.</summary>
public sealed record FlowTimeouts(uint TcpEstablished = 7200, uint TcpTransitory = 120, uint Udp = 300, uint Icmp = 30, uint Other = 300)
{
    public static readonly FlowTimeouts Default = new();

    /// <summary>The timeout of a flow in milliseconds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Of(byte proto, FlowState s) => 1000 * (proto switch
    {
        6 => s == FlowState.Established ? TcpEstablished : TcpTransitory,
        17 => Udp,
        1 or 58 => Icmp,
        _ => Other,
    });
}

/// <summary>What a new flow gets when the table is full.</summary>
public enum FlowFullPolicy : byte
{
    /// <summary>Forward the packet untracked (counted).</summary>
    Pass,
    /// <summary>Drop the packet (counted).</summary>
    Drop,
}

/// <summary>One flow: the two endpoints in canonical order (the lower address/port first), so
/// both directions find the same entry; which of them opened it; state; counters. 64 bytes: one
/// cache line, so a lookup that finds its flow in its home slot reads one line of the table.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 8, Size = 64)]
public unsafe struct FlowEntry
{
    public fixed byte Lo[16];
    public fixed byte Hi[16];
    public ushort LoPort, HiPort;
    public byte Proto;
    /// <summary>The port whose table this flow is in.</summary>
    public byte Zone;
    public byte Flags;
    public FlowState State;
    /// <summary>Milliseconds since the table's epoch.</summary>
    public uint First, Last;
    public ulong Packets, Bytes;

    public const byte Used = 1, V6 = 2, OrigIsLo = 4, Reflected = 8, FinLo = 16, FinHi = 32;
}

/// <summary>An IPv4 packet's flow key in the table's canonical order (the lower endpoint first),
/// built straight from the headers by <see cref="FlowTable.Key4"/>: what the tracker's IPv4 path
/// hashes and compares, so that it neither builds a classifier key nor orders the endpoints twice.
/// Addresses as loaded from the wire; ports as numbers (ICMP: 0).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
public struct FlowKey4
{
    public uint Lo, Hi;
    public ushort LoPort, HiPort;
    public byte Proto;
    /// <summary>1 if the packet's source is the lower endpoint.</summary>
    public byte FromLo;
    /// <summary>The TCP flags (0 when not TCP or not in the first segment).</summary>
    public byte TcpFlags;
}

/// <summary>A worker's flow table: open addressing with linear probing over cache-line entries in
/// native memory, half as many slots again as flows, removal by shifting the probe sequence back
/// (no tombstones), an incremental expiry sweep. Beside the entries, a tag array: two bytes a
/// slot (0: empty, else 15 bits of the key's hash), 1/32 of the entries' size, so that it mostly
/// stays in the caches. A lookup walks the tags of its probe sequence and reads an entry only
/// where the tag matches: a present flow costs one line of the big array (the right one, which
/// a burst can prefetch once the tags have been read), an absent one none. Written by its worker
/// only, so no locks; the control plane reads entries and counters for show (a row may be a
/// moment stale, or seen twice while it moves).</summary>
public sealed unsafe class FlowTable : IDisposable
{
    /// <summary>Flows the table holds at most (a power of two).</summary>
    public int Capacity { get; }
    /// <summary>Slots: 1.5 x <see cref="Capacity"/>, so a full table is two-thirds occupied and
    /// probe sequences stay short (about 2 entries for a hit, 5 for a miss).</summary>
    public int Slots { get; }
    private readonly uint _slots;
    private FlowEntry* _e;
    private ushort* _tags;
    private readonly nuint _mapped, _tagsMapped;
    private uint _sweep;

    // Counters (written by the worker, read by the control plane).
    private long _count, _inserts, _expiries, _full;
    private readonly long[] _states = new long[(int)FlowState.Count];

    /// <param name="capacity">flows; rounded up to a power of two</param>
    public FlowTable(int capacity)
    {
        if (capacity < 16 || capacity > 1 << 26)
            throw new ArgumentOutOfRangeException(nameof(capacity), "a flow table holds 16 to 67,108,864 flows");
        Capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        Slots = Capacity + Capacity / 2;
        _slots = (uint)Slots;
        // On 2 MiB boundaries and backed by huge pages where the kernel has them: a table of a
        // million flows is 96 MiB read at random. Cleared here, by the control thread that
        // creates it, so that its pages are faulted in now and not under the worker's traffic.
        _e = (FlowEntry*)HugeMemory.AllocZeroed((nuint)Slots * (nuint)sizeof(FlowEntry), out _mapped);
        try
        {
            _tags = (ushort*)HugeMemory.AllocZeroed((nuint)Slots * sizeof(ushort), out _tagsMapped);
        }
        catch
        {
            HugeMemory.Free(_e, _mapped);
            throw;
        }
        Clear();
    }

    /// <summary>Bytes of memory per flow of capacity: its share of the slots and their tags.</summary>
    public static int BytesPerFlow => (sizeof(FlowEntry) + sizeof(ushort)) * 3 / 2;

    public long Count => Volatile.Read(ref _count);
    public long Inserts => Volatile.Read(ref _inserts);
    public long Expiries => Volatile.Read(ref _expiries);
    public long TableFull => Volatile.Read(ref _full);
    public long InState(FlowState s) => Volatile.Read(ref _states[(int)s]);

    /// <summary>Empties the table (by its worker, or while no worker runs).</summary>
    public void Clear()
    {
        NativeMemory.Clear(_e, (nuint)Slots * (nuint)sizeof(FlowEntry));
        NativeMemory.Clear(_tags, (nuint)Slots * sizeof(ushort));
        _sweep = 0;
        Volatile.Write(ref _count, 0);
        for (int s = 0; s < _states.Length; s++)
            Volatile.Write(ref _states[s], 0);
    }

    /// <summary>The entry in a slot (for show: check <see cref="FlowEntry.Used"/>); 0 to <see cref="Slots"/> - 1.</summary>
    public FlowEntry* At(int i) => _e + i;

    /// <summary>Canonical order of a key's endpoints: true if the source is the lower one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SrcIsLo(byte* src, byte* dst, int n, ushort sport, ushort dport)
    {
        // Addresses compared as big-endian numbers: the byte order of the wire.
        if (n == 4)
        {
            uint a = BinaryPrimitives.ReverseEndianness(*(uint*)src), b = BinaryPrimitives.ReverseEndianness(*(uint*)dst);
            return a < b || (a == b && sport <= dport);
        }
        ulong a0 = BinaryPrimitives.ReverseEndianness(*(ulong*)src), b0 = BinaryPrimitives.ReverseEndianness(*(ulong*)dst);
        if (a0 != b0)
            return a0 < b0;
        ulong a1 = BinaryPrimitives.ReverseEndianness(*(ulong*)(src + 8)), b1 = BinaryPrimitives.ReverseEndianness(*(ulong*)(dst + 8));
        return a1 < b1 || (a1 == b1 && sport <= dport);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Same(byte* a, byte* b, int n) =>
        n == 4 ? *(uint*)a == *(uint*)b : *(ulong*)a == *(ulong*)b && *(ulong*)(a + 8) == *(ulong*)(b + 8);

    /// <summary>The hash of a canonical key: its high half picks the home slot (<see cref="SlotOf"/>),
    /// its low bits the tag (<see cref="TagOf"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Hash(byte* lo, byte* hi, int n, uint ports, byte proto, byte zone)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ ((ulong)ports << 16) ^ ((ulong)proto << 8) ^ zone;
        for (int i = 0; i < n; i += 4)
        {
            h = (h ^ *(uint*)(lo + i)) * 0xFF51AFD7ED558CCDUL;
            h = (h ^ *(uint*)(hi + i)) * 0xC4CEB9FE1A85EC53UL;
        }
        return Finish(h);
    }

    /// <summary>The same hash as <see cref="Hash"/> for a 4-byte address pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash4(FlowKey4* k, byte zone)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ ((ulong)((uint)k->LoPort << 16 | k->HiPort) << 16) ^ ((ulong)k->Proto << 8) ^ zone;
        h = (h ^ k->Lo) * 0xFF51AFD7ED558CCDUL;
        h = (h ^ k->Hi) * 0xC4CEB9FE1A85EC53UL;
        return Finish(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Finish(ulong h)
    {
        // A full 64-bit finaliser: traffic varies few bits of the key (one address's last
        // bytes, one port), and without it such keys crowded into a fraction of the slots
        // (65,536 sequential destinations: 15 probes a lookup instead of 2).
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>The home slot of a hash: its high half mapped onto the slots by a multiply (the
    /// slot count is not a power of two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint SlotOf(ulong hash) => (uint)(((hash >> 32) * _slots) >> 32);

    /// <summary>The tag of a hash: never 0, which marks an empty slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort TagOf(ulong hash) => (ushort)(hash | 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong HashOf(FlowEntry* e) =>
        Hash(e->Lo, e->Hi, (e->Flags & FlowEntry.V6) != 0 ? 16 : 4, (uint)e->LoPort << 16 | e->HiPort, e->Proto, e->Zone);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint HomeOf(FlowEntry* e) => SlotOf(HashOf(e));

    /// <summary>The mean number of slots a lookup of a present flow reads (1: every flow in its
    /// home slot). For tests and diagnostics; reads the whole table.</summary>
    public double MeanProbeLength()
    {
        long flows = 0, probes = 0;
        for (uint i = 0; i < _slots; i++)
        {
            FlowEntry* e = _e + i;
            if ((e->Flags & FlowEntry.Used) == 0)
                continue;
            uint home = HomeOf(e);
            probes += (i >= home ? i - home : i + _slots - home) + 1;
            flows++;
        }
        return flows == 0 ? 0 : (double)probes / flows;
    }

    /// <summary>Finds (or, with <paramref name="create"/>, inserts) the flow of a classifier key
    /// (<see cref="AclKey"/> layout) in <paramref name="zone"/>. Returns null if absent and not
    /// created (or the table is full: counted); <paramref name="fromLo"/> says which endpoint sent
    /// this packet. The pointer is good until the next <see cref="Sweep"/> or <see cref="Clear"/>
    /// (a removal may move entries).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry* Lookup(byte* key, bool v6, byte zone, uint now, bool create, out bool fromLo, out bool created)
    {
        ulong h = HashKey(key, v6, zone);
        return Lookup(key, v6, zone, now, create, h, SlotOf(h), out fromLo, out created);
    }

    /// <summary>The hash of a classifier key (what <see cref="PrefetchTags"/>, <see cref="Scan"/>
    /// and the bulk lookups take): the same for both directions of a flow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong HashKey(byte* key, bool v6, byte zone)
    {
        int n = v6 ? 16 : 4;
        byte proto = key[0];
        byte* src = key + 4, dst = key + 4 + n;
        byte* l4 = key + 4 + 2 * n;
        ushort sport = (ushort)(l4[0] << 8 | l4[1]), dport = (ushort)(l4[2] << 8 | l4[3]);
        if (proto is 1 or 58)
            sport = dport = 0;
        bool fromLo = SrcIsLo(src, dst, n, sport, dport);
        byte* lo = fromLo ? src : dst, hi = fromLo ? dst : src;
        ushort loPort = fromLo ? sport : dport, hiPort = fromLo ? dport : sport;
        return Hash(lo, hi, n, (uint)loPort << 16 | hiPort, proto, zone);
    }

    /// <summary>Starts loading the tags from a home slot on (a burst hashes every key first and
    /// prefetches, so that the cache misses overlap instead of following one another): the line
    /// of the home slot's tag and the one eight slots on, where a probe sequence that starts near
    /// the end of a line continues.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchTags(uint home)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(_tags + home);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(_tags + (home + 8 < _slots ? home + 8 : 0));
        }
    }

    /// <summary>The first slot from <paramref name="home"/> on whose tag is the hash's or empty,
    /// with its entry's line prefetched: where the flow is (unless another flow shares the tag,
    /// which <see cref="Lookup(byte*, bool, byte, uint, bool, ulong, uint, out bool, out bool)"/>
    /// then walks past) or would be inserted.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Scan(uint home, ulong hash)
    {
        ushort tag = TagOf(hash);
        uint i = home;
        ushort t;
        while ((t = _tags[i]) != 0 && t != tag)
        {
            if (++i == _slots)
                i = 0;
        }
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(_e + i);
        return i;
    }

    /// <param name="hash">the key's <see cref="HashKey"/></param>
    /// <param name="from">where to start: the home slot, or a slot <see cref="Scan"/> returned
    /// (the slots before it hold other flows, and inserts never change that)</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry* Lookup(byte* key, bool v6, byte zone, uint now, bool create, ulong hash, uint from, out bool fromLo, out bool created)
    {
        int n = v6 ? 16 : 4;
        byte proto = key[0];
        byte* src = key + 4, dst = key + 4 + n;
        byte* l4 = key + 4 + 2 * n;
        ushort sport = (ushort)(l4[0] << 8 | l4[1]), dport = (ushort)(l4[2] << 8 | l4[3]);
        if (proto is 1 or 58)
        {
            // ICMP: the "ports" are type and code, which differ between request and reply; the
            // flow is the address pair (echo id aside).
            sport = dport = 0;
        }
        fromLo = SrcIsLo(src, dst, n, sport, dport);
        byte* lo = fromLo ? src : dst, hi = fromLo ? dst : src;
        ushort loPort = fromLo ? sport : dport, hiPort = fromLo ? dport : sport;
        byte fam = v6 ? FlowEntry.V6 : (byte)0;
        ushort tag = TagOf(hash);
        created = false;
        // The probe sequence ends at the first empty slot (removal keeps it so): the flow is
        // in it, or absent. The table is never full of slots (at most two-thirds are used).
        // Only a slot with the key's tag has its entry read.
        uint i = from;
        FlowEntry* e;
        while (true)
        {
            ushort t = _tags[i];
            if (t == 0)
                break;
            if (t == tag)
            {
                e = _e + i;
                if (e->Proto == proto && e->Zone == zone && e->LoPort == loPort && e->HiPort == hiPort && (e->Flags & FlowEntry.V6) == fam
                    && Same(e->Lo, lo, n) && Same(e->Hi, hi, n))
                    return e;
            }
            if (++i == _slots)
                i = 0;
        }
        if (!create)
            return null;
        e = Insert(i, tag, lo, hi, n, loPort, hiPort, proto, zone, (byte)(fam | (fromLo ? FlowEntry.OrigIsLo : 0)), now);
        created = e != null;
        return e;
    }

    /// <summary>A new flow in empty slot <paramref name="i"/> (where its probe sequence ended);
    /// null if the table holds <see cref="Capacity"/> flows already (counted). Not inlined: the
    /// lookups' loops stay small, and a new flow is the exception in a busy table.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private FlowEntry* Insert(uint i, ushort tag, byte* lo, byte* hi, int n, ushort loPort, ushort hiPort, byte proto, byte zone, byte flags, uint now)
    {
        if (_count >= Capacity)
        {
            _full++;
            return null;
        }
        FlowEntry* e = _e + i;
        Unsafe.InitBlockUnaligned(e, 0, (uint)sizeof(FlowEntry));
        Unsafe.CopyBlockUnaligned(e->Lo, lo, (uint)n);
        Unsafe.CopyBlockUnaligned(e->Hi, hi, (uint)n);
        e->LoPort = loPort;
        e->HiPort = hiPort;
        e->Proto = proto;
        e->Zone = zone;
        e->Flags = (byte)(FlowEntry.Used | flags);
        e->State = FlowState.New;
        e->First = e->Last = now;
        _tags[i] = tag;
        _count++;
        _inserts++;
        _states[(int)FlowState.New]++;
        return e;
    }

    /// <summary>The flow key of an IPv4 header whose version, IHL and length the caller checked
    /// (<paramref name="segLen"/>: bytes readable from <paramref name="ip"/>), with the same
    /// fields as the classifier key gives <see cref="Lookup(byte*, bool, byte, uint, bool, out bool, out bool)"/>:
    /// ports of TCP, UDP and SCTP when the first 4 bytes of the L4 header are in the first
    /// segment of a first fragment, else 0; ICMP's type and code are not part of a flow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Key4(byte* ip, uint segLen, FlowKey4* k)
    {
        uint ihl = (uint)(ip[0] & 0xF) << 2;
        byte proto = ip[9];
        uint src = *(uint*)(ip + 12), dst = *(uint*)(ip + 16);
        uint avail = (*(ushort*)(ip + 6) & 0xFF1F) != 0 ? 0 : segLen - ihl; // a later fragment has no L4 header
        byte* l4 = ip + ihl;
        ushort sport = 0, dport = 0;
        byte flags = 0;
        if (proto is 6 or 17 or 132 && avail >= 4)
        {
            sport = BinaryPrimitives.ReverseEndianness(*(ushort*)l4);
            dport = BinaryPrimitives.ReverseEndianness(*(ushort*)(l4 + 2));
            if (proto == 6 && avail >= 14)
                flags = l4[13];
        }
        uint a = BinaryPrimitives.ReverseEndianness(src), b = BinaryPrimitives.ReverseEndianness(dst);
        bool fromLo = a < b || (a == b && sport <= dport);
        k->Lo = fromLo ? src : dst;
        k->Hi = fromLo ? dst : src;
        k->LoPort = fromLo ? sport : dport;
        k->HiPort = fromLo ? dport : sport;
        k->Proto = proto;
        k->FromLo = fromLo ? (byte)1 : (byte)0;
        k->TcpFlags = flags;
    }

    /// <summary><see cref="Lookup(byte*, bool, byte, uint, bool, ulong, uint, out bool, out bool)"/>
    /// for an IPv4 key from <see cref="Key4"/> and its <see cref="Hash4"/>: always creates.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry* Lookup4(FlowKey4* k, byte zone, uint now, ulong hash, uint from)
    {
        ushort tag = TagOf(hash);
        // Port pair, protocol and zone as the entry holds them from offset 32, and the address
        // family bit of its flags: one 8-byte compare with the V6 flag masked in.
        ulong want = k->LoPort | (ulong)k->HiPort << 16 | (ulong)k->Proto << 32 | (ulong)zone << 40;
        const ulong Mask = 0xFFFF_FFFF_FFFFUL | (ulong)FlowEntry.V6 << 48;
        uint i = from;
        while (true)
        {
            ushort t = _tags[i];
            if (t == 0)
                break;
            if (t == tag)
            {
                FlowEntry* e = _e + i;
                if ((*(ulong*)&e->LoPort & Mask) == want && *(uint*)e->Lo == k->Lo && *(uint*)e->Hi == k->Hi)
                    return e;
            }
            if (++i == _slots)
                i = 0;
        }
        return Insert(i, tag, (byte*)&k->Lo, (byte*)&k->Hi, 4, k->LoPort, k->HiPort, k->Proto, zone, k->FromLo != 0 ? FlowEntry.OrigIsLo : (byte)0, now);
    }

    /// <summary>Counts a packet on its flow and moves the state on: TCP by its flags (a reply
    /// establishes, FIN from one side is FIN_WAIT, from both or an RST is CLOSED), anything else
    /// established by its first reply.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Update(FlowEntry* f, bool fromLo, byte tcpFlags, uint bytes, uint now)
    {
        f->Packets++;
        f->Bytes += bytes;
        f->Last = now;
        FlowState s = f->State, next = s;
        bool reply = fromLo != ((f->Flags & FlowEntry.OrigIsLo) != 0);
        if (f->Proto == 6)
        {
            if ((tcpFlags & 0x04) != 0)
            {
                next = FlowState.Closed; // RST
            }
            else if ((tcpFlags & 0x01) != 0)
            {
                f->Flags |= fromLo ? FlowEntry.FinLo : FlowEntry.FinHi;
                next = (f->Flags & (FlowEntry.FinLo | FlowEntry.FinHi)) == (FlowEntry.FinLo | FlowEntry.FinHi) ? FlowState.Closed : FlowState.FinWait;
            }
            else if (s == FlowState.New && reply)
            {
                next = FlowState.Established;
            }
        }
        else if (s == FlowState.New && reply)
        {
            next = FlowState.Established;
        }
        if (next != s && s != FlowState.Closed)
        {
            f->State = next;
            _states[(int)s]--;
            _states[(int)next]++;
        }
    }

    /// <summary>Looks at up to <paramref name="budget"/> slots from where the last sweep stopped
    /// and removes flows idle past their state's timeout or in a zone no longer tracked; returns
    /// how many it removed. Bounded work per call, so a worker's loop never stalls. A slot that
    /// was emptied is looked at again: the removal may have moved a later flow into it.</summary>
    public int Sweep(uint now, int budget, FlowTimeouts t, bool[]? live = null)
    {
        int removed = 0;
        for (int k = 0; k < budget; k++)
        {
            uint i = _sweep;
            FlowEntry* e = _e + i;
            if ((e->Flags & FlowEntry.Used) != 0)
            {
                uint idle = now - e->Last;
                uint limit = e->State == FlowState.Closed ? Math.Min(10_000u, t.Of(e->Proto, e->State)) : t.Of(e->Proto, e->State);
                if (idle > limit || (live is not null && !live[e->Zone]))
                {
                    Remove(i);
                    removed++;
                    continue;
                }
            }
            _sweep = i + 1 == _slots ? 0 : i + 1;
        }
        _expiries += removed;
        return removed;
    }

    /// <summary>Empties slot <paramref name="hole"/> and moves later flows of the probe run back
    /// so that every flow stays reachable from its home slot without passing an empty one.</summary>
    private void Remove(uint hole)
    {
        FlowEntry* e = _e + hole;
        _states[(int)e->State]--;
        _count--;
        uint j = hole;
        while (true)
        {
            if (++j == _slots)
                j = 0;
            if (_tags[j] == 0)
                break;
            FlowEntry* c = _e + j;
            uint home = HomeOf(c);
            // c may fill the hole unless its home lies cyclically in (hole, j]: then the
            // hole is before its home and moving it there would hide it.
            bool stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (stays)
                continue;
            *(_e + hole) = *c;
            _tags[hole] = _tags[j];
            hole = j;
        }
        (_e + hole)->Flags = 0;
        _tags[hole] = 0;
    }

    public void Dispose()
    {
        if (_e != null)
        {
            HugeMemory.Free(_e, _mapped);
            HugeMemory.Free(_tags, _tagsMapped);
            _e = null;
            _tags = null;
        }
    }
}
