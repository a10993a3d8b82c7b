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

/// <summary>A route message without its next hops (those come as a span next to it).</summary>
public readonly record struct RouteMsg(bool Deleted, Prefix Prefix, uint Table, byte Type, uint Metric, byte Tos, ushort Flags);

/// <summary>Receives parsed messages. Routes — the bulk of a full table — arrive as a struct
/// with their next hops in a span (nothing allocated); the rare kinds as event records.</summary>
public interface INetlinkSink
{
    void Route(in RouteMsg route, ReadOnlySpan<RouteNextHop> hops);

    void Event(NlEvent e);
}

/// <summary>Parses rtnetlink messages from a receive buffer. Every length is checked against
/// what is left; a malformed message or attribute is counted and skipped, never trusted.</summary>
public static class NetlinkParser
{
    /// <summary>More next hops than this in one route are not kept (a FIB group holds 16).</summary>
    public const int MaxNextHops = 64;

    private struct ListSink(List<NlEvent> output) : INetlinkSink
    {
        public readonly void Route(in RouteMsg r, ReadOnlySpan<RouteNextHop> hops) =>
            output.Add(new RouteEvent(r.Deleted, r.Prefix, r.Table, r.Type, r.Metric, r.Tos, r.Flags, hops.ToArray()));

        public readonly void Event(NlEvent e) => output.Add(e);
    }

    /// <summary>Parses every message of a datagram into event records. Returns the number of malformed messages.</summary>
    public static int Parse(ReadOnlySpan<byte> buf, List<NlEvent> output)
    {
        var sink = new ListSink(output);
        return Parse(buf, ref sink);
    }

    /// <summary>Parses every message of a datagram into a sink. Returns the number of malformed messages.</summary>
    public static int Parse<TSink>(ReadOnlySpan<byte> buf, ref TSink sink) where TSink : INetlinkSink
    {
        int bad = 0;
        Span<RouteNextHop> hops = stackalloc RouteNextHop[MaxNextHops];
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
                if (type is Nl.NewRoute or Nl.DelRoute)
                {
                    if (ParseRoute(type == Nl.DelRoute, flags, Need(body, 12), hops, out RouteMsg r, out int n))
                        sink.Route(r, hops[..n]);
                }
                else if (ParseOne(type, seq, body) is NlEvent e)
                {
                    sink.Event(e);
                }
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

    private static NlEvent? ParseOne(ushort type, uint seq, ReadOnlySpan<byte> body)
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
            case Nl.NewNeigh or Nl.DelNeigh:
                return ParseNeigh(type == Nl.DelNeigh, Need(body, 12));
            default:
                return null; // not ours (Noop, other families)
        }
    }

    /// <summary>Walks rtattrs: each <see cref="Next"/> yields a type (nested/byte-order bits
    /// cleared) and its payload; a length that does not fit throws.</summary>
    private ref struct Attrs(ReadOnlySpan<byte> b)
    {
        private ReadOnlySpan<byte> _b = b;

        public bool Next(out ushort type, out ReadOnlySpan<byte> payload)
        {
            if (_b.Length < 4)
            {
                type = 0;
                payload = default;
                return false;
            }
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(_b);
            type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_b[2..]) & 0x3FFF);
            if (len < 4 || len > _b.Length)
                throw new MalformedException();
            payload = _b[4..len];
            int aligned = (len + 3) & ~3;
            _b = aligned >= _b.Length ? default : _b[aligned..];
            return true;
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
        var attrs = new Attrs(b[16..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
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
        }
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
        var attrs = new Attrs(b[8..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            if (t == Nl.IfaLocal)
                local = Address(p, v6);
            else if (t == Nl.IfaAddress)
                address = Address(p, v6);
        }
        UInt128? a = local ?? address;
        return a is null ? throw new MalformedException() : new AddrEvent(del, v6, index, a.Value, plen);
    }

    /// <summary>A route message into a struct and the next hops into <paramref name="hops"/>;
    /// false for what is not a route we follow (other families, cache clones).</summary>
    private static bool ParseRoute(bool del, ushort nlflags, ReadOnlySpan<byte> b, Span<RouteNextHop> hops, out RouteMsg route, out int count)
    {
        route = default;
        count = 0;
        byte family = b[0];
        if (family is not (Nl.AfInet or Nl.AfInet6))
            return false;
        bool v6 = family == Nl.AfInet6;
        int dstLen = b[1];
        if (dstLen > (v6 ? 128 : 32))
            throw new MalformedException();
        byte tos = b[3];
        uint table = b[4];
        byte rtype = b[7];
        uint rflags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        if ((rflags & Nl.RtmFCloned) != 0)
            return false; // cache entries, not routes
        UInt128 dst = 0;
        uint metric = 0;
        int oif = 0;
        UInt128 gw = 0;
        bool hasGw = false;
        var attrs = new Attrs(b[12..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            switch (t)
            {
                case Nl.RtaDst: dst = Address(p, v6); break;
                case Nl.RtaOif when p.Length >= 4: oif = BinaryPrimitives.ReadInt32LittleEndian(p); break;
                case Nl.RtaGateway: gw = Address(p, v6); hasGw = true; break;
                case Nl.RtaPriority when p.Length >= 4: metric = BinaryPrimitives.ReadUInt32LittleEndian(p); break;
                case Nl.RtaTable when p.Length >= 4: table = BinaryPrimitives.ReadUInt32LittleEndian(p); break;
                case Nl.RtaMultipath: count = ParseMultipath(p, v6, hops); break;
            }
        }
        if (count == 0 && (oif != 0 || hasGw))
            hops[count++] = new RouteNextHop(oif, gw, hasGw, 1);
        route = new RouteMsg(del, new Prefix(v6, dst, dstLen), table, rtype, metric, tos, nlflags);
        return true;
    }

    private static int ParseMultipath(ReadOnlySpan<byte> p, bool v6, Span<RouteNextHop> hops)
    {
        int count = 0;
        while (p.Length >= 8)
        {
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(p);
            if (len < 8 || len > p.Length)
                throw new MalformedException();
            byte weight = p[3];
            int ifindex = BinaryPrimitives.ReadInt32LittleEndian(p[4..]);
            UInt128 gw = 0;
            bool hasGw = false;
            var attrs = new Attrs(p[8..len]);
            while (attrs.Next(out ushort t, out ReadOnlySpan<byte> a))
            {
                if (t == Nl.RtaGateway)
                {
                    gw = Address(a, v6);
                    hasGw = true;
                }
            }
            if (count < hops.Length)
                hops[count++] = new RouteNextHop(ifindex, gw, hasGw, weight + 1);
            int aligned = (len + 3) & ~3;
            if (aligned >= p.Length)
                break;
            p = p[aligned..];
        }
        return count;
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
        var attrs = new Attrs(b[12..]);
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
        {
            if (t == Nl.NdaDst)
                dst = Address(p, v6);
            else if (t == Nl.NdaLladdr && p.Length == 6)
                mac = MacAddress.FromBytes(p);
        }
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
