using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LinuxCp.Dataplane.Fib;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: phy RX. Input features, the one-pass IPv4/IPv6 checks, the full classifier for
/// the rest, then the forward, punt and drop phases of the burst.</summary>
public sealed unsafe partial class Worker
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void PhyRx<TMode, TTrace>(in PollEntry e, void** rx, uint n)
        where TMode : struct, IPhyMode
        where TTrace : struct, ITrace
    {
        WorkerContext ctx = _ctx;
        WorkerCounters c = ctx.Counters;
        void** drop = ctx.DropBuf;
        bool puntOther = _opt.PuntOther;
        // The port's table: one load per burst (0 when the table has no lookup structures, as
        // while it is being set up: then everything IP is punted and Linux forwards it).
        FibSnapshot fib = _dp.CurrentFib;
        bool forwarding = fib.Enabled && fib.V4[e.Table] != 0;
        uint nPunt = 0, nDrop = 0, n4 = 0, n6 = 0;
        long bytes = 0;
        if (TTrace.On && Interfaces.IsSub(e.Port))
            TraceSubInterface(in e, rx, n); // recorded as received on the sub-interface

        if (e.Down)
        {
            for (uint i = 0; i < n; i++)
            {
                bytes += Mbuf.PktLen(rx[i]);
                drop[i] = rx[i];
                if (TTrace.On)
                    TraceEnd(SlotOf(rx[i]), TraceOutcome.Dropped, Reason.DropPortDown, ushort.MaxValue);
            }
            c.Reason(Reason.DropPortDown) += n;
            c.Port(e.Port, PortCounter.RxPackets) += n;
            c.Port(e.Port, PortCounter.RxBytes) += bytes;
            c.Port(e.Port, PortCounter.Drops) += n;
            DpdkSharp.Burst.Free(drop, n);
            return;
        }

        // Input features: the port's classifier rules, before the punt/forward decision (a
        // dropped packet never reaches Linux). One load and a null check when it has none.
        uint received = n;
        long aclBytes = 0; // of the packets the rules (or a full flow table) dropped; the loops below count the rest
        FeatureSnapshot features = _dp.CurrentFeatures;
        AclPortRules? inAcl = features.Input[e.Port];
        bool tracked = features.Flows.Tracked[e.Port];
        // With a pre-filter for the port's IPv4 rules (or no IPv4 rules), the one-pass IPv4 check
        // applies it on the way and the rules see only what it leaves: the frames of flows no
        // rule can match are forwarded without a second pass over the burst.
        bool deferAcl = inAcl is not null && forwarding && !tracked && (inAcl.V4 is null || inAcl.Pre4 != null);
        if (inAcl is not null && !deferAcl)
            n = InputAcl<TTrace>(in e, inAcl, tracked, rx, n, ref nDrop, ref aclBytes);
        if (tracked)
        {
            uint first = nDrop;
            n = TrackFlows(e.Port, features.Flows, rx, n, ctx.DropBuf, ref nDrop, ref aclBytes);
            if (TTrace.On)
                for (uint i = first; i < nDrop; i++)
                    TraceEnd(SlotOf(ctx.DropBuf[i]), TraceOutcome.Dropped, Reason.DropFlowTableFull, ushort.MaxValue);
        }

        // Phase 1: classify; forwarding candidates are collected for the bulk lookups. The
        // common cases (unicast IPv4 to us, no options, TTL > 1, sane lengths; then the same for
        // IPv6 over what is left) are recognised in one pass over the header each, by loops
        // without calls (so their values stay in registers); everything else takes the full
        // classifier after them. A traced burst runs the same passes (its records are filled
        // after each). Only packets a check rejected
        // move behind the plain ones: the other family (never in the same flow) and packets
        // that are punted or dropped anyway (options, TTL, multicast, bad lengths). Both checks
        // accept exactly what the full classifier would forward, so no packet of a forwarded
        // flow can overtake another.
        void** fwd4 = ctx.Fwd4;
        uint* dst4 = ctx.Dst4;
        ulong portMac = e.PortMac;
        void** slow = rx;
        uint nSlow = n;
        if (forwarding)
        {
            slow = ctx.SlowBuf;
            if (!deferAcl)
            {
                n4 = FastIp4<NoAcl>(rx, n, portMac, fwd4, slow, null, out nSlow, out bytes);
            }
            else
            {
                AclPrefilter* pre = inAcl!.Pre4;
                n4 = pre != null ? FastIp4<WithAcl>(rx, n, portMac, fwd4, slow, pre, out nSlow, out bytes)
                    : FastIp4<NoAcl>(rx, n, portMac, fwd4, slow, null, out nSlow, out bytes);
                // IPv6 the same way: with a pre-filter for the port's IPv6 rules (or none), the
                // one-pass IPv6 check takes what no rule can match before the rules run.
                AclPrefilter* pre6 = inAcl.Pre6;
                if (nSlow != 0 && inAcl.V6 is null)
                    n6 = FastIp6<NoAcl>(slow, nSlow, portMac, ctx.Fwd6, ctx.Dst6, null, out nSlow);
                else if (nSlow != 0 && pre6 != null)
                    n6 = FastIp6<WithAcl>(slow, nSlow, portMac, ctx.Fwd6, ctx.Dst6, pre6, out nSlow);
                long counted = 0; // FastIp4 counted every frame's bytes already
                if (nSlow != 0)
                    nSlow = InputAcl<TTrace>(in e, inAcl, false, slow, nSlow, ref nDrop, ref counted);
            }
            if (TTrace.On)
                TraceFastPass(fwd4, n4, ctx.TraceSlots4, Reason.PuntIp4, TracePasses.FastIp4);
            // (After the rules: the IPv6 packets they had to see and let through.)
            if (nSlow != 0)
                n6 += FastIp6<NoAcl>(slow, nSlow, portMac, ctx.Fwd6 + n6, ctx.Dst6 + n6 * 16, null, out nSlow);
            if (TTrace.On)
                TraceFastPass(ctx.Fwd6, n6, ctx.TraceSlots6, Reason.PuntIp6, TracePasses.FastIp6);
        }
        for (uint i = 0; i < nSlow; i++)
        {
            void* m = slow[i];
            uint pktLen = Mbuf.PktLen(m);
            if (slow == rx)
                bytes += pktLen;
            byte* frame = Mbuf.Data(m);
            uint segLen = Mbuf.DataLen(m);
            int slot = TTrace.On ? SlotOf(m) : -1;
            Reason r = FrameClassifier.Classify(frame, segLen, pktLen, portMac, puntOther);
            if (TTrace.On)
                TraceClassified(slot, r);
            if (forwarding)
            {
                if (r == Reason.PuntIp4)
                {
                    r = Forwarding.Ip4Eligible(frame, portMac);
                    if (r == Reason.Forward)
                    {
                        if (TTrace.On)
                            ctx.TraceSlots4[n4] = slot;
                        fwd4[n4] = m;
                        dst4[n4] = BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 30));
                        n4++;
                        continue;
                    }
                }
                else if (r == Reason.PuntIp6)
                {
                    r = Forwarding.Ip6Eligible(frame, portMac);
                    if (r == Reason.Forward)
                    {
                        if (TTrace.On)
                            ctx.TraceSlots6[n6] = slot;
                        ctx.Fwd6[n6] = m;
                        Unsafe.CopyBlockUnaligned(ctx.Dst6 + n6 * 16, frame + 38, 16);
                        n6++;
                        continue;
                    }
                }
            }
            Decide<TMode, TTrace>(in e, m, frame, r, slot, ref nPunt, ref nDrop);
        }
        if (TMode.Tun)
        {
            // A point-to-point link has one peer: its MAC is the adjacency of every route
            // through the port (the control plane polls it into the FIB).
            void* first = n4 != 0 ? fwd4[0] : n6 != 0 ? ctx.Fwd6[0] : null;
            if (first != null)
                LearnPeer(e.Port, Mbuf.Data(first));
        }
        Mark(RuntimePath.Classify, n);

        // Phase 2: one lookup per family, then rewrite and buffer per egress port.
        uint forwarded = 0;
        if (n4 != 0)
            forwarded += ForwardBatch<TMode, V4, TTrace>(in e, fib, fwd4, ctx.TraceSlots4, n4, ref nPunt, ref nDrop);
        if (n6 != 0)
            forwarded += ForwardBatch<TMode, V6, TTrace>(in e, fib, ctx.Fwd6, ctx.TraceSlots6, n6, ref nPunt, ref nDrop);

        c.Port(e.Port, PortCounter.RxPackets) += received;
        c.Port(e.Port, PortCounter.RxBytes) += bytes + aclBytes;
        c.Port(e.Port, PortCounter.Punts) += nPunt;
        c.Port(e.Port, PortCounter.Drops) += nDrop;
        c.Port(e.Port, PortCounter.Forwarded) += forwarded;
        if (nPunt != 0)
        {
            Send(e.Peer, ctx.OutBuf, nPunt, Reason.DropMirrorTxFull);
            Mark(RuntimePath.Punt, nPunt);
            if (ctx.Sampling)
                c.Latency(LatencyPath.Punt).Record((ulong)(ctx.MarkTsc - ctx.RxTsc), nPunt);
        }
        if (ctx.TxPendingCount != 0)
        {
            Mark(RuntimePath.Tx, FlushTx());
            if (ctx.Sampling)
                c.Latency(LatencyPath.Forward).Record((ulong)(ctx.MarkTsc - ctx.RxTsc), forwarded);
        }
        if (nDrop != 0)
        {
            DpdkSharp.Burst.Free(drop, nDrop);
            Mark(RuntimePath.Drop, nDrop);
        }
    }

    /// <summary>The one-pass IPv4 check over a burst: plain packets go to the IPv4 candidates
    /// (with their destinations), the rest to <paramref name="slow"/>; also sums the bytes. A
    /// leaf without calls, so everything it touches stays in registers.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static uint FastIp4<TAcl>(void** rx, uint n, ulong portMac, void** fwd4, void** slow, AclPrefilter* pre, out uint nSlow, out long bytes)
        where TAcl : struct, IAclMode
    {
        // Few live values, so nothing is spilled per packet: one count for both candidate
        // arrays (the destinations are addressed from the mbuf array, which they follow), a
        // cursor for the rest, whose count follows from it.
        (Vector128<byte> want, Vector128<byte> mask) = Forwarding.PlainIp4Template(portMac);
        uint k = 0;
        void** sl = slow;
        long sum = 0;
        for (void** p = rx, end = rx + n; p < end; p++)
        {
            void* m = *p;
            uint pktLen = Mbuf.PktLen(m);
            sum += pktLen;
            byte* frame = Mbuf.Data(m);
            if (Mbuf.DataLen(m) >= 34 && Forwarding.IsPlainIp4Header(frame, pktLen, want, mask)
                && (!TAcl.On || !AclPrefilter.NeedsRules4(pre, frame, Mbuf.DataLen(m))))
            {
                fwd4[k] = m;
                *(uint*)((byte*)fwd4 + WorkerContext.Dst4AfterFwd4 + k * 4) = BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 30));
                k++;
            }
            else
            {
                *sl++ = m;
            }
        }
        nSlow = n - k;
        bytes = sum;
        return k;
    }

    /// <summary>The one-pass IPv6 check over what <see cref="FastIp4"/> left: plain packets to
    /// the IPv6 candidates (with their destinations), the rest compacted in place for the full
    /// classifier. A call-free leaf like FastIp4.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static uint FastIp6<TAcl>(void** pkts, uint n, ulong portMac, void** fwd6, byte* dst6, AclPrefilter* pre, out uint nSlow)
        where TAcl : struct, IAclMode
    {
        (Vector128<byte> want, Vector128<byte> mask) = Forwarding.PlainIp6Template(portMac);
        uint k = 0;
        void** sl = pkts; // never ahead of p: the rejects are compacted in place
        for (void** p = pkts, end = pkts + n; p < end; p++)
        {
            void* m = *p;
            byte* frame = Mbuf.Data(m);
            if (Mbuf.DataLen(m) >= 54 && Forwarding.IsPlainIp6Header(frame, Mbuf.PktLen(m), want, mask)
                && (!TAcl.On || !AclPrefilter.NeedsRules6(pre, frame, Mbuf.DataLen(m))))
            {
                fwd6[k] = m;
                Vector128.Store(Vector128.Load(frame + 38), dst6 + k * 16);
                k++;
            }
            else
            {
                *sl++ = m;
            }
        }
        nSlow = n - k;
        return k;
    }
}
