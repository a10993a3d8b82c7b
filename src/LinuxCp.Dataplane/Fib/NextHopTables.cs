using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Fib;

/// <summary>What a FIB next-hop value (a group id) means.</summary>
public enum GroupKind : byte
{
    /// <summary>No route: punt, Linux answers (ICMP unreachable) or routes it itself.</summary>
    NoRoute,
    /// <summary>A local address of the router: punt.</summary>
    Local,
    /// <summary>Blackhole route: drop.</summary>
    Blackhole,
    /// <summary>Unreachable/prohibit route: punt so Linux sends the right ICMP.</summary>
    Unreachable,
    /// <summary>Route whose next hops are not on a mirror: punt, Linux forwards it.</summary>
    PuntToLinux,
    /// <summary>Connected prefix, destination not (yet) a known neighbour: punt so Linux resolves it.</summary>
    Glean,
    /// <summary>Forward through one of the group's paths.</summary>
    Forward,
}

/// <summary>What a path does with a packet.</summary>
public enum PathKind : byte
{
    /// <summary>Next hop unresolved or egress down: punt.</summary>
    Glean,
    Forward,
}

/// <summary>One version of a path's rewrite. The two MACs are kept as the 12 header bytes in
/// the two words the rewrite stores (destination + first two bytes of the source, then the
/// last four of the source; memory byte order), so forwarding copies them without shifting.</summary>
[StructLayout(LayoutKind.Sequential, Size = 24)]
public struct PathSlot : IEquatable<PathSlot>
{
    public ulong L2Head;
    public uint L2Tail;
    public ushort TxPort;
    public ushort Mtu;
    public PathKind Kind;

    /// <summary>1 when the destination MAC is a point-to-point link's peer (its last sender, as
    /// the control plane last polled it) rather than this next hop's own: what Linux sends on
    /// the TUN mirror then takes the workers' fresher copy of the peer instead.</summary>
    public byte LinkPeer;

    public readonly bool Equals(PathSlot o) =>
        L2Head == o.L2Head && L2Tail == o.L2Tail && TxPort == o.TxPort && Mtu == o.Mtu && Kind == o.Kind && LinkPeer == o.LinkPeer;

    public override readonly bool Equals(object? obj) => obj is PathSlot s && Equals(s);

    public override readonly int GetHashCode() => HashCode.Combine(L2Head, L2Tail, TxPort, Mtu, Kind, LinkPeer);

    public static bool operator ==(PathSlot a, PathSlot b) => a.Equals(b);

    public static bool operator !=(PathSlot a, PathSlot b) => !a.Equals(b);

    /// <summary>Next-hop MAC (48 bits, memory byte order in the low bytes).</summary>
    public ulong DstMac
    {
        readonly get => L2Head & 0xFFFF_FFFF_FFFFUL;
        set => L2Head = (value & 0xFFFF_FFFF_FFFFUL) | (L2Head & 0xFFFF_0000_0000_0000UL);
    }

    /// <summary>Egress port MAC (48 bits, memory byte order in the low bytes).</summary>
    public ulong SrcMac
    {
        readonly get => (L2Head >> 48) | ((ulong)L2Tail << 16);
        set
        {
            L2Head = (L2Head & 0xFFFF_FFFF_FFFFUL) | (value << 48);
            L2Tail = (uint)(value >> 16);
        }
    }
}

/// <summary>A next hop (egress port + neighbour). Two slots: the control plane writes the
/// inactive one completely, then flips <see cref="Active"/>, so a worker always reads a whole
/// rewrite. A slot is rewritten only after a grace period.</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
public struct PathEntry
{
    public PathSlot Slot0;
    public PathSlot Slot1;
    public int Active;
}

/// <summary>A FIB next-hop group: its kind and, for <see cref="GroupKind.Forward"/>, up to
/// <see cref="MaxBuckets"/> path ids (ECMP buckets, weights expanded). Immutable once a FIB
/// entry points at it.</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
public unsafe struct GroupEntry
{
    public const int MaxBuckets = 16;
    public GroupKind Kind;
    public byte Buckets;
    public ushort Port; // Glean: the port the prefix is attached to
    public fixed ushort Paths[MaxBuckets];
}

/// <summary>The native arrays of groups and paths the workers read after a FIB lookup. Groups
/// come in two copies, flipped with the FIB copies: a live group is rewritten (a kernel nexthop
/// object replaced) in the copy workers are not reading, published, and brought level in the
/// other after a grace period, so a lookup never sees half a bucket list. Paths have their two
/// versions inside each entry instead (<see cref="PathEntry"/>).</summary>
public sealed unsafe class NextHopTables : IDisposable
{
    /// <summary>FIB next hops are 15 bits (DIR-24-8 / trie with 2-byte entries).</summary>
    public const int MaxGroups = 1 << 15;
    public const int MaxPaths = 1 << 16;

    private GroupEntry* _groups0;
    private GroupEntry* _groups1;

    /// <summary>Copy 0 of the groups (what a table with one copy, as in unit tests, uses).</summary>
    public GroupEntry* Groups => _groups0;
    public PathEntry* Paths { get; private set; }

    public NextHopTables()
    {
        nuint gBytes = (nuint)(MaxGroups * sizeof(GroupEntry));
        _groups0 = (GroupEntry*)NativeMemory.AlignedAlloc(gBytes, 64);
        _groups1 = (GroupEntry*)NativeMemory.AlignedAlloc(gBytes, 64);
        Paths = (PathEntry*)NativeMemory.AlignedAlloc((nuint)(MaxPaths * sizeof(PathEntry)), 64);
        NativeMemory.Clear(_groups0, gBytes);
        NativeMemory.Clear(_groups1, gBytes);
        NativeMemory.Clear(Paths, (nuint)(MaxPaths * sizeof(PathEntry)));
    }

    /// <summary>One of the two group copies.</summary>
    public GroupEntry* GroupCopy(int copy) => copy == 0 ? _groups0 : _groups1;

    /// <summary>Native bytes held (both group copies and the paths).</summary>
    public static long Bytes => 2L * MaxGroups * sizeof(GroupEntry) + (long)MaxPaths * sizeof(PathEntry);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static PathSlot* ActiveSlot(PathEntry* p) => Volatile.Read(ref p->Active) == 0 ? &p->Slot0 : &p->Slot1;

    public void Dispose()
    {
        if (_groups0 != null)
        {
            NativeMemory.AlignedFree(_groups0);
            NativeMemory.AlignedFree(_groups1);
            NativeMemory.AlignedFree(Paths);
            _groups0 = _groups1 = null;
            Paths = null;
        }
    }
}
