using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Routing;

/// <summary>One way the dataplane disagrees with Linux.</summary>
public sealed record VerifyDifference(string? Netns, uint Table, string Prefix, string Problem, string? Kernel, string? Fib);

/// <summary>What <see cref="FibVerifier"/> found: prefixes compared, and the differences that
/// were there in every round.</summary>
public sealed record VerifyReport(long Checked, int Rounds, IReadOnlyList<VerifyDifference> Differences);

/// <summary><c>lcp verify</c>: compares Linux's tables, dumped afresh, with the FIB, route for
/// route (SONiC's route_check does this for its ASIC), and checks the DPDK lookup structures
/// against the FIB writer's own model. The expectation is computed here from the dump with a
/// translation of its own (not the handlers' code), so a bug in the incremental path shows as a
/// difference. A difference must hold over several rounds (Linux may be changing meanwhile).</summary>
public static class FibVerifier
{
    /// <summary>What a prefix should do, as a comparable value: kind and the set of (port, via).</summary>
    private sealed record Expect(GroupKind Kind, (ushort Port, UInt128 Via)[] Paths)
    {
        public static readonly Expect Local = new(GroupKind.Local, []);
        public static readonly Expect Blackhole = new(GroupKind.Blackhole, []);
        public static readonly Expect Unreachable = new(GroupKind.Unreachable, []);
        public static readonly Expect Punt = new(GroupKind.PuntToLinux, []);

        public bool Same(Expect o) => Kind == o.Kind && Paths.AsSpan().SequenceEqual(o.Paths);

        public string Describe(bool v6, Func<ushort, string> name) =>
            Paths.Length == 0 ? KindName(Kind)
            : $"{KindName(Kind)} " + string.Join(", ", Paths.Select(p => p.Via == 0 ? $"dev {name(p.Port)}" : $"via {Prefix.Format(v6, p.Via)} dev {name(p.Port)}"));

        public static Expect Of(GroupKind kind, IEnumerable<(ushort Port, UInt128 Via)> paths) =>
            new(kind, [.. paths.Distinct().Order()]);
    }

    public static string KindName(GroupKind k) => k switch
    {
        GroupKind.Forward => "forward",
        GroupKind.Local => "local",
        GroupKind.Glean => "attached",
        GroupKind.Blackhole => "blackhole",
        GroupKind.Unreachable => "unreachable",
        GroupKind.PuntToLinux => "punt",
        _ => "no-route",
    };

    /// <summary>The kernel's state of one namespace, dumped for the check.</summary>
    private sealed class Snapshot : INetlinkSink, IDisposable
    {
        public readonly KernelRoutes Routes = new();
        public readonly HashSet<(bool, UInt128)> Addresses = [];
        public readonly Dictionary<(int IfIndex, bool V6, UInt128 Ip), ulong> Resolved = [];
        public readonly Dictionary<uint, (bool Blackhole, bool Fdb, int IfIndex, UInt128 Gw, bool HasGw, NexthopMember[] Members)> Nexthops = [];
        public uint Seq;
        public bool Done;
        public int Errno;

        public void Link(in LinkMsg m) { }

        public void Address(in AddrMsg m) => Addresses.Add((m.V6, m.Address));

        public void Route(in RouteMsg m)
        {
            if (m.Table is Nl.TableLocal or Nl.TableUnspec)
                return;
            Routes.Put(new RouteKey(m.Table, m.Prefix), new KernelRoute
            {
                Metric = m.Metric, Tos = m.Tos, Type = m.Type, Nexthop = m.NexthopId, Hops = m.NexthopId != 0 ? 0 : Routes.Hops.Acquire(m.Hops),
            });
        }

        public void Neighbor(in NeighMsg m)
        {
            if (m.Resolved)
                Resolved[(m.IfIndex, m.V6, m.Ip)] = m.Mac;
        }

        public void Nexthop(in NexthopMsg m) =>
            Nexthops[m.Id] = (m.Blackhole, m.Fdb, m.IfIndex, m.Gateway, m.HasGateway, m.Group.ToArray());

        public void Rule(in RuleMsg m) { }

        public void Control(ushort type, int errno, uint seq)
        {
            if (seq != Seq)
                return;
            Done = true;
            Errno = errno;
        }

        public void Dispose() => Routes.Dispose();
    }

    private static Snapshot Dump(string? netns)
    {
        var snap = new Snapshot();
        using var s = new NetlinkSocket(netns, 0, 64 << 20);
        var buf = new byte[1 << 20];
        uint seq = 0x7e00;
        foreach (var (type, family) in new[] { (Nl.GetAddr, Nl.AfUnspec), (Nl.GetNexthop, Nl.AfUnspec), (Nl.GetRoute, Nl.AfInet), (Nl.GetRoute, Nl.AfInet6), (Nl.GetNeigh, Nl.AfUnspec) })
        {
            snap.Seq = ++seq;
            snap.Done = false;
            s.Send(NetlinkWriter.DumpRequest(type, family, seq));
            long deadline = Environment.TickCount64 + 60_000;
            while (!snap.Done)
            {
                if (Environment.TickCount64 > deadline)
                    throw new IOException("netlink dump timed out");
                int n = s.Receive(buf, 1000);
                if (n == -11 || n == -4)
                    continue;
                if (n < 0)
                    throw new IOException($"netlink dump failed: {Eal.StrError(-n)}");
                NetlinkParser.Parse(buf.AsSpan(0, n), ref snap);
            }
        }
        return snap;
    }

    /// <summary>Compares every table a port forwards in (or one: <paramref name="table"/> of
    /// <paramref name="netns"/>) with Linux, in up to <paramref name="rounds"/> rounds.</summary>
    public static VerifyReport Verify(RoutingService routing, bool anyNetns, string? netns, uint? table, int rounds = 3)
    {
        Dictionary<(string?, uint, string, string), VerifyDifference>? persistent = null;
        long checkedCount = 0;
        int round = 0;
        for (; round < rounds; round++)
        {
            if (round > 0)
                Thread.Sleep(300);
            var found = new Dictionary<(string?, uint, string, string), VerifyDifference>();
            checkedCount = 0;
            foreach (NamespaceSync ns in routing.Namespaces.ToList())
            {
                if (!anyNetns && ns.Netns != netns)
                    continue;
                using Snapshot snap = Dump(ns.Netns);
                lock (routing.Lock)
                    checkedCount += Compare(routing.Fib, ns, snap, table, found);
            }
            persistent = persistent is null ? found
                : found.Where(kv => persistent.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            if (persistent.Count == 0)
            {
                round++;
                break;
            }
        }
        return new VerifyReport(checkedCount, round, [.. (persistent ?? []).Values.OrderBy(d => d.Netns).ThenBy(d => d.Table).ThenBy(d => d.Prefix, StringComparer.Ordinal)]);
    }

    private sealed class Context(FibWriter fib, NamespaceSync ns, Snapshot snap)
    {
        public readonly FibWriter Fib = fib;
        public readonly NamespaceSync Ns = ns;
        public readonly Snapshot Snap = snap;
        public readonly Dictionary<(int, bool), Expect> ByHops = [];
        public readonly Dictionary<(uint, bool), Expect> ByNexthop = [];
        public readonly Dictionary<int, Expect> ByGroup = [];
        private readonly Dictionary<uint, List<(int IfIndex, Prefix Prefix)>> _attached = [];

        /// <summary>A table's attached routes (best route of a prefix: one device-only hop on
        /// a TAP mirror): where the neighbours behind them are reached from.</summary>
        public bool Attached(uint table, int ifindex, Prefix host)
        {
            if (!_attached.TryGetValue(table, out var list))
            {
                list = [];
                var keys = new Dataplane.Tables.NativeList<RouteKey>();
                Snap.Routes.CollectPrefixes(keys, new TableOf(table));
                for (int i = 0; i < keys.Count; i++)
                {
                    if (!Snap.Routes.TryGetBest(keys[i], out KernelRoute r) || r.Type != Nl.RtnUnicast || r.Nexthop != 0)
                        continue;
                    RouteNextHop[] hops = Snap.Routes.Hops.Get(r.Hops);
                    if (hops.Length == 1 && !hops[0].HasGateway && Ns.Mirror(hops[0].IfIndex) is { Tun: false })
                        list.Add((hops[0].IfIndex, keys[i].Prefix));
                }
                keys.Dispose();
                _attached[table] = list;
            }
            foreach (var (ifx, p) in list)
                if (ifx == ifindex && p.Contains(host))
                    return true;
            return false;
        }

        public string Name(ushort port) => Ns.Mirrors.FirstOrDefault(m => m.Port == port)?.HostIf ?? $"port {port}";
    }

    private static long Compare(FibWriter fib, NamespaceSync ns, Snapshot snap, uint? onlyTable,
        Dictionary<(string?, uint, string, string), VerifyDifference> found)
    {
        var ctx = new Context(fib, ns, snap);
        long n = 0;
        foreach (var (kernelTable, index) in ns.ActiveTables)
        {
            if (onlyTable is uint t && t != kernelTable)
                continue;
            void Add(string prefix, string problem, string? kernel, string? inFib) =>
                found[(ns.Netns, kernelTable, prefix, problem)] = new VerifyDifference(ns.Netns, kernelTable, prefix, problem, kernel, inFib);

            // 1. Everything the FIB holds: is it what Linux says?
            var visitor = new InstalledVisitor(ctx, kernelTable, index);
            fib.ForEachInstalled(index, ref visitor);
            n += visitor.Count;
            foreach (var (p, problem, kernel, inFib) in visitor.Differences)
                Add(p, problem, kernel, inFib);

            // 2. Everything Linux says: is it in the FIB?
            foreach (Prefix p in Wanted(ctx, kernelTable, index))
            {
                if (fib.Installed(index, p) is null && ExpectFor(ctx, kernelTable, index, p) is Expect e)
                    Add(p.ToString(), "missing from the FIB", e.Describe(p.V6, ctx.Name), null);
            }

            // 3. The DPDK tables against the writer's model.
            foreach (bool v6 in new[] { false, true })
                foreach (string d in fib.CheckDataplane(index, v6))
                    Add(d.Split(':')[0], "dataplane table", null, d);
        }
        return n;
    }

    /// <summary>Every prefix Linux wants in a table: its routes, the namespace's addresses, and
    /// host routes to the resolved neighbours its attached routes reach.</summary>
    private static IEnumerable<Prefix> Wanted(Context ctx, uint kernelTable, int index)
    {
        var keys = new Dataplane.Tables.NativeList<RouteKey>();
        try
        {
            ctx.Snap.Routes.CollectPrefixes(keys, new TableOf(kernelTable));
            for (int i = 0; i < keys.Count; i++)
                yield return keys[i].Prefix;
        }
        finally
        {
            keys.Dispose();
        }
        foreach (var (v6, a) in ctx.Snap.Addresses)
            yield return Prefix.Host(v6, a);
        foreach (var (ifindex, v6, ip) in ctx.Snap.Resolved.Keys)
            if (ctx.Ns.Mirror(ifindex) is MirrorInfo m && !m.Tun && ctx.Attached(kernelTable, ifindex, Prefix.Host(v6, ip)))
                yield return Prefix.Host(v6, ip);
    }

    private readonly struct TableOf(uint table) : IRouteSelector
    {
        public bool Take(in RouteKey key, in KernelRoute route) => key.Table == table;
    }

    private struct InstalledVisitor(Context ctx, uint kernelTable, int index) : IFibVisitor
    {
        public long Count;
        public List<(string, string, string?, string?)> Differences = [];

        public void Visit(in FibKey key, RouteSource source, int group)
        {
            Count++;
            Prefix p = key.Prefix;
            if (!ctx.ByGroup.TryGetValue(group, out Expect? have))
            {
                var (kind, paths, _) = ctx.Fib.DescribeGroup(group);
                ctx.ByGroup[group] = have = Expect.Of(kind, paths);
            }
            Expect? want = ExpectFor(ctx, kernelTable, index, p);
            if (want is null)
                Differences.Add((p.ToString(), "not in Linux", null, have.Describe(p.V6, ctx.Name)));
            else if (!want.Same(have))
                Differences.Add((p.ToString(), "different", want.Describe(p.V6, ctx.Name), have.Describe(p.V6, ctx.Name)));
        }
    }

    /// <summary>What Linux wants for one prefix of a table, or null: a local address first, then
    /// the lowest-metric route, then a resolved neighbour's host route.</summary>
    private static Expect? ExpectFor(Context ctx, uint kernelTable, int index, Prefix p)
    {
        int hostLen = p.V6 ? 128 : 32;
        if (p.Length == hostLen && ctx.Snap.Addresses.Contains((p.V6, p.Address)))
            return Expect.Local;
        if (ctx.Snap.Routes.TryGetBest(new RouteKey(kernelTable, p), out KernelRoute r))
            return FromRoute(ctx, r, p.V6);
        if (p.Length == hostLen)
        {
            foreach (MirrorInfo m in ctx.Ns.Mirrors)
                if (!m.Tun && ctx.Snap.Resolved.ContainsKey((m.IfIndex, p.V6, p.Address)) && ctx.Attached(kernelTable, m.IfIndex, p))
                    return new Expect(GroupKind.Forward, [(m.Port, p.Address)]);
        }
        return null;
    }

    private static Expect FromRoute(Context ctx, in KernelRoute r, bool v6)
    {
        switch (r.Type)
        {
            case Nl.RtnBlackhole: return Expect.Blackhole;
            case Nl.RtnUnreachable or Nl.RtnProhibit: return Expect.Unreachable;
            case Nl.RtnLocal: return Expect.Local;
            case Nl.RtnUnicast: break;
            default: return Expect.Punt;
        }
        if (r.Nexthop != 0)
        {
            if (!ctx.ByNexthop.TryGetValue((r.Nexthop, v6), out Expect? e))
                ctx.ByNexthop[(r.Nexthop, v6)] = e = FromObject(ctx, r.Nexthop, v6, depth: 0);
            return e;
        }
        if (!ctx.ByHops.TryGetValue((r.Hops, v6), out Expect? h))
        {
            RouteNextHop[] hops = ctx.Snap.Routes.Hops.Get(r.Hops);
            ctx.ByHops[(r.Hops, v6)] = h = FromHops(ctx, hops.Select(x => (x.IfIndex, x.Gateway, x.HasGateway)).ToList());
        }
        return h;
    }

    private static Expect FromHops(Context ctx, List<(int IfIndex, UInt128 Gw, bool HasGw)> hops)
    {
        if (hops.Count == 0)
            return Expect.Punt;
        var paths = new List<(ushort, UInt128)>();
        foreach (var (ifindex, gw, hasGw) in hops)
        {
            if (ctx.Ns.Mirror(ifindex) is not MirrorInfo m)
                return Expect.Punt; // Linux forwards what leaves through its own interfaces
            if (m.Tun)
                paths.Add((m.Port, hasGw ? gw : 0));
            else if (hasGw)
                paths.Add((m.Port, gw));
            else if (hops.Count == 1)
                return new Expect(GroupKind.Glean, [(m.Port, 0)]);
            else
                return Expect.Punt;
        }
        return Expect.Of(GroupKind.Forward, paths);
    }

    private static Expect FromObject(Context ctx, uint id, bool v6, int depth)
    {
        if (depth > 1 || !ctx.Snap.Nexthops.TryGetValue(id, out var nh))
            return Expect.Punt;
        if (nh.Blackhole)
            return Expect.Blackhole;
        if (nh.Fdb)
            return Expect.Punt;
        if (nh.Members.Length == 0)
            return FromHops(ctx, [(nh.IfIndex, nh.Gw, nh.HasGw)]);
        var paths = new List<(ushort, UInt128)>();
        foreach (NexthopMember member in nh.Members)
        {
            Expect e = FromObject(ctx, member.Id, v6, depth + 1);
            if (e.Kind == GroupKind.Blackhole && nh.Members.Length == 1)
                return e;
            if (e.Kind != GroupKind.Forward)
                return Expect.Punt;
            paths.AddRange(e.Paths);
        }
        return Expect.Of(GroupKind.Forward, paths);
    }
}
