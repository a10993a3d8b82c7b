using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Paths;
using static LinuxCp.Dataplane.Tests.Frames;

namespace LinuxCp.Dataplane.Tests;

public unsafe class FrameClassifierTests
{
    private static readonly ulong Mac = MacAddress.FromBytes(PortMac).Bits;

    private static Reason Classify(byte[] frame, bool puntOther = true, int? segLen = null, int? pktLen = null)
    {
        fixed (byte* p = frame)
            return FrameClassifier.Classify(p, (uint)(segLen ?? frame.Length), (uint)(pktLen ?? segLen ?? frame.Length), Mac, puntOther);
    }

    [Fact]
    public void Classify_ArpBroadcast_PuntArp() =>
        Assert.Equal(Reason.PuntArp, Classify(Ether(Broadcast, 0x0806, Arp())));

    [Fact]
    public void Classify_Ip4ToPortMac_PuntIp4() =>
        Assert.Equal(Reason.PuntIp4, Classify(Ether(PortMac, 0x0800, Ip4())));

    [Fact]
    public void Classify_Ip4WithOptions_PuntIp4() =>
        Assert.Equal(Reason.PuntIp4, Classify(Ether(PortMac, 0x0800, Ip4(ihlWords: 6))));

    [Fact]
    public void Classify_Ip6Multicast_PuntIp6() =>
        Assert.Equal(Reason.PuntIp6, Classify(Ether([0x33, 0x33, 0xff, 0, 0, 1], 0x86DD, Ip6())));

    [Fact]
    public void Classify_Ip4WithEthernetPadding_PuntIp4()
    {
        // A 28-byte IPv4 packet padded to the 60-byte Ethernet minimum: total length < frame.
        byte[] f = Ether(PortMac, 0x0800, Ip4(payload: 8));
        Array.Resize(ref f, 60);
        Assert.Equal(Reason.PuntIp4, Classify(f));
    }

    [Fact]
    public void Classify_UnicastToOtherMac_DropNotForUs() =>
        Assert.Equal(Reason.DropNotForUs, Classify(Ether(OtherMac, 0x0800, Ip4())));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(13)]
    public void Classify_ShorterThanEthernetHeader_DropRunt(int len) =>
        Assert.Equal(Reason.DropRunt, Classify(new byte[len]));

    [Fact]
    public void Classify_ArpTruncated_DropArpTruncated() =>
        Assert.Equal(Reason.DropArpTruncated, Classify(Ether(Broadcast, 0x0806, new byte[27])));

    [Fact]
    public void Classify_Ip4HeaderTruncated_DropIp4Truncated() =>
        Assert.Equal(Reason.DropIp4Truncated, Classify(Ether(PortMac, 0x0800, Ip4()[..19])));

    [Fact]
    public void Classify_Ip4OptionsTruncated_DropIp4Truncated() =>
        // IHL says 24 bytes of header, the segment holds 22.
        Assert.Equal(Reason.DropIp4Truncated, Classify(Ether(PortMac, 0x0800, Ip4(ihlWords: 6, payload: 0)[..22])));

    [Fact]
    public void Classify_Ip4BadVersion_DropIp4Version() =>
        Assert.Equal(Reason.DropIp4Version, Classify(Ether(PortMac, 0x0800, Ip4(version: 6))));

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void Classify_Ip4IhlBelowFive_DropIp4HeaderLength(int ihl) =>
        Assert.Equal(Reason.DropIp4HeaderLength, Classify(Ether(PortMac, 0x0800, Ip4(ihlWords: ihl))));

    [Fact]
    public void Classify_Ip4TotalLengthBeyondFrame_DropIp4TotalLength() =>
        Assert.Equal(Reason.DropIp4TotalLength, Classify(Ether(PortMac, 0x0800, Ip4(totalLength: 1000))));

    [Fact]
    public void Classify_Ip4TotalLengthBelowHeader_DropIp4TotalLength() =>
        Assert.Equal(Reason.DropIp4TotalLength, Classify(Ether(PortMac, 0x0800, Ip4(totalLength: 19))));

    [Fact]
    public void Classify_Ip4SpanningSegments_UsesPacketLength()
    {
        // Header in the first segment, payload in the next: valid with pkt_len, not data_len.
        byte[] f = Ether(PortMac, 0x0800, Ip4(totalLength: 1000, payload: 8));
        Assert.Equal(Reason.PuntIp4, Classify(f, segLen: f.Length, pktLen: 14 + 1000));
    }

    [Fact]
    public void Classify_Ip6Truncated_DropIp6Truncated() =>
        Assert.Equal(Reason.DropIp6Truncated, Classify(Ether(PortMac, 0x86DD, Ip6()[..39])));

    [Fact]
    public void Classify_Ip6BadVersion_DropIp6Version() =>
        Assert.Equal(Reason.DropIp6Version, Classify(Ether(PortMac, 0x86DD, Ip6(version: 4))));

    [Fact]
    public void Classify_Ip6PayloadBeyondFrame_DropIp6PayloadLength() =>
        Assert.Equal(Reason.DropIp6PayloadLength, Classify(Ether(PortMac, 0x86DD, Ip6(payloadLength: 9, payload: 8))));

    [Fact]
    public void Classify_VlanTagged_PuntVlan() =>
        Assert.Equal(Reason.PuntVlan, Classify(Ether(PortMac, 0x8100, [0, 10, 0x08, 0x00, .. Ip4()])));

    [Fact]
    public void Classify_VlanTagTruncated_DropVlanTruncated() =>
        Assert.Equal(Reason.DropVlanTruncated, Classify(Ether(PortMac, 0x8100, [0, 10, 0x08])));

    [Fact]
    public void Classify_LldpPuntOtherOn_PuntOther() =>
        Assert.Equal(Reason.PuntOther, Classify(Ether([0x01, 0x80, 0xc2, 0, 0, 0x0e], 0x88CC, new byte[32])));

    [Fact]
    public void Classify_LldpPuntOtherOff_DropOtherEthertype() =>
        Assert.Equal(Reason.DropOtherEthertype, Classify(Ether([0x01, 0x80, 0xc2, 0, 0, 0x0e], 0x88CC, new byte[32]), puntOther: false));

    [Fact]
    public void ReasonInfo_EveryReason_HasUniqueNameAndDescription()
    {
        var names = new HashSet<string>();
        for (Reason r = 0; r < Reason.Count; r++)
        {
            Assert.True(names.Add(ReasonInfo.Name(r)), $"duplicate name {ReasonInfo.Name(r)}");
            Assert.NotEqual("unknown", ReasonInfo.Name(r));
            Assert.False(string.IsNullOrEmpty(ReasonInfo.Description(r)));
        }
    }
}
