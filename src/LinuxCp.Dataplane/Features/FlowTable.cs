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
/// both directions find the same entry; which of them opened it; state; counters. 72 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 8, Size = 72)]
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
    /// <summary>Next entry in the bucket chain (index + 1; 0: none), or in the free list.</summary>
    public uint Next;
    /// <summary>Milliseconds since the table's epoch.</summary>
    public uint First, Last;
    public ulong Packets, Bytes;

    public const byte Used = 1, V6 = 2, OrigIsLo = 4, Reflected = 8, FinLo = 16, FinHi = 32;
}

/// <summary>A worker's flow table: chained hash buckets over a fixed array of entries in native
/// memory, a free list, an incremental expiry sweep. Written by its worker only, so no locks; the
/// control plane reads entries and counters for show (a row may be a moment stale).</summary>
public sealed unsafe class FlowTable : IDisposable
{
    public int Capacity { get; }
    private readonly uint _mask;
    private FlowEntry* _e;
    private uint* _buckets;
    private uint _free; // index + 1 of the first free entry
    private uint _sweep;

    // Counters (written by the worker, read by the control plane).
    private long _count, _inserts, _expiries, _full;
    private readonly long[] _states = new long[(int)FlowState.Count];

    /// <param name="capacity">entries; rounded up to a power of two (the bucket count)</param>
    public FlowTable(int capacity)
    {
        if (capacity < 16 || capacity > 1 << 26)
            throw new ArgumentOutOfRangeException(nameof(capacity), "a flow table holds 16 to 67,108,864 flows");
        Capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        _mask = (uint)Capacity - 1;
        _e = (FlowEntry*)Allocate((nuint)Capacity * (nuint)sizeof(FlowEntry));
        _buckets = (uint*)Allocate((nuint)Capacity * sizeof(uint));
        NativeMemory.Clear(_buckets, (nuint)Capacity * sizeof(uint));
        Clear();
    }

    /// <summary>A table's array: on 2 MiB boundaries and backed by huge pages where the kernel
    /// has them (a table of a million flows is 76 MiB read at random).</summary>
    private static void* Allocate(nuint bytes)
    {
        if (bytes < HugeMemory.HugePage)
            return NativeMemory.AlignedAlloc(bytes, 64);
        nuint rounded = (bytes + HugeMemory.HugePage - 1) & ~(HugeMemory.HugePage - 1);
        void* p = NativeMemory.AlignedAlloc(rounded, HugeMemory.HugePage);
        HugeMemory.Advise(p, rounded);
        return p;
    }

    /// <summary>Bytes of memory per flow: the entry and its bucket.</summary>
    public static int BytesPerFlow => sizeof(FlowEntry) + sizeof(uint);

    public long Count => Volatile.Read(ref _count);
    public long Inserts => Volatile.Read(ref _inserts);
    public long Expiries => Volatile.Read(ref _expiries);
    public long TableFull => Volatile.Read(ref _full);
    public long InState(FlowState s) => Volatile.Read(ref _states[(int)s]);

    /// <summary>Empties the table (by its worker, or while no worker runs).</summary>
    public void Clear()
    {
        NativeMemory.Clear(_buckets, (nuint)Capacity * sizeof(uint));
        for (uint i = 0; i < Capacity; i++)
        {
            _e[i].Flags = 0;
            _e[i].Next = i + 2 <= Capacity ? i + 2 : 0;
        }
        _free = 1;
        _sweep = 0;
        Volatile.Write(ref _count, 0);
        for (int s = 0; s < _states.Length; s++)
            Volatile.Write(ref _states[s], 0);
    }

    /// <summary>The entry at an index (for show: check <see cref="FlowEntry.Used"/>).</summary>
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(byte* lo, byte* hi, int n, uint ports, byte proto, byte zone)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ ((ulong)ports << 16) ^ ((ulong)proto << 8) ^ zone;
        for (int i = 0; i < n; i += 4)
        {
            h = (h ^ *(uint*)(lo + i)) * 0xFF51AFD7ED558CCDUL;
            h = (h ^ *(uint*)(hi + i)) * 0xC4CEB9FE1A85EC53UL;
        }
        return (uint)(h ^ (h >> 29));
    }

    /// <summary>Finds (or, with <paramref name="create"/>, inserts) the flow of a classifier key
    /// (<see cref="AclKey"/> layout) in <paramref name="zone"/>. Returns null if absent and not
    /// created (or the table is full: counted); <paramref name="fromLo"/> says which endpoint sent
    /// this packet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry* Lookup(byte* key, bool v6, byte zone, uint now, bool create, out bool fromLo, out bool created) =>
        Lookup(key, v6, zone, now, create, Bucket(key, v6, zone), out fromLo, out created);

    /// <summary>The bucket a key falls in (what <see cref="Prefetch"/> and the bulk lookups take).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Bucket(byte* key, bool v6, byte zone)
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
        return Hash(lo, hi, n, (uint)loPort << 16 | hiPort, proto, zone) & _mask;
    }

    /// <summary>Starts loading a bucket's head (a burst hashes every key first and prefetches,
    /// so the table's cache misses overlap instead of following one another).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchBucket(uint bucket)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(_buckets + bucket);
    }

    /// <summary>Starts loading the first entry of a bucket's chain (after <see cref="PrefetchBucket"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchHead(uint bucket)
    {
        uint i = _buckets[bucket];
        if (i != 0 && System.Runtime.Intrinsics.X86.Sse.IsSupported)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(_e + (i - 1));
    }

    /// <param name="bucket">the key's <see cref="Bucket"/></param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry* Lookup(byte* key, bool v6, byte zone, uint now, bool create, uint bucket, out bool fromLo, out bool created)
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
        uint b = bucket;
        byte fam = v6 ? FlowEntry.V6 : (byte)0;
        created = false;
        for (uint i = _buckets[b]; i != 0;)
        {
            FlowEntry* e = _e + (i - 1);
            if (e->Proto == proto && e->Zone == zone && e->LoPort == loPort && e->HiPort == hiPort && (e->Flags & FlowEntry.V6) == fam
                && Same(e->Lo, lo, n) && Same(e->Hi, hi, n))
                return e;
            i = e->Next;
        }
        if (!create)
            return null;
        if (_free == 0)
        {
            _full++;
            return null;
        }
        uint idx = _free;
        FlowEntry* f = _e + (idx - 1);
        _free = f->Next;
        Unsafe.InitBlockUnaligned(f, 0, (uint)sizeof(FlowEntry));
        Unsafe.CopyBlockUnaligned(f->Lo, lo, (uint)n);
        Unsafe.CopyBlockUnaligned(f->Hi, hi, (uint)n);
        f->LoPort = loPort;
        f->HiPort = hiPort;
        f->Proto = proto;
        f->Zone = zone;
        f->Flags = (byte)(FlowEntry.Used | fam | (fromLo ? FlowEntry.OrigIsLo : 0));
        f->State = FlowState.New;
        f->First = f->Last = now;
        f->Next = _buckets[b];
        _buckets[b] = idx;
        _count++;
        _inserts++;
        _states[(int)FlowState.New]++;
        created = true;
        return f;
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

    /// <summary>Looks at up to <paramref name="budget"/> entries from where the last sweep
    /// stopped and removes those idle past their state's timeout or in a zone no longer tracked;
    /// returns how many it removed. Bounded work per call, so a worker's loop never stalls.</summary>
    public int Sweep(uint now, int budget, FlowTimeouts t, bool[]? live = null)
    {
        int removed = 0;
        for (int k = 0; k < budget; k++)
        {
            uint i = _sweep;
            _sweep = (_sweep + 1) & _mask;
            FlowEntry* e = _e + i;
            if ((e->Flags & FlowEntry.Used) == 0)
                continue;
            uint idle = now - e->Last;
            uint limit = e->State == FlowState.Closed ? Math.Min(10_000u, t.Of(e->Proto, e->State)) : t.Of(e->Proto, e->State);
            if (idle > limit || (live is not null && !live[e->Zone]))
            {
                Remove(i);
                removed++;
            }
        }
        _expiries += removed;
        return removed;
    }

    private void Remove(uint i)
    {
        FlowEntry* e = _e + i;
        int n = (e->Flags & FlowEntry.V6) != 0 ? 16 : 4;
        uint b = Hash(e->Lo, e->Hi, n, (uint)e->LoPort << 16 | e->HiPort, e->Proto, e->Zone) & _mask;
        uint* link = _buckets + b;
        while (*link != 0 && *link != i + 1)
            link = &_e[*link - 1].Next;
        if (*link == i + 1)
            *link = e->Next;
        _states[(int)e->State]--;
        e->Flags = 0;
        e->Next = _free;
        _free = i + 1;
        _count--;
    }

    public void Dispose()
    {
        if (_e != null)
        {
            NativeMemory.AlignedFree(_e);
            NativeMemory.AlignedFree(_buckets);
            _e = null;
            _buckets = null;
        }
    }
}
