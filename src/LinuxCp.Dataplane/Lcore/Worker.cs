using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Fib;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>A run-to-completion worker: polls its queue of every port in the current
/// <see cref="PollTable"/>, processes each burst in phases (classify all, then one TX call per
/// destination, then one bulk free) and counts everything. Allocates nothing, takes no locks.</summary>
public sealed unsafe class Worker
{
    private const ushort BurstMax = WorkerOptions.BurstSize;
    private const ulong BroadcastMac = 0xFFFF_FFFF_FFFFUL;

    private readonly DataplaneEngine _dp;
    private readonly WorkerContext _ctx;
    private readonly WorkerOptions _opt;

    internal Worker(DataplaneEngine dp, WorkerContext ctx, WorkerOptions opt)
    {
        _dp = dp;
        _ctx = ctx;
        _opt = opt;
    }

    public WorkerContext Context => _ctx;

    /// <summary>Runs the loop until the engine stops. Never throws: a failure is recorded in the
    /// context (an exception escaping an lcore entry would abort the process).</summary>
    public int Run()
    {
        Volatile.Write(ref _ctx.Running, 1);
        try
        {
            Prewarm();
            Loop();
            return 0;
        }
        catch (Exception e)
        {
            Volatile.Write(ref _ctx.Failure, e.ToString());
            _dp.OnWorkerFailed(this, e);
            return -1;
        }
        finally
        {
            Volatile.Write(ref _ctx.Running, 0);
        }
    }

    /// <summary>Compiles every path and binds every native function the loop can call before
    /// traffic arrives: a P/Invoke stub resolves its target on first call, and that allocates.
    /// Without this, the first drop or TX after the warm-up mark would show up as loop
    /// allocation (and did, in the integration test).</summary>
    private void Prewarm()
    {
        var e = new PollEntry(0, 0, PollKind.PhyUnpaired, 0, 0);
        PhyRx<Unpaired>(in e, 0);
        PhyRx<ToTap>(in e, 0);
        PhyRx<ToTun>(in e, 0);
        TapRx(in e, 0);
        TunRx(in e, 0);
        _ = GC.GetAllocatedBytesForCurrentThread();
        _ = Eal.Rdtsc();
        DpdkSharp.Native.Dpdk.rte_pktmbuf_free_bulk(null, 0);
        FibSnapshot fib = _dp.CurrentFib;
        if (fib.Enabled)
        {
            Dpdk.rte_fib_lookup_bulk(fib.V4, _ctx.Dst4, _ctx.NextHops, 0);
            Dpdk.rte_fib6_lookup_bulk(fib.V6, _ctx.Dst6, _ctx.NextHops, 0);
        }
        FlushTx();
        DpdkSharp.Native.LcpShim.lcp_sleep_us(0);
        // A zero-packet TX is a no-op for every PMD; it binds lcp_tx_burst.
        PollEntry[] entries = _dp.CurrentTable.Entries;
        if (entries.Length != 0)
            DpdkSharp.Burst.Tx(entries[0].Port, _ctx.Queue, _ctx.OutBuf, 0);
    }

    // The loop and its paths are compiled fully optimized at first call (no tiering): tier-up
    // of a loop method happens on the thread that runs it, late and unpredictably when other
    // code keeps the JIT busy, and it allocated on the worker (seen in the integration test).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Loop()
    {
        WorkerContext ctx = _ctx;
        ushort q = ctx.Queue;
        void** rx = ctx.RxBuf;
        long epoch = 0;
        long iter = 0;
        uint idle = 0;
        uint idleLimit = _opt.IdleLoopsBeforeSleep;
        uint sleepUs = _opt.IdleSleepMicros;
        long tscHz = (long)Eal.TscHz;
        long warmupAt = (long)Eal.Rdtsc() + 2 * tscHz;
        long last = (long)Eal.Rdtsc();
        long maxGap = 0;

        while (!_dp.StopRequested)
        {
            PollEntry[] entries = _dp.CurrentTable.Entries;
            uint got = 0;
            for (int i = 0; i < entries.Length; i++)
            {
                ref readonly PollEntry e = ref entries[i];
                uint n = DpdkSharp.Burst.Rx(e.Port, q, rx, BurstMax);
                if (n == 0)
                    continue;
                got += n;
                switch (e.Kind)
                {
                    case PollKind.PhyToTap: PhyRx<ToTap>(in e, n); break;
                    case PollKind.PhyToTun: PhyRx<ToTun>(in e, n); break;
                    case PollKind.TapToPhy: TapRx(in e, n); break;
                    case PollKind.TunToPhy: TunRx(in e, n); break;
                    default: PhyRx<Unpaired>(in e, n); break;
                }
            }

            // Quiescent point: nothing read from the table above is used after this. The
            // interlocked write is a full fence, so the next iteration's table read cannot be
            // reordered before it (the control plane's grace period relies on that).
            Interlocked.Exchange(ref ctx.Epoch, ++epoch);

            long now = (long)Eal.Rdtsc();
            long gap = now - last;
            if (gap > maxGap)
            {
                maxGap = gap;
                Volatile.Write(ref ctx.MaxLoopGapTsc, gap);
            }
            last = now;

            if ((++iter & 1023) == 0)
            {
                Volatile.Write(ref ctx.Iterations, iter);
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                Volatile.Write(ref ctx.AllocatedBytes, allocated);
                if (ctx.AllocatedBytesAtWarmup < 0 && now > warmupAt)
                    Volatile.Write(ref ctx.AllocatedBytesAtWarmup, allocated);
                if (Volatile.Read(ref ctx.MaxLoopGapTsc) == 0)
                    maxGap = 0; // reset requested (clear runtime)
            }

            if (got != 0)
            {
                idle = 0;
            }
            else if (sleepUs != 0 && ++idle >= idleLimit)
            {
                idle = 0;
                DpdkSharp.Native.LcpShim.lcp_sleep_us(sleepUs);
                last = (long)Eal.Rdtsc(); // a deliberate sleep is not a loop stall
            }
        }
        Volatile.Write(ref ctx.Iterations, iter);
    }

    // ---- phy RX: classify, punt or drop ----------------------------------------------------

    private interface IPhyMode
    {
        static abstract bool Paired { get; }
        static abstract bool Tun { get; }
    }

    private struct Unpaired : IPhyMode
    {
        public static bool Paired => false;
        public static bool Tun => false;
    }

    private struct ToTap : IPhyMode
    {
        public static bool Paired => true;
        public static bool Tun => false;
    }

    private struct ToTun : IPhyMode
    {
        public static bool Paired => true;
        public static bool Tun => true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void PhyRx<TMode>(in PollEntry e, uint n) where TMode : struct, IPhyMode
    {
        WorkerContext ctx = _ctx;
        WorkerCounters c = ctx.Counters;
        void** rx = ctx.RxBuf;
        void** drop = ctx.DropBuf;
        bool puntOther = _opt.PuntOther;
        FibSnapshot fib = _dp.CurrentFib;
        bool forwarding = fib.Enabled;
        uint nPunt = 0, nDrop = 0, n4 = 0, n6 = 0;
        long bytes = 0;

        if (e.Down)
        {
            for (uint i = 0; i < n; i++)
            {
                bytes += Mbuf.PktLen(rx[i]);
                drop[i] = rx[i];
            }
            c.Reason(Reason.DropPortDown) += n;
            c.Port(e.Port, PortCounter.RxPackets) += n;
            c.Port(e.Port, PortCounter.RxBytes) += bytes;
            c.Port(e.Port, PortCounter.Drops) += n;
            DpdkSharp.Burst.Free(drop, n);
            return;
        }

        // Phase 1: classify; forwarding candidates are collected for the bulk lookups. The
        // common case (unicast IPv4 to us, no options, TTL > 1, sane lengths) is recognised in
        // one pass over the header; everything else takes the full classifier.
        void** fwd4 = ctx.Fwd4;
        uint* dst4 = ctx.Dst4;
        ulong portMac = e.PortMac;
        for (uint i = 0; i < n; i++)
        {
            void* m = rx[i];
            uint pktLen = Mbuf.PktLen(m);
            bytes += pktLen;
            byte* frame = Mbuf.Data(m);
            uint segLen = Mbuf.DataLen(m);
            if (forwarding && segLen >= 34 && Forwarding.IsPlainIp4(frame, pktLen, portMac))
            {
                fwd4[n4] = m;
                dst4[n4] = BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 30));
                n4++;
                continue;
            }
            Reason r = FrameClassifier.Classify(frame, segLen, pktLen, portMac, puntOther);
            if (forwarding)
            {
                if (r == Reason.PuntIp4)
                {
                    r = Forwarding.Ip4Eligible(frame, portMac);
                    if (r == Reason.Count)
                    {
                        fwd4[n4] = m;
                        dst4[n4] = BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 30));
                        n4++;
                        continue;
                    }
                }
                else if (r == Reason.PuntIp6)
                {
                    r = Forwarding.Ip6Eligible(frame, portMac);
                    if (r == Reason.Count)
                    {
                        ctx.Fwd6[n6] = m;
                        Unsafe.CopyBlockUnaligned(ctx.Dst6 + n6 * 16, frame + 38, 16);
                        n6++;
                        continue;
                    }
                }
            }
            Decide<TMode>(in e, m, frame, r, ref nPunt, ref nDrop);
        }

        // Phase 2: one lookup per family, then rewrite and buffer per egress port.
        uint forwarded = 0;
        if (n4 != 0)
            forwarded += ForwardBatch<TMode, V4>(in e, fib, fwd4, n4, ref nPunt, ref nDrop);
        if (n6 != 0)
            forwarded += ForwardBatch<TMode, V6>(in e, fib, ctx.Fwd6, n6, ref nPunt, ref nDrop);

        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        c.Port(e.Port, PortCounter.Punts) += nPunt;
        c.Port(e.Port, PortCounter.Drops) += nDrop;
        c.Port(e.Port, PortCounter.Forwarded) += forwarded;
        if (nPunt != 0)
            Send(e.Peer, ctx.OutBuf, nPunt, Reason.DropMirrorTxFull);
        if (ctx.TxPendingCount != 0)
            FlushTx();
        DpdkSharp.Burst.Free(drop, nDrop);
    }

    private interface IFamily
    {
        static abstract void Lookup(FibSnapshot fib, WorkerContext ctx, ulong* nhs, uint n);
        static abstract Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort);
    }

    private struct V4 : IFamily
    {
        public static void Lookup(FibSnapshot fib, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib_lookup_bulk(fib.V4, ctx.Dst4, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite4(groups, paths, nh, frame, out txPort);
    }

    private struct V6 : IFamily
    {
        public static void Lookup(FibSnapshot fib, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib6_lookup_bulk(fib.V6, ctx.Dst6, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite6(groups, paths, nh, frame, out txPort);
    }

    /// <summary>One bulk lookup for a family's candidates, then per packet: rewrite and buffer
    /// for its egress port, or punt/drop with the reason. Returns the number forwarded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ForwardBatch<TMode, TFamily>(in PollEntry e, FibSnapshot fib, void** mbufs, uint n, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
        where TFamily : struct, IFamily
    {
        ulong* nhs = _ctx.NextHops;
        TFamily.Lookup(fib, _ctx, nhs, n);
        GroupEntry* groups = fib.Tables!.Groups;
        PathEntry* paths = fib.Tables.Paths;
        uint forwarded = 0;
        for (uint i = 0; i < n; i++)
        {
            void* m = mbufs[i];
            byte* frame = Mbuf.Data(m);
            Reason r = TFamily.Rewrite(groups, paths, nhs[i], frame, out ushort txPort);
            if (r == Reason.Count)
            {
                Buffer(txPort, m);
                forwarded++;
            }
            else
            {
                Decide<TMode>(in e, m, frame, r, ref nPunt, ref nDrop);
            }
        }
        return forwarded;
    }

    /// <summary>Punt (to the paired mirror, unchanged; TUN: without L2) or drop, counted by reason.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Decide<TMode>(in PollEntry e, void* m, byte* frame, Reason r, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
    {
        if (r < ReasonInfo.FirstDrop)
        {
            if (!TMode.Paired)
            {
                r = Reason.DropNoMirror;
            }
            else if (TMode.Tun)
            {
                ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(frame + 12));
                if (type is FrameClassifier.EtherTypeIp4 or FrameClassifier.EtherTypeIp6)
                {
                    // Point-to-point: the link has one peer; remember its MAC for host->phy.
                    _dp.TunPeerMacs[e.Port] = *(uint*)(frame + 6) | ((ulong)*(ushort*)(frame + 10) << 32);
                    Mbuf.Adj(m, FrameClassifier.EtherHeader);
                }
                else
                {
                    r = Reason.DropTunNotIp;
                }
            }
        }
        _ctx.Counters.Reason(r)++;
        if (r < ReasonInfo.FirstDrop)
            _ctx.OutBuf[nPunt++] = m;
        else
            _ctx.DropBuf[nDrop++] = m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Buffer(ushort port, void* m)
    {
        WorkerContext ctx = _ctx;
        int count = ctx.TxCounts[port];
        if (count == 0)
            ctx.TxPending[ctx.TxPendingCount++] = port;
        ctx.TxBufs[port * WorkerOptions.BurstSize + count] = m;
        ctx.TxBytes[port] += Mbuf.PktLen(m);
        ctx.TxCounts[port] = ++count;
        if (count == WorkerOptions.BurstSize)
        {
            Send(port, ctx.TxBufs + port * WorkerOptions.BurstSize, (uint)count, Reason.DropPhyTxFull, ctx.TxBytes[port]);
            ctx.TxCounts[port] = 0;
            ctx.TxBytes[port] = 0;
        }
    }

    private void FlushTx()
    {
        WorkerContext ctx = _ctx;
        for (int i = 0; i < ctx.TxPendingCount; i++)
        {
            ushort port = ctx.TxPending[i];
            int count = ctx.TxCounts[port];
            if (count != 0)
            {
                Send(port, ctx.TxBufs + port * WorkerOptions.BurstSize, (uint)count, Reason.DropPhyTxFull, ctx.TxBytes[port]);
                ctx.TxCounts[port] = 0;
                ctx.TxBytes[port] = 0;
            }
        }
        ctx.TxPendingCount = 0;
    }

    // ---- mirror RX: x-connect to the phy port ------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TapRx(in PollEntry e, uint n)
    {
        WorkerCounters c = _ctx.Counters;
        void** rx = _ctx.RxBuf;
        long bytes = 0;
        for (uint i = 0; i < n; i++)
            bytes += Mbuf.PktLen(rx[i]);
        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        if (n != 0)
            Send(e.Peer, rx, n, Reason.DropPhyTxFull);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TunRx(in PollEntry e, uint n)
    {
        WorkerCounters c = _ctx.Counters;
        void** rx = _ctx.RxBuf;
        void** output = _ctx.OutBuf;
        void** drop = _ctx.DropBuf;
        uint nOut = 0, nDrop = 0;
        long bytes = 0;
        ulong peerMac = _dp.TunPeerMacs[e.Peer];
        if (peerMac == 0)
            peerMac = BroadcastMac; // no frame seen from the peer yet
        ulong srcMac = e.PeerPortMac;

        for (uint i = 0; i < n; i++)
        {
            void* m = rx[i];
            bytes += Mbuf.PktLen(m);
            int version = Mbuf.DataLen(m) == 0 ? 0 : Mbuf.Data(m)[0] >> 4;
            ushort type = version == 4 ? FrameClassifier.EtherTypeIp4
                : version == 6 ? FrameClassifier.EtherTypeIp6 : (ushort)0;
            if (type == 0)
            {
                c.Reason(Reason.DropTunNotIp)++;
                drop[nDrop++] = m;
                continue;
            }
            if (Mbuf.Headroom(m) < FrameClassifier.EtherHeader)
            {
                c.Reason(Reason.DropTunNoHeadroom)++;
                drop[nDrop++] = m;
                continue;
            }
            byte* h = Mbuf.Prepend(m, FrameClassifier.EtherHeader);
            WriteMac(h, peerMac);
            WriteMac(h + 6, srcMac);
            *(ushort*)(h + 12) = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(type);
            output[nOut++] = m;
        }
        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        c.Port(e.Port, PortCounter.Drops) += nDrop;
        if (nOut != 0)
            Send(e.Peer, output, nOut, Reason.DropPhyTxFull);
        DpdkSharp.Burst.Free(drop, nDrop);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteMac(byte* p, ulong mac)
    {
        *(uint*)p = (uint)mac;
        *(ushort*)(p + 4) = (ushort)(mac >> 32);
    }

    /// <summary>Output on a port: one TX call for the batch; what the queue refuses is freed and
    /// counted under <paramref name="fullReason"/>. Nothing leaks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void Send(ushort port, void** pkts, uint n, Reason fullReason, long bytes = -1)
    {
        WorkerCounters c = _ctx.Counters;
        if (bytes < 0)
        {
            bytes = 0;
            for (uint i = 0; i < n; i++)
                bytes += Mbuf.PktLen(pkts[i]);
        }
        uint sent = DpdkSharp.Burst.Tx(port, _ctx.Queue, pkts, (ushort)n);
        if (sent < n)
        {
            for (uint i = sent; i < n; i++)
                bytes -= Mbuf.PktLen(pkts[i]);
            uint lost = n - sent;
            DpdkSharp.Burst.Free(pkts + sent, lost);
            c.Reason(fullReason) += lost;
            c.Port(port, PortCounter.TxErrors) += lost;
            c.Port(port, PortCounter.Drops) += lost;
        }
        c.Port(port, PortCounter.TxPackets) += sent;
        c.Port(port, PortCounter.TxBytes) += bytes;
    }
}
