using System.Buffers.Binary;

namespace LinuxCp.Dataplane.Tests;

/// <summary>Builds test frames byte by byte.</summary>
internal static class Frames
{
    public static readonly byte[] PortMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    public static readonly byte[] OtherMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
    public static readonly byte[] PeerMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    public static readonly byte[] Broadcast = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    public static byte[] Ether(byte[] dst, ushort type, byte[] payload)
    {
        var f = new byte[14 + payload.Length];
        dst.CopyTo(f, 0);
        PeerMac.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        payload.CopyTo(f, 14);
        return f;
    }

    public static byte[] Ip4(int ihlWords = 5, int version = 4, int? totalLength = null, int payload = 8)
    {
        int hdr = ihlWords * 4;
        var p = new byte[Math.Max(hdr, 20) + payload];
        p[0] = (byte)((version << 4) | ihlWords);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)(totalLength ?? p.Length));
        p[8] = 64;
        p[9] = 1;
        return p;
    }

    public static byte[] Ip6(int version = 6, int? payloadLength = null, int payload = 8)
    {
        var p = new byte[40 + payload];
        p[0] = (byte)(version << 4);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(payloadLength ?? payload));
        p[6] = 58;
        p[7] = 64;
        return p;
    }

    public static byte[] Arp() => new byte[28];

    /// <summary>The IPv4 header checksum of <paramref name="hdr"/> (its checksum field skipped).</summary>
    public static ushort Checksum(ReadOnlySpan<byte> hdr)
    {
        uint sum = 0;
        for (int i = 0; i < hdr.Length; i += 2)
            if (i != 10)
                sum += BinaryPrimitives.ReadUInt16BigEndian(hdr[i..]);
        while (sum > 0xFFFF)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
