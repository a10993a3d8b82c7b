using BenchmarkDotNet.Attributes;
using DpdkSharp;
using DpdkSharp.Native;

namespace LinuxCp.Benchmarks;

/// <summary>EAL for benchmarks that need DPDK memory (rte_fib): initialised once per process,
/// without hugepages, on a private file prefix.</summary>
internal static class BenchEal
{
    private static readonly Lazy<bool> s_init = new(() =>
    {
        // LCP_BENCH_EAL: extra EAL arguments, e.g. --force-max-simd-bitwidth=512 (rte_acl's AVX-512 paths).
        string[] extra = (Environment.GetEnvironmentVariable("LCP_BENCH_EAL") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Eal.Init("lcp-bench", ["--no-huge", "-m", "768", "--no-pci", "--file-prefix", $"lcpbench{Environment.ProcessId}",
            "--lcores", "0@0", "--log-level", "lib.eal:error", .. extra]);
        return true;
    });

    public static void Ensure() => _ = s_init.Value;
}

/// <summary>One rte_fib bulk lookup of a 32-destination burst (what a worker does per burst),
/// in a small table and in a 1M-route table (DIR-24-8: most lookups in tbl24, /25+ routes
/// through tbl8). Cost is per packet.</summary>
[MemoryDiagnoser]
public unsafe class FibBenchmarks
{
    public const int Burst = 32;

    [Params(16, 1_000_000)]
    public int Routes { get; set; }

    private void* _fib;
    private uint* _dst;
    private ulong* _nh;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        BenchEal.Ensure();
        using var name = new NativeUtf8($"bfib{Routes}");
        _fib = LcpShim.lcp_fib4_create(name.Pointer, 0, (uint)Math.Max(1024, Routes + 16), 65535 / 2);
        if (_fib == null)
            throw new InvalidOperationException($"rte_fib create failed: {Eal.StrError(Eal.LastErrno)}");
        var rng = new Random(1);
        // Mostly /24s (tbl24 only) with one in eight longer than /24 (a tbl8 walk), as in a full table.
        int added = 0;
        for (int i = 0; added < Routes; i++)
        {
            uint ip = (uint)rng.Next() & 0xFFFFFF00u;
            byte depth = (byte)(i % 8 == 0 ? 28 : 24);
            if (depth == 28)
                ip |= (uint)(rng.Next(16) << 4);
            if (Dpdk.rte_fib_add(_fib, ip, depth, (ulong)(1 + i % 1000)) == 0)
                added++;
            if (i > Routes * 4 + 1000)
                break; // tbl8 groups exhausted: keep what fits
        }
        const int pool = 1 << 16;
        _dst = (uint*)System.Runtime.InteropServices.NativeMemory.Alloc(pool * 4);
        _nh = (ulong*)System.Runtime.InteropServices.NativeMemory.Alloc(Burst * 8);
        for (int i = 0; i < pool; i++)
            _dst[i] = (uint)rng.Next();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Dpdk.rte_fib_free(_fib);
        System.Runtime.InteropServices.NativeMemory.Free(_dst);
        System.Runtime.InteropServices.NativeMemory.Free(_nh);
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public ulong LookupBulk32()
    {
        uint* d = _dst + _next;
        _next = (_next + Burst) & ((1 << 16) - Burst);
        Dpdk.rte_fib_lookup_bulk(_fib, d, _nh, Burst);
        return _nh[0];
    }
}
