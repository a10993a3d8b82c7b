using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Dataplane.Paths;

/// <summary>Phy-RX classification for the foundation paths: validate L2/L3 headers with bounds
/// checks and decide punt (with a reason) or drop (with a reason). Pure function of the bytes,
/// so it is unit-tested on synthetic frames.</summary>
public static unsafe class FrameClassifier
{
    public const int EtherHeader = 14;
    public const ushort EtherTypeIp4 = 0x0800;
    public const ushort EtherTypeArp = 0x0806;
    public const ushort EtherTypeIp6 = 0x86DD;
    public const ushort EtherTypeVlan = 0x8100;
    public const ushort EtherTypeQinQ = 0x88A8;
    private const int ArpBody = 28; // Ethernet/IPv4 ARP

    /// <param name="frame">start of the frame (first segment)</param>
    /// <param name="segLen">bytes readable at <paramref name="frame"/> (data_len)</param>
    /// <param name="pktLen">bytes of the whole packet (pkt_len)</param>
    /// <param name="portMac">the receiving port's MAC (<see cref="DpdkSharp.MacAddress.Bits"/>)</param>
    /// <param name="puntOther">punt unknown ethertypes (true) or drop them</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason Classify(byte* frame, uint segLen, uint pktLen, ulong portMac, bool puntOther)
    {
        if (segLen < EtherHeader)
            return Reason.DropRunt;
        ulong dst = *(uint*)frame | ((ulong)*(ushort*)(frame + 4) << 32);
        // I/G bit clear = unicast; unicast for someone else is not ours to punt.
        if ((dst & 1) == 0 && dst != portMac)
            return Reason.DropNotForUs;
        ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(frame + 12));
        switch (type)
        {
            case EtherTypeIp4:
                return CheckIp4(frame + EtherHeader, segLen - EtherHeader, pktLen - EtherHeader);
            case EtherTypeIp6:
                return CheckIp6(frame + EtherHeader, segLen - EtherHeader, pktLen - EtherHeader);
            case EtherTypeArp:
                return segLen < EtherHeader + ArpBody ? Reason.DropArpTruncated : Reason.PuntArp;
            case EtherTypeVlan:
            case EtherTypeQinQ:
                return segLen < EtherHeader + 4 ? Reason.DropVlanTruncated : Reason.PuntVlan;
            default:
                return puntOther ? Reason.PuntOther : Reason.DropOtherEthertype;
        }
    }

    /// <summary>RFC 1812 section 5.2.2 header sanity (minus the checksum, which the host verifies
    /// on punt and the forwarding path checks separately).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason CheckIp4(byte* ip, uint segLen, uint l3Len)
    {
        if (segLen < 20)
            return Reason.DropIp4Truncated;
        byte vihl = ip[0];
        if ((vihl >> 4) != 4)
            return Reason.DropIp4Version;
        uint ihl = (uint)(vihl & 0xF) << 2;
        if (ihl < 20)
            return Reason.DropIp4HeaderLength;
        if (segLen < ihl)
            return Reason.DropIp4Truncated;
        uint total = BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 2));
        if (total < ihl || total > l3Len)
            return Reason.DropIp4TotalLength;
        return Reason.PuntIp4;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Reason CheckIp6(byte* ip, uint segLen, uint l3Len)
    {
        if (segLen < 40)
            return Reason.DropIp6Truncated;
        if ((ip[0] >> 4) != 6)
            return Reason.DropIp6Version;
        uint payload = BinaryPrimitives.ReverseEndianness(*(ushort*)(ip + 4));
        if (40 + payload > l3Len)
            return Reason.DropIp6PayloadLength;
        return Reason.PuntIp6;
    }
}
