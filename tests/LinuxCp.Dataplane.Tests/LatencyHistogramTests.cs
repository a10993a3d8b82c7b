using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Dataplane.Tests;

public sealed class LatencyHistogramTests
{
    private static ulong Exact(ulong[] sorted, double p) =>
        sorted[Math.Max(0, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];

    private static void AssertWithinBucket(ulong exact, ulong got, string what)
    {
        // Never below the exact value; at most one bucket (1/128 of the value) above it.
        Assert.True(got >= exact, $"{what}: {got} < exact {exact}");
        Assert.True(got <= exact + exact / LatencyHistogram.Half + 1, $"{what}: {got} too far above exact {exact}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(12345)]
    public void Percentiles_MatchExactOnes_WithinTheBucketPrecision(int seed)
    {
        var rng = new Random(seed);
        // a latency-like mix: a body around 2-5k ticks and a long tail up to 10^9
        ulong[] values = new ulong[200_000];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = rng.NextDouble() < 0.98
                ? (ulong)rng.Next(2000, 5000)
                : (ulong)Math.Exp(rng.NextDouble() * Math.Log(1e9));
        }
        var h = new LatencyHistogram();
        foreach (ulong v in values)
            h.Record(v);
        var snap = new HistogramSnapshot();
        snap.Add(h);
        Array.Sort(values);
        Assert.Equal(values.Length, snap.Count);
        foreach (double p in new[] { 1.0, 50, 90, 99, 99.9, 99.99, 100 })
            AssertWithinBucket(Exact(values, p), snap.Percentile(p), $"p{p}");
        AssertWithinBucket(values[^1], snap.Max, "max");
        Assert.True(snap.Min <= values[0]);
    }

    [Fact]
    public void SmallValues_AreExact()
    {
        var h = new LatencyHistogram();
        for (ulong v = 0; v < 2 * LatencyHistogram.Half; v++)
            h.Record(v);
        var s = new HistogramSnapshot();
        s.Add(h);
        Assert.Equal(127UL, s.Percentile(50));
        Assert.Equal(255UL, s.Max);
        Assert.Equal(0UL, s.Min);
    }

    [Fact]
    public void Buckets_TileTheWholeRange_WithoutGapsOrOverlaps()
    {
        for (int i = 1; i < LatencyHistogram.BucketCount; i++)
        {
            Assert.Equal(LatencyHistogram.HighestOf(i - 1) + 1, LatencyHistogram.LowestOf(i));
            Assert.Equal(i, LatencyHistogram.Index(LatencyHistogram.LowestOf(i)));
            Assert.Equal(i, LatencyHistogram.Index(LatencyHistogram.HighestOf(i)));
        }
        Assert.Equal(ulong.MaxValue, LatencyHistogram.HighestOf(LatencyHistogram.BucketCount - 1));
        Assert.Equal(LatencyHistogram.BucketCount - 1, LatencyHistogram.Index(ulong.MaxValue));
    }

    [Fact]
    public void Merge_OfTwoWorkers_EqualsOneHistogramOfAll_AndBaselinesSubtract()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        var all = new LatencyHistogram();
        var rng = new Random(3);
        for (int i = 0; i < 10_000; i++)
        {
            ulong v = (ulong)rng.Next(1, 1_000_000);
            (i % 2 == 0 ? a : b).Record(v, 2);
            all.Record(v, 2);
        }
        var merged = new HistogramSnapshot();
        merged.Add(a);
        merged.Add(b);
        var single = new HistogramSnapshot();
        single.Add(all);
        foreach (double p in new[] { 50.0, 90, 99, 99.9 })
            Assert.Equal(single.Percentile(p), merged.Percentile(p));
        Assert.Equal(20_000, merged.Count);

        var baseline = new HistogramSnapshot();
        baseline.Add(a);
        baseline.Add(b);
        a.Record(7_000_000);
        var after = new HistogramSnapshot();
        after.Add(a);
        after.Add(b);
        after.Subtract(baseline);
        Assert.Equal(1, after.Count);
        AssertWithinBucket(7_000_000, after.Percentile(50), "after clear");
    }

    [Fact]
    public void Empty_IsZero()
    {
        var s = new HistogramSnapshot();
        Assert.Equal(0UL, s.Percentile(99));
        Assert.Equal(0UL, s.Max);
        Assert.Equal(0, s.Mean);
    }

    [Fact]
    public void Record_DoesNotAllocate()
    {
        var h = new LatencyHistogram();
        h.Record(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong v = 0; v < 100_000; v++)
            h.Record(v * 977);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }
}
