using System.Buffers.Binary;
using System.Net;

namespace LinuxCp.Management.Observe;

/// <summary>Turns captured header bytes into one readable line per protocol layer (for
/// <c>show trace</c>). Everything is bounds-checked: a truncated header ends the decode with a
/// note, never an exception.</summary>
public static class PacketDecoder
{
    public static List<(string Layer, string Detail)> Decode(ReadOnlySpan<byte> p, bool startsWithIp = false)
    {
        var lines = new List<(string, string)>();
        int off = 0;
        int type;
        if (startsWithIp)
        {
            if (p.Length < 1)
                return lines;
            type = (p[0] >> 4) == 6 ? 0x86DD : 0x0800;
        }
        else
        {
            if (p.Length < 14)
            {
                lines.Add(("ethernet", $"truncated ({p.Length} bytes)"));
                return lines;
            }
            type = BinaryPrimitives.ReadUInt16BigEndian(p[12..]);
            lines.Add(("ethernet", $"{Mac(p[6..12])} -> {Mac(p[..6])} type 0x{type:x4}"));
            off = 14;
            while (type is 0x8100 or 0x88A8 && p.Length >= off + 4)
            {
                ushort tci = BinaryPrimitives.ReadUInt16BigEndian(p[off..]);
                type = BinaryPrimitives.ReadUInt16BigEndian(p[(off + 2)..]);
                lines.Add(("vlan", $"id {tci & 0xFFF} pcp {tci >> 13} type 0x{type:x4}"));
                off += 4;
            }
        }
        ReadOnlySpan<byte> l3 = p[off..];
        switch (type)
        {
            case 0x0806:
                if (l3.Length < 28)
                {
                    lines.Add(("arp", "truncated"));
                    break;
                }
                ushort op = BinaryPrimitives.ReadUInt16BigEndian(l3[6..]);
                string sender = $"{new IPAddress(l3.Slice(14, 4))} ({Mac(l3.Slice(8, 6))})";
                lines.Add(("arp", op switch
                {
                    1 => $"request who-has {new IPAddress(l3.Slice(24, 4))} tell {sender}",
                    2 => $"reply {sender} to {new IPAddress(l3.Slice(24, 4))}",
                    _ => $"op {op} from {sender}",
                }));
                break;
            case 0x0800:
                DecodeIp4(l3, lines);
                break;
            case 0x86DD:
                DecodeIp6(l3, lines);
                break;
        }
        return lines;
    }

    private static void DecodeIp4(ReadOnlySpan<byte> h, List<(string, string)> lines)
    {
        if (h.Length < 20)
        {
            lines.Add(("ip4", "truncated"));
            return;
        }
        int ihl = (h[0] & 0xF) * 4;
        ushort total = BinaryPrimitives.ReadUInt16BigEndian(h[2..]);
        ushort frag = BinaryPrimitives.ReadUInt16BigEndian(h[6..]);
        byte proto = h[9];
        lines.Add(("ip4", $"{new IPAddress(h.Slice(12, 4))} -> {new IPAddress(h.Slice(16, 4))} ttl {h[8]} proto {ProtoName(proto)} len {total}"
            + $" checksum 0x{BinaryPrimitives.ReadUInt16BigEndian(h[10..]):x4}"
            + (ihl > 20 ? $" options {ihl - 20} bytes" : "") + ((frag & 0x3FFF) != 0 ? " fragment" : "")));
        if ((frag & 0x1FFF) == 0 && ihl >= 20 && h.Length > ihl)
            DecodeL4(proto, h[ihl..], lines);
    }

    private static void DecodeIp6(ReadOnlySpan<byte> h, List<(string, string)> lines)
    {
        if (h.Length < 40)
        {
            lines.Add(("ip6", "truncated"));
            return;
        }
        byte next = h[6];
        lines.Add(("ip6", $"{new IPAddress(h.Slice(8, 16))} -> {new IPAddress(h.Slice(24, 16))} hlim {h[7]} next {ProtoName(next)} plen {BinaryPrimitives.ReadUInt16BigEndian(h[4..])}"));
        DecodeL4(next, h[40..], lines);
    }

    private static void DecodeL4(byte proto, ReadOnlySpan<byte> l4, List<(string, string)> lines)
    {
        switch (proto)
        {
            case 6 when l4.Length >= 14:
                lines.Add(("tcp", $"{BinaryPrimitives.ReadUInt16BigEndian(l4)} -> {BinaryPrimitives.ReadUInt16BigEndian(l4[2..])} flags 0x{l4[13]:x2}"));
                break;
            case 17 when l4.Length >= 8:
                lines.Add(("udp", $"{BinaryPrimitives.ReadUInt16BigEndian(l4)} -> {BinaryPrimitives.ReadUInt16BigEndian(l4[2..])} len {BinaryPrimitives.ReadUInt16BigEndian(l4[4..])}"));
                break;
            case 1 when l4.Length >= 2:
                lines.Add(("icmp", $"type {l4[0]} code {l4[1]}" + (l4[0] == 8 ? " (echo request)" : l4[0] == 0 ? " (echo reply)" : l4[0] == 11 ? " (time exceeded)" : "")));
                break;
            case 58 when l4.Length >= 2:
                lines.Add(("icmp6", $"type {l4[0]} code {l4[1]}" + l4[0] switch
                {
                    128 => " (echo request)",
                    129 => " (echo reply)",
                    135 => " (neighbor solicitation)",
                    136 => " (neighbor advertisement)",
                    133 => " (router solicitation)",
                    134 => " (router advertisement)",
                    _ => "",
                }));
                break;
        }
    }

    public static string ProtoName(byte p) => p switch
    {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmp6",
        0 => "hop-by-hop",
        _ => p.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Mac(ReadOnlySpan<byte> m) =>
        $"{m[0]:x2}:{m[1]:x2}:{m[2]:x2}:{m[3]:x2}:{m[4]:x2}:{m[5]:x2}";
}
