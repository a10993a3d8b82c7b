using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Fib;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: x-connect. What Linux sends on a mirror leaves on its port (a TUN's packets get
/// the adjacency Linux would have used).</summary>
public sealed unsafe partial class Worker
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TapRx<TTrace>(in PollEntry e, uint n) where TTrace : struct, ITrace
    {
        WorkerCounters c = _ctx.Counters;
        void** rx = _ctx.RxBuf;
        long bytes = 0;
        for (uint i = 0; i < n; i++)
        {
            bytes += Mbuf.PktLen(rx[i]);
            if (TTrace.On)
                TraceEnd(SlotOf(rx[i]), TraceOutcome.CrossConnected, Reason.None, e.Peer);
        }
        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        if (n != 0)
            Send(e.Peer, rx, n, Reason.DropPhyTxFull);
        XconnectDone(n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void XconnectDone(uint n)
    {
        Mark(RuntimePath.Xconnect, n);
        if (_ctx.Sampling)
            _ctx.Counters.Latency(LatencyPath.Xconnect).Record((ulong)(_ctx.MarkTsc - _ctx.RxTsc), n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TunRx<TTrace>(in PollEntry e, uint n) where TTrace : struct, ITrace
    {
        WorkerContext ctx = _ctx;
        WorkerCounters c = ctx.Counters;
        void** rx = ctx.RxBuf;
        void** output = ctx.OutBuf;
        void** drop = ctx.DropBuf;
        uint nOut = 0, nDrop = 0, n4 = 0, n6 = 0;
        long bytes = 0;
        // The adjacency Linux would have used (seed 000): Linux routed the packet onto the TUN, so
        // the port's table names its next hop; its path's rewrite is the adjacency (a neighbour
        // the workers saw on the link). When there is none (no route, a next hop not seen yet),
        // the link's peer: the last sender on the port.
        ulong peerMac = _dp.TunPeerMacs[e.Peer];
        if (peerMac == 0)
            peerMac = BroadcastMac; // no frame seen from the peer yet
        ulong srcMac = e.PeerPortMac;
        FibSnapshot fib = _dp.CurrentFib;
        bool lookup = fib.Enabled && fib.V4[e.Table] != 0;

        for (uint i = 0; i < n; i++)
        {
            void* m = rx[i];
            bytes += Mbuf.PktLen(m);
            int slot = TTrace.On ? SlotOf(m) : -1;
            uint len = Mbuf.DataLen(m);
            int version = len == 0 ? 0 : Mbuf.Data(m)[0] >> 4;
            ushort type = version == 4 ? FrameClassifier.EtherTypeIp4
                : version == 6 ? FrameClassifier.EtherTypeIp6 : (ushort)0;
            if (type == 0)
            {
                c.Reason(Reason.DropTunNotIp)++;
                drop[nDrop++] = m;
                if (TTrace.On)
                    TraceEnd(slot, TraceOutcome.Dropped, Reason.DropTunNotIp, ushort.MaxValue);
                continue;
            }
            if (Mbuf.Headroom(m) < FrameClassifier.EtherHeader)
            {
                c.Reason(Reason.DropTunNoHeadroom)++;
                drop[nDrop++] = m;
                if (TTrace.On)
                    TraceEnd(slot, TraceOutcome.Dropped, Reason.DropTunNoHeadroom, ushort.MaxValue);
                continue;
            }
            byte* ip = Mbuf.Data(m);
            byte* h = Mbuf.Prepend(m, FrameClassifier.EtherHeader);
            WriteMac(h, peerMac);
            WriteMac(h + 6, srcMac);
            *(ushort*)(h + 12) = BinaryPrimitives.ReverseEndianness(type);
            if (lookup && version == 4 && len >= 24)
            {
                ctx.Fwd4[n4] = m;
                ctx.Dst4[n4] = BinaryPrimitives.ReverseEndianness(*(uint*)(ip + 16));
                if (TTrace.On)
                    ctx.TraceSlots4[n4] = slot;
                n4++;
            }
            else if (lookup && version == 6 && len >= 44)
            {
                ctx.Fwd6[n6] = m;
                Unsafe.CopyBlockUnaligned(ctx.Dst6 + n6 * 16, ip + 24, 16);
                if (TTrace.On)
                    ctx.TraceSlots6[n6] = slot;
                n6++;
            }
            else if (TTrace.On)
            {
                TraceForwarded(slot, e.Peer, h, Mbuf.DataLen(m));
                TraceEnd(slot, TraceOutcome.CrossConnected, Reason.None, e.Peer);
            }
            output[nOut++] = m;
        }
        if (n4 != 0)
            TunAdjacencies<V4, TTrace>(in e, fib, ctx.Fwd4, ctx.TraceSlots4, n4);
        if (n6 != 0)
            TunAdjacencies<V6, TTrace>(in e, fib, ctx.Fwd6, ctx.TraceSlots6, n6);
        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        c.Port(e.Port, PortCounter.Drops) += nDrop;
        if (nOut != 0)
            Send(e.Peer, output, nOut, Reason.DropPhyTxFull);
        DpdkSharp.Burst.Free(drop, nDrop);
        XconnectDone(n);
    }

    /// <summary>For what a TUN mirror sent (Ethernet header already prepended, towards the peer):
    /// one bulk lookup of the destinations in the port's table; a packet whose next hop has a
    /// resolved path out of the paired port takes that path's rewrite (its neighbour's MAC). A
    /// path that only knows the link's peer keeps the live peer written before (the FIB's copy is
    /// up to one poll old: a reply to a host that has just spoken would go to the previous one).
    /// Nothing else changes: Linux already did the TTL and the routing.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void TunAdjacencies<TFamily, TTrace>(in PollEntry e, FibSnapshot fib, void** mbufs, int* slots, uint n)
        where TFamily : struct, IFamily
        where TTrace : struct, ITrace
    {
        ulong* nhs = _ctx.NextHops;
        TFamily.Lookup(fib, e.Table, _ctx, nhs, n);
        bool v6 = typeof(TFamily) == typeof(V6);
        for (uint i = 0; i < n; i++)
        {
            byte* h = Mbuf.Data(mbufs[i]);
            PathSlot* s = Forwarding.ResolvedPath(fib.Groups, fib.Paths, nhs[i], h + FrameClassifier.EtherHeader, v6);
            if (s != null && s->TxPort == e.Peer && s->LinkPeer == 0)
            {
                *(ulong*)h = s->L2Head;
                *(uint*)(h + 8) = s->L2Tail;
            }
            if (TTrace.On && slots[i] >= 0)
            {
                TraceRecord* t = _ctx.Trace!.Records + slots[i];
                t->LookedUp = 1;
                t->NextHop = nhs[i];
                TraceForwarded(slots[i], e.Peer, h, Mbuf.DataLen(mbufs[i]));
                TraceEnd(slots[i], TraceOutcome.CrossConnected, Reason.None, e.Peer);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteMac(byte* p, ulong mac)
    {
        *(uint*)p = (uint)mac;
        *(ushort*)(p + 4) = (ushort)(mac >> 32);
    }
}
