using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Tests;

public sealed class NativeMapTests
{
    /// <summary>A key whose hash collides a lot, so probe runs are long and wrap around.</summary>
    private readonly record struct Crowded(int Id) : IEquatable<Crowded>
    {
        public override int GetHashCode() => Id % 7;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomOperations_MatchDictionary(int seed)
    {
        var rng = new Random(seed);
        using var map = new NativeMap<Crowded, long>(4);
        var reference = new Dictionary<Crowded, long>();
        for (int step = 0; step < 50_000; step++)
        {
            var k = new Crowded(rng.Next(300));
            switch (rng.Next(4))
            {
                case 0:
                case 1:
                    map[k] = step;
                    reference[k] = step;
                    break;
                case 2:
                    Assert.Equal(reference.Remove(k), map.Remove(k));
                    break;
                default:
                    Assert.Equal(reference.TryGetValue(k, out long want), map.TryGetValue(k, out long got));
                    Assert.Equal(want, got);
                    break;
            }
            Assert.Equal(reference.Count, map.Count);
        }
        var all = map.ToList();
        Assert.Equal(reference.Count, all.Count);
        foreach (var (k, v) in all)
            Assert.Equal(reference[k], v);
    }

    [Fact]
    public void Prefixes_GrowFromSmall_AllFoundThenAllRemoved()
    {
        using var map = new NativeMap<Prefix, int>();
        for (int i = 0; i < 100_000; i++)
            map.GetValueRefOrAddDefault(new Prefix(false, (UInt128)(0x0A000000u + ((uint)i << 8)), 24), out _) = i;
        Assert.Equal(100_000, map.Count);
        Assert.True(map.Bytes >= 100_000 * 4 / 3 * 48);
        for (int i = 0; i < 100_000; i += 7)
            Assert.Equal(i, map[new Prefix(false, (UInt128)(0x0A000000u + ((uint)i << 8)), 24)]);
        Assert.False(map.ContainsKey(new Prefix(true, (UInt128)(0x0A000000u), 24)));
        for (int i = 0; i < 100_000; i++)
            Assert.True(map.Remove(new Prefix(false, (UInt128)(0x0A000000u + ((uint)i << 8)), 24)));
        Assert.Equal(0, map.Count);
        Assert.Empty(map.ToList());
    }

    [Theory]
    [InlineData(1000)]               // small: the C heap
    [InlineData((5 << 20) + 12345)]  // large: mapped, on 2 MiB boundaries
    public unsafe void HugeMemory_ZeroedWritableAligned(int bytes)
    {
        byte* p = (byte*)HugeMemory.AllocZeroed((nuint)bytes, out nuint mapped);
        try
        {
            if (bytes >= (int)HugeMemory.HugePage)
            {
                Assert.Equal(0u, (ulong)p % HugeMemory.HugePage);
                Assert.True(mapped >= (nuint)bytes && mapped % HugeMemory.HugePage == 0);
            }
            else
                Assert.Equal(0u, (uint)mapped);
            for (int i = 0; i < bytes; i += 4096)
                Assert.Equal(0, p[i]);
            Assert.Equal(0, p[bytes - 1]);
            p[0] = 1;
            p[bytes - 1] = 2;
            Assert.Equal(3, p[0] + p[bytes - 1]);
        }
        finally
        {
            HugeMemory.Free(p, mapped);
        }
    }

    [Fact]
    public void Prefix_Is32Bytes()
    {
        Assert.Equal(32, System.Runtime.CompilerServices.Unsafe.SizeOf<Prefix>());
    }
}
