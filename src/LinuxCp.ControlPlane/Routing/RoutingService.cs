using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Fib;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Routing;

/// <summary>Keeps the dataplane FIB equal to Linux: one netlink listener per namespace that
/// holds mirrors, all writing one FIB under one lock.</summary>
public sealed class RoutingService : IDisposable
{
    private readonly FibWriter _fib;
    private readonly PairManager _pairs;
    private readonly NetlinkOptions _opt;
    private readonly ILoggerFactory _logs;
    private readonly Dictionary<string, (NetlinkListener Listener, RouteSync Sync)> _listeners = [];
    private bool _started;
    private Timer? _peerTimer;

    public object Lock { get; } = new();
    public FibWriter Fib => _fib;

    public RoutingService(FibWriter fib, PairManager pairs, NetlinkOptions opt, ILoggerFactory logs)
    {
        _fib = fib;
        _pairs = pairs;
        _opt = opt;
        _logs = logs;
        _pairs.PairChanged += OnPairChanged;
    }

    private static string Key(string? ns) => ns ?? "";

    public void Start()
    {
        _started = true;
        foreach (Pair p in _pairs.Pairs())
            EnsureListener(p.Netns);
        UpdatePeerTimer();
    }

    /// <summary>The peer-MAC poll runs only while there are TUN pairs: a periodic timer wakes
    /// control threads, which share a CPU with a worker in small deployments.</summary>
    private void UpdatePeerTimer()
    {
        bool want = _pairs.Pairs().Any(p => p.Tun);
        lock (Lock)
        {
            if (want && _peerTimer is null)
                _peerTimer = new Timer(_ => RefreshPeers(), null, PeerPollMs, PeerPollMs);
            else if (!want && _peerTimer is not null)
            {
                _peerTimer.Dispose();
                _peerTimer = null;
            }
        }
    }

    /// <summary>How often the peer MACs learned on point-to-point ports are taken into the FIB.</summary>
    public const int PeerPollMs = 100;

    /// <summary>Point-to-point (TUN) links run no ARP/ND: the workers learn the peer's MAC from
    /// what it sends, and this makes it the adjacency of every path through the port. Skipped
    /// when the FIB is busy (a netlink batch holds the lock): the next tick catches up.</summary>
    private void RefreshPeers()
    {
        if (!Monitor.TryEnter(Lock))
            return;
        try
        {
            if (_peerTimer is not null && _fib.RefreshPeers())
                _fib.Commit();
        }
        finally
        {
            Monitor.Exit(Lock);
        }
    }

    private void EnsureListener(string? ns)
    {
        if (_listeners.ContainsKey(Key(ns)))
            return;
        var sync = new RouteSync(_fib, _pairs, ns);
        var l = new NetlinkListener(ns, sync, Lock, Commit, _opt, _logs.CreateLogger<NetlinkListener>());
        _listeners[Key(ns)] = (l, sync);
        l.Start();
    }

    private void Commit() => _fib.Commit();

    private void OnPairChanged(Pair p, bool created)
    {
        if (!_started)
            return;
        UpdatePeerTimer();
        if (!created)
        {
            lock (Lock)
            {
                _fib.ForgetPort(p.Phy.Id);
                foreach (var (_, s) in _listeners.Values)
                    s.RefreshPairs();
                _fib.Commit();
            }
        }
        if (_listeners.TryGetValue(Key(p.Netns), out var entry))
            entry.Listener.RequestResync();
        else if (created)
            EnsureListener(p.Netns);
    }

    /// <summary>Resyncs every namespace now (lcpctl lcp resync). Returns objects dumped.</summary>
    public int ResyncAll() => _listeners.Values.Sum(l => l.Listener.ResyncNow());

    public IEnumerable<NetlinkListener> Listeners => _listeners.Values.Select(v => v.Listener);

    public void Dispose()
    {
        _pairs.PairChanged -= OnPairChanged;
        _started = false;
        lock (Lock)
        {
            _peerTimer?.Dispose(); // a tick still queued finds it null and does nothing
            _peerTimer = null;
        }
        foreach (var (l, s) in _listeners.Values)
        {
            l.Dispose();
            lock (Lock)
                s.Dispose();
        }
        _listeners.Clear();
    }
}
