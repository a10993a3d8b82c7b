using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;

namespace LinuxCp.Config.Tests;

/// <summary>A model of the Linux the engine drives: namespaces, links (veth ends know their
/// peer), addresses, neighbours, routes and iptables chains, with failure injection and a log
/// of every change. Deleting a veth end deletes its peer, as the kernel does.</summary>
internal sealed class FakeLinux : ILinux
{
    internal sealed class Link
    {
        public int Index;
        public string Name = "";
        public string Kind = "";
        public uint Mtu = 1500;
        public ulong Mac;
        public bool Up;
        public int Master;
        public string PeerNs = "";
        public int PeerIndex;
        public List<string> Addrs = [];
    }

    public readonly Dictionary<string, List<Link>> Links_ = new(StringComparer.Ordinal) { [""] = [new Link { Index = 1, Name = "lo", Up = true }] };
    public readonly List<(string Ns, int If, string Ip, ulong Mac)> Neigh = [];
    public readonly List<(string Ns, RouteState R)> RoutesList = [];
    public readonly Dictionary<(string Ns, string Table, string Chain), List<string>> Chains = [];
    public readonly Dictionary<(string Ns, string Chain), string> Policies = [];
    public readonly List<string> Ops = [];
    public Func<string, int>? FailOn; // op text -> errno to fail with (0: succeed)
    public Func<string, (int Pid, string Reason)>? Microservices { get; set; }
    private int _next = 10;

    public bool AutoCreate = true;

    /// <summary>Acknowledge MTU changes without making them (for read-back verification).</summary>
    public bool IgnoreMtu;

    public bool CanCreateNamespaces => AutoCreate;

    public void AddNamespace(string name) => Links_.TryAdd($"/run/netns/{name}", [new Link { Index = 1, Name = "lo" }]);

    public void DeleteNamespace(string name)
    {
        Links_.Remove($"/run/netns/{name}");
        Neigh.RemoveAll(n => n.Ns == $"/run/netns/{name}");
        RoutesList.RemoveAll(n => n.Ns == $"/run/netns/{name}");
    }

    public Link Add(string ns, string name, string kind = "")
    {
        var l = new Link { Index = _next++, Name = name, Kind = kind, Mac = 0x02UL | ((ulong)(_next & 0xff) << 40) };
        Links_[ns].Add(l);
        return l;
    }

    private void Do(string op)
    {
        if (FailOn?.Invoke(op) is int e and not 0)
            throw new LinuxException($"{op}: injected failure", e);
        Ops.Add(op);
    }

    public string? Namespace(NamespaceRef? ns, bool create, out string reason)
    {
        reason = "";
        if (ns is null || ns.Type == NamespaceType.Undefined)
            return "";
        string path = ns.Type switch
        {
            NamespaceType.Nsid => $"/run/netns/{ns.Reference}",
            NamespaceType.Pid => $"/proc/{ns.Reference}/ns/net",
            NamespaceType.Fd => ns.Reference,
            _ => Microservices?.Invoke(ns.Reference) is (int pid and > 0, _) ? $"/proc/{pid}/ns/net" : "",
        };
        if (Links_.ContainsKey(path))
            return path;
        if (ns.Type == NamespaceType.Nsid && create && AutoCreate)
        {
            AddNamespace(ns.Reference);
            Ops.Add($"create namespace {ns.Reference}");
            return path;
        }
        reason = ns.Type == NamespaceType.Microservice ? $"microservice {ns.Reference}: {Microservices?.Invoke(ns.Reference).Reason ?? "no runtime"}" : $"no namespace {path}";
        return null;
    }

    private List<Link> In(string ns) => Links_.TryGetValue(ns, out var l) ? l : throw new LinuxException($"no namespace {ns}", 2);

    private Link ByIndex(string ns, int index) => In(ns).FirstOrDefault(l => l.Index == index) ?? throw new LinuxException($"no link {index}", 19);

    public IReadOnlyList<LinkState> Links(string ns) =>
        [.. In(ns).Select(l => new LinkState(l.Index, l.Name, l.Kind, l.Mtu, l.Mac, l.Up, l.Master))];

    public void CreateVeth(string ns, string name, string peerNs, string peerName)
    {
        Do($"create veth {name}@{ns} peer {peerName}@{peerNs}");
        if (In(ns).Any(l => l.Name == name) || In(peerNs).Any(l => l.Name == peerName))
            throw new LinuxException("File exists", 17);
        Link a = Add(ns, name, "veth"), b = Add(peerNs, peerName, "veth");
        (a.PeerNs, a.PeerIndex, b.PeerNs, b.PeerIndex) = (peerNs, b.Index, ns, a.Index);
    }

    public void CreateLink(string ns, string name, string kind, uint vrfTable)
    {
        Do($"create {kind} {name}@{ns}{(kind == "vrf" ? $" table {vrfTable}" : "")}");
        Add(ns, name, kind);
    }

    public void DeleteLink(string ns, int index)
    {
        Link l = ByIndex(ns, index);
        Do($"delete link {l.Name}@{ns}");
        In(ns).Remove(l);
        if (l.PeerIndex != 0 && Links_.TryGetValue(l.PeerNs, out var pl))
            pl.RemoveAll(p => p.Index == l.PeerIndex);
        RoutesList.RemoveAll(r => r.Ns == ns && r.R.Oif == index);
        Neigh.RemoveAll(n => n.Ns == ns && n.If == index);
    }

    public void SetLink(string ns, int index, LinkChange c)
    {
        Link l = ByIndex(ns, index);
        Do($"set link {l.Name}@{ns}{(c.Mtu is uint m ? $" mtu {m}" : "")}{(c.Up is bool u ? (u ? " up" : " down") : "")}{(c.Master is int ms ? $" master {ms}" : "")}{(c.Name is string n ? $" name {n}" : "")}");
        if (c.Name is not null)
            l.Name = c.Name;
        if (c.Mtu is uint mtu && !IgnoreMtu)
            l.Mtu = mtu;
        if (c.Mac is ulong mac)
            l.Mac = mac;
        if (c.Up is bool up)
            l.Up = up;
        if (c.Master is int master)
            l.Master = master;
    }

    public void SetOffloads(string ns, string name, bool rx, bool tx) => Do($"offloads {name} rx {rx} tx {tx}");

    public IReadOnlyList<string> Addresses(string ns, int index) => [.. ByIndex(ns, index).Addrs];

    public IReadOnlyList<(int IfIndex, string Prefix)> AllAddresses(string ns) => [.. In(ns).SelectMany(l => l.Addrs.Select(a => (l.Index, a)))];

    public void AddAddress(string ns, int index, string prefix)
    {
        Link l = ByIndex(ns, index);
        Do($"add address {prefix} to {l.Name}@{ns}");
        if (l.Addrs.Contains(prefix))
            throw new LinuxException("File exists", 17);
        l.Addrs.Add(prefix);
    }

    public void DeleteAddress(string ns, int index, string prefix)
    {
        Link l = ByIndex(ns, index);
        Do($"delete address {prefix} from {l.Name}@{ns}");
        if (!l.Addrs.Remove(prefix))
            throw new LinuxException("Cannot assign requested address", 99);
    }

    public IReadOnlyList<NeighState> Neighbors(string ns) => [.. Neigh.Where(n => n.Ns == ns).Select(n => new NeighState(n.If, n.Ip, n.Mac, 0x80, 200))];

    public void SetNeighbor(string ns, int index, string ip, ulong mac)
    {
        Do($"set neighbour {ip} on {ByIndex(ns, index).Name}@{ns}");
        Neigh.RemoveAll(n => n.Ns == ns && n.If == index && n.Ip == ip);
        Neigh.Add((ns, index, ip, mac));
    }

    public void DeleteNeighbor(string ns, int index, string ip)
    {
        Do($"delete neighbour {ip}@{ns}");
        if (Neigh.RemoveAll(n => n.Ns == ns && n.If == index && n.Ip == ip) == 0)
            throw new LinuxException("No such file", 2);
    }

    public IReadOnlyList<RouteState> Routes(string ns) => [.. RoutesList.Where(r => r.Ns == ns).Select(r => r.R)];

    private static RouteState Of(LinuxRoute r, int oif) =>
        new(LinuxCp.Dataplane.Fib.Prefix.Parse(r.DstNetwork).ToString(), oif, r.GwAddr.Length == 0 ? "" : Ip.Canonical(r.GwAddr), r.Metric, NetlinkLinux.Scope(r), 200, 254);

    public void AddRoute(string ns, LinuxRoute route, int oif)
    {
        Do($"add route {route.DstNetwork}@{ns}");
        RouteState s = Of(route, oif);
        if (RoutesList.Any(x => x.Ns == ns && x.R.Dst == s.Dst && x.R.Metric == s.Metric))
            throw new LinuxException("File exists", 17);
        RoutesList.Add((ns, s));
    }

    public void DeleteRoute(string ns, LinuxRoute route, int oif)
    {
        Do($"delete route {route.DstNetwork}@{ns}");
        RouteState s = Of(route, oif);
        if (RoutesList.RemoveAll(x => x.Ns == ns && x.R == s) == 0)
            throw new LinuxException("No such process", 3);
    }

    /// <summary>Enough of iptables for the engine: -N -X -F -A -D -C -S -P on one table.</summary>
    public (int Code, string Output) Iptables(string ns, bool v6, IReadOnlyList<string> args, string? stdin = null)
    {
        int t = args.ToList().IndexOf("-t");
        string table = args[t + 1];
        string op = args[t + 2], chain = args[t + 3];
        string rule = string.Join(' ', args.Skip(t + 4));
        var key = (ns, table, chain);
        Ops.Add($"iptables {op} {chain} {rule}".TrimEnd());
        if (FailOn?.Invoke($"iptables {op} {chain}") is int e and not 0)
            return (1, "iptables: injected failure");
        bool builtin = chain is "INPUT" or "OUTPUT" or "FORWARD" or "PREROUTING" or "POSTROUTING";
        if (builtin)
            Chains.TryAdd(key, []);
        switch (op)
        {
            case "-N":
                return Chains.TryAdd(key, []) ? (0, "") : (1, "iptables: Chain already exists.");
            case "-X":
                return Chains.Remove(key) ? (0, "") : (1, "iptables: No chain/target/match by that name.");
            case "-F":
                if (Chains.TryGetValue(key, out var f))
                    f.Clear();
                return (0, "");
            case "-A":
                if (!Chains.TryGetValue(key, out var a))
                    return (1, "iptables: No chain/target/match by that name.");
                a.Add(rule);
                return (0, "");
            case "-D":
                return Chains.TryGetValue(key, out var d) && d.Remove(rule) ? (0, "") : (1, "iptables: Bad rule.");
            case "-C":
                return Chains.TryGetValue(key, out var c) && c.Contains(rule) ? (0, "") : (1, "iptables: Bad rule.");
            case "-P":
                Policies[(ns, chain)] = rule;
                return (0, "");
            case "-S":
                if (!Chains.TryGetValue(key, out var list))
                    return (1, "iptables: No chain/target/match by that name.");
                var lines = new List<string> { builtin ? $"-P {chain} {Policies.GetValueOrDefault((ns, chain), "ACCEPT")}" : $"-N {chain}" };
                lines.AddRange(list.Select(r => $"-A {chain} {r.Replace("--comment lcpd:", "--comment \"lcpd:", StringComparison.Ordinal)}{(r.Contains("--comment lcpd:", StringComparison.Ordinal) ? "\"" : "")}"));
                return (0, string.Join('\n', lines) + "\n");
            default:
                return (2, $"unsupported {op}");
        }
    }

    public void Flush()
    {
    }

    public IReadOnlyList<string> NamedNamespaces() =>
        [.. Links_.Keys.Where(k => k.StartsWith("/run/netns/", StringComparison.Ordinal)).Select(k => k["/run/netns/".Length..])];

    public void DeleteNamedNamespace(string name)
    {
        Ops.Add($"delete namespace {name}");
        DeleteNamespace(name);
    }

    /// <summary>Everything, as text: equal snapshots mean Linux is as it was.</summary>
    public string Snapshot()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (ns, links) in Links_.OrderBy(x => x.Key, StringComparer.Ordinal))
            foreach (Link l in links.OrderBy(l => l.Name, StringComparer.Ordinal))
                sb.Append($"{ns}|{l.Name}|{l.Kind}|{l.Mtu}|{l.Mac:x}|{l.Up}|{l.Master}|{string.Join(',', l.Addrs.Order(StringComparer.Ordinal))}\n");
        foreach (var n in Neigh.OrderBy(n => n.Ip, StringComparer.Ordinal))
            sb.Append($"neigh {n}\n");
        foreach (var r in RoutesList.OrderBy(r => r.R.Dst, StringComparer.Ordinal))
            sb.Append($"route {r}\n");
        foreach (var (k, v) in Chains.OrderBy(x => x.Key.ToString(), StringComparer.Ordinal))
            sb.Append($"chain {k} {string.Join(';', v)}\n");
        foreach (var (k, v) in Policies.OrderBy(x => x.Key.ToString(), StringComparer.Ordinal))
            sb.Append($"policy {k} {v}\n");
        return sb.ToString();
    }
}

/// <summary>Pairs as a map, for the pair kind and TAP_TO_VPP.</summary>
internal sealed class FakePairs(FakeLinux linux) : IPairControl
{
    public readonly Dictionary<string, LcpPair> ByPortMap = new(StringComparer.Ordinal);

    public LcpPair? ByHostIf(string hostIf) => ByPortMap.Values.FirstOrDefault(p => p.HostIf == hostIf);

    public LcpPair? ByPort(string port) => ByPortMap.GetValueOrDefault(port);

    public void Create(LcpPair pair)
    {
        ByPortMap[pair.Port] = pair;
        string ns = pair.Netns.Length == 0 ? "" : $"/run/netns/{pair.Netns}";
        if (pair.Netns.Length != 0)
            linux.AddNamespace(pair.Netns);
        linux.Add(pair.Netns.Length == 0 ? "" : ns, pair.HostIf, "tun");
    }

    public void Delete(string port)
    {
        LcpPair p = ByPortMap[port];
        ByPortMap.Remove(port);
        string ns = p.Netns.Length == 0 ? "" : $"/run/netns/{p.Netns}";
        linux.Links_[ns].RemoveAll(l => l.Name == p.HostIf);
    }
}
