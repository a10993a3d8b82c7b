namespace LinuxCp.Management.Observe;

/// <summary>Writes the classic libpcap file format with nanosecond timestamps
/// (magic a1b23c4d), which tcpdump, tshark and Wireshark read.</summary>
public sealed class PcapWriter : IDisposable
{
    public const uint LinkTypeEthernet = 1;
    public const uint LinkTypeRaw = 101; // raw IPv4/IPv6, for TUN mirrors

    private readonly Stream _out;
    private readonly byte[] _hdr = new byte[16];

    public PcapWriter(Stream output, uint linkType, uint snapLen = 65535)
    {
        _out = output;
        var g = new byte[24];
        BitConverter.TryWriteBytes(g.AsSpan(0), 0xa1b23c4du);
        BitConverter.TryWriteBytes(g.AsSpan(4), (ushort)2);
        BitConverter.TryWriteBytes(g.AsSpan(6), (ushort)4);
        // thiszone and sigfigs stay 0
        BitConverter.TryWriteBytes(g.AsSpan(16), snapLen);
        BitConverter.TryWriteBytes(g.AsSpan(20), linkType);
        _out.Write(g);
    }

    public long Packets { get; private set; }

    public void Write(long unixNanos, ReadOnlySpan<byte> data, uint origLen)
    {
        BitConverter.TryWriteBytes(_hdr.AsSpan(0), (uint)(unixNanos / 1_000_000_000));
        BitConverter.TryWriteBytes(_hdr.AsSpan(4), (uint)(unixNanos % 1_000_000_000));
        BitConverter.TryWriteBytes(_hdr.AsSpan(8), (uint)data.Length);
        BitConverter.TryWriteBytes(_hdr.AsSpan(12), Math.Max(origLen, (uint)data.Length));
        _out.Write(_hdr);
        _out.Write(data);
        Packets++;
    }

    public void Flush() => _out.Flush();

    public void Dispose() => _out.Dispose();
}
