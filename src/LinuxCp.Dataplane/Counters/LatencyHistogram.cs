using System.Numerics;
using System.Runtime.CompilerServices;

namespace LinuxCp.Dataplane.Counters;

/// <summary>A log-linear histogram of non-negative 64-bit values (TSC ticks here), the bucket
/// scheme HdrHistogram uses: values below 2*<see cref="Half"/> get one bucket each; above that,
/// every power-of-two range is split into <see cref="Half"/> equal buckets, so a bucket is never
/// wider than 1/<see cref="Half"/> of the values it holds (under 0.8% with 128). One writer
/// (a worker) records with plain stores and never allocates; readers copy the counts into a
/// <see cref="HistogramSnapshot"/>, which merges across workers and answers percentiles.</summary>
public sealed class LatencyHistogram
{
    public const int SubBits = 8;
    public const int Half = 1 << (SubBits - 1);           // 128 buckets per power of two
    public const int BucketCount = (64 - SubBits + 1) * Half + Half; // covers 0 .. 2^64-1

    private readonly long[] _counts = new long[BucketCount];

    /// <summary>Adds <paramref name="count"/> occurrences of <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Record(ulong value, long count = 1) => _counts[Index(value)] += count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Index(ulong value)
    {
        if (value < 2 * Half)
            return (int)value;
        int shift = 63 - BitOperations.LeadingZeroCount(value) - (SubBits - 1);
        return shift * Half + (int)(value >> shift);
    }

    /// <summary>The smallest value that falls in bucket <paramref name="index"/>.</summary>
    public static ulong LowestOf(int index)
    {
        if (index < 2 * Half)
            return (ulong)index;
        int shift = index / Half - 1;
        return (ulong)(index - shift * Half) << shift;
    }

    /// <summary>The largest value that falls in bucket <paramref name="index"/>.</summary>
    public static ulong HighestOf(int index)
    {
        if (index < 2 * Half)
            return (ulong)index;
        int shift = index / Half - 1;
        return LowestOf(index) + ((1UL << shift) - 1);
    }

    /// <summary>Adds this histogram's counts to <paramref name="into"/> (a reader's copy).</summary>
    public void AddTo(long[] into)
    {
        for (int i = 0; i < BucketCount; i++)
            into[i] += Volatile.Read(ref _counts[i]);
    }
}

/// <summary>A read-side copy of one or more <see cref="LatencyHistogram"/>s.</summary>
public sealed class HistogramSnapshot
{
    private readonly long[] _counts = new long[LatencyHistogram.BucketCount];

    public long Count { get; private set; }

    /// <summary>Empties the copy, so that a reader can fill it again without allocating.</summary>
    public void Reset()
    {
        Array.Clear(_counts);
        Count = 0;
    }

    public void Add(LatencyHistogram h)
    {
        h.AddTo(_counts);
        Count = _counts.Sum();
    }

    /// <summary>Removes a baseline taken earlier (what <c>clear</c> does: the workers' counts
    /// are never written by anyone else).</summary>
    public void Subtract(HistogramSnapshot baseline)
    {
        for (int i = 0; i < _counts.Length; i++)
            _counts[i] = Math.Max(0, _counts[i] - baseline._counts[i]);
        Count = _counts.Sum();
    }

    /// <summary>The value at percentile <paramref name="p"/> (0-100]: the highest value of the
    /// bucket that holds the ceil(p% * count)-th smallest recorded value, so the answer is never
    /// below the exact percentile and at most one bucket width above it. 0 when empty.</summary>
    public ulong Percentile(double p)
    {
        if (Count == 0)
            return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(p / 100.0 * Count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
                return LatencyHistogram.HighestOf(i);
        }
        return Max;
    }

    /// <summary>Samples above <paramref name="value"/> (counted by bucket: a sample in the
    /// bucket that holds the value itself is not counted).</summary>
    public long CountAbove(ulong value)
    {
        long n = 0;
        for (int i = LatencyHistogram.Index(value) + 1; i < _counts.Length; i++)
            n += _counts[i];
        return n;
    }

    public ulong Max
    {
        get
        {
            for (int i = _counts.Length - 1; i >= 0; i--)
                if (_counts[i] != 0)
                    return LatencyHistogram.HighestOf(i);
            return 0;
        }
    }

    public ulong Min
    {
        get
        {
            for (int i = 0; i < _counts.Length; i++)
                if (_counts[i] != 0)
                    return LatencyHistogram.LowestOf(i);
            return 0;
        }
    }

    /// <summary>Mean using each bucket's midpoint.</summary>
    public double Mean
    {
        get
        {
            if (Count == 0)
                return 0;
            double sum = 0;
            for (int i = 0; i < _counts.Length; i++)
                if (_counts[i] != 0)
                    sum += _counts[i] * ((LatencyHistogram.LowestOf(i) + (double)LatencyHistogram.HighestOf(i)) / 2);
            return sum / Count;
        }
    }
}
