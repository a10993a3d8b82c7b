using System.Runtime.InteropServices;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>Linux's view of one namespace (links, addresses, main-table routes, neighbours) and
/// its translation into FIB sources. Events are applied idempotently, so a dump can be replayed
/// over live state; <see cref="Sweep"/> removes what a dump no longer contains.</summary>
public sealed class RouteSync : IDisposable
{
    private readonly FibWriter _fib;
    private readonly PairManager _pairs;
    private readonly string? _netns;

    private readonly Dictionary<int, LinkEvent> _links = [];
    private readonly Dictionary<(bool, UInt128, int, int), AddrEvent> _addrs = [];
    // Routes are the bulk (a full table): kept as structs, see KernelRoutes.
    private readonly KernelRoutes _routes = new();
    private readonly Dictionary<(int, bool, UInt128), NeighEvent> _neighs = [];
    private Dictionary<int, Pair> _mirrors = [];

    public RouteSync(FibWriter fib, PairManager pairs, string? netns)
    {
        _fib = fib;
        _pairs = pairs;
        _netns = netns;
        RefreshPairs();
    }

    public long Routes => _routes.Count;
    public long Neighbors => _neighs.Count;

    /// <summary>Set when a link's admin state changed: the kernel then adds or flushes routes
    /// without telling anyone, so the listener re-reads them.</summary>
    public bool ResyncWanted { get; set; }

    public void RefreshPairs() =>
        _mirrors = _pairs.Pairs().Where(p => p.Netns == _netns && p.HostIfIndex > 0).ToDictionary(p => p.HostIfIndex);

    public void Apply(NlEvent e)
    {
        switch (e)
        {
            case LinkEvent l: ApplyLink(l); break;
            case AddrEvent a: ApplyAddr(a); break;
            case RouteEvent r:
                ApplyRoute(new RouteMsg(r.Deleted, r.Prefix, r.Table, r.Type, r.Metric, r.Tos, r.Flags), [.. r.NextHops]);
                break;
            case NeighEvent n: ApplyNeigh(n); break;
        }
    }

    private void ApplyLink(LinkEvent l)
    {
        bool changed = !_links.TryGetValue(l.IfIndex, out LinkEvent? old) || old.AdminUp != l.AdminUp;
        if (l.Deleted)
            _links.Remove(l.IfIndex);
        else
            _links[l.IfIndex] = l;
        if (!_mirrors.TryGetValue(l.IfIndex, out Pair? pair) || l.Deleted)
            return;
        Pair now = _pairs.ApplyMirrorLink(pair, l.AdminUp, (ushort)Math.Min(l.Mtu, ushort.MaxValue), l.Mac);
        _fib.SetPort(now.Phy.Id, l.AdminUp, EffectiveMtu(l.Mtu), now.Phy.Mac, now.Tun);
        if (changed && old is not null)
            ResyncWanted = true;
    }

    private static ushort EffectiveMtu(uint mtu) => mtu is 0 or > 9600 ? (ushort)9600 : (ushort)mtu;

    private void ApplyAddr(AddrEvent a)
    {
        var key = (a.V6, a.Address, a.IfIndex, a.PrefixLength);
        if (a.Deleted)
            _addrs.Remove(key);
        else
            _addrs[key] = a;
        bool present = _addrs.Keys.Any(k => k.Item1 == a.V6 && k.Item2 == a.Address);
        _fib.Set(Prefix.Host(a.V6, a.Address), RouteSource.Local, present ? RouteTarget.LocalTarget : null);
    }

    /// <summary>Applies a route message (add, replace, append, delete) as iproute2 and the
    /// kernel send them. Allocates nothing when the next-hop list is one seen before.</summary>
    public void ApplyRoute(in RouteMsg r, ReadOnlySpan<RouteNextHop> hops)
    {
        if (r.Table != Nl.TableMain)
            return;
        Prefix p = r.Prefix;
        if (r.Deleted)
        {
            if (p.V6 && hops.Length > 0 && _routes.TryGetValue(p, r.Metric, r.Tos, out KernelRoute cur)
                && _routes.Hops.Get(cur.Hops).Length > 1)
            {
                // IPv6 removes one next hop of a multipath route at a time.
                var left = new List<RouteNextHop>();
                foreach (RouteNextHop h in _routes.Hops.Get(cur.Hops))
                {
                    bool gone = false;
                    foreach (RouteNextHop d in hops)
                        gone |= d.IfIndex == h.IfIndex && d.Gateway == h.Gateway;
                    if (!gone)
                        left.Add(h);
                }
                if (left.Count > 0)
                    _routes.Put(p, r.Metric, r.Tos, cur.Type, _routes.Hops.Acquire(CollectionsMarshal.AsSpan(left)));
                else
                    _routes.Remove(p, r.Metric, r.Tos);
            }
            else
            {
                _routes.Remove(p, r.Metric, r.Tos);
            }
        }
        else if ((r.Flags & Nl.FAppend) != 0 && p.V6 && _routes.TryGetValue(p, r.Metric, r.Tos, out KernelRoute cur))
        {
            var merged = new List<RouteNextHop>(_routes.Hops.Get(cur.Hops));
            foreach (RouteNextHop h in hops)
                if (!merged.Contains(h))
                    merged.Add(h);
            _routes.Put(p, r.Metric, r.Tos, cur.Type, _routes.Hops.Acquire(CollectionsMarshal.AsSpan(merged)));
        }
        else
        {
            _routes.Put(p, r.Metric, r.Tos, r.Type, _routes.Hops.Acquire(hops));
        }
        Recompute(p);
    }

    /// <summary>The lowest-metric route of a prefix is the one Linux uses.</summary>
    private void Recompute(Prefix p) =>
        _fib.Set(p, RouteSource.Kernel, _routes.TryGetBest(p, out KernelRoute best) ? Target(best.Type, _routes.Hops.Get(best.Hops)) : null);

    /// <summary>A kernel route as a FIB target.</summary>
    public RouteTarget Target(byte type, RouteNextHop[] hopList)
    {
        switch (type)
        {
            case Nl.RtnBlackhole:
                return RouteTarget.BlackholeTarget;
            case Nl.RtnUnreachable or Nl.RtnProhibit:
                return RouteTarget.UnreachableTarget;
            case Nl.RtnUnicast:
                break;
            default:
                return RouteTarget.PuntTarget;
        }
        if (hopList.Length == 0)
            return RouteTarget.PuntTarget;
        if (hopList.Length == 1 && _mirrors.TryGetValue(hopList[0].IfIndex, out Pair? single)
            && (hopList[0].HasGateway || single.Tun))
            return SingleHop(single.Phy.Id, hopList[0].Gateway);
        var hops = new List<NextHop>();
        foreach (RouteNextHop h in hopList)
        {
            if (!_mirrors.TryGetValue(h.IfIndex, out Pair? pair))
                return RouteTarget.PuntTarget; // a next hop Linux owns: let Linux forward
            if (!h.HasGateway && pair.Tun)
            {
                // A point-to-point link: "dev tun0" reaches the one peer, whatever the destination.
                hops.Add(new NextHop(pair.Phy.Id, UInt128.Zero, h.Weight));
                continue;
            }
            if (!h.HasGateway)
            {
                if (hopList.Length != 1)
                    return RouteTarget.PuntTarget;
                return new RouteTarget(GroupKind.Glean, [], pair.Phy.Id); // attached prefix
            }
            hops.Add(new NextHop(pair.Phy.Id, h.Gateway, h.Weight));
        }
        return new RouteTarget(GroupKind.Forward, hops);
    }

    // Targets are immutable: routes through the same gateway share one (a full table has a few
    // next hops and a million routes). Bounded: cleared when it grows past a limit.
    private readonly Dictionary<(ushort, UInt128), RouteTarget> _singleHops = [];

    private RouteTarget SingleHop(ushort port, UInt128 gateway)
    {
        if (_singleHops.TryGetValue((port, gateway), out RouteTarget? t))
            return t;
        if (_singleHops.Count >= 4096)
            _singleHops.Clear();
        t = new RouteTarget(GroupKind.Forward, [new NextHop(port, gateway, 1)]);
        _singleHops[(port, gateway)] = t;
        return t;
    }

    private void ApplyNeigh(NeighEvent n)
    {
        var key = (n.IfIndex, n.V6, n.Ip);
        if (n.Deleted)
            _neighs.Remove(key);
        else
            _neighs[key] = n;
        if (!_mirrors.TryGetValue(n.IfIndex, out Pair? pair) || pair.Tun)
            return;
        _fib.SetNeighbor(pair.Phy.Id, n.V6, n.Ip, n.Resolved ? n.Mac : null);
    }

    public void Dispose() => _routes.Dispose();

    /// <summary>Keys currently known, so a resync can delete what its dump did not contain.</summary>
    public sealed record Snapshot(HashSet<int> Links, HashSet<(bool, UInt128, int, int)> Addrs,
        HashSet<(Prefix, uint, byte)> Routes, HashSet<(int, bool, UInt128)> Neighs);

    public static Snapshot Collect(IEnumerable<NlEvent> dump)
    {
        var s = new Snapshot([], [], [], []);
        foreach (NlEvent e in dump)
        {
            switch (e)
            {
                case LinkEvent l: s.Links.Add(l.IfIndex); break;
                case AddrEvent a: s.Addrs.Add((a.V6, a.Address, a.IfIndex, a.PrefixLength)); break;
                case RouteEvent r when r.Table == Nl.TableMain: s.Routes.Add((r.Prefix, r.Metric, r.Tos)); break;
                case NeighEvent n: s.Neighs.Add((n.IfIndex, n.V6, n.Ip)); break;
            }
        }
        return s;
    }

    /// <summary>Mark and sweep: deletes everything not in the dump (which was applied already).</summary>
    public int Sweep(Snapshot dump)
    {
        int removed = 0;
        foreach (var k in _routes.Keys())
        {
            if (dump.Routes.Contains(k))
                continue;
            _routes.Remove(k.Prefix, k.Metric, k.Tos);
            Recompute(k.Prefix);
            removed++;
        }
        foreach (var k in _addrs.Keys.Where(k => !dump.Addrs.Contains(k)).ToList())
        {
            ApplyAddr(_addrs[k] with { Deleted = true });
            removed++;
        }
        foreach (var k in _neighs.Keys.Where(k => !dump.Neighs.Contains(k)).ToList())
        {
            ApplyNeigh(_neighs[k] with { Deleted = true });
            removed++;
        }
        foreach (int k in _links.Keys.Where(k => !dump.Links.Contains(k)).ToList())
            _links.Remove(k);
        return removed;
    }
}
