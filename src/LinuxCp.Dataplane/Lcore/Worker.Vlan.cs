using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: sub-interfaces. Tagged frames of a parent port to their sub-interface (tags
/// popped); tags pushed on what a sub-interface sends.</summary>
public sealed unsafe partial class Worker
{
    /// <summary>The sub-interfaces of a parent port's burst (in <see cref="WorkerContext.RxBuf"/>):
    /// their frames lose their tags and are processed per sub-interface, each as if received on
    /// a port of its own (its mirror, table, counters, features); frames of unknown tags are
    /// dropped (vlan-unknown) unless the parent takes them. Returns how many frames stay, at the
    /// front of RxBuf, for the parent.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint SubRx<TTrace>(in PollEntry e, VlanTable vlans, uint n) where TTrace : struct, ITrace
    {
        WorkerContext ctx = _ctx;
        VlanDemux? d = vlans.Demux[e.Port];
        if (d is null)
            return n; // the table changed under the entry: its next burst sees the new one
        uint nSub = 0, nDrop = 0;
        long taggedBytes = 0;
        uint kept = VlanTable.Split(d, ctx.RxBuf, n, ctx.SubPkts, ctx.SubIds, ref nSub, ctx.DropBuf, ref nDrop, ref taggedBytes);
        WorkerCounters c = ctx.Counters;
        c.Port(e.Port, PortCounter.RxPackets) += n - kept;
        c.Port(e.Port, PortCounter.RxBytes) += taggedBytes;
        if (nDrop != 0)
        {
            if (TTrace.On)
                for (uint i = 0; i < nDrop; i++)
                    TraceEnd(SlotOf(ctx.DropBuf[i]), TraceOutcome.Dropped, Reason.DropVlanUnknown, ushort.MaxValue);
            c.Reason(Reason.DropVlanUnknown) += nDrop;
            c.Port(e.Port, PortCounter.Drops) += nDrop;
            DpdkSharp.Burst.Free(ctx.DropBuf, nDrop);
        }
        // One sub-interface at a time, its frames in the order they came.
        while (nSub != 0)
        {
            ushort id = ctx.SubIds[0];
            uint g = 0, rest = 0;
            for (uint i = 0; i < nSub; i++)
            {
                if (ctx.SubIds[i] == id)
                {
                    ctx.SubGroup[g++] = ctx.SubPkts[i];
                }
                else
                {
                    ctx.SubPkts[rest] = ctx.SubPkts[i];
                    ctx.SubIds[rest++] = ctx.SubIds[i];
                }
            }
            nSub = rest;
            ref readonly PollEntry se = ref vlans.Entry(id);
            if (se.Kind == PollKind.PhyToTap)
                PhyRx<ToTap, TTrace>(in se, ctx.SubGroup, g);
            else
                PhyRx<Unpaired, TTrace>(in se, ctx.SubGroup, g);
        }
        return kept;
    }

    /// <summary>A sub-interface's output: its tags pushed on every frame, to leave on its parent.
    /// A frame without room for them is dropped (vlan-no-headroom). Returns how many remain.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint PushTags(ushort port, void** pkts, uint n, ref long bytes, out ushort parent)
    {
        uint nDrop = 0;
        uint kept = _dp.CurrentTable.Vlans.Push(port, pkts, n, _ctx.AclDrop, ref nDrop, out parent);
        if (nDrop != 0)
        {
            _ctx.Counters.Reason(Reason.DropSubNoHeadroom) += nDrop;
            if (_ctx.TraceCount != 0)
                TraceOutputDrops(_ctx.AclDrop, nDrop, Reason.DropSubNoHeadroom);
            FreeOutputDrops(port, nDrop, ref bytes);
        }
        return kept;
    }
}
