using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: interface features. Classifier rules on input and output, the flow tracker.</summary>
public sealed unsafe partial class Worker
{
    /// <summary>Input classifier of a phy burst: what a drop rule matches moves to the drop
    /// buffer (counted as classify-drop, traced as dropped); returns how many stay, in order.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint InputAcl<TTrace>(in PollEntry e, AclPortRules rules, bool tracked, void** pkts, uint n, ref uint nDrop, ref long droppedBytes)
        where TTrace : struct, ITrace
    {
        WorkerContext ctx = _ctx;
        uint first = nDrop;
        uint kept = AclFilter.Filter(rules, ctx.Acl, pkts, n, ctx.DropBuf, ref nDrop, ctx.AclHits,
            new AclFlows(ctx.Flows, (byte)e.Port, ctx.NowMs, tracked));
        for (uint i = first; i < nDrop; i++)
        {
            droppedBytes += Mbuf.PktLen(ctx.DropBuf[i]);
            if (TTrace.On)
                TraceEnd(SlotOf(ctx.DropBuf[i]), TraceOutcome.Dropped, Reason.DropClassify, ushort.MaxValue);
        }
        ctx.Counters.Reason(Reason.DropClassify) += nDrop - first;
        Mark(RuntimePath.Acl, n);
        return kept;
    }

    /// <summary>Output classifier of what is about to leave a port (forwarded or from the
    /// mirror): drops are freed here, counted as classify-drop and on the port. Returns how
    /// many stay and takes their bytes off <paramref name="bytes"/> when it is known.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint OutputAcl(AclPortRules rules, bool tracked, ushort port, void** pkts, uint n, ref long bytes)
    {
        WorkerContext ctx = _ctx;
        uint nDrop = 0;
        uint kept = AclFilter.Filter(rules, ctx.Acl, pkts, n, ctx.AclDrop, ref nDrop, ctx.AclHits,
            new AclFlows(ctx.Flows, (byte)port, ctx.NowMs, tracked));
        if (nDrop != 0)
        {
            ctx.Counters.Reason(Reason.DropClassify) += nDrop;
            if (ctx.TraceCount != 0)
                TraceOutputDrops(ctx.AclDrop, nDrop, Reason.DropClassify);
            FreeOutputDrops(port, nDrop, ref bytes);
        }
        Mark(RuntimePath.Acl, n);
        return kept;
    }

    /// <summary>Frees what an output feature dropped (the first <paramref name="nDrop"/> of
    /// AclDrop), counted on the port, and takes their bytes off <paramref name="bytes"/> when known.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FreeOutputDrops(ushort port, uint nDrop, ref long bytes)
    {
        WorkerContext ctx = _ctx;
        if (bytes >= 0)
            for (uint i = 0; i < nDrop; i++)
                bytes -= Mbuf.PktLen(ctx.AclDrop[i]);
        DpdkSharp.Burst.Free(ctx.AclDrop, nDrop);
        ctx.Counters.Port(port, PortCounter.Drops) += nDrop;
    }

    /// <summary>The flow tracker on a tracked port's burst (RX after the input rules, TX after the
    /// output rules). A new flow that finds the table full is passed untracked or, by policy,
    /// dropped: counted as flow-table-full.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint TrackFlows(ushort port, FlowSettings settings, void** pkts, uint n, void** drop, ref uint nDrop, ref long droppedBytes)
    {
        WorkerContext ctx = _ctx;
        FlowTable? t = ctx.Flows;
        if (t is null)
            return n;
        uint first = nDrop;
        uint kept = FlowTracker.Track(t, ctx.Acl, (byte)port, pkts, n, ctx.NowMs, settings.FullPolicy, drop, ref nDrop);
        for (uint i = first; i < nDrop; i++)
            droppedBytes += Mbuf.PktLen(drop[i]);
        ctx.Counters.Reason(Reason.DropFlowTableFull) += nDrop - first;
        Mark(RuntimePath.Flow, n);
        return kept;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private uint TrackOutput(ushort port, FlowSettings settings, void** pkts, uint n, ref long bytes)
    {
        uint nDrop = 0;
        long droppedBytes = 0;
        uint kept = TrackFlows(port, settings, pkts, n, _ctx.AclDrop, ref nDrop, ref droppedBytes);
        if (nDrop != 0)
        {
            if (_ctx.TraceCount != 0)
                TraceOutputDrops(_ctx.AclDrop, nDrop, Reason.DropFlowTableFull);
            FreeOutputDrops(port, nDrop, ref bytes);
        }
        return kept;
    }
}
