using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Routing;

/// <summary>Keeps the dataplane FIB equal to Linux: one netlink listener per namespace that
/// holds mirrors, all writing one FIB under one lock. Each namespace is a domain of tables (its
/// main table, and the tables its ports are bound to); the default namespace's main table is
/// the FIB's default table. Also watches the mirrors' namespaces, and re-creates mirrors that
/// were lost when it can.</summary>
public sealed class RoutingService : IDisposable
{
    private readonly FibWriter _fib;
    private readonly PairManager _pairs;
    private readonly NetlinkOptions _opt;
    private readonly SyncOptions _syncOpt;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    // Concurrent: the API reads it while pair events and the namespace timer change it.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (NetlinkListener Listener, NamespaceSync Sync, ulong Inode)> _listeners = new();
    // Serialises Start with pair events, which add and remove listeners (taken before any other lock).
    private readonly object _listenersGate = new();
    private readonly Dictionary<string, uint> _domains = [];
    // Pair work that netlink events ask for (mark a pair down, move a port to a table) runs on
    // a thread of its own: pair events come back into the namespace models, which must not be
    // re-entered while they parse, and a listener must never wait for itself.
    private readonly System.Collections.Concurrent.BlockingCollection<Action> _work = new(1024);
    private readonly Thread _worker;
    private readonly Dictionary<string, long> _warned = [];
    private bool _started;
    private Timer? _peerTimer;
    private readonly List<LearnedNeighbor> _learned = [];
    private Timer? _nsTimer;

    public object Lock { get; } = new();
    public FibWriter Fib => _fib;

    /// <summary>The FIB's default table: the main table of this namespace (the pairs' default).</summary>
    public static TableId DefaultTable => new(0, Nl.TableMain);

    public RoutingService(FibWriter fib, PairManager pairs, NetlinkOptions opt, ILoggerFactory logs, SyncOptions? syncOptions = null)
    {
        _fib = fib;
        _pairs = pairs;
        _opt = opt;
        _syncOpt = syncOptions ?? new SyncOptions();
        _logs = logs;
        _log = logs.CreateLogger<RoutingService>();
        _domains[Key(pairs.DefaultNetns)] = 0;
        _fib.Warn ??= Warn;
        _pairs.PairChanged += OnPairChanged;
        _worker = new Thread(WorkLoop) { IsBackground = true, Name = "lcp-routing-work" };
        _worker.Start();
    }

    private void Defer(Action a)
    {
        if (!_work.TryAdd(a))
            Warn("routing: deferred pair work queue full; an action was dropped (lcp resync repairs)");
    }

    private void WorkLoop()
    {
        foreach (Action a in _work.GetConsumingEnumerable())
        {
            try
            {
                a();
            }
            catch (Exception e) when (e is PairException or IOException or DpdkSharp.DpdkException or InvalidOperationException)
            {
                Warn($"routing: {e.Message}");
            }
        }
    }

    /// <summary>Waits until deferred pair work queued so far has run (tests, resync).</summary>
    public bool Drain(TimeSpan timeout)
    {
        using var done = new ManualResetEventSlim();
        if (!_work.TryAdd(done.Set))
            return false;
        return done.Wait(timeout);
    }

    private static string Key(string? ns) => ns ?? "";

    /// <summary>A one-line warning, at most once a minute per text (FIB refusals can come by the thousand).</summary>
    internal void Warn(string message)
    {
        long now = Environment.TickCount64;
        lock (_warned)
        {
            if (_warned.TryGetValue(message, out long last) && now - last < 60_000)
                return;
            _warned[message] = now;
        }
        Log.FibWarning(_log, message);
    }

    /// <param name="idleCpuHelper">Before the workers run: the start-up dumps' second FIB copy is
    /// written by a helper thread alongside (see <see cref="FibWriter.BeginShadowLoads"/>), which
    /// runs this first (to move to a CPU the workers will use but do not yet); null: no helper.</param>
    public void Start(Action? idleCpuHelper = null)
    {
        lock (_listenersGate)
        {
            _started = true;
            if (idleCpuHelper is not null)
            {
                lock (Lock)
                    _fib.BeginShadowLoads(idleCpuHelper);
            }
            try
            {
                foreach (Pair p in _pairs.Pairs())
                    EnsureListener(p.Netns);
            }
            finally
            {
                lock (Lock)
                    _fib.EndShadowLoads();
            }
        }
        UpdatePeerTimer();
        _nsTimer = new Timer(_ => CheckNamespaces(), null, NamespacePollMs, NamespacePollMs);
    }

    /// <summary>How often the mirrors' namespaces are checked (deleted, or back).</summary>
    public const int NamespacePollMs = 1000;

    private void CheckNamespaces()
    {
        try
        {
            if (_started)
                _pairs.CheckNamespaces();
        }
        catch (Exception e) when (e is PairException or IOException or DpdkSharp.DpdkException)
        {
            Warn($"namespace check: {e.Message}");
        }
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
            if (_peerTimer is null)
                return;
            bool changed = _fib.RefreshPeers();
            // Each source the workers saw on a TUN mirror's port is that mirror's neighbour.
            _learned.Clear();
            _fib.LearnedNeighbors(_learned);
            foreach (LearnedNeighbor n in _learned)
                foreach (var (_, ns, _) in _listeners.Values)
                    if (ns.MirrorOfPort(n.Port) is MirrorInfo m && m.Tun)
                        changed |= ns.Neighbors.Learned(m, n.V6, n.Ip, n.Mac);
            if (changed)
                CommitLocked();
        }
        finally
        {
            Monitor.Exit(Lock);
        }
    }

    private uint DomainOf(string? ns)
    {
        lock (_domains)
        {
            if (!_domains.TryGetValue(Key(ns), out uint d))
                _domains[Key(ns)] = d = (uint)_domains.Count;
            return d;
        }
    }

    private void EnsureListener(string? ns)
    {
        if (_listeners.ContainsKey(Key(ns)))
            return;
        var sync = new NamespaceSync(_fib, DomainOf(ns), ns, _syncOpt)
        {
            Warn = Warn,
            ApplyMirrorLink = (m, up, mtu, mac) =>
            {
                Pair? p = _pairs.FindByMirror(ns, m.IfIndex);
                return p is null ? m.PortMac : _pairs.ApplyMirrorLink(p, up, mtu, mac).Phy.Mac;
            },
            DadFailed = (m, address) => Defer(() => OnDadFailed(ns, m, address)),
            // Pair state changes raise events that come back here: run them after the batch.
            MirrorDeleted = m => Defer(() => _pairs.MarkDown(m.Port, m.IfIndex, $"{m.HostIf} was deleted from outside lcpd (lcp resync re-creates it)")),
            PortTableChanged = (port, index) => Defer(() =>
            {
                _pairs.SetPortTable(port, index);
                if (index == FibSnapshot.PuntTable)
                    return; // said once by the namespace's warning
                TableId t = _fib.TableOf(index);
                Log.PortTable(_log, port.ToString(System.Globalization.CultureInfo.InvariantCulture), t.Table, ns ?? "the default namespace",
                    _listeners.TryGetValue(Key(ns), out var e) && e.Sync.Mirrors.FirstOrDefault(x => x.Port == port) is MirrorInfo mi ? e.Sync.Binding(mi).Source : "");
            }),
        };
        lock (Lock)
            sync.SetMirrors(MirrorsOf(ns));
        var l = new NetlinkListener(sync, Lock, CommitLocked, _opt, _logs.CreateLogger<NetlinkListener>());
        _listeners[Key(ns)] = (l, sync, DpdkSharp.Netns.Inode(ns));
        l.Start();
    }

    /// <summary>IPv6 addresses found DAD-failed on mirrors since start.</summary>
    public long DadFailures;

    private void OnDadFailed(string? ns, MirrorInfo m, string address)
    {
        Interlocked.Increment(ref DadFailures);
        Pair? p = _pairs.FindByMirror(ns, m.IfIndex);
        string? kif = p is null ? null : PairManager.KernelInterface(p.Phy);
        string fix = kif is not null && _pairs.Host.Ipv6Enabled(kif) == true
            ? $"the port's kernel interface {kif} has IPv6 on: sysctl -w net.ipv6.conf.{kif}.disable_ipv6=1, then ip link set {m.HostIf} down; ip link set {m.HostIf} up"
            : $"find the other holder (ip -6 neigh, a duplicate MAC), then re-run DAD: ip link set {m.HostIf} down; ip link set {m.HostIf} up";
        Log.DadFailed(_log, m.HostIf, ns is null ? "the default namespace" : $"netns {ns}", address, fix);
    }

    private IEnumerable<MirrorInfo> MirrorsOf(string? ns) =>
        _pairs.Pairs().Where(p => p.Netns == ns && p.State == PairState.Up && p.HostIfIndex > 0)
            .Select(p => new MirrorInfo(p.HostIfIndex, p.HostIf, p.Phy.Id, p.Tun, p.Phy.Mac, p.Table));

    /// <summary>Commits the FIB (under the routing lock) and reports what an operator must hear of.</summary>
    private CommitResult CommitLocked(bool deferSecondCopy = false)
    {
        CommitResult r = _fib.Commit(deferSecondCopy);
        if (r.Refused != 0 && _fib.RefusedPrefixes != 0)
            Warn($"FIB: {_fib.RefusedPrefixes} prefix(es) refused for lack of table space (see show ip fib summary); they punt to Linux");
        return r;
    }

    private void OnPairChanged(Pair p, PairEvent e)
    {
        lock (_listenersGate)
            OnPairChangedLocked(p, e);
    }

    private void OnPairChangedLocked(Pair p, PairEvent e)
    {
        if (!_started)
            return;
        UpdatePeerTimer();
        bool known = _listeners.TryGetValue(Key(p.Netns), out var entry);
        if (known && e is PairEvent.Recovered && entry.Inode != DpdkSharp.Netns.Inode(p.Netns))
        {
            // The namespace is a new one: its listener's sockets live in the old. Start over.
            RemoveListener(p.Netns);
            known = false;
        }
        if (!known)
        {
            if (e is PairEvent.Created or PairEvent.Recovered)
                EnsureListener(p.Netns);
            return;
        }
        lock (Lock)
        {
            entry.Sync.SetMirrors(MirrorsOf(p.Netns));
            CommitLocked();
            entry.Sync.AfterCommit();
        }
        if (e is PairEvent.Down && p.DownReason?.StartsWith("netns ", StringComparison.Ordinal) == true)
            RemoveListener(p.Netns); // the namespace is gone: what was learnt there leaves the FIB
        else if (e is PairEvent.Created or PairEvent.Recovered)
            entry.Listener.RequestResync(); // the new mirror's addresses, routes and neighbours
    }

    /// <summary>Stops following a namespace and withdraws everything learnt from it.</summary>
    private void RemoveListener(string? ns)
    {
        if (!_listeners.TryRemove(Key(ns), out var entry))
            return;
        entry.Listener.Dispose();
        // The sweep below removes the namespace's links too: that is not a mirror deleted from
        // outside (the pairs there go down for their namespace, with that reason).
        entry.Sync.MirrorDeleted = null;
        entry.Sync.PortTableChanged = null;
        lock (Lock)
        {
            entry.Sync.BeginSync();
            entry.Sync.EndSync(); // nothing marked: every object of the namespace is removed
            CommitLocked();
            entry.Sync.AfterCommit();
            entry.Sync.Dispose();
        }
    }

    /// <summary>Re-creates lost mirrors whose namespace exists, then resyncs every namespace now
    /// (lcpctl lcp resync). Returns objects dumped and the pairs brought back.</summary>
    public (long Objects, int Recovered) ResyncAll()
    {
        int recovered = 0;
        foreach (Pair p in _pairs.Pairs().Where(p => p.State == PairState.Down))
        {
            try
            {
                _pairs.Recreate(p.Phy.Id);
                recovered++;
            }
            catch (PairException e)
            {
                Warn($"pair {p.Phy.Name} <-> {p.HostIf}: {e.Message}");
            }
        }
        long objects = 0;
        foreach (var (l, _, _) in _listeners.Values.ToList())
            objects += Math.Max(0, l.ResyncNow(TimeSpan.FromSeconds(120)));
        Drain(TimeSpan.FromSeconds(10));
        return (objects, recovered);
    }

    public IEnumerable<NetlinkListener> Listeners => _listeners.Values.Select(v => v.Listener);

    /// <summary>Namespaces followed, with their models (for show and verify).</summary>
    public IEnumerable<NamespaceSync> Namespaces => _listeners.Values.Select(v => v.Sync);

    public void Dispose()
    {
        _pairs.PairChanged -= OnPairChanged;
        _started = false;
        _nsTimer?.Dispose();
        _work.CompleteAdding();
        _worker.Join(2000);
        lock (Lock)
        {
            _peerTimer?.Dispose(); // a tick still queued finds it null and does nothing
            _peerTimer = null;
        }
        foreach (var (l, s, _) in _listeners.Values)
        {
            l.Dispose();
            lock (Lock)
                s.Dispose();
        }
        _listeners.Clear();
    }
}
