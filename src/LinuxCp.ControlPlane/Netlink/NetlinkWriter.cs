using System.Buffers.Binary;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>Builds rtnetlink messages: lcpd's own requests (dumps), and the kernel's messages as
/// unit tests, fuzz seeds and the replay benchmark need them. Messages are appended to one
/// growing buffer; <see cref="ToArray"/> is the datagram.</summary>
public sealed class NetlinkWriter
{
    private byte[] _buf = new byte[256];
    private int _len;
    private int _msgStart = -1;
    private readonly Stack<int> _nests = new();

    public int Length => _len;

    public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();

    public ReadOnlySpan<byte> Span => _buf.AsSpan(0, _len);

    public void Clear()
    {
        _len = 0;
        _msgStart = -1;
        _nests.Clear();
    }

    private Span<byte> Take(int n)
    {
        int aligned = (n + 3) & ~3;
        if (_len + aligned > _buf.Length)
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + aligned));
        Span<byte> s = _buf.AsSpan(_len, aligned);
        s.Clear();
        _len += aligned;
        return s[..n];
    }

    /// <summary>Starts a message: the 16-byte header, then the fixed body the caller writes.</summary>
    public NetlinkWriter Begin(ushort type, ushort flags, uint seq = 0, uint pid = 0)
    {
        End();
        _msgStart = _len;
        Span<byte> h = Take(Nl.HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], pid);
        return this;
    }

    /// <summary>Ends the current message (sets its length). Called by <see cref="Begin"/> and <see cref="ToArray"/> users.</summary>
    public NetlinkWriter End()
    {
        if (_msgStart < 0)
            return this;
        while (_nests.Count != 0)
            EndNest();
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(_msgStart), (uint)(_len - _msgStart));
        _msgStart = -1;
        return this;
    }

    public NetlinkWriter Bytes(ReadOnlySpan<byte> b)
    {
        b.CopyTo(Take(b.Length));
        return this;
    }

    public NetlinkWriter Attr(ushort type, ReadOnlySpan<byte> payload)
    {
        Span<byte> a = Take(4 + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)(4 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], type);
        payload.CopyTo(a[4..]);
        return this;
    }

    public NetlinkWriter U32(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Attr(type, b);
    }

    public NetlinkWriter U16(ushort type, ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        return Attr(type, b);
    }

    public NetlinkWriter U8(ushort type, byte v) => Attr(type, [v]);

    public NetlinkWriter Flag(ushort type) => Attr(type, []);

    public NetlinkWriter Str(ushort type, string s)
    {
        Span<byte> b = stackalloc byte[s.Length + 1];
        for (int i = 0; i < s.Length; i++)
            b[i] = (byte)s[i];
        return Attr(type, b);
    }

    public NetlinkWriter Ip(ushort type, bool v6, UInt128 a)
    {
        Span<byte> b = stackalloc byte[16];
        Prefix.ToBytes(a, v6, b);
        return Attr(type, b[..(v6 ? 16 : 4)]);
    }

    public NetlinkWriter Mac(ushort type, ulong mac)
    {
        Span<byte> b = stackalloc byte[6];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)mac);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], (ushort)(mac >> 32));
        return Attr(type, b);
    }

    public NetlinkWriter BeginNest(ushort type)
    {
        _nests.Push(_len);
        Span<byte> a = Take(4);
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], (ushort)(type | 0x8000));
        return this;
    }

    public NetlinkWriter EndNest()
    {
        int start = _nests.Pop();
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start), (ushort)(_len - start));
        return this;
    }

    // ---- whole messages ------------------------------------------------------------------------

    /// <summary>A dump request (RTM_GET*, NLM_F_DUMP) for a family.</summary>
    public static byte[] DumpRequest(ushort type, byte family, uint seq)
    {
        int bodyLen = type switch { Nl.GetLink => 16, Nl.GetAddr => 8, Nl.GetNexthop => 8, Nl.GetRule => 12, _ => 12 };
        var w = new NetlinkWriter().Begin(type, Nl.FRequest | Nl.FDump, seq);
        Span<byte> body = stackalloc byte[bodyLen];
        body[0] = family;
        w.Bytes(body);
        return w.End().ToArray();
    }

    public NetlinkWriter Link(bool del, int ifindex, string name, uint flags = Nl.IffUp, uint mtu = 1500, ulong mac = 0,
        int master = 0, string? kind = null, uint vrfTable = 0)
    {
        Begin(del ? Nl.DelLink : Nl.NewLink, 0);
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], ifindex);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        Bytes(h);
        Str(Nl.IflaIfname, name);
        U32(Nl.IflaMtu, mtu);
        if (mac != 0)
            Mac(Nl.IflaAddress, mac);
        if (master != 0)
            U32(Nl.IflaMaster, (uint)master);
        if (kind is not null)
        {
            BeginNest(Nl.IflaLinkinfo).Str(Nl.IflaInfoKind, kind);
            if (vrfTable != 0)
                BeginNest(Nl.IflaInfoData).U32(Nl.IflaVrfTable, vrfTable).EndNest();
            EndNest();
        }
        return End();
    }

    public NetlinkWriter Address(bool del, int ifindex, string prefix, uint flags = 0)
    {
        Prefix p = Dataplane.Fib.Prefix.Parse(prefix);
        UInt128 addr = ParseIp(prefix.Split('/')[0]);
        Begin(del ? Nl.DelAddr : Nl.NewAddr, 0);
        Span<byte> h = stackalloc byte[8];
        h[0] = p.V6 ? Nl.AfInet6 : Nl.AfInet;
        h[1] = p.Length;
        h[2] = (byte)flags;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], ifindex);
        Bytes(h);
        Ip(Nl.IfaLocal, p.V6, addr);
        Ip(Nl.IfaAddress, p.V6, addr);
        if (flags > 0xFF)
            U32(Nl.IfaFlags, flags);
        return End();
    }

    /// <summary>A route message. <paramref name="hops"/>: (ifindex, gateway or null, weight);
    /// one hop is written as RTA_OIF/RTA_GATEWAY, several as RTA_MULTIPATH.</summary>
    public NetlinkWriter Route(bool del, string prefix, uint table = Nl.TableMain, byte type = Nl.RtnUnicast, uint metric = 0,
        uint nhid = 0, ushort nlflags = 0, byte protocol = 4, params (int IfIndex, string? Gateway, int Weight)[] hops)
    {
        Prefix p = Dataplane.Fib.Prefix.Parse(prefix);
        Begin(del ? Nl.DelRoute : Nl.NewRoute, nlflags);
        Span<byte> h = stackalloc byte[12];
        h[0] = p.V6 ? Nl.AfInet6 : Nl.AfInet;
        h[1] = p.Length;
        h[4] = table < 256 ? (byte)table : (byte)Nl.TableUnspec;
        h[5] = protocol;
        h[6] = (byte)(hops.Length == 1 && hops[0].Gateway is null ? 253 : 0); // scope link / universe
        h[7] = type;
        Bytes(h);
        U32(Nl.RtaTable, table);
        if (p.Length != 0)
            Ip(Nl.RtaDst, p.V6, p.Address);
        if (metric != 0)
            U32(Nl.RtaPriority, metric);
        if (nhid != 0)
            U32(Nl.RtaNhId, nhid);
        if (hops.Length == 1)
        {
            if (hops[0].IfIndex != 0)
                U32(Nl.RtaOif, (uint)hops[0].IfIndex);
            if (hops[0].Gateway is string g)
                Ip(Nl.RtaGateway, p.V6, ParseIp(g));
        }
        else if (hops.Length > 1)
        {
            var inner = new NetlinkWriter();
            foreach (var (ifx, gw, weight) in hops)
            {
                int start = inner._len;
                Span<byte> nh = inner.Take(8);
                nh[2] = 0;
                nh[3] = (byte)Math.Max(0, weight - 1);
                BinaryPrimitives.WriteInt32LittleEndian(nh[4..], ifx);
                if (gw is not null)
                    inner.Ip(Nl.RtaGateway, p.V6, ParseIp(gw));
                BinaryPrimitives.WriteUInt16LittleEndian(inner._buf.AsSpan(start), (ushort)(inner._len - start));
            }
            Attr(Nl.RtaMultipath, inner.Span);
        }
        return End();
    }

    public NetlinkWriter Neighbor(bool del, int ifindex, string ip, ulong mac, ushort state = Nl.NudReachable)
    {
        UInt128 a = ParseIp(ip, out bool v6);
        Begin(del ? Nl.DelNeigh : Nl.NewNeigh, 0);
        Span<byte> h = stackalloc byte[12];
        h[0] = v6 ? Nl.AfInet6 : Nl.AfInet;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], ifindex);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], state);
        Bytes(h);
        Ip(Nl.NdaDst, v6, a);
        if (mac != 0)
            Mac(Nl.NdaLladdr, mac);
        return End();
    }

    /// <summary>A nexthop object: a single one (<paramref name="ifindex"/>, <paramref name="gateway"/>),
    /// a blackhole, or a group of <paramref name="group"/> (id, weight 1-256).</summary>
    public NetlinkWriter Nexthop(bool del, uint id, int ifindex = 0, string? gateway = null, bool blackhole = false,
        params (uint Id, int Weight)[] group)
    {
        bool v6 = gateway is not null && gateway.Contains(':', StringComparison.Ordinal);
        Begin(del ? Nl.DelNexthop : Nl.NewNexthop, 0);
        Span<byte> h = stackalloc byte[8];
        h[0] = group.Length != 0 ? Nl.AfUnspec : v6 ? Nl.AfInet6 : Nl.AfInet;
        Bytes(h);
        U32(Nl.NhaId, id);
        if (blackhole)
            Flag(Nl.NhaBlackhole);
        if (ifindex != 0)
            U32(Nl.NhaOif, (uint)ifindex);
        if (gateway is not null)
            Ip(Nl.NhaGateway, v6, ParseIp(gateway));
        if (group.Length != 0)
        {
            Span<byte> g = stackalloc byte[group.Length * 8];
            for (int i = 0; i < group.Length; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(g[(i * 8)..], group[i].Id);
                g[i * 8 + 4] = (byte)(group[i].Weight - 1);
            }
            Attr(Nl.NhaGroup, g);
            U16(Nl.NhaGroupType, 0);
        }
        return End();
    }

    public NetlinkWriter Rule(bool del, uint table, string? iifname = null, uint priority = 1000, bool v6 = false, string? from = null)
    {
        Begin(del ? Nl.DelRule : Nl.NewRule, 0);
        Span<byte> h = stackalloc byte[12];
        h[0] = v6 ? Nl.AfInet6 : Nl.AfInet;
        Prefix? src = from is null ? null : Dataplane.Fib.Prefix.Parse(from);
        h[2] = src?.Length ?? 0;
        h[4] = table < 256 ? (byte)table : (byte)0;
        h[7] = Nl.FrActToTbl;
        Bytes(h);
        U32(Nl.FraTable, table);
        U32(Nl.FraPriority, priority);
        if (iifname is not null)
            Str(Nl.FraIifname, iifname);
        if (src is Prefix sp)
            Ip(Nl.FraSrc, sp.V6, sp.Address);
        return End();
    }

    public NetlinkWriter Done(uint seq = 0)
    {
        Begin(Nl.Done, Nl.FMulti, seq);
        Bytes(stackalloc byte[4]);
        return End();
    }

    private static UInt128 ParseIp(string s) => ParseIp(s, out _);

    private static UInt128 ParseIp(string s, out bool v6)
    {
        var ip = System.Net.IPAddress.Parse(s);
        v6 = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        return Dataplane.Fib.Prefix.FromBytes(ip.GetAddressBytes());
    }
}
