using DpdkSharp;
using LinuxCp.ControlPlane.Host;
using LinuxCp.ControlPlane.Netlink;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>What <see cref="LinkSync"/> knows of one pair: the port's link as last read, the
/// carrier it gave the mirror (null: not yet), whether a change waits out the hold-down, how
/// many changes reached the mirror and when the last did, and the last error setting it.</summary>
public sealed record LinkSyncStatus(bool PortLinkUp, bool? MirrorCarrier, bool Pending, long Changes, DateTime? LastChange, string? Error);

/// <summary>lcp-sync: a port's link state goes to its mirror's carrier, so that Linux (and the
/// routing daemons on the mirror) see a cable pulled at once: link down sets the mirror's
/// carrier off (NO-CARRIER: Linux flushes its neighbours there, BIRD/FRR drop sessions that
/// check the link), up restores it. A change reaches the mirror once it has lasted the hold-down
/// (a flap shorter than that is never seen by Linux). Polls every port on a control thread: the
/// link of a port that reads a kernel interface (af_packet, af_xdp, pcap) is that interface's
/// carrier, which those PMDs do not report; any other port's is the PMD's; a sub-interface's is
/// its parent's.</summary>
public sealed class LinkSync : IDisposable
{
    private readonly Func<IReadOnlyList<Pair>> _pairs;
    private readonly ILogger _log;
    private readonly object _lock = new();
    private readonly Dictionary<ushort, State> _state = [];
    private readonly ManualResetEventSlim _stop = new();
    private Thread? _thread;

    /// <param name="pairs">the pairs now (<see cref="PairManager.Pairs"/>)</param>
    public LinkSync(Func<IReadOnlyList<Pair>> pairs, ILogger log, TimeSpan poll, TimeSpan holdDown)
    {
        _pairs = pairs;
        _log = log;
        Poll = poll;
        HoldDown = holdDown;
    }

    public TimeSpan Poll { get; }

    public TimeSpan HoldDown { get; }

    /// <summary>Reads a port's link (tests replace it).</summary>
    public Func<PortInfo, bool> ReadLink { get; init; } = p => PortLink(p, HostFacts.Real);

    /// <summary>Give mirrors their port's carrier (off with --no-link-sync: the thread then only
    /// runs <see cref="OnTick"/>).</summary>
    public bool SyncCarrier { get; init; } = true;

    /// <summary>More work at every poll (the bonds' member watch).</summary>
    public Action? OnTick { get; init; }

    /// <summary>Gives a mirror its carrier (tests replace it).</summary>
    public Action<Pair, bool> SetCarrier { get; init; } = (p, up) =>
    {
        if (p.VethPeer is string dp)
        {
            // A veth has no carrier of its own to set: its peer's admin state is its carrier.
            NetlinkRequest.Run(null, NetlinkRequest.SetLink(Netns.IfIndex(null, dp), up: up), $"carrier {(up ? "on" : "off")} on {p.HostIf} ({dp} {(up ? "up" : "down")})");
            return;
        }
        NetlinkRequest.Run(p.Netns, NetlinkRequest.SetLink(p.HostIfIndex, carrier: up), $"carrier {(up ? "on" : "off")} on {p.HostIf}");
    };

    private sealed class State
    {
        public bool Observed;
        public long ObservedSinceMs;
        public bool? Applied;
        public int MirrorIfIndex;
        public long Changes;
        public DateTime? LastChange;
        public string? Error;
    }

    /// <summary>The link of a port: the carrier of the kernel interface it reads, when it reads
    /// one, and the PMD's link status otherwise.</summary>
    public static bool PortLink(PortInfo phy, HostFacts host)
    {
        if (phy.Sub is SubInfo sub)
        {
            // A sub-interface's link is its parent's.
            ushort id = sub.Parent;
            phy = new PortInfo(id, EthPort.Name(id), PortKind.Phy, phy.Mac, EthPort.Driver(id));
        }
        if (PairManager.KernelInterface(phy) is string kif)
            return KernelCarrier(phy.Attached?.Netns, kif) ?? true;
        return EthPort.Link(phy.Id).Up;
    }

    /// <summary>Whether a kernel interface has carrier (IFF_LOWER_UP), asked over netlink in its
    /// namespace (null: ours): /sys shows the namespace it was mounted in, which under `unshare
    /// --net` or in a container is not lcpd's. Null when it cannot be told (no such interface, the
    /// namespace is gone): callers do not take a link down on that.</summary>
    public static bool? KernelCarrier(string? netns, string ifname)
    {
        try
        {
            return LinkQuery.Get(netns, ifname) is { } l ? (l.Flags & Nl.IffLowerUp) != 0 : null;
        }
        catch (Exception e) when (e is IOException or DpdkException)
        {
            return null;
        }
    }

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "lcp-link-sync" };
        _thread.Start();
    }

    private void Run()
    {
        while (!_stop.Wait(Poll))
        {
            try
            {
                OnTick?.Invoke();
                if (SyncCarrier)
                    Tick(Environment.TickCount64);
            }
            catch (Exception e) when (e is DpdkException or InvalidOperationException or IOException)
            {
                Log.LinkSyncFailed(_log, e.Message); // a port removed while it was read: the next tick sees the new set
            }
        }
    }

    /// <summary>One pass over the pairs at time <paramref name="nowMs"/> (milliseconds, monotonic).</summary>
    /// <summary>Drops the state of ports that no longer have a pair (under _lock).</summary>
    private void ForgetGonePairs(IReadOnlyList<Pair> pairs)
    {
        List<ushort>? gone = null;
        foreach (ushort k in _state.Keys)
        {
            bool found = false;
            for (int i = 0; i < pairs.Count && !found; i++)
                found = pairs[i].Phy.Id == k;
            if (!found)
                (gone ??= []).Add(k);
        }
        if (gone is not null)
            foreach (ushort k in gone)
                _state.Remove(k);
    }

    public void Tick(long nowMs)
    {
        // Every 100 ms: loops by index over the pair manager's cached list, so that a tick
        // allocates nothing while nothing changes.
        IReadOnlyList<Pair> pairs = _pairs();
        lock (_lock)
            ForgetGonePairs(pairs);
        for (int i = 0; i < pairs.Count; i++)
        {
            Pair p = pairs[i];
            if (p.State != PairState.Up)
                continue;
            bool up = ReadLink(p.Phy);
            bool apply;
            lock (_lock)
            {
                if (!_state.TryGetValue(p.Phy.Id, out State? s))
                    _state[p.Phy.Id] = s = new State { Observed = up, ObservedSinceMs = nowMs };
                if (s.MirrorIfIndex != p.HostIfIndex)
                {
                    // A new mirror (created, re-created or adopted) starts with the kernel's
                    // default carrier: give it the port's at once.
                    s.MirrorIfIndex = p.HostIfIndex;
                    s.Applied = null;
                }
                if (up != s.Observed)
                {
                    s.Observed = up;
                    s.ObservedSinceMs = nowMs;
                }
                apply = s.Applied is null || (s.Applied != s.Observed && nowMs - s.ObservedSinceMs >= (long)HoldDown.TotalMilliseconds);
            }
            if (!apply)
                continue;
            string? error = null;
            try
            {
                SetCarrier(p, up);
            }
            catch (IOException e)
            {
                error = e.Message;
            }
            lock (_lock)
            {
                if (!_state.TryGetValue(p.Phy.Id, out State? s))
                    continue;
                bool first = s.Applied is null;
                if (error is null)
                {
                    if (!first)
                    {
                        s.Changes++;
                        s.LastChange = DateTime.UtcNow;
                    }
                    s.Applied = up;
                    s.Error = null;
                    if (!first || !up)
                        Log.CarrierSynced(_log, p.Phy.Name, up ? "up" : "down", p.HostIf, up ? "on" : "off");
                }
                else if (s.Error != error)
                {
                    s.Error = error; // said once; retried every poll
                    Log.CarrierFailed(_log, p.Phy.Name, p.HostIf, error);
                }
            }
        }
    }

    /// <summary>The sync state of a port's pair, or null when it has none (yet).</summary>
    public LinkSyncStatus? Status(ushort port)
    {
        lock (_lock)
        {
            if (!_state.TryGetValue(port, out State? s))
                return null;
            return new LinkSyncStatus(s.Observed, s.Applied, s.Applied is bool a && a != s.Observed, s.Changes, s.LastChange, s.Error);
        }
    }

    public void Dispose()
    {
        _stop.Set();
        _thread?.Join();
        _stop.Dispose();
    }
}
