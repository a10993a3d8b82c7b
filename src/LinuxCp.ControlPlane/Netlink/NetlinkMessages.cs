using System.Buffers.Binary;
using DpdkSharp;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Netlink;

// rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/neighbour.h).
internal static class Nl
{
    public const ushort Noop = 1, Error = 2, Done = 3, Overrun = 4;
    public const ushort NewLink = 16, DelLink = 17, GetLink = 18;
    public const ushort NewAddr = 20, DelAddr = 21, GetAddr = 22;
    public const ushort NewRoute = 24, DelRoute = 25, GetRoute = 26;
    public const ushort NewNeigh = 28, DelNeigh = 29, GetNeigh = 30;
    public const ushort FRequest = 1, FMulti = 2, FDump = 0x300;
    public const ushort FReplace = 0x100, FExcl = 0x200, FCreate = 0x400, FAppend = 0x800;
    public const uint GrpLink = 0x1, GrpNeigh = 0x4, GrpIp4Addr = 0x10, GrpIp4Route = 0x40, GrpIp6Addr = 0x100, GrpIp6Route = 0x400;
    public const uint AllGroups = GrpLink | GrpNeigh | GrpIp4Addr | GrpIp4Route | GrpIp6Addr | GrpIp6Route;
    public const byte AfInet = 2, AfInet6 = 10, AfUnspec = 0;
    public const int HeaderSize = 16;
    public const ushort IflaAddress = 1, IflaIfname = 3, IflaMtu = 4;
    public const ushort IfaAddress = 1, IfaLocal = 2;
    public const ushort RtaDst = 1, RtaOif = 4, RtaGateway = 5, RtaPriority = 6, RtaMultipath = 9, RtaTable = 15;
    public const ushort NdaDst = 1, NdaLladdr = 2;
    public const uint IffUp = 0x1;
    public const byte RtnUnicast = 1, RtnBlackhole = 6, RtnUnreachable = 7, RtnProhibit = 8, RtnThrow = 9;
    public const uint TableMain = 254;
    public const uint RtmFCloned = 0x200;
    public const ushort NudIncomplete = 0x01, NudReachable = 0x02, NudStale = 0x04, NudDelay = 0x08, NudProbe = 0x10,
        NudFailed = 0x20, NudNoarp = 0x40, NudPermanent = 0x80;
    public const ushort NudValid = NudReachable | NudStale | NudDelay | NudProbe | NudPermanent;
}

public abstract record NlEvent(bool Deleted);

public sealed record LinkEvent(bool Deleted, int IfIndex, string? Name, uint Flags, uint Mtu, MacAddress? Mac) : NlEvent(Deleted)
{
    public bool AdminUp => (Flags & Nl.IffUp) != 0;
}

public sealed record AddrEvent(bool Deleted, bool V6, int IfIndex, UInt128 Address, int PrefixLength) : NlEvent(Deleted);

public readonly record struct RouteNextHop(int IfIndex, UInt128 Gateway, bool HasGateway, int Weight);

public sealed record RouteEvent(bool Deleted, Prefix Prefix, uint Table, byte Type, uint Metric, byte Tos,
    ushort Flags, IReadOnlyList<RouteNextHop> NextHops) : NlEvent(Deleted);

public sealed record NeighEvent(bool Deleted, bool V6, int IfIndex, UInt128 Ip, MacAddress? Mac, ushort State) : NlEvent(Deleted)
{
    public bool Resolved => !Deleted && Mac is not null && (State & Nl.NudValid) != 0;
}

/// <summary>Marks the end of a dump (NLMSG_DONE) or an error reply (NLMSG_ERROR).</summary>
public sealed record ControlEvent(ushort Type, int Errno, uint Sequence) : NlEvent(false);

/// <summary>Parses rtnetlink messages from a receive buffer. Every length is checked against
/// what is left; a malformed message or attribute is counted and skipped, never trusted.</summary>
public static class NetlinkParser
{
    /// <summary>Parses every message of a datagram. Returns the number of malformed messages.</summary>
    public static int Parse(ReadOnlySpan<byte> buf, List<NlEvent> output)
    {
        int bad = 0;
        while (buf.Length >= Nl.HeaderSize)
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(buf);
            if (len < Nl.HeaderSize || len > buf.Length)
                return bad + 1; // the rest of the datagram cannot be framed
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buf[4..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(buf[6..]);
            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(buf[8..]);
            ReadOnlySpan<byte> body = buf[Nl.HeaderSize..(int)len];
            try
            {
                NlEvent? e = ParseOne(type, flags, seq, body);
                if (e is not null)
                    output.Add(e);
            }
            catch (MalformedException)
            {
                bad++;
            }
            int aligned = (int)((len + 3) & ~3u);
            if (aligned >= buf.Length)
                break;
            buf = buf[aligned..];
        }
        return bad;
    }

    private sealed class MalformedException : Exception
    {
        public MalformedException() { }

        public MalformedException(string message) : base(message) { }

        public MalformedException(string message, Exception inner) : base(message, inner) { }
    }

    private static ReadOnlySpan<byte> Need(ReadOnlySpan<byte> b, int n) =>
        b.Length >= n ? b : throw new MalformedException();

    private static NlEvent? ParseOne(ushort type, ushort flags, uint seq, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case Nl.Done:
                return new ControlEvent(type, 0, seq);
            case Nl.Error:
                return new ControlEvent(type, -BinaryPrimitives.ReadInt32LittleEndian(Need(body, 4)), seq);
            case Nl.NewLink or Nl.DelLink:
                return ParseLink(type == Nl.DelLink, Need(body, 16));
            case Nl.NewAddr or Nl.DelAddr:
                return ParseAddr(type == Nl.DelAddr, Need(body, 8));
            case Nl.NewRoute or Nl.DelRoute:
                return ParseRoute(type == Nl.DelRoute, flags, Need(body, 12));
            case Nl.NewNeigh or Nl.DelNeigh:
                return ParseNeigh(type == Nl.DelNeigh, Need(body, 12));
            default:
                return null; // not ours (Noop, other families)
        }
    }

    /// <summary>Walks rtattrs; the callback gets the type (nested/byte-order bits cleared) and payload.</summary>
    private delegate void AttrVisitor(ushort type, ReadOnlySpan<byte> payload);

    private static void Attrs(ReadOnlySpan<byte> b, AttrVisitor visit)
    {
        while (b.Length >= 4)
        {
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(b);
            ushort type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(b[2..]) & 0x3FFF);
            if (len < 4 || len > b.Length)
                throw new MalformedException();
            visit(type, b[4..len]);
            int aligned = (len + 3) & ~3;
            if (aligned >= b.Length)
                break;
            b = b[aligned..];
        }
    }

    private static UInt128 Address(ReadOnlySpan<byte> p, bool v6)
    {
        int n = v6 ? 16 : 4;
        if (p.Length < n)
            throw new MalformedException();
        return Prefix.FromBytes(p[..n]);
    }

    private static LinkEvent ParseLink(bool del, ReadOnlySpan<byte> b)
    {
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        uint iflags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        string? name = null;
        uint mtu = 0;
        MacAddress? mac = null;
        Attrs(b[16..], (t, p) =>
        {
            switch (t)
            {
                case Nl.IflaIfname:
                    int z = p.IndexOf((byte)0);
                    name = System.Text.Encoding.UTF8.GetString(z < 0 ? p : p[..z]);
                    break;
                case Nl.IflaMtu when p.Length >= 4:
                    mtu = BinaryPrimitives.ReadUInt32LittleEndian(p);
                    break;
                case Nl.IflaAddress when p.Length == 6:
                    mac = MacAddress.FromBytes(p);
                    break;
            }
        });
        return new LinkEvent(del, index, name, iflags, mtu, mac);
    }

    private static AddrEvent? ParseAddr(bool del, ReadOnlySpan<byte> b)
    {
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return null;
        bool v6 = family == Nl.AfInet6;
        int plen = b[1];
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        if (plen > (v6 ? 128 : 32))
            throw new MalformedException();
        UInt128? local = null, address = null;
        Attrs(b[8..], (t, p) =>
        {
            if (t == Nl.IfaLocal)
                local = Address(p, v6);
            else if (t == Nl.IfaAddress)
                address = Address(p, v6);
        });
        UInt128? a = local ?? address;
        return a is null ? throw new MalformedException() : new AddrEvent(del, v6, index, a.Value, plen);
    }

    private static RouteEvent? ParseRoute(bool del, ushort nlflags, ReadOnlySpan<byte> b)
    {
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return null;
        bool v6 = family == Nl.AfInet6;
        int dstLen = b[1];
        if (dstLen > (v6 ? 128 : 32))
            throw new MalformedException();
        byte tos = b[3];
        uint table = b[4];
        byte rtype = b[7];
        uint rflags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        if ((rflags & Nl.RtmFCloned) != 0)
            return null; // cache entries, not routes
        UInt128 dst = 0;
        uint metric = 0;
        int oif = 0;
        UInt128? gw = null;
        var hops = new List<RouteNextHop>();
        Attrs(b[12..], (t, p) =>
        {
            switch (t)
            {
                case Nl.RtaDst: dst = Address(p, v6); break;
                case Nl.RtaOif when p.Length >= 4: oif = BinaryPrimitives.ReadInt32LittleEndian(p); break;
                case Nl.RtaGateway: gw = Address(p, v6); break;
                case Nl.RtaPriority when p.Length >= 4: metric = BinaryPrimitives.ReadUInt32LittleEndian(p); break;
                case Nl.RtaTable when p.Length >= 4: table = BinaryPrimitives.ReadUInt32LittleEndian(p); break;
                case Nl.RtaMultipath: ParseMultipath(p, v6, hops); break;
            }
        });
        if (hops.Count == 0 && (oif != 0 || gw is not null))
            hops.Add(new RouteNextHop(oif, gw ?? 0, gw is not null, 1));
        return new RouteEvent(del, new Prefix(v6, dst, dstLen), table, rtype, metric, tos, nlflags, hops);
    }

    private static void ParseMultipath(ReadOnlySpan<byte> p, bool v6, List<RouteNextHop> hops)
    {
        while (p.Length >= 8)
        {
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(p);
            if (len < 8 || len > p.Length)
                throw new MalformedException();
            byte weight = p[3];
            int ifindex = BinaryPrimitives.ReadInt32LittleEndian(p[4..]);
            UInt128? gw = null;
            Attrs(p[8..len], (t, a) =>
            {
                if (t == Nl.RtaGateway)
                    gw = Address(a, v6);
            });
            hops.Add(new RouteNextHop(ifindex, gw ?? 0, gw is not null, weight + 1));
            int aligned = (len + 3) & ~3;
            if (aligned >= p.Length)
                break;
            p = p[aligned..];
        }
    }

    private static NeighEvent? ParseNeigh(bool del, ReadOnlySpan<byte> b)
    {
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return null;
        bool v6 = family == Nl.AfInet6;
        int index = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        ushort state = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
        UInt128? dst = null;
        MacAddress? mac = null;
        Attrs(b[12..], (t, p) =>
        {
            if (t == Nl.NdaDst)
                dst = Address(p, v6);
            else if (t == Nl.NdaLladdr && p.Length == 6)
                mac = MacAddress.FromBytes(p);
        });
        return dst is null ? throw new MalformedException() : new NeighEvent(del, v6, index, dst.Value, mac, state);
    }

    /// <summary>A dump request (RTM_GET*, NLM_F_DUMP) for a family.</summary>
    public static byte[] DumpRequest(ushort type, byte family, uint seq)
    {
        int bodyLen = type == Nl.GetLink ? 16 : type == Nl.GetAddr ? 8 : 12;
        var msg = new byte[Nl.HeaderSize + bodyLen];
        BinaryPrimitives.WriteUInt32LittleEndian(msg, (uint)msg.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(6), Nl.FRequest | Nl.FDump);
        BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(8), seq);
        msg[Nl.HeaderSize] = family;
        return msg;
    }
}
