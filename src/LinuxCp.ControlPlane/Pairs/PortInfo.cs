using DpdkSharp;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>How a pair's mirror is made: a TAP or TUN opened by the TAP PMD (one system call per
/// packet), or a veth pair whose far end the dataplane serves with af_packet rings (TPACKET,
/// qdisc bypass: a system call per burst) or with XDP sockets.</summary>
public enum MirrorKind
{
    Tap,
    Tun,
    VethPacket,
    VethXdp,
}

public enum PortKind
{
    Phy,
    Tap,
    Tun,
    /// <summary>A veth mirror's dataplane end (af_packet or af_xdp).</summary>
    Veth,
    /// <summary>A VLAN / QinQ sub-interface of a phy port (no DPDK port of its own).</summary>
    Sub,
}

/// <summary>What makes a sub-interface: its parent port's id and its tags.</summary>
public sealed record SubInfo(ushort Parent, VlanTags Tags);

/// <summary>An existing kernel interface lcpd attached as a port ("system" port): its name and
/// namespace, and the sysctls lcpd changed there (restored when it is detached).</summary>
public sealed record AttachedIf(string Ifname, string? Netns, IReadOnlyDictionary<string, string> Saved);

/// <summary>A port lcpd owns: a physical (or vdev) port, a mirror it created, or a sub-interface
/// of a physical port (<paramref name="Sub"/>; its id is a dataplane interface id, not a DPDK port).
/// <paramref name="Attached"/>: a port made from an existing kernel interface (--attach).</summary>
public sealed record PortInfo(ushort Id, string Name, PortKind Kind, MacAddress Mac, string Driver, SubInfo? Sub = null,
    AttachedIf? Attached = null)
{
    /// <summary>The DPDK port frames of this port are received and sent on (a sub-interface's parent).</summary>
    public ushort DpdkPort => Sub?.Parent ?? Id;
}

/// <summary>Whether a pair's mirror works.</summary>
public enum PairState
{
    Up,
    /// <summary>The mirror is gone (deleted from outside, or its namespace deleted): the port
    /// is not punted to nor polled on the mirror side until it is re-created.</summary>
    Down,
}

/// <summary>What happened to a pair (<see cref="PairManager.PairChanged"/>).</summary>
public enum PairEvent
{
    Created,
    Deleted,
    Down,
    Recovered,
}

/// <summary>A port and its kernel mirror. <paramref name="Table"/>: the kernel table the pair
/// was bound to explicitly; <paramref name="TableIndex"/>: the dataplane table its port forwards
/// in now; <paramref name="NetnsInode"/>: the identity of the namespace the mirror lives in;
/// <paramref name="Kind"/>: how the mirror is made; <paramref name="VethPeer"/>: a veth mirror's
/// dataplane end (in lcpd's namespace).</summary>
public sealed record Pair(
    PortInfo Phy,
    PortInfo Mirror,
    string HostIf,
    string? Netns,
    bool Tun,
    int HostIfIndex,
    bool Persist,
    bool AdminUp = true,
    uint? Table = null,
    int TableIndex = 0,
    PairState State = PairState.Up,
    string? DownReason = null,
    ulong NetnsInode = 0,
    bool Adopted = false,
    MirrorKind Kind = MirrorKind.Tap,
    string? VethPeer = null)
{
    /// <summary>The name show lcp gives the mirror's kind.</summary>
    public string KindName => Kind switch { MirrorKind.Tun => "tun", MirrorKind.VethPacket => "veth", MirrorKind.VethXdp => "veth-xdp", _ => "tap" };
}

/// <summary>A request that cannot be carried out; the message is for the operator.</summary>
public sealed class PairException : Exception
{
    public PairException(string message) : base(message) { }

    public PairException() { }

    public PairException(string message, Exception inner) : base(message, inner) { }
}
