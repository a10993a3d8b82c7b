using BenchmarkDotNet.Attributes;
using HdrHistogram;
using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Benchmarks;

/// <summary>What recording a latency costs the worker: lcpd's own histogram (log-linear, 128
/// buckets per power of two) against HdrHistogram's LongHistogram at the same precision (3
/// significant digits over 1 cycle to an hour of TSC cycles), both recording loop-gap-like values
/// (TSC cycles, mostly a few hundred, now and then millions). Per recorded value.</summary>
[MemoryDiagnoser]
public class HistogramBenchmarks
{
    private const int N = 1024;
    private readonly ulong[] _values = new ulong[N];
    private readonly LatencyHistogram _ours = new();
    private readonly LongHistogram _hdr = new(1, 3_600L * 4_000_000_000L, 3);

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(11);
        for (int i = 0; i < N; i++)
            _values[i] = i % 97 == 0 ? (ulong)rnd.Next(1_000_000, 50_000_000) : (ulong)rnd.Next(200, 2000);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void Lcpd()
    {
        ulong[] v = _values;
        for (int i = 0; i < v.Length; i++)
            _ours.Record(v[i]);
    }

    [Benchmark(OperationsPerInvoke = N)]
    public void HdrHistogramLong()
    {
        ulong[] v = _values;
        for (int i = 0; i < v.Length; i++)
            _hdr.RecordValue((long)v[i]);
    }
}
