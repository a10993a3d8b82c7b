using System.Buffers.Binary;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>Parses rtnetlink datagrams into a sink. Every length is checked against what is
/// left; a malformed message or attribute is counted and skipped (the rest of the datagram is
/// still read when its framing holds), never trusted and never thrown. Nothing is allocated:
/// messages are structs with spans into the buffer, next hops and group members go to stack
/// spans.</summary>
public static class NetlinkParser
{
    /// <summary>More next hops than this in one route are not kept (a FIB group holds 16).</summary>
    public const int MaxNextHops = 64;
    /// <summary>More members than this in one nexthop group are not kept.</summary>
    public const int MaxGroupMembers = 256;

    /// <summary>Parses every message of a datagram. Returns the number of malformed messages.</summary>
    public static int Parse<TSink>(ReadOnlySpan<byte> buf, ref TSink sink) where TSink : INetlinkSink
    {
        int bad = 0;
        Span<RouteNextHop> hops = stackalloc RouteNextHop[MaxNextHops];
        Span<NexthopMember> members = stackalloc NexthopMember[MaxGroupMembers];
        while (buf.Length >= Nl.HeaderSize)
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(buf);
            if (len < Nl.HeaderSize || len > buf.Length)
                return bad + 1; // the rest of the datagram cannot be framed
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buf[4..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(buf[6..]);
            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(buf[8..]);
            ReadOnlySpan<byte> body = buf[Nl.HeaderSize..(int)len];
            if (!ParseOne(type, flags, seq, body, hops, members, ref sink))
                bad++;
            int aligned = (int)((len + 3) & ~3u);
            if (aligned >= buf.Length)
                break;
            buf = buf[aligned..];
        }
        return bad;
    }

    private static bool ParseOne<TSink>(ushort type, ushort flags, uint seq, ReadOnlySpan<byte> body,
        Span<RouteNextHop> hops, Span<NexthopMember> members, ref TSink sink) where TSink : INetlinkSink
    {
        switch (type)
        {
            case Nl.Done:
                sink.Control(type, 0, seq);
                return true;
            case Nl.Error:
                if (body.Length < 4)
                    return false;
                sink.Control(type, -BinaryPrimitives.ReadInt32LittleEndian(body), seq);
                return true;
            case Nl.NewLink or Nl.DelLink:
                return ParseLink(type == Nl.DelLink, body, ref sink);
            case Nl.NewAddr or Nl.DelAddr:
                return ParseAddr(type == Nl.DelAddr, body, ref sink);
            case Nl.NewRoute or Nl.DelRoute:
                return ParseRoute(type == Nl.DelRoute, flags, body, hops, ref sink);
            case Nl.NewNeigh or Nl.DelNeigh:
                return ParseNeigh(type == Nl.DelNeigh, body, ref sink);
            case Nl.NewNexthop or Nl.DelNexthop:
                return ParseNexthop(type == Nl.DelNexthop, body, members, ref sink);
            case Nl.NewRule or Nl.DelRule:
                return ParseRule(type == Nl.DelRule, body, ref sink);
            default:
                return true; // not ours (Noop, other families)
        }
    }

    /// <summary>Walks rtattrs: each <see cref="Next"/> yields a type (nested/byte-order bits
    /// cleared) and its payload; a length that does not fit ends the walk with <see cref="Bad"/>.</summary>
    public ref struct Attrs(ReadOnlySpan<byte> b)
    {
        private ReadOnlySpan<byte> _b = b;

        public bool Bad { get; private set; }

        public bool Next(out ushort type, out ReadOnlySpan<byte> payload)
        {
            type = 0;
            payload = default;
            if (_b.Length < 4)
                return false;
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(_b);
            if (len < 4 || len > _b.Length)
            {
                Bad = true;
                return false;
            }
            type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_b[2..]) & 0x3FFF);
            payload = _b[4..len];
            int aligned = (len + 3) & ~3;
            _b = aligned >= _b.Length ? default : _b[aligned..];
            return true;
        }
    }

    private static bool Address(ReadOnlySpan<byte> p, bool v6, out UInt128 a)
    {
        int n = v6 ? 16 : 4;
        a = 0;
        if (p.Length < n)
            return false;
        a = Prefix.FromBytes(p[..n]);
        return true;
    }

    private static bool U32(ReadOnlySpan<byte> p, out uint v)
    {
        v = p.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(p) : 0;
        return p.Length >= 4;
    }

    private static ReadOnlySpan<byte> CString(ReadOnlySpan<byte> p)
    {
        int z = p.IndexOf((byte)0);
        return z < 0 ? p : p[..z];
    }

    private static ulong Mac(ReadOnlySpan<byte> p) =>
        BinaryPrimitives.ReadUInt32LittleEndian(p) | ((ulong)BinaryPrimitives.ReadUInt16LittleEndian(p[4..]) << 32);

    private static bool ParseLink<TSink>(bool del, ReadOnlySpan<byte> b, ref TSink sink) where TSink : INetlinkSink
    {
        if (b.Length < 16)
            return false;
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        uint iflags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        ReadOnlySpan<byte> name = default, kind = default;
        uint mtu = 0, vrfTable = 0;
        var tun = new TunInfo(0, false, -1);
        ulong mac = 0;
        bool hasMac = false;
        int master = 0, carrier = -1;
        var attrs = new Attrs(b[16..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.IflaIfname:
                    name = CString(p);
                    break;
                case Nl.IflaMtu:
                    U32(p, out mtu);
                    break;
                case Nl.IflaAddress when p.Length == 6:
                    mac = Mac(p);
                    hasMac = true;
                    break;
                case Nl.IflaMaster when U32(p, out uint m):
                    master = (int)m;
                    break;
                case Nl.IflaCarrier when p.Length >= 1:
                    carrier = p[0];
                    break;
                case Nl.IflaLinkinfo:
                    if (!ParseLinkInfo(p, ref kind, ref vrfTable, ref tun))
                        return false;
                    break;
            }
        }
        if (attrs.Bad)
            return false;
        sink.Link(new LinkMsg
        {
            Deleted = del, IfIndex = index, Flags = iflags, Mtu = mtu, Mac = mac, HasMac = hasMac, Master = master,
            Carrier = carrier, Name = name, Kind = kind, VrfTable = vrfTable, TunType = tun.Type, TunPersist = tun.Persist,
            TunQueues = tun.Queues,
        });
        return true;
    }

    private record struct TunInfo(byte Type, bool Persist, int Queues);

    private static bool ParseLinkInfo(ReadOnlySpan<byte> p, ref ReadOnlySpan<byte> kind, ref uint vrfTable, ref TunInfo tun)
    {
        var info = new Attrs(p);
        ReadOnlySpan<byte> data = default;
        while (info.Next(out ushort t, out ReadOnlySpan<byte> v))
        {
            if (t == Nl.IflaInfoKind)
                kind = CString(v);
            else if (t == Nl.IflaInfoData)
                data = v;
        }
        if (info.Bad)
            return false;
        if (kind.SequenceEqual("vrf"u8) && !data.IsEmpty)
        {
            var d = new Attrs(data);
            while (d.Next(out ushort t, out ReadOnlySpan<byte> v))
                if (t == Nl.IflaVrfTable)
                    U32(v, out vrfTable);
            if (d.Bad)
                return false;
        }
        else if (kind.SequenceEqual("tun"u8) && !data.IsEmpty)
        {
            var d = new Attrs(data);
            while (d.Next(out ushort t, out ReadOnlySpan<byte> v))
            {
                if (t == Nl.IflaTunType && v.Length >= 1)
                    tun.Type = v[0];
                else if (t == Nl.IflaTunPersist && v.Length >= 1)
                    tun.Persist = v[0] != 0;
                else if (t == Nl.IflaTunNumQueues && U32(v, out uint q))
                    tun.Queues = (int)q;
            }
            if (d.Bad)
                return false;
        }
        return true;
    }

    private static bool ParseAddr<TSink>(bool del, ReadOnlySpan<byte> b, ref TSink sink) where TSink : INetlinkSink
    {
        if (b.Length < 8)
            return false;
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return true;
        bool v6 = family == Nl.AfInet6;
        int plen = b[1];
        uint flags = b[2];
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        if (plen > (v6 ? 128 : 32))
            return false;
        UInt128 local = 0, address = 0;
        bool hasLocal = false, hasAddress = false;
        var attrs = new Attrs(b[8..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.IfaLocal:
                    if (!Address(p, v6, out local))
                        return false;
                    hasLocal = true;
                    break;
                case Nl.IfaAddress:
                    if (!Address(p, v6, out address))
                        return false;
                    hasAddress = true;
                    break;
                case Nl.IfaFlags:
                    U32(p, out flags);
                    break;
            }
        }
        if (attrs.Bad || !(hasLocal || hasAddress))
            return false;
        sink.Address(new AddrMsg
        {
            Deleted = del, V6 = v6, IfIndex = index, Address = hasLocal ? local : address, PrefixLength = plen, Flags = flags,
        });
        return true;
    }

    private static bool ParseRoute<TSink>(bool del, ushort nlflags, ReadOnlySpan<byte> b, Span<RouteNextHop> hops, ref TSink sink)
        where TSink : INetlinkSink
    {
        if (b.Length < 12)
            return false;
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return true;
        bool v6 = family == Nl.AfInet6;
        int dstLen = b[1];
        if (dstLen > (v6 ? 128 : 32))
            return false;
        byte tos = b[3];
        uint table = b[4];
        byte protocol = b[5], scope = b[6], rtype = b[7];
        uint rflags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        if ((rflags & Nl.RtmFCloned) != 0)
            return true; // cache entries, not routes
        UInt128 dst = 0, gw = 0;
        uint metric = 0, nhid = 0;
        int oif = 0, count = 0;
        bool hasGw = false;
        var attrs = new Attrs(b[12..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.RtaDst:
                    if (!Address(p, v6, out dst))
                        return false;
                    break;
                case Nl.RtaOif when p.Length >= 4:
                    oif = BinaryPrimitives.ReadInt32LittleEndian(p);
                    break;
                case Nl.RtaGateway:
                    if (!Address(p, v6, out gw))
                        return false;
                    hasGw = true;
                    break;
                case Nl.RtaPriority:
                    U32(p, out metric);
                    break;
                case Nl.RtaTable:
                    U32(p, out table);
                    break;
                case Nl.RtaNhId:
                    U32(p, out nhid);
                    break;
                case Nl.RtaMultipath:
                    count = ParseMultipath(p, v6, hops);
                    if (count < 0)
                        return false;
                    break;
            }
        }
        if (attrs.Bad)
            return false;
        if (count == 0 && (oif != 0 || hasGw))
            hops[count++] = new RouteNextHop(oif, gw, hasGw, 1);
        sink.Route(new RouteMsg
        {
            Deleted = del, NlFlags = nlflags, Prefix = new Prefix(v6, dst, dstLen), Table = table, Type = rtype,
            Protocol = protocol, Scope = scope, Metric = metric, Tos = tos, NexthopId = nhid, Hops = hops[..count],
        });
        return true;
    }

    /// <summary>RTA_MULTIPATH into <paramref name="hops"/>; -1 when malformed.</summary>
    private static int ParseMultipath(ReadOnlySpan<byte> p, bool v6, Span<RouteNextHop> hops)
    {
        int count = 0;
        while (p.Length >= 8)
        {
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(p);
            if (len < 8 || len > p.Length)
                return -1;
            byte weight = p[3];
            int ifindex = BinaryPrimitives.ReadInt32LittleEndian(p[4..]);
            UInt128 gw = 0;
            bool hasGw = false;
            var attrs = new Attrs(p[8..len]);
            while (attrs.Next(out ushort t, out ReadOnlySpan<byte> a))
            {
                if (t == Nl.RtaGateway)
                {
                    if (!Address(a, v6, out gw))
                        return -1;
                    hasGw = true;
                }
            }
            if (attrs.Bad)
                return -1;
            if (count < hops.Length)
                hops[count++] = new RouteNextHop(ifindex, gw, hasGw, weight + 1);
            int aligned = (len + 3) & ~3;
            if (aligned >= p.Length)
                break;
            p = p[aligned..];
        }
        return count;
    }

    private static bool ParseNeigh<TSink>(bool del, ReadOnlySpan<byte> b, ref TSink sink) where TSink : INetlinkSink
    {
        if (b.Length < 12)
            return false;
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return true;
        bool v6 = family == Nl.AfInet6;
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        ushort state = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
        UInt128 dst = 0;
        bool hasDst = false, hasMac = false;
        ulong mac = 0;
        var attrs = new Attrs(b[12..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            if (t == Nl.NdaDst)
            {
                if (!Address(p, v6, out dst))
                    return false;
                hasDst = true;
            }
            else if (t == Nl.NdaLladdr && p.Length == 6)
            {
                mac = Mac(p);
                hasMac = true;
            }
        }
        if (attrs.Bad || !hasDst)
            return false;
        sink.Neighbor(new NeighMsg { Deleted = del, V6 = v6, IfIndex = index, State = state, Ip = dst, Mac = mac, HasMac = hasMac });
        return true;
    }

    private static bool ParseNexthop<TSink>(bool del, ReadOnlySpan<byte> b, Span<NexthopMember> members, ref TSink sink)
        where TSink : INetlinkSink
    {
        if (b.Length < 8)
            return false;
        byte family = b[0];
        uint id = 0;
        bool blackhole = false, hasGw = false, fdb = false;
        int oif = 0, count = 0;
        UInt128 gw = 0;
        ushort groupType = 0;
        var attrs = new Attrs(b[8..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.NhaId:
                    U32(p, out id);
                    break;
                case Nl.NhaBlackhole:
                    blackhole = true;
                    break;
                case Nl.NhaFdb:
                    fdb = true;
                    break;
                case Nl.NhaOif when p.Length >= 4:
                    oif = BinaryPrimitives.ReadInt32LittleEndian(p);
                    break;
                case Nl.NhaGateway:
                    // The gateway's family can differ from the message's (IPv4 over an IPv6 gateway).
                    if (p.Length is not (4 or 16))
                        return false;
                    gw = Prefix.FromBytes(p);
                    hasGw = true;
                    if (family == Nl.AfUnspec)
                        family = p.Length == 16 ? Nl.AfInet6 : Nl.AfInet;
                    break;
                case Nl.NhaGroupType when p.Length >= 2:
                    groupType = BinaryPrimitives.ReadUInt16LittleEndian(p);
                    break;
                case Nl.NhaGroup:
                    if (p.Length % 8 != 0)
                        return false;
                    for (int i = 0; i + 8 <= p.Length && count < members.Length; i += 8)
                        members[count++] = new NexthopMember(BinaryPrimitives.ReadUInt32LittleEndian(p[i..]), p[i + 4] + 1);
                    break;
            }
        }
        if (attrs.Bad || id == 0)
            return false;
        sink.Nexthop(new NexthopMsg
        {
            Deleted = del, Id = id, Family = family, Blackhole = blackhole, IfIndex = oif, Gateway = gw, HasGateway = hasGw,
            Fdb = fdb, GroupType = groupType, Group = members[..count],
        });
        return true;
    }

    private static bool ParseRule<TSink>(bool del, ReadOnlySpan<byte> b, ref TSink sink) where TSink : INetlinkSink
    {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags(u32)
        if (b.Length < 12)
            return false;
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return true;
        bool other = b[1] != 0 || b[2] != 0 || b[3] != 0;
        uint table = b[4];
        byte action = b[7];
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        other |= (flags & 0x2) != 0; // FIB_RULE_INVERT
        uint priority = 0;
        bool l3mdev = false;
        ReadOnlySpan<byte> iif = default;
        var attrs = new Attrs(b[12..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.FraIifname:
                    iif = CString(p);
                    break;
                case Nl.FraTable:
                    U32(p, out table);
                    break;
                case Nl.FraPriority:
                    U32(p, out priority);
                    break;
                case Nl.FraL3mdev when p.Length >= 1:
                    l3mdev = p[0] != 0;
                    break;
                case Nl.FraFwmark or Nl.FraOifname or Nl.FraUidRange or Nl.FraIpProto or Nl.FraSportRange or Nl.FraDportRange
                    or Nl.FraSrc or Nl.FraDst:
                    other = true;
                    break;
            }
        }
        if (attrs.Bad)
            return false;
        sink.Rule(new RuleMsg
        {
            Deleted = del, V6 = family == Nl.AfInet6, Priority = priority, Action = action, Table = table, IifName = iif,
            HasOtherSelectors = other, L3mdev = l3mdev,
        });
        return true;
    }
}
