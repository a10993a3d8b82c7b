using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Tests;

public sealed class LearnTableTests
{
    [Fact]
    public void Learn_ReadBack_UpdatedInPlace()
    {
        var t = new LearnTable();
        t.Learn(1, false, 0x0A000102, 0xA2);
        t.Learn(1, true, (UInt128)0x20010DB8 << 96 | 3, 0xA3);
        t.Learn(1, false, 0x0A000102, 0xA2); // unchanged
        var l = new List<LearnedNeighbor>();
        t.ReadInto(l);
        Assert.Equal(2, l.Count);
        Assert.Contains(new LearnedNeighbor(1, false, 0x0A000102, 0xA2), l);
        t.Learn(1, false, 0x0A000102, 0xC2); // moved
        l.Clear();
        t.ReadInto(l);
        Assert.Contains(new LearnedNeighbor(1, false, 0x0A000102, 0xC2), l);
        Assert.DoesNotContain(new LearnedNeighbor(1, false, 0x0A000102, 0xA2), l);
    }

    [Fact]
    public void UnspecifiedMulticastAndBroadcastSources_NotLearned()
    {
        // 0.0.0.0 is what a host's IGMP report carries before it has an address: learnt, it
        // would become the neighbour of the zero gateway, the key of the link's attached paths.
        var t = new LearnTable();
        UInt128 ff02 = (UInt128)0xff02 << 112 | 1;
        t.Learn(1, false, 0, 0xA1);
        t.Learn(1, true, 0, 0xA1);
        t.Learn(1, false, 0xE000_0001, 0xA1);   // 224.0.0.1
        t.Learn(1, false, 0xFFFF_FFFF, 0xA1);   // 255.255.255.255
        t.Learn(1, true, ff02, 0xA1);
        t.Learn(1, false, 0x0A00_0001, 0xA2);   // 10.0.0.1: the only neighbour
        var l = new List<LearnedNeighbor>();
        t.ReadInto(l);
        Assert.Equal([new LearnedNeighbor(1, false, 0x0A00_0001, 0xA2)], l);
        Assert.True(LearnTable.Learnable(true, (UInt128)0xfe80 << 112 | 1));
        Assert.False(LearnTable.Learnable(true, ff02));
    }

    [Fact]
    public void ManyNeighbours_Bounded_EveryEntryReadIsOneThatWasLearned()
    {
        var t = new LearnTable();
        for (uint i = 0; i < 10_000; i++)
            t.Learn((ushort)(i % 3), false, 0x0A000000 + i, 0x0200_0000_0000UL + i);
        var l = new List<LearnedNeighbor>();
        t.ReadInto(l);
        Assert.InRange(l.Count, 1, LearnTable.Size);
        Assert.All(l, n => Assert.Equal(0x0200_0000_0000UL + (ulong)(n.Ip - 0x0A000000), n.Mac));
        Assert.All(l, n => Assert.Equal((ushort)((uint)(n.Ip - 0x0A000000) % 3), n.Port));
    }

    [Fact]
    public async Task ConcurrentWriter_ReaderNeverSeesAMixedEntry()
    {
        // Two addresses of the same slot, rewritten by turns with a MAC derived from each: an
        // entry read half old, half new would pair an address with the other one's MAC.
        var slot = typeof(LearnTable).GetMethod("Slot", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        int Slot(uint ip) => (int)slot.Invoke(null, [(ushort)7, (UInt128)ip])!;
        uint a = 1, b = 2;
        while (Slot(b) != Slot(a))
            b++;
        var t = new LearnTable();
        using var stop = new CancellationTokenSource();
        Task writer = Task.Run(() =>
        {
            ulong round = 0;
            while (!stop.IsCancellationRequested)
            {
                round++;
                t.Learn(7, false, a, ((ulong)a << 32) | (round & 0xFFFF_FFFF));
                t.Learn(7, false, b, ((ulong)b << 32) | (round & 0xFFFF_FFFF));
            }
        });
        var l = new List<LearnedNeighbor>();
        long seen = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 1000 || (seen == 0 && sw.ElapsedMilliseconds < 10_000))
        {
            l.Clear();
            t.ReadInto(l);
            seen += l.Count;
            foreach (LearnedNeighbor n in l)
                Assert.True(n.Port == 7 && (ulong)n.Ip == n.Mac >> 32, n.ToString());
        }
        await stop.CancelAsync();
        await writer;
        Assert.True(seen > 0);
    }
}
