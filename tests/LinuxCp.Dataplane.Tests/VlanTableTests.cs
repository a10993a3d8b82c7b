using System.Buffers.Binary;
using System.Runtime.InteropServices;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Dataplane.Tables;
using static LinuxCp.Dataplane.Tests.Frames;

namespace LinuxCp.Dataplane.Tests;

/// <summary>Sub-interfaces on synthetic mbufs: the demultiplexer's exact tag match and pop, and
/// the push on output, checked byte for byte against frames built independently.</summary>
public unsafe class VlanTableTests : IDisposable
{
    private const int Room = 256, Headroom = 64;
    private readonly byte* _mem;
    private readonly void** _mbufs;
    private readonly void** _sub;
    private readonly void** _drop;
    private readonly ushort* _ids;

    private const ushort Parent = 1, Other = 2;
    private const ushort S100 = Interfaces.FirstSub, S200 = Interfaces.FirstSub + 1, Q10_20 = Interfaces.FirstSub + 2,
        Q10_21 = Interfaces.FirstSub + 3, D8100 = Interfaces.FirstSub + 4, OtherSub = Interfaces.FirstSub + 5;

    public VlanTableTests()
    {
        int size = Layouts.SizeOf_rte_mbuf + Room;
        _mem = (byte*)NativeMemory.AllocZeroed((nuint)(size * WorkerOptions.BurstSize));
        _mbufs = (void**)NativeMemory.AllocZeroed((nuint)(sizeof(void*) * WorkerOptions.BurstSize * 3));
        _sub = _mbufs + WorkerOptions.BurstSize;
        _drop = _sub + WorkerOptions.BurstSize;
        _ids = (ushort*)NativeMemory.AllocZeroed((nuint)(sizeof(ushort) * WorkerOptions.BurstSize));
        for (int i = 0; i < WorkerOptions.BurstSize; i++)
        {
            byte* m = _mem + i * size;
            *(byte**)(m + Layouts.rte_mbuf_buf_addr) = m + Layouts.SizeOf_rte_mbuf;
            _mbufs[i] = m;
        }
    }

    public void Dispose()
    {
        NativeMemory.Free(_mem);
        NativeMemory.Free(_mbufs);
        NativeMemory.Free(_ids);
    }

    private static VlanTable Table(bool puntUnknown = false) => new(
    [
        Sub(S100, Parent, new VlanTags(VlanTags.Dot1q, 100)),
        Sub(S200, Parent, new VlanTags(VlanTags.Dot1q, 200)),
        Sub(Q10_20, Parent, new VlanTags(VlanTags.Dot1ad, 10, 20)),
        Sub(Q10_21, Parent, new VlanTags(VlanTags.Dot1ad, 10, 21)),
        Sub(D8100, Parent, new VlanTags(VlanTags.Dot1q, 300, 30)),
        Sub(OtherSub, Other, new VlanTags(VlanTags.Dot1q, 100)),
    ], puntUnknown);

    private static SubInterface Sub(ushort id, ushort parent, VlanTags t) =>
        new(id, parent, t, new PollEntry(id, id, PollKind.PhyUnpaired, 0, 0));

    private void Set(int i, byte[] frame, int headroom = Headroom)
    {
        void* m = _mbufs[i];
        *(ushort*)((byte*)m + Layouts.rte_mbuf_data_off) = (ushort)headroom;
        new ReadOnlySpan<byte>(frame).CopyTo(new Span<byte>(Mbuf.Data(m), Room - headroom));
        *(ushort*)((byte*)m + Layouts.rte_mbuf_data_len) = (ushort)frame.Length;
        *(uint*)((byte*)m + Layouts.rte_mbuf_pkt_len) = (uint)frame.Length;
    }

    private static byte[] Bytes(void* m) => new Span<byte>(Mbuf.Data(m), (int)Mbuf.DataLen(m)).ToArray();

    /// <summary>An IPv4 frame with these tags (TPID, TCI pairs) after the MACs.</summary>
    private static byte[] Tagged(params (ushort Tpid, ushort Tci)[] tags)
    {
        byte[] plain = Ether(PortMac, 0x0800, Ip4(payload: 20));
        var f = new byte[plain.Length + 4 * tags.Length];
        plain.AsSpan(0, 12).CopyTo(f);
        for (int i = 0; i < tags.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12 + 4 * i), tags[i].Tpid);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14 + 4 * i), tags[i].Tci);
        }
        plain.AsSpan(12).CopyTo(f.AsSpan(12 + 4 * tags.Length));
        return f;
    }

    [Fact]
    public void Split_ExactTagMatch_PopsTags_KeepsUntaggedInOrder_DropsUnknown()
    {
        VlanTable t = Table();
        byte[] plain = Ether(PortMac, 0x0800, Ip4(payload: 20));
        (byte[] Frame, ushort Expect)[] cases =
        [
            (plain, 0),                                                        // untagged: the parent's
            (Tagged((0x8100, 100)), S100),
            (Tagged((0x8100, 0xA000 | 200)), S200),                            // priority bits ignored
            (Tagged((0x88A8, 10), (0x8100, 20)), Q10_20),
            (Tagged((0x88A8, 10), (0x8100, 21)), Q10_21),
            (Tagged((0x8100, 300), (0x8100, 30)), D8100),                      // QinQ with an 802.1Q outer tag
            (Tagged((0x8100, 101)), ushort.MaxValue),                          // unknown VID
            (Tagged((0x88A8, 100)), ushort.MaxValue),                          // right VID, wrong TPID
            (Tagged((0x8100, 100), (0x8100, 5)), ushort.MaxValue),             // 100 has no inner 5: exact match
            (Tagged((0x88A8, 10)), ushort.MaxValue),                           // outer only
            (Tagged((0x88A8, 10), (0x8100, 22)), ushort.MaxValue),
            (Ether(PortMac, 0x0806, Arp()), 0),
        ];
        for (int i = 0; i < cases.Length; i++)
            Set(i, cases[i].Frame);
        uint nSub = 0, nDrop = 0;
        long bytes = 0;
        uint kept = VlanTable.Split(t.Demux[Parent]!, _mbufs, (uint)cases.Length, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes);

        var expectKept = cases.Where(c => c.Expect == 0).Select(c => c.Frame).ToList();
        var expectSub = cases.Where(c => c.Expect is not 0 and not ushort.MaxValue).ToList();
        Assert.Equal((uint)expectKept.Count, kept);
        for (int i = 0; i < kept; i++)
            Assert.Equal(expectKept[i], Bytes(_mbufs[i]));
        Assert.Equal((uint)expectSub.Count, nSub);
        for (int i = 0; i < nSub; i++)
        {
            Assert.Equal(expectSub[i].Expect, _ids[i]);
            // Tags popped: what remains is the untagged frame.
            Assert.Equal(plain, Bytes(_sub[i]));
        }
        Assert.Equal((uint)cases.Count(c => c.Expect == ushort.MaxValue), nDrop);
        Assert.Equal(cases.Where(c => c.Expect != 0).Sum(c => (long)c.Frame.Length), bytes);
    }

    [Fact]
    public void Split_PuntUnknown_LeavesUnknownTagsToTheParentAsReceived()
    {
        VlanTable t = Table(puntUnknown: true);
        byte[] unknown = Tagged((0x8100, 999));
        Set(0, unknown);
        Set(1, Tagged((0x8100, 100)));
        uint nSub = 0, nDrop = 0;
        long bytes = 0;
        uint kept = VlanTable.Split(t.Demux[Parent]!, _mbufs, 2, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes);
        Assert.Equal(1u, kept);
        Assert.Equal(unknown, Bytes(_mbufs[0]));
        Assert.Equal((1u, 0u), (nSub, nDrop));
    }

    [Fact]
    public void Split_OuterTpidLost_AnOuter8100MatchesTheDot1adSubInterface_8100FirstWhenBothExist()
    {
        var t = new VlanTable([Sub(Q10_20, Parent, new VlanTags(VlanTags.Dot1ad, 10, 20)), Sub(D8100, Parent, new VlanTags(VlanTags.Dot1q, 300, 30)),
            Sub(Q10_21, Parent, new VlanTags(VlanTags.Dot1ad, 300, 30))], tpidLost: p => p == Parent);
        Set(0, Tagged((0x8100, 10), (0x8100, 20)));   // what af_packet makes of 88a8/10 + 8100/20
        Set(1, Tagged((0x8100, 300), (0x8100, 30)));  // an 802.1Q-outer sub-interface has those VIDs: it wins
        Set(2, Tagged((0x88A8, 300), (0x8100, 30)));  // intact 802.1ad still matches exactly
        uint nSub = 0, nDrop = 0;
        long bytes = 0;
        Assert.Equal(0u, VlanTable.Split(t.Demux[Parent]!, _mbufs, 3, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes));
        Assert.Equal([Q10_20, D8100, Q10_21], new[] { _ids[0], _ids[1], _ids[2] });
        // Without the flag, the first is unknown.
        t = new VlanTable([Sub(Q10_20, Parent, new VlanTags(VlanTags.Dot1ad, 10, 20))]);
        Set(0, Tagged((0x8100, 10), (0x8100, 20)));
        nSub = nDrop = 0;
        VlanTable.Split(t.Demux[Parent]!, _mbufs, 1, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes);
        Assert.Equal((0u, 1u), (nSub, nDrop));
    }

    [Fact]
    public void Split_ShortFrames_LeftToTheClassifier()
    {
        VlanTable t = Table();
        Set(0, Tagged((0x8100, 100))[..17]);               // tag not readable: the classifier's (vlan-truncated)
        Set(1, Tagged((0x88A8, 10), (0x8100, 20))[..20]);  // inner tag cut: unknown
        uint nSub = 0, nDrop = 0;
        long bytes = 0;
        uint kept = VlanTable.Split(t.Demux[Parent]!, _mbufs, 2, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes);
        Assert.Equal((1u, 0u, 1u), (kept, nSub, nDrop));
    }

    [Theory]
    [InlineData(S100)]
    [InlineData(Q10_20)]
    [InlineData(D8100)]
    public void Push_WritesTheTagsAfterTheMacs_ThenSplitGivesTheFrameBack(ushort id)
    {
        VlanTable t = Table();
        byte[] plain = Ether(PortMac, 0x86DD, Ip6(payload: 16));
        for (int i = 0; i < 4; i++)
            Set(i, plain);
        Set(4, plain, headroom: 3); // no room for the tags
        uint nDrop = 0;
        uint kept = t.Push(id, _mbufs, 5, _drop, ref nDrop, out ushort parent);
        Assert.Equal((4u, 1u, Parent), (kept, nDrop, parent));
        VlanTags tags = id switch
        {
            S100 => new VlanTags(VlanTags.Dot1q, 100),
            Q10_20 => new VlanTags(VlanTags.Dot1ad, 10, 20),
            _ => new VlanTags(VlanTags.Dot1q, 300, 30),
        };
        byte[] want = tags.QinQ ? Tagged((tags.Tpid, tags.Outer), (VlanTags.Dot1q, tags.Inner)) : Tagged((VlanTags.Dot1q, tags.Outer));
        // Tagged() builds an IPv4 frame; put the IPv6 payload in.
        want = [.. want.AsSpan(0, 12 + tags.Bytes), .. plain.AsSpan(12)];
        for (int i = 0; i < 4; i++)
            Assert.Equal(want, Bytes(_mbufs[i]));

        uint nSub = 0;
        long bytes = 0;
        nDrop = 0;
        Assert.Equal(0u, VlanTable.Split(t.Demux[Parent]!, _mbufs, 4, _sub, _ids, ref nSub, _drop, ref nDrop, ref bytes));
        Assert.Equal(4u, nSub);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(id, _ids[i]);
            Assert.Equal(plain, Bytes(_sub[i]));
        }
    }

    [Fact]
    public void Table_OnlyParentsWithSubsDemux_IdsOutOfRangeRefused()
    {
        VlanTable t = Table();
        Assert.True(t.HasSubs(Parent));
        Assert.True(t.HasSubs(Other));
        Assert.False(t.HasSubs(0));
        Assert.Equal(8, t.TagBytesOf(Q10_20));
        Assert.Throws<ArgumentException>(() => new VlanTable([Sub(5, Parent, new VlanTags(VlanTags.Dot1q, 7))]));
        Assert.False(VlanTable.Empty.HasSubs(Parent));
    }
}
