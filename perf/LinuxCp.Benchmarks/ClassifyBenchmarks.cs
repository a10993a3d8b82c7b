using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Paths;

namespace LinuxCp.Benchmarks;

/// <summary>Per-packet cost of the phy-RX classifier over a burst of 32 frames in native memory
/// (what the worker runs for every received packet). Reported per packet.</summary>
[MemoryDiagnoser]
public unsafe class ClassifyBenchmarks
{
    public const int Burst = 32;
    private const ulong PortMac = 0x0100_0000_0002UL;
    private byte* _frames;
    private uint* _lens;
    private long* _counters;

    [Params("ip4", "ip6", "mixed")]
    public string Traffic { get; set; } = "ip4";

    [GlobalSetup]
    public void Setup()
    {
        _frames = (byte*)NativeMemory.AlignedAlloc(Burst * 128, 64);
        _lens = (uint*)NativeMemory.Alloc(Burst * sizeof(uint));
        _counters = (long*)NativeMemory.AllocZeroed((nuint)Reason.Count * sizeof(long));
        for (int i = 0; i < Burst; i++)
        {
            byte* f = _frames + i * 128;
            string kind = Traffic == "mixed" ? (i % 4) switch { 0 => "ip6", 1 => "arp", _ => "ip4" } : Traffic;
            *(ulong*)f = PortMac;
            switch (kind)
            {
                case "ip4":
                    BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0800);
                    f[14] = 0x45;
                    BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 16, 2), 46);
                    _lens[i] = 60;
                    break;
                case "ip6":
                    BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x86DD);
                    f[14] = 0x60;
                    BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 18, 2), 8);
                    _lens[i] = 62;
                    break;
                default:
                    BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(f + 12, 2), 0x0806);
                    _lens[i] = 60;
                    break;
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_frames);
        NativeMemory.Free(_lens);
        NativeMemory.Free(_counters);
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public long ClassifyBurst()
    {
        long punts = 0;
        for (int i = 0; i < Burst; i++)
        {
            Reason r = FrameClassifier.Classify(_frames + i * 128, _lens[i], _lens[i], PortMac, true);
            _counters[(int)r]++;
            punts += r < ReasonInfo.FirstDrop ? 1 : 0;
        }
        return punts;
    }
}

/// <summary>The cost of crossing into native code: the floor under every per-burst call.</summary>
[MemoryDiagnoser]
public class InteropBaseline
{
    [Benchmark(Baseline = true)]
    public int NoopPInvoke() => DpdkSharp.Native.LcpShim.lcp_shim_abi();

    [Benchmark]
    public ulong RdtscSuppressedTransition() => DpdkSharp.Native.LcpShim.lcp_rdtsc();
}
