using System.Globalization;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The interface command family: <c>set interface state|mtu</c>. A paired port's admin
/// state and MTU belong to Linux (the control plane): the change is made on its mirror, and the
/// port follows it the way it follows any change made there with <c>ip link</c>; the port's
/// driver is asked too where it can (link up/down of a NIC). An unpaired port is changed directly.</summary>
public sealed class InterfaceCommands(RouterState state)
{
    /// <summary>Most bytes of an IP packet a port can be given (jumbo frames); 68 is IPv4's least.</summary>
    public const int MinMtu = 68, MaxMtu = 9600;

    private PortInfo Port(string name) => state.PhyPort(name);

    /// <summary>set interface state &lt;port&gt; up|down.</summary>
    public InterfaceStateDto SetState(CommandSpec spec, string[] a)
    {
        if (a.Length != 2 || a[1] is not ("up" or "down"))
            throw new ApiException($"usage: {spec.Usage}");
        PortInfo port = Port(a[0]);
        bool up = a[1] == "up";
        string? driver = null;
        // A sub-interface has no link of its own: only its mirror (and so its traffic) goes down.
        int rc = port.Kind == PortKind.Sub ? -95 : up ? Dpdk.rte_eth_dev_set_link_up(port.Id) : Dpdk.rte_eth_dev_set_link_down(port.Id);
        if (rc < 0)
            driver = port.Kind == PortKind.Sub ? null
                : rc == -95 ? "the driver cannot change its link (only the mirror was changed)" : Eal.StrError(-rc);
        Pair? pair = state.Pairs.Pairs().FirstOrDefault(p => p.Phy.Id == port.Id && p.State == PairState.Up);
        if (pair is null)
        {
            if (rc < 0)
                throw new ApiException($"port {port.Name} has no mirror and its driver refused: {Eal.StrError(-rc)}");
            return new InterfaceStateDto(port.Name, null, up, EthPort.Mtu(port.Id), null);
        }
        MirrorChange(pair, NetlinkRequest.SetLink(pair.HostIfIndex, up: up), $"set {pair.HostIf} {a[1]}");
        return new InterfaceStateDto(port.Name, pair.HostIf, up, EthPort.Mtu(pair.Mirror.Id), driver);
    }

    /// <summary>set interface mtu &lt;port&gt; &lt;bytes&gt;.</summary>
    public InterfaceStateDto SetMtu(CommandSpec spec, string[] a)
    {
        if (a.Length != 2)
            throw new ApiException($"usage: {spec.Usage}");
        if (!int.TryParse(a[1], NumberStyles.None, CultureInfo.InvariantCulture, out int mtu) || mtu < MinMtu || mtu > MaxMtu)
            throw new ApiException($"mtu '{a[1]}': a number of bytes from {MinMtu} to {MaxMtu}");
        PortInfo port = Port(a[0]);
        Pair? pair = state.Pairs.Pairs().FirstOrDefault(p => p.Phy.Id == port.Id && p.State == PairState.Up);
        if (pair is null)
        {
            if (port.Kind == PortKind.Sub)
                throw new ApiException($"sub-interface {port.Name} has no mirror to take the MTU");
            int rc = EthPort.SetMtu(port.Id, (ushort)mtu);
            if (rc < 0)
                throw new ApiException($"port {port.Name}: MTU {mtu} refused by the driver: {Eal.StrError(-rc)}");
            return new InterfaceStateDto(port.Name, null, true, EthPort.Mtu(port.Id), null);
        }
        MirrorChange(pair, NetlinkRequest.SetLink(pair.HostIfIndex, mtu: (uint)mtu), $"set {pair.HostIf} mtu {mtu}");
        return new InterfaceStateDto(port.Name, pair.HostIf, pair.AdminUp, mtu, null);
    }

    private static void MirrorChange(Pair pair, NetlinkWriter request, string what)
    {
        try
        {
            NetlinkRequest.Run(pair.Netns, request, what);
        }
        catch (IOException e)
        {
            throw new ApiException(e.Message);
        }
    }

    /// <summary>attach &lt;ifname&gt; [netns &lt;ns&gt;] [xdp].</summary>
    public InterfaceDto Attach(CommandSpec spec, string[] a)
    {
        if (a.Length == 0)
            throw new ApiException($"usage: {spec.Usage}");
        string? netns = null;
        bool xdp = false;
        for (int i = 1; i < a.Length; i++)
        {
            if (a[i] == "netns" && i + 1 < a.Length)
                netns = a[++i];
            else if (a[i] == "xdp")
                xdp = true;
            else
                throw new ApiException($"unexpected argument '{a[i]}'; usage: {spec.Usage}");
        }
        try
        {
            PortInfo p = state.Pairs.Attach(a[0], netns, xdp);
            return Describe(p);
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }

    /// <summary>detach &lt;port|ifname&gt;.</summary>
    public InterfaceDto Detach(CommandSpec spec, string[] a)
    {
        if (a.Length != 1)
            throw new ApiException($"usage: {spec.Usage}");
        try
        {
            return Describe(state.Pairs.Detach(a[0]));
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }

    private InterfaceDto Describe(PortInfo p) =>
        new(p.Name, p.Id, "phy", p.Mac.ToString(), EthPort.IsValid(p.Id) ? EthPort.Mtu(p.Id) : 0, true,
            EthPort.IsValid(p.Id) && LinkSync.PortLink(p, state.Pairs.Host), 0, 0, 0, 0, 0, 0,
            KernelIf: p.Attached?.Ifname, KernelNetns: p.Attached?.Netns);

    /// <summary>show bond.</summary>
    public List<BondDto> ShowBonds()
    {
        var list = new List<BondDto>();
        foreach (BondView b in state.Pairs.Bonds())
        {
            var members = new List<BondMemberDto>();
            foreach (BondMemberView m in b.Members)
            {
                var st = m.InBond && EthPort.IsValid(m.PortId) ? EthPort.Stats(m.PortId) : default;
                LacpInfo? l = m.Lacp;
                members.Add(new BondMemberDto(m.Name, m.PortId, m.InBond, m.Active, m.LinkUp, l?.Selection,
                    l is { } a ? [.. LacpInfo.Decode(a.ActorState)] : null, l is { } p ? [.. LacpInfo.Decode(p.PartnerState)] : null,
                    l?.PartnerSystem.ToString(), l?.PartnerPort, l?.AggregatorPort, (long)st.ipackets, (long)st.opackets, m.Removals, m.LastChange, m.KernelIf));
            }
            string mode = b.Mode switch { BondMode.Lacp => "lacp", BondMode.ActiveBackup => "active-backup", _ => "balance-xor" };
            list.Add(new BondDto(b.Name, b.PortId, mode, b.Hash.ToString().ToLowerInvariant(), b.Mac.ToString(), EthPort.Link(b.PortId).Up, members));
        }
        return list;
    }
}
