using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
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
        r->NextHop = 0;
        r->BeforeLen = (ushort)len;
        r->AfterLen = 0;
        System.Buffer.MemoryCopy(Mbuf.Data(m), r->Before, TraceRecord.BeforeBytes, len);
        return slot;
    }

    private void TraceClassified(int slot, Reason r, int* candidateSlot)
    {
        if (slot >= 0)
            _ctx.Trace!.Records[slot].Classified = (byte)r;
        if (candidateSlot != null)
            *candidateSlot = slot;
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
