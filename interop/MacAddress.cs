using System.Globalization;

namespace DpdkSharp;

/// <summary>An Ethernet address held in the low 48 bits of a ulong, in wire order
/// (byte 0 of the address in the least significant byte, as a little-endian load sees it).</summary>
public readonly record struct MacAddress(ulong Bits)
{
    public static MacAddress FromBytes(ReadOnlySpan<byte> b)
    {
        ulong v = 0;
        for (int i = 5; i >= 0; i--)
            v = (v << 8) | b[i];
        return new MacAddress(v);
    }

    public void CopyTo(Span<byte> dst)
    {
        for (int i = 0; i < 6; i++)
            dst[i] = (byte)(Bits >> (8 * i));
    }

    public static MacAddress Parse(string s) =>
        TryParse(s, out MacAddress mac) ? mac : throw new FormatException($"not a MAC address: '{s}'");

    public static bool TryParse(string s, out MacAddress mac)
    {
        mac = default;
        var parts = s.Split(':');
        if (parts.Length != 6)
            return false;
        Span<byte> b = stackalloc byte[6];
        for (int i = 0; i < 6; i++)
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out b[i]))
                return false;
        mac = FromBytes(b);
        return true;
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[6];
        CopyTo(b);
        return string.Create(CultureInfo.InvariantCulture, $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}");
    }
}
