namespace LinuxCp.Dataplane.Counters;

/// <summary>Why a packet left the fast path: punted to the host mirror, or dropped. Every
/// value is a named counter in <c>show errors</c>. Punts come first, then drops.</summary>
public enum Reason : byte
{
    // ---- punts (to the paired mirror, unchanged) ----
    PuntArp,
    PuntIp4,
    PuntIp6,
    PuntVlan,
    PuntOther,
    PuntLocal,
    PuntNoRoute,
    PuntTtl,
    PuntIp4Options,
    PuntMulticast,
    PuntIp6LinkLocal,
    PuntIp6HopByHop,
    PuntGlean,
    PuntTooBig,
    PuntUnreachable,
    PuntLinuxRoute,

    // ---- drops ----
    DropRunt,
    DropNotForUs,
    DropVlanTruncated,
    DropArpTruncated,
    DropIp4Truncated,
    DropIp4Version,
    DropIp4HeaderLength,
    DropIp4TotalLength,
    DropIp6Truncated,
    DropIp6Version,
    DropIp6PayloadLength,
    DropOtherEthertype,
    DropNoMirror,
    DropTunNotIp,
    DropTunNoHeadroom,
    DropMirrorTxFull,
    DropPhyTxFull,
    DropBlackhole,
    DropPortDown,
    DropClassify,
    DropPuntPoliced,
    DropFlowTableFull,
    DropVlanUnknown,
    DropSubNoHeadroom,

    /// <summary>The number of counted reasons (the counters' size); what follows is not counted.</summary>
    Count,

    // ---- verdicts, not counters ----
    /// <summary>Not punted nor dropped: the fast path forwards the packet.</summary>
    Forward,
    /// <summary>No reason: a trace record not (yet) classified, a cross-connected packet.</summary>
    None,
}

public static class ReasonInfo
{
    public const Reason FirstDrop = Reason.DropRunt;

    public static bool IsPunt(Reason r) => r < FirstDrop;

    /// <summary>Stable counter name (API/CLI/metrics contract).</summary>
    public static string Name(Reason r) => r switch
    {
        Reason.PuntArp => "punt-arp",
        Reason.PuntIp4 => "punt-ip4",
        Reason.PuntIp6 => "punt-ip6",
        Reason.PuntVlan => "punt-vlan",
        Reason.PuntOther => "punt-other-ethertype",
        Reason.PuntLocal => "punt-local",
        Reason.PuntNoRoute => "punt-no-route",
        Reason.PuntTtl => "punt-ttl-expired",
        Reason.PuntIp4Options => "punt-ip4-options",
        Reason.PuntMulticast => "punt-multicast",
        Reason.PuntIp6LinkLocal => "punt-ip6-link-local",
        Reason.PuntIp6HopByHop => "punt-ip6-hop-by-hop",
        Reason.PuntGlean => "punt-glean",
        Reason.PuntTooBig => "punt-too-big",
        Reason.PuntUnreachable => "punt-unreachable",
        Reason.PuntLinuxRoute => "punt-linux-route",
        Reason.DropRunt => "runt",
        Reason.DropNotForUs => "l2-not-for-us",
        Reason.DropVlanTruncated => "vlan-truncated",
        Reason.DropArpTruncated => "arp-truncated",
        Reason.DropIp4Truncated => "ip4-truncated",
        Reason.DropIp4Version => "ip4-bad-version",
        Reason.DropIp4HeaderLength => "ip4-bad-ihl",
        Reason.DropIp4TotalLength => "ip4-bad-length",
        Reason.DropIp6Truncated => "ip6-truncated",
        Reason.DropIp6Version => "ip6-bad-version",
        Reason.DropIp6PayloadLength => "ip6-bad-length",
        Reason.DropOtherEthertype => "other-ethertype",
        Reason.DropNoMirror => "no-mirror",
        Reason.DropTunNotIp => "tun-not-ip",
        Reason.DropTunNoHeadroom => "tun-no-headroom",
        Reason.DropMirrorTxFull => "mirror-tx-full",
        Reason.DropPhyTxFull => "phy-tx-full",
        Reason.DropBlackhole => "blackhole",
        Reason.DropPortDown => "port-down",
        Reason.DropClassify => "classify-drop",
        Reason.DropPuntPoliced => "punt-policed",
        Reason.DropFlowTableFull => "flow-table-full",
        Reason.DropVlanUnknown => "vlan-unknown",
        Reason.DropSubNoHeadroom => "vlan-no-headroom",
        Reason.Forward => "forward",
        Reason.None => "none",
        _ => "unknown",
    };

    public static string Description(Reason r) => r switch
    {
        Reason.PuntArp => "ARP punted to the mirror",
        Reason.PuntIp4 => "IPv4 punted to the mirror (no FIB)",
        Reason.PuntIp6 => "IPv6 punted to the mirror (no FIB)",
        Reason.PuntVlan => "802.1Q/802.1ad tagged frame punted to the mirror",
        Reason.PuntOther => "other ethertype (LLDP, LACP, ...) punted to the mirror",
        Reason.PuntLocal => "to a local address of the router",
        Reason.PuntNoRoute => "no route in the dataplane FIB",
        Reason.PuntTtl => "TTL / hop limit would expire (Linux sends time-exceeded)",
        Reason.PuntIp4Options => "IPv4 with options",
        Reason.PuntMulticast => "multicast or broadcast (L2 or L3)",
        Reason.PuntIp6LinkLocal => "IPv6 to a link-local address (ND, ...)",
        Reason.PuntIp6HopByHop => "IPv6 with a hop-by-hop header (MLD, ...)",
        Reason.PuntGlean => "next hop not resolved: Linux resolves it",
        Reason.PuntTooBig => "larger than the egress MTU (Linux sends frag-needed / packet-too-big)",
        Reason.PuntUnreachable => "unreachable/prohibit route: Linux answers with ICMP",
        Reason.PuntLinuxRoute => "route via an interface that is not a mirror",
        Reason.DropRunt => "frame shorter than an Ethernet header",
        Reason.DropNotForUs => "unicast to another MAC address",
        Reason.DropVlanTruncated => "VLAN tag truncated",
        Reason.DropArpTruncated => "ARP packet truncated",
        Reason.DropIp4Truncated => "IPv4 header truncated",
        Reason.DropIp4Version => "IPv4 ethertype with version != 4",
        Reason.DropIp4HeaderLength => "IPv4 IHL < 5",
        Reason.DropIp4TotalLength => "IPv4 total length shorter than the header or longer than the frame",
        Reason.DropIp6Truncated => "IPv6 header truncated",
        Reason.DropIp6Version => "IPv6 ethertype with version != 6",
        Reason.DropIp6PayloadLength => "IPv6 payload length longer than the frame",
        Reason.DropOtherEthertype => "other ethertype, punting disabled (--no-punt-other)",
        Reason.DropNoMirror => "received on a port without a mirror",
        Reason.DropTunNotIp => "non-IP frame for, or from, a TUN mirror",
        Reason.DropTunNoHeadroom => "no headroom to add the Ethernet header to a TUN packet",
        Reason.DropMirrorTxFull => "mirror TX queue full",
        Reason.DropPhyTxFull => "port TX queue full",
        Reason.DropBlackhole => "blackhole route",
        Reason.DropPortDown => "received on a port whose mirror is administratively down",
        Reason.DropClassify => "dropped by a classifier rule (show classify)",
        Reason.DropPuntPoliced => "punt over its policer's budget (show punt policers)",
        Reason.DropFlowTableFull => "new flow on a tracked port with the flow table full (full-policy drop)",
        Reason.DropVlanUnknown => "tagged frame matching no sub-interface of a port that has some",
        Reason.DropSubNoHeadroom => "no room in the buffer to push a sub-interface's VLAN tags",
        _ => "",
    };
}
