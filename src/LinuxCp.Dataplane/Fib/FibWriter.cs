using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Fib;

/// <summary>Which source installed a prefix; the FIB follows the highest-priority one present.</summary>
public enum RouteSource : byte
{
    Local,    // an address of the router
    Kernel,   // a route in one of Linux's tables
    Neighbor, // a resolved neighbour (host route to it)
}

/// <summary>The seam between the FIB writer and the workers: publishing what they read, and
/// waiting until none can still read what was replaced. <see cref="DataplaneEngine"/> in
/// production; unit tests use one whose grace periods can be made to time out.</summary>
public interface IFibPublisher
{
    /// <summary>Makes <paramref name="snapshot"/> what workers read from their next loop on
    /// (a release store; returns at once).</summary>
    void Publish(FibSnapshot snapshot);

    /// <summary>Waits until every running worker passed a quiescent point after this call.
    /// False when one did not in time: then nothing it might still read may be changed.</summary>
    bool WaitGracePeriod(TimeSpan timeout);

    /// <summary>The peer MAC the workers learned on a point-to-point port (0: none yet).</summary>
    ulong PeerMac(ushort port);

    /// <summary>Appends each source address the workers saw on a point-to-point port, with its MAC.</summary>
    void LearnedNeighbors(List<Tables.LearnedNeighbor> into);
}

/// <summary>What one <see cref="FibWriter.Commit"/> did.</summary>
/// <param name="FibWrites">prefix adds/deletes applied (per copy)</param>
/// <param name="GroupRewrites">live groups rewritten (nexthop objects replaced)</param>
/// <param name="PathRewrites">adjacency rewrites flipped</param>
/// <param name="Refused">prefixes or targets refused for lack of space or ids (counted, logged
/// by the caller; they punt to Linux until space comes back)</param>
/// <param name="GraceTimedOut">a worker missed the grace period: the other copy and every
/// freed id wait for the next commit</param>
/// <param name="Deferred">nothing was applied: the previous commit's grace period still had not
/// completed; the changes stay pending</param>
/// <param name="Pending">changes accepted and not yet in the dataplane after this commit</param>
public readonly record struct CommitResult(int FibWrites, int GroupRewrites, int PathRewrites, int Refused,
    bool GraceTimedOut, bool Deferred, int Pending);

/// <summary>One installed FIB entry, for show commands and <c>lcp verify</c>.</summary>
public sealed record FibEntry(Prefix Prefix, int Table, RouteSource Source, GroupKind Kind, int Group, NexthopKey? Nexthop,
    IReadOnlyList<(ushort Port, UInt128 Via, bool Resolved)> Paths);

/// <summary>One dataplane table: its id, index and lookup structures (two copies per family).</summary>
public sealed record FibTableInfo(TableId Id, int Index, FibCapacity Capacity4, FibCapacity Capacity6, int Routes4, int Routes6,
    long Refused, bool Full);

/// <summary>The writer side of the FIB: the only code that changes what workers look up.
/// Single writer (callers serialise). Changes are collected (<see cref="Set"/>,
/// <see cref="SetNeighbor"/>, <see cref="SetPort"/>, <see cref="SetNexthop"/>); a
/// <see cref="Commit"/> applies them as one transaction: prefix writes and group rewrites go to
/// the standby copy, which is published; after the workers' grace period the other copy is
/// brought level and released ids become reusable. When a grace period times out, nothing a
/// worker may still read is written: the other copy, path slots and freed ids wait until a later
/// grace period completes. Running out of any id space or table space is a counted refusal (the
/// prefix punts to Linux), never an exception.</summary>
public sealed unsafe partial class FibWriter : IDisposable
{
    public static readonly TimeSpan DefaultGraceTimeout = TimeSpan.FromSeconds(2);

    private readonly IFibBackend _backend;
    private readonly IFibPublisher _pub;
    private readonly NextHopTables _nh = new();
    private readonly AdjacencyTable _adj;
    private readonly GroupTable _groups;

    // Route targets: interned; each holds one reference on the group it resolves to.
    private readonly Interner<RouteTarget> _targets = new(1, int.MaxValue, deferred: false, initialCapacity: 1024);
    private int[] _targetGroup = new int[1024];
    private readonly HashSet<int> _degraded = []; // resolved to PuntToLinux for lack of ids or object

    private sealed class NexthopState
    {
        public int Group = -1; // -1: no group could be had
        public RouteTarget Content = RouteTarget.PuntTarget;
    }

    private readonly Dictionary<NexthopKey, NexthopState> _nexthops = [];
    private bool _objectsAppeared;

    private const byte FlagRefused = 1, FlagDirty = 2;

    /// <summary>What each source wants for a prefix (interned target ids, 0: nothing) and what
    /// is installed. Reference-free: a full table is native memory the GC never sees.</summary>
    private struct PrefixState
    {
        public int Local, Kernel, Neighbor;
        public int Installed; // group id, -1: not in the FIB
        public RouteSource Source;
        public byte Flags;

        public readonly (int Target, RouteSource Source) Effective() =>
            Local != 0 ? (Local, RouteSource.Local)
            : Kernel != 0 ? (Kernel, RouteSource.Kernel)
            : Neighbor != 0 ? (Neighbor, RouteSource.Neighbor) : (0, RouteSource.Local);
    }

    private readonly NativeMap<FibKey, PrefixState> _prefixes = new(1024);

    private sealed class TableSlot
    {
        public required TableId Id;
        public FibCapacity Cap4, Cap6;
        public readonly nint[] V4 = new nint[2];
        public readonly nint[] V6 = new nint[2];
        public int Count4, Count6;
        public long Refused;
        public bool Grow4, Grow6, Full4, Full6;
    }

    private readonly TableSlot?[] _tables = new TableSlot?[FibSnapshot.MaxTables];
    private readonly Dictionary<TableId, int> _tableIndex = [];
    private readonly FibSnapshot?[] _snapshots = new FibSnapshot?[2];
    private readonly List<(nint Fib, bool V6)> _freeLater = [];

    private enum OpAction : byte { Add, Delete }

    private struct Op
    {
        public FibKey Key;
        public int Group;   // -1: delete
        public OpAction Action;
    }

    // Changed prefixes, each once (a flag in its state says it is listed): native, so a whole
    // table's worth never becomes a large-object allocation.
    private readonly NativeList<FibKey> _dirty = new();
    // Prefixes a full table refused: retried as deletes make room, or all at once when it grows.
    private readonly HashSet<FibKey> _refusedKeys = [];
    private readonly int[] _freedByTable = new int[FibSnapshot.MaxTables];
    private readonly OpLog _ops = new();
    private int _active;
    private bool _graceOwed;
    private bool _gracePassed; // with _graceOwed: only the other copy's writes are owed
    private bool _staged;      // _ops holds staged writes, in the standby copy and not published

    /// <summary>How long a commit waits for the workers' grace period.</summary>
    public TimeSpan GraceTimeout { get; init; } = DefaultGraceTimeout;

    /// <summary>Bytes of EAL memory still free (to decide whether a full table may grow); null: unknown, grow freely.</summary>
    public Func<long>? AvailableMemory { get; init; }

    /// <summary>Called with a one-line message for events an operator must hear about (a table
    /// full, ids exhausted, a grace period missed). Rate limiting is the caller's.</summary>
    public Action<string>? Warn { get; set; }

    public long Commits { get; private set; }
    public long FibOps { get; private set; }
    /// <summary>FIB writes the backend refused (table full, tbl8 groups used up).</summary>
    public long FibErrors { get; private set; }
    public long GraceTimeouts { get; private set; }
    public long Refusals { get; private set; }
    public long TablesGrown { get; private set; }

    /// <param name="main">the default table (index 0) and its capacity per family.</param>
    public FibWriter(IFibBackend backend, IFibPublisher publisher, TableId main, FibCapacity main4, FibCapacity main6)
    {
        _backend = backend;
        _pub = publisher;
        _adj = new AdjacencyTable(_nh);
        _groups = new GroupTable(_nh, _adj);
        if (OpenTable(main, main4, main6, out string? error) != 0)
        {
            _nh.Dispose();
            _prefixes.Dispose();
            throw new FibCapacityException(error!);
        }
    }

    // ---- tables --------------------------------------------------------------------------------

    /// <summary>The dense index of a table, or -1.</summary>
    public int TableIndex(TableId id) => _tableIndex.TryGetValue(id, out int i) ? i : -1;

    public TableId TableOf(int index) => _tables[index]?.Id ?? throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Creates a table's lookup structures (both copies, both families) and publishes
    /// them; returns its index, or -1 with a one-line reason.</summary>
    public int OpenTable(TableId id, FibCapacity cap4, FibCapacity cap6, out string? error)
    {
        error = null;
        if (_tableIndex.TryGetValue(id, out int existing))
            return existing;
        int index = Array.IndexOf(_tables, null, 0, FibSnapshot.PuntTable); // the last slot stays empty
        if (index < 0)
        {
            error = $"at most {FibSnapshot.PuntTable} dataplane tables";
            return -1;
        }
        var t = new TableSlot { Id = id, Cap4 = cap4, Cap6 = cap6 };
        if (!CreateInstances(t, index, t.V4, false, cap4, out error) || !CreateInstances(t, index, t.V6, true, cap6, out error))
        {
            FreeInstances(t.V4, false);
            FreeInstances(t.V6, true);
            return -1;
        }
        _tables[index] = t;
        _tableIndex[id] = index;
        InvalidateSnapshots();
        _pub.Publish(Snapshot(_active)); // adds a table: nothing is replaced, no grace needed
        return index;
    }

    // DPDK names FIB instances process-wide: any writer's instances must be named apart.
    private static long s_instanceSeq;

    private bool CreateInstances(TableSlot t, int index, nint[] into, bool v6, FibCapacity cap, out string? error)
    {
        error = null;
        for (int c = 0; c < 2; c++)
        {
            // Unique while the old instances wait out their grace period (and across writers).
            into[c] = _backend.Create($"lcp{(v6 ? "6" : "4")}_{index}_{c}_{Interlocked.Increment(ref s_instanceSeq)}", v6, cap, out int errno);
            if (into[c] == 0)
            {
                long need = 2 * _backend.EstimateBytes(v6, cap);
                error = $"cannot create the {(v6 ? "IPv6" : "IPv4")} FIB of table {t.Id.Table} ({cap}, {need >> 20} MiB for its two copies): "
                    + (errno is 12 or 28 or 2 or 0 ? "not enough EAL memory" : $"errno {errno}");
                return false;
            }
        }
        return true;
    }

    private void FreeInstances(nint[] fibs, bool v6)
    {
        for (int c = 0; c < 2; c++)
        {
            _backend.Free(fibs[c], v6);
            fibs[c] = 0;
        }
    }

    /// <summary>Removes an empty table (every prefix of it was removed and committed). The
    /// default table (index 0) stays.</summary>
    public bool CloseTable(int index)
    {
        TableSlot? t = index > 0 ? _tables[index] : null;
        if (t is null || t.Count4 + t.Count6 != 0)
            return false;
        ShadowQuiesce();
        _tables[index] = null;
        _tableIndex.Remove(t.Id);
        InvalidateSnapshots();
        _pub.Publish(Snapshot(_active));
        if (!_graceOwed && _pub.WaitGracePeriod(GraceTimeout))
        {
            FreeInstances(t.V4, false);
            FreeInstances(t.V6, true);
        }
        else
        {
            for (int c = 0; c < 2; c++)
            {
                _freeLater.Add((t.V4[c], false));
                _freeLater.Add((t.V6[c], true));
            }
        }
        return true;
    }

    public IReadOnlyList<FibTableInfo> Tables()
    {
        var list = new List<FibTableInfo>();
        for (int i = 0; i < _tables.Length; i++)
            if (_tables[i] is TableSlot t)
                list.Add(new FibTableInfo(t.Id, i, t.Cap4, t.Cap6, t.Count4, t.Count6, t.Refused, t.Full4 || t.Full6));
        return list;
    }

    private void InvalidateSnapshots()
    {
        _snapshots[0] = null;
        _snapshots[1] = null;
    }

    private FibSnapshot Snapshot(int copy)
    {
        if (_snapshots[copy] is FibSnapshot s)
            return s;
        var v4 = new nint[FibSnapshot.MaxTables];
        var v6 = new nint[FibSnapshot.MaxTables];
        for (int i = 0; i < _tables.Length; i++)
        {
            if (_tables[i] is TableSlot t)
            {
                v4[i] = t.V4[copy];
                v6[i] = t.V6[copy];
            }
        }
        return _snapshots[copy] = new FibSnapshot(v4, v6, _nh.GroupCopy(copy), _nh.Paths);
    }

    // ---- changes -------------------------------------------------------------------------------

    /// <summary>What <paramref name="source"/> wants for a prefix of a table (null: nothing).</summary>
    public void Set(int table, in Prefix p, RouteSource source, RouteTarget? target)
    {
        if ((uint)table >= (uint)_tables.Length || _tables[table] is null)
            throw new ArgumentOutOfRangeException(nameof(table), $"table index {table} is not open");
        var key = new FibKey(table, p);
        ref PrefixState s = ref Unsafe.NullRef<PrefixState>();
        if (target is null)
        {
            s = ref _prefixes.GetValueRefOrNullRef(key);
            if (Unsafe.IsNullRef(ref s))
                return;
        }
        else
        {
            s = ref _prefixes.GetValueRefOrAddDefault(key, out bool exists);
            if (!exists)
                s.Installed = -1;
        }
        int id = target is null ? 0 : AcquireTarget(target);
        ref int slot = ref source == RouteSource.Local ? ref s.Local : ref source == RouteSource.Kernel ? ref s.Kernel : ref s.Neighbor;
        if (slot == id)
        {
            if (id != 0)
                ReleaseTarget(id); // unchanged: drop the extra reference
            // Unchanged but not in the dataplane (lost, or refused earlier): a resync's replay
            // puts it back.
            if (s.Installed < 0 && s.Effective().Target != 0)
                MarkDirty(ref s, key);
            return;
        }
        if (slot != 0)
            ReleaseTarget(slot);
        slot = id;
        MarkDirty(ref s, key);
    }

    private void MarkDirty(ref PrefixState s, in FibKey key)
    {
        if ((s.Flags & FlagDirty) != 0)
            return;
        s.Flags |= FlagDirty;
        _dirty.Add(key);
    }

    private void MarkDirty(in FibKey key)
    {
        ref PrefixState s = ref _prefixes.GetValueRefOrNullRef(key);
        if (!Unsafe.IsNullRef(ref s))
            MarkDirty(ref s, key);
    }

    private int AcquireTarget(RouteTarget t)
    {
        // A target instance remembers its id: the route path passes the same cached instance for
        // every route through a next hop, so this skips the dictionary (hashing a target).
        int known = t.InternId;
        if (known > 0 && known < _targets.HighWater && _targets.References(known) > 0 && ReferenceEquals(_targets[known], t))
        {
            _targets.AddRef(known);
            return known;
        }
        _targets.TryAcquire(t, out int id, out bool created); // the target id space is unbounded
        if (ReferenceEquals(_targets[id], t))
            t.InternId = id;
        if (created)
        {
            if (id >= _targetGroup.Length)
                Array.Resize(ref _targetGroup, Math.Max(_targetGroup.Length * 2, id + 1));
            _targetGroup[id] = Resolve(t, id);
        }
        return id;
    }

    private void ReleaseTarget(int id)
    {
        if (!_targets.Release(id))
            return;
        if (!_degraded.Remove(id))
            _groups.Release(_targetGroup[id]);
        _targetGroup[id] = 0;
    }

    /// <summary>The group a target resolves to, holding a reference on it; PuntToLinux (and the
    /// target noted as degraded, to retry) when no group can be had.</summary>
    private int Resolve(RouteTarget t, int id)
    {
        switch (t.Kind)
        {
            case GroupKind.Local or GroupKind.Blackhole or GroupKind.Unreachable or GroupKind.PuntToLinux or GroupKind.NoRoute:
                return (int)t.Kind;
        }
        if (t.Nexthop is NexthopKey nk)
        {
            if (_nexthops.TryGetValue(nk, out NexthopState? st) && st.Group >= 0)
            {
                _groups.AddRef(st.Group);
                return st.Group;
            }
        }
        else if (_groups.TryAcquire(t, out int gid))
        {
            return gid;
        }
        else
        {
            Refusals++;
            Warn?.Invoke($"FIB: no group or path id left for {t} (groups {_groups.Count}/{_groups.Capacity}, paths {_adj.Count}/{_adj.Capacity}): its prefixes punt to Linux");
        }
        _degraded.Add(id);
        return (int)GroupKind.PuntToLinux;
    }

    /// <summary>A neighbour of a port: resolved (MAC) or not (null). Changes the rewrite of the
    /// adjacency (every route through it); host routes to neighbours are the caller's.</summary>
    public void SetNeighbor(ushort port, bool v6, UInt128 ip, DpdkSharp.MacAddress? mac) =>
        _adj.SetNeighbor(new AdjacencyKey(port, v6, ip), mac?.Bits);

    /// <summary>State of a physical port as Linux configured its mirror;
    /// <paramref name="pointToPoint"/> for a TUN mirror (no ARP/ND: see <see cref="RefreshPeers"/>).</summary>
    public void SetPort(ushort port, bool up, ushort mtu, DpdkSharp.MacAddress mac, bool pointToPoint = false)
    {
        PortState old = _adj.Port(port);
        _adj.SetPort(port, new PortState(up, mtu, mac.Bits, pointToPoint, pointToPoint ? old.PeerMac : 0));
    }

    /// <summary>Takes over the peer MACs the workers learned on point-to-point ports. Returns
    /// whether any changed (then a <see cref="Commit"/> rewrites the paths through them).</summary>
    public bool RefreshPeers()
    {
        bool changed = false;
        for (ushort port = 0; port < DpdkSharp.EthPort.MaxPorts; port++)
            if (_adj.Port(port).PointToPoint)
                changed |= _adj.SetPeer(port, _pub.PeerMac(port));
        return changed;
    }

    /// <summary>The source addresses (and MACs) the workers saw on point-to-point ports: the
    /// control plane makes them those ports' neighbours (Linux has none there).</summary>
    public void LearnedNeighbors(List<Tables.LearnedNeighbor> into) => _pub.LearnedNeighbors(into);

    /// <summary>Forgets the neighbours and link state of a port (its pair went away).</summary>
    public void ForgetPort(ushort port) => _adj.ForgetPort(port);

    /// <summary>A kernel nexthop object's content (null: deleted). The object has a group of its
    /// own; replacing the content rewrites that group in the next commit, which moves every
    /// route using the object at once without touching the routes.</summary>
    public void SetNexthop(NexthopKey key, RouteTarget? content)
    {
        if (content?.Nexthop is not null)
            throw new ArgumentException("a nexthop object's content cannot be another object (groups are flattened by the caller)");
        _nexthops.TryGetValue(key, out NexthopState? st);
        if (content is null)
        {
            if (st is null)
                return;
            _nexthops.Remove(key);
            if (st.Group >= 0)
            {
                // Routes still naming it (the kernel deletes them right after) punt meanwhile.
                _groups.TryRewrite(st.Group, RouteTarget.PuntTarget);
                _groups.Release(st.Group);
            }
            return;
        }
        if (st is null)
        {
            st = new NexthopState { Content = content };
            _nexthops[key] = st;
            if (_groups.TryCreateObject(key, content, out int gid))
            {
                st.Group = gid;
                _objectsAppeared = true;
            }
            else
            {
                Refusals++;
                Warn?.Invoke($"FIB: no group or path id left for {key}: routes using it punt to Linux");
            }
            return;
        }
        if (content.Equals(st.Content))
            return;
        st.Content = content;
        if (st.Group < 0)
        {
            if (_groups.TryCreateObject(key, content, out int gid))
            {
                st.Group = gid;
                _objectsAppeared = true;
            }
            return;
        }
        if (!_groups.TryRewrite(st.Group, content))
        {
            Refusals++;
            _groups.TryRewrite(st.Group, RouteTarget.PuntTarget); // needs no paths: always fits
            Warn?.Invoke($"FIB: no path id left for the new content of {key}: routes using it punt to Linux");
        }
    }

    // ---- commit --------------------------------------------------------------------------------

    /// <summary>Changes accepted and not yet in the dataplane (prefixes, adjacencies, group rewrites).</summary>
    public int Pending => _dirty.Count + _adj.DirtyCount + (_graceOwed || _staged ? _ops.Count + _groups.PendingRewrites : _groups.PendingRewrites);

    /// <summary>Writes the changes so far into the standby copy only, unpublished, and keeps
    /// them for the next <see cref="Commit"/> (which publishes them with its own). For a large
    /// load (the start-up dump): the published copy keeps serving meanwhile, no grace period is
    /// waited for per batch, and the other copy gets the writes once, after the last commit
    /// (<see cref="CatchUp"/>). Returns the refusals; false if a commit's second copy is still
    /// owed and its grace period has not passed (the changes then stay pending).</summary>
    public bool Stage(out int refused)
    {
        refused = 0;
        if (_graceOwed && !SettleBehind())
        {
            GraceTimeouts++;
            return false;
        }
        RepairDegraded();
        refused = ApplyDirty(_active ^ 1);
        _staged |= _ops.Count != 0;
        ShadowHandOff();
        return true;
    }

    /// <summary>Writes the other copy still owes (a deferred or timed-out commit's).</summary>
    public int OwedWrites => _graceOwed ? _ops.Count : 0;

    /// <summary>Brings the unpublished copy level now if a commit left that for later
    /// (<c>Commit(deferSecondCopy: true)</c>); then grows full tables and retries refused
    /// prefixes as a commit does. Returns whether there was anything to do.</summary>
    public bool CatchUp()
    {
        if (!_graceOwed || !_gracePassed)
            return false;
        SettleBehind();
        GrowFullTables();
        if (RetryRefused())
            Commit();
        return true;
    }

    /// <summary>Applies every change since the last commit as one transaction; see the class summary.</summary>
    /// <param name="deferSecondCopy">publish and wait for the grace period, but leave the other
    /// copy's writes to <see cref="CatchUp"/> or the next commit (after a large load, so that
    /// the load's end is not delayed by writing it a second time)</param>
    public CommitResult Commit(bool deferSecondCopy = false)
    {
        if (_graceOwed && !SettleBehind())
        {
            GraceTimeouts++;
            return new CommitResult(0, 0, 0, 0, true, true, Pending);
        }
        FreeDeferredInstances();
        RepairDegraded();
        if (_dirty.Count == 0 && _ops.Count == 0 && _adj.DirtyCount == 0 && _groups.PendingRewrites == 0 && _groups.PendingFree == 0 && _adj.PendingFree == 0)
            return new CommitResult(0, 0, 0, 0, false, false, 0);

        int standby = _active ^ 1;
        int refused = ApplyDirty(standby);
        int groupRewrites = _groups.PendingRewrites;
        int pathRewrites = _adj.Rewrite();
        bool publish = _ops.Count != 0 || groupRewrites != 0;
        if (publish)
        {
            _groups.WriteRewrites(standby);
            _active = standby;
            _pub.Publish(Snapshot(standby));
        }
        _staged = false;
        int writes = _ops.Count;
        Commits++;
        FibOps += writes;
        if (!_pub.WaitGracePeriod(GraceTimeout))
        {
            // The other copy, the old path slots and every freed id may still be read: they
            // wait for the next commit's grace period (SettleBehind).
            _graceOwed = true;
            GraceTimeouts++;
            Warn?.Invoke($"FIB: a worker missed the grace period ({GraceTimeout.TotalMilliseconds} ms): the commit's second copy and freed ids are deferred");
            return new CommitResult(writes, groupRewrites, pathRewrites, refused, true, false, Pending);
        }
        if (deferSecondCopy && publish)
        {
            // The other copy is no longer read (the grace period passed): it is written when
            // CatchUp or the next commit settles it.
            _graceOwed = _gracePassed = true;
            return new CommitResult(writes, groupRewrites, pathRewrites, refused, false, false, Pending);
        }
        LevelCopy(standby ^ 1); // (nothing to replay when nothing was published)
        GrowFullTables();
        if (RetryRefused())
        {
            // The retried prefixes go in now, not with whatever netlink brings next (perhaps
            // nothing). Adds free no room, so this second commit retries nothing more.
            CommitResult again = Commit();
            return again with { FibWrites = again.FibWrites + writes, GroupRewrites = again.GroupRewrites + groupRewrites, PathRewrites = again.PathRewrites + pathRewrites };
        }
        return new CommitResult(writes, groupRewrites, pathRewrites, refused, false, false, Pending);
    }

    /// <summary>Completes a commit whose grace period timed out: once a grace period passes,
    /// the other copy gets the same writes and freed ids become reusable.</summary>
    private bool SettleBehind()
    {
        if (!_gracePassed && !_pub.WaitGracePeriod(GraceTimeout))
            return false;
        _gracePassed = false;
        LevelCopy(_active ^ 1);
        _graceOwed = false;
        return true;
    }

    /// <summary>Once no worker reads <paramref name="copy"/>: it gets the settled writes and
    /// group rewrites, and the ids the transaction freed become reusable.</summary>
    private void LevelCopy(int copy)
    {
        ReplayOps(copy);
        _groups.WriteRewrites(copy);
        _groups.ClearRewrites();
        _ops.Clear();
        Reclaim();
    }

    private void Reclaim()
    {
        int freed = _groups.Reclaim() + _adj.Reclaim();
        if (freed != 0 && _degraded.Count != 0)
            _objectsAppeared = true; // ids came back: degraded targets may resolve now
    }

    /// <summary>Degraded targets (punting for lack of ids or of their nexthop object) that can
    /// resolve now get their group, and their prefixes are rewritten.</summary>
    private void RepairDegraded()
    {
        if (_degraded.Count == 0 || !_objectsAppeared)
            return;
        _objectsAppeared = false;
        var repaired = new HashSet<int>();
        foreach (int tid in _degraded.ToList())
        {
            _degraded.Remove(tid);
            int gid = Resolve(_targets[tid], tid);
            _targetGroup[tid] = gid;
            if (!_degraded.Contains(tid))
                repaired.Add(tid);
        }
        if (repaired.Count == 0)
            return;
        for (var e = _prefixes.GetEnumerator(); e.MoveNext();)
            if (repaired.Contains(e.Value.Effective().Target))
                MarkDirty(ref e.Value, e.Key);
    }

    /// <summary>Settles every changed prefix: its winning source's group goes into the standby
    /// copy at once (one lookup per prefix), and the write is recorded for the other copy. A
    /// refused add becomes a delete of what was there, so no stale group id stays in a table.
    /// Returns the refusals.</summary>
    private int ApplyDirty(int copy)
    {
        int refused = 0;
        for (int i = 0; i < _dirty.Count; i++)
        {
            FibKey k = _dirty[i];
            ref PrefixState s = ref _prefixes.GetValueRefOrNullRef(k);
            if (Unsafe.IsNullRef(ref s))
                continue;
            s.Flags &= unchecked((byte)~FlagDirty);
            var (tid, source) = s.Effective();
            int gid = tid == 0 ? -1 : _targetGroup[tid];
            s.Source = source;
            bool wasRefused = (s.Flags & FlagRefused) != 0;
            if (gid == s.Installed && !wasRefused)
            {
                if (tid == 0)
                    _prefixes.Remove(k);
                continue;
            }
            if (gid < 0 && s.Installed < 0)
            {
                if (wasRefused)
                    _refusedKeys.Remove(k);
                _prefixes.Remove(k); // never got in (refused), and nothing wants it now
                continue;
            }
            TableSlot t = _tables[k.Table]!;
            nint fib = k.V6 ? t.V6[copy] : t.V4[copy];
            bool wasIn = s.Installed >= 0;
            if (gid >= 0)
            {
                if (_backend.Add(fib, k, (ushort)gid) == 0)
                {
                    if (!wasIn)
                        CountIn(t, k.V6, +1);
                    s.Installed = gid;
                    if (wasRefused)
                    {
                        s.Flags &= unchecked((byte)~FlagRefused);
                        _refusedKeys.Remove(k);
                    }
                    AddOp(k, gid);
                    continue;
                }
                FibErrors++;
                refused++;
                t.Refused++;
                if (k.V6)
                    t.Grow6 = true;
                else
                    t.Grow4 = true;
                s.Flags |= FlagRefused;
                _refusedKeys.Add(k);
                if (!wasIn)
                    continue;
            }
            int rc = _backend.Delete(fib, k);
            if (rc < 0 && rc != -2)
                FibErrors++;
            AddOp(k, -1);
            if (wasIn)
            {
                CountIn(t, k.V6, -1);
                _freedByTable[k.Table]++;
            }
            s.Installed = -1;
            if (s.Effective().Target == 0)
            {
                if ((s.Flags & FlagRefused) != 0)
                    _refusedKeys.Remove(k);
                _prefixes.Remove(k);
            }
        }
        _dirty.Clear();
        return refused;
    }

    private void AddOp(in FibKey k, int gid)
    {
        _ops.Add(new Op { Key = k, Group = gid, Action = gid < 0 ? OpAction.Delete : OpAction.Add });
    }

    /// <summary>Room made by deletes goes to prefixes refused earlier: as many of the table's
    /// refused prefixes as were deleted from it are tried again (at once: see Commit).
    /// Returns whether any were marked. A table that routes left with room for all its refused
    /// prefixes is no longer full: one that still does not fit asks for growth again, which marks
    /// the table full again if it cannot grow.</summary>
    private bool RetryRefused()
    {
        // Room for every refused prefix of a table: it may grow again if they still do not fit.
        Span<int> waiting = stackalloc int[_freedByTable.Length];
        foreach (FibKey k in _refusedKeys)
            waiting[k.Table]++;
        for (int i = 0; i < _freedByTable.Length; i++)
            if (_freedByTable[i] > 0 && _freedByTable[i] >= waiting[i] && _tables[i] is TableSlot t)
                t.Full4 = t.Full6 = false;
        bool marked = false;
        foreach (FibKey k in _refusedKeys)
        {
            if (_freedByTable[k.Table] <= 0)
                continue;
            _freedByTable[k.Table]--;
            MarkDirty(k);
            marked = true;
        }
        Array.Clear(_freedByTable);
        return marked;
    }

    /// <summary>Brings the other copy level with the settled ops (after a grace period).</summary>
    private void ReplayOps(int copy)
    {
        long errors = 0;
        ReplayRange(_ops, ShadowDone(copy), _ops.Count, copy, ref errors);
        FibErrors += errors;
    }

    private static void CountIn(TableSlot t, bool v6, int delta)
    {
        if (v6)
            t.Count6 += delta;
        else
            t.Count4 += delta;
    }

    // ---- growing a full table ------------------------------------------------------------------

    private void GrowFullTables()
    {
        for (int i = 0; i < _tables.Length; i++)
        {
            if (_tables[i] is not TableSlot t)
                continue;
            // A rebuild that still refused prefixes asks for another growth: it either doubles
            // again or marks the table full, so this ends.
            while (t.Grow4 && !t.Full4)
            {
                t.Grow4 = false;
                Grow(i, t, false);
            }
            while (t.Grow6 && !t.Full6)
            {
                t.Grow6 = false;
                Grow(i, t, true);
            }
            t.Grow4 = t.Grow6 = false;
        }
    }

    /// <summary>Rebuilds one family of a table with twice the room (routes, or tbl8 groups when
    /// the routes are not what ran out): both new copies are filled from the model, published in
    /// one step, and the old ones freed after the grace period. A table that cannot grow (no
    /// memory, tbl8 at its limit) is marked full until routes leave it.</summary>
    private void Grow(int index, TableSlot t, bool v6)
    {
        ShadowQuiesce();
        FibCapacity cap = v6 ? t.Cap6 : t.Cap4;
        int count = v6 ? t.Count6 : t.Count4;
        FibCapacity next = count + 1 >= cap.Routes * 9L / 10
            ? cap with { Routes = cap.Routes * 2 }
            : cap with { Tbl8 = Math.Min(_backend.MaxTbl8(v6), cap.Tbl8 * 2) };
        if (next == cap)
        {
            MarkFull(t, v6, $"FIB table {t.Id.Table}: {(v6 ? "IPv6" : "IPv4")} tbl8 groups at the maximum ({cap.Tbl8}): further routes punt to Linux");
            return;
        }
        long need = 2 * _backend.EstimateBytes(v6, next);
        if (AvailableMemory?.Invoke() is long free && free < need)
        {
            MarkFull(t, v6, $"FIB table {t.Id.Table}: {(v6 ? "IPv6" : "IPv4")} full at {cap}; growing to {next} needs {need >> 20} MiB, EAL has {free >> 20} MiB free (give EAL more memory or set the FIB sizes at start): further routes punt to Linux");
            return;
        }
        var fresh = new nint[2];
        if (!CreateInstances(t, index, fresh, v6, next, out string? error))
        {
            FreeInstances(fresh, v6);
            MarkFull(t, v6, error + ": further routes punt to Linux");
            return;
        }
        int installed = 0, stillRefused = 0;
        foreach (var (k, s) in _prefixes)
        {
            if (k.Table != index || k.V6 != v6)
                continue;
            var (tid, _) = s.Effective();
            if (tid == 0)
                continue;
            int gid = s.Installed >= 0 ? s.Installed : _targetGroup[tid];
            bool ok = _backend.Add(fresh[0], k, (ushort)gid) == 0 && _backend.Add(fresh[1], k, (ushort)gid) == 0;
            if (!ok)
            {
                stillRefused++; // stays flagged: the next growth (or the table marked full) follows
                continue;
            }
            ref PrefixState live = ref _prefixes.GetValueRefOrNullRef(k);
            live.Installed = gid;
            live.Flags &= unchecked((byte)~FlagRefused);
            _refusedKeys.Remove(k);
            installed++;
        }
        nint[] old = v6 ? t.V6 : t.V4;
        var retired = new[] { old[0], old[1] };
        old[0] = fresh[0];
        old[1] = fresh[1];
        if (v6)
        {
            t.Cap6 = next;
            t.Count6 = installed;
        }
        else
        {
            t.Cap4 = next;
            t.Count4 = installed;
        }
        InvalidateSnapshots();
        _pub.Publish(Snapshot(_active));
        TablesGrown++;
        Warn?.Invoke($"FIB table {t.Id.Table}: {(v6 ? "IPv6" : "IPv4")} grew from {cap} to {next}");
        if (stillRefused > 0)
        {
            if (v6)
                t.Grow6 = true;
            else
                t.Grow4 = true;
        }
        if (_pub.WaitGracePeriod(GraceTimeout))
            FreeInstances(retired, v6);
        else
        {
            _freeLater.Add((retired[0], v6));
            _freeLater.Add((retired[1], v6));
        }
    }

    private void MarkFull(TableSlot t, bool v6, string message)
    {
        if (v6)
            t.Full6 = true;
        else
            t.Full4 = true;
        Warn?.Invoke(message);
    }

    private void FreeDeferredInstances()
    {
        if (_freeLater.Count == 0 || !_pub.WaitGracePeriod(GraceTimeout))
            return;
        foreach (var (fib, v6) in _freeLater)
            _backend.Free(fib, v6);
        _freeLater.Clear();
    }

    // ---- reading (control plane) -------------------------------------------------------------

    public int Count4 => _tables.Sum(t => t?.Count4 ?? 0);
    public int Count6 => _tables.Sum(t => t?.Count6 ?? 0);

    /// <summary>Distinct route targets in use (shared by every prefix that wants the same thing).</summary>
    public int Targets => _targets.Count;
    public int Groups => _groups.Count;
    public int Paths => _adj.Count;
    public int Nexthops => _nexthops.Count;
    /// <summary>Prefixes that want a route the dataplane could not take (table full).</summary>
    public int RefusedPrefixes => _refusedKeys.Count;

    /// <summary>Native bytes of the writer's own tables (prefix map, group and path arrays).</summary>
    public long NativeBytes => _prefixes.Bytes + NextHopTables.Bytes;

    public List<FibEntry> Dump(int table, bool v6, Prefix? filter = null)
    {
        var list = new List<FibEntry>();
        foreach (var (k, s) in _prefixes)
        {
            if (k.Table != table || k.V6 != v6 || s.Installed < 0)
                continue;
            Prefix p = k.Prefix;
            if (filter is Prefix f && !(f.Length == p.Length ? f.Address == p.Address : p.Contains(f)))
                continue;
            list.Add(Describe(p, table, s.Source, s.Installed));
        }
        list.Sort((a, b) => a.Prefix.Address != b.Prefix.Address ? a.Prefix.Address.CompareTo(b.Prefix.Address) : a.Prefix.Length.CompareTo(b.Prefix.Length));
        return list;
    }

    private FibEntry Describe(Prefix p, int table, RouteSource source, int gid)
    {
        GroupKind kind = _groups.Kind(gid);
        var paths = new List<(ushort, UInt128, bool)>();
        foreach (int pid in _groups.Paths(gid).Distinct())
        {
            AdjacencyKey a = _adj.Key(pid);
            paths.Add((a.Port, a.Ip, _adj.Resolved(pid)));
        }
        if (kind == GroupKind.Glean)
            paths.Add((_groups.GleanPort(gid), UInt128.Zero, false));
        return new FibEntry(p, table, source, kind, gid, _groups.Owner(gid), paths);
    }

    /// <summary>Visits every installed prefix of a table without allocating (for <c>lcp verify</c>
    /// on a full table).</summary>
    public void ForEachInstalled<TVisitor>(int table, ref TVisitor visitor) where TVisitor : IFibVisitor
    {
        foreach (var (k, s) in _prefixes)
            if (k.Table == table && s.Installed >= 0)
                visitor.Visit(k, s.Source, s.Installed);
    }

    /// <summary>What a group does: its kind, its distinct paths (port, neighbour) and the nexthop
    /// object it belongs to.</summary>
    public (GroupKind Kind, List<(ushort Port, UInt128 Via)> Paths, NexthopKey? Nexthop) DescribeGroup(int gid)
    {
        GroupKind kind = _groups.Kind(gid);
        var paths = new List<(ushort, UInt128)>();
        foreach (int pid in _groups.Paths(gid).Distinct())
        {
            AdjacencyKey a = _adj.Key(pid);
            paths.Add((a.Port, a.Ip));
        }
        if (kind == GroupKind.Glean)
            paths.Add((_groups.GleanPort(gid), UInt128.Zero));
        return (kind, paths, _groups.Owner(gid));
    }

    /// <summary>Test hook for <c>lcp verify</c> (debug commands only): removes a prefix from the
    /// dataplane as if an update had been lost, leaving every source's wish in place. Both
    /// copies at once: a lookup racing it may see either answer.</summary>
    public bool DropInstalled(int table, in Prefix p)
    {
        var k = new FibKey(table, p);
        ref PrefixState s = ref _prefixes.GetValueRefOrNullRef(k);
        if (Unsafe.IsNullRef(ref s) || s.Installed < 0)
            return false;
        ShadowQuiesce();
        TableSlot t = _tables[table]!;
        for (int c = 0; c < 2; c++)
            _backend.Delete(k.V6 ? t.V6[c] : t.V4[c], k);
        CountIn(t, k.V6, -1);
        s.Installed = -1;
        return true;
    }

    /// <summary>The installed entry of exactly this prefix, or null.</summary>
    public FibEntry? Installed(int table, in Prefix p)
    {
        var k = new FibKey(table, p);
        if (!_prefixes.TryGetValue(k, out PrefixState s) || s.Installed < 0)
            return null;
        return Describe(p, table, s.Source, s.Installed);
    }

    /// <summary>Checks the lookup structures themselves against the model for one table and
    /// family: every installed prefix must be in both copies with its group (unless a commit's
    /// second copy is still deferred). Returns the differences as one line each.</summary>
    public List<string> CheckDataplane(int table, bool v6, int max = 100)
    {
        var diffs = new List<string>();
        ShadowQuiesce();
        TableSlot? t = _tables[table];
        if (t is null)
            return diffs;
        nint[] fibs = v6 ? t.V6 : t.V4;
        foreach (var (k, s) in _prefixes)
        {
            if (k.Table != table || k.V6 != v6 || s.Installed < 0)
                continue;
            for (int c = 0; c < 2 && diffs.Count < max; c++)
            {
                if (_graceOwed && c != _active)
                    continue;
                if (!_backend.TryGetExact(fibs[c], k, out ushort nh))
                    diffs.Add($"{k.Prefix}: missing from copy {c} of the dataplane table");
                else if (nh != s.Installed)
                    diffs.Add($"{k.Prefix}: copy {c} of the dataplane table has group {nh}, the model {s.Installed}");
            }
        }
        return diffs;
    }

    /// <summary>Resolved neighbours known to the adjacency table.</summary>
    public IEnumerable<(ushort Port, bool V6, UInt128 Ip, DpdkSharp.MacAddress Mac)> Neighbors() =>
        _adj.Neighbors.Select(kv => (kv.Key.Port, kv.Key.V6, kv.Key.Ip, new DpdkSharp.MacAddress(kv.Value)));

    /// <summary>What a FIB result (group id) currently means: kind and bucket count.</summary>
    public static (GroupKind Kind, int Buckets) DescribeGroup(FibSnapshot fib, ulong nh)
    {
        if (!fib.Enabled || nh >= NextHopTables.MaxGroups)
            return (GroupKind.NoRoute, 0);
        GroupEntry* g = fib.Groups + nh;
        return (g->Kind, g->Buckets);
    }

    /// <summary>Lookup as a worker would do it, in the published copy (for tests and tools).</summary>
    public int Lookup(int table, bool v6, UInt128 address)
    {
        ShadowQuiesce();
        TableSlot? t = _tables[table];
        return t is null ? -1 : _backend.Lookup(v6 ? t.V6[_active] : t.V4[_active], v6, address);
    }

    /// <summary>The kind the published group array says a group id has (tests: what a worker sees).</summary>
    public GroupKind PublishedKind(int gid) => _nh.GroupCopy(_active)[gid].Kind;

    /// <summary>The published group entry's bucket path ids (tests).</summary>
    public int[] PublishedBuckets(int gid)
    {
        GroupEntry* g = _nh.GroupCopy(_active) + gid;
        var b = new int[g->Buckets];
        for (int i = 0; i < b.Length; i++)
            b[i] = g->Paths[i];
        return b;
    }

    /// <summary>Both group copies agree on a group (tests: a settled commit).</summary>
    public bool GroupCopiesEqual(int gid)
    {
        GroupEntry* a = _nh.GroupCopy(0) + gid, b = _nh.GroupCopy(1) + gid;
        return new ReadOnlySpan<byte>(a, sizeof(GroupEntry)).SequenceEqual(new ReadOnlySpan<byte>(b, sizeof(GroupEntry)));
    }

    /// <summary>The path id an adjacency has, or -1 (tests).</summary>
    public PathSlot PublishedPath(int pid) => *NextHopTables.ActiveSlot(_nh.Paths + pid);

    public void Dispose()
    {
        EndShadowLoads();
        _pub.Publish(FibSnapshot.None);
        _pub.WaitGracePeriod(GraceTimeout);
        foreach (TableSlot? t in _tables)
        {
            if (t is null)
                continue;
            FreeInstances(t.V4, false);
            FreeInstances(t.V6, true);
        }
        foreach (var (fib, v6) in _freeLater)
            _backend.Free(fib, v6);
        _freeLater.Clear();
        _nh.Dispose();
        _ops.Dispose();
        _prefixes.Dispose();
        _dirty.Dispose();
    }
}

/// <summary>Visits installed prefixes (<see cref="FibWriter.ForEachInstalled"/>).</summary>
public interface IFibVisitor
{
    void Visit(in FibKey key, RouteSource source, int group);
}

/// <summary>A FIB of the requested size cannot be created; the message says what to change.</summary>
public sealed class FibCapacityException : Exception
{
    public FibCapacityException(string message) : base(message) { }

    public FibCapacityException() { }

    public FibCapacityException(string message, Exception inner) : base(message, inner) { }
}
