using LinuxCp.Management.Observe;

namespace LinuxCp.Management.Tests;

/// <summary>The resource watch on synthetic counters: a warning names the port, the count since
/// the last warning, the pool's state and the option; at most one a minute per port and for the pool.</summary>
public sealed class ResourceWatchTests
{
    private sealed class Rig
    {
        public readonly Dictionary<string, ulong> NoMbuf = [];
        public long Available = 4000, Size = 4095, Now;
        public readonly List<string> Warnings = [];
        public readonly ResourceWatch Watch;

        public Rig() => Watch = new ResourceWatch(
            () => NoMbuf.Select(kv => new ResourceWatch.PortSample(kv.Key, kv.Value)).ToList(),
            () => new ResourceWatch.PoolSample("lcp_mbufs", Size, Available),
            Warnings.Add, () => Now);

        public void Tick(long advanceMs = 1000)
        {
            Now += advanceMs;
            Watch.Tick();
        }
    }

    [Fact]
    public void NoMbufGrowth_OneWarningAMinutePerPort_CarryingTheCountSinceTheLast()
    {
        var r = new Rig();
        r.NoMbuf["p0"] = 0;
        r.NoMbuf["p1"] = 0;
        r.Tick();
        Assert.Empty(r.Warnings);

        r.NoMbuf["p0"] = 100;
        r.Available = 10;
        r.Tick();
        string w = Assert.Single(r.Warnings, x => x.StartsWith("port p0:", StringComparison.Ordinal));
        Assert.Contains("100 received frame(s) found no free mbuf", w, StringComparison.Ordinal);
        Assert.Contains("pool lcp_mbufs: 10 of 4095 free", w, StringComparison.Ordinal);
        Assert.Contains("raise --mbufs (now 4095)", w, StringComparison.Ordinal);

        // More drops within the minute: counted, not logged; the next warning carries them all.
        for (int i = 0; i < 30; i++)
        {
            r.NoMbuf["p0"] += 10;
            r.Tick();
        }
        Assert.Single(r.Warnings, x => x.StartsWith("port p0:", StringComparison.Ordinal));
        r.Tick(31_000);
        Assert.Equal(2, r.Warnings.Count(x => x.StartsWith("port p0:", StringComparison.Ordinal)));
        Assert.Contains("300 received frame(s)", r.Warnings.Last(x => x.StartsWith("port p0:", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(400UL, r.Watch.NoMbufTotal);
        Assert.DoesNotContain(r.Warnings, x => x.StartsWith("port p1:", StringComparison.Ordinal));

        // The other port has its own minute.
        r.NoMbuf["p1"] = 5;
        r.Tick();
        Assert.Contains(r.Warnings, x => x.StartsWith("port p1: 5 received", StringComparison.Ordinal));
    }

    [Fact]
    public void PoolNearlyEmpty_WarnedWhenItBecomesLow_NotEverySecond()
    {
        var r = new Rig();
        r.Tick();
        Assert.Empty(r.Warnings);
        r.Available = 100; // below 4095/16
        r.Tick();
        Assert.Contains("pool lcp_mbufs: 100 of 4095 mbufs free", Assert.Single(r.Warnings), StringComparison.Ordinal);
        for (int i = 0; i < 120; i++)
            r.Tick();
        Assert.Single(r.Warnings);
        // Recovers, then low again within the minute: not logged again until a minute has passed.
        r.Available = 4000;
        r.Tick();
        r.Available = 50;
        r.Tick();
        Assert.Equal(2, r.Warnings.Count); // more than a minute since the first one
        r.Available = 4000;
        r.Tick();
        r.Available = 50;
        r.Tick();
        Assert.Equal(2, r.Warnings.Count);
    }

    [Fact]
    public void CounterReset_PortGoneAndBack_NoBogusHugeCount()
    {
        var r = new Rig();
        r.NoMbuf["p0"] = 1000;
        r.Tick();
        Assert.Contains("1000 received", Assert.Single(r.Warnings), StringComparison.Ordinal);
        r.NoMbuf["p0"] = 3; // re-created port: counters from zero
        r.Tick(61_000);
        Assert.Contains("port p0: 3 received", r.Warnings[1], StringComparison.Ordinal);
        r.NoMbuf.Remove("p0");
        r.Tick();
        r.NoMbuf["p0"] = 0;
        r.Tick();
        Assert.Equal(2, r.Warnings.Count);
        Assert.Equal(1003UL, r.Watch.NoMbufTotal);
    }
}
