using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Paths;

namespace LinuxCp.Benchmarks;

/// <summary>Per-packet cost of the IPv4 fast-path decision and rewrite after the FIB lookup
/// (fast check, group and path, TTL, RFC 1624 checksum, MACs) over a burst of 32 frames.</summary>
[MemoryDiagnoser]
public unsafe class ForwardBenchmarks
{
    public const int Burst = 32;
    private const ulong PortMac = 0x0100_0000_0002UL;
    private NextHopTables _t = null!;
    private byte* _frames;

    [GlobalSetup]
    public void Setup()
    {
        _t = new NextHopTables();
        _t.Groups[9].Kind = GroupKind.Forward;
        _t.Groups[9].Buckets = 1;
        _t.Groups[9].Paths[0] = 5;
        _t.Paths[5].Slot0 = new PathSlot { Kind = PathKind.Forward, DstMac = 0x0A0B0C0D0E0F, SrcMac = PortMac, TxPort = 1, Mtu = 1500 };
        _frames = (byte*)NativeMemory.AlignedAlloc(Burst * 128, 64);
        NativeMemory.Clear(_frames, Burst * 128);
        for (int i = 0; i < Burst; i++)
        {
            byte* f = _frames + i * 128;
            *(ulong*)f = PortMac;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0800);
            f[14] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 16, 2), 46);
            f[22] = 64;
            f[30] = 10;
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_frames);
        _t.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int CheckAndRewrite4Burst()
    {
        int forwarded = 0;
        for (int i = 0; i < Burst; i++)
        {
            byte* f = _frames + i * 128;
            f[22] = 64; // keep the TTL from running down across iterations
            if (Forwarding.IsPlainIp4(f, 60, PortMac)
                && Forwarding.Rewrite4(_t.Groups, _t.Paths, 9, f, out _) == Reason.Forward)
                forwarded++;
            *(ulong*)f = PortMac | (*(ulong*)f & 0xFFFF_0000_0000_0000UL);
        }
        return forwarded;
    }
}
