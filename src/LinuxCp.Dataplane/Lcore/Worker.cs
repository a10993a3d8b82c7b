using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Fib;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Features;
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
        Volatile.Write(ref _ctx.ThreadId, Eal.ThreadId());
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
        PhyRx<Unpaired, NoTrace>(in e, _ctx.RxBuf, 0);
        PhyRx<ToTap, NoTrace>(in e, _ctx.RxBuf, 0);
        PhyRx<ToTun, NoTrace>(in e, _ctx.RxBuf, 0);
        PhyRx<Unpaired, Traced>(in e, _ctx.RxBuf, 0);
        PhyRx<ToTap, Traced>(in e, _ctx.RxBuf, 0);
        PhyRx<ToTun, Traced>(in e, _ctx.RxBuf, 0);
        TapRx<NoTrace>(in e, 0);
        TunRx<NoTrace>(in e, 0);
        TapRx<Traced>(in e, 0);
        TunRx<Traced>(in e, 0);
        PrepareOutOfLine();
        CaptureBurst(_ctx.RxBuf, 0, 1);
        _ = GC.GetAllocatedBytesForCurrentThread();
        _ = Eal.Rdtsc();
        DpdkSharp.Native.Dpdk.rte_pktmbuf_free_bulk(null, 0);
        FibSnapshot fib = _dp.CurrentFib;
        if (fib.Enabled && fib.V4[0] != 0)
        {
            Dpdk.rte_fib_lookup_bulk((void*)fib.V4[0], _ctx.Dst4, _ctx.NextHops, 0);
            Dpdk.rte_fib6_lookup_bulk((void*)fib.V6[0], _ctx.Dst6, _ctx.NextHops, 0);
        }
        FlushTx();
        DpdkSharp.Native.LcpShim.lcp_sleep_us(0);
        // A zero-packet TX is a no-op for every PMD; it binds lcp_tx_burst.
        PollEntry[] entries = _dp.CurrentTable.Entries;
        if (entries.Length != 0)
            DpdkSharp.Burst.Tx(entries[0].Port, _ctx.Queue, _ctx.OutBuf, 0);
        _ctx.Counters.ClearPaths(); // the calls above are not traffic
    }

    /// <summary>Compiles the out-of-line helpers of every variant now (the zero-packet calls
    /// above never reach them): a first call under traffic would JIT on the worker.</summary>
    private static void PrepareOutOfLine()
    {
        const System.Reflection.BindingFlags Flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic;
        var batch = typeof(Worker).GetMethod(nameof(ForwardBatch), Flags)!;
        var decide = typeof(Worker).GetMethod(nameof(Decide), Flags)!;
        var inAcl = typeof(Worker).GetMethod(nameof(InputAcl), Flags)!;
        RuntimeHelpers.PrepareMethod(inAcl.MethodHandle, [typeof(NoTrace).TypeHandle]);
        RuntimeHelpers.PrepareMethod(inAcl.MethodHandle, [typeof(Traced).TypeHandle]);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(OutputAcl), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(TrackFlows), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(TrackOutput), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(FreeOutputDrops), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(Flows), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(LearnPeer), Flags)!.MethodHandle);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(PushTags), Flags)!.MethodHandle);
        var subRx = typeof(Worker).GetMethod(nameof(SubRx), Flags)!;
        RuntimeHelpers.PrepareMethod(subRx.MethodHandle, [typeof(NoTrace).TypeHandle]);
        RuntimeHelpers.PrepareMethod(subRx.MethodHandle, [typeof(Traced).TypeHandle]);
        var tunAdj = typeof(Worker).GetMethod(nameof(TunAdjacencies), Flags)!;
        foreach (Type family in new[] { typeof(V4), typeof(V6) })
            foreach (Type trace in new[] { typeof(NoTrace), typeof(Traced) })
                RuntimeHelpers.PrepareMethod(tunAdj.MethodHandle, [family.TypeHandle, trace.TypeHandle]);
        // Every method of the feature nodes, callees included: a first call under traffic (the
        // first expiry reaching FlowTable.Remove, say) would be compiled on the worker, a stall
        // of milliseconds (seen in perf/scripts/flow-sweep.sh before this).
        const System.Reflection.BindingFlags All = System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic
            | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.DeclaredOnly;
        foreach (Type t in new[] { typeof(FlowTable), typeof(FlowTracker), typeof(FlowTimeouts), typeof(AclFilter), typeof(AclPrefilter),
                     typeof(AclKey), typeof(PuntBuckets), typeof(PuntClasses), typeof(LearnTable), typeof(VlanTable), typeof(VlanDemux) })
            foreach (var m in t.GetMethods(All))
                if (!m.IsAbstract && !m.ContainsGenericParameters && m.GetMethodBody() is not null)
                    RuntimeHelpers.PrepareMethod(m.MethodHandle);
        const System.Reflection.BindingFlags Static = System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic;
        var fast4 = typeof(Worker).GetMethod(nameof(FastIp4), Static)!;
        RuntimeHelpers.PrepareMethod(fast4.MethodHandle, [typeof(NoAcl).TypeHandle]);
        RuntimeHelpers.PrepareMethod(fast4.MethodHandle, [typeof(WithAcl).TypeHandle]);
        RuntimeHelpers.PrepareMethod(typeof(Worker).GetMethod(nameof(FastIp6), Static)!.MethodHandle);
        var single = typeof(Worker).GetMethod(nameof(ForwardSinglePaths), Static)!;
        RuntimeHelpers.PrepareMethod(single.MethodHandle, [typeof(V4).TypeHandle]);
        RuntimeHelpers.PrepareMethod(single.MethodHandle, [typeof(V6).TypeHandle]);
        foreach (Type mode in new[] { typeof(Unpaired), typeof(ToTap), typeof(ToTun) })
        {
            foreach (Type trace in new[] { typeof(NoTrace), typeof(Traced) })
            {
                RuntimeHelpers.PrepareMethod(decide.MethodHandle, [mode.TypeHandle, trace.TypeHandle]);
                foreach (Type family in new[] { typeof(V4), typeof(V6) })
                    RuntimeHelpers.PrepareMethod(batch.MethodHandle, [mode.TypeHandle, family.TypeHandle, trace.TypeHandle]);
            }
        }
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
        long iter = 0;
        uint idle = 0;
        uint idleLimit = _opt.IdleLoopsBeforeSleep;
        uint sleepUs = _opt.IdleSleepMicros;
        long tscHz = (long)Eal.TscHz;
        long warmupAt = (long)Eal.Rdtsc() + 2 * tscHz;
        long last = (long)Eal.Rdtsc();
        long maxGap = 0;

        LatencyHistogram gaps = ctx.Counters.Latency(LatencyPath.LoopGap);

        while (!_dp.StopRequested)
        {
            PollTable table = _dp.CurrentTable;
            PollEntry[] entries = table.Entries;
            uint got = 0;
            bool sampling = (iter & (WorkerOptions.SampleEvery - 1)) == 0;
            ctx.Sampling = sampling;
            for (int i = 0; i < entries.Length; i++)
            {
                ref readonly PollEntry e = ref entries[i];
                if (sampling)
                    ctx.MarkTsc = (long)Eal.Rdtsc();
                uint n = DpdkSharp.Burst.Rx(e.Port, q, rx, BurstMax);
                // An 802.3ad bond sends its LACPDUs from inside TX bursts: an idle one gets an
                // empty burst every 256 iterations (well over the 10 per second LACP needs).
                if (e.Bond && (iter & 255) == 0)
                    DpdkSharp.Burst.Tx(e.Port, q, ctx.OutBuf, 0);
                if (n == 0)
                    continue;
                got += n;
                Mark(RuntimePath.Rx, n);
                ctx.RxTsc = ctx.MarkTsc;
                if (Volatile.Read(ref ctx.CapturePort) == e.Port && (ctx.CaptureDirections & 1) != 0)
                    CaptureBurst(rx, n, 1);
                int tracePort;
                if (Volatile.Read(ref ctx.TraceRemaining) <= 0
                    || ((tracePort = Volatile.Read(ref ctx.TracePort)) >= 0 && tracePort != e.Port))
                {
                    // A port with sub-interfaces hands them their frames first (tags popped).
                    if (e.Subs && (n = SubRx<NoTrace>(in e, table.Vlans, n)) == 0)
                        continue;
                    switch (e.Kind)
                    {
                        case PollKind.PhyToTap: PhyRx<ToTap, NoTrace>(in e, rx, n); break;
                        case PollKind.PhyToTun: PhyRx<ToTun, NoTrace>(in e, rx, n); break;
                        case PollKind.TapToPhy: TapRx<NoTrace>(in e, n); break;
                        case PollKind.TunToPhy: TunRx<NoTrace>(in e, n); break;
                        default: PhyRx<Unpaired, NoTrace>(in e, rx, n); break;
                    }
                }
                else
                {
                    if (e.Subs && (n = SubRx<Traced>(in e, table.Vlans, n)) == 0)
                        continue;
                    switch (e.Kind)
                    {
                        case PollKind.PhyToTap: PhyRx<ToTap, Traced>(in e, rx, n); break;
                        case PollKind.PhyToTun: PhyRx<ToTun, Traced>(in e, rx, n); break;
                        case PollKind.TapToPhy: TapRx<Traced>(in e, n); break;
                        case PollKind.TunToPhy: TunRx<Traced>(in e, n); break;
                        default: PhyRx<Unpaired, Traced>(in e, rx, n); break;
                    }
                }
            }

            // Flows: the clock, an expiry sweep of a few entries, a clear when asked.
            if (ctx.Flows is { } flows)
                Flows(ctx, flows, last);

            // Quiescent point: nothing read from the tables above is used after this. Report
            // the control plane's grace token when it moved (DataplaneEngine.GraceToken).
            long token = Volatile.Read(ref _dp.GraceToken);
            if (token != ctx.Epoch)
                Volatile.Write(ref ctx.Epoch, token);

            long now = (long)Eal.Rdtsc();
            long gap = now - last;
            gaps.Record((ulong)gap);
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

    /// <summary>Entries of the flow table one loop iteration looks at for expiry: a full pass
    /// over a million flows takes about 32,000 iterations, and no iteration does much.</summary>
    private const int SweepPerIteration = 32;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Flows(WorkerContext ctx, FlowTable flows, long tsc)
    {
        ctx.NowMs = (uint)((tsc - ctx.FlowEpochTsc) / ctx.TscPerMs);
        if (Volatile.Read(ref ctx.FlowClearRequested) != 0)
        {
            flows.Clear();
            Volatile.Write(ref ctx.FlowClearRequested, 0);
            return;
        }
        FlowSettings s = _dp.CurrentFeatures.Flows;
        flows.Sweep(ctx.NowMs, SweepPerIteration, s.Timeouts, s.Live);
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

    /// <summary>Compile-time switch for tracing: the untraced instantiations contain no trace code.</summary>
    private interface ITrace
    {
        static abstract bool On { get; }
    }

    private struct NoTrace : ITrace
    {
        public static bool On => false;
    }

    private struct Traced : ITrace
    {
        public static bool On => true;
    }

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
            {
                for (uint i = 0; i < nDrop; i++)
                    TraceEnd(TraceBegin(in e, ctx.DropBuf[i]), TraceOutcome.Dropped, Reason.DropVlanUnknown, ushort.MaxValue);
                Volatile.Write(ref ctx.TracePublished, ctx.TraceNext);
            }
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

        if (e.Down)
        {
            for (uint i = 0; i < n; i++)
            {
                bytes += Mbuf.PktLen(rx[i]);
                drop[i] = rx[i];
                if (TTrace.On)
                    TraceEnd(TraceBegin(in e, rx[i]), TraceOutcome.Dropped, Reason.DropPortDown, ushort.MaxValue);
            }
            if (TTrace.On)
                Volatile.Write(ref ctx.TracePublished, ctx.TraceNext);
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
        bool deferAcl = inAcl is not null && !TTrace.On && forwarding && !tracked && (inAcl.V4 is null || inAcl.Pre4 != null);
        if (inAcl is not null && !deferAcl)
            n = InputAcl<TTrace>(in e, inAcl, tracked, rx, n, ref nDrop, ref aclBytes);
        if (tracked)
            n = TrackFlows(e.Port, features.Flows, rx, n, ctx.DropBuf, ref nDrop, ref aclBytes);

        // Phase 1: classify; forwarding candidates are collected for the bulk lookups. The
        // common cases (unicast IPv4 to us, no options, TTL > 1, sane lengths; then the same for
        // IPv6 over what is left) are recognised in one pass over the header each, by loops
        // without calls (so their values stay in registers); everything else, and every packet
        // while tracing, takes the full classifier after them. Only packets a check rejected
        // move behind the plain ones: the other family (never in the same flow) and packets
        // that are punted or dropped anyway (options, TTL, multicast, bad lengths). Both checks
        // accept exactly what the full classifier would forward, so no packet of a forwarded
        // flow can overtake another.
        void** fwd4 = ctx.Fwd4;
        uint* dst4 = ctx.Dst4;
        ulong portMac = e.PortMac;
        void** slow = rx;
        uint nSlow = n;
        if (!TTrace.On && forwarding)
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
                long counted = 0; // FastIp4 counted every frame's bytes already
                if (nSlow != 0)
                    nSlow = InputAcl<TTrace>(in e, inAcl, false, slow, nSlow, ref nDrop, ref counted);
            }
            if (nSlow != 0)
                n6 = FastIp6(slow, nSlow, portMac, ctx.Fwd6, ctx.Dst6, out nSlow);
        }
        for (uint i = 0; i < nSlow; i++)
        {
            void* m = slow[i];
            uint pktLen = Mbuf.PktLen(m);
            if (slow == rx)
                bytes += pktLen;
            byte* frame = Mbuf.Data(m);
            uint segLen = Mbuf.DataLen(m);
            int slot = -1;
            if (TTrace.On)
                slot = TraceBegin(in e, m);
            if (TTrace.On && forwarding && segLen >= 34 && Forwarding.IsPlainIp4(frame, pktLen, portMac))
            {
                TraceClassified(slot, Reason.PuntIp4, ctx.TraceSlots4 + n4);
                fwd4[n4] = m;
                dst4[n4] = BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 30));
                n4++;
                continue;
            }
            Reason r = FrameClassifier.Classify(frame, segLen, pktLen, portMac, puntOther);
            if (TTrace.On)
                TraceClassified(slot, r, null);
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
        if (TTrace.On)
            Volatile.Write(ref ctx.TracePublished, ctx.TraceNext);
    }

    /// <summary>The one-pass IPv4 check over a burst: plain packets go to the IPv4 candidates
    /// (with their destinations), the rest to <paramref name="slow"/>; also sums the bytes. A
    /// leaf without calls, so everything it touches stays in registers.</summary>
    /// <summary>Compile-time switch of the one-pass IPv4 check: with the port's classifier
    /// pre-filter (frames a rule may match go to the slow path, where the rules see them) or without.</summary>
    private interface IAclMode
    {
        static abstract bool On { get; }
    }

    private struct NoAcl : IAclMode
    {
        public static bool On => false;
    }

    private struct WithAcl : IAclMode
    {
        public static bool On => true;
    }

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
    private static uint FastIp6(void** pkts, uint n, ulong portMac, void** fwd6, byte* dst6, out uint nSlow)
    {
        (Vector128<byte> want, Vector128<byte> mask) = Forwarding.PlainIp6Template(portMac);
        uint k = 0;
        void** sl = pkts; // never ahead of p: the rejects are compacted in place
        for (void** p = pkts, end = pkts + n; p < end; p++)
        {
            void* m = *p;
            byte* frame = Mbuf.Data(m);
            if (Mbuf.DataLen(m) >= 54 && Forwarding.IsPlainIp6Header(frame, Mbuf.PktLen(m), want, mask))
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

    private interface IFamily
    {
        static abstract void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n);
        static abstract Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort);
        static abstract bool Apply(byte* frame, PathSlot* s);
    }

    private struct V4 : IFamily
    {
        public static void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib_lookup_bulk((void*)fib.V4[table], ctx.Dst4, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite4(groups, paths, nh, frame, out txPort);

        public static bool Apply(byte* frame, PathSlot* s) => Forwarding.Apply4(frame, s);
    }

    private struct V6 : IFamily
    {
        public static void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib6_lookup_bulk((void*)fib.V6[table], ctx.Dst6, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite6(groups, paths, nh, frame, out txPort);

        public static bool Apply(byte* frame, PathSlot* s) => Forwarding.Apply6(frame, s);
    }

    /// <summary>One bulk lookup for a family's candidates, then per packet: rewrite and buffer
    /// for its egress port, or punt/drop with the reason. Returns the number forwarded. Not
    /// inlined: a method of its own gets its own registers (inlined into the RX path, which is
    /// large, its per-packet loop kept a dozen values on the stack).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint ForwardBatch<TMode, TFamily, TTrace>(in PollEntry e, FibSnapshot fib, void** mbufs, int* slots, uint n, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
        where TFamily : struct, IFamily
        where TTrace : struct, ITrace
    {
        ulong* nhs = _ctx.NextHops;
        TFamily.Lookup(fib, e.Table, _ctx, nhs, n);
        Mark(RuntimePath.Lookup, n);
        if (TTrace.On)
        {
            for (uint i = 0; i < n; i++)
            {
                if (slots[i] >= 0)
                {
                    TraceRecord* t = _ctx.Trace!.Records + slots[i];
                    t->LookedUp = 1;
                    t->NextHop = nhs[i];
                }
            }
        }
        GroupEntry* groups = fib.Groups;
        PathEntry* paths = fib.Paths;
        uint forwarded = 0;
        uint nLeft = n;
        void*** left = _ctx.Left;
        if (!TTrace.On)
        {
            // The common case in one call-free leaf: packets through a single resolved path
            // are rewritten and buffered there. What it leaves (ECMP, punts, drops, too big)
            // takes the general loop below, after it; those packets belong to other flows (a
            // flow's packets share a next hop), so no flow is reordered.
            _ctx.Groups = groups;
            _ctx.Paths = paths;
            forwarded = ForwardSinglePaths<TFamily>(_ctx, mbufs, nhs, n, left, out nLeft);
            if (nLeft == 0)
            {
                Mark(RuntimePath.Rewrite, n);
                return forwarded;
            }
        }
        // TX buffering as in the fast pass (SwitchTx/SaveTx): the current port's next free slot
        // and byte total in locals, the rest looked up when the egress port changes.
        WorkerContext ctx = _ctx;
        ctx.CurTxPort = -1;
        void** at = null;
        long curBytes = 0;
        for (uint k = 0; k < nLeft; k++)
        {
            uint i = TTrace.On ? k : (uint)(left[k] - mbufs);
            void* m = mbufs[i];
            byte* frame = Mbuf.Data(m);
            Reason r = TFamily.Rewrite(groups, paths, nhs[i], frame, out ushort txPort);
            if (r == Reason.Forward)
            {
                if (TTrace.On)
                    TraceForwarded(slots[i], txPort, frame, Mbuf.DataLen(m));
                if (txPort != ctx.CurTxPort)
                    SwitchTx(ctx, txPort, ref at, ref curBytes);
                *at++ = m;
                curBytes += Mbuf.PktLen(m);
                forwarded++;
            }
            else
            {
                Decide<TMode, TTrace>(in e, m, frame, r, TTrace.On ? slots[i] : -1, ref nPunt, ref nDrop);
            }
        }
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, curBytes);
        Mark(RuntimePath.Rewrite, n);
        return forwarded;
    }

    /// <summary>Forwards every candidate whose next hop is a group with one resolved path and
    /// that fits its MTU: rewrite, then append to the egress port's TX buffer (listing the port
    /// as pending when it was empty) and add its bytes. The others are left as received; the
    /// addresses of their slots in <paramref name="mbufs"/> go to <paramref name="left"/>.
    /// Returns the number forwarded. Consecutive packets usually share a next hop, so the path
    /// and the TX buffer are looked up once per run of them (a slot stays valid until the
    /// worker's next quiescent point). No overflow check: a burst holds at most BurstSize
    /// packets and every burst ends with FlushTx, so a port's buffer never holds more than one
    /// burst. A leaf without calls, so the values of the per-packet work stay in registers.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static uint ForwardSinglePaths<TFamily>(WorkerContext ctx, void** mbufs, ulong* nhs, uint n, void*** left, out uint nLeft)
        where TFamily : struct, IFamily
    {
        // Few live values in the per-packet part (x64 has 14 registers to give, and the
        // rewrite needs a few): one cursor walks the mbufs, the next hops are at a fixed
        // distance from it, the packets left over are noted by their slot's address, and what
        // is only needed when the next hop changes (tables, current port) stays in the context.
        ulong lastNh = ulong.MaxValue;
        PathSlot* s = null;
        long curBytes = 0;
        void** at = null; // next free slot of the current port's TX buffer
        void*** leftAt = left;
        nint toNh = (nint)((byte*)nhs - (byte*)mbufs);
        ctx.CurTxPort = -1;
        for (void** p = mbufs, end = mbufs + n; p < end; p++)
        {
            ulong nh = *(ulong*)((byte*)p + toNh);
            if (nh != lastNh)
            {
                lastNh = nh;
                s = Forwarding.SinglePath(ctx.Groups, ctx.Paths, nh);
                if (s != null && s->TxPort != ctx.CurTxPort)
                    SwitchTx(ctx, s->TxPort, ref at, ref curBytes);
            }
            void* m = *p;
            if (s != null && TFamily.Apply(Mbuf.Data(m), s))
            {
                *at++ = m;
                curBytes += Mbuf.PktLen(m);
            }
            else
            {
                *leftAt++ = p;
            }
        }
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, curBytes);
        nLeft = (uint)(leftAt - left);
        return n - nLeft;
    }

    /// <summary>The IPv4 fast loop on its own (unit tests: synthetic mbufs, no EAL).</summary>
    internal static uint ForwardSinglePaths4(WorkerContext ctx, GroupEntry* groups, PathEntry* paths, void** mbufs, ulong* nhs, uint n, out uint nLeft)
    {
        ctx.Groups = groups;
        ctx.Paths = paths;
        return ForwardSinglePaths<V4>(ctx, mbufs, nhs, n, ctx.Left, out nLeft);
    }

    /// <summary>Makes <paramref name="port"/> the current TX buffer of the fast loop: saves
    /// the previous one's fill and bytes, loads this one's, lists it as pending if empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SwitchTx(WorkerContext ctx, int port, ref void** at, ref long bytes)
    {
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, bytes);
        ctx.CurTxPort = port;
        void** buf = ctx.TxBufs + port * WorkerOptions.BurstSize;
        at = buf + ctx.TxCounts[port];
        bytes = ctx.TxBytes[port];
        if (at == buf)
            ctx.TxPending[ctx.TxPendingCount++] = (ushort)port;
    }

    /// <summary>Stores a port's TX buffer fill (from its next free slot) and bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SaveTx(WorkerContext ctx, int port, void** at, long bytes)
    {
        ctx.TxCounts[port] = (int)(at - (ctx.TxBufs + port * WorkerOptions.BurstSize));
        ctx.TxBytes[port] = bytes;
    }

    /// <summary>Punt (to the paired mirror, unchanged; TUN: without L2) or drop, counted by
    /// reason. The slow path: kept out of line so the fast loops stay small.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Decide<TMode, TTrace>(in PollEntry e, void* m, byte* frame, Reason r, int slot, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
        where TTrace : struct, ITrace
    {
        if (r < ReasonInfo.FirstDrop)
        {
            PuntPolicers policers;
            if (!TMode.Paired)
            {
                r = Reason.DropNoMirror;
            }
            else if ((policers = _dp.CurrentFeatures.Policers).Any
                     && !PuntBuckets.Admit(_ctx.Punt, policers, e.Port, PuntClasses.Of(frame, Mbuf.DataLen(m), r), (long)Eal.Rdtsc()))
            {
                r = Reason.DropPuntPoliced;
            }
            else if (TMode.Tun)
            {
                ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(frame + 12));
                if (type is FrameClassifier.EtherTypeIp4 or FrameClassifier.EtherTypeIp6)
                {
                    LearnPeer(e.Port, frame);
                    Mbuf.Adj(m, FrameClassifier.EtherHeader);
                }
                else
                {
                    r = Reason.DropTunNotIp;
                }
            }
        }
        _ctx.Counters.Reason(r)++;
        if (TTrace.On)
            TraceEnd(slot, r < ReasonInfo.FirstDrop ? TraceOutcome.Punted : TraceOutcome.Dropped, r, r < ReasonInfo.FirstDrop ? e.Peer : ushort.MaxValue);
        if (r < ReasonInfo.FirstDrop)
            _ctx.OutBuf[nPunt++] = m;
        else
            _ctx.DropBuf[nDrop++] = m;
    }

    /// <summary>Remembers the source MAC of an IP frame (whose headers the classifier checked)
    /// from a point-to-point port: as the link's peer (written only when it changes: the slot is
    /// shared by all workers) and as the adjacency of its source address (this worker's table).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LearnPeer(ushort port, byte* frame)
    {
        ulong mac = *(uint*)(frame + 6) | ((ulong)*(ushort*)(frame + 10) << 32);
        if (_dp.TunPeerMacs[port] != mac)
            Volatile.Write(ref _dp.TunPeerMacs[port], mac);
        bool v6 = frame[12] == 0x86;
        UInt128 src = v6 ? new UInt128(BinaryPrimitives.ReverseEndianness(*(ulong*)(frame + 22)), BinaryPrimitives.ReverseEndianness(*(ulong*)(frame + 30)))
            : BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 26));
        _ctx.Learned.Learn(port, v6, src, mac);
    }

    // ---- interface features -------------------------------------------------------------------

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
                TraceEnd(TraceBegin(in e, ctx.DropBuf[i]), TraceOutcome.Dropped, Reason.DropClassify, ushort.MaxValue);
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

    // ---- mirror RX: x-connect to the phy port ------------------------------------------------

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
                TraceEnd(TraceBegin(in e, rx[i]), TraceOutcome.CrossConnected, Reason.None, e.Peer);
        }
        c.Port(e.Port, PortCounter.RxPackets) += n;
        c.Port(e.Port, PortCounter.RxBytes) += bytes;
        if (n != 0)
            Send(e.Peer, rx, n, Reason.DropPhyTxFull);
        XconnectDone<TTrace>(n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void XconnectDone<TTrace>(uint n) where TTrace : struct, ITrace
    {
        Mark(RuntimePath.Xconnect, n);
        if (_ctx.Sampling)
            _ctx.Counters.Latency(LatencyPath.Xconnect).Record((ulong)(_ctx.MarkTsc - _ctx.RxTsc), n);
        if (TTrace.On)
            Volatile.Write(ref _ctx.TracePublished, _ctx.TraceNext);
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
            int slot = TTrace.On ? TraceBegin(in e, m) : -1;
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
        XconnectDone<TTrace>(n);
    }

    /// <summary>For what a TUN mirror sent (Ethernet header already prepended, towards the peer):
    /// one bulk lookup of the destinations in the port's table; a packet whose next hop has a
    /// resolved path out of the paired port takes that path's rewrite (its neighbour's MAC).
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
            if (s != null && s->TxPort == e.Peer)
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

    [MethodImpl(MethodImplOptions.NoInlining)]
    private uint TrackOutput(ushort port, FlowSettings settings, void** pkts, uint n, ref long bytes)
    {
        uint nDrop = 0;
        long droppedBytes = 0;
        uint kept = TrackFlows(port, settings, pkts, n, _ctx.AclDrop, ref nDrop, ref droppedBytes);
        if (nDrop != 0)
            FreeOutputDrops(port, nDrop, ref bytes);
        return kept;
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
            FreeOutputDrops(port, nDrop, ref bytes);
        }
        return kept;
    }

    // ---- runtime figures -----------------------------------------------------------------------

    /// <summary>Counts a call of a path; on sampled iterations also charges it the cycles since
    /// the previous mark.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mark(RuntimePath p, uint packets)
    {
        WorkerContext ctx = _ctx;
        WorkerCounters c = ctx.Counters;
        c.PathCalls(p)++;
        c.PathPackets(p) += packets;
        if (ctx.Sampling)
        {
            long now = (long)Eal.Rdtsc();
            c.PathSampledCycles(p) += now - ctx.MarkTsc;
            c.PathSampledPackets(p) += packets;
            ctx.MarkTsc = now;
        }
    }

    // ---- trace and capture (only reached when armed) ---------------------------------------------

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
