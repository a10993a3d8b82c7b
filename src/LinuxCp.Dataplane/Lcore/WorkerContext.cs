using System.Runtime.InteropServices;
using LinuxCp.Dataplane.Counters;

using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Per-worker state: queue id, burst scratch in native memory, counters and the loop's
/// health figures. Allocated once; the loop touches nothing else that is writable.</summary>
public sealed unsafe class WorkerContext : IDisposable
{
    public int Index { get; }
    public uint Lcore { get; }
    public ushort Queue { get; }
    public WorkerCounters Counters { get; } = new();

    /// <summary>Neighbours this worker learned on point-to-point ports (their adjacencies).</summary>
    public LearnTable Learned { get; } = new();

    /// <summary>rx, punt/out and drop burst arrays, BurstSize pointers each.</summary>
    internal void** RxBuf;
    internal void** OutBuf;
    internal void** DropBuf;
    /// <summary>Packets the one-pass IPv4 check did not take, for the full classifier.</summary>
    internal void** SlowBuf;

    /// <summary>Forwarding candidates of a burst: mbufs, IPv4 destinations (host order),
    /// IPv6 destinations (16 bytes each), FIB results.</summary>
    internal void** Fwd4;
    internal uint* Dst4;
    /// <summary>Dst4 starts this many bytes after Fwd4 (the classify loop addresses both
    /// from one register).</summary>
    internal const int Dst4AfterFwd4 = WorkerOptions.BurstSize * 8;
    internal void** Fwd6;
    internal byte* Dst6;
    internal ulong* NextHops;
    /// <summary>The FIB's group and path tables for the burst being forwarded.</summary>
    internal Fib.GroupEntry* Groups;
    internal Fib.PathEntry* Paths;
    /// <summary>The candidates the single-path fast loop left to the general one (addresses of
    /// their slots in the candidate array), and the TX port that loop is filling.</summary>
    internal void*** Left;
    internal int CurTxPort;

    /// <summary>Per egress port TX buffers (BurstSize each), their fill counts, and the list of
    /// ports that have something buffered.</summary>
    internal void** TxBufs;
    internal int* TxCounts;
    internal long* TxBytes;
    internal ushort* TxPending;
    internal int TxPendingCount;

    // Runtime sampling: set per iteration by the worker (1 in SampleEvery); the mark is the TSC
    // at the end of the previous path, the RX mark the TSC at which the burst was received.
    internal bool Sampling;
    internal long MarkTsc;
    internal long RxTsc;

    // Trace: armed by the control plane (remaining budget, port filter, buffer); records are
    // filled by the worker and published by count at the end of each burst.
    internal int TraceRemaining;
    internal int TracePort = -1;
    internal Observe.TraceBuffer? Trace;
    internal int TraceNext;
    internal int TracePublished;
    /// <summary>The traced burst as it arrived (<see cref="TraceCount"/> mbufs) and each one's
    /// record slot (-1: none): every node finds a packet's record by its mbuf.</summary>
    internal void** TraceMbufs;
    internal int* TraceSlots;
    internal uint TraceCount;
    internal int* TraceSlots4;
    internal int* TraceSlots6;

    // Capture: the port (-1 = off), directions (1 rx, 2 tx) and this worker's ring.
    internal int CapturePort = -1;
    internal int CaptureDirections;
    internal Observe.CaptureRing? Capture;

    // Classifier: key scratch, a drop buffer for output rules (the RX drop buffer may hold a
    // burst's drops while its TX is flushed) and the rule counters (packets, bytes per slot).
    internal readonly Features.AclScratch Acl = new();
    internal void** AclDrop;
    /// <summary>A parent port's frames of its sub-interfaces (tags popped), their ids, and one
    /// sub-interface's share of them at a time.</summary>
    internal void** SubPkts;
    internal void** SubGroup;
    internal ushort* SubIds;
    internal long* AclHits;
    /// <summary>The flow table (null until the control plane gives one: flow enable, reflect),
    /// the time in milliseconds since the table's epoch (set each loop iteration), and a clear
    /// request the worker carries out at its next quiescent point.</summary>
    internal Features.FlowTable? Flows;
    internal uint NowMs;
    internal long FlowEpochTsc;
    internal long TscPerMs = 1;
    internal int FlowClearRequested;
    /// <summary>The expiry sweep's pacing (Worker.Flows): when it last ran, and its credit.</summary>
    internal long SweepLastTsc, SweepCredit;

    public Features.FlowTable? FlowTable => Volatile.Read(ref Flows);

    /// <summary>The worker's flow clock (milliseconds since its table's epoch).</summary>
    public uint FlowClockMs => Volatile.Read(ref NowMs);

    /// <summary>Gives the worker its flow table (once, before a snapshot that needs it is published).</summary>
    public void AttachFlows(Features.FlowTable table, long epochTsc, long tscPerMs)
    {
        FlowEpochTsc = epochTsc;
        TscPerMs = Math.Max(1, tscPerMs);
        Volatile.Write(ref Flows, table);
    }

    /// <summary>Asks the worker to empty its flow table; true once it did (or it does not run).</summary>
    public bool ClearFlows(TimeSpan timeout)
    {
        if (Flows is null)
            return true;
        if (!IsRunning)
        {
            Flows.Clear();
            return true;
        }
        Volatile.Write(ref FlowClearRequested, 1);
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Volatile.Read(ref FlowClearRequested) != 0)
        {
            if (Environment.TickCount64 > deadline || !IsRunning)
                return !IsRunning;
            Thread.Sleep(1);
        }
        return true;
    }

    /// <summary>Punt policers: a token bucket and counters per port and class (PuntBuckets).</summary>
    internal long* Punt;

    public long PuntPassed(int port, Features.PuntClass c) => Features.PuntBuckets.Passed(Punt, port, c);

    public long PuntPoliced(int port, Features.PuntClass c) => Features.PuntBuckets.Policed(Punt, port, c);

    /// <summary>Packets this worker counted on a classifier rule's slot.</summary>
    public long AclHitCount(int slot) => Volatile.Read(ref AclHits[2 * slot]);

    public long AclHitBytes(int slot) => Volatile.Read(ref AclHits[2 * slot + 1]);

    // Written by the worker, read by the control plane.
    internal long Epoch;
    internal long Iterations;
    internal long MaxLoopGapTsc;
    internal long AllocatedBytes;
    internal long AllocatedBytesAtWarmup = -1;
    internal int Running;

    /// <summary>Kernel thread id of the thread running the worker (0 until it starts).</summary>
    public int ThreadId;
    internal string? Failure;

    public WorkerContext(int index, uint lcore, ushort queue)
    {
        Index = index;
        Lcore = lcore;
        Queue = queue;
        int bytes = WorkerOptions.BurstSize * sizeof(void*);
        RxBuf = (void**)NativeMemory.AlignedAlloc((nuint)bytes * 7 + WorkerOptions.BurstSize * sizeof(ushort), 64);
        OutBuf = RxBuf + WorkerOptions.BurstSize;
        DropBuf = OutBuf + WorkerOptions.BurstSize;
        SlowBuf = DropBuf + WorkerOptions.BurstSize;
        AclDrop = SlowBuf + WorkerOptions.BurstSize;
        SubPkts = AclDrop + WorkerOptions.BurstSize;
        SubGroup = SubPkts + WorkerOptions.BurstSize;
        SubIds = (ushort*)(SubGroup + WorkerOptions.BurstSize);
        AclHits = (long*)NativeMemory.AlignedAlloc(2 * Features.Classifier.MaxRules * sizeof(long), 64);
        NativeMemory.Clear(AclHits, 2 * Features.Classifier.MaxRules * sizeof(long));
        Punt = (long*)NativeMemory.AlignedAlloc((nuint)(Features.PuntBuckets.Longs * sizeof(long)), 64);
        NativeMemory.Clear(Punt, (nuint)(Features.PuntBuckets.Longs * sizeof(long)));
        const int b = WorkerOptions.BurstSize;
        _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)(b * 8 * 4 + b * 4 + b * 16 + b * 4 * 3 + b * 8 + Interfaces.Max * (b * 8 + 4 + 2 + 8)), 64);
        byte* s = _scratch;
        TraceSlots = (int*)s; s += b * 4;
        TraceMbufs = (void**)s; s += b * 8;
        TraceSlots4 = (int*)s; s += b * 4;
        TraceSlots6 = (int*)s; s += b * 4;
        Fwd4 = (void**)s; s += b * 8;
        Dst4 = (uint*)s; s += b * 4; // right after Fwd4: see Dst4AfterFwd4
        Fwd6 = (void**)s; s += b * 8;
        NextHops = (ulong*)s; s += b * 8;
        Dst6 = s; s += b * 16;
        Left = (void***)s; s += b * 8;
        TxBufs = (void**)s; s += Interfaces.Max * b * 8;
        TxCounts = (int*)s; s += Interfaces.Max * 4;
        TxBytes = (long*)s; s += Interfaces.Max * 8;
        TxPending = (ushort*)s;
        NativeMemory.Clear(TxCounts, (nuint)(Interfaces.Max * 4));
        NativeMemory.Clear(TxBytes, (nuint)(Interfaces.Max * 8));
    }

    private byte* _scratch;

    public long EpochValue => Interlocked.Read(ref Epoch);
    public bool IsRunning => Volatile.Read(ref Running) != 0;
    public long IterationCount => Volatile.Read(ref Iterations);
    public long MaxLoopGapCycles => Volatile.Read(ref MaxLoopGapTsc);
    /// <summary>Bytes the worker thread allocated since it finished warming up (should stay 0).</summary>
    public long AllocatedSinceWarmup
    {
        get
        {
            long w = Volatile.Read(ref AllocatedBytesAtWarmup);
            return w < 0 ? 0 : Volatile.Read(ref AllocatedBytes) - w;
        }
    }
    public bool WarmedUp => Volatile.Read(ref AllocatedBytesAtWarmup) >= 0;
    public string? FailureMessage => Volatile.Read(ref Failure);

    public void ResetLoopGap() => Volatile.Write(ref MaxLoopGapTsc, 0);

    public void Dispose()
    {
        if (RxBuf != null)
        {
            NativeMemory.AlignedFree(RxBuf);
            NativeMemory.AlignedFree(_scratch);
            NativeMemory.AlignedFree(AclHits);
            NativeMemory.AlignedFree(Punt);
            Punt = null;
            RxBuf = OutBuf = DropBuf = SlowBuf = AclDrop = SubPkts = SubGroup = null;
            SubIds = null;
            AclHits = null;
            Acl.Dispose();
            _scratch = null;
        }
        Trace?.Dispose();
        Capture?.Dispose();
        Flows?.Dispose();
        Flows = null;
    }
}
