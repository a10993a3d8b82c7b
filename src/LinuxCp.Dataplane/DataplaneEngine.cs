using System.Runtime.InteropServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane;

/// <summary>The dataplane: workers on EAL lcores and the poll table they read. Control-plane
/// writes publish a new table and wait for a grace period (every running worker passed a
/// quiescent point) before they free anything the old table referenced.</summary>
public sealed unsafe class DataplaneEngine : IFibPublisher, Features.IFeaturePublisher, IDisposable
{
    private readonly List<Worker> _workers = [];
    private readonly List<GCHandle> _handles = [];
    private readonly object _publishLock = new();
    private PollTable _table = PollTable.Empty;
    private FibSnapshot _fib = FibSnapshot.None;
    private Features.FeatureSnapshot _features = Features.FeatureSnapshot.None;
    private int _stop;
    private long _generation;
    private Action<int, Exception>? _onFailure;

    /// <summary>MAC of the single peer seen on each point-to-point (TUN-paired) phy port.</summary>
    internal readonly ulong[] TunPeerMacs = new ulong[EthPort.MaxPorts];

    /// <summary>The peer MAC a worker learned on a point-to-point phy port (0: none seen yet).
    /// It is the port's one adjacency: the FIB's paths through the port and the x-connect from
    /// its TUN mirror both rewrite to it.</summary>
    public ulong PeerMac(ushort port) => Volatile.Read(ref TunPeerMacs[port]);

    /// <summary>The neighbours (source address -> MAC) the workers learned on point-to-point ports.</summary>
    public void LearnedNeighbors(List<LearnedNeighbor> into)
    {
        foreach (Worker w in _workers)
            w.Context.Learned.ReadInto(into);
    }

    public WorkerOptions Options { get; }

    /// <summary>The lcore that runs a worker on the calling (main) thread, if any.</summary>
    public uint? MainLcoreWorker { get; }

    /// <param name="workerLcores">EAL lcores that run workers; worker i polls queue i.</param>
    /// <param name="mainLcore">the main lcore: if it is in <paramref name="workerLcores"/>, its
    /// worker runs on the thread that calls <see cref="RunMainWorker"/>.</param>
    /// <param name="queueMap">optional lcore -> queue assignment (a permutation of 0..N-1);
    /// default: the i-th worker lcore polls queue i.</param>
    public DataplaneEngine(WorkerOptions options, IReadOnlyList<uint> workerLcores, uint mainLcore,
        IReadOnlyDictionary<uint, ushort>? queueMap = null)
    {
        if (workerLcores.Count == 0)
            throw new ArgumentException("at least one worker lcore is required", nameof(workerLcores));
        ushort[] queues = QueueAssignment(workerLcores, queueMap);
        Options = options;
        for (int i = 0; i < workerLcores.Count; i++)
        {
            var ctx = new WorkerContext(i, workerLcores[i], queues[i]);
            _workers.Add(new Worker(this, ctx, options));
            if (workerLcores[i] == mainLcore)
                MainLcoreWorker = mainLcore;
        }
    }

    public int WorkerCount => _workers.Count;

    /// <summary>Validates a queue map: every worker lcore mapped, queues distinct and below the
    /// worker count (each port has one queue per worker).</summary>
    public static ushort[] QueueAssignment(IReadOnlyList<uint> lcores, IReadOnlyDictionary<uint, ushort>? map)
    {
        var q = new ushort[lcores.Count];
        if (map is null || map.Count == 0)
        {
            for (int i = 0; i < q.Length; i++)
                q[i] = (ushort)i;
            return q;
        }
        foreach (uint l in map.Keys)
            if (!lcores.Contains(l))
                throw new ArgumentException($"queue map names lcore {l}, which is not a worker lcore ({string.Join(",", lcores)})");
        var used = new HashSet<ushort>();
        for (int i = 0; i < q.Length; i++)
        {
            if (!map.TryGetValue(lcores[i], out ushort queue))
                throw new ArgumentException($"queue map does not place worker lcore {lcores[i]}");
            if (queue >= q.Length)
                throw new ArgumentException($"queue {queue} for lcore {lcores[i]}: ports have {q.Length} queue(s), one per worker");
            if (!used.Add(queue))
                throw new ArgumentException($"queue {queue} is given to two lcores");
            q[i] = queue;
        }
        return q;
    }

    public IReadOnlyList<WorkerContext> Workers => _workers.ConvertAll(w => w.Context);

    internal bool StopRequested => Volatile.Read(ref _stop) != 0;

    internal PollTable CurrentTable => Volatile.Read(ref _table);

    public PollTable Table => CurrentTable;

    internal FibSnapshot CurrentFib => Volatile.Read(ref _fib);

    /// <summary>Makes a FIB snapshot what workers look up in from their next loop iteration
    /// (release store, then a fence so a grace period started after this sees it). The FIB
    /// writer waits for the grace period itself, and decides what a timeout defers.</summary>
    public void Publish(FibSnapshot snapshot)
    {
        lock (_publishLock)
        {
            Volatile.Write(ref _fib, snapshot);
            Interlocked.MemoryBarrier();
        }
    }

    internal Features.FeatureSnapshot CurrentFeatures => Volatile.Read(ref _features);

    /// <summary>Makes a feature snapshot (classifier rules) what workers use from their next
    /// burst, then waits for the grace period: true once nothing can use the previous one.</summary>
    public bool Publish(Features.FeatureSnapshot snapshot, TimeSpan graceTimeout) =>
        PublishAndWait(ref _features, snapshot, graceTimeout);

    /// <summary>Called (on the failing lcore) when a worker loop died.</summary>
    public void OnFailure(Action<int, Exception> handler) => _onFailure = handler;

    internal void OnWorkerFailed(Worker w, Exception e) => _onFailure?.Invoke(w.Context.Index, e);

    /// <summary>Publishes a new poll table and waits until no worker can still be using the old
    /// one. Returns false if a worker did not pass a quiescent point in time.</summary>
    public bool Publish(PollEntry[] entries, TimeSpan? graceTimeout = null, VlanTable? vlans = null)
    {
        return PublishAndWait(ref _table, new PollTable(entries, Interlocked.Increment(ref _generation), vlans), graceTimeout);
    }

    /// <summary>Release-stores what workers read, fences (so the epoch snapshot cannot be taken
    /// before the store is visible), then waits for the grace period.</summary>
    private bool PublishAndWait<T>(ref T slot, T value, TimeSpan? graceTimeout) where T : class
    {
        lock (_publishLock)
        {
            Volatile.Write(ref slot, value);
            Interlocked.MemoryBarrier();
            return WaitGracePeriod(graceTimeout ?? TimeSpan.FromSeconds(2));
        }
    }

    /// <summary>Grace-period token (the scheme of DPDK's rte_rcu_qsbr): a writer that has
    /// unlinked something takes a new token; each worker, at its quiescent point, reads the
    /// token (acquire: everything it reads afterwards is at least as new as the unlink) and, if
    /// it changed, reports it (release: everything it read before is done with). Once every
    /// running worker has reported the writer's token, nothing unlinked before it is in use.
    /// Costs a worker one load per loop iteration; no fence.</summary>
    internal long GraceToken;

    /// <summary>Waits until every running worker has passed a quiescent point after this call.</summary>
    public bool WaitGracePeriod(TimeSpan timeout)
    {
        // Full fence: the caller's unlinking stores are visible before the new token is.
        long token = Interlocked.Increment(ref GraceToken);
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        for (int i = 0; i < _workers.Count; i++)
        {
            WorkerContext ctx = _workers[i].Context;
            while (ctx.IsRunning && ctx.EpochValue < token)
            {
                if (Environment.TickCount64 > deadline)
                    return false;
                Thread.Sleep(0);
            }
        }
        DisposeQuiet(token);
        return true;
    }

    /// <summary>True once workers poll the ports (before that, the control thread may).</summary>
    public bool Launched => Volatile.Read(ref _launched) != 0;

    private int _launched;

    /// <summary>Starts every worker whose lcore is not the main one.</summary>
    public void LaunchWorkers()
    {
        Volatile.Write(ref _launched, 1);
        foreach (Worker w in _workers)
        {
            if (w.Context.Lcore == MainLcoreWorker)
                continue;
            var h = GCHandle.Alloc(w);
            _handles.Add(h);
            Eal.RemoteLaunch(&LcoreEntry, (void*)GCHandle.ToIntPtr(h), w.Context.Lcore);
        }
    }

    /// <summary>Runs the main lcore's worker on the calling thread until <see cref="Stop"/>.</summary>
    public void RunMainWorker()
    {
        Volatile.Write(ref _launched, 1);
        foreach (Worker w in _workers)
            if (w.Context.Lcore == MainLcoreWorker)
                w.Run();
    }

    [UnmanagedCallersOnly]
    private static int LcoreEntry(void* arg)
    {
        try
        {
            var w = (Worker)GCHandle.FromIntPtr((nint)arg).Target!;
            return w.Run();
        }
        catch
        {
            return -1;
        }
    }

    public void Stop() => Volatile.Write(ref _stop, 1);

    /// <summary>Waits for the launched lcores to return (after <see cref="Stop"/>).</summary>
    public void Join()
    {
        foreach (Worker w in _workers)
            if (w.Context.Lcore != MainLcoreWorker)
                Eal.WaitLcore(w.Context.Lcore);
        foreach (GCHandle h in _handles)
            h.Free();
        _handles.Clear();
    }

    /// <summary>What a FIB result (next-hop group index) currently means: kind and bucket count.</summary>
    public (GroupKind Kind, int Buckets) DescribeGroup(ulong nh) => FibWriter.DescribeGroup(CurrentFib, nh);

    // ---- trace and capture -------------------------------------------------------------------

    private readonly object _observeLock = new();

    /// <summary>Arms tracing of the next <paramref name="count"/> packets on each worker (on one
    /// port, or any if <paramref name="port"/> is negative). Records add to those already held,
    /// up to each worker's buffer capacity. Returns the budget actually armed per worker.</summary>
    public int TraceAdd(int count, int port)
    {
        lock (_observeLock)
        {
            int armed = 0;
            foreach (Worker w in _workers)
            {
                WorkerContext ctx = w.Context;
                if (ctx.Trace is null)
                    Volatile.Write(ref ctx.Trace, new Observe.TraceBuffer());
                int room = ctx.Trace!.Capacity - Volatile.Read(ref ctx.TracePublished);
                int n = Math.Max(0, Math.Min(count, room));
                armed = Math.Max(armed, n);
                Volatile.Write(ref ctx.TracePort, port);
                Volatile.Write(ref ctx.TraceRemaining, n);
            }
            return armed;
        }
    }

    /// <summary>Disarms tracing and drops every record, after a grace period so no worker is
    /// still writing one. False (nothing dropped; tracing stays disarmed) when a worker did not
    /// pass a quiescent point in time.</summary>
    public bool TraceClear()
    {
        lock (_observeLock)
        {
            foreach (Worker w in _workers)
                Volatile.Write(ref w.Context.TraceRemaining, 0);
            Interlocked.MemoryBarrier();
            if (!WaitGracePeriod(TimeSpan.FromSeconds(2)))
                return false;
            foreach (Worker w in _workers)
            {
                w.Context.TraceNext = 0;
                Volatile.Write(ref w.Context.TracePublished, 0);
            }
            return true;
        }
    }

    /// <summary>Copies of every published trace record, per worker in arrival order.</summary>
    public List<(int Worker, Observe.TraceRecord Record)> TraceRecords()
    {
        var list = new List<(int, Observe.TraceRecord)>();
        lock (_observeLock)
        {
            foreach (Worker w in _workers)
            {
                WorkerContext ctx = w.Context;
                Observe.TraceBuffer? t = ctx.Trace;
                int n = Volatile.Read(ref ctx.TracePublished);
                for (int i = 0; t is not null && i < n; i++)
                    list.Add((ctx.Index, t.Records[i]));
            }
        }
        return list;
    }

    /// <summary>Remaining trace budget summed over workers.</summary>
    public int TracePending => _workers.Sum(w => Math.Max(0, Volatile.Read(ref w.Context.TraceRemaining)));

    /// <summary>Starts copying packets of <paramref name="port"/> (directions: 1 rx, 2 tx, 3 both)
    /// into one new ring per worker. Fails if a capture is running.</summary>
    public IReadOnlyList<Observe.CaptureRing> CaptureStart(ushort port, int directions, int ringSlots)
    {
        lock (_observeLock)
        {
            if (_workers.Any(w => w.Context.Capture is not null))
                throw new InvalidOperationException("a capture is already running");
            var rings = new List<Observe.CaptureRing>();
            foreach (Worker w in _workers)
            {
                var ring = new Observe.CaptureRing(ringSlots);
                rings.Add(ring);
                WorkerContext ctx = w.Context;
                Volatile.Write(ref ctx.Capture, ring);
                Volatile.Write(ref ctx.CaptureDirections, directions);
                Volatile.Write(ref ctx.CapturePort, port);
            }
            return rings;
        }
    }

    /// <summary>Stops capturing. True: no worker writes into the rings any more (the caller
    /// drains and disposes them). False: a worker did not pass a quiescent point in time and may
    /// still be writing; the caller drains them but hands them to <see cref="DisposeWhenQuiet"/>
    /// instead of freeing their memory under a worker.</summary>
    public bool CaptureStop()
    {
        lock (_observeLock)
        {
            foreach (Worker w in _workers)
                Volatile.Write(ref w.Context.CapturePort, -1);
            Interlocked.MemoryBarrier();
            if (!WaitGracePeriod(TimeSpan.FromSeconds(2)))
                return false;
            foreach (Worker w in _workers)
                Volatile.Write(ref w.Context.Capture, null);
            return true;
        }
    }

    private readonly List<(long Token, IDisposable Item)> _disposeWhenQuiet = [];

    /// <summary>Disposes native buffers a worker may still hold once a grace period that starts
    /// after this call completes (checked by every <see cref="WaitGracePeriod"/> that succeeds).</summary>
    public void DisposeWhenQuiet(IEnumerable<IDisposable> items)
    {
        lock (_disposeWhenQuiet)
        {
            // A token of its own: a grace period that began before the hand-over proves nothing
            // about a worker that was still writing when it was handed over.
            long token = Interlocked.Increment(ref GraceToken);
            foreach (IDisposable d in items)
                _disposeWhenQuiet.Add((token, d));
        }
    }

    /// <summary>Buffers waiting for a grace period before they are freed.</summary>
    public int WaitingToDispose
    {
        get
        {
            lock (_disposeWhenQuiet)
                return _disposeWhenQuiet.Count;
        }
    }

    private void DisposeQuiet(long completed)
    {
        // A loop, not RemoveAll with a lambda: the lambda's closure (it captures the token)
        // would be allocated on every call, and every FIB commit calls this.
        lock (_disposeWhenQuiet)
        {
            int kept = 0;
            for (int i = 0; i < _disposeWhenQuiet.Count; i++)
            {
                var e = _disposeWhenQuiet[i];
                if (e.Token > completed)
                {
                    _disposeWhenQuiet[kept++] = e;
                    continue;
                }
                // Still attached to a context (its capture stop timed out): detach it; the
                // capture port was switched off before the hand-over, so no worker uses it.
                if (e.Item is Observe.CaptureRing ring)
                    foreach (Worker w in _workers)
                        Interlocked.CompareExchange(ref w.Context.Capture, null, ring);
                e.Item.Dispose();
            }
            _disposeWhenQuiet.RemoveRange(kept, _disposeWhenQuiet.Count - kept);
        }
    }

    // ---- counters (aggregated on read) -----------------------------------------------------

    public long ReadPort(ushort port, PortCounter c)
    {
        long sum = 0;
        foreach (Worker w in _workers)
            sum += w.Context.Counters.ReadPort(port, c);
        return sum;
    }

    public long ReadReason(Reason r)
    {
        long sum = 0;
        foreach (Worker w in _workers)
            sum += w.Context.Counters.ReadReason(r);
        return sum;
    }

    /// <summary>Zeroes a port's counters in every worker. Only for a port no table references.</summary>
    public void ClearPortCounters(ushort port)
    {
        foreach (Worker w in _workers)
            w.Context.Counters.ClearPort(port);
        if (port < TunPeerMacs.Length)
            TunPeerMacs[port] = 0;
    }

    public void Dispose()
    {
        foreach (Worker w in _workers)
            w.Context.Dispose();
    }
}
