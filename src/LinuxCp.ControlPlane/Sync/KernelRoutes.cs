using System.Runtime.CompilerServices;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>A kernel table's prefix: 24 bytes, 8-aligned (the kernel table id is 32 bits).</summary>
public readonly struct RouteKey : IEquatable<RouteKey>
{
    public readonly ulong Hi, Lo;
    public readonly uint Table;
    public readonly byte Length;
    public readonly bool V6;

    public RouteKey(uint table, in Prefix p)
    {
        Hi = (ulong)(p.Address >> 64);
        Lo = (ulong)p.Address;
        Table = table;
        Length = p.Length;
        V6 = p.V6;
    }

    public Prefix Prefix => new(V6, ((UInt128)Hi << 64) | Lo, Length);

    public bool Equals(RouteKey o) => Lo == o.Lo && Hi == o.Hi && Table == o.Table && Length == o.Length && V6 == o.V6;

    public override bool Equals(object? obj) => obj is RouteKey k && Equals(k);

    public override int GetHashCode()
    {
        ulong h = (Lo * 0x9E3779B97F4A7C15UL) ^ (Hi * 0xC2B2AE3D27D4EB4FUL) ^ ((ulong)Table << 24) ^ ((ulong)Length << 8) ^ (V6 ? 1UL : 0UL);
        return (int)(h ^ (h >> 32));
    }

    public static bool operator ==(RouteKey a, RouteKey b) => a.Equals(b);

    public static bool operator !=(RouteKey a, RouteKey b) => !a.Equals(b);
}

/// <summary>One kernel route of a prefix: no references, so a million of them are native memory
/// the garbage collector never traces. It names either an interned next-hop list
/// (<see cref="Hops"/>) or a kernel nexthop object (<see cref="Nexthop"/>).</summary>
public struct KernelRoute
{
    public uint Metric;
    public byte Tos;
    public byte Type;
    /// <summary>The sync epoch that last saw it (mark and sweep).</summary>
    public byte Mark;
    /// <summary>Per prefix (kept on the prefix's first route): <see cref="KernelRoutes.FlagAttached"/>.</summary>
    public byte PrefixFlags;
    public int Hops;
    public uint Nexthop;

    public readonly bool SameSlot(uint metric, byte tos) => Metric == metric && Tos == tos;
}

/// <summary>Linux's routes of one namespace, every table, keyed by (table, prefix, metric, tos).
/// Most prefixes have one route: it lives inline in a native map; the rare extra routes of a
/// prefix (other metrics or TOS) sit in a side list. Next-hop lists are interned
/// (<see cref="Hops"/>): a full table has a handful. Adding or replacing a route whose next hops
/// are already known allocates nothing.</summary>
public sealed class KernelRoutes : IDisposable
{
    private readonly NativeMap<RouteKey, KernelRoute> _first = new(1024);
    private readonly Dictionary<RouteKey, List<KernelRoute>> _more = [];
    private int _moreCount;

    public HopSets Hops { get; } = new();

    /// <summary>The prefix's route in the FIB is attached (connected): neighbours hang off it.</summary>
    public const byte FlagAttached = 1;

    public int Count => _first.Count + _moreCount;

    public long NativeBytes => _first.Bytes;

    public bool TryGet(in RouteKey k, uint metric, byte tos, out KernelRoute route)
    {
        if (_first.TryGetValue(k, out route) && route.SameSlot(metric, tos))
            return true;
        if (_moreCount != 0 && _more.TryGetValue(k, out List<KernelRoute>? list))
            foreach (KernelRoute r in list)
                if (r.SameSlot(metric, tos))
                {
                    route = r;
                    return true;
                }
        route = default;
        return false;
    }

    /// <summary>The prefix's flags (on its first route), or a null reference when it has no route.</summary>
    public ref byte PrefixFlags(in RouteKey k)
    {
        ref KernelRoute first = ref _first.GetValueRefOrNullRef(k);
        if (Unsafe.IsNullRef(ref first))
            return ref Unsafe.NullRef<byte>();
        return ref first.PrefixFlags;
    }

    /// <summary>Adds or replaces the route of (key, metric, tos); takes over the caller's
    /// reference on the route's hop list and drops the one the replaced route held.</summary>
    public void Put(in RouteKey k, in KernelRoute route)
    {
        ref KernelRoute first = ref _first.GetValueRefOrAddDefault(k, out bool exists);
        if (!exists)
        {
            first = route;
            return;
        }
        if (first.SameSlot(route.Metric, route.Tos))
        {
            Hops.Release(first.Hops);
            byte flags = first.PrefixFlags;
            first = route;
            first.PrefixFlags = flags;
            return;
        }
        if (!_more.TryGetValue(k, out List<KernelRoute>? list))
            _more[k] = list = [];
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].SameSlot(route.Metric, route.Tos))
            {
                Hops.Release(list[i].Hops);
                list[i] = route;
                return;
            }
        }
        list.Add(route);
        _moreCount++;
    }

    public bool Remove(in RouteKey k, uint metric, byte tos) => Remove(k, metric, tos, out _);

    /// <summary>Removes the route of (key, metric, tos); <paramref name="prefixFlags"/> are the
    /// prefix's flags before (they stay with the prefix while it has routes).</summary>
    public bool Remove(in RouteKey k, uint metric, byte tos, out byte prefixFlags)
    {
        prefixFlags = 0;
        ref KernelRoute first = ref _first.GetValueRefOrNullRef(k);
        if (Unsafe.IsNullRef(ref first))
            return false;
        prefixFlags = first.PrefixFlags;
        List<KernelRoute>? list = null;
        if (_moreCount != 0)
            _more.TryGetValue(k, out list);
        if (first.SameSlot(metric, tos))
        {
            Hops.Release(first.Hops);
            if (list is null)
            {
                _first.Remove(k);
                return true;
            }
            first = list[^1]; // promote an extra route
            first.PrefixFlags = prefixFlags;
            list.RemoveAt(list.Count - 1);
            _moreCount--;
            if (list.Count == 0)
                _more.Remove(k);
            return true;
        }
        if (list is null)
            return false;
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].SameSlot(metric, tos))
            {
                Hops.Release(list[i].Hops);
                list.RemoveAt(i);
                _moreCount--;
                if (list.Count == 0)
                    _more.Remove(k);
                return true;
            }
        }
        return false;
    }

    /// <summary>The route Linux uses for a prefix: the lowest metric.</summary>
    public bool TryGetBest(in RouteKey k, out KernelRoute best)
    {
        if (!_first.TryGetValue(k, out best))
            return false;
        if (_moreCount != 0 && _more.TryGetValue(k, out List<KernelRoute>? list))
            foreach (KernelRoute r in list)
                if (r.Metric < best.Metric)
                    best = r;
        return true;
    }

    /// <summary>Stamps the route of (key, metric, tos) with a sync epoch.</summary>
    public void Mark(in RouteKey k, uint metric, byte tos, byte epoch)
    {
        ref KernelRoute first = ref _first.GetValueRefOrNullRef(k);
        if (Unsafe.IsNullRef(ref first))
            return;
        if (first.SameSlot(metric, tos))
        {
            first.Mark = epoch;
            return;
        }
        if (_moreCount != 0 && _more.TryGetValue(k, out List<KernelRoute>? list))
            for (int i = 0; i < list.Count; i++)
                if (list[i].SameSlot(metric, tos))
                    list[i] = list[i] with { Mark = epoch };
    }

    /// <summary>Every route's key into <paramref name="into"/> where <paramref name="select"/> holds
    /// (sweeps and table replays; nothing allocated per route).</summary>
    public void Collect<TSelect>(NativeList<(RouteKey Key, uint Metric, byte Tos)> into, TSelect select)
        where TSelect : struct, IRouteSelector
    {
        foreach (var (k, r) in _first)
            if (select.Take(k, r))
                into.Add((k, r.Metric, r.Tos));
        foreach (var (k, list) in _more)
            foreach (KernelRoute r in list)
                if (select.Take(k, r))
                    into.Add((k, r.Metric, r.Tos));
    }

    /// <summary>Every distinct prefix key where <paramref name="select"/> holds for its first route.</summary>
    public void CollectPrefixes<TSelect>(NativeList<RouteKey> into, TSelect select) where TSelect : struct, IRouteSelector
    {
        foreach (var (k, r) in _first)
            if (select.Take(k, r))
                into.Add(k);
    }

    public void Dispose() => _first.Dispose();
}

/// <summary>Which routes a walk over <see cref="KernelRoutes"/> takes (a struct: no closure per walk).</summary>
public interface IRouteSelector
{
    bool Take(in RouteKey key, in KernelRoute route);
}

/// <summary>Interned, reference-counted next-hop lists (the shared <see cref="Interner{TKey}"/>).
/// Id 0 is the empty list. Lists are immutable once interned; a known list is found by span.</summary>
public sealed class HopSets
{
    private readonly Interner<RouteNextHop[]> _ids = new(1, int.MaxValue, deferred: false, HopListComparer.Instance);

    /// <summary>Distinct next-hop lists in use.</summary>
    public int Count => _ids.Count;

    public RouteNextHop[] Get(int id) => id == 0 ? [] : _ids[id];

    /// <summary>Returns the id of a list with these next hops, holding one reference on it.</summary>
    public int Acquire(ReadOnlySpan<RouteNextHop> hops)
    {
        if (hops.Length == 0)
            return 0;
        _ids.TryAcquire(hops, out int id, out _);
        return id;
    }

    public void AddRef(int id)
    {
        if (id != 0)
            _ids.AddRef(id);
    }

    public void Release(int id)
    {
        if (id != 0)
            _ids.Release(id);
    }

    /// <summary>Structural equality of next-hop lists; also looks up by span, so finding a
    /// known list allocates nothing.</summary>
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
