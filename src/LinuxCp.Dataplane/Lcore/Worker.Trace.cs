using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Trace and capture: reached only when armed.</summary>
public sealed unsafe partial class Worker
{
    /// <summary>Starts a trace record for a packet if budget and space remain; returns its slot or -1.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int TraceBegin(in PollEntry e, void* m)
    {
        WorkerContext ctx = _ctx;
        TraceBuffer? t = ctx.Trace;
        if (t is null || ctx.TraceRemaining <= 0 || ctx.TraceNext >= t.Capacity)
            return -1;
        ctx.TraceRemaining--;
        int slot = ctx.TraceNext++;
        TraceRecord* r = t.Records + slot;
        uint len = Math.Min(Mbuf.DataLen(m), (uint)TraceRecord.BeforeBytes);
        r->Tsc = (long)Eal.Rdtsc();
        r->PktLen = Mbuf.PktLen(m);
        r->RxPort = e.Port;
        r->TxPort = ushort.MaxValue;
        r->RxKind = (byte)e.Kind;
        r->Outcome = TraceOutcome.Pending;
        r->Classified = (byte)Reason.None;
        r->FinalReason = (byte)Reason.None;
        r->LookedUp = 0;
        r->Passes = TracePasses.None;
        r->NextHop = 0;
        r->BeforeLen = (ushort)len;
        r->AfterLen = 0;
        System.Buffer.MemoryCopy(Mbuf.Data(m), r->Before, TraceRecord.BeforeBytes, len);
        return slot;
    }

    /// <summary>Starts the records of a traced burst as it arrived (before any node saw it) and
    /// remembers each mbuf's slot for the nodes, which then run the code of untraced bursts and
    /// add to the records of the packets they handle.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TraceBurst(in PollEntry e, void** rx, uint n)
    {
        WorkerContext ctx = _ctx;
        for (uint i = 0; i < n; i++)
        {
            ctx.TraceMbufs[i] = rx[i];
            ctx.TraceSlots[i] = TraceBegin(in e, rx[i]);
        }
        ctx.TraceCount = n;
    }

    /// <summary>The record of a packet of the traced burst, or -1 (not traced: budget or space ran out).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int SlotOf(void* m)
    {
        WorkerContext ctx = _ctx;
        for (uint i = 0; i < ctx.TraceCount; i++)
            if (ctx.TraceMbufs[i] == m)
                return ctx.TraceSlots[i];
        return -1;
    }

    /// <summary>A sub-interface's frames (tags popped): their records name it as the RX port;
    /// the bytes recorded at arrival keep the tags.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TraceSubInterface(in PollEntry e, void** pkts, uint n)
    {
        for (uint i = 0; i < n; i++)
        {
            int slot = SlotOf(pkts[i]);
            if (slot < 0)
                continue;
            TraceRecord* r = _ctx.Trace!.Records + slot;
            r->RxPort = e.Port;
            r->RxKind = (byte)e.Kind;
        }
    }

    /// <summary>Records of the candidates a fast pass took: their slots for the forward node,
    /// the classifier verdict they stand for and the pass.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TraceFastPass(void** pkts, uint n, int* slots, Reason verdict, TracePasses pass)
    {
        for (uint i = 0; i < n; i++)
        {
            int slot = slots[i] = SlotOf(pkts[i]);
            if (slot < 0)
                continue;
            TraceRecord* r = _ctx.Trace!.Records + slot;
            r->Classified = (byte)verdict;
            r->Passes |= pass;
        }
    }

    /// <summary>The candidates the single-path loop forwarded (those not in <paramref name="left"/>,
    /// which keeps their order): their records get the rewrite and the egress port.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TraceSinglePaths(GroupEntry* groups, PathEntry* paths, void** mbufs, ulong* nhs, int* slots, uint n, void*** left, uint nLeft)
    {
        uint j = 0;
        for (uint i = 0; i < n; i++)
        {
            if (j < nLeft && left[j] == mbufs + i)
            {
                j++;
                continue;
            }
            if (slots[i] < 0)
                continue;
            PathSlot* s = Forwarding.SinglePath(groups, paths, nhs[i]);
            TraceForwarded(slots[i], s == null ? ushort.MaxValue : s->TxPort, Mbuf.Data(mbufs[i]), Mbuf.DataLen(mbufs[i]));
            _ctx.Trace!.Records[slots[i]].Passes |= TracePasses.SinglePath;
        }
    }

    /// <summary>Packets an output feature or a full TX queue dropped, when a burst is traced:
    /// their records end as dropped with <paramref name="r"/> (the rewrite they had stays).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TraceOutputDrops(void** pkts, uint n, Reason r)
    {
        for (uint i = 0; i < n; i++)
        {
            int slot = SlotOf(pkts[i]);
            if (slot < 0)
                continue;
            TraceRecord* t = _ctx.Trace!.Records + slot;
            t->Outcome = TraceOutcome.Dropped;
            t->FinalReason = (byte)r;
            t->Passes |= TracePasses.Output;
        }
    }

    private void TraceClassified(int slot, Reason r)
    {
        if (slot >= 0)
            _ctx.Trace!.Records[slot].Classified = (byte)r;
    }

    private void TraceForwarded(int slot, ushort txPort, byte* frame, uint segLen)
    {
        if (slot < 0)
            return;
        TraceRecord* r = _ctx.Trace!.Records + slot;
        uint len = Math.Min(segLen, (uint)TraceRecord.AfterBytes);
        r->Outcome = TraceOutcome.Forwarded;
        r->TxPort = txPort;
        r->AfterLen = (ushort)len;
        System.Buffer.MemoryCopy(frame, r->After, TraceRecord.AfterBytes, len);
    }

    private void TraceEnd(int slot, TraceOutcome outcome, Reason r, ushort txPort)
    {
        if (slot < 0)
            return;
        TraceRecord* t = _ctx.Trace!.Records + slot;
        t->Outcome = outcome;
        t->FinalReason = (byte)r;
        t->TxPort = txPort;
    }

    /// <summary>Copies a burst into this worker's capture ring (direction 1 rx, 2 tx).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CaptureBurst(void** pkts, uint n, byte direction)
    {
        CaptureRing? ring = Volatile.Read(ref _ctx.Capture);
        if (ring is null)
            return;
        long tsc = (long)Eal.Rdtsc();
        for (uint i = 0; i < n; i++)
        {
            void* m = pkts[i];
            ring.Put(Mbuf.Data(m), Mbuf.DataLen(m), Mbuf.PktLen(m), direction, tsc);
        }
    }
}
