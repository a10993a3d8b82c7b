using System.Text.Json.Nodes;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;

namespace LinuxCp.Config.Engine;

/// <summary>A dependency of an item: another item (that must be applicable too, and applied
/// first when <see cref="Ordered"/>), or a condition outside the desired state (a namespace, a
/// pair, a link that someone else made) that Linux or LinuxCp must satisfy.</summary>
internal sealed record Dep(string Describe, string? Key = null, Func<Ctx, string?>? External = null, bool Ordered = true);

/// <summary>What a handler sees while it works: Linux, the pairs, the items being applied (new)
/// and those applied before (old), and per-namespace caches of links.</summary>
internal sealed class Ctx(ILinux linux, IPairControl? pairs, Dictionary<string, Applied> applied)
{
    private readonly Dictionary<string, IReadOnlyList<LinkState>> _links = new(StringComparer.Ordinal);

    public ILinux Linux { get; } = linux;
    public IPairControl? Pairs { get; } = pairs;

    /// <summary>Items of the target state by key (user and derived).</summary>
    public Dictionary<string, ConfigItem> Target { get; set; } = new(StringComparer.Ordinal);

    /// <summary>What is applied (and what each application saved to restore later).</summary>
    public Dictionary<string, Applied> Applied { get; } = applied;

    /// <summary>Links this transaction created (a VETH's peer end is created with it).</summary>
    public HashSet<(string Ns, string Name)> Created { get; } = [];

    /// <summary>Lookups for a delete see the old definitions; for the rest, the new ones.</summary>
    public bool OldView { get; set; }

    public LinuxInterface? Interface(string logical)
    {
        string key = Keys.Interface(logical);
        if (OldView && Applied.TryGetValue(key, out Applied? a))
            return (LinuxInterface)a.Item.Value;
        if (Target.TryGetValue(key, out ConfigItem? i))
            return (LinuxInterface)i.Value;
        return Applied.TryGetValue(key, out a) ? (LinuxInterface)a.Item.Value : null;
    }

    public IReadOnlyList<LinkState> Links(string ns)
    {
        if (!_links.TryGetValue(ns, out var l))
        {
            try
            {
                l = Linux.Links(ns);
            }
            catch (LinuxException) when (Probe)
            {
                l = []; // a namespace still to be created holds nothing
            }
            _links[ns] = l;
        }
        return l;
    }

    public LinkState? Link(string ns, string name) => Links(ns).FirstOrDefault(l => l.Name == name);

    /// <summary>Links changed in <paramref name="ns"/>: read them (and what hangs on them) again.</summary>
    public void Touch(string ns)
    {
        _links.Remove(ns);
        _addrs.Remove(ns);
        _neigh.Remove(ns);
        _routes.Remove(ns);
    }

    public void TouchAll()
    {
        _links.Clear();
        _addrs.Clear();
        _neigh.Clear();
        _routes.Clear();
    }

    // One dump per namespace and kind, kept up to date by the writes made through this context.
    private readonly Dictionary<string, Dictionary<int, HashSet<string>>> _addrs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<(int, string), NeighState>> _neigh = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<RouteState>> _routes = new(StringComparer.Ordinal);

    /// <summary>Addresses of a link ("ip/len" as the kernel prints them).</summary>
    public HashSet<string> Addresses(string ns, int index)
    {
        if (!_addrs.TryGetValue(ns, out var byIf))
        {
            byIf = [];
            foreach (var (i, p) in Linux.AllAddresses(ns))
                (byIf.TryGetValue(i, out var set) ? set : byIf[i] = new HashSet<string>(StringComparer.Ordinal)).Add(p);
            _addrs[ns] = byIf;
        }
        return byIf.TryGetValue(index, out var s) ? s : byIf[index] = new HashSet<string>(StringComparer.Ordinal);
    }

    public void AddAddress(string ns, int index, string prefix)
    {
        Linux.AddAddress(ns, index, prefix);
        Addresses(ns, index).Add(prefix);
    }

    public void DeleteAddress(string ns, int index, string prefix)
    {
        Linux.DeleteAddress(ns, index, prefix);
        Addresses(ns, index).Remove(prefix);
    }

    public NeighState? Neighbor(string ns, int index, string ip)
    {
        if (!_neigh.TryGetValue(ns, out var map))
        {
            map = [];
            foreach (NeighState n in Linux.Neighbors(ns))
                map[(n.IfIndex, n.Ip)] = n;
            _neigh[ns] = map;
        }
        return map.GetValueOrDefault((index, ip));
    }

    public void SetNeighbor(string ns, int index, string ip, ulong mac)
    {
        Linux.SetNeighbor(ns, index, ip, mac);
        if (_neigh.TryGetValue(ns, out var map))
            map[(index, ip)] = new NeighState(index, ip, mac, 0x80, 0);
    }

    public void DeleteNeighbor(string ns, int index, string ip)
    {
        Linux.DeleteNeighbor(ns, index, ip);
        if (_neigh.TryGetValue(ns, out var map))
            map.Remove((index, ip));
    }

    public bool HasRoute(string ns, RouteState r)
    {
        if (!_routes.TryGetValue(ns, out var set))
            _routes[ns] = set = [.. Linux.Routes(ns).Select(x => x with { Scope = 0, Protocol = 0, Table = 0 })];
        return set.Contains(r with { Scope = 0, Protocol = 0, Table = 0 });
    }

    public void RouteAdded(string ns, RouteState r)
    {
        if (_routes.TryGetValue(ns, out var set))
            set.Add(r with { Scope = 0, Protocol = 0, Table = 0 });
    }

    public void RouteDeleted(string ns, RouteState r)
    {
        if (_routes.TryGetValue(ns, out var set))
            set.Remove(r with { Scope = 0, Protocol = 0, Table = 0 });
    }

    /// <summary>The namespace path an interface lives in, or null with the reason.</summary>
    public string? NamespaceOf(LinuxInterface i, out string reason)
    {
        reason = "";
        if (i.Type == InterfaceType.TapToVpp)
        {
            LcpPair? p = Pairs?.ByHostIf(i.Tap?.VppTapIfName ?? "");
            if (p is null)
            {
                reason = $"no pair with mirror {i.Tap?.VppTapIfName}";
                return null;
            }
            return p.Netns.Length == 0 ? "" : $"/run/netns/{p.Netns}";
        }
        return Namespace(i.Namespace, out reason);
    }

    /// <summary>While dependencies are evaluated: nothing is created, and a named namespace that
    /// can be created when the item is applied counts as there.</summary>
    public bool Probe { get; set; }

    /// <summary>The path of a namespace reference (created when missing and applying).</summary>
    private readonly Dictionary<(NamespaceRef, bool), (string? Path, string Reason)> _ns = [];

    public string? Namespace(NamespaceRef? ns, out string reason)
    {
        if (ns is null || ns.Type == NamespaceType.Undefined)
        {
            reason = "";
            return "";
        }
        bool create = !OldView && !Probe;
        if (_ns.TryGetValue((ns, create), out var known) && known.Path is not null)
        {
            reason = known.Reason;
            return known.Path;
        }
        string? path = Linux.Namespace(ns, create, out reason);
        if (path is not null)
            _ns[(ns, create)] = (path, reason); // found once, it stays for this context
        if (path is null && Probe && ns is { Type: NamespaceType.Nsid } && Linux.CanCreateNamespaces)
        {
            reason = "";
            return $"/run/netns/{ns.Reference}";
        }
        return path;
    }

    public string NamespaceOrThrow(LinuxInterface i) =>
        NamespaceOf(i, out string reason) ?? throw new LinuxException(reason, 2);

    /// <summary>The kernel link of a declared interface (its namespace and current state).</summary>
    public (string Ns, LinkState Link) LinkOf(string logical)
    {
        LinuxInterface i = Interface(logical) ?? throw new LinuxException($"interface {logical} is not declared", 19);
        string ns = NamespaceOrThrow(i);
        LinkState l = Link(ns, InterfaceHandler.LinuxName(i)) ?? throw new LinuxException($"interface {InterfaceHandler.LinuxName(i)} not found in {(ns.Length == 0 ? "lcpd's namespace" : ns)}", 19);
        return (ns, l);
    }
}

/// <summary>An applied item and what its application saved (the original MTU of an adopted
/// link, whether an address was there before...), so deleting it restores Linux.</summary>
internal sealed class Applied(ConfigItem item, JsonObject? saved = null)
{
    public ConfigItem Item { get; set; } = item;
    public JsonObject Saved { get; set; } = saved ?? [];
}

/// <summary>One kind's behaviour.</summary>
internal interface IHandler
{
    void Validate(ConfigItem item, string path, List<ConfigError> errors);

    IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared);

    IEnumerable<object> Derive(ConfigItem item) => [];

    /// <summary>The change cannot be made in place: delete the old value, create the new.</summary>
    bool NeedsRecreate(ConfigItem old, ConfigItem @new) => false;

    /// <summary>Creates the item; returns what must be saved to undo it.</summary>
    JsonObject Create(ConfigItem item, Ctx cx);

    void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx);

    void Delete(Applied applied, Ctx cx);

    /// <summary>Null when Linux holds the item as declared; otherwise what differs.</summary>
    string? Verify(ConfigItem item, Ctx cx);

    /// <summary>The namespace the item lives in (for drift watching), or null.</summary>
    string? Namespace(ConfigItem item, Ctx cx);
}
