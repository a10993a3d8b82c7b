using System.Buffers.Binary;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;
using static LinuxCp.Dataplane.Tests.Frames;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The worker's x-connect, punt and TX nodes, one at a time, on a real worker lcore and
/// real DPDK ports (pcap files in and out): what leaves each port is compared byte for byte with
/// what should, and the counters with what happened. The same paths run under lcpd in the
/// integration tests, there with kernel mirrors and Linux peers.</summary>
[Collection("eal")]
public sealed class NodeTests(EalFixture eal)
{
    private static readonly ulong Mac = MacAddress.FromBytes(PortMac).Bits;
    private static readonly ulong Peer = MacAddress.FromBytes(PeerMac).Bits;

    private static PollEntry Entry(ushort port, ushort peer, PollKind kind) => new(port, peer, kind, Mac, Mac);

    private static byte[] Udp4(byte[] dstMac, ushort dport, int payload = 18)
    {
        byte[] ip = Ip4(payload: 8 + payload);
        ip[9] = 17;
        ip[12] = 192; ip[13] = 0; ip[14] = 2; ip[15] = 1;
        ip[16] = 192; ip[17] = 0; ip[18] = 2; ip[19] = 9;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(20), 40000);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(22), dport);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(24), (ushort)(8 + payload));
        return Ether(dstMac, 0x0800, ip);
    }

    /// <summary>A UDP frame to <paramref name="dst"/> with a correct IPv4 header checksum.</summary>
    private static byte[] Udp4To(uint dst, byte ttl)
    {
        byte[] f = Udp4(PortMac, 53);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(30), dst);
        f[22] = ttl;
        SetChecksum(f);
        return f;
    }

    private static void SetChecksum(byte[] f) =>
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(24), Checksum(f.AsSpan(14, 20)));

    private static byte[] Ip6Frame()
    {
        byte[] ip = Ip6();
        ip[8] = 0x20; ip[9] = 0x01; ip[10] = 0x0d; ip[11] = 0xb8; ip[23] = 1;  // 2001:db8::1
        ip[24] = 0x20; ip[25] = 0x01; ip[26] = 0x0d; ip[27] = 0xb8; ip[39] = 9; // 2001:db8::9
        return Ether(PortMac, 0x86DD, ip);
    }

    private static byte[] ArpFrame() => Ether(Broadcast, 0x0806, [0, 1, 8, 0, 6, 4, 0, 1, .. new byte[20]]);

    [Fact]
    public void Xconnect_WhatTheMirrorSends_LeavesOnThePortUnchangedInOrder_Counted()
    {
        using var rig = new NodeRig(eal);
        byte[][] frames = [ArpFrame(), Udp4(OtherMac, 53), Ether(Broadcast, 0x88CC, new byte[46]), Udp4(OtherMac, 9, payload: 1400)];
        ushort phy = rig.Port();
        ushort mirror = rig.Port(frames);
        rig.Run([Entry(phy, mirror, PollKind.PhyToTap), Entry(mirror, phy, PollKind.TapToPhy)],
            e => e.ReadPort(phy, PortCounter.TxPackets) == frames.Length);

        Assert.Equal(frames, rig.Sent(phy));
        Assert.Empty(rig.Sent(mirror));
        Assert.Equal(frames.Length, rig.Engine.ReadPort(mirror, PortCounter.RxPackets));
        Assert.Equal(frames.Sum(f => (long)f.Length), rig.Engine.ReadPort(phy, PortCounter.TxBytes));
        Assert.Equal(0, rig.Engine.ReadPort(phy, PortCounter.TxErrors));
    }

    [Fact]
    public void Punt_WhatIsForTheRouter_ReachesTheMirrorUnchanged_ForeignAndRuntDropped()
    {
        using var rig = new NodeRig(eal);
        byte[] arp = ArpFrame(), ip4 = Udp4(PortMac, 179), ip6 = Ip6Frame();
        byte[] foreign = Udp4(OtherMac, 179), runt = new byte[10];
        ushort phy = rig.Port(arp, foreign, ip4, runt, ip6);
        ushort mirror = rig.Port();
        rig.Run([Entry(phy, mirror, PollKind.PhyToTap), Entry(mirror, phy, PollKind.TapToPhy)],
            e => e.ReadPort(phy, PortCounter.Punts) + e.ReadPort(phy, PortCounter.Drops) == 5);

        // No FIB yet: IP to the router's MAC goes to Linux, as received.
        Assert.Equal([arp, ip4, ip6], rig.Sent(mirror));
        Assert.Empty(rig.Sent(phy));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.PuntArp));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.PuntIp4));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.PuntIp6));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.DropNotForUs));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.DropRunt));
        Assert.Equal(3, rig.Engine.ReadPort(mirror, PortCounter.TxPackets));
    }

    [Fact]
    public void Punt_PortWithoutMirror_DropsWhatItWouldPunt_Counted()
    {
        using var rig = new NodeRig(eal);
        ushort phy = rig.Port(ArpFrame(), Udp4(PortMac, 179));
        rig.Run([new PollEntry(phy, ushort.MaxValue, PollKind.PhyUnpaired, Mac, 0)],
            e => e.ReadReason(Reason.DropNoMirror) == 2);

        Assert.Equal(2, rig.Engine.ReadReason(Reason.DropNoMirror));
        Assert.Equal(2, rig.Engine.ReadPort(phy, PortCounter.Drops));
        Assert.Empty(rig.Sent(phy));
    }

    [Fact]
    public void Punt_OverThePolicersBudget_DroppedAndCounted_TheRestReachesTheMirror()
    {
        using var rig = new NodeRig(eal);
        const int Sent = 40;
        var settings = new (long Rate, long Burst)[(int)PuntClass.Count];
        settings[(int)PuntClass.ArpNd] = (1, 2); // 1 packet a second, a burst of 2
        rig.Engine.Publish(FeatureSnapshot.None.With(new PuntPolicers(settings, (long)Eal.TscHz, 1)), TimeSpan.FromSeconds(2));
        ushort phy = rig.Port(Enumerable.Range(0, Sent).Select(_ => ArpFrame()).ToArray());
        ushort mirror = rig.Port();
        rig.Run([Entry(phy, mirror, PollKind.PhyToTap), Entry(mirror, phy, PollKind.TapToPhy)],
            e => e.ReadReason(Reason.PuntArp) + e.ReadReason(Reason.DropPuntPoliced) == Sent);

        long admitted = rig.Engine.ReadReason(Reason.PuntArp), policed = rig.Engine.ReadReason(Reason.DropPuntPoliced);
        Assert.Equal(Sent, admitted + policed);
        Assert.InRange(admitted, 1, 4); // the burst, and a token or two while the run lasted
        Assert.Equal(admitted, rig.Sent(mirror).Count);
    }

    [Fact]
    public void Tun_PuntDropsTheL2HeaderAndLearnsThePeer_XconnectWritesTheHeaderTowardsIt()
    {
        using var rig = new NodeRig(eal);
        byte[] fromPeer = Udp4(PortMac, 179);
        byte[] fromLinux = Udp4(PeerMac, 179)[14..];
        byte[] notIp = new byte[20]; // version 0
        ushort phy = rig.Port(fromPeer);
        ushort tun = rig.Port(fromLinux, notIp);
        // The phy entry is polled first in each loop: the peer is known before the TUN's packets.
        rig.Run([Entry(phy, tun, PollKind.PhyToTun), Entry(tun, phy, PollKind.TunToPhy)],
            e => e.ReadPort(phy, PortCounter.TxPackets) == 1 && e.ReadReason(Reason.DropTunNotIp) == 1);

        Assert.Equal([fromPeer[14..]], rig.Sent(tun));
        Assert.Equal(Peer, rig.Engine.PeerMac(phy));
        byte[] expected = [.. PeerMac, .. PortMac, 0x08, 0x00, .. fromLinux];
        Assert.Equal([expected], rig.Sent(phy));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.DropTunNotIp));
    }

    [Fact]
    public void OutputRule_FiltersWhatTheMirrorSends_OnItsWayOut()
    {
        using var rig = new NodeRig(eal);
        byte[] dns = Udp4(OtherMac, 53), other = Udp4(OtherMac, 54);
        ushort phy = rig.Port();
        ushort mirror = rig.Port(dns, other, dns);
        using var rules = new Classifier(rig.Engine, name => name == "phy" ? phy : null, (r, v6) => new RteAclMatcher(r, v6, -1));
        rules.Add(AclRuleParser.Parse(["phy", "output", "proto", "udp", "dport", "53", "drop"]));
        rig.Run([Entry(phy, mirror, PollKind.PhyToTap), Entry(mirror, phy, PollKind.TapToPhy)],
            e => e.ReadReason(Reason.DropClassify) == 2 && e.ReadPort(phy, PortCounter.TxPackets) == 1);

        Assert.Equal([other], rig.Sent(phy));
        Assert.Equal(2, rig.Engine.ReadReason(Reason.DropClassify));
    }

    [Fact]
    public void Forward_RoutedPacketLeavesRewritten_TtlExpiredAndUnroutedGoToTheMirrorAsReceived()
    {
        using var rig = new NodeRig(eal);
        byte[] routed = Udp4To(0xC000_0209, 64);     // 192.0.2.9: via 10.0.0.5 out of the egress port
        byte[] expiring = Udp4To(0xC000_0209, 1);
        byte[] unrouted = Udp4To(0xC633_6401, 64);   // 198.51.100.1: no route
        ushort ingress = rig.Port(routed, expiring, unrouted);
        ushort mirror = rig.Port();
        ushort egress = rig.Port();
        using var fib = new FibWriter(new RteFibBackend(-1), rig.Engine, new TableId(0, 254), new FibCapacity(1024, 64), new FibCapacity(1024, 64));
        ulong egressMac = 0x0000_0000_BB02UL;
        fib.SetPort(ingress, true, 1500, new MacAddress(Mac));
        fib.SetPort(egress, true, 1500, new MacAddress(egressMac));
        UInt128 gw = 0x0A00_0005;
        fib.SetNeighbor(egress, false, gw, MacAddress.FromBytes(OtherMac));
        fib.Set(0, Prefix.Parse("192.0.2.0/24"), RouteSource.Kernel, RouteTarget.Via(false, new NextHop(egress, gw, 1)));
        Assert.False(fib.Commit().GraceTimedOut);
        rig.Run([Entry(ingress, mirror, PollKind.PhyToTap), Entry(mirror, ingress, PollKind.TapToPhy),
                 new PollEntry(egress, ushort.MaxValue, PollKind.PhyUnpaired, egressMac, 0)],
            e => e.ReadPort(ingress, PortCounter.Forwarded) == 1 && e.ReadPort(ingress, PortCounter.Punts) == 2);

        byte[] expected = [.. routed];
        OtherMac.CopyTo(expected, 0);
        new MacAddress(egressMac).CopyTo(expected.AsSpan(6));
        expected[22] = 63;
        SetChecksum(expected);
        Assert.Equal([expected], rig.Sent(egress));
        Assert.Equal([expiring, unrouted], rig.Sent(mirror));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.PuntTtl));
        Assert.Equal(1, rig.Engine.ReadReason(Reason.PuntNoRoute));
    }
}
