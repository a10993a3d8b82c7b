using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>A mirror as the netlink model sees it: the kernel interface and the phy port behind
/// it. <paramref name="Table"/>: a table the pair was bound to explicitly (--pair ...,table=n).</summary>
public sealed record MirrorInfo(int IfIndex, string HostIf, ushort Port, bool Tun, MacAddress PortMac, uint? Table = null);

/// <summary>One handler per netlink object kind, all behind this one interface: notifications
/// and dumps arrive as <see cref="Add"/>/<see cref="Delete"/>; a resync is
/// <see cref="BeginSync"/>, the dump's adds, then <see cref="EndSync"/>, which deletes (as if the
/// kernel had) everything the dump did not contain: mark and sweep in the model.</summary>
public interface INetlinkHandler<TMsg> where TMsg : allows ref struct
{
    void Add(in TMsg m);
    void Delete(in TMsg m);
    void BeginSync();
    /// <summary>Sweeps what the dump did not mark; returns how many objects were removed.</summary>
    int EndSync();
}

/// <summary>Sizes of the tables a namespace opens besides the default one.</summary>
public sealed record SyncOptions
{
    /// <summary>First size of a non-default table (it grows when full).</summary>
    public FibCapacity ExtraTable4 { get; init; } = new(16384, 256);
    public FibCapacity ExtraTable6 { get; init; } = new(4096, 256);
}

/// <summary>Linux's view of one namespace and its translation into the FIB: the handlers of
/// every object kind (links, addresses, neighbours, routes, nexthop objects, rules), the mirrors
/// that live here, and which kernel table each mirror's port forwards in. It is the parser's
/// sink: messages go straight from the receive buffer to the handlers. Not thread-safe: the
/// routing lock serialises it with the other namespaces (they share the FIB writer).</summary>
public sealed class NamespaceSync : INetlinkSink, IDisposable
{
    private readonly Dictionary<int, MirrorInfo> _mirrors = [];
    private readonly Dictionary<ushort, int> _portTable = []; // port -> table index it forwards in
    private readonly Dictionary<uint, int> _active = [];      // kernel table -> dense index
    private readonly SyncOptions _opt;
    private bool _bindingsDirty = true;

    public NamespaceSync(FibWriter fib, uint domain, string? netns, SyncOptions? options = null)
    {
        Fib = fib;
        Domain = domain;
        Netns = netns;
        _opt = options ?? new SyncOptions();
        Links = new LinkHandler(this);
        Addresses = new AddressHandler(this);
        Neighbors = new NeighborHandler(this);
        Routes = new RouteHandler(this);
        Nexthops = new NexthopHandler(this);
        Rules = new RuleHandler(this);
    }

    public FibWriter Fib { get; }
    public uint Domain { get; }
    public string? Netns { get; }

    public LinkHandler Links { get; }
    public AddressHandler Addresses { get; }
    public NeighborHandler Neighbors { get; }
    public RouteHandler Routes { get; }
    public NexthopHandler Nexthops { get; }
    public RuleHandler Rules { get; }

    /// <summary>Messages handled (all kinds).</summary>
    public long Messages { get; private set; }

    /// <summary>The sync epoch: handlers stamp what a dump adds with it; <see cref="EndSync"/> sweeps the rest.</summary>
    public byte Epoch { get; private set; }

    /// <summary>Set when Linux changed something it does not announce object by object (a link
    /// going down flushes its IPv4 routes silently): the listener re-reads the namespace.</summary>
    public bool ResyncWanted { get; set; }

    // ---- events to the owner (RoutingService) --------------------------------------------------

    /// <summary>Linux set a mirror's admin state, MTU or MAC: apply it to the port. Returns the
    /// port's MAC afterwards. Null (tests): the mirror's recorded MAC is kept.</summary>
    public Func<MirrorInfo, bool, ushort, MacAddress?, MacAddress>? ApplyMirrorLink { get; set; }

    /// <summary>A mirror's kernel interface is gone (deleted from outside).</summary>
    public Action<MirrorInfo>? MirrorDeleted { get; set; }

    /// <summary>A port now forwards in another table (dense index).</summary>
    public Action<ushort, int>? PortTableChanged { get; set; }

    /// <summary>A one-line message for the operator (rate limiting is the owner's).</summary>
    public Action<string>? Warn { get; set; }

    /// <summary>An IPv6 address on a mirror is marked DAD-failed (the address, as text).</summary>
    public Action<MirrorInfo, string>? DadFailed { get; set; }

    // ---- mirrors ------------------------------------------------------------------------------

    public MirrorInfo? Mirror(int ifindex) => _mirrors.GetValueOrDefault(ifindex);

    public IReadOnlyCollection<MirrorInfo> Mirrors => _mirrors.Values;

    /// <summary>The mirror of a dataplane port in this namespace, if it has one here.</summary>
    public MirrorInfo? MirrorOfPort(ushort port)
    {
        foreach (MirrorInfo m in _mirrors.Values)
            if (m.Port == port)
                return m;
        return null;
    }

    /// <summary>Replaces the set of mirrors in this namespace (pairs created or deleted): what
    /// changed is re-translated (routes, nexthops and neighbours through them).</summary>
    public void SetMirrors(IEnumerable<MirrorInfo> mirrors)
    {
        var next = mirrors.ToDictionary(m => m.IfIndex);
        bool changed = next.Count != _mirrors.Count || next.Any(kv => !_mirrors.TryGetValue(kv.Key, out MirrorInfo? old) || old != kv.Value);
        if (!changed)
            return;
        foreach (MirrorInfo old in _mirrors.Values.ToList())
        {
            if (next.TryGetValue(old.IfIndex, out MirrorInfo? now) && now.Port == old.Port)
                continue;
            Neighbors.ForgetMirror(old);
            Fib.ForgetPort(old.Port);
            _portTable.Remove(old.Port);
        }
        _mirrors.Clear();
        foreach (var (k, m) in next)
            _mirrors[k] = m;
        foreach (MirrorInfo m in _mirrors.Values)
            Links.ReapplyMirror(m);
        _bindingsDirty = true;
        Flush();
        Routes.Retranslate();
        Nexthops.Retranslate();
        Neighbors.Retranslate();
    }

    // ---- tables -------------------------------------------------------------------------------

    /// <summary>The dense FIB index of a kernel table of this namespace, or -1 when no port
    /// forwards in it (its routes are kept in the model only).</summary>
    public int TableIndex(uint kernelTable) => _active.TryGetValue(kernelTable, out int i) ? i : -1;

    /// <summary>Kernel tables that ports of this namespace forward in, with their indexes.</summary>
    public IReadOnlyDictionary<uint, int> ActiveTables => _active;

    /// <summary>The dense index of the table a mirror's port forwards in.</summary>
    public int MirrorTableIndex(int ifindex) =>
        _mirrors.TryGetValue(ifindex, out MirrorInfo? m) && _portTable.TryGetValue(m.Port, out int i) ? i : TableIndex(Nl.TableMain);

    /// <summary>The kernel table a mirror is bound to and why.</summary>
    public (uint Table, string Source) Binding(MirrorInfo m)
    {
        if (m.Table is uint t)
            return (t, "explicit");
        if (Links.VrfTableOf(m.IfIndex) is uint vrf)
            return (vrf, "vrf");
        if (Rules.TableFor(m.HostIf) is uint rule)
            return (rule, "rule");
        return (Nl.TableMain, "main");
    }

    internal void BindingsChanged() => _bindingsDirty = true;

    /// <summary>Applies what a batch of messages changed in the bindings (VRF membership, rules,
    /// mirrors): opens the tables ports now forward in, replays their routes, addresses and
    /// neighbour routes into them, withdraws the tables no port uses, and tells the owner which
    /// ports moved. Called before each commit.</summary>
    public void Flush()
    {
        if (!_bindingsDirty)
            return;
        _bindingsDirty = false;
        var want = new Dictionary<ushort, uint>();
        var tables = new HashSet<uint> { Nl.TableMain };
        foreach (MirrorInfo m in _mirrors.Values)
        {
            uint t = Binding(m).Table;
            want[m.Port] = t;
            tables.Add(t);
        }
        foreach (uint t in tables)
        {
            if (_active.ContainsKey(t))
                continue;
            var id = new TableId(Domain, t);
            int index = Fib.TableIndex(id);
            string? error = null;
            if (index < 0)
                index = Fib.OpenTable(id, _opt.ExtraTable4, _opt.ExtraTable6, out error);
            if (index < 0)
            {
                Warn?.Invoke(t == Nl.TableMain
                    ? $"netns {Netns ?? "default"}: its main table cannot be opened: {error}; its ports punt every IP packet to Linux (give EAL more memory, or fewer routes to --fib-routes)"
                    : $"netns {Netns ?? "default"}: table {t}: {error}; ports bound to it forward in the main table");
                continue;
            }
            _active[t] = index;
            Addresses.InstallTable(index);
            Routes.Replay(t);
        }
        foreach (uint t in _active.Keys.ToList())
        {
            if (tables.Contains(t))
                continue;
            int index = _active[t];
            _active.Remove(t);
            Routes.Withdraw(t, index);
            Addresses.RemoveTable(index);
            _closing.Add(index);
        }
        foreach (var (port, t) in want)
        {
            int index = _active.TryGetValue(t, out int i) ? i : _active.TryGetValue(Nl.TableMain, out int main) ? main : FibSnapshot.PuntTable;
            if (_portTable.TryGetValue(port, out int old) && old == index)
                continue;
            _portTable[port] = index;
            PortTableChanged?.Invoke(port, index);
        }
    }

    private readonly List<int> _closing = [];

    /// <summary>After a commit: tables no port uses any more are closed once empty.</summary>
    public void AfterCommit()
    {
        for (int i = _closing.Count - 1; i >= 0; i--)
        {
            int index = _closing[i];
            if (_active.ContainsValue(index))
            {
                _closing.RemoveAt(i);
                continue;
            }
            if (Fib.CloseTable(index))
                _closing.RemoveAt(i);
        }
    }

    // ---- the parser's sink ------------------------------------------------------------------

    public void Link(in LinkMsg m)
    {
        Messages++;
        if (m.Deleted)
            Links.Delete(m);
        else
            Links.Add(m);
    }

    public void Address(in AddrMsg m)
    {
        Messages++;
        if (m.Deleted)
            Addresses.Delete(m);
        else
            Addresses.Add(m);
    }

    public void Route(in RouteMsg m)
    {
        Messages++;
        if (m.Deleted)
            Routes.Delete(m);
        else
            Routes.Add(m);
    }

    public void Neighbor(in NeighMsg m)
    {
        Messages++;
        if (m.Deleted)
            Neighbors.Delete(m);
        else
            Neighbors.Add(m);
    }

    public void Nexthop(in NexthopMsg m)
    {
        Messages++;
        if (m.Deleted)
            Nexthops.Delete(m);
        else
            Nexthops.Add(m);
    }

    public void Rule(in RuleMsg m)
    {
        Messages++;
        if (m.Deleted)
            Rules.Delete(m);
        else
            Rules.Add(m);
    }

    /// <summary>Replies to requests are the listener's business; the model ignores them.</summary>
    public void Control(ushort type, int errno, uint seq)
    {
    }

    /// <summary>Starts a resync: every handler forgets which objects it has seen.</summary>
    public void BeginSync()
    {
        Epoch++;
        Links.BeginSync();
        Rules.BeginSync();
        Addresses.BeginSync();
        Nexthops.BeginSync();
        Routes.BeginSync();
        Neighbors.BeginSync();
    }

    /// <summary>Ends a resync: what the dump lacked is deleted, routes first (they name
    /// nexthops and links), links last. Returns how many objects went.</summary>
    public int EndSync()
    {
        int n = Routes.EndSync();
        n += Neighbors.EndSync();
        n += Nexthops.EndSync();
        n += Addresses.EndSync();
        n += Rules.EndSync();
        n += Links.EndSync();
        Flush();
        return n;
    }

    public void Dispose() => Routes.Dispose();

    /// <summary>Clamps a kernel MTU to what a path slot holds.</summary>
    internal static ushort EffectiveMtu(uint mtu) => mtu is 0 or > 9600 ? (ushort)9600 : (ushort)mtu;
}
