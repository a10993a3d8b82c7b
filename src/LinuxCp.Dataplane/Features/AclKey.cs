using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace LinuxCp.Dataplane.Features;

/// <summary>The classifier's per-packet key, built from a validated IP header in the layout the
/// native contexts read (native/src/lcp_acl.c), all fields in network byte order:
/// IPv4 (20 bytes) proto | - | src | dst | sport dport | tcp-flags - --;
/// IPv6 (44 bytes) next-header | - | src | dst | sport dport | tcp-flags - --.
/// ICMP type and code take the places of the ports. Ports (and flags) are 0 when the L4 header
/// is not in the first segment or the packet is a non-first fragment: a rule with a port range
/// that excludes 0 does not match those, as in iptables.</summary>
public static unsafe class AclKey
{
    public const int Size4 = 20, Size6 = 44;

    /// <param name="ip">the IPv4 header (version, IHL and total length already checked)</param>
    /// <param name="segLen">bytes readable from <paramref name="ip"/> in the first segment</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Build4(byte* ip, uint segLen, byte* key)
    {
        uint ihl = (uint)(ip[0] & 0xF) << 2;
        byte proto = ip[9];
        *(uint*)key = proto;
        *(ulong*)(key + 4) = *(ulong*)(ip + 12); // source and destination, as on the wire
        bool laterFragment = (BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 6)) & 0x1FFF) != 0;
        L4(key + 12, ip + ihl, laterFragment || segLen < ihl ? 0 : segLen - ihl, proto);
    }

    /// <param name="ip">the IPv6 header (version and payload length already checked)</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Build6(byte* ip, uint segLen, byte* key)
    {
        byte next = ip[6];
        *(uint*)key = next;
        Unsafe.CopyBlockUnaligned(key + 4, ip + 8, 32);
        L4(key + 36, ip + 40, segLen < 40 ? 0 : segLen - 40, next);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void L4(byte* k, byte* l4, uint avail, byte proto)
    {
        *(ulong*)k = 0;
        switch (proto)
        {
            case 6: // TCP
                if (avail >= 14)
                    k[4] = l4[13];
                if (avail >= 4)
                    *(uint*)k = *(uint*)l4;
                break;
            case 17: // UDP
            case 132: // SCTP
                if (avail >= 4)
                    *(uint*)k = *(uint*)l4;
                break;
            case 1: // ICMP, ICMPv6: type and code as 16-bit "ports"
            case 58:
                if (avail >= 2)
                {
                    k[1] = l4[0];
                    k[3] = l4[1];
                }
                break;
        }
    }

    /// <summary>The fields of a key, for the reference matcher and for show/trace.</summary>
    public static (UInt128 Src, UInt128 Dst, byte Proto, ushort Sport, ushort Dport, byte Flags) Read(byte* key, bool v6)
    {
        int n = v6 ? 16 : 4;
        UInt128 src = 0, dst = 0;
        for (int i = 0; i < n; i++)
        {
            src = (src << 8) | key[4 + i];
            dst = (dst << 8) | key[4 + n + i];
        }
        byte* l4 = key + 4 + 2 * n;
        return (src, dst, key[0], BinaryPrimitives.ReverseEndianness(*(ushort*)l4), BinaryPrimitives.ReverseEndianness(*(ushort*)(l4 + 2)), l4[4]);
    }
}
