using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Kernel nexthop objects (RTM_NEWNEXTHOP/DELNEXTHOP): single nexthops (device and
/// gateway, or blackhole) and groups of them with weights. Each object becomes a FIB group of
/// its own; routes that name it (RTA_NH_ID, all a route carries with
/// <c>net.ipv4.nexthop_compat_mode=0</c>) point at that group, so replacing the object moves
/// every route using it in one commit. Groups are flattened here: a group's content is its
/// members' next hops with the members' weights.</summary>
public sealed class NexthopHandler : INetlinkHandler<NexthopMsg>
{
    private sealed class NhObject
    {
        public bool Blackhole;
        public bool Fdb;
        public int IfIndex;
        public UInt128 Gateway;
        public bool HasGateway;
        public bool V6;
        public NexthopMember[] Members = [];
        public byte Mark;

        public bool IsGroup => Members.Length != 0;
    }

    private readonly NamespaceSync _ns;
    private readonly Dictionary<uint, NhObject> _objects = [];

    internal NexthopHandler(NamespaceSync ns) => _ns = ns;

    public int Count => _objects.Count;

    public void Add(in NexthopMsg m)
    {
        bool known = _objects.TryGetValue(m.Id, out NhObject? o);
        o ??= new NhObject();
        o.Blackhole = m.Blackhole;
        o.Fdb = m.Fdb;
        o.IfIndex = m.IfIndex;
        o.Gateway = m.Gateway;
        o.HasGateway = m.HasGateway;
        o.V6 = m.V6;
        if (!o.Members.AsSpan().SequenceEqual(m.Group))
            o.Members = m.Group.ToArray();
        o.Mark = _ns.Epoch;
        _objects[m.Id] = o;
        uint id = m.Id;
        Publish(id, o);
        if (known && !o.IsGroup)
            PublishGroupsWith(id);
    }

    public void Delete(in NexthopMsg m)
    {
        if (!_objects.Remove(m.Id))
            return;
        // The kernel drops the routes that used it (without a route message each).
        _ns.Routes.RemoveByNexthop(m.Id);
        _ns.Fib.SetNexthop(new NexthopKey(_ns.Domain, m.Id), null);
        PublishGroupsWith(m.Id);
    }

    /// <summary>Groups naming a changed or deleted member are flattened again.</summary>
    private void PublishGroupsWith(uint member)
    {
        foreach (var (gid, g) in _objects)
            if (g.IsGroup && Array.Exists(g.Members, x => x.Id == member))
                Publish(gid, g);
    }

    private void Publish(uint id, NhObject o) => _ns.Fib.SetNexthop(new NexthopKey(_ns.Domain, id), Content(o));

    /// <summary>What an object forwards to, flattened.</summary>
    private RouteTarget Content(NhObject o)
    {
        if (o.Blackhole)
            return RouteTarget.BlackholeTarget;
        if (o.Fdb)
            return RouteTarget.PuntTarget;
        if (!o.IsGroup)
        {
            if (_ns.Mirror(o.IfIndex) is not MirrorInfo mirror)
                return RouteTarget.PuntTarget; // a device Linux owns
            if (mirror.Tun)
                return RouteTarget.Via(o.V6, new NextHop(mirror.Port, 0, 1));
            return o.HasGateway
                ? RouteTarget.Via(o.V6, new NextHop(mirror.Port, o.Gateway, 1))
                : RouteTarget.Attached(mirror.Port, o.V6);
        }
        var hops = new List<NextHop>(o.Members.Length);
        bool v6 = false;
        foreach (NexthopMember member in o.Members)
        {
            if (!_objects.TryGetValue(member.Id, out NhObject? single) || single.IsGroup)
                return RouteTarget.PuntTarget;
            RouteTarget t = Content(single);
            if (t.Kind == GroupKind.Blackhole && o.Members.Length == 1)
                return t;
            if (t.Kind != GroupKind.Forward)
                return RouteTarget.PuntTarget; // an attached or foreign member: Linux forwards
            foreach (NextHop h in t.NextHops)
                hops.Add(h with { Weight = member.Weight });
            v6 = t.V6;
        }
        return RouteTarget.Via(v6, [.. hops]);
    }

    /// <summary>Mirrors changed: every object is translated again.</summary>
    internal void Retranslate()
    {
        foreach (var (id, o) in _objects)
            Publish(id, o);
    }

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        var stale = _objects.Where(kv => kv.Value.Mark != _ns.Epoch).Select(kv => kv.Key).ToList();
        foreach (uint id in stale)
            Delete(new NexthopMsg { Deleted = true, Id = id });
        return stale.Count;
    }
}
