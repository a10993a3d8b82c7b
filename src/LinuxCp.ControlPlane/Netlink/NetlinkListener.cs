using DpdkSharp;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>Settings of the netlink listeners.</summary>
public sealed record NetlinkOptions
{
    /// <summary>Socket receive buffer (SO_RCVBUFFORCE). A full table arrives in bursts.</summary>
    public int ReceiveBuffer { get; init; } = 64 << 20;

    /// <summary>Most events applied before a FIB commit (one grace period per commit).</summary>
    public int BatchEvents { get; init; } = 20_000;
}

/// <summary>Follows one namespace: subscribes, dumps, applies notifications in batches, and
/// resyncs by dump (mark, apply, sweep) after an overrun or a read error, or on request. Runs on
/// its own thread; FIB writes happen under the shared routing lock.</summary>
public sealed class NetlinkListener : IDisposable
{
    private const int Enobufs = 105, Eagain = 11, Eintr = 4;

    private readonly string? _netns;
    private readonly RouteSync _sync;
    private readonly object _lock;
    private readonly Action _commit;
    private readonly NetlinkOptions _opt;
    private readonly ILogger _log;
    private readonly Thread _thread;
    private readonly NetlinkSocket _events;
    private volatile bool _stop;
    private volatile bool _resyncRequested;
    private uint _seq = 1;

    public long Messages;
    public long Malformed;
    public long Overruns;
    public long Resyncs;
    public long LastResyncRemoved;

    public NetlinkListener(string? netns, RouteSync sync, object routingLock, Action commit, NetlinkOptions opt, ILogger log)
    {
        _netns = netns;
        _sync = sync;
        _lock = routingLock;
        _commit = commit;
        _opt = opt;
        _log = log;
        _events = new NetlinkSocket(netns, Nl.AllGroups, opt.ReceiveBuffer);
        _thread = new Thread(Run) { IsBackground = true, Name = $"netlink-{netns ?? "default"}" };
    }

    public string? Netns => _netns;

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

    /// <summary>Runs a resync now on the caller's thread.</summary>
    public int ResyncNow() => Resync();

    private void Run()
    {
        var buf = new byte[1 << 20];
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
                int n = _events.Receive(buf, -1);
                if (n == -Eagain || n == -Eintr)
                    continue;
                if (n < 0)
                {
                    if (n == -Enobufs)
                        Interlocked.Increment(ref Overruns);
                    Log.NetlinkReadError(_log, _netns ?? "default", -n);
                    _resyncRequested = true;
                    continue;
                }
                // Parsed straight into the model (routes as structs: nothing allocated per
                // route); what is already queued is drained too, up to a batch, before one commit.
                lock (_lock)
                {
                    var sink = new ApplySink(_sync);
                    Interlocked.Add(ref Malformed, NetlinkParser.Parse(buf.AsSpan(0, n), ref sink));
                    while (sink.Count < _opt.BatchEvents)
                    {
                        int m = _events.Receive(buf, 0);
                        if (m <= 0)
                        {
                            if (m == -Enobufs)
                            {
                                Interlocked.Increment(ref Overruns);
                                _resyncRequested = true;
                            }
                            break;
                        }
                        Interlocked.Add(ref Malformed, NetlinkParser.Parse(buf.AsSpan(0, m), ref sink));
                    }
                    _commit();
                    Interlocked.Add(ref Messages, sink.Count);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log.NetlinkFailed(_log, _netns ?? "default", e);
                _resyncRequested = true;
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>Dumps links, addresses, routes and neighbours on a fresh socket, applies them
    /// over the live state, removes what the dump no longer has, commits once.</summary>
    private int Resync()
    {
        // Empty the event socket first: after an overrun the kernel marks it congested and stays
        // silent about further drops until the queue has been emptied once. Draining re-arms the
        // ENOBUFS report for anything lost during the dump; what is discarded here the dump covers.
        DrainEvents();
        var dump = new List<NlEvent>(4096);
        using (var s = new NetlinkSocket(_netns, 0, _opt.ReceiveBuffer))
        {
            Dump(s, Nl.GetLink, Nl.AfUnspec, dump);
            Dump(s, Nl.GetAddr, Nl.AfUnspec, dump);
            Dump(s, Nl.GetNeigh, Nl.AfUnspec, dump);
            Dump(s, Nl.GetRoute, Nl.AfInet, dump);
            Dump(s, Nl.GetRoute, Nl.AfInet6, dump);
        }
        int removed;
        lock (_lock)
        {
            _sync.RefreshPairs();
            foreach (NlEvent e in dump)
                _sync.Apply(e);
            removed = _sync.Sweep(RouteSync.Collect(dump));
            _commit();
        }
        Interlocked.Increment(ref Resyncs);
        Interlocked.Exchange(ref LastResyncRemoved, removed);
        Log.Resynced(_log, _netns ?? "default", dump.Count, removed);
        return dump.Count;
    }

    private void DrainEvents()
    {
        var buf = new byte[1 << 16];
        for (int i = 0; i < 1_000_000; i++)
        {
            int n = _events.Receive(buf, 0);
            if (n == -Enobufs)
            {
                Interlocked.Increment(ref Overruns);
                continue;
            }
            if (n <= 0)
                return;
        }
    }

    private void Dump(NetlinkSocket s, ushort type, byte family, List<NlEvent> into)
    {
        uint seq = ++_seq;
        s.Send(NetlinkParser.DumpRequest(type, family, seq));
        var buf = new byte[1 << 20];
        var events = new List<NlEvent>();
        long deadline = Environment.TickCount64 + 30_000;
        while (Environment.TickCount64 < deadline)
        {
            int n = s.Receive(buf, 1000);
            if (n == -Eagain || n == -Eintr)
                continue;
            if (n < 0)
                throw new IOException($"netlink dump failed: errno {-n}");
            events.Clear();
            Interlocked.Add(ref Malformed, NetlinkParser.Parse(buf.AsSpan(0, n), events));
            foreach (NlEvent e in events)
            {
                if (e is ControlEvent c)
                {
                    if (c.Type == Nl.Done || c.Errno != 0)
                        return;
                    continue;
                }
                into.Add(e);
            }
        }
        throw new IOException("netlink dump timed out");
    }

    /// <summary>Applies each parsed message to the namespace's model as it is parsed.</summary>
    private struct ApplySink(RouteSync sync) : INetlinkSink
    {
        public int Count;

        public void Route(in RouteMsg route, ReadOnlySpan<RouteNextHop> hops)
        {
            sync.ApplyRoute(route, hops);
            Count++;
        }

        public void Event(NlEvent e)
        {
            sync.Apply(e);
            Count++;
        }
    }

    public void Dispose()
    {
        _stop = true;
        _events.Wake();
        if (_thread.IsAlive)
            _thread.Join(2000);
        _events.Dispose();
    }
}
