namespace LinuxCp.Dataplane.Tables;

/// <summary>What a worker does with a burst received on a port.</summary>
public enum PollKind : byte
{
    /// <summary>Phy port with no mirror: classify, count, drop.</summary>
    PhyUnpaired,
    /// <summary>Phy port paired with a TAP: classify, punt frames unchanged.</summary>
    PhyToTap,
    /// <summary>Phy port paired with a TUN: classify, punt IP packets without their L2 header.</summary>
    PhyToTun,
    /// <summary>TAP mirror: x-connect every frame to the phy port.</summary>
    TapToPhy,
    /// <summary>TUN mirror: add the L2 header towards the link's peer, x-connect.</summary>
    TunToPhy,
}

/// <summary>One port a worker polls, and where its traffic goes. <paramref name="Table"/>: the
/// dense index of the dataplane table its packets are forwarded in (0, the default table,
/// unless the port is bound to another). <paramref name="Subs"/>: the port has sub-interfaces
/// (<see cref="PollTable.Vlans"/>): its tagged frames are handed to them first. A sub-interface
/// has an entry of the same shape (its id as <paramref name="Port"/>), in the VLAN table.
/// <paramref name="Bond"/>: an 802.3ad bond, whose LACPDUs leave only inside a TX burst: the
/// worker makes an empty one now and then when it has nothing to send.</summary>
public readonly record struct PollEntry(ushort Port, ushort Peer, PollKind Kind, ulong PortMac, ulong PeerPortMac, bool Down = false, byte Table = 0,
    bool Subs = false, bool Bond = false);

/// <summary>An immutable snapshot of what the workers poll. The control plane builds a new one
/// and publishes it; workers pick it up at the top of their next loop iteration.</summary>
public sealed class PollTable
{
    public static readonly PollTable Empty = new([], 0);

    public PollEntry[] Entries { get; }
    public long Generation { get; }

    /// <summary>The sub-interfaces (VLAN / QinQ) of the ports.</summary>
    public VlanTable Vlans { get; }

    public PollTable(PollEntry[] entries, long generation, VlanTable? vlans = null)
    {
        Entries = entries;
        Generation = generation;
        Vlans = vlans ?? VlanTable.Empty;
    }
}
