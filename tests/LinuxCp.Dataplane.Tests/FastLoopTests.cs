using System.Buffers.Binary;
using System.Runtime.InteropServices;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Lcore;
using static LinuxCp.Dataplane.Tests.Frames;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The worker's single-path fast loop (rewrite + TX buffering in one pass) on a burst of
/// synthetic mbufs that mixes every kind of next hop: what it forwards must be exactly what the
/// general rewrite would forward, in order per egress port, and what it leaves must be untouched.</summary>
public unsafe class FastLoopTests : IDisposable
{
    private const int Room = 256;
    private static readonly ulong Mac = MacAddress.FromBytes(PortMac).Bits;
    private readonly NextHopTables _t = new();
    private readonly WorkerContext _ctx = new(0, 1, 0);
    private readonly byte* _mem;
    private readonly void** _mbufs;
    private readonly ulong* _nhs;

    public FastLoopTests()
    {
        int size = Layouts.SizeOf_rte_mbuf + Room;
        _mem = (byte*)NativeMemory.AllocZeroed((nuint)(size * WorkerOptions.BurstSize));
        _mbufs = (void**)NativeMemory.AllocZeroed((nuint)(sizeof(void*) * WorkerOptions.BurstSize));
        _nhs = (ulong*)NativeMemory.AllocZeroed((nuint)(sizeof(ulong) * WorkerOptions.BurstSize));
        for (int i = 0; i < WorkerOptions.BurstSize; i++)
        {
            byte* m = _mem + i * size;
            *(byte**)(m + Layouts.rte_mbuf_buf_addr) = m + Layouts.SizeOf_rte_mbuf;
            *(ushort*)(m + Layouts.rte_mbuf_data_off) = 64;
            _mbufs[i] = m;
        }
    }

    public void Dispose()
    {
        _ctx.Dispose();
        _t.Dispose();
        NativeMemory.Free(_mem);
        NativeMemory.Free(_mbufs);
        NativeMemory.Free(_nhs);
    }

    private void SetFrame(int i, byte[] frame)
    {
        void* m = _mbufs[i];
        new ReadOnlySpan<byte>(frame).CopyTo(new Span<byte>(Mbuf.Data(m), Room - 64));
        *(ushort*)((byte*)m + Layouts.rte_mbuf_data_len) = (ushort)frame.Length;
        *(uint*)((byte*)m + Layouts.rte_mbuf_pkt_len) = (uint)frame.Length;
    }

    private byte[] FrameOf(int i) => new Span<byte>(Mbuf.Data(_mbufs[i]), (int)Mbuf.PktLen(_mbufs[i])).ToArray();

    private static byte[] Ip4Frame(int payload)
    {
        byte[] ip = Ip4(payload: payload);
        ip[8] = 64;
        ip[16] = 198; ip[17] = 51; ip[18] = 100; ip[19] = 7;
        return Ether(PortMac, 0x0800, ip);
    }

    private void Path(int path, ulong dstMac, ushort port, ushort mtu, PathKind kind = PathKind.Forward) =>
        _t.Paths[path].Slot0 = new PathSlot { Kind = kind, DstMac = dstMac, SrcMac = Mac, TxPort = port, Mtu = mtu };

    private void Group(int group, params ushort[] paths)
    {
        _t.Groups[group].Kind = GroupKind.Forward;
        _t.Groups[group].Buckets = (byte)paths.Length;
        for (int b = 0; b < paths.Length; b++)
            _t.Groups[group].Paths[b] = paths[b];
    }

    [Fact]
    public void MixedBurst_ForwardsSinglePathsInOrderPerPort_LeavesTheRestUntouched()
    {
        Path(1, 0x0000_0000_00A1UL, 3, 1500);
        Path(2, 0x0000_0000_00A2UL, 4, 1500);
        Path(3, 0x0000_0000_00A3UL, 4, 1500, PathKind.Glean); // unresolved neighbour
        Path(4, 0x0000_0000_00A4UL, 3, 60);                    // small MTU
        Group(10, 1);        // -> port 3
        Group(11, 2);        // -> port 4
        Group(12, 1, 2);     // ECMP: the general loop's job
        Group(13, 3);        // glean
        Group(14, 4);        // too big for 100-byte packets
        _t.Groups[15].Kind = GroupKind.Local;
        ulong[] nhs = [10, 10, 11, 12, 10, 13, 14, 11, 15, 0, 14, 10];
        int[] payload = [8, 8, 8, 8, 8, 8, 80, 8, 8, 8, 8, 8]; // packet 6 exceeds MTU 60, 10 fits
        int n = nhs.Length;
        var before = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            SetFrame(i, Ip4Frame(payload[i]));
            before[i] = FrameOf(i);
            _nhs[i] = nhs[i];
        }
        // Port 4 already holds a packet from an earlier burst of this iteration: appended to,
        // not listed twice.
        void* earlier = (void*)0x1234;
        _ctx.TxBufs[4 * WorkerOptions.BurstSize] = earlier;
        _ctx.TxCounts[4] = 1;
        _ctx.TxBytes[4] = 99;
        _ctx.TxPending[0] = 4;
        _ctx.TxPendingCount = 1;

        uint fwd = Worker.ForwardSinglePaths4(_ctx, _t.Groups, _t.Paths, _mbufs, _nhs, (uint)n, out uint nLeft);

        int[] toPort3 = [0, 1, 4, 10, 11];
        int[] toPort4 = [2, 7];
        int[] left = [3, 5, 6, 8, 9];
        Assert.Equal((uint)(toPort3.Length + toPort4.Length), fwd);
        Assert.Equal((uint)left.Length, nLeft);
        for (int k = 0; k < left.Length; k++)
        {
            Assert.Equal((nint)(_mbufs + left[k]), (nint)_ctx.Left[k]);
            Assert.Equal(before[left[k]], FrameOf(left[k]));
        }
        Assert.Equal(toPort3.Length, _ctx.TxCounts[3]);
        Assert.Equal(1 + toPort4.Length, _ctx.TxCounts[4]);
        Assert.Equal((nint)earlier, (nint)_ctx.TxBufs[4 * WorkerOptions.BurstSize]);
        for (int k = 0; k < toPort3.Length; k++)
            Assert.Equal((nint)_mbufs[toPort3[k]], (nint)_ctx.TxBufs[3 * WorkerOptions.BurstSize + k]);
        for (int k = 0; k < toPort4.Length; k++)
            Assert.Equal((nint)_mbufs[toPort4[k]], (nint)_ctx.TxBufs[4 * WorkerOptions.BurstSize + 1 + k]);
        Assert.Equal(toPort3.Sum(i => (long)before[i].Length), _ctx.TxBytes[3]);
        Assert.Equal(99 + toPort4.Sum(i => (long)before[i].Length), _ctx.TxBytes[4]);
        Assert.Equal(2, _ctx.TxPendingCount);
        Assert.Equal(new ushort[] { 4, 3 }, new[] { _ctx.TxPending[0], _ctx.TxPending[1] });

        // Forwarded frames: exactly what the general rewrite makes of the same frame.
        foreach (int i in toPort3.Concat(toPort4))
        {
            byte[] expected = (byte[])before[i].Clone();
            fixed (byte* p = expected)
                Assert.Equal(Paths.Forwarding.Forward, Paths.Forwarding.Rewrite4(_t.Groups, _t.Paths, nhs[i], p, out _));
            Assert.Equal(expected, FrameOf(i));
            Assert.Equal(63, FrameOf(i)[14 + 8]);
        }
    }

    [Fact]
    public void PathFlipBetweenCalls_NextCallUsesTheNewSlot_AndAppendsToTheSameBuffer()
    {
        // The resolved path is cached only within a call (a run of one next hop); the next
        // call (the IPv6 batch, the next port's burst) sees a flipped path and continues the
        // port's TX buffer without listing it twice.
        Path(1, 0x0000_0000_00A1UL, 3, 1500);
        Group(10, 1);
        Group(11, 1);
        for (int i = 0; i < 3; i++)
            SetFrame(i, Ip4Frame(8));
        _nhs[0] = 10;
        _nhs[1] = 11;
        _nhs[2] = 10;
        _t.Paths[1].Slot1 = new PathSlot { Kind = PathKind.Forward, DstMac = 0xB1, SrcMac = Mac, TxPort = 3, Mtu = 1500 };
        Worker.ForwardSinglePaths4(_ctx, _t.Groups, _t.Paths, _mbufs, _nhs, 1, out _);
        _t.Paths[1].Active = 1;
        Worker.ForwardSinglePaths4(_ctx, _t.Groups, _t.Paths, _mbufs + 1, _nhs + 1, 2, out uint nLeft);
        Assert.Equal(0u, nLeft);
        Assert.Equal(0xA1, FrameOf(0)[0]);
        Assert.Equal(0xB1, FrameOf(1)[0]);
        Assert.Equal(0xB1, FrameOf(2)[0]);
        Assert.Equal(3, _ctx.TxCounts[3]);
        Assert.Equal(1, _ctx.TxPendingCount);
    }

    [Fact]
    public void EmptyBurst_TouchesNothing()
    {
        Assert.Equal(0u, Worker.ForwardSinglePaths4(_ctx, _t.Groups, _t.Paths, _mbufs, _nhs, 0, out uint nLeft));
        Assert.Equal(0u, nLeft);
        Assert.Equal(0, _ctx.TxPendingCount);
    }
}
