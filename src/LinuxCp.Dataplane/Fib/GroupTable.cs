using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Fib;

/// <summary>What makes two groups the same. Hop-set groups: kind, glean port, family and the
/// exact bucket list (path ids after weight expansion), so every route through the same next
/// hops shares one. Nexthop-object groups: the object alone (their content is rewritten in place
/// when the kernel replaces the object).</summary>
internal sealed class GroupKey : IEquatable<GroupKey>
{
    private readonly int _hash;

    public GroupKey(GroupKind kind, ushort port, bool v6, int[] buckets)
    {
        Kind = kind;
        Port = port;
        V6 = v6;
        Buckets = buckets;
        var h = new HashCode();
        h.Add(kind);
        h.Add(port);
        h.Add(v6);
        foreach (int b in buckets)
            h.Add(b);
        _hash = h.ToHashCode();
    }

    public GroupKey(NexthopKey owner)
    {
        Owner = owner;
        Buckets = [];
        _hash = owner.GetHashCode() ^ 0x5bd1e995;
    }

    public GroupKind Kind { get; }
    public ushort Port { get; }
    public bool V6 { get; }
    public int[] Buckets { get; }
    public NexthopKey? Owner { get; }

    public bool Equals(GroupKey? o) =>
        o is not null && _hash == o._hash && Owner == o.Owner && Kind == o.Kind && Port == o.Port && V6 == o.V6
        && Buckets.AsSpan().SequenceEqual(o.Buckets);

    public override bool Equals(object? obj) => obj is GroupKey k && Equals(k);

    public override int GetHashCode() => _hash;
}

/// <summary>The FIB's next-hop groups: the native entries a lookup result indexes, interned and
/// reference counted (by route targets and nexthop objects). New groups are written to both
/// copies at once (no worker can hold a fresh id); rewrites of a live group are queued and
/// written copy by copy by the FIB writer's commit. Ids 0-4 are the reserved kinds.</summary>
internal sealed unsafe class GroupTable
{
    public const int FirstId = (int)GroupKind.PuntToLinux + 1;

    private readonly NextHopTables _nh;
    private readonly AdjacencyTable _adj;
    private readonly Interner<GroupKey> _ids = new(FirstId, NextHopTables.MaxGroups, deferred: true);
    // What each group's entry holds now (bucket path ids, so they can be released, and the kind).
    private int[][] _paths = new int[1024][];
    private GroupKind[] _kinds = new GroupKind[1024];
    private ushort[] _ports = new ushort[1024];
    private readonly List<(int Group, GroupEntry Entry)> _rewrites = [];

    public GroupTable(NextHopTables nh, AdjacencyTable adj)
    {
        _nh = nh;
        _adj = adj;
        foreach (GroupKind k in new[] { GroupKind.NoRoute, GroupKind.Local, GroupKind.Blackhole, GroupKind.Unreachable, GroupKind.PuntToLinux })
        {
            for (int c = 0; c < 2; c++)
                _nh.GroupCopy(c)[(int)k].Kind = k;
            _kinds[(int)k] = k;
            _paths[(int)k] = [];
        }
    }

    public int Count => _ids.Count;
    public int PendingFree => _ids.PendingCount;
    public long Refusals => _ids.Refusals;
    public int Capacity => _ids.Capacity;
    public int PendingRewrites => _rewrites.Count;

    public static bool IsReserved(int id) => id < FirstId;

    public GroupKind Kind(int id) => _kinds[id];

    /// <summary>Glean: the attached port.</summary>
    public ushort GleanPort(int id) => _ports[id];

    /// <summary>The bucket path ids of a group (weights expanded).</summary>
    public int[] Paths(int id) => _paths[id] ?? [];

    public NexthopKey? Owner(int id) => IsReserved(id) ? null : _ids[id].Owner;

    /// <summary>A reference on the group of a Forward or Glean target, creating it. False when
    /// group or path ids are used up (nothing is held then).</summary>
    public bool TryAcquire(RouteTarget t, out int id)
    {
        id = -1;
        if (!TryBuild(t, out GroupEntry entry, out int[] paths))
            return false;
        var key = new GroupKey(t.Kind, t.Kind == GroupKind.Glean ? t.GleanPort : (ushort)0, t.V6, paths);
        if (!_ids.TryAcquire(key, out id, out bool created))
        {
            ReleasePaths(paths);
            return false;
        }
        if (!created)
        {
            ReleasePaths(paths); // the group holds its own references
            return true;
        }
        Store(id, entry, paths, t);
        for (int c = 0; c < 2; c++)
            _nh.GroupCopy(c)[id] = entry;
        return true;
    }

    /// <summary>The dedicated group of a kernel nexthop object, with its first content.</summary>
    public bool TryCreateObject(NexthopKey owner, RouteTarget content, out int id)
    {
        id = -1;
        if (!TryBuild(content, out GroupEntry entry, out int[] paths))
            return false;
        if (!_ids.TryAcquire(new GroupKey(owner), out id, out bool created))
        {
            ReleasePaths(paths);
            return false;
        }
        if (!created)
            throw new InvalidOperationException($"{owner} already has group {id}");
        Store(id, entry, paths, content);
        for (int c = 0; c < 2; c++)
            _nh.GroupCopy(c)[id] = entry;
        return true;
    }

    /// <summary>New content for a nexthop object's live group: queued for the commit to write
    /// copy by copy. False (content unchanged) when the new paths cannot be had.</summary>
    public bool TryRewrite(int id, RouteTarget content)
    {
        if (!TryBuild(content, out GroupEntry entry, out int[] paths))
            return false;
        // The entry that is live stops naming the old paths once the rewrite reaches both copies;
        // their ids wait for the grace period like every released id.
        ReleasePaths(_paths[id]);
        Store(id, entry, paths, content);
        _rewrites.Add((id, entry));
        return true;
    }

    /// <summary>Writes the queued rewrites into one copy (the standby one, then, after the
    /// grace period, the other).</summary>
    public void WriteRewrites(int copy)
    {
        GroupEntry* g = _nh.GroupCopy(copy);
        foreach (var (id, entry) in _rewrites)
            g[id] = entry;
    }

    public void ClearRewrites() => _rewrites.Clear();

    public void AddRef(int id)
    {
        if (!IsReserved(id))
            _ids.AddRef(id);
    }

    public void Release(int id)
    {
        if (IsReserved(id) || !_ids.Release(id))
            return;
        ReleasePaths(_paths[id]);
        _paths[id] = [];
    }

    public int Reclaim() => _ids.Reclaim();

    private void Store(int id, in GroupEntry entry, int[] paths, RouteTarget t)
    {
        if (id >= _paths.Length)
        {
            int cap = Math.Max(_paths.Length * 2, id + 1);
            Array.Resize(ref _paths, cap);
            Array.Resize(ref _kinds, cap);
            Array.Resize(ref _ports, cap);
        }
        _paths[id] = paths;
        _kinds[id] = entry.Kind;
        _ports[id] = t.GleanPort;
    }

    private void ReleasePaths(int[] paths)
    {
        foreach (int p in paths)
            _adj.Release(p);
    }

    /// <summary>The native entry of a target's content, with a reference on each bucket's path.</summary>
    private bool TryBuild(RouteTarget t, out GroupEntry entry, out int[] paths)
    {
        entry = default;
        entry.Kind = t.Kind;
        paths = [];
        switch (t.Kind)
        {
            case GroupKind.Glean:
                entry.Port = t.GleanPort;
                return true;
            case GroupKind.Forward:
                break;
            default:
                return true; // blackhole, punt, ...: the kind says it all
        }
        AdjacencyKey[] buckets = Buckets(t.NextHops, t.V6);
        if (buckets.Length == 0)
        {
            entry.Kind = GroupKind.PuntToLinux;
            return true;
        }
        paths = new int[buckets.Length];
        for (int i = 0; i < buckets.Length; i++)
        {
            if (!_adj.TryAcquire(buckets[i], out paths[i]))
            {
                for (int j = 0; j < i; j++)
                    _adj.Release(paths[j]);
                paths = [];
                return false;
            }
            entry.Paths[i] = (ushort)paths[i];
        }
        entry.Buckets = (byte)buckets.Length;
        return true;
    }

    /// <summary>ECMP: one bucket per next hop when the weights are equal, otherwise the buckets
    /// shared out by weight (each next hop at least one), at most <see cref="GroupEntry.MaxBuckets"/>.</summary>
    internal static AdjacencyKey[] Buckets(IReadOnlyList<NextHop> nhs, bool v6)
    {
        int n = Math.Min(nhs.Count, GroupEntry.MaxBuckets);
        if (n == 1)
            return [new AdjacencyKey(nhs[0].Port, v6, nhs[0].Gateway)];
        bool equal = true;
        for (int i = 1; i < n; i++)
            equal &= nhs[i].Weight == nhs[0].Weight;
        if (equal)
        {
            var same = new AdjacencyKey[n];
            for (int i = 0; i < n; i++)
                same[i] = new AdjacencyKey(nhs[i].Port, v6, nhs[i].Gateway);
            return same;
        }
        int total = 0;
        for (int i = 0; i < n; i++)
            total += Math.Max(1, nhs[i].Weight);
        var result = new List<AdjacencyKey>(GroupEntry.MaxBuckets);
        for (int i = 0; i < n && result.Count < GroupEntry.MaxBuckets; i++)
        {
            int count = Math.Max(1, (int)Math.Round((double)GroupEntry.MaxBuckets * Math.Max(1, nhs[i].Weight) / total));
            for (int k = 0; k < count && result.Count < GroupEntry.MaxBuckets; k++)
                result.Add(new AdjacencyKey(nhs[i].Port, v6, nhs[i].Gateway));
        }
        return [.. result];
    }
}
