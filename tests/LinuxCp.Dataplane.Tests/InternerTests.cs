using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The one intern + refcount + free-list implementation.</summary>
public sealed class InternerTests
{
    [Fact]
    public void Acquire_EqualKeysShareAnId_FreedWithTheLastReference()
    {
        var i = new Interner<string>(1, 100, deferred: false);
        Assert.True(i.TryAcquire("a", out int a, out bool created));
        Assert.True(created);
        Assert.True(i.TryAcquire("a", out int a2, out created));
        Assert.False(created);
        Assert.Equal(a, a2);
        Assert.Equal(2, i.References(a));
        Assert.False(i.Release(a));
        Assert.Equal("a", i[a]);
        Assert.True(i.Release(a));
        Assert.Equal(-1, i.Find("a"));
        Assert.Equal(0, i.Count);
        // Immediate policy: the id is reused at once.
        i.TryAcquire("b", out int b, out _);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Deferred_ReleasedIdsWaitForReclaim()
    {
        var i = new Interner<int>(5, 100, deferred: true);
        i.TryAcquire(7, out int first, out _);
        Assert.Equal(5, first); // below firstId is the caller's
        i.Release(first);
        Assert.Equal(1, i.PendingCount);
        i.TryAcquire(8, out int second, out _);
        Assert.NotEqual(first, second); // still pending: a worker may hold it
        Assert.Equal(1, i.Reclaim());
        i.TryAcquire(9, out int third, out _);
        Assert.Equal(first, third);
    }

    [Fact]
    public void Exhausted_RefusedAndCounted_NothingInterned()
    {
        var i = new Interner<int>(0, 3, deferred: false);
        for (int k = 0; k < 3; k++)
            Assert.True(i.TryAcquire(k, out _, out _));
        Assert.False(i.TryAcquire(99, out int id, out _));
        Assert.Equal(-1, id);
        Assert.Equal(1, i.Refusals);
        Assert.False(i.Contains(99));
        Assert.True(i.TryAcquire(1, out _, out _)); // known keys still fine
        i.Release(0);
        Assert.True(i.TryAcquire(99, out _, out _));
    }

    [Fact]
    public void ReleaseOfAnIdNotHeld_Throws()
    {
        var i = new Interner<int>(1, 10, deferred: false);
        Assert.Throws<InvalidOperationException>(() => i.Release(3));
        i.TryAcquire(1, out int id, out _);
        i.Release(id);
        Assert.Throws<InvalidOperationException>(() => i.Release(id));
    }

    [Fact]
    public void ManyKeys_GrowBeyondInitialCapacity()
    {
        var i = new Interner<long>(1, 1 << 20, deferred: false, initialCapacity: 4);
        for (long k = 0; k < 10_000; k++)
            i.TryAcquire(k, out _, out _);
        Assert.Equal(10_000, i.Count);
        Assert.Equal(10_001, i.HighWater);
        Assert.Equal(1234L, i[i.Find(1234)]);
    }
}
