using System.Runtime.CompilerServices;

namespace LinuxCp.Dataplane.Tables;

/// <summary>A source address and MAC a worker saw on a port (IPv4 in the low 32 bits of <see cref="Ip"/>).</summary>
public readonly record struct LearnedNeighbor(ushort Port, bool V6, UInt128 Ip, ulong Mac);

/// <summary>What one worker learned on point-to-point (TUN-paired) ports: source address -> source
/// MAC of the IP frames it punted there. Linux runs no ARP/ND on a TUN, so this is where the
/// adjacency of each next hop on such a port comes from. One writer (its worker, on the punt
/// path: a few stores, only when an entry changes), read by the control plane under a sequence
/// count; a fixed size, direct-mapped: a collision replaces the older entry (learning is lossy,
/// the next frame of a displaced neighbour learns it again).</summary>
public sealed class LearnTable
{
    public const int Size = 256;

    private struct Entry
    {
        public int Seq; // odd while written
        public ushort Port;
        public bool V6;
        public UInt128 Ip;
        public ulong Mac;
    }

    private readonly Entry[] _e = new Entry[Size];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(ushort port, UInt128 ip)
    {
        ulong x = (ulong)ip ^ (ulong)(ip >> 64) ^ ((ulong)port << 40);
        return (int)((x * 0x9E37_79B9_7F4A_7C15UL) >> 56) & (Size - 1);
    }

    /// <summary>Whether a source address can name a neighbour: not unspecified (0.0.0.0 and ::
    /// are what a host sends before it has an address, and the zero address is the key of a
    /// link's gateway-less paths), not multicast, not IPv4 class E or broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Learnable(bool v6, UInt128 ip) =>
        v6 ? ip != UInt128.Zero && (byte)(ip >> 120) != 0xff
           : ip != UInt128.Zero && (uint)ip < 0xE000_0000u;

    /// <summary>Records <paramref name="mac"/> for (port, address); no store when it is known
    /// already, when the address is not <see cref="Learnable"/> or the MAC is zero (the caller
    /// passes only unicast source MACs).</summary>
    public void Learn(ushort port, bool v6, UInt128 ip, ulong mac)
    {
        if (!Learnable(v6, ip) || mac == 0)
            return;
        ref Entry e = ref _e[Slot(port, ip)];
        if (e.Seq != 0 && e.Port == port && e.V6 == v6 && e.Ip == ip && e.Mac == mac)
            return;
        int s = e.Seq;
        Interlocked.Exchange(ref e.Seq, s + 1); // a full fence: the fields below are not seen before it
        e.Port = port;
        e.V6 = v6;
        e.Ip = ip;
        e.Mac = mac;
        Volatile.Write(ref e.Seq, s + 2);
    }

    /// <summary>Appends every complete entry (none half-written) to <paramref name="into"/>.</summary>
    public void ReadInto(List<LearnedNeighbor> into)
    {
        for (int i = 0; i < _e.Length; i++)
        {
            ref Entry e = ref _e[i];
            int s1 = Volatile.Read(ref e.Seq);
            if (s1 == 0 || (s1 & 1) != 0)
                continue;
            var n = new LearnedNeighbor(e.Port, e.V6, e.Ip, e.Mac);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref e.Seq) == s1)
                into.Add(n);
        }
    }
}
