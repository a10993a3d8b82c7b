using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Routes (RTM_NEWROUTE/DELROUTE) of every table but the local one: kept in the model
/// (<see cref="KernelRoutes"/>), and the one Linux uses per prefix (lowest metric) goes to the
/// FIB when a port forwards in its table. A route naming a kernel nexthop object (RTA_NH_ID)
/// follows the object; otherwise its next hops are translated: through mirrors they forward,
/// through anything else Linux owns they punt. Adding or replacing a route whose next hops were
/// seen before allocates nothing.</summary>
public sealed class RouteHandler : INetlinkHandler<RouteMsg>, IDisposable
{
    private readonly NamespaceSync _ns;
    private readonly KernelRoutes _routes = new();
    private readonly NativeList<(RouteKey Key, uint Metric, byte Tos)> _scratch = new();
    private readonly NativeList<RouteKey> _prefixScratch = new();
    // Translations of interned hop lists, per family, valid while the list (by reference) is
    // the one interned under that id and the mirrors are unchanged.
    private (RouteNextHop[]? Hops, RouteTarget? Target)[] _cache4 = new (RouteNextHop[]?, RouteTarget?)[64];
    private (RouteNextHop[]? Hops, RouteTarget? Target)[] _cache6 = new (RouteNextHop[]?, RouteTarget?)[64];
    private readonly Dictionary<uint, RouteTarget> _objectTargets = [];
    // Attached (connected) prefixes per port and kernel table, of the tables a port forwards in:
    // where a neighbour on that port is reachable from, so where its host route belongs.
    private readonly Dictionary<(ushort Port, uint Table), List<Prefix>> _attached = [];

    internal RouteHandler(NamespaceSync ns) => _ns = ns;

    /// <summary>Whether table <paramref name="table"/> has an attached route through
    /// <paramref name="port"/> covering <paramref name="ip"/>.</summary>
    public bool AttachedCovers(ushort port, uint table, bool v6, UInt128 ip)
    {
        if (!_attached.TryGetValue((port, table), out List<Prefix>? list))
            return false;
        Prefix host = Prefix.Host(v6, ip);
        foreach (Prefix p in list)
            if (p.Contains(host))
                return true;
        return false;
    }

    /// <summary>The port a prefix is attached to: Linux reaches it without a gateway through a
    /// mirror (on a TUN, the route forwards to the link's peer, and the neighbours the workers saw
    /// there get host routes); ushort.MaxValue when it is not attached.</summary>
    private static ushort AttachedPort(RouteTarget? t) =>
        t is { Kind: GroupKind.Glean } ? t.GleanPort
        : t is { Kind: GroupKind.Forward, Nexthop: null, NextHops: [{ Gateway: var gw } hop] } && gw == UInt128.Zero ? hop.Port
        : ushort.MaxValue;

    private void NoteAttached(in RouteKey key, Prefix p, RouteTarget? t)
    {
        // Attached: a prefix Linux reaches without a gateway through a mirror (on a TUN, the route
        // forwards to the link's peer, and the neighbours the workers saw there get host routes).
        ushort port = AttachedPort(t);
        bool changed = false;
        foreach (var (k, list) in _attached)
        {
            if (k.Table == key.Table && k.Port != port && list.Remove(p))
            {
                changed = true;
                _ns.Neighbors.AttachedChanged(k.Port);
            }
        }
        if (port == ushort.MaxValue)
            return;
        if (!_attached.TryGetValue((port, key.Table), out List<Prefix>? mine))
            _attached[(port, key.Table)] = mine = [];
        if (!mine.Contains(p))
        {
            mine.Add(p);
            changed = true;
        }
        if (changed)
            _ns.Neighbors.AttachedChanged(port);
    }

    public int Count => _routes.Count;
    public int HopLists => _routes.Hops.Count;
    public long NativeBytes => _routes.NativeBytes;

    /// <summary>Routes of a table Linux holds, and whether a port forwards in it.</summary>
    public KernelRoutes Store => _routes;

    private static bool Followed(uint table) => table is not (Nl.TableLocal or Nl.TableUnspec);

    public void Add(in RouteMsg r)
    {
        if (!Followed(r.Table))
            return;
        var key = new RouteKey(r.Table, r.Prefix);
        if (r.Prefix.V6 && (r.NlFlags & Nl.FAppend) != 0 && r.NexthopId == 0 && _routes.TryGet(key, r.Metric, r.Tos, out KernelRoute cur))
        {
            // IPv6 adds next hops to a multipath route one message at a time.
            var merged = new List<RouteNextHop>(_routes.Hops.Get(cur.Hops));
            foreach (RouteNextHop h in r.Hops)
                if (!merged.Contains(h))
                    merged.Add(h);
            _routes.Put(key, cur with { Hops = _routes.Hops.Acquire(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(merged)), Mark = _ns.Epoch });
        }
        else
        {
            _routes.Put(key, new KernelRoute
            {
                Metric = r.Metric, Tos = r.Tos, Type = r.Type, Mark = _ns.Epoch, Nexthop = r.NexthopId,
                // A route that follows a nexthop object needs no hop list of its own (compat
                // mode repeats the object's gateways in every route message).
                Hops = r.NexthopId != 0 ? 0 : _routes.Hops.Acquire(r.Hops),
            });
        }
        Recompute(key);
    }

    public void Delete(in RouteMsg r)
    {
        if (!Followed(r.Table))
            return;
        var key = new RouteKey(r.Table, r.Prefix);
        if (r.Prefix.V6 && r.Hops.Length > 0 && r.NexthopId == 0 && _routes.TryGet(key, r.Metric, r.Tos, out KernelRoute cur)
            && _routes.Hops.Get(cur.Hops).Length > 1)
        {
            // IPv6 removes one next hop of a multipath route at a time.
            var left = new List<RouteNextHop>();
            foreach (RouteNextHop h in _routes.Hops.Get(cur.Hops))
            {
                bool gone = false;
                foreach (RouteNextHop d in r.Hops)
                    gone |= d.IfIndex == h.IfIndex && d.Gateway == h.Gateway;
                if (!gone)
                    left.Add(h);
            }
            byte lastFlags = 0;
            if (left.Count > 0)
                _routes.Put(key, cur with { Hops = _routes.Hops.Acquire(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(left)) });
            else
                _routes.Remove(key, r.Metric, r.Tos, out lastFlags);
            Recompute(key, lastFlags);
            return;
        }
        _routes.Remove(key, r.Metric, r.Tos, out byte flags);
        Recompute(key, flags);
    }

    /// <summary>Puts the route Linux uses for a prefix (or nothing) into the FIB, if a port
    /// forwards in its table; notes when it becomes or stops being an attached route
    /// (<paramref name="removedFlags"/>: the prefix's flags when its last route was just removed).</summary>
    private void Recompute(in RouteKey key, byte removedFlags = 0)
    {
        int index = _ns.TableIndex(key.Table);
        if (index < 0)
            return;
        Prefix p = key.Prefix;
        RouteTarget? t = _routes.TryGetBest(key, out KernelRoute best) ? Target(best, p.V6) : null;
        _ns.Fib.Set(index, p, RouteSource.Kernel, t);
        bool now = AttachedPort(t) != ushort.MaxValue;
        ref byte flags = ref _routes.PrefixFlags(key);
        bool was = ((System.Runtime.CompilerServices.Unsafe.IsNullRef(ref flags) ? removedFlags : flags) & KernelRoutes.FlagAttached) != 0;
        if (now == was && !now)
            return;
        if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref flags))
            flags = now ? (byte)(flags | KernelRoutes.FlagAttached) : (byte)(flags & ~KernelRoutes.FlagAttached);
        NoteAttached(key, p, t);
    }

    /// <summary>A kernel route as a FIB target.</summary>
    public RouteTarget Target(in KernelRoute r, bool v6)
    {
        switch (r.Type)
        {
            case Nl.RtnBlackhole:
                return RouteTarget.BlackholeTarget;
            case Nl.RtnUnreachable or Nl.RtnProhibit:
                return RouteTarget.UnreachableTarget;
            case Nl.RtnLocal:
                return RouteTarget.LocalTarget;
            case Nl.RtnUnicast:
                break;
            default:
                return RouteTarget.PuntTarget; // throw, broadcast, multicast, anycast: Linux's
        }
        if (r.Nexthop != 0)
        {
            if (!_objectTargets.TryGetValue(r.Nexthop, out RouteTarget? o))
                _objectTargets[r.Nexthop] = o = RouteTarget.Object(new NexthopKey(_ns.Domain, r.Nexthop));
            return o;
        }
        RouteNextHop[] hops = _routes.Hops.Get(r.Hops);
        ref (RouteNextHop[]? Hops, RouteTarget? Target)[] cache = ref v6 ? ref _cache6 : ref _cache4;
        if (r.Hops >= cache.Length)
            Array.Resize(ref cache, Math.Max(cache.Length * 2, r.Hops + 1));
        ref var slot = ref cache[r.Hops];
        if (!ReferenceEquals(slot.Hops, hops) || slot.Target is null)
            slot = (hops, Translate(hops, v6));
        return slot.Target!;
    }

    /// <summary>Next hops through mirrors forward; one through an interface Linux owns makes
    /// the whole route punt (Linux forwards it).</summary>
    internal RouteTarget Translate(ReadOnlySpan<RouteNextHop> hopList, bool v6)
    {
        if (hopList.Length == 0)
            return RouteTarget.PuntTarget;
        if (hopList.Length == 1 && _ns.Mirror(hopList[0].IfIndex) is MirrorInfo single && (hopList[0].HasGateway || single.Tun))
            return RouteTarget.Via(v6, new NextHop(single.Port, single.Tun && !hopList[0].HasGateway ? 0 : hopList[0].Gateway, 1));
        var hops = new NextHop[hopList.Length];
        for (int i = 0; i < hopList.Length; i++)
        {
            RouteNextHop h = hopList[i];
            if (_ns.Mirror(h.IfIndex) is not MirrorInfo pair)
                return RouteTarget.PuntTarget;
            if (!h.HasGateway && pair.Tun)
            {
                // A point-to-point link: "dev tun0" reaches the one peer, whatever the destination.
                hops[i] = new NextHop(pair.Port, UInt128.Zero, h.Weight);
                continue;
            }
            if (!h.HasGateway)
                return hopList.Length == 1 ? RouteTarget.Attached(pair.Port, v6) : RouteTarget.PuntTarget;
            hops[i] = new NextHop(pair.Port, h.Gateway, h.Weight);
        }
        return RouteTarget.Via(v6, hops);
    }

    private readonly struct TableSelector(uint table) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => key.Table == table;
    }

    private readonly struct ActiveSelector(NamespaceSync ns) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => ns.TableIndex(key.Table) >= 0;
    }

    private readonly struct StaleSelector(byte epoch) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => route.Mark != epoch;
    }

    private readonly struct NexthopSelector(uint id) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => route.Nexthop == id;
    }

    /// <summary>A port started forwarding in a table: all its routes go to the FIB.</summary>
    internal void Replay(uint table)
    {
        _prefixScratch.Clear();
        _routes.CollectPrefixes(_prefixScratch, new TableSelector(table));
        for (int i = 0; i < _prefixScratch.Count; i++)
            Recompute(_prefixScratch[i]);
    }

    /// <summary>No port forwards in a table any more: its routes leave the FIB (the model keeps them).</summary>
    internal void Withdraw(uint table, int index)
    {
        _prefixScratch.Clear();
        _routes.CollectPrefixes(_prefixScratch, new TableSelector(table));
        for (int i = 0; i < _prefixScratch.Count; i++)
            _ns.Fib.Set(index, _prefixScratch[i].Prefix, RouteSource.Kernel, null);
        foreach (var k in _attached.Keys.Where(k => k.Table == table).ToList())
        {
            _attached.Remove(k);
            _ns.Neighbors.AttachedChanged(k.Port);
        }
    }

    /// <summary>Mirrors changed: every route of an active table is translated again.</summary>
    internal void Retranslate()
    {
        Array.Clear(_cache4);
        Array.Clear(_cache6);
        _prefixScratch.Clear();
        _routes.CollectPrefixes(_prefixScratch, new ActiveSelector(_ns));
        for (int i = 0; i < _prefixScratch.Count; i++)
            Recompute(_prefixScratch[i]);
    }

    /// <summary>The kernel deleted a nexthop object, and with it (without a message per route)
    /// every route that used it.</summary>
    internal void RemoveByNexthop(uint id)
    {
        _scratch.Clear();
        _routes.Collect(_scratch, new NexthopSelector(id));
        for (int i = 0; i < _scratch.Count; i++)
        {
            var (k, metric, tos) = _scratch[i];
            _routes.Remove(k, metric, tos, out byte flags);
            Recompute(k, flags);
        }
    }

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        _scratch.Clear();
        _routes.Collect(_scratch, new StaleSelector(_ns.Epoch));
        for (int i = 0; i < _scratch.Count; i++)
        {
            var (k, metric, tos) = _scratch[i];
            _routes.Remove(k, metric, tos, out byte flags);
            Recompute(k, flags);
        }
        return _scratch.Count;
    }

    public void Dispose()
    {
        _routes.Dispose();
        _scratch.Dispose();
        _prefixScratch.Dispose();
    }
}
