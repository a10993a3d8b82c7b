using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>Named network namespaces (iproute2-compatible, /run/netns/NAME).</summary>
public static unsafe class Netns
{
    /// <summary>True if the name is usable as a namespace name.</summary>
    public static bool IsValidName(string name)
    {
        if (name.Length is 0 or > 64 || name is "." or "..")
            return false;
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                return false;
        return true;
    }

    /// <summary>Creates the namespace if missing. Returns true if it was created.</summary>
    public static bool Ensure(string name)
    {
        using var n = new NativeUtf8(name);
        return DpdkException.Check(LcpShim.lcp_netns_ensure(n.Pointer), $"netns '{name}'") == 1;
    }

    /// <summary>rte_dev_probe(devargs) from a thread inside <paramref name="netns"/> (null = ours).</summary>
    public static int ProbeDevice(string? netns, string devargs)
    {
        using var n = new NativeUtf8(netns);
        using var d = new NativeUtf8(devargs);
        return LcpShim.lcp_dev_probe_in_netns(n.Pointer, d.Pointer);
    }

    /// <summary>True if this process runs in another mount namespace than its parent (as under
    /// <c>ip netns exec</c>): namespaces it creates are then invisible to the rest of the system.</summary>
    public static bool InPrivateMountNamespace()
    {
        try
        {
            // The link's own text ("mnt:[inode]"); ResolveLinkTarget would prefix each with its directory.
            string self = new FileInfo("/proc/self/ns/mnt").LinkTarget ?? "";
            string parent = new FileInfo($"/proc/{GetParentPid()}/ns/mnt").LinkTarget ?? self;
            return self != parent;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static int GetParentPid()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("PPid:", StringComparison.Ordinal))
                return int.Parse(line.AsSpan(5).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return 1;
    }

    /// <summary>Kernel ifindex of an interface in a namespace, or a negative errno.</summary>
    public static int IfIndex(string? netns, string ifname)
    {
        using var n = new NativeUtf8(netns);
        using var i = new NativeUtf8(ifname);
        return LcpShim.lcp_ifindex_in_netns(n.Pointer, i.Pointer);
    }

    /// <summary>The identity (inode) of a named namespace, null = ours; 0 when it does not exist.
    /// A namespace deleted and created again under the same name has another.</summary>
    public static ulong Inode(string? netns)
    {
        using var n = new NativeUtf8(netns);
        ulong ino;
        return LcpShim.lcp_netns_inode(n.Pointer, &ino) == 0 ? ino : 0;
    }

    /// <summary>Reads, then writes (when <paramref name="value"/> is not null) a network sysctl
    /// (<c>/proc/sys/net/...</c>) inside <paramref name="netns"/> (null = ours). Returns 0 or a
    /// negative errno; <paramref name="old"/> is the value before the write.</summary>
    public static int Sysctl(string? netns, string path, string? value, out string? old)
    {
        using var n = new NativeUtf8(netns);
        using var p = new NativeUtf8(path);
        using var v = new NativeUtf8(value);
        byte* buf = stackalloc byte[64];
        buf[0] = 0;
        int rc = LcpShim.lcp_sysctl_in_netns(n.Pointer, p.Pointer, v.Pointer, buf, 64);
        old = rc == 0 ? new string((sbyte*)buf).Trim() : null;
        return rc;
    }

    /// <summary>ETHTOOL_STXCSUM: transmit checksum offload (off makes the kernel fill checksums
    /// itself, and turns TSO off with it).</summary>
    public const uint EthtoolSetTxChecksum = 0x17;

    /// <summary>ETHTOOL_SGRO: generic receive offload.</summary>
    public const uint EthtoolSetGro = 0x2c;

    /// <summary>A legacy ethtool set command on an interface of a namespace. 0 or a negative errno.</summary>
    public static int Ethtool(string? netns, string ifname, uint cmd, uint value)
    {
        using var n = new NativeUtf8(netns);
        using var i = new NativeUtf8(ifname);
        return LcpShim.lcp_ethtool_set(n.Pointer, i.Pointer, cmd, value);
    }
}
