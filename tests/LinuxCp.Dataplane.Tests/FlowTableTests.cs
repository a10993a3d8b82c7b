using System.Runtime.InteropServices;
using LinuxCp.Dataplane.Features;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The flow table on synthetic keys: both directions find one flow, TCP and UDP state
/// machines, timeouts by state in an incremental sweep, zones, a full table, clear, reflect in
/// the classifier node.</summary>
public sealed unsafe class FlowTableTests : IDisposable
{
    private readonly FlowTable _t = new(1024);
    private readonly byte* _k = (byte*)NativeMemory.AllocZeroed(AclKey.Size6);

    public void Dispose()
    {
        _t.Dispose();
        NativeMemory.Free(_k);
    }

    /// <summary>An IPv4 key: proto, src, dst, sport, dport, TCP flags (AclKey layout).</summary>
    private byte* Key4(byte proto, uint src, uint dst, ushort sport, ushort dport, byte flags = 0)
    {
        NativeMemory.Clear(_k, AclKey.Size6);
        _k[0] = proto;
        *(uint*)(_k + 4) = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(src);
        *(uint*)(_k + 8) = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(dst);
        _k[12] = (byte)(sport >> 8);
        _k[13] = (byte)sport;
        _k[14] = (byte)(dport >> 8);
        _k[15] = (byte)dport;
        _k[16] = flags;
        return _k;
    }

    private FlowEntry* Packet(byte proto, uint src, uint dst, ushort sport, ushort dport, byte flags, uint now, byte zone = 1)
    {
        byte* k = Key4(proto, src, dst, sport, dport, flags);
        FlowEntry* f = _t.Lookup(k, false, zone, now, true, out bool fromLo, out _);
        if (f != null)
            _t.Update(f, fromLo, FlowTracker.TcpFlags(k, false), 100, now);
        return f;
    }

    private const uint A = 0x0A000001, B = 0xC0000201;
    private const byte Syn = 0x02, Ack = 0x10, Fin = 0x01, Rst = 0x04;

    [Fact]
    public void Tcp_BothDirectionsOneFlow_NewEstablishedFinWaitClosed()
    {
        FlowEntry* f = Packet(6, B, A, 40000, 80, Syn, 10); // B opens; B is the higher address
        Assert.Equal(FlowState.New, f->State);
        Assert.Equal(Ptr(f), Ptr(Packet(6, A, B, 80, 40000, Syn | Ack, 11)));
        Assert.Equal(FlowState.Established, f->State);
        Packet(6, B, A, 40000, 80, Ack, 12);
        Assert.Equal(FlowState.Established, f->State);
        Packet(6, B, A, 40000, 80, Fin | Ack, 13);
        Assert.Equal(FlowState.FinWait, f->State);
        Packet(6, A, B, 80, 40000, Fin | Ack, 14);
        Assert.Equal(FlowState.Closed, f->State);
        Assert.Equal(5ul, f->Packets);
        Assert.Equal(500ul, f->Bytes);
        Assert.Equal(1, _t.Count);
        Assert.Equal(1, _t.InState(FlowState.Closed));
        Assert.Equal(0, _t.InState(FlowState.New) + _t.InState(FlowState.Established) + _t.InState(FlowState.FinWait));
        Assert.Equal(10u, f->First);
        Assert.Equal(14u, f->Last);
        Assert.Equal(0, f->Flags & FlowEntry.OrigIsLo); // the opener (B) is the higher endpoint
    }

    private static nint Ptr(FlowEntry* f) => (nint)f;

    [Fact]
    public void Rst_Closes_UdpAndIcmp_EstablishOnFirstReply()
    {
        FlowEntry* t = Packet(6, A, B, 1000, 22, Syn, 0);
        Packet(6, B, A, 22, 1000, Rst, 1);
        Assert.Equal(FlowState.Closed, t->State);

        FlowEntry* u = Packet(17, A, B, 5000, 53, 0, 0);
        Packet(17, A, B, 5000, 53, 0, 1);
        Assert.Equal(FlowState.New, u->State); // the same direction again
        Packet(17, B, A, 53, 5000, 0, 2);
        Assert.Equal(FlowState.Established, u->State);

        // ICMP: request (type 8) and reply (type 0) are one flow of the address pair.
        FlowEntry* i = Packet(1, A, B, 8 << 8, 0, 0, 0);
        Assert.Equal(Ptr(i), Ptr(Packet(1, B, A, 0, 0, 0, 1)));
        Assert.Equal(FlowState.Established, i->State);
        Assert.Equal(3, _t.Count);
    }

    [Fact]
    public void Zones_AreSeparateTables()
    {
        FlowEntry* a = Packet(17, A, B, 1, 2, 0, 0, zone: 1);
        FlowEntry* b = Packet(17, A, B, 1, 2, 0, 0, zone: 2);
        Assert.NotEqual(Ptr(a), Ptr(b));
        Assert.Equal(2, _t.Count);
    }

    /// <summary>At least one whole pass of the sweep: a budget counts every look at a slot, and a
    /// slot emptied by a removal is looked at again, so a pass takes the slots plus the removals.</summary>
    private static int SweepPass(FlowTable t, uint now, FlowTimeouts to, bool[]? live = null) =>
        t.Sweep(now, t.Slots, to, live) + t.Sweep(now, t.Slots, to, live);

    [Fact]
    public void Sweep_ExpiresByStateTimeout_Incrementally()
    {
        var to = new FlowTimeouts(TcpEstablished: 100, TcpTransitory: 5, Udp: 30, Icmp: 2, Other: 7);
        Packet(6, A, B, 1, 80, Syn, 0);                              // new TCP: transitory, 5 s
        Packet(6, A, B, 2, 80, Syn, 0); Packet(6, B, A, 80, 2, Syn | Ack, 0); // established: 100 s
        Packet(17, A, B, 3, 53, 0, 0);                               // UDP: 30 s
        Packet(1, A, B + 1, 8 << 8, 0, 0, 0);                        // ICMP: 2 s
        Assert.Equal(4, _t.Count);
        Assert.Equal(0, SweepPass(_t, 1500, to));
        Assert.Equal(1, SweepPass(_t, 2500, to)); // ICMP
        Assert.Equal(1, SweepPass(_t, 6000, to)); // the new TCP flow
        Assert.Equal(1, SweepPass(_t, 31_000, to)); // UDP
        Assert.Equal(1, _t.Count);
        // A small budget looks at part of the table per call; a full pass finds it.
        int removed = 0;
        for (int i = 0; i < _t.Slots / 16 + 1; i++)
            removed += _t.Sweep(101_000, 16, to);
        Assert.Equal(1, removed);
        Assert.Equal(0, _t.Count);
        Assert.Equal(4, _t.Expiries);
        // Flows of a zone no longer live go at once.
        Packet(17, A, B, 3, 53, 0, 200_000, zone: 3);
        var live = new bool[DpdkSharp.EthPort.MaxPorts];
        Assert.Equal(1, SweepPass(_t, 200_001, to, live));
    }

    [Fact]
    public void Full_CountedNeverCrashes_FreedEntriesAreReused()
    {
        using var small = new FlowTable(16);
        var to = new FlowTimeouts(Udp: 1);
        for (int i = 0; i < 16; i++)
            Assert.True(small.Lookup(Key4(17, A, B, (ushort)i, 53), false, 0, 0, true, out _, out bool created) != null && created);
        Assert.True(small.Lookup(Key4(17, A, B, 999, 53), false, 0, 0, true, out _, out _) == null);
        Assert.Equal(1, small.TableFull);
        Assert.Equal(16, SweepPass(small, 5000, to));
        Assert.True(small.Lookup(Key4(17, A, B, 999, 53), false, 0, 5000, true, out _, out _) != null);
        small.Clear();
        Assert.Equal(0, small.Count);
        Assert.Equal(99, FlowTable.BytesPerFlow);
    }

    [Fact]
    public void ManyFlows_AllFoundAgain_ChainsIntact()
    {
        using var t = new FlowTable(1 << 14);
        var rnd = new Random(7);
        var keys = Enumerable.Range(0, 12_000).Select(_ => (Src: (uint)rnd.Next(), Dst: (uint)rnd.Next(), Sp: (ushort)rnd.Next(65536), Dp: (ushort)rnd.Next(65536))).Distinct().ToList();
        foreach (var k in keys)
            Assert.True(t.Lookup(Key4(17, k.Src, k.Dst, k.Sp, k.Dp), false, 0, 0, true, out _, out _) != null);
        Assert.Equal(keys.Count, t.Count);
        // Remove every other one through expiry of a touched/untouched split.
        for (int i = 0; i < keys.Count; i += 2)
        {
            var k = keys[i];
            FlowEntry* f = t.Lookup(Key4(17, k.Dst, k.Src, k.Dp, k.Sp), false, 0, 0, false, out bool fromLo, out _); // the reverse direction
            Assert.True(f != null);
            t.Update(f, fromLo, 0, 1, 100_000);
        }
        SweepPass(t, 100_000 + 1000, new FlowTimeouts(Udp: 50));
        for (int i = 0; i < keys.Count; i++)
        {
            var k = keys[i];
            bool found = t.Lookup(Key4(17, k.Src, k.Dst, k.Sp, k.Dp), false, 0, 0, false, out _, out _) != null;
            Assert.True(found == (i % 2 == 0), $"flow {i}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Churn_AgainstAModel_NoFlowLostWhenOthersAreRemoved(int seed)
    {
        // A small, nearly full table (runs of occupied slots that wrap around its end) under
        // random inserts, touches and partial sweeps: a flow that is not idle past its timeout is
        // always found again, whatever removal moved; an expired one is gone; counts agree.
        using var t = new FlowTable(64);
        var rnd = new Random(seed);
        var to = new FlowTimeouts(Udp: 5);
        var model = new Dictionary<(uint, ushort), uint>(); // key -> last seen (ms)
        uint now = 0;
        int expired = 0;
        for (int step = 0; step < 20_000; step++)
        {
            now += (uint)rnd.Next(0, 40);
            var k = ((uint)rnd.Next(1, 400), (ushort)rnd.Next(1, 4));
            FlowEntry* f = t.Lookup(Key4(17, A + k.Item1, B, k.Item2, 53), false, 0, now, true, out bool fromLo, out bool created);
            if (f == null)
            {
                Assert.False(model.ContainsKey(k), "a known flow was not found");
                Assert.True(model.Count >= t.Capacity, "refused while there was room");
                continue;
            }
            Assert.Equal(!model.ContainsKey(k), created);
            t.Update(f, fromLo, 0, 1, now);
            model[k] = now;
            if (rnd.Next(8) == 0)
            {
                t.Sweep(now, rnd.Next(1, t.Slots), to);
                foreach (var (key, last) in model.ToList())
                {
                    bool found = t.Lookup(Key4(17, A + key.Item1, B, key.Item2, 53), false, 0, now, false, out _, out _) != null;
                    if (!found)
                    {
                        Assert.True(now - last > 5000, $"flow {key} lost after {now - last} ms idle (seed {seed}, step {step})");
                        model.Remove(key);
                        expired++;
                    }
                }
                Assert.Equal(model.Count, t.Count);
            }
        }
        Assert.True(expired > 500, $"only {expired} expiries: the test did not churn");
        Assert.True(t.TableFull > 0, "the table never filled up");
    }

    [Theory]
    [InlineData("destinations")]
    [InlineData("source ports")]
    [InlineData("random")]
    public void FullTable_FlowsThatDifferInFewBits_SpreadOverTheSlots(string pattern)
    {
        // Traffic often varies one address's last bytes or one port: such flows must not crowd
        // into part of the table (a weak hash gave 15 probes a lookup for sequential addresses).
        using var t = new FlowTable(1 << 16);
        var rnd = new Random(5);
        for (int f = 0; f < t.Capacity; f++)
        {
            byte* k = pattern switch
            {
                "destinations" => Key4(17, 0x0AFE0000, 0x0AFD0000 + (uint)f, 1000, 1001),
                "source ports" => Key4(6, A, B, (ushort)f, 443),
                _ => Key4(17, (uint)rnd.Next(), (uint)rnd.Next(), (ushort)rnd.Next(65536), (ushort)rnd.Next(65536)),
            };
            t.Lookup(k, false, 1, 0, true, out _, out _);
        }
        Assert.True(t.Count > t.Capacity - 10, $"{t.Count} flows");
        // Linear probing at two-thirds load averages 2 slots for a present flow.
        double mean = t.MeanProbeLength();
        Assert.True(mean < 2.5, $"{pattern}: {mean:F2} slots read per lookup");
    }
}
