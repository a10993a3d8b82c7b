using System.Net;
using System.Net.Sockets;
using DpdkSharp;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Config.Model;

/// <summary>IP addresses and prefixes as the config layer reads and writes them.</summary>
public static class Ip
{
    public static UInt128 Parse(string s, out bool v6)
    {
        IPAddress ip = IPAddress.Parse(s);
        v6 = ip.AddressFamily == AddressFamily.InterNetworkV6;
        return Prefix.FromBytes(ip.GetAddressBytes());
    }

    public static bool TryAddress(string s, out bool v6)
    {
        v6 = false;
        if (s.Contains('/', StringComparison.Ordinal) || s.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(s, out IPAddress? ip))
            return false;
        v6 = ip.AddressFamily == AddressFamily.InterNetworkV6;
        // IPAddress accepts "10" as 0.0.0.10; a configuration means dotted quads.
        return v6 || s.Count(c => c == '.') == 3;
    }

    /// <summary>An address with its prefix length ("10.0.0.1/24"); the host bits may be set.</summary>
    public static bool TryInterfacePrefix(string s, out bool v6)
    {
        v6 = false;
        int slash = s.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !TryAddress(s[..slash], out v6))
            return false;
        return int.TryParse(s.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int len)
            && len <= (v6 ? 128 : 32) && s[(slash + 1)..] == len.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A network: an interface prefix whose host bits are clear.</summary>
    public static bool TryNetwork(string s, out bool v6) =>
        TryInterfacePrefix(s, out v6) && Prefix.Parse(s).ToString() == Canonical(s);

    /// <summary>"10.0.0.1/24" with the address in its canonical text (IPv6 compressed, lower case).</summary>
    public static string Canonical(string prefix)
    {
        int slash = prefix.IndexOf('/', StringComparison.Ordinal);
        string a = slash < 0 ? prefix : prefix[..slash];
        UInt128 v = Parse(a, out bool v6);
        return Format(v, v6) + (slash < 0 ? "" : prefix[slash..]);
    }

    public static string Format(UInt128 a, bool v6) => Prefix.Format(v6, a);
}

/// <summary>Ethernet addresses.</summary>
public static class Mac
{
    public static bool TryParse(string s, out ulong mac)
    {
        bool ok = MacAddress.TryParse(s, out MacAddress m);
        mac = m.Bits;
        return ok;
    }

    public static ulong Parse(string s) => MacAddress.Parse(s).Bits;

    public static string Format(ulong mac) => new MacAddress(mac).ToString();

    /// <summary>Usable as an interface's own address: not multicast (nor broadcast), not zero.</summary>
    public static bool IsUnicast(ulong mac) => mac != 0 && (mac & 1) == 0;
}
