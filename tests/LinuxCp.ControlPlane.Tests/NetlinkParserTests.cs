using System.Buffers.Binary;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

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
        var events = RecordingSink.Parse(m, out int bad);
        Assert.Equal(0, bad);
        var r = events.Single<RecordingSink.RouteRec>();
        Assert.Equal("198.51.100.0/24", r.Prefix.ToString());
        Assert.Equal(100u, r.Metric);
        Assert.Equal(254u, r.Table);
        RouteNextHop h = Assert.Single(r.Hops);
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
        var events = RecordingSink.Parse(m, out int bad);
        Assert.Equal(0, bad);
        var r = events.Single<RecordingSink.RouteRec>();
        Assert.Equal(2, r.Hops.Length);
        Assert.Equal(1, r.Hops[0].Weight);
        Assert.Equal(3, r.Hops[1].Weight);
        Assert.Equal(4, r.Hops[1].IfIndex);
    }

    [Fact]
    public void Parse_LinkAddrNeigh_Decoded()
    {
        byte[] link = Msg(16, [0, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], (3, "lcp0\0"u8.ToArray()), (4, U32(1400)), (1, [2, 0, 0, 0, 0, 1]));
        byte[] addr = Msg(20, [10, 64, 0, 0, 5, 0, 0, 0], (1, new byte[] { 0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }));
        byte[] neigh = Msg(28, [2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0], (1, [10, 0, 0, 2]), (2, [2, 0, 0, 0, 0, 2]));
        var events = RecordingSink.Parse([.. link, .. addr, .. neigh], out int bad);
        Assert.Equal(0, bad);
        var l = Assert.IsType<RecordingSink.LinkRec>(events.All[0]);
        Assert.Equal(("lcp0", 5, 1400u, 1u), (l.Name, l.IfIndex, l.Mtu, l.Flags & 1));
        var a = Assert.IsType<RecordingSink.AddrRec>(events.All[1]);
        Assert.True(a.V6);
        Assert.Equal(64, a.PrefixLength);
        var n = Assert.IsType<RecordingSink.NeighRec>(events.All[2]);
        Assert.True(n.Resolved);
    }

    [Fact]
    public void Parse_ClonedRouteAndOtherFamilies_Ignored()
    {
        byte[] cloned = Msg(24, [2, 32, 0, 0, 254, 0, 0, 1, 0, 2, 0, 0], (1, [10, 0, 0, 1]));
        byte[] bridge = Msg(24, RtMsg(7, 0));
        var events = RecordingSink.Parse([.. cloned, .. bridge], out int bad);
        Assert.Equal(0, bad);
        Assert.Empty(events.All);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 })]                          // shorter than a header
    [InlineData(new byte[] { 200, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // length beyond the buffer
    [InlineData(new byte[] { 4, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]   // length below the header
    public void Parse_Garbage_CountedNoEvents(byte[] garbage)
    {
        var events = RecordingSink.Parse(garbage, out int bad);
        Assert.Empty(events.All);
        Assert.True(bad >= (garbage.Length >= 16 ? 1 : 0));
    }

    [Fact]
    public void Parse_TruncatedBodyAndBadAttribute_CountedNextMessageStillParsed()
    {
        byte[] truncated = Msg(24, [2, 24, 0]);                                 // rtmsg cut short
        byte[] badAttr = Msg(24, RtMsg(2, 24), (1, [198, 51]));               // RTA_DST too short
        byte[] badPrefix = Msg(24, RtMsg(2, 40), (1, [10, 0, 0, 0]));         // /40 for IPv4
        byte[] good = Msg(24, RtMsg(2, 8), (1, [10, 0, 0, 0]), (4, U32(3)));
        var events = RecordingSink.Parse([.. truncated, .. badAttr, .. badPrefix, .. good], out int bad);
        Assert.Equal(3, bad);
        Assert.Equal("10.0.0.0/8", events.Single<RecordingSink.RouteRec>().Prefix.ToString());
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
            RecordingSink.Parse(buf, out _);
        }
    }

    [Fact]
    public void Parse_NexthopObjects_SingleBlackholeAndGroupWithWeights()
    {
        var w = new NetlinkWriter();
        w.Nexthop(false, 1, ifindex: 7, gateway: "10.0.0.1");
        w.Nexthop(false, 2, blackhole: true);
        w.Nexthop(false, 3, group: [(1, 1), (4, 200)]);
        w.Nexthop(true, 4);
        var e = RecordingSink.Parse(w.Span, out int bad);
        Assert.Equal(0, bad);
        var nh = e.All.OfType<RecordingSink.NexthopRec>().ToList();
        Assert.Equal(4, nh.Count);
        Assert.Equal((1u, 7, true, Prefix.Parse("10.0.0.1").Address), (nh[0].Id, nh[0].IfIndex, nh[0].HasGateway, nh[0].Gateway));
        Assert.True(nh[1].Blackhole);
        Assert.Equal([new NexthopMember(1, 1), new NexthopMember(4, 200)], nh[2].Group);
        Assert.True(nh[3].Deleted);
    }

    [Fact]
    public void Parse_RouteByNexthopId_NoHops()
    {
        var w = new NetlinkWriter().Route(false, "203.0.113.0/24", nhid: 42);
        var r = RecordingSink.Parse(w.Span, out int bad).Single<RecordingSink.RouteRec>();
        Assert.Equal(0, bad);
        Assert.Equal(42u, r.NexthopId);
        Assert.Empty(r.Hops);
    }

    [Fact]
    public void Parse_VrfDeviceAndMember_KindTableAndMaster()
    {
        var w = new NetlinkWriter();
        w.Link(false, 10, "vrf-blue", kind: "vrf", vrfTable: 1001);
        w.Link(false, 11, "lcp1", master: 10, mac: 0x0000_0100_0002UL);
        var e = RecordingSink.Parse(w.Span, out int bad);
        Assert.Equal(0, bad);
        var l = e.All.OfType<RecordingSink.LinkRec>().ToList();
        Assert.Equal(("vrf", 1001u), (l[0].Kind, l[0].VrfTable));
        Assert.Equal((10, 0x0000_0100_0002UL), (l[1].Master, l[1].Mac!.Value));
    }

    [Fact]
    public void Parse_Rules_InputInterfaceAndOtherSelectors()
    {
        var w = new NetlinkWriter();
        w.Rule(false, 100, iifname: "lcp1", priority: 1000);
        w.Rule(false, 200, from: "10.0.0.0/8", priority: 2000);
        var rules = RecordingSink.Parse(w.Span, out int bad).All.OfType<RecordingSink.RuleRec>().ToList();
        Assert.Equal(0, bad);
        Assert.Equal(("lcp1", 100u, false), (rules[0].IifName, rules[0].Table, rules[0].Other));
        Assert.True(rules[1].Other);
    }

    [Fact]
    public void Parse_TruncatedNexthopGroup_Counted()
    {
        var w = new NetlinkWriter().Begin(Nl.NewNexthop, 0);
        w.Bytes(new byte[8]);
        w.U32(Nl.NhaId, 5);
        w.Attr(Nl.NhaGroup, new byte[6]); // not a multiple of struct nexthop_grp
        w.End();
        var e = RecordingSink.Parse(w.Span, out int bad);
        Assert.Equal(1, bad);
        Assert.Empty(e.All);
    }
}
