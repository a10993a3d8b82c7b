using System.Globalization;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.ControlPlane.Routing;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The pair and FIB command family: <c>show lcp</c>, <c>lcp create|delete|resync|verify</c>,
/// <c>show ip[6] fib</c>, <c>show ip fib summary</c>, <c>show ip neighbors</c> and the debug
/// hooks. CLI, REST and metrics call these typed methods.</summary>
public sealed class RoutingCommands(RouterState state)
{
    private RoutingService Routing =>
        state.Routing ?? throw new ApiException("the FIB is disabled (lcpd runs with --no-fib)");

    private PairManager Pairs => state.Pairs;

    private string InterfaceName(ushort port) =>
        Pairs.Pairs().FirstOrDefault(p => p.Phy.Id == port)?.HostIf ?? Pairs.AllPorts().FirstOrDefault(p => p.Id == port)?.Name ?? $"port{port}";

    public static string TypeName(GroupKind k) => FibVerifier.KindName(k);

    // ---- pairs -------------------------------------------------------------------------------

    public LcpDto Describe(Pair p)
    {
        uint table = Nl.TableMain;
        string source = p.Table is null ? "main" : "explicit";
        bool? carrier = null;
        if (state.Routing is RoutingService r)
        {
            lock (r.Lock)
            {
                NamespaceSync? ns = r.Namespaces.FirstOrDefault(n => n.Netns == p.Netns);
                if (ns?.Mirror(p.HostIfIndex) is MirrorInfo m)
                    (table, source) = ns.Binding(m);
                else if (p.Table is uint t)
                    table = t;
                if (p.State == PairState.Up && ns?.Links.Get(p.HostIfIndex) is LinkState l && l.Carrier >= 0)
                    carrier = l.Carrier == 1;
            }
        }
        LinkSyncStatus? sync = p.State == PairState.Up ? state.LinkSync?.Status(p.Phy.Id) : null;
        return new LcpDto(p.Phy.Name, p.HostIf, p.Netns, p.KindName, p.HostIfIndex,
            p.State == PairState.Up ? "up" : "down", p.DownReason, table, source, p.Persist, p.Adopted,
            sync?.PortLinkUp, p.AdminUp, carrier, sync?.Changes ?? 0, sync?.Pending ?? false);
    }

    public List<LcpDto> ShowLcp() => [.. Pairs.Pairs().Select(Describe)];

    /// <summary>The outer TPID of a QinQ sub-interface in the words of the CLI and launch line.</summary>
    public static ushort? ParseTpid(string s) => s.ToLowerInvariant() switch
    {
        "88a8" or "0x88a8" or "dot1ad" => LinuxCp.Dataplane.Tables.VlanTags.Dot1ad,
        "8100" or "0x8100" or "dot1q" => LinuxCp.Dataplane.Tables.VlanTags.Dot1q,
        _ => null,
    };

    public LcpDto Create(string port, string hostIf, string? netns, bool tun, bool persist, uint? table, ushort? tpid = null, MirrorKind? kind = null)
    {
        try
        {
            return Describe(Pairs.Create(port, hostIf, netns, tun, persist, table, tpid, kind));
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }

    public LcpDto Delete(string portOrHostIf)
    {
        try
        {
            return Describe(Pairs.Delete(portOrHostIf));
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }

    public ResyncDto Resync()
    {
        var (objects, recovered) = Routing.ResyncAll();
        var ls = Routing.Listeners.ToList();
        return new ResyncDto(objects, ls.Sum(l => Interlocked.Read(ref l.Resyncs)), ls.Sum(l => Interlocked.Read(ref l.Overruns)),
            ls.Sum(l => Interlocked.Read(ref l.Malformed)), recovered);
    }

    public VerifyDto Verify(string? netns, bool anyNetns, uint? table)
    {
        VerifyReport r;
        try
        {
            r = FibVerifier.Verify(Routing, anyNetns, netns, table);
        }
        catch (Exception e) when (e is IOException or DpdkSharp.DpdkException)
        {
            throw new ApiException($"lcp verify: {e.Message}");
        }
        return new VerifyDto(r.Differences.Count == 0, r.Checked, r.Rounds,
            [.. r.Differences.Select(d => new VerifyDiffDto(d.Netns, d.Table, d.Prefix, d.Problem, d.Kernel, d.Fib))]);
    }

    // ---- FIB ---------------------------------------------------------------------------------

    /// <summary>The dense index of kernel table <paramref name="table"/> (default: main) of a namespace.</summary>
    private int TableIndex(string? netns, uint? table, out NamespaceSync? ns)
    {
        uint t = table ?? Nl.TableMain;
        ns = Routing.Namespaces.FirstOrDefault(n => n.Netns == netns);
        if (ns is null)
        {
            if (t == Nl.TableMain && netns == Pairs.DefaultNetns)
                return 0; // no pair yet: the default table, empty
            throw new ApiException($"lcpd follows no namespace '{netns ?? "default"}' (it follows the namespaces of its mirrors)");
        }
        int index = ns.TableIndex(t);
        if (index < 0)
            throw new ApiException($"no port forwards in table {t} of {(netns is null ? "the default namespace" : $"netns {netns}")} (tables: {string.Join(", ", ns.ActiveTables.Keys.Order())})");
        return index;
    }

    public List<FibRouteDto> ShowFib(bool v6, string? netns, uint? table, Prefix? filter)
    {
        if (filter is Prefix f && f.V6 != v6)
            throw new ApiException($"'{f}' is not an {(v6 ? "IPv6" : "IPv4")} prefix");
        List<FibEntry> entries;
        uint t;
        lock (Routing.Lock)
        {
            int index = TableIndex(netns, table, out _);
            t = Routing.Fib.TableOf(index).Table;
            entries = Routing.Fib.Dump(index, v6, filter);
        }
        if (filter is not null && filter.Value.Length == (v6 ? 128 : 32) && entries.Count > 1)
            entries = [entries.MaxBy(e => e.Prefix.Length)!]; // an address: its longest match
        return [.. entries.Select(e => new FibRouteDto(e.Prefix.ToString(), TypeName(e.Kind), e.Source.ToString().ToLowerInvariant(),
            [.. e.Paths.Select(p => new FibPathDto(p.Via == 0 && e.Kind != GroupKind.Forward ? null : Prefix.Format(v6, p.Via), InterfaceName(p.Port), p.Resolved))],
            t, e.Nexthop?.Id))];
    }

    public FibSummaryDto ShowFibSummary()
    {
        RoutingService r = Routing;
        var listeners = r.Listeners.ToList();
        lock (r.Lock)
        {
            FibWriter f = r.Fib;
            var tables = new List<FibTableDto>();
            foreach (FibTableInfo t in f.Tables())
            {
                string? ns = r.Namespaces.FirstOrDefault(n => n.Domain == t.Id.Domain)?.Netns ?? (t.Id.Domain == 0 ? Pairs.DefaultNetns : null);
                tables.Add(new FibTableDto(t.Id.Table, ns, t.Index, t.Routes4, t.Routes6, t.Capacity4.Routes, t.Capacity6.Routes,
                    t.Capacity4.Tbl8, t.Capacity6.Tbl8, t.Refused, t.Full));
            }
            return new FibSummaryDto(f.Count4, f.Count6, f.Commits, f.FibErrors, f.Pending, f.RefusedPrefixes, f.GraceTimeouts,
                f.Groups, f.Paths, f.Nexthops, f.Targets, listeners.Any(l => l.Syncing), listeners.Sum(l => Interlocked.Read(ref l.SyncProgress)), tables);
        }
    }

    public List<NeighborDto> ShowNeighbors()
    {
        lock (Routing.Lock)
            return [.. Routing.Fib.Neighbors().OrderBy(n => n.V6).ThenBy(n => n.Ip)
                .Select(n => new NeighborDto(Prefix.Format(n.V6, n.Ip), n.Mac.ToString(), InterfaceName(n.Port)))];
    }

    /// <summary>debug fib-drop: loses one prefix in the dataplane on purpose (lcp verify must
    /// find it, lcp resync must repair it). Only with --debug-commands.</summary>
    public FibRouteDto DebugDrop(string? netns, uint? table, Prefix p)
    {
        if (!state.DebugCommands)
            throw new ApiException("debug commands are off (start lcpd with --debug-commands)");
        lock (Routing.Lock)
        {
            int index = TableIndex(netns, table, out _);
            FibEntry e = Routing.Fib.Installed(index, p) ?? throw new ApiException($"{p} is not installed in that table");
            Routing.Fib.DropInstalled(index, p);
            return new FibRouteDto(p.ToString(), TypeName(e.Kind), e.Source.ToString().ToLowerInvariant(), [], Routing.Fib.TableOf(index).Table, e.Nexthop?.Id);
        }
    }

    // ---- argument parsing for the CLI words ------------------------------------------------------

    /// <summary>Parses <c>[table &lt;n&gt;] [netns &lt;ns&gt;]</c> and an optional trailing word
    /// (a prefix) out of a command's arguments.</summary>
    public static (uint? Table, string? Netns, bool NetnsGiven, string? Word) TableArgs(string[] a, string usage, bool restAllowed)
    {
        uint? table = null;
        string? netns = null, rest = null;
        bool netnsGiven = false;
        for (int i = 0; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "table" when i + 1 < a.Length:
                    if (!uint.TryParse(a[++i], NumberStyles.None, CultureInfo.InvariantCulture, out uint t) || t is 0 or 255)
                        throw new ApiException($"bad table '{a[i]}': a kernel table id, 1-254 or above 255");
                    table = t;
                    break;
                case "netns" when i + 1 < a.Length:
                    netns = a[++i];
                    netnsGiven = true;
                    break;
                default:
                    if (!restAllowed || rest is not null)
                        throw new ApiException($"unexpected argument '{a[i]}'; usage: {usage}");
                    rest = a[i];
                    break;
            }
        }
        return (table, netns, netnsGiven, rest);
    }

    public static Prefix ParsePrefix(string s, string what = "prefix")
    {
        try
        {
            return Prefix.Parse(s);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or IndexOutOfRangeException)
        {
            throw new ApiException($"bad {what} '{s}'");
        }
    }
}
