using System.Text;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>A parser sink that copies every message into plain records, for assertions.</summary>
public sealed class RecordingSink : INetlinkSink
{
    public sealed record LinkRec(bool Deleted, int IfIndex, string Name, uint Flags, uint Mtu, ulong? Mac, int Master, string Kind, uint VrfTable,
        byte TunType, bool TunPersist, int TunQueues);
    public sealed record AddrRec(bool Deleted, bool V6, int IfIndex, UInt128 Address, int PrefixLength, uint Flags);
    public sealed record RouteRec(bool Deleted, Prefix Prefix, uint Table, byte Type, uint Metric, uint NexthopId, ushort NlFlags, RouteNextHop[] Hops);
    public sealed record NeighRec(bool Deleted, bool V6, int IfIndex, UInt128 Ip, ulong? Mac, ushort State, bool Resolved);
    public sealed record NexthopRec(bool Deleted, uint Id, byte Family, bool Blackhole, int IfIndex, UInt128 Gateway, bool HasGateway, NexthopMember[] Group);
    public sealed record RuleRec(bool Deleted, bool V6, uint Priority, uint Table, string IifName, bool Other);
    public sealed record CtlRec(ushort Type, int Errno, uint Seq);

    public List<object> All { get; } = [];

    public T Single<T>() => Assert.Single(All.OfType<T>());

    public void Link(in LinkMsg m) => All.Add(new LinkRec(m.Deleted, m.IfIndex, Encoding.UTF8.GetString(m.Name), m.Flags, m.Mtu,
        m.HasMac ? m.Mac : null, m.Master, Encoding.UTF8.GetString(m.Kind), m.VrfTable, m.TunType, m.TunPersist, m.TunQueues));

    public void Address(in AddrMsg m) => All.Add(new AddrRec(m.Deleted, m.V6, m.IfIndex, m.Address, m.PrefixLength, m.Flags));

    public void Route(in RouteMsg m) => All.Add(new RouteRec(m.Deleted, m.Prefix, m.Table, m.Type, m.Metric, m.NexthopId, m.NlFlags, m.Hops.ToArray()));

    public void Neighbor(in NeighMsg m) => All.Add(new NeighRec(m.Deleted, m.V6, m.IfIndex, m.Ip, m.HasMac ? m.Mac : null, m.State, m.Resolved));

    public void Nexthop(in NexthopMsg m) => All.Add(new NexthopRec(m.Deleted, m.Id, m.Family, m.Blackhole, m.IfIndex, m.Gateway, m.HasGateway, m.Group.ToArray()));

    public void Rule(in RuleMsg m) => All.Add(new RuleRec(m.Deleted, m.V6, m.Priority, m.Table, Encoding.UTF8.GetString(m.IifName), m.HasOtherSelectors));

    public void Control(ushort type, int errno, uint seq) => All.Add(new CtlRec(type, errno, seq));

    public static RecordingSink Parse(ReadOnlySpan<byte> buf, out int malformed)
    {
        var s = new RecordingSink();
        malformed = NetlinkParser.Parse(buf, ref s);
        return s;
    }
}
