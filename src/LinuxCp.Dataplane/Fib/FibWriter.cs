using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Fib;

/// <summary>A next hop of a route as the control plane gives it.</summary>
public readonly record struct NextHop(ushort Port, UInt128 Gateway, int Weight);

/// <summary>What a prefix should do, as one source (address, route, neighbour) says.</summary>
public sealed record RouteTarget(GroupKind Kind, IReadOnlyList<NextHop> NextHops, ushort GleanPort = 0)
{
    public static readonly RouteTarget LocalTarget = new(GroupKind.Local, []);
    public static readonly RouteTarget BlackholeTarget = new(GroupKind.Blackhole, []);
    public static readonly RouteTarget UnreachableTarget = new(GroupKind.Unreachable, []);
    public static readonly RouteTarget PuntTarget = new(GroupKind.PuntToLinux, []);

    public bool Equals(RouteTarget? o)
    {
        if (ReferenceEquals(this, o))
            return true;
        if (o is null || o.Kind != Kind || o.GleanPort != GleanPort || o.NextHops.Count != NextHops.Count)
            return false;
        for (int i = 0; i < NextHops.Count; i++)
            if (o.NextHops[i] != NextHops[i])
                return false;
        return true;
    }

    // Targets are interned by the FIB writer: the first next hop keeps single-hop targets
    // (nearly all of a full table's) apart.
    public override int GetHashCode() =>
        HashCode.Combine(Kind, GleanPort, NextHops.Count, NextHops.Count == 0 ? default : NextHops[0]);
}

/// <summary>Which source installed a prefix; the FIB follows the highest-priority one present.</summary>
public enum RouteSource
{
    Local,    // an address of the router
    Kernel,   // a route in Linux's main table
    Neighbor, // a resolved neighbour (host route to it)
}

/// <summary>One installed FIB entry, for show commands.</summary>
public sealed record FibEntry(Prefix Prefix, RouteSource Source, GroupKind Kind, IReadOnlyList<(ushort Port, UInt128 Via, bool Resolved)> Paths);

/// <summary>The writer side of the FIB: the only code that changes what workers look up.
/// Single writer (callers serialise; the netlink listener and the API share a lock). Changes are
/// collected, then <see cref="Commit"/> applies them to the standby copy of each FIB, publishes
/// it, waits for the workers' grace period and brings the other copy level. Workers never see a
/// FIB, group or path being written.</summary>
public sealed unsafe class FibWriter : IDisposable
{
    private readonly DataplaneEngine _dp;
    private readonly NextHopTables _nh = new();
    private readonly void*[] _v4 = new void*[2];
    private readonly void*[] _v6 = new void*[2];
    private int _active;

    /// <summary>What each source wants for a prefix, as interned target ids (0: nothing), and
    /// what is installed. A struct without references: a full table is one array of these that
    /// the garbage collector never traces.</summary>
    private struct PrefixState
    {
        public int Local, Kernel, Neighbor;
        public int InstalledGroup; // -1: not in the FIB
        public RouteSource InstalledSource;

        public readonly (int Target, RouteSource Source) Effective() =>
            Local != 0 ? (Local, RouteSource.Local)
            : Kernel != 0 ? (Kernel, RouteSource.Kernel)
            : Neighbor != 0 ? (Neighbor, RouteSource.Neighbor) : (0, RouteSource.Local);
    }

    private readonly record struct PathKey(ushort Port, bool V6, UInt128 Ip);

    private sealed class PathState
    {
        public int Id;
        public int Refs;
        public PathSlot Written;
    }

    /// <summary>What makes two groups the same: kind, glean port, family and the exact bucket
    /// list. Compared structurally (a formatted string key cost ~0.5 KB of garbage per route).</summary>
    private readonly struct GroupKey : IEquatable<GroupKey>
    {
        private readonly int _hash;

        public GroupKey(GroupKind kind, ushort port, bool v6, PathKey[] buckets)
        {
            Kind = kind;
            Port = port;
            V6 = v6;
            Buckets = buckets;
            var h = new HashCode();
            h.Add(kind);
            h.Add(port);
            h.Add(v6);
            foreach (PathKey b in buckets)
                h.Add(b);
            _hash = h.ToHashCode();
        }

        public GroupKind Kind { get; }
        public ushort Port { get; }
        public bool V6 { get; }
        public PathKey[] Buckets { get; }

        public bool Equals(GroupKey o) =>
            _hash == o._hash && Kind == o.Kind && Port == o.Port && V6 == o.V6 && Buckets.AsSpan().SequenceEqual(o.Buckets);

        public override bool Equals(object? obj) => obj is GroupKey k && Equals(k);

        public override int GetHashCode() => _hash;
    }

    private sealed class GroupState
    {
        public int Id;
        public int Refs;
        public GroupKey Key;
        public RouteTarget Target = RouteTarget.PuntTarget;
        public PathKey[] Paths = [];
    }

    /// <summary>A phy port as Linux configured its mirror. Point-to-point ports (TUN mirrors)
    /// have one adjacency for every next hop: the MAC of the link's peer, learned by the workers.</summary>
    private readonly record struct PortState(bool Up, ushort Mtu, ulong Mac, bool PointToPoint = false, ulong PeerMac = 0);

    // Native: a full table's prefixes never touch the GC (see NativeMap).
    private readonly NativeMap<Prefix, PrefixState> _prefixes = new(1024);
    private readonly TargetTable _targets = new();
    private readonly Dictionary<PathKey, PathState> _paths = [];
    private readonly Dictionary<GroupKey, GroupState> _groups = [];
    private readonly GroupState?[] _groupById = new GroupState?[NextHopTables.MaxGroups];
    private readonly Dictionary<PathKey, ulong> _neighbors = [];
    private readonly PortState[] _ports = new PortState[EthPort.MaxPorts];
    private readonly Stack<int> _freeGroups = new();
    private readonly Stack<int> _freePaths = new();
    private readonly List<int> _pendingFreeGroups = [];
    private readonly List<int> _pendingFreePaths = [];
    // Sized for a whole netlink batch up front: growing them mid-flood allocates large-object
    // arrays, and large-object allocations start gen2 collections (a 1M-route flood ran one).
    private const int BatchCapacity = 1 << 16;
    private readonly HashSet<Prefix> _dirtyPrefixes = new(BatchCapacity);
    private readonly HashSet<PathKey> _dirtyPaths = [];
    private readonly List<(Prefix Prefix, int Group)> _ops = new(BatchCapacity);
    private int _count4, _count6;

    public long Commits { get; private set; }
    public long FibOps { get; private set; }

    public FibWriter(DataplaneEngine dp, int socket, uint maxRoutes4, uint tbl8v4, uint maxRoutes6, uint tbl8v6)
    {
        _dp = dp;
        for (int i = 0; i < 2; i++)
        {
            using var n4 = new NativeUtf8($"lcp_fib4_{i}");
            _v4[i] = LcpShim.lcp_fib4_create(n4.Pointer, socket, maxRoutes4, tbl8v4);
            if (_v4[i] == null)
                throw new DpdkException($"cannot create the IPv4 FIB ({maxRoutes4} routes, {tbl8v4} tbl8 groups): {Eal.StrError(Eal.LastErrno)}", Eal.LastErrno);
            using var n6 = new NativeUtf8($"lcp_fib6_{i}");
            _v6[i] = LcpShim.lcp_fib6_create(n6.Pointer, socket, maxRoutes6, tbl8v6);
            if (_v6[i] == null)
                throw new DpdkException($"cannot create the IPv6 FIB ({maxRoutes6} routes, {tbl8v6} tbl8 groups): {Eal.StrError(Eal.LastErrno)}", Eal.LastErrno);
        }
        // Reserved groups: their ids are the kinds.
        foreach (GroupKind k in new[] { GroupKind.NoRoute, GroupKind.Local, GroupKind.Blackhole, GroupKind.Unreachable, GroupKind.PuntToLinux })
        {
            _nh.Groups[(int)k].Kind = k;
            var target = new RouteTarget(k, []);
            var g = new GroupState { Id = (int)k, Refs = int.MaxValue / 2, Key = new GroupKey(k, 0, false, []), Target = target };
            _groups[g.Key] = g;
            _groupById[g.Id] = g;
        }
        for (int id = NextHopTables.MaxGroups - 1; id > (int)GroupKind.PuntToLinux; id--)
            _freeGroups.Push(id);
        for (int id = NextHopTables.MaxPaths - 1; id >= 1; id--)
            _freePaths.Push(id);
        _dp.PublishFib(new FibSnapshot(_v4[0], _v6[0], _nh));
    }

    public int Count4 => _count4;
    public int Count6 => _count6;

    // ---- changes -------------------------------------------------------------------------------

    public void Set(Prefix p, RouteSource source, RouteTarget? target)
    {
        ref PrefixState s = ref _prefixes.GetValueRefOrNullRef(p);
        if (Unsafe.IsNullRef(ref s))
        {
            if (target is null)
                return;
            s = ref _prefixes.GetValueRefOrAddDefault(p, out _);
            s.InstalledGroup = -1;
        }
        int id = target is null ? 0 : _targets.Acquire(target);
        ref int slot = ref source == RouteSource.Local ? ref s.Local : ref source == RouteSource.Kernel ? ref s.Kernel : ref s.Neighbor;
        _targets.Release(slot);
        slot = id;
        _dirtyPrefixes.Add(p);
    }

    /// <summary>A neighbour of a port: resolved (MAC) or not (null). Also installs or removes the
    /// host route to it.</summary>
    public void SetNeighbor(ushort port, bool v6, UInt128 ip, MacAddress? mac)
    {
        var key = new PathKey(port, v6, ip);
        if (mac is MacAddress m)
            _neighbors[key] = m.Bits;
        else
            _neighbors.Remove(key);
        if (_paths.ContainsKey(key))
            _dirtyPaths.Add(key);
        Set(Prefix.Host(v6, ip), RouteSource.Neighbor,
            mac is null ? null : new RouteTarget(GroupKind.Forward, [new NextHop(port, ip, 1)]));
    }

    /// <summary>State of a physical port as Linux configured its mirror;
    /// <paramref name="pointToPoint"/> for a TUN mirror (no ARP/ND: see <see cref="RefreshPeers"/>).</summary>
    public void SetPort(ushort port, bool up, ushort mtu, MacAddress mac, bool pointToPoint = false)
    {
        PortState old = _ports[port];
        _ports[port] = new PortState(up, mtu, mac.Bits, pointToPoint, pointToPoint ? old.PeerMac : 0);
        DirtyPort(port);
    }

    private void DirtyPort(ushort port)
    {
        foreach (PathKey k in _paths.Keys)
            if (k.Port == port)
                _dirtyPaths.Add(k);
    }

    /// <summary>Takes over the peer MACs the workers learned on point-to-point ports. Returns
    /// whether any changed (then a <see cref="Commit"/> rewrites the paths through them).</summary>
    public bool RefreshPeers()
    {
        bool changed = false;
        for (ushort port = 0; port < _ports.Length; port++)
        {
            PortState s = _ports[port];
            if (!s.PointToPoint)
                continue;
            ulong mac = _dp.PeerMac(port);
            if (mac == s.PeerMac)
                continue;
            _ports[port] = s with { PeerMac = mac };
            DirtyPort(port);
            changed = true;
        }
        return changed;
    }

    /// <summary>Drops every source for prefixes and neighbours of a port (the pair went away).</summary>
    public void ForgetPort(ushort port)
    {
        foreach (PathKey k in _neighbors.Keys.Where(k => k.Port == port).ToList())
            SetNeighbor(port, k.V6, k.Ip, null);
        _ports[port] = default;
        DirtyPort(port);
    }

    // ---- commit --------------------------------------------------------------------------------

    /// <summary>Applies every change since the last commit. Returns the number of FIB writes.</summary>
    public int Commit()
    {
        if (_dirtyPrefixes.Count == 0 && _dirtyPaths.Count == 0)
            return 0;

        _ops.Clear();
        foreach (Prefix p in _dirtyPrefixes)
        {
            ref PrefixState s = ref _prefixes.GetValueRefOrNullRef(p);
            if (Unsafe.IsNullRef(ref s))
                continue;
            var (tid, source) = s.Effective();
            int gid = tid == 0 ? -1 : AcquireGroup(_targets.Get(tid), p.V6);
            if (gid == s.InstalledGroup)
            {
                if (gid >= 0)
                    ReleaseGroup(gid);
                s.InstalledSource = source;
            }
            else
            {
                if (s.InstalledGroup >= 0)
                    ReleaseGroup(s.InstalledGroup);
                else if (gid >= 0)
                    Count(p, +1);
                if (gid < 0)
                    Count(p, -1);
                s.InstalledGroup = gid;
                s.InstalledSource = source;
                _ops.Add((p, gid));
            }
            if (tid == 0)
                _prefixes.Remove(p);
        }
        _dirtyPrefixes.Clear();

        // Paths: write the inactive slot completely, then flip. Each path at most once per commit;
        // the grace period at the end makes the other slot free again.
        bool flipped = false;
        foreach (PathKey k in _dirtyPaths)
        {
            if (!_paths.TryGetValue(k, out PathState? ps))
                continue;
            PathSlot slot = Compute(k);
            if (slot.Equals(ps.Written))
                continue;
            PathEntry* e = _nh.Paths + ps.Id;
            int inactive = e->Active ^ 1;
            if (inactive == 0)
                e->Slot0 = slot;
            else
                e->Slot1 = slot;
            Volatile.Write(ref e->Active, inactive);
            ps.Written = slot;
            flipped = true;
        }
        _dirtyPaths.Clear();

        if (_ops.Count != 0)
        {
            int standby = _active ^ 1;
            Apply(standby);
            _active = standby;
            _dp.PublishFib(new FibSnapshot(_v4[standby], _v6[standby], _nh));
            Apply(standby ^ 1);
        }
        else if (flipped)
        {
            _dp.WaitGracePeriod(TimeSpan.FromSeconds(2));
        }

        // Ids released by this commit are unreferenced now (both FIB copies updated, grace passed).
        foreach (int g in _pendingFreeGroups)
            _freeGroups.Push(g);
        foreach (int id in _pendingFreePaths)
            _freePaths.Push(id);
        _pendingFreeGroups.Clear();
        _pendingFreePaths.Clear();
        Commits++;
        FibOps += _ops.Count;
        return _ops.Count;
    }

    private void Count(Prefix p, int delta)
    {
        if (p.V6)
            _count6 += delta;
        else
            _count4 += delta;
    }

    private void Apply(int copy)
    {
        byte* a6 = stackalloc byte[16];
        foreach (var (p, gid) in _ops)
        {
            int rc;
            if (p.V6)
            {
                Prefix.ToBytes(p.Address, true, new Span<byte>(a6, 16));
                rc = gid < 0 ? Dpdk.rte_fib6_delete(_v6[copy], a6, p.Length)
                             : Dpdk.rte_fib6_add(_v6[copy], a6, p.Length, (ulong)gid);
            }
            else
            {
                uint a = (uint)p.Address;
                rc = gid < 0 ? Dpdk.rte_fib_delete(_v4[copy], a, p.Length)
                             : Dpdk.rte_fib_add(_v4[copy], a, p.Length, (ulong)gid);
            }
            if (rc < 0 && !(gid < 0 && rc == -2)) // deleting an absent prefix (ENOENT) is fine
                FibErrors++;
        }
    }

    /// <summary>FIB writes DPDK refused (table full: raise --fib-tbl8 / --fib-max-routes).</summary>
    public long FibErrors { get; private set; }

    private PathSlot Compute(PathKey k)
    {
        PortState port = _ports[k.Port];
        ulong mac = port.PeerMac;
        if (!port.Up || (port.PointToPoint ? mac == 0 : !_neighbors.TryGetValue(k, out mac)))
            return new PathSlot { Kind = PathKind.Glean, TxPort = k.Port };
        return new PathSlot { Kind = PathKind.Forward, DstMac = mac, SrcMac = port.Mac, TxPort = k.Port, Mtu = port.Mtu };
    }

    private int AcquireGroup(RouteTarget t, bool v6)
    {
        if (t.Kind != GroupKind.Forward && t.Kind != GroupKind.Glean)
        {
            _groupById[(int)t.Kind]!.Refs++;
            return (int)t.Kind;
        }
        PathKey[] buckets = t.Kind == GroupKind.Glean ? [] : Buckets(t.NextHops, v6);
        var key = new GroupKey(t.Kind, t.GleanPort, v6, buckets);
        if (_groups.TryGetValue(key, out GroupState? g))
        {
            g.Refs++;
            return g.Id;
        }
        if (_freeGroups.Count == 0)
            return (int)GroupKind.PuntToLinux; // out of group ids: let Linux forward
        g = new GroupState { Id = _freeGroups.Pop(), Refs = 1, Key = key, Target = t, Paths = buckets };
        GroupEntry* e = _nh.Groups + g.Id;
        e->Kind = t.Kind;
        e->Port = t.GleanPort;
        e->Buckets = (byte)buckets.Length;
        for (int i = 0; i < buckets.Length; i++)
            e->Paths[i] = (ushort)AcquirePath(buckets[i]);
        _groups[key] = g;
        _groupById[g.Id] = g;
        return g.Id;
    }

    private void ReleaseGroup(int id)
    {
        GroupState g = _groupById[id]!;
        if (--g.Refs > 0)
            return;
        _groups.Remove(g.Key);
        _groupById[id] = null;
        foreach (PathKey k in g.Paths)
            ReleasePath(k);
        _pendingFreeGroups.Add(id);
    }

    private int AcquirePath(PathKey k)
    {
        if (_paths.TryGetValue(k, out PathState? p))
        {
            p.Refs++;
            return p.Id;
        }
        p = new PathState { Id = _freePaths.Pop(), Refs = 1 };
        PathSlot slot = Compute(k);
        PathEntry* e = _nh.Paths + p.Id;
        e->Slot0 = slot;
        e->Slot1 = slot;
        e->Active = 0;
        p.Written = slot;
        _paths[k] = p;
        return p.Id;
    }

    private void ReleasePath(PathKey k)
    {
        PathState p = _paths[k];
        if (--p.Refs > 0)
            return;
        _paths.Remove(k);
        _pendingFreePaths.Add(p.Id);
    }

    /// <summary>ECMP: one bucket per next hop when the weights are equal, otherwise the
    /// buckets shared out by weight (each next hop at least one).</summary>
    private static PathKey[] Buckets(IReadOnlyList<NextHop> nhs, bool v6)
    {
        if (nhs.Count == 1)
            return [new PathKey(nhs[0].Port, v6, nhs[0].Gateway)]; // the common case, without LINQ
        var list = nhs.Take(GroupEntry.MaxBuckets).ToList();
        if (list.Count == 0)
            return [];
        if (list.All(n => n.Weight == list[0].Weight))
            return [.. list.Select(n => new PathKey(n.Port, v6, n.Gateway))];
        int total = list.Sum(n => Math.Max(1, n.Weight));
        var result = new List<PathKey>();
        foreach (NextHop n in list)
        {
            int count = Math.Max(1, (int)Math.Round((double)GroupEntry.MaxBuckets * Math.Max(1, n.Weight) / total));
            for (int i = 0; i < count && result.Count < GroupEntry.MaxBuckets; i++)
                result.Add(new PathKey(n.Port, v6, n.Gateway));
        }
        return [.. result];
    }

    // ---- reading (control plane) -------------------------------------------------------------

    public List<FibEntry> Dump(bool v6, Prefix? filter = null)
    {
        var list = new List<FibEntry>();
        foreach (var (p, s) in _prefixes.ToList())
        {
            if (p.V6 != v6 || s.InstalledGroup < 0)
                continue;
            if (filter is Prefix f && !(f.Length == p.Length ? f.Address == p.Address : p.Contains(f)))
                continue;
            GroupState g = _groupById[s.InstalledGroup]!;
            var paths = g.Paths.Distinct().Select(k => (k.Port, k.Ip, _paths.TryGetValue(k, out PathState? ps) && ps.Written.Kind == PathKind.Forward)).ToList();
            if (g.Key.Kind == GroupKind.Glean)
                paths.Add((g.Key.Port, UInt128.Zero, false));
            list.Add(new FibEntry(p, s.InstalledSource, g.Key.Kind, paths));
        }
        list.Sort((a, b) => a.Prefix.Address != b.Prefix.Address ? a.Prefix.Address.CompareTo(b.Prefix.Address) : a.Prefix.Length.CompareTo(b.Prefix.Length));
        return list;
    }

    /// <summary>Distinct route targets in use (shared by every prefix that wants the same thing).</summary>
    public int Targets => _targets.Count;

    public IEnumerable<(ushort Port, bool V6, UInt128 Ip, MacAddress Mac)> Neighbors() =>
        _neighbors.Select(kv => (kv.Key.Port, kv.Key.V6, kv.Key.Ip, new MacAddress(kv.Value)));

    public void Dispose()
    {
        _dp.PublishFib(FibSnapshot.None);
        for (int i = 0; i < 2; i++)
        {
            if (_v4[i] != null)
                Dpdk.rte_fib_free(_v4[i]);
            if (_v6[i] != null)
                Dpdk.rte_fib6_free(_v6[i]);
        }
        _nh.Dispose();
        _prefixes.Dispose();
    }
}

/// <summary>Interned, reference-counted route targets: prefixes hold small ids instead of
/// references. Id 0 means "nothing".</summary>
internal sealed class TargetTable
{
    private readonly List<RouteTarget?> _byId = [null];
    private readonly List<int> _refs = [0];
    private readonly Stack<int> _free = new();
    private readonly Dictionary<RouteTarget, int> _ids = [];

    public int Count => _ids.Count;

    public RouteTarget Get(int id) => _byId[id]!;

    public int Acquire(RouteTarget t)
    {
        if (!_ids.TryGetValue(t, out int id))
        {
            if (_free.TryPop(out id))
            {
                _byId[id] = t;
                _refs[id] = 0;
            }
            else
            {
                id = _byId.Count;
                _byId.Add(t);
                _refs.Add(0);
            }
            _ids[t] = id;
        }
        _refs[id]++;
        return id;
    }

    public void Release(int id)
    {
        if (id == 0 || --_refs[id] > 0)
            return;
        _ids.Remove(_byId[id]!);
        _byId[id] = null;
        _free.Push(id);
    }
}
