using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Features;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: TX. Output features, capture, a sub-interface's tags, one TX call per port and
/// burst; what a queue refuses is freed and counted.</summary>
public sealed unsafe partial class Worker
{
    /// <summary>Sends every port's buffered packets; returns how many were handed to TX.</summary>
    private uint FlushTx()
    {
        WorkerContext ctx = _ctx;
        uint total = 0;
        for (int i = 0; i < ctx.TxPendingCount; i++)
        {
            ushort port = ctx.TxPending[i];
            int count = ctx.TxCounts[port];
            if (count != 0)
            {
                Send(port, ctx.TxBufs + port * WorkerOptions.BurstSize, (uint)count, Reason.DropPhyTxFull, ctx.TxBytes[port]);
                total += (uint)count;
                ctx.TxCounts[port] = 0;
                ctx.TxBytes[port] = 0;
            }
        }
        ctx.TxPendingCount = 0;
        return total;
    }

    /// <summary>Output on a port: one TX call for the batch; what the queue refuses is freed and
    /// counted under <paramref name="fullReason"/>. Nothing leaks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void Send(ushort port, void** pkts, uint n, Reason fullReason, long bytes = -1)
    {
        WorkerCounters c = _ctx.Counters;
        FeatureSnapshot features = _dp.CurrentFeatures;
        AclPortRules? outAcl = features.Output[port];
        bool tracked = features.Flows.Tracked[port];
        if (outAcl is not null && (n = OutputAcl(outAcl, tracked, port, pkts, n, ref bytes)) == 0)
            return;
        if (tracked && (n = TrackOutput(port, features.Flows, pkts, n, ref bytes)) == 0)
            return;
        if (bytes < 0)
        {
            bytes = 0;
            for (uint i = 0; i < n; i++)
                bytes += Mbuf.PktLen(pkts[i]);
        }
        if (Volatile.Read(ref _ctx.CapturePort) == port && (_ctx.CaptureDirections & 2) != 0)
            CaptureBurst(pkts, n, 2);
        ushort txPort = port;
        if (Interfaces.IsSub(port) && (n = PushTags(port, pkts, n, ref bytes, out txPort)) == 0)
            return;
        uint sent = DpdkSharp.Burst.Tx(txPort, _ctx.Queue, pkts, (ushort)n);
        if (sent < n)
        {
            for (uint i = sent; i < n; i++)
                bytes -= Mbuf.PktLen(pkts[i]);
            uint lost = n - sent;
            if (_ctx.TraceCount != 0)
                TraceOutputDrops(pkts + sent, lost, fullReason);
            DpdkSharp.Burst.Free(pkts + sent, lost);
            c.Reason(fullReason) += lost;
            c.Port(port, PortCounter.TxErrors) += lost;
            c.Port(port, PortCounter.Drops) += lost;
        }
        c.Port(port, PortCounter.TxPackets) += sent;
        c.Port(port, PortCounter.TxBytes) += bytes;
        if (txPort != port)
        {
            // The parent counts what went on its wire too (tags included).
            c.Port(txPort, PortCounter.TxPackets) += sent;
            c.Port(txPort, PortCounter.TxBytes) += bytes + sent * _dp.CurrentTable.Vlans.TagBytesOf(port);
        }
    }
}
