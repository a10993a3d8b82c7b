using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>One kernel route of a prefix, as kept in the model: no references, so a million
/// of them are one array the garbage collector never has to trace.</summary>
public readonly record struct KernelRoute(uint Metric, byte Tos, byte Type, int Hops);

/// <summary>Linux's main-table routes of one namespace, keyed by (prefix, metric, tos). Most
/// prefixes have one route: it lives inline in a dictionary of structs; the rare extra routes of
/// a prefix (other metrics or TOS) sit in a side list. Next-hop lists are interned
/// (<see cref="HopSets"/>): a full table has a handful of distinct ones. Adding or replacing a
/// route whose next hops are already known allocates nothing that outlives the call.</summary>
public sealed class KernelRoutes : IDisposable
{
    // Native memory: growing a managed dictionary of a million entries starts gen2 collections.
    private readonly NativeMap<Prefix, KernelRoute> _first = new(1024);
    private readonly Dictionary<Prefix, List<KernelRoute>> _more = [];
    private int _moreCount;

    public HopSets Hops { get; } = new();

    public int Count => _first.Count + _moreCount;

    public bool TryGetValue(Prefix p, uint metric, byte tos, out KernelRoute route)
    {
        if (_first.TryGetValue(p, out route) && route.Metric == metric && route.Tos == tos)
            return true;
        if (_more.TryGetValue(p, out List<KernelRoute>? list))
        {
            foreach (KernelRoute r in list)
            {
                if (r.Metric == metric && r.Tos == tos)
                {
                    route = r;
                    return true;
                }
            }
        }
        route = default;
        return false;
    }

    /// <summary>Adds or replaces the route of (prefix, metric, tos); takes over the caller's
    /// reference on <paramref name="hops"/> and drops the one the replaced route held.</summary>
    public void Put(Prefix p, uint metric, byte tos, byte type, int hops)
    {
        var route = new KernelRoute(metric, tos, type, hops);
        ref KernelRoute first = ref _first.GetValueRefOrAddDefault(p, out bool exists);
        if (!exists)
        {
            first = route;
            return;
        }
        if (first.Metric == metric && first.Tos == tos)
        {
            Hops.Release(first.Hops);
            first = route;
            return;
        }
        if (!_more.TryGetValue(p, out List<KernelRoute>? list))
            _more[p] = list = [];
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].Metric == metric && list[i].Tos == tos)
            {
                Hops.Release(list[i].Hops);
                list[i] = route;
                return;
            }
        }
        list.Add(route);
        _moreCount++;
    }

    public bool Remove(Prefix p, uint metric, byte tos)
    {
        ref KernelRoute first = ref _first.GetValueRefOrNullRef(p);
        if (Unsafe.IsNullRef(ref first))
            return false;
        _more.TryGetValue(p, out List<KernelRoute>? list);
        if (first.Metric == metric && first.Tos == tos)
        {
            Hops.Release(first.Hops);
            if (list is null)
            {
                _first.Remove(p);
                return true;
            }
            first = list[^1]; // promote an extra route
            list.RemoveAt(list.Count - 1);
            _moreCount--;
            if (list.Count == 0)
                _more.Remove(p);
            return true;
        }
        if (list is null)
            return false;
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].Metric == metric && list[i].Tos == tos)
            {
                Hops.Release(list[i].Hops);
                list.RemoveAt(i);
                _moreCount--;
                if (list.Count == 0)
                    _more.Remove(p);
                return true;
            }
        }
        return false;
    }

    /// <summary>The route Linux uses for a prefix: the lowest metric.</summary>
    public bool TryGetBest(Prefix p, out KernelRoute best)
    {
        if (!_first.TryGetValue(p, out best))
            return false;
        if (_more.TryGetValue(p, out List<KernelRoute>? list))
            foreach (KernelRoute r in list)
                if (r.Metric < best.Metric)
                    best = r;
        return true;
    }

    public void Dispose() => _first.Dispose();

    /// <summary>Every (prefix, metric, tos) key, for a resync's sweep.</summary>
    public List<(Prefix Prefix, uint Metric, byte Tos)> Keys()
    {
        var keys = new List<(Prefix, uint, byte)>(Count);
        foreach (var (p, r) in _first.ToList())
            keys.Add((p, r.Metric, r.Tos));
        foreach (var (p, list) in _more)
            foreach (KernelRoute r in list)
                keys.Add((p, r.Metric, r.Tos));
        return keys;
    }
}

/// <summary>Interned, reference-counted next-hop lists. Id 0 is the empty list. Lists are
/// immutable once interned.</summary>
public sealed class HopSets
{
    private readonly List<RouteNextHop[]> _sets = [[]];
    private readonly List<int> _refs = [int.MaxValue / 2];
    private readonly Stack<int> _free = new();
    private readonly Dictionary<RouteNextHop, int> _single = [];
    private readonly Dictionary<RouteNextHop[], int> _multi = new(HopListComparer.Instance);
    private readonly Dictionary<RouteNextHop[], int>.AlternateLookup<ReadOnlySpan<RouteNextHop>> _multiBySpan;

    public HopSets() => _multiBySpan = _multi.GetAlternateLookup<ReadOnlySpan<RouteNextHop>>();

    /// <summary>Distinct next-hop lists in use (the empty one included).</summary>
    public int Count => _sets.Count - _free.Count;

    public RouteNextHop[] Get(int id) => _sets[id];

    /// <summary>Returns the id of a list with these next hops, holding one reference on it.</summary>
    public int Acquire(ReadOnlySpan<RouteNextHop> hops)
    {
        int id;
        switch (hops.Length)
        {
            case 0:
                return 0;
            case 1:
                if (_single.TryGetValue(hops[0], out id))
                    break;
                id = Add([hops[0]]);
                _single[hops[0]] = id;
                break;
            default:
                if (_multiBySpan.TryGetValue(hops, out id))
                    break;
                RouteNextHop[] array = hops.ToArray();
                id = Add(array);
                _multi[array] = id;
                break;
        }
        _refs[id]++;
        return id;
    }

    public void Release(int id)
    {
        if (id == 0 || --_refs[id] > 0)
            return;
        RouteNextHop[] set = _sets[id];
        if (set.Length == 1)
            _single.Remove(set[0]);
        else
            _multi.Remove(set);
        _sets[id] = [];
        _free.Push(id);
    }

    private int Add(RouteNextHop[] set)
    {
        if (_free.TryPop(out int id))
        {
            _sets[id] = set;
            _refs[id] = 0;
            return id;
        }
        _sets.Add(set);
        _refs.Add(0);
        return _sets.Count - 1;
    }

    /// <summary>Structural equality of next-hop lists; also looks up by span, so finding a
    /// known multipath list allocates nothing.</summary>
    private sealed class HopListComparer : IEqualityComparer<RouteNextHop[]>, IAlternateEqualityComparer<ReadOnlySpan<RouteNextHop>, RouteNextHop[]>
    {
        public static readonly HopListComparer Instance = new();

        public bool Equals(RouteNextHop[]? a, RouteNextHop[]? b) =>
            ReferenceEquals(a, b) || (a is not null && b is not null && a.AsSpan().SequenceEqual(b));

        public int GetHashCode(RouteNextHop[] a) => GetHashCode(a.AsSpan());

        public bool Equals(ReadOnlySpan<RouteNextHop> a, RouteNextHop[] b) => a.SequenceEqual(b);

        public int GetHashCode(ReadOnlySpan<RouteNextHop> a)
        {
            var h = new HashCode();
            foreach (RouteNextHop x in a)
                h.Add(x);
            return h.ToHashCode();
        }

        public RouteNextHop[] Create(ReadOnlySpan<RouteNextHop> a) => a.ToArray();
    }
}
