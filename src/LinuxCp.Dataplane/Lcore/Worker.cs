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
public sealed unsafe partial class Worker
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
        var fast6 = typeof(Worker).GetMethod(nameof(FastIp6), Static)!;
        RuntimeHelpers.PrepareMethod(fast6.MethodHandle, [typeof(NoAcl).TypeHandle]);
        RuntimeHelpers.PrepareMethod(fast6.MethodHandle, [typeof(WithAcl).TypeHandle]);
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
                    // Traced: the records start here, in arrival order; the nodes are the
                    // same code as above (their trace steps compiled in) and fill them.
                    TraceBurst(in e, rx, n);
                    if (!e.Subs || (n = SubRx<Traced>(in e, table.Vlans, n)) != 0)
                    {
                        switch (e.Kind)
                        {
                            case PollKind.PhyToTap: PhyRx<ToTap, Traced>(in e, rx, n); break;
                            case PollKind.PhyToTun: PhyRx<ToTun, Traced>(in e, rx, n); break;
                            case PollKind.TapToPhy: TapRx<Traced>(in e, n); break;
                            case PollKind.TunToPhy: TunRx<Traced>(in e, n); break;
                            default: PhyRx<Unpaired, Traced>(in e, rx, n); break;
                        }
                    }
                    ctx.TraceCount = 0;
                    Volatile.Write(ref ctx.TracePublished, ctx.TraceNext);
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

    /// <summary>The expiry sweep's pace: one pass over the table's slots a second, whatever the
    /// loop's rate (a busy loop looks at a few slots an iteration, an idle one at more), and no
    /// iteration looks at more than <see cref="SweepMaxPerIteration"/>. A fixed count per
    /// iteration made a busy worker pass over a million-flow table many times a second, reading
    /// 100 MB/s of table for nothing.</summary>
    private const int SweepPassMs = 1000, SweepMaxPerIteration = 256;

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
        // Credit in slot-cycles: the cycles since the last iteration times the slots, of which
        // a pass's cycles buy one slot; what is left over carries to the next iteration.
        long pass = ctx.TscPerMs * SweepPassMs;
        long dt = tsc - ctx.SweepLastTsc;
        ctx.SweepLastTsc = tsc;
        if (dt < 0 || dt > pass)
            dt = pass;
        long credit = ctx.SweepCredit + dt * flows.Slots;
        long budget = Math.Min(credit / pass, SweepMaxPerIteration);
        ctx.SweepCredit = Math.Min(credit - budget * pass, pass * SweepMaxPerIteration);
        if (budget == 0)
            return;
        FlowSettings s = _dp.CurrentFeatures.Flows;
        flows.Sweep(ctx.NowMs, (int)budget, s.Timeouts, s.Live);
    }

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
}
