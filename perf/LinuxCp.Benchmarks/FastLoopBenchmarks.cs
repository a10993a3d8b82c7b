using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Dataplane.Paths;

namespace LinuxCp.Benchmarks;

/// <summary>The forward step after the FIB lookup, per packet, over a burst of 64 synthetic
/// mbufs whose next hops come in runs (as a flow-ordered burst gives them): the worker's
/// single-path pass (<c>Worker.ForwardSinglePaths</c>: path resolved once per run, rewrite and
/// TX buffering in one call-free loop) against the general per-packet loop it replaced for the
/// common case (group, path, slot per packet, then buffering).</summary>
[MemoryDiagnoser]
public unsafe class FastLoopBenchmarks
{
    private const int Burst = WorkerOptions.BurstSize;
    private const int Room = 256;
    private const ulong PortMac = 0x0100_0000_0002UL;
    private NextHopTables _t = null!;
    private WorkerContext _ctx = null!;
    private byte* _mem;
    private void** _mbufs;
    private ulong* _nhs;

    [GlobalSetup]
    public void Setup()
    {
        _t = new NextHopTables();
        for (int g = 1; g <= 2; g++)
        {
            _t.Groups[g].Kind = GroupKind.Forward;
            _t.Groups[g].Buckets = 1;
            _t.Groups[g].Paths[0] = (ushort)g;
            _t.Paths[g].Slot0 = new PathSlot { Kind = PathKind.Forward, DstMac = 0x0A0B0C0D0E00UL + (ulong)g, SrcMac = PortMac, TxPort = (ushort)(2 - g), Mtu = 1500 };
        }
        _ctx = new WorkerContext(0, 1, 0);
        int size = Layouts.SizeOf_rte_mbuf + Room;
        _mem = (byte*)NativeMemory.AlignedAlloc((nuint)(size * Burst), 64);
        NativeMemory.Clear(_mem, (nuint)(size * Burst));
        _mbufs = (void**)NativeMemory.Alloc(Burst * 8);
        _nhs = (ulong*)NativeMemory.Alloc(Burst * 8);
        for (int i = 0; i < Burst; i++)
        {
            byte* m = _mem + i * size;
            byte* f = m + Layouts.SizeOf_rte_mbuf + 64;
            *(byte**)(m + Layouts.rte_mbuf_buf_addr) = m + Layouts.SizeOf_rte_mbuf;
            *(ushort*)(m + Layouts.rte_mbuf_data_off) = 64;
            *(ushort*)(m + Layouts.rte_mbuf_data_len) = 60;
            *(uint*)(m + Layouts.rte_mbuf_pkt_len) = 60;
            *(ulong*)f = PortMac;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0800);
            f[14] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 16, 2), 46);
            f[22] = 64;
            _mbufs[i] = m;
            _nhs[i] = i < 40 ? 1UL : 2UL; // a burst that crosses from one route to the other
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ctx.Dispose();
        _t.Dispose();
        NativeMemory.AlignedFree(_mem);
        NativeMemory.Free(_mbufs);
        NativeMemory.Free(_nhs);
    }

    /// <summary>What every iteration starts from: TTLs restored, TX buffers empty.</summary>
    private void Reset()
    {
        for (int i = 0; i < Burst; i++)
            (Mbuf.Data(_mbufs[i]))[22] = 64;
        _ctx.TxCounts[0] = _ctx.TxCounts[1] = 0;
        _ctx.TxBytes[0] = _ctx.TxBytes[1] = 0;
        _ctx.TxPendingCount = 0;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint SinglePathPass()
    {
        Reset();
        return Worker.ForwardSinglePaths4(_ctx, _t.Groups, _t.Paths, _mbufs, _nhs, Burst, out _);
    }

    [Benchmark(OperationsPerInvoke = Burst, Baseline = true)]
    public uint PerPacketLoop()
    {
        Reset();
        uint forwarded = 0;
        for (int i = 0; i < Burst; i++)
        {
            void* m = _mbufs[i];
            if (Forwarding.Rewrite4(_t.Groups, _t.Paths, _nhs[i], Mbuf.Data(m), out ushort port) == Reason.Forward)
            {
                int c = _ctx.TxCounts[port]++;
                if (c == 0)
                    _ctx.TxPending[_ctx.TxPendingCount++] = port;
                _ctx.TxBufs[port * Burst + c] = m;
                _ctx.TxBytes[port] += Mbuf.PktLen(m);
                forwarded++;
            }
        }
        return forwarded;
    }
}
