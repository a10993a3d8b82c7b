using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Neighbours (RTM_NEWNEIGH/DELNEIGH) of the mirrors: a resolved one gives its
/// adjacency its MAC (every route through it forwards) and a host route to it in the table the
/// mirror's port forwards in; an unresolved or deleted one makes them glean (punt, Linux
/// resolves). TUN mirrors have no neighbours (their one adjacency is the link's peer).</summary>
public sealed class NeighborHandler : INetlinkHandler<NeighMsg>
{
    private readonly record struct NeighKey(int IfIndex, bool V6, UInt128 Ip);

    private sealed class NeighState
    {
        public ulong Mac;
        public bool Resolved;
        public ushort State;
        public byte Mark;
        public int Table = -1; // where its host route is (-1: none)
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
            RemoveHostRoute(key, s);
            return;
        }
        _ns.Fib.SetNeighbor(mirror.Port, key.V6, key.Ip, s.Resolved ? new MacAddress(s.Mac) : null);
        int table = s.Resolved ? _ns.MirrorTableIndex(key.IfIndex) : -1;
        if (table != s.Table)
            RemoveHostRoute(key, s);
        if (table >= 0)
        {
            _ns.Fib.Set(table, Prefix.Host(key.V6, key.Ip), RouteSource.Neighbor,
                RouteTarget.Via(key.V6, new NextHop(mirror.Port, key.Ip, 1)));
            s.Table = table;
        }
    }

    private void RemoveHostRoute(NeighKey key, NeighState s)
    {
        if (s.Table < 0)
            return;
        _ns.Fib.Set(s.Table, Prefix.Host(key.V6, key.Ip), RouteSource.Neighbor, null);
        s.Table = -1;
    }

    /// <summary>A mirror went away: its neighbours leave the FIB (the model keeps them in case it comes back).</summary>
    internal void ForgetMirror(MirrorInfo mirror)
    {
        foreach (var (k, s) in _neighs)
            if (k.IfIndex == mirror.IfIndex)
                RemoveHostRoute(k, s);
    }

    /// <summary>Mirrors changed: every neighbour is translated again.</summary>
    internal void Retranslate()
    {
        foreach (var (k, s) in _neighs)
            Apply(k, s);
    }

    /// <summary>Ports moved between tables: host routes follow them.</summary>
    internal void Rehome()
    {
        foreach (var (k, s) in _neighs)
            if (s.Table >= 0 && s.Table != _ns.MirrorTableIndex(k.IfIndex))
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
