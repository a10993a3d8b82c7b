using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>Bonding modes of DPDK's net_bonding that lcpd offers.</summary>
public enum BondMode : byte
{
    ActiveBackup = 1,
    BalanceXor = 2,
    Lacp = 4,
}

/// <summary>How a balance or 802.3ad bond spreads flows over its members.</summary>
public enum BondHash : byte
{
    L2 = 0,
    L23 = 1,
    L34 = 2,
}

/// <summary>802.3ad state of one bond member (actor: this side, partner: the peer).</summary>
public readonly record struct LacpInfo(byte Selected, byte ActorState, byte PartnerState, ushort AggregatorPort,
    ushort ActorKey, ushort PartnerKey, ushort ActorPort, ushort PartnerPort, MacAddress ActorSystem, MacAddress PartnerSystem)
{
    private static readonly string[] StateBits = ["activity", "short-timeout", "aggregation", "sync", "collecting", "distributing", "defaulted", "expired"];

    /// <summary>The named bits of an LACP state byte (802.1AX 6.4.2.3).</summary>
    public static IReadOnlyList<string> Decode(byte state) => [.. StateBits.Where((_, i) => ((state >> i) & 1) != 0)];

    public string Selection => Selected switch { 2 => "selected", 1 => "standby", _ => "unselected" };

    /// <summary>Both sides in sync, collecting and distributing: the member carries traffic.</summary>
    public bool Distributing => (ActorState & 0x38) == 0x38 && (PartnerState & 0x38) == 0x38;
}

/// <summary>DPDK bonds (net_bonding) through the shim.</summary>
public static unsafe class Bond
{
    /// <summary>Creates bond device <paramref name="device"/> (a name starting with net_bonding)
    /// over <paramref name="members"/>; returns its port id. Throws with the PMD's reason.</summary>
    public static ushort Create(string device, BondMode mode, BondHash hash, IReadOnlyList<ushort> members, int socket)
    {
        using var n = new NativeUtf8(device);
        ushort* m = stackalloc ushort[members.Count];
        for (int i = 0; i < members.Count; i++)
            m[i] = members[i];
        int rc = LcpShim.lcp_bond_create(n.Pointer, (byte)mode, (byte)hash, m, (ushort)members.Count, socket);
        if (rc < 0)
            throw new DpdkException($"bond {device}: {Eal.StrError(-rc)}", -rc);
        return (ushort)rc;
    }

    /// <summary>The bond's members and, of those, the active ones (link up, in the distribution).</summary>
    public static (ushort[] Members, ushort[] Active) Members(ushort bond)
    {
        const int Max = EthPort.MaxPorts;
        ushort* members = stackalloc ushort[Max];
        ushort* active = stackalloc ushort[Max];
        ushort nActive = 0;
        int n = LcpShim.lcp_bond_members(bond, members, Max, active, &nActive);
        if (n < 0)
            return ([], []);
        return (new ReadOnlySpan<ushort>(members, n).ToArray(), new ReadOnlySpan<ushort>(active, nActive).ToArray());
    }

    public static BondMode? Mode(ushort bond) => LcpShim.lcp_bond_mode(bond) is int m and >= 0 ? (BondMode)m : null;

    /// <summary>The 802.3ad state of an active member of an LACP bond, or null.</summary>
    public static LacpInfo? Lacp(ushort bond, ushort member)
    {
        lcp_lacp_info info;
        if (LcpShim.lcp_bond_lacp(bond, member, &info) != 0)
            return null;
        return new LacpInfo(info.selected, info.actor_state, info.partner_state, info.agg_port, info.actor_key, info.partner_key,
            info.actor_port, info.partner_port, MacAddress.FromBytes(new ReadOnlySpan<byte>(info.actor_system, 6)),
            MacAddress.FromBytes(new ReadOnlySpan<byte>(info.partner_system, 6)));
    }

    /// <summary>Takes a member out of the bond (its traffic moves to the others at once). 0 or a negative errno.</summary>
    public static int RemoveMember(ushort bond, ushort member) => LcpShim.lcp_bond_member_remove(bond, member) is int rc and < 0 ? (rc == -1 ? -22 : rc) : 0;

    /// <summary>Adds a member (configured and started by the bond if it runs). 0 or a negative errno.</summary>
    public static int AddMember(ushort bond, ushort member) => LcpShim.lcp_bond_member_add(bond, member) is int rc and < 0 ? (rc == -1 ? -22 : rc) : 0;
}
