using System.Buffers.Binary;
using LinuxCp.ControlPlane.Netlink;

namespace LinuxCp.Management.Tests;

/// <summary>rtnetlink parsing from hand-built messages, including truncated and garbage ones.</summary>
public class NetlinkParserTests
{
    private static byte[] Msg(ushort type, byte[] body, params (ushort Type, byte[] Data)[] attrs)
    {
        var b = new List<byte>(new byte[16]);
        b.AddRange(body);
        foreach (var (t, d) in attrs)
        {
            var a = new byte[(4 + d.Length + 3) & ~3];
            BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)(4 + d.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(2), t);
            d.CopyTo(a, 4);
            b.AddRange(a);
        }
        int len = b.Count;
        while (b.Count % 4 != 0)
            b.Add(0); // the next message starts aligned; nlmsg_len excludes the padding
        byte[] m = [.. b];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)len);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(4), type);
        return m;
    }

    private static byte[] U32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    private static byte[] RtMsg(byte family, byte dstLen, byte table = 254, byte type = 1) =>
        [family, dstLen, 0, 0, table, 3, 0, type, 0, 0, 0, 0];

    [Fact]
    public void Parse_RouteWithGateway_AllFields()
    {
        byte[] m = Msg(24, RtMsg(2, 24), (1, [198, 51, 100, 0]), (5, [10, 0, 0, 1]), (4, U32(7)), (6, U32(100)));
        var events = new List<NlEvent>();
        Assert.Equal(0, NetlinkParser.Parse(m, events));
        var r = Assert.IsType<RouteEvent>(Assert.Single(events));
        Assert.Equal("198.51.100.0/24", r.Prefix.ToString());
        Assert.Equal(100u, r.Metric);
        Assert.Equal(254u, r.Table);
        RouteNextHop h = Assert.Single(r.NextHops);
        Assert.Equal(7, h.IfIndex);
        Assert.True(h.HasGateway);
        Assert.Equal("10.0.0.1", LinuxCp.Dataplane.Fib.Prefix.Format(false, h.Gateway));
    }

    [Fact]
    public void Parse_Multipath_WeightsAndGateways()
    {
        byte[] nh(byte weight, int ifindex, byte[] gw)
        {
            var a = new List<byte> { 16, 0, 0, weight };
            a.AddRange(BitConverter.GetBytes(ifindex));
            a.AddRange(new byte[] { 8, 0, 5, 0 });
            a.AddRange(gw);
            return [.. a];
        }
        byte[] m = Msg(24, RtMsg(2, 16), (1, [10, 9, 0, 0]), (9, [.. nh(0, 3, [10, 0, 0, 1]), .. nh(2, 4, [10, 0, 1, 1])]));
        var events = new List<NlEvent>();
        Assert.Equal(0, NetlinkParser.Parse(m, events));
        var r = Assert.IsType<RouteEvent>(Assert.Single(events));
        Assert.Equal(2, r.NextHops.Count);
        Assert.Equal(1, r.NextHops[0].Weight);
        Assert.Equal(3, r.NextHops[1].Weight);
        Assert.Equal(4, r.NextHops[1].IfIndex);
    }

    [Fact]
    public void Parse_LinkAddrNeigh_Decoded()
    {
        byte[] link = Msg(16, [0, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], (3, "lcp0\0"u8.ToArray()), (4, U32(1400)), (1, [2, 0, 0, 0, 0, 1]));
        byte[] addr = Msg(20, [10, 64, 0, 0, 5, 0, 0, 0], (1, new byte[] { 0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }));
        byte[] neigh = Msg(28, [2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0], (1, [10, 0, 0, 2]), (2, [2, 0, 0, 0, 0, 2]));
        var events = new List<NlEvent>();
        Assert.Equal(0, NetlinkParser.Parse([.. link, .. addr, .. neigh], events));
        var l = Assert.IsType<LinkEvent>(events[0]);
        Assert.Equal(("lcp0", 5, 1400u, true), (l.Name, l.IfIndex, l.Mtu, l.AdminUp));
        var a = Assert.IsType<AddrEvent>(events[1]);
        Assert.True(a.V6);
        Assert.Equal(64, a.PrefixLength);
        var n = Assert.IsType<NeighEvent>(events[2]);
        Assert.True(n.Resolved);
    }

    [Fact]
    public void Parse_ClonedRouteAndOtherFamilies_Ignored()
    {
        byte[] cloned = Msg(24, [2, 32, 0, 0, 254, 0, 0, 1, 0, 2, 0, 0], (1, [10, 0, 0, 1]));
        byte[] bridge = Msg(24, RtMsg(7, 0));
        var events = new List<NlEvent>();
        Assert.Equal(0, NetlinkParser.Parse([.. cloned, .. bridge], events));
        Assert.Empty(events);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 })]                          // shorter than a header
    [InlineData(new byte[] { 200, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // length beyond the buffer
    [InlineData(new byte[] { 4, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]   // length below the header
    public void Parse_Garbage_CountedNoEvents(byte[] garbage)
    {
        var events = new List<NlEvent>();
        int bad = NetlinkParser.Parse(garbage, events);
        Assert.Empty(events);
        Assert.True(bad >= (garbage.Length >= 16 ? 1 : 0));
    }

    [Fact]
    public void Parse_TruncatedBodyAndBadAttribute_CountedNextMessageStillParsed()
    {
        byte[] truncated = Msg(24, [2, 24, 0]);                                 // rtmsg cut short
        byte[] badAttr = Msg(24, RtMsg(2, 24), (1, [198, 51]));               // RTA_DST too short
        byte[] badPrefix = Msg(24, RtMsg(2, 40), (1, [10, 0, 0, 0]));         // /40 for IPv4
        byte[] good = Msg(24, RtMsg(2, 8), (1, [10, 0, 0, 0]), (4, U32(3)));
        var events = new List<NlEvent>();
        Assert.Equal(3, NetlinkParser.Parse([.. truncated, .. badAttr, .. badPrefix, .. good], events));
        Assert.Equal("10.0.0.0/8", Assert.IsType<RouteEvent>(Assert.Single(events)).Prefix.ToString());
    }

    [Fact]
    public void Parse_RandomBytes_NeverThrows()
    {
        var rng = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            var buf = new byte[rng.Next(0, 200)];
            rng.NextBytes(buf);
            if (buf.Length >= 4)
                BinaryPrimitives.WriteUInt32LittleEndian(buf, (uint)rng.Next(0, buf.Length + 8));
            NetlinkParser.Parse(buf, new List<NlEvent>());
        }
    }
}
