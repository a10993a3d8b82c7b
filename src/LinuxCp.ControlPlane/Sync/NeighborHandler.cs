using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Neighbours (RTM_NEWNEIGH/DELNEIGH) of the mirrors: a resolved one gives its
/// adjacency its MAC (every route through it forwards) and a host route to it in every table
/// that reaches it as Linux would: a table with an attached (connected) route through its
/// mirror covering it (main, for ports bound by a rule; the VRF's table, for a VRF member). An
/// unresolved or deleted one makes them glean (punt, Linux resolves). TUN mirrors have no
/// neighbours (their one adjacency is the link's peer).</summary>
public sealed class NeighborHandler : INetlinkHandler<NeighMsg>
{
    private readonly record struct NeighKey(int IfIndex, bool V6, UInt128 Ip);

    private sealed class NeighState
    {
        public ulong Mac;
        public bool Resolved;
        public ushort State;
        public byte Mark;
        public ulong Tables; // dense indexes of the tables its host route is in (bit per index)
    }

    private readonly NamespaceSync _ns;
    private readonly Dictionary<NeighKey, NeighState> _neighs = [];

    internal NeighborHandler(NamespaceSync ns) => _ns = ns;

    public int Count => _neighs.Count;

    public void Add(in NeighMsg m)
    {
        var key = new NeighKey(m.IfIndex, m.V6, m.Ip);
        if (!_neighs.TryGetValue(key, out NeighState? s))
            _neighs[key] = s = new NeighState();
        s.Mark = _ns.Epoch;
        s.State = m.State;
        s.Resolved = m.Resolved;
        if (m.HasMac)
            s.Mac = m.Mac;
        Apply(key, s);
    }

    public void Delete(in NeighMsg m)
    {
        var key = new NeighKey(m.IfIndex, m.V6, m.Ip);
        if (!_neighs.Remove(key, out NeighState? s))
            return;
        s.Resolved = false;
        Apply(key, s);
    }

    private void Apply(NeighKey key, NeighState s)
    {
        MirrorInfo? mirror = _ns.Mirror(key.IfIndex);
        if (mirror is null || mirror.Tun)
        {
            SetHostRoutes(key, s, 0, null);
            return;
        }
        _ns.Fib.SetNeighbor(mirror.Port, key.V6, key.Ip, s.Resolved ? new MacAddress(s.Mac) : null);
        ulong want = 0;
        if (s.Resolved)
            foreach (var (table, index) in _ns.ActiveTables)
                if (_ns.Routes.AttachedCovers(mirror.Port, table, key.V6, key.Ip))
                    want |= 1UL << index;
        SetHostRoutes(key, s, want, want == 0 ? null : RouteTarget.Via(key.V6, new NextHop(mirror.Port, key.Ip, 1)));
    }

    private void SetHostRoutes(NeighKey key, NeighState s, ulong want, RouteTarget? target)
    {
        ulong gone = s.Tables & ~want, added = want & ~s.Tables;
        Prefix host = Prefix.Host(key.V6, key.Ip);
        for (int i = 0; i < 64; i++)
        {
            if ((gone & (1UL << i)) != 0)
                _ns.Fib.Set(i, host, RouteSource.Neighbor, null);
            else if ((added & (1UL << i)) != 0)
                _ns.Fib.Set(i, host, RouteSource.Neighbor, target);
        }
        s.Tables = want;
    }

    /// <summary>A mirror went away: its neighbours leave the FIB (the model keeps them in case it comes back).</summary>
    internal void ForgetMirror(MirrorInfo mirror)
    {
        foreach (var (k, s) in _neighs)
            if (k.IfIndex == mirror.IfIndex)
                SetHostRoutes(k, s, 0, null);
    }

    /// <summary>The attached routes through a port changed: its neighbours' host routes follow.</summary>
    internal void AttachedChanged(ushort port)
    {
        foreach (var (k, s) in _neighs)
            if (_ns.Mirror(k.IfIndex) is MirrorInfo m && m.Port == port)
                Apply(k, s);
    }

    /// <summary>Mirrors changed: every neighbour is translated again.</summary>
    internal void Retranslate()
    {
        foreach (var (k, s) in _neighs)
            Apply(k, s);
    }

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        var stale = _neighs.Where(kv => kv.Value.Mark != _ns.Epoch).Select(kv => kv.Key).ToList();
        foreach (NeighKey k in stale)
            Delete(new NeighMsg { Deleted = true, IfIndex = k.IfIndex, V6 = k.V6, Ip = k.Ip });
        return stale.Count;
    }
}
