using DpdkSharp;

namespace LinuxCp.ControlPlane.Pairs;

public enum PortKind
{
    Phy,
    Tap,
    Tun,
}

/// <summary>A DPDK port lcpd owns: a physical (or vdev) port, or a mirror it created.</summary>
public sealed record PortInfo(ushort Id, string Name, PortKind Kind, MacAddress Mac, string Driver);

/// <summary>A port and its kernel mirror.</summary>
public sealed record Pair(
    PortInfo Phy,
    PortInfo Mirror,
    string HostIf,
    string? Netns,
    bool Tun,
    int HostIfIndex,
    bool Persist,
    bool AdminUp = true);

/// <summary>A request that cannot be carried out; the message is for the operator.</summary>
public sealed class PairException : Exception
{
    public PairException(string message) : base(message) { }

    public PairException() { }

    public PairException(string message, Exception inner) : base(message, inner) { }
}
