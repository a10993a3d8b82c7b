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
/// in now; <paramref name="NetnsInode"/>: the identity of the namespace the mirror lives in.</summary>
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
    bool Adopted = false);

/// <summary>A request that cannot be carried out; the message is for the operator.</summary>
public sealed class PairException : Exception
{
    public PairException(string message) : base(message) { }

    public PairException() { }

    public PairException(string message, Exception inner) : base(message, inner) { }
}
