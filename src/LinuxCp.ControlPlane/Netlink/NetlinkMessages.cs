using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Netlink;

// rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/neighbour.h,
// linux/nexthop.h, linux/fib_rules.h, linux/if_addr.h).
public static class Nl
{
    public const ushort Noop = 1, Error = 2, Done = 3, Overrun = 4;
    public const ushort NewLink = 16, DelLink = 17, GetLink = 18;
    public const ushort NewAddr = 20, DelAddr = 21, GetAddr = 22;
    public const ushort NewRoute = 24, DelRoute = 25, GetRoute = 26;
    public const ushort NewNeigh = 28, DelNeigh = 29, GetNeigh = 30;
    public const ushort NewRule = 32, DelRule = 33, GetRule = 34;
    public const ushort NewNexthop = 104, DelNexthop = 105, GetNexthop = 106;
    public const ushort FRequest = 1, FMulti = 2, FAck = 4, FDump = 0x300;
    public const ushort FReplace = 0x100, FExcl = 0x200, FCreate = 0x400, FAppend = 0x800;
    /// <summary>Multicast groups as bind() bits (group g is bit g-1).</summary>
    public const uint GrpLink = 1u << 0, GrpNeigh = 1u << 2, GrpIp4Addr = 1u << 4, GrpIp4Route = 1u << 6, GrpIp4Rule = 1u << 7,
        GrpIp6Addr = 1u << 8, GrpIp6Route = 1u << 10, GrpIp6Rule = 1u << 18, GrpNexthop = 1u << 31;
    public const uint AllGroups = GrpLink | GrpNeigh | GrpIp4Addr | GrpIp4Route | GrpIp4Rule | GrpIp6Addr | GrpIp6Route | GrpIp6Rule | GrpNexthop;
    public const byte AfUnspec = 0, AfInet = 2, AfInet6 = 10;
    public const int HeaderSize = 16;
    // link
    public const ushort IflaAddress = 1, IflaIfname = 3, IflaMtu = 4, IflaLink = 5, IflaMaster = 10, IflaOperstate = 16,
        IflaLinkinfo = 18, IflaCarrier = 33;
    public const ushort IflaInfoKind = 1, IflaInfoData = 2;
    public const ushort IflaVrfTable = 1;
    public const ushort IflaTunType = 3, IflaTunPersist = 6, IflaTunNumQueues = 8;
    public const uint IffUp = 0x1, IffLowerUp = 0x10000, IffRunning = 0x40;
    // address
    public const ushort IfaAddress = 1, IfaLocal = 2, IfaFlags = 8;
    public const uint IfaFTentative = 0x40, IfaFDadFailed = 0x08;
    // route
    public const ushort RtaDst = 1, RtaOif = 4, RtaGateway = 5, RtaPriority = 6, RtaMultipath = 9, RtaTable = 15, RtaVia = 18, RtaNhId = 30;
    public const byte RtnUnicast = 1, RtnLocal = 2, RtnBroadcast = 3, RtnAnycast = 4, RtnMulticast = 5, RtnBlackhole = 6,
        RtnUnreachable = 7, RtnProhibit = 8, RtnThrow = 9;
    public const uint TableUnspec = 0, TableDefault = 253, TableMain = 254, TableLocal = 255;
    public const uint RtmFCloned = 0x200;
    public const byte RtnhFDead = 1, RtnhFLinkdown = 16;
    // neighbour
    public const ushort NdaDst = 1, NdaLladdr = 2;
    public const ushort NudIncomplete = 0x01, NudReachable = 0x02, NudStale = 0x04, NudDelay = 0x08, NudProbe = 0x10,
        NudFailed = 0x20, NudNoarp = 0x40, NudPermanent = 0x80;
    public const ushort NudValid = NudReachable | NudStale | NudDelay | NudProbe | NudPermanent;
    // nexthop objects
    public const ushort NhaId = 1, NhaGroup = 2, NhaGroupType = 3, NhaBlackhole = 4, NhaOif = 5, NhaGateway = 6, NhaMaster = 10, NhaFdb = 11;
    // rules
    public const ushort FraDst = 1, FraSrc = 2, FraIifname = 3, FraGoto = 4, FraPriority = 6, FraFwmark = 10, FraTable = 15,
        FraFwmask = 16, FraOifname = 17, FraL3mdev = 19, FraUidRange = 20, FraProtocol = 21, FraIpProto = 22, FraSportRange = 23, FraDportRange = 24;
    public const byte FrActToTbl = 1;
}

/// <summary>RTM_NEWLINK / RTM_DELLINK. The name and kind are spans into the receive buffer,
/// valid only during the call that receives the message.</summary>
public readonly ref struct LinkMsg
{
    public bool Deleted { get; init; }
    public int IfIndex { get; init; }
    public uint Flags { get; init; }
    public uint Mtu { get; init; }
    /// <summary>48-bit MAC in memory order (low bytes), when <see cref="HasMac"/>.</summary>
    public ulong Mac { get; init; }
    public bool HasMac { get; init; }
    /// <summary>IFLA_MASTER: the l3mdev (VRF) or bridge it is enslaved to (0: none).</summary>
    public int Master { get; init; }
    /// <summary>IFLA_CARRIER, when present (-1: absent).</summary>
    public int Carrier { get; init; }
    public ReadOnlySpan<byte> Name { get; init; }
    /// <summary>IFLA_INFO_KIND ("vrf", "tun", "veth", ...), empty when absent.</summary>
    public ReadOnlySpan<byte> Kind { get; init; }
    /// <summary>IFLA_VRF_TABLE of a VRF device (0: not one).</summary>
    public uint VrfTable { get; init; }
    /// <summary>A tun/tap device: IFLA_TUN_TYPE (1 TUN, 2 TAP; 0: not one).</summary>
    public byte TunType { get; init; }
    public bool TunPersist { get; init; }
    /// <summary>Queues a process has attached (IFLA_TUN_NUM_QUEUES; -1 unknown).</summary>
    public int TunQueues { get; init; }

    public bool AdminUp => (Flags & Nl.IffUp) != 0;
    public bool IsVrf => Kind.SequenceEqual("vrf"u8);
}

/// <summary>RTM_NEWADDR / RTM_DELADDR.</summary>
public readonly ref struct AddrMsg
{
    public bool Deleted { get; init; }
    public bool V6 { get; init; }
    public int IfIndex { get; init; }
    public UInt128 Address { get; init; }
    public int PrefixLength { get; init; }
    /// <summary>IFA_F_* (IFA_FLAGS when present, else the header's 8 bits).</summary>
    public uint Flags { get; init; }
}

/// <summary>One next hop of a route message (RTA_GATEWAY/RTA_OIF or an RTA_MULTIPATH entry).</summary>
public readonly record struct RouteNextHop(int IfIndex, UInt128 Gateway, bool HasGateway, int Weight);

/// <summary>RTM_NEWROUTE / RTM_DELROUTE, with its next hops as a span (nothing allocated).</summary>
public readonly ref struct RouteMsg
{
    public bool Deleted { get; init; }
    /// <summary>netlink header flags (NLM_F_REPLACE, NLM_F_APPEND, ...).</summary>
    public ushort NlFlags { get; init; }
    public Prefix Prefix { get; init; }
    public uint Table { get; init; }
    public byte Type { get; init; }
    public byte Protocol { get; init; }
    public byte Scope { get; init; }
    public uint Metric { get; init; }
    public byte Tos { get; init; }
    /// <summary>RTA_NH_ID: the route follows a kernel nexthop object (0: none).</summary>
    public uint NexthopId { get; init; }
    public ReadOnlySpan<RouteNextHop> Hops { get; init; }
}

/// <summary>RTM_NEWNEIGH / RTM_DELNEIGH.</summary>
public readonly ref struct NeighMsg
{
    public bool Deleted { get; init; }
    public bool V6 { get; init; }
    public int IfIndex { get; init; }
    public ushort State { get; init; }
    public UInt128 Ip { get; init; }
    public ulong Mac { get; init; }
    public bool HasMac { get; init; }

    public bool Resolved => !Deleted && HasMac && (State & Nl.NudValid) != 0;
}

/// <summary>A member of a nexthop group (struct nexthop_grp; the weight as the kernel means it, 1-256).</summary>
public readonly record struct NexthopMember(uint Id, int Weight);

/// <summary>RTM_NEWNEXTHOP / RTM_DELNEXTHOP: a single nexthop (device and gateway, or blackhole)
/// or a group of others, with the members as a span.</summary>
public readonly ref struct NexthopMsg
{
    public bool Deleted { get; init; }
    public uint Id { get; init; }
    public byte Family { get; init; }
    public bool Blackhole { get; init; }
    public int IfIndex { get; init; }
    public UInt128 Gateway { get; init; }
    public bool HasGateway { get; init; }
    public bool Fdb { get; init; }
    /// <summary>NHA_GROUP_TYPE (0: multipath, 1: resilient).</summary>
    public ushort GroupType { get; init; }
    public ReadOnlySpan<NexthopMember> Group { get; init; }

    public bool IsGroup => Group.Length != 0;
    public bool V6 => Family == Nl.AfInet6;
}

/// <summary>RTM_NEWRULE / RTM_DELRULE (policy routing).</summary>
public readonly ref struct RuleMsg
{
    public bool Deleted { get; init; }
    public bool V6 { get; init; }
    public uint Priority { get; init; }
    public byte Action { get; init; }
    public uint Table { get; init; }
    public ReadOnlySpan<byte> IifName { get; init; }
    /// <summary>Any selector besides the input interface (source/destination prefix, TOS, fwmark,
    /// output interface, ports, protocol, uid, inversion): a rule the dataplane cannot apply.</summary>
    public bool HasOtherSelectors { get; init; }
    /// <summary>The l3mdev rule (lookup in the table of the receiving VRF device).</summary>
    public bool L3mdev { get; init; }
}

/// <summary>Receives parsed messages, every kind as a struct whose spans point into the receive
/// buffer: notifications and dumps take this one allocation-free path.</summary>
public interface INetlinkSink
{
    void Link(in LinkMsg m);
    void Address(in AddrMsg m);
    void Route(in RouteMsg m);
    void Neighbor(in NeighMsg m);
    void Nexthop(in NexthopMsg m);
    void Rule(in RuleMsg m);
    /// <summary>NLMSG_DONE (errno 0) or NLMSG_ERROR (errno, 0 for an ACK) of request <paramref name="seq"/>.</summary>
    void Control(ushort type, int errno, uint seq);
}
