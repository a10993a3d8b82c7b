using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Dataplane.Paths;

/// <summary>The IPv4/IPv6 fast path decisions and rewrites. <see cref="Reason.Forward"/> means
/// "forward"; anything else is the punt or drop reason. Frames are modified only once the
/// decision to forward is made, so a punted packet is exactly as received.</summary>
public static unsafe class Forwarding
{
    public const Reason Forward = Reason.Forward;

    /// <summary>The common case in one pass: Ethernet to the port's MAC, IPv4 without options,
    /// TTL &gt; 1, a total length that fits the packet, a unicast destination. The caller
    /// checked that 34 bytes are readable. Anything else goes through the full classifier.
    /// (The worker builds the template once per burst and calls <see cref="IsPlainIp4Header"/>.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPlainIp4(byte* frame, uint pktLen, ulong portMac)
    {
        (Vector128<byte> want, Vector128<byte> mask) = PlainIp4Template(portMac);
        return IsPlainIp4Header(frame, pktLen, want, mask);
    }

    /// <summary>The bytes <see cref="IsPlainIp4"/> requires of the first 16 of a frame
    /// (destination MAC, EtherType 0x0800, version 4 / IHL 5) and the mask selecting them, for
    /// <see cref="IsPlainIp4Header"/>.</summary>
    public static (Vector128<byte> Want, Vector128<byte> Mask) PlainIp4Template(ulong portMac)
    {
        Vector128<byte> want = Vector128.Create(
            (ulong)(portMac & 0xFFFF_FFFF_FFFFUL),
            0x0045_0008UL << 32).AsByte();
        Vector128<byte> mask = Vector128.Create(0xFFFF_FFFF_FFFFUL, 0x00FF_FFFFUL << 32).AsByte();
        return (want, mask);
    }

    /// <summary>Whether the masked bytes of the frame's first 16 equal the template's: one
    /// vpxor + vptest on x86 (the EtherType/version/MAC compare of the one-pass checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MatchesTemplate(byte* frame, Vector128<byte> want, Vector128<byte> mask)
    {
        Vector128<byte> diff = Vector128.Load(frame) ^ want;
        return Sse41.IsSupported ? Sse41.TestZ(diff, mask) : (diff & mask) == Vector128<byte>.Zero;
    }

    /// <summary><see cref="IsPlainIp4"/> against a template made once per burst by
    /// <see cref="PlainIp4Template"/>: the first 16 bytes in one vector compare, then TTL,
    /// destination class and total length as short-circuit tests (which predict well and keep
    /// everything in registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPlainIp4Header(byte* frame, uint pktLen, Vector128<byte> want, Vector128<byte> mask)
    {
        if (!MatchesTemplate(frame, want, mask))
            return false;
        uint total = BinaryPrimitives.ReverseEndianness(*(ushort*)(frame + 16));
        return frame[22] > 1
            && frame[30] < 224
            && total - 20u <= pktLen - (FrameClassifier.EtherHeader + 20u);
    }

    /// <summary>The IPv6 counterpart of <see cref="PlainIp4Template"/>: destination MAC,
    /// EtherType 0x86DD and the version nibble.</summary>
    public static (Vector128<byte> Want, Vector128<byte> Mask) PlainIp6Template(ulong portMac)
    {
        Vector128<byte> want = Vector128.Create(
            (ulong)(portMac & 0xFFFF_FFFF_FFFFUL),
            0x0060_DD86UL << 32).AsByte();
        Vector128<byte> mask = Vector128.Create(0xFFFF_FFFF_FFFFUL, 0x00F0_FFFFUL << 32).AsByte();
        return (want, mask);
    }

    /// <summary>The common IPv6 case in one pass, for a frame with 54 readable bytes: Ethernet
    /// to the port's MAC, version 6, no hop-by-hop header, hop limit &gt; 1, a payload length
    /// that fits the packet, a destination neither multicast nor link-local. Exactly what
    /// <see cref="FrameClassifier.Classify"/> + <see cref="Ip6Eligible"/> forward.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPlainIp6Header(byte* frame, uint pktLen, Vector128<byte> want, Vector128<byte> mask)
    {
        if (!MatchesTemplate(frame, want, mask))
            return false;
        byte* ip = frame + FrameClassifier.EtherHeader;
        uint payload = BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 4));
        return ip[6] != 0
            && ip[7] > 1
            && ip[24] != 0xFF
            && (ip[24] != 0xFE || (ip[25] & 0xC0) != 0x80)
            && payload + 40u <= pktLen - FrameClassifier.EtherHeader;
    }

    /// <summary>RFC 1812 checks that decide between the fast path and Linux, for a frame the
    /// classifier accepted as IPv4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason Ip4Eligible(byte* frame, ulong portMac)
    {
        ulong dst = *(uint*)frame | ((ulong)*(ushort*)(frame + 4) << 32);
        if (dst != portMac)
            return Reason.PuntMulticast; // L2 broadcast/multicast (unicast to others was dropped)
        byte* ip = frame + FrameClassifier.EtherHeader;
        if (ip[0] != 0x45)
            return Reason.PuntIp4Options;
        if (ip[8] <= 1)
            return Reason.PuntTtl;
        if (ip[16] >= 224)
            return Reason.PuntMulticast; // multicast, reserved and limited broadcast
        return Forward;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason Ip6Eligible(byte* frame, ulong portMac)
    {
        ulong dst = *(uint*)frame | ((ulong)*(ushort*)(frame + 4) << 32);
        if (dst != portMac)
            return Reason.PuntMulticast;
        byte* ip = frame + FrameClassifier.EtherHeader;
        if (ip[24] == 0xFF)
            return Reason.PuntMulticast;
        if (ip[24] == 0xFE && (ip[25] & 0xC0) == 0x80)
            return Reason.PuntIp6LinkLocal;
        if (ip[6] == 0)
            return Reason.PuntIp6HopByHop;
        if (ip[7] <= 1)
            return Reason.PuntTtl;
        return Forward;
    }

    /// <summary>Maps a group kind that does not forward to its reason.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Reason NotForwarded(GroupKind k) => k switch
    {
        GroupKind.Local => Reason.PuntLocal,
        GroupKind.Blackhole => Reason.DropBlackhole,
        GroupKind.Unreachable => Reason.PuntUnreachable,
        GroupKind.PuntToLinux => Reason.PuntLinuxRoute,
        GroupKind.Glean => Reason.PuntGlean,
        _ => Reason.PuntNoRoute,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static PathSlot* Select(PathEntry* paths, GroupEntry* g, uint hash)
    {
        int b = g->Buckets == 1 ? 0 : (int)(hash % g->Buckets);
        return NextHopTables.ActiveSlot(paths + g->Paths[b]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteMacs(byte* frame, PathSlot* s)
    {
        // Two stores for the 12 bytes, kept in the slot as they are written.
        *(ulong*)frame = s->L2Head;
        *(uint*)(frame + 8) = s->L2Tail;
    }

    /// <summary>Flow hash for ECMP: addresses, protocol and (when present) L4 ports.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Mix(uint h) => (h ^ (h >> 16)) * 0x45D9F3B;

    /// <summary>ECMP flow hash of an IPv4 header: addresses, protocol and, for unfragmented TCP/UDP, ports.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash4(byte* ip)
    {
        uint hash = *(uint*)(ip + 12) ^ *(uint*)(ip + 16) ^ ip[9];
        if ((ip[9] == 6 || ip[9] == 17) && (*(ushort*)(ip + 6) & 0xFF3F) == 0)
            hash ^= *(uint*)(ip + 20);
        return Mix(Mix(hash));
    }

    /// <summary>ECMP flow hash of an IPv6 header (no extension headers followed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash6(byte* ip)
    {
        uint* a = (uint*)(ip + 8);
        uint hash = a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7] ^ ip[6];
        if (ip[6] == 6 || ip[6] == 17)
            hash ^= *(uint*)(ip + 40);
        return Mix(Mix(hash));
    }

    /// <summary>The resolved path a packet with this IP header takes to next hop
    /// <paramref name="nh"/> (ECMP by its flow hash), or null when the next hop does not forward
    /// or is unresolved. Used for what Linux sends on a TUN mirror: the adjacency Linux would
    /// have used. The caller checked that the header is readable (20 / 40 bytes, +4 for ports).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static PathSlot* ResolvedPath(GroupEntry* groups, PathEntry* paths, ulong nh, byte* ip, bool v6)
    {
        GroupEntry* g = groups + nh;
        if (g->Kind != GroupKind.Forward)
            return null;
        PathSlot* s = Select(paths, g, g->Buckets <= 1 ? 0 : v6 ? Hash6(ip) : Hash4(ip));
        return s->Kind == PathKind.Forward ? s : null;
    }

    /// <summary>The resolved path of a group that forwards through exactly one path, or null
    /// when the packet needs <see cref="Rewrite4"/>/<see cref="Rewrite6"/> (not a forwarding
    /// group, ECMP, next hop unresolved). Valid until the worker's next quiescent point.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static PathSlot* SinglePath(GroupEntry* groups, PathEntry* paths, ulong nh)
    {
        GroupEntry* g = groups + nh;
        if (g->Kind != GroupKind.Forward || g->Buckets != 1)
            return null;
        PathSlot* s = NextHopTables.ActiveSlot(paths + g->Paths[0]);
        return s->Kind == PathKind.Forward ? s : null;
    }

    /// <summary>Forwards an IPv4 frame through a resolved path if it fits the path's MTU: TTL
    /// decrement, checksum update, L2 rewrite. False (frame untouched): punt as too big.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Apply4(byte* frame, PathSlot* s)
    {
        byte* ip = frame + FrameClassifier.EtherHeader;
        uint total = BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 2));
        if (total > s->Mtu)
            return false;
        // TTL - 1 and the checksum update of RFC 1624: the TTL is the high byte of its 16-bit
        // word, so the one's-complement sum grows by 0x0100.
        ip[8]--;
        uint sum = (uint)BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 10)) + 0x0100;
        sum = (sum & 0xFFFF) + (sum >> 16);
        *(ushort*)(ip + 10) = BinaryPrimitives.ReverseEndianness((ushort)sum);
        WriteMacs(frame, s);
        return true;
    }

    /// <summary>The IPv6 counterpart of <see cref="Apply4"/> (hop limit, no checksum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Apply6(byte* frame, PathSlot* s)
    {
        byte* ip = frame + FrameClassifier.EtherHeader;
        uint total = 40u + BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 4));
        if (total > s->Mtu)
            return false;
        ip[7]--;
        WriteMacs(frame, s);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason Rewrite4(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort)
    {
        txPort = 0;
        GroupEntry* g = groups + nh;
        if (g->Kind != GroupKind.Forward)
            return NotForwarded(g->Kind);
        byte* ip = frame + FrameClassifier.EtherHeader;
        PathSlot* s = Select(paths, g, g->Buckets > 1 ? Hash4(ip) : 0);
        if (s->Kind != PathKind.Forward)
            return Reason.PuntGlean;
        if (!Apply4(frame, s))
            return Reason.PuntTooBig;
        txPort = s->TxPort;
        return Forward;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason Rewrite6(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort)
    {
        txPort = 0;
        GroupEntry* g = groups + nh;
        if (g->Kind != GroupKind.Forward)
            return NotForwarded(g->Kind);
        byte* ip = frame + FrameClassifier.EtherHeader;
        PathSlot* s = Select(paths, g, g->Buckets > 1 ? Hash6(ip) : 0);
        if (s->Kind != PathKind.Forward)
            return Reason.PuntGlean;
        if (!Apply6(frame, s))
            return Reason.PuntTooBig;
        txPort = s->TxPort;
        return Forward;
    }
}
