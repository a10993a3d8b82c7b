using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Paths;

namespace LinuxCp.Benchmarks;

/// <summary>A whole synthetic burst through the worker's phases without the PMD: the one-pass
/// IPv4 check and destination gathering, one rte_fib bulk lookup, the rewrite (group, path,
/// TTL, checksum, MACs) and buffering per egress port, over 32 frames with 1024 destinations
/// spread over two ECMP-free routes. Reported per packet.</summary>
[MemoryDiagnoser]
public unsafe class ForwardBurstBenchmarks
{
    public const int Burst = 32;
    private const ulong PortMac = 0x0100_0000_0002UL;
    private void* _fib;
    private NextHopTables _t = null!;
    private byte* _frames;
    private uint* _dst;
    private ulong* _nh;
    private void** _cand;
    private void** _txBufs;
    private int* _txCounts;
    private int _round;

    [GlobalSetup]
    public void Setup()
    {
        BenchEal.Ensure();
        using var name = new NativeUtf8("bfwd");
        _fib = LcpShim.lcp_fib4_create(name.Pointer, 0, 1024, 256);
        if (_fib == null)
            throw new InvalidOperationException($"rte_fib create failed: {Eal.StrError(Eal.LastErrno)}");
        // 10.253.0.0/23 -> group 1 (port 1), 10.253.2.0/23 -> group 2 (port 0), as in the bench
        Dpdk.rte_fib_add(_fib, 0x0AFD0000u, 23, 1);
        Dpdk.rte_fib_add(_fib, 0x0AFD0200u, 23, 2);
        _t = new NextHopTables();
        for (int g = 1; g <= 2; g++)
        {
            _t.Groups[g].Kind = GroupKind.Forward;
            _t.Groups[g].Buckets = 1;
            _t.Groups[g].Paths[0] = (ushort)g;
            _t.Paths[g].Slot0 = new PathSlot { Kind = PathKind.Forward, DstMac = 0x0A0B0C0D0E00UL + (ulong)g, SrcMac = PortMac, TxPort = (ushort)(2 - g), Mtu = 1500 };
        }
        const int frames = 1024;
        _frames = (byte*)NativeMemory.AlignedAlloc(frames * 128, 64);
        NativeMemory.Clear(_frames, frames * 128);
        for (int i = 0; i < frames; i++)
        {
            byte* f = _frames + i * 128;
            *(ulong*)f = PortMac;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0800);
            f[14] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 16, 2), 46);
            f[22] = 64;
            f[23] = 17;
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(f + 26, 4), 0x0AFE0000u);
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(f + 30, 4), 0x0AFD0000u + (uint)i);
        }
        _dst = (uint*)NativeMemory.Alloc(Burst * 4);
        _nh = (ulong*)NativeMemory.Alloc(Burst * 8);
        _cand = (void**)NativeMemory.Alloc(Burst * 8);
        _txBufs = (void**)NativeMemory.Alloc(2 * Burst * 8);
        _txCounts = (int*)NativeMemory.AllocZeroed(2 * 4);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Dpdk.rte_fib_free(_fib);
        _t.Dispose();
        NativeMemory.AlignedFree(_frames);
        NativeMemory.Free(_dst);
        NativeMemory.Free(_nh);
        NativeMemory.Free(_cand);
        NativeMemory.Free(_txBufs);
        NativeMemory.Free(_txCounts);
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int Burst32()
    {
        byte* baseFrame = _frames + (_round & 31) * Burst * 128;
        _round++;
        uint n = 0;
        for (int i = 0; i < Burst; i++)
        {
            byte* f = baseFrame + i * 128;
            f[22] = 64; // restore what the previous pass rewrote
            *(ulong*)f = PortMac | (*(ulong*)f & 0xFFFF_0000_0000_0000UL);
            if (Forwarding.IsPlainIp4(f, 60, PortMac))
            {
                _cand[n] = f;
                _dst[n] = BinaryPrimitives.ReverseEndianness(*(uint*)(f + 30));
                n++;
            }
        }
        Dpdk.rte_fib_lookup_bulk(_fib, _dst, _nh, (int)n);
        _txCounts[0] = _txCounts[1] = 0;
        int forwarded = 0;
        for (uint i = 0; i < n; i++)
        {
            byte* f = (byte*)_cand[i];
            if (Forwarding.Rewrite4(_t.Groups, _t.Paths, _nh[i], f, out ushort port) == Reason.Forward)
            {
                _txBufs[port * Burst + _txCounts[port]++] = f;
                forwarded++;
            }
        }
        return forwarded;
    }
}
