using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Neighbours (RTM_NEWNEIGH/DELNEIGH) of the mirrors: a resolved one gives its
/// adjacency its MAC (every route through it forwards) and a host route to it in every table
/// that reaches it as Linux would: a table with an attached (connected) route through its
/// mirror covering it (main, for ports bound by a rule; the VRF's table, for a VRF member). An
/// unresolved or deleted one makes them glean (punt, Linux resolves). Linux has no neighbours on
/// a TUN mirror: there, the workers' learning stands in for it (<see cref="Learned"/>: each
/// source address seen on the port with its MAC), and other next hops use the link's peer.</summary>
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
        public bool Learned; // from the workers (a TUN mirror's port), not from Linux
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

    /// <summary>A source address the workers saw on a TUN mirror's port, with the frame's source
    /// MAC: it becomes a resolved neighbour (its adjacency rewrites to that MAC, and it gets a host
    /// route where an attached prefix of the mirror covers it). Returns whether anything changed.
    /// Learned neighbours are kept until the mirror goes (netlink resyncs do not sweep them).</summary>
    public bool Learned(MirrorInfo mirror, bool v6, UInt128 ip, ulong mac)
    {
        if (!mirror.Tun)
            return false; // what comes here the learn table took: a unicast source and MAC
        var key = new NeighKey(mirror.IfIndex, v6, ip);
        if (_neighs.TryGetValue(key, out NeighState? s) && s.Resolved && s.Mac == mac)
            return false;
        if (s is null)
            _neighs[key] = s = new NeighState { Learned = true };
        s.Resolved = true;
        s.Mac = mac;
        s.State = Nl.NudReachable;
        Apply(key, s);
        return true;
    }

    private void Apply(NeighKey key, NeighState s)
    {
        MirrorInfo? mirror = _ns.Mirror(key.IfIndex);
        if (mirror is null || mirror.Tun != s.Learned)
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
        // What the workers learned belonged to that mirror's link.
        foreach (NeighKey k in _neighs.Where(kv => kv.Key.IfIndex == mirror.IfIndex && kv.Value.Learned).Select(kv => kv.Key).ToList())
            _neighs.Remove(k);
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
        var stale = _neighs.Where(kv => kv.Value.Mark != _ns.Epoch && !kv.Value.Learned).Select(kv => kv.Key).ToList();
        foreach (NeighKey k in stale)
            Delete(new NeighMsg { Deleted = true, IfIndex = k.IfIndex, V6 = k.V6, Ip = k.Ip });
        return stale.Count;
    }
}
