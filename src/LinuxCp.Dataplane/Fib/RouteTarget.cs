namespace LinuxCp.Dataplane.Fib;

/// <summary>A next hop of a route as the control plane gives it: the egress phy port and the
/// neighbour (0 for a point-to-point port's one peer), with an ECMP weight.</summary>
public readonly record struct NextHop(ushort Port, UInt128 Gateway, int Weight);

/// <summary>A kernel nexthop object (RTM_NEWNEXTHOP), named by the control plane's namespace
/// ordinal and the kernel's id.</summary>
public readonly record struct NexthopKey(uint Domain, uint Id)
{
    public override string ToString() => $"nh {Id}";
}

/// <summary>A dataplane routing table as the control plane names it: a namespace ordinal and the
/// kernel's table id (254 = main).</summary>
public readonly record struct TableId(uint Domain, uint Table)
{
    public const uint Main = 254;
}

/// <summary>What a prefix should do, as one source (address, route, neighbour) says. Immutable
/// and compared by value: the FIB writer interns targets, so a million routes through a few
/// gateways share a few of these.</summary>
public sealed class RouteTarget : IEquatable<RouteTarget>
{
    public static readonly RouteTarget LocalTarget = new(GroupKind.Local, [], 0, false, null);
    public static readonly RouteTarget BlackholeTarget = new(GroupKind.Blackhole, [], 0, false, null);
    public static readonly RouteTarget UnreachableTarget = new(GroupKind.Unreachable, [], 0, false, null);
    public static readonly RouteTarget PuntTarget = new(GroupKind.PuntToLinux, [], 0, false, null);

    private RouteTarget(GroupKind kind, NextHop[] hops, ushort gleanPort, bool v6, NexthopKey? nexthop)
    {
        Kind = kind;
        NextHops = hops;
        GleanPort = gleanPort;
        V6 = v6;
        Nexthop = nexthop;
    }

    /// <summary>Forward (next hops), Glean (attached prefix), or a reserved kind.</summary>
    public GroupKind Kind { get; }
    public IReadOnlyList<NextHop> NextHops { get; }
    /// <summary>Glean: the port the prefix is attached to.</summary>
    public ushort GleanPort { get; }
    /// <summary>Family of the gateways (Forward/Glean).</summary>
    public bool V6 { get; }
    /// <summary>Set when the target is a kernel nexthop object: the route follows the object,
    /// whatever it points at now.</summary>
    public NexthopKey? Nexthop { get; }

    /// <summary>The id a FIB writer interned this instance under (a hint it checks; 0: none).</summary>
    internal int InternId;

    public static RouteTarget Via(bool v6, params NextHop[] hops) =>
        hops.Length == 0 ? PuntTarget : new RouteTarget(GroupKind.Forward, hops, 0, v6, null);

    public static RouteTarget Attached(ushort port, bool v6) => new(GroupKind.Glean, [], port, v6, null);

    public static RouteTarget Object(NexthopKey key) => new(GroupKind.Forward, [], 0, false, key);

    public bool Equals(RouteTarget? o)
    {
        if (ReferenceEquals(this, o))
            return true;
        if (o is null || o.Kind != Kind || o.GleanPort != GleanPort || o.V6 != V6 || o.Nexthop != Nexthop || o.NextHops.Count != NextHops.Count)
            return false;
        for (int i = 0; i < NextHops.Count; i++)
            if (o.NextHops[i] != NextHops[i])
                return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is RouteTarget t && Equals(t);

    // The first next hop keeps single-hop targets (nearly all of a full table's) apart.
    public override int GetHashCode() =>
        HashCode.Combine(Kind, GleanPort, V6, Nexthop, NextHops.Count, NextHops.Count == 0 ? default : NextHops[0]);

    public override string ToString() => Nexthop is NexthopKey k ? k.ToString()
        : Kind == GroupKind.Glean ? $"attached port {GleanPort}"
        : Kind == GroupKind.Forward ? string.Join(", ", NextHops.Select(h => $"via {Prefix.Format(V6, h.Gateway)} port {h.Port} w{h.Weight}"))
        : Kind.ToString();
}
