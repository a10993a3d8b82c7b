using System.Text;
using System.Text.Json.Nodes;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Config.Engine;

/// <summary>Static ARP / ND entries (NUD_PERMANENT) on a declared interface.</summary>
internal sealed class ArpHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
        var a = (ArpEntry)item.Value;
        if (a.Interface.Length == 0)
            errors.Add(new(path + ".interface", "required"));
        if (!Ip.TryAddress(a.IpAddress, out _))
            errors.Add(new(path + ".ip_address", $"not an IP address: '{a.IpAddress}'"));
        if (!Mac.TryParse(a.HwAddress, out ulong mac) || mac == 0)
            errors.Add(new(path + ".hw_address", $"not a MAC address: '{a.HwAddress}'"));
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var a = (ArpEntry)item.Value;
        yield return new Dep($"interface {a.Interface}", Key: Keys.Interface(a.Interface));
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var a = (ArpEntry)item.Value;
        var (ns, l) = cx.LinkOf(a.Interface);
        string ip = Ip.Canonical(a.IpAddress);
        NeighState? was = cx.Neighbor(ns, l.Index, ip) is { } n && (n.State & 0x80) != 0 ? n : null;
        cx.SetNeighbor(ns, l.Index, ip, Mac.Parse(a.HwAddress));
        return was is null ? [] : new JsonObject { ["previous"] = Mac.Format(was.Mac) };
    }

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx)
    {
        var a = (ArpEntry)@new.Value;
        var (ns, l) = cx.LinkOf(a.Interface);
        cx.SetNeighbor(ns, l.Index, Ip.Canonical(a.IpAddress), Mac.Parse(a.HwAddress));
    }

    public void Delete(Applied applied, Ctx cx)
    {
        var a = (ArpEntry)applied.Item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(a.Interface);
            if (applied.Saved["previous"] is JsonNode prev)
                cx.SetNeighbor(ns, l.Index, Ip.Canonical(a.IpAddress), Mac.Parse(prev.GetValue<string>()));
            else
                cx.DeleteNeighbor(ns, l.Index, Ip.Canonical(a.IpAddress));
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var a = (ArpEntry)item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(a.Interface);
            string ip = Ip.Canonical(a.IpAddress);
            NeighState? n = cx.Neighbor(ns, l.Index, ip);
            if (n is null)
                return $"no neighbour {ip} on {l.Name}";
            if (n.Mac != Mac.Parse(a.HwAddress) || (n.State & 0x80) == 0)
                return $"neighbour {ip} on {l.Name} is {Mac.Format(n.Mac)} state 0x{n.State:x}, declared {a.HwAddress.ToLowerInvariant()} permanent";
            return null;
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
    }

    public string? Namespace(ConfigItem item, Ctx cx) =>
        cx.Interface(((ArpEntry)item.Value).Interface) is { } i ? cx.NamespaceOf(i, out _) : null;
}

/// <summary>Routes in the main table of the interface's namespace, tagged with lcpd's protocol.</summary>
internal sealed class RouteHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
        var r = (LinuxRoute)item.Value;
        if (r.OutgoingInterface.Length == 0)
            errors.Add(new(path + ".outgoing_interface", "required"));
        bool v6 = false;
        if (!Ip.TryInterfacePrefix(r.DstNetwork, out v6))
            errors.Add(new(path + ".dst_network", $"not a prefix with a length: '{r.DstNetwork}'"));
        else if (!Ip.TryNetwork(r.DstNetwork, out _))
            errors.Add(new(path + ".dst_network", $"host bits set in {r.DstNetwork} (the network is {Prefix.Parse(r.DstNetwork)})"));
        if (r.GwAddr.Length != 0)
        {
            if (!Ip.TryAddress(r.GwAddr, out bool gv6))
                errors.Add(new(path + ".gw_addr", $"not an IP address: '{r.GwAddr}'"));
            else if (gv6 != v6)
                errors.Add(new(path + ".gw_addr", $"{r.GwAddr} is not of the family of {r.DstNetwork}"));
            if (r.Scope is RouteScope.Link or RouteScope.Host)
                errors.Add(new(path + ".scope", $"a route via a gateway cannot have scope {DocumentReader.ProtoName(r.Scope)}"));
        }
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var r = (LinuxRoute)item.Value;
        yield return new Dep($"interface {r.OutgoingInterface}", Key: Keys.Interface(r.OutgoingInterface));
        // The kernel takes a gateway only when a connected route of the interface reaches it:
        // wait for the declared address that makes it so.
        if (r.GwAddr.Length != 0 && declared.TryGetValue(Keys.Interface(r.OutgoingInterface), out ConfigItem? ifItem))
        {
            var i = (LinuxInterface)ifItem.Value;
            Prefix gw = Prefix.Parse(r.GwAddr);
            foreach (string a in i.IpAddresses)
            {
                if (Ip.TryInterfacePrefix(a, out _) && Prefix.Parse(a).Contains(gw))
                {
                    yield return new Dep($"address {a} of {i.Name}", Key: Keys.Address(i.Name, Ip.Canonical(a)));
                    break;
                }
            }
        }
    }

    /// <summary>The route as a dump shows it (the kernel gives an IPv6 route without a metric 1024).</summary>
    private static RouteState State(LinuxRoute r, int oif)
    {
        Prefix p = Prefix.Parse(r.DstNetwork);
        return new(p.ToString(), oif, r.GwAddr.Length == 0 ? "" : Ip.Canonical(r.GwAddr), r.Metric == 0 && p.V6 ? 1024 : r.Metric, 0, 0, 0);
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var r = (LinuxRoute)item.Value;
        var (ns, l) = cx.LinkOf(r.OutgoingInterface);
        try
        {
            cx.Linux.AddRoute(ns, r, l.Index);
            cx.RouteAdded(ns, State(r, l.Index));
        }
        catch (LinuxException e) when (e.Errno == 17)
        {
            throw new LinuxException($"route {r.DstNetwork} dev {l.Name} metric {r.Metric} already exists in {Check.NsName(ns)} and was not created by lcpd", 17);
        }
        return [];
    }

    public bool NeedsRecreate(ConfigItem old, ConfigItem @new) => true;

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx) =>
        throw new InvalidOperationException("routes are recreated");

    public void Delete(Applied applied, Ctx cx)
    {
        var r = (LinuxRoute)applied.Item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(r.OutgoingInterface);
            cx.Linux.DeleteRoute(ns, r, l.Index);
            cx.RouteDeleted(ns, State(r, l.Index));
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var r = (LinuxRoute)item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(r.OutgoingInterface);
            return !cx.HasRoute(ns, State(r, l.Index)) ? $"no route {r.DstNetwork}{(r.GwAddr.Length != 0 ? " via " + r.GwAddr : "")} dev {l.Name} metric {r.Metric}" : null;
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
    }

    public string? Namespace(ConfigItem item, Ctx cx) =>
        cx.Interface(((LinuxRoute)item.Value).OutgoingInterface) is { } i ? cx.NamespaceOf(i, out _) : null;
}

/// <summary>iptables rule chains. A CUSTOM chain is created and owned whole; rules added to a
/// built-in chain carry a comment naming their rule chain, so only they are ever removed.</summary>
internal sealed class RuleChainHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
        var c = (RuleChain)item.Value;
        if (c.Name.Length == 0 || c.Name.Contains('/', StringComparison.Ordinal))
            errors.Add(new(path + ".name", c.Name.Length == 0 ? "required" : "must not contain '/'"));
        Check.Namespace(c.Namespace, path, errors);
        if (c.ChainType == ChainType.Custom)
        {
            if (c.ChainName.Length is 0 or > 28 || c.ChainName.Any(ch => ch <= ' ' || ch >= 0x7f) || c.ChainName.StartsWith('-'))
                errors.Add(new(path + ".chain_name", c.ChainName.Length == 0 ? "required for a CUSTOM chain" : $"not an iptables chain name: '{c.ChainName}'"));
            if (c.DefaultPolicy != ChainPolicy.None)
                errors.Add(new(path + ".default_policy", "only built-in chains have a policy"));
        }
        bool ok = (c.Table, c.ChainType) switch
        {
            (_, ChainType.Custom) => true,
            (IptTable.Filter, ChainType.Input or ChainType.Output or ChainType.Forward) => true,
            (IptTable.Nat, ChainType.Prerouting or ChainType.Input or ChainType.Output or ChainType.Postrouting) => true,
            (IptTable.Mangle, _) => true,
            (IptTable.Raw, ChainType.Prerouting or ChainType.Output) => true,
            (IptTable.Security, ChainType.Input or ChainType.Output or ChainType.Forward) => true,
            _ => false,
        };
        if (!ok)
            errors.Add(new(path + ".chain_type", $"table {DocumentReader.ProtoName(c.Table)} has no {DocumentReader.ProtoName(c.ChainType)} chain"));
        if (c.DefaultPolicy is ChainPolicy.Queue or ChainPolicy.Return)
            errors.Add(new(path + ".default_policy", "a built-in chain's policy is ACCEPT or DROP"));
        for (int k = 0; k < c.Rules.Count; k++)
        {
            string r = c.Rules[k];
            string? err = null;
            if (r.Contains('\n', StringComparison.Ordinal) || Split(r, out err).Count == 0)
                errors.Add(new($"{path}.rules[{k}]", err ?? "empty or multi-line rule"));
            else if (Split(r, out _).Any(a => a is "-A" or "-I" or "-D" or "-N" or "-X" or "-F" or "-P" or "-t" or "--table" or "-R" or "-Z"))
                errors.Add(new($"{path}.rules[{k}]", "a rule is a rule specification (matches and a target); the chain and table come from the rule chain"));
        }
    }

    /// <summary>Splits a rule like a shell would (single and double quotes, backslash escapes).</summary>
    public static List<string> Split(string s, out string? error)
    {
        error = null;
        var args = new List<string>();
        var cur = new StringBuilder();
        bool inArg = false;
        char quote = '\0';
        for (int i = 0; i < s.Length; i++)
        {
            char ch = s[i];
            if (quote != '\0')
            {
                if (ch == quote)
                    quote = '\0';
                else if (ch == '\\' && quote == '"' && i + 1 < s.Length)
                    cur.Append(s[++i]);
                else
                    cur.Append(ch);
            }
            else if (ch is '"' or '\'')
            {
                quote = ch;
                inArg = true;
            }
            else if (char.IsWhiteSpace(ch))
            {
                if (inArg)
                    args.Add(cur.ToString());
                cur.Clear();
                inArg = false;
            }
            else if (ch == '\\' && i + 1 < s.Length)
            {
                cur.Append(s[++i]);
                inArg = true;
            }
            else
            {
                cur.Append(ch);
                inArg = true;
            }
        }
        if (quote != '\0')
        {
            error = "unterminated quote";
            return [];
        }
        if (inArg)
            args.Add(cur.ToString());
        return args;
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var c = (RuleChain)item.Value;
        yield return new Dep($"namespace {c.Namespace}", External: cx => cx.Namespace(c.Namespace, out string r) is null ? r : null);
        foreach (string i in c.Interfaces)
            yield return new Dep($"interface {i}", Key: Keys.Interface(i));
    }

    private static string Table(RuleChain c) => DocumentReader.ProtoName(c.Table).ToLowerInvariant();

    private static string Tag(RuleChain c) => $"lcpd:{c.Name}";

    private static List<string> Args(RuleChain c, params string[] head)
    {
        var a = new List<string> { "-w", "5", "-t", Table(c) };
        a.AddRange(head);
        return a;
    }

    private static void Run(Ctx cx, string ns, RuleChain c, List<string> args)
    {
        var (code, output) = cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, args);
        if (code != 0)
            throw new LinuxException($"{(c.Protocol == IpProtocol.Ipv6 ? "ip6tables" : "iptables")} {string.Join(' ', args)}: {output.Trim()}", 22);
    }

    private static List<string> RuleArgs(RuleChain c, string rule, string op)
    {
        List<string> a = Args(c, op, c.IptablesChain);
        a.AddRange(Split(rule, out _));
        if (c.ChainType != ChainType.Custom)
            a.AddRange(["-m", "comment", "--comment", Tag(c)]);
        return a;
    }

    private static string Ns(RuleChain c, Ctx cx) => cx.Namespace(c.Namespace, out string r) ?? throw new LinuxException(r, 2);

    /// <summary>The chain's lines as iptables -S prints them.</summary>
    private static List<string> Listing(Ctx cx, string ns, RuleChain c)
    {
        var (code, output) = cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, Args(c, "-S", c.IptablesChain));
        if (code != 0)
            throw new LinuxException($"chain {c.IptablesChain} ({Table(c)}): {output.Trim()}", 2);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var c = (RuleChain)item.Value;
        string ns = Ns(c, cx);
        var saved = new JsonObject();
        if (c.ChainType == ChainType.Custom)
        {
            var (code, output) = cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, Args(c, "-N", c.ChainName));
            if (code != 0)
                throw new LinuxException(output.Contains("exists", StringComparison.OrdinalIgnoreCase)
                    ? $"chain {c.ChainName} ({Table(c)}) already exists in {Check.NsName(ns)} and was not created by lcpd"
                    : $"iptables -N {c.ChainName}: {output.Trim()}", 17);
        }
        else if (c.DefaultPolicy != ChainPolicy.None)
        {
            string? policy = Listing(cx, ns, c).FirstOrDefault(l => l.StartsWith("-P ", StringComparison.Ordinal))?.Split(' ').Last();
            if (policy is not null)
                saved["policy"] = policy;
            Run(cx, ns, c, Args(c, "-P", c.IptablesChain, DocumentReader.ProtoName(c.DefaultPolicy)));
        }
        foreach (string r in c.Rules)
            Run(cx, ns, c, RuleArgs(c, r, "-A"));
        return saved;
    }

    public bool NeedsRecreate(ConfigItem old, ConfigItem @new) => true;

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx) =>
        throw new InvalidOperationException("rule chains are recreated");

    public void Delete(Applied applied, Ctx cx)
    {
        var c = (RuleChain)applied.Item.Value;
        string? ns = cx.Linux.Namespace(c.Namespace, create: false, out _);
        if (ns is null)
            return;
        if (c.ChainType == ChainType.Custom)
        {
            cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, Args(c, "-F", c.ChainName));
            var (code, output) = cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, Args(c, "-X", c.ChainName));
            if (code != 0 && !output.Contains("No chain", StringComparison.OrdinalIgnoreCase) && !output.Contains("does not exist", StringComparison.OrdinalIgnoreCase))
                throw new LinuxException($"iptables -X {c.ChainName}: {output.Trim()}", 16);
            return;
        }
        foreach (string r in c.Rules)
            cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, RuleArgs(c, r, "-D"));
        if (applied.Saved["policy"] is JsonNode p)
            Run(cx, ns, c, Args(c, "-P", c.IptablesChain, p.GetValue<string>()));
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var c = (RuleChain)item.Value;
        string? ns = cx.Linux.Namespace(c.Namespace, create: false, out string reason);
        if (ns is null)
            return reason;
        List<string> lines;
        try
        {
            lines = Listing(cx, ns, c);
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
        if (c.DefaultPolicy != ChainPolicy.None && !lines.Contains($"-P {c.IptablesChain} {DocumentReader.ProtoName(c.DefaultPolicy)}"))
            return $"chain {c.IptablesChain}: policy is not {DocumentReader.ProtoName(c.DefaultPolicy)}";
        int have = c.ChainType == ChainType.Custom
            ? lines.Count(l => l.StartsWith($"-A {c.ChainName} ", StringComparison.Ordinal))
            : lines.Count(l => l.Contains($"\"{Tag(c)}\"", StringComparison.Ordinal) || l.Contains($"--comment {Tag(c)}", StringComparison.Ordinal));
        if (have != c.Rules.Count)
            return $"chain {c.IptablesChain} ({Table(c)}) holds {have} of the {c.Rules.Count} rules";
        // Each rule must match as written (iptables -C).
        foreach (string r in c.Rules)
            if (cx.Linux.Iptables(ns, c.Protocol == IpProtocol.Ipv6, RuleArgs(c, r, "-C")).Code != 0)
                return $"chain {c.IptablesChain}: rule '{r}' is missing";
        return null;
    }

    public string? Namespace(ConfigItem item, Ctx cx) => null; // iptables changes are not netlink events
}

/// <summary>LinuxCp pairs, through the pair manager (the same path as lcp create).</summary>
internal sealed class PairHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
        var p = (LcpPair)item.Value;
        if (p.Port.Length == 0 || p.Port.Contains('/', StringComparison.Ordinal))
            errors.Add(new(path + ".port", p.Port.Length == 0 ? "required" : "must not contain '/'"));
        if (!Check.IfName(p.HostIf))
            errors.Add(new(path + ".host_if", $"not a Linux interface name: '{p.HostIf}'"));
        if (p.Netns.Length != 0 && !DpdkSharp.Netns.IsValidName(p.Netns))
            errors.Add(new(path + ".netns", $"not a namespace name: '{p.Netns}'"));
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        yield return new Dep("the pair manager", External: cx => cx.Pairs is null ? "this lcpd has no pair manager" : null);
    }

    private static bool Same(LcpPair a, LcpPair b) => a.HostIf == b.HostIf && a.Netns == b.Netns && a.Tun == b.Tun;

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var p = (LcpPair)item.Value;
        IPairControl pairs = cx.Pairs ?? throw new LinuxException("no pair manager", 95);
        if (pairs.ByPort(p.Port) is { } have)
        {
            if (Same(have, p))
                return new JsonObject { ["preexisting"] = true };
            throw new LinuxException($"port {p.Port} is already paired with {have.HostIf}{(have.Netns.Length != 0 ? " in " + have.Netns : "")}", 17);
        }
        try
        {
            pairs.Create(p);
        }
        catch (Exception e) when (e is not LinuxException)
        {
            throw new LinuxException($"lcp create {p.Port}: {e.Message}", 22);
        }
        return [];
    }

    public bool NeedsRecreate(ConfigItem old, ConfigItem @new) => true;

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx) =>
        throw new InvalidOperationException("pairs are recreated");

    public void Delete(Applied applied, Ctx cx)
    {
        var p = (LcpPair)applied.Item.Value;
        if (applied.Saved["preexisting"] is not null || cx.Pairs?.ByPort(p.Port) is null)
            return;
        try
        {
            cx.Pairs.Delete(p.Port);
        }
        catch (Exception e) when (e is not LinuxException)
        {
            throw new LinuxException($"lcp delete {p.Port}: {e.Message}", 22);
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var p = (LcpPair)item.Value;
        LcpPair? have = cx.Pairs?.ByPort(p.Port);
        return have is null ? $"no pair on port {p.Port}" : Same(have, p) ? null : $"port {p.Port} is paired with {have.HostIf}";
    }

    public string? Namespace(ConfigItem item, Ctx cx) => null;
}
