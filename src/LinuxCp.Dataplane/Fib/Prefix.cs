using System.Net;
using System.Net.Sockets;

namespace LinuxCp.Dataplane.Fib;

/// <summary>An IPv4 or IPv6 prefix, host bits cleared. The address is held big-endian in a
/// UInt128 (IPv4 in the low 32 bits).</summary>
public readonly record struct Prefix
{
    // Address first: UInt128 is 16-byte aligned, so this order makes the struct 32 bytes, not 48.
    public UInt128 Address { get; }
    public bool V6 { get; }
    public byte Length { get; }

    public Prefix(bool v6, UInt128 address, int length)
    {
        int bits = v6 ? 128 : 32;
        if (length < 0 || length > bits)
            throw new ArgumentOutOfRangeException(nameof(length));
        V6 = v6;
        Length = (byte)length;
        UInt128 mask = length == 0 ? UInt128.Zero : (UInt128.MaxValue << (bits - length)) & (v6 ? UInt128.MaxValue : (UInt128)uint.MaxValue);
        Address = address & mask;
    }

    public static Prefix Host(bool v6, UInt128 address) => new(v6, address, v6 ? 128 : 32);

    public static UInt128 FromBytes(ReadOnlySpan<byte> b)
    {
        UInt128 v = 0;
        foreach (byte x in b)
            v = (v << 8) | x;
        return v;
    }

    public static void ToBytes(UInt128 v, bool v6, Span<byte> dst)
    {
        int n = v6 ? 16 : 4;
        for (int i = n - 1; i >= 0; i--)
        {
            dst[i] = (byte)v;
            v >>= 8;
        }
    }

    public static string Format(bool v6, UInt128 a)
    {
        Span<byte> b = stackalloc byte[16];
        ToBytes(a, v6, b);
        return new IPAddress(b[..(v6 ? 16 : 4)]).ToString();
    }

    public static Prefix Parse(string s)
    {
        string[] parts = s.Split('/');
        IPAddress ip = IPAddress.Parse(parts[0]);
        bool v6 = ip.AddressFamily == AddressFamily.InterNetworkV6;
        int len = parts.Length > 1 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : (v6 ? 128 : 32);
        return new Prefix(v6, FromBytes(ip.GetAddressBytes()), len);
    }

    public bool Contains(Prefix other) =>
        other.V6 == V6 && other.Length >= Length && new Prefix(V6, other.Address, Length).Address == Address;

    public override string ToString() => $"{Format(V6, Address)}/{Length}";
}

/// <summary>A prefix of one dataplane table: the key of the FIB writer's per-prefix state and of
/// the backends. 24 bytes and 8-aligned (a <see cref="Prefix"/> holds a UInt128 and takes 32), so a
/// million of them cost a third less.</summary>
public readonly struct FibKey : IEquatable<FibKey>
{
    /// <summary>Address bits 127..64 (IPv4: 0).</summary>
    public readonly ulong Hi;
    /// <summary>Address bits 63..0 (IPv4: the address in the low 32 bits).</summary>
    public readonly ulong Lo;
    /// <summary>Dense dataplane table index.</summary>
    public readonly ushort Table;
    public readonly byte Length;
    public readonly bool V6;

    public FibKey(int table, in Prefix p)
    {
        Hi = (ulong)(p.Address >> 64);
        Lo = (ulong)p.Address;
        Table = (ushort)table;
        Length = p.Length;
        V6 = p.V6;
    }

    public UInt128 Address => ((UInt128)Hi << 64) | Lo;

    /// <summary>The IPv4 address (host order).</summary>
    public uint Ip4 => (uint)Lo;

    public Prefix Prefix => new(V6, Address, Length);

    public bool Equals(FibKey o) => Lo == o.Lo && Hi == o.Hi && Table == o.Table && Length == o.Length && V6 == o.V6;

    public override bool Equals(object? obj) => obj is FibKey k && Equals(k);

    public override int GetHashCode()
    {
        ulong h = (Lo * 0x9E3779B97F4A7C15UL) ^ (Hi * 0xC2B2AE3D27D4EB4FUL) ^ ((ulong)Table << 40) ^ ((ulong)Length << 8) ^ (V6 ? 1UL : 0UL);
        return (int)(h ^ (h >> 32));
    }

    public static bool operator ==(FibKey a, FibKey b) => a.Equals(b);

    public static bool operator !=(FibKey a, FibKey b) => !a.Equals(b);

    public override string ToString() => $"table {Table} {Prefix}";
}
