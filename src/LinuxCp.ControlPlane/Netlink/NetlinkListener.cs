using System.Diagnostics;
using DpdkSharp;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>Settings of the netlink listeners.</summary>
public sealed record NetlinkOptions
{
    /// <summary>Socket receive buffer (SO_RCVBUFFORCE). A full table arrives in bursts.</summary>
    public int ReceiveBuffer { get; init; } = 64 << 20;

    /// <summary>Most messages applied before a FIB commit (one grace period per commit); dumps
    /// commit at the same pace, so a full table never waits in the model as one huge batch.</summary>
    public int BatchEvents { get; init; } = 20_000;

    /// <summary>How often a long dump logs its progress.</summary>
    public TimeSpan ProgressEvery { get; init; } = TimeSpan.FromSeconds(3);
}

/// <summary>Follows one namespace: subscribes, dumps, applies notifications in batches, and
/// resyncs (begin-sync, dump, end-sync: mark and sweep in the model) after an overrun or a read
/// error, or on request. Everything runs on the listener's own thread (the first dump on the
/// caller's, before the thread starts); the model is changed under the routing lock. Every
/// message, dumped or notified, goes from one reused receive buffer straight into the
/// namespace's handlers.</summary>
public sealed class NetlinkListener : IDisposable
{
    private const int Enobufs = 105, Eagain = 11, Eintr = 4;

    private readonly NamespaceSync _sync;
    private readonly object _lock;
    private readonly Func<bool, CommitResult> _commit;
    private readonly NetlinkOptions _opt;
    private readonly ILogger _log;
    private readonly Thread _thread;
    private readonly NetlinkSocket _events;
    private readonly byte[] _buf = new byte[1 << 20];
    private readonly ManualResetEventSlim _resyncDone = new(false);
    private volatile bool _stop;
    private volatile bool _resyncRequested;
    private bool _gone;
    private int _resyncWaiters;
    private uint _seq = 1;

    public long Messages;
    public long Malformed;
    public long Overruns;
    public long Resyncs;
    public long LastResyncRemoved;
    public long LastResyncObjects;
    public double LastResyncSeconds;
    /// <summary>Set while a dump is being applied (the start-up dump of a big table).</summary>
    public volatile bool Syncing;
    /// <summary>Objects of the dump in progress applied so far.</summary>
    public long SyncProgress;

    public NetlinkListener(NamespaceSync sync, object routingLock, Func<bool, CommitResult> commit, NetlinkOptions opt, ILogger log)
    {
        _sync = sync;
        _lock = routingLock;
        _commit = commit;
        _opt = opt;
        _log = log;
        _events = new NetlinkSocket(sync.Netns, Nl.AllGroups, opt.ReceiveBuffer);
        _thread = new Thread(Run) { IsBackground = true, Name = $"netlink-{sync.Netns ?? "default"}" };
    }

    public string? Netns => _sync.Netns;
    public NamespaceSync Sync => _sync;

    /// <summary>Initial dump (synchronously, so start-up returns with the FIB filled), then the thread.</summary>
    public void Start()
    {
        Resync();
        _thread.Start();
    }

    public void RequestResync()
    {
        _resyncRequested = true;
        _events.Wake();
    }

    /// <summary>Has the listener's thread resync now and waits for it (lcpctl lcp resync).
    /// Returns the objects dumped, or -1 if it did not finish within <paramref name="timeout"/>.</summary>
    public long ResyncNow(TimeSpan timeout)
    {
        long before = Interlocked.Read(ref Resyncs);
        Interlocked.Increment(ref _resyncWaiters);
        try
        {
            _resyncDone.Reset();
            RequestResync();
            var sw = Stopwatch.StartNew();
            while (Interlocked.Read(ref Resyncs) == before)
            {
                if (sw.Elapsed > timeout || !_thread.IsAlive)
                    return -1;
                _resyncDone.Wait(TimeSpan.FromMilliseconds(100));
            }
            return Interlocked.Read(ref LastResyncObjects);
        }
        finally
        {
            Interlocked.Decrement(ref _resyncWaiters);
        }
    }

    private void Run()
    {
        while (!_stop)
        {
            try
            {
                if (_resyncRequested || _sync.ResyncWanted)
                {
                    _resyncRequested = false;
                    _sync.ResyncWanted = false;
                    Resync();
                }
                // Sleeps until the kernel has news or Dispose/RequestResync wakes it: no periodic
                // wakeups (each one would wait for a CPU that a busy-polling worker may share).
                int n = _events.Receive(_buf, -1);
                if (n == -Eagain || n == -Eintr)
                    continue;
                if (n < 0)
                {
                    if (n == -Enobufs)
                        Interlocked.Increment(ref Overruns);
                    Log.NetlinkReadError(_log, _sync.Netns ?? "default", -n);
                    _resyncRequested = true;
                    continue;
                }
                // Parsed straight into the model; what is already queued is drained too, up to a
                // batch, before one commit.
                lock (_lock)
                {
                    long before = _sync.Messages;
                    var sink = _sync;
                    Interlocked.Add(ref Malformed, NetlinkParser.Parse(_buf.AsSpan(0, n), ref sink));
                    while (_sync.Messages - before < _opt.BatchEvents)
                    {
                        int m = _events.Receive(_buf, 0);
                        if (m <= 0)
                        {
                            if (m == -Enobufs)
                            {
                                Interlocked.Increment(ref Overruns);
                                _resyncRequested = true;
                            }
                            break;
                        }
                        Interlocked.Add(ref Malformed, NetlinkParser.Parse(_buf.AsSpan(0, m), ref sink));
                    }
                    CommitLocked();
                    Interlocked.Add(ref Messages, _sync.Messages - before);
                }
            }
            catch (DpdkException e) when (e.Errno == 2 && _sync.Netns is not null)
            {
                // The namespace is gone (deleted under us): the pairs in it go down and this
                // listener is replaced when it comes back.
                if (!_gone)
                    Log.NetnsGone(_log, _sync.Netns);
                _gone = true;
                _resyncRequested = true;
                Thread.Sleep(500);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log.NetlinkFailed(_log, _sync.Netns ?? "default", e);
                _resyncRequested = true;
                Thread.Sleep(100);
            }
        }
    }

    /// <param name="deferSecondCopy">see <see cref="FibWriter.Commit"/>: the end of a dump</param>
    private void CommitLocked(bool deferSecondCopy = false)
    {
        _sync.Flush();
        _commit(deferSecondCopy);
        _sync.AfterCommit();
    }

    /// <summary>Drains the event socket, then dumps every kind on a fresh socket into the model
    /// between begin-sync and end-sync (so what the dump lacks is removed), committing as it goes.</summary>
    private void Resync()
    {
        var sw = Stopwatch.StartNew();
        // Empty the event socket first: after an overrun the kernel marks it congested and stays
        // silent about further drops until the queue has been emptied once. Draining re-arms the
        // ENOBUFS report for anything lost during the dump; what is discarded here the dump covers.
        DrainEvents();
        long objects = 0;
        int removed;
        Syncing = true;
        Interlocked.Exchange(ref SyncProgress, 0);
        try
        {
            using var s = new NetlinkSocket(_sync.Netns, 0, _opt.ReceiveBuffer);
            lock (_lock)
                _sync.BeginSync();
            var progress = new Progress(_opt.ProgressEvery);
            // Order: links and rules first (they decide which tables ports forward in), then
            // addresses, nexthop objects before the routes that name them, neighbours last.
            objects += Dump(s, Nl.GetLink, Nl.AfUnspec, progress);
            objects += Dump(s, Nl.GetRule, Nl.AfInet, progress);
            objects += Dump(s, Nl.GetRule, Nl.AfInet6, progress);
            lock (_lock)
                _sync.Flush();
            objects += Dump(s, Nl.GetAddr, Nl.AfUnspec, progress);
            objects += Dump(s, Nl.GetNexthop, Nl.AfUnspec, progress);
            objects += Dump(s, Nl.GetRoute, Nl.AfInet, progress);
            objects += Dump(s, Nl.GetRoute, Nl.AfInet6, progress);
            objects += Dump(s, Nl.GetNeigh, Nl.AfUnspec, progress);
            lock (_lock)
            {
                removed = _sync.EndSync();
                CommitLocked(deferSecondCopy: true);
            }
        }
        finally
        {
            Syncing = false;
        }
        // The dump is in the published copy and forwarding; the other copy gets it now.
        var second = Stopwatch.StartNew();
        long writes;
        bool caughtUp;
        lock (_lock)
        {
            writes = _sync.Fib.OwedWrites;
            caughtUp = _sync.Fib.CatchUp();
        }
        if (caughtUp)
            Log.SecondCopy(_log, _sync.Netns ?? "default", writes, Math.Round(second.Elapsed.TotalSeconds, 3));
        Interlocked.Increment(ref Resyncs);
        Interlocked.Exchange(ref LastResyncRemoved, removed);
        Interlocked.Exchange(ref LastResyncObjects, objects);
        LastResyncSeconds = sw.Elapsed.TotalSeconds;
        Log.Resynced(_log, _sync.Netns ?? "default", objects, removed, Math.Round(sw.Elapsed.TotalSeconds, 2),
            (long)(objects / Math.Max(sw.Elapsed.TotalSeconds, 1e-3)));
        if (Volatile.Read(ref _resyncWaiters) > 0)
            _resyncDone.Set();
    }

    private sealed class Progress(TimeSpan every)
    {
        public readonly Stopwatch Clock = Stopwatch.StartNew();
        public TimeSpan Next = every;
        public readonly TimeSpan Every = every;
    }

    private void DrainEvents()
    {
        for (int i = 0; i < 1_000_000; i++)
        {
            int n = _events.Receive(_buf, 0);
            if (n == -Enobufs)
            {
                Interlocked.Increment(ref Overruns);
                continue;
            }
            if (n <= 0)
                return;
        }
    }

    /// <summary>Replies of one dump request: messages go to the model, the end is noted.</summary>
    private struct DumpSink(NamespaceSync ns, uint seq) : INetlinkSink
    {
        public bool Done;
        public int Errno;

        public readonly void Link(in LinkMsg m) => ns.Link(m);
        public readonly void Address(in AddrMsg m) => ns.Address(m);
        public readonly void Route(in RouteMsg m) => ns.Route(m);
        public readonly void Neighbor(in NeighMsg m) => ns.Neighbor(m);
        public readonly void Nexthop(in NexthopMsg m) => ns.Nexthop(m);
        public readonly void Rule(in RuleMsg m) => ns.Rule(m);

        public void Control(ushort type, int errno, uint s)
        {
            if (s != seq)
                return;
            Done = true;
            Errno = errno;
        }
    }

    private long Dump(NetlinkSocket s, ushort type, byte family, Progress progress)
    {
        uint seq = ++_seq;
        s.Send(NetlinkWriter.DumpRequest(type, family, seq));
        long deadline = Environment.TickCount64 + 60_000;
        long start = _sync.Messages, sinceCommit = 0;
        var sink = new DumpSink(_sync, seq);
        while (Environment.TickCount64 < deadline)
        {
            int n = s.Receive(_buf, 1000);
            if (n == -Eagain || n == -Eintr)
                continue;
            if (n < 0)
                throw new IOException($"netlink dump ({type}) failed: {Eal.StrError(-n)}");
            lock (_lock)
            {
                long before = _sync.Messages;
                Interlocked.Add(ref Malformed, NetlinkParser.Parse(_buf.AsSpan(0, n), ref sink));
                sinceCommit += _sync.Messages - before;
                Interlocked.Add(ref SyncProgress, _sync.Messages - before);
                if (sinceCommit >= _opt.BatchEvents)
                {
                    // Adds and changes are safe to write mid-dump (only the end-sync deletes):
                    // into the unpublished copy, published at the end (or by any commit before).
                    _sync.Flush();
                    _sync.Fib.Stage(out _);
                    sinceCommit = 0;
                }
            }
            if (progress.Clock.Elapsed >= progress.Next)
            {
                progress.Next += progress.Every;
                long done = Interlocked.Read(ref SyncProgress);
                Log.DumpProgress(_log, _sync.Netns ?? "default", done, Math.Round(progress.Clock.Elapsed.TotalSeconds, 1),
                    (long)(done / progress.Clock.Elapsed.TotalSeconds), _sync.Fib.Count4 + _sync.Fib.Count6);
            }
            if (sink.Done)
            {
                // EOPNOTSUPP/EINVAL: a kernel without the object kind (nexthops before 5.3).
                if (sink.Errno != 0 && sink.Errno is not (95 or 22))
                    throw new IOException($"netlink dump ({type}) failed: {Eal.StrError(sink.Errno)}");
                return _sync.Messages - start;
            }
        }
        throw new IOException("netlink dump timed out");
    }

    public void Dispose()
    {
        _stop = true;
        _events.Wake();
        if (_thread.IsAlive)
            _thread.Join(2000);
        _events.Dispose();
        _resyncDone.Dispose();
    }
}
