using System.Buffers.Binary;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Paths;
using static LinuxCp.Dataplane.Tests.Frames;

namespace LinuxCp.Dataplane.Tests;

public unsafe class ForwardingTests : IDisposable
{
    private static readonly ulong Mac = MacAddress.FromBytes(PortMac).Bits;
    private readonly NextHopTables _t = new();

    public void Dispose() => _t.Dispose();

    private static byte[] Ip4Frame(byte ttl = 64, byte dst0 = 198, int ihl = 5)
    {
        byte[] ip = Ip4(ihlWords: ihl, payload: 8);
        ip[8] = ttl;
        ip[12] = 10; ip[13] = 0; ip[14] = 0; ip[15] = 2;
        ip[16] = dst0; ip[17] = 51; ip[18] = 100; ip[19] = 7;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(10), Checksum(ip.AsSpan(0, ihl * 4)));
        return Ether(PortMac, 0x0800, ip);
    }

    private void Route(int group, ulong dstMac, ushort port, ushort mtu)
    {
        _t.Groups[group].Kind = GroupKind.Forward;
        _t.Groups[group].Buckets = 1;
        _t.Groups[group].Paths[0] = 5;
        _t.Paths[5].Slot0 = new PathSlot { Kind = PathKind.Forward, DstMac = dstMac, SrcMac = Mac, TxPort = port, Mtu = mtu };
    }

    [Theory]
    [InlineData(64, 198, 5, true)]
    [InlineData(1, 198, 5, false)]   // TTL expires
    [InlineData(64, 224, 5, false)]  // multicast
    [InlineData(64, 198, 6, false)]  // options
    public void IsPlainIp4_AgreesWithClassifierAndEligibility(byte ttl, byte dst0, int ihl, bool plain)
    {
        byte[] f = Ip4Frame(ttl, dst0, ihl);
        fixed (byte* p = f)
        {
            Assert.Equal(plain, Forwarding.IsPlainIp4(p, (uint)f.Length, Mac));
            Assert.Equal(plain, VectorCheck(p, (uint)f.Length));
            bool full = FrameClassifier.Classify(p, (uint)f.Length, (uint)f.Length, Mac, true) == Reason.PuntIp4
                && Forwarding.Ip4Eligible(p, Mac) == Forwarding.Forward;
            Assert.Equal(full, plain);
        }
    }

    private static bool VectorCheck(byte* p, uint pktLen)
    {
        var (want, mask) = Forwarding.PlainIp4Template(Mac);
        return Forwarding.IsPlainIp4Header(p, pktLen, want, mask);
    }

    [Fact]
    public void IsPlainIp4_Boundaries()
    {
        bool Check(Action<byte[]> edit)
        {
            byte[] f = Ip4Frame();
            edit(f);
            fixed (byte* p = f)
            {
                bool scalar = Forwarding.IsPlainIp4(p, (uint)f.Length, Mac);
                Assert.Equal(scalar, VectorCheck(p, (uint)f.Length)); // the worker's form agrees
                return scalar;
            }
        }
        Assert.True(Check(_ => { }));
        Assert.True(Check(f => f[15] = 0xB8));                                  // TOS is not checked
        Assert.False(Check(f => f[12] = 0x86));                                 // another EtherType
        Assert.False(Check(f => f[5] ^= 1));                                    // not our MAC
        Assert.False(Check(f => f[0] ^= 0x80));                                 // first MAC byte
        Assert.False(Check(f => f[13] = 0x01));                                 // EtherType low byte
        Assert.False(Check(f => f[14] = 0x46));                                 // IHL 6
        Assert.False(Check(f => f[14] = 0x65));                                 // version 6
        Assert.True(Check(f => f[6] ^= 0xFF));                                  // source MAC is not checked
        Assert.True(Check(f => f[15] ^= 0xFF));                                 // nor the TOS byte
        Assert.False(Check(f => f[22] = 1));                                    // TTL 1
        Assert.True(Check(f => f[22] = 2));
        Assert.False(Check(f => f[30] = 224));                                  // multicast
        Assert.True(Check(f => f[30] = 223));
        Assert.True(Check(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 20)));
        Assert.False(Check(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 19)));
        Assert.True(Check(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), (ushort)(f.Length - 14))));
        Assert.False(Check(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), (ushort)(f.Length - 13))));
    }

    private static byte[] Ip6Frame()
    {
        byte[] ip = Ip6(payload: 8);
        ip[6] = 17;  // UDP
        ip[7] = 64;  // hop limit
        ip[24] = 0x20; ip[25] = 0x01; ip[26] = 0x0d; ip[27] = 0xb8; ip[39] = 7; // 2001:db8::7
        return Ether(PortMac, 0x86DD, ip);
    }

    [Fact]
    public void IsPlainIp6Header_AgreesWithClassifierAndEligibility()
    {
        var (want, mask) = Forwarding.PlainIp6Template(Mac);
        int cases = 0;
        void Check(bool expected, Action<byte[]> edit)
        {
            byte[] f = Ip6Frame();
            edit(f);
            fixed (byte* p = f)
            {
                bool fast = Forwarding.IsPlainIp6Header(p, (uint)f.Length, want, mask);
                bool full = FrameClassifier.Classify(p, (uint)f.Length, (uint)f.Length, Mac, true) == Reason.PuntIp6
                    && Forwarding.Ip6Eligible(p, Mac) == Forwarding.Forward;
                Assert.Equal(expected, fast);
                Assert.Equal(full, fast);
            }
            cases++;
        }
        Check(true, _ => { });
        Check(false, f => f[5] ^= 1);                       // not our MAC
        Check(false, f => f[0] = 0x33);                     // L2 multicast
        Check(false, f => f[13] = 0xDE);                    // another EtherType
        Check(false, f => f[14] = 0x40);                    // version 4 in an IPv6 EtherType
        Check(true, f => f[14] = 0x6F);                     // traffic class bits are not checked
        Check(false, f => f[14 + 6] = 0);                   // hop-by-hop options
        Check(false, f => f[14 + 7] = 1);                   // hop limit 1
        Check(true, f => f[14 + 7] = 2);
        Check(false, f => f[14 + 24] = 0xFF);               // multicast destination
        Check(false, f => { f[14 + 24] = 0xFE; f[14 + 25] = 0x80; }); // link-local
        Check(false, f => { f[14 + 24] = 0xFE; f[14 + 25] = 0xBF; }); // fe80::/10 upper end
        Check(true, f => { f[14 + 24] = 0xFE; f[14 + 25] = 0xC0; });  // fec0:: is not link-local
        Check(false, f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14 + 4), (ushort)(f.Length - 14 - 40 + 1)));
        Check(true, f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14 + 4), (ushort)(f.Length - 14 - 40)));
        Assert.Equal(15, cases);
    }

    [Fact]
    public void IsPlainIp4_TotalLengthBeyondPacket_False()
    {
        byte[] f = Ip4Frame();
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 1000);
        fixed (byte* p = f)
            Assert.False(Forwarding.IsPlainIp4(p, (uint)f.Length, Mac));
    }

    [Theory]
    [InlineData(64)]
    [InlineData(2)]
    [InlineData(255)]
    public void Rewrite4_TtlAndIncrementalChecksum_MatchFullRecompute(byte ttl)
    {
        Route(9, 0x0000_0A0B_0C0D_0E0FUL, 3, 1500);
        byte[] f = Ip4Frame(ttl);
        fixed (byte* p = f)
        {
            Assert.Equal(Forwarding.Forward, Forwarding.Rewrite4(_t.Groups, _t.Paths, 9, p, out ushort tx));
            Assert.Equal(3, tx);
        }
        Assert.Equal(ttl - 1, f[14 + 8]);
        Assert.Equal(Checksum(f.AsSpan(14, 20)), BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 10)));
        Assert.Equal(new byte[] { 0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A }, f[..6]);
        Assert.Equal(PortMac, f[6..12]);
    }

    [Fact]
    public void Rewrite4_LargerThanMtu_PuntTooBigUnchanged()
    {
        Route(9, 1, 3, 20);
        byte[] f = Ip4Frame();
        byte[] before = (byte[])f.Clone();
        fixed (byte* p = f)
            Assert.Equal(Reason.PuntTooBig, Forwarding.Rewrite4(_t.Groups, _t.Paths, 9, p, out _));
        Assert.Equal(before, f);
    }

    [Fact]
    public void Rewrite4_UnresolvedPathAndSpecialGroups_Reasons()
    {
        Route(9, 1, 3, 1500);
        _t.Paths[5].Slot0.Kind = PathKind.Glean;
        _t.Groups[(int)GroupKind.Blackhole].Kind = GroupKind.Blackhole;
        _t.Groups[(int)GroupKind.Local].Kind = GroupKind.Local;
        byte[] f = Ip4Frame();
        fixed (byte* p = f)
        {
            Assert.Equal(Reason.PuntGlean, Forwarding.Rewrite4(_t.Groups, _t.Paths, 9, p, out _));
            Assert.Equal(Reason.DropBlackhole, Forwarding.Rewrite4(_t.Groups, _t.Paths, (ulong)GroupKind.Blackhole, p, out _));
            Assert.Equal(Reason.PuntLocal, Forwarding.Rewrite4(_t.Groups, _t.Paths, (ulong)GroupKind.Local, p, out _));
            Assert.Equal(Reason.PuntNoRoute, Forwarding.Rewrite4(_t.Groups, _t.Paths, 0, p, out _));
        }
    }

    [Fact]
    public void PathSlots_FlipActive_ReaderSeesWholeSlot()
    {
        PathEntry* e = _t.Paths + 7;
        e->Slot0 = new PathSlot { DstMac = 1, Kind = PathKind.Forward };
        e->Slot1 = new PathSlot { DstMac = 2, Kind = PathKind.Glean };
        Assert.Equal(1UL, NextHopTables.ActiveSlot(e)->DstMac);
        Volatile.Write(ref e->Active, 1);
        Assert.Equal(2UL, NextHopTables.ActiveSlot(e)->DstMac);
    }
}
