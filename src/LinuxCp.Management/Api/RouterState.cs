using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane;

namespace LinuxCp.Management.Api;

/// <summary>What the management layer reads and drives: the engine, the pairs, the pool.</summary>
public sealed record RouterState(DataplaneEngine Engine, PairManager Pairs, Mempool Pool, string Version, string DpdkVersion,
    LinuxCp.ControlPlane.Routing.RoutingService? Routing = null, bool DebugCommands = false)
{
    /// <summary>lcp-sync (ports' links to their mirrors' carrier), when on.</summary>
    public LinkSync? LinkSync { get; init; }
}

public static class RouterStatePorts
{
    /// <summary>The dataplane port (phy or sub-interface) of that name, the ports features sit on (not mirrors).</summary>
    public static PortInfo? FindPhy(this RouterState s, string name) =>
        s.Pairs.AllPorts().FirstOrDefault(p => p.Kind == PortKind.Phy && p.Name == name)
        ?? s.Pairs.SubInterfaces().FirstOrDefault(p => p.Name == name);

    /// <summary><see cref="FindPhy"/>, or the API error that names what to look at.</summary>
    public static PortInfo PhyPort(this RouterState s, string name) =>
        s.FindPhy(name) ?? throw new LinuxCp.Management.Contracts.ApiException($"no dataplane port named '{name}' (see show interfaces)");
}
