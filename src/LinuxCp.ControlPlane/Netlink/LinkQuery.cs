using System.Buffers.Binary;
using System.Text;
using DpdkSharp;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>One kernel link as a request for it by name returns it.</summary>
public sealed record LinkSnapshot(int IfIndex, string Name, string Kind, uint Flags, uint Mtu, MacAddress? Mac,
    byte TunType, bool TunPersist, int TunQueues)
{
    public bool IsTap => Kind == "tun" && TunType == 2;
    public bool IsTun => Kind == "tun" && TunType == 1;
}

/// <summary>Asks the kernel about one link of a namespace (RTM_GETLINK by name).</summary>
public static class LinkQuery
{
    // One receive buffer per thread: lcp-sync asks every 100 ms.
    [ThreadStatic]
    private static byte[]? t_buf;

    private struct OneLink(uint seq) : INetlinkSink
    {
        public LinkSnapshot? Result;
        public int Errno;
        public bool Done;

        public void Link(in LinkMsg m)
        {
            Result = new LinkSnapshot(m.IfIndex, Encoding.UTF8.GetString(m.Name), Encoding.UTF8.GetString(m.Kind), m.Flags, m.Mtu,
                m.HasMac ? new MacAddress(m.Mac) : null, m.TunType, m.TunPersist, m.TunQueues);
            Done = true;
        }

        public readonly void Address(in AddrMsg m) { }
        public readonly void Route(in RouteMsg m) { }
        public readonly void Neighbor(in NeighMsg m) { }
        public readonly void Nexthop(in NexthopMsg m) { }
        public readonly void Rule(in RuleMsg m) { }

        public void Control(ushort type, int errno, uint s)
        {
            if (s != seq)
                return;
            Errno = errno;
            Done = true;
        }
    }

    /// <summary>The link named <paramref name="ifname"/> in <paramref name="netns"/> (null: ours), or null if there is none.</summary>
    public static LinkSnapshot? Get(string? netns, string ifname)
    {
        const uint Seq = 0x4c43;
        var w = new NetlinkWriter().Begin(Nl.GetLink, Nl.FRequest, Seq);
        w.Bytes(stackalloc byte[16]);
        w.Str(Nl.IflaIfname, ifname);
        // IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS: keep the reply small.
        Span<byte> mask = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(mask, 1u << 3);
        w.Attr(29, mask);
        w.End();
        using var s = new NetlinkSocket(netns, 0, 1 << 16);
        s.Send(w.ToArray());
        byte[] buf = t_buf ??= new byte[1 << 16];
        var sink = new OneLink(Seq);
        long deadline = Environment.TickCount64 + 5000;
        while (!sink.Done && Environment.TickCount64 < deadline)
        {
            int n = s.Receive(buf, 1000);
            if (n == -11 || n == -4)
                continue;
            if (n < 0)
                throw new IOException($"netlink link query failed: {Eal.StrError(-n)}");
            NetlinkParser.Parse(buf.AsSpan(0, n), ref sink);
        }
        return sink.Result;
    }
}
